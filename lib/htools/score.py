"""The cluster score hbal minimises and hail uses to choose placements.

The score is a weighted sum of components (hbal(1), "CLUSTER SCORING"):
standard deviations over the online nodes of per-node ratios (free memory,
free disk, virtual-to-physical CPUs, spindle use, reserved memory, dynamic
loads), counts (nodes failing N+1, exclusion tag conflicts, location
conflicts, unsatisfied desired locations, instances on offline nodes) and
the sum of the reserved memory ratios. Offline nodes (drained and not
vm_capable ones too) only count through the instances left on them. A
perfectly balanced cluster scores the sum of its reserved memory ratios
times its weight.

``GroupScore`` keeps running sums so that trying a placement, which
changes one or two nodes, costs O(components), not O(nodes): solvers
apply a placement, ask ``score_with(changed_nodes)`` and undo it.
"""

from __future__ import annotations

import math
import operator
from collections import Counter
from collections.abc import Iterable, Sequence

from ganeti.htools.model import Node

#: (node name, sum changes, square sum changes, offline changes x2,
#: location-exclusion count changes) of one node, see GroupScore.delta
Delta = tuple[str, "tuple[float, ...] | None", "tuple[float, ...] | None", float, float,
              "dict[tuple[str, str], int] | None"]
#: a delta keeping only the online components that change: (component
#: indexes, their (sum change, square sum change) pairs flattened, offline
#: changes x2, location-exclusion count changes); see GroupScore.sparse_delta
Sparse = tuple[tuple[int, ...], tuple[float, ...], float, float,
               "dict[tuple[str, str], int] | None"]

#: one tuple object per set of component indexes, shared by the sparse
#: deltas (a search keeps many)
_INDEXES: dict[tuple[int, ...], tuple[int, ...]] = {}

KIND_CV = "cv"      # population standard deviation over online nodes
KIND_SUM = "sum"    # sum over online nodes
KIND_OFF = "off"    # sum over offline nodes

#: (name, weight, kind, what): the components over online nodes, in the
#: order of node_vector()
ONLINE_COMPONENTS = (
    ("free_mem_cv", 0.5, KIND_CV, "free memory ratio"),
    ("free_disk_cv", 0.5, KIND_CV, "free disk ratio"),
    ("vcpu_ratio_cv", 0.5, KIND_CV, "virtual to physical CPU ratio"),
    ("spindles_cv", 0.5, KIND_CV, "spindle use ratio"),
    ("n1_cnt", 1.0, KIND_SUM, "nodes failing N+1"),
    ("reserved_mem_cv", 1.0, KIND_CV, "reserved memory ratio"),
    ("reserved_mem_sum", 0.25, KIND_SUM, "sum of reserved memory ratios"),
    ("cpu_load_cv", 1.0, KIND_CV, "dynamic CPU load"),
    ("mem_load_cv", 1.0, KIND_CV, "dynamic memory load"),
    ("disk_load_cv", 1.0, KIND_CV, "dynamic disk load"),
    ("net_load_cv", 1.0, KIND_CV, "dynamic network load"),
    ("pri_tags_score", 2.0, KIND_SUM, "primaries sharing exclusion tags"),
    ("location_score", 1.0, KIND_SUM, "instances with both nodes in one location"),
    ("desired_location_score", 1.0, KIND_SUM, "unsatisfied desired locations"),
)
#: components over offline nodes, in the order of offline_vector()
OFFLINE_COMPONENTS = (
    ("offline_all_cnt", 4.0, KIND_OFF, "instances on offline nodes"),
    ("offline_pri_cnt", 16.0, KIND_OFF, "primary instances on offline nodes"),
)
#: exclusion tags shared by primaries in one location (failure domain)
LOC_EXCL_COMPONENT = ("location_exclusion_score", 1.0, "map",
                      "primaries sharing exclusion tags in one location")

COMPONENTS = ONLINE_COMPONENTS + OFFLINE_COMPONENTS + (LOC_EXCL_COMPONENT,)

_K = len(ONLINE_COMPONENTS)
_WEIGHTS = tuple(c[1] for c in ONLINE_COMPONENTS)
_IS_CV = tuple(c[2] == KIND_CV for c in ONLINE_COMPONENTS)
_CV_IDX = tuple(k for k in range(_K) if _IS_CV[k])
_SUM_IDX = tuple(k for k in range(_K) if not _IS_CV[k])
_OFF_WEIGHTS = tuple(c[1] for c in OFFLINE_COMPONENTS)
_LOC_EXCL_WEIGHT = LOC_EXCL_COMPONENT[1]


def _ratio(num: float, den: float) -> float:
    return num / den if den > 0 else 0.0


def node_vector(node: Node) -> tuple[float, ...]:
    """The node's values for ONLINE_COMPONENTS."""
    cpu, mem, dsk, net = node.util
    rem = _ratio(node.r_mem, node.t_mem)
    return (
        _ratio(node.f_mem, node.t_mem),
        _ratio(node.f_dsk, node.t_dsk),
        _ratio(node.u_cpu, node.t_cpu * node.cpu_speed),
        _ratio(node.inst_spindles, node.hi_spindles)
        if node.hi_spindles != float("inf") else 0.0,
        1.0 if node.f_mem < node.r_mem else 0.0,
        rem,
        rem,
        cpu, mem, dsk, net,
        float(node.conflicts),
        float(node.loc_conflicts),
        float(node.dl_unsat),
    )


def offline_vector(node: Node) -> tuple[float, float]:
    """The node's values for OFFLINE_COMPONENTS."""
    npri = len(node.plist)
    return (float(npri + len(node.slist)), float(npri))


def _loc_items(node: Node) -> dict[tuple[str, str], int]:
    if not node.locations or not node.p_tags:
        return {}
    return {(loc, tag): count for loc in node.locations
            for tag, count in node.p_tags.items()}


def _loc_value(counts: Iterable[int]) -> float:
    return float(sum(c - 1 for c in counts if c > 1))


class GroupScore:
    """The score of a set of nodes (a group), kept up to date cheaply.

    Deviations are summed around a per-component centre taken from the
    initial state, so that near-equal nodes give exact zeros rather than
    rounding noise, and equal placements score exactly equal.
    """

    def __init__(self, nodes: Sequence[Node], use_locations: bool = False) -> None:
        self.nodes = list(nodes)
        self.use_locations = use_locations
        online = [node_vector(n) for n in self.nodes if n.available]
        self.count = len(online)
        self.centre = tuple(sum(v[k] for v in online) / self.count
                            if online and _IS_CV[k] else 0.0 for k in range(_K))
        self.recompute()

    def _shifted(self, node: Node) -> tuple[float, ...]:
        return tuple(map(operator.sub, node_vector(node), self.centre))

    def recompute(self) -> None:
        """Rebuild the sums from the nodes' current state."""
        self.vectors: dict[str, tuple[float, ...]] = {}
        self.offline: dict[str, tuple[float, float]] = {}
        self.loc: dict[str, dict[tuple[str, str], int]] = {}
        sums = [0.0] * _K
        sqs = [0.0] * _K
        off = [0.0, 0.0]
        loc_counts: Counter[tuple[str, str]] = Counter()
        for node in self.nodes:
            if node.available:
                vec = self._shifted(node)
                self.vectors[node.name] = vec
                for k in range(_K):
                    sums[k] += vec[k]
                    sqs[k] += vec[k] * vec[k]
                if self.use_locations:
                    items = _loc_items(node)
                    self.loc[node.name] = items
                    loc_counts.update(items)
            else:
                ovec = offline_vector(node)
                self.offline[node.name] = ovec
                off[0] += ovec[0]
                off[1] += ovec[1]
        self.sums, self.sqs, self.off = sums, sqs, off
        self.loc_counts = loc_counts
        self._terms: list[float] | None = None
        self._base = 0.0

    def _combine(self, sums: Sequence[float], sqs: Sequence[float],
                 off: Sequence[float], loc_value: float) -> float:
        total = 0.0
        n = self.count
        if n:
            for k in _CV_IDX:
                mean = sums[k] / n
                var = sqs[k] / n - mean * mean
                if var > 0.0:
                    total += _WEIGHTS[k] * math.sqrt(var)
        for k in _SUM_IDX:
            total += _WEIGHTS[k] * sums[k]
        total += _OFF_WEIGHTS[0] * off[0] + _OFF_WEIGHTS[1] * off[1]
        return total + _LOC_EXCL_WEIGHT * loc_value

    def score(self) -> float:
        """The current score."""
        return self._combine(self.sums, self.sqs, self.off,
                             _loc_value(self.loc_counts.values()))

    def delta(self, node: Node) -> Delta:
        """How the node's current state changes the sums (see score_deltas)."""
        name = node.name
        old = self.vectors.get(name)
        if old is not None:
            new = self._shifted(node)
            dsum = tuple(map(operator.sub, new, old))
            dsq = tuple(v * v - o * o for v, o in zip(new, old))
            dloc = None
            if self.use_locations:
                dloc = dict(_loc_items(node))
                for key, cnt in self.loc.get(name, {}).items():
                    dloc[key] = dloc.get(key, 0) - cnt
            return (name, dsum, dsq, 0.0, 0.0, dloc)
        if name in self.offline:
            oold = self.offline[name]
            onew = offline_vector(node)
            return (name, None, None, onew[0] - oold[0], onew[1] - oold[1], None)
        return (name, None, None, 0.0, 0.0, None)

    def score_deltas(self, deltas: Sequence[Delta]) -> float:
        """The score with the given node deltas (one per node) applied."""
        dsums = [d[1] for d in deltas if d[1] is not None]
        if dsums:
            sums: Sequence[float] = list(map(sum, zip(self.sums, *dsums)))
            sqs: Sequence[float] = list(map(
                sum, zip(self.sqs, *[d[2] for d in deltas if d[2] is not None])))
        else:
            sums, sqs = self.sums, self.sqs
        off = [self.off[0] + sum(d[3] for d in deltas),
               self.off[1] + sum(d[4] for d in deltas)]
        loc_delta: dict[tuple[str, str], int] = {}
        for delta in deltas:
            if delta[5]:
                for key, cnt in delta[5].items():
                    loc_delta[key] = loc_delta.get(key, 0) + cnt
        if loc_delta:
            counts = dict(self.loc_counts)
            for key, cnt in loc_delta.items():
                counts[key] = counts.get(key, 0) + cnt
            loc_value = _loc_value(counts.values())
        else:
            loc_value = _loc_value(self.loc_counts.values())
        return self._combine(sums, sqs, off, loc_value)

    def score_with(self, changed: Iterable[Node]) -> float:
        """The score if the nodes in ``changed`` have their current state.

        The sums are not updated: call ``recompute`` once a change is kept.
        """
        unique = {n.name: n for n in changed}
        return self.score_deltas([self.delta(n) for n in unique.values()])

    # -- sparse deltas: what a search scoring many moves uses -------------------

    def sparse_delta(self, node: Node) -> Sparse:
        """``delta`` keeping only the online components that change.

        Sparse deltas of distinct nodes add up with ``merge_sparse`` and
        score with ``score_sparse`` in time proportional to the components
        they change.
        """
        name = node.name
        old = self.vectors.get(name)
        if old is None:
            if name in self.offline:
                oold = self.offline[name]
                onew = offline_vector(node)
                return ((), (), onew[0] - oold[0], onew[1] - oold[1], None)
            return ((), (), 0.0, 0.0, None)
        keys = []
        values: list[float] = []
        for k, (val, centre, prev) in enumerate(zip(node_vector(node), self.centre, old)):
            val -= centre
            if val != prev:
                keys.append(k)
                values += (val - prev, val * val - prev * prev)
        dloc = None
        if self.use_locations:
            dloc = dict(_loc_items(node))
            for key, cnt in self.loc.get(name, {}).items():
                dloc[key] = dloc.get(key, 0) - cnt
        idx = tuple(keys)
        return (_INDEXES.setdefault(idx, idx), tuple(values), 0.0, 0.0, dloc or None)

    @staticmethod
    def merge_sparse(parts: Iterable[Sparse]) -> Sparse:
        """One sparse delta for the changes of several distinct nodes."""
        sums: dict[int, float] = {}
        sqs: dict[int, float] = {}
        off0 = off1 = 0.0
        loc: dict[tuple[str, str], int] | None = None
        for keys, values, doff0, doff1, dloc in parts:
            pairs = iter(values)
            for k, dsum, dsq in zip(keys, pairs, pairs):
                sums[k] = sums.get(k, 0.0) + dsum
                sqs[k] = sqs.get(k, 0.0) + dsq
            off0 += doff0
            off1 += doff1
            if dloc:
                loc = dict(loc or {})
                for key, cnt in dloc.items():
                    loc[key] = loc.get(key, 0) + cnt
        idx = tuple(sorted(sums))
        return (_INDEXES.setdefault(idx, idx),
                tuple(v for k in idx for v in (sums[k], sqs[k])), off0, off1, loc)

    def _term(self, k: int, total: float, square: float) -> float:
        if not _IS_CV[k]:
            return _WEIGHTS[k] * total
        mean = total / self.count
        var = square / self.count - mean * mean
        return _WEIGHTS[k] * math.sqrt(var) if var > 0.0 else 0.0

    def score_sparse(self, sparse: Sparse) -> float:
        """The score with a sparse delta applied (``score_deltas`` for a
        sparse delta; equal up to rounding)."""
        terms = self._terms
        if terms is None:
            terms = self._terms = [self._term(k, self.sums[k], self.sqs[k])
                                   if self.count else 0.0 for k in range(_K)]
            self._base = self.score()
        total = self._base
        keys, values, doff0, doff1, dloc = sparse
        count = self.count
        if keys and count:
            sums, sqs = self.sums, self.sqs
            sqrt = math.sqrt
            pairs = iter(values)
            for k, dsum, dsq in zip(keys, pairs, pairs):
                if _IS_CV[k]:
                    mean = (sums[k] + dsum) / count
                    var = (sqs[k] + dsq) / count - mean * mean
                    total += (_WEIGHTS[k] * sqrt(var) if var > 0.0 else 0.0) - terms[k]
                else:
                    total += _WEIGHTS[k] * dsum
        if doff0 or doff1:
            total += _OFF_WEIGHTS[0] * doff0 + _OFF_WEIGHTS[1] * doff1
        if dloc:
            counts = dict(self.loc_counts)
            for key, cnt in dloc.items():
                counts[key] = counts.get(key, 0) + cnt
            total += _LOC_EXCL_WEIGHT * (_loc_value(counts.values())
                                         - _loc_value(self.loc_counts.values()))
        return total


def detailed_score(nodes: Sequence[Node],
                   use_locations: bool = False) -> list[tuple[str, float, float]]:
    """Each component as (name, weight, value); the score is sum(w * v)."""
    online = [node_vector(n) for n in nodes if n.available]
    out = []
    for k, (name, weight, kind, _) in enumerate(ONLINE_COMPONENTS):
        vals = [v[k] for v in online]
        if kind == KIND_CV:
            if vals:
                mean = sum(vals) / len(vals)
                value = math.sqrt(sum((x - mean) ** 2 for x in vals) / len(vals))
            else:
                value = 0.0
        else:
            value = float(sum(vals))
        out.append((name, weight, value))
    offline = [offline_vector(n) for n in nodes if not n.available]
    for k, (name, weight, _, _) in enumerate(OFFLINE_COMPONENTS):
        out.append((name, weight, float(sum(v[k] for v in offline))))
    loc_counts: Counter[tuple[str, str]] = Counter()
    if use_locations:
        for node in nodes:
            if node.available:
                loc_counts.update(_loc_items(node))
    out.append((LOC_EXCL_COMPONENT[0], LOC_EXCL_COMPONENT[1],
                _loc_value(loc_counts.values())))
    return out


def compute_score(nodes: Sequence[Node], use_locations: bool = False) -> float:
    """The score of ``nodes``, computed from scratch."""
    return sum(w * v for _, w, v in detailed_score(nodes, use_locations))


def format_detailed(nodes: Sequence[Node], use_locations: bool = False) -> str:
    """The components as ``name=value(xweight)``, for verbose output."""
    return ", ".join(f"{name}={value:.8f}(x{weight:.2f})"
                     for name, weight, value in detailed_score(nodes, use_locations))
