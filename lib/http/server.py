"""The threaded HTTPS server of ganeti-rapi (and of ganeti-noded --threaded).

One thread, the event loop, accepts connections and drives all of them
without blocking (:mod:`ganeti.http.connection`): TLS handshakes, reading
request heads and bodies under one deadline per request, writing answers,
waiting for the next request on kept-open connections. Only complete
requests go to the ``max_clients`` worker threads that run the handler.
A client that connects and says nothing, trickles its request a byte at a
time or does not read its answer therefore costs a socket and a little
memory, never a worker, and a real request is handled as soon as a
worker is free, however many such clients there are.

Many more connections than workers stay open: at most ``max_connections``
in all and ``max_connections_per_address`` per client address. A new
connection beyond either limit makes room by closing the connection that
has waited longest for its client (idle, or still sending its request; one
already answered with an error and being drained goes first); when all
are being served, the new one is closed instead.

Requests are HTTP/1.0 or 1.1 with a ``Content-Length`` body (see
:mod:`ganeti.http.message` for what is accepted). A handler answers with
an :class:`HttpResponse` or raises an :class:`ganeti.http.HttpException`.

:meth:`ThreadedHttpServer.Serve` runs the loop with a worker pool;
:meth:`ThreadedHttpServer.ServeConnection` serves one accepted
connection in the calling thread (the loop with that connection only,
the handler run inline), as the children of ganeti-noded's forking
server do (:mod:`ganeti.http.forking`).
"""

from __future__ import annotations

import collections
import dataclasses
import errno
import heapq
import itertools
import logging
import os
import queue
import resource
import selectors
import signal
import socket
import ssl
import threading
import time
from collections.abc import Callable
from typing import Any

from ganeti import http
from ganeti.http import connection as hconn
from ganeti.http.connection import HttpConnection, PeerAddress
# The request and answer types are part of this module's interface
from ganeti.http.message import (  # noqa: F401
    ErrorResponse,
    FormatResponse,
    HttpResponse,
    HttpServerHandler,
    HttpServerRequest,
    ServerOptions,
    WantsKeepAlive,
)

#: Connections accepted per wake-up of the loop, before serving the others
_ACCEPT_BATCH = 64
#: Longest sleep of the loop (it wakes up for every event anyway)
_MAX_WAIT = 5.0
#: File descriptors kept free of connections (logs, luxi, pipes)
_FD_RESERVE = 64
#: Seconds between warnings about refused connections
_WARN_INTERVAL = 10.0

_LISTENER = "listener"
_WAKE = "wake"


def Listen(address: str, port: int, backlog: int = 1024) -> socket.socket:
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


def _FdLimit() -> int:
    """How many connections the file descriptor limit leaves room for."""
    try:
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (OSError, ValueError):
        return 1024
    if soft == resource.RLIM_INFINITY:
        return 1 << 20
    return max(1, soft - _FD_RESERVE)


class _EventLoop:
    """Drives the connections of one server; see the module doc.

    ``dispatch_fn(loop, conn, request)`` takes a complete request; the
    answer comes back through :meth:`Complete` (from any thread).
    """

    def __init__(self, server: ThreadedHttpServer, listener: socket.socket | None,
                 dispatch_fn: Callable[[_EventLoop, HttpConnection, HttpServerRequest],
                                       None]) -> None:
        self.server = server
        self.listener = listener
        self.dispatch_fn = dispatch_fn
        self.sel = selectors.DefaultSelector()
        self.conns: set[HttpConnection] = set()
        #: Connections waiting for their client, longest waiting first
        self.waiting: collections.OrderedDict[HttpConnection, None] = \
            collections.OrderedDict()
        self.by_address: dict[str, dict[HttpConnection, None]] = {}
        self.registered: dict[HttpConnection, int] = {}
        self.scheduled: dict[HttpConnection, float] = {}
        self.heap: list[tuple[float, int, HttpConnection]] = []
        self.seq = itertools.count()
        self.done: collections.deque[tuple[HttpConnection, HttpResponse, bool]] = \
            collections.deque()
        self.stopping = False
        self.sleeping = False
        self.term_deadline: float | None = None
        self.accept_paused_until: float | None = None
        self.refused = 0
        self.evicted = 0
        self._warned = 0.0
        # Guards the wake-up pipe against writes after it was closed (the
        # descriptor may be another file's by then); reentrant for signal
        # handlers interrupting the loop's thread
        self._wake_lock = threading.RLock()
        self._closed = False
        self.wake_r, self.wake_w = os.pipe()
        for fd in (self.wake_r, self.wake_w):
            os.set_blocking(fd, False)
        self.sel.register(self.wake_r, selectors.EVENT_READ, _WAKE)
        if listener is not None:
            self.sel.register(listener, selectors.EVENT_READ, _LISTENER)

    # --- called from other threads ---------------------------------------------

    def Complete(self, conn: HttpConnection, resp: HttpResponse,
                 keep_alive: bool) -> None:
        """Hand the answer to a dispatched request back (any thread)."""
        self.done.append((conn, resp, keep_alive))
        # A loop not waiting in select looks at the answers before it does
        # (see Run): no need to wake it
        if self.sleeping:
            self.Wake()

    def Wake(self) -> None:
        """Make the loop look at its flags and answers (any thread, signals)."""
        with self._wake_lock:
            if self._closed:
                return
            try:
                os.write(self.wake_w, b"\0")
            except OSError:
                pass  # the pipe is full: the loop wakes up anyway

    # --- the loop --------------------------------------------------------------------

    def Run(self, until_empty: bool = False) -> None:
        """Serve until the server is stopped (or, ``until_empty``, until no
        connection is left); then close every connection."""
        server = self.server
        try:
            while True:
                now = time.monotonic()
                if server.stop_requested:
                    if not server.graceful:
                        break
                    if not self.stopping:
                        self._BeginGracefulStop(now)
                if self.stopping and (not self.conns or self.term_deadline is None
                                      or now >= self.term_deadline):
                    break
                if until_empty and not self.conns and not self.done:
                    break
                if self.accept_paused_until is not None and \
                        now >= self.accept_paused_until:
                    self._ResumeAccepting()
                self.sleeping = True
                try:
                    # After ``sleeping`` is set: an answer handed back before
                    # is seen here, one after wakes the select up
                    events = self.sel.select(self._Timeout(now))
                except InterruptedError:
                    continue
                finally:
                    self.sleeping = False
                now = time.monotonic()
                for key, _ in events:
                    data = key.data
                    if data is _LISTENER:
                        self._Accept(now)
                    elif data is _WAKE:
                        self._ReadWake()
                    elif data.state != hconn.CLOSED:
                        self._Step(data, now)
                self._Completed(now)
                self._Expire(now)
        finally:
            running = sum(1 for conn in self.conns if conn.state == hconn.DISPATCHED)
            if running:
                logging.warning("Stopping with %d request(s) still running%s",
                                running, " after the grace time" if server.graceful
                                else "")
            for conn in list(self.conns):
                self._Forget(conn)
            self.sel.close()
            with self._wake_lock:
                self._closed = True
                for fd in (self.wake_r, self.wake_w):
                    os.close(fd)

    def Add(self, sock: socket.socket, peer: Any, now: float,
            accepted: float | None = None) -> None:
        """Take an accepted connection (at ``accepted``, default ``now``),
        within the limits."""
        addr = PeerAddress(peer)
        server = self.server
        same = self.by_address.get(addr)
        if same is not None and len(same) >= server.max_connections_per_address:
            if not self._MakeRoom(same, f"{len(same)} connections from {addr}"):
                self._Refuse(sock, peer, now)
                return
        if len(self.conns) >= server.max_connections:
            if not self._MakeRoom(self.waiting, f"{len(self.conns)} connections"):
                self._Refuse(sock, peer, now)
                return
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
        conn = HttpConnection(sock, peer, server.opts, server.handler,
                              server.ssl_context, now if accepted is None else accepted)
        self.conns.add(conn)
        self.by_address.setdefault(addr, {})[conn] = None
        self._Step(conn, now)

    def _Accept(self, now: float) -> None:
        assert self.listener is not None
        for _ in range(_ACCEPT_BATCH):
            try:
                sock, peer = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionAbortedError:
                continue
            except OSError as err:
                if err.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS,
                                 errno.ENOMEM):
                    logging.error("Cannot accept a connection: %s", err)
                    if not self._MakeRoom(self.waiting, "out of file descriptors"):
                        self._PauseAccepting(now)
                else:
                    logging.warning("Cannot accept a connection: %s", err)
                return
            self.Add(sock, peer, now)

    def _PauseAccepting(self, now: float) -> None:
        if self.accept_paused_until is None and self.listener is not None:
            self.sel.unregister(self.listener)
            self.accept_paused_until = now + 0.1

    def _ResumeAccepting(self) -> None:
        self.accept_paused_until = None
        if self.listener is not None and not self.stopping:
            self.sel.register(self.listener, selectors.EVENT_READ, _LISTENER)

    def _MakeRoom(self, among: dict[HttpConnection, None], why: str) -> bool:
        """Close the connection of ``among`` waiting longest for its client."""
        victim = None
        if among is self.waiting:
            victim = next(iter(self.waiting), None)
        else:
            best = None
            for conn in among:
                if conn.state in hconn.WAITING:
                    key = (conn.state != hconn.DRAINING, conn.since)
                    if best is None or key < best:
                        best, victim = key, conn
        if victim is None:
            return False
        logging.debug("Closing the connection from %s (%s) for a new one: %s",
                      victim.peer, victim.state, why)
        self.evicted += 1
        self._Forget(victim)
        return True

    def _Refuse(self, sock: socket.socket, peer: Any, now: float) -> None:
        sock.close()
        self.refused += 1
        if now - self._warned >= _WARN_INTERVAL:
            self._warned = now
            logging.warning("Refusing connections (the last from %s): %d so far;"
                            " %d connections open, all busy", peer, self.refused,
                            len(self.conns))

    def _BeginGracefulStop(self, now: float) -> None:
        """Stop accepting; close the connections waiting for their client;
        let the others finish their request (at most ``term_timeout``)."""
        self.stopping = True
        self.term_deadline = now + self.server.term_timeout
        if self.listener is not None and self.accept_paused_until is None:
            self.sel.unregister(self.listener)
        self.accept_paused_until = None
        for conn in list(self.conns):
            conn.stopping = True
            if conn.state in hconn.WAITING:
                self._Forget(conn)

    def _Timeout(self, now: float) -> float:
        heap = self.heap
        while heap and self.scheduled.get(heap[0][2]) != heap[0][0]:
            heapq.heappop(heap)  # replaced or dropped
        wait = _MAX_WAIT if not heap else heap[0][0] - now
        for deadline in (self.term_deadline, self.accept_paused_until):
            if deadline is not None:
                wait = min(wait, deadline - now)
        if self.done:
            wait = 0
        return max(0.0, min(wait, _MAX_WAIT))

    def _ReadWake(self) -> None:
        try:
            os.read(self.wake_r, 4096)  # more wakes the loop again
        except (BlockingIOError, InterruptedError):
            pass

    def _Step(self, conn: HttpConnection, now: float) -> None:
        req = conn.Step(now)
        if req is not None:
            self.dispatch_fn(self, conn, req)
        self._Update(conn)

    def _Completed(self, now: float) -> None:
        while self.done:
            conn, resp, keep_alive = self.done.popleft()
            if conn.state != hconn.DISPATCHED:
                continue  # closed meanwhile (a stop)
            # A stop asked for while the handler ran (a signal) closes
            # the connection after this answer
            conn.Respond(resp, keep_alive and not self.stopping
                         and not self.server.stop_requested, now)
            self._Step(conn, now)

    def _Expire(self, now: float) -> None:
        heap = self.heap
        while heap and heap[0][0] <= now:
            deadline, _, conn = heapq.heappop(heap)
            if self.scheduled.get(conn) != deadline:
                continue
            del self.scheduled[conn]
            if conn.state == hconn.CLOSED or conn.deadline != deadline:
                continue
            conn.Expire(now)
            self._Step(conn, now)

    def _Update(self, conn: HttpConnection) -> None:
        """Bring the selector, deadlines and bookkeeping up to date."""
        state = conn.state
        if state == hconn.CLOSED or (self.stopping and state == hconn.IDLE):
            # Stopping: an answer begun before the stop was kept-alive;
            # its connection goes once it is written
            self._Forget(conn)
            return
        events = 0 if state == hconn.DISPATCHED else conn.want
        old = self.registered.get(conn, 0)
        if events != old:
            if not events:
                self.sel.unregister(conn.fd)
                del self.registered[conn]
            elif not old:
                self.sel.register(conn.fd, events, conn)
                self.registered[conn] = events
            else:
                self.sel.modify(conn.fd, events, conn)
                self.registered[conn] = events
        deadline = conn.deadline
        if deadline is not None and self.scheduled.get(conn) != deadline:
            self.scheduled[conn] = deadline
            heapq.heappush(self.heap, (deadline, next(self.seq), conn))
            if len(self.heap) > 4 * len(self.scheduled) + 1024:
                self.heap = [entry for entry in self.heap
                             if self.scheduled.get(entry[2]) == entry[0]]
                heapq.heapify(self.heap)
        if state in hconn.WAITING:
            if conn not in self.waiting:
                self.waiting[conn] = None
                if state == hconn.DRAINING:
                    # Answered already: the first to close for room
                    self.waiting.move_to_end(conn, last=False)
        else:
            self.waiting.pop(conn, None)

    def _Forget(self, conn: HttpConnection) -> None:
        if self.registered.pop(conn, None):
            try:
                self.sel.unregister(conn.fd)
            except (KeyError, ValueError, OSError):
                pass
        conn.Close()
        self.conns.discard(conn)
        self.waiting.pop(conn, None)
        self.scheduled.pop(conn, None)
        same = self.by_address.get(conn.address)
        if same is not None:
            same.pop(conn, None)
            if not same:
                del self.by_address[conn.address]


class ThreadedHttpServer:
    """An HTTP(S) server: an event loop and ``max_clients`` worker threads.

    See the module doc. Handlers run in threads of the daemon's process:
    they must not change process-wide state (working directory,
    environment, signal handlers).

    ``Serve`` returns after :meth:`RequestStop` (with ``handle_signals``:
    SIGTERM or SIGINT), closing every connection (requests still running
    are abandoned with their threads), or after :meth:`RequestGracefulStop`
    (SIGUSR1) once the running requests are answered (at most
    ``term_timeout`` seconds).
    """

    def __init__(self, handler: HttpServerHandler,
                 ssl_context: ssl.SSLContext | None,
                 opts: ServerOptions | None = None,
                 max_clients: int = 20,
                 max_connections: int = 1024,
                 keepalive_timeout: float | None = None,
                 term_timeout: float = 10.0,
                 max_connections_per_address: int | None = None):
        self.handler = handler
        self.ssl_context = ssl_context
        self.opts = opts or ServerOptions()
        if keepalive_timeout is not None:
            self.opts = dataclasses.replace(self.opts, keepalive_timeout=keepalive_timeout)
        self.max_clients = max(1, max_clients)
        self.max_connections = max(1, min(max_connections, _FdLimit()))
        if max_connections_per_address is None:
            max_connections_per_address = self.max_connections
        self.max_connections_per_address = max(1, max_connections_per_address)
        self.term_timeout = term_timeout
        self.stop_requested = False
        self.graceful = False
        self._sock: socket.socket | None = None
        self._loop: _EventLoop | None = None
        self._jobs: queue.SimpleQueue[tuple[_EventLoop, HttpConnection,
                                            HttpServerRequest] | None] = \
            queue.SimpleQueue()
        self._workers: list[threading.Thread] = []

    def Bind(self, address: str, port: int, backlog: int = 1024) -> tuple[str, int]:
        """Listen on address:port (port 0 picks a free one); return both."""
        self._sock = Listen(address, port, backlog)
        bound = self._sock.getsockname()
        return bound[0], bound[1]

    def RequestStop(self, *_args: Any) -> None:
        """Ask ``Serve`` to return (safe from signal handlers and threads)."""
        self.stop_requested = True
        self._Wake()

    def RequestGracefulStop(self, *_args: Any) -> None:
        """Ask ``Serve`` to return once the running requests are answered."""
        self.graceful = True
        self.stop_requested = True
        self._Wake()

    def _Wake(self) -> None:
        loop = self._loop
        if loop is not None:
            loop.Wake()

    def Serve(self, ready_fn: Callable[[], None] | None = None,
              handle_signals: bool = True) -> None:
        """Accept and serve connections until asked to stop; then close them.

        With ``handle_signals`` (the main thread only) SIGTERM and SIGINT
        stop the server and SIGUSR1 stops it gracefully. ``ready_fn`` is
        called once the server is about to serve.
        """
        assert self._sock is not None, "Bind first"
        loop = self._loop = _EventLoop(self, self._sock, self._Dispatch)
        if handle_signals:
            self._InstallSignals(loop)
        self._workers = [threading.Thread(target=self._Work, name=f"http-worker-{idx}",
                                          daemon=True)
                         for idx in range(self.max_clients)]
        for worker in self._workers:
            worker.start()
        try:
            if ready_fn:
                ready_fn()
            loop.Run()
        finally:
            self._loop = None
            if handle_signals:
                self._RestoreSignals()
            self._sock.close()
            # Requests not started yet are dropped with their connections
            while True:
                try:
                    self._jobs.get_nowait()
                except queue.Empty:
                    break
            for _ in self._workers:
                self._jobs.put(None)

    def Join(self, timeout: float) -> bool:
        """After ``Serve``: wait for the running requests' threads to end.

        Returns whether all ended within ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        for worker in self._workers:
            worker.join(max(0.0, deadline - time.monotonic()))
        return not any(worker.is_alive() for worker in self._workers)

    def ServeConnection(self, conn: socket.socket, peer: Any,
                        accepted: float | None = None) -> None:
        """Serve an accepted connection until it ends, in the calling thread.

        The handler runs inline. This is how a process (or thread) of its
        own serves a single connection (:mod:`ganeti.http.forking`).
        ``accepted`` (``time.monotonic``) is when the connection was
        accepted, if earlier than now: the TLS handshake deadline counts
        from then.
        """
        loop = self._loop = _EventLoop(self, None, self._HandleInline)
        try:
            now = time.monotonic()
            loop.Add(conn, peer, now, None if accepted is None else min(accepted, now))
            loop.Run(until_empty=True)
        finally:
            self._loop = None

    # --- running the handler ---------------------------------------------------------

    def _Dispatch(self, loop: _EventLoop, conn: HttpConnection,
                  req: HttpServerRequest) -> None:
        self._jobs.put((loop, conn, req))

    def _HandleInline(self, loop: _EventLoop, conn: HttpConnection,
                      req: HttpServerRequest) -> None:
        loop.Complete(conn, *self._Handle(req))

    def _Work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            loop, conn, req = job
            resp, keep_alive = self._Handle(req)
            loop.Complete(conn, resp, keep_alive)

    def _Handle(self, req: HttpServerRequest) -> tuple[HttpResponse, bool]:
        """Run the handler: the answer, and whether to keep the connection."""
        keep_alive = WantsKeepAlive(req)
        try:
            resp = self.handler.HandleRequest(req)
            logging.debug("%s %s %s from %s: %s", req.method, req.path,
                          req.version, req.peer_address, resp.code)
        except http.HttpException as err:
            resp = self.handler.ErrorResponse(err)
            logging.info("Refused request from %s: %s %s", req.peer_address,
                         err.code, err.message)
        except Exception as err:  # a bug in a handler: answer, log, go on
            logging.exception("Error while handling a request from %s",
                              req.peer_address)
            resp = self.handler.ErrorResponse(http.HttpInternalServerError(str(err)))
            keep_alive = False
        if resp.code != http.HTTP_OK and not self.opts.keep_alive_on_error:
            keep_alive = False
        return resp, keep_alive

    # --- signals ------------------------------------------------------------------------

    def _InstallSignals(self, loop: _EventLoop) -> None:
        signal.set_wakeup_fd(loop.wake_w)
        signal.signal(signal.SIGTERM, self.RequestStop)
        signal.signal(signal.SIGINT, self.RequestStop)
        signal.signal(signal.SIGUSR1, self.RequestGracefulStop)

    @staticmethod
    def _RestoreSignals() -> None:
        signal.set_wakeup_fd(-1)
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1):
            signal.signal(signum, signal.SIG_DFL)
