"""The relocation side of the iallocator framework, through mcpu with a
fake allocator (relochelpers): replace-disks -I (a relocate request for a
new secondary), migrate/failover -I and the default allocator for
externally mirrored instances, gnt-node evacuate -I (the allocator's
jobs), and the checks of lib/cmdlib/iallocator_relocation.py.

Every test answers the allocator itself; none depends on hail.
"""

from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from relochelpers import (  # noqa: E402
    N1, N2, N3, N4, Answer, Callbacks, MigrationContext, MirrorContext,
    AddSharedInstance, Run, SetDefaultIallocator,
)
from test_instance_replace import NAME, AddDrbdInstance  # noqa: E402

from ganeti import constants, errors, locking, mcpu, opcodes  # noqa: E402

pytestmark = pytest.mark.timeout(60)


def _Refused(ctx, op, code, match):
    """The opcode fails with OpPrereqError ``code``; the configuration is
    unchanged and no job was submitted."""
    serial = ctx.cfg.GetConfigSerialNo()
    cbs = Callbacks()
    with pytest.raises(errors.OpPrereqError, match=match) as info:
        mcpu.Processor(ctx, ec_id=1).ExecOpCode(op, cbs)
    assert info.value.args[1] == code
    assert ctx.cfg.GetConfigSerialNo() == serial
    assert cbs.jobs == []
    return info.value


def _RecordLocks(ctx, answer):
    """An allocator answering ``answer`` that records the node locks held
    while it runs (in ``owned["alloc"]``) and at the pre hooks."""
    owned = {}

    def _Answer(data):
        owned["alloc"] = set(ctx.glm.list_owned(locking.LEVEL_NODE))
        owned["alloc_res"] = set(ctx.glm.list_owned(locking.LEVEL_NODE_RES))
        return answer

    hooks = ctx.rpc.call_hooks_runner

    def _Hooks(nodes, hpath, phase, env):
        owned.setdefault(phase, set(ctx.glm.list_owned(locking.LEVEL_NODE)))
        return hooks(nodes, hpath, phase, env)

    ctx.rpc.answer = _Answer
    ctx.rpc.call_hooks_runner = _Hooks
    return owned


# --- replace-disks -I --------------------------------------------------------------------------

@pytest.fixture
def mctx(tmp_path):
    return MirrorContext(tmp_path, groups=2)


def _Replace(**kwargs):
    return opcodes.OpInstanceReplaceDisks(instance_name=NAME,
                                          mode=constants.REPLACE_DISK_CHG, **kwargs)


def test_replace_disks_uses_the_chosen_secondary(mctx):
    inst = AddDrbdInstance(mctx)
    n2_lvs = set(mctx.rpc.Lvs(mctx.n2))
    owned = _RecordLocks(mctx, Answer([N3]))
    _, cbs = Run(mctx, _Replace(iallocator="hail"))
    (name, data, params) = mctx.rpc.runs[0]
    assert name == "hail" and params == {}
    assert data["request"] == {"type": "relocate", "name": NAME, "required_nodes": 1,
                               "disk_space_total": 2 * (1024 + 128),
                               "relocate_from": [N2]}
    assert mctx.cfg.GetInstanceNodes(inst.uuid) == (mctx.n1, mctx.n3)
    assert mctx.rpc.Lvs(mctx.n3) == n2_lvs and mctx.rpc.Lvs(mctx.n2) == set()
    assert "Selected new secondary for instance 'inst1.example.com':" \
        " node3.example.com" in "\n".join(cbs.feedback)
    # every node (of both groups) while the allocator chose, then only
    # the instance's nodes and the new one
    assert owned["alloc"] == set(mctx.cfg.GetNodeList())
    assert owned["alloc_res"] == set(mctx.cfg.GetNodeList())
    assert owned[constants.HOOKS_PHASE_PRE] == {mctx.n1, mctx.n2, mctx.n3}
    env = [e for phase, e in mctx.rpc.hook_envs if phase == constants.HOOKS_PHASE_PRE]
    assert env[0]["GANETI_NEW_SECONDARY"] == N3


def test_replace_disks_with_the_default_allocator_shortcut(mctx):
    AddDrbdInstance(mctx)
    SetDefaultIallocator(mctx, "my-alloc")
    mctx.rpc.answer = Answer([N3])
    Run(mctx, _Replace(iallocator="."))
    assert [run[0] for run in mctx.rpc.runs] == ["my-alloc"]


def test_replace_disks_allocator_without_solution_changes_nothing(mctx):
    inst = AddDrbdInstance(mctx)
    mctx.rpc.answer = Answer([], success=False, info="No valid allocation solutions")
    lvs = {node: set(mctx.rpc.Lvs(node)) for node in (mctx.n1, mctx.n2, mctx.n3)}
    _Refused(mctx, _Replace(iallocator="hail"), errors.ECODE_NORES,
             "Can't compute a new secondary node for instance inst1.example.com using"
             " iallocator 'hail': No valid allocation solutions")
    assert mctx.cfg.GetInstanceNodes(inst.uuid) == (mctx.n1, mctx.n2)
    assert {node: mctx.rpc.Lvs(node) for node in lvs} == lvs
    assert not [c for c in mctx.rpc.calls if c[0] == "blockdev_create"]


@pytest.mark.parametrize("result,match", [
    ([N1], "must leave or already uses"),
    ([N2], "must leave or already uses"),
    ([N4], "not in the instance's node group"),
    ([N3, N1], "returned 2 node"),
])
def test_replace_disks_bad_choices_are_refused(mctx, result, match):
    AddDrbdInstance(mctx)
    mctx.rpc.answer = Answer(result)
    _Refused(mctx, _Replace(iallocator="hail"), errors.ECODE_ENVIRON, match)


def test_replace_disks_allocator_failure_is_reported(mctx):
    AddDrbdInstance(mctx)
    mctx.rpc.fail["iallocator_runner"] = "iallocator 'hail' not found"
    _Refused(mctx, _Replace(iallocator="hail"), errors.ECODE_ENVIRON,
             "Failure while running the iallocator script 'hail'")


def test_replace_disks_other_modes_refuse_the_allocator(mctx):
    AddDrbdInstance(mctx)
    _Refused(mctx, opcodes.OpInstanceReplaceDisks(
        instance_name=NAME, mode=constants.REPLACE_DISK_SEC, iallocator="hail"),
        errors.ECODE_INVAL, "only be used when changing the secondary")
    assert not getattr(mctx.rpc, "runs", [])


# --- migrate / failover -I ----------------------------------------------------------------------

@pytest.fixture
def gctx(tmp_path):
    return MigrationContext(tmp_path)


def _Shared(ctx, template=constants.DT_SHARED_FILE, up=True):
    inst = AddSharedInstance(ctx, NAME, ctx.n1, template=template, up=up)
    if up:
        ctx.rpc.where[NAME] = ctx.n1
    return inst


@pytest.mark.parametrize("template", [constants.DT_SHARED_FILE, constants.DT_DISKLESS])
def test_migrate_to_the_chosen_node(gctx, template):
    inst = _Shared(gctx, template)
    owned = _RecordLocks(gctx, Answer([N3]))
    _, cbs = Run(gctx, opcodes.OpInstanceMigrate(instance_name=NAME, iallocator="hail"))
    request = gctx.rpc.runs[0][1]["request"]
    assert (request["type"], request["relocate_from"]) == ("relocate", [N1])
    assert gctx.cfg.GetInstanceInfo(inst.uuid).primary_node == gctx.n3
    assert gctx.rpc.where[NAME] == gctx.n3
    assert "Selected nodes for instance inst1.example.com via iallocator hail:" \
        " node3.example.com" in "\n".join(cbs.feedback)
    assert owned["alloc"] == {gctx.n1, gctx.n2, gctx.n3}
    assert owned[constants.HOOKS_PHASE_PRE] == {gctx.n1, gctx.n3}


def test_failover_uses_the_cluster_default_without_a_target(gctx):
    inst = _Shared(gctx, up=False)
    SetDefaultIallocator(gctx)
    gctx.rpc.answer = Answer([N2])
    Run(gctx, opcodes.OpInstanceFailover(instance_name=NAME))
    assert [run[0] for run in gctx.rpc.runs] == ["hail"]
    assert gctx.cfg.GetInstanceInfo(inst.uuid).primary_node == gctx.n2


def test_given_target_does_not_run_the_default(gctx):
    inst = _Shared(gctx)
    SetDefaultIallocator(gctx)
    Run(gctx, opcodes.OpInstanceMigrate(instance_name=NAME, target_node=N2))
    assert not getattr(gctx.rpc, "runs", [])
    assert gctx.cfg.GetInstanceInfo(inst.uuid).primary_node == gctx.n2


def test_migration_allocator_without_solution(gctx):
    inst = _Shared(gctx)
    gctx.rpc.answer = Answer([], success=False, info="no node has the memory")
    _Refused(gctx, opcodes.OpInstanceMigrate(instance_name=NAME, iallocator="hail"),
             errors.ECODE_NORES, "Can't compute a migration target node for instance"
             " inst1.example.com using iallocator 'hail': no node has the memory")
    assert gctx.rpc.where[NAME] == gctx.n1
    assert gctx.cfg.GetInstanceInfo(inst.uuid).primary_node == gctx.n1
    assert not [c for c in gctx.rpc.calls if c[0] == "migration_info"]


def test_migration_without_target_or_default_is_refused(gctx):
    _Shared(gctx)
    _Refused(gctx, opcodes.OpInstanceMigrate(instance_name=NAME), errors.ECODE_INVAL,
             "target node must be given \\(-n\\) or chosen by an iallocator")


def test_drbd_moves_to_its_secondary_without_the_default(mctx):
    inst = AddDrbdInstance(mctx, active=False)
    SetDefaultIallocator(mctx)
    Run(mctx, opcodes.OpInstanceFailover(instance_name=NAME))
    assert not getattr(mctx.rpc, "runs", [])
    assert mctx.cfg.GetInstanceInfo(inst.uuid).primary_node == mctx.n2


@pytest.mark.parametrize("opclass,verb", [(opcodes.OpInstanceMigrate, "migrated"),
                                          (opcodes.OpInstanceFailover, "failed over")])
def test_drbd_refuses_an_allocator(mctx, opclass, verb):
    AddDrbdInstance(mctx)
    _Refused(mctx, opclass(instance_name=NAME, iallocator="hail"), errors.ECODE_INVAL,
             f"disk template drbd cannot be {verb} to arbitrary nodes")


# --- gnt-node evacuate -I ----------------------------------------------------------------------

A, B = "a.example.com", "b.example.com"


def _ReplaceOp(name, node):
    return {"OP_ID": "OP_INSTANCE_REPLACE_DISKS", "instance_name": name,
            "mode": constants.REPLACE_DISK_CHG, "disks": [], "remote_node": node,
            "early_release": False, "ignore_ipolicy": False}


def _MigrateOp(name, node=None):
    op = {"OP_ID": "OP_INSTANCE_MIGRATE", "instance_name": name, "cleanup": False,
          "allow_failover": True, "ignore_ipolicy": False}
    if node:
        op["target_node"] = node
    return op


def _Evacuate(**kwargs):
    kwargs.setdefault("node_name", "node2")
    kwargs.setdefault("mode", constants.NODE_EVAC_ALL)
    return opcodes.OpNodeEvacuate(**kwargs)


def _TwoInstances(ctx):
    AddDrbdInstance(ctx, A)                                   # node2 is its secondary
    AddDrbdInstance(ctx, B, pnode=ctx.n2, snode=ctx.n3)       # node2 is its primary


def test_node_evacuation_submits_the_allocators_jobs(mctx):
    _TwoInstances(mctx)
    mctx.rpc.answer = Answer([
        [[A, "default", [N1, N3]], [B, "default", [N3, N1]]], [],
        [[_ReplaceOp(A, N3)], [_MigrateOp(B), _ReplaceOp(B, N1)]]])
    result, cbs = Run(mctx, _Evacuate(iallocator="hail", early_release=True,
                                      ignore_soft_errors=True))
    (name, data, params) = mctx.rpc.runs[0]
    assert data["request"] == {"type": "node-evacuate", "instances": [A, B],
                               "evac_mode": constants.NODE_EVAC_ALL}
    assert params == {"ignore-soft-errors": None}
    assert result == {"jobs": [(True, 100), (True, 101)]}
    assert [[(op.OP_ID, op.instance_name) for op in job] for job in cbs.jobs] == [
        [("OP_INSTANCE_REPLACE_DISKS", A)],
        [("OP_INSTANCE_MIGRATE", B), ("OP_INSTANCE_REPLACE_DISKS", B)]]
    replace = cbs.jobs[0][0]
    assert (replace.mode, replace.remote_node, replace.early_release) == \
        (constants.REPLACE_DISK_CHG, N3, True)
    migrate = cbs.jobs[1][0]
    assert migrate.allow_failover and migrate.target_node is None
    assert "Instances to be moved: a.example.com (to node1.example.com," \
        " node3.example.com), b.example.com (to node3.example.com, node1.example.com)" \
        in "\n".join(cbs.feedback)
    # nothing was done by the LU itself
    assert not [c for c in mctx.rpc.calls if c[0].startswith(("blockdev", "drbd"))]


@pytest.mark.parametrize("mode,names", [(constants.NODE_EVAC_PRI, [B]),
                                        (constants.NODE_EVAC_SEC, [A])])
def test_node_evacuation_mode_selects_the_instances(mctx, mode, names):
    _TwoInstances(mctx)
    mctx.rpc.answer = Answer([[], [], []])
    result, _ = Run(mctx, _Evacuate(mode=mode, iallocator="hail"))
    request = mctx.rpc.runs[0][1]["request"]
    assert (request["instances"], request["evac_mode"]) == (names, mode)
    assert mctx.rpc.runs[0][2] == {}
    assert result == {"jobs": []}


def test_node_evacuation_reports_failed_instances(mctx):
    _TwoInstances(mctx)
    mctx.rpc.answer = Answer([[[A, "default", [N1, N3]]],
                              [[B, "No valid allocation: 2 nodes out of memory"]],
                              [[_ReplaceOp(A, N3)]]])
    _Refused(mctx, _Evacuate(iallocator="hail"), errors.ECODE_NORES,
             "Iallocator 'hail' is unable to evacuate instances b.example.com \\(No valid"
             " allocation: 2 nodes out of memory\\)")


def test_node_evacuation_without_solution(mctx):
    _TwoInstances(mctx)
    mctx.rpc.answer = Answer([], success=False, info="cluster is full")
    _Refused(mctx, _Evacuate(iallocator="hail"), errors.ECODE_NORES,
             "Can't compute the evacuation of node node2.example.com using iallocator"
             " 'hail': cluster is full")


@pytest.mark.parametrize("job,match", [
    ([_ReplaceOp("x.example.com", N3)], "x.example.com, which is not one of the"
     " instances to move"),
    ([{"OP_ID": "OP_CLUSTER_DESTROY"}], "OP_CLUSTER_DESTROY for no instance"),
    ([{"OP_ID": "OP_INSTANCE_MIGRATE", "instance_name": A, "cleanup": "yes"}],
     "invalid opcode.*cleanup"),
    ([{"OP_ID": "OP_INSTANCE_REPLACE_DISKS", "instance_name": A}],
     "invalid opcode.*mode"),
    ([{"OP_ID": "OP_NO_SUCH_THING", "instance_name": A}], "invalid opcode"),
])
def test_node_evacuation_checks_the_opcodes(mctx, job, match):
    _TwoInstances(mctx)
    mctx.rpc.answer = Answer([[], [], [job]])
    _Refused(mctx, _Evacuate(iallocator="hail"), errors.ECODE_ENVIRON, match)


def test_node_evacuation_uses_the_default_without_node_or_allocator(mctx):
    _TwoInstances(mctx)
    SetDefaultIallocator(mctx)
    mctx.rpc.answer = Answer([[], [], [[_ReplaceOp(A, N3)]]])
    _, cbs = Run(mctx, _Evacuate(mode=constants.NODE_EVAC_SEC))
    assert [run[0] for run in mctx.rpc.runs] == ["hail"]
    assert cbs.jobs[0][0].remote_node == N3
    # a new node given: the default is not asked
    Run(mctx, _Evacuate(mode=constants.NODE_EVAC_SEC, remote_node="node3"))
    assert len(mctx.rpc.runs) == 1


def test_node_evacuation_locks_instances_and_all_nodes(mctx):
    _TwoInstances(mctx)
    owned = {}

    def _Answer(data):
        owned["instance"] = set(mctx.glm.list_owned(locking.LEVEL_INSTANCE))
        owned["node"] = set(mctx.glm.list_owned(locking.LEVEL_NODE))
        return Answer([[], [], []])

    mctx.rpc.answer = _Answer
    Run(mctx, _Evacuate(iallocator="hail"))
    assert owned == {"instance": {A, B}, "node": set(mctx.cfg.GetNodeList())}


def test_node_evacuation_refuses_when_the_instances_changed(mctx, monkeypatch):
    from ganeti.cmdlib import node_evacuate
    _TwoInstances(mctx)
    declare = node_evacuate.LUNodeEvacuate.DeclareLocks

    def _Declare(lu, level):
        if level == locking.LEVEL_NODE:
            # another job put an instance on the node meanwhile
            glm = mctx.glm
            AddDrbdInstance(mctx, "c.example.com", snode=mctx.n2)
            mctx.glm = glm
        declare(lu, level)

    monkeypatch.setattr(node_evacuate.LUNodeEvacuate, "DeclareLocks", _Declare)
    cbs = Callbacks()
    with pytest.raises(errors.OpPrereqError, match="changed since the locks were"
                       " acquired") as info:
        mcpu.Processor(mctx, ec_id=1).ExecOpCode(_Evacuate(iallocator="hail"), cbs)
    assert info.value.args[1] == errors.ECODE_STATE
    assert not getattr(mctx.rpc, "runs", [])


def test_node_evacuation_with_nothing_to_move_asks_no_allocator(mctx):
    AddDrbdInstance(mctx, A, pnode=mctx.n1, snode=mctx.n3)
    result, cbs = Run(mctx, _Evacuate(iallocator="hail"))
    assert result == {"jobs": []} and cbs.jobs == []
    assert not getattr(mctx.rpc, "runs", [])
    assert "No instances to evacuate on node node2.example.com" in cbs.feedback
