"""Tests for the export LUs (lib/cmdlib/backup.py) and instance creation
from an export (lib/cmdlib/instance_import.py), through mcpu on a one-node
configuration with a fake RPC runner."""

from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import instancehelpers as ih  # noqa: E402

from ganeti import constants, errors, export_config, opcodes  # noqa: E402
from ganeti.cmdlib import backup_remote  # noqa: E402

NAME = "inst1.example.com"


class BackupRpc(ih.FakeRpc):
    """Also: the exports of each node (``exports``) and the config.ini text
    ``export_info`` answers."""

    def __init__(self):
        super().__init__()
        self.exports: dict[str, list[str]] = {}
        self.info_text: str | None = None

    def call_export_list(self, nodes):
        self.calls.append(("export_list", tuple(nodes)))
        return {node: self._Answer("export_list", list(self.exports.get(node, [])))
                for node in nodes}

    def call_export_info(self, node, path):
        self.calls.append(("export_info", node, path))
        if self.info_text is None:
            return ih._Fail(f"No export found in {path}")
        return self._Answer("export_info", self.info_text)


@pytest.fixture
def ctx(tmp_path):
    context = ih.MakeContext(tmp_path)
    context.rpc = BackupRpc()
    return context


def _Master(ctx):
    return ctx.cfg.GetMasterNode()


def _Create(ctx, start=False):
    ih.Run(ctx, ih.CreateOp(NAME, start=start, beparams={"maxmem": 128, "minmem": 128}))


def test_prepare_local_is_none(ctx):
    _Create(ctx)
    result, _ = ih.Run(ctx, opcodes.OpBackupPrepare(instance_name=NAME,
                                                    mode=constants.EXPORT_MODE_LOCAL))
    assert result is None


def test_remote_mode_unavailable(ctx, monkeypatch):
    _Create(ctx)
    monkeypatch.delattr(backup_remote, "PrepareRemoteExport")
    monkeypatch.delattr(backup_remote, "CheckRemoteExport")
    with pytest.raises(errors.OpPrereqError,
                       match="Remote exports are not supported yet") as info:
        ih.Run(ctx, opcodes.OpBackupPrepare(instance_name=NAME,
                                            mode=constants.EXPORT_MODE_REMOTE))
    assert info.value.args[1] == errors.ECODE_INVAL
    with pytest.raises(errors.OpPrereqError, match="not supported yet"):
        ih.Run(ctx, opcodes.OpBackupExport(instance_name=NAME, target_node=[],
                                           mode=constants.EXPORT_MODE_REMOTE))


@pytest.mark.parametrize("kwargs,code,match", [
    (dict(target_node="nosuch.example.com"), errors.ECODE_NOENT, "nosuch"),
    (dict(target_node=ih.MASTER, compress="bzip9"), errors.ECODE_INVAL, "bzip9"),
    (dict(target_node=ih.MASTER, shutdown=False, remove_instance=True),
     errors.ECODE_INVAL, "without shutting it down"),
    (dict(target_node=[]), errors.ECODE_INVAL, "needs a target node name"),
    (dict(target_node=ih.MASTER, zeroing_timeout_fixed=10), errors.ECODE_INVAL,
     "only be used with --zero-free-space"),
    (dict(target_node=ih.MASTER, shutdown=False, long_sleep=True), errors.ECODE_INVAL,
     "--long-sleep only makes sense"),
    (dict(target_node=ih.MASTER, zero_free_space=True, shutdown=False),
     errors.ECODE_INVAL, "needs the instance shut down"),
    (dict(target_node=ih.MASTER, zero_free_space=True), errors.ECODE_INVAL,
     "zeroing image must be set"),
    (dict(target_node=ih.MASTER, zero_free_space=True, zeroing_timeout_fixed=-5),
     errors.ECODE_INVAL, "Invalid zeroing_timeout_fixed -5"),
    (dict(target_node=ih.MASTER, zero_free_space=True, zeroing_timeout_per_mib=-0.5),
     errors.ECODE_INVAL, "Invalid zeroing_timeout_per_mib -0.5"),
])
def test_export_refused(ctx, kwargs, code, match):
    _Create(ctx)
    ctx.rpc.calls.clear()
    with pytest.raises(errors.OpPrereqError, match=match) as info:
        ih.Run(ctx, opcodes.OpBackupExport(instance_name=NAME, **kwargs))
    assert info.value.args[1] == code
    assert "instance_shutdown" not in ctx.rpc.names()


def test_export_of_a_running_diskless_instance(ctx):
    _Create(ctx, start=True)
    ctx.rpc.calls.clear()
    result, _ = ih.Run(ctx, opcodes.OpBackupExport(instance_name=NAME,
                                                   target_node=ih.MASTER))
    assert result == (True, [])
    names = ctx.rpc.names()
    # Nothing to snapshot: the instance runs again before the copy
    assert names.index("instance_shutdown") < names.index("instance_start") < \
        names.index("finalize_export")
    finalize = next(c for c in ctx.rpc.calls if c[0] == "finalize_export")
    inst_dict, snap_disks = finalize[2], finalize[3]
    assert inst_dict["name"] == NAME and inst_dict["disk_template"] == "diskless"
    assert snap_disks == []
    # A stale partial export is cleared first
    assert ("export_remove", _Master(ctx), NAME + ".new") in ctx.rpc.calls
    assert NAME in ctx.rpc.running


def test_failed_finalize_undoes(ctx):
    _Create(ctx, start=True)
    ctx.rpc.fail["finalize_export"] = "disk full"
    ctx.rpc.calls.clear()
    with pytest.raises(errors.OpExecError, match="no partial export remains"):
        ih.Run(ctx, opcodes.OpBackupExport(instance_name=NAME, target_node=ih.MASTER))
    removes = [c for c in ctx.rpc.calls if c[0] == "export_remove"]
    assert len(removes) == 2 and all(c[2] == NAME + ".new" for c in removes)
    assert NAME in ctx.rpc.running
    assert ctx.cfg.GetInstanceInfoByName(NAME) is not None


def test_export_remove_instance(ctx):
    _Create(ctx)
    ih.Run(ctx, opcodes.OpBackupExport(instance_name=NAME, target_node=ih.MASTER,
                                       remove_instance=True))
    assert ctx.cfg.GetInstanceInfoByName(NAME) is None


def test_remove(ctx):
    ctx.rpc.exports[_Master(ctx)] = [NAME]
    ih.Run(ctx, opcodes.OpBackupRemove(instance_name=NAME))
    assert ("export_remove", _Master(ctx), NAME) in ctx.rpc.calls
    ctx.rpc.exports.clear()
    with pytest.raises(errors.OpExecError, match="No export found"):
        ih.Run(ctx, opcodes.OpBackupRemove(instance_name=NAME))


# --- import ---------------------------------------------------------------------------

def _ExportText(**changes):
    instance = {"name": "old.example.com", "os": "noop+default",
                "hypervisor": constants.HT_FAKE, "disk_template": "diskless",
                "tags": ["from-export"],
                "beparams": {constants.BE_MAXMEM: 160, constants.BE_MINMEM: 128,
                             constants.BE_VCPUS: 1},
                "hvparams": {}, "osparams": {}, "nics": [
                    {"mac": "aa:00:00:00:00:01", "nicparams": {}}]}
    instance.update(changes)
    return export_config.Build(instance, [], "node1")


def _ImportOp(**kwargs):
    params = dict(instance_name=NAME, mode=constants.INSTANCE_IMPORT, disks=[], nics=[],
                  pnode=ih.MASTER, src_node=ih.MASTER,
                  src_path="/srv/ganeti/export/old.example.com", name_check=False,
                  ip_check=False, start=False)
    params.update(kwargs)
    return opcodes.OpInstanceCreate(**params)


def test_import_fills_from_export(ctx):
    ctx.rpc.info_text = _ExportText()
    ih.Run(ctx, _ImportOp())
    inst = ctx.cfg.GetInstanceInfoByName(NAME)
    assert inst.os == "noop+default"
    assert ctx.cfg.GetInstanceDiskTemplate(inst.uuid) == "diskless"
    assert inst.beparams[constants.BE_MAXMEM] == 160
    assert set(inst.tags) == {"from-export"}
    # Another name: the exported instance may still use its MAC
    assert len(inst.nics) == 1 and inst.nics[0].mac != "aa:00:00:00:00:01"


def test_import_same_name_keeps_mac(ctx):
    ctx.rpc.info_text = _ExportText(name=NAME)
    ih.Run(ctx, _ImportOp(src_path=f"/srv/ganeti/export/{NAME}"))
    inst = ctx.cfg.GetInstanceInfoByName(NAME)
    assert inst.nics[0].mac == "aa:00:00:00:00:01"


def test_import_finds_export_by_name(ctx):
    ctx.rpc.info_text = _ExportText()
    ctx.rpc.exports[_Master(ctx)] = ["old.example.com"]
    ih.Run(ctx, _ImportOp(src_node=None, src_path="/srv/ganeti/export/old.example.com"))
    assert ctx.cfg.GetInstanceInfoByName(NAME) is not None


def test_import_refused(ctx):
    text = _ExportText().replace("version = 0", "version = 1")
    ctx.rpc.info_text = text
    ih.Refused(ctx, _ImportOp(), errors.ECODE_INVAL, "newer")
    ctx.rpc.info_text = None
    ih.Refused(ctx, _ImportOp(), errors.ECODE_INVAL, "No export found")
    ctx.rpc.info_text = "[export]\nversion = 0\n"
    ih.Refused(ctx, _ImportOp(), errors.ECODE_INVAL, "no \\[instance\\] section")
    ctx.rpc.info_text = _ExportText()
    ih.Refused(ctx, _ImportOp(src_node=None, src_path="/srv/ganeti/export/other"),
               errors.ECODE_NOENT, "No export named 'other'")
    ih.Refused(ctx, _ImportOp(compress="bzip9"), errors.ECODE_INVAL, "bzip9")


class ZeroingRpc(BackupRpc):
    """A node with a 3 MiB (and a byte) zeroing image, whose helper VM
    powers itself off after ``runs`` looks (never when None)."""

    def __init__(self):
        super().__init__()
        self.runs: int | None = 1
        self.started_disks: list[list[str]] = []

    def call_get_image_size(self, node, image):
        self.calls.append(("get_image_size", node, image))
        return self._Answer("get_image_size", 3 * 1024 * 1024 + 1)

    def call_instance_start(self, node, inst, paused, reason):
        self.started_disks.append([disk.get("name") for disk in inst["disks"]])
        return super().call_instance_start(node, inst, paused, reason)

    def call_instance_info(self, nodes, name, hvname, hvparams):
        self.calls.append(("instance_info", name))
        if name in self.running and self.runs is not None:
            if self.runs == 0:
                self.running.discard(name)  # the guest powered itself off
            else:
                self.runs -= 1
        return super().call_instance_info(nodes, name, hvname, hvparams)


@pytest.fixture
def zctx(ctx, monkeypatch):
    from ganeti.cmdlib import instance_helpervm
    monkeypatch.setattr(instance_helpervm, "_POLL_FIRST", 0.0)
    ctx.rpc = ZeroingRpc()
    _Create(ctx, start=True)
    cluster = ctx.cfg.GetClusterInfo()
    cluster.zeroing_image = "/srv/zero.img"
    ctx.cfg.Update(cluster, None)
    ctx.rpc.calls.clear()
    ctx.rpc.started_disks.clear()
    return ctx


def _Index(names, name, after=-1):
    return names.index(name, after + 1)


def test_zeroing_boots_the_image_on_a_temporary_disk(zctx):
    inst = zctx.cfg.GetInstanceInfoByName(NAME)
    result, cbs = ih.Run(zctx, opcodes.OpBackupExport(
        instance_name=NAME, target_node=ih.MASTER, zero_free_space=True))
    assert result == (True, [])
    names = zctx.rpc.names()
    down = _Index(names, "instance_shutdown")
    create = _Index(names, "blockdev_create", down)
    image = _Index(names, "blockdev_image", create)
    start = _Index(names, "instance_start", image)
    stop = _Index(names, "instance_shutdown", start)
    remove = _Index(names, "blockdev_remove", stop)
    restart = _Index(names, "instance_start", remove)
    assert restart < names.index("finalize_export")
    # The image (3 MiB and a byte) on a 4 MiB file disk, the helper's disk 0
    (_, _, disk, path, size) = zctx.rpc.calls[image]
    assert (path, size) == ("/srv/zero.img", 4)
    assert disk["dev_type"] == constants.DT_FILE and disk["size"] == 4
    assert disk["logical_id"][1].startswith(
        f"/srv/ganeti/file-storage/{NAME}/helper-vm-image-")
    assert zctx.rpc.started_disks == [["helper-vm-image"], []]
    assert zctx.rpc.calls[remove][2]["uuid"] == disk["uuid"]
    # Nothing of the helper is left in the configuration
    after = zctx.cfg.GetInstanceInfoByName(NAME)
    assert after.disks == inst.disks == []
    assert disk["uuid"] not in zctx.cfg.GetAllDisksInfo()
    messages = [args[-1] for args in cbs.feedback]
    assert any("waiting up to 300 s" in str(m) for m in messages)
    assert any("Zeroing completed" in str(m) for m in messages)
    assert NAME in zctx.rpc.running


def test_zeroing_timeout_stops_the_helper_and_exports(zctx):
    zctx.rpc.runs = None  # the helper never ends
    result, cbs = ih.Run(zctx, opcodes.OpBackupExport(
        instance_name=NAME, target_node=ih.MASTER, zero_free_space=True,
        zeroing_timeout_fixed=0, zeroing_timeout_per_mib=0.0))
    assert result == (True, [])
    messages = " ".join(str(args[-1]) for args in cbs.feedback)
    assert "did not complete within 0 s" in messages
    assert "Zeroing completed" not in messages
    names = zctx.rpc.names()
    start = names.index("instance_start")
    assert "instance_shutdown" in names[start:]
    assert "blockdev_remove" in names[start:]
    assert "finalize_export" in names
    assert zctx.cfg.GetInstanceInfoByName(NAME).disks == []


@pytest.mark.parametrize("failing,match", [
    ("get_image_size", "size of the image /srv/zero.img"),
    ("blockdev_image", "Could not write the zeroing image /srv/zero.img"),
    ("blockdev_create", "Can.t create block device disk/0"),
])
def test_zeroing_failure_leaves_the_instance_as_it_was(zctx, failing, match):
    zctx.rpc.fail[failing] = "no such file"
    serial_disks = dict(zctx.cfg.GetAllDisksInfo())
    with pytest.raises(errors.OpExecError, match=match) as info:
        ih.Run(zctx, opcodes.OpBackupExport(instance_name=NAME, target_node=ih.MASTER,
                                            zero_free_space=True))
    assert "nothing was exported" in str(info.value)
    names = zctx.rpc.names()
    assert "finalize_export" not in names
    if failing == "blockdev_image":
        assert "blockdev_remove" in names
        assert "instance_start" in names[names.index("blockdev_remove"):]
    # No helper disk in the configuration; the instance runs again
    assert zctx.cfg.GetAllDisksInfo() == serial_disks
    assert zctx.cfg.GetInstanceInfoByName(NAME).disks == []
    assert NAME in zctx.rpc.running


@pytest.mark.parametrize("enabled,own,expected", [
    (["plain", "file", "diskless"], "diskless", "plain"),
    (["plain", "file", "diskless"], "file", "file"),
    (["file", "diskless"], "diskless", "file"),
])
def test_temporary_disk_template(ctx, enabled, own, expected):
    from ganeti.cmdlib import instance_helpervm
    disks = [{"size": 1024}] if own != "diskless" else []
    ih.Run(ctx, ih.CreateOp(NAME, disk_template=own, disks=disks,
                            beparams={"maxmem": 128, "minmem": 128}))
    cluster = ctx.cfg.GetClusterInfo()
    cluster.enabled_disk_templates = enabled
    ctx.cfg.Update(cluster, None)
    inst = ctx.cfg.GetInstanceInfoByName(NAME)
    assert instance_helpervm.TemporaryDiskTemplate(ctx.cfg, inst) == expected


def test_zeroing_needs_a_template_for_the_temporary_disk(zctx):
    cluster = zctx.cfg.GetClusterInfo()
    cluster.enabled_disk_templates = [constants.DT_DISKLESS]
    zctx.cfg.Update(cluster, None)
    zctx.rpc.calls.clear()
    with pytest.raises(errors.OpPrereqError, match="plain or file") as info:
        ih.Run(zctx, opcodes.OpBackupExport(instance_name=NAME, target_node=ih.MASTER,
                                            zero_free_space=True))
    assert info.value.args[1] == errors.ECODE_STATE
    assert "instance_shutdown" not in zctx.rpc.names()


def test_unsnappable_running_instance_needs_long_sleep(ctx, monkeypatch):
    # A running instance whose disks cannot be snapshotted stays down for
    # the whole export: only with --long-sleep
    from ganeti.cmdlib import backup
    ih.Run(ctx, ih.CreateOp(NAME, disk_template=constants.DT_FILE,
                            disks=[{"size": 1024}], beparams={"maxmem": 128,
                                                            "minmem": 128}))
    monkeypatch.setattr(backup, "SNAPSHOT_TYPES", frozenset())
    inst = ctx.cfg.GetInstanceInfoByName(NAME)
    inst.admin_state = constants.ADMINST_UP
    ctx.cfg.Update(inst, None)
    ctx.rpc.calls.clear()
    with pytest.raises(errors.OpPrereqError, match="--long-sleep") as info:
        ih.Run(ctx, opcodes.OpBackupExport(instance_name=NAME, target_node=ih.MASTER))
    assert info.value.args[1] == errors.ECODE_STATE
    assert "instance_shutdown" not in ctx.rpc.names()
