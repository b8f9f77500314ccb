"""gnt-instance change-group: LUInstanceChangeGroup
(lib/cmdlib/instance_change_group.py) through mcpu with a fake allocator,
on two node groups: "default" (node1, node2, node3) and "rack2" (node4,
node5); the instance is a DRBD instance on node1/node2."""

from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from relochelpers import (  # noqa: E402
    N1, N2, N4, N5, Answer, MirrorContext, AddGroup, Run, SetDefaultIallocator,
)
from test_iallocator_relocation import _MigrateOp, _Refused, _ReplaceOp  # noqa: E402
from test_instance_replace import NAME, AddDrbdInstance  # noqa: E402

from ganeti import constants, errors, locking, opcodes  # noqa: E402

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def ctx(tmp_path):
    context = MirrorContext(tmp_path, groups=2)
    AddDrbdInstance(context)
    return context


def _Change(**kwargs):
    return opcodes.OpInstanceChangeGroup(instance_name=NAME, **kwargs)


#: What an allocator answers for a move to rack2 (as hail would)
_MOVE = Answer([[[NAME, "rack2", [N4, N5]]], [],
                [[_ReplaceOp(NAME, N4), _MigrateOp(NAME, N4), _ReplaceOp(NAME, N5)]]])


def test_change_group_submits_the_allocators_job(ctx):
    ctx.rpc.answer = _MOVE
    result, cbs = Run(ctx, _Change(iallocator="hail", early_release=True))
    (name, data, params) = ctx.rpc.runs[0]
    assert name == "hail"
    assert data["request"] == {"type": "change-group", "instances": [NAME],
                               "target_groups": [ctx.group2]}
    assert result == {"jobs": [(True, 100)]}
    (job,) = cbs.jobs
    assert [op.OP_ID for op in job] == ["OP_INSTANCE_REPLACE_DISKS", "OP_INSTANCE_MIGRATE",
                                        "OP_INSTANCE_REPLACE_DISKS"]
    assert [(op.remote_node, op.early_release) for op in (job[0], job[2])] == \
        [(N4, True), (N5, True)]
    assert (job[1].target_node, job[1].allow_failover) == (N4, True)
    assert "Instances to be moved: inst1.example.com (to rack2)" in "\n".join(cbs.feedback)
    # the LU changed nothing itself
    inst = ctx.cfg.GetInstanceInfoByName(NAME)
    assert ctx.cfg.GetInstanceNodes(inst.uuid) == (ctx.n1, ctx.n2)


def test_explicit_targets_and_hooks(ctx):
    rack3 = AddGroup(ctx, "rack3", (("node6.example.com", "192.0.2.6"),))
    ctx.rpc.answer = _MOVE
    Run(ctx, _Change(iallocator="hail", target_groups=["rack3", "rack2", "rack3"]))
    assert ctx.rpc.runs[0][1]["request"]["target_groups"] == [rack3, ctx.group2]
    env = [e for phase, e in ctx.rpc.hook_envs if phase == constants.HOOKS_PHASE_PRE][0]
    assert env["GANETI_TARGET_GROUPS"] == f"{rack3} {ctx.group2}"
    assert env["GANETI_INSTANCE_NAME"] == NAME


def test_locks_only_the_groups_involved(ctx):
    AddGroup(ctx, "rack3", (("node6.example.com", "192.0.2.6"),))
    owned = {}

    def _Answer(data):
        for level in (locking.LEVEL_INSTANCE, locking.LEVEL_NODEGROUP, locking.LEVEL_NODE):
            owned[level] = set(ctx.glm.list_owned(level))
        return _MOVE

    ctx.rpc.answer = _Answer
    Run(ctx, _Change(iallocator="hail", target_groups=["rack2"]))
    nodes = {ctx.cfg.GetNodeInfoByName(name).uuid
             for name in (N1, N2, "node3.example.com", N4, N5)}
    assert owned == {locking.LEVEL_INSTANCE: {NAME},
                     locking.LEVEL_NODEGROUP: {ctx.group1, ctx.group2},
                     locking.LEVEL_NODE: nodes}
    # without targets: every group is a candidate, so every one is locked
    Run(ctx, _Change(iallocator="hail"))
    assert len(owned[locking.LEVEL_NODEGROUP]) == 3
    assert owned[locking.LEVEL_NODE] == set(ctx.cfg.GetNodeList())
    assert len(ctx.rpc.runs[1][1]["request"]["target_groups"]) == 2


def test_default_allocator(ctx):
    SetDefaultIallocator(ctx)
    ctx.rpc.answer = _MOVE
    Run(ctx, _Change())
    assert [run[0] for run in ctx.rpc.runs] == ["hail"]


@pytest.mark.parametrize("kwargs,code,match", [
    ({}, errors.ECODE_INVAL, "no default iallocator"),
    ({"iallocator": "hail", "target_groups": ["default"]}, errors.ECODE_INVAL,
     "Can't use group\\(s\\) default as targets, they are used by the instance"
     " 'inst1.example.com'"),
    ({"iallocator": "hail", "target_groups": ["rack2", "default"]}, errors.ECODE_INVAL,
     "Can't use group\\(s\\) default as targets"),
    ({"iallocator": "hail", "target_groups": ["nosuch"]}, errors.ECODE_NOENT, "nosuch"),
])
def test_refusals(ctx, kwargs, code, match):
    _Refused(ctx, _Change(**kwargs), code, match)
    assert not getattr(ctx.rpc, "runs", [])


def test_the_only_group_is_refused(tmp_path):
    ctx = MirrorContext(tmp_path)
    AddDrbdInstance(ctx)
    _Refused(ctx, _Change(iallocator="hail"), errors.ECODE_INVAL,
             "There are no possible target groups for instance inst1.example.com")
    assert not getattr(ctx.rpc, "runs", [])


def test_allocator_failures(ctx):
    ctx.rpc.answer = Answer([], success=False, info="group rack2 is full")
    _Refused(ctx, _Change(iallocator="hail"), errors.ECODE_NORES,
             "Can't compute a new node group for instance inst1.example.com using"
             " iallocator 'hail': group rack2 is full")
    ctx.rpc.answer = Answer([[], [[NAME, "no pair of nodes fits"]], []])
    _Refused(ctx, _Change(iallocator="hail"), errors.ECODE_NORES,
             "unable to evacuate instances inst1.example.com \\(no pair of nodes fits\\)")
    ctx.rpc.answer = Answer([[[NAME, "rack2", ["ghost.example.com"]]], [], []])
    _Refused(ctx, _Change(iallocator="hail"), errors.ECODE_ENVIRON, "ghost.example.com")
