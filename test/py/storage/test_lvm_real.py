"""storage.lvm and storage.lvm_view for real: a virtual node root with its
own LVM view (a volume group on a loop device, activation off), and the
logical volumes, storage units and node RPC functions on it.

Needs root, lvm2 and loop devices (CI runs as root); skipped otherwise.
Every loop device is detached by the fixtures' finalizers, even when a
test fails.
"""

from __future__ import annotations

import os
import subprocess
from types import SimpleNamespace

import pytest

from ganeti import constants, errors, objects, utils
from ganeti.backend import RPCFail
from ganeti.backend import node as backend_node
from ganeti.backend import storage as bstor
from ganeti.storage import bdev, container, lvm, lvm_view

pytestmark = [
    pytest.mark.skipif(not lvm_view.LvmViewAvailable(),
                       reason="needs root, lvm2 and a free loop device (losetup)"),
    pytest.mark.timeout(180),
]

FIELDS = ["name", "type", "size", "used", "free", "allocatable"]


def _LoopsOf(image: str) -> list[str]:
    out = subprocess.run(["losetup", "-j", image], capture_output=True, text=True,
                         check=False).stdout
    return [line.split(":", 1)[0] for line in out.splitlines() if line]


def _Image(root: str) -> str:
    return os.path.join(root, lvm_view.VIEW_DIR, "pv.img")


@pytest.fixture
def lvm_node(node_root):
    """This process as a virtual node whose LVM view has xenvg (60 MiB)."""
    try:
        loop = lvm_view.SetupNodeLvm(node_root, 64)
        yield SimpleNamespace(root=node_root, loop=loop)
    finally:
        lvm_view.TeardownNodeLvm(node_root)
        assert _LoopsOf(_Image(node_root)) == []


@pytest.fixture
def second_pv(lvm_node, tmp_path):
    """Extend xenvg with a second PV (its own image and loop device);
    returns a function removing that loop device from the view."""
    image = str(tmp_path / "pv2.img")
    with open(image, "wb") as fd:
        fd.truncate(64 * 1024 * 1024)
    conf = os.path.join(lvm_node.root, "etc/lvm/lvm.conf")
    original = utils.ReadFile(conf)
    first = f'"a|^{lvm_node.loop}$|", '
    try:
        loop2 = subprocess.run(["losetup", "-f", "--show", image], capture_output=True,
                               text=True, check=True).stdout.strip()
        utils.WriteFile(conf, data=original.replace(first, f'{first}"a|^{loop2}$|", '))
        lvm._RunLvm(["pvcreate", loop2])
        lvm._RunLvm(["vgextend", "xenvg", loop2])

        def _Lose():
            # out of the view first, so that nobody else's device can take its place
            utils.WriteFile(conf, data=original)
            subprocess.run(["losetup", "-d", loop2], check=True)

        yield SimpleNamespace(loop=loop2, lose=_Lose)
    finally:
        for device in _LoopsOf(image):
            subprocess.run(["losetup", "-d", device], check=False)
        assert _LoopsOf(image) == []


def _PlainDisk(name: str, size: int = 8) -> objects.Disk:
    return objects.Disk(dev_type=constants.DT_PLAIN, logical_id=("xenvg", name),
                        size=size, params={}, children=[], iv_name="disk/0")


# --- the view ------------------------------------------------------------------------------

def test_view_setup_and_teardown(tmp_path):
    root = str(tmp_path / "node9")
    os.mkdir(root)
    image = _Image(root)
    try:
        loop = lvm_view.SetupNodeLvm(root, 32, vg_name="testvg")
        assert _LoopsOf(image) == [loop]
        assert utils.ReadFile(os.path.join(root, lvm_view.VIEW_DIR, "loop")).strip() \
            == loop
        env = lvm.LvmEnvironment(lvm.NodeLvmSystemDir(root))
        out = subprocess.run(["pvs", "--noheadings", "-o", "pv_name,vg_name"],
                             env={**os.environ, **env}, capture_output=True,
                             text=True, check=True).stdout
        # the view sees its own PV only
        assert out.split() == [loop, "testvg"]
        # set up again: the same device, nothing new
        assert lvm_view.SetupNodeLvm(root, 32, vg_name="testvg") == loop
    finally:
        lvm_view.TeardownNodeLvm(root)
    assert _LoopsOf(image) == []
    assert not os.path.exists(os.path.join(root, "etc/lvm/lvm.conf"))
    assert not os.path.exists(os.path.join(root, lvm_view.VIEW_DIR))
    lvm_view.TeardownNodeLvm(root)           # nothing left: fine


def test_view_refusals(tmp_path):
    with pytest.raises(errors.StorageError, match="must be an existing absolute"):
        lvm_view.SetupNodeLvm(str(tmp_path / "nosuch"), 32)
    with pytest.raises(errors.BlockDeviceError, match="volume group name '-x'"):
        lvm_view.SetupNodeLvm(str(tmp_path), 32, vg_name="-x")
    with pytest.raises(errors.StorageError, match="at least 8 MiB"):
        lvm_view.SetupNodeLvm(str(tmp_path), 1)


def test_view_kept_image_keeps_volumes(lvm_node):
    lvm.LogicalVolume.Create(("xenvg", "keep"), [], 8, None, {}, False)
    lvm_view.TeardownNodeLvm(lvm_node.root, keep_image=True)
    assert _LoopsOf(_Image(lvm_node.root)) == []
    assert os.path.exists(_Image(lvm_node.root))
    lvm_view.SetupNodeLvm(lvm_node.root, 64)
    assert list(lvm.GetLogicalVolumes()) == ["xenvg/keep"]


# --- logical volumes --------------------------------------------------------------------------

def test_lv_lifecycle(lvm_node):
    assert lvm.GetVolumeGroups() == {"xenvg": 60}
    dev = lvm.LogicalVolume.Create(("xenvg", "disk0"), [], 16, None,
                                   {constants.LV_STRIPES: 2}, False)
    assert dev.attached and dev.dev_path == "/dev/xenvg/disk0"
    assert dev.pv_names == [lvm_node.loop]
    assert dev.GetActualDimensions() == (16 * 1024 * 1024, 1)
    found = bdev.FindDevice(_PlainDisk("disk0", 16))
    assert isinstance(found, lvm.LogicalVolume) and found.attached
    assert not found.GetSyncStatus().is_degraded
    found.Assemble()

    dev.SetInfo("originstname+inst1.example.com")
    tags = lvm._RunLvm(["lvs", "--noheadings", "-o", "lv_tags", "xenvg/disk0"]).stdout
    assert tags.strip() == "originstname+inst1.example.com"

    dev.Grow(8, True, True, False)
    assert dev.GetActualSize() == 16 * 1024 * 1024
    dev.Grow(6, False, True, False)           # whole 4 MiB extents
    assert dev.GetActualSize() == 24 * 1024 * 1024 and dev.size == 24

    dev.Rename(("xenvg", "disk1"))
    assert list(lvm.GetLogicalVolumes(["xenvg"])) == ["xenvg/disk1"]
    assert lvm.GetLogicalVolumes()["xenvg/disk1"][0] == 24.0
    assert lvm.ListVolumes() == [{"name": "disk1", "vg": "xenvg", "size": 24.0,
                                  "dev": lvm_node.loop}]

    if lvm._DeviceMapperPresent():
        assert dev.Snapshot(snap_size=4) == ("xenvg", "disk1.snap")
    else:
        with pytest.raises(errors.BlockDeviceError, match="lvcreate for"
                           " xenvg/disk1.snap failed.*device-mapper"):
            dev.Snapshot(snap_size=4)

    dev.Remove()
    assert not dev.attached and lvm.GetLogicalVolumes() == {}
    dev.Remove()                              # gone already: fine
    assert bdev.FindDevice(_PlainDisk("disk1")) is None


def test_free_space_exhausted(lvm_node):
    with pytest.raises(errors.BlockDeviceError, match="Not enough free space in volume"
                       " group xenvg: requested 100 MiB, free 60 MiB"):
        lvm.LogicalVolume.Create(("xenvg", "big"), [], 100, None, {}, False)
    assert lvm.GetLogicalVolumes() == {}
    dev = lvm.LogicalVolume.Create(("xenvg", "half"), [], 32, None, {}, False)
    with pytest.raises(errors.BlockDeviceError, match="Not enough free space to grow"
                       " xenvg/half by 40 MiB in volume group xenvg: 28 MiB free"):
        dev.Grow(40, False, True, False)
    assert dev.GetActualSize() == 32 * 1024 * 1024
    # exclusive storage: the only PV is no longer empty
    with pytest.raises(errors.BlockDeviceError, match="Not enough empty PVs"):
        lvm.LogicalVolume.Create(("xenvg", "es"), [], 8, 1, {}, True)
    with pytest.raises(errors.BlockDeviceError, match="already exists"):
        lvm.LogicalVolume.Create(("xenvg", "half"), [], 8, None, {}, False)
    assert list(lvm.GetLogicalVolumes()) == ["xenvg/half"]


def test_bad_volume_group(lvm_node):
    with pytest.raises(errors.BlockDeviceError,
                       match="Volume group 'nosuch' does not exist on this node"):
        lvm.LogicalVolume.Create(("nosuch", "lv"), [], 8, None, {}, False)
    with pytest.raises(errors.StorageError, match="Volume group 'nosuch' does not exist"):
        container.GetStorage(constants.ST_LVM_VG).List("nosuch", FIELDS)
    with pytest.raises(RPCFail, match="Cannot get the free space of volume group"
                       " nosuch: Volume group 'nosuch' does not exist"):
        backend_node.GetStorageSpace(constants.ST_LVM_VG, "nosuch", [False])
    with pytest.raises(RPCFail, match="Cannot list the logical volumes:.*nosuch"):
        bstor.GetLogicalVolumes(["nosuch"])


# --- storage units ---------------------------------------------------------------------------

def test_units_and_allocatable(lvm_node):
    lvm.LogicalVolume.Create(("xenvg", "a"), [], 8, None, {}, False)
    assert container.GetStorage(constants.ST_LVM_VG).List(None, FIELDS) == \
        [["xenvg", "lvm-vg", 60, 8, 52, True]]
    pv = container.GetStorage(constants.ST_LVM_PV)
    assert pv.List(None, FIELDS) == [[lvm_node.loop, "lvm-pv", 60, 8, 52, True]]
    pv.Modify(lvm_node.loop, {constants.SF_ALLOCATABLE: False})
    assert pv.List(lvm_node.loop, ["name", "allocatable"]) == [[lvm_node.loop, False]]
    with pytest.raises(errors.BlockDeviceError, match="No allocatable physical volumes"
                       " in volume group xenvg"):
        lvm.LogicalVolume.Create(("xenvg", "b"), [], 8, None, {}, False)
    pv.Modify(lvm_node.loop, {constants.SF_ALLOCATABLE: True})
    lvm.LogicalVolume.Create(("xenvg", "b"), [], 8, None, {}, False)
    with pytest.raises(errors.StorageError, match="Physical volume '/dev/nosuch' not"
                       " found on this node"):
        pv.List("/dev/nosuch", FIELDS)


def test_repair_removes_missing_pv(lvm_node, second_pv):
    lvm.LogicalVolume.Create(("xenvg", "safe"), [], 8, None, {}, False)
    lvm._RunLvm(["lvcreate", "-an", "-Zn", "-L", "8m", "-n", "lost", "xenvg",
                 second_pv.loop])
    info = lvm.GetVgInfo("xenvg")
    assert (info["pv_count"], info["partial"]) == (2, False)
    second_pv.lose()
    assert lvm.GetVgInfo("xenvg")["partial"]
    assert "[unknown]" in [vol["dev"] for vol in lvm.ListVolumes()]
    assert lvm.LogicalVolume(("xenvg", "lost"), [], 8, {}).GetSyncStatus().is_degraded

    lines = bstor.StorageExecute(constants.ST_LVM_VG, [], "xenvg",
                                 constants.SO_FIX_CONSISTENCY)
    assert any("consistent volume group xenvg" in line for line in lines), lines
    info = lvm.GetVgInfo("xenvg")
    assert (info["pv_count"], info["partial"]) == (1, False)
    # the volume on the lost PV went with it; the other one stays
    assert list(lvm.GetLogicalVolumes()) == ["xenvg/safe"]
    assert bstor.StorageExecute(constants.ST_LVM_VG, [], "xenvg",
                                constants.SO_FIX_CONSISTENCY) == \
        ['Volume group "xenvg" is already consistent.']


# --- the node's RPC functions ---------------------------------------------------------------

def test_rpc_functions(lvm_node):
    disk = _PlainDisk("inst1.disk0", 8)
    assert bstor.BlockdevCreate(disk.ToDict(), 8, "inst1", True, "", False) == \
        ("xenvg", "inst1.disk0")
    assert bstor.ListVolumeGroups() == {"xenvg": 60}
    assert bstor.GetLogicalVolumes(None) == {"xenvg/inst1.disk0": (8.0, False, False)}
    assert bstor.NodeVolumes() == [{"name": "inst1.disk0", "vg": "xenvg", "size": 8.0,
                                    "dev": lvm_node.loop}]
    assert bstor.StorageList(constants.ST_LVM_PV, [], None, ["name", "free"]) == \
        [[lvm_node.loop, 52]]
    bstor.StorageModify(constants.ST_LVM_PV, [], lvm_node.loop, {"allocatable": False})
    assert bstor.StorageList(constants.ST_LVM_PV, [], None, ["allocatable"]) == [[False]]
    with pytest.raises(RPCFail, match="Cannot modify lvm-vg storage unit 'xenvg':"
                       " Storage units of type 'lvm-vg' cannot be modified"):
        bstor.StorageModify(constants.ST_LVM_VG, [], "xenvg", {"allocatable": False})
    with pytest.raises(RPCFail, match="Cannot run 'fix-consistency' on lvm-pv"):
        bstor.StorageExecute(constants.ST_LVM_PV, [], lvm_node.loop,
                             constants.SO_FIX_CONSISTENCY)
    with pytest.raises(RPCFail, match="Invalid changes"):
        bstor.StorageModify(constants.ST_LVM_PV, [], lvm_node.loop, ["allocatable"])
    with pytest.raises(RPCFail, match="Invalid volume group names"):
        bstor.GetLogicalVolumes("xenvg")
    _, space, _ = backend_node.GetNodeInfo(
        [[constants.ST_LVM_VG, "xenvg", [False]], [constants.ST_LVM_VG, "xenvg"],
         [constants.ST_LVM_VG, "xenvg", [True]], [constants.ST_LVM_PV, "xenvg", [True]],
         [constants.ST_LVM_PV, "xenvg", [False]]], [])
    assert [(s["storage_free"], s["storage_size"]) for s in space] == \
        [(52, 60), (52, 60), (0, 60), (0, 1), (0, 0)]
    with pytest.raises(RPCFail, match="expected \\[exclusive_storage"):
        backend_node.GetStorageSpace(constants.ST_LVM_VG, "xenvg", ["yes"])
    bstor.BlockdevRemove(disk.ToDict())
    assert bstor.GetLogicalVolumes(["xenvg"]) == {}
