"""Instance creations and removals run in parallel (no exclusive Big Ganeti
Lock): the processor adds the new instance's lock, so two jobs creating the
same name give one success and one clear error, and jobs on different
nodes overlap. Run through mcpu with instancehelpers' fake RPC runner;
threads meet at events and barriers, never sleeps."""

from __future__ import annotations

import os
import sys
import threading

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import instancehelpers  # noqa: E402
from instancehelpers import MASTER, CreateOp, Run  # noqa: E402

from ganeti import errors, locking, objects, opcodes  # noqa: E402
from ganeti.server import masterd  # noqa: E402

pytestmark = pytest.mark.timeout(60)

WAIT = 10
NODE2 = "node2.example.com"


class GatedRpc(instancehelpers.FakeRpc):
    """Holds the first caller of ``gated`` (an RPC name) until released;
    ``barrier`` instead makes the callers of ``gated`` meet there."""

    def __init__(self, gated, barrier=None):
        super().__init__()
        self.gated = gated
        self.entered = threading.Event()
        self.release = threading.Event()
        self.barrier = barrier
        self._first = True
        self._lock = threading.Lock()

    def _Gate(self, name):
        if name != self.gated:
            return
        if self.barrier is not None:
            self.barrier.wait()  # BrokenBarrierError if the other never comes
            return
        with self._lock:
            first, self._first = self._first, False
        if first:
            self.entered.set()
            assert self.release.wait(WAIT)

    def call_os_validate(self, nodes, *args):
        self._Gate("os_validate")
        return super().call_os_validate(nodes, *args)

    def call_instance_shutdown(self, node, inst, timeout, reason):
        self._Gate("instance_shutdown")
        return super().call_instance_shutdown(node, inst, timeout, reason)

    def __getattr__(self, attr):
        call = super().__getattr__(attr)

        def _Call(*args):
            self._Gate(attr[5:])
            return call(*args)
        return _Call


def _Context(tmp_path, rpc):
    ctx = instancehelpers.MakeContext(tmp_path)
    node = objects.Node(name=NODE2, primary_ip="192.0.2.2", uuid=objects.GenerateUUID(),
                        group=ctx.cfg.LookupNodeGroup(None))
    node.UpgradeConfig()
    ctx.cfg.AddNode(node, "test")
    ctx.glm = masterd.BuildLockManager(ctx.cfg)
    ctx.rpc = rpc
    return ctx


def _InThread(fn, *args):
    outcome = {}

    def _Target():
        try:
            outcome["result"] = fn(*args)
        except Exception as err:  # noqa: BLE001 - the test looks at it
            outcome["error"] = err

    thread = threading.Thread(target=_Target)
    thread.start()
    return thread, outcome


def _Instances(ctx):
    return sorted(inst.name for inst in ctx.cfg.GetAllInstancesInfo().values())


@pytest.mark.parametrize("gated, message, code", [
    # The first job holds the new name's lock, not yet in the configuration
    ("os_validate", "Instance 'inst1.example.com' is already in the cluster or being"
     " created by another job", errors.ECODE_NOTUNIQUE),
    # The first job has added the instance and runs the OS create script
    ("instance_os_add", "Instance 'inst1.example.com' is already in the cluster",
     errors.ECODE_EXISTS),
])
def test_parallel_creations_of_one_name(tmp_path, gated, message, code):
    rpc = GatedRpc(gated)
    ctx = _Context(tmp_path, rpc)
    thread, outcome = _InThread(Run, ctx, CreateOp(pnode=MASTER))
    try:
        assert rpc.entered.wait(WAIT)
        with pytest.raises(errors.OpPrereqError) as err:
            Run(ctx, CreateOp(pnode=NODE2))
        assert err.value.args == (message, code)
    finally:
        rpc.release.set()
        thread.join(WAIT)
    assert "error" not in outcome
    assert _Instances(ctx) == ["inst1.example.com"]
    assert ctx.cfg.GetInstanceInfoByName("inst1.example.com").primary_node == \
        ctx.cfg.GetNodeInfoByName(MASTER).uuid
    assert ctx.glm.names(locking.LEVEL_INSTANCE) == {"inst1.example.com"}
    assert not any(ctx.glm.is_owned(level) for level in locking.LEVELS)


def test_failed_creation_frees_the_name(tmp_path):
    rpc = GatedRpc("none")
    ctx = _Context(tmp_path, rpc)
    rpc.fail["instance_os_add"] = "create script failed"
    with pytest.raises(errors.OpExecError, match="create script failed"):
        Run(ctx, CreateOp())
    assert _Instances(ctx) == []
    assert ctx.glm.names(locking.LEVEL_INSTANCE) == frozenset()
    del rpc.fail["instance_os_add"]
    Run(ctx, CreateOp())
    assert _Instances(ctx) == ["inst1.example.com"]


def test_creations_on_two_nodes_overlap(tmp_path):
    # Both jobs must be inside the OS create script at the same time
    barrier = threading.Barrier(2, timeout=WAIT)
    ctx = _Context(tmp_path, GatedRpc("instance_os_add", barrier=barrier))
    first, outcome1 = _InThread(Run, ctx, CreateOp("inst1.example.com", pnode=MASTER))
    second, outcome2 = _InThread(Run, ctx, CreateOp("inst2.example.com", pnode=NODE2))
    first.join(WAIT * 2)
    second.join(WAIT * 2)
    assert "error" not in outcome1 and "error" not in outcome2, (outcome1, outcome2)
    assert _Instances(ctx) == ["inst1.example.com", "inst2.example.com"]
    assert ctx.glm.names(locking.LEVEL_INSTANCE) == {"inst1.example.com",
                                                     "inst2.example.com"}


def test_removals_overlap_and_remove_the_locks(tmp_path):
    barrier = threading.Barrier(2, timeout=WAIT)
    rpc = GatedRpc("instance_shutdown", barrier=barrier)
    ctx = _Context(tmp_path, rpc)
    Run(ctx, CreateOp("inst1.example.com", pnode=MASTER))
    Run(ctx, CreateOp("inst2.example.com", pnode=NODE2))
    ops = [opcodes.OpInstanceRemove(instance_name=name, shutdown_timeout=10)
           for name in ("inst1.example.com", "inst2.example.com")]
    threads = [_InThread(Run, ctx, op) for op in ops]
    for thread, _ in threads:
        thread.join(WAIT * 2)
    assert [outcome for _, outcome in threads if "error" in outcome] == []
    assert _Instances(ctx) == []
    assert ctx.glm.names(locking.LEVEL_INSTANCE) == frozenset()


def test_failed_removal_keeps_the_lock(tmp_path):
    rpc = GatedRpc("none")
    ctx = _Context(tmp_path, rpc)
    Run(ctx, CreateOp())
    rpc.fail["instance_shutdown"] = "hypervisor unhappy"
    with pytest.raises(errors.OpExecError, match="hypervisor unhappy"):
        Run(ctx, opcodes.OpInstanceRemove(instance_name="inst1.example.com",
                                          shutdown_timeout=10))
    assert _Instances(ctx) == ["inst1.example.com"]
    assert ctx.glm.names(locking.LEVEL_INSTANCE) == {"inst1.example.com"}
