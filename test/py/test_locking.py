"""The scenarios of seed 003, "Locking improvements", run against ganeti.locking.

Unit tests of each class live in test/py/locking/; this file follows the
design text: the inst1..inst4 demonstration, non-blocking acquires, the
SharedLock redesign (one queue, shared acquires skipping exclusive ones,
release notifying the oldest condition, delete) and the pipe condition.
"""

from __future__ import annotations

import threading
import time
import traceback

import pytest

from ganeti import errors, locking

pytestmark = pytest.mark.timeout(60)

INSTANCES = ["inst1", "inst2", "inst3", "inst4"]


class Threads:
    """Threads that are always joined; their exceptions fail the test."""

    def __init__(self) -> None:
        self.threads: list[threading.Thread] = []
        self.failures: list[str] = []

    def start(self, fn, name):
        def body():
            try:
                fn()
            except BaseException:
                self.failures.append(traceback.format_exc())

        thread = threading.Thread(target=body, name=name, daemon=True)
        self.threads.append(thread)
        thread.start()
        return thread

    def join_all(self, timeout=30.0):
        end = time.monotonic() + timeout
        for thread in self.threads:
            thread.join(max(0.0, end - time.monotonic()))
        assert not [t.name for t in self.threads if t.is_alive()], "deadlock?"
        assert not self.failures, "\n".join(self.failures)


@pytest.fixture
def threads():
    runner = Threads()
    yield runner
    runner.join_all()


def _until(predicate, timeout=10.0):
    pause = threading.Event()
    end = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < end, "condition not reached in time"
        pause.wait(0.001)


def _waiting(glm, level, name):
    """Owner names queued on one lock of ``glm``, from a lock query."""
    lock_name = f"{locking.LEVEL_NAMES[level]}/{name}"
    for row_name, pending in glm.QueryLocks(["name", "pending"]):
        if row_name == lock_name:
            return [owner for _, owners in pending for owner in owners]
    raise AssertionError(f"no lock {lock_name}")


def _job(glm, name, names, release, got=None, strategy=None, timeout=None, result=None):
    """An operation: BGL shared, then instance locks, held until ``release``."""
    def run():
        locking.set_owner_name(name)
        if strategy is not None:
            acquired = locking.acquire_with_strategy(glm, [
                (locking.LEVEL_CLUSTER, [locking.BGL], 1),
                (locking.LEVEL_INSTANCE, names, 0)], strategy=strategy)
            owned = acquired[locking.LEVEL_INSTANCE]
        else:
            glm.acquire(locking.LEVEL_CLUSTER, locking.BGL, shared=1)
            owned = glm.acquire(locking.LEVEL_INSTANCE, names, timeout=timeout)
        if result is not None:
            result.append(owned)
        if owned is not None:
            if got is not None:
                got.set()
            assert release.wait(30)
            glm.release(locking.LEVEL_INSTANCE)
        glm.release(locking.LEVEL_CLUSTER)
    return run


def test_inst1_to_inst4_blocking_acquire_holds_up_operation_c(threads):
    # The shortcoming: B waits for inst4 while sitting on inst1..inst3, so C,
    # which only wants inst1, waits for A and then B.
    glm = locking.GanetiLockManager(instances=INSTANCES)
    a_got, a_release, b_release, c_release = (threading.Event() for _ in range(4))
    c_result: list = []
    threads.start(_job(glm, "A", ["inst4"], a_release, got=a_got), "A")
    assert a_got.wait(10)
    threads.start(_job(glm, "B", INSTANCES, b_release), "B")
    _until(lambda: _waiting(glm, locking.LEVEL_INSTANCE, "inst4") == ["B"])
    c = threads.start(_job(glm, "C", ["inst1"], c_release, timeout=0.2, result=c_result), "C")
    c.join(10)
    assert c_result == [None]  # C gave up: inst1 was stuck behind B
    a_release.set()
    b_release.set()


def test_inst1_to_inst4_lock_attempts_let_operation_c_through(threads):
    # With the lock-attempt strategy B gives inst1..inst3 back when its
    # attempt times out; C gets inst1 although A still holds inst4.
    glm = locking.GanetiLockManager(instances=INSTANCES)
    a_got, a_release, b_got, b_release, c_got, c_release = (
        threading.Event() for _ in range(6))
    threads.start(_job(glm, "A", ["inst4"], a_release, got=a_got), "A")
    assert a_got.wait(10)
    strategy = locking.LockAttemptTimeoutStrategy(timeouts=[0.05] * 1000)
    b_result: list = []
    threads.start(_job(glm, "B", INSTANCES, b_release, got=b_got, strategy=strategy,
                       result=b_result), "B")
    _until(lambda: "B" in _waiting(glm, locking.LEVEL_INSTANCE, "inst4"))
    threads.start(_job(glm, "C", ["inst1"], c_release, got=c_got), "C")
    assert c_got.wait(10), "C should not wait for A and B"
    owners = {name: owner for name, owner in glm.QueryLocks(["name", "owner"])}
    assert owners["instance/inst4"] == ["A"] and owners["instance/inst1"] == ["C"]
    assert not b_got.is_set()
    # C finishes; A finishes; then B eventually gets everything
    c_release.set()
    a_release.set()
    assert b_got.wait(10)
    assert b_result == [set(INSTANCES)]
    b_release.set()


def test_non_blocking_acquires_time_out_holding_nothing(threads):
    lock = locking.SharedLock("lock")
    lockset = locking.LockSet(INSTANCES, "instance")
    held = threading.Event()
    release = threading.Event()

    def holder():
        lock.acquire()
        lockset.acquire(["inst3"])
        held.set()
        assert release.wait(30)
        lockset.release()
        lock.release()

    threads.start(holder, "holder")
    assert held.wait(10)
    start = time.monotonic()
    assert lock.acquire(timeout=0.1) is False
    assert lockset.acquire(INSTANCES, timeout=0.1) is None
    assert time.monotonic() - start < 5
    assert not lock.is_owned() and not lockset.is_owned()
    release.set()


def test_shared_lock_queue_and_release_order(threads):
    # One queue: at most 2 shared conditions plus one per exclusive waiter;
    # release notifies the oldest; shared acquires join the active shared
    # condition and so skip exclusive acquires queued after it.
    lock = locking.SharedLock("lock")
    lock.acquire()
    order: list[str] = []
    proceed = threading.Event()

    def acquirer(name, shared):
        def run():
            assert lock.acquire(shared=shared)
            order.append(name)
            assert proceed.wait(30)
            lock.release()
        return run

    plan = [("S1", 1), ("X1", 0), ("S2", 1), ("X2", 0), ("S3", 1)]
    for num, (name, shared) in enumerate(plan):
        threads.start(acquirer(name, shared), name)
        _until(lambda count=num + 1: sum(len(o) for _, o in _pending(lock)) == count)
        exclusive = sum(1 for mode, _ in _pending(lock) if mode == locking.MODE_EXCLUSIVE)
        assert len(_pending(lock)) <= 2 + exclusive
    assert _pending(lock) == [(locking.MODE_SHARED, ["S1", "S2", "S3"]),
                              (locking.MODE_EXCLUSIVE, ["X1"]),
                              (locking.MODE_EXCLUSIVE, ["X2"])]
    proceed.set()
    lock.release()
    _until(lambda: len(order) == 5)
    assert sorted(order[:3]) == ["S1", "S2", "S3"]
    assert order[3:] == ["X1", "X2"]


def _pending(lock):
    return lock.GetLockInfo(frozenset([locking.LQ_PENDING]))[0][3]


def test_delete_notifies_all_pending_acquires(threads):
    lock = locking.SharedLock("lock")
    lock.acquire()
    outcomes: list[str] = []

    def waiter(shared):
        def run():
            try:
                lock.acquire(shared=shared)
            except errors.LockError:
                outcomes.append("error")
        return run

    for num in range(4):
        threads.start(waiter(num % 2), f"w{num}")
    _until(lambda: sum(len(o) for _, o in _pending(lock)) == 4)
    assert lock.delete()
    threads.join_all()
    assert outcomes == ["error"] * 4


def test_condition_waits_in_poll_not_busy_loops():
    cond = locking.PipeCondition()
    with cond:
        wall, cpu = time.monotonic(), time.process_time()
        cond.wait(0.2)
        assert time.monotonic() - wall >= 0.19
        assert time.process_time() - cpu < 0.05
