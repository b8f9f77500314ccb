"""NICs on networks (lib/cmdlib/instance_nics.py) through the instance LUs
(add, modify, remove, change-group), their hooks and OS variables and
gnt-cluster verify, with the fake RPC runners of instancehelpers.

Networks are put into the configuration directly and connected to a group
by setting NodeGroup.networks (the network LUs are tested on their own).
"""

from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import instancehelpers  # noqa: E402
from relochelpers import Answer, MirrorContext, N4, N5  # noqa: E402
from relochelpers import Run as RelocRun  # noqa: E402
from test_cluster_verify_files import VerifyRunner  # noqa: E402
from test_iallocator_relocation import _ReplaceOp  # noqa: E402
from test_instance_replace import NAME as DRBD_NAME, AddDrbdInstance  # noqa: E402

from ganeti import constants, errors, locking, mcpu, network, objects, opcodes  # noqa: E402
from ganeti.backend import os as bos  # noqa: E402
from ganeti.cmdlib import instance_nics  # noqa: E402
from ganeti.cmdlib import instance_utils as iu  # noqa: E402

NAME = "inst1.example.com"
BRIDGE = "br-net1"


@pytest.fixture
def ctx(tmp_path):
    context = instancehelpers.MakeContext(tmp_path)
    context.net1 = AddNetwork(context, "net1", "10.0.0.0/29", gateway="10.0.0.1",
                              mac_prefix="aa:bb:cc", tags=["dmz", "blue"])
    Connect(context.cfg, context.net1, link=BRIDGE, vlan=".100")
    return context


def AddNetwork(ctx, name, subnet, gateway=None, mac_prefix=None, tags=(),
               network6=None, gateway6=None):
    """Add a network to ctx's configuration and its lock (as gnt-network add)."""
    net = objects.Network(name=name, network=subnet, gateway=gateway,
                          mac_prefix=mac_prefix, network6=network6, gateway6=gateway6,
                          tags=set(tags))
    ctx.cfg.AddNetwork(net, "test")
    uuid = ctx.cfg.LookupNetwork(name)
    ctx.glm.acquire(locking.LEVEL_CLUSTER, locking.BGL, shared=1)
    try:
        ctx.glm.add(locking.LEVEL_NETWORK, [uuid])
    finally:
        ctx.glm.release(locking.LEVEL_CLUSTER)
    return uuid


def Connect(cfg, net_uuid, group=None, mode=constants.NIC_MODE_BRIDGED, link=BRIDGE,
            vlan=""):
    info = cfg.GetNodeGroup(group or cfg.LookupNodeGroup(None))
    info.networks = dict(info.networks or {})
    info.networks[net_uuid] = {constants.NIC_MODE: mode, constants.NIC_LINK: link,
                               constants.NIC_VLAN: vlan}
    cfg.Update(info)


def Reserved(cfg, net_uuid):
    """The addresses of the network given to instances."""
    return network.AddressPool(cfg.GetNetwork(net_uuid)).GetReservedAddresses()


def Pending(cfg, net_uuid):
    """Addresses jobs reserved and did not commit (must be none after a job)."""
    return cfg._temporary_ips.GetReserved(net_uuid)


def Create(ctx, name=NAME, nics=None, **kwargs):
    op = instancehelpers.CreateOp(name, nics=nics if nics is not None
                                  else [{"network": "net1", "ip": "pool"}], **kwargs)
    result = instancehelpers.Run(ctx, op)
    return ctx.cfg.GetInstanceInfoByName(name), result


def Modify(ctx, name=NAME, **kwargs):
    result, _ = instancehelpers.Run(ctx, opcodes.OpInstanceSetParams(instance_name=name,
                                                                     **kwargs))
    return ctx.cfg.GetInstanceInfoByName(name), result


def Refused(ctx, op, code, match):
    with pytest.raises(errors.OpPrereqError, match=match) as info:
        instancehelpers.Run(ctx, op)
    assert info.value.args[1] == code


# --- gnt-instance add -----------------------------------------------------------------

def test_pool_address_connection_parameters_and_mac(ctx):
    inst, _ = Create(ctx)
    (nic,) = inst.nics
    assert (nic.network, nic.ip) == (ctx.net1, "10.0.0.2")
    assert nic.nicparams == {constants.NIC_MODE: constants.NIC_MODE_BRIDGED,
                             constants.NIC_LINK: BRIDGE, constants.NIC_VLAN: ".100"}
    assert nic.mac.startswith("aa:bb:cc:")
    assert Reserved(ctx.cfg, ctx.net1) == ["10.0.0.2"]
    assert not Pending(ctx.cfg, ctx.net1)
    # the next one gets the next free address
    inst2, _ = Create(ctx, "inst2.example.com")
    assert inst2.nics[0].ip == "10.0.0.3"
    assert Reserved(ctx.cfg, ctx.net1) == ["10.0.0.2", "10.0.0.3"]


def test_explicit_address_and_conflicts(ctx):
    inst, _ = Create(ctx, nics=[{"network": "net1", "ip": "10.0.0.5"}])
    assert inst.nics[0].ip == "10.0.0.5"
    assert Reserved(ctx.cfg, ctx.net1) == ["10.0.0.5"]
    for ip in ("10.0.0.5", "10.0.0.1", "10.9.9.9"):
        Refused(ctx, instancehelpers.CreateOp("inst2.example.com",
                                              nics=[{"network": "net1", "ip": ip}]),
                errors.ECODE_NOTUNIQUE,
                f"IP address {ip} already in use or not in network net1")
    # a NIC without network may not take an address of a connected network
    Refused(ctx, instancehelpers.CreateOp("inst2.example.com", nics=[{"ip": "10.0.0.4"}]),
            errors.ECODE_STATE, r"\(10.0.0.4\) of NIC 0 belongs to network net1")
    inst2, _ = Create(ctx, "inst2.example.com", nics=[{"ip": "10.0.0.4"}],
                      conflicts_check=False)
    assert (inst2.nics[0].network, inst2.nics[0].ip) == (None, "10.0.0.4")
    assert Reserved(ctx.cfg, ctx.net1) == ["10.0.0.5"]
    assert not Pending(ctx.cfg, ctx.net1)


def test_network_not_connected_and_mode_link_refused(ctx):
    AddNetwork(ctx, "net2", "10.1.0.0/24")
    Refused(ctx, instancehelpers.CreateOp(nics=[{"network": "net2", "ip": "pool"}]),
            errors.ECODE_INVAL, "Network net2 is not connected to node group default")
    for extra in ({"mode": "routed"}, {"link": "br9"}):
        Refused(ctx, instancehelpers.CreateOp(nics=[{"network": "net1", **extra}]),
                errors.ECODE_INVAL, "if network is given, no mode or link is allowed")
    Refused(ctx, instancehelpers.CreateOp(nics=[{"network": "nonet"}]),
            errors.ECODE_NOENT, "Network 'nonet' not found")
    assert not ctx.cfg.GetInstanceList()
    assert not Pending(ctx.cfg, ctx.net1)


def test_full_pool(ctx):
    small = AddNetwork(ctx, "small", "10.2.0.0/30", gateway="10.2.0.1")
    Connect(ctx.cfg, small)
    inst, _ = Create(ctx, nics=[{"network": "small", "ip": "pool"}])
    assert inst.nics[0].ip == "10.2.0.2"
    Refused(ctx, instancehelpers.CreateOp("inst2.example.com",
                                          nics=[{"network": "small", "ip": "pool"}]),
            errors.ECODE_STATE, "Unable to get a free IP for NIC 0 from network small:"
            " No free address left")
    assert Reserved(ctx.cfg, small) == ["10.2.0.2"]


@pytest.mark.parametrize("failing,kwargs", [
    ("instance_os_add", {}),
    ("blockdev_create", {"disk_template": "file", "disks": [{"size": 1024}]}),
])
def test_failed_creation_leaks_no_address(ctx, failing, kwargs):
    ctx.rpc.fail[failing] = "it broke"
    with pytest.raises(errors.OpExecError):
        Create(ctx, nics=[{"network": "net1", "ip": "pool"},
                          {"network": "net1", "ip": "10.0.0.6"}], **kwargs)
    assert not ctx.cfg.GetInstanceList()
    assert Reserved(ctx.cfg, ctx.net1) == []
    assert not Pending(ctx.cfg, ctx.net1)
    # the addresses are free for the next job
    del ctx.rpc.fail[failing]
    inst, _ = Create(ctx, nics=[{"network": "net1", "ip": "10.0.0.6"},
                                {"network": "net1", "ip": "pool"}], **kwargs)
    assert [nic.ip for nic in inst.nics] == ["10.0.0.6", "10.0.0.2"]


def test_dry_run_and_failed_pre_hook_keep_nothing(ctx):
    result, _ = instancehelpers.Run(ctx, instancehelpers.CreateOp(
        nics=[{"network": "net1", "ip": "10.0.0.2"}], dry_run=True))
    assert result == [instancehelpers.MASTER]
    assert not Pending(ctx.cfg, ctx.net1) and Reserved(ctx.cfg, ctx.net1) == []
    inst, _ = Create(ctx, nics=[{"network": "net1", "ip": "10.0.0.2"}])
    assert inst.nics[0].ip == "10.0.0.2"


# --- hooks and OS scripts ------------------------------------------------------------------

def test_hooks_and_os_environment(ctx):
    inst, _ = Create(ctx)
    pre = [call[4] for call in ctx.rpc.calls
           if call[0] == "hooks_runner" and call[3] == constants.HOOKS_PHASE_PRE][0]
    expected = {
        "NIC0_IP": "10.0.0.2", "NIC0_MODE": "bridged", "NIC0_LINK": BRIDGE,
        "NIC0_VLAN": ".100", "NIC0_BRIDGE": BRIDGE,
        "NIC0_NETWORK_NAME": "net1", "NIC0_NETWORK_UUID": ctx.net1,
        "NIC0_NETWORK_SUBNET": "10.0.0.0/29", "NIC0_NETWORK_GATEWAY": "10.0.0.1",
        "NIC0_NETWORK_MAC_PREFIX": "aa:bb:cc", "NIC0_NETWORK_TAGS": "blue dmz",
    }
    for key, value in expected.items():
        assert pre[f"GANETI_INSTANCE_{key}"] == value, key
    assert "GANETI_INSTANCE_NIC0_NETWORK_SUBNET6" not in pre
    # the instance LUs' common variables (modify, remove, ...) say the same
    from ganeti import hooksmaster
    env = hooksmaster.BuildInstanceHookEnv(ctx.cfg, inst)
    for key, value in expected.items():
        assert str(env[f"INSTANCE_{key}"]) == value, key

    # What the node gets for the OS scripts: NIC_n_* with the network's data
    rpc_inst = iu.InstanceRpcDict(ctx.cfg, inst)
    assert rpc_inst["nics"][0]["netinfo"]["name"] == "net1"
    assert "reservations" not in rpc_inst["nics"][0]["netinfo"]
    node_inst = objects.Instance.FromDict(rpc_inst)
    inst_os = objects.OS(name="noop", api_versions=[20], supported_variants=["default"],
                         supported_parameters=[])
    os_env = bos.OSEnvironment(node_inst, inst_os, disk_paths=[])
    for key, value in {"NIC_0_IP": "10.0.0.2", "NIC_0_MODE": "bridged",
                       "NIC_0_LINK": BRIDGE, "NIC_0_VLAN": ".100",
                       "NIC_0_NETWORK_NAME": "net1", "NIC_0_NETWORK_UUID": ctx.net1,
                       "NIC_0_NETWORK_SUBNET": "10.0.0.0/29",
                       "NIC_0_NETWORK_GATEWAY": "10.0.0.1",
                       "NIC_0_NETWORK_MAC_PREFIX": "aa:bb:cc",
                       "NIC_0_NETWORK_TAGS": "blue dmz"}.items():
        assert os_env[key] == value, key
    assert "NIC_0_NETWORK_SUBNET6" not in os_env


def test_ipv6_and_empty_tags_in_the_environment(ctx):
    net6 = AddNetwork(ctx, "net6", "10.3.0.0/24", network6="2001:db8::/64",
                      gateway6="2001:db8::1")
    Connect(ctx.cfg, net6, mode=constants.NIC_MODE_ROUTED, link="rt100")
    inst, _ = Create(ctx, nics=[{"network": "net6", "ip": "pool"}])
    env = iu.InstanceRpcDict(ctx.cfg, inst)
    assert env["nics"][0]["nicparams"][constants.NIC_MODE] == "routed"
    os_env = bos.OSEnvironment(objects.Instance.FromDict(env), objects.OS(
        name="noop", api_versions=[20], supported_variants=[], supported_parameters=[]),
        disk_paths=[])
    assert os_env["NIC_0_NETWORK_SUBNET6"] == "2001:db8::/64"
    assert os_env["NIC_0_NETWORK_GATEWAY6"] == "2001:db8::1"
    assert os_env["NIC_0_NETWORK_TAGS"] == ""
    assert os_env["NIC_0_MODE"] == "routed" and os_env["NIC_0_LINK"] == "rt100"


# --- gnt-instance modify and remove -------------------------------------------------------

def test_modify_add_change_and_remove_nics(ctx):
    Create(ctx, nics=[{}])
    inst, result = Modify(ctx, nics=[[constants.DDM_ADD, -1,
                                      {"network": "net1", "ip": "pool"}]])
    nic = inst.nics[1]
    assert (nic.network, nic.ip, nic.nicparams[constants.NIC_LINK]) == \
        (ctx.net1, "10.0.0.2", BRIDGE)
    assert nic.mac.startswith("aa:bb:cc:")
    assert "network=net1" in dict(result)["nic.1"]
    assert Reserved(ctx.cfg, ctx.net1) == ["10.0.0.2"]
    # a new address: the old one goes back
    inst, result = Modify(ctx, nics=[[constants.DDM_MODIFY, 1, {"ip": "10.0.0.6"}]])
    assert inst.nics[1].ip == "10.0.0.6" and ("nic.ip/1", "10.0.0.6") in result
    assert Reserved(ctx.cfg, ctx.net1) == ["10.0.0.6"]
    inst, result = Modify(ctx, nics=[[constants.DDM_MODIFY, 1, {"ip": "pool"}]])
    assert inst.nics[1].ip == "10.0.0.2" and ("nic.ip/1", "10.0.0.2") in result
    assert Reserved(ctx.cfg, ctx.net1) == ["10.0.0.2"]
    # the first NIC joins the network, keeping no address
    inst, _ = Modify(ctx, nics=[[constants.DDM_MODIFY, 0, {"network": "net1"}]])
    assert inst.nics[0].network == ctx.net1
    assert inst.nics[0].nicparams[constants.NIC_LINK] == BRIDGE
    # leaving the network releases the address (which the NIC cannot keep:
    # it belongs to a network connected to the group)
    Refused(ctx, opcodes.OpInstanceSetParams(
        instance_name=NAME, nics=[[constants.DDM_MODIFY, 1, {"network": "none"}]]),
        errors.ECODE_STATE, r"\(10.0.0.2\) of NIC 1 belongs to network net1")
    assert Reserved(ctx.cfg, ctx.net1) == ["10.0.0.2"]
    inst, _ = Modify(ctx, nics=[[constants.DDM_MODIFY, 1, {"network": "none",
                                                           "ip": "none"}]])
    assert inst.nics[1].network is None and inst.nics[1].ip is None
    assert Reserved(ctx.cfg, ctx.net1) == []
    inst, _ = Modify(ctx, nics=[[constants.DDM_MODIFY, 1,
                                 {"network": "net1", "ip": "10.0.0.3"}]])
    assert Reserved(ctx.cfg, ctx.net1) == ["10.0.0.3"]
    # removing the NIC releases it
    inst, _ = Modify(ctx, nics=[[constants.DDM_REMOVE, 1, {}]])
    assert len(inst.nics) == 1
    assert Reserved(ctx.cfg, ctx.net1) == []
    assert not Pending(ctx.cfg, ctx.net1)


def test_modify_refusals(ctx):
    Create(ctx)
    net2 = AddNetwork(ctx, "net2", "10.1.0.0/24")
    serial = ctx.cfg.GetConfigSerialNo()
    cases = [
        ([[constants.DDM_ADD, -1, {"network": "net2"}]], errors.ECODE_INVAL,
         "Network net2 is not connected to node group default"),
        ([[constants.DDM_ADD, -1, {"network": "net1", "ip": "10.0.0.2"}]],
         errors.ECODE_NOTUNIQUE, "IP address 10.0.0.2 already in use or not in network"
         " net1"),
        ([[constants.DDM_ADD, -1, {"network": "net1", "mode": "routed"}]],
         errors.ECODE_INVAL, "no mode or link is allowed"),
        ([[constants.DDM_MODIFY, 0, {"link": "br9"}]], errors.ECODE_INVAL,
         "NIC 0 is on network net1: its mode, link and VLAN come from"),
        ([[constants.DDM_ADD, -1, {"ip": "pool"}]], errors.ECODE_INVAL,
         "IP 'pool' is only valid with a network"),
        ([[constants.DDM_MODIFY, 0, {"ip": "10.9.9.9"}]], errors.ECODE_NOTUNIQUE,
         "IP address 10.9.9.9 already in use or not in network net1"),
    ]
    for nics, code, match in cases:
        Refused(ctx, opcodes.OpInstanceSetParams(instance_name=NAME, nics=nics), code,
                match)
        assert ctx.cfg.GetConfigSerialNo() == serial
        assert Reserved(ctx.cfg, ctx.net1) == ["10.0.0.2"]
        assert not Pending(ctx.cfg, ctx.net1) and not Pending(ctx.cfg, net2)


def test_failed_modification_leaks_no_address(ctx):
    Create(ctx, disk_template="file", disks=[{"size": 1024}], start=False)
    ctx.rpc.fail["blockdev_create"] = "no space"
    with pytest.raises(errors.OpExecError):
        Modify(ctx, disks=[[constants.DDM_ADD, -1, {"size": 1024}]],
               nics=[[constants.DDM_ADD, -1, {"network": "net1", "ip": "pool"}],
                     [constants.DDM_MODIFY, 0, {"ip": "10.0.0.5"}]])
    inst = ctx.cfg.GetInstanceInfoByName(NAME)
    assert [nic.ip for nic in inst.nics] == ["10.0.0.2"]
    assert Reserved(ctx.cfg, ctx.net1) == ["10.0.0.2"]
    assert not Pending(ctx.cfg, ctx.net1)


def test_remove_instance_releases_its_addresses(ctx):
    Create(ctx, nics=[{"network": "net1", "ip": "pool"},
                      {"network": "net1", "ip": "10.0.0.6"}])
    assert Reserved(ctx.cfg, ctx.net1) == ["10.0.0.2", "10.0.0.6"]
    instancehelpers.Run(ctx, opcodes.OpInstanceRemove(instance_name=NAME))
    assert Reserved(ctx.cfg, ctx.net1) == []
    inst, _ = Create(ctx, "inst2.example.com", nics=[{"network": "net1",
                                                       "ip": "10.0.0.6"}])
    assert inst.nics[0].ip == "10.0.0.6"


# --- gnt-cluster verify ----------------------------------------------------------------------

def _Feedback(cbs):
    return [str(args[-1]) for args in cbs.feedback if str(args[-1]).startswith("  - ")]


def _SetNic(cfg, name, **values):
    inst = cfg.GetInstanceInfoByName(name)
    for key, value in values.items():
        setattr(inst.nics[0], key, value)
    cfg.Update(inst)


def test_verify_config_addresses(ctx):
    Create(ctx)
    Create(ctx, "inst2.example.com")
    _SetNic(ctx.cfg, "inst2.example.com", ip="10.0.0.2")
    ok, cbs = instancehelpers.Run(ctx, opcodes.OpClusterVerifyConfig(error_codes=True))
    lines = _Feedback(cbs)
    assert ok is False
    assert any(line.startswith("  - ERROR:ECLUSTERCFG:cluster::duplicate IP address"
                               " 10.0.0.2") for line in lines), lines
    _SetNic(ctx.cfg, "inst2.example.com", ip="10.7.7.7")
    _, cbs = instancehelpers.Run(ctx, opcodes.OpClusterVerifyConfig())
    assert "  - ERROR: cluster: instance inst2.example.com NIC 0: IP 10.7.7.7 is" \
        " outside network net1" in _Feedback(cbs)


def test_verify_group_network_not_connected(ctx):
    Create(ctx)
    group = ctx.cfg.GetNodeGroup(ctx.cfg.LookupNodeGroup(None))
    group.networks = {}
    ctx.cfg.Update(group)
    ctx.rpc = VerifyRunner(ctx.cfg)
    cbs = instancehelpers.Callbacks()
    ok = mcpu.Processor(ctx, ec_id=1).ExecOpCode(
        opcodes.OpClusterVerifyGroup(group_name="default", error_codes=True), cbs)
    assert ok is False
    assert ("  - ERROR:EINSTANCENETWORK:instance:inst1.example.com:NIC 0 is on network"
            " net1, which is not connected to node group default") in _Feedback(cbs)
    # connected again: nothing to say
    Connect(ctx.cfg, ctx.net1)
    cbs = instancehelpers.Callbacks()
    mcpu.Processor(ctx, ec_id=2).ExecOpCode(
        opcodes.OpClusterVerifyGroup(group_name="default"), cbs)
    assert not [line for line in _Feedback(cbs) if "network" in line]


def test_verify_helper():
    group = objects.NodeGroup(name="g1", networks={"n1": {}})
    inst = objects.Instance(name="i1", nics=[objects.NIC(network="n1"),
                                             objects.NIC(network="n2"),
                                             objects.NIC(network=None)])

    class _Cfg:
        @staticmethod
        def GetNetwork(uuid):
            return None

    assert instance_nics.VerifyInstanceNetworks(_Cfg(), group, [inst]) == [
        ("i1", "NIC 1 is on network n2, which is not connected to node group g1")]


# --- gnt-instance change-group -----------------------------------------------------------

@pytest.fixture
def two_groups(tmp_path):
    context = MirrorContext(tmp_path, groups=2)
    AddDrbdInstance(context)
    cfg = context.cfg
    context.net1 = AddNetwork(context, "net1", "10.0.0.0/29")
    Connect(cfg, context.net1, group=context.group1)
    inst = cfg.GetInstanceInfoByName(DRBD_NAME)
    inst.nics[0].network = context.net1
    inst.nics[0].ip = "10.0.0.2"
    cfg.ReserveIp(context.net1, "10.0.0.2", "test")
    cfg.Update(inst, None, "test")
    return context


def test_change_group_needs_the_network_in_the_target(two_groups):
    ctx = two_groups
    op = opcodes.OpInstanceChangeGroup(instance_name=DRBD_NAME, iallocator="hail")
    with pytest.raises(errors.OpPrereqError, match="group rack2 is not connected to"
                       " network\\(s\\) net1") as info:
        RelocRun(ctx, op)
    assert info.value.args[1] == errors.ECODE_STATE
    assert not getattr(ctx.rpc, "runs", [])  # the allocator was not even asked
    # connected there: the allocator is asked and its move accepted
    Connect(ctx.cfg, ctx.net1, group=ctx.group2)
    ctx.rpc.answer = Answer([[[DRBD_NAME, "rack2", [N4, N5]]], [],
                             [[_ReplaceOp(DRBD_NAME, N4)]]])
    result, _ = RelocRun(ctx, opcodes.OpInstanceChangeGroup(instance_name=DRBD_NAME,
                                                            iallocator="hail"))
    assert result == {"jobs": [(True, 100)]}


def test_change_group_narrows_targets_and_checks_the_answer(two_groups):
    ctx = two_groups
    from relochelpers import AddGroup
    rack3 = AddGroup(ctx, "rack3", (("node6.example.com", "192.0.2.6"),))
    Connect(ctx.cfg, ctx.net1, group=rack3)
    ctx.rpc.answer = Answer([[[DRBD_NAME, "rack3", ["node6.example.com"]]], [], []])
    RelocRun(ctx, opcodes.OpInstanceChangeGroup(instance_name=DRBD_NAME,
                                                iallocator="hail"))
    assert ctx.rpc.runs[-1][1]["request"]["target_groups"] == [rack3]
    # an allocator choosing a group without the network is not followed
    ctx.rpc.answer = Answer([[[DRBD_NAME, "rack2", [N4, N5]]], [], []])
    with pytest.raises(errors.OpPrereqError, match="moves instance .* to node group"
                       " rack2, which is not connected to network\\(s\\) net1"):
        RelocRun(ctx, opcodes.OpInstanceChangeGroup(instance_name=DRBD_NAME,
                                                    iallocator="hail"))


# --- locks ------------------------------------------------------------------------------

def _RecordAcquired(ctx, monkeypatch):
    """(level, names, shared) of every lock acquisition through ctx.glm."""
    calls = []
    real = ctx.glm.acquire

    def acquire(level, names, timeout=None, shared=0, priority=None):
        calls.append((level, names, shared))
        return real(level, names, timeout=timeout, shared=shared, priority=priority)

    monkeypatch.setattr(ctx.glm, "acquire", acquire)
    return calls


def test_instance_lus_lock_their_networks_shared(ctx, monkeypatch):
    group = ctx.cfg.LookupNodeGroup(None)
    net2 = AddNetwork(ctx, "net2", "10.1.0.0/29")
    Connect(ctx.cfg, net2, link="br-net2")
    calls = _RecordAcquired(ctx, monkeypatch)
    Create(ctx, nics=[{"network": "net1", "ip": "pool"}, {}])
    assert (locking.LEVEL_NETWORK, [ctx.net1], 1) in calls
    assert (locking.LEVEL_NODEGROUP, [group], 1) in calls
    # adding a NIC on net2: the NICs' networks and the one joined
    calls.clear()
    Modify(ctx, nics=[[constants.DDM_ADD, -1, {"network": "net2", "ip": "pool"}]])
    assert (locking.LEVEL_NETWORK, sorted([ctx.net1, net2]), 1) in calls
    assert (locking.LEVEL_NODEGROUP, [group], 1) in calls
    # no NIC change, or NICs on no network: no network nor group lock
    for kwargs, nics in (({"beparams": {"vcpus": 2}}, None),
                         ({"nics": [[constants.DDM_MODIFY, 0, {"name": "n0"}]]}, [{}])):
        calls.clear()
        if nics is not None:
            Create(ctx, "inst2.example.com", nics=nics)
            calls.clear()
            Modify(ctx, "inst2.example.com", **kwargs)
        else:
            Modify(ctx, **kwargs)
        assert {level for level, _, _ in calls}.isdisjoint(
            {locking.LEVEL_NETWORK, locking.LEVEL_NODEGROUP})
    # creation with no network takes neither either
    calls.clear()
    Create(ctx, "inst3.example.com", nics=[{}])
    assert {level for level, _, _ in calls}.isdisjoint(
        {locking.LEVEL_NETWORK, locking.LEVEL_NODEGROUP})


def test_create_refused_when_the_group_changed_before_the_locks(ctx, monkeypatch):
    from ganeti.cmdlib import instance_create
    real = instance_create.LUInstanceCreate.ExpandNames

    def expand(lu):
        real(lu)
        # as if the node had changed group between ExpandNames and the locks
        lu.needed_locks[locking.LEVEL_NODEGROUP] = ["another-group"]
        lu.glm.add(locking.LEVEL_NODEGROUP, ["another-group"])

    monkeypatch.setattr(instance_create.LUInstanceCreate, "ExpandNames", expand)
    Refused(ctx, instancehelpers.CreateOp(nics=[{"network": "net1", "ip": "pool"}]),
            errors.ECODE_STATE, "Changed since the locks were acquired: node group")
    assert not Pending(ctx.cfg, ctx.net1)


def test_verify_missing_bridges_of_nics_and_connections(ctx):
    """Ganeti's ENODENET "missing bridges" for the default NIC link, the
    NICs' bridges and (ours) the links of bridged network connections;
    routed connections need no bridge."""
    Create(ctx, nics=[{"link": "br-nic"}])
    routed = AddNetwork(ctx, "net2", "10.1.0.0/29")
    Connect(ctx.cfg, routed, mode=constants.NIC_MODE_ROUTED, link="table7")
    ctx.rpc = VerifyRunner(ctx.cfg)
    ctx.rpc.missing_bridges = {BRIDGE, "br-nic"}
    cbs = instancehelpers.Callbacks()
    ok = mcpu.Processor(ctx, ec_id=1).ExecOpCode(
        opcodes.OpClusterVerifyGroup(group_name="default", error_codes=True), cbs)
    assert ok is False
    assert ctx.rpc.checks[constants.NV_BRIDGES] == sorted(
        [BRIDGE, "br-nic", constants.DEFAULT_BRIDGE])
    assert (f"  - ERROR:ENODENET:node:{instancehelpers.MASTER}:missing bridges:"
            f" {BRIDGE}, br-nic") in _Feedback(cbs)
    # all there: nothing to say
    ctx.rpc.missing_bridges = set()
    cbs = instancehelpers.Callbacks()
    assert mcpu.Processor(ctx, ec_id=2).ExecOpCode(
        opcodes.OpClusterVerifyGroup(group_name="default"), cbs) is True
