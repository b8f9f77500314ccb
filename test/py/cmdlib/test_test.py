"""Tests for LUTestDelay and LUTestJqueue (ganeti.cmdlib.test)."""

from __future__ import annotations

import queue
import socket
import threading
from types import SimpleNamespace

import pytest

from ganeti import constants, errors, locking, mcpu, opcodes

pytestmark = pytest.mark.timeout(60)

WAIT = 10


class Callbacks(mcpu.OpExecCbBase):
    def __init__(self):
        self.started = threading.Event()
        self.feedback = queue.Queue()

    def NotifyStart(self):
        self.started.set()

    def Feedback(self, *args):
        self.feedback.put(args)


class FakeConfig:
    def __init__(self, nodes):
        self.nodes = {name: SimpleNamespace(uuid=f"{name}-uuid", name=name) for name in nodes}

    def GetMasterNode(self):
        return "node1-uuid"

    def ExpandNodeName(self, name):
        return name if name in self.nodes else None

    def GetNodeInfoByName(self, name):
        return self.nodes.get(name)


class FakeRpc:
    def __init__(self):
        self.calls = []

    def call_test_delay(self, node_uuids, duration):
        self.calls.append((list(node_uuids), duration))
        return {uuid: SimpleNamespace(Raise=lambda msg: None) for uuid in node_uuids}


def make_context(cfg=None, rpc=None):
    glm = locking.GanetiLockManager(nodes=["node1-uuid", "node2-uuid"])
    return SimpleNamespace(glm=glm, cfg=cfg, rpc=rpc)


@pytest.mark.parametrize("duration", [0, -1, -0.5])
def test_delay_must_be_positive(duration):
    proc = mcpu.Processor(make_context())
    with pytest.raises(errors.OpPrereqError, match=f"greater than zero, got {duration}") as err:
        proc.ExecOpCode(opcodes.OpTestDelay(duration=duration), Callbacks())
    assert err.value.args[1] == errors.ECODE_INVAL


def test_delay_on_nodes_needs_rpc():
    proc = mcpu.Processor(make_context(cfg=FakeConfig(["node1"])))
    with pytest.raises(errors.OpPrereqError, match=r"on nodes \(node1\) needs node RPC"):
        proc.ExecOpCode(opcodes.OpTestDelay(duration=0.01, on_nodes=["node1"]), Callbacks())


def test_delay_on_nodes_with_rpc_and_locks():
    rpc = FakeRpc()
    ctx = make_context(cfg=FakeConfig(["node1", "node2"]), rpc=rpc)
    seen = {}

    class Cbs(Callbacks):
        def NotifyStart(self):
            seen["owned"] = ctx.glm.list_owned(locking.LEVEL_NODE)

    op = opcodes.OpTestDelay(duration=0.001, on_nodes=["node2"], on_master=True,
                             no_locks=False)
    mcpu.Processor(ctx).ExecOpCode(op, Cbs())
    assert rpc.calls == [(["node2-uuid"], 0.001)]
    assert seen["owned"] == {"node1-uuid", "node2-uuid"}
    assert op.on_node_uuids == ["node2-uuid"]


def test_delay_unknown_node():
    ctx = make_context(cfg=FakeConfig(["node1"]), rpc=FakeRpc())
    with pytest.raises(errors.OpPrereqError, match="Node 'nodeX' not known"):
        mcpu.Processor(ctx).ExecOpCode(
            opcodes.OpTestDelay(duration=0.01, on_nodes=["nodeX"]), Callbacks())


def test_delay_no_locks_takes_none():
    ctx = make_context(cfg=FakeConfig(["node1"]))
    seen = {}

    class Cbs(Callbacks):
        def NotifyStart(self):
            seen["node"] = ctx.glm.is_owned(locking.LEVEL_NODE)
            seen["bgl_shared"] = ctx.glm.check_owned(locking.LEVEL_CLUSTER, locking.BGL,
                                                     shared=1)

    mcpu.Processor(ctx).ExecOpCode(opcodes.OpTestDelay(duration=0.001), Cbs())
    assert seen == {"node": False, "bgl_shared": True}


def test_delay_repeat_logs_iterations():
    cbs = Callbacks()
    mcpu.Processor(make_context()).ExecOpCode(
        opcodes.OpTestDelay(duration=0.001, repeat=3), cbs)
    messages = [cbs.feedback.get_nowait()[1] for _ in range(3)]
    assert messages == [f" - INFO: Test delay iteration {i}/3" for i in (1, 2, 3)]


def test_interruptible_delay():
    proc = mcpu.Processor(make_context())
    cbs = Callbacks()
    failure = []

    def run():
        try:
            proc.ExecOpCode(opcodes.OpTestDelay(duration=60, interruptible=True), cbs)
        except errors.OpExecError as err:
            failure.append(str(err))

    thread = threading.Thread(target=run)
    thread.start()
    assert cbs.started.wait(WAIT)
    proc.Interrupt()
    thread.join(WAIT)
    assert not thread.is_alive()
    assert failure == ["Delay interrupted"]


def _confirm(path):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.connect(path)


@pytest.mark.parametrize("fail", [False, True])
def test_jqueue_notifications(fail):
    ctx = make_context(cfg=FakeConfig(["node1"]))
    cbs = Callbacks()
    outcome = {}

    def run():
        op = opcodes.OpTestJqueue(notify_waitlock=True, notify_exec=True,
                                  log_messages=["hello", "world"], fail=fail)
        try:
            outcome["result"] = mcpu.Processor(ctx).ExecOpCode(op, cbs)
        except errors.OpExecError as err:
            outcome["error"] = str(err)

    thread = threading.Thread(target=run)
    thread.start()
    markers = []
    messages = []
    try:
        while len(markers) < 5:
            log_type, message = cbs.feedback.get(timeout=WAIT)
            if log_type != constants.ELOG_JQUEUE_TEST:
                messages.append(message)
                continue
            path, test, arg = message
            # What the client can check while the LU waits for it
            markers.append((test, arg, cbs.started.is_set(),
                            ctx.glm.is_owned(locking.LEVEL_NODE)))
            _confirm(path)
    finally:
        thread.join(WAIT)
    assert not thread.is_alive()
    assert markers == [
        (constants.JQT_EXPANDNAMES, None, False, False),
        (constants.JQT_EXEC, None, True, False),  # another thread owns nothing
        (constants.JQT_STARTMSG, 2, True, False),
        (constants.JQT_LOGMSG, 1, True, False),
        (constants.JQT_LOGMSG, 2, True, False),
    ]
    assert constants.JQT_MSGPREFIX + "hello" in messages
    assert constants.JQT_MSGPREFIX + "world" in messages
    if fail:
        assert outcome == {"error": "Opcode failure was requested"}
    else:
        assert outcome == {"result": True}


def test_jqueue_client_not_connecting(monkeypatch):
    from ganeti.cmdlib import test as cmdlib_test
    monkeypatch.setattr(cmdlib_test.LUTestJqueue, "CLIENT_CONNECT_TIMEOUT", 0.05)
    with pytest.raises(errors.OpPrereqError, match="did not connect"):
        mcpu.Processor(make_context()).ExecOpCode(
            opcodes.OpTestJqueue(notify_waitlock=True), Callbacks())


def test_jqueue_plain_run():
    cbs = Callbacks()
    assert mcpu.Processor(make_context()).ExecOpCode(opcodes.OpTestJqueue(), cbs) is True


# --- LUTestOsParams ---------------------------------------------------------------

def test_osparams_reports_names_not_values():
    cbs = Callbacks()
    op = opcodes.OpTestOsParams(osparams_secret={"password": "s3cr3t", "key": "k"})
    mcpu.Processor(make_context(FakeConfig(["node1"])), ec_id=1).ExecOpCode(op, cbs)
    messages = []
    while not cbs.feedback.empty():
        messages.append(str(cbs.feedback.get()))
    assert any("2 secret OS parameter(s): key, password" in m for m in messages)
    assert not any("s3cr3t" in m for m in messages)


@pytest.mark.parametrize("params", [None, {}])
def test_osparams_missing(params):
    op = opcodes.OpTestOsParams(osparams_secret=params)
    with pytest.raises(errors.OpExecError, match="not present"):
        mcpu.Processor(make_context(FakeConfig(["node1"])), ec_id=1).ExecOpCode(
            op, Callbacks())
