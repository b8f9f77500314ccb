"""Tests for attaching and detaching disks (gnt-instance modify --disk
...:attach / ...:detach), run through mcpu with the recording fake RPC
runner of instancehelpers."""

from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import instancehelpers  # noqa: E402

from ganeti import constants, errors, objects, opcodes  # noqa: E402

INST1 = "inst1.example.com"
INST2 = "inst2.example.com"


class AttachRpc(instancehelpers.FakeRpc):
    """FakeRpc answering instance_info with the running instances."""

    def call_instance_info(self, nodes, name, hvname, hvparams):
        payload = {"state": "running", "memory": 128} if name in self.running else {}
        return {node: self._Answer("instance_info", payload) for node in nodes}


@pytest.fixture
def ctx(tmp_path):
    context = instancehelpers.MakeContext(tmp_path)
    context.rpc = AttachRpc()
    return context


def _Create(ctx, name, disks=({"size": 1024, "name": "data"},), **kwargs):
    params = dict(disk_template="file", disks=[dict(d) for d in disks], start=False)
    params.update(kwargs)
    instancehelpers.Run(ctx, instancehelpers.CreateOp(name=name, **params))
    ctx.rpc.calls.clear()
    return ctx.cfg.GetInstanceInfoByName(name)


def _Modify(ctx, name, **kwargs):
    result, _ = instancehelpers.Run(
        ctx, opcodes.OpInstanceSetParams(instance_name=name, **kwargs))
    return result


def _Disks(ctx, name):
    return ctx.cfg.GetInstanceDisks(ctx.cfg.GetInstanceInfoByName(name).uuid)


def _Refused(ctx, name, match, code=errors.ECODE_INVAL, **kwargs):
    serial = ctx.cfg.GetConfigSerialNo()
    with pytest.raises(errors.OpPrereqError, match=match) as info:
        _Modify(ctx, name, **kwargs)
    assert info.value.args[1] == code
    assert ctx.cfg.GetConfigSerialNo() == serial


def _Detached(ctx):
    return [disk for uuid, disk in ctx.cfg.GetAllDisksInfo().items()
            if ctx.cfg.GetInstanceForDisk(uuid) is None]


@pytest.fixture
def two(ctx):
    """inst1 with disks 'boot' and 'data', inst2 with 'root'."""
    _Create(ctx, INST1, disks=[{"size": 1024, "name": "boot"},
                               {"size": 2048, "name": "data"}])
    _Create(ctx, INST2, disks=[{"size": 1024, "name": "root"}])
    return ctx


def test_detach_keeps_the_disk_and_attach_elsewhere(two):
    ctx = two
    data = _Disks(ctx, INST1)[1]
    result = _Modify(ctx, INST1, disks=[("detach", "data", {})])
    assert ("disk/1", "detach") in result
    assert [d.name for d in _Disks(ctx, INST1)] == ["boot"]
    assert [d.uuid for d in _Detached(ctx)] == [data.uuid]
    # Shut down on the node, never removed
    names = ctx.rpc.names()
    assert "blockdev_shutdown" in names and "blockdev_remove" not in names
    ctx.rpc.calls.clear()
    # Attached at the front of inst2 by name: same object, same data (path)
    result = _Modify(ctx, INST2, disks=[("attach", 0, {"name": "data"})])
    assert ("disk/0", "attach:size=2048,mode=rw") in result
    disks = _Disks(ctx, INST2)
    assert [d.name for d in disks] == ["data", "root"]
    assert [d.iv_name for d in disks] == ["disk/0", "disk/1"]
    assert disks[0].uuid == data.uuid and disks[0].logical_id == data.logical_id
    assert not _Detached(ctx)
    assert "blockdev_create" not in ctx.rpc.names()
    # Back, by UUID, at the end of inst1
    _Modify(ctx, INST2, disks=[("detach", 0, {})])
    _Modify(ctx, INST1, disks=[("attach", -1, {"uuid": data.uuid})])
    assert [d.name for d in _Disks(ctx, INST1)] == ["boot", "data"]


def test_removing_an_instance_keeps_detached_disks(two):
    ctx = two
    _Modify(ctx, INST1, disks=[("detach", 1, {})])
    ctx.rpc.calls.clear()
    instancehelpers.Run(ctx, opcodes.OpInstanceRemove(instance_name=INST1))
    (detached,) = _Detached(ctx)
    assert detached.name == "data"
    removed = [call[2] for call in ctx.rpc.calls if call[0] == "blockdev_remove"]
    assert removed and all(
        (disk["uuid"] if isinstance(disk, dict) else disk.uuid) != detached.uuid
        for disk in removed)
    # Its directory still holds the detached disk: not removed
    assert not [call for call in ctx.rpc.calls if call[0] == "file_storage_dir_remove"
                and call[2] == os.path.dirname(detached.logical_id[1])]
    _Modify(ctx, INST2, disks=[("attach", -1, {"name": "data"})])
    assert [d.name for d in _Disks(ctx, INST2)] == ["root", "data"]


def test_attach_refusals(two):
    ctx = two
    _Refused(ctx, INST2, "Cannot find disk 'nosuch'", code=errors.ECODE_NOENT,
             disks=[("attach", -1, {"name": "nosuch"})])
    _Refused(ctx, INST2, "Disk 'data' is already attached to instance"
             f" {INST1}", code=errors.ECODE_STATE,
             disks=[("attach", -1, {"name": "data"})])
    _Refused(ctx, INST2, "either its name or its UUID",
             disks=[("attach", -1, {})])
    _Refused(ctx, INST2, "either its name or its UUID",
             disks=[("attach", -1, {"name": "data", "uuid": "x"})])
    _Refused(ctx, INST2, "Only the disk's name or UUID",
             disks=[("attach", -1, {"name": "data", "size": 1024})])
    _Modify(ctx, INST1, disks=[("detach", "data", {})])
    _Refused(ctx, INST2, "Invalid disk index 5 for an addition",
             disks=[("attach", 5, {"name": "data"})])
    _Refused(ctx, INST2, "attached twice", disks=[("attach", -1, {"name": "data"}),
                                                  ("attach", -1, {"name": "data"})])
    _Refused(ctx, INST2, "it is attached by the same modification",
             disks=[("attach", -1, {"name": "data"}), ("detach", -1, {})])
    assert len(_Detached(ctx)) == 1


def test_attach_refused_on_another_node(two):
    ctx = two
    ctx.cfg.AddNode(objects.Node(name="node2.example.com", primary_ip="192.0.2.2"),
                    "test")
    node2 = ctx.cfg.GetNodeInfoByName("node2.example.com")
    _Modify(ctx, INST1, disks=[("detach", "data", {})])
    (disk,) = _Detached(ctx)
    disk.nodes = [node2.uuid]
    ctx.cfg.Update(disk, None)
    _Refused(ctx, INST2, "Cannot attach disk 'data' to instance .*: the disk is on"
             " node.s. node2.example.com, the instance on node1.example.com",
             disks=[("attach", -1, {"name": "data"})])


def test_attach_refused_for_another_template(ctx):
    _Create(ctx, INST1, disks=[{"size": 1024}, {"size": 1024, "name": "data"}])
    _Create(ctx, INST2, disks=[{"size": 1024}])
    _Modify(ctx, INST1, disks=[("detach", "data", {})])
    (disk,) = _Detached(ctx)
    disk.dev_type = constants.DT_SHARED_FILE
    ctx.cfg.Update(disk, None)
    _Refused(ctx, INST2, "Cannot attach disk 'data' of type sharedfile to instance"
             f" {INST2}, whose disk template is file",
             disks=[("attach", -1, {"name": "data"})])
    # A diskless instance takes any disk
    instancehelpers.Run(ctx, instancehelpers.CreateOp(name="inst3.example.com",
                                                            start=False))
    _Modify(ctx, "inst3.example.com", disks=[("attach", -1, {"name": "data"})])
    assert [d.name for d in _Disks(ctx, "inst3.example.com")] == ["data"]


def test_detach_refusals(two):
    ctx = two
    _Refused(ctx, INST2, "Cannot detach every disk", disks=[("detach", 0, {})])
    _Refused(ctx, INST1, "Invalid disk index 4", disks=[("detach", 4, {})])
    _Refused(ctx, INST1, "Cannot find disk 'nosuch'", disks=[("detach", "nosuch", {})])
    _Refused(ctx, INST1, "No parameters allowed when detaching",
             disks=[("detach", 0, {"size": 1})])
    _Refused(ctx, INST1, "Attaching or detaching NICs is not supported",
             nics=[("detach", 0, {})])
    assert not _Detached(ctx)


def test_running_instance_needs_hotplug(two):
    ctx = two
    _Modify(ctx, INST2, disks=[("add", -1, {"size": 1024, "name": "spare"})])
    _Modify(ctx, INST2, disks=[("detach", "spare", {})])
    inst1 = ctx.cfg.GetInstanceInfoByName(INST1)
    ctx.cfg.MarkInstanceUp(inst1.uuid)
    ctx.rpc.running.add(INST1)
    _Refused(ctx, INST1, f"Instance {INST1} is running, cannot detach disks without"
             " hotplug", code=errors.ECODE_STATE, disks=[("detach", 1, {})])
    _Refused(ctx, INST1, f"Instance {INST1} is running, cannot attach disks without"
             " hotplug", code=errors.ECODE_STATE,
             disks=[("attach", -1, {"name": "spare"})])
    ctx.rpc.fail["hotplug_supported"] = "Hypervisor fake does not support hotplug"
    _Refused(ctx, INST1, "Hotplug is not possible", code=errors.ECODE_STATE,
             hotplug=True, disks=[("detach", 1, {})])
    # hotplug_if_possible without support: a warning, then the running check
    _Refused(ctx, INST1, "cannot detach disks without hotplug", code=errors.ECODE_STATE,
             hotplug_if_possible=True, disks=[("detach", 1, {})])


def test_hotplug_detach_and_attach(two):
    ctx = two
    _Modify(ctx, INST2, disks=[("add", -1, {"size": 1024, "name": "spare"})])
    _Modify(ctx, INST2, disks=[("detach", "spare", {})])
    inst1 = ctx.cfg.GetInstanceInfoByName(INST1)
    ctx.cfg.MarkInstanceUp(inst1.uuid)
    ctx.rpc.running.add(INST1)
    ctx.rpc.calls.clear()
    _Modify(ctx, INST1, hotplug=True, disks=[("detach", "data", {})])
    names = ctx.rpc.names()
    hot = [call for call in ctx.rpc.calls if call[0] == "hotplug_device"]
    assert [(c[3], c[4]) for c in hot] == [(constants.HOTPLUG_ACTION_REMOVE,
                                            constants.HOTPLUG_TARGET_DISK)]
    assert names.index("hotplug_device") < names.index("blockdev_shutdown")
    assert "blockdev_remove" not in names
    ctx.rpc.calls.clear()
    _Modify(ctx, INST1, hotplug=True, disks=[("attach", 0, {"name": "spare"})])
    names = ctx.rpc.names()
    assert names.index("blockdev_assemble") < names.index("hotplug_device")
    hot = [call for call in ctx.rpc.calls if call[0] == "hotplug_device"]
    assert [(c[3], c[4], c[7]) for c in hot] == [(constants.HOTPLUG_ACTION_ADD,
                                                  constants.HOTPLUG_TARGET_DISK, 0)]
    assert [d.name for d in _Disks(ctx, INST1)] == ["spare", "boot"]


def test_attach_to_active_disks_assembles(two):
    ctx = two
    _Modify(ctx, INST1, disks=[("detach", "data", {})])
    ctx.cfg.MarkInstanceDisksActive(ctx.cfg.GetInstanceInfoByName(INST2).uuid)
    ctx.rpc.calls.clear()
    _Modify(ctx, INST2, disks=[("attach", -1, {"name": "data"})])
    assert "blockdev_assemble" in ctx.rpc.names()


def test_config_failure_detaches_again(two, monkeypatch):
    ctx = two
    _Modify(ctx, INST1, disks=[("detach", "data", {})])

    def _Fail(*args, **kwargs):
        raise errors.ConfigurationError("disk full")
    monkeypatch.setattr(ctx.cfg, "Update", _Fail)
    with pytest.raises(errors.ConfigurationError):
        _Modify(ctx, INST2, disks=[("attach", -1, {"name": "data"})])
    monkeypatch.undo()
    assert [d.name for d in _Detached(ctx)] == ["data"]
    assert [d.name for d in _Disks(ctx, INST2)] == ["root"]


def test_detached_disks_are_no_orphans(two):
    from ganeti.cmdlib import cluster_disks, cluster_verify
    ctx = two
    _Modify(ctx, INST1, disks=[("detach", "data", {})])
    (disk,) = _Detached(ctx)
    node = ctx.cfg.GetInstanceInfoByName(INST1).primary_node
    assert os.path.normpath(disk.logical_id[1]) in \
        cluster_verify.ExpectedFileDisks(ctx.cfg)[node]
    # A detached plain disk's volume is expected too
    disk.dev_type = constants.DT_PLAIN
    disk.logical_id = ("xenvg", "detached-lv")
    ctx.cfg.Update(disk, None)
    assert cluster_disks.DiskExpectations.FromConfig(ctx.cfg).lvs[node] == \
        {"xenvg/detached-lv": "detached disk data"}
