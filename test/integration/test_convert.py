"""Disk template conversion (gnt-instance modify -t drbd -n SNODE / -t plain)
and recreate-disks of drbd instances on a 3-node virtual cluster with
storage: each node has its own loop-backed volume group ``xenvg`` (real
lvm2 commands, metadata only) and DRBD runs through the stand-in
(tools/drbd-standin). Failures in the middle of a conversion, and their
rollback, are tested in test/py/cmdlib/test_instance_convert.py with a
fake RPC runner failing at a chosen step.

Needs root (loop devices); skipped with the reason otherwise.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from vcluster import VirtualCluster, virtual_cluster  # noqa: E402

from ganeti import vcluster  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900),
              pytest.mark.skipif(not vcluster.StorageAvailable(),
                                 reason="virtual nodes get LVM only as root, with lvm2"
                                        " and loop devices")]


@pytest.fixture(scope="module")
def vc():
    with virtual_cluster(nodes=3, storage=True) as cluster:
        yield cluster


def _Gnt(vc: VirtualCluster, *args: str, check: bool = True):
    return vc.run("gnt-instance", *args, check=check)


def _Refused(vc: VirtualCluster, *args: str) -> str:
    result = _Gnt(vc, *args, check=False)
    assert result.returncode != 0, result.stdout
    return result.stdout + result.stderr


def _Add(vc: VirtualCluster, name: str, template: str, nodes: str, *extra: str):
    return _Gnt(vc, "add", "-t", template, "-o", "noop+default", "-n", nodes,
                "--no-name-check", "--no-ip-check", "--no-start", *extra, name)


def _Lvs(vc: VirtualCluster, node: int) -> dict[str, float]:
    """The node's logical volumes ("vg/lv" -> MiB)."""
    out = vc.lvm(node, "lvs", "--noheadings", "--units=m", "--nosuffix",
               "--separator=|", "-o", "vg_name,lv_name,lv_size")
    result = {}
    for line in out.splitlines():
        vg, lv, size = line.strip().split("|")
        result[f"{vg}/{lv}"] = float(size)
    return result


def _VgFree(vc: VirtualCluster, node: int) -> int:
    return int(float(vc.lvm(node, "vgs", "--noheadings", "--units=m", "--nosuffix",
                          "-o", "vg_free", "xenvg").strip()))


def _NodeUuid(vc: VirtualCluster, idx: int) -> str:
    name = vc.names[idx - 1]
    return next(uuid for uuid, node in vc.config()["nodes"].items()
                if node["name"] == name)


def _Minors(vc: VirtualCluster, node: int) -> dict[int, str]:
    """The stand-in's /proc/drbd of a node: minor -> its status line."""
    path = vc.path(node, "/proc/drbd")
    text = path.read_text() if path.exists() else ""
    return {int(m.group(1)): m.group(2)
            for m in re.finditer(r"^\s*(\d+): (cs:.*)$", text, re.MULTILINE)}


def _Lv(disk: dict) -> str:
    return "/".join(disk["logical_id"])


def _WaitInSync(vc: VirtualCluster, name: str) -> str:
    """gnt-instance info once no device is resyncing (the stand-in syncs at
    256 MiB/s by default)."""
    for _ in range(30):
        info = _Gnt(vc, "info", name).stdout
        if "% done" not in info:
            return info
        subprocess.run(["sleep", "1"], check=True)
    return info


def test_plain_to_drbd_and_back(vc):
    name = "conv1.vcluster.test"
    n1, n2, _ = vc.names
    _Add(vc, name, "plain", n1, "--disk", "0:size=1G", "--disk", "1:size=1G")
    old = vc.instance_disks(name)
    old_lvs = [_Lv(d) for d in old]
    assert set(old_lvs) <= set(_Lvs(vc, 1))
    before2 = _Lvs(vc, 2)

    out = _Gnt(vc, "modify", "-t", "drbd", "-n", n2, name).stdout
    assert "disk_template -> drbd" in out
    disks = vc.instance_disks(name)
    assert [d["dev_type"] for d in disks] == ["drbd", "drbd"]
    lvs1, lvs2 = _Lvs(vc, 1), _Lvs(vc, 2)
    # the old volumes were renamed to the data volumes
    assert not set(old_lvs) & set(lvs1)
    for disk in disks:
        data, meta = disk["children"]
        assert lvs1[_Lv(data)] == 1024.0 and lvs2[_Lv(data)] == 1024.0
        assert lvs1[_Lv(meta)] == 128.0 and lvs2[_Lv(meta)] == 128.0
        assert disk["logical_id"][:2] == [_NodeUuid(vc, 1), _NodeUuid(vc, 2)]
    # both ends configured and connected in the stand-in
    minors1, minors2 = _Minors(vc, 1), _Minors(vc, 2)
    for disk in disks:
        m1, m2 = disk["logical_id"][3], disk["logical_id"][4]
        assert "cs:Connected" in minors1[m1] and "ro:Primary/Secondary" in minors1[m1]
        assert "cs:Connected" in minors2[m2] and "ro:Secondary/Primary" in minors2[m2]
    info = _WaitInSync(vc, name)
    assert "on primary" in info and "on secondary" in info
    assert "DEGRADED" not in info
    assert _Gnt(vc, "list", "--no-headers", "-o", "pnode,snodes",
                name).stdout.split() == [n1, n2]
    # usable: it starts and stops
    _Gnt(vc, "startup", name)
    _Gnt(vc, "shutdown", name)

    ports = [d["logical_id"][2] for d in disks]
    out = _Gnt(vc, "modify", "-t", "plain", name).stdout
    assert "disk_template -> plain" in out
    plain = vc.instance_disks(name)
    assert [d["dev_type"] for d in plain] == ["plain", "plain"]
    assert [_Lv(d) for d in plain] == [_Lv(d["children"][0]) for d in disks]
    lvs1 = _Lvs(vc, 1)
    assert {_Lv(d) for d in plain} <= set(lvs1)
    assert not {_Lv(d["children"][1]) for d in disks} & set(lvs1)
    assert _Lvs(vc, 2) == before2
    for disk in disks:
        assert disk["logical_id"][4] not in _Minors(vc, 2)
    pool = vc.config()["cluster"]["tcpudp_port_pool"]
    assert set(ports) <= set(pool)
    assert _Gnt(vc, "list", "--no-headers", "-o", "pnode,snodes",
                name).stdout.split() == [n1]
    _Gnt(vc, "startup", name)
    _Gnt(vc, "remove", "-f", name)
    assert not {_Lv(d) for d in plain} & set(_Lvs(vc, 1))


def test_conversion_refusals_change_nothing(vc):
    name = "conv2.vcluster.test"
    n1, n2, _ = vc.names
    # a disk that fits the primary, but not with its metadata on the secondary
    size = (_VgFree(vc, 1) - 64) // 4 * 4
    assert size + 128 > _VgFree(vc, 2)
    _Add(vc, name, "plain", n1, "--disk", f"0:size={size}M", "--ignore-ipolicy")
    config = vc.config()
    before = ([_Lvs(vc, i) for i in (1, 2, 3)], config["disks"],
              config["cluster"]["highest_used_port"],
              config["cluster"]["tcpudp_port_pool"])

    out = _Refused(vc, "modify", "-t", "drbd", "-n", n2, "--ignore-ipolicy", name)
    assert f"Not enough disk space on target node {n2} vg xenvg" in out
    out = _Refused(vc, "modify", "-t", "drbd", "-n", n1, name)
    assert "same as the primary node" in out
    out = _Refused(vc, "modify", "-t", "drbd", name)
    assert "requires specifying a secondary node" in out
    out = _Refused(vc, "modify", "-t", "blockdev", name)
    assert "Conversion to the blockdev disk template is not supported" in out
    _Gnt(vc, "startup", name)
    out = _Refused(vc, "modify", "-t", "drbd", "-n", n2, name)
    assert "cannot change disk template" in out
    _Gnt(vc, "shutdown", name)
    config = vc.config()
    after = ([_Lvs(vc, i) for i in (1, 2, 3)], config["disks"],
             config["cluster"]["highest_used_port"],
             config["cluster"]["tcpudp_port_pool"])
    assert after == before
    _Gnt(vc, "remove", "-f", name)


def test_recreate_drbd_disks(vc):
    name = "rec1.vcluster.test"
    n1, n2, n3 = vc.names
    _Add(vc, name, "drbd", f"{n1}:{n2}", "--disk", "0:size=1G")
    disk = vc.instance_disks(name)[0]
    data, meta = disk["children"]
    # the volumes are lost on both nodes
    _Gnt(vc, "deactivate-disks", name)
    for node in (1, 2):
        vc.lvm(node, "lvremove", "-f", _Lv(data), _Lv(meta))
    out = _Refused(vc, "recreate-disks", "-n", f"{n3}:{n3}", name)
    assert "must differ" in out

    _Gnt(vc, "recreate-disks", "-n", f"{n3}:{n1}", name)
    new = vc.instance_disks(name)[0]
    assert new["logical_id"][:2] == [_NodeUuid(vc, 3), _NodeUuid(vc, 1)]
    assert new["logical_id"][2] == disk["logical_id"][2]
    for node in (3, 1):
        lvs = _Lvs(vc, node)
        assert lvs[_Lv(data)] == 1024.0 and lvs[_Lv(meta)] == 128.0
    assert not {_Lv(data), _Lv(meta)} & set(_Lvs(vc, 2))
    assert _Gnt(vc, "list", "--no-headers", "-o", "pnode,snodes",
                name).stdout.split() == [n3, n1]
    # the new primary is the source of the initial sync
    assert "ro:Primary/Secondary" in _Minors(vc, 3)[new["logical_id"][3]]
    info = _WaitInSync(vc, name)
    assert "on primary" in info and "on secondary" in info
    assert "DEGRADED" not in info
    assert "cs:Connected" in _Minors(vc, 3)[new["logical_id"][3]]
    assert "cs:Connected" in _Minors(vc, 1)[new["logical_id"][4]]

    # everything there: nothing to recreate
    out = _Refused(vc, "recreate-disks", name)
    assert "already exists" in out
    # the secondary loses its volumes: recreated there, on the same nodes
    _Gnt(vc, "deactivate-disks", name)
    vc.lvm(1, "lvremove", "-f", _Lv(data), _Lv(meta))
    lvs3 = _Lvs(vc, 3)
    _Gnt(vc, "recreate-disks", name)
    assert _Lvs(vc, 3) == lvs3
    assert {_Lv(data), _Lv(meta)} <= set(_Lvs(vc, 1))
    assert vc.instance_disks(name)[0]["logical_id"] == new["logical_id"]
    _Gnt(vc, "startup", name)
    _Gnt(vc, "remove", "-f", name)
    for node in (1, 3):
        assert not {_Lv(data), _Lv(meta)} & set(_Lvs(vc, node))
