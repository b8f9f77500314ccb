"""Tests for the copying disk template conversions (gnt-instance modify -t
file|sharedfile|ext|plain|drbd from any other template,
lib/cmdlib/instance_convert.py), run through mcpu on the three-node
configuration of test_instance_convert with a fake RPC runner that also
keeps file, ext and blockdev devices and the data "in" every device."""

from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import instancehelpers  # noqa: E402
import test_instance_convert as tic  # noqa: E402

from ganeti import constants, errors, opcodes  # noqa: E402

NAME = tic.NAME
NODE2 = tic.NODE2
PROVIDER = "loopfile"


def _Key(disk):
    return "/".join(map(str, disk["logical_id"]))


class CopyRpc(tic.StorageRpc):
    """``devs``: node -> {key: MiB} of the devices that are no logical
    volumes; ``data``: node -> {key: content} of every device, which
    ``blockdev_convert`` copies; ``dirs``: node -> set of file directories."""

    def __init__(self):
        super().__init__()
        self.devs: dict[str, dict[str, int]] = {}
        self.data: dict[str, dict[str, str]] = {}
        self.dirs: dict[str, set[str]] = {}

    def _Find(self, node, disk):
        if disk["dev_type"] in (constants.DT_PLAIN, constants.DT_DRBD8):
            return super()._Find(node, disk)
        return _Key(disk) in self.devs.get(node, {})

    def call_blockdev_create(self, node, disk, size, owner, on_primary, info, excl):
        if disk["dev_type"] in (constants.DT_PLAIN, constants.DT_DRBD8):
            return super().call_blockdev_create(node, disk, size, owner, on_primary,
                                                info, excl)
        self.calls.append(("blockdev_create", node, disk["dev_type"], _Key(disk),
                           on_primary))
        msg = self._Check("blockdev_create", node, disk)
        if msg:
            return instancehelpers._Fail(msg)
        if disk["dev_type"] in constants.DTS_FILEBASED and \
                os.path.dirname(disk["logical_id"][1]) not in self.dirs.get(node, ()):
            return instancehelpers._Fail("no such directory")
        self.devs.setdefault(node, {})[_Key(disk)] = size
        return instancehelpers._Ok(disk["logical_id"])

    def _Remove(self, node, disk):
        self.data.get(node, {}).pop(_Key(disk), None)
        if disk["dev_type"] in (constants.DT_PLAIN, constants.DT_DRBD8):
            return super()._Remove(node, disk)
        if disk["dev_type"] != constants.DT_BLOCK:
            self.devs.get(node, {}).pop(_Key(disk), None)
        return None

    def call_blockdev_convert(self, node, src, dst):
        self.calls.append(("blockdev_convert", node, _Key(src), _Key(dst)))
        msg = self._Check("blockdev_convert", node, dst)
        if msg:
            return instancehelpers._Fail(msg)
        for disk in (src, dst):
            if not self._Find(node, disk):
                return instancehelpers._Fail(f"{_Key(disk)} not found")
        data = self.data.setdefault(node, {})
        data[_Key(dst)] = data.get(_Key(src), "")
        return instancehelpers._Ok(dst["size"] * 1048576)

    def call_file_storage_dir_create(self, node, directory):
        self.calls.append(("file_storage_dir_create", node, directory))
        msg = self._Check("file_storage_dir_create", node)
        if msg:
            return instancehelpers._Fail(msg)
        self.dirs.setdefault(node, set()).add(directory)
        return instancehelpers._Ok()

    def call_file_storage_dir_remove(self, node, directory):
        self.calls.append(("file_storage_dir_remove", node, directory))
        if any(os.path.dirname(key.split("/", 1)[1]) == directory
               for key in self.devs.get(node, {})):
            return instancehelpers._Fail(f"{directory} is not empty")
        self.dirs.get(node, set()).discard(directory)
        return instancehelpers._Ok()

    def call_extstorage_diagnose(self, nodes):
        return {node: instancehelpers._Ok([
            [PROVIDER, "/usr/share/ganeti/extstorage/loopfile", True, "",
             [["dir", "where the images go"]]]]) for node in nodes}


@pytest.fixture
def ctx(tmp_path):
    context = tic.MakeStorageContext(tmp_path)
    context.rpc = CopyRpc()
    cluster = context.cfg.GetClusterInfo()
    cluster.enabled_disk_templates = [
        constants.DT_PLAIN, constants.DT_DRBD8, constants.DT_FILE,
        constants.DT_SHARED_FILE, constants.DT_EXT, constants.DT_BLOCK,
        constants.DT_DISKLESS]
    context.cfg.Update(cluster)
    return context


def _Disks(ctx):
    return ctx.cfg.GetInstanceDisks(ctx.cfg.GetInstanceInfoByName(NAME).uuid)


def _Fill(ctx):
    """Put distinct data in each disk of the instance (on the primary)."""
    node = ctx.node1
    for idx, disk in enumerate(_Disks(ctx)):
        dev = disk.children[0] if disk.dev_type == constants.DT_DRBD8 else disk
        ctx.rpc.data.setdefault(node, {})["/".join(map(str, dev.logical_id))] = \
            f"data of disk {idx}"


def _Content(ctx):
    node = ctx.node1
    result = []
    for disk in _Disks(ctx):
        dev = disk.children[0] if disk.dev_type == constants.DT_DRBD8 else disk
        result.append(ctx.rpc.data.get(node, {}).get("/".join(map(str, dev.logical_id))))
    return result


def _Create(ctx, template="plain", **kwargs):
    disks = [{"size": 1024, "name": "root", "mode": constants.DISK_RDONLY},
             {"size": 2048}]
    if template == constants.DT_EXT:
        for disk in disks:
            disk["provider"] = PROVIDER
    nodes = {"snode": NODE2} if template == constants.DT_DRBD8 else {}
    instancehelpers.Run(ctx, instancehelpers.CreateOp(
        disk_template=template, disks=disks, start=False, **nodes, **kwargs))
    ctx.rpc.calls.clear()
    _Fill(ctx)


def _Modify(ctx, **kwargs):
    return instancehelpers.Run(ctx, opcodes.OpInstanceSetParams(instance_name=NAME,
                                                                **kwargs))


def _CheckKept(ctx, template):
    disks = _Disks(ctx)
    assert [d.dev_type for d in disks] == [template] * 2
    assert [d.size for d in disks] == [1024, 2048]
    assert [d.name for d in disks] == ["root", None]
    assert [d.mode for d in disks] == [constants.DISK_RDONLY, constants.DISK_RDWR]
    assert [d.iv_name for d in disks] == ["disk/0", "disk/1"]
    assert _Content(ctx) == ["data of disk 0", "data of disk 1"]
    assert not ctx.cfg.VerifyConfig()
    assert not tic._LeakedPorts(ctx.cfg) and not tic._PendingMinors(ctx.cfg)


# --- conversions ------------------------------------------------------------------------------


def test_plain_to_file_to_sharedfile_to_plain(ctx):
    _Create(ctx)
    old_lvs = set(tic._Lvs(ctx, ctx.node1))
    result, cbs = _Modify(ctx, disk_template="file", file_storage_dir="sub",
                          file_driver="loop")
    assert ("disk_template", "file") in result
    _CheckKept(ctx, "file")
    directory = "/srv/ganeti/file-storage/sub/" + NAME
    assert [d.logical_id for d in _Disks(ctx)] == [
        ("loop", f"{directory}/disk0"), ("loop", f"{directory}/disk1")]
    assert tic._Lvs(ctx, ctx.node1) == {}
    assert not old_lvs & set(ctx.rpc.data.get(ctx.node1, {}))
    assert ctx.rpc.dirs[ctx.node1] == {directory}
    assert [c[0] for c in ctx.rpc.calls if c[0] == "blockdev_convert"] == \
        ["blockdev_convert"] * 2
    assert any("Copying the data of disk 1 (2048 MiB)" in str(f) for f in cbs.feedback)

    _Modify(ctx, disk_template="sharedfile")
    _CheckKept(ctx, "sharedfile")
    # the old directory went with the file disks
    assert directory not in ctx.rpc.dirs[ctx.node1]

    _Modify(ctx, disk_template="plain")
    _CheckKept(ctx, "plain")
    assert ctx.rpc.devs[ctx.node1] == {}
    assert all(d.logical_id[0] == tic.VG for d in _Disks(ctx))
    assert sorted(tic._Lvs(ctx, ctx.node1).values()) == [1024, 2048]


def test_file_to_drbd_and_drbd_to_ext(ctx):
    _Create(ctx, template="file")
    _, cbs = _Modify(ctx, disk_template="drbd", remote_node=NODE2)
    _CheckKept(ctx, "drbd")
    inst = ctx.cfg.GetInstanceInfoByName(NAME)
    assert ctx.cfg.GetInstanceNodes(inst.uuid) == (ctx.node1, ctx.node2)
    # data and metadata volumes on both nodes, the DRBD devices configured
    assert len(tic._Lvs(ctx, ctx.node1)) == 4 and len(tic._Lvs(ctx, ctx.node2)) == 4
    for disk in _Disks(ctx):
        assert ctx.rpc.drbd[ctx.node1][disk.logical_id[3]] == (disk.uuid, True)
    assert ctx.rpc.devs[ctx.node1] == {}
    assert "blockdev_getmirrorstatus" in ctx.rpc.names()
    ports = {d.logical_id[2] for d in _Disks(ctx)}
    ctx.rpc.calls.clear()

    _Modify(ctx, disk_template="ext", ext_params={"provider": PROVIDER, "dir": "/x"})
    _CheckKept(ctx, "ext")
    assert all(d.logical_id[0] == PROVIDER and d.params == {"dir": "/x"}
               for d in _Disks(ctx))
    assert tic._Lvs(ctx, ctx.node1) == {} and tic._Lvs(ctx, ctx.node2) == {}
    assert not ctx.rpc.drbd.get(ctx.node1) and not ctx.rpc.drbd.get(ctx.node2)
    assert ports <= set(ctx.cfg.GetClusterInfo().tcpudp_port_pool)
    # copied from the data volume of the drbd disks
    sources = [c[2] for c in ctx.rpc.calls if c[0] == "blockdev_convert"]
    assert len(sources) == 2
    assert all(src.endswith(("disk0_data", "disk1_data")) for src in sources)

    _Modify(ctx, disk_template="plain")
    _CheckKept(ctx, "plain")


def test_blockdev_source_is_left_alone(ctx):
    ctx.rpc.devs[ctx.node1] = {"manual//dev/sdx": 1024, "manual//dev/sdy": 2048}
    instancehelpers.Run(ctx, instancehelpers.CreateOp(
        disk_template="blockdev", start=False,
        disks=[{"adopt": "/dev/sdx", "size": 1024, "name": "root",
                "mode": constants.DISK_RDONLY},
               {"adopt": "/dev/sdy", "size": 2048}]))
    _Fill(ctx)
    _, cbs = _Modify(ctx, disk_template="plain")
    _CheckKept(ctx, "plain")
    assert set(ctx.rpc.devs[ctx.node1]) == {"manual//dev/sdx", "manual//dev/sdy"}
    assert any("left untouched" in str(f) for f in cbs.feedback)


# --- failures -------------------------------------------------------------------------------


def test_copy_failure_removes_the_new_disks(ctx):
    _Create(ctx)
    before = tic._Snapshot(ctx)
    ctx.rpc.fail_at = {"blockdev_convert": [2]}
    with pytest.raises(errors.OpExecError, match="Copying the data of disk 1 of"
                       f" instance {NAME} on node .* injected failure"):
        _Modify(ctx, disk_template="file")
    assert tic._Snapshot(ctx) == before
    assert ctx.rpc.devs.get(ctx.node1) == {}
    assert ctx.rpc.dirs[ctx.node1] == set()


def test_drbd_failure_gives_back_ports_and_minors(ctx):
    _Create(ctx, template="file")
    before = tic._Snapshot(ctx)
    devs = dict(ctx.rpc.devs[ctx.node1])
    ctx.rpc.fail_if = lambda name, node, disk: (
        "no DRBD" if name == "blockdev_create" and disk["dev_type"] == "drbd" else None)
    with pytest.raises(errors.OpExecError, match="no DRBD"):
        _Modify(ctx, disk_template="drbd", remote_node=NODE2)
    assert tic._Snapshot(ctx) == before
    assert ctx.rpc.devs[ctx.node1] == devs
    assert not tic._LeakedPorts(ctx.cfg) and not tic._PendingMinors(ctx.cfg)


def test_old_disk_removal_failure_is_a_warning(ctx):
    _Create(ctx)
    ctx.rpc.fail_if = lambda name, node, disk: (
        "busy" if name == "blockdev_remove" and disk["dev_type"] == "plain" else None)
    _, cbs = _Modify(ctx, disk_template="file")
    _CheckKept(ctx, "file")
    assert any("busy" in str(f) for f in cbs.feedback)
    assert len(tic._Lvs(ctx, ctx.node1)) == 2


# --- refusals -------------------------------------------------------------------------------


def test_refusals_change_nothing(ctx):
    _Create(ctx)
    inval = errors.ECODE_INVAL

    def Refused(match, code=inval, **kwargs):
        tic._Unchanged(ctx, errors.OpPrereqError, match, code, **kwargs)

    Refused("Conversion to the diskless disk template is not supported",
            disk_template="diskless")
    Refused("Conversion to the blockdev disk template is not supported",
            disk_template="blockdev")
    Refused("gluster disk template is not supported", disk_template="gluster")
    Refused("needs the provider", disk_template="ext")
    Refused("Invalid ext parameter\\(s\\) mode, size", disk_template="ext",
            ext_params={"provider": PROVIDER, "size": 5, "mode": "ro"})
    Refused("only valid when converting to the ext disk template",
            disk_template="file", ext_params={"provider": PROVIDER})
    Refused("only valid when converting to the ext disk template",
            ext_params={"provider": PROVIDER})
    Refused("only valid when converting to a file-based disk template",
            disk_template="ext", ext_params={"provider": PROVIDER},
            file_storage_dir="sub")
    Refused("only valid when converting to a file-based disk template",
            disk_template="drbd", remote_node=NODE2, file_driver="loop")
    Refused("ExtStorage provider 'nosuch' not found", disk_template="ext",
            ext_params={"provider": "nosuch"})
    Refused("does not support the parameter\\(s\\) color", disk_template="ext",
            ext_params={"provider": PROVIDER, "color": "red"})

    # not enabled; not allowed by the instance policy
    cluster = ctx.cfg.GetClusterInfo()
    cluster.enabled_disk_templates = [constants.DT_PLAIN]
    ctx.cfg.Update(cluster)
    Refused("Disk template 'file' is not enabled", errors.ECODE_STATE,
            disk_template="file")
    cluster = ctx.cfg.GetClusterInfo()
    cluster.enabled_disk_templates = [constants.DT_PLAIN, constants.DT_FILE]
    cluster.ipolicy[constants.IPOLICY_DTS] = [constants.DT_PLAIN]
    ctx.cfg.Update(cluster)
    Refused("Disk template file is not allowed by the instance policy",
            disk_template="file")
    _Modify(ctx, disk_template="file", ignore_ipolicy=True)
    _CheckKept(ctx, "file")
    cluster = ctx.cfg.GetClusterInfo()
    cluster.ipolicy[constants.IPOLICY_DTS] = list(constants.DISK_TEMPLATES)
    ctx.cfg.Update(cluster)

    # running
    ctx.rpc.running.add(NAME)
    Refused("is running, cannot change disk template", errors.ECODE_STATE,
            disk_template="plain")
    ctx.rpc.running.clear()

    # a disk missing on the primary
    key = "/".join(_Disks(ctx)[1].logical_id)
    size = ctx.rpc.devs[ctx.node1].pop(key)
    Refused("Disk 1 of instance .* is missing on node", errors.ECODE_STATE,
            disk_template="plain")
    ctx.rpc.devs[ctx.node1][key] = size

    # no room for the volumes
    ctx.rpc.vg_size[ctx.node1] = 3000
    Refused("Not enough disk space on target node .* required 3072 MiB",
            errors.ECODE_NORES, disk_template="plain")


def test_diskless_source_refused(ctx):
    instancehelpers.Run(ctx, instancehelpers.CreateOp(start=False))
    tic._Unchanged(ctx, errors.OpPrereqError, "Unsupported disk template conversion"
                   " from diskless to plain", errors.ECODE_INVAL, disk_template="plain")
