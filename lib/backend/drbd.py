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
from ganeti.storage import base, bdev, drbd, drbd_cmdgen, drbd_info

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
    """The UUIDs of the DRBD disks that are missing, StandAlone or diskless.

    The status of every minor is read once (``/proc/drbd``, or the DRBD 9
    status); a disk's own minor comes from its dynamic parameters. Only a
    disk without them is looked up device by device.
    """
    try:
        status = drbd.GetProcStatus()
    except errors.BlockDeviceError as err:
        Fail("Cannot read the DRBD status: %s", err)
    result = []
    for value in disks:
        disk = backend_storage.DiskFromDict(value)
        minor = (disk.dynamic_params or {}).get(constants.DDP_LOCAL_MINOR)
        if disk.dev_type != constants.DT_DRBD8 or minor is None:
            if _FindDevice(disk) is None:
                result.append(disk.uuid)
            continue
        stats = status.GetMinor(int(minor))
        if not stats.is_in_use or stats.is_standalone or stats.is_diskless:
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


# --- replace-disks (issue 17): new local volumes under a running DRBD device ---------------
#
# The master replaces the volumes of one end of a mirror as Ganeti does:
# it detaches the old ones (the device goes Diskless and serves I/O from
# its peer), renames them aside, gives the new ones the old names
# (blockdev_rename) and attaches them with fresh metadata, so that the
# device resyncs from its peer.

def _LocalVolumes(values: Sequence[Any]) -> list[base.BlockDev]:
    """The existing volumes of ``values`` (data, then metadata)."""
    if len(values) != 2:
        Fail("A DRBD device has two local volumes (data and metadata), %d given",
             len(values))
    result = []
    for value in values:
        child = backend_storage.DiskFromDict(value)
        dev = _FindChild(child)
        if dev is None or not dev.dev_path:
            Fail("Volume %s not found on this node", _Describe(child))
        result.append(dev)
    return result


def BlockdevRemoveChildren(bdev_dict: Any, ndevs: Sequence[Any]) -> None:
    """Detach the local volumes ``ndevs`` (data, metadata) of a DRBD device,
    which must be the ones it runs on; a device without local storage (a
    failed disk, or detached before) is left as it is."""
    ((disk, dev),) = _DrbdDevices([bdev_dict])
    assert dev.minor is not None
    try:
        if dev.GetProcStatus().is_diskless:
            logging.info("drbd%d has no local storage, nothing to detach", dev.minor)
            return
        show = drbd.RunDrbdCommand(drbd_cmdgen.ShowCmd(dev.minor))
        if show.failed:
            Fail("Cannot read the configuration of %s: %s", _Describe(disk),
                 show.output.strip())
        info = drbd_info.ParseShow(show.stdout, f"drbdsetup show {dev.minor}")
    except errors.BlockDeviceError as err:
        Fail("Cannot get the state of %s: %s", _Describe(disk), err)
    if info.has_local_disk:
        data, meta = _LocalVolumes(ndevs)
        if (info.local_dev, info.meta_dev) != (data.dev_path, meta.dev_path):
            Fail("%s runs on %s (metadata %s), not on the given volumes %s and %s",
                 _Describe(disk), info.local_dev, info.meta_dev, data.dev_path,
                 meta.dev_path)
    result = drbd.RunDrbdCommand(drbd_cmdgen.DetachCmd(dev.minor))
    if result.failed:
        Fail("Cannot detach the local storage of %s: %s", _Describe(disk),
             result.output.strip() or result.fail_reason)


def BlockdevAddChildren(bdev_dict: Any, ndevs: Sequence[Any]) -> None:
    """Attach new volumes ``ndevs`` (data, metadata) to a DRBD device that
    has no local storage: fresh metadata goes on the metadata volume, so
    the device comes up Inconsistent and resyncs from its peer."""
    disk = backend_storage.DiskFromDict(bdev_dict)
    ((_, dev),) = _DrbdDevices([disk])
    assert dev.minor is not None
    children = [backend_storage.DiskFromDict(value) for value in ndevs]
    if len(children) != 2:
        Fail("A DRBD device has two local volumes (data and metadata), %d given",
             len(children))
    volumes = []
    for child in children:
        try:
            volumes.append(bdev.Assemble(child))
        except errors.BlockDeviceError as err:
            Fail("Cannot activate %s: %s", _Describe(child), err)
    meta = volumes[1]
    if not meta.dev_path or (children[1].size or 0) < drbd.MIN_META_SIZE:
        Fail("Metadata volume %s is missing or too small (%s MiB, at least %d)",
             _Describe(children[1]), children[1].size, drbd.MIN_META_SIZE)
    try:
        if not dev.GetProcStatus().is_diskless:
            Fail("%s has local storage; detach it first", _Describe(disk))
    except errors.BlockDeviceError as err:
        Fail("Cannot get the state of %s: %s", _Describe(disk), err)
    result = drbd.RunDrbdCommand(drbd_cmdgen.CreateMetaCmd(dev.minor, meta.dev_path))
    if result.failed:
        Fail("Cannot write DRBD metadata on %s: %s", meta.dev_path,
             result.output.strip() or result.fail_reason)
    disk.children = children
    try:
        bdev.Assemble(disk, volumes)
    except errors.BlockDeviceError as err:
        Fail("Cannot attach the new volumes to %s: %s", _Describe(disk), err)
