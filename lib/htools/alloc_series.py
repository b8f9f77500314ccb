"""Placing many instances of one shape, one after the other, as hail would.

hspace places the same instance again and again; each placement must be
the one :func:`ganeti.htools.allocate.find_allocation` would choose: the
node, or for DRBD the (primary, secondary) pair, giving the lowest group
score, groups tried by allocation policy, ties to the first names. The
:class:`Allocator` finds it faster than a fresh search would.

Placing the same instance shape over and over, most nodes do not change
between two placements. What a node gives as primary, or as
secondary (which depends on the primary only through the memory the node
must then reserve for it), is kept per node until the node changes; the
score of a placement is the group's score plus the change of each
component the placement's nodes touch, and only the components both nodes
of a DRBD pair touch (free disk, spindles) are computed per pair. Nodes in
the same state form one class, scored once per primary. This is the same
score hail computes, summed in another order: placements whose scores
differ by rounding only (1e-15) may break their tie otherwise. Placements
that need the shared-storage restart checks with DRBD, or the location
exclusion scoring, use ``allocate.search`` itself.
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from collections.abc import Collection, Iterable, Sequence

from ganeti import constants
from ganeti.htools import allocate, model, policy, score
from ganeti.htools.allocate import Options, Placement
from ganeti.htools.model import Cluster, Group, Instance, Node

_K = len(score.ONLINE_COMPONENTS)
_W = tuple(c[1] for c in score.ONLINE_COMPONENTS)
_CV = tuple(c[2] == score.KIND_CV for c in score.ONLINE_COMPONENTS)
_OFF_W = tuple(c[1] for c in score.OFFLINE_COMPONENTS)
#: weight of a DRBD pair sharing a location (counted on the primary)
_LOC_W = next(c[1] for c in score.ONLINE_COMPONENTS if c[0] == "location_score")
#: Policy fields -> the failure reason an instance exceeding them counts as
_POLICY_FAILURES = ((constants.ISPEC_MEM_SIZE, model.FAIL_MEM),
                    (constants.ISPEC_CPU_COUNT, model.FAIL_CPU),
                    (constants.ISPEC_SPINDLE_USE, model.FAIL_SPINDLES))


def _term(k: int, s: float, q: float, n: int) -> float:
    """Component ``k``'s part of the score for sums ``s`` and squares ``q``."""
    if not _CV[k]:
        return _W[k] * s
    mean = s / n
    var = q / n - mean * mean
    return _W[k] * math.sqrt(var) if var > 0.0 else 0.0


def _policy_failure(violations: Sequence[str]) -> str:
    for key, fail in _POLICY_FAILURES:
        if any(v.startswith(key + " ") for v in violations):
            return fail
    return model.FAIL_DISK


#: (component, old value, new value) of the components a placement changes
_Diffs = tuple[tuple[int, float, float], ...]
#: a node's failure reason, or None and how its score components change
_Outcome = tuple[str | None, _Diffs]


class _Memo:
    """What a node gives for the current instance shape, while unchanged."""

    __slots__ = ("vector", "pri", "sec", "grown")

    def __init__(self, vector: tuple[float, ...]) -> None:
        self.vector = vector
        #: the node as primary
        self.pri: _Outcome | None = None
        #: peer memory -> the node as secondary
        self.sec: dict[int, _Outcome] = {}
        #: peer memory -> how the node as secondary differs from the node
        #: as secondary of a primary it holds no reservation for: (component,
        #: old value, value in the latter, value in the former), and the CV
        #: components among them
        self.grown: dict[int, tuple[tuple[tuple[int, float, float, float], ...],
                                    frozenset[int]]] = {}

    def diffs(self, new: tuple[float, ...]) -> _Diffs:
        """The components ``new`` changes."""
        old = self.vector
        return tuple((k, old[k], new[k]) for k in range(_K) if old[k] != new[k])


class _Base:
    """A group's score sums, around the mean of its online nodes."""

    def __init__(self, online: Sequence[tuple[float, ...]],
                 offline: Sequence[tuple[float, float]]) -> None:
        n = len(online)
        self.n = n
        self.centre = [sum(v[k] for v in online) / n if n and _CV[k] else 0.0
                       for k in range(_K)]
        sums = [0.0] * _K
        sqs = [0.0] * _K
        for vec in online:
            for k in range(_K):
                x = vec[k] - self.centre[k]
                sums[k] += x
                sqs[k] += x * x
        self.sums, self.sqs = sums, sqs
        self.terms = [_term(k, sums[k], sqs[k], n) if n else 0.0 for k in range(_K)]
        off = (sum(o[0] for o in offline), sum(o[1] for o in offline))
        self.total = sum(self.terms) + _OFF_W[0] * off[0] + _OFF_W[1] * off[1]

    def change(self, diffs: Sequence[tuple[int, float, float]],
               ) -> tuple[float, dict[int, tuple[float, float, float]]]:
        """How a node changes the score, its vector changing as ``diffs``
        (component, old value, new value) say: the total change, and per
        changed CV component the change of its sum and of its square sum,
        and its new term."""
        total = 0.0
        cvs = {}
        centre, sums, sqs, terms, n = self.centre, self.sums, self.sqs, self.terms, self.n
        for k, old, new in diffs:
            a = old - centre[k]
            b = new - centre[k]
            ds, dq = b - a, b * b - a * a
            term = _term(k, sums[k] + ds, sqs[k] + dq, n)
            total += term - terms[k]
            if _CV[k]:
                cvs[k] = (ds, dq, term)
        return total, cvs

    def pair_correction(self, pcv: dict[int, tuple[float, float, float]],
                        scv: Sequence[tuple[int, float, float, float]]) -> float:
        """What the CV components both nodes change add beyond each alone
        (``scv`` as ``(k, sum change, square sum change, term)``)."""
        corr = 0.0
        sums, sqs, terms, n = self.sums, self.sqs, self.terms, self.n
        for k, ds2, dq2, t2 in scv:
            one = pcv.get(k)
            if one is None:
                continue
            ds1, dq1, t1 = one
            mean = (sums[k] + ds1 + ds2) / n
            var = (sqs[k] + dq1 + dq2) / n - mean * mean
            both = _W[k] * math.sqrt(var) if var > 0.0 else 0.0
            corr += both - t1 - t2 + terms[k]
        return corr


@dataclasses.dataclass
class _SecClass:
    """Secondaries in the same state (same failure or same score change)."""

    fail: str | None
    change: float
    cvs: tuple[tuple[int, float, float, float], ...]
    locations: frozenset[str]
    members: list[Node]


class Allocator:
    """Places new instances one after the other, as hail would.

    Only ``commit`` may change the cluster while the allocator is used.
    """

    def __init__(self, cluster: Cluster, opts: Options, required: int,
                 groups: Sequence[str], exclude: Iterable[str] = ()) -> None:
        self.cluster = cluster
        self.opts = opts
        #: 2 places DRBD pairs, 1 single nodes
        self.required = required
        self.groups = sorted((cluster.groups[g] for g in groups if g in cluster.groups),
                             key=lambda g: (g.policy_rank, g.name))
        self.exclude = frozenset(exclude)
        self._memos: dict[str, _Memo] = {}
        self._shape: tuple[object, ...] | None = None
        self._policy_fail: dict[str, str | None] = {}
        self._use_loc = bool(cluster.location_prefixes and cluster.excl_prefixes)
        self._shared = {g.uuid: any(cluster.instances[i].mirror == model.MIRROR_EXTERNAL
                                    for n in cluster.group_nodes(g.uuid)
                                    for i in n.plist if i in cluster.instances)
                        for g in self.groups}

    # -- per-node memos ----------------------------------------------------

    def _set_shape(self, inst: Instance) -> None:
        shape = (inst.memory, inst.vcpus, inst.disks, inst.disk_template,
                 inst.spindle_use, len(inst.nics))
        if shape != self._shape:
            self._shape = shape
            self._policy_fail.clear()
            for memo in self._memos.values():
                memo.pri = None
                memo.sec = {}
                memo.grown = {}

    def _memo(self, node: Node) -> _Memo:
        memo = self._memos.get(node.name)
        if memo is None:
            memo = _Memo(score.node_vector(node))
            self._memos[node.name] = memo
        return memo

    def _pri(self, node: Node, inst: Instance) -> _Outcome:
        memo = self._memo(node)
        if memo.pri is None:
            fail = node.check_add_pri(inst, self.opts.soft_checks)
            diffs: _Diffs = ()
            if fail is None:
                snap = node.snapshot()
                node.add_pri(inst)
                diffs = memo.diffs(score.node_vector(node))
                node.remove_pri(inst)
                node.restore(snap)
            memo.pri = (fail, diffs)
        return memo.pri

    def _sec(self, node: Node, inst: Instance | None, pnode: str) -> _Outcome:
        memo = self._memo(node)
        peer = node.peers.get(pnode, 0)
        found = memo.sec.get(peer)
        if found is None:
            assert inst is not None, "an outcome asked before it was computed"
            # the state only depends on the primary through the peer memory
            rep = pnode if peer else ""
            fail = node.check_add_sec(inst, rep, self.opts.soft_checks)
            diffs: _Diffs = ()
            if fail is None:
                snap = node.snapshot()
                node.add_sec(inst, rep)
                diffs = memo.diffs(score.node_vector(node))
                node.remove_sec(inst, rep)
                node.restore(snap)
            found = memo.sec[peer] = (fail, diffs)
        return found

    # -- searching -----------------------------------------------------------

    def _group_policy_failure(self, group: Group, inst: Instance) -> str | None:
        if group.uuid not in self._policy_fail:
            bad = policy.spec_violations(group.ipolicy, allocate.instance_spec(inst))
            self._policy_fail[group.uuid] = _policy_failure(bad) if bad else None
        return self._policy_fail[group.uuid]

    def candidates(self, group: Group) -> list[Node]:
        """The nodes of ``group`` new instances may use, by name."""
        return [n for n in allocate.candidate_nodes(self.cluster, group.uuid, self.opts)
                if n.name not in self.exclude]

    def _base(self, group: Group) -> _Base:
        online, offline = [], []
        for node in self.cluster.group_nodes(group.uuid):
            if node.available:
                online.append(self._memo(node).vector)
            else:
                offline.append(score.offline_vector(node))
        return _Base(online, offline)

    def _search_single(self, base: _Base, inst: Instance, cands: Sequence[Node],
                       fails: Counter[str], want_all: bool,
                       ) -> list[tuple[float, tuple[str, ...]]]:
        found: list[tuple[float, tuple[str, ...]]] = []
        for node in cands:
            fail, diffs = self._pri(node, inst)
            if fail:
                fails[fail] += 1
                continue
            entry = (base.total + base.change(diffs)[0], (node.name,))
            if want_all:
                found.append(entry)
            elif not found or entry < found[0]:
                found = [entry]
        return found

    def _sec_classes(self, base: _Base, inst: Instance, cands: Sequence[Node],
                     ) -> tuple[list[_SecClass], dict[str, int]]:
        classes: list[_SecClass] = []
        index: dict[tuple[object, ...], int] = {}
        class_of: dict[str, int] = {}
        for node in cands:
            fail, diffs = self._sec(node, inst, "")
            items: tuple[tuple[int, float, float, float], ...] = ()
            change = 0.0
            if fail:
                key: tuple[object, ...] = ("fail", fail)
            else:
                change, cvs = base.change(diffs)
                items = tuple((k, *val) for k, val in sorted(cvs.items()))
                key = (change, items, node.locations)
            cid = index.get(key)
            if cid is None:
                cid = index[key] = len(classes)
                classes.append(_SecClass(fail, change, items, node.locations, []))
            classes[cid].members.append(node)
            class_of[node.name] = cid
        return classes, class_of

    def _grown(self, snode: Node, memo: _Memo, peer: int, pnode: str,
               ) -> tuple[tuple[tuple[int, float, float, float], ...], frozenset[int]]:
        """How ``snode`` as secondary of ``pnode``, for which it holds the
        reservation ``peer``, differs from its class (the node as secondary
        of a primary it holds nothing for); see ``_Memo.grown``."""
        grown = memo.grown.get(peer)
        if grown is None:
            old = memo.vector
            default = {k: new for k, _, new in self._sec(snode, None, "")[1]}
            special = {k: new for k, _, new in self._sec(snode, None, pnode)[1]}
            key = tuple((k, old[k], default.get(k, old[k]), special.get(k, old[k]))
                        for k in sorted(default.keys() | special.keys())
                        if default.get(k, old[k]) != special.get(k, old[k]))
            grown = memo.grown[peer] = (key, frozenset(k for k, *_ in key if _CV[k]))
        return grown

    @staticmethod
    def _extra(base: _Base, key: tuple[tuple[int, float, float, float], ...]) -> float:
        """What a special secondary adds to its class's score (see _grown)."""
        return (base.change([(k, o, sn) for k, o, _, sn in key])[0]
                - base.change([(k, o, dn) for k, o, dn, _ in key])[0])

    def _search_pairs(self, base: _Base, inst: Instance, cands: Sequence[Node],
                      fails: Counter[str]) -> tuple[float, tuple[str, ...]] | None:
        classes, class_of = self._sec_classes(base, inst, cands)
        # a secondary whose reservation for the primary would grow beyond
        # its largest one differs from its class: its score is its class's
        # plus the change of the components that differ (when the primary
        # changes none of them), or is computed alone
        specials: dict[str, list[tuple[Node, _Memo, int]]] = {}
        # per primary: the secondaries not scored with their class, and how
        # many of each class that leaves out
        skips: dict[str, set[str]] = {}
        excluded: dict[str, dict[int, int]] = {}
        if inst.uses_memory and inst.auto_balance:
            for node in cands:
                memo = self._memo(node)
                cid = class_of[node.name]
                for pname, peer in node.peers.items():
                    if peer + inst.memory > node.r_mem and pname in class_of \
                            and pname != node.name:
                        specials.setdefault(pname, []).append((node, memo, peer))
                        skips.setdefault(pname, set()).add(node.name)
                        counts = excluded.setdefault(pname, {})
                        counts[cid] = counts.get(cid, 0) + 1
        class_fail = [cls.fail for cls in classes]
        sums, sqs, terms, n = base.sums, base.sqs, base.terms, base.n
        extras: dict[tuple[object, ...], float] = {}
        by_state: dict[tuple[object, ...], dict[int, float]] = {}

        def class_value(cid: int, values: dict[int, float], ptotal: float,
                        pcv: dict[int, tuple[float, float, float]],
                        plocs: frozenset[str]) -> float:
            """The score with the primary and a member of class ``cid``."""
            value = values.get(cid)
            if value is None:
                cls = classes[cid]
                value = ptotal + cls.change
                for k, ds2, dq2, t2 in cls.cvs:
                    one = pcv.get(k)
                    if one is not None:
                        # both nodes change this component
                        ds1, dq1, t1 = one
                        mean = (sums[k] + ds1 + ds2) / n
                        var = (sqs[k] + dq1 + dq2) / n - mean * mean
                        both = _W[k] * math.sqrt(var) if var > 0.0 else 0.0
                        value += both - t1 - t2 + terms[k]
                if cls.locations and plocs & cls.locations:
                    value += _LOC_W
                values[cid] = value
            return value

        best: tuple[float, str, str] | None = None
        for pnode in cands:
            pname = pnode.name
            fail, diffs = self._pri(pnode, inst)
            if fail:
                fails[fail] += 1
                continue
            pchange, pcv = base.change(diffs)
            ptotal = base.total + pchange
            special = specials.get(pname, [])
            skip = skips.get(pname, set())
            skip.add(pname)
            pexcl = excluded.get(pname, {})
            own = class_of[pname]
            pexcl[own] = pexcl.get(own, 0) + 1
            # primaries in the same state score the same with each class
            values = by_state.setdefault((diffs, pnode.locations), {})

            for cid, cls in enumerate(classes):
                count = len(cls.members) - pexcl.get(cid, 0)
                if count <= 0:
                    continue
                if cls.fail:
                    fails[cls.fail] += count
                    continue
                value = class_value(cid, values, ptotal, pcv, pnode.locations)
                if best is not None and value > best[0]:
                    continue
                sname = next(m.name for m in cls.members if m.name not in skip)
                entry = (value, pname, sname)
                if best is None or entry < best:
                    best = entry
            for snode, memo, peer in special:
                out = memo.sec.get(peer)
                if out is None:
                    out = self._sec(snode, inst, pname)
                if out[0]:
                    fails[out[0]] += 1
                    continue
                cid = class_of[snode.name]
                key, cvks = memo.grown.get(peer) or self._grown(snode, memo, peer, pname)
                if class_fail[cid] is None and cvks.isdisjoint(pcv):
                    extra = extras.get(key)
                    if extra is None:
                        extra = extras[key] = self._extra(base, key)
                    value = class_value(cid, values, ptotal, pcv, pnode.locations) + extra
                else:
                    schange, scv = base.change(out[1])
                    value = ptotal + schange + base.pair_correction(
                        pcv, [(k, *val) for k, val in scv.items()])
                    if pnode.locations & snode.locations:
                        value += _LOC_W
                if best is not None and value > best[0]:
                    continue
                entry = (value, pname, snode.name)
                if best is None or entry < best:
                    best = entry
        return None if best is None else (best[0], (best[1], best[2]))

    def _search_group(self, group: Group, inst: Instance, fails: Counter[str],
                      ) -> tuple[float, tuple[str, ...]] | None:
        cands = self.candidates(group)
        required = self.required
        if len(cands) < required:
            return None
        bad = self._group_policy_failure(group, inst)
        if bad:
            fails[bad] += len(cands)
            return None
        pairs = required == 2
        checks = self.opts.capacity_checks and (
            inst.mirror == model.MIRROR_EXTERNAL or self._shared.get(group.uuid, False))
        if self._use_loc or (pairs and checks):
            gs = allocate.group_score(self.cluster, group.uuid)
            found, gfails = allocate.search(gs, inst, cands, pairs, self.opts)
            chosen = allocate.pick(self.cluster, group.uuid, inst, found, gfails,
                                   self.opts)
            fails.update(gfails)
            return chosen
        base = self._base(group)
        if pairs:
            return self._search_pairs(base, inst, cands, fails)
        found = self._search_single(base, inst, cands, fails, checks)
        if checks:
            return allocate.pick(self.cluster, group.uuid, inst, found, fails, self.opts)
        return found[0] if found else None

    def find(self, inst: Instance) -> tuple[Placement | None, Counter[str]]:
        """The placement hail would choose for ``inst``, and the failures
        met; the cluster is not changed."""
        self._set_shape(inst)
        fails: Counter[str] = Counter()
        best: tuple[tuple[int, float, str], Placement] | None = None
        for group in self.groups:
            if best is not None and group.policy_rank > best[0][0]:
                break  # a group of a better allocation policy has room
            chosen = self._search_group(group, inst, fails)
            if chosen is None:
                continue
            key = (group.policy_rank, chosen[0], group.name)
            if best is None or key < best[0]:
                best = (key, Placement(group, chosen[1], chosen[0]))
        return (best[1] if best else None), fails

    def commit(self, inst: Instance, place: Placement) -> None:
        """Record ``inst`` at ``place`` (and forget what its nodes gave)."""
        allocate.commit(self.cluster, inst, place)
        for name in place.nodes:
            self._memos.pop(name, None)
        if inst.mirror == model.MIRROR_EXTERNAL:
            self._shared[place.group.uuid] = True

    def failing_nodes(self, inst: Instance, reasons: Collection[str]) -> int:
        """How many usable nodes refuse ``inst`` for one of ``reasons`` (as
        primary, or as secondary of a DRBD pair)."""
        soft = self.opts.soft_checks
        count = 0
        for group in self.groups:
            for node in self.candidates(group):
                if node.check_add_pri(inst, soft) in reasons or (
                        self.required == 2 and node.check_add_sec(inst, "", soft) in reasons):
                    count += 1
        return count
