"""replace-disks and node evacuation on a 3-node virtual cluster with
storage (each node its own LVM volume group xenvg, metadata-only LVs; DRBD
through the stand-in for the kernel's DRBD, tools/drbd-standin).

One drbd instance (r1) goes through ``replace-disks -s``, ``-p`` (through
RAPI), ``-n node3`` and ``--auto`` after its secondary's disk failed; then
two more drbd instances are moved off node2 with ``gnt-node evacuate -s
--new-secondary node3`` and every primary off node1 with ``gnt-node
evacuate -p``. Replacing on a node keeps the volume names (the new volumes
take them, as in Ganeti): the volumes' LVM UUIDs tell that they are new.

Needs root (loop devices); skipped with the reason otherwise.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from vcluster import VirtualCluster, virtual_cluster  # noqa: E402

from ganeti import constants, vcluster  # noqa: E402
from ganeti.rapi import client as rapi_client  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200),
              pytest.mark.skipif(not vcluster.StorageAvailable(),
                                 reason="virtual nodes get LVM only as root, with lvm2"
                                        " and loop devices")]

R1 = "r1.vcluster.test"
EVAC = ["e1.vcluster.test", "e2.vcluster.test"]


@pytest.fixture(scope="module")
def vc():
    with virtual_cluster(nodes=3, storage=True) as cluster:
        yield cluster


def _Gnt(vc: VirtualCluster, *args: str, check: bool = True):
    return vc.run("gnt-instance", *args, check=check)


def _Add(vc: VirtualCluster, name: str, nodes: str, *extra: str) -> None:
    _Gnt(vc, "add", "-t", "drbd", "-o", "noop+default", "-n", nodes, "--no-name-check",
         "--no-ip-check", "--disk", "0:size=1G", *extra, name)


def _Lvs(vc: VirtualCluster, node: int) -> dict[str, str]:
    """The node's logical volumes: "vg/lv" -> LVM's UUID of the volume."""
    out = vc.lvm(node, "lvs", "--noheadings", "--separator=|", "-o",
                 "vg_name,lv_name,lv_uuid")
    result = {}
    for line in out.splitlines():
        vg, lv, uuid = line.strip().split("|")
        result[f"{vg}/{lv}"] = uuid
    return result


def _Disk(vc: VirtualCluster, name: str) -> dict:
    return vc.instance_disks(name)[0]


def _Volumes(disk: dict) -> list[str]:
    return ["/".join(child["logical_id"]) for child in disk["children"]]


def _NodeUuid(vc: VirtualCluster, index: int) -> str:
    return next(uuid for uuid, node in vc.config()["nodes"].items()
                if node["name"] == vc.names[index - 1])


def _Minor(vc: VirtualCluster, disk: dict, index: int) -> int:
    node_a, node_b, _, minor_a, minor_b, _ = disk["logical_id"]
    return minor_a if node_a == _NodeUuid(vc, index) else minor_b


def _ProcDrbd(vc: VirtualCluster, node: int) -> str:
    path = vc.path(node, "/proc/drbd")
    return path.read_text() if path.exists() else ""


def _MinorLine(vc: VirtualCluster, node: int, minor: int) -> str:
    for line in _ProcDrbd(vc, node).splitlines():
        if line.strip().startswith(f"{minor}: "):
            return line
    return ""


def _Info(vc: VirtualCluster, name: str) -> str:
    return _Gnt(vc, "info", name).stdout


def _Rapi(vc: VirtualCluster) -> rapi_client.GanetiRapiClient:
    master = vc.node(vc.master())
    cafile = str(vc.path(master.name, constants.DEFAULT_DATA_DIR + "/"
                         + constants.RAPI_PEM_NAME))
    return rapi_client.GanetiRapiClient(
        master.ip, vcluster.RAPI_PORT, username=vcluster.RAPI_USER,
        password=vcluster.RapiPassword(vc.directory),
        curl_config_fn=rapi_client.GenericCurlConfig(cafile=cafile))


def _RapiOk(client: rapi_client.GanetiRapiClient, job_id) -> dict:
    client.WaitForJobCompletion(job_id, retries=100)
    status = client.GetJobStatus(job_id)
    assert status["status"] == constants.JOB_STATUS_SUCCESS, status
    return status


def test_replace_on_secondary_then_primary(vc):
    n1, n2, _ = vc.names
    _Add(vc, R1, f"{n1}:{n2}")
    disk = _Disk(vc, R1)
    names = _Volumes(disk)
    before = {node: _Lvs(vc, node) for node in (1, 2)}
    out = _Gnt(vc, "replace-disks", "-s", R1).stdout
    assert "STEP 6/6 Removing old storage" in out
    after = {node: _Lvs(vc, node) for node in (1, 2)}
    # same names on node2, new volumes (LVM UUIDs), nothing left aside
    assert sorted(after[2]) == sorted(before[2])
    assert all(after[2][n] != before[2][n] for n in names)
    assert after[1] == before[1]
    assert not [lv for node in (1, 2) for lv in after[node] if "_replaced" in lv]
    assert _Disk(vc, R1)["logical_id"] == disk["logical_id"]
    info = _Info(vc, R1)
    assert "DEGRADED" not in info and "status ok" in info
    # on the primary, through RAPI
    client = _Rapi(vc)
    _RapiOk(client, client.ReplaceInstanceDisks(R1, disks=[0], mode="replace_on_primary"))
    final = {node: _Lvs(vc, node) for node in (1, 2)}
    assert all(final[1][n] != before[1][n] for n in names)
    assert final[2] == after[2]
    assert "DEGRADED" not in _Info(vc, R1)


def test_bad_input(vc):
    n1, n2, n3 = vc.names
    for args, text in ((["-n", n1], "is the primary node"),
                       (["-n", n2], "is already the secondary node"),
                       (["-s", "--disks", "3"], "Invalid disk index '3'"),
                       (["-I", "nosuch-ialloc"], "not found in the iallocator search"
                        " path")):
        result = _Gnt(vc, "replace-disks", *args, R1, check=False)
        assert result.returncode != 0 and text in result.stdout + result.stderr, args
    result = _Gnt(vc, "replace-disks", "-s", "noinst.vcluster.test", check=False)
    assert result.returncode != 0
    _Gnt(vc, "add", "-t", "plain", "-o", "noop+default", "-n", n1, "--no-name-check",
         "--no-ip-check", "--no-start", "--disk", "0:size=1G", "plain1.vcluster.test")
    result = _Gnt(vc, "replace-disks", "-s", "plain1.vcluster.test", check=False)
    assert result.returncode != 0
    assert "disk template 'plain'" in result.stdout + result.stderr
    _Gnt(vc, "remove", "-f", "plain1.vcluster.test")
    assert not [lv for lv in _Lvs(vc, 3)]


def test_change_secondary(vc):
    n1, n2, n3 = vc.names
    _Gnt(vc, "startup", R1)
    disk = _Disk(vc, R1)
    names = _Volumes(disk)
    old_minor = _Minor(vc, disk, 2)
    assert set(names) <= set(_Lvs(vc, 2))
    _Gnt(vc, "replace-disks", "-n", n3, R1)
    new = _Disk(vc, R1)
    assert new["logical_id"][:2] == [_NodeUuid(vc, 1), _NodeUuid(vc, 3)]
    assert new["logical_id"][2] == disk["logical_id"][2]    # the port stays
    # the volumes moved from node2 to node3
    assert set(names) <= set(_Lvs(vc, 3))
    assert _Lvs(vc, 2) == {}
    # the stand-in shows the new pair connected, node2's device gone
    assert "cs:Connected" in _MinorLine(vc, 1, _Minor(vc, new, 1))
    assert "cs:Connected" in _MinorLine(vc, 3, _Minor(vc, new, 3))
    assert "UpToDate/UpToDate" in _MinorLine(vc, 3, _Minor(vc, new, 3))
    assert _MinorLine(vc, 2, old_minor) == ""
    listed = _Gnt(vc, "list", "--no-headers", "-o", "pnode,snodes,status", R1).stdout
    assert listed.split() == [n1, n3, "running"]
    assert "DEGRADED" not in _Info(vc, R1)


def test_auto_repairs_a_failed_disk(vc):
    disk = _Disk(vc, R1)
    minor = _Minor(vc, disk, 3)
    before = _Lvs(vc, 3)
    tool = os.path.join(vc.tools.repo, vcluster.DRBD_STANDIN_DIR, "drbdsetup-standin-ctl")
    subprocess.run([tool, "fail-disk", str(minor)], env=vc.env(3), check=True,
                   capture_output=True)
    assert "*DEGRADED*" in _Info(vc, R1)
    out = _Gnt(vc, "replace-disks", "--auto", R1).stdout
    assert "Replacing disk(s) 0" in out
    assert "*DEGRADED*" not in _Info(vc, R1)
    after = _Lvs(vc, 3)
    assert sorted(after) == sorted(before)
    assert all(after[n] != before[n] for n in _Volumes(disk))
    out = _Gnt(vc, "replace-disks", "--auto", R1).stdout
    assert "No disks need replacement" in out


def test_evacuate_secondaries(vc):
    n1, n2, n3 = vc.names
    for name in EVAC:
        _Add(vc, name, f"{n1}:{n2}", "--no-start")
    assert _Lvs(vc, 2)
    out = vc.run("gnt-node", "evacuate", "-f", "-s", "--new-secondary", n3, n2).stdout
    assert "All instances evacuated successfully." in out
    assert _Lvs(vc, 2) == {}
    for name in EVAC:
        assert set(_Volumes(_Disk(vc, name))) <= set(_Lvs(vc, 3))
        listed = _Gnt(vc, "list", "--no-headers", "-o", "pnode,snodes", name).stdout
        assert listed.split() == [n1, n3]
    # nothing left to do, for the command and for RAPI (whose job submits none)
    out = vc.run("gnt-node", "evacuate", "-f", "-s", "-n", n3, n2)
    assert "No instances to evacuate" in out.stderr
    client = _Rapi(vc)
    status = _RapiOk(client, client.EvacuateNode(n2, remote_node=n3,
                                                 mode="secondary-only"))
    assert status["opresult"] == [{"jobs": []}]


def test_evacuate_primaries(vc):
    n1, n2, n3 = vc.names
    out = vc.run("gnt-node", "evacuate", "-f", "-p", n1).stdout
    assert "All instances evacuated successfully." in out
    listed = _Gnt(vc, "list", "--no-headers", "-o", "name,pnode,snodes,status").stdout
    rows = {line.split()[0]: line.split()[1:] for line in listed.splitlines()}
    assert rows[R1] == [n3, n1, "running"]            # migrated
    for name in EVAC:
        assert rows[name] == [n3, n1, "ADMIN_down"]   # failed over
    assert "DEGRADED" not in _Info(vc, R1)
