"""replace-disks: new storage under the mirrors of a DRBD instance.

One LU, :class:`LUInstanceReplaceDisks`, with Ganeti's tasklet
:class:`TLReplaceDisks` and its four modes:

- on the primary (``-p``) or the secondary (``-s``), for all disks or
  some (``--disks``): new data and metadata volumes are made on that node;
  each DRBD device lets go of its old volumes (it serves I/O from its peer
  meanwhile), the old volumes are renamed aside (``<name>_replaced-<time>``)
  and the new ones take their names, so the configuration does not change;
  the device gets the new volumes with fresh metadata and resyncs from its
  peer; the old volumes are removed once it has synced;
- a new secondary (``-n``, or chosen by an instance allocator with
  ``-I``: a ``relocate`` request away from the current secondary, while
  every node is locked; the nodes not chosen are released at once): new
  volumes and a stand-alone DRBD device (new
  minor, same port and secret) on the new node; the old secondary's
  devices are shut down and the primary's disconnected; the disks record
  the new node; the primary and the new node connect and resync; the old
  secondary's volumes are removed (an offline old secondary keeps them);
- automatic (``--auto``): the disks whose local storage is faulty on one
  node are replaced on that node.

The peer that keeps the data must have it: its local disk must be
UpToDate. (A DRBD device here counts as degraded when either end is not
UpToDate, so "not degraded" would refuse exactly the repairs this is for;
the local disk status is Ganeti's own criterion for the peer.)

A failure before the switch leaves the instance on its old disks: what
was created is removed, renamed volumes get their names back, DRBD minors
are released. Disks whose new volumes were already attached when a later
disk failed keep them (they resync from the peer); their old volumes stay
on the node, named aside, and the error says so.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from ganeti import constants, errors, locking, objects
from ganeti.cmdlib import disks as disks_mod
from ganeti.cmdlib import iallocator as ia
from ganeti.cmdlib import iallocator_relocation as iar
from ganeti.cmdlib import instance_utils as iu
from ganeti.cmdlib.base import FeedbackFn, LogicalUnit, Tasklet
from ganeti.cmdlib.group import ComputeIPolicyInstanceViolation
from ganeti.cmdlib.node import ExpandNode
from ganeti.storage import base as storage_base

#: Steps reported by both ways of replacing
_STEPS = 6

_MODE_NAMES = {
    constants.REPLACE_DISK_PRI: "on the primary node",
    constants.REPLACE_DISK_SEC: "on the secondary node",
    constants.REPLACE_DISK_CHG: "by changing the secondary node",
    constants.REPLACE_DISK_AUTO: "automatically",
}


@dataclass
class _Replacement:
    """One disk replaced on one node: the DRBD disk, its volumes as
    configured, and the new volumes under their own names."""

    idx: int
    dev: objects.Disk
    old_lvs: list[objects.Disk]
    new_lvs: list[objects.Disk]


def _Lv(template: objects.Disk, logical_id: Any) -> objects.Disk:
    """A copy of volume ``template`` named ``logical_id``."""
    lv = template.Copy()
    lv.logical_id = tuple(logical_id)
    return lv


class TLReplaceDisks(Tasklet):
    """Replace the disks of a DRBD instance on one of its nodes, or move
    its secondary to ``remote_node_uuid`` (see the module docstring)."""

    lu: Any
    cfg: Any

    def __init__(self, lu: LogicalUnit, instance_uuid: str, mode: str,
                 remote_node_uuid: str | None, disks: list[int], early_release: bool,
                 ignore_ipolicy: bool, iallocator: str | None = None) -> None:
        super().__init__(lu)
        self.instance_uuid = instance_uuid
        self.mode = mode
        self.remote_node_uuid = remote_node_uuid
        #: the allocator choosing ``remote_node_uuid`` (mode "new secondary")
        self.iallocator = iallocator
        self.disks = sorted(set(disks))
        self.early_release = early_release
        self.ignore_ipolicy = ignore_ipolicy
        #: The node whose storage is replaced (the old secondary for -n)
        self.target_node_uuid: str | None = None
        #: The node keeping the data meanwhile (the primary for -n)
        self.other_node_uuid: str | None = None
        self.new_node_uuid: str | None = None
        self.disk_indices: list[int] = []
        self.suffix = ""

    def _Name(self, node_uuid: str | None) -> str:
        return iu.NodeName(self.cfg, node_uuid) if node_uuid else ""

    # --- checks -------------------------------------------------------------------------

    def CheckPrereq(self) -> None:
        """Template, layout, disk indices, nodes, free space, policy."""
        cfg = self.cfg
        inst = cfg.GetInstanceInfo(self.instance_uuid)
        self.instance = inst
        template = cfg.GetInstanceDiskTemplate(inst.uuid)
        if template != constants.DT_DRBD8:
            raise errors.OpPrereqError(
                f"Instance {inst.name} has disk template '{template}': replace-disks"
                " works only for instances with the drbd disk template",
                errors.ECODE_INVAL)
        secondaries = cfg.GetInstanceSecondaryNodes(inst.uuid)
        if len(secondaries) != 1:
            raise errors.OpPrereqError(
                f"Instance {inst.name} has a strange layout: expected one secondary node,"
                f" found {len(secondaries)}", errors.ECODE_FAULT)
        primary, secondary = inst.primary_node, secondaries[0]
        disks = cfg.GetInstanceDisks(inst.uuid)
        for idx in self.disks:
            if not 0 <= idx < len(disks):
                raise errors.OpPrereqError(
                    f"Invalid disk index '{idx}': instance {inst.name} has {len(disks)}"
                    " disk(s)", errors.ECODE_INVAL)
        self.disk_indices = self.disks or list(range(len(disks)))
        if self.mode == constants.REPLACE_DISK_CHG:
            self._CheckNewSecondary(primary, secondary, len(disks))
        elif self.mode == constants.REPLACE_DISK_AUTO:
            self._FindFaulty(primary, secondary, disks)
        elif self.mode == constants.REPLACE_DISK_PRI:
            self.target_node_uuid, self.other_node_uuid = primary, secondary
        else:
            self.target_node_uuid, self.other_node_uuid = secondary, primary
        if not self.disk_indices:
            return
        for node in (self.other_node_uuid, self.new_node_uuid or self.target_node_uuid):
            assert node is not None
            iu.CheckNodeOnline(cfg, node, "Can't replace disks with an offline node")
        where = self.new_node_uuid or self.target_node_uuid
        assert where is not None
        disks_mod.CheckNodesFreeDiskPerVG(self.lu, [where],
                                          self._VolumeSizes(disks, self.disk_indices))

    def _ChooseNewSecondary(self, secondary: str) -> None:
        """Ask the allocator for the new secondary, then keep only the
        locks of the instance's nodes and the chosen one."""
        inst = self.instance
        assert self.iallocator is not None
        new = iar.RelocateInstance(self.lu, self.iallocator, inst.uuid, [secondary],
                                   f"a new secondary node for instance {inst.name}")
        self.remote_node_uuid = new
        self.lu.LogInfo(f"Selected new secondary for instance '{inst.name}':"
                        f" {self._Name(new)}")
        iar.ReleaseUnusedNodeLocks(self.lu, [inst.primary_node, secondary, new])

    def _CheckNewSecondary(self, primary: str, secondary: str, ndisks: int) -> None:
        cfg, inst = self.cfg, self.instance
        if self.disks and self.disks != list(range(ndisks)):
            raise errors.OpPrereqError(
                "Changing the secondary node moves all the disks; a subset of them"
                " (--disks) can only be replaced on the primary or the secondary node",
                errors.ECODE_INVAL)
        if self.iallocator and self.remote_node_uuid is None:
            self._ChooseNewSecondary(secondary)
        new = self.remote_node_uuid
        assert new is not None
        if new == primary:
            raise errors.OpPrereqError(
                f"Node {self._Name(new)} is the primary node of instance {inst.name}; the"
                " new secondary must be another node", errors.ECODE_INVAL)
        if new == secondary:
            raise errors.OpPrereqError(
                f"Node {self._Name(new)} is already the secondary node of instance"
                f" {inst.name}", errors.ECODE_INVAL)
        node = iu.CheckTargetNode(cfg, new, "Can't use {state} node {name} as the new"
                                  " secondary node")
        group = cfg.GetNodeGroup(node.group)
        violations = ComputeIPolicyInstanceViolation(cfg.GetGroupIPolicy(group), inst, cfg)
        if violations:
            text = (f"Instance {inst.name} does not meet the instance policy of group"
                    f" {group.name} of node {node.name}: {'; '.join(violations)}")
            if not self.ignore_ipolicy:
                raise errors.OpPrereqError(text + " (use --ignore-ipolicy to move it"
                                           " nonetheless)", errors.ECODE_INVAL)
            self.lu.LogWarning(text)
        self.target_node_uuid, self.other_node_uuid = secondary, primary
        self.new_node_uuid = new

    def _FindFaulty(self, primary: str, secondary: str, disks: list[objects.Disk]) -> None:
        """--auto: the disks with faulty local storage, on one node only."""
        inst = self.instance
        for node in (primary, secondary):
            iu.CheckNodeOnline(self.cfg, node, "Can't check the disks on an offline node")
        faulty: dict[str, list[int]] = {}
        for node in (primary, secondary):
            for idx, disk in enumerate(disks):
                result = self.rpc.call_blockdev_find(node, disk)
                result.Raise(f"Can't check disk/{idx} of instance {inst.name} on node"
                             f" {self._Name(node)}", prereq=True,
                             ecode=errors.ECODE_ENVIRON)
                if not result.payload:
                    raise errors.OpPrereqError(
                        f"Disk/{idx} of instance {inst.name} is not active on node"
                        f" {self._Name(node)}: run activate-disks on the instance first",
                        errors.ECODE_STATE)
                status = objects.BlockDevStatus.FromDict(result.payload)
                if status.ldisk_status == storage_base.LDS_FAULTY:
                    faulty.setdefault(node, []).append(idx)
        if faulty.get(primary) and faulty.get(secondary):
            raise errors.OpPrereqError(
                f"Instance {inst.name} has faulty disks on both of its nodes"
                f" (disk(s) {', '.join(map(str, faulty[primary]))} on"
                f" {self._Name(primary)}, {', '.join(map(str, faulty[secondary]))} on"
                f" {self._Name(secondary)}); they cannot be repaired automatically",
                errors.ECODE_STATE)
        if faulty.get(primary):
            self.target_node_uuid, self.other_node_uuid = primary, secondary
        else:
            self.target_node_uuid, self.other_node_uuid = secondary, primary
        self.disk_indices = faulty.get(self.target_node_uuid, [])

    @staticmethod
    def _VolumeSizes(disks: list[objects.Disk], indices: list[int]) -> dict[str, int]:
        """MiB per volume group the new volumes of the disks need."""
        needed: dict[str, int] = {}
        for idx in indices:
            for lv in disks[idx].children or []:
                vg = lv.logical_id[0]
                needed[vg] = needed.get(vg, 0) + int(lv.size)
        return needed

    # --- node steps ----------------------------------------------------------------------

    def _InstanceRef(self) -> dict[str, Any]:
        return {"name": self.instance.name, "hypervisor": self.instance.hypervisor}

    def _Exists(self, node: str, disk: objects.Disk) -> bool:
        result = self.rpc.call_blockdev_find(node, disk)
        return not result.fail_msg and bool(result.payload)

    def _Remove(self, node: str, disk: objects.Disk, what: str) -> bool:
        result = self.rpc.call_blockdev_remove(node, disk)
        if result.fail_msg:
            self.lu.LogWarning(f"Can't remove {what} {'/'.join(map(str, disk.logical_id))}"
                               f" on node {self._Name(node)}: {result.fail_msg}",
                               hint="remove it by hand")
            return False
        return True

    def _CreateVolume(self, node: str, lv: objects.Disk) -> None:
        result = self.rpc.call_blockdev_create(
            node, lv, lv.size, self.instance.name, False,
            f"originstname+{self.instance.name}",
            disks_mod.IsExclusiveStorage(self.cfg, node))
        if result.fail_msg:
            raise errors.OpExecError(
                f"Can't create volume {'/'.join(lv.logical_id)} on node {self._Name(node)}:"
                f" {result.fail_msg}")

    def _CheckExistence(self, nodes: list[str], selected: list[tuple[int, objects.Disk]]
                        ) -> dict[tuple[str, int], objects.BlockDevStatus]:
        """Step 1: every disk is there; returns what the nodes said of them
        (step 2 looks at it again)."""
        found = {}
        for node in nodes:
            for idx, dev in selected:
                self.lu.LogInfo(f"Checking disk/{idx} on {self._Name(node)}")
                result = self.rpc.call_blockdev_find(node, dev)
                if result.fail_msg or not result.payload:
                    raise errors.OpExecError(
                        f"Can't find disk/{idx} on node {self._Name(node)}:"
                        f" {result.fail_msg or 'disk not found'} (are the instance's disks"
                        " active? run activate-disks)")
                found[(node, idx)] = objects.BlockDevStatus.FromDict(result.payload)
        return found

    def _CheckPeerConsistency(self, node: str, selected: list[tuple[int, objects.Disk]],
                              found: dict[tuple[str, int], objects.BlockDevStatus]
                              ) -> None:
        """Step 2: the node keeping the data must have it (its local disk
        UpToDate)."""
        for idx, _ in selected:
            self.lu.LogInfo(f"Checking disk/{idx} consistency on node {self._Name(node)}")
            if found[(node, idx)].ldisk_status != storage_base.LDS_OKAY:
                raise errors.OpExecError(
                    f"Node {self._Name(node)} has no consistent data for disk/{idx} (its"
                    " local disk is not up to date); can't replace the disks of its peer")

    def _CheckDevices(self, node: str, selected: list[tuple[int, objects.Disk]]) -> None:
        for idx, dev in selected:
            result = self.rpc.call_blockdev_find(node, dev)
            if result.fail_msg or not result.payload:
                raise errors.OpExecError(f"Can't find DRBD device disk/{idx} on node"
                                         f" {self._Name(node)}: {result.fail_msg}")
            if result.payload.get("is_degraded"):
                raise errors.OpExecError(f"DRBD device disk/{idx} is degraded after the"
                                         " resync")

    def _ReleaseLocks(self, level: int, keep: tuple[str, ...] = ()) -> None:
        """Let other jobs have the nodes while the mirrors resync (Ganeti's
        early release: the instance lock protects the instance)."""
        glm = self.lu.glm
        if glm is None:
            return
        names = [name for name in self.lu.owned_locks(level) if name not in keep]
        if names:
            glm.release(level, names)

    def _SyncAndCleanUp(self, remove_old: Any, selected: list[tuple[int, objects.Disk]]
                        ) -> None:
        """Steps 5 and 6: wait for the resync and remove the old storage (in
        that order, or the other with early release)."""
        step = 5
        if self.early_release:
            self.lu.LogStep(step, _STEPS, "Removing old storage")
            step += 1
            remove_old()
            self._ReleaseLocks(locking.LEVEL_NODE_RES)
        else:
            self._ReleaseLocks(locking.LEVEL_NODE_RES, tuple(
                self.cfg.GetInstanceNodes(self.instance.uuid)) + (
                    (self.target_node_uuid,) if self.target_node_uuid else ()))
        self._ReleaseLocks(locking.LEVEL_NODE)
        self.lu.LogStep(step, _STEPS, "Sync devices")
        step += 1
        inst = self.cfg.GetInstanceInfo(self.instance.uuid)
        # Combined over all disks: other degraded disks may make it fail, so
        # the replaced ones are checked one by one afterwards (as Ganeti)
        disks_mod.WaitForSync(self.lu, inst)
        self._CheckDevices(inst.primary_node, selected)
        if not self.early_release:
            self.lu.LogStep(step, _STEPS, "Removing old storage")
            remove_old()

    # --- -p, -s, --auto: new volumes on the same node -----------------------------------------

    def _NewVolumes(self, node: str, selected: list[tuple[int, objects.Disk]]
                    ) -> list[_Replacement]:
        """Make the new volumes (removed again if one cannot be made)."""
        ec_id = self.lu.proc.GetECId()
        items: list[_Replacement] = []
        created: list[objects.Disk] = []
        try:
            for idx, dev in selected:
                old_lvs = list(dev.children or [])
                if len(old_lvs) != 2:
                    raise errors.OpExecError(f"Disk/{idx} has {len(old_lvs)} volumes,"
                                             " expected data and metadata")
                prefix = self.cfg.GenerateUniqueID(ec_id)
                new_lvs = [_Lv(old, (old.logical_id[0], f"{prefix}.disk{idx}_{kind}"))
                           for old, kind in zip(old_lvs, ("data", "meta"))]
                self.lu.LogInfo(f"Adding storage on {self._Name(node)} for disk/{idx}")
                for lv in new_lvs:
                    self._CreateVolume(node, lv)
                    created.append(lv)
                items.append(_Replacement(idx, dev, old_lvs, new_lvs))
        except errors.OpExecError:
            for lv in reversed(created):
                self._Remove(node, lv, "new volume")
            raise
        return items

    def _AsideId(self, lv: objects.Disk) -> tuple[str, str]:
        return (lv.logical_id[0], f"{lv.logical_id[1]}_replaced-{self.suffix}")

    def _Swap(self, node: str, item: _Replacement) -> None:
        """Detach the old volumes, rename them aside, give the new ones
        their names and attach them (fresh metadata: a resync follows)."""
        idx, name = item.idx, self._Name(node)
        self.lu.LogInfo(f"Detaching disk/{idx} drbd from its local storage on {name}")
        result = self.rpc.call_blockdev_removechildren(node, item.dev, item.old_lvs)
        result.Raise(f"Can't detach disk/{idx} from its local storage on node {name}")
        # A failed disk's volumes may be gone: rename those that exist
        existing = [lv for lv in item.old_lvs if self._Exists(node, lv)]
        self.lu.LogInfo(f"Renaming the old volumes of disk/{idx} on {name}")
        result = self.rpc.call_blockdev_rename(
            node, [(lv.ToDict(), list(self._AsideId(lv))) for lv in existing])
        result.Raise(f"Can't rename the old volumes of disk/{idx} on node {name}")
        self.lu.LogInfo(f"Renaming the new volumes of disk/{idx} on {name}")
        result = self.rpc.call_blockdev_rename(
            node, [(new.ToDict(), list(old.logical_id))
                   for old, new in zip(item.old_lvs, item.new_lvs)])
        result.Raise(f"Can't rename the new volumes of disk/{idx} on node {name}")
        self.lu.LogInfo(f"Adding the new mirror component of disk/{idx} on {name}")
        result = self.rpc.call_blockdev_addchildren(node, item.dev, item.old_lvs)
        result.Raise(f"Can't add the new local storage to disk/{idx} on node {name}")

    def _Restore(self, node: str, item: _Replacement) -> None:
        """Undo :meth:`_Swap` from whatever state it stopped in: the old
        volumes get their names back and are attached again; the new ones
        are removed."""
        self.lu.LogWarning(f"Restoring the old storage of disk/{item.idx} on node"
                           f" {self._Name(node)}")
        self.rpc.call_blockdev_removechildren(node, item.dev, item.old_lvs)
        for old, new in zip(item.old_lvs, item.new_lvs):
            aside = _Lv(old, self._AsideId(old))
            if self._Exists(node, aside):
                # whatever has the old name now is the new volume
                if self._Exists(node, old):
                    self._Remove(node, old, "new volume")
                result = self.rpc.call_blockdev_rename(
                    node, [(aside.ToDict(), list(old.logical_id))])
                if result.fail_msg:
                    self.lu.LogWarning(
                        f"Can't rename volume {'/'.join(aside.logical_id)} back to"
                        f" {'/'.join(old.logical_id)} on node {self._Name(node)}:"
                        f" {result.fail_msg}", hint="rename it by hand, then run"
                        " activate-disks")
            if self._Exists(node, new):
                self._Remove(node, new, "new volume")
        result = self.rpc.call_blockdev_assemble(node, item.dev, self._InstanceRef(),
                                                 node == self.instance.primary_node,
                                                 item.idx)
        if result.fail_msg:
            self.lu.LogWarning(f"Can't attach the old storage of disk/{item.idx} again on"
                               f" node {self._Name(node)}: {result.fail_msg}",
                               hint="run activate-disks on the instance")

    def _RemoveAside(self, node: str, items: list[_Replacement]) -> None:
        for item in items:
            self.lu.LogInfo(f"Removing the old volumes of disk/{item.idx} on"
                            f" {self._Name(node)}")
            for lv in item.old_lvs:
                self._Remove(node, _Lv(lv, self._AsideId(lv)), "old volume")

    def _ExecOnNode(self) -> None:
        """Replace the volumes of the selected disks on the target node."""
        lu, node, other = self.lu, self.target_node_uuid, self.other_node_uuid
        assert node is not None and other is not None
        disks = self.cfg.GetInstanceDisks(self.instance.uuid)
        selected = [(idx, disks[idx]) for idx in self.disk_indices]
        lu.LogStep(1, _STEPS, "Check device existence")
        found = self._CheckExistence([other, node], selected)
        lu.LogStep(2, _STEPS, "Check peer consistency")
        self._CheckPeerConsistency(other, selected, found)
        lu.LogStep(3, _STEPS, "Allocate new storage")
        items = self._NewVolumes(node, selected)
        lu.LogStep(4, _STEPS, "Changing drbd configuration")
        self.suffix = str(int(time.time()))
        done: list[_Replacement] = []
        for pos, item in enumerate(items):
            try:
                self._Swap(node, item)
            except errors.OpExecError as err:
                self._Restore(node, item)
                for rest in items[pos + 1:]:
                    for lv in rest.new_lvs:
                        self._Remove(node, lv, "new volume")
                if done:
                    kept = ", ".join("/".join(self._AsideId(lv)) for item in done
                                     for lv in item.old_lvs)
                    raise errors.OpExecError(
                        f"{err}; disk(s) {', '.join(str(i.idx) for i in done)} have their"
                        f" new storage already and resync from {self._Name(other)}; their"
                        f" old volumes stay on node {self._Name(node)}: {kept}") from err
                raise
            done.append(item)
        self._SyncAndCleanUp(lambda: self._RemoveAside(node, items), selected)

    # --- -n: a new secondary node --------------------------------------------------------------

    def _ExecChangeSecondary(self) -> None:
        """Move the secondary end of every disk to the new node."""
        lu, cfg, inst = self.lu, self.cfg, self.instance
        pnode, old, new = inst.primary_node, self.target_node_uuid, self.new_node_uuid
        assert old is not None and new is not None
        old_online = not cfg.GetNodeInfo(old).offline
        disks = cfg.GetInstanceDisks(inst.uuid)
        selected = list(enumerate(disks))
        lu.LogStep(1, _STEPS, "Check device existence")
        found = self._CheckExistence([pnode], selected)
        lu.LogStep(2, _STEPS, "Check peer consistency")
        self._CheckPeerConsistency(pnode, selected, found)
        lu.LogStep(3, _STEPS, "Allocate new storage")
        ec_id = lu.proc.GetECId()
        created: list[objects.Disk] = []
        new_devs: list[objects.Disk] = []
        try:
            for idx, dev in selected:
                lu.LogInfo(f"Adding new local storage on {self._Name(new)} for disk/{idx}")
                for lv in dev.children or []:
                    self._CreateVolume(new, lv)
                    created.append(lv)
            lu.LogStep(4, _STEPS, "Changing drbd configuration")
            for idx, dev in selected:
                node_a, node_b, port, minor_a, minor_b, secret = dev.logical_id
                p_minor = minor_a if node_a == pnode else minor_b
                (new_minor,) = cfg.AllocateDRBDMinor([new], dev.uuid, ec_id)
                new_dev = dev.Copy()
                new_dev.logical_id = (pnode, new, port, p_minor, new_minor, secret)
                new_dev.nodes = [pnode, new]
                for child in new_dev.children or []:
                    child.nodes = [pnode, new]
                lu.LogInfo(f"Activating a new drbd (minor {new_minor}) on"
                           f" {self._Name(new)} for disk/{idx}")
                result = self.rpc.call_blockdev_create(
                    new, new_dev, new_dev.size, inst.name, False,
                    f"originstname+{inst.name}", False)
                if result.fail_msg:
                    raise errors.OpExecError(
                        f"Can't create the drbd device of disk/{idx} on node"
                        f" {self._Name(new)}: {result.fail_msg}")
                created.append(new_dev)
                new_devs.append(new_dev)
            # stand-alone until the primary is ready for it
            result = self.rpc.call_drbd_disconnect_net([new], new_devs)[new]
            result.Raise(f"Can't make the new drbd devices on node {self._Name(new)}"
                         " stand-alone")
        except errors.OpExecError:
            self._UndoNewNode(new, created, disks)
            raise
        if old_online:
            for idx, dev in selected:
                lu.LogInfo(f"Shutting down drbd for disk/{idx} on the old node"
                           f" {self._Name(old)}")
                result = self.rpc.call_blockdev_shutdown(old, dev)
                if result.fail_msg:
                    lu.LogWarning(f"Failed to shut down drbd for disk/{idx} on the old node"
                                  f" {self._Name(old)}: {result.fail_msg}",
                                  hint="clean this device up by hand soon")
        else:
            lu.LogWarning(f"The old secondary node {self._Name(old)} is offline: its drbd"
                          " devices and volumes are left as they are")
        lu.LogInfo("Detaching the primary's drbd devices from the network (=> standalone)")
        result = self.rpc.call_drbd_disconnect_net([pnode], disks)[pnode]
        if result.fail_msg:
            self._UndoNewNode(new, created, disks)
            if old_online:
                self._Reassemble([old, pnode], selected)
            raise errors.OpExecError(f"Can't detach the disks of node {self._Name(pnode)}"
                                     f" from the network: {result.fail_msg}")
        lu.LogInfo("Updating the instance's configuration")
        for dev in new_devs:
            stored = cfg.GetDiskInfo(dev.uuid)
            stored.logical_id = dev.logical_id
            stored.nodes = list(dev.nodes)
            stored.children = dev.children
            cfg.Update(stored)
        self.instance = cfg.GetInstanceInfo(inst.uuid)
        lu.LogInfo("Attaching the primary's drbd devices to the new secondary"
                   " (standalone => connected)")
        new_disks = cfg.GetInstanceDisks(inst.uuid)
        for node, result in self.rpc.call_drbd_attach_net([pnode, new], new_disks,
                                                           False).items():
            if result.fail_msg:
                lu.LogWarning(f"Can't attach the drbd disks on node {self._Name(node)}:"
                              f" {result.fail_msg}",
                              hint="see gnt-instance info for the state of the disks")

        def _RemoveOld() -> None:
            if not old_online:
                lu.LogWarning(f"Old secondary node {self._Name(old)} is offline: its"
                              " volumes of the instance stay there",
                              hint="remove them once the node is back")
                return
            for idx, dev in selected:
                lu.LogInfo(f"Removing the volumes of disk/{idx} on the old node"
                           f" {self._Name(old)}")
                for lv in dev.children or []:
                    self._Remove(old, lv, "old volume")

        self._SyncAndCleanUp(_RemoveOld, list(enumerate(new_disks)))

    def _UndoNewNode(self, new: str, created: list[objects.Disk],
                     disks: list[objects.Disk]) -> None:
        """Remove what was made on the new node; release its minors."""
        for disk in reversed(created):
            self._Remove(new, disk, "new device" if disk.dev_type == constants.DT_DRBD8
                         else "new volume")
        for dev in disks:
            self.cfg.ReleaseDRBDMinors(dev.uuid)

    def _Reassemble(self, nodes: list[str], selected: list[tuple[int, objects.Disk]]
                    ) -> None:
        """Bring the old mirror back after a failed switch."""
        for node in nodes:
            for idx, dev in selected:
                result = self.rpc.call_blockdev_assemble(
                    node, dev, self._InstanceRef(), node == self.instance.primary_node,
                    idx)
                if result.fail_msg:
                    self.lu.LogWarning(f"Can't reassemble disk/{idx} on node"
                                       f" {self._Name(node)}: {result.fail_msg}",
                                       hint="run activate-disks on the instance")

    # --- the whole -----------------------------------------------------------------------------

    def Exec(self, feedback_fn: FeedbackFn) -> None:
        """Activate the disks if needed, replace, deactivate them again."""
        inst = self.instance
        if not self.disk_indices:
            feedback_fn(f"No disks need replacement for instance '{inst.name}'")
            return
        feedback_fn(f"Replacing disk(s) {', '.join(map(str, self.disk_indices))} for"
                    f" instance '{inst.name}' {_MODE_NAMES[self.mode]}")
        # --auto found the disks active (it looked at them); others activate
        # the disks of a stopped instance for the time of the replacement
        activate = not inst.disks_active and self.mode != constants.REPLACE_DISK_AUTO
        if activate:
            iu.AssembleDisks(self.lu, inst, ignore_secondaries=True)
            self.instance = self.cfg.GetInstanceInfo(inst.uuid)
        try:
            if self.mode == constants.REPLACE_DISK_CHG:
                self._ExecChangeSecondary()
            else:
                self._ExecOnNode()
        finally:
            if activate:
                iu.ShutdownDisks(self.lu, self.cfg.GetInstanceInfo(inst.uuid))


class LUInstanceReplaceDisks(iu.InstanceLU):
    """Replace the disks of a DRBD instance (Ganeti's four modes)."""

    HPATH = "mirrors-replace"
    LOCK_NODE_RES = True

    def CheckArguments(self) -> None:
        """Mode and node/allocator combinations, as Ganeti's."""
        op = self.op
        if op.mode == constants.REPLACE_DISK_CHG:
            remote = op.remote_node or op.remote_node_uuid
            if remote and op.iallocator:
                raise errors.OpPrereqError("Give either the iallocator or the new"
                                           " secondary node, not both", errors.ECODE_INVAL)
            if not (remote or op.iallocator):
                raise errors.OpPrereqError(
                    "Changing the secondary node needs the new node (-n) or an"
                    " iallocator choosing it (-I)", errors.ECODE_INVAL)
        elif op.remote_node or op.remote_node_uuid or op.iallocator:
            raise errors.OpPrereqError("The iallocator and new node options can only be"
                                       " used when changing the secondary node",
                                       errors.ECODE_INVAL)
        if op.mode == constants.REPLACE_DISK_AUTO and op.disks:
            raise errors.OpPrereqError("Cannot give disks in automatic mode: it finds the"
                                       " faulty ones", errors.ECODE_INVAL)

    def ExpandNames(self) -> None:
        """The instance, its nodes and the new secondary (every node while
        an allocator chooses it)."""
        super().ExpandNames()
        op = self.op
        self.remote_node_uuid: str | None = None
        self.iallocator = ia.ResolveIallocator(self.cfg, op.iallocator) \
            if op.mode == constants.REPLACE_DISK_CHG else None
        if op.remote_node or op.remote_node_uuid:
            node = ExpandNode(self.cfg, op.remote_node) if op.remote_node else \
                self.cfg.GetNodeInfo(op.remote_node_uuid)
            if node is None:
                raise errors.OpPrereqError(f"Node '{op.remote_node_uuid}' not known",
                                           errors.ECODE_NOENT)
            op.remote_node, op.remote_node_uuid = node.name, node.uuid
            self.remote_node_uuid = node.uuid
        self.replacer = TLReplaceDisks(self, op.instance_uuid, op.mode,
                                       self.remote_node_uuid, list(op.disks or []),
                                       op.early_release, op.ignore_ipolicy,
                                       self.iallocator)

    def DeclareLocks(self, level: int) -> None:
        """The instance's nodes plus the new secondary; all nodes while an
        allocator has to choose it."""
        super().DeclareLocks(level)
        if self.iallocator and self.needed_locks is not None and \
                level in (locking.LEVEL_NODE, locking.LEVEL_NODE_RES):
            self.needed_locks[level] = locking.ALL_SET
            return
        if level in (locking.LEVEL_NODE, locking.LEVEL_NODE_RES) and \
                self.needed_locks is not None and level in self.needed_locks and \
                self.remote_node_uuid and \
                self.remote_node_uuid not in self.needed_locks[level]:
            self.needed_locks[level].append(self.remote_node_uuid)

    def CheckPrereq(self) -> None:
        """The instance, then the tasklet's checks (which run the allocator)."""
        super().CheckPrereq()
        self.replacer.CheckPrereq()
        # the allocator's choice, for the hooks
        self.remote_node_uuid = self.replacer.remote_node_uuid

    def BuildHooksEnv(self) -> dict[str, Any]:
        """Ganeti's MODE, NEW_SECONDARY and OLD_SECONDARY, and the instance's."""
        env = super().BuildHooksEnv()
        secondaries = self.cfg.GetInstanceSecondaryNodes(self.instance.uuid)
        env.update({
            "MODE": self.op.mode,
            "NEW_SECONDARY": iu.NodeName(self.cfg, self.remote_node_uuid)
            if self.remote_node_uuid else "",
            "OLD_SECONDARY": iu.NodeName(self.cfg, secondaries[0]) if secondaries else "",
        })
        return env

    def BuildHooksNodes(self) -> tuple[list[str], list[str]]:
        """The master, the primary node and the new secondary."""
        nodes = [self.cfg.GetMasterNode(), self.instance.primary_node]
        if self.remote_node_uuid:
            nodes.append(self.remote_node_uuid)
        nodes = list(dict.fromkeys(nodes))
        return nodes, nodes

    def Exec(self, feedback_fn: FeedbackFn) -> None:
        """Run the tasklet."""
        self.replacer.Exec(feedback_fn)
