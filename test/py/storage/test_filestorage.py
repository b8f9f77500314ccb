"""storage.filestorage and storage.bdev: file disks and their path checks."""

from __future__ import annotations

import os

import pytest

from ganeti import constants, errors, objects, pathutils, ssconf
from ganeti.storage import base, bdev, filestorage

FSD = "/srv/ganeti/file-storage"


def _Disk(path=f"{FSD}/inst1/disk0", size=4, dev_type=constants.DT_FILE):
    return objects.Disk(dev_type=dev_type, logical_id=(constants.FD_LOOP, path),
                        size=size, mode=constants.DISK_RDWR, params={}, children=[],
                        uuid="disk-uuid", iv_name="disk/0")


def test_localize(node_root):
    assert filestorage.LocalizePath(f"{FSD}/x") == f"{node_root}{FSD}/x"
    assert filestorage.LocalizePath(f"{node_root}{FSD}/x") == f"{node_root}{FSD}/x"
    other = os.path.join(os.path.dirname(node_root), "node2.example.com")
    assert filestorage.LocalizePath(f"{other}{FSD}/x") == f"{node_root}{FSD}/x"


def test_localize_outside_virtual_cluster():
    assert not pathutils.IsVirtualCluster()
    assert filestorage.LocalizePath(f"{FSD}/x") == f"{FSD}/x"


def test_create_find_grow_remove(node_root):
    disk = _Disk()
    assert bdev.FindDevice(disk) is None
    dev = bdev.Create(disk, [], False)
    local = f"{node_root}{FSD}/inst1/disk0"
    assert dev.dev_path == local and os.path.getsize(local) == 4 * 1024 * 1024
    # sparse: hardly any blocks allocated
    assert os.stat(local).st_blocks * 512 < 1024 * 1024
    found = bdev.FindDevice(disk)
    assert found is not None and found.dev_path == local
    status = found.CombinedSyncStatus()
    assert (status.is_degraded, status.ldisk_status) == (False, base.LDS_OKAY)
    found.Grow(2, True, True, False)  # dry run
    assert os.path.getsize(local) == 4 * 1024 * 1024
    found.Grow(2, False, True, False)
    assert os.path.getsize(local) == 6 * 1024 * 1024
    assert found.GetActualDimensions() == (6 * 1024 * 1024, None)
    bdev.Assemble(disk)
    found.Remove()
    assert not os.path.exists(local)
    found.Remove()  # idempotent


def test_create_twice(node_root):
    bdev.Create(_Disk(), [], False)
    with pytest.raises(errors.BlockDeviceError, match="already exists"):
        bdev.Create(_Disk(), [], False)


def test_assemble_missing(node_root):
    with pytest.raises(errors.BlockDeviceError, match="File disk .*disk0 not found"):
        bdev.Assemble(_Disk())


@pytest.mark.parametrize("path", [
    f"{FSD}/../../../etc/passwd", "/etc/passwd", FSD, "relative/path",
    "/srv/ganeti/file-storage-other/x", "/srv/ganeti/shared-file-storage/x",
])
def test_path_escape(node_root, path):
    with pytest.raises(errors.FileStoragePathError, match="Path|path"):
        bdev.Create(_Disk(path=path), [], False)


def test_symlink_escape(node_root, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(outside, f"{node_root}{FSD}/evil")
    with pytest.raises(errors.FileStoragePathError, match=f"'{FSD}/evil/disk0'"):
        bdev.Create(_Disk(path=f"{FSD}/evil/disk0"), [], False)
    assert not os.listdir(outside)


def test_allowed_dirs_from_ssconf_and_paths_file(node_root, tmp_path):
    ssconf.SimpleStore().WriteFiles({constants.SS_FILE_STORAGE_DIR: "/data/files"})
    with open(pathutils.FILE_STORAGE_PATHS_FILE, "w", encoding="ascii") as fd:
        fd.write("# comment\n/extra/dir\n")
    allowed = filestorage.GetAllowedDirs(constants.DT_FILE)
    assert allowed == [f"{node_root}/data/files", f"{node_root}{FSD}",
                       f"{node_root}/extra/dir"]
    dev = bdev.Create(_Disk(path="/extra/dir/i/d0"), [], False)
    assert dev.dev_path == f"{node_root}/extra/dir/i/d0"


def test_sharedfile(node_root):
    path = "/srv/ganeti/shared-file-storage/inst1/disk0"
    dev = bdev.Create(_Disk(path=path, dev_type=constants.DT_SHARED_FILE), [], False)
    assert isinstance(dev, filestorage.SharedFileStorage)
    with pytest.raises(errors.FileStoragePathError, match="sharedfile"):
        bdev.Create(_Disk(dev_type=constants.DT_SHARED_FILE), [], False)


def test_rename_and_snapshot(node_root):
    dev = bdev.Create(_Disk(), [], False)
    dev.Rename((constants.FD_LOOP, f"{FSD}/inst2/disk0"))
    assert os.path.exists(f"{node_root}{FSD}/inst2/disk0")
    assert not os.path.exists(f"{node_root}{FSD}/inst1/disk0")
    with pytest.raises(errors.FileStoragePathError):
        dev.Rename((constants.FD_LOOP, "/tmp/x"))
    with pytest.raises(errors.BlockDeviceError, match="driver"):
        dev.Rename((constants.FD_BLKTAP, f"{FSD}/inst3/disk0"))
    snap = dev.Snapshot("s1")
    assert snap == (constants.FD_LOOP, f"{FSD}/inst2/disk0.s1")
    assert os.path.getsize(f"{node_root}{FSD}/inst2/disk0.s1") == 4 * 1024 * 1024


@pytest.mark.parametrize("kwargs,match", [
    ({"size": 0}, "Invalid size 0"),
    ({"size": -3}, "Invalid size -3"),
])
def test_bad_create(node_root, kwargs, match):
    with pytest.raises(errors.BlockDeviceError, match=match):
        bdev.Create(_Disk(**kwargs), [], False)


def test_bad_driver_and_type(node_root):
    disk = _Disk()
    disk.logical_id = ("nbd", f"{FSD}/x")
    with pytest.raises(errors.BlockDeviceError, match="Unknown file driver 'nbd'"):
        bdev.FindDevice(disk)
    disk = _Disk(dev_type=constants.DT_GLUSTER)
    with pytest.raises(errors.BlockDeviceError, match="'gluster' is not supported"):
        bdev.FindDevice(disk)
    disk = _Disk(dev_type="floppy")
    with pytest.raises(errors.BlockDeviceError, match="Unknown disk type 'floppy'"):
        bdev.FindDevice(disk)


def test_grow_bad_amount(node_root):
    dev = bdev.Create(_Disk(), [], False)
    with pytest.raises(errors.BlockDeviceError, match="Invalid amount -1"):
        dev.Grow(-1, False, True, False)
    with pytest.raises(errors.BlockDeviceError, match="Not enough space"):
        dev.Grow(1 << 40, True, True, False)
