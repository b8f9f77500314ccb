"""Preparing a new node to join the cluster (the first half of ``gnt-node add``).

The master gives the new node what its node daemon needs to be trusted and
to trust the master: the cluster certificate (``server.pem``), a client
certificate made for that node (``client.pem``), the confd HMAC key, the
RAPI certificate, the cluster domain secret and the ssconf files; then it
starts the node's daemon with ``daemon-util start ganeti-noded``. After
this the master checks the node over RPC and adds it to the configuration
(``LUNodeAdd``).

Two ways, behind :func:`SetupNode` (doc/design-cluster.rst):

- SSH (a real cluster): paramiko connects as root to the node's SSH port,
  checks its host key against the cluster's ``known_hosts`` (unless told
  not to), copies the files with SFTP keeping their modes, and runs
  ``daemon-util`` there;
- local (a virtual cluster): when ``GANETI_ROOTDIR`` is set and the node's
  root ``<base>/<node name>`` exists beside this node's, the files are
  written into that root and ``daemon-util`` runs with the node's
  environment.
"""

from __future__ import annotations

import logging
import os
import posixpath
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ganeti import constants, crypto_setup, errors, pathutils, utils

#: Seconds the remote daemon start may take
START_TIMEOUT = 120
#: Seconds to connect by SSH
SSH_CONNECT_TIMEOUT = 30

MODE_AUTO = "auto"
MODE_LOCAL = "local"
MODE_SSH = "ssh"


@dataclass(frozen=True)
class NodeFile:
    """A file for the new node: contents and mode."""

    data: bytes
    mode: int


@dataclass(frozen=True)
class NodePorts:
    """Where the new node's daemons listen (None: the default ports) and its
    SSH port."""

    noded: int | None = None
    confd: int | None = None
    ssh: int = constants.NDC_DEFAULTS[constants.ND_SSH_PORT]  # type: ignore[assignment]


@dataclass
class SshOptions:
    """How to reach a node by SSH.

    ``strict_host_key`` refuses a host whose key is not in the cluster's
    known_hosts (``gnt-node add --no-ssh-key-check`` turns it off; the key is
    then accepted and recorded). ``key_file`` is the private key (default:
    root's keys and the SSH agent). ``remote_env`` is put in front of the
    remote command (e.g. ``GANETI_ROOTDIR``, whose directory also receives
    the files), ``remote_python`` and ``remote_daemon_util`` name the
    interpreter and the daemon-util launcher on the node (default: the same
    layout as here).
    """

    user: str = "root"
    #: Where to connect (default: the node's IP)
    host: str | None = None
    strict_host_key: bool = True
    known_hosts_file: str | None = None
    key_file: str | None = None
    password: str | None = None
    remote_env: dict[str, str] = field(default_factory=dict)
    remote_python: str = sys.executable
    remote_daemon_util: str | None = None
    connect_timeout: float = SSH_CONNECT_TIMEOUT


def _DataPath(name: str) -> str:
    """A file of the data directory as a path on any node (no node root)."""
    return posixpath.join(constants.DEFAULT_DATA_DIR, name)


def GatherNodeFiles(node_name: str) -> dict[str, NodeFile]:
    """The files a new node needs, keyed by their path on the node.

    Paths are the real ones (``/var/lib/ganeti/...``), without any virtual
    cluster root. The client certificate is made for ``node_name`` here,
    signed by the cluster certificate.

    @raise errors.OpPrereqError: when this node lacks the cluster's files
    """
    files: dict[str, NodeFile] = {}
    for local, name in ((pathutils.NODED_CERT_FILE, constants.SERVER_PEM_NAME),
                        (pathutils.CONFD_HMAC_KEY, constants.CONFD_HMAC_KEY_NAME),
                        (pathutils.RAPI_CERT_FILE, constants.RAPI_PEM_NAME),
                        (pathutils.CLUSTER_DOMAIN_SECRET_FILE,
                         constants.CLUSTER_DOMAIN_SECRET_NAME)):
        try:
            data = utils.ReadBinaryFile(local)
        except OSError as err:
            if name == constants.SERVER_PEM_NAME:
                raise errors.OpPrereqError(
                    f"Cannot read the cluster certificate {local}: {err}; is this"
                    " the master node of an initialised cluster?",
                    errors.ECODE_ENVIRON) from None
            logging.warning("Not copying %s to %s: %s", local, node_name, err)
            continue
        files[_DataPath(name)] = NodeFile(data, crypto_setup.CRYPTO_FILES[name].mode)

    with tempfile.TemporaryDirectory(prefix="gnt-node-add") as tmpdir:
        client_pem = os.path.join(tmpdir, constants.CLIENT_PEM_NAME)
        crypto_setup.GenerateNodeClientCert(client_pem, pathutils.NODED_CERT_FILE,
                                            node_name)
        files[_DataPath(constants.CLIENT_PEM_NAME)] = NodeFile(
            utils.ReadBinaryFile(client_pem),
            crypto_setup.CRYPTO_FILES[constants.CLIENT_PEM_NAME].mode)

    try:
        names = sorted(os.listdir(pathutils.SSCONF_DIR))
    except OSError:
        names = []
    for name in names:
        if name.startswith("ssconf_"):
            path = os.path.join(pathutils.SSCONF_DIR, name)
            if os.path.isfile(path):
                files[_DataPath(name)] = NodeFile(utils.ReadBinaryFile(path), 0o444)
    return files


def NodedArgs(node_ip: str, ports: NodePorts) -> list[str]:
    """The arguments making the new node's daemon listen where the
    configuration will say it does (it is not yet in ssconf)."""
    port = ports.noded or constants.DEFAULT_NODED_PORT
    return ["-b", node_ip, "-p", str(port)]


def StartNodedCommand(python: str, daemon_util: str, node_ip: str,
                      ports: NodePorts) -> list[str]:
    """The command starting a node's daemon: ``daemon-util start ganeti-noded``."""
    return [python, daemon_util, "start", constants.NODED,
            *NodedArgs(node_ip, ports)]


def DefaultDaemonUtil() -> str:
    """The daemon-util launcher of this installation."""
    from ganeti import daemon_util
    return os.path.join(daemon_util.DaemonsDir(), "daemon-util")


# --- Local mode (virtual cluster) ---------------------------------------------------

def LocalNodeRoot(node_name: str) -> str | None:
    """The root directory of ``node_name`` in this virtual cluster, or None
    (not a virtual cluster, or no such directory)."""
    root = pathutils.GetRootDirectory()
    if not root:
        return None
    node_root = pathutils.MakeNodeRoot(os.path.dirname(root), node_name)
    return node_root if os.path.isdir(node_root) else None


def _WriteLocalFiles(node_root: str, files: Mapping[str, NodeFile]) -> None:
    for path, nfile in files.items():
        target = pathutils.AddNodePrefix(path, _noderoot=node_root)
        os.makedirs(os.path.dirname(target), mode=0o755, exist_ok=True)
        utils.WriteFile(target, data=nfile.data, mode=nfile.mode)


def SetupLocalNode(node_name: str, node_ip: str, files: Mapping[str, NodeFile],
                   ports: NodePorts, node_root: str,
                   daemon_util: str | None = None) -> str:
    """Write the files into the node's root and start its node daemon there.

    @return: daemon-util's message
    @raise errors.OpExecError: when the daemon does not start
    """
    _WriteLocalFiles(node_root, files)
    # The RAPI users file is uploaded later (redist, gnt-cluster rapi-user);
    # upload_file needs its directory, which a package would create
    os.makedirs(pathutils.AddNodePrefix(_DataPath("rapi"), _noderoot=node_root),
                mode=0o750, exist_ok=True)
    env = dict(os.environ)
    env.update(pathutils.EnvironmentForHost(
        node_name, _basedir=os.path.dirname(node_root)))
    pylib = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env["PYTHONPATH"] = os.pathsep.join(
        [pylib] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])
    cmd = StartNodedCommand(sys.executable, daemon_util or DefaultDaemonUtil(),
                            node_ip, ports)
    logging.info("Starting the node daemon of %s: %s", node_name, " ".join(cmd))
    try:
        result = subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL,
                                capture_output=True, timeout=START_TIMEOUT,
                                check=False)
    except subprocess.TimeoutExpired:
        raise errors.OpExecError(
            f"The node daemon of {node_name} did not start within"
            f" {START_TIMEOUT} seconds") from None
    output = (result.stdout + result.stderr).decode("utf-8", "replace").strip()
    if result.returncode != 0:
        raise errors.OpExecError(
            f"Cannot start the node daemon of {node_name} (exit code"
            f" {result.returncode}): {output or 'no output'}")
    return output


# --- SSH mode -------------------------------------------------------------------------

def _Connect(node_ip: str, port: int, options: SshOptions) -> Any:
    from ganeti import ssh
    known_hosts = options.known_hosts_file or pathutils.SSH_KNOWN_HOSTS_FILE
    return ssh.Connect(node_ip, port, user=options.user, known_hosts_file=known_hosts,
                       key_file=options.key_file, password=options.password,
                       strict=options.strict_host_key, timeout=options.connect_timeout,
                       unknown_key_hint=(f" (its key is not in {known_hosts}; add it"
                                         " there or use --no-ssh-key-check)"))


def _SftpMakeDirs(sftp: Any, directory: str) -> None:
    parts = [p for p in directory.split("/") if p]
    current = ""
    for part in parts:
        current += "/" + part
        try:
            sftp.stat(current)
        except OSError:
            sftp.mkdir(current, 0o755)


def _SftpPut(sftp: Any, path: str, nfile: NodeFile) -> None:
    """Write a file atomically (temporary name, mode, rename)."""
    _SftpMakeDirs(sftp, posixpath.dirname(path))
    tmp = f"{path}.new-{os.getpid()}"
    with sftp.open(tmp, "wb") as handle:
        handle.write(nfile.data)
    sftp.chmod(tmp, nfile.mode)
    sftp.posix_rename(tmp, path)


def _RunRemote(client: Any, command: str, timeout: float) -> tuple[int, str]:
    _, stdout, stderr = client.exec_command(command, timeout=timeout)
    channel = stdout.channel
    out = stdout.read() + stderr.read()
    return channel.recv_exit_status(), out.decode("utf-8", "replace").strip()


def SetupSshNode(node_name: str, node_ip: str, files: Mapping[str, NodeFile],
                 ports: NodePorts, options: SshOptions) -> str:
    """Copy the files over SFTP and start the node daemon over SSH.

    @return: daemon-util's output
    @raise errors.OpExecError: on a connection or remote failure
    """
    client = _Connect(options.host or node_ip, ports.ssh, options)
    try:
        root = options.remote_env.get(constants.GANETI_ROOTDIR_ENV, "")
        sftp = client.open_sftp()
        try:
            for path, nfile in sorted(files.items()):
                target = posixpath.normpath(root + path) if root else path
                _SftpPut(sftp, target, nfile)
        finally:
            sftp.close()
        cmd = StartNodedCommand(options.remote_python,
                                options.remote_daemon_util or DefaultDaemonUtil(),
                                node_ip, ports)
        env = [f"{key}={value}" for key, value in sorted(options.remote_env.items())]
        command = shlex.join((["env", *env] if env else []) + cmd)
        logging.info("Running on %s: %s", node_name, command)
        status, output = _RunRemote(client, command, START_TIMEOUT)
    finally:
        client.close()
    if status != 0:
        raise errors.OpExecError(
            f"Cannot start the node daemon of {node_name} over SSH (exit code"
            f" {status}): {output or 'no output'}")
    return output


def ChooseMode(node_name: str, mode: str = MODE_AUTO) -> str:
    """``local`` when the node's root lies beside this node's, else ``ssh``."""
    if mode != MODE_AUTO:
        if mode not in (MODE_LOCAL, MODE_SSH):
            raise errors.ProgrammerError(f"Unknown node setup mode {mode!r}")
        return mode
    return MODE_LOCAL if LocalNodeRoot(node_name) is not None else MODE_SSH


def SetupNode(node_name: str, node_ip: str,
              files: Mapping[str, NodeFile] | None = None,
              ports: NodePorts | None = None, mode: str = MODE_AUTO,
              ssh_options: SshOptions | None = None) -> str:
    """Prepare ``node_name`` (at ``node_ip``) and start its node daemon.

    ``files`` default to :func:`GatherNodeFiles`. Returns what daemon-util
    said.

    @raise errors.OpPrereqError: the cluster's files are missing here, or
        a virtual node's root does not exist
    @raise errors.OpExecError: the node cannot be reached or its daemon
        does not start
    """
    ports = ports or NodePorts()
    mode = ChooseMode(node_name, mode)
    if files is None:
        files = GatherNodeFiles(node_name)
    if mode == MODE_LOCAL:
        node_root = LocalNodeRoot(node_name)
        if node_root is None:
            raise errors.OpPrereqError(
                f"Node {node_name} has no root directory beside this node's"
                f" ({os.path.dirname(pathutils.GetRootDirectory()) or '-'}/{node_name})",
                errors.ECODE_NOENT)
        return SetupLocalNode(node_name, node_ip, files, ports, node_root)
    return SetupSshNode(node_name, node_ip, files, ports, ssh_options or SshOptions())
