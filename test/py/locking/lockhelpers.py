"""Helpers for the locking tests: threads that are always joined, bounded waits."""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

from ganeti import locking

#: Generous bound for anything that should happen "soon"
SOON = 10.0


class ThreadRunner:
    """Starts threads, collects their exceptions, and joins them all."""

    def __init__(self) -> None:
        self.threads: list[threading.Thread] = []
        self.failures: list[str] = []

    def start(self, fn: Callable[..., Any], *args: Any, name: str | None = None
              ) -> threading.Thread:
        def body() -> None:
            try:
                fn(*args)
            except BaseException:  # reported by join_all in the test's thread
                self.failures.append(traceback.format_exc())

        thread = threading.Thread(target=body, name=name, daemon=True)
        self.threads.append(thread)
        thread.start()
        return thread

    def join_all(self, timeout: float = 60.0) -> None:
        end = time.monotonic() + timeout
        for thread in self.threads:
            thread.join(max(0.0, end - time.monotonic()))
        alive = [t.name for t in self.threads if t.is_alive()]
        assert not alive, f"threads still running (deadlock?): {alive}"
        assert not self.failures, "\n".join(self.failures)


def wait_until(predicate: Callable[[], bool], timeout: float = SOON) -> None:
    """Wait for ``predicate`` to hold, failing the test after ``timeout``."""
    pause = threading.Event()
    end = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < end, "condition not reached in time"
        pause.wait(0.001)


def pending_owners(lock: locking.SharedLock) -> list[tuple[str, list[str]]]:
    """The lock's queue as reported to lock queries."""
    ((_, _, _, pending),) = lock.GetLockInfo(frozenset([locking.LQ_PENDING]))
    return pending


def waiting_names(lock: locking.SharedLock) -> list[str]:
    """Owner names of everybody queued on ``lock``."""
    return [name for _, names in pending_owners(lock) for name in names]


def wait_queued(lock: locking.SharedLock, count: int) -> None:
    """Wait until ``count`` acquires are queued on ``lock``."""
    wait_until(lambda: len(waiting_names(lock)) >= count)
