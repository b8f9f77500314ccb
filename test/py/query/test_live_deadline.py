"""Live query fields give up on a node after ``constants.RPC_TMO_QUERY``.

A hung node daemon (stopped with SIGSTOP: the kernel still accepts its
connections, nothing answers) must not hold up ``gnt-node list`` or
``gnt-instance list`` for the minute of the RPC calls' own timeout class:
the node's live fields come back as RS_NODATA ("?") after the query
deadline, the other nodes' as usual.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import time
from types import SimpleNamespace

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import instcfg  # noqa: E402
import nodedhelpers  # noqa: E402

from ganeti import config, constants, query  # noqa: E402
from ganeti.rpc.client import RpcResult  # noqa: E402
from ganeti.rpc.node import NodeEndpoint, RpcRunner, StaticResolver  # noqa: E402

cluster_crypto = nodedhelpers.cluster_crypto
start_noded = nodedhelpers.start_noded

pytestmark = pytest.mark.timeout(120)

FIXTURE_30 = os.path.join(os.path.dirname(__file__), "..", "..", "data",
                          "cluster_config_3.0.json")
N1 = "0b6c5a0e-41f4-4d3e-9a39-7f0d7c1e5a01"
N2 = "0b6c5a0e-41f4-4d3e-9a39-7f0d7c1e5a02"
N3 = "0b6c5a0e-41f4-4d3e-9a39-7f0d7c1e5a03"
NORMAL, NODATA = constants.RS_NORMAL, constants.RS_NODATA
TIMEOUT_TEXT = "Timeout: no answer from node daemon"


class RecordingRpc:
    """Answers every live-query call; records each call's read_timeout.

    ``unreachable`` nodes fail as a transport timeout would.
    """

    def __init__(self, unreachable=()):
        self.unreachable = set(unreachable)
        self.calls = []

    def _Answer(self, name, uuids, payload, read_timeout):
        self.calls.append((name, list(uuids), read_timeout))
        return {uuid: (RpcResult(data=f"{TIMEOUT_TEXT} (test)", failed=True, call=name)
                       if uuid in self.unreachable
                       else RpcResult(data=[True, payload], call=name))
                for uuid in uuids}

    def call_node_info(self, uuids, storage, hv_specs, read_timeout=None):
        units = [{"type": "lvm-vg", "name": "xenvg", "storage_free": 5,
                  "storage_size": 9}] if storage else []
        return self._Answer("node_info", uuids,
                            ["boot", units, [{"memory_total": 4096}]], read_timeout)

    def call_all_instances_info(self, uuids, hv_list, hvparams, read_timeout=None):
        return self._Answer("all_instances_info", uuids, {}, read_timeout)

    def call_os_diagnose(self, uuids, read_timeout=None):
        return self._Answer("os_diagnose", uuids, [], read_timeout)


@pytest.fixture
def node_cfg(tmp_path):
    path = str(tmp_path / "config.data")
    shutil.copy(FIXTURE_30, path)
    return config.ConfigWriter(path, accept_foreign=True)


def _Ctx(cfg, rpc):
    return SimpleNamespace(cfg=cfg, rpc=rpc)


def test_node_live_fields_use_the_query_deadline(node_cfg):
    rpc = RecordingRpc()
    query.Query("node", ["name", "mtotal", "dfree"], None, _Ctx(node_cfg, rpc))
    assert [(name, timeout) for name, _, timeout in rpc.calls] == \
        [("node_info", constants.RPC_TMO_QUERY)]
    assert constants.RPC_TMO_QUERY <= 10


def test_unreachable_node_is_not_asked_twice(node_cfg):
    rpc = RecordingRpc(unreachable=[N2])
    result = query.Query("node", ["name", "mtotal", "dfree"], None, _Ctx(node_cfg, rpc))
    # Asking again without storage is for nodes that answered with an
    # error; one that did not answer would cost a second deadline
    assert len(rpc.calls) == 1
    by_name = {row[0][1]: row[1:] for row in result["data"]}
    assert by_name["node2.example.org"] == [[NODATA, None], [NODATA, None]]
    assert by_name["node1.example.org"] == [[NORMAL, 4096], [NORMAL, 5]]


def test_instance_and_os_live_fields_use_the_query_deadline(tmp_path):
    cfg = instcfg.MakeConfig(str(tmp_path / "config.data"), 3, 6)
    rpc = RecordingRpc()
    query.Query("instance", ["name", "oper_state"], None, _Ctx(cfg, rpc))
    query.Query("os", ["name"], None, _Ctx(cfg, rpc))
    assert [(name, timeout) for name, _, timeout in rpc.calls] == \
        [("all_instances_info", constants.RPC_TMO_QUERY),
         ("os_diagnose", constants.RPC_TMO_QUERY)]


def test_stopped_node_daemon_gives_nodata_by_the_deadline(node_cfg, start_noded,
                                                         cluster_crypto, monkeypatch):
    """Real daemons; one is stopped with SIGSTOP (its socket still accepts)."""
    deadline = 2
    monkeypatch.setattr(constants, "RPC_TMO_QUERY", deadline)
    daemons = start_noded(3, subnet=79)
    endpoints = {uuid: NodeEndpoint(d.name, d.address, d.port)
                 for uuid, d in zip([N1, N2, N3], daemons)}
    runner = RpcRunner(StaticResolver(endpoints), ssl_config=cluster_crypto.ssl_config)
    ctx = _Ctx(node_cfg, runner)
    fields = ["name", "mtotal", "ctotal", "bootid"]
    # A first query opens the kept-alive connections a hung daemon then
    # leaves unanswered
    before = query.Query("node", fields, None, ctx)["data"]
    assert all(row[1][0] == NORMAL for row in before)
    hung = daemons[1]
    # The whole group: the daemon's children serve the open connections
    hung.SignalGroup(signal.SIGSTOP)
    try:
        start = time.monotonic()
        rows = query.Query("node", fields, None, ctx)["data"]
        elapsed = time.monotonic() - start
    finally:
        hung.SignalGroup(signal.SIGCONT)
    assert deadline <= elapsed < deadline + 2, f"query took {elapsed:.1f}s"
    by_name = {row[0][1]: row[1:] for row in rows}
    assert by_name["node2.example.org"] == [[NODATA, None]] * 3
    for name in ("node1.example.org", "node3.example.org"):
        assert [status for status, _ in by_name[name]] == [NORMAL] * 3
    # Resumed, it answers again
    rows = query.Query("node", fields, ["=", "name", "node2.example.org"], ctx)["data"]
    assert rows[0][1][0] == NORMAL
