"""Submitting jobs to the master daemon and following them.

The usual path of a command: build opcodes, :func:`SetGenericOpcodeOpts`
(dry-run, debug level, priority, reason trail from the options), then
:func:`SubmitOrSend`: with ``--submit`` it prints "JobID: N" and stops,
otherwise :func:`SubmitOpCode` sends the job and :func:`PollJob` follows
it, printing each log message of the job as it arrives, and returns the
opcode results or raises the job's error.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from ganeti import constants, errors, utils
from ganeti.cli import base
from ganeti.cli.base import JobSubmittedException, ToStderr, ToStdout

#: WaitForJobChange's answer when nothing changed before the timeout
JOB_NOTCHANGED = "nochange"

#: How long one WaitForJobChange call may wait on the master
DEFAULT_WFJC_TIMEOUT = constants.LUXI_WFJC_TIMEOUT

#: Job statuses after which polling stops
_POLL_STOP_STATUSES = frozenset([
    constants.JOB_STATUS_SUCCESS, constants.JOB_STATUS_ERROR,
    constants.JOB_STATUS_CANCELING, constants.JOB_STATUS_CANCELED])


def _EpochNano() -> int:
    return time.time_ns()


def _MergeTime(timestamp: Any) -> float:
    """``[seconds, microseconds]`` (or a number) as float seconds."""
    if isinstance(timestamp, (list, tuple)) and len(timestamp) == 2:
        return float(timestamp[0]) + float(timestamp[1]) / 1e6
    return float(timestamp)


def FormatLogMessage(log_type: str, log_msg: Any) -> str:
    """The text of a job log entry (non-message types are stringified)."""
    if log_type != constants.ELOG_MESSAGE or not isinstance(log_msg, str):
        log_msg = str(log_msg)
    return utils.SafeEncode(log_msg)


def FormatLogTime(timestamp: Any) -> str:
    """How a log entry's time is printed while a job is followed.

    Ganeti prints :func:`time.ctime` ("Sat Nov 21 16:50:05 2026").
    """
    return time.ctime(_MergeTime(timestamp))


# --- Generic options on opcodes --------------------------------------------------

def _ReasonTrail(opts: Any) -> list[list[Any]]:
    """The reason trail of a job sent by this command."""
    trail: list[list[Any]] = []
    reason = getattr(opts, "reason", None)
    if reason:
        trail.append([constants.OPCODE_REASON_SRC_USER, str(reason), _EpochNano()])
    binary = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "gnt"
    command = sys.argv[1] if len(sys.argv) > 1 else ""
    trail.append([f"{constants.OPCODE_REASON_SRC_CLIENT}:{binary}", command,
                  _EpochNano()])
    return trail


def SetGenericOpcodeOpts(opcode_list: Sequence[Any], options: Any) -> None:
    """Set dry_run, debug_level, priority and reason on opcodes from options."""
    if options is None:
        return
    for op in opcode_list:
        op.debug_level = getattr(options, "debug", 0) or 0
        if hasattr(options, "dry_run"):
            op.dry_run = bool(options.dry_run)
        priority = getattr(options, "priority", None)
        if priority is not None:
            op.priority = priority
        op.reason = _ReasonTrail(options)


# --- Polling ----------------------------------------------------------------------------

class JobPollReportCbBase:
    """What :func:`GenericPollJob` reports: log messages and idle waits."""

    def ReportLogMessage(self, job_id: int, serial: int, timestamp: Any,
                         log_type: str, log_msg: Any) -> None:
        """A new log entry of the job."""
        raise NotImplementedError

    def ReportNotChanged(self, job_id: int, status: str | None) -> None:
        """Nothing changed for a while (status: the last one seen, or None)."""
        raise NotImplementedError


class FeedbackFnJobPollReportCb(JobPollReportCbBase):
    """Passes each log entry as ``(timestamp, type, message)`` to a function."""

    def __init__(self, feedback_fn: Callable[[Any], None]):
        if not callable(feedback_fn):
            raise errors.ProgrammerError("feedback_fn must be callable")
        self.feedback_fn = feedback_fn

    def ReportLogMessage(self, job_id: int, serial: int, timestamp: Any,
                         log_type: str, log_msg: Any) -> None:
        self.feedback_fn((timestamp, log_type, log_msg))

    def ReportNotChanged(self, job_id: int, status: str | None) -> None:
        pass


class StdioJobPollReportCb(JobPollReportCbBase):
    """Prints log entries to stdout and, once each, waiting notes to stderr."""

    def __init__(self) -> None:
        self.notified_queued = False
        self.notified_waitlock = False

    def ReportLogMessage(self, job_id: int, serial: int, timestamp: Any,
                         log_type: str, log_msg: Any) -> None:
        ToStdout("%s %s", FormatLogTime(timestamp),
                 FormatLogMessage(log_type, log_msg))

    def ReportNotChanged(self, job_id: int, status: str | None) -> None:
        if status == constants.JOB_STATUS_QUEUED and not self.notified_queued:
            ToStderr("Job %s is waiting in queue", job_id)
            self.notified_queued = True
        elif status == constants.JOB_STATUS_WAITING and not self.notified_waitlock:
            ToStderr("Job %s is trying to acquire all necessary locks", job_id)
            self.notified_waitlock = True


def _RaiseJobError(job_id: int, opstatus: Sequence[str], opresult: Sequence[Any]) -> None:
    """Raise the error of the first failed opcode of a failed job."""
    has_ok = False
    for idx, (status, result) in enumerate(zip(opstatus, opresult)):
        if status == constants.OP_STATUS_SUCCESS:
            has_ok = True
        elif status == constants.OP_STATUS_ERROR:
            errors.MaybeRaise(result)
            if has_ok:
                raise errors.OpExecError(f"partial failure (opcode {idx}): {result}")
            raise errors.OpExecError(str(result))
    raise errors.OpExecError(f"Job {job_id} failed: {opresult}")


def GenericPollJob(job_id: int, cl: Any, reporter: JobPollReportCbBase,
                   update_freq: float = DEFAULT_WFJC_TIMEOUT) -> list[Any]:
    """Follow a job until it ends; return its opcode results.

    Calls ``cl.WaitForJobChangeOnce`` until the job reaches a final status,
    reporting every new log entry in order.

    @raise errors.JobLost: when the master does not know the job
    @raise errors.JobCanceled: when the job was cancelled
    @raise errors.OpExecError: (or the opcode's own error class) on failure
    """
    if update_freq <= 0:
        raise errors.ParameterError("Update frequency must be a positive number")
    prev_job_info = None
    prev_log_serial = None
    status = None
    while True:
        result = cl.WaitForJobChangeOnce(job_id, ["status"], prev_job_info,
                                         prev_log_serial, timeout=update_freq)
        if not result:
            raise errors.JobLost(f"Job with id {job_id} lost")
        if result == JOB_NOTCHANGED:
            reporter.ReportNotChanged(job_id, status)
            continue
        job_info, log_entries = result
        (status,) = job_info
        for serial, timestamp, log_type, message in log_entries or []:
            reporter.ReportLogMessage(job_id, serial, timestamp, log_type, message)
            prev_log_serial = serial if prev_log_serial is None \
                else max(prev_log_serial, serial)
        if not log_entries and status in _POLL_STOP_STATUSES:
            break
        prev_job_info = job_info

    jobs = cl.QueryJobs([job_id], ["status", "opstatus", "opresult"])
    if not jobs or jobs[0] is None:
        raise errors.JobLost(f"Job with id {job_id} lost")
    status, opstatus, opresult = jobs[0]
    if status == constants.JOB_STATUS_SUCCESS:
        return list(opresult)
    if status in (constants.JOB_STATUS_CANCELING, constants.JOB_STATUS_CANCELED):
        raise errors.JobCanceled(f"Job {job_id} was canceled")
    _RaiseJobError(job_id, opstatus, opresult)
    raise AssertionError("not reached")  # pragma: no cover


def PollJob(job_id: int, cl: Any = None, feedback_fn: Callable[[Any], None] | None = None,
            reporter: JobPollReportCbBase | None = None,
            update_freq: float = DEFAULT_WFJC_TIMEOUT) -> list[Any]:
    """Follow a job, printing its log (or passing it to ``feedback_fn``).

    Returns the list of opcode results; raises as :func:`GenericPollJob`.
    """
    if cl is None:
        cl = base.GetClient()
    if reporter is None:
        reporter = (FeedbackFnJobPollReportCb(feedback_fn) if feedback_fn
                    else StdioJobPollReportCb())
    elif feedback_fn:
        raise errors.ProgrammerError("Give a reporter or a feedback function, not both")
    return GenericPollJob(job_id, cl, reporter, update_freq=update_freq)


# --- Submitting ----------------------------------------------------------------------------

def _OpsForWire(ops: Sequence[Any]) -> list[Any]:
    """Opcodes as dicts (the luxi client may also take OpCode objects)."""
    return [op.ToDict() if hasattr(op, "ToDict") else op for op in ops]


def SendJob(ops: Sequence[Any], cl: Any = None) -> int:
    """Submit a job of ``ops`` without waiting; return its ID."""
    if cl is None:
        cl = base.GetClient()
    return cl.SubmitJob(_OpsForWire(ops))


def SubmitOpCode(op: Any, cl: Any = None, feedback_fn: Callable[[Any], None] | None = None,
                 opts: Any = None, reporter: JobPollReportCbBase | None = None) -> Any:
    """Submit a one-opcode job, follow it, and return the opcode's result."""
    if cl is None:
        cl = base.GetClient()
    SetGenericOpcodeOpts([op], opts)
    job_id = SendJob([op], cl=cl)
    if getattr(opts, "print_jobid", False):
        ToStdout("%d", job_id)
    results = PollJob(job_id, cl=cl, feedback_fn=feedback_fn, reporter=reporter)
    return results[0]


def SubmitOrSend(op: Any, opts: Any, cl: Any = None,
                 feedback_fn: Callable[[Any], None] | None = None) -> Any:
    """Run ``op`` as :func:`SubmitOpCode`, or only submit it with ``--submit``.

    With ``--submit`` the job ID is printed alone with ``--print-jobid``, and
    :class:`JobSubmittedException` ends the command ("JobID: N", exit 0).
    """
    if opts is not None and getattr(opts, "submit_only", False):
        job = [op]
        SetGenericOpcodeOpts(job, opts)
        job_id = SendJob(job, cl=cl)
        if getattr(opts, "print_jobid", False):
            ToStdout("%d", job_id)
        raise JobSubmittedException(job_id)
    return SubmitOpCode(op, cl=cl, feedback_fn=feedback_fn, opts=opts)


class JobExecutor:
    """Submits several jobs at once and collects their results.

    ``QueueJob(name, *ops)`` for each job, then :meth:`GetResults` (which
    submits pending jobs) returns ``[(success, result or error text), ...]``
    in the order the jobs were queued.
    """

    def __init__(self, cl: Any = None, verbose: bool = True, opts: Any = None,
                 feedback_fn: Callable[[Any], None] | None = None):
        self.cl = cl if cl is not None else base.GetClient()
        self.verbose = verbose
        self.opts = opts
        self.feedback_fn = feedback_fn
        self.queue: list[tuple[int, str | None, list[Any]]] = []
        self.jobs: list[tuple[int, bool, Any, str | None]] = []

    def QueueJob(self, name: str | None, *ops: Any) -> None:
        """Add a job of ``ops`` (shown as ``name``) to be submitted."""
        SetGenericOpcodeOpts(ops, self.opts)
        self.queue.append((len(self.queue), name, list(ops)))

    def AddJobId(self, name: str | None, submitted: bool, job_id: Any) -> None:
        """Follow a job submitted elsewhere (e.g. by an opcode), as if it had
        been queued here: ``submitted`` False means ``job_id`` is the error."""
        self.jobs.append((len(self.jobs), submitted, job_id, name))

    def SubmitPending(self, each: bool = False) -> list[tuple[bool, Any]]:
        """Submit the queued jobs; return ``(submitted, job_id or error)``."""
        if not self.queue:
            return []
        if each:
            results: list[tuple[bool, Any]] = []
            for _, _, ops in self.queue:
                try:
                    results.append((True, SendJob(ops, cl=self.cl)))
                except errors.GenericError as err:
                    results.append((False, str(err)))
        else:
            results = [tuple(item) for item in  # type: ignore[misc]
                       self.cl.SubmitManyJobs([_OpsForWire(ops)
                                               for _, _, ops in self.queue])]
        for (idx, name, _), (ok, value) in zip(self.queue, results):
            self.jobs.append((idx, ok, value, name))
        self.queue = []
        return results

    def GetResults(self) -> list[tuple[bool, Any]]:
        """Submit what is pending, wait for every job, return the outcomes."""
        self.SubmitPending()
        outcomes: list[tuple[int, bool, Any]] = []
        for idx, submitted, job_id, name in self.jobs:
            if not submitted:
                ToStderr("Failed to submit job%s: %s",
                         f" for {name}" if name else "", job_id)
                outcomes.append((idx, False, job_id))
                continue
            if self.verbose:
                ToStdout("Waiting for job %s%s ...", job_id,
                         f" for {name}" if name else "")
            try:
                result = PollJob(job_id, cl=self.cl, feedback_fn=self.feedback_fn)
                outcomes.append((idx, True, result))
            except (errors.GenericError, base.JobSubmittedException) as err:
                from ganeti.cli.command import FormatError
                _, text = FormatError(err)
                ToStderr("Job %s%s has failed: %s", job_id,
                         f" for {name}" if name else "", text)
                outcomes.append((idx, False, text))
        outcomes.sort(key=lambda item: item[0])
        self.jobs = []
        return [(ok, value) for _, ok, value in outcomes]

    def WaitOrShow(self, wait: bool) -> list[tuple[bool, Any]] | None:
        """Wait for the jobs, or only submit them and print their IDs."""
        if wait:
            return self.GetResults()
        self.SubmitPending()
        for _, submitted, job_id, name in self.jobs:
            if submitted:
                ToStdout("%s: %s", job_id, name)
            else:
                ToStderr("Failure for %s: %s", name, job_id)
        self.jobs = []
        return None
