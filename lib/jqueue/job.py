"""Jobs and their opcodes in memory, and their job-file dicts.

A job is a list of opcodes run in order. Each opcode has a status, a
result, a log and timestamps; the job's status is derived from its
opcodes' statuses (never stored), as is its priority. The dict format is
the one of doc/design-masterd.rst ("Job file format").
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any

from ganeti import constants
from ganeti import errors
from ganeti import opcodes

#: A timestamp as stored in job files: [seconds, microseconds]
Timestamp = list[int]

#: One log entry: [serial, timestamp, type, message]
LogEntry = list[Any]


def TimeStampNow() -> Timestamp:
    """The current time as [seconds, microseconds]."""
    now = time.time()
    sec = int(now)
    return [sec, int((now - sec) * 1000000)]


def _CheckTimestamp(value: Any, what: str) -> Timestamp | None:
    if value is None:
        return None
    if (not isinstance(value, (list, tuple)) or len(value) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)):
        raise errors.JobFileCorrupted(f"Invalid {what} {value!r}: expected [sec, usec]")
    return [value[0], value[1]]


class QueuedOpCode:
    """One opcode of a job with its execution state."""

    __slots__ = ("input", "status", "result", "log", "priority",
                 "start_timestamp", "exec_timestamp", "end_timestamp")

    def __init__(self, op: opcodes.OpCode) -> None:
        self.input = op
        self.status = constants.OP_STATUS_QUEUED
        self.result: Any = None
        self.log: list[LogEntry] = []
        self.priority: int = getattr(op, constants.OP_PRIORITY, constants.OP_PRIO_DEFAULT)
        self.start_timestamp: Timestamp | None = None
        self.exec_timestamp: Timestamp | None = None
        self.end_timestamp: Timestamp | None = None

    @classmethod
    def Restore(cls, state: Any) -> QueuedOpCode:
        """Build an opcode from its job-file dict."""
        if not isinstance(state, dict):
            raise errors.JobFileCorrupted(f"Opcode entry is not a dict: {state!r}")
        try:
            op = opcodes.OpCode.LoadOpCode(state["input"])
        except KeyError as err:
            raise errors.JobFileCorrupted(f"Opcode entry lacks {err}") from err
        except errors.OpPrereqError as err:
            raise errors.JobFileCorrupted(f"Invalid opcode input: {err}") from err
        obj = cls(op)
        status = state.get("status")
        if status not in constants.OP_STATUS_ALL:
            raise errors.JobFileCorrupted(f"Invalid opcode status {status!r}")
        obj.status = status
        obj.result = state.get("result")
        log = state.get("log", [])
        if not isinstance(log, list) or not all(
                isinstance(e, list) and len(e) == 4 for e in log):
            raise errors.JobFileCorrupted(f"Invalid opcode log {log!r}")
        obj.log = log
        prio = state.get("priority", obj.priority)
        if prio not in constants.OP_PRIO_ALL or isinstance(prio, bool):
            raise errors.JobFileCorrupted(f"Invalid opcode priority {prio!r}")
        obj.priority = prio
        obj.start_timestamp = _CheckTimestamp(state.get("start_timestamp"), "start_timestamp")
        obj.exec_timestamp = _CheckTimestamp(state.get("exec_timestamp"), "exec_timestamp")
        obj.end_timestamp = _CheckTimestamp(state.get("end_timestamp"), "end_timestamp")
        return obj

    def Serialize(self) -> dict[str, Any]:
        """The job-file dict of this opcode."""
        return {
            "input": self.input.ToDict(),
            "status": self.status,
            "result": self.result,
            "log": list(self.log),
            "priority": self.priority,
            "start_timestamp": self.start_timestamp,
            "exec_timestamp": self.exec_timestamp,
            "end_timestamp": self.end_timestamp,
        }


def CalcJobStatus(op_statuses: list[str]) -> str:
    """A job's status from its opcodes' statuses (as Ganeti computes it)."""
    status = constants.JOB_STATUS_QUEUED
    all_success = True
    for op_status in op_statuses:
        if op_status == constants.OP_STATUS_SUCCESS:
            continue
        all_success = False
        if op_status == constants.OP_STATUS_QUEUED:
            continue
        if op_status == constants.OP_STATUS_WAITING:
            status = constants.JOB_STATUS_WAITING
        elif op_status == constants.OP_STATUS_RUNNING:
            status = constants.JOB_STATUS_RUNNING
        elif op_status == constants.OP_STATUS_CANCELING:
            return constants.JOB_STATUS_CANCELING
        elif op_status == constants.OP_STATUS_ERROR:
            return constants.JOB_STATUS_ERROR
        elif op_status == constants.OP_STATUS_CANCELED:
            return constants.JOB_STATUS_CANCELED
    if all_success:
        return constants.JOB_STATUS_SUCCESS
    return status


class QueuedJob:
    """A job: its opcodes and timestamps, plus in-memory bookkeeping.

    The job queue's lock protects every attribute; the processor changes
    them only through the queue's methods.
    """

    def __init__(self, job_id: int, ops: list[opcodes.OpCode]) -> None:
        if not ops:
            raise errors.GenericError("A job needs at least one opcode")
        self.id = job_id
        self.ops = [QueuedOpCode(op) for op in ops]
        self.received_timestamp: Timestamp | None = TimeStampNow()
        self.start_timestamp: Timestamp | None = None
        self.end_timestamp: Timestamp | None = None
        self.log_serial = 0
        # Bumped on every change; lets writers and watchers skip stale work
        self.change_serial = 0
        self.written_serial = 0
        # The newest change_serial known to be synced to disk
        self.synced_serial = 0
        self.write_lock = threading.Lock()
        self.archived = False

    def __repr__(self) -> str:
        return f"<QueuedJob {self.id} {self.CalcStatus()}>"

    @classmethod
    def Restore(cls, state: Any) -> QueuedJob:
        """Build a job from its job-file dict; JobFileCorrupted if invalid."""
        if not isinstance(state, dict):
            raise errors.JobFileCorrupted(f"Job data is not a dict: {state!r}")
        job_id = state.get("id")
        if isinstance(job_id, str) and job_id.isdigit():
            job_id = int(job_id)
        if isinstance(job_id, bool) or not isinstance(job_id, int) or job_id < 0:
            raise errors.JobFileCorrupted(f"Invalid job ID {job_id!r}")
        ops = state.get("ops")
        if not isinstance(ops, list) or not ops:
            raise errors.JobFileCorrupted(f"Job {job_id} has no opcodes")
        obj = cls.__new__(cls)
        obj.id = job_id
        obj.ops = [QueuedOpCode.Restore(op) for op in ops]
        obj.received_timestamp = _CheckTimestamp(state.get("received_timestamp"),
                                                 "received_timestamp")
        obj.start_timestamp = _CheckTimestamp(state.get("start_timestamp"),
                                              "start_timestamp")
        obj.end_timestamp = _CheckTimestamp(state.get("end_timestamp"), "end_timestamp")
        serial = state.get("log_serial", 0)
        if isinstance(serial, bool) or not isinstance(serial, int):
            raise errors.JobFileCorrupted(f"Invalid log_serial {serial!r}")
        # Never hand out a serial twice, even if the file was edited
        obj.log_serial = max([serial] + [entry[0] for op in obj.ops for entry in op.log
                                         if isinstance(entry[0], int)])
        obj.change_serial = 0
        obj.written_serial = 0
        obj.synced_serial = 0
        obj.write_lock = threading.Lock()
        obj.archived = False
        return obj

    def Serialize(self) -> dict[str, Any]:
        """The job-file dict."""
        return {
            "id": self.id,
            "ops": [op.Serialize() for op in self.ops],
            "received_timestamp": self.received_timestamp,
            "start_timestamp": self.start_timestamp,
            "end_timestamp": self.end_timestamp,
            "log_serial": self.log_serial,
        }

    def CalcStatus(self) -> str:
        """The job's status, derived from its opcodes."""
        return CalcJobStatus([op.status for op in self.ops])

    def CalcPriority(self) -> int:
        """The highest priority (lowest number) of the unfinished opcodes."""
        prios = [op.priority for op in self.ops if op.status not in constants.OPS_FINALIZED]
        if not prios:
            return constants.OP_PRIO_DEFAULT
        return min(prios)

    def IsFinalized(self) -> bool:
        """Whether the job has reached a final status."""
        return self.CalcStatus() in constants.JOBS_FINALIZED

    def EndPending(self) -> bool:
        """Whether the job is final in memory but not yet (synced) on disk.

        Until then nobody waiting for the job is told that it ended.
        """
        return self.change_serial > self.synced_serial and self.IsFinalized()

    def GetInfo(self) -> dict[str, Any]:
        """The job-file dict plus the computed status and priority."""
        info = self.Serialize()
        info["status"] = self.CalcStatus()
        info["priority"] = self.CalcPriority()
        info["archived"] = self.archived
        return info

    def InfoView(self) -> JobInfoView:
        """:meth:`GetInfo` computed key by key, for reading a few fields."""
        return JobInfoView(self)

    def GetLogEntries(self, newer_than: int | None) -> list[LogEntry]:
        """Log entries with a serial above ``newer_than`` (all for None)."""
        serial = -1 if newer_than is None else newer_than
        entries: list[LogEntry] = []
        for op in self.ops:
            entries.extend(entry for entry in op.log if entry[0] > serial)
        return entries

    def MarkUnfinishedOps(self, status: str, result: Any) -> None:
        """Set every unfinished opcode to ``status`` with ``result``; end the job."""
        now = TimeStampNow()
        for op in self.ops:
            if op.status in constants.OPS_FINALIZED:
                continue
            op.status = status
            op.result = result
            op.end_timestamp = now
        self.end_timestamp = now

    def AddLog(self, op_index: int, log_type: str, message: Any) -> LogEntry:
        """Append a log entry to an opcode with the next serial."""
        self.log_serial += 1
        entry = [self.log_serial, TimeStampNow(), log_type, message]
        self.ops[op_index].log.append(entry)
        return entry


class JobInfoView(Mapping[str, Any]):
    """A read-only mapping with the keys of :meth:`QueuedJob.GetInfo`.

    Each key is computed when read, so that reading the status of a job
    does not serialise all its opcodes. Valid only as long as the job does
    not change (the caller holds the queue lock).
    """

    __slots__ = ("_job", "_ops")

    _KEYS = ("id", "ops", "received_timestamp", "start_timestamp", "end_timestamp",
             "log_serial", "status", "priority", "archived")

    def __init__(self, job: QueuedJob) -> None:
        self._job = job
        self._ops: list[dict[str, Any]] | None = None

    def __getitem__(self, key: str) -> Any:
        job = self._job
        if key == "status":
            return job.CalcStatus()
        if key == "id":
            return job.id
        if key == "ops":
            if self._ops is None:
                self._ops = [op.Serialize() for op in job.ops]
            return self._ops
        if key == "priority":
            return job.CalcPriority()
        if key == "archived":
            return job.archived
        if key in ("received_timestamp", "start_timestamp", "end_timestamp", "log_serial"):
            return getattr(job, key)
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return iter(self._KEYS)

    def __len__(self) -> int:
        return len(self._KEYS)
