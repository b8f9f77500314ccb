"""The forking HTTPS server of ganeti-noded: one child process per connection.

The parent process only accepts connections, applies the connection
limits, forks and reaps; it never reads a request and runs no handler, so
a handler that crashes the interpreter, leaks or hangs in the kernel takes
down its own child and connection, never the daemon. Each child serves
the kept-open requests of its one connection one after another, the
handler inline (:meth:`ganeti.http.server.ThreadedHttpServer.ServeConnection`
with the deadlines of :mod:`ganeti.http.connection`: TLS handshake,
request, keep-alive), and exits when the connection ends or idles out.
The master pools its connections, so a child serves many calls and no
call pays for a fork.

The parent stays single-threaded (forking a process with threads can copy
a lock some other thread held) and forks only once a connection has sent
its first byte: a client that connects and says nothing, or only checks
that the port is open, costs a socket in the parent, never a process.

Limits, as :class:`ganeti.http.server.ThreadedHttpServer` applies them:

- at most ``max_connections`` connections (accepted, silent ones
  included) and ``max_connections_per_address`` from one address; a new
  connection beyond a limit makes room by closing the one that has waited
  longest for its client (a silent one, or a child waiting for its next
  request, which is asked to close with SIGUSR1); when all are being
  served, the new one is closed instead;
- at most ``max_clients`` requests are handled at the same time, by all
  children together; further ones wait, already read. Children take and
  give back a token (a byte of a pipe) around each request; the parent
  gives back the token of a child that died in a request.

Children write to a shared page (:class:`_Board`) whether they are
handling a request or since when they wait for their client; that is how
the parent picks whom to close for room and returns lost tokens.

Signals: SIGTERM and SIGINT stop accepting and kill the children (running
requests are abandoned); SIGUSR1 stops accepting and lets each child
answer its running request (``term_timeout`` at most) and exit; the
parent returns once all children are gone.
"""

from __future__ import annotations

import ctypes
import dataclasses
import errno
import gc
import heapq
import itertools
import logging
import mmap
import os
import selectors
import signal
import socket
import ssl
import threading
import time
from collections.abc import Callable
from typing import Any

from ganeti.http.connection import PeerAddress
from ganeti.http.message import HttpResponse, HttpServerHandler, HttpServerRequest, ServerOptions
from ganeti.http.server import Listen, ThreadedHttpServer

#: Connections accepted per wake-up before looking at the others
_ACCEPT_BATCH = 64
#: Longest sleep of the parent's loop
_MAX_WAIT = 5.0
#: Seconds children get to die after SIGTERM, then after SIGKILL
_KILL_WAIT = 2.0
#: Seconds a stopping parent waits beyond ``term_timeout`` for its children
_TERM_MARGIN = 1.0
#: Seconds between warnings about refused connections
_WARN_INTERVAL = 10.0
#: Upper bound of ``max_clients``: the tokens must fit in a pipe
_MAX_TOKENS = 4096

#: A child's board value while it handles a request
_BUSY = -1.0

_SIGNALS = (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGUSR1)
_PR_SET_PDEATHSIG = 1

_LISTENER = "listener"
_WAKE = "wake"


class _Board:
    """Shared memory: per child slot, ``_BUSY`` while the child handles a
    request, else since when (``time.monotonic``) it waits for its client.

    One aligned 8-byte store per update, so the parent never reads half a
    value.
    """

    def __init__(self, slots: int) -> None:
        self.size = slots
        # Anonymous and shared: the children write, the parent reads
        self._mem = mmap.mmap(-1, 8 * slots)
        self._values = (ctypes.c_double * slots).from_buffer(self._mem)

    def Set(self, slot: int, value: float) -> None:
        """Record a child's state."""
        self._values[slot] = value

    def Get(self, slot: int) -> float:
        """A child's state."""
        return self._values[slot]


class _Tokens:
    """The ``max_clients`` request tokens: bytes in a pipe.

    A child blocks reading one before it runs the handler and writes it
    back afterwards; a child killed meanwhile takes its token along, which
    the parent then writes back.
    """

    def __init__(self, count: int) -> None:
        self.read_fd, self.write_fd = os.pipe()
        os.write(self.write_fd, b"t" * count)

    def Take(self) -> None:
        """Wait for a token (interrupted system calls are retried)."""
        if not os.read(self.read_fd, 1):
            raise OSError(errno.EPIPE, "the token pipe was closed")

    def Give(self) -> None:
        """Give a token back (never blocks: the pipe holds them all)."""
        os.write(self.write_fd, b"t")

    def Close(self) -> None:
        """Close both ends."""
        for fd in (self.read_fd, self.write_fd):
            os.close(fd)


class _ChildServer(ThreadedHttpServer):
    """What a child serves its connection with: the handler runs inline,
    holding a request token, with the board saying so."""

    board: _Board
    tokens: _Tokens
    slot = -1

    def _Handle(self, req: HttpServerRequest) -> tuple[HttpResponse, bool]:
        self.tokens.Take()
        self.board.Set(self.slot, _BUSY)
        try:
            return super()._Handle(req)
        finally:
            # Waiting again (while the answer is written, too: a child asked
            # to close for room still writes it, see the module doc)
            self.board.Set(self.slot, time.monotonic())
            self.tokens.Give()


@dataclasses.dataclass(eq=False)
class _Client:
    """An accepted connection: pending in the parent (``sock``) until its
    first byte arrives, then served by child ``pid``."""
    address: str
    peer: Any
    accepted: float
    sock: socket.socket | None
    deadline: float = 0.0
    pid: int = 0
    slot: int = -1
    #: Asked to close (for room or a stop); no longer counted for the limits
    closing: bool = False


def _LoadLibc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None


def _SetParentDeathSignal(libc: ctypes.CDLL | None, parent: int) -> None:
    """Have the kernel kill this child when the parent dies (e.g. SIGKILL),
    so that no orphan goes on serving a connection of a dead daemon."""
    if libc is not None:
        try:
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except AttributeError:
            pass
    if os.getppid() != parent:  # died before prctl
        os._exit(1)


class ForkingHttpServer:
    """An HTTP(S) server forking one child per connection; see the module doc.

    ``child_init`` runs in every child right after the fork, before the
    connection is served (e.g. to lock the child's memory: locks and
    ``MCL_FUTURE`` are not inherited, see :mod:`ganeti.utils.mlock`).
    ``close_in_child`` lists descriptors of the parent that children must
    not keep (a locked pid file).
    """

    def __init__(self, handler: HttpServerHandler,
                 ssl_context: ssl.SSLContext | None,
                 opts: ServerOptions | None = None,
                 max_clients: int = 20,
                 max_connections: int = 1024,
                 keepalive_timeout: float | None = None,
                 term_timeout: float = 10.0,
                 max_connections_per_address: int | None = None,
                 child_init: Callable[[], None] | None = None):
        self.handler = handler
        self.ssl_context = ssl_context
        self.opts = opts or ServerOptions()
        if keepalive_timeout is not None:
            self.opts = dataclasses.replace(self.opts, keepalive_timeout=keepalive_timeout)
        self.max_clients = max(1, min(max_clients, _MAX_TOKENS))
        self.max_connections = max(1, max_connections)
        if max_connections_per_address is None:
            max_connections_per_address = self.max_connections
        self.max_connections_per_address = max(1, max_connections_per_address)
        self.term_timeout = term_timeout
        self.child_init = child_init
        self.close_in_child: list[int] = []
        self.stop_requested = False
        self.graceful = False
        self.refused = 0
        self.evicted = 0
        self.forked = 0
        self._abort = False
        self._sock: socket.socket | None = None
        self._sel: selectors.BaseSelector | None = None
        self._wake: tuple[int, int] | None = None
        self._board: _Board | None = None
        self._tokens: _Tokens | None = None
        self._child_server: _ChildServer | None = None
        self._free: list[int] = []
        #: Live children by pid (closing ones included)
        self._children: dict[int, _Client] = {}
        #: Connections waiting for their first byte, by descriptor
        self._pending: dict[int, _Client] = {}
        #: Connections the limits count, oldest first
        self._counted: dict[_Client, None] = {}
        self._by_address: dict[str, dict[_Client, None]] = {}
        self._heap: list[tuple[float, int, _Client]] = []
        self._seq = itertools.count()
        self._paused_until: float | None = None
        self._warned = 0.0
        self._parent = os.getpid()
        self._libc: ctypes.CDLL | None = None

    # --- interface ------------------------------------------------------------------

    def Bind(self, address: str, port: int, backlog: int = 1024) -> tuple[str, int]:
        """Listen on address:port (port 0 picks a free one); return both."""
        self._sock = Listen(address, port, backlog)
        bound = self._sock.getsockname()
        return bound[0], bound[1]

    def RequestStop(self, *_args: Any) -> None:
        """Stop, killing the children (safe from signal handlers)."""
        self.stop_requested = True
        self._abort = True
        self._Wake()

    def RequestGracefulStop(self, *_args: Any) -> None:
        """Stop once every child answered its running request."""
        self.graceful = True
        self.stop_requested = True
        self._Wake()

    @property
    def children(self) -> int:
        """How many children are alive (closing ones included)."""
        return len(self._children)

    def Serve(self, ready_fn: Callable[[], None] | None = None) -> None:
        """Accept connections and fork children until asked to stop.

        Must run in the main thread (signals) of a process with no other
        thread. SIGTERM and SIGINT stop the server, SIGUSR1 stops it
        gracefully (see the module doc). ``ready_fn`` is called once the
        server is about to serve.
        """
        assert self._sock is not None, "Bind first"
        if threading.active_count() > 1:
            # Children could inherit a lock held by another thread
            logging.warning("Forking server started with %d threads running; a"
                            " child may hang on a lock held by one of them",
                            threading.active_count())
        self._parent = os.getpid()
        self._libc = _LoadLibc()
        self._board = _Board(2 * self.max_connections)
        self._free = list(range(self._board.size - 1, -1, -1))
        self._tokens = _Tokens(self.max_clients)
        child = self._child_server = _ChildServer(
            self.handler, self.ssl_context, self.opts, max_clients=1,
            term_timeout=self.term_timeout)
        child.board, child.tokens = self._board, self._tokens
        sel = self._sel = selectors.DefaultSelector()
        wake_r, wake_w = self._wake = os.pipe()
        for fd in (wake_r, wake_w):
            os.set_blocking(fd, False)
        sel.register(wake_r, selectors.EVENT_READ, _WAKE)
        sel.register(self._sock, selectors.EVENT_READ, _LISTENER)
        signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
        signal.signal(signal.SIGCHLD, self._OnChild)
        signal.signal(signal.SIGTERM, self.RequestStop)
        signal.signal(signal.SIGINT, self.RequestStop)
        signal.signal(signal.SIGUSR1, self.RequestGracefulStop)
        # What exists now (modules, handlers) the children share without
        # the garbage collector touching, i.e. copying, its pages
        gc.collect()
        gc.freeze()
        try:
            if ready_fn:
                ready_fn()
            self._Loop()
        finally:
            try:
                self._StopChildren()
            finally:
                signal.set_wakeup_fd(-1)
                for signum in _SIGNALS:
                    signal.signal(signum, signal.SIG_DFL)
                gc.unfreeze()
                sel.close()
                for fd in (wake_r, wake_w):
                    os.close(fd)
                self._tokens.Close()
                self._sel = None
                self._wake = None

    # --- the parent's loop --------------------------------------------------------------

    def _Wake(self) -> None:
        if self._wake is not None:
            try:
                os.write(self._wake[1], b"\0")
            except OSError:
                pass  # full: the loop wakes up anyway

    def _OnChild(self, *_args: Any) -> None:
        """SIGCHLD: nothing to do here, the wake-up descriptor wakes the loop."""

    def _DrainWake(self) -> None:
        assert self._wake is not None
        try:
            os.read(self._wake[0], 4096)
        except (BlockingIOError, InterruptedError):
            pass

    def _Loop(self) -> None:
        sel, listener = self._sel, self._sock
        assert sel is not None and listener is not None
        while not self.stop_requested:
            now = time.monotonic()
            if self._paused_until is not None and now >= self._paused_until:
                self._paused_until = None
                sel.register(listener, selectors.EVENT_READ, _LISTENER)
            try:
                events = sel.select(self._Timeout(now))
            except InterruptedError:
                continue
            now = time.monotonic()
            for key, _ in events:
                if key.data is _LISTENER:
                    self._Accept(now)
                elif key.data is _WAKE:
                    self._DrainWake()
                elif key.data.sock is not None:
                    self._FirstByte(key.data, now)
            self._Reap()
            self._Expire(now)

    def _Timeout(self, now: float) -> float:
        heap = self._heap
        while heap and heap[0][2].sock is None:
            heapq.heappop(heap)  # forked or dropped
        wait = _MAX_WAIT if not heap else heap[0][0] - now
        if self._paused_until is not None:
            wait = min(wait, self._paused_until - now)
        return max(0.0, min(wait, _MAX_WAIT))

    def _Accept(self, now: float) -> None:
        assert self._sock is not None
        for _ in range(_ACCEPT_BATCH):
            try:
                sock, peer = self._sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionAbortedError:
                continue
            except OSError as err:
                if err.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS,
                                 errno.ENOMEM):
                    logging.error("Cannot accept a connection: %s", err)
                    if not self._MakeRoom(self._pending.values(),
                                          "out of file descriptors"):
                        self._PauseAccepting(now)
                else:
                    logging.warning("Cannot accept a connection: %s", err)
                return
            self._Add(sock, peer, now)

    def _PauseAccepting(self, now: float) -> None:
        if self._paused_until is None and self._sel is not None \
                and self._sock is not None:
            self._sel.unregister(self._sock)
            self._paused_until = now + 0.1

    def _Add(self, sock: socket.socket, peer: Any, now: float) -> None:
        """Take an accepted connection, within the limits."""
        addr = PeerAddress(peer)
        same = self._by_address.get(addr)
        if same is not None and len(same) >= self.max_connections_per_address:
            if not self._MakeRoom(list(same), f"{len(same)} connections from {addr}"):
                self._Refuse(sock, peer, now)
                return
        if len(self._counted) >= self.max_connections:
            if not self._MakeRoom(list(self._counted),
                                  f"{len(self._counted)} connections"):
                self._Refuse(sock, peer, now)
                return
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
        first = (self.opts.request_timeout if self.ssl_context is None
                 else self.opts.GetHandshakeTimeout())
        client = _Client(addr, peer, now, sock, deadline=now + first)
        self._counted[client] = None
        self._by_address.setdefault(addr, {})[client] = None
        self._pending[sock.fileno()] = client
        assert self._sel is not None
        self._sel.register(sock, selectors.EVENT_READ, client)
        heapq.heappush(self._heap, (client.deadline, next(self._seq), client))

    def _Waiting(self, client: _Client) -> float | None:
        """Since when ``client`` waits for its client; None if being served."""
        if client.sock is not None:
            return client.accepted
        assert self._board is not None
        since = self._board.Get(client.slot)
        return None if since == _BUSY else since

    def _MakeRoom(self, among: Any, why: str) -> bool:
        """Close the connection of ``among`` waiting longest for its client."""
        victim = None
        best = 0.0
        for client in among:
            if client.closing:
                continue
            since = self._Waiting(client)
            if since is not None and (victim is None or since < best):
                victim, best = client, since
        if victim is None:
            return False
        logging.debug("Closing the connection from %s for a new one: %s",
                      victim.peer, why)
        self.evicted += 1
        if victim.sock is not None:
            self._Drop(victim)
        else:
            self._Close(victim, signal.SIGUSR1)
        return True

    def _Refuse(self, sock: socket.socket, peer: Any, now: float) -> None:
        sock.close()
        self.refused += 1
        if now - self._warned >= _WARN_INTERVAL:
            self._warned = now
            logging.warning("Refusing connections (the last from %s): %d so far;"
                            " %d connections open, all busy", peer, self.refused,
                            len(self._counted))

    def _Uncount(self, client: _Client) -> None:
        self._counted.pop(client, None)
        same = self._by_address.get(client.address)
        if same is not None:
            same.pop(client, None)
            if not same:
                del self._by_address[client.address]

    def _Drop(self, client: _Client) -> None:
        """Close a pending connection."""
        sock = client.sock
        assert sock is not None and self._sel is not None
        del self._pending[sock.fileno()]
        self._sel.unregister(sock)
        sock.close()
        client.sock = None
        self._Uncount(client)

    def _Close(self, client: _Client, signum: int) -> None:
        """Ask a child to close its connection (SIGUSR1) or kill it."""
        client.closing = True
        self._Uncount(client)
        try:
            os.kill(client.pid, signum)
        except ProcessLookupError:
            pass  # exited: reaped soon

    def _FirstByte(self, client: _Client, now: float) -> None:
        """A pending connection is readable: fork its child, or drop it if
        the client closed without a word (a reachability check)."""
        assert client.sock is not None
        try:
            data = client.sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as err:
            logging.debug("Connection from %s failed: %s", client.peer, err)
            self._Drop(client)
            return
        if not data:
            self._Drop(client)
            return
        self._Fork(client, now)

    def _Expire(self, now: float) -> None:
        heap = self._heap
        while heap and heap[0][0] <= now:
            _, _, client = heapq.heappop(heap)
            if client.sock is not None:
                logging.debug("Connection from %s closed: nothing received", client.peer)
                self._Drop(client)

    # --- children ---------------------------------------------------------------------

    def _Fork(self, client: _Client, now: float) -> None:
        sock = client.sock
        assert sock is not None and self._sel is not None and self._board is not None
        del self._pending[sock.fileno()]
        self._sel.unregister(sock)
        client.sock = None
        if not self._free:
            # Too many children still closing
            self._Uncount(client)
            self._Refuse(sock, client.peer, now)
            return
        slot = self._free.pop()
        self._board.Set(slot, client.accepted)
        # Blocked across the fork: the child must not run the parent's
        # handlers before it has its own
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
        try:
            pid = os.fork()
        except OSError as err:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
            logging.error("Cannot fork for the connection from %s: %s", client.peer, err)
            self._free.append(slot)
            self._Uncount(client)
            sock.close()
            self._PauseAccepting(now)
            return
        if pid == 0:
            code = 1
            try:
                self._RunChild(sock, client, slot, mask)
                code = 0
            except BaseException:  # noqa: B036 (nothing may return into the parent's code)
                try:
                    logging.exception("Child serving %s failed", client.peer)
                except BaseException:  # noqa: B036
                    pass
            finally:
                os._exit(code)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        sock.close()
        client.pid, client.slot = pid, slot
        self._children[pid] = client
        self.forked += 1

    def _RunChild(self, sock: socket.socket, client: _Client, slot: int,
                  mask: Any) -> None:
        """In a new child: shed the parent's state, serve the connection."""
        signal.set_wakeup_fd(-1)
        for signum in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, signal.SIG_DFL)
        server = self._child_server
        assert server is not None and self._sel is not None and self._wake is not None
        server.slot = slot
        signal.signal(signal.SIGUSR1, server.RequestGracefulStop)
        _SetParentDeathSignal(self._libc, self._parent)
        # The listener above all: a child outliving the daemon must not
        # keep its port
        assert self._sock is not None
        self._sock.close()
        self._sel.close()  # no unregistering: the epoll set is the parent's too
        for fd in self._wake:
            os.close(fd)
        for other in self._pending.values():
            if other.sock is not None:
                other.sock.close()
        for fd in self.close_in_child:
            try:
                os.close(fd)
            except OSError:
                pass
        # The frozen objects stay frozen: collecting them would copy their pages
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        if self.child_init is not None:
            self.child_init()
        server.ServeConnection(sock, client.peer, client.accepted)

    def _Reap(self) -> None:
        """Wait for the children that ended; give back their slots (and the
        token of one that died in a request)."""
        assert self._board is not None and self._tokens is not None
        while self._children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            client = self._children.pop(pid, None)
            if client is None:
                continue
            in_request = self._board.Get(client.slot) == _BUSY
            if in_request:
                self._tokens.Give()
            self._free.append(client.slot)
            self._Uncount(client)
            code = os.waitstatus_to_exitcode(status)
            if code == 0 or (self.stop_requested and code in (-signal.SIGTERM,
                                                              -signal.SIGKILL)):
                continue
            how = (f"killed by {signal.Signals(-code).name}" if code < 0
                   else f"exited with code {code}")
            logging.warning("Child %d serving %s %s%s", pid, client.peer, how,
                            " while handling a request" if in_request else "")

    def _Running(self) -> int:
        assert self._board is not None
        return sum(1 for client in self._children.values()
                   if self._board.Get(client.slot) == _BUSY)

    def _WaitChildren(self, until: float, abortable: bool) -> None:
        """Reap until no child is left, ``until`` passes or (``abortable``)
        a non-graceful stop is asked for."""
        assert self._sel is not None
        while True:
            self._Reap()
            now = time.monotonic()
            if not self._children or now >= until or (abortable and self._abort):
                return
            for key, _ in self._sel.select(min(until - now, _MAX_WAIT)):
                if key.data is _WAKE:
                    self._DrainWake()

    def _StopChildren(self) -> None:
        """Stop accepting, then end the children as the stop asks."""
        assert self._sel is not None and self._sock is not None
        if self._paused_until is None:
            self._sel.unregister(self._sock)
        self._paused_until = None
        self._sock.close()
        for client in list(self._pending.values()):
            self._Drop(client)
        running = self._Running()
        if self.graceful and not self._abort and self._children:
            logging.info("Stopping: %d request(s) running, waiting for them (at most"
                         " %g s)", running, self.term_timeout)
            for client in self._children.values():
                self._Close(client, signal.SIGUSR1)
            self._WaitChildren(time.monotonic() + self.term_timeout + _TERM_MARGIN,
                               abortable=True)
            running = self._Running()
        if not self._children:
            return
        if running:
            logging.warning("Stopping with %d request(s) still running", running)
        for signum in (signal.SIGTERM, signal.SIGKILL):
            for client in self._children.values():
                self._Close(client, signum)
            self._WaitChildren(time.monotonic() + _KILL_WAIT, abortable=False)
            if not self._children:
                return
        logging.error("Children still alive after SIGKILL (stuck in the kernel?): %s",
                      ", ".join(str(pid) for pid in self._children))
