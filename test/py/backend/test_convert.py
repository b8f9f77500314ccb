"""Tests for the node's copy of a disk's data for a disk template
conversion (``blockdev_convert``, lib/backend/convert.py)."""

from __future__ import annotations

import os
import pytest

from ganeti import constants, errors
from ganeti.backend import RPCFail
from ganeti.backend import convert
from ganeti.backend import storage as backend_storage
from ganeti.rpc import defs, dispatch

MIB = 1024 * 1024


def _Disk(path, size, dev_type=constants.DT_FILE):
    return {"dev_type": dev_type, "logical_id": ["loop", str(path)], "size": size,
            "iv_name": "disk/0", "children": [], "params": {}}


class _Dev:
    def __init__(self, path):
        self.dev_path = str(path)
        self.shut = False

    def Shutdown(self):
        self.shut = True


@pytest.fixture
def devices(monkeypatch):
    """Assembling a disk gives a device over its logical_id's path."""
    made = []

    def Assemble(disk, as_primary):
        if "missing" in disk.logical_id[1]:
            raise errors.BlockDeviceError(f"{disk.logical_id[1]} not found")
        made.append(_Dev(disk.logical_id[1]))
        return made[-1]
    monkeypatch.setattr(backend_storage, "_RecursiveAssemble", Assemble)
    return made


def test_copy_keeps_data_and_sparseness(tmp_path, devices):
    src, dst = tmp_path / "src", tmp_path / "dst"
    data = os.urandom(MIB) + bytes(2 * MIB) + b"tail" * 1000
    src.write_bytes(data)
    with open(dst, "wb") as fd:
        fd.truncate(4 * MIB)
    copied = convert.BlockdevConvert(_Disk(src, 4), _Disk(dst, 4))
    assert copied == len(data)
    assert dst.read_bytes()[:len(data)] == data
    assert os.path.getsize(dst) == 4 * MIB
    # the zeros were skipped: the image stays sparse
    assert os.stat(dst).st_blocks * 512 < 3 * MIB
    assert all(dev.shut for dev in devices)


def test_copy_stops_at_the_destination_size(tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.write_bytes(b"x" * (3 * MIB))
    dst.write_bytes(b"y" * (2 * MIB))
    assert convert.CopyData(str(src), str(dst), MIB) == MIB
    assert dst.read_bytes() == b"x" * MIB + b"y" * MIB


def test_failures_are_clear(tmp_path, devices):
    src = tmp_path / "src"
    src.write_bytes(b"x")
    with pytest.raises(RPCFail, match="Cannot assemble the destination disk"
                       ".*missing.* not found"):
        convert.BlockdevConvert(_Disk(src, 1), _Disk(tmp_path / "missing", 1))
    # the source was shut down again
    assert devices and devices[0].shut
    with pytest.raises(RPCFail, match="Copying .*nodir/dst failed"):
        convert.BlockdevConvert(_Disk(src, 1), _Disk(tmp_path / "nodir" / "dst", 1))
    with pytest.raises(RPCFail, match="Invalid size"):
        convert.BlockdevConvert(_Disk(src, 1), _Disk(src, 0))


def test_registered_as_rpc():
    call = defs.CALLS["blockdev_convert"]
    assert call.single and call.arg_names == ["bdev_src", "bdev_dest"]
    assert dispatch.ResolveHandler(call.handler) is convert.BlockdevConvert
