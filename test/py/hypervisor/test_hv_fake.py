"""The fake hypervisor: state files, memory accounting, migration."""

from __future__ import annotations

import json
import os

import pytest

from ganeti import constants, errors, objects
from ganeti.hypervisor import base
from ganeti.hypervisor.hv_fake import FakeHypervisor


def _Inst(name="inst1", mem=256, vcpus=2):
    return objects.Instance(name=name, uuid=f"uuid-{name}", hypervisor=constants.HT_FAKE,
                            beparams={constants.BE_MAXMEM: mem, constants.BE_VCPUS: vcpus},
                            hvparams={}, nics=[objects.NIC(mac="aa:00:00:00:00:01")],
                            disks=[], os="noop")


def _Hv(tmp_path, memory=1024, sub="node"):
    settings = tmp_path / f"{sub}-settings.json"
    settings.write_text(json.dumps({"memory_total": memory, "cpu_total": 4}))
    return FakeHypervisor(state_dir=str(tmp_path / sub), settings_file=str(settings))


def test_start_list_info_stop(tmp_path):
    hv = _Hv(tmp_path)
    inst = _Inst()
    assert hv.ListInstances() == []
    assert hv.GetInstanceInfo("inst1") is None
    hv.StartInstance(inst, [(None, "/dev/disk0", None)], False)
    assert hv.ListInstances() == ["inst1"]
    name, _, mem, vcpus, state, _ = hv.GetInstanceInfo("inst1")
    assert (name, mem, vcpus, state) == ("inst1", 256, 2, base.HvInstanceState.RUNNING)
    assert [i[0] for i in hv.GetAllInstancesInfo()] == ["inst1"]
    with open(tmp_path / "node" / "inst1", encoding="utf-8") as fd:
        assert json.load(fd)["disks"] == ["/dev/disk0"]
    # a new object (as after a daemon restart) sees the same state
    assert _Hv(tmp_path).ListInstances() == ["inst1"]
    hv.RebootInstance(inst)
    assert hv.ListInstances() == ["inst1"]
    hv.StopInstance(inst)
    assert hv.ListInstances() == []


def test_start_twice_fails(tmp_path):
    hv = _Hv(tmp_path)
    hv.StartInstance(_Inst(), [], False)
    with pytest.raises(errors.HypervisorError, match="inst1.*already running"):
        hv.StartInstance(_Inst(), [], False)


def test_stop_not_running(tmp_path):
    hv = _Hv(tmp_path)
    with pytest.raises(errors.HypervisorError, match="inst1: not running"):
        hv.StopInstance(_Inst())
    with pytest.raises(errors.HypervisorError, match="reboot instance inst1"):
        hv.RebootInstance(_Inst())


def test_memory_accounting(tmp_path):
    hv = _Hv(tmp_path, memory=1000)
    info = hv.GetNodeInfo()
    assert (info["memory_total"], info["memory_free"], info["cpu_total"]) == (1000, 1000, 4)
    hv.StartInstance(_Inst("a", mem=600), [], False)
    assert hv.GetNodeInfo()["memory_free"] == 400
    with pytest.raises(errors.HypervisorError,
                       match=r"instance b: needs 500 MiB, the node has 400 MiB free"
                             r" of 1000 MiB"):
        hv.StartInstance(_Inst("b", mem=500), [], False)
    assert hv.ListInstances() == ["a"]
    hv.StartInstance(_Inst("b", mem=400), [], False)
    assert hv.GetNodeInfo()["memory_free"] == 0
    hv.BalloonInstanceMemory(_Inst("b"), 100)
    assert hv.GetNodeInfo()["memory_free"] == 300
    with pytest.raises(errors.HypervisorError, match="Not enough memory"):
        hv.BalloonInstanceMemory(_Inst("b"), 1000)


def test_real_memory(tmp_path):
    hv = FakeHypervisor(state_dir=str(tmp_path / "s"),
                        settings_file=str(tmp_path / "missing.json"))
    info = hv.GetNodeInfo()
    assert info["memory_total"] > 0 and info["memory_free"] >= 0


@pytest.mark.parametrize("content,match", [
    ("{", "Invalid JSON"),
    ('{"memory_total": -1}', "Invalid memory_total -1"),
    ('{"memory_total": "x"}', "Invalid memory_total 'x'"),
])
def test_bad_settings(tmp_path, content, match):
    settings = tmp_path / "s.json"
    settings.write_text(content)
    hv = FakeHypervisor(state_dir=str(tmp_path / "s"), settings_file=str(settings))
    with pytest.raises(errors.HypervisorError, match=match):
        hv.GetNodeInfo()


def test_soft_stop_ignored_then_force(tmp_path):
    hv = _Hv(tmp_path)
    hv.StartInstance(_Inst(), [], False)
    path = tmp_path / "node" / "inst1"
    state = json.loads(path.read_text())
    state["ignore_soft_stop"] = True
    path.write_text(json.dumps(state))
    hv.StopInstance(_Inst())
    assert hv.ListInstances() == ["inst1"]
    hv.StopInstance(_Inst(), force=True)
    assert hv.ListInstances() == []


def test_corrupt_state(tmp_path):
    hv = _Hv(tmp_path)
    os.makedirs(tmp_path / "node")
    (tmp_path / "node" / "bad").write_text("not json")
    with pytest.raises(errors.HypervisorError, match="Corrupt state file .*bad"):
        hv.ListInstances()


def test_console():
    console = FakeHypervisor.GetInstanceConsole(_Inst(), objects.Node(name="node1"),
                                                None, {}, {})
    console.Validate()
    assert console.kind == constants.CONS_MESSAGE
    assert "inst1" in console.message and "node1" in console.message


def test_verify(tmp_path):
    assert _Hv(tmp_path).Verify() is None


def test_migration(tmp_path):
    src, dst = _Hv(tmp_path, sub="src"), _Hv(tmp_path, memory=2048, sub="dst")
    inst = _Inst(mem=512)
    src.StartInstance(inst, [], False)
    info = src.MigrationInfo(inst)
    dst.AcceptInstance(inst, info, "dst-node")
    assert dst.ListInstances() == []  # incoming, not running yet
    assert dst.GetNodeInfo()["memory_free"] == 2048 - 512  # but memory reserved
    src.MigrateInstance("cluster", inst, "dst-node", True)
    assert src.GetMigrationStatus(inst)["status"] == constants.HV_MIGRATION_COMPLETED
    dst.FinalizeMigrationDst(inst, info, True)
    src.FinalizeMigrationSource(inst, True, True)
    assert src.ListInstances() == [] and dst.ListInstances() == ["inst1"]


def test_migration_failure_rolls_back(tmp_path):
    src, dst = _Hv(tmp_path, sub="src"), _Hv(tmp_path, sub="dst")
    inst = _Inst()
    src.StartInstance(inst, [], False)
    info = src.MigrationInfo(inst)
    dst.AcceptInstance(inst, info, "dst-node")
    src.MigrateInstance("cluster", inst, "dst-node", False)
    dst.FinalizeMigrationDst(inst, info, False)
    src.FinalizeMigrationSource(inst, False, False)
    assert src.ListInstances() == ["inst1"] and dst.ListInstances() == []
    assert src.GetMigrationStatus(inst)["status"] == constants.HV_MIGRATION_FAILED


def test_accept_without_memory(tmp_path):
    src, dst = _Hv(tmp_path, sub="src"), _Hv(tmp_path, memory=100, sub="dst")
    inst = _Inst(mem=512)
    src.StartInstance(inst, [], False)
    with pytest.raises(errors.HypervisorError, match="accept instance inst1: needs 512"):
        dst.AcceptInstance(inst, src.MigrationInfo(inst), "dst")
    with pytest.raises(errors.HypervisorError, match="Invalid migration info"):
        dst.AcceptInstance(inst, "{bad", "dst")
    with pytest.raises(errors.HypervisorError, match="not running"):
        dst.MigrationInfo(inst)


def test_bad_instance_name(tmp_path):
    with pytest.raises(errors.HypervisorError, match="Invalid instance name '../x'"):
        _Hv(tmp_path).StartInstance(_Inst("../x"), [], False)
