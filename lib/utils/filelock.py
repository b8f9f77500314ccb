"""Advisory locks on files (``flock``), shared or exclusive, with timeouts.

Locks taken with flock belong to the open file: two FileLock objects on the
same path conflict even inside one process, and a lock disappears when its
file is closed (also when the process dies), so a crashed holder never
leaves a stale lock behind.

A timed wait polls with a growing pause (1 ms up to 50 ms): flock has no
timeout of its own, and signals (alarm) would not be thread-safe.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Callable
from typing import IO, Any

from ganeti import errors

__all__ = [
    "FileLock",
]

_POLL_START = 0.001
_POLL_FACTOR = 2.0
_POLL_MAX = 0.05


class FileLock:
    """A lock on an open file.

    Build it from a path (the file is created if needed), an open file
    object or a file descriptor; the lock owns the file from then on and
    :meth:`Close` closes it. Used as a context manager it closes the file,
    and so releases any lock, on exit::

        with FileLock.Open(path) as lock:
            lock.Exclusive(timeout=10)
            ...
    """

    def __init__(self, fd_or_path: str | int | IO[Any],
                 filename: str | None = None,
                 _time_fn: Callable[[], float] = time.monotonic,
                 _sleep_fn: Callable[[float], Any] = time.sleep):
        self._file: IO[Any] | None = None
        self._fd: int | None
        if isinstance(fd_or_path, (str, os.PathLike)):
            path = os.fspath(fd_or_path)
            try:
                self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC,
                                   0o664)
            except PermissionError:
                # flock() works on a read-only descriptor: an unprivileged
                # daemon may lock a file that root created (e.g. ssconf's)
                self._fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            self.filename = filename or path
        elif isinstance(fd_or_path, int):
            self._fd = fd_or_path
            self.filename = filename or f"<fd {fd_or_path}>"
        elif hasattr(fd_or_path, "fileno"):
            self._file = fd_or_path
            self._fd = fd_or_path.fileno()
            self.filename = filename or str(getattr(fd_or_path, "name",
                                                    f"<fd {self._fd}>"))
        else:
            raise errors.ProgrammerError(f"FileLock needs a path, a file or a"
                                         f" file descriptor, not"
                                         f" {fd_or_path!r}")
        self._time_fn = _time_fn
        self._sleep_fn = _sleep_fn

    @classmethod
    def Open(cls, filename: str) -> FileLock:
        """Open (creating it if needed) ``filename`` and wrap it in a lock."""
        return cls(filename)

    def __enter__(self) -> FileLock:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.Close()

    def __del__(self) -> None:
        # Only close what is still open; never raise from a finaliser
        try:
            self.Close()
        except Exception:  # pragma: no cover
            pass

    def fileno(self) -> int:
        """The locked file descriptor."""
        if self._fd is None:
            raise errors.ProgrammerError(f"Lock on {self.filename} is closed")
        return self._fd

    def Close(self) -> None:
        """Close the file, releasing any lock held on it."""
        if self._fd is None:
            return
        if self._file is not None:
            self._file.close()
            self._file = None
        else:
            os.close(self._fd)
        self._fd = None

    def _Flock(self, operation: int, blocking: bool, timeout: float | None,
               errmsg: str) -> None:
        """Apply ``operation`` (LOCK_SH/EX/UN) as the public methods ask.

        A timeout means a timed wait; otherwise ``blocking`` chooses between
        waiting for ever and a single attempt.
        """
        fd = self.fileno()
        if timeout is None and blocking:
            fcntl.flock(fd, operation)
            return
        deadline = self._time_fn() + (timeout or 0.0)
        pause = _POLL_START
        while True:
            try:
                fcntl.flock(fd, operation | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                pass
            remaining = deadline - self._time_fn()
            if timeout is None or remaining <= 0:
                raise errors.LockError(f"{errmsg} {self.filename}"
                                       f" (held by another process)")
            self._sleep_fn(min(pause, remaining))
            pause = min(pause * _POLL_FACTOR, _POLL_MAX)

    def Shared(self, blocking: bool = True,
               timeout: float | None = None) -> None:
        """Take (or convert to) a shared lock.

        @raise errors.LockError: naming the file, if the lock was not
            obtained in time (or at once, when not blocking)
        """
        self._Flock(fcntl.LOCK_SH, blocking, timeout,
                    "Failed to lock in shared mode")

    def Exclusive(self, blocking: bool = True,
                  timeout: float | None = None) -> None:
        """Take (or convert to) an exclusive lock.

        @raise errors.LockError: as for :meth:`Shared`
        """
        self._Flock(fcntl.LOCK_EX, blocking, timeout,
                    "Failed to lock in exclusive mode")

    def Unlock(self, blocking: bool = True,
               timeout: float | None = None) -> None:
        """Release the lock (the file stays open for locking again)."""
        self._Flock(fcntl.LOCK_UN, blocking, timeout, "Failed to unlock")
