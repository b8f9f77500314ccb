"""Helpers shared by the daemons: logging, detaching, ready files.

Logging goes to the daemon's log file. When a record cannot be written
there (full or failing disk, missing directory), it goes to the system
console instead, so that a node with a broken disk still tells its operator
what is happening (seed 003, "Node daemon availability").
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import socket
import sys
from typing import TextIO
from collections.abc import Callable

from ganeti import constants, errors, utils

#: Where records go that cannot be written to the log file
CONSOLE_DEVICE = "/dev/console"

_LOG_FORMAT = "%(asctime)s: %(name)s pid=%(process)d %(levelname)s %(message)s"
_CONSOLE_FORMAT = "%(name)s pid=%(process)d %(levelname)s %(message)s"


class LogFileWithConsoleFallback(logging.Handler):
    """Append records to a file; write those that fail to the console.

    The file is opened lazily and reopened after a failure, so logging
    resumes once the disk works again. The console is opened per record;
    when it fails as well, ``fallback_stream`` (stderr) gets the record if
    it is still open.
    """

    def __init__(self, filename: str, console: str = CONSOLE_DEVICE,
                 fallback_stream: TextIO | None = None):
        super().__init__()
        self.filename = filename
        self.console = console
        self.fallback_stream = fallback_stream
        self._stream: TextIO | None = None
        self.console_records = 0

    def _Open(self) -> TextIO:
        if self._stream is None:
            # 0600 whatever the umask (a daemon may log before it detaches)
            fd = os.open(self.filename, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC,
                         0o600)
            # A lone surrogate (from a client's JSON) must not make the
            # record, and the code logging it, fail
            self._stream = open(fd, "a", encoding="utf-8", errors="backslashreplace")
        return self._stream

    def _CloseStream(self) -> None:
        if self._stream is not None:
            try:
                self._stream.close()
            except OSError:
                pass
            self._stream = None

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record) + "\n"
        except Exception:
            self.handleError(record)
            return
        try:
            stream = self._Open()
            stream.write(text)
            stream.flush()
            return
        except OSError as err:
            self._CloseStream()
            failure = f"(cannot write to {self.filename}: {err.strerror or err})"
        self.console_records += 1
        line = f"ganeti: {text.rstrip()} {failure}\n"
        try:
            with open(self.console, "a", encoding="utf-8",
                      errors="backslashreplace") as console:
                console.write(line)
            return
        except OSError:
            pass
        if self.fallback_stream is not None:
            try:
                self.fallback_stream.write(line)
                self.fallback_stream.flush()
            except (OSError, ValueError):  # closed; or it cannot encode
                pass

    def close(self) -> None:
        self.acquire()
        try:
            self._CloseStream()
        finally:
            self.release()
        super().close()


def SetupLogging(program: str, logfile: str | None, debug: bool = False,
                 stderr_logging: bool = False, syslog: bool = False,
                 console: str = CONSOLE_DEVICE) -> logging.Logger:
    """Configure the root logger of a daemon.

    Records go to ``logfile`` (with console fallback), or to syslog with
    ``syslog``; with ``stderr_logging`` (foreground mode) to stderr as well.
    """
    root = logging.getLogger("")
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    root.setLevel(logging.DEBUG if debug else logging.INFO)
    formatter = logging.Formatter(_LOG_FORMAT)

    if syslog:
        address = "/dev/log" if os.path.exists("/dev/log") else ("localhost", 514)
        sys_handler = logging.handlers.SysLogHandler(
            address=address, facility=logging.handlers.SysLogHandler.LOG_DAEMON)
        sys_handler.setFormatter(logging.Formatter(f"{program}: {_CONSOLE_FORMAT}"))
        root.addHandler(sys_handler)
    elif logfile:
        file_handler = LogFileWithConsoleFallback(
            logfile, console=console,
            fallback_stream=None if stderr_logging else sys.stderr)
        file_handler.setFormatter(formatter)
        root.addHandler(file_handler)
    if stderr_logging:
        err_handler = logging.StreamHandler(sys.stderr)
        err_handler.setFormatter(logging.Formatter(_CONSOLE_FORMAT))
        root.addHandler(err_handler)
    return root


def Daemonize() -> Callable[[], None]:
    """Detach from the terminal; return, in the detached process, a function
    to call once the daemon is ready.

    The original process waits for that call and then exits 0, or exits 1
    if the daemon died first, so that a start script learns whether
    startup worked.
    """
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid:
        os.close(wfd)
        data = os.read(rfd, 1)
        os._exit(0 if data == b"1" else 1)
    os.close(rfd)
    os.setsid()
    if os.fork():
        os._exit(0)
    os.chdir("/")
    os.umask(0o077)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    if devnull > 2:
        os.close(devnull)

    def _Ready() -> None:
        os.write(wfd, b"1")
        os.close(wfd)
    return _Ready


def GetDaemonPort(daemon_name: str) -> int:
    """A daemon's port: from the services database, else Ganeti's default."""
    proto, default = constants.DAEMONS_PORTS[daemon_name]
    try:
        return socket.getservbyname(daemon_name, proto)
    except OSError:
        return default


def WriteReadyFile(path: str, address: str, port: int) -> None:
    """Write "address port pid" atomically, for tools that start daemons."""
    utils.WriteFile(path, data=f"{address} {port} {os.getpid()}\n", mode=0o644)


def _LogFiles() -> list[str]:
    """The files the root logger's handlers write to."""
    return [handler.filename for handler in logging.getLogger("").handlers
            if isinstance(handler, LogFileWithConsoleFallback)]


def SwitchUser(daemon: str, needs: list[tuple[str, int]]) -> None:
    """Become ``daemon``'s unprivileged user (privilege separation), then
    check that it can use every (path, os.access mode) in ``needs``.

    Call it once the daemon has bound its sockets and read what only root
    may read, and before it detaches (so that an error reaches whoever
    started it). The daemon's log file is given to its new user first, so
    that it can reopen it. Nothing changes in a virtual cluster or an
    install without separation; the access check runs in every case.

    @raise runtime.PrivilegeError: naming the user or the file, and why
    """
    from ganeti import runtime
    if runtime.Mode() == runtime.MODE_SEPARATE and os.geteuid() == 0 \
            and daemon != constants.NODED:
        try:
            ident = runtime.DaemonIdentity(daemon)
        except errors.ConfigurationError as err:
            raise runtime.PrivilegeError(f"Cannot drop privileges: {err}") from err
        for path in _LogFiles():
            try:
                # Created here if need be: the new user may not create files
                # in the log directory
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND
                                 | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600))
                os.lchown(path, ident.uid, ident.gid)
            except OSError as err:
                raise runtime.PrivilegeError(
                    f"Cannot give the log file {path} to user {ident.user}: {err}") \
                    from err
    runtime.DropPrivileges(daemon)
    runtime.CheckAccess(needs)
