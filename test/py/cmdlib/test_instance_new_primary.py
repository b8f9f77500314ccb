"""gnt-instance modify --new-primary (lib/cmdlib/instance_new_primary.py):
the primary node of a stopped instance whose disks were moved (or are on
shared storage) changes in the configuration only; the refusals. Run
through mcpu with the recording fake RPC runner of instancehelpers."""

from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import instancehelpers  # noqa: E402
from test_instance_nics_network import AddNetwork, Connect  # noqa: E402

from ganeti import constants, errors, objects, opcodes  # noqa: E402

NAME = "inst1.example.com"
N2, N3 = "node2.example.com", "node3.example.com"


@pytest.fixture
def ctx(tmp_path):
    context = instancehelpers.MakeContext(tmp_path)
    cfg = context.cfg
    for idx, name in ((2, N2), (3, N3)):
        node = objects.Node(name=name, primary_ip=f"192.0.2.{idx}",
                            group=cfg.LookupNodeGroup(None), uuid=objects.GenerateUUID())
        node.UpgradeConfig()
        cfg.AddNode(node, "test")
    cluster = cfg.GetClusterInfo()
    cluster.enabled_disk_templates = [constants.DT_SHARED_FILE, constants.DT_FILE,
                                      constants.DT_DRBD8, constants.DT_DISKLESS]
    cfg.Update(cluster)
    context.n1, context.n2, context.n3 = (cfg.GetNodeInfoByName(n).uuid
                                          for n in (instancehelpers.MASTER, N2, N3))
    return context


def _AddInstance(ctx, dev_type=constants.DT_SHARED_FILE, nics=()):
    cfg = ctx.cfg
    cfg.AddInstance(objects.Instance(
        name=NAME, primary_node=ctx.n1, os="noop+default", hypervisor=constants.HT_FAKE,
        nics=list(nics), beparams={}, hvparams={}, osparams={},
        admin_state=constants.ADMINST_DOWN), "job")
    uuid = cfg.GetInstanceInfoByName(NAME).uuid
    if dev_type == constants.DT_DRBD8:
        logical_id = (ctx.n1, ctx.n2, 11000, 0, 0, "secret")
    else:
        logical_id = ("loop", f"/srv/ganeti/shared-file-storage/{NAME}/disk0")
    cfg.AddInstanceDisk(uuid, objects.Disk(dev_type=dev_type, size=1024,
                                           logical_id=logical_id, children=[]))
    ctx.glm = instancehelpers.masterd.BuildLockManager(cfg)


def _Modify(ctx, node=N2, **kwargs):
    return instancehelpers.Run(ctx, opcodes.OpInstanceSetParams(
        instance_name=NAME, pnode=node, **kwargs))


def _Refused(ctx, code, match, node=N2, **kwargs):
    serial = ctx.cfg.GetConfigSerialNo()
    with pytest.raises(errors.OpPrereqError, match=match) as info:
        _Modify(ctx, node, **kwargs)
    assert info.value.args[1] == code
    assert ctx.cfg.GetConfigSerialNo() == serial
    assert ctx.cfg.GetInstanceInfoByName(NAME).primary_node == ctx.n1


@pytest.mark.parametrize("dev_type", [constants.DT_SHARED_FILE, constants.DT_FILE])
def test_new_primary_of_a_stopped_instance(ctx, dev_type):
    _AddInstance(ctx, dev_type)
    result, _ = _Modify(ctx)
    assert result == [("pnode", N2)]
    inst = ctx.cfg.GetInstanceInfoByName(NAME)
    assert inst.primary_node == ctx.n2
    assert ctx.cfg.GetInstanceNodes(inst.uuid) == (ctx.n2,)
    (disk,) = ctx.cfg.GetInstanceDisks(inst.uuid)
    assert disk.nodes == [ctx.n2]
    # only the configuration changed: nothing was made or moved on a node
    assert not {"blockdev_create", "blockdev_remove", "instance_start"} & \
        set(ctx.rpc.names())


def test_running_instance_needs_force(ctx):
    _AddInstance(ctx)
    ctx.rpc.running.add(NAME)
    _Refused(ctx, errors.ECODE_STATE, "still running on node node1")
    _Modify(ctx, force=True)
    assert ctx.cfg.GetInstanceInfoByName(NAME).primary_node == ctx.n2


def test_unreachable_primary_is_a_warning(ctx):
    _AddInstance(ctx)
    ctx.rpc.fail["instance_info"] = "node down"
    _, cbs = _Modify(ctx)
    assert any("node down" in str(entry) for entry in cbs.feedback)
    assert ctx.cfg.GetInstanceInfoByName(NAME).primary_node == ctx.n2


def test_refusals(ctx):
    _AddInstance(ctx)
    _Refused(ctx, errors.ECODE_INVAL, "already the primary node",
             node=instancehelpers.MASTER)
    with pytest.raises(errors.OpPrereqError, match="Node 'nosuch' not known|nosuch"):
        _Modify(ctx, node="nosuch")
    _Refused(ctx, errors.ECODE_INVAL, "cannot be combined with other changes .beparams",
             beparams={"vcpus": 2})
    node = ctx.cfg.GetNodeInfo(ctx.n3)
    node.offline = True
    ctx.cfg.Update(node)
    _Refused(ctx, errors.ECODE_STATE, "offline node node3", node=N3)


def test_drbd_is_refused(ctx):
    _AddInstance(ctx, constants.DT_DRBD8)
    _Refused(ctx, errors.ECODE_INVAL, "drbd disks.*failover or migrate", node=N3)


def test_network_must_reach_the_new_node(ctx):
    net = AddNetwork(ctx, "net1", "10.0.0.0/29")
    _AddInstance(ctx, nics=[objects.NIC(mac="aa:00:00:00:00:01", ip="10.0.0.2",
                                        network=net, nicparams={})])
    ctx.cfg.AddNodeGroup(objects.NodeGroup(name="g2", members=[]), "test")
    node = ctx.cfg.GetNodeInfo(ctx.n3)
    node.group = ctx.cfg.LookupNodeGroup("g2")
    ctx.cfg.Update(node)
    ctx.glm = instancehelpers.masterd.BuildLockManager(ctx.cfg)
    _Refused(ctx, errors.ECODE_STATE, "NIC 0 .* not connected to node group g2",
             node=N3)
    Connect(ctx.cfg, net, group=ctx.cfg.LookupNodeGroup("g2"))
    _Modify(ctx, node=N3)
    assert ctx.cfg.GetInstanceInfoByName(NAME).primary_node == ctx.n3
