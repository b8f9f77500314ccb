"""Tests for ganeti.locking.LockSet."""

from __future__ import annotations

import threading

import pytest
from lockhelpers import wait_queued, wait_until

from ganeti import errors, locking

pytestmark = pytest.mark.timeout(60)

MEMBERS = ["one", "two", "three"]


class SetHolder:
    """A thread acquiring names of a set, then releasing them when told."""

    def __init__(self, runner, lockset, names, name, shared=0, timeout=None):
        self.lockset = lockset
        self.done = threading.Event()
        self.release_now = threading.Event()
        self.result = None
        self.error = None
        self.thread = runner.start(self._run, names, shared, timeout, name=name)

    def _run(self, names, shared, timeout):
        try:
            self.result = self.lockset.acquire(names, timeout=timeout, shared=shared)
        except errors.LockError as err:
            self.error = err
        finally:
            self.done.set()
        if self.result is not None:
            assert self.release_now.wait(30)
            self.lockset.release()

    def wait(self):
        assert self.done.wait(10)
        return self.result

    def release(self):
        self.release_now.set()
        self.thread.join(10)
        assert not self.thread.is_alive()


def _lock(lockset, member):
    """The SharedLock behind ``member`` (for watching its queue)."""
    return lockset._locks[member]


def test_acquire_names_and_release():
    ls = locking.LockSet(MEMBERS, "test")
    assert ls.names() == frozenset(MEMBERS)
    assert ls.acquire(["two", "one"]) == {"one", "two"}
    assert ls.list_owned() == {"one", "two"}
    assert ls.is_owned() and not ls.owning_all()
    assert ls.check_owned(["one"], shared=0) and not ls.check_owned("one", shared=1)
    ls.release(["one"])
    assert ls.list_owned() == {"two"}
    ls.release()
    assert ls.list_owned() == set() and not ls.is_owned()
    assert ls.acquire("three", shared=1) == {"three"}
    assert ls.check_owned("three", shared=1)
    ls.release()


def test_members_are_acquired_in_sorted_order(monkeypatch):
    ls = locking.LockSet(["c", "a", "b"], "test")
    order = []
    real = locking.SharedLock.acquire

    def spy(self, *args, **kwargs):
        order.append(self.name)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(locking.SharedLock, "acquire", spy)
    ls.acquire(["c", "b", "a"])
    ls.release()
    assert order == ["test/a", "test/b", "test/c"]


def test_unknown_names_raise_and_nothing_is_held():
    ls = locking.LockSet(MEMBERS, "test")
    with pytest.raises(errors.LockError, match="four.*five|five.*four"):
        ls.acquire(["one", "four", "five"])
    assert not ls.is_owned()


def test_bad_usage_raises():
    ls = locking.LockSet(MEMBERS, "test")
    with pytest.raises(errors.ProgrammerError):
        ls.release()
    with pytest.raises(errors.ProgrammerError):
        ls.downgrade()
    with pytest.raises(errors.ProgrammerError):
        ls.acquire("one", timeout=-1)
    ls.acquire("one")
    with pytest.raises(errors.ProgrammerError, match="already holds"):
        ls.acquire("two")
    with pytest.raises(errors.LockError):
        ls.release("two")
    with pytest.raises(errors.ProgrammerError):
        ls.add("four")            # only part of the set is held
    with pytest.raises(errors.ProgrammerError):
        ls.remove("two")          # not held, while holding others
    ls.release()
    with pytest.raises(errors.ProgrammerError):
        ls.acquire([1, 2])  # type: ignore[list-item]


def test_timeout_is_all_or_nothing(runner):
    ls = locking.LockSet(MEMBERS, "test")
    other = SetHolder(runner, ls, ["two"], "other")
    assert other.wait() == {"two"}
    # "one" and "three" are free, "two" is not: we must end up with nothing
    assert ls.acquire(["one", "two", "three"], timeout=0.05) is None
    assert not ls.is_owned() and ls.list_owned() == set()
    probe = SetHolder(runner, ls, ["one", "three"], "probe", timeout=0)
    assert probe.wait() == {"one", "three"}
    probe.release()
    other.release()


def test_all_set_takes_every_member_and_blocks_additions(runner):
    ls = locking.LockSet(MEMBERS, "test")
    assert ls.acquire(locking.ALL_SET, shared=1) == set(MEMBERS)
    assert ls.owning_all()
    added = threading.Event()

    def add():
        ls.add("four")
        added.set()

    runner.start(add, name="adder")
    wait_queued(ls._set_lock, 1)
    assert not added.is_set() and "four" not in ls.names()
    with pytest.raises(errors.ProgrammerError):
        ls.add("five")            # the set is held shared by us
    ls.release()
    assert added.wait(10)
    assert ls.names() == frozenset(MEMBERS + ["four"])


def test_all_set_blocks_removals(runner):
    ls = locking.LockSet(MEMBERS, "test")
    ls.acquire(locking.ALL_SET)
    removed = []
    runner.start(lambda: removed.append(ls.remove("two")), name="remover")
    wait_queued(_lock(ls, "two"), 1)
    assert removed == [] and "two" in ls.names()
    ls.release()
    runner.join_all()
    assert removed == [["two"]]
    assert ls.names() == frozenset(["one", "three"])


def test_exclusive_all_set_owner_can_add_and_remove():
    ls = locking.LockSet(MEMBERS, "test")
    ls.acquire(locking.ALL_SET)
    assert ls.add(["four", "five"], acquired=1)
    assert ls.list_owned() == set(MEMBERS) | {"four", "five"}
    assert ls.remove(["one", "four"]) == ["four", "one"]
    assert ls.list_owned() == {"two", "three", "five"}
    ls.release()
    assert ls.names() == frozenset(["two", "three", "five"])


def test_add_rejects_duplicates():
    ls = locking.LockSet(MEMBERS, "test")
    with pytest.raises(errors.LockError, match="one"):
        ls.add(["one", "six"])
    with pytest.raises(errors.LockError, match="six"):
        ls.add(["six", "six"])
    assert ls.names() == frozenset(MEMBERS)
    assert ls.add("six", acquired=1, shared=1)
    assert ls.check_owned("six", shared=1)
    ls.release()


def test_remove_unknown_names_raise():
    ls = locking.LockSet(MEMBERS, "test")
    with pytest.raises(errors.LockError, match="nine"):
        ls.remove(["one", "nine"])
    assert ls.names() == frozenset(MEMBERS)


def test_remove_fails_waiters_and_acquires(runner):
    ls = locking.LockSet(MEMBERS, "test")
    ls.acquire("two")
    waiter = SetHolder(runner, ls, ["one", "two"], "waiter")
    wait_queued(_lock(ls, "two"), 1)
    assert ls.remove("two") == ["two"]
    assert not ls.is_owned()
    waiter.wait()
    assert isinstance(waiter.error, errors.LockError) and "two" in str(waiter.error)
    # The waiter held "one" while waiting for "two": it gave it back
    assert ls.acquire("one", timeout=0) == {"one"}
    ls.release()
    with pytest.raises(errors.LockError, match="two"):
        ls.acquire("two")


def test_all_set_skips_members_removed_while_waiting(runner):
    ls = locking.LockSet(MEMBERS, "test")
    ls.acquire("two")
    everything = SetHolder(runner, ls, locking.ALL_SET, "everything")
    wait_queued(_lock(ls, "two"), 1)
    ls.remove("two")
    assert everything.wait() == {"one", "three"}
    everything.release()


def test_partial_release_gives_up_the_whole_set(runner):
    ls = locking.LockSet(MEMBERS, "test")
    ls.acquire(locking.ALL_SET)
    ls.release("one")
    assert not ls.owning_all() and ls.list_owned() == {"two", "three"}
    added = threading.Event()
    runner.start(lambda: (ls.add("four"), added.set()), name="adder")
    assert added.wait(10)
    ls.release()


def test_downgrade(runner):
    ls = locking.LockSet(MEMBERS, "test")
    ls.acquire(locking.ALL_SET)
    ls.downgrade(["one"])
    assert ls.check_owned("one", shared=1) and ls.check_owned("two", shared=0)
    assert ls._set_lock.is_owned(shared=0)
    ls.downgrade()
    assert ls.check_owned(MEMBERS, shared=1) and ls._set_lock.is_owned(shared=1)
    reader = SetHolder(runner, ls, MEMBERS, "reader", shared=1, timeout=0)
    assert reader.wait() == set(MEMBERS)
    reader.release()
    with pytest.raises(errors.ProgrammerError):
        ls.downgrade("nine")
    ls.release()


def test_all_set_timeout_releases_the_set_lock(runner):
    ls = locking.LockSet(MEMBERS, "test")
    other = SetHolder(runner, ls, ["three"], "other")
    other.wait()
    assert ls.acquire(locking.ALL_SET, timeout=0.05) is None
    assert not ls.is_owned() and not ls._set_lock.is_owned()
    wait_until(lambda: not ls._set_lock.has_pending())
    other.release()


def test_lock_names_in_queries():
    monitor = locking.LockMonitor()
    ls = locking.LockSet(["b", "a"], "instance", monitor=monitor)
    ls.acquire("a", shared=1)
    assert monitor.QueryLocks(["name", "mode"]) == [
        ["instance/[lockset]", None], ["instance/a", locking.MODE_SHARED],
        ["instance/b", None]]
    ls.release()
    ls.remove("a")
    assert [row[0] for row in monitor.QueryLocks(["name"])] == [
        "instance/[lockset]", "instance/b"]
