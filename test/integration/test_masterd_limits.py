"""Integration tests: the real ganeti-masterd keeps its luxi limits.

Oversized requests and field lists are refused with a clear error and the
daemon keeps serving; a burst of connects while the daemon accepts nothing
(stopped with SIGSTOP) queues in the listen backlog instead of failing.
"""

from __future__ import annotations

import errno
import os
import signal
import socket

import pytest

from ganeti import constants, errors
from ganeti.luxi import protocol

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


def _ReadAnswer(sock):
    splitter = protocol.FrameSplitter()
    while (msg := splitter.Pop()) is None:
        data = sock.recv(65536)
        assert data, "connection closed"
        splitter.Feed(data)
    return protocol.ParseResponse(msg)


def test_field_count_limit(master):
    with master.luxi_client() as cl:
        fields = [f"f{i:07d}" for i in range(200_000)]
        with pytest.raises(errors.OpPrereqError) as exc:
            cl.QueryFields(constants.QR_INSTANCE, fields)
        assert exc.value.args == (
            f"Too many fields: 200000 requested, at most"
            f" {constants.LUXI_MAX_QUERY_FIELDS} allowed per request", errors.ECODE_INVAL)
        with pytest.raises(errors.OpPrereqError, match="Too many fields"):
            cl.Query(constants.QR_NODE, fields, None)
        answer = cl.QueryFields(constants.QR_NODE, ["name", "name"])
        assert [f["name"] for f in answer["fields"]] == ["name", "name"]


def test_request_size_limit(master):
    limit = constants.LUXI_MAX_REQUEST_SIZE
    with master.raw_socket() as sock:
        sock.sendall(b" " * (limit + 1))
        success, result, _ = _ReadAnswer(sock)
        assert not success and f"longer than {limit} bytes" in result[1][0]
        assert sock.recv(10) == b""
    with master.luxi_client() as cl:
        assert cl.QueryClusterInfo()["name"] == "cluster.example.com"


def test_connect_burst_while_the_master_is_stopped(master):
    socks = []
    os.kill(master.pid, signal.SIGSTOP)
    try:
        refused = 0
        for _ in range(500):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.setblocking(False)
            try:
                with protocol.SocketAddress(master.socket_path) as address:
                    sock.connect(address)
            except BlockingIOError as err:
                assert err.errno == errno.EAGAIN
                refused += 1
                sock.close()
                continue
            socks.append(sock)
        assert refused == 0
    finally:
        os.kill(master.pid, signal.SIGCONT)
    try:
        for sock in socks[::100]:
            sock.setblocking(True)
            sock.settimeout(30)
            sock.sendall(protocol.Frame(protocol.FormatRequest("QueryClusterInfo", [])))
            success, result, _ = _ReadAnswer(sock)
            assert success and result["name"] == "cluster.example.com"
    finally:
        for sock in socks:
            sock.close()
