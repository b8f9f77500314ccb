"""ganeti.uidpool: pool definitions, and handing out uids with real locks.

The allocation tests use real lock files (in a temporary directory), real
``flock`` from other processes and the real ``/proc``. Uid 0 always has a
process (init), which is how the tests see "a uid in use" under any user;
running a process under an arbitrary uid of the pool needs root
(``needs_root``).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ganeti import constants, errors, uidpool

needs_root = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("setpriv") is None,
    reason="running a process under another uid needs root and setpriv")


# --- Definitions ---------------------------------------------------------------------

@pytest.mark.parametrize("text,expected", [
    ("", []),
    ("1000-2000,3000", [(1000, 2000), (3000, 3000)]),
    (" 3000 , 1000 - 2000 ", [(1000, 2000), (3000, 3000)]),
    ("5,6,7-9", [(5, 9)]),  # touching ranges are merged
    ("1000-1010\n2000\n", [(1000, 1010), (2000, 2000)]),  # ssconf's form
    ("0-4294967295", [(0, 4294967295)]),
])
def test_parse(text, expected):
    assert uidpool.ParseUidPool(text) == expected


@pytest.mark.parametrize("text,match", [
    ("x", r"Invalid user-id 'x' \("),
    ("1000-abc", "Invalid user-id 'abc' in '1000-abc'"),
    ("-5", "range '-5': a bound is missing"),
    ("5-", "range '5-': a bound is missing"),
    ("1-2-3", "Invalid user-id '2-3' in '1-2-3'"),
    ("2000-1000", "range 2000-1000: the lower bound is above the higher one"),
    ("4294967296", "4294967296: user-ids must lie between 0 and 4294967295"),
    ("1000-2000,1500", "Overlapping user-id ranges 1000-2000 and 1500"),
    ("10,10", "Overlapping user-id ranges 10 and 10"),
])
def test_parse_errors_name_the_value(text, match):
    with pytest.raises(errors.OpPrereqError, match=match) as info:
        uidpool.ParseUidPool(text)
    assert info.value.args[1] == errors.ECODE_INVAL


def test_parse_merging_overlaps():
    assert uidpool.ParseUidPool("10-20\n15-30\n5", merge=True) == [(5, 5), (10, 30)]
    with pytest.raises(errors.OpPrereqError, match="lower bound is above"):
        uidpool.ParseUidPool("20-10", merge=True)


def test_parse_with_separator():
    assert uidpool.ParseUidPool("1-2;4", separator=";") == [(1, 2), (4, 4)]
    with pytest.raises(errors.OpPrereqError, match="user-id '1;2'"):
        uidpool.ParseUidPool("1;2", separator=",")


def test_check_accepts_json_lists_and_single_uids():
    assert uidpool.CheckUidPool([[3000, 3001], 10, (5, 9)]) == [(5, 10), (3000, 3001)]
    for bad, match in (([["a", 1]],), "bounds must be integers"), \
                      (([[1, 2, 3]],), r"expected \[low, high\]"), \
                      (([[True, 2]],), "bounds must be integers"):
        with pytest.raises(errors.OpPrereqError, match=match):
            uidpool.CheckUidPool(*bad)


def test_format_round_trip():
    pool = [(1000, 2000), (3000, 3000)]
    assert uidpool.FormatUidPool(pool) == "1000-2000, 3000"
    assert uidpool.FormatUidPool([[1, 1], [5, 9]], "\n") == "1\n5-9"
    assert uidpool.FormatUidPool([]) == ""
    assert uidpool.ParseUidPool(uidpool.FormatUidPool(pool)) == pool
    assert uidpool.ParseUidPool(uidpool.FormatUidPool(pool, "\n")) == pool


def test_add_and_remove():
    pool = uidpool.ParseUidPool("1000-1009,2000")
    assert uidpool.AddToUidPool(pool, [[1005, 1012], [3000, 3000]]) == \
        [(1000, 1012), (2000, 2000), (3000, 3000)]
    assert uidpool.AddToUidPool(pool, [[2000, 2000]]) == pool  # already there
    assert uidpool.AddToUidPool([], [[7, 7]]) == [(7, 7)]
    assert uidpool.RemoveFromUidPool(pool, [[1003, 1004], [2000, 2000]]) == \
        [(1000, 1002), (1005, 1009)]
    assert uidpool.RemoveFromUidPool(pool, [[1000, 1009]]) == [(2000, 2000)]
    with pytest.raises(errors.OpPrereqError,
                       match=r"Cannot remove user-ids 1010-1011, 1999: not in the uid"
                             r" pool \(1000-1009, 2000\)"):
        uidpool.RemoveFromUidPool(pool, [[1008, 1011], [1999, 1999]])
    with pytest.raises(errors.OpPrereqError, match="Overlapping"):
        uidpool.AddToUidPool(pool, [[1, 5], [4, 6]])


def test_expand():
    assert uidpool.ExpandUidPool([(5, 7), (9, 9), [6, 6]]) == [5, 6, 7, 9]
    assert uidpool.ExpandUidPool([]) == []


_Ranges = st.lists(st.tuples(st.integers(0, 60), st.integers(0, 8)).map(
    lambda item: (item[0], item[0] + item[1])), max_size=6)


@settings(max_examples=200, deadline=None)
@given(_Ranges, _Ranges)
def test_add_remove_match_set_semantics(pool, change):
    pool = uidpool._Merge(pool)
    change = uidpool._Merge(change)
    uids, other = set(uidpool.ExpandUidPool(pool)), set(uidpool.ExpandUidPool(change))
    added = uidpool.AddToUidPool(pool, change)
    assert set(uidpool.ExpandUidPool(added)) == uids | other
    assert added == uidpool.CheckUidPool(added)  # normalised: no overlaps
    if other <= uids:
        removed = uidpool.RemoveFromUidPool(pool, change)
        assert set(uidpool.ExpandUidPool(removed)) == uids - other
        assert removed == uidpool.CheckUidPool(removed)
    else:
        with pytest.raises(errors.OpPrereqError, match="not in the uid pool"):
            uidpool.RemoveFromUidPool(pool, change)


def test_limits_are_ganetis():
    assert (constants.UID_POOL_UID_MIN, constants.UID_POOL_UID_MAX) == (0, 2 ** 32 - 1)


# --- Who uses a uid ------------------------------------------------------------------

def test_used_uids_come_from_proc():
    used = uidpool.GetUsedUids()
    assert os.getuid() in used and os.geteuid() in used
    assert 0 in used  # init
    assert uidpool.IsUidUsed(0)


def test_used_uids_read_every_uid_of_a_status_file(tmp_path):
    (tmp_path / "12").mkdir()
    (tmp_path / "12" / "status").write_text(
        "Name:\tqemu\nUid:\t1\t2\t3\t4\nGid:\t9\t9\t9\t9\n")
    (tmp_path / "13").mkdir()  # gone meanwhile: no status file
    (tmp_path / "14").mkdir()
    (tmp_path / "14" / "status").write_text(
        "Name:\tqemu\nState:\tZ (zombie)\nUid:\t7\t7\t7\t7\n")
    (tmp_path / "self").mkdir()
    assert uidpool.GetUsedUids(str(tmp_path)) == {1, 2, 3, 4}
    with pytest.raises(errors.LockError, match="Cannot list the processes"):
        uidpool.GetUsedUids(str(tmp_path / "missing"))


# --- Handing out uids ----------------------------------------------------------------

def _FreeUids(count: int) -> list[int]:
    """Uids no process uses (high ones, far from any real user)."""
    used = uidpool.GetUsedUids()
    return [uid for uid in range(3_900_000_000, 3_900_001_000) if uid not in used][:count]


@pytest.fixture
def lockdir(tmp_path) -> str:
    return str(tmp_path / "uid-pool")


def test_request_skips_uids_with_a_process(lockdir):
    free = _FreeUids(1)[0]
    for _ in range(5):
        locked = uidpool.RequestUnusedUid({0, free}, owner="inst1", lockdir=lockdir)
        assert locked.GetUid() == free and locked.AsStr() == str(free)
        uidpool.ReleaseUid(locked, lockdir=lockdir)
    with pytest.raises(errors.LockError, match=r"No free uid in the pool: all 1 uid"):
        uidpool.RequestUnusedUid({0}, lockdir=lockdir)
    with pytest.raises(errors.LockError, match="the uid pool is empty"):
        uidpool.RequestUnusedUid(set(), lockdir=lockdir)


def test_lock_file_protocol(lockdir):
    uid = _FreeUids(1)[0]
    locked = uidpool.RequestUnusedUid({uid}, owner="inst1", lockdir=lockdir)
    path = f"{lockdir}/{uid}"
    assert locked.path == path and locked.IsLocked()
    assert open(path).read() == "inst1\n"
    # While the lock is held nobody else gets the uid
    with pytest.raises(errors.LockError, match="No free uid"):
        uidpool.RequestUnusedUid({uid}, lockdir=lockdir)
    locked.Unlock()
    locked.Unlock()  # twice is fine
    assert not locked.IsLocked()
    # The file stays and names the owner
    assert os.path.exists(path)
    assert uidpool.GetReservedUids(lockdir) == {uid: "inst1"}
    assert uidpool.GetInstanceUid("inst1", lockdir) == uid
    assert uidpool.GetInstanceUid("other", lockdir) is None
    with pytest.raises(errors.ProgrammerError, match="no longer locked"):
        locked.SetOwner("inst2")
    # Releasing another instance leaves it; releasing the owner removes it
    assert uidpool.ReleaseUid("other", lockdir=lockdir) == []
    assert os.path.exists(path)
    assert uidpool.ReleaseUid("inst1", lockdir=lockdir) == [uid]
    assert not os.path.exists(path)
    assert uidpool.ReleaseUid("inst1", lockdir=lockdir) == []
    assert uidpool.ReleaseUid(uid, lockdir=lockdir) == []  # nothing to do, no error


def test_a_stale_lock_file_does_not_block_its_uid(lockdir):
    uid = _FreeUids(1)[0]
    uidpool.RequestUnusedUid({uid}, owner="crashed", lockdir=lockdir).Unlock()
    # No process runs under the uid: it is handed out again, to the new owner
    again = uidpool.RequestUnusedUid({uid}, owner="inst2", lockdir=lockdir)
    assert again.GetUid() == uid
    again.Unlock()
    assert uidpool.GetReservedUids(lockdir) == {uid: "inst2"}
    # The old owner's release does not take the uid from the new one
    assert uidpool.ReleaseUid("crashed", lockdir=lockdir) == []
    assert uidpool.GetInstanceUid("inst2", lockdir) == uid
    assert uidpool.ReleaseUid(uid, lockdir=lockdir) == [uid]
    assert uidpool.GetReservedUids(lockdir) == {}


def test_no_lock_directory_means_nothing_reserved(tmp_path):
    assert uidpool.GetReservedUids(str(tmp_path / "none")) == {}
    assert uidpool.ReleaseUid("inst1", lockdir=str(tmp_path / "none")) == []


_HOLDER = r"""
import sys
from ganeti import uidpool
uids = {int(u) for u in sys.argv[2].split(",")}
try:
    locked = uidpool.RequestUnusedUid(uids, owner=sys.argv[3], lockdir=sys.argv[1])
except Exception as err:
    print("error", err, flush=True)
    sys.exit(0)
print(locked.GetUid(), flush=True)
sys.stdin.readline()
"""


@pytest.fixture
def holders() -> Iterator[list[subprocess.Popen]]:
    procs: list[subprocess.Popen] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        for stream in (proc.stdin, proc.stdout):
            if stream:
                stream.close()


def _Hold(holders, lockdir, uids, owner):
    proc = subprocess.Popen([sys.executable, "-c", _HOLDER, lockdir,
                             ",".join(map(str, uids)), owner],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    holders.append(proc)
    return proc.stdout.readline().strip()


def test_processes_holding_locks_get_different_uids(lockdir, holders):
    uids = _FreeUids(4)
    got = [_Hold(holders, lockdir, uids, f"inst{n}") for n in range(4)]
    assert sorted(int(uid) for uid in got) == sorted(uids)
    # All four locked by other processes: none left
    assert _Hold(holders, lockdir, uids, "inst5").startswith("error No free uid in the pool")
    with pytest.raises(errors.LockError, match="No free uid"):
        uidpool.RequestUnusedUid(set(uids), lockdir=lockdir)
    # A holder that dies drops its lock (the kernel does): its uid is free
    # again, although its lock file is still there
    holders[0].kill()
    holders[0].wait()
    locked = uidpool.RequestUnusedUid(set(uids), owner="inst6", lockdir=lockdir)
    assert locked.GetUid() == int(got[0])
    uidpool.ReleaseUid(locked, lockdir=lockdir)


def test_release_waits_for_a_start_in_progress(lockdir, holders):
    uid = _FreeUids(1)[0]
    assert _Hold(holders, lockdir, [uid], "inst1") == str(uid)
    start = time.monotonic()

    def _Finish() -> None:
        time.sleep(0.3)
        holders[0].stdin.write("\n")
        holders[0].stdin.flush()

    import threading
    thread = threading.Thread(target=_Finish)
    thread.start()
    try:
        # The holder is "starting" inst1: the release waits for its lock
        assert uidpool.ReleaseUid("inst1", lockdir=lockdir) == [uid]
    finally:
        thread.join()
    assert time.monotonic() - start >= 0.25
    assert uidpool.GetReservedUids(lockdir) == {}


@needs_root
def test_a_process_running_as_a_pool_uid_makes_it_unavailable(lockdir):
    busy, free = _FreeUids(2)
    proc = subprocess.Popen(["setpriv", f"--reuid={busy}", f"--regid={busy}",
                             "--clear-groups", "sleep", "60"])
    try:
        deadline = time.monotonic() + 10
        while not uidpool.IsUidUsed(busy):
            assert time.monotonic() < deadline, "setpriv did not switch uid"
            time.sleep(0.02)
        for _ in range(10):
            locked = uidpool.RequestUnusedUid({busy, free}, lockdir=lockdir)
            assert locked.GetUid() == free
            uidpool.ReleaseUid(locked, lockdir=lockdir)
        with pytest.raises(errors.LockError, match="No free uid"):
            uidpool.RequestUnusedUid({busy}, lockdir=lockdir)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    # The process is gone: its uid is free again
    locked = uidpool.RequestUnusedUid({busy}, lockdir=lockdir)
    assert locked.GetUid() == busy
    uidpool.ReleaseUid(locked, lockdir=lockdir)


@needs_root
def test_a_process_with_only_an_effective_uid_counts(lockdir):
    # setpriv --euid switches the effective uid only; the real uid stays 0
    uid = _FreeUids(1)[0]
    proc = subprocess.Popen(["setpriv", f"--euid={uid}", "sleep", "60"])
    try:
        deadline = time.monotonic() + 10
        while not uidpool.IsUidUsed(uid):
            assert time.monotonic() < deadline
            time.sleep(0.02)
        with pytest.raises(errors.LockError, match="No free uid"):
            uidpool.RequestUnusedUid({uid}, lockdir=lockdir)
    finally:
        proc.kill()
        proc.wait()


def test_release_in_the_process_holding_the_lock(lockdir):
    uid1, uid2 = _FreeUids(2)
    locked = uidpool.RequestUnusedUid({uid1}, owner="inst1", lockdir=lockdir)
    # This process holds uid1: asking again here skips it rather than
    # taking a second flock on it
    other = uidpool.RequestUnusedUid({uid1, uid2}, owner="inst2", lockdir=lockdir)
    assert other.GetUid() == uid2
    # A start never marked done, released by instance in the same process
    # (a node daemon child serving both calls): no waiting for ourselves
    start = time.monotonic()
    assert uidpool.ReleaseUid("inst1", lockdir=lockdir, timeout=5) == [uid1]
    assert time.monotonic() - start < 1
    assert not locked.IsLocked()
    assert uidpool.ReleaseUid(uid2, lockdir=lockdir, timeout=5) == [uid2]
    assert not other.IsLocked()
    assert uidpool.GetReservedUids(lockdir) == {}


def test_release_gives_up_on_a_lock_held_too_long(lockdir, holders):
    uid = _FreeUids(1)[0]
    assert _Hold(holders, lockdir, [uid], "inst1") == str(uid)
    with pytest.raises(errors.LockError, match=rf"Timed out after 0.3s waiting for the"
                                               rf" lock on {lockdir}/{uid}"):
        uidpool.ReleaseUid(uid, lockdir=lockdir, timeout=0.3)
    assert uidpool.GetReservedUids(lockdir) == {uid: "inst1"}
