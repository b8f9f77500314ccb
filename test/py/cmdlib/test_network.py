"""Tests for the network LUs (add, remove, rename, modify, connect,
disconnect), run through mcpu on a configuration with nodes and instances."""

from __future__ import annotations

import os
import sys
from types import SimpleNamespace

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "query"))

import instcfg  # noqa: E402

from ganeti import constants, errors, mcpu, objects, opcodes  # noqa: E402
from ganeti import network as netpool  # noqa: E402
from ganeti.cmdlib import network as network_lu  # noqa: E402
from ganeti.locking import LEVEL_NETWORK  # noqa: E402
from ganeti.rpc.client import RpcResult  # noqa: E402
from ganeti.server import masterd  # noqa: E402


class Callbacks(mcpu.OpExecCbBase):
    def __init__(self):
        self.feedback = []

    def Feedback(self, *args):
        self.feedback.append(args)

    def Text(self):
        return "\n".join(str(args[-1]) for args in self.feedback)


class FakeRpc:
    """Runs no hooks; records their paths and environments."""

    def __init__(self):
        self.hooks = []

    def call_hooks_runner(self, nodes, hpath, phase, env):
        self.hooks.append((hpath, phase, dict(env)))
        return {node: RpcResult(data=[True, []]) for node in nodes}


@pytest.fixture
def ctx(tmp_path):
    cfg = instcfg.MakeConfig(str(tmp_path / "config.data"), 3, 6)
    return SimpleNamespace(cfg=cfg, glm=masterd.BuildLockManager(cfg), rpc=FakeRpc())


def _Run(ctx, op):
    cbs = Callbacks()
    result = mcpu.Processor(ctx, ec_id=1).ExecOpCode(op, cbs)
    return result, cbs


def _Raises(ctx, op, code, match):
    serial = ctx.cfg.GetConfigSerialNo()
    with pytest.raises(errors.OpPrereqError, match=match) as info:
        _Run(ctx, op)
    assert info.value.args[1] == code
    assert ctx.cfg.GetConfigSerialNo() == serial


def _Net(ctx, name):
    return ctx.cfg.GetNetwork(ctx.cfg.LookupNetwork(name))


def _Pool(ctx, name):
    return netpool.AddressPool(_Net(ctx, name))


def _Add(ctx, name="net1", network="10.0.0.0/28", **kwargs):
    return _Run(ctx, opcodes.OpNetworkAdd(network_name=name, network=network, **kwargs))


def _DefaultGroup(ctx):
    return ctx.cfg.GetNodeGroup(ctx.cfg.GetNodeGroupList()[0])


def _SetNic(ctx, inst_idx, ip=None, network=None):
    inst = ctx.cfg.GetInstanceInfoByName(instcfg.InstanceName(inst_idx))
    inst.nics[0].ip = ip
    inst.nics[0].network = network
    ctx.cfg.Update(inst)


# --- add ------------------------------------------------------------------------------

def test_add_reserves_network_broadcast_gateway_and_given_ips(ctx):
    _Add(ctx, gateway="10.0.0.1", add_reserved_ips=["10.0.0.5", "10.0.0.6"],
         network6="2001:db8::/64", gateway6="2001:db8::1", mac_prefix="AA:BB:CC",
         tags=["nfdhcpd"], conflicts_check=False)
    net = _Net(ctx, "net1")
    assert net.network == "10.0.0.0/28"
    assert net.gateway == "10.0.0.1"
    assert net.mac_prefix == "aa:bb:cc"
    assert net.network6 == "2001:db8::/64"
    assert net.tags == {"nfdhcpd"}
    pool = _Pool(ctx, "net1")
    assert pool.GetReservedAddresses(external=True) == [
        "10.0.0.0", "10.0.0.1", "10.0.0.5", "10.0.0.6", "10.0.0.15"]
    assert pool.GetReservedCount() == 5
    assert pool.GetFreeCount() == 11
    assert pool.GetMap() == "XX...XX........X"
    assert net.uuid in ctx.glm.names(LEVEL_NETWORK)


def test_add_conflicts_check_reserves_cluster_addresses(ctx):
    # Nodes are 192.0.2.1-3, the master IP 192.0.2.254
    cbs = _Add(ctx, network="192.0.2.0/24")[1]
    pool = _Pool(ctx, "net1")
    assert pool.GetReservedAddresses(external=True) == [
        "192.0.2.0", "192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.254",
        "192.0.2.255"]
    assert "Reserved IP address of node 'node1.example.com' (192.0.2.2)" in cbs.Text()
    _Add(ctx, name="net2", network="198.51.100.0/24")
    assert _Pool(ctx, "net2").GetReservedCount() == 2


def test_add_without_conflicts_check(ctx):
    _Add(ctx, network="192.0.2.0/24", conflicts_check=False)
    assert _Pool(ctx, "net1").GetReservedCount() == 2


@pytest.mark.parametrize("kwargs,code,match", [
    ({"network": "10.0.0.0/8"}, errors.ECODE_INVAL, r"Network '10.0.0.0/8' is too big"),
    ({"network": "10.0.0.0/31"}, errors.ECODE_INVAL, r"'10.0.0.0/31' is too small"),
    ({"gateway": "10.1.0.1"}, errors.ECODE_INVAL,
     r"Gateway '10.1.0.1' is not in network '10.0.0.0/28'"),
    ({"gateway": "10.0.0.0"}, errors.ECODE_INVAL, r"Invalid gateway '10.0.0.0'"),
    ({"add_reserved_ips": ["10.0.0.3", "10.0.1.3"]}, errors.ECODE_INVAL,
     r"Reserved IP address '10.0.1.3' is not in network"),
    ({"add_reserved_ips": ["10.0.0.15"]}, errors.ECODE_STATE,
     r"IP address '10.0.0.15' is already reserved"),
    ({"network6": "2001:db8::/64", "gateway6": "2001:db9::1"}, errors.ECODE_INVAL,
     r"IPv6 gateway '2001:db9::1' is not in the IPv6 network"),
    ({"tags": ["bad tag with spaces"]}, errors.ECODE_INVAL, r"Invalid tag"),
])
def test_add_bad_input(ctx, kwargs, code, match):
    params = {"network": "10.0.0.0/28"}
    params.update(kwargs)
    _Raises(ctx, opcodes.OpNetworkAdd(network_name="net1", **params), code, match)
    assert ctx.cfg.GetNetworkList() == []


def test_add_bad_mac_prefix_is_refused_by_the_opcode(ctx):
    with pytest.raises(errors.OpPrereqError, match="mac_prefix"):
        _Add(ctx, mac_prefix="aa:bb")


def test_add_duplicate_name_and_overlap(ctx):
    _Add(ctx)
    _Raises(ctx, opcodes.OpNetworkAdd(network_name="net1", network="10.1.0.0/28"),
            errors.ECODE_EXISTS, r"Desired network name 'net1' already exists")
    _Raises(ctx, opcodes.OpNetworkAdd(network_name="net2", network="10.0.0.8/29"),
            errors.ECODE_INVAL,
            r"Network '10.0.0.8/29' overlaps network 'net1' \(10.0.0.0/28\)")
    _Add(ctx, name="net2", network="10.0.0.16/28")


# --- modify ------------------------------------------------------------------------------

def test_modify_reservations_and_gateway(ctx):
    _Add(ctx, gateway="10.0.0.1", add_reserved_ips=["10.0.0.5"])
    _Run(ctx, opcodes.OpNetworkSetParams(
        network_name="net1", add_reserved_ips=["10.0.0.7", "10.0.0.8"],
        remove_reserved_ips=["10.0.0.5"], gateway="10.0.0.14",
        mac_prefix="aa:00:01", network6="2001:db8::/64"))
    net = _Net(ctx, "net1")
    assert net.gateway == "10.0.0.14"
    assert net.mac_prefix == "aa:00:01"
    assert net.network6 == "2001:db8::/64"
    pool = _Pool(ctx, "net1")
    assert pool.GetReservedAddresses(external=True) == [
        "10.0.0.0", "10.0.0.7", "10.0.0.8", "10.0.0.14", "10.0.0.15"]
    assert pool.GetFreeCount() == 11
    _Run(ctx, opcodes.OpNetworkSetParams(network_name="net1", gateway="none",
                                         mac_prefix="none", network6="none"))
    net = _Net(ctx, "net1")
    assert (net.gateway, net.mac_prefix, net.network6) == (None, None, None)
    assert _Pool(ctx, "net1").GetReservedCount() == 4


def test_modify_bad_input(ctx):
    _Add(ctx, gateway="10.0.0.1", add_reserved_ips=["10.0.0.5"])
    _SetNic(ctx, 0, ip="10.0.0.9", network=ctx.cfg.LookupNetwork("net1"))
    pool_net = _Net(ctx, "net1")
    netpool.AddressPool(pool_net).Reserve("10.0.0.9")
    ctx.cfg.Update(pool_net)

    def _Op(**kwargs):
        return opcodes.OpNetworkSetParams(network_name="net1", **kwargs)

    _Raises(ctx, _Op(), errors.ECODE_INVAL, "at least one modification")
    _Raises(ctx, _Op(remove_reserved_ips=["10.0.0.6"]), errors.ECODE_STATE,
            r"IP address '10.0.0.6' is not reserved in network 'net1'")
    _Raises(ctx, _Op(remove_reserved_ips=["10.0.0.9"]), errors.ECODE_STATE,
            r"'10.0.0.9' of network 'net1' is used by an instance")
    _Raises(ctx, _Op(remove_reserved_ips=["10.0.0.1"]), errors.ECODE_STATE,
            r"'10.0.0.1' is the gateway of network 'net1'")
    _Raises(ctx, _Op(remove_reserved_ips=["10.0.0.15"]), errors.ECODE_STATE,
            r"broadcast address")
    _Raises(ctx, _Op(remove_reserved_ips=["10.0.1.1"]), errors.ECODE_INVAL,
            r"IP address to release '10.0.1.1' is not in network 'net1'")
    _Raises(ctx, _Op(add_reserved_ips=["10.0.0.5"]), errors.ECODE_STATE,
            r"IP address '10.0.0.5' is already in use in network 'net1'")
    _Raises(ctx, _Op(add_reserved_ips=["10.0.0.9"]), errors.ECODE_STATE,
            r"IP address '10.0.0.9' is already in use")
    _Raises(ctx, _Op(add_reserved_ips=["10.0.0.6"], remove_reserved_ips=["10.0.0.6"]),
            errors.ECODE_INVAL, "both reserved and released: 10.0.0.6")
    _Raises(ctx, _Op(gateway="10.0.0.5"), errors.ECODE_STATE,
            r"Gateway IP address '10.0.0.5' is already reserved")
    _Raises(ctx, _Op(gateway="10.0.2.1"), errors.ECODE_INVAL,
            r"Gateway '10.0.2.1' is not in network")
    _Raises(ctx, _Op(network6="2001:db8::/64", gateway6="2001:db9::1"),
            errors.ECODE_INVAL, r"IPv6 gateway '2001:db9::1' is not in the IPv6 network")
    _Raises(ctx, opcodes.OpNetworkSetParams(network_name="nope", gateway="none"),
            errors.ECODE_NOENT, "Network 'nope' not found")
    # nothing changed by the refused ones
    assert _Pool(ctx, "net1").GetReservedAddresses(external=True) == [
        "10.0.0.0", "10.0.0.1", "10.0.0.5", "10.0.0.15"]


# --- rename / remove ----------------------------------------------------------------------

def test_rename(ctx):
    _Add(ctx)
    _Add(ctx, name="net2", network="10.0.1.0/28")
    uuid = ctx.cfg.LookupNetwork("net1")
    result, _ = _Run(ctx, opcodes.OpNetworkRename(network_name="net1", new_name="public"))
    assert result == "public"
    assert ctx.cfg.LookupNetwork("public") == uuid
    _Raises(ctx, opcodes.OpNetworkRename(network_name="public", new_name="net2"),
            errors.ECODE_EXISTS, "Desired new name 'net2' clashes")


def test_remove(ctx):
    _Add(ctx)
    uuid = ctx.cfg.LookupNetwork("net1")
    _Run(ctx, opcodes.OpNetworkRemove(network_name="net1"))
    assert ctx.cfg.GetNetworkList() == []
    assert uuid not in ctx.glm.names(LEVEL_NETWORK)
    _Raises(ctx, opcodes.OpNetworkRemove(network_name="net1"), errors.ECODE_NOENT,
            "Network 'net1' not found")


def test_remove_refused_while_connected_or_used(ctx):
    _Add(ctx)
    group = _DefaultGroup(ctx)
    _Run(ctx, opcodes.OpNetworkConnect(network_name="net1", group_name=group.name,
                                       network_mode="bridged", network_link="br0"))
    _Raises(ctx, opcodes.OpNetworkRemove(network_name="net1"), errors.ECODE_STATE,
            f"connected to the following node groups: {group.name}")
    _Run(ctx, opcodes.OpNetworkDisconnect(network_name="net1", group_name=group.name))
    _SetNic(ctx, 1, network=ctx.cfg.LookupNetwork("net1"))
    _Raises(ctx, opcodes.OpNetworkRemove(network_name="net1"), errors.ECODE_STATE,
            r"used by the NICs of these instances: inst1.example.com \(nic/0: no IP\)")


# --- connect / disconnect -----------------------------------------------------------------

def test_connect_and_disconnect(ctx):
    _Add(ctx)
    group = _DefaultGroup(ctx)
    uuid = ctx.cfg.LookupNetwork("net1")
    _Run(ctx, opcodes.OpNetworkConnect(network_name="net1", group_name=group.name,
                                       network_mode="openvswitch", network_link="ovs0",
                                       network_vlan=".100"))
    assert _DefaultGroup(ctx).networks[uuid] == {
        constants.NIC_MODE: "openvswitch", constants.NIC_LINK: "ovs0",
        constants.NIC_VLAN: ".100"}
    # the same again: a warning, nothing changes
    serial = ctx.cfg.GetConfigSerialNo()
    _, cbs = _Run(ctx, opcodes.OpNetworkConnect(
        network_name="net1", group_name=group.name, network_mode="openvswitch",
        network_link="ovs0", network_vlan=".100"))
    assert "already connected" in cbs.Text()
    assert ctx.cfg.GetConfigSerialNo() == serial
    # other parameters: refused
    _Raises(ctx, opcodes.OpNetworkConnect(network_name="net1", group_name=group.name,
                                          network_mode="routed", network_link="rt1"),
            errors.ECODE_STATE, r"already connected to group .* disconnect it first")
    # in use by a NIC in the group: disconnect refused
    _SetNic(ctx, 2, ip="10.0.0.3", network=uuid)
    _Raises(ctx, opcodes.OpNetworkDisconnect(network_name="net1", group_name=group.name),
            errors.ECODE_STATE,
            r"still used in node group .* inst2.example.com \(nic/0: 10.0.0.3\)")
    _SetNic(ctx, 2)
    _Run(ctx, opcodes.OpNetworkDisconnect(network_name="net1", group_name=group.name))
    assert uuid not in (_DefaultGroup(ctx).networks or {})
    # not connected: a warning
    _, cbs = _Run(ctx, opcodes.OpNetworkDisconnect(network_name="net1",
                                                   group_name=group.name))
    assert "is not connected to group" in cbs.Text()


def test_connect_conflicts_check(ctx):
    _Add(ctx)
    group = _DefaultGroup(ctx)
    _SetNic(ctx, 3, ip="10.0.0.4")

    def _Op(check=True):
        return opcodes.OpNetworkConnect(network_name="net1", group_name=group.name,
                                        network_mode="bridged", network_link="br0",
                                        conflicts_check=check)

    _Raises(ctx, _Op(), errors.ECODE_STATE,
            r"Conflicting IP addresses found: .* inst3.example.com \(nic/0: 10.0.0.4\)")
    _Run(ctx, _Op(check=False))
    assert ctx.cfg.LookupNetwork("net1") in _DefaultGroup(ctx).networks


@pytest.mark.parametrize("kwargs,match", [
    ({"network_mode": "bridged", "network_link": ""}, "network_link"),
    ({"network_mode": "bridged", "network_link": "br0", "network_vlan": "x1"},
     "Invalid VLAN 'x1'"),
])
def test_connect_bad_input(ctx, kwargs, match):
    _Add(ctx)
    group = _DefaultGroup(ctx)
    with pytest.raises(errors.OpPrereqError, match=match):
        _Run(ctx, opcodes.OpNetworkConnect(network_name="net1", group_name=group.name,
                                           **kwargs))


def test_connect_unknown_group_and_network(ctx):
    _Add(ctx)
    _Raises(ctx, opcodes.OpNetworkConnect(network_name="net1", group_name="nope",
                                          network_mode="bridged", network_link="br0"),
            errors.ECODE_NOENT, "nope")
    _Raises(ctx, opcodes.OpNetworkConnect(network_name="nope",
                                          group_name=_DefaultGroup(ctx).name,
                                          network_mode="bridged", network_link="br0"),
            errors.ECODE_NOENT, "Network 'nope' not found")


# --- hooks and interruptions ----------------------------------------------------------------

def test_hook_env():
    net = objects.Network(name="n", network="10.0.0.0/28", gateway="10.0.0.1",
                          mac_prefix=None, network6=None, gateway6=None,
                          uuid="u", tags={"b", "a"})
    env = network_lu.NetworkHookEnv(net)
    assert env["NETWORK_NAME"] == "n"
    assert env["NETWORK_SUBNET"] == "10.0.0.0/28"
    assert env["NETWORK_GATEWAY"] == "10.0.0.1"
    assert env["NETWORK_MAC_PREFIX"] == ""
    assert env["NETWORK_TAGS"] == "a b"
    assert network_lu.NetworkHookEnv(net, "NIC_0_NETWORK_")["NIC_0_NETWORK_NAME"] == "n"


def test_interrupted(ctx):
    add = opcodes.OpNetworkAdd(network_name="net1", network="10.0.0.0/28")
    assert not network_lu.LUNetworkAdd.Interrupted(ctx.cfg, add).succeeded
    _Run(ctx, add)
    assert network_lu.LUNetworkAdd.Interrupted(ctx.cfg, add).succeeded
    remove = opcodes.OpNetworkRemove(network_name="net1")
    assert not network_lu.LUNetworkRemove.Interrupted(ctx.cfg, remove).succeeded


def test_hooks_run_with_network_env(ctx):
    _Add(ctx, gateway="10.0.0.1")
    group = _DefaultGroup(ctx)
    _Run(ctx, opcodes.OpNetworkConnect(network_name="net1", group_name=group.name,
                                       network_mode="bridged", network_link="br0"))
    paths = [(hpath, phase) for hpath, phase, _ in ctx.rpc.hooks]
    assert paths == [("network-add", "pre"), ("network-add", "post"),
                     ("network-connect", "pre"), ("network-connect", "post")]
    env = ctx.rpc.hooks[-1][2]
    assert env["GANETI_NETWORK_NAME"] == "net1"
    assert env["GANETI_NETWORK_GATEWAY"] == "10.0.0.1"
    assert env["GANETI_GROUP_NAME"] == group.name
    assert env["GANETI_GROUP_NETWORK_LINK"] == "br0"
