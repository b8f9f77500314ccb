"""Tests for ganeti.htools.pair_search: the fast DRBD pair search.

``best_pair`` must choose the pair ``allocate.search`` would (the least
score, ties to the first names), with the same score and failure counts:
it is compared with that brute force on many random small clusters made
to hit its special cases (reservations that grow, N+1 failures, shared
locations, exclusion tags, nodes in the same state, instances moved off
their nodes).
"""

import random

import htoolshelpers as h
import pytest

from ganeti.htools import allocate, loader_iallocator, pair_search
from ganeti.htools.allocate import Options


def _random_message(rnd):
    n_nodes = rnd.randint(2, 9)
    uniform = rnd.random() < 0.3
    racks = ["rack:a", "rack:b"]
    nodes = {}
    for i in range(n_nodes):
        exclusive = not uniform and rnd.random() < 0.1
        nodes[f"node{i}"] = h.node(
            memory=16384 if uniform else rnd.choice([8192, 16384, 32768]),
            disk=500000 if uniform else rnd.choice([300000, 500000, 2000000]),
            cpus=8 if uniform else rnd.choice([1, 4, 8]),
            spindles=4 if uniform else rnd.choice([1, 4]),
            tags=[rnd.choice(racks)] if rnd.random() < 0.5 else [],
            drained=rnd.random() < 0.08, offline=rnd.random() < 0.05,
            exclusive=exclusive)
    names = sorted(nodes)
    instances = {}
    # dense: many DRBD instances, so that most nodes reserve memory for most
    dense = not uniform and rnd.random() < 0.3
    count = 0 if uniform and rnd.random() < 0.5 else rnd.randint(0, 25)
    for i in range(count * 2 if dense else count):
        template = "drbd" if dense else rnd.choice(["drbd", "drbd", "drbd", "plain", "rbd"])
        placed = rnd.sample(names, 2 if template == "drbd" and n_nodes > 1 else 1)
        if template == "drbd" and len(placed) < 2:
            template = "plain"
        instances[f"inst{i:02d}"] = h.instance(
            placed, memory=rnd.choice([512, 1024, 2048, 4096]),
            disks=(rnd.choice([1024, 10240, 40960]),), template=template,
            vcpus=rnd.choice([1, 2]), tags=rnd.choice([[], ["svc:dns"], ["svc:web"]]),
            admin_state=rnd.choice(["up", "up", "up", "down", "offline"]))
    tags = [t for t in ("htools:nlocation:rack", "htools:iextags:svc")
            if rnd.random() < 0.5]
    request = h.alloc_request(
        "new", memory=rnd.choice([512, 1024, 4096, 12000]),
        disks=(rnd.choice([1024, 10240, 100000]),), vcpus=rnd.choice([1, 2, 8]),
        tags=rnd.choice([[], ["svc:dns"]]), spindle_use=rnd.choice([1, 1, 4]))
    msg = h.message(nodes, instances, request, cluster_tags=tags)
    for name in names:
        # some nodes with less free memory than their instances leave
        if rnd.random() < 0.15:
            msg["nodes"][name]["free_memory"] = rnd.randint(0, 6000)
        for key in ("free_memory", "free_disk"):
            if key in msg["nodes"][name]:
                msg["nodes"][name][key] = max(0, msg["nodes"][name][key])
    return msg


def _compare(gs, inst, cands, soft, changed=()):
    """best_pair against the brute force of allocate.search."""
    found, fails = allocate.search(gs, inst, cands, True, Options(soft_checks=soft),
                                   changed)
    fast, fast_fails = pair_search.best_pair(gs, inst, cands, soft, changed)
    assert fast == ([min(found)] if found else [])
    assert fast_fails == fails
    return bool(found)


@pytest.mark.parametrize("chunk", range(4))
def test_best_pair_matches_brute_force_on_new_instances(chunk):
    solved = 0
    for seed in range(chunk * 100, (chunk + 1) * 100):
        rnd = random.Random(seed)
        cluster, req = loader_iallocator.load(_random_message(rnd))
        inst = req.instance
        if rnd.random() < 0.15:
            inst.auto_balance = False
        elif rnd.random() < 0.1:
            inst.admin_state = "offline"
        group = next(iter(cluster.groups))
        cands = allocate.candidate_nodes(cluster, group, Options())
        gs = allocate.group_score(cluster, group)
        for soft in (True, False):
            solved += _compare(gs, inst, cands, soft)
    assert solved > 50  # not only failures


@pytest.mark.parametrize("chunk", range(2))
def test_best_pair_matches_brute_force_on_moved_instances(chunk):
    tried = 0
    for seed in range(chunk * 100, (chunk + 1) * 100):
        rnd = random.Random(seed + 1000)
        cluster, _ = loader_iallocator.load(_random_message(rnd))
        drbd = sorted(i.name for i in cluster.instances.values() if i.snode)
        if not drbd:
            continue
        # as evacuate searches: the instance off its nodes, which change
        inst = cluster.instances[rnd.choice(drbd)]
        group = cluster.instance_group(inst) or ""
        gs = allocate.group_score(cluster, group)
        old_nodes = [cluster.nodes[n] for n in inst.nodes]
        cands = allocate.candidate_nodes(cluster, group, Options(), inst.nodes)
        cluster.unplace(inst)
        _compare(gs, inst, cands, True, old_nodes)
        tried += 1
    assert tried > 50


def test_identical_nodes_give_the_first_names(monkeypatch):
    nodes = {f"node{i:03d}": h.node() for i in range(120)}
    instances = {"x": h.instance(["node100", "node101"])}
    cluster, req = loader_iallocator.load(h.message(nodes, instances,
                                                    h.alloc_request("new")))
    group = next(iter(cluster.groups))
    cands = allocate.candidate_nodes(cluster, group, Options())
    gs = allocate.group_score(cluster, group)
    exact = []
    scorer = pair_search.score_secondary
    monkeypatch.setattr(pair_search, "score_secondary",
                        lambda *args: exact.append(args) or scorer(*args))
    found, fails = pair_search.best_pair(gs, req.instance, cands, True)
    # node101 already reserves memory for another primary than node000
    assert found[0][1] == ("node000", "node101") and not fails
    # the 14,280 pairs are in a few states: one pair of each is scored
    assert len(exact) <= 4
    assert found == [min(allocate.search(gs, req.instance, cands, True, Options())[0])]


def test_grown_reservation_and_n1_failures_per_pair():
    # C reserves 4096 MiB for A: with A as primary of another 4096 MiB
    # instance, C would need 8192 MiB free, which it lacks (FailN1 for
    # that pair only; as secondary of B it only needs 4096); C cannot be
    # primary either (FailN1 once)
    nodes = {"A": h.node(memory=16384), "B": h.node(memory=16384),
             "C": h.node(memory=16384, free_memory=6000)}
    instances = {"x": h.instance(["A", "C"], memory=4096)}
    msg = h.message(nodes, instances, h.alloc_request("new", memory=4096))
    cluster, req = loader_iallocator.load(msg)
    group = next(iter(cluster.groups))
    cands = allocate.candidate_nodes(cluster, group, Options())
    gs = allocate.group_score(cluster, group)
    found, fails = pair_search.best_pair(gs, req.instance, cands, True)
    assert fails == {"FailN1": 2}
    assert found[0][1] == allocate.pick(
        cluster, group, req.instance,
        *allocate.search(gs, req.instance, cands, True, Options()), Options())[1]


def test_changed_nodes_must_not_be_candidates():
    nodes = {f"node{i}": h.node() for i in range(3)}
    cluster, req = loader_iallocator.load(h.message(nodes, {}, h.alloc_request("new")))
    group = next(iter(cluster.groups))
    cands = allocate.candidate_nodes(cluster, group, Options())
    gs = allocate.group_score(cluster, group)
    with pytest.raises(ValueError):
        pair_search.best_pair(gs, req.instance, cands, True, cands[:1])


def test_no_usable_node():
    nodes = {"A": h.node(drained=True), "B": h.node(offline=True)}
    cluster, req = loader_iallocator.load(h.message(nodes, {}, h.alloc_request("new")))
    group = next(iter(cluster.groups))
    gs = allocate.group_score(cluster, group)
    assert pair_search.best_pair(gs, req.instance, [], True) == ([], {})
