"""Tests for gnt-instance modify: the --disk/--net syntaxes, -H/-B/-O with
"default", the opcode it submits, and how it prints the result."""

from __future__ import annotations

import pytest

from ganeti import cli, constants, errors
from ganeti.client import gnt_instance


def _Run(*argv):
    return gnt_instance.Main(["gnt-instance", "modify", *argv])


def _Submitted(fake_client):
    (ops,) = fake_client.submitted
    return ops[0]


@pytest.mark.parametrize("mods,expected", [
    ([("add", {"size": "1G"})], [("add", -1, {"size": "1G"})]),
    ([("remove", {})], [("remove", -1, {})]),
    ([("0", {"mode": "ro"})], [("modify", 0, {"mode": "ro"})]),
    ([("1", {"add": True, "size": "1G"})], [("add", 1, {"size": "1G"})]),
    ([("data", {"remove": True})], [("remove", "data", {})]),
    ([("-1", {"modify": True, "name": "x"})], [("modify", -1, {"name": "x"})]),
    ([("attach", {"name": "d"})], [("attach", -1, {"name": "d"})]),
    ([("1", {"attach": True, "uuid": "u-1"})], [("attach", 1, {"uuid": "u-1"})]),
    ([("detach", {})], [("detach", -1, {})]),
    ([("data", {"detach": True})], [("detach", "data", {})]),
])
def test_convert_modifications(mods, expected):
    assert gnt_instance.ConvertNicDiskModifications(mods, "disk") == expected


@pytest.mark.parametrize("mods,match", [
    ([("0", {"add": True, "remove": True})], "at the same time"),
    ([("0", {"modify": True, "remove": True})], "at the same time"),
    ([("0", {"remove": True, "size": "1G"})], "Not accepting parameters"),
    ([("0", {"detach": True, "size": "1G"})], "Not accepting parameters on detaching"),
    ([("0", {"attach": True, "detach": True})], "at the same time"),
])
def test_convert_modifications_refused(mods, match):
    with pytest.raises(errors.OpPrereqError, match=match):
        gnt_instance.ConvertNicDiskModifications(mods, "disk")


def test_nics_cannot_be_attached():
    with pytest.raises(errors.OpPrereqError, match="only disks"):
        gnt_instance.ConvertNicDiskModifications([("attach", {"name": "n"})], "NIC")


def test_modify_builds_the_opcode(fake_client):
    assert _Run("--disk", "add:size=1G,name=data", "--disk", "0:modify,mode=ro",
                "--net", "1:add,mac=aa:00:00:00:00:09,link=br0", "--net", "0:remove",
                "-B", "memory=512M,vcpus=default", "-H", "kernel_path=DEFAULT",
                "-O", "message=hi", "--os-type", "noop+v2", "--force-variant",
                "-m", "256", "--submit", "inst1") == 0
    op = _Submitted(fake_client)
    assert op["OP_ID"] == "OP_INSTANCE_SET_PARAMS" and op["instance_name"] == "inst1"
    assert [list(mod) for mod in op["disks"]] == [
        ["add", -1, {"size": 1024, "name": "data"}], ["modify", 0, {"mode": "ro"}]]
    assert [list(mod) for mod in op["nics"]] == [
        ["add", 1, {"mac": "aa:00:00:00:00:09", "link": "br0"}], ["remove", 0, {}]]
    assert op["beparams"] == {"memory": 512, "vcpus": constants.VALUE_DEFAULT}
    assert op["hvparams"] == {"kernel_path": constants.VALUE_DEFAULT}
    assert op["osparams"] == {"message": "hi"}
    assert op["os_name"] == "noop+v2" and op["force_variant"] is True
    assert op["runtime_mem"] == 256 and op["offline"] is None


def test_offline_online(fake_client, capsys):
    assert _Run("--offline", "--submit", "inst1") == 0
    assert _Submitted(fake_client)["offline"] is True
    fake_client.submitted.clear()
    assert _Run("--online", "--submit", "inst1") == 0
    assert _Submitted(fake_client)["offline"] is False
    fake_client.submitted.clear()
    assert _Run("--online", "--offline", "inst1") != 0
    assert _Run("inst1") != 0
    assert "at least one" in capsys.readouterr().err
    assert not fake_client.submitted


def test_bad_size_submits_nothing(fake_client, capsys):
    assert _Run("--disk", "add:size=10X", "inst1") != 0
    assert _Run("--disk", "0:add", "inst1") != 0
    assert not fake_client.submitted
    err = capsys.readouterr().err
    assert "10X" in err and "Missing size" in err


def test_prints_the_changes(monkeypatch, capsys):
    monkeypatch.setattr(cli, "SubmitOrSend",
                        lambda op, opts: [("be/maxmem", 512), ("disk/1", "add:size=1024,mode=rw")])
    assert _Run("-B", "maxmem=512", "inst1") == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "Modified instance inst1"
    assert out[1] == " - be/maxmem -> 512"
    assert out[2] == " - disk/1 -> add:size=1024,mode=rw"


def test_modify_conversion_options(fake_client):
    assert _Run("-t", "ext", "-e", "provider=loopfile,dir=/x", "--no-wait-for-sync",
                "--submit", "inst1") == 0
    op = _Submitted(fake_client)
    assert op["disk_template"] == constants.DT_EXT
    assert op["ext_params"] == {"provider": "loopfile", "dir": "/x"}
    assert op["wait_for_sync"] is False
    fake_client.submitted.clear()
    assert _Run("-t", "file", "--file-storage-dir", "sub", "--file-driver", "loop",
                "--submit", "inst1") == 0
    op = _Submitted(fake_client)
    assert (op["disk_template"], op["file_storage_dir"], op["file_driver"]) == \
        (constants.DT_FILE, "sub", "loop")
