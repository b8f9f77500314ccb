"""Every opcode, declared with Ganeti's names, parameters and defaults.

The list matches Ganeti's opcode list at the revision of the reference
documents (the 3.x line): Ganeti 3.0's 75 opcodes plus OpNetworkRename, 76
in all. :data:`OP_MAPPING` maps each ``OP_ID`` to its class; it is built by
looking at this module, so declaring a class here is all it takes.

The machinery (the :class:`OpCode` base class, shared parameters) lives in
:mod:`ganeti.opcodes_base` and is re-exported here.
"""

from __future__ import annotations

from typing import Any

from ganeti import constants, ht
# Shared checks and helpers, re-exported for users of ganeti.opcodes
from ganeti.opcodes_base import (
    NES as NES, PRIVATE_PARAMS as PRIVATE_PARAMS, REDACTED as REDACTED,
    BuildJobDepCheck as BuildJobDepCheck, NameToId as NameToId,
    OpCode as OpCode, ParamDef as ParamDef, TDiskIndex as TDiskIndex,
    TDiskTemplate as TDiskTemplate, TDiskTemplateParams as TDiskTemplateParams,
    TExportMode as TExportMode,
    TGroupVerifyDisksResult as TGroupVerifyDisksResult,
    THypervisor as THypervisor, TIPv4OrNone as TIPv4OrNone,
    TJobDependencies as TJobDependencies, TNoneOrJobs as TNoneOrJobs,
    TOsListMods as TOsListMods, TPair as TPair,
    TQueryFieldsResponse as TQueryFieldsResponse,
    TQueryResponse as TQueryResponse, TQueryRow as TQueryRow,
    TReasonEntry as TReasonEntry, TRecreateDisksInfo as TRecreateDisksInfo,
    TRepairDiskSizesResult as TRepairDiskSizesResult,
    TSetParamsResult as TSetParamsResult, TStorageType as TStorageType,
    TSubmitPriority as TSubmitPriority, TUidRanges as TUidRanges,
)
# Name checks shared with the parameters of ganeti.opcodes_base
from ganeti.opcodes_base import (
    THostname, THostnameList, TMaybeHostname, TMaybeObjectName, TMaybeUuid,
    TNewTags, TObjectName, TShortString,
)
# Shared parameter declarations
from ganeti.opcodes_base import (
    PAllocPolicy, PAllowRuntimeChanges, PCompress, PDebug,
    PDebugSimulateErrors, PDiskParams, PDiskState, PDiskTemplate,
    PEarlyRelease, PErrorCodes, PFileDriver, PFileStorageDir, PForce,
    PForceVariant, PGroupName, PHotplug, PHotplugIfPossible, PHvState, PHypervisor, PIallocator,
    PIgnoreConsistency, PIgnoreErrors, PIgnoreIpolicy, PIgnoreOfflineNodes,
    PInstanceName, PInstances, PInstanceUuid, PInstBeParams, PInstHvParams,
    PInstOsParams, PInstOsParamsPrivate, PInstOsParamsSecret, PInstTags,
    PIpCheck, PIpConflictsCheck, PIpolicy, PIsStrict, PMasterCapable,
    PMigrationCleanup, PMigrationLive, PMigrationMode, PMigrationTargetNode,
    PMigrationTargetNodeUuid, PNameCheck, PNames, PNdParams, PNetworkAddress6,
    PNetworkAddRsvdIps, PNetworkGateway4, PNetworkGateway6, PNetworkMacPrefix,
    PNetworkName, PNewHostname, PNewName, PNodeName, PNodes, PNodeUuid, PNodeUuids,
    PNoRemember, POffline, POpportunisticLocking, POptGroupName, POsType,
    POutputFields, PPrimaryNode, PPrimaryNodeUuid, PQueryWhat, PRemoteNode,
    PRemoteNodeUuid, PRequiredNodes, PSecondaryIp, PShutdownTimeout,
    PShutdownTimeoutAlt, PSkipChecks, PStatic, PStorageName, PStorageType,
    PTagKind, PTagsList, PTagsName, PTargetGroups, PUseLocking, PVerbose,
    PVerifyClutter, PVmCapable, PWaitForSync, PWaitForSyncFalse,
)

_TMaybeNES = ht.TMaybe(NES)
_TJobIdListOnly = ht.TJobIdListOnly


def _TMaybeOrEmpty(check: ht.Check) -> ht.Check:
    """None, "" (unset, for parameters where it means that) or ``check``."""
    return ht.TMaybe(ht.TOr(ht.TEmptyString, check))


#: Per-OS parameter dicts: {os_name: {...}}
_TPerOsDict = ht.TMaybe(ht.TDictOf(TObjectName, ht.TDict))


# --- Cluster -------------------------------------------------------------------------

class OpClusterPostInit(OpCode):
    """Finish cluster initialisation (runs the post-init hooks)."""
    OP_RESULT = ht.TBool


class OpClusterDestroy(OpCode):
    """Destroy the cluster; the result is the master node's UUID."""
    OP_RESULT = NES


class OpClusterQuery(OpCode):
    """Return the cluster's configuration and state."""
    OP_RESULT = ht.TDict


class OpClusterVerify(OpCode):
    """Verify the cluster: submits one verification job per node group."""
    OP_PARAMS = [
        PDebugSimulateErrors, PErrorCodes, PSkipChecks, PIgnoreErrors,
        PVerbose, POptGroupName, PVerifyClutter,
    ]
    OP_RESULT = _TJobIdListOnly


class OpClusterVerifyConfig(OpCode):
    """Verify the cluster-wide configuration."""
    OP_PARAMS = [PDebugSimulateErrors, PErrorCodes, PIgnoreErrors, PVerbose]
    OP_RESULT = ht.TBool


class OpClusterVerifyGroup(OpCode):
    """Verify the nodes and instances of one node group."""
    OP_DSC_FIELD = "group_name"
    OP_PARAMS = [
        PGroupName, PDebugSimulateErrors, PErrorCodes, PSkipChecks,
        PIgnoreErrors, PVerbose, PVerifyClutter,
    ]
    OP_RESULT = ht.TBool


class OpClusterVerifyDisks(OpCode):
    """Verify the disks of all instances: one job per node group."""
    OP_PARAMS = [POptGroupName, PIsStrict]
    OP_RESULT = _TJobIdListOnly


class OpGroupVerifyDisks(OpCode):
    """Verify the disks of the instances of one node group."""
    OP_DSC_FIELD = "group_name"
    OP_PARAMS = [PGroupName, PIsStrict]
    OP_RESULT = TGroupVerifyDisksResult


class OpClusterRepairDiskSizes(OpCode):
    """Fix recorded disk sizes that differ from the real ones."""
    OP_PARAMS = [PInstances]
    OP_RESULT = TRepairDiskSizesResult


class OpClusterConfigQuery(OpCode):
    """Return selected cluster configuration values."""
    OP_PARAMS = [POutputFields]
    OP_RESULT = ht.TList


class OpClusterRename(OpCode):
    """Rename the cluster (and possibly change its master IP)."""
    OP_DSC_FIELD = "name"
    OP_PARAMS = [
        ("name", ht.NoDefault, THostname, "New name of the cluster"),
    ]
    OP_RESULT = NES


class OpClusterSetParams(OpCode):
    """Change cluster-wide parameters; unset parameters are left alone."""
    OP_PARAMS = [
        PForce, PHvState, PDiskState,
        ("vg_name", None, _TMaybeOrEmpty(ht.TLvmName),
         "LVM volume group (empty to disable LVM)"),
        ("enabled_hypervisors", None, ht.TMaybeListOf(THypervisor),
         "Hypervisors instances may use; the first is the default"),
        ("hvparams", None, ht.TMaybe(ht.TDictOf(THypervisor, ht.TDict)),
         "Hypervisor parameter defaults, per hypervisor"),
        ("beparams", None, ht.TMaybeDict, "Backend parameter defaults"),
        ("os_hvp", None, _TPerOsDict,
         "Hypervisor parameter defaults, per OS"),
        ("osparams", None, _TPerOsDict, "OS parameter defaults, per OS"),
        ("osparams_private_cluster", None, _TPerOsDict,
         "Private OS parameter defaults, per OS"),
        PDiskParams,
        ("candidate_pool_size", None, ht.TMaybePositiveInt,
         "Wanted number of master candidates"),
        ("max_running_jobs", None, ht.TMaybePositiveInt,
         "Most jobs that may run at once"),
        ("max_tracked_jobs", None, ht.TMaybePositiveInt,
         "Most jobs the queue keeps track of"),
        ("uid_pool", None, ht.TMaybe(TUidRanges),
         "New UID pool: [[first, last], ...]"),
        ("add_uids", None, ht.TMaybe(TUidRanges),
         "UID ranges to add to the pool"),
        ("remove_uids", None, ht.TMaybe(TUidRanges),
         "UID ranges to remove from the pool"),
        ("maintain_node_health", None, ht.TMaybeBool,
         "Whether nodes shut down instances and DRBD when offline"),
        ("prealloc_wipe_disks", None, ht.TMaybeBool,
         "Whether new disks are wiped before use"),
        ("nicparams", None, ht.TMaybe(ht.TNicParams), "NIC defaults"),
        PNdParams, PIpolicy,
        ("drbd_helper", None, _TMaybeOrEmpty(ht.TNormAbsPath),
         "DRBD usermode helper (empty to disable the check)"),
        ("default_iallocator", None, _TMaybeOrEmpty(ht.TIallocatorName),
         "Allocator used when none is given"),
        ("default_iallocator_params", None, ht.TMaybeDict,
         "Parameters passed to the default allocator"),
        PNetworkMacPrefix,
        ("master_netdev", None, ht.TMaybe(ht.TInterfaceName),
         "Network device carrying the master IP"),
        ("master_netmask", None, ht.TMaybeNonNegativeInt,
         "Prefix length of the master IP"),
        ("reserved_lvs", None, ht.TMaybeListOf(ht.TRegexPattern),
         "Logical volumes (regular expressions) cluster verify ignores"),
        ("hidden_os", None, ht.TMaybe(TOsListMods),
         "Changes to the hidden OS list: [[\"add\"|\"remove\", os], ...]"),
        ("blacklisted_os", None, ht.TMaybe(TOsListMods),
         "Changes to the blacklisted OS list: [[\"add\"|\"remove\", os], ...]"),
        ("use_external_mip_script", None, ht.TMaybeBool,
         "Whether a site script sets up the master IP"),
        ("enabled_disk_templates", None, ht.TMaybeListOf(TDiskTemplate),
         "Disk templates instances may use; the first is the default"),
        ("modify_etc_hosts", None, ht.TMaybeBool,
         "Whether nodes' /etc/hosts is kept up to date"),
        ("file_storage_dir", None, _TMaybeOrEmpty(ht.TStorageDir),
         "Directory for file-based disks"),
        ("shared_file_storage_dir", None, _TMaybeOrEmpty(ht.TStorageDir),
         "Directory for shared-file disks"),
        ("gluster_storage_dir", None, _TMaybeOrEmpty(ht.TStorageDir),
         "Directory where Gluster volumes are mounted"),
        ("install_image", None, _TMaybeOrEmpty(ht.TPathOrUrl),
         "Image of a helper VM running OS scripts in isolation"),
        ("instance_communication_network", None, _TMaybeOrEmpty(TObjectName),
         "Network for communication between instances and the master"),
        ("zeroing_image", None, _TMaybeOrEmpty(ht.TPathOrUrl),
         "Image used to zero the free space of disks"),
        ("compression_tools", None, ht.TMaybeListOf(ht.TProgramName),
         "Compression tools allowed for moves and exports"),
        ("enabled_user_shutdown", None, ht.TMaybeBool,
         "Whether instances may be shut down from inside"),
        (constants.DATA_COLLECTORS_ENABLED_NAME, None,
         ht.TMaybe(ht.TDictOf(TObjectName, ht.TBool)),
         "Data collectors to turn on or off, by name"),
        (constants.DATA_COLLECTORS_INTERVAL_NAME, None,
         ht.TMaybe(ht.TDictOf(TObjectName, ht.TInt)),
         "Run interval of data collectors, by name"),
    ]
    OP_RESULT = TNoneOrJobs


class OpClusterRedistConf(OpCode):
    """Push the configuration and ancillary files to all nodes."""
    OP_RESULT = ht.TNone


class OpClusterActivateMasterIp(OpCode):
    """Bring up the master IP address on the master node."""
    OP_RESULT = ht.TNone


class OpClusterDeactivateMasterIp(OpCode):
    """Take down the master IP address."""
    OP_RESULT = ht.TNone


class OpClusterRenewCrypto(OpCode):
    """Renew the cluster's certificates and/or SSH keys."""
    OP_PARAMS = [
        ("node_certificates", False, ht.TBool,
         "Renew the nodes' client certificates"),
        ("renew_ssh_keys", False, ht.TBool, "Renew the nodes' SSH keys"),
        ("ssh_key_type", None, ht.TMaybe(ht.TElemOf(constants.SSHK_ALL)),
         "Type of the new SSH keys"),
        ("ssh_key_bits", None, ht.TMaybePositiveInt,
         "Size of the new SSH keys, in bits"),
        PVerbose, PDebug,
    ]
    OP_RESULT = ht.TNone


# --- Queries and node commands ------------------------------------------------------

class OpQuery(OpCode):
    """Query resources with the query language."""
    OP_DSC_FIELD = "what"
    OP_PARAMS = [
        PQueryWhat, PUseLocking,
        ("fields", ht.NoDefault, ht.TListOf(TShortString), "Fields to return"),
        ("qfilter", None, ht.TQueryFilter, "Filter the rows"),
    ]
    OP_RESULT = TQueryResponse


class OpQueryFields(OpCode):
    """Describe the fields available for a kind of resource."""
    OP_DSC_FIELD = "what"
    OP_PARAMS = [
        PQueryWhat,
        ("fields", None, ht.TMaybeListOf(TShortString),
         "Fields to describe (none for all)"),
    ]
    OP_RESULT = TQueryFieldsResponse


class OpOobCommand(OpCode):
    """Run an out-of-band command (power, health) on nodes."""
    OP_PARAMS = [
        ("node_names", ht.EmptyList, THostnameList,
         "Nodes to run the command on"),
        PNodeUuids,
        ("command", ht.NoDefault, ht.TElemOf(constants.OOB_COMMANDS),
         "Out-of-band command"),
        ("timeout", constants.OOB_TIMEOUT, ht.TInt,
         "Seconds before the helper program is killed"),
        ("ignore_status", False, ht.TBool,
         "Power off even nodes not marked offline"),
        ("power_delay", constants.OOB_POWER_DELAY, ht.TNumber,
         "Seconds between powering on two nodes"),
    ]
    OP_RESULT = ht.TListOf(TQueryRow)


class OpRestrictedCommand(OpCode):
    """Run a command from the restricted commands directory on nodes."""
    OP_PARAMS = [
        PUseLocking, PRequiredNodes, PNodeUuids,
        ("command", ht.NoDefault, ht.TProgramName,
         "Name of the restricted command"),
    ]
    OP_RESULT = ht.TListOf(TPair(ht.TBool, ht.TString))


# --- Nodes --------------------------------------------------------------------------

class OpNodeRemove(OpCode):
    """Remove a node from the cluster."""
    OP_DSC_FIELD = "node_name"
    OP_PARAMS = [PNodeName, PNodeUuid]
    OP_RESULT = ht.TNone


class OpNodeAdd(OpCode):
    """Add a node to the cluster (or re-add a known one)."""
    OP_DSC_FIELD = "node_name"
    OP_PARAMS = [
        PNodeName, PHvState, PDiskState,
        ("primary_ip", None, ht.TMaybe(ht.TIPAddress),
         "Primary IP address (default: resolved from the name)"),
        PSecondaryIp,
        ("readd", False, ht.TBool, "Re-add a node already in the cluster"),
        ("group", None, TMaybeObjectName, "Node group to put the node in"),
        PMasterCapable, PVmCapable, PNdParams,
        ("node_setup", False, ht.TBool, "Set up SSH on the new node"),
        # Our extension (doc/design-cluster.rst): per-node daemon ports, so
        # that many nodes can share one machine (None: the default ports)
        ("noded_port", None,
         ht.TMaybe(ht.WithDesc("port number")(ht.TAnd(ht.TInt, ht.Check(
             lambda v: 0 < v < 65536, "between 1 and 65535")))),
         "Port of the new node's node daemon"),
        ("confd_port", None,
         ht.TMaybe(ht.WithDesc("port number")(ht.TAnd(ht.TInt, ht.Check(
             lambda v: 0 < v < 65536, "between 1 and 65535")))),
         "Port of the new node's confd"),
    ]
    OP_RESULT = ht.TNone


class OpNodeQueryvols(OpCode):
    """List the logical volumes on nodes."""
    OP_PARAMS = [POutputFields, PNodes]
    OP_RESULT = ht.TList


class OpNodeQueryStorage(OpCode):
    """List storage units on nodes."""
    OP_PARAMS = [
        POutputFields,
        ("storage_type", None, ht.TMaybe(TStorageType), "Storage type"),
        PNodes, PStorageName,
    ]
    OP_RESULT = ht.TListOf(ht.TList)


class OpNodeModifyStorage(OpCode):
    """Change a storage unit on a node (e.g. mark a PV unallocatable)."""
    OP_DSC_FIELD = "node_name"
    OP_PARAMS = [
        PNodeName, PNodeUuid, PStorageType, PStorageName,
        ("changes", ht.NoDefault, ht.TDict, "Changes to make"),
    ]
    OP_RESULT = ht.TNone


class OpRepairNodeStorage(OpCode):
    """Repair a storage unit on a node."""
    OP_DSC_FIELD = "node_name"
    OP_PARAMS = [
        PNodeName, PNodeUuid, PStorageType, PStorageName, PIgnoreConsistency,
    ]
    OP_RESULT = ht.TNone


class OpNodeSetParams(OpCode):
    """Change a node's roles and parameters."""
    OP_DSC_FIELD = "node_name"
    OP_PARAMS = [
        PNodeName, PNodeUuid, PForce, PHvState, PDiskState,
        ("master_candidate", None, ht.TMaybeBool,
         "Make the node a master candidate or not"),
        POffline,
        ("drained", None, ht.TMaybeBool, "Mark the node drained or not"),
        ("auto_promote", False, ht.TBool,
         "Promote other nodes to master candidates as needed"),
        PMasterCapable, PVmCapable, PSecondaryIp, PNdParams,
        ("powered", None, ht.TMaybeBool, "Record the node as powered or not"),
    ]
    OP_RESULT = TSetParamsResult


class OpNodePowercycle(OpCode):
    """Power-cycle a node through its hypervisor or OS."""
    OP_DSC_FIELD = "node_name"
    OP_PARAMS = [PNodeName, PNodeUuid, PForce]
    OP_RESULT = _TMaybeNES


class OpNodeMigrate(OpCode):
    """Migrate all primary instances away from a node."""
    OP_DSC_FIELD = "node_name"
    OP_PARAMS = [
        PNodeName, PNodeUuid, PMigrationMode, PMigrationLive,
        PMigrationTargetNode, PMigrationTargetNodeUuid, PAllowRuntimeChanges,
        PIgnoreIpolicy, PIallocator,
    ]
    OP_RESULT = _TJobIdListOnly


class OpNodeEvacuate(OpCode):
    """Move instances (primary, secondary or both) off a node."""
    OP_DSC_FIELD = "node_name"
    OP_PARAMS = [
        PEarlyRelease, PNodeName, PNodeUuid, PRemoteNode, PRemoteNodeUuid,
        PIallocator,
        ("mode", ht.NoDefault, ht.TElemOf(constants.NODE_EVAC_MODES),
         "Which instances to move"),
        ("ignore_soft_errors", None, ht.TMaybeBool,
         "Tell the allocator to ignore soft errors"),
    ]
    OP_RESULT = _TJobIdListOnly


# --- Instances ------------------------------------------------------------------------

class OpInstanceCreate(OpCode):
    """Create an instance (new, imported, or received from another cluster)."""
    OP_DSC_FIELD = "instance_name"
    OP_PARAMS = [
        PInstanceName, PForceVariant, PWaitForSync, PNameCheck,
        PIgnoreIpolicy, POpportunisticLocking, PInstBeParams,
        ("disks", ht.NoDefault, ht.TListOf(ht.TDiskParams),
         "Disk definitions: size, mode, vg, ... per disk"),
        PDiskTemplate, POptGroupName, PFileDriver, PFileStorageDir,
        PInstHvParams, PHypervisor, PIallocator,
        ("identify_defaults", False, ht.TBool,
         "Store parameters equal to the defaults as defaults"),
        PIpCheck, PIpConflictsCheck,
        ("mode", ht.NoDefault, ht.TElemOf(constants.INSTANCE_CREATE_MODES),
         "How the instance is created"),
        ("nics", ht.NoDefault, ht.TListOf(ht.TNicParams),
         "NIC definitions: mac, ip, mode, link, ... per NIC"),
        ("no_install", None, ht.TMaybeBool,
         "Do not install the OS (the instance is not started either)"),
        PInstOsParams, PInstOsParamsPrivate, PInstOsParamsSecret, POsType,
        PPrimaryNode, PPrimaryNodeUuid,
        ("snode", None, TMaybeHostname, "Secondary node"),
        ("snode_uuid", None, TMaybeUuid, "UUID of the secondary node"),
        ("source_handshake", None, ht.TMaybeList,
         "Signed handshake from the source cluster (remote import)"),
        ("source_instance_name", None, TMaybeHostname,
         "Name of the instance on the source cluster (remote import)"),
        ("source_shutdown_timeout", constants.DEFAULT_SHUTDOWN_TIMEOUT,
         ht.TNonNegativeInt,
         "Seconds the source instance had to shut down (remote import)"),
        ("source_x509_ca", None, ht.TMaybe(ht.TText(ht.MAX_PEM_LEN)),
         "X509 CA of the source cluster, PEM (remote import)"),
        ("src_node", None, TMaybeHostname, "Node holding the export (import)"),
        ("src_node_uuid", None, TMaybeUuid, "UUID of that node"),
        ("src_path", None, ht.TMaybe(ht.TNormAbsPath),
         "Directory of the export (import)"),
        PCompress,
        ("start", True, ht.TBool, "Start the instance once created"),
        ("forthcoming", False, ht.TBool,
         "Only reserve the resources; do not create anything"),
        ("commit", False, ht.TBool, "Create an instance reserved earlier"),
        PInstTags,
        ("instance_communication", False, ht.TBool,
         "Give the instance a NIC for talking to the master"),
        ("helper_startup_timeout", None, ht.TMaybeInt,
         "Seconds the helper VM may take to start"),
        ("helper_shutdown_timeout", None, ht.TMaybeInt,
         "Seconds the helper VM may take to stop"),
    ]
    OP_RESULT = ht.TListOf(NES)


class OpInstanceMultiAlloc(OpCode):
    """Allocate nodes for several new instances at once, then create them.

    ``instances`` holds OpInstanceCreate opcodes; dicts (with or without
    "OP_ID") are turned into them on construction and loading.
    """
    OP_PARAMS = [
        POpportunisticLocking, PIallocator,
        ("instances", ht.EmptyList, ht.TListOf(ht.TInstanceOf(OpInstanceCreate)),
         "OpInstanceCreate opcodes of the instances to create"),
    ]
    OP_RESULT = ht.TStrictDict(True, True, {
        constants.JOB_IDS_KEY: ht.TJobIdList,
        constants.ALLOCATABLE_KEY: ht.TListOf(ht.TNonEmptyString),
        constants.FAILED_KEY: ht.TListOf(ht.TNonEmptyString),
    })
    ALLOCATABLE_KEY = constants.ALLOCATABLE_KEY
    FAILED_KEY = constants.FAILED_KEY

    def Validate(self, set_defaults: bool) -> None:
        """Validate the nested OpInstanceCreate opcodes, then this one."""
        for inst in getattr(self, "instances", None) or []:
            if isinstance(inst, OpCode):
                inst.Validate(set_defaults)
        super().Validate(set_defaults)

    def _PostLoad(self) -> None:
        instances = getattr(self, "instances", None)
        if isinstance(instances, (list, tuple)):
            self.instances = [self._ToCreateOp(inst) for inst in instances]

    @staticmethod
    def _ToCreateOp(inst: Any) -> Any:
        if isinstance(inst, dict):
            data = dict(inst)
            data.setdefault("OP_ID", OpInstanceCreate.OP_ID)
            return OpInstanceCreate.LoadOpCode(data)
        return inst


class OpInstanceReinstall(OpCode):
    """Reinstall the OS of an instance."""
    OP_DSC_FIELD = "instance_name"
    OP_PARAMS = [
        PInstanceName, PInstanceUuid, PForceVariant, POsType,
        ("osparams", None, ht.TMaybeDict,
         "OS parameters for this reinstall only"),
        ("osparams_private", None, ht.TMaybeDict,
         "Private OS parameters for this reinstall only"),
        ("osparams_secret", None, ht.TMaybeDict,
         "Secret OS parameters for this reinstall only"),
    ]
    OP_RESULT = ht.TNone


class OpInstanceRemove(OpCode):
    """Remove an instance and its disks."""
    OP_DSC_FIELD = "instance_name"
    OP_PARAMS = [
        PInstanceName, PInstanceUuid, PShutdownTimeout,
        ("ignore_failures", False, ht.TBool,
         "Remove from the configuration even if cleanup fails"),
    ]
    OP_RESULT = ht.TNone


class OpInstanceRename(OpCode):
    """Rename an instance; the result is the new name."""
    OP_PARAMS = [PInstanceName, PInstanceUuid, PNewHostname, PNameCheck,
                 PIpCheck]
    OP_RESULT = NES


class OpInstanceStartup(OpCode):
    """Start an instance."""
    OP_DSC_FIELD = "instance_name"
    OP_PARAMS = [
        PInstanceName, PInstanceUuid, PForce, PIgnoreOfflineNodes,
        ("hvparams", ht.EmptyDict, ht.TDict,
         "Hypervisor parameters for this start only"),
        ("beparams", ht.EmptyDict, ht.TDict,
         "Backend parameters for this start only"),
        PNoRemember,
        ("startup_paused", False, ht.TBool, "Start with the CPUs paused"),
        PShutdownTimeout,
    ]
    OP_RESULT = ht.TNone


class OpInstanceShutdown(OpCode):
    """Stop an instance."""
    OP_DSC_FIELD = "instance_name"
    OP_PARAMS = [
        PInstanceName, PInstanceUuid, PForce, PIgnoreOfflineNodes,
        PShutdownTimeoutAlt, PNoRemember,
        ("admin_state_source", None,
         ht.TMaybe(ht.TElemOf(constants.INSTANCE_STATE_SOURCES)),
         "Who stopped the instance (admin or user)"),
    ]
    OP_RESULT = ht.TNone


class OpInstanceReboot(OpCode):
    """Reboot an instance."""
    OP_DSC_FIELD = "instance_name"
    OP_PARAMS = [
        PInstanceName, PInstanceUuid, PShutdownTimeout,
        ("ignore_secondaries", False, ht.TBool,
         "Start even if the secondary disks are failing (full reboot)"),
        ("reboot_type", ht.NoDefault, ht.TElemOf(constants.REBOOT_TYPES),
         "Kind of reboot"),
    ]
    OP_RESULT = ht.TNone


class OpInstanceReplaceDisks(OpCode):
    """Replace the disks of a mirrored instance, or its secondary node."""
    OP_DSC_FIELD = "instance_name"
    OP_PARAMS = [
        PInstanceName, PInstanceUuid, PEarlyRelease, PIgnoreIpolicy,
        ("mode", ht.NoDefault, ht.TElemOf(constants.REPLACE_MODES),
         "Which disks to replace, or where"),
        ("disks", ht.EmptyList, ht.TListOf(TDiskIndex),
         "Indices of the disks to replace (empty for all)"),
        PRemoteNode, PRemoteNodeUuid, PIallocator,
    ]
    OP_RESULT = ht.TNone


class OpInstanceFailover(OpCode):
    """Fail an instance over to its secondary (or another) node."""
    OP_DSC_FIELD = "instance_name"
    OP_PARAMS = [
        PInstanceName, PInstanceUuid, PShutdownTimeout, PIgnoreConsistency,
        PMigrationTargetNode, PMigrationTargetNodeUuid, PIgnoreIpolicy,
        PMigrationCleanup, PIallocator,
    ]
    OP_RESULT = ht.TNone


class OpInstanceMigrate(OpCode):
    """Migrate a running instance to its secondary (or another) node."""
    OP_DSC_FIELD = "instance_name"
    OP_PARAMS = [
        PInstanceName, PInstanceUuid, PMigrationMode, PMigrationLive,
        PMigrationTargetNode, PMigrationTargetNodeUuid, PAllowRuntimeChanges,
        PIgnoreIpolicy, PMigrationCleanup, PIallocator,
        ("allow_failover", False, ht.TBool,
         "Fail over instead if migration is impossible"),
        ("ignore_hvversions", False, ht.TBool,
         "Only warn about differing hypervisor versions"),
    ]
    OP_RESULT = ht.TNone


class OpInstanceMove(OpCode):
    """Move an instance by copying its disks to another node."""
    OP_DSC_FIELD = "instance_name"
    OP_PARAMS = [
        PInstanceName, PInstanceUuid, PShutdownTimeout, PIgnoreIpolicy,
        ("target_node", ht.NoDefault, THostname, "Node to move to"),
        ("target_node_uuid", None, TMaybeUuid, "UUID of that node"),
        PCompress, PIgnoreConsistency,
    ]
    OP_RESULT = ht.TNone


class OpInstanceConsole(OpCode):
    """Return how to connect to an instance's console."""
    OP_DSC_FIELD = "instance_name"
    OP_PARAMS = [PInstanceName, PInstanceUuid]
    OP_RESULT = ht.TDict


class OpInstanceActivateDisks(OpCode):
    """Activate an instance's disks; the result lists their devices."""
    OP_DSC_FIELD = "instance_name"
    OP_PARAMS = [
        PInstanceName, PInstanceUuid,
        ("ignore_size", False, ht.TBool,
         "Ignore the recorded disk sizes (to repair them)"),
        PWaitForSyncFalse,
    ]
    OP_RESULT = ht.TListOf(ht.TAnd(ht.TIsLength(3), ht.TItems([
        ht.Comment("node")(NES),
        ht.Comment("disk name")(NES),
        ht.Comment("device path")(_TMaybeNES),
    ])))


class OpInstanceDeactivateDisks(OpCode):
    """Deactivate an instance's disks."""
    OP_DSC_FIELD = "instance_name"
    OP_PARAMS = [PInstanceName, PInstanceUuid, PForce]
    OP_RESULT = ht.TNone


class OpInstanceRecreateDisks(OpCode):
    """Recreate an instance's disks (empty), possibly on other nodes."""
    OP_DSC_FIELD = "instance_name"
    OP_PARAMS = [
        PInstanceName, PInstanceUuid,
        ("disks", ht.EmptyList, TRecreateDisksInfo,
         "Disks to recreate (empty for all), with changed parameters"),
        ("nodes", ht.EmptyList, THostnameList,
         "New nodes of the instance, to relocate it"),
        PNodeUuids, PIallocator,
    ]
    OP_RESULT = ht.TNone


class OpInstanceQueryData(OpCode):
    """Return detailed data about instances."""
    OP_PARAMS = [PUseLocking, PInstances, PStatic]
    OP_RESULT = ht.TDictOf(ht.TString, ht.TDict)


class OpInstanceSetParams(OpCode):
    """Change an instance's parameters, disks and NICs."""
    OP_DSC_FIELD = "instance_name"
    OP_PARAMS = [
        PInstanceName, PInstanceUuid, PForce, PForceVariant, PIgnoreIpolicy,
        ("nics", ht.EmptyList, ht.TSetParamsMods(ht.TNicParams),
         "NIC changes: [[action, index, params], ...]"),
        ("disks", ht.EmptyList, ht.TSetParamsMods(ht.TDiskParams),
         "Disk changes: [[action, index, params], ...]"),
        PInstBeParams,
        ("runtime_mem", None, ht.TMaybePositiveInt,
         "Memory to give the running instance (ballooning)"),
        PInstHvParams, PDiskTemplate,
        ("ext_params", ht.EmptyDict, ht.TDict,
         "ExtStorage parameters (when converting to ext)"),
        PFileDriver, PFileStorageDir, PPrimaryNode, PPrimaryNodeUuid,
        PRemoteNode, PRemoteNodeUuid, PIallocator,
        ("os_name", None, TMaybeObjectName,
         "Record a new OS without reinstalling"),
        PInstOsParams, PInstOsParamsPrivate, PWaitForSync, POffline,
        PIpConflictsCheck, PHotplug, PHotplugIfPossible,
        ("instance_communication", None, ht.TMaybeBool,
         "Add or remove the NIC for talking to the master"),
    ]
    OP_RESULT = TSetParamsResult


class OpInstanceGrowDisk(OpCode):
    """Grow one disk of an instance."""
    OP_DSC_FIELD = "instance_name"
    OP_PARAMS = [
        PInstanceName, PInstanceUuid, PWaitForSync,
        ("disk", ht.NoDefault, TDiskIndex, "Index of the disk"),
        ("amount", ht.NoDefault, ht.TNonNegativeInt,
         "MiB to add, or the new size if absolute"),
        ("absolute", False, ht.TBool, "The amount is the new size"),
        PIgnoreIpolicy,
    ]
    OP_RESULT = ht.TNone


class OpInstanceChangeGroup(OpCode):
    """Move an instance to another node group."""
    OP_DSC_FIELD = "instance_name"
    OP_PARAMS = [
        PInstanceName, PInstanceUuid, PEarlyRelease, PIallocator,
        PTargetGroups,
    ]
    OP_RESULT = _TJobIdListOnly


# --- Node groups -----------------------------------------------------------------------

class OpGroupAdd(OpCode):
    """Create a node group."""
    OP_DSC_FIELD = "group_name"
    OP_PARAMS = [
        PGroupName, PAllocPolicy, PNdParams, PDiskParams, PHvState,
        PDiskState, PIpolicy,
    ]
    OP_RESULT = TNoneOrJobs


class OpGroupAssignNodes(OpCode):
    """Move nodes into a node group."""
    OP_DSC_FIELD = "group_name"
    OP_PARAMS = [PGroupName, PForce, PRequiredNodes, PNodeUuids]
    OP_RESULT = ht.TNone


class OpGroupSetParams(OpCode):
    """Change a node group's parameters."""
    OP_DSC_FIELD = "group_name"
    OP_PARAMS = [
        PGroupName, PAllocPolicy, PNdParams, PDiskParams, PHvState,
        PDiskState, PIpolicy,
    ]
    OP_RESULT = TSetParamsResult


class OpGroupRemove(OpCode):
    """Remove an empty node group."""
    OP_DSC_FIELD = "group_name"
    OP_PARAMS = [PGroupName]
    OP_RESULT = ht.TNone


class OpGroupRename(OpCode):
    """Rename a node group; the result is the new name."""
    OP_PARAMS = [PGroupName, PNewName]
    OP_RESULT = NES


class OpGroupEvacuate(OpCode):
    """Move all instances out of a node group."""
    OP_DSC_FIELD = "group_name"
    OP_PARAMS = [
        PGroupName, PEarlyRelease, PIallocator, PTargetGroups,
        (constants.OPCODE_SEQUENTIAL, False, ht.TBool,
         "Run the resulting jobs one after the other"),
        ("force_failover", False, ht.TBool,
         "Always fail over; never migrate"),
    ]
    OP_RESULT = _TJobIdListOnly


# --- OS and ExtStorage -------------------------------------------------------------------

class OpOsDiagnose(OpCode):
    """Report the OS definitions found on the nodes."""
    OP_PARAMS = [POutputFields, PNames]
    OP_RESULT = ht.TListOf(ht.TList)


class OpExtStorageDiagnose(OpCode):
    """Report the ExtStorage providers found on the nodes."""
    OP_PARAMS = [POutputFields, PNames]
    OP_RESULT = ht.TListOf(ht.TList)


# --- Exports --------------------------------------------------------------------------

class OpBackupPrepare(OpCode):
    """Prepare an export (for remote exports: keys and certificates)."""
    OP_DSC_FIELD = "instance_name"
    OP_PARAMS = [
        PInstanceName, PInstanceUuid,
        ("mode", ht.NoDefault, TExportMode, "Export mode"),
    ]
    OP_RESULT = ht.TMaybeDict


class OpBackupExport(OpCode):
    """Export an instance to a node or to another cluster."""
    OP_DSC_FIELD = "instance_name"
    OP_PARAMS = [
        PInstanceName, PInstanceUuid, PCompress, PShutdownTimeout,
        ("target_node", ht.NoDefault, ht.TOr(THostname, ht.TList),
         "Node name (local) or list of disk destinations (remote)"),
        ("target_node_uuid", None, TMaybeUuid,
         "UUID of the target node (local export)"),
        ("shutdown", True, ht.TBool, "Shut the instance down first"),
        ("remove_instance", False, ht.TBool, "Remove the instance afterwards"),
        ("ignore_remove_failures", False, ht.TBool,
         "Ignore failures while removing the instance"),
        ("mode", constants.EXPORT_MODE_LOCAL, TExportMode, "Export mode"),
        ("x509_key_name", None, ht.TMaybeList,
         "Name and signature of the X509 key (remote export)"),
        ("destination_x509_ca", None, ht.TMaybe(ht.TText(ht.MAX_PEM_LEN)),
         "X509 CA of the destination, PEM (remote export)"),
        ("zero_free_space", False, ht.TBool,
         "Zero the free space of the disks first"),
        ("zeroing_timeout_fixed", None, ht.TMaybeInt,
         "Fixed part of the zeroing timeout, seconds"),
        ("zeroing_timeout_per_mib", None, ht.TMaybe(ht.TNumber),
         "Per-MiB part of the zeroing timeout, seconds"),
        ("long_sleep", False, ht.TBool,
         "Allow the instance to stay down for a long export"),
    ]
    OP_RESULT = TPair(ht.Comment("finalized")(ht.TBool),
                      ht.Comment("per-disk success")(ht.TListOf(ht.TBool)))


class OpBackupRemove(OpCode):
    """Remove the exports of an instance."""
    OP_DSC_FIELD = "instance_name"
    OP_PARAMS = [PInstanceName, PInstanceUuid]
    OP_RESULT = ht.TNone


# --- Tags -------------------------------------------------------------------------------

class OpTagsGet(OpCode):
    """Return the tags of an object."""
    OP_DSC_FIELD = "name"
    OP_PARAMS = [PTagKind, PUseLocking, PTagsName]
    OP_RESULT = ht.TListOf(NES)


class OpTagsSearch(OpCode):
    """Find tags matching a regular expression, on all objects."""
    OP_DSC_FIELD = "pattern"
    OP_PARAMS = [
        ("pattern", ht.NoDefault, ht.TAnd(NES, ht.TRegexPattern),
         "Regular expression to search for"),
    ]
    OP_RESULT = ht.TListOf(TPair(NES, NES))


class OpTagsSet(OpCode):
    """Add tags to an object."""
    OP_PARAMS = [PTagKind, PTagsList, PTagsName]
    OP_RESULT = ht.TNone


class OpTagsDel(OpCode):
    """Remove tags from an object."""
    OP_PARAMS = [PTagKind, PTagsList, PTagsName]
    OP_RESULT = ht.TNone


# --- Testing and debugging ------------------------------------------------------------------

class OpTestDelay(OpCode):
    """Sleep on the master and/or nodes (for testing locking and the queue)."""
    OP_DSC_FIELD = "duration"
    OP_PARAMS = [
        ("duration", ht.NoDefault, ht.TNumber, "Seconds to sleep"),
        ("on_master", True, ht.TBool, "Sleep on the master"),
        ("on_nodes", ht.EmptyList, THostnameList, "Nodes to sleep on"),
        ("on_node_uuids", None, ht.TMaybeListOf(TObjectName),
         "UUIDs of those nodes (filled in by the master)"),
        ("repeat", 0, ht.TNonNegativeInt, "How many more times to sleep"),
        ("interruptible", False, ht.TBool,
         "Allow interrupting the sleep through a socket"),
        ("no_locks", True, ht.TBool, "Take no locks while sleeping"),
    ]
    OP_RESULT = ht.TNone


class OpTestAllocator(OpCode):
    """Run an allocator on a request (or only build the request)."""
    OP_DSC_FIELD = "iallocator"
    OP_PARAMS = [
        ("direction", ht.NoDefault,
         ht.TElemOf(constants.IALLOCATOR_TEST_DIRS),
         "\"in\" returns the request, \"out\" runs the allocator"),
        ("mode", ht.NoDefault, ht.TElemOf(constants.VALID_IALLOCATOR_MODES),
         "Kind of request"),
        ("name", ht.NoDefault, THostname,
         "Instance or node the request is about"),
        ("nics", None, ht.TMaybeListOf(ht.TNicParams), "NICs of the instance"),
        ("disks", None, ht.TMaybeList, "Disks of the instance"),
        PHypervisor, PIallocator, PInstTags,
        ("memory", None, ht.TMaybeNonNegativeInt, "Memory of the instance"),
        ("vcpus", None, ht.TMaybeNonNegativeInt, "VCPUs of the instance"),
        ("os", None, TMaybeObjectName, "OS of the instance"),
        PDiskTemplate,
        ("instances", None, ht.TMaybeListOf(THostname), "Instances concerned"),
        ("evac_mode", None, ht.TMaybe(ht.TElemOf(constants.NODE_EVAC_MODES)),
         "Evacuation mode"),
        PTargetGroups,
        ("spindle_use", 1, ht.TNonNegativeInt, "Spindles of the instance"),
        ("count", 1, ht.TNonNegativeInt, "Number of instances"),
        POptGroupName,
    ]
    OP_RESULT = ht.TString


class OpTestJqueue(OpCode):
    """Exercise the job queue (notifications, log messages, failure)."""
    OP_PARAMS = [
        ("notify_waitlock", False, ht.TBool,
         "Report when waiting for locks"),
        ("notify_exec", False, ht.TBool, "Report when starting to run"),
        ("log_messages", ht.EmptyList, ht.TListOf(ht.TText(ht.MAX_TEXT_LEN)),
         "Messages to log"),
        ("fail", False, ht.TBool, "Fail at the end"),
    ]
    OP_RESULT = ht.TBool


class OpTestOsParams(OpCode):
    """Check how secret OS parameters are handled (for testing)."""
    OP_PARAMS = [PInstOsParamsSecret]
    OP_RESULT = ht.TNone


class OpTestDummy(OpCode):
    """Do nothing, with a given result, messages, failure or jobs."""
    OP_PARAMS = [
        ("result", ht.NoDefault, ht.TAny, "Result to return"),
        ("messages", ht.NoDefault, ht.TAny, "Messages to log"),
        ("fail", ht.NoDefault, ht.TAny, "Whether to fail"),
        ("submit_jobs", ht.NoDefault, ht.TAny, "Jobs to submit"),
    ]
    OP_RESULT = ht.TAny


# --- Networks --------------------------------------------------------------------------------

class OpNetworkAdd(OpCode):
    """Create a network (an IP range with an address pool)."""
    OP_DSC_FIELD = "network_name"
    OP_PARAMS = [
        PNetworkName,
        ("network", ht.NoDefault, ht.TIPv4Network, "IPv4 network (CIDR)"),
        ("gateway", None, ht.TMaybeIPv4Address, "IPv4 gateway"),
        ("network6", None, ht.TMaybeIPv6Network, "IPv6 network (CIDR)"),
        ("gateway6", None, ht.TMaybeIPv6Address, "IPv6 gateway"),
        PNetworkMacPrefix, PNetworkAddRsvdIps, PIpConflictsCheck,
        ("tags", ht.EmptyList, TNewTags, "Tags of the network"),
    ]
    OP_RESULT = ht.TNone


class OpNetworkRemove(OpCode):
    """Remove a network that no node group uses."""
    OP_DSC_FIELD = "network_name"
    OP_PARAMS = [PNetworkName, PForce]
    OP_RESULT = ht.TNone


class OpNetworkRename(OpCode):
    """Rename a network; the result is the new name."""
    OP_PARAMS = [PNetworkName, PNewName]
    OP_RESULT = NES


class OpNetworkSetParams(OpCode):
    """Change a network's gateways, MAC prefix and reservations."""
    OP_DSC_FIELD = "network_name"
    OP_PARAMS = [
        PNetworkName, PNetworkGateway4, PNetworkAddress6, PNetworkGateway6,
        PNetworkMacPrefix, PNetworkAddRsvdIps,
        ("remove_reserved_ips", None, ht.TMaybeListOf(ht.TIPv4Address),
         "IP addresses to release"),
    ]
    OP_RESULT = ht.TNone


class OpNetworkConnect(OpCode):
    """Connect a network to a node group."""
    OP_DSC_FIELD = "network_name"
    OP_PARAMS = [
        PGroupName, PNetworkName,
        ("network_mode", ht.NoDefault, ht.TElemOf(constants.NIC_VALID_MODES),
         "NIC mode in this group"),
        ("network_link", ht.NoDefault, ht.TInterfaceName,
         "NIC link in this group"),
        ("network_vlan", "", ht.TOr(ht.TEmptyString, TShortString),
         "VLAN in this group"),
        PIpConflictsCheck,
    ]
    OP_RESULT = ht.TNone


class OpNetworkDisconnect(OpCode):
    """Disconnect a network from a node group."""
    OP_DSC_FIELD = "network_name"
    OP_PARAMS = [PGroupName, PNetworkName]
    OP_RESULT = ht.TNone


# --- Registry ----------------------------------------------------------------------------------

def _BuildMapping() -> dict[str, type[OpCode]]:
    """Collect every opcode class declared in this module, by OP_ID."""
    mapping: dict[str, type[OpCode]] = {}
    for obj in list(globals().values()):
        if not (isinstance(obj, type) and issubclass(obj, OpCode)
                and obj is not OpCode and obj.__module__ == __name__):
            continue
        if obj.OP_ID in mapping:
            raise TypeError(f"OP_ID {obj.OP_ID} declared twice")
        mapping[obj.OP_ID] = obj
    return mapping


#: OP_ID -> opcode class, for every opcode
OP_MAPPING: dict[str, type[OpCode]] = _BuildMapping()
