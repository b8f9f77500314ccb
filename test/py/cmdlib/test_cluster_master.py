"""Tests for the master IP LUs and the cluster rename, run through mcpu."""

from __future__ import annotations

import os
import sys

import pytest

from ganeti import config, constants, errors, objects, opcodes, pathutils, utils
from ganeti.config import base as config_base
from ganeti.rpc.client import RpcResult

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_cluster import _Context, _Run  # noqa: E402


@pytest.fixture
def cfg(tmp_path):
    path = str(tmp_path / "config.data")
    cluster = objects.Cluster(
        cluster_name="cluster.example.com", master_ip="192.0.2.254",
        master_netdev="lo", enabled_hypervisors=[constants.HT_FAKE],
        mac_prefix="aa:00:00", rsahostkeypub="ssh-rsa AAAA", candidate_pool_size=1,
        enabled_disk_templates=[constants.DT_DISKLESS])
    master = objects.Node(name="node1.example.com", primary_ip="192.0.2.1")
    config_base.InitConfig(constants.CONFIG_VERSION, cluster, master, path)
    return config.ConfigWriter(path, accept_foreign=True)


class FakeRunner:
    """Records master IP calls; fails those named in ``fail``."""

    def __init__(self, fail=()):
        self.calls = []
        self.fail = set(fail)

    def _Call(self, name, node, params, external):
        self.calls.append((name, node, params.ip, params.netdev, external))
        if name in self.fail:
            return RpcResult(data=[False, "ip: RTNETLINK answers: Operation not permitted"])
        return RpcResult(data=[True, None])

    def call_node_activate_master_ip(self, node, params, external):
        return self._Call("activate", node, params, external)

    def call_node_deactivate_master_ip(self, node, params, external):
        return self._Call("deactivate", node, params, external)


def test_activate_and_deactivate_call_the_master(cfg):
    rpc = FakeRunner()
    _, cbs = _Run(_Context(cfg, rpc), opcodes.OpClusterActivateMasterIp())
    _Run(_Context(cfg, rpc), opcodes.OpClusterDeactivateMasterIp())
    master = cfg.GetMasterNode()
    assert rpc.calls == [("activate", master, "192.0.2.254", "lo", False),
                         ("deactivate", master, "192.0.2.254", "lo", False)]
    assert any("192.0.2.254/32 up on lo" in str(m) for m in cbs.feedback)


def test_activate_failure_is_reported(cfg):
    rpc = FakeRunner(fail={"activate"})
    with pytest.raises(errors.OpExecError, match="Could not activate.*not permitted"):
        _Run(_Context(cfg, rpc), opcodes.OpClusterActivateMasterIp())


def test_master_ip_needs_rpc(cfg):
    with pytest.raises(errors.OpPrereqError, match="without node RPC"):
        _Run(_Context(cfg), opcodes.OpClusterActivateMasterIp())


def _Resolve(monkeypatch, table):
    def _GetIP(name, family=None):
        if name not in table:
            raise errors.ResolverError(name, -2, "Name or service not known")
        return table[name]
    monkeypatch.setattr(utils.Hostname, "GetIP", staticmethod(_GetIP))
    monkeypatch.setattr(utils, "TcpPing", lambda *args, **kwargs: False)


def test_rename_moves_the_master_ip(cfg, monkeypatch):
    _Resolve(monkeypatch, {"new.example.com": "192.0.2.200"})
    rpc = FakeRunner()
    result, _ = _Run(_Context(cfg, rpc), opcodes.OpClusterRename(name="New.Example.com."))
    assert result == "new.example.com"
    assert cfg.GetClusterName() == "new.example.com"
    assert cfg.GetMasterIP() == "192.0.2.200"
    assert [(c[0], c[2]) for c in rpc.calls] == [("deactivate", "192.0.2.254"),
                                                 ("activate", "192.0.2.200")]


def test_rename_same_name_and_ip_is_refused(cfg, monkeypatch):
    _Resolve(monkeypatch, {"cluster.example.com": "192.0.2.254"})
    serial = cfg.GetConfigSerialNo()
    with pytest.raises(errors.OpPrereqError, match="Neither the name nor the IP"):
        _Run(_Context(cfg, FakeRunner()), opcodes.OpClusterRename(name="cluster.example.com"))
    assert cfg.GetConfigSerialNo() == serial


def test_rename_to_an_address_in_use_is_refused(cfg, monkeypatch):
    _Resolve(monkeypatch, {"new.example.com": "192.0.2.7"})
    monkeypatch.setattr(utils, "TcpPing", lambda *args, **kwargs: True)
    with pytest.raises(errors.OpPrereqError, match=r"192.0.2.7\) answers") as info:
        _Run(_Context(cfg, FakeRunner()), opcodes.OpClusterRename(name="new.example.com"))
    assert info.value.args[1] == errors.ECODE_NOTUNIQUE


def test_rename_unresolvable_name(cfg, monkeypatch):
    _Resolve(monkeypatch, {})
    monkeypatch.setattr(pathutils, "IsVirtualCluster", lambda: False)
    with pytest.raises(errors.ResolverError):
        _Run(_Context(cfg, FakeRunner()), opcodes.OpClusterRename(name="nowhere.example"))
    # A virtual cluster keeps its master IP; only the name changes
    monkeypatch.setattr(pathutils, "IsVirtualCluster", lambda: True)
    rpc = FakeRunner()
    _Run(_Context(cfg, rpc), opcodes.OpClusterRename(name="nowhere.example"))
    assert cfg.GetClusterName() == "nowhere.example"
    assert cfg.GetMasterIP() == "192.0.2.254" and rpc.calls == []


def test_rename_rejects_invalid_names(cfg):
    with pytest.raises(errors.OpPrereqError):
        _Run(_Context(cfg, FakeRunner()), opcodes.OpClusterRename(name="bad name!"))
