"""The one table of node RPC calls, read by both ends.

Each :class:`RpcCall` says what the master sends (argument names and their
encodings), how long it waits (a timeout class, or a function of the
arguments), which function runs it on the node, and how the answer is
post-processed. :class:`ganeti.rpc.node.RpcRunner` builds its ``call_<name>``
methods from this table and :mod:`ganeti.rpc.dispatch` finds the node-side
handler in it, so the two cannot drift apart. A call is added by adding an
entry here and writing its handler in ``ganeti.backend``.

Names, arguments and timeout classes are Ganeti's; ``get_file_info`` is ours.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from collections.abc import Callable, Sequence

from ganeti import constants, errors
from ganeti.rpc.encoding import ArgKind

# Guidelines for timeouts, as in Ganeti: calls the watcher makes and trivial
# queries are URGENT (1 min); reading a file or similar is FAST (5 min);
# most calls are NORMAL (15 min); long-running ones SLOW (1 h), 4HRS or 1DAY.
TMO_URGENT = constants.RPC_TMO_URGENT
TMO_FAST = constants.RPC_TMO_FAST
TMO_NORMAL = constants.RPC_TMO_NORMAL
TMO_SLOW = constants.RPC_TMO_SLOW
TMO_4HRS = constants.RPC_TMO_4HRS
TMO_1DAY = constants.RPC_TMO_1DAY


@dataclass(frozen=True)
class RpcArg:
    """One argument of a call."""
    name: str
    kind: ArgKind = ArgKind.NONE
    doc: str = ""


@dataclass(frozen=True)
class RpcCall:
    """One RPC call.

    ``handler`` is the dotted name of the node-side function, which gets the
    decoded arguments positionally and returns the payload (or raises
    ``backend.RPCFail``). ``single`` calls go to one node and return one
    result; the others take a node list and return a dict. With
    ``accept_offline`` a node marked offline is contacted anyway (``version``
    is used to re-add offline nodes).
    """
    name: str
    timeout: int | Callable[[Sequence[Any]], float]
    args: tuple[RpcArg, ...]
    handler: str
    doc: str
    single: bool = False
    accept_offline: bool = False
    postproc: Callable[[Any], Any] | None = None

    def GetTimeout(self, args: Sequence[Any]) -> float:
        """Return the read timeout for these (unencoded) arguments."""
        if callable(self.timeout):
            return self.timeout(args)
        return self.timeout

    @property
    def arg_names(self) -> list[str]:
        """The argument names, in order."""
        return [arg.name for arg in self.args]


def _TestDelayTimeout(args: Sequence[Any]) -> float:
    (duration,) = args
    return float(duration) + 5


def _A(name: str, kind: ArgKind = ArgKind.NONE, doc: str = "") -> RpcArg:
    return RpcArg(name, kind, doc)


def _ShutdownTimeout(args: Sequence[Any]) -> float:
    # instance_shutdown(instance, timeout, reason): the soft stop may take
    # the whole timeout before the hard stop
    return float(args[1] or 0) + TMO_NORMAL


def _OobTimeout(args: Sequence[Any]) -> float:
    # run_oob(oob_program, command, remote_node, timeout): the node kills
    # the helper after the timeout and still has to answer
    return float(args[3] or 0) + TMO_URGENT


def _RebootTimeout(args: Sequence[Any]) -> float:
    # instance_reboot(inst, reboot_type, shutdown_timeout, reason)
    return float(args[2] or 0) + TMO_NORMAL


def InstanceDict(instance: Any, disks: Sequence[Any], hvparams: Any = None,
                 beparams: Any = None, osparams: Any = None) -> dict[str, Any]:
    """The instance argument of the instance and OS calls.

    Ganeti's node calls get the instance with its disks as whole disk
    objects (not UUIDs) and with filled parameters: pass the instance, its
    disk objects in order and, optionally, the filled hvparams, beparams
    and osparams (cluster defaults plus the instance's overrides).
    """
    result = instance.ToDict() if hasattr(instance, "ToDict") else dict(instance)
    result["disks"] = [d.ToDict() if hasattr(d, "ToDict") else d for d in disks]
    for key, value in (("hvparams", hvparams), ("beparams", beparams),
                       ("osparams", osparams)):
        if value is not None:
            result[key] = dict(value)
    return result


_VERIFY_ARGS = (
    _A("checkdict", doc="What to verify: NV_* key -> parameters"),
    _A("cluster_name", doc="Cluster name"),
    _A("all_hvparams", doc="Hypervisor name -> hypervisor parameters"),
    _A("node_groups", doc="Node name -> group UUID"),
    _A("groups_cfg", doc="Group UUID -> group configuration"),
)

_CALL_LIST: list[RpcCall] = [
    # --- Cluster and node information ---------------------------------------
    RpcCall("version", TMO_URGENT, (), "ganeti.backend.node.GetVersion",
            "Query the node's protocol version", accept_offline=True),
    RpcCall("node_info", TMO_URGENT, (
        _A("storage_units", doc="List of (storage type, key, parameters) to"
           " report free/total space for"),
        _A("hv_specs", doc="List of (hypervisor name, hvparams) to report"
           " memory and CPU for"),
    ), "ganeti.backend.node.GetNodeInfo", "Return node information"),
    RpcCall("node_verify", TMO_NORMAL, _VERIFY_ARGS,
            "ganeti.backend.verify.VerifyNode",
            "Request verification of given parameters"),
    RpcCall("node_verify_light", TMO_NORMAL, _VERIFY_ARGS,
            "ganeti.backend.verify.VerifyNode",
            "Request verification of given parameters (before a node joins)"),
    RpcCall("node_has_ip_address", TMO_FAST, (_A("address", doc="IP address"),),
            "ganeti.backend.node.HasIpAddress",
            "Check whether the node has the given IP address", single=True),
    RpcCall("bridges_exist", TMO_URGENT,
            (_A("bridges_list", doc="Bridge names"),),
            "ganeti.backend.node.BridgesExist",
            "Checks if a node has all the bridges given; returns the missing"
            " ones", single=True),
    RpcCall("test_delay", _TestDelayTimeout, (_A("duration", doc="Seconds"),),
            "ganeti.backend.node.TestDelay",
            "Sleep for a fixed time on the given nodes"),
    # --- Files ------------------------------------------------------------------
    RpcCall("upload_file", TMO_NORMAL,
            (_A("file_name", ArgKind.FILE_DETAILS,
                "Local file, sent with contents, mode, owner and times"),),
            "ganeti.backend.files.UploadFile", "Upload a file"),
    RpcCall("write_ssconf_files", TMO_NORMAL,
            (_A("values", doc="ssconf key -> value"),),
            "ganeti.backend.files.WriteSsconfFiles", "Write ssconf files"),
    RpcCall("get_file_info", TMO_FAST,
            (_A("file_name", ArgKind.VIRTUAL_PATH, "Absolute file name"),),
            "ganeti.backend.files.GetFileInfo",
            "Return existence, size, mode, owner, mtime and SHA-1 of a"
            " Ganeti file"),
    # --- Job queue (sent to master candidates) -----------------------------------
    RpcCall("jobqueue_update", TMO_URGENT, (
        _A("file_name", ArgKind.VIRTUAL_PATH, "Job queue file"),
        _A("content", ArgKind.COMPRESS, "New contents"),
    ), "ganeti.backend.jobqueue.JobQueueUpdate", "Update job queue file"),
    RpcCall("jobqueue_purge", TMO_NORMAL, (),
            "ganeti.backend.jobqueue.JobQueuePurge", "Purge job queue",
            single=True),
    RpcCall("jobqueue_rename", TMO_URGENT,
            (_A("rename", ArgKind.VIRTUAL_PATH_PAIRS,
                "List of (old, new) job queue file names"),),
            "ganeti.backend.jobqueue.JobQueueRename", "Rename job queue files"),
    RpcCall("jobqueue_set_drain_flag", TMO_URGENT, (_A("flag"),),
            "ganeti.backend.jobqueue.JobQueueSetDrainFlag",
            "Set job queue drain flag"),
    RpcCall("set_watcher_pause", TMO_URGENT,
            (_A("until", doc="Unix time the pause ends, None to end it"),),
            "ganeti.backend.watcher.SetWatcherPause",
            "Set the watcher pause (cluster-wide, so it survives a master failover)"),
    # --- Cluster lifecycle (issue 6): master role, vote; restricted commands --
    RpcCall("master_node_name", TMO_URGENT, (),
            "ganeti.backend.cluster.GetMasterNodeName",
            "Return the master node name according to the node's ssconf"),
    RpcCall("node_start_master_daemons", TMO_FAST,
            (_A("no_voting", doc="Start the master daemon without voting"),),
            "ganeti.backend.cluster.StartMasterDaemons",
            "Start the master daemons on the node", single=True),
    RpcCall("node_stop_master", TMO_FAST, (),
            "ganeti.backend.cluster.StopMasterDaemons",
            "Stop the master daemons on the node", single=True),
    RpcCall("node_activate_master_ip", TMO_FAST, (
        _A("master_params", ArgKind.OBJECT_DICT, "MasterNetworkParameters"),
        _A("use_external_mip_script", doc="Run the administrator's script"),
    ), "ganeti.backend.cluster.ActivateMasterIp",
        "Bring the master IP up on the node", single=True),
    RpcCall("node_deactivate_master_ip", TMO_FAST, (
        _A("master_params", ArgKind.OBJECT_DICT, "MasterNetworkParameters"),
        _A("use_external_mip_script", doc="Run the administrator's script"),
    ), "ganeti.backend.cluster.DeactivateMasterIp",
        "Take the master IP down on the node", single=True),
    # gnt-cluster command/copyfile go over SSH (ganeti.ssh): no call runs an
    # arbitrary command or writes an arbitrary file; this one runs only the
    # administrator's programs in RESTRICTED_COMMANDS_DIR
    RpcCall("restricted_command", TMO_SLOW,
            (_A("cmd", doc="Command name"),),
            "ganeti.backend.restricted_commands.RunRestrictedCmd",
            "Runs restricted command"),
    # --- Node power (ganeti.backend.oob): the OOB helper runs on the master --
    RpcCall("run_oob", _OobTimeout, (
        _A("oob_program", doc="Absolute path of the out-of-band helper"),
        _A("command", doc="Out-of-band command (constants.OOB_COMMANDS)"),
        _A("remote_node", doc="Name of the node the command is about"),
        _A("timeout", doc="Seconds before the helper is killed"),
    ), "ganeti.backend.oob.RunOob", "Runs out-of-band command", single=True),
    RpcCall("node_powercycle", TMO_NORMAL, (
        _A("hypervisor", doc="Hypervisor type"),
        _A("hvparams", doc="Hypervisor parameters"),
    ), "ganeti.backend.oob.NodePowercycle", "Tries to powercycle a node",
        single=True),
    # --- Nodes (issue 6, gnt-node remove) -------------------------------------
    RpcCall("node_leave_cluster", TMO_NORMAL,
            (_A("modify_ssh_setup", doc="Whether SSH keys may be changed"),),
            "ganeti.backend.membership.LeaveCluster",
            "Requests a node to clean the cluster information it has",
            single=True),
    # --- Instances (issue 7): instance dicts carry whole disk dicts and
    # filled parameters, see InstanceDict ------------------------------------
    RpcCall("instance_start", TMO_NORMAL, (
        _A("instance_hvp_bep", ArgKind.OBJECT_DICT,
           "Instance with filled hvparams and beparams"),
        _A("startup_paused", doc="Start paused"),
        _A("reason", doc="Reason trail"),
    ), "ganeti.backend.instance.InstanceStart", "Starts an instance",
        single=True),
    RpcCall("instance_shutdown", _ShutdownTimeout, (
        _A("instance", ArgKind.OBJECT_DICT, "Instance object"),
        _A("timeout", doc="Seconds for the soft stop before the hard one"),
        _A("reason", doc="Reason trail"),
    ), "ganeti.backend.instance.InstanceShutdown", "Stops an instance",
        single=True),
    RpcCall("instance_reboot", _RebootTimeout, (
        _A("inst", ArgKind.OBJECT_DICT, "Instance object"),
        _A("reboot_type", doc="soft or hard"),
        _A("shutdown_timeout", doc="Seconds for the soft stop of a hard reboot"),
        _A("reason", doc="Reason trail"),
    ), "ganeti.backend.instance.InstanceReboot", "Reboots an instance",
        single=True),
    RpcCall("instance_balloon_memory", TMO_NORMAL, (
        _A("instance", ArgKind.OBJECT_DICT, "Instance object"),
        _A("memory", doc="New memory amount (MiB)"),
    ), "ganeti.backend.instance.InstanceBalloonMemory",
        "Modify the amount of an instance's runtime memory", single=True),
    RpcCall("instance_info", TMO_URGENT, (
        _A("instance", doc="Instance name"),
        _A("hname", doc="Hypervisor type"),
        _A("hvparams", doc="Hypervisor parameters"),
    ), "ganeti.backend.instance.GetInstanceInfo",
        "Returns information about a single instance"),
    RpcCall("all_instances_info", TMO_URGENT, (
        _A("hypervisor_list", doc="Hypervisors to query for instances"),
        _A("all_hvparams", doc="Hypervisor name -> hvparams"),
    ), "ganeti.backend.instance.GetAllInstancesInfo",
        "Returns information about all instances on the given nodes"),
    RpcCall("instance_list", TMO_URGENT, (
        _A("hypervisor_list", doc="Hypervisors to query for instances"),
        _A("all_hvparams", doc="Hypervisor name -> hvparams"),
    ), "ganeti.backend.instance.GetInstanceList",
        "Returns the list of running instances on the given nodes"),
    RpcCall("instance_console_info", TMO_URGENT, (
        _A("instance_info", doc="Instance name -> {instance, node, group,"
           " hvParams, beParams}"),
    ), "ganeti.backend.instance.GetInstanceConsoleInfo",
        "Retrieves instance console information"),
    RpcCall("hypervisor_validate_params", TMO_NORMAL, (
        _A("hvname", doc="Hypervisor name"),
        _A("hvfull", doc="Parameters to be validated"),
    ), "ganeti.backend.instance.ValidateHVParams",
        "Validate hypervisor params"),
    # --- Hotplug (Ganeti 3.0) ------------------------------------------------------
    RpcCall("hotplug_device", TMO_NORMAL, (
        _A("instance", ArgKind.OBJECT_DICT, "Instance object"),
        _A("action", doc="Hotplug action (hotadd, hotremove, hotmod)"),
        _A("dev_type", doc="Device type (disk, nic)"),
        _A("device", ArgKind.OBJECT_DICT, "The disk or NIC object"),
        _A("extra", doc="For a disk: its (link path, URI) on the node"),
        _A("seq", doc="The device's index"),
    ), "ganeti.backend.instance.HotplugDevice", "Hotplug a device", single=True),
    RpcCall("hotplug_supported", TMO_NORMAL,
            (_A("instance", ArgKind.OBJECT_DICT, "Instance object"),),
            "ganeti.backend.instance.HotplugSupported",
            "Check if hotplug is supported", single=True),
    # --- Migration: source, target, source, target, source ---------------------
    RpcCall("migration_info", TMO_NORMAL,
            (_A("instance", ArgKind.OBJECT_DICT, "Instance object"),),
            "ganeti.backend.instance.MigrationInfo",
            "Gather the information necessary to prepare an instance"
            " migration", single=True),
    RpcCall("accept_instance", TMO_NORMAL, (
        _A("instance", ArgKind.OBJECT_DICT, "Instance object"),
        _A("info", doc="Result for the call_migration_info call"),
        _A("target", doc="Target hostname (usually an IP address)"),
    ), "ganeti.backend.instance.AcceptInstance",
        "Prepare a node to accept an instance", single=True),
    RpcCall("instance_finalize_migration_dst", TMO_NORMAL, (
        _A("instance", ArgKind.OBJECT_DICT, "Instance object"),
        _A("info", doc="Result for the call_migration_info call"),
        _A("success", doc="Whether the migration was a success or failure"),
    ), "ganeti.backend.instance.FinalizeMigrationDst",
        "Finalize any target-node migration specific operation", single=True),
    RpcCall("instance_migrate", TMO_SLOW, (
        _A("cluster_name", doc="Cluster name"),
        _A("instance", ArgKind.OBJECT_DICT, "Instance object"),
        _A("target", doc="Target node name"),
        _A("live", doc="Whether the migration should be done live or not"),
    ), "ganeti.backend.instance.MigrateInstance", "Migrate an instance",
        single=True),
    RpcCall("instance_finalize_migration_src", TMO_SLOW, (
        _A("instance", ArgKind.OBJECT_DICT, "Instance object"),
        _A("success", doc="Whether the migration succeeded or not"),
        _A("live", doc="Whether the user requested a live migration or not"),
    ), "ganeti.backend.instance.FinalizeMigrationSource",
        "Finalize the instance migration on the source node", single=True),
    RpcCall("instance_get_migration_status", TMO_SLOW,
            (_A("instance", ArgKind.OBJECT_DICT, "Instance object"),),
            "ganeti.backend.instance.GetMigrationStatus",
            "Report migration status", single=True),
    # --- OS scripts for instances -------------------------------------------------
    RpcCall("instance_os_add", TMO_1DAY, (
        _A("instance_osp", ArgKind.OBJECT_DICT,
           "Instance with filled OS parameters"),
        _A("reinstall", doc="Whether the instance is being reinstalled"),
        _A("debug", doc="Debug level for the OS install script to use"),
    ), "ganeti.backend.instance.InstanceOsAdd",
        "Installs an operative system onto an instance", single=True),
    RpcCall("instance_run_rename", TMO_4HRS, (
        _A("instance", ArgKind.OBJECT_DICT, "Instance object"),
        _A("old_name", doc="Old instance name"),
        _A("debug", doc="Debug level for the OS script to use"),
    ), "ganeti.backend.instance.RunRenameInstance",
        "Run the OS rename script for an instance", single=True),
    # --- OS definitions ------------------------------------------------------------
    RpcCall("os_diagnose", TMO_FAST, (), "ganeti.backend.os.DiagnoseOS",
            "Request a diagnose of OS definitions"),
    RpcCall("os_validate", TMO_FAST, (
        _A("required", doc="Whether the OS must be present on the node"),
        _A("name", doc="OS name (with variant)"),
        _A("checks", doc="Checks to run (\"parameters\")"),
        _A("params", doc="OS parameters"),
        _A("force_variant", doc="Whether to skip the variant check"),
    ), "ganeti.backend.os.ValidateOS",
        "Run a validation routine for a given OS"),
    RpcCall("os_get", TMO_FAST, (_A("name", doc="OS name"),),
            "ganeti.backend.os.OSGet",
            "Returns an OS definition (dict of objects.OS)", single=True),
    # --- Block devices (disks as dicts of objects.Disk) ------------------------------
    RpcCall("blockdev_create", TMO_NORMAL, (
        _A("bdev", ArgKind.OBJECT_DICT, "Block device to create"),
        _A("size", doc="Size (MiB)"),
        _A("owner", doc="Owning instance name"),
        _A("on_primary", doc="Whether this is the primary node"),
        _A("info", doc="Free-form metadata for the device"),
        _A("exclusive_storage", doc="Whether exclusive storage is enabled"),
    ), "ganeti.backend.storage.BlockdevCreate",
        "Request creation of a given block device", single=True),
    RpcCall("blockdev_remove", TMO_NORMAL,
            (_A("bdev", ArgKind.OBJECT_DICT, "Block device"),),
            "ganeti.backend.storage.BlockdevRemove",
            "Request removal of a given block device", single=True),
    RpcCall("blockdev_assemble", TMO_NORMAL, (
        _A("disk", ArgKind.OBJECT_DICT, "Block device"),
        _A("instance", ArgKind.OBJECT_DICT, "Instance (name and hypervisor are used)"),
        _A("on_primary", doc="Whether this is the primary node"),
        _A("idx", doc="Index of the disk"),
    ), "ganeti.backend.storage.BlockdevAssemble",
        "Request assembling of a given block device; returns (link, uri)",
        single=True),
    RpcCall("blockdev_shutdown", TMO_NORMAL,
            (_A("disk", ArgKind.OBJECT_DICT, "Block device"),),
            "ganeti.backend.storage.BlockdevShutdown",
            "Request shutdown of a given block device", single=True),
    RpcCall("blockdev_grow", TMO_NORMAL, (
        _A("cf_bdev", ArgKind.OBJECT_DICT, "Block device"),
        _A("amount", doc="Amount to grow by (MiB)"),
        _A("dryrun", doc="Whether to only check"),
        _A("backingstore", doc="Whether to grow the backing storage"),
        _A("es_flag", doc="Whether exclusive storage is enabled"),
    ), "ganeti.backend.storage.BlockdevGrow", "Request growing of a disk",
        single=True),
    RpcCall("blockdev_rename", TMO_NORMAL,
            (_A("devlist", doc="List of (disk dict, new logical_id)"),),
            "ganeti.backend.storage.BlockdevRename",
            "Request rename of the given block devices", single=True),
    RpcCall("blockdev_find", TMO_NORMAL,
            (_A("disk", ArgKind.OBJECT_DICT, "Block device"),),
            "ganeti.backend.storage.BlockdevFind",
            "Request identification of a given block device (a BlockDevStatus"
            " dict, or None if missing)", single=True),
    RpcCall("blockdev_getmirrorstatus", TMO_NORMAL,
            (_A("disks", ArgKind.OBJECT_DICT_LIST, "Disks"),),
            "ganeti.backend.storage.BlockdevGetMirrorStatus",
            "Request status of a (mirroring) device", single=True),
    RpcCall("blockdev_getdimensions", TMO_NORMAL,
            (_A("disks", ArgKind.OBJECT_DICT_LIST, "Disks"),),
            "ganeti.backend.storage.BlockdevGetDimensions",
            "Returns size and spindles of the given disks"),
    RpcCall("blockdev_snapshot", TMO_NORMAL, (
        _A("cdev", ArgKind.OBJECT_DICT, "Block device"),
        _A("snap_name", doc="Name of the snapshot"),
        _A("snap_size", doc="Size of the snapshot (MiB)"),
    ), "ganeti.backend.storage.BlockdevSnapshot", "Export a given disk to"
        " another node (snapshot); returns its logical_id", single=True),
    RpcCall("blockdev_convert", TMO_4HRS, (
        _A("bdev_src", ArgKind.OBJECT_DICT, "Block device to copy from"),
        _A("bdev_dest", ArgKind.OBJECT_DICT, "Block device to copy to"),
    ), "ganeti.backend.convert.BlockdevConvert",
        "Copy a disk's data to a disk of another template on the same node;"
        " returns the bytes copied", single=True),
    RpcCall("get_image_size", TMO_NORMAL, (
        _A("image", doc="Absolute path of a file on the node, or an http/https/ftp URL"),
    ), "ganeti.backend.image.GetImageSize",
        "Get the size in bytes of a disk image (a file or a URL)", single=True),
    RpcCall("blockdev_image", TMO_4HRS, (
        _A("disk", ArgKind.OBJECT_DICT, "Block device to write to"),
        _A("image", doc="Absolute path of a file on the node, or an http/https/ftp URL"),
        _A("size", doc="Size of the block device (MiB)"),
    ), "ganeti.backend.image.BlockdevImage",
        "Write a disk image (a file or a URL) from the start of a block device;"
        " returns the bytes written", single=True),
    RpcCall("blockdev_setinfo", TMO_NORMAL, (
        _A("disk", ArgKind.OBJECT_DICT, "Block device"),
        _A("info", doc="Metadata"),
    ), "ganeti.backend.storage.BlockdevSetInfo",
        "Sets metadata information on a given block device", single=True),
    # --- Storage units and file storage directories ----------------------------------
    RpcCall("storage_list", TMO_NORMAL, (
        _A("su_name", doc="Storage unit type"),
        _A("su_args", doc="Arguments of the storage unit type"),
        _A("name", doc="Unit name (None: all)"),
        _A("fields", doc="Fields to return"),
    ), "ganeti.backend.storage.StorageList", "Get list of storage units"),
    RpcCall("storage_modify", TMO_NORMAL, (
        _A("su_name", doc="Storage unit type"),
        _A("su_args", doc="Arguments of the storage unit type"),
        _A("name", doc="Unit name"),
        _A("changes", doc="Field -> new value"),
    ), "ganeti.backend.storage.StorageModify", "Modify a storage unit"),
    RpcCall("storage_execute", TMO_NORMAL, (
        _A("su_name", doc="Storage unit type"),
        _A("su_args", doc="Arguments of the storage unit type"),
        _A("name", doc="Unit name"),
        _A("op", doc="Operation (e.g. fix-consistency)"),
    ), "ganeti.backend.storage.StorageExecute",
        "Run an operation on a storage unit; returns its output lines"),
    # --- LVM (issue 17) --------------------------------------------------------------
    RpcCall("vg_list", TMO_URGENT, (), "ganeti.backend.storage.ListVolumeGroups",
            "Volume groups of the node: {vg name: size MiB}"),
    RpcCall("lv_list", TMO_URGENT, (_A("vg_names", doc="Volume groups (None: all)"),),
            "ganeti.backend.storage.GetLogicalVolumes",
            "Logical volumes: {\"vg/lv\": [size MiB, inactive, online]}"),
    RpcCall("node_volumes", TMO_FAST, (), "ganeti.backend.storage.NodeVolumes",
            "Logical volumes with their PVs: [{name, vg, size, dev}]"),
    # --- DRBD (issue 17); disks carry their dynamic_params for the node -----------------
    RpcCall("drbd_disconnect_net", TMO_NORMAL,
            (_A("disks", ArgKind.OBJECT_DICT_LIST, "DRBD disks"),),
            "ganeti.backend.drbd.DrbdDisconnectNet",
            "Disconnect the network of the given DRBD devices"),
    RpcCall("drbd_attach_net", TMO_NORMAL, (
        _A("disks", ArgKind.OBJECT_DICT_LIST, "DRBD disks"),
        _A("multimaster", doc="Whether to allow two primaries (live migration)"),
    ), "ganeti.backend.drbd.DrbdAttachNet",
        "Connect the given DRBD devices to their peers (and wait for it)"),
    RpcCall("drbd_wait_sync", TMO_SLOW,
            (_A("disks", ArgKind.OBJECT_DICT_LIST, "DRBD disks"),),
            "ganeti.backend.drbd.DrbdWaitSync",
            "Wait a little for the devices to sync; returns (all_done, min_percent)"),
    RpcCall("drbd_needs_activation", TMO_NORMAL,
            (_A("disks", ArgKind.OBJECT_DICT_LIST, "DRBD disks"),),
            "ganeti.backend.drbd.DrbdNeedsActivation",
            "Return the UUIDs of the disks that are not (fully) assembled"),
    RpcCall("drbd_helper", TMO_URGENT, (), "ganeti.backend.drbd.GetDrbdUsermodeHelper",
            "Return the DRBD usermode helper of the node"),
    RpcCall("blockdev_close", TMO_NORMAL, (
        _A("instance_name", doc="Instance name"),
        _A("disks", ArgKind.OBJECT_DICT_LIST, "Disks"),
    ), "ganeti.backend.drbd.BlockdevClose",
        "Close the given devices (DRBD: make them secondary)", single=True),
    RpcCall("blockdev_open", TMO_NORMAL, (
        _A("instance_name", doc="Instance name"),
        _A("disks", ArgKind.OBJECT_DICT_LIST, "Disks"),
        _A("exclusive", doc="Whether to open exclusively (DRBD: single primary)"),
    ), "ganeti.backend.drbd.BlockdevOpen",
        "Open the given devices (DRBD: make them primary)", single=True),
    # --- replace-disks (issue 17) ----------------------------------------------------
    RpcCall("blockdev_removechildren", TMO_NORMAL, (
        _A("bdev", ArgKind.OBJECT_DICT, "The DRBD disk"),
        _A("ndevs", ArgKind.OBJECT_DICT_LIST, "Its current local volumes (data, meta)"),
    ), "ganeti.backend.drbd.BlockdevRemoveChildren",
        "Detach the local storage (data and metadata volumes) of a DRBD device",
        single=True),
    RpcCall("blockdev_addchildren", TMO_NORMAL, (
        _A("bdev", ArgKind.OBJECT_DICT, "The DRBD disk, without local storage"),
        _A("ndevs", ArgKind.OBJECT_DICT_LIST, "New local volumes (data, meta)"),
    ), "ganeti.backend.drbd.BlockdevAddChildren",
        "Give a DRBD device without local storage new volumes (fresh metadata:"
        " the device resyncs from its peer)", single=True),
    # --- Instance allocators (issue 19) ---------------------------------------------
    RpcCall("iallocator_runner", TMO_NORMAL, (
        _A("name", doc="Allocator name"),
        _A("idata", doc="The input message (JSON text)"),
        _A("default_iallocator_params", doc="Options for the allocator"),
    ), "ganeti.backend.iallocator.RunIallocator",
        "Run an allocator on the input; returns its answer text", single=True),
    RpcCall("file_storage_dir_create", TMO_FAST,
            (_A("file_storage_dir", doc="File storage directory"),),
            "ganeti.backend.storage.FileStorageDirCreate",
            "Create the given file storage directory", single=True),
    RpcCall("file_storage_dir_remove", TMO_FAST,
            (_A("file_storage_dir", doc="File storage directory"),),
            "ganeti.backend.storage.FileStorageDirRemove",
            "Remove the given file storage directory", single=True),
    RpcCall("file_storage_dir_rename", TMO_FAST, (
        _A("old_file_storage_dir", doc="Old name"),
        _A("new_file_storage_dir", doc="New name"),
    ), "ganeti.backend.storage.FileStorageDirRename",
        "Rename file storage directory", single=True),
    # --- ExtStorage (issue 17) -----------------------------------------------------------
    RpcCall("extstorage_diagnose", TMO_FAST, (),
            "ganeti.backend.extstorage.DiagnoseExtStorage",
            "Request a diagnose of ExtStorage providers: [[name, path, status,"
            " diagnose, parameters], ...]"),
    # --- Hooks (issue 7, master side) ---------------------------------------------------
    RpcCall("hooks_runner", TMO_NORMAL, (
        _A("hpath", doc="Hooks directory name (e.g. instance-add)"),
        _A("phase", doc="pre or post"),
        _A("env", doc="Environment of the scripts"),
    ), "ganeti.backend.hooks.RunHooks",
        "Run hook scripts; returns [(script, HKR_*, output)]"),
    # --- Import/export: the disk transfer daemons (ganeti.impexpd) ----------------------
    RpcCall("import_start", TMO_NORMAL, (
        _A("opts", ArgKind.OBJECT_DICT, "objects.ImportExportOptions"),
        _A("instance", ArgKind.OBJECT_DICT, "Instance object"),
        _A("component", doc="What is transferred (e.g. disk/0), for the daemon's name"),
        _A("ieio", doc="Where the data goes: (IEIO_* type, its arguments)"),
    ), "ganeti.backend.impexp.StartImport",
        "Starts an import daemon; returns its name once it listens", single=True),
    RpcCall("export_start", TMO_NORMAL, (
        _A("opts", ArgKind.OBJECT_DICT, "objects.ImportExportOptions"),
        _A("host", doc="The importer's address"),
        _A("port", doc="The importer's port"),
        _A("instance", ArgKind.OBJECT_DICT, "Instance object"),
        _A("component", doc="What is transferred (e.g. disk/0), for the daemon's name"),
        _A("ieio", doc="Where the data comes from: (IEIO_* type, its arguments)"),
    ), "ganeti.backend.impexp.StartExport",
        "Starts an export daemon; returns its name", single=True),
    RpcCall("impexp_status", TMO_FAST,
            (_A("names", doc="Daemon names"),),
            "ganeti.backend.impexp.GetStatus",
            "Gets the status of import/export daemons: per name an"
            " ImportExportStatus dict, or None", single=True),
    RpcCall("impexp_abort", TMO_NORMAL, (_A("name", doc="Daemon name"),),
            "ganeti.backend.impexp.Abort",
            "Aborts an import/export daemon (it reports the error \"aborted\")",
            single=True),
    RpcCall("impexp_cleanup", TMO_NORMAL, (_A("name", doc="Daemon name"),),
            "ganeti.backend.impexp.Cleanup",
            "Stops an import/export daemon if needed and removes its files",
            single=True),
    # --- Exports (gnt-backup, ganeti.backend.export) -------------------------------------
    RpcCall("export_info", TMO_FAST, (_A("path", doc="Export directory"),),
            "ganeti.backend.export.ExportInfo",
            "Returns the text of an export's config.ini (checked)", single=True),
    RpcCall("export_list", TMO_FAST, (), "ganeti.backend.export.ListExports",
            "Returns the names of the exports on the nodes"),
    RpcCall("export_remove", TMO_FAST, (_A("export", doc="Export name"),),
            "ganeti.backend.export.RemoveExport", "Removes an export", single=True),
    RpcCall("finalize_export", TMO_NORMAL, (
        _A("instance", ArgKind.OBJECT_DICT, "Instance object"),
        _A("snap_disks", doc="Per disk the disk dict whose dump was written, or False"),
    ), "ganeti.backend.export.FinalizeExport",
        "Writes the export's config.ini and puts the export in place", single=True),
    # --- Moves between clusters: per-move X509 keys (ganeti.backend.crypto) -------------
    RpcCall("x509_cert_create", TMO_NORMAL,
            (_A("validity", doc="Validity of the certificate in seconds"),),
            "ganeti.backend.crypto.CreateX509Certificate",
            "Creates a new X509 key and certificate; returns (name, cert PEM)",
            single=True),
    RpcCall("x509_cert_remove", TMO_NORMAL, (_A("name", doc="Key name"),),
            "ganeti.backend.crypto.RemoveX509Certificate",
            "Removes an X509 key and certificate", single=True),
    # --- The nodes' client certificates (gnt-cluster renew-crypto) --------------------
    RpcCall("node_crypto_tokens", TMO_NORMAL,
            (_A("token_requests", doc="List of (type, action, options): the"
                " digest of the client certificate, after making a new one"
                " for the 'create' action"),),
            "ganeti.backend.crypto.GetCryptoTokens",
            "Return (and optionally renew) the node's crypto tokens", single=True),
]


def _BuildTable(calls: list[RpcCall]) -> dict[str, RpcCall]:
    table: dict[str, RpcCall] = {}
    for call in calls:
        if call.name in table:
            raise errors.ProgrammerError(f"RPC call {call.name} declared twice")
        table[call.name] = call
    return table


#: All calls by name
CALLS: dict[str, RpcCall] = _BuildTable(_CALL_LIST)
