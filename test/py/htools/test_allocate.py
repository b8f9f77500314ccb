"""Tests for ganeti.htools.allocate: allocate, multi-allocate, relocate."""

import pytest

import htoolshelpers as h
from ganeti.htools import allocate, hail, loader_iallocator
from ganeti.htools.allocate import Options


def _run(msg, **opts):
    cluster, req = loader_iallocator.load(msg)
    return hail.solve(cluster, req, Options(**opts)).to_dict()


def _plain_cluster():
    nodes = {f"node{i}": h.node() for i in (1, 2, 3)}
    instances = {
        "a1": h.instance(["node1"], memory=4096, template="plain"),
        "a2": h.instance(["node1"], memory=4096, template="plain"),
        "c1": h.instance(["node3"], memory=4096, template="plain"),
    }
    return nodes, instances


def test_plain_goes_to_emptiest_node():
    nodes, instances = _plain_cluster()
    out = _run(h.message(nodes, instances, h.alloc_request("new", template="plain")))
    assert out["success"] and out["result"] == ["node2"]
    assert out["info"].startswith("Request successful")


def test_drbd_pair_in_one_group_and_deterministic():
    nodes = {f"node{i}": h.node() for i in range(1, 7)}
    msg = h.message(nodes, {}, h.alloc_request("new"))
    first = _run(msg)
    assert first["success"] and first["result"] == ["node1", "node2"]
    assert _run(msg) == first


def test_offline_and_drained_nodes_are_skipped():
    nodes, instances = _plain_cluster()
    nodes["node2"]["drained"] = True
    nodes["node4"] = h.node(offline=True)
    out = _run(h.message(nodes, instances, h.alloc_request("new", template="plain")))
    assert out["result"] == ["node3"]


def test_no_memory_message():
    nodes, instances = _plain_cluster()
    out = _run(h.message(nodes, instances,
                         h.alloc_request("huge", memory=32000, template="plain")))
    assert out == {"success": False, "result": [],
                   "info": "No valid allocation solutions, failure reasons: FailMem: 3"}


def test_failure_reasons_are_counted():
    nodes = {"node1": h.node(disk=20000), "node2": h.node(memory=4096),
             "node3": h.node(cpus=1)}
    out = _run(h.message(nodes, {}, h.alloc_request(
        "x", memory=8192, disks=(30000,), vcpus=8, template="plain")))
    assert out["info"] == ("No valid allocation solutions, failure reasons:"
                           " FailMem: 1, FailDisk: 1, FailCPU: 1")


def test_exclusion_tags_keep_instances_apart():
    nodes, instances = _plain_cluster()
    instances["dns1"] = h.instance(["node2"], memory=128, template="plain",
                                   tags=["service:dns"])
    msg = h.message(nodes, instances, h.alloc_request(
        "dns2", template="plain", tags=["service:dns"]),
        cluster_tags=["htools:iextags:service"])
    out = _run(msg)
    assert out["success"] and out["result"] == ["node3"]
    # without the cluster tag the tag means nothing
    msg["cluster_tags"] = []
    assert _run(msg)["result"] == ["node2"]


def test_n1_redundancy_is_kept():
    nodes = {n: h.node(memory=8192) for n in ("A", "B", "C")}
    instances = {"x": h.instance(["A", "B"], memory=4096)}
    out = _run(h.message(nodes, instances, h.alloc_request("new", memory=4096)))
    assert out["success"] and out["result"] == ["C", "B"]
    nodes["C"]["drained"] = True
    out = _run(h.message(nodes, instances, h.alloc_request("new", memory=4096)))
    assert not out["success"] and "FailN1" in out["info"]


def test_policy_violations_are_reported():
    nodes, instances = _plain_cluster()
    out = _run(h.message(nodes, instances,
                         h.alloc_request("big", memory=65536, template="plain")))
    assert not out["success"]
    assert "group 'default': instance policy violated: memory-size value 65536" \
        in out["info"]
    groups = {h.GROUP_UUID: h.group(policy=h.ipolicy(disk_templates=["plain"]))}
    out = _run(h.message(nodes, instances, h.alloc_request("d"), groups))
    assert "Disk template drbd is not allowed" in out["info"]


def test_required_nodes_must_match_template():
    nodes, instances = _plain_cluster()
    out = _run(h.message(nodes, instances, h.alloc_request("x", required_nodes=1)))
    assert not out["success"] and "needs 2 node(s), but 1 were requested" in out["info"]


def _two_groups(preferred_full=False):
    groups = {"g-a": h.group("alpha", "last_resort"), "g-b": h.group("beta"),
              "g-c": h.group("gamma", "unallocable")}
    nodes = {"a1": h.node("g-a", memory=262144), "a2": h.node("g-a", memory=262144),
             "b1": h.node("g-b"), "b2": h.node("g-b"),
             "c1": h.node("g-c", memory=524288), "c2": h.node("g-c", memory=524288)}
    if preferred_full:
        for name in ("b1", "b2"):
            nodes[name]["free_memory"] = 500
    return h.message(nodes, {}, h.alloc_request("new"), groups)


def test_group_preference():
    out = _run(_two_groups())
    assert out["result"] == ["b1", "b2"] and "group beta (preferred)" in out["info"]
    out = _run(_two_groups(preferred_full=True))
    assert out["result"] == ["a1", "a2"]
    msg = _two_groups()
    msg["request"]["group_name"] = "alpha"
    assert _run(msg)["result"] == ["a1", "a2"]
    msg["request"]["group_name"] = "gamma"
    assert "unallocable" in _run(msg)["info"]


def test_restrict_to_nodes():
    nodes = {f"node{i}": h.node() for i in range(1, 6)}
    msg = h.message(nodes, {}, h.alloc_request("new"))
    msg["request"]["restrict-to-nodes"] = ["node4", "node5"]
    assert _run(msg)["result"] == ["node4", "node5"]
    assert _run(msg, restrict_nodes=frozenset(["node2", "node3"]))["result"] == \
        ["node2", "node3"]


def test_storage_units_choose_the_right_storage():
    nodes = {"node1": h.node(), "node2": h.node()}
    nodes["node1"]["storage"] = [{"sunit": ["lvm-vg", "xenvg", []], "free": 1000,
                                  "total": 100000},
                                 {"sunit": ["file", "/srv", []], "free": 900000,
                                  "total": 900000}]
    nodes["node2"]["storage"] = [{"sunit": ["lvm-vg", "xenvg", []], "free": 50000,
                                  "total": 100000}]
    msg = h.message(nodes, {}, h.alloc_request("p", template="plain"))
    assert _run(msg)["result"] == ["node2"]
    msg["request"] = h.alloc_request("f", template="file")
    assert _run(msg)["result"] == ["node1"]


def test_shared_storage_capacity_checks():
    nodes = {"A": h.node(memory=8192, reserved_memory=0),
             "B": h.node(memory=8192, reserved_memory=0)}
    instances = {"r1": h.instance(["A"], memory=6000, template="rbd")}
    msg = h.message(nodes, instances, h.alloc_request("r2", memory=4000,
                                                      template="rbd"))
    out = _run(msg)
    assert not out["success"] and "FailN1: 1" in out["info"]
    assert _run(msg, capacity_checks=False)["result"] == ["B"]


def test_drbd_pair_failing_capacity_checks_gives_way():
    # D is the emptiest node, but with a new primary or secondary there no
    # node could restart r1 (12000 MiB) any more: the best pair that keeps
    # that possible wins
    nodes = {n: h.node(memory=16384, reserved_memory=0) for n in "ABCD"}
    instances = {"r1": h.instance(["A"], memory=12000, template="rbd"),
                 "b": h.instance(["B"], memory=6384, template="plain"),
                 "c": h.instance(["C"], memory=6384, template="plain")}
    msg = h.message(nodes, instances, h.alloc_request("new", memory=5000))
    out = _run(msg)
    assert out["success"] and out["result"] == ["B", "C"]
    assert _run(msg, capacity_checks=False)["result"] == ["D", "B"]


def test_soft_errors():
    nodes = {"node1": h.node(cpus=1)}
    msg = h.message(nodes, {}, h.alloc_request("c", vcpus=8, template="plain"))
    assert "FailCPU: 1" in _run(msg)["info"]
    assert _run(msg, soft_checks=False)["result"] == ["node1"]


def test_multi_allocate_sees_previous_allocations():
    nodes = {"node1": h.node(memory=8192), "node2": h.node(memory=8192)}
    reqs = [h.alloc_request("a", memory=5000, template="plain"),
            h.alloc_request("b", memory=5000, template="plain"),
            h.alloc_request("c", memory=5000, template="plain")]
    msg = h.message(nodes, {}, {"type": "multi-allocate", "instances": reqs})
    out = _run(msg)
    assert out["success"]
    assert out["result"] == [[["a", ["node1"]], ["b", ["node2"]]], ["c"]]
    assert "2 allocated, 1 failed" in out["info"]


def test_relocate_drbd_secondary():
    nodes = {f"node{i}": h.node() for i in range(1, 5)}
    instances = {"i1": h.instance(["node1", "node2"]),
                 "i2": h.instance(["node3", "node4"], memory=8192)}
    msg = h.message(nodes, instances, {"type": "relocate", "name": "i1",
                                       "required_nodes": 1, "disk_space_total": 10368,
                                       "relocate_from": ["node2"]})
    out = _run(msg)
    # node3 holds the big instance: node4 balances memory better
    assert out["success"] and out["result"] == ["node4"]
    msg["request"]["relocate_from"] = ["node1"]
    assert "only changes its secondary" in _run(msg)["info"]


def test_relocate_other_templates():
    nodes = {f"node{i}": h.node() for i in range(1, 4)}
    instances = {"p": h.instance(["node1"], template="plain"),
                 "r": h.instance(["node1"], template="rbd")}
    req = {"type": "relocate", "name": "p", "required_nodes": 1,
           "relocate_from": ["node1"]}
    out = _run(h.message(nodes, instances, req))
    assert not out["success"] and "cannot be relocated" in out["info"]
    req["name"] = "r"
    out = _run(h.message(nodes, instances, req))
    assert out["success"] and out["result"] == ["node2"]


def test_format_failures_order():
    assert allocate.format_failures({"FailTags": 1, "FailMem": 2, "FailN1": 0}) == \
        "FailMem: 2, FailTags: 1"


@pytest.mark.parametrize("seed", range(6))
def test_random_requests_never_crash(seed):
    import json
    import random
    rnd = random.Random(seed)
    msg = h.generate(rnd.randint(2, 9), rnd.randint(0, 40), seed=seed,
                     groups=rnd.randint(1, 2))
    names = sorted(msg["instances"])
    for node in list(msg["nodes"].values())[:2]:
        node["drained"] = rnd.random() < 0.3
    requests = [
        h.alloc_request("n1", memory=rnd.choice([512, 60000]),
                        template=rnd.choice(["drbd", "plain", "rbd", "diskless"])),
        {"type": "multi-allocate", "instances": [h.alloc_request(f"m{i}")
                                                 for i in range(3)]},
    ]
    if names:
        pick = rnd.sample(names, min(5, len(names)))
        inst = msg["instances"][pick[0]]
        requests += [
            {"type": "relocate", "name": pick[0], "required_nodes": 1,
             "relocate_from": inst["nodes"][1:]},
            {"type": "node-evacuate", "instances": pick,
             "evac_mode": rnd.choice(["primary-only", "secondary-only", "all"])},
            {"type": "change-group", "instances": pick, "target_groups": []},
        ]
    for req in requests:
        msg["request"] = req
        out = _run(json.loads(json.dumps(msg)))
        json.dumps(out)
        assert set(out) == {"success", "info", "result"} and out["info"]
