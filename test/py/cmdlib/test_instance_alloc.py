"""Tests for placing instances with an allocator: gnt-instance add -I
(lib/cmdlib/instance_create.py with lib/cmdlib/instance_alloc.py) and
gnt-instance recreate-disks -I (lib/cmdlib/instance_storage.py), run
through mcpu on the three-node configuration of test_instance_convert
with the fake allocator runner of test_iallocator."""

from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import instancehelpers  # noqa: E402
import test_iallocator as tia  # noqa: E402
import test_instance_convert as conv  # noqa: E402

from ganeti import constants, errors, locking, objects, opcodes  # noqa: E402

NAME = conv.NAME
MASTER = instancehelpers.MASTER
NODE2, NODE3 = conv.NODE2, conv.NODE3


class LockWatchingRpc(tia.AllocRpc):
    """Also records the node locks held when disks are created (Exec)."""

    def __init__(self, glm):
        super().__init__()
        self.glm = glm
        self.locks_at_create: list[tuple[set[str], set[str]]] = []

    def call_blockdev_create(self, node, disk, size, owner, on_primary, info, excl):
        self.locks_at_create.append((self.glm.list_owned(locking.LEVEL_NODE),
                                     self.glm.list_owned(locking.LEVEL_NODE_RES)))
        return super().call_blockdev_create(node, disk, size, owner, on_primary, info,
                                            excl)


@pytest.fixture
def ctx(tmp_path):
    context = conv.MakeStorageContext(tmp_path)
    context.rpc = LockWatchingRpc(context.glm)
    return context


def _Answer(ctx, nodes, success=True, info="ok"):
    ctx.rpc.answer = {"success": success, "info": info, "result": nodes}


def _AddOp(template="drbd", **kwargs):
    params = dict(disk_template=template, disks=[{"size": 1024}], start=False,
                  pnode=None, beparams={"maxmem": 256, "minmem": 128, "vcpus": 2},
                  tags=["web"])
    params.update(kwargs)
    return instancehelpers.CreateOp(NAME, **params)


def _SetDefault(ctx, name):
    cluster = ctx.cfg.GetClusterInfo()
    cluster.default_iallocator = name
    ctx.cfg.Update(cluster)


def _RefusedUnchanged(ctx, op, code, match):
    """Refused with ``code``; nothing created: the configuration serial
    is unchanged, no disk was made, no instance lock left."""
    serial = ctx.cfg.GetConfigSerialNo()
    with pytest.raises(errors.OpPrereqError, match=match) as info:
        instancehelpers.Run(ctx, op)
    assert info.value.args[1] == code
    assert ctx.cfg.GetConfigSerialNo() == serial
    assert ctx.cfg.GetInstanceInfoByName(NAME) is None
    assert "blockdev_create" not in ctx.rpc.names()
    assert NAME not in ctx.glm.names(locking.LEVEL_INSTANCE)
    return info.value


# --- gnt-instance add -I ---------------------------------------------------------------


def test_allocator_chooses_the_nodes(ctx):
    _Answer(ctx, [NODE2, NODE3])
    result, cbs = instancehelpers.Run(ctx, _AddOp(iallocator="hail"))
    assert result == [NODE2, NODE3]
    inst = ctx.cfg.GetInstanceInfoByName(NAME)
    assert inst.primary_node == ctx.node2
    assert ctx.cfg.GetInstanceNodes(inst.uuid) == (ctx.node2, ctx.node3)
    assert any(f"Selected nodes for the instance: {NODE2}, {NODE3}" in str(f)
               for f in cbs.feedback)
    # one run, on the master, with the instance's spec
    ((node, name, data, _),) = ctx.rpc.runs
    assert node == ctx.node1 and name == "hail"
    request = data["request"]
    assert request["type"] == "allocate" and request["name"] == NAME
    assert request["memory"] == 256 and request["vcpus"] == 2
    assert request["disk_template"] == "drbd" and request["required_nodes"] == 2
    assert request["disks"] == [{"size": 1024, "mode": "rw"}]
    assert request["disk_space_total"] == 1024 + 128
    assert request["os"] == "noop+default" and request["tags"] == ["web"]
    assert request["hypervisor"] == constants.HT_FAKE
    assert len(request["nics"]) == 1 and request["nics"][0]["mac"] == "auto"
    assert "group_name" not in request
    # the locks of the nodes not chosen were given back before Exec
    owned = {ctx.node2, ctx.node3}
    assert ctx.rpc.locks_at_create
    assert all(nodes == owned and res == owned for nodes, res in ctx.rpc.locks_at_create)


def test_allocator_for_a_plain_instance(ctx):
    _Answer(ctx, [NODE3])
    result, _ = instancehelpers.Run(ctx, _AddOp("plain", iallocator="hail"))
    assert result == [NODE3]
    inst = ctx.cfg.GetInstanceInfoByName(NAME)
    assert ctx.cfg.GetInstanceNodes(inst.uuid) == (ctx.node3,)
    assert set(ctx.rpc.lvs[ctx.node3]) == {
        "/".join(d.logical_id) for d in ctx.cfg.GetInstanceDisks(inst.uuid)}
    assert ctx.rpc.runs[0][2]["request"]["required_nodes"] == 1


def test_default_allocator_without_node(ctx):
    _SetDefault(ctx, "hail")
    _Answer(ctx, [NODE3])
    instancehelpers.Run(ctx, _AddOp("plain"))
    assert [run[1] for run in ctx.rpc.runs] == ["hail"]
    assert ctx.cfg.GetInstanceInfoByName(NAME).primary_node == ctx.node3


def test_dot_means_the_default_allocator(ctx):
    _SetDefault(ctx, "my-alloc")
    _Answer(ctx, [NODE2])
    instancehelpers.Run(ctx, _AddOp("plain", iallocator="."))
    assert [run[1] for run in ctx.rpc.runs] == ["my-alloc"]


def test_given_node_wins_over_the_default_allocator(ctx):
    _SetDefault(ctx, "hail")
    instancehelpers.Run(ctx, _AddOp("plain", pnode=NODE2))
    assert not ctx.rpc.runs
    assert ctx.cfg.GetInstanceInfoByName(NAME).primary_node == ctx.node2


def test_no_node_and_no_allocator_is_a_clear_error(ctx):
    err = _RefusedUnchanged(ctx, _AddOp("plain"), errors.ECODE_INVAL,
                            r"No node \(-n/--node\) and no iallocator")
    assert "--default-iallocator" in err.args[0]
    assert not ctx.rpc.runs
    with pytest.raises(errors.OpPrereqError, match="no default iallocator"):
        instancehelpers.Run(ctx, _AddOp("plain", iallocator="."))


def test_node_and_allocator_together_are_refused(ctx):
    _RefusedUnchanged(ctx, _AddOp("plain", pnode=NODE2, iallocator="hail"),
                      errors.ECODE_INVAL, "either an iallocator")
    assert not ctx.rpc.runs


def test_allocator_failure_creates_nothing(ctx):
    _Answer(ctx, [], success=False,
            info="Can't find a suitable node for position 2 (already selected:"
                 f" {NODE2})")
    _RefusedUnchanged(ctx, _AddOp(iallocator="hail"), errors.ECODE_NORES,
                      "Can't compute nodes using iallocator 'hail': Can't find a"
                      " suitable node for position 2")
    assert len(ctx.rpc.runs) == 1


def test_runner_failure_creates_nothing(ctx):
    ctx.rpc.fail["iallocator_runner"] = "iallocator 'nosuch' not found"
    _RefusedUnchanged(ctx, _AddOp(iallocator="nosuch"), errors.ECODE_ENVIRON,
                      "not found")


@pytest.mark.parametrize("template,nodes", [("drbd", [NODE2]), ("plain", [NODE2, NODE3])])
def test_node_list_of_wrong_length_is_refused(ctx, template, nodes):
    _Answer(ctx, nodes)
    _RefusedUnchanged(ctx, _AddOp(template, iallocator="hail"), errors.ECODE_ENVIRON,
                      f"returned {len(nodes)} node")


def test_unusable_chosen_node_is_refused(ctx):
    node = ctx.cfg.GetNodeInfo(ctx.node3)
    node.offline = True
    ctx.cfg.Update(node)
    _Answer(ctx, [NODE3])
    _RefusedUnchanged(ctx, _AddOp("plain", iallocator="hail"), errors.ECODE_ENVIRON,
                      "offline")


def test_adoption_with_allocator_is_refused(ctx):
    _RefusedUnchanged(ctx, _AddOp("plain", iallocator="hail",
                                  disks=[{"adopt": "data"}]),
                      errors.ECODE_INVAL, "adoption")


def test_dry_run_answers_the_chosen_nodes(ctx):
    _Answer(ctx, [NODE3, NODE2])
    serial = ctx.cfg.GetConfigSerialNo()
    result, _ = instancehelpers.Run(ctx, _AddOp(iallocator="hail", dry_run=True))
    assert result == [NODE3, NODE2]
    assert ctx.cfg.GetConfigSerialNo() == serial
    assert ctx.cfg.GetInstanceInfoByName(NAME) is None


def test_group_restricts_the_choice(ctx):
    group = objects.NodeGroup(name="rack2", members=[])
    ctx.cfg.AddNodeGroup(group, "test")
    ctx.cfg.AssignGroupNodes([(ctx.node3, ctx.cfg.LookupNodeGroup("rack2"))])
    ctx.glm = instancehelpers.masterd.BuildLockManager(ctx.cfg)
    ctx.rpc.glm = ctx.glm
    _Answer(ctx, [NODE2])
    _RefusedUnchanged(ctx, _AddOp("plain", iallocator="hail", group_name="rack2"),
                      errors.ECODE_ENVIRON, f"outside the allowed ones: {NODE2}")
    assert ctx.rpc.runs[0][2]["request"]["group_name"] == "rack2"
    _Answer(ctx, [NODE3])
    instancehelpers.Run(ctx, _AddOp("plain", iallocator="hail", group_name="rack2"))
    assert ctx.cfg.GetInstanceInfoByName(NAME).primary_node == ctx.node3


# --- gnt-instance recreate-disks -I ---------------------------------------------------------


def _Recreate(ctx, **kwargs):
    return instancehelpers.Run(ctx, opcodes.OpInstanceRecreateDisks(instance_name=NAME,
                                                                    **kwargs))


def test_recreate_plain_on_allocated_node(ctx):
    inst = conv._Create(ctx, "plain", sizes=(1024, 2048))
    ctx.rpc.lvs[ctx.node1] = {}
    ctx.rpc.locks_at_create.clear()
    _Answer(ctx, [NODE3])
    _, cbs = _Recreate(ctx, iallocator="hail")
    inst = ctx.cfg.GetInstanceInfo(inst.uuid)
    assert inst.primary_node == ctx.node3
    disks = ctx.cfg.GetInstanceDisks(inst.uuid)
    assert set(ctx.rpc.lvs[ctx.node3]) == {"/".join(d.logical_id) for d in disks}
    assert all(d.nodes == [ctx.node3] for d in disks)
    assert any(f"Selected new nodes for instance {NAME}: {NODE3}" in str(f)
               for f in cbs.feedback)
    request = ctx.rpc.runs[0][2]["request"]
    assert request["name"] == NAME and request["required_nodes"] == 1
    assert request["disk_template"] == "plain"
    assert [d["size"] for d in request["disks"]] == [1024, 2048]
    assert request["group_name"] == "default"
    # the old primary node's lock is kept (the instance's nodes), the others
    # the allocator did not choose are given back
    assert ctx.rpc.locks_at_create
    assert all(nodes == {ctx.node1, ctx.node3} for nodes, _ in ctx.rpc.locks_at_create)


def test_recreate_drbd_on_allocated_nodes(ctx):
    inst = conv._Create(ctx, "drbd", sizes=(1024,))
    for node in (ctx.node1, ctx.node2):
        ctx.rpc.lvs[node] = {}
        ctx.rpc.drbd[node] = {}
    _Answer(ctx, [NODE3, MASTER])
    _Recreate(ctx, iallocator="hail")
    inst = ctx.cfg.GetInstanceInfo(inst.uuid)
    assert ctx.cfg.GetInstanceNodes(inst.uuid) == (ctx.node3, ctx.node1)
    (disk,) = ctx.cfg.GetInstanceDisks(inst.uuid)
    assert disk.logical_id[:2] == (ctx.node3, ctx.node1)
    assert len(ctx.rpc.lvs[ctx.node3]) == 2 and len(ctx.rpc.lvs[ctx.node1]) == 2
    assert ctx.rpc.runs[0][2]["request"]["required_nodes"] == 2
    assert not ctx.cfg.VerifyConfig()


def test_recreate_allocator_failure_changes_nothing(ctx):
    inst = conv._Create(ctx, "plain", sizes=(1024,))
    ctx.rpc.lvs[ctx.node1] = {}
    _Answer(ctx, [], success=False, info="No valid allocation solutions")
    serial = ctx.cfg.GetConfigSerialNo()
    with pytest.raises(errors.OpPrereqError,
                       match="Can't compute nodes using iallocator 'hail': No valid") \
            as info:
        _Recreate(ctx, iallocator="hail")
    assert info.value.args[1] == errors.ECODE_NORES
    assert ctx.cfg.GetConfigSerialNo() == serial
    assert ctx.cfg.GetInstanceInfo(inst.uuid).primary_node == ctx.node1
    assert "blockdev_create" not in ctx.rpc.names()


def test_recreate_refusals_with_allocator(ctx):
    conv._Create(ctx, "plain", sizes=(1024, 2048))
    with pytest.raises(errors.OpPrereqError, match="partially"):
        _Recreate(ctx, iallocator="hail", disks=[0])
    with pytest.raises(errors.OpPrereqError, match="either the iallocator or the new"):
        _Recreate(ctx, iallocator="hail", nodes=[NODE2])
    with pytest.raises(errors.OpPrereqError, match="no default iallocator"):
        _Recreate(ctx, iallocator=".")
    # without -I and -n the default allocator is not used: same nodes
    _SetDefault(ctx, "hail")
    ctx.rpc.lvs[ctx.node1] = {}
    _Recreate(ctx)
    assert not ctx.rpc.runs
    assert ctx.cfg.GetInstanceInfoByName(NAME).primary_node == ctx.node1
