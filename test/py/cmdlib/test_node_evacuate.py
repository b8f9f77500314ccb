"""gnt-node evacuate: LUNodeEvacuate (lib/cmdlib/node_evacuate.py) through
mcpu, recording the jobs it submits, and the gnt-node command against a
fake luxi client.

The configuration is the one of test_instance_replace.py: node1 (master),
node2, node3; drbd instances are put in with its AddDrbdInstance.
"""

from __future__ import annotations

import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "cli"))

import instancehelpers  # noqa: E402
from clihelpers import FakeClient, SuccessJob  # noqa: E402
from test_instance_replace import (  # noqa: E402
    N1, N2, N3, AddDrbdInstance, MirrorRpc,
)

from ganeti import cli, constants, errors, objects, opcodes  # noqa: E402
from ganeti.cli import base as cli_base  # noqa: E402
from ganeti.client import gnt_node  # noqa: E402

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def ctx(tmp_path):
    context = instancehelpers.MakeContext(tmp_path)
    cfg = context.cfg
    group = cfg.LookupNodeGroup(None)
    for name, ip in ((N2, "192.0.2.2"), (N3, "192.0.2.3")):
        node = objects.Node(name=name, primary_ip=ip, group=group,
                            uuid=objects.GenerateUUID())
        node.UpgradeConfig()
        cfg.AddNode(node, "test")
    cluster = cfg.GetClusterInfo()
    cluster.enabled_disk_templates = [constants.DT_DRBD8, constants.DT_PLAIN,
                                      constants.DT_SHARED_FILE, constants.DT_DISKLESS]
    cluster.volume_group_name = "xenvg"
    cfg.Update(cluster)
    context.rpc = MirrorRpc(cfg)
    context.n1, context.n2, context.n3 = (cfg.GetNodeInfoByName(n).uuid
                                          for n in (N1, N2, N3))
    context.glm = instancehelpers.masterd.BuildLockManager(cfg)
    return context


def _Add(ctx, name, template, pnode, up=True):
    """An instance without a mirror (its disk is not on any fake node)."""
    cfg = ctx.cfg
    cfg.AddInstance(objects.Instance(
        name=name, primary_node=pnode, os="noop+default", hypervisor=constants.HT_FAKE,
        nics=[], admin_state=constants.ADMINST_UP if up else constants.ADMINST_DOWN),
        "job")
    uuid = cfg.GetInstanceInfoByName(name).uuid
    if template == constants.DT_PLAIN:
        disk = objects.Disk(dev_type=template, size=1024, logical_id=("xenvg", name))
    else:
        disk = objects.Disk(dev_type=template, size=1024,
                            logical_id=("loop", f"/srv/ganeti/shared/{name}/disk0"))
    cfg.AddInstanceDisk(uuid, disk)
    ctx.glm = instancehelpers.masterd.BuildLockManager(cfg)


def _Run(ctx, **kwargs):
    kwargs.setdefault("node_name", "node2")
    return instancehelpers.Run(ctx, opcodes.OpNodeEvacuate(**kwargs),
                               instancehelpers.JobCallbacks)


def _Jobs(cbs):
    return [[(op.OP_ID, op.instance_name) for op in job] for job in cbs.jobs]


def _Refused(ctx, code, match, **kwargs):
    with pytest.raises(errors.OpPrereqError, match=match) as info:
        _Run(ctx, **kwargs)
    assert info.value.args[1] == code


def test_secondary_instances_get_the_new_secondary(ctx):
    AddDrbdInstance(ctx, "b.example.com")
    AddDrbdInstance(ctx, "a.example.com")
    AddDrbdInstance(ctx, "p.example.com", pnode=ctx.n2, snode=ctx.n3)
    result, cbs = _Run(ctx, mode=constants.NODE_EVAC_SEC, remote_node="node3",
                       early_release=True)
    assert result == {"jobs": [(True, 100), (True, 101)]}
    assert _Jobs(cbs) == [[("OP_INSTANCE_REPLACE_DISKS", "a.example.com")],
                          [("OP_INSTANCE_REPLACE_DISKS", "b.example.com")]]
    for (op,) in cbs.jobs:
        assert (op.mode, op.remote_node, op.early_release, op.disks) == \
            (constants.REPLACE_DISK_CHG, N3, True, [])
    # nothing was done by the LU itself
    assert not [c for c in ctx.rpc.calls if c[0].startswith(("blockdev", "drbd"))]


def test_primary_instances_move_to_their_secondary(ctx):
    AddDrbdInstance(ctx, "up.example.com", pnode=ctx.n2, snode=ctx.n1)
    AddDrbdInstance(ctx, "down.example.com", pnode=ctx.n2, snode=ctx.n3, active=False)
    AddDrbdInstance(ctx, "sec.example.com")
    result, cbs = _Run(ctx, mode=constants.NODE_EVAC_PRI)
    assert _Jobs(cbs) == [[("OP_INSTANCE_FAILOVER", "down.example.com")],
                          [("OP_INSTANCE_MIGRATE", "up.example.com")]]
    migrate = cbs.jobs[1][0]
    assert migrate.allow_failover and migrate.target_node is None
    assert cbs.jobs[0][0].target_node is None
    assert len(result["jobs"]) == 2


def test_shared_storage_primaries_need_the_target(ctx):
    _Add(ctx, "shared.example.com", constants.DT_SHARED_FILE, ctx.n2)
    _Refused(ctx, errors.ECODE_INVAL, "shared.example.com \\(sharedfile: the target node"
             " must be given with -n\\)", mode=constants.NODE_EVAC_PRI)
    _, cbs = _Run(ctx, mode=constants.NODE_EVAC_PRI, remote_node="node3")
    (op,) = cbs.jobs[0]
    assert (op.OP_ID, op.target_node, op.allow_failover) == \
        ("OP_INSTANCE_MIGRATE", N3, True)


def test_unmovable_primaries_are_named(ctx):
    _Add(ctx, "plain.example.com", constants.DT_PLAIN, ctx.n2)
    AddDrbdInstance(ctx, "ok.example.com", pnode=ctx.n2, snode=ctx.n1)
    with pytest.raises(errors.OpPrereqError, match="plain.example.com \\(disk template"
                       " plain cannot move without copying its disks: use gnt-instance"
                       " move\\)") as info:
        _Run(ctx, mode=constants.NODE_EVAC_PRI, remote_node="node3")
    assert "ok.example.com" not in str(info.value)


def test_all_moves_primaries_and_replaces_their_secondary(ctx):
    AddDrbdInstance(ctx, "pri.example.com", pnode=ctx.n2, snode=ctx.n1)
    AddDrbdInstance(ctx, "sec.example.com")
    _, cbs = _Run(ctx, mode=constants.NODE_EVAC_ALL, remote_node="node3")
    assert _Jobs(cbs) == [
        [("OP_INSTANCE_MIGRATE", "pri.example.com"),
         ("OP_INSTANCE_REPLACE_DISKS", "pri.example.com")],
        [("OP_INSTANCE_REPLACE_DISKS", "sec.example.com")]]
    _Refused(ctx, errors.ECODE_INVAL, "sec.example.com \\(its new secondary node must"
             " be given with -n\\)", mode=constants.NODE_EVAC_ALL)


def test_refusals(ctx):
    AddDrbdInstance(ctx, "sec.example.com")
    _Refused(ctx, errors.ECODE_INVAL, "evacuated node node2.example.com as the new node",
             mode=constants.NODE_EVAC_SEC, remote_node="node2")
    _Refused(ctx, errors.ECODE_INVAL, "no default iallocator",
             mode=constants.NODE_EVAC_SEC, iallocator=".")
    _Refused(ctx, errors.ECODE_INVAL, "either an iallocator or a new node",
             mode=constants.NODE_EVAC_SEC, iallocator="hail", remote_node="node3")
    _Refused(ctx, errors.ECODE_NOENT, "Node 'nosuch' not known",
             mode=constants.NODE_EVAC_SEC, remote_node="nosuch")
    _Refused(ctx, errors.ECODE_NOENT, "Node 'nosuch' not known",
             mode=constants.NODE_EVAC_SEC, node_name="nosuch", remote_node="node3")
    _Refused(ctx, errors.ECODE_INVAL, "node1.example.com is its primary node",
             mode=constants.NODE_EVAC_SEC, remote_node="node1")
    node3 = ctx.cfg.GetNodeInfo(ctx.n3)
    node3.offline = True
    ctx.cfg.Update(node3)
    _Refused(ctx, errors.ECODE_STATE, "Can't use offline node node3.example.com",
             mode=constants.NODE_EVAC_SEC, remote_node="node3")


def test_nothing_to_evacuate(ctx):
    AddDrbdInstance(ctx, "x.example.com", pnode=ctx.n1, snode=ctx.n3)
    result, cbs = _Run(ctx, mode=constants.NODE_EVAC_ALL)
    assert result == {"jobs": []} and cbs.jobs == []
    assert "No instances to evacuate on node node2.example.com" in cbs.feedback


# --- gnt-node evacuate ---------------------------------------------------------------------------

S = constants.JOB_STATUS_SUCCESS


@pytest.fixture
def client(monkeypatch):
    fake = FakeClient()
    monkeypatch.setattr(cli_base, "GetClient", lambda address=None: fake)
    monkeypatch.setattr(cli, "GetClient", lambda address=None: fake)
    return fake


def _Script(client, pinst, sinst, failing=()):
    """The node query, the evacuation job (its result: job ids 2, 3, ...)
    and the per-instance jobs (those in ``failing`` fail)."""
    client.query[constants.QR_NODE] = lambda fields, qfilter: {"data": [[
        [0, N2]] + [[0, {"pinst_list": pinst, "sinst_list": sinst}[f]]
                    for f in fields[1:]]]}
    count = len(set(pinst) | set(sinst))
    client.jobs[1] = SuccessJob(1, [{"jobs": [[True, 2 + i] for i in range(count)]}])
    for idx in range(count):
        job_id = 2 + idx
        if job_id in failing:
            client.jobs[job_id] = {"id": job_id, "status": constants.JOB_STATUS_ERROR,
                                   "opstatus": [constants.OP_STATUS_ERROR],
                                   "opresult": [["OpExecError", ["disk broken"]]]}
        else:
            client.jobs[job_id] = SuccessJob(job_id)
    client.wfjc = [[[S], []]] + [[[client.jobs[2 + i]["status"]], []]
                                 for i in range(count)]


def _Gnt(*argv):
    return gnt_node.Main(["gnt-node", *argv])


def test_cli_secondary_with_new_node(client, capsys):
    _Script(client, ["p1"], ["s1", "s2"])
    assert _Gnt("evacuate", "-f", "-s", "--new-secondary", "node3",
                "--early-release", "node2") == 0
    (op,) = client.submitted[0]
    assert (op["OP_ID"], op["node_name"], op["mode"], op["remote_node"],
            op["early_release"]) == ("OP_NODE_EVACUATE", N2, constants.NODE_EVAC_SEC,
                                     "node3", True)
    out = capsys.readouterr()
    assert "All instances evacuated successfully." in out.out
    assert "Waiting for job 2" in out.out and "Waiting for job 3" in out.out


def test_cli_new_node_means_secondaries(client, capsys):
    _Script(client, [], ["s1"])
    assert _Gnt("evacuate", "-f", "-n", "node3", "node2") == 0
    assert client.submitted[0][0]["mode"] == constants.NODE_EVAC_SEC
    assert "evacuating secondary instances only" in capsys.readouterr().err


def test_cli_primary_only_counts_failures(client, capsys):
    _Script(client, ["p1", "p2"], [], failing=(3,))
    assert _Gnt("evacuate", "-f", "-p", "node2") == constants.EXIT_FAILURE
    assert client.submitted[0][0]["mode"] == constants.NODE_EVAC_PRI
    out = capsys.readouterr()
    assert "There were 1 errors during the evacuation." in out.out
    assert "disk broken" in out.err


def test_cli_refusals(client, capsys):
    assert _Gnt("evacuate", "-f", "-p", "-s", "node2") != 0
    assert "Only one of the --primary-only and --secondary-only" in \
        capsys.readouterr().err
    _Script(client, [], [])
    assert _Gnt("evacuate", "-f", "-s", "-n", "node3", "node2") == 0
    assert "No instances to evacuate" in capsys.readouterr().err
    assert client.submitted == []
