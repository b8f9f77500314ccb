"""gnt-backup on a 3-node virtual cluster: local exports and imports of
diskless, file and plain instances, the data copied for real through the
import/export daemons and the noop OS's export/import scripts, checked
byte for byte after the import; list and remove; failures that must leave
nothing behind (an unusable or full export directory, an importer killed midway,
an export of a newer version).

Needs root (loop devices, for the plain instances); skipped otherwise.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from vcluster import VirtualCluster, virtual_cluster  # noqa: E402

from ganeti import vcluster  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900),
              pytest.mark.skipif(not vcluster.StorageAvailable(),
                                 reason="virtual nodes get LVM only as root, with lvm2"
                                        " and loop devices")]

EXPORT_DIR = "/srv/ganeti/export"


@pytest.fixture(scope="module")
def vc():
    with virtual_cluster(nodes=3, storage=True, loop_activation=True) as cluster:
        yield cluster


def _Gnt(vc: VirtualCluster, tool: str, *args: str, check: bool = True):
    return vc.run(tool, *args, check=check)


def _Add(vc: VirtualCluster, name: str, template: str, node: str, start: bool = False):
    disks = [] if template == "diskless" else ["--disk", "0:size=32M", "--disk",
                                               "1:size=16M"]
    _Gnt(vc, "gnt-instance", "add", "-t", template, "-o", "noop+default", "-n", node,
         "--no-name-check", "--no-ip-check", "--ignore-ipolicy", "-B", "maxmem=96,minmem=64",
         *([] if start else ["--no-start"]), *disks, name)


def _Devices(vc: VirtualCluster, name: str) -> dict[str, str]:
    """Activate the disks; "disk/N" -> device path."""
    out = _Gnt(vc, "gnt-instance", "activate-disks", name).stdout
    result = {}
    for line in out.splitlines():
        _, disk, path = line.strip().split(":", 2)
        result[disk] = path
    return result


def _WriteData(vc: VirtualCluster, name: str) -> dict[str, bytes]:
    payloads = {}
    for disk, path in _Devices(vc, name).items():
        payloads[disk] = f"ganeti-backup-{name}-{disk}".encode() + os.urandom(8192)
        with open(path, "r+b") as fd:
            fd.seek(4096)
            fd.write(payloads[disk])
            fd.flush()
            os.fsync(fd.fileno())
    _Gnt(vc, "gnt-instance", "deactivate-disks", name)
    return payloads


def _ReadData(vc: VirtualCluster, name: str, payloads: dict[str, bytes]) -> None:
    devices = _Devices(vc, name)
    assert sorted(devices) == sorted(payloads)
    for disk, path in devices.items():
        with open(path, "rb") as fd:
            fd.seek(4096)
            assert fd.read(len(payloads[disk])) == payloads[disk], disk
    _Gnt(vc, "gnt-instance", "deactivate-disks", name)


def _Status(vc: VirtualCluster, name: str) -> list[str]:
    return _Gnt(vc, "gnt-instance", "list", "--no-headers", "-o", "pnode,status",
                name).stdout.split()


def _ExportDir(vc: VirtualCluster, node: str | int):
    return vc.path(node, EXPORT_DIR)


def _Lvs(vc: VirtualCluster, node: int) -> set[str]:
    out = vc.lvm(node, "lvs", "--noheadings", "-o", "vg_name,lv_name", "--separator=/")
    return {line.strip() for line in out.splitlines() if line.strip()}


def _NoDaemonsLeft(vc: VirtualCluster) -> None:
    for idx in range(1, 4):
        impexp = vc.path(idx, "/var/run/ganeti/import-export")
        assert not impexp.exists() or not list(impexp.iterdir()), idx


@pytest.mark.parametrize("template,compress", [("plain", "gzip"), ("file", None),
                                               ("diskless", None)])
def test_export_import_round_trip(vc, template, compress):
    name = f"bk-{template}.vcluster.test"
    copy = f"bk-{template}-copy.vcluster.test"
    n1, n2, n3 = vc.names
    _Add(vc, name, template, n1)
    payloads = {} if template == "diskless" else _WriteData(vc, name)
    _Gnt(vc, "gnt-instance", "startup", name)
    lvs_before = _Lvs(vc, 1)
    extra = ["--compress", compress] if compress else []
    _Gnt(vc, "gnt-backup", "export", "-n", n2, *extra, name)
    # Running again; no snapshot left behind on the source node
    assert _Status(vc, name) == [n1, "running"]
    assert _Lvs(vc, 1) == lvs_before
    export = _ExportDir(vc, n2) / name
    conf = (export / "config.ini").read_text()
    assert "[export]" in conf and "version = 0" in conf and f"name = {name}" in conf
    assert f"disk_template = {template}" in conf
    assert not (_ExportDir(vc, n2) / f"{name}.new").exists()
    dumps = sorted(p.name for p in export.iterdir() if p.name != "config.ini")
    assert len(dumps) == len(payloads)
    listing = _Gnt(vc, "gnt-backup", "list", "--no-headers", "--node", n2).stdout
    assert [n2, name] in [line.split() for line in listing.splitlines()]
    _NoDaemonsLeft(vc)

    # Import as a new instance on the third node, everything from the export
    _Gnt(vc, "gnt-backup", "import", "-n", n3, "--src-node", n2, "--src-dir", name,
         "--no-name-check", "--no-ip-check", "--ignore-ipolicy", "--no-start",
         *extra, copy)
    info = _Gnt(vc, "gnt-instance", "list", "--no-headers", "-o",
                "pnode,disk_template,os,be/maxmem,disk.count", copy).stdout.split()
    assert info == [n3, template, "noop+default", "96M", str(len(payloads))]
    if payloads:
        _ReadData(vc, copy, payloads)
    _NoDaemonsLeft(vc)

    # A second export to another node replaces the first one there
    _Gnt(vc, "gnt-instance", "shutdown", name)
    _Gnt(vc, "gnt-backup", "export", "-n", n3, name)
    assert _Status(vc, name) == [n1, "ADMIN_down"]
    assert not export.exists()
    assert (_ExportDir(vc, n3) / name / "config.ini").exists()
    _Gnt(vc, "gnt-backup", "remove", name)
    assert not (_ExportDir(vc, n3) / name).exists()
    result = _Gnt(vc, "gnt-backup", "remove", name, check=False)
    assert result.returncode != 0 and "No export found" in result.stdout + result.stderr
    for inst in (name, copy):
        _Gnt(vc, "gnt-instance", "remove", "-f", inst)


def test_export_remove_instance_and_import_same_name(vc):
    name = "bk-gone.vcluster.test"
    n1, n2 = vc.names[:2]
    _Add(vc, name, "file", n1)
    payloads = _WriteData(vc, name)
    _Gnt(vc, "gnt-backup", "export", "-n", n2, "--remove-instance", name)
    result = _Gnt(vc, "gnt-instance", "list", name, check=False)
    assert result.returncode != 0
    # The export found by name on any node (no --src-node)
    _Gnt(vc, "gnt-instance", "add", "--src-dir", name, "-n", n1, "--no-name-check",
         "--no-ip-check", "--ignore-ipolicy", "--no-start", name)
    _ReadData(vc, name, payloads)
    _Gnt(vc, "gnt-instance", "remove", "-f", name)
    _Gnt(vc, "gnt-backup", "remove", name)


def test_export_to_unusable_dir_fails_cleanly(vc):
    name = "bk-baddir.vcluster.test"
    n1, n2 = vc.names[:2]
    _Add(vc, name, "file", n1, start=True)
    export_dir = _ExportDir(vc, n2)
    moved = export_dir.with_name("export.moved")
    if export_dir.exists():
        export_dir.rename(moved)
    export_dir.write_text("not a directory\n")
    try:
        result = _Gnt(vc, "gnt-backup", "export", "-n", n2, name, check=False)
        assert result.returncode != 0
        assert "failed" in result.stdout + result.stderr
        assert export_dir.read_text() == "not a directory\n"
        assert _Status(vc, name) == [n1, "running"]
        # As Ganeti 3.0's query: the node shows, without data, exit code 0
        listing = _Gnt(vc, "gnt-backup", "list", "--no-headers", "-v", "--node", n2)
        assert listing.stdout.split() == [n2, "(nodata)"]
    finally:
        export_dir.unlink()
        if moved.exists():
            moved.rename(export_dir)
    _NoDaemonsLeft(vc)
    # Bad input refused before anything happens
    for args, text in ((["-n", "nosuch.vcluster.test"], "nosuch"),
                       (["-n", n2, "--compress", "bzip9"], "bzip9"),
                       (["-n", n2, "--noshutdown", "--remove-instance"], "shutting")):
        result = _Gnt(vc, "gnt-backup", "export", *args, name, check=False)
        assert result.returncode != 0
        assert text in result.stdout + result.stderr
    assert _Status(vc, name) == [n1, "running"]
    _Gnt(vc, "gnt-instance", "remove", "-f", name)


def test_export_to_full_dir_fails_cleanly(vc):
    """An export directory that fills up (a 1 MiB tmpfs for 48 MiB of
    disks): the job fails, no partial export stays, the instance runs."""
    name = "bk-full.vcluster.test"
    n1, n2 = vc.names[:2]
    _Add(vc, name, "file", n1, start=True)
    export_dir = _ExportDir(vc, n2)
    export_dir.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(export_dir)],
                   check=True)
    try:
        result = _Gnt(vc, "gnt-backup", "export", "-n", n2, name, check=False)
        assert result.returncode != 0
        assert "failed" in result.stdout + result.stderr
        assert list(export_dir.iterdir()) == []
        assert _Status(vc, name) == [n1, "running"]
    finally:
        subprocess.run(["umount", str(export_dir)], check=True)
    _NoDaemonsLeft(vc)
    _Gnt(vc, "gnt-instance", "remove", "-f", name)


def _ImporterPid(vc: VirtualCluster, node: str, deadline: float) -> int:
    base = vc.path(node, "/var/run/ganeti/import-export")
    while time.monotonic() < deadline:
        if base.exists():
            for entry in base.iterdir():
                pid_file = entry / "pid"
                if entry.name.startswith("import-") and pid_file.exists():
                    text = pid_file.read_text().strip()
                    if text.isdigit():
                        return int(text)
        time.sleep(0.01)
    raise AssertionError("no importer appeared")


def test_interrupted_export_leaves_nothing(vc):
    name = "bk-kill.vcluster.test"
    n1, n2 = vc.names[:2]
    _Add(vc, name, "plain", n1, start=True)
    lvs = _Lvs(vc, 1)
    job = _Gnt(vc, "gnt-backup", "export", "--submit", "--print-jobid", "-n", n2,
               name).stdout.split()[0]
    pid = _ImporterPid(vc, n2, time.monotonic() + 60)
    os.kill(pid, signal.SIGKILL)
    result = _Gnt(vc, "gnt-job", "watch", job, check=False)
    assert result.returncode != 0, result.stdout + result.stderr
    status = _Gnt(vc, "gnt-job", "list", "--no-headers", "-o", "status", job).stdout
    assert status.strip() == "error"
    assert not (_ExportDir(vc, n2) / name).exists()
    assert not (_ExportDir(vc, n2) / f"{name}.new").exists()
    assert _Status(vc, name) == [n1, "running"]
    assert _Lvs(vc, 1) == lvs
    _NoDaemonsLeft(vc)
    _Gnt(vc, "gnt-instance", "remove", "-f", name)


def test_import_of_newer_version_is_refused(vc):
    name = "bk-new.vcluster.test"
    n1, n2 = vc.names[:2]
    _Add(vc, name, "diskless", n1)
    _Gnt(vc, "gnt-backup", "export", "-n", n2, name)
    _Gnt(vc, "gnt-instance", "remove", "-f", name)
    conf = _ExportDir(vc, n2) / name / "config.ini"
    conf.write_text(conf.read_text().replace("version = 0", "version = 1"))
    result = _Gnt(vc, "gnt-backup", "import", "-n", n1, "--src-node", n2, "--src-dir",
                  name, "--no-name-check", "--no-ip-check", name, check=False)
    assert result.returncode != 0
    assert "newer" in result.stdout + result.stderr
    assert _Gnt(vc, "gnt-instance", "list", name, check=False).returncode != 0
    # A malformed one too
    conf.write_text("[export]\nversion = zero\nos = noop\n[instance]\nname = x\n")
    result = _Gnt(vc, "gnt-backup", "import", "-n", n1, "--src-node", n2, "--src-dir",
                  name, "--no-name-check", "--no-ip-check", name, check=False)
    assert result.returncode != 0
    assert "'version'" in result.stdout + result.stderr
    assert "not an integer" in result.stdout + result.stderr
    assert _Gnt(vc, "gnt-instance", "list", name, check=False).returncode != 0
    _Gnt(vc, "gnt-backup", "remove", name)


_MIB = 1024 * 1024


def _FillBeyond(vc: VirtualCluster, name: str, offset: int) -> None:
    """Random bytes from ``offset`` to the end of each disk (what zeroing
    is to clear)."""
    for path in _Devices(vc, name).values():
        with open(path, "r+b") as fd:
            end = fd.seek(0, os.SEEK_END)
            fd.seek(offset)
            while fd.tell() < end:
                fd.write(os.urandom(min(_MIB, end - fd.tell())))
            fd.flush()
            os.fsync(fd.fileno())
    _Gnt(vc, "gnt-instance", "deactivate-disks", name)


def _ZerosBeyond(vc: VirtualCluster, name: str, offset: int) -> None:
    for disk, path in _Devices(vc, name).items():
        with open(path, "rb") as fd:
            fd.seek(offset)
            while block := fd.read(_MIB):
                assert block == bytes(len(block)), f"{disk} not zeroed"
    _Gnt(vc, "gnt-instance", "deactivate-disks", name)


def test_export_zero_free_space_through_a_helper_vm(vc):
    """--zero-free-space: a temporary LV with the zeroing image as the
    instance's disk 0, the instance started from it; this test plays the
    helper VM's guest under the fake hypervisor (it checks the image on the
    first disk, zeroes the others beyond their first MiB and powers off by
    removing the hypervisor's state file); then the export, compressed, and
    an import that gets the zeroed data."""
    name = "bk-zero.vcluster.test"
    copy = "bk-zero-copy.vcluster.test"
    n1, n2, n3 = vc.names
    _Add(vc, name, "plain", n1)
    payloads = _WriteData(vc, name)
    _FillBeyond(vc, name, _MIB)
    image = b"ganeti-helper-image\n" + os.urandom(2 * _MIB)
    vc.path(n1, "/srv/zeroing.img").write_bytes(image)
    _Gnt(vc, "gnt-cluster", "modify", "--zeroing-image", "/srv/zeroing.img")
    _Gnt(vc, "gnt-instance", "startup", name)
    lvs = _Lvs(vc, 1)
    job = _Gnt(vc, "gnt-backup", "export", "--submit", "--print-jobid", "-n", n2,
               "--compress", "gzip", "--zero-free-space", "--zeroing-timeout-fixed", "600",
               name).stdout.split()[0]
    watch = subprocess.Popen([vc.python, vc.tools.Script("gnt-job"), "watch", job],
                             env=vc.env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True)
    state_file = vc.path(n1, f"/var/run/ganeti/fake-hypervisor/{name}")
    seen = []
    try:
        assert watch.stdout is not None
        while not any("The helper VM is up" in line for line in seen):
            line = watch.stdout.readline()
            assert line, "the job ended before the helper VM was up:\n" + "".join(seen)
            seen.append(line)
        # The guest: disk 0 is the image on a new 3 MiB LV, then the instance's
        state = json.loads(state_file.read_text())
        assert len(state["disks"]) == 3
        with open(state["disks"][0], "rb") as fd:
            assert fd.read(len(image)) == image
        assert len(_Lvs(vc, 1) - lvs) == 1
        for path in state["disks"][1:]:
            with open(path, "r+b") as fd:
                end = fd.seek(0, os.SEEK_END)
                fd.seek(_MIB)
                fd.write(bytes(end - _MIB))
                fd.flush()
                os.fsync(fd.fileno())
        state_file.unlink()
        rest, _ = watch.communicate(timeout=300)
    finally:
        if watch.poll() is None:
            # Something failed: the helper "powers off", so that the job ends
            state_file.unlink(missing_ok=True)
            watch.kill()
            watch.wait()
    output = "".join(seen) + rest
    assert watch.returncode == 0, output
    assert "Zeroing completed" in output
    assert _Status(vc, name) == [n1, "running"]
    assert _Lvs(vc, 1) == lvs
    assert len(vc.instance_disks(name)) == 2
    # The dumps (raw images) hold zeros where the random bytes were
    export = _ExportDir(vc, n2) / name
    dumps = [p for p in export.iterdir() if p.name != "config.ini"]
    assert sorted(p.stat().st_size for p in dumps) == [16 * _MIB, 32 * _MIB]
    for dump in dumps:
        assert dump.read_bytes()[_MIB:] == bytes(dump.stat().st_size - _MIB), dump
    _Gnt(vc, "gnt-backup", "import", "-n", n3, "--src-node", n2, "--src-dir", name,
         "--no-name-check", "--no-ip-check", "--ignore-ipolicy", "--no-start",
         "--compress", "gzip", copy)
    _ReadData(vc, copy, payloads)
    _ZerosBeyond(vc, copy, _MIB)
    _NoDaemonsLeft(vc)
    _Gnt(vc, "gnt-cluster", "modify", "--zeroing-image", "")
    _Gnt(vc, "gnt-backup", "remove", name)
    for inst in (name, copy):
        _Gnt(vc, "gnt-instance", "remove", "-f", inst)


def test_export_zero_free_space_refused_before_anything(vc):
    name = "bk-zero-no.vcluster.test"
    n1, n2 = vc.names[:2]
    _Add(vc, name, "file", n1, start=True)
    result = _Gnt(vc, "gnt-backup", "export", "-n", n2, "--zero-free-space", name,
                  check=False)
    assert result.returncode != 0
    assert "zeroing image must be set" in result.stdout + result.stderr
    result = _Gnt(vc, "gnt-backup", "export", "-n", n2, "--zeroing-timeout-fixed", "5",
                  name, check=False)
    assert result.returncode != 0
    assert "--zero-free-space" in result.stdout + result.stderr
    # A missing image: the job fails, the instance runs again, nothing exported
    _Gnt(vc, "gnt-cluster", "modify", "--zeroing-image", "/srv/no-such.img")
    try:
        result = _Gnt(vc, "gnt-backup", "export", "-n", n2, "--zero-free-space", name,
                      check=False)
    finally:
        _Gnt(vc, "gnt-cluster", "modify", "--zeroing-image", "")
    assert result.returncode != 0
    assert "/srv/no-such.img" in result.stdout + result.stderr
    assert _Status(vc, name) == [n1, "running"]
    assert not (_ExportDir(vc, n2) / name).exists()
    assert len(vc.instance_disks(name)) == 2
    _Gnt(vc, "gnt-instance", "remove", "-f", name)
