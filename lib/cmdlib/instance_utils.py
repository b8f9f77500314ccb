"""Helpers shared by the instance LUs (one module per operation).

Name expansion, the RPC form of an instance, disk creation and removal on
the nodes, node memory and storage checks, and the instance policy
(ipolicy) checks. LUs for further operations (reinstall, rename, modify,
failover, ...) build on these.
"""

from __future__ import annotations

import ipaddress
import os
from typing import Any, ClassVar

from ganeti import constants, errors, locking, objects, utils
from ganeti.cmdlib import disks as disks_mod
from ganeti.cmdlib import instance_nics
from ganeti.cmdlib.base import FeedbackFn, LogicalUnit, NodeName  # noqa: F401 - for the LUs
from ganeti.cmdlib.group import ComputeIPolicySpecViolation  # noqa: F401 - for the LUs
from ganeti.hypervisor.base import HvInstanceState
from ganeti.rpc.defs import InstanceDict


#: Admin states in which an instance counts as down (Ganeti's INSTANCE_DOWN)
INSTANCE_DOWN = frozenset([constants.ADMINST_DOWN])
#: ... or at least not meant to run (Ganeti's INSTANCE_NOT_RUNNING)
INSTANCE_NOT_RUNNING = frozenset([constants.ADMINST_DOWN, constants.ADMINST_OFFLINE])


def CheckNewInstanceName(name: str) -> str:
    """The lower-cased ``name``; OpPrereqError if it cannot name an instance."""
    new_name = (name or "").strip().lower()
    if not new_name or "/" in new_name or any(ch.isspace() for ch in new_name):
        raise errors.OpPrereqError(f"Invalid instance name '{name}'", errors.ECODE_INVAL)
    return new_name


def ResolveInstanceName(name: str) -> utils.Hostname:
    """Resolve an instance name (the name check); OpPrereqError
    (ECODE_RESOLVER) pointing at --no-name-check if it does not resolve."""
    try:
        return utils.Hostname(name)
    except errors.ResolverError as err:
        raise errors.OpPrereqError(
            f"Cannot resolve instance name '{name}': {err.args[-1]}"
            " (use --no-name-check to skip this check)",
            errors.ECODE_RESOLVER) from None


def CheckInstanceIpFree(ip: str, name: str) -> None:
    """The IP check: OpPrereqError (ECODE_NOTUNIQUE) if ``ip`` answers."""
    if utils.TcpPing(ip, constants.DEFAULT_NODED_PORT, timeout=1):
        raise errors.OpPrereqError(f"IP {ip} of instance {name} already in use",
                                   errors.ECODE_NOTUNIQUE)


# --- disk and NIC values (``where`` ends the messages, e.g. " for disk 0") ---------------

def ParseDiskSize(value: Any, where: str = "") -> int:
    """A disk size with units as positive MiB; the error names the value."""
    try:
        size = utils.ParseUnit(value)
    except errors.UnitParseError as err:
        raise errors.OpPrereqError(f"Invalid disk size '{value}'{where}: {err}",
                                   errors.ECODE_INVAL) from None
    if size <= 0:
        raise errors.OpPrereqError(f"Invalid disk size '{value}'{where}: must be positive",
                                   errors.ECODE_INVAL)
    return size


def CheckDiskMode(mode: Any, where: str = "") -> None:
    """OpPrereqError unless ``mode`` is a disk access mode."""
    if mode not in constants.DISK_ACCESS_SET:
        raise errors.OpPrereqError(
            f"Invalid disk access mode '{mode}'{where} (valid:"
            f" {', '.join(sorted(constants.DISK_ACCESS_SET))})", errors.ECODE_INVAL)


def NormalizeNicMac(mac: str, where: str = "") -> str:
    """A MAC address in its normal form ("auto" and "generate" unchanged)."""
    if mac in (constants.VALUE_AUTO, constants.VALUE_GENERATE):
        return mac
    try:
        return utils.NormalizeAndValidateMac(mac)
    except errors.OpPrereqError:
        raise errors.OpPrereqError(f"Invalid MAC address '{mac}'{where}",
                                   errors.ECODE_INVAL) from None


def AssignNicMac(cfg: Any, nic: objects.NIC, idx: int, ec_id: Any,
                 owned_macs: frozenset[str] | set[str] = frozenset()) -> None:
    """Give NIC ``idx`` a generated MAC (``auto``/``generate``) or reserve its
    own under the job's execution context, unless the instance owns that MAC
    already; give it a UUID if it has none. OpPrereqError (ECODE_NOTUNIQUE)
    naming the NIC when the MAC is taken."""
    try:
        if nic.mac in (constants.VALUE_AUTO, constants.VALUE_GENERATE):
            nic.mac = cfg.GenerateMAC(nic.network, ec_id)
        elif nic.mac not in owned_macs:
            cfg.ReserveMAC(nic.mac, ec_id)
    except errors.ReservationError as err:
        raise errors.OpPrereqError(f"NIC {idx}: {err}", errors.ECODE_NOTUNIQUE) from None
    if not nic.uuid:
        nic.uuid = cfg.GenerateUniqueID(ec_id)


def NormalizeNicIp(ip: Any, where: str = "") -> str:
    """An IP address in its normal form; the error names the value."""
    try:
        return str(ipaddress.ip_address(ip))
    except ValueError:
        raise errors.OpPrereqError(f"Invalid IP address '{ip}'{where}",
                                   errors.ECODE_INVAL) from None


def ExpandInstance(cfg: Any, name: str) -> objects.Instance:
    """The configured instance ``name`` (full or abbreviated), or
    OpPrereqError (ECODE_NOENT)."""
    expanded = cfg.ExpandInstanceName(name) if name else None
    inst = cfg.GetInstanceInfoByName(expanded) if expanded else None
    if inst is None:
        raise errors.OpPrereqError(f"Instance '{name}' not known", errors.ECODE_NOENT)
    return inst


def ExpandInstanceName(cfg: Any, name: str) -> str:
    """The full name of the configured instance ``name`` abbreviates."""
    return ExpandInstance(cfg, name).name




class InstanceLU(LogicalUnit):
    """Base of the LUs acting on one existing instance.

    Locks the instance (by name), then its nodes at the node level; the
    Big Ganeti Lock is shared. ``self.instance`` is set in CheckPrereq.
    Subclasses that run hooks set ``HPATH``; without it (the default) the
    hook methods below are never called.
    """

    HPATH: ClassVar[str | None] = None
    HTYPE = constants.HTYPE_INSTANCE
    REQ_BGL = False
    #: Whether node resource locks are also taken (operations changing usage)
    LOCK_NODE_RES = False
    #: Whether the LU works on an instance whose creation did not finish
    ALLOW_FORTHCOMING = False
    cfg: Any

    def ExpandNames(self) -> None:
        """Resolve the instance; lock it, then (DeclareLocks) its nodes."""
        inst = ExpandInstance(self.cfg, self.op.instance_name)
        self.op.instance_name = inst.name
        self.op.instance_uuid = inst.uuid
        self.needed_locks = {locking.LEVEL_INSTANCE: [inst.name],
                             locking.LEVEL_NODE: []}
        if self.LOCK_NODE_RES:
            self.needed_locks[locking.LEVEL_NODE_RES] = []

    def DeclareLocks(self, level: int) -> None:
        """The nodes of the (locked) instance."""
        if level in (locking.LEVEL_NODE, locking.LEVEL_NODE_RES) and \
                self.needed_locks is not None and level in self.needed_locks:
            self.needed_locks[level] = list(
                self.cfg.GetInstanceNodes(self.op.instance_uuid))

    def CheckPrereq(self) -> None:
        """Load the instance (it may have changed before the lock was held)."""
        inst = self.cfg.GetInstanceInfo(self.op.instance_uuid)
        if inst is None:
            raise errors.OpPrereqError(
                f"Instance '{self.op.instance_name}' was removed meanwhile",
                errors.ECODE_NOENT)
        if not self.ALLOW_FORTHCOMING:
            CheckNotForthcoming(inst)
        self.instance = inst

    def BuildHooksEnv(self) -> dict[str, Any]:
        """The standard instance variables."""
        from ganeti import hooksmaster
        return hooksmaster.BuildInstanceHookEnv(self.cfg, self.instance)

    def BuildHooksNodes(self) -> tuple[list[str], list[str]]:
        """The master and the instance's nodes."""
        nodes = [self.cfg.GetMasterNode(), *self.cfg.GetInstanceNodes(self.instance.uuid)]
        return nodes, nodes


def CheckNotForthcoming(instance: objects.Instance) -> None:
    """OpPrereqError (ECODE_STATE) for an instance whose creation did not
    finish: the master daemon removes it (:mod:`ganeti.instance_cleanup`)."""
    if instance.forthcoming and \
            instance.admin_state == constants.ADMINST_OFFLINE:
        # A reservation (cmdlib/instance_forthcoming.py)
        raise errors.OpPrereqError(
            f"Instance '{instance.name}' is forthcoming (reserved, not created):"
            " create it with gnt-instance add --commit, or remove it",
            errors.ECODE_STATE)
    if instance.forthcoming:
        raise errors.OpPrereqError(
            f"Instance '{instance.name}' was never completely created: its creation"
            " did not finish and the master daemon is removing it (it may only be"
            " removed)", errors.ECODE_STATE)


# --- the RPC form of an instance ---------------------------------------------------------

def InstanceRpcDict(cfg: Any, instance: objects.Instance,
                    hvparams: dict[str, Any] | None = None,
                    beparams: dict[str, Any] | None = None,
                    disks: list[objects.Disk] | None = None) -> dict[str, Any]:
    """The instance as node calls want it: whole disks, filled parameters,
    NICs with filled NIC parameters (``hvparams``/``beparams`` override
    the filled ones, e.g. a start with temporary parameters)."""
    cluster = cfg.GetClusterInfo()
    hvp = cluster.FillHV(instance)
    hvp.update(hvparams or {})
    bep = cluster.FillBE(instance)
    bep.update(beparams or {})
    osp = cluster.SimpleFillOS(instance.os, instance.osparams,
                               instance.osparams_private or {})
    if disks is None:
        disks = cfg.GetInstanceDisks(instance.uuid)
    result = InstanceDict(instance, disks, hvp, bep, osp)
    # As Ganeti: the node sets NICs up from their filled parameters (mode,
    # link), which only the master knows the cluster's defaults of
    for nic in result.get("nics") or []:
        nic["nicparams"] = cluster.SimpleFillNIC(nic.get("nicparams") or {})
    # NICs on networks carry the network's data, for the OS scripts'
    # NIC_n_NETWORK_* variables and the network scripts
    instance_nics.AddNetInfo(cfg, result.get("nics") or [])
    return result


# --- disks -------------------------------------------------------------------------------

def FileStorageDir(cluster: Any, disk_template: str) -> str:
    """The cluster's storage directory for a file-based template."""
    if disk_template == constants.DT_SHARED_FILE:
        return cluster.shared_file_storage_dir or \
            constants.DEFAULT_SHARED_FILE_STORAGE_DIR
    return cluster.file_storage_dir or constants.DEFAULT_FILE_STORAGE_DIR


def InstanceFileDir(cluster: Any, disk_template: str, instance_name: str,
                    subdir: str | None = None) -> str:
    """The directory holding an instance's disk images:
    ``<storage dir>[/<subdir>]/<instance>``; the subdirectory may not
    escape the storage directory."""
    base = FileStorageDir(cluster, disk_template)
    if subdir:
        norm = os.path.normpath(subdir)
        if os.path.isabs(subdir) or norm.startswith("..") or norm == ".":
            raise errors.OpPrereqError(
                f"Invalid file storage directory '{subdir}': it must be a relative"
                " path below the cluster's file storage directory",
                errors.ECODE_INVAL)
        base = os.path.join(base, norm)
    return os.path.join(base, instance_name)


def GenerateDisks(cfg: Any, ec_id: Any, disk_template: str, instance_name: str,
                  pnode_uuid: str, disk_specs: list[dict[str, Any]],
                  file_dir: str | None, file_driver: str | None,
                  snode_uuid: str | None = None,
                  diskparams: dict[str, Any] | None = None,
                  base_index: int = 0) -> list[objects.Disk]:
    """Disk objects for a new instance (none for diskless); see
    :func:`ganeti.cmdlib.disks.GenerateDisks`."""
    return disks_mod.GenerateDisks(cfg, ec_id, disk_template, instance_name, pnode_uuid,
                                   snode_uuid, disk_specs, file_dir, file_driver,
                                   diskparams, base_index)


def FileDirs(disks: list[objects.Disk]) -> set[str]:
    """The directories of the file-based disks among ``disks``."""
    return {os.path.dirname(d.logical_id[1]) for d in disks
            if d.dev_type in constants.DTS_FILEBASED and len(d.logical_id) == 2}


def CreateDisks(lu: LogicalUnit, instance: objects.Instance,
                disks: list[objects.Disk], node_uuid: str,
                feedback_fn: FeedbackFn | None = None) -> None:
    """Create ``disks`` (primary on ``node_uuid``; mirrored disks on their
    secondary too); on a failure remove those created (and the file
    directories of file disks) and raise OpExecError."""
    try:
        disks_mod.CreateDisks(lu, instance, disks, node_uuid, feedback_fn)
    except errors.OpExecError:
        dirs = FileDirs(disks)
        if dirs:
            RemoveDisks(lu, [], node_uuid, instance.name, file_dirs=sorted(dirs))
        raise


def RemoveDisks(lu: LogicalUnit, disks: list[objects.Disk], node_uuid: str,
                instance_name: str, warn_fn: Any = None,
                file_dirs: list[str] | None = None) -> bool:
    """Remove disks from every node they live on (``node_uuid`` is the
    primary) and the instance's file directories (those of the disks, plus
    ``file_dirs``) from the primary; failures are warnings. Returns whether
    everything went."""
    warn = warn_fn or lu.LogWarning
    ok = disks_mod.RemoveDiskTrees(lu, disks, node_uuid, instance_name, warn)
    dirs = FileDirs(disks)
    dirs.update(file_dirs or [])
    # A directory still holding another disk of the configuration (one
    # detached from this instance, or attached elsewhere) stays
    gone = {disk.uuid for disk in disks}
    known = lu.cfg.GetAllDisksInfo() if lu.cfg is not None else {}
    dirs -= FileDirs([disk for uuid, disk in known.items() if uuid not in gone])
    for directory in sorted(dirs):
        result = lu.rpc.call_file_storage_dir_remove(node_uuid, directory)
        if result.fail_msg:
            warn(f"Could not remove directory {directory} on node"
                 f" {NodeName(lu.cfg, node_uuid)}: {result.fail_msg}")
            ok = False
    return ok


def ShutdownInstanceDisks(lu: LogicalUnit, instance: objects.Instance,
                          ignore_failures: bool = True) -> bool:
    """Shut all the instance's disks down on its primary node and record
    them inactive (see :func:`ShutdownDisks`)."""
    return ShutdownDisks(lu, instance, ignore_failures=ignore_failures)


# --- shared disk steps -------------------------------------------------------------------

def IsLiveAndRunning(payload: Any) -> bool:
    """Whether ``instance_info``'s answer is an instance that runs: not
    absent, and not a guest that shut itself down while its hypervisor
    process stays (KVM's ``user_shutdown``)."""
    if not payload:
        return False
    if not isinstance(payload, dict):
        return True
    return not HvInstanceState.IsShutdown(payload.get("state", HvInstanceState.RUNNING))


def InstanceInfo(lu: LogicalUnit, instance: objects.Instance,
                 node_uuid: str | None = None, prereq: bool = True) -> Any:
    """``instance_info``'s answer about the instance from the node
    (default: the primary); OpPrereqError (ECODE_ENVIRON), or OpExecError
    unless ``prereq``, if the node cannot tell."""
    cfg: Any = lu.cfg
    node = node_uuid or instance.primary_node
    hvp = cfg.GetClusterInfo().FillHV(instance)
    result = lu.rpc.call_instance_info([node], instance.name, instance.hypervisor,
                                       hvp)[node]
    result.Raise(f"Can't contact node {NodeName(cfg, node)} for instance"
                 " information", prereq=prereq, ecode=errors.ECODE_ENVIRON)
    return result.payload


def IsInstanceRunning(lu: LogicalUnit, instance: objects.Instance,
                      node_uuid: str | None = None) -> bool:
    """Whether the hypervisor of the node (default: the primary) runs the
    instance; OpPrereqError (ECODE_ENVIRON) if the node cannot tell."""
    return bool(InstanceInfo(lu, instance, node_uuid))


def CheckInstanceState(lu: LogicalUnit, instance: objects.Instance,
                       req_states: frozenset[str], msg: str) -> None:
    """OpPrereqError (ECODE_STATE) unless the instance's admin state is one
    of ``req_states`` and, when those exclude "up", it is not running on its
    primary node (not checked, with a warning, if that node is offline)."""
    if instance.admin_state not in req_states:
        raise errors.OpPrereqError(
            f"Instance '{instance.name}' is marked to be {instance.admin_state}, {msg}",
            errors.ECODE_STATE)
    if constants.ADMINST_UP in req_states:
        return
    cfg: Any = lu.cfg
    if cfg.GetNodeInfo(instance.primary_node).offline:
        lu.LogWarning("Primary node offline, ignoring check that instance is down")
        return
    if IsInstanceRunning(lu, instance):
        raise errors.OpPrereqError(f"Instance {instance.name} is running, {msg}",
                                   errors.ECODE_STATE)


def ShutdownDisks(lu: LogicalUnit, instance: objects.Instance,
                  node_uuid: str | None = None, disks: list[objects.Disk] | None = None,
                  ignore_failures: bool = True) -> bool:
    """Shut disks (default: all; then ``disks_active`` is cleared) down on
    a node (default: every node of each disk). Failures are warnings, or
    OpExecError unless ``ignore_failures``; returns whether all went well."""
    cfg: Any = lu.cfg
    all_disks = cfg.GetInstanceDisks(instance.uuid)
    if disks is None:
        current = cfg.GetInstanceInfo(instance.uuid)
        if current is not None and current.disks_active:
            cfg.MarkInstanceDisksInactive(instance.uuid)
        selected = all_disks
    else:
        wanted = {disk.uuid for disk in disks}
        selected = [disk for disk in all_disks if disk.uuid in wanted]
    return disks_mod.ShutdownOnNodes(lu, instance, selected, instance.primary_node,
                                     node_uuid=node_uuid, ignore_failures=ignore_failures)


def AssembleDisks(lu: LogicalUnit, instance: objects.Instance,
                  node_uuid: str | None = None, disks: list[objects.Disk] | None = None,
                  ignore_secondaries: bool = False
                  ) -> list[tuple[str, str, str | None]]:
    """Activate disks (default: all, then ``disks_active`` is set) with
    ``node_uuid`` (default: the instance's primary) as primary; returns
    (node name, disk name, device path) per disk. On a failure the disks
    are shut down again and OpExecError says which disk failed and why."""
    cfg: Any = lu.cfg
    node = node_uuid or instance.primary_node
    all_disks = cfg.GetInstanceDisks(instance.uuid)
    wanted = None if disks is None else {disk.uuid for disk in disks}
    if wanted is None:
        cfg.MarkInstanceDisksActive(instance.uuid)
    selected = [(idx, disk) for idx, disk in enumerate(all_disks)
                if wanted is None or disk.uuid in wanted]
    try:
        return disks_mod.AssembleOnNodes(lu, instance, selected, node,
                                         ignore_secondaries=ignore_secondaries)
    except errors.OpExecError:
        ShutdownDisks(lu, instance, None, disks)
        raise


# --- node resources -----------------------------------------------------------------------

def NodeHvInfo(lu: LogicalUnit, node_uuid: str, hvname: str,
               hvparams: dict[str, Any]) -> dict[str, Any]:
    """The hypervisor's node_info of one node (memory, CPUs)."""
    result = lu.rpc.call_node_info([node_uuid], [], [[hvname, hvparams]])[node_uuid]
    result.Raise(f"Can't get data from node {NodeName(lu.cfg, node_uuid)}",
                 prereq=True, ecode=errors.ECODE_ENVIRON)
    try:
        _, _, hv_info = result.payload
        return dict(hv_info[0])
    except (TypeError, ValueError, IndexError, KeyError):
        raise errors.OpPrereqError(
            f"Invalid node_info answer from node {NodeName(lu.cfg, node_uuid)}",
            errors.ECODE_ENVIRON) from None


def CheckNodeFreeMemory(lu: LogicalUnit, node_uuid: str, reason: str, requested: int,
                        hvname: str, hvparams: dict[str, Any],
                        hv_info: dict[str, Any] | None = None) -> dict[str, Any]:
    """OpPrereqError (ECODE_NORES) unless the node has ``requested`` MiB free;
    returns the node's hypervisor info (``hv_info``: already fetched, by
    :func:`NodeHvInfo` under the same locks)."""
    info = hv_info if hv_info is not None else NodeHvInfo(lu, node_uuid, hvname, hvparams)
    free = info.get("memory_free")
    if not isinstance(free, int):
        raise errors.OpPrereqError(
            f"Can't compute free memory on node {NodeName(lu.cfg, node_uuid)}, result"
            f" was '{free}'", errors.ECODE_ENVIRON)
    if requested > free:
        raise errors.OpPrereqError(
            f"Not enough memory on node {NodeName(lu.cfg, node_uuid)} for {reason}:"
            f" needed {requested} MiB, available {free} MiB", errors.ECODE_NORES)
    return info


def CheckNodeFreeStorage(lu: LogicalUnit, node: objects.Node, disk_template: str,
                         requested: int) -> None:
    """OpPrereqError (ECODE_NORES) unless the node's storage for the
    file-based template has ``requested`` MiB free."""
    from ganeti.query.nodes import NodeStorageKey
    cfg: Any = lu.cfg
    cluster = cfg.GetClusterInfo()
    storage_type = constants.ST_SHARED_FILE if disk_template == constants.DT_SHARED_FILE \
        else constants.ST_FILE
    key = NodeStorageKey(node.name, storage_type, FileStorageDir(cluster, disk_template))
    result = lu.rpc.call_node_info([node.uuid], [[storage_type, key]], [])[node.uuid]
    result.Raise(f"Can't get storage data from node {node.name}", prereq=True,
                 ecode=errors.ECODE_ENVIRON)
    try:
        free = result.payload[1][0]["storage_free"]
    except (TypeError, IndexError, KeyError):
        raise errors.OpPrereqError(f"Invalid node_info answer from node {node.name}",
                                   errors.ECODE_ENVIRON) from None
    if requested > free:
        raise errors.OpPrereqError(
            f"Not enough disk space on node {node.name} ({storage_type} storage):"
            f" needed {requested} MiB, available {free} MiB", errors.ECODE_NORES)


def CheckNicsBridgesExist(lu: LogicalUnit, nics: list[objects.NIC], node_uuid: str) -> None:
    """OpPrereqError (ECODE_ENVIRON) naming the node and the bridges it lacks
    for the bridged NICs of ``nics`` (parameters filled with the cluster's)."""
    cfg: Any = lu.cfg
    cluster = cfg.GetClusterInfo()
    bridges = []
    for nic in nics:
        params = cluster.SimpleFillNIC(nic.nicparams or {})
        link = params.get(constants.NIC_LINK)
        if params.get(constants.NIC_MODE) == constants.NIC_MODE_BRIDGED and link and \
                link not in bridges:
            bridges.append(link)
    if not bridges:
        return
    node = NodeName(cfg, node_uuid)
    result = lu.rpc.call_bridges_exist(node_uuid, bridges)
    result.Raise(f"Error checking bridges on node {node}", prereq=True,
                 ecode=errors.ECODE_ENVIRON)
    missing = result.payload or []
    if missing:
        plural = "s" if len(missing) > 1 else ""
        raise errors.OpPrereqError(
            f"Missing bridge{plural} {', '.join(missing)} on node {node} (needed by the"
            " bridged NICs; create it, or give the NIC another link)",
            errors.ECODE_ENVIRON)


def CheckTargetNode(cfg: Any, node_uuid: str,
                    refusal: str = "Can't use {state} node {name}") -> objects.Node:
    """OpPrereqError (ECODE_STATE) unless the node can take instances:
    online, not drained, vm_capable. ``refusal`` words the error (with
    ``{state}``: offline, drained or non-vm_capable, and ``{name}``)."""
    node = cfg.GetNodeInfo(node_uuid)
    if node is None:
        raise errors.OpPrereqError(f"Node '{node_uuid}' not known", errors.ECODE_NOENT)
    for state, bad in (("offline", node.offline), ("drained", node.drained),
                       ("non-vm_capable", not node.vm_capable)):
        if bad:
            raise errors.OpPrereqError(refusal.format(state=state, name=node.name),
                                       errors.ECODE_STATE)
    return node


def CheckNodeOnline(cfg: Any, node_uuid: str, msg: str | None = None) -> None:
    """OpPrereqError (ECODE_STATE) if the node is offline."""
    node = cfg.GetNodeInfo(node_uuid)
    if node is not None and node.offline:
        raise errors.OpPrereqError(f"{msg or 'Can not use offline node'}: {node.name}",
                                   errors.ECODE_STATE)


# --- instance policy ------------------------------------------------------------------------

def FormatIPolicyViolations(instance_name: str, violations: list[str]) -> str:
    """The message of an ipolicy refusal listing each violation."""
    return (f"Instance {instance_name} does not meet the instance policy:\n  - "
            + "\n  - ".join(violations)
            + "\n(use --ignore-ipolicy to create it nonetheless)")


def InstanceVcpusOnNode(cfg: Any, node_uuid: str) -> int:
    """The virtual CPUs of the instances whose primary node is ``node_uuid``."""
    # Read-only snapshot: copying every instance would cost more than the sum
    snap = cfg.GetReadOnlySnapshot()
    return sum(int(snap.cluster.FillBE(inst).get(constants.BE_VCPUS) or 0)
               for inst in snap.instances.values() if inst.primary_node == node_uuid)


def StartInstanceOnNode(lu: LogicalUnit, instance: objects.Instance,
                        hvparams: dict[str, Any] | None = None,
                        beparams: dict[str, Any] | None = None,
                        startup_paused: bool = False, reason: Any = None) -> None:
    """Start the instance on its primary node (which assembles the disks);
    OpExecError naming the node's error."""
    result = lu.rpc.call_instance_start(
        instance.primary_node, InstanceRpcDict(lu.cfg, instance, hvparams, beparams),
        startup_paused, reason or [])
    if result.fail_msg:
        ShutdownInstanceDisks(lu, instance)
        raise errors.OpExecError(f"Could not start instance {instance.name}:"
                                 f" {result.fail_msg}")


def ShutdownToLeave(lu: LogicalUnit, instance: objects.Instance, node_uuid: str,
                    timeout: int, may_fail: bool) -> None:
    """Shut the instance down on the node it leaves (failover, move). A
    failure is an OpExecError, or with ``may_fail`` (--ignore-consistency,
    an offline node) a warning asking to make sure the node is down."""
    name = NodeName(lu.cfg, node_uuid)
    result = lu.rpc.call_instance_shutdown(node_uuid, InstanceRpcDict(lu.cfg, instance),
                                           timeout, getattr(lu.op, "reason", None) or [])
    if not result.fail_msg:
        return
    if not may_fail:
        raise errors.OpExecError(f"Could not shutdown instance {instance.name} on node"
                                 f" {name}: {result.fail_msg}")
    lu.LogWarning(f"Could not shutdown instance {instance.name} on node {name},"
                  f" proceeding anyway; please make sure node {name} is down; error"
                  f" details: {result.fail_msg}")


def NiceSize(mib: int) -> str:
    """A size for messages ("1.0G")."""
    return utils.FormatUnit(mib, "h")
