"""gnt-group evacuate: LUGroupEvacuate (lib/cmdlib/group_evacuate.py)
through mcpu with a fake allocator, on two node groups: "default" (node1,
node2, node3) and "rack2" (node4, node5)."""

from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from relochelpers import (  # noqa: E402
    N1, N4, N5, Answer, Callbacks, MirrorContext, AddGroup, AddSharedInstance, Run,
    SetDefaultIallocator,
)
from test_iallocator_relocation import _MigrateOp, _Refused, _ReplaceOp  # noqa: E402
from test_instance_replace import AddDrbdInstance  # noqa: E402

from ganeti import constants, errors, locking, mcpu, opcodes  # noqa: E402

pytestmark = pytest.mark.timeout(60)

A, B, C = "a.example.com", "b.example.com", "c.example.com"


@pytest.fixture
def ctx(tmp_path):
    """a: drbd node1/node2 and b: sharedfile on node3 (group default);
    c: drbd node4/node5 (group rack2)."""
    context = MirrorContext(tmp_path, groups=2)
    AddDrbdInstance(context, A)
    AddSharedInstance(context, B, context.n3)
    n4, n5 = (context.cfg.GetNodeInfoByName(n).uuid for n in (N4, N5))
    AddDrbdInstance(context, C, pnode=n4, snode=n5)
    return context


def _Evacuate(**kwargs):
    kwargs.setdefault("group_name", "default")
    return opcodes.OpGroupEvacuate(**kwargs)


_MOVES = Answer([[[A, "rack2", [N4, N5]], [B, "rack2", [N5]]], [],
                 [[_ReplaceOp(A, N4), _MigrateOp(A, N4), _ReplaceOp(A, N5)],
                  [_MigrateOp(B, N5)]]])


def _Jobs(cbs):
    return [[(op.OP_ID, op.instance_name) for op in job] for job in cbs.jobs]


def test_evacuation_submits_one_job_per_instance(ctx):
    ctx.rpc.answer = _MOVES
    result, cbs = Run(ctx, _Evacuate(iallocator="hail", early_release=True))
    (name, data, _) = ctx.rpc.runs[0]
    assert name == "hail"
    assert data["request"] == {"type": "change-group", "instances": [A, B],
                               "target_groups": [ctx.group2]}
    assert result == {"jobs": [(True, 100), (True, 101)]}
    assert _Jobs(cbs) == [
        [("OP_INSTANCE_REPLACE_DISKS", A), ("OP_INSTANCE_MIGRATE", A),
         ("OP_INSTANCE_REPLACE_DISKS", A)],
        [("OP_INSTANCE_MIGRATE", B)]]
    assert cbs.jobs[0][0].early_release and cbs.jobs[0][2].early_release
    assert cbs.jobs[1][0].target_node == N5
    assert all(getattr(op, constants.OP_DEPENDS) is None
               for job in cbs.jobs for op in job)
    text = "\n".join(cbs.feedback)
    assert "Instances to be moved: a.example.com (to rack2), b.example.com (to rack2)" \
        in text
    assert "Evacuating 2 instance(s) from group default" in text


def test_force_failover_and_sequential(ctx):
    ctx.rpc.answer = _MOVES
    _, cbs = Run(ctx, _Evacuate(iallocator="hail", force_failover=True, sequential=True))
    assert _Jobs(cbs) == [
        [("OP_INSTANCE_REPLACE_DISKS", A), ("OP_INSTANCE_FAILOVER", A),
         ("OP_INSTANCE_REPLACE_DISKS", A)],
        [("OP_INSTANCE_FAILOVER", B)]]
    failover = cbs.jobs[1][0]
    assert (failover.target_node, failover.ignore_ipolicy, failover.cleanup) == \
        (N5, False, False)
    failover.Validate(False)
    # the second job waits for the first, whatever its outcome
    assert getattr(cbs.jobs[0][0], constants.OP_DEPENDS) is None
    assert getattr(cbs.jobs[1][0], constants.OP_DEPENDS) == \
        [[-1, sorted(constants.JOBS_FINALIZED)]]
    cbs.jobs[1][0].Validate(False)


def test_targets_hooks_and_locks(ctx):
    rack3 = AddGroup(ctx, "rack3", (("node6.example.com", "192.0.2.6"),))
    owned = {}

    def _Answer(data):
        for level in (locking.LEVEL_INSTANCE, locking.LEVEL_NODEGROUP, locking.LEVEL_NODE):
            owned[level] = set(ctx.glm.list_owned(level))
        return _MOVES

    ctx.rpc.answer = _Answer
    Run(ctx, _Evacuate(iallocator="hail", target_groups=["rack2"]))
    assert ctx.rpc.runs[0][1]["request"]["target_groups"] == [ctx.group2]
    assert owned[locking.LEVEL_INSTANCE] == {A, B}
    assert owned[locking.LEVEL_NODEGROUP] == {ctx.group1, ctx.group2}
    assert owned[locking.LEVEL_NODE] == set(ctx.cfg.GetNodeList()) - {
        ctx.cfg.GetNodeInfoByName("node6.example.com").uuid}
    env = [e for phase, e in ctx.rpc.hook_envs if phase == constants.HOOKS_PHASE_PRE][0]
    assert (env["GANETI_GROUP_NAME"], env["GANETI_TARGET_GROUPS"]) == \
        ("default", ctx.group2)
    # without --to: every other group
    Run(ctx, _Evacuate(iallocator="hail"))
    assert sorted(ctx.rpc.runs[1][1]["request"]["target_groups"]) == \
        sorted([ctx.group2, rack3])
    assert len(owned[locking.LEVEL_NODEGROUP]) == 3


def test_hook_nodes_are_the_master_and_the_group(ctx, monkeypatch):
    from ganeti.cmdlib import group_evacuate
    ctx.rpc.answer = Answer([[], [], []])
    seen = []
    nodes_fn = group_evacuate.LUGroupEvacuate.BuildHooksNodes

    def _Nodes(lu):
        seen.append(nodes_fn(lu))
        return seen[-1]

    monkeypatch.setattr(group_evacuate.LUGroupEvacuate, "BuildHooksNodes", _Nodes)
    Run(ctx, _Evacuate(group_name="rack2", iallocator="hail"))
    pre, _ = seen[0]
    assert set(pre) == {ctx.n1} | {ctx.cfg.GetNodeInfoByName(n).uuid for n in (N4, N5)}


def test_default_allocator_and_empty_group(ctx):
    SetDefaultIallocator(ctx)
    rack3 = AddGroup(ctx, "rack3", (("node6.example.com", "192.0.2.6"),))
    assert rack3
    result, cbs = Run(ctx, _Evacuate(group_name="rack3"))
    assert result == {"jobs": []} and cbs.jobs == []
    assert not getattr(ctx.rpc, "runs", [])
    assert "No instances to evacuate in group rack3" in cbs.feedback
    ctx.rpc.answer = _MOVES
    Run(ctx, _Evacuate())
    assert [run[0] for run in ctx.rpc.runs] == ["hail"]


@pytest.mark.parametrize("kwargs,code,match", [
    ({}, errors.ECODE_INVAL, "no default iallocator"),
    ({"iallocator": "hail", "target_groups": ["rack2", "default"]}, errors.ECODE_INVAL,
     "Group 'default' \\(.*\\) can't be both source and target"),
    ({"iallocator": "hail", "target_groups": ["nosuch"]}, errors.ECODE_NOENT, "nosuch"),
    ({"iallocator": "hail", "group_name": "nosuch"}, errors.ECODE_NOENT, "nosuch"),
])
def test_refusals(ctx, kwargs, code, match):
    _Refused(ctx, _Evacuate(**kwargs), code, match)
    assert not getattr(ctx.rpc, "runs", [])


def test_the_only_group_is_refused(tmp_path):
    ctx = MirrorContext(tmp_path)
    AddDrbdInstance(ctx, A)
    _Refused(ctx, _Evacuate(iallocator="hail"), errors.ECODE_INVAL,
             "There are no possible target groups: default is the only node group")


def test_failed_instances_refuse_the_evacuation(ctx):
    ctx.rpc.answer = Answer([[[A, "rack2", [N4, N5]]], [[B, "no node in rack2 fits"]],
                             [[_ReplaceOp(A, N4)]]])
    _Refused(ctx, _Evacuate(iallocator="hail"), errors.ECODE_NORES,
             "unable to evacuate instances b.example.com \\(no node in rack2 fits\\)")
    ctx.rpc.answer = Answer([], success=False, info="nothing fits")
    _Refused(ctx, _Evacuate(iallocator="hail"), errors.ECODE_NORES,
             "Can't compute the evacuation of group default using iallocator 'hail':"
             " nothing fits")
    # an opcode for an instance of another group is not accepted
    ctx.rpc.answer = Answer([[], [], [[_ReplaceOp(C, N1)]]])
    _Refused(ctx, _Evacuate(iallocator="hail"), errors.ECODE_ENVIRON,
             "c.example.com, which is not one of the instances to move")


def test_instances_changed_since_locking(ctx, monkeypatch):
    from ganeti.cmdlib import group_evacuate
    declare = group_evacuate.LUGroupEvacuate.DeclareLocks

    def _Declare(lu, level):
        if level == locking.LEVEL_NODEGROUP:
            glm = ctx.glm
            AddSharedInstance(ctx, "late.example.com", ctx.n2)
            ctx.glm = glm
        declare(lu, level)

    monkeypatch.setattr(group_evacuate.LUGroupEvacuate, "DeclareLocks", _Declare)
    with pytest.raises(errors.OpPrereqError, match="late.example.com.*run the"
                       " evacuation again") as info:
        mcpu.Processor(ctx, ec_id=1).ExecOpCode(_Evacuate(iallocator="hail"), Callbacks())
    assert info.value.args[1] == errors.ECODE_STATE
    assert not getattr(ctx.rpc, "runs", [])
