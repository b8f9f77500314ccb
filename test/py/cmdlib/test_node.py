"""Tests for the node LUs (add, remove, set params), run through mcpu."""

from __future__ import annotations

import os
import shutil
import sys
import time
from types import SimpleNamespace

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import nodedhelpers  # noqa: E402

# the real node daemon fixtures
cluster_crypto = nodedhelpers.cluster_crypto
start_noded = nodedhelpers.start_noded

from ganeti import config, constants, errors, mcpu, objects, opcodes, pathutils  # noqa: E402
from ganeti.cmdlib import node as node_lu  # noqa: E402
from ganeti.config import base as config_base  # noqa: E402
from ganeti.rpc.client import RpcResult, RpcSslConfig  # noqa: E402
from ganeti.rpc.node import RpcRunner  # noqa: E402
from ganeti.server import masterd  # noqa: E402

MASTER = "node1.example.com"


class Callbacks(mcpu.OpExecCbBase):
    def __init__(self):
        self.feedback = []

    def Feedback(self, *args):
        self.feedback.append(args)


def _Ok(payload):
    return RpcResult(data=[True, payload])


def _Fail(msg):
    return RpcResult(data=msg, failed=True)


class FakeNodeRunner:
    """Answers version and node_verify like a node named ``name``."""

    def __init__(self, name, version=constants.PROTOCOL_VERSION, down=False):
        self.name, self.version, self.down = name, version, down
        self.calls = []

    def call_version(self, keys):
        self.calls.append(("version", list(keys)))
        return {key: _Fail("Connection refused") if self.down else _Ok(self.version)
                for key in keys}

    def call_node_verify(self, keys, what, *args):
        self.calls.append(("node_verify", list(keys), what))
        return {key: _Ok({constants.NV_HOSTNAME: self.name}) for key in keys}

    def call_node_leave_cluster(self, key, modify_ssh):
        self.calls.append(("node_leave_cluster", key))
        return _Ok("Shutdown scheduled")


@pytest.fixture
def cfg(tmp_path):
    path = str(tmp_path / "config.data")
    cluster = objects.Cluster(
        cluster_name="cluster.example.com", master_ip="192.0.2.254",
        master_netdev="lo", enabled_hypervisors=[constants.HT_FAKE],
        mac_prefix="aa:00:00", rsahostkeypub="ssh-rsa AAAA", candidate_pool_size=3)
    master = objects.Node(name=MASTER, primary_ip="192.0.2.1")
    config_base.InitConfig(constants.CONFIG_VERSION, cluster, master, path)
    return config.ConfigWriter(path, accept_foreign=True)


@pytest.fixture
def new_nodes(monkeypatch):
    """Make every new node answer as a healthy node of the given name."""
    runners = {}

    def _Make(name, address, port):
        runner = runners.get(name) or FakeNodeRunner(name)
        runners[name] = runner
        runner.endpoint = (address, port)
        return runner

    monkeypatch.setattr(node_lu, "_NewNodeRunner", _Make)
    return runners


def _Context(cfg, rpc=None):
    return SimpleNamespace(cfg=cfg, glm=masterd.BuildLockManager(cfg), rpc=rpc)


def _Run(ctx, op):
    cbs = Callbacks()
    result = mcpu.Processor(ctx, ec_id=1).ExecOpCode(op, cbs)
    return result, cbs


def _Add(ctx, name, ip, **kwargs):
    return _Run(ctx, opcodes.OpNodeAdd(node_name=name, primary_ip=ip, **kwargs))


def _Node(cfg, name):
    return cfg.GetNodeInfoByName(name)


def _Raises(ctx, op, code, match):
    serial = ctx.cfg.GetConfigSerialNo()
    with pytest.raises(errors.OpPrereqError, match=match) as info:
        _Run(ctx, op)
    assert info.value.args[1] == code
    assert ctx.cfg.GetConfigSerialNo() == serial


# --- Add -------------------------------------------------------------------------------

def test_add_nodes_fills_the_candidate_pool(cfg, new_nodes):
    ctx = _Context(cfg)
    _, cbs = _Add(ctx, "node2.example.com", "127.0.1.2", noded_port=2811,
                  confd_port=2814)
    node2 = _Node(cfg, "node2.example.com")
    assert node2.master_candidate and not node2.offline
    assert node2.noded_port == 2811 and node2.confd_port == 2814
    assert node2.secondary_ip == "127.0.1.2"
    assert node2.group == cfg.LookupNodeGroup(None)
    assert node2.uuid in ctx.glm.names(node_lu.locking.LEVEL_NODE)
    assert new_nodes["node2.example.com"].endpoint == ("127.0.1.2", 2811)
    assert any("master candidate" in str(args) for args in cbs.feedback)
    _Add(ctx, "node3.example.com", "127.0.1.3")
    _Add(ctx, "node4.example.com", "127.0.1.4", master_capable=True, vm_capable=False)
    assert _Node(cfg, "node3.example.com").master_candidate
    node4 = _Node(cfg, "node4.example.com")
    assert not node4.master_candidate      # pool of 3 is full
    assert not node4.vm_capable
    assert new_nodes["node3.example.com"].endpoint == ("127.0.1.3", 1811)


def test_add_not_master_capable_is_no_candidate(cfg, new_nodes):
    ctx = _Context(cfg)
    _Add(ctx, "node2.example.com", "127.0.1.2", master_capable=False)
    node = _Node(cfg, "node2.example.com")
    assert not node.master_candidate and not node.master_capable


def test_add_bad_input_leaves_config_unchanged(cfg, new_nodes):
    ctx = _Context(cfg)
    _Add(ctx, "node2.example.com", "127.0.1.2")
    _Raises(ctx, opcodes.OpNodeAdd(node_name="node2.example.com",
                                   primary_ip="127.0.1.9"),
            errors.ECODE_EXISTS, "already in the configuration")
    _Raises(ctx, opcodes.OpNodeAdd(node_name=MASTER, primary_ip="127.0.1.9"),
            errors.ECODE_EXISTS, "already in the configuration")
    _Raises(ctx, opcodes.OpNodeAdd(node_name="node7.example.com",
                                   primary_ip="127.0.1.7", readd=True),
            errors.ECODE_NOENT, "not in the configuration")
    _Raises(ctx, opcodes.OpNodeAdd(node_name="node8.example.com",
                                   primary_ip="not-an-ip"),
            errors.ECODE_INVAL, "primary_ip.*IPv4 address.*'not-an-ip'")
    _Raises(ctx, opcodes.OpNodeAdd(node_name="node8.example.com",
                                   primary_ip="127.0.1.2"),
            errors.ECODE_NOTUNIQUE, "conflicts with existing node node2")
    _Raises(ctx, opcodes.OpNodeAdd(node_name="node8.example.com",
                                   primary_ip="127.0.1.8", group="nosuch"),
            errors.ECODE_NOENT, "Node group 'nosuch' not found")
    _Raises(ctx, opcodes.OpNodeAdd(node_name="node8.example.com",
                                   primary_ip="127.0.1.8",
                                   ndparams={"nosuch": 1}),
            errors.ECODE_INVAL, "Unknown node parameter")
    # same address, other port: allowed (several daemons on one address)
    _Add(ctx, "node9.example.com", "127.0.1.2", noded_port=3000)


def test_add_node_that_does_not_answer(cfg, new_nodes):
    ctx = _Context(cfg)
    new_nodes["node2.example.com"] = FakeNodeRunner("node2.example.com", down=True)
    _Raises(ctx, opcodes.OpNodeAdd(node_name="node2.example.com",
                                   primary_ip="127.0.1.2"),
            errors.ECODE_ENVIRON, "Can't get version information from node"
            " node2.example.com \\(127.0.1.2:1811\\): Connection refused")
    new_nodes["node3.example.com"] = FakeNodeRunner("node3.example.com", version=1)
    _Raises(ctx, opcodes.OpNodeAdd(node_name="node3.example.com",
                                   primary_ip="127.0.1.3"),
            errors.ECODE_ENVIRON, "version mismatch")
    new_nodes["node4.example.com"] = FakeNodeRunner("other.example.com")
    _Raises(ctx, opcodes.OpNodeAdd(node_name="node4.example.com",
                                   primary_ip="127.0.1.4"),
            errors.ECODE_ENVIRON, "reports the name 'other.example.com'")
    assert len(cfg.GetNodeList()) == 1


def test_readd_clears_offline_and_drained(cfg, new_nodes):
    ctx = _Context(cfg, rpc=FakeNodeRunner("x"))
    _Add(ctx, "node2.example.com", "127.0.1.2", noded_port=2811)
    node = _Node(cfg, "node2.example.com")
    node.offline = True
    node.master_candidate = False
    cfg.Update(node)
    _Add(ctx, "node2.example.com", "127.0.1.2", readd=True)
    again = _Node(cfg, "node2.example.com")
    assert again.uuid == node.uuid
    assert not again.offline and not again.drained and again.master_candidate
    assert again.noded_port == 2811        # kept from the configuration


# --- Remove ----------------------------------------------------------------------------

def test_remove(cfg, new_nodes):
    rpc = FakeNodeRunner("x")
    ctx = _Context(cfg, rpc=rpc)
    for idx in (2, 3, 4):
        _Add(ctx, f"node{idx}.example.com", f"127.0.1.{idx}")
    assert not _Node(cfg, "node4.example.com").master_candidate
    node2 = _Node(cfg, "node2.example.com")
    _Run(ctx, opcodes.OpNodeRemove(node_name="node2"))   # short names work
    assert _Node(cfg, "node2.example.com") is None
    assert ("node_leave_cluster", node2.uuid) in rpc.calls
    assert node2.uuid not in ctx.glm.names(node_lu.locking.LEVEL_NODE)
    # node4 replaces the removed candidate
    assert _Node(cfg, "node4.example.com").master_candidate


def test_remove_refusals(cfg, new_nodes):
    ctx = _Context(cfg, rpc=FakeNodeRunner("x"))
    _Raises(ctx, opcodes.OpNodeRemove(node_name=MASTER), errors.ECODE_INVAL,
            "is the master node, failover to another node is required")
    _Raises(ctx, opcodes.OpNodeRemove(node_name="nosuch"), errors.ECODE_NOENT,
            "Node 'nosuch' not known")
    _Add(ctx, "node2.example.com", "127.0.1.2")
    node2 = _Node(cfg, "node2.example.com")
    inst = objects.Instance(name="inst1.example.com", primary_node=node2.uuid,
                            os="debootstrap", hypervisor=constants.HT_FAKE,
                            admin_state=constants.ADMINST_DOWN, disks=[], nics=[],
                            beparams={}, hvparams={}, osparams={},
                            disk_template=constants.DT_DISKLESS)
    cfg.AddInstance(inst, "ec")
    _Raises(ctx, opcodes.OpNodeRemove(node_name="node2.example.com"),
            errors.ECODE_INVAL, "Instance inst1.example.com is still running")


# --- Set params ----------------------------------------------------------------------------

def _SetParams(ctx, name, **kwargs):
    result, _ = _Run(ctx, opcodes.OpNodeSetParams(node_name=name, **kwargs))
    return result


@pytest.fixture
def three(cfg, new_nodes):
    """Master + node2, node3 (candidates) + node4 (regular); pool size 3."""
    ctx = _Context(cfg, rpc=FakeNodeRunner("x"))
    for idx in (2, 3, 4):
        _Add(ctx, f"node{idx}.example.com", f"127.0.1.{idx}")
    return ctx


def _Roles(cfg):
    from ganeti.query.nodes import NodeRole
    master = cfg.GetMasterNode()
    return {node.name.split(".")[0]: NodeRole(node, master)
            for node in cfg.GetAllNodesInfo().values()}


def test_setparams_argument_errors(three):
    _Raises(three, opcodes.OpNodeSetParams(node_name="node2"), errors.ECODE_INVAL,
            "at least one modification")
    _Raises(three, opcodes.OpNodeSetParams(node_name="node2", offline=True,
                                           drained=True),
            errors.ECODE_INVAL, "more than one state")
    _Raises(three, opcodes.OpNodeSetParams(node_name="nosuch", offline=True),
            errors.ECODE_NOENT, "not known")
    _Raises(three, opcodes.OpNodeSetParams(node_name="node2", ndparams={"bad": 1}),
            errors.ECODE_INVAL, "Unknown node parameter")
    for change in ({"offline": True}, {"drained": True},
                   {"master_candidate": False}, {"master_capable": False}):
        _Raises(three, opcodes.OpNodeSetParams(node_name=MASTER, **change),
                errors.ECODE_INVAL, "only via master-failover")


def test_demotion_needs_auto_promote_or_force(three):
    cfg = three.cfg
    _Raises(three, opcodes.OpNodeSetParams(node_name="node2", master_candidate=False),
            errors.ECODE_STATE, "Not enough master candidates.*--auto-promote")
    _Raises(three, opcodes.OpNodeSetParams(node_name="node2", offline=True),
            errors.ECODE_STATE, "Not enough master candidates")
    result = _SetParams(three, "node2", master_candidate=False, auto_promote=True)
    assert ["master_candidate", "False"] in result
    assert _Roles(cfg) == {"node1": "M", "node2": "R", "node3": "C", "node4": "C"}
    # with --force: demoted, nobody promoted (the pool stays short)
    result = _SetParams(three, "node3", drained=True, force=True)
    assert ["master_candidate", "False (auto-demotion)"] in result
    assert _Roles(cfg) == {"node1": "M", "node2": "R", "node3": "D", "node4": "C"}


def test_offline_and_back(three):
    cfg = three.cfg
    _SetParams(three, "node2", offline=True, auto_promote=True)
    assert _Roles(cfg) == {"node1": "M", "node2": "O", "node3": "C", "node4": "C"}
    # node4 is demoted by hand (forced): node2 coming back promotes itself
    _SetParams(three, "node4", master_candidate=False, force=True)
    result = _SetParams(three, "node2", offline=False)
    assert ["offline", "False"] in result
    assert ["master_candidate", "True (auto-promotion)"] in result
    assert _Roles(cfg)["node2"] == "C"
    assert ("version", [_Node(cfg, "node2.example.com").uuid]) in three.rpc.calls


def test_unoffline_needs_an_answer(three):
    cfg = three.cfg
    _SetParams(three, "node4", offline=True)
    three.rpc.down = True
    _Raises(three, opcodes.OpNodeSetParams(node_name="node4", offline=False),
            errors.ECODE_ENVIRON, "fails to answer")
    assert _Node(cfg, "node4.example.com").offline


def test_candidate_rules(three):
    cfg = three.cfg
    _Raises(three, opcodes.OpNodeSetParams(node_name="node4", master_capable=False,
                                           master_candidate=True),
            errors.ECODE_STATE, "not master capable")
    _SetParams(three, "node4", master_capable=False)
    _Raises(three, opcodes.OpNodeSetParams(node_name="node4", master_candidate=True),
            errors.ECODE_STATE, "not master capable")
    _SetParams(three, "node4", master_capable=True, master_candidate=True)
    assert _Roles(cfg)["node4"] == "C"
    _SetParams(three, "node4", drained=True)   # the pool has 4: no force needed
    assert _Roles(cfg)["node4"] == "D"
    _Raises(three, opcodes.OpNodeSetParams(node_name="node4", master_candidate=True),
            errors.ECODE_STATE, "offline or drained")
    result = _SetParams(three, "node4", vm_capable=False, powered=False,
                        ndparams={"ssh_port": 2222})
    node4 = _Node(cfg, "node4.example.com")
    assert not node4.vm_capable and not node4.powered
    assert node4.ndparams == {"ssh_port": 2222}
    assert ["vm_capable", "False"] in result
    _SetParams(three, "node4", ndparams={"ssh_port": "default"})
    assert _Node(cfg, "node4.example.com").ndparams == {}


# --- Real node daemons ------------------------------------------------------------------------

@pytest.fixture
def master_root(tmp_path, cluster_crypto):
    """pathutils pointing at a master root holding the cluster's certificates,
    so that RPC finds them."""
    root = tmp_path / MASTER
    data = root / "var" / "lib" / "ganeti"
    data.mkdir(parents=True)
    shutil.copy(cluster_crypto.server_pem, data / "server.pem")
    shutil.copy(cluster_crypto.client_pem, data / "client.pem")
    pathutils._SetRoot(str(root), MASTER)
    yield str(root)
    pathutils.Reload()


@pytest.mark.timeout(120)
def test_add_and_remove_a_real_node(cfg, master_root, start_noded, cluster_crypto):
    (daemon,) = start_noded(1, subnet=81)
    runner = RpcRunner.FromConfig(cfg, ssl_config=RpcSslConfig(
        ca_file=cluster_crypto.server_pem, cert_file=cluster_crypto.client_pem))
    ctx = _Context(cfg, rpc=runner)
    _Add(ctx, daemon.name, daemon.address, noded_port=daemon.port)
    node = _Node(cfg, daemon.name)
    assert node.master_candidate and node.GetNodedEndpoint() == (daemon.address,
                                                                  daemon.port)
    # a wrong name for the daemon: refused
    _Raises(ctx, opcodes.OpNodeAdd(node_name="wrong.example.com",
                                   primary_ip=daemon.address, noded_port=daemon.port),
            errors.ECODE_NOTUNIQUE, "conflicts")
    # removal makes the daemon clean up and quit
    data_file = os.path.join(daemon.root, "var/lib/ganeti/server.pem")
    assert os.path.exists(data_file)
    _Run(ctx, opcodes.OpNodeRemove(node_name=daemon.name))
    assert _Node(cfg, daemon.name) is None
    deadline = time.monotonic() + 30
    while daemon.proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)  # bounded wait for the daemon to exit
    assert daemon.proc.poll() is not None
    assert not os.path.exists(data_file)


@pytest.mark.timeout(60)
def test_add_a_node_nobody_listens_on(cfg, master_root):
    ctx = _Context(cfg)
    _Raises(ctx, opcodes.OpNodeAdd(node_name="node9.example.com",
                                   primary_ip="127.81.9.9", noded_port=9),
            errors.ECODE_ENVIRON, "Can't get version information")
