"""Tests for ganeti.htools.loader_luxi: the cluster through luxi queries.

A fake luxi client answers ``Query`` and ``QueryClusterInfo`` as our master
does (``[status, value]`` pairs, ``RS_OFFLINE`` for an offline node's live
fields, ``RS_UNKNOWN`` for fields it lacks). Its data is made from an
iallocator message (``htoolshelpers``), so the luxi loader and the
iallocator loader must build the same model from the same cluster. The
RAPI tests reuse these fakes.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
from typing import Any

import pytest

import htoolshelpers as h
from ganeti import constants, errors, luxi
from ganeti.htools import loader_iallocator, loader_luxi, loader_text
from ganeti.htools.loader_iallocator import InputError
from ganeti.query import groups as qgroups
from ganeti.query import instances as qinstances
from ganeti.query import nodes as qnodes

#: The gap between an instance's maximum memory and what it uses now
GAP = 256
MASTER = "node1.example.com"
G2 = "uuid-group-2"


class Status:
    """A field value that is a status, not a value (RS_OFFLINE, ...)."""

    def __init__(self, status: int) -> None:
        self.status = status


OFFLINE = Status(constants.RS_OFFLINE)
NODATA = Status(constants.RS_NODATA)

_RUN_STATUS = {"up": constants.INSTST_RUNNING, "down": constants.INSTST_ADMINDOWN,
               "offline": constants.INSTST_ADMINOFFLINE}


class FakeLuxi:
    """A luxi client answering from records (field name -> value, a Status
    or missing for an unknown field)."""

    def __init__(self, records: dict[str, Any]) -> None:
        self.records = records
        self.calls: list[tuple[str, list[str], Any]] = []
        self.closed = False

    def Query(self, what: str, fields: list[str], qfilter: Any) -> dict[str, Any]:
        self.calls.append((what, list(fields), qfilter))
        rows = []
        for item in self.records[what]:
            row = []
            for name in fields:
                val = item.get(name, Status(constants.RS_UNKNOWN))
                row.append([val.status, None] if isinstance(val, Status)
                           else [constants.RS_NORMAL, val])
            rows.append(row)
        return {"fields": [{"name": f, "title": f, "kind": "other", "doc": f}
                           for f in fields], "data": rows}

    def QueryClusterInfo(self) -> dict[str, Any]:
        self.calls.append(("info", [], None))
        return copy.deepcopy(self.records["info"])

    def Close(self) -> None:
        self.closed = True


def sample_message() -> dict[str, Any]:
    """A two-group cluster: DRBD and plain instances up, down and offline,
    an offline, a drained and a non-vm_capable node, exclusive storage."""
    nodes = {
        MASTER: h.node(tags=["rack:a"]),
        "node2.example.com": h.node(tags=["rack:b"]),
        "node3.example.com": h.node(memory=65536, cpus=16),
        "node4.example.com": h.node(drained=True),
        "node5.example.com": h.node(offline=True),
        "node6.example.com": h.node(G2, exclusive=True, spindles=6,
                                    free_spindles=5, total_spindles=6),
        "node7.example.com": h.node(G2, vm_capable=False),
        "node8.example.com": h.node(G2),
    }
    instances = {
        "web1.example.com": h.instance([MASTER, "node2.example.com"], 2048,
                                       tags=["service:web"]),
        "web2.example.com": h.instance(["node2.example.com", "node3.example.com"], 2048,
                                       tags=["service:web"], vcpus=2),
        "db1.example.com": h.instance(["node3.example.com", MASTER], 8192,
                                      disks=(20480, 10240), vcpus=4),
        "build.example.com": h.instance(["node2.example.com"], 4096, template="plain",
                                        admin_state="down"),
        "old.example.com": h.instance([MASTER], 1024, template="plain",
                                      admin_state="offline"),
        "drained.example.com": h.instance(["node4.example.com", MASTER], 1024),
        "lost.example.com": h.instance(["node5.example.com"], 512, template="plain",
                                       admin_state="offline"),
        "excl.example.com": h.instance(["node6.example.com"], 1024, template="plain",
                                       disks=(4096,)),
        "batch.example.com": h.instance(["node8.example.com", "node6.example.com"],
                                        4096, spindle_use=2),
        "nodisk.example.com": h.instance(["node8.example.com"], 512,
                                         template="diskless", disks=()),
    }
    instances["excl.example.com"]["disks"][0]["spindles"] = 1
    groups = {h.GROUP_UUID: h.group(tags=["dc:fra"]),
              G2: h.group("rack2", "last_resort", h.ipolicy(vcpu_ratio=8.0))}
    groups[G2]["networks"] = ["net-uuid-1"]
    return _without_dead_runtime(h.message(
        nodes, instances, h.alloc_request("new.example.com"), groups,
        cluster_tags=["htools:iextags:service"]))


def _without_dead_runtime(msg: dict[str, Any]) -> dict[str, Any]:
    """Drop the run-time keys the master does not send for offline and
    non-vm_capable nodes (the builder leaves some)."""
    for node in msg["nodes"].values():
        if node["offline"] or not node["vm_capable"]:
            for key in ("reserved_cpus", "total_spindles", "free_spindles"):
                node.pop(key, None)
    return msg


def records_from_message(msg: dict[str, Any], gap: int = GAP) -> dict[str, Any]:
    """The master's query answers for the cluster of an iallocator message.

    Running instances use ``gap`` MiB less than their maximum memory, so a
    node's hypervisor reports that much more free memory than the
    allocator's input (which subtracts it).
    """
    groups = [{"uuid": uuid, "name": g["name"], "alloc_policy": g["alloc_policy"],
               "ipolicy": copy.deepcopy(g["ipolicy"]), "networks": list(g["networks"]),
               "tags": list(g["tags"])} for uuid, g in msg["nodegroups"].items()]
    running: dict[str, int] = {}
    instances = []
    for name, inst in msg["instances"].items():
        pnode = inst["nodes"][0]
        up = inst["admin_state"] == "up"
        if up:
            running[pnode] = running.get(pnode, 0) + 1
        instances.append({
            "name": name, "pnode": pnode, "snodes": inst["nodes"][1:],
            "admin_state": inst["admin_state"], "status": _RUN_STATUS[inst["admin_state"]],
            "be/maxmem": inst["memory"], "be/vcpus": inst["vcpus"],
            "be/auto_balance": True, "be/spindle_use": inst["spindle_use"],
            "disk_template": inst["disk_template"],
            "disk.sizes": [d["size"] for d in inst["disks"]],
            "disk.spindles": [d["spindles"] for d in inst["disks"]],
            "disk_usage": inst["disk_space_total"], "tags": list(inst["tags"]),
            "oper_ram": inst["memory"] - gap if up else NODATA, "forthcoming": False,
        })
    nodes = []
    for name, node in msg["nodes"].items():
        live = not node["offline"] and node["vm_capable"]
        rec: dict[str, Any] = {
            "name": name, "offline": node["offline"], "drained": node["drained"],
            "vm_capable": node["vm_capable"],
            "master_candidate": node["master_candidate"], "master": name == MASTER,
            "group.uuid": node["group"], "tags": list(node["tags"]),
            "ndp/spindle_count": node["ndparams"]["spindle_count"],
            "ndp/exclusive_storage": node["ndparams"]["exclusive_storage"],
            "ndp/cpu_speed": 1.0,
        }
        for field, key in (("mtotal", "total_memory"), ("mnode", "reserved_memory"),
                           ("mfree", "free_memory"), ("dtotal", "total_disk"),
                           ("dfree", "free_disk"), ("ctotal", "total_cpus"),
                           ("cnos", "reserved_cpus"), ("sptotal", "total_spindles"),
                           ("spfree", "free_spindles")):
            rec[field] = node.get(key, 0) if live else OFFLINE
        if live:
            rec["mfree"] += gap * running.get(name, 0)
        nodes.append(rec)
    info = {"name": msg["cluster_name"], "master": MASTER,
            "tags": list(msg["cluster_tags"]), "ipolicy": copy.deepcopy(msg["ipolicy"]),
            "enabled_hypervisors": list(msg["enabled_hypervisors"]),
            "software_version": "3.0.0"}
    return {constants.QR_GROUP: groups, constants.QR_NODE: nodes,
            constants.QR_INSTANCE: instances, "info": info}


def model_dict(obj: Any, *skip: str) -> dict[str, Any]:
    """A model object's fields, without ``skip``."""
    return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)
            if f.name not in skip}


def assert_same_cluster(got, want, node_skip=("is_master",),
                        inst_skip=("nics", "hypervisor", "os")) -> None:
    """Two models of one cluster agree on everything htools use."""
    assert got.name == want.name
    assert got.tags == want.tags
    assert got.ipolicy == want.ipolicy
    assert {u: model_dict(g) for u, g in got.groups.items()} == \
        {u: model_dict(g) for u, g in want.groups.items()}
    assert sorted(got.nodes) == sorted(want.nodes)
    for name, node in want.nodes.items():
        assert model_dict(got.nodes[name], *node_skip) == \
            model_dict(node, *node_skip), name
    assert sorted(got.instances) == sorted(want.instances)
    for name, inst in want.instances.items():
        assert model_dict(got.instances[name], *inst_skip) == \
            model_dict(inst, *inst_skip), name


# --- the same model as the iallocator loader ----------------------------------------

def test_same_model_as_the_iallocator_loader():
    msg = sample_message()
    want, _ = loader_iallocator.load(msg)
    client = FakeLuxi(records_from_message(msg))
    got = loader_luxi.load(client=client)
    assert_same_cluster(got, want)
    assert got.nodes[MASTER].is_master
    assert not got.nodes["node2.example.com"].is_master
    # the figures htools print: running instances' unused memory is not free
    node1 = got.nodes[MASTER]
    assert node1.f_mem == msg["nodes"][MASTER]["free_memory"]
    assert node1.i_mem == 2048  # web1; old is offline and reserves nothing
    assert got.nodes["node6.example.com"].t_spindles == 6
    assert got.nodes["node6.example.com"].f_spindles == 5
    assert got.nodes["node8.example.com"].t_spindles == 4  # spindle_count
    assert got.nodes["node5.example.com"].offline
    assert got.nodes["node5.example.com"].t_mem == 0
    assert got.groups[G2].networks == ["net-uuid-1"]
    assert got.excl_prefixes == ("service",)
    assert client.closed is False  # not ours to close


def test_generated_cluster_matches_too():
    msg = _without_dead_runtime(h.generate(n_nodes=12, n_instances=150, seed=7,
                                           groups=3))
    want, _ = loader_iallocator.load(msg)
    got = loader_luxi.load(client=FakeLuxi(records_from_message(msg)))
    assert_same_cluster(got, want)


def test_round_trip_through_the_text_format():
    msg = sample_message()
    cluster = loader_luxi.load(client=FakeLuxi(records_from_message(msg)))
    text = loader_text.serialize(cluster)
    again = loader_text.parse(text)
    assert loader_text.serialize(again) == text
    # the text format keeps the master flag ("M")
    assert again.nodes[MASTER].is_master
    for name, node in cluster.nodes.items():
        assert (again.nodes[name].f_mem, again.nodes[name].r_mem) == \
            (node.f_mem, node.r_mem), name


def test_queries_use_fields_our_master_knows():
    client = FakeLuxi(records_from_message(sample_message()))
    loader_luxi.load(client=client)
    asked = {what: fields for what, fields, _ in client.calls}
    assert set(asked) == {constants.QR_GROUP, constants.QR_NODE,
                          constants.QR_INSTANCE, "info"}
    assert all(qfilter is None for _, _, qfilter in client.calls)
    tables = {constants.QR_GROUP: qgroups.GROUP_FIELDS,
              constants.QR_NODE: qnodes.NODE_FIELDS,
              constants.QR_INSTANCE: qinstances.INSTANCE_FIELDS}
    for what, table in tables.items():
        unknown = table.Unknown(asked[what])
        # Ganeti's spindle fields: asked, and read as missing when unknown
        assert set(unknown) <= {"sptotal", "spfree"}, (what, unknown)


# --- the run status and live data ---------------------------------------------------

def _records(**inst_changes: Any) -> dict[str, Any]:
    recs = records_from_message(sample_message())
    for rec in recs[constants.QR_INSTANCE]:
        if rec["name"] == "build.example.com":
            rec.update(inst_changes)
    return recs


@pytest.mark.parametrize("status,admin,want", [
    ("ERROR_up", "down", constants.ADMINST_UP),
    ("ERROR_down", "up", constants.ADMINST_DOWN),
    ("USER_down", "up", constants.ADMINST_DOWN),
    ("ERROR_nodedown", "up", constants.ADMINST_UP),
    ("ERROR_nodeoffline", "offline", constants.ADMINST_OFFLINE),
    (NODATA, "up", constants.ADMINST_UP),
])
def test_state_from_the_run_status(status, admin, want):
    recs = _records(status=status, admin_state=admin, oper_ram=NODATA)
    cluster = loader_luxi.load(client=FakeLuxi(recs))
    assert cluster.instances["build.example.com"].admin_state == want


def test_down_instance_reserves_its_memory():
    msg = sample_message()
    cluster = loader_luxi.load(client=FakeLuxi(records_from_message(msg)))
    node2 = cluster.nodes["node2.example.com"]
    # build (4096, down) is subtracted from what the node reports free
    assert node2.f_mem == msg["nodes"]["node2.example.com"]["free_memory"] - 4096


def test_unknown_spindle_fields_read_as_zero():
    recs = records_from_message(sample_message())
    for rec in recs[constants.QR_NODE]:
        del rec["sptotal"], rec["spfree"]
    cluster = loader_luxi.load(client=FakeLuxi(recs))
    assert cluster.nodes["node6.example.com"].t_spindles == 0
    assert cluster.nodes["node1.example.com"].t_spindles == 4


def test_node_without_live_data_is_taken_offline(caplog):
    recs = records_from_message(sample_message())
    node3 = next(r for r in recs[constants.QR_NODE] if r["name"] == "node3.example.com")
    for field in ("mtotal", "mnode", "mfree", "dtotal", "dfree", "ctotal", "cnos"):
        node3[field] = NODATA
    with caplog.at_level(logging.WARNING):
        cluster = loader_luxi.load(client=FakeLuxi(recs))
    node = cluster.nodes["node3.example.com"]
    assert node.offline and node.t_mem == 0 and node.f_dsk == 0
    assert "node3.example.com" in caplog.text
    # its instances stay, and count as on an offline node
    assert "web2.example.com" in node.slist


def test_minimal_records():
    """An old master's answers: no group UUID, no status, no live memory use."""
    recs = {
        constants.QR_GROUP: [{"uuid": "g1", "name": "default"}],
        constants.QR_NODE: [{"name": "n1", "mtotal": 4096, "mnode": 512, "mfree": 3000,
                             "dtotal": 100000, "dfree": 90000, "ctotal": 4}],
        constants.QR_INSTANCE: [{"name": "i1", "pnode": "n1", "admin_state": "up",
                                 "be/maxmem": 512, "disk_template": "plain",
                                 "disk.sizes": [10000]}],
        "info": {"name": "c1"},
    }
    cluster = loader_luxi.load(client=FakeLuxi(recs))
    node = cluster.nodes["n1"]
    assert node.group == "g1" and node.t_spindles == 1 and node.n_cpu == 0
    assert node.f_mem == 3000 and node.x_mem == 4096 - 512 - 3000 - 512
    inst = cluster.instances["i1"]
    assert inst.vcpus == 1 and inst.disk_space == 10000 and inst.auto_balance
    assert inst.disks == (loader_luxi.model.Disk(10000),)


# --- errors -------------------------------------------------------------------------

def _broken(what: str, name: str, **changes: Any) -> dict[str, Any]:
    recs = records_from_message(sample_message())
    for rec in recs[what]:
        if rec["name"] == name:
            rec.update(changes)
    return recs


@pytest.mark.parametrize("what,name,changes,message", [
    (constants.QR_NODE, "node2.example.com", {"group.uuid": "nope"},
     "node 'node2.example.com': 'group.uuid' names an unknown group 'nope'"),
    (constants.QR_NODE, "node2.example.com", {"mtotal": "lots"},
     "node 'node2.example.com': 'mtotal' must be a non-negative number, got 'lots'"),
    (constants.QR_NODE, "node2.example.com", {"offline": "no"},
     "node 'node2.example.com': 'offline' must be a boolean, got 'no'"),
    (constants.QR_INSTANCE, "web1.example.com", {"pnode": "ghost.example.com"},
     "instance 'web1.example.com': unknown node 'ghost.example.com'"),
    (constants.QR_INSTANCE, "web1.example.com", {"snodes": [MASTER]},
     "instance 'web1.example.com': primary and secondary node are the same"),
    (constants.QR_INSTANCE, "web1.example.com", {"disk_template": "floppy"},
     "instance 'web1.example.com': 'disk_template' must be one of"),
    (constants.QR_INSTANCE, "web1.example.com", {"be/maxmem": -1},
     "instance 'web1.example.com': 'be/maxmem' must be a non-negative number"),
    (constants.QR_INSTANCE, "web1.example.com", {"disk.sizes": [10, "x"]},
     "instance 'web1.example.com': disk 1: 'size' must be a non-negative number"),
    (constants.QR_INSTANCE, "web1.example.com",
     {"status": NODATA, "admin_state": "sideways"},
     "instance 'web1.example.com': 'admin_state' must be one of"),
    (constants.QR_GROUP, "rack2", {"alloc_policy": "sometimes"},
     "group 'rack2': 'alloc_policy' must be one of"),
    (constants.QR_GROUP, "rack2", {"ipolicy": {"vcpu-ratio": -2}},
     "group 'rack2': ipolicy: 'vcpu-ratio' must be a positive number"),
])
def test_malformed_answers_name_the_field(what, name, changes, message):
    with pytest.raises(InputError) as err:
        loader_luxi.load(client=FakeLuxi(_broken(what, name, **changes)))
    assert message in str(err.value)


def test_malformed_query_answer():
    class Broken(FakeLuxi):
        def Query(self, what, fields, qfilter):
            return {"fields": [], "data": [[[0, "x"]]]}

    with pytest.raises(InputError, match="invalid answer to the 'group' query"):
        loader_luxi.load(client=Broken({}))


def test_master_down_is_a_backend_error(tmp_path):
    socket = str(tmp_path / "ganeti-master")
    with pytest.raises(loader_luxi.BackendError) as err:
        loader_luxi.load(socket)
    assert socket in str(err.value) and "is ganeti-masterd running?" in str(err.value)


def test_master_refusing_a_query_is_a_backend_error():
    class Refusing(FakeLuxi):
        def Query(self, what, fields, qfilter):
            raise errors.OpPrereqError("Resource type 'group' unknown",
                                       errors.ECODE_INVAL)

    with pytest.raises(loader_luxi.BackendError,
                       match="Cannot query the master daemon at /s: .*'group' unknown"):
        loader_luxi.load("/s", client=Refusing({}))

    class Hung(FakeLuxi):
        def Query(self, what, fields, qfilter):
            raise luxi.TimeoutError("Receiving timed out")

    with pytest.raises(loader_luxi.BackendError, match="timed out"):
        loader_luxi.load("/s", client=Hung({}))
