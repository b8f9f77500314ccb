"""Tests for the node group LUs and the instance policy checks, run
through mcpu on a configuration with nodes and instances."""

from __future__ import annotations

import os
import sys
import time
from types import SimpleNamespace

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "query"))

import instcfg  # noqa: E402

from ganeti import constants, errors, mcpu, objects, opcodes  # noqa: E402
from ganeti.cmdlib import group as group_lu  # noqa: E402
from ganeti.locking import LEVEL_NODEGROUP  # noqa: E402
from ganeti.server import masterd  # noqa: E402

MIN, MAX, STD = constants.ISPECS_MIN, constants.ISPECS_MAX, constants.ISPECS_STD
MINMAX = constants.ISPECS_MINMAX


class Callbacks(mcpu.OpExecCbBase):
    def __init__(self):
        self.feedback = []

    def Feedback(self, *args):
        self.feedback.append(args)

    def Text(self):
        return "\n".join(str(args[-1]) for args in self.feedback)


@pytest.fixture
def ctx(tmp_path):
    cfg = instcfg.MakeConfig(str(tmp_path / "config.data"), 4, 8)
    return SimpleNamespace(cfg=cfg, glm=masterd.BuildLockManager(cfg), rpc=None)


def _Run(ctx, op):
    cbs = Callbacks()
    result = mcpu.Processor(ctx, ec_id=1).ExecOpCode(op, cbs)
    return result, cbs


def _Raises(ctx, op, code, match):
    serial = ctx.cfg.GetConfigSerialNo()
    with pytest.raises(errors.OpPrereqError, match=match) as info:
        _Run(ctx, op)
    assert info.value.args[1] == code
    assert ctx.cfg.GetConfigSerialNo() == serial


def _Group(ctx, name):
    return ctx.cfg.GetNodeGroupInfoByName(name)


def _Members(ctx, name):
    uuid = _Group(ctx, name).uuid
    return sorted(n.name for n in ctx.cfg.GetAllNodesInfo().values() if n.group == uuid)


# --- add / remove / rename -----------------------------------------------------------

def test_add_group_with_parameters(ctx):
    _Run(ctx, opcodes.OpGroupAdd(
        group_name="rack1", alloc_policy=constants.ALLOC_POLICY_LAST_RESORT,
        ndparams={constants.ND_OOB_PROGRAM: "/bin/true"} if hasattr(constants, "ND_OOB_PROGRAM")
        else {}, ipolicy={constants.IPOLICY_VCPU_RATIO: 2,
                          MINMAX: [{MIN: {constants.ISPEC_MEM_SIZE: 256},
                                    MAX: {constants.ISPEC_MEM_SIZE: 1024}}]}))
    group = _Group(ctx, "rack1")
    assert group.alloc_policy == constants.ALLOC_POLICY_LAST_RESORT
    assert group.ipolicy[constants.IPOLICY_VCPU_RATIO] == 2.0
    pair = group.ipolicy[MINMAX][0]
    # completed from the policy in force
    assert pair[MIN][constants.ISPEC_MEM_SIZE] == 256
    assert pair[MIN][constants.ISPEC_CPU_COUNT] == 1
    assert pair[MAX][constants.ISPEC_MEM_SIZE] == 1024
    assert group.uuid in ctx.glm.names(LEVEL_NODEGROUP)
    assert _Members(ctx, "rack1") == []


def test_add_bad_input(ctx):
    _Run(ctx, opcodes.OpGroupAdd(group_name="rack1"))
    _Raises(ctx, opcodes.OpGroupAdd(group_name="rack1"), errors.ECODE_EXISTS,
            "Desired group name 'rack1' already exists")
    _Raises(ctx, opcodes.OpGroupAdd(group_name="default"), errors.ECODE_EXISTS,
            "already exists")
    _Raises(ctx, opcodes.OpGroupAdd(group_name="g2", ndparams={"nosuch": 1}),
            errors.ECODE_INVAL, "nosuch")
    _Raises(ctx, opcodes.OpGroupAdd(group_name="g2", ipolicy={"foo": 1}),
            errors.ECODE_INVAL, "Unknown instance policy parameter\\(s\\): foo")


def test_remove(ctx):
    _Run(ctx, opcodes.OpGroupAdd(group_name="rack1"))
    uuid = _Group(ctx, "rack1").uuid
    _Run(ctx, opcodes.OpGroupRemove(group_name="rack1"))
    assert _Group(ctx, "rack1") is None
    assert uuid not in ctx.glm.names(LEVEL_NODEGROUP)
    _Raises(ctx, opcodes.OpGroupRemove(group_name="rack1"), errors.ECODE_NOENT,
            "Node group 'rack1' not found")


def test_remove_refuses_group_with_nodes_and_last_group(ctx):
    _Raises(ctx, opcodes.OpGroupRemove(group_name="default"), errors.ECODE_STATE,
            "Group 'default' not empty, has the following node\\(s\\):"
            " node0.example.com, node1.example.com, node2.example.com,"
            " node3.example.com\"")


def test_remove_last_group(ctx):
    _Run(ctx, opcodes.OpGroupAdd(group_name="rack1"))
    _Run(ctx, opcodes.OpGroupAssignNodes(
        group_name="rack1", nodes=[f"node{i}" for i in range(4)]))
    _Run(ctx, opcodes.OpGroupRemove(group_name="default"))
    _Raises(ctx, opcodes.OpGroupAssignNodes(group_name="default", nodes=["node1"]),
            errors.ECODE_NOENT, "Node group 'default' not found")
    _Run(ctx, opcodes.OpGroupAdd(group_name="empty"))
    _Run(ctx, opcodes.OpGroupRemove(group_name="empty"))
    assert [g.name for g in ctx.cfg.GetAllNodeGroupsInfo().values()] == ["rack1"]
    # the last group: not removable even when empty of nodes is impossible here,
    # so check the rule on a cluster whose only group has nodes
    _Raises(ctx, opcodes.OpGroupRemove(group_name="rack1"), errors.ECODE_STATE,
            "Group 'rack1' not empty")


def test_remove_last_empty_group(ctx, monkeypatch):
    # A group is never both empty and the last one on a real cluster (the
    # master is in a group); check the rule itself with no members seen.
    monkeypatch.setattr(ctx.cfg, "GetAllNodesInfo", lambda: {})
    _Raises(ctx, opcodes.OpGroupRemove(group_name="default"), errors.ECODE_STATE,
            "Group 'default' is the only group, cannot be removed")


def test_rename(ctx):
    _Run(ctx, opcodes.OpGroupAdd(group_name="rack1"))
    uuid = _Group(ctx, "rack1").uuid
    result, _ = _Run(ctx, opcodes.OpGroupRename(group_name="rack1", new_name="rack9"))
    assert result == "rack9"
    assert _Group(ctx, "rack9").uuid == uuid and _Group(ctx, "rack1") is None
    _Raises(ctx, opcodes.OpGroupRename(group_name="rack9", new_name="default"),
            errors.ECODE_EXISTS, "Desired new name 'default' clashes")
    _Raises(ctx, opcodes.OpGroupRename(group_name="nosuch", new_name="x"),
            errors.ECODE_NOENT, "Node group 'nosuch' not found")


# --- set params -------------------------------------------------------------------------

def test_set_params(ctx):
    _Run(ctx, opcodes.OpGroupAdd(group_name="rack1"))
    result, _ = _Run(ctx, opcodes.OpGroupSetParams(
        group_name="rack1", alloc_policy=constants.ALLOC_POLICY_UNALLOCABLE,
        ipolicy={constants.IPOLICY_SPINDLE_RATIO: 8.5,
                 constants.IPOLICY_DTS: [constants.DT_FILE]}))
    assert ["alloc_policy", "unallocable"] in result
    group = _Group(ctx, "rack1")
    assert group.alloc_policy == constants.ALLOC_POLICY_UNALLOCABLE
    assert group.ipolicy == {constants.IPOLICY_SPINDLE_RATIO: 8.5,
                             constants.IPOLICY_DTS: [constants.DT_FILE]}
    # "default" removes the override
    _Run(ctx, opcodes.OpGroupSetParams(
        group_name="rack1", ipolicy={constants.IPOLICY_SPINDLE_RATIO: "default"}))
    assert _Group(ctx, "rack1").ipolicy == {constants.IPOLICY_DTS: [constants.DT_FILE]}


@pytest.mark.parametrize("ipolicy,match", [
    ({MINMAX: [{MIN: {constants.ISPEC_MEM_SIZE: 2048},
                MAX: {constants.ISPEC_MEM_SIZE: 1024}}]},
     "minimum memory-size \\(2048\\) is greater than the maximum \\(1024\\)"),
    ({MINMAX: [{MIN: {"memory-sise": 1}, MAX: {}}]},
     "Unknown instance spec 'memory-sise' in min specs of pair #0"),
    ({MINMAX: [{"middle": {}}]}, "Unknown key\\(s\\) middle in min/max spec #0"),
    ({MINMAX: []}, "must be a non-empty list"),
    ({MINMAX: [{MIN: {constants.ISPEC_CPU_COUNT: -1}, MAX: {}}]},
     "Invalid value -1 for cpu-count"),
    ({STD: {constants.ISPEC_MEM_SIZE: 65536}},
     "standard memory-size \\(65536\\) is not between 128 and 32768"),
    ({constants.IPOLICY_VCPU_RATIO: 0}, "Invalid value 0 for instance policy vcpu-ratio"),
    ({constants.IPOLICY_SPINDLE_RATIO: "abc"},
     "Invalid value 'abc' for instance policy spindle-ratio"),
    ({constants.IPOLICY_DTS: ["floppy"]}, "Unknown disk template\\(s\\).*floppy"),
    ({"bogus": 1}, "Unknown instance policy parameter\\(s\\): bogus"),
])
def test_set_params_bad_ipolicy(ctx, ipolicy, match):
    before = _Group(ctx, "default").ipolicy
    _Raises(ctx, opcodes.OpGroupSetParams(group_name="default", ipolicy=ipolicy),
            errors.ECODE_INVAL, match)
    assert _Group(ctx, "default").ipolicy == before


def test_set_params_needs_a_change(ctx):
    _Raises(ctx, opcodes.OpGroupSetParams(group_name="default"), errors.ECODE_INVAL,
            "at least one modification")


def test_set_params_warns_about_violating_instances(ctx):
    # instances have 128 MiB (or 256 for every third), 1 vcpu, 1 NIC
    _, cbs = _Run(ctx, opcodes.OpGroupSetParams(group_name="default", ipolicy={
        MINMAX: [{MIN: {constants.ISPEC_MEM_SIZE: 200},
                  MAX: {constants.ISPEC_MEM_SIZE: 4096}}]}))
    text = cbs.Text()
    assert "After the ipolicy change the following instances violate them" in text
    assert "inst2.example.com (memory-size value 128 is not in range [200, 4096])" in text
    assert "inst0.example.com" not in text     # 256 MiB fits
    assert "inst1.example.com" not in text     # broke the old policy already
    assert "disk templates" not in text
    # the change is made all the same
    assert _Group(ctx, "default").ipolicy[MINMAX][0][MIN][constants.ISPEC_MEM_SIZE] == 200


def test_spec_violation():
    ipolicy = objects.FillIPolicy(constants.IPOLICY_DEFAULTS, {
        MINMAX: [{MIN: dict(constants.ISPECS_MINMAX_DEFAULTS[MIN]),
                  MAX: dict(constants.ISPECS_MINMAX_DEFAULTS[MAX])}],
        constants.IPOLICY_DTS: [constants.DT_FILE, constants.DT_DISKLESS]})
    check = group_lu.ComputeIPolicySpecViolation
    assert check(ipolicy, 128, 1, 1, 1, [1024], 1, constants.DT_FILE) == []
    assert check(ipolicy, 64, 9, 0, 1, [], 1, constants.DT_DISKLESS) == [
        "memory-size value 64 is not in range [128, 32768]",
        "cpu-count value 9 is not in range [1, 8]"]
    assert check(ipolicy, 128, 1, 1, 0, [10], 1, constants.DT_PLAIN) == [
        "Disk template plain is not allowed (allowed templates: file, diskless)",
        "nic-count value 0 is not in range [1, 8]",
        "disk-size value 10 is not in range [1024, 1048576]"]


# --- assign nodes ----------------------------------------------------------------------

def test_assign_nodes(ctx):
    _Run(ctx, opcodes.OpGroupAdd(group_name="rack1"))
    _Run(ctx, opcodes.OpGroupAssignNodes(group_name="rack1",
                                         nodes=["node1", "node2.example.com"]))
    assert _Members(ctx, "rack1") == ["node1.example.com", "node2.example.com"]
    assert _Members(ctx, "default") == ["node0.example.com", "node3.example.com"]
    # already there: nothing moves
    _Run(ctx, opcodes.OpGroupAssignNodes(group_name="rack1", nodes=["node1"]))
    assert _Members(ctx, "rack1") == ["node1.example.com", "node2.example.com"]


def test_assign_unknown_node(ctx):
    _Run(ctx, opcodes.OpGroupAdd(group_name="rack1"))
    _Raises(ctx, opcodes.OpGroupAssignNodes(group_name="rack1",
                                            nodes=["node1", "nosuch"]),
            errors.ECODE_NOENT, "Node 'nosuch' not known")
    assert _Members(ctx, "rack1") == []


def _AddMirroredInstance(cfg, pnode, snode):
    data = cfg._config_data
    now = time.time()
    disk = objects.Disk(dev_type=constants.DT_DRBD8, size=1024, mode=constants.DISK_RDWR,
                        logical_id=(pnode, snode, 11000, 0, 0, "secret"),
                        iv_name="disk/0", nodes=[pnode, snode],
                        uuid=objects.GenerateUUID(), serial_no=1, ctime=now, mtime=now)
    disk.UpgradeConfig()
    data.disks[disk.uuid] = disk
    inst = objects.Instance(
        name="mirror.example.com", primary_node=pnode, os="noop+default",
        hypervisor=constants.HT_FAKE, hvparams={}, beparams={}, osparams={},
        osparams_private={}, nics=[], disks=[disk.uuid],
        admin_state=constants.ADMINST_DOWN, uuid=objects.GenerateUUID(),
        serial_no=1, ctime=now, mtime=now)
    inst.UpgradeConfig()
    data.instances[inst.uuid] = inst


def test_assign_refuses_split_without_force(ctx):
    cfg = ctx.cfg
    n1 = cfg.GetNodeInfoByName("node1.example.com").uuid
    n2 = cfg.GetNodeInfoByName("node2.example.com").uuid
    _AddMirroredInstance(cfg, n1, n2)
    _Run(ctx, opcodes.OpGroupAdd(group_name="rack1"))
    _Raises(ctx, opcodes.OpGroupAssignNodes(group_name="rack1", nodes=["node1"]),
            errors.ECODE_INVAL, "The following instances get split by this change and"
            " --force was not given: mirror.example.com")
    assert _Members(ctx, "rack1") == []
    _, cbs = _Run(ctx, opcodes.OpGroupAssignNodes(group_name="rack1", nodes=["node1"],
                                                  force=True))
    assert "will split the following instances: mirror.example.com" in cbs.Text()
    assert _Members(ctx, "rack1") == ["node1.example.com"]
    # moving both together un-splits: no force needed
    _Run(ctx, opcodes.OpGroupAssignNodes(group_name="rack1", nodes=["node2"]))
    assert _Members(ctx, "rack1") == ["node1.example.com", "node2.example.com"]
