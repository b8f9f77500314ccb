"""Storage LUs of nodes: ``gnt-node volumes``, ``list-storage``,
``modify-storage`` and ``repair-storage``.

The node does the work (:mod:`ganeti.backend.storage`, storage units of
:mod:`ganeti.storage.container` and :mod:`ganeti.storage.lvm`); these LUs
check the request, lock the nodes (shared to read, exclusively to change)
and put the answers together as Ganeti does:

- :class:`LUNodeQueryvols`: every logical volume of the nodes, once per
  physical volume it uses, with the instance owning it (from the disks'
  ``logical_id``, DRBD children included) or "-"; values are strings;
- :class:`LUNodeQueryStorage`: the storage units of one type (by default
  that of the cluster's first enabled disk template), sorted by node and
  unit name; ``node`` and ``type`` are filled in here;
- :class:`LUNodeModifyStorage`: only the fields of
  ``constants.MODIFIABLE_STORAGE_FIELDS`` (an LVM PV's ``allocatable``);
- :class:`LURepairNodeStorage`: the operations of
  ``constants.VALID_STORAGE_OPERATIONS`` (``vgreduce --removemissing`` on
  a volume group), refused while an instance using the node has faulty
  disks on its other nodes, unless ``ignore_consistency``.

Offline nodes are left out of queries (with a warning when named) and
refused for changes.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ganeti import constants, errors, locking, objects, utils
from ganeti.cmdlib.base import FeedbackFn, NoHooksLU
from ganeti.cmdlib.node import ExpandNode
from ganeti.storage import base as storage_base

# Fields of "gnt-node volumes" (Ganeti's VF_*)
VF_NODE = "node"
VF_PHYS = "phys"
VF_VG = "vg"
VF_NAME = "name"
VF_SIZE = "size"
VF_INSTANCE = "instance"
VALID_VOLUME_FIELDS = frozenset([VF_NODE, VF_PHYS, VF_VG, VF_NAME, VF_SIZE,
                                 VF_INSTANCE])

#: Storage types whose units the nodes can list
LISTABLE_STORAGE_TYPES = frozenset([constants.ST_LVM_VG, constants.ST_LVM_PV,
                                    constants.ST_FILE, constants.ST_SHARED_FILE])


def _CheckFields(fields: list[str], valid: frozenset[str]) -> None:
    unknown = [field for field in fields if field not in valid]
    if unknown:
        raise errors.OpPrereqError(
            f"Unknown output field(s) selected: {', '.join(unknown)} (valid:"
            f" {', '.join(sorted(valid))})", errors.ECODE_INVAL)


def _StorageArgs(storage_type: str) -> list[Any]:
    """The arguments of the node's unit class: none, each node knows its
    volume groups and maps the cluster's storage directories itself."""
    return []


def _StorageTemplates(storage_type: str) -> list[str]:
    return sorted(template for template, stype
                  in constants.MAP_DISK_TEMPLATE_STORAGE_TYPE.items()
                  if stype == storage_type)


def CheckStorageTypeEnabled(cluster: objects.Cluster, storage_type: str) -> None:
    """OpPrereqError (ECODE_STATE) unless a disk template of ``storage_type``
    is enabled (for LVM PVs: one using volume groups)."""
    if storage_type == constants.ST_LVM_PV:
        storage_type = constants.ST_LVM_VG
    templates = _StorageTemplates(storage_type)
    if not set(templates) & set(cluster.enabled_disk_templates or []):
        raise errors.OpPrereqError(
            f"Storage type '{storage_type}' is not enabled in this cluster: enable"
            f" one of its disk templates ({', '.join(templates)})", errors.ECODE_STATE)


def _CheckName(name: str | None, storage_type: str) -> str:
    if not name:
        raise errors.OpPrereqError(f"The name of the {storage_type} storage unit is"
                                   " required", errors.ECODE_INVAL)
    return name


def _CheckOnline(node: objects.Node, action: str) -> None:
    if node.offline:
        raise errors.OpPrereqError(f"Node {node.name} is offline, cannot {action}",
                                   errors.ECODE_STATE)


class _QueryNodesLU(NoHooksLU):
    """A query of the named nodes (all without names), under shared locks."""

    REQ_BGL = False
    cfg: Any

    def ExpandNames(self) -> None:
        """Resolve the node names; lock those nodes (or all), shared."""
        self.share_locks = dict.fromkeys(locking.LEVELS, 1)
        if self.op.nodes:
            self.wanted = sorted({ExpandNode(self.cfg, name).uuid for name in self.op.nodes})
            self.needed_locks = {locking.LEVEL_NODE: self.wanted}
        else:
            self.wanted = []
            self.needed_locks = {locking.LEVEL_NODE: locking.ALL_SET}

    def _Nodes(self) -> list[objects.Node]:
        """The nodes to ask (by name), leaving out offline ones."""
        uuids = self.wanted or (self.owned_locks(locking.LEVEL_NODE)
                                or self.cfg.GetNodeList())
        nodes = [node for node in (self.cfg.GetNodeInfo(uuid) for uuid in uuids)
                 if node is not None]
        for node in nodes:
            if node.offline and self.wanted:
                self.LogWarning(f"Node {node.name} is offline, skipping it")
        return utils.NiceSort([node for node in nodes if not node.offline],
                              key=lambda node: node.name)


# --- gnt-node volumes ----------------------------------------------------------------------

def _DiskLvs(disk: objects.Disk, nodes: list[str]) -> Iterator[tuple[str, str]]:
    """(node UUID, "vg/lv") of every logical volume of a disk tree."""
    if disk.dev_type == constants.DT_DRBD8 and len(disk.logical_id or ()) >= 2:
        nodes = [disk.logical_id[0], disk.logical_id[1]]
    elif disk.dev_type == constants.DT_PLAIN and len(disk.logical_id or ()) == 2:
        for node in nodes:
            yield node, f"{disk.logical_id[0]}/{disk.logical_id[1]}"
    for child in disk.children or []:
        yield from _DiskLvs(child, nodes)


def MapLvsToInstances(cfg: Any) -> dict[tuple[str, str], str]:
    """{(node UUID, "vg/lv"): instance name} of every instance's volumes."""
    result = {}
    for inst in cfg.GetAllInstancesInfo().values():
        for disk in cfg.GetInstanceDisks(inst.uuid):
            nodes = list(disk.nodes or []) or [inst.primary_node]
            for key in _DiskLvs(disk, nodes):
                result[key] = inst.name
    return result


class LUNodeQueryvols(_QueryNodesLU):
    """List the logical volumes of nodes with their PVs and instances."""

    def CheckArguments(self) -> None:
        """Only the volume fields."""
        _CheckFields(self.op.output_fields, VALID_VOLUME_FIELDS)

    def Exec(self, feedback_fn: FeedbackFn) -> list[list[str]]:
        """Ask the nodes (node_volumes); a failing node is a warning."""
        nodes = self._Nodes()
        if not nodes:
            return []
        answers = self.rpc.call_node_volumes([node.uuid for node in nodes])
        owners = MapLvsToInstances(self.cfg)
        output = []
        for node in nodes:
            result = answers[node.uuid]
            if result.fail_msg:
                self.LogWarning(f"Can't compute volume data on node {node.name}:"
                                f" {result.fail_msg}")
                continue
            volumes = sorted(result.payload or [],
                             key=lambda vol: (vol["dev"], vol["vg"], vol["name"]))
            for vol in volumes:
                values = {
                    VF_NODE: node.name, VF_PHYS: vol["dev"], VF_VG: vol["vg"],
                    VF_NAME: vol["name"], VF_SIZE: int(float(vol["size"])),
                    VF_INSTANCE: owners.get((node.uuid, f"{vol['vg']}/{vol['name']}"),
                                            "-"),
                }
                output.append([str(values[field]) for field in self.op.output_fields])
        return output


# --- gnt-node list-storage ---------------------------------------------------------------

class LUNodeQueryStorage(_QueryNodesLU):
    """List the storage units of one type on nodes."""

    def CheckArguments(self) -> None:
        """Only storage fields."""
        _CheckFields(self.op.output_fields, constants.VALID_STORAGE_FIELDS)

    def CheckPrereq(self) -> None:
        """The storage type (default: the first enabled template's) must be
        listable and enabled."""
        cluster = self.cfg.GetClusterInfo()
        storage_type = self.op.storage_type
        if storage_type is None:
            templates = cluster.enabled_disk_templates or []
            storage_type = constants.MAP_DISK_TEMPLATE_STORAGE_TYPE[templates[0]] \
                if templates else constants.ST_LVM_VG
            if storage_type not in LISTABLE_STORAGE_TYPES:
                raise errors.OpPrereqError(
                    f"The default storage type of this cluster ('{storage_type}', of"
                    f" disk template {templates[0]}) has no storage units to list;"
                    " choose one of"
                    f" {', '.join(sorted(LISTABLE_STORAGE_TYPES))}", errors.ECODE_INVAL)
        elif storage_type not in LISTABLE_STORAGE_TYPES:
            raise errors.OpPrereqError(
                f"Storage units of type '{storage_type}' cannot be listed (listable:"
                f" {', '.join(sorted(LISTABLE_STORAGE_TYPES))})", errors.ECODE_INVAL)
        CheckStorageTypeEnabled(cluster, storage_type)
        self.storage_type = storage_type

    def Exec(self, feedback_fn: FeedbackFn) -> list[list[Any]]:
        """Ask the nodes (storage_list); a failing node is a warning."""
        nodes = self._Nodes()
        if not nodes:
            return []
        # The nodes do not know "node"; "type" is ours; "name" sorts
        fields = [constants.SF_NAME] + [
            field for field in self.op.output_fields
            if field not in (constants.SF_NODE, constants.SF_TYPE, constants.SF_NAME)]
        answers = self.rpc.call_storage_list(
            [node.uuid for node in nodes], self.storage_type,
            _StorageArgs(self.storage_type), self.op.name, fields)
        output = []
        for node in nodes:
            result = answers[node.uuid]
            if result.fail_msg:
                self.LogWarning(f"Can't get storage data from node {node.name}:"
                                f" {result.fail_msg}")
                continue
            rows = {row[0]: row for row in result.payload or []}
            for name in utils.NiceSort(rows):
                values = dict(zip(fields, rows[name]))
                values[constants.SF_NODE] = node.name
                values[constants.SF_TYPE] = self.storage_type
                output.append([values[field] for field in self.op.output_fields])
        return output


# --- gnt-node modify-storage / repair-storage ------------------------------------------------

class _NodeStorageChangeLU(NoHooksLU):
    """A change to one storage unit of one node, under its node lock."""

    REQ_BGL = False
    cfg: Any

    def ExpandNames(self) -> None:
        """Resolve the node; lock it exclusively."""
        self.node = ExpandNode(self.cfg, self.op.node_name)
        self.op.node_uuid, self.op.node_name = self.node.uuid, self.node.name
        self.needed_locks = {locking.LEVEL_NODE: [self.node.uuid]}


class LUNodeModifyStorage(_NodeStorageChangeLU):
    """Change fields of a storage unit (an LVM PV's ``allocatable``)."""

    def CheckArguments(self) -> None:
        """Only modifiable types and fields, with a unit name."""
        storage_type = self.op.storage_type
        modifiable = constants.MODIFIABLE_STORAGE_FIELDS.get(storage_type)
        if modifiable is None:
            raise errors.OpPrereqError(
                f"Storage units of type '{storage_type}' can not be modified (only"
                f" {', '.join(sorted(constants.MODIFIABLE_STORAGE_FIELDS))})",
                errors.ECODE_INVAL)
        unknown = sorted(set(self.op.changes) - modifiable)
        if unknown:
            raise errors.OpPrereqError(
                f"The following fields can not be modified for storage units of type"
                f" '{storage_type}': {', '.join(unknown)} (modifiable:"
                f" {', '.join(sorted(modifiable))})", errors.ECODE_INVAL)
        if not self.op.changes:
            raise errors.OpPrereqError("No changes requested", errors.ECODE_INVAL)
        allocatable = self.op.changes.get(constants.SF_ALLOCATABLE)
        if constants.SF_ALLOCATABLE in self.op.changes and \
                not isinstance(allocatable, bool):
            raise errors.OpPrereqError(
                f"Invalid value {allocatable!r} for {constants.SF_ALLOCATABLE}:"
                " expected a boolean", errors.ECODE_INVAL)
        _CheckName(self.op.name, storage_type)

    def CheckPrereq(self) -> None:
        """The node is online and the storage type enabled."""
        _CheckOnline(self.node, "modify its storage")
        CheckStorageTypeEnabled(self.cfg.GetClusterInfo(), self.op.storage_type)

    def Exec(self, feedback_fn: FeedbackFn) -> None:
        """storage_modify on the node."""
        result = self.rpc.call_storage_modify(
            [self.node.uuid], self.op.storage_type,
            _StorageArgs(self.op.storage_type), self.op.name,
            self.op.changes)[self.node.uuid]
        result.Raise(f"Failed to modify storage unit '{self.op.name}' on"
                     f" {self.node.name}")


class LURepairNodeStorage(_NodeStorageChangeLU):
    """Repair a storage unit (remove the missing PVs of a volume group)."""

    def CheckArguments(self) -> None:
        """Only repairable types, with a unit name."""
        storage_type = self.op.storage_type
        if constants.SO_FIX_CONSISTENCY not in \
                constants.VALID_STORAGE_OPERATIONS.get(storage_type, ()):
            repairable = sorted(stype for stype, ops
                                in constants.VALID_STORAGE_OPERATIONS.items()
                                if constants.SO_FIX_CONSISTENCY in ops)
            raise errors.OpPrereqError(
                f"Storage units of type '{storage_type}' can not be repaired (only"
                f" {', '.join(repairable)})", errors.ECODE_INVAL)
        _CheckName(self.op.name, storage_type)

    def _CheckFaultyDisks(self, inst: objects.Instance, node_uuid: str) -> None:
        """OpPrereqError (ECODE_STATE) if the instance's disks are faulty on
        the node; only a warning with ignore_consistency."""
        node_name = self.cfg.GetNodeName(node_uuid)
        try:
            disks = self.cfg.GetInstanceDisks(inst.uuid)
            result = self.rpc.call_blockdev_getmirrorstatus(node_uuid, disks)
            result.Raise(f"Failed to get the disk status of instance {inst.name} from"
                         f" node {node_name}", prereq=True, ecode=errors.ECODE_ENVIRON)
            for status in result.payload or []:
                if objects.BlockDevStatus.FromDict(status).ldisk_status == \
                        storage_base.LDS_FAULTY:
                    raise errors.OpPrereqError(
                        f"Instance '{inst.name}' has faulty disks on node"
                        f" '{node_name}'", errors.ECODE_STATE)
        except errors.OpPrereqError as err:
            if not self.op.ignore_consistency:
                raise
            self.LogWarning(str(err.args[0]))

    def CheckPrereq(self) -> None:
        """Online node, enabled type; the disks of the instances using the
        node must be sound on their other nodes (a repair may remove
        volumes)."""
        _CheckOnline(self.node, "repair its storage")
        CheckStorageTypeEnabled(self.cfg.GetClusterInfo(), self.op.storage_type)
        primary, secondary = self.cfg.GetNodeInstances(self.node.uuid)
        for inst_uuid in primary + secondary:
            inst = self.cfg.GetInstanceInfo(inst_uuid)
            if inst is None or not inst.disks_active:
                continue
            for other in self.cfg.GetInstanceNodes(inst_uuid):
                other_node = self.cfg.GetNodeInfo(other)
                if other != self.node.uuid and other_node is not None and \
                        not other_node.offline:
                    self._CheckFaultyDisks(inst, other)

    def Exec(self, feedback_fn: FeedbackFn) -> None:
        """storage_execute fix-consistency on the node; report its output."""
        feedback_fn(f"Repairing storage unit '{self.op.name}' on {self.node.name} ...")
        result = self.rpc.call_storage_execute(
            [self.node.uuid], self.op.storage_type,
            _StorageArgs(self.op.storage_type), self.op.name,
            constants.SO_FIX_CONSISTENCY)[self.node.uuid]
        result.Raise(f"Failed to repair storage unit '{self.op.name}' on"
                     f" {self.node.name}")
        for line in result.payload or []:
            feedback_fn(f"  {line}")
