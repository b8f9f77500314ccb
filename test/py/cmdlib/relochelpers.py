"""Fakes for the tests of the relocation side of the iallocator framework
(test_iallocator_relocation.py, test_instance_change_group.py,
test_group_evacuate.py): RPC runners that also answer the allocator's
calls, as test_iallocator.AllocRpc does, and configurations with one or
two node groups.

The mirror configuration is the one of test_instance_replace.py: node1
(master), node2, node3 in the default group; with ``groups=2`` also
node4 and node5 in group "rack2".
"""

from __future__ import annotations

import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import instancehelpers  # noqa: E402
from test_instance_migration import MigrationRpc  # noqa: E402
from test_instance_replace import N1, N2, N3, MirrorRpc  # noqa: E402

from ganeti import constants, mcpu, objects  # noqa: E402
from ganeti.rpc.encoding import PerNode  # noqa: E402

N4, N5 = "node4.example.com", "node5.example.com"
GROUP2 = "rack2"


class AllocatorCalls:
    """Mixin: the live data calls of the allocator's input and the
    allocator itself. ``answer`` is the allocator's answer (a dict, or a
    function of the input message returning one); ``runs`` records
    (allocator name, input message, parameters)."""

    answer: object = None
    runs: list

    def call_node_info(self, nodes, storage, hv_specs):
        self.calls.append(("node_info", storage))
        answer = {}
        for node in nodes:
            units = storage[node] if isinstance(storage, PerNode) else storage
            space = [{"type": u[0], "name": u[1], "storage_free": self.storage_free,
                      "storage_size": 102400} for u in units]
            answer[node] = self._Answer("node_info", ["boot", space, [
                {"memory_free": self.node_memory_free.get(node, self.memory_free),
                 "memory_total": 8192, "memory_dom0": 512, "cpu_total": 4}]])
        return answer

    def call_all_instances_info(self, nodes, hvs, hvparams):
        return {node: instancehelpers._Ok({}) for node in nodes}

    def call_iallocator_runner(self, node, name, idata, params):
        data = json.loads(idata)
        if not hasattr(self, "runs"):
            self.runs = []
        self.runs.append((name, data, params))
        if "iallocator_runner" in self.fail:
            return instancehelpers._Fail(self.fail["iallocator_runner"])
        answer = self.answer(data) if callable(self.answer) else self.answer
        return instancehelpers._Ok(json.dumps(answer))


class RelocMirrorRpc(AllocatorCalls, MirrorRpc):
    """test_instance_replace's DRBD fake with an allocator."""


class RelocMigrationRpc(AllocatorCalls, MigrationRpc):
    """test_instance_migration's fake with an allocator."""


class Callbacks(mcpu.OpExecCbBase):
    """Feedback and the jobs an LU submits (IDs from 100)."""

    def __init__(self):
        self.feedback = []
        self.jobs = []

    def Feedback(self, *args):
        self.feedback.append(str(args[-1]))

    def SubmitManyJobs(self, jobs):
        self.jobs.extend(jobs)
        return [(True, 100 + idx) for idx in range(len(jobs))]


def Run(ctx, op):
    """Run ``op`` through mcpu; (result, callbacks)."""
    cbs = Callbacks()
    return mcpu.Processor(ctx, ec_id=1).ExecOpCode(op, cbs), cbs


def Answer(result, success=True, info="fine"):
    """An allocator's answer."""
    return {"success": success, "info": info, "result": result}


def _AddNodes(cfg, group, names_ips):
    for name, ip in names_ips:
        node = objects.Node(name=name, primary_ip=ip, group=group,
                            uuid=objects.GenerateUUID())
        node.UpgradeConfig()
        cfg.AddNode(node, "test")


def AddGroup(ctx, name, nodes):
    """A node group ``name`` holding the new nodes ``nodes`` [(name, ip)]."""
    cfg = ctx.cfg
    cfg.AddNodeGroup(objects.NodeGroup(name=name, members=[]), "test")
    uuid = cfg.LookupNodeGroup(name)
    _AddNodes(cfg, uuid, nodes)
    ctx.glm = instancehelpers.masterd.BuildLockManager(cfg)
    return uuid


def MirrorContext(tmp_path, groups=1):
    """Three nodes (drbd, plain, sharedfile, diskless enabled) with the
    RelocMirrorRpc; with ``groups=2`` also group rack2 with node4, node5."""
    context = instancehelpers.MakeContext(tmp_path)
    cfg = context.cfg
    _AddNodes(cfg, cfg.LookupNodeGroup(None), ((N2, "192.0.2.2"), (N3, "192.0.2.3")))
    cluster = cfg.GetClusterInfo()
    cluster.enabled_disk_templates = [constants.DT_DRBD8, constants.DT_PLAIN,
                                      constants.DT_SHARED_FILE, constants.DT_DISKLESS]
    cluster.volume_group_name = "xenvg"
    cfg.Update(cluster)
    context.rpc = RelocMirrorRpc(cfg)
    context.rpc.answer = Answer([])
    context.glm = instancehelpers.masterd.BuildLockManager(cfg)
    context.group1 = cfg.LookupNodeGroup(None)
    if groups == 2:
        context.group2 = AddGroup(context, GROUP2, ((N4, "192.0.2.4"), (N5, "192.0.2.5")))
    context.n1, context.n2, context.n3 = (cfg.GetNodeInfoByName(n).uuid
                                          for n in (N1, N2, N3))
    return context


def SetDefaultIallocator(ctx, name="hail"):
    cluster = ctx.cfg.GetClusterInfo()
    cluster.default_iallocator = name
    ctx.cfg.Update(cluster)


def AddSharedInstance(ctx, name, pnode, template=constants.DT_SHARED_FILE, up=True):
    """An instance of an externally mirrored template (its disk on no fake
    node)."""
    cfg = ctx.cfg
    cfg.AddInstance(objects.Instance(
        name=name, primary_node=pnode, os="noop+default", hypervisor=constants.HT_FAKE,
        nics=[], beparams={}, hvparams={}, osparams={},
        admin_state=constants.ADMINST_UP if up else constants.ADMINST_DOWN), "job")
    uuid = cfg.GetInstanceInfoByName(name).uuid
    if template != constants.DT_DISKLESS:
        cfg.AddInstanceDisk(uuid, objects.Disk(
            dev_type=template, size=1024,
            logical_id=("loop", f"/srv/ganeti/shared/{name}/disk0")))
    ctx.glm = instancehelpers.masterd.BuildLockManager(cfg)
    return cfg.GetInstanceInfo(uuid)


def MigrationContext(tmp_path):
    """node1 (master), node2, node3 in one group (sharedfile, diskless
    enabled) with the RelocMigrationRpc."""
    context = instancehelpers.MakeContext(tmp_path)
    cfg = context.cfg
    for idx, name in ((2, N2), (3, N3)):
        node = objects.Node(name=name, primary_ip=f"192.0.2.{idx}",
                            secondary_ip=f"198.51.100.{idx}",
                            group=cfg.LookupNodeGroup(None), uuid=objects.GenerateUUID())
        node.UpgradeConfig()
        cfg.AddNode(node, "test")
    cluster = cfg.GetClusterInfo()
    cluster.enabled_disk_templates = [constants.DT_SHARED_FILE, constants.DT_DISKLESS,
                                      constants.DT_DRBD8]
    cluster.volume_group_name = "xenvg"
    cfg.Update(cluster)
    context.rpc = RelocMigrationRpc()
    context.rpc.answer = Answer([])
    context.glm = instancehelpers.masterd.BuildLockManager(cfg)
    context.n1, context.n2, context.n3 = (cfg.GetNodeInfoByName(n).uuid
                                          for n in (N1, N2, N3))
    return context
