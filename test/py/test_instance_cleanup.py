"""Tests for ganeti.instance_cleanup: removing the instances whose
creation did not finish (forthcoming, nobody holding their lock)."""

from __future__ import annotations

import os
import sys
import threading

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "cmdlib"))

import instancehelpers  # noqa: E402

from ganeti import instance_cleanup, locking  # noqa: E402

pytestmark = pytest.mark.timeout(60)

WAIT = 10
NAME = "inst1.example.com"


@pytest.fixture
def ctx(tmp_path):
    return instancehelpers.MakeContext(tmp_path)


def _Forthcoming(ctx, name=NAME, start=False):
    """A file instance as a crashed creation leaves it: configured,
    forthcoming, its disk made on the node."""
    instancehelpers.Run(ctx, instancehelpers.CreateOp(
        instance_name=name, disk_template="file", disks=[{"size": 1024}], start=start))
    inst = ctx.cfg.GetInstanceInfoByName(name)
    inst.forthcoming = True
    ctx.cfg.Update(inst, None)
    ctx.rpc.calls.clear()
    return inst


def _Cleanup(ctx, **kwargs):
    kwargs.setdefault("retry_delay", 0.01)
    return instance_cleanup.CreationCleanup(ctx, **kwargs)


class Holder:
    """Another thread holding an instance's lock until released."""

    def __init__(self, glm, name):
        self.glm, self.name = glm, name
        self.ready, self.done = threading.Event(), threading.Event()
        self.thread = threading.Thread(target=self._Run)

    def _Run(self):
        self.glm.acquire(locking.LEVEL_CLUSTER, locking.BGL, shared=1)
        self.glm.acquire(locking.LEVEL_INSTANCE, [self.name])
        self.ready.set()
        self.done.wait(WAIT)
        self.glm.release(locking.LEVEL_INSTANCE)
        self.glm.release(locking.LEVEL_CLUSTER)

    def __enter__(self):
        self.thread.start()
        assert self.ready.wait(WAIT)
        return self

    def __exit__(self, *exc):
        self.done.set()
        self.thread.join(WAIT)


def test_removes_a_left_over_creation_with_its_disks(ctx):
    inst = _Forthcoming(ctx)
    disk_path = ctx.cfg.GetInstanceDisks(inst.uuid)[0].logical_id[1]
    _Forthcoming(ctx, "committed.example.com")
    done = ctx.cfg.GetInstanceInfoByName("committed.example.com")
    done.forthcoming = False
    ctx.cfg.Update(done, None)
    ctx.rpc.calls.clear()
    cleanup = _Cleanup(ctx)
    assert cleanup.RunOnce() == {}
    assert ctx.cfg.GetInstanceInfoByName(NAME) is None
    assert NAME not in ctx.glm.names(locking.LEVEL_INSTANCE)
    assert cleanup.removed == [NAME]
    names = ctx.rpc.names()
    assert names == ["instance_shutdown", "blockdev_remove", "file_storage_dir_remove"]
    removed_disk = [call for call in ctx.rpc.calls if call[0] == "blockdev_remove"][0]
    assert removed_disk[2]["logical_id"][1] == disk_path
    # A committed instance is never touched (the calls above were all)
    assert ctx.cfg.GetInstanceInfoByName("committed.example.com") is not None


def test_node_down_is_retried_until_it_answers(ctx):
    _Forthcoming(ctx)
    ctx.rpc.fail["blockdev_remove"] = "Connection refused"
    cleanup = _Cleanup(ctx)
    pending = cleanup.RunOnce()
    assert list(pending) == [NAME] and "Connection refused" in pending[NAME]
    assert ctx.cfg.GetInstanceInfoByName(NAME).forthcoming
    # The lock was given back: a job could use it meanwhile
    assert ctx.glm.acquire(locking.LEVEL_CLUSTER, locking.BGL, timeout=0, shared=1)
    assert ctx.glm.acquire(locking.LEVEL_INSTANCE, [NAME], timeout=0)
    ctx.glm.release(locking.LEVEL_INSTANCE)
    ctx.glm.release(locking.LEVEL_CLUSTER)
    del ctx.rpc.fail["blockdev_remove"]
    cleanup.Start()
    try:
        assert cleanup.WaitDone(WAIT)
    finally:
        assert cleanup.Stop(WAIT)
    assert ctx.cfg.GetInstanceInfoByName(NAME) is None
    assert cleanup.removed == [NAME]


def test_an_instance_still_being_created_is_left_alone(ctx):
    _Forthcoming(ctx)
    cleanup = _Cleanup(ctx)
    with Holder(ctx.glm, NAME):
        pending = cleanup.RunOnce()
        assert pending[NAME].startswith("busy: instance lock")
        assert ctx.rpc.calls == []
        assert ctx.cfg.GetInstanceInfoByName(NAME).forthcoming
    assert cleanup.RunOnce() == {}
    assert ctx.cfg.GetInstanceInfoByName(NAME) is None


def test_the_thread_finds_them_at_start_and_when_woken(ctx):
    _Forthcoming(ctx)
    cleanup = _Cleanup(ctx, rescan_interval=3600)
    cleanup.Start()
    try:
        assert cleanup.WaitDone(WAIT)
        assert ctx.cfg.GetInstanceInfoByName(NAME) is None
        # A creation leaving one behind wakes it for that instance
        _Forthcoming(ctx, "inst2.example.com")
        cleanup.Wake("inst2.example.com")
        assert cleanup.WaitDone(WAIT)
        assert ctx.cfg.GetInstanceInfoByName("inst2.example.com") is None
    finally:
        assert cleanup.Stop(WAIT)
    assert cleanup.removed == [NAME, "inst2.example.com"]


def test_a_creation_left_behind_is_cleaned_end_to_end(ctx):
    """A creation whose undo fails keeps its instance and lock; the cleanup,
    woken by it, removes both once the node answers again."""
    cleanup = _Cleanup(ctx)
    ctx.instance_cleanup = cleanup
    ctx.rpc.fail["instance_os_add"] = "node daemon died"
    ctx.rpc.fail["blockdev_remove"] = "Connection refused"
    with pytest.raises(Exception, match="node daemon died"):
        instancehelpers.Run(ctx, instancehelpers.CreateOp(
            disk_template="file", disks=[{"size": 1024}]))
    assert NAME in cleanup.Pending()
    assert NAME in ctx.glm.names(locking.LEVEL_INSTANCE)
    del ctx.rpc.fail["blockdev_remove"]
    cleanup.Start()
    try:
        assert cleanup.WaitDone(WAIT)
    finally:
        assert cleanup.Stop(WAIT)
    assert ctx.cfg.GetInstanceInfoByName(NAME) is None
    assert NAME not in ctx.glm.names(locking.LEVEL_INSTANCE)
