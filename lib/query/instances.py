"""The "instance" query resource: Ganeti's instance fields.

Items are the configuration's own ``objects.Instance`` objects from one
read-only snapshot (``ConfigWriter.GetReadOnlySnapshot``): copying 10,000
instances would cost seconds, and ``gnt-instance list`` must answer in well
under that. Getters therefore never change an item. Everything shared by
the rows (node names, groups, disks) is looked up once per query in
:class:`InstanceQueryData`.

Fields from the configuration cost no RPC. The live fields (``oper_state``,
``oper_ram``, ``oper_vcpus``, ``status``) come from one
``all_instances_info`` call to the primary nodes of the listed instances,
made only when such a field is selected or filtered on: an instance whose
primary node is offline gets ``RS_OFFLINE`` (status ``ERROR_nodeoffline``),
one whose node does not answer within ``constants.RPC_TMO_QUERY`` seconds
``RS_NODATA`` (``ERROR_nodedown``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from ganeti import constants, utils
from ganeti.constants import (
    QFT_BOOL,
    QFT_NUMBER,
    QFT_OTHER,
    QFT_TEXT,
    QFT_TIMESTAMP,
    QFT_UNIT,
)
from ganeti.hypervisor.base import HvInstanceState
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

#: Data kinds (``FieldDefinition.data``)
IQ_CONFIG = "config"   # nodes, groups, disks, networks (always collected)
IQ_LIVE = "live"       # all_instances_info on the primary nodes

#: Ganeti's titles of some hypervisor parameters (others: "hv/<name>")
HV_TITLES = {
    constants.HV_ACPI: "ACPI",
    constants.HV_BOOT_ORDER: "Boot_order",
    constants.HV_CDROM_IMAGE_PATH: "CDROM_image_path",
    constants.HV_DISK_TYPE: "Disk_type",
    constants.HV_INITRD_PATH: "Initrd_path",
    constants.HV_KERNEL_PATH: "Kernel_path",
    constants.HV_NIC_TYPE: "NIC_type",
    constants.HV_VNC_BIND_ADDRESS: "VNC_bind_address",
}
#: Ganeti's titles of the backend parameters
BE_TITLES = {
    constants.BE_AUTO_BALANCE: "Auto_balance",
    constants.BE_MINMEM: "ConfigMinMem",
    constants.BE_MAXMEM: "ConfigMaxMem",
    constants.BE_VCPUS: "ConfigVCPUs",
    constants.BE_ALWAYS_FAILOVER: "Always_failover",
    constants.BE_SPINDLE_USE: "ConfigSpindleUse",
}
_BE_KINDS = {"size": QFT_UNIT, "int": QFT_NUMBER, "bool": QFT_BOOL}
#: Metadata size of a DRBD disk, counted in disk_usage (MiB)
DRBD_META_SIZE = 128


@dataclass
class InstanceQueryData:
    """What the getters share, computed once per query."""

    cluster: Any = None
    nodes: dict[str, Any] = field(default_factory=dict)
    groups: dict[str, Any] = field(default_factory=dict)
    disks: dict[str, Any] = field(default_factory=dict)
    networks: dict[str, Any] = field(default_factory=dict)
    #: instance UUID -> live info dict (only instances running on their primary)
    live: dict[str, dict[str, Any]] = field(default_factory=dict)
    offline_nodes: set[str] = field(default_factory=set)
    bad_nodes: set[str] = field(default_factory=set)
    wrong_node: set[str] = field(default_factory=set)
    live_collected: bool = False
    #: Filled parameters by what they depend on (see _Memo)
    memo: dict[Any, dict[str, Any] | None] = field(default_factory=dict)

    def NodeName(self, uuid: str) -> Any:
        node = self.nodes.get(uuid)
        return node.name if node is not None else UNAVAIL

    def GroupOf(self, node_uuid: str) -> Any:
        node = self.nodes.get(node_uuid)
        return self.groups.get(node.group) if node is not None else None

    def Disks(self, inst: Any) -> list[Any]:
        disks = self.disks
        return [disks[uuid] for uuid in inst.disks if uuid in disks]

    def SecondaryNodes(self, inst: Any) -> list[str]:
        """The instance's nodes other than the primary, in order."""
        result: list[str] = []
        primary = inst.primary_node
        for disk in self.Disks(inst):
            for uuid in disk.nodes or ():
                if uuid != primary and uuid not in result:
                    result.append(uuid)
        return result


def DiskTemplate(ctx: InstanceQueryData, inst: Any) -> str:
    """The first disk's type, or diskless."""
    for uuid in inst.disks:
        disk = ctx.disks.get(uuid)
        if disk is not None:
            return disk.dev_type
    return constants.DT_DISKLESS


def DiskUsage(template: str, sizes: list[int]) -> int:
    """Space the disks take on their nodes (DRBD adds its metadata)."""
    if template == constants.DT_DRBD8:
        return sum(size + DRBD_META_SIZE for size in sizes)
    if template == constants.DT_DISKLESS:
        return 0
    return sum(sizes)


def _UserShutdownAllowed(ctx: InstanceQueryData, inst: Any) -> bool:
    """Whether a shutdown from inside counts as the user's (USER_down): the
    cluster's ``--user-shutdown`` and, for KVM, the ``user_shutdown``
    hypervisor parameter."""
    if not getattr(ctx.cluster, "enabled_user_shutdown", False):
        return False
    if inst.hypervisor != constants.HT_KVM:
        return True
    return bool(_FilledHv(ctx, inst).get(constants.HV_KVM_USER_SHUTDOWN))


def InstanceStatus(ctx: InstanceQueryData, inst: Any) -> str:
    """Ganeti's instance status (running, ADMIN_down, ERROR_up, ...)."""
    if inst.primary_node in ctx.offline_nodes:
        return constants.INSTST_NODEOFFLINE
    if inst.primary_node in ctx.bad_nodes:
        return constants.INSTST_NODEDOWN
    live = ctx.live.get(inst.uuid)
    if live is not None:
        if HvInstanceState.IsShutdown(live.get("state", HvInstanceState.RUNNING)):
            # Shut down from inside, its process kept (KVM's user_shutdown)
            if inst.admin_state != constants.ADMINST_UP:
                return constants.INSTST_ADMINDOWN
            if _UserShutdownAllowed(ctx, inst):
                return constants.INSTST_USERDOWN
            return constants.INSTST_ERRORDOWN
        if inst.admin_state == constants.ADMINST_UP:
            return constants.INSTST_RUNNING
        return constants.INSTST_ERRORUP
    if inst.uuid in ctx.wrong_node:
        return constants.INSTST_WRONGNODE
    if inst.admin_state == constants.ADMINST_UP:
        return constants.INSTST_ERRORDOWN
    if inst.admin_state == constants.ADMINST_DOWN:
        if inst.admin_state_source == constants.USER_SOURCE:
            return constants.INSTST_USERDOWN
        return constants.INSTST_ADMINDOWN
    return constants.INSTST_ADMINOFFLINE


def _NodeState(ctx: InstanceQueryData, inst: Any) -> Any:
    """OFFLINE/NODATA when the primary node gives no live data, else None."""
    if inst.primary_node in ctx.offline_nodes:
        return OFFLINE
    if inst.primary_node in ctx.bad_nodes:
        return NODATA
    return None


def _OperState(ctx: InstanceQueryData, inst: Any) -> Any:
    special = _NodeState(ctx, inst)
    return special if special is not None else inst.uuid in ctx.live


def _Live(key: str) -> Any:
    def getter(ctx: InstanceQueryData, inst: Any) -> Any:
        special = _NodeState(ctx, inst)
        if special is not None:
            return special
        data = ctx.live.get(inst.uuid)
        if data is None or data.get(key) is None:
            return UNAVAIL
        return data[key]
    return getter


# --- parameters ---------------------------------------------------------------------

def _Memo(ctx: InstanceQueryData, key: Any, params: Any,
          fill: Any) -> dict[str, Any]:
    """``fill()``, computed once per query for instances whose parameters
    are the same (most instances have none of their own): filling copies
    the cluster's defaults deeply, which dominates a bulk listing. Only
    results made of plain values (strings, numbers, booleans, None) are
    shared, so each caller's own top-level copy shares nothing mutable."""
    try:
        full_key = (key, tuple(sorted((params or {}).items())))
        hash(full_key)
    except TypeError:
        return fill()
    if full_key in ctx.memo:
        cached = ctx.memo[full_key]
        # None: the filled parameters hold lists or dicts, not shared
        return fill() if cached is None else dict(cached)
    filled = fill()
    plain = all(isinstance(value, _PLAIN) for value in filled.values())
    ctx.memo[full_key] = dict(filled) if plain else None
    return filled


_PLAIN = (str, int, float, bool, type(None))


def _FilledBe(ctx: InstanceQueryData, inst: Any) -> dict[str, Any]:
    return _Memo(ctx, "be", inst.beparams, lambda: ctx.cluster.FillBE(inst))


def _FilledHv(ctx: InstanceQueryData, inst: Any) -> dict[str, Any]:
    return _Memo(ctx, ("hv", inst.hypervisor, inst.os), inst.hvparams,
                 lambda: ctx.cluster.FillHV(inst, skip_globals=True))


def _BeGetter(name: str) -> Any:
    def getter(ctx: InstanceQueryData, inst: Any) -> Any:
        value = (inst.beparams or {}).get(name)
        if value is None:
            value = _FilledBe(ctx, inst).get(name)
        return UNAVAIL if value is None else value
    return getter


def _HvGetter(name: str) -> Any:
    def getter(ctx: InstanceQueryData, inst: Any) -> Any:
        value = _FilledHv(ctx, inst).get(name)
        return UNAVAIL if value is None else value
    return getter


# --- NICs ------------------------------------------------------------------------------

def _NicParams(ctx: InstanceQueryData, inst: Any) -> list[dict[str, Any]]:
    group = ctx.GroupOf(inst.primary_node)
    return [ctx.cluster.FillNIC(nic, group) for nic in inst.nics]


def _NicBridge(params: dict[str, Any]) -> Any:
    if params.get(constants.NIC_MODE) == constants.NIC_MODE_BRIDGED:
        return params.get(constants.NIC_LINK)
    return None


def _NetworkName(ctx: InstanceQueryData, net_uuid: Any) -> Any:
    if not net_uuid:
        return None
    net = ctx.networks.get(net_uuid)
    return net.name if net is not None else None


_NIC_ATTRS: dict[str, Any] = {
    "mac": lambda ctx, nic, params: nic.mac,
    "ip": lambda ctx, nic, params: nic.ip,
    "mode": lambda ctx, nic, params: params.get(constants.NIC_MODE),
    "link": lambda ctx, nic, params: params.get(constants.NIC_LINK),
    "bridge": lambda ctx, nic, params: _NicBridge(params),
    "vlan": lambda ctx, nic, params: params.get(constants.NIC_VLAN),
    "network": lambda ctx, nic, params: nic.network,
    "network.name": lambda ctx, nic, params: _NetworkName(ctx, nic.network),
    "name": lambda ctx, nic, params: nic.name,
    "uuid": lambda ctx, nic, params: nic.uuid,
}
_NIC_NEEDS_PARAMS = frozenset(["mode", "link", "bridge", "vlan"])

#: (attribute, list field, list title, list doc, index title, index doc, kind)
_NIC_FIELDS = [
    ("mac", "nic.macs", "NIC_MACs", "List containing each network interface's MAC"
     " address", "NicMAC", "MAC address of {n} network interface", QFT_TEXT),
    ("ip", "nic.ips", "NIC_IPs", "List containing each network interface's IP"
     " address", "NicIP", "IP address of {n} network interface", QFT_TEXT),
    ("mode", "nic.modes", "NIC_modes", "List containing each network interface's"
     " mode", "NicMode", "Mode of {n} network interface", QFT_TEXT),
    ("link", "nic.links", "NIC_links", "List containing each network interface's"
     " link", "NicLink", "Link of {n} network interface", QFT_TEXT),
    ("bridge", "nic.bridges", "NIC_bridges", "List containing each network"
     " interface's bridge", "NicBridge", "Bridge of {n} network interface", QFT_TEXT),
    ("vlan", "nic.vlans", "NIC_VLANs", "List containing each network interface's"
     " VLAN", "NicVLAN", "VLAN of {n} network interface", QFT_TEXT),
    ("network", "nic.networks", "NIC_networks", "List containing each interface's"
     " network", "NicNetwork", "Network of {n} network interface", QFT_TEXT),
    ("network.name", "nic.networks.names", "NIC_networks_names", "List containing"
     " each interface's network name", "NicNetworkName",
     "Network name of {n} network interface", QFT_TEXT),
    ("name", "nic.names", "NIC_Names", "List containing each network interface's"
     " name", "NicName", "Name of {n} network interface", QFT_TEXT),
    ("uuid", "nic.uuids", "NIC_UUIDs", "List containing each network interface's"
     " UUID", "NicUUID", "UUID of {n} network interface", QFT_TEXT),
]


def _NicListGetter(attr: str) -> Any:
    fn = _NIC_ATTRS[attr]
    if attr in _NIC_NEEDS_PARAMS:
        def getter(ctx: InstanceQueryData, inst: Any) -> Any:
            return [fn(ctx, nic, params)
                    for nic, params in zip(inst.nics, _NicParams(ctx, inst))]
    else:
        def getter(ctx: InstanceQueryData, inst: Any) -> Any:
            return [fn(ctx, nic, None) for nic in inst.nics]
    return getter


def _NicIndexGetter(attr: str, index: int) -> Any:
    fn = _NIC_ATTRS[attr]
    needs_params = attr in _NIC_NEEDS_PARAMS

    def getter(ctx: InstanceQueryData, inst: Any) -> Any:
        if index >= len(inst.nics):
            return UNAVAIL
        nic = inst.nics[index]
        params = None
        if needs_params:
            params = ctx.cluster.FillNIC(nic, ctx.GroupOf(inst.primary_node))
        return fn(ctx, nic, params)
    return getter


# --- disks -------------------------------------------------------------------------------

_DISK_ATTRS: dict[str, Any] = {
    "size": lambda disk: disk.size,
    "spindles": lambda disk: disk.spindles,
    "name": lambda disk: disk.name,
    "uuid": lambda disk: disk.uuid,
}
_DISK_FIELDS = [
    ("size", "disk.sizes", "Disk_sizes", "List containing the sizes of the"
     " disks", "Disk", "Disk size of {n} disk", QFT_UNIT),
    ("spindles", "disk.spindles", "Disk_spindles", "List containing the spindles"
     " of the disks", "DiskSpindles", "Spindles of {n} disk", QFT_NUMBER),
    ("name", "disk.names", "Disk_names", "List containing the names of the"
     " disks", "DiskName", "Name of {n} disk", QFT_TEXT),
    ("uuid", "disk.uuids", "Disk_UUIDs", "List containing the UUIDs of the"
     " disks", "DiskUUID", "UUID of {n} disk", QFT_TEXT),
]


def _DiskListGetter(attr: str) -> Any:
    fn = _DISK_ATTRS[attr]

    def getter(ctx: InstanceQueryData, inst: Any) -> Any:
        return [fn(disk) for disk in ctx.Disks(inst)]
    return getter


def _DiskIndexGetter(attr: str, index: int) -> Any:
    fn = _DISK_ATTRS[attr]

    def getter(ctx: InstanceQueryData, inst: Any) -> Any:
        if index >= len(inst.disks):
            return UNAVAIL
        disk = ctx.disks.get(inst.disks[index])
        if disk is None:
            return UNAVAIL
        value = fn(disk)
        return UNAVAIL if value is None else value
    return getter


def _Ordinal(index: int) -> str:
    return {0: "1st", 1: "2nd", 2: "3rd"}.get(index, f"{index + 1}th")


# --- the table -------------------------------------------------------------------------

def _Def(name: str, title: str, kind: str, doc: str, getter: Any,
         data: Any = None, flags: int = 0) -> FieldDefinition:
    return FieldDefinition(name, title, kind, doc, getter, flags=flags, data=data)


def _Stamp(attr: str) -> Any:
    def getter(ctx: InstanceQueryData, inst: Any) -> Any:
        value = getattr(inst, attr)
        return UNAVAIL if value is None else value
    return getter


def _SNodeGroups(ctx: InstanceQueryData, inst: Any, attr: str) -> list[Any]:
    result = []
    for uuid in ctx.SecondaryNodes(inst):
        group = ctx.GroupOf(uuid)
        result.append(getattr(group, attr) if group is not None else None)
    return result


def _PGroup(attr: str) -> Any:
    def getter(ctx: InstanceQueryData, inst: Any) -> Any:
        group = ctx.GroupOf(inst.primary_node)
        return UNAVAIL if group is None else getattr(group, attr)
    return getter


def _AllHvParams() -> list[str]:
    names: set[str] = set()
    for params in constants.HVC_DEFAULTS.values():
        names.update(params)
    # Global parameters are the cluster's, not the instance's (as Ganeti)
    return sorted(names - constants.HVC_GLOBALS)


def _BuildFields() -> FieldTable:
    defs = [
        _Def("name", "Instance", QFT_TEXT, "Instance name",
             lambda ctx, inst: inst.name, flags=QFF_HOSTNAME),
        _Def("uuid", "UUID", QFT_TEXT, "Instance UUID", lambda ctx, inst: inst.uuid),
        _Def("os", "OS", QFT_TEXT, "Operating system", lambda ctx, inst: inst.os),
        _Def("hypervisor", "Hypervisor", QFT_TEXT, "Hypervisor name",
             lambda ctx, inst: inst.hypervisor),
        _Def("pnode", "Primary_node", QFT_TEXT, "Primary node",
             lambda ctx, inst: ctx.NodeName(inst.primary_node), IQ_CONFIG),
        _Def("pnode.group", "PrimaryNodeGroup", QFT_TEXT,
             "Primary node's group", _PGroup("name"), IQ_CONFIG),
        _Def("pnode.group.uuid", "PrimaryNodeGroupUUID", QFT_TEXT,
             "Primary node's group UUID", _PGroup("uuid"), IQ_CONFIG),
        _Def("snodes", "Secondary_Nodes", QFT_OTHER, "Secondary nodes; usually this"
             " will just be one node",
             lambda ctx, inst: [ctx.NodeName(uuid) for uuid in ctx.SecondaryNodes(inst)],
             IQ_CONFIG),
        _Def("snodes.group", "SecondaryNodesGroups", QFT_OTHER,
             "Node groups of secondary nodes",
             lambda ctx, inst: _SNodeGroups(ctx, inst, "name"), IQ_CONFIG),
        _Def("snodes.group.uuid", "SecondaryNodesGroupsUUID", QFT_OTHER,
             "Node group UUIDs of secondary nodes",
             lambda ctx, inst: _SNodeGroups(ctx, inst, "uuid"), IQ_CONFIG),
        _Def("admin_state", "InstanceState", QFT_TEXT,
             "Desired state of the instance",
             lambda ctx, inst: inst.admin_state),
        _Def("admin_up", "Autostart", QFT_BOOL,
             "Desired state of the instance; if true the instance is marked as"
             " running and the watcher starts it",
             lambda ctx, inst: inst.admin_state == constants.ADMINST_UP),
        _Def("admin_state_source", "InstanceStateSource", QFT_TEXT,
             "Who last changed the desired state of the instance",
             lambda ctx, inst: inst.admin_state_source),
        _Def("disks_active", "DisksActive", QFT_BOOL,
             "Desired state of the instance disks",
             lambda ctx, inst: bool(inst.disks_active)),
        _Def("forthcoming", "Forthcoming", QFT_BOOL,
             "Whether the instance is forthcoming",
             lambda ctx, inst: bool(inst.forthcoming)),
        _Def("tags", "Tags", QFT_OTHER, "Tags",
             lambda ctx, inst: sorted(inst.tags or ())),
        _Def("network_port", "Network_port", QFT_OTHER,
             "Instance network port if available (e.g. for VNC console)",
             lambda ctx, inst: inst.network_port),
        _Def("serial_no", "SerialNo", QFT_NUMBER,
             "Instance object serial number, incremented on each modification",
             lambda ctx, inst: inst.serial_no),
        _Def("ctime", "CTime", QFT_TIMESTAMP, "Creation timestamp", _Stamp("ctime")),
        _Def("mtime", "MTime", QFT_TIMESTAMP, "Modification timestamp",
             _Stamp("mtime")),
        _Def("disk_template", "Disk_template", QFT_TEXT, "Instance disk template",
             DiskTemplate, IQ_CONFIG),
        _Def("disk_usage", "DiskUsage", QFT_UNIT, "Total disk space used by"
             " instance on each of its nodes; this is not the disk size visible"
             " to the instance, but the usage on the node",
             lambda ctx, inst: DiskUsage(DiskTemplate(ctx, inst),
                                         [d.size for d in ctx.Disks(inst)]),
             IQ_CONFIG),
        _Def("disk.count", "Disks", QFT_NUMBER, "Number of disks",
             lambda ctx, inst: len(inst.disks)),
        _Def("nic.count", "NICs", QFT_NUMBER, "Number of network interfaces",
             lambda ctx, inst: len(inst.nics)),
        _Def("beparams", "BackendParameters", QFT_OTHER, "Backend parameters"
             " (merged)", _FilledBe, IQ_CONFIG),
        _Def("custom_beparams", "CustomBackendParameters", QFT_OTHER,
             "Custom backend parameters", lambda ctx, inst: dict(inst.beparams or {})),
        _Def("hvparams", "HypervisorParameters", QFT_OTHER, "Hypervisor parameters"
             " (merged)", _FilledHv, IQ_CONFIG),
        _Def("custom_hvparams", "CustomHypervisorParameters", QFT_OTHER,
             "Custom hypervisor parameters",
             lambda ctx, inst: dict(inst.hvparams or {})),
        _Def("osparams", "OpSysParameters", QFT_OTHER, "Operating system"
             " parameters (merged)",
             lambda ctx, inst: ctx.cluster.FillOS(inst.os, inst.osparams or {}),
             IQ_CONFIG),
        _Def("custom_osparams", "CustomOpSysParameters", QFT_OTHER,
             "Custom operating system parameters",
             lambda ctx, inst: dict(inst.osparams or {})),
        _Def("custom_nicparams", "CustomNicParameters", QFT_OTHER,
             "Custom network interface parameters",
             lambda ctx, inst: [dict(nic.nicparams or {}) for nic in inst.nics]),
        # Live data
        _Def("oper_state", "Running", QFT_BOOL, "Actual state of instance",
             _OperState, IQ_LIVE),
        _Def("oper_ram", "Memory", QFT_UNIT, "Actual memory usage as seen by"
             " hypervisor", _Live("memory"), IQ_LIVE),
        _Def("oper_vcpus", "VCPUs", QFT_NUMBER, "Actual number of VCPUs as seen"
             " by hypervisor", _Live("vcpus"), IQ_LIVE),
        _Def("status", "Status", QFT_TEXT, "Instance status; \"running\" if"
             " instance is set to be running and actually is, \"ADMIN_down\" if"
             " instance is stopped and is not running, \"ERROR_up\" if instance"
             " should be stopped but is running, \"ERROR_down\" if instance"
             " should run but is down, \"ERROR_nodedown\" or"
             " \"ERROR_nodeoffline\" if the primary node is down or offline,"
             " \"ERROR_wrongnode\" if the instance runs on another node,"
             " \"USER_down\" if the user shut it down, \"ADMIN_offline\" if"
             " it is offline", InstanceStatus, IQ_LIVE),
    ]
    for name in sorted(constants.BES_PARAMETER_TYPES):
        kind = _BE_KINDS.get(constants.BES_PARAMETER_TYPES[name], QFT_OTHER)
        defs.append(_Def(f"be/{name}", BE_TITLES.get(name, f"be/{name}"), kind,
                         f"The \"{name}\" backend parameter", _BeGetter(name),
                         IQ_CONFIG))
    for name in _AllHvParams():
        defs.append(_Def(f"hv/{name}", HV_TITLES.get(name, f"hv/{name}"),
                         QFT_OTHER, f"The \"{name}\" hypervisor parameter",
                         _HvGetter(name), IQ_CONFIG))
    for attr, lname, ltitle, ldoc, ititle, idoc, kind in _NIC_FIELDS:
        defs.append(_Def(lname, ltitle, QFT_OTHER, ldoc, _NicListGetter(attr),
                         IQ_CONFIG))
        for index in range(constants.MAX_NICS):
            doc = idoc.format(n=_Ordinal(index))
            defs.append(_Def(f"nic.{attr}/{index}", f"{ititle}/{index}", kind,
                             doc[0].upper() + doc[1:], _NicIndexGetter(attr, index),
                             IQ_CONFIG))
    for attr, lname, ltitle, ldoc, ititle, idoc, kind in _DISK_FIELDS:
        defs.append(_Def(lname, ltitle, QFT_OTHER, ldoc, _DiskListGetter(attr),
                         IQ_CONFIG))
        for index in range(constants.MAX_DISKS):
            doc = idoc.format(n=_Ordinal(index))
            defs.append(_Def(f"disk.{attr}/{index}", f"{ititle}/{index}", kind,
                             doc[0].upper() + doc[1:], _DiskIndexGetter(attr, index),
                             IQ_CONFIG))
    aliases = [
        ("vcpus", "be/vcpus"), ("be/memory", "be/maxmem"),
        ("sda_size", "disk.size/0"), ("sdb_size", "disk.size/1"),
        ("ip", "nic.ip/0"), ("mac", "nic.mac/0"), ("bridge", "nic.bridge/0"),
        ("nic_mode", "nic.mode/0"), ("nic_link", "nic.link/0"),
        ("nic_network", "nic.network/0"),
    ]
    return FieldTable(constants.QR_INSTANCE, defs, aliases)


#: The instance fields
INSTANCE_FIELDS = _BuildFields()


# --- collecting --------------------------------------------------------------------------

def _GetRpc(context: Any) -> Any:
    runner = getattr(context, "rpc", None)
    if runner is None:
        from ganeti.rpc.node import RpcRunner
        runner = RpcRunner.FromConfig(context.cfg)
    return runner


def CollectLiveData(context: Any, ctx: InstanceQueryData, instances: list[Any],
                    by_name: dict[str, Any]) -> None:
    """Ask the primary nodes of ``instances`` what runs; fill ``ctx``."""
    ctx.live_collected = True
    primaries = {inst.primary_node for inst in instances}
    online = []
    for uuid in sorted(primaries):
        node = ctx.nodes.get(uuid)
        if node is None:
            ctx.bad_nodes.add(uuid)
        elif node.offline:
            ctx.offline_nodes.add(uuid)
        else:
            online.append(uuid)
    if not online:
        return
    cluster = ctx.cluster
    hv_list = list(cluster.enabled_hypervisors or [constants.HT_FAKE])
    all_hvparams = {hv: dict((cluster.hvparams or {}).get(hv, {})) for hv in hv_list}
    # A node that has not answered by the query deadline counts as down
    results = _GetRpc(context).call_all_instances_info(
        online, hv_list, all_hvparams, read_timeout=constants.RPC_TMO_QUERY)
    for node_uuid in online:
        res = results.get(node_uuid)
        if res is None or res.fail_msg or not isinstance(res.payload, dict):
            logging.warning("Cannot get the instances of node %s: %s",
                            ctx.NodeName(node_uuid), getattr(res, "fail_msg", "no answer"))
            ctx.bad_nodes.add(node_uuid)
            continue
        for name, info in res.payload.items():
            inst = by_name.get(name)
            if inst is None:
                continue
            if inst.primary_node == node_uuid:
                ctx.live[inst.uuid] = info if isinstance(info, dict) else {}
            else:
                ctx.wrong_node.add(inst.uuid)


def _SelectByName(instances: dict[str, Any], names: list[Any]) -> list[Any]:
    result = [inst for inst in instances.values()
              if any(MatchesName(inst.name, name) for name in names)]
    CheckNamesKnown(names, (inst.name for inst in result),
                    lambda missing: f"Instance '{missing[0]}' not known")
    return result


def CollectInstances(query: FieldQuery, context: Any
                     ) -> tuple[InstanceQueryData, list[Any]]:
    """The collector of the "instance" resource."""
    snap = context.cfg.GetReadOnlySnapshot()
    names = query.RequestedNames()
    if names is not None:
        instances = _SelectByName(snap.instances, names)
    else:
        instances = list(snap.instances.values())
    ctx = InstanceQueryData(cluster=snap.cluster, nodes=snap.nodes,
                            groups=snap.nodegroups, disks=snap.disks,
                            networks=snap.networks)
    if IQ_LIVE in query.RequestedData() and instances:
        by_name = {inst.name: inst for inst in snap.instances.values()}
        CollectLiveData(context, ctx, instances, by_name)
    return ctx, instances


INSTANCE_RESOURCE = RegisterResource(Resource(
    name=constants.QR_INSTANCE, fields=INSTANCE_FIELDS, collect=CollectInstances,
    namefield="name", sort_key=lambda inst: utils.NiceSortKey(inst.name)))
