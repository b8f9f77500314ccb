"""tools/cluster-merge on two 2-node virtual clusters of this machine.

Cluster A (``node<i>.vcluster.test``) absorbs cluster B (``b<i>.vcluster.test``,
cluster name ``clusterb.vcluster.test``). In a virtual cluster the merged
nodes' roots must lie beside A's (doc/cluster-merge.rst): B's node roots
get symbolic links in A's directory. First a merge that must be refused
(an instance name in both clusters) and must change nothing; then a dry
run; then the merge, after which A has four nodes, every instance, a clean
``gnt-cluster verify``, and B's old master is a plain node of A.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from vcluster import PickNet, VirtualCluster  # noqa: E402

from ganeti import constants, vcluster  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

B_CLUSTER = "clusterb.vcluster.test"
B_FORMAT = "b{i}.vcluster.test"


class _NamedCluster(VirtualCluster):
    """A virtual cluster with its own node names and cluster name."""

    def __init__(self, directory: str, name_format: str, cluster_name: str,
                 **kwargs) -> None:
        self.name_format = name_format
        self.cluster_name = cluster_name
        super().__init__(directory, **kwargs)

    def setup_command(self) -> list[str]:
        return [*super().setup_command(), "--name-format", self.name_format,
                "--cluster-name", self.cluster_name]


def _Add(vc: VirtualCluster, name: str, node: str, *extra: str) -> None:
    vc.run("gnt-instance", "add", "-t", "diskless", "-o", "noop+default", "-n", node,
           "--no-name-check", "--no-ip-check", *extra, name)


def _Merge(vc: VirtualCluster, *args: str):
    return vc.run("cluster-merge", *args, check=False, timeout=400)


def _Instances(vc: VirtualCluster) -> dict[str, list[str]]:
    out = vc.run("gnt-instance", "list", "--no-headers", "--separator=|", "-o",
                 "name,pnode,status").stdout
    return {row[0]: row[1:] for row in (line.split("|") for line in out.splitlines()
                                        if line.strip())}


def _WatcherPaused(vc: VirtualCluster) -> bool:
    return "is paused" in vc.run("gnt-cluster", "watcher", "info").stdout


def _Drained(vc: VirtualCluster) -> bool:
    return "is set" in vc.run("gnt-cluster", "queue", "info").stdout


def _MergedNodes(vc_a: VirtualCluster, vc_b: VirtualCluster) -> vcluster.State | None:
    """A state of B's nodes as nodes of A (their roots' links in A's directory)."""
    state_a = vc_a.state()
    if state_a is None:
        return None
    return vcluster.State(**{**state_a.__dict__, "nodes": [
        vcluster.Node(n.name, n.ip, os.path.join(vc_a.directory, n.name))
        for n in vc_b.nodes]})


@pytest.fixture(scope="module")
def clusters():
    dir_a = tempfile.mkdtemp(prefix="gvma", dir="/tmp")
    dir_b = tempfile.mkdtemp(prefix="gvmb", dir="/tmp")
    cluster_a = VirtualCluster(dir_a, nodes=2)
    net_b = PickNet(2)
    while net_b == cluster_a.net:
        net_b = PickNet(2)
    cluster_b = _NamedCluster(dir_b, B_FORMAT, B_CLUSTER, nodes=2, net=net_b)
    try:
        with ThreadPoolExecutor(2) as pool:
            for future in [pool.submit(cluster_a.setup), pool.submit(cluster_b.setup)]:
                future.result()
        for node in cluster_b.nodes:
            os.symlink(node.root, os.path.join(dir_a, node.name))
        yield cluster_a, cluster_b
    finally:
        # The merged nodes' daemons run as nodes of A (roots in A's directory)
        merged = _MergedNodes(cluster_a, cluster_b)
        if merged is not None:
            vcluster.StopDaemons(dir_a, merged, timeout=10)
        leftovers = cluster_a.cleanup()
        leftovers += cluster_b.cleanup()
        shutil.rmtree(dir_a, ignore_errors=True)
        shutil.rmtree(dir_b, ignore_errors=True)
        assert not leftovers, f"daemons still ran after the clusters stopped: {leftovers}"


def test_refused_merge_changes_nothing(clusters):
    vc_a, vc_b = clusters
    _Add(vc_a, "inst-a1.example.com", vc_a.names[1])
    _Add(vc_b, "inst-b1.example.com", vc_b.names[1])
    _Add(vc_b, "inst-a1.example.com", vc_b.names[0], "--no-start")
    serial_a, serial_b = vc_a.config()["serial_no"], vc_b.config()["serial_no"]
    daemons_b = vc_b.daemons()

    result = _Merge(vc_a, "--groups=rename", vc_b.names[0])
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "instance inst-a1.example.com is in both this cluster and" \
           f" {B_CLUSTER}" in output
    assert "Nothing was changed." in output
    # same-named groups without --groups are refused too
    result = _Merge(vc_a, vc_b.names[0])
    assert result.returncode == 1
    assert "node group 'default' exists in both this cluster and" \
           f" {B_CLUSTER}; use --groups=merge or --groups=rename" in result.stderr
    # bad input
    result = _Merge(vc_a, "--groups=join", vc_b.names[0])
    assert result.returncode == 2 and "invalid choice: 'join'" in result.stderr
    result = _Merge(vc_a, "--groups=merge", vc_a.names[1])
    assert result.returncode == 1 and "is this cluster or one of its nodes" in \
        result.stderr
    result = _Merge(vc_a, "--groups=merge", "nosuchnode.vcluster.test")
    assert result.returncode == 1 and "nosuchnode.vcluster.test" in result.stderr

    assert vc_a.config()["serial_no"] == serial_a
    assert vc_b.config()["serial_no"] == serial_b
    assert vc_b.daemons() == daemons_b
    for vc in (vc_a, vc_b):
        assert not _WatcherPaused(vc) and not _Drained(vc)


def test_dry_run_then_merge(clusters):
    vc_a, vc_b = clusters
    vc_b.run("gnt-instance", "remove", "-f", "inst-a1.example.com")
    serial_a, serial_b = vc_a.config()["serial_no"], vc_b.config()["serial_no"]
    result = _Merge(vc_a, "--groups=rename", "--dry-run", vc_b.names[0])
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"nodes to re-add: {vc_b.names[0]}, {vc_b.names[1]}" in result.stdout
    assert "instances: inst-b1.example.com" in result.stdout
    assert f"node group default of {B_CLUSTER} is renamed to default-clusterb" \
        in result.stdout
    assert "Dry run: nothing was changed." in result.stdout
    assert vc_a.config()["serial_no"] == serial_a
    assert vc_b.config()["serial_no"] == serial_b

    result = _Merge(vc_a, "--groups=rename", vc_b.names[0])
    assert result.returncode == 0, result.stdout + result.stderr

    nodes = vc_a.run("gnt-node", "list", "--no-headers", "-o", "name,group").stdout
    assert sorted(line.split() for line in nodes.splitlines()) == [
        [vc_b.names[0], "default-clusterb"], [vc_b.names[1], "default-clusterb"],
        [vc_a.names[0], "default"], [vc_a.names[1], "default"]]
    assert _Instances(vc_a) == {
        "inst-a1.example.com": [vc_a.names[1], "running"],
        "inst-b1.example.com": [vc_b.names[1], "running"]}
    verify = vc_a.run("gnt-cluster", "verify", check=False)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    # B's old master is a plain node of A now
    old_master = vc_b.names[0]
    ssconf = vc_b.path(old_master, constants.DEFAULT_DATA_DIR) / "ssconf_master_node"
    assert ssconf.read_text().strip() == vc_a.names[0]
    assert vc_b.run("gnt-cluster", "getmaster", node=old_master).stdout.strip() == \
        vc_a.names[0]
    # B's own daemons are gone; its nodes run A's node daemons, no master daemon
    assert vc_b.daemons() == {}
    merged = _MergedNodes(vc_a, vc_b)
    assert merged is not None
    running = vcluster.RunningDaemons(merged)
    assert (old_master, constants.NODED) in running
    assert (vc_b.names[1], constants.NODED) in running
    assert (old_master, constants.MASTERD) not in running
    assert not _WatcherPaused(vc_a) and not _Drained(vc_a)
