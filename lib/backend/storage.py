"""Block devices and storage units on the node (the ``blockdev_*``,
``storage_list`` and ``file_storage_dir_*`` calls).

Disks arrive as dicts of :class:`objects.Disk`; their ``logical_id`` holds
cluster paths, which :mod:`ganeti.storage.filestorage` maps onto this node
and checks against the allowed storage directories. Errors of the storage
layer become RPC failures with the same message.
"""

from __future__ import annotations

import logging
import os
from typing import Any
from collections.abc import Sequence

from ganeti import constants, errors, objects, pathutils, utils
from ganeti.backend import Fail
from ganeti.backend import node as backend_node
from ganeti.storage import base, bdev, container, filestorage, lvm


def DiskFromDict(value: Any) -> objects.Disk:
    """Build a Disk from its dict, failing with a clear message."""
    if isinstance(value, objects.Disk):
        return value
    if not isinstance(value, dict):
        Fail("Invalid disk %r: expected a disk object (dict)", value)
    try:
        return objects.Disk.FromDict(value)
    except (errors.GenericError, TypeError, ValueError) as err:
        Fail("Invalid disk %r: %s", value, err)


def _Describe(disk: objects.Disk) -> str:
    return f"{disk.dev_type} disk {disk.iv_name or disk.uuid} {tuple(disk.logical_id or ())!r}"


def _Find(disk: objects.Disk) -> base.BlockDev | None:
    try:
        return bdev.FindDevice(disk)
    except (errors.BlockDeviceError, errors.FileStoragePathError) as err:
        Fail("Cannot find %s: %s", _Describe(disk), err)


def FindOrFail(disk: objects.Disk) -> base.BlockDev:
    """Return the attached device of ``disk``, or fail saying it is missing."""
    dev = _Find(disk)
    if dev is None:
        Fail("Block device %s not found on this node", _Describe(disk))
    return dev


# --- blockdev_* calls -----------------------------------------------------------------


def _RecursiveAssemble(disk: objects.Disk, as_primary: bool) -> base.BlockDev | None:
    """Assemble the disk's children, then the disk (as Ganeti: a device that
    needs no assembly on a secondary is left alone there, and a device
    that may run without some children, DRBD, tolerates their failure);
    on the primary the device is opened. None when nothing was assembled."""
    children: list[base.BlockDev | None] = []
    if disk.children:
        needed = disk.ChildrenNeeded()
        may_fail = 0 if needed == -1 else len(disk.children) - needed
        for child in disk.children:
            try:
                dev = _RecursiveAssemble(child, as_primary)
            except errors.BlockDeviceError:
                if children.count(None) >= may_fail:
                    raise
                dev = None
            children.append(dev)
    if not (as_primary or disk.AssembleOnSecondary()):
        return None
    usable = [] if None in children else [c for c in children if c is not None]
    dev = bdev.Assemble(disk, usable)
    if as_primary:
        dev.Open()
    return dev


def BlockdevCreate(disk_dict: Any, size: int, owner: str, on_primary: bool,
                   info: str, excl_stor: bool) -> tuple[Any, ...]:
    """Create a disk's storage (its children exist already: they are
    assembled first); on the primary, or for devices that run on
    secondaries too, assemble it, and open it on the primary (for DRBD
    that makes this node the source of the initial sync). Returns the
    logical_id."""
    disk = DiskFromDict(disk_dict)
    if disk.dev_type == constants.DT_DISKLESS:
        Fail("Diskless instances have no disks to create")
    if not isinstance(size, int) or isinstance(size, bool) or size <= 0:
        Fail("Invalid size %r for %s: must be a positive integer (MiB)", size,
             _Describe(disk))
    disk.size = size
    try:
        children = []
        for child in disk.children or []:
            dev = _RecursiveAssemble(child, on_primary)
            if dev is None:
                dev = FindOrFail(child)
            children.append(dev)
        tag_now = bool(info) and bdev.DeviceClass(disk).CREATE_TAKES_INFO
        dev = bdev.Create(disk, children, bool(excl_stor),
                          **({"info": info} if tag_now else {}))
        if on_primary or disk.AssembleOnSecondary():
            dev.Assemble()
            if on_primary:
                dev.Open(force=True)
        if info and not tag_now:
            dev.SetInfo(info)
    except (errors.BlockDeviceError, errors.FileStoragePathError) as err:
        Fail("Cannot create %s: %s", _Describe(disk), err)
    logging.info("Created %s for %s", _Describe(disk), owner)
    return tuple(dev.unique_id)


def BlockdevRemove(disk_dict: Any) -> None:
    """Remove a disk's storage (a missing one is fine)."""
    disk = DiskFromDict(disk_dict)
    dev = _Find(disk)
    if dev is not None:
        try:
            dev.Shutdown()
            dev.Remove()
        except errors.BlockDeviceError as err:
            Fail("Cannot remove %s: %s", _Describe(disk), err)
    for child in disk.children or []:
        BlockdevRemove(child)


def _DiskLink(instance_name: str, idx: int) -> str:
    return f"{pathutils.DISK_LINKS_DIR}/{instance_name}{constants.DISK_SEPARATOR}{idx}"


def BlockdevAssemble(disk_dict: Any, instance_dict: Any, on_primary: bool,
                     idx: int) -> tuple[str | None, str | None]:
    """Make a disk usable; on the primary return (link path, URI).

    The link (``DISK_LINKS_DIR/<instance>:<idx>``) points at the device.
    """
    disk = DiskFromDict(disk_dict)
    try:
        dev = _RecursiveAssemble(disk, bool(on_primary))
    except (errors.BlockDeviceError, errors.FileStoragePathError) as err:
        Fail("Cannot assemble %s: %s", _Describe(disk), err)
    if not on_primary or dev is None:
        return None, None
    instance_name = instance_dict["name"] if isinstance(instance_dict, dict) \
        else str(instance_dict)
    assert dev.dev_path is not None
    link = _DiskLink(instance_name, idx)
    try:
        os.makedirs(pathutils.DISK_LINKS_DIR, exist_ok=True)
        utils.RemoveFile(link)
        os.symlink(dev.dev_path, link)
    except OSError as err:
        Fail("Cannot create the disk link %s to %s: %s", link, dev.dev_path, err)
    return link, dev.GetUserspaceAccessUri(
        instance_dict.get("hypervisor", "") if isinstance(instance_dict, dict) else "")


def BlockdevShutdown(disk_dict: Any) -> None:
    """Make a disk unusable (data stays); a missing disk is fine."""
    disk = DiskFromDict(disk_dict)
    dev = _Find(disk)
    if dev is not None:
        try:
            dev.Shutdown()
        except errors.BlockDeviceError as err:
            Fail("Cannot shut down %s: %s", _Describe(disk), err)
    for child in disk.children or []:
        BlockdevShutdown(child)


def BlockdevGrow(disk_dict: Any, amount: int, dryrun: bool, backingstore: bool,
                 excl_stor: bool) -> None:
    """Grow a disk by ``amount`` MiB."""
    disk = DiskFromDict(disk_dict)
    dev = FindOrFail(disk)
    try:
        dev.Grow(amount, bool(dryrun), bool(backingstore), bool(excl_stor))
    except (errors.BlockDeviceError, errors.StorageError) as err:
        Fail("Cannot grow %s: %s", _Describe(disk), err)


def BlockdevRename(devlist: Sequence[Any]) -> None:
    """Rename disks: ``devlist`` holds (disk, new logical_id) pairs."""
    problems = []
    for entry in devlist:
        if not isinstance(entry, (list, tuple)) or len(entry) != 2:
            Fail("Invalid rename entry %r: expected (disk, new logical_id)", entry)
        disk = DiskFromDict(entry[0])
        dev = _Find(disk)
        if dev is None:
            problems.append(f"{_Describe(disk)} not found")
            continue
        try:
            dev.Rename(tuple(entry[1]))
        except (errors.BlockDeviceError, errors.FileStoragePathError) as err:
            problems.append(f"cannot rename {_Describe(disk)}: {err}")
    if problems:
        Fail("Renaming disks failed: %s", "; ".join(problems))


def BlockdevFind(disk_dict: Any) -> dict[str, Any] | None:
    """Return the BlockDevStatus (as a dict) of a disk, or None if missing."""
    dev = _Find(DiskFromDict(disk_dict))
    if dev is None:
        return None
    return dev.GetSyncStatus().ToDict()


def BlockdevGetMirrorStatus(disks: Sequence[Any]) -> list[dict[str, Any]]:
    """Return the combined sync status of each disk (all must exist)."""
    return [FindOrFail(DiskFromDict(d)).CombinedSyncStatus().ToDict() for d in disks]


def BlockdevGetDimensions(disks: Sequence[Any]) -> list[tuple[int, int | None] | None]:
    """Return (size in bytes, spindles) of each disk, None for missing ones."""
    result: list[tuple[int, int | None] | None] = []
    for value in disks:
        dev = _Find(DiskFromDict(value))
        result.append(dev.GetActualDimensions() if dev is not None else None)
    return result


def BlockdevSnapshot(disk_dict: Any, snap_name: str | None,
                     snap_size: int | None) -> tuple[Any, ...]:
    """Snapshot a disk; return the snapshot's logical_id."""
    disk = DiskFromDict(disk_dict)
    dev = FindOrFail(disk)
    try:
        return tuple(dev.Snapshot(snap_name, snap_size))
    except (errors.BlockDeviceError, errors.FileStoragePathError) as err:
        Fail("Cannot snapshot %s: %s", _Describe(disk), err)


def BlockdevSetInfo(disk_dict: Any, info: str) -> None:
    """Attach metadata to a disk (no-op for file disks)."""
    FindOrFail(DiskFromDict(disk_dict)).SetInfo(info)


# --- Storage units and file storage directories ---------------------------------------


def StorageList(su_name: str, su_args: Sequence[Any], name: str | None,
                fields: list[str]) -> list[list[Any]]:
    """List storage units of type ``su_name`` with the given fields."""
    try:
        return container.GetStorage(su_name, *su_args).List(name, fields)
    except (errors.StorageError, TypeError) as err:
        Fail("Cannot list %s storage: %s", su_name, err)


def _CheckStorageDir(path: Any) -> str:
    for dev_type in (constants.DT_FILE, constants.DT_SHARED_FILE):
        try:
            return filestorage.CheckFileStoragePath(path, dev_type)
        except errors.FileStoragePathError as err:
            last = err
    Fail("%s", last)


def FileStorageDirCreate(file_storage_dir: str) -> None:
    """Create an instance's file storage directory."""
    path = _CheckStorageDir(file_storage_dir)
    if os.path.exists(path) and not os.path.isdir(path):
        Fail("Cannot create file storage directory %s: a file is in the way", path)
    try:
        os.makedirs(path, mode=0o750, exist_ok=True)
    except OSError as err:
        Fail("Cannot create file storage directory %s: %s", path, err)


def FileStorageDirRemove(file_storage_dir: str) -> None:
    """Remove an (empty) instance file storage directory."""
    path = _CheckStorageDir(file_storage_dir)
    if not os.path.exists(path):
        return
    if not os.path.isdir(path):
        Fail("%s is not a directory", path)
    try:
        os.rmdir(path)
    except OSError as err:
        Fail("Cannot remove file storage directory %s: %s", path, err)


def FileStorageDirRename(old_file_storage_dir: str, new_file_storage_dir: str) -> None:
    """Rename an instance file storage directory."""
    old = _CheckStorageDir(old_file_storage_dir)
    new = _CheckStorageDir(new_file_storage_dir)
    if not os.path.isdir(old):
        if os.path.isdir(new):
            return
        Fail("Cannot rename %s: not a directory", old)
    if os.path.exists(new):
        Fail("Cannot rename %s to %s: the target exists", old, new)
    try:
        os.rename(old, new)
    except OSError as err:
        Fail("Cannot rename %s to %s: %s", old, new, err)


def _FileUnitSpace(storage_type: str, key: str, params: Sequence[Any]) -> dict[str, Any]:
    try:
        return container.GetStorage(storage_type).GetSpace(key)
    except errors.StorageError as err:
        Fail("%s", err)


# node_info reports file storage space through the storage units, which map
# the cluster's paths onto this node
backend_node.STORAGE_SPACE_FNS[constants.ST_FILE] = _FileUnitSpace
backend_node.STORAGE_SPACE_FNS[constants.ST_SHARED_FILE] = _FileUnitSpace


# --- Storage unit changes and LVM (storage_modify, storage_execute, vg_list,
# lv_list, node_volumes; see ganeti.storage.lvm) -----------------------------------------

_LVM_ERRORS = (errors.StorageError, errors.BlockDeviceError)


def StorageModify(su_name: str, su_args: Sequence[Any], name: str,
                  changes: dict[str, Any]) -> None:
    """Change fields of a storage unit (e.g. an LVM PV's ``allocatable``)."""
    if not isinstance(changes, dict):
        Fail("Invalid changes %r for %s storage unit '%s': expected a dict of field"
             " -> value", changes, su_name, name)
    try:
        container.GetStorage(su_name, *(su_args or [])).Modify(name, changes)
    except (*_LVM_ERRORS, TypeError) as err:
        Fail("Cannot modify %s storage unit '%s': %s", su_name, name, err)


def StorageExecute(su_name: str, su_args: Sequence[Any], name: str,
                   op: str) -> list[str]:
    """Run operation ``op`` (e.g. fix-consistency) on a storage unit; return
    its output lines."""
    try:
        return container.GetStorage(su_name, *(su_args or [])).Execute(name, op)
    except (*_LVM_ERRORS, TypeError) as err:
        Fail("Cannot run '%s' on %s storage unit '%s': %s", op, su_name, name, err)


def ListVolumeGroups() -> dict[str, int]:
    """{vg name: size MiB} of this node's volume groups."""
    try:
        return lvm.GetVolumeGroups()
    except _LVM_ERRORS as err:
        Fail("Cannot list the volume groups: %s", err)


def GetLogicalVolumes(vg_names: Sequence[str] | None) -> dict[str, Any]:
    """{"vg/lv": (size MiB, inactive, online)} of the given VGs (None: all)."""
    if vg_names is not None and not (
            isinstance(vg_names, (list, tuple))
            and all(isinstance(name, str) for name in vg_names)):
        Fail("Invalid volume group names %r: expected a list of names", vg_names)
    try:
        return lvm.GetLogicalVolumes(list(vg_names) if vg_names else None)
    except _LVM_ERRORS as err:
        Fail("Cannot list the logical volumes: %s", err)


def NodeVolumes() -> list[dict[str, Any]]:
    """Every logical volume once per PV it uses: {name, vg, size, dev}."""
    try:
        return lvm.ListVolumes()
    except _LVM_ERRORS as err:
        Fail("Cannot list the logical volumes: %s", err)


def _ExclusiveStorageParam(storage_type: str, key: str, params: Any) -> bool:
    """The exclusive storage flag of node_info's LVM parameters ([] or [flag])."""
    if not params:
        return False
    if isinstance(params, (list, tuple)) and len(params) == 1 and \
            isinstance(params[0], bool):
        return params[0]
    Fail("Invalid parameters %r for %s storage %s: expected [exclusive_storage"
         " (a boolean)]", params, storage_type, key)


def _LvmVgSpace(storage_type: str, key: str, params: Sequence[Any]) -> dict[str, Any]:
    excl_stor = _ExclusiveStorageParam(storage_type, key, params)
    try:
        space = lvm.GetVgSpace(key, excl_stor)
    except _LVM_ERRORS as err:
        Fail("Cannot get the free space of volume group %s: %s", key, err)
    return {"type": storage_type, "name": key, **space}


def _LvmPvSpace(storage_type: str, key: str, params: Sequence[Any]) -> dict[str, Any]:
    # As Ganeti: spindles (empty PVs, all PVs) of volume group ``key``, which
    # only count with exclusive storage
    if not _ExclusiveStorageParam(storage_type, key, params):
        return {"type": storage_type, "name": key, "storage_free": 0, "storage_size": 0}
    try:
        space = lvm.GetVgSpindles(key)
    except _LVM_ERRORS as err:
        Fail("Cannot count the spindles of volume group %s: %s", key, err)
    return {"type": storage_type, "name": key, **space}


backend_node.STORAGE_SPACE_FNS[constants.ST_LVM_VG] = _LvmVgSpace
backend_node.STORAGE_SPACE_FNS[constants.ST_LVM_PV] = _LvmPvSpace
