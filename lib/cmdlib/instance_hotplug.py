"""Hotplug steps shared by the instance LUs (``gnt-instance modify``).

A running instance's disk and NIC changes are plugged in or out by its
primary node's hypervisor (``hotplug_device``) when the opcode asks for it:
``hotplug`` (an error when the hypervisor cannot) or
``hotplug_if_possible`` (a warning, and the change waits for the next
restart). :func:`HotplugWanted` decides once, in CheckPrereq;
:func:`HotplugDevice` does one device in Exec and, as Ganeti, turns a
failure into a warning (the configuration change stands).
"""

from __future__ import annotations

from typing import Any

from ganeti import constants, errors, objects
from ganeti.cmdlib import instance_utils as iu


def HotplugWanted(lu: Any, instance: objects.Instance, running: bool,
                  has_device_changes: bool, hotplug: bool,
                  hotplug_if_possible: bool) -> bool:
    """Whether the device changes are to be hotplugged.

    @raise errors.OpPrereqError: ``hotplug`` asked and the node says the
        instance cannot (its message says why)
    """
    if not (running and has_device_changes and (hotplug or hotplug_if_possible)):
        return False
    result = lu.rpc.call_hotplug_supported(instance.primary_node,
                                           iu.InstanceRpcDict(lu.cfg, instance))
    if result.fail_msg:
        if hotplug:
            raise errors.OpPrereqError(
                f"Hotplug is not possible for instance {instance.name}:"
                f" {result.fail_msg} (use --hotplug-if-possible or --no-hotplug)",
                errors.ECODE_STATE)
        lu.LogWarning(f"Hotplug is not possible for instance {instance.name}:"
                      f" {result.fail_msg}; the disk and NIC changes take effect at"
                      " its next restart")
        return False
    return True


def HotplugDevice(lu: Any, instance: objects.Instance, action: str, dev_type: str,
                  device: Any, extra: Any, seq: int) -> bool:
    """Plug (or unplug) one device on the primary node; whether it worked.

    A failure is a warning: the change then takes effect at the next restart.
    """
    verb = "add" if action == constants.HOTPLUG_ACTION_ADD else "remove"
    lu.LogInfo(f"Hotplug: {verb} {dev_type} {seq} of instance {instance.name}")
    result = lu.rpc.call_hotplug_device(instance.primary_node,
                                        iu.InstanceRpcDict(lu.cfg, instance), action,
                                        dev_type, device, extra, seq)
    if result.fail_msg:
        lu.LogWarning(f"Could not hotplug ({verb}) {dev_type} {seq} of instance"
                      f" {instance.name}: {result.fail_msg}; it changes at the next"
                      " restart")
        return False
    return True


def HotAddDisk(lu: Any, instance: objects.Instance, disk: objects.Disk, idx: int) -> bool:
    """Assemble a new disk on the primary node and plug it in."""
    result = lu.rpc.call_blockdev_assemble(instance.primary_node, disk, instance, True,
                                           idx)
    if result.fail_msg:
        lu.LogWarning(f"Could not assemble disk {idx} of instance {instance.name} for"
                      f" hotplug: {result.fail_msg}")
        return False
    return HotplugDevice(lu, instance, constants.HOTPLUG_ACTION_ADD,
                         constants.HOTPLUG_TARGET_DISK, disk, result.payload, idx)
