"""KVM's user_shutdown on a virtual cluster of real QEMU guests.

With the cluster's ``--user-shutdown yes`` and the instance's
``user_shutdown=true``, QEMU runs with ``-no-shutdown``: a guest that
powers itself off leaves its (stopped) QEMU, which the instance list
reports as ``USER_down``. The guest powers off on the ACPI power button
(doc/test-guest.rst), pressed here through QMP as a user inside would
have it done; the test waits on the guest's console line and the
instance list, never on sleeps.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ganeti import constants, utils, vcluster
from ganeti.hypervisor.hv_kvm import monitor
from ganeti.tools import test_guest

from .vcluster import VirtualCluster, virtual_cluster

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

KVM_RUN = "/var/run/ganeti/kvm-hypervisor"
NAME = "ush1.vcluster.test"
DEADLINE = 60.0


@pytest.fixture(scope="module")
def vc() -> Iterator[VirtualCluster]:
    with virtual_cluster(nodes=1, hypervisor=constants.HT_KVM) as cluster:
        cluster.run("gnt-cluster", "modify", "--user-shutdown", "yes")
        yield cluster


def _Gnt(vc: VirtualCluster, *args: str, check: bool = True):
    return vc.run("gnt-instance", *args, check=check)


def _Run(vc: VirtualCluster, path: str) -> Path:
    return vc.path(1, f"{KVM_RUN}/{path}")


def _Fields(vc: VirtualCluster, fields: str, name: str = NAME) -> list[str]:
    return _Gnt(vc, "list", "--no-headers", "--separator=|", "-o", fields,
                name).stdout.strip().split("|")


def _WaitStatus(vc: VirtualCluster, wanted: str, name: str = NAME) -> None:
    deadline = time.monotonic() + DEADLINE
    while (status := _Fields(vc, "status", name)[0]) != wanted:
        assert time.monotonic() < deadline, f"{name} is {status}, not {wanted}"
        time.sleep(0.2)  # polling the cluster's view of a process


def _Pid(vc: VirtualCluster, name: str = NAME) -> int:
    return int(_Run(vc, f"pid/{name}").read_text())


def _WaitHeartbeat(vc: VirtualCluster, name: str = NAME) -> None:
    console = test_guest.SerialConsole(str(_Run(vc, f"ctrl/{name}.serial")))
    try:
        console.WaitFor(test_guest.HEARTBEAT_RE, DEADLINE)
    finally:
        console.Close()


def _PowerOffInside(vc: VirtualCluster, name: str = NAME) -> None:
    """Press the power button; the guest powers itself off."""
    console = test_guest.SerialConsole(str(_Run(vc, f"ctrl/{name}.serial")))
    try:
        with monitor.QmpConnection(str(_Run(vc, f"ctrl/{name}.qmp"))) as qmp:
            deadline = time.monotonic() + DEADLINE
            while True:
                # A guest just booted may not listen to the button yet:
                # pressed again, as gnt-instance shutdown does
                qmp.SystemPowerdown()
                try:
                    event = qmp.WaitEvent("SHUTDOWN", 3)
                    break
                except monitor.MonitorError:
                    assert time.monotonic() < deadline, "the guest did not power off"
        assert event["data"].get("guest") is True, event
        console.WaitFor(test_guest.POWEROFF_RE, 5)
    finally:
        console.Close()


def _Jobs(vc: VirtualCluster) -> list[str]:
    return vc.run("gnt-job", "list", "--no-headers", "-o", "summary").stdout.split()


def _Alive(pid: int) -> bool:
    return utils.IsProcessAlive(pid)  # a zombie (not yet reaped) is gone


@pytest.fixture(scope="module")
def inst(vc: VirtualCluster) -> Iterator[str]:
    _Gnt(vc, "add", "-t", "file", "--disk", "0:size=4M", "-o", "testguest+default",
         "-B", "memory=80", "-H", "kvm:user_shutdown=true", "--no-nics",
         "--no-name-check", "--no-ip-check", "--ignore-ipolicy", "-n", vc.names[0], NAME)
    _WaitHeartbeat(vc)
    yield NAME
    _Gnt(vc, "remove", "-f", NAME, check=False)


def test_guest_shutdown_is_user_down_and_start_replaces_qemu(vc, inst):
    pid = _Pid(vc)
    _PowerOffInside(vc)
    _WaitStatus(vc, "USER_down")
    # QEMU stays (-no-shutdown), stopped; the configuration still says up
    assert _Alive(pid)
    assert _Fields(vc, "admin_state,oper_state") == ["up", "Y"]
    with monitor.QmpConnection(str(_Run(vc, f"ctrl/{inst}.qmp"))) as qmp:
        assert qmp.QueryStatus()["status"] == "shutdown"
    # A start replaces the stopped QEMU by a new one
    _Gnt(vc, "startup", inst)
    assert _Fields(vc, "status") == ["running"]
    assert _Pid(vc) != pid and not _Alive(pid)
    _WaitHeartbeat(vc)


def test_watcher_does_not_restart_but_cleans_up(vc, inst):
    pid = _Pid(vc)
    _PowerOffInside(vc)
    _WaitStatus(vc, "USER_down")
    before = len(_Jobs(vc))
    vc.run("ganeti-watcher")
    socket = str(vc.path(1, "/var/run/ganeti/socket/ganeti-master"))
    assert not vcluster.WaitForJobs(socket, DEADLINE)
    # Not started again: stopped and marked down by its user, as in Ganeti
    assert _Fields(vc, "status,admin_state,admin_state_source,oper_state") == \
        ["USER_down", "down", "user", "N"]
    assert not _Alive(pid)
    assert not _Run(vc, f"pid/{inst}").exists()
    new_jobs = _Jobs(vc)[before:]
    assert f"INSTANCE_SHUTDOWN({inst})" in new_jobs
    assert f"INSTANCE_STARTUP({inst})" not in new_jobs
    _Gnt(vc, "startup", inst)
    assert _Fields(vc, "status,admin_state_source") == ["running", "admin"]
    _WaitHeartbeat(vc)


def test_admin_shutdown_of_a_user_shutdown_instance(vc, inst):
    # The ACPI press of gnt-instance shutdown ends in the same stopped QEMU,
    # which the node then kills
    pid = _Pid(vc)
    _Gnt(vc, "shutdown", inst)
    assert _Fields(vc, "status") == ["ADMIN_down"]
    assert not _Alive(pid)
    _Gnt(vc, "startup", inst)
    _WaitHeartbeat(vc)


def test_without_the_cluster_setting_it_is_error_down(vc, inst):
    vc.run("gnt-cluster", "modify", "--user-shutdown", "no")
    try:
        _PowerOffInside(vc)
        _WaitStatus(vc, "ERROR_down")
        # ... which a start (the watcher's, here by hand) replaces
        _Gnt(vc, "startup", inst)
        assert _Fields(vc, "status") == ["running"]
        _WaitHeartbeat(vc)
    finally:
        vc.run("gnt-cluster", "modify", "--user-shutdown", "yes")
