"""Tests for the export configuration format (lib/export_config.py) and the
node's export calls (lib/backend/export.py)."""

from __future__ import annotations

import os

import pytest

from ganeti import constants, export_config, pathutils
from ganeti.backend import RPCFail
from ganeti.backend import export as bexport

INSTANCE = {
    "name": "inst1.example.com", "os": "noop+default", "primary_node": "node1",
    "hypervisor": constants.HT_FAKE, "disk_template": constants.DT_PLAIN,
    "tags": ["a", "b"],
    "beparams": {constants.BE_MAXMEM: 256, constants.BE_MINMEM: 128,
                 constants.BE_VCPUS: 2, constants.BE_AUTO_BALANCE: True},
    "hvparams": {constants.HV_MIGRATION_PORT: 8102, "acpi": True},
    "osparams": {"message": "hi"}, "osparams_private": {"secret": "s3"},
    "nics": [{"mac": "aa:00:00:11:22:33", "ip": None, "name": "eth0", "network": None,
              "nicparams": {constants.NIC_MODE: constants.NIC_MODE_BRIDGED,
                            constants.NIC_LINK: "br0"}}],
}
DISKS = [{"iv_name": "disk/0", "size": 64, "name": "root", "uuid": "u0",
          "logical_id": ["xenvg", "u0.disk0.snap"]},
         False,
         {"iv_name": "disk/2", "size": 8, "name": None, "uuid": "u2",
          "logical_id": ["loop", "/srv/ganeti/file-storage/i/u2.file.disk2.snap"]}]


def test_round_trip():
    text = export_config.Build(INSTANCE, DISKS, "node1", timestamp=1234)
    info = export_config.Parse(text)
    assert info.version == constants.EXPORT_VERSION == 0
    assert (info.timestamp, info.source, info.os) == (1234, "node1", "noop+default")
    assert info.compression == constants.IEC_NONE
    assert (info.name, info.disk_template, info.hypervisor) == \
        ("inst1.example.com", "plain", "fake")
    assert info.tags == ["a", "b"]
    # disk 1 failed: not listed, the others keep their index
    assert [(d.index, d.size, d.dump, d.ivname, d.name, d.uuid) for d in info.disks] == [
        (0, 64, "u0.disk0.snap", "disk/0", "root", "u0"),
        (2, 8, "u2.file.disk2.snap", "disk/2", None, "u2")]
    assert info.nics == [{"mac": "aa:00:00:11:22:33", "name": "eth0",
                          "mode": "bridged", "link": "br0"}]
    assert info.beparams == {"maxmem": "256", "minmem": "128", "vcpus": "2",
                             "auto_balance": "True"}
    # Cluster-wide hypervisor parameters are not the instance's
    assert info.hvparams == {"acpi": "True"}
    assert info.osparams == {"message": "hi"}
    assert info.osparams_private == {"secret": "s3"}
    # Ganeti's layout: sections and keys
    for line in ("[export]", "[instance]", "[hypervisor]", "[backend]", "[os]",
                 "version = 0", "nic_count = 1", "disk_count = 2", "memory = 256",
                 "disk0_dump = u0.disk0.snap", "nic0_link = br0"):
        assert line in text.splitlines(), line


def test_old_style_memory():
    text = ("[export]\nversion = 0\nos = debootstrap\n"
            "[instance]\nname = old\nmemory = 512\nvcpus = 1\n")
    info = export_config.Parse(text)
    assert info.beparams == {"maxmem": "512", "vcpus": "1"}
    assert info.disks == [] and info.nics == []


def test_no_os_means_raw_images():
    info = export_config.Parse("[export]\nversion = 0\n[instance]\nname = x\n")
    assert info.os is None


def test_newer_version_refused():
    text = export_config.Build(INSTANCE, DISKS, "node1").replace(
        "version = 0", f"version = {constants.EXPORT_VERSION + 1}")
    with pytest.raises(export_config.ExportError, match="newer"):
        export_config.Parse(text)


@pytest.mark.parametrize("text,match", [
    ("", "no \\[export\\] section"),
    ("garbage without sections", "Malformed"),
    ("[export]\nversion = 0\n", "no \\[instance\\] section"),
    ("[export]\nversion = x\n[instance]\nname = a\n", "not an integer"),
    ("[export]\nversion = -1\n[instance]\nname = a\n", "below 0"),
    ("[export]\nos = a\n[instance]\nname = a\n", "Missing 'version'"),
    ("[export]\nversion = 0\n[instance]\n", "names no instance"),
    ("[export]\nversion = 0\ncompression = gzip\n[instance]\nname = a\n",
     "compression 'gzip'"),
    ("[export]\nversion = 0\n[instance]\nname = a\ndisk0_size = 5\n"
     "disk0_dump = ../../etc/passwd\n", "Invalid dump file name"),
    ("[export]\nversion = 0\n[instance]\nname = a\ndisk0_size = big\n"
     "disk0_dump = d0\n", "not an integer"),
    ("[export]\nversion = 0\n[instance]\nname = a\ndisk0_size = 5\n"
     "disk0_dump = d0\ndisk_count = 2\n", "disk_count is 2"),
    ("[export]\nversion = 0\n[instance]\nname = a\nnic_count = 1\n", "nic_count is 1"),
])
def test_malformed(text, match):
    with pytest.raises(export_config.ExportError, match=match):
        export_config.Parse(text)


def test_dump_name():
    assert export_config.DumpName({"logical_id": ["vg", "lv.snap"]}) == "lv.snap"
    with pytest.raises(export_config.ExportError):
        export_config.DumpName({"logical_id": ["vg"]})
    with pytest.raises(export_config.ExportError):
        export_config.DumpName({"logical_id": ["vg", "dir/"]})


# --- the node's calls ------------------------------------------------------------------

@pytest.fixture
def export_dir(tmp_path, monkeypatch):
    directory = tmp_path / "export"
    directory.mkdir()
    monkeypatch.setattr(pathutils, "EXPORT_DIR", str(directory))
    return directory


def _Dumps(directory, name, disks):
    new = directory / (name + ".new")
    new.mkdir()
    for disk in disks:
        if disk:
            (new / export_config.DumpName(disk)).write_bytes(b"data")
    return new


def test_finalize_list_info_remove(export_dir):
    name = INSTANCE["name"]
    _Dumps(export_dir, name, DISKS)
    bexport.FinalizeExport(INSTANCE, DISKS)
    final = export_dir / name
    assert sorted(os.listdir(final)) == ["config.ini", "u0.disk0.snap",
                                         "u2.file.disk2.snap"]
    assert not (export_dir / (name + ".new")).exists()
    assert bexport.ListExports() == [name]
    text = bexport.ExportInfo(str(final))
    assert export_config.Parse(text).name == name
    # By name too
    assert bexport.ExportInfo(name) == text
    # A second export replaces the first in one step
    _Dumps(export_dir, name, DISKS[:1])
    bexport.FinalizeExport(INSTANCE, DISKS[:1])
    assert sorted(os.listdir(final)) == ["config.ini", "u0.disk0.snap"]
    assert sorted(os.listdir(export_dir)) == [name]
    bexport.RemoveExport(name)
    assert bexport.ListExports() == []
    with pytest.raises(RPCFail, match="not found"):
        bexport.RemoveExport(name)


def test_partial_exports_are_not_listed(export_dir):
    (export_dir / "a.new").mkdir()
    (export_dir / "b").mkdir()
    (export_dir / "stray-file").write_text("x")
    assert bexport.ListExports() == ["b"]
    bexport.RemoveExport("a.new")
    assert not (export_dir / "a.new").exists()


def test_finalize_refuses_missing_dump(export_dir):
    _Dumps(export_dir, INSTANCE["name"], [])
    with pytest.raises(RPCFail, match="dump .* is missing"):
        bexport.FinalizeExport(INSTANCE, DISKS)
    assert not (export_dir / INSTANCE["name"]).exists()


@pytest.mark.parametrize("bad", [None, "", "../x", "a/b", ".hidden"])
def test_bad_names(export_dir, bad):
    with pytest.raises(RPCFail, match="Invalid export name"):
        bexport.RemoveExport(bad)


def test_info_refuses_paths_outside_and_bad_exports(export_dir, tmp_path):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "config.ini").write_text("[export]\nversion = 0\n[instance]\nname = a\n")
    with pytest.raises(RPCFail, match="not below the export directory"):
        bexport.ExportInfo(str(outside))
    with pytest.raises(RPCFail, match="No export found"):
        bexport.ExportInfo(str(export_dir / "nosuch"))
    newer = export_dir / "newer"
    newer.mkdir()
    (newer / "config.ini").write_text("[export]\nversion = 7\n[instance]\nname = a\n")
    with pytest.raises(RPCFail, match="newer"):
        bexport.ExportInfo(str(newer))


def test_export_dir_not_a_directory(tmp_path, monkeypatch):
    path = tmp_path / "export"
    path.write_text("a file")
    monkeypatch.setattr(pathutils, "EXPORT_DIR", str(path))
    with pytest.raises(RPCFail, match="not a directory"):
        bexport.ListExports()
    with pytest.raises(RPCFail, match="Cannot finalize"):
        bexport.FinalizeExport(dict(INSTANCE, name="x"), [])
    monkeypatch.setattr(pathutils, "EXPORT_DIR", str(tmp_path / "missing"))
    assert bexport.ListExports() == []


def test_replace_dir_without_exchange(tmp_path, monkeypatch):
    new, final = tmp_path / "a.new", tmp_path / "a"
    new.mkdir()
    (new / "f").write_text("new")
    final.mkdir()
    (final / "f").write_text("old")
    monkeypatch.setattr(bexport, "_Exchange", lambda first, second: False)
    bexport.ReplaceDir(str(new), str(final))
    assert (final / "f").read_text() == "new"
    assert sorted(os.listdir(tmp_path)) == ["a"]
