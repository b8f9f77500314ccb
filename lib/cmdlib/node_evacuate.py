"""gnt-node evacuate: move the instances off a node, one job per instance.

:class:`LUNodeEvacuate` decides what each instance needs and submits the
jobs, whose IDs are its result (as ``gnt-node migrate`` does), so the
instances move in parallel, each under its own locks:

- an instance the node is the secondary of (mode ``secondary-only`` or
  ``all``): ``OpInstanceReplaceDisks`` changing its secondary to the new
  node (``remote_node``);
- an instance the node is the primary of (``primary-only`` or ``all``):
  moved to its secondary (DRBD) or, for storage every node reaches, to
  ``remote_node``; as the man page says, a running instance is migrated
  (falling back to a failover if it turns out not to run) and any other
  failed over. With ``all`` a DRBD instance then gets ``remote_node`` as
  its new secondary, in the same job.

With an instance allocator (``-I``, or the cluster's default one when
neither ``-I`` nor ``-n`` is given) the jobs are the allocator's: a
``node-evacuate`` request for the instances (mode and
``--ignore-soft-errors`` passed on), run while the instances and every
node are locked (shared), its opcodes checked and submitted as they are
(``--early-release`` set on the replace-disks ones). An instance the
allocator cannot place refuses the whole evacuation.

Without an allocator the moves are the ones above (those an allocator
makes for these cases, with the given node), and every instance that
needs a node nobody gave (or cannot move at all, like plain and file
instances) is named in the refusal, before any job runs.
"""

from __future__ import annotations

from typing import Any

from ganeti import constants, errors, locking, opcodes, utils
from ganeti.cmdlib import iallocator as ia
from ganeti.cmdlib import iallocator_relocation as iar
from ganeti.cmdlib import instance_utils as iu
from ganeti.cmdlib.base import FeedbackFn, NoHooksLU
from ganeti.cmdlib.node import ExpandNode


class LUNodeEvacuate(NoHooksLU):
    """Move primary and/or secondary instances off a node (one job each)."""

    REQ_BGL = False
    cfg: Any

    def CheckArguments(self) -> None:
        """An allocator or a new node, not both."""
        op = self.op
        if op.iallocator and (op.remote_node or op.remote_node_uuid):
            raise errors.OpPrereqError("Give either an iallocator or a new node, not"
                                       " both", errors.ECODE_INVAL)

    def _InstanceNames(self) -> list[str]:
        """The names of the instances to move, as the mode says, sorted."""
        primary, secondary = self.cfg.GetNodeInstances(self.op.node_uuid)
        uuids = []
        if self.op.mode in (constants.NODE_EVAC_PRI, constants.NODE_EVAC_ALL):
            uuids.extend(primary)
        if self.op.mode in (constants.NODE_EVAC_SEC, constants.NODE_EVAC_ALL):
            uuids.extend(secondary)
        return utils.NiceSort(self.cfg.GetInstanceName(uuid) for uuid in uuids)

    def ExpandNames(self) -> None:
        """The node and the new node, locked shared (the jobs lock for real);
        with an allocator the instances and all nodes, shared."""
        op = self.op
        node = ExpandNode(self.cfg, op.node_name)
        op.node_uuid, op.node_name = node.uuid, node.name
        self.remote_uuid: str | None = None
        if op.remote_node or op.remote_node_uuid:
            remote = ExpandNode(self.cfg, op.remote_node) if op.remote_node else \
                self.cfg.GetNodeInfo(op.remote_node_uuid)
            if remote is None:
                raise errors.OpPrereqError(f"Node '{op.remote_node_uuid}' not known",
                                           errors.ECODE_NOENT)
            if remote.uuid == node.uuid:
                raise errors.OpPrereqError(
                    f"Can't use the evacuated node {node.name} as the new node",
                    errors.ECODE_INVAL)
            op.remote_node, op.remote_node_uuid = remote.name, remote.uuid
            self.remote_uuid = remote.uuid
        self.share_locks = dict.fromkeys(locking.LEVELS, 1)
        self.jobs: list[list[opcodes.OpCode]] = []
        self.instance_names: list[str] = []
        self.iallocator = None if self.remote_uuid else \
            ia.ResolveIallocator(self.cfg, op.iallocator) or ia.DefaultIallocator(self.cfg)
        if self.iallocator:
            self.locked_names = self._InstanceNames()
            self.needed_locks = {locking.LEVEL_INSTANCE: list(self.locked_names),
                                 locking.LEVEL_NODE: locking.ALL_SET}
            return
        self.needed_locks = {locking.LEVEL_NODE: [node.uuid] + (
            [self.remote_uuid] if self.remote_uuid else [])}

    def _AllocatorJobs(self) -> None:
        """The allocator's jobs for the instances locked in ExpandNames."""
        op = self.op
        names = self._InstanceNames()
        if names != self.locked_names:
            raise errors.OpPrereqError(
                f"The instances on node {op.node_name} changed since the locks were"
                f" acquired (were: {utils.CommaJoin(self.locked_names) or 'none'}; now:"
                f" {utils.CommaJoin(names) or 'none'}); run the evacuation again",
                errors.ECODE_STATE)
        self.instance_names = names
        self.jobs = []
        if not names:
            return
        assert self.iallocator is not None
        req = ia.IAReqNodeEvac(instances=names, evac_mode=op.mode,
                               ignore_soft_errors=bool(op.ignore_soft_errors))
        result = ia.IAllocator(self.cfg, self.rpc, req).RunOrFail(
            self.iallocator, f"the evacuation of node {op.node_name}")
        self.jobs = iar.EvacuationJobs(self, self.iallocator, result, op.early_release,
                                       True, names)

    def CheckPrereq(self) -> None:
        """Build one job per instance (the allocator's, or our own); refuse
        if one of them cannot move."""
        if self.iallocator:
            self._AllocatorJobs()
            return
        cfg, op = self.cfg, self.op
        primary, secondary = cfg.GetNodeInstances(op.node_uuid)
        want_pri = op.mode in (constants.NODE_EVAC_PRI, constants.NODE_EVAC_ALL)
        want_sec = op.mode in (constants.NODE_EVAC_SEC, constants.NODE_EVAC_ALL)
        self.jobs = []
        self.instance_names = []
        problems: list[str] = []
        if want_pri:
            for inst in self._Sorted(primary):
                job, problem = self._PrimaryJob(inst)
                if problem:
                    problems.append(problem)
                else:
                    self.jobs.append(job)
                    self.instance_names.append(inst.name)
        if want_sec:
            for inst in self._Sorted(secondary):
                if not self.remote_uuid:
                    problems.append(f"{inst.name} (its new secondary node must be given"
                                    " with -n)")
                    continue
                if inst.primary_node == self.remote_uuid:
                    problems.append(f"{inst.name} (node {op.remote_node} is its primary"
                                    " node)")
                    continue
                self.jobs.append([self._ReplaceOp(inst)])
                self.instance_names.append(inst.name)
        if problems:
            raise errors.OpPrereqError(
                f"Can't evacuate node {op.node_name} without an instance allocator:"
                f" {'; '.join(problems)}", errors.ECODE_INVAL)
        if self.remote_uuid and self.jobs:
            iu.CheckTargetNode(cfg, self.remote_uuid, "Can't use {state} node {name} as"
                               " the new node")

    def _Sorted(self, uuids: list[str]) -> list[Any]:
        return utils.NiceSort([self.cfg.GetInstanceInfo(uuid) for uuid in uuids],
                              key=lambda inst: inst.name)

    def _ReplaceOp(self, inst: Any) -> opcodes.OpCode:
        return opcodes.OpInstanceReplaceDisks(
            instance_name=inst.name, mode=constants.REPLACE_DISK_CHG,
            remote_node=self.op.remote_node, disks=[],
            early_release=self.op.early_release)

    def _PrimaryJob(self, inst: Any) -> tuple[list[opcodes.OpCode], str | None]:
        """The opcodes moving a primary instance off the node, or why not."""
        template = self.cfg.GetInstanceDiskTemplate(inst.uuid)
        if template in constants.DTS_INT_MIRROR:
            target = None
        elif template in constants.DTS_EXT_MIRROR:
            if not self.remote_uuid:
                return [], (f"{inst.name} ({template}: the target node must be given"
                            " with -n)")
            target = self.op.remote_node
        else:
            return [], (f"{inst.name} (disk template {template} cannot move without"
                        " copying its disks: use gnt-instance move)")
        if inst.admin_state == constants.ADMINST_UP:
            move: opcodes.OpCode = opcodes.OpInstanceMigrate(
                instance_name=inst.name, target_node=target, allow_failover=True)
        else:
            move = opcodes.OpInstanceFailover(instance_name=inst.name, target_node=target)
        job = [move]
        if template in constants.DTS_INT_MIRROR and \
                self.op.mode == constants.NODE_EVAC_ALL:
            if not self.remote_uuid:
                return [], (f"{inst.name} (after its failover the node is its secondary;"
                            " the new secondary must be given with -n)")
            if self.remote_uuid in self.cfg.GetInstanceNodes(inst.uuid):
                return [], (f"{inst.name} (node {self.op.remote_node} becomes its"
                            " primary node, it cannot be its secondary too)")
            job.append(self._ReplaceOp(inst))
        return job, None

    def Exec(self, feedback_fn: FeedbackFn) -> dict[str, Any]:
        """Submit the jobs; return Ganeti's ``{"jobs": [(success, id), ...]}``."""
        if self.jobs:
            feedback_fn(f"Evacuating {len(self.instance_names)} instance(s) from node"
                        f" {self.op.node_name}: {utils.CommaJoin(self.instance_names)}")
        return iar.SubmitJobs(self, self.jobs, feedback_fn,
                              f"No instances to evacuate on node {self.op.node_name}")
