"""A pool of worker threads running tasks in priority order.

The master daemon runs each job in one of these threads. A task is a tuple
of arguments for the pool's ``worker_fn``; tasks wait in one queue ordered
by priority (lower numbers first, as opcode priorities) and then by the
order they were added. A task added with a ``task_id`` can have its
priority changed while it waits (the job queue's ChangeJobPriority).

A worker function may raise :class:`DeferTask` to put its task back into
the queue, optionally with another priority.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import Any

from ganeti import constants
from ganeti import errors
from ganeti import locking


class DeferTask(Exception):  # noqa: N818  (Ganeti's name)
    """Raised by a worker function to run its task again later."""

    def __init__(self, priority: int | None = None) -> None:
        super().__init__(priority)
        self.priority = priority


def _check_priority(priority: Any) -> int:
    if isinstance(priority, bool) or not isinstance(priority, int):
        raise errors.ProgrammerError(f"Task priority must be an integer, got {priority!r}")
    return priority


class _Task:
    """One queued task; ``cancelled`` entries stay in the heap and are skipped."""

    __slots__ = ("priority", "order", "task_id", "args", "cancelled")

    def __init__(self, priority: int, order: int, task_id: Hashable | None,
                 args: Sequence[Any]) -> None:
        self.priority = priority
        self.order = order
        self.task_id = task_id
        self.args = args
        self.cancelled = False

    def key(self) -> tuple[int, int]:
        return (self.priority, self.order)

    def __lt__(self, other: _Task) -> bool:
        return self.key() < other.key()


class WorkerPool:
    """``num_workers`` threads calling ``worker_fn(*args)`` for each task."""

    def __init__(self, name: str, num_workers: int,
                 worker_fn: Callable[..., Any]) -> None:
        if isinstance(num_workers, bool) or not isinstance(num_workers, int) \
                or num_workers < 1:
            raise errors.ProgrammerError(
                f"Number of workers must be a positive integer, got {num_workers!r}")
        if not callable(worker_fn):
            raise errors.ProgrammerError(f"worker_fn must be callable, got {worker_fn!r}")
        self.name = name
        self._worker_fn = worker_fn
        self._lock = threading.Lock()
        # Workers wait on one condition, Quiesce and friends on the other, so
        # that adding a task wakes exactly one worker
        self._work_cond = threading.Condition(self._lock)
        self._idle_cond = threading.Condition(self._lock)
        self._heap: list[_Task] = []
        self._by_id: dict[Hashable, _Task] = {}
        self._order = itertools.count()
        self._pending = 0      # tasks in the heap that are not cancelled
        self._running = 0      # tasks being run by a worker right now
        self._active = True    # workers take tasks only while active
        self._terminating = False
        self._workers: list[threading.Thread] = []
        for idx in range(num_workers):
            thread = threading.Thread(target=self._run_worker,
                                      name=f"{name}{idx + 1}", daemon=True)
            self._workers.append(thread)
            thread.start()

    # --- adding tasks -------------------------------------------------------------------

    def _add_locked(self, args: Sequence[Any], priority: int,
                    task_id: Hashable | None) -> None:
        if self._terminating:
            raise errors.ProgrammerError(f"Worker pool {self.name} is terminating")
        if not isinstance(args, (tuple, list)):
            raise errors.ProgrammerError(f"Task arguments must be a sequence, got {args!r}")
        _check_priority(priority)
        if task_id is not None and task_id in self._by_id:
            raise errors.ProgrammerError(f"Task ID {task_id!r} is queued already")
        task = _Task(priority, next(self._order), task_id, tuple(args))
        heapq.heappush(self._heap, task)
        if task_id is not None:
            self._by_id[task_id] = task
        self._pending += 1

    def AddTask(self, args: Sequence[Any], priority: int = constants.OP_PRIO_DEFAULT,
                task_id: Hashable | None = None) -> None:
        """Queue one task."""
        with self._lock:
            self._add_locked(args, priority, task_id)
            self._work_cond.notify()

    def AddManyTasks(self, tasks: Iterable[Sequence[Any]],
                     priority: int | Sequence[int] = constants.OP_PRIO_DEFAULT,
                     task_id: Sequence[Hashable | None] | None = None) -> None:
        """Queue several tasks; ``priority`` and ``task_id`` may be per-task lists."""
        tasks = list(tasks)
        if isinstance(priority, (list, tuple)):
            priorities = list(priority)
        else:
            priorities = [priority] * len(tasks)  # type: ignore[list-item]
        ids = list(task_id) if task_id is not None else [None] * len(tasks)
        if len(priorities) != len(tasks) or len(ids) != len(tasks):
            raise errors.ProgrammerError(
                f"Got {len(tasks)} tasks, {len(priorities)} priorities and {len(ids)} IDs")
        with self._lock:
            for args, prio, tid in zip(tasks, priorities, ids):
                self._add_locked(args, prio, tid)
            self._work_cond.notify(len(tasks))

    def ChangeTaskPriority(self, task_id: Hashable, priority: int) -> bool:
        """Change the priority of a waiting task; False if it is not waiting."""
        _check_priority(priority)
        with self._lock:
            task = self._by_id.get(task_id)
            if task is None:
                return False
            if task.priority == priority:
                return True
            # Leave the old entry in the heap as a tombstone
            task.cancelled = True
            new = _Task(priority, task.order, task_id, task.args)
            heapq.heappush(self._heap, new)
            self._by_id[task_id] = new
            return True

    # --- control ---------------------------------------------------------------------------

    def SetActive(self, active: bool) -> None:
        """Let workers take tasks (True) or hold them back (False)."""
        with self._lock:
            self._active = bool(active)
            self._work_cond.notify_all()

    def HasRunningTasks(self) -> bool:
        """Whether a worker is running a task right now."""
        with self._lock:
            return self._running > 0

    def _idle(self) -> bool:
        return self._pending == 0 and self._running == 0

    def Quiesce(self, timeout: float | None = None) -> bool:
        """Wait until no task is queued or running; False on timeout."""
        with self._lock:
            return self._idle_cond.wait_for(self._idle, timeout)

    def WaitForRunning(self, timeout: float | None = None) -> bool:
        """Wait until no task is running (queued ones may remain)."""
        with self._lock:
            return self._idle_cond.wait_for(lambda: self._running == 0, timeout)

    def TerminateWorkers(self, timeout: float | None = None) -> bool:
        """Stop the workers once their current task is done; drop queued tasks.

        Returns False when a worker did not stop within ``timeout`` (the
        threads are daemon threads and die with the process).
        """
        with self._lock:
            self._terminating = True
            self._work_cond.notify_all()
        end = None if timeout is None else time.monotonic() + timeout
        ok = True
        for thread in self._workers:
            if thread is threading.current_thread():
                continue
            thread.join(None if end is None else max(0.0, end - time.monotonic()))
            if thread.is_alive():
                ok = False
        with self._lock:
            self._heap.clear()
            self._by_id.clear()
            self._pending = 0
            self._idle_cond.notify_all()
        return ok

    # --- workers ------------------------------------------------------------------------------

    def _take_locked(self) -> _Task | None:
        while self._heap:
            task = heapq.heappop(self._heap)
            if task.cancelled:
                continue
            if task.task_id is not None:
                del self._by_id[task.task_id]
            self._pending -= 1
            return task
        return None

    def _run_worker(self) -> None:
        while True:
            with self._lock:
                while not self._terminating and (not self._active or not self._pending):
                    self._work_cond.wait()
                if self._terminating:
                    return
                task = self._take_locked()
                assert task is not None
                self._running += 1
            defer_prio: int | None = None
            deferred = False
            try:
                self._worker_fn(*task.args)
            except DeferTask as err:
                deferred = True
                defer_prio = err.priority
            except Exception:  # a task must not kill its worker
                logging.exception("Worker pool %s: task %r failed", self.name, task.args)
            finally:
                locking.set_owner_name(None)
            with self._lock:
                self._running -= 1
                if deferred and not self._terminating:
                    prio = task.priority if defer_prio is None else defer_prio
                    try:
                        self._add_locked(task.args, prio, task.task_id)
                    except errors.ProgrammerError:
                        logging.exception("Worker pool %s: cannot defer task", self.name)
                    else:
                        self._work_cond.notify()
                self._idle_cond.notify_all()
