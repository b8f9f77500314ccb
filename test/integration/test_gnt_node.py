"""gnt-node on a real virtual cluster: add, list, info, modify, remove.

A one-node cluster is made with the real ``tools/vcluster-setup``
(``gnt-cluster init``); the test then adds two nodes with ``gnt-node add``
in local (virtual) mode, each on its own loopback address, and exercises
the other commands, including bad input that must leave the configuration
unchanged.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import sys
import tempfile
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from vcluster import PickNet, VirtualCluster  # noqa: E402

from ganeti import constants, utils  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

NODE2 = "node2.vcluster.test"
NODE3 = "node3.vcluster.test"


def _NodedPid(root: str) -> int | None:
    pidfile = os.path.join(root, "var/run/ganeti", f"{constants.NODED}.pid")
    if not os.path.exists(pidfile):
        return None
    pid = utils.ReadLockedPidFile(pidfile)
    return pid if pid and utils.IsProcessAlive(pid) else None


class Cluster:
    """The virtual cluster plus the nodes this test adds by hand."""

    def __init__(self, vc: VirtualCluster) -> None:
        self.vc = vc
        self.master = vc.names[0]
        self.ips = {NODE2: f"{vc.net}.2", NODE3: f"{vc.net}.3"}

    def root(self, name: str) -> str:
        return os.path.join(self.vc.directory, name)

    def make_root(self, name: str) -> None:
        for sub in ("var/lib/ganeti", "var/run/ganeti", "var/log/ganeti",
                    "etc/ganeti", "srv/ganeti/file-storage"):
            os.makedirs(os.path.join(self.root(name), sub), exist_ok=True)

    def gnt(self, *args: str, check: bool = True):
        return self.vc.run("gnt-node", *args, check=check)

    def config(self, name: str | None = None) -> dict:
        path = os.path.join(self.root(name or self.master), "var/lib/ganeti/config.data")
        with open(path, encoding="utf-8") as fd:
            return json.load(fd)

    def serial(self) -> int:
        return self.config()["serial_no"]

    def roles(self) -> dict[str, str]:
        out = self.gnt("list", "--no-headers", "--separator=|", "-o", "name,role").stdout
        return dict(line.split("|") for line in out.splitlines())


@pytest.fixture(scope="module")
def cluster():
    net = PickNet(3)
    for idx in (2, 3):
        with socket.socket() as sock:
            try:
                sock.bind((f"{net}.{idx}", constants.DEFAULT_NODED_PORT))
            except OSError:
                pytest.skip(f"{net}.{idx}:{constants.DEFAULT_NODED_PORT} is in use")
    directory = tempfile.mkdtemp(prefix="gvn", dir="/tmp")
    vc = VirtualCluster(directory, nodes=1, net=net)
    result = Cluster(vc)
    try:
        vc.setup()
        yield result
    finally:
        pids = [pid for pid in (_NodedPid(result.root(n)) for n in (NODE2, NODE3)) if pid]
        leftovers = vc.cleanup()
        for pid in pids:
            if utils.IsProcessAlive(pid):
                utils.KillProcess(pid, timeout=15)
        shutil.rmtree(directory, ignore_errors=True)
        assert not leftovers, leftovers


def _Add(cluster: Cluster, name: str, *extra: str):
    cluster.make_root(name)
    return cluster.gnt("add", "--node-ip", cluster.ips[name], *extra, name)


def test_add_list_info_modify_remove(cluster):
    _Add(cluster, NODE2)
    _Add(cluster, NODE3, "--vm-capable", "no")
    assert cluster.roles() == {cluster.master: "M", NODE2: "C", NODE3: "C"}
    assert _NodedPid(cluster.root(NODE2)) is not None
    # the candidates got the configuration and ssconf
    assert cluster.config(NODE2)["serial_no"] == cluster.serial()
    with open(os.path.join(cluster.root(NODE3), "var/lib/ganeti/ssconf_node_list"),
              encoding="ascii") as fd:
        assert NODE3 in fd.read().split()

    # list: default fields with live data, fields, filters, names
    out = cluster.gnt("list").stdout.splitlines()
    assert out[0].split()[:3] == ["Node", "DTotal", "DFree"]
    assert [line.split()[0] for line in out[1:]] == [cluster.master, NODE2, NODE3]
    out = cluster.gnt("list", "--no-headers", "-o", "name,vm_capable,pip",
                      "-F", "not vm_capable").stdout
    assert out.split() == [NODE3, "N", cluster.ips[NODE3]]
    out = cluster.gnt("list", "--no-headers", "-o", "name",
                      "name =~ /node[23]/ and master_candidate").stdout
    assert out.split() == [NODE2, NODE3]
    out = cluster.gnt("list", "--no-headers", "-o", "name", "node3", "node1").stdout
    assert out.split() == [cluster.master, NODE3]
    out = cluster.gnt("list", "--no-headers", "-o", "name,mtotal", "--units=m",
                      NODE2).stdout.split()
    assert out[0] == NODE2 and int(out[1]) > 0
    fields = cluster.gnt("list-fields").stdout
    for name in ("pinst_cnt", "role", "mfree", "group.uuid"):
        assert f"\n{name} " in fields

    # info
    info = cluster.gnt("info", NODE2).stdout
    assert f"Node name: {NODE2}" in info
    assert f"primary ip: {cluster.ips[NODE2]}" in info
    assert "master candidate: True" in info

    # modify: offline and back, demote and promote
    out = cluster.gnt("modify", "-O", "yes", NODE3).stdout
    assert "offline -> True" in out
    assert cluster.roles()[NODE3] == "O"
    assert cluster.config(NODE2)["serial_no"] == cluster.serial()
    cluster.gnt("modify", "-O", "no", NODE3)
    assert cluster.roles()[NODE3] == "C"
    cluster.gnt("modify", "-C", "no", NODE2)
    assert cluster.roles()[NODE2] == "R"
    cluster.gnt("modify", "-D", "yes", NODE2)
    assert cluster.roles()[NODE2] == "D"
    cluster.gnt("modify", "-D", "no", NODE2)
    assert cluster.roles()[NODE2] == "C"       # auto-promotion: the pool is short

    # remove: the node daemon cleans up and stops
    pid = _NodedPid(cluster.root(NODE3))
    cluster.gnt("remove", NODE3)
    assert NODE3 not in cluster.roles()
    assert not os.path.exists(os.path.join(cluster.root(NODE3),
                                           "var/lib/ganeti/server.pem"))
    assert pid is not None
    deadline = time.monotonic() + 30
    while utils.IsProcessAlive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)  # bounded wait for the daemon to exit
    assert not utils.IsProcessAlive(pid)
    # and it can come back
    _Add(cluster, NODE3)
    assert cluster.roles() == {cluster.master: "M", NODE2: "C", NODE3: "C"}


def test_bad_input_leaves_config_unchanged(cluster):
    if NODE2 not in cluster.roles():
        _Add(cluster, NODE2)
    serial = cluster.serial()

    result = cluster.gnt("add", "--node-ip", cluster.ips[NODE2], NODE2, check=False)
    assert result.returncode != 0 and "already in the cluster" in result.stderr
    result = cluster.gnt("add", "--readd", "--node-ip", "127.0.0.9",
                         "nosuch.vcluster.test", check=False)
    assert result.returncode != 0 and "not in the cluster" in result.stderr
    # no root directory: SSH mode, and nothing listens there
    result = cluster.gnt("add", "--node-ip", "127.0.0.9", "--no-ssh-key-check",
                         "ghost.vcluster.test", check=False)
    assert result.returncode != 0 and "Cannot connect by SSH" in result.stderr
    result = cluster.gnt("remove", cluster.master, check=False)
    assert result.returncode != 0 and "is the master node" in result.stderr
    result = cluster.gnt("remove", "nosuch", check=False)
    assert result.returncode != 0 and "not known" in result.stderr
    result = cluster.gnt("modify", "-O", "yes", cluster.master, check=False)
    assert result.returncode != 0 and "master-failover" in result.stderr
    result = cluster.gnt("modify", "-O", "yes", "-D", "yes", NODE2, check=False)
    assert result.returncode != 0 and "more than one state" in result.stderr
    result = cluster.gnt("modify", NODE2, check=False)
    assert result.returncode != 0
    result = cluster.gnt("modify", "-C", "maybe", NODE2, check=False)
    assert result.returncode != 0 and "maybe" in result.stderr
    result = cluster.gnt("list", "-o", "name,nosuchfield", check=False)
    assert result.returncode == constants.EXIT_UNKNOWN_FIELD
    assert "nosuchfield" in result.stderr
    result = cluster.gnt("list", "-F", "name == ", check=False)
    assert result.returncode != 0 and "offset" in result.stderr
    result = cluster.gnt("list", "-F", "nosuchfield == 1", check=False)
    assert result.returncode != 0 and "nosuchfield" in result.stderr
    result = cluster.gnt("info", "nosuch", check=False)
    assert result.returncode != 0 and "nosuch" in result.stderr
    assert cluster.serial() == serial
