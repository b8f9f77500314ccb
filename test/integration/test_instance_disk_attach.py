"""Detaching a file disk from one instance and attaching it to another on a
one-node virtual cluster (fake hypervisor): the data written through
activate-disks before the detach is there after the attach, the detached
disk is no orphan for gnt-cluster verify and survives the removal of the
instance it came from.
"""

from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from vcluster import VirtualCluster, virtual_cluster  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

SRC = "att1.example.com"
DST = "att2.example.com"


def _Gnt(vc: VirtualCluster, *args: str, check: bool = True):
    return vc.run("gnt-instance", *args, check=check)


def _Devices(vc: VirtualCluster, name: str) -> dict[str, str]:
    """Activate the disks; "disk/N" -> path."""
    out = _Gnt(vc, "activate-disks", name).stdout
    return dict(line.strip().split(":", 2)[1:] for line in out.splitlines()
                if line.strip())


def _Add(vc: VirtualCluster, name: str, *disks: str) -> None:
    args = [arg for idx, disk in enumerate(disks) for arg in ("--disk", f"{idx}:{disk}")]
    _Gnt(vc, "add", "-t", "file", "-o", "noop+default", "-n", vc.names[0],
         "--no-name-check", "--no-ip-check", "--no-start", "--ignore-ipolicy", *args,
         name)


def test_detach_and_attach_keep_the_data():
    with virtual_cluster(nodes=1) as vc:
        _Add(vc, SRC, "size=16M", "size=16M,name=shared")
        _Add(vc, DST, "size=16M")
        payload = b"detach-attach-" + os.urandom(4096)
        path = _Devices(vc, SRC)["disk/1"]
        with open(path, "r+b") as fd:
            fd.seek(8192)
            fd.write(payload)
            os.fsync(fd.fileno())
        _Gnt(vc, "deactivate-disks", SRC)

        # Refused while attached elsewhere; detached with nothing removed
        result = _Gnt(vc, "modify", "--ignore-ipolicy", "--disk", "attach:name=shared",
                      DST, check=False)
        assert result.returncode != 0
        assert f"already attached to instance {SRC}" in result.stdout + result.stderr
        out = _Gnt(vc, "modify", "--ignore-ipolicy", "--disk", "shared:detach", SRC).stdout
        assert "disk/1 -> detach" in out
        assert [d.get("name") for d in vc.instance_disks(SRC)] == [None]
        assert os.path.exists(path)
        # Verify reports a stray file next to it, not the detached disk
        stray = os.path.join(os.path.dirname(path), "stray")
        with open(stray, "wb"):
            pass
        verify = vc.run("gnt-cluster", "verify", "--error-codes", check=False)
        orphans = [line for line in (verify.stdout + verify.stderr).splitlines()
                   if "ENODEORPHANFILE" in line]
        assert len(orphans) == 1 and f"{SRC}/stray is unknown" in orphans[0], verify.stdout
        os.unlink(stray)

        # The source goes away, the detached disk stays
        _Gnt(vc, "remove", "-f", SRC)
        assert os.path.exists(path)

        out = _Gnt(vc, "modify", "--ignore-ipolicy", "--disk", "0:attach,name=shared", DST).stdout
        assert "disk/0 -> attach:size=16" in out
        assert [d.get("name") for d in vc.instance_disks(DST)] == ["shared", None]
        devices = _Devices(vc, DST)
        with open(devices["disk/0"], "rb") as fd:
            fd.seek(8192)
            assert fd.read(len(payload)) == payload
        _Gnt(vc, "deactivate-disks", DST)
        _Gnt(vc, "remove", "-f", DST)
        assert not os.path.exists(path)
