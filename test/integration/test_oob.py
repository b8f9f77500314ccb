"""Out-of-band power management on a two-node virtual cluster:
gnt-node power/health with tools/oob-test-helper, gnt-cluster verify's
ENODEOOBPATH, gnt-cluster epo (and --on) for one node group, gnt-node
failover and powercycle on the fake hypervisor.

The helper keeps the node power states in ``<helper>.state`` next to the
copy placed in the cluster's directory; nothing is really switched off, so
the node daemons keep answering after "power off".
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from vcluster import VirtualCluster, virtual_cluster  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

HELPER = Path(__file__).resolve().parents[2] / "tools" / "oob-test-helper"


@pytest.fixture(scope="module")
def vc():
    with virtual_cluster(nodes=2) as cluster:
        helper = Path(cluster.directory) / "oob" / "helper"
        helper.parent.mkdir()
        shutil.copy(HELPER, helper)
        os.chmod(helper, 0o755)
        cluster.helper = helper  # type: ignore[attr-defined]
        cluster.run("gnt-cluster", "modify", "--enabled-disk-templates",
                    "sharedfile,diskless", "--node-parameters",
                    f"oob_program={helper}")
        cluster.run("gnt-group", "add", "rack2")
        cluster.run("gnt-group", "assign-nodes", "rack2", cluster.names[1])
        yield cluster


def _Node(vc: VirtualCluster, *args: str, check: bool = True):
    return vc.run("gnt-node", *args, check=check)


def _Powered(vc: VirtualCluster) -> dict[str, str]:
    out = _Node(vc, "list", "--no-headers", "--separator=|",
                "-o", "name,powered,offline").stdout
    return {line.split("|")[0]: line.split("|", 1)[1] for line in out.splitlines()}


def _State(vc: VirtualCluster) -> Path:
    return Path(str(vc.helper) + ".state")  # type: ignore[attr-defined]


def test_power_and_health(vc):
    node1, node2 = vc.names
    out = _Node(vc, "power", "status").stdout
    assert out.splitlines()[1:] == [f"{node1} powered", f"{node2} powered"]
    assert _Powered(vc) == {node1: "Y|N", node2: "Y|N"}
    # the master is never powered off by Ganeti
    result = _Node(vc, "power", "-f", "off", node1, check=False)
    assert result.returncode != 0 and "is the master" in result.stderr
    result = _Node(vc, "power", "-f", "--ignore-status", "off", node1, check=False)
    assert result.returncode != 0
    assert f"'{vc.helper} power-off {node1}'" in result.stderr
    # off marks the node offline first; the state of record follows
    _Node(vc, "power", "-f", "off", node2)
    assert _Powered(vc)[node2] == "N|Y"
    out = _Node(vc, "power", "status", node2).stdout
    assert f"{node2} unpowered" in out
    _Node(vc, "power", "on", node2)
    assert _Powered(vc)[node2] == "Y|Y"
    _Node(vc, "modify", "-O", "no", node2)
    calls = (_State(vc) / "calls.log").read_text()
    assert f"power-off {node2}" in calls and f"power-on {node2}" in calls
    (_State(vc) / f"{node2}.health").write_text(json.dumps(
        [["fan", "OK"], ["psu", "CRITICAL"]]))
    result = _Node(vc, "health", node2)
    lines = [line for line in result.stdout.splitlines() if "WARNING" not in line]
    assert lines[-2].split() == [node2, "fan=OK"] and lines[-1].strip() == "psu=CRITICAL"
    assert (f"Item 'psu' on node '{node2}' has status 'CRITICAL'"
            in result.stdout + result.stderr)


def test_bad_helper_answers(vc):
    node2 = vc.names[1]
    (_State(vc) / "mode").write_text("garbage")
    try:
        result = _Node(vc, "power", "status", node2, check=False)
    finally:
        (_State(vc) / "mode").unlink()
    assert result.returncode == 1
    assert f"{node2} (nodata)" in result.stdout
    output = result.stdout + result.stderr
    assert str(vc.helper) in output and "invalid JSON" in output
    result = _Node(vc, "power", "status", "nosuchnode", check=False)
    assert result.returncode != 0 and "nosuchnode" in result.stderr


def test_verify_reports_missing_helper(vc):
    missing = Path(vc.directory) / "oob" / "missing"
    vc.run("gnt-group", "modify", "--node-parameters", f"oob_program={missing}",
           "rack2")
    try:
        result = vc.run("gnt-cluster", "verify", "--error-codes", check=False)
    finally:
        vc.run("gnt-group", "modify", "--node-parameters", "oob_program=default",
               "rack2")
    assert result.returncode != 0
    assert "ENODEOOBPATH" in result.stdout and str(missing) in result.stdout
    result = vc.run("gnt-cluster", "verify", "--error-codes", check=False)
    assert "ENODEOOBPATH" not in result.stdout


def _Status(vc: VirtualCluster, name: str) -> str:
    return vc.run("gnt-instance", "list", "--no-headers", "-o", "status",
                  name).stdout.strip()


def test_epo_for_one_group_and_back(vc):
    node1, node2 = vc.names
    vc.run("gnt-instance", "add", "-o", "noop+default", "-t", "diskless", "-n", node2,
           "--no-name-check", "--no-ip-check", "epo1")
    try:
        result = vc.run("gnt-cluster", "epo", "-f", "--groups", "default",
                        check=False)
        assert result.returncode != 0 and "master node" in result.stderr
        vc.run("gnt-cluster", "epo", "-f", "--groups", "rack2")
        assert _Powered(vc)[node2] == "N|N"
        # stopped without recording it: still marked up
        assert _Status(vc, "epo1") == "ERROR_down"
        vc.run("gnt-cluster", "epo", "-f", "--on", "--groups", "rack2",
               "--power-delay", "0")
        assert _Powered(vc)[node2] == "Y|N"
        assert _Status(vc, "epo1") == "running"
    finally:
        vc.run("gnt-instance", "remove", "-f", "epo1")


def test_failover_and_powercycle(vc):
    node1, node2 = vc.names
    vc.run("gnt-group", "assign-nodes", "default", node2)
    vc.run("gnt-instance", "add", "-o", "noop+default", "-t", "sharedfile",
           "--disk", "0:size=1G", "-n", node1, "--no-name-check", "--no-ip-check",
           "fo1")
    try:
        out = _Node(vc, "failover", "-f", "-I", "hail", node1).stdout
        assert "All 1 instance(s) failed over successfully." in out
        pnode = vc.run("gnt-instance", "list", "--no-headers", "-o", "pnode,status",
                       "fo1").stdout.split()
        assert pnode == [node2, "running"]
        out = _Node(vc, "failover", "-f", node1).stdout
        assert "No primary instances" in out
    finally:
        vc.run("gnt-instance", "remove", "-f", "fo1")
    result = _Node(vc, "powercycle", "--yes", node2)
    assert "Reboot scheduled" in result.stderr
    record = vc.path(node2, "/var/run/ganeti/fake-hypervisor.powercycle")
    for _ in range(100):
        if record.exists():
            break
        time.sleep(0.2)
    assert record.read_text().strip()
    result = _Node(vc, "powercycle", "--yes", node1, check=False)
    assert result.returncode != 0 and "force" in result.stderr
