"""Creating several instances at once: ``OpInstanceMultiAlloc`` (RAPI
``/2/instances-multi-alloc``, Ganeti's "bulk create").

The opcode holds one OpInstanceCreate per instance. Either all of them
name their nodes (``pnode``, and ``snode`` for drbd) or none does; then
one allocator (the opcode's, or the cluster's default) places them all
with one ``multi-allocate`` request. The LU creates nothing itself: it
submits one job per instance it could place, each an OpInstanceCreate
with the chosen nodes, and returns, as Ganeti, the job IDs
(``jobs``), the names of the instances placed (``allocatable``) and of
those the allocator could not place (``allocation_failed``). A placement
is only a proposal: each creation job checks its nodes again.

The node locks are held shared while the allocator runs (every node with
an allocator, the named ones otherwise), as Ganeti does: they keep nodes
from being removed meanwhile, and the creations lock for real.
"""

from __future__ import annotations

from typing import Any

from ganeti import constants, errors, locking, opcodes
from ganeti.cmdlib import iallocator as ia
from ganeti.cmdlib import instance_alloc
from ganeti.cmdlib.base import FeedbackFn, NoHooksLU
from ganeti.cmdlib.cluster import CheckBeParams
from ganeti.cmdlib.instance_create import ParseDiskSpecs, ParseNicSpecs
from ganeti.cmdlib.node import ExpandNode


def _Inval(msg: str) -> errors.OpPrereqError:
    return errors.OpPrereqError(msg, errors.ECODE_INVAL)


class LUInstanceMultiAlloc(NoHooksLU):
    """Place several new instances, then submit their creation jobs."""

    REQ_BGL = False
    cfg: Any

    def CheckArguments(self) -> None:
        """All instances with nodes or none; no allocator per instance; no
        duplicate names; an allocator (or the cluster's default) when the
        nodes are not given."""
        ops = self.op.instances or []
        if not ops:
            raise _Inval("No instances to allocate")
        given = []
        for inst in ops:
            if inst.iallocator is not None:
                raise _Inval(f"Instance {inst.instance_name}: an iallocator cannot be"
                             " set per instance; give one for all of them")
            given.append(bool(inst.pnode or inst.pnode_uuid))
            if inst.disk_template in constants.DTS_INT_MIRROR:
                given.append(bool(inst.snode or inst.snode_uuid))
        has_nodes = any(given)
        if has_nodes and not all(given):
            raise _Inval("Some instances name their nodes (pnode/snode) while others"
                         " do not: give the nodes for all of them or for none")
        if has_nodes and self.op.iallocator:
            raise _Inval("Give either an iallocator or the nodes of the instances,"
                         " not both")
        names = [inst.instance_name for inst in ops]
        dups = sorted({name for name in names if names.count(name) > 1})
        if dups:
            raise _Inval(f"There are duplicate instance names: {', '.join(dups)}")
        self.iallocator = None
        if not has_nodes:
            self.iallocator = instance_alloc.ChooseIallocator(
                self.cfg, self.op.iallocator, False)
            if not self.iallocator:
                raise _Inval("No iallocator or nodes on the instances given and no"
                             " cluster-wide default iallocator found; give an"
                             " iallocator or the nodes of the instances, or set a"
                             " default with gnt-cluster modify --default-iallocator")
        self.op.iallocator = self.iallocator

    def ExpandNames(self) -> None:
        """Every node (shared) for the allocator, else the named nodes."""
        self.share_locks = dict.fromkeys(locking.LEVELS, 1)
        if self.iallocator:
            self.needed_locks = {locking.LEVEL_NODE: locking.ALL_SET,
                                 locking.LEVEL_NODE_RES: locking.ALL_SET}
            return
        nodes: list[str] = []
        for inst in self.op.instances:
            pnode = ExpandNode(self.cfg, inst.pnode or inst.pnode_uuid)
            inst.pnode, inst.pnode_uuid = pnode.name, pnode.uuid
            nodes.append(pnode.uuid)
            if inst.snode or inst.snode_uuid:
                snode = ExpandNode(self.cfg, inst.snode or inst.snode_uuid)
                inst.snode, inst.snode_uuid = snode.name, snode.uuid
                nodes.append(snode.uuid)
        nodes = sorted(set(nodes))
        self.needed_locks = {locking.LEVEL_NODE: nodes,
                             locking.LEVEL_NODE_RES: list(nodes)}

    def CheckPrereq(self) -> None:
        """Run the allocator for all instances at once."""
        self.placed: list[tuple[str, list[str]]] = []
        self.failed: list[str] = []
        if self.iallocator:
            req = ia.IAReqMultiInstanceAlloc(
                instances=[self._AllocRequest(inst) for inst in self.op.instances])
            placed, failed = ia.IAllocator(self.cfg, self.rpc, req).RunOrFail(
                self.iallocator, "nodes")
            self.placed = [(name, list(nodes)) for name, nodes in placed]
            self.failed = list(failed)
            names = {name for name, _ in self.placed} | set(self.failed)
            missing = [inst.instance_name for inst in self.op.instances
                       if inst.instance_name not in names]
            if missing:
                raise errors.OpPrereqError(
                    f"Iallocator '{self.iallocator}' gave no answer for instance(s)"
                    f" {', '.join(missing)}", errors.ECODE_ENVIRON)
        if getattr(self.op, "dry_run", False):
            self.dry_run_result = dict(self._PartialResult(), **{constants.JOB_IDS_KEY: []})

    def _AllocRequest(self, op: Any) -> ia.IAReqInstanceAlloc:
        """The allocate request of one instance, from its creation opcode
        (checked as far as the request needs; its job checks the rest)."""
        cluster = self.cfg.GetClusterInfo()
        where = f" (instance {op.instance_name})"
        if not op.disk_template:
            raise _Inval(f"No disk template given{where}")
        try:
            disk_specs = ParseDiskSpecs(op.disks, op.disk_template)
            nic_specs = ParseNicSpecs(op.nics)
            beparams = cluster.SimpleFillBE(CheckBeParams(op.beparams or {}))
        except errors.OpPrereqError as err:
            raise errors.OpPrereqError(f"{err.args[0]}{where}",
                                       *err.args[1:]) from None
        if any(constants.IDISK_ADOPT in spec for spec in disk_specs):
            raise _Inval(f"Disk adoption is not allowed with an iallocator{where}")
        hvname = op.hypervisor or cluster.primary_hypervisor
        return instance_alloc.CreateInstanceAllocRequest(
            self.cfg, op, disk_specs, nic_specs, beparams, hvname)

    def _PartialResult(self) -> dict[str, list[str]]:
        if self.iallocator:
            allocatable = [name for name, _ in self.placed]
        else:
            allocatable = [inst.instance_name for inst in self.op.instances]
        return {constants.ALLOCATABLE_KEY: allocatable,
                constants.FAILED_KEY: list(self.failed)}

    def _CreateOps(self) -> list[opcodes.OpInstanceCreate]:
        """The creation opcodes to submit, with the nodes filled in."""
        if not self.iallocator:
            return list(self.op.instances)
        by_name = {inst.instance_name: inst for inst in self.op.instances}
        ops = []
        for name, node_names in self.placed:
            op = by_name[name]
            op.pnode = node_names[0]
            op.pnode_uuid = self.cfg.GetNodeInfoByName(node_names[0]).uuid
            if len(node_names) > 1:
                op.snode = node_names[1]
                op.snode_uuid = self.cfg.GetNodeInfoByName(node_names[1]).uuid
            op.iallocator = None
            ops.append(op)
        return ops

    def Exec(self, feedback_fn: FeedbackFn) -> dict[str, Any]:
        """Submit one creation job per instance placed."""
        ops = self._CreateOps()
        for op in ops:
            nodes = [op.pnode] + ([op.snode] if op.snode else [])
            feedback_fn(f"Instance {op.instance_name}: {', '.join(nodes)}")
        for name in self.failed:
            self.LogWarning(f"Instance {name} could not be placed by iallocator"
                            f" '{self.iallocator}'")
        jobs = self.proc.SubmitManyJobs([[op] for op in ops]) if ops else []
        return dict(self._PartialResult(), **{constants.JOB_IDS_KEY: jobs})
