"""Tests for ganeti.config.serialize (the configuration's cached JSON text)."""

from __future__ import annotations

import os
import shutil

import pytest

from ganeti import config, constants, errors, objects, serializer
from ganeti.config import base as config_base
from ganeti.config.serialize import ConfigSerializer

# The Ganeti 3.0 configuration of test_config.py, and two of its UUIDs
FIXTURE_30 = os.path.join(os.path.dirname(__file__), "..", "data",
                          "cluster_config_3.0.json")
N1 = "0b6c5a0e-41f4-4d3e-9a39-7f0d7c1e5a01"
I1 = "c3a9b1f0-6d2e-4f7a-8b9c-0d1e2f3a4b01"


def _AddInstance(cfg, name, pnode):
    inst = objects.Instance(name=name, primary_node=pnode, os="debian",
                            hypervisor=constants.HT_KVM, nics=[])
    cfg.AddInstance(inst, "job")
    return inst.uuid


@pytest.fixture
def cfg(tmp_path):
    path = str(tmp_path / "config.data")
    shutil.copy(FIXTURE_30, path)
    return config.ConfigWriter(path, accept_foreign=True)


def _File(cfg) -> str:
    with open(cfg._cfg_file, encoding="utf-8") as fd:
        return fd.read()


def _Expected(cfg) -> str:
    return serializer.DumpJson(cfg._config_data.ToDict())


def test_same_text_as_dumpjson(cfg):
    data = config_base.LoadConfigData(cfg._cfg_file)
    dumper = ConfigSerializer(check=False)
    text = dumper.Dump(data)
    assert text == serializer.DumpJson(data.ToDict())
    assert dumper.last_misses == len(data.instances) + len(data.disks) > 0
    # The second time every instance and disk text is reused
    assert dumper.Dump(data) == text
    assert dumper.last_misses == 0


def test_empty_and_missing_sections():
    data = objects.ConfigData(version=constants.CONFIG_VERSION, serial_no=1,
                              instances={}, nodes={})
    dumper = ConfigSerializer(check=False)
    assert dumper.Dump(data) == serializer.DumpJson(data.ToDict())
    assert "@config-section" not in dumper.Dump(data)


def test_writer_changes_are_written(cfg):
    cfg._serializer = ConfigSerializer(check=False)
    cfg.WriteConfig()
    inst = cfg.GetInstanceInfo(I1)
    inst.beparams = {constants.BE_MAXMEM: 4096}
    cfg.Update(inst)
    assert _File(cfg) == _Expected(cfg)
    assert cfg._serializer.last_misses == 1
    cfg.MarkInstanceUp(I1) if inst.admin_state != constants.ADMINST_UP \
        else cfg.MarkInstanceDown(I1)
    assert _File(cfg) == _Expected(cfg)
    cfg.RenameInstance(I1, "renamed.example.com")
    assert _File(cfg) == _Expected(cfg)
    new = _AddInstance(cfg, "new.example.com", N1)
    assert _File(cfg) == _Expected(cfg) and new in _File(cfg)
    cfg.RemoveInstance(new)
    assert _File(cfg) == _Expected(cfg) and new not in _File(cfg)
    # Written again from the file, it is the same configuration
    assert config.ConfigWriter(cfg._cfg_file, accept_foreign=True) \
        ._config_data.ToDict() == cfg._config_data.ToDict()


def test_disk_renumbering_is_written(cfg):
    cfg._serializer = ConfigSerializer(check=True)
    cfg.WriteConfig()  # every disk's text cached
    inst = cfg.GetInstanceInfo(I1)
    if not inst.disks:
        pytest.skip("the fixture's instance has no disk")
    disk = objects.Disk(dev_type=constants.DT_FILE, size=128,
                        logical_id=("loop", "/srv/x/disk9"))
    # Inserted first: the other disks' iv_names change in place
    cfg.AddInstanceDisk(I1, disk, idx=0)
    assert _File(cfg) == _Expected(cfg)


def test_check_catches_a_change_without_serial_bump(cfg):
    cfg._serializer = ConfigSerializer(check=True)
    cfg.WriteConfig()
    stored = cfg._config_data.instances[I1]
    stored.os = "changed-behind-the-writers-back"
    with pytest.raises(errors.ProgrammerError, match="changed in place without a serial"):
        cfg.WriteConfig()


def test_check_is_on_in_the_test_suites(cfg):
    assert cfg._serializer._check
