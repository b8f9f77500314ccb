"""Tests for ganeti.confd.server (the query processor) and GetConfdPeers."""

from __future__ import annotations

import json
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import confdhelpers as h
from ganeti import constants as C
from ganeti import objects
from ganeti.confd import GetConfdPeers, protocol, server
from ganeti.confd.protocol import ConfdRequest

OK, ERR = C.CONFD_REPL_STATUS_OK, C.CONFD_REPL_STATUS_ERROR
N2, N3 = "node2.example.com", "node3.example.com"


@pytest.fixture(scope="module")
def data():
    return h.MakeConfigData(serial=10)


@pytest.fixture
def proc(data):
    return server.ConfdProcessor(server.ConfigSnapshot(data), h.HMAC_KEY)


def _Ask(proc, rtype, query=None, key=h.HMAC_KEY, now=None, **kwargs):
    req = ConfdRequest(type=rtype, query=query, rsalt="rs-1", **kwargs)
    answer = proc.HandleDatagram(protocol.PackRequest(req, key, now=now))
    if answer is None:
        return None
    reply, salt = protocol.UnpackReply(answer, h.HMAC_KEY)
    assert salt == "rs-1"
    return (reply.status, reply.answer, reply.serial)


EXPECTED = [
    (C.CONFD_REQ_PING, None, (OK, C.CONFIG_VERSION, 10)),
    (C.CONFD_REQ_NODE_ROLE_BYNAME, "node1.example.com",
     (OK, C.CONFD_NODE_ROLE_MASTER, 10)),
    (C.CONFD_REQ_NODE_ROLE_BYNAME, N2, (OK, C.CONFD_NODE_ROLE_CANDIDATE, 10)),
    (C.CONFD_REQ_NODE_ROLE_BYNAME, "node4.example.com",
     (OK, C.CONFD_NODE_ROLE_REGULAR, 10)),
    (C.CONFD_REQ_NODE_ROLE_BYNAME, "node5.example.com",
     (OK, C.CONFD_NODE_ROLE_OFFLINE, 10)),
    (C.CONFD_REQ_NODE_ROLE_BYNAME, "node6.example.com",
     (OK, C.CONFD_NODE_ROLE_DRAINED, 10)),
    (C.CONFD_REQ_NODE_ROLE_BYNAME, h.NodeUuid(N3),
     (OK, C.CONFD_NODE_ROLE_CANDIDATE, 10)),
    (C.CONFD_REQ_NODE_PIP_BY_INSTANCE_IP, {C.CONFD_REQQ_IP: "198.51.100.1"},
     (OK, "192.0.2.2", 10)),
    (C.CONFD_REQ_NODE_PIP_BY_INSTANCE_IP, {"ip": "198.51.100.3"},
     (OK, "192.0.2.4", 10)),
    (C.CONFD_REQ_NODE_PIP_BY_INSTANCE_IP,
     {C.CONFD_REQQ_IP: "198.51.100.11", C.CONFD_REQQ_LINK: "br1"},
     (OK, "192.0.2.2", 10)),
    # the IP is on br1, not on the default link
    (C.CONFD_REQ_NODE_PIP_BY_INSTANCE_IP, {C.CONFD_REQQ_IP: "198.51.100.11"},
     (ERR, C.CONFD_ERROR_UNKNOWN_ENTRY, 0)),
    (C.CONFD_REQ_NODE_PIP_BY_INSTANCE_IP,
     {C.CONFD_REQQ_IPLIST: ["198.51.100.1", "198.51.100.2", "203.0.113.9"]},
     (OK, [[OK, "192.0.2.2"], [OK, "192.0.2.3"],
           [ERR, C.CONFD_ERROR_UNKNOWN_ENTRY]], 10)),
    (C.CONFD_REQ_NODE_PIP_BY_INSTANCE_IP, "198.51.100.1",
     (ERR, C.CONFD_ERROR_ARGUMENT, 0)),
    (C.CONFD_REQ_NODE_PIP_BY_INSTANCE_IP, {C.CONFD_REQQ_IPLIST: "x"},
     (ERR, C.CONFD_ERROR_ARGUMENT, 0)),
    (C.CONFD_REQ_CLUSTER_MASTER, None, (OK, "node1.example.com", 10)),
    (C.CONFD_REQ_CLUSTER_MASTER,
     {C.CONFD_REQQ_FIELDS: [C.CONFD_REQFIELD_NAME, C.CONFD_REQFIELD_IP,
                            C.CONFD_REQFIELD_MNODE_PIP]},
     (OK, ["node1.example.com", "192.0.2.254", "192.0.2.1"], 10)),
    # integer fields (Ganeti >= 2.7) and the netdev extension
    (C.CONFD_REQ_CLUSTER_MASTER, {C.CONFD_REQQ_FIELDS: [1, 3]},
     (OK, ["192.0.2.254", "eth0"], 10)),
    (C.CONFD_REQ_CLUSTER_MASTER, {C.CONFD_REQQ_FIELDS: ["9"]},
     (ERR, C.CONFD_ERROR_ARGUMENT, 0)),
    (C.CONFD_REQ_CLUSTER_MASTER, "x", (ERR, C.CONFD_ERROR_ARGUMENT, 0)),
    (C.CONFD_REQ_NODE_PIP_LIST, None,
     (OK, [f"192.0.2.{i}" for i in range(1, 7)], 10)),
    (C.CONFD_REQ_MC_PIP_LIST, None,
     (OK, ["192.0.2.1", "192.0.2.2", "192.0.2.3"], 10)),
    (C.CONFD_REQ_INSTANCES_IPS_LIST, None,
     (OK, ["198.51.100.1", "198.51.100.2", "198.51.100.3"], 10)),
    (C.CONFD_REQ_INSTANCES_IPS_LIST, "br1", (OK, ["198.51.100.11"], 10)),
    (C.CONFD_REQ_INSTANCES_IPS_LIST, "nosuchlink", (OK, [], 10)),
    (C.CONFD_REQ_NODE_DRBD, N2,
     (OK, [[N2, 0, "inst1.example.com", "disk/0", "primary", N3],
           [N2, 3, "inst2.example.com", "disk/0", "secondary", N3]], 10)),
    (C.CONFD_REQ_NODE_DRBD, "node4.example.com", (OK, [], 10)),
    (C.CONFD_REQ_NODE_INSTANCES, N3,
     (OK, [["inst2.example.com"], ["inst1.example.com"]], 10)),
    (C.CONFD_REQ_CONFIG_QUERY, "/cluster/master_netdev", (OK, "eth0", 10)),
    (C.CONFD_REQ_CONFIG_QUERY, "/cluster/nosuchkey",
     (ERR, C.CONFD_ERROR_ARGUMENT, 0)),
    (C.CONFD_REQ_DATA_COLLECTORS, None, (OK, {}, 10)),
]


@pytest.mark.parametrize("rtype,query,expected", EXPECTED)
def test_answers(proc, rtype, query, expected):
    assert _Ask(proc, rtype, query) == expected


def test_every_type_covered():
    assert {rtype for rtype, _, _ in EXPECTED} | \
        {C.CONFD_REQ_INSTANCE_DISKS} == set(C.CONFD_REQS) == \
        set(server.HANDLERS)


def test_instance_disks(proc, data):
    status, answer, serial = _Ask(proc, C.CONFD_REQ_INSTANCE_DISKS,
                                  "inst1.example.com")
    assert (status, serial) == (OK, 10)
    assert [d["dev_type"] for d in answer] == [C.DT_DRBD8, C.DT_PLAIN]
    drbd = objects.Disk.FromDict(answer[0])
    assert drbd.logical_id[3:5] == (0, 1)
    assert [c.dev_type for c in drbd.children] == [C.DT_PLAIN, C.DT_PLAIN]
    by_uuid = _Ask(proc, C.CONFD_REQ_INSTANCE_DISKS,
                   "10000000-0000-4000-8000-000000000001")
    assert by_uuid == (status, answer, serial)


@pytest.mark.parametrize("rtype,query,pattern", [
    (C.CONFD_REQ_NODE_ROLE_BYNAME, "nosuchnode", "Node 'nosuchnode' not found"),
    (C.CONFD_REQ_NODE_ROLE_BYNAME, None, "expected a node name"),
    (C.CONFD_REQ_NODE_ROLE_BYNAME, {"a": 1}, "expected a node name"),
    (C.CONFD_REQ_NODE_DRBD, "nosuchnode", "not found"),
    (C.CONFD_REQ_NODE_INSTANCES, 5, "expected a node name"),
    (C.CONFD_REQ_INSTANCE_DISKS, "nosuchinst", "Instance 'nosuchinst' not"),
    (C.CONFD_REQ_INSTANCES_IPS_LIST, ["x"], "expected a link"),
    (C.CONFD_REQ_CONFIG_QUERY, None, "expected a path"),
    (99, None, "Unknown confd request type 99"),
    ("1", None, "Unknown confd request type '1'"),
    (None, None, "Unknown confd request type None"),
])
def test_error_answers(proc, rtype, query, pattern):
    status, answer, serial = _Ask(proc, rtype, query)
    assert (status, serial) == (ERR, 0)
    assert pattern in answer


def test_wrong_protocol_version(proc):
    status, answer, _ = _Ask(proc, C.CONFD_REQ_PING, protocol=2)
    assert status == ERR and "protocol version 2" in answer


def test_no_config_loaded():
    proc = server.ConfdProcessor(hmac_key=h.HMAC_KEY)
    status, answer, serial = _Ask(proc, C.CONFD_REQ_PING)
    assert (status, serial) == (ERR, 0)
    assert "not yet loaded" in answer


def test_new_snapshot_replaces_cached_answers(proc):
    assert _Ask(proc, C.CONFD_REQ_NODE_ROLE_BYNAME, "nodex.example.com")[0] \
        == ERR
    newer = h.MakeConfigData(serial=11,
                             extra_nodes={"nodex.example.com": "192.0.2.50"})
    proc.SetSnapshot(server.ConfigSnapshot(newer))
    assert _Ask(proc, C.CONFD_REQ_NODE_ROLE_BYNAME, "nodex.example.com") == \
        (OK, C.CONFD_NODE_ROLE_REGULAR, 11)


def test_handler_bug_answers_internal_error(proc, monkeypatch):
    def _Broken(_snap, _query):
        raise KeyError("boom")
    monkeypatch.setitem(server.HANDLERS, C.CONFD_REQ_PING, _Broken)
    status, answer, _ = _Ask(proc, C.CONFD_REQ_PING)
    assert status == ERR and "Internal error" in answer


def test_oversized_answer_becomes_error():
    nodes = {f"big{i:04d}.example.com": f"10.1.{i // 250}.{i % 250 + 1}"
             for i in range(400)}
    proc = server.ConfdProcessor(
        server.ConfigSnapshot(h.MakeConfigData(extra_nodes=nodes)),
        h.HMAC_KEY)
    assert _Ask(proc, C.CONFD_REQ_CONFIG_QUERY, "/") == \
        (ERR, C.CONFD_ERROR_INTERNAL, 0)
    # small answers from the same configuration still work
    assert _Ask(proc, C.CONFD_REQ_NODE_ROLE_BYNAME, "big0001.example.com")[0] \
        == OK


# --- Dropped datagrams ---------------------------------------------------------------

def _Raw(proc, payload):
    return proc.HandleDatagram(payload, ("127.0.0.1", 1))


def test_wrong_key_dropped(proc):
    assert _Ask(proc, C.CONFD_REQ_PING, key=b"wrong") is None
    assert proc.stats["signature"] == 1


@pytest.mark.parametrize("offset", [-400, 400])
def test_stale_or_future_dropped(proc, offset):
    assert _Ask(proc, C.CONFD_REQ_PING, now=time.time() + offset) is None
    assert proc.stats["time"] == 1


def _Signed(msg: str, salt: str | None = None, key=h.HMAC_KEY) -> bytes:
    if salt is None:
        salt = str(int(time.time()))
    return protocol.PackSigned(json.loads(msg), key, salt)


@pytest.mark.parametrize("payload,reason", [
    (b"", "magic"),
    (b"plj", "magic"),
    (b"PLJ0{}", "magic"),
    (b"plj0", "format"),
    (b"plj0{", "format"),
    (b"plj0\x00\xff", "format"),
    (b"plj0[]", "format"),
    (b"plj0null", "format"),
    (b'plj0{"msg": "x"}', "format"),
    (b'plj0{"msg": 1, "salt": "1", "hmac": "0"}', "format"),
    (b"plj0" + b"[" * 100000, "size"),
    (b"plj0" + b"[" * 50000, "format"),  # deep nesting
])
def test_garbage_dropped(proc, payload, reason):
    assert _Raw(proc, payload) is None
    assert proc.stats[reason] == 1
    assert proc.stats["answered"] == 0


def test_signed_but_malformed_request_dropped(proc):
    assert _Raw(proc, _Signed('{"type": 0}')) is None
    assert _Raw(proc, _Signed('[1]')) is None
    assert _Raw(proc, _Signed('{"type": 0, "rsalt": 7}')) is None
    assert _Raw(proc, _Signed('{"type": 0}', salt="yesterday")) is None
    assert proc.stats["answered"] == 0


def test_no_key_drops_everything(data):
    proc = server.ConfdProcessor(server.ConfigSnapshot(data))
    assert _Ask(proc, C.CONFD_REQ_PING) is None
    assert proc.stats["nokey"] == 1


_SHARED: list[server.ConfdProcessor] = []


def _SharedProc() -> server.ConfdProcessor:
    if not _SHARED:
        _SHARED.append(server.ConfdProcessor(
            server.ConfigSnapshot(h.MakeConfigData()), h.HMAC_KEY))
    return _SHARED[0]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_never_raise(payload):
    proc = _SharedProc()
    assert proc.HandleDatagram(b"plj0" + payload) is None
    assert proc.HandleDatagram(payload) is None


@settings(max_examples=200, deadline=None)
@given(st.integers(-5, 20), st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda kids: st.lists(kids, max_size=4)
    | st.dictionaries(st.sampled_from(["0", "1", "2", "3", "ip", "x"]), kids,
                      max_size=4),
    max_leaves=10))
def test_any_signed_query_is_answered(rtype, query):
    proc = _SharedProc()
    result = _Ask(proc, rtype, query)
    assert result is not None and result[0] in C.CONFD_REPL_STATUSES


# --- Peers ---------------------------------------------------------------------------

def test_confd_peers_from_config(data):
    assert GetConfdPeers(data) == [("192.0.2.1", C.DEFAULT_CONFD_PORT),
                                   ("192.0.2.2", C.DEFAULT_CONFD_PORT),
                                   ("192.0.2.3", C.DEFAULT_CONFD_PORT)]
    copy = data.Copy()
    node3 = copy.nodes[h.NodeUuid(N3)]
    node3.noded_address, node3.confd_port = "127.0.1.3", 51814
    copy.nodes[h.NodeUuid(N2)].offline = True
    assert GetConfdPeers(copy) == [("192.0.2.1", C.DEFAULT_CONFD_PORT),
                                   ("127.0.1.3", 51814)]
    assert len(GetConfdPeers(copy, include_offline=True)) == 3
