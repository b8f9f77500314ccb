"""A threaded HTTPS server with kept-open connections (the node daemon's).

The main thread accepts connections; each connection is served by a thread
of its own, which does the TLS handshake and then answers requests one
after the other until the client closes the connection, asks to close it,
an error is answered or the connection stays idle too long. A client making
many calls therefore pays for the TCP and TLS set-up once. The number of
handlers running at once is capped (``max_clients``); idle connections
take no slot. A connection closed before it sent anything (a reachability
check of cluster verify) is dropped quietly. A slow client cannot stretch
the time it has to send a request: one deadline bounds all its reads.

Requests are HTTP/1.0 or 1.1 with a ``Content-Length`` body. A handler
answers with an :class:`HttpResponse` or raises an
:class:`ganeti.http.HttpException` to answer with an error status.
"""

from __future__ import annotations

import email.utils
import errno
import io
import logging
import os
import selectors
import signal
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from typing import Any, BinaryIO
from collections.abc import Callable

from ganeti import http

_SUPPORTED_VERSIONS = frozenset(["HTTP/1.0", "HTTP/1.1"])
_MAX_DRAIN_BYTES = 1024 * 1024
_MAX_DRAIN_TIME = 1.0


@dataclass
class HttpServerRequest:
    """One parsed request.

    Header names are lower-cased. ``peer_cert`` is the DER encoding of the
    verified client certificate, or None when the client sent none.
    """
    method: str
    path: str
    version: str
    headers: dict[str, str]
    body: bytes = b""
    peer_address: Any = None
    peer_cert: bytes | None = None

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


class HttpServerHandler:
    """Base class of request handlers; subclasses define HandleRequest."""

    def HandleRequest(self, req: HttpServerRequest) -> HttpResponse:
        """Answer one request, or raise an HttpException."""
        raise NotImplementedError

    def CheckRequest(self, req: HttpServerRequest) -> None:
        """Check a request's line and headers before its body is read.

        Raise an HttpException to refuse it (wrong method, unknown path,
        body too large) without reading the body. The default accepts all.
        """


class _ReadTimeout(Exception):
    """The client took longer than allowed to send its request."""


def _ReadLine(rfile: BinaryIO, budget: int) -> bytes:
    line = rfile.readline(budget + 1)
    if len(line) > budget:
        raise http.HttpHeadersTooLarge("Request line or headers too long")
    return line


def ReadRequest(rfile: BinaryIO, max_header_size: int, max_body_size: int,
                check_fn: Callable[[HttpServerRequest], None] | None = None,
                continue_fn: Callable[[], None] | None = None,
                ) -> HttpServerRequest | None:
    """Read one request from ``rfile``.

    Returns None if the client closed the connection without sending
    anything. ``check_fn`` sees the request before its body is read and may
    raise to refuse it; ``continue_fn`` is called to send ``100 Continue``
    when the client waits for it. Raises HttpException for malformed
    requests, bodies over ``max_body_size`` and unsupported encodings.
    """
    budget = max_header_size
    line = _ReadLine(rfile, budget)
    while line in (b"\r\n", b"\n"):  # tolerate empty lines before a request
        line = _ReadLine(rfile, budget)
    if not line:
        return None
    budget -= len(line)
    try:
        text = line.decode("ascii").rstrip("\r\n")
    except UnicodeDecodeError as err:
        raise http.HttpBadRequest("Request line is not ASCII") from err
    parts = text.split()
    if len(parts) != 3:
        raise http.HttpBadRequest(f"Malformed request line: {text[:100]!r}")
    method, path, version = parts
    if not version.startswith("HTTP/"):
        raise http.HttpBadRequest(f"Malformed request line: {text[:100]!r}")
    if version not in _SUPPORTED_VERSIONS:
        raise http.HttpVersionNotSupported(f"HTTP version {version} not supported")

    headers: dict[str, str] = {}
    while True:
        line = _ReadLine(rfile, budget)
        budget -= len(line)
        if not line:
            raise http.HttpBadRequest("Connection closed in the request headers")
        if line in (b"\r\n", b"\n"):
            break
        try:
            name, value = line.decode("latin-1").split(":", 1)
        except ValueError as err:
            raise http.HttpBadRequest("Malformed header line") from err
        name = name.strip().lower()
        if not name:
            raise http.HttpBadRequest("Malformed header line")
        headers[name] = value.strip()

    req = HttpServerRequest(method=method.upper(), path=path, version=version,
                            headers=headers)
    if "transfer-encoding" in headers:
        raise http.HttpLengthRequired(
            "Chunked or encoded request bodies are not supported;"
            " send the body with a Content-Length")
    length_text = headers.get("content-length")
    length = 0
    if length_text is not None:
        try:
            length = int(length_text)
        except ValueError as err:
            raise http.HttpBadRequest(f"Invalid Content-Length {length_text!r}") from err
        if length < 0:
            raise http.HttpBadRequest(f"Invalid Content-Length {length_text!r}")
        if length > max_body_size:
            raise http.HttpRequestEntityTooLarge(
                f"Request body of {length} bytes exceeds the limit of"
                f" {max_body_size} bytes")
    if check_fn:
        check_fn(req)
    if length:
        if continue_fn and headers.get("expect", "").lower() == "100-continue":
            continue_fn()
        body = rfile.read(length)
        if len(body) != length:
            raise http.HttpBadRequest(
                f"Connection closed after {len(body)} of {length} body bytes")
        req.body = body
    return req


def FormatResponse(resp: HttpResponse, server_name: str,
                   keep_alive: bool = False) -> bytes:
    """Encode a response with its status line and headers."""
    head = [f"HTTP/1.1 {resp.code} {http.StatusReason(resp.code)}",
            f"{http.HTTP_SERVER}: {server_name}",
            f"Date: {email.utils.formatdate(usegmt=True)}",
            f"{http.HTTP_CONTENT_TYPE}: {resp.content_type}",
            f"{http.HTTP_CONTENT_LENGTH}: {len(resp.body)}",
            f"{http.HTTP_CONNECTION}: {'keep-alive' if keep_alive else 'close'}"]
    head.extend(f"{name}: {value}" for name, value in resp.headers.items())
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + resp.body


def ErrorResponse(err: http.HttpException) -> HttpResponse:
    """Turn an HttpException into a plain-text response."""
    body = f"{err.code} {http.StatusReason(err.code)}: {err.message}\n"
    return HttpResponse(code=err.code, body=body.encode("utf-8"),
                        content_type=http.HTTP_TEXT_PLAIN, headers=err.headers)


@dataclass
class ServerOptions:
    """Limits applied to every connection."""
    server_name: str = http.HTTP_GANETI_VERSION
    request_timeout: float = 60.0
    max_header_size: int = 64 * 1024
    max_body_size: int = 64 * 1024 * 1024
    require_client_cert: bool = True


def _Drain(conn: socket.socket) -> None:
    """Read what the client still sends, so closing does not reset it.

    A client refused before its body was read is usually still sending;
    closing with unread data would make the kernel reset the connection and
    the client might never see our answer. At most ``_MAX_DRAIN_BYTES`` and
    ``_MAX_DRAIN_TIME`` seconds: a client dripping bytes cannot hold on.
    """
    deadline = time.monotonic() + _MAX_DRAIN_TIME
    try:
        drained = 0
        while drained < _MAX_DRAIN_BYTES:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            conn.settimeout(min(remaining, 0.5))
            data = conn.recv(65536)
            if not data:
                break
            drained += len(data)
    except (OSError, ValueError):
        pass


def _Close(conn: socket.socket) -> None:
    try:
        conn.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    conn.close()


def Listen(address: str, port: int, backlog: int = 128) -> socket.socket:
    """A non-blocking socket listening on address:port (0: any free port)."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((address, port))
        sock.listen(backlog)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


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


class _DeadlineReader(io.RawIOBase):
    """Socket reads bounded by one deadline for all of them.

    A client that drips its request a byte at a time cannot stretch the
    time it is given: every read waits at most until ``deadline``.
    """

    def __init__(self, sock: socket.socket):
        super().__init__()
        self._sock = sock
        self.deadline: float | None = None

    def readable(self) -> bool:
        return True

    def readinto(self, buf: Any) -> int:
        if self.deadline is not None:
            remaining = self.deadline - time.monotonic()
            if remaining <= 0:
                raise _ReadTimeout()
            self._sock.settimeout(remaining)
        try:
            return self._sock.recv_into(buf)
        except TimeoutError as err:
            raise _ReadTimeout() from err


def _Shutdown(sock: socket.socket) -> None:
    """Shut a connection down from another thread.

    The plain socket call (not the TLS one) wakes up a thread blocked
    reading from it without touching the TLS state that thread owns.
    """
    try:
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except OSError:
        pass


class ThreadedHttpServer:
    """Serve each connection in a thread, many requests per connection.

    Connections are kept open between requests (HTTP/1.1 keep-alive) for
    ``keepalive_timeout`` seconds, so a client making many calls pays for
    the TCP and TLS set-up once. At most ``max_clients`` handlers run at
    the same time; further requests wait, already read, for a free slot.
    Idle connections take no slot. A connection closed before it sent
    anything (a reachability check) is dropped quietly.

    Handlers run in threads of the daemon's process: they must not change
    process-wide state (working directory, environment, signal handlers).

    ``Serve`` returns after SIGTERM or SIGINT, closing every connection
    (requests still running are abandoned with their threads), or after
    SIGUSR1 once the running requests are answered (at most
    ``term_timeout`` seconds).
    """

    def __init__(self, handler: HttpServerHandler,
                 ssl_context: ssl.SSLContext | None,
                 opts: ServerOptions | None = None,
                 max_clients: int = 20,
                 max_connections: int = 1024,
                 keepalive_timeout: float = 120.0,
                 term_timeout: float = 10.0):
        self.handler = handler
        self.ssl_context = ssl_context
        self.opts = opts or ServerOptions()
        self.max_clients = max(1, max_clients)
        self.max_connections = max(1, max_connections)
        self.keepalive_timeout = keepalive_timeout
        self.term_timeout = term_timeout
        self._slots = threading.BoundedSemaphore(self.max_clients)
        self._lock = threading.Lock()
        self._idle_cond = threading.Condition(self._lock)
        #: open connections -> whether a request on it is being handled
        self._conns: dict[socket.socket, bool] = {}
        self._sock: socket.socket | None = None
        self._stop = False
        self._graceful = False
        self._wakeup: tuple[int, int] | None = None

    def Bind(self, address: str, port: int, backlog: int = 128) -> tuple[str, int]:
        """Listen on address:port (port 0 picks a free one); return both."""
        self._sock = Listen(address, port, backlog)
        bound = self._sock.getsockname()
        return bound[0], bound[1]

    def RequestStop(self, *_args: Any) -> None:
        """Ask ``Serve`` to return (safe to call from a signal handler)."""
        self._stop = True

    def RequestGracefulStop(self, *_args: Any) -> None:
        """Ask ``Serve`` to return once the running requests are done."""
        self._graceful = True
        self._stop = True

    def _InstallSignals(self) -> None:
        rfd, wfd = os.pipe()
        os.set_blocking(rfd, False)
        os.set_blocking(wfd, False)
        self._wakeup = (rfd, wfd)
        signal.set_wakeup_fd(wfd)
        signal.signal(signal.SIGTERM, self.RequestStop)
        signal.signal(signal.SIGINT, self.RequestStop)
        signal.signal(signal.SIGUSR1, self.RequestGracefulStop)

    def _RestoreSignals(self) -> None:
        signal.set_wakeup_fd(-1)
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1):
            signal.signal(signum, signal.SIG_DFL)
        if self._wakeup:
            for fd in self._wakeup:
                os.close(fd)
            self._wakeup = None

    def Serve(self) -> None:
        """Accept connections until asked to stop; then close them."""
        assert self._sock is not None, "Bind first"
        self._InstallSignals()
        assert self._wakeup
        sel = selectors.DefaultSelector()
        sel.register(self._wakeup[0], selectors.EVENT_READ)
        sel.register(self._sock, selectors.EVENT_READ)
        try:
            while not self._stop:
                try:
                    events = sel.select(1.0)
                except InterruptedError:
                    continue
                for key, _ in events:
                    if key.fileobj is self._sock and not self._stop:
                        self._AcceptOne()
                    elif key.fileobj == self._wakeup[0]:
                        try:
                            while os.read(self._wakeup[0], 512):
                                pass
                        except BlockingIOError:
                            pass
        finally:
            sel.close()
            self._sock.close()
            self._CloseAll()
            self._RestoreSignals()

    def _AcceptOne(self) -> None:
        assert self._sock is not None
        try:
            conn, peer = self._sock.accept()
        except (BlockingIOError, InterruptedError, ConnectionAbortedError):
            return
        except OSError as err:
            logging.error("Cannot accept a connection: %s", err)
            if err.errno in (errno.EMFILE, errno.ENFILE):
                time.sleep(0.1)
            return
        with self._lock:
            full = len(self._conns) >= self.max_connections
            if not full:
                self._conns[conn] = False
        if full:
            logging.warning("Refusing a connection from %s: %d connections"
                            " open", peer, self.max_connections)
            _Close(conn)
            return
        conn.setblocking(True)
        thread = threading.Thread(target=self._Connection, args=(conn, peer),
                                  name=f"http-{peer}", daemon=True)
        try:
            thread.start()
        except RuntimeError as err:
            logging.error("Cannot start a thread for %s: %s", peer, err)
            self._Forget(conn)
            _Close(conn)

    def _Forget(self, sock: socket.socket) -> None:
        with self._lock:
            self._conns.pop(sock, None)
            self._idle_cond.notify_all()

    def _SetBusy(self, sock: socket.socket, busy: bool) -> None:
        with self._lock:
            if sock in self._conns:
                self._conns[sock] = busy
            if not busy:
                self._idle_cond.notify_all()

    def _CloseAll(self) -> None:
        """Shut the connections down: idle ones now, busy ones after their
        request when stopping gracefully (at most ``term_timeout``)."""
        deadline = time.monotonic() + self.term_timeout
        with self._lock:
            while True:
                for sock, busy in list(self._conns.items()):
                    if not busy or not self._graceful:
                        _Shutdown(sock)
                if not self._conns or not self._graceful:
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._idle_cond.wait(min(remaining, 0.5))
            running = sum(self._conns.values())
        if running:
            logging.warning("Stopping with %d request(s) still running%s", running,
                            " after the grace time" if self._graceful else "")

    def ServeConnection(self, conn: socket.socket, peer: Any) -> None:
        """Serve an accepted connection until it ends (in the calling thread)."""
        with self._lock:
            self._conns.setdefault(conn, False)
        self._Connection(conn, peer)

    def _Connection(self, conn: socket.socket, peer: Any) -> None:
        sock: socket.socket = conn
        try:
            if conn.family in (socket.AF_INET, socket.AF_INET6):
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn.settimeout(self.opts.request_timeout)
            try:
                if not conn.recv(1, socket.MSG_PEEK):
                    return  # a reachability check: closed without a word
            except TimeoutError:
                logging.warning("Connection from %s sent nothing in %.0f s",
                                peer, self.opts.request_timeout)
                return
            peer_cert = None
            if self.ssl_context is not None:
                try:
                    sock = self.ssl_context.wrap_socket(conn, server_side=True)
                except (ssl.SSLError, OSError) as err:
                    logging.warning("TLS handshake with %s failed: %s", peer, err)
                    return
                with self._lock:
                    if self._conns.pop(conn, None) is not None:
                        self._conns[sock] = False
                if self._stop:
                    return
                peer_cert = sock.getpeercert(binary_form=True)  # type: ignore[attr-defined]
            reader = _DeadlineReader(sock)
            rfile = io.BufferedReader(reader, 65536)
            wait = self.opts.request_timeout
            while not self._stop:
                reader.deadline = time.monotonic() + wait
                try:
                    if not rfile.peek(1):
                        return
                except _ReadTimeout:
                    if wait == self.opts.request_timeout:
                        logging.warning("Connection from %s timed out", peer)
                    return
                reader.deadline = time.monotonic() + self.opts.request_timeout
                # Busy from the first byte of a request to the last of its
                # answer: a graceful stop waits for that
                self._SetBusy(sock, True)
                try:
                    keep = self._OneRequest(sock, rfile, reader, peer, peer_cert)
                finally:
                    self._SetBusy(sock, False)
                if not keep:
                    return
                wait = self.keepalive_timeout
        except OSError as err:
            logging.debug("Connection from %s ended: %s", peer, err)
        except Exception:  # a bug: log it, keep the daemon serving
            logging.exception("Error on the connection from %s", peer)
        finally:
            self._Forget(sock)
            self._Forget(conn)
            _Close(sock)

    def _OneRequest(self, sock: socket.socket, rfile: BinaryIO,
                    reader: _DeadlineReader, peer: Any,
                    peer_cert: bytes | None) -> bool:
        """Serve one request; return whether to keep the connection."""

        def _Continue() -> None:
            sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")

        keep_alive = False
        try:
            if (self.ssl_context is not None and self.opts.require_client_cert
                    and not peer_cert):
                raise http.HttpForbidden(
                    "A client certificate signed by the cluster certificate is"
                    " required")
            req = ReadRequest(rfile, self.opts.max_header_size,
                              self.opts.max_body_size,
                              check_fn=self.handler.CheckRequest,
                              continue_fn=_Continue)
            reader.deadline = None
            if req is None:
                return False
            req.peer_address = peer
            req.peer_cert = peer_cert or None
            keep_alive = WantsKeepAlive(req)
            with self._slots:
                resp = self.handler.HandleRequest(req)
            logging.debug("%s %s %s from %s: %s", req.method, req.path,
                          req.version, peer, resp.code)
        except (_ReadTimeout, TimeoutError):
            keep_alive = False
            resp = ErrorResponse(http.HttpRequestTimeout(
                f"Request not received within {self.opts.request_timeout}"
                " seconds"))
        except http.HttpException as err:
            keep_alive = False
            resp = ErrorResponse(err)
            logging.info("Refused request from %s: %s %s", peer, err.code,
                         err.message)
        except Exception as err:  # a bug in a handler: answer, log, go on
            keep_alive = False
            logging.exception("Error while handling a request from %s", peer)
            resp = ErrorResponse(http.HttpInternalServerError(str(err)))
        reader.deadline = None
        keep_alive = keep_alive and resp.code == http.HTTP_OK and not self._stop
        sock.settimeout(max(self.opts.request_timeout, 5.0))
        sock.sendall(FormatResponse(resp, self.opts.server_name, keep_alive))
        if resp.code != http.HTTP_OK:
            _Drain(sock)
        return keep_alive
