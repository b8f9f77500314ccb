"""Tests for gnt-network: option parsing, the opcodes each command builds,
and the list, list-fields and info output (against a fake master)."""

from __future__ import annotations

import pytest
from clihelpers import Field

from ganeti import cli, constants
from ganeti.client import gnt_network

QFT_TEXT, QFT_OTHER, QFT_NUMBER = constants.QFT_TEXT, constants.QFT_OTHER, constants.QFT_NUMBER

_KINDS = {"name": QFT_TEXT, "network": QFT_TEXT, "gateway": QFT_OTHER,
          "network6": QFT_OTHER, "gateway6": QFT_OTHER, "mac_prefix": QFT_OTHER,
          "free_count": QFT_NUMBER, "reserved_count": QFT_NUMBER, "map": QFT_TEXT,
          "group_list": QFT_OTHER, "group_cnt": QFT_NUMBER, "inst_list": QFT_OTHER,
          "inst_cnt": QFT_NUMBER, "external_reservations": QFT_TEXT,
          "serial_no": QFT_NUMBER, "uuid": QFT_TEXT, "tags": QFT_OTHER}

_TITLES = {"name": "Network", "network": "Subnet", "gateway": "Gateway",
           "mac_prefix": "MacPrefix", "group_list": "GroupList", "tags": "Tags",
           "free_count": "FreeCount"}

NETWORKS = [
    {"name": "public", "network": "10.0.0.0/28", "gateway": "10.0.0.1",
     "network6": None, "gateway6": None, "mac_prefix": "aa:bb:cc",
     "free_count": 10, "reserved_count": 6, "map": "XXXX.X.........X",
     "group_list": [["default", "bridged", "br0", ""],
                    ["rack2", "openvswitch", "ovs0", ".100"]],
     "group_cnt": 2, "inst_list": ["inst0", "inst2"], "inst_cnt": 2,
     "external_reservations": "10.0.0.0, 10.0.0.1, 10.0.0.5, 10.0.0.15",
     "serial_no": 3, "uuid": "uuid-public", "tags": ["a", "b"]},
    {"name": "private", "network": "192.168.0.0/24", "gateway": None,
     "network6": None, "gateway6": None, "mac_prefix": None,
     "free_count": 254, "reserved_count": 2, "map": "X" + "." * 254 + "X",
     "group_list": [], "group_cnt": 0, "inst_list": [], "inst_cnt": 0,
     "external_reservations": "192.168.0.0, 192.168.0.255",
     "serial_no": 1, "uuid": "uuid-private", "tags": []},
]


def _Answer(fields, qfilter):
    names = None
    if qfilter:
        names = {sub[2] for sub in qfilter[1:]} if qfilter[0] == "|" else {qfilter[2]}
    data = []
    for net in NETWORKS:
        if names is not None and net["name"] not in names:
            continue
        data.append([[constants.RS_NORMAL, net[f]] if net[f] is not None
                     else [constants.RS_UNAVAIL, None] for f in fields])
    return {"fields": [Field(f, _KINDS.get(f, QFT_TEXT), _TITLES.get(f)) for f in fields],
            "data": data}


def _InstanceAnswer(fields, qfilter):
    rows = {"inst0": [["10.0.0.2", None], ["uuid-public", None]],
            "inst2": [["10.0.0.3"], ["uuid-public"]]}
    return {"fields": [Field(f) for f in fields],
            "data": [[[0, name], [0, ips], [0, nets]]
                     for name, (ips, nets) in rows.items()]}


@pytest.fixture
def client(fake_client):
    fake_client.query[constants.QR_NETWORK] = _Answer
    fake_client.query[constants.QR_INSTANCE] = _InstanceAnswer
    fake_client.query[constants.QR_GROUP] = {
        "fields": [Field("name")], "data": [[[0, "default"]], [[0, "rack2"]]]}
    fake_client.fields[constants.QR_NETWORK] = [
        Field(name, kind, _TITLES.get(name)) for name, kind in _KINDS.items()]
    return fake_client


@pytest.fixture
def waited(monkeypatch):
    """The opcodes run through cli.SubmitOpCode (connect, disconnect)."""
    ops = []
    monkeypatch.setattr(cli, "SubmitOpCode", lambda op, cl=None, opts=None: ops.append(op))
    return ops


def _Main(*argv):
    return gnt_network.Main(["gnt-network", *argv])


def _Submitted(fake_client):
    (ops,) = fake_client.submitted
    return ops[0]


# --- add / modify / remove / rename -----------------------------------------------------

def test_add_builds_the_opcode(client):
    assert _Main("add", "--network", "10.0.0.0/28", "--gateway", "10.0.0.1",
                 "--add-reserved-ips", "10.0.0.5,10.0.0.6", "--network6",
                 "2001:db8::/64", "--gateway6", "2001:db8::1", "--mac-prefix",
                 "aa:bb:cc", "--no-conflicts-check", "--tags", "x,y", "--submit",
                 "public") == constants.EXIT_SUCCESS
    op = _Submitted(client)
    assert op["OP_ID"] == "OP_NETWORK_ADD"
    assert op["network_name"] == "public" and op["network"] == "10.0.0.0/28"
    assert op["gateway"] == "10.0.0.1"
    assert op["add_reserved_ips"] == ["10.0.0.5", "10.0.0.6"]
    assert op["network6"] == "2001:db8::/64" and op["gateway6"] == "2001:db8::1"
    assert op["mac_prefix"] == "aa:bb:cc"
    assert op["conflicts_check"] is False
    assert op["tags"] == ["x", "y"]


def test_add_needs_network(client, capsys):
    assert _Main("add", "public") == constants.EXIT_FAILURE
    assert "--network option must be given" in capsys.readouterr().err
    assert not client.submitted


def test_modify(client, capsys):
    assert _Main("modify", "--add-reserved-ips", "10.0.0.7", "--remove-reserved-ips",
                 "10.0.0.5,10.0.0.6", "--gateway", "none", "--submit",
                 "public") == constants.EXIT_SUCCESS
    op = _Submitted(client)
    assert op["OP_ID"] == "OP_NETWORK_SET_PARAMS"
    assert op["add_reserved_ips"] == ["10.0.0.7"]
    assert op["remove_reserved_ips"] == ["10.0.0.5", "10.0.0.6"]
    assert op["gateway"] == "none"
    client.submitted.clear()
    assert _Main("modify", "public") == constants.EXIT_FAILURE
    assert "at least one of the parameters" in capsys.readouterr().err
    assert not client.submitted


def test_remove_and_rename(client):
    assert _Main("remove", "--submit", "public") == constants.EXIT_SUCCESS
    assert _Submitted(client)["OP_ID"] == "OP_NETWORK_REMOVE"
    client.submitted.clear()
    assert _Main("rename", "--submit", "public", "internet") == constants.EXIT_SUCCESS
    op = _Submitted(client)
    assert (op["OP_ID"], op["network_name"], op["new_name"]) == (
        "OP_NETWORK_RENAME", "public", "internet")
    assert _Main("rename", "public") == constants.EXIT_FAILURE


# --- connect / disconnect --------------------------------------------------------------------

def test_connect_named_groups(client, waited):
    assert _Main("connect", "-N", "mode=openvswitch,link=ovs0,vlan=.100",
                 "--no-conflicts-check", "public", "rack2") == constants.EXIT_SUCCESS
    (op,) = waited
    assert op.OP_ID == "OP_NETWORK_CONNECT"
    assert (op.network_name, op.group_name) == ("public", "rack2")
    assert (op.network_mode, op.network_link, op.network_vlan) == (
        "openvswitch", "ovs0", ".100")
    assert op.conflicts_check is False


def test_connect_all_groups_with_defaults(client, waited):
    assert _Main("connect", "-N", "link=br7", "public") == constants.EXIT_SUCCESS
    assert [op.group_name for op in waited] == ["default", "rack2"]
    assert all(op.network_mode == constants.NIC_MODE_BRIDGED for op in waited)
    assert all(op.network_link == "br7" and op.conflicts_check for op in waited)


def test_connect_refuses_old_syntax_and_unknown_params(client, waited, capsys):
    assert _Main("connect", "public", "bridged", "br0") == constants.EXIT_FAILURE
    assert "not supported any more" in capsys.readouterr().err
    assert _Main("connect", "-N", "colour=red", "public") == constants.EXIT_FAILURE
    assert "Unknown NIC parameter(s): colour" in capsys.readouterr().err
    assert not waited


def test_disconnect(client, waited):
    assert _Main("disconnect", "public", "default") == constants.EXIT_SUCCESS
    assert [(op.OP_ID, op.group_name) for op in waited] == [
        ("OP_NETWORK_DISCONNECT", "default")]
    waited.clear()
    assert _Main("disconnect", "public") == constants.EXIT_SUCCESS
    assert [op.group_name for op in waited] == ["default", "rack2"]


# --- list / list-fields / info -------------------------------------------------------------

def test_list_default_fields(client, capsys):
    assert _Main("list") == constants.EXIT_SUCCESS
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["Network", "Subnet", "Gateway", "MacPrefix",
                                "GroupList", "Tags"]
    assert lines[1].split(None, 4)[:4] == ["public", "10.0.0.0/28", "10.0.0.1",
                                           "aa:bb:cc"]
    assert "default (bridged, br0, ), rack2 (openvswitch, ovs0, .100)" in lines[1]
    assert lines[1].endswith("a,b")
    assert lines[2].split() == ["private", "192.168.0.0/24", "-", "-"]


def test_list_options(client, capsys):
    assert _Main("list", "--no-headers", "--separator", "|", "-o",
                 "name,free_count,inst_list", "public") == constants.EXIT_SUCCESS
    assert capsys.readouterr().out == "public|10|inst0,inst2\n"
    assert _Main("list", "--no-headers", "-o", "+free_count", "private") == 0
    assert capsys.readouterr().out.split()[-1] == "254"


def test_list_fields(client, capsys):
    assert _Main("list-fields", "name", "free_count") == constants.EXIT_SUCCESS
    out = capsys.readouterr().out.splitlines()
    assert out[1].split()[0] == "name" and out[2].split()[0] == "free_count"


def test_info(client, capsys):
    assert _Main("info", "public") == constants.EXIT_SUCCESS
    out = capsys.readouterr().out.splitlines()
    assert out[:11] == [
        "Network name: public",
        "UUID: uuid-public",
        "Serial number: 3",
        "  Subnet: 10.0.0.0/28",
        "  Gateway: 10.0.0.1",
        "  IPv6 Subnet: None",
        "  IPv6 Gateway: None",
        "  Mac Prefix: aa:bb:cc",
        "  Size: 16",
        "  Free: 10 (62.50%)",
        "  Usage map:",
    ]
    assert out[11] == "        0 XXXX.X.........X" + " " * 48 + " 63"
    assert out[12:] == [
        "         (X) used    (.) free",
        "  externally reserved IPs:",
        "    10.0.0.0, 10.0.0.1, 10.0.0.5, 10.0.0.15",
        "  connected to node groups:",
        "    default (mode:bridged link:br0 vlan:)",
        "    rack2 (mode:openvswitch link:ovs0 vlan:.100)",
        "  used by 2 instances:",
        "    inst0: 0:10.0.0.2",
        "    inst2: 0:10.0.0.3",
    ]


def test_info_unused_network_and_unknown(client, capsys):
    assert _Main("info", "private") == constants.EXIT_SUCCESS
    out = capsys.readouterr().out.splitlines()
    assert "       64 " + "." * 64 + " 127" in out
    assert out[-2:] == ["  not connected to any node group",
                        "  not used by any instances"]
    assert _Main("info", "nope") == constants.EXIT_FAILURE
    assert "Network(s) not known: nope" in capsys.readouterr().err


def test_tag_commands_exist():
    for name in ("list-tags", "add-tags", "remove-tags"):
        assert name in gnt_network.commands
