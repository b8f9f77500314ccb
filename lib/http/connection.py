"""One server-side HTTP connection, served without ever blocking.

:class:`HttpConnection` is the protocol of one connection as a state
machine: an event loop calls :meth:`HttpConnection.Step` when its socket
is ready (or right away), and the connection does what it can without
waiting: the TLS handshake, reading and checking a request head, reading
the body, writing an answer, reading and dropping what a refused client
still sends. When a request is complete, ``Step`` returns it; whoever
runs the handler later calls :meth:`HttpConnection.Respond` with the
answer. Each state has one deadline (:attr:`HttpConnection.deadline`),
which the loop enforces with :meth:`HttpConnection.Expire`.

The connection knows nothing of the loop, the threads or the other
connections: :mod:`ganeti.http.server` drives many of them in one thread
and hands complete requests to worker threads, so that slow and idle
clients never hold a worker; a process serving a single connection can
drive one the same way.
"""

from __future__ import annotations

import logging
import socket
import ssl
from typing import Any

from ganeti import http
from ganeti.http import message
from ganeti.http.message import HttpResponse, HttpServerHandler, HttpServerRequest

#: States; a connection waits (for the client) in all but DISPATCHED and
#: WRITING. It starts in CONNECTED (TLS) or IDLE (plain HTTP).
CONNECTED = "connected"    # accepted, nothing received yet
HANDSHAKE = "handshake"    # TLS handshake under way
IDLE = "idle"              # waiting for the first byte of a request
READING = "reading"        # reading a request head and body
DISPATCHED = "dispatched"  # a complete request is being handled
WRITING = "writing"        # writing an answer
DRAINING = "draining"      # answered an error; dropping what still comes
CLOSED = "closed"

WAITING = frozenset([CONNECTED, HANDSHAKE, IDLE, READING, DRAINING])

#: What the event loop waits for (the values of the selectors module)
EVENT_READ = 1
EVENT_WRITE = 2

# Below glibc's threshold for mapping buffers: every read allocates one
_RECV_SIZE = 64 * 1024
# Written per call: the same slice is offered again after a partial TLS
# write, as OpenSSL requires
_SEND_SIZE = 256 * 1024
_TCP_QUICKACK: int | None = getattr(socket, "TCP_QUICKACK", None)

# After an answer: keep the connection, close it, or drain then close
_KEEP = "keep"
_CLOSE = "close"
_DRAIN = "drain"


def PeerAddress(peer: Any) -> str:
    """The client address connections are counted by."""
    if isinstance(peer, tuple) and peer:
        return str(peer[0])
    return str(peer)


class HttpConnection:
    """One client connection; see the module doc.

    ``want`` is what the socket must become ready for before the next
    ``Step`` can progress (EVENT_READ, EVENT_WRITE, or 0 while a request
    is being handled). ``since`` is when the connection began its current
    wait for the client (accepted, or answered its last request): the
    server closes the connections waiting longest first when it needs room.
    """

    def __init__(self, sock: socket.socket, peer: Any, opts: message.ServerOptions,
                 handler: HttpServerHandler, ssl_context: ssl.SSLContext | None,
                 now: float) -> None:
        sock.setblocking(False)
        self.sock = sock
        self.fd = sock.fileno()
        self.peer = peer
        self.address = PeerAddress(peer)
        self.opts = opts
        self.handler = handler
        self.ssl_context = ssl_context
        self.since = now
        self.requests = 0
        self.peer_cert: bytes | None = None
        #: Answer with ``Connection: close`` from now on
        self.stopping = False
        self.want = EVENT_READ
        self._buf = bytearray()
        self._scan = 0
        self._req: HttpServerRequest | None = None
        self._head_len = 0
        self._body_len = 0
        self._out: memoryview | None = None
        self._out_off = 0
        self._after = _CLOSE
        self._drain_left = 0
        self._drain_time = opts.drain_timeout
        self._received = now
        if ssl_context is None:
            self.state = IDLE
            self.deadline: float | None = now + opts.request_timeout
        else:
            self.state = CONNECTED
            self.deadline = now + opts.GetHandshakeTimeout()

    def __repr__(self) -> str:
        return f"<HttpConnection {self.peer} {self.state}>"

    # --- driven by the event loop --------------------------------------------------

    def Step(self, now: float) -> HttpServerRequest | None:
        """Progress as far as possible without blocking.

        Returns a complete request (the connection is then DISPATCHED and
        waits for :meth:`Respond`), or None.
        """
        try:
            while True:
                state = self.state
                if state == CONNECTED:
                    progressed = self._Peek(now)
                elif state == HANDSHAKE:
                    progressed = self._Handshake(now)
                elif state in (IDLE, READING):
                    if self._out is not None and not self._Flush():
                        # The interim answer waits; reading goes on
                        self.want |= EVENT_READ
                    try:
                        return self._Read(now)
                    except http.HttpException as err:
                        self._Fail(err, now)
                        progressed = True
                elif state == WRITING:
                    progressed = self._Flush()
                    if progressed:
                        self._Written(now)
                elif state == DRAINING:
                    self._Drain()
                    return None
                else:
                    return None
                if not progressed:
                    return None
        except (OSError, ValueError) as err:
            # ssl.SSLError is an OSError; ValueError for a socket closed
            # under us
            logging.debug("Connection from %s ends (%s): %s", self.peer, state, err)
            self.Close()
            return None

    def Respond(self, resp: HttpResponse, keep_alive: bool, now: float) -> None:
        """Start writing the answer to the dispatched request."""
        assert self.state == DISPATCHED
        keep_alive = keep_alive and not self.stopping
        if keep_alive:
            after = _KEEP
        elif self._buf:
            after = _DRAIN  # the client sent more: closing would reset
        else:
            after = _CLOSE
        self._StartWriting(resp, keep_alive, after, now)

    def Expire(self, now: float) -> None:
        """The deadline passed: give up on the client."""
        if self.state == READING:
            # A client this slow gets little time to take the answer
            self._Fail(http.HttpRequestTimeout(
                f"Request not received within {self.opts.request_timeout:g}"
                " seconds"), now, drain_time=min(1.0, self.opts.drain_timeout))
        elif self.state in (CONNECTED, HANDSHAKE, IDLE):
            logging.debug("Connection from %s closed after waiting (%s)",
                          self.peer, self.state)
            self.Close()
        elif self.state != DISPATCHED:
            self.Close()

    def Close(self) -> None:
        """Close the connection (at once, from any state)."""
        if self.state == CLOSED:
            return
        self.state = CLOSED
        self.deadline = None
        self.want = 0
        try:
            self.sock.close()
        except OSError:
            pass

    # --- the states ------------------------------------------------------------------

    def _Peek(self, now: float) -> bool:
        """CONNECTED: wait for the client's first byte before any TLS work.

        A client closing without a word (a reachability check) is dropped
        quietly.
        """
        try:
            data = self.sock.recv(1, socket.MSG_PEEK)
        except (BlockingIOError, InterruptedError):
            self.want = EVENT_READ
            return False
        if not data:
            self.Close()
            return False
        assert self.ssl_context is not None
        self.sock = self.ssl_context.wrap_socket(self.sock, server_side=True,
                                                 do_handshake_on_connect=False)
        self.state = HANDSHAKE
        return True

    def _Handshake(self, now: float) -> bool:
        try:
            self.sock.do_handshake()  # type: ignore[attr-defined]
        except ssl.SSLWantReadError:
            self.want = EVENT_READ
            return False
        except ssl.SSLWantWriteError:
            self.want = EVENT_WRITE
            return False
        except (ssl.SSLError, OSError) as err:
            logging.warning("TLS handshake with %s failed: %s", self.peer, err)
            self.Close()
            return False
        self.peer_cert = self.sock.getpeercert(binary_form=True) or None  # type: ignore[attr-defined]
        if _TCP_QUICKACK is not None:
            # Without session tickets the server sends nothing after the
            # client's Finished and would delay its ACK; a client without
            # TCP_NODELAY then holds its request back for the delayed-ACK
            # time (40 ms on Linux)
            try:
                self.sock.setsockopt(socket.IPPROTO_TCP, _TCP_QUICKACK, 1)
            except OSError:
                pass
        self.state = IDLE
        self.deadline = now + self.opts.request_timeout
        return True

    def _Read(self, now: float) -> HttpServerRequest | None:
        """IDLE and READING: read until a request is complete."""
        buf = self._buf
        while True:
            if self.state == IDLE and buf:
                skip = message.SkipEmptyLines(buf)
                if skip:
                    del buf[:skip]
                # A CR alone may be the start of an empty line whose LF
                # has not arrived; a CR followed by anything else is not
                # (found by test/integration/test_fuzz.py: it waited here)
                if buf and not (len(buf) == 1 and buf[0] == 0x0D):
                    self.state = READING
                    self.deadline = now + self.opts.request_timeout
                    self._received = now
            if self.state == READING:
                req = self._Parse(now)
                if req is not None:
                    return req
            if self._req is None:
                need = self.opts.max_header_size + 1 - len(buf)
            else:
                need = self._head_len + self._body_len - len(buf)
                if need <= 0:
                    # Complete, but the interim answer is not all written
                    self.want = EVENT_WRITE
                    return None
            try:
                chunk = self.sock.recv(max(1, min(need, _RECV_SIZE)))
            except (ssl.SSLWantReadError, BlockingIOError, InterruptedError):
                self.want = EVENT_READ | (EVENT_WRITE if self._out is not None else 0)
                return None
            except ssl.SSLWantWriteError:
                self.want = EVENT_WRITE
                return None
            if not chunk:
                if self.state == READING:
                    logging.debug("Connection from %s closed in a request", self.peer)
                self.Close()
                return None
            buf += chunk

    def _Parse(self, now: float) -> HttpServerRequest | None:
        """READING: the request, once head and body are all here."""
        buf = self._buf
        opts = self.opts
        if self._req is None:
            end = message.FindHeadEnd(buf, self._scan)
            if end < 0:
                if len(buf) > opts.max_header_size:
                    raise http.HttpHeadersTooLarge(
                        f"Request head longer than {opts.max_header_size} bytes")
                self._scan = max(0, len(buf) - 3)
                return None
            if end > opts.max_header_size + 4:
                raise http.HttpHeadersTooLarge(
                    f"Request head longer than {opts.max_header_size} bytes")
            req = message.ParseRequestHead(bytes(buf[:end]), opts)
            req.peer_address = self.peer
            req.peer_cert = self.peer_cert
            req.received = self._received
            if (self.ssl_context is not None and opts.require_client_cert
                    and not self.peer_cert):
                raise http.HttpForbidden(
                    "A client certificate signed by the cluster certificate is"
                    " required")
            length = message.BodyLength(req, opts.max_body_size)
            self.handler.CheckRequest(req)
            self._req = req
            self._head_len = end
            self._body_len = length
            if length and message.WantsContinue(req) and len(buf) < end + length:
                self._out = memoryview(message.CONTINUE)
                self._out_off = 0
                self._Flush()
        total = self._head_len + self._body_len
        if len(buf) < total or self._out is not None:
            return None
        req = self._req
        req.body = bytes(buf[self._head_len:total])
        del buf[:total]
        self._req = None
        self._scan = 0
        self.requests += 1
        self.state = DISPATCHED
        self.deadline = None
        self.want = 0
        return req

    def _Fail(self, err: http.HttpException, now: float,
              drain_time: float | None = None) -> None:
        """Answer an error found before the request was complete; then drain."""
        if self._out is not None and self._out_off:
            self.Close()  # in the middle of the interim answer
            return
        logging.info("Refused request from %s: %s %s", self.peer, err.code, err.message)
        self._req = None
        self._StartWriting(self.handler.ErrorResponse(err), False, _DRAIN, now)
        if drain_time is not None:
            self._drain_time = drain_time

    def _StartWriting(self, resp: HttpResponse, keep_alive: bool, after: str,
                      now: float) -> None:
        data = message.FormatResponse(resp, self.opts.server_name, keep_alive)
        self._out = memoryview(data)
        self._out_off = 0
        self._after = after
        self._drain_left = self.opts.max_drain
        self._drain_time = self.opts.drain_timeout
        self.state = WRITING
        self.deadline = now + self.opts.write_timeout
        self.want = EVENT_WRITE

    def _Flush(self) -> bool:
        """Write what is pending; True once all is written."""
        out = self._out
        assert out is not None
        while self._out_off < len(out):
            try:
                sent = self.sock.send(out[self._out_off:self._out_off + _SEND_SIZE])
            except (ssl.SSLWantWriteError, BlockingIOError, InterruptedError):
                self.want = EVENT_WRITE
                return False
            except ssl.SSLWantReadError:
                self.want = EVENT_READ
                return False
            self._out_off += sent
        self._out = None
        self._out_off = 0
        return True

    def _Written(self, now: float) -> None:
        if self._after == _KEEP:
            self.state = IDLE
            self.since = now
            self.deadline = now + self.opts.keepalive_timeout
            self.want = EVENT_READ
        elif self._after == _DRAIN:
            # Our side is done: the client sees the end of the answer and
            # stops sending; what it sent meanwhile is read and dropped
            # below TLS (plain socket calls), so that closing does not
            # reset the connection before the client read the answer
            try:
                socket.socket.shutdown(self.sock, socket.SHUT_WR)
            except OSError:
                self.Close()
                return
            self.state = DRAINING
            self.deadline = now + self._drain_time
            self.want = EVENT_READ
        else:
            self.Close()

    def _Drain(self) -> None:
        while True:
            try:
                data = socket.socket.recv(self.sock, _RECV_SIZE)
            except (BlockingIOError, InterruptedError):
                self.want = EVENT_READ
                return
            if not data:
                self.Close()
                return
            self._drain_left -= len(data)
            if self._drain_left <= 0:
                self.Close()
                return
