"""Tests for failover and migrate (lib/cmdlib/instance_migration.py) on a
two-node configuration, through mcpu, with a fake RPC runner that keeps
which node runs which instance and how much memory each node has free."""

from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import instancehelpers  # noqa: E402

from ganeti import constants, errors, objects, opcodes  # noqa: E402

NAME = "inst1.example.com"
NODE2 = "node2.example.com"


class MigrationRpc(instancehelpers.FakeRpc):
    """Per-node instances ("where") and free memory; migration steps recorded."""

    def __init__(self):
        super().__init__()
        self.where: dict[str, str] = {}
        self.incoming: dict[str, str] = {}
        self.ips: dict[str, str] = {}

    def call_instance_info(self, nodes, name, hvname, hvparams):
        return {node: self._Answer("instance_info",
                                {"memory": 128, "state": "running"}
                                if self.where.get(name) == node else {})
                for node in nodes}

    def call_instance_list(self, nodes, hvs, hvparams):
        return {node: self._Answer("instance_list",
                                [n for n, w in self.where.items() if w == node])
                for node in nodes}

    def call_instance_start(self, node, inst, paused, reason):
        self.calls.append(("instance_start", node, inst["name"]))
        result = self._Answer("instance_start")
        if not result.fail_msg:
            self.where[inst["name"]] = node
        return result

    def call_instance_shutdown(self, node, inst, timeout, reason):
        self.calls.append(("instance_shutdown", node, inst["name"], timeout))
        result = self._Answer("instance_shutdown")
        if not result.fail_msg and self.where.get(inst["name"]) == node:
            del self.where[inst["name"]]
        return result

    def call_migration_info(self, node, inst):
        self.calls.append(("migration_info", node))
        return self._Answer("migration_info", "state-of-" + inst["name"])

    def call_accept_instance(self, node, inst, info, target_ip):
        self.calls.append(("accept_instance", node, info, target_ip))
        result = self._Answer("accept_instance")
        if not result.fail_msg:
            self.incoming[inst["name"]] = node
        return result

    def call_instance_migrate(self, node, cluster, inst, target_ip, live):
        self.calls.append(("instance_migrate", node, target_ip, live))
        return self._Answer("instance_migrate")

    def call_instance_get_migration_status(self, node, inst):
        self.calls.append(("instance_get_migration_status", node))
        return self._Answer("instance_get_migration_status",
                         {"status": self.fail.get("status", constants.HV_MIGRATION_COMPLETED)})

    def call_instance_finalize_migration_src(self, node, inst, success, live):
        self.calls.append(("finalize_src", node, success))
        if success and self.where.get(inst["name"]) == node:
            del self.where[inst["name"]]
        return self._Answer("finalize_src")

    def call_instance_finalize_migration_dst(self, node, inst, info, success):
        self.calls.append(("finalize_dst", node, success))
        if self.incoming.pop(inst["name"], None) == node and success:
            self.where[inst["name"]] = node
        return self._Answer("finalize_dst")


@pytest.fixture
def ctx(tmp_path):
    context = instancehelpers.MakeContext(tmp_path)
    cfg = context.cfg
    node2 = objects.Node(name=NODE2, primary_ip="192.0.2.2", secondary_ip="198.51.100.2",
                         group=cfg.LookupNodeGroup(None), uuid=objects.GenerateUUID())
    node2.UpgradeConfig()
    cfg.AddNode(node2, "test")
    cluster = cfg.GetClusterInfo()
    cluster.enabled_disk_templates = [constants.DT_FILE, constants.DT_SHARED_FILE,
                                      constants.DT_DISKLESS]
    cfg.Update(cluster)
    context.glm = instancehelpers.masterd.BuildLockManager(cfg)
    context.rpc = MigrationRpc()
    context.node1 = cfg.GetMasterNode()
    context.node2 = node2.uuid
    return context


_Run = instancehelpers.Run


def _Create(ctx, template="sharedfile", **kwargs):
    disks = [{"size": 1024}] if template != "diskless" else []
    _Run(ctx, instancehelpers.CreateOp(disk_template=template, disks=disks, **kwargs))
    return ctx.cfg.GetInstanceInfoByName(NAME)


def _Refused(ctx, op, exc, match, code=None):
    serial = ctx.cfg.GetConfigSerialNo()
    with pytest.raises(exc, match=match) as info:
        _Run(ctx, op)
    if code is not None:
        assert info.value.args[1] == code
    assert ctx.cfg.GetConfigSerialNo() == serial
    return info.value


def _Migrate(**kwargs):
    kwargs.setdefault("instance_name", NAME)
    kwargs.setdefault("target_node", NODE2)
    return opcodes.OpInstanceMigrate(**kwargs)


def _Failover(**kwargs):
    kwargs.setdefault("instance_name", NAME)
    kwargs.setdefault("target_node", NODE2)
    return opcodes.OpInstanceFailover(**kwargs)


@pytest.mark.parametrize("template", ["sharedfile", "diskless"])
@pytest.mark.parametrize("mode,live", [("live", True), ("non-live", False)])
def test_migrate_and_back(ctx, template, mode, live):
    inst = _Create(ctx, template)
    assert ctx.rpc.where[NAME] == ctx.node1
    ctx.rpc.calls.clear()
    _Run(ctx, _Migrate(mode=mode))
    names = [c[0] for c in ctx.rpc.calls if not c[0].startswith(("node_info", "hooks"))]
    steps = [n for n in names if n in ("migration_info", "accept_instance",
                                       "instance_migrate", "instance_get_migration_status",
                                       "finalize_src", "finalize_dst")]
    assert steps == ["migration_info", "accept_instance", "instance_migrate",
                     "instance_get_migration_status", "finalize_src", "finalize_dst"]
    # the target is reached on its secondary IP, as in Ganeti
    assert ("instance_migrate", ctx.node1, "198.51.100.2", live) in ctx.rpc.calls
    assert ctx.rpc.where[NAME] == ctx.node2
    inst = ctx.cfg.GetInstanceInfo(inst.uuid)
    assert inst.primary_node == ctx.node2
    assert ctx.cfg.GetInstanceNodes(inst.uuid) == (ctx.node2,)
    assert all(d.nodes == [ctx.node2] for d in ctx.cfg.GetInstanceDisks(inst.uuid))
    # and back, with the old live flag
    _Run(ctx, _Migrate(target_node=instancehelpers.MASTER, live=live))
    assert ctx.rpc.where[NAME] == ctx.node1
    assert ctx.cfg.GetInstanceInfo(inst.uuid).primary_node == ctx.node1


def test_migration_mode_defaults_to_hypervisor(ctx):
    _Create(ctx, "diskless")
    _Run(ctx, _Migrate())
    live = [c for c in ctx.rpc.calls if c[0] == "instance_migrate"][0][3]
    hv_mode = ctx.cfg.GetClusterInfo().FillHV(
        ctx.cfg.GetInstanceInfoByName(NAME))[constants.HV_MIGRATION_MODE]
    assert live == (hv_mode == constants.HT_MIGRATION_LIVE)


@pytest.mark.parametrize("template", ["sharedfile", "diskless"])
def test_failover_running_and_stopped(ctx, template):
    inst = _Create(ctx, template)
    _Run(ctx, _Failover(shutdown_timeout=5))
    assert ("instance_shutdown", ctx.node1, NAME, 5) in ctx.rpc.calls
    assert ("instance_start", ctx.node2, NAME) in ctx.rpc.calls
    assert ctx.rpc.where[NAME] == ctx.node2
    assert ctx.cfg.GetInstanceInfo(inst.uuid).primary_node == ctx.node2
    _Run(ctx, opcodes.OpInstanceShutdown(instance_name=NAME))
    ctx.rpc.calls.clear()
    _Run(ctx, _Failover(target_node=instancehelpers.MASTER))
    assert ctx.cfg.GetInstanceInfo(inst.uuid).primary_node == ctx.node1
    # a stopped instance stays stopped
    assert not any(c[0] == "instance_start" for c in ctx.rpc.calls)
    assert NAME not in ctx.rpc.where


def test_file_template_refused(ctx):
    _Create(ctx, "file")
    for op, verb in ((_Failover(), "failovers"), (_Migrate(), "migrations")):
        _Refused(ctx, op, errors.OpPrereqError,
                 f"Instance's disk layout 'file' does not allow {verb}", errors.ECODE_STATE)


def test_target_refusals(ctx):
    inst = _Create(ctx, "diskless")
    _Refused(ctx, _Migrate(target_node=None), errors.OpPrereqError, "target node must be"
             " given", errors.ECODE_INVAL)
    _Refused(ctx, _Migrate(iallocator="hail"), errors.OpPrereqError,
             "either an iallocator", errors.ECODE_INVAL)
    _Refused(ctx, _Migrate(target_node=None, iallocator="hail", cleanup=True),
             errors.OpPrereqError, "A cleanup needs the node", errors.ECODE_INVAL)
    _Refused(ctx, _Migrate(target_node=instancehelpers.MASTER), errors.OpPrereqError,
             "to its primary", errors.ECODE_STATE)
    _Refused(ctx, _Migrate(target_node="node9"), errors.OpPrereqError, "not known")
    node2 = ctx.cfg.GetNodeInfo(ctx.node2)
    for flag, text in (("offline", "offline"), ("drained", "drained"),
                       ("vm_capable", "non-vm_capable")):
        node2 = ctx.cfg.GetNodeInfo(ctx.node2)
        setattr(node2, flag, flag == "offline" or flag == "drained")
        ctx.cfg.Update(node2)
        _Refused(ctx, _Migrate(), errors.OpPrereqError, f"Can't use {text} node {NODE2}",
                 errors.ECODE_STATE)
        _Refused(ctx, _Failover(), errors.OpPrereqError, f"Can't use {text} node {NODE2}")
        node2 = ctx.cfg.GetNodeInfo(ctx.node2)
        setattr(node2, flag, flag == "vm_capable")
        ctx.cfg.Update(node2)
    ctx.rpc.node_memory_free[ctx.node2] = 64
    err = _Refused(ctx, _Migrate(), errors.OpPrereqError, f"Not enough memory on node"
                   f" {NODE2} for migrating instance {NAME}", errors.ECODE_NORES)
    assert "available 64 MiB" in str(err)
    _Refused(ctx, _Failover(), errors.OpPrereqError, "Not enough memory")
    assert ctx.rpc.where[NAME] == ctx.node1
    assert ctx.cfg.GetInstanceInfo(inst.uuid).primary_node == ctx.node1


def test_migrate_stopped_instance(ctx):
    inst = _Create(ctx, "sharedfile", start=False)
    _Refused(ctx, _Migrate(), errors.OpPrereqError, "Can't migrate, please use failover",
             errors.ECODE_STATE)
    # with allow_failover it is failed over (and not started)
    _Run(ctx, _Migrate(allow_failover=True))
    assert ctx.cfg.GetInstanceInfo(inst.uuid).primary_node == ctx.node2
    assert NAME not in ctx.rpc.where


@pytest.mark.parametrize("step", ["accept_instance", "instance_migrate", "status"])
def test_migration_failure_rolls_back(ctx, step):
    inst = _Create(ctx, "sharedfile")
    ctx.rpc.fail[step] = "failed on purpose" if step != "status" \
        else constants.HV_MIGRATION_FAILED
    with pytest.raises(errors.OpExecError, match=f"Could not .*instance {NAME}"):
        _Run(ctx, _Migrate())
    assert ctx.cfg.GetInstanceInfo(inst.uuid).primary_node == ctx.node1
    assert ctx.rpc.where[NAME] == ctx.node1
    assert ("finalize_dst", ctx.node2, False) in ctx.rpc.calls
    assert ("finalize_src", ctx.node1, False) in ctx.rpc.calls
    assert not ctx.rpc.incoming


def test_failover_shutdown_failure(ctx):
    inst = _Create(ctx, "diskless")
    ctx.rpc.fail["instance_shutdown"] = "hypervisor stuck"
    with pytest.raises(errors.OpExecError, match="Could not shutdown instance.*stuck"):
        _Run(ctx, _Failover())
    assert ctx.cfg.GetInstanceInfo(inst.uuid).primary_node == ctx.node1
    # ignoring consistency proceeds (the source is presumed dead)
    _Run(ctx, _Failover(ignore_consistency=True))
    assert ctx.cfg.GetInstanceInfo(inst.uuid).primary_node == ctx.node2


def test_cleanup(ctx):
    inst = _Create(ctx, "diskless")
    # a migration that moved the instance but died before the config changed
    ctx.rpc.where[NAME] = ctx.node2
    _Run(ctx, _Migrate(cleanup=True))
    assert ctx.cfg.GetInstanceInfo(inst.uuid).primary_node == ctx.node2
    # confirmed where it is: nothing changes
    _Run(ctx, _Migrate(cleanup=True, target_node=instancehelpers.MASTER))
    assert ctx.cfg.GetInstanceInfo(inst.uuid).primary_node == ctx.node2
    del ctx.rpc.where[NAME]
    with pytest.raises(errors.OpExecError, match="runs neither on"):
        _Run(ctx, _Migrate(cleanup=True, target_node=instancehelpers.MASTER))


def test_hooks_env(ctx):
    _Create(ctx, "diskless")
    from ganeti.cmdlib import instance_migration as im
    lu_env = {}
    orig = im.LUInstanceMigrate.BuildHooksEnv

    def _Capture(self):
        env = orig(self)
        lu_env.update(env)
        return env

    im.LUInstanceMigrate.BuildHooksEnv = _Capture
    try:
        _Run(ctx, _Migrate(mode="non-live"))
    finally:
        im.LUInstanceMigrate.BuildHooksEnv = orig
    assert lu_env["OLD_PRIMARY"] == instancehelpers.MASTER
    assert lu_env["NEW_PRIMARY"] == NODE2
    assert lu_env["MIGRATE_LIVE"] is False
    assert lu_env["INSTANCE_NAME"] == NAME
