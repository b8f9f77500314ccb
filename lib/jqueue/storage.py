"""The job queue on disk: job files, the serial file, the archive, the drain flag.

Layout (paths as in ``pathutils``, relative to the queue directory)::

  queue/serial                  last job ID handed out
  queue/drain                   present while the queue refuses new jobs
  queue/job-<id>                one JSON file per job (doc/design-masterd.rst)
  queue/archive/<id // 10000>/job-<id>
  queue/exec-log                opcodes started whose job file may not say so
  queue/.spare-<pid>-<n>        spare files for replacing job files (reused)

Every file is replaced atomically: job files by exchanging the names of
the new state, written to a spare file, and the old one (the spare file
is then reused, see ``_PutInPlace``), other files by a rename. Whether
the data is also fsynced is a choice of the caller per write: the job
queue syncs what a crash must not lose (a job accepted, a job finished)
and leaves the transient states (waiting, running, log lines) to the page
cache, which survives a daemon crash; after a machine crash a job found
queued or running is handled as on any restart.

The exec log (:class:`ExecLog`) records that an opcode starts executing
with one append to an open file, instead of rewriting the job file: on
the next start an opcode found there but "queued" or "waiting" in its job
file is handled as "running" (it fails, and never runs twice). Lines are
``<job id> <opcode index> <sec> <usec>``; the file is compacted to the
opcodes still running now and then, and emptied once a start has
recovered from it.
"""

from __future__ import annotations

import ctypes
import errno
import logging
import os
import re
import sys
import threading
import time
from collections.abc import Callable

from ganeti import constants
from ganeti import errors
from ganeti import serializer

_JOB_FILE_RE = re.compile(r"^job-(\d+)$")
_SPARE_FILE_RE = re.compile(r"^\.spare-\d+-\d+$")

_FILE_MODE = constants.JOB_QUEUE_FILES_PERMS


def JobFileName(job_id: int) -> str:
    """The base name of a job's file."""
    return f"job-{job_id}"


def ParseJobId(value: object) -> int:
    """A job ID from an int or a string of digits; JobLost-free validation."""
    if isinstance(value, bool):
        raise errors.OpPrereqError(f"Invalid job ID {value!r}", errors.ECODE_INVAL)
    if isinstance(value, int):
        job_id = value
    elif isinstance(value, str) and value.isdigit():
        job_id = int(value)
    else:
        raise errors.OpPrereqError(f"Invalid job ID {value!r}", errors.ECODE_INVAL)
    if job_id < 0:
        raise errors.OpPrereqError(f"Invalid job ID {value!r}", errors.ECODE_INVAL)
    return job_id


class JobStorage:
    """Files of one job queue directory."""

    #: Seconds between writes of the serial file (see _WriteSerial)
    SERIAL_WRITE_INTERVAL = 0.5

    def __init__(self, queue_dir: str, archive_dir: str | None = None,
                 fsync: bool = True) -> None:
        if not os.path.isabs(queue_dir):
            raise errors.ProgrammerError(f"Queue directory must be absolute, got {queue_dir!r}")
        self.queue_dir = queue_dir
        self.archive_dir = archive_dir or os.path.join(queue_dir, "archive")
        self.serial_file = os.path.join(queue_dir, "serial")
        self.drain_file = os.path.join(queue_dir, "drain")
        self.exec_log = ExecLog(os.path.join(queue_dir, "exec-log"))
        self.fsync = fsync
        self._serial_lock = threading.Lock()
        self._last_serial: int | None = None
        self._serial_write_lock = threading.Lock()
        self._written_serial = 0
        self._serial_written_at: float | None = None
        for path in (self.queue_dir, self.archive_dir):
            os.makedirs(path, mode=0o750, exist_ok=True)
        self._spare_lock = threading.Lock()
        self._spare_count = 0
        self._exchange = True
        # Spare files left by an earlier run are reused
        self._spares = [os.path.join(queue_dir, name) for name in os.listdir(queue_dir)
                        if _SPARE_FILE_RE.match(name)]

    # --- atomic writes ---------------------------------------------------------------

    def _WriteAtomic(self, path: str, data: bytes, sync: bool) -> None:
        dirname, base = os.path.split(path)
        # One writer per file at a time (the queue makes sure), so a fixed
        # temporary name is safe and saves mkstemp's retries
        tmp = os.path.join(dirname, f".{base}.{threading.get_ident()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, _FILE_MODE)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            if sync and self.fsync:
                _DataSync(fd)
        except BaseException:
            os.close(fd)
            _Unlink(tmp)
            raise
        os.close(fd)
        try:
            os.rename(tmp, path)
        except BaseException:
            _Unlink(tmp)
            raise

    # --- serial -----------------------------------------------------------------------

    def _ReadSerial(self) -> int:
        try:
            with open(self.serial_file, encoding="ascii") as fh:
                text = fh.read().strip()
        except FileNotFoundError:
            return 0
        if not text.isdigit():
            raise errors.JobQueueError(
                f"Invalid job queue serial file {self.serial_file}: {text[:40]!r}")
        return int(text)

    def AllocateJobIds(self, count: int, write_serial: bool = True) -> list[int]:
        """Reserve ``count`` new job IDs and persist the last one.

        With ``write_serial`` false the serial file is left to the next
        :meth:`FlushSerial` (for callers that must not touch the disk).
        """
        if count < 1:
            raise errors.ProgrammerError(f"Need a positive number of job IDs, got {count}")
        with self._serial_lock:
            if self._last_serial is None:
                # The job files win over a serial file that lost a write
                self._last_serial = max([self._ReadSerial()] + self.ListJobIds()[-1:]
                                        + self.ListArchivedJobIds()[-1:])
            first = self._last_serial + 1
            last = self._last_serial + count
            self._last_serial = last
        if write_serial:
            self._WriteSerial(force=False)
        return list(range(first, last + 1))

    def _WriteSerial(self, force: bool) -> None:
        # The serial file is only a hint: the job files (fsynced when a job
        # is accepted) count as well, see above. So it is written at most
        # every SERIAL_WRITE_INTERVAL seconds, one write covering all the
        # allocations made meanwhile, and not fsynced.
        with self._serial_write_lock:
            now = time.monotonic()
            if (not force and self._serial_written_at is not None
                    and now - self._serial_written_at < self.SERIAL_WRITE_INTERVAL):
                return
            with self._serial_lock:
                newest = self._last_serial
            if newest is None or newest <= self._written_serial:
                return
            self._WriteAtomic(self.serial_file, f"{newest}\n".encode("ascii"), sync=False)
            self._written_serial = newest
            self._serial_written_at = now

    def FlushSerial(self, force: bool = True) -> None:
        """Write the serial file if it lags behind (unless written recently
        and not ``force``)."""
        self._WriteSerial(force=force)

    # --- job files --------------------------------------------------------------------------

    def JobPath(self, job_id: int) -> str:
        """Path of a job's file in the queue."""
        return os.path.join(self.queue_dir, JobFileName(job_id))

    def ArchivedJobPath(self, job_id: int) -> str:
        """Path of a job's file in the archive."""
        return os.path.join(self.archive_dir,
                            str(job_id // constants.JOB_ARCHIVE_DIRECTORY_SIZE),
                            JobFileName(job_id))

    # --- job files: replaced through spare files ----------------------------------------
    #
    # A job file is replaced by writing the new state into a spare file and
    # exchanging the two names atomically (renameat2 RENAME_EXCHANGE): the
    # spare then holds the old state and is reused for the next write. So
    # rewriting a job allocates and frees no inode, which on ext4 is what
    # costs most (the allocator skips recently freed inodes one by one).
    # Where the exchange is not available, or for a new job file, the
    # spare is renamed into place instead (and a new spare made later).

    def _TakeSpare(self) -> str:
        with self._spare_lock:
            if self._spares:
                return self._spares.pop()
            self._spare_count += 1
            return os.path.join(self.queue_dir, f".spare-{os.getpid()}-{self._spare_count}")

    def _ReturnSpare(self, spare: str) -> None:
        with self._spare_lock:
            self._spares.append(spare)

    @staticmethod
    def _FillSpare(spare: str, data: bytes) -> int:
        """Open ``spare`` (made if missing), write ``data``; the open fd."""
        fd = os.open(spare, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, _FILE_MODE)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _PutInPlace(self, spare: str, path: str) -> None:
        """Move the written ``spare`` to ``path``; the spare goes back to the pool."""
        if _Exchange is not None and self._exchange:
            try:
                _Exchange(spare, path)
            except OSError as err:
                if err.errno in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
                    logging.info("Cannot exchange files in %s (%s), renaming instead",
                                 self.queue_dir, err)
                    self._exchange = False
                elif err.errno != errno.ENOENT:  # ENOENT: a new job file
                    raise
            else:
                self._ReturnSpare(spare)  # it holds the old state now
                return
        os.rename(spare, path)

    def WriteJob(self, job_id: int, data: dict, sync: bool) -> None:
        """Replace a job's file with ``data``; fsync it if ``sync``."""
        raw = serializer.DumpJsonBytes(data)
        spare = self._TakeSpare()
        try:
            fd = self._FillSpare(spare, raw)
            try:
                if sync and self.fsync:
                    _DataSync(fd)
            finally:
                os.close(fd)
            self._PutInPlace(spare, self.JobPath(job_id))
        except BaseException:
            self._ReturnSpare(spare)
            raise

    def WriteJobsSynced(self, items: list[tuple[int, bytes | None]]
                        ) -> dict[int, BaseException]:
        """Write several job files and sync them all, as one group.

        ``items`` are ``(job_id, data)``; data None means the file holds
        the wanted state already and only needs syncing. Every file is
        written first, then all are synced back to back (the first sync
        on a journaling file system commits the others' metadata too, so
        the rest cost little), then all are put in place. Returns the
        errors by job ID; the other files are written.
        """
        failed: dict[int, BaseException] = {}
        open_files: list[tuple[int, int, str | None]] = []  # (job_id, fd, spare)
        for job_id, data in items:
            spare: str | None = None
            try:
                if data is None:
                    fd = os.open(self.JobPath(job_id), os.O_RDONLY)
                else:
                    spare = self._TakeSpare()
                    fd = self._FillSpare(spare, data)
            except OSError as err:
                failed[job_id] = err
                if spare is not None:
                    self._ReturnSpare(spare)
                continue
            open_files.append((job_id, fd, spare))
        for job_id, fd, _ in open_files:
            try:
                if self.fsync:
                    _DataSync(fd)
            except OSError as err:
                failed[job_id] = err
            finally:
                os.close(fd)
        for job_id, _, spare in open_files:
            if spare is None:
                continue
            if job_id in failed:
                self._ReturnSpare(spare)
                continue
            try:
                self._PutInPlace(spare, self.JobPath(job_id))
            except OSError as err:
                failed[job_id] = err
                self._ReturnSpare(spare)
        return failed

    def ListJobIds(self) -> list[int]:
        """IDs of the jobs in the queue directory (not archived), sorted."""
        ids = []
        for name in os.listdir(self.queue_dir):
            match = _JOB_FILE_RE.match(name)
            if match:
                ids.append(int(match.group(1)))
        ids.sort()
        return ids

    def ListArchivedJobIds(self) -> list[int]:
        """IDs of the archived jobs, sorted."""
        ids = []
        try:
            subdirs = os.listdir(self.archive_dir)
        except FileNotFoundError:
            return []
        for sub in subdirs:
            if not sub.isdigit():
                continue
            try:
                names = os.listdir(os.path.join(self.archive_dir, sub))
            except NotADirectoryError:
                continue
            for name in names:
                match = _JOB_FILE_RE.match(name)
                if match:
                    ids.append(int(match.group(1)))
        ids.sort()
        return ids

    @staticmethod
    def _LoadFile(path: str) -> dict | None:
        try:
            with open(path, "rb") as fh:
                raw = fh.read()
        except FileNotFoundError:
            return None
        try:
            data = serializer.LoadJson(raw.decode("utf-8"))
        except (ValueError, UnicodeDecodeError, errors.ParseError) as err:
            raise errors.JobFileCorrupted(f"Cannot parse job file {path}: {err}") from err
        if not isinstance(data, dict):
            raise errors.JobFileCorrupted(f"Job file {path} does not hold an object")
        return data

    def LoadJob(self, job_id: int) -> dict | None:
        """The dict of a job in the queue directory, None if there is none."""
        return self._LoadFile(self.JobPath(job_id))

    def LoadArchivedJob(self, job_id: int) -> dict | None:
        """The dict of an archived job, None if there is none."""
        return self._LoadFile(self.ArchivedJobPath(job_id))

    def ArchiveJob(self, job_id: int) -> None:
        """Move a job's file into the archive."""
        dest = self.ArchivedJobPath(job_id)
        os.makedirs(os.path.dirname(dest), mode=0o750, exist_ok=True)
        os.rename(self.JobPath(job_id), dest)

    def RemoveJob(self, job_id: int) -> None:
        """Delete a job's file (a submission that failed half-way)."""
        _Unlink(self.JobPath(job_id))

    # --- drain flag ---------------------------------------------------------------------------

    def IsDrained(self) -> bool:
        """Whether the drain flag file exists."""
        return os.path.exists(self.drain_file)

    def SetDrainFlag(self, flag: bool) -> None:
        """Create or remove the drain flag file."""
        if flag:
            self._WriteAtomic(self.drain_file, b"", sync=True)
        else:
            _Unlink(self.drain_file)


#: fdatasync where there is one: a job file's data and size, not its times
_DataSync = getattr(os, "fdatasync", os.fsync)


def _MakeExchange() -> Callable[[str, str], None] | None:
    """``exchange(a, b)``: swap two paths atomically (Linux renameat2), or None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return None
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                          ctypes.c_uint]
    renameat2.restype = ctypes.c_int
    at_fdcwd, rename_exchange = -100, 2

    def exchange(old: str, new: str) -> None:
        if renameat2(at_fdcwd, os.fsencode(old), at_fdcwd, os.fsencode(new),
                     rename_exchange) != 0:
            code = ctypes.get_errno()
            raise OSError(code, os.strerror(code), new)
    return exchange


_Exchange = _MakeExchange()


class ExecLog:
    """Append-only record of the opcodes that started executing.

    :meth:`Started` must be called before an opcode runs, :meth:`Done`
    once the job file (synced) shows the opcode's end. Thread-safe.
    """

    #: Compact the file when it grows beyond this many bytes
    COMPACT_SIZE = 256 * 1024

    def __init__(self, path: str) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._live: dict[int, bytes] = {}   # job ID -> its line
        self._size = 0
        self._fd: int | None = None

    def Read(self) -> dict[int, dict[int, list[int]]]:
        """What the file records: job ID -> opcode index -> exec timestamp.

        Malformed lines (a write cut short by a crash) are skipped.
        """
        found: dict[int, dict[int, list[int]]] = {}
        try:
            with open(self.path, "rb") as fh:
                raw = fh.read()
        except FileNotFoundError:
            return found
        for line in raw.split(b"\n"):
            parts = line.split()
            if len(parts) != 4 or not all(part.isdigit() for part in parts):
                if line.strip():
                    logging.warning("Ignoring malformed line %r in %s", line[:80], self.path)
                continue
            job_id, idx, sec, usec = (int(part) for part in parts)
            found.setdefault(job_id, {})[idx] = [sec, usec]
        return found

    def Open(self) -> None:
        """Start a new, empty log (after recovering from the old one)."""
        with self._lock:
            self._Reopen([])

    def _Reopen(self, lines: list[bytes]) -> None:
        # Atomically replace the file by one with ``lines``, append to it
        tmp = f"{self.path}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, _FILE_MODE)
        try:
            data = b"".join(lines)
            if data:
                os.write(fd, data)
            os.rename(tmp, self.path)
        except BaseException:
            os.close(fd)
            _Unlink(tmp)
            raise
        if self._fd is not None:
            os.close(self._fd)
        self._fd = fd
        self._size = len(data)

    def Close(self) -> None:
        """Stop appending (the file stays for the next start)."""
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

    def Started(self, job_id: int, op_index: int, timestamp: list[int]) -> None:
        """Record that the job's opcode starts executing (before it does)."""
        line = f"{job_id} {op_index} {timestamp[0]} {timestamp[1]}\n".encode("ascii")
        with self._lock:
            if self._fd is None:
                raise errors.JobQueueError(f"Exec log {self.path} is not open")
            if self._size + len(line) > self.COMPACT_SIZE:
                self._Reopen(list(self._live.values()))
            os.write(self._fd, line)
            self._size += len(line)
            self._live[job_id] = line

    def Done(self, job_id: int) -> None:
        """The job file now records the end of the job's last started opcode."""
        with self._lock:
            self._live.pop(job_id, None)

    def LiveJobs(self) -> list[int]:
        """Jobs with a started opcode whose end is not on disk yet."""
        with self._lock:
            return sorted(self._live)


def _Unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError as err:
        if err.errno != errno.ENOENT:
            logging.warning("Cannot remove %s: %s", path, err)
