"""gnt-cluster: cluster administration.

Commands and options are Ganeti's (see gnt-cluster(8)); ``init`` also
takes ``--node-ip``, ``--noded-port``, ``--confd-port`` and ``--master-ip``
for virtual clusters, and ``modify`` takes ``--hidden-os`` and
``--blacklisted-os`` (``add:OS,remove:OS``). ``command`` and ``copyfile``
reach the nodes over SSH as root, as Ganeti's do (:mod:`ganeti.ssh`; in a
virtual cluster, locally in each node's environment); they exit non-zero
when a command failed or a copy did not succeed on some node (Ganeti's
always exit 0). ``init``, ``destroy``'s last step, ``master-failover`` and
``renew-crypto`` run on the master node itself (they read the
configuration or ssconf of the node they run on).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

from ganeti import cli, constants, errors, opcodes, pathutils, utils
from ganeti.cli import ToStderr, ToStdout, cli_option
from ganeti.cli import ipolicy as cli_ipolicy
from ganeti.cli import tags
from ganeti.client import (cluster_admin, cluster_crypto, node_power, rapi_user,
                           state_options)

# --- Value parsers -------------------------------------------------------------------


def _Fail(msg: str) -> argparse.ArgumentTypeError:
    return argparse.ArgumentTypeError(msg)


def ParseKeyVal(text: str) -> dict[str, Any]:
    """Parse "key=value,no_flag,-reset" into a dict (Ganeti's -B/-N syntax)."""
    result: dict[str, Any] = {}
    if not text:
        return result
    for item in utils.UnescapeAndSplit(text, sep=","):
        if not item:
            continue
        value: Any
        if "=" in item:
            key, value = item.split("=", 1)
        elif item.startswith("no_"):
            key, value = item[3:], False
        elif item.startswith("-"):
            key, value = item[1:], constants.VALUE_DEFAULT
        else:
            key, value = item, True
        if not key:
            raise _Fail(f"invalid parameter '{item}': missing name")
        if key in result:
            raise _Fail(f"parameter '{key}' given more than once")
        result[key] = value
    return result


def ParseIdentKeyVal(text: str) -> tuple[str, dict[str, Any]]:
    """Parse "ident:key=value,..." (-H, -D)."""
    ident, _, rest = text.partition(":")
    if not ident:
        raise _Fail(f"invalid value '{text}': expected NAME:key=value,...")
    return ident, ParseKeyVal(rest)


def ParseUidPool(text: str) -> list[tuple[int, int]]:
    """Parse "1000-2000,3000" into [(1000, 2000), (3000, 3000)]
    (:func:`ganeti.uidpool.ParseUidPool`); "" is the empty pool."""
    from ganeti import uidpool
    try:
        return uidpool.ParseUidPool(text, separator=",")
    except errors.OpPrereqError as err:
        raise _Fail(str(err.args[0])) from None


def ParseYesNo(text: str) -> bool:
    """Parse yes/no."""
    if text.lower() in ("yes", "true"):
        return True
    if text.lower() in ("no", "false"):
        return False
    raise _Fail(f"invalid value '{text}': expected yes or no")


def ParseList(text: str) -> list[str]:
    """Parse a comma-separated list."""
    return [item for item in text.split(",") if item]


def ParseOsMods(text: str) -> list[list[str]]:
    """Parse "add:os1,remove:os2" into [["add", "os1"], ["remove", "os2"]]."""
    result = []
    for item in ParseList(text):
        action, _, name = item.partition(":")
        if action not in (constants.DDM_ADD, constants.DDM_REMOVE) or not name:
            raise _Fail(f"invalid OS list change '{item}': expected add:NAME or"
                        " remove:NAME")
        result.append([action, name])
    return result


def _CollectorPairs(text: str, what: str) -> list[tuple[str, str]]:
    pairs = []
    for item in ParseList(text):
        name, sep, value = item.partition("=")
        if not sep or not name or not value:
            raise _Fail(f"invalid {what} '{item}': expected NAME=VALUE")
        if name not in constants.DATA_COLLECTOR_NAMES:
            raise _Fail(f"unknown data collector '{name}' (known:"
                        f" {', '.join(sorted(constants.DATA_COLLECTOR_NAMES))})")
        pairs.append((name, value))
    if not pairs:
        raise _Fail(f"no {what} given")
    return pairs


def ParseDataCollectors(text: str) -> dict[str, bool]:
    """Parse "cpu-avg-load=true,lv=false" (``--enabled-data-collectors``)."""
    return {name: ParseYesNo(value)
            for name, value in _CollectorPairs(text, "data collector setting")}


def ParseDataCollectorIntervals(text: str) -> dict[str, int]:
    """Parse "cpu-avg-load=5,lv=1.5" (seconds) into microseconds, as Ganeti
    stores them (``--data-collector-interval``)."""
    result = {}
    for name, value in _CollectorPairs(text, "data collector interval"):
        try:
            seconds = float(value)
        except ValueError:
            raise _Fail(f"invalid interval '{value}' for {name}: expected a"
                        " number of seconds") from None
        if not seconds > 0:
            raise _Fail(f"invalid interval '{value}' for {name}: must be positive")
        result[name] = int(seconds * 1000000)
    return result


def _Port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise _Fail(f"invalid port '{text}'") from None
    if not 0 < port < 65536:
        raise _Fail(f"invalid port '{text}': must be 1-65535")
    return port


def _NonNegative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise _Fail(f"invalid number '{text}'") from None
    if value < 0:
        raise _Fail(f"invalid number '{text}': must not be negative")
    return value


def _Positive(text: str) -> int:
    value = _NonNegative(text)
    if value == 0:
        raise _Fail(f"invalid number '{text}': must be positive")
    return value


# --- Options ----------------------------------------------------------------------------

HVOPTS_OPT = cli_option("-H", "--hypervisor-parameters", dest="hvparams", default=[],
                        action="append", type=ParseIdentKeyVal,
                        metavar="HYPERVISOR:KEY=VAL,...",
                        help="Hypervisor parameters")
BACKEND_OPT = cli_option("-B", "--backend-parameters", dest="beparams", default=None,
                         type=ParseKeyVal, metavar="KEY=VAL,...",
                         help="Backend parameters")
NIC_PARAMS_OPT = cli_option("-N", "--nic-parameters", dest="nicparams", default=None,
                            type=ParseKeyVal, metavar="KEY=VAL,...",
                            help="NIC parameters")
DISK_PARAMS_OPT = cli_option("-D", "--disk-parameters", dest="diskparams", default=[],
                             action="append", type=ParseIdentKeyVal,
                             metavar="TEMPLATE:KEY=VAL,...", help="Disk parameters")
NODE_PARAMS_OPT = cli_option("--node-parameters", dest="ndparams", default=None,
                             type=ParseKeyVal, metavar="KEY=VAL,...",
                             help="Node parameters")
VG_NAME_OPT = cli_option("--vg-name", dest="vg_name", default=None,
                         help="Volume group name (empty to disable LVM)")
ENABLED_HV_OPT = cli_option("--enabled-hypervisors", dest="enabled_hypervisors",
                            default=None, type=ParseList, metavar="HV,...",
                            help="Comma-separated list of hypervisors")
ENABLED_DT_OPT = cli_option("--enabled-disk-templates", dest="enabled_disk_templates",
                            default=None, type=ParseList, metavar="TEMPLATE,...",
                            help="Comma-separated list of disk templates")
FILESTORE_DIR_OPT = cli_option("--file-storage-dir", dest="file_storage_dir",
                               default=None, help="Directory for file-based disks")
SHARED_FILESTORE_DIR_OPT = cli_option("--shared-file-storage-dir",
                                      dest="shared_file_storage_dir", default=None,
                                      help="Directory for shared-file disks")
GLUSTER_DIR_OPT = cli_option("--gluster-storage-dir", dest="gluster_storage_dir",
                             default=None, help="Gluster mount point")
MAC_PREFIX_OPT = cli_option("-m", "--mac-prefix", dest="mac_prefix", default=None,
                            help="MAC address prefix (three hex octets)")
MASTER_NETDEV_OPT = cli_option("--master-netdev", dest="master_netdev", default=None,
                               help="Network device carrying the master IP")
MASTER_NETMASK_OPT = cli_option("--master-netmask", dest="master_netmask",
                                default=None, type=_NonNegative,
                                help="Prefix length of the master IP")
UIDPOOL_OPT = cli_option("--uid-pool", dest="uid_pool", default=None,
                         type=ParseUidPool, metavar="UIDS",
                         help="User-id pool: comma-separated user-ids and ranges,"
                              " e.g. 4000-4999,5500 (empty: no pool)")
ADD_UIDS_OPT = cli_option("--add-uids", dest="add_uids", default=None,
                          type=ParseUidPool, metavar="UIDS",
                          help="User-ids and ranges to add to the pool")
REMOVE_UIDS_OPT = cli_option("--remove-uids", dest="remove_uids", default=None,
                             type=ParseUidPool, metavar="UIDS",
                             help="User-ids and ranges to remove from the pool")
CP_SIZE_OPT = cli_option("-C", "--candidate-pool-size", dest="candidate_pool_size",
                         default=None, type=_Positive,
                         help="Wanted number of master candidates")
MAINTAIN_NODE_HEALTH_OPT = cli_option("--maintain-node-health", dest="maintain_node_health",
                                      default=None, type=ParseYesNo, metavar="yes|no",
                                      help="Maintain node health")
PREALLOC_WIPE_OPT = cli_option("--prealloc-wipe-disks", dest="prealloc_wipe_disks",
                               default=None, type=ParseYesNo, metavar="yes|no",
                               help="Wipe disks before use")
EXT_MIP_OPT = cli_option("--use-external-mip-script", dest="use_external_mip_script",
                         default=None, type=ParseYesNo, metavar="yes|no",
                         help="Use a site script for the master IP")
USER_SHUTDOWN_OPT = cli_option("--user-shutdown", dest="enabled_user_shutdown",
                               default=None, type=ParseYesNo, metavar="yes|no",
                               help="Allow shutdown from inside instances")
IALLOCATOR_OPT = cli_option("-I", "--default-iallocator", dest="default_iallocator",
                            default=None, help="Default instance allocator")
IALLOCATOR_PARAMS_OPT = cli_option("--default-iallocator-params",
                                   dest="default_iallocator_params", default=None,
                                   type=ParseKeyVal, metavar="KEY=VAL,...",
                                   help="Parameters (options) of the default allocator")
DRBD_HELPER_OPT = cli_option("--drbd-usermode-helper", dest="drbd_helper",
                             default=None, help="DRBD usermode helper")
COMPRESSION_OPT = cli_option("--compression-tools", dest="compression_tools",
                             default=None, type=ParseList, help="Compression tools")
INSTALL_IMAGE_OPT = cli_option("--install-image", dest="install_image", default=None,
                               help="Install image")
ZEROING_IMAGE_OPT = cli_option("--zeroing-image", dest="zeroing_image", default=None,
                               help="Zeroing image")
NODE_LIST_OPT = cli_option("-n", "--node", dest="nodes", default=[], action="append",
                           help="Node to run on (repeat for more; default: all)")
FAILURE_ONLY_OPT = cli_option("--failure-only", dest="failure_only", default=False,
                              action="store_true",
                              help="Show only the output of commands that failed")
USE_REPL_NET_OPT = cli_option("--use-replication-network", dest="use_replication_network",
                              default=False, action="store_true",
                              help="Copy over the replication network (the nodes'"
                              " secondary IPs)")
NOVOTING_OPT = cli_option("--no-voting", dest="no_voting", default=False,
                          action="store_true",
                          help="Skip the node agreement check (dangerous)")
IGNORE_OFFLINE_OPT = cli_option(
    "--ignore-offline-nodes", dest="ignore_offline_nodes", default=False,
    action="store_true", help="Leave the offline nodes out of the master vote")
ERROR_CODES_OPT = cli_option("--error-codes", dest="error_codes", default=False,
                             action="store_true",
                             help="Print errors in a machine-parseable form")
IGNORE_ERRORS_OPT = cli_option("-I", "--ignore-errors", dest="ignore_errors", default=[],
                               action="append", metavar="ERROR_CODE",
                               help="Report this error code as a warning")
NONPLUS1_OPT = cli_option("--no-nplus1-mem", dest="skip_nplusone_mem",
                          default=False, action="store_true",
                          help="Skip the N+1 memory redundancy check")
NO_HVPARAM_ASSESS_OPT = cli_option(
    "--no-hv-param-assessment", dest="skip_hvparam_assessment", default=False,
    action="store_true", help="Skip the assessment of the cluster's hypervisor"
    " parameters")
VERIFY_CLUTTER_OPT = cli_option(
    "--verify-ssh-clutter", dest="verify_clutter", default=False, action="store_true",
    help="Also look for unexpected keys in the nodes' authorized_keys files")
SIMULATE_OPT = cli_option("--debug-simulate-errors", dest="simulate_errors",
                          default=False, action="store_true",
                          help="Pretend errors were found (for testing)")
NO_STRICT_OPT = cli_option("--no-strict", dest="no_strict", default=False,
                           action="store_true",
                           help="Skip nodes busy with other jobs (best effort)")

INIT_OPTS = [
    HVOPTS_OPT, BACKEND_OPT, NIC_PARAMS_OPT, DISK_PARAMS_OPT, NODE_PARAMS_OPT,
    VG_NAME_OPT, ENABLED_HV_OPT, ENABLED_DT_OPT, FILESTORE_DIR_OPT,
    SHARED_FILESTORE_DIR_OPT, GLUSTER_DIR_OPT, MAC_PREFIX_OPT, MASTER_NETDEV_OPT,
    MASTER_NETMASK_OPT, UIDPOOL_OPT, CP_SIZE_OPT, MAINTAIN_NODE_HEALTH_OPT,
    PREALLOC_WIPE_OPT, EXT_MIP_OPT, USER_SHUTDOWN_OPT, IALLOCATOR_OPT,
    IALLOCATOR_PARAMS_OPT, DRBD_HELPER_OPT, COMPRESSION_OPT, INSTALL_IMAGE_OPT,
    ZEROING_IMAGE_OPT, *cli_ipolicy.ALL_IPOLICY_OPTS,
    state_options.HV_STATE_OPT, state_options.DISK_STATE_OPT,
    cli_option("-s", "--secondary-ip", dest="secondary_ip", default=None,
               help="Secondary IP of the master node"),
    cli_option("--no-etc-hosts", dest="modify_etc_hosts", default=True,
               action="store_false", help="Don't modify /etc/hosts"),
    cli_option("--no-ssh-init", dest="modify_ssh_setup", default=True,
               action="store_false", help="Don't set up SSH keys"),
    cli_option("--primary-ip-version", dest="primary_ip_version", default=4,
               type=int, choices=[4, 6], help="IP version of the primary IPs"),
    cli_option("--master-ip", dest="master_ip", default=None,
               help="Master IP (default: the cluster name's address)"),
    cli_option("--node-ip", dest="node_ip", default=None,
               help="This node's primary IP (default: its name's address)"),
    cli_option("--noded-port", dest="noded_port", default=None, type=_Port,
               help="Port of this node's node daemon"),
    cli_option("--confd-port", dest="confd_port", default=None, type=_Port,
               help="Port of this node's confd"),
    cluster_crypto.SSH_KEY_TYPE_OPT, cluster_crypto.SSH_KEY_BITS_OPT,
]

MODIFY_OPTS = [
    HVOPTS_OPT, BACKEND_OPT, NIC_PARAMS_OPT, DISK_PARAMS_OPT, NODE_PARAMS_OPT,
    VG_NAME_OPT, ENABLED_HV_OPT, ENABLED_DT_OPT, FILESTORE_DIR_OPT,
    SHARED_FILESTORE_DIR_OPT, GLUSTER_DIR_OPT, MAC_PREFIX_OPT, MASTER_NETDEV_OPT,
    MASTER_NETMASK_OPT, UIDPOOL_OPT, ADD_UIDS_OPT, REMOVE_UIDS_OPT, CP_SIZE_OPT,
    MAINTAIN_NODE_HEALTH_OPT, PREALLOC_WIPE_OPT, EXT_MIP_OPT, USER_SHUTDOWN_OPT,
    IALLOCATOR_OPT, IALLOCATOR_PARAMS_OPT, DRBD_HELPER_OPT, COMPRESSION_OPT,
    INSTALL_IMAGE_OPT, ZEROING_IMAGE_OPT, cli.FORCE_OPT, cli.DRY_RUN_OPT, cli.PRIORITY_OPT,
    *cli.SUBMIT_OPTS,
    cli_option("--max-running-jobs", dest="max_running_jobs", default=None,
               type=_Positive, help="Most jobs running at once"),
    cli_option("--max-tracked-jobs", dest="max_tracked_jobs", default=None,
               type=_Positive, help="Most jobs tracked"),
    cli_option("--reserved-lvs", dest="reserved_lvs", default=None, type=ParseList,
               help="Logical volumes cluster verify ignores"),
    cli_option("--modify-etc-hosts", dest="modify_etc_hosts", default=None,
               type=ParseYesNo, metavar="yes|no", help="Keep /etc/hosts up to date"),
    cli_option("--instance-communication-network",
               dest="instance_communication_network", default=None,
               help="Instance communication network"),
    cli_option("--hidden-os", dest="hidden_os", default=None, type=ParseOsMods,
               metavar="add:OS,remove:OS", help="Change the hidden OS list"),
    cli_option("--blacklisted-os", dest="blacklisted_os", default=None,
               type=ParseOsMods, metavar="add:OS,remove:OS",
               help="Change the blacklisted OS list"),
    *cli_ipolicy.IPOLICY_OPTS,
    state_options.HV_STATE_OPT, state_options.DISK_STATE_OPT,
    cli_option("--enabled-data-collectors", dest="enabled_data_collectors",
               default=None, type=ParseDataCollectors, metavar="NAME=BOOL,...",
               help="Turn data collectors of ganeti-mond on or off"),
    cli_option("--data-collector-interval", dest="data_collector_interval",
               default=None, type=ParseDataCollectorIntervals,
               metavar="NAME=SECONDS,...",
               help="How often ganeti-mond runs each data collector"),
]


def _Dict(pairs: list[tuple[str, dict[str, Any]]], what: str) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for ident, params in pairs or []:
        if ident in result:
            raise errors.OpPrereqError(f"{what} '{ident}' given more than once",
                                       errors.ECODE_INVAL)
        result[ident] = params
    return result


# --- init / destroy -------------------------------------------------------------------

def InitCluster(opts: Any, args: list[str]) -> int:
    """Initialise the cluster (on the future master node)."""
    from ganeti.bootstrap import cluster as bootstrap
    kwargs: dict[str, Any] = {}
    for name in ("mac_prefix", "master_netdev", "master_netmask", "master_ip",
                 "file_storage_dir", "shared_file_storage_dir", "gluster_storage_dir",
                 "candidate_pool_size", "secondary_ip", "vg_name", "beparams",
                 "nicparams", "ndparams", "enabled_hypervisors",
                 "enabled_disk_templates", "drbd_helper", "uid_pool",
                 "default_iallocator", "default_iallocator_params",
                 "maintain_node_health", "prealloc_wipe_disks", "use_external_mip_script",
                 "install_image", "zeroing_image",
                 "compression_tools", "enabled_user_shutdown", "node_ip",
                 "noded_port", "confd_port", "ssh_key_type", "ssh_key_bits"):
        value = getattr(opts, name)
        if value is not None:
            kwargs[name] = value
    kwargs["hvparams"] = _Dict(opts.hvparams, "Hypervisor")
    kwargs["diskparams"] = _Dict(opts.diskparams, "Disk template")
    kwargs["ipolicy"] = cli_ipolicy.CreateIPolicyFromOpts(opts, fill_all=True)
    kwargs["hv_state"] = state_options.HvStateFromOpts(opts.hv_state)
    kwargs["disk_state"] = state_options.DiskStateFromOpts(opts.disk_state)
    bootstrap.InitCluster(args[0], modify_etc_hosts=opts.modify_etc_hosts,
                          modify_ssh_setup=opts.modify_ssh_setup,
                          primary_ip_version=opts.primary_ip_version,
                          feedback_fn=lambda msg: ToStdout("%s", msg), **kwargs)
    return constants.EXIT_SUCCESS


def DestroyCluster(opts: Any, args: list[str]) -> int:
    """Destroy the cluster (the master must be its only node)."""
    if not opts.yes_do_it:
        ToStderr("Destroying a cluster is irreversible. If you really want to"
                 " destroy this cluster, supply the --yes-do-it option.")
        return constants.EXIT_FAILURE
    from ganeti.bootstrap import cluster as bootstrap
    master_uuid = cli.SubmitOpCode(opcodes.OpClusterDestroy(), opts=opts)
    bootstrap.FinalizeClusterDestroy(master_uuid,
                                     feedback_fn=lambda msg: ToStdout("%s", msg))
    return constants.EXIT_SUCCESS


# --- info, getmaster, version -----------------------------------------------------------

def _FormatTime(value: Any) -> str:
    if not value:
        return "N/A"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(value)))


def _Value(value: Any) -> str:
    if value is None or value == "":
        return "" if value == "" else "default (None)"
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value) if value else "(none)"
    return str(value)


def FormatInfo(items: list[tuple[str, Any]], indent: int = 0) -> list[str]:
    """Lines of nested (key, value) pairs / dicts, Ganeti's "info" layout."""
    lines: list[str] = []
    pad = " " * indent
    for key, value in items:
        if isinstance(value, dict):
            lines.append(f"{pad}{key}:")
            lines.extend(FormatInfo(sorted(value.items()), indent + 2))
        elif isinstance(value, list) and value and all(
                isinstance(v, tuple) and len(v) == 2 for v in value):
            lines.append(f"{pad}{key}:")
            lines.extend(FormatInfo(value, indent + 2))
        else:
            lines.append(f"{pad}{key}: {_Value(value)}")
    return lines


def ClusterInfoItems(info: dict[str, Any]) -> list[tuple[str, Any]]:
    """The "gnt-cluster info" items from QueryClusterInfo's answer."""
    arch = info.get("architecture") or ("", "")
    uid_pool = info.get("uid_pool") or []
    from ganeti.uidpool import FormatUidPool
    return [
        ("Cluster name", info["name"]),
        ("Cluster UUID", info.get("uuid")),
        ("Creation time", _FormatTime(info.get("ctime"))),
        ("Modification time", _FormatTime(info.get("mtime"))),
        ("Master node", info["master"]),
        ("Architecture (this node)", f"{arch[0]} ({arch[1]})"),
        ("Tags", ", ".join(info.get("tags") or []) or "(none)"),
        ("Default hypervisor", info.get("default_hypervisor")),
        ("Enabled hypervisors", ", ".join(info.get("enabled_hypervisors") or [])),
        ("Hypervisor parameters", info.get("hvparams") or {}),
        ("OS-specific hypervisor parameters", info.get("os_hvp") or {}),
        ("OS parameters", info.get("osparams") or {}),
        ("Hidden OSes", ", ".join(info.get("hidden_os") or [])),
        ("Blacklisted OSes", ", ".join(info.get("blacklisted_os") or [])),
        ("Cluster parameters", [
            ("candidate pool size", info.get("candidate_pool_size")),
            ("maximal number of jobs running simultaneously",
             info.get("max_running_jobs")),
            ("maximal number of jobs simultaneously tracked by the scheduler",
             info.get("max_tracked_jobs")),
            ("mac prefix", info.get("mac_prefix")),
            ("master netdev", info.get("master_netdev")),
            ("master netmask", info.get("master_netmask")),
            ("use external master IP address setup script",
             info.get("use_external_mip_script")),
            ("lvm volume group", info.get("volume_group_name")),
            ("lvm reserved volumes", info.get("reserved_lvs") or []),
            ("drbd usermode helper", info.get("drbd_usermode_helper")),
            ("file storage path", info.get("file_storage_dir")),
            ("shared file storage path", info.get("shared_file_storage_dir")),
            ("gluster storage path", info.get("gluster_storage_dir")),
            ("maintenance of node health", info.get("maintain_node_health")),
            ("uid pool", FormatUidPool(uid_pool, ", ")),
            ("default instance allocator", info.get("default_iallocator")),
            ("default instance allocator parameters",
             info.get("default_iallocator_params") or {}),
            ("primary ip version", info.get("primary_ip_version")),
            ("preallocation wipe disks", info.get("prealloc_wipe_disks")),
            ("OS search path", ", ".join(pathutils.OS_SEARCH_PATH)),
            ("enabled disk templates",
             ", ".join(info.get("enabled_disk_templates") or [])),
            ("install image", info.get("install_image")),
            ("instance communication network",
             info.get("instance_communication_network")),
            ("zeroing image", info.get("zeroing_image")),
            ("compression tools", info.get("compression_tools") or []),
            ("enabled user shutdown", info.get("enabled_user_shutdown")),
        ]),
        ("Default node parameters", info.get("ndparams") or {}),
        ("Default instance parameters", info.get("beparams") or {}),
        ("Default nic parameters", info.get("nicparams") or {}),
        ("Default disk parameters", info.get("diskparams") or {}),
        ("Instance policy - limits for instances", info.get("ipolicy") or {}),
        ("Hypervisor state", info.get("hv_state") or "(none)"),
        ("Disk state", info.get("disk_state") or "(none)"),
    ]


def ShowClusterConfig(opts: Any, args: list[str]) -> int:
    """Print the cluster's configuration."""
    client = cli.GetClient()
    info = client.QueryClusterInfo()
    info["hv_state"], info["disk_state"] = client.QueryConfigValues(
        ["hv_state", "disk_state"])
    for line in FormatInfo(ClusterInfoItems(info)):
        ToStdout("%s", line)
    return constants.EXIT_SUCCESS


def ShowClusterMaster(opts: Any, args: list[str]) -> int:
    """Print the master node's name.

    Read from this node's ssconf, as Ganeti does, so that it works on every
    node, not only where the master daemon runs.
    """
    from ganeti.bootstrap import cluster as bootstrap
    ToStdout("%s", bootstrap.GetMaster())
    return constants.EXIT_SUCCESS


def ShowClusterVersion(opts: Any, args: list[str]) -> int:
    """Print the software and protocol versions."""
    info = cli.GetClient().QueryClusterInfo()
    ToStdout("Software version: %s", info["software_version"])
    ToStdout("Internode protocol: %s", info["protocol_version"])
    ToStdout("Configuration format: %s", info["config_version"])
    ToStdout("OS api version: %s", info["os_api_version"])
    ToStdout("Export interface: %s", info["export_version"])
    ToStdout("VCS version: %s", info["vcs_version"])
    return constants.EXIT_SUCCESS


# --- modify, redist-conf ---------------------------------------------------------------

def SetClusterParams(opts: Any, args: list[str]) -> int:
    """Change cluster parameters."""
    ipolicy = cli_ipolicy.CreateIPolicyFromOpts(opts)
    kwargs: dict[str, Any] = {}
    for name in ("vg_name", "enabled_hypervisors", "beparams", "nicparams", "ndparams",
                 "candidate_pool_size", "max_running_jobs", "max_tracked_jobs",
                 "uid_pool", "add_uids", "remove_uids", "maintain_node_health",
                 "prealloc_wipe_disks", "drbd_helper", "default_iallocator",
                 "default_iallocator_params", "mac_prefix", "master_netdev",
                 "master_netmask", "reserved_lvs",
                 "hidden_os", "blacklisted_os", "use_external_mip_script",
                 "enabled_disk_templates", "modify_etc_hosts", "file_storage_dir",
                 "shared_file_storage_dir", "gluster_storage_dir", "install_image",
                 "instance_communication_network", "zeroing_image",
                 "compression_tools", "enabled_user_shutdown",
                 constants.DATA_COLLECTORS_ENABLED_NAME,
                 constants.DATA_COLLECTORS_INTERVAL_NAME):
        value = getattr(opts, name, None)
        if value is not None:
            kwargs[name] = value
    hvparams = _Dict(opts.hvparams, "Hypervisor")
    if hvparams:
        kwargs["hvparams"] = hvparams
    diskparams = _Dict(opts.diskparams, "Disk template")
    if diskparams:
        kwargs["diskparams"] = diskparams
    if ipolicy:
        kwargs["ipolicy"] = ipolicy
    hv_state = state_options.HvStateFromOpts(opts.hv_state)
    if hv_state:
        kwargs["hv_state"] = hv_state
    disk_state = state_options.DiskStateFromOpts(opts.disk_state)
    if disk_state:
        kwargs["disk_state"] = disk_state
    if not kwargs:
        ToStderr("Please give at least one of the parameters.")
        return constants.EXIT_FAILURE
    op = opcodes.OpClusterSetParams(force=opts.force, **kwargs)
    cli.SubmitOrSend(op, opts)
    return constants.EXIT_SUCCESS


def RedistributeConfig(opts: Any, args: list[str]) -> int:
    """Push the configuration and ancillary files to every node."""
    cli.SubmitOrSend(opcodes.OpClusterRedistConf(), opts)
    return constants.EXIT_SUCCESS


# --- master-failover -------------------------------------------------------------------

def MasterFailover(opts: Any, args: list[str]) -> int:
    """Make the node this runs on the master."""
    if opts.no_voting and not opts.yes_do_it:
        usertext = ("This will perform the failover even if most other nodes are"
                    " down, or if this node is outdated. This is dangerous as it"
                    " can lead to a non-consistent cluster. Check the gnt-cluster"
                    " man page before continuing.\n\nContinue?")
        if not cli.AskUser(usertext):
            return constants.EXIT_FAILURE
    from ganeti.bootstrap import cluster as bootstrap
    return bootstrap.MasterFailover(no_voting=opts.no_voting,
                                    ignore_offline_nodes=opts.ignore_offline_nodes,
                                    feedback_fn=lambda msg: ToStdout("%s", msg))


# --- queue, watcher ---------------------------------------------------------------------

def QueueOps(opts: Any, args: list[str]) -> int:
    """Drain, undrain or show the job queue's drain flag."""
    command = args[0]
    client = cli.GetClient()
    if command in ("drain", "undrain"):
        client.SetDrainFlag(command == "drain")
    elif command == "info":
        (drained,) = client.QueryConfigValues(["drain_flag"])
        ToStdout("The drain flag is %s", "set" if drained else "unset")
    else:
        ToStderr("Command must be one of drain, undrain, info (got '%s')", command)
        return constants.EXIT_FAILURE
    return constants.EXIT_SUCCESS


def _ShowWatcherPause(until: Any) -> None:
    if until is None or until < time.time():
        ToStdout("The watcher is not paused.")
    else:
        ToStdout("The watcher is paused until %s.", time.ctime(until))


def WatcherOps(opts: Any, args: list[str]) -> int:
    """Pause, continue or show the watcher."""
    command = args[0]
    client = cli.GetClient()
    if command == "continue":
        client.SetWatcherPause(None)
        ToStdout("The watcher is no longer paused.")
    elif command == "pause":
        if len(args) < 2:
            raise errors.OpPrereqError("Missing pause duration", errors.ECODE_INVAL)
        duration = cli.ParseTimespec(args[1])
        _ShowWatcherPause(client.SetWatcherPause(time.time() + duration))
    elif command == "info":
        (until,) = client.QueryConfigValues(["watcher_pause"])
        _ShowWatcherPause(until)
    else:
        ToStderr("Command must be one of continue, pause, info (got '%s')", command)
        return constants.EXIT_FAILURE
    return constants.EXIT_SUCCESS


# --- command, copyfile (over SSH, as root) -------------------------------------------

def _SshTargets(nodes: list[cli.OnlineNode], secondary: bool = False) -> list[Any]:
    from ganeti import ssh
    return [ssh.NodeTarget(node.name, node.secondary_ip if secondary else node.primary_ip,
                           node.ssh_port) for node in nodes]


def _GetRunner(cluster_name: str) -> Any:
    """How this tool reaches the nodes (tests replace it)."""
    from ganeti import ssh
    return ssh.GetRunner(cluster_name)


def RunClusterCommand(opts: Any, args: list[str]) -> int:
    """Run a shell command on the online (or the given) nodes over SSH,
    one after the other, the master last."""
    cl = cli.GetClient()
    command = " ".join(args)
    nodes = cli.GetOnlineNodes(nodes=opts.nodes, cl=cl, nodegroup=opts.nodegroup)
    (cluster_name,) = cl.QueryConfigValues(["cluster_name"])
    # The master goes last (its own command might disturb the others')
    nodes.sort(key=lambda node: node.master)
    runner = _GetRunner(cluster_name)
    retcode = constants.EXIT_SUCCESS
    for target in _SshTargets(nodes):
        result = runner.Run(target, command)
        if result.exit_code != 0:
            retcode = constants.EXIT_FAILURE
        elif opts.failure_only:
            continue
        ToStdout("------------------------------------------------")
        output = result.output.rstrip("\n")
        if opts.show_machine_names:
            for line in output.splitlines():
                ToStdout("%s: %s", target.name, line)
        else:
            ToStdout("node: %s", target.name)
            ToStdout("%s", output)
        ToStdout("return code = %s", result.exit_code)
    return retcode


def ClusterCopyFile(opts: Any, args: list[str]) -> int:
    """Copy a file to the online (or the given) nodes but the master, over
    SSH, to the same path."""
    filename = os.path.abspath(args[0])
    if not os.path.isfile(filename):
        raise errors.OpPrereqError(f"No such filename '{filename}'", errors.ECODE_INVAL)
    cl = cli.GetClient()
    nodes = cli.GetOnlineNodes(nodes=opts.nodes, cl=cl, nodegroup=opts.nodegroup,
                               filter_master=True)
    (cluster_name,) = cl.QueryConfigValues(["cluster_name"])
    runner = _GetRunner(cluster_name)
    retcode = constants.EXIT_SUCCESS
    for target in _SshTargets(nodes, secondary=opts.use_replication_network):
        try:
            runner.CopyFile(target, filename)
        except errors.GenericError as err:
            ToStderr("Copy of file %s to node %s:%d failed: %s", filename,
                     target.name, target.port, err.args[0] if err.args else err)
            retcode = constants.EXIT_FAILURE
    return retcode


# --- verify ---------------------------------------------------------------------------

def _FeedbackPrinter(msg: Any) -> None:
    if isinstance(msg, (list, tuple)) and len(msg) == 3:
        ToStdout("%s", msg[2])
    else:
        ToStdout("%s", msg)


def VerifyCluster(opts: Any, args: list[str]) -> int:
    """Verify the cluster; non-zero exit when problems were found."""
    skip = [constants.VERIFY_NPLUSONE_MEM] if opts.skip_nplusone_mem else []
    if opts.skip_hvparam_assessment:
        skip.append(constants.VERIFY_HVPARAM_ASSESSMENT)
    op = opcodes.OpClusterVerify(verbose=opts.verbose, error_codes=opts.error_codes,
                                 debug_simulate_errors=opts.simulate_errors,
                                 skip_checks=skip, ignore_errors=opts.ignore_errors,
                                 group_name=opts.nodegroup,
                                 verify_clutter=opts.verify_clutter)
    client = cli.GetClient()
    result = cli.SubmitOpCode(op, cl=client, opts=opts)
    jobs = result[constants.JOB_IDS_KEY]
    ToStdout("Submitted jobs %s", ", ".join(str(job_id) for _, job_id in jobs))
    bad_jobs = bad_results = 0
    for ok, job_id in jobs:
        if not ok:
            ToStderr("Job submission failed: %s", job_id)
            bad_jobs += 1
            continue
        ToStdout("Waiting for job %s ...", job_id)
        try:
            results = cli.PollJob(job_id, cl=client, feedback_fn=_FeedbackPrinter)
        except errors.GenericError as err:
            ToStderr("Job %s failed: %s", job_id, cli.FormatError(err)[1])
            bad_jobs += 1
            continue
        if not all(results):
            bad_results += 1
    if bad_jobs:
        ToStdout("%s job(s) failed while verifying the cluster.", bad_jobs)
    return constants.EXIT_FAILURE if (bad_jobs or bad_results) \
        else constants.EXIT_SUCCESS


def VerifyDisks(opts: Any, args: list[str]) -> int:
    """Verify the instances' disks, one job per group, and activate the
    disks of the instances reported with inactive ones (not of those
    missing volumes: an activation cannot bring them back)."""
    client = cli.GetClient()
    op = opcodes.OpClusterVerifyDisks(group_name=opts.nodegroup,
                                      is_strict=not opts.no_strict)
    result = cli.SubmitOpCode(op, cl=client, opts=opts)
    retcode = constants.EXIT_SUCCESS
    for ok, job_id in result[constants.JOB_IDS_KEY]:
        if not ok:
            ToStdout("Job failed: %s", job_id)
            retcode = constants.EXIT_FAILURE
            continue
        try:
            (bad_nodes, instances, missing), = cli.PollJob(job_id, cl=client)
        except errors.GenericError as err:
            ToStdout("Job failed: %s", cli.FormatError(err)[1])
            retcode = constants.EXIT_FAILURE
            continue
        for node, text in sorted(bad_nodes.items()):
            ToStdout("Error gathering data on node %s: %s", node, str(text)[-400:])
            ToStdout("You need to fix these nodes first before fixing instances")
            retcode = constants.EXIT_FAILURE
        for name in instances:
            if name in missing:
                continue
            ToStdout("Activating disks for instance '%s'", name)
            try:
                cli.SubmitOpCode(opcodes.OpInstanceActivateDisks(instance_name=name),
                                 cl=client, opts=opts)
            except errors.GenericError as err:
                ToStderr("Error activating disks for instance %s: %s", name,
                         cli.FormatError(err)[1])
                retcode = constants.EXIT_FAILURE
        if missing:
            for name, volumes in sorted(missing.items()):
                if all(node in bad_nodes for node, _ in volumes):
                    ToStdout("Instance %s cannot be verified as it lives on broken"
                             " nodes", name)
                    continue
                ToStdout("Instance %s has missing logical volumes:", name)
                for node, volume in sorted(volumes):
                    shown = volume if volume.startswith("/") or ":" in volume \
                        else f"/dev/{volume}"
                    broken = "broken node " if node in bad_nodes else ""
                    ToStdout("\t%s%s %s", broken, node, shown)
            ToStdout("You need to replace or recreate disks for all the above"
                     " instances if this message persists after fixing broken nodes.")
            retcode = constants.EXIT_FAILURE
        elif not instances:
            ToStdout("No disks need to be activated.")
    return retcode


def RepairDiskSizes(opts: Any, args: list[str]) -> int:
    """Correct the recorded sizes of the named (default: all) instances'
    disks; the job's messages say what changed."""
    op = opcodes.OpClusterRepairDiskSizes(instances=args)
    cli.SubmitOpCode(op, opts=opts)
    return constants.EXIT_SUCCESS


commands: dict[str, cli.CommandDef] = {
    "init": (InitCluster, [cli.ArgHost(min=1, max=1)], INIT_OPTS,
             "[opts...] <cluster_name>", "Initialises a new cluster configuration"),
    "destroy": (DestroyCluster, cli.ARGS_NONE, [cli.YES_DOIT_OPT], "",
                "Destroy cluster"),
    "info": (ShowClusterConfig, cli.ARGS_NONE,
             [cli_option("--roman", dest="roman", default=False, action="store_true",
                         help="Use roman numbers (ignored)")],
             "[--roman]", "Show cluster configuration"),
    "getmaster": (ShowClusterMaster, cli.ARGS_NONE, [], "",
                  "Show the master node name"),
    "version": (ShowClusterVersion, cli.ARGS_NONE, [], "", "Show the cluster version"),
    "modify": (SetClusterParams, cli.ARGS_NONE, MODIFY_OPTS, "[opts...]",
               "Alters the parameters of the cluster"),
    "redist-conf": (RedistributeConfig, cli.ARGS_NONE, [*cli.SUBMIT_OPTS,
                                                        cli.PRIORITY_OPT],
                    "", "Forces a push of the configuration file and ssconf files"
                    " to the nodes in the cluster"),
    "master-failover": (MasterFailover, cli.ARGS_NONE,
                        [NOVOTING_OPT, cli.YES_DOIT_OPT, IGNORE_OFFLINE_OPT],
                        "[--no-voting] [--yes-do-it] [--ignore-offline-nodes]",
                        "Makes the current node the master"),
    "queue": (QueueOps, [cli.ArgChoice(min=1, max=1,
                                       choices=("drain", "undrain", "info"))],
              [], "drain|undrain|info", "Change queue properties"),
    "watcher": (WatcherOps, [cli.ArgChoice(min=1, max=1,
                                           choices=("pause", "continue", "info")),
                             cli.ArgSuggest(min=0, max=1, choices=("30m", "1h", "4h"))],
                [], "{pause <timespec>|continue|info}", "Change watcher properties"),
    "command": (RunClusterCommand, [cli.ArgCommand(min=1)],
                [NODE_LIST_OPT, cli.NODEGROUP_OPT, cli.SHOW_MACHINE_OPT, FAILURE_ONLY_OPT],
                "[-n node...] [-g group] [-M] [--failure-only] <command>",
                "Runs a command on all (or only some) nodes"),
    "copyfile": (ClusterCopyFile, [cli.ArgFile(min=1, max=1)],
                 [NODE_LIST_OPT, cli.NODEGROUP_OPT, USE_REPL_NET_OPT],
                 "[-n node...] [-g group] [--use-replication-network] <filename>",
                 "Copies a file to all (or only some) nodes"),
    "verify": (VerifyCluster, cli.ARGS_NONE,
               [cli.VERBOSE_OPT, ERROR_CODES_OPT, IGNORE_ERRORS_OPT, NONPLUS1_OPT,
                NO_HVPARAM_ASSESS_OPT, cli.NODEGROUP_OPT, VERIFY_CLUTTER_OPT,
                SIMULATE_OPT, cli.PRIORITY_OPT],
               "[--no-nplus1-mem] [--no-hv-param-assessment] [--node-group GROUP]"
               " [--error-codes] [-I ERROR_CODE...] [--verify-ssh-clutter]",
               "Does a check on the cluster configuration"),
    "verify-disks": (VerifyDisks, cli.ARGS_NONE,
                     [cli.NODEGROUP_OPT, NO_STRICT_OPT, cli.PRIORITY_OPT],
                     "[--node-group GROUP] [--no-strict]",
                     "Does a check on the cluster disk status"),
    "repair-disk-sizes": (RepairDiskSizes, [cli.ArgInstance()],
                          [cli.DRY_RUN_OPT, cli.PRIORITY_OPT], "[instance...]",
                          "Updates mismatches in recorded disk sizes"),
    "renew-crypto": (cluster_crypto.RenewCrypto, cli.ARGS_NONE,
                     cluster_crypto.RENEW_OPTS, "[opts...]",
                     "Renews cluster certificates, keys and secrets"),
}
commands.update({
    "master-ping": (cluster_admin.MasterPing, cli.ARGS_NONE, [], "",
                    "Checks if the master daemon is alive"),
    "rename": (cluster_admin.RenameCluster, [cli.ArgHost(min=1, max=1)],
               [cli.FORCE_OPT, *cli.SUBMIT_OPTS, cli.PRIORITY_OPT], "<new_name>",
               "Renames the cluster"),
    "activate-master-ip": (cluster_admin.ActivateMasterIp, cli.ARGS_NONE,
                           [*cli.SUBMIT_OPTS, cli.PRIORITY_OPT], "",
                           "Activates the master IP"),
    "deactivate-master-ip": (cluster_admin.DeactivateMasterIp, cli.ARGS_NONE,
                             [cluster_admin.YES_OPT, *cli.SUBMIT_OPTS,
                              cli.PRIORITY_OPT], "[--yes]",
                             "Deactivates the master IP"),
    "show-ispecs-cmd": (cluster_admin.ShowClusterIspecsCmd, cli.ARGS_NONE, [], "",
                        "Shows the command line recreating the cluster's"
                        " instance policy specs"),
    "upgrade": (cluster_admin.UpgradeGanetiCommand, cli.ARGS_NONE,
                cluster_admin.UPGRADE_OPTS, "{--to <version> | --resume}",
                "Switches the cluster to another version"),
})
commands["rapi-user"] = (
    rapi_user.RapiUser,
    [cli.ArgChoice(min=1, max=1, choices=rapi_user.ACTIONS), cli.ArgUnknown(min=0, max=1)],
    rapi_user.RAPI_USER_OPTS,
    "{add <name> {--password-file FILE|--password-stdin} [--read-only]"
    "|remove <name>|list}",
    "Manages the RAPI users (our extension)")
commands.update(node_power.CLUSTER_COMMANDS)
commands.update(tags.TagCommands(constants.TAG_CLUSTER))
commands["search-tags"] = tags.SEARCH_TAGS_COMMAND


def Main(argv: list[str] | None = None) -> int:
    """Run gnt-cluster; return its exit code."""
    return cli.GenericMain(commands, argv=argv if argv is not None else sys.argv)
