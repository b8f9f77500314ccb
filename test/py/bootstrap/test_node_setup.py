"""Tests for ganeti.bootstrap.node_setup against a real sshd and real node
daemons.

The SSH tests start Debian's ``/usr/sbin/sshd`` on a free loopback port
with a temporary host key and authorized key (we run as root; see
``sshdhelpers``); the "remote" node is a temporary node root on this
machine, reached through SSH with ``GANETI_ROOTDIR`` in front of the remote
command.
"""

from __future__ import annotations

import os
import shutil
import stat
import sys
import tempfile

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import sshdhelpers  # noqa: E402

from ganeti import constants, crypto_setup, errors, pathutils, utils  # noqa: E402
from ganeti.bootstrap import node_setup  # noqa: E402
from ganeti.rpc.client import RpcSslConfig  # noqa: E402
from ganeti.rpc.node import NodeEndpoint, RpcRunner, StaticResolver  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
PYLIB = os.path.join(REPO, "build", "pylib")
MASTER = "master.example.com"


def _FreePort(address: str) -> int:
    return sshdhelpers.FreePort(address)


@pytest.fixture
def base_dir():
    # short: node roots hold Unix sockets
    path = tempfile.mkdtemp(prefix="gns", dir="/tmp")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def master_root(base_dir):
    """This process as the master of a virtual cluster, with crypto files."""
    root = os.path.join(base_dir, MASTER)
    os.makedirs(root)
    pathutils._SetRoot(root, MASTER)
    try:
        os.makedirs(pathutils.DATA_DIR)
        crypto_setup.GenerateClusterCrypto(True, True, True, True, master_name=MASTER)
        utils.WriteFile(os.path.join(pathutils.DATA_DIR, "ssconf_cluster_name"),
                        data="cluster.example.com\n")
        yield root
    finally:
        pathutils.Reload()


@pytest.fixture
def stop_noded():
    """Register node roots whose node daemon must be stopped (by pid)."""
    roots: list[str] = []
    yield roots.append
    for root in roots:
        pidfile = os.path.join(root, "var/run/ganeti", f"{constants.NODED}.pid")
        pid = utils.ReadLockedPidFile(pidfile) if os.path.exists(pidfile) else None
        if pid:
            utils.KillProcess(pid, timeout=15)


def _Runner(master_root: str, name: str, address: str, port: int) -> RpcRunner:
    data = os.path.join(master_root, "var/lib/ganeti")
    ssl = RpcSslConfig(ca_file=os.path.join(data, "server.pem"),
                       cert_file=os.path.join(data, "client.pem"))
    return RpcRunner(StaticResolver({name: NodeEndpoint(name, address, port)}),
                     ssl_config=ssl)


def _CheckNode(master_root: str, name: str, address: str, port: int,
               node_root: str) -> None:
    result = _Runner(master_root, name, address, port).call_version([name])[name]
    assert result.fail_msg is None, result.fail_msg
    assert result.payload == constants.PROTOCOL_VERSION
    data = os.path.join(node_root, "var/lib/ganeti")
    for fname, mode in (("server.pem", 0o440), ("client.pem", 0o440),
                        ("hmac.key", 0o440), ("rapi.pem", 0o440),
                        ("cluster-domain-secret", 0o640),
                        ("ssconf_cluster_name", 0o444)):
        assert stat.S_IMODE(os.stat(os.path.join(data, fname)).st_mode) == mode, fname
    with open(os.path.join(data, "server.pem"), "rb") as fd:
        with open(os.path.join(master_root, "var/lib/ganeti/server.pem"), "rb") as mfd:
            assert fd.read() == mfd.read()


# --- Files ------------------------------------------------------------------------------

def test_gather_files(master_root):
    files = node_setup.GatherNodeFiles("node2.example.com")
    assert set(files) == {f"/var/lib/ganeti/{name}" for name in (
        "server.pem", "client.pem", "hmac.key", "rapi.pem", "cluster-domain-secret",
        "ssconf_cluster_name")}
    from cryptography import x509
    cert = x509.load_pem_x509_certificate(files["/var/lib/ganeti/client.pem"].data)
    assert cert.subject.get_attributes_for_oid(
        x509.NameOID.COMMON_NAME)[0].value == "node2.example.com"
    assert files["/var/lib/ganeti/server.pem"].mode == 0o440


def test_gather_files_without_cluster(base_dir):
    pathutils._SetRoot(os.path.join(base_dir, "x"), "x")
    try:
        with pytest.raises(errors.OpPrereqError, match="cluster certificate"):
            node_setup.GatherNodeFiles("node2")
    finally:
        pathutils.Reload()


def test_choose_mode(master_root, base_dir):
    assert node_setup.ChooseMode("nodeX") == node_setup.MODE_SSH
    os.makedirs(os.path.join(base_dir, "nodeX"))
    assert node_setup.ChooseMode("nodeX") == node_setup.MODE_LOCAL
    assert node_setup.ChooseMode("nodeX", node_setup.MODE_SSH) == node_setup.MODE_SSH
    with pytest.raises(errors.OpPrereqError, match="no root directory"):
        node_setup.SetupNode("nodeY", "127.0.0.1", files={}, mode=node_setup.MODE_LOCAL)


def test_noded_command():
    cmd = node_setup.StartNodedCommand("py", "/x/daemon-util", "127.0.1.2",
                                       node_setup.NodePorts(noded=2000))
    assert cmd == ["py", "/x/daemon-util", "start", "ganeti-noded", "-b",
                   "127.0.1.2", "-p", "2000"]
    assert node_setup.NodedArgs("10.0.0.1", node_setup.NodePorts())[-1] == "1811"


# --- Local mode ----------------------------------------------------------------------------

@pytest.mark.timeout(120)
def test_local_setup_starts_a_working_noded(master_root, base_dir, stop_noded):
    name = "node2.example.com"
    node_root = os.path.join(base_dir, name)
    os.makedirs(node_root)
    stop_noded(node_root)
    address = "127.79.1.2"
    port = _FreePort(address)
    output = node_setup.SetupNode(name, address,
                                  ports=node_setup.NodePorts(noded=port))
    assert "started" in output
    _CheckNode(master_root, name, address, port, node_root)
    # a second setup (re-add) finds the daemon running and changes nothing
    output = node_setup.SetupNode(name, address, ports=node_setup.NodePorts(noded=port))
    assert "already running" in output


@pytest.mark.timeout(120)
def test_local_setup_failure_is_reported(master_root, base_dir, stop_noded):
    name = "node3.example.com"
    node_root = os.path.join(base_dir, name)
    os.makedirs(node_root)
    stop_noded(node_root)
    # an address this machine does not have: the daemon cannot bind
    with pytest.raises(errors.OpExecError, match="Cannot start the node daemon"):
        node_setup.SetupNode(name, "192.0.2.77", ports=node_setup.NodePorts(noded=1811))


# --- SSH mode --------------------------------------------------------------------------------

@pytest.fixture
def sshd(base_dir):
    daemon = sshdhelpers.StartSshd(os.path.join(base_dir, "sshd"))
    yield daemon
    daemon.Stop()


def _SshSetup(sshd, base_dir, master_root, stop_noded, name, known_hosts,
              strict=True, address="127.79.2.1"):
    """Set up node ``name`` over SSH (to 127.0.0.1); its daemon binds to
    ``address``."""
    node_root = os.path.join(base_dir, "remote", name)
    os.makedirs(node_root)
    stop_noded(node_root)
    port = _FreePort(address)
    options = node_setup.SshOptions(
        host="127.0.0.1", strict_host_key=strict, known_hosts_file=known_hosts,
        key_file=sshd.user_key,
        remote_env={constants.GANETI_ROOTDIR_ENV: node_root,
                    constants.GANETI_HOSTNAME_ENV: name, "PYTHONPATH": PYLIB},
        remote_python=sys.executable)
    ports = node_setup.NodePorts(noded=port, ssh=sshd.port)
    output = node_setup.SetupNode(name, address, ports=ports,
                                  mode=node_setup.MODE_SSH, ssh_options=options)
    return output, node_root, address, port


@pytest.mark.timeout(120)
def test_ssh_setup_with_known_host_key(sshd, base_dir, master_root, stop_noded):
    known = sshd.KnownHosts(os.path.join(base_dir, "known_hosts"))
    name = "node4.example.com"
    output, node_root, address, port = _SshSetup(
        sshd, base_dir, master_root, stop_noded, name, known, address="127.79.2.4")
    assert "started" in output
    _CheckNode(master_root, name, address, port, node_root)


@pytest.mark.timeout(120)
def test_ssh_setup_unknown_host_key_refused(sshd, base_dir, master_root, stop_noded):
    known = os.path.join(base_dir, "empty_known_hosts")
    utils.WriteFile(known, data="")
    with pytest.raises(errors.OpExecError, match="not found in known_hosts"
                       ".*--no-ssh-key-check"):
        _SshSetup(sshd, base_dir, master_root, stop_noded, "node5.example.com", known)
    # nothing was copied
    assert not os.listdir(os.path.join(base_dir, "remote", "node5.example.com"))


@pytest.mark.timeout(120)
def test_ssh_setup_without_key_check_records_the_key(sshd, base_dir, master_root,
                                                     stop_noded):
    known = os.path.join(base_dir, "kh", "known_hosts")
    os.makedirs(os.path.dirname(known))
    output, node_root, address, port = _SshSetup(
        sshd, base_dir, master_root, stop_noded, "node6.example.com", known,
        strict=False)
    assert "started" in output
    with open(known, encoding="ascii") as fd:
        assert f"[127.0.0.1]:{sshd.port}" in fd.read()


@pytest.mark.timeout(60)
def test_ssh_connection_refused(base_dir, master_root):
    port = _FreePort("127.0.0.1")
    options = node_setup.SshOptions(strict_host_key=False, connect_timeout=5)
    with pytest.raises(errors.OpExecError, match="Cannot connect by SSH"):
        node_setup.SetupNode("node7", "127.0.0.1", files={},
                             ports=node_setup.NodePorts(ssh=port),
                             mode=node_setup.MODE_SSH, ssh_options=options)


@pytest.mark.timeout(120)
def test_ssh_remote_failure(sshd, base_dir, master_root):
    known = sshd.KnownHosts(os.path.join(base_dir, "known_hosts"))
    options = node_setup.SshOptions(
        host="127.0.0.1", known_hosts_file=known, key_file=sshd.user_key,
        remote_env={constants.GANETI_ROOTDIR_ENV: os.path.join(base_dir, "r", "n8"),
                    constants.GANETI_HOSTNAME_ENV: "n8"},
        remote_daemon_util="/nonexistent/daemon-util")
    with pytest.raises(errors.OpExecError, match="over SSH \\(exit code"):
        node_setup.SetupNode("n8", "127.0.0.1", files={},
                             ports=node_setup.NodePorts(ssh=sshd.port),
                             mode=node_setup.MODE_SSH, ssh_options=options)
