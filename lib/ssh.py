"""Commands and file copies on nodes over SSH, for the administrator.

The node daemon runs no command and writes no file the master names at
will (doc/security.rst): ``gnt-cluster command`` and ``gnt-cluster
copyfile`` reach the nodes over SSH as root, as Ganeti's do, and whoever
runs them needs root's SSH access to the nodes, not only the cluster
certificate.

:class:`SshRunner` connects with paramiko to a node's address and SSH
port as ``root``, authenticating with root's keys (or the SSH agent). The
node's host key must be in the cluster's ``known_hosts``
(``pathutils.SSH_KNOWN_HOSTS_FILE``) under the address connected to, the
node's name or the cluster's name (Ganeti's ``HostKeyAlias``: the nodes of
a cluster share the cluster's host key); an unknown or different key is
refused.

:class:`VirtualClusterRunner` serves a virtual cluster, whose nodes are
root directories on this machine: a command runs here with the node's
``GANETI_ROOTDIR``/``GANETI_HOSTNAME`` (what the node's ``cmd`` wrapper
does), and a copy goes to the same path inside the node's root.
:func:`GetRunner` picks the one that fits.

:func:`Connect` is also what ``gnt-node add`` uses
(:mod:`ganeti.bootstrap.node_setup`).
"""

from __future__ import annotations

import logging
import os
import posixpath
import shlex
import subprocess
from dataclasses import dataclass
from typing import Any

from ganeti import constants, errors, pathutils, utils

#: The user Ganeti logs in as on the nodes
SSH_LOGIN_USER = "root"
#: Seconds to connect (TCP, banner and authentication each)
CONNECT_TIMEOUT = 30
#: Seconds between keepalive messages while a command runs
KEEPALIVE_INTERVAL = 30
#: The exit code reported when the node could not be reached (ssh's)
EXIT_SSH_ERROR = 255

_READ_SIZE = 1 << 16


@dataclass(frozen=True)
class NodeTarget:
    """A node to reach: its name, the address and SSH port to connect to.

    ``root`` is the node's root directory on that host when the node is a
    virtual one (its commands get ``GANETI_ROOTDIR``/``GANETI_HOSTNAME``,
    its copies land below the root); "" for a real node.
    """

    name: str
    address: str
    port: int = constants.NDC_DEFAULTS[constants.ND_SSH_PORT]  # type: ignore[assignment]
    root: str = ""


@dataclass(frozen=True)
class CommandResult:
    """What a command printed (standard output and error, interleaved) and
    its exit code (255 when the node could not be reached, as ssh's)."""

    exit_code: int
    output: str

    @property
    def failed(self) -> bool:
        """Whether the command exited with a non-zero code."""
        return self.exit_code != 0


# --- Connecting ------------------------------------------------------------------------

def _AddAliasKeys(host_keys: Any, server_name: str, port: int,
                  aliases: tuple[str, ...]) -> None:
    """Make the first known key of an alias count for ``server_name``."""
    if host_keys.lookup(server_name) is not None:
        return
    for alias in aliases:
        for name in (f"[{alias}]:{port}", alias):
            found = host_keys.lookup(name)
            if found:
                for key_type in list(found.keys()):
                    host_keys.add(server_name, key_type, found[key_type])
                return


def Connect(host: str, port: int, user: str = SSH_LOGIN_USER,
            known_hosts_file: str | None = None, key_file: str | None = None,
            password: str | None = None, strict: bool = True,
            aliases: tuple[str, ...] = (), timeout: float = CONNECT_TIMEOUT,
            unknown_key_hint: str = "") -> Any:
    """Open an SSH connection (a paramiko ``SSHClient``) to ``host:port``.

    The host key must be in ``known_hosts_file`` (default: the cluster's)
    under the host, ``[host]:port`` or one of ``aliases``. Without
    ``strict`` an unknown key is accepted and recorded in that file
    (``gnt-node add --no-ssh-key-check``). ``key_file`` is the private key
    (default: the user's keys and the SSH agent). ``unknown_key_hint`` is
    added to the error for a host whose key is not known.

    @raise errors.OpPrereqError: the host key differs from the known one
    @raise errors.OpExecError: the connection or the login failed
    """
    import paramiko

    client = paramiko.SSHClient()
    known_hosts = known_hosts_file or pathutils.SSH_KNOWN_HOSTS_FILE
    if os.path.isfile(known_hosts):
        client.load_host_keys(known_hosts)
    server_name = host if port == 22 else f"[{host}]:{port}"
    if aliases:
        _AddAliasKeys(client.get_host_keys(), server_name, port, aliases)
    if strict:
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
    else:
        client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    where = f"{user}@{host}:{port}"
    try:
        client.connect(host, port=port, username=user, key_filename=key_file,
                       password=password, timeout=timeout, banner_timeout=timeout,
                       auth_timeout=timeout, look_for_keys=key_file is None,
                       allow_agent=key_file is None)
    except paramiko.BadHostKeyException as err:
        client.close()
        raise errors.OpPrereqError(
            f"The SSH host key of {host}:{port} differs from the one in"
            f" {known_hosts}: {err}", errors.ECODE_ENVIRON) from None
    except paramiko.SSHException as err:
        client.close()
        hint = ""
        if "not found in known_hosts" in str(err):
            hint = unknown_key_hint or f" (its key is not in {known_hosts})"
        raise errors.OpExecError(
            f"Cannot connect by SSH to {where}: {err}{hint}") from None
    except OSError as err:
        client.close()
        raise errors.OpExecError(f"Cannot connect by SSH to {where}: {err}") from None
    if not strict and os.path.isdir(os.path.dirname(known_hosts)):
        try:
            client.save_host_keys(known_hosts)
        except OSError as err:
            logging.warning("Cannot record the host key of %s: %s", host, err)
    return client


# --- Over SSH ---------------------------------------------------------------------------

def _NodeEnv(target: NodeTarget) -> dict[str, str]:
    if not target.root:
        return {}
    return {constants.GANETI_ROOTDIR_ENV: target.root,
            constants.GANETI_HOSTNAME_ENV: target.name}


def _ReadAll(channel: Any) -> bytes:
    chunks: list[bytes] = []
    while True:
        data = channel.recv(_READ_SIZE)
        if not data:
            return b"".join(chunks)
        chunks.append(data)


class SshRunner:
    """Run commands on nodes and copy files to them over SSH as root.

    ``known_hosts_file`` defaults to the cluster's; ``key_file`` to root's
    keys and the SSH agent. Without ``strict_host_key`` an unknown host key
    is accepted and recorded (as ``gnt-node add --no-ssh-key-check``; a
    different key is still refused).
    """

    def __init__(self, cluster_name: str | None, user: str = SSH_LOGIN_USER,
                 known_hosts_file: str | None = None, key_file: str | None = None,
                 connect_timeout: float = CONNECT_TIMEOUT,
                 strict_host_key: bool = True) -> None:
        self.cluster_name = cluster_name
        self.user = user
        self.known_hosts_file = known_hosts_file
        self.key_file = key_file
        self.connect_timeout = connect_timeout
        self.strict_host_key = strict_host_key

    def _Connect(self, target: NodeTarget) -> Any:
        aliases = tuple(name for name in (target.name, self.cluster_name) if name)
        return Connect(target.address, target.port, user=self.user,
                       known_hosts_file=self.known_hosts_file,
                       key_file=self.key_file, aliases=aliases,
                       timeout=self.connect_timeout, strict=self.strict_host_key)

    def Run(self, target: NodeTarget, command: str) -> CommandResult:
        """Run ``command`` (a shell command line) on the node.

        A node that cannot be reached gives exit code 255 and the reason as
        output, as ssh does.
        """
        env = _NodeEnv(target)
        if env:
            command = shlex.join(["env", *(f"{k}={v}" for k, v in sorted(env.items())),
                                  "/bin/sh", "-c", command])
        try:
            client = self._Connect(target)
        except errors.GenericError as err:
            return CommandResult(EXIT_SSH_ERROR, f"{err.args[0]}\n")
        try:
            transport = client.get_transport()
            # a node that vanishes mid-command ends the wait eventually
            transport.set_keepalive(KEEPALIVE_INTERVAL)
            channel = transport.open_session(timeout=self.connect_timeout)
            channel.set_combine_stderr(True)
            channel.exec_command(command)
            output = _ReadAll(channel)
            status = channel.recv_exit_status()
        except Exception as err:  # noqa: BLE001 - socket and paramiko errors
            return CommandResult(EXIT_SSH_ERROR,
                                 f"SSH connection to {target.address} failed: {err}\n")
        finally:
            client.close()
        # -1: the command ended without a status (killed by a signal)
        return CommandResult(EXIT_SSH_ERROR if status < 0 else status,
                             output.decode("utf-8", "replace"))

    def CopyFile(self, target: NodeTarget, filename: str) -> None:
        """Copy the local file ``filename`` to the same path on the node,
        keeping its mode and times (as ``scp -p``); the file is replaced
        atomically, its directory must exist.

        @raise errors.OpExecError: naming the node and the reason
        """
        st = os.stat(filename)
        dest = posixpath.normpath(target.root + filename) if target.root else filename
        tmp = posixpath.join(posixpath.dirname(dest),
                             f".{posixpath.basename(dest)}.gnt-copy-{os.getpid()}")
        try:
            client = self._Connect(target)
        except errors.GenericError as err:
            raise errors.OpExecError(err.args[0]) from None
        try:
            sftp = client.open_sftp()
            try:
                sftp.put(filename, tmp, confirm=True)
                try:
                    sftp.chmod(tmp, st.st_mode & 0o7777)
                    sftp.utime(tmp, (st.st_atime, st.st_mtime))
                    sftp.posix_rename(tmp, dest)
                except BaseException:
                    try:
                        sftp.remove(tmp)
                    except OSError:
                        pass
                    raise
            finally:
                sftp.close()
        except OSError as err:
            raise errors.OpExecError(
                f"Cannot copy {filename} to {target.name}:{dest}: {err}") from None
        except Exception as err:  # noqa: BLE001 - paramiko's own errors
            raise errors.OpExecError(
                f"Cannot copy {filename} to {target.name}: {err}") from None
        finally:
            client.close()


# --- In a virtual cluster ----------------------------------------------------------------

class VirtualClusterRunner:
    """Run commands as, and copy files to, the nodes of this virtual
    cluster (node roots beside this node's)."""

    @staticmethod
    def _NodeRoot(target: NodeTarget) -> str:
        env = pathutils.EnvironmentForHost(target.name)
        root = env.get(constants.GANETI_ROOTDIR_ENV, "")
        if not root or not os.path.isdir(root):
            raise errors.OpExecError(
                f"Node {target.name} has no root directory beside this node's"
                f" ({root or 'not a virtual cluster'})")
        return root

    def Run(self, target: NodeTarget, command: str) -> CommandResult:
        """Run ``command`` through the shell in the node's environment, in
        its root directory."""
        try:
            root = self._NodeRoot(target)
        except errors.OpExecError as err:
            return CommandResult(EXIT_SSH_ERROR, f"{err.args[0]}\n")
        env = dict(os.environ)
        env.update(pathutils.EnvironmentForHost(target.name))
        try:
            proc = subprocess.run(["/bin/sh", "-c", command], env=env, cwd=root,
                                  stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, check=False,
                                  start_new_session=True)
        except OSError as err:
            return CommandResult(EXIT_SSH_ERROR, f"Cannot run the command: {err}\n")
        code = proc.returncode if proc.returncode >= 0 else 128 - proc.returncode
        return CommandResult(code, proc.stdout.decode("utf-8", "replace"))

    def CopyFile(self, target: NodeTarget, filename: str) -> None:
        """Copy ``filename`` (below this node's root) to the same path in
        the node's root, keeping mode and times.

        @raise errors.OpPrereqError: the file lies outside this node's root
        @raise errors.OpExecError: the copy failed
        """
        root = self._NodeRoot(target)
        try:
            dest = pathutils.ExchangeNodeRoot(target.name, filename)
        except errors.ProgrammerError:
            raise errors.OpPrereqError(
                f"In a virtual cluster only files below this node's root"
                f" ({pathutils.GetRootDirectory()}) can be copied, not"
                f" {filename}", errors.ECODE_INVAL) from None
        if not utils.IsBelowDir(root, dest):
            raise errors.ProgrammerError(f"{dest} is not below {root}")
        st = os.stat(filename)
        if not os.path.isdir(os.path.dirname(dest)):
            raise errors.OpExecError(
                f"Cannot copy {filename} to {target.name}: directory"
                f" {os.path.dirname(dest)} does not exist")
        try:
            utils.WriteFile(dest, data=utils.ReadBinaryFile(filename),
                            mode=st.st_mode & 0o7777, atime=st.st_atime,
                            mtime=st.st_mtime)
        except OSError as err:
            raise errors.OpExecError(
                f"Cannot copy {filename} to {target.name}: {err}") from None


def GetRunner(cluster_name: str | None) -> SshRunner | VirtualClusterRunner:
    """The runner reaching this cluster's nodes: local in a virtual
    cluster, SSH otherwise."""
    if pathutils.IsVirtualCluster():
        return VirtualClusterRunner()
    return SshRunner(cluster_name)
