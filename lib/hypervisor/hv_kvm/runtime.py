"""Running KVM instances: runtime files and QEMU processes on the node.

Each instance QEMU runs for has, below :func:`cmdline.KvmRunDir`
(Ganeti's layout):

- ``pid/<name>``: the pid file QEMU writes (``-pidfile``);
- ``ctrl/<name>.qmp``, ``.serial``, ``.kvmd``, ``.qga``: its sockets;
- ``runtime/<name>``: the runtime file (:class:`Runtime`, JSON) written by
  the node when it starts QEMU: the command line, the instance it was
  started from, its disks, NICs and hotplugged devices, its memory. It
  outlives the node daemon, so that a restarted node daemon can still
  stop, reboot or hotplug the instance; it goes when the instance stops.

Whether an instance runs is decided by the process, never by the files
alone: the pid in the pid file must be alive and its ``/proc/PID/cmdline``
must be QEMU's for that instance (:func:`IsInstanceProcess`: ``-name`` and
``-pidfile`` match), so a stale pid file left by a crash, or a pid reused
by another process, reads as "not running".
"""

from __future__ import annotations

import dataclasses
import errno
import json
import logging
import os
import signal
import time
from collections.abc import Sequence
from typing import Any

from ganeti import errors, utils
from ganeti.hypervisor.hv_kvm import cmdline

#: Bump when a field changes meaning; older files are read as far as they go
RUNTIME_VERSION = 1
#: Seconds QEMU gets to exit after SIGTERM before SIGKILL
KILL_TIMEOUT = 10.0
#: The suffixes of an instance's sockets in ``ctrl/``
SOCKET_SUFFIXES = (".qmp", ".serial", ".kvmd", ".qga")


def RuntimeDir(run_dir: str | None = None) -> str:
    """The directory of the runtime files."""
    return f"{run_dir or cmdline.KvmRunDir()}/runtime"


def PidDir(run_dir: str | None = None) -> str:
    """The directory of QEMU's pid files."""
    return f"{run_dir or cmdline.KvmRunDir()}/pid"


def CheckName(name: str) -> str:
    """An instance name usable as a file name; HypervisorError otherwise."""
    if not isinstance(name, str) or not name or "/" in name or name.startswith("."):
        raise errors.HypervisorError(f"Invalid instance name {name!r}")
    return name


@dataclasses.dataclass
class Runtime:
    """What the node keeps about a running instance (the runtime file).

    ``memory`` is the current memory in MiB (the balloon's target; the
    maximum, ``-m``, is ``max_memory``). ``disks`` and ``nics`` are the
    devices QEMU was started with, ``hotplugged`` those added since (each
    a dict with ``kind`` "disk" or "nic" and ``id``, the QEMU device id).
    """

    name: str
    uuid: str
    argv: list[str]
    memory: int
    max_memory: int
    vcpus: int
    hvparams: dict[str, Any]
    instance: dict[str, Any]
    disks: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    nics: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    hotplugged: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    started: float = 0.0
    incoming: str | None = None
    security: dict[str, Any] = dataclasses.field(default_factory=dict)
    #: when the ACPI power button was last pressed (soft stop)
    powerdown_sent: float = 0.0
    version: int = RUNTIME_VERSION

    def ToDict(self) -> dict[str, Any]:
        """The JSON-able form."""
        return dataclasses.asdict(self)

    @classmethod
    def FromDict(cls, data: Any) -> Runtime:
        """Parse the JSON form; unknown keys (a newer writer's) are ignored.

        @raise errors.HypervisorError: missing or ill-typed fields
        """
        if not isinstance(data, dict):
            raise errors.HypervisorError("Runtime data is not an object")
        known = {field.name for field in dataclasses.fields(cls)}
        values = {key: value for key, value in data.items() if key in known}
        try:
            runtime = cls(**values)
        except TypeError as err:
            raise errors.HypervisorError(f"Incomplete runtime data: {err}") from None
        checks = (("name", str), ("uuid", str), ("argv", list), ("memory", int),
                  ("max_memory", int), ("vcpus", int), ("hvparams", dict),
                  ("instance", dict), ("disks", list), ("nics", list),
                  ("hotplugged", list))
        for name, kind in checks:
            if not isinstance(getattr(runtime, name), kind):
                raise errors.HypervisorError(
                    f"Runtime data: '{name}' must be a {kind.__name__}, got"
                    f" {getattr(runtime, name)!r}")
        return runtime


def RuntimePath(name: str, run_dir: str | None = None) -> str:
    """The runtime file of instance ``name``."""
    return f"{RuntimeDir(run_dir)}/{CheckName(name)}"


def WriteRuntime(runtime: Runtime, run_dir: str | None = None) -> None:
    """Write (atomically) the runtime file of ``runtime.name``."""
    os.makedirs(RuntimeDir(run_dir), mode=0o750, exist_ok=True)
    utils.WriteFile(RuntimePath(runtime.name, run_dir),
                    data=json.dumps(runtime.ToDict(), indent=1, sort_keys=True) + "\n",
                    mode=0o600)


def ReadRuntime(name: str, run_dir: str | None = None) -> Runtime | None:
    """The runtime file of ``name``; None if there is none.

    @raise errors.HypervisorError: unreadable or corrupt (naming the file)
    """
    path = RuntimePath(name, run_dir)
    try:
        with open(path, encoding="utf-8") as fd:
            data = json.load(fd)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as err:
        raise errors.HypervisorError(f"Cannot read the runtime file {path}: {err}") from err
    try:
        return Runtime.FromDict(data)
    except errors.HypervisorError as err:
        raise errors.HypervisorError(f"Corrupt runtime file {path}: {err}") from None


def RemoveRuntime(name: str, run_dir: str | None = None) -> None:
    """Remove the runtime file of ``name`` (no error if it is gone)."""
    utils.RemoveFile(RuntimePath(name, run_dir))


# --- QEMU processes ----------------------------------------------------------------------


def ReadCmdline(pid: int) -> list[str] | None:
    """The argv of process ``pid`` from /proc; None if it is gone."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fd:
            data = fd.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    except OSError as err:
        if err.errno in (errno.ENOENT, errno.ESRCH):
            return None
        raise errors.HypervisorError(f"Cannot read the command line of process {pid}:"
                                     f" {err}") from err
    if not data:
        return None  # a zombie, or a kernel thread
    return [arg.decode("utf-8", "replace") for arg in data.rstrip(b"\0").split(b"\0")]


def _OptionValue(argv: Sequence[str], option: str) -> str | None:
    for index, arg in enumerate(argv[:-1]):
        if arg == option:
            return argv[index + 1]
    return None


def IsInstanceProcess(argv: Sequence[str] | None, name: str, pidfile: str) -> bool:
    """Whether ``argv`` is the QEMU command line of instance ``name`` with
    pid file ``pidfile`` (so of this node, in a virtual cluster)."""
    if not argv:
        return False
    # -name is quoted as cmdline._Esc does (a comma doubled)
    return (_OptionValue(argv, "-name") == name.replace(",", ",,")
            and _OptionValue(argv, "-pidfile") == pidfile)


def PidFile(name: str, run_dir: str | None = None) -> str:
    """QEMU's pid file of instance ``name``."""
    return f"{PidDir(run_dir)}/{CheckName(name)}"


def InstancePid(name: str, run_dir: str | None = None) -> int | None:
    """The pid of the live QEMU of instance ``name``, or None.

    None as well for a stale pid file: its process gone, a zombie, or
    another program (the pid reused).
    """
    pidfile = PidFile(name, run_dir)
    pid = utils.ReadPidFile(pidfile)
    if not pid or not utils.IsProcessAlive(pid):
        return None
    if not IsInstanceProcess(ReadCmdline(pid), name, pidfile):
        return None
    return pid


def PidFileNames(run_dir: str | None = None) -> list[str]:
    """The names of the instances that have a pid file (live or stale)."""
    try:
        return utils.ListVisibleFiles(PidDir(run_dir))
    except FileNotFoundError:
        return []
    except OSError as err:
        raise errors.HypervisorError(f"Cannot list {PidDir(run_dir)}: {err}") from err


def CpuTime(pid: int) -> float:
    """Seconds of CPU process ``pid`` used (user and system); 0 if unknown."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fd:
            text = fd.read()
    except OSError:
        return 0.0
    # The command name may hold spaces and parentheses: fields follow the last ")"
    fields = text.rpartition(")")[2].split()
    try:
        ticks = int(fields[11]) + int(fields[12])
    except (IndexError, ValueError):
        return 0.0
    return ticks / os.sysconf("SC_CLK_TCK")


def KillPid(pid: int, timeout: float = KILL_TIMEOUT) -> None:
    """SIGTERM ``pid`` (QEMU exits at once on it), SIGKILL after ``timeout``,
    and wait (bounded) until it is gone."""
    utils.KillProcess(pid, signal.SIGTERM, timeout=timeout)
    deadline = time.monotonic() + timeout
    while utils.IsProcessAlive(pid) and time.monotonic() < deadline:
        time.sleep(0.02)  # bounded poll: QEMU is not our child


def WaitGone(pid: int, timeout: float) -> bool:
    """Wait up to ``timeout`` seconds for ``pid`` to exit; whether it did."""
    deadline = time.monotonic() + timeout
    while utils.IsProcessAlive(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)  # bounded poll: QEMU is not our child
    return True


def RemoveInstanceFiles(name: str, files: cmdline.RuntimeFiles) -> None:
    """Remove the pid file and sockets of a stopped instance."""
    for path in (files.pidfile, files.qmp, files.serial, files.events_qmp,
                 files.guest_agent):
        if path:
            utils.RemoveFile(path)


def SocketPaths(name: str, run_dir: str | None = None) -> list[str]:
    """The socket paths of instance ``name`` (existing or not)."""
    base = run_dir or cmdline.KvmRunDir()
    return [f"{base}/ctrl/{CheckName(name)}{suffix}" for suffix in SOCKET_SUFFIXES]


def LogStale(name: str, what: str) -> None:
    """Log that stale files of ``name`` are being removed."""
    logging.info("KVM instance %s: removing stale %s", name, what)
