"""Placement solvers: allocate, relocate and multi-allocate.

A placement is chosen as hail chooses it: among the nodes of a group that
can take the instance (memory, disk on the right storage, CPU and spindle
ratios, exclusion tags, N+1), the one (non-mirrored and shared-storage
instances) or the ordered pair (DRBD: primary, secondary) giving the
lowest group score; groups are tried in order of allocation policy
(preferred, then last_resort) and, within a policy, by the score they end
with. Ties go to the first names in alphabetical order, so the same input
always gives the same answer. The DRBD pairs are not all scored: see
``pair_search`` for how the best one is found.

With capacity checks (the default), a placement is also refused if it
leaves a node whose shared-storage instances could no longer all be
restarted on the other nodes of the group should it fail (DRBD instances
are covered by the N+1 memory reservation).
"""

from __future__ import annotations

import dataclasses
import heapq
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ganeti.htools import model, pair_search, policy
from ganeti.htools.model import Cluster, Group, Instance, Node
from ganeti.htools.score import GroupScore


@dataclasses.dataclass
class Options:
    """Algorithm options (hail's command line)."""

    #: refuse placements that break the restart of shared-storage instances
    capacity_checks: bool = True
    #: check the soft limits (vCPU and spindle ratios)
    soft_checks: bool = True
    #: only these nodes may be chosen (None: all)
    restrict_nodes: frozenset[str] | None = None


@dataclasses.dataclass
class Placement:
    """A chosen placement."""

    group: Group
    nodes: tuple[str, ...]
    score: float


@dataclasses.dataclass
class Outcome:
    """What a solver answers: the iallocator response fields."""

    success: bool
    info: str
    result: Any

    def to_dict(self) -> dict[str, Any]:
        """The response message."""
        return {"success": self.success, "info": self.info, "result": self.result}


def format_failures(counts: Mapping[str, int]) -> str:
    """``FailMem: 3, FailDisk: 1`` in a fixed order."""
    order = list(model.FAIL_ORDER) + sorted(set(counts) - set(model.FAIL_ORDER))
    return ", ".join(f"{mode}: {counts[mode]}" for mode in order if counts.get(mode))


def no_solution(counts: Mapping[str, int], notes: Sequence[str] = ()) -> str:
    """hail's message for a request that found no valid placement."""
    text = "No valid allocation solutions"
    if any(counts.values()):
        text += ", failure reasons: " + format_failures(counts)
    if notes:
        text += ("; " if any(counts.values()) else ": ") + "; ".join(notes)
    return text


def candidate_nodes(cluster: Cluster, group: str, opts: Options,
                    exclude: Iterable[str] = ()) -> list[Node]:
    """The nodes of ``group`` new instances may go to, sorted by name."""
    skip = set(exclude)
    restrict = opts.restrict_nodes
    return [n for n in cluster.group_nodes(group)
            if n.available and n.name not in skip
            and (restrict is None or n.name in restrict)]


def group_score(cluster: Cluster, group: str) -> GroupScore:
    """A fresh GroupScore over all nodes of ``group``."""
    return GroupScore(cluster.group_nodes(group),
                      bool(cluster.location_prefixes and cluster.excl_prefixes))


def instance_spec(inst: Instance) -> policy.InstanceSpec:
    """What the instance policy checks of ``inst``."""
    return policy.InstanceSpec(inst.memory, inst.vcpus,
                               tuple(d.size for d in inst.disks), len(inst.nics),
                               inst.spindle_use, inst.disk_template)


def search(gs: GroupScore, inst: Instance, candidates: Sequence[Node], pairs: bool,
           opts: Options, changed: Sequence[Node] = (),
           ) -> tuple[list[tuple[float, tuple[str, ...]]], Counter[str]]:
    """Score every valid placement of ``inst`` (not on any node now).

    Returns the (score, node names) of each valid placement and the count
    of each failure; a primary that fails is counted once, a secondary
    once per primary. ``changed`` are further nodes whose state differs
    from the one ``gs`` was computed on (an instance moved off them).
    Scoring every pair takes N² trials: when only the best pair counts,
    ``pair_search.best_pair`` finds it far faster.
    """
    soft = opts.soft_checks
    fails: Counter[str] = Counter()
    found: list[tuple[float, tuple[str, ...]]] = []
    # the deltas of the further nodes do not change during the search
    base = [gs.delta(n) for n in {n.name: n for n in changed}.values()]
    base_names = {d[0] for d in base}
    for pnode in candidates:
        fail = pnode.check_add_pri(inst, soft)
        if fail:
            fails[fail] += 1
            continue
        psnap = pnode.snapshot()
        pnode.add_pri(inst)
        pbase = [d for d in base if d[0] != pnode.name]
        if not pairs:
            found.append((gs.score_deltas(pbase + [gs.delta(pnode)]), (pnode.name,)))
        else:
            pconf = pbase + [gs.delta(pnode)]
            for snode in candidates:
                if snode is pnode:
                    continue
                fail = snode.check_add_sec(inst, pnode.name, soft)
                if fail:
                    fails[fail] += 1
                    continue
                found.append((pair_search.score_secondary(gs, inst, pnode, snode, pconf,
                                                          base_names),
                              (pnode.name, snode.name)))
        pnode.remove_pri(inst)
        pnode.restore(psnap)
    return found, fails


def shared_restart_failures(cluster: Cluster, nodes: Sequence[Node]) -> frozenset[str]:
    """Nodes whose shared-storage instances the others could not restart.

    For each available node, its running shared-storage primaries are
    placed, largest first, on the other available nodes with the most
    memory to spare beyond their N+1 reservation.
    """
    avail = [n for n in nodes if n.available]
    failing = set()
    for node in avail:
        mems = sorted((inst.memory for name in node.plist
                       if (inst := cluster.instances.get(name)) is not None
                       and inst.mirror == model.MIRROR_EXTERNAL and inst.uses_memory),
                      reverse=True)
        if not mems:
            continue
        spare = [-(n.f_mem - n.r_mem) for n in avail if n is not node]
        heapq.heapify(spare)
        for mem in mems:
            if not spare or -spare[0] < mem:
                failing.add(node.name)
                break
            heapq.heapreplace(spare, spare[0] + mem)
    return frozenset(failing)


def _has_shared(cluster: Cluster, nodes: Iterable[Node]) -> bool:
    return any(cluster.instances[name].mirror == model.MIRROR_EXTERNAL
               for node in nodes for name in node.plist if name in cluster.instances)


def pick(cluster: Cluster, group: str, inst: Instance,
         found: list[tuple[float, tuple[str, ...]]], fails: Counter[str],
         opts: Options, moving: bool = False) -> tuple[float, tuple[str, ...]] | None:
    """The best placement of ``found`` that passes the capacity checks.

    ``moving`` means ``inst`` is already placed (its current placement is
    what the checks compare against); refused placements count as FailN1.
    """
    if not found:
        return None
    nodes = cluster.group_nodes(group)
    if not opts.capacity_checks or not (inst.mirror == model.MIRROR_EXTERNAL
                                        or _has_shared(cluster, nodes)):
        return min(found)
    before = shared_restart_failures(cluster, nodes)
    old = (inst.pnode, inst.snode)
    for score, names in sorted(found):
        affected = {n for n in (*names, *old) if n}
        snaps = {n: cluster.nodes[n].snapshot() for n in affected}
        if moving:
            cluster.move(inst, names[0], names[1] if len(names) > 1 else None)
        else:
            cluster.place(inst, names[0], names[1] if len(names) > 1 else None)
        after = shared_restart_failures(cluster, nodes)
        if moving:
            cluster.move(inst, old[0], old[1])  # type: ignore[arg-type]
        else:
            cluster.unplace(inst)
            del cluster.instances[inst.name]
            inst.pnode, inst.snode = old
        for name, snap in snaps.items():
            cluster.nodes[name].restore(snap)
        if after <= before:
            return score, names
        fails[model.FAIL_N1] += 1
    return None


def best_placement(cluster: Cluster, group: str, gs: GroupScore, inst: Instance,
                   candidates: Sequence[Node], pairs: bool, opts: Options,
                   ) -> tuple[tuple[float, tuple[str, ...]] | None, Counter[str]]:
    """``pick`` of ``search`` for a new instance, and the failure counts.

    Pairs are searched with ``pair_search.best_pair``; only if the best
    pair fails the capacity checks are all pairs scored, to try them in
    order.
    """
    if not pairs:
        found, fails = search(gs, inst, candidates, False, opts)
        return pick(cluster, group, inst, found, fails, opts), fails
    found, fails = pair_search.best_pair(gs, inst, candidates, opts.soft_checks)
    chosen = pick(cluster, group, inst, found, fails, opts)
    if chosen is None and found:
        found, fails = search(gs, inst, candidates, True, opts)
        chosen = pick(cluster, group, inst, found, fails, opts)
    return chosen, fails


def _check_node_count(inst: Instance, required: int) -> str | None:
    want = 2 if inst.mirror == model.MIRROR_INTERNAL else 1
    if required != want:
        return (f"Instance {inst.name} with disk template {inst.disk_template} needs"
                f" {want} node(s), but {required} were requested")
    return None


def _alloc_groups(cluster: Cluster, group_name: str | None) -> tuple[list[Group], list[str]]:
    if group_name is not None:
        group = cluster.find_group(group_name)
        if group is None:
            return [], [f"unknown group '{group_name}'"]
        if group.policy_rank >= 2:
            return [], [f"group '{group.name}' is unallocable"]
        return [group], []
    groups = sorted((g for g in cluster.groups.values() if g.policy_rank < 2),
                    key=lambda g: (g.policy_rank, g.name))
    return groups, ([] if groups else ["no allocable node group"])


def find_allocation(cluster: Cluster, inst: Instance, required: int, opts: Options,
                    group_name: str | None = None,
                    ) -> tuple[Placement | None, str]:
    """The best placement for a new instance, and a message saying why.

    The cluster is not changed (see ``commit``).
    """
    bad = _check_node_count(inst, required)
    if bad:
        return None, bad
    groups, notes = _alloc_groups(cluster, group_name)
    fails: Counter[str] = Counter()
    best: tuple[tuple[int, float, str], Placement] | None = None
    spec = instance_spec(inst)
    for group in groups:
        violations = policy.spec_violations(group.ipolicy, spec)
        if violations:
            notes.append(f"group '{group.name}': instance policy violated: "
                         + ", ".join(violations))
            continue
        cands = candidate_nodes(cluster, group.uuid, opts)
        if len(cands) < required:
            notes.append(f"group '{group.name}' has {len(cands)} usable node(s),"
                         f" {required} needed")
            continue
        gs = group_score(cluster, group.uuid)
        chosen, gfails = best_placement(cluster, group.uuid, gs, inst, cands,
                                        required == 2, opts)
        fails.update(gfails)
        if chosen is None:
            continue
        key = (group.policy_rank, chosen[0], group.name)
        if best is None or key < best[0]:
            best = (key, Placement(group, chosen[1], chosen[0]))
    if best is None:
        if len(groups) > 1 and not notes:
            notes.append(f"{len(groups)} groups tried")
        return None, no_solution(fails, notes)
    place = best[1]
    info = (f"Request successful: selected group {place.group.name}"
            f" ({place.group.alloc_policy}), nodes {', '.join(place.nodes)},"
            f" score {place.score:.8f}")
    return place, info


def commit(cluster: Cluster, inst: Instance, place: Placement) -> None:
    """Record a new instance at its chosen placement."""
    cluster.place(inst, place.nodes[0], place.nodes[1] if len(place.nodes) > 1 else None)


def allocate(cluster: Cluster, inst: Instance, required: int, opts: Options,
             group_name: str | None = None) -> Outcome:
    """Answer an ``allocate`` request: the list of chosen nodes."""
    place, info = find_allocation(cluster, inst, required, opts, group_name)
    if place is None:
        return Outcome(False, info, [])
    commit(cluster, inst, place)
    return Outcome(True, info, list(place.nodes))


def multi_allocate(cluster: Cluster, requests: Sequence[tuple[Instance, int]],
                   opts: Options, group_name: str | None = None) -> Outcome:
    """Answer ``multi-allocate``: ``[[[name, nodes], ...], [failed names]]``.

    Instances are placed in request order, each seeing the previous ones.
    """
    done: list[list[Any]] = []
    failed: list[str] = []
    reasons = []
    for inst, required in requests:
        place, info = find_allocation(cluster, inst, required, opts, group_name)
        if place is None:
            failed.append(inst.name)
            reasons.append(f"{inst.name}: {info}")
            continue
        commit(cluster, inst, place)
        done.append([inst.name, list(place.nodes)])
    info = f"Request successful: {len(done)} allocated, {len(failed)} failed"
    if reasons:
        info += " (" + "; ".join(reasons) + ")"
    return Outcome(True, info, [done, failed])


def relocate(cluster: Cluster, name: str, required: int, relocate_from: Sequence[str],
             opts: Options) -> Outcome:
    """Answer ``relocate``: a new secondary (DRBD) or primary (shared storage)."""
    inst = cluster.instances[name]
    if required != 1:
        return Outcome(False, f"Relocation of {name} needs 1 node, but {required}"
                       " were requested", [])
    group = cluster.instance_group(inst)
    pnode = inst.pnode or ""
    if inst.mirror == model.MIRROR_INTERNAL:
        if not inst.snode:
            return Outcome(False, f"Instance {name} has no secondary node", [])
        if pnode in relocate_from:
            return Outcome(False, f"Relocation of DRBD instance {name} only changes"
                           f" its secondary node, not its primary {pnode}", [])
        pairs_from: tuple[str, ...] = (pnode,)
    elif inst.mirror == model.MIRROR_EXTERNAL:
        pairs_from = ()
    else:
        return Outcome(False, f"Instance {name} has the non-mirrored disk template"
                       f" {inst.disk_template} and cannot be relocated", [])
    exclude = set(inst.nodes) | set(relocate_from)
    cands = candidate_nodes(cluster, group or "", opts, exclude)
    gs = group_score(cluster, group or "")
    old_nodes = [cluster.nodes[n] for n in inst.nodes]
    snaps = [n.snapshot() for n in old_nodes]
    old = (inst.pnode, inst.snode)
    cluster.unplace(inst)
    try:
        if pairs_from:
            found, fails = search_secondary(gs, inst, pnode, cands, opts, old_nodes)
        else:
            found, fails = search(gs, inst, cands, False, opts, old_nodes)
    finally:
        cluster.place(inst, old[0] or "", old[1], existing=False)
        for node, snap in zip(old_nodes, snaps):
            node.restore(snap)
    chosen = pick(cluster, group or "", inst, found, fails, opts, moving=True)
    if chosen is None:
        return Outcome(False, no_solution(fails, [] if cands else
                                          ["no other usable node in the group"]), [])
    target = chosen[1][-1]
    if pairs_from:
        cluster.move(inst, pnode, target)
    else:
        cluster.move(inst, target, None)
    return Outcome(True, f"Request successful: {name} relocated to {target},"
                   f" score {chosen[0]:.8f}", [target])


def search_secondary(gs: GroupScore, inst: Instance, pnode_name: str,
                      cands: Sequence[Node], opts: Options, changed: Sequence[Node],
                      ) -> tuple[list[tuple[float, tuple[str, ...]]], Counter[str]]:
    """Score each new secondary for ``inst`` (unplaced) with a fixed primary."""
    pnode = next(n for n in changed if n.name == pnode_name)
    fails: Counter[str] = Counter()
    found: list[tuple[float, tuple[str, ...]]] = []
    psnap = pnode.snapshot()
    pnode.add_pri(inst)
    for snode in cands:
        fail = snode.check_add_sec(inst, pnode_name, opts.soft_checks)
        if fail:
            fails[fail] += 1
            continue
        ssnap = snode.snapshot()
        snode.add_sec(inst, pnode_name)
        conflict = bool(pnode.locations & snode.locations)
        pnode.loc_conflicts += conflict
        found.append((gs.score_with(list(changed) + [snode]), (pnode_name, snode.name)))
        pnode.loc_conflicts -= conflict
        snode.remove_sec(inst, pnode_name)
        snode.restore(ssnap)
    pnode.remove_pri(inst)
    pnode.restore(psnap)
    return found, fails
