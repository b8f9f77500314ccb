"""Import/export daemons on the node (``import_start``, ``export_start``,
``impexp_status``, ``impexp_abort``, ``impexp_cleanup``).

Each transfer gets a directory ``IMPORT_EXPORT_DIR/<mode>-<instance>-
<component>-<random>`` (e.g. ``import-inst1.example.com-disk0-k2x8_q1s``);
its name is what the master uses to refer to the daemon. It holds
``status`` (the daemon's JSON status), ``pid`` (its pid, locked while it
runs), ``ca`` (the CA certificate, when the options carry one) and
``daemon.log`` (its standard output and error). ``impexp_cleanup`` removes
it, the log included: the status's ``recent_output`` and the node
daemon's log keep what matters.

The daemon (``daemons/ganeti-impexpd``, found where the other daemon
launchers are: :func:`ganeti.daemon_util.DaemonsDir`) runs with this
Python interpreter, in its own session, so that it outlives the node
daemon's connection process that started it; ``import_start`` and
``export_start`` return once it has written its status (an import: once
it listens), or fail with its error. Certificates: by default the node's
``server.pem``, the cluster certificate every node shares, is both our
certificate and the CA (as Ganeti does within a cluster); with
``key_name`` a key directory of ``CRYPTO_KEYS_DIR`` (``key`` and
``cert``), with ``ca_pem`` another CA. An import listens on
``listen_address``, by default this node's secondary IP from ssconf.

Data ends (``ieio``): ``IEIO_FILE`` with ``[path]``, a file below the
export directory, given as the cluster sees it (mapped onto this node's
root directory as file disk paths are, see
:func:`ganeti.storage.filestorage.LocalizePath`) or as a virtual path;
``IEIO_RAW_DISK`` with ``[disk dict]``, an instance disk, which must be
assembled here; ``IEIO_SCRIPT`` with ``[disk dict, index]``, the OS
export script's output (export) or the OS import script's input (import)
on that disk, which must be assembled here (a wrapper script in the
daemon's directory, run through ``--data-cmd``).
"""

from __future__ import annotations

import ipaddress
import json
import logging
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from typing import Any

from ganeti import constants, daemon_util, errors, objects, pathutils, ssconf, utils
from ganeti.backend import Fail, RPCFail
from ganeti.backend import storage as backend_storage
from ganeti.storage import filestorage

STATUS_FILE = "status"
PID_FILE = "pid"
CA_FILE = "ca"
LOG_FILE = "daemon.log"
#: The wrapper running the OS export/import script (IEIO_SCRIPT)
SCRIPT_FILE = "os-script"

#: Seconds a new daemon has to write its status (an import: to listen)
START_TIMEOUT = 30.0
#: Seconds a daemon gets to stop after SIGTERM before SIGKILL (it stops its
#: children first, each within a few seconds)
KILL_TIMEOUT = 15.0
#: The compression tools this node runs (Ganeti's defaults and lzop)
KNOWN_COMPRESSION_TOOLS = (constants.IEC_GZIP, constants.IEC_GZIP_FAST,
                           constants.IEC_GZIP_SLOW, constants.IEC_LZOP)

_NAME_RE = re.compile(r"^(import|export)-[A-Za-z0-9._-]+$")
_KEY_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_MIB = 1024 * 1024


def DaemonProgram() -> str:
    """The launcher of the import/export daemon."""
    return os.path.join(daemon_util.DaemonsDir(), constants.IMPEXPD)


# --- arguments ---------------------------------------------------------------------------


def _ParseOptions(value: Any) -> objects.ImportExportOptions:
    if isinstance(value, objects.ImportExportOptions):
        opts = value.Copy()
    else:
        try:
            opts = objects.ImportExportOptions.FromDict(value)
        except errors.ConfigurationError as err:
            Fail("Invalid import/export options: %s", err)
    opts.UpgradeConfig()
    if not isinstance(opts.compress, str):
        Fail("Invalid compression tool %r", opts.compress)
    if opts.compress != constants.IEC_NONE and \
            opts.compress not in KNOWN_COMPRESSION_TOOLS:
        Fail("Compression tool '%s' is not supported on this node (supported: %s)",
             opts.compress, ", ".join(KNOWN_COMPRESSION_TOOLS))
    if opts.magic is not None and not (isinstance(opts.magic, str)
                                       and re.match(constants.IE_MAGIC_RE, opts.magic)):
        Fail("Invalid magic %r: expected 5 to 100 letters, digits or -_.", opts.magic)
    if not isinstance(opts.connect_timeout, int) or isinstance(opts.connect_timeout, bool) \
            or opts.connect_timeout <= 0:
        Fail("Invalid connect timeout %r: expected a positive number of seconds",
             opts.connect_timeout)
    if not isinstance(opts.ipv6, bool):
        Fail("Invalid ipv6 flag %r", opts.ipv6)
    if opts.key_name is not None and not (isinstance(opts.key_name, str)
                                          and _KEY_NAME_RE.match(opts.key_name)):
        Fail("Invalid key name %r", opts.key_name)
    if opts.ca_pem is not None and not (isinstance(opts.ca_pem, str)
                                        and "-----BEGIN CERTIFICATE-----" in opts.ca_pem):
        Fail("Invalid CA: expected a PEM-encoded certificate")
    if opts.listen_address is not None:
        _CheckAddress(opts.listen_address, "listen address")
    return opts


def _CheckAddress(value: Any, what: str) -> str:
    try:
        return str(ipaddress.ip_address(value))
    except (ValueError, TypeError):
        Fail("Invalid %s %r: expected an IP address", what, value)


def _InstanceName(instance: Any) -> str:
    name = instance.get("name") if isinstance(instance, dict) \
        else getattr(instance, "name", None)
    if not isinstance(name, str) or not name:
        Fail("Invalid instance %r: expected an instance object with a name", instance)
    return name


def _NamePart(text: str) -> str:
    """``text`` reduced to characters allowed in a daemon name."""
    return re.sub(r"[^A-Za-z0-9._-]", "", text)


def _DaemonDir(name: Any) -> str:
    """The directory of daemon ``name`` (which must look like one of ours)."""
    if not isinstance(name, str) or not _NAME_RE.match(name) or name in (".", ".."):
        Fail("Invalid import/export daemon name %r", name)
    return os.path.join(pathutils.IMPORT_EXPORT_DIR, name)


def _Certificates(opts: objects.ImportExportOptions) -> tuple[str, str | None]:
    """(certificate file, key file or None when the certificate holds it)."""
    if opts.key_name is None:
        if not os.path.isfile(pathutils.NODED_CERT_FILE):
            Fail("The node certificate %s is missing", pathutils.NODED_CERT_FILE)
        return pathutils.NODED_CERT_FILE, None
    directory = os.path.join(pathutils.CRYPTO_KEYS_DIR, opts.key_name)
    key, cert = os.path.join(directory, "key"), os.path.join(directory, "cert")
    for path in (key, cert):
        if not os.path.isfile(path):
            Fail("X.509 key '%s' not found: %s is missing", opts.key_name, path)
    return cert, key


def _SecondaryIp() -> str:
    """This node's secondary IP, from ssconf."""
    me = utils.Hostname.GetSysName()
    try:
        entries = ssconf.SimpleStore().GetNodeSecondaryIPList()
    except errors.ConfigurationError as err:
        Fail("No listen address given and the node list cannot be read: %s", err)
    for entry in entries:
        parts = entry.split()
        if len(parts) == 2 and parts[0] == me:
            return _CheckAddress(parts[1], f"secondary IP of {me}")
    Fail("No listen address given and this node (%s) has no secondary IP in ssconf", me)


def _ExportFile(path: Any) -> str:
    """The local path of an export file (a cluster or virtual path)."""
    if not isinstance(path, str) or not utils.IsNormAbsPath(path):
        Fail("Invalid export file %r: expected a normalised absolute path", path)
    try:
        # A virtual path (pathutils.MakeVirtualPath) names itself as one
        local = pathutils.LocalizeVirtualPath(path)
    except errors.ProgrammerError:
        local = filestorage.LocalizePath(path)
    export_dir = os.path.realpath(pathutils.EXPORT_DIR)
    if not utils.IsBelowDir(export_dir, os.path.realpath(local)):
        Fail("File '%s' is not below the export directory %s", path, pathutils.EXPORT_DIR)
    return local


def _DataArgs(mode: str, ieio: Any) -> tuple[list[str], int | None]:
    """The daemon's data end options and the expected size (MiB)."""
    if not (isinstance(ieio, (list, tuple)) and len(ieio) == 2
            and isinstance(ieio[1], (list, tuple))):
        Fail("Invalid import/export I/O %r: expected (type, arguments)", ieio)
    kind, args = ieio
    if kind == constants.IEIO_FILE:
        if len(args) != 1:
            Fail("Import/export I/O '%s' takes [path], got %r", kind, args)
        local = _ExportFile(args[0])
        if mode == constants.IEM_IMPORT:
            try:
                os.makedirs(os.path.dirname(local), mode=0o750, exist_ok=True)
            except OSError as err:
                Fail("Cannot create the directory of %s: %s", local, err)
            return ["--data-file", local], None
        try:
            size = os.stat(local).st_size
        except OSError as err:
            Fail("Cannot export %s: %s", local, err)
        return ["--data-file", local], math.ceil(size / _MIB)
    if kind == constants.IEIO_RAW_DISK:
        if len(args) != 1:
            Fail("Import/export I/O '%s' takes [disk], got %r", kind, args)
        disk = backend_storage.DiskFromDict(args[0])
        dev = backend_storage.FindOrFail(disk)
        path = dev.dev_path
        if not path or not os.path.exists(path):
            Fail("Disk %s is not assembled on this node (no device at %s)",
                 disk.iv_name or disk.uuid, path)
        return ["--data-device", path], disk.size
    if kind == constants.IEIO_SCRIPT:
        Fail("Import/export I/O '%s' needs the instance", kind)
    Fail("Unknown import/export I/O type %r", kind)


def _ScriptWrapper(mode: str, instance_value: Any, args: Any) -> tuple[str, int]:
    """For ``("script", [disk dict, index])``: the text of a shell script
    running the OS export (or import) script of ``instance`` on the disk,
    with the environment the OS scripts get (:func:`backend_os.OSEnvironment`
    plus ``EXPORT_*``/``IMPORT_*``), and the expected size (MiB).

    The disk (an instance disk or a snapshot of one) must be assembled
    here; the script's standard output (export) is the data sent, or its
    standard input (import) the data received; what it prints on its
    standard error goes to the daemon's log (and the status's recent
    output).
    """
    from ganeti.backend import instance as backend_instance
    from ganeti.backend import os as backend_os
    if not (isinstance(args, (list, tuple)) and len(args) == 2
            and isinstance(args[1], int) and not isinstance(args[1], bool)):
        Fail("Import/export I/O '%s' takes [disk, index], got %r", constants.IEIO_SCRIPT,
             args)
    disk = backend_storage.DiskFromDict(args[0])
    index = args[1]
    dev = backend_storage.FindOrFail(disk)
    path = dev.dev_path
    if not path or not os.path.exists(path):
        Fail("Disk %s is not assembled on this node (no device at %s)",
             disk.iv_name or disk.uuid, path)
    instance = backend_instance.InstanceFromDict(instance_value)
    if not 0 <= index < max(len(instance.disks or []), 1):
        Fail("Disk index %d out of range for instance %s", index, instance.name)
    inst_os = backend_os.OSFromDisk(instance.os)
    backend_os.CheckOSVariant(inst_os, instance.os)
    if mode == constants.IEM_EXPORT:
        script, prefix = inst_os.export_script, "EXPORT"
    else:
        script, prefix = inst_os.import_script, "IMPORT"
    if not script:
        Fail("OS '%s' has no %s script", inst_os.name, mode)
    # The other disks' paths as far as they are known here; this one is
    # the device given (a snapshot's, for an export)
    paths: list[str | None] = []
    other: Any
    for idx, other in enumerate(instance.disks or []):
        if idx == index:
            paths.append(path)
            continue
        try:
            paths.append(backend_storage.FindOrFail(other).dev_path)
        except RPCFail:
            paths.append(None)
    env = backend_os.OSEnvironment(instance, inst_os, disk_paths=paths)
    env.update({f"{prefix}_INDEX": str(index), f"{prefix}_DISK_PATH": path,
                f"{prefix}_DEVICE": path})
    lines = ["#!/bin/sh", f"# The OS {mode} script of {instance.name}, disk {index}",
             f"cd {utils.ShellQuote(inst_os.path)} || exit 1"]
    assignments = " ".join(f"{key}={utils.ShellQuote(value)}"
                           for key, value in sorted(env.items()))
    # An import script's standard output is not data: it goes to the log
    redirect = " >&2" if mode == constants.IEM_IMPORT else ""
    lines.append(f"exec env -i {assignments} {utils.ShellQuote(script)}{redirect}")
    return "\n".join(lines) + "\n", disk.size


# --- starting ------------------------------------------------------------------------------


def _ReadStatus(directory: str) -> dict[str, Any] | None:
    try:
        with open(os.path.join(directory, STATUS_FILE), encoding="utf-8") as fd:
            data = json.load(fd)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as err:
        logging.error("Cannot read the status of %s: %s", directory, err)
        return None
    return data if isinstance(data, dict) else None


def _IsRunning(directory: str) -> int | None:
    """The pid of the daemon, if it runs."""
    return utils.ReadLockedPidFile(os.path.join(directory, PID_FILE))


def _LogTail(directory: str) -> str:
    try:
        lines = utils.TailFile(os.path.join(directory, LOG_FILE), lines=5)
    except OSError:
        return ""
    return " | ".join(line for line in lines if line.strip())


def _WaitReady(proc: subprocess.Popen, directory: str, mode: str) -> str | None:
    """Wait for the daemon to be ready; return why it is not, or None."""
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        status = _ReadStatus(directory)
        if status is not None:
            if status.get("exit_status") is not None:
                return status.get("error_message") or \
                    f"it ended with status {status['exit_status']}"
            if mode == constants.IEM_EXPORT or status.get("listen_port"):
                return None
        code = proc.poll()
        if code is not None:
            tail = _LogTail(directory)
            return f"it exited with code {code}" + (f": {tail}" if tail else "")
        if time.monotonic() >= deadline:
            return f"it was not ready within {START_TIMEOUT:g} seconds"
        time.sleep(0.02)


def _Reap(proc: subprocess.Popen) -> None:
    """Wait for the daemon in a thread, so that it leaves no zombie."""
    threading.Thread(target=proc.wait, daemon=True, name=f"reap-{proc.pid}").start()


def _StartDaemon(mode: str, opts_value: Any, host: str | None, port: int | None,
                 instance: Any, component: Any, ieio: Any) -> str:
    opts = _ParseOptions(opts_value)
    parts = [mode, _NamePart(_InstanceName(instance))]
    if component is not None:
        if not isinstance(component, str):
            Fail("Invalid component %r: expected a string", component)
        if _NamePart(component):
            parts.append(_NamePart(component))
    if mode == constants.IEM_IMPORT:
        args = ["--bind", opts.listen_address or _SecondaryIp()]
    else:
        if not isinstance(host, str) or not host:
            Fail("Invalid host %r to export to", host)
        if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
            Fail("Invalid port %r to export to", port)
        args = ["--host", host, "--port", str(port)]
    cert, key = _Certificates(opts)
    args += ["--cert", cert, "--connect-timeout", str(opts.connect_timeout),
             "--compress", opts.compress,
             "--compression-tools", ",".join(KNOWN_COMPRESSION_TOOLS)]
    if key is not None:
        args += ["--key", key]
    if opts.magic:
        args += ["--magic", opts.magic]
    if opts.ipv6:
        args.append("--ipv6")
    wrapper: str | None = None
    expected: int | None
    if isinstance(ieio, (list, tuple)) and len(ieio) == 2 and \
            ieio[0] == constants.IEIO_SCRIPT:
        wrapper, expected = _ScriptWrapper(mode, instance, ieio[1])
        data_args = ["--data-cmd"]
    else:
        data_args, expected = _DataArgs(mode, ieio)
    if expected is not None:
        args += ["--expected-size", str(expected)]
    args += data_args

    try:
        os.makedirs(pathutils.IMPORT_EXPORT_DIR, mode=0o750, exist_ok=True)
        directory = tempfile.mkdtemp(prefix="-".join(parts) + "-",
                                     dir=pathutils.IMPORT_EXPORT_DIR)
    except OSError as err:
        Fail("Cannot create a directory in %s: %s", pathutils.IMPORT_EXPORT_DIR, err)
    name = os.path.basename(directory)
    proc = None
    try:
        if wrapper is not None:
            script_file = os.path.join(directory, SCRIPT_FILE)
            utils.WriteFile(script_file, data=wrapper, mode=0o700)
            args.append(utils.ShellQuote(script_file))
        ca = pathutils.NODED_CERT_FILE
        if opts.ca_pem is not None:
            ca = os.path.join(directory, CA_FILE)
            utils.WriteFile(ca, data=opts.ca_pem, mode=0o600)
        cmd = [sys.executable, DaemonProgram(), os.path.join(directory, STATUS_FILE), mode,
               "--ca", ca, "--pid-file", os.path.join(directory, PID_FILE), *args]
        logging.info("Starting %s daemon %s: %s", mode, name, utils.ShellQuoteArgs(cmd))
        with open(os.path.join(directory, LOG_FILE), "ab") as log:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                    close_fds=True, start_new_session=True, cwd="/")
        _Reap(proc)
        problem = _WaitReady(proc, directory, mode)
    except OSError as err:
        problem = str(err)
    if problem is None:
        return name
    # Nobody will know the name: stop the daemon (and what it started) now
    Cleanup(name)
    Fail("Cannot start the %s of %s: %s", mode, "-".join(parts[1:]), problem)


def StartImport(opts: Any, instance: Any, component: Any, ieio: Any) -> str:
    """Start an import daemon; return its name once it listens."""
    return _StartDaemon(constants.IEM_IMPORT, opts, None, None, instance, component, ieio)


def StartExport(opts: Any, host: str, port: int, instance: Any, component: Any,
                ieio: Any) -> str:
    """Start an export daemon sending to ``host``:``port``; return its name."""
    return _StartDaemon(constants.IEM_EXPORT, opts, host, port, instance, component, ieio)


# --- status, abort, cleanup -------------------------------------------------------------


def GetStatus(names: Sequence[str]) -> list[dict[str, Any] | None]:
    """The status of each daemon (an ImportExportStatus dict), None for one
    that is unknown or has written none yet."""
    if not isinstance(names, (list, tuple)):
        Fail("Invalid daemon names %r: expected a list", names)
    result: list[dict[str, Any] | None] = []
    fields = set(objects.ImportExportStatus.GetAllFields())
    for name in names:
        directory = _DaemonDir(name)
        data = _ReadStatus(directory)
        if data is None:
            result.append(None)
            continue
        data = {key: value for key, value in data.items() if key in fields}
        if data.get("exit_status") is None and _IsRunning(directory) is None:
            # Killed before it could write its last status
            data["exit_status"] = -1
            data["error_message"] = ("the import/export daemon ended without reporting"
                                     " a result")
        result.append(objects.ImportExportStatus.FromDict(data).ToDict())
    return result


def Abort(name: str) -> None:
    """Ask a daemon to stop (SIGTERM); it reports the error "aborted"."""
    directory = _DaemonDir(name)
    if not os.path.isdir(directory):
        Fail("Import/export daemon %s not found", name)
    pid = _IsRunning(directory)
    if pid:
        logging.info("Aborting import/export daemon %s (pid %d)", name, pid)
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass


def SessionMembers(sid: int) -> list[int]:
    """The processes of session ``sid`` (from /proc)."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as fd:
                text = fd.read()
        except OSError:
            continue
        fields = text.rpartition(")")[2].split()
        if len(fields) > 3 and fields[3] == str(sid):
            members.append(int(entry))
    return members


def Cleanup(name: str) -> None:
    """Stop a daemon if it still runs (and anything it left) and remove its
    directory; an unknown name is fine (already cleaned up).

    The daemon is a session leader (see :func:`_StartDaemon`): what it
    started and could not stop (it was killed by SIGKILL) is found by its
    session. Members of that session are only killed once the daemon is
    gone: a session whose leader is alive under that pid is another one.
    """
    directory = _DaemonDir(name)
    pid_file = os.path.join(directory, PID_FILE)
    pid = utils.ReadLockedPidFile(pid_file)
    if pid:
        logging.info("Import/export daemon %s (pid %d) still runs, stopping it", name, pid)
        utils.KillProcess(pid, timeout=KILL_TIMEOUT)
        _WaitGone([pid])
    else:
        pid = utils.ReadPidFile(pid_file) or None
        if pid:
            # Its lock goes a moment before the process does
            _WaitGone([pid], timeout=1.0)
    if pid and not utils.IsProcessAlive(pid):
        left = [member for member in SessionMembers(pid) if member != pid]
        for member in left:
            logging.warning("Killing process %d left by import/export daemon %s",
                            member, name)
            try:
                os.kill(member, signal.SIGKILL)
            except ProcessLookupError:
                pass
        _WaitGone(left)
    shutil.rmtree(directory, ignore_errors=True)


def _WaitGone(pids: list[int], timeout: float = 5.0) -> None:
    """Wait (a little at most) until the processes, just sent SIGKILL, are gone."""
    deadline = time.monotonic() + timeout
    while any(utils.IsProcessAlive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.01)
