"""Running one job: its opcodes in order, through mcpu.

A :class:`JobProcessor` runs in a worker thread. For each unfinished
opcode it checks the opcode's dependencies (a job that has to wait for
another one goes back to the queue without holding the worker), marks it
"waiting", hands it to :class:`ganeti.mcpu.Processor`, and records the
result. The first failing opcode fails the job: the later opcodes are
marked as failed too. Every change of state goes through the queue, which
persists it and tells the subscribers.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from ganeti import constants
from ganeti import errors
from ganeti import locking
from ganeti import mcpu
from ganeti import opcodes
from ganeti.jqueue.deps import DepResult
from ganeti.jqueue.job import QueuedJob

if TYPE_CHECKING:
    from ganeti.jqueue.queue import JobQueue

#: Result of opcodes cancelled by request
CANCEL_MESSAGE = "Job canceled by request"


def EncodeOpError(err: BaseException) -> list:
    """An opcode's error result: the encoded exception (OpExecError if foreign)."""
    if not isinstance(err, errors.GenericError):
        err = errors.OpExecError(f"{err.__class__.__name__}: {err}")
    return errors.EncodeException(err)


class _OpCallbacks(mcpu.OpExecCbBase):
    """The processor's view of the job while one opcode runs."""

    def __init__(self, queue: JobQueue, job: QueuedJob, op_index: int) -> None:
        self._queue = queue
        self._job = job
        self._idx = op_index

    def NotifyStart(self) -> None:
        """Locks held: the opcode runs now, unless the job was cancelled."""
        self._queue._OpStarted(self._job, self._idx)

    def NotifyLockTimeout(self, priority: int) -> None:
        """Keep waiting, with a higher priority."""
        self._queue._OpPriorityRaised(self._job, self._idx, priority)

    def Feedback(self, *args: Any) -> None:
        """Add an entry to the opcode's log."""
        if len(args) == 1:
            log_type, message = constants.ELOG_MESSAGE, args[0]
        else:
            log_type, message = args
        self._queue._AddLog(self._job, self._idx, log_type, message)

    def CheckCancel(self) -> None:
        """Stop a cancelled job between lock attempts."""
        if self._queue._IsCanceling(self._job, self._idx):
            raise errors.JobCanceled(CANCEL_MESSAGE)

    def CurrentPriority(self) -> int | None:
        """The opcode's priority as the queue knows it."""
        return self._job.ops[self._idx].priority

    def SubmitManyJobs(self, jobs: list[list[opcodes.OpCode]]) -> list[Any]:
        """Submit jobs for the LU."""
        return self._queue.SubmitManyJobs(jobs)


class JobProcessor:
    """Runs the unfinished opcodes of one job."""

    def __init__(self, queue: JobQueue, job: QueuedJob) -> None:
        self.queue = queue
        self.job = job

    def _CheckDependencies(self, idx: int) -> bool:
        """Check the opcode's dependencies; False when the job must stop here."""
        queue, job = self.queue, self.job
        op = job.ops[idx]
        deps = list(getattr(op.input, constants.OP_DEPENDS, None) or [])
        for dep_job_id, dep_status in deps:
            result, message = queue.deps.CheckAndRegister(job.id, dep_job_id, dep_status)
            if result is DepResult.CONTINUE:
                continue
            if result is DepResult.WAIT:
                queue._OpWaitingForJob(job, idx, message)
                return False
            if result is DepResult.CANCEL:
                queue._FinishOps(job, idx, constants.OP_STATUS_CANCELED, CANCEL_MESSAGE,
                                 log=message)
                return False
            queue._FailOps(job, idx, errors.OpExecError(message))
            return False
        return True

    def Run(self) -> None:
        """Run opcodes until the job finishes or has to wait for another job."""
        queue, job = self.queue, self.job
        locking.set_owner_name(f"job/{job.id}")
        proc = mcpu.Processor(queue.context, ec_id=job.id,
                              lock_timeouts=getattr(queue.context, "lock_strategy", None))
        while True:
            idx = queue._NextOp(job)
            if idx is None:
                return
            if not self._CheckDependencies(idx):
                return
            if not queue._OpWaiting(job, idx):
                return  # cancelled meanwhile
            op = job.ops[idx]
            cbs = _OpCallbacks(queue, job, idx)
            try:
                result = proc.ExecOpCode(op.input, cbs, priority=op.priority)
                check = op.input.OP_RESULT
                # A dry run answers what the LU's checks found, not the result
                if check is not None and not getattr(op.input, constants.OP_DRY_RUN, False) \
                        and not check(result):
                    raise errors.OpResultError(
                        f"Opcode {op.input.OP_ID} returned an invalid result {result!r}")
            except errors.JobCanceled:
                queue._FinishOps(job, idx, constants.OP_STATUS_CANCELED, CANCEL_MESSAGE)
                return
            except Exception as err:  # the LU's error becomes the opcode's result
                if isinstance(err, errors.GenericError):
                    logging.info("Job %s opcode %s failed: %s", job.id, op.input.OP_ID,
                                 errors.FormatError(err))
                else:
                    logging.exception("Job %s opcode %s failed", job.id, op.input.OP_ID)
                queue._FailOps(job, idx, err)
                return
            queue._OpSucceeded(job, idx, result)

