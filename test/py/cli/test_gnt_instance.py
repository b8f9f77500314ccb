"""Tests for gnt-instance's option parsing and opcodes, against a fake
luxi client (jobs are only submitted, with --submit)."""

from __future__ import annotations

import argparse
import shlex
from types import SimpleNamespace

import pytest

from ganeti import constants, errors
from ganeti.client import gnt_instance


def _Run(*argv):
    return gnt_instance.Main(["gnt-instance", *argv])


def _Submitted(fake_client):
    (ops,) = fake_client.submitted
    return ops[0]


def test_parse_ident_keyval():
    assert gnt_instance.ParseIdentKeyVal("0:size=1G,mode=ro") == \
        ("0", {"size": "1G", "mode": "ro"})
    assert gnt_instance.ParseIdentKeyVal("fake") == ("fake", {})
    with pytest.raises(argparse.ArgumentTypeError):
        gnt_instance.ParseIdentKeyVal(":size=1")


def _Opts(**kwargs):
    values = dict(disks=[], sd_size=None, nics=[], no_nics=False)
    values.update(kwargs)
    return SimpleNamespace(**values)


def test_build_disks():
    assert gnt_instance.BuildDisks(_Opts(sd_size="2G")) == [{"size": 2048}]
    opts = _Opts(disks=[("1", {"size": "512"}), ("0", {"size": "1G", "mode": "ro"})])
    assert gnt_instance.BuildDisks(opts) == [{"size": 1024, "mode": "ro"},
                                             {"size": 512}]
    with pytest.raises(errors.OpPrereqError, match="10X"):
        gnt_instance.BuildDisks(_Opts(disks=[("0", {"size": "10X"})]))
    with pytest.raises(errors.OpPrereqError, match="consecutive"):
        gnt_instance.BuildDisks(_Opts(disks=[("1", {"size": "1G"})]))
    with pytest.raises(errors.OpPrereqError, match="either"):
        gnt_instance.BuildDisks(_Opts(disks=[("0", {"size": "1G"})], sd_size="1G"))
    with pytest.raises(errors.OpPrereqError, match="Missing size"):
        gnt_instance.BuildDisks(_Opts(disks=[("0", {})]))


def test_build_nics():
    assert gnt_instance.BuildNics(_Opts()) == [{}]
    assert gnt_instance.BuildNics(_Opts(no_nics=True)) == []
    assert gnt_instance.BuildNics(_Opts(nics=[("0", {"mac": "aa:00:00:00:00:01"})])) \
        == [{"mac": "aa:00:00:00:00:01"}]
    with pytest.raises(errors.OpPrereqError, match="together"):
        gnt_instance.BuildNics(_Opts(no_nics=True, nics=[("0", {})]))


def test_add_builds_the_opcode(fake_client):
    assert _Run("add", "-t", "file", "-n", "node2", "-o", "noop+default",
                "--disk", "0:size=1G", "--net", "0:mac=aa:00:00:00:00:01,ip=192.0.2.5",
                "-B", "maxmem=256M,vcpus=2", "-H", "fake:migration_mode=live",
                "-O", "message=hi", "--no-start", "--no-name-check", "--no-ip-check",
                "--submit", "inst1") == 0
    op = _Submitted(fake_client)
    assert op["OP_ID"] == "OP_INSTANCE_CREATE"
    assert (op["instance_name"], op["disk_template"], op["pnode"], op["os_type"]) == \
        ("inst1", "file", "node2", "noop+default")
    assert op["disks"] == [{"size": 1024}]
    assert op["nics"] == [{"mac": "aa:00:00:00:00:01", "ip": "192.0.2.5"}]
    assert op["beparams"] == {"maxmem": 256, "vcpus": "2"}
    assert op["hypervisor"] == "fake" and op["hvparams"] == {"migration_mode": "live"}
    assert op["osparams"] == {"message": "hi"}
    assert op["start"] is False and op["name_check"] is False and op["ip_check"] is False
    assert op["mode"] == constants.INSTANCE_CREATE


def test_add_bad_disk_size_submits_nothing(fake_client, capsys):
    assert _Run("add", "-t", "file", "-n", "n", "-o", "noop", "--disk", "0:size=10X",
                "i1") != 0
    assert not fake_client.submitted
    assert "10X" in capsys.readouterr().err


def test_other_commands_build_opcodes(fake_client):
    # startup, shutdown and reboot look the instance up first
    fake_client.query[constants.QR_INSTANCE] = {
        "fields": [{"name": "name", "title": "Instance", "kind": constants.QFT_TEXT}],
        "data": [[[constants.RS_NORMAL, "i1"]]]}
    assert _Run("shutdown", "--timeout", "5", "--no-remember", "--submit", "i1") == 0
    op = _Submitted(fake_client)
    assert (op["OP_ID"], op["timeout"], op["no_remember"]) == \
        ("OP_INSTANCE_SHUTDOWN", 5, True)
    fake_client.submitted.clear()
    assert _Run("reboot", "--type", "full", "--shutdown-timeout", "9", "--submit",
                "i1") == 0
    op = _Submitted(fake_client)
    assert (op["OP_ID"], op["reboot_type"], op["shutdown_timeout"]) == \
        ("OP_INSTANCE_REBOOT", "full", 9)
    fake_client.submitted.clear()
    assert _Run("startup", "--force", "--submit", "i1") == 0
    op = _Submitted(fake_client)
    assert (op["OP_ID"], op["force"]) == ("OP_INSTANCE_STARTUP", True)
    fake_client.submitted.clear()
    assert _Run("remove", "-f", "--ignore-failures", "--submit", "i1") == 0
    op = _Submitted(fake_client)
    assert (op["OP_ID"], op["ignore_failures"]) == ("OP_INSTANCE_REMOVE", True)


def test_reboot_type_is_checked(fake_client, capsys):
    assert _Run("reboot", "--type", "sideways", "i1") != 0
    assert not fake_client.submitted
    assert "sideways" in capsys.readouterr().err


def test_info_needs_names_or_all(fake_client, capsys):
    assert _Run("info") == constants.EXIT_FAILURE
    assert "--all" in capsys.readouterr().err


def test_info_layout():
    items = dict(gnt_instance.InstanceInfoItems({
        "name": "i1", "uuid": "u", "serial_no": 3, "ctime": 0, "mtime": 0,
        "config_state": "up", "run_state": "down", "pnode": "n1",
        "pnode_group_name": "default", "snodes": [], "os": "noop",
        "os_instance": {}, "os_actual": {"message": "x"}, "network_port": None,
        "hypervisor": "fake", "hv_instance": {}, "hv_actual": {"a": 1},
        "be_instance": {"vcpus": 2}, "be_actual": {"vcpus": 2, "maxmem": 128},
        "nics": [{"mac": "aa:00:00:00:00:01", "ip": None, "mode": "bridged"}],
        "disk_template": "file",
        "disks": [{"size": 1024, "dev_type": "file", "mode": "rw",
                   "logical_id": ["loop", "/srv/x/disk0"]}],
    }))
    assert items["State"] == "configured to be up, actual state is down"
    assert ("vcpus", "2") in items["Back-end parameters"]
    assert ("maxmem", "default (128)") in items["Back-end parameters"]
    assert dict(items["Disks"][0][1])["file path"] == "/srv/x/disk0"


def test_format_console(monkeypatch):
    assert gnt_instance.FormatConsole({"kind": "msg", "message": "no console"}) == \
        "no console"
    command = ["sh", "-c", "socat UNIX-CONNECT:'/r/i1 x'"]
    ssh = {"kind": "ssh", "user": "root", "host": "h", "command": command}
    # ssh hands the remote shell one string: the command quoted once more
    text = gnt_instance.FormatConsole(ssh)
    assert text.startswith("ssh -t root@h ")
    assert shlex.split(shlex.split(text)[3]) == command
    assert gnt_instance.FormatConsole(dict(ssh, command=["xl", "console", "i1"])) == \
        "ssh -t root@h 'xl console i1'"
    # A virtual cluster's nodes are this machine: the command alone
    monkeypatch.setattr(gnt_instance.pathutils, "IsVirtualCluster", lambda: True)
    assert shlex.split(gnt_instance.FormatConsole(ssh)) == command


def test_commands_table():
    for name in ("add", "remove", "list", "list-fields", "info", "startup", "shutdown",
                 "reboot", "console", "list-tags", "add-tags", "remove-tags"):
        assert name in gnt_instance.commands


@pytest.mark.parametrize("flags,hotplug,if_possible", [
    ([], False, True),
    (["--hotplug-if-possible"], False, True),
    (["--hotplug"], True, False),
    (["--no-hotplug"], False, False),
])
def test_modify_hotplug_options(fake_client, flags, hotplug, if_possible):
    assert _Run("modify", "--disk", "add:size=1G", *flags, "--submit", "inst1") == 0
    op = _Submitted(fake_client)
    assert op["OP_ID"] == "OP_INSTANCE_SET_PARAMS"
    assert (op["hotplug"], op["hotplug_if_possible"]) == (hotplug, if_possible)
