"""Tests for the master side of hooks (ganeti.hooksmaster), with mcpu."""

from __future__ import annotations

import os
import sys
from types import SimpleNamespace

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import nodedhelpers  # noqa: E402

from ganeti import config, constants, errors, hooksmaster, mcpu, objects, opcodes  # noqa: E402
from ganeti.cmdlib.base import LogicalUnit  # noqa: E402
from ganeti.config import base as config_base  # noqa: E402
from ganeti.rpc.client import RpcResult  # noqa: E402
from ganeti.rpc.node import RpcRunner, StaticResolver  # noqa: E402
from ganeti.server import masterd  # noqa: E402

cluster_crypto = nodedhelpers.cluster_crypto
start_noded = nodedhelpers.start_noded

MASTER = "n0x0.example.com"


@pytest.fixture
def cfg(tmp_path):
    path = str(tmp_path / "config.data")
    cluster = objects.Cluster(
        cluster_name="cluster.example.com", master_ip="192.0.2.254",
        master_netdev="lo", enabled_hypervisors=[constants.HT_FAKE],
        mac_prefix="aa:00:00", rsahostkeypub="ssh-rsa AAAA")
    master = objects.Node(name=MASTER, primary_ip="192.0.2.1")
    config_base.InitConfig(constants.CONFIG_VERSION, cluster, master, path)
    return config.ConfigWriter(path, accept_foreign=True)


class LUHooked(LogicalUnit):
    """An LU with hooks on the master, recording what it did."""

    HPATH = "test-op"
    HTYPE = constants.HTYPE_CLUSTER
    REQ_BGL = False
    ran: list[str] = []

    def ExpandNames(self):
        self.needed_locks = {}
        self.state = "before"

    def BuildHooksEnv(self):
        return {"NODE_NAME": "target.example.com", "STATE": self.state,
                "LIST": ["a", "b"]}

    def BuildHooksNodes(self):
        master = self.cfg.GetMasterNode()
        return [master], [master, master]

    def Exec(self, feedback_fn):
        LUHooked.ran.append(self.op.OP_ID)
        self.state = "after"
        return "done"


class Callbacks(mcpu.OpExecCbBase):
    def __init__(self):
        self.feedback = []

    def Feedback(self, *args):
        self.feedback.append(args)


def _Run(cfg, rpc):
    ctx = SimpleNamespace(cfg=cfg, glm=masterd.BuildLockManager(cfg), rpc=rpc)
    proc = mcpu.Processor(ctx, ec_id=1, lu_class_fn=lambda op: LUHooked)
    cbs = Callbacks()
    return proc.ExecOpCode(opcodes.OpTestDelay(duration=0), cbs), cbs


class FakeRpc:
    def __init__(self, answers):
        self.answers, self.calls = answers, []

    def call_hooks_runner(self, nodes, hpath, phase, env):
        self.calls.append((list(nodes), hpath, phase, dict(env)))
        result = {}
        for node in nodes:
            answer = self.answers.get(phase, [])
            if isinstance(answer, str):
                result[node] = RpcResult(data=answer, failed=True)
            else:
                result[node] = RpcResult(data=[True, answer])
        return result


def test_environment_and_phases(cfg):
    LUHooked.ran = []
    rpc = FakeRpc({})
    result, _ = _Run(cfg, rpc)
    assert result == "done" and LUHooked.ran == ["OP_TEST_DELAY"]
    (pre_nodes, hpath, phase, pre), (post_nodes, _, phase2, post) = rpc.calls
    master = cfg.GetMasterNode()
    assert (pre_nodes, hpath, phase, phase2) == ([master], "test-op", "pre", "post")
    assert post_nodes == [master]      # duplicates dropped
    assert pre == {
        "PATH": constants.HOOKS_PATH, "GANETI_HOOKS_VERSION": "2",
        "GANETI_OP_CODE": "OP_TEST_DELAY", "GANETI_OBJECT_TYPE": "CLUSTER",
        "GANETI_HOOKS_PHASE": "pre", "GANETI_HOOKS_PATH": "test-op",
        "GANETI_DATA_DIR": pre["GANETI_DATA_DIR"],
        "GANETI_CLUSTER": "cluster.example.com", "GANETI_MASTER": MASTER,
        "GANETI_NODE_NAME": "target.example.com", "GANETI_STATE": "before",
        "GANETI_LIST": "a b"}
    assert post["GANETI_HOOKS_PHASE"] == "post"
    assert post["GANETI_STATE"] == "before" and post["GANETI_POST_STATE"] == "after"
    assert post["GANETI_POST_NODE_NAME"] == "target.example.com"


def test_pre_failure_aborts(cfg):
    LUHooked.ran = []
    rpc = FakeRpc({"pre": [["test-op-pre.d/00-ok", constants.HKR_SUCCESS, ""],
                           ["test-op-pre.d/10-deny", constants.HKR_FAIL, "no way"]]})
    with pytest.raises(errors.HooksAbort) as info:
        _Run(cfg, rpc)
    assert info.value.args[0] == [(MASTER, "test-op-pre.d/10-deny", "no way")]
    assert LUHooked.ran == []
    assert len(rpc.calls) == 1


def test_post_failure_and_unreachable_are_warnings(cfg):
    LUHooked.ran = []
    rpc = FakeRpc({"pre": "Connection refused",
                   "post": [["test-op-post.d/x", constants.HKR_FAIL, "oops"]]})
    result, cbs = _Run(cfg, rpc)
    assert result == "done"
    text = "\n".join(str(args) for args in cbs.feedback)
    assert f"Communication failure to node {MASTER}: Connection refused" in text
    assert "Post hook test-op-post.d/x failed on node" in text and "oops" in text


def test_no_hooks_lu_runs_nothing():
    lu = SimpleNamespace(HPATH=None, HTYPE=None, op=opcodes.OpTestDelay(duration=0),
                         LogWarning=lambda *a: None)
    hm = hooksmaster.HooksMaster.BuildFromLu(lu)
    assert hm.RunPhase(constants.HOOKS_PHASE_PRE) == {}
    assert hm.RunPhase(constants.HOOKS_PHASE_POST) == {}
    with pytest.raises(errors.ProgrammerError):
        hm.RunPhase("middle")


def test_prefixed_variables_rejected():
    with pytest.raises(errors.ProgrammerError, match="without the GANETI_ prefix"):
        hooksmaster.PrefixEnv("GANETI_", {"GANETI_X": 1})


def _WriteHook(root, hpath, phase, name, body):
    directory = os.path.join(root, "etc", "ganeti", "hooks", f"{hpath}-{phase}.d")
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, name)
    with open(path, "w", encoding="utf-8") as fd:
        fd.write("#!/bin/sh\n" + body + "\n")
    os.chmod(path, 0o755)


@pytest.mark.timeout(120)
def test_real_noded_pre_hook_aborts(cfg, start_noded, cluster_crypto):
    (daemon,) = start_noded(1)
    assert daemon.name == MASTER
    master = cfg.GetMasterNode()
    rpc = RpcRunner(StaticResolver({master: daemon.endpoint}),
                    ssl_config=cluster_crypto.ssl_config)
    log = os.path.join(daemon.root, "post.log")
    _WriteHook(daemon.root, "test-op", "post", "50-log",
               f"env | grep ^GANETI_ | sort > {log}")
    LUHooked.ran = []
    assert _Run(cfg, rpc)[0] == "done"
    with open(log, encoding="utf-8") as fd:
        env = dict(line.rstrip("\n").split("=", 1) for line in fd)
    assert env["GANETI_HOOKS_PHASE"] == "post"
    assert env["GANETI_POST_STATE"] == "after"
    assert env["GANETI_OP_CODE"] == "OP_TEST_DELAY"

    _WriteHook(daemon.root, "test-op", "pre", "10-deny",
               "echo \"refused by policy for $GANETI_NODE_NAME\"; exit 1")
    LUHooked.ran = []
    with pytest.raises(errors.HooksAbort) as info:
        _Run(cfg, rpc)
    assert info.value.args[0] == [
        (MASTER, "test-op-pre.d/10-deny",
         "refused by policy for target.example.com")]
    assert LUHooked.ran == []
    text = errors.HooksAbort(info.value.args[0])
    from ganeti import cli
    code, msg = cli.FormatError(text)
    assert "node: n0x0.example.com, script: test-op-pre.d/10-deny" in msg


def test_instance_hook_env(tmp_path):
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "query"))
    import instcfg
    cfg = instcfg.MakeConfig(str(tmp_path / "c.data"), 2, 2)
    inst = cfg.GetInstanceInfoByName("inst1.example.com")
    env = hooksmaster.BuildInstanceHookEnv(cfg, inst, {"FORCE": True})
    assert env["INSTANCE_NAME"] == "inst1.example.com"
    assert env["INSTANCE_PRIMARY"] == "node1.example.com"
    assert env["INSTANCE_SECONDARY"] == ""
    assert env["INSTANCE_DISK_TEMPLATE"] == "file" and env["INSTANCE_DISK_COUNT"] == 2
    assert env["INSTANCE_DISK1_SIZE"] == 512 and env["INSTANCE_DISK0_MODE"] == "rw"
    assert env["INSTANCE_NIC_COUNT"] == 1
    assert env["INSTANCE_NIC0_MAC"] == "aa:00:00:00:00:01"
    assert env["INSTANCE_NIC0_MODE"] == "bridged"
    assert env["INSTANCE_NIC0_BRIDGE"] == env["INSTANCE_NIC0_LINK"]
    assert env["INSTANCE_BE_maxmem"] == 128 and env["INSTANCE_MEMORY"] == 128
    assert env["INSTANCE_HV_migration_mode"] == constants.HT_MIGRATION_LIVE
    assert env["INSTANCE_TAGS"] == "t1" and env["FORCE"] is True
    assert env["INSTANCE_STATUS"] == "down" and env["INSTANCE_OS_TYPE"] == "noop+default"
    prefixed = hooksmaster.PrefixEnv("GANETI_", env)
    assert prefixed["GANETI_FORCE"] == "True" and prefixed["GANETI_INSTANCE_SECONDARY"] == ""
