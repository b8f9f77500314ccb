"""--hypervisor-state/--disk-state parsing, gnt-node list-drbd, SPICE
certificates, master-failover's offline voting and SSH keys at init."""

from __future__ import annotations

import argparse
import os
import ssl
import types

import pytest

from ganeti import constants, crypto_setup, errors, ssh_keys
from ganeti.bootstrap import cluster as bootstrap
from ganeti.client import cluster_crypto, gnt_node, node_drbd, state_options
from ganeti.confd.protocol import ConfdReply


def test_state_option_parsing():
    assert state_options.ParseHvState("kvm:mem_total=1024,cpu_total=4") == (
        "kvm", {"mem_total": "1024", "cpu_total": "4"})
    assert state_options.ParseDiskState("plain/xenvg:disk_total=10") == (
        ("plain", "xenvg"), {"disk_total": "10"})
    for text in ("xenvg:disk_total=1", "plain/:x=1", "plain/vg"):
        with pytest.raises(argparse.ArgumentTypeError, match="storage_type/identifier"):
            state_options.ParseDiskState(text)
    with pytest.raises(argparse.ArgumentTypeError, match="hypervisor:option"):
        state_options.ParseHvState("mem_total=1")
    assert state_options.DiskStateFromOpts(
        [(("plain", "a"), {"disk_total": "1"}), (("plain", "b"), {}),
         (("plain", "a"), {"disk_reserved": "2"})]) == {
        "plain": {"a": {"disk_total": "1", "disk_reserved": "2"}, "b": {}}}
    assert state_options.HvStateFromOpts(None) is None


class _Result:
    def __init__(self, reply):
        self.reply = reply


def test_list_drbd(monkeypatch, capsys):
    monkeypatch.setattr("ganeti.watcher.nodemaint.ConfdPeers",
                        lambda: [("127.0.0.1", 1814)])
    monkeypatch.setattr("ganeti.confd.client.ReadHmacKey", lambda: b"k")
    rows = [["n1", 0, "inst1", "disk/0", "primary", "n2"],
            ["n1", 12, "inst2", "disk/1", "secondary", "n3"]]
    asked = []

    def _Query(key, peers, req_type, query):
        asked.append((req_type, query))
        return _Result(ConfdReply(constants.CONFD_REPL_STATUS_OK, rows, 5))

    assert node_drbd.QueryNodeDrbd("n1", _Query) == rows
    assert asked == [(constants.CONFD_REQ_NODE_DRBD, "n1")]
    monkeypatch.setattr(node_drbd, "QueryNodeDrbd", lambda node: rows)
    assert gnt_node.Main(["gnt-node", "list-drbd", "n1"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["Node", "Minor", "Instance", "Disk", "Role", "PeerNode"]
    assert out[2].split() == ["n1", "12", "inst2", "disk/1", "secondary", "n3"]
    assert gnt_node.Main(["gnt-node", "list-drbd", "--no-headers", "--separator=|",
                          "n1"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == "n1|0|inst1|disk/0|primary|n2"


def test_list_drbd_errors(monkeypatch):
    monkeypatch.setattr("ganeti.watcher.nodemaint.ConfdPeers",
                        lambda: [("127.0.0.1", 1814)])
    monkeypatch.setattr("ganeti.confd.client.ReadHmacKey", lambda: b"k")
    with pytest.raises(errors.OpPrereqError, match="Unknown node"):
        node_drbd.QueryNodeDrbd("nx", lambda *a: _Result(ConfdReply(
            constants.CONFD_REPL_STATUS_ERROR, "Unknown node nx", 0)))
    with pytest.raises(errors.OpPrereqError, match="No answer"):
        node_drbd.QueryNodeDrbd("n1", lambda *a: _Result(None))
    monkeypatch.setattr("ganeti.watcher.nodemaint.ConfdPeers", lambda: [])
    with pytest.raises(errors.OpPrereqError, match="No master candidate"):
        node_drbd.QueryNodeDrbd("n1", lambda *a: None)


def test_spice_certificates(tmp_path):
    cert, ca = str(tmp_path / "spice.pem"), str(tmp_path / "spice-ca.pem")
    crypto_setup.GenerateSpiceCert(cert, ca)
    assert oct(os.stat(cert).st_mode & 0o777) == "0o440"
    ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(cert)
    with open(ca) as fd:
        ca_pem = fd.read()
    assert "PRIVATE KEY" not in ca_pem and ca_pem in open(cert).read()
    # Loading: the certificate needs its key, the CA file a certificate
    assert cluster_crypto.ReadSpiceCertificates(cert, ca)[1] == ca_pem
    with pytest.raises(errors.OpPrereqError, match="certificate and its private key"):
        cluster_crypto.ReadSpiceCertificates(ca, ca)
    junk = tmp_path / "junk"
    junk.write_text("nothing\n")
    with pytest.raises(errors.OpPrereqError, match="no valid PEM certificate"):
        cluster_crypto.ReadSpiceCertificates(cert, str(junk))
    with pytest.raises(errors.OpPrereqError, match="Cannot read SPICE CA"):
        cluster_crypto.ReadSpiceCertificates(cert, str(tmp_path / "missing"))


def _Opts(**kwargs):
    base = dict(new_cluster_cert=False, new_rapi_cert=False, rapi_cert=None,
                new_spice_cert=False, spice_cert=None, spice_cacert=None,
                new_ssh_keys=False, ssh_key_type=None, ssh_key_bits=None)
    base.update(kwargs)
    return types.SimpleNamespace(**base)


@pytest.mark.parametrize("kwargs,match", [
    ({"new_spice_cert": True, "spice_cert": "a", "spice_cacert": "b"}, "Only one of"),
    ({"spice_cert": "a"}, "must be given together"),
    ({"ssh_key_type": "rsa"}, "need --new-ssh-keys"),
])
def test_renew_crypto_option_conflicts(kwargs, match):
    with pytest.raises(errors.OpPrereqError, match=match):
        cluster_crypto._CheckOptions(_Opts(**kwargs))


class _Store:
    def GetOnlineNodeList(self):
        return ["n1", "n2", "n3"]

    def GetNodeList(self):
        return ["n1", "n2", "n3", "n4", "n5"]


def test_master_failover_offline_voting():
    assert bootstrap.VotingNodes(_Store(), "n2") == (["n1", "n3"], 2)
    assert bootstrap.VotingNodes(_Store(), "n2", ignore_offline_nodes=True) == (
        ["n1", "n3"], 0)
    # Two online voters agree: a majority of 2, but not of 4 with the offline ones
    bootstrap.CheckMasterVotes("n1", [("n1", 2)], 2)
    with pytest.raises(errors.OpPrereqError, match="No majority"):
        bootstrap.CheckMasterVotes("n1", [("n1", 2), (None, 2)], 4)


def test_setup_master_keys(tmp_path):
    ssh_dir, pub = str(tmp_path / "ssh"), str(tmp_path / "ganeti_pub_keys")
    os.makedirs(ssh_dir)
    with open(os.path.join(ssh_dir, "authorized_keys"), "w") as fd:
        fd.write("ssh-rsa ADMIN admin\n")
    with open(os.path.join(ssh_dir, "id_ecdsa"), "w") as fd:
        fd.write("old\n")
    key = ssh_keys.SetupMasterKeys("uuid-1", "master", "ecdsa", 256, ssh_dir, pub)
    assert key.startswith("ecdsa-sha2-nistp256 ") and key.endswith("root@master")
    auth = open(os.path.join(ssh_dir, "authorized_keys")).read()
    assert auth == f"ssh-rsa ADMIN admin\n{key}\n"
    assert open(pub).read() == f"uuid-1 {key}\n"
    assert any(name.startswith("id_ecdsa") and name != "id_ecdsa" and
               not name.endswith(".pub") for name in os.listdir(ssh_dir))  # backup
    with pytest.raises(errors.OpExecError, match="Cannot create"):
        ssh_keys.GenerateKeyPair("ecdsa", 300, os.path.join(ssh_dir, "x"), "c")


def test_init_and_node_add_options_parse():
    cmd = gnt_node.commands["add"]
    dests = {opt.kwargs["dest"] for opt in cmd[2]}
    assert {"hv_state", "disk_state", "node_setup"} <= dests
    from ganeti.client import gnt_cluster
    init_dests = {opt.kwargs["dest"] for opt in gnt_cluster.commands["init"][2]}
    assert {"hv_state", "disk_state", "ssh_key_type", "ssh_key_bits"} <= init_dests


class _FakeClient:
    def __init__(self):
        self.ops = []

    def Query(self, what, fields, qfilter):
        return {"data": []}

    def QueryClusterInfo(self):
        return {"ndparams": {}}


@pytest.mark.parametrize("setup", [True, False])
def test_node_add_no_node_setup(monkeypatch, setup):
    from ganeti import cli
    from ganeti.bootstrap import node_setup
    client, calls, ops = _FakeClient(), [], []
    monkeypatch.setattr(cli, "GetClient", lambda: client)
    monkeypatch.setattr(node_setup, "SetupNode", lambda *a, **kw: calls.append(a) or "")
    monkeypatch.setattr(node_setup, "ChooseMode", lambda name: node_setup.MODE_LOCAL)
    monkeypatch.setattr(cli, "SubmitOrSend", lambda op, opts, cl=None: ops.append(op))
    argv = ["gnt-node", "add", "--node-ip", "127.0.0.9",
            "--hypervisor-state", "fake:mem_total=64",
            "--disk-state", "plain/xenvg:disk_total=5", "n9.example.com"]
    if not setup:
        argv.insert(2, "--no-node-setup")
    assert gnt_node.Main(argv) == 0
    assert len(calls) == (1 if setup else 0)
    (op,) = ops
    assert op.node_setup is setup
    assert op.hv_state == {"fake": {"mem_total": "64"}}
    assert op.disk_state == {"plain": {"xenvg": {"disk_total": "5"}}}
