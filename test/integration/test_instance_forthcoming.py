"""gnt-instance add --forthcoming / --commit, the instance communication
NIC (-c) and modify --new-primary on a two-node virtual cluster (fake
hypervisor, noop OS)."""

from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from vcluster import VirtualCluster, virtual_cluster  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

NAME = "fc1.example.com"
NIC_NAME = f"ganeti:communication:{NAME}"


@pytest.fixture(scope="module")
def vc():
    with virtual_cluster(nodes=2) as cluster:
        cluster.run("gnt-cluster", "modify", "--enabled-disk-templates",
                    "file,sharedfile,diskless")
        yield cluster


def _Gnt(vc: VirtualCluster, *args: str, check: bool = True):
    return vc.run("gnt-instance", *args, check=check)


def _Row(vc: VirtualCluster, fields: str) -> list[str]:
    out = _Gnt(vc, "list", "--no-headers", "--separator=|", "-o", fields, NAME).stdout
    return out.strip().split("|")


def test_forthcoming_commit_communication_new_primary(vc):
    node1, node2 = vc.names
    add = ["add", "-t", "sharedfile", "-s", "1G", "-o", "noop+default", "-n", node1,
           "--no-name-check", "--no-ip-check"]
    # -c without the cluster's network is refused
    result = _Gnt(vc, *add, "-c", "yes", "--forthcoming", NAME, check=False)
    assert result.returncode != 0
    assert "no instance communication network" in result.stderr
    vc.run("gnt-network", "add", "--network", "169.254.0.0/29", "comm-net")
    vc.run("gnt-network", "connect", "-N", "mode=routed,link=comm_rt",
           "comm-net", "default")
    vc.run("gnt-cluster", "modify", "--instance-communication-network", "comm-net")

    # a reservation: in the configuration only
    _Gnt(vc, *add, "-c", "yes", "--forthcoming", NAME)
    assert _Row(vc, "forthcoming,status,nic.names") == [
        "Y", "ADMIN_offline", f"None,{NIC_NAME}"]
    image = vc.path(node1, f"/srv/ganeti/shared-file-storage/{NAME}/disk0")
    assert not image.exists()
    result = _Gnt(vc, "startup", NAME, check=False)
    assert result.returncode != 0 and "forthcoming" in result.stderr

    # the commit must fit the reservation, then creates it
    result = _Gnt(vc, *add[:4], "2G", *add[5:], "-c", "yes", "--commit", NAME,
                  check=False)
    assert result.returncode != 0 and "disk sizes" in result.stderr
    _Gnt(vc, *add, "-c", "yes", "--commit", NAME)
    assert _Row(vc, "forthcoming,status,pnode") == ["N", "running", node1]
    assert image.exists()

    # the communication NIC goes and comes back
    _Gnt(vc, "modify", "-c", "no", NAME)
    assert _Row(vc, "nic.names") == ["None"]
    _Gnt(vc, "modify", "-c", "yes", NAME)
    assert _Row(vc, "nic.names") == [f"None,{NIC_NAME}"]

    # a new primary node: refused while running, then recorded
    result = _Gnt(vc, "modify", "--new-primary", node2, NAME, check=False)
    assert result.returncode != 0 and "still running" in result.stderr
    _Gnt(vc, "shutdown", "--timeout", "5", NAME)
    _Gnt(vc, "modify", "--new-primary", node2, NAME)
    assert _Row(vc, "pnode") == [node2]
    _Gnt(vc, "startup", NAME)
    assert _Row(vc, "status,pnode") == ["running", node2]

    # a reservation is removed from the configuration only
    _Gnt(vc, "remove", "-f", NAME)
    _Gnt(vc, *add, "--forthcoming", NAME)
    _Gnt(vc, "remove", "-f", NAME)
    assert NAME not in _Gnt(vc, "list", "--no-headers", "-o", "name").stdout
