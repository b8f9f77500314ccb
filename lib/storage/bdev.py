"""Find, assemble and create block devices by disk type.

``diskless`` disks have no device at all: Ganeti handles them above this
level, and so do we (an instance with the diskless template has no disks).
Asking for a device of a type without an implementation here (plain, drbd,
...) raises :class:`errors.BlockDeviceError` naming the type.
"""

from __future__ import annotations

from typing import Any

from ganeti import constants, errors, objects
from ganeti.storage import base, filestorage, lvm
from ganeti.storage import blockdev, drbd, extstorage, rbd

#: Disk type -> device class
DEV_MAP: dict[str, type[base.BlockDev]] = {
    constants.DT_FILE: filestorage.FileStorage,
    constants.DT_SHARED_FILE: filestorage.SharedFileStorage,
    constants.DT_PLAIN: lvm.LogicalVolume,
    constants.DT_BLOCK: blockdev.PersistentBlockDevice,
    constants.DT_EXT: extstorage.ExtStorageDevice,
    constants.DT_RBD: rbd.RADOSBlockDevice,
    constants.DT_DRBD8: drbd.DRBD8Dev,
}


def DeviceClass(disk: objects.Disk) -> type[base.BlockDev]:
    dev_type = base.DiskTypeOf(disk)
    cls = DEV_MAP.get(dev_type)
    if cls is None:
        raise errors.BlockDeviceError(
            f"Disk type '{dev_type}' is not supported on this node (supported:"
            f" {', '.join(sorted(DEV_MAP))})")
    return cls


def _Children(disk: objects.Disk) -> list[base.BlockDev]:
    """The attached devices of the disk's children; none at all when one
    is missing (a DRBD device runs without its local storage, as Ganeti's)."""
    result = []
    for child in disk.children or []:
        dev = FindDevice(child)
        if dev is None:
            return []
        result.append(dev)
    return result


def _Names(disk: objects.Disk) -> dict[str, Any]:
    # The disk's name and UUID, for devices that pass them on (ext: VOL_CNAME
    # and VOL_UUID of the provider scripts)
    return {"name": disk.name, "uuid": disk.uuid}


def _Make(disk: objects.Disk, children: list[base.BlockDev]) -> base.BlockDev:
    cls = DeviceClass(disk)
    return cls(tuple(disk.logical_id), children, disk.size, disk.params or {},
               getattr(disk, "dynamic_params", None), **_Names(disk))


def FindDevice(disk: objects.Disk, children: list[base.BlockDev] | None = None
               ) -> base.BlockDev | None:
    """Return the attached device of ``disk``, or None if it does not exist."""
    dev = _Make(disk, _Children(disk) if children is None else children)
    return dev if dev.attached else None


def Assemble(disk: objects.Disk, children: list[base.BlockDev] | None = None
             ) -> base.BlockDev:
    """Return the device of ``disk``, assembled.

    @raise errors.BlockDeviceError: if it does not exist
    """
    dev = _Make(disk, _Children(disk) if children is None else children)
    dev.Assemble()
    return dev


def Create(disk: objects.Disk, children: list[base.BlockDev], excl_stor: bool,
           **kwargs: Any) -> base.BlockDev:
    """Create the storage of ``disk`` and return its device."""
    cls = DeviceClass(disk)
    return cls.Create(tuple(disk.logical_id), children, disk.size, disk.spindles,
                      disk.params or {}, excl_stor,
                      dyn_params=getattr(disk, "dynamic_params", None),
                      **{**_Names(disk), **kwargs})
