"""The job queue on disk: job files, the serial file, the archive, the drain flag.

Layout (paths as in ``pathutils``, relative to the queue directory)::

  queue/serial                  last job ID handed out
  queue/drain                   present while the queue refuses new jobs
  queue/job-<id>                one JSON file per job (doc/design-masterd.rst)
  queue/archive/<id // 10000>/job-<id>

Every file is replaced atomically (temporary file, then rename). Whether
the data is also fsynced is a choice of the caller per write: the job
queue syncs what a crash must not lose (a job accepted, a job finished)
and leaves the transient states (waiting, running, log lines) to the page
cache, which survives a daemon crash; after a machine crash a job found
queued or running is handled as on any restart.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import threading
import time

from ganeti import constants
from ganeti import errors
from ganeti import serializer

_JOB_FILE_RE = re.compile(r"^job-(\d+)$")

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
        self.fsync = fsync
        self._serial_lock = threading.Lock()
        self._last_serial: int | None = None
        self._serial_write_lock = threading.Lock()
        self._written_serial = 0
        self._serial_written_at: float | None = None
        for path in (self.queue_dir, self.archive_dir):
            os.makedirs(path, mode=0o750, exist_ok=True)

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
                os.fsync(fd)
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

    def AllocateJobIds(self, count: int) -> list[int]:
        """Reserve ``count`` new job IDs and persist the last one."""
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

    def FlushSerial(self) -> None:
        """Write the serial file now if it lags behind."""
        self._WriteSerial(force=True)

    # --- job files --------------------------------------------------------------------------

    def JobPath(self, job_id: int) -> str:
        """Path of a job's file in the queue."""
        return os.path.join(self.queue_dir, JobFileName(job_id))

    def ArchivedJobPath(self, job_id: int) -> str:
        """Path of a job's file in the archive."""
        return os.path.join(self.archive_dir,
                            str(job_id // constants.JOB_ARCHIVE_DIRECTORY_SIZE),
                            JobFileName(job_id))

    def WriteJob(self, job_id: int, data: dict, sync: bool) -> None:
        """Replace a job's file with ``data``; fsync it if ``sync``."""
        self._WriteAtomic(self.JobPath(job_id), serializer.DumpJsonBytes(data), sync)

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


def _Unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError as err:
        if err.errno != errno.ENOENT:
            logging.warning("Cannot remove %s: %s", path, err)
