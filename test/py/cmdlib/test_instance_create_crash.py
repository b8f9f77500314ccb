"""Crash consistency of LUInstanceCreate: the instance enters the
configuration (forthcoming) before anything is made on the node, the
commit clears the mark, an undo that cannot reach the node keeps the
instance and its lock, and ``Interrupted`` judges a creation found running
at a master start from the configuration alone."""

from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import instancehelpers  # noqa: E402
from instancehelpers import MASTER  # noqa: E402

from ganeti import constants, errors, locking, opcodes  # noqa: E402
from ganeti.cmdlib import instance_create as ic  # noqa: E402
from ganeti.cmdlib import instance_remove  # noqa: E402

NAME = "inst1.example.com"


class CleanupRecorder:
    """Stands for the master's instance_cleanup: records wake-ups."""

    def __init__(self):
        self.woken = []

    def Wake(self, name=None):
        self.woken.append(name)


@pytest.fixture
def ctx(tmp_path):
    ctx = instancehelpers.MakeContext(tmp_path)
    ctx.instance_cleanup = CleanupRecorder()
    return ctx


def _FileOp(**kwargs):
    return instancehelpers.CreateOp(disk_template="file", disks=[{"size": 1024}],
                                    **kwargs)


def _Watch(ctx, call):
    """Record the instance as the configuration has it when ``call`` runs."""
    seen = []
    original = getattr(ctx.rpc, f"call_{call}")

    def _Call(*args, **kwargs):
        inst = ctx.cfg.GetInstanceInfoByName(NAME)
        seen.append(None if inst is None else
                    (inst.forthcoming, inst.admin_state,
                     len(ctx.cfg.GetInstanceDisks(inst.uuid))))
        return original(*args, **kwargs)

    setattr(ctx.rpc, f"call_{call}", _Call)
    return seen


def test_instance_is_configured_before_the_node_is_touched(ctx):
    seen = {call: _Watch(ctx, call) for call in
            ("file_storage_dir_create", "blockdev_create", "instance_os_add",
             "instance_start")}
    result, _ = instancehelpers.Run(ctx, _FileOp())
    assert result == [MASTER]
    # Forthcoming, down and with its disk at every step on the node
    for call, states in seen.items():
        assert states == [(True, constants.ADMINST_DOWN, 1)], call
    inst = ctx.cfg.GetInstanceInfoByName(NAME)
    assert not inst.forthcoming
    assert inst.admin_state == constants.ADMINST_UP and inst.disks_active


def test_undo_that_cannot_reach_the_node_keeps_instance_and_lock(ctx):
    ctx.rpc.fail["instance_os_add"] = "Connection refused"
    ctx.rpc.fail["blockdev_remove"] = "Connection refused"
    with pytest.raises(errors.OpExecError, match="Connection refused"):
        instancehelpers.Run(ctx, _FileOp())
    inst = ctx.cfg.GetInstanceInfoByName(NAME)
    assert inst is not None and inst.forthcoming
    assert inst.admin_state == constants.ADMINST_DOWN
    # Its lock stays for the cleanup, which was told
    assert NAME in ctx.glm.names(locking.LEVEL_INSTANCE)
    assert ctx.instance_cleanup.woken == [NAME]
    # Nothing may be done with it but removing it
    with pytest.raises(errors.OpPrereqError, match="never completely created") as info:
        instancehelpers.Run(ctx, opcodes.OpInstanceStartup(instance_name=NAME))
    assert info.value.args[1] == errors.ECODE_STATE
    del ctx.rpc.fail["blockdev_remove"]
    instancehelpers.Run(ctx, opcodes.OpInstanceRemove(instance_name=NAME))
    assert ctx.cfg.GetInstanceInfoByName(NAME) is None
    assert NAME not in ctx.glm.names(locking.LEVEL_INSTANCE)


def test_failed_start_is_undone_with_a_stop(ctx):
    ctx.rpc.fail["instance_start"] = "Hypervisor error"
    with pytest.raises(errors.OpExecError, match="Hypervisor error"):
        instancehelpers.Run(ctx, _FileOp())
    names = ctx.rpc.names()
    assert names.index("instance_shutdown") < names.index("blockdev_remove")
    assert not ctx.cfg.GetInstanceList()
    assert NAME not in ctx.glm.names(locking.LEVEL_INSTANCE)
    assert ctx.instance_cleanup.woken == []


def test_undo_creation_on_an_offline_node_drops_the_instance(ctx):
    instancehelpers.Run(ctx, _FileOp(start=False))
    inst = ctx.cfg.GetInstanceInfoByName(NAME)
    node = ctx.cfg.GetNodeInfoByName(MASTER)
    node.offline = True
    ctx.cfg.Update(node, None)
    warnings = []
    calls = len(ctx.rpc.calls)
    assert ic.UndoCreation(ctx.cfg, ctx.rpc, inst.uuid, warnings.append)
    assert ctx.rpc.calls[calls:] == []
    assert ctx.cfg.GetInstanceInfoByName(NAME) is None
    assert "offline" in warnings[0]


def _Forthcoming(ctx, name=NAME):
    """Put a forthcoming file instance into the configuration, as a
    creation does before it touches the node."""
    instancehelpers.Run(ctx, _FileOp(instance_name=name, start=False))
    inst = ctx.cfg.GetInstanceInfoByName(name)
    inst.forthcoming = True
    ctx.cfg.Update(inst, None)
    return inst


def test_interrupted_creation_is_judged_from_the_configuration(ctx):
    op = _FileOp()
    outcome = ic.LUInstanceCreate.Interrupted(ctx.cfg, op)
    assert outcome is not None and not outcome.succeeded
    assert "was not created" in outcome.message
    inst = _Forthcoming(ctx)
    outcome = ic.LUInstanceCreate.Interrupted(ctx.cfg, op)
    assert not outcome.succeeded
    assert "did not finish" in outcome.message and "removes the instance" in outcome.message
    inst = ctx.cfg.GetInstanceInfo(inst.uuid)
    inst.forthcoming = False
    ctx.cfg.Update(inst, None)
    outcome = ic.LUInstanceCreate.Interrupted(ctx.cfg, op)
    assert outcome.succeeded and outcome.result == [MASTER]
    # The name the opcode holds is normalised as the LU does it
    upper = _FileOp(instance_name=" INST1.example.com ")
    assert ic.LUInstanceCreate.Interrupted(ctx.cfg, upper).succeeded
    # With the name check, an abbreviation of the resolved name
    short = _FileOp(instance_name="inst1", name_check=True)
    assert ic.LUInstanceCreate.Interrupted(ctx.cfg, short).succeeded
    assert not ic.LUInstanceCreate.Interrupted(
        ctx.cfg, _FileOp(instance_name="inst1", name_check=False)).succeeded


def test_interrupted_removal(ctx):
    instancehelpers.Run(ctx, _FileOp(start=False))
    op = opcodes.OpInstanceRemove(instance_name="inst1")
    outcome = instance_remove.LUInstanceRemove.Interrupted(ctx.cfg, op)
    assert not outcome.succeeded and "remove it again" in outcome.message
    instancehelpers.Run(ctx, opcodes.OpInstanceRemove(instance_name=NAME))
    assert instance_remove.LUInstanceRemove.Interrupted(ctx.cfg, op).succeeded
