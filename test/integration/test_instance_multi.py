"""gnt-instance's whole command line on a two-node virtual cluster (fake
hypervisor, diskless instances with the noop OS): batch-create, add with a
node group and tags, the multi-instance selectors of shutdown, startup and
reboot, and the GNT_INSTANCE_LIST default arguments.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from vcluster import VirtualCluster, virtual_cluster  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


@pytest.fixture(scope="module")
def vc():
    with virtual_cluster(nodes=2) as cluster:
        yield cluster


def _Gnt(vc: VirtualCluster, *args: str, check: bool = True):
    return vc.run("gnt-instance", *args, check=check)


def _Rows(vc: VirtualCluster, fields: str) -> dict[str, list[str]]:
    out = _Gnt(vc, "list", "--no-headers", "--separator=|", "-o", fields).stdout
    return {line.split("|")[0]: line.split("|")[1:] for line in out.splitlines()}


def _Status(vc: VirtualCluster) -> dict[str, str]:
    return {name: row[0] for name, row in _Rows(vc, "name,status").items()}


def test_whole_command_line(vc, tmp_path):
    node1, node2 = vc.names
    spec = {"disk_template": "diskless", "os_type": "noop+default", "disks": [],
            "name_check": False, "ip_check": False, "pnode": node1}
    batch = tmp_path / "batch.json"
    batch.write_text(json.dumps([dict(spec, instance_name="m1.example.com"),
                                 dict(spec, instance_name="m2.example.com",
                                      tags=["web"])]))
    out = _Gnt(vc, "batch-create", str(batch)).stdout
    assert "Submitted jobs" in out
    assert out.rstrip().endswith("All instances created successfully.")
    assert _Status(vc) == {"m1.example.com": "running", "m2.example.com": "running"}

    # Bad input is refused naming the problem, creating nothing
    batch.write_text(json.dumps([dict(spec, instance_name="m9", colour="red")]))
    result = _Gnt(vc, "batch-create", str(batch), check=False)
    assert result.returncode == 1 and "colour" in result.stderr
    assert "m9" not in _Status(vc)

    # add into a node group, with tags, not waiting for a sync
    vc.run("gnt-group", "add", "grp2")
    vc.run("gnt-group", "assign-nodes", "--force", "grp2", node2)
    # (file: hail keeps room to restart shared-storage and diskless instances
    # elsewhere in their group, and grp2 has one node)
    _Gnt(vc, "add", "-t", "file", "-s", "1G", "-o", "noop+default", "--no-name-check",
         "--no-ip-check", "-g", "grp2", "-I", "hail", "--tags", "a,b",
         "--no-wait-for-sync", "--os-parameters-secret", "message=psst",
         "m3.example.com")
    assert _Rows(vc, "name,pnode,tags")["m3.example.com"] == [node2, "a,b"]
    # The secret reached the OS create script (its marker) but not the config
    image = vc.path(node2, "/srv/ganeti/file-storage/m3.example.com/disk0")
    assert b"message=psst" in image.read_bytes()[:512]
    assert "psst" not in json.dumps(vc.config())

    # Every instance of node1 stops; m3 (on node2) keeps running
    out = _Gnt(vc, "shutdown", "--timeout", "5", "--node", node1,
               "--force-multiple").stdout
    assert "Waiting for job" in out and "for m1.example.com" in out
    assert _Status(vc) == {"m1.example.com": "ADMIN_down",
                           "m2.example.com": "ADMIN_down",
                           "m3.example.com": "running"}
    # An unknown node is refused by the master, nothing is touched
    result = _Gnt(vc, "startup", "--primary", "nosuchnode", "--force-multiple",
                  check=False)
    assert result.returncode == 1 and "nosuchnode" in result.stderr
    _Gnt(vc, "startup", "--all", "--force-multiple")
    assert set(_Status(vc).values()) == {"running"}

    # By instance tag: only m2 reboots
    out = _Gnt(vc, "reboot", "--type", "full", "--tags", "web",
               "--force-multiple").stdout
    assert "for m2.example.com" in out and "m1.example.com" not in out

    # --submit prints the jobs, one line per instance
    out = _Gnt(vc, "shutdown", "--timeout", "5", "--instance-tags", "a",
               "--force-multiple", "--submit").stdout
    (line,) = out.splitlines()
    job_id, name = line.split(": ")
    assert name == "m3.example.com"
    vc.run("gnt-job", "wait", job_id)
    assert _Status(vc)["m3.example.com"] == "ADMIN_down"

    # Default arguments of gnt-instance list from the environment
    env = dict(vc.env(), GNT_INSTANCE_LIST="--no-headers --separator=| -o name,tags")
    result = subprocess.run([vc.python, vc.tools.Script("gnt-instance"), "list"],
                            env=env, capture_output=True, text=True, timeout=120,
                            check=True, stdin=subprocess.DEVNULL)
    assert result.stdout.splitlines() == ["m1.example.com|", "m2.example.com|web",
                                          "m3.example.com|a,b"]
