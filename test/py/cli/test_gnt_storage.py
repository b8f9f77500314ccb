"""gnt-storage end to end below luxi: the "extstorage" query resource,
LUExtStorageDiagnose (through mcpu), the ext provider check of LUs, and
the output of ``gnt-storage diagnose`` and ``gnt-storage info``."""

from __future__ import annotations

import os
import sys
from types import SimpleNamespace

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "query"))

import instcfg  # noqa: E402

from ganeti import constants, errors, mcpu, objects, opcodes, query  # noqa: E402
from ganeti.client import gnt_storage  # noqa: E402
from ganeti.cmdlib import extstorage as cmdlib_es  # noqa: E402
from ganeti.query import extstorage as query_es  # noqa: E402
from ganeti.rpc.client import RpcResult  # noqa: E402
from ganeti.server import masterd  # noqa: E402

LOOP_PARAMS = [["dir", "Directory holding the volume files"]]
NAS_PARAMS = [["nas_ip", "IP of the NAS"], ["fromsnap", "Snapshot to start from"]]


def _Row(name, status=True, params=None, path=None, diag=""):
    return [name, path or f"/srv/ganeti/extstorage/{name}", status, diag,
            params if params is not None else LOOP_PARAMS]


class FakeRpc:
    def __init__(self, answers):
        self.answers, self.calls, self.timeouts = answers, [], []

    def call_extstorage_diagnose(self, uuids, read_timeout=None):
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
    """Three nodes: node0 and node1 in "default", node2 in "rack2"."""
    cfg = instcfg.MakeConfig(str(tmp_path / "config.data"), 3, 0)
    cfg.AddNodeGroup(objects.NodeGroup(name="rack2"), "job")
    group = cfg.GetNodeGroupInfoByName("rack2")
    cfg.AssignGroupNodes([(_uuids(cfg)[2], group.uuid)])
    return cfg


def _uuids(cfg):
    return [cfg.GetNodeInfoByName(instcfg.NodeName(i)).uuid for i in range(3)]


def _Answers(cfg):
    n0, n1, n2 = _uuids(cfg)
    return {
        n0: [_Row("loopfile"), _Row("nas", params=NAS_PARAMS),
             _Row("broken", status=False, params=[], diag="Script 'grow' not found in"
                  " /srv/ganeti/extstorage/broken"),
             _Row("loopfile", path="/usr/share/ganeti/extstorage/loopfile")],
        n1: [_Row("loopfile"), _Row("nas", params=NAS_PARAMS[:1]),
             _Row("broken", status=False, params=[], diag="Script 'grow' not found in"
                  " /srv/ganeti/extstorage/broken")],
        n2: [_Row("loopfile"), _Row("broken")],
    }


def _ctx(cfg, rpc):
    return SimpleNamespace(cfg=cfg, rpc=rpc)


def _Values(result):
    return {row[0][1]: [value for _, value in row[1:]] for row in result["data"]}


def test_query_merge(cfg):
    rpc = FakeRpc(_Answers(cfg))
    result = query.Query(constants.QR_EXTSTORAGE,
                         ["name", "nodegroup_status", "parameters"], None, _ctx(cfg, rpc))
    rows = _Values(result)
    assert list(rows) == ["broken", "loopfile", "nas"]
    assert rows["loopfile"] == [{"default": True, "rack2": True}, LOOP_PARAMS]
    # nas: missing on node2; the parameters are those node0 and node1 share
    assert rows["nas"] == [{"default": True, "rack2": False}, [NAS_PARAMS[0]]]
    # broken: invalid on node0 and node1, valid on node2
    assert rows["broken"] == [{"default": False, "rack2": True}, LOOP_PARAMS]
    assert rpc.timeouts == [constants.RPC_TMO_QUERY]
    fields = {f["name"]: f["kind"] for f in result["fields"]}
    assert fields == {"name": constants.QFT_TEXT, "nodegroup_status": constants.QFT_OTHER,
                      "parameters": constants.QFT_OTHER}


def test_query_node_status_and_unreachable(cfg):
    n0, n1, n2 = _uuids(cfg)
    answers = _Answers(cfg)
    answers[n1] = "Connection refused"
    rpc = FakeRpc(answers)
    rows = query.Query(constants.QR_EXTSTORAGE, ["name", "node_status"],
                       ["=", "name", "loopfile"], _ctx(cfg, rpc))["data"]
    status = rows[0][1][1]
    assert sorted(status) == ["node0.example.com", "node2.example.com"]
    assert status["node0.example.com"] == [
        ["/srv/ganeti/extstorage/loopfile", True, "", LOOP_PARAMS],
        ["/usr/share/ganeti/extstorage/loopfile", True, "", LOOP_PARAMS]]
    rows = query.Query(constants.QR_EXTSTORAGE, ["name", "node_status"],
                       ["=", "name", "nas"], _ctx(cfg, rpc))["data"]
    assert rows[0][1][1]["node2.example.com"] == []


def test_offline_and_non_vm_capable_nodes_are_not_asked(cfg):
    n0, n1, n2 = _uuids(cfg)
    node = cfg.GetNodeInfo(n1)
    node.offline, node.master_candidate = True, False
    cfg.Update(node)
    node = cfg.GetNodeInfo(n2)
    node.vm_capable = False
    cfg.Update(node)
    rpc = FakeRpc(_Answers(cfg))
    rows = _Values(query.Query(constants.QR_EXTSTORAGE, ["name", "nodegroup_status"],
                               None, _ctx(cfg, rpc)))
    assert rpc.calls == [[n0]]
    assert rows["nas"] == [{"default": True}]


def test_merge_unit():
    infos = query_es.MergeDiagnose({"a": [_Row("x")], "b": []}, {"a": "g1", "b": "g1"})
    assert len(infos) == 1
    assert infos[0].nodegroup_status == {"g1": False}
    assert infos[0].node_status["b"] == []
    assert infos[0].parameters == [tuple(LOOP_PARAMS[0])]
    assert query_es.MergeDiagnose({}, {}) == []


def _Run(cfg, rpc, op):
    ctx = SimpleNamespace(cfg=cfg, glm=masterd.BuildLockManager(cfg), rpc=rpc)
    return mcpu.Processor(ctx, ec_id=1).ExecOpCode(op, mcpu.OpExecCbBase())


def test_lu_extstorage_diagnose(cfg):
    rpc = FakeRpc(_Answers(cfg))
    op = opcodes.OpExtStorageDiagnose(output_fields=["name", "parameters"], names=[])
    assert _Run(cfg, rpc, op) == [["broken", LOOP_PARAMS], ["loopfile", LOOP_PARAMS],
                                  ["nas", [NAS_PARAMS[0]]]]
    op = opcodes.OpExtStorageDiagnose(output_fields=["name"], names=["nas", "nosuch"])
    assert _Run(cfg, rpc, op) == [["nas"]]
    with pytest.raises(errors.OpPrereqError, match="Unknown output fields.*nosuch"):
        _Run(cfg, rpc, opcodes.OpExtStorageDiagnose(output_fields=["name", "nosuch"],
                                                    names=[]))


class _FakeLu:
    def __init__(self, cfg, rpc):
        self.cfg, self.rpc = cfg, rpc


def test_check_provider_for_new_disks(cfg):
    n0, n1, n2 = _uuids(cfg)
    lu = _FakeLu(cfg, FakeRpc(_Answers(cfg)))
    cmdlib_es.CheckExtStorageProvider(lu, [n0, n1], "nas", {"nas_ip": "10.0.0.1",
                                                            "access": "userspace"})
    cases = [
        ([n0, n1], "nas", {"fromsnap": "s"},
         "provider 'nas' does not support the parameter\\(s\\) fromsnap \\(supported:"
         " nas_ip\\)"),
        ([n2], "nas", {}, "provider 'nas' not found on node node2.example.com"),
        ([n0], "broken", {}, "'broken' is not valid on node node0.example.com"
         " \\(/srv/ganeti/extstorage/broken\\): Script 'grow' not found"),
        ([n0], "loopfile", {"size": 1}, "does not support the parameter\\(s\\) size"),
    ]
    for nodes, provider, params, message in cases:
        with pytest.raises(errors.OpPrereqError, match=message) as info:
            cmdlib_es.CheckExtStorageProvider(lu, nodes, provider, params)
        assert info.value.args[1] == errors.ECODE_INVAL
    answers = _Answers(cfg)
    answers[n1] = "Connection refused"
    lu = _FakeLu(cfg, FakeRpc(answers))
    with pytest.raises(errors.OpPrereqError, match="Cannot get the ExtStorage providers"
                       " of node node1.example.com: Connection refused") as info:
        cmdlib_es.CheckExtStorageProvider(lu, [n0, n1], "loopfile", {})
    assert info.value.args[1] == errors.ECODE_ENVIRON


# --- gnt-storage -------------------------------------------------------------------------

@pytest.fixture
def cli_env(cfg, monkeypatch):
    """gnt-storage with its opcodes run here through mcpu."""
    rpc = FakeRpc(_Answers(cfg))

    def _Submit(op, cl=None, feedback_fn=None, opts=None, reporter=None):
        return _Run(cfg, rpc, op)

    monkeypatch.setattr(gnt_storage.cli, "SubmitOpCode", _Submit)
    return SimpleNamespace(cfg=cfg, rpc=rpc)


def test_gnt_storage_diagnose(cli_env, capsys):
    assert gnt_storage.Main(["gnt-storage", "diagnose"]) == 0
    out = capsys.readouterr().out
    assert out.split("Provider: ")[1:] == [
        "broken\n---\n"
        "  Node: node2.example.com, status: valid (path: /srv/ganeti/extstorage/broken)"
        " [parameters: dir]\n"
        "  Node: node0.example.com, status: invalid - Script 'grow' not found in"
        " /srv/ganeti/extstorage/broken (path: /srv/ganeti/extstorage/broken)"
        " [no parameters]\n"
        "  Node: node1.example.com, status: invalid - Script 'grow' not found in"
        " /srv/ganeti/extstorage/broken (path: /srv/ganeti/extstorage/broken)"
        " [no parameters]\n"
        "  --\n"
        "  For nodegroup: rack2 --> valid\n"
        "  For nodegroup: default --> invalid\n\n",
        "loopfile\n---\n"
        "  Node: node0.example.com, status: valid (path: /srv/ganeti/extstorage/loopfile)"
        " [parameters: dir]\n"
        "  Node: node1.example.com, status: valid (path: /srv/ganeti/extstorage/loopfile)"
        " [parameters: dir]\n"
        "  Node: node2.example.com, status: valid (path: /srv/ganeti/extstorage/loopfile)"
        " [parameters: dir]\n"
        "  --\n"
        "  For nodegroup: default --> valid\n"
        "  For nodegroup: rack2 --> valid\n\n",
        "nas\n---\n"
        "  Node: node0.example.com, status: valid (path: /srv/ganeti/extstorage/nas)"
        " [parameters: nas_ip, fromsnap]\n"
        "  Node: node1.example.com, status: valid (path: /srv/ganeti/extstorage/nas)"
        " [parameters: nas_ip]\n"
        "  Node: node2.example.com, status: ExtStorage provider not found\n"
        "  --\n"
        "  For nodegroup: default --> valid\n"
        "  For nodegroup: rack2 --> invalid\n\n",
    ]


def test_gnt_storage_info(cli_env, capsys):
    assert gnt_storage.Main(["gnt-storage", "info"]) == 0
    out = capsys.readouterr().out
    assert "loopfile:\n  - Valid for nodegroups:\n      default\n      rack2\n" \
           "  - Supported parameters:\n      dir: Directory holding the volume files\n\n" \
           in out
    assert "nas:\n  - Valid for nodegroups:\n      default\n" \
           "  - Supported parameters:\n      nas_ip: IP of the NAS\n\n" in out
    assert gnt_storage.Main(["gnt-storage", "info", "nas", "nosuch"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("nas:\n") and out.endswith("\nnosuch: Not Found\n\n")
    assert "loopfile" not in out


def test_gnt_storage_info_invalid_everywhere(cfg, monkeypatch, capsys):
    rpc = FakeRpc({uuid: [_Row("broken", status=False, params=[], diag="no")]
                   for uuid in _uuids(cfg)})
    monkeypatch.setattr(gnt_storage.cli, "SubmitOpCode",
                        lambda op, **kwargs: _Run(cfg, rpc, op))
    assert gnt_storage.Main(["gnt-storage", "info"]) == 0
    assert capsys.readouterr().out == "broken:\n  - Invalid for all nodegroups\n\n"


def test_gnt_storage_no_providers(cfg, monkeypatch, capsys):
    rpc = FakeRpc({uuid: [] for uuid in _uuids(cfg)})
    monkeypatch.setattr(gnt_storage.cli, "SubmitOpCode",
                        lambda op, **kwargs: _Run(cfg, rpc, op))
    assert gnt_storage.Main(["gnt-storage", "diagnose"]) == 1
    assert "Can't get the list of ExtStorage providers" in capsys.readouterr().err
    assert gnt_storage.Main(["gnt-storage", "info"]) == 1
    assert gnt_storage.Main(["gnt-storage", "diagnose", "extra"]) != 0


def test_script_launcher():
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(HERE))),
                        "scripts", "gnt-storage")
    assert os.access(path, os.X_OK)
    with open(path, encoding="utf-8") as fd:
        assert "from ganeti.client.gnt_storage import Main" in fd.read()
