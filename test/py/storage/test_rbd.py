"""storage.rbd: rbd command lines and ``rbd showmapped`` parsing.

There is no Ceph cluster here: a fake runner answers the rbd commands and
records their argv. The showmapped samples follow the formats of the rbd
tool before and since Ceph 14 (Nautilus), which added the namespace column
and turned the JSON object keyed by device id into a list.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable

import pytest

from ganeti import constants, errors, objects, utils
from ganeti.storage import base, bdev, rbd

OLD_PLAIN = """\
id pool image    snap  device
0  rbd  vol1     -     /dev/rbd0
1  rbd  vol2     snap1 /dev/rbd1
2  ssd  vol1     -     /dev/rbd2
"""

NEW_PLAIN = """\
id  pool  namespace  image  snap  device
0   rbd              vol1   -     /dev/rbd0
1   rbd   tenant1    vol1   -     /dev/rbd1
2   ssd              vol3   -     /dev/rbd2
"""

OLD_JSON = json.dumps({
    "0": {"pool": "rbd", "name": "vol1", "snap": "-", "device": "/dev/rbd0"},
    "1": {"pool": "rbd", "name": "vol2", "snap": "snap1", "device": "/dev/rbd1"},
})

NEW_JSON = json.dumps([
    {"id": "0", "pool": "rbd", "namespace": "", "name": "vol1", "snap": "-",
     "device": "/dev/rbd0"},
    {"id": "3", "pool": "rbd", "namespace": "tenant1", "name": "vol4", "snap": "-",
     "device": "/dev/rbd3"},
])


def test_commands():
    assert rbd.CreateCmd("rbd", "vol1", 1024) == \
        ["rbd", "create", "--size", "1024", "--pool", "rbd", "vol1"]
    assert rbd.MapCmd("ssd", "vol1") == ["rbd", "map", "--pool", "ssd", "vol1"]
    assert rbd.UnmapCmd("/dev/rbd0") == ["rbd", "unmap", "/dev/rbd0"]
    assert rbd.RemoveCmd("rbd", "vol1") == ["rbd", "rm", "--pool", "rbd", "vol1"]
    assert rbd.ResizeCmd("rbd", "vol1", 2048) == \
        ["rbd", "resize", "--size", "2048", "--pool", "rbd", "vol1"]
    assert rbd.ShowmappedCmd() == ["rbd", "showmapped", "--format", "json"]
    assert rbd.ShowmappedCmd(json_format=False) == ["rbd", "showmapped"]


def test_parse_plain_old():
    assert rbd.ParseShowmappedPlain(OLD_PLAIN) == [
        rbd.RbdMapping("0", "rbd", "", "vol1", "-", "/dev/rbd0"),
        rbd.RbdMapping("1", "rbd", "", "vol2", "snap1", "/dev/rbd1"),
        rbd.RbdMapping("2", "ssd", "", "vol1", "-", "/dev/rbd2"),
    ]


def test_parse_plain_new_with_empty_namespace():
    assert rbd.ParseShowmappedPlain(NEW_PLAIN) == [
        rbd.RbdMapping("0", "rbd", "", "vol1", "-", "/dev/rbd0"),
        rbd.RbdMapping("1", "rbd", "tenant1", "vol1", "-", "/dev/rbd1"),
        rbd.RbdMapping("2", "ssd", "", "vol3", "-", "/dev/rbd2"),
    ]


def test_parse_json():
    assert rbd.ParseShowmappedJson(OLD_JSON) == [
        rbd.RbdMapping("0", "rbd", "", "vol1", "-", "/dev/rbd0"),
        rbd.RbdMapping("1", "rbd", "", "vol2", "snap1", "/dev/rbd1"),
    ]
    assert rbd.ParseShowmappedJson(NEW_JSON) == [
        rbd.RbdMapping("0", "rbd", "", "vol1", "-", "/dev/rbd0"),
        rbd.RbdMapping("3", "rbd", "tenant1", "vol4", "-", "/dev/rbd3"),
    ]
    assert rbd.ParseShowmappedJson("") == [] == rbd.ParseShowmappedJson("{}")
    assert rbd.ParseShowmappedPlain("") == []


@pytest.mark.parametrize("text", ["not json", "42", "[1]"])
def test_parse_json_errors(text):
    with pytest.raises(errors.BlockDeviceError, match="showmapped JSON"):
        rbd.ParseShowmappedJson(text)


@pytest.mark.parametrize("text,message", [
    ("id pool name device\n0 rbd x /dev/rbd0\n", "Unknown rbd showmapped header"),
    ("id pool image snap device\n0 rbd x\n", "Cannot parse rbd showmapped line"),
])
def test_parse_plain_errors(text, message):
    with pytest.raises(errors.BlockDeviceError, match=message):
        rbd.ParseShowmappedPlain(text)


def test_find_mapping():
    mappings = rbd.ParseShowmappedPlain(NEW_PLAIN)
    assert rbd.FindMapping("rbd", "vol1", mappings).device == "/dev/rbd0"
    assert rbd.FindMapping("ssd", "vol3", mappings).device == "/dev/rbd2"
    assert rbd.FindMapping("rbd", "vol3", mappings) is None
    # A mapped snapshot is not the volume
    assert rbd.FindMapping("rbd", "vol2", rbd.ParseShowmappedPlain(OLD_PLAIN)) is None
    twice = mappings + [rbd.RbdMapping("9", "rbd", "", "vol1", "-", "/dev/rbd9")]
    with pytest.raises(errors.BlockDeviceError, match="mapped more than once:"
                       " /dev/rbd0, /dev/rbd9"):
        rbd.FindMapping("rbd", "vol1", twice)


# --- The device, against a fake rbd ----------------------------------------------------


class FakeRbd:
    """Answers rbd commands like a tiny Ceph cluster; records every argv.

    ``json_ok``: whether ``showmapped --format json`` works (old rbd did
    not have it); ``fail``: argv tuples that fail with a message.
    """

    def __init__(self, json_ok: bool = True) -> None:
        self.calls: list[list[str]] = []
        self.volumes: dict[tuple[str, str], int] = {}
        self.mapped: dict[str, tuple[str, str]] = {}
        self.json_ok = json_ok
        self.fail: dict[tuple[str, ...], str] = {}

    def _Result(self, argv: list[str], code: int = 0, out: str = "",
                err: str = "") -> utils.RunResult:
        return utils.RunResult(code, None, out, err, argv)

    def __call__(self, argv: list[str]) -> utils.RunResult:
        self.calls.append(argv)
        if tuple(argv) in self.fail:
            return self._Result(argv, 2, err=self.fail[tuple(argv)])
        assert argv[0] == "rbd"
        verb, args = argv[1], argv[2:]
        handler: Callable[[list[str]], tuple[int, str, str]] = \
            getattr(self, f"_{verb}")
        code, out, err = handler(args)
        return self._Result(argv, code, out, err)

    @staticmethod
    def _Opts(args: list[str]) -> tuple[dict[str, str], list[str]]:
        opts, rest, it = {}, [], iter(args)
        for arg in it:
            if arg.startswith("--"):
                opts[arg[2:]] = next(it)
            else:
                rest.append(arg)
        return opts, rest

    def _create(self, args):
        opts, (name,) = self._Opts(args)
        key = (opts["pool"], name)
        if key in self.volumes:
            return 17, "", "rbd: create error: (17) File exists\n"
        self.volumes[key] = int(opts["size"])
        return 0, "", ""

    def _map(self, args):
        opts, (name,) = self._Opts(args)
        key = (opts["pool"], name)
        if key not in self.volumes:
            return 2, "", "rbd: sysfs write failed\nrbd: map failed: (2) No such file\n"
        dev = f"/dev/rbd{len(self.mapped)}"
        self.mapped[dev] = key
        return 0, dev + "\n", ""

    def _unmap(self, args):
        (dev,) = args
        self.mapped.pop(dev)
        return 0, "", ""

    def _rm(self, args):
        opts, (name,) = self._Opts(args)
        if (opts["pool"], name) not in self.volumes:
            return 2, "", "rbd: error opening image: (2) No such file or directory\n"
        del self.volumes[(opts["pool"], name)]
        return 0, "Removing image: 100% complete...done.\n", ""

    def _resize(self, args):
        opts, (name,) = self._Opts(args)
        self.volumes[(opts["pool"], name)] = int(opts["size"])
        return 0, "Resizing image: 100% complete...done.\n", ""

    def _showmapped(self, args):
        if args == ["--format", "json"]:
            if not self.json_ok:
                return 22, "", "rbd: unrecognised option '--format'\n"
            return 0, json.dumps({str(i): {"pool": pool, "name": name, "snap": "-",
                                           "device": dev}
                                  for i, (dev, (pool, name))
                                  in enumerate(sorted(self.mapped.items()))}), ""
        lines = ["id pool image snap device"]
        for i, (dev, (pool, name)) in enumerate(sorted(self.mapped.items())):
            lines.append(f"{i}  {pool}  {name}  -  {dev}")
        return 0, "\n".join(lines) + "\n", ""


@pytest.fixture(params=[True, False], ids=["json", "plain"])
def fake(request, monkeypatch):
    fake_rbd = FakeRbd(json_ok=request.param)
    monkeypatch.setattr(rbd, "runner", fake_rbd)

    # /dev/rbdN cannot exist here: any rbd device path is a block device
    def _Stat(path):
        if not path.startswith("/dev/rbd"):
            raise errors.BlockDeviceError(f"{path} is not a block device")
        return _FakeStat(int(path[len("/dev/rbd"):]))

    monkeypatch.setattr(rbd, "StatBlockDevice", _Stat)
    monkeypatch.setattr(rbd, "GetBlockDeviceSize",
                        lambda path: fake_rbd.volumes[fake_rbd.mapped[path]] * 1024 * 1024)
    return fake_rbd


class _FakeStat:
    def __init__(self, minor: int) -> None:
        self.st_rdev = os.makedev(252, minor * 16)


def _Disk(name: str = "uuid1.rbd.disk0", size: int = 1024,
          params: dict | None = None) -> objects.Disk:
    return objects.Disk(dev_type=constants.DT_RBD, logical_id=("rbd", name), size=size,
                        mode=constants.DISK_RDWR,
                        params=params if params is not None else {
                            constants.RBD_POOL: "ssd",
                            constants.RBD_ACCESS: constants.DISK_KERNELSPACE},
                        children=[], uuid="d-1", iv_name="disk/0")


def test_lifecycle(fake):
    disk = _Disk()
    dev = bdev.Create(disk, [], False)
    assert fake.calls[0] == ["rbd", "create", "--size", "1024", "--pool", "ssd",
                             "uuid1.rbd.disk0"]
    assert ["rbd", "map", "--pool", "ssd", "uuid1.rbd.disk0"] in fake.calls
    assert (dev.dev_path, dev.major, dev.minor) == ("/dev/rbd0", 252, 0)
    assert dev.GetActualSize() == 1024 * 1024 * 1024
    # Found again through showmapped, without mapping twice
    fake.calls.clear()
    again = bdev.FindDevice(disk)
    assert again is not None and again.dev_path == "/dev/rbd0"
    assert not any(call[1] == "map" for call in fake.calls)
    again.Grow(512, True, True, False)                 # dry run
    again.Grow(512, False, False, False)               # not the backing store
    assert not any(call[1] == "resize" for call in fake.calls)
    again.Grow(512, False, True, False)
    assert fake.calls[-1] == ["rbd", "resize", "--size", "1536", "--pool", "ssd",
                              "uuid1.rbd.disk0"]
    assert again.GetActualSize() == 1536 * 1024 * 1024
    again.Shutdown()
    assert fake.calls[-1] == ["rbd", "unmap", "/dev/rbd0"] and not fake.mapped
    assembled = bdev.Assemble(disk)                    # maps again
    assert assembled.dev_path == "/dev/rbd0"
    assembled.Remove()
    assert fake.calls[-2:] == [["rbd", "unmap", "/dev/rbd0"],
                               ["rbd", "rm", "--pool", "ssd", "uuid1.rbd.disk0"]]
    assert fake.volumes == {} and fake.mapped == {}
    if not fake.json_ok:
        assert ["rbd", "showmapped"] in fake.calls


def test_default_pool_and_userspace(fake):
    disk = _Disk(params={constants.RBD_ACCESS: constants.DISK_USERSPACE})
    dev = bdev.Create(disk, [], False)
    assert fake.calls[0][-3:] == ["--pool", "rbd", "uuid1.rbd.disk0"]
    assert dev.GetUserspaceAccessUri(constants.HT_KVM) == "rbd:rbd/uuid1.rbd.disk0"
    with pytest.raises(errors.BlockDeviceError, match="only by the kvm hypervisor"):
        dev.GetUserspaceAccessUri(constants.HT_FAKE)
    assert bdev.FindDevice(_Disk()) is None            # not in pool ssd
    kernel = bdev.FindDevice(_Disk(params={}))
    assert kernel is not None and kernel.GetUserspaceAccessUri(constants.HT_KVM) is None


def test_failures(fake):
    disk = _Disk()
    # Missing volume: map fails, the device is not found; Assemble says why
    assert bdev.FindDevice(disk) is None
    with pytest.raises(errors.BlockDeviceError,
                       match="'rbd map --pool ssd uuid1.rbd.disk0' failed \\(exited with"
                             " exit code 2\\): rbd: sysfs write failed"):
        bdev.Assemble(disk)
    bdev.Create(disk, [], False)
    with pytest.raises(errors.BlockDeviceError, match="File exists"):
        bdev.Create(disk, [], False)
    dev = bdev.FindDevice(disk)
    assert dev is not None
    with pytest.raises(errors.BlockDeviceError, match="Rename is not supported"):
        dev.Rename(("rbd", "other"))
    with pytest.raises(errors.BlockDeviceError, match="Snapshots are not supported"):
        dev.Snapshot()
    with pytest.raises(errors.BlockDeviceError, match="Exclusive storage"):
        bdev.Create(_Disk(name="x"), [], True)
    with pytest.raises(errors.BlockDeviceError, match="Invalid driver 'ceph'"):
        rbd.RADOSBlockDevice(("ceph", "x"), [], 1, {})
    with pytest.raises(errors.BlockDeviceError, match="Invalid RBD volume name"):
        rbd.RADOSBlockDevice(("rbd", "a/b"), [], 1, {})
    fake.fail[("rbd", "rm", "--pool", "ssd", "uuid1.rbd.disk0")] = "rbd: image busy"
    with pytest.raises(errors.BlockDeviceError, match="rbd: image busy"):
        dev.Remove()


def test_unmapped_status(fake):
    dev = rbd.RADOSBlockDevice(("rbd", "nosuch"), [], 1, {})
    status = dev.GetSyncStatus()
    assert status.is_degraded and status.ldisk_status == base.LDS_FAULTY


def test_runner_default_runs_rbd(monkeypatch):
    seen = []

    def _RunCmd(argv, timeout=None):
        seen.append((argv, timeout))
        raise errors.OpExecError("rbd: command not found")

    monkeypatch.setattr(utils, "RunCmd", _RunCmd)
    with pytest.raises(errors.BlockDeviceError, match="Cannot run 'rbd showmapped"
                       " --format json': rbd: command not found"):
        rbd.RunRbd(rbd.ShowmappedCmd())
    assert seen == [(["rbd", "showmapped", "--format", "json"],
                     constants.RBD_CMD_TIMEOUT)]
