"""Tests for ganeti.htools.loader_iallocator."""

import copy
import json

import pytest

import htoolshelpers as h
from ganeti.htools import loader_iallocator
from ganeti.htools.loader_iallocator import InputError


def _small():
    nodes = {"node1": h.node(), "node2": h.node(), "node3": h.node(memory=16384)}
    instances = {
        "inst1": h.instance(["node1", "node2"], memory=2048),
        "inst2": h.instance(["node2", "node1"], memory=4096),
        "inst3": h.instance(["node1"], memory=1024, template="plain",
                            admin_state="down"),
        "inst4": h.instance(["node3"], memory=512, template="plain",
                            admin_state="offline"),
    }
    return h.message(nodes, instances, h.alloc_request("new1"))


def test_load_model():
    cluster, req = loader_iallocator.load(json.dumps(_small()))
    assert sorted(cluster.nodes) == ["node1", "node2", "node3"]
    assert cluster.name == "cluster1.example.com"
    node1 = cluster.nodes["node1"]
    assert node1.plist == {"inst1", "inst3"} and node1.slist == {"inst2"}
    # running primaries are in the reported free memory, the down one is
    # reserved on top of it, the offline one is not
    assert node1.f_mem == 32768 - 1024 - 2048 - 1024
    assert node1.i_mem == 2048 + 1024
    assert node1.x_mem == 0
    assert cluster.nodes["node3"].f_mem == 16384 - 1024
    # N+1: node1 must keep inst2's memory free for a failover of node2
    assert node1.r_mem == 4096 and cluster.nodes["node2"].r_mem == 2048
    assert node1.u_cpu == 1 + 2  # reserved_cpus + two primaries
    assert req.type == "allocate" and req.instance.name == "new1"
    assert req.required_nodes == 2
    assert req.instance.disk_space == 10240 + 128


def test_offline_nodes_without_runtime_data():
    msg = _small()
    msg["nodes"]["node4"] = h.node(offline=True)
    msg["nodes"]["node5"] = h.node(drained=True)
    msg = h.message(msg["nodes"], msg["instances"], msg["request"])
    assert "free_memory" not in msg["nodes"]["node4"]
    cluster, _ = loader_iallocator.load(msg)
    assert not cluster.nodes["node4"].available
    assert cluster.nodes["node4"].offline
    assert not cluster.nodes["node5"].available


def test_storage_units_and_exclusive_storage():
    msg = _small()
    msg["nodes"]["node1"]["storage"] = [
        {"sunit": ["lvm-vg", "xenvg", [False]], "free": 2000, "total": 4000},
        {"sunit": ["file", "/srv/ganeti/file-storage", []], "free": 5000,
         "total": 10000}]
    msg["nodes"]["node2"]["ndparams"]["exclusive_storage"] = True
    msg["nodes"]["node2"]["total_spindles"] = 12
    msg["nodes"]["node2"]["free_spindles"] = 7
    cluster, _ = loader_iallocator.load(msg)
    units = cluster.nodes["node1"].storage
    assert [(u.kind, u.key, u.free) for u in units] == [
        ("lvm-vg", "xenvg", 2000), ("file", "/srv/ganeti/file-storage", 5000)]
    node2 = cluster.nodes["node2"]
    assert node2.exclusive_storage and node2.t_spindles == 12
    assert node2.f_spindles == 7 and node2.hi_spindles == 12


def test_storage_units_of_our_master():
    msg = _small()
    msg["nodes"]["node3"]["storage_units"] = [
        {"type": "lvm-vg", "name": "xenvg", "storage_free": 4000, "storage_size": 8000},
        {"type": "lvm-pv", "name": "xenvg", "storage_free": 3, "storage_size": 4},
        {"type": "file", "name": "/srv/ganeti/file-storage", "storage_free": 100,
         "storage_size": 200}]
    cluster, _ = loader_iallocator.load(msg)
    assert [(u.kind, u.key, u.free, u.total) for u in cluster.nodes["node3"].storage] \
        == [("lvm-vg", "xenvg", 4000, 8000), ("file", "/srv/ganeti/file-storage", 100, 200)]
    msg["nodes"]["node3"]["storage_units"][0]["storage_free"] = None
    with pytest.raises(InputError, match=r"storage_units\[0\]: 'storage_free' must be"):
        loader_iallocator.load(msg)


def test_group_policy_inherits_cluster_policy():
    msg = _small()
    msg["ipolicy"]["vcpu-ratio"] = 2.0
    del msg["nodegroups"][h.GROUP_UUID]["ipolicy"]["vcpu-ratio"]
    cluster, _ = loader_iallocator.load(msg)
    assert cluster.groups[h.GROUP_UUID].ipolicy.vcpu_ratio == 2.0
    assert cluster.nodes["node1"].hi_cpu == 16


def test_exclusion_tags_from_cluster_tags():
    msg = _small()
    msg["cluster_tags"] = ["htools:iextags:service", "other"]
    msg["instances"]["inst1"]["tags"] = ["service:dns", "owner:me"]
    cluster, _ = loader_iallocator.load(msg)
    assert cluster.instances["inst1"].excl_tags == {"service:dns"}
    assert cluster.nodes["node1"].p_tags == {"service:dns": 1}


def test_should_run_and_missing_optional_fields():
    msg = _small()
    inst = msg["instances"]["inst3"]
    del inst["admin_state"], inst["spindle_use"], inst["disk_space_total"]
    inst["should_run"] = False
    cluster, _ = loader_iallocator.load(msg)
    got = cluster.instances["inst3"]
    assert got.admin_state == "down" and got.spindle_use == 1
    assert got.disk_space == 10240


@pytest.mark.parametrize("request_body", [
    {"type": "relocate", "name": "inst1", "required_nodes": 1,
     "disk_space_total": 10368, "relocate_from": ["node2"]},
    {"type": "node-evacuate", "instances": ["inst1", "inst2"],
     "evac_mode": "secondary-only"},
    {"type": "change-group", "instances": ["inst1"], "target_groups": []},
    {"type": "multi-allocate", "instances": [h.alloc_request("a"),
                                             h.alloc_request("b")]},
])
def test_request_types(request_body):
    msg = _small()
    msg["request"] = request_body
    cluster, req = loader_iallocator.load(msg)
    assert req.type == request_body["type"]
    if req.type == "multi-allocate":
        assert [i.name for i, _ in req.allocations] == ["a", "b"]


def _broken(path, value):
    msg = _small()
    obj = msg
    for key in path[:-1]:
        obj = obj[key]
    if value is KeyError:
        del obj[path[-1]]
    else:
        obj[path[-1]] = value
    return msg


@pytest.mark.parametrize("path, value, expected", [
    (("nodes", "node1", "free_memory"), "lots",
     "node 'node1': 'free_memory' must be a non-negative number, got 'lots'"),
    (("nodes", "node1", "free_memory"), KeyError,
     "node 'node1': missing field 'free_memory'"),
    (("nodes", "node1", "group"), "nope", "node 'node1': 'group' names an unknown group"),
    (("nodes", "node1", "offline"), "no", "'offline' must be a boolean"),
    (("instances", "inst1", "memory"), -5,
     "instance 'inst1': 'memory' must be a non-negative integer, got -5"),
    (("instances", "inst1", "memory"), True, "'memory' must be a non-negative integer"),
    (("instances", "inst1", "memory"), 1024.5, "'memory' must be a non-negative integer"),
    (("nodes", "node1", "free_memory"), float("nan"), "'free_memory' must be a non-neg"),
    (("nodes", "node1", "free_memory"), -1.5, "'free_memory' must be a non-negative"),
    (("instances", "inst1", "disk_template"), "", "'disk_template' must be a non-empty"),
    (("instances", "inst1", "tags"), ["a", 1], "'tags' must be a list of strings"),
    (("instances", "inst1", "nics"), {}, "'nics' must be a list"),
    (("instances", "inst1", "nodes"), ["node9"], "unknown node 'node9'"),
    (("instances", "inst1", "nodes"), ["node1", "node1"], "primary and secondary"),
    (("instances", "inst1", "disk_template"), "floppy", "'disk_template' must be one of"),
    (("instances", "inst1", "disks"), [{"mode": "rw"}], "disks[0]: missing field 'size'"),
    (("instances", "inst1", "admin_state"), "sleeping", "'admin_state' must be one of"),
    (("nodegroups", h.GROUP_UUID, "alloc_policy"), "sometimes",
     "'alloc_policy' must be one of"),
    (("nodegroups", h.GROUP_UUID, "ipolicy", "vcpu-ratio"), "x",
     "'vcpu-ratio' must be a positive number"),
    (("request", "type"), "rebalance", "invalid request type 'rebalance'"),
    (("request", "memory"), KeyError, "request instance 'new1': missing field 'memory'"),
    (("request", "required_nodes"), "two", "'required_nodes' must be a non-negative"),
    (("nodes",), KeyError, "missing field 'nodes'"),
    (("version",), 1, "'version' must be 2"),
])
def test_malformed_input_names_the_field(path, value, expected):
    with pytest.raises(InputError) as err:
        loader_iallocator.load(_broken(path, value))
    assert expected in str(err.value)


def test_integral_floats_are_integers():
    cluster, _ = loader_iallocator.load(_broken(("instances", "inst1", "memory"), 1024.0))
    memory = cluster.instances["inst1"].memory
    assert memory == 1024 and type(memory) is int


@pytest.mark.parametrize("request_body, expected", [
    ({"type": "relocate", "name": "ghost", "required_nodes": 1,
      "relocate_from": []}, "unknown instance 'ghost'"),
    ({"type": "relocate", "name": "inst1", "required_nodes": 1,
      "relocate_from": ["nodeX"]}, "unknown node 'nodeX'"),
    ({"type": "node-evacuate", "instances": ["inst1"], "evac_mode": "some"},
     "'evac_mode' must be one of"),
    ({"type": "change-group", "instances": ["inst1"], "target_groups": ["g9"]},
     "unknown group 'g9'"),
    ({"type": "multi-allocate", "instances": [h.alloc_request("a"),
                                             h.alloc_request("a")]},
     "requested twice"),
    (h.alloc_request("inst1"), "instance 'inst1' already exists"),
])
def test_malformed_requests(request_body, expected):
    msg = _small()
    msg["request"] = request_body
    with pytest.raises(InputError) as err:
        loader_iallocator.load(msg)
    assert expected in str(err.value)


def test_not_json():
    with pytest.raises(InputError, match="Parsing input IAllocator message"):
        loader_iallocator.load("{not json")
    with pytest.raises(InputError, match="not a JSON object"):
        loader_iallocator.load("[1, 2]")


def test_protocol_document_example():
    """The example of doc/iallocator.rst, with its node names made consistent."""
    msg = {
        "version": 2, "cluster_name": "cluster1.example.com", "cluster_tags": [],
        "enabled_hypervisors": ["xen-pvm"],
        "nodegroups": {"f4e06e0d-528a-4963-a5ad-10f3e114232d": {
            "name": "default", "alloc_policy": "preferred",
            "networks": ["net-uuid-1", "net-uuid-2"], "ipolicy": h.ipolicy(),
            "tags": ["ng-tag-1", "ng-tag-2"]}},
        "instances": {
            "instance1.example.com": {
                "tags": [], "should_run": False,
                "disks": [{"mode": "w", "size": 64}, {"mode": "w", "size": 512}],
                "nics": [{"ip": None, "mac": "aa:00:00:00:60:bf", "bridge": "xen-br0"}],
                "vcpus": 1, "disk_template": "plain", "memory": 128,
                "nodes": ["node1.example.com"], "os": "debootstrap+default"},
            "instance2.example.com": {
                "tags": [], "should_run": False,
                "disks": [{"mode": "w", "size": 512}, {"mode": "w", "size": 256}],
                "nics": [{"ip": None, "mac": "aa:00:00:55:f8:38", "bridge": "xen-br0"}],
                "vcpus": 1, "disk_template": "drbd", "memory": 512,
                "nodes": ["node2.example.com", "node3.example.com"],
                "os": "debootstrap+default"}},
        "nodes": {
            name: {"total_disk": td, "primary_ip": "198.51.100.1",
                   "secondary_ip": "192.0.2.1", "tags": [],
                   "group": "f4e06e0d-528a-4963-a5ad-10f3e114232d",
                   "free_memory": 3505, "free_disk": fd, "total_memory": 4095}
            for name, td, fd in (("node1.example.com", 858276, 856740),
                                 ("node2.example.com", 858240, 848320),
                                 ("node3.example.com", 572184, 570648))},
        "request": {
            "type": "allocate", "name": "instance3.example.com",
            "required_nodes": 2, "disk_space_total": 3328,
            "disks": [{"mode": "w", "size": 1024}, {"mode": "w", "size": 2048}],
            "nics": [{"ip": None, "mac": "00:11:22:33:44:55", "bridge": None}],
            "vcpus": 1, "disk_template": "drbd", "memory": 2048,
            "os": "debootstrap+default", "tags": ["type:test", "owner:foo"],
            "hypervisor": "xen-pvm"},
    }
    cluster, req = loader_iallocator.load(copy.deepcopy(msg))
    assert len(cluster.instances) == 2
    assert req.instance.disk_space == 3328
