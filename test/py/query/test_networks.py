"""Tests for the "network" query resource: every field's value, filters,
names and unavailable values."""

from __future__ import annotations

import os
import sys
from types import SimpleNamespace

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import instcfg  # noqa: E402

from ganeti import constants, errors, objects, query  # noqa: E402
from ganeti import network as netpool  # noqa: E402


@pytest.fixture
def cfg(tmp_path):
    """Networks "public" (10.0.0.0/28, connected to both groups, used by
    inst0 and inst2) and "private" (connected nowhere, unused)."""
    cfg = instcfg.MakeConfig(str(tmp_path / "config.data"), 2, 4)
    public = objects.Network(name="public", network="10.0.0.0/28",
                             gateway="10.0.0.1", mac_prefix="aa:bb:cc",
                             network6="2001:db8::/64", gateway6="2001:db8::1",
                             tags={"nfdhcpd"})
    netpool.AddressPool.InitializeNetwork(public)
    pool = netpool.AddressPool(public)
    pool.Reserve("10.0.0.5", external=True)
    pool.Reserve("10.0.0.2")
    pool.Reserve("10.0.0.3")
    cfg.AddNetwork(public, "job")
    cfg.AddNetwork(objects.Network(name="private", network="192.168.0.0/24"), "job")
    pub_uuid = cfg.LookupNetwork("public")
    cfg.AddNodeGroup(objects.NodeGroup(name="rack2"), "job")
    for group_name, params in (("default", ("bridged", "br0", "")),
                               ("rack2", ("openvswitch", "ovs0", ".100"))):
        group = cfg.GetNodeGroupInfoByName(group_name)
        group.networks = {pub_uuid: dict(zip(("mode", "link", "vlan"), params))}
        cfg.Update(group)
    for idx, ip in ((0, "10.0.0.2"), (2, "10.0.0.3")):
        inst = cfg.GetInstanceInfoByName(instcfg.InstanceName(idx))
        inst.nics[0].ip = ip
        inst.nics[0].network = pub_uuid
        cfg.Update(inst)
    return cfg


def _Query(cfg, fields, qfilter=None):
    result = query.Query(constants.QR_NETWORK, fields, qfilter,
                         SimpleNamespace(cfg=cfg))
    return result


def _Rows(cfg, fields, qfilter=None):
    return [[value for _, value in row] for row in _Query(cfg, fields, qfilter)["data"]]


def test_config_fields(cfg):
    rows = _Rows(cfg, ["name", "network", "gateway", "network6", "gateway6",
                       "mac_prefix", "tags", "serial_no"])
    assert rows[0] == ["private", "192.168.0.0/24", None, None, None, None, [], 1]
    assert rows[1] == ["public", "10.0.0.0/28", "10.0.0.1", "2001:db8::/64",
                       "2001:db8::1", "aa:bb:cc", ["nfdhcpd"], 1]
    statuses = [status for status, _ in _Query(cfg, ["gateway"])["data"][0]]
    assert statuses == [constants.RS_UNAVAIL]


def test_pool_fields(cfg):
    rows = _Rows(cfg, ["free_count", "reserved_count", "map", "external_reservations"],
                 ["=", "name", "public"])
    assert rows == [[10, 6, "XXXX.X.........X", "10.0.0.0, 10.0.0.1, 10.0.0.5, 10.0.0.15"]]
    private = _Rows(cfg, ["free_count", "reserved_count", "external_reservations"],
                    ["=", "name", "private"])
    assert private == [[254, 2, "192.168.0.0, 192.168.0.255"]]


def test_group_and_instance_fields(cfg):
    rows = _Rows(cfg, ["name", "group_list", "group_cnt", "inst_list", "inst_cnt"])
    assert rows[0] == ["private", [], 0, [], 0]
    assert rows[1] == ["public", [["default", "bridged", "br0", ""],
                                  ["rack2", "openvswitch", "ovs0", ".100"]], 2,
                       ["inst0.example.com", "inst2.example.com"], 2]


def test_field_kinds_and_titles(cfg):
    fields = {f["name"]: (f["title"], f["kind"])
              for f in query.QueryFields(constants.QR_NETWORK, None)["fields"]}
    assert fields["name"] == ("Network", constants.QFT_TEXT)
    assert fields["network"] == ("Subnet", constants.QFT_TEXT)
    assert fields["free_count"] == ("FreeCount", constants.QFT_NUMBER)
    assert fields["group_list"] == ("GroupList", constants.QFT_OTHER)
    assert fields["external_reservations"][1] == constants.QFT_TEXT
    for name in ("name", "network", "gateway", "network6", "gateway6", "mac_prefix",
                 "free_count", "reserved_count", "map", "group_list", "group_cnt",
                 "inst_list", "inst_cnt", "external_reservations", "tags", "uuid",
                 "serial_no", "ctime", "mtime"):
        assert name in fields


def test_filters_and_names(cfg):
    assert _Rows(cfg, ["name"], [">", "free_count", 100]) == [["private"]]
    assert _Rows(cfg, ["name"], ["=[]", "tags", "nfdhcpd"]) == [["public"]]
    uuid = cfg.LookupNetwork("public")
    assert _Rows(cfg, ["name"], ["=", "name", uuid]) == []
    with pytest.raises(errors.OpPrereqError, match="Some networks do not exist: nope"):
        _Query(cfg, ["name"], ["|", ["=", "name", "public"], ["=", "name", "nope"]])


def test_rapi_fields_are_known():
    from ganeti.rapi import rlib2_nodes
    from ganeti.query import networks as query_networks
    for name in rlib2_nodes.NET_FIELDS:
        assert name in query_networks.NETWORK_FIELDS
