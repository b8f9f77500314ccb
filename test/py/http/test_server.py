"""ganeti.http.server: request parsing, responses, connection handling."""

from __future__ import annotations

import io
import socket

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


def _Serve(data: bytes, opts=None) -> bytes:
    """Run HandleConnection (plain TCP) on a socket pair; return the answer."""
    ours, theirs = socket.socketpair()
    # The whole request fits in the socket buffer, so one thread suffices
    # (HandleConnection uses SIGALRM, which only the main thread may)
    ours.sendall(data)
    ours.shutdown(socket.SHUT_WR)
    server.HandleConnection(theirs, "peer", _Echo(), None,
                            opts or server.ServerOptions(request_timeout=5))
    chunks = []
    while True:
        chunk = ours.recv(65536)
        if not chunk:
            break
        chunks.append(chunk)
    ours.close()
    return b"".join(chunks)


def test_handle_connection():
    answer = _Serve(b"PUT /x HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc")
    assert answer.startswith(b"HTTP/1.1 200 OK") and answer.endswith(b"\r\n\r\ncba")
    answer = _Serve(b"PUT /crash HTTP/1.1\r\nContent-Length: 0\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 500 ") and b"bug" in answer
    answer = _Serve(b"garbage\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 400 ")
    assert _Serve(b"") == b""


def test_slow_client_times_out():
    ours, theirs = socket.socketpair()
    try:
        ours.sendall(b"PUT /x HTTP/1.1\r\nContent-Length: 3\r\n\r\na")
        code = server.HandleConnection(theirs, "peer", _Echo(), None,
                                       server.ServerOptions(request_timeout=0.3))
        assert code == http.HTTP_REQUEST_TIMEOUT
        assert ours.recv(1000).startswith(b"HTTP/1.1 408 ")
    finally:
        ours.close()
