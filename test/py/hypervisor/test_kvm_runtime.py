"""The KVM hypervisor's runtime files and process checks (no QEMU needed).

A stand-in for QEMU (``fake-qemu``, a Python script written per test)
daemonizes like QEMU does: it writes the pid of a detached grandchild
to the ``-pidfile`` path and exits, and the grandchild's command line is
the whole QEMU argv, so the process checks see it as the instance's
QEMU. Every such process is killed by its pid at the end of the test.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from ganeti import constants, errors, objects
from ganeti.hypervisor import base
from ganeti.hypervisor.hv_kvm import KVMHypervisor, PinVcpus, SerialConsoleCommand, \
    _MemoryAndVcpus, cmdline, hotplug, runtime

FAKE_QEMU = textwrap.dedent("""\
    #!{python}
    import os, sys, time
    args = sys.argv[1:]
    if "-fail" in args:
        print("qemu-system-x86_64: -fail: invalid option", file=sys.stderr)
        sys.exit(1)
    pidfile = args[args.index("-pidfile") + 1]
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            null = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(null, fd)
            with open(pidfile + ".tmp", "w") as fd:
                fd.write(str(os.getpid()))
            os.rename(pidfile + ".tmp", pidfile)
            time.sleep(300)
        os._exit(0)
    deadline = time.monotonic() + 10
    while not os.path.exists(pidfile) and time.monotonic() < deadline:
        time.sleep(0.01)
    os.wait()
    """)


@pytest.fixture
def run_dir() -> Iterator[Path]:
    # Unix socket paths are limited to 107 bytes: pytest's tmp_path may be longer
    path = Path(tempfile.mkdtemp(prefix="kvmrt-"))
    yield path
    for pidfile in (path / "pid").glob("*"):
        pid = runtime.InstancePid(pidfile.name, str(path))
        if pid:
            os.kill(pid, 9)
    subprocess.run(["rm", "-rf", str(path)], check=False)


@pytest.fixture
def fake_qemu(run_dir: Path) -> str:
    script = run_dir / "fake-qemu"
    script.write_text(FAKE_QEMU.format(python=sys.executable))
    script.chmod(0o755)
    return str(script)


def _Instance(name: str, kvm_path: str, **hvparams) -> objects.Instance:
    hvp = {constants.HV_KVM_PATH: kvm_path, constants.HV_KVM_FLAG: "disabled",
           constants.HV_SERIAL_CONSOLE: True, **hvparams}
    return objects.Instance(name=name, uuid=str(uuid.uuid4()), hypervisor="kvm",
                            hvparams=hvp, beparams={"maxmem": 96, "minmem": 64, "vcpus": 2},
                            nics=[], disks=[], network_port=None)


def _Runtime(name: str = "inst1", **changes) -> runtime.Runtime:
    values = dict(name=name, uuid=str(uuid.uuid4()), argv=["qemu", "-name", name],
                  memory=96, max_memory=128, vcpus=2, hvparams={"acpi": True},
                  instance={"name": name})
    values.update(changes)
    return runtime.Runtime(**values)


# --- runtime files ----------------------------------------------------------------------


def test_runtime_round_trip(run_dir):
    state = _Runtime(nics=[{"index": 0, "tap": "gnt1-0"}],
                     hotplugged=[{"kind": "disk", "id": "disk-x"}])
    runtime.WriteRuntime(state, str(run_dir))
    path = run_dir / "runtime" / "inst1"
    assert path.stat().st_mode & 0o777 == 0o600
    assert runtime.ReadRuntime("inst1", str(run_dir)) == state
    runtime.RemoveRuntime("inst1", str(run_dir))
    assert runtime.ReadRuntime("inst1", str(run_dir)) is None
    runtime.RemoveRuntime("inst1", str(run_dir))  # twice is fine


def test_runtime_from_newer_writer_keeps_known_fields():
    data = _Runtime().ToDict()
    data["something_new"] = [1, 2]
    assert runtime.Runtime.FromDict(data).memory == 96


@pytest.mark.parametrize("change,message", [
    ({"memory": "96"}, "'memory' must be a int"),
    ({"argv": "qemu -m 96"}, "'argv' must be a list"),
    ({"name": None}, "'name' must be a str"),
])
def test_runtime_bad_fields(change, message):
    data = _Runtime().ToDict()
    data.update(change)
    with pytest.raises(errors.HypervisorError, match=message):
        runtime.Runtime.FromDict(data)


def test_runtime_missing_field():
    data = _Runtime().ToDict()
    del data["vcpus"]
    with pytest.raises(errors.HypervisorError, match="Incomplete runtime data"):
        runtime.Runtime.FromDict(data)


@pytest.mark.parametrize("content", ["{not json", "[1, 2]", '{"name": "x"}'])
def test_corrupt_runtime_file_names_the_file(run_dir, content):
    (run_dir / "runtime").mkdir()
    (run_dir / "runtime" / "inst1").write_text(content)
    with pytest.raises(errors.HypervisorError, match=f"{run_dir}/runtime/inst1"):
        runtime.ReadRuntime("inst1", str(run_dir))


@pytest.mark.parametrize("name", ["", "a/b", ".hidden", None])
def test_bad_instance_names(name):
    with pytest.raises(errors.HypervisorError, match="Invalid instance name"):
        runtime.RuntimePath(name)


# --- process checks -------------------------------------------------------------------


@pytest.mark.parametrize("argv,expected", [
    (["qemu", "-name", "inst1", "-pidfile", "/r/pid/inst1"], True),
    (["qemu", "-name", "inst1", "-pidfile", "/other/pid/inst1"], False),
    (["qemu", "-name", "inst2", "-pidfile", "/r/pid/inst1"], False),
    (["qemu", "-pidfile", "/r/pid/inst1"], False),
    (["qemu", "-name"], False),
    ([], False),
    (None, False),
])
def test_is_instance_process(argv, expected):
    assert runtime.IsInstanceProcess(argv, "inst1", "/r/pid/inst1") is expected


def test_is_instance_process_name_with_comma():
    # cmdline doubles commas in -name (QEMU's option syntax)
    argv = ["qemu", "-name", "a,,b", "-pidfile", "/r/pid/a,b"]
    assert runtime.IsInstanceProcess(argv, "a,b", "/r/pid/a,b")


def test_stale_pid_files(run_dir):
    (run_dir / "pid").mkdir()
    # A pid that does not exist (beyond pid_max)
    (run_dir / "pid" / "gone").write_text("4194305\n")
    # A live process that is not that instance's QEMU: this test's own
    (run_dir / "pid" / "reused").write_text(f"{os.getpid()}\n")
    (run_dir / "pid" / "garbage").write_text("not a pid\n")
    for name in ("gone", "reused", "garbage", "missing"):
        assert runtime.InstancePid(name, str(run_dir)) is None
    assert sorted(runtime.PidFileNames(str(run_dir))) == ["garbage", "gone", "reused"]
    hv = KVMHypervisor(run_dir=str(run_dir))
    assert hv.ListInstances() == []
    assert hv.GetAllInstancesInfo() == []
    assert hv.GetInstanceInfo("reused") is None


def test_pid_file_names_without_directory(run_dir):
    assert runtime.PidFileNames(str(run_dir / "nothing")) == []


def test_read_cmdline_and_cpu_time():
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)",
                             "-name", "x"])
    try:
        deadline = time.monotonic() + 10
        while runtime.ReadCmdline(proc.pid) != [sys.executable, "-c",
                                                "import time; time.sleep(60)", "-name", "x"]:
            assert time.monotonic() < deadline
            time.sleep(0.01)  # until the exec happened
        assert runtime.CpuTime(proc.pid) >= 0.0
    finally:
        proc.kill()
        proc.wait()
    assert runtime.ReadCmdline(proc.pid) is None
    assert runtime.CpuTime(proc.pid) == 0.0


def test_memory_and_vcpus_from_a_command_line():
    assert _MemoryAndVcpus(["qemu", "-m", "128", "-smp", "4,sockets=2"]) == (128, 4)
    assert _MemoryAndVcpus(["qemu", "-m", "size=x"]) == (0, 0)


def test_pin_vcpus_sets_affinity():
    proc = subprocess.Popen(["sleep", "60"])
    try:
        PinVcpus({0: proc.pid}, "0", 1)
        assert os.sched_getaffinity(proc.pid) == {0}
        PinVcpus({0: proc.pid}, "all", 1)
        assert os.sched_getaffinity(proc.pid) == set(range(os.cpu_count() or 1))
        with pytest.raises(errors.HypervisorError, match="Cannot pin vCPU 0"):
            PinVcpus({0: proc.pid}, "4096", 1)
    finally:
        proc.kill()
        proc.wait()


# --- the hypervisor on a stand-in QEMU -------------------------------------------------------


def test_start_list_info_stop_cleanup(run_dir, fake_qemu):
    hv = KVMHypervisor(run_dir=str(run_dir))
    inst = _Instance("inst1", fake_qemu)
    hv.StartInstance(inst, [], False)
    pid = runtime.InstancePid("inst1", str(run_dir))
    assert pid
    assert hv.ListInstances() == ["inst1"]
    info = hv.GetInstanceInfo("inst1")
    assert info is not None and info[:5] == ("inst1", pid, 96, 2, base.HvInstanceState.RUNNING)
    state = runtime.ReadRuntime("inst1", str(run_dir))
    assert state is not None and state.argv[0] == fake_qemu
    assert state.argv == runtime.ReadCmdline(pid)[1:]
    assert (state.memory, state.max_memory, state.vcpus) == (96, 96, 2)
    assert hv.GetNodeInfo()["instances_memory"] == 96

    # A node daemon restarted meanwhile (a new object) still finds it
    again = KVMHypervisor(run_dir=str(run_dir))
    assert [i[0] for i in again.GetAllInstancesInfo()] == ["inst1"]
    with pytest.raises(errors.HypervisorError, match="already running"):
        again.StartInstance(inst, [], False)

    again.CleanupInstance("inst1")  # nothing while it runs
    assert runtime.ReadRuntime("inst1", str(run_dir)) is not None
    again.StopInstance(inst, force=True)
    assert runtime.WaitGone(pid, 10)
    assert again.ListInstances() == []
    again.CleanupInstance("inst1")
    assert list((run_dir / "runtime").iterdir()) == []
    assert list((run_dir / "pid").iterdir()) == []


def test_soft_stop_without_acpi_kills(run_dir, fake_qemu):
    hv = KVMHypervisor(run_dir=str(run_dir))
    inst = _Instance("inst1", fake_qemu, acpi=False)
    hv.StartInstance(inst, [], False)
    hv.StopInstance(inst)
    assert hv.GetInstanceInfo("inst1") is None
    hv.StopInstance(None, name="inst1")  # not running: nothing to do


def test_start_failure_gives_qemu_message_and_leaves_nothing(run_dir, fake_qemu):
    hv = KVMHypervisor(run_dir=str(run_dir))
    inst = _Instance("inst1", fake_qemu, kvm_extra="-fail")
    with pytest.raises(errors.HypervisorError,
                       match="qemu-system-x86_64: -fail: invalid option"):
        hv.StartInstance(inst, [], False)
    for sub in ("pid", "ctrl", "runtime"):
        assert list((run_dir / sub).iterdir()) == []


def test_start_after_a_crash_cleans_stale_files(run_dir, fake_qemu):
    hv = KVMHypervisor(run_dir=str(run_dir))
    inst = _Instance("inst1", fake_qemu)
    hv.StartInstance(inst, [], False)
    pid = runtime.InstancePid("inst1", str(run_dir))
    os.kill(pid, 9)
    assert runtime.WaitGone(pid, 10)
    assert hv.ListInstances() == []
    assert (run_dir / "runtime" / "inst1").exists()
    hv.StartInstance(inst, [], False)
    assert runtime.InstancePid("inst1", str(run_dir)) not in (None, pid)


def test_reboot_and_balloon_need_a_running_instance(run_dir, fake_qemu):
    hv = KVMHypervisor(run_dir=str(run_dir))
    inst = _Instance("inst1", fake_qemu)
    with pytest.raises(errors.HypervisorError, match="not running"):
        hv.RebootInstance(inst)
    with pytest.raises(errors.HypervisorError, match="not running"):
        hv.BalloonInstanceMemory(inst, 64)
    hv.StartInstance(inst, [], False)
    with pytest.raises(errors.HypervisorError, match="started with 96 MiB"):
        hv.BalloonInstanceMemory(inst, 128)


def test_runtime_records_disks(run_dir, fake_qemu):
    hv = KVMHypervisor(run_dir=str(run_dir))
    inst = _Instance("inst1", fake_qemu)
    image = run_dir / "disk0"
    image.write_bytes(b"\0" * 4096)
    disk = objects.Disk(uuid=str(uuid.uuid4()), mode=constants.DISK_RDWR)
    hv.StartInstance(inst, [(disk, str(image), None)], False)
    state = runtime.ReadRuntime("inst1", str(run_dir))
    assert state is not None
    assert state.disks == [{"path": str(image), "mode": "rw", "name": disk.uuid, "uri": None}]
    assert f"file={image},format=raw" in " ".join(state.argv)
    assert json.loads((run_dir / "runtime" / "inst1").read_text())["version"] == 1


# --- console ----------------------------------------------------------------------------


def test_serial_console_command():
    command = SerialConsoleCommand("/r/ctrl/inst1.serial")
    assert command[:2] == ["/bin/sh", "-c"]
    assert "socat STDIO,raw,echo=0,escape=0x1d UNIX-CONNECT:/r/ctrl/inst1.serial" in command[2]
    assert "socat -u UNIX-CONNECT:/r/ctrl/inst1.serial STDOUT" in command[2]


def test_console_kinds():
    inst = _Instance("inst1", "/usr/bin/qemu-system-x86_64")
    node = objects.Node(name="node1", primary_ip="192.0.2.1")
    console = KVMHypervisor.GetInstanceConsole(inst, node, None, inst.hvparams, {})
    assert (console.kind, console.host, console.user) == (constants.CONS_SSH, "node1", "root")
    assert console.command == SerialConsoleCommand(
        cmdline.RuntimeFiles.ForInstance("inst1").serial)
    inst.network_port = 5901
    hvp = dict(inst.hvparams, serial_console=False, vnc_bind_address="0.0.0.0")
    console = KVMHypervisor.GetInstanceConsole(inst, node, None, hvp, {})
    assert (console.kind, console.host, console.port, console.display) == \
        (constants.CONS_VNC, "192.0.2.1", 5901, 1)
    hvp = dict(inst.hvparams, serial_console=False)
    console = KVMHypervisor.GetInstanceConsole(inst, node, None, hvp, {})
    assert console.kind == constants.CONS_MESSAGE


def test_verify(run_dir):
    hv = KVMHypervisor(run_dir=str(run_dir))
    assert "kvm_path" in hv.Verify({constants.HV_KVM_PATH: "/no/such/qemu"})
    assert hv.Verify({constants.HV_KVM_PATH: sys.executable}) is None


# --- hotplug checks ------------------------------------------------------------------


class _FakeQmp:
    def __init__(self, slots):
        self.slots = slots

    def QueryPci(self):
        return [{"bus": 0, "devices": [{"slot": slot} for slot in self.slots]},
                {"bus": 1, "devices": [{"slot": 12}]}]


def test_free_pci_slot():
    assert hotplug.FreePciSlot(_FakeQmp([0, 1, 2, 12, 13]), 12) == 14
    assert hotplug.FreePciSlot(_FakeQmp([0, 1]), 12) == 12
    with pytest.raises(errors.HotplugError, match="No free PCI slot"):
        hotplug.FreePciSlot(_FakeQmp(range(32)), 12)


@pytest.mark.parametrize("changes,action,dev_type,message", [
    ({}, constants.HOTPLUG_ACTION_MODIFY, constants.HOTPLUG_TARGET_NIC, "cannot be modified"),
    ({}, constants.HOTPLUG_ACTION_ADD, "cdrom", "Cannot hotplug a device of type"),
    ({"disk_type": "ide"}, constants.HOTPLUG_ACTION_ADD, constants.HOTPLUG_TARGET_DISK,
     "disk_type=paravirtual"),
    ({"nic_type": "ne2k_isa"}, constants.HOTPLUG_ACTION_REMOVE,
     constants.HOTPLUG_TARGET_NIC, "PCI NIC"),
])
def test_hotplug_unsupported(changes, action, dev_type, message):
    hvp = cmdline.FillParameters(changes)
    with pytest.raises(errors.HotplugError, match=message):
        hotplug.CheckSupported(hvp, action, dev_type)


def test_hotplug_supported():
    hvp = cmdline.FillParameters({})
    for dev_type in constants.HOTPLUG_ALL_TARGETS:
        for action in (constants.HOTPLUG_ACTION_ADD, constants.HOTPLUG_ACTION_REMOVE):
            hotplug.CheckSupported(hvp, action, dev_type)


def test_hotplug_needs_a_running_instance(run_dir):
    hv = KVMHypervisor(run_dir=str(run_dir))
    inst = _Instance("inst1", "/usr/bin/qemu-system-x86_64")
    with pytest.raises(errors.HotplugError, match="not running"):
        hv.HotplugSupported(inst)


def test_reboot_with_reboot_behavior_exit_restarts_qemu(run_dir, fake_qemu):
    # QEMU would exit on a reset (-no-reboot): the node starts it again from
    # the runtime file, with the same disks
    hv = KVMHypervisor(run_dir=str(run_dir))
    inst = _Instance("inst1", fake_qemu, reboot_behavior=constants.INSTANCE_REBOOT_EXIT)
    image = run_dir / "disk0"
    image.write_bytes(b"\0" * 4096)
    disk = objects.Disk(uuid=str(uuid.uuid4()), mode=constants.DISK_RDWR)
    inst.disks = [disk]  # as the node receives it: whole disks
    hv.StartInstance(inst, [(disk, str(image), None)], False)
    pid = runtime.InstancePid("inst1", str(run_dir))
    before = runtime.ReadRuntime("inst1", str(run_dir))
    assert before is not None and "-no-reboot" in before.argv
    hv.RebootInstance(inst)
    new_pid = runtime.InstancePid("inst1", str(run_dir))
    assert new_pid not in (None, pid)
    after = runtime.ReadRuntime("inst1", str(run_dir))
    assert after is not None and after.argv == before.argv and after.disks == before.disks
