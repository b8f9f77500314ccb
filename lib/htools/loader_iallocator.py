"""Load the cluster model and the request from an iallocator input message.

The message is the JSON document Ganeti hands an iallocator (see
doc/iallocator.rst): ``cluster_name``, ``cluster_tags``,
``enabled_hypervisors``, ``ipolicy``, ``nodegroups``, ``nodes``,
``instances`` and ``request``. Offline, drained and non-vm_capable nodes
may lack their run-time data. A node may list its storage units under
``storage`` (``{"sunit": [type, key, params], "free": MiB, "total": MiB}``,
Ganeti's design-multi-storage-htools) or ``storage_units`` (our master's:
``{"type", "name", "storage_free", "storage_size"}``); disks must then fit
in a storage unit of their template's type.

Malformed input raises ``InputError`` naming the object and field.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any

from ganeti import constants
from ganeti.htools import model
from ganeti.htools.policy import IPolicy, PolicyError

DEFAULT_GROUP_UUID = "00000000-0000-0000-0000-000000000000"

_MISSING = object()


class InputError(ValueError):
    """The input message is malformed; the text names the bad field."""


@dataclasses.dataclass
class Request:
    """One iallocator request, resolved against the cluster."""

    type: str
    name: str | None = None
    #: allocate: the new instance; relocate: the instance to move
    instance: model.Instance | None = None
    required_nodes: int = 0
    relocate_from: list[str] = dataclasses.field(default_factory=list)
    #: node-evacuate, change-group: the instances to move
    instances: list[str] = dataclasses.field(default_factory=list)
    evac_mode: str = constants.NODE_EVAC_ALL
    target_groups: list[str] = dataclasses.field(default_factory=list)
    #: multi-allocate: (instance, required nodes) in request order
    allocations: list[tuple[model.Instance, int]] = dataclasses.field(
        default_factory=list)
    group_name: str | None = None
    restrict_nodes: list[str] | None = None


def _describe(val: Any) -> str:
    text = repr(val)
    return text if len(text) <= 60 else text[:57] + "..."


#: per kind, the JSON types a valid value usually has: such a value only
#: needs a type comparison (and, for numbers, a sign check)
_PLAIN_TYPES: dict[str, tuple[type, ...]] = {
    "int": (int,), "num": (int, float), "bool": (bool,), "str": (str,),
    "strlist": (list,), "list": (list,), "dict": (dict,),
}


def _get(obj: Mapping[str, Any], key: str, where: str, kind: str,
         default: Any = _MISSING) -> Any:
    """Fetch and check ``obj[key]``; ``kind`` names the expected type."""
    val = obj.get(key, _MISSING)
    if val is _MISSING or (val is None and default is not _MISSING):
        if default is _MISSING:
            raise InputError(f"{where}: missing field '{key}'")
        return default
    # the fast path: parsing 10,000 instances makes some 170,000 checks
    if type(val) in _PLAIN_TYPES[kind]:
        if kind in ("int", "num"):
            if val >= 0:
                return val
        elif kind == "str":
            if val:
                return val
        elif kind != "strlist" or all(type(x) is str for x in val):
            return val
    return _check(val, key, where, kind)


def _check(val: Any, key: str, where: str, kind: str) -> Any:
    """The full check of ``_get``: subclasses, integral floats, errors."""
    ok = True
    if kind in ("num", "int"):
        ok = (isinstance(val, (int, float)) and not isinstance(val, bool)
              and val >= 0 and val == val)
        if ok and kind == "int":
            ok = float(val).is_integer()
            val = int(val) if ok else val
        expect = ("a non-negative integer" if kind == "int"
                  else "a non-negative number")
    elif kind == "bool":
        ok, expect = isinstance(val, bool), "a boolean"
    elif kind == "str":
        ok, expect = isinstance(val, str) and val != "", "a non-empty string"
    elif kind == "strlist":
        ok = isinstance(val, list) and all(isinstance(x, str) for x in val)
        expect = "a list of strings"
    elif kind == "list":
        ok, expect = isinstance(val, list), "a list"
    elif kind == "dict":
        ok, expect = isinstance(val, Mapping), "a dict"
    else:  # pragma: no cover - programming error
        raise AssertionError(kind)
    if not ok:
        raise InputError(f"{where}: '{key}' must be {expect}, got {_describe(val)}")
    return val


def _parse_group(uuid: str, data: Any, cluster_policy: IPolicy) -> model.Group:
    where = f"invalid data for group '{uuid}'"
    if not isinstance(data, Mapping):
        raise InputError(f"{where}: must be a dict")
    name = _get(data, "name", where, "str")
    policy = _get(data, "alloc_policy", where, "str", constants.ALLOC_POLICY_PREFERRED)
    if policy not in constants.VALID_ALLOC_POLICIES:
        raise InputError(f"{where}: 'alloc_policy' must be one of"
                         f" {', '.join(constants.VALID_ALLOC_POLICIES)}, got {policy!r}")
    try:
        ipolicy = IPolicy.from_dict(_get(data, "ipolicy", where, "dict", {}),
                                    cluster_policy, f"{where}: ipolicy")
    except PolicyError as err:
        raise InputError(str(err)) from err
    return model.Group(uuid, name, policy, ipolicy,
                       list(_get(data, "networks", where, "strlist", [])),
                       list(_get(data, "tags", where, "strlist", [])))


def _parse_storage(data: Any, where: str) -> list[model.StorageUnit]:
    units = []
    for idx, entry in enumerate(data):
        loc = f"{where}: storage[{idx}]"
        if not isinstance(entry, Mapping):
            raise InputError(f"{loc} must be a dict")
        sunit = _get(entry, "sunit", loc, "list")
        if len(sunit) < 2 or not all(isinstance(x, str) for x in sunit[:2]):
            raise InputError(f"{loc}: 'sunit' must be [type, key, params],"
                             f" got {_describe(sunit)}")
        params = sunit[2] if len(sunit) > 2 and isinstance(sunit[2], list) else []
        units.append(model.StorageUnit(sunit[0], sunit[1],
                                       int(_get(entry, "free", loc, "num")),
                                       int(_get(entry, "total", loc, "num")),
                                       tuple(params)))
    return units


def _parse_storage_units(data: Any, where: str) -> list[model.StorageUnit]:
    """Our master's ``storage_units``: node_info's per-unit dicts."""
    units = []
    for idx, entry in enumerate(data):
        loc = f"{where}: storage_units[{idx}]"
        if not isinstance(entry, Mapping):
            raise InputError(f"{loc} must be a dict")
        kind = _get(entry, "type", loc, "str")
        if kind == constants.ST_LVM_PV:  # physical volumes count spindles
            continue
        units.append(model.StorageUnit(kind, str(entry.get("name") or ""),
                                       int(_get(entry, "storage_free", loc, "num")),
                                       int(_get(entry, "storage_size", loc, "num"))))
    return units


def _parse_node(name: str, data: Any, groups: Mapping[str, model.Group]) -> model.Node:
    where = f"invalid data for node '{name}'"
    if not isinstance(data, Mapping):
        raise InputError(f"{where}: must be a dict")
    offline = _get(data, "offline", where, "bool", False)
    drained = _get(data, "drained", where, "bool", False)
    vm_capable = _get(data, "vm_capable", where, "bool", True)
    if "group" in data or len(groups) != 1:
        guuid = _get(data, "group", where, "str")
    else:
        guuid = next(iter(groups))
    if guuid not in groups:
        raise InputError(f"{where}: 'group' names an unknown group {guuid!r}")
    ndparams = _get(data, "ndparams", where, "dict", {})
    excl = _get(ndparams, "exclusive_storage", where + ": ndparams", "bool", False)
    live = not offline and vm_capable

    def runtime(key: str, kind: str = "int", required: bool = False) -> Any:
        # offline, drained and non-vm_capable nodes carry no run-time data
        if required and live:
            return _get(data, key, where, kind)
        return _get(data, key, where, kind, 0)

    if excl:
        spindles = runtime("total_spindles")
    else:
        spindles = _get(ndparams, "spindle_count", where + ": ndparams", "int", 1)
    node = model.Node(
        name=name, group=guuid,
        t_mem=float(runtime("total_memory", "num", True)),
        n_mem=runtime("reserved_memory"),
        f_mem=int(runtime("free_memory", "num", True)),
        t_dsk=float(runtime("total_disk", "num", True)),
        f_dsk=int(runtime("free_disk", "num", True)),
        t_cpu=float(runtime("total_cpus", "num")),
        n_cpu=runtime("reserved_cpus"),
        t_spindles=spindles,
        f_spindles=runtime("free_spindles") if excl else 0,
        exclusive_storage=excl,
        cpu_speed=float(_get(ndparams, "cpu_speed", where + ": ndparams", "num", 1.0))
        or 1.0,
        offline=offline, drained=drained, vm_capable=vm_capable,
        master_candidate=_get(data, "master_candidate", where, "bool", False),
        tags=frozenset(_get(data, "tags", where, "strlist", [])),
        storage=_parse_storage(_get(data, "storage", where, "list", []), where)
        + _parse_storage_units(_get(data, "storage_units", where, "list", []), where),
    )
    return node


def _parse_disks(data: Mapping[str, Any], where: str) -> tuple[model.Disk, ...]:
    disks = []
    for idx, disk in enumerate(_get(data, "disks", where, "list")):
        loc = f"{where}: disks[{idx}]"
        if not isinstance(disk, Mapping):
            raise InputError(f"{loc} must be a dict")
        spindles = _get(disk, "spindles", loc, "int", None)
        disks.append(model.Disk(_get(disk, "size", loc, "int"), spindles,
                                _get(disk, "mode", loc, "str", constants.DISK_RDWR),
                                _get(disk, "vg", loc, "str", None)))
    return tuple(disks)


def parse_instance(name: str, data: Any, kind: str = "instance") -> model.Instance:
    """Parse an instance description (an existing one or a request's)."""
    where = f"invalid data for {kind} '{name}'"
    if not isinstance(data, Mapping):
        raise InputError(f"{where}: must be a dict")
    template = _get(data, "disk_template", where, "str")
    if template not in constants.DISK_TEMPLATES:
        raise InputError(f"{where}: 'disk_template' must be one of"
                         f" {', '.join(sorted(constants.DISK_TEMPLATES))},"
                         f" got {template!r}")
    if "admin_state" in data:
        state = _get(data, "admin_state", where, "str")
        if state not in constants.ADMINST_ALL:
            raise InputError(f"{where}: 'admin_state' must be one of"
                             f" {', '.join(sorted(constants.ADMINST_ALL))}, got {state!r}")
    else:
        run = _get(data, "should_run", where, "bool", True)
        state = constants.ADMINST_UP if run else constants.ADMINST_DOWN
    nics = _get(data, "nics", where, "list", [])
    if not all(isinstance(n, Mapping) for n in nics):
        raise InputError(f"{where}: 'nics' must be a list of dicts")
    return model.Instance(
        name=name,
        memory=_get(data, "memory", where, "int"),
        vcpus=_get(data, "vcpus", where, "int"),
        disks=_parse_disks(data, where),
        disk_template=template,
        spindle_use=_get(data, "spindle_use", where, "int", 1),
        tags=tuple(_get(data, "tags", where, "strlist", [])),
        admin_state=state,
        nics=[dict(n) for n in nics],
        hypervisor=data.get("hypervisor"),
        os=data.get("os"),
        forthcoming=_get(data, "forthcoming", where, "bool", False),
        disk_space=_get(data, "disk_space_total", where, "int", -1),
    )


def parse_cluster(data: Mapping[str, Any]) -> model.Cluster:
    """Build the cluster model from the common part of the message."""
    where = "invalid iallocator message"
    try:
        cpolicy = IPolicy.from_dict(_get(data, "ipolicy", where, "dict", {}),
                                    where="invalid iallocator message: ipolicy")
    except PolicyError as err:
        raise InputError(str(err)) from err
    cluster = model.Cluster(
        name=_get(data, "cluster_name", where, "str", ""),
        tags=_get(data, "cluster_tags", where, "strlist", []),
        ipolicy=cpolicy,
        enabled_hypervisors=_get(data, "enabled_hypervisors", where, "strlist", []))
    groups = _get(data, "nodegroups", where, "dict", None)
    if groups is None:  # pre-2.3 messages had no groups
        cluster.add_group(model.Group(DEFAULT_GROUP_UUID, "default", ipolicy=cpolicy))
    else:
        for uuid in sorted(groups):
            cluster.add_group(_parse_group(uuid, groups[uuid], cpolicy))
    nodes = _get(data, "nodes", where, "dict")
    for name in sorted(nodes):
        cluster.add_node(_parse_node(name, nodes[name], cluster.groups))
    instances = _get(data, "instances", where, "dict")
    for name in sorted(instances):
        inst = cluster.prepare_instance(parse_instance(name, instances[name]))
        iwhere = f"invalid data for instance '{name}'"
        inodes = _get(instances[name], "nodes", iwhere, "strlist")
        if not inodes:
            raise InputError(f"{iwhere}: 'nodes' is empty")
        for node in inodes:
            if node not in cluster.nodes:
                raise InputError(f"{iwhere}: 'nodes' names an unknown node {node!r}")
        if len(inodes) > 1 and inodes[0] == inodes[1]:
            raise InputError(f"{iwhere}: primary and secondary node are the same"
                             f" ({inodes[0]})")
        cluster.place(inst, inodes[0], inodes[1] if len(inodes) > 1 else None,
                      existing=True)
    for node in cluster.nodes.values():
        node.x_mem = int(node.t_mem) - node.n_mem - node.f_mem - node.i_mem
    return cluster


def _known_instance(cluster: model.Cluster, name: Any, where: str) -> str:
    if not isinstance(name, str) or name not in cluster.instances:
        raise InputError(f"{where}: unknown instance {_describe(name)}")
    return name


def _alloc_entry(req: Mapping[str, Any], where: str,
                 cluster: model.Cluster) -> tuple[model.Instance, int]:
    name = _get(req, "name", where, "str")
    if name in cluster.instances:
        raise InputError(f"{where}: instance {name!r} already exists in the cluster")
    inst = cluster.prepare_instance(parse_instance(name, req, "request instance"))
    return inst, _get(req, "required_nodes", where, "int")


def parse_request(data: Mapping[str, Any], cluster: model.Cluster) -> Request:
    """Parse the ``request`` part of the message against ``cluster``."""
    req = _get(data, "request", "invalid iallocator message", "dict")
    where = "invalid request dict"
    rtype = _get(req, "type", where, "str")
    if rtype not in constants.VALID_IALLOCATOR_MODES:
        raise InputError(f"{where}: invalid request type {rtype!r}, expected one of"
                         f" {', '.join(sorted(constants.VALID_IALLOCATOR_MODES))}")
    out = Request(type=rtype)
    if rtype == constants.IALLOCATOR_MODE_ALLOC:
        out.instance, out.required_nodes = _alloc_entry(req, where, cluster)
        out.name = out.instance.name
        out.group_name = _get(req, "group_name", where, "str", None)
        out.restrict_nodes = _get(req, "restrict-to-nodes", where, "strlist", None)
    elif rtype == constants.IALLOCATOR_MODE_RELOC:
        out.name = _known_instance(cluster, _get(req, "name", where, "str"), where)
        out.instance = cluster.instances[out.name]
        out.required_nodes = _get(req, "required_nodes", where, "int", 1)
        out.relocate_from = _get(req, "relocate_from", where, "strlist")
        for node in out.relocate_from:
            if node not in cluster.nodes:
                raise InputError(f"{where}: 'relocate_from' names an unknown node"
                                 f" {node!r}")
    elif rtype in (constants.IALLOCATOR_MODE_NODE_EVAC,
                   constants.IALLOCATOR_MODE_CHG_GROUP):
        out.instances = [_known_instance(cluster, n, where)
                         for n in _get(req, "instances", where, "strlist")]
        if rtype == constants.IALLOCATOR_MODE_NODE_EVAC:
            out.evac_mode = _get(req, "evac_mode", where, "str")
            if out.evac_mode not in constants.NODE_EVAC_MODES:
                raise InputError(f"{where}: 'evac_mode' must be one of"
                                 f" {', '.join(sorted(constants.NODE_EVAC_MODES))},"
                                 f" got {out.evac_mode!r}")
        else:
            out.target_groups = _get(req, "target_groups", where, "strlist")
            for uuid in out.target_groups:
                if cluster.find_group(uuid) is None:
                    raise InputError(f"{where}: 'target_groups' names an unknown"
                                     f" group {uuid!r}")
    else:  # multi-allocate
        entries = _get(req, "instances", where, "list")
        seen = set()
        for idx, entry in enumerate(entries):
            loc = f"{where}: instances[{idx}]"
            if not isinstance(entry, Mapping):
                raise InputError(f"{loc} must be a dict")
            inst, nodes = _alloc_entry(entry, loc, cluster)
            if inst.name in seen:
                raise InputError(f"{loc}: instance {inst.name!r} requested twice")
            seen.add(inst.name)
            out.allocations.append((inst, nodes))
        out.group_name = _get(req, "group_name", where, "str", None)
    return out


def load(text: str | bytes | Mapping[str, Any]) -> tuple[model.Cluster, Request]:
    """Parse a whole iallocator input message.

    @raise InputError: on malformed JSON or data
    """
    if isinstance(text, Mapping):
        data = text
    else:
        try:
            data = json.loads(text)
        except ValueError as err:
            raise InputError(f"Parsing input IAllocator message: {err}") from err
    if not isinstance(data, Mapping):
        raise InputError("invalid iallocator message: not a JSON object")
    version = data.get("version", constants.IALLOCATOR_VERSION)
    if version != constants.IALLOCATOR_VERSION:
        raise InputError(f"invalid iallocator message: 'version' must be"
                         f" {constants.IALLOCATOR_VERSION}, got {_describe(version)}")
    cluster = parse_cluster(data)
    return cluster, parse_request(data, cluster)
