"""Tests for the instance LUs acting on existing instances (shutdown,
startup, reboot, query data, remove), run through mcpu with the recording
fake RPC runner of instancehelpers."""

from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import instancehelpers  # noqa: E402

from ganeti import constants, errors, opcodes  # noqa: E402
from ganeti import mcpu  # noqa: E402


@pytest.fixture
def ctx(tmp_path):
    return instancehelpers.MakeContext(tmp_path)


_Run = instancehelpers.Run
_CreateOp = instancehelpers.CreateOp
_Refused = instancehelpers.Refused


def test_lifecycle_lus(ctx):
    name = "inst1.example.com"
    _Run(ctx, _CreateOp(disk_template="file", disks=[{"size": 1024}]))
    _Run(ctx, opcodes.OpInstanceShutdown(instance_name="inst1", timeout=3))
    inst = ctx.cfg.GetInstanceInfoByName(name)
    assert inst.admin_state == constants.ADMINST_DOWN
    assert ("instance_shutdown", name, 3) in ctx.rpc.calls
    # a soft reboot of a stopped instance starts it and marks it up (Ganeti's way)
    _Run(ctx, opcodes.OpInstanceReboot(instance_name=name, reboot_type="soft"))
    assert ctx.cfg.GetInstanceInfoByName(name).admin_state == constants.ADMINST_UP
    assert ctx.rpc.names()[-1] != "instance_reboot"
    _Run(ctx, opcodes.OpInstanceShutdown(instance_name="inst1", timeout=3))
    _Run(ctx, opcodes.OpInstanceStartup(instance_name=name))
    assert ctx.cfg.GetInstanceInfoByName(name).admin_state == constants.ADMINST_UP
    _Run(ctx, opcodes.OpInstanceReboot(instance_name=name, reboot_type="hard",
                                       shutdown_timeout=7))
    assert "instance_reboot" in ctx.rpc.names()
    ctx.rpc.calls.clear()
    _Run(ctx, opcodes.OpInstanceReboot(instance_name=name, reboot_type="full"))
    assert ctx.rpc.names().count("instance_start") == 1
    data, _ = _Run(ctx, opcodes.OpInstanceQueryData(instances=[name], static=True))
    assert data[name]["config_state"] == "up" and data[name]["disk_template"] == "file"
    assert data[name]["disks"][0]["size"] == 1024
    _Run(ctx, opcodes.OpInstanceRemove(instance_name=name))
    assert not ctx.cfg.GetInstanceList() and not ctx.cfg.GetAllDisksInfo()
    assert name not in ctx.glm.names(mcpu.locking.LEVEL_INSTANCE)
    with pytest.raises(errors.OpPrereqError, match="not known"):
        _Run(ctx, opcodes.OpInstanceStartup(instance_name=name))


def test_query_data_asks_each_node_once(ctx):
    """Live data of many instances: one instance_list call, not one per instance."""
    names = [f"inst{i}.example.com" for i in (1, 2, 3)]
    for name in names:
        _Run(ctx, _CreateOp(instance_name=name, start=False))
    ctx.rpc.running = {names[1]}
    ctx.rpc.calls.clear()
    data, _ = _Run(ctx, opcodes.OpInstanceQueryData(instances=[], static=False))
    assert sorted(data) == names
    assert [data[n]["run_state"] for n in names] == ["down", "up", "down"]
    assert ctx.rpc.names().count("instance_list") == 1
    assert "instance_info" not in ctx.rpc.names()
    ctx.rpc.fail["instance_list"] = "node went away"
    data, _ = _Run(ctx, opcodes.OpInstanceQueryData(instances=[names[1]], static=False))
    assert data[names[1]]["run_state"] is None


def test_startup_refusals(ctx):
    name = "inst1.example.com"
    _Run(ctx, _CreateOp(start=False))
    ctx.rpc.memory_free = 64
    with pytest.raises(errors.OpPrereqError, match="Not enough memory"):
        _Run(ctx, opcodes.OpInstanceStartup(instance_name=name))
    ctx.cfg.MarkInstanceOffline(ctx.cfg.GetInstanceInfoByName(name).uuid)
    with pytest.raises(errors.OpPrereqError, match="marked offline"):
        _Run(ctx, opcodes.OpInstanceStartup(instance_name=name))
    with pytest.raises(errors.OpPrereqError, match="marked offline"):
        _Run(ctx, opcodes.OpInstanceReboot(instance_name=name, reboot_type="hard"))


def test_remove_with_failures(ctx):
    name = "inst1.example.com"
    _Run(ctx, _CreateOp())
    ctx.rpc.fail["instance_shutdown"] = "node went away"
    with pytest.raises(errors.OpExecError, match="node went away"):
        _Run(ctx, opcodes.OpInstanceRemove(instance_name=name))
    assert ctx.cfg.GetInstanceInfoByName(name) is not None
    _Run(ctx, opcodes.OpInstanceRemove(instance_name=name, ignore_failures=True))
    assert ctx.cfg.GetInstanceInfoByName(name) is None
