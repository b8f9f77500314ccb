"""Load the cluster model from a live master daemon through luxi (``-L``).

Three ``Query`` calls (groups, nodes, instances) and ``QueryClusterInfo``
give what htools need, under Ganeti's query field names (``GROUP_FIELDS``,
``NODE_FIELDS``, ``INSTANCE_FIELDS``). A field the master does not know or
has no value for (``RS_UNKNOWN``, ``RS_NODATA``, ...) reads as missing:
``sptotal``/``spfree`` for instance are only asked of masters that have
them.

The records are turned into the model by :func:`build_cluster`, which the
RAPI loader shares (its bulk answers carry the same fields), so that a
cluster reads the same through luxi, RAPI and an iallocator message:

- offline and non-vm_capable nodes carry no run-time data (zeros);
  an online node whose memory figures are missing (its node daemon did
  not answer) is taken as offline, as a ``?`` in a text file is;
- with exclusive storage a node's spindles are its physical volumes
  (``sptotal``/``spfree``), otherwise the ``spindle_count`` node parameter;
- an instance's state comes from its run status (``running``,
  ``ADMIN_down``, ...) when the master knows it, else from its admin state;
- a node's free memory is the hypervisor's less what its running primary
  instances may still claim (their maximum memory less what they use now,
  ``oper_ram``), as the master computes it for iallocators.

Malformed answers raise ``InputError`` naming the object and field; a
master that cannot be reached or refuses a query raises ``BackendError``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from ganeti import constants, errors
from ganeti.htools import model
from ganeti.htools.loader_iallocator import InputError
from ganeti.htools.loader_text import STATUS_TO_ADMIN
from ganeti.htools.policy import IPolicy, PolicyError

#: Group fields htools read
GROUP_FIELDS = ["uuid", "name", "alloc_policy", "ipolicy", "networks", "tags"]
#: Node fields htools read (live ones are missing for offline nodes)
NODE_FIELDS = ["name", "mtotal", "mnode", "mfree", "dtotal", "dfree", "ctotal",
               "cnos", "offline", "drained", "vm_capable", "master_candidate",
               "master", "group.uuid", "tags", "ndp/spindle_count",
               "ndp/exclusive_storage", "ndp/cpu_speed", "sptotal", "spfree"]
#: Instance fields htools read
INSTANCE_FIELDS = ["name", "pnode", "snodes", "admin_state", "status", "be/maxmem",
                   "be/vcpus", "be/auto_balance", "be/spindle_use", "disk_template",
                   "disk.sizes", "disk.spindles", "disk_usage", "tags", "oper_ram",
                   "forthcoming"]

#: Run states that say nothing of the instance itself (its node is down):
#: the admin state decides then
_NODE_STATES = frozenset([constants.INSTST_NODEDOWN, constants.INSTST_NODEOFFLINE])


class BackendError(InputError):
    """The cluster could not be queried (connection or server error)."""


Record = Mapping[str, Any]


def _describe(val: Any) -> str:
    text = repr(val)
    return text if len(text) <= 60 else text[:57] + "..."


def _num(rec: Record, key: str, where: str, default: float = 0) -> float:
    val = rec.get(key)
    if val is None:
        return default
    if isinstance(val, bool) or not isinstance(val, (int, float)) or not val >= 0:
        raise InputError(f"{where}: '{key}' must be a non-negative number,"
                         f" got {_describe(val)}")
    return val


def _int(rec: Record, key: str, where: str, default: int = 0) -> int:
    return int(_num(rec, key, where, default))


def _bool(rec: Record, key: str, where: str, default: bool = False) -> bool:
    val = rec.get(key)
    if val is None:
        return default
    if not isinstance(val, bool):
        raise InputError(f"{where}: '{key}' must be a boolean, got {_describe(val)}")
    return val


def _str(rec: Record, key: str, where: str, default: str | None = None) -> str:
    val = rec.get(key)
    if val is None and default is not None:
        return default
    if not isinstance(val, str) or not val:
        raise InputError(f"{where}: '{key}' must be a non-empty string,"
                         f" got {_describe(val)}")
    return val


def _list(rec: Record, key: str, where: str) -> list[Any]:
    val = rec.get(key)
    if val is None:
        return []
    if not isinstance(val, list):
        raise InputError(f"{where}: '{key}' must be a list, got {_describe(val)}")
    return val


def _strlist(rec: Record, key: str, where: str) -> list[str]:
    val = _list(rec, key, where)
    if not all(isinstance(x, str) for x in val):
        raise InputError(f"{where}: '{key}' must be a list of strings,"
                         f" got {_describe(val)}")
    return val


def _policy(data: Any, base: IPolicy | None, where: str) -> IPolicy:
    if data is None:
        return base or IPolicy.default()
    try:
        return IPolicy.from_dict(data, base, where + ": ipolicy")
    except PolicyError as err:
        raise InputError(str(err)) from err


def _group(rec: Record, cpolicy: IPolicy) -> model.Group:
    where = f"group {rec.get('name') or rec.get('uuid')!r}"
    apol = _str(rec, "alloc_policy", where, constants.ALLOC_POLICY_PREFERRED)
    if apol not in constants.VALID_ALLOC_POLICIES:
        raise InputError(f"{where}: 'alloc_policy' must be one of"
                         f" {', '.join(constants.VALID_ALLOC_POLICIES)}, got {apol!r}")
    return model.Group(_str(rec, "uuid", where), _str(rec, "name", where), apol,
                       _policy(rec.get("ipolicy"), cpolicy, where),
                       list(_strlist(rec, "networks", where)),
                       list(_strlist(rec, "tags", where)))


def _node(rec: Record, cluster: model.Cluster, master: str | None) -> model.Node:
    name = _str(rec, "name", "node")
    where = f"node '{name}'"
    offline = _bool(rec, "offline", where)
    vm_capable = _bool(rec, "vm_capable", where, True)
    guuid = rec.get("group.uuid")
    if guuid is None and len(cluster.groups) == 1:
        guuid = next(iter(cluster.groups))
    if guuid not in cluster.groups:
        raise InputError(f"{where}: 'group.uuid' names an unknown group {guuid!r}")
    live = not offline and vm_capable
    if live and any(rec.get(k) is None for k in ("mtotal", "mnode", "mfree")):
        # gnt-node list shows "?" here: nothing is known of the node's state
        logging.warning("No run-time data for node %s, taking it as offline", name)
        offline, live = True, False
    excl = _bool(rec, "ndp/exclusive_storage", where)

    def runtime(key: str) -> float:
        return _num(rec, key, where) if live else 0

    if excl:
        t_spindles, f_spindles = int(runtime("sptotal")), int(runtime("spfree"))
    else:
        t_spindles, f_spindles = _int(rec, "ndp/spindle_count", where, 1), 0
    return model.Node(
        name=name, group=str(guuid),
        t_mem=float(runtime("mtotal")), n_mem=int(runtime("mnode")),
        f_mem=int(runtime("mfree")), t_dsk=float(runtime("dtotal")),
        f_dsk=int(runtime("dfree")), t_cpu=float(runtime("ctotal")),
        n_cpu=int(runtime("cnos")), t_spindles=t_spindles, f_spindles=f_spindles,
        exclusive_storage=excl,
        cpu_speed=float(_num(rec, "ndp/cpu_speed", where, 1.0)) or 1.0,
        offline=offline, drained=_bool(rec, "drained", where), vm_capable=vm_capable,
        master_candidate=_bool(rec, "master_candidate", where),
        is_master=_bool(rec, "master", where) or name == master,
        tags=frozenset(_strlist(rec, "tags", where)))


def _admin_state(rec: Record, where: str) -> str:
    status = rec.get("status")
    if status in STATUS_TO_ADMIN and status not in _NODE_STATES:
        return STATUS_TO_ADMIN[status]
    state = rec.get("admin_state")
    if state is None:
        raise InputError(f"{where}: neither 'status' nor 'admin_state' is known")
    if state not in constants.ADMINST_ALL:
        raise InputError(f"{where}: 'admin_state' must be one of"
                         f" {', '.join(sorted(constants.ADMINST_ALL))}, got {state!r}")
    return state


def _instance(rec: Record) -> tuple[model.Instance, str, str | None, int | None]:
    """The instance, its nodes and the memory it uses now (None: unknown)."""
    name = _str(rec, "name", "instance")
    where = f"instance '{name}'"
    template = _str(rec, "disk_template", where)
    if template not in constants.DISK_TEMPLATES:
        raise InputError(f"{where}: 'disk_template' must be one of"
                         f" {', '.join(sorted(constants.DISK_TEMPLATES))},"
                         f" got {template!r}")
    sizes = _list(rec, "disk.sizes", where)
    spindles = _list(rec, "disk.spindles", where)
    disks = []
    for idx, size in enumerate(sizes):
        dwhere = f"{where}: disk {idx}"
        spin = spindles[idx] if idx < len(spindles) else None
        disks.append(model.Disk(_int({"size": size}, "size", dwhere),
                                None if spin is None
                                else _int({"spindles": spin}, "spindles", dwhere)))
    snodes = _strlist(rec, "snodes", where)
    inst = model.Instance(
        name=name, memory=_int(rec, "be/maxmem", where),
        vcpus=_int(rec, "be/vcpus", where, 1), disks=tuple(disks),
        disk_template=template,
        spindle_use=_int(rec, "be/spindle_use", where, 1),
        tags=tuple(_strlist(rec, "tags", where)),
        admin_state=_admin_state(rec, where),
        auto_balance=_bool(rec, "be/auto_balance", where, True),
        forthcoming=_bool(rec, "forthcoming", where),
        disk_space=_int(rec, "disk_usage", where, -1))
    oper_ram = rec.get("oper_ram")
    used = _int(rec, "oper_ram", where) if oper_ram is not None else None
    return inst, _str(rec, "pnode", where), snodes[0] if snodes else None, used


def build_cluster(info: Record, groups: Sequence[Record], nodes: Sequence[Record],
                  instances: Sequence[Record],
                  tags: Sequence[str] | None = None) -> model.Cluster:
    """The cluster model from query records (field name -> value, None
    when missing) and the cluster's settings (``QueryClusterInfo``, or
    RAPI's ``/2/info``); ``tags`` overrides the settings' tags.

    @raise InputError: naming the bad object and field
    """
    where = "cluster info"
    cpolicy = _policy(info.get("ipolicy"), None, where)
    ctags = list(tags) if tags is not None else _strlist(info, "tags", where)
    cluster = model.Cluster(name=info.get("name") or "", tags=ctags, ipolicy=cpolicy,
                            enabled_hypervisors=_strlist(info, "enabled_hypervisors",
                                                         where))
    for rec in sorted(groups, key=lambda g: str(g.get("uuid"))):
        group = _group(rec, cpolicy)
        if group.uuid in cluster.groups:
            raise InputError(f"group '{group.name}': UUID {group.uuid} listed twice")
        cluster.add_group(group)
    if not cluster.groups:
        raise InputError("the cluster has no node group")
    master = info.get("master")
    for rec in sorted(nodes, key=lambda n: str(n.get("name"))):
        node = _node(rec, cluster, master if isinstance(master, str) else None)
        if node.name in cluster.nodes:
            raise InputError(f"node '{node.name}': listed twice")
        cluster.add_node(node)
    placed = []
    for rec in sorted(instances, key=lambda i: str(i.get("name"))):
        inst, pnode, snode, used = _instance(rec)
        where = f"instance '{inst.name}'"
        if inst.name in cluster.instances:
            raise InputError(f"{where}: listed twice")
        for node_name in (pnode, snode):
            if node_name is not None and node_name not in cluster.nodes:
                raise InputError(f"{where}: unknown node {node_name!r}")
        if pnode == snode:
            raise InputError(f"{where}: primary and secondary node are the same"
                             f" ({pnode})")
        if inst.is_running and used is not None:
            # memory it may still claim: not free for others
            pnode_obj = cluster.nodes[pnode]
            pnode_obj.f_mem = max(0, pnode_obj.f_mem - max(0, inst.memory - used))
        placed.append((cluster.prepare_instance(inst), pnode, snode))
    for inst, pnode, snode in placed:
        cluster.place(inst, pnode, snode, existing=True)
    for node in cluster.nodes.values():
        node.x_mem = int(node.t_mem) - node.n_mem - node.f_mem - node.i_mem
    return cluster


def query_records(client: Any, resource: str, fields: list[str]) -> list[dict[str, Any]]:
    """Run one luxi ``Query``: a dict per item, None where no value came."""
    answer = client.Query(resource, fields, None)
    try:
        rows = answer["data"]
        records = []
        for row in rows:
            if len(row) != len(fields):
                raise ValueError(f"{len(row)} values for {len(fields)} fields")
            records.append({name: value if status == constants.RS_NORMAL else None
                            for name, (status, value) in zip(fields, row)})
    except (KeyError, TypeError, ValueError) as err:
        raise InputError(f"invalid answer to the '{resource}' query: {err}") from err
    return records


def query_cluster(client: Any) -> model.Cluster:
    """The cluster model through a luxi client (``ganeti.luxi.Client`` or one
    with the same ``Query`` and ``QueryClusterInfo`` methods)."""
    groups = query_records(client, constants.QR_GROUP, GROUP_FIELDS)
    nodes = query_records(client, constants.QR_NODE, NODE_FIELDS)
    instances = query_records(client, constants.QR_INSTANCE, INSTANCE_FIELDS)
    info = client.QueryClusterInfo()
    if not isinstance(info, Mapping):
        raise InputError(f"invalid cluster info: {_describe(info)}")
    return build_cluster(info, groups, nodes, instances)


def load(socket: str | None = None, client: Any = None) -> model.Cluster:
    """The cluster model of the master listening on ``socket`` (default:
    this node's master socket), or through ``client``.

    @raise BackendError: if the master cannot be reached or refuses
    @raise InputError: if its answers are malformed
    """
    from ganeti import luxi, pathutils
    address = socket or pathutils.MASTER_SOCKET
    own = client is None
    if client is None:
        client = luxi.Client(address=address)
    try:
        return query_cluster(client)
    except luxi.NoMasterError as err:
        raise BackendError(str(err)) from err  # it names the socket already
    except (luxi.ProtocolError, errors.GenericError) as err:
        raise BackendError(f"Cannot query the master daemon at {address}: {err}") \
            from err
    except OSError as err:
        raise BackendError(f"Cannot connect to the master daemon at {address}:"
                           f" {err.strerror or err}") from err
    finally:
        if own:
            client.Close()
