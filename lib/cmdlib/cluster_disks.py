"""The instances' disks seen from the whole cluster: the LVM and DRBD part
of ``gnt-cluster verify``, ``gnt-cluster verify-disks`` and
``gnt-cluster repair-disk-sizes``.

:class:`GroupStorageVerify` is the storage half of a node group's
verification (``LUClusterVerifyGroup`` runs it). The nodes answer
``node_verify`` with their volume groups, the logical volumes of the
volume groups instances use, the physical volumes of the cluster's volume
group, the DRBD minors in use and the DRBD usermode helper; the master
reports, with Ganeti's error codes:

- ``ENODELVM``: a node without the cluster's volume group, one smaller
  than ``constants.MIN_VG_SIZE``, a physical volume whose name holds ":"
  or that is missing, with exclusive storage physical volumes of too
  different sizes, or a node whose LVM cannot be read;
- ``EINSTANCEMISSINGDISK``: an instance's logical volume missing on its
  node ("volume xenvg/... missing on node ...");
- ``ENODEORPHANLV`` (a warning): a logical volume in the cluster's volume
  group that no instance's disk owns and no ``reserved_lvs`` pattern
  matches;
- ``ENODEDRBD``: a DRBD minor in use that the configuration does not
  allocate, or an allocated one not in use although its instance's disks
  are active; ``ENODEDRBDHELPER``: a usermode helper other than the
  cluster's ``drbd_usermode_helper``;
- ``EINSTANCEFAULTYDISK``: a DRBD or plain disk of an instance whose disks
  are active that a node cannot give the status of, or that is degraded
  there (an error when the node's own copy is not healthy, a warning
  when only the peer's is, or while it resyncs).

Verification takes no locks: the configuration is read before and after
the nodes answer, and only what both readings agree on is reported (an
instance created or removed meanwhile is neither an orphan nor missing).

:class:`LUGroupVerifyDisks` returns Ganeti's triple for the watcher and
``gnt-cluster verify-disks``; :class:`LUClusterRepairDiskSizes` corrects
recorded disk sizes from the primary nodes.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ganeti import constants, errors, locking, objects, utils
from ganeti.cmdlib import instance_utils as iu
from ganeti.cmdlib.base import FeedbackFn
from ganeti.cmdlib.cluster import ClusterLU
from ganeti.rpc.encoding import PerNode
from ganeti.storage import base as storage_base

#: Local disk states in messages (Ganeti's names)
_LDS_NAMES = {storage_base.LDS_OKAY: "ok", storage_base.LDS_UNKNOWN: "unknown",
              storage_base.LDS_FAULTY: "faulty"}
#: With exclusive storage, how much smaller than the largest a node's
#: physical volumes may be (fraction of the largest)
PV_SIZE_TOLERANCE = 0.05
#: Disk types whose status verify asks the nodes for (the mirrored and
#: LVM ones; file disks are covered by the orphan file check)
_STATUS_TYPES = frozenset([constants.DT_DRBD8, constants.DT_PLAIN])


# --- what the configuration says the nodes hold -----------------------------------------------

def _TreeLvs(disk: objects.Disk, node_uuids: list[str]) -> Iterator[tuple[str, str]]:
    """(node UUID, "vg/lv") of every logical volume in a disk tree; a DRBD
    disk's volumes live on both its nodes."""
    lid = disk.logical_id or ()
    if disk.dev_type == constants.DT_DRBD8 and len(lid) == 6:
        node_uuids = [lid[0], lid[1]]
    elif disk.dev_type == constants.DT_PLAIN and len(lid) == 2:
        for node_uuid in node_uuids:
            yield node_uuid, f"{lid[0]}/{lid[1]}"
    for child in disk.children or []:
        yield from _TreeLvs(child, node_uuids)


def InstanceLvs(snapshot: Any, inst: objects.Instance) -> list[tuple[str, str]]:
    """(node UUID, "vg/lv") of the logical volumes of an instance's disks."""
    result: list[tuple[str, str]] = []
    for disk_uuid in inst.disks:
        disk = snapshot.disks.get(disk_uuid)
        if disk is not None:
            result.extend(_TreeLvs(disk, [inst.primary_node]))
    return result


def _UsesLvm(snapshot: Any) -> bool:
    return any(disk.IsBasedOnDiskType(constants.DT_PLAIN)
               for disk in snapshot.disks.values())


def _UsesDrbd(snapshot: Any) -> bool:
    return any(disk.dev_type == constants.DT_DRBD8 for disk in snapshot.disks.values())


@dataclass
class DiskExpectations:
    """What the configuration expects on the nodes at one moment."""

    #: node UUID -> {"vg/lv": name of the instance owning it}
    lvs: dict[str, dict[str, str]] = field(default_factory=dict)
    #: node UUID -> {minor: (disk UUID, instance name or None, must be in use)}
    minors: dict[str, dict[int, tuple[str, str | None, bool]]] = \
        field(default_factory=dict)
    #: why the DRBD minors could not be computed, if they could not
    minors_error: str | None = None

    @classmethod
    def FromConfig(cls, cfg: Any) -> DiskExpectations:
        """Read the expectations from the configuration (``cfg``)."""
        snapshot = cfg.GetReadOnlySnapshot()
        result = cls()
        owners: dict[str, objects.Instance] = {}
        for inst in snapshot.instances.values():
            for node_uuid, lv_name in InstanceLvs(snapshot, inst):
                result.lvs.setdefault(node_uuid, {})[lv_name] = inst.name
            for disk_uuid in inst.disks:
                owners[disk_uuid] = inst
        # A detached disk keeps its volumes: they are no orphans
        for disk_uuid, disk in snapshot.disks.items():
            if disk_uuid not in owners and disk.nodes:
                for node_uuid, lv_name in _TreeLvs(disk, list(disk.nodes[:1])):
                    result.lvs.setdefault(node_uuid, {})[lv_name] = \
                        f"detached disk {disk.name or disk_uuid}"
        try:
            drbd_map = cfg.ComputeDRBDMap()
        except errors.ConfigurationError as err:
            result.minors_error = str(err)
            return result
        for node_uuid, minors in drbd_map.items():
            node_minors = result.minors.setdefault(node_uuid, {})
            for minor, disk_uuid in minors.items():
                inst = owners.get(disk_uuid)
                active = inst is not None and bool(inst.disks_active) and \
                    not inst.forthcoming
                node_minors[minor] = (disk_uuid, inst.name if inst else None, active)
        return result


# --- gnt-cluster verify: the storage part of a group's verification ----------------------------

class GroupStorageVerify:
    """The LVM and DRBD checks of one node group (see the module doc).

    The verification LU calls :meth:`Checks` for the ``node_verify``
    parameters, :meth:`Expect` right before and right after the call,
    :meth:`VerifyNode` with each answer and finally
    :meth:`VerifyInstances`. Problems are reported through the LU's
    ``_Error`` (``lu._Error(ecode, item, msg, code=...)``).
    """

    def __init__(self, lu: Any, group_uuid: str) -> None:
        self.lu = lu
        self.cfg = lu.cfg
        self.group_uuid = group_uuid
        cluster = self.cfg.GetClusterInfo()
        snapshot = self.cfg.GetReadOnlySnapshot()
        lvm_used = any(cluster.IsDiskTemplateEnabled(t) for t in constants.DTS_LVM) \
            or _UsesLvm(snapshot)
        self.vg_name: str | None = cluster.volume_group_name if lvm_used else None
        self.drbd = cluster.IsDiskTemplateEnabled(constants.DT_DRBD8) or \
            _UsesDrbd(snapshot)
        self.drbd_helper: str | None = cluster.drbd_usermode_helper
        self.reserved = _CompileReserved(cluster.reserved_lvs or [])
        self.vgs = self._InstanceVgs(snapshot)
        #: node UUID -> {"vg/lv": [size, inactive, online]} of the nodes
        #: whose LVM answered
        self.volumes: dict[str, dict[str, Any]] = {}
        #: nodes whose node_verify answer was usable (for the disk status)
        self.answered: set[str] = set()
        self._before: DiskExpectations | None = None
        self._after: DiskExpectations | None = None

    def _InstanceVgs(self, snapshot: Any) -> list[str]:
        vgs = {self.vg_name} if self.vg_name else set()
        for inst in snapshot.instances.values():
            vgs.update(lv.split("/", 1)[0] for _, lv in InstanceLvs(snapshot, inst))
        return sorted(vgs)

    def Checks(self) -> dict[str, Any]:
        """The ``node_verify`` parameters of the storage checks."""
        checks: dict[str, Any] = {}
        if self.vg_name or self.vgs:
            checks[constants.NV_LVLIST] = list(self.vgs)
        if self.vg_name:
            checks[constants.NV_VGLIST] = None
            checks[constants.NV_PVLIST] = [self.vg_name]
        if self.drbd:
            checks[constants.NV_DRBDLIST] = None
            checks[constants.NV_DRBDHELPER] = self.drbd_helper
        return checks

    def Expect(self) -> None:
        """Read the configuration's expectations (call right before and
        right after ``node_verify``)."""
        expectations = DiskExpectations.FromConfig(self.cfg)
        if self._before is None:
            self._before = expectations
        else:
            self._after = expectations

    @property
    def _readings(self) -> tuple[DiskExpectations, DiskExpectations]:
        before = self._before or DiskExpectations.FromConfig(self.cfg)
        return before, self._after or before

    # --- per node ----------------------------------------------------------------------

    def VerifyNode(self, node: objects.Node, payload: dict[str, Any]) -> None:
        """Check one node's answer (nodes that host no instances are skipped)."""
        if not node.vm_capable:
            return
        self.answered.add(node.uuid)
        if self.vg_name:
            self._VerifyVg(node, payload)
            self._VerifyPvs(node, payload)
        if constants.NV_LVLIST in self.Checks():
            self._UpdateVolumes(node, payload)
        if self.drbd:
            self._VerifyDrbdHelper(node, payload)
            self._VerifyDrbdMinors(node, payload)

    def _VerifyVg(self, node: objects.Node, payload: dict[str, Any]) -> None:
        vglist = payload.get(constants.NV_VGLIST)
        if not isinstance(vglist, dict):
            detail = f": {vglist}" if isinstance(vglist, str) else ""
            self.lu._Error(constants.CV_ENODELVM, node.name,
                           f"unable to check volume groups{detail}")
            return
        size = vglist.get(self.vg_name)
        if size is None:
            self.lu._Error(constants.CV_ENODELVM, node.name,
                           f"volume group '{self.vg_name}' missing")
        elif size < constants.MIN_VG_SIZE:
            self.lu._Error(constants.CV_ENODELVM, node.name,
                           f"volume group '{self.vg_name}' too small"
                           f" ({constants.MIN_VG_SIZE} MiB required, {int(size)} MiB found)")

    def _VerifyPvs(self, node: objects.Node, payload: dict[str, Any]) -> None:
        pvs = payload.get(constants.NV_PVLIST)
        if not isinstance(pvs, list):
            detail = f": {pvs}" if isinstance(pvs, str) else ""
            self.lu._Error(constants.CV_ENODELVM, node.name,
                           f"Can't get PV list from node{detail}")
            return
        sizes = []
        for pv in pvs:
            if not isinstance(pv, dict):
                continue
            name, vg_name = pv.get("name", ""), pv.get("vg_name", "")
            if ":" in str(name):
                self.lu._Error(constants.CV_ENODELVM, node.name,
                               f"Invalid character ':' in PV '{name}' of VG '{vg_name}'")
            if pv.get("missing"):
                self.lu._Error(constants.CV_ENODELVM, node.name,
                               f"PV '{name}' of VG '{vg_name}' is missing")
            elif isinstance(pv.get("size"), (int, float)):
                sizes.append(pv["size"])
        exclusive = self.cfg.GetNdParams(node).get(constants.ND_EXCLUSIVE_STORAGE)
        if exclusive and sizes and min(sizes) < max(sizes) * (1 - PV_SIZE_TOLERANCE):
            self.lu._Error(constants.CV_ENODELVM, node.name,
                           f"Sizes of PVs are too different for exclusive storage:"
                           f" min={utils.FormatUnit(min(sizes), 'h')}"
                           f" max={utils.FormatUnit(max(sizes), 'h')}")

    def _UpdateVolumes(self, node: objects.Node, payload: dict[str, Any]) -> None:
        lvs = payload.get(constants.NV_LVLIST)
        if isinstance(lvs, str):
            self.lu._Error(constants.CV_ENODELVM, node.name, f"LVM problem on node: {lvs}")
        elif not isinstance(lvs, dict):
            self.lu._Error(constants.CV_ENODELVM, node.name,
                           "node hasn't returned its logical volumes (lvlist)")
        else:
            self.volumes[node.uuid] = lvs

    def _VerifyDrbdHelper(self, node: objects.Node, payload: dict[str, Any]) -> None:
        if not self.drbd_helper:
            return
        answer = payload.get(constants.NV_DRBDHELPER)
        if not (isinstance(answer, (list, tuple)) and len(answer) == 2):
            self.lu._Error(constants.CV_ENODEDRBDHELPER, node.name,
                           "no drbd usermode helper returned")
            return
        ok, helper = answer
        if not ok:
            self.lu._Error(constants.CV_ENODEDRBDHELPER, node.name,
                           f"drbd usermode helper check unsuccessful: {helper}")
        elif helper != self.drbd_helper:
            self.lu._Error(constants.CV_ENODEDRBDHELPER, node.name,
                           f"wrong drbd usermode helper: {helper}")

    def _VerifyDrbdMinors(self, node: objects.Node, payload: dict[str, Any]) -> None:
        used = payload.get(constants.NV_DRBDLIST)
        if not isinstance(used, list):
            self.lu._Error(constants.CV_ENODEDRBD, node.name,
                           f"cannot parse drbd status file: {used}")
            return
        before, after = self._readings
        if before.minors_error or after.minors_error:
            self.lu._Error(constants.CV_ECLUSTERCFG, None,
                           f"cannot check the DRBD minors of node {node.name}:"
                           f" {before.minors_error or after.minors_error}")
            return
        expected_before = before.minors.get(node.uuid, {})
        expected_after = after.minors.get(node.uuid, {})
        for minor in sorted(expected_after):
            disk_uuid, inst_name, active = expected_after[minor]
            if not active or minor in used or \
                    expected_before.get(minor) != expected_after[minor]:
                continue
            owner = f" (instance {inst_name})" if inst_name else ""
            self.lu._Error(constants.CV_ENODEDRBD, node.name,
                           f"drbd minor {minor} of disk {disk_uuid}{owner} is not active")
        for minor in sorted(used):
            if minor not in expected_before and minor not in expected_after:
                self.lu._Error(constants.CV_ENODEDRBD, node.name,
                               f"unallocated drbd minor {minor} is in use")

    # --- instances and orphans ---------------------------------------------------------------

    def VerifyInstances(self, feedback_fn: FeedbackFn) -> None:
        """Missing and orphan volumes (of the nodes whose LVM answered),
        then the status of the active instances' disks."""
        if self.volumes:
            self._VerifyMissingVolumes()
            feedback_fn("* Verifying orphan volumes")
            self._VerifyOrphanVolumes()
        self._VerifyDiskStatus(feedback_fn)

    def _NodeName(self, uuid: str) -> str:
        return iu.NodeName(self.cfg, uuid)

    def _VerifyMissingVolumes(self) -> None:
        before, after = self._readings
        missing: list[tuple[str, str, str]] = []
        for node_uuid, volumes in self.volumes.items():
            expected = after.lvs.get(node_uuid, {})
            earlier = before.lvs.get(node_uuid, {})
            for lv_name, inst_name in expected.items():
                if lv_name not in volumes and earlier.get(lv_name) == inst_name:
                    missing.append((inst_name, lv_name, self._NodeName(node_uuid)))
        for inst_name, lv_name, node_name in sorted(missing):
            self.lu._Error(constants.CV_EINSTANCEMISSINGDISK, inst_name,
                           f"volume {lv_name} missing on node {node_name}")

    def _VerifyOrphanVolumes(self) -> None:
        before, after = self._readings
        prefix = f"{self.vg_name}/"
        for node_uuid in sorted(self.volumes, key=self._NodeName):
            known = set(before.lvs.get(node_uuid, {})) | set(after.lvs.get(node_uuid, {}))
            for lv_name in sorted(self.volumes[node_uuid]):
                if not self.vg_name or not lv_name.startswith(prefix) or lv_name in known \
                        or any(pattern.fullmatch(lv_name) for pattern in self.reserved):
                    continue
                self.lu._Error(constants.CV_ENODEORPHANLV, self._NodeName(node_uuid),
                               f"volume {lv_name} is unknown", code=constants.CV_WARNING)

    def _StatusTargets(self) -> dict[str, list[tuple[str, str, int, objects.Disk]]]:
        """node UUID -> [(instance UUID, name, disk index, disk)] of the
        disks whose status is asked: those of the group's instances whose
        disks are active, on every online node they live on that answered
        (or lies outside the group)."""
        snapshot = self.cfg.GetReadOnlySnapshot()
        group = snapshot.nodegroups.get(self.group_uuid)
        members = set(group.members) if group is not None else set()
        targets: dict[str, list[tuple[str, str, int, objects.Disk]]] = {}
        for inst in snapshot.instances.values():
            if inst.primary_node not in members or not inst.disks_active or \
                    inst.forthcoming:
                continue
            for idx, disk_uuid in enumerate(inst.disks):
                disk = snapshot.disks.get(disk_uuid)
                if disk is None or disk.dev_type not in _STATUS_TYPES:
                    continue
                for node_uuid in disk.ComputeNodes(inst.primary_node):
                    node = snapshot.nodes.get(node_uuid)
                    if node is None or node.offline or (
                            node_uuid in members and node_uuid not in self.answered):
                        continue
                    targets.setdefault(node_uuid, []).append(
                        (inst.uuid, inst.name, idx, disk))
        return targets

    def _MirrorStatus(self, targets: dict[str, list[Any]]
                      ) -> dict[str, list[tuple[bool, Any]]]:
        """node UUID -> [(success, status dict or error)] per target disk:
        one call per node for all its disks; a node whose call failed is
        asked again disk by disk (all such nodes in parallel), so that a
        missing disk does not hide the others' status."""
        results: dict[str, list[tuple[bool, Any]]] = {}
        answers = self.lu.rpc.Call("blockdev_getmirrorstatus", list(targets), [PerNode(
            {uuid: [entry[3] for entry in entries] for uuid, entries in targets.items()})])
        retry: list[str] = []
        for node_uuid, entries in targets.items():
            res = answers[node_uuid]
            if not res.fail_msg and isinstance(res.payload, list) and \
                    len(res.payload) == len(entries):
                results[node_uuid] = [(True, status) for status in res.payload]
            elif len(entries) == 1 or res.offline:
                results[node_uuid] = [(False, res.fail_msg or "invalid answer")] * \
                    len(entries)
            else:
                retry.append(node_uuid)
                results[node_uuid] = []
        rounds = max((len(targets[uuid]) for uuid in retry), default=0)
        for idx in range(rounds):
            nodes = [uuid for uuid in retry if idx < len(targets[uuid])]
            answers = self.lu.rpc.Call("blockdev_getmirrorstatus", nodes, [PerNode(
                {uuid: [targets[uuid][idx][3]] for uuid in nodes})])
            for node_uuid in nodes:
                res = answers[node_uuid]
                if res.fail_msg or not isinstance(res.payload, list) or \
                        len(res.payload) != 1:
                    results[node_uuid].append((False, res.fail_msg or "invalid answer"))
                else:
                    results[node_uuid].append((True, res.payload[0]))
        return results

    def _VerifyDiskStatus(self, feedback_fn: FeedbackFn) -> None:
        targets = self._StatusTargets()
        if not targets:
            return
        if self.lu.rpc is None:
            raise errors.OpExecError("The master daemon has no node RPC client")
        feedback_fn(f"* Gathering disk information ({len(targets)} nodes)")
        results = self._MirrorStatus(targets)
        feedback_fn("* Verifying instance status")
        findings = []
        for node_uuid, entries in targets.items():
            for (inst_uuid, inst_name, idx, _), (ok, status) in \
                    zip(entries, results[node_uuid]):
                findings.append((inst_name, idx, self._NodeName(node_uuid), inst_uuid,
                                 ok, status))
        for inst_name, idx, node_name, inst_uuid, ok, status in sorted(
                findings, key=lambda f: (f[0], f[1], f[2])):
            # Skip instances removed or deactivated while the nodes answered
            current = self.cfg.GetInstanceInfo(inst_uuid)
            if current is None or not current.disks_active:
                continue
            if not ok:
                self.lu._Error(constants.CV_EINSTANCEFAULTYDISK, inst_name,
                               f"couldn't retrieve status for disk/{idx} on"
                               f" {node_name}: {status}")
                continue
            try:
                bdev = objects.BlockDevStatus.FromDict(status)
            except (errors.GenericError, TypeError, ValueError, AttributeError):
                self.lu._Error(constants.CV_EINSTANCEFAULTYDISK, inst_name,
                               f"invalid status for disk/{idx} on {node_name}: {status!r}")
                continue
            if not bdev.is_degraded:
                continue
            # The node's own copy is fine (or being resynced): only a warning
            acceptable = bdev.ldisk_status == storage_base.LDS_OKAY or \
                bdev.sync_percent is not None
            state = _LDS_NAMES.get(bdev.ldisk_status, str(bdev.ldisk_status))
            if bdev.sync_percent is not None:
                state = f"syncing, {bdev.sync_percent:.1f}% done"
            self.lu._Error(constants.CV_EINSTANCEFAULTYDISK, inst_name,
                           f"disk/{idx} on {node_name} is degraded; local disk state"
                           f" is '{state}'",
                           code=constants.CV_WARNING if acceptable else constants.CV_ERROR)


def _CompileReserved(patterns: list[str]) -> list[re.Pattern[str]]:
    """The ``reserved_lvs`` patterns (regular expressions matching a whole
    "vg/lv" name); invalid ones are skipped, as they match nothing."""
    result = []
    for pattern in patterns:
        try:
            result.append(re.compile(pattern))
        except re.error:
            continue
    return result


# --- gnt-cluster verify-disks ------------------------------------------------------------------

class LUGroupVerifyDisks(ClusterLU):
    """Check the disks of the instances of one group whose disks should be
    active (``disks_active``); returns Ganeti's triple:

    - {node name: error} of the nodes that could not be asked;
    - the names of the instances whose disks need activating: a logical
      volume that exists but is inactive, a DRBD device that is missing,
      StandAlone or without its local disk (``drbd_needs_activation`` on
      both of its nodes), or a disk of another type that the primary does
      not find (``blockdev_getdimensions``: an activation creates file
      disks' links again);
    - {instance name: [[node name, volume]]} of what is missing: logical
      volumes as "vg/lv" (also those on nodes that could not be asked, as
      Ganeti, so that ``verify-disks`` can say the instance lives on a
      broken node), other disks by their path or "type:disk/N".

    Ganeti takes an LV that is not open as offline; an active LV without
    users needs no activation, and without device-mapper (our virtual
    clusters) no LV is ever open or known active, so here only an LV LVM
    reports inactive counts. Like verify-config it takes no locks: a disk
    changed meanwhile is reported again or not at the next run.
    """

    REQ_BGL = False

    def ExpandNames(self) -> None:
        self.group_uuid = self.cfg.LookupNodeGroup(self.op.group_name)
        self.needed_locks = {}

    def _Instances(self, snapshot: Any) -> list[objects.Instance]:
        group = snapshot.nodegroups.get(self.group_uuid)
        members = set(group.members) if group is not None else set()
        return [inst for inst in snapshot.instances.values()
                if inst.primary_node in members and inst.disks_active
                and not inst.forthcoming]

    def Exec(self, feedback_fn: FeedbackFn) -> tuple[dict[str, str], list[str],
                                                     dict[str, list[list[str]]]]:
        snapshot = self.cfg.GetReadOnlySnapshot()
        nodes = snapshot.nodes
        node_errors: dict[str, str] = {}
        offline: set[str] = set()
        missing: dict[str, list[list[str]]] = {}
        lv_owner: dict[tuple[str, str], str] = {}
        drbd_disks: dict[str, list[tuple[str, objects.Disk]]] = {}
        others: dict[str, list[tuple[str, objects.Disk, int]]] = {}
        for inst in self._Instances(snapshot):
            for node_uuid, lv_name in InstanceLvs(snapshot, inst):
                lv_owner[(node_uuid, lv_name)] = inst.name
            for idx, disk_uuid in enumerate(inst.disks):
                disk = snapshot.disks.get(disk_uuid)
                if disk is None or disk.dev_type in (constants.DT_DISKLESS,
                                                     constants.DT_PLAIN):
                    continue
                if disk.dev_type == constants.DT_DRBD8:
                    for node_uuid in disk.ComputeNodes(inst.primary_node):
                        drbd_disks.setdefault(node_uuid, []).append((inst.name, disk))
                else:
                    others.setdefault(inst.primary_node, []).append((inst.name, disk, idx))

        def _Online(uuids: Any) -> list[str]:
            return utils.NiceSort([uuid for uuid in uuids if uuid in nodes
                                   and not nodes[uuid].offline],
                                  key=lambda uuid: nodes[uuid].name)

        lv_nodes = _Online({node_uuid for node_uuid, _ in lv_owner})
        drbd_nodes = _Online(drbd_disks)
        other_nodes = _Online(others)
        if (lv_nodes or drbd_nodes or other_nodes) and self.rpc is None:
            raise errors.OpExecError("The master daemon has no node RPC client")

        if lv_nodes:
            answers = self.rpc.call_lv_list(lv_nodes, None)
            for node_uuid in lv_nodes:
                res = answers[node_uuid]
                if res.fail_msg or not isinstance(res.payload, dict):
                    node_errors[nodes[node_uuid].name] = res.fail_msg or "invalid answer"
                    continue
                for lv_name, info in res.payload.items():
                    inst_name = lv_owner.pop((node_uuid, lv_name), None)
                    if inst_name is not None and isinstance(info, (list, tuple)) \
                            and len(info) == 3 and info[1]:
                        offline.add(inst_name)
        for (node_uuid, lv_name), inst_name in lv_owner.items():
            if node_uuid in nodes and not nodes[node_uuid].offline:
                missing.setdefault(inst_name, []).append([nodes[node_uuid].name, lv_name])

        if drbd_nodes:
            answers = self.rpc.call_drbd_needs_activation(drbd_nodes, PerNode(
                {uuid: [disk for _, disk in drbd_disks[uuid]] for uuid in drbd_nodes}))
            for node_uuid in drbd_nodes:
                res = answers[node_uuid]
                if res.fail_msg or not isinstance(res.payload, list):
                    node_errors.setdefault(nodes[node_uuid].name,
                                           res.fail_msg or "invalid answer")
                    continue
                faulty = set(res.payload)
                offline.update(name for name, disk in drbd_disks[node_uuid]
                               if disk.uuid in faulty)

        if other_nodes:
            answers = self.rpc.call_blockdev_getdimensions(other_nodes, PerNode(
                {uuid: [disk for _, disk, _ in others[uuid]] for uuid in other_nodes}))
            for node_uuid in other_nodes:
                res = answers[node_uuid]
                entries = others[node_uuid]
                if res.fail_msg or not isinstance(res.payload, list) or \
                        len(res.payload) != len(entries):
                    node_errors.setdefault(nodes[node_uuid].name,
                                           res.fail_msg or "invalid answer")
                    continue
                for (inst_name, disk, idx), dims in zip(entries, res.payload):
                    if dims is None:
                        offline.add(inst_name)
                        missing.setdefault(inst_name, []).append(
                            [nodes[node_uuid].name, _DiskLabel(disk, idx)])
        for volumes in missing.values():
            volumes.sort()
        return node_errors, sorted(offline), missing


def _DiskLabel(disk: objects.Disk, idx: int) -> str:
    """How verify-disks names a missing disk that is no logical volume."""
    lid = disk.logical_id or ()
    if len(lid) == 2 and isinstance(lid[1], str) and lid[1].startswith("/"):
        return lid[1]
    return f"{disk.dev_type}:{disk.iv_name or f'disk/{idx}'}"


# --- gnt-cluster repair-disk-sizes ---------------------------------------------------------------

class LUClusterRepairDiskSizes(ClusterLU):
    """Correct the recorded sizes (and, with exclusive storage, spindles)
    of the named (default: all) instances' disks from what their primary
    nodes report (``blockdev_getdimensions``). A DRBD disk's size is that
    of its data volume; its data volume's recorded size follows. Returns
    [instance name, disk index, "size" or "spindles", new value] per
    change. Nodes that cannot tell are skipped with a warning."""

    REQ_BGL = False

    def ExpandNames(self) -> None:
        """Lock the instances (exclusively: their disks change) and their
        primary nodes' resources (shared)."""
        if self.op.instances:
            self.wanted_names: list[str] | None = utils.NiceSort(
                {iu.ExpandInstance(self.cfg, name).name for name in self.op.instances})
            self.needed_locks = {locking.LEVEL_INSTANCE: list(self.wanted_names),
                                 locking.LEVEL_NODE_RES: []}
        else:
            self.wanted_names = None
            self.needed_locks = {locking.LEVEL_INSTANCE: locking.ALL_SET,
                                 locking.LEVEL_NODE_RES: locking.ALL_SET}
        self.share_locks = {**dict.fromkeys(locking.LEVELS, 1),
                            locking.LEVEL_INSTANCE: 0}

    def DeclareLocks(self, level: int) -> None:
        """The primary nodes of the named instances."""
        if level == locking.LEVEL_NODE_RES and self.wanted_names is not None:
            assert self.needed_locks is not None
            nodes = set()
            for name in self.wanted_names:
                inst = self.cfg.GetInstanceInfoByName(name)
                if inst is not None:
                    nodes.add(inst.primary_node)
            self.needed_locks[level] = sorted(nodes)

    def CheckPrereq(self) -> None:
        """The instances (still) exist; their primaries are locked."""
        names = self.wanted_names if self.wanted_names is not None else \
            sorted(self.owned_locks(locking.LEVEL_INSTANCE))
        self.instances = []
        for name in names:
            inst = self.cfg.GetInstanceInfoByName(name)
            if inst is None:
                if self.wanted_names is not None:
                    raise errors.OpPrereqError(f"Instance '{name}' was removed meanwhile",
                                               errors.ECODE_NOENT)
                continue
            if inst.forthcoming:
                continue
            self.instances.append(inst)
        if self.wanted_names is not None:
            owned = self.owned_locks(locking.LEVEL_NODE_RES)
            moved = [inst.name for inst in self.instances
                     if inst.primary_node not in owned]
            if moved and self.glm is not None:
                raise errors.OpPrereqError(
                    f"Instances {utils.CommaJoin(moved)} changed their primary node"
                    " meanwhile; retry", errors.ECODE_STATE)

    @staticmethod
    def _Measured(disk: objects.Disk) -> objects.Disk:
        """The device whose size is the disk's: a DRBD disk's data volume."""
        if disk.dev_type == constants.DT_DRBD8 and disk.children:
            return disk.children[0]
        return disk

    def Exec(self, feedback_fn: FeedbackFn) -> list[list[Any]]:
        """Ask each primary for its disks' dimensions; fix what differs."""
        by_node: dict[str, list[tuple[objects.Instance, int, objects.Disk]]] = {}
        for inst in self.instances:
            for idx, disk in enumerate(self.cfg.GetInstanceDisks(inst.uuid)):
                if disk.dev_type != constants.DT_DISKLESS:
                    by_node.setdefault(inst.primary_node, []).append((inst, idx, disk))
        nodes = {uuid: self.cfg.GetNodeInfo(uuid) for uuid in by_node}
        for uuid, node in nodes.items():
            if node is None or node.offline:
                self.LogWarning(f"Node {iu.NodeName(self.cfg, uuid)} is offline, not"
                                " checking the disks of its instances")
        online = [uuid for uuid, node in nodes.items() if node and not node.offline]
        if not online:
            return []
        if self.rpc is None:
            raise errors.OpExecError("The master daemon has no node RPC client")
        from ganeti.cmdlib import disks as disks_mod
        answers = self.rpc.call_blockdev_getdimensions(online, PerNode(
            {uuid: [self._Measured(disk) for _, _, disk in by_node[uuid]]
             for uuid in online}))
        changed: list[list[Any]] = []
        for node_uuid in utils.NiceSort(online, key=lambda u: nodes[u].name):
            node_name = nodes[node_uuid].name
            entries = by_node[node_uuid]
            res = answers[node_uuid]
            if res.fail_msg:
                self.LogWarning(f"Failure in blockdev_getdimensions call to node"
                                f" {node_name}, ignoring: {res.fail_msg}")
                continue
            if not isinstance(res.payload, list) or len(res.payload) != len(entries):
                self.LogWarning(f"Invalid result from node {node_name}, ignoring its"
                                " results")
                continue
            exclusive = disks_mod.IsExclusiveStorage(self.cfg, node_uuid)
            for (inst, idx, disk), dims in zip(entries, res.payload):
                changed.extend(self._Repair(inst, idx, disk, dims, exclusive, feedback_fn))
        return changed

    def _Repair(self, inst: objects.Instance, idx: int, disk: objects.Disk, dims: Any,
                exclusive: bool, feedback_fn: FeedbackFn) -> list[list[Any]]:
        """Fix one disk from its (size in bytes, spindles); return the changes."""
        if dims is None:
            self.LogWarning(f"Disk {idx} of instance {inst.name} did not return size"
                            " information, ignoring")
            return []
        if not (isinstance(dims, (list, tuple)) and len(dims) == 2
                and isinstance(dims[0], int) and not isinstance(dims[0], bool)):
            self.LogWarning(f"Disk {idx} of instance {inst.name} did not return valid"
                            f" dimension information ({dims!r}), ignoring")
            return []
        size, spindles = dims[0] >> 20, dims[1]
        changes: list[list[Any]] = []
        update = False
        if size != disk.size:
            self.LogInfo(f"Disk {idx} of instance {inst.name} has mismatched size,"
                         f" correcting: recorded {disk.size}, actual {size}")
            disk.size = size
            update = True
            changes.append([inst.name, idx, "size", size])
        data = self._Measured(disk)
        if data is not disk and data.size != disk.size:
            self.LogInfo(f"Data volume of disk {idx} of instance {inst.name} has"
                         f" recorded size {data.size}, disk {disk.size}; fixing")
            data.size = disk.size
            update = True
            if not changes:
                changes.append([inst.name, idx, "size", disk.size])
        if exclusive and disk.dev_type != constants.DT_DRBD8:
            if spindles is None:
                self.LogWarning(f"Disk {idx} of instance {inst.name} did not return"
                                " valid spindles information, ignoring")
            elif disk.spindles != spindles:
                self.LogInfo(f"Disk {idx} of instance {inst.name} has mismatched"
                             f" spindles, correcting: recorded {disk.spindles}, actual"
                             f" {spindles}")
                disk.spindles = spindles
                update = True
                changes.append([inst.name, idx, "spindles", spindles])
        if update:
            self.cfg.Update(disk, feedback_fn)
        return changes
