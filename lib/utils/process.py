"""Running commands and handling processes and pid files.

:func:`RunCmd` is the one way the system runs external programs. A command
given as a list is executed directly; a string goes through ``/bin/sh -c``.
Each command runs in its own session (process group) so that on timeout the
whole tree it started can be terminated, not only its first process.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import signal
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ganeti import errors
from ganeti.utils import retry
from ganeti.utils.text import ShellQuoteArgs

__all__ = [
    "IsProcessAlive",
    "KillProcess",
    "ReadLockedPidFile",
    "ReadPidFile",
    "RemovePidFile",
    "RunCmd",
    "RunResult",
    "WritePidFile",
]

#: Seconds a command gets between SIGTERM and SIGKILL after a timeout
_TIMEOUT_KILL_GRACE = 2.0

#: timeout_action values of RunResult
TIMEOUT_NONE = None
TIMEOUT_TERM = "term"
TIMEOUT_KILL = "kill"


def _FormatSeconds(value: float) -> str:
    return f"{value:g}s"


class RunResult:
    """The outcome of :func:`RunCmd`.

    @ivar exit_code: the exit status, or None if a signal ended the command
    @ivar signal: the signal number that ended it, or None
    @ivar stdout: its standard output ("" when written to a file)
    @ivar stderr: its standard error ("" when written to a file)
    @ivar cmd: the command as given
    @ivar timeout: the timeout that expired, or None
    @ivar timeout_action: None, "term" or "kill": how it was stopped
    """

    def __init__(self, exit_code: int | None, signal_: int | None,
                 stdout: str, stderr: str, cmd: str | Sequence[str],
                 timeout_action: str | None = TIMEOUT_NONE,
                 timeout: float | None = None):
        self.cmd = cmd
        self.exit_code = exit_code
        self.signal = signal_
        self.stdout = stdout
        self.stderr = stderr
        self.timeout = timeout if timeout_action is not None else None
        self.timeout_action = timeout_action

        reasons = []
        if self.timeout is not None:
            reasons.append(f"timed out after {_FormatSeconds(self.timeout)}")
        if signal_ is not None:
            reasons.append(f"terminated by signal {signal_}")
        elif exit_code:
            reasons.append(f"exited with exit code {exit_code}")
        if len(reasons) == 2:
            self.fail_reason: str | None = f"{reasons[0]} ({reasons[1]})"
        else:
            self.fail_reason = reasons[0] if reasons else None
        self.failed = self.fail_reason is not None
        if self.failed:
            logging.debug("Command '%s' failed (%s); output: %s",
                          self.cmd, self.fail_reason, self.output)

    @property
    def output(self) -> str:
        """Standard output followed by standard error."""
        return self.stdout + self.stderr

    def __repr__(self) -> str:
        return (f"<RunResult cmd={self.cmd!r} exit_code={self.exit_code}"
                f" signal={self.signal} failed={self.failed}>")


def _BuildEnvironment(env: Mapping[str, str] | None,
                      reset: bool) -> dict[str, str]:
    """The environment for a command.

    Unless reset, it is ours with LC_ALL=C, so that tools print messages we
    can parse; ``env`` is added on top.
    """
    if reset:
        result: dict[str, str] = {}
    else:
        result = dict(os.environ)
        result["LC_ALL"] = "C"
    if env:
        result.update(env)
    return result


def _SignalCommand(proc: subprocess.Popen, signum: int, group: bool) -> None:
    """Send a signal to the command (and its whole process group)."""
    try:
        if group:
            os.killpg(proc.pid, signum)
        else:
            proc.send_signal(signum)
    except ProcessLookupError:
        pass


def _Decode(data: bytes | None) -> str:
    return data.decode("utf-8", errors="replace") if data else ""


def _Communicate(proc: subprocess.Popen, input_data: bytes | None,
                 timeout: float | None, group: bool
                 ) -> tuple[bytes | None, bytes | None, str | None]:
    """Wait for the command, stopping it when the timeout expires.

    @return: (stdout, stderr, timeout_action)
    """
    try:
        out, err = proc.communicate(input_data, timeout=timeout)
        return out, err, TIMEOUT_NONE
    except subprocess.TimeoutExpired:
        pass

    action = TIMEOUT_TERM
    _SignalCommand(proc, signal.SIGTERM, group)
    try:
        out, err = proc.communicate(timeout=_TIMEOUT_KILL_GRACE)
        return out, err, action
    except subprocess.TimeoutExpired:
        pass

    action = TIMEOUT_KILL
    _SignalCommand(proc, signal.SIGKILL, group)
    try:
        out, err = proc.communicate(timeout=_TIMEOUT_KILL_GRACE)
    except subprocess.TimeoutExpired as exc:
        # A process outside the group still holds our pipes: stop reading
        proc.kill()
        proc.wait()
        out, err = exc.stdout, exc.stderr
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()
    return out, err, action


def RunCmd(cmd: str | Sequence[str], env: Mapping[str, str] | None = None,
           output: str | None = None, cwd: str = "/",
           reset_env: bool = False, interactive: bool = False,
           timeout: float | None = None,
           input_data: str | bytes | None = None,
           noclose_fds: Iterable[int] | None = None) -> RunResult:
    """Run a command and return its :class:`RunResult`.

    @param cmd: a list of arguments (run directly) or a string (run with
        /bin/sh -c)
    @param env: variables added to our environment (or, with
        ``reset_env``, the whole environment)
    @param output: a file to append stdout and stderr to, instead of
        capturing them
    @param cwd: the working directory
    @param interactive: inherit our stdin/stdout/stderr (nothing captured;
        the command stays in our process group so that terminal signals
        reach it)
    @param timeout: seconds after which the command gets SIGTERM, then
        SIGKILL after a short grace; the result reports the timeout
    @param input_data: written to the command's standard input (otherwise
        it reads /dev/null)
    @param noclose_fds: file descriptors the command inherits
    @raise errors.ProgrammerError: on invalid arguments
    @raise errors.OpExecError: if the program or ``cwd`` does not exist
    """
    if interactive and (output is not None or input_data is not None):
        raise errors.ProgrammerError("Interactive commands take neither an"
                                     " output file nor input data")
    if timeout is not None and timeout < 0:
        raise errors.ProgrammerError(f"Negative timeout {timeout}")
    args: str | list[str]
    if isinstance(cmd, str):
        shell = True
        args = strcmd = cmd
    else:
        shell = False
        try:
            args = [os.fspath(arg) for arg in cmd]
        except TypeError as err:
            raise errors.ProgrammerError(f"Invalid command {cmd!r}: {err}") \
                from err
        if not args:
            raise errors.ProgrammerError("Empty command")
        strcmd = ShellQuoteArgs(args)
    if isinstance(input_data, str):
        input_data = input_data.encode("utf-8")

    logging.debug("RunCmd %s%s", strcmd,
                  f" (timeout {timeout}s)" if timeout is not None else "")

    group = not interactive
    popen_kwargs: dict[str, Any] = {
        "shell": shell,
        "env": _BuildEnvironment(env, reset_env),
        "cwd": cwd,
        "close_fds": True,
        "pass_fds": tuple(noclose_fds or ()),
        "start_new_session": group,
    }
    out_fh = None
    if interactive:
        stdio: dict[str, Any] = {"stdin": None, "stdout": None, "stderr": None}
    else:
        stdin = subprocess.PIPE if input_data is not None else subprocess.DEVNULL
        if output is None:
            stdio = {"stdin": stdin, "stdout": subprocess.PIPE,
                     "stderr": subprocess.PIPE}
        else:
            out_fh = open(output, "ab")
            stdio = {"stdin": stdin, "stdout": out_fh,
                     "stderr": subprocess.STDOUT}
    try:
        try:
            proc = subprocess.Popen(args, **popen_kwargs, **stdio)
        except FileNotFoundError as err:
            if err.filename == cwd and not os.path.isdir(cwd):
                raise errors.OpExecError(f"Can't execute '{strcmd}': working"
                                         f" directory {cwd} not found") from err
            raise errors.OpExecError(f"Can't execute '{strcmd}': not found"
                                     f" ({err})") from err
        except PermissionError as err:
            raise errors.OpExecError(f"Can't execute '{strcmd}': {err}") \
                from err
        with proc:
            out, err_data, action = _Communicate(proc, input_data, timeout,
                                                 group)
    finally:
        if out_fh is not None:
            out_fh.close()

    status = proc.returncode
    if status is not None and status < 0:
        exit_code, signum = None, -status
    else:
        exit_code, signum = status, None
    return RunResult(exit_code, signum, _Decode(out), _Decode(err_data), cmd,
                     timeout_action=action, timeout=timeout)


def IsProcessAlive(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie."""
    if pid <= 0:
        return False
    try:
        with open(f"/proc/{pid}/status", encoding="ascii",
                  errors="replace") as fh:
            for line in fh:
                if line.startswith("State:"):
                    state = line.split()[1:2]
                    return state not in (["Z"], ["X"])
    except FileNotFoundError:
        return False
    except OSError as err:
        if err.errno in (errno.ENOENT, errno.ESRCH):
            return False
    # No /proc (or no State line): ask the kernel directly
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def KillProcess(pid: int, signal_: int = signal.SIGTERM, timeout: float = 30,
                waitpid: bool = False) -> None:
    """Send ``signal_`` to a process; SIGKILL it if it outlives ``timeout``.

    With ``timeout`` <= 0 the signal is sent and nothing is awaited. Set
    ``waitpid`` for a child of ours, so that it is reaped.

    @raise errors.ProgrammerError: for a pid <= 0 (which would signal a
        whole process group)
    """
    if pid <= 0:
        raise errors.ProgrammerError(f"Invalid pid {pid}")

    def _Send(signum: int) -> None:
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass

    def _Gone() -> bool:
        if waitpid:
            try:
                reaped, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                return not IsProcessAlive(pid)
            if reaped:
                return True
        return not IsProcessAlive(pid)

    if not IsProcessAlive(pid):
        return
    _Send(signal_)
    if timeout <= 0:
        return

    def _Check() -> None:
        if not _Gone():
            raise retry.RetryAgain()

    try:
        retry.Retry(_Check, (0.01, 1.5, 0.1), timeout)
    except retry.RetryTimeout:
        logging.warning("Process %d survived signal %d for %ss, sending"
                        " SIGKILL", pid, signal_, timeout)
        _Send(signal.SIGKILL)
        if waitpid:
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass


def WritePidFile(pidfile: str) -> int:
    """Write our pid to ``pidfile`` and keep it locked.

    The returned descriptor must stay open for as long as the process runs:
    the lock on it tells others that the pid in the file is alive.

    @raise errors.PidFileLockError: if another process holds the file
    """
    fd = os.open(pidfile, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as err:
        os.close(fd)
        raise errors.PidFileLockError(f"Process already running? Pid file"
                                      f" {pidfile} is locked (pid"
                                      f" {ReadPidFile(pidfile)})") from err
    except BaseException:
        os.close(fd)
        raise
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode("ascii"))
    os.fsync(fd)
    return fd


def ReadPidFile(pidfile: str) -> int:
    """Return the pid stored in ``pidfile``; 0 if missing or invalid."""
    try:
        with open(pidfile, encoding="ascii") as fh:
            text = fh.read(64)
    except FileNotFoundError:
        return 0
    except (OSError, UnicodeDecodeError) as err:
        logging.warning("Can't read pid file %s: %s", pidfile, err)
        return 0
    try:
        pid = int(text.strip())
    except ValueError:
        logging.info("Invalid pid file %s: %r", pidfile, text)
        return 0
    return pid if pid > 0 else 0


def ReadLockedPidFile(pidfile: str) -> int | None:
    """Return the pid in ``pidfile`` if a live process holds its lock.

    @return: the pid, or None when the file is missing or not locked
    """
    try:
        fd = os.open(pidfile, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return ReadPidFile(pidfile) or None
        # We got the lock, so nobody holds it
        return None
    finally:
        os.close(fd)


def RemovePidFile(pidfile: str) -> None:
    """Remove a pid file, ignoring errors (it may already be gone)."""
    try:
        os.unlink(pidfile)
    except OSError as err:
        if err.errno != errno.ENOENT:
            logging.warning("Can't remove pid file %s: %s", pidfile, err)
