"""grow-disk, activate/deactivate-disks, recreate-disks, failover and
migrate on a real two-node virtual cluster.

Each node's fake hypervisor gets a fixed memory size (its settings file),
so that ``gnt-node list`` memory figures can be checked exactly after
start and after every move. ``sharedfile`` images live in the cluster's one
shared directory (each node root links to it), so both nodes see them.
"""

from __future__ import annotations

import json
import os
import shutil
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from vcluster import VirtualCluster, virtual_cluster  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

MEMORY = 4096
MIB = 1024 * 1024


def _SetMemory(vc: VirtualCluster, node: str, total: int) -> None:
    path = vc.path(node, "/etc/ganeti/fake-hypervisor.json")
    path.write_text(json.dumps({"memory_total": total}))


@pytest.fixture(scope="module")
def vc():
    with virtual_cluster(nodes=2) as cluster:
        cluster.run("gnt-cluster", "modify", "--enabled-disk-templates",
                    "file,sharedfile,diskless")
        for node in cluster.names:
            _SetMemory(cluster, node, MEMORY)
        yield cluster


def _Gnt(vc: VirtualCluster, *args: str, check: bool = True):
    return vc.run("gnt-instance", *args, check=check)


def _Refused(vc: VirtualCluster, *args: str) -> str:
    result = _Gnt(vc, *args, check=False)
    assert result.returncode != 0, result.stdout
    return result.stdout + result.stderr


def _Add(vc: VirtualCluster, name: str, node: str, *extra: str) -> None:
    _Gnt(vc, "add", "-o", "noop+default", "-n", node, "--no-name-check", "--no-ip-check",
         *extra, name)


def _Fields(vc: VirtualCluster, name: str, fields: str) -> list[str]:
    out = _Gnt(vc, "list", "--no-headers", "--separator=|", "-o", fields, name).stdout
    return out.strip().split("|")


def _Instance(vc: VirtualCluster, name: str) -> dict:
    return [i for i in vc.config()["instances"].values() if i["name"] == name][0]


def _MemFree(vc: VirtualCluster) -> dict[str, int]:
    out = vc.run("gnt-node", "list", "--no-headers", "--separator=|", "--units=m",
                 "-o", "name,mfree,mtotal").stdout
    result = {}
    for line in out.splitlines():
        name, mfree, mtotal = line.split("|")
        assert int(mtotal) == MEMORY
        result[name] = int(mfree)
    return result


def _FakeState(vc: VirtualCluster, node: str, name: str):
    return vc.path(node, f"/var/run/ganeti/fake-hypervisor/{name}")


def _AssertRunsOn(vc: VirtualCluster, name: str, node: str, memory: int) -> None:
    """Config, gnt-instance list, the hypervisors and the node memory agree."""
    assert _Fields(vc, name, "pnode,status,oper_state") == [node, "running", "Y"]
    other = [n for n in vc.names if n != node][0]
    assert _FakeState(vc, node, name).exists()
    assert not _FakeState(vc, other, name).exists()
    state = json.loads(_FakeState(vc, node, name).read_text())
    assert state["status"] == "running" and state["memory"] == memory
    # the disks are linked where the instance runs, and only there
    for idx in range(len(state["disks"])):
        assert vc.path(node, f"/var/run/ganeti/instance-disks/{name}:{idx}").is_symlink()
        assert not vc.path(other, f"/var/run/ganeti/instance-disks/{name}:{idx}"
                           ).is_symlink()
    free = _MemFree(vc)
    assert free[node] == MEMORY - memory
    assert free[other] == MEMORY


def test_file_disks(vc):
    name = "disks.example.com"
    node = vc.names[0]
    _Add(vc, name, node, "-t", "file", "--disk", "0:size=1G")
    image = vc.path(node, f"/srv/ganeti/file-storage/{name}/disk0")
    try:
        assert image.stat().st_size == 1024 * MIB
        _Gnt(vc, "grow-disk", name, "0", "512M")
        assert image.stat().st_size == 1536 * MIB
        assert _Fields(vc, name, "disk.size/0") == ["1536"]
        _Gnt(vc, "grow-disk", "--absolute", name, "0", "2G")
        assert image.stat().st_size == 2048 * MIB
        out = _Refused(vc, "grow-disk", "--absolute", name, "0", "1G")
        assert "Requested size (1.0G) is smaller than the current size" in out
        out = _Refused(vc, "grow-disk", name, "0", "10X")
        assert "10X" in out
        assert image.stat().st_size == 2048 * MIB

        # activate-disks lists the devices; deactivating needs the instance down
        out = _Gnt(vc, "activate-disks", name).stdout.strip().splitlines()
        assert len(out) == 1
        host, disk, path = out[0].split(":", 2)
        assert (host, disk) == (node, "disk/0") and path.endswith(f"/{name}/disk0")
        assert _Instance(vc, name)["disks_active"] is True
        out = _Refused(vc, "deactivate-disks", name)
        assert "cannot shutdown disks" in out
        _Gnt(vc, "shutdown", "--timeout", "5", name)
        _Gnt(vc, "activate-disks", name)
        assert _Instance(vc, name)["disks_active"] is True
        _Gnt(vc, "deactivate-disks", name)
        assert _Instance(vc, name)["disks_active"] is False

        # a lost image is recreated empty, with its recorded size; an
        # existing one is not overwritten
        image.write_bytes(b"")
        image.unlink()
        _Gnt(vc, "recreate-disks", name)
        assert image.stat().st_size == 2048 * MIB
        out = _Refused(vc, "recreate-disks", name)
        assert "already exists" in out

        # node-local images cannot move
        out = _Refused(vc, "failover", "-f", "-n", vc.names[1], name)
        assert "Instance's disk layout 'file' does not allow failovers" in out
        out = _Refused(vc, "migrate", "-f", "-n", vc.names[1], name)
        assert "Instance's disk layout 'file' does not allow migrations" in out
        assert _Fields(vc, name, "pnode") == [node]
    finally:
        _Gnt(vc, "remove", "-f", name)


@pytest.mark.parametrize("template,extra", [
    ("diskless", []),
    ("sharedfile", ["--disk", "0:size=1G"]),
])
def test_move_running_instance(vc, template, extra):
    name = f"move-{template}.example.com"
    first, second = vc.names
    _Add(vc, name, first, "-t", template, "-B", "maxmem=512,minmem=512", *extra)
    try:
        _AssertRunsOn(vc, name, first, 512)
        if template == "sharedfile":
            # both nodes see the one image
            for node in vc.names:
                assert vc.path(node, f"/srv/ganeti/shared-file-storage/{name}/disk0"
                               ).stat().st_size == 1024 * MIB
        if template == "sharedfile":
            assert len(json.loads(_FakeState(vc, first, name).read_text())["disks"]) == 1
        out = _Gnt(vc, "migrate", "-f", "-n", second, name).stdout
        assert "migrating instance to" in out
        _AssertRunsOn(vc, name, second, 512)
        _Gnt(vc, "migrate", "-f", "--non-live", "-n", first, name)
        _AssertRunsOn(vc, name, first, 512)
        _Gnt(vc, "migrate", "-f", "--migration-mode", "live", "-n", second, name)
        _AssertRunsOn(vc, name, second, 512)
        _Gnt(vc, "failover", "-f", "-n", first, name)
        _AssertRunsOn(vc, name, first, 512)
        _Gnt(vc, "failover", "-f", "-n", second, name)
        _AssertRunsOn(vc, name, second, 512)
        # a stopped instance fails over without starting
        _Gnt(vc, "shutdown", "--timeout", "5", name)
        _Gnt(vc, "failover", "-f", "-n", first, name)
        assert _Fields(vc, name, "pnode,status") == [first, "ADMIN_down"]
        out = _Refused(vc, "migrate", "-f", "-n", second, name)
        assert "Can't migrate, please use failover" in out
        _Gnt(vc, "startup", name)
        _AssertRunsOn(vc, name, first, 512)
        if template == "sharedfile":
            _Gnt(vc, "grow-disk", name, "0", "256M")
            assert vc.path(second, f"/srv/ganeti/shared-file-storage/{name}/disk0"
                           ).stat().st_size == 1280 * MIB
    finally:
        _Gnt(vc, "remove", "-f", name)
    assert _MemFree(vc) == {node: MEMORY for node in vc.names}


def test_node_migrate(vc):
    """gnt-node migrate: one migration job per primary instance; a node
    without primary instances says so; a refused migration fails the command."""
    first, second = vc.names
    names = ["nm1.example.com", "nm2.example.com"]
    for name in names:
        _Add(vc, name, first, "-t", "diskless", "-B", "maxmem=256,minmem=256")
    try:
        out = vc.run("gnt-node", "migrate", "-f", "-n", second, first).stdout
        assert "All 2 instances migrated successfully." in out
        for name in names:
            assert _Fields(vc, name, "pnode,status") == [second, "running"]
            assert _FakeState(vc, second, name).exists()
            assert not _FakeState(vc, first, name).exists()
        assert _MemFree(vc) == {first: MEMORY, second: MEMORY - 512}
        out = vc.run("gnt-node", "migrate", "-f", "-n", second, first).stdout
        assert f"No primary instances on node {first}, exiting." in out
        _Gnt(vc, "shutdown", "--timeout", "5", names[0])
        result = vc.run("gnt-node", "migrate", "-f", "--non-live", "-n", first, second,
                        check=False)
        assert result.returncode != 0
        assert "There were 1 errors during the node migration." in result.stderr
        assert "Can't migrate, please use failover" in result.stderr
        assert _Fields(vc, names[0], "pnode,status") == [second, "ADMIN_down"]
        assert _Fields(vc, names[1], "pnode,status") == [first, "running"]
        assert _MemFree(vc) == {first: MEMORY - 256, second: MEMORY}
        result = vc.run("gnt-node", "migrate", "-f", "-I", "hail", "-n", first, second,
                        check=False)
        assert result.returncode != 0 and "either an iallocator" in result.stderr
    finally:
        for name in names:
            _Gnt(vc, "remove", "-f", name)
    assert _MemFree(vc) == {node: MEMORY for node in vc.names}


def test_move_refusals(vc):
    name = "stay.example.com"
    first, second = vc.names
    _Add(vc, name, first, "-t", "diskless", "-B", "maxmem=1024,minmem=1024")
    try:
        out = _Refused(vc, "migrate", "-f", name)
        assert "target node must be given" in out
        vc.run("gnt-node", "modify", "-D", "yes", second)
        try:
            out = _Refused(vc, "migrate", "-f", "-n", second, name)
            assert f"Can't use drained node {second}" in out
            out = _Refused(vc, "failover", "-f", "-n", second, name)
            assert f"Can't use drained node {second}" in out
        finally:
            vc.run("gnt-node", "modify", "-D", "no", second)
        vc.run("gnt-node", "modify", "-O", "yes", second)
        try:
            out = _Refused(vc, "migrate", "-f", "-n", second, name)
            assert f"Can't use offline node {second}" in out
        finally:
            vc.run("gnt-node", "modify", "-O", "no", second)
        _SetMemory(vc, second, 512)
        try:
            out = _Refused(vc, "migrate", "-f", "-n", second, name)
            assert f"Not enough memory on node {second}" in out
            assert "needed 1024 MiB, available 512 MiB" in out
            out = _Refused(vc, "failover", "-f", "-n", second, name)
            assert f"Not enough memory on node {second}" in out
        finally:
            _SetMemory(vc, second, MEMORY)
        _AssertRunsOn(vc, name, first, 1024)
    finally:
        _Gnt(vc, "remove", "-f", name)


def test_failed_migration_rolls_back(vc):
    name = "rollback.example.com"
    first, second = vc.names
    _Add(vc, name, first, "-t", "sharedfile", "--disk", "0:size=1G",
         "-B", "maxmem=256,minmem=256")
    try:
        # the target cannot activate a missing image: the migration aborts on
        # both sides and the instance keeps running where it was
        vc.path(first, f"/srv/ganeti/shared-file-storage/{name}/disk0").unlink()
        out = _Refused(vc, "migrate", "-f", "-n", second, name)
        assert f"Could not pre-migrate instance {name}" in out and "not found" in out
        _AssertRunsOn(vc, name, first, 256)
        assert _Instance(vc, name)["primary_node"] == \
            [u for u, n in vc.config()["nodes"].items() if n["name"] == first][0]
    finally:
        _Gnt(vc, "remove", "-f", name)


def _InstallRecorder(vc: VirtualCluster, node: str, hpath: str, phase: str):
    """A hook script writing its environment to a file; returns that file."""
    out = vc.path(node, f"/tmp-hookenv-{hpath}-{phase}")
    hookdir = vc.path(node, f"/etc/ganeti/hooks/{hpath}-{phase}.d")
    hookdir.mkdir(parents=True, exist_ok=True)
    script = hookdir / "record"
    script.write_text(f"#!/bin/sh\n/usr/bin/env > '{out}'\n")
    script.chmod(0o755)
    return out, hookdir


def _ReadEnv(path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)


def test_hooks_env(vc):
    name = "hooked.example.com"
    first, second = vc.names
    _Add(vc, name, first, "-t", "diskless", "-B", "maxmem=256,minmem=256")
    installed = []
    try:
        mig, mig_dir = _InstallRecorder(vc, second, "instance-migrate", "post")
        fail, fail_dir = _InstallRecorder(vc, first, "instance-failover", "pre")
        installed += [mig_dir, fail_dir]
        _Gnt(vc, "migrate", "-f", "--non-live", "-n", second, name)
        env = _ReadEnv(mig)
        assert env["GANETI_OLD_PRIMARY"] == first and env["GANETI_NEW_PRIMARY"] == second
        assert env["GANETI_MIGRATE_LIVE"] == "False"
        assert env["GANETI_INSTANCE_NAME"] == name
        assert env["GANETI_HOOKS_PHASE"] == "post"
        _Gnt(vc, "failover", "-f", "--shutdown-timeout", "3", "-n", first, name)
        env = _ReadEnv(fail)
        assert env["GANETI_OLD_PRIMARY"] == second and env["GANETI_NEW_PRIMARY"] == first
        assert env["GANETI_SHUTDOWN_TIMEOUT"] == "3"
        _AssertRunsOn(vc, name, first, 256)
    finally:
        for directory in installed:
            shutil.rmtree(directory, ignore_errors=True)
        _Gnt(vc, "remove", "-f", name)
