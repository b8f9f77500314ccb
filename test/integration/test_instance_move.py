"""gnt-instance move on a 3-node virtual cluster: the disks of plain and
file instances are copied for real through the import/export daemons
(socat with TLS between the nodes' loopback addresses). The nodes' LVM
views map active logical volumes onto loop devices (loop activation), so
plain disks hold real data here.

Needs root (loop devices); skipped with the reason otherwise.
"""

from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from vcluster import VirtualCluster, virtual_cluster  # noqa: E402

from ganeti import vcluster  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900),
              pytest.mark.skipif(not vcluster.StorageAvailable(),
                                 reason="virtual nodes get LVM only as root, with lvm2"
                                        " and loop devices")]

MARK = b"ganeti-move-test-"


@pytest.fixture(scope="module")
def vc():
    with virtual_cluster(nodes=3, storage=True, loop_activation=True) as cluster:
        yield cluster


def _Gnt(vc: VirtualCluster, *args: str, check: bool = True):
    return vc.run("gnt-instance", *args, check=check)


def _Add(vc: VirtualCluster, name: str, template: str, node: str, size: str = "64M"):
    _Gnt(vc, "add", "-t", template, "-o", "noop+default", "-n", node,
         "--no-name-check", "--no-ip-check", "--no-start", "--ignore-ipolicy",
         "--disk", f"0:size={size}",
         "--disk", "1:size=32M", name)


def _Devices(vc: VirtualCluster, name: str) -> dict[str, tuple[str, str]]:
    """Activate the disks; "disk/N" -> (node, device path)."""
    out = _Gnt(vc, "activate-disks", name).stdout
    result = {}
    for line in out.splitlines():
        node, disk, path = line.strip().split(":", 2)
        result[disk] = (node, path)
    return result


def _Write(vc: VirtualCluster, node: str, path: str, data: bytes) -> None:
    with open(path, "r+b") as fd:
        fd.write(data)
        fd.flush()
        os.fsync(fd.fileno())


def _Read(vc: VirtualCluster, node: str, path: str, size: int) -> bytes:
    # Device paths are the host's; file paths name the node's root already
    with open(path, "rb") as fd:
        return fd.read(size)


def _Owner(vc: VirtualCluster, name: str) -> list[str]:
    return _Gnt(vc, "list", "--no-headers", "-o", "pnode", name).stdout.split()


def _Lvs(vc: VirtualCluster, node: int) -> set[str]:
    out = vc.lvm(node, "lvs", "--noheadings", "-o", "vg_name,lv_name", "--separator=/")
    return {line.strip() for line in out.splitlines() if line.strip()}


@pytest.mark.parametrize("template", ["plain", "file"])
def test_move_copies_the_data(vc, template):
    name = f"move-{template}.vcluster.test"
    n1, n2 = vc.names[:2]
    _Add(vc, name, template, n1)
    devices = _Devices(vc, name)
    payloads = {}
    for disk, (node, path) in devices.items():
        assert node == n1
        if template == "file":  # the node's own file, never the host's
            assert path.startswith(str(vc.node(n1).root) + "/"), path
        payloads[disk] = MARK + f"{template}-{disk}".encode() + os.urandom(4096)
        _Write(vc, node, path, payloads[disk])
    _Gnt(vc, "deactivate-disks", name)
    before_lvs = _Lvs(vc, 1)
    extra = ["--compress", "gzip"] if template == "plain" else []
    # The small disks are below the default policy's minimum: the target
    # group's policy is checked as at creation
    result = _Gnt(vc, "move", "-f", "--ignore-ipolicy", "-n", n2, *extra, name)
    assert "disk/0" in result.stdout + result.stderr
    assert _Owner(vc, name) == [n2]
    moved = _Devices(vc, name)
    for disk, (node, path) in moved.items():
        assert node == n2
        assert _Read(vc, node, path, len(payloads[disk])) == payloads[disk]
    _Gnt(vc, "deactivate-disks", name)
    if template == "plain":
        lvs = {"/".join(d["logical_id"]) for d in vc.instance_disks(name)}
        assert lvs <= _Lvs(vc, 2)
        assert not lvs & _Lvs(vc, 1)
        assert _Lvs(vc, 1) == before_lvs - lvs
    else:
        # The source node's files are gone, the target's are new ones
        for disk, (_, path) in devices.items():
            assert not os.path.exists(path)
            assert moved[disk][1] != path
    # Nothing of the transfer is left on the nodes
    for idx in (1, 2):
        impexp = vc.path(idx, "/var/run/ganeti/import-export")
        assert not impexp.exists() or not list(impexp.iterdir())
    _Gnt(vc, "remove", "-f", name)


def test_move_of_a_running_instance_restarts_it(vc):
    name = "move-up.vcluster.test"
    n1, n3 = vc.names[0], vc.names[2]
    _Add(vc, name, "plain", n1, size="32M")
    _Gnt(vc, "startup", name)
    _Gnt(vc, "move", "-f", "--ignore-ipolicy", "-n", n3, name)
    out = _Gnt(vc, "list", "--no-headers", "-o", "pnode,status", name).stdout.split()
    assert out == [n3, "running"]
    _Gnt(vc, "remove", "-f", name)


def test_bad_moves_leave_the_instance_alone(vc):
    name = "move-bad.vcluster.test"
    n1, n2 = vc.names[:2]
    _Add(vc, name, "plain", n1, size="32M")
    lvs = _Lvs(vc, 1)
    for args, text in ((["-n", n1], "already on the node"),
                       (["-n", "nosuch.vcluster.test"], "nosuch"),
                       (["-n", n2, "--compress", "bzip9"], "bzip9")):
        result = _Gnt(vc, "move", "-f", *args, name, check=False)
        assert result.returncode != 0
        assert text in result.stdout + result.stderr
    # A source volume that vanished: the copy fails, the new disks go, the
    # instance stays where it was with its configuration
    victim = "/".join(vc.instance_disks(name)[1]["logical_id"])
    vc.lvm(1, "lvremove", "-f", victim)
    before2 = _Lvs(vc, 2)
    result = _Gnt(vc, "move", "-f", "-n", n2, name, check=False)
    assert result.returncode != 0
    assert "does not meet the instance policy" in result.stdout + result.stderr
    result = _Gnt(vc, "move", "-f", "--ignore-ipolicy", "-n", n2, name, check=False)
    assert result.returncode != 0
    assert "stays on node" in result.stdout + result.stderr
    assert _Owner(vc, name) == [n1]
    assert _Lvs(vc, 2) == before2
    assert _Lvs(vc, 1) == lvs - {victim}
    _Gnt(vc, "remove", "-f", "--ignore-failures", name)


def test_drbd_instances_are_refused(vc):
    name = "move-drbd.vcluster.test"
    n1, n2, n3 = vc.names
    _Gnt(vc, "add", "-t", "drbd", "-o", "noop+default", "-n", f"{n1}:{n2}",
         "--no-name-check", "--no-ip-check", "--no-start", "--ignore-ipolicy", "--disk",
         "0:size=32M", name)
    result = _Gnt(vc, "move", "-f", "-n", n3, name, check=False)
    assert result.returncode != 0
    assert "not suitable for copying" in result.stdout + result.stderr
    _Gnt(vc, "remove", "-f", name)
