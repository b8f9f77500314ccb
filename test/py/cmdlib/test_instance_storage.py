"""Tests for grow-disk, activate-disks, deactivate-disks and recreate-disks
(lib/cmdlib/instance_storage.py), run through mcpu with a recording fake
RPC runner that also knows which disk images exist."""

from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import instancehelpers  # noqa: E402

from ganeti import constants, errors, objects, opcodes  # noqa: E402
from ganeti.rpc.client import RpcResult  # noqa: E402

NAME = "inst1.example.com"


class DiskRpc(instancehelpers.FakeRpc):
    """FakeRpc whose nodes keep image sizes (disk uuid -> MiB) and links."""

    def __init__(self):
        super().__init__()
        self.images: dict[str, int] = {}
        self.active: set[str] = set()

    def call_blockdev_create(self, node, disk, size, *args):
        self.calls.append(("blockdev_create", disk["uuid"], size))
        result = self._Answer("blockdev_create", disk["logical_id"])
        if not result.fail_msg:
            self.images[disk["uuid"]] = size
        return result

    def call_blockdev_remove(self, node, disk):
        self.calls.append(("blockdev_remove", disk["uuid"]))
        self.images.pop(disk["uuid"], None)
        return self._Answer("blockdev_remove")

    def call_blockdev_find(self, node, disk):
        self.calls.append(("blockdev_find", disk["uuid"]))
        if disk["uuid"] not in self.images:
            return self._Answer("blockdev_find", None)
        return self._Answer("blockdev_find", {"dev_path": f"/img/{disk['uuid']}"})

    def call_blockdev_assemble(self, node, disk, inst, on_primary, idx):
        self.calls.append(("blockdev_assemble", disk["uuid"]))
        if disk["uuid"] not in self.images:
            return RpcResult(data=[False, f"File disk {disk['uuid']} not found"])
        result = self._Answer("blockdev_assemble", [f"/links/{inst['name']}:{idx}", None])
        if not result.fail_msg:
            self.active.add(disk["uuid"])
        return result

    def call_blockdev_shutdown(self, node, disk):
        self.calls.append(("blockdev_shutdown", disk["uuid"]))
        self.active.discard(disk["uuid"])
        return self._Answer("blockdev_shutdown")

    def call_blockdev_grow(self, node, disk, amount, dryrun, backingstore, es):
        self.calls.append(("blockdev_grow", disk["uuid"], amount, dryrun, backingstore))
        result = self._Answer("blockdev_grow_dry" if dryrun else "blockdev_grow")
        if not result.fail_msg and not dryrun and backingstore:
            self.images[disk["uuid"]] += amount
        return result


@pytest.fixture
def ctx(tmp_path):
    context = instancehelpers.MakeContext(tmp_path)
    context.rpc = DiskRpc()
    return context


_Run = instancehelpers.Run


def _Create(ctx, template="file", sizes=(1024,), **kwargs):
    disks = [{"size": size} for size in sizes] if template != "diskless" else []
    _Run(ctx, instancehelpers.CreateOp(disk_template=template, disks=disks, **kwargs))
    return ctx.cfg.GetInstanceInfoByName(NAME)


def _Disks(ctx):
    return ctx.cfg.GetInstanceDisks(ctx.cfg.GetInstanceInfoByName(NAME).uuid)


def _RefusedUnchanged(ctx, op, exc, match, code=None):
    serial = ctx.cfg.GetConfigSerialNo()
    with pytest.raises(exc, match=match) as info:
        _Run(ctx, op)
    if code is not None:
        assert info.value.args[1] == code
    assert ctx.cfg.GetConfigSerialNo() == serial


# --- grow-disk ------------------------------------------------------------------------


def test_grow_relative_and_absolute(ctx):
    _Create(ctx, sizes=(1024, 2048))
    disk1 = _Disks(ctx)[1]
    ctx.rpc.calls.clear()
    _, cbs = _Run(ctx, opcodes.OpInstanceGrowDisk(instance_name="inst1", disk=1, amount=256))
    assert _Disks(ctx)[1].size == 2304 and _Disks(ctx)[0].size == 1024
    assert ctx.rpc.images[disk1.uuid] == 2304
    grows = [c for c in ctx.rpc.calls if c[0] == "blockdev_grow"]
    # the dry run comes first, then the backing store, then the logical device
    assert [(c[3], c[4]) for c in grows] == [(True, True), (False, True), (False, False)]
    assert any("Growing disk 1" in str(msg) for msg in cbs.feedback)
    _Run(ctx, opcodes.OpInstanceGrowDisk(instance_name=NAME, disk=1, amount=4096,
                                         absolute=True))
    assert _Disks(ctx)[1].size == 4096 and ctx.rpc.images[disk1.uuid] == 4096


def test_grow_refusals(ctx):
    _Create(ctx, sizes=(1024,))
    _RefusedUnchanged(ctx, opcodes.OpInstanceGrowDisk(instance_name=NAME, disk=0, amount=512,
                                                      absolute=True),
                      errors.OpPrereqError, r"Requested size \(512M\) is smaller than the"
                      r" current size of disk 0 \(1.0G\)", errors.ECODE_STATE)
    _RefusedUnchanged(ctx, opcodes.OpInstanceGrowDisk(instance_name=NAME, disk=3, amount=1),
                      errors.OpPrereqError, "Invalid disk index '3'", errors.ECODE_INVAL)
    _RefusedUnchanged(ctx, opcodes.OpInstanceGrowDisk(instance_name=NAME, disk=0,
                                                      amount=2 * 1024 * 1024),
                      errors.OpPrereqError, r"disk 0 size value 2098176 is not in range"
                      r" \[1024, 1048576\]", errors.ECODE_INVAL)
    ctx.rpc.storage_free = 100
    _RefusedUnchanged(ctx, opcodes.OpInstanceGrowDisk(instance_name=NAME, disk=0, amount=512),
                      errors.OpPrereqError, "Not enough disk space", errors.ECODE_NORES)
    ctx.rpc.storage_free = 10240
    ctx.rpc.fail["blockdev_grow_dry"] = "no room on the node"
    _RefusedUnchanged(ctx, opcodes.OpInstanceGrowDisk(instance_name=NAME, disk=0, amount=512),
                      errors.OpExecError, "Dry-run grow request failed.*no room")
    assert _Disks(ctx)[0].size == 1024
    assert not any(c[0] == "blockdev_grow" and not c[3] for c in ctx.rpc.calls)
    del ctx.rpc.fail["blockdev_grow_dry"]
    ctx.rpc.storage_free = 4 * 1024 * 1024
    _Run(ctx, opcodes.OpInstanceGrowDisk(instance_name=NAME, disk=0,
                                         amount=2 * 1024 * 1024, ignore_ipolicy=True))
    assert _Disks(ctx)[0].size == 1024 + 2 * 1024 * 1024


def test_grow_diskless_refused(ctx):
    _Create(ctx, template="diskless")
    _RefusedUnchanged(ctx, opcodes.OpInstanceGrowDisk(instance_name=NAME, disk=0, amount=1),
                      errors.OpPrereqError, "'diskless' does not support growing",
                      errors.ECODE_INVAL)


# --- activate / deactivate --------------------------------------------------------------------


def test_activate_deactivate(ctx):
    inst = _Create(ctx, sizes=(1024, 2048), start=False)
    disks = _Disks(ctx)
    result, _ = _Run(ctx, opcodes.OpInstanceActivateDisks(instance_name="inst1"))
    assert result == [(instancehelpers.MASTER, "disk/0", f"/img/{disks[0].uuid}"),
                      (instancehelpers.MASTER, "disk/1", f"/img/{disks[1].uuid}")]
    assert ctx.cfg.GetInstanceInfo(inst.uuid).disks_active
    assert ctx.rpc.active == {d.uuid for d in disks}
    _Run(ctx, opcodes.OpInstanceDeactivateDisks(instance_name=NAME))
    assert not ctx.cfg.GetInstanceInfo(inst.uuid).disks_active
    assert not ctx.rpc.active


def test_activate_failure_undoes(ctx):
    inst = _Create(ctx, sizes=(1024, 2048), start=False)
    disks = _Disks(ctx)
    del ctx.rpc.images[disks[1].uuid]
    with pytest.raises(errors.OpExecError, match="Could not prepare block device disk/1.*not"
                       " found"):
        _Run(ctx, opcodes.OpInstanceActivateDisks(instance_name=NAME))
    assert not ctx.rpc.active
    assert not ctx.cfg.GetInstanceInfo(inst.uuid).disks_active


def test_deactivate_running_refused_unless_forced(ctx):
    inst = _Create(ctx)
    _RefusedUnchanged(ctx, opcodes.OpInstanceDeactivateDisks(instance_name=NAME),
                      errors.OpPrereqError, "is marked to be up, cannot shutdown disks",
                      errors.ECODE_STATE)
    # marked down, but the hypervisor still runs it
    ctx.cfg.MarkInstanceDown(inst.uuid)
    _RefusedUnchanged(ctx, opcodes.OpInstanceDeactivateDisks(instance_name=NAME),
                      errors.OpPrereqError, "is running, cannot shutdown disks")
    _Run(ctx, opcodes.OpInstanceDeactivateDisks(instance_name=NAME, force=True))
    assert not ctx.cfg.GetInstanceInfo(inst.uuid).disks_active


# --- recreate-disks -----------------------------------------------------------------------------


def test_recreate_missing_disk(ctx):
    _Create(ctx, sizes=(1024, 2048), start=False)
    disks = _Disks(ctx)
    del ctx.rpc.images[disks[1].uuid]
    # disk 0 exists: recreating all of them is refused, nothing changes
    _RefusedUnchanged(ctx, opcodes.OpInstanceRecreateDisks(instance_name=NAME),
                      errors.OpPrereqError, "Disk 0 .* already exists", errors.ECODE_STATE)
    assert not any(c[0] == "blockdev_create" for c in ctx.rpc.calls[-3:])
    ctx.rpc.calls.clear()
    _Run(ctx, opcodes.OpInstanceRecreateDisks(instance_name=NAME,
                                              disks=[[1, {"size": 3072}]]))
    assert [c for c in ctx.rpc.calls if c[0] == "blockdev_create"] == \
        [("blockdev_create", disks[1].uuid, 3072)]
    assert _Disks(ctx)[1].size == 3072 and ctx.rpc.images[disks[1].uuid] == 3072


def test_recreate_refusals(ctx):
    inst = _Create(ctx, sizes=(1024,))
    _RefusedUnchanged(ctx, opcodes.OpInstanceRecreateDisks(instance_name=NAME),
                      errors.OpPrereqError, "marked to be up, cannot recreate disks",
                      errors.ECODE_STATE)
    ctx.cfg.MarkInstanceDown(inst.uuid)
    _RefusedUnchanged(ctx, opcodes.OpInstanceRecreateDisks(instance_name=NAME),
                      errors.OpPrereqError, "is running, cannot recreate disks",
                      errors.ECODE_STATE)
    _RefusedUnchanged(ctx, opcodes.OpInstanceRecreateDisks(instance_name=NAME, disks=[0, 0]),
                      errors.OpPrereqError, "more than once")
    _RefusedUnchanged(ctx, opcodes.OpInstanceRecreateDisks(
        instance_name=NAME, disks=[[0, {"name": "x"}]]), errors.OpPrereqError,
        "unmodifiable parameter.*name")
    _RefusedUnchanged(ctx, opcodes.OpInstanceRecreateDisks(instance_name=NAME,
                                                           iallocator="hail",
                                                           nodes=["node1"]),
                      errors.OpPrereqError, "either the iallocator or the new nodes")
    _Run(ctx, opcodes.OpInstanceShutdown(instance_name=NAME))
    _RefusedUnchanged(ctx, opcodes.OpInstanceRecreateDisks(instance_name=NAME, disks=[4]),
                      errors.OpPrereqError, "Invalid disk index '4'")
    _RefusedUnchanged(ctx, opcodes.OpInstanceRecreateDisks(instance_name=NAME,
                                                           nodes=["nosuchnode"]),
                      errors.OpPrereqError, "not known")


def test_recreate_on_new_node(ctx):
    node2 = objects.Node(name="node2.example.com", primary_ip="192.0.2.2",
                         group=ctx.cfg.LookupNodeGroup(None), uuid=objects.GenerateUUID())
    node2.UpgradeConfig()
    ctx.cfg.AddNode(node2, "test")
    ctx.glm = instancehelpers.masterd.BuildLockManager(ctx.cfg)
    inst = _Create(ctx, sizes=(1024,), start=False)
    disk = _Disks(ctx)[0]
    del ctx.rpc.images[disk.uuid]
    ctx.cfg.MarkInstanceOffline(inst.uuid)
    _Run(ctx, opcodes.OpInstanceRecreateDisks(instance_name=NAME, nodes=["node2"]))
    inst = ctx.cfg.GetInstanceInfo(inst.uuid)
    assert inst.primary_node == node2.uuid
    assert _Disks(ctx)[0].nodes == [node2.uuid]
    assert ctx.cfg.GetInstanceNodes(inst.uuid) == (node2.uuid,)
    assert disk.uuid in ctx.rpc.images
    assert inst.admin_state == constants.ADMINST_OFFLINE
