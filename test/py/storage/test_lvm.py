"""storage.lvm without LVM: the report parsers on captured lvm2 outputs,
name and tag checks, and the commands LogicalVolume and the storage units
run (through a scripted ``_RunLvm``).

The samples are lvm2 2.03 outputs of ``--noheadings --units=m --nosuffix
--separator=|`` captured on loop devices (activation off, hence the "X"
states), plus older 6-character attributes and hand-made odd cases.
"""

from __future__ import annotations

import pytest

from ganeti import constants, errors, pathutils, utils
from ganeti.storage import container, lvm

# --- samples -----------------------------------------------------------------------------

VGS = """\
  xenvg|192.00
  othervg|1020.00
"""

VG_REPORT = """\
  xenvg|192.00|48.00|wz-pn-|2
  datavg|96.00|72.00|wz--n-|1
"""

LVS = """\
  xenvg|big|120.00|-wi-XX--p-
  xenvg|disk0|16.00|-wi-XX----
  xenvg|inst1.example.com-disk0_data|8.00|-wi-ao----
  xenvg|old|4.00|-wi-a-
  xenvg|down|4.00|-wi---
  xenvg|thinvirt|4.00|vwi-a-v---
"""

# lvs -o lv_name,vg_name,lv_size,devices: a striped LV, an LV extended on the
# same PV (two segments), an LV partly on a missing PV
LV_DEVICES = """\
  big|xenvg|120.00|[unknown](0)
  big|xenvg|120.00|/dev/loop0(4)
  disk1|xenvg|24.00|/dev/loop0(0)
  disk1|xenvg|24.00|/dev/loop0(10)
  striped|xenvg|16.00|/dev/loop0(4),/dev/loop1(0)
  empty|xenvg|0|
"""

# pvs -o pv_name,vg_name,pv_size,pv_free,pv_used,pv_attr,pv_uuid,lv_name
PVS = """\
  /dev/loop0|xenvg|96.00|64.00|32.00|a--|uuid-0|disk0
  /dev/loop0|xenvg|96.00|64.00|32.00|a--|uuid-0|striped
  /dev/loop0|xenvg|96.00|64.00|32.00|a--|uuid-0|
  /dev/loop1|xenvg|96.00|88.00|8.00|u--|uuid-1|striped
  /dev/loop1|xenvg|96.00|88.00|8.00|u--|uuid-1|
  [unknown]|xenvg|96.00|0|96.00|a-m|uuid-2|big
  [unknown]|xenvg|100.00|100.00|0|a-m|uuid-3|
  /dev/loop4||100.00|100.00|0|---|uuid-4|
"""

LV_INFO = """\
  -wi-XX----|-1|-1|4.00|2|/dev/loop0(4),/dev/loop1(0)|16.00
  -wi-XX----|-1|-1|4.00|1|/dev/loop0(10)|16.00
"""


# --- parsers -----------------------------------------------------------------------------

def test_volume_groups():
    assert lvm.ParseVolumeGroups(VGS) == {"xenvg": 192, "othervg": 1020}
    assert lvm.ParseVolumeGroups("") == {}
    assert lvm.ParseVolumeGroups("\n  \n") == {}


def test_vg_report_partial():
    xenvg, datavg = lvm.ParseVgReport(VG_REPORT)
    assert xenvg == {"name": "xenvg", "size": 192.0, "free": 48.0,
                     "attributes": "wz-pn-", "pv_count": 2, "partial": True}
    assert not datavg["partial"] and datavg["pv_count"] == 1


def test_logical_volumes_states():
    lvs = lvm.ParseLogicalVolumes(LVS)
    # unknown states (no device-mapper) are neither inactive nor online
    assert lvs["xenvg/big"] == (120.0, False, False)
    assert lvs["xenvg/disk0"] == (16.0, False, False)
    assert lvs["xenvg/inst1.example.com-disk0_data"] == (8.0, False, True)
    assert lvs["xenvg/old"] == (4.0, False, False)
    assert lvs["xenvg/down"] == (4.0, True, False)
    assert "xenvg/thinvirt" not in lvs        # virtual volumes are left out
    assert lvm.ParseLogicalVolumes("") == {}


@pytest.mark.parametrize("output, match", [
    ("  xenvg|lv|4.00|-wi-\n", "Invalid attributes '-wi-'.*xenvg/lv"),
    ("  xenvg|lv|4.00\n", "expected 4 fields, got 3"),
    ("  xenvg|lv|four|-wi-a-\n", "Invalid size 'four'"),
])
def test_logical_volumes_bad_output(output, match):
    with pytest.raises(errors.StorageError, match=match):
        lvm.ParseLogicalVolumes(output)


def test_volume_list():
    vols = lvm.ParseVolumeList(LV_DEVICES)
    assert [(v["name"], v["dev"]) for v in vols] == [
        ("big", "[unknown]"), ("big", "/dev/loop0"), ("disk1", "/dev/loop0"),
        ("striped", "/dev/loop0"), ("striped", "/dev/loop1"), ("empty", "")]
    assert vols[0] == {"name": "big", "vg": "xenvg", "size": 120.0, "dev": "[unknown]"}
    assert lvm.ParseVolumeList("") == []


def test_physical_volumes():
    pvs = lvm.ParsePhysicalVolumes(PVS)
    assert [pv["name"] for pv in pvs] == ["/dev/loop0", "/dev/loop1", "[unknown]",
                                          "[unknown]", "/dev/loop4"]
    loop0, loop1, missing_used, missing_empty, orphan = pvs
    assert loop0 == {"name": "/dev/loop0", "vg_name": "xenvg", "size": 96.0,
                     "free": 64.0, "used": 32.0, "attributes": "a--",
                     "allocatable": True, "missing": False, "uuid": "uuid-0",
                     "lv_list": ["disk0", "striped"]}
    # "u": in a VG but not allocatable (pvchange -x n)
    assert not loop1["allocatable"] and loop1["lv_list"] == ["striped"]
    # two missing PVs are told apart by their UUIDs; missing is never allocatable
    assert missing_used["missing"] and not missing_used["allocatable"]
    assert missing_used["lv_list"] == ["big"] and missing_empty["lv_list"] == []
    assert orphan["vg_name"] == "" and not orphan["allocatable"]
    assert lvm.ParsePhysicalVolumes("") == []


def test_physical_volumes_short_attributes():
    (pv,) = lvm.ParsePhysicalVolumes("  /dev/sdb1|xenvg|10.00|10.00|0|a|u|\n")
    assert pv["allocatable"] and not pv["missing"]


def test_lv_info():
    info = lvm.ParseLvInfo(LV_INFO)
    assert info == {"attributes": "-wi-XX----", "major": None, "minor": None,
                    "extent_size": 4.0, "stripes": 2, "size": 16.0,
                    "pv_names": ["/dev/loop0", "/dev/loop1"]}
    info = lvm.ParseLvInfo("  -wi-ao|253|3|4.00|1|/dev/sda5(0)|1024.00\n")
    assert (info["major"], info["minor"], info["pv_names"]) == (253, 3, ["/dev/sda5"])
    with pytest.raises(errors.StorageError, match="Empty lvs output"):
        lvm.ParseLvInfo("")


# --- names and tags ------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["xenvg", "vg-1", "a+b_c.d", "_x"])
def test_good_vg_names(name):
    assert lvm.CheckVgName(name) == name


@pytest.mark.parametrize("name, why", [
    ("..", "reserved"), (".", "reserved"), ("-vg", "starts with '-'"),
    ("vg/x", "only letters"), ("v g", "only letters"), ("x" * 128, "longer than 127"),
    ("", "non-empty string"), (None, "non-empty string"),
])
def test_bad_vg_names(name, why):
    with pytest.raises(errors.BlockDeviceError, match=f"volume group name.*{why}"):
        lvm.CheckVgName(name)


@pytest.mark.parametrize("name, why", [
    ("snapshot", "reserved"), ("pvmove", "reserved"), ("disk_mlog", "'_mlog'"),
    ("a_rimage_1", "'_rimage'"), ("../etc", "only letters"),
])
def test_bad_lv_names(name, why):
    with pytest.raises(errors.BlockDeviceError, match=f"logical volume name '.*': .*{why}"):
        lvm.CheckLvName(name)


def test_sanitize_tag():
    assert lvm.SanitizeTag("originstname+inst1.example.com") == \
        "originstname+inst1.example.com"
    assert lvm.SanitizeTag("-a b/c:d") == "_a_b_c_d"
    assert len(lvm.SanitizeTag("x" * 300)) == 128


# --- the command runner ---------------------------------------------------------------------

class FakeRunCmd:
    def __init__(self):
        self.calls = []

    def __call__(self, cmd, env=None, **kwargs):
        self.calls.append((list(cmd), dict(env or {})))
        return utils.RunResult(0, None, "", "", cmd)


def test_environment_of_a_virtual_node(tmp_path, monkeypatch):
    root = tmp_path / "node1"
    (root / "etc/lvm").mkdir(parents=True)
    pathutils._SetRoot(str(root), "node1")
    try:
        assert lvm.LvmEnvironment() == {"LVM_SUPPRESS_FD_WARNINGS": "1"}
        (root / "etc/lvm/lvm.conf").write_text("global { activation = 0 }\n")
        assert lvm.LvmEnvironment() == {"LVM_SUPPRESS_FD_WARNINGS": "1",
                                        "LVM_SYSTEM_DIR": f"{root}/etc/lvm"}
        fake = FakeRunCmd()
        monkeypatch.setattr(utils, "RunCmd", fake)
        monkeypatch.setattr(lvm, "_ConfiguredActivation", lambda sysdir: False)
        lvm._RunLvm(["vgs"])
        assert fake.calls == [(["vgs"], {"LVM_SUPPRESS_FD_WARNINGS": "1",
                                         "LVM_SYSTEM_DIR": f"{root}/etc/lvm"})]
    finally:
        pathutils.Reload()
    assert "LVM_SYSTEM_DIR" not in lvm.LvmEnvironment()


def test_activation_turned_off_without_device_mapper(monkeypatch):
    fake = FakeRunCmd()
    monkeypatch.setattr(utils, "RunCmd", fake)
    monkeypatch.setattr(lvm, "_ConfiguredActivation", lambda sysdir: True)
    monkeypatch.setattr(lvm, "_DeviceMapperPresent", lambda: False)
    lvm._RunLvm(["lvs", "-o", "lv_name"])
    assert fake.calls[0][0] == ["lvs", "--config", "global{activation=0}", "-o",
                                "lv_name"]
    assert not lvm.ActivationEnabled()
    monkeypatch.setattr(lvm, "_DeviceMapperPresent", lambda: True)
    lvm._RunLvm(["lvs"])
    assert fake.calls[1][0] == ["lvs"]
    assert lvm.ActivationEnabled()


def test_errors_name_command_subject_and_stderr(monkeypatch):
    monkeypatch.setattr(lvm, "_ConfiguredActivation", lambda sysdir: False)
    monkeypatch.setattr(utils, "RunCmd", lambda cmd, env=None: utils.RunResult(
        5, None, "", "  WARNING: Activation disabled. No device-mapper interaction"
        " will be attempted.\n  Volume group \"nosuch\" not found\n", cmd))
    with pytest.raises(errors.StorageError,
                       match=r"^vgs for volume group nosuch failed \(exited with exit"
                             r" code 5\): Volume group \"nosuch\" not found$"):
        lvm._RunLvm(["vgs", "nosuch"], subject="volume group nosuch")
    with pytest.raises(errors.BlockDeviceError):
        lvm._RunLvm(["lvremove", "-f", "x/y"], error=errors.BlockDeviceError)

    def _Missing(cmd, env=None):
        raise errors.OpExecError("No such file or directory: 'lvs'")
    monkeypatch.setattr(utils, "RunCmd", _Missing)
    with pytest.raises(errors.StorageError, match="Cannot run lvs .*is lvm2 installed"):
        lvm._RunLvm(["lvs"])


# --- commands of LogicalVolume and the units (scripted LVM) ---------------------------------

class FakeLvm:
    """Stands in for _RunLvm: answers by command name from ``answers``
    (stdout, or (exit code, stdout, stderr), or a list of those used in
    turn); records every command."""

    def __init__(self, answers):
        self.answers = answers
        self.calls = []

    def __call__(self, args, subject=None, error=errors.StorageError, check=True,
                 system_dir=None):
        args = list(args)
        self.calls.append(args)
        answer = self.answers.get(args[0], "")
        if isinstance(answer, list):
            answer = answer.pop(0) if len(answer) > 1 else answer[0]
        code, out, err = (0, answer, "") if isinstance(answer, str) else answer
        if args[0] == "pvs" and not any("lv_name" in arg for arg in args):
            # without lv_name pvs prints one line per PV
            out = "".join(dict.fromkeys(line.rsplit("|", 1)[0] + "\n"
                                        for line in out.splitlines()))
        result = utils.RunResult(code, None, out, err, args)
        if check and result.failed:
            raise error(f"{args[0]} failed: {err}")
        return result

    def Names(self):
        return [call[0] for call in self.calls]


TWO_PVS = """\
  /dev/loop0|xenvg|96.00|40.00|56.00|a--|u0|other
  /dev/loop1|xenvg|96.00|96.00|0|a--|u1|
  /dev/loop2|xenvg|96.00|96.00|0|u--|u2|
"""
XENVG = "  xenvg|192.00|136.00|wz--n-|3\n"
DISK0_INFO = "  -wi-XX----|-1|-1|4.00|1|/dev/loop1(0)|16.00\n"


@pytest.fixture
def fake_lvm(monkeypatch):
    def _Make(answers):
        fake = FakeLvm(answers)
        monkeypatch.setattr(lvm, "_RunLvm", fake)
        return fake
    monkeypatch.setattr(lvm, "ActivationEnabled", lambda system_dir=None: False)
    return _Make


def test_create_command(fake_lvm):
    fake = fake_lvm({"vgs": XENVG, "pvs": TWO_PVS, "lvs": DISK0_INFO})
    dev = lvm.LogicalVolume.Create(("xenvg", "disk0"), [], 16, None,
                                   {constants.LV_STRIPES: 3}, False)
    create = [call for call in fake.calls if call[0] == "lvcreate"]
    # at most one stripe per allocatable PV; most free space first
    assert create == [["lvcreate", "-L", "16m", "-n", "disk0", "-i", "2", "-an", "-Zn",
                       "xenvg", "/dev/loop1", "/dev/loop0"]]
    assert dev.attached and dev.dev_path == "/dev/xenvg/disk0"
    assert dev.pv_names == ["/dev/loop1"]
    # one report of the PVs, without a line per volume, then the new volume's
    assert fake.Names() == ["pvs", "lvcreate", "lvs"]
    assert not any("lv_name" in arg for arg in fake.calls[0])


def test_create_tags_the_volume(fake_lvm):
    fake = fake_lvm({"pvs": TWO_PVS, "lvs": DISK0_INFO})
    assert lvm.LogicalVolume.CREATE_TAKES_INFO
    lvm.LogicalVolume.Create(("xenvg", "disk0"), [], 16, None, {}, False,
                             info="originstname+inst1.example.com")
    # the tag comes with lvcreate: no lvchange --addtag afterwards
    assert fake.Names() == ["pvs", "lvcreate", "lvs"]
    create = fake.calls[1]
    assert create[create.index("--addtag") + 1] == "originstname+inst1.example.com"


def test_create_falls_back_to_fewer_stripes(fake_lvm):
    fake = fake_lvm({"vgs": XENVG, "pvs": TWO_PVS, "lvs": DISK0_INFO,
                     "lvcreate": [(5, "", "Insufficient suitable allocatable extents"),
                                  ""]})
    lvm.LogicalVolume.Create(("xenvg", "disk0"), [], 64, None,
                             {constants.LV_STRIPES: 2}, False)
    assert [call[6] for call in fake.calls if call[0] == "lvcreate"] == ["2", "1"]


def test_create_refusals(fake_lvm):
    fake_lvm({"vgs": XENVG, "pvs": TWO_PVS})
    with pytest.raises(errors.BlockDeviceError,
                       match="Not enough free space in volume group xenvg: requested"
                             " 200 MiB, free 136 MiB"):
        lvm.LogicalVolume.Create(("xenvg", "big"), [], 200, None, {}, False)
    with pytest.raises(errors.BlockDeviceError, match="Invalid size 0"):
        lvm.LogicalVolume.Create(("xenvg", "big"), [], 0, None, {}, False)
    with pytest.raises(errors.BlockDeviceError, match="Invalid number of stripes 0"):
        lvm.LogicalVolume.Create(("xenvg", "big"), [], 4, None,
                                 {constants.LV_STRIPES: 0}, False)
    with pytest.raises(errors.BlockDeviceError, match="Invalid logical volume id"):
        lvm.LogicalVolume.Create(("xenvg",), [], 4, None, {}, False)
    fake_lvm({"vgs": (5, "", '  Volume group "nosuch" not found\n')})
    with pytest.raises(errors.BlockDeviceError,
                       match="Volume group 'nosuch' does not exist on this node"):
        lvm.LogicalVolume.Create(("nosuch", "lv"), [], 4, None, {}, False)


def test_create_exclusive_storage(fake_lvm):
    fake = fake_lvm({"vgs": XENVG, "pvs": TWO_PVS, "lvs": DISK0_INFO})
    # only /dev/loop1 is empty and allocatable: one spindle
    lvm.LogicalVolume.Create(("xenvg", "disk0"), [], 64, None, {}, True)
    create = [call for call in fake.calls if call[0] == "lvcreate"]
    assert create == [["lvcreate", "-L", "64m", "-n", "disk0", "-i", "1", "-an", "-Zn",
                       "xenvg", "/dev/loop1"]]
    with pytest.raises(errors.BlockDeviceError,
                       match="Not enough empty PVs \\(spindles\\) in volume group xenvg"
                             " for a disk of 100 MiB: 1 empty PV"):
        lvm.LogicalVolume.Create(("xenvg", "big"), [], 100, None, {}, True)
    with pytest.raises(errors.BlockDeviceError, match="2 requested, 1 available"):
        lvm.LogicalVolume.Create(("xenvg", "big"), [], 10, 2, {}, True)
    with pytest.raises(errors.BlockDeviceError,
                       match="Requested number of spindles \\(0\\) is not enough"):
        lvm.LogicalVolume.Create(("xenvg", "big"), [], 10, 0, {}, True)


def test_grow_commands(fake_lvm):
    fake = fake_lvm({"vgs": XENVG, "pvs": TWO_PVS,
                     "lvs": "  -wi-XX----|-1|-1|4.00|2|/dev/loop0(0),/dev/loop1(0)|16.00\n",
                     "lvextend": [(5, "", "Insufficient free space"), ""]})
    dev = lvm.LogicalVolume(("xenvg", "disk0"), [], 16, {})
    dev.Grow(5, True, True, False)
    extend = [call for call in fake.calls if call[0] == "lvextend"]
    # two stripes of 4 MiB extents: 5 MiB become 8; contiguous first, then cling
    assert extend == [
        ["lvextend", "-L", "+8m", "--test", "--alloc", "contiguous", "xenvg/disk0"],
        ["lvextend", "-L", "+8m", "--test", "--alloc", "cling", "xenvg/disk0"]]
    assert dev.size == 16
    fake.calls.clear()
    dev.Grow(8, False, True, True)
    (call,) = [call for call in fake.calls if call[0] == "lvextend"]
    # exclusive storage: only the LV's own PVs
    assert call == ["lvextend", "-L", "+8m", "--alloc", "contiguous", "xenvg/disk0",
                    "/dev/loop0", "/dev/loop1"]
    assert dev.size == 24
    fake.calls.clear()
    dev.Grow(8, False, False, False)
    assert fake.calls == []
    with pytest.raises(errors.BlockDeviceError, match="Not enough free space to grow"
                       " xenvg/disk0 by 400 MiB in volume group xenvg: 136 MiB free"):
        dev.Grow(400, False, True, False)


def test_snapshot_setinfo_rename_remove(fake_lvm):
    fake = fake_lvm({"vgs": XENVG, "lvs": [DISK0_INFO, (5, "", "Failed to find")]})
    dev = lvm.LogicalVolume(("xenvg", "disk0"), [], 16, {})
    fake.answers["lvs"] = [DISK0_INFO, (5, "", "Failed to find logical volume")]
    assert dev.Snapshot() == ("xenvg", "disk0.snap")
    assert fake.calls[-1] == ["lvcreate", "-s", "-L", "16m", "-n", "disk0.snap",
                              "xenvg/disk0"]
    fake.answers["lvs"] = [DISK0_INFO, "  disk0\n", DISK0_INFO]
    assert dev.Snapshot("s1", 8) == ("xenvg", "s1")
    assert ["lvremove", "-f", "xenvg/s1"] in fake.calls
    fake.answers["lvs"] = [DISK0_INFO, "  \n"]
    with pytest.raises(errors.BlockDeviceError, match="exists and is not its snapshot"):
        dev.Snapshot("other")
    fake.answers["lvs"] = DISK0_INFO
    dev.SetInfo("originstname+inst1.example.com x")
    assert fake.calls[-1] == ["lvchange", "--addtag",
                              "originstname+inst1.example.com_x", "xenvg/disk0"]
    dev.Rename(("xenvg", "disk9"))
    assert ["lvrename", "xenvg", "disk0", "disk9"] in fake.calls
    assert dev.unique_id == ("xenvg", "disk9")
    with pytest.raises(errors.BlockDeviceError, match="only works within a volume group"):
        dev.Rename(("othervg", "disk9"))
    dev.Remove()
    assert fake.calls[-1] == ["lvremove", "-f", "xenvg/disk9"]
    fake.answers["lvs"] = (5, "", "Failed to find logical volume")
    fake.calls.clear()
    dev.Remove()                             # already gone: fine
    assert fake.Names() == ["lvs"]


def test_missing_lv_is_not_attached(fake_lvm):
    fake_lvm({"lvs": (5, "", '  Failed to find logical volume "xenvg/gone"\n')})
    dev = lvm.LogicalVolume(("xenvg", "gone"), [], 16, {})
    assert not dev.attached and dev.dev_path is None
    status = dev.GetSyncStatus()
    assert status.is_degraded
    with pytest.raises(errors.BlockDeviceError, match="Cannot assemble logical volume"
                       " xenvg/gone: not found"):
        dev.Assemble()


def test_partial_lv_is_faulty(fake_lvm):
    fake_lvm({"lvs": "  -wi-XX--p-|-1|-1|4.00|1|[unknown](0)|16.00\n"})
    dev = lvm.LogicalVolume(("xenvg", "big"), [], 16, {})
    assert dev.attached and dev.pv_names == ["[unknown]"]
    assert dev.GetSyncStatus().is_degraded


def test_repair_commands(fake_lvm):
    partial = "  xenvg|192.00|48.00|wz-pn-|2\n"
    fixed = "  xenvg|96.00|72.00|wz--n-|1\n"
    fake = fake_lvm({"vgs": [partial, partial, fixed, fixed, fixed],
                     "vgreduce": [(5, "", "There are still partial LVs in VG xenvg."),
                                  "  Wrote out consistent volume group xenvg.\n"]})
    lines = container.GetStorage(constants.ST_LVM_VG).Execute(
        "xenvg", constants.SO_FIX_CONSISTENCY)
    assert [call for call in fake.calls if call[0] in ("vgreduce", "vgck")] == [
        ["vgreduce", "--removemissing", "xenvg"],
        ["vgreduce", "--removemissing", "--force", "xenvg"],
        ["vgck", "xenvg"]]
    assert lines == ["There are still partial LVs in VG xenvg.",
                     "Wrote out consistent volume group xenvg."]
    fake_lvm({"vgs": partial, "vgreduce": (5, "", "cannot")})
    with pytest.raises(errors.StorageError,
                       match="Volume group 'xenvg' is still not consistent"):
        container.GetStorage(constants.ST_LVM_VG).Execute(
            "xenvg", constants.SO_FIX_CONSISTENCY)
    with pytest.raises(errors.StorageError, match="Operation 'bogus' is not supported"):
        container.GetStorage(constants.ST_LVM_VG).Execute("xenvg", "bogus")
    # a consistent VG: vgreduce says so, no --force
    fake = fake_lvm({"vgs": fixed,
                     "vgreduce": '  Volume group "xenvg" is already consistent.\n'})
    assert container.GetStorage(constants.ST_LVM_VG).Execute(
        "xenvg", constants.SO_FIX_CONSISTENCY) == \
        ['Volume group "xenvg" is already consistent.']
    assert [call for call in fake.calls if call[0] != "vgs"] == [
        ["vgreduce", "--removemissing", "xenvg"], ["vgck", "xenvg"]]
    fake_lvm({"vgs": (5, "", '  Volume group "nosuch" not found\n')})
    with pytest.raises(errors.StorageError, match="Volume group 'nosuch' does not exist"):
        container.GetStorage(constants.ST_LVM_VG).Execute(
            "nosuch", constants.SO_FIX_CONSISTENCY)


def test_units(fake_lvm):
    fake = fake_lvm({"vgs": XENVG, "pvs": TWO_PVS})
    fields = ["name", "type", "size", "used", "free", "allocatable"]
    assert container.GetStorage(constants.ST_LVM_VG).List(None, fields) == \
        [["xenvg", "lvm-vg", 192, 56, 136, True]]
    assert container.GetStorage(constants.ST_LVM_PV).List(None, fields) == [
        ["/dev/loop0", "lvm-pv", 96, 56, 40, True],
        ["/dev/loop1", "lvm-pv", 96, 0, 96, True],
        ["/dev/loop2", "lvm-pv", 96, 0, 96, False]]
    assert container.GetStorage(constants.ST_LVM_PV).GetSpace("/dev/loop0") == \
        {"type": "lvm-pv", "name": "/dev/loop0", "storage_free": 40,
         "storage_size": 96}
    assert container.GetStorage(constants.ST_LVM_VG).GetSpace("xenvg") == \
        {"type": "lvm-vg", "name": "xenvg", "storage_free": 136, "storage_size": 192}
    # exclusive storage: only the PVs without LVs count (loop2 is not allocatable)
    assert lvm.GetVgSpace("xenvg", True) == {"storage_free": 96, "storage_size": 192}
    assert lvm.GetVgSpindles("xenvg") == {"storage_free": 1, "storage_size": 3}
    container.GetStorage(constants.ST_LVM_PV).Modify("/dev/loop2", {"allocatable": True})
    assert fake.calls[-1] == ["pvchange", "-x", "y", "/dev/loop2"]
    with pytest.raises(errors.StorageError, match="Field\\(s\\) size of lvm-pv storage"
                       " units cannot be modified \\(modifiable: allocatable\\)"):
        container.GetStorage(constants.ST_LVM_PV).Modify("/dev/loop2", {"size": 1})
    with pytest.raises(errors.StorageError, match="expected a boolean"):
        container.GetStorage(constants.ST_LVM_PV).Modify("/dev/loop2",
                                                          {"allocatable": "no"})
    with pytest.raises(errors.StorageError, match="Physical volume '/dev/sdz' not found"):
        container.GetStorage(constants.ST_LVM_PV).Modify("/dev/sdz", {"allocatable": True})
    with pytest.raises(errors.StorageError, match="units of type 'lvm-vg' cannot be"
                       " modified"):
        container.GetStorage(constants.ST_LVM_VG).Modify("xenvg", {"allocatable": False})
    with pytest.raises(errors.StorageError, match="Unknown storage field.*bogus"):
        container.GetStorage(constants.ST_LVM_VG).List(None, ["bogus"])
    with pytest.raises(errors.StorageError, match="takes no arguments"):
        container.GetStorage(constants.ST_LVM_PV, ["/srv"])


def test_reports_name_the_commands(fake_lvm):
    fake = fake_lvm({"lvs": LV_DEVICES, "vgs": VGS})
    assert len(lvm.ListVolumes()) == 6
    assert lvm.GetVolumeGroups() == {"xenvg": 192, "othervg": 1020}
    assert fake.calls == [
        ["lvs", *lvm._REPORT_OPTS, "-o", "lv_name,vg_name,lv_size,devices"],
        ["vgs", *lvm._REPORT_OPTS, "-o", "vg_name,vg_size"]]
    fake = fake_lvm({"lvs": LVS})
    lvm.GetLogicalVolumes(["xenvg"])
    assert fake.calls[-1][-1] == "xenvg"
    with pytest.raises(errors.StorageError, match="Invalid LVM volume group name '..'"):
        lvm.GetLogicalVolumes([".."])

