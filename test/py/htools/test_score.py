"""Tests for ganeti.htools.score."""

import math
import os
import random

import pytest

import htoolshelpers as h
from ganeti.htools import loader_iallocator, loader_text, score
from ganeti.htools.model import Instance
from ganeti.htools.score import GroupScore

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")


def _values(nodes, use_loc=False):
    return {name: val for name, _, val in score.detailed_score(nodes, use_loc)}


def test_balanced_cluster_scores_only_reserved_memory():
    nodes = {f"n{i}": h.node() for i in range(4)}
    instances = {
        "i0": h.instance(["n0", "n1"]), "i1": h.instance(["n1", "n2"]),
        "i2": h.instance(["n2", "n3"]), "i3": h.instance(["n3", "n0"]),
    }
    cluster, _ = loader_iallocator.load(h.message(nodes, instances, h.alloc_request("x")))
    nodelist = list(cluster.nodes.values())
    vals = _values(nodelist)
    rem = 1024 / 32768
    assert vals["reserved_mem_sum"] == pytest.approx(4 * rem)
    for name, val in vals.items():
        if name != "reserved_mem_sum":
            assert val == pytest.approx(0.0), name
    assert score.compute_score(nodelist) == pytest.approx(0.25 * 4 * rem)


def test_components_on_unbalanced_cluster():
    nodes = {"n0": h.node(), "n1": h.node(), "n2": h.node(offline=True)}
    instances = {"big": h.instance(["n0", "n1"], memory=16384),
                 "lost": h.instance(["n2", "n0"], memory=1024),
                 "lost2": h.instance(["n1", "n2"], memory=1024)}
    cluster, _ = loader_iallocator.load(h.message(nodes, instances, h.alloc_request("x")))
    vals = _values(list(cluster.nodes.values()))
    n0, n1 = cluster.nodes["n0"], cluster.nodes["n1"]
    fmem = [n0.f_mem / 32768, n1.f_mem / 32768]
    mean = sum(fmem) / 2
    assert vals["free_mem_cv"] == pytest.approx(
        math.sqrt(sum((x - mean) ** 2 for x in fmem) / 2))
    assert vals["offline_all_cnt"] == 2 and vals["offline_pri_cnt"] == 1
    assert vals["n1_cnt"] == 0


def test_n1_failures_are_counted():
    nodes = {"n0": h.node(memory=8192), "n1": h.node(memory=8192, free_memory=500)}
    instances = {"i": h.instance(["n0", "n1"], memory=4096)}
    cluster, _ = loader_iallocator.load(h.message(nodes, instances, h.alloc_request("x")))
    assert cluster.nodes["n1"].fail_n1
    assert _values(list(cluster.nodes.values()))["n1_cnt"] == 1


def test_exclusion_tag_conflicts():
    cluster = loader_text.load(f"{DATA}/two-groups.data")
    nodes = cluster.group_nodes("uuid-g1")
    base = _values(nodes, True)
    assert base["pri_tags_score"] == 0
    # dns1 and dns2 share power:a / power:b nodes only across locations
    web3 = cluster.prepare_instance(Instance("web3", 512, 1, tags=("service:web",),
                                             disk_template="diskless"))
    cluster.place(web3, "node1.example.com")
    vals = _values(nodes, True)
    assert vals["pri_tags_score"] == 1
    # web1 on node1 and web2 on node3 are both in location power:a already
    assert vals["location_exclusion_score"] == base["location_exclusion_score"] + 1


def test_location_score():
    cluster = loader_text.load(f"{DATA}/two-groups.data")
    # node1/node3 share power:a, node2/node4 power:b
    vals = _values(cluster.group_nodes("uuid-g1"), True)
    assert vals["location_score"] == 3  # mail, dns1 (power:a), dns2 (power:b)


def test_incremental_score_matches_full_computation():
    msg = h.generate(12, 150, seed=7)
    cluster, _ = loader_iallocator.load(msg)
    uuid = next(iter(cluster.groups))
    nodes = cluster.group_nodes(uuid)
    gs = GroupScore(nodes)
    assert gs.score() == pytest.approx(score.compute_score(nodes), abs=1e-12)
    rnd = random.Random(3)
    names = sorted(cluster.instances)
    for _ in range(30):
        inst = cluster.instances[rnd.choice(names)]
        old = [cluster.nodes[n] for n in inst.nodes]
        new = rnd.sample(nodes, len(old))
        cluster.move(inst, new[0].name, new[1].name if len(new) > 1 else None)
        got = gs.score_with(old + new)
        assert got == pytest.approx(score.compute_score(nodes), abs=1e-9)
        gs.recompute()
        assert gs.score() == pytest.approx(got, abs=1e-9)


def test_equal_placements_score_exactly_equal():
    nodes = {f"n{i}": h.node() for i in range(6)}
    cluster, _ = loader_iallocator.load(h.message(nodes, {}, h.alloc_request("x")))
    gs = GroupScore(cluster.group_nodes(h.GROUP_UUID))
    results = set()
    for name in ("n1", "n4"):
        node = cluster.nodes[name]
        snap = node.snapshot()
        inst = Instance("t", 1024, 1)
        node.add_pri(inst)
        results.add(gs.score_with([node]))
        node.remove_pri(inst)
        node.restore(snap)
    assert len(results) == 1
