"""Set up, inspect and stop a virtual cluster on this machine (seed 004).

A virtual cluster is N nodes on one machine: node ``i`` is named
``node<i>.vcluster.test`` (configurable), has its own root directory
``<dir>/<name>/`` (``GANETI_ROOTDIR``) and its own loopback address
``<net>.<i>`` (default net ``127.0.1``; Linux routes all of 127.0.0.0/8 to
``lo``, so nothing needs configuring; we check by binding). Every daemon of
a node binds that node's address with the default ports.

:func:`Setup` creates the roots, runs ``gnt-cluster init`` as node 1
(fake hypervisor, file and diskless storage), ``gnt-node add`` for the
others (which, in a virtual cluster, prepares the node's root and starts its
node daemon locally), ``gnt-cluster verify``, starts ``ganeti-confd`` on
the master candidates, creates the RAPI user ``vcluster`` (write access,
a random password made once and kept in ``<dir>/rapi-password``, so that
it stays the same when a stopped cluster is started again) with
``gnt-cluster rapi-user add``, starts ``ganeti-rapi`` on the master (its
primary IP, port 5080) and writes ``<dir>/env`` for ``.``-sourcing, with
``RAPI_HOST``, ``RAPI_PORT``, ``RAPI_USER`` and ``RAPI_PASSWORD`` (the file
is mode 0600). Node daemons run with ``--no-mlock`` (see
:func:`ganeti.daemon_util.DefaultExtraArgs`). :func:`Stop` stops every
daemon of the cluster by the PID in its pid file.

Nothing here needs root, and nothing looks up system users: every daemon
runs as the user who runs the setup, and everything written is below
``<dir>`` (which must be that user's). The one root-only step is optional:
the bridge of the default NICs (``xen-br0``, or ``bridge``), shared by all
virtual nodes, is created when missing if we are root; when it is missing
and cannot be created, the setup says so and initialises the cluster with
routed default NICs instead (``mode=routed`` and an empty ``link``, i.e.
the main routing table: in routed mode the link names a routing table, not
a device), which need no device on the node; such NICs need an IP address
(``--net 0:ip=...``), as in Ganeti. See :func:`EnsureDefaultBridge`.

Files kept in ``<dir>``: ``vcluster.json`` (what was set up and its state),
``env``, ``rapi-password`` (mode 0600), ``pids`` (one ``pid node daemon``
per line, written after setup),
``setup.log`` (every command run and its output), ``shared-file-storage/``
(the images of ``sharedfile`` disks: each node's
``/srv/ganeti/shared-file-storage`` is a symlink to it, so all nodes share
it as they would share an NFS mount), and in each node root an executable
``cmd`` running a command as that node.
"""

from __future__ import annotations

import errno
import functools
import json
import os
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field

from ganeti import constants, errors, utils

DEFAULT_DIR = "/tmp/ganeti-vcluster"
DEFAULT_NODES = 3
DEFAULT_NET = "127.0.1"
DEFAULT_NAME_FORMAT = "node{i}.vcluster.test"
DEFAULT_CLUSTER_NAME = "cluster.vcluster.test"
#: The host part of the master IP within the net (never a node's)
MASTER_IP_HOST = 254
MAX_NODES = MASTER_IP_HOST - 1
#: Node-relative; file storage paths are mapped into each node's root
FILE_STORAGE_DIR = constants.DEFAULT_FILE_STORAGE_DIR
#: The directory in ``<dir>`` that all nodes' shared file storage dirs link to
SHARED_FILE_STORAGE_NAME = "shared-file-storage"

#: The volume group of every virtual node (Ganeti's default name)
VG_NAME = constants.DEFAULT_VG
#: MiB of each virtual node's physical volume (a sparse file: with LVM's
#: activation off, only metadata is ever written)
PV_SIZE_MIB = 1024 * 1024
#: Below the repository: the DRBD stand-in's commands
DRBD_STANDIN_DIR = "tools/drbd-standin"
#: The disk templates of a cluster with storage (file first: the default)
STORAGE_TEMPLATES = (constants.DT_FILE, constants.DT_DISKLESS, constants.DT_PLAIN,
                     constants.DT_DRBD8, constants.DT_EXT)

STATE_FILE = "vcluster.json"
ENV_FILE = "env"
PIDS_FILE = "pids"
LOG_FILE = "setup.log"
NODE_CMD = "cmd"

STATUS_SETTING_UP = "setting-up"
STATUS_FAILED = "failed"
STATUS_RUNNING = "running"
STATUS_STOPPED = "stopped"

#: Time limits (seconds) of the commands we run
INIT_TIMEOUT = 180
ADD_TIMEOUT = 180
VERIFY_TIMEOUT = 600
DAEMON_TIMEOUT = 60
STOP_TIMEOUT = 30.0

#: The RAPI user every virtual cluster gets (write access, random password)
RAPI_USER = "vcluster"
#: The file in ``<dir>`` keeping that user's password across restarts
RAPI_PASSWORD_FILE = "rapi-password"
RAPI_PORT = constants.DEFAULT_RAPI_PORT

#: The cluster's default NIC parameters when the bridge is missing and cannot
#: be created: routed NICs need no device; an empty link is the main table
ROUTED_NICPARAMS = {constants.NIC_MODE: constants.NIC_MODE_ROUTED,
                    constants.NIC_LINK: ""}

_RUN_DIR = constants.DEFAULT_RUN_DIR.lstrip("/")
_DATA_DIR = constants.DEFAULT_DATA_DIR.lstrip("/")


class VclusterError(errors.GenericError):
    """A virtual cluster cannot be set up, or a step of its setup failed."""


@dataclass
class Node:
    """One virtual node."""
    name: str
    ip: str
    root: str


@dataclass
class State:
    """What ``vcluster.json`` records about a virtual cluster."""
    directory: str
    net: str
    cluster_name: str
    master_ip: str
    noded_port: int
    confd_port: int
    nodes: list[Node] = field(default_factory=list)
    status: str = STATUS_SETTING_UP
    created: float = 0.0
    #: the cluster's (default) hypervisor: fake, or kvm (real QEMU guests)
    hypervisor: str = constants.HT_FAKE
    #: whether each node has its own LVM view (a loop-backed volume group
    #: VG_NAME) and the plain and drbd templates are enabled
    storage: bool = False
    #: whether the LVM views map active logical volumes onto loop devices,
    #: so that plain disks are real block devices (one loop device each)
    loop_activation: bool = False

    def Save(self) -> None:
        """Write the state file atomically."""
        data = asdict(self)
        utils.WriteFile(os.path.join(self.directory, STATE_FILE),
                        data=json.dumps(data, indent=1, sort_keys=True) + "\n")

    @classmethod
    def Load(cls, directory: str) -> State | None:
        """Read ``<directory>/vcluster.json``; None if there is none.

        @raise VclusterError: if it cannot be read or parsed
        """
        path = os.path.join(directory, STATE_FILE)
        try:
            with open(path, encoding="utf-8") as fd:
                data = json.load(fd)
            data["nodes"] = [Node(**node) for node in data["nodes"]]
            return cls(**data)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, TypeError, KeyError) as err:
            raise VclusterError(f"Cannot read the virtual cluster state {path}:"
                                f" {err}") from err

    def NodeByName(self, name: str) -> Node | None:
        """The node called ``name``, if it belongs to this cluster."""
        for node in self.nodes:
            if node.name == name:
                return node
        return None


# --- Planning and checks ---------------------------------------------------


def CheckNet(net: str) -> str:
    """Validate a three-octet IPv4 prefix such as ``127.0.1``."""
    parts = net.split(".")
    if len(parts) != 3 or not all(p.isdigit() and int(p) < 256 for p in parts):
        raise VclusterError(f"Network prefix '{net}' must be three octets of an"
                            " IPv4 address, e.g. 127.0.1")
    return ".".join(str(int(p)) for p in parts)


def NodeName(name_format: str, index: int) -> str:
    """The name of node ``index`` (1-based) from ``name_format``."""
    name = name_format.format(i=index)
    if name == name_format.format(i=index + 1):
        raise VclusterError(f"Node name format '{name_format}' must contain"
                            " '{i}' (the node number)")
    if not name or "/" in name or name.startswith("."):
        raise VclusterError(f"Node name '{name}' cannot be a directory name")
    return name


def PlanNodes(directory: str, count: int, net: str = DEFAULT_NET,
              name_format: str = DEFAULT_NAME_FORMAT) -> list[Node]:
    """Name, address and root of every node; node 1 is the first master."""
    if not 1 <= count <= MAX_NODES:
        raise VclusterError(f"Number of nodes must be between 1 and {MAX_NODES},"
                            f" got {count}")
    net = CheckNet(net)
    return [Node(name, f"{net}.{i}", os.path.join(directory, name))
            for i in range(1, count + 1)
            for name in [NodeName(name_format, i)]]


def CheckAddresses(nodes: Iterable[Node], noded_port: int,
                   confd_port: int) -> None:
    """Check that every node's address is local and its ports are free.

    Binding, rather than looking at interfaces, is the test that matters:
    the daemons will bind the same address and ports.

    @raise VclusterError: naming the first address that does not work
    """
    for node in nodes:
        for kind, port in ((socket.SOCK_STREAM, 0), (socket.SOCK_STREAM, noded_port),
                           (socket.SOCK_DGRAM, confd_port)):
            sock = socket.socket(socket.AF_INET, kind)
            try:
                if kind == socket.SOCK_STREAM:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind((node.ip, port))
            except OSError as err:
                proto = "tcp" if kind == socket.SOCK_STREAM else "udp"
                if port == 0 or err.errno == errno.EADDRNOTAVAIL:
                    raise VclusterError(
                        f"Address {node.ip} of {node.name} is not local ({err});"
                        f" add it with 'ip addr add {node.ip}/32 dev lo' or choose"
                        " another network prefix") from err
                if err.errno == errno.EACCES:
                    raise VclusterError(
                        f"Port {proto} {node.ip}:{port} needed by {node.name} is a"
                        f" privileged port that only root may bind ({err}); choose"
                        " a port above 1023 (--noded-port, --confd-port)") from err
                raise VclusterError(
                    f"Port {proto} {node.ip}:{port} needed by {node.name} is in use"
                    f" ({err}); stop what uses it or choose another network"
                    " prefix") from err
            finally:
                sock.close()


def CheckDirectory(directory: str) -> None:
    """Refuse a cluster directory that exists and is not ours.

    The setup writes everything of the cluster below it as the user running
    it; in a shared ``/tmp`` the default directory may be another user's
    (or root's, from an earlier ``make vcluster`` as root), where the setup
    would fail halfway or write where that user chose. Ownership is
    compared by uid: no user database lookup.

    @raise VclusterError: naming the directory and its owner's uid
    """
    try:
        st = os.stat(directory)
    except FileNotFoundError:
        return
    except OSError as err:
        raise VclusterError(f"Cannot use directory {directory}: {err}") from err
    if not os.path.isdir(directory):
        raise VclusterError(f"{directory} is not a directory; choose another one"
                            " (VCLUSTER_DIR=...)")
    euid = os.geteuid()
    if st.st_uid != euid:
        raise VclusterError(f"Directory {directory} belongs to uid {st.st_uid}, not to"
                            f" you (uid {euid}); choose another one (VCLUSTER_DIR=...)")


# --- Processes ------------------------------------------------------------


def _ReadEnviron(pid: int) -> dict[str, str] | None:
    try:
        with open(f"/proc/{pid}/environ", "rb") as fd:
            raw = fd.read()
    except OSError:
        return None
    result = {}
    for item in raw.split(b"\0"):
        key, sep, value = item.partition(b"=")
        if sep:
            result[key.decode(errors="replace")] = value.decode(errors="replace")
    return result


def BelongsTo(pid: int, directory: str) -> bool:
    """Whether live process ``pid`` runs as a node of the cluster in ``directory``.

    Guards against a stale pid file naming a recycled pid.
    """
    if not utils.IsProcessAlive(pid):
        return False
    environ = _ReadEnviron(pid)
    if environ is None:
        return False
    root = environ.get(constants.GANETI_ROOTDIR_ENV, "")
    return bool(root) and utils.IsBelowDir(directory, root)


def _Children(pid: int) -> list[int]:
    result: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return result
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children", encoding="ascii") as fd:
                result.extend(int(p) for p in fd.read().split())
        except (OSError, ValueError):
            continue
    return result


def PidFiles(node: Node) -> dict[str, str]:
    """The pid files in a node's run directory, by daemon name."""
    run_dir = os.path.join(node.root, _RUN_DIR)
    try:
        names = os.listdir(run_dir)
    except OSError:
        return {}
    return {name[:-len(".pid")]: os.path.join(run_dir, name)
            for name in names if name.endswith(".pid")}


def QemuPids(node: Node) -> list[int]:
    """The pids of the node's live KVM instances (QEMU daemonizes, so they
    are nobody's children: their pid files find them)."""
    from ganeti.hypervisor.hv_kvm import runtime
    run_dir = os.path.join(node.root, _RUN_DIR, "kvm-hypervisor")
    pids = []
    for name in runtime.PidFileNames(run_dir):
        pid = runtime.InstancePid(name, run_dir)
        if pid:
            pids.append(pid)
    return pids


def RunningDaemons(state: State) -> dict[tuple[str, str], int]:
    """Live daemons of the cluster: (node name, daemon name) -> pid."""
    result = {}
    for node in state.nodes:
        for daemon, path in PidFiles(node).items():
            pid = utils.ReadPidFile(path)
            if pid and BelongsTo(pid, state.directory):
                result[(node.name, daemon)] = pid
    return result


def _ReadSsconf(node: Node, key: str) -> list[str]:
    path = os.path.join(node.root, _DATA_DIR, constants.SSCONF_FILEPREFIX + key)
    try:
        with open(path, encoding="utf-8") as fd:
            return [line.strip() for line in fd if line.strip()]
    except OSError:
        return []


def _FreshestNode(state: State) -> Node:
    """The node whose ssconf was written last (ssconf has no serial number;
    every write reaches all online nodes, so the newest file is current)."""
    best, best_mtime = state.nodes[0], -1.0
    for node in state.nodes:
        path = os.path.join(node.root, _DATA_DIR,
                            constants.SSCONF_FILEPREFIX + constants.SS_MASTER_NODE)
        try:
            mtime = os.stat(path).st_mtime
        except OSError:
            continue
        if mtime > best_mtime:
            best, best_mtime = node, mtime
    return best


def MasterName(state: State) -> str:
    """The current master node, from the freshest ssconf (node 1 if none)."""
    names = _ReadSsconf(_FreshestNode(state), constants.SS_MASTER_NODE)
    return names[0] if names else state.nodes[0].name


def CandidateNames(state: State) -> list[str]:
    """The master candidates, from the freshest ssconf."""
    return _ReadSsconf(_FreshestNode(state), constants.SS_MASTER_CANDIDATES)


def ExpectedDaemons(state: State) -> set[tuple[str, str]]:
    """(node, daemon) pairs a running cluster has: noded everywhere, masterd
    on the master, confd on every master candidate."""
    known = {node.name for node in state.nodes}
    expected = {(node.name, constants.NODED) for node in state.nodes}
    expected.add((MasterName(state), constants.MASTERD))
    expected.update((name, constants.CONFD) for name in CandidateNames(state)
                    if name in known)
    return expected


def IsRunning(state: State) -> bool:
    """Whether every daemon a running cluster has is alive."""
    return ExpectedDaemons(state) <= set(RunningDaemons(state))


def _RecordedPids(directory: str) -> list[int]:
    try:
        with open(os.path.join(directory, PIDS_FILE), encoding="ascii") as fd:
            return [int(line.split()[0]) for line in fd if line.split()]
    except (OSError, ValueError):
        return []


def WritePids(state: State) -> dict[tuple[str, str], int]:
    """Record the live daemons in ``<dir>/pids``; returns them."""
    daemons = RunningDaemons(state)
    lines = [f"{pid} {node} {daemon}\n"
             for (node, daemon), pid in sorted(daemons.items())]
    utils.WriteFile(os.path.join(state.directory, PIDS_FILE), data="".join(lines))
    return daemons


def StopDaemons(directory: str, state: State | None,
                timeout: float = STOP_TIMEOUT) -> list[int]:
    """SIGTERM every daemon of the cluster (and their children) and every
    QEMU of its KVM instances, SIGKILL the ones still alive after
    ``timeout``; returns the pids that were running.

    Daemons are found by the pid files in each node's run directory and in
    ``<dir>/pids``; a pid counts only if its process runs with a
    ``GANETI_ROOTDIR`` below ``directory``.
    """
    pids = set(_RecordedPids(directory))
    if state is not None:
        for node in state.nodes:
            pids.update(utils.ReadPidFile(path) for path in PidFiles(node).values())
            pids.update(QemuPids(node))
    pids = {pid for pid in pids if pid and BelongsTo(pid, directory)}
    # The processes a daemon started (commands it runs) belong to the cluster too
    todo = list(pids)
    while todo:
        for child in _Children(todo.pop()):
            if child not in pids and BelongsTo(child, directory):
                pids.add(child)
                todo.append(child)
    for pid in sorted(pids):
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    if not _WaitGone(pids, timeout):
        for pid in pids:
            if BelongsTo(pid, directory):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        _WaitGone(pids, 10.0)
    return sorted(pids)


def _WaitGone(pids: Iterable[int], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    pending = set(pids)
    while True:
        pending = {pid for pid in pending if utils.IsProcessAlive(pid)}
        if not pending:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)  # bounded poll: these are not our children


# --- Running the tools ------------------------------------------------------


@dataclass
class Tools:
    """Where the gnt-* scripts, daemons and Python interpreter are."""
    repo: str
    python: str = sys.executable

    def Script(self, name: str) -> str:
        """Path of a gnt-* script or daemon launcher of this tree."""
        for subdir in ("scripts", "daemons", "tools"):
            path = os.path.join(self.repo, subdir, name)
            if os.path.exists(path):
                return path
        raise VclusterError(f"Cannot find '{name}' under {self.repo}"
                            " (scripts/, daemons/, tools/)")

    def PathDirs(self) -> list[str]:
        """Directories to put first on PATH: our scripts, the stand-in for the
        kernel's DRBD (``drbdsetup``, ``drbdmeta``: virtual nodes have no DRBD)
        and the venv's python3 (the scripts run ``/usr/bin/env python3``)."""
        dirs = [os.path.join(self.repo, d) for d in ("scripts", "daemons", "tools",
                                                      DRBD_STANDIN_DIR)]
        dirs.append(os.path.dirname(self.python))
        return dirs

    def PythonPath(self) -> str | None:
        """A directory holding ``ganeti`` for interpreters without it."""
        pylib = os.path.join(self.repo, "build", "pylib")
        return pylib if os.path.isdir(os.path.join(pylib, "ganeti")) else None

    def NodeEnv(self, node: Node) -> dict[str, str]:
        """The environment of a process acting as ``node``."""
        env = dict(os.environ)
        env[constants.GANETI_ROOTDIR_ENV] = node.root
        env[constants.GANETI_HOSTNAME_ENV] = node.name
        env["PATH"] = os.pathsep.join(self.PathDirs() + [env.get("PATH", "")])
        pylib = self.PythonPath()
        if pylib:
            env["PYTHONPATH"] = os.pathsep.join(
                [pylib] + [p for p in [os.environ.get("PYTHONPATH")] if p])
        return env


class Runner:
    """Runs tools as a node, logging every command to ``<dir>/setup.log``."""

    def __init__(self, tools: Tools, log_path: str,
                 feedback: Callable[[str], None]) -> None:
        self.tools = tools
        self.log_path = log_path
        self.feedback = feedback

    def _Log(self, text: str) -> None:
        with open(self.log_path, "a", encoding="utf-8") as fd:
            fd.write(text)

    def Run(self, node: Node, script: str, args: Sequence[str],
            timeout: float, check: bool = True) -> subprocess.CompletedProcess:
        """Run ``script args`` as ``node``; raise VclusterError if it fails
        (when ``check``), with its output."""
        cmd = [self.tools.python, self.tools.Script(script), *args]
        shown = " ".join(shlex.quote(a) for a in [script, *args])
        start = time.monotonic()
        try:
            result = subprocess.run(cmd, env=self.tools.NodeEnv(node),
                                    stdin=subprocess.DEVNULL, capture_output=True,
                                    text=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired as err:
            self._Log(f"[{node.name}] $ {shown}\n  timed out after {timeout}s\n")
            raise VclusterError(f"'{shown}' (as {node.name}) did not finish in"
                                f" {timeout}s") from err
        elapsed = time.monotonic() - start
        output = (result.stdout or "") + (result.stderr or "")
        self._Log(f"[{node.name}] $ {shown}\n{output}"
                  f"  exit {result.returncode} in {elapsed:.2f}s\n")
        if check and result.returncode != 0:
            raise VclusterError(f"'{shown}' (as {node.name}) failed with exit code"
                                f" {result.returncode}:\n{output.rstrip()}")
        return result


# --- Setup ------------------------------------------------------------------


#: The tree's OS definitions every virtual node gets
NODE_OS_DEFINITIONS = ("noop", "testguest")


def _InstallNoopOs(node: Node, tools: Tools) -> None:
    """Copy the tree's noop and testguest OS definitions into the node's OS
    search path, so that `gnt-instance add -o noop` (or `-o testguest`, a
    disk for the test guest) works on a fresh virtual cluster."""
    for name in NODE_OS_DEFINITIONS:
        source = os.path.join(tools.repo, "os-definitions", name)
        target = os.path.join(node.root,
                              constants.DEFAULT_OS_SEARCH_PATH[0].lstrip("/"), name)
        if os.path.isdir(source) and not os.path.exists(target):
            shutil.copytree(source, target)
    # The shipped ExtStorage providers (loopfile: ext disks as loop devices)
    source_dir = os.path.join(tools.repo, "extstorage-definitions")
    if os.path.isdir(source_dir):
        for name in sorted(os.listdir(source_dir)):
            target = os.path.join(node.root,
                                  constants.DEFAULT_ES_SEARCH_PATH[0].lstrip("/"), name)
            if not os.path.exists(target):
                shutil.copytree(os.path.join(source_dir, name), target)


def SharedFileStorageDir(directory: str) -> str:
    """The one real directory behind every node's shared file storage
    directory in the virtual cluster in ``directory``."""
    return os.path.join(directory, SHARED_FILE_STORAGE_NAME)


def _LinkSharedFileStorage(node: Node) -> None:
    """Make the node's shared file storage directory a symlink to the
    cluster's one real directory, so that every node sees the same images
    (as sharedfile storage on NFS would); a real directory already there
    (a cluster set up before) is kept."""
    shared = SharedFileStorageDir(os.path.dirname(node.root))
    os.makedirs(shared, exist_ok=True)
    link = os.path.join(node.root, constants.DEFAULT_SHARED_FILE_STORAGE_DIR.lstrip("/"))
    if os.path.lexists(link):
        return
    os.makedirs(os.path.dirname(link), exist_ok=True)
    os.symlink(shared, link)


def _PrepareRoot(node: Node, tools: Tools) -> None:
    for path in (constants.DEFAULT_DATA_DIR, constants.DEFAULT_RUN_DIR,
                 constants.DEFAULT_LOG_DIR, constants.DEFAULT_CONF_DIR,
                 FILE_STORAGE_DIR):
        os.makedirs(os.path.join(node.root, path.lstrip("/")), exist_ok=True)
    _LinkSharedFileStorage(node)
    _InstallNoopOs(node, tools)
    env = {constants.GANETI_ROOTDIR_ENV: node.root,
           constants.GANETI_HOSTNAME_ENV: node.name}
    exports = "".join(f"export {k}={shlex.quote(v)}\n" for k, v in env.items())
    path = ":".join(shlex.quote(d) for d in tools.PathDirs())
    utils.WriteFile(os.path.join(node.root, NODE_CMD), mode=0o755, data=(
        "#!/bin/sh\n"
        f"# Run a command as virtual node {node.name}, e.g.: {NODE_CMD} gnt-node list\n"
        f"{exports}export PATH={path}:\"$PATH\"\n"
        'exec "$@"\n'))


@dataclass
class RapiAccess:
    """Where RAPI answers and who may use it."""
    host: str
    port: int
    user: str
    password: str


def CurlCommand(env_vars: bool = True, rapi: RapiAccess | None = None) -> str:
    """A curl line reading ``/2/info``; with shell variables of the env file
    (``env_vars``) or the values of ``rapi`` filled in."""
    if env_vars or rapi is None:
        return ('curl -k -u "$RAPI_USER:$RAPI_PASSWORD"'
                ' "https://$RAPI_HOST:$RAPI_PORT/2/info"')
    return (f"curl -k -u {shlex.quote(rapi.user + ':' + rapi.password)}"
            f" https://{rapi.host}:{rapi.port}/2/info")


def FormatEnv(state: State, master: Node, tools: Tools,
              candidates: Sequence[Node], rapi: RapiAccess | None = None) -> str:
    """The text of ``<dir>/env``."""
    path = ":".join(shlex.quote(d) for d in tools.PathDirs())
    peers = " ".join(node.ip for node in candidates)
    lines = [
        f"# Virtual cluster {state.cluster_name} in {state.directory}, written by"
        " tools/vcluster-setup.",
        f"# Use it with: . {shlex.quote(os.path.join(state.directory, ENV_FILE))}",
        f"# Commands then act as the master node {master.name}; run a command as"
        " another",
        f"# node with {shlex.quote(state.directory)}/<node>/{NODE_CMD} <command>.",
        f"export VCLUSTER_DIR={shlex.quote(state.directory)}",
        f"export {constants.GANETI_ROOTDIR_ENV}={shlex.quote(master.root)}",
        f"export {constants.GANETI_HOSTNAME_ENV}={shlex.quote(master.name)}",
        f"export PATH={path}:\"$PATH\"",
    ]
    pylib = tools.PythonPath()
    if pylib:
        lines.append(f"export PYTHONPATH={shlex.quote(pylib)}"
                     "${PYTHONPATH:+:$PYTHONPATH}")
    lines += [
        f"export CONFD_PORT={state.confd_port}",
        f"export CONFD_PEERS={shlex.quote(peers)}",
    ]
    if rapi is not None:
        lines += [
            f"# RAPI: {CurlCommand()}",
            f"export RAPI_HOST={shlex.quote(rapi.host)}",
            f"export RAPI_PORT={rapi.port}",
            f"export RAPI_USER={shlex.quote(rapi.user)}",
            f"export RAPI_PASSWORD={shlex.quote(rapi.password)}",
        ]
    return "\n".join(lines) + "\n"


def Usage(state: State) -> str:
    """How to use the cluster, printed after setup."""
    env = shlex.quote(os.path.join(state.directory, ENV_FILE))
    master = MasterName(state)
    names = ", ".join(f"{n.name} ({n.ip})" for n in state.nodes[:5])
    if len(state.nodes) > 5:
        names += f", ... ({len(state.nodes)} nodes)"
    return (f"Virtual cluster {state.cluster_name} is running in {state.directory}\n"
            f"  nodes: {names}\n"
            f"  master: {master}\n"
            "Use it:\n"
            f"  . {env}\n"
            "  gnt-node list\n"
            "  gnt-cluster verify\n"
            f"  {CurlCommand()}\n"
            f"{FormatCrontabHint(state)}"
            f"Stop it: make vcluster-stop VCLUSTER_DIR={shlex.quote(state.directory)}\n")


# --- The watcher ------------------------------------------------------------

#: The file in ``<dir>`` holding the crontab lines of the watcher
CRONTAB_FILE = "crontab"
#: Nodes whose watcher runs at the same time in :func:`RunWatcher`
WATCHER_PARALLEL = 8
#: Seconds one node's watcher run may take in :func:`RunWatcher`
WATCHER_TIMEOUT = 600.0


def CrontabLines(state: State) -> list[str]:
    """One crontab line per node running ganeti-watcher every five minutes as
    that node (through the node's ``cmd`` wrapper, which sets its
    environment), as a real cluster's ``/etc/cron.d/ganeti`` does."""
    return [f"*/5 * * * * {shlex.quote(os.path.join(node.root, NODE_CMD))}"
            f" ganeti-watcher" for node in state.nodes]


def FormatCrontabHint(state: State) -> str:
    """The crontab lines for the usage text (all of them for a few nodes,
    else where they are)."""
    lines = CrontabLines(state)
    path = os.path.join(state.directory, CRONTAB_FILE)
    text = "Run the watcher from cron (crontab -e), one line per node:\n"
    shown = lines if len(lines) <= 5 else lines[:2] + [f"... ({len(lines)} lines in {path})"]
    text += "".join(f"  {line}\n" for line in shown)
    text += ("or once on every node: make vcluster-watcher"
             f" VCLUSTER_DIR={shlex.quote(state.directory)}\n")
    return text


def WriteCrontab(state: State) -> str:
    """Write ``<dir>/crontab``; return its path."""
    path = os.path.join(state.directory, CRONTAB_FILE)
    utils.WriteFile(path, mode=0o644, data=(
        f"# ganeti-watcher for every node of the virtual cluster in {state.directory}\n"
        + "".join(line + "\n" for line in CrontabLines(state))))
    return path


def _PendingJobs(socket_path: str) -> list[tuple[int, str]]:
    from ganeti.luxi import client as luxi_client
    with luxi_client.Client(socket_path, timeouts=(10, 120)) as client:
        jobs = client.QueryJobs(None, ["id", "status"])
    return [(job_id, status) for job_id, status in (job for job in jobs if job is not None)
            if status not in constants.JOBS_FINALIZED]


def WaitForJobs(socket_path: str, timeout: float) -> list[int]:
    """Wait until the master at ``socket_path`` has no unfinished job, at most
    ``timeout`` seconds; return the jobs still unfinished then."""
    from ganeti.luxi import client as luxi_client
    deadline = time.monotonic() + timeout
    while True:
        pending = _PendingJobs(socket_path)
        remaining = deadline - time.monotonic()
        if not pending or remaining <= 0:
            return [job_id for job_id, _ in pending]
        job_id, status = pending[0]
        with luxi_client.Client(socket_path, timeouts=(10, 120)) as client:
            # Returns when the job's status changes (or after the wait's timeout)
            client.WaitForJobChangeOnce(job_id, ["status"], [status], None,
                                        timeout=min(remaining, 30.0))


def RunWatcher(directory: str, args: Sequence[str] = (),
               feedback: Callable[[str], None] = print,
               parallel: int = WATCHER_PARALLEL,
               timeout: float = WATCHER_TIMEOUT) -> int:
    """Run ganeti-watcher once on every node of the running virtual cluster in
    ``directory`` (the other nodes at the same time, then the master, whose
    run includes the master's part), then wait until the jobs it
    submitted have ended; return 0 if every run succeeded and no job is
    left unfinished, else 1."""
    directory = os.path.abspath(directory)
    state = State.Load(directory)
    # Some daemons may be down: restarting them is the watcher's work
    if state is None or state.status != STATUS_RUNNING:
        raise VclusterError(f"No virtual cluster is running in {directory}")
    tools = Tools(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    master = state.NodeByName(MasterName(state)) or state.nodes[0]
    start = time.monotonic()

    def _Run(node: Node) -> tuple[Node, int, str]:
        cmd = [tools.python, tools.Script(constants.WATCHER), *args]
        try:
            result = subprocess.run(cmd, env=tools.NodeEnv(node), stdin=subprocess.DEVNULL,
                                    capture_output=True, text=True, timeout=timeout,
                                    check=False)
        except subprocess.TimeoutExpired:
            return node, -1, f"did not finish within {timeout:.0f}s"
        return node, result.returncode, (result.stdout + result.stderr).strip()

    # The other nodes first (their part needs no master), then the master:
    # its part then sees every node daemon they restarted, so that one run
    # also restarts the instances of a node whose daemon was down
    others = [node for node in state.nodes if node is not master]
    with ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
        results = list(pool.map(_Run, others))
    results.append(_Run(master))
    failed = 0
    for node, code, output in results:
        if code != 0:
            failed += 1
            feedback(f"{node.name}: ganeti-watcher failed (exit code {code})"
                     + (f": {output}" if output else ""))
    socket_path = os.path.join(master.root, _RUN_DIR, "socket", "ganeti-master")
    try:
        pending = WaitForJobs(socket_path, timeout)
    except errors.GenericError as err:
        feedback(f"Cannot follow the jobs on the master {master.name}: {err}")
        return 1
    feedback(f"ganeti-watcher ran on {len(state.nodes)} node(s)"
             f" ({failed} failed); their jobs ended; {time.monotonic() - start:.1f}s")
    if pending:
        feedback(f"Jobs still unfinished after {timeout:.0f}s: "
                 + " ".join(map(str, pending)))
    return 1 if failed or pending else 0


def _RunAll(funcs: Sequence[Callable[[], object]], parallel: int) -> None:
    if parallel <= 1 or len(funcs) <= 1:
        for func in funcs:
            func()
        return
    with ThreadPoolExecutor(max_workers=parallel) as pool:
        futures = [pool.submit(func) for func in funcs]
        first_error = None
        for future in futures:
            try:
                future.result()
            except VclusterError as err:
                first_error = first_error or err
        if first_error:
            raise first_error


def _EnsureDaemon(runner: Runner, state: State, node: Node, daemon: str) -> None:
    """Start ``daemon`` on ``node`` with daemon-util unless it runs already."""
    if (node.name, daemon) in RunningDaemons(state):
        return
    runner.Run(node, "daemon-util", ["start", daemon], DAEMON_TIMEOUT)
    if (node.name, daemon) not in RunningDaemons(state):
        raise VclusterError(f"'daemon-util start {daemon}' on {node.name} succeeded"
                            " but no live process is named in its pid file")


def _StartCandidatesConfd(runner: Runner, state: State, parallel: int) -> list[Node]:
    candidates = [node for node in (state.NodeByName(n) for n in CandidateNames(state))
                  if node is not None]
    if not candidates:
        raise VclusterError("ssconf lists no master candidates")
    _RunAll([functools.partial(_EnsureDaemon, runner, state, node, constants.CONFD)
             for node in candidates], parallel)
    return candidates


def RapiPassword(directory: str) -> str:
    """The RAPI user's password, kept in ``<directory>/rapi-password``.

    Made once (random) and reused by every later setup of the same cluster,
    so that an env file sourced before a restart keeps working; the file is
    private to its owner (mode 0600, restored if it was widened).
    """
    path = os.path.join(directory, RAPI_PASSWORD_FILE)
    try:
        with open(path, encoding="ascii") as fd:
            password = fd.read().strip()
    except FileNotFoundError:
        password = ""
    except (OSError, ValueError) as err:
        raise VclusterError(f"Cannot read the RAPI password file {path}: {err}") from err
    if password:
        if os.stat(path).st_mode & 0o077:
            os.chmod(path, 0o600)
        return password
    password = secrets.token_urlsafe(18)
    utils.WriteFile(path, data=password + "\n", mode=0o600)
    return password


def _SetupRapi(runner: Runner, state: State, master: Node) -> RapiAccess:
    """Set the cluster RAPI user's password (:func:`RapiPassword`) with
    ``gnt-cluster rapi-user add``, which also ships the users file to the
    other nodes, and start ganeti-rapi on the master (daemon-util binds its
    primary IP, port 5080). Setting it again on a restart is harmless and
    repairs a users file changed meanwhile."""
    password = RapiPassword(state.directory)
    runner.Run(master, "gnt-cluster",
               ["rapi-user", "add", "--password-file",
                os.path.join(state.directory, RAPI_PASSWORD_FILE), RAPI_USER],
               DAEMON_TIMEOUT)
    _EnsureDaemon(runner, state, master, constants.RAPI)
    return RapiAccess(master.ip, RAPI_PORT, RAPI_USER, password)


#: The hypervisors a virtual cluster can run
HYPERVISORS = (constants.HT_FAKE, constants.HT_KVM)


def KvmHvParams(guest_dir: str) -> dict[str, str]:
    """The cluster's KVM parameters in a virtual cluster: QEMU's software
    accelerator (DESIGN.md: KVM hangs guests here, and QEMU run as "kvm"
    picks KVM by itself), the test guest's kernel and initramfs booted
    directly, its console on the serial port."""
    from ganeti.tools import test_guest
    return {
        constants.HV_KVM_PATH: "/usr/bin/qemu-system-x86_64",
        constants.HV_KVM_FLAG: constants.KVM_FLAG_DISABLED,
        constants.HV_KERNEL_PATH: os.path.join(guest_dir, test_guest.KERNEL_FILE),
        constants.HV_INITRD_PATH: os.path.join(guest_dir, test_guest.INITRD_FILE),
        constants.HV_ROOT_PATH: "",
        constants.HV_KERNEL_ARGS: "quiet panic=-1",
        constants.HV_SERIAL_CONSOLE: "true",
        constants.HV_SERIAL_SPEED: "115200",
    }


def EnsureTestGuest(feedback: Callable[[str], None]) -> str:
    """Build (or reuse) the test guest; return its directory.

    @raise VclusterError: when it cannot be built (the message says why)
    """
    from ganeti.tools import test_guest
    try:
        guest = test_guest.EnsureGuest(log=lambda msg: feedback(f"  test guest: {msg}"))
    except test_guest.GuestBuildError as err:
        raise VclusterError(f"Cannot build the test guest for KVM instances: {err}") \
            from err
    return str(guest.directory)


def _HypervisorArgs(state: State, guest_dir: str | None) -> list[str]:
    if state.hypervisor != constants.HT_KVM:
        return ["--enabled-hypervisors", constants.HT_FAKE]
    assert guest_dir is not None
    hvparams = ",".join(f"{key}={value}" for key, value in KvmHvParams(guest_dir).items())
    # kvm first: the default hypervisor of new instances; fake stays usable
    return ["--enabled-hypervisors", f"{constants.HT_KVM},{constants.HT_FAKE}",
            "-H", f"{constants.HT_KVM}:{hvparams}"]


def _StorageArgs(state: State) -> list[str]:
    if not state.storage:
        return ["--enabled-disk-templates", f"{constants.DT_FILE},{constants.DT_DISKLESS}"]
    return ["--enabled-disk-templates", ",".join(STORAGE_TEMPLATES),
            "--vg-name", VG_NAME]


def StorageAvailable() -> bool:
    """Whether virtual nodes can have their own LVM view here (root, lvm2
    and loop devices)."""
    from ganeti.storage import lvm_view
    return lvm_view.LvmViewAvailable()


def _SetupNodeStorage(state: State, node: Node) -> None:
    from ganeti.storage import lvm_view
    lvm_view.SetupNodeLvm(node.root, PV_SIZE_MIB, VG_NAME,
                          loop_activation=state.loop_activation)


def _StopNodeStorage(state: State, keep: bool = True) -> None:
    """Detach the loop devices of the nodes' LVM views; their images stay
    (``keep``: a restart attaches them again, with their volumes)."""
    if not state.storage:
        return
    from ganeti.storage import lvm_view
    for node in state.nodes:
        lvm_view.TeardownNodeLvm(node.root, keep_image=keep)


def _InitArgs(state: State, master: Node,
              nicparams: dict[str, str] | None = None,
              guest_dir: str | None = None) -> list[str]:
    args = ["init", "--node-ip", master.ip,
            *_HypervisorArgs(state, guest_dir),
            *_StorageArgs(state),
            "--file-storage-dir", FILE_STORAGE_DIR,
            "--no-etc-hosts", "--no-ssh-init",
            "--master-netdev", "lo", "--master-ip", state.master_ip]
    changed = {key: value for key, value in (nicparams or {}).items()
               if constants.NICC_DEFAULTS.get(key) != value}
    if changed:
        args += ["--nic-parameters",
                 ",".join(f"{key}={value}" for key, value in sorted(changed.items()))]
    args += _PortArgs(state)
    return args + [state.cluster_name]


def _PortArgs(state: State) -> list[str]:
    args = []
    if state.noded_port != constants.DEFAULT_NODED_PORT:
        args += ["--noded-port", str(state.noded_port)]
    if state.confd_port != constants.DEFAULT_CONFD_PORT:
        args += ["--confd-port", str(state.confd_port)]
    return args


def Setup(directory: str, count: int = DEFAULT_NODES, net: str = DEFAULT_NET,
          name_format: str = DEFAULT_NAME_FORMAT,
          cluster_name: str = DEFAULT_CLUSTER_NAME,
          noded_port: int = constants.DEFAULT_NODED_PORT,
          confd_port: int = constants.DEFAULT_CONFD_PORT,
          parallel: int = 1, repo: str | None = None,
          feedback: Callable[[str], None] = print,
          bridge: str = constants.DEFAULT_BRIDGE,
          hypervisor: str = constants.HT_FAKE,
          storage: bool | None = None, loop_activation: bool = False) -> State:
    """Create and start a virtual cluster in ``directory``.

    Does nothing (but say so) if a cluster there is already running; starts
    the missing daemons of one that was set up and is partly or wholly
    stopped; starts afresh after a failed setup. ``bridge`` is the link of
    the new cluster's default NICs (see :func:`DefaultNicParams`);
    ``hypervisor`` its default hypervisor: ``kvm`` gives real QEMU guests
    (TCG, the test guest's kernel: :func:`KvmHvParams`), ``fake`` none.
    ``storage``: give each node its own LVM view (a loop-backed volume
    group) and enable plain and drbd (DRBD through the stand-in); None
    (the default) does so when this machine can (:func:`StorageAvailable`).
    ``loop_activation``: with storage, the LVM views map active logical
    volumes onto loop devices, so that plain disks hold real data (see
    :func:`ganeti.storage.lvm_view.EnableLoopActivation`).

    @raise VclusterError: for bad parameters or a failed step (every daemon
        started by then is stopped again)
    """
    directory = os.path.abspath(directory)
    CheckDirectory(directory)
    tools = Tools(repo or os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    state = State.Load(directory)
    if state is not None and state.status in (STATUS_RUNNING, STATUS_STOPPED):
        if IsRunning(state):
            feedback(f"virtual cluster in {directory} is already running")
            feedback(Usage(state))
            return state
        return _Restart(state, tools, feedback, parallel)
    if state is not None:
        feedback(f"Removing the failed virtual cluster setup in {directory}")
        StopDaemons(directory, state)
        _RemoveSetup(directory, state)
    elif os.path.isdir(directory) and os.listdir(directory):
        raise VclusterError(f"Directory {directory} is not empty and holds no virtual"
                            " cluster; choose another one (VCLUSTER_DIR=...)")
    nodes = PlanNodes(directory, count, net, name_format)
    master_ip = f"{CheckNet(net)}.{MASTER_IP_HOST}"
    for port in (noded_port, confd_port):
        if not 0 < port < 65536:
            raise VclusterError(f"Invalid port {port}")
    CheckBridgeName(bridge)
    if hypervisor not in HYPERVISORS:
        raise VclusterError(f"Unknown hypervisor '{hypervisor}' (a virtual cluster runs"
                            f" {' or '.join(HYPERVISORS)})")
    CheckAddresses(nodes, noded_port, confd_port)
    if storage is None:
        storage = StorageAvailable()
    elif storage and not StorageAvailable():
        raise VclusterError("Virtual nodes cannot have LVM here: it takes root, lvm2"
                            " and loop devices")
    os.makedirs(directory, exist_ok=True)
    state = State(directory=directory, net=CheckNet(net), cluster_name=cluster_name,
                  master_ip=master_ip, noded_port=noded_port, confd_port=confd_port,
                  nodes=nodes, created=time.time(), hypervisor=hypervisor,
                  storage=storage, loop_activation=bool(storage and loop_activation))
    state.Save()
    runner = Runner(tools, os.path.join(directory, LOG_FILE), feedback)
    try:
        _Create(state, runner, parallel, feedback, bridge)
    except BaseException:
        state.status = STATUS_FAILED
        state.Save()
        StopDaemons(directory, state)
        _StopNodeStorage(state)
        feedback(f"Setup failed; every command and its output is in"
                 f" {runner.log_path}")
        raise
    return state


def CheckBridgeName(bridge: str) -> str:
    """Validate the name of the default NICs' bridge (a network interface name)."""
    if not 0 < len(bridge) < 16 or bridge in (".", "..") or \
            any(c in "/,=" or c.isspace() for c in bridge):
        raise VclusterError(f"Bridge name '{bridge}' is not a network interface name"
                            " (1 to 15 characters, no '/', ',', '=' nor blanks)")
    return bridge


def _BridgeExists(bridge: str) -> bool:
    return os.path.isdir(os.path.join("/sys/class/net", bridge, "bridge"))


def EnsureDefaultBridge(feedback: Callable[[str], None],
                        bridge: str = constants.DEFAULT_BRIDGE) -> bool:
    """Make sure the bridge of the cluster's default NIC parameters exists.

    Every virtual node shares this host's network devices, so one bridge
    serves them all; as root it is created (``ip link add ... type
    bridge``) when missing. Without root, or when creating it fails, the
    step is skipped with a message saying why (the callers decide what
    that means for the cluster's NICs). The bridge is left in place when
    the cluster stops: other virtual clusters on this host may use it.
    Returns whether the bridge exists.
    """
    if _BridgeExists(bridge):
        return True
    if os.geteuid() != 0:
        feedback(f"Skipping the default NIC bridge {bridge}: it does not exist and"
                 " only root can create it")
        return False
    result = subprocess.run(["ip", "link", "add", "name", bridge, "type", "bridge"],
                            capture_output=True, text=True, check=False)
    # Another setup may have created it meanwhile
    if _BridgeExists(bridge):
        if result.returncode == 0:
            feedback(f"Created bridge {bridge} for the default NIC parameters")
        return True
    feedback(f"Skipping the default NIC bridge {bridge}: cannot create it:"
             f" {(result.stderr or result.stdout).strip()}")
    return False


def DefaultNicParams(bridge: str, feedback: Callable[[str], None]) -> dict[str, str]:
    """The default NIC parameters a new virtual cluster is initialised with.

    Bridged on ``bridge`` when it exists or we could create it; otherwise
    routed (:data:`ROUTED_NICPARAMS`), which needs no device on the node,
    so that instances can still be made without root; the message says so
    and what routed NICs need.
    """
    if EnsureDefaultBridge(feedback, bridge):
        return {constants.NIC_MODE: constants.NIC_MODE_BRIDGED,
                constants.NIC_LINK: bridge}
    feedback("  The cluster's default NICs are routed instead (mode=routed, no link:"
             " the main routing table), which needs no bridge; give each NIC an IP"
             " address, e.g. 'gnt-instance add ... --net 0:ip=192.0.2.10'. To bridge"
             f" them later, as root: ip link add name {bridge} type bridge;"
             f" gnt-cluster modify -N mode=bridged,link={bridge}")
    return dict(ROUTED_NICPARAMS)


def _ClusterNicParams(master: Node) -> dict[str, str]:
    """The cluster's default NIC parameters, from the master's configuration
    (Ganeti's defaults when it cannot be read)."""
    path = os.path.join(master.root, _DATA_DIR, constants.CLUSTER_CONF_FILE_NAME)
    try:
        with open(path, encoding="utf-8") as fd:
            params = json.load(fd)["cluster"]["nicparams"][constants.PP_DEFAULT]
        return {**constants.NICC_DEFAULTS, **params}
    except (OSError, ValueError, KeyError, TypeError):
        return dict(constants.NICC_DEFAULTS)


def _Create(state: State, runner: Runner, parallel: int,
            feedback: Callable[[str], None],
            bridge: str = constants.DEFAULT_BRIDGE) -> None:
    master, others = state.nodes[0], state.nodes[1:]
    nicparams = DefaultNicParams(bridge, feedback)
    guest_dir = None
    if state.hypervisor == constants.HT_KVM:
        feedback("Building (or reusing) the test guest for KVM instances")
        guest_dir = EnsureTestGuest(feedback)
    for node in state.nodes:
        _PrepareRoot(node, runner.tools)
    if state.storage:
        feedback(f"Giving each node its LVM volume group {VG_NAME} (loop devices)")
        for node in state.nodes:
            _SetupNodeStorage(state, node)
    feedback(f"Initialising cluster {state.cluster_name} on {master.name}"
             f" ({master.ip})")
    runner.Run(master, "gnt-cluster", _InitArgs(state, master, nicparams, guest_dir),
               INIT_TIMEOUT)
    _EnsureDaemon(runner, state, master, constants.NODED)
    _EnsureDaemon(runner, state, master, constants.MASTERD)
    if others:
        feedback(f"Adding {len(others)} node(s)")
    start = time.monotonic()
    _RunAll([functools.partial(
        runner.Run, master, "gnt-node",
        ["add", "--node-ip", node.ip, *_PortArgs(state), node.name], ADD_TIMEOUT)
             for node in others], parallel)
    if others:
        feedback(f"  added in {time.monotonic() - start:.1f}s")
    missing = [node.name for node in state.nodes
               if (node.name, constants.NODED) not in RunningDaemons(state)]
    if missing:
        raise VclusterError("No node daemon runs on " + ", ".join(missing))
    feedback("Verifying the cluster")
    result = runner.Run(master, "gnt-cluster", ["verify"], VERIFY_TIMEOUT, check=False)
    if result.returncode != 0:
        feedback("WARNING: gnt-cluster verify reported problems:\n"
                 + ((result.stdout or "") + (result.stderr or "")).rstrip())
    feedback("Starting confd on the master candidates")
    candidates = _StartCandidatesConfd(runner, state, parallel=max(parallel, 4))
    feedback("Starting RAPI on the master")
    rapi = _SetupRapi(runner, state, master)
    _Finish(state, runner.tools, candidates, feedback, rapi)


def _Finish(state: State, tools: Tools, candidates: Sequence[Node],
            feedback: Callable[[str], None], rapi: RapiAccess | None = None) -> None:
    master = state.NodeByName(MasterName(state)) or state.nodes[0]
    utils.WriteFile(os.path.join(state.directory, ENV_FILE), mode=0o600,
                    data=FormatEnv(state, master, tools, candidates, rapi))
    WritePids(state)
    WriteCrontab(state)
    state.status = STATUS_RUNNING
    state.Save()
    feedback(Usage(state))


def _CheckRestartBridge(master: Node, feedback: Callable[[str], None]) -> None:
    """Ensure the bridge of the cluster's default NICs if they are bridged
    (a host reboot removes it); a routed cluster needs none."""
    nicparams = _ClusterNicParams(master)
    link = nicparams.get(constants.NIC_LINK) or ""
    if nicparams.get(constants.NIC_MODE) != constants.NIC_MODE_BRIDGED:
        return
    try:
        CheckBridgeName(link)
    except VclusterError as err:
        feedback(f"WARNING: the cluster's default NIC link: {err}")
        return
    if not EnsureDefaultBridge(feedback, link):
        feedback(f"WARNING: instances with NICs bridged on {link} (the cluster's default"
                 " NIC parameters) will be refused until it exists")


def _Restart(state: State, tools: Tools, feedback: Callable[[str], None],
             parallel: int) -> State:
    """Start the missing daemons of a cluster that was set up before."""
    feedback(f"Starting the stopped daemons of the virtual cluster in"
             f" {state.directory}")
    runner = Runner(tools, os.path.join(state.directory, LOG_FILE), feedback)
    master = state.NodeByName(MasterName(state)) or state.nodes[0]
    _CheckRestartBridge(master, feedback)
    if state.storage:
        for node in state.nodes:
            _SetupNodeStorage(state, node)
    _RunAll([functools.partial(_EnsureDaemon, runner, state, node, constants.NODED)
             for node in state.nodes], max(parallel, 4))
    _EnsureDaemon(runner, state, master, constants.MASTERD)
    candidates = _StartCandidatesConfd(runner, state, parallel=max(parallel, 4))
    rapi = _SetupRapi(runner, state, master)
    _Finish(state, tools, candidates, feedback, rapi)
    return state


def _RemoveSetup(directory: str, state: State) -> None:
    """Delete what a (failed) setup created in ``directory``."""
    _StopNodeStorage(state, keep=False)
    for node in state.nodes:
        shutil.rmtree(node.root, ignore_errors=True)
    shutil.rmtree(SharedFileStorageDir(directory), ignore_errors=True)
    for name in (ENV_FILE, PIDS_FILE, RAPI_PASSWORD_FILE, STATE_FILE, CRONTAB_FILE):
        utils.RemoveFile(os.path.join(directory, name))


def Stop(directory: str, feedback: Callable[[str], None] = print) -> list[int]:
    """Stop every daemon of the virtual cluster in ``directory``; idempotent.

    Returns the pids that were stopped.
    """
    directory = os.path.abspath(directory)
    state = State.Load(directory)
    if state is None and not os.path.exists(os.path.join(directory, PIDS_FILE)):
        feedback(f"No virtual cluster in {directory}")
        return []
    pids = StopDaemons(directory, state)
    if state is not None:
        _StopNodeStorage(state)
    if state is not None and state.status == STATUS_RUNNING:
        state.status = STATUS_STOPPED
        state.Save()
    utils.RemoveFile(os.path.join(directory, PIDS_FILE))
    if pids:
        feedback(f"Stopped {len(pids)} process(es) of the virtual cluster in"
                 f" {directory}: {' '.join(map(str, pids))}")
    else:
        feedback(f"No daemon of the virtual cluster in {directory} was running")
    return pids
