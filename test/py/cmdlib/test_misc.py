"""LURestrictedCommand (ganeti.cmdlib.misc), run through mcpu."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from ganeti import errors, locking, mcpu, opcodes

pytestmark = pytest.mark.timeout(60)


class FakeConfig:
    def __init__(self, nodes):
        self.nodes = {name: SimpleNamespace(uuid=f"{name}-uuid", name=f"{name}.example.com")
                      for name in nodes}

    def ExpandNodeName(self, name):
        return name if name in self.nodes else None

    def GetNodeInfoByName(self, name):
        return self.nodes.get(name)


class FakeRpc:
    """Answers restricted_command: node2 fails, the others print their name."""

    def __init__(self, glm):
        self.glm = glm
        self.calls = []

    def call_restricted_command(self, node_uuids, cmd):
        self.calls.append((list(node_uuids), cmd,
                           self.glm.list_owned(locking.LEVEL_NODE),
                           self.glm.check_owned(locking.LEVEL_NODE, node_uuids[0],
                                                shared=1)))
        result = {}
        for uuid in node_uuids:
            if uuid.startswith("node2"):
                result[uuid] = SimpleNamespace(fail_msg="Restricted command 'x' refused",
                                               payload=None)
            else:
                result[uuid] = SimpleNamespace(fail_msg=None, payload=f"hello {uuid}\n")
        return result


class Callbacks(mcpu.OpExecCbBase):
    def Feedback(self, *args):
        pass


def _Run(op, nodes=("node1", "node2", "node3")):
    glm = locking.GanetiLockManager(nodes=[f"{name}-uuid" for name in nodes])
    rpc = FakeRpc(glm)
    ctx = SimpleNamespace(glm=glm, cfg=FakeConfig(nodes), rpc=rpc)
    return mcpu.Processor(ctx).ExecOpCode(op, Callbacks()), rpc


def test_results_per_node_in_order():
    op = opcodes.OpRestrictedCommand(command="hello", nodes=["node3", "node2", "node1"])
    result, rpc = _Run(op)
    assert [tuple(item) for item in result] == [
        (True, "hello node3-uuid\n"),
        (False, "Command 'hello' on node 'node2.example.com' failed:"
                " Restricted command 'x' refused"),
        (True, "hello node1-uuid\n"),
    ]
    uuids, cmd, owned, shared = rpc.calls[0]
    assert (uuids, cmd) == (["node3-uuid", "node2-uuid", "node1-uuid"], "hello")
    # only the named nodes are locked, shared by default
    assert owned == {"node1-uuid", "node2-uuid", "node3-uuid"} and shared
    assert op.node_uuids == uuids


def test_sync_locks_exclusively():
    op = opcodes.OpRestrictedCommand(command="hello", nodes=["node1"], use_locking=True)
    _, rpc = _Run(op)
    _, _, owned, shared = rpc.calls[0]
    assert owned == {"node1-uuid"} and not shared


def test_unknown_node():
    with pytest.raises(errors.OpPrereqError, match="Node 'nodeX' not known") as err:
        _Run(opcodes.OpRestrictedCommand(command="hello", nodes=["nodeX"]))
    assert err.value.args[1] == errors.ECODE_NOENT


@pytest.mark.parametrize("command", ["../bin/sh", "a b", "x.sh"])
def test_bad_command_names_are_refused_before_any_rpc(command):
    op = opcodes.OpRestrictedCommand(command="ok", nodes=["node1"])
    op.command = command  # past the opcode's own check, if any
    with pytest.raises(errors.OpPrereqError) as err:
        _Run(op)
    assert err.value.args[1] == errors.ECODE_INVAL
