"""Loop activation of LVM views: logical volumes of a virtual node mapped
onto loop devices over the view's image, so that plain disks hold data.

The parser tests run everywhere; the others need root, lvm2, losetup and
blockdev, and are skipped otherwise (CI runs as root). Every loop device
over a test's image is detached by the fixture's finalizer, even when the
test fails.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from types import SimpleNamespace

import pytest

from ganeti import constants, errors, objects
from ganeti.storage import bdev, lvm, lvm_view

MIB = 1024 * 1024

_real = pytest.mark.skipif(
    not lvm_view.LvmViewAvailable() or not shutil.which("blockdev"),
    reason="needs root, lvm2, losetup (util-linux), blockdev and a free loop device")


# --- parsing the segments (captured ``lvs --segments`` output) ----------------------------

def test_parse_one_segment():
    out = "  0|linear|1|/dev/loop0:4-6\n"
    assert lvm_view.ParseLinearExtents("xenvg/a", out) == ("/dev/loop0", 4, 3)


def test_parse_adjacent_segments():
    out = "  2|linear|1|/dev/loop0:6-6\n  0|linear|1|/dev/loop0:4-5\n"
    assert lvm_view.ParseLinearExtents("xenvg/a", out) == ("/dev/loop0", 4, 3)


@pytest.mark.parametrize("out, why", [
    ("  0|linear|1|/dev/loop0:0-1\n  2|linear|1|/dev/loop0:4-4\n",
     "its extents are not contiguous"),
    ("  0|linear|1|/dev/loop0:0-1\n  2|linear|1|/dev/loop1:2-2\n",
     "its extents are not contiguous"),
    ("  0|striped|2|/dev/loop0:0-1 /dev/loop1:0-1\n",
     "a striped segment with 2 stripe"),
    ("", "it has no segments"),
])
def test_parse_refusals(out, why):
    with pytest.raises(errors.StorageError, match=f"Cannot map logical volume"
                       f" xenvg/a onto a loop device: {why}.*--alloc contiguous"):
        lvm_view.ParseLinearExtents("xenvg/a", out)


def test_parse_garbage():
    with pytest.raises(errors.StorageError, match="Cannot parse the lvs output line"):
        lvm_view.ParseLinearExtents("xenvg/a", "  x|linear|1\n")


# --- helpers of the real tests ------------------------------------------------------------

def _Image(root: str) -> str:
    return os.path.join(root, lvm_view.VIEW_DIR, "pv.img")


def _LoopsOn(image: str) -> dict[str, int]:
    """{loop device: offset} of ``losetup -a`` over ``image`` (even deleted)."""
    out = subprocess.run(["losetup", "-a"], capture_output=True, text=True,
                         check=True).stdout
    loops = {}
    for line in out.splitlines():
        device, _, rest = line.partition(":")
        if f"({image})" in rest or f"({image} (deleted))" in rest:
            offset = rest.rpartition(", offset ")[2] if ", offset " in rest else "0"
            loops[device] = int(offset.split(",")[0])
    return loops


def _Size(device: str) -> int:
    return int(subprocess.run(["blockdev", "--getsize64", device], capture_output=True,
                              text=True, check=True).stdout)


def _Write(device: str, data: bytes, offset: int = 0) -> None:
    fd = os.open(device, os.O_WRONLY)
    try:
        assert os.pwrite(fd, data, offset) == len(data)
        os.fsync(fd)
    finally:
        os.close(fd)


def _Read(device: str, size: int, offset: int = 0) -> bytes:
    fd = os.open(device, os.O_RDONLY)
    try:
        return os.pread(fd, size, offset)
    finally:
        os.close(fd)


def _ImageOffset(lv_name: str) -> int:
    """Where the volume's first extent is in the image, asked of LVM here."""
    opts = ["--noheadings", "--units=b", "--nosuffix"]
    ranges = lvm._RunLvm(["lvs", *opts, "--segments", "-o", "seg_pe_ranges",
                          f"xenvg/{lv_name}"]).stdout.split()
    pv, _, extents = ranges[0].rpartition(":")
    pe_start, extent = lvm._RunLvm(["pvs", *opts, "--separator=|", "-o",
                                    "pe_start,vg_extent_size", pv]).stdout.split("|")
    return int(pe_start) + int(extents.split("-")[0]) * int(extent)


def _Lv(name: str) -> lvm.LogicalVolume:
    return lvm.LogicalVolume(("xenvg", name), [], 8, {})


def _Create(name: str, size: int = 8) -> lvm.LogicalVolume:
    return lvm.LogicalVolume.Create(("xenvg", name), [], size, None, {}, False)


def _PlainDisk(name: str, size: int = 8) -> objects.Disk:
    return objects.Disk(dev_type=constants.DT_PLAIN, logical_id=("xenvg", name),
                        size=size, params={}, children=[], iv_name="disk/0")


def _Cleanup(root: str) -> list[str]:
    """Tear the view down; return the loop devices it left (then detached)."""
    image = _Image(root)
    try:
        lvm_view.TeardownNodeLvm(root)
    finally:
        left = sorted(_LoopsOn(image))
        for device in left:
            subprocess.run(["losetup", "-d", device], check=False)
    return left


@pytest.fixture
def loop_node(node_root):
    """This process as a virtual node whose LVM view (xenvg, 60 MiB) maps
    assembled volumes onto loop devices."""
    try:
        loop = lvm_view.SetupNodeLvm(node_root, 64, loop_activation=True)
        yield SimpleNamespace(root=node_root, loop=loop, image=_Image(node_root))
    finally:
        assert _Cleanup(node_root) == []


@pytest.fixture
def plain_node(node_root):
    """As :func:`loop_node`, without loop activation (the default)."""
    try:
        loop = lvm_view.SetupNodeLvm(node_root, 64)
        yield SimpleNamespace(root=node_root, loop=loop, image=_Image(node_root))
    finally:
        assert _Cleanup(node_root) == []


# --- loop activation for real --------------------------------------------------------------

@_real
def test_lifecycle(loop_node):
    image = loop_node.image
    assert lvm_view.LoopActivationEnabled(loop_node.root)
    first, second = _Create("first"), _Create("second")
    # created contiguous, not mapped until assembled
    assert first.dev_path == "/dev/xenvg/first"
    assert _LoopsOn(image) == {loop_node.loop: 0}

    first.Assemble()
    second.Assemble()
    dev1, dev2 = first.dev_path, second.dev_path
    assert dev1.startswith("/dev/loop") and dev2.startswith("/dev/loop")
    assert len({dev1, dev2, loop_node.loop}) == 3
    assert _LoopsOn(image) == {loop_node.loop: 0, dev1: _ImageOffset("first"),
                               dev2: _ImageOffset("second")}
    assert _Size(dev1) == _Size(dev2) == 8 * MIB
    rdev = os.stat(dev1).st_rdev
    assert (first.major, first.minor) == (os.major(rdev), os.minor(rdev))
    first.Assemble()                          # mapped already: the same device
    assert first.dev_path == dev1 and len(_LoopsOn(image)) == 3

    data1, data2 = os.urandom(256 * 1024), os.urandom(256 * 1024)
    tail1 = os.urandom(4096)
    _Write(dev1, data1)
    _Write(dev1, tail1, 8 * MIB - 4096)       # the last block is the volume's own
    _Write(dev2, data2)
    # the data is in the image, at the volume's extents
    with open(image, "rb") as fd:
        fd.seek(_ImageOffset("first"))
        assert fd.read(len(data1)) == data1
        fd.seek(_ImageOffset("second"))
        assert fd.read(len(data2)) == data2
    assert _Read(dev2, 4096, 0) == data2[:4096]

    # attaching finds the device again (another RPC, another object)
    found = bdev.FindDevice(_PlainDisk("first"))
    assert isinstance(found, lvm.LogicalVolume) and found.dev_path == dev1

    # shutting down detaches the device; assembling again reads the data back
    first.Shutdown()
    assert dev1 not in _LoopsOn(image) and first.dev_path == "/dev/xenvg/first"
    assert _Lv("first").dev_path == "/dev/xenvg/first"
    first.Shutdown()                          # not mapped: fine
    first.Assemble()
    dev1 = first.dev_path
    assert _Read(dev1, len(data1)) == data1
    assert _Read(dev1, 4096, 8 * MIB - 4096) == tail1
    assert _Read(second.dev_path, len(data2)) == data2

    # renaming keeps the mapping; a new mapping after it reads the data
    first.Rename(("xenvg", "renamed"))
    assert first.dev_path == dev1 and _Lv("renamed").dev_path == dev1
    assert _Read(dev1, len(data1)) == data1
    first.Shutdown()
    assert _LoopsOn(image) == {loop_node.loop: 0, dev2: _ImageOffset("second")}
    first.Assemble()
    assert _Read(first.dev_path, len(data1)) == data1

    # growing: in place, the device grows with the volume (it was the last)
    second.Grow(8, False, True, False)
    assert second.dev_path == dev2 and _Size(dev2) == 16 * MIB
    assert second.GetActualSize() == 16 * MIB and second.size == 16
    assert _Read(dev2, len(data2)) == data2
    _Write(dev2, tail1, 16 * MIB - 4096)
    second.Shutdown()
    second.Assemble()
    assert _Size(second.dev_path) == 16 * MIB
    assert _Read(second.dev_path, 4096, 16 * MIB - 4096) == tail1
    # the volume before it cannot grow contiguous: refused, nothing changed
    with pytest.raises(errors.BlockDeviceError, match="Cannot grow logical volume"
                       " xenvg/renamed by 4 MiB.*contiguous"):
        first.Grow(4, False, True, False)
    assert _Size(first.dev_path) == 8 * MIB

    # removing detaches first
    dev2 = second.dev_path
    second.Remove()
    assert dev2 not in _LoopsOn(image) and "xenvg/second" not in lvm.GetLogicalVolumes()
    assert second.dev_path is None

    # the teardown detaches what is still mapped (never shut down)
    assert _Cleanup(loop_node.root) == []
    assert _LoopsOn(image) == {}


@_real
def test_non_contiguous_refused(loop_node):
    # raw lvm2 commands: normal allocation around another volume
    lvm._RunLvm(["lvcreate", "-an", "-Zn", "-L", "4m", "-n", "split", "xenvg"])
    lvm._RunLvm(["lvcreate", "-an", "-Zn", "-L", "4m", "-n", "between", "xenvg"])
    lvm._RunLvm(["lvextend", "--alloc", "normal", "-L", "+4m", "xenvg/split"])
    dev = _Lv("split")
    assert dev.attached
    with pytest.raises(errors.BlockDeviceError, match="Cannot map logical volume"
                       " xenvg/split onto a loop device: its extents are not"
                       r" contiguous \(segments: linear /dev/loop\d+:0-0, linear"
                       r" /dev/loop\d+:2-2\).*--alloc contiguous"):
        dev.Assemble()
    assert _LoopsOn(loop_node.image) == {loop_node.loop: 0}
    assert dev.dev_path == "/dev/xenvg/split"
    # its neighbour is fine
    between = _Lv("between")
    between.Assemble()
    assert _Size(between.dev_path) == 4 * MIB


@_real
def test_teardown_keeping_the_image(loop_node):
    first, second = _Create("first"), _Create("second")
    first.Assemble()
    second.Assemble()
    data = os.urandom(8192)
    _Write(second.dev_path, data)
    lvm_view.TeardownNodeLvm(loop_node.root, keep_image=True)
    assert _LoopsOn(loop_node.image) == {}
    # set up again: the switch stayed, nothing is mapped, the data is there
    loop = lvm_view.SetupNodeLvm(loop_node.root, 64)
    assert lvm_view.LoopActivationEnabled(loop_node.root)
    assert _LoopsOn(loop_node.image) == {loop: 0}
    again = _Lv("second")
    assert again.dev_path == "/dev/xenvg/second"
    again.Assemble()
    assert _Read(again.dev_path, len(data)) == data


@_real
def test_concurrent_assembly(loop_node):
    names = [f"disk{index}" for index in range(5)]
    for name in names:
        _Create(name, 4)
    devices: dict[str, str] = {}
    failures: list[BaseException] = []

    def _Assemble(name: str) -> None:
        try:
            dev = _Lv(name)
            dev.Assemble()
            devices[name] = dev.dev_path
        except BaseException as err:  # reported below
            failures.append(err)

    threads = [threading.Thread(target=_Assemble, args=(name,)) for name in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert len(set(devices.values())) == len(names)
    # all recorded: attaching finds each one
    assert {name: _Lv(name).dev_path for name in names} == devices
    assert set(_LoopsOn(loop_node.image)) == {loop_node.loop, *devices.values()}


@_real
def test_switch(loop_node):
    dev = _Create("disk")
    dev.Assemble()
    with pytest.raises(errors.StorageError, match="Cannot switch off loop activation"
                       " .*xenvg/disk are mapped"):
        lvm_view.EnableLoopActivation(loop_node.root, False)
    dev.Shutdown()
    lvm_view.EnableLoopActivation(loop_node.root, False)
    assert not lvm_view.LoopActivationEnabled(loop_node.root)
    dev.Assemble()
    assert dev.dev_path == "/dev/xenvg/disk"
    assert _LoopsOn(loop_node.image) == {loop_node.loop: 0}


@_real
def test_off_by_default(plain_node):
    assert not lvm_view.LoopActivationEnabled(plain_node.root)
    dev = _Create("disk")
    dev.Assemble()
    assert dev.dev_path == "/dev/xenvg/disk"
    dev.Shutdown()
    assert _LoopsOn(plain_node.image) == {plain_node.loop: 0}
    dev.Remove()


@_real
def test_busy_device(loop_node):
    dev = _Create("busy")
    dev.Assemble()
    device = dev.dev_path
    fd = os.open(device, os.O_RDONLY)
    try:
        with pytest.raises(errors.BlockDeviceError, match=f"Cannot detach loop device"
                           f" {device} of logical volume xenvg/busy: it is in use"):
            dev.Shutdown()
        # removing it would leave the device over freed extents: refused too
        with pytest.raises(errors.BlockDeviceError, match="it is in use"):
            dev.Remove()
        assert "xenvg/busy" in lvm.GetLogicalVolumes()
        assert _Lv("busy").dev_path == device
    finally:
        os.close(fd)
    # the kernel detaches it when closed (autoclear; maybe a moment later)
    for _ in range(50):
        if device not in _LoopsOn(loop_node.image):
            break
        time.sleep(0.1)
    assert device not in _LoopsOn(loop_node.image)
    # assembling maps it anew
    assert _Lv("busy").dev_path == "/dev/xenvg/busy"
    dev.Assemble()
    assert dev.dev_path.startswith("/dev/loop")
    dev.Remove()
    assert _LoopsOn(loop_node.image) == {loop_node.loop: 0}
