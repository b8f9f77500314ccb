"""A named set of shared locks acquired together (seed 003, "LockSet").

Members are always acquired in sorted order, so two threads asking for
overlapping sets cannot deadlock. An acquire with a timeout is all or
nothing: if the time runs out, whatever was taken is released again, which
is what lets the lock-attempt strategy get out of other jobs' way.

Besides its members a set has one more lock, the set-level lock. Acquiring
:data:`ALL_SET` takes it first (in the requested mode) and keeps it while
the members are held; :meth:`LockSet.add` needs it exclusively. So while a
thread holds the whole set nobody can add members, and since every member
is held nobody can remove one either.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

from ganeti import errors
from ganeti.locking.common import (
    Deadline,
    LockDeletedError,
    LockUsageError,
    check_priority,
    check_shared,
    check_timeout,
)
from ganeti.locking.monitor import LockMonitor
from ganeti.locking.sharedlock import SharedLock

#: Pass as ``names`` to acquire every member of a set
ALL_SET = None

#: Name of the set-level lock inside a set (shown by lock queries)
SET_LOCK_NAME = "[lockset]"

Names = str | Iterable[str]


def _as_list(names: Names, what: str) -> list[str]:
    if isinstance(names, str):
        return [names]
    if names is None:
        raise LockUsageError(f"{what} needs lock names, got None")
    result = list(names)
    bad = [name for name in result if not isinstance(name, str)]
    if bad:
        raise LockUsageError(f"Lock names must be strings, got {bad!r}")
    return result


class LockSet:
    """A set of :class:`SharedLock` objects with per-thread ownership."""

    def __init__(self, members: Iterable[str], name: str,
                 monitor: LockMonitor | None = None) -> None:
        self.name = name
        self._monitor = monitor
        self._mutex = threading.Lock()  # guards _locks only, held briefly
        self._set_lock = SharedLock(self._lock_name(SET_LOCK_NAME), monitor)
        self._locks: dict[str, SharedLock] = {}
        for member in _as_list(members, "LockSet"):
            self._locks[member] = SharedLock(self._lock_name(member), monitor)
        self._local = threading.local()

    def __repr__(self) -> str:
        return f"<{self.__class__.__name__} {self.name!r}>"

    def _lock_name(self, member: str) -> str:
        return f"{self.name}/{member}"

    def _owned(self) -> dict[str, SharedLock]:
        """The calling thread's members: name -> lock.

        Kept in a ``threading.local``, which belongs to the thread object:
        a later thread that reuses a dead thread's id starts empty.
        """
        owned = getattr(self._local, "owned", None)
        if owned is None:
            owned = self._local.owned = {}
        return owned

    # --- queries ------------------------------------------------------------------------

    def names(self) -> frozenset[str]:
        """The current members."""
        with self._mutex:
            return frozenset(self._locks)

    def list_owned(self) -> set[str]:
        """The members the calling thread holds."""
        return set(self._owned())

    def is_owned(self) -> bool:
        """Whether the calling thread holds any lock of this set."""
        return bool(self._owned()) or self._set_lock.is_owned()

    def owning_all(self) -> bool:
        """Whether the calling thread acquired the whole set (ALL_SET)."""
        return self._set_lock.is_owned()

    def check_owned(self, names: Names, shared: int = -1) -> bool:
        """Whether the calling thread holds all ``names`` (in mode ``shared``)."""
        owned = self._owned()
        return all(name in owned and owned[name].is_owned(shared=shared)
                   for name in _as_list(names, "check_owned"))

    # --- acquire and release ---------------------------------------------------------------

    def acquire(self, names: Names | None, timeout: float | None = None,
                shared: int = 0, priority: int | None = None) -> set[str] | None:
        """Acquire ``names`` (a name, names, or :data:`ALL_SET`).

        Returns the set of names acquired, or None if ``timeout`` ran out,
        in which case nothing of this set is held. Unknown names raise
        ``errors.LockError`` naming them, before anything is acquired.
        """
        timeout = check_timeout(timeout)
        is_shared = check_shared(shared)
        prio = check_priority(priority)
        if self.is_owned():
            raise LockUsageError(
                f"This thread already holds locks in set {self.name!r};"
                " release them before acquiring more")
        deadline = Deadline(timeout)
        if names is ALL_SET:
            return self._acquire_all(is_shared, deadline, prio)
        wanted = sorted(set(_as_list(names, "acquire")))
        with self._mutex:
            missing = [name for name in wanted if name not in self._locks]
            locks = [(name, self._locks[name]) for name in wanted if name in self._locks]
        if missing:
            raise errors.LockError(
                f"Non-existing locks in set {self.name!r}: {', '.join(missing)}")
        return self._acquire_members(locks, is_shared, deadline, prio, want_all=False)

    def _acquire_all(self, shared: bool, deadline: Deadline, prio: int) -> set[str] | None:
        if not self._set_lock.acquire(shared=int(shared), timeout=deadline.remaining(),
                                      priority=prio):
            return None
        try:
            with self._mutex:
                locks = sorted(self._locks.items())
            result = self._acquire_members(locks, shared, deadline, prio, want_all=True)
        except BaseException:
            self._set_lock.release()
            raise
        if result is None:
            self._set_lock.release()
        return result

    def _acquire_members(self, locks: list[tuple[str, SharedLock]], shared: bool,
                         deadline: Deadline, prio: int, want_all: bool) -> set[str] | None:
        """Acquire ``locks`` in order; all of them or, on timeout, none."""
        owned = self._owned()
        try:
            for name, lock in locks:
                try:
                    acquired = lock.acquire(shared=int(shared), timeout=deadline.remaining(),
                                            priority=prio)
                except LockDeletedError:
                    if want_all:
                        # Removed since we listed the members: not a member any more
                        continue
                    raise errors.LockError(
                        f"Non-existing locks in set {self.name!r}: {name}"
                        " (removed while waiting for it)") from None
                if not acquired:
                    self._release_members(owned)
                    return None
                owned[name] = lock
        except BaseException:
            self._release_members(owned)
            raise
        return set(owned)

    @staticmethod
    def _release_members(owned: dict[str, SharedLock]) -> None:
        for lock in owned.values():
            lock.release()
        owned.clear()

    def release(self, names: Names | None = None) -> None:
        """Release ``names`` (default: everything held in this set).

        Releasing only part of a set acquired with ALL_SET also gives up the
        set-level lock: the thread no longer holds the whole set.
        """
        owned = self._owned()
        if not self.is_owned():
            raise LockUsageError(f"Releasing locks in set {self.name!r} but none is held")
        if names is None:
            to_release = list(owned)
        else:
            to_release = sorted(set(_as_list(names, "release")))
            not_owned = [name for name in to_release if name not in owned]
            if not_owned:
                raise LockUsageError(
                    f"Releasing locks not held in set {self.name!r}: {', '.join(not_owned)}")
        if self._set_lock.is_owned():
            self._set_lock.release()
        for name in to_release:
            owned.pop(name).release()

    def downgrade(self, names: Names | None = None) -> bool:
        """Turn exclusively held ``names`` (default: all held) into shared ones."""
        owned = self._owned()
        if not self.is_owned():
            raise LockUsageError(f"Downgrading locks in set {self.name!r} but none is held")
        if names is None:
            targets = list(owned)
        else:
            targets = sorted(set(_as_list(names, "downgrade")))
            not_owned = [name for name in targets if name not in owned]
            if not_owned:
                raise LockUsageError(
                    f"Downgrading locks not held in set {self.name!r}: {', '.join(not_owned)}")
        for name in targets:
            owned[name].downgrade()
        if (self._set_lock.is_owned(shared=0) and
                all(lock.is_owned(shared=1) for lock in owned.values())):
            self._set_lock.downgrade()
        return True

    # --- membership ---------------------------------------------------------------------------

    def add(self, names: Names, acquired: int = 0, shared: int = 0) -> bool:
        """Add new members, optionally acquired by the calling thread.

        Waits for whoever holds the whole set. The caller must hold nothing
        in this set, or the whole set exclusively. Names already present
        raise ``errors.LockError``.
        """
        new_names = _as_list(names, "add")
        is_shared = check_shared(shared)
        if self._set_lock.is_owned(shared=1):
            raise LockUsageError(
                f"Cannot add to set {self.name!r} while holding it in shared mode")
        holds_set = self._set_lock.is_owned(shared=0)
        if self._owned() and not holds_set:
            raise LockUsageError(
                f"Cannot add to set {self.name!r} while holding only part of it")
        if not holds_set:
            self._set_lock.acquire(shared=0)
        try:
            with self._mutex:
                dups = sorted({name for name in new_names if name in self._locks} |
                              {name for name in new_names if new_names.count(name) > 1})
                if dups:
                    raise errors.LockError(
                        f"Locks already in set {self.name!r}: {', '.join(dups)}")
                new_locks = {name: SharedLock(self._lock_name(name), self._monitor)
                             for name in new_names}
                if acquired:
                    # Nobody else can see these locks yet: this cannot block
                    for lock in new_locks.values():
                        lock.acquire(shared=int(is_shared))
                self._locks.update(new_locks)
            if acquired:
                self._owned().update(new_locks)
        finally:
            if not holds_set:
                self._set_lock.release()
        return True

    def remove(self, names: Names) -> list[str]:
        """Delete members; returns the names this call removed.

        Each lock is acquired exclusively (waiting for its holders) before
        it is deleted; its waiters get ``errors.LockError``. A thread holding
        part of the set may only remove members it holds. Names that are not
        members raise ``errors.LockError``; a member removed concurrently by
        another thread is left out of the result.
        """
        wanted = sorted(set(_as_list(names, "remove")))
        owned = self._owned()
        if owned and not set(wanted) <= set(owned):
            raise LockUsageError(
                f"Cannot remove locks of set {self.name!r} not held while holding"
                f" others: {', '.join(n for n in wanted if n not in owned)}")
        with self._mutex:
            missing = [name for name in wanted if name not in self._locks]
            locks = [(name, self._locks[name]) for name in wanted if name in self._locks]
        if missing:
            raise errors.LockError(
                f"Non-existing locks in set {self.name!r}: {', '.join(missing)}")
        removed = []
        for name, lock in locks:
            try:
                lock.delete()
            except LockDeletedError:
                continue
            with self._mutex:
                if self._locks.get(name) is lock:
                    del self._locks[name]
            owned.pop(name, None)
            removed.append(name)
        return removed
