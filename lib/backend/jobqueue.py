"""The job queue copy on master candidates.

In Ganeti the master replicates its job files to every master candidate,
so that a candidate can take over the queue; these are the node side of
that (our master does not call them yet). They write, rename and purge
files strictly below the queue directory, holding the queue lock so that
concurrent requests (in threads or child processes of noded) do not
interleave.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence

from ganeti import constants, errors, pathutils, runtime, utils
from ganeti.backend import Fail

#: Seconds a request waits for the queue lock
QUEUE_LOCK_TIMEOUT = 10


def _MasterdIds() -> tuple[int, int]:
    """The master daemon user's uid/gid, or -1/-1 where ownership is left
    alone (see runtime.FileOwnerIds)."""
    return runtime.FileOwnerIds("masterd", "masterd")


def _EnsureQueueFile(path: str) -> None:
    """Refuse paths that are not normalised and strictly below the queue."""
    if not utils.IsNormAbsPath(path):
        Fail("Job queue file name '%s' is not a normalised absolute path", path)
    if not utils.IsBelowDir(pathutils.QUEUE_DIR, path):
        Fail("Passed job queue file '%s' does not belong to the queue"
             " directory '%s'", path, pathutils.QUEUE_DIR)
    if path == pathutils.JOB_QUEUE_LOCK_FILE:
        Fail("The job queue lock file cannot be written over RPC")


@contextlib.contextmanager
def _QueueLock() -> Iterator[None]:
    uid, gid = _MasterdIds()
    try:
        utils.EnsureDirs([(pathutils.QUEUE_DIR, constants.SECURE_DIR_MODE, uid, gid),
                          (pathutils.JOB_QUEUE_ARCHIVE_DIR, constants.SECURE_DIR_MODE,
                           uid, gid)])
    except errors.GenericError as err:
        Fail("Job queue directory cannot be set up: %s", err)
    with utils.FileLock.Open(pathutils.JOB_QUEUE_LOCK_FILE) as lock:
        try:
            lock.Exclusive(blocking=True, timeout=QUEUE_LOCK_TIMEOUT)
        except errors.LockError as err:
            Fail("Cannot lock the job queue: %s", err)
        yield


def JobQueueUpdate(file_name: str, content: bytes) -> None:
    """Write (atomically) a file in the queue directory."""
    _EnsureQueueFile(file_name)
    uid, gid = _MasterdIds()
    with _QueueLock():
        try:
            utils.WriteFile(file_name, data=content,
                            mode=constants.JOB_QUEUE_FILES_PERMS, uid=uid, gid=gid)
        except OSError as err:
            Fail("Cannot write job queue file '%s': %s", file_name, err)


def JobQueueRename(renames: Sequence[tuple[str, str]]) -> list[None]:
    """Rename queue files (into the archive, usually); all paths are checked
    before anything is renamed."""
    for old, new in renames:
        _EnsureQueueFile(old)
        _EnsureQueueFile(new)
    uid, gid = _MasterdIds()
    result: list[None] = []
    with _QueueLock():
        for old, new in renames:
            try:
                utils.RenameFile(old, new, mkdir=True,
                                 mkdir_mode=constants.SECURE_DIR_MODE,
                                 dir_uid=uid, dir_gid=gid)
            except OSError as err:
                Fail("Cannot rename job queue file '%s' to '%s': %s", old, new, err)
            result.append(None)
    return result


def _RemoveFilesBelow(directory: str, keep: frozenset[str]) -> None:
    for dirpath, _, filenames in os.walk(directory):
        for name in filenames:
            path = os.path.join(dirpath, name)
            if path not in keep and os.path.isfile(path) and not os.path.islink(path):
                utils.RemoveFile(path)


def JobQueuePurge() -> None:
    """Remove all job files and archived jobs (keeping the lock file)."""
    with _QueueLock():
        keep = frozenset([pathutils.JOB_QUEUE_LOCK_FILE])
        for name in os.listdir(pathutils.QUEUE_DIR):
            path = os.path.join(pathutils.QUEUE_DIR, name)
            if path not in keep and os.path.isfile(path) and not os.path.islink(path):
                utils.RemoveFile(path)
        _RemoveFilesBelow(pathutils.JOB_QUEUE_ARCHIVE_DIR, keep)


def JobQueueSetDrainFlag(flag: bool) -> None:
    """Set or clear the queue's drain flag (a file whose presence drains)."""
    with _QueueLock():
        if flag:
            utils.WriteFile(pathutils.JOB_QUEUE_DRAIN_FILE, data="",
                            mode=constants.JOB_QUEUE_FILES_PERMS)
        else:
            utils.RemoveFile(pathutils.JOB_QUEUE_DRAIN_FILE)
