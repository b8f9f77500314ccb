"""The user-id pool: uids reserved for processes such as KVM instances.

The pool is one cluster parameter, ``uid_pool``: a list of ``(low,
high)`` ranges, bounds included (a single uid is ``(n, n)``). Users write
it as ``1000-2000,3000`` (``gnt-cluster init/modify --uid-pool``,
``--add-uids``, ``--remove-uids``); ``gnt-cluster info`` prints it in the
same form, and the nodes read it from the ssconf key ``uid_pool``, one
range a line. Master side: :func:`ParseUidPool`, :func:`CheckUidPool`,
:func:`AddToUidPool`, :func:`RemoveFromUidPool`, :func:`FormatUidPool`.
A stored pool is normalised: sorted, with overlapping and adjacent ranges
merged, so every uid appears once.

Node side, :func:`RequestUnusedUid` hands out a uid of the pool that no
process of the machine uses, with this protocol (seed 003):

- every uid has a lock file, ``pathutils.UIDPOOL_LOCKDIR/<uid>``;
- a requester goes through the pool in random order, opens the uid's lock
  file and takes an exclusive ``flock`` on it without waiting (a uid whose
  lock is held is being handed out elsewhere: skipped), then looks in
  ``/proc`` for a process whose real, effective, saved or file-system uid
  is that uid (one found: unlocked and skipped);
- the uid is then the requester's (:class:`LockedUid`), and its lock file
  records the owner instance (the file's content, the "marker");
- the requester starts its process under the uid and only then calls
  :meth:`LockedUid.Unlock`: the lock is given up but the file and its
  marker stay, so the uid is known to be reserved by that instance while
  it runs (:func:`GetInstanceUid`, :func:`GetReservedUids`); the running
  process itself is what keeps other requesters away;
- when the instance stops, :func:`ReleaseUid` removes the lock file (by uid
  or by instance, the latter also after a node daemon restart), under the
  file's lock: a start in progress is waited for (``RELEASE_TIMEOUT``), a
  lock this very process holds is used as is (``flock`` would make a
  process wait for itself).

The guarantee holds only if every process that runs under a pool uid was
started this way. A lock file left behind (an instance that crashed) does
not block its uid: the ``/proc`` check decides. ``/proc`` must show every
user's processes (no ``hidepid`` mount option) for the check to work.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import random
import threading
import time
from collections.abc import Collection, Iterable
from typing import Any

from ganeti import constants, errors, pathutils

UidRange = tuple[int, int]

__all__ = [
    "AddToUidPool", "CheckUidPool", "ExpandUidPool", "FormatUidPool",
    "GetInstanceUid", "GetReservedUids", "GetUsedUids", "IsUidUsed", "LockedUid",
    "ParseUidPool", "ReleaseUid", "RemoveFromUidPool", "RequestUnusedUid",
]


def _Inval(msg: str) -> errors.OpPrereqError:
    return errors.OpPrereqError(msg, errors.ECODE_INVAL)


def _FormatRange(low: int, high: int) -> str:
    return str(low) if low == high else f"{low}-{high}"


# --- Master side: syntax, checks, changes -------------------------------------------


def _ParseUid(text: str, item: str) -> int:
    if not text.isdigit():
        if not text:
            what = f"user-id range '{item}': a bound is missing"
        elif text == item:
            what = f"user-id '{item}'"
        else:
            what = f"user-id '{text}' in '{item}'"
        raise _Inval(f"Invalid {what} (expected a non-negative integer or a"
                     " range like 1000-2000)")
    return int(text)


def ParseUidPool(value: str, separator: str | None = None,
                 merge: bool = False) -> list[UidRange]:
    """Parse a pool definition ("1000-2000,3000") into checked ranges.

    Items are separated by ``separator``, by default commas or newlines
    (ssconf's form); blanks around items are ignored. The result is
    normalised (see :func:`CheckUidPool`); with ``merge`` overlapping
    ranges are merged rather than refused (for a pool already stored).

    @raise errors.OpPrereqError: naming the item that is wrong
    """
    if separator is None:
        items = value.replace("\n", ",").split(",")
    else:
        items = value.split(separator)
    ranges = []
    for raw in items:
        item = raw.strip()
        if not item:
            continue
        low_text, dash, high_text = item.partition("-")
        low = _ParseUid(low_text.strip(), item)
        high = _ParseUid(high_text.strip(), item) if dash else low
        ranges.append((low, high))
    if merge:
        return _Merge(_CheckRange(entry) for entry in ranges)
    return CheckUidPool(ranges)


def _CheckRange(entry: Any) -> UidRange:
    if isinstance(entry, int) and not isinstance(entry, bool):
        low, high = entry, entry
    else:
        try:
            low, high = entry
        except (TypeError, ValueError):
            raise _Inval(f"Invalid user-id range {entry!r}: expected [low, high]") from None
    for value in (low, high):
        if not isinstance(value, int) or isinstance(value, bool):
            raise _Inval(f"Invalid user-id range {entry!r}: bounds must be integers")
    if low > high:
        raise _Inval(f"Invalid user-id range {low}-{high}: the lower bound is above"
                     " the higher one")
    if low < constants.UID_POOL_UID_MIN or high > constants.UID_POOL_UID_MAX:
        raise _Inval(f"Invalid user-id range {_FormatRange(low, high)}: user-ids"
                     f" must lie between {constants.UID_POOL_UID_MIN} and"
                     f" {constants.UID_POOL_UID_MAX}")
    return int(low), int(high)


def _Merge(ranges: Iterable[UidRange]) -> list[UidRange]:
    """Sort ``ranges`` and merge those that overlap or touch."""
    result: list[UidRange] = []
    for low, high in sorted(ranges):
        if result and low <= result[-1][1] + 1:
            result[-1] = (result[-1][0], max(result[-1][1], high))
        else:
            result.append((low, high))
    return result


def CheckUidPool(ranges: Iterable[Any]) -> list[UidRange]:
    """Check a pool definition and return it normalised.

    Each entry is ``(low, high)`` (a list from JSON is fine) or a single
    uid; bounds are integers within ``UID_POOL_UID_MIN``..``MAX``, low not
    above high. Ranges of one definition must not overlap (most likely a
    typing error); ranges that touch are merged.

    @raise errors.OpPrereqError: naming the bad or overlapping ranges
    """
    checked = sorted(_CheckRange(entry) for entry in ranges)
    for (low1, high1), (low2, high2) in zip(checked, checked[1:]):
        if low2 <= high1:
            raise _Inval(f"Overlapping user-id ranges {_FormatRange(low1, high1)} and"
                         f" {_FormatRange(low2, high2)}")
    return _Merge(checked)


def AddToUidPool(uid_pool: Iterable[Any], add_uids: Iterable[Any]) -> list[UidRange]:
    """The pool with ``add_uids`` added (uids already in it are fine).

    @raise errors.OpPrereqError: for a bad range in ``add_uids``
    """
    current = [_CheckRange(entry) for entry in uid_pool or []]
    return _Merge(current + CheckUidPool(add_uids))


def _Subtract(ranges: list[UidRange], low: int, high: int) -> list[UidRange]:
    result = []
    for cur_low, cur_high in ranges:
        if cur_high < low or cur_low > high:
            result.append((cur_low, cur_high))
            continue
        if cur_low < low:
            result.append((cur_low, low - 1))
        if cur_high > high:
            result.append((high + 1, cur_high))
    return result


def _Missing(ranges: list[UidRange], low: int, high: int) -> list[UidRange]:
    """The parts of low-high that ``ranges`` (normalised) do not cover."""
    missing = []
    start = low
    for cur_low, cur_high in ranges:
        if cur_high < start:
            continue
        if cur_low > high:
            break
        if cur_low > start:
            missing.append((start, cur_low - 1))
        start = max(start, cur_high + 1)
        if start > high:
            break
    if start <= high:
        missing.append((start, high))
    return missing


def RemoveFromUidPool(uid_pool: Iterable[Any],
                      remove_uids: Iterable[Any]) -> list[UidRange]:
    """The pool without ``remove_uids``; part of a range may be removed.

    @raise errors.OpPrereqError: for a bad range, or uids not in the pool
        (naming them)
    """
    current = _Merge(_CheckRange(entry) for entry in uid_pool or [])
    remove = CheckUidPool(remove_uids)
    missing = [part for low, high in remove for part in _Missing(current, low, high)]
    if missing:
        raise _Inval(f"Cannot remove user-ids {FormatUidPool(missing, ', ')}: not in the"
                     f" uid pool ({FormatUidPool(current, ', ') or 'empty'})")
    for low, high in remove:
        current = _Subtract(current, low, high)
    return current


def FormatUidPool(uid_pool: Iterable[Any], separator: str = ", ") -> str:
    """Format a pool as "low-high" items ("3000" for a single uid).

    ``gnt-cluster info`` uses ", ", ssconf one item a line; both parse back
    with :func:`ParseUidPool`.
    """
    items = []
    for entry in uid_pool or []:
        low, high = (entry, entry) if isinstance(entry, int) else entry
        items.append(_FormatRange(low, high))
    return separator.join(items)


def ExpandUidPool(uid_pool: Iterable[Any]) -> list[int]:
    """Every uid of the pool, in order (memory grows with the pool's size)."""
    uids: set[int] = set()
    for entry in uid_pool or []:
        low, high = (entry, entry) if isinstance(entry, int) else entry
        uids.update(range(low, high + 1))
    return sorted(uids)


# --- Node side: who uses a uid ---------------------------------------------------------

#: Where processes are listed (a parameter for tests)
PROC_DIR = "/proc"


def _ProcessUids(status_path: str) -> set[int]:
    """The real, effective, saved and file-system uids in a status file.

    A zombie (or dead) process uses no uid: it cannot run anything, and
    whether it is reaped soon depends on its parent (a daemonized QEMU's
    is init, or whichever process reaps orphans).
    """
    try:
        with open(status_path, encoding="ascii", errors="replace") as fd:
            for line in fd:
                if line.startswith("State:") and line.split()[1:2] in (["Z"], ["X"]):
                    return set()
                if line.startswith("Uid:"):
                    return {int(field) for field in line.split()[1:]}
    except (OSError, ValueError):
        pass  # the process ended meanwhile (or is not readable)
    return set()


def GetUsedUids(proc_dir: str | None = None) -> set[int]:
    """Every uid some process of this machine runs under.

    /proc/<pid> belongs to the process's effective uid only while the process
    is "dumpable", which a process that dropped its privileges (QEMU's
    ``-runas``) is not: hence the status files.
    """
    proc_dir = proc_dir or PROC_DIR
    used: set[int] = set()
    try:
        entries = os.listdir(proc_dir)
    except OSError as err:
        raise errors.LockError(f"Cannot list the processes in {proc_dir}: {err}") from err
    for entry in entries:
        if entry.isdigit():
            used.update(_ProcessUids(f"{proc_dir}/{entry}/status"))
    return used


def IsUidUsed(uid: int, proc_dir: str | None = None) -> bool:
    """Whether a process of this machine runs under ``uid``."""
    return uid in GetUsedUids(proc_dir)


# --- Node side: lock files ---------------------------------------------------------


#: Seconds ReleaseUid waits for a lock held elsewhere (a start in progress)
RELEASE_TIMEOUT = 60.0
_LOCK_POLL_INTERVAL = 0.05

#: Lock file path -> the LockedUid of this process holding its lock: flock
#: locks conflict between two opens of the same file in one process too
_held: dict[str, LockedUid] = {}
_held_lock = threading.Lock()


def _LockDir(lockdir: str | None) -> str:
    return lockdir or pathutils.UIDPOOL_LOCKDIR


def _LockFile(uid: int, lockdir: str | None) -> str:
    return f"{_LockDir(lockdir)}/{int(uid)}"


def _ReadOwner(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as fd:
            return fd.read().strip()
    except (OSError, UnicodeDecodeError):
        return None


class LockedUid:
    """A uid handed out by :func:`RequestUnusedUid`, its lock still held.

    Start the process under the uid, then call :meth:`Unlock`; on failure
    call :func:`ReleaseUid` with this object instead.
    """

    def __init__(self, uid: int, fd: int, path: str):
        self._uid = uid
        self._fd: int | None = fd
        self.path = path
        with _held_lock:
            _held[path] = self

    def GetUid(self) -> int:
        """The uid."""
        return self._uid

    def AsStr(self) -> str:
        """The uid as a string (for runtime files)."""
        return str(self._uid)

    def IsLocked(self) -> bool:
        """Whether the lock is still held."""
        return self._fd is not None

    def SetOwner(self, instance_name: str) -> None:
        """Record ``instance_name`` as the uid's owner in its lock file."""
        if self._fd is None:
            raise errors.ProgrammerError(f"User-id {self._uid} is no longer locked")
        data = (instance_name + "\n").encode("utf-8")
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, data, 0)
        os.fsync(self._fd)

    def Unlock(self) -> None:
        """Give up the lock, keeping the lock file (the uid stays reserved)."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            with _held_lock:
                if _held.get(self.path) is self:
                    del _held[self.path]
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def __del__(self) -> None:
        # A forgotten LockedUid must not keep its lock for the process's life
        with contextlib.suppress(Exception):
            self.Unlock()

    def __repr__(self) -> str:
        state = "locked" if self._fd is not None else "unlocked"
        return f"<LockedUid {self._uid} {state}>"


def _TryLock(path: str) -> int | None:
    """Open and exclusively lock ``path`` without waiting; its fd, or None.

    A releaser may remove the file between our open and our lock: the lock
    then guards a deleted file, so the file is opened again.
    """
    with _held_lock:
        if path in _held:
            return None
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            os.close(fd)
            if err.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                return None
            raise
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(path))
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)


def RequestUnusedUid(all_uids: Collection[int], owner: str = "",
                     lockdir: str | None = None,
                     proc_dir: str | None = None) -> LockedUid:
    """Hand out a uid of ``all_uids`` no process uses and nobody is handing out.

    @param all_uids: the pool's uids (:func:`ExpandUidPool`)
    @param owner: the instance to record in the lock file (also settable
        later with :meth:`LockedUid.SetOwner`)
    @raise errors.LockError: "No free uid in the pool" when every uid is used
        or locked
    """
    if not all_uids:
        raise errors.LockError("No free uid in the pool: the uid pool is empty")
    directory = _LockDir(lockdir)
    try:
        os.makedirs(directory, mode=0o755, exist_ok=True)
    except OSError as err:
        raise errors.LockError(f"Cannot create the uid pool lock directory"
                               f" {directory}: {err}") from err
    # One scan skips the uids in use before locking; each candidate is
    # checked again under its lock, which is what counts
    in_use = GetUsedUids(proc_dir)
    candidates = [uid for uid in all_uids if uid not in in_use]
    random.shuffle(candidates)
    for uid in candidates:
        path = _LockFile(uid, directory)
        try:
            fd = _TryLock(path)
        except OSError as err:
            raise errors.LockError(f"Cannot lock {path}: {err}") from err
        if fd is None:
            continue
        if IsUidUsed(uid, proc_dir):
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
            continue
        locked = LockedUid(uid, fd, path)
        try:
            locked.SetOwner(owner)
        except OSError as err:
            locked.Unlock()
            raise errors.LockError(f"Cannot write {path}: {err}") from err
        return locked
    raise errors.LockError(f"No free uid in the pool: all {len(all_uids)} uid(s)"
                           " are used by processes or being handed out")


def _LockWaiting(path: str, timeout: float) -> int | None:
    """Open ``path`` and lock it, waiting up to ``timeout`` seconds for
    whoever holds it (a start in progress); its fd, or None if it is gone.

    @raise errors.LockError: when the wait times out
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            os.close(fd)
            if err.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise
            if time.monotonic() >= deadline:
                raise errors.LockError(f"Timed out after {timeout:g}s waiting for the"
                                       f" lock on {path}") from None
            time.sleep(_LOCK_POLL_INTERVAL)
            continue
        return fd


def _UnlinkLocked(path: str, fd: int) -> bool:
    """Remove ``path`` if ``fd`` (locked) still is that file."""
    try:
        if os.path.samestat(os.fstat(fd), os.stat(path)):
            os.unlink(path)
            return True
    except FileNotFoundError:
        pass
    return False


def _ReleaseOne(path: str, owner: str | None, timeout: float) -> bool:
    """Remove the lock file ``path`` under its lock, if ``owner`` (when
    given) still owns it; whether it was removed."""
    with _held_lock:
        held = _held.get(path)
    if held is not None:
        # Locked by this very process (a start not yet marked done): a
        # second flock of ours would wait for ourselves
        if owner is not None and _ReadOwner(path) != owner:
            return False
        fd = held._fd
        assert fd is not None
        try:
            return _UnlinkLocked(path, fd)
        finally:
            held.Unlock()
    fd = _LockWaiting(path, timeout)
    if fd is None:
        return False
    try:
        if owner is not None and _ReadOwner(path) != owner:
            return False
        return _UnlinkLocked(path, fd)
    finally:
        os.close(fd)


def ReleaseUid(uid: int | str | LockedUid, lockdir: str | None = None,
               timeout: float = RELEASE_TIMEOUT) -> list[int]:
    """Return uids to the pool by removing their lock files.

    ``uid`` is a :class:`LockedUid` (its lock is released too), a uid (its
    lock file is removed whoever it names) or an instance name (every uid
    whose lock file names that instance: what a node daemon restarted since
    the start can still find; a uid handed to another instance since is
    left alone). A lock held by another process (a start in progress) is
    waited for, up to ``timeout`` seconds. Releasing what is not reserved
    does nothing.

    @return: the uids whose lock files were removed
    @raise errors.LockError: when a lock is not given up in time
    """
    directory = _LockDir(lockdir)
    if isinstance(uid, LockedUid):
        fd = uid._fd
        try:
            removed = fd is not None and _UnlinkLocked(uid.path, fd)
        finally:
            uid.Unlock()
        if fd is None:
            removed = _ReleaseOne(uid.path, None, timeout)
        return [uid.GetUid()] if removed else []
    if isinstance(uid, int):
        return [uid] if _ReleaseOne(_LockFile(uid, directory), None, timeout) else []
    return [number for number, owner in sorted(GetReservedUids(directory).items())
            if owner == uid and _ReleaseOne(_LockFile(number, directory), uid, timeout)]


def GetReservedUids(lockdir: str | None = None) -> dict[int, str]:
    """uid -> owner instance ("" while being handed out) of every lock file."""
    directory = _LockDir(lockdir)
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return {}
    result = {}
    for name in names:
        if name.isdigit():
            owner = _ReadOwner(f"{directory}/{name}")
            if owner is not None:
                result[int(name)] = owner
    return result


def GetInstanceUid(instance_name: str, lockdir: str | None = None) -> int | None:
    """The pool uid reserved for ``instance_name`` on this node, or None."""
    for uid, owner in sorted(GetReservedUids(lockdir).items()):
        if owner == instance_name:
            return uid
    return None
