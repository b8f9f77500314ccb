"""storage.blockdev: adopted block devices, for real on loop devices."""

from __future__ import annotations

import os
import subprocess

import pytest

from ganeti import constants, errors, objects
from ganeti.backend import RPCFail
from ganeti.backend import storage as backend_storage
from ganeti.storage import base, bdev, blockdev

MIB = 1024 * 1024

needs_root = pytest.mark.skipif(os.geteuid() != 0,
                                reason="loop devices (losetup) need root")


def _LoopDevicesOf(path: str) -> list[str]:
    out = subprocess.run(["losetup", "-j", path], check=True, capture_output=True,
                         text=True).stdout
    return [line.split(":", 1)[0] for line in out.splitlines() if line.strip()]


@pytest.fixture
def loop_device(tmp_path):
    """A loop device on an 8 MiB sparse file; detached afterwards whatever
    the test did."""
    image = tmp_path / "backing.img"
    with open(image, "wb") as fd:
        fd.truncate(8 * MIB)
    dev = subprocess.run(["losetup", "-f", "--show", str(image)], check=True,
                         capture_output=True, text=True).stdout.strip()
    yield dev, str(image)
    for loop in _LoopDevicesOf(str(image)):
        subprocess.run(["losetup", "-d", loop], check=False)
    assert _LoopDevicesOf(str(image)) == []


@pytest.fixture
def adopt_root(tmp_path, monkeypatch):
    """A stand-in for /dev/disk/ made by the test."""
    root = tmp_path / "dev-disk"
    (root / "by-id").mkdir(parents=True)
    monkeypatch.setattr(blockdev, "ADOPTABLE_ROOT", str(root) + "/")
    return str(root)


def _Disk(path: str, size: int = 8) -> objects.Disk:
    return objects.Disk(dev_type=constants.DT_BLOCK,
                        logical_id=(constants.BLOCKDEV_DRIVER_MANUAL, path), size=size,
                        mode=constants.DISK_RDWR, params={}, children=[],
                        uuid="disk-uuid", iv_name="disk/0")


def test_default_root_is_ganetis():
    assert blockdev.ADOPTABLE_ROOT == constants.ADOPTABLE_BLOCKDEV_ROOT == "/dev/disk/"


@pytest.mark.parametrize("path,message", [
    ("relative/dev", "normalised absolute path"),
    ("/dev/disk/../loop0", "normalised absolute path"),
    ("/dev/loop0", "lies outside /dev/disk/ and cannot be adopted"),
    ("/dev/disk", "lies outside /dev/disk/"),
    ("/srv/disk/x", "lies outside /dev/disk/"),
    (42, "normalised absolute path"),
])
def test_path_checks(path, message):
    with pytest.raises(errors.BlockDeviceError, match=message):
        blockdev.CheckAdoptablePath(path)


def test_symlink_out_of_dev(adopt_root, tmp_path):
    target = tmp_path / "plain-file"
    target.write_text("x")
    link = os.path.join(adopt_root, "by-id", "evil")
    os.symlink(target, link)
    with pytest.raises(errors.BlockDeviceError, match=f"resolves to {target}, which lies"
                       " outside /dev/"):
        bdev.FindDevice(_Disk(link))


def test_wrong_driver_and_id():
    with pytest.raises(errors.BlockDeviceError, match="Invalid driver 'loop'"):
        blockdev.PersistentBlockDevice(("loop", "/dev/disk/by-id/x"), [], 1, {})
    with pytest.raises(errors.BlockDeviceError, match="expected \\(driver, path\\)"):
        blockdev.PersistentBlockDevice(("manual",), [], 1, {})


def test_not_a_block_device(adopt_root):
    link = os.path.join(adopt_root, "by-id", "null")
    os.symlink("/dev/null", link)                       # a character device
    assert bdev.FindDevice(_Disk(link)) is None
    with pytest.raises(errors.BlockDeviceError, match="/dev/disk|is not a block device"):
        bdev.Create(_Disk(link), [], False)
    missing = os.path.join(adopt_root, "by-id", "missing")
    os.symlink("/dev/no-such-device-here", missing)
    assert bdev.FindDevice(_Disk(missing)) is None
    with pytest.raises(errors.BlockDeviceError, match="Cannot stat"):
        bdev.Create(_Disk(missing), [], False)
    with pytest.raises(errors.BlockDeviceError, match="Cannot stat"):
        bdev.Assemble(_Disk(missing))


@needs_root
def test_adopt_loop_device(adopt_root, loop_device):
    dev, image = loop_device
    link = os.path.join(adopt_root, "by-id", "test-loop")
    os.symlink(dev, link)
    disk = _Disk(link)
    created = bdev.Create(disk, [], False)
    st = os.stat(dev)
    assert (created.dev_path, created.major, created.minor) == \
        (link, os.major(st.st_rdev), os.minor(st.st_rdev))
    assert created.major == 7                           # the loop driver
    found = bdev.FindDevice(disk)
    assert found is not None and found.attached
    assert found.GetActualSize() == 8 * MIB
    assert found.GetActualDimensions() == (8 * MIB, None)
    status = found.CombinedSyncStatus()
    assert (status.is_degraded, status.ldisk_status) == (False, base.LDS_OKAY)
    # Data written through the device survives every operation, Remove too
    fd = os.open(link, os.O_RDWR)
    try:
        os.pwrite(fd, b"adopted data", MIB)
        os.fsync(fd)
    finally:
        os.close(fd)
    bdev.Assemble(disk)
    found.Shutdown()
    found.Open()
    found.Close()
    with pytest.raises(errors.BlockDeviceError, match="Grow is not supported"):
        found.Grow(1, False, True, False)
    with pytest.raises(errors.BlockDeviceError, match="Rename is not supported"):
        found.Rename((constants.BLOCKDEV_DRIVER_MANUAL, link + "2"))
    found.Remove()
    assert os.path.exists(dev) and _LoopDevicesOf(image) == [dev]
    with open(image, "rb") as fd_img:
        fd_img.seek(MIB)
        assert fd_img.read(12) == b"adopted data"


@needs_root
def test_backend_calls(adopt_root, loop_device):
    """What LUInstanceCreate asks of the node for an adoption: the size."""
    dev, _ = loop_device
    link = os.path.join(adopt_root, "by-id", "lun0")
    os.symlink(dev, link)
    missing = os.path.join(adopt_root, "by-id", "lun1")
    dims = backend_storage.BlockdevGetDimensions([_Disk(link).ToDict(),
                                                  _Disk(missing).ToDict()])
    assert dims == [(8 * MIB, None), None]
    # Removing the disk of an instance leaves the device alone
    backend_storage.BlockdevRemove(_Disk(link).ToDict())
    assert bdev.FindDevice(_Disk(link)) is not None
    with pytest.raises(RPCFail, match="Cannot find blockdev disk.*lies outside"
                       " .*dev-disk/ and cannot be adopted"):
        backend_storage.BlockdevGetDimensions([_Disk(dev).ToDict()])


@needs_root
def test_block_device_size(loop_device):
    dev, _ = loop_device
    assert blockdev.GetBlockDeviceSize(dev) == 8 * MIB
    with pytest.raises(errors.BlockDeviceError, match="Cannot open block device"):
        blockdev.GetBlockDeviceSize("/dev/no-such-device-here")
