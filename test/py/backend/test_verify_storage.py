"""backend.verify: the node's storage checks for cluster verify (volume
groups, logical and physical volumes, DRBD minors and usermode helper),
on lvm2 outputs in the format ``_RunLvm`` reads (lvm2 2.03 on loop
devices, activation off: hence the "X" states) and a DRBD 8.4
/proc/drbd."""

from __future__ import annotations

import os

import pytest

from ganeti import constants, errors, utils
from ganeti.backend import RPCFail, verify
from ganeti.storage import drbd, lvm

VGS = """\
  xenvg|1048572.00
  othervg|20000.00
"""

LVS = """\
  xenvg|0b1d.disk0_data|1024.00|-wi-XX----
  xenvg|0b1d.disk0_meta|128.00|-wi-XX----
  xenvg|old|4.00|-wi-a-
  xenvg|down|4.00|-wi---
  othervg|7c2e.disk0|2048.00|-wi-ao----
  sysvg|root|10240.00|-wi-ao----
  xenvg|thinvirt|4.00|vwi-a-v---
"""

PVS = """\
  /dev/loop0|xenvg|1048572.00|1047420.00|1152.00|a--|uuid-0|0b1d.disk0_data
  /dev/loop0|xenvg|1048572.00|1047420.00|1152.00|a--|uuid-0|0b1d.disk0_meta
  [unknown]|xenvg|96.00|0|96.00|a-m|uuid-2|
  /dev/loop1|othervg|20000.00|17952.00|2048.00|a--|uuid-1|7c2e.disk0
"""

PROC_DRBD = """\
version: 8.4.11 (api:1/proto:86-101)
srcversion: 211FB288A383ED945B83420 \n\
 0: cs:Connected ro:Primary/Secondary ds:UpToDate/UpToDate C r-----
    ns:1048576 nr:0 dw:2048 dr:1050624 al:2 bm:0 lo:0 pe:0 ua:0 ap:0 ep:1 wo:f oos:0
 2: cs:Unconfigured
 5: cs:Connected ro:Secondary/Primary ds:Diskless/UpToDate C r-----
    ns:0 nr:0 dw:0 dr:0 al:0 bm:0 lo:0 pe:0 ua:0 ap:0 ep:1 wo:b oos:0
"""


class ScriptedLvm:
    """Answers vgs, lvs and pvs from the samples (or fails them)."""

    def __init__(self, fail=()):
        self.fail = set(fail)
        self.calls = []

    def __call__(self, args, subject=None, error=errors.StorageError, check=True,
                 system_dir=None):
        self.calls.append(list(args))
        prog = args[0]
        if prog in self.fail:
            if check:
                raise error(f"{prog} failed (exited with exit code 5): Volume group"
                            " \"xenvg\" not found")
            return utils.RunResult(5, None, "", "not found", args)
        out = {"vgs": VGS, "lvs": LVS, "pvs": PVS}[prog]
        return utils.RunResult(0, None, out, "", args)


@pytest.fixture
def fake_lvm(monkeypatch):
    runner = ScriptedLvm()
    monkeypatch.setattr(lvm, "_RunLvm", runner)
    return runner


@pytest.fixture
def drbd_node(node_root, monkeypatch):
    """A node whose (stand-in) DRBD shows PROC_DRBD and helper /bin/true."""
    monkeypatch.setattr(drbd, "_RefreshStandin", lambda: None)
    os.makedirs(f"{node_root}/proc")
    with open(f"{node_root}/proc/drbd", "w") as handle:
        handle.write(PROC_DRBD)
    helper = f"{node_root}{drbd.USERMODE_HELPER_FILE}"
    os.makedirs(os.path.dirname(helper))
    with open(helper, "w") as handle:
        handle.write("/bin/true\n")
    return node_root


def _Verify(checks):
    return verify.VerifyNode(checks, "cluster", {}, {}, {})


def test_volume_groups(fake_lvm, node_root):
    assert _Verify({constants.NV_VGLIST: None}) == {
        constants.NV_VGLIST: {"xenvg": 1048572, "othervg": 20000}}


def test_logical_volumes_of_the_asked_groups(fake_lvm, node_root):
    result = _Verify({constants.NV_LVLIST: "xenvg"})[constants.NV_LVLIST]
    # [MiB, inactive, online]: "X" (no device-mapper) is neither; the
    # virtual volume is left out; other groups are filtered away
    assert result == {
        "xenvg/0b1d.disk0_data": [1024.0, False, False],
        "xenvg/0b1d.disk0_meta": [128.0, False, False],
        "xenvg/old": [4.0, False, False],
        "xenvg/down": [4.0, True, False],
    }
    result = _Verify({constants.NV_LVLIST: ["xenvg", "othervg", "novg"]})
    assert set(result[constants.NV_LVLIST]) == {
        "xenvg/0b1d.disk0_data", "xenvg/0b1d.disk0_meta", "xenvg/old", "xenvg/down",
        "othervg/7c2e.disk0"}
    assert result[constants.NV_LVLIST]["othervg/7c2e.disk0"] == [2048.0, False, True]
    # All are listed once: a missing group does not fail the listing
    assert fake_lvm.calls[-1][0] == "lvs" and "novg" not in fake_lvm.calls[-1]


def test_physical_volumes(fake_lvm, node_root):
    pvs = _Verify({constants.NV_PVLIST: ["xenvg"]})[constants.NV_PVLIST]
    assert [(pv["name"], pv["vg_name"], pv["size"], pv["missing"]) for pv in pvs] == [
        ("/dev/loop0", "xenvg", 1048572.0, False), ("[unknown]", "xenvg", 96.0, True)]
    assert pvs[0]["lv_list"] == ["0b1d.disk0_data", "0b1d.disk0_meta"]


def test_lvm_failures_are_answers(monkeypatch, node_root):
    """A failing lvm2 command answers its error message; the other checks
    still run."""
    monkeypatch.setattr(lvm, "_RunLvm", ScriptedLvm(fail={"vgs", "lvs", "pvs"}))
    result = _Verify({constants.NV_VGLIST: None, constants.NV_LVLIST: "xenvg",
                      constants.NV_PVLIST: ["xenvg"], constants.NV_VERSION: None})
    for key in (constants.NV_VGLIST, constants.NV_LVLIST, constants.NV_PVLIST):
        assert isinstance(result[key], str) and "failed" in result[key]
    assert result[constants.NV_VERSION][0] == constants.PROTOCOL_VERSION


def test_bad_lvm_parameters(fake_lvm, node_root):
    with pytest.raises(RPCFail, match="volume group names"):
        _Verify({constants.NV_LVLIST: 42})
    with pytest.raises(RPCFail, match="list of volume group names"):
        _Verify({constants.NV_PVLIST: [None]})


def test_drbd_minors_and_helper(drbd_node):
    result = _Verify({constants.NV_DRBDLIST: None, constants.NV_DRBDHELPER: "/bin/true"})
    # "Unconfigured" minors are not in use
    assert result == {constants.NV_DRBDLIST: [0, 5],
                      constants.NV_DRBDHELPER: [True, "/bin/true"]}


def test_drbd_not_loaded(node_root, monkeypatch):
    monkeypatch.setattr(drbd, "_RefreshStandin", lambda: None)
    result = _Verify({constants.NV_DRBDLIST: None, constants.NV_DRBDHELPER: None})
    assert "DRBD is not loaded" in result[constants.NV_DRBDLIST]
    ok, msg = result[constants.NV_DRBDHELPER]
    assert ok is False and "Cannot read the DRBD usermode helper" in msg


def test_drbd_on_a_virtual_node_without_the_standin(node_root, monkeypatch):
    """A virtual node whose PATH lacks the stand-in reports it, without
    running a real drbdsetup."""
    monkeypatch.setenv("PATH", "/nonexistent")
    result = _Verify({constants.NV_DRBDLIST: None})
    assert "drbdsetup not found" in result[constants.NV_DRBDLIST]
