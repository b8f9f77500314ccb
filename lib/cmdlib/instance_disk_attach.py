"""Attaching and detaching disks (``gnt-instance modify --disk ...:attach``
and ``--disk ...:detach``), the steps of ``LUInstanceSetParams``.

A detached disk stays in the configuration, used by no instance, with its
data on its node(s); it can be attached again, to the same or another
instance, by name or UUID. As in Ganeti, a disk can be attached only to an
instance whose nodes it lives on, and only if its type is the instance's disk template
(any type for a diskless instance): disks of one instance are never mixed.

A running instance (or one marked up) gets or loses the disk by hotplug
only; without it the instance must be stopped first. A detached disk is
unplugged (when hotplugged) and shut down on its node(s) before it leaves
the instance; an attached one is assembled when the instance's disks are
active.
"""

from __future__ import annotations

from typing import Any

from ganeti import constants, errors, objects
from ganeti.cmdlib import instance_hotplug as hotplug
from ganeti.cmdlib import instance_utils as iu

_ATTACH_KEYS = (constants.IDISK_NAME, "uuid")


def _Inval(msg: str) -> errors.OpPrereqError:
    return errors.OpPrereqError(msg, errors.ECODE_INVAL)


def CheckAttachParams(params: dict[str, Any]) -> dict[str, Any]:
    """The parameters of an attachment: exactly one of ``name`` and ``uuid``."""
    unknown = sorted(set(params) - set(_ATTACH_KEYS))
    if unknown:
        raise _Inval(f"Only the disk's name or UUID can be given when attaching a"
                     f" disk, got {', '.join(unknown)}")
    given = [key for key in _ATTACH_KEYS if params.get(key)]
    if len(given) != 1:
        raise _Inval("Attaching a disk needs either its name or its UUID"
                     " (name=NAME or uuid=UUID), and only one of them")
    return dict(params)


def CheckNoRunningChange(lu: Any, instance: objects.Instance, action: str) -> None:
    """OpPrereqError (ECODE_STATE) if the instance is running (or marked up)
    and the change is not hotplugged."""
    if (lu.running or instance.admin_state == constants.ADMINST_UP) and not lu.hotplug:
        raise errors.OpPrereqError(
            f"Instance {instance.name} is running, cannot {action} disks without"
            " hotplug (stop it first, or use --hotplug)", errors.ECODE_STATE)


def FindDetachedDisk(cfg: Any, params: dict[str, Any]) -> objects.Disk:
    """The disk named by ``params`` (name or UUID), used by no instance."""
    ident = params.get("uuid") or params.get(constants.IDISK_NAME)
    matches = [disk for disk in cfg.GetAllDisksInfo().values()
               if ident in (disk.uuid, disk.name)]
    if not matches:
        raise errors.OpPrereqError(f"Cannot find disk '{ident}' in the configuration",
                                   errors.ECODE_NOENT)
    if len(matches) > 1:
        raise errors.OpPrereqError(
            f"Several disks are named '{ident}' ({', '.join(d.uuid for d in matches)});"
            " attach it by UUID", errors.ECODE_NOTUNIQUE)
    disk = matches[0]
    owner = cfg.GetInstanceForDisk(disk.uuid)
    if owner is not None:
        raise errors.OpPrereqError(
            f"Disk '{ident}' is already attached to instance"
            f" {cfg.GetInstanceInfo(owner).name}; detach it first", errors.ECODE_STATE)
    return disk


def CheckAttachable(cfg: Any, instance: objects.Instance, disk: objects.Disk,
                    template: str) -> None:
    """The disk fits the instance: same template (unless the instance is
    diskless), on (at least) the instance's nodes."""
    label = disk.name or disk.uuid
    if template != constants.DT_DISKLESS and disk.dev_type != template:
        raise _Inval(f"Cannot attach disk '{label}' of type {disk.dev_type} to"
                     f" instance {instance.name}, whose disk template is {template}")
    inst_nodes = set(cfg.GetInstanceNodes(instance.uuid))
    if disk.nodes and not inst_nodes.issubset(disk.nodes):
        raise _Inval(
            f"Cannot attach disk '{label}' to instance {instance.name}: the disk is on"
            f" node(s) {', '.join(sorted(iu.NodeName(cfg, n) for n in disk.nodes))},"
            " the instance on"
            f" {', '.join(sorted(iu.NodeName(cfg, n) for n in inst_nodes))}")


def ShutdownDetached(lu: Any, instance: objects.Instance,
                     disks: list[objects.Disk]) -> None:
    """Shut the detached disks down on their nodes; a failure is a warning
    (the data stays, the device may stay assembled)."""
    for disk in disks:
        for node_uuid in disk.nodes or [instance.primary_node]:
            result = lu.rpc.call_blockdev_shutdown(node_uuid, disk.ToDict())
            if result.fail_msg:
                lu.LogWarning(f"Could not shut down detached disk"
                              f" '{disk.name or disk.uuid}' on node"
                              f" {iu.NodeName(lu.cfg, node_uuid)}: {result.fail_msg}")


def ActivateAttached(lu: Any, instance: objects.Instance,
                     attached: list[tuple[int, objects.Disk]]) -> None:
    """Bring the attached disks up: hotplugged into a running instance, or
    assembled when the instance's disks are active."""
    fresh = lu.cfg.GetInstanceInfo(instance.uuid)
    for idx, disk in attached:
        disk = lu.cfg.GetDiskInfo(disk.uuid)
        if lu.hotplug:
            hotplug.HotAddDisk(lu, fresh, disk, idx)
        elif fresh.disks_active:
            result = lu.rpc.call_blockdev_assemble(fresh.primary_node, disk, fresh,
                                                   True, idx)
            if result.fail_msg:
                lu.LogWarning(f"Could not assemble attached disk {idx} of instance"
                              f" {fresh.name}: {result.fail_msg}")
