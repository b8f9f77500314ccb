"""Tests for ganeti.locking.condition: conditions waiting on pipes."""

from __future__ import annotations

import os
import threading
import time

import pytest

from ganeti import errors, locking
from lockhelpers import wait_until


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_wait_times_out_without_notification():
    cond = locking.PipeCondition(threading.Lock())
    with cond:
        start = time.monotonic()
        cond.wait(0.05)
        assert time.monotonic() - start >= 0.045
        assert not cond.has_waiting()


def test_timed_wait_does_not_burn_cpu():
    # The design's point: a timed wait sleeps in poll(2), it does not spin
    cond = locking.PipeCondition()
    with cond:
        cpu = time.process_time()
        cond.wait(0.3)
        assert time.process_time() - cpu < 0.1


def test_notify_all_wakes_every_waiter(runner):
    lock = threading.Lock()
    cond = locking.PipeCondition(lock)
    state = {"go": False, "woken": 0, "waiting": 0}

    def waiter():
        with cond:
            state["waiting"] += 1
            while not state["go"]:
                cond.wait(30)
            state["woken"] += 1

    for num in range(5):
        runner.start(waiter, name=f"waiter{num}")
    wait_until(lambda: state["waiting"] == 5 and cond.has_waiting())
    with cond:
        state["go"] = True
        cond.notify_all()
    runner.join_all()
    assert state["woken"] == 5


def test_ping_pong_loses_no_wakeup(runner):
    lock = threading.Lock()
    cond = locking.PipeCondition(lock)
    state = {"turn": 0}
    rounds = 300

    def player(me):
        for _ in range(rounds):
            with cond:
                while state["turn"] % 2 != me:
                    cond.wait(10)
                state["turn"] += 1
                cond.notifyAll()

    runner.start(player, 0, name="ping")
    runner.start(player, 1, name="pong")
    runner.join_all(30)
    assert state["turn"] == 2 * rounds


def test_wait_needs_the_lock():
    cond = locking.PipeCondition(threading.Lock())
    with pytest.raises(errors.ProgrammerError):
        cond.wait(0)
    with pytest.raises(errors.ProgrammerError):
        cond.notify_all()


def test_negative_timeout_is_refused():
    cond = locking.PipeCondition(threading.Lock())
    with cond, pytest.raises(errors.ProgrammerError):
        cond.wait(-1)


def test_single_notify_condition_is_single_use():
    lock = threading.Lock()
    cond = locking.SingleNotifyPipeCondition(lock)
    with lock:
        cond.wait(0)
        cond.notify_all()
        assert cond.notified
        with pytest.raises(errors.ProgrammerError):
            cond.wait(0)
        with pytest.raises(errors.ProgrammerError):
            cond.notify_all()


def test_single_notify_wakes_waiter(runner):
    lock = threading.Lock()
    cond = locking.SingleNotifyPipeCondition(lock)
    done = threading.Event()

    def waiter():
        with lock:
            cond.wait(30)
        done.set()

    runner.start(waiter)
    wait_until(cond.has_waiting)
    with lock:
        cond.notify_all()
    assert done.wait(10)


def test_no_file_descriptor_leaks(runner):
    lock = threading.Lock()
    before = _open_fds()
    for _ in range(50):
        cond = locking.PipeCondition(lock)
        with lock:
            cond.wait(0)        # timed out, never notified
    single = locking.SingleNotifyPipeCondition(lock)
    runner.start(lambda: (lock.acquire(), single.wait(30), lock.release()))
    wait_until(single.has_waiting)
    with lock:
        single.notify_all()
    runner.join_all()
    assert _open_fds() == before
