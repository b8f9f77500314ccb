"""gnt-cluster verify, verify-disks and repair-disk-sizes on a 3-node
virtual cluster with storage (each node its own loop-backed volume group
``xenvg``, metadata only; DRBD through the stand-in, doc/drbd-standin.rst),
holding a plain and a drbd instance, both running (fake hypervisor).

The nodes' LVM is changed by hand through each node's LVM view (an orphan
volume, a removed one, an extended one) and a DRBD disk is failed with the
stand-in; verify must report each, verify-disks activate the failed disk,
repair-disk-sizes record the extended size. Needs root (loop devices).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from vcluster import REPO, VirtualCluster, virtual_cluster  # noqa: E402

from ganeti import vcluster  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900),
              pytest.mark.skipif(not vcluster.StorageAvailable(),
                                 reason="virtual nodes get LVM only as root, with lvm2"
                                        " and loop devices")]

PLAIN = "vplain.vcluster.test"
DRBD = "vdrbd.vcluster.test"
STANDIN_CTL = os.path.join(str(REPO), "tools", "drbd-standin", "drbdsetup-standin-ctl")


@pytest.fixture(scope="module")
def vc():
    with virtual_cluster(nodes=3, storage=True) as cluster:
        n1, n2, _ = cluster.names
        for name, template, nodes in ((PLAIN, "plain", n1), (DRBD, "drbd", f"{n1}:{n2}")):
            cluster.run("gnt-instance", "add", "-t", template, "-o", "noop+default",
                        "-n", nodes, "--no-name-check", "--no-ip-check",
                        "--disk", "0:size=1G", name)
        yield cluster


def _Verify(vc: VirtualCluster) -> tuple[int, list[str]]:
    """(exit code, the problem lines in --error-codes form)."""
    result = vc.run("gnt-cluster", "verify", "--error-codes", check=False, timeout=300)
    lines = [line.strip()[2:] for line in result.stdout.splitlines()
             if re.match(r"\s+- (ERROR|WARNING):", line)]
    return result.returncode, lines


def _WaitClean(vc: VirtualCluster, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while True:
        code, lines = _Verify(vc)
        if code == 0 and not lines:
            return
        assert time.monotonic() < deadline, lines
        time.sleep(2)


def test_clean_cluster(vc):
    code, lines = _Verify(vc)
    assert (code, lines) == (0, [])
    out = vc.run("gnt-cluster", "verify-disks").stdout
    assert "No disks need to be activated." in out


def test_orphan_volume(vc):
    n2 = vc.names[1]
    vc.lvm(2, "lvcreate", "-an", "-Zn", "-L", "8M", "-n", "orphan", "xenvg")
    try:
        code, lines = _Verify(vc)
        # Only a warning
        assert code == 0
        assert lines == [f"WARNING:ENODEORPHANLV:node:{n2}:volume xenvg/orphan is unknown"]
        # Reserved volumes are left alone
        vc.run("gnt-cluster", "modify", "--reserved-lvs", "xenvg/orph.*")
        try:
            assert _Verify(vc) == (0, [])
        finally:
            vc.run("gnt-cluster", "modify", "--reserved-lvs", "")
    finally:
        vc.lvm(2, "lvremove", "-f", "xenvg/orphan")
    assert _Verify(vc) == (0, [])


def test_missing_volume(vc):
    n1 = vc.names[0]
    vg, lv = vc.instance_disks(PLAIN)[0]["logical_id"]
    vc.lvm(1, "lvremove", "-f", f"{vg}/{lv}")
    try:
        code, lines = _Verify(vc)
        assert code != 0
        assert f"ERROR:EINSTANCEMISSINGDISK:instance:{PLAIN}:volume {vg}/{lv} missing on" \
            f" node {n1}" in lines
        # The node cannot give the status of the disk either
        assert any(line.startswith(f"ERROR:EINSTANCEFAULTYDISK:instance:{PLAIN}:couldn't"
                                   f" retrieve status for disk/0 on {n1}")
                   for line in lines)
        result = vc.run("gnt-cluster", "verify-disks", check=False)
        assert result.returncode != 0
        assert f"Instance {PLAIN} has missing logical volumes:\n\t{n1} /dev/{vg}/{lv}\n" \
            in result.stdout
        assert "You need to replace or recreate disks" in result.stdout
    finally:
        vc.lvm(1, "lvcreate", "-an", "-Zn", "-L", "1024M", "-n", lv, vg)
    assert _Verify(vc) == (0, [])


def test_failed_drbd_disk(vc):
    n1, n2, _ = vc.names
    disk = vc.instance_disks(DRBD)[0]
    minor_n2 = disk["logical_id"][4]
    out = subprocess.run([sys.executable, STANDIN_CTL, "fail-disk", str(minor_n2)],
                         env=vc.env(n2), capture_output=True, text=True, check=True,
                         timeout=60).stdout
    assert "now Diskless" in out
    code, lines = _Verify(vc)
    assert code != 0
    prefix = f"EINSTANCEFAULTYDISK:instance:{DRBD}:disk/0"
    assert f"ERROR:{prefix} on {n2} is degraded; local disk state is 'faulty'" in lines
    assert f"WARNING:{prefix} on {n1} is degraded; local disk state is 'ok'" in lines
    # verify-disks lists it (the watcher's contract) and activates its disks,
    # which attaches the local disk again: it resyncs from its peer
    out = vc.run("gnt-cluster", "verify-disks").stdout
    assert f"Activating disks for instance '{DRBD}'" in out
    _WaitClean(vc)
    assert "No disks need to be activated." in vc.run("gnt-cluster", "verify-disks").stdout


def test_repair_disk_sizes(vc):
    plain_vg, plain_lv = vc.instance_disks(PLAIN)[0]["logical_id"]
    data = vc.instance_disks(DRBD)[0]["children"][0]
    vc.lvm(1, "lvextend", "-L", "+512M", f"{plain_vg}/{plain_lv}")
    vc.lvm(1, "lvextend", "-L", "+256M", "/".join(data["logical_id"]))
    result = vc.run("gnt-cluster", "repair-disk-sizes", timeout=300)
    out = result.stdout + result.stderr
    assert f"Disk 0 of instance {PLAIN} has mismatched size, correcting: recorded 1024," \
        " actual 1536" in out
    assert f"Disk 0 of instance {DRBD} has mismatched size, correcting: recorded 1024," \
        " actual 1280" in out
    assert vc.instance_disks(PLAIN)[0]["size"] == 1536
    drbd = vc.instance_disks(DRBD)[0]
    assert (drbd["size"], drbd["children"][0]["size"]) == (1280, 1280)
    # Once only; a named instance alone
    result = vc.run("gnt-cluster", "repair-disk-sizes", PLAIN)
    assert "mismatched" not in result.stdout + result.stderr
    assert _Verify(vc) == (0, [])
