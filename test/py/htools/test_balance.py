"""Tests for ganeti.htools.balance, the hbal move search."""

import os
import random

import htoolshelpers as h
import pytest

from ganeti.htools import (balance, balance_bound, evacuate, hbal, loader_iallocator,
                            loader_text, score)
from ganeti.htools.balance import Balancer, Move, Options

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "data")
D = ".example.com"


def _load(name, util=True):
    """A data file's cluster and its one group, with hbal's default loads."""
    cluster = loader_text.load(os.path.join(DATA, name))
    if util:
        hbal.apply_utilisation(cluster, {})
    [group] = {n.group for n in cluster.nodes.values()}
    return cluster, group


def _score(cluster, group):
    nodes = cluster.group_nodes(group)
    return score.compute_score(nodes, bool(cluster.location_prefixes
                                           and cluster.excl_prefixes))


def _run(cluster, group, **opts):
    """Balance; checks every step against a score computed from scratch and
    that no step makes a node fail N+1."""
    seen = []
    failing = {n.name for n in cluster.n1_failures(cluster.group_nodes(group))}
    previous = [_score(cluster, group)]

    def check(move):
        now = _score(cluster, group)
        assert move.score == pytest.approx(now, abs=1e-6)
        assert now < previous[-1]
        previous.append(now)
        newly = {n.name for n in cluster.n1_failures(cluster.group_nodes(group))} - failing
        assert not newly, f"{move} made {newly} fail N+1"
        seen.append(move)

    moves = balance.balance(cluster, group, Options(**opts), check)
    assert moves == seen
    return moves


def _placement(cluster):
    return {i.name: (i.pnode, i.snode) for i in cluster.instances.values()}


def test_unbalanced_drbd_cluster_gets_balanced():
    cluster, group = _load("hbal-unbalanced.data")
    before = _score(cluster, group)
    moves = _run(cluster, group)
    assert len(moves) >= 4
    assert _score(cluster, group) < before / 10
    # every node now holds primaries and secondaries, none more than 3 of each
    for node in cluster.nodes.values():
        assert 1 <= len(node.plist) <= 3 and 1 <= len(node.slist) <= 3, node.name
    assert not cluster.n1_failures()
    # the model and a reload of its text form agree
    again = loader_text.parse(loader_text.serialize(cluster))
    hbal.apply_utilisation(again, {})
    assert _score(again, group) == pytest.approx(_score(cluster, group), abs=1e-9)


def test_balanced_cluster_stays():
    cluster, group = _load("hbal-balanced.data")
    before = _placement(cluster)
    assert _run(cluster, group) == []
    assert _placement(cluster) == before


def test_solution_is_stable_and_deterministic():
    cluster, group = _load("hbal-unbalanced.data")
    moves = _run(cluster, group)
    again, _ = _load("hbal-unbalanced.data")
    assert _run(again, group) == moves
    # restarting from the end finds nothing more to do
    assert _run(cluster, group) == []


def test_offline_node_is_evacuated():
    cluster, group = _load("hbal-offline.data")
    node4 = cluster.nodes["node4" + D]
    assert node4.offline and node4.plist and node4.slist
    moves = _run(cluster, group)
    assert not node4.plist and not node4.slist
    # nothing was placed on the offline node on the way
    assert all("node4" + D not in m.new_nodes for m in moves
               if "node4" + D not in m.old_nodes)
    # the plain instance never moves
    assert cluster.instances["build" + D].pnode == "node3" + D


def test_offline_option_node_is_evacuated():
    cluster, group = _load("hbal-unbalanced.data")
    cluster.nodes["node2" + D].offline = True
    _run(cluster, group)
    assert not cluster.nodes["node2" + D].slist and not cluster.nodes["node2" + D].plist


def test_evac_mode_moves_only_instances_of_offline_nodes():
    cluster, group = _load("hbal-offline.data")
    on_offline = {i.name for i in cluster.instances.values() if "node4" + D in i.nodes}
    moves = _run(cluster, group, evac_mode=True)
    assert moves and {m.instance for m in moves} <= on_offline
    assert not cluster.nodes["node4" + D].plist


def test_exclusion_tags_are_honoured():
    cluster, group = _load("hbal-excltags.data")

    def primaries_by_tag():
        out = {}
        for inst in cluster.instances.values():
            for tag in inst.tags:
                out.setdefault((inst.pnode, tag), []).append(inst.name)
        return out

    assert len(primaries_by_tag()[("node1" + D, "service:dns")]) == 2
    conflicts_before = sum(n.conflicts for n in cluster.nodes.values())
    moves = _run(cluster, group)
    assert moves
    # no node holds two primaries sharing a service tag any more
    assert all(len(v) == 1 for v in primaries_by_tag().values()), primaries_by_tag()
    assert conflicts_before > 0 and sum(n.conflicts for n in cluster.nodes.values()) == 0


def test_no_move_creates_a_tag_conflict():
    cluster, group = _load("hbal-excltags.data")
    # dns2 starts alone on node3 so that any later conflict would be new
    cluster.move(cluster.instances["dns2" + D], "node3" + D, "node1" + D)
    bal = Balancer(cluster, group)
    dns1 = cluster.instances["dns1" + D]
    for cand in bal.candidates(dns1):
        assert cand[2] != "node3" + D, cand[:4]


def test_max_length_and_min_score():
    cluster, group = _load("hbal-unbalanced.data")
    assert len(_run(cluster, group, max_length=2)) == 2
    assert len(_run(cluster, group, max_length=1)) == 1
    cluster, group = _load("hbal-unbalanced.data")
    initial = _score(cluster, group)
    assert _run(cluster, group, min_score=initial + 1) == []
    # stops at the first score below -e
    moves = _run(cluster, group, min_score=10.0)
    assert moves[-1].score < 10.0 and all(m.score >= 10.0 for m in moves[:-1])


def test_min_gain():
    cluster, group = _load("hbal-unbalanced.data")
    full = _run(cluster, group)
    gains = [a.score - b.score for a, b in zip(full, full[1:])]
    cluster, group = _load("hbal-unbalanced.data")
    # a large minimum gain applies only below the limit
    moves = _run(cluster, group, min_gain=100.0, min_gain_limit=full[-3].score + 1e-9)
    assert [m.score for m in moves] == [m.score for m in full[:-2]]
    assert gains


def test_no_instance_moves_only_replaces_secondaries():
    cluster, group = _load("hbal-unbalanced.data")
    primaries = {i.name: i.pnode for i in cluster.instances.values()}
    moves = _run(cluster, group, instance_moves=False)
    assert moves and {m.kind for m in moves} == {balance.MOVE_REPLACE_SECONDARY}
    assert {i.name: i.pnode for i in cluster.instances.values()} == primaries


def test_no_disk_moves_only_fails_over():
    cluster, group = _load("hbal-unbalanced.data")
    pairs = {i.name: {i.pnode, i.snode} for i in cluster.instances.values()}
    moves = _run(cluster, group, disk_moves=False)
    assert moves and {m.kind for m in moves} == {balance.MOVE_FAILOVER}
    assert {i.name: {i.pnode, i.snode} for i in cluster.instances.values()} == pairs


def test_restricted_migration():
    cluster, group = _load("hbal-unbalanced.data")
    moves = _run(cluster, group, restricted_migration=True)
    kinds = {m.kind for m in moves}
    assert moves and not kinds & {balance.MOVE_REPLACE_PRIMARY,
                                  balance.MOVE_REPLACE_FAILOVER}
    # off an offline primary, replace-and-failover stays possible
    cluster, group = _load("hbal-offline.data")
    bal = Balancer(cluster, group, Options(restricted_migration=True))
    kinds = {c[0] for c in bal.candidates(cluster.instances["web1" + D])}
    assert balance.MOVE_REPLACE_FAILOVER in kinds
    assert balance.MOVE_REPLACE_PRIMARY not in kinds


def test_selected_and_excluded_instances():
    cluster, group = _load("hbal-unbalanced.data")
    picked = frozenset(["inst2" + D, "inst5" + D])
    moves = _run(cluster, group, select_instances=picked)
    assert moves and {m.instance for m in moves} <= picked
    cluster, group = _load("hbal-unbalanced.data")
    moves = _run(cluster, group, exclude_instances=picked)
    assert moves and not {m.instance for m in moves} & picked
    assert cluster.instances["inst2" + D].nodes == ["node1" + D, "node2" + D]


def test_shared_storage_migrates_anywhere_and_local_storage_stays():
    cluster, group = _load("hbal-shared.data")
    local = {n: cluster.instances[n + D].pnode for n in ("local1", "local2")}
    moves = _run(cluster, group)
    assert moves and {m.kind for m in moves} == {balance.MOVE_FAILOVER_TO}
    assert all(m.new_nodes[1] is None and m.target == m.new_nodes[0] for m in moves)
    assert {n: cluster.instances[n + D].pnode for n in local} == local
    assert len(cluster.nodes["node1" + D].plist) < 7


def test_not_auto_balanced_instances_stay():
    cluster, group = _load("hbal-unbalanced.data")
    for inst in cluster.instances.values():
        inst.auto_balance = inst.name != "inst8" + D
    bal = Balancer(cluster, group)
    assert [i.name for i in bal.instances] == [f"inst{i}{D}" for i in range(1, 8)]


def test_move_steps_and_jobs():
    move = Move("i1", balance.MOVE_REPLACE_PRIMARY, "n3", ("n1", "n2"), ("n3", "n2"), 1.0)
    assert move.steps() == [("f", None), ("r", "n3"), ("f", None)]
    assert move.action() == "f r:n3 f"
    assert move.action(lambda n: n.upper()) == "f r:N3 f"
    assert move.nodes() == {"n1", "n2", "n3"}
    assert Move("i1", "rf", "n3", ("n1", "n2"), ("n3", "n1"), 0).action() == "r:n3 f"
    assert Move("i1", "fr", "n3", ("n1", "n2"), ("n2", "n3"), 0).action() == "f r:n3"
    assert Move("i1", "fa", "n3", ("n1", None), ("n3", None), 0).action() == "fa:n3"
    cluster, _ = _load("hbal-unbalanced.data")
    job = evacuate.steps_to_job(cluster.instances["inst1" + D], move.steps())
    assert [op["OP_ID"] for op in job] == ["OP_INSTANCE_MIGRATE",
                                           "OP_INSTANCE_REPLACE_DISKS",
                                           "OP_INSTANCE_MIGRATE"]
    assert job[1]["remote_node"] == "n3" and job[1]["mode"] == "replace_new_secondary"


def test_split_jobsets():
    def mv(name, old, new):
        return Move(name, "r", new[1], old, new, 0.0)

    a = mv("a", ("n1", "n2"), ("n1", "n3"))
    b = mv("b", ("n4", "n5"), ("n4", "n6"))
    c = mv("c", ("n6", "n7"), ("n6", "n8"))  # touches n6, like b
    d = mv("d", ("n9", "n10"), ("n9", "n11"))
    assert balance.split_jobsets([a, b, c, d]) == [[a, b], [c, d]]
    assert balance.split_jobsets([]) == []


def _generated(nodes, instances, seed, locations=False, offline=0):
    msg = h.generate(nodes, instances, seed=seed)
    if locations:
        for i, (_, node) in enumerate(sorted(msg["nodes"].items())):
            node["tags"] = [f"power:{i % 3}"]
        for i, (_, inst) in enumerate(sorted(msg["instances"].items())):
            inst["tags"] = [f"service:s{i % 5}"]
        msg["cluster_tags"] = ["htools:iextags:service", "htools:nlocation:power"]
    cluster, _ = loader_iallocator.load(msg)
    hbal.apply_utilisation(cluster, {})
    for name in sorted(cluster.nodes)[:offline]:
        cluster.nodes[name].offline = True
    return cluster, next(iter(cluster.groups))


@pytest.mark.parametrize("locations,offline", [(False, 0), (True, 1)])
def test_predicted_scores_match_real_moves(locations, offline):
    """Each candidate's score, added up from node deltas, is the score the
    cluster has once the move is really made."""
    cluster, group = _generated(10, 80, seed=5, locations=locations, offline=offline)
    bal = Balancer(cluster, group)
    nodes = cluster.group_nodes(group)
    rnd = random.Random(2)
    checked = 0
    for inst in rnd.sample(bal.instances, 20):
        for kind, _, new_p, new_s, delta in bal.candidates(inst):
            predicted = bal.gs.score_sparse(delta)
            old = (inst.pnode, inst.snode)
            snaps = [n.snapshot() for n in nodes]
            cluster.move(inst, new_p, new_s)
            assert predicted == pytest.approx(_score(cluster, group), abs=1e-9), kind
            cluster.move(inst, old[0], old[1])
            for node, snap in zip(nodes, snaps):
                node.restore(snap)
            checked += 1
    assert checked > 100


def test_trial_deltas_agree_with_the_model():
    """primary_delta/secondary_delta set what Node.add_pri/add_sec set."""
    cluster, group = _generated(6, 40, seed=7)
    gs = score.GroupScore(cluster.group_nodes(group))
    rnd = random.Random(3)
    insts = sorted(cluster.instances.values(), key=lambda i: i.name)
    for inst in insts:
        inst.util = (rnd.random(), rnd.random(), rnd.random(), rnd.random())
    hbal.apply_utilisation(cluster, {i.name: i.util for i in insts})
    for node in cluster.group_nodes(group):
        for inst in rnd.sample(insts, 8):
            if inst.name in node.plist or inst.name in node.slist:
                continue
            snap = node.snapshot()
            expected = balance.primary_delta(gs, node, inst)
            node.add_pri(inst)
            assert gs.sparse_delta(node) == expected
            node.remove_pri(inst)
            node.restore(snap)
            pnode = next(n for n in sorted(cluster.nodes) if n != node.name)
            expected = balance.secondary_delta(gs, node, inst, pnode)
            node.add_sec(inst, pnode)
            assert gs.sparse_delta(node) == expected
            node.remove_sec(inst, pnode)
            node.restore(snap)


def test_larger_cluster_improves():
    cluster, group = _generated(12, 150, seed=11)
    before = _score(cluster, group)
    moves = _run(cluster, group, max_length=6)
    assert len(moves) == 6 and _score(cluster, group) < before


def test_same_solution_without_the_cache(monkeypatch):
    """The branch and bound search, the exhaustive search with its cache
    and without it agree."""
    cluster, group = _generated(8, 60, seed=13)
    bound = _run(cluster, group, max_length=5)
    monkeypatch.setattr(balance_bound, "PART_LIMIT", 0)
    cluster, group = _generated(8, 60, seed=13)
    assert _run(cluster, group, max_length=5) == bound
    monkeypatch.setattr(balance, "CACHE_LIMIT", 0)
    cluster, group = _generated(8, 60, seed=13)
    assert _run(cluster, group, max_length=5) == bound
