"""gnt-instance on a real two-node virtual cluster.

The life of a diskless, a file and a sharedfile instance with the noop
OS (add, list, info, reboot, shutdown, startup, console, remove), then bad
input: unknown and blacklisted OSes, a used name, a drained node, too much
memory, a bad disk size, bad MAC/IP, a failing OS create script and an
instance policy violation — each with a clear message and no trace left.
"""

from __future__ import annotations

import json
import os
import shutil
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from vcluster import REPO, VirtualCluster, virtual_cluster  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

NOOP = REPO / "os-definitions" / "noop"


def _InstallOs(vc: VirtualCluster, name: str, failing: bool = False) -> None:
    """Copy the noop OS (optionally with a create script that fails) into
    every node's OS search path."""
    for node in vc.names:
        target = vc.path(node, f"/srv/ganeti/os/{name}")
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(NOOP, target)
        if failing:
            create = target / "create"
            create.write_text("#!/bin/sh\necho 'noop-fail: cannot install on purpose'"
                              " >&2\nexit 1\n")
            create.chmod(0o755)


@pytest.fixture(scope="module")
def vc():
    with virtual_cluster(nodes=2) as cluster:
        # vcluster-setup installs the tree's noop OS on every node
        for node in cluster.names:
            assert (cluster.path(node, "/srv/ganeti/os/noop") / "create").exists()
        _InstallOs(cluster, "failos", failing=True)
        # vcluster-setup enables only file and diskless: make the shared
        # file storage directory that enabling sharedfile needs
        for node in cluster.names:
            cluster.path(node, "/srv/ganeti/shared-file-storage").mkdir(
                parents=True, exist_ok=True)
        cluster.run("gnt-cluster", "modify", "--enabled-disk-templates",
                    "file,sharedfile,diskless")
        yield cluster


def _Gnt(vc: VirtualCluster, *args: str, check: bool = True):
    return vc.run("gnt-instance", *args, check=check)


def _Status(vc: VirtualCluster, name: str) -> str:
    out = _Gnt(vc, "list", "--no-headers", "-o", "status", name).stdout
    return out.strip()


def _Add(vc: VirtualCluster, name: str, *extra: str, check: bool = True):
    return _Gnt(vc, "add", "-o", "noop+default", "-n", vc.names[1], "--no-name-check",
                "--no-ip-check", *extra, name, check=check)


def _FilesUnder(vc: VirtualCluster, node: str, path: str) -> list[str]:
    root = vc.path(node, path)
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")) \
        if root.exists() else []


@pytest.mark.parametrize("template,extra", [
    ("diskless", []),
    ("file", ["-s", "1G"]),
    ("sharedfile", ["--disk", "0:size=1G"]),
])
def test_instance_life(vc, template, extra):
    name = f"inst-{template}.example.com"
    _Add(vc, name, "-t", template, *extra)
    assert _Status(vc, name) == "running"
    out = _Gnt(vc, "list", "--no-headers", "--separator=|").stdout
    line = [ln for ln in out.splitlines() if ln.startswith(name)][0]
    assert line.split("|")[:5] == [name, "fake", "noop+default", vc.names[1], "running"]
    info = _Gnt(vc, "info", name).stdout
    assert f"Instance name: {name}" in info
    assert "actual state is up" in info
    assert f"Disk template: {template}" in info
    static = _Gnt(vc, "info", "--static", name).stdout
    assert "actual state is unknown" in static
    assert f"Instance name: {name}" in _Gnt(vc, "info", "--all").stdout
    fields = _Gnt(vc, "list", "--no-headers", "--separator=|", "-o",
                  "name,disk_template,nic.count,disk.count,admin_state,oper_state",
                  name).stdout.strip()
    assert fields == f"{name}|{template}|1|{0 if template == 'diskless' else 1}|up|Y"
    if template != "diskless":
        assert "status ok" in info and "file path:" in info
        storage = "file-storage" if template == "file" else "shared-file-storage"
        image = vc.path(vc.names[1], f"/srv/ganeti/{storage}/{name}/disk0")
        assert image.exists()
        assert b"ganeti-noop-os" in image.read_bytes()[:512]
    _Gnt(vc, "reboot", name)
    _Gnt(vc, "reboot", "--type", "full", name)
    assert _Status(vc, name) == "running"
    _Gnt(vc, "shutdown", "--timeout", "5", name)
    assert _Status(vc, name) == "ADMIN_down"
    _Gnt(vc, "startup", name)
    assert _Status(vc, name) == "running"
    console = _Gnt(vc, "console", "--show-cmd", name, check=False)
    assert "fake hypervisor" in console.stdout + console.stderr
    _Gnt(vc, "remove", "-f", name)
    assert _Gnt(vc, "list", "--no-headers", "-o", "name").stdout.split().count(name) == 0
    assert name not in json.dumps(vc.config()["instances"])
    if template != "diskless":
        assert not vc.path(vc.names[1], f"/srv/ganeti/{storage}/{name}").exists()


def _Fails(vc: VirtualCluster, name: str, *args: str) -> str:
    before = vc.config()["instances"]
    result = _Add(vc, name, *args, check=False)
    assert result.returncode != 0, result.stdout
    assert vc.config()["instances"] == before
    return result.stdout + result.stderr


def test_bad_input(vc):
    out = _Fails(vc, "bad1", "-t", "diskless", "-o", "nosuchos")
    assert "nosuchos" in out
    out = _Fails(vc, "bad2", "-t", "file", "--disk", "0:size=10X")
    assert "10X" in out
    out = _Fails(vc, "bad3", "-t", "diskless", "--net", "0:mac=zz:00:00:00:00:01")
    assert "zz:00:00:00:00:01" in out
    out = _Fails(vc, "bad4", "-t", "diskless", "--net", "0:ip=300.1.1.1")
    assert "300.1.1.1" in out
    out = _Fails(vc, "bad5", "-t", "diskless", "-B", "maxmem=64,minmem=64")
    assert "instance policy" in out and "memory-size value 64" in out
    out = _Fails(vc, "bad6", "-t", "diskless", "--ignore-ipolicy",
                 "-B", "maxmem=100000000,minmem=128")
    assert "Not enough memory" in out
    out = _Fails(vc, "bad7", "-t", "diskless", "--iallocator", "hail")
    assert "allocator" in out
    # Listing an unknown instance by name is an error, as in Ganeti
    result = vc.run("gnt-instance", "list", "nosuch.example.com", check=False)
    assert result.returncode == 1
    assert "Instance 'nosuch.example.com' not known" in result.stdout + result.stderr
    result = vc.run("gnt-node", "list", "nosuchnode", check=False)
    assert result.returncode == 1 and "Node 'nosuchnode' not known" in \
        result.stdout + result.stderr


def test_failing_os_script_leaves_no_trace(vc):
    node = vc.names[1]
    before_files = _FilesUnder(vc, node, "/srv/ganeti/file-storage")
    out = _Fails(vc, "failing.example.com", "-t", "file", "-s", "1G", "-o", "failos+default")
    assert "noop-fail: cannot install on purpose" in out
    assert _FilesUnder(vc, node, "/srv/ganeti/file-storage") == before_files


def test_blacklisted_used_name_and_drained(vc):
    _Add(vc, "taken.example.com", "-t", "diskless", "--no-start")
    try:
        assert _Status(vc, "taken.example.com") == "ADMIN_down"
        out = _Fails(vc, "taken.example.com", "-t", "diskless")
        assert "already" in out
        vc.run("gnt-os", "modify", "--blacklisted", "yes", "noop")
        try:
            out = _Fails(vc, "bl.example.com", "-t", "diskless")
            assert "blacklisted" in out
        finally:
            vc.run("gnt-os", "modify", "--blacklisted", "no", "noop")
        vc.run("gnt-node", "modify", "-D", "yes", vc.names[1])
        try:
            out = _Fails(vc, "dr.example.com", "-t", "diskless")
            assert "drained" in out
        finally:
            vc.run("gnt-node", "modify", "-D", "no", vc.names[1])
    finally:
        _Gnt(vc, "remove", "-f", "taken.example.com")
