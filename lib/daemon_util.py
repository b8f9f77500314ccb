"""Start, stop and check the daemons of the local node (``daemon-util``).

A node is the environment this process runs in: ``GANETI_ROOTDIR`` and
``GANETI_HOSTNAME`` are passed on to every daemon started here, so in a
virtual cluster each node's daemons find their own files. A daemon is
started as ``daemons/<name>`` without ``-f``: it detaches itself and its
launching process exits 0 only once the daemon is ready (listening), so
waiting for that exit is the readiness check. Before a daemon is started,
ensure-dirs creates the directories and fixes the owners and modes of the
files the daemons use (:func:`EnsureDirs`). A daemon is stopped by the PID
in its pid file (held locked while it runs): SIGTERM, then SIGKILL after a
timeout.

Where the node daemon and confd listen comes from ssconf
(``node_noded_endpoints``/``node_confd_endpoints`` for nodes with their own
endpoints); in a virtual cluster a node without its own endpoints binds to
its primary IP, so the nodes sharing the machine never share an address,
and RAPI binds the master's primary IP (port 5080). Node daemons of a
virtual cluster run with ``--no-mlock``; ``GANETI_NODED_ARGS`` adds
arguments to every node daemon (see :func:`DefaultExtraArgs`).
"""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Sequence

from ganeti import constants, errors, pathutils, ssconf, utils

#: The daemons this tool knows, in start order
DAEMONS = (constants.NODED, constants.CONFD, constants.MASTERD, constants.RAPI)

#: Daemons of the master role, in start order
MASTER_DAEMONS = (constants.MASTERD, constants.RAPI)

#: Daemons taking ``-b ADDRESS -p PORT``
_NETWORK_DAEMONS = (constants.NODED, constants.CONFD)

_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))


def DaemonsDir() -> str:
    """The directory holding the daemon launchers: ``GANETI_DAEMONS_DIR``,
    else the source tree's daemons/, else (an installed copy) the
    directory pip installed the scripts to."""
    explicit = os.environ.get("GANETI_DAEMONS_DIR")
    if explicit:
        return explicit
    source = os.path.join(_REPO_ROOT, "daemons")
    if os.path.isdir(source):
        return source
    scripts = sysconfig.get_path("scripts")
    if not os.path.exists(os.path.join(scripts, constants.NODED)):
        # Installed with --prefix or --user: wherever the launchers are
        found = shutil.which(constants.NODED)
        if found:
            return os.path.dirname(found)
    return scripts


def DaemonScript(name: str) -> str:
    """The launcher of daemon ``name``."""
    CheckDaemonName(name)
    return os.path.join(DaemonsDir(), name)


def IsAvailable(name: str) -> bool:
    """Whether the launcher of ``name`` exists (RAPI comes in a later issue)."""
    return os.path.isfile(DaemonScript(name))


def CheckDaemonName(name: str) -> None:
    """Refuse a name that is not one of :data:`DAEMONS`."""
    if name not in DAEMONS:
        raise errors.ParameterError(f"Unknown daemon '{name}' (known:"
                                    f" {', '.join(DAEMONS)})")


def GetPid(name: str) -> int | None:
    """The pid of the running daemon ``name``, or None."""
    CheckDaemonName(name)
    pid = utils.ReadLockedPidFile(pathutils.GetDaemonPidFile(name))
    if pid and utils.IsProcessAlive(pid):
        return pid
    return None


def IsRunning(name: str) -> bool:
    """Whether daemon ``name`` runs on this node."""
    return GetPid(name) is not None


def _Store() -> ssconf.SimpleStore:
    return ssconf.SimpleStore()


def _MyName() -> str:
    return utils.Hostname.GetSysName()


def GetListenArgs(name: str, ss: ssconf.SimpleStore | None = None) -> list[str]:
    """The ``-b ADDRESS -p PORT`` arguments of a network daemon of this node.

    Empty when nothing is known (the daemon's own defaults apply).
    """
    if name == constants.RAPI:
        return _VirtualRapiListenArgs(ss)
    if name not in _NETWORK_DAEMONS:
        return []
    ss = ss or _Store()
    me = _MyName()
    try:
        endpoints = ss.GetNodedEndpoints() if name == constants.NODED \
            else ss.GetConfdEndpoints()
    except errors.ConfigurationError:
        endpoints = {}
    if me in endpoints:
        address, port = endpoints[me]
        return ["-b", address, "-p", str(port)]
    if pathutils.IsVirtualCluster():
        try:
            ips = dict(line.split() for line in ss.GetNodePrimaryIPList())
        except (errors.ConfigurationError, ValueError):
            ips = {}
        if me in ips:
            return ["-b", ips[me]]
    return []


def _VirtualRapiListenArgs(ss: ssconf.SimpleStore | None) -> list[str]:
    """In a virtual cluster RAPI binds the node's primary IP (port 5080)."""
    if not pathutils.IsVirtualCluster():
        return []
    ss = ss or _Store()
    try:
        ips = dict(line.split() for line in ss.GetNodePrimaryIPList())
    except (errors.ConfigurationError, ValueError):
        return []
    me = _MyName()
    if me not in ips:
        return []
    return ["-b", ips[me], "-p", str(constants.DEFAULT_RAPI_PORT)]


#: Extra arguments for the node daemon, split like a shell would (e.g.
#: ``--no-mlock``); a virtual cluster's nodes get ``--no-mlock`` anyway
NODED_ARGS_ENV = "GANETI_NODED_ARGS"


def DefaultExtraArgs(name: str) -> list[str]:
    """Arguments daemon-util adds for ``name`` besides the listen address.

    The node daemon of a virtual-cluster node (``GANETI_ROOTDIR`` set) runs
    with ``--no-mlock``: a hundred node daemons locking their memory on one
    machine would pin gigabytes for nothing. ``GANETI_NODED_ARGS`` adds
    arguments to every node daemon started here.
    """
    if name != constants.NODED:
        return []
    args = shlex.split(os.environ.get(NODED_ARGS_ENV, ""))
    if pathutils.IsVirtualCluster() and "--no-mlock" not in args:
        args.append("--no-mlock")
    return args


def _DaemonEnv() -> dict[str, str]:
    env = dict(os.environ)
    pylib = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    paths = [pylib] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    return env


def StartDaemon(name: str, extra_args: Sequence[str] = (),
                timeout: float = constants.DAEMON_START_TIMEOUT) -> str:
    """Start daemon ``name`` unless it runs; return what happened.

    Returns once the daemon is ready. ``extra_args`` go to the daemon (they
    may override the listen address and port).

    @raise errors.OpExecError: if the daemon fails to start
    """
    pid = GetPid(name)
    if pid is not None:
        return f"{name} already running (pid {pid})"
    if not IsAvailable(name):
        if name == constants.RAPI:
            return f"{name} is not installed, not started"
        raise errors.OpExecError(f"Cannot start {name}: {DaemonScript(name)}"
                                 " does not exist")
    fixes = EnsureDirs(name)
    args = [sys.executable, DaemonScript(name)]
    if not any(arg in ("-b", "--bind", "-p", "--port") for arg in extra_args):
        args.extend(GetListenArgs(name))
    args.extend(a for a in DefaultExtraArgs(name) if a not in extra_args)
    args.extend(extra_args)
    logging.info("Starting %s: %s", name, " ".join(args))
    try:
        result = subprocess.run(args, env=_DaemonEnv(), stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                timeout=timeout, check=False)
    except subprocess.TimeoutExpired as err:
        raise errors.OpExecError(f"{name} did not become ready within"
                                 f" {timeout:.0f} seconds") from err
    except OSError as err:
        raise errors.OpExecError(f"Cannot run {args[1]}: {err}") from err
    if result.returncode != 0:
        output = result.stdout.decode("utf-8", "replace").strip()
        raise errors.OpExecError(f"{name} failed to start (exit code"
                                 f" {result.returncode}): {output or 'no output'}")
    return "\n".join(fixes + [f"{name} started (pid {GetPid(name) or '?'})"])


def EnsureDirs(name: str) -> list[str]:
    """Run ensure-dirs (without ``--full-run``) before starting ``name``, as
    Ganeti's daemon-util does; return its fixes as message lines.

    In a virtual cluster it sets modes only (see ganeti.tools.ensure_dirs).

    @raise errors.OpExecError: naming what could not be fixed
    """
    from ganeti.tools import ensure_dirs
    try:
        result = ensure_dirs.Ensure()
    except errors.GenericError as err:
        raise errors.OpExecError(f"Cannot start {name}: ensure-dirs failed: {err}") \
            from err
    if result.failures:
        raise errors.OpExecError(
            f"Cannot start {name}: ensure-dirs could not fix "
            + "; ".join(str(failure) for failure in result.failures))
    for fix in result.fixes:
        logging.info("ensure-dirs: %s", fix)
    return [f"ensure-dirs: {fix}" for fix in result.fixes]


def StopDaemon(name: str, timeout: float = constants.DAEMON_STOP_TIMEOUT) -> str:
    """Stop daemon ``name`` by the PID in its pid file; return what happened.

    SIGTERM first, SIGKILL when it outlives ``timeout``.
    """
    pid = GetPid(name)
    if pid is None:
        return f"{name} not running"
    logging.info("Stopping %s (pid %s)", name, pid)
    utils.KillProcess(pid, timeout=timeout)
    return f"{name} stopped (pid {pid})"


def _IsRole(getter: str) -> bool:
    try:
        return _MyName() in getattr(_Store(), getter)()
    except errors.ConfigurationError:
        return False


def IsMaster() -> bool:
    """Whether ssconf names this node the master."""
    try:
        return _Store().GetMasterNode() == _MyName()
    except errors.ConfigurationError:
        return False


def StartMaster(no_voting: bool = False) -> list[str]:
    """Start the master daemons (masterd, then RAPI if installed).

    A RAPI daemon that fails to start is reported in the messages only.
    """
    extra = ["--no-voting", "--yes-do-it"] if no_voting else []
    messages = [StartDaemon(constants.MASTERD, extra)]
    # The cluster works without RAPI: its failure is reported, not raised
    try:
        messages.append(StartDaemon(constants.RAPI))
    except errors.OpExecError as err:
        logging.error("%s", err)
        messages.append(f"Warning: {err}")
    return messages


def StopMaster() -> list[str]:
    """Stop the master daemons (RAPI, then masterd)."""
    return [StopDaemon(constants.RAPI), StopDaemon(constants.MASTERD)]


def StartAll() -> list[str]:
    """Start what this node runs: noded, confd on candidates, the master's."""
    messages = [StartDaemon(constants.NODED)]
    if _IsRole("GetMasterCandidates") and IsAvailable(constants.CONFD):
        messages.append(StartDaemon(constants.CONFD))
    if IsMaster():
        messages.extend(StartMaster())
    return messages


def StopAll() -> list[str]:
    """Stop every daemon of this node, master daemons first."""
    return [StopDaemon(name) for name in reversed(DAEMONS)]


def BuildParser() -> argparse.ArgumentParser:
    """The command line of daemon-util."""
    parser = argparse.ArgumentParser(
        prog="daemon-util", description="Start, stop and check Ganeti daemons of this node")
    sub = parser.add_subparsers(dest="action", required=True)
    for action in ("start", "stop", "check"):
        cmd = sub.add_parser(action, help=f"{action} one daemon")
        cmd.add_argument("daemon", choices=DAEMONS)
        if action == "start":
            cmd.add_argument("daemon_args", nargs=argparse.REMAINDER,
                             help="Arguments for the daemon")
    master = sub.add_parser("start-master", help="Start the master daemons")
    master.add_argument("--no-voting", action="store_true")
    for action in ("stop-master", "start-all", "stop-all"):
        sub.add_parser(action)
    return parser


def Main(argv: list[str] | None = None) -> int:
    """Run daemon-util; return its exit code."""
    options = BuildParser().parse_args(argv)
    try:
        if options.action == "start":
            messages = [StartDaemon(options.daemon, options.daemon_args)]
        elif options.action == "stop":
            messages = [StopDaemon(options.daemon)]
        elif options.action == "check":
            pid = GetPid(options.daemon)
            print(f"{options.daemon} {'running (pid %d)' % pid if pid else 'not running'}")
            return constants.EXIT_SUCCESS if pid else constants.EXIT_FAILURE
        elif options.action == "start-master":
            messages = StartMaster(options.no_voting)
        elif options.action == "stop-master":
            messages = StopMaster()
        elif options.action == "start-all":
            messages = StartAll()
        else:
            messages = StopAll()
    except errors.GenericError as err:
        print(f"daemon-util: {err}", file=sys.stderr)
        return constants.EXIT_FAILURE
    for message in messages:
        print(message)
    return constants.EXIT_SUCCESS
