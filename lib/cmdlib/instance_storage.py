"""An instance's disks: grow-disk, activate-disks, deactivate-disks and
recreate-disks, plus the disk steps other LUs share (assembling and
shutting down the disks on a node, checking that an instance is down).

File images (``file``, ``sharedfile``) need no assembly beyond existing;
"activating" a disk makes the node link it under the disk links directory,
which is what the hypervisor uses. ``disks_active`` in the configuration
records whether the disks should be active, as in Ganeti.
"""

from __future__ import annotations

from typing import Any

from ganeti import constants, errors, locking, objects
from ganeti.cmdlib import disks as disks_mod
from ganeti.cmdlib import iallocator as ia
from ganeti.cmdlib import instance_alloc
from ganeti.cmdlib import instance_utils as iu
from ganeti.cmdlib.base import FeedbackFn, LogicalUnit
from ganeti.cmdlib.node import ExpandNode


#: Disk parameters recreate-disks may change (Ganeti's)
_RECREATE_MODIFIABLE = frozenset([constants.IDISK_SIZE, constants.IDISK_MODE,
                                  constants.IDISK_SPINDLES])


def SetInstancePrimaryNode(lu: LogicalUnit, instance_uuid: str,
                           node_uuid: str) -> objects.Instance:
    """Make ``node_uuid`` the primary node of an instance: the disks of a
    non-mirrored or externally mirrored one move with it, a DRBD disk keeps
    its two nodes (``node_uuid`` is one of them); returns the instance."""
    cfg: Any = lu.cfg
    for disk in cfg.GetInstanceDisks(instance_uuid):
        if disk.dev_type in constants.DTS_INT_MIRROR:
            continue  # both ends stay; the new primary is one of them
        if list(disk.nodes or []) != [node_uuid]:
            disk.nodes = [node_uuid]
            cfg.Update(disk)
    inst = cfg.GetInstanceInfo(instance_uuid)
    inst.primary_node = node_uuid
    cfg.Update(inst)
    return cfg.GetInstanceInfo(instance_uuid)


def CheckDiskSizePolicy(ipolicy: dict[str, Any], instance_name: str, idx: int,
                        size: int) -> None:
    """OpPrereqError (ECODE_INVAL) unless ``size`` fits the disk size range of
    one of the policy's min/max pairs."""
    ranges = []
    for minmax in ipolicy.get(constants.ISPECS_MINMAX) or []:
        low = minmax[constants.ISPECS_MIN].get(constants.ISPEC_DISK_SIZE)
        high = minmax[constants.ISPECS_MAX].get(constants.ISPEC_DISK_SIZE)
        if low is None or high is None or low <= size <= high:
            return
        ranges.append(f"[{low}, {high}]")
    if ranges:
        raise errors.OpPrereqError(
            f"Instance {instance_name} would not meet the instance policy: disk {idx}"
            f" size value {size} is not in range {' or '.join(ranges)} (use"
            " --ignore-ipolicy to grow it nonetheless)", errors.ECODE_INVAL)


def _FindDisk(cfg: Any, instance: objects.Instance, idx: int) -> objects.Disk:
    disks = cfg.GetInstanceDisks(instance.uuid)
    if not 0 <= idx < len(disks):
        raise errors.OpPrereqError(
            f"Invalid disk index '{idx}': instance {instance.name} has {len(disks)}"
            " disk(s)", errors.ECODE_INVAL)
    return disks[idx]


# --- grow-disk ---------------------------------------------------------------------------

class LUInstanceGrowDisk(iu.InstanceLU):
    """Grow one disk of an instance (never shrink)."""

    HPATH = "disk-grow"
    LOCK_NODE_RES = True

    def CheckPrereq(self) -> None:
        """The disk exists and can grow; the node has the room."""
        super().CheckPrereq()
        inst, op = self.instance, self.op
        template = self.cfg.GetInstanceDiskTemplate(inst.uuid)
        if template not in constants.DTS_GROWABLE:
            raise errors.OpPrereqError(
                f"Instance's disk layout '{template}' does not support growing",
                errors.ECODE_INVAL)
        self.template = template
        self.disk = _FindDisk(self.cfg, inst, op.disk)
        iu.CheckNodeOnline(self.cfg, inst.primary_node)
        current = int(self.disk.size)
        if op.absolute:
            self.target = op.amount
            self.delta = op.amount - current
            if self.delta < 0:
                raise errors.OpPrereqError(
                    f"Requested size ({iu.NiceSize(self.target)}) is smaller than the"
                    f" current size of disk {op.disk} ({iu.NiceSize(current)});"
                    " disks cannot shrink", errors.ECODE_STATE)
        else:
            self.delta = op.amount
            self.target = current + op.amount
        if self.delta > 0:
            node = self.cfg.GetNodeInfo(inst.primary_node)
            if not op.ignore_ipolicy:
                CheckDiskSizePolicy(self.cfg.GetGroupIPolicy(self.cfg.GetNodeGroup(node.group)),
                                    inst.name, op.disk, self.target)
            if template in constants.DTS_FILEBASED:
                iu.CheckNodeFreeStorage(self, node, template, self.delta)
            elif template in constants.DTS_LVM:
                vg = self.disk.children[0].logical_id[0] if self.disk.children \
                    else self.disk.logical_id[0]
                disks_mod.CheckNodesFreeDiskPerVG(
                    self, self.cfg.GetInstanceNodes(inst.uuid), {vg: self.delta})

    def BuildHooksEnv(self) -> dict[str, Any]:
        """The instance variables plus DISK, AMOUNT and ABSOLUTE."""
        env = super().BuildHooksEnv()
        env.update({"DISK": self.op.disk, "AMOUNT": self.op.amount,
                    "ABSOLUTE": self.op.absolute})
        return env

    def Exec(self, feedback_fn: FeedbackFn) -> None:
        """Dry run, then grow the image; record the new size."""
        inst, disk, node = self.instance, self.disk, self.instance.primary_node
        node_name = iu.NodeName(self.cfg, node)
        if self.delta == 0:
            feedback_fn(f"Disk {self.op.disk} of instance {inst.name} already has"
                        f" {iu.NiceSize(self.target)}, nothing to do")
            return
        feedback_fn(f"Growing disk {self.op.disk} of instance '{inst.name}' by"
                    f" {iu.NiceSize(self.delta)} to {iu.NiceSize(self.target)}")
        was_active = inst.disks_active
        iu.AssembleDisks(self, inst, disks=[disk])
        # As Ganeti: a dry run on every node of the disk, then the backing
        # storage everywhere, then the device itself on the primary
        nodes = disks_mod.DiskNodes(disk, node)
        for dry_node in nodes:
            result = self.rpc.call_blockdev_grow(dry_node, disk.ToDict(), self.delta, True,
                                                 True, disks_mod.IsExclusiveStorage(
                                                     self.cfg, dry_node))
            if result.fail_msg:
                if not was_active:
                    iu.ShutdownDisks(self, inst, disks=[disk])
                raise errors.OpExecError(
                    f"Dry-run grow request failed to node {iu.NodeName(self.cfg, dry_node)}:"
                    f" {result.fail_msg}")
        for grow_node in nodes:
            result = self.rpc.call_blockdev_grow(grow_node, disk.ToDict(), self.delta,
                                                 False, True, disks_mod.IsExclusiveStorage(
                                                     self.cfg, grow_node))
            if result.fail_msg:
                raise errors.OpExecError(
                    f"Grow request failed to node {iu.NodeName(self.cfg, grow_node)}:"
                    f" {result.fail_msg}")
        result = self.rpc.call_blockdev_grow(node, disk.ToDict(), self.delta, False, False,
                                             disks_mod.IsExclusiveStorage(self.cfg, node))
        if result.fail_msg:
            raise errors.OpExecError(f"Grow request failed to node {node_name}:"
                                     f" {result.fail_msg}")
        disk = self.cfg.GetDiskInfo(disk.uuid)
        disk.RecordGrow(self.target - disk.size)
        self.cfg.Update(disk)
        if self.op.wait_for_sync and self.template in constants.DTS_INT_MIRROR:
            if not disks_mod.WaitForSync(self, inst, disks=[disk]):
                self.LogWarning("Disk syncing has not returned a good status; check"
                                " the instance")
        if not was_active and inst.admin_state != constants.ADMINST_UP:
            iu.ShutdownDisks(self, inst, disks=[disk])


# --- activate-disks / deactivate-disks --------------------------------------------------------

class LUInstanceActivateDisks(iu.InstanceLU):
    """Activate an instance's disks on its primary node."""

    def CheckPrereq(self) -> None:
        """The primary node must be online."""
        super().CheckPrereq()
        iu.CheckNodeOnline(self.cfg, self.instance.primary_node)

    def Exec(self, feedback_fn: FeedbackFn) -> list[tuple[str, str, str | None]]:
        """Assemble every disk; return (node, disk name, device) for each.

        File images are not checked against the recorded size, so
        ``ignore_size`` changes nothing for them; nor do they resync.
        """
        return iu.AssembleDisks(self, self.instance)


class LUInstanceDeactivateDisks(iu.InstanceLU):
    """Deactivate an instance's disks (the instance must be down unless
    forced)."""

    def CheckPrereq(self) -> None:
        """Without force, the instance must be marked down and not run."""
        super().CheckPrereq()
        if not self.op.force:
            iu.CheckInstanceState(self, self.instance, iu.INSTANCE_DOWN, "cannot shutdown disks")

    def Exec(self, feedback_fn: FeedbackFn) -> None:
        """Shut every disk down and record them inactive."""
        iu.ShutdownDisks(self, self.instance)


# --- recreate-disks ---------------------------------------------------------------------------

class LUInstanceRecreateDisks(iu.InstanceLU):
    """Recreate missing disks (empty), optionally on other nodes.

    A drbd disk is recreated where it lacks something: the missing volumes
    on each of its nodes, then the DRBD device on both (fresh metadata, the
    primary as sync source). New nodes (``-n A:B``, or chosen by an
    allocator, ``-I``, in the primary node's group) get new minors; the
    port and the secret stay, and what is left on the old nodes stays.
    """

    HPATH = "instance-recreate-disks"
    LOCK_NODE_RES = True

    def CheckArguments(self) -> None:
        """Disk indices unique, only modifiable parameters, nodes or allocator."""
        specs: dict[int, dict[str, Any]] = {}
        for entry in self.op.disks or []:
            idx, params = (entry, {}) if isinstance(entry, int) else (entry[0], entry[1])
            if idx in specs:
                raise errors.OpPrereqError(
                    f"Some disks have been specified more than once: {idx}",
                    errors.ECODE_INVAL)
            bad = sorted(set(params) - _RECREATE_MODIFIABLE)
            if bad:
                raise errors.OpPrereqError(
                    f"Parameters for disk {idx} try to change unmodifiable"
                    f" parameter(s): {', '.join(bad)}", errors.ECODE_INVAL)
            size = params.get(constants.IDISK_SIZE)
            if size is not None and (not isinstance(size, int) or size <= 0):
                raise errors.OpPrereqError(
                    f"Invalid size {size!r} for disk {idx}: must be a positive number"
                    " of MiB", errors.ECODE_INVAL)
            mode = params.get(constants.IDISK_MODE)
            if mode is not None and mode not in constants.DISK_ACCESS_SET:
                raise errors.OpPrereqError(f"Invalid mode '{mode}' for disk {idx}",
                                           errors.ECODE_INVAL)
            specs[idx] = dict(params)
        self.specs = specs
        if self.op.iallocator and (self.op.nodes or self.op.node_uuids):
            raise errors.OpPrereqError("Give either the iallocator or the new nodes",
                                       errors.ECODE_INVAL)
        if self.op.iallocator and specs:
            raise errors.OpPrereqError("Can't recreate disks partially and change the"
                                       " nodes at the same time (the iallocator"
                                       " chooses new nodes)", errors.ECODE_INVAL)
        # Only an allocator named (or ".") is used: without -n the disks are
        # recreated where they are
        self.iallocator = ia.ResolveIallocator(self.cfg, self.op.iallocator)
        self.op.iallocator = self.iallocator

    def ExpandNames(self) -> None:
        """The instance, its nodes and the new nodes."""
        super().ExpandNames()
        self.new_nodes = [ExpandNode(self.cfg, name) for name in self.op.nodes or []]
        self.op.node_uuids = [node.uuid for node in self.new_nodes] or None
        self.op.nodes = [node.name for node in self.new_nodes]

    def DeclareLocks(self, level: int) -> None:
        """The instance's nodes plus the new ones (every node for an
        allocator: those it does not choose are released in CheckPrereq)."""
        super().DeclareLocks(level)
        if level in (locking.LEVEL_NODE, locking.LEVEL_NODE_RES) and \
                self.needed_locks is not None and level in self.needed_locks:
            if self.iallocator:
                self.needed_locks[level] = locking.ALL_SET
                return
            for uuid in self.op.node_uuids or []:
                if uuid not in self.needed_locks[level]:
                    self.needed_locks[level].append(uuid)

    def CheckPrereq(self) -> None:
        """Instance down, valid indices, target usable, disks missing there."""
        super().CheckPrereq()
        inst, cfg = self.instance, self.cfg
        disks = cfg.GetInstanceDisks(inst.uuid)
        if not disks:
            raise errors.OpPrereqError(f"Instance '{inst.name}' has no disks",
                                       errors.ECODE_INVAL)
        current_nodes = cfg.GetInstanceNodes(inst.uuid)
        self.template = cfg.GetInstanceDiskTemplate(inst.uuid)
        iu.CheckInstanceState(self, inst, iu.INSTANCE_NOT_RUNNING, "cannot recreate disks")
        if self.iallocator:
            self._RunAllocator(disks)
        if self.op.node_uuids:
            if len(self.op.node_uuids) != len(current_nodes):
                raise errors.OpPrereqError(
                    f"Instance {inst.name} currently has {len(current_nodes)} nodes, but"
                    f" new node list has {len(self.op.node_uuids)} nodes",
                    errors.ECODE_INVAL)
            if len(set(self.op.node_uuids)) != len(self.op.node_uuids):
                raise errors.OpPrereqError(
                    f"The new nodes of instance {inst.name} must differ (the secondary"
                    " node cannot be the primary node)", errors.ECODE_INVAL)
            self.target_uuid = self.op.node_uuids[0]
            for uuid in self.op.node_uuids:
                iu.CheckTargetNode(cfg, uuid)
        else:
            self.target_uuid = inst.primary_node
            iu.CheckNodeOnline(cfg, inst.primary_node,
                               f"Instance {inst.name}'s primary node is offline; give"
                               " a new node with -n")
        if self.specs:
            maxidx = max(self.specs)
            if maxidx >= len(disks):
                raise errors.OpPrereqError(f"Invalid disk index '{maxidx}'",
                                           errors.ECODE_INVAL)
        selected = sorted(self.specs) if self.specs else list(range(len(disks)))
        if self.op.node_uuids and selected != list(range(len(disks))):
            raise errors.OpPrereqError("Can't recreate disks partially and change the"
                                       " nodes at the same time", errors.ECODE_INVAL)
        self.selected = selected
        if self.template == constants.DT_DRBD8:
            self._PlanDrbd(disks)
            return
        target_name = iu.NodeName(cfg, self.target_uuid)
        for idx in selected:
            result = self.rpc.call_blockdev_find(self.target_uuid, disks[idx].ToDict())
            result.Raise(f"Can't check disk {idx} on node {target_name}", prereq=True,
                         ecode=errors.ECODE_ENVIRON)
            if result.payload:
                raise errors.OpPrereqError(
                    f"Disk {idx} of instance {inst.name} already exists on node"
                    f" {target_name}; recreate-disks only recreates missing disks",
                    errors.ECODE_STATE)
        needed = sum(self.specs.get(idx, {}).get(constants.IDISK_SIZE, disks[idx].size)
                     for idx in selected)
        if self.template == constants.DT_PLAIN:
            per_vg: dict[str, int] = {}
            for idx in selected:
                vg = disks[idx].logical_id[0]
                per_vg[vg] = per_vg.get(vg, 0) + self.specs.get(idx, {}).get(
                    constants.IDISK_SIZE, disks[idx].size)
            disks_mod.CheckNodesFreeDiskPerVG(self, [self.target_uuid], per_vg)
        elif self.template in constants.DTS_FILEBASED:
            iu.CheckNodeFreeStorage(self, cfg.GetNodeInfo(self.target_uuid),
                                    self.template, needed)

    def _RunAllocator(self, disks: list[objects.Disk]) -> None:
        """New nodes in the primary node's group for the instance as it is
        (as Ganeti: an allocate request for its spec). The locks of the
        instance's current nodes (its disks are shut down there) and of the
        new ones are kept."""
        inst, cfg = self.instance, self.cfg
        bep = cfg.GetClusterInfo().FillBE(inst)
        group = cfg.GetNodeGroup(cfg.GetNodeInfo(inst.primary_node).group)
        req = ia.IAReqInstanceAlloc(
            name=inst.name, memory=int(bep[constants.BE_MAXMEM]),
            spindle_use=int(bep.get(constants.BE_SPINDLE_USE, 1)),
            disks=[{constants.IDISK_SIZE: disk.size, constants.IDISK_MODE: disk.mode,
                    constants.IDISK_SPINDLES: disk.spindles} for disk in disks],
            disk_template=self.template, os=inst.os, tags=list(inst.GetTags()),
            nics=[{}], vcpus=int(bep[constants.BE_VCPUS]), hypervisor=inst.hypervisor,
            node_whitelist=sorted(node.name for node in cfg.GetAllNodesInfo().values()
                                  if node.group == group.uuid),
            group_name=group.name)
        nodes = instance_alloc.RunInstanceAllocator(
            self, str(self.iallocator), req, f"Selected new nodes for instance {inst.name}")
        self.op.node_uuids = [node.uuid for node in nodes]
        self.op.nodes = [node.name for node in nodes]
        instance_alloc.ReleaseNodeLocks(
            self, list(self.op.node_uuids) + list(cfg.GetInstanceNodes(inst.uuid)))

    def _PlanDrbd(self, disks: list[objects.Disk]) -> None:
        """Which volumes each node lacks (``self.plan``: disk index -> node
        -> indices of the missing children); refuse disks that lack nothing,
        size changes of disks whose data volume still exists, and nodes
        without the room."""
        cfg, inst = self.cfg, self.instance
        self.plan: dict[int, dict[str, list[int]]] = {}
        needed: dict[str, dict[str, int]] = {}
        for idx in self.selected:
            disk = disks[idx]
            nodes = list(self.op.node_uuids or disks_mod.DiskNodes(disk, inst.primary_node))
            size = self.specs.get(idx, {}).get(constants.IDISK_SIZE, disk.size)
            missing: dict[str, list[int]] = {}
            for node in nodes:
                missing[node] = [cidx for cidx, child in enumerate(disk.children or [])
                                 if not disks_mod.DiskExistsOnNode(self, node, child)]
            if not any(missing.values()):
                raise errors.OpPrereqError(
                    f"Disk {idx} of instance {inst.name} already exists on nodes"
                    f" {', '.join(iu.NodeName(cfg, node) for node in nodes)};"
                    " recreate-disks only recreates missing disks", errors.ECODE_STATE)
            for node, cidxs in missing.items():
                if size != disk.size and 0 not in cidxs:
                    raise errors.OpPrereqError(
                        f"Cannot change the size of disk {idx} of instance {inst.name}:"
                        f" its data volume {'/'.join(disk.children[0].logical_id)}"
                        f" exists on node {iu.NodeName(cfg, node)}",
                        errors.ECODE_STATE)
                for cidx in cidxs:
                    child = disk.children[cidx]
                    vg = child.logical_id[0]
                    node_needs = needed.setdefault(node, {})
                    node_needs[vg] = node_needs.get(vg, 0) + (size if cidx == 0
                                                              else child.size)
            if 0 in missing[nodes[0]]:
                kept = [iu.NodeName(cfg, node) for node in nodes[1:] if 0 not in missing[node]]
                if kept:
                    self.LogWarning(f"Disk {idx} of instance {inst.name} is recreated empty"
                                    f" on its primary node: its data on {', '.join(kept)}"
                                    " will be overwritten by the initial sync")
            self.plan[idx] = missing
        for node, per_vg in needed.items():
            disks_mod.CheckNodesFreeDiskPerVG(self, [node], per_vg)

    def BuildHooksEnv(self) -> dict[str, Any]:
        """The instance variables (with the new primary node, if any)."""
        from ganeti import hooksmaster
        override = {}
        if self.op.node_uuids:
            override["INSTANCE_PRIMARY"] = iu.NodeName(self.cfg, self.target_uuid)
            override["INSTANCE_SECONDARY"] = " ".join(
                iu.NodeName(self.cfg, uuid) for uuid in self.op.node_uuids[1:])
        return hooksmaster.BuildInstanceHookEnv(self.cfg, self.instance, override)

    def BuildHooksNodes(self) -> tuple[list[str], list[str]]:
        """The master, the instance's nodes and the new ones."""
        pre, _ = super().BuildHooksNodes()
        nodes = list(dict.fromkeys(pre + list(self.op.node_uuids or [])))
        return nodes, nodes

    def Exec(self, feedback_fn: FeedbackFn) -> None:
        """Record new node and parameters, then create the disks empty."""
        inst, cfg = self.instance, self.cfg
        if self.template == constants.DT_DRBD8:
            ec_id = self.proc.GetECId() if self.proc is not None else "recreate-disks"
            try:
                self._ExecDrbd(feedback_fn, ec_id)
            finally:
                cfg.DropECReservations(ec_id)
            return
        if self.target_uuid != inst.primary_node:
            feedback_fn(f"Moving instance {inst.name} to node"
                        f" {iu.NodeName(cfg, self.target_uuid)}")
            inst = SetInstancePrimaryNode(self, inst.uuid, self.target_uuid)
            self.instance = inst
        disks = cfg.GetInstanceDisks(inst.uuid)
        for idx, params in self.specs.items():
            disk = disks[idx]
            changed = False
            if params.get(constants.IDISK_SIZE) not in (None, disk.size):
                disk.size = params[constants.IDISK_SIZE]
                changed = True
            if params.get(constants.IDISK_MODE) not in (None, disk.mode):
                disk.mode = params[constants.IDISK_MODE]
                changed = True
            if changed:
                cfg.Update(disk)
        disks = cfg.GetInstanceDisks(inst.uuid)
        iu.CreateDisks(self, inst, [disks[idx] for idx in self.selected], self.target_uuid,
                       feedback_fn)

    def _ExecDrbd(self, feedback_fn: FeedbackFn, ec_id: Any) -> None:
        """DRBD disks: new nodes get new minors (the port and the secret
        stay, as in Ganeti); then on each node, the secondary first, the
        missing volumes and the DRBD device are created (with fresh
        metadata; the primary is the source of the initial sync)."""
        inst, cfg = self.instance, self.cfg
        disks = cfg.GetInstanceDisks(inst.uuid)
        # Devices still configured (active disks) would keep their minors busy
        disks_mod.ShutdownOnNodes(self, inst, [disks[idx] for idx in self.selected],
                                  inst.primary_node)
        new_nodes = list(self.op.node_uuids or [])
        for idx in self.selected:
            disk = disks[idx]
            params = self.specs.get(idx, {})
            changed = bool(new_nodes)
            if new_nodes:
                _, _, port, _, _, secret = disk.logical_id
                minors = cfg.AllocateDRBDMinor(new_nodes, disk.uuid, ec_id)
                disk.logical_id = (new_nodes[0], new_nodes[1], port, minors[0], minors[1],
                                   secret)
                disk.nodes = list(new_nodes)
                for child in disk.children or []:
                    child.nodes = list(new_nodes)
            if params.get(constants.IDISK_SIZE) not in (None, disk.size):
                disk.size = params[constants.IDISK_SIZE]
                disk.children[0].size = disk.size
                changed = True
            if params.get(constants.IDISK_MODE) not in (None, disk.mode):
                disk.mode = params[constants.IDISK_MODE]
                changed = True
            if changed:
                cfg.Update(disk, feedback_fn)
        if new_nodes:
            self.LogWarning("Changing the instance's nodes, you will have to remove any"
                            " disks left on the older nodes manually")
            inst = SetInstancePrimaryNode(self, inst.uuid, new_nodes[0])
            self.instance = inst
        disks = cfg.GetInstanceDisks(inst.uuid)
        primary = inst.primary_node
        created: list[tuple[str, objects.Disk]] = []
        try:
            for idx in self.selected:
                disk = disks[idx]
                for node in reversed(disks_mod.DiskNodes(disk, primary)):
                    for cidx in self.plan[idx].get(node, []):
                        disks_mod.CreateSingleBlockDev(self, node, inst, disk.children[cidx],
                                                       node == primary)
                        created.append((node, disk.children[cidx]))
                    disks_mod.CreateSingleBlockDev(self, node, inst, disk, node == primary)
                    created.append((node, disk))
                feedback_fn(f"* recreated disk {idx} ({disk.size} MiB)")
        except errors.OpExecError:
            for node, dev in reversed(created):
                node_dev = dev.ToDict()
                if dev.dev_type == constants.DT_DRBD8:
                    result = self.rpc.call_blockdev_shutdown(node, node_dev)
                else:
                    result = self.rpc.call_blockdev_remove(node, node_dev)
                if result.fail_msg:
                    self.LogWarning(f"Could not undo the creation of"
                                    f" {disks_mod.DescribeDisk(dev)} on node"
                                    f" {iu.NodeName(cfg, node)}: {result.fail_msg}")
            raise
