"""Integration tests of confd: three real ganeti-confd daemons on loopback
addresses (one per master candidate, each with its own GANETI_ROOTDIR and
config.data, all with the same hmac.key), queried with the client library.

Candidate c3 is stale: its configuration (serial 19) predates the one of
c1 and c2 (serial 20), in which node4 became drained and node7 was added.
"""

from __future__ import annotations

import os
import select
import socket
import sys
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "py", "confd"))

import confdhelpers as h  # noqa: E402
from ganeti import constants as C  # noqa: E402
from ganeti import objects  # noqa: E402
from ganeti.confd import client, protocol  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

OK, ERR = C.CONFD_REPL_STATUS_OK, C.CONFD_REPL_STATUS_ERROR
N2, N3, N4 = "node2.example.com", "node3.example.com", "node4.example.com"
NEW_NODE = {"node7.example.com": "192.0.2.7"}


def _Fresh(serial=20, extra=None):
    data = h.MakeConfigData(serial=serial, extra_nodes={**NEW_NODE,
                                                        **(extra or {})})
    data.nodes[h.NodeUuid(N4)].drained = True
    return data


@pytest.fixture
def cluster(tmp_path):
    daemons = []
    try:
        for idx, data in enumerate((_Fresh(), _Fresh(),
                                    h.MakeConfigData(serial=19))):
            daemons.append(h.StartConfd(str(tmp_path), f"c{idx + 1}",
                                        f"127.0.1.{idx + 1}", data))
        h.WaitReady(daemons)
        yield daemons
        for daemon in daemons:
            assert daemon.stopped or daemon.Alive(), daemon.Output()
    finally:
        h.StopAll(daemons)
    for daemon in daemons:
        assert daemon.proc.returncode == 0, daemon.Output()


def _Peers(cluster):
    return [d.peer for d in cluster]


def _Query(cluster, rtype, query=None, key=h.HMAC_KEY, timeout=5.0):
    return client.QueryOnce(key, _Peers(cluster), rtype, query,
                            timeout=timeout)


def _Best(cluster, rtype, query=None):
    result = _Query(cluster, rtype, query)
    assert result.complete, f"only {result.answered}/3 answered"
    return (result.reply.status, result.reply.answer, result.reply.serial)


# --- Every query type ----------------------------------------------------------------

def test_every_query_type(cluster):
    assert _Best(cluster, C.CONFD_REQ_PING) == (OK, C.CONFIG_VERSION, 20)
    assert _Best(cluster, C.CONFD_REQ_NODE_ROLE_BYNAME, "node1.example.com") \
        == (OK, C.CONFD_NODE_ROLE_MASTER, 20)
    assert _Best(cluster, C.CONFD_REQ_NODE_ROLE_BYNAME, "node7.example.com") \
        == (OK, C.CONFD_NODE_ROLE_REGULAR, 20)
    assert _Best(cluster, C.CONFD_REQ_NODE_PIP_BY_INSTANCE_IP,
                 {C.CONFD_REQQ_IP: "198.51.100.2"}) == (OK, "192.0.2.3", 20)
    assert _Best(cluster, C.CONFD_REQ_NODE_PIP_BY_INSTANCE_IP,
                 {C.CONFD_REQQ_IPLIST: ["198.51.100.11", "198.51.100.3"],
                  C.CONFD_REQQ_LINK: "br1"}) == \
        (OK, [[OK, "192.0.2.2"], [ERR, C.CONFD_ERROR_UNKNOWN_ENTRY]], 20)
    assert _Best(cluster, C.CONFD_REQ_CLUSTER_MASTER) == \
        (OK, "node1.example.com", 20)
    assert _Best(cluster, C.CONFD_REQ_CLUSTER_MASTER,
                 {C.CONFD_REQQ_FIELDS: ["0", "1", "2", "3"]}) == \
        (OK, ["node1.example.com", "192.0.2.254", "192.0.2.1", "eth0"], 20)
    assert _Best(cluster, C.CONFD_REQ_NODE_PIP_LIST) == \
        (OK, [f"192.0.2.{i}" for i in range(1, 8)], 20)
    assert _Best(cluster, C.CONFD_REQ_MC_PIP_LIST) == \
        (OK, ["192.0.2.1", "192.0.2.2", "192.0.2.3"], 20)
    assert _Best(cluster, C.CONFD_REQ_INSTANCES_IPS_LIST) == \
        (OK, ["198.51.100.1", "198.51.100.2", "198.51.100.3"], 20)
    assert _Best(cluster, C.CONFD_REQ_INSTANCES_IPS_LIST, "br1") == \
        (OK, ["198.51.100.11"], 20)
    assert _Best(cluster, C.CONFD_REQ_NODE_DRBD, N3) == \
        (OK, [[N3, 1, "inst1.example.com", "disk/0", "secondary", N2],
              [N3, 2, "inst2.example.com", "disk/0", "primary", N2]], 20)
    assert _Best(cluster, C.CONFD_REQ_NODE_INSTANCES, N2) == \
        (OK, [["inst1.example.com"], ["inst2.example.com"]], 20)
    status, disks, serial = _Best(cluster, C.CONFD_REQ_INSTANCE_DISKS,
                                  "inst2.example.com")
    assert (status, serial) == (OK, 20)
    (drbd,) = [objects.Disk.FromDict(d) for d in disks]
    assert drbd.dev_type == C.DT_DRBD8 and drbd.logical_id[3:5] == (2, 3)
    assert _Best(cluster, C.CONFD_REQ_CONFIG_QUERY, "/cluster/cluster_name") \
        == (OK, "cluster.example.com", 20)
    assert _Best(cluster, C.CONFD_REQ_DATA_COLLECTORS) == (OK, {}, 20)


def _QueryAny(cluster, rtype, query=None):
    """QueryOnce for request types the client itself would refuse."""
    got = client.StoreResultCallback()
    with client.ConfdClient(h.HMAC_KEY, _Peers(cluster), got) as cli:
        req = protocol.ConfdRequest(type=rtype, query=query,
                                    rsalt=protocol.NewRequestSalt())
        cli.SendRequest(req, coverage=0)
        assert cli.WaitForReply(req.rsalt, 5)[0] == 3
    return [up.server_reply for up in got.GetResponses()]


def test_errors_are_answered(cluster):
    replies = _QueryAny(cluster, 99)
    assert [(r.status, r.serial) for r in replies] == [(ERR, 0)] * 3
    assert "Unknown confd request type 99" in replies[0].answer
    assert {r.status for r in _QueryAny(cluster, "ping")} == {ERR}
    for rtype, query in ((C.CONFD_REQ_NODE_ROLE_BYNAME, "nosuch"),
                         (C.CONFD_REQ_INSTANCE_DISKS, "nosuch"),
                         (C.CONFD_REQ_CLUSTER_MASTER, "bad")):
        result = _Query(cluster, rtype, query)
        assert result.complete
        assert {r.status for _, r in result.replies} == {ERR}


# --- Stale candidates and reloads ----------------------------------------------------

def test_stale_candidate_loses(cluster):
    result = _Query(cluster, C.CONFD_REQ_NODE_ROLE_BYNAME, N4)
    assert result.complete
    by_peer = {peer: (r.serial, r.answer) for peer, r in result.replies}
    assert by_peer[cluster[2].peer] == (19, C.CONFD_NODE_ROLE_REGULAR)
    assert by_peer[cluster[0].peer] == (20, C.CONFD_NODE_ROLE_DRAINED)
    assert result.reply.serial == 20
    assert result.reply.answer == C.CONFD_NODE_ROLE_DRAINED
    assert result.server != cluster[2].peer
    # only the stale one does not know node7; its error has serial 0
    result = _Query(cluster, C.CONFD_REQ_NODE_ROLE_BYNAME, "node7.example.com")
    assert sorted((r.serial, r.status) for _, r in result.replies) == \
        [(0, ERR), (20, OK), (20, OK)]
    assert result.reply.status == OK


def test_filter_callback_with_stale_candidate(cluster):
    got = client.StoreResultCallback()
    counting = client.ConfdCountingCallback(client.ConfdFilterCallback(got))
    with client.ConfdClient(h.HMAC_KEY, _Peers(cluster), counting) as cli:
        req = client.ConfdClientRequest(type=C.CONFD_REQ_PING)
        counting.RegisterQuery(req.rsalt)
        cli.SendRequest(req, coverage=0)
        deadline = time.monotonic() + 10
        while not counting.AllAnswered() and time.monotonic() < deadline:
            cli.ReceiveReply(0.2)
        assert counting.AllAnswered()
    serials = [up.server_reply.serial for up in got.GetResponses()]
    assert serials[-1] == 20 and 19 not in serials[1:]


def test_config_reload(cluster):
    stale = cluster[2]
    h.WriteConfig(stale.cfg_file,
                  _Fresh(serial=21, extra={"node8.example.com": "192.0.2.8"}))

    def _Updated():
        result = _Query(cluster, C.CONFD_REQ_NODE_ROLE_BYNAME,
                        "node8.example.com", timeout=2)
        return result.reply is not None and result.reply.status == OK and \
            result

    result = h.WaitFor(_Updated, timeout=30, what="confd to reload")
    assert result.reply.serial == 21 and result.server == stale.peer
    assert result.reply.answer == C.CONFD_NODE_ROLE_REGULAR
    assert _Best(cluster, C.CONFD_REQ_PING)[2] == 21


def test_new_hmac_key_on_all_candidates(cluster):
    new_key = b"renewed-key\n"
    for daemon in cluster:
        h.WriteHmacKey(daemon.root, new_key)
    h.WaitFor(lambda: _Query(cluster, C.CONFD_REQ_PING, key=new_key,
                             timeout=1).complete, what="the new key")
    assert _Query(cluster, C.CONFD_REQ_PING, timeout=0.5).answered == 0


# --- Refused requests and garbage ----------------------------------------------------

def _SendRaw(sock, cluster, payload):
    for daemon in cluster:
        sock.sendto(payload, daemon.peer)


def _Silence(sock, seconds=0.5):
    """Whether nothing arrives on ``sock`` for ``seconds``."""
    readable, _, _ = select.select([sock], [], [], seconds)
    return not readable


@pytest.fixture
def raw_sock():
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    yield sock
    sock.close()


def test_replayed_request_outside_window_dropped(cluster, raw_sock):
    req = client.ConfdClientRequest(type=C.CONFD_REQ_PING)
    now = time.time()
    fresh = protocol.PackRequest(req, h.HMAC_KEY, now=now)
    _SendRaw(raw_sock, cluster, fresh)
    answers = []
    while len(answers) < 3:
        readable, _, _ = select.select([raw_sock], [], [], 5)
        assert readable, "a fresh request was not answered"
        answers.append(raw_sock.recvfrom(65536)[0])
    # the same request, captured and replayed 6 minutes later, or sent
    # with a clock 6 minutes ahead
    for offset in (-C.CONFD_MAX_CLOCK_SKEW - 60, C.CONFD_MAX_CLOCK_SKEW + 60):
        _SendRaw(raw_sock, cluster,
                 protocol.PackRequest(req, h.HMAC_KEY, now=now + offset))
    assert _Silence(raw_sock)


def test_wrong_hmac_dropped(cluster, raw_sock):
    req = client.ConfdClientRequest(type=C.CONFD_REQ_PING)
    _SendRaw(raw_sock, cluster, protocol.PackRequest(req, b"wrong key"))
    assert _Silence(raw_sock)
    assert _Query(cluster, C.CONFD_REQ_PING, key=b"wrong", timeout=0.3) \
        .answered == 0


def _Garbage(index: int) -> bytes:
    kinds = [
        b"",
        b"plj",
        b"plj0",
        b"plj0{\"msg\":",  # truncated
        b"plj0this is not json",
        b"PLJ1{}",  # bad magic
        b"\x00\xff" * 50,
        b"plj0" + bytes(range(256)),
        b'plj0{"msg": "{}", "salt": "1", "hmac": "00"}',
        protocol.PackRequest(client.ConfdClientRequest(type=0), h.HMAC_KEY)[:-7],
        b"plj0" + b"[" * 5000,
    ]
    if index % 50 == 0:
        return b"plj0" + b"x" * 62000  # oversized
    return kinds[index % len(kinds)]


def test_garbage_flood(cluster, raw_sock):
    sent = 0
    for burst in range(40):
        for idx in range(50):
            _SendRaw(raw_sock, cluster, _Garbage(burst * 50 + idx))
            sent += 1
        result = _Query(cluster, C.CONFD_REQ_NODE_ROLE_BYNAME, N2)
        assert result.complete, f"good query lost after burst {burst}"
        assert result.reply.answer == C.CONFD_NODE_ROLE_CANDIDATE
    assert sent == 2000
    assert _Silence(raw_sock, 0.2)  # garbage is never answered
    for daemon in cluster:
        assert daemon.Alive(), daemon.Output()
    # each daemon counted every datagram it got as answered or dropped
    for daemon in cluster:
        daemon.Stop()
        stats = [line for line in daemon.Output().splitlines()
                 if "Statistics:" in line]
        assert stats, daemon.Output()
        assert "'magic'" in stats[-1] and "'format'" in stats[-1] \
            and "'size'" in stats[-1] and "'signature'" in stats[-1]
