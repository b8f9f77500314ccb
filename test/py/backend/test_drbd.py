"""Tests of the node side of the DRBD calls (ganeti.backend.drbd), on two
virtual nodes with the DRBD stand-in (tools/drbd-standin).

Disks arrive as the master sends them: dicts of a ``drbd`` disk over two
``plain`` children, with the node's ``dynamic_params``. The logical
volumes are fakes (always active at /dev/VG/LV). Where the master calls
both nodes at once (connecting for a migration waits for the peer), the
other node runs in a child process.
"""

import json
import os
import subprocess
import sys

import pytest

from ganeti import constants, objects, pathutils
from ganeti.backend import RPCFail
from ganeti.backend import drbd as backend_drbd
from ganeti.backend import storage as backend_storage
from ganeti.storage import base, bdev

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
STANDIN = os.path.join(REPO, "tools", "drbd-standin")
NODES = {"node-a": ("uuid-a", "192.0.2.1"), "node-b": ("uuid-b", "192.0.2.2")}
MINORS = {"node-a": 0, "node-b": 1}
PORT = 11000
SIZE = 100
SECRET = "4c0ffee4c0ffee4c0ffee4c0ffee4c0ffee4c0ff"
INSTANCE = "inst1.example.com"


class FakeLV(base.BlockDev):
    """A logical volume that is always active at /dev/VG/LV."""

    def __init__(self, unique_id, children, size, params, dyn_params=None, **kwargs):
        super().__init__(unique_id, children, size, params, dyn_params)
        self.dev_path = f"/dev/{unique_id[0]}/{unique_id[1]}"
        self.attached = True

    @classmethod
    def Create(cls, unique_id, children, size, spindles, params, excl_stor,
               dyn_params=None, **kwargs):
        return cls(unique_id, children, size, params)

    def Attach(self, **kwargs):
        return True

    def Open(self, force=False, exclusive=True):
        pass

    def Close(self):
        pass


# The child process's preamble: the same fake volumes
_CHILD = f"""
import json, sys
sys.path.insert(0, {os.path.dirname(os.path.abspath(__file__))!r})
from ganeti import constants
from ganeti.storage import bdev
from test_drbd import FakeLV
bdev.DEV_MAP[constants.DT_PLAIN] = FakeLV
from ganeti.backend import drbd
args = json.loads(sys.argv[1])
try:
    print(json.dumps([True, getattr(drbd, args[0])(*args[1:])]))
except Exception as err:
    print(json.dumps([False, str(err)]))
"""


class Pair:
    """Two virtual nodes; ``On`` makes this process one of them."""

    def __init__(self, base_dir, monkeypatch):
        self.roots = {name: str(base_dir / name) for name in NODES}
        self.now = 1_700_000_000.0
        self.monkeypatch = monkeypatch
        monkeypatch.setenv("PATH", f"{STANDIN}:{os.path.dirname(sys.executable)}:"
                                   f"{os.environ['PATH']}")
        monkeypatch.setenv("DRBD_STANDIN_SYNC_MIB_S", "10")
        monkeypatch.setenv("DRBD_STANDIN_TIME", str(self.now))
        monkeypatch.delenv("DRBD_STANDIN_SHARED", raising=False)
        monkeypatch.delenv("DRBD_STANDIN_KERNEL_VERSION", raising=False)
        monkeypatch.setitem(bdev.DEV_MAP, constants.DT_PLAIN, FakeLV)
        for root in self.roots.values():
            os.makedirs(os.path.join(root, "var/run/ganeti"))

    def Tick(self, seconds):
        self.now += seconds
        self.monkeypatch.setenv("DRBD_STANDIN_TIME", str(self.now))

    def On(self, node):
        pathutils._SetRoot(self.roots[node], node)

    def Disk(self, node, secret=SECRET, uuid="disk-uuid-0"):
        """The disk dict the master sends to ``node``."""
        uuid_a, uuid_b = NODES["node-a"][0], NODES["node-b"][0]
        children = [
            objects.Disk(dev_type=constants.DT_PLAIN, logical_id=("xenvg", f"{uuid}.{kind}"),
                         size=size, children=[], params={}, uuid=f"{uuid}-{kind}")
            for kind, size in (("data", SIZE), ("meta", 128))]
        local, remote = ("node-a", "node-b") if node == "node-a" else ("node-b", "node-a")
        disk = objects.Disk(
            dev_type=constants.DT_DRBD8, size=SIZE, iv_name="disk/0", uuid=uuid,
            logical_id=(uuid_a, uuid_b, PORT, MINORS["node-a"], MINORS["node-b"], secret),
            children=children, params={}, nodes=[uuid_a, uuid_b],
            dynamic_params={
                constants.DDP_LOCAL_IP: NODES[local][1],
                constants.DDP_REMOTE_IP: NODES[remote][1],
                constants.DDP_PORT: PORT,
                constants.DDP_LOCAL_MINOR: MINORS[local],
                constants.DDP_REMOTE_MINOR: MINORS[remote]})
        return disk.ToDict()

    def Call(self, node, fn, *args):
        self.On(node)
        return fn(*args)

    def Start(self, node, fn_name, *args):
        """Run a backend.drbd function on ``node`` in a child process."""
        env = dict(os.environ, GANETI_ROOTDIR=self.roots[node], GANETI_HOSTNAME=node)
        return subprocess.Popen([sys.executable, "-c", _CHILD, json.dumps([fn_name, *args])],
                                env=env, stdout=subprocess.PIPE, text=True)

    def Status(self, node):
        from ganeti.storage import drbd
        self.On(node)
        return drbd.GetProcStatus().GetMinor(MINORS[node])


@pytest.fixture
def pair(tmp_path, monkeypatch):
    result = Pair(tmp_path / "vc", monkeypatch)
    yield result
    pathutils.Reload()


def _Create(pair, secret=SECRET):
    """Create the disk as the master does: secondary first; the primary
    (node-a) becomes the source of the initial sync."""
    for node in ("node-b", "node-a"):
        pair.Call(node, backend_storage.BlockdevCreate, pair.Disk(node, secret), SIZE,
                  INSTANCE, node == "node-a", "", False)


def _Synced(pair):
    _Create(pair)
    pair.Tick(60)


def test_create_and_wait_for_sync(pair):
    _Create(pair)
    assert pair.Status("node-a").cstatus == "SyncSource"
    done, percent = pair.Call("node-a", backend_drbd.DrbdWaitSync, [pair.Disk("node-a")])
    assert not done and percent == 0.0
    pair.Tick(3)
    done, percent = pair.Call("node-b", backend_drbd.DrbdWaitSync, [pair.Disk("node-b")])
    assert not done and percent == pytest.approx(30.0, abs=0.1)
    pair.Tick(7)
    assert pair.Call("node-b", backend_drbd.DrbdWaitSync, [pair.Disk("node-b")]) == \
        (True, 100.0)


def test_needs_activation(pair):
    disk = pair.Disk("node-a")
    assert pair.Call("node-a", backend_drbd.DrbdNeedsActivation, [disk]) == ["disk-uuid-0"]
    _Synced(pair)
    assert pair.Call("node-a", backend_drbd.DrbdNeedsActivation, [disk]) == []
    pair.Call("node-a", backend_drbd.DrbdDisconnectNet, [disk])
    assert pair.Call("node-a", backend_drbd.DrbdNeedsActivation, [disk]) == ["disk-uuid-0"]
    assert pair.Call("node-b", backend_drbd.DrbdNeedsActivation, [pair.Disk("node-b")]) == []


def test_failover_close_and_open(pair):
    _Synced(pair)
    link = os.path.join(pair.roots["node-b"], "var/run/ganeti/instance-disks",
                        f"{INSTANCE}:0")
    with pytest.raises(RPCFail, match="Cannot open devices.*Multiple primaries"):
        pair.Call("node-b", backend_drbd.BlockdevOpen, INSTANCE, [pair.Disk("node-b")],
                  True)
    pair.Call("node-a", backend_drbd.BlockdevClose, INSTANCE, [pair.Disk("node-a")])
    assert pair.Status("node-a").is_secondary
    pair.Call("node-b", backend_drbd.BlockdevOpen, INSTANCE, [pair.Disk("node-b")], True)
    assert pair.Status("node-b").is_primary
    assert os.readlink(link) == "/dev/drbd1"
    pair.Call("node-b", backend_drbd.BlockdevClose, INSTANCE, [pair.Disk("node-b")])
    assert not os.path.lexists(link)


def test_migration_with_two_primaries(pair):
    _Synced(pair)
    for node in ("node-a", "node-b"):
        pair.Call(node, backend_drbd.DrbdDisconnectNet, [pair.Disk(node)])
        assert pair.Status(node).is_standalone
    # the master calls both nodes at once: each waits for the other
    child = pair.Start("node-b", "DrbdAttachNet", [pair.Disk("node-b")], True)
    pair.Call("node-a", backend_drbd.DrbdAttachNet, [pair.Disk("node-a")], True)
    out, _ = child.communicate(timeout=120)
    assert json.loads(out) == [True, None]
    for node in ("node-a", "node-b"):
        status = pair.Status(node)
        assert status.is_primary and status.peer_primary and status.is_connected
    # after the move: the old primary steps down, single-primary again
    pair.Call("node-a", backend_drbd.BlockdevClose, None, [pair.Disk("node-a")])
    for node in ("node-a", "node-b"):
        pair.Call(node, backend_drbd.DrbdDisconnectNet, [pair.Disk(node)])
    child = pair.Start("node-b", "DrbdAttachNet", [pair.Disk("node-b")], False)
    pair.Call("node-a", backend_drbd.DrbdAttachNet, [pair.Disk("node-a")], False)
    assert json.loads(child.communicate(timeout=120)[0]) == [True, None]
    assert pair.Call("node-b", backend_drbd.DrbdWaitSync, [pair.Disk("node-b")]) == \
        (True, 100.0)
    assert pair.Status("node-a").is_secondary and pair.Status("node-a").peer_primary


def test_attach_net_times_out_with_a_bad_secret(pair):
    _Create(pair, secret="one-secret")
    for node in ("node-a", "node-b"):
        pair.Call(node, backend_drbd.DrbdDisconnectNet, [pair.Disk(node, "one-secret")])
    pair.monkeypatch.setattr(backend_drbd, "ATTACH_TIMEOUT", 0.5)
    # node-b's end comes back with another secret: the peers never agree
    with pytest.raises(RPCFail, match="Timeout while connecting.*WFConnection"):
        pair.Call("node-b", backend_drbd.DrbdAttachNet, [pair.Disk("node-b", "other")],
                  False)
    with pytest.raises(RPCFail, match="Timeout while connecting.*WFConnection"):
        pair.Call("node-a", backend_drbd.DrbdAttachNet, [pair.Disk("node-a", "one-secret")],
                  False)
    assert pair.Status("node-a").is_wfconn and pair.Status("node-b").is_wfconn


def test_wait_sync_of_a_standalone_device(pair):
    _Synced(pair)
    pair.Call("node-a", backend_drbd.DrbdDisconnectNet, [pair.Disk("node-a")])
    pair.monkeypatch.setattr(backend_drbd, "WAIT_SYNC_TIMEOUT", 0.2)
    pair.monkeypatch.setattr(backend_drbd, "WAIT_SYNC_POLL", 0.1)
    with pytest.raises(RPCFail, match="neither connected nor resyncing.*StandAlone"):
        pair.Call("node-a", backend_drbd.DrbdWaitSync, [pair.Disk("node-a")])


def test_usermode_helper(pair):
    assert pair.Call("node-a", backend_drbd.GetDrbdUsermodeHelper) == \
        constants.DEFAULT_DRBD_HELPER


def test_bad_disks(pair):
    plain = objects.Disk(dev_type=constants.DT_PLAIN, logical_id=("xenvg", "lv"), size=1,
                         children=[], params={}, uuid="u").ToDict()
    with pytest.raises(RPCFail, match="not a DRBD disk"):
        pair.Call("node-a", backend_drbd.DrbdDisconnectNet, [plain])
    with pytest.raises(RPCFail, match="not found on this node"):
        pair.Call("node-a", backend_drbd.DrbdAttachNet, [pair.Disk("node-a")], False)
    with pytest.raises(RPCFail, match="Invalid disk"):
        pair.Call("node-a", backend_drbd.DrbdWaitSync, ["nonsense"])
    # plain disks open and close (as no-ops) too
    pair.Call("node-a", backend_drbd.BlockdevOpen, INSTANCE, [plain], False)
    pair.Call("node-a", backend_drbd.BlockdevClose, INSTANCE, [plain])
