"""The shared lock of seed 003, "SharedLock redesign".

One queue holds every pending acquire, ordered by priority (lower number
first) and, within one priority, by arrival. An entry of the queue is a
condition: each exclusive acquire has its own, while shared acquires of one
priority gather on that priority's *active* shared condition. When the
active shared condition is notified it is swapped with the inactive one, so
shared acquires arriving later queue behind any exclusive acquire that came
in between; until then they join it and thereby skip queued exclusive
acquires, as the design wants for read-only operations.

A waiter may take the lock when its condition is at the top of the queue
and the lock is compatible with its mode. The top condition is notified
whenever that becomes true: on release, downgrade, and when a waiter leaves
the top of the queue (acquired or timed out). Deleting the lock notifies
everybody, and each waiter raises :class:`LockDeletedError`.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterator

from ganeti.locking.common import (
    MODE_DELETED,
    MODE_EXCLUSIVE,
    MODE_SHARED,
    LockDeletedError,
    LockUsageError,
    check_priority,
    check_shared,
    check_timeout,
    get_owner_name,
)
from ganeti.locking.condition import PipeCondition
from ganeti.locking.monitor import (
    LQ_MODE,
    LQ_OWNER,
    LQ_PENDING,
    LockInfo,
    LockMonitor,
)


class _PendingAcquire(PipeCondition):
    """One entry of a lock's queue: a condition plus who waits on it."""

    def __init__(self, lock: threading.Lock, shared: bool, priority: int) -> None:
        super().__init__(lock)
        self.shared = shared
        self.priority = priority
        #: waiting thread -> owner name, in arrival order
        self.waiters: dict[threading.Thread, str] = {}
        self.queued = False


class SharedLock:
    """A lock held by one exclusive owner or by many shared owners.

    Ownership is per thread. A thread may hold a lock once; acquiring it
    again, or releasing it without holding it, raises
    :class:`LockUsageError`. Owners are the ``threading.Thread`` objects,
    not thread ids: the system reuses the id of an ended thread, and a
    thread that died holding a lock must not pass it on to a newcomer that
    happens to get the same id.
    """

    def __init__(self, name: str, monitor: LockMonitor | None = None) -> None:
        self.name = name
        self._mutex = threading.Lock()
        self._exclusive: threading.Thread | None = None
        self._shared: set[threading.Thread] = set()
        self._owner_names: dict[threading.Thread, str] = {}
        #: priority -> entries in arrival order
        self._queue: dict[int, deque[_PendingAcquire]] = {}
        #: priority -> [active, inactive] shared conditions
        self._shared_conds: dict[int, list[_PendingAcquire]] = {}
        self._deleted = False
        if monitor is not None:
            monitor.RegisterLock(self)

    def __repr__(self) -> str:
        return f"<{self.__class__.__name__} {self.name!r}>"

    # --- queries -----------------------------------------------------------------------

    @property
    def deleted(self) -> bool:
        """Whether :meth:`delete` has succeeded on this lock."""
        return self._deleted

    def is_owned(self, shared: int = -1) -> bool:
        """Whether the calling thread holds the lock.

        ``shared``: -1 in any mode, 0 exclusively, 1 in shared mode.
        """
        if shared not in (-1, 0, 1):
            raise LockUsageError(f"'shared' must be -1, 0 or 1, got {shared!r}")
        owner = threading.current_thread()
        with self._mutex:
            return self._is_owned_locked(owner, shared)

    def has_pending(self) -> bool:
        """Whether any acquire is waiting for this lock."""
        with self._mutex:
            return bool(self._queue)

    def GetLockInfo(self, requested: frozenset[str]) -> list[LockInfo]:
        """Describe the lock for a lock query; see ``monitor.LockInfo``."""
        mode = owner = pending = None
        with self._mutex:
            if LQ_MODE in requested:
                if self._deleted:
                    mode = MODE_DELETED
                elif self._exclusive is not None:
                    mode = MODE_EXCLUSIVE
                elif self._shared:
                    mode = MODE_SHARED
            if LQ_OWNER in requested and self._owner_names:
                owner = sorted(self._owner_names.values())
            if LQ_PENDING in requested:
                pending = [(MODE_SHARED if entry.shared else MODE_EXCLUSIVE,
                            sorted(entry.waiters.values()))
                           for entry in self._iter_queue()]
        return [(self.name, mode, owner, pending)]

    # --- operations ----------------------------------------------------------------------

    def acquire(self, shared: int = 0, timeout: float | None = None,
                priority: int | None = None) -> bool:
        """Acquire the lock, exclusively unless ``shared`` is 1.

        ``timeout`` in seconds (None: wait as long as needed; 0: only if
        the lock is available now). Returns False on timeout, holding
        nothing. Raises ``LockDeletedError`` (an ``errors.LockError``) if
        the lock is or gets deleted.
        """
        is_shared = check_shared(shared)
        timeout = check_timeout(timeout)
        prio = check_priority(priority)
        name = get_owner_name()
        with self._mutex:
            return self._acquire_locked(is_shared, timeout, prio, name)

    def release(self) -> None:
        """Release the lock held by the calling thread (in either mode)."""
        owner = threading.current_thread()
        with self._mutex:
            if self._exclusive is owner:
                self._exclusive = None
            elif owner in self._shared:
                self._shared.remove(owner)
            else:
                raise LockUsageError(f"Releasing lock {self.name!r} which is not held")
            del self._owner_names[owner]
            self._notify_top()

    def downgrade(self) -> bool:
        """Turn an exclusive hold into a shared one (no-op if already shared)."""
        owner = threading.current_thread()
        with self._mutex:
            if self._exclusive is owner:
                self._exclusive = None
                self._shared.add(owner)
                self._notify_top()
            elif owner not in self._shared:
                raise LockUsageError(f"Downgrading lock {self.name!r} which is not held")
            return True

    def delete(self, timeout: float | None = None, priority: int | None = None) -> bool:
        """Delete the lock, acquiring it exclusively first unless held so.

        Returns False if it could not be acquired within ``timeout``. On
        success the lock is no longer held by anybody and every pending and
        later acquire raises ``errors.LockError``.
        """
        timeout = check_timeout(timeout)
        prio = check_priority(priority)
        name = get_owner_name()
        owner = threading.current_thread()
        with self._mutex:
            if self._deleted:
                raise LockDeletedError(f"Lock {self.name!r} is already deleted")
            if owner in self._shared:
                raise LockUsageError(
                    f"Cannot delete lock {self.name!r} while holding it in shared mode")
            if self._exclusive is not owner:
                if not self._acquire_locked(False, timeout, prio, name):
                    return False
            self._deleted = True
            self._exclusive = None
            self._owner_names.clear()
            for entry in list(self._iter_queue()):
                entry.queued = False
                entry.notify_all()
            self._queue.clear()
            self._shared_conds.clear()
            return True

    # --- internals (self._mutex held) -------------------------------------------------------

    def _is_owned_locked(self, owner: threading.Thread, shared: int) -> bool:
        if shared == 0:
            return self._exclusive is owner
        if shared == 1:
            return owner in self._shared
        return self._exclusive is owner or owner in self._shared

    def _iter_queue(self) -> Iterator[_PendingAcquire]:
        for prio in sorted(self._queue):
            yield from self._queue[prio]

    def _top(self) -> _PendingAcquire | None:
        if not self._queue:
            return None
        return self._queue[min(self._queue)][0]

    def _compatible(self, shared: bool) -> bool:
        """Whether the current holders allow an acquire in this mode."""
        if self._exclusive is not None:
            return False
        return shared or not self._shared

    def _acquire_locked(self, shared: bool, timeout: float | None, prio: int,
                        name: str) -> bool:
        owner = threading.current_thread()
        if self._deleted:
            raise LockDeletedError(f"Lock {self.name!r} has been deleted")
        if self._is_owned_locked(owner, -1):
            raise LockUsageError(f"Lock {self.name!r} is already held by this thread")

        # Nobody to be fair to: take the lock without touching the queue
        if not self._queue and self._compatible(shared):
            self._grant(owner, shared, name)
            return True

        entry = self._enqueue(shared, prio)
        entry.waiters[owner] = name
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            while True:
                if self._deleted:
                    raise LockDeletedError(f"Lock {self.name!r} was deleted")
                if self._top() is entry and self._compatible(shared):
                    self._grant(owner, shared, name)
                    return True
                if deadline is None:
                    remaining = None
                else:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return False
                entry.wait(remaining)
        finally:
            del entry.waiters[owner]
            if not entry.waiters and entry.queued:
                was_top = self._top() is entry
                self._dequeue(entry)
                if was_top:
                    self._notify_top()

    def _grant(self, owner: threading.Thread, shared: bool, name: str) -> None:
        if shared:
            self._shared.add(owner)
        else:
            self._exclusive = owner
        self._owner_names[owner] = name

    def _enqueue(self, shared: bool, prio: int) -> _PendingAcquire:
        if shared:
            pair = self._shared_conds.get(prio)
            if pair is None:
                pair = self._shared_conds[prio] = [
                    _PendingAcquire(self._mutex, True, prio),
                    _PendingAcquire(self._mutex, True, prio)]
            entry = pair[0]
            if entry.queued:
                return entry
        else:
            entry = _PendingAcquire(self._mutex, False, prio)
        self._queue.setdefault(prio, deque()).append(entry)
        entry.queued = True
        return entry

    def _dequeue(self, entry: _PendingAcquire) -> None:
        entries = self._queue[entry.priority]
        entries.remove(entry)
        if not entries:
            del self._queue[entry.priority]
            # A priority nobody waits at does not keep its conditions around
            pair = self._shared_conds.get(entry.priority)
            if pair is not None and not (pair[0].queued or pair[1].queued):
                del self._shared_conds[entry.priority]
        entry.queued = False

    def _notify_top(self) -> None:
        """Wake the top of the queue if it can now take the lock."""
        top = self._top()
        if top is None or not self._compatible(top.shared):
            return
        top.notify_all()
        if top.shared:
            pair = self._shared_conds[top.priority]
            if pair[0] is top:
                # Shared acquires from now on queue behind what came meanwhile
                pair.reverse()
