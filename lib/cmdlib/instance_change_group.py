"""gnt-instance change-group: move an instance to another node group.

:class:`LUInstanceChangeGroup` asks an instance allocator (``-I``, else
the cluster's default one) with a ``change-group`` request where the
instance should go, among the target groups (``--to``; by default every
group but the instance's own), and submits the allocator's jobs (replace
the secondary, fail over or migrate, ...); their IDs are its result, as
in Ganeti. The instance, the groups involved and their nodes are locked
shared while the allocator computes: the jobs take their own locks.
"""

from __future__ import annotations

from typing import Any

from ganeti import errors, locking, opcodes, utils
from ganeti.cmdlib import iallocator_relocation as iar
from ganeti.cmdlib import instance_utils as iu
from ganeti.cmdlib.base import FeedbackFn


class LUInstanceChangeGroup(iu.InstanceLU):
    """Move an instance to another node group (the allocator's jobs)."""

    HPATH = "instance-change-group"

    def ExpandNames(self) -> None:
        """The instance; the allocator; the target groups (shared locks on
        everything)."""
        super().ExpandNames()
        cfg, op = self.cfg, self.op
        self.iallocator = iar.RequireIallocator(cfg, op.iallocator)
        self.req_targets = iar.ExpandGroups(cfg, op.target_groups)
        self.share_locks = dict.fromkeys(locking.LEVELS, 1)
        assert self.needed_locks is not None
        self.needed_locks[locking.LEVEL_NODEGROUP] = []

    def DeclareLocks(self, level: int) -> None:
        """The instance's groups and the targets (all groups without
        targets), then every node of the locked groups."""
        assert self.needed_locks is not None
        cfg = self.cfg
        if level == locking.LEVEL_NODEGROUP:
            if self.req_targets:
                self.needed_locks[level] = sorted(
                    set(self.req_targets)
                    | cfg.GetInstanceNodeGroups(self.op.instance_uuid))
            else:
                self.needed_locks[level] = locking.ALL_SET
        elif level == locking.LEVEL_NODE:
            groups = self.owned_locks(locking.LEVEL_NODEGROUP) if self.glm is not None \
                else set(cfg.GetNodeGroupList())
            self.needed_locks[level] = iar.GroupNodes(cfg, groups)

    def CheckPrereq(self) -> None:
        """The target groups; the allocator's jobs."""
        super().CheckPrereq()
        cfg, inst = self.cfg, self.instance
        inst_groups = cfg.GetInstanceNodeGroups(inst.uuid)
        iar.CheckLockedGroups(self, inst_groups, f"instance {inst.name}")
        if self.req_targets:
            clash = [uuid for uuid in self.req_targets if uuid in inst_groups]
            if clash:
                raise errors.OpPrereqError(
                    "Can't use group(s) "
                    f"{utils.CommaJoin(iar.NodeGroupName(cfg, uuid) for uuid in clash)}"
                    f" as targets, they are used by the instance '{inst.name}'",
                    errors.ECODE_INVAL)
            self.target_uuids = list(self.req_targets)
        else:
            self.target_uuids = [uuid for uuid in cfg.GetNodeGroupList()
                                 if uuid not in inst_groups]
        if not self.target_uuids:
            raise errors.OpPrereqError(
                f"There are no possible target groups for instance {inst.name}: it"
                " uses the only node group", errors.ECODE_INVAL)
        self.jobs: list[list[opcodes.OpCode]] = iar.ChangeGroupJobs(
            self, self.iallocator, [inst.name], self.target_uuids,
            self.op.early_release, f"a new node group for instance {inst.name}")

    def BuildHooksEnv(self) -> dict[str, Any]:
        """Ganeti's TARGET_GROUPS (UUIDs) and the instance's variables."""
        env = super().BuildHooksEnv()
        env["TARGET_GROUPS"] = " ".join(self.target_uuids)
        return env

    def BuildHooksNodes(self) -> tuple[list[str], list[str]]:
        """The master node only (the jobs run their own hooks)."""
        master = self.cfg.GetMasterNode()
        return [master], [master]

    def Exec(self, feedback_fn: FeedbackFn) -> dict[str, Any]:
        """Submit the allocator's jobs; their IDs are the result."""
        if self.jobs:
            feedback_fn(f"Submitting {len(self.jobs)} job(s) to move instance"
                        f" {self.instance.name}")
        return iar.SubmitJobs(self, self.jobs, feedback_fn,
                              f"Instance {self.instance.name} needs no move")
