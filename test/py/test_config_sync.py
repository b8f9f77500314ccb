"""Tests for ganeti.config_sync.ConfigSync: background, coalescing distribution."""

from __future__ import annotations

import json
import threading
from types import SimpleNamespace

import pytest

from ganeti import config, config_sync, constants, objects
from ganeti.config import base as config_base
from ganeti.rpc.client import RpcResult

pytestmark = pytest.mark.timeout(60)

WAIT = 10
MASTER = "master.example.com"


def _Ok():
    return RpcResult(data=[True, None])


def _Fail(msg):
    return RpcResult(data=msg, failed=True)


class Runner:
    """Records pushes; ``gate`` (when set up) holds uploads until opened."""

    def __init__(self, cfg, fail=()):
        self.cfg = cfg
        self.fail = set(fail)
        self.uploads = []     # (node uuids, serial of the uploaded file)
        self.ssconf = []      # sorted node uuids
        self.gate: threading.Event | None = None
        self.entered = threading.Event()

    def _Res(self, uuids):
        return {u: _Fail("boom") if self.cfg.GetNodeName(u) in self.fail else _Ok()
                for u in uuids}

    def call_upload_file(self, uuids, path):
        self.entered.set()
        if self.gate is not None:
            assert self.gate.wait(WAIT)
        with open(path, encoding="utf-8") as fd:
            self.uploads.append((sorted(uuids), json.load(fd)["serial_no"]))
        return self._Res(uuids)

    def call_write_ssconf_files(self, uuids, values):
        self.ssconf.append(sorted(uuids))
        return self._Res(uuids)


@pytest.fixture
def cfg(tmp_path, monkeypatch):
    monkeypatch.setattr(config_sync.ssconf, "SimpleStore",
                        lambda: SimpleNamespace(WriteFiles=lambda values: None))
    path = str(tmp_path / "config.data")
    cluster = objects.Cluster(
        cluster_name="cluster.example.com", master_ip="192.0.2.254",
        master_netdev="lo", enabled_hypervisors=[constants.HT_FAKE],
        mac_prefix="aa:00:00", rsahostkeypub="ssh-rsa AAAA", candidate_pool_size=3,
        enabled_disk_templates=[constants.DT_DISKLESS])
    master = objects.Node(name=MASTER, primary_ip="192.0.2.1")
    config_base.InitConfig(constants.CONFIG_VERSION, cluster, master, path)
    return config.ConfigWriter(path, accept_foreign=True)


def _AddNode(cfg, name, ip, **kwargs):
    node = objects.Node(name=name, primary_ip=ip, group=cfg.LookupNodeGroup(None),
                        uuid=objects.GenerateUUID(), **kwargs)
    node.UpgradeConfig()
    cfg.AddNode(node, "test")
    return node


def _Touch(cfg):
    """A save that changes no ssconf value."""
    cfg.WriteConfig()


@pytest.fixture
def setup(cfg):
    runner = Runner(cfg, fail=["node4.example.com"])
    # Failed nodes are retried only by the pushes these tests make
    sync = config_sync.Attach(cfg, runner, retry_delay=3600, retry_max_delay=3600)
    nodes = [_AddNode(cfg, "node2.example.com", "192.0.2.2", master_candidate=True),
             _AddNode(cfg, "node3.example.com", "192.0.2.3"),
             _AddNode(cfg, "node4.example.com", "192.0.2.4")]
    runner.uploads.clear()
    runner.ssconf.clear()
    runner.entered.clear()
    sync.Start()
    yield cfg, runner, sync, nodes
    if runner.gate is not None:
        runner.gate.set()
    assert sync.Stop(WAIT)


def test_saves_return_before_the_push_and_flush_waits(setup):
    cfg, runner, sync, (node2, _, _) = setup
    runner.gate = threading.Event()
    _Touch(cfg)  # returns although the upload is held at the gate
    assert runner.entered.wait(WAIT)
    assert runner.uploads == []
    assert sync.Flush(timeout=0.01) is False
    runner.gate.set()
    assert sync.Flush(WAIT) is True
    assert runner.uploads == [([node2.uuid], cfg.GetConfigSerialNo())]


def test_parallel_saves_share_pushes(setup):
    cfg, runner, sync, (node2, _, _) = setup
    runner.gate = threading.Event()
    _Touch(cfg)
    assert runner.entered.wait(WAIT)   # the first push is under way, held
    pushes_before = sync.pushes
    savers = [threading.Thread(target=_Touch, args=(cfg,)) for _ in range(8)]
    for thread in savers:
        thread.start()
    for thread in savers:
        thread.join(WAIT)
    final_serial = cfg.GetConfigSerialNo()
    runner.gate.set()
    assert sync.Flush(WAIT)
    # The 8 saves made while the first push ran cost one more push, not 8
    assert sync.pushes == pushes_before + 1
    assert len(runner.uploads) == 2
    assert runner.uploads[-1] == ([node2.uuid], final_serial)


def test_ssconf_only_where_values_changed(setup):
    cfg, runner, sync, (node2, node3, node4) = setup
    _Touch(cfg)
    assert sync.Flush(WAIT)
    # Values unchanged since the nodes were added: only node4, which failed, again
    assert runner.ssconf == [[node4.uuid]]
    assert sync.last_failures == {"node4.example.com": "boom"}
    runner.ssconf.clear()
    cluster = cfg.GetClusterInfo()
    cluster.AddTag("newtag")  # cluster tags are an ssconf value
    cfg.Update(cluster, None)
    assert sync.Flush(WAIT)
    assert runner.ssconf == [sorted([node2.uuid, node3.uuid, node4.uuid])]
    runner.fail.clear()
    runner.ssconf.clear()
    _Touch(cfg)
    assert sync.Flush(WAIT)
    assert runner.ssconf == [[node4.uuid]]
    assert sync.last_failures == {}
    runner.ssconf.clear()
    _Touch(cfg)
    assert sync.Flush(WAIT)
    assert runner.ssconf == []


def test_changed_node_gets_ssconf_again(setup):
    cfg, runner, sync, (_, node3, _) = setup
    runner.fail.clear()
    _Touch(cfg)
    assert sync.Flush(WAIT)
    runner.ssconf.clear()
    node = cfg.GetNodeInfo(node3.uuid)
    node.drained = False  # a save of the node object (e.g. a re-add)
    cfg.Update(node, None)
    assert sync.Flush(WAIT)
    assert runner.ssconf == [[node3.uuid]]


def test_stop_pushes_pending_then_saves_push_synchronously(setup):
    cfg, runner, sync, (node2, _, _) = setup
    runner.gate = threading.Event()
    _Touch(cfg)
    assert runner.entered.wait(WAIT)
    _Touch(cfg)
    runner.gate.set()
    assert sync.Stop(WAIT)
    assert runner.uploads[-1] == ([node2.uuid], cfg.GetConfigSerialNo())
    runner.uploads.clear()
    _Touch(cfg)  # no thread: pushed before the save returns
    assert runner.uploads == [([node2.uuid], cfg.GetConfigSerialNo())]
    assert sync.Flush(0) is True


def test_distribution_error_does_not_fail_the_save(setup):
    cfg, runner, sync, _ = setup

    def broken(uuids, path):
        raise OSError("network down")

    runner.call_upload_file = broken
    _Touch(cfg)
    assert sync.Flush(WAIT)
    assert sync.last_failures.get("node2.example.com") == "network down"
    # The thread survives and serves the next save
    del runner.call_upload_file
    _Touch(cfg)
    assert sync.Flush(WAIT)
    assert "node2.example.com" not in sync.last_failures


def test_ssconf_write_leaves_unchanged_files_alone(tmp_path):
    from ganeti import ssconf
    store = ssconf.SimpleStore(cfg_location=str(tmp_path))
    store.WriteFiles({constants.SS_CLUSTER_NAME: "cluster.example.com",
                      constants.SS_INSTANCE_LIST: ["a"]})
    name_file = tmp_path / "ssconf_cluster_name"
    list_file = tmp_path / "ssconf_instance_list"
    before = (name_file.stat().st_ino, list_file.stat().st_ino)
    store.WriteFiles({constants.SS_CLUSTER_NAME: "cluster.example.com",
                      constants.SS_INSTANCE_LIST: ["a", "b"]})
    # Atomic replacement makes a new inode: only the changed file got one
    assert name_file.stat().st_ino == before[0]
    assert list_file.stat().st_ino != before[1]
    assert store.GetInstanceList() == ["a", "b"]
    name_file.chmod(0o600)  # a wrong mode is repaired even with equal content
    store.WriteFiles({constants.SS_CLUSTER_NAME: "cluster.example.com"})
    assert name_file.stat().st_mode & 0o777 == constants.SS_FILE_PERMS


# --- the start push and the retries of failed nodes ---------------------------------------

class RecordingRunner(Runner):
    """Runner recording each node's attempts; ``fail_times[name]`` makes a
    node fail that many times before it succeeds."""

    def __init__(self, cfg, fail_times=None):
        super().__init__(cfg)
        self.fail_times = dict(fail_times or {})
        self.attempts = {}    # node name -> [(what, monotonic time, ok)]
        self.cond = threading.Condition()

    def _Res(self, uuids, what="ssconf"):
        import time
        result = {}
        with self.cond:
            for uuid in uuids:
                name = self.cfg.GetNodeName(uuid)
                left = self.fail_times.get(name, 0)
                ok = left <= 0
                if not ok:
                    self.fail_times[name] = left - 1
                self.attempts.setdefault(name, []).append((what, time.monotonic(), ok))
                result[uuid] = _Ok() if ok else _Fail("Connection refused")
            self.cond.notify_all()
        return result

    def call_upload_file(self, uuids, path):
        self.uploads.append((sorted(uuids), None))
        return self._Res(uuids, "config")

    def call_write_ssconf_files(self, uuids, values):
        self.ssconf.append(sorted(uuids))
        return self._Res(uuids, "ssconf")

    def WaitFor(self, predicate):
        with self.cond:
            assert self.cond.wait_for(lambda: predicate(self.attempts), WAIT), self.attempts


@pytest.fixture
def nodes(cfg):
    """node2 (candidate), node3, node4 online; node5 offline. Added while no
    listener was attached: none of them has a copy yet (a fresh master)."""
    return [_AddNode(cfg, "node2.example.com", "192.0.2.2", master_candidate=True),
            _AddNode(cfg, "node3.example.com", "192.0.2.3"),
            _AddNode(cfg, "node4.example.com", "192.0.2.4"),
            _AddNode(cfg, "node5.example.com", "192.0.2.5", offline=True)]


def test_start_pushes_everything_once_and_flush_waits_for_it(cfg, nodes, monkeypatch):
    written = []
    monkeypatch.setattr(config_sync.ssconf, "SimpleStore",
                        lambda: SimpleNamespace(WriteFiles=written.append))
    node2, node3, node4, _ = nodes
    runner = Runner(cfg)
    runner.gate = threading.Event()
    sync = config_sync.Attach(cfg, runner)
    sync.Start()
    try:
        assert runner.entered.wait(WAIT)
        assert sync.Flush(timeout=0.01) is False   # the start push is under way
        runner.gate.set()
        assert sync.Flush(WAIT) is True
        assert runner.uploads == [([node2.uuid], cfg.GetConfigSerialNo())]
        # Every online node but the master; never the offline node5
        assert runner.ssconf == [sorted([node2.uuid, node3.uuid, node4.uuid])]
        assert len(written) == 1   # the master's own ssconf
        assert sync.pushes == 1 and sync.last_failures == {}
    finally:
        assert sync.Stop(WAIT)


def test_failed_node_is_retried_with_backoff_until_it_succeeds(cfg, nodes):
    runner = RecordingRunner(cfg, fail_times={"node4.example.com": 3,
                                              "node2.example.com": 2})
    sync = config_sync.Attach(cfg, runner, retry_delay=0.02, retry_max_delay=10)
    sync.Start()
    try:
        runner.WaitFor(lambda att: att.get("node4.example.com", [(0, 0, 0)])[-1][2]
                       and att.get("node2.example.com", [(0, 0, 0)])[-1][2])
        assert sync.Flush(WAIT)
        node4 = runner.attempts["node4.example.com"]
        assert [ok for _, _, ok in node4] == [False, False, False, True]
        assert {what for what, _, _ in node4} == {"ssconf"}
        # Each retry waited at least twice as long as the one before
        gaps = [later[1] - earlier[1] for earlier, later in zip(node4, node4[1:])]
        assert all(gap >= 0.02 * 2 ** idx * 0.99 for idx, gap in enumerate(gaps)), gaps
        # node2, a candidate, failed both copies: both were retried, and
        # node3, which never failed, was not contacted again
        node2 = runner.attempts["node2.example.com"]
        assert [(what, ok) for what, _, ok in node2] == [
            ("config", False), ("ssconf", False), ("config", True), ("ssconf", True)]
        assert len(runner.attempts["node3.example.com"]) == 1
        assert sync.last_failures == {} and sync.PendingRetries() == {}
        assert sync.retries >= 3
    finally:
        assert sync.Stop(WAIT)


def test_node_flagged_offline_is_no_longer_retried(cfg, nodes):
    runner = RecordingRunner(cfg, fail_times={"node4.example.com": 10 ** 6})
    sync = config_sync.Attach(cfg, runner, retry_delay=3600, retry_max_delay=3600)
    sync.Start()
    try:
        assert sync.Flush(WAIT)
        assert set(sync.PendingRetries()) == {"node4.example.com"}
        error, delay = sync.PendingRetries()["node4.example.com"]
        assert error == "Connection refused" and delay > 3000
        before = len(runner.attempts["node4.example.com"])
        node = cfg.GetNodeInfoByName("node4.example.com")
        node.offline = True
        cfg.Update(node, None)
        assert sync.Flush(WAIT)
        assert sync.PendingRetries() == {} and sync.last_failures == {}
        assert len(runner.attempts["node4.example.com"]) == before
    finally:
        assert sync.Stop(WAIT)


def test_a_restarted_master_brings_stale_nodes_up_to_date(cfg, nodes):
    """The first master pushed while node3 was down and died; the new one
    pushes to every node at its start, whatever the first one recorded."""
    first = RecordingRunner(cfg, fail_times={"node3.example.com": 1})
    sync = config_sync.Attach(cfg, first, retry_delay=3600)
    sync.Start()
    assert sync.Flush(WAIT)
    assert set(sync.last_failures) == {"node3.example.com"}
    assert sync.Stop(WAIT)   # the crash: the retry never happens
    second = RecordingRunner(cfg)
    restarted = config_sync.ConfigSync(cfg, second)
    restarted.Start()
    try:
        assert restarted.Flush(WAIT)
        assert sorted(second.attempts) == ["node2.example.com", "node3.example.com",
                                           "node4.example.com"]
        assert restarted.last_failures == {}
    finally:
        assert restarted.Stop(WAIT)


def test_deferred_saves_go_with_the_next_push(setup):
    cfg, runner, sync, (node2, _, _) = setup
    pushes = sync.pushes
    with config_sync.DeferDistribution():
        _Touch(cfg)
        _Touch(cfg)
    deferred_serial = cfg.GetConfigSerialNo()
    # Written, not due for a push: nothing woke the distributor
    assert sync._saved < deferred_serial  # noqa: SLF001 - no other sign of it
    assert sync.pushes == pushes and runner.uploads == []
    # Flush (the end of the opcode) pushes them
    assert sync.Flush(WAIT)
    assert runner.uploads == [([node2.uuid], deferred_serial)]
    runner.uploads.clear()
    with config_sync.DeferDistribution():
        _Touch(cfg)
    _Touch(cfg)   # a normal save takes the deferred one along
    assert sync.Flush(WAIT)
    assert runner.uploads[-1] == ([node2.uuid], cfg.GetConfigSerialNo())
    assert sync.pushes <= pushes + 3
