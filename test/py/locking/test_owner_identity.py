"""Lock owners are threads, not thread ids.

A thread id (``threading.get_ident()``) is reused by the system once its
thread has ended. A thread that dies holding a lock must not hand that lock
to a later thread that happens to get the same id: the later thread is not
the owner, may not release the lock, and must wait for it like anybody
else.

Most tests force the id collision: ``threading.get_ident`` as the locking
modules see it returns the dead thread's id, everything else of the
threading module is the real one. One test waits for the system to reuse an
id by itself.
"""

from __future__ import annotations

import threading
import types

import pytest
from lockhelpers import wait_queued

from ganeti import locking
from ganeti.locking import sharedlock

pytestmark = pytest.mark.timeout(60)


def _run(fn, name):
    """Run ``fn`` in a new thread and return (result, exception, ident)."""
    box: dict = {}

    def _body():
        box["ident"] = threading.get_ident()
        try:
            box["result"] = fn()
        except BaseException as err:  # reported to the test
            box["error"] = err

    thread = threading.Thread(target=_body, name=name)
    thread.start()
    thread.join(10)
    assert not thread.is_alive(), f"{name} did not finish"
    return box.get("result"), box.get("error"), box["ident"]


def _die_holding(acquire, name="dead-holder"):
    """Run ``acquire`` in a thread that ends without releasing; its ident."""
    result, error, ident = _run(acquire, name)
    assert error is None, error
    assert result
    return ident


@pytest.fixture
def reused_ident(monkeypatch):
    """``reused_ident(ident)``: from now on every other thread looks, to
    the locking code, as if it had thread id ``ident``."""
    def _force(ident):
        fake = types.SimpleNamespace(**{name: getattr(threading, name)
                                        for name in dir(threading)
                                        if not name.startswith("__")})
        fake.get_ident = lambda: ident
        monkeypatch.setattr(sharedlock, "threading", fake)
    return _force


def test_shared_lock_is_not_inherited_by_a_thread_with_the_same_id(reused_ident):
    lock = locking.SharedLock("victim")
    dead = _die_holding(lambda: lock.acquire(shared=0))
    reused_ident(dead)

    def _newcomer():
        owned = lock.is_owned()
        got = lock.acquire(shared=1, timeout=0)
        with pytest.raises(locking.LockUsageError, match="not held"):
            lock.release()
        return owned, got

    result, error, _ = _run(_newcomer, "newcomer")
    assert error is None, repr(error)
    owned, got = result
    assert owned is False
    # Held exclusively by the dead thread: a real acquire times out
    assert got is False
    assert lock.GetLockInfo(frozenset([locking.LQ_MODE, locking.LQ_OWNER])) == \
        [("victim", locking.MODE_EXCLUSIVE, ["dead-holder"], None)]


def test_shared_holder_and_newcomer_with_the_same_id_both_hold(reused_ident):
    lock = locking.SharedLock("shared-victim")
    dead = _die_holding(lambda: lock.acquire(shared=1))
    reused_ident(dead)

    def _newcomer():
        assert not lock.is_owned()
        assert lock.acquire(shared=1, timeout=0)
        try:
            names = lock.GetLockInfo(frozenset([locking.LQ_OWNER]))[0][2]
        finally:
            lock.release()
        # Releasing our own hold leaves the dead thread's
        return names, lock.is_owned()

    result, error, _ = _run(_newcomer, "newcomer")
    assert error is None, repr(error)
    names, still_owned = result
    assert names == ["dead-holder", "newcomer"]
    assert still_owned is False
    info = lock.GetLockInfo(frozenset([locking.LQ_MODE, locking.LQ_OWNER]))
    assert info == [("shared-victim", locking.MODE_SHARED, ["dead-holder"], None)]


def test_lockset_and_manager_do_not_see_the_dead_threads_locks(reused_ident):
    glm = locking.GanetiLockManager(nodes=["node1", "node2"])

    def _take_all():
        assert glm.acquire(locking.LEVEL_CLUSTER, locking.BGL, shared=1)
        return glm.acquire(locking.LEVEL_NODE, locking.ALL_SET, shared=0)

    dead = _die_holding(_take_all)
    reused_ident(dead)

    def _newcomer():
        seen = (glm.is_owned(locking.LEVEL_CLUSTER), glm.is_owned(locking.LEVEL_NODE),
                glm.owning_all(locking.LEVEL_NODE))
        # Shared BGL is compatible with the dead thread's; the nodes are not
        assert glm.acquire(locking.LEVEL_CLUSTER, locking.BGL, shared=1, timeout=0)
        try:
            got = glm.acquire(locking.LEVEL_NODE, locking.ALL_SET, timeout=0)
        finally:
            glm.release(locking.LEVEL_CLUSTER)
        return seen, got

    result, error, _ = _run(_newcomer, "newcomer")
    assert error is None, repr(error)
    seen, got = result
    assert seen == (False, False, False)
    assert got is None
    owners = {row[0]: row[1] for row in glm.QueryLocks(["name", "owner"])}
    assert owners["cluster/BGL"] == ["dead-holder"]
    assert owners["node/node1"] == ["dead-holder"]
    assert owners["node/[lockset]"] == ["dead-holder"]


def test_waiters_with_the_same_id_are_reported_apart(reused_ident, runner):
    lock = locking.SharedLock("pending")
    dead = _die_holding(lambda: lock.acquire(shared=0))
    reused_ident(dead)
    outcomes = []
    for name in ("waiter1", "waiter2"):
        runner.start(lambda: outcomes.append(lock.acquire(shared=1, timeout=2)),
                     name=name)
    wait_queued(lock, 2)
    assert lock.GetLockInfo(frozenset([locking.LQ_OWNER, locking.LQ_PENDING])) == \
        [("pending", None, ["dead-holder"],
          [(locking.MODE_SHARED, ["waiter1", "waiter2"])])]
    runner.join_all()
    assert outcomes == [False, False]
    assert lock.GetLockInfo(frozenset([locking.LQ_PENDING])) == \
        [("pending", None, None, [])]


def test_real_thread_id_reuse():
    """Without any patching: threads are made until one gets the dead
    holder's id (glibc reuses the stack, and so the id, of an ended
    thread), and that one must not be taken for the owner."""
    lock = locking.SharedLock("real")
    dead = _die_holding(lambda: lock.acquire(shared=0))
    for _ in range(500):
        outcome, error, ident = _run(lambda: (threading.get_ident(), lock.is_owned(),
                                              lock.acquire(shared=0, timeout=0)),
                                     "newcomer")
        assert error is None, error
        if ident == dead:
            assert outcome == (dead, False, False)
            return
    pytest.skip("the system did not reuse a thread id in 500 threads")
