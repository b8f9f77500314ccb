"""Limits of the luxi server and client: request size, field count,
unfinished requests, the listen backlog and connects while it is full."""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import socket
import threading
import time

import pytest

from ganeti import constants, errors
from ganeti.luxi import client as luxi_client
from ganeti.luxi import handlers as luxi_handlers
from ganeti.luxi import protocol
from ganeti.luxi.server import KIND_INLINE, LuxiMethod, LuxiServer

pytestmark = pytest.mark.timeout(60)


def _Methods():
    return {"Echo": LuxiMethod(lambda *args: list(args), 0, 3, KIND_INLINE)}


def _ReadAll(sock):
    """Everything the server sends until it closes: (answers, closed)."""
    splitter = protocol.FrameSplitter()
    answers = []
    while True:
        try:
            data = sock.recv(65536)
        except ConnectionResetError:
            return answers, True
        if not data:
            return answers, True
        splitter.Feed(data)
        while (msg := splitter.Pop()) is not None:
            answers.append(protocol.ParseResponse(msg))


@contextlib.contextmanager
def _LoopBlocked(srv):
    """Keep the server's event loop busy (accepting nothing) inside the block."""
    busy, release = threading.Event(), threading.Event()

    def _Block():
        busy.set()
        release.wait(30)

    srv.loop.call_soon_threadsafe(_Block)
    assert busy.wait(10)
    try:
        yield
    finally:
        release.set()


def _ConnectNonBlocking(path, count):
    """Try ``count`` connects that must not wait; (connected, EAGAIN count)."""
    connected, refused = [], 0
    for _ in range(count):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            with protocol.SocketAddress(path) as address:
                sock.connect(address)
        except BlockingIOError as err:
            assert err.errno == errno.EAGAIN
            refused += 1
            sock.close()
            continue
        connected.append(sock)
    return connected, refused


# --- request size -------------------------------------------------------------------

def test_server_default_request_limit_is_the_request_size():
    server = LuxiServer(_Methods())
    try:
        assert server.max_message_size == constants.LUXI_MAX_REQUEST_SIZE
        assert constants.LUXI_MAX_REQUEST_SIZE < constants.LUXI_MAX_MESSAGE_SIZE
    finally:
        server._executor.shutdown()


def test_request_over_the_size_limit_is_refused(luxi_server_factory):
    srv = luxi_server_factory(_Methods())
    limit = constants.LUXI_MAX_REQUEST_SIZE
    with srv.RawSocket() as sock:
        sock.settimeout(30)
        sock.sendall(b" " * (limit + 1))
        answers, closed = _ReadAll(sock)
    assert closed
    ((success, result, _),) = answers
    assert not success and f"longer than {limit} bytes" in result[1][0]
    # Exactly at the limit is fine
    request = protocol.FormatRequest("Echo", ["x" * 100])
    with srv.RawSocket() as sock:
        sock.settimeout(30)
        sock.sendall(b" " * (limit - len(request)) + protocol.Frame(request))
        sock.shutdown(socket.SHUT_WR)
        answers, _ = _ReadAll(sock)
    assert answers == [(True, ["x" * 100], None)]


# --- field count ----------------------------------------------------------------------

class _FakeQuery:
    def __init__(self):
        self.calls = []

    def Query(self, what, fields, qfilter, context):
        self.calls.append(("Query", len(fields)))
        return {"fields": [], "data": []}

    def QueryFields(self, what, fields):
        self.calls.append(("QueryFields", len(fields)))
        return {"fields": []}

    def QueryJobs(self, context, job_ids, fields):
        self.calls.append(("QueryJobs", len(fields)))
        return []


def test_field_count_is_limited():
    fake = _FakeQuery()
    handlers = luxi_handlers.MasterHandlers(queue=None, query_module=fake)
    limit = constants.LUXI_MAX_QUERY_FIELDS
    at_limit = ["name"] * limit
    handlers.Query(constants.QR_INSTANCE, at_limit, None)
    handlers.QueryFields(constants.QR_INSTANCE, at_limit)
    handlers.QueryJobs(None, at_limit)
    assert fake.calls == [("Query", limit), ("QueryFields", limit), ("QueryJobs", limit)]
    over = ["name"] * (limit + 1)
    for call in (lambda: handlers.Query(constants.QR_INSTANCE, over, None),
                 lambda: handlers.QueryFields(constants.QR_INSTANCE, over),
                 lambda: handlers.QueryJobs(None, over)):
        with pytest.raises(errors.OpPrereqError) as exc:
            call()
        assert exc.value.args == (f"Too many fields: {limit + 1} requested, at most"
                                  f" {limit} allowed per request", errors.ECODE_INVAL)
    assert len(fake.calls) == 3


def test_bad_field_list_error_stays_short():
    handlers = luxi_handlers.MasterHandlers(queue=None, query_module=_FakeQuery())
    with pytest.raises(errors.OpPrereqError) as exc:
        handlers.QueryFields(constants.QR_NODE, ["name"] * 1000 + [1])
    assert len(str(exc.value)) < 300


def test_field_limit_reaches_the_client(luxi_server_factory):
    handlers = luxi_handlers.MasterHandlers(queue=None, query_module=_FakeQuery())
    srv = luxi_server_factory(handlers.Methods())
    with luxi_client.Client(srv.paths[0], timeouts=(5, 30)) as cl:
        fields = [f"field{i}" for i in range(100_000)]
        with pytest.raises(errors.OpPrereqError,
                           match=f"at most {constants.LUXI_MAX_QUERY_FIELDS} allowed"):
            cl.QueryFields(constants.QR_INSTANCE, fields)
        # The connection stays usable
        assert cl.QueryFields(constants.QR_INSTANCE, ["name"]) == {"fields": []}


# --- unfinished requests ------------------------------------------------------------

def test_unfinished_request_is_closed_and_logged(luxi_server_factory, caplog):
    srv = luxi_server_factory(_Methods(), partial_timeout=0.5)
    caplog.set_level(logging.WARNING)
    idle = srv.RawSocket()  # connected, sends nothing: not a partial request
    try:
        with srv.RawSocket() as sock:
            start = time.monotonic()
            sock.sendall(b'{"method": "Echo", "args": [')
            answers, closed = _ReadAll(sock)
            elapsed = time.monotonic() - start
        assert closed
        ((success, result, _),) = answers
        assert not success
        assert "Unfinished luxi request" in result[1][0]
        assert "28 bytes" in result[1][0]
        assert 0.5 <= elapsed < 10
        logged = [r.getMessage() for r in caplog.records
                  if "Closing luxi connection" in r.getMessage()]
        assert len(logged) == 1
        assert "Unfinished luxi request" in logged[0]
        assert f"from pid {os.getpid()} (uid {os.getuid()})" in logged[0]
        # A connection idle between requests is left alone
        idle.sendall(protocol.Frame(protocol.FormatRequest("Echo", ["still here"])))
        splitter = protocol.FrameSplitter()
        while (msg := splitter.Pop()) is None:
            splitter.Feed(idle.recv(4096))
        assert protocol.ParseResponse(msg) == (True, ["still here"], None)
    finally:
        idle.close()


def test_trickled_request_is_closed(luxi_server_factory):
    """A byte now and then does not keep an unfinished request alive."""
    srv = luxi_server_factory(_Methods(), partial_timeout=1.0)
    with srv.RawSocket() as sock:
        start = time.monotonic()
        sock.settimeout(0.2)
        answer = b""
        for byte in b'{"method": "Echo", "args": [' + b" " * 1000:
            try:
                sock.sendall(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                break
            try:
                answer = sock.recv(4096)  # waits 0.2 s unless closed
            except TimeoutError:
                continue
            break
        elapsed = time.monotonic() - start
        # The rest of the answer, up to the close (a loaded machine may
        # deliver it in pieces; when the close beat a send, the answer is
        # still waiting in the socket)
        sock.settimeout(10)
        while b"\x03" not in answer:
            chunk = sock.recv(4096)
            if not chunk:
                break
            answer += chunk
        assert b"Unfinished luxi request" in answer
        assert 1.0 <= elapsed < 10


def test_complete_requests_are_not_timed(luxi_server_factory):
    srv = luxi_server_factory(_Methods(), partial_timeout=0.5)
    with luxi_client.Client(srv.paths[0], timeouts=(5, 10)) as cl:
        for i in range(20):
            assert cl.CallMethod("Echo", [i]) == [i]


# --- backlog and connect retries ----------------------------------------------------

def test_listen_backlog_takes_a_burst(luxi_server_factory):
    assert constants.LUXI_LISTEN_BACKLOG >= 4096
    srv = luxi_server_factory(_Methods())
    with _LoopBlocked(srv):
        connected, refused = _ConnectNonBlocking(srv.paths[0], 500)
    try:
        assert refused == 0
        assert len(connected) == 500
        # Every one of them is then served
        for sock in connected[::50]:
            sock.setblocking(True)
            sock.settimeout(10)
            sock.sendall(protocol.Frame(protocol.FormatRequest("Echo", [1])))
            splitter = protocol.FrameSplitter()
            while (msg := splitter.Pop()) is None:
                splitter.Feed(sock.recv(4096))
            assert protocol.ParseResponse(msg) == (True, [1], None)
    finally:
        for sock in connected:
            sock.close()


def _FillBacklog(srv):
    connected, refused = _ConnectNonBlocking(srv.paths[0], 50)
    assert refused and connected, "the backlog did not fill"
    return connected


def test_client_retries_while_the_backlog_is_full(luxi_server_factory, monkeypatch):
    srv = luxi_server_factory(_Methods(), backlog=1)
    retried = threading.Event()
    real_wait = luxi_client._WaitBeforeRetry

    def _Wait(delay):
        retried.set()
        real_wait(delay)

    monkeypatch.setattr(luxi_client, "_WaitBeforeRetry", _Wait)
    result: list = []
    with _LoopBlocked(srv):
        queued = _FillBacklog(srv)

        def _Call():
            try:
                with luxi_client.Client(srv.paths[0], timeouts=(20, 10)) as cl:
                    result.append(cl.CallMethod("Echo", ["through"]))
            except BaseException as err:  # reported below
                result.append(err)

        caller = threading.Thread(target=_Call)
        caller.start()
        assert retried.wait(10), "the client did not meet a full backlog"
    caller.join(30)
    for sock in queued:
        sock.close()
    assert not caller.is_alive()
    assert result == [["through"]]


def test_client_reports_a_busy_master_not_a_dead_one(luxi_server_factory):
    srv = luxi_server_factory(_Methods(), backlog=1)
    with _LoopBlocked(srv):
        queued = _FillBacklog(srv)
        try:
            start = time.monotonic()
            with pytest.raises(protocol.TimeoutError, match="too busy") as exc:
                luxi_client.Client(srv.paths[0], timeouts=(0.5, 5)).CallMethod("Echo", [])
            elapsed = time.monotonic() - start
        finally:
            for sock in queued:
                sock.close()
    assert not isinstance(exc.value, protocol.NoMasterError)
    assert 0.5 <= elapsed < 5
