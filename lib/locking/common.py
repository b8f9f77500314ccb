"""Pieces shared by every lock class: errors, argument checks, owner names."""

from __future__ import annotations

import threading
import time

from ganeti import constants
from ganeti import errors

#: Lock modes as reported by lock queries (``mode`` field and ``pending``)
MODE_EXCLUSIVE = "exclusive"
MODE_SHARED = "shared"
MODE_DELETED = "deleted"


class LockUsageError(errors.ProgrammerError, errors.LockError):
    """The locking API was used in a way it does not allow.

    Releasing a lock one does not hold, acquiring a lock twice, breaking the
    level order and similar bugs raise this. It is a ``ProgrammerError``
    (the caller is wrong) and also a ``LockError`` (it is about locks), so
    code catching either sees it.
    """


class LockDeletedError(errors.LockError):
    """The lock was deleted before or while it was being acquired."""


_owner = threading.local()


def set_owner_name(name: str | None) -> None:
    """Name the calling thread in lock queries (e.g. the job it runs).

    ``None`` goes back to the thread's own name. The name is taken when a
    lock is acquired or an acquire starts waiting.
    """
    if name is not None and not isinstance(name, str):
        raise LockUsageError(f"Owner name must be a string, got {name!r}")
    _owner.name = name


def get_owner_name() -> str:
    """Return the name the calling thread has in lock queries."""
    name = getattr(_owner, "name", None)
    if name is None:
        return threading.current_thread().name
    return str(name)


def check_timeout(timeout: float | None) -> float | None:
    """Validate a timeout in seconds; ``None`` means wait forever."""
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise LockUsageError(f"Timeout must be a number or None, got {timeout!r}")
    if timeout < 0:
        raise LockUsageError(f"Timeout must not be negative, got {timeout!r}")
    return float(timeout)


def check_priority(priority: int | None) -> int:
    """Validate an acquire priority; ``None`` means the default one."""
    if priority is None:
        return constants.OP_PRIO_DEFAULT
    if (isinstance(priority, bool) or not isinstance(priority, int) or
            not constants.OP_PRIO_HIGHEST <= priority <= constants.OP_PRIO_LOWEST):
        raise LockUsageError(
            f"Priority must be an integer from {constants.OP_PRIO_HIGHEST}"
            f" to {constants.OP_PRIO_LOWEST}, got {priority!r}")
    return priority


def check_shared(shared: int | bool) -> bool:
    """Validate the ``shared`` flag (Ganeti passes 0 or 1)."""
    if shared not in (0, 1):
        raise LockUsageError(f"'shared' must be 0 or 1, got {shared!r}")
    return bool(shared)


class Deadline:
    """The time left of a timeout shared by several steps."""

    __slots__ = ("_end",)

    def __init__(self, timeout: float | None) -> None:
        self._end = None if timeout is None else time.monotonic() + timeout

    def remaining(self) -> float | None:
        """Seconds left (never negative), or None when there is no limit."""
        if self._end is None:
            return None
        return max(0.0, self._end - time.monotonic())
