"""Tests for ganeti.confd.client, against processors answering on real
UDP sockets in threads."""

from __future__ import annotations

import socket

import pytest

import confdhelpers as h
from ganeti import constants as C
from ganeti import errors
from ganeti.confd import client, protocol, server

pytestmark = pytest.mark.timeout(60)

ROLE = C.CONFD_REQ_NODE_ROLE_BYNAME
N2 = "node2.example.com"


def _Proc(serial, **kwargs):
    return server.ConfdProcessor(
        server.ConfigSnapshot(h.MakeConfigData(serial=serial, **kwargs)),
        h.HMAC_KEY)


@pytest.fixture
def three():
    """Three answering processors: serials 10, 12 (newest) and 11."""
    with h.ProcessorThread(_Proc(10)) as a, h.ProcessorThread(_Proc(12)) as b, \
            h.ProcessorThread(_Proc(11)) as c:
        yield [a, b, c]


def test_query_once_picks_highest_serial(three):
    peers = [t.peer for t in three]
    result = client.QueryOnce(h.HMAC_KEY, peers, ROLE, N2, timeout=5)
    assert result.complete and result.enough
    assert (result.answered, result.expected, result.quorum) == (3, 3, 2)
    assert result.reply.serial == 12 and result.server == three[1].peer
    assert result.reply.answer == C.CONFD_NODE_ROLE_CANDIDATE
    assert sorted(r.serial for _, r in result.replies) == [10, 11, 12]


def test_query_once_with_a_silent_peer(three):
    three[1].mute = True
    peers = [t.peer for t in three]
    result = client.QueryOnce(h.HMAC_KEY, peers, ROLE, N2, timeout=0.5)
    assert (result.answered, result.enough, result.complete) == (2, True, False)
    assert result.reply.serial == 11


def test_query_once_nobody_answers(three):
    for t in three:
        t.mute = True
    result = client.QueryOnce(h.HMAC_KEY, [t.peer for t in three], ROLE, N2,
                              timeout=0.3)
    assert result.reply is None and not result.enough
    assert result.answered == 0 and result.expected == 3


def test_wrong_key_gets_nothing(three):
    result = client.QueryOnce(b"bad key", [three[0].peer], ROLE, N2,
                              timeout=0.3)
    assert result.reply is None
    assert three[0].processor.stats["signature"] == 1


def test_reused_client_and_coverage(three):
    peers = [t.peer for t in three]
    with client.MakeClient(h.HMAC_KEY, peers) as cli:
        for _ in range(5):
            result = client.QueryOnce(None, None, C.CONFD_REQ_PING,  # type: ignore[arg-type]
                                      client=cli, coverage=2, timeout=5)
            assert (result.answered, result.expected, result.quorum) == \
                (2, 2, 2)


def test_callbacks_filter_and_count(three):
    got = client.StoreResultCallback()
    filt = client.ConfdFilterCallback(got)
    counting = client.ConfdCountingCallback(filt)
    cli = client.ConfdClient(h.HMAC_KEY, [t.peer for t in three], counting)
    try:
        req = client.ConfdClientRequest(type=ROLE, query=N2)
        counting.RegisterQuery(req.rsalt)
        assert not counting.AllAnswered()
        cli.SendRequest(req, args="extra", coverage=0)
        for _ in range(100):
            if counting.AllAnswered():
                break
            cli.ReceiveReply(0.1)
        assert counting.AllAnswered()
        answers = got.GetResponses()
        # answers arriving after a newer one are filtered out: serials seen
        # by the final callback only ever increase
        serials = [up.server_reply.serial for up in answers]
        assert serials == sorted(set(serials)) and serials[-1] == 12
        assert all(up.extra_args == "extra" and up.orig_request is req
                   for up in answers)
        assert filt.consistent[req.rsalt]
    finally:
        cli.Close()


def _Up(salt, serial, answer=1, kind=client.UPCALL_REPLY):
    return client.ConfdUpcallPayload(
        salt=salt, type=kind,
        server_reply=protocol.ConfdReply(status=0, answer=answer,
                                         serial=serial))


def test_filter_callback_rules():
    got = client.StoreResultCallback()
    filt = client.ConfdFilterCallback(got)
    for up in (_Up("s", 5), _Up("s", 4), _Up("s", 5), _Up("s", 5, answer=2),
               _Up("s", 6)):
        filt(up)
    assert [u.server_reply.serial for u in got.GetResponses()] == [5, 6]
    assert filt.consistent["s"] is False
    filt(_Up("s", 0, kind=client.UPCALL_EXPIRE))
    assert "s" not in filt.consistent


def test_expiry_reaches_callback(three):
    three[0].mute = True
    got = client.StoreResultCallback()
    cli = client.ConfdClient(h.HMAC_KEY, [three[0].peer], got)
    try:
        req = client.ConfdClientRequest(type=C.CONFD_REQ_PING)
        cli.SendRequest(req)
        cli.ExpireRequests(now=1e18)
        (up,) = got._upcalls
        assert up.type == client.UPCALL_EXPIRE and up.salt == req.rsalt
        with pytest.raises(errors.ConfdClientError, match="expired"):
            cli.WaitForReply(req.rsalt, 0.1)
    finally:
        cli.Close()


def test_foreign_and_forged_answers_ignored(three):
    got = client.StoreResultCallback()
    cli = client.ConfdClient(h.HMAC_KEY, [three[0].peer], got)
    try:
        req = client.ConfdClientRequest(type=C.CONFD_REQ_PING)
        cli.SendRequest(req)
        reply = protocol.ConfdReply(status=0, answer="forged", serial=99)
        cli.HandleResponse(protocol.PackReply(reply, b"other", req.rsalt),
                           "127.0.0.1", 1)
        cli.HandleResponse(protocol.PackReply(reply, h.HMAC_KEY, "other-salt"),
                           "127.0.0.1", 1)
        cli.HandleResponse(b"garbage", "127.0.0.1", 1)
        assert got.GetResponses() == []
        assert cli.WaitForReply(req.rsalt, 5) == (1, 1, 1)
        assert got.GetResponses()[0].server_reply.serial == 10
    finally:
        cli.Close()


@pytest.mark.parametrize("peers,pattern", [
    (["not-an-ip"], "Invalid confd peer address 'not-an-ip'"),
    ([("127.0.0.1", 0)], "Invalid confd peer port 0"),
    ([("127.0.0.1", "1814")], "Invalid confd peer port '1814'"),
    ([("127.0.0.1",)], "expected an address or"),
])
def test_bad_peers(peers, pattern):
    with pytest.raises(errors.ConfdClientError, match=pattern):
        client.ConfdClient(h.HMAC_KEY, peers, lambda up: None)


def test_bad_requests_and_coverage():
    with pytest.raises(errors.ConfdClientError, match="request type 99"):
        client.ConfdClientRequest(type=99)
    cli = client.ConfdClient(h.HMAC_KEY, ["127.0.0.1"], lambda up: None)
    with pytest.raises(errors.ConfdClientError, match="Coverage 2 is more"):
        cli.SendRequest(client.ConfdClientRequest(type=0), coverage=2)
    cli.UpdatePeerList([])
    with pytest.raises(errors.ConfdClientError, match="No confd peers"):
        cli.SendRequest(client.ConfdClientRequest(type=0))
    with pytest.raises(errors.ConfdClientError, match="not callable"):
        client.ConfdClient(h.HMAC_KEY, [], None)  # type: ignore[arg-type]
    cli.Close()


def test_default_port_and_ipv6_peer():
    cli = client.ConfdClient(h.HMAC_KEY, ["127.0.0.1", ("::1", 5)],
                             lambda up: None)
    assert cli.peers == [("127.0.0.1", C.DEFAULT_CONFD_PORT), ("::1", 5)]


def test_read_hmac_key(tmp_path):
    path = tmp_path / "hmac.key"
    with pytest.raises(errors.ConfdClientError, match="Cannot read"):
        client.ReadHmacKey(str(path))
    path.write_bytes(b"\n")
    with pytest.raises(errors.ConfdClientError, match="is empty"):
        client.ReadHmacKey(str(path))
    path.write_bytes(h.HMAC_KEY)
    assert client.ReadHmacKey(str(path)) == h.HMAC_KEY  # as on disk


def test_unreachable_peer_is_not_fatal():
    # A closed port: the kernel may report ECONNREFUSED on the next read
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = client.QueryOnce(h.HMAC_KEY, [("127.0.0.1", port)],
                              C.CONFD_REQ_PING, timeout=0.3)
    assert result.reply is None
