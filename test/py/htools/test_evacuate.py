"""Tests for ganeti.htools.evacuate: node-evacuate and change-group."""

import htoolshelpers as h
from ganeti.htools import hail, loader_iallocator
from ganeti.htools.allocate import Options


def _run(msg):
    cluster, req = loader_iallocator.load(msg)
    out = hail.solve(cluster, req, Options()).to_dict()
    assert out["success"]
    return out["result"]


def _cluster(**node_changes):
    nodes = {f"node{i}": h.node() for i in range(1, 6)}
    for name, changes in node_changes.items():
        nodes[name].update(changes)
    instances = {
        "d1": h.instance(["node1", "node2"], memory=2048),
        "d2": h.instance(["node2", "node1"], memory=1024),
        "p1": h.instance(["node1"], template="plain"),
        "r1": h.instance(["node1"], template="rbd"),
        "other": h.instance(["node4", "node5"], memory=8192),
    }
    return nodes, instances


def _evac(mode, names=("d1", "d2", "p1", "r1"), **node_changes):
    nodes, instances = _cluster(**node_changes)
    return _run(h.message(nodes, instances, {"type": "node-evacuate",
                                             "instances": list(names),
                                             "evac_mode": mode}))


def test_secondary_only():
    moved, failed, jobs = _evac("secondary-only", ("d2",))
    assert failed == []
    [[name, group, nodes]] = moved
    assert (name, group, nodes[0]) == ("d2", "default", "node2")
    assert nodes[1] not in ("node1", "node2")
    assert jobs == [[{
        "OP_ID": "OP_INSTANCE_REPLACE_DISKS", "instance_name": "d2",
        "early_release": False, "ignore_ipolicy": False,
        "mode": "replace_new_secondary", "disks": [], "remote_node": nodes[1]}]]


def test_primary_only_fails_over():
    moved, failed, jobs = _evac("primary-only", ("d1",))
    assert moved == [["d1", "default", ["node2", "node1"]]]
    assert jobs == [[{
        "OP_ID": "OP_INSTANCE_MIGRATE", "instance_name": "d1",
        "allow_runtime_changes": False, "ignore_ipolicy": False, "cleanup": False,
        "allow_failover": True, "ignore_hvversions": True}]]


def test_all_moves_to_two_new_nodes():
    moved, failed, jobs = _evac("all", ("d1",))
    [[_, _, nodes]] = moved
    assert not set(nodes) & {"node1", "node2"} and len(set(nodes)) == 2
    assert [op["OP_ID"] for op in jobs[0]] == [
        "OP_INSTANCE_REPLACE_DISKS", "OP_INSTANCE_MIGRATE", "OP_INSTANCE_REPLACE_DISKS"]
    assert jobs[0][0]["remote_node"] == nodes[0]
    assert jobs[0][2]["remote_node"] == nodes[1]


def test_all_with_offline_primary_fails_over_first():
    moved, failed, jobs = _evac("all", ("d1",), node1={"offline": True})
    assert [op["OP_ID"] for op in jobs[0]] == [
        "OP_INSTANCE_MIGRATE", "OP_INSTANCE_REPLACE_DISKS", "OP_INSTANCE_MIGRATE",
        "OP_INSTANCE_REPLACE_DISKS"]
    assert "node1" not in moved[0][2]


def test_non_mirrored_and_shared_storage():
    moved, failed, jobs = _evac("primary-only", ("p1", "r1"))
    assert failed == [["p1", "Instance p1 has the non-mirrored disk template plain"
                       " and cannot be moved"]]
    [[name, _, [target]]] = moved
    assert name == "r1" and target != "node1"
    assert jobs[0][0]["OP_ID"] == "OP_INSTANCE_MIGRATE"
    assert jobs[0][0]["target_node"] == target
    _, failed, _ = _evac("secondary-only", ("r1",))
    assert "no secondary node" in failed[0][1]


def test_moves_see_each_other():
    # once "a" has moved, its new primary lacks the memory and its new
    # secondary the N+1 reserve for "b" as a primary
    nodes = {f"node{i}": h.node(memory=24576) for i in range(1, 7)}
    instances = {"a": h.instance(["node1", "node2"], memory=15000),
                 "b": h.instance(["node2", "node1"], memory=15000)}
    moved, failed, _ = _run(h.message(nodes, instances, {
        "type": "node-evacuate", "instances": ["a", "b"], "evac_mode": "all"}))
    assert failed == [] and len(moved) == 2
    assert moved[1][2][0] not in moved[0][2]
    assert not {"node1", "node2"} & set(moved[0][2] + moved[1][2])


def test_forthcoming_instances_fail_over():
    nodes, instances = _cluster()
    instances["d1"]["forthcoming"] = True
    _, _, jobs = _run(h.message(nodes, instances, {
        "type": "node-evacuate", "instances": ["d1"], "evac_mode": "primary-only"}))
    assert jobs[0][0]["OP_ID"] == "OP_INSTANCE_FAILOVER"
    assert jobs[0][0]["shutdown_timeout"] == 120


def _groups_msg(targets, names=("d1",)):
    groups = {"g-1": h.group("one"), "g-2": h.group("two"),
              "g-3": h.group("three", "last_resort")}
    nodes = {"n1": h.node("g-1"), "n2": h.node("g-1"), "m1": h.node("g-2"),
             "m2": h.node("g-2"), "m3": h.node("g-2"), "l1": h.node("g-3"),
             "l2": h.node("g-3")}
    instances = {"d1": h.instance(["n1", "n2"]),
                 "p1": h.instance(["n1"], template="plain")}
    return h.message(nodes, instances, {"type": "change-group",
                                        "instances": list(names),
                                        "target_groups": targets}, groups)


def test_change_group():
    moved, failed, jobs = _run(_groups_msg([]))
    [[name, group, nodes]] = moved
    assert (name, group) == ("d1", "two") and set(nodes) <= {"m1", "m2", "m3"}
    assert [op["OP_ID"] for op in jobs[0]] == [
        "OP_INSTANCE_REPLACE_DISKS", "OP_INSTANCE_MIGRATE", "OP_INSTANCE_REPLACE_DISKS"]
    moved, _, _ = _run(_groups_msg(["g-3"]))
    assert moved[0][1] == "three" and set(moved[0][2]) == {"l1", "l2"}


def test_change_group_failures():
    moved, failed, jobs = _run(_groups_msg([], ("p1",)))
    assert moved == [] and jobs == []
    assert failed == [["p1", "Instance p1 has disk template plain; only DRBD"
                       " instances can change group"]]
    _, failed, _ = _run(_groups_msg(["g-1"]))
    assert failed[0][1].startswith("No allocable target group")


def test_pair_failing_capacity_checks_gives_way():
    # D, the emptiest node, is the only one besides A that could restart r1
    # (12000 MiB) and must stay so: x goes to the best pair without it
    nodes = {n: h.node(memory=16384, reserved_memory=0) for n in "ABCDEF"}
    instances = {name.lower(): h.instance([name], memory=6384, template="plain")
                 for name in "BCEF"}
    instances["r1"] = h.instance(["A"], memory=12000, template="rbd")
    instances["x"] = h.instance(["E", "F"], memory=5000)
    msg = h.message(nodes, instances, {"type": "node-evacuate", "instances": ["x"],
                                       "evac_mode": "all"})
    moved, failed, _ = _run(msg)
    assert moved == [["x", "default", ["B", "C"]]] and failed == []
    cluster, req = loader_iallocator.load(msg)
    out = hail.solve(cluster, req, Options(capacity_checks=False)).to_dict()
    assert out["result"][0] == [["x", "default", ["D", "B"]]]
