"""Adopted block devices (the ``blockdev`` disk template).

A ``blockdev`` disk is a block device that exists on the node before
Ganeti knows it (a SAN LUN, a multipath device, ...): its ``logical_id``
is ``("manual", path)``. Ganeti never creates, grows, renames or destroys
such a device: :meth:`PersistentBlockDevice.Create` only checks that it is
there, :meth:`~PersistentBlockDevice.Remove` leaves its data alone.

As in Ganeti, the path must lie below ``constants.ADOPTABLE_BLOCKDEV_ROOT``
(``/dev/disk/``, where udev keeps stable names such as ``by-id/...``) and
must resolve to a device node below ``/dev/``. Tests point
:data:`ADOPTABLE_ROOT` elsewhere. Device paths are the node's real ones,
also in a virtual cluster: ``/dev`` is not per node.

:func:`GetBlockDeviceSize` (the ``BLKGETSIZE64`` ioctl) serves the other
device types that end in a kernel block device (``ext``, ``rbd``).
"""

from __future__ import annotations

import fcntl
import os
import stat
import struct
from typing import Any

from ganeti import constants, errors, utils
from ganeti.storage import base

#: Adoptable device paths must lie below this directory; tests change it
ADOPTABLE_ROOT = constants.ADOPTABLE_BLOCKDEV_ROOT
#: ... and resolve (symlinks followed) to a device node below this one
DEVICE_ROOT = "/dev/"

# _IOR(0x12, 114, size_t): the size of a block device in bytes
_BLKGETSIZE64 = 0x80081272


def GetBlockDeviceSize(path: str) -> int:
    """The size in bytes of the block device at ``path``.

    @raise errors.BlockDeviceError: if it cannot be opened or asked
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as err:
        raise errors.BlockDeviceError(f"Cannot open block device {path}: {err}") \
            from err
    try:
        buf = fcntl.ioctl(fd, _BLKGETSIZE64, b"\0" * 8)
    except OSError as err:
        raise errors.BlockDeviceError(
            f"Cannot get the size of block device {path}: {err}") from err
    finally:
        os.close(fd)
    return struct.unpack("=Q", buf)[0]


def StatBlockDevice(path: str) -> os.stat_result:
    """``os.stat`` of ``path``, which must be a block device.

    @raise errors.BlockDeviceError: if it is missing or not a block device
    """
    try:
        st = os.stat(path)
    except OSError as err:
        raise errors.BlockDeviceError(f"Cannot stat {path}: {err}") from err
    if not stat.S_ISBLK(st.st_mode):
        raise errors.BlockDeviceError(f"{path} is not a block device")
    return st


def CheckAdoptablePath(path: Any) -> str:
    """Return ``path`` if a blockdev disk may use it.

    It must be a normalised absolute path below :data:`ADOPTABLE_ROOT`
    whose target (symlinks followed), if it exists, lies below ``/dev/``.

    @raise errors.BlockDeviceError: naming the path and the rule it breaks
    """
    if not isinstance(path, str) or not utils.IsNormAbsPath(path):
        raise errors.BlockDeviceError(
            f"Block device path {path!r} must be a normalised absolute path")
    root = ADOPTABLE_ROOT.rstrip("/")
    if not utils.IsBelowDir(root, path):
        raise errors.BlockDeviceError(
            f"Device node {path} lies outside {ADOPTABLE_ROOT} and cannot be adopted")
    # A missing device is not an error here (Attach reports it missing)
    real = os.path.realpath(path)
    if os.path.exists(real) and not utils.IsBelowDir(DEVICE_ROOT.rstrip("/"), real):
        raise errors.BlockDeviceError(
            f"Device node {path} resolves to {real}, which lies outside {DEVICE_ROOT}")
    return path


def _CheckUniqueId(unique_id: Any) -> tuple[str, str]:
    if not isinstance(unique_id, (tuple, list)) or len(unique_id) != 2:
        base.ThrowError("Invalid blockdev logical_id %r: expected (driver, path)",
                        unique_id)
    driver, path = unique_id
    if driver != constants.BLOCKDEV_DRIVER_MANUAL:
        base.ThrowError("Invalid driver '%s' of block device %s (valid: %s)", driver,
                        path, constants.BLOCKDEV_DRIVER_MANUAL)
    return driver, CheckAdoptablePath(path)


class PersistentBlockDevice(base.BlockDev):
    """A block device adopted as it is; ``unique_id`` is ("manual", path).

    ``dev_path`` is the configured path (the stable /dev/disk/... name, not
    its current target), so that the instance keeps it across reboots.
    """

    def __init__(self, unique_id, children, size, params, dyn_params=None, **kwargs):
        super().__init__(unique_id, children, size, params, dyn_params, **kwargs)
        self.driver, self.path = _CheckUniqueId(unique_id)
        self.Attach()

    @classmethod
    def Create(cls, unique_id, children, size, spindles, params, excl_stor,
               dyn_params=None, **kwargs):
        """Nothing is created: check that the device exists and return it."""
        if excl_stor:
            base.ThrowError("Exclusive storage is not supported by adopted block devices")
        _, path = _CheckUniqueId(unique_id)
        StatBlockDevice(path)
        return cls(unique_id, children, size, params, dyn_params, **kwargs)

    def Attach(self, **kwargs: Any) -> bool:
        """Found if the path is a block device; records its major/minor."""
        self.attached = False
        self.dev_path = self.major = self.minor = None
        try:
            st = StatBlockDevice(self.path)
        except errors.BlockDeviceError:
            return False
        self.major, self.minor = os.major(st.st_rdev), os.minor(st.st_rdev)
        self.dev_path = self.path
        self.attached = True
        return True

    def Assemble(self) -> None:
        """Nothing to assemble; the device must be there."""
        if not self.Attach():
            StatBlockDevice(self.path)  # raises, saying why
            base.ThrowError("Block device %s not found", self.path)

    def Shutdown(self) -> None:
        """Nothing to undo: the device stays as it is."""

    def Remove(self) -> None:
        """Never touch an adopted device's data: only forget it."""
        self.attached = False
        self.dev_path = None

    def Rename(self, new_id):
        """Adopted devices keep their names."""
        base.ThrowError("Rename is not supported for adopted block devices (%s)",
                        self.path)

    def Grow(self, amount, dryrun, backingstore, excl_stor):
        """Adopted devices are grown outside Ganeti, if at all."""
        base.ThrowError("Grow is not supported for adopted block devices (%s)", self.path)

    def GetActualSize(self) -> int:
        """The device's size in bytes, asked from the kernel."""
        if not self.Attach():
            base.ThrowError("Cannot get the size of %s: not a block device", self.path)
        return GetBlockDeviceSize(self.path)

    def GetSyncStatus(self) -> Any:
        """Never syncing; a missing device is faulty."""
        status = super().GetSyncStatus()
        if not self.attached:
            status.is_degraded = True
            status.ldisk_status = base.LDS_FAULTY
        return status
