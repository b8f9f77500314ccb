"""gnt-cluster against a real cluster made by ``gnt-cluster init``.

Each node is a root directory under one short temporary base, with its own
loopback address; the tools run as subprocesses with the node's
GANETI_ROOTDIR/GANETI_HOSTNAME. Every daemon started is stopped by its pid
(``daemon-util stop-all`` per node, then any pid left in a pid file).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from ganeti import config, constants, crypto_setup, objects, utils

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

REPO = Path(__file__).resolve().parents[2]
GNT_CLUSTER = REPO / "scripts" / "gnt-cluster"
DAEMON_UTIL = REPO / "daemons" / "daemon-util"
CLUSTER = "cluster.vc.test"
SUBNET = 93


def _FreePort(address: str) -> int:
    with socket.socket() as sock:
        sock.bind((address, 0))
        return sock.getsockname()[1]


class Node:
    """One node root of the test cluster."""

    def __init__(self, base: str, index: int) -> None:
        self.name = f"node{index}.vc.test"
        self.root = os.path.join(base, self.name)
        self.ip = f"127.{SUBNET}.0.{index}"
        self.port = _FreePort(self.ip)
        os.makedirs(self.root, exist_ok=True)
        self.env = dict(os.environ, GANETI_ROOTDIR=self.root, GANETI_HOSTNAME=self.name,
                        PYTHONPATH=str(REPO / "build" / "pylib"))

    def path(self, *parts: str) -> str:
        return os.path.join(self.root, *[p.lstrip("/") for p in parts])

    @property
    def data_dir(self) -> str:
        return self.path(constants.DEFAULT_DATA_DIR)

    @property
    def cfg_file(self) -> str:
        return os.path.join(self.data_dir, constants.CLUSTER_CONF_FILE_NAME)

    def run(self, tool: Path, *args: str, check: bool | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess:
        proc = subprocess.run([sys.executable, str(tool), *args], env=self.env,
                              capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
        if check:
            assert proc.returncode == 0, (args, proc.stdout, proc.stderr)
        return proc

    def gnt(self, *args: str, **kwargs) -> subprocess.CompletedProcess:
        return self.run(GNT_CLUSTER, *args, **kwargs)

    def config_bytes(self) -> bytes:
        with open(self.cfg_file, "rb") as fd:
            return fd.read()

    def pids(self) -> list[int]:
        run_dir = self.path(constants.DEFAULT_RUN_DIR)
        result = []
        for name in ("ganeti-masterd", "ganeti-noded", "ganeti-confd", "ganeti-rapi"):
            pid = utils.ReadLockedPidFile(os.path.join(run_dir, f"{name}.pid"))
            if pid:
                result.append(pid)
        return result


@pytest.fixture
def vbase():
    base = tempfile.mkdtemp(prefix="gv", dir="/tmp")
    nodes: list[Node] = []
    yield base, nodes
    for node in nodes:
        with contextlib.suppress(Exception):
            node.run(DAEMON_UTIL, "stop-all", timeout=60)
    for node in nodes:
        for pid in node.pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    shutil.rmtree(base, ignore_errors=True)


def _Init(node: Node, *extra: str) -> subprocess.CompletedProcess:
    return node.gnt("init", "--enabled-hypervisors", "fake",
                    "--enabled-disk-templates", "file,diskless",
                    "--file-storage-dir", "/srv/ganeti/file-storage",
                    "--no-etc-hosts", "--no-ssh-init", "--master-netdev", "lo",
                    "--node-ip", node.ip, "--noded-port", str(node.port), *extra,
                    CLUSTER)


@pytest.fixture
def cluster(vbase):
    base, nodes = vbase
    node1 = Node(base, 1)
    nodes.append(node1)
    proc = _Init(node1, "-C", "3", "-B", "maxmem=256M", "--uid-pool", "1000-1010")
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    return base, nodes


def test_one_node_cluster_lifecycle(cluster):
    _, nodes = cluster
    (node1,) = nodes
    assert node1.gnt("getmaster", check=True).stdout.strip() == node1.name

    info = node1.gnt("info", check=True).stdout
    for expected in ("Cluster name: cluster.vc.test", "Master node: node1.vc.test",
                     "Default hypervisor: fake", "Enabled hypervisors: fake",
                     "candidate pool size: 3", "uid pool: 1000-1010",
                     "maxmem: 256", "enabled disk templates: file, diskless"):
        assert expected in info, info
    version = node1.gnt("version", check=True).stdout
    assert f"Software version: {constants.RELEASE_VERSION}" in version
    assert f"Internode protocol: {constants.PROTOCOL_VERSION}" in version

    # init twice: refused, config untouched
    before = node1.config_bytes()
    proc = _Init(node1)
    assert proc.returncode != 0 and "already initialised" in proc.stderr
    assert node1.config_bytes() == before

    # modify, and an unknown parameter leaves the config unchanged
    node1.gnt("modify", "-B", "vcpus=2", "--add-uids", "2000-2001",
              "--hidden-os", "add:lenny", check=True)
    info = node1.gnt("info", check=True).stdout
    assert "vcpus: 2" in info and "uid pool: 1000-1010, 2000-2001" in info
    assert "Hidden OSes: lenny" in info
    # The pool reaches the node through ssconf, one range a line
    ssconf_pool = Path(node1.data_dir, "ssconf_uid_pool").read_text()
    assert ssconf_pool.strip() == "1000-1010\n2000-2001"
    node1.gnt("modify", "--remove-uids", "1005-1010", check=True)
    assert "uid pool: 1000-1004, 2000-2001" in node1.gnt("info", check=True).stdout
    before = node1.config_bytes()
    for args, message in ((["--uid-pool", "1-5,3"], "Overlapping user-id ranges 1-5 and 3"),
                          (["--remove-uids", "3000"],
                           "Cannot remove user-ids 3000: not in the uid pool"),
                          (["--add-uids", "12x"], "Invalid user-id '12x'"),
                          (["--add-uids", "9-2"], "9-2: the lower bound is above")):
        proc = node1.gnt("modify", *args)
        assert proc.returncode != 0 and message in proc.stderr, (args, proc.stderr)
    assert node1.config_bytes() == before
    proc = node1.gnt("modify", "-B", "nosuchparam=1")
    assert proc.returncode != 0 and "nosuchparam" in proc.stderr
    proc = node1.gnt("modify", "-H", "fake:kernel_path=/x")
    assert proc.returncode != 0 and "kernel_path" in proc.stderr
    assert node1.config_bytes() == before

    # queue and watcher
    node1.gnt("queue", "drain", check=True)
    assert node1.gnt("queue", "info").stdout.strip() == "The drain flag is set"
    node1.gnt("queue", "undrain", check=True)
    assert node1.gnt("queue", "info").stdout.strip() == "The drain flag is unset"
    assert "paused until" in node1.gnt("watcher", "pause", "1h", check=True).stdout
    assert "paused until" in node1.gnt("watcher", "info").stdout
    node1.gnt("watcher", "continue", check=True)
    assert node1.gnt("watcher", "info").stdout.strip() == "The watcher is not paused."

    # command (locally, in a virtual cluster) runs in the node's own environment
    out = node1.gnt("command", "echo $GANETI_HOSTNAME; exit 3").stdout
    assert "node: node1.vc.test" in out and "return code = 3" in out
    assert "\nnode1.vc.test\n" in out

    node1.gnt("redist-conf", check=True)
    proc = node1.gnt("verify")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "* Verifying node status" in proc.stdout
    assert "memory free" in proc.stdout

    # renew the confd HMAC key
    key_file = os.path.join(node1.data_dir, "hmac.key")
    old_key = Path(key_file).read_text()
    node1.gnt("renew-crypto", "--new-confd-hmac-key", "-f", check=True)
    assert Path(key_file).read_text() != old_key

    # destroy
    assert node1.gnt("destroy").returncode != 0
    node1.gnt("destroy", "--yes-do-it", check=True)
    assert not os.path.exists(node1.cfg_file)
    assert node1.pids() == []


def _AddSecondNode(base: str, nodes: list[Node], candidate: bool) -> Node:
    """Start a node daemon for node2 and put node2 in the config directly."""
    node1 = nodes[0]
    node2 = Node(base, 2)
    nodes.append(node2)
    data2 = node2.data_dir
    os.makedirs(data2, exist_ok=True)
    os.makedirs(node2.path("/srv/ganeti/file-storage"), exist_ok=True)
    server_pem = os.path.join(node1.data_dir, "server.pem")
    shutil.copy2(server_pem, os.path.join(data2, "server.pem"))
    crypto_setup.GenerateNodeClientCert(os.path.join(data2, "client.pem"), server_pem,
                                        node2.name)
    for name in ("hmac.key", "cluster-domain-secret", "rapi.pem"):
        shutil.copy2(os.path.join(node1.data_dir, name), os.path.join(data2, name))
    node2.run(DAEMON_UTIL, "start", "ganeti-noded", "-b", node2.ip, "-p",
              str(node2.port), check=True)
    # The config belongs to the master daemon: change it while it is stopped
    node1.run(DAEMON_UTIL, "stop", "ganeti-masterd", check=True)
    cfg = config.ConfigWriter(node1.cfg_file, accept_foreign=True, offline=True)
    node = objects.Node(name=node2.name, primary_ip=node2.ip, noded_port=node2.port,
                        group=cfg.LookupNodeGroup(None), uuid=objects.GenerateUUID(),
                        master_candidate=candidate)
    node.UpgradeConfig()
    cfg.AddNode(node, "test")
    node1.run(DAEMON_UTIL, "start", "ganeti-masterd", check=True)
    node1.gnt("redist-conf", check=True)
    return node2


def test_two_nodes_verify_and_failover(cluster):
    base, nodes = cluster
    node1 = nodes[0]
    node2 = _AddSecondNode(base, nodes, candidate=False)
    ssconf_master = os.path.join(node2.data_dir, "ssconf_master_node")
    assert Path(ssconf_master).read_text().strip() == node1.name
    # not a candidate: no config.data, and failover is refused
    assert not os.path.exists(node2.cfg_file)
    proc = node2.gnt("master-failover")
    assert proc.returncode != 0 and "not a master candidate" in proc.stderr

    # destroy with a node left is refused, config unchanged
    before = node1.config_bytes()
    proc = node1.gnt("destroy", "--yes-do-it")
    assert proc.returncode != 0 and "node2.vc.test" in proc.stderr
    assert node1.config_bytes() == before

    # promote node2 (pool size 3): it gets config.data at once
    node1.gnt("modify", "-C", "4", check=True)
    out = node1.gnt("verify")
    assert os.path.exists(node2.cfg_file), out.stdout
    assert out.returncode == 0, out.stdout + out.stderr
    assert node2.config_bytes() == node1.config_bytes()

    # copyfile and command reach node2
    src = os.path.join(node1.root, "tmp-copy.txt")
    Path(src).write_text("payload\n")
    node1.gnt("copyfile", src, check=True)
    assert Path(node2.path("tmp-copy.txt")).read_text() == "payload\n"
    out = node1.gnt("command", "-n", "node2", "echo host=$GANETI_HOSTNAME").stdout
    assert f"node: {node2.name}\nhost={node2.name}\n" in out, out
    assert "node: node1" not in out

    # a tampered ssconf file on node2 is reported with its error code
    Path(ssconf_master).write_text("somebody.else\n")
    out = node1.gnt("verify", "--error-codes")
    assert out.returncode != 0
    assert "ERROR:ENODEFILECHECK:node:node2.vc.test:ssconf file" in out.stdout, out.stdout
    node1.gnt("redist-conf", check=True)
    assert node1.gnt("verify").returncode == 0

    # a new confd HMAC key reaches every node (issue 9, item 4)
    key1 = os.path.join(node1.data_dir, "hmac.key")
    key2 = os.path.join(node2.data_dir, "hmac.key")
    old_key = Path(key1).read_text()
    node1.gnt("renew-crypto", "--new-confd-hmac-key", "-f", check=True)
    assert Path(key1).read_text() != old_key
    assert Path(key2).read_text() == Path(key1).read_text()
    assert node1.gnt("verify").returncode == 0

    # failover to node2 and back
    proc = node2.gnt("master-failover")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert node2.gnt("getmaster", check=True).stdout.strip() == node2.name
    assert Path(os.path.join(node1.data_dir, "ssconf_master_node")).read_text().strip() \
        == node2.name
    proc = node1.gnt("master-failover")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert node1.gnt("getmaster", check=True).stdout.strip() == node1.name
    assert node1.gnt("verify").returncode == 0


def test_master_commands_and_new_options(cluster):
    """master-ping, the master IP, rename, show-ispecs-cmd, upgrade, verify's
    and modify's newer options, on a running one-node cluster."""
    _, nodes = cluster
    (node1,) = nodes
    assert node1.gnt("master-ping").returncode == 0
    # The master IP is on lo in 127.0.0.0/8: the setup script has nothing to do
    node1.gnt("activate-master-ip", check=True)
    node1.gnt("deactivate-master-ip", "--yes", check=True)
    node1.gnt("activate-master-ip", check=True)

    # Names of a virtual cluster are not in DNS: the master IP stays
    node1.gnt("rename", "-f", "renamed.vc.test", check=True)
    assert "Cluster name: renamed.vc.test" in node1.gnt("info", check=True).stdout
    proc = node1.gnt("rename", "-f", "renamed.vc.test")
    assert proc.returncode != 0 and "Neither the name nor the IP" in proc.stderr
    node1.gnt("rename", "-f", CLUSTER, check=True)

    node1.gnt("modify", "--ipolicy-std-specs", "memory-size=256",
              "--enabled-data-collectors", "lv=false",
              "--data-collector-interval", "lv=7", check=True)
    cmd = node1.gnt("show-ispecs-cmd", check=True).stdout
    assert cmd.startswith("gnt-cluster init --ipolicy-std-specs ") and \
        "memory-size=256" in cmd and cmd.strip().endswith(CLUSTER)
    cfg = config.ConfigWriter(node1.cfg_file, accept_foreign=True)
    assert cfg.GetClusterInfo().data_collectors["lv"] == {"active": False,
                                                          "interval": 7000000}

    proc = node1.gnt("verify", "--node-group", "default", "--no-hv-param-assessment",
                     "-I", "ENODEN1")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    proc = node1.gnt("verify", "--node-group", "nosuchgroup")
    assert proc.returncode != 0 and "nosuchgroup" in proc.stderr

    assert node1.gnt("upgrade", "--to", constants.RELEASE_VERSION).returncode == 0
    proc = node1.gnt("upgrade", "--to", "2.16")
    assert proc.returncode == 1 and "Cannot upgrade" in proc.stderr
