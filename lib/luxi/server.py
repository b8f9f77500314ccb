"""The luxi server: an asyncio Unix-socket server driven by a method table.

The server knows nothing of jobs: it reads requests, checks the method
name and the number of arguments against a table of :class:`LuxiMethod`,
runs the handler and writes the answer. Handlers come in three kinds:

- ``KIND_INLINE``: quick, run in the event loop;
- ``KIND_THREAD``: may touch files (job submission, archiving), run in a
  small thread pool so that the loop never waits on a disk;
- ``KIND_ASYNC``: coroutines for calls that wait (WaitForJobChange); while
  one runs the connection is watched, and a client that goes away cancels
  its handler (which must clean up in ``finally``). The handler may also
  be a plain function, run in the loop, returning either its answer (no
  waiting needed, which saves the watching) or an awaitable to wait for;
- ``KIND_LOOP``: run in the event loop, returning the answer or an
  awaitable for a short wait that needs no watching of the connection
  (job submission: the job queue's writer thread writes the job and wakes
  the loop, so no luxi thread is involved).

Every connection is served by its own task, one request after another. A
request that cannot be parsed, names an unknown method or has the wrong
number of arguments is answered with an error and the connection stays
usable; a message larger than the limit (``LUXI_MAX_REQUEST_SIZE``), cut
short by the end of the stream, or left unfinished for longer than
``LUXI_PARTIAL_REQUEST_TIMEOUT``, is answered with an error, logged, and the
connection is closed. Either way other clients are not affected. The
sockets listen with a backlog of ``LUXI_LISTEN_BACKLOG``, so a burst of
connects waits for the loop instead of failing.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import inspect
import logging
import os
import socket
import struct
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ganeti import constants, errors
from ganeti.luxi import protocol

KIND_INLINE = "inline"
KIND_THREAD = "thread"
KIND_ASYNC = "async"
KIND_LOOP = "loop"
_KINDS = frozenset([KIND_INLINE, KIND_THREAD, KIND_ASYNC, KIND_LOOP])

_READ_SIZE = 65536


@dataclass(frozen=True)
class LuxiMethod:
    """One luxi method: its handler and how many arguments it takes."""

    handler: Callable[..., Any]
    min_args: int
    max_args: int
    kind: str = KIND_THREAD

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise errors.ProgrammerError(f"Unknown luxi handler kind {self.kind!r}")
        if not 0 <= self.min_args <= self.max_args:
            raise errors.ProgrammerError(
                f"Invalid argument counts {self.min_args}..{self.max_args}")

    def CheckArgs(self, method: str, args: list[Any]) -> None:
        """Raise LuxiError unless ``args`` has an acceptable length."""
        count = len(args)
        if self.min_args <= count <= self.max_args:
            return
        if self.min_args == self.max_args:
            expected = f"{self.min_args}"
        else:
            expected = f"{self.min_args} to {self.max_args}"
        raise errors.LuxiError(f"Luxi method {method} takes {expected}"
                               f" argument(s), got {count}")


class _ClientGone(Exception):
    """The client closed the connection while its request was handled."""


class _Connection:
    """The reading side of one client connection.

    A request must arrive whole within ``partial_timeout`` seconds of its
    first byte (None: no limit): a client that sends part of one and then
    nothing, or trickles it in, does not keep its connection forever. A
    connection idle between requests has no such limit.
    """

    def __init__(self, reader: asyncio.StreamReader, max_size: int,
                 partial_timeout: float | None = None) -> None:
        self.reader = reader
        self.splitter = protocol.FrameSplitter(max_size)
        self.partial_timeout = partial_timeout
        self.eof = False

    async def NextMessage(self) -> bytes | None:
        """The next request, or None at the end of the stream.

        @raise protocol.MessageTooLarge: see FrameSplitter
        @raise protocol.ConnectionClosedError: the stream ended inside a
            message
        @raise protocol.TimeoutError: a message was started but not
            finished in time
        """
        loop = asyncio.get_running_loop()
        deadline: float | None = None
        while True:
            msg = self.splitter.Pop()
            if msg is not None:
                return msg
            if self.eof:
                return None
            if self.partial_timeout is None or not self.splitter.pending_size:
                data = await self.reader.read(_READ_SIZE)
            else:
                if deadline is None:
                    deadline = loop.time() + self.partial_timeout
                try:
                    async with asyncio.timeout_at(deadline):
                        data = await self.reader.read(_READ_SIZE)
                except TimeoutError:
                    raise protocol.TimeoutError(
                        "Unfinished luxi request: the client sent"
                        f" {self.splitter.pending_size} bytes without a"
                        " terminator and did not finish the request within"
                        f" {self.partial_timeout:g} seconds") from None
            self.Feed(data)
            if self.eof and self.splitter.pending.strip():
                raise protocol.ConnectionClosedError(
                    "Truncated luxi message: the connection was closed"
                    f" after {self.splitter.pending_size} bytes without"
                    " a terminator")

    def Feed(self, data: bytes) -> None:
        """Add bytes read from the client ('' means end of stream)."""
        if not data:
            self.eof = True
        else:
            self.splitter.Feed(data)


class LuxiServer:
    """Serve a table of luxi methods on one or more Unix sockets."""

    def __init__(self, methods: Mapping[str, LuxiMethod],
                 max_message_size: int = constants.LUXI_MAX_REQUEST_SIZE,
                 threads: int = constants.MASTERD_LUXI_THREADS,
                 executor: concurrent.futures.Executor | None = None,
                 partial_timeout: float | None = constants.LUXI_PARTIAL_REQUEST_TIMEOUT,
                 backlog: int = constants.LUXI_LISTEN_BACKLOG) -> None:
        self.methods = dict(methods)
        self.max_message_size = max_message_size
        self.partial_timeout = partial_timeout
        self.backlog = backlog
        self._own_executor = executor is None
        self._executor = executor if executor is not None else \
            concurrent.futures.ThreadPoolExecutor(max_workers=threads,
                                                  thread_name_prefix="luxi")
        self._servers: list[asyncio.AbstractServer] = []
        self._paths: list[str] = []
        self._tasks: set[asyncio.Task] = set()
        self.requests_served = 0

    # --- lifecycle --------------------------------------------------------------

    async def Start(self, paths: Iterable[str],
                    mode: int = constants.LUXI_SOCKET_PERMS, gid: int = -1) -> None:
        """Listen on every path in ``paths`` (stale socket files are replaced),
        each socket with ``mode`` and, unless -1, group ``gid``.

        The caller must make sure no other server uses the paths (the
        master holds its pid file lock before calling this).
        """
        for path in paths:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
            # Bound under a temporary name and renamed into place once its
            # mode and group are set: a client never sees the socket with
            # the umask's permissions.
            tmp_path = f"{path}.new"
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp_path)
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                with protocol.SocketAddress(tmp_path) as address:
                    sock.bind(address)
                os.chmod(tmp_path, mode)
                if gid != -1:
                    os.chown(tmp_path, -1, gid)
                os.rename(tmp_path, path)
            except BaseException:
                sock.close()
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp_path)
                raise
            server = await asyncio.start_unix_server(self._HandleClient, sock=sock,
                                                     limit=_READ_SIZE,
                                                     backlog=self.backlog)
            self._servers.append(server)
            self._paths.append(path)
            logging.info("Luxi server listening on %s", path)

    def StopAccepting(self) -> None:
        """Stop accepting connections and remove the socket files."""
        for server in self._servers:
            server.close()
        for path in self._paths:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        self._paths = []

    async def Stop(self) -> None:
        """Stop accepting, end every connection, stop the thread pool."""
        self.StopAccepting()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        for server in self._servers:
            await server.wait_closed()
        self._servers = []
        if self._own_executor:
            self._executor.shutdown(wait=True, cancel_futures=True)

    # --- serving ----------------------------------------------------------------

    async def _HandleClient(self, reader: asyncio.StreamReader,
                            writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        conn = _Connection(reader, self.max_message_size, self.partial_timeout)
        try:
            await self._Serve(conn, writer)
        except asyncio.CancelledError:
            pass
        except (ConnectionError, OSError) as err:
            logging.debug("Luxi client connection failed: %s", err)
        except Exception:  # a bug must not take the server down
            logging.exception("Unexpected error serving a luxi client")
        finally:
            if task is not None:
                self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                try:
                    # Flushing what is left waits for the client to read it
                    async with asyncio.timeout(self.partial_timeout):
                        await writer.wait_closed()
                except TimeoutError:
                    writer.transport.abort()

    async def _Serve(self, conn: _Connection, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                msg = await conn.NextMessage()
            except protocol.ProtocolError as err:
                # The stream cannot be trusted any more: answer and close
                logging.warning("Closing luxi connection from %s: %s",
                                _PeerName(writer), err)
                await self._WriteLast(writer, protocol.FormatError(err))
                return
            if msg is None:
                return
            try:
                answer = await self._Answer(conn, msg)
            except _ClientGone:
                return
            await self._Write(writer, answer)

    @staticmethod
    async def _Write(writer: asyncio.StreamWriter, answer: bytes) -> None:
        writer.write(protocol.Frame(answer))
        await writer.drain()

    async def _WriteLast(self, writer: asyncio.StreamWriter, answer: bytes) -> None:
        """Send a last answer to a client that may not read it any more.

        A client that stopped reading would hold the connection (and its
        task) forever: whatever cannot be sent in time is dropped.
        """
        try:
            async with asyncio.timeout(self.partial_timeout):
                await self._Write(writer, answer)
        except TimeoutError:
            writer.transport.abort()

    async def _Answer(self, conn: _Connection, msg: bytes) -> bytes:
        version = None
        try:
            method, args, version = protocol.ParseRequest(msg)
            spec = self.methods.get(method)
            if spec is None:
                raise errors.LuxiError(f"Unknown luxi method '{method}'")
            spec.CheckArgs(method, args)
            result = await self._Run(conn, method, spec, args)
        except (_ClientGone, asyncio.CancelledError):
            raise
        except errors.GenericError as err:
            logging.debug("Luxi request failed: %s", err)
            return protocol.FormatError(err, version)
        except Exception as err:
            logging.exception("Luxi handler failed unexpectedly")
            return protocol.FormatError(err, version)
        self.requests_served += 1
        try:
            return protocol.FormatResponse(True, result, version)
        except protocol.EncodingError as err:
            logging.error("Cannot encode the answer to %s: %s", method, err)
            return protocol.FormatError(err, version)

    async def _Run(self, conn: _Connection, method: str, spec: LuxiMethod,
                   args: list[Any]) -> Any:
        logging.debug("Luxi request %s%r", method, args)
        if spec.kind == KIND_INLINE:
            return spec.handler(*args)
        if spec.kind == KIND_LOOP:
            result = spec.handler(*args)
            if inspect.isawaitable(result):
                return await result
            return result
        if spec.kind == KIND_THREAD:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._executor,
                                              lambda: spec.handler(*args))
        result = spec.handler(*args)
        if not inspect.isawaitable(result):
            return result  # answered without waiting
        return await self._RunWatched(conn, result)

    async def _RunWatched(self, conn: _Connection, coro: Awaitable[Any]) -> Any:
        """Run ``coro``; cancel it when the client closes the connection."""
        work = asyncio.ensure_future(coro)
        watch: asyncio.Task | None = None
        try:
            while True:
                if watch is None and not conn.eof:
                    watch = asyncio.ensure_future(conn.reader.read(_READ_SIZE))
                waiting: set[asyncio.Future] = {work}
                if watch is not None:
                    waiting.add(watch)
                done, _ = await asyncio.wait(waiting,
                                             return_when=asyncio.FIRST_COMPLETED)
                if work in done:
                    return work.result()
                assert watch is not None
                data = watch.result()
                watch = None
                if not data:
                    raise _ClientGone()
                # A request sent before the answer: keep it for later
                conn.Feed(data)
        finally:
            if watch is not None:
                watch.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await watch
                if not watch.cancelled() and watch.exception() is None:
                    # Read just as the work finished: keep it for later
                    conn.Feed(watch.result())
            if not work.done():
                work.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await work


def _PeerName(writer: asyncio.StreamWriter) -> str:
    """The client of a connection, for log messages: its pid and uid."""
    sock = writer.get_extra_info("socket")
    try:
        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED,
                                struct.calcsize("3i"))
        pid, uid, _ = struct.unpack("3i", creds)
    except (AttributeError, OSError):
        return "an unknown client"
    return f"pid {pid} (uid {uid})"


def RunHandlerSoon(loop: asyncio.AbstractEventLoop,
                   callback: Callable[[], None]) -> Callable[[], None]:
    """A function, callable from any thread, that runs ``callback`` in ``loop``.

    Calls after the loop closed are ignored.
    """
    def _Notify() -> None:
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(callback)
    return _Notify
