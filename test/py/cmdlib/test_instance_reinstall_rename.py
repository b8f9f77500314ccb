"""Tests for LUInstanceReinstall and LUInstanceRename, run through mcpu with
the recording fake RPC runner of instancehelpers, and for the gnt-instance
reinstall/rename commands that build their opcodes."""

from __future__ import annotations

import io
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import instancehelpers  # noqa: E402

from ganeti import constants, errors, locking, opcodes  # noqa: E402
from ganeti.client import gnt_instance  # noqa: E402

NAME = "inst1.example.com"
FILE_DIR = f"/srv/ganeti/file-storage/{NAME}"


@pytest.fixture
def ctx(tmp_path):
    return instancehelpers.MakeContext(tmp_path)


_Run = instancehelpers.Run


def _CreateFile(ctx, name=NAME, **kwargs):
    params = dict(disk_template="file", disks=[{"size": 1024}], start=False)
    params.update(kwargs)
    _Run(ctx, instancehelpers.CreateOp(name=name, **params))
    ctx.rpc.calls.clear()
    return ctx.cfg.GetInstanceInfoByName(name)


def _Calls(ctx, name):
    return [call for call in ctx.rpc.calls if call[0] == name]


def _RefusedPrereq(ctx, op, code, match):
    serial = ctx.cfg.GetConfigSerialNo()
    with pytest.raises(errors.OpPrereqError, match=match) as info:
        _Run(ctx, op)
    assert info.value.args[1] == code
    assert ctx.cfg.GetConfigSerialNo() == serial
    assert not _Calls(ctx, "instance_os_add")
    assert not _Calls(ctx, "file_storage_dir_rename")


# --- reinstall ---------------------------------------------------------------------------

def test_reinstall_changes_os_and_keeps_or_replaces_params(ctx):
    inst = _CreateFile(ctx, osparams={"message": "first"})
    _Run(ctx, opcodes.OpInstanceReinstall(instance_name="inst1", os_type="noop+small"))
    names = ctx.rpc.names()
    assert names.index("blockdev_assemble") < names.index("instance_os_add") < \
        names.index("blockdev_shutdown")
    (_, node, inst_dict, reinstall, _debug), = _Calls(ctx, "instance_os_add")
    assert node == inst.primary_node and reinstall is True
    assert inst_dict["name"] == NAME and inst_dict["os"] == "noop+small"
    assert inst_dict["osparams"] == {"message": "first"}
    validate = [c for c in ctx.rpc.calls if c[0] == "os_validate"][-1]
    assert validate[1][1] == "noop+small" and validate[1][4] is False
    saved = ctx.cfg.GetInstanceInfoByName(NAME)
    assert saved.os == "noop+small" and saved.osparams == {"message": "first"}

    # -O replaces the named parameter for good
    ctx.rpc.calls.clear()
    _Run(ctx, opcodes.OpInstanceReinstall(instance_name=NAME,
                                          osparams={"message": "second"}))
    (call,) = _Calls(ctx, "instance_os_add")
    assert call[2]["os"] == "noop+small" and call[2]["osparams"] == {"message": "second"}
    assert ctx.cfg.GetInstanceInfoByName(NAME).osparams == {"message": "second"}

    # "default" removes it (the cluster's default applies again); secret
    # parameters are used but never saved
    ctx.rpc.calls.clear()
    _Run(ctx, opcodes.OpInstanceReinstall(instance_name=NAME,
                                          osparams={"message": "default"},
                                          osparams_secret={"token": "s3cr3t"}))
    (call,) = _Calls(ctx, "instance_os_add")
    assert call[2]["osparams"] == {"token": "s3cr3t"}
    saved = ctx.cfg.GetInstanceInfoByName(NAME)
    assert saved.osparams == {} and "s3cr3t" not in repr(saved.ToDict())


def test_reinstall_refusals(ctx):
    _CreateFile(ctx)
    uuid = ctx.cfg.GetInstanceInfoByName(NAME).uuid
    op = opcodes.OpInstanceReinstall(instance_name=NAME)
    ctx.cfg.MarkInstanceUp(uuid)
    _RefusedPrereq(ctx, op, errors.ECODE_STATE, "is marked to be up, cannot reinstall")
    ctx.cfg.MarkInstanceDown(uuid)
    ctx.rpc.running.add(NAME)
    _RefusedPrereq(ctx, op, errors.ECODE_STATE, "is running, cannot reinstall")
    ctx.rpc.running.clear()
    ctx.cfg.MarkInstanceOffline(uuid)
    _RefusedPrereq(ctx, op, errors.ECODE_STATE, "marked to be offline")
    ctx.cfg.MarkInstanceDown(uuid)
    ctx.rpc.fail["os_validate"] = "Unsupported OS variant 'big' of OS 'noop'"
    _RefusedPrereq(ctx, opcodes.OpInstanceReinstall(instance_name=NAME,
                                                    os_type="noop+big"),
                   errors.ECODE_INVAL, "OS 'noop\\+big' not usable on node.*variant 'big'")
    del ctx.rpc.fail["os_validate"]
    _Run(ctx, instancehelpers.CreateOp(name="dl.example.com", start=False))
    ctx.rpc.calls.clear()
    _RefusedPrereq(ctx, opcodes.OpInstanceReinstall(instance_name="dl.example.com"),
                   errors.ECODE_INVAL, "has no disks")


def test_reinstall_force_variant_is_passed(ctx):
    _CreateFile(ctx)
    _Run(ctx, opcodes.OpInstanceReinstall(instance_name=NAME, os_type="noop+other",
                                          force_variant=True))
    validate = [c for c in ctx.rpc.calls if c[0] == "os_validate"][-1]
    assert validate[1][1] == "noop+other" and validate[1][4] is True


def test_reinstall_script_failure_keeps_config(ctx):
    _CreateFile(ctx, osparams={"message": "keep"})
    serial = ctx.cfg.GetConfigSerialNo()
    ctx.rpc.fail["instance_os_add"] = ("OS add script failed (exited with exit code 1),"
                                       " last lines in the log file /x.log:\nboom")
    with pytest.raises(errors.OpExecError, match="Could not install OS.*\nboom"):
        _Run(ctx, opcodes.OpInstanceReinstall(instance_name=NAME, os_type="noop+small",
                                              osparams={"message": "new"}))
    saved = ctx.cfg.GetInstanceInfoByName(NAME)
    assert saved.os == "noop+default" and saved.osparams == {"message": "keep"}
    assert ctx.cfg.GetConfigSerialNo() == serial
    # the disks were shut down again
    names = ctx.rpc.names()
    assert "blockdev_shutdown" in names[names.index("instance_os_add"):]


# --- rename --------------------------------------------------------------------------------

def _RenameOp(new_name, name=NAME, **kwargs):
    params = dict(instance_name=name, new_name=new_name, name_check=False,
                  ip_check=False)
    params.update(kwargs)
    return opcodes.OpInstanceRename(**params)


def test_rename_file_instance(ctx):
    inst = _CreateFile(ctx)
    new = "inst2.example.com"
    result, _ = _Run(ctx, _RenameOp(new))
    assert result == new
    (call,) = _Calls(ctx, "file_storage_dir_rename")
    assert call[1:] == (inst.primary_node, FILE_DIR, f"/srv/ganeti/file-storage/{new}")
    assert ctx.cfg.GetInstanceInfoByName(NAME) is None
    renamed = ctx.cfg.GetInstanceInfoByName(new)
    assert renamed.uuid == inst.uuid
    (disk,) = ctx.cfg.GetInstanceDisks(inst.uuid)
    assert disk.logical_id[1] == f"/srv/ganeti/file-storage/{new}/disk0"
    (rename,) = _Calls(ctx, "instance_run_rename")
    assert rename[2]["name"] == new and rename[3] == NAME
    assert rename[2]["disks"][0]["logical_id"][1] == disk.logical_id[1]
    locks = ctx.glm.names(locking.LEVEL_INSTANCE)
    assert new in locks and NAME not in locks
    # the renamed instance works under its new name
    _Run(ctx, opcodes.OpInstanceStartup(instance_name=new))
    assert ctx.cfg.GetInstanceInfoByName(new).admin_state == constants.ADMINST_UP


def test_rename_refusals(ctx):
    _CreateFile(ctx)
    _Run(ctx, instancehelpers.CreateOp(name="other.example.com", start=False))
    ctx.rpc.calls.clear()
    _RefusedPrereq(ctx, _RenameOp("other.example.com"), errors.ECODE_EXISTS,
                   "'other.example.com' is already in the cluster")
    _RefusedPrereq(ctx, _RenameOp("bad name"), errors.ECODE_INVAL,
                   "new_name.*host name.*'bad name'")
    _RefusedPrereq(ctx, _RenameOp("x.example.com", ip_check=True), errors.ECODE_INVAL,
                   "IP address check requires a name check")
    ctx.cfg.MarkInstanceUp(ctx.cfg.GetInstanceInfoByName(NAME).uuid)
    _RefusedPrereq(ctx, _RenameOp("x.example.com"), errors.ECODE_STATE,
                   "marked to be up, cannot rename")
    _RefusedPrereq(ctx, _RenameOp("x.example.com", name="nosuch"), errors.ECODE_NOENT,
                   "'nosuch' not known")
    assert NAME in ctx.glm.names(locking.LEVEL_INSTANCE)


def test_rename_script_failure_is_a_warning(ctx):
    _CreateFile(ctx)
    ctx.rpc.fail["instance_run_rename"] = "OS rename script failed"
    _, cbs = _Run(ctx, _RenameOp("inst2.example.com"))
    assert ctx.cfg.GetInstanceInfoByName("inst2.example.com") is not None
    assert "Could not run OS rename script" in repr(cbs.feedback)


def test_rename_directory_failure_changes_nothing(ctx):
    _CreateFile(ctx)
    serial = ctx.cfg.GetConfigSerialNo()
    ctx.rpc.fail["file_storage_dir_rename"] = "the target exists"
    with pytest.raises(errors.OpExecError, match="the target exists"):
        _Run(ctx, _RenameOp("inst2.example.com"))
    assert ctx.cfg.GetInstanceInfoByName(NAME) is not None
    assert ctx.cfg.GetConfigSerialNo() == serial
    assert NAME in ctx.glm.names(locking.LEVEL_INSTANCE)


def test_rename_config_failure_moves_directory_back(ctx, monkeypatch):
    _CreateFile(ctx)

    def _Broken(*args):
        raise errors.ConfigurationError("disk full")
    monkeypatch.setattr(ctx.cfg, "RenameInstance", _Broken)
    with pytest.raises(errors.ConfigurationError, match="disk full"):
        _Run(ctx, _RenameOp("inst2.example.com"))
    moves = [call[2:] for call in _Calls(ctx, "file_storage_dir_rename")]
    new_dir = "/srv/ganeti/file-storage/inst2.example.com"
    assert moves == [(FILE_DIR, new_dir), (new_dir, FILE_DIR)]
    assert NAME in ctx.glm.names(locking.LEVEL_INSTANCE)


def test_rename_diskless_to_same_name_reruns_script(ctx):
    _Run(ctx, instancehelpers.CreateOp(start=False))
    ctx.rpc.calls.clear()
    _Run(ctx, _RenameOp(NAME))
    assert not _Calls(ctx, "file_storage_dir_rename")
    assert len(_Calls(ctx, "instance_run_rename")) == 1
    assert NAME in ctx.glm.names(locking.LEVEL_INSTANCE)


# --- the command line ------------------------------------------------------------------------

@pytest.fixture
def submitted(monkeypatch):
    ops = []
    monkeypatch.setattr(gnt_instance.cli, "SubmitOrSend",
                        lambda op, opts, **kw: ops.append(op))
    # reinstall looks the instances up, then submits their jobs together
    monkeypatch.setattr(gnt_instance.cli, "GetClient", lambda *a, **kw: None)
    monkeypatch.setattr(gnt_instance.selectors, "ExpandMultiNames",
                        lambda mode, names, cl=None: list(names))
    monkeypatch.setattr(gnt_instance.selectors, "RunManyOps",
                        lambda names, build, opts, cl=None, verbose=True:
                        ops.extend(build(name, opts) for name in names)
                        or constants.EXIT_SUCCESS)
    monkeypatch.setattr(gnt_instance.cli, "SubmitOpCode",
                        lambda op, **kw: [["noop", ["default", "small"]], ["plain", []]])
    return ops


def test_cli_reinstall_select_os_reads_stdin(submitted, monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.StringIO("7\n1\n"))
    assert gnt_instance.Main(["gnt-instance", "reinstall", "--select-os", "-f",
                              "-O", "message=hi", NAME]) == constants.EXIT_SUCCESS
    (op,) = submitted
    assert op.os_type == "noop+small" and op.osparams == {"message": "hi"}
    out = capsys.readouterr()
    assert "  0: noop+default\n  1: noop+small\n  2: plain" in out.out
    assert "Invalid choice '7'" in out.err


def test_cli_reinstall_abort_and_confirmation(submitted, monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.StringIO("x\n"))
    assert gnt_instance.Main(["gnt-instance", "reinstall", "--select-os", "-f",
                              NAME]) != constants.EXIT_SUCCESS
    questions = []
    monkeypatch.setattr(gnt_instance.cli, "AskUser",
                        lambda text, *a: questions.append(text) or False)
    assert gnt_instance.Main(["gnt-instance", "reinstall", "-o", "noop+small",
                              NAME]) == constants.EXIT_CONFIRMATION
    assert not submitted
    assert questions and "reinstall the instance 'inst1.example.com'" in questions[0]
    assert "not confirmed" in capsys.readouterr().err


def test_cli_rename_checks(submitted):
    gnt_instance.Main(["gnt-instance", "rename", NAME, "new.example.com"])
    gnt_instance.Main(["gnt-instance", "rename", "--no-name-check", NAME, "n2"])
    gnt_instance.Main(["gnt-instance", "rename", "--no-name-check", "--no-ip-check",
                       NAME, "n3"])
    assert [(op.new_name, op.name_check, op.ip_check) for op in submitted] == [
        ("new.example.com", True, True), ("n2", False, False), ("n3", False, False)]
