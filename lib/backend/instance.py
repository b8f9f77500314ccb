"""Instances on the node: start, stop, reboot, query, console, migration and
the OS scripts run for an instance (``instance_*``, ``migration_info``,
``accept_instance``, ...).

Instances arrive as dicts of :class:`objects.Instance` whose ``disks`` hold
whole disk dicts (not UUIDs) and whose hvparams, beparams and osparams the
master has already filled with the cluster's defaults, as Ganeti sends them.
Hypervisor errors become RPC failures carrying the hypervisor's message.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any
from collections.abc import Sequence

from ganeti import constants, errors, hypervisor, objects, pathutils, serializer, utils
from ganeti.backend import Fail
from ganeti.backend import node as backend_node
from ganeti.backend import os as backend_os
from ganeti.backend import storage as backend_storage
from ganeti.hypervisor.base import BaseHypervisor, HvInstanceState

# --- Helpers ---------------------------------------------------------------------------


def InstanceFromDict(value: Any) -> objects.Instance:
    """Build an Instance whose ``disks`` are Disk objects, or fail clearly."""
    if isinstance(value, objects.Instance):
        return value
    if not isinstance(value, dict):
        Fail("Invalid instance %r: expected an instance object (dict)", value)
    try:
        instance = objects.Instance.FromDict(value)
    except (errors.GenericError, TypeError, ValueError) as err:
        Fail("Invalid instance %r: %s", value.get("name"), err)
    if not instance.name:
        Fail("Invalid instance: no name")
    disks: list[Any] = []
    for disk in instance.disks or []:
        if not isinstance(disk, objects.Disk):
            Fail("Instance %s: disks must be sent as disk objects, got %r",
                 instance.name, disk)
        disks.append(disk)
    instance.disks = disks  # type: ignore[assignment]
    return instance


def _GetHv(name: str) -> BaseHypervisor:
    try:
        return hypervisor.GetHypervisor(name)
    except errors.HypervisorError as err:
        Fail("%s", err)


def _HvCall(what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return fn(*args, **kwargs)
    except errors.HypervisorError as err:
        Fail("%s: %s", what, err, log=False)


def _StoreReason(instance_name: str, reason: Any) -> None:
    """Keep the reason trail of the last state change (Ganeti does too)."""
    if not reason:
        return
    try:
        os.makedirs(pathutils.INSTANCE_REASON_DIR, exist_ok=True)
        utils.WriteFile(f"{pathutils.INSTANCE_REASON_DIR}/{instance_name}",
                        data=serializer.DumpJson(reason))
    except (OSError, TypeError, ValueError) as err:
        logging.warning("Cannot store the reason trail of %s: %s", instance_name, err)


def _DiskLinkName(instance_name: str, idx: int) -> str:
    return f"{pathutils.DISK_LINKS_DIR}/{instance_name}{constants.DISK_SEPARATOR}{idx}"


def _GatherBlockDevs(instance: objects.Instance) -> list[tuple[Any, str, str | None]]:
    """Assemble the instance's disks; return (disk, link, uri) for each."""
    result = []
    for idx, disk in enumerate(instance.disks or []):
        link, uri = backend_storage.BlockdevAssemble(
            disk, {"name": instance.name, "hypervisor": instance.hypervisor}, True, idx)
        assert link is not None
        result.append((disk, link, uri))
    return result


def _RemoveBlockDevLinks(instance: objects.Instance) -> None:
    for idx in range(len(instance.disks or [])):
        utils.RemoveFile(_DiskLinkName(instance.name, idx))


def _IsRunning(hyper: BaseHypervisor, instance: objects.Instance) -> bool:
    return _HvCall(f"Cannot query instance {instance.name}", hyper.GetInstanceInfo,
                   instance.name, instance.hvparams) is not None


# --- Queries -------------------------------------------------------------------------


def _InfoDict(info: tuple[Any, ...]) -> dict[str, Any]:
    _, _, memory, vcpus, state, cputime = info
    return {"memory": memory, "vcpus": vcpus, "state": state, "time": cputime}


def GetInstanceInfo(instance: str, hname: str, hvparams: dict[str, Any] | None
                    ) -> dict[str, Any]:
    """memory, vcpus, state and time of a running instance; {} if not running."""
    hyper = _GetHv(hname)
    info = _HvCall(f"Cannot query instance {instance}", hyper.GetInstanceInfo,
                   instance, hvparams)
    return _InfoDict(info) if info is not None else {}


def GetAllInstancesInfo(hypervisor_list: Sequence[str],
                        all_hvparams: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Info of every running instance of the given hypervisors, by name."""
    output: dict[str, dict[str, Any]] = {}
    for hname in hypervisor_list:
        hyper = _GetHv(hname)
        for info in _HvCall("Cannot list instances", hyper.GetAllInstancesInfo,
                            (all_hvparams or {}).get(hname)):
            if info[0] in output:
                Fail("Instance %s is running under more than one hypervisor", info[0])
            output[info[0]] = _InfoDict(info)
    return output


def GetInstanceList(hypervisor_list: Sequence[str],
                    all_hvparams: dict[str, Any]) -> list[str]:
    """Names of the instances running on this node."""
    names: list[str] = []
    for hname in hypervisor_list:
        hyper = _GetHv(hname)
        names.extend(_HvCall("Cannot list instances", hyper.ListInstances,
                             (all_hvparams or {}).get(hname)))
    return utils.NiceSort(names)


def GetInstanceConsoleInfo(instance_param_dict: dict[str, Any]) -> dict[str, Any]:
    """Console of each instance: {name: {instance, node, group, hvParams,
    beParams}} -> {name: InstanceConsole dict}."""
    output = {}
    for name, params in instance_param_dict.items():
        try:
            instance = InstanceFromDict(params["instance"])
            pnode = objects.Node.FromDict(params["node"])
            group = objects.NodeGroup.FromDict(params["group"])
            hvparams, beparams = params["hvParams"], params["beParams"]
        except (KeyError, TypeError) as err:
            Fail("Invalid console request for %s: missing %s", name, err)
        hv_class = _HvCall("Console", hypervisor.GetHypervisorClass, instance.hypervisor)
        console = hv_class.GetInstanceConsole(instance, pnode, group, hvparams, beparams)
        output[name] = console.ToDict()
    return output


def ValidateHVParams(hvname: str, hvparams: dict[str, Any]) -> None:
    """Check hypervisor parameters, syntax and against this node."""
    hyper = _GetHv(hvname)
    _HvCall("Invalid hypervisor parameters", hyper.CheckParameterSyntax, hvparams)
    _HvCall("Invalid hypervisor parameters", hyper.ValidateParameters, hvparams)


# --- Life cycle ------------------------------------------------------------------------


def InstanceStart(instance_dict: Any, startup_paused: bool, reason: Any) -> None:
    """Assemble the disks and start the instance (fails if already running)."""
    instance = InstanceFromDict(instance_dict)
    hyper = _GetHv(instance.hypervisor)
    info = _HvCall(f"Cannot query instance {instance.name}", hyper.GetInstanceInfo,
                   instance.name, instance.hvparams)
    if info is not None:
        if not HvInstanceState.IsShutdown(info[4]):
            Fail("Instance %s is already running on this node", instance.name, log=False)
        # The guest shut itself down and its process stayed (user_shutdown):
        # that process goes, and the instance starts afresh
        logging.info("Instance %s was shut down from inside; stopping its process"
                     " before starting it", instance.name)
        _Shutdown(instance, 0)
    block_devices = _GatherBlockDevs(instance)
    try:
        hyper.StartInstance(instance, block_devices, bool(startup_paused))
    except errors.HypervisorError as err:
        _RemoveBlockDevLinks(instance)
        Fail("Hypervisor error: %s", err, log=False)
    _StoreReason(instance.name, reason)


def _Shutdown(instance: objects.Instance, timeout: float) -> None:
    hyper = _GetHv(instance.hypervisor)
    if not _IsRunning(hyper, instance):
        # A guest that powered itself off leaves its hypervisor's files
        # (and the disk links) behind: cleaned as after a stop
        logging.info("Instance %s not running, nothing to shut down", instance.name)
        _Cleanup(hyper, instance)
        return
    if not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or timeout < 0:
        Fail("Invalid shutdown timeout %r: must be a non-negative number", timeout)
    deadline = time.monotonic() + timeout
    retry = False
    while time.monotonic() < deadline:
        _HvCall(f"Failed to stop instance {instance.name}", hyper.StopInstance,
                instance, force=False, retry=retry,
                timeout=max(0.0, deadline - time.monotonic()))
        if not _IsRunning(hyper, instance):
            break
        retry = True
        time.sleep(min(constants.HV_SOFT_STOP_POLL, max(0.0, deadline - time.monotonic())))
    else:
        if _IsRunning(hyper, instance):
            logging.warning("Instance %s did not stop within %ss, destroying it",
                            instance.name, timeout)
            _HvCall(f"Failed to force stop instance {instance.name}",
                    hyper.StopInstance, instance, force=True)
    if _IsRunning(hyper, instance):
        Fail("Could not shut down instance %s even by destroying it", instance.name)
    _Cleanup(hyper, instance)


def _Cleanup(hyper: Any, instance: objects.Instance) -> None:
    try:
        hyper.CleanupInstance(instance.name)
    except errors.HypervisorError as err:
        logging.warning("Cleanup of instance %s failed: %s", instance.name, err)
    _RemoveBlockDevLinks(instance)


def InstanceShutdown(instance_dict: Any, timeout: float, reason: Any) -> None:
    """Stop softly, waiting up to ``timeout`` seconds, then hard."""
    instance = InstanceFromDict(instance_dict)
    _Shutdown(instance, timeout)
    _StoreReason(instance.name, reason)


def InstanceReboot(instance_dict: Any, reboot_type: str, shutdown_timeout: float,
                   reason: Any) -> None:
    """Reboot: soft (inside the guest) or hard (stop, then start)."""
    instance = InstanceFromDict(instance_dict)
    hyper = _GetHv(instance.hypervisor)
    if not _IsRunning(hyper, instance):
        Fail("Cannot reboot instance %s that is not running", instance.name, log=False)
    if reboot_type == constants.INSTANCE_REBOOT_SOFT:
        _HvCall(f"Failed to soft reboot instance {instance.name}",
                hyper.RebootInstance, instance)
    elif reboot_type == constants.INSTANCE_REBOOT_HARD:
        _Shutdown(instance, shutdown_timeout)
        InstanceStart(instance, False, None)
    else:
        Fail("Invalid reboot_type received: '%s' (the node does %s and %s; %s is"
             " done by the master)", reboot_type, constants.INSTANCE_REBOOT_SOFT,
             constants.INSTANCE_REBOOT_HARD, constants.INSTANCE_REBOOT_FULL)
    _StoreReason(instance.name, reason)


def InstanceBalloonMemory(instance_dict: Any, memory: int) -> None:
    """Change a running instance's memory."""
    instance = InstanceFromDict(instance_dict)
    hyper = _GetHv(instance.hypervisor)
    _HvCall(f"Cannot balloon instance {instance.name}", hyper.BalloonInstanceMemory,
            instance, memory)


# --- Hotplug ---------------------------------------------------------------------------

_HOTPLUG_DEVICE_CLASSES = {constants.HOTPLUG_TARGET_DISK: objects.Disk,
                           constants.HOTPLUG_TARGET_NIC: objects.NIC}


def HotplugDevice(instance_dict: Any, action: str, dev_type: str, device_dict: Any,
                  extra: Any, seq: int) -> Any:
    """Add, remove or modify a disk or NIC of a running instance."""
    instance = InstanceFromDict(instance_dict)
    hyper = _GetHv(instance.hypervisor)
    device_class = _HOTPLUG_DEVICE_CLASSES.get(dev_type)
    if device_class is None:
        Fail("Invalid hotplug device type '%s' (expected %s)", dev_type,
             " or ".join(sorted(_HOTPLUG_DEVICE_CLASSES)))
    try:
        device = device_class.FromDict(device_dict)
    except (errors.GenericError, TypeError, ValueError, AttributeError) as err:
        Fail("Invalid %s to hotplug: %s", dev_type, err)
    functions = {constants.HOTPLUG_ACTION_ADD: hyper.HotAddDevice,
                 constants.HOTPLUG_ACTION_REMOVE: hyper.HotDelDevice,
                 constants.HOTPLUG_ACTION_MODIFY: hyper.HotModDevice}
    if action not in functions:
        Fail("Invalid hotplug action '%s' (expected %s)", action,
             ", ".join(sorted(functions)))
    try:
        hyper.VerifyHotplugSupport(instance, action, dev_type)
    except errors.HotplugError as err:
        Fail("Hotplug is not supported: %s", err, log=False)
    return _HvCall(f"Hotplug of a {dev_type} of instance {instance.name} failed",
                   functions[action], instance, dev_type, device, extra, seq)


def HotplugSupported(instance_dict: Any) -> None:
    """Fail unless the running instance's hypervisor can hotplug."""
    instance = InstanceFromDict(instance_dict)
    _HvCall("Hotplug is not supported", _GetHv(instance.hypervisor).HotplugSupported,
            instance)


# --- Migration ------------------------------------------------------------------------


def MigrationInfo(instance_dict: Any) -> str:
    """On the source: what the target needs."""
    instance = InstanceFromDict(instance_dict)
    return _HvCall("Failed to fetch migration information",
                   _GetHv(instance.hypervisor).MigrationInfo, instance)


def AcceptInstance(instance_dict: Any, info: str, target: str) -> None:
    """On the target: link the (shared) disks and prepare to receive the
    instance; the links go again if the hypervisor refuses."""
    instance = InstanceFromDict(instance_dict)
    hyper = _GetHv(instance.hypervisor)
    if _IsRunning(hyper, instance):
        # before linking: the links are the running instance's
        Fail("Failed to accept instance: instance %s already exists on this node",
             instance.name, log=False)
    # Externally mirrored disks are not active here yet: link them, as the
    # instance will use them once migrated (a missing image fails here)
    block_devices = _GatherBlockDevs(instance)
    try:
        hyper.AcceptInstance(instance, info, target, block_devices=block_devices)
    except errors.HypervisorError as err:
        _RemoveBlockDevLinks(instance)
        Fail("Failed to accept instance: %s", err, log=False)


def FinalizeMigrationDst(instance_dict: Any, info: str, success: bool) -> None:
    """On the target: finish or undo."""
    instance = InstanceFromDict(instance_dict)
    _HvCall("Failed to finalize the migration on the target",
            _GetHv(instance.hypervisor).FinalizeMigrationDst, instance, info, success)
    if not success and not _IsRunning(_GetHv(instance.hypervisor), instance):
        _RemoveBlockDevLinks(instance)


def MigrateInstance(cluster_name: str, instance_dict: Any, target: str,
                    live: bool) -> None:
    """On the source: send the instance."""
    instance = InstanceFromDict(instance_dict)
    _HvCall("Failed to migrate instance", _GetHv(instance.hypervisor).MigrateInstance,
            cluster_name, instance, target, live)


def FinalizeMigrationSource(instance_dict: Any, success: bool, live: bool) -> None:
    """On the source: finish or undo."""
    instance = InstanceFromDict(instance_dict)
    _HvCall("Failed to finalize the migration on the source",
            _GetHv(instance.hypervisor).FinalizeMigrationSource, instance, success, live)
    if success:
        _RemoveBlockDevLinks(instance)


def GetMigrationStatus(instance_dict: Any) -> dict[str, Any]:
    """On the source: {"status": HV_MIGRATION_*, ...}."""
    instance = InstanceFromDict(instance_dict)
    return _HvCall("Failed to get the migration status",
                   _GetHv(instance.hypervisor).GetMigrationStatus, instance)


# --- OS scripts for an instance --------------------------------------------------------


def _OsForInstance(instance: objects.Instance) -> objects.OS:
    inst_os = backend_os.OSFromDisk(instance.os)
    backend_os.CheckOSVariant(inst_os, instance.os)
    if backend_os.ApiVersion(inst_os) >= constants.OS_API_V20:
        params = dict(instance.osparams or {})
        params.update(instance.osparams_private or {})
        backend_os.CheckOSParams(inst_os, params)
    return inst_os


def InstanceOsAdd(instance_dict: Any, reinstall: bool, debug: int) -> None:
    """Run the OS create script on the instance's (assembled) disks."""
    instance = InstanceFromDict(instance_dict)
    inst_os = _OsForInstance(instance)
    env = backend_os.OSEnvironment(instance, inst_os, debug)
    if reinstall:
        env["INSTANCE_REINSTALL"] = "1"
    script = inst_os.create_script or inst_os.create_script_untrusted
    backend_os.RunOSScript("add", script, instance.name, inst_os, instance.os, env)


def RunRenameInstance(instance_dict: Any, old_name: str, debug: int) -> None:
    """Run the OS rename script (``INSTANCE_NAME`` is the new name)."""
    instance = InstanceFromDict(instance_dict)
    inst_os = _OsForInstance(instance)
    env = backend_os.OSEnvironment(instance, inst_os, debug)
    env["OLD_INSTANCE_NAME"] = old_name
    backend_os.RunOSScript("rename", inst_os.rename_script,
                           f"{old_name}-{instance.name}", inst_os, instance.os, env)


# --- node_info from the hypervisors that account for their instances --------------------


def _HvNodeInfo(hvname: str, hvparams: Any) -> dict[str, Any]:
    hyper = _GetHv(hvname)
    return _HvCall("Cannot get node information", hyper.GetNodeInfo, hvparams)


# node_info asks the hypervisor: the fake one subtracts its instances' memory,
# the KVM one adds what its instances use
backend_node.HV_NODE_INFO_FNS[constants.HT_FAKE] = _HvNodeInfo
backend_node.HV_NODE_INFO_FNS[constants.HT_KVM] = _HvNodeInfo
