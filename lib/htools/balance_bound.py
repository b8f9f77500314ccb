"""Branch and bound for an hbal step: the best move without scoring them all.

``Balancer.exhaustive_move`` scores every candidate move at every step:
on 200 nodes and 3,000 DRBD instances that is 2.5 million scores a step.
``BoundSearch`` finds the same move (the lowest score; ties to the same
first move in the tie-break order of ``balance``) with the same score,
scoring exactly only the few moves that may be the best:

- A move changes two or three nodes; each ends in a state ("part") that
  depends only on that node and the instance's footprint: its own nodes'
  parts (computed with the instance lifted off them, per instance), and
  the target's part, the same for all instances of one shape (same
  resources, template and tags) on that target. A part depends on the
  instance's other node only through the memory the node reserves for it
  (``Node.peers``) and whether the two share a location: the parts are
  kept per resulting reservation and location conflict ("variants").
  Parts are computed again only when their node changes.
- Each part gets a lower bound of what it adds to a move's score change,
  and the bounds of a move's parts add up to a lower bound of the move's
  change. For a standard deviation component with variance v, a move
  changes the variance by ``dq/n - (2 S ds + ds²)/n²`` (S: the sum, ds,
  dq: the move's sum and square sum changes, the sums of its parts'). The
  own nodes' parts (merged per kind of move) take
  ``dq_o/n - (2 S ds_o + ds_o² + 2 ds_o ds_t)/n²`` with the cross term at
  its worst over the range of the target parts' ds_t of the shape, the
  target's part ``dq_t/n - (2 S ds_t + ds_t²)/n²``. On the range of
  variance changes x of all moves, the term's change ``w (√(v + x) - √v)``
  is concave with value 0 at 0, so above the chords from 0 to the ends,
  ``min(a x, b x)`` (increasing and superadditive: each part contributes
  that of its own change), or above the upper chord's line lowered to
  hold down to x = -v (for deviations near zero). Sums, offline counts
  and location conflicts are linear (the exclusion-by-location count
  changes by at most its count changes).
- The parts' bounds are kept across steps ("frame"): for the current
  state, the chords differ by a slope and the sums S have moved a little,
  which a slack per move covers (``_Frame.slack``). They are computed
  again once that slack exceeds a share of the last step's gain, or a
  new target part leaves its shape's range.
- Per step, the targets of each shape are sorted by their part's bound;
  a heap takes the (instance, kind of move) pairs by their own parts'
  bound plus the bound of their next target (and the failovers by their
  own), and scores moves exactly, as the exhaustive search does, until
  the least bound left exceeds the best score found by ``MARGIN``
  (relative): whatever the rounding, no move left can be the best or tie
  with it.
"""

from __future__ import annotations

import bisect
import heapq
import math
from collections.abc import Callable, Iterable, Iterator

# balance imports this module: only its functions are used here, at run time
from ganeti.htools import balance, model, score
from ganeti.htools.model import Instance, Node
from ganeti.htools.score import GroupScore, Sparse

#: moves whose lower bound is this close to the best score (relative to the
#: score, at least this much) are scored exactly: far beyond rounding
MARGIN = 1e-7

#: give up (and let the exhaustive search work) beyond this many target
#: parts: shapes times targets
PART_LIMIT = 400_000

_K = len(score.ONLINE_COMPONENTS)
_W = tuple(c[1] for c in score.ONLINE_COMPONENTS)
_CV = tuple(c[2] == score.KIND_CV for c in score.ONLINE_COMPONENTS)
_CV_IDX = tuple(k for k in range(_K) if _CV[k])
_OFF_W = tuple(c[1] for c in score.OFFLINE_COMPONENTS)
_LOC_W = score.LOC_EXCL_COMPONENT[1]

#: the name of no node: a secondary of a primary it reserves nothing for
_NO_PEER = "\0"

# kinds of moves with a target, in the tie-break order of each target
_R, _RF, _FRF, _FR = 0, 1, 2, 3
_PRI, _SEC = 0, 1

#: the bounds of the parts are computed again once the slack their age
#: costs exceeds this share of the last step's gain
_BUDGET = 0.25
#: the target's role in each kind of move of a DRBD instance
_ROLES = (_SEC, _PRI, _PRI, _SEC)


def shape_key(inst: Instance, use_locations: bool) -> tuple[object, ...]:
    """What a node's state with ``inst`` on it depends on, of ``inst``.

    Instances of one shape put a node in the same state. Where the trial
    really adds the instance to the node (exclusion tags scored per
    location), the instance is its own shape.
    """
    key: tuple[object, ...] = (
        inst.disk_template, inst.disks, inst.memory, inst.vcpus, inst.spindle_use,
        inst.admin_state, inst.auto_balance, inst.util, inst.excl_tags,
        inst.desired_locations, inst.disk_space)
    if use_locations and inst.excl_tags:
        key += (inst.name,)
    return key


def _reserves(inst: Instance) -> bool:
    return inst.uses_memory and inst.auto_balance


def _peer_names(node: Node) -> dict[int, str]:
    """A primary name per distinct memory the node reserves (0: none)."""
    names = {0: _NO_PEER}
    for pname, mem in sorted(node.peers.items()):
        names.setdefault(mem, pname)
    return names


def _sec_key(node: Node, r_mem: int, inst: Instance, pname: str) -> int | None:
    """The variant of ``node`` as secondary of ``pname``: its reservation
    (None when the instance reserves nothing)."""
    if not _reserves(inst):
        return None
    return max(r_mem, node.peers.get(pname, 0) + inst.memory)


def _sec_variants(node: Node, r_mem: int, inst: Instance, soft: bool,
                  delta: Callable[[Node, Instance, str], Sparse]
                  ) -> dict[int | None, Sparse | None]:
    """``node`` as secondary of each kind of primary: by reservation, the
    delta or None if refused (``delta``: secondary_delta for the group)."""
    out: dict[int | None, Sparse | None] = {}
    names = _peer_names(node) if _reserves(inst) else {0: _NO_PEER}
    for pname in names.values():
        key = _sec_key(node, r_mem, inst, pname)
        if key in out:
            continue
        ok = not node.available or node.check_add_sec(inst, pname, soft) is None
        out[key] = delta(node, inst, pname) if ok else None
    return out


def _conflicts(node: Node) -> tuple[bool, ...]:
    return (False, True) if node.locations else (False,)


class _Own:
    """The parts of an instance's own nodes, computed with it lifted."""

    __slots__ = ("versions", "fixed", "removed_p", "removed_s", "pkeep", "psec",
                 "spri", "ssec", "s_rmem", "combos", "lows", "fixed_lows", "frame")

    def __init__(self, versions: tuple[str, int, str | None, int]) -> None:
        #: the nodes and their versions the parts are from
        self.versions = versions
        self.fixed: list[balance._Cand] = []
        self.removed_p: Sparse | None = None
        self.removed_s: Sparse | None = None
        self.pkeep: dict[bool, Sparse] = {}
        self.psec: dict[int | None, Sparse | None] = {}
        self.spri: dict[bool, Sparse] = {}
        self.ssec: dict[int | None, Sparse | None] = {}
        self.s_rmem = 0
        #: per kind of move, the own nodes' parts merged, one per variant
        self.combos: list[list[Sparse]] = []
        #: per kind, the least bound of the own parts (None: impossible),
        #: the bounds of the fixed moves, and the frame they are from
        self.lows: list[float | None] = []
        self.fixed_lows: list[float] = []
        self.frame: _Frame | None = None

    def combine(self, external: bool) -> None:
        """Merge the parts of each kind of move, in every variant."""
        merge = GroupScore.merge_sparse
        rp, rs = self.removed_p, self.removed_s
        assert rp is not None
        if external:
            self.combos = [[rp]]
            return
        assert rs is not None
        combos: list[list[Sparse]] = [[], [], [], []]
        combos[_R] = [merge((p, rs)) for p in self.pkeep.values()]
        combos[_RF] = [merge((p, rs)) for p in self.psec.values() if p is not None]
        if self.spri:
            combos[_FRF] = [merge((rp, p)) for p in self.ssec.values() if p is not None]
            combos[_FR] = [merge((p, rp)) for p in self.spri.values()]
        self.combos = combos


def _d_range(parts: Iterable[Sparse]) -> tuple[list[float], list[float]]:
    """Per component, the least and greatest sum change of the parts (zero
    for the parts not changing it)."""
    lo = [0.0] * _K
    hi = [0.0] * _K
    first = True
    for keys, values, *_ in parts:
        seen = dict(zip(keys, values[::2]))
        for k in _CV_IDX:
            d = seen.get(k, 0.0)
            if first or d < lo[k]:
                lo[k] = d
            if first or d > hi[k]:
                hi[k] = d
        first = False
    return lo, hi


class _Target:
    """A target node's parts for one shape."""

    __slots__ = ("version", "pri", "sec", "ranges", "lows", "frame")

    def __init__(self, version: int) -> None:
        self.version = version
        #: as primary, by location conflict with the secondary (None: refused)
        self.pri: dict[bool, Sparse] | None = None
        #: as secondary, by resulting reservation
        self.sec: dict[int | None, Sparse | None] = {}
        #: per role, the range of the parts' sum changes (None: no part)
        self.ranges: list[tuple[list[float], list[float]] | None] = [None, None]
        #: per role, the least bound of the parts (None: refused), and the
        #: frame it is from
        self.lows: list[float | None] = [None, None]
        self.frame: _Frame | None = None

    def finish(self) -> None:
        """Compute the ranges, once the parts are known."""
        if self.pri:
            self.ranges[_PRI] = _d_range(self.pri.values())
        secs = [p for p in self.sec.values() if p is not None]
        if secs:
            self.ranges[_SEC] = _d_range(secs)

    def parts(self) -> Iterator[Sparse]:
        """Every part, for the ranges of the bounds."""
        if self.pri:
            yield from self.pri.values()
        for part in self.sec.values():
            if part is not None:
                yield part


#: per component, the least and greatest sum change of some target parts
_Range = tuple[list[float], list[float]]


def _merge_ranges(ranges: Iterable[_Range]) -> _Range:
    los, his = zip(*ranges)
    return list(map(min, zip(*los))), list(map(max, zip(*his)))


def _chords(w: float, var: float, low: float, high: float) -> tuple[float, float, float]:
    """Slopes bounding a deviation term's change g(x) = w (√(var + x) - √var)
    for variance changes x in [low, high]: (down, up, lowered) such that
    g(x) >= min(down x, up x) - lowered, with down >= up (so that the bound
    is superadditive).

    g is concave on [-var, high] (no move takes the variance below zero):
    above the chords from 0 to the ends, or above the upper chord's line
    lowered to hold down to x = -var, which is better for a deviation near
    zero; the cheaper of the two at the lower end is taken.
    """
    sigma = math.sqrt(var)
    up = w * (math.sqrt(var + high) - sigma) / high if high > 0.0 else 0.0
    down = up
    if low < 0.0 and var > 0.0:
        end = max(low, -var)
        down = max(up, w * (sigma - math.sqrt(var + end)) / -end)
    lowered = max(w * sigma - up * var, 0.0)
    if lowered < (down - up) * -low:
        return up, up, lowered
    return down, up, 0.0


class _Frame:
    """Lower bounds of the parts, valid for as long as ``valid`` says.

    A move's variance change in component k splits exactly into its own
    nodes' part, ``dq_o/n - (2 S ds_o + ds_o² + 2 ds_o ds_t)/n²``, and its
    target's, ``dq_t/n - (2 S ds_t + ds_t²)/n²``; the target's sum change
    ds_t lies in the range of its shape and role, which bounds the cross
    term. Each part is bounded through the chords (see the module's
    docstring), computed at the state the frame is made in; they stay
    valid while the variances change as long as the term's change stays
    above them at the ends of the range of changes (checked each step),
    and the sums S move their parts' bounds by a little, added as slack.
    The slope for decreases is taken a bit steeper than the chord so that
    the frame outlives the variances falling.
    """

    def __init__(self, gs: GroupScore, owns: Iterable[Sparse], targets: Iterable[Sparse],
                 wholes: Iterable[Sparse],
                 zranges: dict[tuple[int, int], _Range]) -> None:
        n = gs.count
        self.zranges = zranges
        self.zall = zlo, zhi = _merge_ranges(zranges.values()) if zranges \
            else ([0.0] * _K, [0.0] * _K)
        self.inv_n = inv_n = 1.0 / n
        self.inv_n2 = inv_n2 = inv_n * inv_n
        self.sums = list(gs.sums)
        self.two_s = two_s = [2.0 * s for s in gs.sums]
        cv = _CV
        self.dabs = dabs = [0.0] * _K
        # the range of each side's variance change over all moves
        self.tlo = tlo = [0.0] * _K
        self.thi = thi = [0.0] * _K
        self._widen(targets, tlo, thi)
        self.olo = olo = [0.0] * _K
        self.ohi = ohi = [0.0] * _K
        for keys, values, *_ in owns:
            pairs = iter(values)
            for k, dsum, dsq in zip(keys, pairs, pairs):
                if cv[k]:
                    change = dsq * inv_n - (two_s[k] + dsum) * dsum * inv_n2
                    cross_a = 2.0 * dsum * zlo[k] * inv_n2
                    cross_b = 2.0 * dsum * zhi[k] * inv_n2
                    olo[k] = min(olo[k], change - max(cross_a, cross_b))
                    ohi[k] = max(ohi[k], change - min(cross_a, cross_b))
                    dabs[k] = max(dabs[k], abs(dsum))
        self.dmin = dmin = [olo[k] + tlo[k] for k in range(_K)]
        self.dmax = dmax = [ohi[k] + thi[k] for k in range(_K)]
        self._widen(wholes, dmin, dmax)
        self.wlo, self.whi = list(dmin), list(dmax)
        self.neg = neg = [0.0] * _K
        self.pos = pos = [0.0] * _K
        for k in _CV_IDX:
            mean = gs.sums[k] * inv_n
            var = max(gs.sqs[k] * inv_n - mean * mean, 0.0)
            down, up, _ = _chords(_W[k], var, dmin[k], dmax[k])
            neg[k] = down
            pos[k] = up

    def _widen(self, parts: Iterable[Sparse], lo: list[float], hi: list[float]) -> None:
        """Widen ``lo``/``hi`` (and ``dabs``) per CV component to the
        variance changes of ``parts``."""
        cv, two_s, dabs = _CV, self.two_s, self.dabs
        inv_n, inv_n2 = self.inv_n, self.inv_n2
        for keys, values, *_ in parts:
            pairs = iter(values)
            for k, dsum, dsq in zip(keys, pairs, pairs):
                if cv[k]:
                    change = dsq * inv_n - (two_s[k] + dsum) * dsum * inv_n2
                    lo[k] = min(lo[k], change)
                    hi[k] = max(hi[k], change)
                    dabs[k] = max(dabs[k], abs(dsum))

    def slack(self, gs: GroupScore) -> float:
        """What to take off the sum of a move's parts' bounds to bound its
        score change now.

        The parts were bounded with the chords of the state the frame was
        made in. For the current state, the chords over the current range
        of changes bound the term (or the lowered chord, whichever costs
        less); they differ from the frame's by a slope, which over the
        parts' changes (at most the range's ends) costs at most that slope
        times the end. The sums S have moved each part's variance change
        by at most 2 |dS| |ds| / n².
        """
        inv_n, inv_n2 = self.inv_n, self.inv_n2
        total = 0.0
        for k in _CV_IDX:
            shift = 4.0 * abs(gs.sums[k] - self.sums[k]) * self.dabs[k] * inv_n2
            low = min(self.olo[k] + self.tlo[k], self.wlo[k])
            high = max(self.ohi[k] + self.thi[k], self.whi[k])
            mean = gs.sums[k] * inv_n
            var = max(gs.sqs[k] * inv_n - mean * mean, 0.0)
            down, up, lowered = _chords(_W[k], var, low - shift, high + shift)
            total += (lowered + max(down - self.neg[k], 0.0) * max(-low, 0.0)
                      + max(self.pos[k] - up, 0.0) * max(high, 0.0) + down * shift)
        return total

    @staticmethod
    def _linear(part: Sparse) -> float:
        _, _, doff0, doff1, dloc = part
        total = _OFF_W[0] * doff0 + _OFF_W[1] * doff1
        if dloc:
            total -= _LOC_W * sum(abs(c) for c in dloc.values())
        return total

    def _extend(self, k: int, dsum: float, low: float, high: float, los: list[float],
                his: list[float]) -> None:
        if low < los[k]:
            los[k] = low
        if high > his[k]:
            his[k] = high
        if abs(dsum) > self.dabs[k]:
            self.dabs[k] = abs(dsum)

    def target(self, part: Sparse) -> float:
        """The bound of a target's part."""
        total = self._linear(part) if part[2] or part[3] or part[4] else 0.0
        inv_n, inv_n2, two_s = self.inv_n, self.inv_n2, self.two_s
        neg, pos, cv = self.neg, self.pos, _CV
        tlo, thi = self.tlo, self.thi
        pairs = iter(part[1])
        for k, dsum, dsq in zip(part[0], pairs, pairs):
            if cv[k]:
                change = dsq * inv_n - (two_s[k] + dsum) * dsum * inv_n2
                if change < tlo[k] or change > thi[k] or abs(dsum) > self.dabs[k]:
                    self._extend(k, dsum, change, change, tlo, thi)
                total += (neg[k] if change < 0.0 else pos[k]) * change
            else:
                total += _W[k] * dsum
        return total

    def own(self, part: Sparse, zrange: _Range) -> float:
        """The bound of an instance's own parts, for targets whose sum
        changes lie in ``zrange``."""
        total = self._linear(part) if part[2] or part[3] or part[4] else 0.0
        inv_n, inv_n2, two_s = self.inv_n, self.inv_n2, self.two_s
        neg, pos, cv = self.neg, self.pos, _CV
        zlo, zhi = zrange
        alo, ahi = self.zall
        pairs = iter(part[1])
        for k, dsum, dsq in zip(part[0], pairs, pairs):
            if cv[k]:
                base = dsq * inv_n - (two_s[k] + dsum) * dsum * inv_n2
                cross_a = 2.0 * dsum * alo[k] * inv_n2
                cross_b = 2.0 * dsum * ahi[k] * inv_n2
                self._extend(k, dsum, base - max(cross_a, cross_b),
                            base - min(cross_a, cross_b), self.olo, self.ohi)
                cross = zhi[k] if dsum > 0.0 else zlo[k]
                change = base - 2.0 * cross * dsum * inv_n2
                total += (neg[k] if change < 0.0 else pos[k]) * change
            else:
                total += _W[k] * dsum
        return total

    def whole(self, part: Sparse) -> float:
        """The bound of a whole move's delta."""
        total = self._linear(part) if part[2] or part[3] or part[4] else 0.0
        inv_n, inv_n2, two_s = self.inv_n, self.inv_n2, self.two_s
        neg, pos, cv = self.neg, self.pos, _CV
        pairs = iter(part[1])
        for k, dsum, dsq in zip(part[0], pairs, pairs):
            if cv[k]:
                change = dsq * inv_n - (two_s[k] + dsum) * dsum * inv_n2
                self._extend(k, dsum, change, change, self.wlo, self.whi)
                total += (neg[k] if change < 0.0 else pos[k]) * change
            else:
                total += _W[k] * dsum
        return total


class BoundSearch:
    """The exhaustive search's best move, by branch and bound."""

    def __init__(self, balancer: balance.Balancer) -> None:
        self.bal = balancer
        gs = balancer.gs
        #: one instance of each shape; the shape (index) of each instance
        self.shapes: list[Instance] = []
        self.inst_shape: list[int] = []
        self.external = [i.mirror == model.MIRROR_EXTERNAL for i in balancer.instances]
        #: the shapes of one instance each (see shape_key)
        self.own_shapes: set[int] = set()
        ids: dict[tuple[object, ...], int] = {}
        for inst in balancer.instances:
            sid = ids.setdefault(shape_key(inst, gs.use_locations), len(ids))
            if sid == len(self.shapes):
                self.shapes.append(inst)
            self.inst_shape.append(sid)
            if gs.use_locations and inst.excl_tags:
                self.own_shapes.add(sid)
        self.usable = bool(balancer.targets) and gs.count > 0 \
            and len(self.shapes) * len(balancer.targets) <= PART_LIMIT
        self.own: list[_Own | None] = [None] * len(balancer.instances)
        #: per shape, per target (index), its parts
        self.targets: list[list[_Target]] = []
        #: the version of each target the parts are from
        self.tversions = [-1] * len(balancer.targets)
        self.frame: _Frame | None = None
        #: per shape and role, the targets by bound: (bound, target index)
        self.order: dict[tuple[int, int], list[tuple[float, int]]] = {}
        #: moves scored exactly by the last search, frames made (for tests)
        self.scored = 0
        self.frames = 0
        #: how much the last search's best move lowered the score
        self.last_gain = 0.0

    # -- parts ---------------------------------------------------------------

    def _own(self, idx: int, inst: Instance) -> _Own:
        bal = self.bal
        ver = bal._version
        versions = (inst.pnode or "", ver[inst.pnode or ""],
                    inst.snode, ver[inst.snode] if inst.snode else -1)
        own = self.own[idx]
        if own is not None and own.versions == versions:
            return own
        own = self.own[idx] = _Own(versions)
        gs, soft = bal.gs, bal.opts.soft_checks
        pnode = bal.nodes[inst.pnode or ""]
        with bal._lift(inst) as lifted:
            own.fixed = bal._fixed_moves(inst, lifted)
            own.removed_p = lifted.removed(pnode)
            if inst.mirror == model.MIRROR_INTERNAL and inst.snode:
                snode = bal.nodes[inst.snode]
                own.removed_s = lifted.removed(snode)
                for conflict in _conflicts(pnode):
                    own.pkeep[conflict] = balance.primary_delta(gs, pnode, inst, conflict)

                def sec(node: Node, inst: Instance, pname: str) -> Sparse:
                    return balance.secondary_delta(gs, node, inst, pname)

                own.psec = _sec_variants(pnode, pnode.r_mem, inst, soft, sec)
                if snode.available:
                    own.s_rmem = snode.r_mem
                    own.ssec = _sec_variants(snode, snode.r_mem, inst, soft, sec)
                    if lifted.can_be_primary(snode):
                        for conflict in _conflicts(snode):
                            own.spri[conflict] = balance.primary_delta(
                                gs, snode, inst, conflict)
        own.combine(inst.mirror == model.MIRROR_EXTERNAL)
        return own

    def _target(self, sid: int, node: Node) -> _Target:
        """A target's parts for a shape."""
        bal = self.bal
        rec = _Target(bal._version[node.name])
        rep = self.shapes[sid]
        if sid in self.own_shapes and node.name in (rep.pnode, rep.snode):
            # trying the instance really adds it: not on its own nodes
            return rec
        gs, soft = bal.gs, bal.opts.soft_checks
        if node.check_add_pri(rep, soft) is None:
            rec.pri = {c: balance.primary_delta(gs, node, rep, c) for c in _conflicts(node)}

        def sec(node: Node, inst: Instance, pname: str) -> Sparse:
            return balance.secondary_delta(gs, node, inst, pname)

        if rep.mirror == model.MIRROR_INTERNAL:
            rec.sec = _sec_variants(node, node.r_mem, rep, soft, sec)
        rec.finish()
        return rec

    # -- the search ----------------------------------------------------------

    def _kinds(self, idx: int, own: _Own, frame: _Frame) -> list[float | None]:
        """Per kind of move with a target, the least bound of the own parts
        (None: no such move)."""
        opts = self.bal.opts
        key = self.inst_shape[idx]
        zranges = frame.zranges
        if self.external[idx]:
            zrange = zranges.get((key, _PRI))
            if not opts.instance_moves or zrange is None:
                return []
            return [frame.own(own.combos[0][0], zrange)]
        if not opts.disk_moves:
            return []
        inst = self.bal.instances[idx]
        pnode = self.bal.nodes[inst.pnode or ""]
        snode = self.bal.nodes[inst.snode or ""]
        allowed = [True, opts.instance_moves
                   and not (opts.restricted_migration and pnode.available),
                   opts.instance_moves and snode.available
                   and not opts.restricted_migration,
                   opts.instance_moves and snode.available]
        lows: list[float | None] = [None, None, None, None]
        for kind, combos in enumerate(own.combos):
            zrange = zranges.get((key, _ROLES[kind]))
            if allowed[kind] and combos and zrange is not None:
                lows[kind] = min(frame.own(c, zrange) for c in combos)
        return lows

    def _bound_own(self, idx: int, own: _Own, frame: _Frame) -> None:
        own.lows = self._kinds(idx, own, frame)
        own.fixed_lows = [frame.whole(c[4]) for c in own.fixed]
        own.frame = frame

    @staticmethod
    def _bound_target(rec: _Target, frame: _Frame) -> None:
        bound = frame.target
        rec.lows = [min(bound(p) for p in rec.pri.values()) if rec.pri else None,
                    min((bound(p) for p in rec.sec.values() if p is not None),
                        default=None)]
        rec.frame = frame

    def _new_frame(self, owns: list[_Own], recs: list[list[_Target]]
                   ) -> _Frame:
        """Bound every part afresh."""
        zranges: dict[tuple[int, int], _Range] = {}
        for key, rows in enumerate(recs):
            for role in (_PRI, _SEC):
                found = [r for rec in rows if (r := rec.ranges[role]) is not None]
                if found:
                    zranges[key, role] = _merge_ranges(found)
        frame = _Frame(self.bal.gs,
                       (c for own in owns for combos in own.combos for c in combos),
                       (p for rows in recs for rec in rows for p in rec.parts()),
                       (c[4] for own in owns for c in own.fixed), zranges)
        for idx, own in enumerate(owns):
            self._bound_own(idx, own, frame)
        self.order = {}
        for key, rows in enumerate(recs):
            for rec in rows:
                self._bound_target(rec, frame)
            for role in (_PRI, _SEC):
                row = [(low, tidx) for tidx, rec in enumerate(rows)
                       if (low := rec.lows[role]) is not None]
                row.sort()
                self.order[key, role] = row
        self.frames += 1
        return frame

    def _update(self, frame: _Frame, owns: list[_Own],
                changed: list[tuple[int, int, _Target, _Target | None]]
                ) -> bool:
        """Bound the parts made since the frame; False if out of its ranges."""
        for key, _, rec, _ in changed:
            for role in (_PRI, _SEC):
                rng = rec.ranges[role]
                if rng is None:
                    continue
                frange = frame.zranges.get((key, role))
                if frange is None or any(
                        a < b for a, b in zip(rng[0], frange[0])) or any(
                        a > b for a, b in zip(rng[1], frange[1])):
                    return False
            self._bound_target(rec, frame)
        for idx, own in enumerate(owns):
            if own.frame is not frame:
                self._bound_own(idx, own, frame)
        for key, tidx, rec, old in changed:
            for role in (_PRI, _SEC):
                row = self.order[key, role]
                if old is not None and old.lows[role] is not None:
                    del row[bisect.bisect_left(row, (old.lows[role], tidx))]
                low = rec.lows[role]
                if low is not None:
                    bisect.insort(row, (low, tidx))
        return True

    def _exact(self, inst: Instance, own: _Own, kind: int, target: Node,
               rec: _Target) -> balance._Cand | None:
        """The move as the exhaustive search scores it, or None if refused."""
        merge = GroupScore.merge_sparse
        pname = inst.pnode or ""
        tname = target.name
        if inst.mirror == model.MIRROR_EXTERNAL:
            if not rec.pri:
                return None
            assert own.removed_p is not None
            return (balance.MOVE_FAILOVER_TO, tname, tname, None,
                    merge((rec.pri[False], own.removed_p)))
        nodes = self.bal.nodes
        pnode, snode = nodes[pname], nodes[inst.snode or ""]
        assert own.removed_s is not None and own.removed_p is not None
        if kind == _R:
            tsec = rec.sec.get(_sec_key(target, target.r_mem, inst, pname))
            if tsec is None:
                return None
            pkeep = own.pkeep[bool(pnode.locations & target.locations)]
            return (balance.MOVE_REPLACE_SECONDARY, tname, pname, tname,
                    merge((pkeep, own.removed_s, tsec)))
        if kind == _RF:
            if not rec.pri:
                return None
            psec = own.psec.get(_sec_key(pnode, pnode.r_mem, inst, tname))
            if psec is None:
                return None
            tpri = rec.pri[bool(target.locations & pnode.locations)]
            return (balance.MOVE_REPLACE_FAILOVER, tname, tname, pname,
                    merge((tpri, psec, own.removed_s)))
        sname = snode.name
        if kind == _FRF:
            if not rec.pri:
                return None
            ssec = own.ssec.get(_sec_key(snode, own.s_rmem, inst, tname))
            if ssec is None:
                return None
            tpri = rec.pri[bool(target.locations & snode.locations)]
            return (balance.MOVE_REPLACE_PRIMARY, tname, tname, sname,
                    merge((tpri, own.removed_p, ssec)))
        tsec = rec.sec.get(_sec_key(target, target.r_mem, inst, sname))
        if tsec is None:
            return None
        spri = own.spri[bool(snode.locations & target.locations)]
        return (balance.MOVE_FAILOVER_REPLACE, tname, sname, tname,
                merge((spri, own.removed_p, tsec)))

    def best_move(self, limit: float = math.inf
                  ) -> tuple[Instance, balance._Cand, float] | None:
        """The move with the lowest score if it scores at most ``limit``
        (None otherwise), ties as the exhaustive search breaks them."""
        bal = self.bal
        gs = bal.gs
        instances = bal.instances
        targets = bal.targets
        owns = [self._own(idx, inst) for idx, inst in enumerate(instances)]
        changed: list[tuple[int, int, _Target, _Target | None]] = []
        recs = self.targets
        if not recs:
            recs.extend([self._target(sid, t) for t in targets]
                        for sid in range(len(self.shapes)))
            self.tversions = [bal._version[t.name] for t in targets]
        for tidx, target in enumerate(targets):
            version = bal._version[target.name]
            if self.tversions[tidx] != version:
                self.tversions[tidx] = version
                for sid, rows in enumerate(recs):
                    old = rows[tidx]
                    rows[tidx] = self._target(sid, target)
                    changed.append((sid, tidx, rows[tidx], old))
        frame = self.frame
        if frame is None or not self._update(frame, owns, changed) \
                or frame.slack(gs) > _BUDGET * self.last_gain:
            frame = self.frame = self._new_frame(owns, recs)
        slack = frame.slack(gs)
        order = self.order
        score_sparse = gs.score_sparse
        base = gs.score()
        margin = MARGIN * max(1.0, abs(base))
        offset = base - slack
        best_value = math.inf
        best: tuple[tuple[int, int, int], Instance, balance._Cand] | None = None
        scored = 0
        heap: list[tuple[float, int, int, int]] = []
        threshold = limit + margin
        external = self.external
        for idx, own in enumerate(owns):
            key = self.inst_shape[idx]
            for fidx, low in enumerate(own.fixed_lows):
                lb = offset + low
                if lb <= threshold:
                    heap.append((lb, idx, -1, fidx))
            for kind, own_low in enumerate(own.lows):
                if own_low is None:
                    continue
                row = order[key, _PRI if external[idx] else _ROLES[kind]]
                if row:
                    lb = offset + own_low + row[0][0]
                    if lb <= threshold:
                        heap.append((lb, idx, kind, 0))
        heapq.heapify(heap)
        while heap and heap[0][0] <= threshold:
            _, idx, kind, pos = heapq.heappop(heap)
            inst = instances[idx]
            own = owns[idx]
            if kind < 0:
                cand: balance._Cand | None = own.fixed[pos]
                rank = (idx, -1, pos)
            else:
                key = self.inst_shape[idx]
                row = order[key, _PRI if external[idx] else _ROLES[kind]]
                tidx = row[pos][1]
                target = targets[tidx]
                if pos + 1 < len(row):
                    own_low = own.lows[kind]
                    assert own_low is not None
                    lb = offset + own_low + row[pos + 1][0]
                    if lb <= threshold:
                        heapq.heappush(heap, (lb, idx, kind, pos + 1))
                if target.name == inst.pnode or target.name == inst.snode:
                    continue
                cand = self._exact(inst, own, kind, target, recs[key][tidx])
                rank = (idx, tidx, kind)
            if cand is None:
                continue
            scored += 1
            value = score_sparse(cand[4])
            if value < best_value or (value == best_value and best is not None
                                      and rank < best[0]):
                best_value = value
                best = (rank, inst, cand)
                threshold = min(limit, best_value) + margin
        self.scored = scored
        self.last_gain = base - best_value if best is not None else 0.0
        if best is None or best_value > limit:
            return None
        return best[1], best[2], best_value
