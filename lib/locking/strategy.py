"""The lock-attempt strategy of seed 003, "Retry acquiring locks".

A job that needs many locks should not sit on the ones it already has
while it waits for the rest: the operations queued behind it would wait
too, although only the last lock is contended (the inst1..inst4 example of
the design). So a job tries with a timeout; when the time runs out it
releases everything it took in that attempt and tries again with a longer
timeout; after a few attempts it gives up being polite and blocks.

The timeouts follow Ganeti's curve: the first is ``min_wait``; each next
one is ``(previous * 1.05) ** 1.25``, kept between ``min_wait`` and
``max_wait``; attempts continue until their timeouts add up to ``total``.
Each timeout gets up to +/-5% of random variation so that two jobs
fighting for the same locks drift out of step. The default ``total`` is
``constants.LOCK_ATTEMPTS_TIMEOUT_MAX``; Ganeti itself uses a much larger
budget and raises the job's priority between rounds, which is the job
queue's business, not this module's.

How mcpu uses it: for each opcode, make one strategy; run the opcode's
lock acquisitions with ``strategy.next_attempt()`` as the timeout of the
attempt; on a timeout release all locks of the attempt and start again.
:func:`acquire_with_strategy` does exactly that for a list of
``(level, names, shared)`` requests.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

from ganeti import constants
from ganeti.locking.common import Deadline, LockUsageError

if TYPE_CHECKING:
    from ganeti.locking.lockset import Names
    from ganeti.locking.manager import GanetiLockManager


def calculate_lock_attempt_timeouts(min_wait: float = constants.LOCK_ATTEMPTS_MINWAIT,
                                    max_wait: float = constants.LOCK_ATTEMPTS_MAXWAIT,
                                    total: float = constants.LOCK_ATTEMPTS_TIMEOUT_MAX,
                                    ) -> list[float]:
    """Return the timeouts of the attempts before blocking (without jitter)."""
    if not 0 < min_wait <= max_wait:
        raise LockUsageError(
            f"Need 0 < min_wait <= max_wait, got {min_wait!r} and {max_wait!r}")
    if total < 0:
        raise LockUsageError(f"Total attempt time must not be negative, got {total!r}")
    timeouts = [float(min_wait)]
    while sum(timeouts) < total:
        grown = (timeouts[-1] * 1.05) ** 1.25
        timeouts.append(min(max(grown, min_wait), max_wait))
    return timeouts


class LockAttemptTimeoutStrategy:
    """Hands out the timeout of each lock attempt; None means "block now"."""

    def __init__(self, min_wait: float = constants.LOCK_ATTEMPTS_MINWAIT,
                 max_wait: float = constants.LOCK_ATTEMPTS_MAXWAIT,
                 total: float = constants.LOCK_ATTEMPTS_TIMEOUT_MAX,
                 timeouts: Iterable[float] | None = None,
                 random_fn: Callable[[], float] = random.random) -> None:
        """Build the strategy; ``timeouts`` replaces the computed curve."""
        if timeouts is None:
            timeouts = calculate_lock_attempt_timeouts(min_wait, max_wait, total)
        self._timeouts = iter(list(timeouts))
        self._random_fn = random_fn
        self.attempt = 0

    def next_attempt(self) -> float | None:
        """Return the timeout for the next attempt, or None to block."""
        self.attempt += 1
        timeout = next(self._timeouts, None)
        if timeout is None:
            return None
        # +/-5%: jobs contending for the same locks should not retry in step
        return timeout * (1.0 + 0.1 * (self._random_fn() - 0.5))

    NextAttempt = next_attempt  # Ganeti's spelling


LockRequest = tuple[int, "Names | None", int]


def acquire_with_strategy(glm: GanetiLockManager, requests: Sequence[LockRequest],
                          priority: int | None = None,
                          strategy: LockAttemptTimeoutStrategy | None = None,
                          ) -> dict[int, set[str]]:
    """Acquire several levels of ``glm`` politely; returns level -> names.

    ``requests`` are ``(level, names, shared)`` tuples (``names`` may be
    ``ALL_SET``), acquired in level order. Each attempt has the strategy's
    timeout for all its levels together; when it runs out, everything the
    attempt acquired is released and the next attempt starts. The last
    attempt blocks, so this always returns with the locks held (or raises,
    holding nothing it acquired).
    """
    if strategy is None:
        strategy = LockAttemptTimeoutStrategy()
    ordered = sorted(requests, key=lambda request: request[0])
    levels = [request[0] for request in ordered]
    if len(set(levels)) != len(levels):
        raise LockUsageError(f"One request per level, got levels {levels!r}")
    while True:
        deadline = Deadline(strategy.next_attempt())
        acquired: dict[int, set[str]] = {}
        try:
            for level, names, shared in ordered:
                result = glm.acquire(level, names, timeout=deadline.remaining(),
                                     shared=shared, priority=priority)
                if result is None:
                    break
                acquired[level] = result
            else:
                return acquired
        except BaseException:
            _release_levels(glm, acquired)
            raise
        _release_levels(glm, acquired)


def _release_levels(glm: GanetiLockManager, acquired: dict[int, set[str]]) -> None:
    """Release what one attempt acquired, latest level first."""
    for level in sorted(acquired, reverse=True):
        glm.release(level)
