"""gnt-cluster renew-crypto --new-cluster-certificate and
--new-node-certificates: the order of the steps while the cluster is
stopped, offline nodes, and failures naming the node."""

from __future__ import annotations

import types

import pytest

from ganeti import constants, daemon_util, errors, pathutils
from ganeti.client import cluster_crypto
from ganeti.ssh import CommandResult

MASTER = "node1.example.com"


class FakeConfig:
    def __init__(self):
        self.nodes = {
            f"u{idx}": types.SimpleNamespace(uuid=f"u{idx}", name=name,
                                             primary_ip=f"192.0.2.{idx}",
                                             offline=offline)
            for idx, (name, offline) in enumerate(
                [(MASTER, False), ("node2.example.com", False),
                 ("node3.example.com", False), ("node4.example.com", True)], 1)}

    def GetClusterName(self):
        return "cluster.example.com"

    def GetMasterNode(self):
        return "u1"

    def GetMasterNodeName(self):
        return MASTER

    def GetAllNodesInfo(self):
        return dict(self.nodes)

    def GetNdParams(self, node):
        return {constants.ND_SSH_PORT: 22}


class FakeRunner:
    def __init__(self, log, fail_copy=(), fail_start=()):
        self.log = log
        self.fail_copy = set(fail_copy)
        self.fail_start = set(fail_start)

    def Run(self, target, command):
        action = command.split()[-1]
        self.log.append((target.name, action))
        if action == "start-all" and target.name in self.fail_start:
            return CommandResult(1, "noded failed to start\n")
        return CommandResult(0, "")

    def CopyFile(self, target, filename):
        self.log.append((target.name, "copy " + filename))
        if target.name in self.fail_copy:
            raise errors.OpExecError(f"Cannot copy {filename} to {target.name}: gone")


@pytest.fixture
def log(monkeypatch, tmp_path):
    log = []
    monkeypatch.setattr(pathutils, "LOCK_DIR", str(tmp_path))
    monkeypatch.setattr(pathutils, "WATCHER_LOCK_FILE", str(tmp_path / "watcher.lock"))
    monkeypatch.setattr(daemon_util, "StopMaster",
                        lambda: log.append((MASTER, "stop-master")) or [])
    monkeypatch.setattr(daemon_util, "StopAll",
                        lambda: log.append((MASTER, "stop-all")) or [])
    monkeypatch.setattr(daemon_util, "StartAll",
                        lambda: log.append((MASTER, "start-all")) or [])

    def _Generate(new_cluster_cert, new_rapi, new_hmac, master_name=None):
        assert new_cluster_cert and not new_rapi and not new_hmac
        log.append((master_name, "generate"))
    monkeypatch.setattr(cluster_crypto_setup(), "GenerateClusterCrypto",
                        _Generate)
    return log


def _Renew(log, **kwargs):
    feedback = []
    cluster_crypto.RenewClusterCertificate(FakeConfig(), FakeRunner(log, **kwargs),
                                           feedback=feedback.append)
    return feedback


def test_steps_in_order_offline_node_skipped(log, capsys):
    _Renew(log)
    cert = pathutils.NODED_CERT_FILE
    assert log == [
        (MASTER, "stop-master"),
        ("node2.example.com", "stop-all"), ("node3.example.com", "stop-all"),
        (MASTER, "stop-all"), (MASTER, "generate"),
        ("node2.example.com", "copy " + cert), ("node3.example.com", "copy " + cert),
        ("node2.example.com", "start-all"), ("node3.example.com", "start-all"),
        (MASTER, "start-all")]
    assert "node4.example.com will not get the new cluster certificate" in \
        capsys.readouterr().err


def test_copy_failure_names_node_and_restarts_daemons(log):
    with pytest.raises(errors.OpExecError, match="to node3.example.com"):
        _Renew(log, fail_copy=["node3.example.com"])
    assert log[-3:] == [("node2.example.com", "start-all"),
                        ("node3.example.com", "start-all"), (MASTER, "start-all")]


def test_start_failure_names_node(log):
    with pytest.raises(errors.OpExecError,
                       match="start the daemons on node2.example.com: noded failed"):
        _Renew(log, fail_start=["node2.example.com"])
    assert log[-1] == (MASTER, "start-all")


def _Opts(**kwargs):
    base = dict(new_cluster_cert=False, new_confd_hmac_key=False, new_rapi_cert=False,
                rapi_cert=None, new_cds=False, cds_file=None, new_node_certs=False,
                new_spice_cert=False, spice_cert=None, spice_cacert=None,
                new_ssh_keys=False, ssh_key_check=True, ssh_key_type=None,
                ssh_key_bits=None, force=True)
    base.update(kwargs)
    return types.SimpleNamespace(**base)


@pytest.mark.parametrize("kwargs", [{"new_node_certs": True},
                                    {"new_cluster_cert": True}])
def test_renew_crypto_submits_node_certificates(monkeypatch, kwargs):
    steps = []
    monkeypatch.setattr(cluster_crypto, "_LocalConfig", FakeConfig)
    monkeypatch.setattr(cluster_crypto, "RenewClusterCertificate",
                        lambda cfg: steps.append("cluster-cert"))
    monkeypatch.setattr(cluster_crypto.cli, "SubmitOpCode",
                        lambda op, opts=None: steps.append(op))
    monkeypatch.setattr(cluster_crypto_setup(), "GenerateClusterCrypto",
                        lambda *args, **kw: None)
    assert cluster_crypto.RenewCrypto(_Opts(**kwargs), []) == constants.EXIT_SUCCESS
    if kwargs.get("new_cluster_cert"):
        assert steps[0] == "cluster-cert"
    op = steps[-1]
    assert op.OP_ID == "OP_CLUSTER_RENEW_CRYPTO" and op.node_certificates


def cluster_crypto_setup():
    from ganeti import crypto_setup
    return crypto_setup
