"""Tests for the "os" query resource, LUOsDiagnose and gnt-os."""

from __future__ import annotations

import os
import re
import sys
from types import SimpleNamespace

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "backend"))

import nodedhelpers  # noqa: E402
import instcfg  # noqa: E402
import osdefs  # noqa: E402

from ganeti import constants, errors, mcpu, opcodes, query  # noqa: E402
from ganeti.client import gnt_os  # noqa: E402
from ganeti.query import os as query_os  # noqa: E402
from ganeti.rpc.client import RpcResult  # noqa: E402
from ganeti.rpc.node import RpcRunner, StaticResolver  # noqa: E402
from ganeti.server import masterd  # noqa: E402

cluster_crypto = nodedhelpers.cluster_crypto
start_noded = nodedhelpers.start_noded

PARAMS = [["message", "A line of text"]]


def _Row(name, status=True, variants=("default", "small"), params=PARAMS,
         api=(20, 15), path=None, version="1.0", diag=""):
    return [name, path or f"/srv/ganeti/os/{name}", status, diag, list(variants),
            params, list(api), True, version]


class FakeRpc:
    def __init__(self, answers):
        self.answers, self.calls = answers, []
        #: the read_timeout of each call
        self.timeouts = []

    def call_os_diagnose(self, uuids, read_timeout=None):
        self.calls.append(list(uuids))
        self.timeouts.append(read_timeout)
        result = {}
        for uuid in uuids:
            answer = self.answers.get(uuid, "Connection refused")
            if isinstance(answer, str):
                result[uuid] = RpcResult(data=answer, failed=True)
            else:
                result[uuid] = RpcResult(data=[True, answer])
        return result


@pytest.fixture
def cfg(tmp_path):
    return instcfg.MakeConfig(str(tmp_path / "config.data"), 3, 0)


def _uuids(cfg):
    return [cfg.GetNodeInfoByName(instcfg.NodeName(i)).uuid for i in range(3)]


def _Answers(cfg):
    n0, n1, n2 = _uuids(cfg)
    return {
        n0: [_Row("noop"), _Row("debian", api=(20,), variants=("a", "b")),
             _Row("broken", status=False, diag="missing script create"),
             _Row("noop", path="/usr/share/ganeti/os/noop")],
        n1: [_Row("noop", variants=("default",), version="1.1"),
             _Row("debian", variants=("b", "c")),
             _Row("broken", status=False, diag="missing script create")],
        n2: [_Row("noop"), _Row("broken", status=False, diag="bad api")],
    }


def _ctx(cfg, rpc):
    return SimpleNamespace(cfg=cfg, rpc=rpc)


def test_merge(cfg):
    rpc = FakeRpc(_Answers(cfg))
    result = query.Query("os", ["name", "valid", "variants", "api_versions",
                                "parameters", "os_version", "hidden", "trusted"],
                         None, _ctx(cfg, rpc))
    rows = {row[0][1]: [value for _, value in row[1:]] for row in result["data"]}
    assert list(rows) == ["broken", "debian", "noop"]
    assert rows["noop"][:4] == [True, ["default"], [15, 20], PARAMS]
    assert result["data"][2][5] == [constants.RS_UNAVAIL, None]   # versions differ
    assert rows["debian"][0] is False                  # missing on node2
    assert rows["broken"][0] is False
    assert rows["noop"][5:] == [False, True]


def test_node_status_and_unreachable(cfg):
    n0, n1, n2 = _uuids(cfg)
    answers = _Answers(cfg)
    del answers[n2]
    rpc = FakeRpc(answers)
    rows = query.Query("os", ["name", "valid", "node_status"], ["=", "name", "noop"],
                       _ctx(cfg, rpc))["data"]
    assert rows[0][1] == [constants.RS_NORMAL, True]   # node2 did not answer
    status = rows[0][2][1]
    assert sorted(status) == ["node0.example.com", "node1.example.com"]
    assert len(status["node0.example.com"]) == 2      # the shadowed copy too
    assert status["node0.example.com"][1][0] == "/usr/share/ganeti/os/noop"


def test_offline_and_non_vm_capable_nodes_are_not_asked(cfg):
    n0, n1, n2 = _uuids(cfg)
    node = cfg.GetNodeInfo(n1)
    node.offline, node.master_candidate = True, False
    cfg.Update(node)
    node = cfg.GetNodeInfo(n2)
    node.vm_capable = False
    cfg.Update(node)
    rpc = FakeRpc(_Answers(cfg))
    query.Query("os", ["name"], None, _ctx(cfg, rpc))
    assert rpc.calls == [[n0]]


def _Run(cfg, rpc, op):
    ctx = SimpleNamespace(cfg=cfg, glm=masterd.BuildLockManager(cfg), rpc=rpc)
    return mcpu.Processor(ctx, ec_id=1).ExecOpCode(op, mcpu.OpExecCbBase())


def _Hide(cfg, hidden=(), blacklisted=()):
    cluster = cfg.GetClusterInfo()
    cluster.hidden_os = list(hidden)
    cluster.blacklisted_os = list(blacklisted)
    cluster.osparams = {"noop": {"message": "hi"}}
    cluster.os_hvp = {"noop": {constants.HT_FAKE: {"migration_mode": "non-live"}}}
    cfg.Update(cluster)


def test_lu_os_diagnose_hides_as_ganeti(cfg):
    n0, n1, n2 = _uuids(cfg)
    answers = {uuid: [_Row("noop"), _Row("lenny"), _Row("etch"),
                      _Row("bad", status=False)] for uuid in (n0, n1, n2)}
    rpc = FakeRpc(answers)
    _Hide(cfg, hidden=["lenny"], blacklisted=["etch"])
    op = opcodes.OpOsDiagnose(output_fields=["name", "variants"], names=[])
    assert _Run(cfg, rpc, op) == [["noop", ["default", "small"]]]
    op = opcodes.OpOsDiagnose(output_fields=["name", "hidden", "blacklisted"], names=[])
    assert _Run(cfg, rpc, op) == [["etch", False, True], ["lenny", True, False],
                                  ["noop", False, False]]
    op = opcodes.OpOsDiagnose(output_fields=["name", "valid", "hidden", "blacklisted",
                                             "osparams", "os_hvp"], names=["bad", "noop"])
    rows = _Run(cfg, rpc, op)
    assert rows[0][:2] == ["bad", False]
    assert rows[1][4:] == [{"message": "hi"}, {"fake": {"migration_mode": "non-live"}}]
    with pytest.raises(errors.OpPrereqError, match="Unknown output fields.*nosuch"):
        _Run(cfg, rpc, opcodes.OpOsDiagnose(output_fields=["name", "nosuch"], names=[]))


# --- gnt-os ------------------------------------------------------------------------------

@pytest.fixture
def cli_env(cfg, monkeypatch):
    """gnt-os with its opcodes run here through mcpu."""
    n0, n1, n2 = _uuids(cfg)
    answers = _Answers(cfg)
    answers[n2].insert(1, _Row("debian", variants=("b", "x")))
    rpc = FakeRpc(answers)
    submitted = []

    def _Submit(op, cl=None, feedback_fn=None, opts=None, reporter=None):
        return _Run(cfg, rpc, op)

    def _SubmitOrSend(op, opts, cl=None, feedback_fn=None):
        submitted.append(op)
        return _Run(cfg, rpc, op)

    monkeypatch.setattr(gnt_os.cli, "SubmitOpCode", _Submit)
    monkeypatch.setattr(gnt_os.cli, "SubmitOrSend", _SubmitOrSend)
    return SimpleNamespace(cfg=cfg, rpc=rpc, submitted=submitted)


def test_gnt_os_list(cli_env, capsys):
    assert gnt_os.Main(["gnt-os", "list"]) == 0
    assert capsys.readouterr().out.split("\n") == [
        "Name", "debian+b", "noop+default", ""]
    _Hide(cli_env.cfg, hidden=["debian"])
    assert gnt_os.Main(["gnt-os", "list", "--no-headers"]) == 0
    assert capsys.readouterr().out == "noop+default\n"


def test_gnt_os_info(cli_env, capsys):
    _Hide(cli_env.cfg)
    assert gnt_os.Main(["gnt-os", "info", "noop"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("noop:\n  - valid: True\n  - hidden: False\n"
                          "  - blacklisted: False\n  - API versions:\n    - 15\n"
                          "    - 20\n  - variants:\n    - default\n"
                          "  - parameters:\n    - message: A line of text\n")
    assert "  - OS parameters:\n    - message: hi\n" in out
    assert "    - fake:\n      - migration_mode: non-live\n" in out
    assert "debian" not in out


def test_gnt_os_diagnose(cli_env, capsys):
    assert gnt_os.Main(["gnt-os", "diagnose"]) == 1                 # broken is invalid
    out = capsys.readouterr().out
    assert "OS: broken [global status: invalid]\n" in out
    assert ("  Node: node0.example.com, status: invalid - missing script create"
            " (path: /srv/ganeti/os/broken) [API versions: 20, 15]") in out
    assert "OS: noop [global status: valid]\n  Variants: [default]\n" in out
    assert ("  Node: node0.example.com, status: valid (path: /srv/ganeti/os/noop)"
            " [API versions: 20, 15] [variants: default, small] [parameters: message]"
            " [trusted]\n    [hidden] path: /usr/share/ganeti/os/noop, status: valid\n"
            in out)


def test_gnt_os_modify(cli_env, capsys):
    assert gnt_os.Main(["gnt-os", "modify", "-H", "fake:migration_mode=non-live",
                        "-O", "message=hello", "--hidden", "yes",
                        "--blacklisted=no", "noop"]) == 0
    (op,) = cli_env.submitted
    assert op.os_hvp == {"noop": {"fake": {"migration_mode": "non-live"}}}
    assert op.osparams == {"noop": {"message": "hello"}}
    assert op.hidden_os == [["add", "noop"]]
    assert op.blacklisted_os == [["remove", "noop"]]
    cluster = cli_env.cfg.GetClusterInfo()
    assert cluster.hidden_os == ["noop"] and cluster.osparams["noop"] == {
        "message": "hello"}
    assert gnt_os.Main(["gnt-os", "modify", "noop"]) == 1
    assert "At least one of OS parameters" in capsys.readouterr().err
    assert gnt_os.Main(["gnt-os", "modify", "--hidden", "maybe", "noop"]) != 0
    assert gnt_os.Main(["gnt-os", "modify", "--hidden", "yes", "noop+default"]) != 0
    assert "apply to whole OSes" in capsys.readouterr().err


# --- real node daemons --------------------------------------------------------------------

@pytest.mark.timeout(120)
def test_real_nodes(tmp_path, start_noded, cluster_crypto):
    daemons = start_noded(2)
    cfg = instcfg.MakeConfig(str(tmp_path / "config.data"), 2, 0,
                             node_names=[d.name for d in daemons])
    for daemon in daemons:
        osdefs.InstallNoop(daemon.root)
    osdefs.MakeOs(daemons[0].root, "half")           # only on the first node
    endpoints = {cfg.GetNodeInfoByName(d.name).uuid: d.endpoint for d in daemons}
    rpc = RpcRunner(StaticResolver(endpoints), ssl_config=cluster_crypto.ssl_config)
    rows = query.Query("os", ["name", "valid", "variants", "api_versions",
                              "parameters", "os_version"], None, _ctx(cfg, rpc))["data"]
    values = [[value for _, value in row] for row in rows]
    assert values[0][:2] == ["half", False]
    assert values[1] == ["noop", True, ["default", "small"], [10, 15, 20],
                         [["message", "A line of text written into the image (at most"
                           " 200 characters)"]], "1.0"]
    op = opcodes.OpOsDiagnose(output_fields=["name"], names=[])
    assert _Run(cfg, rpc, op) == [["noop"]]


def test_merge_unit():
    cluster = SimpleNamespace(hidden_os=["x"], blacklisted_os=[], os_hvp={}, osparams={})
    infos = query_os.MergeDiagnose(cluster, {"a": [_Row("x")], "b": []})
    assert len(infos) == 1 and not infos[0].valid and infos[0].hidden
    assert infos[0].node_status == {"a": [infos[0].node_status["a"][0]], "b": []}


def test_blacklisted_os_not_for_new_instances():
    from ganeti.cmdlib import os as cmdlib_os
    cluster = SimpleNamespace(blacklisted_os=["etch"])
    cmdlib_os.CheckOsAllowedForNewInstance(cluster, "noop+default")
    for name in ("etch", "etch+small"):
        pattern = re.escape(f"'{name}' is blacklisted")
        with pytest.raises(errors.OpPrereqError, match=pattern) as info:
            cmdlib_os.CheckOsAllowedForNewInstance(cluster, name)
        assert info.value.args[1] == errors.ECODE_STATE
