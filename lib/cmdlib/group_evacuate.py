"""gnt-group evacuate: move every instance out of a node group.

:class:`LUGroupEvacuate` takes the instances with a node in the group,
asks an instance allocator (``-I``, else the cluster's default one) with
a ``change-group`` request where they should go among the target groups
(``--to``; by default every other group), and submits the allocator's
jobs, one per instance, as Ganeti does: their IDs are its result.
``--force-failover`` turns the migrations of those jobs into failovers;
``--sequential`` makes each job wait for the one before it.

The instances, the groups involved and their nodes are locked shared
while the allocator computes (the jobs take their own locks); if the
instances of the group changed meanwhile the LU fails and asks to run it
again.
"""

from __future__ import annotations

from typing import Any

from ganeti import constants, errors, locking, opcodes, utils
from ganeti.cmdlib import iallocator_relocation as iar
from ganeti.cmdlib.base import FeedbackFn, LogicalUnit


def _ToFailover(op: opcodes.OpCode) -> opcodes.OpCode:
    """A failover doing what migration ``op`` does (other opcodes as
    they are)."""
    if not isinstance(op, opcodes.OpInstanceMigrate):
        return op
    params = {name: getattr(op, name)
              for name in opcodes.OpInstanceFailover.GetAllSlots()
              if name != "OP_ID" and hasattr(op, name)}
    return opcodes.OpInstanceFailover(**params)


class LUGroupEvacuate(LogicalUnit):
    """Move all instances out of a node group (the allocator's jobs)."""

    HPATH = "group-evacuate"
    HTYPE = constants.HTYPE_GROUP
    REQ_BGL = False
    cfg: Any

    def ExpandNames(self) -> None:
        """The group, the targets and the allocator; the locks are declared
        level by level."""
        cfg, op = self.cfg, self.op
        self.group_uuid = cfg.LookupNodeGroup(op.group_name)
        op.group_name = iar.NodeGroupName(cfg, self.group_uuid)
        self.req_targets = iar.ExpandGroups(cfg, op.target_groups)
        if self.group_uuid in self.req_targets:
            raise errors.OpPrereqError(
                f"Group '{op.group_name}' ({self.group_uuid}) can't be both source and"
                " target of the evacuation", errors.ECODE_INVAL)
        self.iallocator = iar.RequireIallocator(cfg, op.iallocator)
        self.share_locks = dict.fromkeys(locking.LEVELS, 1)
        self.needed_locks = {locking.LEVEL_INSTANCE: [], locking.LEVEL_NODEGROUP: [],
                             locking.LEVEL_NODE: []}

    def _Instances(self) -> list[Any]:
        """The instances with a node in the group, by name."""
        cfg = self.cfg
        members = set(iar.GroupNodes(cfg, [self.group_uuid]))
        found = [inst for inst in cfg.GetAllInstancesInfo().values()
                 if members & set(cfg.GetInstanceNodes(inst.uuid))]
        return utils.NiceSort(found, key=lambda inst: inst.name)

    def DeclareLocks(self, level: int) -> None:
        """The group's instances; the groups (the group, the targets and the
        instances' groups, or all); the nodes of those groups."""
        assert self.needed_locks is not None
        cfg = self.cfg
        if level == locking.LEVEL_INSTANCE:
            self.locked_names = [inst.name for inst in self._Instances()]
            self.needed_locks[level] = list(self.locked_names)
        elif level == locking.LEVEL_NODEGROUP:
            if self.req_targets:
                groups = {self.group_uuid, *self.req_targets}
                for inst in self._Instances():
                    groups |= cfg.GetInstanceNodeGroups(inst.uuid)
                self.needed_locks[level] = sorted(groups)
            else:
                self.needed_locks[level] = locking.ALL_SET
        elif level == locking.LEVEL_NODE:
            groups = self.owned_locks(locking.LEVEL_NODEGROUP) if self.glm is not None \
                else set(cfg.GetNodeGroupList())
            self.needed_locks[level] = iar.GroupNodes(cfg, groups)

    def CheckPrereq(self) -> None:
        """The targets; the instances as locked; the allocator's jobs."""
        cfg, op = self.cfg, self.op
        instances = self._Instances()
        names = [inst.name for inst in instances]
        if names != self.locked_names:
            raise errors.OpPrereqError(
                f"The instances of group {op.group_name} changed since the locks were"
                f" acquired (were: {utils.CommaJoin(self.locked_names) or 'none'}; now:"
                f" {utils.CommaJoin(names) or 'none'}); run the evacuation again",
                errors.ECODE_STATE)
        groups: set[str] = {self.group_uuid}
        for inst in instances:
            groups |= cfg.GetInstanceNodeGroups(inst.uuid)
        iar.CheckLockedGroups(self, groups, f"the instances of group {op.group_name}")
        self.target_uuids = list(self.req_targets) or [
            uuid for uuid in cfg.GetNodeGroupList() if uuid != self.group_uuid]
        if not self.target_uuids:
            raise errors.OpPrereqError(
                f"There are no possible target groups: {op.group_name} is the only node"
                " group", errors.ECODE_INVAL)
        self.instance_names = names
        self.jobs: list[list[opcodes.OpCode]] = []
        if not names:
            return
        jobs = iar.ChangeGroupJobs(self, self.iallocator, names, self.target_uuids,
                                   op.early_release,
                                   f"the evacuation of group {op.group_name}")
        if op.force_failover:
            self.LogInfo("Will insist on failovers")
            jobs = [[_ToFailover(o) for o in job] for job in jobs]
        if getattr(op, constants.OPCODE_SEQUENTIAL) and len(jobs) > 1:
            self.LogInfo("Jobs will be submitted to run sequentially")
            for job in jobs[1:]:
                # -1: the job submitted just before, whatever its outcome
                setattr(job[0], constants.OP_DEPENDS,
                        [[-1, sorted(constants.JOBS_FINALIZED)]])
        self.jobs = jobs

    def BuildHooksEnv(self) -> dict[str, Any]:
        """Ganeti's GROUP_NAME and TARGET_GROUPS (UUIDs)."""
        return {"GROUP_NAME": self.op.group_name,
                "TARGET_GROUPS": " ".join(self.target_uuids)}

    def BuildHooksNodes(self) -> tuple[list[str], list[str]]:
        """The master and the nodes of the group."""
        nodes = list(dict.fromkeys([self.cfg.GetMasterNode(),
                                    *iar.GroupNodes(self.cfg, [self.group_uuid])]))
        return nodes, nodes

    def Exec(self, feedback_fn: FeedbackFn) -> dict[str, Any]:
        """Submit the allocator's jobs; their IDs are the result."""
        if self.jobs:
            feedback_fn(f"Evacuating {len(self.instance_names)} instance(s) from group"
                        f" {self.op.group_name}: {utils.CommaJoin(self.instance_names)}")
        return iar.SubmitJobs(self, self.jobs, feedback_fn,
                              f"No instances to evacuate in group {self.op.group_name}")
