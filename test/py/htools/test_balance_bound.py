"""Tests for ganeti.htools.balance_bound: the branch and bound hbal step
finds the move the exhaustive search finds, with the same score."""

import os
import random

import htoolshelpers as h
import pytest

from ganeti.htools import balance, balance_bound, hbal, loader_iallocator, loader_text
from ganeti.htools.balance import Balancer, Options

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")


def _random_cluster(seed, n_nodes=8, n_instances=50, *, equal=False, locations=False,
                    shared=0.1, offline=0, drained=0, util=False):
    """A random group: DRBD, plain and shared-storage instances, nodes of
    equal (many ties) or mixed sizes, optional location and exclusion tags,
    offline and drained nodes and random loads."""
    rnd = random.Random(seed)
    nodes = {}
    for i in range(n_nodes):
        size = 1 if equal else rnd.choice([1, 2])
        tags = [f"power:{rnd.randrange(3)}"] if locations else []
        nodes[f"node{i:02d}.example.com"] = h.node(
            memory=65536 * size, disk=2097152 * size, cpus=16 * size, tags=tags,
            offline=i < offline, drained=offline <= i < offline + drained)
    names = sorted(nodes)
    instances = {}
    for i in range(n_instances):
        roll = rnd.random()
        template = "sharedfile" if roll < shared else "plain" if roll < shared + 0.1 \
            else "drbd"
        placed = rnd.sample(names, 2 if template == "drbd" else 1)
        tags = [f"service:s{rnd.randrange(4)}"] if locations else []
        instances[f"inst{i:03d}.example.com"] = h.instance(
            placed, memory=rnd.choice([512, 1024, 2048]),
            disks=(rnd.choice([10240, 20480]),), template=template,
            vcpus=rnd.choice([1, 2]), tags=tags,
            admin_state=rnd.choice(["up"] * 8 + ["down", "offline"]))
    msg = h.message(nodes, instances, h.alloc_request("new.example.com"))
    if locations:
        msg["cluster_tags"] = ["htools:iextags:service", "htools:nlocation:power"]
    cluster, _ = loader_iallocator.load(msg)
    loads = {}
    if util:
        for name in sorted(cluster.instances):
            loads[name] = tuple(round(rnd.random() * 4, 2) for _ in range(4))
    hbal.apply_utilisation(cluster, loads)
    return cluster, next(iter(cluster.groups))


def _same_steps(cluster, group, steps=12, **opts):
    """Balance step by step, checking both searches agree exactly."""
    bal = Balancer(cluster, group, Options(**opts))
    search = balance_bound.BoundSearch(bal)
    assert search.usable
    made = 0
    for _ in range(steps):
        fast = search.best_move()
        slow = bal.exhaustive_move()
        if slow is None:
            assert fast is None
            break
        assert fast is not None
        assert (fast[0].name, fast[1][:4], fast[2]) == (slow[0].name, slow[1][:4], slow[2])
        # below the best score: nothing, at it: the move
        assert search.best_move(slow[2] - 1e-6) is None
        assert search.best_move(slow[2])[2] == slow[2]
        bal.apply(slow[0], slow[1])
        made += 1
    return made


@pytest.mark.parametrize("name", sorted(n for n in os.listdir(DATA)
                                         if n.startswith("hbal-") and n.endswith(".data")))
def test_same_moves_on_the_hbal_data_files(name):
    cluster = loader_text.load(os.path.join(DATA, name))
    hbal.apply_utilisation(cluster, {})
    for group in sorted(cluster.groups):
        _same_steps(cluster, group, steps=30)


@pytest.mark.parametrize("seed", range(6))
def test_same_moves_as_the_exhaustive_search(seed):
    cluster, group = _random_cluster(seed, equal=seed % 2 == 0, util=seed % 3 == 0)
    assert _same_steps(cluster, group) > 3


def _consistent(cluster):
    """Each node lists exactly the instances placed on it."""
    for node in cluster.nodes.values():
        assert node.plist == {i.name for i in cluster.instances.values()
                              if i.pnode == node.name}, node.name
        assert node.slist == {i.name for i in cluster.instances.values()
                              if i.snode == node.name}, node.name


@pytest.mark.parametrize("seed", range(3))
def test_same_moves_with_locations_offline_and_drained_nodes(seed):
    cluster, group = _random_cluster(100 + seed, locations=True, offline=1,
                                     drained=seed % 2, util=True)
    assert _same_steps(cluster, group) > 3
    _consistent(cluster)


def test_bounds_outlive_steps():
    """The bounds are computed again only now and then, not at each step."""
    cluster, group = _random_cluster(9, n_nodes=30, n_instances=400, equal=True)
    bal = Balancer(cluster, group)
    moves = bal.run()
    assert len(moves) > 20
    assert bal._search.frames < len(moves) / 2


@pytest.mark.parametrize("opts", [
    {"restricted_migration": True},
    {"instance_moves": False},
    {"disk_moves": False},
    {"soft_checks": False},
    {"evac_mode": True},
])
def test_same_moves_with_options(opts):
    cluster, group = _random_cluster(7, offline=1, util=True)
    _same_steps(cluster, group, **opts)


def test_same_moves_on_a_crowded_cluster():
    """Nodes near full: many moves are refused (memory, N+1, disk)."""
    rnd = random.Random(3)
    nodes = {f"node{i:02d}.example.com": h.node(memory=16384, disk=409600, cpus=8)
             for i in range(6)}
    names = sorted(nodes)
    instances = {f"inst{i:03d}.example.com": h.instance(
        rnd.sample(names[:3], 2), memory=rnd.choice([512, 1024, 2048]),
        disks=(rnd.choice([10240, 20480]),)) for i in range(18)}
    cluster, _ = loader_iallocator.load(
        h.message(nodes, instances, h.alloc_request("new.example.com")))
    hbal.apply_utilisation(cluster, {})
    assert _same_steps(cluster, next(iter(cluster.groups)), steps=20) > 3


def test_whole_runs_agree(monkeypatch):
    """balance() with the bound search and with the exhaustive one."""
    cluster, group = _random_cluster(21, n_nodes=10, n_instances=70, util=True)
    fast = balance.balance(cluster, group)
    monkeypatch.setattr(balance_bound, "PART_LIMIT", 0)
    again, _ = _random_cluster(21, n_nodes=10, n_instances=70, util=True)
    assert balance.balance(again, group) == fast
    assert len(fast) > 5


def test_the_search_scores_few_moves():
    cluster, group = _random_cluster(5, n_nodes=20, n_instances=200, equal=True)
    bal = Balancer(cluster, group)
    search = balance_bound.BoundSearch(bal)
    total = sum(len(bal.candidates(i)) for i in bal.instances)
    assert search.best_move() is not None
    assert search.scored < total / 5
