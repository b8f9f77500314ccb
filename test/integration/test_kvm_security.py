"""KVM security models with real QEMU guests on a virtual cluster (root only).

``security_model=pool``: each instance's QEMU under its own uid of the
cluster's uid pool (``/proc/PID/status``), the uid's lock file under the
node's root naming the instance, the uid back in the pool when the
instance stops, a clear error when the pool is exhausted, disk hotplug
into a QEMU that dropped its privileges. ``security_model=user`` with
``nobody`` and ``use_chroot`` (``/proc/PID/root``). Switching users needs
root: the module is skipped otherwise.
"""

from __future__ import annotations

import os
import pwd
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ganeti import constants
from ganeti.tools import test_guest

from .vcluster import VirtualCluster, virtual_cluster

pytestmark = [
    pytest.mark.slow, pytest.mark.timeout(600),
    pytest.mark.skipif(os.geteuid() != 0, reason="QEMU's -runas and -chroot need root"),
]

KVM_RUN = "/var/run/ganeti/kvm-hypervisor"
UID_POOL_DIR = "/var/run/ganeti/uid-pool"
DEADLINE = 60.0
#: Two uids no process of this machine uses (checked by the fixture)
POOL_BASE = 3_900_000_000 + (os.getpid() % 1000) * 10
POOL = (POOL_BASE, POOL_BASE + 1)


@pytest.fixture(scope="module")
def vc() -> Iterator[VirtualCluster]:
    from ganeti import uidpool
    assert not uidpool.GetUsedUids() & set(POOL)
    with virtual_cluster(nodes=1, hypervisor=constants.HT_KVM) as cluster:
        cluster.run("gnt-cluster", "modify", "--uid-pool", f"{POOL[0]}-{POOL[1]}")
        yield cluster


def _Gnt(vc: VirtualCluster, *args: str, check: bool = True):
    return vc.run("gnt-instance", *args, check=check)


def _Add(vc: VirtualCluster, name: str, hvparams: str, check: bool = True):
    return _Gnt(vc, "add", "-t", "file", "--disk", "0:size=4M", "-o", "testguest+default",
                "-B", "memory=80", "-H", f"kvm:{hvparams}", "--no-nics",
                "--no-name-check", "--no-ip-check", "--ignore-ipolicy",
                "-n", vc.names[0], name, check=check)


def _Run(vc: VirtualCluster, path: str) -> Path:
    return vc.path(1, f"{KVM_RUN}/{path}")


def _Pid(vc: VirtualCluster, name: str) -> int:
    return int(_Run(vc, f"pid/{name}").read_text())


def _Uids(pid: int) -> list[int]:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return [int(uid) for uid in line.split()[1:]]
    raise AssertionError(f"no Uid line for process {pid}")


def _Console(vc: VirtualCluster, name: str) -> test_guest.SerialConsole:
    return test_guest.SerialConsole(str(_Run(vc, f"ctrl/{name}.serial")))


def _WaitHeartbeat(vc: VirtualCluster, name: str) -> None:
    console = _Console(vc, name)
    try:
        console.WaitFor(test_guest.HEARTBEAT_RE, DEADLINE)
    finally:
        console.Close()


def _Reserved(vc: VirtualCluster) -> dict[int, str]:
    directory = vc.path(1, UID_POOL_DIR)
    return {int(path.name): path.read_text().strip() for path in directory.iterdir()}


def test_pool_uids_per_instance_released_at_stop(vc):
    names = [f"pool{i}.vcluster.test" for i in (1, 2, 3)]
    try:
        for name in names[:2]:
            _Add(vc, name, "security_model=pool")
        uids = {}
        for name in names[:2]:
            _WaitHeartbeat(vc, name)
            real, effective, saved, fs = _Uids(_Pid(vc, name))
            assert real == effective == saved == fs
            uids[name] = real
        assert sorted(uids.values()) == list(POOL)
        # The lock files, under the node's root, name their instances
        assert _Reserved(vc) == {uid: name for name, uid in uids.items()}
        # The pool is exhausted: the third start fails and says why
        result = _Add(vc, names[2], "security_model=pool", check=False)
        assert result.returncode != 0
        assert "No free uid in the pool" in result.stderr, result.stderr
        assert names[2] not in _Gnt(vc, "list", "--no-headers", "-o", "name").stdout
        # Stopping one instance gives its uid back, for the third
        _Gnt(vc, "shutdown", "--timeout", "0", names[0])
        assert _Reserved(vc) == {uids[names[1]]: names[1]}
        _Add(vc, names[2], "security_model=pool")
        _WaitHeartbeat(vc, names[2])
        assert _Uids(_Pid(vc, names[2]))[0] == uids[names[0]]
    finally:
        for name in names:
            _Gnt(vc, "remove", "-f", name, check=False)
    assert _Reserved(vc) == {}


def test_disk_hotplug_into_an_unprivileged_qemu(vc):
    """The node opens the disk and passes it: QEMU, no longer root, could not."""
    name = "hot1.vcluster.test"
    _Add(vc, name, "security_model=pool")
    try:
        console = _Console(vc, name)
        try:
            # The guest lists its disks at boot, then at each change
            assert console.WaitFor(test_guest.BLOCK_RE, DEADLINE).group(1).split() == \
                [b"vda"]
            assert _Uids(_Pid(vc, name))[0] in POOL
            _Gnt(vc, "modify", "--ignore-ipolicy", "--hotplug", "--disk", "add:size=8M",
                 name)
            assert console.WaitFor(test_guest.BLOCK_RE, 30).group(1).split() == \
                [b"vda", b"vdb"]
            _Gnt(vc, "modify", "--ignore-ipolicy", "--hotplug", "--disk", "1:remove",
                 name)
            assert console.WaitFor(test_guest.BLOCK_RE, 30).group(1).split() == [b"vda"]
        finally:
            console.Close()
        # QEMU no longer holds the unplugged disk
        fds = Path(f"/proc/{_Pid(vc, name)}/fd")
        targets = [os.readlink(fd) for fd in fds.iterdir()]
        assert not [target for target in targets if target.endswith("/disk1")], targets
    finally:
        _Gnt(vc, "remove", "-f", name, check=False)


def test_user_model_in_a_chroot(vc):
    name = "chr1.vcluster.test"
    nobody = pwd.getpwnam("nobody").pw_uid
    _Add(vc, name, "security_model=user,security_domain=nobody,use_chroot=true")
    chroot = _Run(vc, f"chroot/{name}")
    try:
        _WaitHeartbeat(vc, name)
        pid = _Pid(vc, name)
        assert _Uids(pid) == [nobody] * 4
        assert os.readlink(f"/proc/{pid}/root") == str(chroot)
        # The guest still reaches its disk (opened before the chroot)
        console = _Console(vc, name)
        try:
            _Gnt(vc, "reboot", "--type", "soft", name)
            assert console.WaitFor(test_guest.WROTE_RE, DEADLINE).group(1) == b"2"
        finally:
            console.Close()
        start = time.monotonic()
        _Gnt(vc, "shutdown", name)
        print(f"ACPI shutdown of a chrooted guest: {time.monotonic() - start:.1f}s")
        assert not chroot.exists()
    finally:
        _Gnt(vc, "remove", "-f", name, check=False)


def test_user_model_with_an_unknown_user_is_refused(vc):
    result = _Add(vc, "bad1.vcluster.test",
                  "security_model=user,security_domain=no-such-user-here", check=False)
    assert result.returncode != 0
    assert "no-such-user-here" in result.stderr, result.stderr
