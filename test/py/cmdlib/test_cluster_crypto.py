"""LUClusterRenewCrypto's node certificates: every online node renews its
own client certificate over RPC, the master last; the candidates' digests
go to the cluster's candidate_certs."""

from __future__ import annotations

import os
import sys

import pytest

from ganeti import constants, errors, opcodes

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_cluster import (MASTER, _AddNode, _Context, _Fail, _Ok,  # noqa: E402
                          _Run, cfg)  # noqa: F401


class FakeTokenRunner:
    """Answers node_crypto_tokens with a new digest per call."""

    def __init__(self, config_writer, fail=()):
        self.cfg = config_writer
        self.fail = set(fail)
        self.calls = []

    def call_node_crypto_tokens(self, uuid, requests):
        name = self.cfg.GetNodeName(uuid)
        self.calls.append((name, requests))
        if name in self.fail:
            return _Fail("Cannot write client.pem: disk full")
        return _Ok([[constants.CRYPTO_TYPE_SSL_DIGEST, f"DIGEST-{name}"]])


@pytest.fixture
def nodes(cfg):  # noqa: F811
    return {
        "n2": _AddNode(cfg, "node2.example.com", "192.0.2.2", master_candidate=True),
        "n3": _AddNode(cfg, "node3.example.com", "192.0.2.3"),
        "off": _AddNode(cfg, "node4.example.com", "192.0.2.4", offline=True),
    }


def test_renews_online_nodes_master_last(cfg, nodes):  # noqa: F811
    rpc = FakeTokenRunner(cfg)
    _, cbs = _Run(_Context(cfg, rpc), opcodes.OpClusterRenewCrypto(node_certificates=True))
    assert [name for name, _ in rpc.calls] == [
        "node2.example.com", "node3.example.com", MASTER]
    assert all(req == [(constants.CRYPTO_TYPE_SSL_DIGEST,
                        constants.CRYPTO_ACTION_CREATE, {})] for _, req in rpc.calls)
    assert any("node4.example.com is offline" in msg for msg in cbs.feedback)
    certs = cfg.GetClusterInfo().candidate_certs
    # the master and the candidate, not the plain node nor the offline one
    assert certs == {cfg.GetMasterNode(): f"DIGEST-{MASTER}",
                     nodes["n2"].uuid: "DIGEST-node2.example.com"}


def test_failure_names_the_node_and_keeps_the_others(cfg, nodes):  # noqa: F811
    rpc = FakeTokenRunner(cfg, fail=["node2.example.com"])
    with pytest.raises(errors.OpExecError,
                       match="failed on node\\(s\\) node2.example.com") as info:
        _Run(_Context(cfg, rpc), opcodes.OpClusterRenewCrypto(node_certificates=True))
    assert "node3" not in str(info.value)
    # the others were still renewed, the master last
    assert [name for name, _ in rpc.calls][-1] == MASTER
    certs = cfg.GetClusterInfo().candidate_certs
    assert certs == {cfg.GetMasterNode(): f"DIGEST-{MASTER}"}


def test_demoted_node_leaves_candidate_certs(cfg, nodes):  # noqa: F811
    cluster = cfg.GetClusterInfo()
    cluster.candidate_certs = {nodes["n3"].uuid: "OLD", nodes["off"].uuid: "KEPT"}
    cfg.Update(cluster, None)
    _Run(_Context(cfg, FakeTokenRunner(cfg)),
         opcodes.OpClusterRenewCrypto(node_certificates=True))
    certs = cfg.GetClusterInfo().candidate_certs
    assert nodes["n3"].uuid not in certs
    assert certs[nodes["off"].uuid] == "KEPT"


def test_no_node_certificates_no_rpc(cfg, nodes):  # noqa: F811
    rpc = FakeTokenRunner(cfg)
    cluster = cfg.GetClusterInfo()
    cluster.modify_ssh_setup = False
    cfg.Update(cluster, None)
    _Run(_Context(cfg, rpc), opcodes.OpClusterRenewCrypto(renew_ssh_keys=True))
    assert not rpc.calls
