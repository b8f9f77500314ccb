"""Job dependencies: a job's opcode may wait for other jobs to finish.

An opcode's ``depends`` parameter lists ``[job_id, [final statuses]]``
pairs. Before the opcode runs, each dependency is checked:

- the other job is not finished yet: the job waits (status "waiting",
  no worker held) and runs again when that job finishes;
- it finished with a listed status (or the list is empty): go on;
- it was cancelled and "canceled" is not listed: this job is cancelled too;
- it finished with another status: this job fails, saying which status it
  wanted and which one it got;
- it is not known (neither in the queue nor in the archive), or it is the
  job itself: this job fails.

Archived jobs count with the status they were archived with.
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Callable

from ganeti import constants
from ganeti import errors


class DepResult(enum.Enum):
    """What to do about one dependency."""

    WAIT = "wait"
    CONTINUE = "continue"
    CANCEL = "cancel"
    WRONGSTATUS = "wrongstatus"
    ERROR = "error"


class JobDependencyManager:
    """Remembers which jobs wait for which, and wakes them up.

    ``get_status_fn(job_id)`` returns a job's status (from the queue or the
    archive) or raises ``errors.JobLost``; ``enqueue_fn(job_ids)`` hands
    waiting jobs back to the workers once a job they wait for finished.
    """

    def __init__(self, get_status_fn: Callable[[int], str],
                 enqueue_fn: Callable[[list[int]], None]) -> None:
        self._get_status = get_status_fn
        self._enqueue = enqueue_fn
        self._lock = threading.Lock()
        self._waiters: dict[int, set[int]] = {}

    def CheckAndRegister(self, job_id: int, dep_job_id: int,
                         dep_status: list[str]) -> tuple[DepResult, str]:
        """Check one dependency; on WAIT, ``job_id`` is woken up later."""
        if job_id == dep_job_id:
            return DepResult.ERROR, "Job can't depend on itself"
        with self._lock:
            # Registering before looking avoids missing a job that finishes
            # between the look and the registration
            self._waiters.setdefault(dep_job_id, set()).add(job_id)
        try:
            status = self._get_status(dep_job_id)
        except errors.JobLost as err:
            self._Unregister(job_id, dep_job_id)
            return DepResult.ERROR, f"Dependency error: {err}"
        if status not in constants.JOBS_FINALIZED:
            return (DepResult.WAIT,
                    f"Need to wait for job {dep_job_id}, wanted status"
                    f" '{', '.join(dep_status)}'")
        self._Unregister(job_id, dep_job_id)
        if status == constants.JOB_STATUS_CANCELED \
                and constants.JOB_STATUS_CANCELED not in dep_status:
            return DepResult.CANCEL, f"Dependency job {dep_job_id} was cancelled"
        if not dep_status or status in dep_status:
            return (DepResult.CONTINUE,
                    f"Dependency job {dep_job_id} finished with status '{status}'")
        return (DepResult.WRONGSTATUS,
                f"Dependency job {dep_job_id} finished with status '{status}',"
                f" not one of '{', '.join(dep_status)}' as required")

    def _Unregister(self, job_id: int, dep_job_id: int) -> None:
        with self._lock:
            waiters = self._waiters.get(dep_job_id)
            if waiters is not None:
                waiters.discard(job_id)
                if not waiters:
                    del self._waiters[dep_job_id]

    def JobWaiting(self, job_id: int) -> bool:
        """Whether ``job_id`` waits for another job."""
        with self._lock:
            return any(job_id in waiters for waiters in self._waiters.values())

    def NotifyWaiters(self, dep_job_id: int) -> None:
        """``dep_job_id`` finished: hand the jobs waiting for it to the workers."""
        with self._lock:
            waiters = self._waiters.pop(dep_job_id, None)
        if waiters:
            self._enqueue(sorted(waiters))

    def GetWaiting(self) -> dict[int, list[int]]:
        """Job ID -> IDs of the jobs waiting for it (for debugging)."""
        with self._lock:
            return {dep: sorted(waiters) for dep, waiters in self._waiters.items()}
