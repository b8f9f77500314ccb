"""Copying a disk's data to a disk of another template on the same node
(``blockdev_convert``, for ``gnt-instance modify -t`` of a stopped
instance, :mod:`ganeti.cmdlib.instance_convert`).

Both disks are assembled here (children first, as for an instance start),
the data is copied in 1 MiB blocks up to the size of the destination disk
in the configuration, and the destination is flushed. Where the
destination is a regular file (file and sharedfile disks, created sparse)
blocks of zeros are skipped, so that the image stays sparse; a block
device is written throughout, since it may hold another disk's old data.
Both devices are shut down again afterwards, whether the copy worked or
not (the instance is stopped: nothing else uses them).
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Callable
from typing import Any

from ganeti import errors, objects
from ganeti.backend import Fail
from ganeti.backend import storage as backend_storage
from ganeti.storage import base

#: Bytes per read and write
BLOCK_SIZE = 1024 * 1024
_ZEROS = bytes(BLOCK_SIZE)


def Assemble(disk: objects.Disk, what: str) -> base.BlockDev:
    """Assemble ``disk`` (children first) as on the primary node and return
    its device, failing with a message calling it the ``what`` disk."""
    try:
        dev = backend_storage._RecursiveAssemble(disk, True)
    except (errors.BlockDeviceError, errors.FileStoragePathError) as err:
        Fail("Cannot assemble the %s disk %s: %s", what,
             backend_storage._Describe(disk), err)
    if dev is None or not dev.dev_path:
        Fail("The %s disk %s has no device path after assembly", what,
             backend_storage._Describe(disk))
    return dev


def ShutdownDevice(dev: base.BlockDev | None, disk: objects.Disk) -> None:
    """Shut down ``dev`` (assembled from ``disk``) and the disk's children;
    a failure is only logged, since the caller's result matters more."""
    if dev is None:
        return
    try:
        dev.Shutdown()
        for child in disk.children or []:
            backend_storage.BlockdevShutdown(child)
    except Exception as err:  # noqa: BLE001 - the copy's result matters more
        logging.warning("Cannot shut down %s after writing to it: %s",
                        backend_storage._Describe(disk), err)


def CopyStream(read: Callable[[int], bytes], dst_path: str, size: int,
               sparse: bool | None = None) -> int:
    """Write what ``read(n)`` returns (at most ``n`` bytes, empty at the
    end) to ``dst_path`` from offset 0 without truncating it, up to
    ``size`` bytes, and flush it; return the bytes written.

    With ``sparse`` blocks of zeros are skipped rather than written: right
    for a new sparse file only, as a skipped block keeps what the
    destination held. The default is to skip them where the destination is
    a regular file. OSError on a failure."""
    dst = os.open(dst_path, os.O_WRONLY)
    try:
        if sparse is None:
            sparse = stat.S_ISREG(os.fstat(dst).st_mode)
        copied = 0
        while copied < size:
            block = read(min(BLOCK_SIZE, size - copied))
            if not block:
                break
            if sparse and block == _ZEROS[:len(block)]:
                os.lseek(dst, len(block), os.SEEK_CUR)
            else:
                view = memoryview(block)
                while view:
                    written = os.write(dst, view)
                    view = view[written:]
            copied += len(block)
        os.fsync(dst)
    finally:
        os.close(dst)
    return copied


def CopyData(src_path: str, dst_path: str, size: int, sparse: bool | None = None) -> int:
    """Copy up to ``size`` bytes from ``src_path`` to ``dst_path`` without
    truncating the destination; return the bytes copied (less than
    ``size`` when the source is shorter). ``sparse`` as for
    :func:`CopyStream`. OSError on a failure."""
    src = os.open(src_path, os.O_RDONLY)
    try:
        return CopyStream(lambda count: os.read(src, count), dst_path, size, sparse)
    finally:
        os.close(src)


def BlockdevConvert(src_dict: Any, dst_dict: Any) -> int:
    """Copy the data of the disk ``src_dict`` into ``dst_dict`` (both on
    this node); the destination must exist already. Returns the bytes
    copied."""
    src_disk = backend_storage.DiskFromDict(src_dict)
    dst_disk = backend_storage.DiskFromDict(dst_dict)
    if not isinstance(dst_disk.size, int) or dst_disk.size <= 0:
        Fail("Invalid size %r of the destination disk %s", dst_disk.size,
             backend_storage._Describe(dst_disk))
    src = dst = None
    try:
        src = Assemble(src_disk, "source")
        dst = Assemble(dst_disk, "destination")
        assert src.dev_path is not None and dst.dev_path is not None
        logging.info("Copying %s (%s) to %s (%s)", backend_storage._Describe(src_disk),
                     src.dev_path, backend_storage._Describe(dst_disk), dst.dev_path)
        try:
            copied = CopyData(src.dev_path, dst.dev_path, dst_disk.size * 1024 * 1024)
        except OSError as err:
            Fail("Copying %s to %s failed: %s", src.dev_path, dst.dev_path, err)
    finally:
        ShutdownDevice(dst, dst_disk)
        ShutdownDevice(src, src_disk)
    logging.info("Copied %d bytes from %s to %s", copied, src.dev_path, dst.dev_path)
    return copied
