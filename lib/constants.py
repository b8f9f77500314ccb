"""Constants shared by every part of the system.

Names and values follow Ganeti's where users or other tools can see them
(ports, statuses, error codes, exit codes, parameter names); everything is
plain Python so nothing has to be generated at build time.
"""

from __future__ import annotations

from ganeti import __version__ as _pkg_version

# --- Versions ---------------------------------------------------------------

RELEASE_VERSION = _pkg_version
VERSION_MAJOR, VERSION_MINOR, VERSION_REVISION = (
    int(part) for part in RELEASE_VERSION.split(".")[:3])
PROTOCOL_VERSION = 3000000  # protocol version, as Ganeti 3.0 builds it
CONFIG_MAJOR = VERSION_MAJOR
CONFIG_MINOR = VERSION_MINOR
CONFIG_REVISION = 0
CONFIG_VERSION = CONFIG_MAJOR * 1000000 + CONFIG_MINOR * 10000 + CONFIG_REVISION
OS_API_V10 = 10
OS_API_V15 = 15
OS_API_V20 = 20
OS_API_VERSIONS = frozenset([OS_API_V10, OS_API_V15, OS_API_V20])
EXPORT_VERSION = 0
RAPI_VERSION = 2

# --- Daemons and ports --------------------------------------------------------

MASTERD = "ganeti-masterd"
NODED = "ganeti-noded"
CONFD = "ganeti-confd"
RAPI = "ganeti-rapi"
WATCHER = "ganeti-watcher"
DAEMONS = frozenset([MASTERD, NODED, CONFD, RAPI])

DEFAULT_NODED_PORT = 1811
DEFAULT_CONFD_PORT = 1814
DEFAULT_MOND_PORT = 1815
DEFAULT_RAPI_PORT = 5080
DAEMONS_PORTS = {
    NODED: ("tcp", DEFAULT_NODED_PORT),
    CONFD: ("udp", DEFAULT_CONFD_PORT),
    RAPI: ("tcp", DEFAULT_RAPI_PORT),
}
FIRST_DRBD_PORT = 11000
LAST_DRBD_PORT = 14999

# Daemon users and groups, as Ganeti's defaults (the names in use come from
# ganeti.runtime, which applies the installed prefixes)
MASTERD_USER = "gnt-masterd"
MASTERD_GROUP = "gnt-masterd"
RAPI_USER = "gnt-rapi"
RAPI_GROUP = "gnt-rapi"
CONFD_USER = "gnt-confd"
CONFD_GROUP = "gnt-confd"
DAEMONS_GROUP = "gnt-daemons"
ADMIN_GROUP = "gnt-admin"
NODED_USER = "root"
NODED_GROUP = "root"

# --- Default directories (before the GANETI_ROOTDIR prefix; see pathutils) ----

DEFAULT_SYSCONFDIR = "/etc"
DEFAULT_LOCALSTATEDIR = "/var"
DEFAULT_DATA_DIR = "/var/lib/ganeti"
DEFAULT_RUN_DIR = "/var/run/ganeti"
DEFAULT_LOG_DIR = "/var/log/ganeti"
DEFAULT_CONF_DIR = "/etc/ganeti"
DEFAULT_OS_SEARCH_PATH = ("/srv/ganeti/os",)
DEFAULT_ES_SEARCH_PATH = ("/srv/ganeti/extstorage",)
#: Where allocator programs are looked for after our own (Ganeti's default
#: is $libdir/ganeti/iallocators)
DEFAULT_IALLOCATOR_SEARCH_PATH = ("/usr/local/lib/ganeti/iallocators",
                                  "/usr/lib/ganeti/iallocators")
DEFAULT_FILE_STORAGE_DIR = "/srv/ganeti/file-storage"
DEFAULT_SHARED_FILE_STORAGE_DIR = "/srv/ganeti/shared-file-storage"
DEFAULT_GLUSTER_STORAGE_DIR = "/var/run/ganeti/gluster"
DEFAULT_EXPORT_DIR = "/srv/ganeti/export"
GANETI_ROOTDIR_ENV = "GANETI_ROOTDIR"
GANETI_HOSTNAME_ENV = "GANETI_HOSTNAME"

# --- Job and opcode statuses ----------------------------------------------------

JOB_STATUS_QUEUED = "queued"
JOB_STATUS_WAITING = "waiting"
JOB_STATUS_CANCELING = "canceling"
JOB_STATUS_RUNNING = "running"
JOB_STATUS_CANCELED = "canceled"
JOB_STATUS_SUCCESS = "success"
JOB_STATUS_ERROR = "error"
JOBS_PENDING = frozenset([JOB_STATUS_QUEUED, JOB_STATUS_WAITING,
                          JOB_STATUS_CANCELING])
JOBS_FINALIZED = frozenset([JOB_STATUS_CANCELED, JOB_STATUS_SUCCESS,
                            JOB_STATUS_ERROR])
JOB_STATUS_ALL = frozenset([JOB_STATUS_RUNNING]) | JOBS_PENDING | JOBS_FINALIZED

OP_STATUS_QUEUED = "queued"
OP_STATUS_WAITING = "waiting"
OP_STATUS_CANCELING = "canceling"
OP_STATUS_RUNNING = "running"
OP_STATUS_CANCELED = "canceled"
OP_STATUS_SUCCESS = "success"
OP_STATUS_ERROR = "error"
OPS_FINALIZED = frozenset([OP_STATUS_CANCELED, OP_STATUS_SUCCESS,
                           OP_STATUS_ERROR])
OP_STATUS_ALL = frozenset([OP_STATUS_QUEUED, OP_STATUS_WAITING,
                           OP_STATUS_CANCELING, OP_STATUS_RUNNING]) | OPS_FINALIZED

JOB_ID_TEMPLATE = r"\d+"
JOB_QUEUE_LOCK_FILE = "lock"
JOB_QUEUE_VERSION = 1
JOB_QUEUE_SIZE_HARD_LIMIT = 5000
JOB_QUEUE_SIZE_SOFT_LIMIT = JOB_QUEUE_SIZE_HARD_LIMIT * 0.8
JOB_QUEUE_FILES_PERMS = 0o640
JOB_DEFAULT_WORKERS = 25
JOB_ARCHIVE_DIRECTORY_SIZE = 10000

# Job log entry types
ELOG_MESSAGE = "message"
ELOG_REMOTE_IMPORT = "remote-import"
ELOG_JQUEUE_TEST = "jqueue-test"
ELOG_MESSAGE_LOWLEVEL = "message-lowlevel"

# Job dependencies: acceptable final statuses of the jobs depended on
JOB_DEP_STATUSES = JOBS_FINALIZED

# --- Priorities -------------------------------------------------------------------

OP_PRIO_LOWEST = 19
OP_PRIO_HIGHEST = -20
OP_PRIO_LOW = 10
OP_PRIO_NORMAL = 0
OP_PRIO_HIGH = -10
OP_PRIO_DEFAULT = OP_PRIO_NORMAL
OP_PRIO_SUBMIT_VALID = frozenset([OP_PRIO_LOW, OP_PRIO_NORMAL, OP_PRIO_HIGH])

# --- Error codes (the second argument of OpPrereqError and friends) ---------------

ECODE_RESOLVER = "resolver_error"
ECODE_NORES = "insufficient_resources"
ECODE_TEMP_NORES = "temp_insufficient_resources"
ECODE_INVAL = "wrong_input"
ECODE_STATE = "wrong_state"
ECODE_NOENT = "unknown_entity"
ECODE_EXISTS = "already_exists"
ECODE_NOTUNIQUE = "resource_not_unique"
ECODE_FAULT = "internal_error"
ECODE_ENVIRON = "environment_error"
ECODE_ALL = frozenset([ECODE_RESOLVER, ECODE_NORES, ECODE_TEMP_NORES,
                       ECODE_INVAL, ECODE_STATE, ECODE_NOENT, ECODE_EXISTS,
                       ECODE_NOTUNIQUE, ECODE_FAULT, ECODE_ENVIRON])

# --- CLI exit codes ------------------------------------------------------------------

EXIT_SUCCESS = 0
EXIT_FAILURE = 1
EXIT_NOTCLUSTER = 5
EXIT_NOTMASTER = 11
EXIT_NODESETUP_ERROR = 12
EXIT_CONFIRMATION = 13
EXIT_UNKNOWN_FIELD = 14

# --- Hypervisors ------------------------------------------------------------------------

HT_XEN_PVM = "xen-pvm"
HT_FAKE = "fake"
HT_XEN_HVM = "xen-hvm"
HT_KVM = "kvm"
HT_CHROOT = "chroot"
HT_LXC = "lxc"
HYPER_TYPES = frozenset([HT_XEN_PVM, HT_FAKE, HT_XEN_HVM, HT_KVM, HT_CHROOT,
                         HT_LXC])
HTS_REQ_PORT = frozenset([HT_XEN_HVM, HT_KVM])

# Hotplug (Ganeti's names): what to do, to which kind of device
HOTPLUG_ACTION_ADD = "hotadd"
HOTPLUG_ACTION_REMOVE = "hotremove"
HOTPLUG_ACTION_MODIFY = "hotmod"
HOTPLUG_ALL_ACTIONS = frozenset([HOTPLUG_ACTION_ADD, HOTPLUG_ACTION_REMOVE,
                                 HOTPLUG_ACTION_MODIFY])
HOTPLUG_TARGET_DISK = "disk"
HOTPLUG_TARGET_NIC = "nic"
HOTPLUG_ALL_TARGETS = frozenset([HOTPLUG_TARGET_DISK, HOTPLUG_TARGET_NIC])
DEFAULT_ENABLED_HYPERVISOR = HT_XEN_PVM

# --- Disk templates and storage -----------------------------------------------------------

DT_DISKLESS = "diskless"
DT_FILE = "file"
DT_SHARED_FILE = "sharedfile"
DT_PLAIN = "plain"
DT_DRBD8 = "drbd"
DT_BLOCK = "blockdev"
DT_RBD = "rbd"
DT_EXT = "ext"
DT_GLUSTER = "gluster"
DISK_TEMPLATE_PREFERENCE = (DT_DRBD8, DT_PLAIN, DT_FILE, DT_SHARED_FILE,
                            DT_RBD, DT_BLOCK, DT_DISKLESS, DT_EXT, DT_GLUSTER)
DISK_TEMPLATES = frozenset(DISK_TEMPLATE_PREFERENCE)
DEFAULT_ENABLED_DISK_TEMPLATES = (DT_DRBD8, DT_PLAIN)
DTS_INT_MIRROR = frozenset([DT_DRBD8])
DTS_EXT_MIRROR = frozenset([DT_DISKLESS, DT_SHARED_FILE, DT_BLOCK, DT_RBD,
                            DT_EXT, DT_GLUSTER])
DTS_MIRRORED = DTS_INT_MIRROR | DTS_EXT_MIRROR
DTS_FILEBASED = frozenset([DT_FILE, DT_SHARED_FILE, DT_GLUSTER])
#: Templates whose disks can grow (Ganeti's)
DTS_GROWABLE = frozenset([DT_PLAIN, DT_DRBD8, DT_FILE, DT_SHARED_FILE, DT_RBD, DT_EXT,
                          DT_GLUSTER])
DTS_LVM = frozenset([DT_PLAIN, DT_DRBD8])
#: Templates whose disks gnt-instance move can copy to another node (Ganeti's)
DTS_COPYABLE = frozenset([DT_EXT, DT_FILE, DT_PLAIN, DT_RBD, DT_SHARED_FILE, DT_GLUSTER])
DTS_NO_FREE_SPACE_CHECK = frozenset([DT_FILE, DT_SHARED_FILE, DT_DISKLESS,
                                     DT_BLOCK, DT_RBD, DT_EXT, DT_GLUSTER])

ST_LVM_VG = "lvm-vg"
ST_LVM_PV = "lvm-pv"
ST_FILE = "file"
ST_SHARED_FILE = "sharedfile"
ST_GLUSTER = "gluster"
ST_BLOCK = "blockdev"
ST_RADOS = "rados"
ST_EXT = "ext"
ST_DISKLESS = "diskless"
STORAGE_TYPES = frozenset([ST_LVM_VG, ST_LVM_PV, ST_FILE, ST_SHARED_FILE,
                           ST_GLUSTER, ST_BLOCK, ST_RADOS, ST_EXT,
                           ST_DISKLESS])
MAP_DISK_TEMPLATE_STORAGE_TYPE = {
    DT_BLOCK: ST_BLOCK,
    DT_DISKLESS: ST_DISKLESS,
    DT_DRBD8: ST_LVM_VG,
    DT_EXT: ST_EXT,
    DT_FILE: ST_FILE,
    DT_PLAIN: ST_LVM_VG,
    DT_RBD: ST_RADOS,
    DT_SHARED_FILE: ST_SHARED_FILE,
    DT_GLUSTER: ST_GLUSTER,
}

# Logical disk types (Disk.dev_type)
LD_LV = DT_PLAIN
LD_DRBD8 = DT_DRBD8
LD_FILE = DT_FILE

DEFAULT_VG = "xenvg"
DEFAULT_DRBD_HELPER = "/bin/true"
MIN_VG_SIZE = 20480
DEFAULT_MAC_PREFIX = "aa:00:00"
DEFAULT_BRIDGE = "xen-br0"
DEFAULT_OVS = "switch1"

DISK_RDONLY = "ro"
DISK_RDWR = "rw"
DISK_ACCESS_SET = frozenset([DISK_RDONLY, DISK_RDWR])

# Disk parameter names (Disk dicts, OpInstanceCreate "disks")
IDISK_SIZE = "size"
IDISK_SPINDLES = "spindles"
IDISK_MODE = "mode"
IDISK_ADOPT = "adopt"
IDISK_VG = "vg"
IDISK_METAVG = "metavg"
IDISK_PROVIDER = "provider"
IDISK_NAME = "name"
IDISK_ACCESS = "access"
IDISK_TYPE = "dev_type"
IDISK_PARAMS = frozenset([IDISK_SIZE, IDISK_SPINDLES, IDISK_MODE, IDISK_ADOPT,
                          IDISK_VG, IDISK_METAVG, IDISK_PROVIDER, IDISK_NAME,
                          IDISK_ACCESS, IDISK_TYPE])

# NIC parameter names
INIC_MAC = "mac"
INIC_IP = "ip"
INIC_MODE = "mode"
INIC_LINK = "link"
INIC_NETWORK = "network"
INIC_NAME = "name"
INIC_VLAN = "vlan"
INIC_PARAMS = frozenset([INIC_IP, INIC_MAC, INIC_MODE, INIC_LINK,
                         INIC_NETWORK, INIC_NAME, INIC_VLAN])

NIC_MODE_BRIDGED = "bridged"
NIC_MODE_ROUTED = "routed"
NIC_MODE_OVS = "openvswitch"
NIC_IP_POOL = "pool"
#: Name prefix of an instance's communication NIC (followed by its name)
INSTANCE_COMMUNICATION_NIC_PREFIX = "ganeti:communication:"
NIC_VALID_MODES = frozenset([NIC_MODE_BRIDGED, NIC_MODE_ROUTED, NIC_MODE_OVS])
VALUE_AUTO = "auto"
VALUE_GENERATE = "generate"
VALUE_NONE = "none"
VALUE_DEFAULT = "default"
VALUE_TRUE = "true"
VALUE_FALSE = "false"

NIC_MODE = "mode"
NIC_LINK = "link"
NIC_VLAN = "vlan"
NICS_PARAMETER_TYPES = {
    NIC_MODE: "string",
    NIC_LINK: "string",
    NIC_VLAN: "maybe-string",
}
NICC_DEFAULTS = {
    NIC_MODE: NIC_MODE_BRIDGED,
    NIC_LINK: DEFAULT_BRIDGE,
    NIC_VLAN: "",
}

# --- Instance states and admin states ----------------------------------------------------

ADMINST_UP = "up"
ADMINST_DOWN = "down"
ADMINST_OFFLINE = "offline"
ADMINST_ALL = frozenset([ADMINST_UP, ADMINST_DOWN, ADMINST_OFFLINE])

ADMIN_SOURCE = "admin"
USER_SOURCE = "user"
INSTANCE_STATE_SOURCES = frozenset([ADMIN_SOURCE, USER_SOURCE])

INSTST_RUNNING = "running"
INSTST_ADMINDOWN = "ADMIN_down"
INSTST_ADMINOFFLINE = "ADMIN_offline"
INSTST_NODEOFFLINE = "ERROR_nodeoffline"
INSTST_NODEDOWN = "ERROR_nodedown"
INSTST_WRONGNODE = "ERROR_wrongnode"
INSTST_ERRORUP = "ERROR_up"
INSTST_ERRORDOWN = "ERROR_down"
INSTST_USERDOWN = "USER_down"

# Instance creation modes
INSTANCE_CREATE = "create"
INSTANCE_IMPORT = "import"
INSTANCE_REMOTE_IMPORT = "remote-import"
INSTANCE_CREATE_MODES = frozenset([INSTANCE_CREATE, INSTANCE_IMPORT,
                                   INSTANCE_REMOTE_IMPORT])

# Moves between clusters (remote import/export): handshake, certificate
# validity (seconds) and how long the importer waits for its exporter
RIE_VERSION = 0
RIE_HANDSHAKE = "Hi, I'm Ganeti"
RIE_CERT_VALIDITY = 24 * 60 * 60
RIE_CONNECT_TIMEOUT = 180
X509_CERT_SIGNATURE_HEADER = "X-Ganeti-Signature"

# Instance reboot types
INSTANCE_REBOOT_SOFT = "soft"
INSTANCE_REBOOT_HARD = "hard"
INSTANCE_REBOOT_FULL = "full"
REBOOT_TYPES = frozenset([INSTANCE_REBOOT_SOFT, INSTANCE_REBOOT_HARD,
                          INSTANCE_REBOOT_FULL])

# Replace-disks modes
REPLACE_DISK_PRI = "replace_on_primary"
REPLACE_DISK_SEC = "replace_on_secondary"
REPLACE_DISK_CHG = "replace_new_secondary"
REPLACE_DISK_AUTO = "replace_auto"
REPLACE_MODES = frozenset([REPLACE_DISK_PRI, REPLACE_DISK_SEC,
                           REPLACE_DISK_CHG, REPLACE_DISK_AUTO])

# Node evacuation modes
NODE_EVAC_PRI = "primary-only"
NODE_EVAC_SEC = "secondary-only"
NODE_EVAC_ALL = "all"
NODE_EVAC_MODES = frozenset([NODE_EVAC_PRI, NODE_EVAC_SEC, NODE_EVAC_ALL])

# Migration modes
HT_MIGRATION_LIVE = "live"
HT_MIGRATION_NONLIVE = "non-live"
HT_MIGRATION_MODES = frozenset([HT_MIGRATION_LIVE, HT_MIGRATION_NONLIVE])

# Export modes
EXPORT_MODE_LOCAL = "local"
EXPORT_MODE_REMOTE = "remote"
EXPORT_MODES = frozenset([EXPORT_MODE_LOCAL, EXPORT_MODE_REMOTE])

# Node roles
NR_REGULAR = "R"
NR_MASTER = "M"
NR_MCANDIDATE = "C"
NR_DRAINED = "D"
NR_OFFLINE = "O"
NR_ALL = frozenset([NR_REGULAR, NR_MASTER, NR_MCANDIDATE, NR_DRAINED,
                    NR_OFFLINE])

# Node group allocation policies
ALLOC_POLICY_PREFERRED = "preferred"
ALLOC_POLICY_LAST_RESORT = "last_resort"
ALLOC_POLICY_UNALLOCABLE = "unallocable"
VALID_ALLOC_POLICIES = (ALLOC_POLICY_PREFERRED, ALLOC_POLICY_LAST_RESORT,
                        ALLOC_POLICY_UNALLOCABLE)
INITIAL_NODE_GROUP_NAME = "default"

# Out-of-band commands
OOB_POWER_ON = "power-on"
OOB_POWER_OFF = "power-off"
OOB_POWER_CYCLE = "power-cycle"
OOB_POWER_STATUS = "power-status"
OOB_HEALTH = "health"
OOB_COMMANDS = frozenset([OOB_POWER_ON, OOB_POWER_OFF, OOB_POWER_CYCLE,
                          OOB_POWER_STATUS, OOB_HEALTH])
OOB_TIMEOUT = 60
OOB_POWER_DELAY = 2.0
OOB_POWER_STATUS_POWERED = "powered"
OOB_STATUS_OK = "OK"
OOB_STATUS_WARNING = "WARNING"
OOB_STATUS_CRITICAL = "CRITICAL"
OOB_STATUS_UNKNOWN = "UNKNOWN"
OOB_STATUSES = frozenset([OOB_STATUS_OK, OOB_STATUS_WARNING, OOB_STATUS_CRITICAL,
                          OOB_STATUS_UNKNOWN])

# Tags
TAG_CLUSTER = "cluster"
TAG_NODEGROUP = "nodegroup"
TAG_NODE = "node"
TAG_INSTANCE = "instance"
TAG_NETWORK = "network"
VALID_TAG_TYPES = frozenset([TAG_CLUSTER, TAG_NODEGROUP, TAG_NODE,
                             TAG_INSTANCE, TAG_NETWORK])
MAX_TAG_LEN = 128
MAX_TAGS_PER_OBJ = 4096

# Query resources
QR_CLUSTER = "cluster"
QR_INSTANCE = "instance"
QR_NODE = "node"
QR_LOCK = "lock"
QR_GROUP = "group"
QR_OS = "os"
QR_EXTSTORAGE = "extstorage"
QR_JOB = "job"
QR_EXPORT = "export"
QR_NETWORK = "network"
QR_FILTER = "filter"
QR_VIA_OP = frozenset([QR_CLUSTER, QR_INSTANCE, QR_NODE, QR_GROUP, QR_OS,
                       QR_EXPORT, QR_NETWORK, QR_EXTSTORAGE])
QR_VIA_LUXI = QR_VIA_OP | frozenset([QR_LOCK, QR_JOB, QR_FILTER])
QR_VIA_RAPI = QR_VIA_LUXI

# Query field types
QFT_UNKNOWN = "unknown"
QFT_TEXT = "text"
QFT_BOOL = "bool"
QFT_NUMBER = "number"
QFT_NUMBER_FLOAT = "float"
QFT_UNIT = "unit"
QFT_TIMESTAMP = "timestamp"
QFT_OTHER = "other"

# Query result statuses
RS_NORMAL = 0
RS_UNKNOWN = 1
RS_NODATA = 2
RS_UNAVAIL = 3
RS_OFFLINE = 4

# Diagnose OS fields
OS_SCRIPT_CREATE = "create"
OS_SCRIPT_IMPORT = "import"
OS_SCRIPT_EXPORT = "export"
OS_SCRIPT_RENAME = "rename"
OS_SCRIPT_VERIFY = "verify"
OS_SCRIPTS = frozenset([OS_SCRIPT_CREATE, OS_SCRIPT_IMPORT, OS_SCRIPT_EXPORT,
                        OS_SCRIPT_RENAME, OS_SCRIPT_VERIFY])
OS_API_FILE = "ganeti_api_version"
OS_VARIANTS_FILE = "variants.list"
OS_PARAMETERS_FILE = "parameters.list"
OS_VALIDATE_PARAMETERS = "parameters"
OS_VALIDATE_CALLS = frozenset([OS_VALIDATE_PARAMETERS])

# ExtStorage
ES_ACTION_CREATE = "create"
ES_ACTION_REMOVE = "remove"
ES_ACTION_GROW = "grow"
ES_ACTION_ATTACH = "attach"
ES_ACTION_DETACH = "detach"
ES_ACTION_SETINFO = "setinfo"
ES_ACTION_VERIFY = "verify"
ES_ACTION_SNAPSHOT = "snapshot"
ES_PARAMETERS_FILE = "parameters.list"

# Adopted block devices, ExtStorage providers and RBD volumes (issue 17)
#: Only device nodes below this directory may be adopted as blockdev disks
ADOPTABLE_BLOCKDEV_ROOT = "/dev/disk/"
#: The "access" disk parameter of rbd, ext and gluster disks: through a
#: block device of the node, or by the hypervisor itself (a URI)
DISK_KERNELSPACE = "kernelspace"
DISK_USERSPACE = "userspace"
DISK_VALID_ACCESS_MODES = frozenset([DISK_KERNELSPACE, DISK_USERSPACE])
ES_ACTION_OPEN = "open"
ES_ACTION_CLOSE = "close"
#: The scripts every provider must have, and those it may have
ES_SCRIPTS_REQUIRED = (ES_ACTION_CREATE, ES_ACTION_REMOVE, ES_ACTION_GROW,
                       ES_ACTION_ATTACH, ES_ACTION_DETACH, ES_ACTION_SETINFO,
                       ES_ACTION_VERIFY)
ES_SCRIPTS_OPTIONAL = (ES_ACTION_SNAPSHOT, ES_ACTION_OPEN, ES_ACTION_CLOSE)
ES_SCRIPTS = frozenset(ES_SCRIPTS_REQUIRED + ES_SCRIPTS_OPTIONAL)
#: The check the verify script is asked for (its argument)
ES_VERIFY_PARAMETERS = "parameters"
#: Seconds an ExtStorage script may run; lines of its output a failure quotes
ES_SCRIPT_TIMEOUT = 3600
ES_LOG_TAIL_LINES = 20
#: The PATH of ExtStorage scripts (they get a clean environment)
ES_SCRIPT_PATH = "/sbin:/bin:/usr/sbin:/usr/bin"
RBD_CMD = "rbd"
#: Seconds an rbd command may run (a lost Ceph cluster makes it hang)
RBD_CMD_TIMEOUT = 300

# Hooks
HOOKS_PHASE_PRE = "pre"
HOOKS_PHASE_POST = "post"
HOOKS_NAME_CFGUPDATE = "config-update"
HOOKS_NAME_WATCHER = "watcher"
HOOKS_VERSION = 2
HKR_SKIP = 0
HKR_FAIL = 1
HKR_SUCCESS = 2

# Cluster verify error types and codes
CV_WARNING = "WARNING"
CV_ERROR = "ERROR"
CV_ALL_ECODES_STRINGS: frozenset[str] = frozenset()  # cmdlib fills it later
VERIFY_NPLUSONE_MEM = "nplusone_mem"
VERIFY_HVPARAM_ASSESSMENT = "hvparam_assessment"
VERIFY_OPTIONAL_CHECKS = frozenset([VERIFY_NPLUSONE_MEM, VERIFY_HVPARAM_ASSESSMENT])

# IAllocator
IALLOCATOR_VERSION = 2
IALLOCATOR_DIR_IN = "in"
IALLOCATOR_DIR_OUT = "out"
IALLOCATOR_MODE_ALLOC = "allocate"
IALLOCATOR_MODE_MULTI_ALLOC = "multi-allocate"
IALLOCATOR_MODE_RELOC = "relocate"
IALLOCATOR_MODE_NODE_EVAC = "node-evacuate"
IALLOCATOR_MODE_CHG_GROUP = "change-group"
VALID_IALLOCATOR_MODES = frozenset([IALLOCATOR_MODE_ALLOC,
                                    IALLOCATOR_MODE_MULTI_ALLOC,
                                    IALLOCATOR_MODE_RELOC,
                                    IALLOCATOR_MODE_NODE_EVAC,
                                    IALLOCATOR_MODE_CHG_GROUP])
IALLOC_HAIL = "hail"
DEFAULT_IALLOCATOR_SHORTCUT = "."

# Networks
NETWORK_TYPE_PRIVATE = "private"
NETWORK_TYPE_PUBLIC = "public"

# DDM (dict modifications, as in OpInstanceSetParams disks/nics)
DDM_ADD = "add"
DDM_ATTACH = "attach"
DDM_MODIFY = "modify"
DDM_REMOVE = "remove"
DDM_DETACH = "detach"
DDMS_VALUES = frozenset([DDM_ADD, DDM_ATTACH, DDM_REMOVE, DDM_DETACH])
DDMS_VALUES_WITH_MODIFY = DDMS_VALUES | frozenset([DDM_MODIFY])

# Instance console types
CONS_ALL = frozenset(["msg", "ssh", "vnc", "spice"])

# Tests opcodes
JQT_MSGPREFIX = "TESTMSG="
JQT_EXPANDNAMES = "expandnames"
JQT_EXEC = "exec"
JQT_LOGMSG = "logmsg"
JQT_STARTMSG = "startmsg"
JQT_ALL = frozenset([JQT_EXPANDNAMES, JQT_EXEC, JQT_LOGMSG, JQT_STARTMSG])
IALLOCATOR_TEST_DIRS = frozenset([IALLOCATOR_DIR_IN, IALLOCATOR_DIR_OUT])

# --- RPC -------------------------------------------------------------------------------

RPC_TMO_URGENT = 60          # one minute
RPC_TMO_FAST = 5 * 60        # five minutes
RPC_TMO_NORMAL = 15 * 60     # fifteen minutes
RPC_TMO_SLOW = 3600          # one hour
RPC_TMO_4HRS = 4 * 3600      # four hours
RPC_TMO_1DAY = 86400         # one day
RPC_TIMEOUTS = frozenset([RPC_TMO_URGENT, RPC_TMO_FAST, RPC_TMO_NORMAL,
                          RPC_TMO_SLOW, RPC_TMO_4HRS, RPC_TMO_1DAY])
# Per-node deadline of the RPCs behind live query fields (gnt-node list,
# gnt-instance list and info, gnt-os list): a node that has not answered by
# then is shown without its live data instead of holding up the answer
RPC_TMO_QUERY = 10
# libcurl counts the TLS handshake in its connect timeout, and noded does
# the handshake in the child it forks per request: with a hundred nodes
# answering at once on a small machine, 5 s was too short (verify on a
# 100-node virtual cluster saw spurious timeouts).
RPC_CONNECT_TIMEOUT = 15
RPC_ENCODING_NONE = 0
RPC_ENCODING_ZLIB_BASE64 = 1

# --- Luxi ------------------------------------------------------------------------------

LUXI_EOM = b"\x03"
LUXI_VERSION = CONFIG_VERSION
LUXI_DEF_CTMO = 10    # connect timeout, seconds
LUXI_DEF_RWTO = 60    # read/write timeout, seconds
LUXI_WFJC_TIMEOUT = (LUXI_DEF_RWTO - 1) // 2

# --- Confd -----------------------------------------------------------------------------

CONFD_PROTOCOL_VERSION = 1
CONFD_REQ_PING = 0
CONFD_REQ_NODE_ROLE_BYNAME = 1
CONFD_REQ_NODE_PIP_BY_INSTANCE_IP = 2
CONFD_REQ_CLUSTER_MASTER = 3
CONFD_REQ_NODE_PIP_LIST = 4
CONFD_REQ_MC_PIP_LIST = 5
CONFD_REQ_INSTANCES_IPS_LIST = 6
# Ganeti has no separate type for the list variant: it is type 2 with the
# list of IPs under CONFD_REQQ_IPLIST in a dict query (fixed, issue 9)
CONFD_REQ_NODE_PIP_BY_INSTANCE_IP_LIST = CONFD_REQ_NODE_PIP_BY_INSTANCE_IP
CONFD_REQ_NODE_DRBD = 7
CONFD_REQ_NODE_INSTANCES = 8
CONFD_REQ_INSTANCE_DISKS = 9
CONFD_REQ_CONFIG_QUERY = 10
CONFD_REQ_DATA_COLLECTORS = 11
CONFD_REQS = frozenset(range(0, 12))
CONFD_REPL_STATUS_OK = 0
CONFD_REPL_STATUS_ERROR = 1
CONFD_REPL_STATUS_NOTIMPLEMENTED = 2
CONFD_NODE_ROLE_MASTER = 0
CONFD_NODE_ROLE_CANDIDATE = 1
CONFD_NODE_ROLE_OFFLINE = 2
CONFD_NODE_ROLE_DRAINED = 3
CONFD_NODE_ROLE_REGULAR = 4
CONFD_ERROR_UNKNOWN_ENTRY = 0
CONFD_ERROR_INTERNAL = 1
CONFD_ERROR_ARGUMENT = 2
CONFD_MAGIC_FOURCC = b"plj0"
CONFD_MAX_CLOCK_SKEW = 2 * 150  # seconds: the 5-minute window is +/- this
CONFD_DEFAULT_REQ_COVERAGE = 6
CONFD_CLIENT_EXPIRE_TIMEOUT = 10
MAX_UDP_DATA_SIZE = 61440

# --- Hypervisor parameters ---------------------------------------------------------------

HV_BOOT_ORDER = "boot_order"
HV_KERNEL_PATH = "kernel_path"
HV_KERNEL_ARGS = "kernel_args"
HV_INITRD_PATH = "initrd_path"
HV_ROOT_PATH = "root_path"
HV_SERIAL_CONSOLE = "serial_console"
HV_SERIAL_SPEED = "serial_speed"
HV_NIC_TYPE = "nic_type"
HV_DISK_TYPE = "disk_type"
HV_CDROM_IMAGE_PATH = "cdrom_image_path"
HV_VNC_BIND_ADDRESS = "vnc_bind_address"
HV_ACPI = "acpi"
HV_KVM_FLAG = "kvm_flag"
HV_MIGRATION_PORT = "migration_port"
HV_MIGRATION_BANDWIDTH = "migration_bandwidth"
HV_MIGRATION_DOWNTIME = "migration_downtime"
HV_MIGRATION_MODE = "migration_mode"
HV_USE_LOCALTIME = "use_localtime"
HV_REBOOT_BEHAVIOR = "reboot_behavior"
HV_CPU_MASK = "cpu_mask"
HV_KVM_PATH = "kvm_path"
HV_SECURITY_MODEL = "security_model"
HV_MEM_PATH = "mem_path"
HV_INIT_SCRIPT = "init_script"
HV_MACHINE_VERSION = "machine_version"
# KVM (Ganeti's names; the constant names follow Ganeti's where it had one)
HV_PAE = "pae"
HV_VNC_TLS = "vnc_tls"
HV_VNC_X509 = "vnc_x509_path"
HV_VNC_X509_VERIFY = "vnc_x509_verify"
HV_VNC_PASSWORD_FILE = "vnc_password_file"
HV_KVM_SPICE_BIND = "spice_bind"
HV_KVM_SPICE_IP_VERSION = "spice_ip_version"
HV_KVM_SPICE_PASSWORD_FILE = "spice_password_file"
HV_KVM_SPICE_LOSSLESS_IMG_COMPR = "spice_image_compression"
HV_KVM_SPICE_JPEG_IMG_COMPR = "spice_jpeg_wan_compression"
HV_KVM_SPICE_ZLIB_GLZ_IMG_COMPR = "spice_zlib_glz_wan_compression"
HV_KVM_SPICE_STREAMING_VIDEO_DETECTION = "spice_streaming_video"
HV_KVM_SPICE_AUDIO_COMPR = "spice_playback_compression"
HV_KVM_SPICE_USE_TLS = "spice_use_tls"
HV_KVM_SPICE_TLS_CIPHERS = "spice_tls_ciphers"
HV_KVM_SPICE_USE_VDAGENT = "spice_use_vdagent"
HV_KVM_FLOPPY_IMAGE_PATH = "floppy_image_path"
HV_KVM_CDROM2_IMAGE_PATH = "cdrom2_image_path"
HV_KVM_CDROM_DISK_TYPE = "cdrom_disk_type"
HV_KVM_SCSI_CONTROLLER_TYPE = "scsi_controller_type"
HV_KVM_PCI_RESERVATIONS = "kvm_pci_reservations"
HV_USB_MOUSE = "usb_mouse"
HV_KEYMAP = "keymap"
HV_DISK_CACHE = "disk_cache"
HV_KVM_DISK_AIO = "disk_aio"
HV_DISK_DISCARD = "disk_discard"
HV_SECURITY_DOMAIN = "security_domain"
HV_VHOST_NET = "vhost_net"
HV_VIRTIO_NET_QUEUES = "virtio_net_queues"
HV_VNET_HDR = "vnet_hdr"
HV_KVM_USE_CHROOT = "use_chroot"
HV_KVM_USER_SHUTDOWN = "user_shutdown"
HV_KVM_USE_GUEST_AGENT = "use_guest_agent"
HV_CPU_TYPE = "cpu_type"
HV_CPU_CORES = "cpu_cores"
HV_CPU_THREADS = "cpu_threads"
HV_CPU_SOCKETS = "cpu_sockets"
HV_SOUNDHW = "soundhw"
HV_USB_DEVICES = "usb_devices"
HV_VGA = "vga"
HV_KVM_EXTRA = "kvm_extra"
HV_KVM_MIGRATION_CAPS = "migration_caps"

INSTANCE_REBOOT_ALLOWED = "reboot"
INSTANCE_REBOOT_EXIT = "exit"
REBOOT_BEHAVIORS = frozenset([INSTANCE_REBOOT_ALLOWED, INSTANCE_REBOOT_EXIT])
HT_BO_FLOPPY = "floppy"
HT_BO_DISK = "disk"
HT_BO_CDROM = "cdrom"
HT_BO_NETWORK = "network"
HT_KVM_VALID_BO_TYPES = frozenset([HT_BO_FLOPPY, HT_BO_DISK, HT_BO_CDROM,
                                   HT_BO_NETWORK])
HT_NIC_RTL8139 = "rtl8139"
HT_NIC_NE2K_ISA = "ne2k_isa"
HT_NIC_NE2K_PCI = "ne2k_pci"
HT_NIC_I82551 = "i82551"
HT_NIC_I82557B = "i82557b"
HT_NIC_I82559ER = "i82559er"
HT_NIC_PCNET = "pcnet"
HT_NIC_PARAVIRTUAL = "paravirtual"
HT_NIC_E1000 = "e1000"
HT_KVM_VALID_NIC_TYPES = frozenset([
    HT_NIC_RTL8139, HT_NIC_NE2K_ISA, HT_NIC_NE2K_PCI, HT_NIC_I82551,
    HT_NIC_I82557B, HT_NIC_I82559ER, HT_NIC_PCNET, HT_NIC_E1000,
    HT_NIC_PARAVIRTUAL])
HT_DISK_IOEMU = "ioemu"
HT_DISK_PARAVIRTUAL = "paravirtual"
HT_DISK_IDE = "ide"
HT_DISK_SCSI = "scsi"
HT_DISK_SD = "sd"
HT_DISK_MTD = "mtd"
HT_DISK_PFLASH = "pflash"
# ioemu is Xen HVM's: KVM's disks are one of these
HT_KVM_VALID_DISK_TYPES = frozenset([HT_DISK_PARAVIRTUAL, HT_DISK_IDE,
                                     HT_DISK_SCSI, HT_DISK_SD, HT_DISK_MTD,
                                     HT_DISK_PFLASH])
HT_SCSI_CONTROLLER_LSI = "lsi"
HT_SCSI_CONTROLLER_MEGASAS = "megasas"
HT_SCSI_CONTROLLER_VIRTIO = "virtio-scsi-pci"
HT_SCSI_CONTROLLER_DC390 = "dc390"
HT_KVM_VALID_SCSI_CONTROLLER_TYPES = frozenset([
    HT_SCSI_CONTROLLER_LSI, HT_SCSI_CONTROLLER_MEGASAS,
    HT_SCSI_CONTROLLER_VIRTIO, HT_SCSI_CONTROLLER_DC390])
# "default" is kept for compatibility and means writeback (QEMU's default)
HT_CACHE_DEFAULT = "default"
HT_CACHE_NONE = "none"
HT_CACHE_WTHROUGH = "writethrough"
HT_CACHE_WBACK = "writeback"
HT_VALID_CACHE_TYPES = frozenset([HT_CACHE_DEFAULT, HT_CACHE_NONE,
                                  HT_CACHE_WTHROUGH, HT_CACHE_WBACK])
HT_KVM_AIO_THREADS = "threads"
HT_KVM_AIO_NATIVE = "native"
HT_KVM_AIO_IO_URING = "io_uring"
HT_KVM_VALID_AIO_TYPES = frozenset([HT_KVM_AIO_THREADS, HT_KVM_AIO_NATIVE,
                                    HT_KVM_AIO_IO_URING])
HT_DISCARD_IGNORE = "ignore"
HT_DISCARD_UNMAP = "unmap"
HT_VALID_DISCARD_TYPES = frozenset([HT_DISCARD_IGNORE, HT_DISCARD_UNMAP])
HT_MOUSE_MOUSE = "mouse"
HT_MOUSE_TABLET = "tablet"
HT_KVM_VALID_MOUSE_TYPES = frozenset([HT_MOUSE_MOUSE, HT_MOUSE_TABLET])
HT_SM_NONE = "none"
HT_SM_USER = "user"
HT_SM_POOL = "pool"
HT_KVM_VALID_SM_TYPES = frozenset([HT_SM_NONE, HT_SM_USER, HT_SM_POOL])
KVM_FLAG_ENABLED = "enabled"
KVM_FLAG_DISABLED = "disabled"
# "" (unset): QEMU picks its own accelerator
HT_KVM_FLAG_VALUES = frozenset(["", KVM_FLAG_ENABLED, KVM_FLAG_DISABLED])
HT_KVM_SPICE_LOSSLESS_IMG_COMPR_AUTO_GLZ = "auto_glz"
HT_KVM_SPICE_LOSSLESS_IMG_COMPR_AUTO_LZ = "auto_lz"
HT_KVM_SPICE_LOSSLESS_IMG_COMPR_QUIC = "quic"
HT_KVM_SPICE_LOSSLESS_IMG_COMPR_GLZ = "glz"
HT_KVM_SPICE_LOSSLESS_IMG_COMPR_LZ = "lz"
HT_KVM_SPICE_LOSSLESS_IMG_COMPR_OFF = "off"
HT_KVM_SPICE_VALID_LOSSLESS_IMG_COMPR_OPTIONS = frozenset([
    HT_KVM_SPICE_LOSSLESS_IMG_COMPR_AUTO_GLZ,
    HT_KVM_SPICE_LOSSLESS_IMG_COMPR_AUTO_LZ,
    HT_KVM_SPICE_LOSSLESS_IMG_COMPR_QUIC, HT_KVM_SPICE_LOSSLESS_IMG_COMPR_GLZ,
    HT_KVM_SPICE_LOSSLESS_IMG_COMPR_LZ, HT_KVM_SPICE_LOSSLESS_IMG_COMPR_OFF])
HT_KVM_SPICE_LOSSY_IMG_COMPR_AUTO = "auto"
HT_KVM_SPICE_LOSSY_IMG_COMPR_NEVER = "never"
HT_KVM_SPICE_LOSSY_IMG_COMPR_ALWAYS = "always"
HT_KVM_SPICE_VALID_LOSSY_IMG_COMPR_OPTIONS = frozenset([
    HT_KVM_SPICE_LOSSY_IMG_COMPR_AUTO, HT_KVM_SPICE_LOSSY_IMG_COMPR_NEVER,
    HT_KVM_SPICE_LOSSY_IMG_COMPR_ALWAYS])
HT_KVM_SPICE_VIDEO_STREAM_DETECTION_OFF = "off"
HT_KVM_SPICE_VIDEO_STREAM_DETECTION_ALL = "all"
HT_KVM_SPICE_VIDEO_STREAM_DETECTION_FILTER = "filter"
HT_KVM_SPICE_VALID_VIDEO_STREAM_DETECTION_OPTIONS = frozenset([
    HT_KVM_SPICE_VIDEO_STREAM_DETECTION_OFF,
    HT_KVM_SPICE_VIDEO_STREAM_DETECTION_ALL,
    HT_KVM_SPICE_VIDEO_STREAM_DETECTION_FILTER])
# spice_ip_version: 0 means "not specified" (the cluster's family decides)
IFACE_NO_IP_VERSION_SPECIFIED = 0
IP4_VERSION = 4
IP6_VERSION = 6
VALID_IP_VERSIONS = frozenset([IP4_VERSION, IP6_VERSION])
# The serial speeds the KVM hypervisor accepts (bit/s)
VALID_SERIAL_SPEEDS = (75, 110, 300, 600, 1200, 1800, 2400, 4800, 9600,
                       14400, 19200, 28800, 38400, 57600, 115200, 230400,
                       345600, 460800)
# An instance's VNC display is its network port minus this
VNC_BASE_PORT = 5900
# PCI slots of QEMU's root bus; the first ones are QEMU's own by default
QEMU_PCI_SLOTS = 32
QEMU_DEFAULT_PCI_RESERVATIONS = 12
MAX_VIRTIO_NET_QUEUES = 32
# The default TLS ciphers of the SPICE server (openssl ciphers(1) syntax)
OPENSSL_CIPHERS = "HIGH:-DES:-3DES:-EXPORT:-ADH"
CPU_PINNING_ALL = "all"

HVC_DEFAULTS: dict[str, dict[str, object]] = {
    HT_FAKE: {
        HV_MIGRATION_MODE: HT_MIGRATION_LIVE,
    },
    # Ganeti 3.0's defaults; their types also give the parameters' types
    # (cmdlib.cluster.CheckHvParams)
    HT_KVM: {
        HV_KVM_PATH: "/usr/bin/kvm",
        HV_KERNEL_PATH: "",
        HV_INITRD_PATH: "",
        HV_KERNEL_ARGS: "ro",
        HV_ROOT_PATH: "/dev/vda1",
        HV_ACPI: True,
        HV_PAE: False,
        HV_SERIAL_CONSOLE: True,
        HV_SERIAL_SPEED: 38400,
        HV_VNC_BIND_ADDRESS: "",
        HV_VNC_TLS: False,
        HV_VNC_X509: "",
        HV_VNC_X509_VERIFY: False,
        HV_VNC_PASSWORD_FILE: "",
        HV_KVM_SCSI_CONTROLLER_TYPE: HT_SCSI_CONTROLLER_LSI,
        HV_KVM_PCI_RESERVATIONS: QEMU_DEFAULT_PCI_RESERVATIONS,
        HV_KVM_SPICE_BIND: "",
        HV_KVM_SPICE_IP_VERSION: IFACE_NO_IP_VERSION_SPECIFIED,
        HV_KVM_SPICE_PASSWORD_FILE: "",
        HV_KVM_SPICE_LOSSLESS_IMG_COMPR: "",
        HV_KVM_SPICE_JPEG_IMG_COMPR: "",
        HV_KVM_SPICE_ZLIB_GLZ_IMG_COMPR: "",
        HV_KVM_SPICE_STREAMING_VIDEO_DETECTION: "",
        HV_KVM_SPICE_AUDIO_COMPR: True,
        HV_KVM_SPICE_USE_TLS: False,
        HV_KVM_SPICE_TLS_CIPHERS: OPENSSL_CIPHERS,
        HV_KVM_SPICE_USE_VDAGENT: True,
        HV_KVM_FLOPPY_IMAGE_PATH: "",
        HV_CDROM_IMAGE_PATH: "",
        HV_KVM_CDROM2_IMAGE_PATH: "",
        HV_BOOT_ORDER: HT_BO_DISK,
        HV_NIC_TYPE: HT_NIC_PARAVIRTUAL,
        HV_DISK_TYPE: HT_DISK_PARAVIRTUAL,
        HV_KVM_CDROM_DISK_TYPE: "",
        HV_USB_MOUSE: "",
        HV_KEYMAP: "",
        HV_MIGRATION_PORT: 8102,
        HV_MIGRATION_BANDWIDTH: 32,
        HV_MIGRATION_DOWNTIME: 30,
        HV_MIGRATION_MODE: HT_MIGRATION_LIVE,
        HV_KVM_MIGRATION_CAPS: "",
        HV_USE_LOCALTIME: False,
        HV_DISK_CACHE: HT_CACHE_DEFAULT,
        HV_KVM_DISK_AIO: HT_KVM_AIO_THREADS,
        HV_DISK_DISCARD: HT_DISCARD_IGNORE,
        HV_SECURITY_MODEL: HT_SM_NONE,
        HV_SECURITY_DOMAIN: "",
        HV_KVM_FLAG: "",
        # Ganeti 3.1 turns vhost_net on for new clusters; 3.0 had it off
        HV_VHOST_NET: False,
        HV_VIRTIO_NET_QUEUES: 1,
        HV_VNET_HDR: True,
        HV_KVM_USE_CHROOT: False,
        HV_KVM_USER_SHUTDOWN: False,
        HV_KVM_USE_GUEST_AGENT: False,
        HV_MEM_PATH: "",
        HV_REBOOT_BEHAVIOR: INSTANCE_REBOOT_ALLOWED,
        HV_CPU_MASK: CPU_PINNING_ALL,
        HV_CPU_TYPE: "",
        HV_CPU_CORES: 0,
        HV_CPU_THREADS: 0,
        HV_CPU_SOCKETS: 0,
        HV_SOUNDHW: "",
        HV_USB_DEVICES: "",
        HV_VGA: "",
        HV_KVM_EXTRA: "",
        HV_MACHINE_VERSION: "",
    },
    HT_XEN_PVM: {
        HV_KERNEL_PATH: "/boot/vmlinuz-3-xenU",
        HV_INITRD_PATH: "",
        HV_ROOT_PATH: "/dev/xvda1",
        HV_KERNEL_ARGS: "ro",
        HV_MIGRATION_PORT: 8002,
        HV_MIGRATION_MODE: HT_MIGRATION_LIVE,
        HV_REBOOT_BEHAVIOR: INSTANCE_REBOOT_ALLOWED,
        HV_CPU_MASK: CPU_PINNING_ALL,
    },
    HT_XEN_HVM: {
        HV_BOOT_ORDER: "cd",
        HV_CDROM_IMAGE_PATH: "",
        HV_NIC_TYPE: "rtl8139",
        HV_DISK_TYPE: HT_DISK_PARAVIRTUAL,
        HV_VNC_BIND_ADDRESS: "0.0.0.0",
        HV_ACPI: True,
        HV_MIGRATION_PORT: 8002,
        HV_MIGRATION_MODE: HT_MIGRATION_NONLIVE,
        HV_USE_LOCALTIME: False,
        HV_REBOOT_BEHAVIOR: INSTANCE_REBOOT_ALLOWED,
        HV_CPU_MASK: CPU_PINNING_ALL,
    },
    HT_CHROOT: {
        HV_INIT_SCRIPT: "/ganeti-chroot",
    },
    HT_LXC: {
        HV_CPU_MASK: "",
    },
}

# --- Backend parameters ---------------------------------------------------------------------

BE_MEMORY = "memory"   # obsolete alias of maxmem, still accepted on input
BE_MINMEM = "minmem"
BE_MAXMEM = "maxmem"
BE_VCPUS = "vcpus"
BE_AUTO_BALANCE = "auto_balance"
BE_ALWAYS_FAILOVER = "always_failover"
BE_SPINDLE_USE = "spindle_use"
BES_PARAMETER_TYPES = {
    BE_MINMEM: "size",
    BE_MAXMEM: "size",
    BE_VCPUS: "int",
    BE_AUTO_BALANCE: "bool",
    BE_ALWAYS_FAILOVER: "bool",
    BE_SPINDLE_USE: "int",
}
BEC_DEFAULTS: dict[str, object] = {
    BE_MINMEM: 128,
    BE_MAXMEM: 128,
    BE_VCPUS: 1,
    BE_AUTO_BALANCE: True,
    BE_ALWAYS_FAILOVER: False,
    BE_SPINDLE_USE: 1,
}

# --- Node parameters ---------------------------------------------------------------------

ND_OOB_PROGRAM = "oob_program"
ND_SPINDLE_COUNT = "spindle_count"
ND_EXCLUSIVE_STORAGE = "exclusive_storage"
ND_OVS = "ovs"
ND_OVS_NAME = "ovs_name"
ND_OVS_LINK = "ovs_link"
ND_SSH_PORT = "ssh_port"
ND_CPU_SPEED = "cpu_speed"
NDS_PARAMETER_TYPES = {
    ND_OOB_PROGRAM: "string",
    ND_SPINDLE_COUNT: "int",
    ND_EXCLUSIVE_STORAGE: "bool",
    ND_OVS: "bool",
    ND_OVS_NAME: "maybe-string",
    ND_OVS_LINK: "maybe-string",
    ND_SSH_PORT: "int",
    ND_CPU_SPEED: "float",
}
NDC_DEFAULTS: dict[str, object] = {
    ND_OOB_PROGRAM: "",
    ND_SPINDLE_COUNT: 1,
    ND_EXCLUSIVE_STORAGE: False,
    ND_OVS: False,
    ND_OVS_NAME: DEFAULT_OVS,
    ND_OVS_LINK: "",
    ND_SSH_PORT: 22,
    ND_CPU_SPEED: 1.0,
}

# --- Static hypervisor and disk state (hv_state / disk_state, ganeti(7)) ------------------

HVST_MEMORY_TOTAL = "mem_total"
HVST_MEMORY_NODE = "mem_node"
HVST_MEMORY_HV = "mem_hv"
HVST_CPU_TOTAL = "cpu_total"
HVST_CPU_NODE = "cpu_node"
HVSTS_PARAMETER_TYPES = {
    HVST_MEMORY_TOTAL: "int",
    HVST_MEMORY_NODE: "int",
    HVST_MEMORY_HV: "int",
    HVST_CPU_TOTAL: "int",
    HVST_CPU_NODE: "int",
}
HVST_DEFAULTS: dict[str, object] = {
    HVST_MEMORY_TOTAL: 0,
    HVST_MEMORY_NODE: 0,
    HVST_MEMORY_HV: 0,
    HVST_CPU_TOTAL: 1,
    HVST_CPU_NODE: 1,
}
DS_DISK_TOTAL = "disk_total"
DS_DISK_RESERVED = "disk_reserved"
DS_DISK_OVERHEAD = "disk_overhead"
DSS_PARAMETER_TYPES = {
    DS_DISK_TOTAL: "int",
    DS_DISK_RESERVED: "int",
    DS_DISK_OVERHEAD: "int",
}
DS_DEFAULTS: dict[str, object] = {
    DS_DISK_TOTAL: 0,
    DS_DISK_RESERVED: 0,
    DS_DISK_OVERHEAD: 0,
}
#: The storage types a disk state may be given for (Ganeti's: LVM, as "plain")
DS_VALID_TYPES = frozenset(["plain"])

# --- Disk parameters (per disk template) --------------------------------------------------

LV_STRIPES = "stripes"
RBD_POOL = "pool"
RBD_ACCESS = "access"
DRBD_RESYNC_RATE = "resync-rate"
DRBD_DATA_STRIPES = "data-stripes"
DRBD_META_STRIPES = "meta-stripes"
DRBD_DISK_BARRIERS = "disk-barriers"
DRBD_META_BARRIERS = "meta-barriers"
DRBD_DEFAULT_METAVG = "metavg"
DRBD_DISK_CUSTOM = "disk-custom"
DRBD_NET_CUSTOM = "net-custom"
DRBD_PROTOCOL = "protocol"
DRBD_DYNAMIC_RESYNC = "dynamic-resync"
DRBD_C_PLAN_AHEAD = "c-plan-ahead"
DRBD_C_FILL_TARGET = "c-fill-target"
DRBD_C_DELAY_TARGET = "c-delay-target"
DRBD_C_MAX_RATE = "c-max-rate"
DRBD_C_MIN_RATE = "c-min-rate"
GLUSTER_HOST = "host"
GLUSTER_VOLUME = "volume"
GLUSTER_PORT = "port"

# Dynamic disk parameters: what the master adds to a disk per destination
# node (objects.Disk.dynamic_params), never saved in the configuration
#: The logical_id driver of adopted block devices (blockdev)
BLOCKDEV_DRIVER_MANUAL = "manual"

DDP_LOCAL_IP = "local-ip"
DDP_REMOTE_IP = "remote-ip"
DDP_PORT = "port"
DDP_LOCAL_MINOR = "local-minor"
DDP_REMOTE_MINOR = "remote-minor"

# Storage unit operations (gnt-node modify-storage / repair-storage)
SO_FIX_CONSISTENCY = "fix-consistency"
#: Which storage types can be modified, and which fields
MODIFIABLE_STORAGE_FIELDS = {ST_LVM_PV: frozenset(["allocatable"])}
#: Which operations each storage type supports
VALID_STORAGE_OPERATIONS = {ST_LVM_VG: frozenset([SO_FIX_CONSISTENCY])}

DISK_DT_DEFAULTS: dict[str, dict[str, object]] = {
    DT_PLAIN: {LV_STRIPES: 1},
    DT_DRBD8: {
        DRBD_RESYNC_RATE: 61440,
        DRBD_DATA_STRIPES: 1,
        DRBD_META_STRIPES: 1,
        DRBD_DISK_BARRIERS: "n",
        DRBD_META_BARRIERS: False,
        DRBD_DEFAULT_METAVG: DEFAULT_VG,
        DRBD_DISK_CUSTOM: "",
        DRBD_NET_CUSTOM: "",
        DRBD_PROTOCOL: "C",
        DRBD_DYNAMIC_RESYNC: False,
        DRBD_C_PLAN_AHEAD: 20,
        DRBD_C_FILL_TARGET: 0,
        DRBD_C_DELAY_TARGET: 1,
        DRBD_C_MAX_RATE: 61440,
        DRBD_C_MIN_RATE: 4096,
    },
    DT_DISKLESS: {},
    DT_FILE: {},
    DT_SHARED_FILE: {},
    DT_BLOCK: {},
    DT_RBD: {RBD_POOL: "rbd", RBD_ACCESS: "kernelspace"},
    DT_EXT: {},
    DT_GLUSTER: {GLUSTER_HOST: "127.0.0.1", GLUSTER_VOLUME: "gv0",
                 GLUSTER_PORT: 24007},
}

# --- Instance policy (ipolicy) -----------------------------------------------------------

ISPEC_MEM_SIZE = "memory-size"
ISPEC_CPU_COUNT = "cpu-count"
ISPEC_DISK_COUNT = "disk-count"
ISPEC_DISK_SIZE = "disk-size"
ISPEC_NIC_COUNT = "nic-count"
ISPEC_SPINDLE_USE = "spindle-use"
ISPECS_PARAMETERS = frozenset([ISPEC_MEM_SIZE, ISPEC_CPU_COUNT,
                               ISPEC_DISK_COUNT, ISPEC_DISK_SIZE,
                               ISPEC_NIC_COUNT, ISPEC_SPINDLE_USE])
ISPECS_MINMAX = "minmax"
ISPECS_MIN = "min"
ISPECS_MAX = "max"
ISPECS_STD = "std"
IPOLICY_DTS = "disk-templates"
IPOLICY_VCPU_RATIO = "vcpu-ratio"
IPOLICY_SPINDLE_RATIO = "spindle-ratio"
IPOLICY_MEMORY_RATIO = "memory-ratio"
IPOLICY_PARAMETERS = frozenset([IPOLICY_VCPU_RATIO, IPOLICY_SPINDLE_RATIO,
                                IPOLICY_MEMORY_RATIO])
IPOLICY_ALL_KEYS = IPOLICY_PARAMETERS | frozenset([ISPECS_MINMAX, ISPECS_STD,
                                                   IPOLICY_DTS])
ISPECS_MINMAX_DEFAULTS = {
    ISPECS_MIN: {
        ISPEC_MEM_SIZE: 128,
        ISPEC_CPU_COUNT: 1,
        ISPEC_DISK_COUNT: 1,
        ISPEC_DISK_SIZE: 1024,
        ISPEC_NIC_COUNT: 1,
        ISPEC_SPINDLE_USE: 1,
    },
    ISPECS_MAX: {
        ISPEC_MEM_SIZE: 32768,
        ISPEC_CPU_COUNT: 8,
        ISPEC_DISK_COUNT: 16,
        ISPEC_DISK_SIZE: 1024 * 1024,
        ISPEC_NIC_COUNT: 8,
        ISPEC_SPINDLE_USE: 12,
    },
}
IPOLICY_DEFAULTS: dict[str, object] = {
    ISPECS_MINMAX: [ISPECS_MINMAX_DEFAULTS],
    ISPECS_STD: {
        ISPEC_MEM_SIZE: 128,
        ISPEC_CPU_COUNT: 1,
        ISPEC_DISK_COUNT: 1,
        ISPEC_DISK_SIZE: 1024,
        ISPEC_NIC_COUNT: 1,
        ISPEC_SPINDLE_USE: 1,
    },
    IPOLICY_DTS: list(DISK_TEMPLATE_PREFERENCE),
    IPOLICY_VCPU_RATIO: 4.0,
    IPOLICY_SPINDLE_RATIO: 32.0,
    IPOLICY_MEMORY_RATIO: 1.0,
}

# --- Cluster-wide defaults ----------------------------------------------------------------

MASTER_POOL_SIZE_DEFAULT = 10
DEFAULT_MAX_RUNNING_JOBS = 20
DEFAULT_MAX_TRACKED_JOBS = 25
DEFAULT_ZEROING_IMAGE = ""
#: Helper VMs (--zero-free-space): the fixed part of the time a helper VM
#: gets (seconds), and the part per MiB of the instance's disks (a disk
#: written at a fifth of 100 MiB/s)
HELPER_VM_STARTUP = 5 * 60
ZEROING_TIMEOUT_PER_MIB = 1.0 / (100.0 / 5.0)
DEFAULT_COMPRESSION_TOOLS = ("gzip", "gzip-fast", "gzip-slow")
IEC_NONE = "none"
DEFAULT_SSH_KEY_TYPE = "rsa"
DEFAULT_SSH_KEY_BITS = 2048
DEFAULT_SHUTDOWN_TIMEOUT = 120
DEFAULT_OS_NAME = "noop"
DEFAULT_CANDIDATE_CERTS: dict[str, str] = {}
UID_POOL_UID_MIN = 0
UID_POOL_UID_MAX = 2 ** 32 - 1
MAX_NET_SIZE_BITS = 16  # largest network is a /16 (ipaddr pool size)
MAX_DISKS = 16
MAX_NICS = 8

# Opcode parameter helpers
OP_DRY_RUN = "dry_run"
OP_DEBUG_LEVEL = "debug_level"
OP_PRIORITY = "priority"
OP_COMMENT = "comment"
OP_REASON = "reason"
OP_DEPENDS = "depends"
OPCODE_REASON_SRC_CLIENT = "gnt:client"
OPCODE_REASON_SRC_NODED = "gnt:daemon:noded"
OPCODE_REASON_SRC_OPCODE = "gnt:opcode"
OPCODE_REASON_SRC_RLIB2 = "gnt:library:rlib2"
OPCODE_REASON_SRC_USER = "gnt:user"
OPCODE_REASON_SRC_WATCHER = "gnt:watcher"

# Lock levels (names as seen in lock queries)
LOCK_ATTEMPTS_TIMEOUT_MAX = 10.0
LOCK_ATTEMPTS_MAXWAIT = 15.0
LOCK_ATTEMPTS_MINWAIT = 1.0

# Timeouts used in several places
NODE_MAX_CLOCK_SKEW = 150
DISK_TRANSFER_CONNECT_TIMEOUT = 60

# Validity of parameters for value checks (ssconf keys and so on)
SS_CLUSTER_NAME = "cluster_name"
SS_CLUSTER_TAGS = "cluster_tags"
SS_FILE_STORAGE_DIR = "file_storage_dir"
SS_SHARED_FILE_STORAGE_DIR = "shared_file_storage_dir"
SS_GLUSTER_STORAGE_DIR = "gluster_storage_dir"
SS_MASTER_CANDIDATES = "master_candidates"
SS_MASTER_CANDIDATES_IPS = "master_candidates_ips"
SS_MASTER_CANDIDATES_CERTS = "master_candidates_certs"
SS_MASTER_IP = "master_ip"
SS_MASTER_NETDEV = "master_netdev"
SS_MASTER_NETMASK = "master_netmask"
SS_MASTER_NODE = "master_node"
SS_NODE_LIST = "node_list"
SS_NODE_PRIMARY_IPS = "node_primary_ips"
SS_NODE_SECONDARY_IPS = "node_secondary_ips"
SS_NODE_VM_CAPABLE = "node_vm_capable"
SS_OFFLINE_NODES = "offline_nodes"
SS_ONLINE_NODES = "online_nodes"
SS_PRIMARY_IP_FAMILY = "primary_ip_family"
SS_INSTANCE_LIST = "instance_list"
SS_RELEASE_VERSION = "release_version"
SS_HYPERVISOR_LIST = "hypervisor_list"
SS_MAINTAIN_NODE_HEALTH = "maintain_node_health"
SS_UID_POOL = "uid_pool"
SS_NODEGROUPS = "nodegroups"
SS_NETWORKS = "networks"
SS_HVPARAMS_PREF = "hvparams_"
SS_HVPARAMS_XEN_PVM = SS_HVPARAMS_PREF + HT_XEN_PVM
SS_HVPARAMS_XEN_FAKE = SS_HVPARAMS_PREF + HT_FAKE
SS_HVPARAMS_XEN_HVM = SS_HVPARAMS_PREF + HT_XEN_HVM
SS_HVPARAMS_XEN_KVM = SS_HVPARAMS_PREF + HT_KVM
SS_HVPARAMS_XEN_CHROOT = SS_HVPARAMS_PREF + HT_CHROOT
SS_HVPARAMS_XEN_LXC = SS_HVPARAMS_PREF + HT_LXC
SS_ENABLED_USER_SHUTDOWN = "enabled_user_shutdown"
SS_SSH_PORTS = "ssh_ports"
# Not in Ganeti: per-node daemon endpoints for virtual clusters (seed 004,
# "per-node IP/port support"); one "name address:port" line per node.
SS_NODE_NODED_ENDPOINTS = "node_noded_endpoints"
SS_NODE_CONFD_ENDPOINTS = "node_confd_endpoints"
VALID_SS_KEYS = frozenset([
    SS_CLUSTER_NAME, SS_CLUSTER_TAGS, SS_FILE_STORAGE_DIR,
    SS_SHARED_FILE_STORAGE_DIR, SS_GLUSTER_STORAGE_DIR,
    SS_MASTER_CANDIDATES, SS_MASTER_CANDIDATES_IPS,
    SS_MASTER_CANDIDATES_CERTS, SS_MASTER_IP, SS_MASTER_NETDEV,
    SS_MASTER_NETMASK, SS_MASTER_NODE, SS_NODE_LIST, SS_NODE_PRIMARY_IPS,
    SS_NODE_SECONDARY_IPS, SS_NODE_VM_CAPABLE, SS_OFFLINE_NODES,
    SS_ONLINE_NODES, SS_PRIMARY_IP_FAMILY, SS_INSTANCE_LIST,
    SS_RELEASE_VERSION, SS_HYPERVISOR_LIST, SS_MAINTAIN_NODE_HEALTH,
    SS_UID_POOL, SS_NODEGROUPS, SS_NETWORKS, SS_HVPARAMS_XEN_PVM,
    SS_HVPARAMS_XEN_FAKE, SS_HVPARAMS_XEN_HVM, SS_HVPARAMS_XEN_KVM,
    SS_HVPARAMS_XEN_CHROOT, SS_HVPARAMS_XEN_LXC, SS_ENABLED_USER_SHUTDOWN,
    SS_SSH_PORTS, SS_NODE_NODED_ENDPOINTS, SS_NODE_CONFD_ENDPOINTS,
])
SSCONF_FILEPREFIX = "ssconf_"

# Cluster-level file names (relative; pathutils adds the directories)
CLUSTER_CONF_FILE_NAME = "config.data"
SERVER_PEM_NAME = "server.pem"
CLIENT_PEM_NAME = "client.pem"
RAPI_PEM_NAME = "rapi.pem"
CONFD_HMAC_KEY_NAME = "hmac.key"
SPICE_CERT_NAME = "spice.pem"
SPICE_CACERT_NAME = "spice-ca.pem"
CLUSTER_DOMAIN_SECRET_NAME = "cluster-domain-secret"
RAPI_USERS_FILE_NAME = "users"

# Node daemon request limits
NODED_MAX_BODY_SIZE = 64 * 1024 * 1024

# Miscellaneous
RANDOM_UUID_FILE = "/proc/sys/kernel/random/uuid"
MAC_PREFIX_LENGTH = 3
WATCHER_STATEFILE_NAME = "watcher.data"
DEFAULT_FILE_MODE = 0o644
SECURE_FILE_MODE = 0o600
#: config.data: the master daemon writes it, confd's group reads it
CLUSTER_CONF_FILE_MODE = 0o640
SECURE_DIR_MODE = 0o700

# --- Node daemon, node RPC and cluster crypto (issue 5) ------------------------------
# Added by the node daemon/RPC work; names and values follow Ganeti's.

# X.509 certificates
X509_CERT_CN = "ganeti.example.com"
X509_CERT_DEFAULT_VALIDITY = 365 * 5  # days
X509_CERT_SIGN_DIGEST = "SHA256"
RSA_KEY_BITS = 2048
SSL_CERT_EXPIRATION_WARN = 30  # days
SSL_CERT_EXPIRATION_ERROR = 7  # days
# Modes of the key files as Ganeti writes them
NODED_CERT_MODE = 0o440
NODED_CLIENT_CERT_MODE = 0o440
RAPI_CERT_MODE = 0o440
CONFD_HMAC_KEY_MODE = 0o440
CLUSTER_DOMAIN_SECRET_MODE = 0o640
HMAC_KEY_BYTES = 20  # random bytes in hmac.key, written as hex

# Node verify checks (keys of node_verify's "what" and of its result)
NV_DRBDHELPER = "drbd-helper"
NV_DRBDLIST = "drbd-list"
NV_FILELIST = "filelist"
NV_HVINFO = "hvinfo"
NV_HYPERVISOR = "hypervisor"
NV_HVPARAMS = "hvparms"
NV_INSTANCELIST = "instancelist"
NV_LVLIST = "lvlist"
NV_MASTERIP = "master-ip"
NV_NODELIST = "nodelist"
NV_NODENETTEST = "node-net-test"
NV_NODESETUP = "nodesetup"
NV_OSLIST = "oslist"
NV_PVLIST = "pvlist"
NV_TIME = "time"
NV_VERSION = "version"
NV_VGLIST = "vglist"
NV_VMNODES = "vmnodes"
NV_OOB_PATHS = "oob-paths"
NV_BRIDGES = "bridges"
NV_USERSCRIPTS = "user-scripts"
NV_HOSTNAME = "hostname"
NV_CLIENT_CERT = "client-cert"

# Crypto tokens of a node (RPC node_crypto_tokens): its client certificate's
# digest, read or after making a new client certificate
CRYPTO_TYPE_SSL_DIGEST = "ssl"
CRYPTO_TYPES = frozenset([CRYPTO_TYPE_SSL_DIGEST])
CRYPTO_ACTION_GET = "get"
CRYPTO_ACTION_CREATE = "create"
CRYPTO_ACTIONS = frozenset([CRYPTO_ACTION_GET, CRYPTO_ACTION_CREATE])
#: The serial number of a new client certificate (default: the time)
CRYPTO_OPTION_SERIAL_NO = "serial_no"
#: Our extension (Ganeti has no such check): the node lists where the owner,
#: group or mode of its files differs from ensure-dirs' table
NV_FILEPERMS = "file-permissions"
#: Our extension (Ganeti has no such check): the files and directories below
#: the given file storage directories, for the orphans check (ENODEORPHANFILE)
NV_FILESTORAGELIST = "file-storage-list"
#: Seconds cluster verify waits for the configuration to be distributed
VERIFY_CONFIG_FLUSH_TIMEOUT = 60.0

# Node daemon serving limits
NODED_MAX_CLIENTS = 20           # requests handled at the same time (man page)
NODED_REQUEST_READ_TIMEOUT = 60  # seconds a client has to send its request
NODED_MAX_HEADER_SIZE = 64 * 1024
NODED_TERM_TIMEOUT = 10          # seconds running requests get after SIGUSR1
NODED_MAX_CONNECTIONS = 512      # open connections, idle ones included
#: seconds an idle kept-alive connection stays open; longer than
#: RPC_CONN_MAX_AGE, so that the server never closes a connection a client
#: may still pick for its next request
NODED_KEEPALIVE_TIMEOUT = 180
RPC_CONN_MAX_AGE = 60            # seconds a client reuses an idle connection
RPC_COMPRESS_MIN_SIZE = 512      # smaller payloads are sent uncompressed
TCP_PING_TIMEOUT = 10            # node_verify reachability checks, seconds

# --- Added for config objects and the configuration writer -------------------
# (objects/ and config/; appended here so other blocks stay untouched)

# The name of the single parameter group in grouped dicts such as the
# cluster's beparams and nicparams ({"default": {...}})
PP_DEFAULT = "default"

# Hypervisor parameters that are cluster-wide only: an instance cannot
# override them, and UpgradeConfig drops them from instances' hvparams
HVC_GLOBALS = frozenset([HV_MIGRATION_PORT, HV_MIGRATION_BANDWIDTH,
                         HV_MIGRATION_MODE])

# Address families as stored in the cluster's primary_ip_family (the values
# of socket.AF_INET and socket.AF_INET6 on Linux, as Ganeti stores them)
IP4_ADDRESS_FAMILY = 2
IP6_ADDRESS_FAMILY = 10
VALID_IP_FAMILIES = frozenset([IP4_ADDRESS_FAMILY, IP6_ADDRESS_FAMILY])
IP4_DEFAULT_NETMASK = 32
IP6_DEFAULT_NETMASK = 128

# Smallest network an address pool may cover (a /30 has two usable hosts)
MIN_NET_SIZE_BITS = 2

# Highest DRBD minor we hand out (DRBD 8 allows 2**20 minors per node)
DRBD_MAX_MINOR = 2 ** 20 - 1

# How many random candidates we try before giving up on a unique MAC,
# UUID or secret
MAX_GENERATE_ATTEMPTS = 64

# Length of generated DRBD shared secrets (hex characters, as Ganeti's)
DRBD_SECRET_LENGTH = 40

# --- Added for ht and opcodes (lib/ht.py, lib/opcodes*.py) ---------------------

# Key of the job list in the result of opcodes that submit jobs
JOB_IDS_KEY = "jobs"
# Keys of OpInstanceMultiAlloc's result: the instances placed, those not
ALLOCATABLE_KEY = "allocatable"
FAILED_KEY = "allocation_failed"

# Opcode parameter "sequential" (OpGroupEvacuate)
OPCODE_SEQUENTIAL = "sequential"

# File storage drivers (OpInstanceCreate/OpInstanceSetParams "file_driver")
FD_LOOP = "loop"
FD_BLKTAP = "blktap"
FD_BLKTAP2 = "blktap2"
FD_DEFAULT = FD_LOOP
FILE_DRIVER = frozenset([FD_LOOP, FD_BLKTAP, FD_BLKTAP2])

# SSH key types (OpClusterRenewCrypto "ssh_key_type")
SSHK_RSA = "rsa"
SSHK_DSA = "dsa"
SSHK_ECDSA = "ecdsa"
SSHK_ALL = frozenset([SSHK_RSA, SSHK_DSA, SSHK_ECDSA])

# Data collector parameters of OpClusterSetParams
DATA_COLLECTORS_ENABLED_NAME = "enabled_data_collectors"
DATA_COLLECTORS_INTERVAL_NAME = "data_collector_interval"
#: The data collectors of ganeti-mond (Ganeti's names)
DATA_COLLECTOR_NAMES = frozenset([
    "cpu-avg-load", "xen-cpu-avg-load", "diskstats", "drbd", "lv",
    "inst-status-xen", "kvm-inst-rss"])

# Simple dict modifications (hidden_os, blacklisted_os, legacy disk/NIC mods)
DDMS_SIMPLE = frozenset([DDM_ADD, DDM_REMOVE])

# Every valid opcode priority (OP_PRIO_SUBMIT_VALID are those a client may
# submit; the job queue may raise a waiting opcode's priority further)
OP_PRIO_ALL = range(OP_PRIO_HIGHEST, OP_PRIO_LOWEST + 1)

# --- Added with utils/pathutils/ssconf ------------------------------------------------

# ssconf files are world-readable; the set is written under a lock
SS_FILE_PERMS = 0o444
SSCONF_LOCK_TIMEOUT = 10
# Largest ssconf value we write or read, in bytes
SSCONF_MAX_SIZE = 128 * 1024

# Exit code of CheckMasterCandidate when this node is not a candidate
EXIT_NOTCANDIDATE = 10

# Base names of the daemons' log files (pathutils.GetLogFilename adds the
# directory and the ".log" suffix)
DAEMONS_LOGBASE = {
    MASTERD: "master-daemon",
    NODED: "node-daemon",
    CONFD: "conf-daemon",
    RAPI: "rapi-daemon",
    WATCHER: "watcher",
}


# --- Luxi wire and master daemon (issue 4, luxi/masterd) ----------------------------
# Keys of luxi requests and answers, as Ganeti's
LUXI_KEY_METHOD = "method"
LUXI_KEY_ARGS = "args"
LUXI_KEY_VERSION = "version"
LUXI_KEY_SUCCESS = "success"
LUXI_KEY_RESULT = "result"
# WaitForJobChange's answer when nothing changed before its timeout
JOB_NOTCHANGED = "nochange"
# Largest luxi message a client accepts, in bytes (terminator excluded)
LUXI_MAX_MESSAGE_SIZE = 32 * 1024 * 1024
# Largest luxi request the master accepts: decoding JSON costs up to ~26
# bytes of memory per byte received (a list of empty lists), while a
# thousand instance creations in one SubmitManyJobs take well under 1 MB
LUXI_MAX_REQUEST_SIZE = 8 * 1024 * 1024
# Most field names one Query, QueryFields, QueryJobs or WaitForJobChange
# may name (the instance resource has about 230 fields)
LUXI_MAX_QUERY_FIELDS = 1024
# Seconds a client has to finish a request it started sending (part of it
# sent, then nothing, or a trickle) before the master closes the connection
LUXI_PARTIAL_REQUEST_TIMEOUT = 30
# Listen backlog of the luxi sockets (the kernel caps it at
# net.core.somaxconn): a burst of clients must wait, not fail with EAGAIN
LUXI_LISTEN_BACKLOG = 4096
# A luxi client retries a connect refused with EAGAIN (backlog full) until
# its connect timeout, waiting from the first to the last delay, doubling
LUXI_CONNECT_RETRY_FIRST = 0.01
LUXI_CONNECT_RETRY_MAX = 0.5
# Longest a single WaitForJobChange may wait, whatever the client asks
LUXI_WFJC_MAX_TIMEOUT = LUXI_DEF_RWTO - 1
# Mode of the master's luxi sockets
LUXI_SOCKET_PERMS = 0o660
# Seconds ganeti-masterd waits for running jobs on SIGTERM
MASTERD_SHUTDOWN_TIMEOUT = 30
# Threads running luxi requests that touch files (job submission, archiving)
MASTERD_LUXI_THREADS = 8


# --- Confd queries (issue 9, confd) ------------------------------------------------------
# Keys of a dict query, as Ganeti's (strings: they are JSON object keys)
CONFD_REQQ_LINK = "0"
CONFD_REQQ_IP = "1"
CONFD_REQQ_IPLIST = "2"
CONFD_REQQ_FIELDS = "3"
# Fields of a CONFD_REQ_CLUSTER_MASTER dict query (Ganeti sends them as
# strings or, since 2.7, as integers; the daemon takes both)
CONFD_REQFIELD_NAME = "0"
CONFD_REQFIELD_IP = "1"
CONFD_REQFIELD_MNODE_PIP = "2"
# Extension (not in Ganeti): the master network device
CONFD_REQFIELD_NETDEV = "3"
CONFD_REPL_STATUSES = frozenset([CONFD_REPL_STATUS_OK, CONFD_REPL_STATUS_ERROR,
                                 CONFD_REPL_STATUS_NOTIMPLEMENTED])
CONFD_NODE_ROLES = frozenset(range(0, 5))
# Seconds without a reload after which confd checks the file anyway, in
# case an inotify event was missed (Ganeti's value)
CONFD_CONFIG_RELOAD_TIMEOUT = 17
# confd reloads a changed configuration in the background once the file
# has been quiet (no new change) for this many seconds, so that a burst
# of writes costs one parse
CONFD_CONFIG_RELOAD_QUIET = 0.5
# ... but never later than this many seconds after the first change not
# yet loaded, so a steady stream of writes still gets a reload this often.
# (A query always gets the file's current configuration anyway: confd
# loads a changed file before answering.)
CONFD_CONFIG_RELOAD_MAXDELAY = 5.0
# ... and a background reload waits at least this many times the CPU time
# the previous load took, so that reloading spends at most 1/50 of a CPU:
# a configuration of 10,000 instances takes ~0.3 s to load, and ten
# candidates' daemons reloading it after every change were the whole
# machine's work on a virtual cluster
CONFD_CONFIG_RELOAD_CPU_FACTOR = 50.0


# --- Hypervisors, storage and the OS API on the node (issue 7, node side) -------------
# Console kinds (InstanceConsole.kind), as Ganeti's
CONS_MESSAGE = "msg"
CONS_SSH = "ssh"
CONS_VNC = "vnc"
CONS_SPICE = "spice"
# Migration states a hypervisor reports (instance_get_migration_status)
HV_MIGRATION_COMPLETED = "completed"
HV_MIGRATION_ACTIVE = "active"
HV_MIGRATION_FAILED = "failed"
HV_MIGRATION_CANCELLED = "cancelled"
HV_MIGRATION_VALID_STATUSES = frozenset([
    HV_MIGRATION_COMPLETED, HV_MIGRATION_ACTIVE, HV_MIGRATION_FAILED,
    HV_MIGRATION_CANCELLED])
HV_MIGRATION_FAILED_STATUSES = frozenset([HV_MIGRATION_FAILED,
                                          HV_MIGRATION_CANCELLED])
# Storage unit fields (storage_list), as Ganeti's
SF_NODE = "node"
SF_TYPE = "type"
SF_NAME = "name"
SF_SIZE = "size"
SF_USED = "used"
SF_FREE = "free"
SF_ALLOCATABLE = "allocatable"
VALID_STORAGE_FIELDS = frozenset([SF_NODE, SF_TYPE, SF_NAME, SF_SIZE, SF_USED,
                                  SF_FREE, SF_ALLOCATABLE])
# Ganeti's optional OS files: the untrusted create script and os_version
OS_SCRIPT_CREATE_UNTRUSTED = "create_untrusted"
OS_VERSION_FILE = "os_version"
# OS status in os_diagnose (valid or not), as Ganeti's
OS_VALID_STATUS = "valid"
# Seconds an OS script may run (create/import can copy whole disks)
OS_SCRIPT_TIMEOUT = 24 * 3600
OS_VERIFY_TIMEOUT = 300
# Lines of an OS script's log quoted in an error
OS_LOG_TAIL_LINES = 20
# Debug levels for OS scripts (DEBUG_LEVEL)
OS_DEBUG_LEVELS = frozenset([0, 1])
# Backend types of disks in the OS environment (DISK_%d_BACKEND_TYPE)
DISK_BACKEND_BLOCK = "block"
# How long instance_shutdown waits between soft stop attempts, in seconds
HV_SOFT_STOP_POLL = 0.1
# Separator between instance name and disk index in disk link names
DISK_SEPARATOR = ":"
# PATH given to OS scripts, whose environment is otherwise cleaned (Ganeti's)
OS_SCRIPT_PATH = "/sbin:/bin:/usr/sbin:/usr/bin"

# --- Cluster verification error codes (cluster lifecycle, issue 6) ----------
# Each is (domain, code, description); the codes and domains are Ganeti's.
CV_TCLUSTER = "cluster"
CV_TGROUP = "group"
CV_TNODE = "node"
CV_TINSTANCE = "instance"
CV_ECLUSTERCFG = (CV_TCLUSTER, "ECLUSTERCFG", "Cluster configuration verification failure")
CV_ECLUSTERCERT = (CV_TCLUSTER, "ECLUSTERCERT", "Cluster certificate files verification failure")
CV_ECLUSTERCLIENTCERT = (CV_TCLUSTER, "ECLUSTERCLIENTCERT",
                         "Cluster client certificate files verification failure")
CV_ECLUSTERFILECHECK = (CV_TCLUSTER, "ECLUSTERFILECHECK",
                        "Cluster configuration verification failure")
CV_ECLUSTERDANGLINGNODES = (CV_TNODE, "ECLUSTERDANGLINGNODES",
                            "Some nodes belong to non-existing groups")
CV_ECLUSTERDANGLINGINST = (CV_TNODE, "ECLUSTERDANGLINGINST",
                           "Some instances have a non-existing primary node")
CV_EGROUPDIFFERENTPVSIZE = (CV_TGROUP, "EGROUPDIFFERENTPVSIZE", "PVs in the group have"
                            " different sizes")
CV_EINSTANCEBADNODE = (CV_TINSTANCE, "EINSTANCEBADNODE",
                       "Instance marked as running lives on an offline node")
CV_EINSTANCEDOWN = (CV_TINSTANCE, "EINSTANCEDOWN", "Instance not running on its primary node")
CV_EINSTANCELAYOUT = (CV_TINSTANCE, "EINSTANCELAYOUT", "Instance has multiple secondary nodes")
CV_EINSTANCEMISSINGDISK = (CV_TINSTANCE, "EINSTANCEMISSINGDISK", "Missing volume on an instance")
CV_EINSTANCEFAULTYDISK = (CV_TINSTANCE, "EINSTANCEFAULTYDISK", "Impossible to retrieve status"
                          " for a disk")
CV_EINSTANCEWRONGNODE = (CV_TINSTANCE, "EINSTANCEWRONGNODE", "Instance running on the wrong node")
CV_EINSTANCESPLITGROUPS = (CV_TINSTANCE, "EINSTANCESPLITGROUPS",
                           "Instance with primary and secondary nodes in different groups")
CV_EINSTANCEPOLICY = (CV_TINSTANCE, "EINSTANCEPOLICY", "Instance does not meet policy")
CV_EINSTANCEUNSUITABLENODE = (CV_TINSTANCE, "EINSTANCEUNSUITABLENODE",
                              "Instance running on nodes that are not suitable for it")
CV_EINSTANCEMISSINGCFGPARAMETER = (CV_TINSTANCE, "EINSTANCEMISSINGCFGPARAMETER",
                                   "A configuration parameter for an instance is missing")
CV_ENODEDRBD = (CV_TNODE, "ENODEDRBD", "Error parsing the DRBD status file")
CV_ENODEDRBDVERSION = (CV_TNODE, "ENODEDRBDVERSION", "DRBD version mismatch within a node group")
CV_ENODEDRBDHELPER = (CV_TNODE, "ENODEDRBDHELPER", "Error caused by the DRBD helper")
CV_ENODEFILECHECK = (CV_TNODE, "ENODEFILECHECK",
                     "Error retrieving the checksum of the node files")
CV_ENODEHOOKS = (CV_TNODE, "ENODEHOOKS", "Communication failure in hooks execution")
CV_ENODEHV = (CV_TNODE, "ENODEHV", "Hypervisor parameters verification failure")
CV_ENODELVM = (CV_TNODE, "ENODELVM", "LVM-related node error")
CV_ENODEN1 = (CV_TNODE, "ENODEN1", "Not enough memory to accommodate instance failovers")
CV_ENODENET = (CV_TNODE, "ENODENET", "Network-related node error")
CV_ENODEOS = (CV_TNODE, "ENODEOS", "OS-related node error")
CV_ENODEORPHANINSTANCE = (CV_TNODE, "ENODEORPHANINSTANCE", "Unknown intance running on a node")
CV_ENODEORPHANLV = (CV_TNODE, "ENODEORPHANLV", "Unknown LVM logical volume")
CV_ENODERPC = (CV_TNODE, "ENODERPC", "Error during connection to the primary node of an"
               " instance")
CV_ENODESSH = (CV_TNODE, "ENODESSH", "SSH-related node error")
CV_ENODEVERSION = (CV_TNODE, "ENODEVERSION", "Protocol version mismatch or Ganeti version"
                   " mismatch")
CV_ENODESETUP = (CV_TNODE, "ENODESETUP", "Node setup error")
CV_ENODETIME = (CV_TNODE, "ENODETIME", "Node returned invalid time")
CV_ENODEOOBPATH = (CV_TNODE, "ENODEOOBPATH", "Invalid Out Of Band path")
CV_ENODEUSERSCRIPTS = (CV_TNODE, "ENODEUSERSCRIPTS", "User scripts not present or not"
                       " executable")
CV_ENODEFILESTORAGEPATHS = (CV_TNODE, "ENODEFILESTORAGEPATHS",
                            "Detected bad file storage paths")
CV_ENODEFILESTORAGEPATHUNUSABLE = (CV_TNODE, "ENODEFILESTORAGEPATHUNUSABLE",
                                   "File storage path unusable")
#: Our extension (NV_FILEPERMS); Ganeti has no such code
CV_ENODEFILEPERMS = (CV_TNODE, "ENODEFILEPERMS",
                     "Wrong owner, group or mode of a file the daemons use")
#: Our extension (NV_FILESTORAGELIST); Ganeti has only ENODEORPHANLV
CV_ENODEORPHANFILE = (CV_TNODE, "ENODEORPHANFILE",
                      "Unknown file or directory in a file storage directory")
#: Our extension: Ganeti does not check that a NIC's network is connected
#: to the node group of the instance's primary node
CV_EINSTANCENETWORK = (CV_TINSTANCE, "EINSTANCENETWORK",
                       "Instance NIC on a network not connected to its node group")
CV_ALL_ECODES = frozenset([
    CV_ECLUSTERCFG, CV_ECLUSTERCERT, CV_ECLUSTERCLIENTCERT, CV_ECLUSTERFILECHECK,
    CV_ECLUSTERDANGLINGNODES, CV_ECLUSTERDANGLINGINST, CV_EGROUPDIFFERENTPVSIZE,
    CV_EINSTANCEBADNODE, CV_EINSTANCEDOWN, CV_EINSTANCELAYOUT, CV_EINSTANCEMISSINGDISK,
    CV_EINSTANCEFAULTYDISK, CV_EINSTANCEWRONGNODE, CV_EINSTANCESPLITGROUPS,
    CV_EINSTANCEPOLICY, CV_EINSTANCEUNSUITABLENODE, CV_EINSTANCEMISSINGCFGPARAMETER,
    CV_ENODEDRBD, CV_ENODEDRBDVERSION, CV_ENODEDRBDHELPER, CV_ENODEFILECHECK,
    CV_ENODEHOOKS, CV_ENODEHV, CV_ENODELVM, CV_ENODEN1, CV_ENODENET, CV_ENODEOS,
    CV_ENODEORPHANINSTANCE, CV_ENODEORPHANLV, CV_ENODERPC, CV_ENODESSH,
    CV_ENODEVERSION, CV_ENODESETUP, CV_ENODETIME, CV_ENODEOOBPATH,
    CV_ENODEUSERSCRIPTS, CV_ENODEFILESTORAGEPATHS, CV_ENODEFILESTORAGEPATHUNUSABLE,
    CV_ENODEFILEPERMS, CV_ENODEORPHANFILE, CV_EINSTANCENETWORK,
])
CV_ALL_ECODES_STRINGS = frozenset(code for (_, code, _) in CV_ALL_ECODES)
# Daemon control (daemon-util): seconds to wait for a daemon to start or stop
DAEMON_START_TIMEOUT = 60.0
DAEMON_STOP_TIMEOUT = 30.0
# --- end of the cluster lifecycle block ----------------------------------------
# --- Hooks, tags, OS and instance queries (issue 7, master side) --------------------
#: PATH given to hook scripts (the rest of their environment is cleared)
HOOKS_PATH = "/sbin:/bin:/usr/sbin:/usr/bin"
#: Seconds a single hook script may run before it is killed (our limit)
HOOKS_SCRIPT_TIMEOUT = 300
#: Hooks object types (GANETI_OBJECT_TYPE)
HTYPE_CLUSTER = "CLUSTER"
HTYPE_NODE = "NODE"
HTYPE_GROUP = "GROUP"
HTYPE_INSTANCE = "INSTANCE"
HTYPE_NETWORK = "NETWORK"
#: Script names hooks run (as run-parts)
HOOKS_SCRIPT_NAME_RE = r"^[a-zA-Z0-9_-]+$"
# --- end of the hooks, tags, OS and instance queries block --------------------------
# --- Import/export daemon (ganeti-impexpd, see ganeti.impexpd) --------------------
#: The program the node daemon starts for each disk transfer
IMPEXPD = "ganeti-impexpd"
#: Modes of the import/export daemon
IEM_IMPORT = "import"
IEM_EXPORT = "export"
IEM_ALL = frozenset([IEM_IMPORT, IEM_EXPORT])
#: Data ends of import_start/export_start: a file under the export
#: directory, an instance disk, an OS import/export script
IEIO_FILE = "file"
IEIO_RAW_DISK = "raw"
IEIO_SCRIPT = "script"
IEIO_ALL = frozenset([IEIO_FILE, IEIO_RAW_DISK, IEIO_SCRIPT])
#: Compression tools the daemon knows (IEC_NONE: no compression)
IEC_GZIP = "gzip"
IEC_GZIP_FAST = "gzip-fast"
IEC_GZIP_SLOW = "gzip-slow"
IEC_LZOP = "lzop"
IEC_ALL = frozenset([IEC_NONE, IEC_GZIP, IEC_GZIP_FAST, IEC_GZIP_SLOW, IEC_LZOP])
#: What a transfer's magic string may look like (Ganeti's)
IE_MAGIC_RE = r"^[-_.a-zA-Z0-9]{5,100}$"
#: Seconds an importer waits for its exporter's connection (and an exporter
#: tries to connect) unless told otherwise
IE_CONNECT_TIMEOUT = 60
# --- end of the import/export daemon block -------------------------------------------
