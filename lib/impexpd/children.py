"""Child processes of the import/export daemon and how it waits for them.

Each child (socat, the compressor, the data command) runs in a process
group of its own, so that killing it also kills whatever it started (a
shell command's pipeline), yet stays in the daemon's session (the node
daemon starts the daemon as a session leader and can find leftovers by
session if the daemon itself is killed hard). A thread per child reads its
standard error line by line and hands each line on; at the end it reaps
the child; after each line and at the end it wakes the main thread.

The main thread sleeps in :meth:`Waker.Wait`; children ending, the pump
thread and signal handlers wake it by writing a byte to a pipe, which is
safe from a signal handler (unlike taking a lock).
"""

from __future__ import annotations

import logging
import os
import select
import signal
import subprocess
import threading
from collections.abc import Callable, Sequence
from typing import Any

#: Seconds a child gets between SIGTERM and SIGKILL
KILL_GRACE = 2.0
#: Seconds the output of an ended child may lag behind its end
OUTPUT_GRACE = 1.0


class Waker:
    """A pipe the main thread waits on and anybody may write to."""

    def __init__(self) -> None:
        self._rfd, self._wfd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)

    def Wake(self) -> None:
        """Wake the waiting thread (safe in signal handlers)."""
        try:
            os.write(self._wfd, b"\0")
        except (BlockingIOError, OSError):
            # A full pipe will wake the waiter anyway
            pass

    def Wait(self, timeout: float, fds: Sequence[int] = ()) -> set[int]:
        """Sleep until woken, one of ``fds`` is readable, or ``timeout``
        seconds have passed; return the readable ``fds``."""
        try:
            readable, _, _ = select.select([self._rfd, *fds], [], [], max(0.0, timeout))
        except InterruptedError:
            return set()
        if self._rfd in readable:
            try:
                while os.read(self._rfd, 4096):
                    pass
            except BlockingIOError:
                pass
        return {fd for fd in readable if fd != self._rfd}

    def Close(self) -> None:
        """Close the pipe."""
        for fd in (self._rfd, self._wfd):
            try:
                os.close(fd)
            except OSError:
                pass


def DescribeExit(returncode: int) -> str:
    """'exit code N' or 'signal N' for a Popen return code."""
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"killed by {name}"
    return f"exit code {returncode}"


class Child:
    """A running child process with its standard error read by a thread.

    ``on_line(child, line)`` gets each line of standard error (decoded,
    without its end of line). ``stdin``/``stdout`` are as for Popen (a
    descriptor is duplicated into the child: close yours when done).
    """

    def __init__(self, label: str, args: Sequence[str], waker: Waker,
                 on_line: Callable[[Child, str], None], stdin: Any = subprocess.DEVNULL,
                 stdout: Any = subprocess.DEVNULL) -> None:
        self.label = label
        self.args = list(args)
        self.last_line: str | None = None
        self._synced = False
        self._waker = waker
        self._on_line = on_line
        logging.info("Starting %s: %s", label, " ".join(self.args))
        self.proc = subprocess.Popen(self.args, stdin=stdin, stdout=stdout,
                                     stderr=subprocess.PIPE, close_fds=True,
                                     process_group=0)
        self.pid = self.proc.pid
        self._reader = threading.Thread(target=self._ReadStderr, daemon=True,
                                        name=f"stderr-{label}")
        self._reader.start()

    def _ReadStderr(self) -> None:
        stream = self.proc.stderr
        assert stream is not None
        try:
            for raw in stream:
                line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
                if not line:
                    continue
                self.last_line = line
                try:
                    self._on_line(self, line)
                except Exception:  # a bad line must not stop the reading
                    logging.exception("Error handling output of %s", self.label)
                # The line may be news the main thread waits for
                self._waker.Wake()
        except (OSError, ValueError):
            pass
        finally:
            stream.close()
        self.proc.wait()
        logging.info("%s (pid %d) ended: %s", self.label, self.pid,
                     DescribeExit(self.proc.returncode))
        self._waker.Wake()

    def Poll(self) -> int | None:
        """The return code, or None while the child runs.

        Once the child has ended, its last lines of output are waited for
        (a moment at most), so that what explains its end is known.
        """
        code = self.proc.poll()
        if code is not None and not self._synced:
            self._reader.join(OUTPUT_GRACE)
            self._synced = True
        return code

    def Describe(self) -> str:
        """'<label> failed (exit code N): <last line>' for a failed child."""
        code = self.proc.returncode
        text = f"{self.label} failed ({DescribeExit(code) if code is not None else 'running'})"
        if self.last_line:
            text += f": {self.last_line}"
        return text

    def Kill(self, grace: float = KILL_GRACE) -> None:
        """Stop the child and its process group (SIGTERM, then SIGKILL
        after ``grace`` seconds) and reap it."""
        if self.proc.poll() is None:
            self._SignalGroup(signal.SIGTERM)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                logging.warning("%s (pid %d) survived SIGTERM, killing it", self.label,
                                self.pid)
                self._SignalGroup(signal.SIGKILL)
                self.proc.wait()
        # Whatever the child started and left behind in its group
        self._SignalGroup(signal.SIGKILL)
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                try:
                    stream.close()
                except OSError:
                    pass

    def _SignalGroup(self, signum: int) -> None:
        try:
            os.killpg(self.pid, signum)
        except (ProcessLookupError, PermissionError):
            pass
