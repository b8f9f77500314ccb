"""KVM: a guest's own shutdown under user_shutdown, and disks passed as fds.

No QEMU: the live process and QMP are stand-ins (the real thing runs in
test/integration/test_kvm_user_shutdown.py and test_kvm_security.py).
"""

from __future__ import annotations

import fcntl
import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import ganeti.hypervisor.hv_kvm as hv_kvm
from ganeti import constants, errors
from ganeti.hypervisor import base
from ganeti.hypervisor.hv_kvm import cmdline, hotplug, runtime


@pytest.fixture
def run_dir() -> Iterator[Path]:
    # Short: Unix socket paths are limited to 107 bytes
    with tempfile.TemporaryDirectory(prefix="kvmus-") as path:
        yield Path(path)


class FakeQmp:
    """Answers query-status with ``status``; counts connections."""

    connections: list[str] = []
    status = "running"

    def __init__(self, path: str, timeout: float = 10.0) -> None:
        self.path = path

    def Connect(self, timeout: float = 10.0) -> None:
        FakeQmp.connections.append(self.path)

    def __enter__(self) -> FakeQmp:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def QueryStatus(self) -> dict[str, Any]:
        if FakeQmp.status == "error":
            raise hv_kvm.MonitorError("no answer")
        return {"status": FakeQmp.status, "running": FakeQmp.status == "running"}


def _Hv(run_dir: Path, monkeypatch, user_shutdown: bool) -> hv_kvm.KVMHypervisor:
    hv = hv_kvm.KVMHypervisor(run_dir=str(run_dir))
    monkeypatch.setattr(hv, "_Pid", lambda name: os.getpid())
    monkeypatch.setattr(hv_kvm, "QmpConnection", FakeQmp)
    FakeQmp.connections = []
    FakeQmp.status = "running"
    hvp = cmdline.FillParameters({constants.HV_KVM_USER_SHUTDOWN: user_shutdown})
    runtime.WriteRuntime(runtime.Runtime(
        name="inst1", uuid=str(uuid.uuid4()), argv=[], memory=96, max_memory=96,
        vcpus=1, hvparams=hvp, instance={"name": "inst1"}), str(run_dir))
    events = cmdline.RuntimeFiles.ForInstance("inst1", str(run_dir)).events_qmp
    assert events
    os.makedirs(os.path.dirname(events), exist_ok=True)
    Path(events).touch()
    return hv


def _State(hv: hv_kvm.KVMHypervisor) -> int:
    info = hv.GetInstanceInfo("inst1")
    assert info is not None
    return info[4]


def test_guest_shut_down_reads_as_shutdown(run_dir, monkeypatch):
    hv = _Hv(run_dir, monkeypatch, True)
    assert _State(hv) == base.HvInstanceState.RUNNING
    FakeQmp.status = "shutdown"
    assert _State(hv) == base.HvInstanceState.SHUTDOWN
    # Asked on the events socket, not the node's command socket
    assert FakeQmp.connections and all(path.endswith(".kvmd")
                                       for path in FakeQmp.connections)
    # A QEMU that does not answer counts as running
    FakeQmp.status = "error"
    assert _State(hv) == base.HvInstanceState.RUNNING


def test_without_user_shutdown_qmp_is_not_asked(run_dir, monkeypatch):
    hv = _Hv(run_dir, monkeypatch, False)
    FakeQmp.status = "shutdown"
    assert _State(hv) == base.HvInstanceState.RUNNING
    assert FakeQmp.connections == []


def test_soft_stop_of_a_guest_already_off_kills_qemu(run_dir, monkeypatch):
    hv = _Hv(run_dir, monkeypatch, True)
    killed = []
    monkeypatch.setattr(runtime, "KillPid", killed.append)
    FakeQmp.status = "shutdown"
    hv.StopInstance(None, name="inst1")
    assert killed == [os.getpid()]


class FdQmp:
    """Records add-fd, drive_add and friends; fd set ids count from 0."""

    def __init__(self, fail: str = "") -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.fdsets: dict[int, list[dict[str, Any]]] = {}
        self.fail = fail

    def QueryPci(self) -> list[dict[str, Any]]:
        return [{"bus": 0, "devices": []}]

    def AddFd(self, fd: int, opaque: str = "", fdset_id: int | None = None) -> int:
        mode = fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE
        fdset = len(self.fdsets) if fdset_id is None else fdset_id
        self.fdsets.setdefault(fdset, []).append({"opaque": opaque, "mode": mode})
        self.calls.append(("add-fd", fdset, mode))
        return fdset

    def RemoveFdSet(self, fdset_id: int) -> None:
        self.calls.append(("remove-fd", fdset_id))
        self.fdsets.pop(fdset_id, None)

    def DriveAdd(self, drive_id: str, filename: str, options: str = "") -> None:
        self.calls.append(("drive_add", drive_id, filename))
        if self.fail == "drive_add":
            raise hv_kvm.MonitorError("Could not open")

    def DeviceAdd(self, driver: str, device_id: str, **properties: Any) -> None:
        self.calls.append(("device_add", device_id))

    def DeviceDel(self, device_id: str, timeout: float = 0) -> None:
        self.calls.append(("device_del", device_id))

    def DriveDel(self, drive_id: str) -> None:
        self.calls.append(("drive_del", drive_id))

    def Execute(self, command: str, arguments: Any = None) -> Any:
        assert command == "query-fdsets"
        return [{"fdset-id": fdset, "fds": fds} for fdset, fds in self.fdsets.items()]


def test_hotplugged_disk_is_passed_as_fds(tmp_path):
    disk = tmp_path / "disk1"
    disk.write_bytes(b"\0" * 4096)
    hvp = cmdline.FillParameters({})
    qmp = FdQmp()
    slot = hotplug.AddDisk(qmp, hvp, "disk-x", str(disk), False)  # type: ignore[arg-type]
    assert slot == hvp[constants.HV_KVM_PCI_RESERVATIONS]
    # Read-only and read-write, in one set: QEMU reopens read-write later
    assert qmp.calls[:3] == [("add-fd", 0, os.O_RDONLY), ("add-fd", 0, os.O_RDWR),
                             ("drive_add", "disk-x", "/dev/fdset/0")]
    hotplug.RemoveDisk(qmp, "disk-x")  # type: ignore[arg-type]
    assert ("remove-fd", 0) in qmp.calls and qmp.fdsets == {}

    readonly = FdQmp()
    hotplug.AddDisk(readonly, hvp, "disk-y", str(disk), True)  # type: ignore[arg-type]
    assert [call for call in readonly.calls if call[0] == "add-fd"] == \
        [("add-fd", 0, os.O_RDONLY)]


def test_hotplug_disk_failures_leave_no_fd_set(tmp_path):
    hvp = cmdline.FillParameters({})
    qmp = FdQmp(fail="drive_add")
    disk = tmp_path / "disk1"
    disk.write_bytes(b"\0" * 4096)
    with pytest.raises(hv_kvm.MonitorError):
        hotplug.AddDisk(qmp, hvp, "disk-x", str(disk), False)  # type: ignore[arg-type]
    assert qmp.fdsets == {}
    with pytest.raises(errors.HotplugError, match="Cannot open the disk"):
        hotplug.AddDisk(FdQmp(), hvp, "disk-x", str(tmp_path / "missing"),  # type: ignore[arg-type]
                        False)
