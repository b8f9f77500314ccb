"""The hbal move search: greedy steps that lower the cluster score.

At each step every allowed move of every movable instance is scored, and
the move giving the lowest group score is applied (hbal(1), "ALGORITHM").
The search stops when no move lowers the score, when the best gain is
below the minimum gain (only once the score is below the minimum gain
limit), when the score is below the minimum score, or after the maximum
number of steps. Ties go to the first instance by name, then to its
failover, then to the first target node by name and for a target to the
first kind in the order below, so the same input always gives the same
solution.

Moves of an instance whose nodes are P:S, to the target node T, with
their steps in hbal's notation and the new nodes:

- ``f``: failover, ``f``, S:P
- ``r``: replace secondary, ``r:T``, P:T
- ``rf``: replace secondary and failover, ``r:T f``, T:P
- ``frf``: replace primary, ``f r:T f``, T:S
- ``fr``: failover and replace secondary, ``f r:T``, S:T
- ``fa``: migrate to any node, ``fa:T``, T

DRBD instances use the first five (those with a failover need an online
secondary; ``--no-instance-moves`` leaves only ``r``, ``--no-disk-moves``
only ``f``; ``--restricted-migration`` drops ``frf``, and ``rf`` unless
the primary is offline or drained). Shared-storage (sharedfile, blockdev,
rbd, ext, gluster) and diskless instances migrate to any online node
(``fa``: an instance move, which ``--no-disk-moves`` keeps). Plain and
file instances never move, nor do instances that are not auto-balanced or
are forthcoming. Instances are placed only on online nodes (drained ones
count as offline) that pass the node checks: memory, disk, N+1, exclusion
tags, and (unless soft errors are ignored) the vCPU and spindle ratios.
Keeping a role on an offline node is allowed, unchecked: that is how the
instances leave it.

Speed: a move changes at most three nodes, and each ends in a state that
depends only on that node and its new role (primary, or secondary of a
given primary). ``primary_delta``/``secondary_delta`` give the sparse
score delta of such a state (setting the fields the score reads as
``Node.add_pri``/``add_sec`` would, without their bookkeeping); a move's
delta is the merge of its nodes' and scores in the components it
changes (``GroupScore.score_sparse``).

``best_move`` finds each step's move by branch and bound
(``balance_bound.BoundSearch``): it scores exactly only the moves that
may be the best, and gives the move and score ``exhaustive_move`` gives.
``exhaustive_move``, the reference, scores every move; it keeps the
moves' deltas across steps until one of their nodes changes (per-node
version counters) while there are at most ``CACHE_LIMIT`` of them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import operator
from collections.abc import Callable, Iterator, Sequence

from ganeti.htools import balance_bound, evacuate, model
from ganeti.htools.model import Cluster, Instance, Node
from ganeti.htools.score import GroupScore, Sparse

MOVE_FAILOVER = "f"
MOVE_REPLACE_SECONDARY = "r"
MOVE_REPLACE_FAILOVER = "rf"
MOVE_REPLACE_PRIMARY = "frf"
MOVE_FAILOVER_REPLACE = "fr"
MOVE_FAILOVER_TO = "fa"

#: hbal's defaults
DEFAULT_MIN_SCORE = 1e-9
DEFAULT_MIN_GAIN = 0.01
DEFAULT_MIN_GAIN_LIMIT = 0.1

#: a step must lower the score by more than this: float noise is no gain
_EPSILON = 1e-12

#: keep the candidate moves across steps only up to about this many (some
#: 800 bytes each); a larger group scores every move again at each step
CACHE_LIMIT = 500_000


@dataclasses.dataclass
class Options:
    """The algorithm options of hbal."""

    #: at most this many moves (negative: no limit), -l
    max_length: int = -1
    #: stop once the score is below this, -e
    min_score: float = DEFAULT_MIN_SCORE
    #: the least gain a step must bring, -g ...
    min_gain: float = DEFAULT_MIN_GAIN
    #: ... once the score is below this, --min-gain-limit
    min_gain_limit: float = DEFAULT_MIN_GAIN_LIMIT
    #: allow replace-disks moves (--no-disk-moves)
    disk_moves: bool = True
    #: allow failovers and migrations (--no-instance-moves)
    instance_moves: bool = True
    #: only move instances with a node offline or drained, --evac-mode
    evac_mode: bool = False
    #: no replace-primary, replace-and-failover only off drained primaries
    restricted_migration: bool = False
    #: check the soft limits (vCPU and spindle ratios), --ignore-soft-errors
    soft_checks: bool = True
    #: only these instances may move (None: all), --select-instances
    select_instances: frozenset[str] | None = None
    #: these instances stay, --exclude-instances
    exclude_instances: frozenset[str] = frozenset()


#: the step letters of each move kind; "r" and "fa" take the target node
_KIND_STEPS = {
    MOVE_FAILOVER: ("f",),
    MOVE_REPLACE_SECONDARY: ("r",),
    MOVE_REPLACE_FAILOVER: ("r", "f"),
    MOVE_REPLACE_PRIMARY: ("f", "r", "f"),
    MOVE_FAILOVER_REPLACE: ("f", "r"),
    MOVE_FAILOVER_TO: ("fa",),
}


@dataclasses.dataclass(frozen=True)
class Move:
    """One step of a solution."""

    instance: str
    kind: str
    #: the node the move brings in (None for a failover)
    target: str | None
    old_nodes: tuple[str, str | None]
    new_nodes: tuple[str, str | None]
    #: the group score after the move
    score: float

    def steps(self) -> list[tuple[str, str | None]]:
        """The steps as ``evacuate.steps_to_job`` takes them."""
        out: list[tuple[str, str | None]] = []
        for step in _KIND_STEPS[self.kind]:
            if step == "r":
                out.append((evacuate.STEP_REPLACE, self.target))
            elif step == "fa":
                out.append((evacuate.STEP_FAILOVER_TO, self.target))
            else:
                out.append((evacuate.STEP_FAILOVER, None))
        return out

    def action(self, alias: Callable[[str], str] = str) -> str:
        """The steps as hbal prints them: ``f r:node3 f``, ``fa:node2``."""
        return " ".join(kind if node is None else f"{kind}:{alias(node)}"
                        for kind, node in self.steps())

    def nodes(self) -> frozenset[str]:
        """Every node the move involves (old and new)."""
        return frozenset(n for n in (*self.old_nodes, *self.new_nodes) if n)


def split_jobsets(moves: Sequence[Move]) -> list[list[Move]]:
    """Group consecutive moves that share no node (hbal's jobsets).

    A jobset takes moves until one touches a node an earlier move of the
    set touched; that move starts the next jobset.
    """
    jobsets: list[list[Move]] = []
    touched: set[str] = set()
    for move in moves:
        nodes = move.nodes()
        if jobsets and not nodes & touched:
            jobsets[-1].append(move)
            touched |= nodes
        else:
            jobsets.append([move])
            touched = set(nodes)
    return jobsets


def group_instances(cluster: Cluster, group: str) -> list[Instance]:
    """The instances with all their nodes in ``group``, by name."""
    return sorted((i for i in cluster.instances.values()
                   if i.pnode and all(cluster.nodes[n].group == group for n in i.nodes)),
                  key=lambda i: i.name)


def movable_instances(cluster: Cluster, group: str, opts: Options) -> list[Instance]:
    """The instances of ``group`` the search may move, by name.

    Not moved: non-mirrored instances, DRBD instances without a
    secondary, instances not auto-balanced or forthcoming, the excluded
    and the unselected ones, and in evacuation mode those with no node
    offline or drained.
    """
    out = []
    for inst in group_instances(cluster, group):
        if inst.mirror == model.MIRROR_NONE or not inst.auto_balance or inst.forthcoming:
            continue
        if inst.mirror == model.MIRROR_INTERNAL and not inst.snode:
            continue
        if inst.name in opts.exclude_instances:
            continue
        if opts.select_instances is not None and inst.name not in opts.select_instances:
            continue
        if opts.evac_mode and all(cluster.nodes[n].available for n in inst.nodes):
            continue
        out.append(inst)
    return out


# The node fields score.node_vector reads that Node.add_pri and Node.add_sec
# change. Trying a placement on a node sets them as those methods would and
# puts them back, skipping the rest of the bookkeeping (instance lists,
# peers, storage units), which the score does not see; test_balance checks
# that both agree.
_PRI_FIELDS = ("f_mem", "f_dsk", "u_cpu", "inst_spindles", "conflicts", "dl_unsat",
               "util", "loc_conflicts")
_SEC_FIELDS = ("f_dsk", "inst_spindles", "r_mem", "util")
_get_pri_fields = operator.attrgetter(*_PRI_FIELDS)
_get_sec_fields = operator.attrgetter(*_SEC_FIELDS)


def primary_delta(gs: GroupScore, node: Node, inst: Instance, conflict: bool = False
                  ) -> Sparse:
    """The sparse delta of ``node`` if ``inst`` became one of its primaries
    (``conflict``: its secondary shares a location with ``node``)."""
    if not node.available or (gs.use_locations and inst.excl_tags):
        # offline nodes score by their instance counts, the location
        # exclusion score reads the node's tag counts: do it for real
        snap = node.snapshot()
        node.add_pri(inst)
        node.loc_conflicts += conflict
        try:
            return gs.sparse_delta(node)
        finally:
            node.remove_pri(inst)
            node.restore(snap)
    saved = _get_pri_fields(node)
    f_mem, f_dsk, u_cpu, spindles, conflicts, dl_unsat, util, loc = saved
    try:
        if inst.uses_memory:
            node.f_mem = f_mem - inst.memory
        if inst.local_storage:
            node.f_dsk = f_dsk - inst.disk_space
        node.u_cpu = u_cpu + inst.vcpus
        node.inst_spindles = spindles + node.inst_spindle_use(inst)
        if inst.excl_tags:
            node.conflicts = conflicts + sum(1 for tag in inst.excl_tags
                                             if node.p_tags.get(tag))
        if inst.desired_locations:
            node.dl_unsat = dl_unsat + len(inst.desired_locations - node.tags)
        cpu, mem, dsk, net = inst.util
        node.util = (util[0] + cpu, util[1] + mem, util[2] + dsk, util[3] + net)
        node.loc_conflicts = loc + conflict
        return gs.sparse_delta(node)
    finally:
        for field, val in zip(_PRI_FIELDS, saved):
            setattr(node, field, val)


def secondary_delta(gs: GroupScore, node: Node, inst: Instance, pnode: str) -> Sparse:
    """The sparse delta of ``node`` if ``inst`` (primary on ``pnode``) had
    its secondary there."""
    if not node.available:
        snap = node.snapshot()
        node.add_sec(inst, pnode)
        try:
            return gs.sparse_delta(node)
        finally:
            node.remove_sec(inst, pnode)
            node.restore(snap)
    saved = _get_sec_fields(node)
    f_dsk, spindles, r_mem, util = saved
    try:
        if inst.local_storage:
            node.f_dsk = f_dsk - inst.disk_space
        node.inst_spindles = spindles + node.inst_spindle_use(inst)
        if inst.uses_memory and inst.auto_balance:
            node.r_mem = max(r_mem, node.peers.get(pnode, 0) + inst.memory)
        node.util = (util[0], util[1], util[2] + inst.util[2], util[3])
        return gs.sparse_delta(node)
    finally:
        for field, val in zip(_SEC_FIELDS, saved):
            setattr(node, field, val)


def _merge(*parts: Sparse) -> Sparse:
    return GroupScore.merge_sparse(parts)


#: a scored candidate: (kind, target, new primary, new secondary, delta)
_Cand = tuple[str, "str | None", str, "str | None", Sparse]


@dataclasses.dataclass(slots=True)
class _Entry:
    """The candidate moves of one instance, with the node versions they
    were computed at."""

    #: (primary, its version, secondary, its version)
    versions: tuple[str, int, str | None, int]
    fixed: list[_Cand]
    by_target: dict[str, tuple[int, list[_Cand]]]
    #: all the candidates in tie-break order
    flat: list[_Cand] = dataclasses.field(default_factory=list)


class _Lifted:
    """An instance taken off its nodes, and the node states tried for it.

    Each state (a node with the instance as primary, or as secondary of
    a given primary) is checked and scored once; its delta, or None when
    the node refuses it, is remembered.
    """

    def __init__(self, balancer: Balancer, inst: Instance) -> None:
        self.gs = balancer.gs
        self.soft = balancer.opts.soft_checks
        self.inst = inst
        self.memo: dict[tuple[str, str, str | None], Sparse | None] = {}
        self.pri_ok: dict[str, bool] = {}

    def removed(self, node: Node) -> Sparse:
        """The delta of ``node`` without the instance."""
        key = (node.name, "-", None)
        delta = self.memo.get(key)
        if delta is None:
            delta = self.memo[key] = self.gs.sparse_delta(node)
        return delta

    def can_be_primary(self, node: Node) -> bool:
        """Whether ``node`` passes the checks for the instance as primary."""
        can = self.pri_ok.get(node.name)
        if can is None:
            can = self.pri_ok[node.name] = \
                node.check_add_pri(self.inst, self.soft) is None
        return can

    def primary(self, node: Node, partner: Node | None, check: bool = True
                ) -> Sparse | None:
        """The delta of ``node`` holding the instance as primary, its
        secondary on ``partner`` (which only matters for locations);
        checked if ``check`` and the node is online."""
        conflict = bool(partner is not None and node.locations & partner.locations)
        check = check and node.available
        key = (node.name, "p" if check else "P", "+" if conflict else None)
        if key not in self.memo:
            self.memo[key] = primary_delta(self.gs, node, self.inst, conflict) \
                if not check or self.can_be_primary(node) else None
        return self.memo[key]

    def secondary(self, node: Node, pnode: Node) -> Sparse | None:
        """The delta of ``node`` holding the instance as secondary of
        ``pnode`` (checked unless ``node`` is offline)."""
        key = (node.name, "s", pnode.name)
        if key not in self.memo:
            ok = not node.available \
                or node.check_add_sec(self.inst, pnode.name, self.soft) is None
            self.memo[key] = secondary_delta(self.gs, node, self.inst, pnode.name) \
                if ok else None
        return self.memo[key]


class Balancer:
    """The greedy search on one node group (which it changes as it goes)."""

    def __init__(self, cluster: Cluster, group: str, opts: Options | None = None) -> None:
        self.cluster = cluster
        self.opts = opts or Options()
        nodes = cluster.group_nodes(group)
        self.nodes = {n.name: n for n in nodes}
        self.gs = GroupScore(nodes, bool(cluster.location_prefixes
                                         and cluster.excl_prefixes))
        self.targets = [n for n in nodes if n.available]
        self.instances = movable_instances(cluster, group, self.opts)
        self._version = dict.fromkeys(self.nodes, 0)
        self._cache: dict[str, _Entry] = {}
        estimate = len(self.targets) * sum(
            4 if i.mirror == model.MIRROR_INTERNAL else 1 for i in self.instances)
        self._keep = estimate <= CACHE_LIMIT
        #: the branch and bound search (False: not usable here)
        self._search: balance_bound.BoundSearch | bool | None = None

    def score(self) -> float:
        """The current group score."""
        return self.gs.score()

    # -- candidates ----------------------------------------------------------

    @contextlib.contextmanager
    def _lift(self, inst: Instance) -> Iterator[_Lifted]:
        """Take ``inst`` off its nodes for the duration; put it back exactly."""
        old = (inst.pnode or "", inst.snode)
        nodes = [self.nodes[n] for n in inst.nodes]
        saved = [(n, n.snapshot(), n.unit_use.get(inst.name)) for n in nodes]
        self.cluster.unplace(inst)
        try:
            yield _Lifted(self, inst)
        finally:
            self.cluster.place(inst, old[0], old[1])
            for node, snap, units in saved:
                node.restore(snap)
                if units is None:
                    node.unit_use.pop(inst.name, None)
                else:
                    node.unit_use[inst.name] = units

    def _fixed_moves(self, inst: Instance, lifted: _Lifted) -> list[_Cand]:
        """The moves without a target node: the failover."""
        opts = self.opts
        if inst.mirror != model.MIRROR_INTERNAL or not opts.instance_moves:
            return []
        pnode, snode = self.nodes[inst.pnode or ""], self.nodes[inst.snode or ""]
        if not snode.available:
            return []
        spri = lifted.primary(snode, pnode)
        psec = lifted.secondary(pnode, snode) if spri is not None else None
        if spri is None or psec is None:
            return []
        return [(MOVE_FAILOVER, None, snode.name, pnode.name, _merge(spri, psec))]

    def _target_moves(self, inst: Instance, lifted: _Lifted, target: Node) -> list[_Cand]:
        """The moves bringing ``target`` in, in tie-break order."""
        opts = self.opts
        pnode = self.nodes[inst.pnode or ""]
        if inst.mirror == model.MIRROR_EXTERNAL:
            if not opts.instance_moves:
                return []
            tpri = lifted.primary(target, None)
            if tpri is None:
                return []
            return [(MOVE_FAILOVER_TO, target.name, target.name, None,
                     _merge(tpri, lifted.removed(pnode)))]
        if not opts.disk_moves:
            return []
        snode = self.nodes[inst.snode or ""]
        out: list[_Cand] = []
        tsec = lifted.secondary(target, pnode)
        if tsec is not None:
            pkeep = lifted.primary(pnode, target, check=False)
            assert pkeep is not None
            out.append((MOVE_REPLACE_SECONDARY, target.name, pnode.name, target.name,
                        _merge(pkeep, lifted.removed(snode), tsec)))
        if not opts.instance_moves:
            return out
        if not (opts.restricted_migration and pnode.available):
            tpri = lifted.primary(target, pnode)
            psec = lifted.secondary(pnode, target) if tpri is not None else None
            if tpri is not None and psec is not None:
                out.append((MOVE_REPLACE_FAILOVER, target.name, target.name, pnode.name,
                            _merge(tpri, psec, lifted.removed(snode))))
        if not snode.available:
            return out
        if not opts.restricted_migration and lifted.can_be_primary(snode):
            # the secondary is the primary between the two failovers
            tpri = lifted.primary(target, snode)
            ssec = lifted.secondary(snode, target) if tpri is not None else None
            if tpri is not None and ssec is not None:
                out.append((MOVE_REPLACE_PRIMARY, target.name, target.name, snode.name,
                            _merge(tpri, lifted.removed(pnode), ssec)))
        spri = lifted.primary(snode, target)
        tsec = lifted.secondary(target, snode) if spri is not None else None
        if spri is not None and tsec is not None:
            out.append((MOVE_FAILOVER_REPLACE, target.name, snode.name, target.name,
                        _merge(spri, lifted.removed(pnode), tsec)))
        return out

    def _entry(self, inst: Instance) -> _Entry:
        """The instance's candidates, recomputing what its nodes' changes
        made stale."""
        ver = self._version
        versions = (inst.pnode or "", ver[inst.pnode or ""],
                    inst.snode, ver[inst.snode] if inst.snode else -1)
        entry = self._cache.get(inst.name)
        if entry is not None and entry.versions != versions:
            entry = None
        own = set(inst.nodes)
        if entry is None:
            stale = [t for t in self.targets if t.name not in own]
        else:
            stale = [t for t in self.targets if t.name not in own
                     and entry.by_target[t.name][0] != ver[t.name]]
            if not stale:
                return entry
        with self._lift(inst) as lifted:
            if entry is None:
                entry = _Entry(versions, self._fixed_moves(inst, lifted), {})
                if self._keep:
                    self._cache[inst.name] = entry
            for target in stale:
                entry.by_target[target.name] = (ver[target.name],
                                                self._target_moves(inst, lifted, target))
        entry.flat = list(entry.fixed)
        for target in self.targets:
            if target.name not in own:
                entry.flat.extend(entry.by_target[target.name][1])
        return entry

    def candidates(self, inst: Instance) -> list[_Cand]:
        """Every allowed move of ``inst``, in tie-break order."""
        return self._entry(inst).flat

    # -- steps ---------------------------------------------------------------

    def best_move(self, limit: float = math.inf) -> tuple[Instance, _Cand, float] | None:
        """The move giving the lowest score, if that is at most ``limit``
        (by branch and bound, or scoring every move where that cannot
        work)."""
        if self._search is None:
            search = balance_bound.BoundSearch(self)
            self._search = search if search.usable else False
        if isinstance(self._search, balance_bound.BoundSearch):
            return self._search.best_move(limit)
        return self.exhaustive_move(limit)

    def exhaustive_move(self, limit: float = math.inf
                        ) -> tuple[Instance, _Cand, float] | None:
        """``best_move`` scoring every candidate move (the reference)."""
        score_sparse = self.gs.score_sparse
        best: tuple[Instance, _Cand, float] | None = None
        best_score = math.inf
        for inst in self.instances:
            for cand in self.candidates(inst):
                value = score_sparse(cand[4])
                if value < best_score:
                    best_score = value
                    best = (inst, cand, value)
        return best if best_score <= limit else None

    def apply(self, inst: Instance, cand: _Cand) -> Move:
        """Make a candidate move; returns it with the new score."""
        kind, target, new_p, new_s = cand[:4]
        old = (inst.pnode or "", inst.snode)
        self.cluster.move(inst, new_p, new_s)
        for name in {old[0], old[1], new_p, new_s}:
            if name:
                self._version[name] += 1
        self.gs.recompute()
        return Move(inst.name, kind, target, old, (new_p, new_s), self.gs.score())

    def run(self, report: Callable[[Move], None] | None = None) -> list[Move]:
        """Balance until a stop condition; ``report`` sees each move as made."""
        opts = self.opts
        moves: list[Move] = []
        current = self.score()
        while (opts.max_length < 0 or len(moves) < opts.max_length) \
                and current > opts.min_score:
            found = self.best_move(current)
            if found is None:
                break
            inst, cand, value = found
            gain = current - value
            if gain <= _EPSILON * max(1.0, abs(current)):
                break
            if current <= opts.min_gain_limit and gain < opts.min_gain:
                break
            move = self.apply(inst, cand)
            moves.append(move)
            current = move.score
            if report is not None:
                report(move)
        return moves


def balance(cluster: Cluster, group: str, opts: Options | None = None,
            report: Callable[[Move], None] | None = None) -> list[Move]:
    """Balance ``group`` of ``cluster`` (changed in place); the moves made."""
    return Balancer(cluster, group, opts).run(report)
