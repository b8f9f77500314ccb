"""Tests for OpInstanceMultiAlloc (lib/cmdlib/instance_multi_alloc.py):
one multi-allocate request, one creation job per instance placed, the
allocatable and failed names; run through mcpu on the three-node
configuration of test_instance_convert with the fake allocator runner of
test_iallocator and callbacks recording the submitted jobs."""

from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import instancehelpers  # noqa: E402
import test_iallocator as tia  # noqa: E402
import test_instance_convert as conv  # noqa: E402

from ganeti import constants, errors, mcpu, opcodes  # noqa: E402

NODE2, NODE3 = conv.NODE2, conv.NODE3
A, B, C = "a.example.com", "b.example.com", "c.example.com"


class JobCallbacks(instancehelpers.Callbacks):
    """Records the jobs the LU submits; answers Ganeti's [success, id]."""

    def __init__(self):
        super().__init__()
        self.jobs = []

    def SubmitManyJobs(self, jobs):
        result = []
        for job in jobs:
            self.jobs.append(job)
            result.append([True, str(100 + len(self.jobs))])
        return result


@pytest.fixture
def ctx(tmp_path):
    context = conv.MakeStorageContext(tmp_path)
    context.rpc = tia.AllocRpc()
    return context


def _Run(ctx, op):
    cbs = JobCallbacks()
    result = mcpu.Processor(ctx, ec_id=1).ExecOpCode(op, cbs)
    if not getattr(op, "dry_run", False):
        # What the job queue checks
        assert op.OP_RESULT(result), result
    return result, cbs


def _Create(name, template="plain", **kwargs):
    params = dict(instance_name=name, mode=constants.INSTANCE_CREATE,
                  disk_template=template, disks=[{"size": 1024}], nics=[{}],
                  os_type="noop+default", start=False, name_check=False,
                  ip_check=False, beparams={"maxmem": 128})
    params.update(kwargs)
    return opcodes.OpInstanceCreate(**params)


def _Multi(instances, **kwargs):
    return opcodes.OpInstanceMultiAlloc(instances=instances, **kwargs)


def _Answer(ctx, placed, failed, success=True, info="ok"):
    ctx.rpc.answer = {"success": success, "info": info, "result": [placed, failed]}


def _Unchanged(ctx, op, code, match):
    serial = ctx.cfg.GetConfigSerialNo()
    cbs = JobCallbacks()
    with pytest.raises(errors.OpPrereqError, match=match) as info:
        mcpu.Processor(ctx, ec_id=1).ExecOpCode(op, cbs)
    assert info.value.args[1] == code
    assert not cbs.jobs
    assert ctx.cfg.GetConfigSerialNo() == serial
    return info.value


def test_partial_allocation_submits_the_placed_ones(ctx):
    _Answer(ctx, [[A, [NODE2]], [B, [NODE3]]], [C])
    serial = ctx.cfg.GetConfigSerialNo()
    result, cbs = _Run(ctx, _Multi([_Create(A), _Create(B), _Create(C)],
                                   iallocator="hail"))
    assert result == {"jobs": [[True, "101"], [True, "102"]],
                      "allocatable": [A, B], "allocation_failed": [C]}
    # one request for all three
    ((_, name, data, _),) = ctx.rpc.runs
    assert name == "hail"
    request = data["request"]
    assert request["type"] == "multi-allocate"
    assert [r["name"] for r in request["instances"]] == [A, B, C]
    assert all(r["type"] == "allocate" and r["memory"] == 128 and r["required_nodes"] == 1
               for r in request["instances"])
    # one creation job per instance placed, nodes filled in
    assert [len(job) for job in cbs.jobs] == [1, 1]
    (op_a,), (op_b,) = cbs.jobs
    assert isinstance(op_a, opcodes.OpInstanceCreate)
    assert (op_a.instance_name, op_a.pnode, op_a.pnode_uuid) == (A, NODE2, ctx.node2)
    assert (op_b.instance_name, op_b.pnode) == (B, NODE3)
    assert op_a.iallocator is None and op_a.snode is None
    assert any(f"Instance {C} could not be placed by iallocator 'hail'" in str(f)
               for f in cbs.feedback)
    # the LU itself creates nothing
    assert ctx.cfg.GetConfigSerialNo() == serial
    assert not ctx.cfg.GetInstanceList()
    # the submitted creation runs as it is (through its wire form)
    instancehelpers.Run(ctx, opcodes.OpCode.LoadOpCode(op_a.ToDict()))
    assert ctx.cfg.GetInstanceInfoByName(A).primary_node == ctx.node2
    assert not ctx.rpc.runs[1:]


def test_drbd_instances_get_both_nodes(ctx):
    _Answer(ctx, [[A, [NODE3, NODE2]]], [])
    result, cbs = _Run(ctx, _Multi([_Create(A, "drbd")], iallocator="hail"))
    assert result["allocatable"] == [A] and result["allocation_failed"] == []
    ((op,),) = cbs.jobs
    assert (op.pnode, op.snode) == (NODE3, NODE2)
    assert (op.pnode_uuid, op.snode_uuid) == (ctx.node3, ctx.node2)
    assert ctx.rpc.runs[0][2]["request"]["instances"][0]["required_nodes"] == 2


def test_given_nodes_need_no_allocator(ctx):
    result, cbs = _Run(ctx, _Multi([_Create(A, pnode=NODE2),
                                    _Create(B, "drbd", pnode=NODE2, snode="node3")]))
    assert result["allocatable"] == [A, B] and result["allocation_failed"] == []
    assert [job[0].instance_name for job in cbs.jobs] == [A, B]
    assert cbs.jobs[1][0].snode == NODE3  # expanded
    assert not ctx.rpc.runs


def test_cluster_default_allocator_is_used(ctx):
    cluster = ctx.cfg.GetClusterInfo()
    cluster.default_iallocator = "my-alloc"
    ctx.cfg.Update(cluster)
    _Answer(ctx, [[A, [NODE2]]], [])
    _Run(ctx, _Multi([_Create(A)]))
    assert [run[1] for run in ctx.rpc.runs] == ["my-alloc"]


def test_no_allocator_and_no_nodes_is_refused(ctx):
    _Unchanged(ctx, _Multi([_Create(A)]), errors.ECODE_INVAL,
               "No iallocator or nodes on the instances given")
    assert not ctx.rpc.runs


@pytest.mark.parametrize("instances,kwargs,match", [
    ([_Create(A, pnode=NODE2), _Create(B)], {}, "Some instances name their nodes"),
    ([_Create(A, "drbd", pnode=NODE2)], {}, "Some instances name their nodes"),
    ([_Create(A), _Create(A)], {"iallocator": "hail"}, "duplicate instance names: " + A),
    ([_Create(A, iallocator="hail")], {}, "cannot be set per instance"),
    ([_Create(A, pnode=NODE2)], {"iallocator": "hail"}, "not both"),
    ([], {"iallocator": "hail"}, "No instances"),
])
def test_bad_requests_are_refused(ctx, instances, kwargs, match):
    _Unchanged(ctx, _Multi(instances, **kwargs), errors.ECODE_INVAL, match)
    assert not ctx.rpc.runs


def test_allocator_failure_submits_nothing(ctx):
    _Answer(ctx, [], [], success=False, info="No valid allocation solutions")
    _Unchanged(ctx, _Multi([_Create(A), _Create(B)], iallocator="hail"),
               errors.ECODE_NORES,
               "Can't compute nodes using iallocator 'hail': No valid allocation")


@pytest.mark.parametrize("placed,failed,match", [
    ([[A, [NODE2]]], [], "gave no answer for instance.*" + B),
    ([[C, [NODE2]]], [A, B], "invalid allocation"),
    ([[A, [NODE2, NODE3]]], [B], "returned 2 node"),
])
def test_bad_answers_are_refused(ctx, placed, failed, match):
    _Answer(ctx, placed, failed)
    _Unchanged(ctx, _Multi([_Create(A), _Create(B)], iallocator="hail"),
               errors.ECODE_ENVIRON, match)


def test_dry_run_tells_what_would_be_placed(ctx):
    _Answer(ctx, [[B, [NODE3]]], [A])
    result, cbs = _Run(ctx, _Multi([_Create(A), _Create(B)], iallocator="hail",
                                   dry_run=True))
    assert result == {"jobs": [], "allocatable": [B], "allocation_failed": [A]}
    assert not cbs.jobs


def test_rapi_shaped_body_runs(ctx):
    """The opcode as RAPI submits it (the body's instances as dicts, Ganeti's
    old names "name" and "os" already renamed) loads and runs."""
    data = {"OP_ID": "OP_INSTANCE_MULTI_ALLOC", "iallocator": "hail",
            "opportunistic_locking": False,
            "instances": [{"instance_name": A, "mode": "create", "disk_template": "plain",
                           "disks": [{"size": 1024}], "nics": [], "os_type": "noop+default",
                           "name_check": False, "ip_check": False}]}
    op = opcodes.OpCode.LoadOpCode(data)
    _Answer(ctx, [[A, [NODE3]]], [])
    result, cbs = _Run(ctx, op)
    assert result["allocatable"] == [A]
    assert cbs.jobs[0][0].pnode == NODE3
