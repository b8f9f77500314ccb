"""The kvm hypervisor on a virtual cluster whose instances are real QEMU guests.

The cluster is made by ``make vcluster VCLUSTER_HV=kvm`` (one node): QEMU's
software accelerator, the test guest's kernel and initramfs
(doc/test-guest.rst), file disks prepared by the ``testguest`` OS
definition. Every wait reads the guest's serial console (its socket in the
node's root) or polls the instance list up to a deadline; the cluster's
stop kills every QEMU by its pid file, and the test checks that none is
left.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ganeti import constants
from ganeti.hypervisor.hv_kvm import monitor
from ganeti.tools import test_guest

from .vcluster import VirtualCluster, virtual_cluster

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

NAME = "kvm1.vcluster.test"
KVM_RUN = "/var/run/ganeti/kvm-hypervisor"
MEMORY = 96
BOOT_DEADLINE = 60
STATE_DEADLINE = 60


@pytest.fixture(scope="module")
def vc() -> Iterator[VirtualCluster]:
    with virtual_cluster(nodes=1, use_make=True, hypervisor=constants.HT_KVM) as cluster:
        yield cluster
        # The cluster's stop kills the QEMUs: nothing may be left of them
    assert not _QemuProcesses(cluster.directory)


def _QemuProcesses(directory: str) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            argv = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(arg.startswith(directory.encode()) for arg in argv) and \
                argv[0].endswith(b"qemu-system-x86_64"):
            pids.append(int(entry))
    return pids


def _Gnt(vc: VirtualCluster, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return vc.run("gnt-instance", *args, check=check)


def _Status(vc: VirtualCluster, name: str = NAME) -> str:
    return _Gnt(vc, "list", "--no-headers", "-o", "status", name).stdout.strip()


def _Field(vc: VirtualCluster, field: str, name: str = NAME) -> str:
    return _Gnt(vc, "list", "--no-headers", "-o", field, name).stdout.strip()


def _WaitStatus(vc: VirtualCluster, wanted: str, name: str = NAME) -> None:
    deadline = time.monotonic() + STATE_DEADLINE
    while (status := _Status(vc, name)) != wanted:
        assert time.monotonic() < deadline, f"{name} is {status}, not {wanted}"
        time.sleep(0.2)  # polling the cluster's view of a process


def _Run(vc: VirtualCluster, path: str) -> Path:
    return vc.path(1, f"{KVM_RUN}/{path}")


def _Console(vc: VirtualCluster, name: str = NAME) -> test_guest.SerialConsole:
    return test_guest.SerialConsole(str(_Run(vc, f"ctrl/{name}.serial")))


def _Disk(vc: VirtualCluster, name: str = NAME) -> Path:
    return vc.path(1, f"/srv/ganeti/file-storage/{name}/disk0")


def _GuestWrite(vc: VirtualCluster, name: str = NAME) -> bytes:
    with open(_Disk(vc, name), "rb") as disk:
        disk.seek(test_guest.GUEST_WRITE_OFFSET)
        return disk.read(test_guest.SECTOR).rstrip(b"\0").strip()


def _Leftovers(vc: VirtualCluster, name: str) -> list[str]:
    found = [str(path) for sub in ("pid", "runtime")
             if (path := _Run(vc, f"{sub}/{name}")).exists()]
    found += [str(path) for path in _Run(vc, "ctrl").glob(f"{name}.*")]
    return found



@pytest.fixture(scope="module")
def inst(vc: VirtualCluster) -> Iterator[str]:
    """A running instance with a file disk (and, as root, a bridged NIC)."""
    nics = [] if os.geteuid() == 0 else ["--no-nics"]
    start = time.monotonic()
    _Gnt(vc, "add", "-t", "file", "--disk", "0:size=4M", "-o", "testguest+default",
         "-B", f"memory={MEMORY}", "--no-name-check", "--no-ip-check", "--ignore-ipolicy",
         "-n", vc.names[0], *nics, NAME)
    console = _Console(vc)
    try:
        console.WaitFor(test_guest.HEARTBEAT_RE, BOOT_DEADLINE)
    finally:
        console.Close()
    print(f"gnt-instance add to the first heartbeat: {time.monotonic() - start:.1f}s")
    yield NAME
    _Gnt(vc, "remove", "-f", NAME, check=False)


def test_list_info_and_console_command(vc, inst):
    assert _Status(vc) == "running"
    assert _Field(vc, "oper_ram") == f"{MEMORY}M"
    assert _Field(vc, "oper_vcpus") == "1"
    assert vc.run("gnt-node", "list", "--no-headers", "-o", "pinst_cnt").stdout.split() == ["1"]
    # The command --show-cmd prints reads the serial console from a script
    command = _Gnt(vc, "console", "--show-cmd", inst).stdout.strip()
    proc = subprocess.Popen(command, shell=True, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, start_new_session=True)
    try:
        deadline = time.monotonic() + 10
        seen = b""
        assert proc.stdout is not None
        while not test_guest.HEARTBEAT_RE.search(seen):
            assert time.monotonic() < deadline, seen
            seen += proc.stdout.readline()
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(10)


def test_shutdown_by_acpi_keeps_the_guest_data(vc, inst):
    # This instance's taps (other clusters of the machine may have theirs)
    own_taps = {nic["tap"] for nic in json.loads(_Run(vc, f"runtime/{inst}").read_text())
                ["nics"]}
    console = _Console(vc)
    try:
        start = time.monotonic()
        _Gnt(vc, "shutdown", inst)
        console.WaitFor(test_guest.POWEROFF_RE, 10)
    finally:
        console.Close()
    print(f"ACPI shutdown took {time.monotonic() - start:.1f}s")
    assert _Status(vc) == "ADMIN_down"
    assert _GuestWrite(vc) == b"guest-wrote 1"
    assert _Disk(vc).read_bytes().startswith(b"ganeti-test-guest name=" + inst.encode())
    assert _Leftovers(vc, inst) == []
    assert not own_taps & vc.taps()
    # Started again, the guest counts on from what it wrote
    start = time.monotonic()
    _Gnt(vc, "startup", inst)
    console = _Console(vc)
    try:
        console.WaitFor(test_guest.HEARTBEAT_RE, BOOT_DEADLINE)
    finally:
        console.Close()
    print(f"gnt-instance startup to the first heartbeat: {time.monotonic() - start:.1f}s")
    assert _GuestWrite(vc) == b"guest-wrote 2"


def test_reboot_soft_and_hard(vc, inst):
    for kind, count in (("soft", 3), ("hard", 4)):
        pid = int(_Run(vc, f"pid/{inst}").read_text())
        # A soft reboot resets the same QEMU; a hard one starts a new one
        # (with a new console socket) once the old one stopped
        console = _Console(vc) if kind == "soft" else None
        _Gnt(vc, "reboot", "--type", kind, inst)
        console = console or _Console(vc)
        try:
            match = console.WaitFor(test_guest.WROTE_RE, BOOT_DEADLINE)
            assert int(match.group(1)) == count
            console.WaitFor(test_guest.HEARTBEAT_RE, BOOT_DEADLINE)
        finally:
            console.Close()
        new_pid = int(_Run(vc, f"pid/{inst}").read_text())
        # soft: the same QEMU reset; hard: a new one
        assert (new_pid == pid) == (kind == "soft")
        assert _Status(vc) == "running"


def test_runtime_memory_through_the_balloon(vc, inst):
    _Gnt(vc, "modify", "--runtime-memory", "80", "--force", inst)
    assert _Field(vc, "oper_ram") == "80M"
    with monitor.QmpConnection(str(_Run(vc, f"ctrl/{inst}.qmp"))) as qmp:
        deadline = time.monotonic() + 30
        while qmp.QueryBalloon() != 80 * 1024 * 1024:
            assert time.monotonic() < deadline, qmp.QueryBalloon()
            time.sleep(0.2)  # the guest's balloon driver gives memory back gradually
    _Gnt(vc, "modify", "--runtime-memory", str(MEMORY), "--force", inst)
    assert _Field(vc, "oper_ram") == f"{MEMORY}M"


def test_disk_and_nic_hotplug_seen_by_the_guest(vc, inst):
    assert _Status(vc) == "running"
    console = _Console(vc)
    try:
        console.WaitFor(test_guest.HEARTBEAT_RE, 10)
        _Gnt(vc, "modify", "--ignore-ipolicy", "--hotplug", "--disk", "add:size=8M", inst)
        assert console.WaitFor(test_guest.BLOCK_RE, 30).group(1).split() == [b"vda", b"vdb"]
        _Gnt(vc, "modify", "--ignore-ipolicy", "--hotplug", "--disk", "1:remove", inst)
        assert console.WaitFor(test_guest.BLOCK_RE, 30).group(1).split() == [b"vda"]
        if os.geteuid() == 0:
            # A tap on the cluster's bridge, opened by the node
            taps = vc.taps()
            _Gnt(vc, "modify", "--ignore-ipolicy", "--hotplug", "--net", "add", inst)
            assert b"eth1" in console.WaitFor(test_guest.NET_RE, 30).group(1).split()
            assert len(vc.taps() - taps) == 1
            _Gnt(vc, "modify", "--ignore-ipolicy", "--hotplug", "--net", "1:remove", inst)
            assert b"eth1" not in console.WaitFor(test_guest.NET_RE, 30).group(1).split()
            assert vc.taps() == taps
    finally:
        console.Close()
    assert _Field(vc, "disk.count") == "1"
    # Without hotplug a running instance keeps its disks
    result = _Gnt(vc, "modify", "--ignore-ipolicy", "--no-hotplug", "--disk", "0:remove",
                  inst, check=False)
    assert result.returncode != 0 and "cannot remove disks" in result.stderr


def test_qemu_killed_from_outside_shows_down(vc, inst):
    pidfile = _Run(vc, f"pid/{inst}")
    os.kill(int(pidfile.read_text()), 9)
    _WaitStatus(vc, "ERROR_down")
    # The stale pid file, runtime file and sockets do not stop a new start
    assert pidfile.exists()
    _Gnt(vc, "startup", inst)
    assert _Status(vc) == "running"
    console = _Console(vc)
    try:
        console.WaitFor(test_guest.HEARTBEAT_RE, BOOT_DEADLINE)
    finally:
        console.Close()


def test_qemu_start_failure_leaves_nothing(vc, inst):
    _Gnt(vc, "shutdown", inst)
    taps = vc.taps()
    result = _Gnt(vc, "startup", "-H", "kvm_extra=-no-such-option", inst, check=False)
    assert result.returncode != 0
    assert "qemu-system-x86_64: -no-such-option: invalid option" in result.stderr + result.stdout
    assert _Leftovers(vc, inst) == []
    assert vc.taps() == taps
    assert not _QemuProcesses(vc.directory)
    _Gnt(vc, "startup", inst)
    assert _Status(vc) == "running"


@pytest.mark.parametrize("args,message", [
    (["-H", "no_such_param=1"], "no_such_param"),
    (["-H", "acpi=maybe"], "'acpi' must be a boolean"),
    (["-H", "disk_cache=sometimes"], "'disk_cache' fails syntax check"),
    (["-H", "serial_speed=-1"], "'serial_speed'"),
])
def test_bad_hvparams_refused_by_name(vc, inst, args, message):
    result = _Gnt(vc, "modify", *args, inst, check=False)
    assert result.returncode != 0
    assert message in result.stderr
    result = _Gnt(vc, "add", "-t", "diskless", "-o", "testguest+default", "--no-nics",
                  "--no-name-check", "--no-ip-check", "--ignore-ipolicy", "--no-start",
                  "-n", vc.names[0],
                  "-H", f"kvm:{args[1]}", "kvm-bad.vcluster.test", check=False)
    assert result.returncode != 0
    assert message in result.stderr
    result = vc.run("gnt-cluster", "modify", "-H", f"kvm:{args[1]}", check=False)
    assert result.returncode != 0
    assert message in result.stderr


def test_missing_kernel_refused_by_the_node(vc, inst):
    result = _Gnt(vc, "modify", "-H", "kernel_path=/no/such/vmlinuz", inst, check=False)
    assert result.returncode != 0
    assert re.search(r"kernel_path.*not found", result.stderr), result.stderr


def test_export_zero_free_space_boots_the_zeroing_image(vc):
    """gnt-backup export --zero-free-space for real: QEMU boots the test
    guest with the zeroing image (lib/tools/test_guest.py) on a temporary
    file disk as its first disk; the guest zeroes the instance's disk
    beyond its first MiB and powers off; the export holds the zeroed disk."""
    name = "kvm-zero.vcluster.test"
    node = vc.names[0]
    mib = 1024 * 1024
    nics = [] if os.geteuid() == 0 else ["--no-nics"]
    _Gnt(vc, "add", "-t", "file", "--disk", "0:size=8M", "-o", "testguest+default",
         "-B", f"memory={MEMORY}", "--no-name-check", "--no-ip-check", "--ignore-ipolicy",
         "--no-start", "-n", node, *nics, name)
    disk = _Disk(vc, name)
    with open(disk, "r+b") as fd:
        fd.seek(mib)
        fd.write(os.urandom(7 * mib))
    head = disk.read_bytes()[:mib]
    vc.path(1, "/srv/zeroing.img").write_bytes(test_guest.ZeroingImage())
    vc.run("gnt-cluster", "modify", "--zeroing-image", "/srv/zeroing.img")
    try:
        result = vc.run("gnt-backup", "export", "-n", node, "--compress", "gzip",
                        "--zero-free-space", "--zeroing-timeout-fixed", "240", name)
    finally:
        vc.run("gnt-cluster", "modify", "--zeroing-image", "")
    output = result.stdout + result.stderr
    assert "Zeroing completed" in output, output
    assert "did not complete" not in output
    data = disk.read_bytes()
    assert data[:mib] == head
    assert data[mib:] == bytes(7 * mib)
    # The helper's disk and QEMU are gone; the instance stays down
    assert sorted(p.name for p in disk.parent.iterdir()) == ["disk0"]
    assert _Status(vc, name) == "ADMIN_down"
    assert not _Leftovers(vc, name)
    dumps = [p for p in vc.path(1, f"/srv/ganeti/export/{name}").iterdir()
             if p.name != "config.ini"]
    assert len(dumps) == 1 and dumps[0].read_bytes() == data
    vc.run("gnt-backup", "remove", name)
    _Gnt(vc, "remove", "-f", name)
