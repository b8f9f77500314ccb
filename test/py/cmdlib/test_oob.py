"""LUOobCommand and LUNodePowercycle (ganeti.cmdlib.oob), run through mcpu.

The fake RPC runs the real node-side function (ganeti.backend.oob.RunOob)
in this process, with copies of tools/oob-test-helper and small scripts as
helpers, so that missing, non-executable, failing, slow and babbling
helpers are the real thing.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
from types import SimpleNamespace

import pytest

from ganeti import constants, errors, locking, mcpu, opcodes
from ganeti.backend import RPCFail
from ganeti.backend import oob as backend_oob
from ganeti.cmdlib import oob

pytestmark = pytest.mark.timeout(60)

HELPER = os.path.join(os.path.dirname(__file__), "..", "..", "..", "tools",
                      "oob-test-helper")


class FakeConfig:
    """node1 is the master; oob_program per node (None: none)."""

    def __init__(self, programs: dict[str, str | None], offline=()):
        self.nodes = {}
        self.programs = programs
        for name in programs:
            self.nodes[f"{name}-uuid"] = SimpleNamespace(
                uuid=f"{name}-uuid", name=f"{name}.example.com", offline=name in offline,
                powered=True, serial_no=1)
        self.updates = []

    def ExpandNodeName(self, name):
        for node in self.nodes.values():
            if node.name == name or node.name.startswith(name + "."):
                return node.name
        return None

    def GetNodeInfoByName(self, name):
        return next((SimpleNamespace(**vars(n)) for n in self.nodes.values()
                     if n.name == name), None)

    def GetNodeInfo(self, uuid):
        node = self.nodes.get(uuid)
        return SimpleNamespace(**vars(node)) if node else None

    def GetNodeList(self):
        return list(self.nodes)

    def GetMasterNode(self):
        return "node1-uuid"

    def GetNdParams(self, node):
        return {constants.ND_OOB_PROGRAM: self.programs[node.name.split(".")[0]] or ""}

    def Update(self, node, feedback_fn=None):
        self.updates.append((node.name, node.powered))
        self.nodes[node.uuid].powered = node.powered

    def GetHypervisorType(self):
        return constants.HT_FAKE

    def GetClusterInfo(self):
        return SimpleNamespace(hvparams={constants.HT_FAKE: {"x": 1}})


class FakeRpc:
    def __init__(self):
        self.calls = []

    def call_run_oob(self, node_uuid, program, command, node_name, timeout):
        self.calls.append((node_uuid, program, command, node_name, timeout))
        try:
            return SimpleNamespace(fail_msg=None,
                                   payload=backend_oob.RunOob(program, command,
                                                              node_name, timeout))
        except RPCFail as err:
            return SimpleNamespace(fail_msg=str(err), payload=None)

    def call_node_powercycle(self, node_uuid, hv_name, hvparams):
        self.calls.append(("powercycle", node_uuid, hv_name, hvparams))

        def _Raise(msg):
            pass
        return SimpleNamespace(fail_msg=None, payload="Reboot scheduled in 5 seconds",
                               Raise=_Raise)


class Callbacks(mcpu.OpExecCbBase):
    def __init__(self):
        self.messages = []

    def Feedback(self, *args):
        self.messages.append(str(args[-1]))


def _Run(op, cfg):
    glm = locking.GanetiLockManager(nodes=list(cfg.nodes))
    rpc = FakeRpc()
    cbs = Callbacks()
    ctx = SimpleNamespace(glm=glm, cfg=cfg, rpc=rpc)
    result = mcpu.Processor(ctx).ExecOpCode(op, cbs)
    return result, rpc, "\n".join(cbs.messages)


@pytest.fixture
def helper(tmp_path):
    path = tmp_path / "oob-helper"
    shutil.copy(HELPER, path)
    os.chmod(path, 0o755)
    return str(path)


def _State(helper):
    return helper + ".state"


def test_power_status_and_health(helper, tmp_path):
    cfg = FakeConfig({"node1": helper, "node2": helper, "node3": None})
    os.makedirs(_State(helper), exist_ok=True)
    with open(os.path.join(_State(helper), "node2.example.com.powered"), "w") as fd:
        fd.write("0")
    result, rpc, log = _Run(opcodes.OpOobCommand(command=constants.OOB_POWER_STATUS),
                            cfg)
    assert result == [
        [(constants.RS_NORMAL, "node1.example.com"), (constants.RS_NORMAL, {"powered": True})],
        [(constants.RS_NORMAL, "node2.example.com"), (constants.RS_NORMAL, {"powered": False})],
        [(constants.RS_NORMAL, "node3.example.com"), (constants.RS_UNAVAIL, None)],
    ]
    # run on the master, with the node's name; the SoR is not changed by a query
    assert [c[0] for c in rpc.calls] == ["node1-uuid", "node1-uuid"]
    assert rpc.calls[1][1:4] == (helper, "power-status", "node2.example.com")
    assert cfg.updates == []
    assert "WARNING" not in log

    with open(os.path.join(_State(helper), "node2.example.com.health"), "w") as fd:
        json.dump([["fan", "OK"], ["disk", "CRITICAL"]], fd)
    result, _, log = _Run(opcodes.OpOobCommand(command=constants.OOB_HEALTH,
                                               node_names=["node2"]), cfg)
    assert result == [[(constants.RS_NORMAL, "node2.example.com"),
                       (constants.RS_NORMAL, [["fan", "OK"], ["disk", "CRITICAL"]])]]
    assert "Item 'disk' on node 'node2.example.com' has status 'CRITICAL'" in log


def test_power_off_on_records_state_and_delays(helper, monkeypatch):
    cfg = FakeConfig({"node1": helper, "node2": helper, "node3": helper},
                     offline=("node2",))
    with pytest.raises(errors.OpPrereqError, match="node3.example.com because it is"
                       " not marked offline"):
        _Run(opcodes.OpOobCommand(command=constants.OOB_POWER_OFF,
                                  node_names=["node2", "node3"]), cfg)
    result, rpc, _ = _Run(opcodes.OpOobCommand(command=constants.OOB_POWER_OFF,
                                               node_names=["node2", "node3"],
                                               ignore_status=True), cfg)
    assert [row[1] for row in result] == [(constants.RS_NORMAL, None)] * 2
    assert cfg.updates == [("node2.example.com", False), ("node3.example.com", False)]
    sleeps = []
    monkeypatch.setattr(oob, "_sleep_fn", sleeps.append)
    result, _, _ = _Run(opcodes.OpOobCommand(command=constants.OOB_POWER_ON,
                                             node_names=["node3", "node2"],
                                             power_delay=0.5), cfg)
    assert [row[0][1] for row in result] == ["node2.example.com", "node3.example.com"]
    assert cfg.updates[2:] == [("node2.example.com", True), ("node3.example.com", True)]
    assert sleeps == [0.5]
    # the helper really changed its state
    result, _, _ = _Run(opcodes.OpOobCommand(command=constants.OOB_POWER_STATUS,
                                             node_names=["node2"]), cfg)
    assert result[0][1] == (constants.RS_NORMAL, {"powered": True})


def test_master_refused_for_off_and_cycle_and_skipped_without_names(helper):
    cfg = FakeConfig({"node1": helper, "node2": helper})
    for command in (constants.OOB_POWER_OFF, constants.OOB_POWER_CYCLE):
        with pytest.raises(errors.OpPrereqError) as err:
            _Run(opcodes.OpOobCommand(command=command, node_names=["node1"],
                                      ignore_status=True), cfg)
        assert f"run '{helper} {command} node1.example.com'" in str(err.value)
    result, rpc, _ = _Run(opcodes.OpOobCommand(command=constants.OOB_POWER_CYCLE), cfg)
    assert [row[0][1] for row in result] == ["node2.example.com"]
    assert len(rpc.calls) == 1


def test_bad_arguments():
    cfg = FakeConfig({"node1": None})
    with pytest.raises(errors.OpPrereqError, match="not known"):
        _Run(opcodes.OpOobCommand(command=constants.OOB_HEALTH, node_names=["nodeX"]),
             cfg)
    with pytest.raises(errors.OpPrereqError, match="timeout must be positive"):
        _Run(opcodes.OpOobCommand(command=constants.OOB_HEALTH, timeout=0), cfg)
    with pytest.raises(errors.OpPrereqError, match="must not be negative"):
        _Run(opcodes.OpOobCommand(command=constants.OOB_POWER_ON, power_delay=-1), cfg)
    with pytest.raises(errors.OpPrereqError):
        opcodes.OpOobCommand(command="power-dance").Validate(True)


def test_unsupported_named_node_warns():
    cfg = FakeConfig({"node1": None, "node2": None})
    result, rpc, log = _Run(opcodes.OpOobCommand(command=constants.OOB_HEALTH,
                                                 node_names=["node2"]), cfg)
    assert result[0][1] == (constants.RS_UNAVAIL, None)
    assert "Node 'node2.example.com' does not support out-of-band" in log
    assert rpc.calls == []


def _Script(tmp_path, body, mode=0o755):
    path = tmp_path / "helper.sh"
    path.write_text("#!/bin/sh\n" + body + "\n")
    os.chmod(path, mode)
    return str(path)


@pytest.mark.parametrize("case", ["missing", "notexec", "directory", "relative",
                                  "fail", "garbage", "badshape", "timeout"])
def test_bad_helpers_give_nodata_and_name_the_program(case, helper, tmp_path):
    program = helper
    if case == "missing":
        program = str(tmp_path / "no-such-helper")
        why = "error stating out of band helper"
    elif case == "notexec":
        os.chmod(helper, 0o644)
        why = "is not executable"
    elif case == "directory":
        program = str(tmp_path)
        why = "is not a file"
    elif case == "relative":
        program = "oob-helper"
        why = "is not an absolute path"
    else:
        os.makedirs(_State(helper), exist_ok=True)
        with open(os.path.join(_State(helper), "mode"), "w") as fd:
            fd.write(case)
        why = {"fail": "exited with exit code 1: simulated failure",
               "garbage": "invalid JSON",
               "badshape": "expected to answer {\"powered\": true|false}",
               "timeout": "timed out after 1"}[case]
    cfg = FakeConfig({"node1": program, "node2": program})
    result, _, log = _Run(opcodes.OpOobCommand(command=constants.OOB_POWER_STATUS,
                                               node_names=["node2"], timeout=1), cfg)
    assert result == [[(constants.RS_NORMAL, "node2.example.com"),
                       (constants.RS_NODATA, None)]]
    assert "node2.example.com" in log and program in log and why in log, log
    assert cfg.updates == []


def test_failure_leaves_powered_state(helper, tmp_path):
    program = _Script(tmp_path, "echo broken >&2; exit 1")
    cfg = FakeConfig({"node1": helper, "node2": program}, offline=("node2",))
    result, _, log = _Run(opcodes.OpOobCommand(command=constants.OOB_POWER_OFF,
                                               node_names=["node2"]), cfg)
    assert result[0][1] == (constants.RS_NODATA, None)
    assert "broken" in log and cfg.updates == []
    assert cfg.nodes["node2-uuid"].powered is True


@pytest.mark.parametrize("command,output,ok", [
    (constants.OOB_POWER_ON, "", True),
    (constants.OOB_POWER_ON, "  \n", True),
    (constants.OOB_POWER_ON, "{}", False),
    (constants.OOB_POWER_STATUS, '{"powered": false}', True),
    (constants.OOB_POWER_STATUS, '{"powered": "yes"}', False),
    (constants.OOB_POWER_STATUS, "[]", False),
    (constants.OOB_POWER_STATUS, "", False),
    (constants.OOB_HEALTH, "[]", True),
    (constants.OOB_HEALTH, '[["fan", "UNKNOWN"]]', True),
    (constants.OOB_HEALTH, '[["fan", "BROKEN"]]', False),
    (constants.OOB_HEALTH, '[["fan"]]', False),
    (constants.OOB_HEALTH, '{"fan": "OK"}', False),
    (constants.OOB_HEALTH, '[[1, "OK"]]', False),
])
def test_check_answer(command, output, ok):
    if ok:
        oob.CheckOobAnswer(command, output)
    else:
        with pytest.raises(errors.OpExecError):
            oob.CheckOobAnswer(command, output)


def test_oob_path_error(tmp_path, helper):
    assert backend_oob.OobPathError(helper) is None
    os.chmod(helper, stat.S_IRUSR)
    assert "not executable" in backend_oob.OobPathError(helper)
    assert "error stating" in backend_oob.OobPathError(str(tmp_path / "nope"))
    assert "absolute" in backend_oob.OobPathError(None)


def test_powercycle():
    cfg = FakeConfig({"node1": None, "node2": None})
    result, rpc, _ = _Run(opcodes.OpNodePowercycle(node_name="node2"), cfg)
    assert result == "Reboot scheduled in 5 seconds"
    assert rpc.calls == [("powercycle", "node2-uuid", constants.HT_FAKE, {"x": 1})]
    with pytest.raises(errors.OpPrereqError, match="master and the force"):
        _Run(opcodes.OpNodePowercycle(node_name="node1"), cfg)
    _Run(opcodes.OpNodePowercycle(node_name="node1", force=True), cfg)
    with pytest.raises(errors.OpPrereqError, match="not known"):
        _Run(opcodes.OpNodePowercycle(node_name="node9"), cfg)


def test_backend_powercycle_fake_hypervisor_records(tmp_path, monkeypatch):
    from ganeti.hypervisor import hv_fake
    state = tmp_path / "fake-hv"
    monkeypatch.setattr(hv_fake, "DefaultStateDir", lambda: str(state))
    monkeypatch.setattr(backend_oob, "POWERCYCLE_DELAY", 0.01)
    assert backend_oob.NodePowercycle(constants.HT_FAKE, {}).startswith("Reboot scheduled")
    record = tmp_path / "fake-hv.powercycle"
    for _ in range(200):
        if record.exists():
            break
        import time
        time.sleep(0.02)
    assert record.read_text().strip()
    with pytest.raises(RPCFail, match="Cannot power-cycle"):
        backend_oob.NodePowercycle("no-such-hypervisor", {})


def test_node_verify_oob_paths(helper, tmp_path):
    from ganeti.backend import verify
    missing = str(tmp_path / "missing")
    result = verify.VerifyNode({constants.NV_OOB_PATHS: [helper, missing]}, "c", {})
    ok, problem = result[constants.NV_OOB_PATHS]
    assert ok is None and missing in problem and "error stating" in problem
