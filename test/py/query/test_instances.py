"""Tests for the "instance" query resource."""

from __future__ import annotations

import json
import os
import sys
from types import SimpleNamespace

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import nodedhelpers  # noqa: E402
import instcfg  # noqa: E402

from ganeti import constants, errors, query  # noqa: E402
from ganeti.rpc.client import RpcResult  # noqa: E402
from ganeti.rpc.defs import InstanceDict  # noqa: E402
from ganeti.rpc.node import RpcRunner, StaticResolver  # noqa: E402

cluster_crypto = nodedhelpers.cluster_crypto
start_noded = nodedhelpers.start_noded

N, NODATA, UNAVAIL, OFFLINE = (constants.RS_NORMAL, constants.RS_NODATA,
                               constants.RS_UNAVAIL, constants.RS_OFFLINE)


class FakeRpc:
    """call_all_instances_info answering from a table: node uuid -> payload
    (dict of running instances) or an error text."""

    def __init__(self, answers):
        self.answers = answers
        self.calls = []
        #: the read_timeout of each call
        self.timeouts = []

    def call_all_instances_info(self, uuids, hv_list, all_hvparams, read_timeout=None):
        self.calls.append((list(uuids), hv_list, all_hvparams))
        self.timeouts.append(read_timeout)
        result = {}
        for uuid in uuids:
            answer = self.answers.get(uuid, {})
            if isinstance(answer, str):
                result[uuid] = RpcResult(data=answer, failed=True)
            else:
                result[uuid] = RpcResult(data=[True, answer])
        return result


@pytest.fixture
def cfg(tmp_path):
    return instcfg.MakeConfig(str(tmp_path / "config.data"), 3, 12)


def _ctx(cfg, rpc=None):
    return SimpleNamespace(cfg=cfg, rpc=rpc)


def _rows(result):
    return [[value for _, value in row] for row in result["data"]]


def _node_uuid(cfg, idx):
    return cfg.GetNodeInfoByName(instcfg.NodeName(idx)).uuid


def _info(mem=256, vcpus=1):
    return {"memory": mem, "vcpus": vcpus, "state": "running", "time": 1.0}


def test_config_fields(cfg):
    rpc = FakeRpc({})
    result = query.Query("instance", [
        "name", "os", "pnode", "snodes", "disk_template", "disk.count", "disk.sizes",
        "disk.size/0", "sda_size", "disk.size/5", "disk_usage", "nic.count", "nic.macs",
        "mac", "nic.modes", "nic.links", "nic.bridges", "be/maxmem", "be/memory",
        "vcpus", "hv/kernel_path", "admin_state", "admin_up", "tags",
        "pnode.group", "hypervisor", "disk.names", "no_such_field"], None,
        _ctx(cfg, rpc))
    assert rpc.calls == []
    rows = _rows(result)
    assert [row[0] for row in rows][:4] == [
        "inst0.example.com", "inst1.example.com", "inst2.example.com",
        "inst3.example.com"]                       # natural order
    assert rows[10][0] == "inst10.example.com"
    by_name = {row[0]: row for row in rows}
    r0, r1 = by_name["inst0.example.com"], by_name["inst1.example.com"]
    assert r0[1:5] == ["noop+default", "node0.example.com", [], "diskless"]
    assert r0[5:11] == [0, [], None, None, None, 0]
    assert r1[2] == "node1.example.com"
    assert r1[4:11] == ["file", 2, [1024, 512], 1024, 1024, None, 1536]
    assert r1[11:17] == [1, ["aa:00:00:00:00:01"], "aa:00:00:00:00:01", ["bridged"],
                         [r1[15][0]], [r1[15][0]]]
    assert r0[17:20] == [256, 256, 1] and r1[17] == 128
    assert r0[20] is None         # not a fake hypervisor parameter: unavailable
    assert result["data"][0][20][0] == UNAVAIL
    assert r0[21:24] == ["up", True, ["t0"]] and r1[21:23] == ["down", False]
    assert r0[24] == "default" and r0[25] == "fake"
    assert r1[26] == ["d0", "d1"]
    statuses = [pair[0] for pair in result["data"][0]]
    assert statuses[9] == UNAVAIL and statuses[-1] == constants.RS_UNKNOWN
    assert result["fields"][-1]["kind"] == constants.QFT_UNKNOWN
    assert result["fields"][2] == {"name": "pnode", "title": "Primary_node",
                                   "kind": "text", "doc": "Primary node"}


def test_name_filter_and_other_filters(cfg):
    rows = _rows(query.Query("instance", ["name"], ["|", ["=", "name", "inst3"],
                                                    ["=", "name", "inst11.example.com"]],
                             _ctx(cfg)))
    assert rows == [["inst3.example.com"], ["inst11.example.com"]]
    rows = _rows(query.Query("instance", ["name"], ["&", ["=", "disk_template", "file"],
                                                    ["=", "pnode", "node0.example.com"]],
                             _ctx(cfg)))
    assert rows == [["inst3.example.com"], ["inst9.example.com"]]


def test_unknown_names_are_errors(cfg):
    """As in Ganeti, asking for an unknown instance by name is an error; the
    group and node resources do the same."""
    with pytest.raises(errors.OpPrereqError, match="Instance 'nosuch' not known") as err:
        query.Query("instance", ["name"], ["|", ["=", "name", "inst3"],
                                           ["=", "name", "nosuch"]], _ctx(cfg))
    assert err.value.args[1] == errors.ECODE_NOENT
    with pytest.raises(errors.OpPrereqError, match="Node 'node9' not known"):
        query.Query("node", ["name"], ["=", "name", "node9"], _ctx(cfg))
    rows = _rows(query.Query("node", ["name"], ["=", "name", "node1"], _ctx(cfg)))
    assert rows == [["node1.example.com"]]
    with pytest.raises(errors.OpPrereqError, match="Some groups do not exist: g9"):
        query.Query("group", ["name"], ["|", ["=", "name", "default"], ["=", "name", "g9"]],
                    _ctx(cfg))
    # Other filters still select, and may select nothing
    assert query.Query("instance", ["name"], ["=", "os", "nosuch"], _ctx(cfg))["data"] == []


def test_live_fields_and_status(cfg):
    n0, n1, n2 = (_node_uuid(cfg, i) for i in range(3))
    # inst2 is marked offline, inst9 was shut down by its user
    cfg.MarkInstanceOffline(cfg.GetInstanceInfoByName("inst2.example.com").uuid)
    cfg.MarkInstanceUserDown(cfg.GetInstanceInfoByName("inst9.example.com").uuid)
    node = cfg.GetNodeInfo(n2)
    node.offline = True
    node.master_candidate = False
    cfg.Update(node)
    rpc = FakeRpc({
        # inst0 (up) runs; inst3 (down) runs too; inst7 (node1's) runs here
        n0: {"inst0.example.com": _info(256, 2), "inst3.example.com": _info(),
             "inst7.example.com": _info(), "stray.example.com": _info()},
        n1: "Connection refused",
    })
    result = query.Query("instance", ["name", "status", "oper_state", "oper_ram",
                                      "oper_vcpus"], None, _ctx(cfg, rpc))
    assert rpc.calls[0][0] == sorted([n0, n1])      # the offline node is not asked
    data = {row[0][1]: row[1:] for row in result["data"]}
    assert data["inst0.example.com"] == [[N, "running"], [N, True], [N, 256], [N, 2]]
    assert data["inst3.example.com"][:2] == [[N, "ERROR_up"], [N, True]]
    assert data["inst6.example.com"] == [[N, "ERROR_down"], [N, False], [UNAVAIL, None],
                                         [UNAVAIL, None]]
    assert data["inst9.example.com"][0] == [N, "USER_down"]
    assert data["inst1.example.com"] == [[N, "ERROR_nodedown"], [NODATA, None],
                                         [NODATA, None], [NODATA, None]]
    assert data["inst2.example.com"] == [[N, "ERROR_nodeoffline"], [OFFLINE, None],
                                         [OFFLINE, None], [OFFLINE, None]]
    cfg2 = cfg.GetInstanceInfoByName("inst7.example.com")
    assert cfg2.primary_node == n1
    assert data["inst7.example.com"][0] == [N, "ERROR_nodedown"]


def test_wrong_node(cfg):
    n0, n1 = _node_uuid(cfg, 0), _node_uuid(cfg, 1)
    rpc = FakeRpc({n0: {"inst1.example.com": _info()}, n1: {}})
    rows = _rows(query.Query("instance", ["name", "status"],
                             ["=", "name", "inst1.example.com"], _ctx(cfg, rpc)))
    assert rows == [["inst1.example.com", "ADMIN_down"]]  # only node1 is asked
    rows = _rows(query.Query("instance", ["name", "status"],
                             ["|", ["=", "name", "inst1"], ["=", "name", "inst0"]],
                             _ctx(cfg, rpc)))
    assert rows == [["inst0.example.com", "ERROR_down"],
                    ["inst1.example.com", "ERROR_wrongnode"]]


def test_filter_on_live_field_collects_live_data(cfg):
    n0 = _node_uuid(cfg, 0)
    rpc = FakeRpc({n0: {"inst0.example.com": _info()}})
    rows = _rows(query.Query("instance", ["name"], ["=", "oper_state", True],
                             _ctx(cfg, rpc)))
    assert rows == [["inst0.example.com"]]
    assert len(rpc.calls) == 1


def test_snapshot_is_not_a_copy_but_queries_do_not_change_it(cfg):
    snap = cfg.GetReadOnlySnapshot()
    before = {uuid: inst.ToDict() for uuid, inst in snap.instances.items()}
    query.Query("instance", list(query.RESOURCES["instance"].fields), None,
                _ctx(cfg, FakeRpc({})))
    assert {uuid: inst.ToDict() for uuid, inst in snap.instances.items()} == before
    # Later changes store new objects: the snapshot keeps the old ones
    inst = cfg.GetInstanceInfoByName("inst0.example.com")
    inst.os = "other"
    cfg.Update(inst)
    assert snap.instances[inst.uuid].os == "noop+default"


def test_bad_filter_field(cfg):
    with pytest.raises(errors.QueryFilterParseError):
        query.Query("instance", ["name"], ["=", "nonexistent", 1], _ctx(cfg))


def test_field_table_is_complete():
    fields = query.QueryFields("instance", None)["fields"]
    names = {f["name"] for f in fields}
    assert "hv/migration_mode" not in names     # global: the cluster's
    for name in ("name", "os", "pnode", "snodes", "status", "admin_state",
                 "admin_state_source", "oper_state", "oper_ram", "oper_vcpus",
                 "disk_template", "disk_usage", "disks_active", "be/memory",
                 "be/maxmem", "be/minmem", "be/vcpus", "be/auto_balance",
                 "hv/kernel_path", "beparams", "hvparams", "custom_beparams",
                 "custom_hvparams", "custom_osparams", "nic.count", "nic.macs",
                 "nic.ips", "nic.modes", "nic.links", "nic.networks", "nic.mac/7",
                 "nic.ip/0", "nic.mode/0", "nic.link/0", "disk.count", "disk.sizes",
                 "disk.size/15", "disk.names", "disk.uuids", "tags", "uuid", "ctime",
                 "mtime", "serial_no", "network_port"):
        assert name in names, name


# --- with real node daemons ------------------------------------------------------------

@pytest.mark.timeout(120)
def test_live_fields_from_real_nodes(tmp_path, start_noded, cluster_crypto):
    daemons = start_noded(2)
    names = [d.name for d in daemons]
    cfg = instcfg.MakeConfig(str(tmp_path / "config.data"), 2, 6, node_names=names)
    endpoints = {cfg.GetNodeInfoByName(d.name).uuid: d.endpoint for d in daemons}
    rpc = RpcRunner(StaticResolver(endpoints), ssl_config=cluster_crypto.ssl_config)
    for daemon in daemons:
        etc = os.path.join(daemon.root, "etc", "ganeti")
        os.makedirs(etc, exist_ok=True)
        with open(os.path.join(etc, "fake-hypervisor.json"), "w", encoding="ascii") as fd:
            json.dump({"memory_total": 4096}, fd)
    # inst0 (up, diskless, on node 0) and inst5 (down, on node 1) run
    for inst_name in ("inst0.example.com", "inst5.example.com"):
        inst = cfg.GetInstanceInfoByName(inst_name)
        cluster = cfg.GetClusterInfo()
        arg = InstanceDict(inst, [], cluster.FillHV(inst), cluster.FillBE(inst))
        res = rpc.call_instance_start(inst.primary_node, arg, False, None)
        assert res.fail_msg is None, res.fail_msg
    rows = _rows(query.Query("instance", ["name", "status", "oper_ram", "oper_vcpus"],
                             None, _ctx(cfg, rpc)))
    assert rows == [
        ["inst0.example.com", "running", 256, 1],
        ["inst1.example.com", "ADMIN_down", None, None],
        ["inst2.example.com", "ERROR_down", None, None],
        ["inst3.example.com", "ADMIN_down", None, None],
        ["inst4.example.com", "ERROR_down", None, None],
        ["inst5.example.com", "ERROR_up", 128, 1],
    ]
    daemons[1].Stop()
    rows = _rows(query.Query("instance", ["name", "status"],
                             ["=", "name", "inst5"], _ctx(cfg, rpc)))
    assert rows == [["inst5.example.com", "ERROR_nodedown"]]



def test_shut_down_from_inside_is_user_down_when_allowed(cfg):
    """A live instance in the SHUTDOWN state (its guest powered off, its
    process kept: KVM's user_shutdown) is USER_down if the cluster (and, for
    KVM, the instance's user_shutdown) allows it, else ERROR_down."""
    from ganeti.hypervisor.base import HvInstanceState
    n0 = _node_uuid(cfg, 0)
    off = dict(_info(), state=HvInstanceState.SHUTDOWN)
    kvm = cfg.GetInstanceInfoByName("inst6.example.com")
    kvm.hypervisor = constants.HT_KVM
    kvm.hvparams = {constants.HV_KVM_USER_SHUTDOWN: False}
    cfg.Update(kvm)
    rpc = FakeRpc({n0: {"inst0.example.com": off, "inst3.example.com": off,
                        "inst6.example.com": off}})

    def statuses():
        rows = _rows(query.Query("instance", ["name", "status", "oper_state"],
                                 ["|", ["=", "name", "inst0"], ["=", "name", "inst3"],
                                  ["=", "name", "inst6"]], _ctx(cfg, rpc)))
        return {name: status for name, status, _ in rows}

    assert statuses() == {"inst0.example.com": "ERROR_down",
                          "inst3.example.com": "ADMIN_down",
                          "inst6.example.com": "ERROR_down"}
    cluster = cfg.GetClusterInfo()
    cluster.enabled_user_shutdown = True
    cfg.Update(cluster)
    assert statuses() == {"inst0.example.com": "USER_down",
                          "inst3.example.com": "ADMIN_down",
                          "inst6.example.com": "ERROR_down"}
    kvm = cfg.GetInstanceInfoByName("inst6.example.com")
    kvm.hvparams = {constants.HV_KVM_USER_SHUTDOWN: True}
    cfg.Update(kvm)
    assert statuses()["inst6.example.com"] == "USER_down"
