"""hv_state/disk_state (cmdlib.resource_state) through the cluster, node and
group LUs, SSH key renewal (LUClusterRenewCrypto, ssh_keys.RenewKeys) with a
fake runner."""

from __future__ import annotations

import os
import re
import sys

import pytest

from ganeti import constants, errors, opcodes, ssh, ssh_keys
from ganeti.cmdlib import cluster as cluster_lu
from ganeti.cmdlib import resource_state
from ganeti.ssh import CommandResult

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_cluster import MASTER, _AddNode, _Context, _Raises, _Run, cfg  # noqa: E402,F401

# --- the checks ----------------------------------------------------------------------------


def test_merge_hv_state_converts_and_merges():
    assert resource_state.MergeHvState(None) is None
    assert resource_state.MergeHvState({}) is None
    merged = resource_state.MergeHvState({"fake": {"mem_total": "4096", "cpu_total": 8}})
    assert merged == {"fake": {"mem_total": 4096, "cpu_total": 8}}
    again = resource_state.MergeHvState({"fake": {"mem_node": 512, "cpu_total": "default"},
                                         "kvm": {"cpu_node": 2}}, merged)
    assert again == {"fake": {"mem_total": 4096, "mem_node": 512}, "kvm": {"cpu_node": 2}}
    assert merged == {"fake": {"mem_total": 4096, "cpu_total": 8}}  # not changed


@pytest.mark.parametrize("value,match", [
    ({"xen-foo": {"mem_total": 1}}, r"Invalid hypervisor\(s\) in hypervisor state: xen-foo"),
    ({"fake": {"mem_totl": 1}}, r"Unknown hypervisor state \(fake\) parameter\(s\): mem_totl"),
    ({"fake": {"mem_total": "1G"}}, "'mem_total' must be an integer, got '1G'"),
    ({"fake": {"cpu_total": True}}, "cpu_total' must be a number"),
    ({"fake": 5}, "must be a dictionary"),
])
def test_merge_hv_state_refuses_bad_input(value, match):
    with pytest.raises(errors.OpPrereqError, match=match) as info:
        resource_state.MergeHvState(value)
    assert info.value.args[1] == errors.ECODE_INVAL


def test_merge_disk_state():
    merged = resource_state.MergeDiskState({"plain": {"xenvg": {"disk_total": "100"}}})
    assert merged == {"plain": {"xenvg": {"disk_total": 100}}}
    merged = resource_state.MergeDiskState(
        {"plain": {"xenvg": {"disk_reserved": 5}, "vg2": {"disk_overhead": 1}}}, merged)
    assert merged == {"plain": {"xenvg": {"disk_total": 100, "disk_reserved": 5},
                                "vg2": {"disk_overhead": 1}}}
    for value, match in (({"lvm": {"xenvg": {}}}, r"Invalid storage type\(s\).*lvm"),
                         ({"plain": {"xenvg": {"size": 1}}}, "Unknown disk state"),
                         ({"plain": {"xenvg": {"disk_total": "x"}}}, "integer"),
                         ({"plain": ["xenvg"]}, "must be a dictionary")):
        with pytest.raises(errors.OpPrereqError, match=match):
            resource_state.MergeDiskState(value)


def test_initial_states_fill_defaults():
    assert resource_state.InitialHvState(None, ["fake"]) == {
        "fake": constants.HVST_DEFAULTS}
    assert resource_state.InitialHvState({"kvm": {"mem_total": 9}}, ["fake"]) == {
        "kvm": dict(constants.HVST_DEFAULTS, mem_total=9)}
    assert resource_state.InitialDiskState({"plain": {"vg": {"disk_total": 3}}}) == {
        "plain": {"vg": dict(constants.DS_DEFAULTS, disk_total=3)}}
    assert resource_state.InitialDiskState(None) == {}


# --- through the LUs --------------------------------------------------------------------------

def test_cluster_modify_stores_states(cfg):  # noqa: F811
    ctx = _Context(cfg)
    _Run(ctx, opcodes.OpClusterSetParams(hv_state={"fake": {"mem_total": 2048}},
                                         disk_state={"plain": {"xenvg": {"disk_total": 10}}}))
    cluster = cfg.GetClusterInfo()
    assert cluster.hv_state_static["fake"] == {"mem_total": 2048}
    assert cluster.disk_state_static == {"plain": {"xenvg": {"disk_total": 10}}}
    _Raises(ctx, opcodes.OpClusterSetParams(hv_state={"fake": {"bogus": 1}}),
            "Unknown hypervisor state")
    _Raises(ctx, opcodes.OpClusterSetParams(disk_state={"file": {"x": {}}}),
            "Invalid storage type")


def test_node_modify_and_add_store_states(cfg):  # noqa: F811
    node = _AddNode(cfg, "node2.example.com", "192.0.2.2")
    ctx = _Context(cfg)
    result, _ = _Run(ctx, opcodes.OpNodeSetParams(
        node_name=node.name, hv_state={"fake": {"cpu_total": "4"}}))
    assert result == [["hv_state", "{'fake': {'cpu_total': 4}}"]]
    _Run(ctx, opcodes.OpNodeSetParams(node_name=node.name,
                                      hv_state={"fake": {"mem_node": 100}}))
    assert cfg.GetNodeInfo(node.uuid).hv_state_static == {
        "fake": {"cpu_total": 4, "mem_node": 100}}
    _Raises(ctx, opcodes.OpNodeSetParams(node_name=node.name,
                                         disk_state={"plain": {"vg": {"disk": 1}}}),
            "Unknown disk state")
    with pytest.raises(errors.OpPrereqError, match="Invalid hypervisor"):
        _Run(ctx, opcodes.OpNodeAdd(node_name="node3.example.com",
                                    primary_ip="192.0.2.3", hv_state={"nohv": {}}))


def test_group_add_checks_states(cfg):  # noqa: F811
    ctx = _Context(cfg)
    _Run(ctx, opcodes.OpGroupAdd(group_name="g2", hv_state={"fake": {"mem_hv": "7"}}))
    group = cfg.GetNodeGroup(cfg.LookupNodeGroup("g2"))
    assert group.hv_state_static == {"fake": {"mem_hv": 7}}
    with pytest.raises(errors.OpPrereqError, match="Invalid storage type"):
        _Run(ctx, opcodes.OpGroupAdd(group_name="g3", disk_state={"drbd": {"a": {}}}))


# --- SSH keys ---------------------------------------------------------------------------------

def test_determine_key_bits():
    assert ssh_keys.DetermineKeyBits("rsa", None) == 2048
    assert ssh_keys.DetermineKeyBits("ecdsa", None) == 384
    assert ssh_keys.DetermineKeyBits("rsa", None, "rsa", 4096) == 4096
    assert ssh_keys.DetermineKeyBits("ecdsa", None, "rsa", 4096) == 384
    assert ssh_keys.DetermineKeyBits("dsa", 1024) == 1024
    for args, match in ((("dsa", 2048), "DSA.*1024"), (("ecdsa", 300), "256, 384 or 521"),
                        (("rsa", 512), "at least 768"), (("ed25519", None), "Invalid")):
        with pytest.raises(errors.OpPrereqError, match=match):
            ssh_keys.DetermineKeyBits(*args)


def test_authorized_keys_merge_keeps_other_lines():
    text = "# admin\nssh-rsa AAAA admin@x\nssh-rsa OLD root@n1\n"
    merged = ssh_keys.MergeAuthorizedKeys(text, ["ssh-ed25519 NEW root@n1",
                                                 "ssh-rsa AAAA dup"], ["ssh-rsa OLD c"])
    assert merged == "# admin\nssh-rsa AAAA admin@x\nssh-ed25519 NEW root@n1\n"
    keys = {"u2": ["ssh-rsa B"], "u1": ["ssh-rsa A x"]}
    assert ssh_keys.ParsePubKeyFile(ssh_keys.FormatPubKeyFile(keys)) == {
        "u1": ["ssh-rsa A x"], "u2": ["ssh-rsa B"]}


class FakeNodes:
    """A runner over node directories: runs the commands with the node's
    GANETI_ROOTDIR, as the virtual cluster's runner does."""

    def __init__(self, base):
        self.base = base
        self.log = []
        self.fail_on = None

    def Run(self, target, command):
        import subprocess
        self.log.append((target.name, command))
        if self.fail_on and self.fail_on in command and target.name == "n2":
            return CommandResult(1, "boom\n")
        root = os.path.join(self.base, target.name)
        os.makedirs(root, exist_ok=True)
        proc = subprocess.run(["/bin/sh", "-c", command], capture_output=True, text=True,
                              env={"PATH": os.environ["PATH"], "GANETI_ROOTDIR": root},
                              check=False)
        return CommandResult(proc.returncode, proc.stdout + proc.stderr)

    def CopyFile(self, target, filename):
        self.log.append((target.name, "copy " + filename))

    def Read(self, name, path):
        with open(os.path.join(self.base, name, "root/.ssh", path)) as fd:
            return fd.read()


def _Nodes():
    return [ssh_keys.KeyNode(ssh.NodeTarget("n1", "127.0.0.1"), "u1", True, True),
            ssh_keys.KeyNode(ssh.NodeTarget("n2", "127.0.0.2"), "u2", True),
            ssh_keys.KeyNode(ssh.NodeTarget("n3", "127.0.0.3"), "u3", False)]


def test_renew_keys_on_node_directories(tmp_path):
    runner = FakeNodes(str(tmp_path))
    os.makedirs(tmp_path / "n3/root/.ssh")
    (tmp_path / "n3/root/.ssh/authorized_keys").write_text(
        "ssh-rsa ADMIN admin\nssh-rsa OLDKEY root@n1\n")
    keys = ssh_keys.RenewKeys(runner, _Nodes(), "ecdsa", 256, "rsa",
                              {"u1": ["ssh-rsa OLDKEY root@n1"]})
    assert set(keys) == {"u1", "u2", "u3"}
    assert all(k[0].startswith("ecdsa-sha2-nistp256 ") for k in keys.values())
    # the master switches last
    switches = [name for name, cmd in runner.log if cmd.startswith("mv -f")]
    assert switches == ["n2", "n3", "n1"]
    for name, uuid in (("n1", "u1"), ("n2", "u2"), ("n3", "u3")):
        assert runner.Read(name, "id_ecdsa.pub").strip() == keys[uuid][0]
        assert "PRIVATE KEY" in runner.Read(name, "id_ecdsa")
        auth = runner.Read(name, "authorized_keys")
        # the candidates' new keys, not the non-candidate's nor the old one
        assert keys["u1"][0] in auth and keys["u2"][0] in auth
        assert keys["u3"][0] not in auth and "OLDKEY" not in auth
    assert "ssh-rsa ADMIN admin" in runner.Read("n3", "authorized_keys")


def test_renew_keys_stops_before_switching_on_failure(tmp_path):
    runner = FakeNodes(str(tmp_path))
    runner.fail_on = "ssh-keygen"
    with pytest.raises(errors.OpExecError, match="new SSH key on n2.*boom"):
        ssh_keys.RenewKeys(runner, _Nodes(), "rsa", 1024, "rsa", {})
    assert not any(cmd.startswith("mv -f") for _, cmd in runner.log)


def test_lu_renew_ssh_keys_records_type_and_bits(cfg, tmp_path, monkeypatch):  # noqa: F811
    node = _AddNode(cfg, "node2.example.com", "192.0.2.2", master_candidate=True)
    runner = FakeNodes(str(tmp_path))
    monkeypatch.setattr(cluster_lu.LUClusterRenewCrypto, "_GetRunner",
                        lambda self: runner)
    pub_file = tmp_path / "ganeti_pub_keys"
    monkeypatch.setattr(ssh_keys.pathutils, "SSH_PUB_KEYS", str(pub_file))
    ctx = _Context(cfg)
    cluster = cfg.GetClusterInfo()
    cluster.modify_ssh_setup = False
    cfg.Update(cluster, None)
    _, cbs = _Run(ctx, opcodes.OpClusterRenewCrypto(renew_ssh_keys=True))
    assert any("not modify the SSH setup" in msg for msg in cbs.feedback)
    assert not runner.log
    cluster.modify_ssh_setup = True
    cfg.Update(cluster, None)
    with pytest.raises(errors.OpPrereqError, match="DSA"):
        _Run(ctx, opcodes.OpClusterRenewCrypto(renew_ssh_keys=True, ssh_key_type="dsa",
                                               ssh_key_bits=2048))
    _Run(ctx, opcodes.OpClusterRenewCrypto(renew_ssh_keys=True, ssh_key_type="ecdsa"))
    info = cfg.GetClusterInfo()
    assert (info.ssh_key_type, info.ssh_key_bits) == ("ecdsa", 384)
    uuids = {line.split()[0] for line in pub_file.read_text().splitlines()}
    assert uuids == {cfg.GetMasterNode(), node.uuid}
    assert ("node2.example.com", "copy " + str(pub_file)) in runner.log
    assert re.search("ecdsa-sha2-nistp384", runner.Read(MASTER, "authorized_keys"))
