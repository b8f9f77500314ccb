"""Tests for the "node" and "group" query resources."""

from __future__ import annotations

import os
import shutil
import sys
from types import SimpleNamespace

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import nodedhelpers  # noqa: E402

# the real node daemon fixtures
cluster_crypto = nodedhelpers.cluster_crypto
start_noded = nodedhelpers.start_noded

from ganeti import config, constants, errors, qlang, query  # noqa: E402
from ganeti.rpc.client import RpcResult  # noqa: E402
from ganeti.rpc.node import NodeEndpoint, RpcRunner, StaticResolver  # noqa: E402

FIXTURE_30 = os.path.join(os.path.dirname(__file__), "..", "..", "data",
                          "cluster_config_3.0.json")
N1 = "0b6c5a0e-41f4-4d3e-9a39-7f0d7c1e5a01"
N2 = "0b6c5a0e-41f4-4d3e-9a39-7f0d7c1e5a02"
N3 = "0b6c5a0e-41f4-4d3e-9a39-7f0d7c1e5a03"
N, NODATA, OFFLINE = constants.RS_NORMAL, constants.RS_NODATA, constants.RS_OFFLINE


class FakeRpc:
    """call_node_info answering from a table: uuid -> payload or error text."""

    def __init__(self, answers):
        self.answers = answers
        self.calls = []
        #: the read_timeout of each call
        self.timeouts = []

    def call_node_info(self, uuids, storage, hv_specs, read_timeout=None):
        self.calls.append((list(uuids), storage, hv_specs))
        self.timeouts.append(read_timeout)
        result = {}
        for uuid in uuids:
            answer = self.answers.get(uuid, "connection refused")
            if isinstance(answer, str):
                result[uuid] = RpcResult(data=answer, failed=True, call="node_info",
                                         node=uuid)
            else:
                result[uuid] = RpcResult(data=[True, answer], call="node_info", node=uuid)
        return result


def _payload(mem_total=4096, storage=True):
    hv = {"memory_total": mem_total, "memory_free": 1000, "memory_dom0": 3096,
          "cpu_total": 4, "cpu_nodes": 1, "cpu_sockets": 1, "cpu_dom0": 4}
    units = [{"type": "lvm-vg", "name": "xenvg", "storage_free": 500,
              "storage_size": 900}] if storage else []
    return ["boot-id", units, [hv]]


@pytest.fixture
def cfg(tmp_path):
    path = str(tmp_path / "config.data")
    shutil.copy(FIXTURE_30, path)
    return config.ConfigWriter(path, accept_foreign=True)


def _ctx(cfg, rpc=None):
    return SimpleNamespace(cfg=cfg, rpc=rpc)


def _rows(result):
    return [[value for _, value in row] for row in result["data"]]


def test_config_fields(cfg):
    result = query.Query("node", ["name", "role", "master_candidate", "offline",
                                  "group", "group.uuid", "pip", "sip", "pinst_cnt",
                                  "sinst_cnt", "pinst_list", "master", "uuid"],
                         None, _ctx(cfg))
    assert [f["name"] for f in result["fields"]][:3] == ["name", "role",
                                                        "master_candidate"]
    rows = _rows(result)
    assert [row[0] for row in rows] == ["node1.example.org", "node2.example.org",
                                        "node3.example.org"]
    assert [row[1] for row in rows] == ["M", "C", "C"]
    assert rows[2][4] == "rack2"
    assert rows[0][6] == "192.0.2.1"
    assert [row[8] for row in rows] == [1, 1, 1]
    assert rows[0][10] == ["db1.example.org"]
    assert [row[11] for row in rows] == [True, False, False]
    assert rows[1][12] == N2


def test_roles(cfg):
    for uuid, changes in ((N2, {"master_candidate": False, "drained": True}),
                          (N3, {"master_candidate": False, "offline": True})):
        node = cfg.GetNodeInfo(uuid)
        for key, value in changes.items():
            setattr(node, key, value)
        cfg.Update(node)
    rows = _rows(query.Query("node", ["name", "role"], None, _ctx(cfg)))
    assert rows == [["node1.example.org", "M"], ["node2.example.org", "D"],
                    ["node3.example.org", "O"]]


def test_no_rpc_for_config_fields(cfg):
    rpc = FakeRpc({})
    query.Query("node", ["name", "pinst_cnt", "role", "ndparams"], None, _ctx(cfg, rpc))
    assert rpc.calls == []


def test_live_fields(cfg):
    node = cfg.GetNodeInfo(N3)
    node.offline = True
    node.master_candidate = False
    cfg.Update(node)
    rpc = FakeRpc({N1: _payload(4096)})   # N2 does not answer, N3 is offline
    result = query.Query("node", ["name", "mtotal", "mfree", "mnode", "ctotal",
                                  "dtotal", "dfree", "bootid"], None, _ctx(cfg, rpc))
    assert result["data"][0] == [[N, "node1.example.org"], [N, 4096], [N, 1000],
                                 [N, 3096], [N, 4], [N, 900], [N, 500],
                                 [N, "boot-id"]]
    assert all(status == NODATA for status, _ in result["data"][1][1:])
    assert all(status == OFFLINE for status, _ in result["data"][2][1:])
    # only online nodes are asked, with the default storage unit (drbd -> vg)
    (uuids, storage, hv_specs), *_ = rpc.calls
    assert sorted(uuids) == [N1, N2]
    assert storage[N1] == [[constants.ST_LVM_VG, cfg.GetVGName()]]
    assert hv_specs[0][0] == cfg.GetClusterInfo().enabled_hypervisors[0]


def test_live_without_storage_fields_sends_no_storage(cfg):
    rpc = FakeRpc({N1: _payload(storage=False), N2: _payload(), N3: _payload()})
    result = query.Query("node", ["name", "mtotal"], None, _ctx(cfg, rpc))
    assert [row[1] for row in result["data"]] == [[N, 4096]] * 3
    assert len(rpc.calls) == 1 and rpc.calls[0][1] == []


def test_storage_failure_keeps_memory(cfg):
    class StorageFails(FakeRpc):
        def call_node_info(self, uuids, storage, hv_specs, read_timeout=None):
            if storage:
                self.calls.append((list(uuids), storage, hv_specs))
                # The node answers, with an error about its storage
                return {uuid: RpcResult(data=[False, "no such vg"]) for uuid in uuids}
            return super().call_node_info(uuids, storage, hv_specs, read_timeout)

    rpc = StorageFails({N1: _payload(storage=False)})
    result = query.Query("node", ["name", "mtotal", "dfree"], ["=", "name", "node1"],
                         _ctx(cfg, rpc))
    assert result["data"] == [[[N, "node1.example.org"], [N, 4096], [NODATA, None]]]


def test_filter_from_text_and_names(cfg):
    def names(text):
        rows = query.Query("node", ["name"], qlang.ParseFilter(text), _ctx(cfg))["data"]
        return [row[0][1] for row in rows]

    assert names("name =~ /node[12]/ and not master") == ["node2.example.org"]
    assert names("group == \"rack2\"") == ["node3.example.org"]
    assert names("pinst_cnt > 0 and role == \"C\"") == ["node2.example.org",
                                                      "node3.example.org"]
    assert names("master_candidate and offline == false") == [
        "node1.example.org", "node2.example.org", "node3.example.org"]
    # a name-only filter: short names match, only those nodes are looked at
    rows = query.Query("node", ["name"], qlang.MakeFilter(["node3", "node1"], False),
                       _ctx(cfg))["data"]
    assert [row[0][1] for row in rows] == ["node1.example.org", "node3.example.org"]


def test_unknown_fields(cfg):
    result = query.Query("node", ["name", "nosuch"], None, _ctx(cfg))
    assert result["fields"][1]["kind"] == constants.QFT_UNKNOWN
    assert result["data"][0][1] == [constants.RS_UNKNOWN, None]
    with pytest.raises(errors.QueryFilterParseError, match="Unknown field"):
        query.Query("node", ["name"], ["=", "nosuch", 1], _ctx(cfg))
    with pytest.raises(errors.QueryFilterParseError, match="expected a boolean"):
        query.Query("node", ["name"], ["=", "offline", "no"], _ctx(cfg))


def test_nice_sort():
    from ganeti import objects
    nodes = [objects.Node(name=f"node{i}.x", uuid=f"u{i}", primary_ip="192.0.2.1")
             for i in (10, 2, 1)]
    res = query.GetResource("node")
    assert [n.name for n in sorted(nodes, key=res.sort_key)] == \
        ["node1.x", "node2.x", "node10.x"]


def test_ndparams_fields(cfg):
    rows = _rows(query.Query("node", ["ndp/ssh_port", "ndparams", "custom_ndparams"],
                             None, _ctx(cfg)))
    assert rows[0][0] == rows[0][1]["ssh_port"]
    assert isinstance(rows[0][2], dict)


def test_query_fields_describe_everything():
    fields = query.QueryFields("node", None)["fields"]
    names = {f["name"] for f in fields}
    for wanted in ("name", "pinst_cnt", "sinst_cnt", "pinst_list", "sinst_list",
                   "dtotal", "dfree", "mtotal", "mnode", "mfree", "ctotal",
                   "cnodes", "csockets", "role", "offline", "drained",
                   "master_candidate", "master_capable", "vm_capable", "group",
                   "group.uuid", "uuid", "pip", "sip", "serial_no", "ctime",
                   "mtime", "tags", "powered", "ndparams", "custom_ndparams"):
        assert wanted in names
    by_name = {f["name"]: f for f in fields}
    assert by_name["mfree"]["kind"] == constants.QFT_UNIT
    assert by_name["name"]["title"] == "Node"


def test_groups(cfg):
    result = query.Query("group", ["name", "node_cnt", "node_list", "alloc_policy",
                                   "pinst_cnt", "uuid", "serial_no", "ndparams",
                                   "ipolicy", "tags"], None, _ctx(cfg))
    rows = _rows(result)
    assert [row[0] for row in rows] == ["default", "rack2"]
    assert rows[0][1] == 2 and rows[0][2] == ["node1.example.org", "node2.example.org"]
    assert rows[1][2] == ["node3.example.org"]
    assert rows[0][3] == constants.ALLOC_POLICY_PREFERRED
    assert rows[0][4] == 2 and rows[1][4] == 1
    assert isinstance(rows[0][7], dict) and isinstance(rows[0][8], dict)
    filtered = query.Query("group", ["name"], qlang.ParseFilter("node_cnt == 1"),
                           _ctx(cfg))
    assert filtered["data"] == [[[N, "rack2"]]]


@pytest.mark.timeout(120)
def test_live_fields_from_real_node_daemons(cfg, start_noded, cluster_crypto):
    """node_info goes to real daemons; a stopped one gives RS_NODATA."""
    daemons = start_noded(2, subnet=78)
    uuids = [N1, N2]
    endpoints = {uuid: NodeEndpoint(d.name, d.address, d.port)
                 for uuid, d in zip(uuids, daemons)}
    endpoints[N3] = NodeEndpoint("down", "127.78.9.9", 1)
    runner = RpcRunner(StaticResolver(endpoints), ssl_config=cluster_crypto.ssl_config)
    daemons[1].Stop()
    result = query.Query("node", ["name", "mtotal", "ctotal", "dfree"], None,
                         _ctx(cfg, runner))
    row1, row2, row3 = result["data"]
    assert row1[1][0] == N and row1[1][1] > 0 and row1[2][1] >= 1
    # the volume group does not exist on this machine: no disk data, memory shown
    assert row1[3][0] == NODATA
    assert row2[1][0] == NODATA and row3[1][0] == NODATA
