"""A real QEMU guest on an ``ext`` disk: the shipped ExtStorage provider
``loopfile`` keeps the volume as a file attached to a loop device, so the
guest writes to a real block device; what it wrote is still there after a
stop and a start, and nothing (loop device, file) is left after removal.

Needs root (loop devices) and the test guest (built by
tools/make-test-guest, as the other KVM tests).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from vcluster import VirtualCluster, virtual_cluster  # noqa: E402

from ganeti import constants, vcluster  # noqa: E402
from ganeti.tools import test_guest  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600),
              pytest.mark.skipif(not vcluster.StorageAvailable(),
                                 reason="ext disks on loop devices need root")]

NAME = "kvmext.vcluster.test"
KVM_RUN = "/var/run/ganeti/kvm-hypervisor"
BOOT_DEADLINE = 60


@pytest.fixture(scope="module")
def vc() -> Iterator[VirtualCluster]:
    with virtual_cluster(nodes=1, hypervisor=constants.HT_KVM, storage=True) as cluster:
        yield cluster


def _Gnt(vc: VirtualCluster, *args: str) -> subprocess.CompletedProcess:
    return vc.run("gnt-instance", *args)


def _WaitBoot(vc: VirtualCluster) -> None:
    console = test_guest.SerialConsole(
        str(vc.path(1, f"{KVM_RUN}/ctrl/{NAME}.serial")))
    try:
        console.WaitFor(test_guest.HEARTBEAT_RE, BOOT_DEADLINE)
    finally:
        console.Close()


def _VolumeFile(vc: VirtualCluster) -> Path:
    config = vc.config()
    inst = next(i for i in config["instances"].values() if i["name"] == NAME)
    disk = config["disks"][inst["disks"][0]]
    assert disk["dev_type"] == "ext" and disk["logical_id"][0] == "loopfile"
    return vc.path(1, f"/srv/ganeti/extstorage-loopfile/{disk['logical_id'][1]}.img")


def _LoopsOf(path: Path) -> str:
    return subprocess.run(["losetup", "-j", str(path)], capture_output=True, text=True,
                          check=True).stdout.strip()


def _GuestWrite(path: Path) -> bytes:
    with open(path, "rb") as disk:
        disk.seek(test_guest.GUEST_WRITE_OFFSET)
        return disk.read(test_guest.SECTOR).rstrip(b"\0").strip()


def test_guest_data_on_an_ext_disk_survives_stop_and_start(vc):
    nics = ["--no-nics"]
    _Gnt(vc, "add", "-t", "ext", "--disk", "0:size=16M,provider=loopfile", "-o",
         "testguest+default", "-B", "memory=96", "--no-name-check", "--no-ip-check",
         "--ignore-ipolicy", "-n", vc.names[0], *nics, NAME)
    volume = _VolumeFile(vc)
    _WaitBoot(vc)
    # The running guest's disk is a loop device on the volume file
    assert _LoopsOf(volume)
    link = Path(os.readlink(vc.path(1, f"/var/run/ganeti/instance-disks/{NAME}:0")))
    assert link.is_block_device()
    _Gnt(vc, "shutdown", NAME)
    assert _GuestWrite(volume) == b"guest-wrote 1"
    assert volume.read_bytes()[:64].startswith(b"ganeti-test-guest name=" + NAME.encode())
    # Shut down, the disk is detached: no loop device left on the file
    assert _LoopsOf(volume) == ""
    _Gnt(vc, "startup", NAME)
    _WaitBoot(vc)
    _Gnt(vc, "shutdown", NAME)
    assert _GuestWrite(volume) == b"guest-wrote 2"
    _Gnt(vc, "remove", "-f", NAME)
    assert not volume.exists()
