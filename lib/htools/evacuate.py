"""Instance moves: node-evacuate and change-group, answered with jobs.

Both requests answer ``[moved, failed, jobs]`` (doc/design-multi-reloc):
``moved`` lists ``[instance, target group name, [new nodes]]``, ``failed``
lists ``[instance, reason]`` and ``jobs`` holds one job per moved instance,
a list of opcodes (OP_INSTANCE_MIGRATE, OP_INSTANCE_FAILOVER,
OP_INSTANCE_REPLACE_DISKS) run in order. Instances are handled in request
order, each move seeing the previous ones.

Evacuation modes, for DRBD instances: ``secondary-only`` replaces the
secondary (r), ``primary-only`` fails over to the secondary (f), ``all``
moves the instance to two new nodes (r, f, r; preceded by f when the
primary is offline). Shared-storage instances migrate to the best other
node in ``primary-only`` and ``all`` modes. Non-mirrored instances cannot
move. ``change-group`` moves DRBD instances to two nodes of another group
with the same r, f, r sequence.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from ganeti import constants
from ganeti.htools import allocate, model, pair_search, policy
from ganeti.htools.allocate import Options, Outcome
from ganeti.htools.model import Cluster, Group, Instance

STEP_FAILOVER = "f"
STEP_REPLACE = "r"
STEP_FAILOVER_TO = "fa"


def migrate_op(inst: Instance, target: str | None = None) -> dict[str, Any]:
    """The opcode moving ``inst`` to its secondary (or ``target``).

    As hail does: a migration allowed to fall back to a failover, a plain
    failover for forthcoming instances.
    """
    if inst.forthcoming:
        op: dict[str, Any] = {
            "OP_ID": "OP_INSTANCE_FAILOVER", "instance_name": inst.name,
            "shutdown_timeout": constants.DEFAULT_SHUTDOWN_TIMEOUT,
            "ignore_consistency": False, "ignore_ipolicy": False, "cleanup": False,
        }
    else:
        op = {
            "OP_ID": "OP_INSTANCE_MIGRATE", "instance_name": inst.name,
            "allow_runtime_changes": False, "ignore_ipolicy": False,
            "cleanup": False, "allow_failover": True, "ignore_hvversions": True,
        }
    if target is not None:
        op["target_node"] = target
    return op


def replace_secondary_op(inst: Instance, node: str) -> dict[str, Any]:
    """The opcode giving ``inst`` the new secondary ``node``."""
    return {
        "OP_ID": "OP_INSTANCE_REPLACE_DISKS", "instance_name": inst.name,
        "early_release": False, "ignore_ipolicy": False,
        "mode": constants.REPLACE_DISK_CHG, "disks": [], "remote_node": node,
    }


def steps_to_job(inst: Instance, steps: Sequence[tuple[str, str | None]]
                 ) -> list[dict[str, Any]]:
    """Turn moves (f, fa NODE, r NODE) into the opcodes of one job."""
    job = []
    for kind, node in steps:
        if kind == STEP_REPLACE:
            job.append(replace_secondary_op(inst, node or ""))
        elif kind == STEP_FAILOVER_TO:
            job.append(migrate_op(inst, node))
        else:
            job.append(migrate_op(inst))
    return job


class _Mover:
    """Computes moves one instance at a time, applying each to the model."""

    def __init__(self, cluster: Cluster, opts: Options) -> None:
        self.cluster = cluster
        self.opts = opts
        self.moved: list[list[Any]] = []
        self.failed: list[list[str]] = []
        self.jobs: list[list[dict[str, Any]]] = []

    def _search(self, inst: Instance, group: str, cands: Sequence[model.Node],
                mode: str) -> tuple[tuple[float, tuple[str, ...]] | None, Counter[str]]:
        """Best new nodes for ``inst``: "pri" one node, "pair" two, "sec" a
        secondary beside the current primary."""
        found, fails = self._found(inst, group, cands, mode, mode == "pair")
        best = allocate.pick(self.cluster, group, inst, found, fails, self.opts,
                             moving=True)
        if best is None and found and mode == "pair":
            # the best pair fails the capacity checks: try them all, in order
            found, fails = self._found(inst, group, cands, mode, False)
            best = allocate.pick(self.cluster, group, inst, found, fails, self.opts,
                                 moving=True)
        return best, fails

    def _found(self, inst: Instance, group: str, cands: Sequence[model.Node],
               mode: str, best_only: bool,
               ) -> tuple[list[tuple[float, tuple[str, ...]]], Counter[str]]:
        """The scored placements of ``inst`` (only the best pair with
        ``best_only``), searched with the instance taken off its nodes."""
        cluster = self.cluster
        gs = allocate.group_score(cluster, group)
        old = (inst.pnode or "", inst.snode)
        old_nodes = [cluster.nodes[n] for n in inst.nodes]
        snaps = [n.snapshot() for n in old_nodes]
        cluster.unplace(inst)
        try:
            if mode == "sec":
                return allocate.search_secondary(gs, inst, old[0], cands, self.opts,
                                                 old_nodes)
            if best_only:
                return pair_search.best_pair(gs, inst, cands, self.opts.soft_checks,
                                             old_nodes)
            return allocate.search(gs, inst, cands, mode == "pair", self.opts, old_nodes)
        finally:
            cluster.place(inst, old[0], old[1])
            for node, snap in zip(old_nodes, snaps):
                node.restore(snap)

    def _done(self, inst: Instance, group: Group, nodes: tuple[str, ...],
              steps: list[tuple[str, str | None]]) -> None:
        self.cluster.move(inst, nodes[0], nodes[1] if len(nodes) > 1 else None)
        self.moved.append([inst.name, group.name, list(nodes)])
        self.jobs.append(steps_to_job(inst, steps))

    def _fail(self, inst: Instance, reason: str) -> None:
        self.failed.append([inst.name, reason])

    def _no_nodes(self, inst: Instance, fails: Counter[str], what: str) -> None:
        self._fail(inst, f"Cannot find {what} for {inst.name}: "
                   + allocate.no_solution(fails))

    def _pair_steps(self, inst: Instance, target: tuple[str, ...]
                    ) -> list[tuple[str, str | None]]:
        steps: list[tuple[str, str | None]] = []
        if not self.cluster.nodes[inst.pnode or ""].available:
            steps.append((STEP_FAILOVER, None))
        steps += [(STEP_REPLACE, target[0]), (STEP_FAILOVER, None),
                  (STEP_REPLACE, target[1])]
        return steps

    def evacuate(self, inst: Instance, mode: str) -> None:
        """Move ``inst`` off its node(s) within its group."""
        cluster = self.cluster
        guuid = cluster.instance_group(inst) or ""
        group = cluster.groups[guuid]
        pnode, snode = inst.pnode or "", inst.snode
        if inst.mirror == model.MIRROR_NONE:
            self._fail(inst, f"Instance {inst.name} has the non-mirrored disk"
                       f" template {inst.disk_template} and cannot be moved")
            return
        if inst.mirror == model.MIRROR_EXTERNAL:
            if mode == constants.NODE_EVAC_SEC:
                self._fail(inst, f"Instance {inst.name} uses shared storage and has"
                           " no secondary node to evacuate")
                return
            cands = allocate.candidate_nodes(cluster, guuid, self.opts, [pnode])
            best, fails = self._search(inst, guuid, cands, "pri")
            if best is None:
                self._no_nodes(inst, fails, "a new primary node")
            else:
                self._done(inst, group, best[1], [(STEP_FAILOVER_TO, best[1][0])])
            return
        if not snode:
            self._fail(inst, f"Instance {inst.name} has no secondary node")
            return
        if mode == constants.NODE_EVAC_PRI:
            self._failover(inst, group, pnode, snode)
            return
        cands = allocate.candidate_nodes(cluster, guuid, self.opts, [pnode, snode])
        if mode == constants.NODE_EVAC_SEC:
            best, fails = self._search(inst, guuid, cands, "sec")
            if best is None:
                self._no_nodes(inst, fails, "a new secondary node")
            else:
                self._done(inst, group, best[1], [(STEP_REPLACE, best[1][1])])
            return
        best, fails = self._search(inst, guuid, cands, "pair")
        if best is None:
            self._no_nodes(inst, fails, "two new nodes")
        else:
            self._done(inst, group, best[1], self._pair_steps(inst, best[1]))

    def _failover(self, inst: Instance, group: Group, pnode: str, snode: str) -> None:
        cluster = self.cluster
        target = cluster.nodes[snode]
        if not target.available:
            self._fail(inst, f"Cannot fail {inst.name} over: its secondary node"
                       f" {snode} is offline or drained")
            return
        nodes = [cluster.nodes[pnode], target]
        snaps = [n.snapshot() for n in nodes]
        cluster.unplace(inst)
        fail = target.check_add_pri(inst, self.opts.soft_checks)
        cluster.place(inst, pnode, snode)
        for node, snap in zip(nodes, snaps):
            node.restore(snap)
        if fail:
            self._fail(inst, f"Cannot fail {inst.name} over to {snode}: {fail}")
            return
        self._done(inst, group, (snode, pnode), [(STEP_FAILOVER, None)])

    def change_group(self, inst: Instance, targets: Sequence[str]) -> None:
        """Move a DRBD instance to the best of the ``targets`` groups."""
        cluster = self.cluster
        if inst.mirror != model.MIRROR_INTERNAL or not inst.snode:
            self._fail(inst, f"Instance {inst.name} has disk template"
                       f" {inst.disk_template}; only DRBD instances can change group")
            return
        current = cluster.instance_group(inst)
        if targets:
            groups = [cluster.find_group(g) for g in targets]
        else:
            groups = list(cluster.groups.values())
        usable = sorted({g.uuid: g for g in groups
                         if g is not None and g.uuid != current
                         and g.policy_rank < 2}.values(),
                        key=lambda g: (g.policy_rank, g.name))
        if not usable:
            self._fail(inst, f"No allocable target group for {inst.name}")
            return
        fails: Counter[str] = Counter()
        notes = []
        best: tuple[tuple[int, float, str], Group, tuple[str, ...]] | None = None
        spec = allocate.instance_spec(inst)
        for group in usable:
            violations = policy.spec_violations(group.ipolicy, spec)
            if violations:
                notes.append(f"group '{group.name}': instance policy violated: "
                             + ", ".join(violations))
                continue
            cands = allocate.candidate_nodes(cluster, group.uuid, self.opts)
            found, gfails = self._search(inst, group.uuid, cands, "pair")
            fails.update(gfails)
            if found is not None:
                key = (group.policy_rank, found[0], group.name)
                if best is None or key < best[0]:
                    best = (key, group, found[1])
        if best is None:
            self._fail(inst, f"Cannot find nodes in another group for {inst.name}: "
                       + allocate.no_solution(fails, notes))
            return
        self._done(inst, best[1], best[2], self._pair_steps(inst, best[2]))

    def outcome(self) -> Outcome:
        """The response: ``[moved, failed, jobs]``."""
        info = (f"Request successful: {len(self.moved)} instance(s) moved,"
                f" {len(self.failed)} failed")
        if self.failed:
            info += " (" + "; ".join(f"{n}: {r}" for n, r in self.failed) + ")"
        return Outcome(True, info, [self.moved, self.failed, self.jobs])


def node_evacuate(cluster: Cluster, names: Sequence[str], mode: str,
                  opts: Options) -> Outcome:
    """Answer ``node-evacuate`` for ``names`` in evacuation ``mode``."""
    mover = _Mover(cluster, opts)
    for name in names:
        mover.evacuate(cluster.instances[name], mode)
    return mover.outcome()


def change_group(cluster: Cluster, names: Sequence[str], targets: Sequence[str],
                 opts: Options) -> Outcome:
    """Answer ``change-group``: move ``names`` to one of ``targets`` (UUIDs;
    empty for any other group)."""
    mover = _Mover(cluster, opts)
    for name in names:
        mover.change_group(cluster.instances[name], targets)
    return mover.outcome()
