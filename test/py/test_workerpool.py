"""Tests for ganeti.workerpool."""

from __future__ import annotations

import threading

import pytest

from ganeti import errors, locking, workerpool

pytestmark = pytest.mark.timeout(60)

WAIT = 10


@pytest.fixture
def pools():
    made: list[workerpool.WorkerPool] = []

    def make(num_workers, fn, name="Test"):
        pool = workerpool.WorkerPool(name, num_workers, fn)
        made.append(pool)
        return pool

    yield make
    for pool in made:
        assert pool.TerminateWorkers(WAIT)


def test_runs_all_tasks(pools):
    done = []
    lock = threading.Lock()

    def fn(value):
        with lock:
            done.append(value)

    pool = pools(4, fn)
    pool.AddManyTasks([(i,) for i in range(100)])
    assert pool.Quiesce(WAIT)
    assert sorted(done) == list(range(100))
    assert not pool.HasRunningTasks()


def test_priority_order_and_change(pools):
    gate = threading.Event()
    started = threading.Event()
    order = []

    def fn(name):
        if name == "blocker":
            started.set()
            assert gate.wait(WAIT)
        else:
            order.append(name)

    pool = pools(1, fn)
    pool.AddTask(("blocker",))
    assert started.wait(WAIT)
    pool.AddTask(("low",), priority=10)
    pool.AddTask(("normal1",), priority=0)
    pool.AddTask(("normal2",), priority=0, task_id="n2")
    pool.AddTask(("high",), priority=-10)
    assert pool.ChangeTaskPriority("n2", -20)
    assert not pool.ChangeTaskPriority("missing", 0)
    gate.set()
    assert pool.Quiesce(WAIT)
    assert order == ["normal2", "high", "normal1", "low"]
    # Once run, a task's ID is free again and cannot be changed
    assert not pool.ChangeTaskPriority("n2", 0)


def test_owner_name_reset_after_task(pools):
    names = []

    def fn(job_id):
        names.append(locking.get_owner_name())
        locking.set_owner_name(f"job/{job_id}")
        names.append(locking.get_owner_name())

    pool = pools(1, fn, name="Own")
    pool.AddTask((1,))
    pool.AddTask((2,))
    assert pool.Quiesce(WAIT)
    assert names == ["Own1", "job/1", "Own1", "job/2"]


def test_failing_task_does_not_kill_worker(pools):
    done = threading.Event()

    def fn(fail):
        if fail:
            raise ValueError("boom")
        done.set()

    pool = pools(1, fn)
    pool.AddTask((True,))
    pool.AddTask((False,))
    assert done.wait(WAIT)
    assert pool.Quiesce(WAIT)


def test_defer_task(pools):
    calls = []

    def fn(name):
        calls.append(name)
        if name == "again" and calls.count("again") == 1:
            raise workerpool.DeferTask(priority=5)

    pool = pools(1, fn)
    pool.AddTask(("again",), task_id="x")
    assert pool.Quiesce(WAIT)
    assert calls == ["again", "again"]


def test_inactive_pool_holds_tasks(pools):
    ran = threading.Event()
    pool = pools(2, lambda: ran.set())
    pool.SetActive(False)
    pool.AddTask(())
    assert not pool.Quiesce(0.05)
    assert not ran.is_set()
    pool.SetActive(True)
    assert ran.wait(WAIT)
    assert pool.Quiesce(WAIT)


def test_terminate_drops_queued_and_refuses_new(pools):
    gate = threading.Event()
    started = threading.Event()
    ran = []

    def fn(name):
        ran.append(name)
        started.set()
        assert gate.wait(WAIT)

    pool = workerpool.WorkerPool("T", 1, fn)
    pool.AddTask(("first",))
    assert started.wait(WAIT)
    pool.AddTask(("second",))
    assert not pool.TerminateWorkers(0.01)  # first still running
    gate.set()
    assert pool.TerminateWorkers(WAIT)
    assert ran == ["first"]
    with pytest.raises(errors.ProgrammerError, match="terminating"):
        pool.AddTask(("third",))


@pytest.mark.parametrize("num", [0, -1, "3", True])
def test_bad_worker_count(num):
    with pytest.raises(errors.ProgrammerError, match="positive integer"):
        workerpool.WorkerPool("X", num, lambda: None)


def test_bad_arguments(pools):
    pool = pools(1, lambda *args: None)
    with pytest.raises(errors.ProgrammerError, match="priority must be an integer"):
        pool.AddTask((), priority="high")
    with pytest.raises(errors.ProgrammerError, match="sequence"):
        pool.AddTask("abc")
    with pytest.raises(errors.ProgrammerError, match="2 tasks, 1 priorities"):
        pool.AddManyTasks([(), ()], priority=[0])
    gate = threading.Event()
    pool2 = pools(1, lambda: gate.wait(WAIT))
    pool2.AddTask((), task_id=7)
    pool2.AddTask((), task_id=8)
    with pytest.raises(errors.ProgrammerError, match="queued already"):
        pool2.AddTask((), task_id=8)
    gate.set()
    assert pool2.Quiesce(WAIT)
