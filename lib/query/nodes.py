"""The "node" query resource: Ganeti's node fields.

Items are ``objects.Node`` copies from the configuration. Fields read from
the configuration cost nothing; the "live" fields (memory, disk, CPUs, boot
ID) come from one ``node_info`` RPC to the nodes being listed, made only
when such a field is selected or filtered on. An offline node's live fields
are ``RS_OFFLINE``; a node that does not answer within
``constants.RPC_TMO_QUERY`` seconds (a hung node daemon) gives
``RS_NODATA``, shown as "?" by gnt-node list.

The master daemon's context gives ``cfg`` (the ConfigWriter) and, when it
has one, ``rpc`` (an RpcRunner); without it a runner is made from the
configuration.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from ganeti import constants, pathutils, utils
from ganeti.constants import (
    QFT_BOOL,
    QFT_NUMBER,
    QFT_OTHER,
    QFT_TEXT,
    QFT_TIMESTAMP,
    QFT_UNIT,
)
from ganeti.query.engine import (
    CheckNamesKnown, FieldQuery, MatchesName, RegisterResource, Resource,
)
from ganeti.query.fields import (
    NODATA,
    OFFLINE,
    QFF_HOSTNAME,
    UNAVAIL,
    FieldDefinition,
    FieldTable,
)

#: Data kinds (``FieldDefinition.data``): what a field needs collected
NQ_CONFIG = "config"       # cluster and groups
NQ_INST = "inst"           # instances per node
NQ_LIVE = "live"           # node_info: memory, CPUs, boot ID
NQ_LIVE_STORAGE = "live-storage"  # node_info with the default storage unit

#: Titles of the per-parameter ``ndp/<name>`` fields (Ganeti's)
ND_TITLES = {
    constants.ND_OOB_PROGRAM: "OutOfBandProgram",
    constants.ND_SPINDLE_COUNT: "SpindleCount",
    constants.ND_EXCLUSIVE_STORAGE: "ExclusiveStorage",
    constants.ND_OVS: "OpenvSwitch",
    constants.ND_OVS_NAME: "OpenvSwitchName",
    constants.ND_OVS_LINK: "OpenvSwitchLink",
    constants.ND_SSH_PORT: "SshPort",
    constants.ND_CPU_SPEED: "CPUSpeed",
}
_ND_KINDS = {"int": QFT_NUMBER, "bool": QFT_BOOL, "float": QFT_OTHER}


@dataclass
class NodeQueryData:
    """What the getters share: cluster, groups, instances and live data."""

    cluster: Any = None
    master_uuid: str | None = None
    groups: dict[str, Any] = field(default_factory=dict)
    primary: dict[str, list[str]] = field(default_factory=dict)
    secondary: dict[str, list[str]] = field(default_factory=dict)
    #: node UUID -> dict of live values, or a special status
    live: dict[str, Any] = field(default_factory=dict)


def NodeRole(node: Any, master_uuid: str | None) -> str:
    """Ganeti's one-letter role: M(aster), C(andidate), D(rained), O(ffline),
    R(egular)."""
    if node.uuid == master_uuid:
        return constants.NR_MASTER
    if node.master_candidate:
        return constants.NR_MCANDIDATE
    if node.drained:
        return constants.NR_DRAINED
    if node.offline:
        return constants.NR_OFFLINE
    return constants.NR_REGULAR


def _filled_ndparams(ctx: NodeQueryData, node: Any) -> Any:
    group = ctx.groups.get(node.group)
    if ctx.cluster is None or group is None:
        return UNAVAIL
    return ctx.cluster.FillND(node, group)


def _powered(ctx: NodeQueryData, node: Any) -> Any:
    # As Ganeti: the state of record means something only for nodes whose
    # power an out-of-band helper manages
    params = _filled_ndparams(ctx, node)
    if not isinstance(params, dict) or not params.get(constants.ND_OOB_PROGRAM):
        return UNAVAIL
    return bool(node.powered)


def _group_name(ctx: NodeQueryData, node: Any) -> Any:
    group = ctx.groups.get(node.group)
    return UNAVAIL if group is None else group.name


def _live(key: str) -> Any:
    def getter(ctx: NodeQueryData, node: Any) -> Any:
        data = ctx.live.get(node.uuid, NODATA)
        if not isinstance(data, dict):
            return data
        value = data.get(key)
        return NODATA if value is None else value
    return getter


def _ndp_getter(name: str) -> Any:
    def getter(ctx: NodeQueryData, node: Any) -> Any:
        params = _filled_ndparams(ctx, node)
        return params.get(name, UNAVAIL) if isinstance(params, dict) else params
    return getter


def _Def(name: str, title: str, kind: str, doc: str, getter: Any,
         data: Any = None, flags: int = 0) -> FieldDefinition:
    return FieldDefinition(name, title, kind, doc, getter, flags=flags, data=data)


def _BuildFields() -> FieldTable:
    defs = [
        _Def("name", "Node", QFT_TEXT, "Node name",
             lambda ctx, node: node.name, flags=QFF_HOSTNAME),
        _Def("uuid", "UUID", QFT_TEXT, "Node UUID", lambda ctx, node: node.uuid),
        _Def("pip", "PrimaryIP", QFT_TEXT, "Primary IP address",
             lambda ctx, node: node.primary_ip),
        _Def("sip", "SecondaryIP", QFT_TEXT, "Secondary IP address",
             lambda ctx, node: node.secondary_ip),
        _Def("serial_no", "SerialNo", QFT_NUMBER, "Node object serial number,"
             " incremented on each modification", lambda ctx, node: node.serial_no),
        _Def("ctime", "CTime", QFT_TIMESTAMP, "Creation timestamp",
             lambda ctx, node: node.ctime if node.ctime is not None else UNAVAIL),
        _Def("mtime", "MTime", QFT_TIMESTAMP, "Modification timestamp",
             lambda ctx, node: node.mtime if node.mtime is not None else UNAVAIL),
        _Def("tags", "Tags", QFT_OTHER, "Tags",
             lambda ctx, node: sorted(node.tags or [])),
        _Def("offline", "Offline", QFT_BOOL, "Whether node is marked offline",
             lambda ctx, node: bool(node.offline)),
        _Def("drained", "Drained", QFT_BOOL, "Whether node is drained",
             lambda ctx, node: bool(node.drained)),
        _Def("master_candidate", "MasterC", QFT_BOOL,
             "Whether node is a master candidate",
             lambda ctx, node: bool(node.master_candidate)),
        _Def("master_capable", "MasterCapable", QFT_BOOL,
             "Whether node can become a master candidate",
             lambda ctx, node: bool(node.master_capable)),
        _Def("vm_capable", "VMCapable", QFT_BOOL,
             "Whether node can host instances",
             lambda ctx, node: bool(node.vm_capable)),
        _Def("powered", "Powered", QFT_BOOL,
             "Whether node is thought to be powered on (unavailable without"
             " an out-of-band helper, oob_program)", _powered, data=NQ_CONFIG),
        _Def("master", "IsMaster", QFT_BOOL, "Whether node is master",
             lambda ctx, node: node.uuid == ctx.master_uuid, data=NQ_CONFIG),
        _Def("role", "Role", QFT_TEXT,
             "Node role; \"M\" for master, \"C\" for master candidate, \"R\" for"
             " regular, \"D\" for drained, \"O\" for offline",
             lambda ctx, node: NodeRole(node, ctx.master_uuid), data=NQ_CONFIG),
        _Def("group", "Group", QFT_TEXT, "Node group", _group_name, data=NQ_CONFIG),
        _Def("group.uuid", "GroupUUID", QFT_TEXT, "UUID of node group",
             lambda ctx, node: node.group),
        _Def("ndparams", "NodeParameters", QFT_OTHER, "Merged node parameters",
             _filled_ndparams, data=NQ_CONFIG),
        _Def("custom_ndparams", "CustomNodeParameters", QFT_OTHER,
             "Custom node parameters", lambda ctx, node: dict(node.ndparams or {})),
        _Def("hv_state", "HypervisorState", QFT_OTHER,
             "Static hypervisor state for default hypervisor only",
             lambda ctx, node: dict(node.hv_state_static or {})),
        _Def("disk_state", "DiskState", QFT_OTHER, "Static storage state",
             lambda ctx, node: dict(node.disk_state_static or {})),
        # Our extension (per-node endpoints of a virtual cluster)
        _Def("noded_address", "NodedAddress", QFT_TEXT,
             "Address the node daemon listens on",
             lambda ctx, node: node.GetNodedEndpoint()[0]),
        _Def("noded_port", "NodedPort", QFT_NUMBER, "Port of the node daemon",
             lambda ctx, node: node.GetNodedEndpoint()[1]),
        _Def("confd_port", "ConfdPort", QFT_NUMBER, "Port of the node's confd",
             lambda ctx, node: node.GetConfdEndpoint()[1]),
        # Instances
        _Def("pinst_cnt", "Pinst", QFT_NUMBER,
             "Number of instances with this node as primary",
             lambda ctx, node: len(ctx.primary.get(node.uuid, [])), data=NQ_INST),
        _Def("sinst_cnt", "Sinst", QFT_NUMBER,
             "Number of instances with this node as secondary",
             lambda ctx, node: len(ctx.secondary.get(node.uuid, [])), data=NQ_INST),
        _Def("pinst_list", "PriInstances", QFT_OTHER,
             "List of instances with this node as primary",
             lambda ctx, node: utils.NiceSort(ctx.primary.get(node.uuid, [])),
             data=NQ_INST),
        _Def("sinst_list", "SecInstances", QFT_OTHER,
             "List of instances with this node as secondary",
             lambda ctx, node: utils.NiceSort(ctx.secondary.get(node.uuid, [])),
             data=NQ_INST),
        # Live data
        _Def("bootid", "BootID", QFT_TEXT, "Random UUID renewed for each"
             " system reboot, can be used for detecting reboots",
             _live("bootid"), data=NQ_LIVE),
        _Def("cnodes", "CNodes", QFT_NUMBER, "Number of NUMA domains on node"
             " (if exported by hypervisor)", _live("cpu_nodes"), data=NQ_LIVE),
        _Def("cnos", "CNOs", QFT_NUMBER, "Number of logical processors used"
             " by the node OS (dom0 for Xen)", _live("cpu_dom0"), data=NQ_LIVE),
        _Def("csockets", "CSockets", QFT_NUMBER, "Number of physical CPU"
             " sockets (if exported by hypervisor)", _live("cpu_sockets"),
             data=NQ_LIVE),
        _Def("ctotal", "CTotal", QFT_NUMBER, "Number of logical processors",
             _live("cpu_total"), data=NQ_LIVE),
        _Def("mfree", "MFree", QFT_UNIT, "Memory available for instance"
             " allocations", _live("memory_free"), data=NQ_LIVE),
        _Def("mnode", "MNode", QFT_UNIT, "Amount of memory used by node"
             " (dom0 for Xen)", _live("memory_dom0"), data=NQ_LIVE),
        _Def("mtotal", "MTotal", QFT_UNIT, "Total amount of memory of"
             " physical machine", _live("memory_total"), data=NQ_LIVE),
        _Def("dfree", "DFree", QFT_UNIT, "Available storage space in storage"
             " unit", _live("storage_free"), data=NQ_LIVE_STORAGE),
        _Def("dtotal", "DTotal", QFT_UNIT, "Total amount of storage in storage"
             " unit", _live("storage_size"), data=NQ_LIVE_STORAGE),
    ]
    for name, title in ND_TITLES.items():
        kind = _ND_KINDS.get(constants.NDS_PARAMETER_TYPES.get(name, ""), QFT_TEXT)
        defs.append(_Def(f"ndp/{name}", title, kind,
                         f"The \"{name}\" node parameter", _ndp_getter(name),
                         data=NQ_CONFIG))
    return FieldTable(constants.QR_NODE, defs)


#: The node fields
NODE_FIELDS = _BuildFields()


def _StorageUnit(cfg: Any, cluster: Any) -> tuple[str, str] | None:
    """(storage type, key) of the default disk template's storage, or None
    when it cannot report space (as Ganeti: only plain, drbd, file,
    sharedfile)."""
    templates = list(cluster.enabled_disk_templates or [])
    if not templates:
        return None
    template = templates[0]
    if template in (constants.DT_PLAIN, constants.DT_DRBD8):
        vg_name = cluster.volume_group_name
        return (constants.ST_LVM_VG, vg_name) if vg_name else None
    if template == constants.DT_FILE:
        return constants.ST_FILE, cluster.file_storage_dir or \
            constants.DEFAULT_FILE_STORAGE_DIR
    if template == constants.DT_SHARED_FILE:
        return constants.ST_SHARED_FILE, cluster.shared_file_storage_dir or \
            constants.DEFAULT_SHARED_FILE_STORAGE_DIR
    return None


def NodeStorageKey(node_name: str, storage_type: str, key: str) -> str:
    """The storage key as that node sees it (paths move into its root in a
    virtual cluster)."""
    if storage_type in (constants.ST_FILE, constants.ST_SHARED_FILE) and \
            pathutils.IsVirtualCluster() and key.startswith("/"):
        return pathutils.ExchangeNodeRoot(node_name, pathutils.AddNodePrefix(key))
    return key


def _ParseNodeInfo(payload: Any, with_storage: bool) -> dict[str, Any] | None:
    """Flatten a node_info answer (boot ID, storage list, hypervisor list)."""
    try:
        bootid, storage, hvinfo = payload
    except (TypeError, ValueError):
        return None
    data: dict[str, Any] = {"bootid": bootid}
    if hvinfo and isinstance(hvinfo[0], dict):
        data.update(hvinfo[0])
    if with_storage:
        if storage and isinstance(storage[0], dict):
            data["storage_free"] = storage[0].get("storage_free")
            data["storage_size"] = storage[0].get("storage_size")
        else:
            data["storage_free"] = data["storage_size"] = 0
    return data


def GetRpc(context: Any) -> Any:
    """The context's RPC runner, or one made from its configuration."""
    runner = getattr(context, "rpc", None)
    if runner is None:
        from ganeti.rpc.node import RpcRunner
        runner = RpcRunner.FromConfig(context.cfg)
    return runner


def CollectLiveData(context: Any, cluster: Any, nodes: list[Any],
                    want_storage: bool) -> dict[str, Any]:
    """node UUID -> live values (a dict) or OFFLINE/NODATA."""
    from ganeti.rpc.encoding import PerNode
    live: dict[str, Any] = {}
    online = []
    for node in nodes:
        if node.offline:
            live[node.uuid] = OFFLINE
        else:
            online.append(node)
    if not online:
        return live
    hvname = (cluster.enabled_hypervisors or [constants.HT_FAKE])[0]
    hv_specs = [[hvname, dict((cluster.hvparams or {}).get(hvname, {}))]]
    unit = _StorageUnit(context.cfg, cluster) if want_storage else None
    runner = GetRpc(context)
    uuids = [node.uuid for node in online]
    storage: Any = []
    if unit is not None:
        storage = PerNode({node.uuid: [[unit[0], NodeStorageKey(node.name, *unit)]]
                           for node in online})
    # A node that has not answered by the query deadline shows no live data
    # (RS_NODATA) rather than holding up the whole answer
    results = runner.call_node_info(uuids, storage, hv_specs,
                                    read_timeout=constants.RPC_TMO_QUERY)
    retry = []
    for node in online:
        res = results.get(node.uuid)
        data = None
        if res is not None and not res.fail_msg:
            data = _ParseNodeInfo(res.payload, want_storage)
        if data is None:
            # Asked again without storage only if the node itself answered
            # (with an error): one that could not be reached would just
            # cost another deadline
            if unit is not None and res is not None and res.data is not None:
                retry.append(node.uuid)
            logging.warning("Cannot get live data of node %s: %s", node.name,
                            getattr(res, "fail_msg", "no answer"))
            live[node.uuid] = NODATA
        else:
            live[node.uuid] = data
    # A storage unit the node cannot report must not hide memory and CPUs
    if retry:
        second = runner.call_node_info(retry, [], hv_specs,
                                       read_timeout=constants.RPC_TMO_QUERY)
        for uuid in retry:
            res = second.get(uuid)
            if res is not None and not res.fail_msg:
                data = _ParseNodeInfo(res.payload, False)
                if data is not None:
                    live[uuid] = data
    return live


def _CollectNodes(query: FieldQuery, context: Any) -> tuple[NodeQueryData, list[Any]]:
    cfg = context.cfg
    all_nodes = cfg.GetAllNodesInfo()
    names = query.RequestedNames()
    if names is not None:
        nodes = [node for node in all_nodes.values()
                 if any(MatchesName(node.name, name) for name in names)]
        CheckNamesKnown(names, (node.name for node in nodes),
                        lambda missing: f"Node '{missing[0]}' not known")
    else:
        nodes = list(all_nodes.values())
    requested = query.RequestedData()
    ctx = NodeQueryData()
    ctx.cluster = cfg.GetClusterInfo()
    ctx.master_uuid = cfg.GetMasterNode()
    ctx.groups = cfg.GetAllNodeGroupsInfo()
    if NQ_INST in requested:
        for inst_uuid, inst in cfg.GetAllInstancesInfo().items():
            ctx.primary.setdefault(inst.primary_node, []).append(inst.name)
            for node_uuid in cfg.GetInstanceSecondaryNodes(inst_uuid):
                ctx.secondary.setdefault(node_uuid, []).append(inst.name)
    if NQ_LIVE in requested or NQ_LIVE_STORAGE in requested:
        ctx.live = CollectLiveData(context, ctx.cluster, nodes,
                                   NQ_LIVE_STORAGE in requested)
    return ctx, nodes


NODE_RESOURCE = RegisterResource(Resource(
    name=constants.QR_NODE, fields=NODE_FIELDS, collect=_CollectNodes,
    namefield="name", sort_key=lambda node: utils.NiceSortKey(node.name)))
