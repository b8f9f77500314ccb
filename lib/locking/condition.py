"""Conditions whose waiters sleep in poll(2) on a pipe.

Seed 003, "Condition": Python's ``threading.Condition`` used to implement a
timed wait by polling its lock in a loop. Here a waiter blocks in ``poll``
on the read end of a pipe and a notification closes the write end, so a
wait with a timeout costs the kernel's timer and nothing else, and every
waiter wakes at once.

Both classes follow the ``threading.Condition`` protocol for their outer
lock: the caller holds it when calling ``wait``/``notify_all``; ``wait``
releases it while sleeping and takes it again before returning.
"""

from __future__ import annotations

import math
import os
import select
import threading
from typing import Any

from ganeti import errors


def _check_owned(lock: Any) -> None:
    """Raise unless ``lock`` looks held (by the caller, where we can tell)."""
    is_owned = getattr(lock, "_is_owned", None)
    held = is_owned() if is_owned is not None else lock.locked()
    if not held:
        raise errors.ProgrammerError("The condition's lock must be held")


def _timeout_ms(timeout: float | None) -> int | None:
    """Convert a timeout in seconds to what poll(2) wants (ms, rounded up)."""
    if timeout is None:
        return None
    if timeout < 0:
        raise errors.ProgrammerError(f"Negative timeout {timeout!r}")
    return int(math.ceil(timeout * 1000.0))


class SingleNotifyPipeCondition:
    """A condition that is notified exactly once.

    The pipe is created by the first waiter. ``notify_all`` closes its write
    end, which makes ``poll`` report a hang-up to every waiter; the last
    waiter to leave closes the read end. A condition nobody waits on holds
    no file descriptors, so abandoning one leaks nothing.
    """

    def __init__(self, lock: Any) -> None:
        self._lock = lock
        self._read_fd: int | None = None
        self._write_fd: int | None = None
        self._nwaiters = 0
        self._notified = False

    @property
    def notified(self) -> bool:
        """Whether :meth:`notify_all` has been called."""
        return self._notified

    def has_waiting(self) -> bool:
        """Whether any thread is waiting on this condition."""
        return self._nwaiters > 0

    def wait(self, timeout: float | None = None) -> None:
        """Wait for the notification or until ``timeout`` seconds passed.

        Like ``threading.Condition.wait`` the caller must check its own
        predicate afterwards: a timeout and a notification look the same.
        """
        _check_owned(self._lock)
        if self._notified:
            raise errors.ProgrammerError("Waiting on a condition already notified")
        poll_ms = _timeout_ms(timeout)
        if self._read_fd is None:
            self._read_fd, self._write_fd = os.pipe()
        read_fd = self._read_fd
        poller = select.poll()
        poller.register(read_fd, select.POLLHUP | select.POLLIN)
        self._nwaiters += 1
        self._lock.release()
        try:
            # PEP 475: poll is retried on EINTR with the remaining timeout
            poller.poll(poll_ms)
        finally:
            self._lock.acquire()
            self._nwaiters -= 1
            if not self._nwaiters:
                self._cleanup()

    def notify_all(self) -> None:
        """Wake every waiter; the condition cannot be used again."""
        _check_owned(self._lock)
        if self._notified:
            raise errors.ProgrammerError("Condition notified twice")
        self._notified = True
        if self._write_fd is not None:
            os.close(self._write_fd)
            self._write_fd = None
        if not self._nwaiters:
            self._cleanup()

    notifyAll = notify_all  # Ganeti's spelling

    def _cleanup(self) -> None:
        """Close what no waiter needs any more (called with the lock held)."""
        if self._write_fd is not None:
            os.close(self._write_fd)
            self._write_fd = None
        if self._read_fd is not None:
            os.close(self._read_fd)
            self._read_fd = None


class PipeCondition:
    """A reusable condition built from single-notify conditions.

    Each notification retires the current single-notify condition (its
    waiters still see the closed pipe) and the next ``wait`` starts a fresh
    one, which is the "re-create the pipe" step of the design.
    """

    def __init__(self, lock: Any | None = None) -> None:
        self._lock = lock if lock is not None else threading.Lock()
        self._single: SingleNotifyPipeCondition | None = None
        self._nwaiters = 0

    @property
    def lock(self) -> Any:
        """The outer lock the caller holds around wait and notify."""
        return self._lock

    def __enter__(self) -> bool:
        return bool(self._lock.acquire())

    def __exit__(self, *exc_info: object) -> None:
        self._lock.release()

    def has_waiting(self) -> bool:
        """Whether any thread is waiting on this condition."""
        return self._nwaiters > 0

    def wait(self, timeout: float | None = None) -> None:
        """Wait for a notification or until ``timeout`` seconds passed."""
        _check_owned(self._lock)
        if self._single is None:
            self._single = SingleNotifyPipeCondition(self._lock)
        single = self._single
        self._nwaiters += 1
        try:
            single.wait(timeout)
        finally:
            self._nwaiters -= 1

    def notify_all(self) -> None:
        """Wake every thread waiting now; later waits wait for the next one."""
        _check_owned(self._lock)
        if self._single is not None:
            self._single.notify_all()
            self._single = None

    notifyAll = notify_all  # Ganeti's spelling
