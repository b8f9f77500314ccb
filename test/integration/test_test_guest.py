"""The test guest (tools/make-test-guest) built from Debian packages and booted.

The guest is built once into the default cache directory (the tool run
by the fixture; cached, so a second run costs nothing) and booted with
``qemu-system-x86_64 -accel tcg`` on a 1 MiB raw disk prepared by the
``testguest`` OS definition's create script. Every wait reads the serial
console up to a deadline; every QEMU is stopped by its pid.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ganeti import constants, objects
from ganeti.backend import os as backend_os
from ganeti.hypervisor.hv_kvm import monitor
from ganeti.tools import test_guest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

REPO = Path(__file__).resolve().parents[2]
TOOL = REPO / "tools" / "make-test-guest"
OS_DIR = REPO / "os-definitions"
DISK_SIZE = 1024 * 1024
BOOT_DEADLINE = 60
POWERDOWN_DEADLINE = 30


def _Exact(line: bytes) -> re.Pattern[bytes]:
    return re.compile(b"^" + re.escape(line) + b"$")


def _RunTool(*args: str) -> dict:
    result = subprocess.run([sys.executable, str(TOOL), *args], capture_output=True,
                            text=True, check=False, timeout=600)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def guest() -> test_guest.Guest:
    """The guest in the default cache directory, built by the tool if needed."""
    manifest = _RunTool()
    directory = Path(manifest["kernel"]).parent
    assert manifest["initrd"] == str(directory / test_guest.INITRD_FILE)
    return test_guest.Guest(directory, manifest)


@pytest.fixture
def workdir() -> Iterator[Path]:
    # Unix socket paths are limited to 107 bytes: pytest's tmp_path may be longer
    path = Path(tempfile.mkdtemp(prefix="tg-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _ReadCpio(data: bytes) -> dict[str, tuple[int, bytes, tuple[int, int]]]:
    """name -> (mode, data, (rdevmajor, rdevminor)) of a newc archive."""
    entries = {}
    offset = 0
    while True:
        assert data[offset:offset + 6] == b"070701", offset
        fields = [int(data[offset + 6 + 8 * i:offset + 14 + 8 * i], 16) for i in range(13)]
        mode, filesize, rdev, namesize = fields[1], fields[6], (fields[9], fields[10]), fields[11]
        start = offset + 110
        name = data[start:start + namesize - 1].decode()
        start += namesize + (-(110 + namesize) % 4)
        if name == "TRAILER!!!":
            return entries
        entries[name] = (mode, data[start:start + filesize], rdev)
        offset = start + filesize + (-filesize % 4)


def _DebField(deb: Path, field: str) -> str:
    return subprocess.run(["dpkg-deb", "-f", str(deb), field], capture_output=True,
                          text=True, check=True).stdout.strip()


def _IsStaticElf(data: bytes) -> bool:
    """An ELF64 executable without a program interpreter (PT_INTERP)."""
    assert data[:4] == b"\x7fELF" and data[4] == 2
    phoff, = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    types = [struct.unpack_from("<I", data, phoff + i * phentsize)[0] for i in range(phnum)]
    return 3 not in types


def test_manifest_and_files(guest):
    manifest = guest.manifest
    assert manifest["kernel_package"].startswith("linux-image-")
    assert manifest["kernel_package"].endswith("-cloud-amd64")
    assert manifest["kernel_release"] in manifest["kernel_package"]
    assert manifest["busybox_package"] == "busybox-static"
    assert manifest["busybox_version"]
    # Both packages are kept in the cache, as apt-get download left them
    for field, package, version in (
            ("kernel_deb", manifest["kernel_package"], manifest["kernel_version"]),
            ("busybox_deb", "busybox-static", manifest["busybox_version"])):
        deb = guest.directory / "debs" / manifest[field]
        assert _DebField(deb, "Package") == package
        assert _DebField(deb, "Version") == version
    for name in (test_guest.KERNEL_FILE, test_guest.INITRD_FILE):
        assert (guest.directory / name).stat().st_size == manifest["sizes"][name]
    # A bzImage
    assert guest.kernel.read_bytes()[0x202:0x206] == b"HdrS"
    # Small: busybox and a dozen modules, gzipped
    assert manifest["sizes"][test_guest.INITRD_FILE] < 4 * 1024 * 1024


def test_initramfs_contents(guest):
    entries = _ReadCpio(gzip.decompress(guest.initrd.read_bytes()))
    mode, init, _ = entries["init"]
    assert mode == 0o100755 and init.decode() == test_guest.InitScript()
    assert entries["bin/busybox"][0] == 0o100755
    assert entries["dev/console"][0] == 0o020600 and entries["dev/console"][2] == (5, 1)
    # busybox-static's binary, whatever busybox the machine has installed
    busybox = entries["bin/busybox"][1]
    assert hashlib.sha256(busybox).hexdigest() == guest.manifest["busybox_sha256"]
    assert _IsStaticElf(busybox)
    load_list = entries["lib/modules/load.list"][1].decode().split()
    assert load_list == guest.manifest["modules"]
    for name in ("virtio_pci", "virtio_blk", "virtio_net", "virtio_balloon", "button"):
        assert name in load_list
    # Dependencies load first
    assert load_list.index("virtio") < load_list.index("virtio_blk")
    for name in load_list:
        assert entries[f"lib/modules/{name}.ko"][1][:4] == b"\x7fELF"


def test_tool_reuses_the_build(guest):
    before = guest.initrd.stat().st_mtime_ns
    again = _RunTool()
    assert again["built"] == guest.manifest["built"]
    assert again["key"] == guest.manifest["key"]
    assert guest.initrd.stat().st_mtime_ns == before


def test_rebuild_when_the_init_changes(guest, workdir, monkeypatch):
    copy = workdir / "guest"
    shutil.copytree(guest.directory, copy, ignore=shutil.ignore_patterns(".lock"))
    messages: list[str] = []
    same = test_guest.EnsureGuest(copy, log=messages.append)
    assert same.manifest["built"] == guest.manifest["built"] and messages == []
    monkeypatch.setattr(test_guest, "INIT_SCRIPT", test_guest.INIT_SCRIPT + "# changed\n")
    rebuilt = test_guest.EnsureGuest(copy, log=messages.append)
    assert rebuilt.manifest["key"] != guest.manifest["key"]
    assert rebuilt.manifest["init_sha256"] != guest.manifest["init_sha256"]
    assert rebuilt.manifest["modules"] == guest.manifest["modules"]
    assert rebuilt.initrd.read_bytes() != guest.initrd.read_bytes()
    assert rebuilt.kernel.read_bytes() == guest.kernel.read_bytes()
    # The kernel package came from the cache, not the network
    assert any("building" in msg for msg in messages)
    assert not any("downloading" in msg for msg in messages), messages


def test_download_into_the_cache(guest, workdir, monkeypatch):
    """A package neither in the cache nor in apt's: apt-get download fetches it."""
    copy = workdir / "guest"
    shutil.copytree(guest.directory, copy, ignore=shutil.ignore_patterns(".lock"))
    (copy / "debs" / guest.manifest["busybox_deb"]).unlink()
    empty = workdir / "apt-archives"
    empty.mkdir()
    monkeypatch.setattr(test_guest, "APT_ARCHIVES", empty)
    messages: list[str] = []
    rebuilt = test_guest.EnsureGuest(copy, force=True, log=messages.append)
    assert any(msg.startswith("downloading busybox-static") for msg in messages), messages
    assert not any("downloading linux-image" in msg for msg in messages), messages
    assert (copy / "debs" / guest.manifest["busybox_deb"]).is_file()
    # Same inputs, same bytes
    assert rebuilt.initrd.read_bytes() == guest.initrd.read_bytes()
    assert rebuilt.manifest["key"] == guest.manifest["key"]


def test_not_root_without_package_lists(workdir, monkeypatch):
    """Not root and apt knows no packages: a clear error, not a skip."""
    lists = workdir / "lists"
    (lists / "partial").mkdir(parents=True)
    config = workdir / "apt.conf"
    config.write_text(f'Dir::State::Lists "{lists}";\n'
                      'Dir::Cache::pkgcache "";\nDir::Cache::srcpkgcache "";\n')
    monkeypatch.setenv("APT_CONFIG", str(config))
    monkeypatch.setattr(test_guest.os, "geteuid", lambda: 65534)
    monkeypatch.delenv(test_guest.DIR_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(workdir / "cache"))
    assert test_guest.DefaultDir() == workdir / "cache" / "ganeti-test-guest"
    with pytest.raises(test_guest.GuestBuildError) as err:
        test_guest.EnsureGuest(workdir / "new", log=lambda msg: None)
    message = str(err.value)
    assert "linux-image-cloud-amd64" in message
    assert "run tools/make-test-guest once as root" in message
    assert test_guest.DIR_ENV in message
    assert not (workdir / "new" / test_guest.KERNEL_FILE).exists()


def _CreateDisk(path: Path, instance_name: str, marker: str) -> str:
    """Run the testguest OS create script on a new raw disk; the marker line."""
    path.write_bytes(b"\xff" * DISK_SIZE)  # not zeros: create must clear the counter
    inst_os = backend_os.OSFromDiskOrRaise("testguest", str(OS_DIR))
    disk = objects.Disk(dev_type=constants.DT_FILE, size=1, mode=constants.DISK_RDWR,
                        logical_id=(constants.FD_LOOP, str(path)), uuid="d-uuid",
                        name="root")
    instance = objects.Instance(
        name=instance_name, os="testguest+default", hypervisor=constants.HT_KVM,
        hvparams={}, beparams={}, osparams={"marker": marker}, osparams_private={},
        nics=[], disks=[disk])
    env = backend_os.OSEnvironment(instance, inst_os, disk_paths=[str(path)])
    assert inst_os.create_script is not None
    result = subprocess.run([inst_os.create_script], env=env, cwd=inst_os.path,
                            capture_output=True, text=True, check=False, timeout=60)
    assert result.returncode == 0, result.stderr
    assert path.stat().st_size == DISK_SIZE
    return f"ganeti-test-guest name={instance_name} variant=default marker={marker}"


def _GuestWrite(path: Path) -> bytes:
    with open(path, "rb") as disk:
        disk.seek(test_guest.GUEST_WRITE_OFFSET)
        return disk.read(test_guest.SECTOR)


class _Booted:
    """A QEMU running the guest, with its console and its QMP socket."""

    def __init__(self, guest: test_guest.Guest, workdir: Path, disk: Path) -> None:
        self.qmp = str(workdir / "qmp.sock")
        serial = str(workdir / "serial.sock")
        for path in (self.qmp, serial):
            if os.path.exists(path):
                os.unlink(path)
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            test_guest.QemuCommand(guest, serial, self.qmp, disk=str(disk)),
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            self.console = test_guest.SerialConsole(serial)
        except BaseException:
            self.Stop()
            raise

    def Stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(30)
        if self.proc.stderr is not None:
            self.proc.stderr.close()
        if hasattr(self, "console"):
            self.console.Close()


def test_boot_marker_write_and_powerdown(guest, workdir):
    disk = workdir / "disk0.img"
    marker = _CreateDisk(disk, "guest1.example.com", "hello from create")
    assert _GuestWrite(disk) == b"\0" * test_guest.SECTOR

    vm = _Booted(guest, workdir, disk)
    try:
        first = vm.console.WaitFor(test_guest.MARKER_RE, BOOT_DEADLINE)
        assert first.group(1).decode() == marker
        assert vm.console.WaitFor(test_guest.WROTE_RE, 10).group(1) == b"1"
        beat = int(vm.console.WaitFor(test_guest.HEARTBEAT_RE, 10).group(1))
        boot_seconds = time.monotonic() - vm.started
        print(f"first heartbeat {boot_seconds:.1f}s after starting QEMU")
        assert vm.console.WaitFor(test_guest.BLOCK_RE, 10).group(1).split() == [b"vda"]
        assert int(vm.console.WaitFor(test_guest.HEARTBEAT_RE, 10).group(1)) == beat + 1

        with monitor.QmpConnection(vm.qmp) as conn:
            assert conn.QueryStatus()["status"] == "running"
            conn.SystemPowerdown()
            vm.console.WaitFor(test_guest.POWEROFF_RE, POWERDOWN_DEADLINE)
            assert vm.proc.wait(POWERDOWN_DEADLINE) == 0
            shutdown = conn.WaitEvent("SHUTDOWN", 5)
            assert shutdown["data"]["guest"] is True
    finally:
        vm.Stop()
    assert _GuestWrite(disk) == b"guest-wrote 1\n".ljust(test_guest.SECTOR, b"\0")
    assert disk.read_bytes()[:len(marker) + 1] == marker.encode() + b"\n"

    # The next boot counts on from what the guest wrote
    vm = _Booted(guest, workdir, disk)
    try:
        assert vm.console.WaitFor(test_guest.WROTE_RE, BOOT_DEADLINE).group(1) == b"2"
        vm.console.WaitFor(test_guest.HEARTBEAT_RE, 10)
        with monitor.QmpConnection(vm.qmp) as conn:
            conn.Quit()
        assert vm.proc.wait(POWERDOWN_DEADLINE) == 0
    finally:
        vm.Stop()
    assert _GuestWrite(disk).startswith(b"guest-wrote 2\n")


def test_boot_without_disk_and_reset(guest, workdir):
    serial = str(workdir / "serial.sock")
    qmp = str(workdir / "qmp.sock")
    proc = subprocess.Popen(
        test_guest.QemuCommand(guest, serial, qmp, memory=test_guest.MIN_MEMORY),
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    console = None
    try:
        console = test_guest.SerialConsole(serial)
        console.WaitFor(test_guest.HEARTBEAT_RE, BOOT_DEADLINE)
        assert b"test-guest: no disk" in console.lines
        with monitor.QmpConnection(qmp) as conn:
            reset_at = time.monotonic()
            conn.SystemReset()
            # The guest boots again from the start
            console.WaitFor(_Exact(b"heartbeat 1"), BOOT_DEADLINE)
            print(f"heartbeat 1 {time.monotonic() - reset_at:.1f}s after system_reset")
            assert conn.WaitEvent("RESET", 5)["data"]["guest"] is False
            conn.Quit()
        assert proc.wait(30) == 0
    finally:
        if console is not None:
            console.Close()
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)


def test_os_definition_checks(workdir):
    inst_os = backend_os.OSFromDiskOrRaise("testguest", str(OS_DIR))
    assert inst_os.api_versions == [20]
    assert inst_os.supported_variants == ["default"]
    assert [name for name, _ in inst_os.supported_parameters] == ["marker"]
    env = {"PATH": constants.OS_SCRIPT_PATH, "OSP_MARKER": "x" * 201}
    result = subprocess.run([inst_os.verify_script, "parameters"], env=env,
                            capture_output=True, text=True, check=False)
    assert result.returncode == 1 and "at most 200" in result.stderr
    env["OSP_MARKER"] = "fine"
    result = subprocess.run([inst_os.verify_script, "parameters"], env=env,
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    # A disk too small for the marker is refused
    tiny = workdir / "tiny.img"
    tiny.write_bytes(b"\0" * 100)
    env = {"PATH": constants.OS_SCRIPT_PATH, "INSTANCE_NAME": "x", "DISK_COUNT": "1",
           "DISK_0_PATH": str(tiny)}
    result = subprocess.run([inst_os.create_script], env=env, cwd=inst_os.path,
                            capture_output=True, text=True, check=False)
    assert result.returncode == 1 and "at least 512" in result.stderr
    assert tiny.stat().st_size == 100


def test_helper_image_layout():
    data = test_guest.HelperImage("echo hello\nexit 3\n")
    assert len(data) == test_guest.HELPER_IMAGE_SIZE and len(data) % 1024 == 0
    sector = test_guest.SECTOR
    assert data[:sector] == b"ganeti-helper-image\n".ljust(sector, b"\0")
    assert test_guest.HELPER_MARKER == "ganeti-helper-image"
    assert data[sector:].rstrip(b"\0") == b"echo hello\nexit 3\n"
    # What the guest reads back: the sectors after the marker, NULs dropped
    script_sectors = int(re.search(r"skip=1 count=(\d+)", test_guest.InitScript()).group(1))
    assert (1 + script_sectors) * sector == test_guest.HELPER_IMAGE_SIZE
    assert test_guest.ZeroingImage() == test_guest.HelperImage(test_guest.ZEROING_SCRIPT)
    assert b"\0" not in test_guest.ZEROING_SCRIPT.encode()
    assert "@" not in test_guest.ZEROING_SCRIPT
    with pytest.raises(ValueError, match="NUL"):
        test_guest.HelperImage("a\0b")
    with pytest.raises(ValueError, match="at most 65024 fit"):
        test_guest.HelperImage("x" * (test_guest.HELPER_IMAGE_SIZE - sector + 1))
    assert len(test_guest.HelperImage("x" * (test_guest.HELPER_IMAGE_SIZE - sector))) == \
        test_guest.HELPER_IMAGE_SIZE


def test_tool_writes_the_zeroing_image(guest, workdir):
    path = workdir / "sub" / "zeroing.img"
    path.parent.mkdir()
    manifest = _RunTool("--zeroing-image", str(path))
    assert manifest["zeroing_image"] == str(path)
    assert manifest["built"] == guest.manifest["built"]
    assert path.read_bytes() == test_guest.ZeroingImage()


def _BootHelper(guest: test_guest.Guest, workdir: Path, helper: Path,
                *disks: Path) -> tuple[subprocess.Popen, test_guest.SerialConsole]:
    serial = str(workdir / "serial.sock")
    extra: list[str] = []
    for disk in disks:
        extra += ["-drive", f"file={disk},format=raw,if=virtio,cache=writeback"]
    proc = subprocess.Popen(
        test_guest.QemuCommand(guest, serial, disk=str(helper), extra=extra),
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    try:
        return proc, test_guest.SerialConsole(serial)
    except BaseException:
        proc.kill()
        proc.wait(30)
        raise


def _StopQemu(proc: subprocess.Popen, console: test_guest.SerialConsole) -> None:
    console.Close()
    if proc.poll() is None:
        proc.kill()
    proc.wait(30)


def test_helper_image_runs_its_script_and_powers_off(guest, workdir):
    helper = workdir / "helper.img"
    image = test_guest.HelperImage("echo test-guest: from the helper script\nexit 3\n")
    helper.write_bytes(image)
    proc, console = _BootHelper(guest, workdir, helper)
    try:
        marker = console.WaitFor(test_guest.MARKER_RE, BOOT_DEADLINE)
        assert marker.group(1) == b"ganeti-helper-image"
        console.WaitFor(test_guest.HELPER_RUNNING_RE, 10)
        console.WaitFor(_Exact(b"test-guest: from the helper script"), 10)
        assert console.WaitFor(test_guest.HELPER_DONE_RE, 10).group(1) == b"3"
        # The guest powered itself off: QEMU exits by itself
        assert proc.wait(POWERDOWN_DEADLINE) == 0
    finally:
        _StopQemu(proc, console)
    # No boot counter, no heartbeat: the helper disk is as it was
    assert helper.read_bytes() == image
    assert not any(test_guest.WROTE_RE.search(line) or test_guest.HEARTBEAT_RE.search(line)
                   for line in console.lines), console.lines


def test_zeroing_image(guest, workdir):
    helper = workdir / "zeroing.img"
    helper.write_bytes(test_guest.ZeroingImage())
    data = workdir / "data.img"
    content = os.urandom(4 * 1024 * 1024)
    data.write_bytes(content)
    # Not a whole number of MiB: the tail is zeroed by sectors
    odd = workdir / "odd.img"
    odd_content = os.urandom(1024 * 1024 + 3 * test_guest.SECTOR)
    odd.write_bytes(odd_content)
    proc, console = _BootHelper(guest, workdir, helper, data, odd)
    try:
        console.WaitFor(test_guest.HELPER_RUNNING_RE, BOOT_DEADLINE)
        zeroed = [console.WaitFor(test_guest.ZEROED_RE, 30).group(1) for _ in range(2)]
        assert zeroed == [b"/dev/vdb", b"/dev/vdc"]
        assert console.WaitFor(test_guest.HELPER_DONE_RE, 30).group(1) == b"0"
        assert proc.wait(POWERDOWN_DEADLINE) == 0
    finally:
        _StopQemu(proc, console)
    keep = test_guest.ZEROING_KEEP
    after = data.read_bytes()
    assert len(after) == len(content)
    assert after[:keep] == content[:keep]
    assert after[keep:] == bytes(len(content) - keep)
    after = odd.read_bytes()
    assert after[:keep] == odd_content[:keep]
    assert after[keep:] == bytes(3 * test_guest.SECTOR)
    assert helper.read_bytes() == test_guest.ZeroingImage()
