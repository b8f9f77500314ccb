"""ganeti.hypervisor.hv_kvm.monitor against real QEMU processes.

Each test starts ``qemu-system-x86_64 -accel tcg`` (see DESIGN.md: KVM
hangs on this machine) with a QMP socket and no guest (``-S``: the vCPUs
never run) unless it needs one: the hotplug round trip boots the test guest
(lib/tools/test_guest.py; built once and cached), since a PCI device leaves
only when the guest's OS lets it go. Every QEMU is stopped by its pid.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ganeti import errors
from ganeti.hypervisor.hv_kvm import monitor
from ganeti.tools import test_guest

pytestmark = pytest.mark.timeout(120)

QEMU = "qemu-system-x86_64"
MEMORY_MIB = 64


class Qemu:
    """A QEMU process with a QMP socket in a short temporary directory."""

    def __init__(self, directory: Path, args: list[str], name: str = "vm") -> None:
        self.directory = directory
        self.qmp_path = str(directory / f"{name}.qmp")
        cmd = [QEMU, "-accel", "tcg", "-machine", "pc", "-m", str(MEMORY_MIB),
               "-nodefaults", "-no-user-config", "-display", "none",
               "-qmp", f"unix:{self.qmp_path},server=on,wait=off"] + args
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def Connect(self, **kwargs: float) -> monitor.QmpConnection:
        conn = monitor.QmpConnection(self.qmp_path, **kwargs)
        conn.Connect()
        return conn

    def Stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(30)
        if self.proc.stderr is not None:
            self.proc.stderr.close()


@pytest.fixture
def workdir() -> Iterator[Path]:
    # Unix socket paths are limited to 107 bytes: pytest's tmp_path may be longer
    path = Path(tempfile.mkdtemp(prefix="qmp-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def start_qemu(workdir: Path) -> Iterator[Callable[..., Qemu]]:
    """Start QEMUs (extra arguments; paused unless ``run=True``); stopped at the end."""
    started: list[Qemu] = []

    def Start(*args: str, run: bool = False, name: str = "vm") -> Qemu:
        qemu = Qemu(workdir, list(args) + ([] if run else ["-S"]), name)
        started.append(qemu)
        return qemu

    yield Start
    for qemu in started:
        qemu.Stop()


def test_status_stop_cont(start_qemu):
    qemu = start_qemu()
    with qemu.Connect() as conn:
        assert conn.GetVersion() >= (4, 0, 0)
        status = conn.QueryStatus()
        assert status["status"] == "prelaunch" and status["running"] is False
        conn.Cont()
        assert conn.QueryStatus() == {**status, "status": "running", "running": True}
        assert conn.WaitEvent("RESUME", 5)["event"] == "RESUME"
        conn.Stop()
        assert conn.QueryStatus()["status"] == "paused"
        assert conn.WaitEvent("STOP", 5)["event"] == "STOP"


def test_error_answer_carries_qemu_message(start_qemu):
    qemu = start_qemu()
    with qemu.Connect() as conn:
        with pytest.raises(monitor.MonitorError) as err:
            conn.Execute("no-such-command")
        assert isinstance(err.value, errors.HypervisorError)
        assert err.value.error_class == "CommandNotFound"
        assert err.value.desc == "The command no-such-command has not been found"
        assert "CommandNotFound" in str(err.value)
        assert "no-such-command has not been found" in str(err.value)
        assert err.value.command == "no-such-command"
        # A bad argument: QEMU's GenericError with its own words
        with pytest.raises(monitor.MonitorError) as err:
            conn.Execute("balloon", {"value": "many"})
        assert err.value.error_class == "GenericError"
        assert "value" in (err.value.desc or "")
        # The connection still works after errors
        assert conn.QueryStatus()["status"] == "prelaunch"


def test_balloon(start_qemu):
    qemu = start_qemu("-device", "virtio-balloon-pci,id=balloon0")
    with qemu.Connect() as conn:
        assert conn.QueryBalloon() == MEMORY_MIB * 1024 * 1024
        # Without a guest driver the request is accepted and nothing moves
        conn.Balloon(32 * 1024 * 1024)
        assert conn.QueryBalloon() == MEMORY_MIB * 1024 * 1024
        with pytest.raises(monitor.MonitorError) as err:
            conn.Balloon(0)
        assert err.value.error_class == "GenericError"


def test_balloon_without_device(start_qemu):
    qemu = start_qemu()
    with qemu.Connect() as conn, pytest.raises(monitor.MonitorError) as err:
        conn.QueryBalloon()
    assert err.value.error_class == "DeviceNotActive"


def test_vcpu_threads(start_qemu):
    qemu = start_qemu("-smp", "2")
    with qemu.Connect() as conn:
        threads = conn.GetVcpuThreads()
    assert sorted(threads) == [0, 1]
    assert len(set(threads.values())) == 2
    for tid in threads.values():
        assert tid != qemu.proc.pid
        assert os.path.isdir(f"/proc/{qemu.proc.pid}/task/{tid}")


def _QueryPciIds(conn: monitor.QmpConnection) -> set[str]:
    return {device.get("qdev_id", "") for bus in conn.QueryPci()
            for device in bus["devices"]}


def test_blockdev_and_device_add_without_guest(start_qemu, workdir):
    disk = workdir / "hot.img"
    disk.write_bytes(b"\0" * 1024 * 1024)
    qemu = start_qemu()
    with qemu.Connect() as conn:
        conn.BlockdevAdd("hotdisk", str(disk))
        with pytest.raises(monitor.MonitorError) as err:
            conn.BlockdevAdd("hotdisk", str(disk))
        assert "hotdisk" in (err.value.desc or "")
        conn.DeviceAdd("virtio-blk-pci", "hotblk", drive="hotdisk")
        assert "hotblk" in _QueryPciIds(conn)
        with pytest.raises(monitor.MonitorError) as err:
            conn.DeviceAdd("virtio-blk-pci", "hotblk", drive="hotdisk")
        assert err.value.command == "device_add"
        # No OS runs to let the PCI device go: the wait ends in an error
        with pytest.raises(monitor.MonitorError, match="not released by the guest"):
            conn.DeviceDel("hotblk", timeout=0.5)
        assert "hotblk" in _QueryPciIds(conn)


def test_drive_add_through_hmp(start_qemu, workdir):
    # A comma in the path must not end QEMU's option value
    disk = workdir / "drive,1.img"
    disk.write_bytes(b"\0" * 65536)
    qemu = start_qemu()
    with qemu.Connect() as conn:
        conn.DriveAdd("drive-hot", str(disk))
        info = conn.HumanMonitorCommand("info block")
        assert "drive-hot" in info and "drive,1.img" in info, info
        conn.DriveDel("drive-hot")
        assert "drive-hot" not in conn.HumanMonitorCommand("info block")
        with pytest.raises(monitor.MonitorError, match="drive_add"):
            conn.DriveAdd("drive-bad", str(workdir / "missing.img"))


def _OpenTap(name: str) -> int:
    """A tap device, as Ganeti opens one for a NIC (no packet information)."""
    tunsetiff, iff_tap, iff_no_pi, iff_vnet_hdr = 0x400454CA, 0x0002, 0x1000, 0x4000
    fd = os.open("/dev/net/tun", os.O_RDWR)
    try:
        fcntl.ioctl(fd, tunsetiff,
                    struct.pack("16sH22x", name.encode(), iff_tap | iff_no_pi | iff_vnet_hdr))
    except OSError:
        os.close(fd)
        raise
    return fd


needs_tap = pytest.mark.skipif(
    os.geteuid() != 0 or not os.path.exists("/dev/net/tun"),
    reason="creating tap devices needs root and /dev/net/tun")


@needs_tap
def test_netdev_add_with_fd(start_qemu):
    tap = f"gnttap{os.getpid() % 100000}"
    fd = _OpenTap(tap)
    qemu = start_qemu()
    try:
        with qemu.Connect() as conn:
            conn.NetdevAdd("hostnet0", fds=[fd])
            # QEMU holds its own copy of the descriptor now
            os.close(fd)
            fd = -1
            info = conn.HumanMonitorCommand("info network")
            assert "hostnet0" in info and "fd=" in info, info
            conn.DeviceAdd("virtio-net-pci", "nic0", netdev="hostnet0",
                           mac="aa:00:00:11:22:33")
            assert "nic0" in _QueryPciIds(conn)
            with pytest.raises(monitor.MonitorError) as err:
                conn.NetdevAdd("hostnet1", fds=[], netdev_type="tap", fd="unknown-fd")
            assert "unknown-fd" in (err.value.desc or "")
            # the tap interface exists while QEMU holds it
            assert os.path.isdir(f"/sys/class/net/{tap}")
    finally:
        if fd >= 0:
            os.close(fd)


def test_netdev_add_failure_closes_the_passed_fds(start_qemu, workdir):
    qemu = start_qemu()
    with qemu.Connect() as conn, open(workdir / "not-a-tap", "w") as handle:
        with pytest.raises(monitor.MonitorError) as err:
            conn.NetdevAdd("hostnet9", fds=[handle.fileno()], no_such_option="x")
        assert err.value.command == "netdev_add"
        assert "no-such-option" in (err.value.desc or "")
        # QEMU's copy was closed: the name is gone
        with pytest.raises(monitor.MonitorError) as err:
            conn.CloseFd("hostnet9-fd0")
        assert "hostnet9-fd0" in (err.value.desc or "")


def test_send_fd_and_close_fd(start_qemu, workdir):
    qemu = start_qemu()
    with qemu.Connect() as conn, open(workdir / "some-file", "w") as handle:
        conn.SendFd(handle.fileno(), "myfd")
        conn.CloseFd("myfd")
        with pytest.raises(monitor.MonitorError) as err:
            conn.CloseFd("myfd")
        assert "myfd" in (err.value.desc or "")


def test_set_vnc_password(start_qemu, workdir):
    qemu = start_qemu("-vnc", f"unix:{workdir / 'vnc.sock'},password=on")
    with qemu.Connect() as conn:
        conn.SetVncPassword("secret")
    plain = start_qemu(name="novnc")
    with plain.Connect() as conn, pytest.raises(monitor.MonitorError):
        conn.SetVncPassword("secret")


def test_powerdown_and_reset_events(start_qemu):
    qemu = start_qemu(run=True)
    with qemu.Connect() as conn:
        conn.SystemReset()
        assert conn.WaitEvent("RESET", 5)["data"]["guest"] is False
        # No OS answers the ACPI button: QEMU reports the press, keeps running
        conn.SystemPowerdown()
        conn.WaitEvent("POWERDOWN", 5)
        assert conn.QueryStatus()["status"] == "running"
        with pytest.raises(monitor.MonitorError, match="no SHUTDOWN event"):
            conn.WaitEvent("SHUTDOWN", 0.2)


def test_quit(start_qemu):
    qemu = start_qemu()
    conn = qemu.Connect()
    try:
        conn.Quit()
        assert qemu.proc.wait(10) == 0
        event = conn.WaitEvent("SHUTDOWN", 5)
        assert event["data"]["reason"] == "host-qmp-quit"
        with pytest.raises(monitor.MonitorError, match="closed"):
            conn.QueryStatus()
    finally:
        conn.Close()
    conn.Close()  # twice is harmless


def test_wait_event_ends_when_qemu_dies(start_qemu):
    qemu = start_qemu()
    with qemu.Connect() as conn:
        killer = threading.Timer(0.3, qemu.proc.kill)
        killer.start()
        try:
            with pytest.raises(monitor.MonitorError, match="closed"):
                conn.WaitEvent("SHUTDOWN", 60)
        finally:
            killer.cancel()
        assert qemu.proc.wait(10) != 0


def test_command_timeout_and_death_midway(start_qemu):
    qemu = start_qemu()
    with qemu.Connect() as conn:
        # A stopped QEMU reads nothing: the command times out...
        os.kill(qemu.proc.pid, signal.SIGSTOP)
        try:
            with pytest.raises(monitor.MonitorError, match="no answer .* within 0.5s"):
                conn.Execute("query-status", timeout=0.5)
        finally:
            os.kill(qemu.proc.pid, signal.SIGCONT)
        # ...and its late answer does not confuse the next command
        assert conn.QueryStatus()["status"] == "prelaunch"
        assert conn.QueryStatus()["status"] == "prelaunch"
        # QEMU dying while a command waits ends the wait at once
        os.kill(qemu.proc.pid, signal.SIGSTOP)
        killer = threading.Timer(0.3, qemu.proc.kill)
        killer.start()
        started = time.monotonic()
        try:
            with pytest.raises(monitor.MonitorError, match="is closed"):
                conn.Execute("query-status", timeout=60)
        finally:
            killer.cancel()
        assert time.monotonic() - started < 30
        with pytest.raises(monitor.MonitorError, match="is closed"):
            conn.QueryStatus()


def test_connection_not_usable_in_forked_child(start_qemu):
    qemu = start_qemu()
    with qemu.Connect() as conn:
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: report what the parent's connection does
            try:
                conn.QueryStatus()
                message = b"no error"
            except monitor.MonitorError as err:
                message = str(err).encode()
            with contextlib.suppress(BaseException):
                os.write(write_end, message)
            os._exit(0)
        os.close(write_end)
        with os.fdopen(read_end, "rb") as reader:
            message = reader.read()
        assert os.waitpid(pid, 0)[1] == 0
        assert b"a forked child must open its own" in message, message
        # The parent's connection is unaffected
        assert conn.QueryStatus()["status"] == "prelaunch"


def test_get_events(start_qemu):
    qemu = start_qemu()
    with qemu.Connect() as conn:
        conn.Cont()
        conn.Stop()
        conn.WaitEvent("STOP", 5)
        assert [event["event"] for event in conn.GetEvents()] == ["RESUME"]
        assert conn.GetEvents() == []


def _WaitRunstate(conn: monitor.QmpConnection, wanted: str, timeout: float) -> str:
    """Poll the run state until it is ``wanted`` or ``timeout`` passes; the
    last state seen. QEMU sends the "completed" MIGRATION event while the
    source may still be in "finish-migrate", and its move on to
    "postmigrate" sends no event."""
    deadline = time.monotonic() + timeout
    while True:
        status = conn.QueryStatus()["status"]
        if status == wanted or time.monotonic() > deadline:
            return status
        time.sleep(0.05)


def _FreeTcpUri() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"tcp:127.0.0.1:{probe.getsockname()[1]}"


def _WaitMigration(conn: monitor.QmpConnection, timeout: float) -> str:
    """The status of the next MIGRATION event other than setup (events capability)."""
    event = conn.WaitEvent("MIGRATION", timeout, lambda data: data["status"] != "setup")
    return event["data"]["status"]


def test_migrate(start_qemu):
    uri = _FreeTcpUri()
    source = start_qemu(run=True, name="src")
    target = start_qemu("-incoming", uri, run=True, name="dst")
    # The target listens once its monitor answers
    with target.Connect() as dst, source.Connect() as src:
        assert dst.QueryStatus()["status"] == "inmigrate"
        assert src.QueryMigrate() == {}
        src.MigrateSetCapabilities({"events": True, "xbzrle": False})
        src.MigrateSetParameters(downtime_limit=300, max_bandwidth=512 * 1024 * 1024)
        with pytest.raises(monitor.MonitorError) as err:
            src.MigrateSetCapabilities({"no-such-capability": True})
        assert err.value.error_class == "GenericError"
        src.Migrate(uri)
        assert _WaitMigration(src, 60) == "active"
        assert _WaitMigration(src, 60) == "completed"
        result = src.QueryMigrate()
        assert result["status"] == "completed"
        assert result["ram"]["total"] >= MEMORY_MIB * 1024 * 1024
        assert _WaitRunstate(src, "postmigrate", 10) == "postmigrate"
        dst.WaitEvent("RESUME", 30)
        assert dst.QueryStatus()["status"] == "running"
        src.MigrateCancel()  # nothing to cancel: no error
    assert target.proc.poll() is None


def test_migrate_cancel(start_qemu):
    # 1 KiB/s: the first pass over 64 MiB of (zero) pages takes minutes, so
    # the migration is still active when cancelled, however slow the machine
    uri = _FreeTcpUri()
    source = start_qemu(run=True, name="src")
    target = start_qemu("-incoming", uri, run=True, name="dst")
    with target.Connect() as dst, source.Connect() as src:
        assert dst.QueryStatus()["status"] == "inmigrate"
        src.MigrateSetCapabilities({"events": True})
        src.MigrateSetParameters(max_bandwidth=1024)
        src.Migrate(uri)
        assert _WaitMigration(src, 30) == "active"
        assert src.QueryMigrate()["status"] == "active"
        src.MigrateCancel()
        assert _WaitMigration(src, 30) == "cancelling"
        assert _WaitMigration(src, 30) == "cancelled"
        assert src.QueryMigrate()["status"] == "cancelled"
        # The guest goes on running at the source
        assert src.QueryStatus() == {"status": "running", "running": True,
                                     "singlestep": False}
    # The target gets a broken stream and exits with an error
    assert target.proc.wait(30) != 0
    assert target.proc.stderr is not None
    assert b"load of migration failed" in target.proc.stderr.read()


def test_migrate_bandwidth_too_low(start_qemu):
    qemu = start_qemu()
    with qemu.Connect() as conn:
        # QEMU would take it as "no limit": refused before it gets there
        with pytest.raises(monitor.MonitorError,
                           match="max_bandwidth must be at least 10 bytes/s.*got 9"):
            conn.MigrateSetParameters(max_bandwidth=9)
        with pytest.raises(monitor.MonitorError, match="max_postcopy_bandwidth.*got 0"):
            conn.MigrateSetParameters(max_postcopy_bandwidth=0)
        conn.MigrateSetParameters(max_bandwidth=10)
        assert conn.Execute("query-migrate-parameters")["max-bandwidth"] == 10


def test_migrate_postcopy(start_qemu):
    uri = _FreeTcpUri()
    source = start_qemu(run=True, name="src")
    target = start_qemu("-incoming", uri, run=True, name="dst")
    with target.Connect() as dst, source.Connect() as src:
        dst.MigrateSetCapabilities({"postcopy-ram": True})
        src.MigrateSetCapabilities({"events": True, "postcopy-ram": True})
        # Precopy crawls (see test_migrate_cancel); postcopy is not limited
        src.MigrateSetParameters(max_bandwidth=1024)
        src.Migrate(uri)
        assert _WaitMigration(src, 30) == "active"
        src.MigrateStartPostcopy()
        assert _WaitMigration(src, 60) == "postcopy-active"
        assert _WaitMigration(src, 60) == "completed"
        dst.WaitEvent("RESUME", 30)
        assert dst.QueryStatus()["status"] == "running"
        assert _WaitRunstate(src, "postmigrate", 10) == "postmigrate"


def test_connect_errors(workdir):
    missing = str(workdir / "missing.qmp")
    with pytest.raises(monitor.MonitorError, match="Cannot connect"):
        monitor.QmpConnection(missing).Connect(timeout=0.3)
    # A socket that accepts and never greets: the handshake times out
    silent = str(workdir / "silent.qmp")
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(silent)
        server.listen(1)
        with pytest.raises(monitor.MonitorError, match="timed out"):
            monitor.QmpConnection(silent).Connect(timeout=0.5)
    conn = monitor.QmpConnection(missing)
    with pytest.raises(monitor.MonitorError, match="Not connected"):
        conn.QueryStatus()


def test_connect_waits_for_the_socket(start_qemu):
    # Connect right after starting QEMU: the socket appears a moment later
    qemu = start_qemu()
    conn = monitor.QmpConnection(qemu.qmp_path)
    conn.Connect(timeout=20)
    try:
        assert conn.QueryStatus()["status"] == "prelaunch"
    finally:
        conn.Close()


def test_calls_from_several_threads(start_qemu):
    qemu = start_qemu()
    results: list[str] = []
    with qemu.Connect() as conn:
        def Worker() -> None:
            for _ in range(20):
                results.append(conn.QueryStatus()["status"])
        threads = [threading.Thread(target=Worker) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    assert results == ["prelaunch"] * 80


# --- with the test guest ------------------------------------------------------

@pytest.fixture(scope="module")
def guest() -> test_guest.Guest:
    return test_guest.EnsureGuest()


def _Line(text: bytes) -> re.Pattern[bytes]:
    """A whole line the guest prints (see test_guest.INIT_SCRIPT)."""
    return re.compile(b"^test-guest: " + re.escape(text) + b"$")


@pytest.mark.slow
@needs_tap
def test_hotplug_round_trip_with_guest(guest, workdir):
    disk = workdir / "disk0.img"
    disk.write_bytes(b"hotplug-test\n" + b"\0" * (1024 * 1024 - 13))
    hot = workdir / "hot.img"
    hot.write_bytes(b"\0" * 1024 * 1024)
    serial = str(workdir / "serial.sock")
    qmp = str(workdir / "guest.qmp")
    proc = subprocess.Popen(test_guest.QemuCommand(guest, serial, qmp, disk=str(disk)),
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    tap = f"gnthp{os.getpid() % 100000}"
    fd = _OpenTap(tap)
    console = None
    try:
        console = test_guest.SerialConsole(serial)
        # The guest lists its devices after its first heartbeat
        console.WaitFor(_Line(b"block: vda"), 60)
        with monitor.QmpConnection(qmp) as conn:
            # A disk: the guest sees vdb come and go
            conn.BlockdevAdd("hotdisk", str(hot))
            conn.DeviceAdd("virtio-blk-pci", "hotblk", drive="hotdisk")
            console.WaitFor(_Line(b"block: vda vdb"), 30)
            conn.DeviceDel("hotblk", timeout=60)
            console.WaitFor(_Line(b"block: vda"), 30)
            conn.BlockdevDel("hotdisk")
            # A NIC on a tap descriptor passed over the socket
            conn.NetdevAdd("hostnet0", fds=[fd])
            conn.DeviceAdd("virtio-net-pci", "hotnic", netdev="hostnet0")
            console.WaitFor(_Line(b"net: eth0 lo"), 30)
            conn.DeviceDel("hotnic", timeout=60)
            console.WaitFor(_Line(b"net: lo"), 30)
            conn.NetdevDel("hostnet0")
            # Still alive
            console.WaitFor(test_guest.HEARTBEAT_RE, 10)
            conn.Quit()
        assert proc.wait(30) == 0
    finally:
        os.close(fd)
        if console is not None:
            console.Close()
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
