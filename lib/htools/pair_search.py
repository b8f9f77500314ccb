"""The best DRBD (primary, secondary) pair, without scoring every pair.

``allocate.search`` scores every ordered pair of candidate nodes, applying
the placement to both: N² trials, half a minute on 1,000 nodes.
``best_pair`` finds the same pair (the valid pair with the lowest group
score, ties to the first names), with the same score and the same failure
counts, trying each node about twice and, in usual clusters, only a
handful of pairs:

- Each node is tried once as primary and once as secondary (of a primary
  it reserves no memory for). A pair's score is the group's score, plus
  the primary's change alone, plus the secondary's change alone, plus,
  for the standard-deviation components both nodes change (free disk,
  spindles, disk load), what they give together beyond each alone: sums
  and sums of squares add, so that is one square root per such component.
- A secondary depends on its primary only through the memory it already
  reserves for it (``Node.peers``): for the primaries it holds a
  reservation for, the N+1 check is made per pair, and the node's state
  is computed per pair if that reservation would grow to its largest.
  Failures are counted per node, or per such pair, as many times as
  trying every pair counts them.
- Branch and bound: primaries are taken from the smallest change up, and
  for each the secondaries from the smallest change up, until the two
  changes plus a lower bound of the pair's correction exceed the best
  score found. The bound: for one component, the pair's variance is the
  secondary's, plus the primary's change, plus a cross term linear in the
  secondary's sum change; the correction is therefore at least the least
  square-root difference over the range of the secondaries' variances and
  sum changes, which is reached at an end of the range or where the
  variance would reach zero.
- Secondaries in the same state (same change, same locations) form one
  class, tried once per primary with its first member by name; of the
  pairs of primaries and secondaries in the same states, only the first
  is scored exactly: a cluster of identical nodes costs N, not N².
- The pairs within a hair (``MARGIN``) of the best are scored again as
  ``search`` scores them, and the least of those wins: the answer and its
  score are exactly ``search``'s, whatever the rounding of the sums above.
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from collections.abc import Collection, Sequence

from ganeti.htools import score
from ganeti.htools.model import Instance, Node
from ganeti.htools.score import Delta, GroupScore, Sparse

_K = len(score.ONLINE_COMPONENTS)
_W = tuple(c[1] for c in score.ONLINE_COMPONENTS)
_CV = tuple(c[2] == score.KIND_CV for c in score.ONLINE_COMPONENTS)
#: what a pair sharing a location adds (the primary counts the conflict)
_LOC_W = next(c[1] for c in score.ONLINE_COMPONENTS if c[0] == "location_score")

#: pairs whose quick score is this close to the best (relative to the
#: score, at least this much) are scored exactly: far beyond the rounding
#: of either way of summing, far below a difference worth a choice
MARGIN = 1e-7

#: the name of no node: a secondary of a primary it reserves nothing for
_NO_PEER = "\0"

#: scored placements: (score, node names), as allocate.search returns them
Found = list[tuple[float, tuple[str, ...]]]

#: per CV component a role changes: (sum change, square sum change, the
#: component's term with that change alone)
_Cvs = dict[int, tuple[float, float, float]]


def score_secondary(gs: GroupScore, inst: Instance, pnode: Node, snode: Node,
                    pconf: Sequence[Delta], base_names: Collection[str]) -> float:
    """The group score with ``inst`` on ``pnode`` and ``snode``.

    ``pnode`` holds ``inst`` as primary already; ``pconf`` are the deltas
    of the further changed nodes (``base_names``) then ``pnode``'s. This
    is how ``allocate.search`` scores each pair.
    """
    ssnap = snode.snapshot()
    snode.add_sec(inst, pnode.name)
    if snode.name in base_names:
        deltas = [d for d in pconf if d[0] != snode.name]
    else:
        deltas = list(pconf)
    if pnode.locations & snode.locations:
        # the pair shares a location: the primary counts it
        pnode.loc_conflicts += 1
        deltas = [d for d in deltas if d[0] != pnode.name] + [gs.delta(pnode)]
        pnode.loc_conflicts -= 1
    deltas.append(gs.delta(snode))
    value = gs.score_deltas(deltas)
    snode.remove_sec(inst, pnode.name)
    snode.restore(ssnap)
    return value


def _term(k: int, total: float, square: float, count: int) -> float:
    if not _CV[k]:
        return _W[k] * total
    mean = total / count
    var = square / count - mean * mean
    return _W[k] * math.sqrt(var) if var > 0.0 else 0.0


class _Ref:
    """The group's sums with the further changed nodes applied: what each
    node's change is measured from."""

    def __init__(self, gs: GroupScore, base: Sparse | None) -> None:
        self.gs = gs
        self.base = base
        self.count = gs.count
        sums, sqs = list(gs.sums), list(gs.sqs)
        if base is not None:
            keys, values = base[0], base[1]
            for i, k in enumerate(keys):
                sums[k] += values[2 * i]
                sqs[k] += values[2 * i + 1]
        self.sums, self.sqs = sums, sqs
        self.total = gs.score_sparse(base if base is not None else ((), (), 0.0, 0.0, None))
        count = self.count
        self.terms = [_term(k, sums[k], sqs[k], count) if count else 0.0
                      for k in range(_K)]
        self.variances = [self.variance(k, 0.0, 0.0) if count else 0.0
                          for k in range(_K)]

    def variance(self, k: int, dsum: float, dsq: float) -> float:
        """Component ``k``'s variance with these sum changes."""
        mean = (self.sums[k] + dsum) / self.count
        return (self.sqs[k] + dsq) / self.count - mean * mean

    def role(self, sparse: Sparse) -> tuple[float, _Cvs]:
        """A node's score change alone, and its CV components (see _Cvs)."""
        merged = sparse if self.base is None else GroupScore.merge_sparse([self.base, sparse])
        change = self.gs.score_sparse(merged) - self.total
        cvs: _Cvs = {}
        keys, values = sparse[0], sparse[1]
        for i, k in enumerate(keys):
            if _CV[k]:
                dsum, dsq = values[2 * i], values[2 * i + 1]
                cvs[k] = (dsum, dsq, _term(k, self.sums[k] + dsum, self.sqs[k] + dsq,
                                           self.count))
        return change, cvs


@dataclasses.dataclass(slots=True)
class _Primary:
    """A node as primary: its score change, CV components, and a key equal
    for the nodes in the same state (which score the same in any pair)."""

    change: float
    name: str
    node: Node
    cvs: _Cvs
    key: tuple[object, ...]


@dataclasses.dataclass(slots=True)
class _Secondary:
    """Secondaries in one state: the score change, the CV components as
    (component, sum change, square sum change, term alone), the locations
    and the nodes, by name."""

    change: float
    cvs: tuple[tuple[int, float, float, float], ...]
    locations: frozenset[str]
    members: list[Node]


def _secondary(ref: _Ref, sparse: Sparse, node: Node) -> _Secondary:
    change, cvs = ref.role(sparse)
    return _Secondary(change, tuple((k, *v) for k, v in sorted(cvs.items())),
                      node.locations, [node])


def _add_sec_delta(gs: GroupScore, inst: Instance, node: Node, pnode: str) -> Sparse:
    snap = node.snapshot()
    node.add_sec(inst, pnode)
    sparse = gs.sparse_delta(node)
    node.remove_sec(inst, pnode)
    node.restore(snap)
    return sparse


def _h(w: float, var: float, change: float) -> float:
    """How a deviation term changes when its variance ``var`` changes."""
    new = var + change
    return ((w * math.sqrt(new) if new > 0.0 else 0.0)
            - (w * math.sqrt(var) if var > 0.0 else 0.0))


class _Bound:
    """A lower bound of the joint correction of any pair with a given
    primary, from the range of the secondaries' sum changes and variances
    of each CV component."""

    def __init__(self, ref: _Ref, roles: Sequence[_Secondary]) -> None:
        self.ref = ref
        ranges: dict[int, list[float]] = {}
        for role in roles:
            for k, dsum, dsq, _ in role.cvs:
                var = ref.variance(k, dsum, dsq)
                rng = ranges.get(k)
                if rng is None:
                    # secondaries not changing k: no change, the group's variance
                    var0 = ref.variances[k]
                    rng = ranges[k] = [0.0, 0.0, var0, var0]
                rng[0] = min(rng[0], dsum)
                rng[1] = max(rng[1], dsum)
                rng[2] = min(rng[2], var)
                rng[3] = max(rng[3], var)
        self.ranges = ranges

    def lower(self, pcvs: _Cvs) -> float:
        """The least joint correction of the primary's CV components."""
        ref = self.ref
        n2 = float(ref.count) * ref.count
        total = 0.0
        for k, (dsum, dsq, term) in pcvs.items():
            rng = self.ranges.get(k)
            if rng is None:
                continue
            bmin, bmax, vmin, vmax = rng
            w = _W[k]
            # joint variance = the secondary's + the primary's change
            # - 2 * (primary's sum change) * (secondary's) / n²
            gamma = -2.0 * dsum / n2
            low = ref.variance(k, dsum, dsq) - ref.variances[k] \
                + min(gamma * bmin, gamma * bmax)
            # the term difference grows with the variance change; for a given
            # change it is least at an end of the range of variances or where
            # the new variance reaches zero
            dip = min(max(-low, vmin), vmax)
            least = min(_h(w, vmin, low), _h(w, vmax, low), _h(w, dip, low))
            total += least - (term - ref.terms[k])
        return total


def _primaries(gs: GroupScore, ref: _Ref, inst: Instance, candidates: Sequence[Node],
               soft: bool, fails: Counter[str]) -> list[_Primary]:
    """The nodes that can be primary, by score change then name."""
    prims = []
    for pnode in candidates:
        fail = pnode.check_add_pri(inst, soft)
        if fail:
            fails[fail] += 1
            continue
        snap = pnode.snapshot()
        pnode.add_pri(inst)
        sparse = gs.sparse_delta(pnode)
        pnode.remove_pri(inst)
        pnode.restore(snap)
        change, cvs = ref.role(sparse)
        prims.append(_Primary(change, pnode.name, pnode, cvs,
                              (*sparse[:4], pnode.locations)))
    prims.sort(key=lambda p: (p.change, p.name))
    return prims


@dataclasses.dataclass
class _Secondaries:
    """The nodes as secondaries: classes of the nodes in the same state
    with a primary they reserve nothing for, by score change; per primary,
    the nodes with a state of their own with it (and that state), and the
    nodes not to pair with it in the classes."""

    classes: list[_Secondary]
    specials: dict[str, list[tuple[Node, _Secondary]]]
    skip: dict[str, set[str]]


def _secondaries(gs: GroupScore, ref: _Ref, inst: Instance, candidates: Sequence[Node],
                 soft: bool, valid: Collection[str], fails: Counter[str]) -> _Secondaries:
    """Each node as secondary, counting its failures with each primary."""
    classes: dict[tuple[object, ...], _Secondary] = {}
    out = _Secondaries([], {}, {})
    reserves = inst.uses_memory and inst.auto_balance
    for snode in sorted(candidates, key=lambda n: n.name):
        sname = snode.name
        default = snode.check_add_sec(inst, _NO_PEER, soft)
        others = len(valid) - (sname in valid)
        memo: dict[int, _Secondary] = {}
        # the check and the state depend on the primary only through the
        # memory the node reserves for it
        for pname, peer in snode.peers.items():
            if pname not in valid or pname == sname:
                continue
            others -= 1
            fail = snode.check_add_sec(inst, pname, soft)
            if fail:
                fails[fail] += 1
                out.skip.setdefault(pname, set()).add(sname)
                continue
            # the reservation grows to peer + memory: a state of its own if
            # that is the largest
            if default is None and (not reserves or peer + inst.memory <= snode.r_mem):
                continue
            role = memo.get(peer)
            if role is None:
                role = memo[peer] = _secondary(
                    ref, _add_sec_delta(gs, inst, snode, pname), snode)
            out.specials.setdefault(pname, []).append((snode, role))
            out.skip.setdefault(pname, set()).add(sname)
        if default:
            fails[default] += others
            continue
        sparse = _add_sec_delta(gs, inst, snode, _NO_PEER)
        key = (*sparse[:4], snode.locations)
        cls = classes.get(key)
        if cls is None:
            classes[key] = _secondary(ref, sparse, snode)
        else:
            cls.members.append(snode)
    out.classes = sorted(classes.values(), key=lambda c: (c.change, c.members[0].name))
    return out


#: a pair scored quickly: (value, primary, secondary, primary's state key,
#: secondary's state)
_Near = tuple[float, str, str, tuple[object, ...], _Secondary]


def _near_pairs(ref: _Ref, prims: Sequence[_Primary], secs: _Secondaries,
                ) -> tuple[list[_Near], float, float]:
    """The pairs whose quick score may be within ``margin`` of the best:
    a list that may hold more, the best quick score, and the margin."""
    bound = _Bound(ref, secs.classes + [r for rs in secs.specials.values() for _, r in rs])
    margin = MARGIN * max(1.0, abs(ref.total))
    sums, sqs, terms, count = ref.sums, ref.sqs, ref.terms, ref.count
    sqrt = math.sqrt
    best = math.inf
    near: list[_Near] = []

    def pair_value(prim: _Primary, role: _Secondary) -> float:
        value = prim.change + role.change
        pcvs = prim.cvs
        for k, dsum, dsq, term in role.cvs:
            one = pcvs.get(k)
            if one is not None:
                # both nodes change this component
                mean = (sums[k] + one[0] + dsum) / count
                var = (sqs[k] + one[1] + dsq) / count - mean * mean
                value += ((_W[k] * sqrt(var) if var > 0.0 else 0.0) - one[2] - term
                          + terms[k])
        plocs = prim.node.locations
        if plocs and plocs & role.locations:
            value += _LOC_W
        return value

    for prim in prims:
        floor = prim.change + bound.lower(prim.cvs)
        for snode, role in secs.specials.get(prim.name, ()):
            if floor + role.change <= best + margin:
                value = pair_value(prim, role)
                if value <= best + margin:
                    near.append((value, prim.name, snode.name, prim.key, role))
                    best = min(best, value)
        excluded = secs.skip.get(prim.name, ())
        for role in secs.classes:
            if floor + role.change > best + margin:
                break
            first = next((m for m in role.members
                          if m is not prim.node and m.name not in excluded), None)
            if first is not None:
                value = pair_value(prim, role)
                if value <= best + margin:
                    near.append((value, prim.name, first.name, prim.key, role))
                    best = min(best, value)
    return near, best, margin


def best_pair(gs: GroupScore, inst: Instance, candidates: Sequence[Node], soft: bool,
              changed: Sequence[Node] = ()) -> tuple[Found, Counter[str]]:
    """``allocate.search`` for pairs, keeping only the best pair.

    Returns the best valid (score, (primary, secondary)), if any, in a
    list, and the count of each failure as ``search`` counts them. The
    nodes in ``changed`` (see ``search``) must not be candidates.
    """
    fails: Counter[str] = Counter()
    unique = {n.name: n for n in changed}
    if any(n.name in unique for n in candidates):
        raise ValueError("best_pair: a changed node is a candidate")
    base = [gs.delta(n) for n in unique.values()]
    ref = _Ref(gs, GroupScore.merge_sparse([gs.sparse_delta(n) for n in unique.values()])
               if unique else None)
    prims = _primaries(gs, ref, inst, candidates, soft, fails)
    secs = _secondaries(gs, ref, inst, candidates, soft, {p.name for p in prims}, fails)
    near, best, margin = _near_pairs(ref, prims, secs)

    # score the nearly best pairs as search does, and keep the least; of
    # pairs of nodes in the same states (which score the same), the first
    same: dict[tuple[object, ...], tuple[str, str]] = {}
    for value, pname, sname, pkey, role in near:
        if value <= best + margin:
            key = (pkey, id(role))
            same[key] = min(same.get(key, (pname, sname)), (pname, sname))
    by_primary: dict[str, list[str]] = {}
    for pname, sname in same.values():
        by_primary.setdefault(pname, []).append(sname)
    nodes = {n.name: n for n in candidates}
    found: Found = []
    for pname, snames in by_primary.items():
        pnode = nodes[pname]
        snap = pnode.snapshot()
        pnode.add_pri(inst)
        pconf = base + [gs.delta(pnode)]
        for sname in snames:
            found.append((score_secondary(gs, inst, pnode, nodes[sname], pconf, unique),
                          (pname, sname)))
        pnode.remove_pri(inst)
        pnode.restore(snap)
    return ([min(found)] if found else []), fails
