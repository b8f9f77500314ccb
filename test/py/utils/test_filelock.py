"""Tests for ganeti.utils.filelock, with a second process contending."""

import os
import select
import subprocess
import sys
import threading
import time

import pytest

from ganeti import errors, utils

# Takes a lock, reports it on stdout, and holds it until stdin is closed
_HOLDER = r"""
import sys
from ganeti.utils.filelock import FileLock
lock = FileLock.Open(sys.argv[1])
getattr(lock, sys.argv[2])()
print("locked", flush=True)
sys.stdin.read()
"""


class Holder:
    """A child process holding a lock on ``path`` in ``mode``."""

    def __init__(self, path, mode):
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _HOLDER, path, mode],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        assert line == "locked\n", f"holder failed: {line!r}"

    def Release(self):
        self.proc.stdin.close()
        assert self.proc.wait(timeout=30) == 0
        self.proc.stdout.close()

    def Kill(self):
        self.proc.kill()
        self.proc.wait(timeout=30)
        self.proc.stdin.close()
        self.proc.stdout.close()


@pytest.fixture
def lockfile(tmp_path):
    return str(tmp_path / "lock")


@pytest.fixture
def holders():
    started = []

    def _start(path, mode):
        holder = Holder(path, mode)
        started.append(holder)
        return holder

    yield _start
    for holder in started:
        if holder.proc.returncode is None:
            holder.Kill()


class FakeClock:
    def __init__(self):
        self.now = 0.0
        self.sleeps = []

    def time(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


def test_exclusive_held_elsewhere(lockfile, holders):
    holder = holders(lockfile, "Exclusive")
    with utils.FileLock.Open(lockfile) as lock:
        with pytest.raises(errors.LockError, match=lockfile):
            lock.Exclusive(blocking=False)
        with pytest.raises(errors.LockError, match=lockfile):
            lock.Shared(blocking=False)
        start = time.monotonic()
        with pytest.raises(errors.LockError, match="shared mode.*" + lockfile):
            lock.Shared(timeout=0.2)
        assert time.monotonic() - start >= 0.2
        holder.Release()
        lock.Exclusive(blocking=False)


def test_shared_with_shared(lockfile, holders):
    holder = holders(lockfile, "Shared")
    with utils.FileLock.Open(lockfile) as lock:
        lock.Shared(blocking=False)
        lock.Unlock()
        with pytest.raises(errors.LockError, match="exclusive mode"):
            lock.Exclusive(blocking=False)
        holder.Release()
        lock.Exclusive(timeout=5)


def _WaitUntilBlocked(pid):
    """Wait until ``pid`` is queued for a lock (a "->" line in /proc/locks)."""

    def _Check():
        with open("/proc/locks") as fh:
            for line in fh:
                fields = line.split()
                if "->" in fields and str(pid) in fields:
                    return
        raise utils.RetryAgain()

    utils.Retry(_Check, (0.001, 2, 0.05), 30)


@pytest.mark.skipif(not os.path.exists("/proc/locks"), reason="no /proc/locks")
def test_holder_blocked_while_we_hold(lockfile):
    with utils.FileLock.Open(lockfile) as lock:
        lock.Exclusive()
        proc = subprocess.Popen(
            [sys.executable, "-c", _HOLDER, lockfile, "Exclusive"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            _WaitUntilBlocked(proc.pid)
            # Nothing printed yet: the child is still waiting for us
            assert select.select([proc.stdout], [], [], 0)[0] == []
            # Releasing lets the blocked child take the lock and report it
            lock.Unlock()
            assert proc.stdout.readline() == "locked\n"
            with pytest.raises(errors.LockError):
                lock.Shared(blocking=False)
        finally:
            proc.stdin.close()
            proc.wait(timeout=30)
            proc.stdout.close()


def test_blocking_wait_returns_when_released(lockfile, holders):
    holder = holders(lockfile, "Exclusive")
    lock = utils.FileLock.Open(lockfile)
    got = threading.Event()
    errors_seen = []

    def _wait():
        try:
            lock.Exclusive(timeout=30)
            got.set()
        except Exception as err:  # pragma: no cover - reported below
            errors_seen.append(err)

    thread = threading.Thread(target=_wait)
    thread.start()
    holder.Release()
    thread.join(timeout=30)
    assert not thread.is_alive()
    assert got.is_set(), errors_seen
    lock.Close()


def test_dead_holder_releases(lockfile, holders):
    holder = holders(lockfile, "Exclusive")
    with utils.FileLock.Open(lockfile) as lock:
        with pytest.raises(errors.LockError):
            lock.Exclusive(blocking=False)
        holder.Kill()
        lock.Exclusive(timeout=10)


def test_timed_wait_backs_off(lockfile, holders):
    holders(lockfile, "Exclusive")
    clock = FakeClock()
    lock = utils.FileLock(lockfile, _time_fn=clock.time, _sleep_fn=clock.sleep)
    with pytest.raises(errors.LockError):
        lock.Exclusive(timeout=2.0)
    lock.Close()
    assert clock.now == pytest.approx(2.0)
    # Pauses grow and stay bounded: no busy loop, no oversleeping
    assert clock.sleeps[0] <= 0.002
    assert clock.sleeps == sorted(clock.sleeps[:-1]) + clock.sleeps[-1:]
    assert max(clock.sleeps) <= 0.05
    assert len(clock.sleeps) < 60


def test_two_objects_in_one_process_conflict(lockfile):
    first = utils.FileLock.Open(lockfile)
    second = utils.FileLock.Open(lockfile)
    first.Exclusive()
    with pytest.raises(errors.LockError):
        second.Shared(blocking=False)
    first.Close()
    second.Shared(blocking=False)
    second.Close()


def test_unlock_and_relock(lockfile):
    first = utils.FileLock.Open(lockfile)
    second = utils.FileLock.Open(lockfile)
    first.Exclusive()
    first.Unlock()
    second.Exclusive(blocking=False)
    second.Unlock()
    first.Shared()
    first.Exclusive()   # convert
    with pytest.raises(errors.LockError):
        second.Shared(blocking=False)
    first.Close()
    second.Close()


def test_from_fd_and_file(lockfile):
    fd = os.open(lockfile, os.O_RDWR | os.O_CREAT)
    by_fd = utils.FileLock(fd, lockfile)
    by_fd.Exclusive()
    with open(lockfile) as fh:
        by_file = utils.FileLock(fh)
        assert by_file.filename == lockfile
        with pytest.raises(errors.LockError):
            by_file.Shared(blocking=False)
        by_fd.Close()
        by_file.Shared(blocking=False)
        by_file.Close()
        assert fh.closed
    with pytest.raises(OSError):
        os.fstat(fd)


def test_closed_lock(lockfile):
    lock = utils.FileLock.Open(lockfile)
    lock.Close()
    lock.Close()  # twice is fine
    with pytest.raises(errors.ProgrammerError):
        lock.Exclusive()


def test_context_manager_releases(lockfile):
    with utils.FileLock.Open(lockfile) as lock:
        lock.Exclusive()
    with utils.FileLock.Open(lockfile) as other:
        other.Exclusive(blocking=False)


def test_invalid_argument():
    with pytest.raises(errors.ProgrammerError):
        utils.FileLock(None)


def test_creates_file(tmp_path):
    path = tmp_path / "new.lock"
    with utils.FileLock.Open(str(path)):
        assert path.exists()
