"""Find, assemble and create block devices by disk type.

``diskless`` disks have no device at all: Ganeti handles them above this
level, and so do we (an instance with the diskless template has no disks).
Asking for a device of a type without an implementation here (plain, drbd,
...) raises :class:`errors.BlockDeviceError` naming the type.
"""

from __future__ import annotations

from typing import Any

from ganeti import constants, errors, objects
from ganeti.storage import base, filestorage

#: Disk type -> device class
DEV_MAP: dict[str, type[base.BlockDev]] = {
    constants.DT_FILE: filestorage.FileStorage,
    constants.DT_SHARED_FILE: filestorage.SharedFileStorage,
}


def _DeviceClass(disk: objects.Disk) -> type[base.BlockDev]:
    dev_type = base.DiskTypeOf(disk)
    cls = DEV_MAP.get(dev_type)
    if cls is None:
        raise errors.BlockDeviceError(
            f"Disk type '{dev_type}' is not supported on this node (supported:"
            f" {', '.join(sorted(DEV_MAP))})")
    return cls


def _Children(disk: objects.Disk) -> list[base.BlockDev]:
    result = []
    for child in disk.children or []:
        dev = FindDevice(child, [])
        if dev is None:
            raise errors.BlockDeviceError(f"Child device {child.logical_id!r} not found")
        result.append(dev)
    return result


def FindDevice(disk: objects.Disk, children: list[base.BlockDev] | None = None
               ) -> base.BlockDev | None:
    """Return the attached device of ``disk``, or None if it does not exist."""
    cls = _DeviceClass(disk)
    if children is None:
        children = _Children(disk)
    dev = cls(tuple(disk.logical_id), children, disk.size, disk.params or {},
              getattr(disk, "dynamic_params", None))
    return dev if dev.attached else None


def Assemble(disk: objects.Disk, children: list[base.BlockDev] | None = None
             ) -> base.BlockDev:
    """Return the device of ``disk``, assembled.

    @raise errors.BlockDeviceError: if it does not exist
    """
    cls = _DeviceClass(disk)
    if children is None:
        children = _Children(disk)
    dev = cls(tuple(disk.logical_id), children, disk.size, disk.params or {})
    dev.Assemble()
    return dev


def Create(disk: objects.Disk, children: list[base.BlockDev], excl_stor: bool,
           **kwargs: Any) -> base.BlockDev:
    """Create the storage of ``disk`` and return its device."""
    cls = _DeviceClass(disk)
    return cls.Create(tuple(disk.logical_id), children, disk.size, disk.spindles,
                      disk.params or {}, excl_stor, **kwargs)
