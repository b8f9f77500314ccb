"""Tests of DRBD 8.4 devices (ganeti.storage.drbd) against the DRBD stand-in.

Two virtual nodes ("node-a", "node-b") share a parent directory, as in a
virtual cluster; the stand-in (tools/drbd-standin) is first on PATH and its
clock is the test's (DRBD_STANDIN_TIME), so resync progress is exact. The
data and metadata volumes are fake devices with /dev paths: the stand-in
only records them.
"""

import json
import os
import subprocess
import sys

import pytest

from ganeti import constants, errors, pathutils
from ganeti.storage import base, drbd, drbd_info

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
STANDIN = os.path.join(REPO, "tools", "drbd-standin")
ADDRESSES = {"node-a": "192.0.2.1", "node-b": "192.0.2.2"}
PORT = 11000
SECRET = "0123456789abcdef0123456789abcdef01234567"
SIZE = 100  # MiB; at 10 MiB/s a full resync takes 10 seconds


class FakeVolume(base.BlockDev):
    """A data or metadata volume that is always there."""

    def __init__(self, path, size):
        super().__init__(("xenvg", os.path.basename(path)), [], size, {})
        self.dev_path = path
        self.attached = True
        self.grown = []

    def Attach(self, **kwargs):
        return True

    def Assemble(self):
        pass

    def Grow(self, amount, dryrun, backingstore, excl_stor):
        self.grown.append((amount, dryrun, backingstore))


class Pair:
    """Two virtual nodes with the stand-in; ``On`` switches this process
    (pathutils) to one of them."""

    def __init__(self, base_dir, monkeypatch):
        self.roots = {name: str(base_dir / name) for name in ADDRESSES}
        self.now = 1_700_000_000.0
        self.monkeypatch = monkeypatch
        # the venv's python3 first, as a virtual cluster has it (the stand-in
        # runs "/usr/bin/env python3")
        monkeypatch.setenv("PATH", f"{STANDIN}:{os.path.dirname(sys.executable)}:"
                                   f"{os.environ['PATH']}")
        monkeypatch.setenv("DRBD_STANDIN_SYNC_MIB_S", "10")
        monkeypatch.setenv("DRBD_STANDIN_TIME", str(self.now))
        monkeypatch.delenv("DRBD_STANDIN_SHARED", raising=False)
        monkeypatch.delenv("DRBD_STANDIN_KERNEL_VERSION", raising=False)
        for root in self.roots.values():
            os.makedirs(root)

    def Tick(self, seconds):
        self.now += seconds
        self.monkeypatch.setenv("DRBD_STANDIN_TIME", str(self.now))

    def On(self, node):
        pathutils._SetRoot(self.roots[node], node)

    def Args(self, node, minor=0, peer_minor=1, secret=SECRET, tag="", size=SIZE,
             addresses=None):
        """(unique_id, children, size, params, dyn_params) of node's end."""
        local, remote = (addresses or ADDRESSES)[node], \
            [ip for n, ip in (addresses or ADDRESSES).items() if n != node][0]
        unique_id = ("uuid-a", "uuid-b", PORT, minor, peer_minor, secret)
        children = [FakeVolume(f"/dev/xenvg/{node}{tag}.data", size),
                    FakeVolume(f"/dev/xenvg/{node}{tag}.meta", 128)]
        dyn = {constants.DDP_LOCAL_IP: local, constants.DDP_REMOTE_IP: remote,
               constants.DDP_PORT: PORT, constants.DDP_LOCAL_MINOR: minor,
               constants.DDP_REMOTE_MINOR: peer_minor}
        return unique_id, children, size, {}, dyn

    def Dev(self, node, **kwargs):
        """The device object of node's end (switches to the node)."""
        self.On(node)
        return drbd.DRBD8Dev(*self.Args(node, **kwargs))

    def Create(self, node, **kwargs):
        self.On(node)
        unique_id, children, size, params, dyn = self.Args(node, **kwargs)
        return drbd.DRBD8Dev.Create(unique_id, children, size, None, params, False, dyn)

    def Status(self, node, minor=0):
        self.On(node)
        return drbd.GetProcStatus().GetMinor(minor)

    def Ctl(self, node, *args):
        env = dict(os.environ, GANETI_ROOTDIR=self.roots[node])
        return subprocess.run([os.path.join(STANDIN, "drbdsetup-standin-ctl"), *args],
                              env=env, capture_output=True, text=True, check=False)


@pytest.fixture
def pair(tmp_path, monkeypatch):
    result = Pair(tmp_path / "vc", monkeypatch)
    yield result
    pathutils.Reload()


def _Mirror(pair, node_a_minor=0, node_b_minor=1):
    """Create and assemble both ends (secondary node first, as the master
    does); return (end on node-a, end on node-b)."""
    for node, minor, peer in (("node-b", node_b_minor, node_a_minor),
                              ("node-a", node_a_minor, node_b_minor)):
        pair.Create(node, minor=minor, peer_minor=peer)
        pair.Dev(node, minor=minor, peer_minor=peer).Assemble()
    return (pair.Dev("node-a", minor=node_a_minor, peer_minor=node_b_minor),
            pair.Dev("node-b", minor=node_b_minor, peer_minor=node_a_minor))


def _Synced(pair):
    dev_a, dev_b = _Mirror(pair)
    pair.On("node-a")
    dev_a.Open(force=True)
    pair.Tick(60)
    return dev_a, dev_b


def test_create_checks_the_minor_and_writes_metadata(pair):
    dev = pair.Create("node-a")
    assert not dev.attached and dev.dev_path is None
    state = os.path.join(pair.roots["node-a"], "var/lib/drbd-standin/state.json")
    assert "/dev/xenvg/node-a.meta" in json.load(open(state))["metadata"]["disks"]
    dev = pair.Dev("node-a")
    dev.Assemble()
    assert dev.attached and dev.dev_path == "/dev/drbd0" and dev.major == drbd.DRBD_MAJOR
    with pytest.raises(errors.BlockDeviceError, match="drbd0: minor is already in use"):
        pair.Create("node-a")


def test_assemble_connects_both_ends(pair):
    pair.Create("node-b", minor=1, peer_minor=0)
    dev_b = pair.Dev("node-b", minor=1, peer_minor=0)
    assert not dev_b.attached
    dev_b.Assemble()
    assert pair.Status("node-b", 1).is_wfconn
    pair.Create("node-a")
    pair.Dev("node-a").Assemble()
    for node, minor in (("node-a", 0), ("node-b", 1)):
        status = pair.Status(node, minor)
        assert status.is_connected
        assert (status.ldisk, status.rdisk) == ("Inconsistent", "Inconsistent")
        assert (status.lrole, status.rrole) == ("Secondary", "Secondary")
    dev_a = pair.Dev("node-a")
    assert dev_a.attached
    sync = dev_a.GetSyncStatus()
    assert sync.is_degraded and sync.ldisk_status == base.LDS_UNKNOWN
    assert sync.dev_path == "/dev/drbd0" and sync.sync_percent is None
    # assembling again changes nothing
    dev_a.Assemble()
    assert pair.Status("node-a").is_connected


def test_initial_sync_to_100_percent(pair):
    dev_a, dev_b = _Mirror(pair)
    pair.On("node-a")
    dev_a.Open(force=True)
    status = dev_a.GetSyncStatus()
    assert status.sync_percent == 0.0 and status.estimated_time == 10
    assert status.is_degraded and status.ldisk_status == base.LDS_OKAY
    pair.Tick(4)
    pair.On("node-b")
    status = dev_b.GetSyncStatus()
    assert status.sync_percent == pytest.approx(40.0, abs=0.1)
    assert status.estimated_time == 6
    assert status.ldisk_status == base.LDS_UNKNOWN and status.is_degraded
    assert pair.Status("node-b", 1).cstatus == "SyncTarget"
    pair.Tick(6)
    for node, dev in (("node-a", dev_a), ("node-b", dev_b)):
        pair.On(node)
        status = dev.GetSyncStatus()
        assert status.sync_percent is None and not status.is_degraded
        assert status.ldisk_status == base.LDS_OKAY
    assert pair.Status("node-a").is_primary and pair.Status("node-b", 1).peer_primary


def test_failover_and_single_primary(pair):
    dev_a, dev_b = _Synced(pair)
    pair.On("node-b")
    with pytest.raises(errors.BlockDeviceError,
                       match="drbd1: cannot make the device primary.*Multiple primaries"):
        dev_b.Open()
    pair.On("node-a")
    dev_a.Close()
    pair.On("node-b")
    dev_b.Open()
    assert pair.Status("node-b", 1).is_primary
    assert pair.Status("node-a").peer_primary and pair.Status("node-a").is_secondary


def test_dual_primary_for_migration(pair):
    dev_a, dev_b = _Synced(pair)
    for node, dev in (("node-a", dev_a), ("node-b", dev_b)):
        pair.On(node)
        dev.DisconnectNet()
        assert dev.GetProcStatus().is_standalone
    for node, dev in (("node-a", dev_a), ("node-b", dev_b)):
        pair.On(node)
        dev.AttachNet(multimaster=True)
    assert pair.Status("node-a").is_connected
    pair.On("node-b")
    dev_b.Open()
    for node, minor in (("node-a", 0), ("node-b", 1)):
        status = pair.Status(node, minor)
        assert status.is_primary and status.peer_primary and status.is_connected
    show = drbd.RunDrbdCommand(["drbdsetup", "show", "1"])
    assert drbd_info.ParseShow(show.stdout).allow_two_primaries


def test_disconnect_and_reconnect(pair):
    dev_a, dev_b = _Synced(pair)
    pair.On("node-a")
    dev_a.DisconnectNet()
    dev_a.DisconnectNet()  # already StandAlone: nothing to do
    status = dev_a.GetSyncStatus()
    assert status.is_degraded and status.ldisk_status == base.LDS_OKAY
    assert pair.Status("node-b", 1).is_wfconn
    # a disconnected device is still found (by its local disk)
    assert pair.Dev("node-a").attached
    pair.On("node-a")
    with pytest.raises(errors.BlockDeviceError, match="not StandAlone"):
        pair.Dev("node-b", minor=1, peer_minor=0).AttachNet(False)
    pair.On("node-a")
    dev_a.AttachNet(False)
    assert pair.Status("node-a").is_connected
    assert not pair.Dev("node-a").GetSyncStatus().is_degraded


def test_failed_disk_is_faulty_and_peer_degraded(pair):
    dev_a, dev_b = _Synced(pair)
    result = pair.Ctl("node-b", "fail-disk", "1")
    assert result.returncode == 0, result.stderr
    pair.On("node-b")
    status = dev_b.GetSyncStatus()
    assert status.ldisk_status == base.LDS_FAULTY and status.is_degraded
    assert dev_b.GetProcStatus().is_diskless
    pair.On("node-a")
    status = dev_a.GetSyncStatus()
    assert status.is_degraded and status.ldisk_status == base.LDS_OKAY
    # assembling again attaches the (replaced) disk, which resyncs from the peer
    pair.On("node-b")
    dev_b = pair.Dev("node-b", minor=1, peer_minor=0)
    assert dev_b.attached  # found by its network
    dev_b.Assemble()
    assert pair.Status("node-b", 1).cstatus == "SyncTarget"
    pair.Tick(10)
    assert pair.Status("node-b", 1).is_disk_uptodate


def test_grow(pair):
    dev_a, dev_b = _Synced(pair)
    pair.On("node-a")
    dev_a.Grow(50, dryrun=True, backingstore=True, excl_stor=False)
    dev_a.Grow(50, dryrun=False, backingstore=True, excl_stor=False)
    assert dev_a._children[0].grown == [(50, True, True), (50, False, True)]
    assert dev_a.size == SIZE
    dev_a.Grow(50, dryrun=False, backingstore=False, excl_stor=False)
    assert dev_a.size == SIZE + 50 and dev_a.GetActualSize() == (SIZE + 50) * 2 ** 20
    for node, minor in (("node-a", 0), ("node-b", 1)):
        pair.On(node)
        show = drbd.RunDrbdCommand(["drbdsetup", "show", str(minor)])
        assert drbd_info.ParseShow(show.stdout).disk_options["size"] == \
            f"{(SIZE + 50) * 2048}s"


def test_shutdown_and_remove(pair):
    dev_a, dev_b = _Synced(pair)
    pair.On("node-a")
    dev_a.Shutdown()
    assert not dev_a.attached and dev_a.dev_path is None
    assert not pair.Status("node-a").is_in_use
    assert not pair.Dev("node-a").attached
    dev_a.Shutdown()  # not configured any more: fine
    assert pair.Status("node-b", 1).is_wfconn
    pair.On("node-b")
    dev_b.Remove()
    pair.On("node-b")
    assert drbd.GetUsedMinors() == []


def test_bad_secret_stays_unconnected(pair):
    for node, minor, peer, secret in (("node-b", 1, 0, "secret-b"),
                                      ("node-a", 0, 1, "secret-a")):
        pair.Create(node, minor=minor, peer_minor=peer, secret=secret)
        pair.Dev(node, minor=minor, peer_minor=peer, secret=secret).Assemble()
    assert pair.Status("node-a").is_wfconn and pair.Status("node-b", 1).is_wfconn
    dev = pair.Dev("node-a", secret="secret-a")
    assert dev.GetSyncStatus().is_degraded


def test_minor_of_another_device(pair):
    pair.Create("node-a")
    pair.Dev("node-a").Assemble()
    other = pair.Dev("node-a", tag="-other", peer_minor=7,
                     addresses={"node-a": "192.0.2.1", "node-c": "192.0.2.3"})
    assert not other.attached
    with pytest.raises(errors.BlockDeviceError, match="drbd0: cannot activate.*another"):
        other.Assemble()


def test_ipv6(pair):
    addresses = {"node-a": "2001:db8::1", "node-b": "2001:db8::2"}
    for node, minor, peer in (("node-b", 1, 0), ("node-a", 0, 1)):
        pair.Create(node, minor=minor, peer_minor=peer, addresses=addresses)
        pair.Dev(node, minor=minor, peer_minor=peer, addresses=addresses).Assemble()
    dev = pair.Dev("node-a", addresses=addresses)
    assert dev.attached and dev.GetProcStatus().is_connected


def test_drbd9_status_path(pair):
    pair.monkeypatch.setenv("DRBD_STANDIN_KERNEL_VERSION", "9.2.8")
    dev_a, dev_b = _Mirror(pair)
    pair.On("node-a")
    dev_a.Open(force=True)
    pair.Tick(5)
    status = drbd.GetProcStatus()
    assert status.version.is_drbd9
    minor = status.GetMinor(0)
    assert minor.cstatus == "SyncSource" and minor.sync_percent == pytest.approx(50.0)
    pair.Tick(5)
    assert dev_a.GetProcStatus().is_connected


def test_invalid_configurations(pair):
    unique_id, children, size, params, dyn = pair.Args("node-a")
    pair.On("node-a")
    with pytest.raises(errors.BlockDeviceError, match="lacks its node parameters"):
        drbd.DRBD8Dev(unique_id, children, size, params, {})
    with pytest.raises(errors.BlockDeviceError, match="logical_id"):
        drbd.DRBD8Dev(unique_id[:5], children, size, params, dyn)
    with pytest.raises(errors.BlockDeviceError, match="two children"):
        drbd.DRBD8Dev(unique_id, children[:1], size, params, dyn)
    same = dict(dyn, **{constants.DDP_REMOTE_IP: dyn[constants.DDP_LOCAL_IP]})
    with pytest.raises(errors.BlockDeviceError, match="are the same"):
        drbd.DRBD8Dev(unique_id, children, size, params, same)
    with pytest.raises(errors.BlockDeviceError, match="exclusive storage"):
        drbd.DRBD8Dev.Create(unique_id, children, size, None, params, True, dyn)
    dev = drbd.DRBD8Dev(unique_id, children, size, params, dyn)
    with pytest.raises(errors.BlockDeviceError, match="cannot be renamed"):
        dev.Rename(unique_id)
    with pytest.raises(errors.BlockDeviceError, match="drbd0: not configured"):
        dev.Open()


def test_usermode_helper_and_used_minors(pair):
    _Mirror(pair)
    pair.On("node-a")
    assert drbd.GetUsermodeHelper() == constants.DEFAULT_DRBD_HELPER
    assert drbd.GetUsedMinors() == [0]
    helper = os.path.join(pair.roots["node-a"], "sys/module/drbd/parameters/usermode_helper")
    assert open(helper).read().strip() == "/bin/true"
    with pytest.raises(errors.BlockDeviceError, match="usermode helper"):
        drbd.GetUsermodeHelper("/nonexistent/usermode_helper")


def test_virtual_node_refuses_a_real_drbdsetup(pair, tmp_path):
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "drbdsetup").write_text("#!/bin/sh\nexit 0\n")
    (fake / "drbdsetup").chmod(0o755)
    pair.monkeypatch.setenv("PATH", f"{fake}:{os.environ['PATH']}")
    pair.On("node-a")
    with pytest.raises(errors.BlockDeviceError, match="DRBD stand-in"):
        drbd.RunDrbdCommand(["drbdsetup", "show", "all"])


def test_status_runs_the_standin_only_when_not_current(pair, monkeypatch):
    runs = []
    real = drbd.RunDrbdCommand

    def _Counting(cmd):
        runs.append(cmd[1])
        return real(cmd)

    monkeypatch.setattr(drbd, "RunDrbdCommand", _Counting)
    dev_a, _ = _Mirror(pair)
    # both ends connected, no resync: the status file is current
    runs.clear()
    assert pair.Status("node-a").is_connected
    assert drbd.GetUsermodeHelper() == "/bin/true"
    dev_a = pair.Dev("node-a")
    assert dev_a.attached
    assert runs == ["show"]  # the configuration of the minor, for Attach
    # a resync's progress is computed by the stand-in: it runs first
    pair.On("node-a")
    dev_a.Open(force=True)
    pair.Tick(4)
    runs.clear()
    assert pair.Status("node-b", minor=1).sync_percent == pytest.approx(40.0)
    assert runs == ["show"]
    pair.Tick(10)
    assert pair.Status("node-b", minor=1).is_connected
    runs.clear()
    assert pair.Status("node-b", minor=1).is_disk_uptodate and runs == []
    # a minor not in use needs no command at all
    assert not pair.Dev("node-a", minor=7, peer_minor=8).attached and runs == []
