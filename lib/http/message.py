"""HTTP/1.x requests and responses as a server reads and writes them.

What a request is (:class:`HttpServerRequest`), what a handler answers
(:class:`HttpResponse`), the limits a server applies (:class:`ServerOptions`)
and the pure functions between them and bytes: finding the end of a
request head in what was received, parsing it, checking the body it
announces, formatting an answer. Nothing here touches a socket; see
:mod:`ganeti.http.connection` for that.

Lines may end in CRLF or, as most servers accept, in a bare LF. A bare CR
inside a line, white space before a header's colon and folded header
lines are refused (400): different readings of them are what request
smuggling exploits. Bodies need a ``Content-Length``; chunked bodies get
411.
"""

from __future__ import annotations

import email.utils
import re
import time
from dataclasses import dataclass, field
from typing import Any

from ganeti import http

_SUPPORTED_VERSIONS = frozenset(["HTTP/1.0", "HTTP/1.1"])
# The blank line ending a head; lines end in LF, with or without CR
_HEAD_END = re.compile(rb"\n\r?\n")


@dataclass
class HttpServerRequest:
    """One parsed request.

    Header names are lower-cased. ``peer_cert`` is the DER encoding of the
    verified client certificate, or None when the client sent none.
    ``received`` is when its first byte arrived (``time.monotonic``).
    """
    method: str
    path: str
    version: str
    headers: dict[str, str]
    body: bytes = b""
    peer_address: Any = None
    peer_cert: bytes | None = None
    received: float = 0.0

    @property
    def content_length(self) -> int | None:
        """The declared body length, or None when none was declared."""
        value = self.headers.get("content-length")
        return None if value is None else int(value)


@dataclass
class HttpResponse:
    """What a handler answers."""
    code: int = http.HTTP_OK
    body: bytes = b""
    content_type: str = http.HTTP_APP_JSON
    headers: dict[str, str] = field(default_factory=dict)


def ErrorResponse(err: http.HttpException) -> HttpResponse:
    """Turn an HttpException into a plain-text response."""
    body = f"{err.code} {http.StatusReason(err.code)}: {err.message}\n"
    return HttpResponse(code=err.code, body=body.encode("utf-8"),
                        content_type=http.HTTP_TEXT_PLAIN, headers=err.headers)


class HttpServerHandler:
    """Base class of request handlers; subclasses define HandleRequest.

    ``CheckRequest`` and ``ErrorResponse`` run in the server's event loop
    thread and must not block; ``HandleRequest`` runs in a worker thread
    (or, in the forking server, inline in the child serving the
    connection).
    """

    def HandleRequest(self, req: HttpServerRequest) -> HttpResponse:
        """Answer one request, or raise an HttpException."""
        raise NotImplementedError

    def CheckRequest(self, req: HttpServerRequest) -> None:
        """Check a request's line and headers before its body is read.

        Raise an HttpException to refuse it (wrong method, unknown path)
        without reading the body. The default accepts all.
        """

    def ErrorResponse(self, err: http.HttpException) -> HttpResponse:
        """The answer for an error (the default: plain text)."""
        return ErrorResponse(err)


@dataclass
class ServerOptions:
    """Limits applied to every connection (times in seconds).

    ``request_timeout`` bounds the time from the first byte of a request to
    the last byte of its body, however the bytes trickle in; the TLS
    handshake gets ``handshake_timeout`` (default: ``request_timeout``)
    from the moment the connection is accepted; a connection waits at most
    ``keepalive_timeout`` for the next request, and ``request_timeout``
    for its first. An answer must be taken by the client within
    ``write_timeout``. After an error answer the server reads and drops
    what the client still sends, for at most ``drain_timeout`` and
    ``max_drain`` bytes, so that closing does not reset the connection
    before the client read the answer.
    """
    server_name: str = http.HTTP_GANETI_VERSION
    request_timeout: float = 60.0
    handshake_timeout: float | None = None
    keepalive_timeout: float = 120.0
    write_timeout: float = 60.0
    max_header_size: int = 64 * 1024
    max_header_line: int | None = None
    max_header_count: int = 100
    max_body_size: int = 64 * 1024 * 1024
    require_client_cert: bool = True
    #: keep the connection open after an error answered by the handler
    keep_alive_on_error: bool = False
    drain_timeout: float = 2.0
    max_drain: int = 64 * 1024 * 1024

    def GetHandshakeTimeout(self) -> float:
        """The handshake timeout, defaulting to the request timeout."""
        if self.handshake_timeout is None:
            return self.request_timeout
        return self.handshake_timeout


def SkipEmptyLines(buf: bytes | bytearray) -> int:
    """How many bytes of empty lines ``buf`` starts with.

    RFC 9112 (2.2) asks servers to ignore empty lines before a request
    line (some clients send a CRLF after a body).
    """
    pos = 0
    size = len(buf)
    while pos < size:
        if buf[pos] == 0x0A:  # LF
            pos += 1
        elif buf[pos] == 0x0D and pos + 1 < size and buf[pos + 1] == 0x0A:
            pos += 2
        elif buf[pos] == 0x0D and pos + 1 == size:
            break  # a CR whose LF has not arrived yet
        else:
            break
    return pos


def FindHeadEnd(buf: bytes | bytearray, start: int = 0) -> int:
    """The length of the request head at the start of ``buf``, or -1.

    The head ends after the first empty line; ``start`` is where to begin
    looking (what was searched before, less three bytes).
    """
    match = _HEAD_END.search(buf, max(0, start))
    return -1 if match is None else match.end()


def ParseRequestHead(head: bytes, opts: ServerOptions) -> HttpServerRequest:
    """Parse a request line and its header lines (the blank line included).

    Raises HttpException (400, 431, 505) for what is malformed or too big.
    """
    max_line = opts.max_header_line or opts.max_header_size
    lines = head.rstrip(b"\r\n").split(b"\n")
    if len(lines) > opts.max_header_count + 1:
        raise http.HttpHeadersTooLarge(
            f"Request head too long: more than {opts.max_header_count}"
            " header lines")
    for idx, line in enumerate(lines):
        if line.endswith(b"\r"):
            line = lines[idx] = line[:-1]
        if len(line) > max_line:
            raise http.HttpHeadersTooLarge(
                f"Request line or header too long (more than {max_line} bytes)")
        if b"\r" in line:
            raise http.HttpBadRequest("Bare CR in the request head")
    try:
        text = lines[0].decode("ascii")
    except UnicodeDecodeError as err:
        raise http.HttpBadRequest("Request line is not ASCII") from err
    parts = text.split()
    if len(parts) != 3 or not parts[2].startswith("HTTP/"):
        raise http.HttpBadRequest(f"Malformed request line: {text[:100]!r}")
    method, path, version = parts
    if version not in _SUPPORTED_VERSIONS:
        raise http.HttpVersionNotSupported(f"HTTP version {version} not supported")

    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.decode("latin-1").partition(":")
        if not sep or not name or name != name.strip():
            # No name, white space before the colon, or a folded line
            raise http.HttpBadRequest(f"Malformed header line: {line[:100]!r}")
        key = name.lower()
        value = value.strip()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    return HttpServerRequest(method=method.upper(), path=path, version=version,
                             headers=headers)


def BodyLength(req: HttpServerRequest, max_body_size: int) -> int:
    """The length of the body ``req`` announces (0 for none).

    Raises 411 for chunked or otherwise encoded bodies, 400 for an invalid
    ``Content-Length`` and 413 for one over ``max_body_size``: all before
    a byte of the body is read.
    """
    if "transfer-encoding" in req.headers:
        raise http.HttpLengthRequired(
            "Chunked or encoded request bodies are not supported;"
            " send the body with a Content-Length")
    text = req.headers.get("content-length")
    if text is None:
        return 0
    if not (text.isascii() and text.isdigit()):
        raise http.HttpBadRequest(f"Invalid Content-Length {text[:40]!r}")
    length = int(text)
    if length > max_body_size:
        raise http.HttpRequestEntityTooLarge(
            f"Request body of {length} bytes exceeds the limit of"
            f" {max_body_size} bytes")
    return length


def WantsContinue(req: HttpServerRequest) -> bool:
    """Whether the client waits for ``100 Continue`` before its body."""
    return (req.version == "HTTP/1.1"
            and req.headers.get("expect", "").lower() == "100-continue")


def WantsKeepAlive(req: HttpServerRequest) -> bool:
    """Whether the client wants the connection kept open after this request.

    HTTP/1.1 connections stay open unless the client sends ``Connection:
    close``; HTTP/1.0 ones only with ``Connection: keep-alive``.
    """
    tokens = {token.strip().lower()
              for token in req.headers.get("connection", "").split(",")}
    if "close" in tokens:
        return False
    return req.version == "HTTP/1.1" or "keep-alive" in tokens


_date_cache: tuple[int, str] = (0, "")


def HttpDate(now: float | None = None) -> str:
    """The ``Date`` header value for now (formatted once per second)."""
    global _date_cache  # pylint: disable=global-statement
    second = int(time.time() if now is None else now)
    cached = _date_cache
    if cached[0] != second:
        cached = _date_cache = (second, email.utils.formatdate(second, usegmt=True))
    return cached[1]


def FormatResponse(resp: HttpResponse, server_name: str,
                   keep_alive: bool = False) -> bytes:
    """Encode a response with its status line and headers."""
    head = [f"HTTP/1.1 {resp.code} {http.StatusReason(resp.code)}",
            f"{http.HTTP_SERVER}: {server_name}",
            f"Date: {HttpDate()}",
            f"{http.HTTP_CONTENT_TYPE}: {resp.content_type}",
            f"{http.HTTP_CONTENT_LENGTH}: {len(resp.body)}",
            f"{http.HTTP_CONNECTION}: {'keep-alive' if keep_alive else 'close'}"]
    head.extend(f"{name}: {value}" for name, value in resp.headers.items())
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + resp.body


CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
