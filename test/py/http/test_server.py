"""ganeti.http: request parsing, responses, connections, the event-loop server."""

from __future__ import annotations

import contextlib
import socket
import threading
import time

import pytest

from ganeti import http
from ganeti.http import message, server

pytestmark = pytest.mark.timeout(120)

_OPTS = message.ServerOptions(max_header_size=1024, max_body_size=100)


def _Head(data: bytes) -> message.HttpServerRequest:
    """Parse a head the way a connection does."""
    data = data[message.SkipEmptyLines(data):]
    end = message.FindHeadEnd(data)
    assert end > 0
    return message.ParseRequestHead(data[:end], _OPTS)


def test_valid_request():
    req = _Head(b"\r\n\nPUT /version HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
                b"X-Thing:  a:b \r\nX-Thing: c\r\n\r\n[]extra")
    assert (req.method, req.path, req.version) == ("PUT", "/version", "HTTP/1.1")
    assert req.headers == {"host": "x", "content-length": "2", "x-thing": "a:b, c"}
    assert message.BodyLength(req, 100) == 2 and req.content_length == 2


def test_bare_lf_line_ends():
    req = _Head(b"get /x HTTP/1.0\nHost: y\n\nbody")
    assert (req.method, req.headers) == ("GET", {"host": "y"})
    assert message.BodyLength(req, 100) == 0 and req.content_length is None
    assert message.FindHeadEnd(b"GET / HTTP/1.1\r\nA: b\n\r\n") == 23
    assert message.FindHeadEnd(b"GET / HTTP/1.1\r\nA: b\r\n") == -1


def test_skip_empty_lines():
    assert message.SkipEmptyLines(b"\r\n\n\r\nGET") == 5
    assert message.SkipEmptyLines(b"\r") == 0  # its LF may follow
    assert message.SkipEmptyLines(b"GET") == 0


class _Echo(server.HttpServerHandler):
    """Answers the body reversed; /crash fails, /missing is not found,
    /block waits for ``release``; /refuse is refused before its body."""

    def __init__(self):
        self.checked = []
        self.release = threading.Event()
        self.running = threading.Semaphore(0)

    def CheckRequest(self, req):
        self.checked.append((req.path, req.body))
        if req.path == "/refuse":
            raise http.HttpForbidden("refused before the body")

    def HandleRequest(self, req):
        if req.path == "/crash":
            raise RuntimeError("bug")
        if req.path == "/missing":
            raise http.HttpNotFound("no such thing")
        if req.path == "/big":
            return server.HttpResponse(body=b"x" * (16 * 1024 * 1024))
        if req.path == "/block":
            self.running.release()
            assert self.release.wait(60)
        return server.HttpResponse(body=req.body[::-1])


def _Server(opts=None, handler=None, **kwargs) -> server.ThreadedHttpServer:
    return server.ThreadedHttpServer(
        handler or _Echo(),
        None, opts or message.ServerOptions(request_timeout=5, max_header_size=1024,
                                            max_body_size=100),
        keepalive_timeout=5, **kwargs)


def _ReadAll(sock: socket.socket) -> bytes:
    chunks = []
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def _Serve(data: bytes, opts=None, handler=None) -> bytes:
    """Serve one connection (plain, on a socket pair) that sends ``data``
    and then closes its sending side; return everything answered."""
    ours, theirs = socket.socketpair()
    ours.settimeout(30)
    ours.sendall(data)
    ours.shutdown(socket.SHUT_WR)
    _Server(opts, handler).ServeConnection(theirs, "peer")
    try:
        return _ReadAll(ours)
    finally:
        ours.close()


@pytest.mark.parametrize("data,code,text", [
    (b"PUT /x\r\n\r\n", 400, "Malformed request line"),
    (b"PUT /x FOO/1.1\r\n\r\n", 400, "Malformed request line"),
    (b"PUT /x HTTP/2\r\n\r\n", 505, "HTTP/2"),
    (b"PUT /\xff HTTP/1.1\r\n\r\n", 400, "not ASCII"),
    (b"PUT /x HTTP/1.1\r\nNoColon\r\n\r\n", 400, "Malformed header"),
    (b"PUT /x HTTP/1.1\r\n: v\r\n\r\n", 400, "Malformed header"),
    (b"PUT /x HTTP/1.1\r\nA : v\r\n\r\n", 400, "Malformed header"),
    (b"PUT /x HTTP/1.1\r\nA: v\r\n folded\r\n\r\n", 400, "Malformed header"),
    (b"PUT /x HTTP/1.1\r\nA: v\rB: w\r\n\r\n", 400, "Bare CR"),
    # A CR starting the request, not an empty line (found by the fuzz
    # suite: the connection waited for more)
    (b"\rGET /x HTTP/1.1\r\n\r\n", 400, "Bare CR"),
    (b"PUT /x HTTP/1.1\r\nContent-Length: x\r\n\r\n", 400, "Invalid Content-Length"),
    (b"PUT /x HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400, "Invalid Content-Length"),
    (b"PUT /x HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400,
     "Invalid Content-Length"),
    (b"PUT /x HTTP/1.1\r\nContent-Length: 101\r\n\r\n", 413,
     "101 bytes exceeds the limit of 100"),
    (b"PUT /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", 411, "Content-Length"),
    (b"PUT /" + b"x" * 2000 + b" HTTP/1.1\r\n\r\n", 431, "longer than 1024 bytes"),
    (b"PUT /x HTTP/1.1\r\n" + b"A: b\r\n" * 300, 431, "longer than 1024 bytes"),
    (b"PUT /x HTTP/1.1\r\n" + b"A: b\n" * 120 + b"\n", 431, "more than 100 header lines"),
])
def test_bad_requests(data, code, text):
    answer = _Serve(data)
    assert answer.startswith(b"HTTP/1.1 %d " % code), answer
    assert text.encode() in answer and b"Connection: close" in answer


def test_line_length_limit():
    opts = message.ServerOptions(max_header_line=100)
    answer = _Serve(b"PUT /x HTTP/1.1\r\nA: " + b"b" * 100 + b"\r\n\r\n", opts)
    assert answer.startswith(b"HTTP/1.1 431 ") and b"more than 100 bytes" in answer
    answer = _Serve(b"PUT /x HTTP/1.1\r\nA: " + b"b" * 90 + b"\r\n\r\n", opts)
    assert answer.startswith(b"HTTP/1.1 200 ")


def test_incomplete_requests_get_no_answer():
    assert _Serve(b"") == b""
    assert _Serve(b"\r\n\r\n") == b""
    assert _Serve(b"PUT /x HTTP/1.1\r\nA: b\r\n") == b""
    assert _Serve(b"PUT /x HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc") == b""


def test_check_before_body():
    handler = _Echo()
    answer = _Serve(b"PUT /refuse HTTP/1.1\r\nContent-Length: 2\r\n\r\n[]", handler=handler)
    assert answer.startswith(b"HTTP/1.1 403 ") and b"refused before the body" in answer
    assert handler.checked == [("/refuse", b"")]


def test_continue_is_sent_before_the_body():
    ours, theirs = socket.socketpair()
    ours.settimeout(10)
    srv = _Server()
    thread = threading.Thread(target=srv.ServeConnection, args=(theirs, "peer"))
    thread.start()
    try:
        ours.sendall(b"PUT /x HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n")
        assert ours.recv(100) == message.CONTINUE
        ours.sendall(b"ab")
        ours.shutdown(socket.SHUT_WR)
        answer = _ReadAll(ours)
        assert answer.startswith(b"HTTP/1.1 200 OK") and answer.endswith(b"\r\n\r\nba")
    finally:
        ours.close()
        thread.join(10)
    assert not thread.is_alive()


def test_format_response():
    data = server.FormatResponse(server.HttpResponse(body=b"[true, 1]",
                                                     headers={"X-A": "b"}), "srv/1")
    head, body = data.split(b"\r\n\r\n", 1)
    lines = head.decode().split("\r\n")
    assert lines[0] == "HTTP/1.1 200 OK"
    assert "Server: srv/1" in lines and "Content-Length: 9" in lines
    assert "Connection: close" in lines and "X-A: b" in lines
    assert f"Content-Type: {http.HTTP_APP_JSON}" in lines
    assert body == b"[true, 1]"


def test_error_response():
    resp = server.ErrorResponse(http.HttpMethodNotAllowed("use PUT",
                                                          headers={"Allow": "PUT"}))
    assert resp.code == 405 and resp.headers == {"Allow": "PUT"}
    assert resp.body == b"405 Method Not Allowed: use PUT\n"
    assert http.HttpNotFound().message == "Not Found"
    assert http.StatusReason(599) == "Unknown"


def test_handle_connection():
    answer = _Serve(b"PUT /x HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc")
    assert answer.startswith(b"HTTP/1.1 200 OK") and answer.endswith(b"\r\n\r\ncba")
    assert b"Connection: keep-alive" in answer
    answer = _Serve(b"PUT /crash HTTP/1.1\r\nContent-Length: 0\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 500 ") and b"bug" in answer
    answer = _Serve(b"garbage\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 400 ")
    answer = _Serve(b"PUT /x HTTP/1.1\nContent-Length: 3\n\nabc")
    assert answer.startswith(b"HTTP/1.1 200 OK") and answer.endswith(b"\r\n\r\ncba")


def test_several_requests_on_one_connection():
    one = b"PUT /x HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"
    two = b"PUT /y HTTP/1.0\nContent-Length: 2\n\nxy"
    answer = _Serve(one + b"\r\n" + one + two + one)
    # The HTTP/1.0 request without keep-alive ends the connection: the
    # fourth request is never answered
    assert answer.count(b"HTTP/1.1 200 OK") == 3
    assert answer.endswith(b"Connection: close\r\n\r\nyx")


def test_keep_alive_rules():
    req = server.HttpServerRequest("PUT", "/", "HTTP/1.1", {})
    assert server.WantsKeepAlive(req)
    req.headers["connection"] = "Close"
    assert not server.WantsKeepAlive(req)
    req = server.HttpServerRequest("PUT", "/", "HTTP/1.0", {})
    assert not server.WantsKeepAlive(req)
    req.headers["connection"] = "keep-alive"
    assert server.WantsKeepAlive(req)


def test_errors_end_the_connection():
    bad = b"PUT /x HTTP/1.1\r\nContent-Length: x\r\n\r\n"
    good = b"PUT /x HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"
    answer = _Serve(bad + good)
    assert answer.startswith(b"HTTP/1.1 400 ") and b"HTTP/1.1 200" not in answer
    # ... and so do the handler's, unless the server keeps them open (not
    # after a bug)
    missing = b"PUT /missing HTTP/1.1\r\nContent-Length: 0\r\n\r\n"
    answer = _Serve(missing + good)
    assert answer.startswith(b"HTTP/1.1 404 ") and b"HTTP/1.1 200" not in answer
    keep = message.ServerOptions(keep_alive_on_error=True)
    answer = _Serve(missing + good, keep)
    assert answer.startswith(b"HTTP/1.1 404 ") and answer.endswith(b"\r\n\r\ncba")
    crash = b"PUT /crash HTTP/1.1\r\nContent-Length: 0\r\n\r\n"
    answer = _Serve(crash + good, keep)
    assert answer.startswith(b"HTTP/1.1 500 ") and b"HTTP/1.1 200" not in answer


def test_slow_client_times_out():
    ours, theirs = socket.socketpair()
    try:
        # The client sends a byte now and then, never the whole head: the
        # deadline covers all reads together, not each one
        ours.sendall(b"PUT /x HTTP/1.1\r\n")
        srv = _Server(message.ServerOptions(request_timeout=0.5))
        thread = threading.Thread(target=srv.ServeConnection, args=(theirs, "peer"))
        start = time.monotonic()
        thread.start()
        try:
            while thread.is_alive() and time.monotonic() - start < 5:
                try:
                    ours.sendall(b"X")
                except OSError:
                    break
                thread.join(0.05)
        finally:
            thread.join(10)
        assert not thread.is_alive()
        assert time.monotonic() - start < 3
        assert _ReadAll(ours).startswith(b"HTTP/1.1 408 ")
    finally:
        ours.close()


def test_slow_body_times_out():
    ours, theirs = socket.socketpair()
    try:
        ours.sendall(b"PUT /x HTTP/1.1\r\nContent-Length: 30\r\n\r\na")
        srv = _Server(message.ServerOptions(request_timeout=0.5))
        start = time.monotonic()
        srv.ServeConnection(theirs, "peer")  # returns once the deadline passed
        assert time.monotonic() - start < 3
        ours.shutdown(socket.SHUT_WR)
        assert _ReadAll(ours).startswith(b"HTTP/1.1 408 ")
    finally:
        ours.close()


def test_idle_connection_is_closed_after_keepalive_timeout():
    ours, theirs = socket.socketpair()
    try:
        ours.sendall(b"PUT /x HTTP/1.1\r\nContent-Length: 1\r\n\r\nz")
        srv = server.ThreadedHttpServer(_Echo(), None,
                                        message.ServerOptions(request_timeout=5),
                                        keepalive_timeout=0.3)
        start = time.monotonic()
        srv.ServeConnection(theirs, "peer")  # returns once the idle time is up
        assert time.monotonic() - start < 3
        assert _ReadAll(ours).endswith(b"\r\n\r\nz")
    finally:
        ours.close()


# --- the server with its event loop and workers -----------------------------------------

@contextlib.contextmanager
def _Running(srv: server.ThreadedHttpServer, address="127.0.0.1"):
    """Serve in a thread on a free loopback port; stop it afterwards."""
    _, port = srv.Bind(address, 0)
    thread = threading.Thread(target=srv.Serve, kwargs={"handle_signals": False},
                              daemon=True)
    thread.start()
    try:
        yield port
    finally:
        srv.RequestStop()
        thread.join(20)
        assert not thread.is_alive()


def _Connect(port, source="127.0.0.1"):
    return socket.create_connection(("127.0.0.1", port), timeout=10,
                                    source_address=(source, 0))


def _Request(port, path="/x", body=b"abc", source="127.0.0.1", timeout=10):
    """One request on a new connection; the answer (status, body)."""
    with _Connect(port, source) as sock:
        sock.settimeout(timeout)
        sock.sendall(b"PUT %s HTTP/1.1\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s"
                     % (path.encode(), len(body), body))
        answer = _ReadAll(sock)
    head, _, payload = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), payload


def _WaitClosed(sock, timeout=10):
    """Whether the server closed ``sock`` within ``timeout`` seconds."""
    sock.settimeout(timeout)
    try:
        return sock.recv(100) == b""
    except (TimeoutError, ConnectionResetError):
        return False


def _Threads() -> int:
    return threading.active_count()


def test_silent_and_slow_clients_take_no_worker():
    # One worker, long timeouts: 100 silent and 100 slow clients (a byte
    # of their head every 20 ms) must not hold up a real request, nor cost
    # a thread each
    srv = _Server(message.ServerOptions(request_timeout=60), max_clients=1)
    with _Running(srv) as port:
        assert _Request(port) == (200, b"cba")
        before = _Threads()
        silent = [_Connect(port) for _ in range(100)]
        slow = [_Connect(port) for _ in range(100)]
        stop = threading.Event()

        def _Trickle():
            for sock in slow:
                sock.sendall(b"PUT /x HTTP/1.1\r\nX-Slow: ")
            while not stop.wait(0.02):
                for sock in slow:
                    sock.sendall(b"x")

        trickler = threading.Thread(target=_Trickle)
        trickler.start()
        try:
            for _ in range(10):
                start = time.monotonic()
                assert _Request(port, timeout=5) == (200, b"cba")
                assert time.monotonic() - start < 1.0
            # The loop and the single worker: no thread per connection
            assert _Threads() <= before + 1  # the trickler
        finally:
            stop.set()
            trickler.join(10)
            for sock in silent + slow:
                sock.close()


def test_full_server_closes_the_longest_waiting_connection():
    srv = _Server(max_connections=10)
    with _Running(srv) as port:
        idle = [_Connect(port) for _ in range(10)]
        try:
            # A new request gets in: the connection waiting longest makes room
            assert _Request(port) == (200, b"cba")
            assert _WaitClosed(idle[0])
            for sock in idle[1:]:
                sock.setblocking(False)
                with pytest.raises(BlockingIOError):
                    sock.recv(1)
        finally:
            for sock in idle:
                sock.close()


def test_connections_per_address_are_limited():
    srv = _Server(max_connections_per_address=3)
    with _Running(srv) as port:
        first = [_Connect(port, "127.0.0.2") for _ in range(3)]
        other = [_Connect(port, "127.0.0.3") for _ in range(3)]
        try:
            # The fourth connection from 127.0.0.2 pushes out the oldest
            # from there, none from 127.0.0.3
            assert _Request(port, source="127.0.0.2") == (200, b"cba")
            assert _WaitClosed(first[0])
            for sock in first[1:] + other:
                sock.setblocking(False)
                with pytest.raises(BlockingIOError):
                    sock.recv(1)
        finally:
            for sock in first + other:
                sock.close()


def test_busy_connections_are_not_closed_for_new_ones():
    handler = _Echo()
    srv = _Server(handler=handler, max_connections=1, max_clients=2)
    with _Running(srv) as port:
        result = []
        blocked = threading.Thread(target=lambda: result.append(_Request(port, "/block")))
        blocked.start()
        try:
            assert handler.running.acquire(timeout=10)
            # The only connection is being served: a new one is refused
            with _Connect(port) as sock:
                assert _WaitClosed(sock)
        finally:
            handler.release.set()
            blocked.join(10)
        assert result == [(200, b"cba")]
        assert _Request(port) == (200, b"cba")


def test_client_not_reading_its_answer_holds_no_worker():
    opts = message.ServerOptions(write_timeout=1.0)
    srv = _Server(opts, max_clients=1)
    with _Running(srv) as port:
        with _Connect(port) as lazy:
            lazy.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            lazy.sendall(b"PUT /big HTTP/1.1\r\nContent-Length: 0\r\n\r\n")
            start = time.monotonic()
            # The single worker is free at once for others
            for _ in range(5):
                assert _Request(port) == (200, b"cba")
            assert time.monotonic() - start < 2.0
            # The answer nobody takes is given up after the write timeout
            # (no event tells: look at the server's connections)
            loop = srv._loop  # pylint: disable=protected-access
            while loop.conns and time.monotonic() - start < 10:
                time.sleep(0.05)
            assert not loop.conns
            assert time.monotonic() - start < 5


def test_oversized_body_is_answered_before_it_is_sent():
    srv = _Server()
    with _Running(srv) as port:
        with _Connect(port) as sock:
            sock.sendall(b"PUT /x HTTP/1.1\r\nContent-Length: 5000000\r\n\r\n")
            answer = sock.recv(4096)
            assert answer.startswith(b"HTTP/1.1 413 ")
            # A client sending its body regardless is not reset before it
            # reads the answer: what it sends is read and dropped
            sock.sendall(b"x" * 5000000)
            assert _ReadAll(sock) == b""


def test_graceful_stop_answers_running_requests():
    handler = _Echo()
    srv = _Server(handler=handler, max_clients=2)
    _, port = srv.Bind("127.0.0.1", 0)
    thread = threading.Thread(target=srv.Serve, kwargs={"handle_signals": False})
    thread.start()
    result = []
    idle = _Connect(port)
    blocked = threading.Thread(target=lambda: result.append(_Request(port, "/block")))
    blocked.start()
    try:
        assert handler.running.acquire(timeout=10)
        srv.RequestGracefulStop()
        # Idle connections go at once; the running request is answered
        assert _WaitClosed(idle)
        assert thread.is_alive()
        handler.release.set()
        blocked.join(10)
        thread.join(10)
        assert not thread.is_alive()
        assert result == [(200, b"cba")]
    finally:
        handler.release.set()
        srv.RequestStop()
        thread.join(10)
        idle.close()
