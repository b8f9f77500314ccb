"""gnt-instance modify -t on a 2-node virtual cluster with real LVM (loop
activation): the data of a stopped instance's disks survives plain ->
file -> plain -> ext -> drbd -> plain byte for byte, copied on the primary
node by blockdev_convert; the old disks go.

Needs root (loop devices); skipped with the reason otherwise.
"""

from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from vcluster import VirtualCluster, virtual_cluster  # noqa: E402

from ganeti import vcluster  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600),
              pytest.mark.skipif(not vcluster.StorageAvailable(),
                                 reason="virtual nodes get LVM only as root, with lvm2"
                                        " and loop devices")]

NAME = "convert.vcluster.test"


@pytest.fixture(scope="module")
def vc():
    with virtual_cluster(nodes=2, storage=True, loop_activation=True) as cluster:
        yield cluster


def _Gnt(vc: VirtualCluster, *args: str, check: bool = True):
    return vc.run("gnt-instance", *args, check=check)


def _Devices(vc: VirtualCluster) -> dict[str, tuple[str, str]]:
    """Activate the disks; "disk/N" -> (node, device path)."""
    out = _Gnt(vc, "activate-disks", NAME).stdout
    result = {}
    for line in out.splitlines():
        node, disk, path = line.strip().split(":", 2)
        result[disk] = (node, path)
    return result


def _Lvs(vc: VirtualCluster, node: int) -> set[str]:
    out = vc.lvm(node, "lvs", "--noheadings", "-o", "vg_name,lv_name", "--separator=/")
    return {line.strip() for line in out.splitlines() if line.strip()}


def _Check(vc: VirtualCluster, payloads: dict[str, bytes], template: str) -> None:
    disks = vc.instance_disks(NAME)
    assert [d["dev_type"] for d in disks] == [template] * 2
    assert [d["size"] for d in disks] == [32, 16]
    assert [d.get("name") for d in disks] == ["root", None]
    if template == "drbd":
        # /dev/drbdN is the stand-in's name only: the data shows once plain again
        return
    for disk, (_, path) in _Devices(vc).items():
        with open(path, "rb") as fd:
            assert fd.read(len(payloads[disk])) == payloads[disk], (template, disk)
    _Gnt(vc, "deactivate-disks", NAME)


def test_conversions_keep_the_data(vc):
    n1, n2 = vc.names[:2]
    _Gnt(vc, "add", "-t", "plain", "-o", "noop+default", "-n", n1, "--no-name-check",
         "--no-ip-check", "--no-start", "--ignore-ipolicy",
         "--disk", "0:size=32M,name=root", "--disk", "1:size=16M", NAME)
    plain_lvs = {"/".join(d["logical_id"]) for d in vc.instance_disks(NAME)}
    other_lvs = _Lvs(vc, 1) - plain_lvs
    other_lvs2 = _Lvs(vc, 2)
    payloads = {}
    for disk, (_, path) in _Devices(vc).items():
        # data at the start, zeros in the middle and data at the end
        payloads[disk] = os.urandom(4096) + bytes(1 << 20) + os.urandom(8192)
        with open(path, "r+b") as fd:
            fd.write(payloads[disk])
            fd.flush()
            os.fsync(fd.fileno())
    _Gnt(vc, "deactivate-disks", NAME)

    # refusals leave the instance alone
    for args, text in ((["-t", "diskless"], "diskless disk template is not supported"),
                       (["-t", "blockdev"], "blockdev disk template is not supported"),
                       (["-t", "file", "-e", "provider=loopfile"], "only valid when"
                        " converting to the ext disk template"),
                       (["-t", "ext", "-e", "provider=loopfile,size=1G"],
                        "Invalid ext parameter(s) size")):
        result = _Gnt(vc, "modify", *args, NAME, check=False)
        assert result.returncode != 0
        assert text in result.stdout + result.stderr

    _Gnt(vc, "modify", "--ignore-ipolicy", "-t", "file", NAME)
    file_paths = [d["logical_id"][1] for d in vc.instance_disks(NAME)]
    assert _Lvs(vc, 1) == other_lvs
    _Check(vc, payloads, "file")

    _Gnt(vc, "modify", "--ignore-ipolicy", "-t", "plain", NAME)
    _Check(vc, payloads, "plain")
    for path in file_paths:
        assert not vc.path(1, path).exists()

    _Gnt(vc, "modify", "--ignore-ipolicy", "-t", "ext", "-e", "provider=loopfile", NAME)
    assert all(d["logical_id"][0] == "loopfile" for d in vc.instance_disks(NAME))
    _Check(vc, payloads, "ext")

    _Gnt(vc, "modify", "--ignore-ipolicy", "-t", "drbd", "-n", n2, NAME)
    _Check(vc, payloads, "drbd")
    _Gnt(vc, "modify", "--ignore-ipolicy", "-t", "plain", NAME)
    _Check(vc, payloads, "plain")
    # the secondary's volumes and the metadata volumes went
    assert len(_Lvs(vc, 1) - other_lvs) == 2
    assert _Lvs(vc, 2) == other_lvs2
    _Gnt(vc, "remove", "-f", NAME)
    assert _Lvs(vc, 1) == other_lvs
