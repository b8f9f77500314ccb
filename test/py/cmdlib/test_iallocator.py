"""Tests for the iallocator framework (lib/cmdlib/iallocator.py and
iallocator_data.py): the input message as the protocol defines it, the
answers accepted and refused, and gnt-debug iallocator's LU."""

from __future__ import annotations

import json
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import instancehelpers  # noqa: E402
import test_instance_convert as conv  # noqa: E402

from ganeti import constants, errors, opcodes  # noqa: E402
from ganeti.cmdlib import iallocator as ia  # noqa: E402
from ganeti.rpc.encoding import PerNode  # noqa: E402


class AllocRpc(conv.StorageRpc):
    """node_info with per-node storage units; the allocator's answer is
    ``answer`` (a dict, dumped as JSON) or ``answer_text``."""

    def __init__(self):
        super().__init__()
        self.answer = {"success": True, "info": "ok", "result": []}
        self.answer_text = None
        self.runs = []

    def call_node_info(self, nodes, storage, hv_specs):
        self.calls.append(("node_info", storage))
        answer = {}
        for node in nodes:
            units = storage[node] if isinstance(storage, PerNode) else storage
            space = [{"type": u[0], "name": u[1], "storage_free": self.Free(node),
                      "storage_size": self.vg_size.get(node, 102400)} for u in units]
            answer[node] = self._Answer("node_info", ["boot", space, [
                {"memory_free": self.memory_free, "memory_total": 8192, "memory_dom0": 512,
                 "cpu_total": 4}]])
        return answer

    def call_all_instances_info(self, nodes, hvs, hvparams):
        return {node: instancehelpers._Ok({}) for node in nodes}

    def call_iallocator_runner(self, node, name, idata, params):
        self.runs.append((node, name, json.loads(idata), params))
        if "iallocator_runner" in self.fail:
            return instancehelpers._Fail(self.fail["iallocator_runner"])
        text = self.answer_text if self.answer_text is not None else \
            json.dumps(self.answer)
        return instancehelpers._Ok(text)


@pytest.fixture
def ctx(tmp_path):
    context = conv.MakeStorageContext(tmp_path)
    context.rpc = AllocRpc()
    return context


def _AllocReq(**kwargs):
    params = dict(name="new.example.com", memory=512, spindle_use=1,
                  disks=[{"size": 1024, "mode": "rw"}, {"size": 512}],
                  disk_template="drbd", os="noop+default", tags=["a"],
                  nics=[{"mac": "aa:00:00:00:00:01", "ip": None, "bridge": None}],
                  vcpus=2, hypervisor="fake")
    params.update(kwargs)
    return ia.IAReqInstanceAlloc(**params)


def test_input_message_has_the_protocol_fields(ctx):
    conv._Create(ctx, "plain", sizes=(1024,))
    alloc = ia.IAllocator(ctx.cfg, ctx.rpc, _AllocReq())
    data = json.loads(alloc.in_text)
    assert data["version"] == 2
    assert data["cluster_name"] == "cluster.example.com"
    assert set(data) >= {"cluster_tags", "enabled_hypervisors", "ipolicy", "nodegroups",
                         "nodes", "instances", "request"}
    (group,) = data["nodegroups"].values()
    assert set(group) == {"name", "alloc_policy", "networks", "ipolicy", "tags"}
    node = data["nodes"][conv.NODE2]
    for key in ("total_disk", "free_disk", "total_memory", "free_memory", "total_cpus",
                "primary_ip", "secondary_ip", "tags", "master_candidate", "drained",
                "offline", "i_pri_memory", "i_pri_up_memory", "group", "reserved_memory",
                "total_spindles", "free_spindles", "vm_capable"):
        assert key in node, key
    assert node["total_memory"] == 8192 and node["reserved_memory"] == 512
    assert node["secondary_ip"] == "198.51.100.2"
    inst = data["instances"][conv.NAME]
    assert inst["nodes"] == [instancehelpers.MASTER]
    assert inst["disk_template"] == "plain"
    assert inst["disks"][0]["size"] == 1024
    assert inst["disk_space_total"] == 1024
    master = data["nodes"][instancehelpers.MASTER]
    assert master["i_pri_memory"] == inst["memory"]
    assert master["free_disk"] == 102400 - 1024
    request = data["request"]
    assert request["type"] == "allocate"
    assert request["required_nodes"] == 2
    assert request["disk_space_total"] == 1024 + 128 + 512 + 128
    assert request["memory"] == 512 and request["vcpus"] == 2


def test_offline_nodes_carry_no_live_data(ctx):
    node = ctx.cfg.GetNodeInfo(ctx.node3)
    node.offline = True
    ctx.cfg.Update(node)
    data = json.loads(ia.IAllocator(ctx.cfg, ctx.rpc, _AllocReq()).in_text)
    assert data["nodes"][conv.NODE3]["offline"] is True
    assert "free_memory" not in data["nodes"][conv.NODE3]
    assert "free_memory" in data["nodes"][conv.NODE2]


def test_unreachable_node_is_an_error_naming_it(ctx):
    ctx.rpc.fail["node_info"] = "connection refused"
    with pytest.raises(errors.OpPrereqError, match="Can't get data for node"):
        ia.IAllocator(ctx.cfg, ctx.rpc, _AllocReq())


def test_good_allocation_is_accepted(ctx):
    ctx.rpc.answer = {"success": True, "info": "fine",
                      "result": [conv.NODE2, conv.NODE3]}
    alloc = ia.IAllocator(ctx.cfg, ctx.rpc, _AllocReq())
    assert alloc.RunOrFail("hail", "nodes") == [conv.NODE2, conv.NODE3]
    node, name, data, params = ctx.rpc.runs[0]
    assert node == ctx.node1 and name == "hail" and params == {}
    assert data["request"]["name"] == "new.example.com"


def test_old_nodes_key_is_accepted(ctx):
    ctx.rpc.answer = {"success": True, "info": "", "nodes": [conv.NODE2]}
    alloc = ia.IAllocator(ctx.cfg, ctx.rpc, _AllocReq(disk_template="plain"))
    assert alloc.RunOrFail("hail", "nodes") == [conv.NODE2]


@pytest.mark.parametrize("result,match", [
    ([conv.NODE2], "returned 1 node"),
    ([conv.NODE2, "ghost.example.com"], "ghost.example.com.*does not exist"),
    ([conv.NODE2, conv.NODE2], "same node twice"),
    ("node2", "invalid allocation node list"),
])
def test_bad_allocation_results_are_refused(ctx, result, match):
    ctx.rpc.answer = {"success": True, "info": "", "result": result}
    alloc = ia.IAllocator(ctx.cfg, ctx.rpc, _AllocReq())
    with pytest.raises(errors.OpPrereqError, match=match) as info:
        alloc.Run("hail")
    assert info.value.args[1] == errors.ECODE_ENVIRON


def test_drained_node_in_result_is_refused(ctx):
    node = ctx.cfg.GetNodeInfo(ctx.node3)
    node.drained = True
    ctx.cfg.Update(node)
    ctx.rpc.answer = {"success": True, "info": "", "result": [conv.NODE2, conv.NODE3]}
    with pytest.raises(errors.OpPrereqError, match="drained"):
        ia.IAllocator(ctx.cfg, ctx.rpc, _AllocReq()).Run("hail")


@pytest.mark.parametrize("text,match", [
    ("not json", "Can't parse the answer"),
    ("[1, 2]", "not a dictionary"),
    ('{"success": true, "info": ""}', "lacks 'result'"),
    ('{"success": "yes", "info": "", "result": []}', "non-boolean"),
])
def test_malformed_answers_are_refused(ctx, text, match):
    ctx.rpc.answer_text = text
    with pytest.raises(errors.OpPrereqError, match=match):
        ia.IAllocator(ctx.cfg, ctx.rpc, _AllocReq()).Run("hail")


def test_no_solution_names_the_allocator_and_its_reason(ctx):
    ctx.rpc.answer = {"success": False, "info": "No valid allocation solutions",
                      "result": []}
    alloc = ia.IAllocator(ctx.cfg, ctx.rpc, _AllocReq())
    with pytest.raises(errors.OpPrereqError,
                       match="using iallocator 'hail': No valid allocation") as info:
        alloc.RunOrFail("hail", "nodes")
    assert info.value.args[1] == errors.ECODE_NORES


def test_runner_failure_is_reported(ctx):
    ctx.rpc.fail["iallocator_runner"] = "iallocator 'x' not found in the search path"
    with pytest.raises(errors.OpPrereqError, match="not found in the search path"):
        ia.IAllocator(ctx.cfg, ctx.rpc, _AllocReq()).Run("x")


def test_default_params_go_to_the_default_allocator_only(ctx):
    cluster = ctx.cfg.GetClusterInfo()
    cluster.default_iallocator = "hail"
    cluster.default_iallocator_params = {"no-capacity-checks": None}
    ctx.cfg.Update(cluster)
    ctx.rpc.answer = {"success": True, "info": "", "result": [conv.NODE2, conv.NODE3]}
    ia.IAllocator(ctx.cfg, ctx.rpc, _AllocReq()).Run("hail")
    ia.IAllocator(ctx.cfg, ctx.rpc, _AllocReq()).Run("other")
    assert [run[3] for run in ctx.rpc.runs] == [{"no-capacity-checks": None}, {}]
    assert ia.ResolveIallocator(ctx.cfg, ".") == "hail"


def test_shortcut_without_default_is_refused(ctx):
    with pytest.raises(errors.OpPrereqError, match="no default iallocator"):
        ia.ResolveIallocator(ctx.cfg, ".")


def test_relocate_request_and_result(ctx):
    inst = conv._Create(ctx, "drbd", sizes=(1024,))
    req = ia.IAReqRelocate(inst_uuid=inst.uuid, relocate_from_node_uuids=[ctx.node2])
    alloc = ia.IAllocator(ctx.cfg, ctx.rpc, req)
    request = json.loads(alloc.in_text)["request"]
    assert request == {"type": "relocate", "name": conv.NAME, "required_nodes": 1,
                       "disk_space_total": 1024 + 128, "relocate_from": [conv.NODE2]}
    ctx.rpc.answer = {"success": True, "info": "", "result": [conv.NODE3]}
    assert alloc.RunOrFail("hail", "a new secondary") == [conv.NODE3]
    ctx.rpc.answer = {"success": True, "info": "", "result": [conv.NODE2]}
    with pytest.raises(errors.OpPrereqError, match="must leave"):
        ia.IAllocator(ctx.cfg, ctx.rpc, req).Run("hail")


def test_relocate_of_plain_instance_is_refused(ctx):
    inst = conv._Create(ctx, "plain", sizes=(1024,))
    with pytest.raises(errors.OpPrereqError, match="non-mirrored"):
        ia.IAllocator(ctx.cfg, ctx.rpc, ia.IAReqRelocate(
            inst_uuid=inst.uuid, relocate_from_node_uuids=[ctx.node1]))


def test_evacuation_results(ctx):
    conv._Create(ctx, "drbd", sizes=(1024,))
    req = ia.IAReqNodeEvac(instances=[conv.NAME], evac_mode=constants.NODE_EVAC_SEC)
    good = [[[conv.NAME, "default", [instancehelpers.MASTER, conv.NODE3]]], [],
            [[{"OP_ID": "OP_INSTANCE_REPLACE_DISKS", "instance_name": conv.NAME,
               "mode": "replace_new_secondary", "remote_node": conv.NODE3}]]]
    ctx.rpc.answer = {"success": True, "info": "", "result": good}
    alloc = ia.IAllocator(ctx.cfg, ctx.rpc, req)
    assert json.loads(alloc.in_text)["request"] == {
        "type": "node-evacuate", "instances": [conv.NAME], "evac_mode": "secondary-only"}
    assert alloc.RunOrFail("hail", "evacuation") == good
    ctx.rpc.answer = {"success": True, "info": "", "result": [[], [], [[{"x": 1}]]]}
    with pytest.raises(errors.OpPrereqError, match="invalid evacuation result"):
        ia.IAllocator(ctx.cfg, ctx.rpc, req).Run("hail")


def test_multi_allocation_results(ctx):
    req = ia.IAReqMultiInstanceAlloc(instances=[
        _AllocReq(name="a.example.com", disk_template="plain"),
        _AllocReq(name="b.example.com", disk_template="plain")])
    alloc = ia.IAllocator(ctx.cfg, ctx.rpc, req)
    request = json.loads(alloc.in_text)["request"]
    assert request["type"] == "multi-allocate"
    assert [r["name"] for r in request["instances"]] == ["a.example.com", "b.example.com"]
    ctx.rpc.answer = {"success": True, "info": "",
                      "result": [[["a.example.com", [conv.NODE2]]], ["b.example.com"]]}
    assert alloc.RunOrFail("hail", "nodes")[1] == ["b.example.com"]
    ctx.rpc.answer = {"success": True, "info": "",
                      "result": [[["c.example.com", [conv.NODE2]]], []]}
    with pytest.raises(errors.OpPrereqError, match="invalid allocation"):
        ia.IAllocator(ctx.cfg, ctx.rpc, req).Run("hail")


def test_debug_iallocator_in_and_out(ctx):
    op = opcodes.OpTestAllocator(direction="in", mode="allocate", name="t.example.com",
                                 memory=128, disks=[{"size": 1024, "mode": "rw"}],
                                 disk_template="plain", os="noop+default", vcpus=1,
                                 nics=[{"mac": "aa:00:00:00:00:02"}])
    text, _ = conv._Run(ctx, op)
    assert json.loads(text)["request"]["name"] == "t.example.com"
    assert not ctx.rpc.runs
    ctx.rpc.answer = {"success": True, "info": "x", "result": ["whatever"]}
    op = opcodes.OpTestAllocator(direction="out", mode="allocate", name="t.example.com",
                                 memory=128, disks=[{"size": 1024, "mode": "rw"}],
                                 disk_template="plain", os="noop+default", vcpus=1,
                                 iallocator="hail")
    text, _ = conv._Run(ctx, op)
    # "out" shows the answer as given, without judging it
    assert json.loads(text)["result"] == ["whatever"]


def test_debug_iallocator_bad_input(ctx):
    op = opcodes.OpTestAllocator(direction="in", mode="allocate", name="t.example.com",
                                 disk_template="plain")
    with pytest.raises(errors.OpPrereqError, match="Missing attribute.*memory"):
        conv._Run(ctx, op)
    op = opcodes.OpTestAllocator(direction="in", mode="relocate", name="nosuch.example.com")
    with pytest.raises(errors.OpPrereqError, match="nosuch"):
        conv._Run(ctx, op)
    op = opcodes.OpTestAllocator(direction="out", mode="node-evacuate", name="x",
                                 instances=[], evac_mode="all")
    with pytest.raises(errors.OpPrereqError, match="allocator name"):
        conv._Run(ctx, op)
