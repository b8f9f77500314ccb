"""Tests for the lock-attempt timeout strategy."""

from __future__ import annotations

import threading

import pytest
from lockhelpers import wait_until, waiting_names

from ganeti import constants, errors, locking

pytestmark = pytest.mark.timeout(60)


def test_default_timeouts_grow_and_are_few():
    timeouts = locking.calculate_lock_attempt_timeouts()
    assert timeouts[0] == constants.LOCK_ATTEMPTS_MINWAIT
    assert timeouts[1] == pytest.approx((constants.LOCK_ATTEMPTS_MINWAIT * 1.05) ** 1.25)
    assert timeouts == sorted(timeouts)
    assert all(constants.LOCK_ATTEMPTS_MINWAIT <= t <= constants.LOCK_ATTEMPTS_MAXWAIT
               for t in timeouts)
    assert sum(timeouts) >= constants.LOCK_ATTEMPTS_TIMEOUT_MAX
    assert sum(timeouts[:-1]) < constants.LOCK_ATTEMPTS_TIMEOUT_MAX
    assert 3 <= len(timeouts) <= 10   # "a few" attempts, then block


def test_timeouts_are_capped():
    timeouts = locking.calculate_lock_attempt_timeouts(min_wait=1.0, max_wait=3.0, total=60)
    assert max(timeouts) == 3.0 and timeouts[-1] == 3.0
    # Below one second the curve would shrink: the minimum holds it
    assert locking.calculate_lock_attempt_timeouts(0.1, 1.0, 0.35) == [0.1] * 4


@pytest.mark.parametrize("args", [(0, 1, 1), (2, 1, 1), (1, 2, -1)])
def test_bad_parameters(args):
    with pytest.raises(errors.ProgrammerError):
        locking.calculate_lock_attempt_timeouts(*args)


def test_jitter_and_blocking_after_the_last_attempt():
    low = locking.LockAttemptTimeoutStrategy(timeouts=[2.0, 4.0], random_fn=lambda: 0.0)
    assert low.next_attempt() == pytest.approx(1.9)
    assert low.NextAttempt() == pytest.approx(3.8)
    assert low.next_attempt() is None
    assert low.next_attempt() is None
    high = locking.LockAttemptTimeoutStrategy(timeouts=[2.0], random_fn=lambda: 1.0)
    assert high.next_attempt() == pytest.approx(2.1)
    default = locking.LockAttemptTimeoutStrategy()
    values = [default.next_attempt() for _ in range(20)]
    expected = locking.calculate_lock_attempt_timeouts()
    for value, base in zip(values, expected):
        assert base * 0.95 <= value <= base * 1.05
    assert values[len(expected):] == [None] * (20 - len(expected))


def test_acquire_with_strategy_releases_between_attempts(runner):
    glm = locking.GanetiLockManager(["node1"], [], ["inst1", "inst2"], [])
    attempts = []
    strategy = locking.LockAttemptTimeoutStrategy(timeouts=[0.05, 0.05],
                                                  random_fn=lambda: 0.5)
    orig = strategy.next_attempt

    def counting():
        timeout = orig()
        attempts.append(timeout)
        return timeout

    strategy.next_attempt = counting  # type: ignore[method-assign]
    # Another job holds inst2 until the blocking attempt has started
    holding = threading.Event()
    release = threading.Event()

    def other():
        glm.acquire(locking.LEVEL_CLUSTER, locking.BGL, shared=1)
        glm.acquire(locking.LEVEL_INSTANCE, ["inst2"])
        holding.set()
        assert release.wait(30)
        glm.release(locking.LEVEL_INSTANCE)
        glm.release(locking.LEVEL_CLUSTER)

    runner.start(other, name="other")
    assert holding.wait(10)
    done = threading.Event()
    result = {}

    def job():
        result.update(locking.acquire_with_strategy(glm, [
            (locking.LEVEL_INSTANCE, locking.ALL_SET, 0),
            (locking.LEVEL_CLUSTER, [locking.BGL], 1),
            (locking.LEVEL_NODE, ["node1"], 1),
        ], strategy=strategy))
        done.set()

    runner.start(job, name="job")
    # Two timed attempts fail; the third blocks on inst2
    inst2 = glm._keyring[locking.LEVEL_INSTANCE]._locks["inst2"]
    wait_until(lambda: len(attempts) == 3 and waiting_names(inst2) == ["job"])
    assert attempts[2] is None and not done.is_set()
    release.set()
    assert done.wait(10)
    runner.join_all()
    assert result == {locking.LEVEL_CLUSTER: {"BGL"},
                      locking.LEVEL_INSTANCE: {"inst1", "inst2"},
                      locking.LEVEL_NODE: {"node1"}}


def test_acquire_with_strategy_refuses_two_requests_per_level():
    glm = locking.GanetiLockManager()
    with pytest.raises(errors.ProgrammerError):
        locking.acquire_with_strategy(glm, [(0, None, 0), (0, None, 1)])
