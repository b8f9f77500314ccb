"""The job queue of the master daemon.

:class:`JobQueue` accepts jobs, persists them (:mod:`.storage`), runs them
in a :class:`ganeti.workerpool.WorkerPool` by priority (:mod:`.processor`)
and answers questions about them. Its lock guards only in-memory state
and is never held during file I/O or while an opcode runs, so luxi calls
stay quick however busy the workers are.

Persistence: what a crash must not lose is synced before anybody is told:
a job accepted (before SubmitJob returns) and an opcode or job finished
(before the waiters hear of it; a job whose end is not on disk yet looks
unchanged to WaitForJobChange and unfinished to the jobs depending on it).
These writes go through one writer thread (:class:`_GroupWriter`) that
writes and syncs whatever is pending in one round, so under load one sync
serves many jobs, and the worker that finished a job does not wait for it.
That an opcode starts executing is recorded before it runs by one append
to the exec log (see :class:`.storage.ExecLog`), not by rewriting the job
file. Two kinds of change are written a little later instead (at most
``log_write_delay`` seconds): log messages, which come in bursts, and the
"waiting" status, which usually lasts microseconds and reads back exactly
like "queued" on a restart.

Unfinished jobs live in memory; finished ones are kept in a small cache
and otherwise read from their files on demand.
"""

from __future__ import annotations

import collections
import dataclasses
import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from ganeti import constants
from ganeti import errors
from ganeti import ht
from ganeti import mcpu
from ganeti import opcodes
from ganeti import query
from ganeti import serializer
from ganeti import workerpool
from ganeti.jqueue import storage as jstorage
from ganeti.jqueue.deps import JobDependencyManager
from ganeti.jqueue.job import QueuedJob, TimeStampNow
from ganeti.jqueue.processor import CANCEL_MESSAGE, EncodeOpError, JobProcessor

#: Values that come back from JSON as they are
_PLAIN_TYPES = (str, int, bool, float)

#: Reason given to opcodes that were running when the daemon stopped
UNCLEAN_SHUTDOWN_MESSAGE = "Unclean master daemon shutdown"


@dataclasses.dataclass
class JobQueueContext:
    """What the job queue and the LUs it runs need from the master daemon."""

    glm: Any
    queue_dir: str
    cfg: Any = None
    archive_dir: str | None = None
    rpc: Any = None
    num_workers: int = constants.JOB_DEFAULT_WORKERS
    #: fsync the writes that must survive a machine crash
    fsync: bool = True
    size_limit: int = constants.JOB_QUEUE_SIZE_HARD_LIMIT
    #: Makes each opcode's lock attempt strategy (None: mcpu's default)
    lock_strategy: Callable[[], Any] | None = None


class _Subscription:
    __slots__ = ("job_id", "callback")

    def __init__(self, job_id: int, callback: Callable[[], None]) -> None:
        self.job_id = job_id
        self.callback = callback


class _DelayedWriter:
    """Writes jobs marked dirty at most ``delay`` seconds later, in one thread."""

    def __init__(self, write_fn: Callable[[QueuedJob], None], delay: float) -> None:
        self._write = write_fn
        self._delay = delay
        self._cond = threading.Condition(threading.Lock())
        self._due: list[tuple[float, int, QueuedJob]] = []
        self._dirty: set[int] = set()
        self._order = itertools.count()
        self._stop = False
        self._writing = False
        self._thread = threading.Thread(target=self._Run, name="jqueue-writer", daemon=True)
        self._thread.start()

    def Mark(self, job: QueuedJob) -> None:
        with self._cond:
            if job.id in self._dirty or self._stop:
                return
            self._dirty.add(job.id)
            heapq.heappush(self._due, (time.monotonic() + self._delay, next(self._order), job))
            if len(self._due) == 1:
                self._cond.notify()

    def _Run(self) -> None:
        while True:
            with self._cond:
                while not self._stop:
                    if self._due:
                        wait = self._due[0][0] - time.monotonic()
                        if wait <= 0:
                            break
                        self._cond.wait(wait)
                    else:
                        self._cond.wait()
                if self._stop and not self._due:
                    return
                _, _, job = heapq.heappop(self._due)
                self._dirty.discard(job.id)
                self._writing = True
            try:
                self._write(job)
            except Exception:
                logging.exception("Cannot write job %s", job.id)
            finally:
                with self._cond:
                    self._writing = False
                    self._cond.notify_all()

    def Flush(self, timeout: float | None = None) -> bool:
        """Write everything pending now; False if not done within ``timeout``."""
        with self._cond:
            self._due = [(0.0, order, job) for (_, order, job) in self._due]
            heapq.heapify(self._due)
            self._cond.notify_all()
            return self._cond.wait_for(lambda: not self._due and not self._writing, timeout)

    def Stop(self) -> None:
        """Write what is pending now, then end the thread."""
        with self._cond:
            self._stop = True
            self._due = [(0.0, order, job) for (_, order, job) in self._due]
            heapq.heapify(self._due)
            self._cond.notify()
        self._thread.join()




#: Called by the group writer with None (written) or the error
_Callback = Callable[[BaseException | None], None]


class _Batch:
    """The writes one round of the group writer makes; waiters wait on ``done``."""

    __slots__ = ("done", "failed")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.failed: dict[int, BaseException] = {}


class _GroupWriter:
    """Writes and syncs job files in groups, in one thread (group commit).

    Whoever needs a job's state on disk asks for it and either waits for
    the round that writes it (:meth:`WriteAndWait`) or leaves a callback
    that runs once it is synced (:meth:`WriteThen`). While one round is
    being synced the next one gathers requests, so under load one sync
    covers many jobs; a job asked for twice before its round starts is
    written once, with its newest state.
    """

    def __init__(self, write_fn: Callable[[list[QueuedJob]], dict[int, BaseException]]
                 ) -> None:
        self._write = write_fn
        lock = threading.Lock()
        # The writer waits on one condition, Flush on the other
        self._cond = threading.Condition(lock)
        self._idle = threading.Condition(lock)
        self._pending: dict[int, tuple[QueuedJob, list[_Callback]]] = {}
        self._batch = _Batch()
        self._busy = False
        self._stop = False
        self._thread = threading.Thread(target=self._Run, name="jqueue-sync", daemon=True)
        self._thread.start()

    def _Add(self, jobs: Iterable[QueuedJob], then: _Callback | None) -> _Batch:
        with self._cond:
            if self._stop:
                raise errors.JobQueueError("Job queue writer stopped")
            for job in jobs:
                entry = self._pending.get(job.id)
                if entry is None:
                    entry = self._pending[job.id] = (job, [])
                if then is not None:
                    entry[1].append(then)
            self._cond.notify()
            return self._batch

    def WriteAndWait(self, jobs: list[QueuedJob]) -> None:
        """Write and sync ``jobs``; raise the first error."""
        batch = self._Add(jobs, None)
        batch.done.wait()
        for job in jobs:
            err = batch.failed.get(job.id)
            if err is not None:
                raise err

    def WriteThen(self, jobs: list[QueuedJob], then: _Callback) -> None:
        """Write and sync ``jobs``, then call ``then(error)`` once per job.

        ``error`` is None when the job is on disk, else the exception.
        """
        self._Add(jobs, then)

    def _Run(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._stop:
                    self._cond.wait()
                if not self._pending:
                    return
                entries = list(self._pending.values())
                self._pending = {}
                batch, self._batch = self._batch, _Batch()
                self._busy = True
            try:
                try:
                    batch.failed.update(self._write([job for job, _ in entries]))
                except Exception as err:  # a bug must not stop the writer
                    logging.exception("Cannot write jobs")
                    batch.failed.update((job.id, err) for job, _ in entries)
                batch.done.set()
                for job, callbacks in entries:
                    failure = batch.failed.get(job.id)
                    for callback in callbacks:
                        try:
                            callback(failure)
                        except Exception:
                            logging.exception("Job %s: callback after writing failed",
                                              job.id)
            finally:
                with self._cond:
                    self._busy = False
                    self._idle.notify_all()

    def Flush(self, timeout: float | None = None) -> bool:
        """Wait until every request so far is written; False on timeout."""
        with self._cond:
            return self._idle.wait_for(lambda: not self._pending and not self._busy, timeout)

    def Stop(self) -> None:
        """Write what is pending, then end the thread."""
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        self._thread.join()


class JobQueue:
    """The job queue; see the module documentation and doc/design-masterd.rst."""

    def __init__(self, context: Any, log_write_delay: float = 0.2,
                 finished_cache_size: int = 1000) -> None:
        self.context = context
        self.storage = jstorage.JobStorage(context.queue_dir,
                                           getattr(context, "archive_dir", None),
                                           fsync=getattr(context, "fsync", True))
        self._num_workers = getattr(context, "num_workers", constants.JOB_DEFAULT_WORKERS)
        self._size_limit = getattr(context, "size_limit", constants.JOB_QUEUE_SIZE_HARD_LIMIT)
        self._log_write_delay = log_write_delay
        self._lock = threading.Lock()
        self._jobs: dict[int, QueuedJob] = {}          # unfinished jobs
        self._finished: collections.OrderedDict[int, QueuedJob] = collections.OrderedDict()
        self._finished_cache_size = finished_cache_size
        self._job_ids: set[int] = set()                 # every job in queue_dir
        self._running: set[int] = set()                 # jobs a worker runs now
        self._pooled: set[int] = set()                  # jobs waiting in the pool
        self._rerun: set[int] = set()                   # woken up while running
        self._subscriptions: dict[int, dict[int, _Subscription]] = {}
        self._sub_ids = itertools.count(1)
        self._accepting = False
        self._started = False
        self.deps = JobDependencyManager(self._GetJobStatusForDeps, self._EnqueueJobIds)
        self._pool: workerpool.WorkerPool | None = None
        self._writer: _DelayedWriter | None = None
        self._syncer: _GroupWriter | None = None

    # --- start and stop --------------------------------------------------------------------

    def Start(self) -> None:
        """Load the queue from disk, fix what a crash left, start the workers."""
        if self._started:
            raise errors.ProgrammerError("Job queue started twice")
        self._started = True
        self._writer = _DelayedWriter(self._WriteJob, self._log_write_delay)
        self._syncer = _GroupWriter(self._WriteJobsSynced)
        to_run: list[QueuedJob] = []
        # Opcodes that started executing, whatever their job files say
        started = self.storage.exec_log.Read()
        for job_id in self.storage.ListJobIds():
            try:
                data = self.storage.LoadJob(job_id)
                if data is None:
                    continue
                job = QueuedJob.Restore(data)
                if job.id != job_id:
                    raise errors.JobFileCorrupted(
                        f"File of job {job_id} holds job {job.id}")
            except (errors.JobFileCorrupted, errors.OpPrereqError, OSError) as err:
                logging.error("Ignoring job file of job %s: %s", job_id, err)
                continue
            self._job_ids.add(job_id)
            self._ApplyExecLog(job, started.get(job_id, {}))
            if self._RecoverJob(job):
                to_run.append(job)
            else:
                self._CacheFinished(job)
        # The recovered jobs are on disk (synced): forget the old starts
        self.storage.exec_log.Open()
        self._pool = workerpool.WorkerPool("JobQueue", self._num_workers, self._RunJob)
        with self._lock:
            for job in to_run:
                self._jobs[job.id] = job
            self._accepting = True
        self._EnqueueJobs(to_run)
        logging.info("Job queue started: %d jobs, %d to run", len(self._job_ids), len(to_run))

    @staticmethod
    def _ApplyExecLog(job: QueuedJob, started: dict[int, list[int]]) -> None:
        """Opcodes the exec log says started are running, even if their file
        still says queued or waiting (see storage.ExecLog)."""
        for idx, stamp in started.items():
            if idx >= len(job.ops):
                continue
            op = job.ops[idx]
            if op.status in (constants.OP_STATUS_QUEUED, constants.OP_STATUS_WAITING):
                op.status = constants.OP_STATUS_RUNNING
                if op.exec_timestamp is None:
                    op.exec_timestamp = stamp

    def _RecoverJob(self, job: QueuedJob) -> bool:
        """Bring a job loaded at start into a runnable or final state."""
        status = job.CalcStatus()
        if status in constants.JOBS_FINALIZED:
            return False
        if status in (constants.JOB_STATUS_QUEUED, constants.JOB_STATUS_WAITING):
            for op in job.ops:
                if op.status == constants.OP_STATUS_WAITING:
                    op.status = constants.OP_STATUS_QUEUED
            if status == constants.JOB_STATUS_WAITING:
                self._Changed(job)
                self._WriteJob(job, sync=True)
            return True
        logging.warning("Job %s was %s when the daemon stopped", job.id, status)
        goes_on = False
        if status == constants.JOB_STATUS_CANCELING:
            job.MarkUnfinishedOps(constants.OP_STATUS_CANCELED, CANCEL_MESSAGE)
        else:
            goes_on = self._RecoverInterruptedOp(job)
        self._Changed(job)
        self._WriteJob(job, sync=True)
        return goes_on

    def _RecoverInterruptedOp(self, job: QueuedJob) -> bool:
        """End the opcode that was running when the daemon died as its LU
        says (``mcpu.InterruptedOpcode``): by default it fails; an opcode
        whose work the configuration shows as done succeeds. True if the
        job goes on with its next opcode."""
        idx = next((i for i, op in enumerate(job.ops)
                    if op.status == constants.OP_STATUS_RUNNING), None)
        outcome = None
        if idx is not None:
            outcome = mcpu.InterruptedOpcode(self.context, job.ops[idx].input)
        if idx is None or outcome is None:
            job.MarkUnfinishedOps(constants.OP_STATUS_ERROR,
                                  EncodeOpError(errors.OpExecError(UNCLEAN_SHUTDOWN_MESSAGE)))
            return False
        message = f"{UNCLEAN_SHUTDOWN_MESSAGE}: {outcome.message}"
        logging.warning("Job %s: %s", job.id, message)
        job.AddLog(idx, constants.ELOG_MESSAGE, message)
        if not outcome.succeeded:
            job.MarkUnfinishedOps(constants.OP_STATUS_ERROR,
                                  EncodeOpError(errors.OpExecError(message)))
            return False
        op = job.ops[idx]
        op.status = constants.OP_STATUS_SUCCESS
        op.result = serializer.LoadJson(serializer.DumpJson(outcome.result))
        op.end_timestamp = TimeStampNow()
        if all(o.status == constants.OP_STATUS_SUCCESS for o in job.ops):
            job.end_timestamp = op.end_timestamp
            return False
        return True

    def Shutdown(self, timeout: float | None = None) -> bool:
        """Stop taking jobs, wait up to ``timeout`` for running ones, stop.

        Returns False if jobs were still running at the timeout; they are
        left as they are (the next start marks them as failed).
        """
        with self._lock:
            self._accepting = False
        done = True
        if self._pool is not None:
            self._pool.SetActive(False)
            done = self._pool.WaitForRunning(timeout)
            self._pool.TerminateWorkers(0 if not done else None)
        if self._syncer is not None:
            self._syncer.Stop()
        if self._writer is not None:
            self._writer.Stop()
        self.storage.exec_log.Close()
        self.storage.FlushSerial()
        return done

    def Quiesce(self, timeout: float | None = None) -> bool:
        """Wait until no job is queued for or run by a worker, and all is written.

        Jobs waiting for other jobs do not count. False on timeout.
        """
        end = None if timeout is None else time.monotonic() + timeout

        def left() -> float | None:
            return None if end is None else max(0.0, end - time.monotonic())

        # Writing a job's end may start the jobs waiting for it: repeat
        # until the workers and the writers are idle together
        while True:
            if self._pool is not None and not self._pool.Quiesce(left()):
                return False
            if self._syncer is not None and not self._syncer.Flush(left()):
                return False
            if self._pool is None or self._pool.Quiesce(0):
                break
        return self._writer is None or self._writer.Flush(left())

    # --- helpers under the lock -----------------------------------------------------------

    def _CheckAccepting(self) -> None:
        if not self._accepting:
            raise errors.JobQueueError("Job queue is not accepting jobs (not started or"
                                       " shutting down)")

    def _CacheFinished(self, job: QueuedJob) -> None:
        self._finished[job.id] = job
        self._finished.move_to_end(job.id)
        while len(self._finished) > self._finished_cache_size:
            self._finished.popitem(last=False)

    def _Changed(self, job: QueuedJob) -> None:
        job.change_serial += 1

    def _GetJob(self, job_id: int) -> QueuedJob | None:
        """A job of the queue directory, from memory or from its file.

        Takes the queue lock itself, and not while reading the file. Every
        unfinished job is in memory, so a job read from its file is
        finished and does not change any more.
        """
        with self._lock:
            job = self._jobs.get(job_id) or self._finished.get(job_id)
            if job is not None or job_id not in self._job_ids:
                return job
        job = self._LoadJobFile(job_id)
        if job is None:
            return None
        with self._lock:
            if job_id not in self._job_ids:
                return None  # archived meanwhile
            known = self._jobs.get(job_id) or self._finished.get(job_id)
            if known is not None:
                return known
            self._CacheFinished(job)
        return job

    def _LoadJobFile(self, job_id: int, archived: bool = False) -> QueuedJob | None:
        try:
            data = (self.storage.LoadArchivedJob(job_id) if archived
                    else self.storage.LoadJob(job_id))
            if data is None:
                return None
            job = QueuedJob.Restore(data)
        except (errors.JobFileCorrupted, OSError) as err:
            logging.error("Cannot load job %s: %s", job_id, err)
            return None
        job.archived = archived
        return job

    # --- persistence and notification --------------------------------------------------------

    def _WriteJob(self, job: QueuedJob, sync: bool = False) -> None:
        """Write the job's current state (unless a newer one is written already)."""
        with self._lock:
            serial = job.change_serial
            if job.archived or (job.written_serial >= serial
                                and (not sync or job.synced_serial >= serial)):
                return  # checked again below, under the write lock
            data = job.Serialize()
        with job.write_lock:
            if job.archived:
                return
            if job.written_serial >= serial:
                if sync and job.synced_serial < job.written_serial:
                    # A newer state is written but not synced: sync it
                    failed = self.storage.WriteJobsSynced([(job.id, None)])
                    if failed:
                        raise failed[job.id]
                    job.synced_serial = job.written_serial
                return
            self.storage.WriteJob(job.id, data, sync)
            job.written_serial = serial
            if sync:
                job.synced_serial = serial

    def _WriteJobsSynced(self, jobs: list[QueuedJob]) -> dict[int, BaseException]:
        """The group writer's work: write and sync ``jobs`` (see _GroupWriter)."""
        jobs = sorted(jobs, key=lambda job: job.id)
        for job in jobs:
            job.write_lock.acquire()
        try:
            todo: list[tuple[QueuedJob, int, dict[str, Any] | None]] = []
            with self._lock:
                for job in jobs:
                    serial = job.change_serial
                    if job.archived or job.synced_serial >= serial:
                        continue  # archiving syncs the job first
                    if job.written_serial >= serial:
                        todo.append((job, job.written_serial, None))
                    else:
                        todo.append((job, serial, job.Serialize()))
            items = [(job.id, None if data is None else serializer.DumpJsonBytes(data))
                     for job, _, data in todo]
            failed = self.storage.WriteJobsSynced(items) if items else {}
            # Job IDs allocated without writing the serial file (see _Submit)
            self.storage.FlushSerial(force=False)
            for job, serial, _ in todo:
                if job.id not in failed:
                    job.written_serial = max(job.written_serial, serial)
                    job.synced_serial = serial
            return failed
        finally:
            for job in jobs:
                job.write_lock.release()

    def _SyncJobs(self, jobs: list[QueuedJob]) -> None:
        """Write and sync the jobs' current state before returning."""
        if self._syncer is None:
            for job in jobs:
                self._WriteJob(job, sync=True)
        else:
            self._syncer.WriteAndWait(jobs)

    def _JobEnded(self, job: QueuedJob) -> None:
        """The job is final: sync it, then tell the waiters (the worker goes on)."""
        def _Done(err: BaseException | None) -> None:
            if err is not None:
                # Not reported as finished: its end is not on disk
                logging.error("Cannot write the end of job %s: %s", job.id, err)
                return
            self.storage.exec_log.Done(job.id)
            self._JobFinished(job)
            self._Notify(job.id)

        if self._syncer is not None:
            try:
                self._syncer.WriteThen([job], _Done)
                return
            except errors.JobQueueError:
                pass  # shutting down: write here
        self._WriteJob(job, sync=True)
        _Done(None)

    def _WriteLater(self, job: QueuedJob) -> None:
        if self._writer is not None:
            self._writer.Mark(job)

    def _Notify(self, job_id: int) -> None:
        subs = self._subscriptions.get(job_id)
        if not subs:
            return
        for sub in list(subs.values()):
            try:
                sub.callback()
            except Exception:
                logging.exception("Job %s subscriber failed", job_id)

    def Subscribe(self, job_id: int, callback: Callable[[], None]) -> Any:
        """Call ``callback()`` on every change of the job; returns a handle."""
        job_id = jstorage.ParseJobId(job_id)
        if not callable(callback):
            raise errors.ProgrammerError(f"Callback must be callable, got {callback!r}")
        handle = next(self._sub_ids)
        with self._lock:
            subs = dict(self._subscriptions.get(job_id, {}))
            subs[handle] = _Subscription(job_id, callback)
            self._subscriptions[job_id] = subs  # replaced, so readers need no lock
        return (job_id, handle)

    def Unsubscribe(self, handle: Any) -> None:
        """Forget a subscription (an unknown handle is ignored)."""
        job_id, sub_id = handle
        with self._lock:
            subs = dict(self._subscriptions.get(job_id, {}))
            subs.pop(sub_id, None)
            if subs:
                self._subscriptions[job_id] = subs
            else:
                self._subscriptions.pop(job_id, None)

    # --- submission --------------------------------------------------------------------------

    @staticmethod
    def _LoadOps(ops: Any, allow_relative: bool) -> list[opcodes.OpCode]:
        if not isinstance(ops, (list, tuple)) or not ops:
            raise errors.OpPrereqError(
                f"A job is a non-empty list of opcodes, got {ops!r:.200}", errors.ECODE_INVAL)
        result = []
        for idx, op in enumerate(ops):
            if isinstance(op, opcodes.OpCode):
                op = opcodes.OpCode.LoadOpCode(op.ToDict())
            else:
                op = opcodes.OpCode.LoadOpCode(op)
            op.Validate(True)
            op.ValidateSubmitPriority()
            deps = getattr(op, constants.OP_DEPENDS, None) or []
            if not allow_relative:
                bad = [dep for dep in deps if not ht.TJobId(dep[0])]
                if bad:
                    raise errors.OpPrereqError(
                        f"Opcode {idx} has invalid dependencies {bad!r}: relative job IDs"
                        " are only allowed when submitting several jobs together",
                        errors.ECODE_INVAL)
            result.append(op)
        return result

    def _CheckSubmit(self, count: int, drained_ok: bool) -> None:
        if not drained_ok and self.storage.IsDrained():
            raise errors.JobQueueDrainError("Job queue is drained, refusing job")
        with self._lock:
            self._CheckAccepting()
            if len(self._job_ids) + count > self._size_limit:
                raise errors.JobQueueFull(
                    f"Job queue is full ({len(self._job_ids)} jobs, limit"
                    f" {self._size_limit}); archive some jobs")

    def _AddJobs(self, jobs: list[QueuedJob]) -> None:
        """Persist new jobs, then make them known and runnable."""
        for job in jobs:
            job.change_serial = 1
        self._SyncJobs(jobs)
        self._JobsAdded(jobs)

    def _JobsAdded(self, jobs: list[QueuedJob]) -> None:
        """New jobs are on disk: make them known and runnable."""
        with self._lock:
            for job in jobs:
                self._jobs[job.id] = job
                self._job_ids.add(job.id)
        self._EnqueueJobs(jobs)

    def SubmitJob(self, ops: Sequence[Any]) -> int:
        """Add a job; its ID. Refused while drained or full, or for bad opcodes."""
        return self._Submit(ops, drained_ok=False)

    def SubmitJobToDrainedQueue(self, ops: Sequence[Any]) -> int:
        """Add a job even if the queue is drained (for the master's own jobs)."""
        return self._Submit(ops, drained_ok=True)

    def _Submit(self, ops: Sequence[Any], drained_ok: bool) -> int:
        self._CheckSubmit(1, drained_ok)
        loaded = self._LoadOps(ops, allow_relative=False)
        (job_id,) = self.storage.AllocateJobIds(1)
        job = QueuedJob(job_id, loaded)
        self._AddJobs([job])
        return job_id

    def SubmitJobNoWait(self, ops: Sequence[Any], done: Callable[[BaseException | None], None],
                        drained_ok: bool = False) -> int:
        """:meth:`SubmitJob` for callers that must not block (the luxi loop).

        Checks the opcodes and returns the new job's ID at once (errors
        are raised as by SubmitJob); ``done(None)`` is called from another
        thread once the job is on disk and queued, or ``done(error)`` if it
        could not be written (the job is then dropped). The ID must not be
        handed out before ``done(None)``. The serial file is written
        by the writer thread, not here.
        """
        if not callable(done):
            raise errors.ProgrammerError(f"done must be callable, got {done!r}")
        self._CheckSubmit(1, drained_ok)
        loaded = self._LoadOps(ops, allow_relative=False)
        (job_id,) = self.storage.AllocateJobIds(1, write_serial=self._syncer is None)
        job = QueuedJob(job_id, loaded)
        job.change_serial = 1
        if self._syncer is None:
            self._AddJobs([job])
            done(None)
            return job_id

        def _Written(err: BaseException | None) -> None:
            if err is None:
                self._JobsAdded([job])
            else:
                logging.error("Cannot write new job %s: %s", job_id, err)
                self.storage.RemoveJob(job_id)
            done(err)

        self._syncer.WriteThen([job], _Written)
        return job_id

    def SubmitManyJobs(self, jobs: Sequence[Sequence[Any]]) -> list[tuple[bool, Any]]:
        """Add several jobs; ``[(True, job_id) | (False, error message), ...]``.

        An opcode may depend on a job submitted earlier in the same call
        with a negative ID: -1 is the job just before its own.
        """
        if not isinstance(jobs, (list, tuple)):
            raise errors.OpPrereqError(f"Expected a list of jobs, got {jobs!r:.200}",
                                       errors.ECODE_INVAL)
        self._CheckSubmit(len(jobs), drained_ok=False)
        results: list[tuple[bool, Any]] = []
        new_jobs: list[QueuedJob] = []
        ids = self.storage.AllocateJobIds(len(jobs)) if jobs else []
        for idx, (job_id, ops) in enumerate(zip(ids, jobs)):
            try:
                loaded = self._LoadOps(ops, allow_relative=True)
                for op in loaded:
                    deps = getattr(op, constants.OP_DEPENDS, None)
                    if deps:
                        setattr(op, constants.OP_DEPENDS,
                                self._ResolveDeps(idx, deps, results))
                job = QueuedJob(job_id, loaded)
            except errors.GenericError as err:
                results.append((False, str(err.args[0]) if err.args else str(err)))
                continue
            new_jobs.append(job)
            results.append((True, job_id))
        if new_jobs:
            self._AddJobs(new_jobs)
        return results

    @staticmethod
    def _ResolveDeps(idx: int, deps: list, results: list[tuple[bool, Any]]) -> list:
        resolved = []
        for dep_id, statuses in deps:
            if dep_id < 0:
                target = idx + dep_id
                if target < 0 or not results[target][0]:
                    raise errors.OpPrereqError(
                        f"Unable to resolve relative job ID {dep_id}", errors.ECODE_INVAL)
                dep_id = results[target][1]
            resolved.append([dep_id, list(statuses)])
        return resolved

    # --- running -------------------------------------------------------------------------

    def _EnqueueJobs(self, jobs: Iterable[QueuedJob]) -> None:
        tasks, prios, ids = [], [], []
        with self._lock:
            for job in jobs:
                if job.id in self._running:
                    self._rerun.add(job.id)
                    continue
                if job.id in self._pooled or job.id not in self._jobs:
                    continue
                self._pooled.add(job.id)
                tasks.append((job.id,))
                prios.append(job.CalcPriority())
                ids.append(job.id)
        if tasks and self._pool is not None:
            self._pool.AddManyTasks(tasks, priority=prios, task_id=ids)

    def _EnqueueJobIds(self, job_ids: list[int]) -> None:
        with self._lock:
            jobs = [self._jobs[job_id] for job_id in job_ids if job_id in self._jobs]
        self._EnqueueJobs(jobs)

    def _RunJob(self, job_id: int) -> None:
        """Worker function: run a job until it finishes or waits."""
        with self._lock:
            self._pooled.discard(job_id)
            job = self._jobs.get(job_id)
            if job is None:
                return
            self._running.add(job_id)
        try:
            while True:
                JobProcessor(self, job).Run()
                with self._lock:
                    if job_id not in self._rerun:
                        self._running.discard(job_id)
                        break
                    self._rerun.discard(job_id)
        except BaseException:
            with self._lock:
                self._running.discard(job_id)
                self._rerun.discard(job_id)
            raise

    def _NextOp(self, job: QueuedJob) -> int | None:
        """Index of the next opcode to run; None when the job is done.

        A cancelled job is finished here. The job's start timestamp is set.
        """
        with self._lock:
            status = job.CalcStatus()
            if status == constants.JOB_STATUS_CANCELING:
                idx = next(i for i, op in enumerate(job.ops)
                           if op.status not in constants.OPS_FINALIZED)
            elif status in constants.JOBS_FINALIZED:
                return None
            else:
                if job.start_timestamp is None:
                    job.start_timestamp = TimeStampNow()
                return next(i for i, op in enumerate(job.ops)
                            if op.status not in constants.OPS_FINALIZED)
        self._FinishOps(job, idx, constants.OP_STATUS_CANCELED, CANCEL_MESSAGE)
        return None

    def _OpWaiting(self, job: QueuedJob, idx: int) -> bool:
        """Mark an opcode "waiting" (for locks); False if the job was cancelled."""
        with self._lock:
            op = job.ops[idx]
            if op.status in constants.OPS_FINALIZED:
                return False  # cancelled while queued
            if op.status == constants.OP_STATUS_CANCELING:
                cancelled = True
            else:
                cancelled = False
                changed = op.status != constants.OP_STATUS_WAITING
                op.status = constants.OP_STATUS_WAITING
                if op.start_timestamp is None:
                    op.start_timestamp = TimeStampNow()
                if changed:
                    self._Changed(job)
        if cancelled:
            self._FinishOps(job, idx, constants.OP_STATUS_CANCELED, CANCEL_MESSAGE)
            return False
        self._WriteLater(job)
        self._Notify(job.id)
        return True

    def _OpWaitingForJob(self, job: QueuedJob, idx: int, message: str) -> None:
        """An opcode waits for another job: status "waiting", worker freed."""
        with self._lock:
            op = job.ops[idx]
            changed = op.status in (constants.OP_STATUS_QUEUED,)
            if changed:
                op.status = constants.OP_STATUS_WAITING
            if op.start_timestamp is None:
                op.start_timestamp = TimeStampNow()
            if changed:
                job.AddLog(idx, constants.ELOG_MESSAGE, message)
                self._Changed(job)
        if changed:
            self._WriteJob(job)
            self._Notify(job.id)

    def _OpStarted(self, job: QueuedJob, idx: int) -> None:
        """Locks are held: the opcode runs (or the job is cancelled now)."""
        with self._lock:
            op = job.ops[idx]
            if op.status == constants.OP_STATUS_CANCELING:
                raise errors.JobCanceled(CANCEL_MESSAGE)
            op.status = constants.OP_STATUS_RUNNING
            op.exec_timestamp = stamp = TimeStampNow()
            self._Changed(job)
        # On disk before the opcode runs: one append instead of rewriting
        # the job file (a restart fails the opcode, see _ApplyExecLog)
        self.storage.exec_log.Started(job.id, idx, stamp)
        self._Notify(job.id)

    def _OpPriorityRaised(self, job: QueuedJob, idx: int, priority: int) -> None:
        with self._lock:
            job.ops[idx].priority = priority
            self._Changed(job)
        self._WriteLater(job)
        self._Notify(job.id)

    def _IsCanceling(self, job: QueuedJob, idx: int) -> bool:
        with self._lock:
            return job.ops[idx].status == constants.OP_STATUS_CANCELING

    def _AddLog(self, job: QueuedJob, idx: int, log_type: str, message: Any) -> None:
        # Make the message what a reader of the file would get back
        message = serializer.LoadJson(serializer.DumpJson(message))
        with self._lock:
            job.AddLog(idx, log_type, message)
            self._Changed(job)
        self._WriteLater(job)
        self._Notify(job.id)

    def _OpSucceeded(self, job: QueuedJob, idx: int, result: Any) -> None:
        try:
            result = serializer.LoadJson(serializer.DumpJson(result))
        except (TypeError, ValueError) as err:
            self._FailOps(job, idx, errors.OpResultError(
                f"Result of opcode {job.ops[idx].input.OP_ID} cannot be serialised: {err}"))
            return
        with self._lock:
            op = job.ops[idx]
            op.status = constants.OP_STATUS_SUCCESS
            op.result = result
            op.end_timestamp = TimeStampNow()
            finished = all(o.status == constants.OP_STATUS_SUCCESS for o in job.ops)
            if finished:
                job.end_timestamp = op.end_timestamp
            self._Changed(job)
        if finished:
            self._JobEnded(job)
            return
        self._SyncJobs([job])
        self.storage.exec_log.Done(job.id)
        self._Notify(job.id)

    def _FailOps(self, job: QueuedJob, idx: int, err: BaseException) -> None:
        """The opcode failed with ``err``; the later ones fail with it."""
        with self._lock:
            op = job.ops[idx]
            if op.status in constants.OPS_FINALIZED:
                return  # cancelled meanwhile
            op.status = constants.OP_STATUS_ERROR
            op.result = EncodeOpError(err)
            op.end_timestamp = TimeStampNow()
            if op.start_timestamp is None:
                op.start_timestamp = op.end_timestamp
            job.MarkUnfinishedOps(constants.OP_STATUS_ERROR,
                                  EncodeOpError(errors.OpExecError("Preceding opcode failed")))
            self._Changed(job)
        self._JobEnded(job)

    def _FinishOps(self, job: QueuedJob, idx: int, status: str, result: Any,
                   log: str | None = None) -> None:
        """End the job from opcode ``idx`` on with ``status`` and ``result``."""
        with self._lock:
            if job.IsFinalized():
                return
            if log is not None:
                job.AddLog(idx, constants.ELOG_MESSAGE, log)
            job.MarkUnfinishedOps(status, result)
            self._Changed(job)
        self._JobEnded(job)

    def _JobFinished(self, job: QueuedJob) -> None:
        with self._lock:
            if self._jobs.pop(job.id, None) is not None and not job.archived:
                self._CacheFinished(job)
        self.deps.NotifyWaiters(job.id)

    def _GetJobStatusForDeps(self, job_id: int) -> str:
        job = self._GetJob(job_id)
        if job is not None:
            with self._lock:
                if job.EndPending():
                    # Dependent jobs wait until the end is on disk
                    return constants.JOB_STATUS_RUNNING
                return job.CalcStatus()
        archived = self._LoadJobFile(job_id, archived=True)
        if archived is None:
            raise errors.JobLost(f"Job {job_id} not found")
        return archived.CalcStatus()

    # --- cancelling and priorities ------------------------------------------------------------

    def CancelJob(self, job_id: Any) -> tuple[bool, str]:
        """Cancel a queued or waiting job; ``(success, message)``."""
        job_id = jstorage.ParseJobId(job_id)
        job = self._GetJob(job_id)
        if job is None:
            return False, f"Job {job_id} not found"
        with self._lock:
            status = job.CalcStatus()
            if status == constants.JOB_STATUS_QUEUED:
                job.MarkUnfinishedOps(constants.OP_STATUS_CANCELED, CANCEL_MESSAGE)
                self._Changed(job)
                outcome = "canceled"
            elif status == constants.JOB_STATUS_WAITING:
                for op in job.ops:
                    if op.status not in constants.OPS_FINALIZED:
                        op.status = constants.OP_STATUS_CANCELING
                self._Changed(job)
                outcome = "canceling"
            else:
                return False, f"Job {job_id} is no longer waiting in the queue"
        if outcome == "canceled":
            self._WriteJob(job, sync=True)
            self._JobFinished(job)
            self._Notify(job_id)
            return True, f"Job {job_id} canceled"
        self._WriteJob(job)
        self._Notify(job_id)
        # A job waiting for another job holds no worker: wake it up to finish
        self._EnqueueJobs([job])
        return True, f"Job {job_id} will be canceled"

    def ChangeJobPriority(self, job_id: Any, priority: Any) -> tuple[bool, str]:
        """Change the priority of a job's pending opcodes; ``(success, message)``."""
        job_id = jstorage.ParseJobId(job_id)
        if isinstance(priority, bool) or priority not in constants.OP_PRIO_SUBMIT_VALID:
            allowed = ", ".join(str(p) for p in sorted(constants.OP_PRIO_SUBMIT_VALID))
            raise errors.OpPrereqError(
                f"Invalid priority {priority!r}, allowed are {allowed}", errors.ECODE_INVAL)
        job = self._GetJob(job_id)
        if job is None:
            return False, f"Job {job_id} not found"
        with self._lock:
            status = job.CalcStatus()
            if status in constants.JOBS_FINALIZED:
                return False, f"Job {job_id} is finished"
            if status == constants.JOB_STATUS_CANCELING:
                return False, f"Job {job_id} is cancelling"
            changed = False
            for op in job.ops:
                if op.status == constants.OP_STATUS_RUNNING \
                        or op.status in constants.OPS_FINALIZED:
                    continue
                op.priority = priority
                changed = True
            if not changed:
                return False, f"Job {job_id} had no pending opcodes"
            self._Changed(job)
            new_prio = job.CalcPriority()
        if self._pool is not None:
            self._pool.ChangeTaskPriority(job_id, new_prio)
        self._WriteJob(job)
        self._Notify(job_id)
        return (True, f"Priorities of pending opcodes for job {job_id} have been"
                      f" changed to {priority}")

    # --- archive -------------------------------------------------------------------------------

    def _ArchiveJobs(self, jobs: list[QueuedJob]) -> int:
        count = 0
        for job in jobs:
            with self._lock:
                if not job.IsFinalized() or job.id not in self._job_ids:
                    continue
            # The final state may not be on disk yet
            self._WriteJob(job, sync=True)
            with job.write_lock:
                try:
                    self.storage.ArchiveJob(job.id)
                except OSError as err:
                    logging.error("Cannot archive job %s: %s", job.id, err)
                    continue
                job.archived = True
            with self._lock:
                self._job_ids.discard(job.id)
                self._finished.pop(job.id, None)
                self._jobs.pop(job.id, None)
            count += 1
        return count

    def ArchiveJob(self, job_id: Any) -> bool:
        """Move a finished job to the archive; False if unknown or unfinished."""
        job_id = jstorage.ParseJobId(job_id)
        job = self._GetJob(job_id)
        if job is None:
            logging.debug("Job %s not found for archiving", job_id)
            return False
        return self._ArchiveJobs([job]) == 1

    def AutoArchiveJobs(self, age: float, timeout: float) -> tuple[int, int]:
        """Archive finished jobs older than ``age`` seconds (-1: all of them).

        Stops after about ``timeout`` seconds; returns the number of jobs
        archived and the number of jobs not looked at.
        """
        for name, value in (("age", age), ("timeout", timeout)):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise errors.OpPrereqError(f"Invalid {name} {value!r}: expected a number",
                                           errors.ECODE_INVAL)
        end = time.monotonic() + timeout
        now = time.time()
        with self._lock:
            job_ids = sorted(self._job_ids)
        archived = 0
        pending: list[QueuedJob] = []
        examined = 0
        for job_id in job_ids:
            if time.monotonic() > end:
                break
            examined += 1
            job = self._GetJob(job_id)
            if job is None:
                continue
            with self._lock:
                if not job.IsFinalized():
                    continue
                stamp = job.end_timestamp or job.start_timestamp or job.received_timestamp
            if age == -1 or stamp is None or now - stamp[0] > age:
                pending.append(job)
                if len(pending) >= 10:
                    archived += self._ArchiveJobs(pending)
                    pending = []
        if pending:
            archived += self._ArchiveJobs(pending)
        return archived, len(job_ids) - examined

    # --- drain flag ----------------------------------------------------------------------------

    def SetDrainFlag(self, flag: bool) -> bool:
        """Set or clear the drain flag; True."""
        if not isinstance(flag, bool):
            raise errors.OpPrereqError(f"Drain flag must be a boolean, got {flag!r}",
                                       errors.ECODE_INVAL)
        self.storage.SetDrainFlag(flag)
        return True

    def IsDrained(self) -> bool:
        """Whether the queue refuses new jobs."""
        return self.storage.IsDrained()

    # --- information ---------------------------------------------------------------------------

    def GetJobInfo(self, job_id: int) -> dict[str, Any] | None:
        """The dict of one job (queue or archive), or None."""
        job = self._GetJob(job_id)
        if job is not None:
            with self._lock:
                return job.GetInfo()
        archived = self._LoadJobFile(job_id, archived=True)
        return archived.GetInfo() if archived is not None else None

    def GetJobsInfo(self, job_ids: Iterable[Any] | None = None,
                    include_archived: bool = True) -> list[dict[str, Any] | None]:
        """Job dicts (with "status", "priority", "archived") for the query module.

        With ``job_ids`` None: every job, archived ones too unless
        ``include_archived`` is false. Unknown IDs give None.
        """
        if job_ids is None:
            with self._lock:
                ids = set(self._job_ids)
            if include_archived:
                ids.update(self.storage.ListArchivedJobIds())
            wanted = sorted(ids)
        else:
            wanted = [jstorage.ParseJobId(job_id) for job_id in job_ids]
        return [self.GetJobInfo(job_id) for job_id in wanted]

    def GetJobIds(self) -> list[int]:
        """IDs of the jobs in the queue (not archived), sorted."""
        with self._lock:
            return sorted(self._job_ids)

    def GetJobChanges(self, job_id: Any, fields: list[str], prev_job_info: Any,
                      prev_log_serial: Any) -> tuple[list[Any], list[Any]] | None:
        """What changed since ``prev_job_info``/``prev_log_serial``, or None.

        Answers at once (never None) when the job is finished or cancelling:
        it will not change any more; but a job whose end is not on disk yet
        gives None (the subscribers are told once it is). Raises JobLost
        for an unknown job.
        """
        job_id = jstorage.ParseJobId(job_id)
        job = self._GetJob(job_id)
        if job is not None:
            with self._lock:
                if job.EndPending():
                    # Told once the end is on disk (see _JobEnded)
                    return None
                status = job.CalcStatus()
                job_info = query.GetJobFieldValues(job.InfoView(), fields)
                log_entries = job.GetLogEntries(prev_log_serial)
        else:
            archived = self._LoadJobFile(job_id, archived=True)
            if archived is None:
                raise errors.JobLost(f"Job {job_id} not found")
            status = archived.CalcStatus()
            job_info = query.GetJobFieldValues(archived.InfoView(), fields)
            log_entries = archived.GetLogEntries(prev_log_serial)
        # Compare what the client would get back: plain values need no
        # round trip through JSON, lists and dicts may (tuples, copies)
        if not all(value is None or type(value) in _PLAIN_TYPES for value in job_info):
            job_info = serializer.LoadJson(serializer.DumpJson(job_info))
        if log_entries:
            log_entries = serializer.LoadJson(serializer.DumpJson(log_entries))
        if (status not in (constants.JOB_STATUS_QUEUED, constants.JOB_STATUS_RUNNING,
                           constants.JOB_STATUS_WAITING)
                or job_info != prev_job_info or log_entries):
            return job_info, log_entries
        return None

    def WaitForJobChanges(self, job_id: Any, fields: list[str], prev_job_info: Any,
                          prev_log_serial: Any, timeout: float) -> Any:
        """Block up to ``timeout`` for a change; "nochange" at the timeout.

        For callers that may block (tests, tools in the master); the luxi
        server uses :meth:`Subscribe` and :meth:`GetJobChanges` instead.
        """
        event = threading.Event()
        handle = self.Subscribe(job_id, event.set)
        try:
            end = time.monotonic() + timeout
            while True:
                event.clear()
                result = self.GetJobChanges(job_id, fields, prev_job_info, prev_log_serial)
                if result is not None:
                    return result
                remaining = end - time.monotonic()
                if remaining <= 0 or not event.wait(remaining):
                    return constants.JOB_NOTCHANGED
        finally:
            self.Unsubscribe(handle)
