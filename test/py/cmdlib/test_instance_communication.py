"""The instance communication NIC (lib/cmdlib/instance_communication.py):
gnt-instance add -c yes and gnt-instance modify -c yes|no on a cluster
with (and without) an instance communication network."""

from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import instancehelpers  # noqa: E402
from test_instance_nics_network import AddNetwork, Connect, Reserved  # noqa: E402

from ganeti import constants, errors, opcodes  # noqa: E402
from ganeti.cmdlib import instance_communication as comm  # noqa: E402

NAME = "inst1.example.com"
NIC_NAME = "ganeti:communication:inst1.example.com"


@pytest.fixture
def ctx(tmp_path):
    context = instancehelpers.MakeContext(tmp_path)
    context.net = AddNetwork(context, "comm-net", "169.254.0.0/29")
    Connect(context.cfg, context.net, mode=constants.NIC_MODE_ROUTED,
            link="communication_rt")
    return context


def _SetNetwork(ctx, name):
    cluster = ctx.cfg.GetClusterInfo()
    cluster.instance_communication_network = name
    ctx.cfg.Update(cluster)


def _Inst(ctx):
    return ctx.cfg.GetInstanceInfoByName(NAME)


def _Modify(ctx, enable):
    return instancehelpers.Run(ctx, opcodes.OpInstanceSetParams(
        instance_name=NAME, instance_communication=enable))


def test_nic_name_uses_ganeti_prefix():
    assert constants.INSTANCE_COMMUNICATION_NIC_PREFIX == "ganeti:communication:"
    assert comm.NicName(NAME) == NIC_NAME


def test_add_with_communication_nic(ctx):
    _SetNetwork(ctx, "comm-net")
    instancehelpers.Run(ctx, instancehelpers.CreateOp(NAME, instance_communication=True))
    inst = _Inst(ctx)
    assert len(inst.nics) == 2
    nic = inst.nics[1]
    assert nic.name == NIC_NAME and nic.network == ctx.net
    # mode and link from the network's connection, address from its pool
    assert nic.nicparams[constants.NIC_MODE] == constants.NIC_MODE_ROUTED
    assert nic.nicparams[constants.NIC_LINK] == "communication_rt"
    assert nic.ip in Reserved(ctx.cfg, ctx.net)
    assert comm.FindNic(inst) is nic


def test_add_refused_without_network(ctx):
    instancehelpers.Refused(ctx, instancehelpers.CreateOp(NAME, instance_communication=True),
                            errors.ECODE_STATE, "no instance communication network")
    _SetNetwork(ctx, "gone-net")
    instancehelpers.Refused(ctx, instancehelpers.CreateOp(NAME, instance_communication=True),
                            errors.ECODE_NOENT, "network 'gone-net' does not exist")


def test_modify_adds_and_removes_the_nic(ctx):
    _SetNetwork(ctx, "comm-net")
    instancehelpers.Run(ctx, instancehelpers.CreateOp(NAME))
    assert len(_Inst(ctx).nics) == 1
    _Modify(ctx, True)
    inst = _Inst(ctx)
    assert [nic.name for nic in inst.nics] == [None, NIC_NAME]
    ip = inst.nics[1].ip
    assert ip in Reserved(ctx.cfg, ctx.net)
    # again: nothing to do
    serial = inst.serial_no
    _Modify(ctx, True)
    assert len(_Inst(ctx).nics) == 1 + 1 and _Inst(ctx).serial_no >= serial
    _Modify(ctx, False)
    assert [nic.name for nic in _Inst(ctx).nics] == [None]
    assert ip not in Reserved(ctx.cfg, ctx.net)
    # removing what is not there is no error
    _Modify(ctx, False)
    assert len(_Inst(ctx).nics) == 1


def test_modify_refused_without_network(ctx):
    instancehelpers.Run(ctx, instancehelpers.CreateOp(NAME))
    before = _Inst(ctx).ToDict()
    with pytest.raises(errors.OpPrereqError, match="no instance communication") as info:
        _Modify(ctx, True)
    assert info.value.args[1] == errors.ECODE_STATE
    assert _Inst(ctx).ToDict() == before
