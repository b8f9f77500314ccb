"""DRBD on the node: the ``drbd_*`` calls, and ``blockdev_open``/``_close``.

The master drives failover and live migration of DRBD instances through
these calls, as Ganeti does: it disconnects both ends
(:func:`DrbdDisconnectNet`), reconnects them, for a live migration allowing
two primaries (:func:`DrbdAttachNet` with ``multimaster``, which then makes
both ends primary), waits for the resync (:func:`DrbdWaitSync`), moves the
instance, and finally makes the old primary secondary
(:func:`BlockdevClose`) and reconnects single-primary.

Disks arrive as dicts of :class:`objects.Disk` carrying their
``dynamic_params`` for this node. A DRBD device whose volumes are not
active is still found (by its network); errors become RPC failures naming
the disk.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

from ganeti import constants, errors, objects, pathutils, utils
from ganeti.backend import Fail
from ganeti.backend import storage as backend_storage
from ganeti.storage import base, bdev, drbd

#: Seconds DrbdAttachNet waits for the devices to connect
ATTACH_TIMEOUT = 120.0
#: Seconds DrbdWaitSync waits for each device to be connected or syncing
WAIT_SYNC_TIMEOUT = 15.0
#: Seconds between two polls of DrbdWaitSync
WAIT_SYNC_POLL = 1.0


def _Describe(disk: objects.Disk) -> str:
    return f"disk {disk.iv_name or disk.uuid} {tuple(disk.logical_id or ())!r}"


def _FindChild(child: objects.Disk) -> base.BlockDev | None:
    try:
        return bdev.FindDevice(child)
    except errors.BlockDeviceError as err:
        logging.info("Child %s of a DRBD disk not usable: %s", _Describe(child), err)
        return None


def _FindDevice(disk: objects.Disk) -> base.BlockDev | None:
    """The device of ``disk``; a DRBD disk with inactive volumes is looked
    at without them (it is then recognised by its network)."""
    if disk.dev_type == constants.DT_DRBD8:
        children = [_FindChild(child) for child in disk.children or []]
        found = [child for child in children if child is not None]
        dev_children = found if len(found) == len(children) else []
    else:
        dev_children = None
    try:
        return bdev.FindDevice(disk, dev_children)
    except errors.BlockDeviceError as err:
        Fail("Cannot find %s: %s", _Describe(disk), err)


def _FindOrFail(disk: objects.Disk) -> base.BlockDev:
    dev = _FindDevice(disk)
    if dev is None:
        Fail("Block device %s not found on this node", _Describe(disk))
    return dev


def _DrbdDevices(disks: Sequence[Any]) -> list[tuple[objects.Disk, drbd.DRBD8Dev]]:
    result = []
    for value in disks:
        disk = backend_storage.DiskFromDict(value)
        if disk.dev_type != constants.DT_DRBD8:
            Fail("%s is a %s disk, not a DRBD disk", _Describe(disk), disk.dev_type)
        dev = _FindOrFail(disk)
        assert isinstance(dev, drbd.DRBD8Dev)
        result.append((disk, dev))
    return result


def DrbdDisconnectNet(disks: Sequence[Any]) -> None:
    """Disconnect the network of DRBD devices (they become StandAlone)."""
    for disk, dev in _DrbdDevices(disks):
        try:
            dev.DisconnectNet()
        except errors.BlockDeviceError as err:
            Fail("Cannot disconnect %s: %s", _Describe(disk), err)


def DrbdAttachNet(disks: Sequence[Any], multimaster: bool) -> None:
    """Connect DRBD devices to their peers and wait until they are.

    Single-primary: connected or resyncing is enough. ``multimaster``
    (live migration): both ends must be connected and UpToDate, because
    both are made primary right afterwards, and a not yet UpToDate end
    becoming primary would break the connection.
    """
    devices = _DrbdDevices(disks)
    for disk, dev in devices:
        try:
            dev.AttachNet(bool(multimaster))
        except errors.BlockDeviceError as err:
            Fail("Cannot connect %s: %s", _Describe(disk), err)

    def _Connected() -> None:
        waiting = []
        for disk, dev in devices:
            stats = dev.GetProcStatus()
            if multimaster:
                ready = (stats.is_connected and stats.is_disk_uptodate
                         and stats.peer_disk_uptodate)
            else:
                ready = stats.is_connected or stats.is_in_resync
            if stats.is_standalone:
                # the peer refused our configuration: offer it again
                dev.AttachNet(bool(multimaster))
            if not ready:
                waiting.append(f"{_Describe(disk)}: {stats.cstatus} {stats.ldisk}/"
                               f"{stats.rdisk}")
        if waiting:
            raise utils.RetryAgain("; ".join(waiting))

    try:
        utils.Retry(_Connected, (0.1, 1.5, 5.0), ATTACH_TIMEOUT)
    except utils.RetryTimeout as err:
        Fail("Timeout while connecting the DRBD devices: %s", err.args[0] if err.args
             else "")
    except errors.BlockDeviceError as err:
        Fail("Cannot connect the DRBD devices: %s", err)
    if multimaster:
        for disk, dev in devices:
            try:
                dev.Open()
            except errors.BlockDeviceError as err:
                Fail("Cannot make %s primary: %s", _Describe(disk), err)


def DrbdWaitSync(disks: Sequence[Any]) -> tuple[bool, float]:
    """Wait a little for DRBD devices to be connected or resyncing; return
    (whether all are in sync, the lowest sync percentage)."""
    all_done = True
    min_percent = 100.0

    def _Ready(dev: drbd.DRBD8Dev) -> Any:
        stats = dev.GetProcStatus()
        if not (stats.is_connected or stats.is_in_resync):
            raise utils.RetryAgain()
        return stats

    for disk, dev in _DrbdDevices(disks):
        try:
            try:
                stats = utils.Retry(_Ready, WAIT_SYNC_POLL, WAIT_SYNC_TIMEOUT, args=[dev])
            except utils.RetryTimeout:
                stats = dev.GetProcStatus()
                if not (stats.is_connected or stats.is_in_resync):
                    Fail("DRBD %s is neither connected nor resyncing (%s, disks %s/%s)",
                         _Describe(disk), stats.cstatus, stats.ldisk, stats.rdisk)
        except errors.BlockDeviceError as err:
            Fail("Cannot get the status of %s: %s", _Describe(disk), err)
        all_done = all_done and not stats.is_in_resync
        if stats.sync_percent is not None:
            min_percent = min(min_percent, stats.sync_percent)
    return all_done, min_percent


def DrbdNeedsActivation(disks: Sequence[Any]) -> list[str]:
    """The UUIDs of the DRBD disks that are missing, StandAlone or diskless."""
    result = []
    for value in disks:
        disk = backend_storage.DiskFromDict(value)
        dev = _FindDevice(disk)
        if dev is None:
            result.append(disk.uuid)
            continue
        try:
            stats = dev.GetProcStatus() if isinstance(dev, drbd.DRBD8Dev) else None
        except errors.BlockDeviceError as err:
            logging.warning("Cannot get the status of %s: %s", _Describe(disk), err)
            result.append(disk.uuid)
            continue
        if stats is not None and (stats.is_standalone or stats.is_diskless):
            result.append(disk.uuid)
    return result


def GetDrbdUsermodeHelper() -> str:
    """The usermode helper of the node's DRBD module."""
    try:
        return drbd.GetUsermodeHelper()
    except errors.BlockDeviceError as err:
        Fail("%s", err)


def BlockdevClose(instance_name: str | None, disks: Sequence[Any]) -> None:
    """Close devices (DRBD: make them secondary); then remove the
    instance's disk links."""
    problems = []
    for value in disks:
        disk = backend_storage.DiskFromDict(value)
        dev = _FindOrFail(disk)
        try:
            dev.Close()
        except errors.BlockDeviceError as err:
            problems.append(f"{_Describe(disk)}: {err}")
    if problems:
        Fail("Cannot close devices: %s", "; ".join(problems))
    if instance_name:
        for idx in range(len(disks)):
            link = backend_storage._DiskLink(instance_name, idx)
            if os.path.islink(link):
                utils.RemoveFile(link)


def BlockdevOpen(instance_name: str, disks: Sequence[Any], exclusive: bool) -> None:
    """Open devices (DRBD: make them primary) and link them for the instance."""
    problems = []
    for idx, value in enumerate(disks):
        disk = backend_storage.DiskFromDict(value)
        dev = _FindOrFail(disk)
        try:
            dev.Open(exclusive=bool(exclusive))
        except errors.BlockDeviceError as err:
            problems.append(f"{_Describe(disk)}: {err}")
            continue
        if instance_name and dev.dev_path:
            link = backend_storage._DiskLink(instance_name, idx)
            try:
                os.makedirs(pathutils.DISK_LINKS_DIR, exist_ok=True)
                utils.RemoveFile(link)
                os.symlink(dev.dev_path, link)
            except OSError as err:
                problems.append(f"cannot link {link} to {dev.dev_path}: {err}")
    if problems:
        Fail("Cannot open devices: %s", "; ".join(problems))
