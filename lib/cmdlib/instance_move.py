"""``gnt-instance move``: copy a non-mirrored instance's disks to another
node and make that node its primary (OpInstanceMove).

As Ganeti does it:

1. the instance is shut down on its node (with ``--ignore-consistency``
   a failure there is a warning: the source node may be dead);
2. its disks are created on the target node (the same names: file disks
   keep their paths, LVs their volume group and name) and activated there
   and on the source node;
3. each disk's data is copied through the import/export daemons
   (:mod:`ganeti.cmdlib.impexp`, with the cluster's compression tool named
   by ``--compress``);
4. if a copy failed, the new disks are removed and the instance stays on
   its node as it was (started again if it was running); otherwise the
   target becomes its primary node in the configuration, the old disks are
   removed (a failure there is a warning), and the instance is started on
   the target node if it is marked up.
"""

from __future__ import annotations

from typing import Any

from ganeti import constants, errors, locking, objects
from ganeti.cmdlib import disks as disks_mod
from ganeti.cmdlib import impexp
from ganeti.cmdlib import instance_utils as iu
from ganeti.cmdlib.base import FeedbackFn
from ganeti.cmdlib.instance_storage import SetInstancePrimaryNode
from ganeti.cmdlib.node import ExpandNode


class LUInstanceMove(iu.InstanceLU):
    """Move a non-mirrored instance to another node by copying its disks."""

    HPATH = "instance-move"
    LOCK_NODE_RES = True

    def ExpandNames(self) -> None:
        """The instance, its node and the target node."""
        super().ExpandNames()
        if self.op.target_node_uuid and not self.op.target_node:
            node = self.cfg.GetNodeInfo(self.op.target_node_uuid)
            if node is None:
                raise errors.OpPrereqError(f"Node '{self.op.target_node_uuid}' not known",
                                           errors.ECODE_NOENT)
        else:
            node = ExpandNode(self.cfg, self.op.target_node)
        self.op.target_node, self.op.target_node_uuid = node.name, node.uuid

    def DeclareLocks(self, level: int) -> None:
        """The instance's node and the target."""
        super().DeclareLocks(level)
        if level in (locking.LEVEL_NODE, locking.LEVEL_NODE_RES) and \
                self.needed_locks is not None and level in self.needed_locks and \
                self.op.target_node_uuid not in self.needed_locks[level]:
            self.needed_locks[level].append(self.op.target_node_uuid)

    def CheckPrereq(self) -> None:
        """A copyable template, a usable target with room for it."""
        super().CheckPrereq()
        cfg, inst = self.cfg, self.instance
        template = cfg.GetInstanceDiskTemplate(inst.uuid)
        self.disks = cfg.GetInstanceDisks(inst.uuid)
        if template not in constants.DTS_COPYABLE:
            raise errors.OpPrereqError(
                f"Disk template {template} not suitable for copying", errors.ECODE_STATE)
        for idx, disk in enumerate(self.disks):
            if disk.dev_type not in constants.DTS_COPYABLE:
                raise errors.OpPrereqError(
                    f"Instance disk {idx} has disk type {disk.dev_type} and is not"
                    " suitable for copying", errors.ECODE_STATE)
        target_uuid = self.op.target_node_uuid
        if target_uuid == inst.primary_node:
            raise errors.OpPrereqError(
                f"Instance {inst.name} is already on the node {self.op.target_node}",
                errors.ECODE_STATE)
        target = iu.CheckTargetNode(cfg, target_uuid)
        self.target = target
        self.source = cfg.GetNodeInfo(inst.primary_node)
        compress = self.op.compress or constants.IEC_NONE
        tools = cfg.GetClusterInfo().compression_tools or []
        if compress != constants.IEC_NONE and compress not in tools:
            raise errors.OpPrereqError(
                f"Compression tool '{compress}' is not one of the cluster's compression"
                f" tools ({', '.join(tools) or 'none'})", errors.ECODE_INVAL)
        self.op.compress = compress
        cluster = cfg.GetClusterInfo()
        bep = cluster.FillBE(inst)
        if not self.op.ignore_ipolicy:
            self._CheckIpolicy(bep)
        if inst.admin_state == constants.ADMINST_UP:
            iu.CheckNodeFreeMemory(self, target_uuid, f"moving instance {inst.name}",
                                   int(bep[constants.BE_MAXMEM]), inst.hypervisor,
                                   cluster.FillHV(inst))
        else:
            self.LogInfo("Not checking memory on the target node as the instance will"
                         " not be started")
        iu.CheckNicsBridgesExist(self, inst.nics, target_uuid)
        if template in constants.DTS_LVM or template == constants.DT_FILE:
            specs = [{constants.IDISK_SIZE: disk.size,
                      constants.IDISK_VG: disk.logical_id[0]
                      if disk.dev_type == constants.DT_PLAIN else None}
                     for disk in self.disks]
            if template in constants.DTS_LVM:
                disks_mod.CheckNodesFreeDiskPerVG(
                    self, [target_uuid],
                    disks_mod.ComputeDiskSizePerVG(cfg, template, specs))

    def _CheckIpolicy(self, bep: dict[str, Any]) -> None:
        """The instance against the target group's policy (its specs and
        disk template; the vCPU ratio belongs to allocation, as in Ganeti)."""
        ipolicy = self.cfg.GetGroupIPolicy(self.cfg.GetNodeGroup(self.target.group))
        violations = iu.ComputeIPolicySpecViolation(
            ipolicy, int(bep[constants.BE_MAXMEM]), int(bep[constants.BE_VCPUS]),
            len(self.disks), len(self.instance.nics), [d.size for d in self.disks],
            int(bep.get(constants.BE_SPINDLE_USE) or 1),
            self.cfg.GetInstanceDiskTemplate(self.instance.uuid))
        if violations:
            raise errors.OpPrereqError(
                iu.FormatIPolicyViolations(self.instance.name, violations),
                errors.ECODE_INVAL)

    def BuildHooksEnv(self) -> dict[str, Any]:
        """Ganeti's move variables."""
        env = super().BuildHooksEnv()
        env.update({"TARGET_NODE": self.op.target_node,
                    "SHUTDOWN_TIMEOUT": self.op.shutdown_timeout,
                    "OLD_PRIMARY": self.source.name,
                    "NEW_PRIMARY": self.op.target_node})
        return env

    def BuildHooksNodes(self) -> tuple[list[str], list[str]]:
        """The master, the source and the target node."""
        nodes = list(dict.fromkeys([self.cfg.GetMasterNode(), self.source.uuid,
                                    self.target.uuid]))
        return nodes, nodes

    # --- the move ---------------------------------------------------------------------

    def _Shutdown(self, feedback_fn: FeedbackFn) -> None:
        inst = self.instance
        feedback_fn(f"Shutting down instance {inst.name} on source node {self.source.name}")
        iu.ShutdownToLeave(self, inst, self.source.uuid, self.op.shutdown_timeout,
                           bool(self.op.ignore_consistency))

    def _CreateOnTarget(self, feedback_fn: FeedbackFn) -> None:
        """The disks (and their file directories) on the target node."""
        for directory in sorted(iu.FileDirs(self.disks)):
            result = self.rpc.call_file_storage_dir_create(self.target.uuid, directory)
            result.Raise(f"Failed to create directory '{directory}' on node"
                         f" {self.target.name}")
        feedback_fn(f"* creating the disks on target node {self.target.name}")
        iu.CreateDisks(self, self.instance, self.disks, self.target.uuid, feedback_fn)

    def _RemoveFrom(self, node: objects.Node) -> bool:
        # RemoveDisks also removes the file disks' directories
        return iu.RemoveDisks(self, self.disks, node.uuid, self.instance.name)

    def _Copy(self, feedback_fn: FeedbackFn) -> list[int]:
        """Activate the disks on both nodes and copy them; the indices of
        the disks whose copy failed."""
        inst = self.instance
        both = [(idx, disk) for idx, disk in enumerate(self.disks)]
        try:
            disks_mod.AssembleOnNodes(self, inst, both, self.source.uuid)
            disks_mod.AssembleOnNodes(self, inst, both, self.target.uuid)
            transfers = [impexp.DiskTransfer(
                f"disk/{idx}", constants.IEIO_RAW_DISK, [disk.ToDict()],
                constants.IEIO_RAW_DISK, [disk.ToDict()]) for idx, disk in both]
            results = impexp.TransferInstanceData(
                self, feedback_fn, self.source.uuid, self.target.uuid,
                self.target.secondary_ip or self.target.primary_ip, self.op.compress,
                inst, transfers)
        finally:
            for node in (self.source, self.target):
                disks_mod.ShutdownOnNodes(self, inst, self.disks, node.uuid, node.uuid)
        return [idx for idx, ok in enumerate(results) if not ok]

    def Exec(self, feedback_fn: FeedbackFn) -> None:
        """Shut down, create, copy; switch the primary node or undo."""
        inst = self.instance
        self._Shutdown(feedback_fn)
        if inst.disks_active:
            self.cfg.MarkInstanceDisksInactive(inst.uuid)
        self._CreateOnTarget(feedback_fn)
        try:
            failed = self._Copy(feedback_fn)
        except errors.OpExecError:
            failed = None
            raised = True
        else:
            raised = False
        if raised or failed:
            self.LogWarning(f"Removing the new disks of instance {inst.name} from node"
                            f" {self.target.name}")
            self._RemoveFrom(self.target)
            what = ("activating the disks" if raised else
                    "copying disk(s) " + ", ".join(map(str, failed or [])))
            self._RestartOnSource(feedback_fn)
            raise errors.OpExecError(
                f"Errors during disk copy ({what}); instance {inst.name} stays on node"
                f" {self.source.name}")
        inst = SetInstancePrimaryNode(self, inst.uuid, self.target.uuid)
        self.instance = inst
        feedback_fn(f"* removing the disks of instance {inst.name} from node"
                    f" {self.source.name}")
        if not self._RemoveFrom(self.source):
            self.LogWarning(f"Could not remove all old disks of instance {inst.name} from"
                            f" node {self.source.name}; remove them by hand")
        if inst.admin_state == constants.ADMINST_UP:
            feedback_fn(f"* starting the instance on the target node {self.target.name}")
            iu.StartInstanceOnNode(self, inst, reason=getattr(self.op, "reason", None))

    def _RestartOnSource(self, feedback_fn: FeedbackFn) -> None:
        """Start the instance again where it was, if it is marked up."""
        inst = self.cfg.GetInstanceInfo(self.instance.uuid)
        if inst.admin_state != constants.ADMINST_UP or self.source.offline:
            return
        feedback_fn(f"* starting the instance again on node {self.source.name}")
        try:
            iu.StartInstanceOnNode(self, inst, reason=getattr(self.op, "reason", None))
        except errors.OpExecError as err:
            self.LogWarning(str(err))
