"""plain (LVM) and drbd instances on a 3-node virtual cluster with storage:
each node has its own loop-backed volume group ``xenvg`` (real lvm2
commands, metadata only: this kernel has no device-mapper) and DRBD runs
through the stand-in for the kernel's DRBD (tools/drbd-standin, real
drbdsetup command lines).

Needs root (loop devices); skipped with the reason otherwise.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from vcluster import VirtualCluster, virtual_cluster  # noqa: E402

from ganeti import vcluster  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200),
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


def _Add(vc: VirtualCluster, name: str, template: str, nodes: str, *extra: str,
         check: bool = True):
    return _Gnt(vc, "add", "-t", template, "-o", "noop+default", "-n", nodes,
                "--no-name-check", "--no-ip-check", "--no-start", *extra, name,
                check=check)


def _Lvs(vc: VirtualCluster, node: int | str) -> dict[str, float]:
    """The node's logical volumes ("vg/lv" -> MiB), read with lvm2 through
    the node's own LVM view."""
    out = vc.lvm(node, "lvs", "--noheadings", "--units=m", "--nosuffix",
                 "--separator=|", "-o", "vg_name,lv_name,lv_size")
    result = {}
    for line in out.splitlines():
        vg, lv, size = line.strip().split("|")
        result[f"{vg}/{lv}"] = float(size)
    return result


def _StandinMinors(vc: VirtualCluster, node: int | str) -> str:
    path = vc.path(node, "/proc/drbd")
    return path.read_text() if path.exists() else ""


def test_each_node_has_its_volume_group(vc):
    for idx in (1, 2, 3):
        assert _Lvs(vc, idx) == {}
    out = vc.run("gnt-cluster", "info").stdout
    assert "xenvg" in out
    templates = vc.config()["cluster"]["enabled_disk_templates"]
    assert {"plain", "drbd"} <= set(templates)


def test_plain_instance_life(vc):
    name = "plain1.vcluster.test"
    _Add(vc, name, "plain", vc.names[0], "--disk", "0:size=2G", "--disk", "1:size=1G")
    disks = vc.instance_disks(name)
    lvs = _Lvs(vc, 1)
    names = [f"{d['logical_id'][0]}/{d['logical_id'][1]}" for d in disks]
    assert [lvs[n] for n in names] == [2048.0, 1024.0]
    assert _Lvs(vc, 2) == {}
    out = _Gnt(vc, "activate-disks", name).stdout
    assert f"{vc.names[0]}:disk/0:/dev/{names[0]}" in out
    _Gnt(vc, "deactivate-disks", name)
    _Gnt(vc, "grow-disk", name, "0", "512M")
    assert _Lvs(vc, 1)[names[0]] == 2560.0
    assert vc.instance_disks(name)[0]["size"] == 2560
    _Gnt(vc, "remove", "-f", name)
    assert not set(names) & set(_Lvs(vc, 1))


def test_plain_bad_input_leaves_nothing(vc):
    before = _Lvs(vc, 1)
    out = _Refused(vc, "add", "-t", "plain", "-o", "noop+default", "-n", vc.names[0],
                   "--no-name-check", "--no-ip-check", "--no-start", "--disk",
                   "0:size=4T", "--ignore-ipolicy", "big.vcluster.test")
    assert "Not enough disk space" in out and "xenvg" in out
    out = _Refused(vc, "add", "-t", "plain", "-o", "noop+default", "-n", vc.names[0],
                   "--no-name-check", "--no-ip-check", "--no-start", "--disk",
                   "0:size=1G,vg=nosuchvg", "novg.vcluster.test")
    assert "nosuchvg" in out
    out = _Refused(vc, "add", "-t", "blockdev", "-o", "noop+default", "-n", vc.names[0],
                   "--no-name-check", "--no-ip-check", "--no-start", "--disk",
                   "0:adopt=/dev/loop0", "blk.vcluster.test")
    assert "not enabled" in out
    assert _Lvs(vc, 1) == before
    assert "big.vcluster.test" not in vc.run("gnt-instance", "list").stdout


def test_drbd_instance_life(vc):
    name = "drbd1.vcluster.test"
    n1, n2, n3 = vc.names
    _Add(vc, name, "drbd", f"{n1}:{n2}", "--disk", "0:size=1G")
    disks = vc.instance_disks(name)
    drbd = disks[0]
    assert drbd["dev_type"] == "drbd"
    data, meta = drbd["children"]
    for node in (1, 2):
        lvs = _Lvs(vc, node)
        assert lvs["/".join(data["logical_id"])] == 1024.0
        assert lvs["/".join(meta["logical_id"])] == 128.0
    assert _Lvs(vc, 3) == {}
    port = drbd["logical_id"][2]
    # both ends configured and connected in the stand-in's /proc/drbd
    assert "cs:" in _StandinMinors(vc, 1) and "cs:" in _StandinMinors(vc, 2)
    info = _Gnt(vc, "info", name).stdout
    assert "on primary" in info and "on secondary" in info
    assert "DEGRADED" not in info
    list_out = _Gnt(vc, "list", "--no-headers", "-o", "pnode,snodes", name).stdout.split()
    assert list_out == [n1, n2]

    # failover to the secondary (the default target) and back by migration
    _Gnt(vc, "startup", name)
    _Gnt(vc, "failover", "-f", name)
    assert _Gnt(vc, "list", "--no-headers", "-o", "pnode,status", name).stdout.split() \
        == [n2, "running"]
    _Gnt(vc, "migrate", "-f", name)
    assert _Gnt(vc, "list", "--no-headers", "-o", "pnode,status", name).stdout.split() \
        == [n1, "running"]
    # only to the secondary
    out = _Refused(vc, "failover", "-f", "-n", n3, name)
    assert "secondary" in out

    _Gnt(vc, "remove", "-f", name)
    for node in (1, 2):
        assert "/".join(data["logical_id"]) not in _Lvs(vc, node)
    config = vc.config()
    assert port in config["cluster"]["tcpudp_port_pool"]


def test_drbd_bad_input(vc):
    n1 = vc.names[0]
    out = _Refused(vc, "add", "-t", "drbd", "-o", "noop+default", "-n", f"{n1}:{n1}",
                   "--no-name-check", "--no-ip-check", "--no-start", "--disk",
                   "0:size=1G", "same.vcluster.test")
    assert "secondary node cannot be the primary" in out
    out = _Refused(vc, "add", "-t", "drbd", "-o", "noop+default", "-n", n1,
                   "--no-name-check", "--no-ip-check", "--no-start", "--disk",
                   "0:size=1G", "nosec.vcluster.test")
    assert "secondary node" in out
    before = [_Lvs(vc, i) for i in (1, 2)]
    out = _Refused(vc, "add", "-t", "drbd", "-o", "noop+default", "-n",
                   f"{n1}:{vc.names[1]}", "--no-name-check", "--no-ip-check",
                   "--no-start", "--disk", "0:size=4T", "--ignore-ipolicy",
                   "huge.vcluster.test")
    assert "Not enough disk space" in out
    assert [_Lvs(vc, i) for i in (1, 2)] == before
    config = vc.config()
    assert not any(d.get("dev_type") == "drbd" for d in config["disks"].values())


def _Standin(vc: VirtualCluster, node: int, *args: str) -> None:
    """Run the DRBD stand-in's drbdsetup as a node (a leftover device)."""
    tool = os.path.join(vc.tools.repo, vcluster.DRBD_STANDIN_DIR, "drbdsetup")
    subprocess.run([tool, *args], env=vc.env(node), check=True, capture_output=True)


def test_drbd_minor_clash_leaves_nothing(vc):
    n1, n2 = vc.names[:2]
    # minor 0 of node2 is taken by a device the configuration does not know
    _Standin(vc, 2, "new-resource", "legacy")
    _Standin(vc, 2, "new-minor", "legacy", "0", "0")
    before = [_Lvs(vc, i) for i in (1, 2)]
    try:
        out = _Refused(vc, "add", "-t", "drbd", "-o", "noop+default", "-n", f"{n1}:{n2}",
                       "--no-name-check", "--no-ip-check", "--no-start", "--disk",
                       "0:size=1G", "clash.vcluster.test")
        assert "drbd0: minor is already in use" in out
        # the other device's minor was left alone
        assert " 0: cs:StandAlone" in _StandinMinors(vc, 2)
        assert [_Lvs(vc, i) for i in (1, 2)] == before
        config = vc.config()
        assert not any(i["name"] == "clash.vcluster.test"
                       for i in config["instances"].values())
        assert not any(d.get("dev_type") == "drbd" for d in config["disks"].values())
    finally:
        _Standin(vc, 2, "down", "legacy")
    # the minor was not leaked: the same creation now gets it
    _Add(vc, "clash.vcluster.test", "drbd", f"{n1}:{n2}", "--disk", "0:size=1G")
    drbd = vc.instance_disks("clash.vcluster.test")[0]
    assert drbd["logical_id"][4] == 0
    _Gnt(vc, "remove", "-f", "clash.vcluster.test")


def test_plain_adoption_renames_and_keeps_the_volume(vc):
    vc.lvm(1, "lvcreate", "-an", "-Zn", "-L", "1G", "-n", "legacy", "xenvg")
    name = "adopted.vcluster.test"
    out = _Add(vc, name, "plain", vc.names[0], "--disk", "0:adopt=legacy").stdout
    assert "OS create scripts do not run" in out
    disk = vc.instance_disks(name)[0]
    assert disk["size"] == 1024 and disk["logical_id"][1] != "legacy"
    lvs = _Lvs(vc, 1)
    assert "xenvg/legacy" not in lvs and lvs["/".join(disk["logical_id"])] == 1024.0
    out = _Refused(vc, "add", "-t", "plain", "-o", "noop+default", "-n", vc.names[0],
                   "--no-name-check", "--no-ip-check", "--no-start", "--disk",
                   "0:adopt=nosuchlv", "adopt2.vcluster.test")
    assert "nosuchlv" in out
    _Gnt(vc, "remove", "-f", name)


def test_blockdev_adoption_never_destroys_the_device(vc, tmp_path):
    vc.run("gnt-cluster", "modify", "--enabled-disk-templates",
           "file,diskless,plain,drbd,ext,blockdev")
    image = tmp_path / "blk.img"
    with open(image, "wb") as handle:
        handle.truncate(1024 * 1024 * 1024)
        handle.seek(0)
        handle.write(b"precious data")
    loop = subprocess.run(["losetup", "-f", "--show", str(image)], capture_output=True,
                          text=True, check=True).stdout.strip()
    by_id = "/dev/disk/by-id"
    created = [d for d in ("/dev/disk", by_id) if not os.path.isdir(d)]
    link = f"{by_id}/gnt-test-{os.getpid()}"
    try:
        os.makedirs(by_id, exist_ok=True)
        os.symlink(loop, link)
        name = "blk.vcluster.test"
        _Add(vc, name, "blockdev", vc.names[0], "--disk", f"0:adopt={link}")
        disk = vc.instance_disks(name)[0]
        assert disk["logical_id"] == ["manual", link] and disk["size"] == 1024
        out = _Gnt(vc, "activate-disks", name).stdout
        assert f"disk/0:{link}" in out or loop in out
        _Gnt(vc, "remove", "-f", name)
        assert image.read_bytes()[:13] == b"precious data"
        assert os.path.exists(link)
    finally:
        if os.path.islink(link):
            os.unlink(link)
        for directory in reversed(created):
            os.rmdir(directory)
        subprocess.run(["losetup", "-d", loop], check=False)
