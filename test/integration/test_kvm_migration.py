"""Live migration of real QEMU guests between the two nodes of a kvm
virtual cluster (``make vcluster VCLUSTER_HV=kvm``, QEMU's software
accelerator, the test guest of doc/test-guest.rst).

The guest prints "heartbeat N" on its serial console about once a second.
A migration is seen through it: the source's console socket is read until
it closes (the source's QEMU stops once the migration is over), then the
target's; the counter goes on from where it was, with no reboot. Failures
are made on the target only: its migration port taken by the test, or its
QEMU killed in the middle of a bandwidth-limited migration. Every wait reads
a console or a command's output up to a deadline; the cluster's stop kills
every QEMU by its pid file.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from ganeti import constants
from ganeti.tools import test_guest

from .vcluster import VirtualCluster, virtual_cluster

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

NAME = "mig1.vcluster.test"
KVM_RUN = "/var/run/ganeti/kvm-hypervisor"
MEMORY = 96
BOOT_DEADLINE = 60
MIGRATE_DEADLINE = 180
#: A line no guest prints: read a console until it closes
_NEVER = re.compile(rb"^\0never\0$")
#: Heartbeats the guest may print unseen while the console moves over
_MAX_GAP = 30


@pytest.fixture(scope="module")
def vc() -> Iterator[VirtualCluster]:
    with virtual_cluster(nodes=2, use_make=True, hypervisor=constants.HT_KVM) as cluster:
        cluster.run("gnt-cluster", "modify", "--enabled-disk-templates",
                    "file,sharedfile,diskless")
        yield cluster
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
    return vc.run("gnt-instance", *args, check=check, timeout=MIGRATE_DEADLINE)


def _Fields(vc: VirtualCluster, fields: str) -> list[str]:
    out = _Gnt(vc, "list", "--no-headers", "--separator=|", "-o", fields, NAME).stdout
    return out.strip().split("|")


def _Run(vc: VirtualCluster, node: int, path: str) -> Path:
    return vc.path(node, f"{KVM_RUN}/{path}")


def _Console(vc: VirtualCluster, node: int) -> test_guest.SerialConsole:
    return test_guest.SerialConsole(str(_Run(vc, node, f"ctrl/{NAME}.serial")))


def _Heartbeats(lines: list[bytes]) -> list[int]:
    return [int(m.group(1)) for line in lines
            if (m := test_guest.HEARTBEAT_RE.search(line))]


def _Leftovers(vc: VirtualCluster, node: int) -> list[str]:
    found = [str(path) for sub in ("pid", "runtime")
             if (path := _Run(vc, node, f"{sub}/{NAME}")).exists()]
    found += [str(path) for path in _Run(vc, node, "ctrl").glob(f"{NAME}.*")]
    return found


def _NodeQemus(vc: VirtualCluster, node: int) -> list[int]:
    return _QemuProcesses(vc.node(node).root)


def _Where(vc: VirtualCluster) -> int:
    pnode, status = _Fields(vc, "pnode,status")
    assert status == "running"
    return vc.names.index(pnode) + 1


@pytest.fixture(scope="module")
def inst(vc: VirtualCluster) -> Iterator[str]:
    """A running guest on node 1 with a sharedfile disk (and, as root, a
    bridged NIC)."""
    nics = [] if os.geteuid() == 0 else ["--no-nics"]
    _Gnt(vc, "add", "-t", "sharedfile", "--disk", "0:size=4M", "-o", "testguest+default",
         "-B", f"memory={MEMORY}", "--no-name-check", "--no-ip-check", "--ignore-ipolicy",
         "-n", vc.names[0], *nics, NAME)
    console = _Console(vc, 1)
    try:
        console.WaitFor(test_guest.HEARTBEAT_RE, BOOT_DEADLINE)
    finally:
        console.Close()
    yield NAME
    _Gnt(vc, "remove", "-f", NAME, check=False)


def _Migrate(vc: VirtualCluster, *options: str) -> str:
    """Migrate the instance to the other node while reading its console;
    check that the heartbeat went on; return the command's output."""
    source = _Where(vc)
    target = 3 - source
    src = _Console(vc, source)
    try:
        before = int(src.WaitFor(test_guest.HEARTBEAT_RE, 10).group(1))
        out = _Gnt(vc, "migrate", "-f", *options, "-n", vc.names[target - 1], NAME).stdout
        # The source's QEMU is gone: read what it printed until its socket closed
        with pytest.raises(TimeoutError, match="console closed"):
            src.WaitFor(_NEVER, 30)
    finally:
        src.Close()
    last = max(_Heartbeats(src.lines))
    assert last >= before
    dst = _Console(vc, target)
    try:
        after = int(dst.WaitFor(test_guest.HEARTBEAT_RE, 30).group(1))
        later = int(dst.WaitFor(test_guest.HEARTBEAT_RE, 30).group(1))
    finally:
        dst.Close()
    # The same guest counting on: no reboot, no reset
    assert last < after <= last + _MAX_GAP, (last, after, src.lines[-5:], dst.lines[:20])
    assert later > after
    assert _Where(vc) == target
    assert _Leftovers(vc, source) == []
    assert _NodeQemus(vc, source) == []
    assert len(_NodeQemus(vc, target)) == 1
    return out


def test_live_migration_there_and_back(vc, inst):
    taps = vc.taps()
    out = _Migrate(vc)
    assert "* memory transfer complete (downtime" in out
    if os.geteuid() == 0:
        # The target's tap replaced the source's
        assert len(vc.taps()) == len(taps) and vc.taps() != taps
    _Migrate(vc)
    assert vc.taps() == taps or os.geteuid() != 0
    # Non-live: paused, moved, resumed
    _Migrate(vc, "--non-live")
    _Migrate(vc, "--migration-mode", "live")
    assert _Where(vc) == 1


def _Refused(vc: VirtualCluster, *args: str) -> str:
    result = _Gnt(vc, *args, check=False)
    assert result.returncode != 0, result.stdout
    return result.stdout + result.stderr


def _CheckStillOnSource(vc: VirtualCluster, console: test_guest.SerialConsole,
                        target: int, taps: set[str]) -> None:
    assert _Where(vc) == 1
    # The guest runs on: the console still counts, on the same connection
    seen = max(_Heartbeats(console.lines), default=-1)
    while True:
        beat = int(console.WaitFor(test_guest.HEARTBEAT_RE, 10).group(1))
        if beat > seen:
            break
    assert _Leftovers(vc, target) == []
    assert _NodeQemus(vc, target) == []
    assert vc.taps() == taps


def test_migration_refused_by_the_target(vc, inst):
    assert _Where(vc) == 1
    taps = vc.taps()
    port = constants.HVC_DEFAULTS[constants.HT_KVM][constants.HV_MIGRATION_PORT]
    console = _Console(vc, 1)
    try:
        console.WaitFor(test_guest.HEARTBEAT_RE, 10)
        # The target's migration port is taken: its QEMU cannot listen
        with socket.socket() as busy:
            busy.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            busy.bind((vc.node(2).ip, port))
            busy.listen()
            out = _Refused(vc, "migrate", "-f", "-n", vc.names[1], NAME)
        assert "Could not pre-migrate instance" in out
        assert "Address already in use" in out, out
        _CheckStillOnSource(vc, console, 2, taps)
    finally:
        console.Close()


def test_target_killed_midway(vc, inst):
    assert _Where(vc) == 1
    taps = vc.taps()
    # 1 MiB/s: the guest's memory takes tens of seconds to move
    vc.run("gnt-cluster", "modify", "-H", "kvm:migration_bandwidth=1")
    console = _Console(vc, 1)
    try:
        console.WaitFor(test_guest.HEARTBEAT_RE, 10)
        env = {**vc.env(), "PYTHONUNBUFFERED": "1"}
        proc = subprocess.Popen(
            [vc.python, vc.tools.Script("gnt-instance"), "migrate", "-f", "-n",
             vc.names[1], NAME], env=env, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            assert proc.stdout is not None
            output = []
            for line in proc.stdout:
                output.append(line)
                if "* starting memory transfer" in line:
                    break
            else:
                pytest.fail("".join(output))
            pid = int(_Run(vc, 2, f"pid/{NAME}").read_text())
            os.kill(pid, signal.SIGKILL)
            rest, _ = proc.communicate(timeout=MIGRATE_DEADLINE)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        out = "".join(output) + rest
        assert proc.returncode != 0, out
        assert "Could not migrate instance" in out, out
        _CheckStillOnSource(vc, console, 2, taps)
    finally:
        console.Close()
        vc.run("gnt-cluster", "modify", "-H", "kvm:migration_bandwidth=32")
    # And it migrates fine afterwards
    _Migrate(vc)
    _Migrate(vc)


def test_postcopy_migration(vc, inst):
    assert _Where(vc) == 1
    # postcopy-ram on both ends; an idle guest converges in its first pass,
    # before the switch point: a plain live migration that allows postcopy
    _Gnt(vc, "modify", "-H", "migration_caps=postcopy-ram", NAME)
    try:
        _Migrate(vc)
        # A guest rewriting 8 MiB of random data and a bandwidth of 8 MiB/s:
        # precopy cannot converge, so the first pass ends in the switch
        _Gnt(vc, "modify", "-H", "kernel_args=quiet panic=-1 testguest.dirty=8", NAME)
        vc.run("gnt-cluster", "modify", "-H", "kvm:migration_bandwidth=8")
        _Gnt(vc, "reboot", "--type", "hard", NAME)
        console = _Console(vc, _Where(vc))
        try:
            console.WaitFor(re.compile(rb"test-guest: dirtying 8 MiB"), BOOT_DEADLINE)
            console.WaitFor(test_guest.HEARTBEAT_RE, BOOT_DEADLINE)
        finally:
            console.Close()
        out = _Migrate(vc)
        assert "* switched to postcopy: the instance runs on the target" in out
    finally:
        vc.run("gnt-cluster", "modify", "-H", "kvm:migration_bandwidth=32")
        _Gnt(vc, "modify", "-H", "migration_caps=default,kernel_args=default", NAME)
        _Gnt(vc, "reboot", "--type", "hard", NAME)
        console = _Console(vc, _Where(vc))
        try:
            console.WaitFor(test_guest.HEARTBEAT_RE, BOOT_DEADLINE)
        finally:
            console.Close()


def test_failover_stops_and_starts(vc, inst):
    assert _Where(vc) == 1
    _Gnt(vc, "failover", "-f", "-n", vc.names[1], NAME)
    assert _Where(vc) == 2
    assert _Leftovers(vc, 1) == [] and _NodeQemus(vc, 1) == []
    console = _Console(vc, 2)
    try:
        # A new boot on the target: the guest counts its boots on its disk
        console.WaitFor(test_guest.WROTE_RE, BOOT_DEADLINE)
        console.WaitFor(test_guest.HEARTBEAT_RE, BOOT_DEADLINE)
    finally:
        console.Close()
