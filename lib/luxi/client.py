"""The luxi client: one method per call of the master daemon.

Method names and argument order are Ganeti's, so code written against
Ganeti's ``luxi.Client`` works unchanged. The transport is a blocking Unix
socket with a connect and a read/write timeout; one connection is kept
open and reused by successive calls (calls from several threads on one
client are serialised).
"""

from __future__ import annotations

import errno
import socket
import threading
import time
from collections.abc import Iterable, Sequence
from typing import Any

from ganeti import constants, errors, pathutils
from ganeti.luxi import protocol
from ganeti.luxi.protocol import (ConnectionClosedError, NoMasterError,
                                  ProtocolError, RequestError)

REQ_SUBMIT_JOB = "SubmitJob"
REQ_SUBMIT_JOB_TO_DRAINED_QUEUE = "SubmitJobToDrainedQueue"
REQ_SUBMIT_MANY_JOBS = "SubmitManyJobs"
REQ_WAIT_FOR_JOB_CHANGE = "WaitForJobChange"
REQ_CANCEL_JOB = "CancelJob"
REQ_CHANGE_JOB_PRIORITY = "ChangeJobPriority"
REQ_ARCHIVE_JOB = "ArchiveJob"
REQ_AUTO_ARCHIVE_JOBS = "AutoArchiveJobs"
REQ_QUERY = "Query"
REQ_QUERY_FIELDS = "QueryFields"
REQ_QUERY_JOBS = "QueryJobs"
REQ_QUERY_CLUSTER_INFO = "QueryClusterInfo"
REQ_QUERY_CONFIG_VALUES = "QueryConfigValues"
REQ_SET_DRAIN_FLAG = "SetDrainFlag"
REQ_SET_WATCHER_PAUSE = "SetWatcherPause"

REQ_ALL = frozenset([
    REQ_SUBMIT_JOB, REQ_SUBMIT_JOB_TO_DRAINED_QUEUE, REQ_SUBMIT_MANY_JOBS,
    REQ_WAIT_FOR_JOB_CHANGE, REQ_CANCEL_JOB, REQ_CHANGE_JOB_PRIORITY,
    REQ_ARCHIVE_JOB, REQ_AUTO_ARCHIVE_JOBS, REQ_QUERY, REQ_QUERY_FIELDS,
    REQ_QUERY_JOBS, REQ_QUERY_CLUSTER_INFO, REQ_QUERY_CONFIG_VALUES,
    REQ_SET_DRAIN_FLAG, REQ_SET_WATCHER_PAUSE,
])

DEF_CTMO = constants.LUXI_DEF_CTMO
DEF_RWTO = constants.LUXI_DEF_RWTO
WFJC_TIMEOUT = constants.LUXI_WFJC_TIMEOUT


def _WaitBeforeRetry(delay: float) -> None:
    """Pause between connect attempts (a hook for tests)."""
    time.sleep(delay)


def _ConnectPatiently(sock: socket.socket, address: str, timeout: float) -> None:
    """Connect ``sock`` to ``address``, retrying while the master is busy.

    A Unix socket whose listen backlog is full refuses a connect with
    EAGAIN: the master runs but has not accepted the connections before
    ours yet. That is retried, waiting a little longer each time, until
    ``timeout`` seconds have passed; then the master is reported busy
    (protocol.TimeoutError), not down.
    """
    deadline = time.monotonic() + timeout
    delay = constants.LUXI_CONNECT_RETRY_FIRST
    attempts = 0
    while True:
        attempts += 1
        try:
            with protocol.SocketAddress(address) as short_address:
                sock.connect(short_address)
            return
        except BlockingIOError as err:
            if err.errno != errno.EAGAIN:
                raise
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise protocol.TimeoutError(
                    f"The master daemon at {address} is too busy to accept"
                    f" connections: its listen queue stayed full for"
                    f" {timeout:g} seconds ({attempts} attempts)") from err
        _WaitBeforeRetry(min(delay, remaining))
        delay = min(delay * 2, constants.LUXI_CONNECT_RETRY_MAX)


class Transport:
    """A blocking connection to a luxi Unix socket.

    ``timeouts`` is ``(connect, read/write)`` in seconds. A master too busy
    to accept the connection at once (its listen queue full) is retried
    for up to the connect timeout. A whole answer must arrive within twice
    the read/write timeout, however it trickles in.
    """

    def __init__(self, address: str, timeouts: Sequence[float] | None = None,
                 max_size: int = constants.LUXI_MAX_MESSAGE_SIZE) -> None:
        self.address = address
        if timeouts is None:
            self._ctimeout, self._rwtimeout = float(DEF_CTMO), float(DEF_RWTO)
        else:
            self._ctimeout, self._rwtimeout = (float(t) for t in timeouts)
        self._splitter = protocol.FrameSplitter(max_size)
        self.socket: socket.socket | None = None
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(self._ctimeout)
            try:
                _ConnectPatiently(sock, address, self._ctimeout)
            except FileNotFoundError as err:
                raise NoMasterError(
                    f"Cannot connect to the master daemon at {address}:"
                    f" {err.strerror or err} (is ganeti-masterd running?)") from err
            except TimeoutError as err:
                raise protocol.TimeoutError(
                    f"Connecting to {address} timed out: {err}") from err
            except OSError as err:
                if err.errno in (errno.ENOENT, errno.ECONNREFUSED):
                    raise NoMasterError(
                        f"Cannot connect to the master daemon at {address}:"
                        f" {err.strerror or err} (is ganeti-masterd"
                        " running?)") from err
                raise
            sock.settimeout(self._rwtimeout)
        except BaseException:
            sock.close()
            raise
        self.socket = sock

    def _Socket(self) -> socket.socket:
        if self.socket is None:
            raise ProtocolError("Connection is closed")
        return self.socket

    def Send(self, msg: bytes) -> None:
        """Send one message (the terminator is added here)."""
        sock = self._Socket()
        try:
            sock.sendall(protocol.Frame(msg))
        except TimeoutError as err:
            raise protocol.TimeoutError(f"Sending timed out: {err}") from err
        except (BrokenPipeError, ConnectionResetError) as err:
            raise ConnectionClosedError(
                f"Connection closed while sending: {err}") from err

    def Recv(self) -> bytes:
        """Receive one message (without its terminator)."""
        sock = self._Socket()
        deadline = time.monotonic() + 2 * self._rwtimeout
        while True:
            msg = self._splitter.Pop()
            if msg is not None:
                return msg
            if time.monotonic() > deadline:
                raise protocol.TimeoutError("Extended receive timeout")
            try:
                data = sock.recv(65536)
            except TimeoutError as err:
                raise protocol.TimeoutError(f"Receive timeout: {err}") from err
            except ConnectionResetError as err:
                raise ConnectionClosedError(
                    f"Connection reset while reading: {err}") from err
            if not data:
                raise ConnectionClosedError("Connection closed while reading")
            self._splitter.Feed(data)

    def Call(self, msg: bytes) -> bytes:
        """Send a message and wait for the answer."""
        self.Send(msg)
        return self.Recv()

    def Close(self) -> None:
        """Close the connection."""
        if self.socket is not None:
            self.socket.close()
            self.socket = None


def CallLuxiMethod(transport_cb: Any, method: str, args: Sequence[Any],
                   version: int | None = None) -> Any:
    """Send a request through ``transport_cb(bytes) -> bytes``; decode it.

    A failed call raises the error the server encoded (errors.MaybeRaise),
    else RequestError with the result.
    """
    request = protocol.FormatRequest(method, args, version=version)
    success, result, resp_version = protocol.ParseResponse(transport_cb(request))
    if resp_version is not None and resp_version != version:
        raise errors.LuxiError(f"Luxi version mismatch, client {version},"
                               f" response {resp_version}")
    if success:
        return result
    errors.MaybeRaise(result)
    raise RequestError(result)


def _JobId(method: str, job_id: Any) -> int:
    if isinstance(job_id, bool):
        raise RequestError(f"Invalid job id {job_id!r} for {method}: expected"
                           " an integer")
    try:
        return int(job_id)
    except (TypeError, ValueError) as err:
        raise RequestError(f"Invalid job id {job_id!r} for {method}: expected"
                           " an integer") from err


def _OpsToWire(ops: Iterable[Any]) -> list[Any]:
    return [op.ToDict() if hasattr(op, "ToDict") else op for op in ops]


class Client:
    """High-level luxi client.

    ``address`` defaults to the master socket (``pathutils.MASTER_SOCKET``
    at the time of the call, so tests may change the root directory).
    ``version``, when given, is sent with every request, and answers must
    carry the same.
    """

    def __init__(self, address: str | None = None,
                 timeouts: Sequence[float] | None = None,
                 transport: type[Transport] = Transport,
                 version: int | None = None) -> None:
        self.address = address
        self.timeouts = timeouts
        self.transport_class = transport
        self.version = version
        self.transport: Transport | None = None
        self._lock = threading.Lock()

    def _GetAddress(self) -> str:
        return self.address if self.address is not None \
            else pathutils.MASTER_SOCKET

    def _Send(self, data: bytes) -> bytes:
        # A reused connection may have been closed by a restarted daemon;
        # that is seen when sending and then retried once on a new one
        for attempt in (0, 1):
            fresh = self.transport is None
            if self.transport is None:
                self.transport = self.transport_class(self._GetAddress(),
                                                      timeouts=self.timeouts)
            try:
                self.transport.Send(data)
            except ConnectionClosedError:
                self.Close()
                if fresh or attempt:
                    raise
                continue
            try:
                return self.transport.Recv()
            except BaseException:
                # The connection's state is unknown after a failed read
                self.Close()
                raise
        raise ProtocolError("unreachable")  # pragma: no cover

    def Close(self) -> None:
        """Close the connection (the next call opens a new one)."""
        transport, self.transport = self.transport, None
        if transport is not None:
            transport.Close()

    close = Close

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.Close()

    def CallMethod(self, method: str, args: Sequence[Any]) -> Any:
        """Call luxi ``method`` with the argument list ``args``."""
        if not isinstance(args, (list, tuple)):
            raise errors.ProgrammerError(
                f"Invalid arguments for luxi method {method}: expected a list,"
                f" got {type(args).__name__}")
        with self._lock:
            return CallLuxiMethod(self._Send, method, args, self.version)

    # --- jobs -------------------------------------------------------------------

    def SubmitJob(self, ops: Iterable[Any]) -> int:
        """Submit one job made of ``ops`` (opcodes or their dicts)."""
        return self.CallMethod(REQ_SUBMIT_JOB, (_OpsToWire(ops),))

    def SubmitJobToDrainedQueue(self, ops: Iterable[Any]) -> int:
        """Submit a job even though the queue is drained."""
        return self.CallMethod(REQ_SUBMIT_JOB_TO_DRAINED_QUEUE,
                               (_OpsToWire(ops),))

    def SubmitManyJobs(self, jobs: Iterable[Iterable[Any]]) -> list[Any]:
        """Submit several jobs; returns ``[(success, job id or error), ...]``."""
        return self.CallMethod(REQ_SUBMIT_MANY_JOBS,
                               ([_OpsToWire(ops) for ops in jobs],))

    def CancelJob(self, job_id: Any, kill: bool = False) -> Any:
        """Cancel a job; returns ``(success, message)``."""
        job_id = _JobId(REQ_CANCEL_JOB, job_id)
        return self.CallMethod(REQ_CANCEL_JOB, (job_id, kill))

    def ChangeJobPriority(self, job_id: Any, priority: int) -> Any:
        """Change a job's priority; returns ``(success, message)``."""
        job_id = _JobId(REQ_CHANGE_JOB_PRIORITY, job_id)
        return self.CallMethod(REQ_CHANGE_JOB_PRIORITY, (job_id, priority))

    def ArchiveJob(self, job_id: Any) -> bool:
        """Archive a finished job."""
        job_id = _JobId(REQ_ARCHIVE_JOB, job_id)
        return self.CallMethod(REQ_ARCHIVE_JOB, (job_id,))

    def AutoArchiveJobs(self, age: int, timeout: float | None = None) -> Any:
        """Archive jobs older than ``age`` seconds (-1: all finished ones).

        Returns ``(archived, remaining)``.
        """
        if timeout is None:
            timeout = (DEF_RWTO - 1) // 2
        return self.CallMethod(REQ_AUTO_ARCHIVE_JOBS, (age, timeout))

    def WaitForJobChangeOnce(self, job_id: Any, fields: list[str],
                             prev_job_info: Any, prev_log_serial: Any,
                             timeout: float = WFJC_TIMEOUT) -> Any:
        """Wait until the job changes, at most ``timeout`` seconds.

        Returns ``(job_info, log_entries)`` or ``constants.JOB_NOTCHANGED``.
        """
        job_id = _JobId(REQ_WAIT_FOR_JOB_CHANGE, job_id)
        return self.CallMethod(REQ_WAIT_FOR_JOB_CHANGE,
                               (job_id, fields, prev_job_info, prev_log_serial,
                                timeout))

    def WaitForJobChange(self, job_id: Any, fields: list[str],
                         prev_job_info: Any, prev_log_serial: Any) -> Any:
        """Wait, as long as it takes, until the job changes."""
        while True:
            result = self.WaitForJobChangeOnce(job_id, fields, prev_job_info,
                                               prev_log_serial)
            if result != constants.JOB_NOTCHANGED:
                return result

    def QueryJobs(self, job_ids: list[Any] | None, fields: list[str]) -> Any:
        """Field values of jobs (None for an unknown job)."""
        return self.CallMethod(REQ_QUERY_JOBS, (job_ids, fields))

    # --- queries ----------------------------------------------------------------

    def Query(self, what: str, fields: list[str], qfilter: Any) -> Any:
        """Query a resource; returns the QueryResponse dict."""
        return self.CallMethod(REQ_QUERY, (what, fields, qfilter))

    def QueryFields(self, what: str, fields: list[str] | None) -> Any:
        """Describe a resource's fields; returns the QueryFieldsResponse dict."""
        return self.CallMethod(REQ_QUERY_FIELDS, (what, fields))

    def QueryClusterInfo(self) -> dict[str, Any]:
        """The cluster's settings (gnt-cluster info)."""
        return self.CallMethod(REQ_QUERY_CLUSTER_INFO, ())

    def QueryConfigValues(self, fields: list[str]) -> list[Any]:
        """Selected configuration values, in the order of ``fields``."""
        return self.CallMethod(REQ_QUERY_CONFIG_VALUES, (fields,))

    # --- flags ------------------------------------------------------------------

    def SetDrainFlag(self, drain_flag: bool) -> bool:
        """Set or clear the queue's drain flag."""
        return self.CallMethod(REQ_SET_DRAIN_FLAG, (drain_flag,))

    # Ganeti's client calls it this
    SetQueueDrainFlag = SetDrainFlag

    def SetWatcherPause(self, until: float | None) -> Any:
        """Pause the watcher until the Unix time ``until`` (None: resume)."""
        return self.CallMethod(REQ_SET_WATCHER_PAUSE, (until,))
