"""Tests for the options of gnt-instance add, modify and info that follow
Ganeti's synopses, and for the ``GNT_<TOOL>_LIST`` default arguments of the
list commands."""

from __future__ import annotations

import pytest
from clihelpers import Field

from ganeti import constants
from ganeti.client import gnt_group, gnt_instance, gnt_node

N = constants.RS_NORMAL


def _Run(*argv):
    return gnt_instance.Main(["gnt-instance", *argv])


def _Submitted(fake_client):
    (ops,) = fake_client.submitted
    return ops[0]


_ADD = ("add", "-t", "file", "-o", "noop", "-s", "1G", "--submit")


def test_add_group_tags_and_sync(fake_client):
    assert _Run(*_ADD, "-g", "grp2", "--tags", "a,b", "--no-wait-for-sync", "i1") == 0
    op = _Submitted(fake_client)
    assert (op["group_name"], op["tags"], op["wait_for_sync"]) == ("grp2", ["a", "b"],
                                                                  False)
    assert op["pnode"] is None


def test_add_defaults(fake_client):
    assert _Run(*_ADD, "-n", "n1", "i1") == 0
    op = _Submitted(fake_client)
    assert (op["group_name"], op["tags"], op["wait_for_sync"]) == (None, [], True)
    assert (op["conflicts_check"], op["forthcoming"], op["commit"]) == (True, False, False)
    assert op["instance_communication"] is False
    assert op["name_check"] is True and op["ip_check"] is True


def test_add_other_synopsis_options(fake_client):
    assert _Run(*_ADD, "--node-group", "g", "--no-conflicts-check", "--forthcoming",
                "-c", "yes", "--os-parameters-private", "pw=x",
                "--os-parameters-secret", "key=y", "--name-check", "--ip-check",
                "--priority", "low", "--dry-run", "i1") == 0
    op = _Submitted(fake_client)
    assert (op["group_name"], op["conflicts_check"], op["forthcoming"]) == \
        ("g", False, True)
    assert op["instance_communication"] is True
    assert op["osparams_private"] == {"pw": "x"}
    assert op["osparams_secret"] == {"key": "y"}
    assert op["priority"] == constants.OP_PRIO_LOW and op["dry_run"] is True


@pytest.mark.parametrize("argv,message", [
    (["-c", "maybe"], "maybe"),
    (["--priority", "urgent"], "urgent"),
])
def test_add_bad_option_values(fake_client, capsys, argv, message):
    assert _Run(*_ADD, *argv, "i1") == 2
    assert message in capsys.readouterr().err
    assert not fake_client.submitted


def test_modify_new_options(fake_client):
    assert _Run("modify", "--new-primary", "n2", "--submit", "i1") == 0
    assert _Submitted(fake_client)["pnode"] == "n2"
    fake_client.submitted.clear()
    assert _Run("modify", "-t", "file", "--file-storage-dir", "sub", "--file-driver",
                "loop", "--submit", "i1") == 0
    op = _Submitted(fake_client)
    assert (op["file_storage_dir"], op["file_driver"]) == ("sub", "loop")
    fake_client.submitted.clear()
    assert _Run("modify", "-t", "ext", "-e", "provider=p1,size=x", "--submit",
                "i1") == 0
    assert _Submitted(fake_client)["ext_params"] == {"provider": "p1", "size": "x"}


def test_roman():
    assert [gnt_instance.ToRoman(v) for v in (1, 4, 9, 14, 1994, 11000)] == \
        ["I", "IV", "IX", "XIV", "MCMXCIV", 11000]
    assert gnt_instance.ToRoman(1994) == "MCMXCIV"
    assert gnt_instance.ToRoman(0) == 0 and gnt_instance.ToRoman(None) is None
    assert gnt_instance.ToRoman(11000) == 11000
    items = dict(gnt_instance.InstanceInfoItems(
        {"name": "i1", "serial_no": 12, "network_port": 11002}, roman=True))
    assert (items["Serial number"], items["Allocated network port"]) == ("XII", 11002)
    items = dict(gnt_instance.InstanceInfoItems({"name": "i1", "serial_no": 12}))
    assert items["Serial number"] == 12


# --- GNT_<TOOL>_LIST -------------------------------------------------------------------------

def _Answer(fields, qfilter):
    return {"fields": [Field(f) for f in fields],
            "data": [[[N, f"{f}-value"] for f in fields]]}


@pytest.fixture
def lister(fake_client):
    for resource in (constants.QR_INSTANCE, constants.QR_NODE, constants.QR_GROUP):
        fake_client.query[resource] = _Answer
    return fake_client


def _QueriedFields(client):
    return [args[1] for name, args in client.calls if name == "Query"][-1]


def test_env_default_arguments(lister, monkeypatch, capsys):
    monkeypatch.setenv("GNT_INSTANCE_LIST", "-o name,status --no-headers")
    assert _Run("list") == 0
    assert _QueriedFields(lister) == ["name", "status"]
    assert capsys.readouterr().out == "name-value status-value\n"
    # The command line comes after the environment: its -o wins
    assert _Run("list", "-o", "+tags") == 0
    assert _QueriedFields(lister) == gnt_instance._LIST_DEF_FIELDS + ["tags"]
    capsys.readouterr()
    monkeypatch.setenv("GNT_INSTANCE_LIST", "-o +tags --separator=:")
    assert _Run("list") == 0
    assert _QueriedFields(lister) == gnt_instance._LIST_DEF_FIELDS + ["tags"]
    assert capsys.readouterr().out.splitlines()[0].count(":") == \
        len(gnt_instance._LIST_DEF_FIELDS)


def test_env_defaults_of_node_and_group_list(lister, monkeypatch):
    monkeypatch.setenv("GNT_NODE_LIST", "-o name,pinst_cnt")
    monkeypatch.setenv("GNT_GROUP_LIST", "-o name")
    assert gnt_node.Main(["gnt-node", "list"]) == 0
    assert _QueriedFields(lister) == ["name", "pinst_cnt"]
    assert gnt_group.Main(["gnt-group", "list"]) == 0
    assert _QueriedFields(lister) == ["name"]


def test_env_defaults_only_for_list(lister, monkeypatch, capsys):
    monkeypatch.setenv("GNT_INSTANCE_LIST_FIELDS", "--no-headers")
    lister.fields[constants.QR_INSTANCE] = [Field("name")]
    assert _Run("list-fields") == 0
    assert capsys.readouterr().out.startswith("Name")


@pytest.mark.parametrize("value,code,message", [
    ("-o 'name", 2, "GNT_INSTANCE_LIST"),
    ("--bogus", 2, "--bogus"),
])
def test_env_bad_defaults(lister, monkeypatch, capsys, value, code, message):
    monkeypatch.setenv("GNT_INSTANCE_LIST", value)
    assert _Run("list") == code
    assert message in capsys.readouterr().err
    assert "Query" not in lister.CallNames()
