"""The simple store: cluster-wide values every node keeps as small files.

Each key of ``constants.VALID_SS_KEYS`` is a file ``ssconf_<key>`` in the
data directory, written by the master (through noded) whenever the
configuration changes. Values are text; lists hold one item per line and
maps one ``key=value`` per line. Readers need no configuration, no daemon
and no privileges.

:meth:`SimpleStore.WriteFiles` replaces each changed file atomically and
writes the whole set under an exclusive lock; :meth:`SimpleStore.ReadAll` reads under
a shared lock, so it never sees half of an update.
"""

from __future__ import annotations

import errno
import logging
import os
import socket
import stat
import sys
from collections.abc import Iterable, Mapping
from typing import Any

from ganeti import constants, errors, pathutils, utils

__all__ = [
    "CheckMaster",
    "CheckMasterCandidate",
    "GetMasterAndMyself",
    "ReadSsconfFile",
    "SimpleStore",
    "VerifyClusterName",
    "VerifyKeys",
    "WriteSsconfFiles",
]

_VALID_KEYS = constants.VALID_SS_KEYS
_MAX_SIZE = constants.SSCONF_MAX_SIZE

# The lock file used when the store lives somewhere else than DATA_DIR (tests,
# tools working on a copy); it never looks like an ssconf file
_LOCAL_LOCK_NAME = ".ssconf.lock"


def ReadSsconfFile(filename: str) -> str:
    """Read one ssconf file, without the trailing newline(s).

    @raise OSError: if it cannot be read
    @raise errors.ConfigurationError: if it is too large
    """
    data = utils.ReadFile(filename, size=_MAX_SIZE + 1)
    if len(data) > _MAX_SIZE:
        raise errors.ConfigurationError(f"Ssconf file {filename} is larger"
                                        f" than {_MAX_SIZE} bytes")
    return data.rstrip("\n")


def _FormatValue(name: str, value: Any) -> str:
    """Turn a value into the text of its ssconf file."""
    if isinstance(value, (list, tuple)):
        value = "\n".join(str(item) for item in value)
    elif isinstance(value, (bool, int)):
        value = str(value)
    elif not isinstance(value, str):
        raise errors.ProgrammerError(f"Invalid value for ssconf key '{name}':"
                                     f" {value!r}")
    if value and not value.endswith("\n"):
        value += "\n"
    if len(value.encode("utf-8")) > _MAX_SIZE:
        raise errors.ConfigurationError(f"Value of ssconf key '{name}' has"
                                        f" {len(value)} bytes, more than the"
                                        f" {_MAX_SIZE} allowed")
    return value


def _ParseEndpoints(text: str, key: str) -> dict[str, tuple[str, int]]:
    result = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        parts = line.split()
        try:
            if len(parts) != 2:
                raise ValueError("expected 'name address:port'")
            result[parts[0]] = utils.SplitHostPort(parts[1])
        except ValueError as err:
            raise errors.ConfigurationError(f"Invalid line {line!r} in ssconf"
                                            f" key '{key}': {err}") from err
    return result


def _FileOwner() -> tuple[int, int]:
    """Who owns ssconf files: the master daemon's user under privilege
    separation (both it, on the master, and the node daemon as root write
    them), else whoever writes them."""
    from ganeti import runtime
    return runtime.FileOwnerIds("masterd", "masterd")


def _CreateLockFile(path: str) -> None:
    """Create the lock file with ensure-dirs' mode 0660 whatever the umask
    (the master daemon locks it by its group)."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o660)
    except OSError:
        return  # there already, or FileLock.Open says why not
    os.fchmod(fd, 0o660)
    os.close(fd)


def _HasContent(filename: str, text: str) -> bool:
    """Whether ``filename`` exists with exactly ``text`` and the ssconf mode."""
    try:
        with open(filename, encoding="utf-8") as fd:
            if stat.S_IMODE(os.fstat(fd.fileno()).st_mode) != constants.SS_FILE_PERMS:
                return False
            return fd.read() == text
    except (OSError, UnicodeDecodeError):
        return False


class SimpleStore:
    """Reads and writes the ssconf files of one directory.

    @param cfg_location: the directory (default: pathutils.DATA_DIR at the
        time of the call)
    """

    def __init__(self, cfg_location: str | None = None,
                 _lockfile: str | None = None):
        if cfg_location is None:
            self._cfg_dir = pathutils.DATA_DIR
            default_lock = pathutils.SSCONF_LOCK_FILE
        else:
            self._cfg_dir = cfg_location
            default_lock = os.path.join(cfg_location, _LOCAL_LOCK_NAME)
        self._lockfile = _lockfile or default_lock

    def KeyToFilename(self, key: str) -> str:
        """The file holding ``key``.

        @raise errors.ProgrammerError: for an unknown key
        """
        if key not in _VALID_KEYS:
            raise errors.ProgrammerError(f"Invalid key requested from SSConf:"
                                         f" '{key}'")
        return os.path.join(self._cfg_dir, constants.SSCONF_FILEPREFIX + key)

    def _ReadFile(self, key: str, default: Any = None) -> Any:
        """Return the value of ``key``, or ``default`` if its file is missing.

        @raise errors.ConfigurationError: naming the file, if it cannot be
            read (or is missing and there is no default)
        """
        filename = self.KeyToFilename(key)
        try:
            return ReadSsconfFile(filename)
        except OSError as err:
            if err.errno == errno.ENOENT and default is not None:
                return default
            raise errors.ConfigurationError(f"Can't read ssconf file"
                                            f" {filename}: {err}") from err
        except UnicodeDecodeError as err:
            raise errors.ConfigurationError(f"Ssconf file {filename} is not"
                                            f" UTF-8: {err}") from err

    ReadFile = _ReadFile

    def _ReadList(self, key: str) -> list[str]:
        return [line for line in self._ReadFile(key).splitlines() if line]

    def _ReadMap(self, key: str) -> dict[str, str]:
        """Read a file of "key=value" lines."""
        result = {}
        for line in self._ReadList(key):
            name, sep, value = line.partition("=")
            if not sep:
                raise errors.ConfigurationError(f"Invalid line {line!r} in"
                                                f" ssconf key '{key}'")
            result[name] = value
        return result

    def _OpenLock(self, create: bool) -> utils.FileLock | None:
        if create:
            return utils.FileLock.Open(self._lockfile)
        try:
            fd = os.open(self._lockfile, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            # Nobody has written under the lock yet, or we may not read it
            return None
        return utils.FileLock(fd, self._lockfile)

    def ReadAll(self) -> dict[str, str]:
        """Return every key that has a file, read as one consistent set."""
        lock = self._OpenLock(create=False)
        try:
            if lock is not None:
                lock.Shared(timeout=constants.SSCONF_LOCK_TIMEOUT)
            result = {}
            for key in sorted(_VALID_KEYS):
                try:
                    result[key] = self._ReadFile(key)
                except errors.ConfigurationError:
                    pass
            return result
        finally:
            if lock is not None:
                lock.Close()

    def WriteFiles(self, values: Mapping[str, Any],
                   dry_run: bool = False) -> None:
        """Write the given keys (others are left alone) as one update.

        Values are strings, lists (one item per line), integers or booleans.
        All keys and values are checked before anything is written.

        @raise errors.ProgrammerError: for an unknown key or bad value type
        @raise errors.ConfigurationError: for a value that is too large
        @raise errors.LockError: if the lock is not obtained in time
        """
        contents = {self.KeyToFilename(name): _FormatValue(name, value)
                    for name, value in values.items()}
        if dry_run:
            return
        uid, gid = _FileOwner()
        _CreateLockFile(self._lockfile)
        with utils.FileLock.Open(self._lockfile) as lock:
            lock.Exclusive(timeout=constants.SSCONF_LOCK_TIMEOUT)
            for filename, text in contents.items():
                # Most updates change one or two values: leave the other files
                # alone (a synced write each costs far more than a read)
                if _HasContent(filename, text):
                    continue
                utils.WriteFile(filename, data=text,
                                mode=constants.SS_FILE_PERMS, uid=uid, gid=gid)

    def GetFileList(self) -> list[str]:
        """The files of every key (for replicating them to nodes)."""
        return [self.KeyToFilename(key) for key in sorted(_VALID_KEYS)]

    # --- Single values ----------------------------------------------------

    def GetClusterName(self) -> str:
        """The cluster's name."""
        return self._ReadFile(constants.SS_CLUSTER_NAME)

    def GetFileStorageDir(self) -> str:
        """The cluster's file storage directory."""
        return self._ReadFile(constants.SS_FILE_STORAGE_DIR)

    def GetSharedFileStorageDir(self) -> str:
        """The cluster's shared file storage directory."""
        return self._ReadFile(constants.SS_SHARED_FILE_STORAGE_DIR)

    def GetGlusterStorageDir(self) -> str:
        """The cluster's Gluster storage directory."""
        return self._ReadFile(constants.SS_GLUSTER_STORAGE_DIR)

    def GetMasterIP(self) -> str:
        """The cluster's master IP address."""
        return self._ReadFile(constants.SS_MASTER_IP)

    def GetMasterNetdev(self) -> str:
        """The network device the master IP lives on."""
        return self._ReadFile(constants.SS_MASTER_NETDEV)

    def GetMasterNetmask(self) -> int:
        """The master IP's prefix length (default: the family's full one)."""
        try:
            text = self._ReadFile(constants.SS_MASTER_NETMASK)
        except errors.ConfigurationError:
            family = self.GetPrimaryIPFamily()
            return utils.IPAddress.GetClassFromIpFamily(family).iplen
        try:
            return int(text)
        except ValueError as err:
            raise errors.ConfigurationError(f"Invalid master netmask"
                                            f" {text!r}") from err

    def GetMasterNode(self) -> str:
        """The master node's name."""
        return self._ReadFile(constants.SS_MASTER_NODE)

    def GetReleaseVersion(self) -> str:
        """The software version the cluster runs."""
        return self._ReadFile(constants.SS_RELEASE_VERSION)

    def GetMaintainNodeHealth(self) -> bool:
        """Whether the watcher maintains node health."""
        return self._ReadFile(constants.SS_MAINTAIN_NODE_HEALTH) == "True"

    def GetEnabledUserShutdown(self) -> bool:
        """Whether instances may be shut down from inside."""
        return self._ReadFile(constants.SS_ENABLED_USER_SHUTDOWN) == "True"

    def GetUidPool(self) -> str:
        """The user-id pool, one range ("a-b" or "a") per line, unparsed."""
        return self._ReadFile(constants.SS_UID_POOL)

    def GetPrimaryIPFamily(self) -> int:
        """The cluster's primary address family (default: IPv4)."""
        text = self._ReadFile(constants.SS_PRIMARY_IP_FAMILY,
                              default=str(socket.AF_INET))
        try:
            return int(text)
        except ValueError as err:
            raise errors.ConfigurationError(f"Invalid primary IP family"
                                            f" {text!r}") from err

    # --- Lists ------------------------------------------------------------

    def GetMasterCandidates(self) -> list[str]:
        """Names of the master candidates."""
        return self._ReadList(constants.SS_MASTER_CANDIDATES)

    def GetMasterCandidatesIPList(self) -> list[str]:
        """Primary IPs of the master candidates."""
        return self._ReadList(constants.SS_MASTER_CANDIDATES_IPS)

    def GetNodeList(self) -> list[str]:
        """Names of all nodes."""
        return self._ReadList(constants.SS_NODE_LIST)

    def GetOnlineNodeList(self) -> list[str]:
        """Names of the online nodes."""
        return self._ReadList(constants.SS_ONLINE_NODES)

    def GetOfflineNodeList(self) -> list[str]:
        """Names of the offline nodes."""
        return self._ReadList(constants.SS_OFFLINE_NODES)

    def GetInstanceList(self) -> list[str]:
        """Names of all instances."""
        return self._ReadList(constants.SS_INSTANCE_LIST)

    def GetNodePrimaryIPList(self) -> list[str]:
        """"name primary-ip" lines, one per node."""
        return self._ReadList(constants.SS_NODE_PRIMARY_IPS)

    def GetNodeSecondaryIPList(self) -> list[str]:
        """"name secondary-ip" lines, one per node."""
        return self._ReadList(constants.SS_NODE_SECONDARY_IPS)

    def GetNodegroupList(self) -> list[str]:
        """"uuid name" lines, one per node group."""
        return self._ReadList(constants.SS_NODEGROUPS)

    def GetNetworkList(self) -> list[str]:
        """"uuid name" lines, one per network."""
        return self._ReadList(constants.SS_NETWORKS)

    def GetClusterTags(self) -> list[str]:
        """The cluster's tags."""
        return self._ReadList(constants.SS_CLUSTER_TAGS)

    def GetHypervisorList(self) -> list[str]:
        """The enabled hypervisors."""
        return self._ReadList(constants.SS_HYPERVISOR_LIST)

    # --- Maps -------------------------------------------------------------

    def GetMasterCandidatesCertMap(self) -> dict[str, str]:
        """Master candidate UUID -> digest of its client certificate."""
        return self._ReadMap(constants.SS_MASTER_CANDIDATES_CERTS)

    def GetNodesVmCapable(self) -> dict[str, bool]:
        """Node -> whether it may host instances."""
        return {node: value == "True" for node, value in
                self._ReadMap(constants.SS_NODE_VM_CAPABLE).items()}

    def GetSshPortMap(self) -> dict[str, int]:
        """Node name -> SSH port."""
        result = {}
        for node, port in self._ReadMap(constants.SS_SSH_PORTS).items():
            try:
                result[node] = int(port)
            except ValueError as err:
                raise errors.ConfigurationError(f"Invalid SSH port {port!r}"
                                                f" for node {node}") from err
        return result

    GetSshPorts = GetSshPortMap

    def GetHvparamsForHypervisor(self, hvname: str) -> dict[str, str]:
        """The hypervisor parameters of ``hvname`` (values as text)."""
        if hvname not in constants.HYPER_TYPES:
            raise errors.ProgrammerError(f"Invalid hypervisor '{hvname}'")
        return self._ReadMap(constants.SS_HVPARAMS_PREF + hvname)

    def GetHvparams(self) -> dict[str, dict[str, str]]:
        """Hypervisor name -> its parameters, for every hypervisor type."""
        return {hvname: self.GetHvparamsForHypervisor(hvname)
                for hvname in sorted(constants.HYPER_TYPES)}

    # --- Per-node endpoints (virtual clusters) ---------------------------

    def GetNodedEndpoints(self) -> dict[str, tuple[str, int]]:
        """Node name -> (address, port) of its node daemon; {} if unset."""
        return _ParseEndpoints(
            self._ReadFile(constants.SS_NODE_NODED_ENDPOINTS, default=""),
            constants.SS_NODE_NODED_ENDPOINTS)

    def GetConfdEndpoints(self) -> dict[str, tuple[str, int]]:
        """Node name -> (address, port) of its confd; {} if unset."""
        return _ParseEndpoints(
            self._ReadFile(constants.SS_NODE_CONFD_ENDPOINTS, default=""),
            constants.SS_NODE_CONFD_ENDPOINTS)


def WriteSsconfFiles(values: Mapping[str, Any], dry_run: bool = False) -> None:
    """Write ssconf values to this node's store."""
    SimpleStore().WriteFiles(values, dry_run=dry_run)


def VerifyKeys(keys: Iterable[str]) -> None:
    """Check that all ``keys`` are ssconf keys.

    @raise errors.GenericError: naming the unknown ones
    """
    invalid = set(keys) - _VALID_KEYS
    if invalid:
        raise errors.GenericError("Invalid ssconf keys: " +
                                  utils.CommaJoin(sorted(invalid)))


def VerifyClusterName(name: str, _cfg_location: str | None = None) -> None:
    """Check ``name`` against the local cluster name, if there is one.

    @raise errors.GenericError: if this node belongs to another cluster
    """
    store = SimpleStore(cfg_location=_cfg_location)
    try:
        local_name = store.GetClusterName()
    except errors.ConfigurationError as err:
        logging.debug("Can't get local cluster name: %s", err)
        return
    if name != local_name:
        raise errors.GenericError(f"Current cluster name is '{local_name}'")


def GetMasterAndMyself(ss: SimpleStore | None = None) -> tuple[str, str]:
    """Return (master node name, this node's name).

    Errors are left to the caller (errors.ConfigurationError,
    errors.ResolverError, errors.OpPrereqError).
    """
    if ss is None:
        ss = SimpleStore()
    return ss.GetMasterNode(), utils.Hostname.GetSysName()


def _CheckRole(debug: bool, ss: SimpleStore | None, candidate: bool) -> None:
    try:
        if ss is None:
            ss = SimpleStore()
        myself = utils.Hostname.GetSysName()
        allowed = ss.GetMasterCandidates() if candidate else [ss.GetMasterNode()]
    except errors.ConfigurationError as err:
        print(f"Cluster configuration incomplete: '{err}'", file=sys.stderr)
        sys.exit(constants.EXIT_NODESETUP_ERROR)
    except (errors.ResolverError, errors.OpPrereqError) as err:
        print(f"Cannot determine my own name ({err.args[0]})", file=sys.stderr)
        sys.exit(constants.EXIT_NODESETUP_ERROR)
    if myself not in allowed:
        if debug:
            what = "master candidate" if candidate else "master"
            print(f"Not {what}, exiting.", file=sys.stderr)
        sys.exit(constants.EXIT_NOTCANDIDATE if candidate
                 else constants.EXIT_NOTMASTER)


def CheckMaster(debug: bool, ss: SimpleStore | None = None) -> None:
    """Return if this node is the master; exit with EXIT_NOTMASTER if not.

    Exits with EXIT_NODESETUP_ERROR when ssconf or our name is unusable.
    """
    _CheckRole(debug, ss, candidate=False)


def CheckMasterCandidate(debug: bool, ss: SimpleStore | None = None) -> None:
    """Return if this node is a master candidate; exit with EXIT_NOTCANDIDATE
    if not (EXIT_NODESETUP_ERROR when ssconf or our name is unusable).
    """
    _CheckRole(debug, ss, candidate=True)
