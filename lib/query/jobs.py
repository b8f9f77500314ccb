"""The "job" query resource: Ganeti's job fields over job dicts.

Items are ``(job_id, job)`` pairs where ``job`` is a dict in the job-file
format of doc/design-masterd.rst plus ``"status"`` and ``"archived"``, as
``JobQueue.GetJobsInfo`` returns it, or None for a job that does not exist
(its fields other than ``id`` are then ``RS_UNAVAIL``, as in Ganeti when
``gnt-job list`` names a missing job).

Timestamps are ``[seconds, microseconds]`` pairs (kind ``other``, as in
Ganeti); missing ones are ``RS_UNAVAIL`` for the job-level fields and None
inside the per-opcode lists.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ganeti import constants, errors, opcodes
from ganeti.constants import QFT_BOOL, QFT_NUMBER, QFT_OTHER, QFT_TEXT
from ganeti.query.engine import (
    CheckFieldNames,
    FieldQuery,
    RegisterResource,
    Resource,
)
from ganeti.query.fields import (
    QFF_JOB_ID,
    QFF_SPLIT_TIMESTAMP,
    UNAVAIL,
    FieldDefinition,
    FieldTable,
    ToPlain,
)
from ganeti.query.filter import ParseJobId

JobItem = tuple[int, dict[str, Any] | None]


def CalcJobStatus(job: dict[str, Any]) -> str:
    """A job's status from its opcodes' statuses (Ganeti's rules).

    All opcodes succeeded: success; the first canceling, canceled or failed
    opcode decides; otherwise running or waiting if an opcode is, else
    queued.
    """
    status = constants.JOB_STATUS_QUEUED
    all_success = True
    for op in job.get("ops", []):
        op_status = op.get("status")
        if op_status == constants.OP_STATUS_SUCCESS:
            continue
        all_success = False
        if op_status in (constants.OP_STATUS_WAITING, constants.OP_STATUS_RUNNING):
            status = op_status
        elif op_status in (constants.OP_STATUS_CANCELING, constants.OP_STATUS_CANCELED,
                           constants.OP_STATUS_ERROR):
            return op_status
    if all_success:
        return constants.JOB_STATUS_SUCCESS
    return status


def CalcJobPriority(job: dict[str, Any]) -> int:
    """The highest priority (lowest number) of the unfinished opcodes;
    the default priority once every opcode has finished."""
    pending = [op.get("priority", constants.OP_PRIO_DEFAULT)
               for op in job.get("ops", [])
               if op.get("status") not in constants.OPS_FINALIZED]
    return min(pending) if pending else constants.OP_PRIO_DEFAULT


def SummarizeOp(op_input: Any) -> str:
    """``"TEST_DELAY(0.001)"`` for an opcode's input dict.

    Falls back to the OP_ID without its ``OP_`` prefix when the dict does
    not load as an opcode (e.g. a job written by a newer version).
    """
    try:
        return opcodes.OpCode.LoadOpCode(op_input).Summary()
    except Exception:  # a summary must never make a query fail
        op_id = op_input.get("OP_ID") if isinstance(op_input, dict) else None
        if isinstance(op_id, str):
            return op_id[len("OP_"):] if op_id.startswith("OP_") else op_id
        logging.debug("Opcode input without OP_ID: %r", op_input)
        return "UNKNOWN"


def _timestamp(value: Any) -> Any:
    return None if value is None else list(value)


def _job_value(fn: Callable[[dict[str, Any]], Any]) -> Callable[[Any, JobItem], Any]:
    def getter(ctx: Any, item: JobItem) -> Any:
        job = item[1]
        return UNAVAIL if job is None else fn(job)
    return getter


def _per_op(fn: Callable[[dict[str, Any]], Any]) -> Callable[[Any, JobItem], Any]:
    return _job_value(lambda job: [fn(op) for op in job.get("ops", [])])


def _job_timestamp(key: str) -> Callable[[Any, JobItem], Any]:
    def fn(job: dict[str, Any]) -> Any:
        value = job.get(key)
        return UNAVAIL if value is None else list(value)
    return _job_value(fn)


def _status(job: dict[str, Any]) -> str:
    status = job.get("status")
    return status if status is not None else CalcJobStatus(job)


def _priority(job: dict[str, Any]) -> int:
    priority = job.get("priority")
    return priority if priority is not None else CalcJobPriority(job)


_PRIO_RANGE = f"{constants.OP_PRIO_LOWEST} to {constants.OP_PRIO_HIGHEST}"

#: The job fields: Ganeti's names, titles and kinds
JOB_FIELDS = FieldTable(constants.QR_JOB, [
    FieldDefinition("id", "ID", QFT_NUMBER, "Job ID",
                    lambda ctx, item: item[0], flags=QFF_JOB_ID),
    FieldDefinition("status", "Status", QFT_TEXT, "Job status",
                    _job_value(_status)),
    FieldDefinition("priority", "Priority", QFT_NUMBER,
                    f"Current job priority ({_PRIO_RANGE})",
                    _job_value(_priority)),
    FieldDefinition("archived", "Archived", QFT_BOOL,
                    "Whether the job has been archived",
                    _job_value(lambda job: bool(job.get("archived", False)))),
    FieldDefinition("ops", "OpCodes", QFT_OTHER, "The opcodes of the job",
                    _per_op(lambda op: op.get("input"))),
    FieldDefinition("opresult", "OpCode_result", QFT_OTHER,
                    "The result of each opcode",
                    _per_op(lambda op: op.get("result"))),
    FieldDefinition("opstatus", "OpCode_status", QFT_OTHER,
                    "The status of each opcode",
                    _per_op(lambda op: op.get("status"))),
    FieldDefinition("oplog", "OpCode_log", QFT_OTHER,
                    "The log messages of each opcode",
                    _per_op(lambda op: op.get("log", []))),
    FieldDefinition("opstart", "OpCode_start", QFT_OTHER,
                    "When each opcode started (before taking its locks)",
                    _per_op(lambda op: _timestamp(op.get("start_timestamp")))),
    FieldDefinition("opexec", "OpCode_exec", QFT_OTHER,
                    "When each opcode began executing (after taking its locks)",
                    _per_op(lambda op: _timestamp(op.get("exec_timestamp")))),
    FieldDefinition("opend", "OpCode_end", QFT_OTHER,
                    "When each opcode finished",
                    _per_op(lambda op: _timestamp(op.get("end_timestamp")))),
    FieldDefinition("oppriority", "OpCode_prio", QFT_OTHER,
                    "The priority of each opcode",
                    _per_op(lambda op: op.get("priority", constants.OP_PRIO_DEFAULT))),
    FieldDefinition("summary", "Summary", QFT_OTHER,
                    "A short summary of each opcode",
                    _per_op(lambda op: SummarizeOp(op.get("input")))),
    FieldDefinition("received_ts", "Received", QFT_OTHER,
                    "When the job was submitted ([seconds, microseconds])",
                    _job_timestamp("received_timestamp"), flags=QFF_SPLIT_TIMESTAMP),
    FieldDefinition("start_ts", "Start", QFT_OTHER,
                    "When the job started ([seconds, microseconds])",
                    _job_timestamp("start_timestamp"), flags=QFF_SPLIT_TIMESTAMP),
    FieldDefinition("end_ts", "End", QFT_OTHER,
                    "When the job finished ([seconds, microseconds])",
                    _job_timestamp("end_timestamp"), flags=QFF_SPLIT_TIMESTAMP),
])


def _collect_jobs(query: FieldQuery, context: Any) -> tuple[None, list[JobItem]]:
    """Load only the jobs a name filter asks for, else all of them.

    As in Ganeti, archived jobs are listed only when the query reads the
    ``archived`` field; jobs asked for by id are always looked up (in the
    archive too) and a missing one gives a row of unavailable values.
    """
    queue = context.jobqueue
    ids = query.RequestedNames()
    if ids is not None:
        return None, list(zip(ids, queue.GetJobsInfo(list(ids))))
    with_archived = query.References("archived")
    # Reading every archived job file is costly: only when they are shown
    return None, [(job["id"], job)
                  for job in queue.GetJobsInfo(None, include_archived=with_archived)
                  if job is not None and (with_archived or not job.get("archived"))]


JOB_RESOURCE = RegisterResource(Resource(
    name=constants.QR_JOB, fields=JOB_FIELDS, collect=_collect_jobs,
    namefield="id", sort_key=lambda item: item[0]))


#: Field definitions by requested names (WaitForJobChange asks the same
#: few fields again and again); bounded, only valid names get in
_FIELD_DEFS_CACHE: dict[tuple[str, ...], list[FieldDefinition]] = {}
_FIELD_DEFS_CACHE_SIZE = 64


def _job_field_defs(fields: Sequence[str]) -> list[FieldDefinition]:
    key = tuple(fields) if isinstance(fields, (list, tuple)) else None
    if key is not None:
        cached = _FIELD_DEFS_CACHE.get(key)
        if cached is not None:
            return cached
    names = CheckFieldNames(fields, "Job fields")
    unknown = JOB_FIELDS.Unknown(names)
    if unknown:
        raise errors.OpPrereqError(
            f"Unknown job fields: {', '.join(unknown)}", errors.ECODE_INVAL)
    fdefs = [JOB_FIELDS[name] for name in names]
    if key is not None and len(_FIELD_DEFS_CACHE) < _FIELD_DEFS_CACHE_SIZE:
        _FIELD_DEFS_CACHE[key] = fdefs
    return fdefs


def GetJobFieldValues(job: Mapping[str, Any], fields: Sequence[str]) -> list[Any]:
    """The plain values of ``fields`` for one job dict (None when missing).

    ``job`` may be any mapping with ``get`` (the job queue passes a view
    that computes only the keys read).

    This is what ``QueryJobs`` and ``WaitForJobChange`` answer per job.
    Unknown field names raise OpPrereqError (ECODE_INVAL).
    """
    item = (job["id"], job)
    return [ToPlain(fdef.getter(None, item)) for fdef in _job_field_defs(fields)]


def QueryJobs(context: Any, job_ids: Sequence[Any] | None,
              fields: Sequence[str]) -> list[list[Any] | None]:
    """Answer luxi ``QueryJobs``: one row of plain values per job.

    Rows follow ``job_ids`` (ints or strings of digits); an unknown job
    gives None instead of a row. With no ids, every job that is not
    archived, by id. Unknown fields or bad ids raise OpPrereqError.
    """
    fdefs = _job_field_defs(fields)
    queue = context.jobqueue
    if not job_ids:
        items: list[JobItem] = sorted(
            ((job["id"], job) for job in queue.GetJobsInfo(None, include_archived=False)
             if job is not None and not job.get("archived")),
            key=lambda item: item[0])
    else:
        ids = []
        for job_id in job_ids:
            try:
                ids.append(ParseJobId(job_id))
            except ValueError as err:
                raise errors.OpPrereqError(str(err), errors.ECODE_INVAL) from None
        items = list(zip(ids, queue.GetJobsInfo(ids)))
    return [None if job is None
            else [ToPlain(fdef.getter(None, (job_id, job))) for fdef in fdefs]
            for job_id, job in items]
