"""ganeti.http.server: request parsing, responses, connection handling."""

from __future__ import annotations

import io
import socket
import threading
import time

import pytest

from ganeti import http
from ganeti.http import server


def _Read(data: bytes, max_header=1024, max_body=100, check_fn=None, continue_fn=None):
    return server.ReadRequest(io.BytesIO(data), max_header, max_body,
                              check_fn=check_fn, continue_fn=continue_fn)


def test_valid_request():
    req = _Read(b"\r\nPUT /version HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
                b"X-Thing:  a:b \r\n\r\n[]extra")
    assert (req.method, req.path, req.version) == ("PUT", "/version", "HTTP/1.1")
    assert req.headers == {"host": "x", "content-length": "2", "x-thing": "a:b"}
    assert req.body == b"[]" and req.content_length == 2


def test_request_without_body():
    req = _Read(b"get /x HTTP/1.0\n\n")
    assert req.method == "GET" and req.body == b"" and req.content_length is None


def test_empty_connection():
    assert _Read(b"") is None


@pytest.mark.parametrize("data,exc,text", [
    (b"PUT /x\r\n\r\n", http.HttpBadRequest, "Malformed request line"),
    (b"PUT /x FOO/1.1\r\n\r\n", http.HttpBadRequest, "Malformed request line"),
    (b"PUT /x HTTP/2\r\n\r\n", http.HttpVersionNotSupported, "HTTP/2"),
    (b"PUT /\xff HTTP/1.1\r\n\r\n", http.HttpBadRequest, "not ASCII"),
    (b"PUT /x HTTP/1.1\r\nNoColon\r\n\r\n", http.HttpBadRequest, "Malformed header"),
    (b"PUT /x HTTP/1.1\r\n: v\r\n\r\n", http.HttpBadRequest, "Malformed header"),
    (b"PUT /x HTTP/1.1\r\nA: b\r\n", http.HttpBadRequest, "closed in the request"),
    (b"PUT /x HTTP/1.1\r\nContent-Length: x\r\n\r\n", http.HttpBadRequest,
     "Invalid Content-Length"),
    (b"PUT /x HTTP/1.1\r\nContent-Length: -1\r\n\r\n", http.HttpBadRequest,
     "Invalid Content-Length"),
    (b"PUT /x HTTP/1.1\r\nContent-Length: 101\r\n\r\n", http.HttpRequestEntityTooLarge,
     "101 bytes exceeds the limit of 100"),
    (b"PUT /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", http.HttpLengthRequired,
     "Content-Length"),
    (b"PUT /x HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc", http.HttpBadRequest,
     "after 3 of 10 body bytes"),
    (b"PUT /" + b"x" * 2000 + b" HTTP/1.1\r\n\r\n", http.HttpHeadersTooLarge, "too long"),
    (b"PUT /x HTTP/1.1\r\n" + b"A: b\r\n" * 300 + b"\r\n", http.HttpHeadersTooLarge,
     "too long"),
])
def test_bad_requests(data, exc, text):
    with pytest.raises(exc) as err:
        _Read(data)
    assert text in err.value.message


def test_check_before_body_and_continue():
    seen = []

    def _Check(req):
        seen.append(req.body)
        raise http.HttpForbidden("no")

    with pytest.raises(http.HttpForbidden):
        _Read(b"PUT /x HTTP/1.1\r\nContent-Length: 2\r\n\r\n[]", check_fn=_Check)
    assert seen == [b""]
    sent = []
    req = _Read(b"PUT /x HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n[]",
                continue_fn=lambda: sent.append(1))
    assert sent == [1] and req.body == b"[]"


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


class _Echo(server.HttpServerHandler):
    def HandleRequest(self, req):
        if req.path == "/crash":
            raise RuntimeError("bug")
        return server.HttpResponse(body=req.body[::-1])


def _Server(opts=None) -> server.ThreadedHttpServer:
    return server.ThreadedHttpServer(
        _Echo(), None, opts or server.ServerOptions(request_timeout=5),
        keepalive_timeout=5)


def _ReadAll(sock: socket.socket) -> bytes:
    chunks = []
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def _Serve(data: bytes, opts=None) -> bytes:
    """Serve one connection (plain, on a socket pair) that sends ``data``
    and then closes its sending side; return everything answered."""
    ours, theirs = socket.socketpair()
    ours.sendall(data)
    ours.shutdown(socket.SHUT_WR)
    _Server(opts).ServeConnection(theirs, "peer")
    try:
        return _ReadAll(ours)
    finally:
        ours.close()


def test_handle_connection():
    answer = _Serve(b"PUT /x HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc")
    assert answer.startswith(b"HTTP/1.1 200 OK") and answer.endswith(b"\r\n\r\ncba")
    assert b"Connection: keep-alive" in answer
    answer = _Serve(b"PUT /crash HTTP/1.1\r\nContent-Length: 0\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 500 ") and b"bug" in answer
    answer = _Serve(b"garbage\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 400 ")
    assert _Serve(b"") == b""


def test_several_requests_on_one_connection():
    one = b"PUT /x HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"
    two = b"PUT /y HTTP/1.0\r\nContent-Length: 2\r\n\r\nxy"
    answer = _Serve(one + one + two + one)
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


def test_slow_client_times_out():
    ours, theirs = socket.socketpair()
    try:
        # The client sends a byte now and then, never the whole body: the
        # deadline covers all reads together, not each one
        ours.sendall(b"PUT /x HTTP/1.1\r\nContent-Length: 30\r\n\r\na")
        srv = _Server(server.ServerOptions(request_timeout=0.5))
        thread = threading.Thread(target=srv.ServeConnection, args=(theirs, "peer"))
        start = time.monotonic()
        thread.start()
        try:
            while thread.is_alive() and time.monotonic() - start < 5:
                try:
                    ours.sendall(b"b")
                except OSError:
                    break
                thread.join(0.1)
        finally:
            thread.join(10)
        assert not thread.is_alive()
        assert time.monotonic() - start < 3
        assert _ReadAll(ours).startswith(b"HTTP/1.1 408 ")
    finally:
        ours.close()


def test_idle_connection_is_closed_after_keepalive_timeout():
    ours, theirs = socket.socketpair()
    try:
        ours.sendall(b"PUT /x HTTP/1.1\r\nContent-Length: 1\r\n\r\nz")
        srv = server.ThreadedHttpServer(_Echo(), None,
                                        server.ServerOptions(request_timeout=5),
                                        keepalive_timeout=0.3)
        start = time.monotonic()
        srv.ServeConnection(theirs, "peer")  # returns once the idle time is up
        assert time.monotonic() - start < 3
        assert _ReadAll(ours).endswith(b"\r\n\r\nz")
    finally:
        ours.close()
