"""KVM live migration: status parsing, parameters, migration info, and the
hypervisor's steps against a stand-in QMP monitor."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from ganeti import constants, errors, objects
from ganeti.hypervisor.hv_kvm import KVMHypervisor, migration, runtime

_C = constants

# Answers of QEMU 7.2's query-migrate (trimmed)
ACTIVE = {"status": "active", "total-time": 1503, "expected-downtime": 300,
          "setup-time": 2,
          "ram": {"transferred": 50360419, "remaining": 77316096, "total": 134750208,
                  "duplicate": 3000, "normal": 12000, "dirty-sync-count": 1,
                  "mbps": 268.4}}
COMPLETED = {"status": "completed", "total-time": 3012, "downtime": 27, "setup-time": 2,
             "ram": {"transferred": 94218483, "remaining": 0, "total": 134750208,
                     "dirty-sync-count": 2}}
FAILED = {"status": "failed", "error-desc": "Unable to write to socket: Broken pipe"}


def test_parse_status_active():
    status = migration.ParseStatus(ACTIVE)
    assert status == {"status": _C.HV_MIGRATION_ACTIVE, "qemu_status": "active",
                      "postcopy": False, "transferred_ram": 50360419,
                      "total_ram": 134750208, "remaining_ram": 77316096,
                      "dirty_sync_count": 1, "total_time": 1503,
                      "expected_downtime": 300}


def test_parse_status_completed_failed_cancelled_none():
    status = migration.ParseStatus(COMPLETED)
    assert status["status"] == _C.HV_MIGRATION_COMPLETED
    assert status["downtime"] == 27 and "info" not in status
    status = migration.ParseStatus(FAILED)
    assert status["status"] == _C.HV_MIGRATION_FAILED
    assert status["info"] == "Unable to write to socket: Broken pipe"
    for answer in ({"status": "cancelling"}, {"status": "cancelled"}):
        assert migration.ParseStatus(answer)["status"] == _C.HV_MIGRATION_CANCELLED
    # No migration ever started: QEMU answers {}
    for answer in ({}, None, {"status": "none"}):
        status = migration.ParseStatus(answer)
        assert status["status"] == _C.HV_MIGRATION_FAILED
        assert status["info"] == "no migration is going on"
    assert migration.ParseStatus({"status": "bogus"})["info"] == \
        "QEMU's migration status is 'bogus'"


@pytest.mark.parametrize("qemu_status", ["setup", "pre-switchover", "device",
                                         "postcopy-active", "postcopy-paused",
                                         "wait-unplug"])
def test_parse_status_still_active(qemu_status):
    status = migration.ParseStatus({"status": qemu_status})
    assert status["status"] == _C.HV_MIGRATION_ACTIVE
    assert status["postcopy"] == qemu_status.startswith("postcopy")
    assert status["status"] in _C.HV_MIGRATION_VALID_STATUSES


def test_parse_status_ignores_ill_typed_fields():
    status = migration.ParseStatus({"status": "active", "ram": "x", "downtime": "1"})
    assert "downtime" not in status and "total_ram" not in status
    status = migration.ParseStatus({"status": "active", "ram": {"total": None}})
    assert "total_ram" not in status


def test_capabilities():
    assert migration.Capabilities({}) == {"postcopy-ram": False}
    assert migration.Capabilities({_C.HV_KVM_MIGRATION_CAPS: "xbzrle:auto-converge"}) == \
        {"postcopy-ram": False, "xbzrle": True, "auto-converge": True}
    caps = migration.Capabilities({_C.HV_KVM_MIGRATION_CAPS: "postcopy-ram"})
    assert caps == {"postcopy-ram": True}
    assert migration.IsPostcopy({_C.HV_KVM_MIGRATION_CAPS: "xbzrle:postcopy-ram"})
    assert not migration.IsPostcopy({_C.HV_KVM_MIGRATION_CAPS: ""})


def test_parameters():
    hvp = {_C.HV_MIGRATION_BANDWIDTH: 32, _C.HV_MIGRATION_DOWNTIME: 30}
    assert migration.Parameters(hvp) == {"max_bandwidth": 32 * 1024 * 1024,
                                         "downtime_limit": 30}
    # 0 MiB/s: QEMU's own limit
    assert migration.Parameters({_C.HV_MIGRATION_BANDWIDTH: 0,
                                 _C.HV_MIGRATION_DOWNTIME: 0}) == {"downtime_limit": 0}
    assert migration.Parameters({}) == {}
    defaults = _C.HVC_DEFAULTS[_C.HT_KVM]
    assert migration.Parameters(defaults) == {
        "max_bandwidth": defaults[_C.HV_MIGRATION_BANDWIDTH] * 1024 * 1024,
        "downtime_limit": defaults[_C.HV_MIGRATION_DOWNTIME]}
    for bad in (-1, "32", True, 1.5):
        with pytest.raises(errors.HypervisorError, match="migration_bandwidth"):
            migration.Parameters({_C.HV_MIGRATION_BANDWIDTH: bad})


def test_uri():
    assert migration.Uri("192.0.2.1", 8102) == "tcp:192.0.2.1:8102"
    assert migration.Uri("2001:db8::1", 8102) == "tcp:[2001:db8::1]:8102"
    assert migration.Uri("node2.example.com", 1) == "tcp:node2.example.com:1"


def test_should_start_postcopy():
    post = {_C.HV_KVM_MIGRATION_CAPS: "postcopy-ram"}
    first_pass = migration.ParseStatus(ACTIVE)
    second_pass = migration.ParseStatus({**ACTIVE, "ram": {"dirty-sync-count": 2}})
    assert not migration.ShouldStartPostcopy(post, first_pass)
    assert migration.ShouldStartPostcopy(post, second_pass)
    assert not migration.ShouldStartPostcopy({}, second_pass)
    in_postcopy = migration.ParseStatus({"status": "postcopy-active",
                                         "ram": {"dirty-sync-count": 3}})
    assert not migration.ShouldStartPostcopy(post, in_postcopy)


def test_info_round_trip_and_bad_info():
    text = migration.EncodeInfo({"name": "inst1", "disks": []}, 96, False)
    data = migration.DecodeInfo(text)
    assert data["instance"] == {"name": "inst1", "disks": []}
    assert data["memory"] == 96 and data["running"] is False
    for bad in ("{bad", "[]", '{"instance": {}}', "null"):
        with pytest.raises(errors.HypervisorError, match="Invalid KVM migration info"):
            migration.DecodeInfo(bad)
    with pytest.raises(errors.HypervisorError, match="upgrade this node"):
        migration.DecodeInfo('{"version": 99, "instance": {}, "memory": 1}')


def test_devices_unchanged():
    started = {"name": "i", "disks": [{"uuid": "d0"}], "nics": [{"uuid": "n0"}]}
    migration.CheckDevicesUnchanged(started, dict(started), [])
    for current, hotplugged in (
            ({**started, "disks": [{"uuid": "d0"}, {"uuid": "d1"}]}, []),
            ({**started, "nics": []}, []),
            (started, [{"kind": "disk", "id": "disk-d1"}])):
        with pytest.raises(errors.HypervisorError, match="restart the instance"):
            migration.CheckDevicesUnchanged(started, current, hotplugged)


# --- the hypervisor's steps against a stand-in monitor -----------------------------


class FakeQmp:
    """Records commands; answers query-migrate and query-status from lists."""

    def __init__(self, migrate: list[dict[str, Any]], run_state: str = "running",
                 fail: set[str] | None = None) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.migrate_answers = migrate
        self.run_state = run_state
        self.fail = fail or set()

    def __enter__(self) -> FakeQmp:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def _Call(self, name: str, arg: Any = None) -> None:
        self.calls.append((name, arg))
        if name in self.fail:
            from ganeti.hypervisor.hv_kvm.monitor import MonitorError
            raise MonitorError(f"{name} failed", name)

    def MigrateSetCapabilities(self, caps):
        self._Call("caps", dict(caps))

    def MigrateSetParameters(self, **params):
        self._Call("params", params)

    def Migrate(self, uri):
        self._Call("migrate", uri)

    def MigrateStartPostcopy(self):
        self._Call("postcopy")

    def MigrateCancel(self):
        self._Call("cancel")
        self.migrate_answers = [{"status": "cancelled"}]

    def QueryMigrate(self):
        self._Call("query-migrate")
        if len(self.migrate_answers) > 1:
            return self.migrate_answers.pop(0)
        return self.migrate_answers[0]

    def QueryStatus(self):
        self._Call("query-status")
        return {"status": self.run_state}

    def Stop(self):
        self._Call("stop")
        self.run_state = "paused"

    def Cont(self):
        self._Call("cont")
        self.run_state = "running"


@pytest.fixture
def hv(tmp_path, monkeypatch):
    hyper = KVMHypervisor(run_dir=str(tmp_path))
    hyper.qmp = FakeQmp([{}])  # type: ignore[attr-defined]
    hyper.pid = 1234  # type: ignore[attr-defined]
    monkeypatch.setattr(hyper, "_Qmp", lambda name, timeout=10.0: hyper.qmp)
    monkeypatch.setattr(hyper, "_Pid", lambda name: hyper.pid)
    killed: list[int] = []
    monkeypatch.setattr(runtime, "KillPid", lambda pid, timeout=0: killed.append(pid))
    hyper.killed = killed  # type: ignore[attr-defined]
    return hyper


def _Instance(**hvparams: Any) -> objects.Instance:
    return objects.Instance(name="inst1.example.com", uuid=str(uuid.uuid4()),
                            hypervisor=_C.HT_KVM, hvparams=hvparams, beparams={},
                            disks=[], nics=[], os="noop")


def test_migrate_sets_capabilities_parameters_and_uri(hv):
    inst = _Instance(migration_caps="xbzrle", migration_bandwidth=64,
                     migration_downtime=100, migration_port=9000)
    hv.MigrateInstance("cluster", inst, "192.0.2.2", True)
    assert hv.qmp.calls == [
        ("caps", {"postcopy-ram": False, "xbzrle": True}),
        ("params", {"max_bandwidth": 64 * 1024 * 1024, "downtime_limit": 100}),
        ("migrate", "tcp:192.0.2.2:9000")]


def test_non_live_pauses_first_and_resumes_when_migrate_fails(hv):
    hv.qmp.fail = {"migrate"}
    with pytest.raises(errors.HypervisorError, match="migrate failed"):
        hv.MigrateInstance("cluster", _Instance(), "192.0.2.2", False)
    names = [name for name, _ in hv.qmp.calls]
    assert names == ["caps", "params", "query-status", "stop", "migrate", "cont"]
    assert hv.qmp.run_state == "running"


def test_status_switches_to_postcopy_after_the_first_pass(hv):
    inst = _Instance(migration_caps="postcopy-ram")
    hv.qmp.migrate_answers = [ACTIVE, {**ACTIVE, "ram": {"dirty-sync-count": 2}}]
    assert hv.GetMigrationStatus(inst)["postcopy"] is False
    status = hv.GetMigrationStatus(inst)
    assert status["postcopy"] is True and status["status"] == _C.HV_MIGRATION_ACTIVE
    assert ("postcopy", None) in hv.qmp.calls
    # Without the capability it never switches
    hv.qmp.calls.clear()
    hv.GetMigrationStatus(_Instance())
    assert ("postcopy", None) not in hv.qmp.calls


def test_status_of_a_gone_qemu(hv):
    hv.pid = None
    status = hv.GetMigrationStatus(_Instance())
    assert status["status"] == _C.HV_MIGRATION_FAILED and "not running" in status["info"]


def test_finalize_source_failure_cancels_and_resumes(hv):
    hv.qmp.migrate_answers = [ACTIVE]
    hv.qmp.run_state = "paused"
    hv.FinalizeMigrationSource(_Instance(), False, False)
    names = [name for name, _ in hv.qmp.calls]
    assert "cancel" in names and names[-1] == "cont"
    assert hv.killed == []


def test_finalize_source_failure_of_a_live_migration_leaves_it_running(hv):
    hv.qmp.migrate_answers = [FAILED]
    hv.FinalizeMigrationSource(_Instance(), False, True)
    assert [name for name, _ in hv.qmp.calls] == ["query-migrate", "query-status"]


def test_finalize_source_failure_in_postcopy_is_an_error(hv):
    hv.qmp.migrate_answers = [{"status": "postcopy-paused"}]
    with pytest.raises(errors.HypervisorError, match="cannot resume here"):
        hv.FinalizeMigrationSource(_Instance(), False, True)


def test_finalize_source_success_stops_qemu(hv):
    hv.FinalizeMigrationSource(_Instance(), True, True)
    assert hv.killed == [1234]


def test_finalize_dst_keeps_an_instance_not_incoming(hv, tmp_path):
    inst = _Instance()
    state = runtime.Runtime(name=inst.name, uuid=inst.uuid, argv=[], memory=96,
                            max_memory=96, vcpus=1, hvparams={}, instance={},
                            incoming=None)
    runtime.WriteRuntime(state, str(tmp_path))
    hv.FinalizeMigrationDst(inst, "", False)
    assert hv.killed == []
    state.incoming = "192.0.2.2"
    runtime.WriteRuntime(state, str(tmp_path))
    hv.pid = 4321
    hv.FinalizeMigrationDst(inst, "", False)
    assert hv.killed == [4321]


def test_finalize_dst_success_resumes_a_guest_that_ran(hv, tmp_path):
    inst = _Instance()
    state = runtime.Runtime(name=inst.name, uuid=inst.uuid, argv=[], memory=96,
                            max_memory=96, vcpus=1, hvparams={}, instance={},
                            incoming="192.0.2.2")
    runtime.WriteRuntime(state, str(tmp_path))
    hv.qmp.run_state = "paused"
    hv.FinalizeMigrationDst(inst, migration.EncodeInfo({}, 96, True), True)
    assert hv.qmp.run_state == "running"
    assert runtime.ReadRuntime(inst.name, str(tmp_path)).incoming is None
    # A guest paused on the source stays paused
    hv.qmp.run_state = "paused"
    hv.FinalizeMigrationDst(inst, migration.EncodeInfo({}, 96, False), True)
    assert hv.qmp.run_state == "paused"
