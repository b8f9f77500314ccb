"""Tests for ganeti.locking.SharedLock."""

from __future__ import annotations

import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lockhelpers import ThreadRunner, pending_owners, wait_queued, wait_until, waiting_names

from ganeti import constants, errors, locking

pytestmark = pytest.mark.timeout(60)

EXC = locking.MODE_EXCLUSIVE
SHR = locking.MODE_SHARED


def _in_thread(runner, fn, name="other"):
    """Run ``fn`` in a thread, wait for it, and return its result."""
    box = []
    runner.start(lambda: box.append(fn()), name=name).join(10)
    assert box, "thread did not finish"
    return box[0]


class Holder:
    """A thread that acquires a lock, then releases it when told to."""

    def __init__(self, runner, lock, name, shared=0, priority=None, timeout=None,
                 log=None, hold=True):
        self.lock = lock
        self.name = name
        self.done = threading.Event()
        self.release_now = threading.Event()
        self.result = None
        self.error = None
        self.log = log
        if not hold:
            self.release_now.set()
        self.thread = runner.start(self._run, shared, priority, timeout, name=name)

    def _run(self, shared, priority, timeout):
        try:
            self.result = self.lock.acquire(shared=shared, timeout=timeout,
                                            priority=priority)
        except errors.LockError as err:
            self.error = err
            self.done.set()
            return
        if self.result and self.log is not None:
            self.log.append(self.name)
        self.done.set()
        if self.result:
            assert self.release_now.wait(30)
            self.lock.release()

    def wait(self):
        assert self.done.wait(10), f"{self.name} did not get through acquire"
        return self.result

    def release(self):
        self.release_now.set()
        self.thread.join(10)
        assert not self.thread.is_alive()


def test_exclusive_acquire_and_release():
    lock = locking.SharedLock("lock1")
    assert lock.acquire()
    assert lock.is_owned() and lock.is_owned(shared=0) and not lock.is_owned(shared=1)
    lock.release()
    assert not lock.is_owned()


def test_shared_holders_coexist(runner):
    lock = locking.SharedLock("lock1")
    assert lock.acquire(shared=1)
    assert lock.is_owned(shared=1) and not lock.is_owned(shared=0)
    other = Holder(runner, lock, "reader", shared=1, timeout=0)
    assert other.wait()
    info = lock.GetLockInfo(frozenset(["mode", "owner"]))
    assert info == [("lock1", SHR, ["MainThread", "reader"], None)]
    other.release()
    lock.release()


def test_exclusive_holder_is_alone(runner):
    lock = locking.SharedLock("lock1")
    lock.acquire()
    assert not _in_thread(runner, lambda: lock.acquire(shared=1, timeout=0))
    assert not _in_thread(runner, lambda: lock.acquire(shared=0, timeout=0.05))
    lock.release()
    assert _in_thread(runner, lambda: lock.acquire(timeout=0) and (lock.release() or True))


def test_timeout_leaves_nothing_held_or_queued(runner):
    lock = locking.SharedLock("lock1")
    lock.acquire()

    def attempt():
        got = lock.acquire(timeout=0.05)
        return got, lock.is_owned()

    assert _in_thread(runner, attempt) == (False, False)
    assert waiting_names(lock) == []
    assert not lock.has_pending()
    lock.release()


def test_bad_usage_raises():
    lock = locking.SharedLock("lock1")
    with pytest.raises(errors.ProgrammerError):
        lock.release()
    with pytest.raises(errors.LockError):
        lock.release()
    with pytest.raises(errors.ProgrammerError):
        lock.downgrade()
    lock.acquire(shared=1)
    with pytest.raises(errors.ProgrammerError, match="already held"):
        lock.acquire(shared=1)
    with pytest.raises(errors.ProgrammerError):
        lock.acquire(shared=0, timeout=0)
    with pytest.raises(errors.ProgrammerError, match="shared mode"):
        lock.delete()
    lock.release()
    for kwargs in ({"timeout": -1}, {"timeout": "1"}, {"priority": 20},
                   {"priority": -21}, {"priority": 1.5}, {"shared": 2}):
        with pytest.raises(errors.ProgrammerError):
            lock.acquire(**kwargs)
    with pytest.raises(errors.ProgrammerError):
        lock.delete(timeout=-0.5)
    with pytest.raises(errors.ProgrammerError):
        lock.is_owned(shared=3)
    assert not lock.is_owned()


def test_fifo_within_one_priority(runner):
    lock = locking.SharedLock("lock1")
    lock.acquire()
    order = []
    names = [f"w{num}" for num in range(5)]
    holders = []
    for num, name in enumerate(names):
        holders.append(Holder(runner, lock, name, log=order, hold=False))
        wait_queued(lock, num + 1)
    assert waiting_names(lock) == names
    lock.release()
    runner.join_all()
    assert order == names


@settings(max_examples=15, deadline=None)
@given(st.lists(st.tuples(st.integers(constants.OP_PRIO_HIGHEST, constants.OP_PRIO_LOWEST),
                          st.booleans()),
                min_size=1, max_size=6))
def test_priorities_order_the_waiters(requests):
    # Exclusive waiters are served by priority, then arrival. Shared ones of
    # one priority gather on one condition, served when it reaches the top.
    runner = ThreadRunner()
    lock = locking.SharedLock("lock1")
    lock.acquire()
    order = []
    holders = []
    for num, (prio, shared) in enumerate(requests):
        holders.append(Holder(runner, lock, f"w{num}", shared=int(shared),
                              priority=prio, log=order, hold=False))
        wait_queued(lock, num + 1)
    lock.release()
    runner.join_all()
    assert all(holder.result for holder in holders)
    # Expected: each priority's queue, in arrival order, where a shared
    # request joins the first shared entry of its priority
    expected: list[str] = []
    for prio in sorted({prio for prio, _ in requests}):
        entries: list[list[str]] = []
        shared_entry = None
        for num, (rprio, shared) in enumerate(requests):
            if rprio != prio:
                continue
            if shared and shared_entry is not None:
                shared_entry.append(f"w{num}")
                continue
            entries.append([f"w{num}"])
            if shared:
                shared_entry = entries[-1]
        for entry in entries:
            expected.extend(entry)
    # Shared waiters of one entry acquire in any order among themselves
    assert _grouped(order, requests) == _grouped(expected, requests)


def _grouped(order, requests):
    """Collapse runs of shared acquires of one priority into sets."""
    result = []
    for name in order:
        prio, shared = requests[int(name[1:])]
        if shared and result and isinstance(result[-1], tuple) and result[-1][0] == prio:
            result[-1][1].add(name)
        elif shared:
            result.append((prio, {name}))
        else:
            result.append(name)
    return result


def test_shared_acquires_skip_queued_exclusive_ones(runner):
    lock = locking.SharedLock("lock1")
    lock.acquire()
    order = []
    reader1 = Holder(runner, lock, "reader1", shared=1, log=order)
    wait_queued(lock, 1)
    writer = Holder(runner, lock, "writer", log=order)
    wait_queued(lock, 2)
    reader2 = Holder(runner, lock, "reader2", shared=1, log=order)
    wait_queued(lock, 3)
    # reader2 joined reader1's condition, ahead of the writer
    assert pending_owners(lock) == [(SHR, ["reader1", "reader2"]), (EXC, ["writer"])]
    lock.release()
    assert reader1.wait() and reader2.wait()
    assert not writer.done.is_set()
    assert sorted(order) == ["reader1", "reader2"]
    reader1.release()
    reader2.release()
    assert writer.wait()
    writer.release()
    assert order[2] == "writer"


def test_shared_acquires_after_notification_queue_behind_exclusive(runner):
    # Once the active shared condition is notified the conditions swap:
    # later shared acquires wait behind the exclusive acquire queued meanwhile
    lock = locking.SharedLock("lock1")
    lock.acquire()
    order = []
    reader1 = Holder(runner, lock, "reader1", shared=1, log=order)
    wait_queued(lock, 1)
    writer = Holder(runner, lock, "writer", log=order)
    wait_queued(lock, 2)
    lock.release()
    assert reader1.wait()
    # Only shared holders now, but the writer is queued: no overtaking
    late = Holder(runner, lock, "reader3", shared=1, timeout=0.05)
    assert late.wait() is False
    reader3 = Holder(runner, lock, "reader3", shared=1, log=order)
    wait_until(lambda: pending_owners(lock) == [(EXC, ["writer"]), (SHR, ["reader3"])])
    reader1.release()
    assert writer.wait()
    assert not reader3.done.is_set()
    writer.release()
    assert reader3.wait()
    reader3.release()
    assert order == ["reader1", "writer", "reader3"]


def test_timed_out_head_of_queue_lets_the_next_in(runner):
    lock = locking.SharedLock("lock1")
    lock.acquire(shared=1)
    writer = Holder(runner, lock, "writer", timeout=0.2)
    wait_queued(lock, 1)
    reader = Holder(runner, lock, "reader", shared=1)
    wait_queued(lock, 2)
    # Nobody releases: the writer's timeout alone must let the reader in
    assert writer.wait() is False
    assert reader.wait() is True
    reader.release()
    lock.release()
    assert not lock.has_pending()


def test_downgrade_lets_shared_waiters_in(runner):
    lock = locking.SharedLock("lock1")
    lock.acquire()
    reader = Holder(runner, lock, "reader", shared=1)
    wait_queued(lock, 1)
    assert lock.downgrade()
    assert lock.is_owned(shared=1)
    assert reader.wait()
    assert lock.downgrade()  # already shared: nothing to do
    reader.release()
    lock.release()


def test_delete_wakes_every_waiter_with_an_error(runner):
    lock = locking.SharedLock("lock1")
    lock.acquire()
    waiters = [Holder(runner, lock, f"w{num}", shared=num % 2) for num in range(4)]
    wait_queued(lock, 4)
    assert lock.delete()
    assert lock.deleted and not lock.is_owned()
    for waiter in waiters:
        waiter.wait()
        assert isinstance(waiter.error, errors.LockError)
    with pytest.raises(errors.LockError):
        lock.acquire()
    with pytest.raises(errors.LockError):
        lock.delete()
    assert lock.GetLockInfo(frozenset(["mode", "owner", "pending"])) == [
        ("lock1", locking.MODE_DELETED, None, [])]


def test_delete_acquires_first_and_can_time_out(runner):
    lock = locking.SharedLock("lock1")
    holder = Holder(runner, lock, "holder", shared=1)
    assert holder.wait()
    assert lock.delete(timeout=0.05) is False
    assert not lock.deleted and not lock.is_owned()
    holder.release()
    assert lock.delete(timeout=5)
    assert lock.deleted


def test_lock_info_reports_owners_and_queue(runner):
    lock = locking.SharedLock("inst1")
    locking.set_owner_name("job 17")
    try:
        lock.acquire()
    finally:
        locking.set_owner_name(None)
    writer = Holder(runner, lock, "Job18", priority=constants.OP_PRIO_HIGH)
    wait_queued(lock, 1)
    reader = Holder(runner, lock, "Job19", shared=1)
    wait_queued(lock, 2)
    info = lock.GetLockInfo(frozenset(locking.LOCK_QUERY_FIELDS))
    assert info == [("inst1", EXC, ["job 17"], [(EXC, ["Job18"]), (SHR, ["Job19"])])]
    assert lock.GetLockInfo(frozenset(["name"])) == [("inst1", None, None, None)]
    lock.release()
    assert writer.wait()
    writer.release()
    assert reader.wait()
    reader.release()
    assert lock.GetLockInfo(frozenset(locking.LOCK_QUERY_FIELDS)) == [
        ("inst1", None, None, [])]


def test_owner_name_must_be_a_string():
    with pytest.raises(errors.ProgrammerError):
        locking.set_owner_name(17)  # type: ignore[arg-type]
