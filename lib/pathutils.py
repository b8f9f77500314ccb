"""Every file system path of the system, and virtual-cluster path helpers.

A virtual cluster runs many nodes on one machine; each node gets its own
root directory, named by the environment variable ``GANETI_ROOTDIR`` (seed
004). Every path below is that root plus the real path, e.g.
``$GANETI_ROOTDIR/var/lib/ganeti/config.data``; with the variable empty or
unset the paths are the real ones. The last component of the node root is
conventionally the node's name, and ``GANETI_HOSTNAME``, when also set,
must equal it: it then overrides the local host name.

The environment is read once, at import. Read the paths as attributes
(``pathutils.DATA_DIR``) at the time of use rather than copying them at
import time, so that :func:`Reload` (for tests) takes effect everywhere.
"""

from __future__ import annotations

import importlib
import os
import shutil
import sys
import sysconfig
from collections.abc import Mapping
from typing import Any

from ganeti import constants, errors

# Marks a path as "relative to whichever node root" when it travels between
# nodes of a virtual cluster (the same marker as Ganeti's)
_VIRT_PATH_PREFIX = "/###-VIRTUAL-PATH-###,"


def _ReadEnvironment(environ: Mapping[str, str]
                     ) -> tuple[str, str, str | None]:
    """Return (base directory, node root, virtual hostname) from ``environ``.

    The base directory holds the roots of all nodes (the node root's
    parent); both are "" outside a virtual cluster.

    @raise errors.ConfigurationError: for a relative root directory, or a
        hostname that does not match the root's last component
    """
    root = environ.get(constants.GANETI_ROOTDIR_ENV, "")
    hostname = environ.get(constants.GANETI_HOSTNAME_ENV, "") or None
    if hostname is not None and os.path.basename(hostname) != hostname:
        raise errors.ConfigurationError(
            f"{constants.GANETI_HOSTNAME_ENV} '{hostname}' cannot be used in"
            " a path")
    if not root:
        return "", "", hostname
    if not os.path.isabs(root):
        raise errors.ConfigurationError(
            f"{constants.GANETI_ROOTDIR_ENV} must be an absolute path, got"
            f" '{root}'")
    root = os.path.normpath(root)
    if root in ("/", "//"):
        return "", "", hostname
    if hostname is not None and os.path.basename(root) != hostname:
        raise errors.ConfigurationError(
            f"The last component of {constants.GANETI_ROOTDIR_ENV} ('{root}')"
            f" must be the hostname in {constants.GANETI_HOSTNAME_ENV}"
            f" ('{hostname}')")
    return os.path.dirname(root), root, hostname


def Reload(environ: Mapping[str, str] | None = None) -> None:
    """Recompute every path from ``environ`` (default: os.environ).

    For tests only: the module is re-executed, so its attributes change for
    every importer; values already copied elsewhere do not.
    """
    module = sys.modules[__name__]
    module.__dict__["_reload_environ"] = environ
    try:
        importlib.reload(module)
    finally:
        module.__dict__["_reload_environ"] = None


def _SetRoot(root: str, hostname: str | None = None) -> None:
    """Recompute every path for node root ``root`` (tests only)."""
    environ = {constants.GANETI_ROOTDIR_ENV: root}
    if hostname is not None:
        environ[constants.GANETI_HOSTNAME_ENV] = hostname
    Reload(environ)


# Reload() leaves its environment here before re-executing the module
_environ: Mapping[str, str] | None = globals().get("_reload_environ")
_VIRT_BASEDIR, _VIRT_NODEROOT, _VIRT_HOSTNAME = _ReadEnvironment(
    os.environ if _environ is None else _environ)
del _environ


def GetRootDirectory() -> str:
    """This node's root directory ("" outside a virtual cluster)."""
    return _VIRT_NODEROOT


def GetVirtualHostname() -> str | None:
    """The host name set by GANETI_HOSTNAME, or None."""
    return _VIRT_HOSTNAME


def IsVirtualCluster() -> bool:
    """Whether paths are prefixed with a node root."""
    return bool(_VIRT_NODEROOT)


def _CheckNodeName(node_name: str) -> None:
    if not node_name or os.path.basename(node_name) != node_name \
            or node_name in (".", ".."):
        raise errors.ProgrammerError(f"Node name '{node_name}' cannot be used"
                                     " as a directory name")


def MakeNodeRoot(base: str, node_name: str) -> str:
    """The root directory of node ``node_name`` under ``base``."""
    _CheckNodeName(node_name)
    return os.path.normpath(f"{base}/{node_name}")


def _Root(value: str | None, default: str) -> str:
    return default if value is None else value


def AddNodePrefix(path: str, _noderoot: str | None = None) -> str:
    """Put the node root in front of the absolute ``path``."""
    if not os.path.isabs(path):
        raise errors.ProgrammerError(f"Path '{path}' is not absolute")
    noderoot = _Root(_noderoot, _VIRT_NODEROOT)
    if noderoot:
        return os.path.normpath(f"{noderoot}/{path}")
    return os.path.normpath(path)


def _RemoveNodePrefix(path: str, _noderoot: str | None = None) -> str:
    """Strip the node root from ``path``, which must lie below it."""
    if not os.path.isabs(path):
        raise errors.ProgrammerError(f"Path '{path}' is not absolute")
    norm_path = os.path.normpath(path)
    noderoot = _Root(_noderoot, _VIRT_NODEROOT)
    if not noderoot:
        return norm_path
    norm_root = os.path.normpath(noderoot)
    if not norm_path.startswith(norm_root + "/"):
        raise errors.ProgrammerError(f"Path '{path}' is not below node root"
                                     f" '{noderoot}'")
    return norm_path[len(norm_root):]


def ExchangeNodeRoot(node_name: str, filename: str,
                     _basedir: str | None = None,
                     _noderoot: str | None = None) -> str:
    """Return ``filename`` (a path of this node) as seen on ``node_name``."""
    basedir = _Root(_basedir, _VIRT_BASEDIR)
    if not basedir:
        return os.path.normpath(filename)
    pure = _RemoveNodePrefix(filename, _noderoot=_noderoot)
    return os.path.normpath(f"{MakeNodeRoot(basedir, node_name)}/{pure}")


def EnvironmentForHost(hostname: str,
                       _basedir: str | None = None) -> dict[str, str]:
    """The environment variables that make a process act as ``hostname``."""
    basedir = _Root(_basedir, _VIRT_BASEDIR)
    if not basedir:
        return {}
    return {
        constants.GANETI_ROOTDIR_ENV: MakeNodeRoot(basedir, hostname),
        constants.GANETI_HOSTNAME_ENV: hostname,
    }


def MakeVirtualPath(path: str, _noderoot: str | None = None) -> str:
    """Turn a path of this node into one any node can localise.

    Outside a virtual cluster the path is returned unchanged.
    """
    noderoot = _Root(_noderoot, _VIRT_NODEROOT)
    if not noderoot:
        return path
    return _VIRT_PATH_PREFIX + _RemoveNodePrefix(path, _noderoot=noderoot)


def LocalizeVirtualPath(path: str, _noderoot: str | None = None) -> str:
    """Undo :func:`MakeVirtualPath` for this node's root."""
    noderoot = _Root(_noderoot, _VIRT_NODEROOT)
    if not noderoot:
        return path
    if not path.startswith(_VIRT_PATH_PREFIX):
        raise errors.ProgrammerError(f"Path '{path}' is not a virtual path")
    return AddNodePrefix(path[len(_VIRT_PATH_PREFIX):], _noderoot=noderoot)


# --- Top-level directories ---------------------------------------------------

SYSCONFDIR = AddNodePrefix(constants.DEFAULT_SYSCONFDIR)
LOCALSTATEDIR = AddNodePrefix(constants.DEFAULT_LOCALSTATEDIR)
DATA_DIR = AddNodePrefix(constants.DEFAULT_DATA_DIR)
RUN_DIR = AddNodePrefix(constants.DEFAULT_RUN_DIR)
LOG_DIR = AddNodePrefix(constants.DEFAULT_LOG_DIR)
CONF_DIR = AddNodePrefix(constants.DEFAULT_CONF_DIR)
LOCK_DIR = LOCALSTATEDIR + "/lock"

# Storage and OS definitions. Ganeti shares OS and ExtStorage definitions
# between virtual nodes; here every node has its own, like every other path.
DEFAULT_FILE_STORAGE_DIR = AddNodePrefix(constants.DEFAULT_FILE_STORAGE_DIR)
DEFAULT_SHARED_FILE_STORAGE_DIR = \
    AddNodePrefix(constants.DEFAULT_SHARED_FILE_STORAGE_DIR)
DEFAULT_GLUSTER_STORAGE_DIR = \
    AddNodePrefix(constants.DEFAULT_GLUSTER_STORAGE_DIR)
EXPORT_DIR = AddNodePrefix(constants.DEFAULT_EXPORT_DIR)
OS_SEARCH_PATH = [AddNodePrefix(path)
                  for path in constants.DEFAULT_OS_SEARCH_PATH]
ES_SEARCH_PATH = [AddNodePrefix(path)
                  for path in constants.DEFAULT_ES_SEARCH_PATH]

# --- System files touched by node setup --------------------------------------

ETC_HOSTS = AddNodePrefix("/etc/hosts")
SSH_CONFIG_DIR = AddNodePrefix("/etc/ssh")
SSH_HOST_DSA_PRIV = SSH_CONFIG_DIR + "/ssh_host_dsa_key"
SSH_HOST_DSA_PUB = SSH_HOST_DSA_PRIV + ".pub"
SSH_HOST_RSA_PRIV = SSH_CONFIG_DIR + "/ssh_host_rsa_key"
SSH_HOST_RSA_PUB = SSH_HOST_RSA_PRIV + ".pub"
#: The kernel's DRBD status (on a virtual node: what the DRBD stand-in writes)
DRBD_STATUS_FILE = AddNodePrefix("/proc/drbd")

# --- Runtime state (RUN_DIR) -------------------------------------------------

SOCKET_DIR = RUN_DIR + "/socket"
MASTER_SOCKET = SOCKET_DIR + "/ganeti-master"
QUERY_SOCKET = SOCKET_DIR + "/ganeti-query"
BDEV_CACHE_DIR = RUN_DIR + "/bdev-cache"
DISK_LINKS_DIR = RUN_DIR + "/instance-disks"
CRYPTO_KEYS_DIR = RUN_DIR + "/crypto"
IMPORT_EXPORT_DIR = RUN_DIR + "/import-export"
INSTANCE_STATUS_FILE = RUN_DIR + "/instance-status"
INSTANCE_REASON_DIR = RUN_DIR + "/instance-reason"
UIDPOOL_LOCKDIR = RUN_DIR + "/uid-pool"
LIVELOCK_DIR = RUN_DIR + "/livelocks"

# --- Locks (LOCK_DIR) --------------------------------------------------------

SSCONF_LOCK_FILE = LOCK_DIR + "/ganeti-ssconf.lock"
WATCHER_LOCK_FILE = LOCK_DIR + "/ganeti-watcher.lock"
RESTRICTED_COMMANDS_LOCK_FILE = LOCK_DIR + "/ganeti-restricted-commands.lock"

# --- Cluster data (DATA_DIR) -------------------------------------------------

SSCONF_DIR = DATA_DIR
CLUSTER_CONF_FILE = DATA_DIR + "/" + constants.CLUSTER_CONF_FILE_NAME
NODED_CERT_FILE = DATA_DIR + "/" + constants.SERVER_PEM_NAME
NODED_CLIENT_CERT_FILE = DATA_DIR + "/" + constants.CLIENT_PEM_NAME
RAPI_CERT_FILE = DATA_DIR + "/" + constants.RAPI_PEM_NAME
CONFD_HMAC_KEY = DATA_DIR + "/" + constants.CONFD_HMAC_KEY_NAME
SPICE_CERT_FILE = DATA_DIR + "/" + constants.SPICE_CERT_NAME
SPICE_CACERT_FILE = DATA_DIR + "/" + constants.SPICE_CACERT_NAME
CLUSTER_DOMAIN_SECRET_FILE = \
    DATA_DIR + "/" + constants.CLUSTER_DOMAIN_SECRET_NAME
SSH_KNOWN_HOSTS_FILE = DATA_DIR + "/known_hosts"
SSH_PUB_KEYS = DATA_DIR + "/ganeti_pub_keys"
RAPI_DATA_DIR = DATA_DIR + "/rapi"
RAPI_USERS_FILE = RAPI_DATA_DIR + "/" + constants.RAPI_USERS_FILE_NAME
WATCHER_STATEFILE = DATA_DIR + "/" + constants.WATCHER_STATEFILE_NAME
#: Per node group watcher state, "%s" is the group's UUID
WATCHER_GROUP_STATE_FILE = DATA_DIR + "/watcher.%s.data"
WATCHER_GROUP_INSTANCE_STATUS_FILE = DATA_DIR + "/watcher.%s.instance-status"
#: Holds the Unix time until which the watcher is paused
WATCHER_PAUSEFILE = DATA_DIR + "/watcher.pause"
#: In a virtual cluster only: the node's boot ID when present (its nodes
#: share one kernel; see ganeti.backend.node.GetBootId)
VCLUSTER_BOOT_ID_FILE = DATA_DIR + "/vcluster-boot-id"

ALL_CERT_FILES = frozenset([NODED_CERT_FILE, RAPI_CERT_FILE, SPICE_CERT_FILE,
                            SPICE_CACERT_FILE])

# --- Job queue (DATA_DIR/queue) ----------------------------------------------

QUEUE_DIR = DATA_DIR + "/queue"
JOB_QUEUE_LOCK_FILE = QUEUE_DIR + "/" + constants.JOB_QUEUE_LOCK_FILE
JOB_QUEUE_VERSION_FILE = QUEUE_DIR + "/version"
JOB_QUEUE_SERIAL_FILE = QUEUE_DIR + "/serial"
JOB_QUEUE_ARCHIVE_DIR = QUEUE_DIR + "/archive"
JOB_QUEUE_DRAIN_FILE = QUEUE_DIR + "/drain"

# --- Settings (CONF_DIR) -----------------------------------------------------

HOOKS_BASE_DIR = CONF_DIR + "/hooks"
USER_SCRIPTS_DIR = CONF_DIR + "/scripts"
EXTERNAL_MASTER_SETUP_SCRIPT = USER_SCRIPTS_DIR + "/master-ip-setup"
VNC_PASSWORD_FILE = CONF_DIR + "/vnc-cluster-password"
FILE_STORAGE_PATHS_FILE = CONF_DIR + "/file-storage-paths"
RESTRICTED_COMMANDS_DIR = CONF_DIR + "/restricted-commands"
# An administrator's older whole replacements of the KVM NIC scripts
# (Ganeti's names; kvm-vif-bridge is the older name of kvm-ifup-custom);
# per mode, CONF_DIR/network/<mode>/{up,down} (ganeti.hypervisor.netscripts)
KVM_IFUP_CUSTOM = CONF_DIR + "/kvm-ifup-custom"
KVM_VIF_BRIDGE = CONF_DIR + "/kvm-vif-bridge"
KVM_IFDOWN_CUSTOM = CONF_DIR + "/kvm-ifdown-custom"

# --- Logs (LOG_DIR) ----------------------------------------------------------

LOG_OS_DIR = LOG_DIR + "/os"
LOG_ES_DIR = LOG_DIR + "/extstorage"
LOG_XEN_DIR = LOG_DIR + "/xen"
LOG_KVM_DIR = LOG_DIR + "/kvm"


def GetLogFilename(daemon_name: str) -> str:
    """The log file of a daemon or tool.

    Daemons use Ganeti's base names (ganeti-noded writes node-daemon.log);
    any other name ``x`` gives ``x.log``.
    """
    base = constants.DAEMONS_LOGBASE.get(daemon_name, daemon_name)
    if not base or "/" in base:
        raise errors.ProgrammerError(f"Invalid log name '{daemon_name}'")
    return f"{LOG_DIR}/{base}.log"


# The source tree holding this package (lib/ is the package), if it is one
_SOURCE_ROOT = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))


def GetShippedTool(name: str) -> str:
    """The path of ``name``, a program shipped in the source tree's tools/.

    Shipped programs are code, not node state: they are never below a node
    root, which is why they are looked up by function rather than kept as
    constants (every constant here is a node-prefixed path). As with the
    daemon launchers (ganeti.daemon_util.DaemonsDir): the source tree's copy
    when running from one, else the installed copy next to the installed
    scripts (for which setup.py lists it among the installed tools).
    """
    if not name or "/" in name or name in (".", ".."):
        raise errors.ProgrammerError(f"Invalid tool name '{name}'")
    source = os.path.join(_SOURCE_ROOT, "tools", name)
    if os.path.isfile(source):
        return source
    scripts = sysconfig.get_path("scripts")
    installed = os.path.join(scripts, name)
    if not os.path.exists(installed):
        found = shutil.which(name)
        if found:
            return found
    return installed


def IallocatorSearchPath() -> list[str]:
    """The directories searched for an allocator program, in order: ours
    (the source tree's iallocators/, else the installed copy below the
    installation prefix), then GANETI_IALLOCATOR_SEARCH_PATH (colon
    separated) if set, else the usual places (node-prefixed, as the OS
    search path)."""
    source = os.path.join(_SOURCE_ROOT, "iallocators")
    ours = source if os.path.isdir(source) else \
        os.path.join(sys.prefix, "lib", "ganeti", "iallocators")
    custom = os.environ.get("GANETI_IALLOCATOR_SEARCH_PATH")
    others = [p for p in custom.split(":") if p] if custom is not None else \
        [AddNodePrefix(path) for path in constants.DEFAULT_IALLOCATOR_SEARCH_PATH]
    return [ours, *others]


def FindIallocator(name: str) -> str | None:
    """The path of the executable allocator ``name`` in the search path,
    or None (also for names that are not plain file names)."""
    if not name or "/" in name or name.startswith("."):
        return None
    for directory in IallocatorSearchPath():
        path = os.path.join(directory, name)
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    return None


def GetDaemonPidFile(daemon_name: str) -> str:
    """The pid file of a daemon: RUN_DIR/<daemon>.pid."""
    if not daemon_name or "/" in daemon_name:
        raise errors.ProgrammerError(f"Invalid daemon name '{daemon_name}'")
    return f"{RUN_DIR}/{daemon_name}.pid"


DAEMONS_LOGFILES = {daemon: GetLogFilename(daemon)
                    for daemon in constants.DAEMONS_LOGBASE}
LOG_WATCHER = GetLogFilename("watcher")
LOG_COMMANDS = GetLogFilename("commands")
LOG_BURNIN = GetLogFilename("burnin")
LOG_TOOLS = GetLogFilename("tools")


def _AllPaths() -> dict[str, Any]:
    """Every path constant of this module, by name (for tests and tools)."""
    return {name: value for name, value in globals().items()
            if name.isupper() and not name.startswith("_")}
