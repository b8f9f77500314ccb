"""Tests for ganeti.htools.alloc_series: placing many instances of one shape."""

import copy
import os

import pytest

import htoolshelpers as h
from ganeti.htools import allocate, capacity, loader_iallocator, loader_simu, loader_text
from ganeti.htools.alloc_series import Allocator
from ganeti.htools.capacity import Request, Spec

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")


def _same_as_hail(cluster, spec, template, steps):
    """Place ``steps`` instances with the capacity allocator and with
    allocate.find_allocation: the same nodes, scores and failures."""
    other = copy.deepcopy(cluster)
    request = Request(template)
    where = capacity.gate(cluster)
    allocator = Allocator(cluster, request.options, request.required_nodes, where.groups)
    for i in range(steps):
        ours = capacity.make_instance(f"new-{i}", spec, request)
        theirs = capacity.make_instance(f"new-{i}", spec, request)
        place, fails = allocator.find(ours)
        expected, info = allocate.find_allocation(other, theirs, request.required_nodes,
                                                  allocate.Options())
        if expected is None:
            assert place is None
            assert allocate.format_failures(fails) in info
            return i
        assert place is not None and place.nodes == expected.nodes, i
        assert place.score == pytest.approx(expected.score, abs=1e-9)
        allocator.commit(ours, place)
        allocate.commit(other, theirs, expected)
    return steps


@pytest.mark.parametrize("template", ["drbd", "plain"])
def test_placements_are_hails(template):
    cluster, _ = loader_iallocator.load(h.generate(12, 150, seed=5, groups=2))
    assert _same_as_hail(cluster, Spec(2048, 20480, 1), template, 120) == 120
    cluster = loader_text.load(f"{DATA}/two-groups.data")
    _same_as_hail(cluster, Spec(1024, 10240, 1), template, 60)
    cluster = loader_simu.build(["p,6,200g,16g,4"])
    assert _same_as_hail(cluster, Spec(1024, 10240, 1), template, 400) < 400


def test_placements_with_shared_storage_checks():
    cluster = loader_simu.build(["p,4,200g,16g,4"])
    # shared-storage instances run the restart checks (allocate.pick)
    assert _same_as_hail(cluster, Spec(2048, 10240, 1), "rbd", 200) < 200


def test_placements_with_locations_only():
    # location tags without exclusion tags: pairs in one location score 1 more
    with open(f"{DATA}/two-groups.data", encoding="utf-8") as fd:
        text = fd.read().replace("htools:iextags:service\n", "")
    cluster = loader_text.parse(text)
    assert cluster.location_prefixes and not cluster.excl_prefixes
    assert _same_as_hail(cluster, Spec(1024, 10240, 1), "drbd", 80) > 10


def test_exclude_and_failing_nodes():
    cluster = loader_simu.build(["p,4,100g,8g,4"])
    request = Request("plain")
    allocator = Allocator(cluster, request.options, 1, list(cluster.groups),
                          exclude=["node-01-001"])
    placed = []
    for i in range(40):
        inst = capacity.make_instance(f"new-{i}", Spec(1024, 1024, 1), request)
        place, fails = allocator.find(inst)
        if place is None:
            break
        allocator.commit(inst, place)
        placed.append(place.nodes[0])
    assert len(placed) == 24 and "node-01-001" not in placed
    assert fails == {"FailMem": 3}
    # what the allocator kept of the nodes follows the commits
    assert all(cluster.nodes[n].f_mem == 0 for n in set(placed))
    big = capacity.make_instance("big", Spec(1024, 200 * 1024, 1), request)
    assert allocator.failing_nodes(big, {"FailMem"}) == 3
    assert allocator.failing_nodes(big, {"FailDisk"}) == 0
    small = capacity.make_instance("small", Spec(512, 1024, 1), request)
    assert allocator.failing_nodes(small, {"FailMem", "FailN1"}) == 3
