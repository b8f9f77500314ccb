"""The node storage LUs (ganeti.cmdlib.node_storage) run through mcpu with
a fake RPC runner, the gnt-node commands (volumes, list-storage,
modify-storage, repair-storage) against a fake luxi client, and the RAPI
resources /2/nodes/[node_name]/storage{,/modify,/repair}.

The cluster: node1 (master), node2, node3 (offline); inst1 has a plain disk
on node1, inst2 a DRBD disk on node1 and node2 (data and meta LVs on
both).
"""

from __future__ import annotations

import base64
import json
import os
import sys
from types import SimpleNamespace

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "cli"))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "rapi"))

from clihelpers import FakeClient, SuccessJob  # noqa: E402
from fakeluxi import FakePool  # noqa: E402

from ganeti import cli, config, constants, errors, mcpu, objects, opcodes  # noqa: E402
from ganeti.cli import base as cli_base  # noqa: E402
from ganeti.client import gnt_node  # noqa: E402
from ganeti.cmdlib import node_storage  # noqa: E402
from ganeti.config import base as config_base  # noqa: E402
from ganeti.rapi import auth, server  # noqa: E402
from ganeti.rpc.client import RpcResult  # noqa: E402
from ganeti.server import masterd  # noqa: E402
from ganeti.storage import base as storage_base  # noqa: E402

pytestmark = pytest.mark.timeout(60)

N1, N2, N3 = "node1.example.com", "node2.example.com", "node3.example.com"


def _Ok(payload=None):
    return RpcResult(data=[True, payload])


def _Fail(msg):
    return RpcResult(data=[False, msg])


class StorageRpc:
    """Answers the storage calls from per-node tables; records the calls."""

    def __init__(self, cfg):
        self.cfg = cfg
        self.calls = []
        #: node name -> node_volumes payload
        self.volumes = {}
        #: node name -> list of {field: value} units
        self.units = {}
        #: call name -> node name -> failure message
        self.fail = {}
        #: node name -> ldisk status of every disk (mirror status)
        self.ldisk = {}

    def _Name(self, uuid):
        return self.cfg.GetNodeName(uuid)

    def _Answer(self, call, uuid, payload):
        msg = self.fail.get(call, {}).get(self._Name(uuid))
        return _Fail(msg) if msg else _Ok(payload)

    def call_node_volumes(self, nodes):
        self.calls.append(("node_volumes", sorted(self._Name(n) for n in nodes)))
        return {n: self._Answer("node_volumes", n, self.volumes.get(self._Name(n), []))
                for n in nodes}

    def call_storage_list(self, nodes, su_name, su_args, name, fields):
        self.calls.append(("storage_list", su_name, su_args, name, list(fields)))
        result = {}
        for uuid in nodes:
            units = [unit for unit in self.units.get(self._Name(uuid), [])
                     if name is None or unit["name"] == name]
            result[uuid] = self._Answer("storage_list", uuid,
                                        [[unit[f] for f in fields] for unit in units])
        return result

    def call_storage_modify(self, nodes, su_name, su_args, name, changes):
        self.calls.append(("storage_modify", [self._Name(n) for n in nodes], su_name,
                           name, changes))
        return {n: self._Answer("storage_modify", n, None) for n in nodes}

    def call_storage_execute(self, nodes, su_name, su_args, name, op):
        self.calls.append(("storage_execute", [self._Name(n) for n in nodes], su_name,
                           name, op))
        return {n: self._Answer("storage_execute", n, ["Wrote out consistent volume"
                                                      f" group {name}."])
                for n in nodes}

    def call_blockdev_getmirrorstatus(self, node, disks):
        self.calls.append(("blockdev_getmirrorstatus", self._Name(node)))
        ldisk = self.ldisk.get(self._Name(node), storage_base.LDS_OKAY)
        return self._Answer("blockdev_getmirrorstatus", node, [
            {"dev_path": "/dev/drbd0", "major": 147, "minor": 0, "sync_percent": None,
             "estimated_time": None, "is_degraded": ldisk != storage_base.LDS_OKAY,
             "ldisk_status": ldisk} for _ in disks])


class Callbacks(mcpu.OpExecCbBase):
    def __init__(self):
        self.feedback = []

    def Feedback(self, *args):
        self.feedback.append(args[-1])


@pytest.fixture
def ctx(tmp_path):
    path = str(tmp_path / "config.data")
    cluster = objects.Cluster(
        cluster_name="cluster.example.com", master_ip="192.0.2.254",
        master_netdev="lo", enabled_hypervisors=[constants.HT_FAKE],
        enabled_disk_templates=[constants.DT_DRBD8, constants.DT_PLAIN,
                                constants.DT_FILE],
        mac_prefix="aa:00:00", rsahostkeypub="ssh-rsa AAAA", candidate_pool_size=3)
    config_base.InitConfig(constants.CONFIG_VERSION, cluster,
                           objects.Node(name=N1, primary_ip="192.0.2.1"), path)
    cfg = config.ConfigWriter(path, accept_foreign=True)
    for name, ip, offline in ((N2, "192.0.2.2", False), (N3, "192.0.2.3", True)):
        cfg.AddNode(objects.Node(name=name, primary_ip=ip, offline=offline), "job")
    n1, n2 = cfg.GetNodeInfoByName(N1).uuid, cfg.GetNodeInfoByName(N2).uuid
    for name in ("inst1.example.com", "inst2.example.com"):
        cfg.AddInstance(objects.Instance(name=name, primary_node=n1, os="debian",
                                         hypervisor=constants.HT_FAKE, nics=[],
                                         disks_active=True), "job")
    inst1 = cfg.GetInstanceInfoByName("inst1.example.com").uuid
    inst2 = cfg.GetInstanceInfoByName("inst2.example.com").uuid
    cfg.AddInstanceDisk(inst1, objects.Disk(dev_type=constants.DT_PLAIN, size=1024,
                                            logical_id=("xenvg", "aaa.disk0")))
    minors = cfg.AllocateDRBDMinor([n1, n2], "bbb")
    children = [objects.Disk(dev_type=constants.DT_PLAIN, size=512,
                             logical_id=("xenvg", "bbb.disk0_data")),
                objects.Disk(dev_type=constants.DT_PLAIN, size=128,
                             logical_id=("xenvg", "bbb.disk0_meta"))]
    cfg.AddInstanceDisk(inst2, objects.Disk(
        dev_type=constants.DT_DRBD8, uuid="bbb", size=512, children=children,
        logical_id=(n1, n2, cfg.AllocatePort(), minors[0], minors[1], "secret")))
    rpc = StorageRpc(cfg)
    return SimpleNamespace(cfg=cfg, glm=masterd.BuildLockManager(cfg), rpc=rpc)


def _Run(ctx, op):
    cbs = Callbacks()
    return mcpu.Processor(ctx, ec_id=1).ExecOpCode(op, cbs), cbs


def _Refused(ctx, op, code, match):
    with pytest.raises(errors.OpPrereqError, match=match) as info:
        _Run(ctx, op)
    assert info.value.args[1] == code
    assert not [call for call in ctx.rpc.calls if call[0].startswith("storage_")]


# --- volumes -------------------------------------------------------------------------------

def _Vol(name, dev="/dev/sda5", size=1024.0):
    return {"name": name, "vg": "xenvg", "size": size, "dev": dev}


def test_queryvols_maps_instances(ctx):
    ctx.rpc.volumes = {
        N1: [_Vol("bbb.disk0_meta", "/dev/sdb1", 128.0), _Vol("aaa.disk0"),
             _Vol("bbb.disk0_data", size=512.0), _Vol("orphan", "/dev/sda5", 4.5)],
        N2: [_Vol("bbb.disk0_data", size=512.0), _Vol("aaa.disk0")],
    }
    fields = ["node", "phys", "vg", "name", "size", "instance"]
    result, _ = _Run(ctx, opcodes.OpNodeQueryvols(output_fields=fields, nodes=[]))
    assert result == [
        [N1, "/dev/sda5", "xenvg", "aaa.disk0", "1024", "inst1.example.com"],
        [N1, "/dev/sda5", "xenvg", "bbb.disk0_data", "512", "inst2.example.com"],
        [N1, "/dev/sda5", "xenvg", "orphan", "4", "-"],
        [N1, "/dev/sdb1", "xenvg", "bbb.disk0_meta", "128", "inst2.example.com"],
        [N2, "/dev/sda5", "xenvg", "aaa.disk0", "1024", "-"],   # plain is on node1
        [N2, "/dev/sda5", "xenvg", "bbb.disk0_data", "512", "inst2.example.com"],
    ]
    # the offline node3 is not asked
    assert ctx.rpc.calls == [("node_volumes", [N1, N2])]


def test_queryvols_named_nodes_and_failures(ctx):
    ctx.rpc.volumes = {N2: [_Vol("x")]}
    ctx.rpc.fail = {"node_volumes": {N1: "lvs failed"}}
    result, cbs = _Run(ctx, opcodes.OpNodeQueryvols(output_fields=["name", "node"],
                                                    nodes=["node1", "node2", "node3"]))
    assert result == [["x", N2]]
    text = "\n".join(str(item) for item in cbs.feedback)
    assert f"Can't compute volume data on node {N1}: lvs failed" in text
    assert f"Node {N3} is offline, skipping it" in text
    _Refused(ctx, opcodes.OpNodeQueryvols(output_fields=["name", "bogus"], nodes=[]),
             errors.ECODE_INVAL, "Unknown output field\\(s\\) selected: bogus")
    _Refused(ctx, opcodes.OpNodeQueryvols(output_fields=["name"], nodes=["nosuch"]),
             errors.ECODE_NOENT, "Node 'nosuch' not known")


def test_lv_map():
    cfg = SimpleNamespace()
    disk = objects.Disk(dev_type=constants.DT_PLAIN, logical_id=("vg", "lv"),
                        nodes=["n7"])
    inst = SimpleNamespace(uuid="i", name="inst", primary_node="n1")
    cfg.GetAllInstancesInfo = lambda: {"i": inst}
    cfg.GetInstanceDisks = lambda uuid: [disk]
    assert node_storage.MapLvsToInstances(cfg) == {("n7", "vg/lv"): "inst"}


# --- list-storage --------------------------------------------------------------------------

def _Unit(name, size, free, allocatable=True):
    return {"name": name, "size": size, "used": size - free, "free": free,
            "allocatable": allocatable}


def test_query_storage(ctx):
    ctx.rpc.units = {N1: [_Unit("/dev/sdb1", 100, 40), _Unit("/dev/sda10", 50, 50)],
                     N2: [_Unit("/dev/sda1", 10, 0, False)]}
    fields = ["node", "type", "name", "size", "used", "free", "allocatable"]
    result, _ = _Run(ctx, opcodes.OpNodeQueryStorage(
        output_fields=fields, storage_type=constants.ST_LVM_PV, nodes=[]))
    assert result == [
        [N1, "lvm-pv", "/dev/sda10", 50, 0, 50, True],
        [N1, "lvm-pv", "/dev/sdb1", 100, 60, 40, True],
        [N2, "lvm-pv", "/dev/sda1", 10, 10, 0, False],
    ]
    # the nodes are asked for the name (to sort by) and their own fields only
    assert ctx.rpc.calls == [("storage_list", "lvm-pv", [], None,
                              ["name", "size", "used", "free", "allocatable"])]


def test_query_storage_default_type_and_name(ctx):
    ctx.rpc.units = {N1: [_Unit("xenvg", 100, 40), _Unit("othervg", 10, 10)]}
    result, _ = _Run(ctx, opcodes.OpNodeQueryStorage(
        output_fields=["free", "type"], nodes=["node1"], name="xenvg"))
    # the first enabled template (drbd) stores on volume groups
    assert result == [[40, "lvm-vg"]]
    assert ctx.rpc.calls == [("storage_list", "lvm-vg", [], "xenvg", ["name", "free"])]


def test_query_storage_refusals(ctx):
    _Refused(ctx, opcodes.OpNodeQueryStorage(output_fields=["name", "color"], nodes=[]),
             errors.ECODE_INVAL, "Unknown output field\\(s\\) selected: color")
    _Refused(ctx, opcodes.OpNodeQueryStorage(output_fields=["name"], nodes=[],
                                             storage_type=constants.ST_RADOS),
             errors.ECODE_INVAL, "Storage units of type 'rados' cannot be listed")
    _Refused(ctx, opcodes.OpNodeQueryStorage(output_fields=["name"], nodes=[],
                                             storage_type=constants.ST_SHARED_FILE),
             errors.ECODE_STATE, "Storage type 'sharedfile' is not enabled in this"
             " cluster: enable one of its disk templates \\(sharedfile\\)")
    _Refused(ctx, opcodes.OpNodeQueryStorage(output_fields=["name"], nodes=["nosuch"]),
             errors.ECODE_NOENT, "Node 'nosuch' not known")
    with pytest.raises(errors.OpPrereqError, match="storage_type"):
        opcodes.OpNodeQueryStorage(output_fields=["name"], storage_type="bogus").Validate(
            True)


def test_query_storage_failing_node_is_a_warning(ctx):
    ctx.rpc.units = {N2: [_Unit("xenvg", 100, 40)]}
    ctx.rpc.fail = {"storage_list": {N1: "Volume group 'xenvg' does not exist"}}
    result, cbs = _Run(ctx, opcodes.OpNodeQueryStorage(
        output_fields=["node", "name"], storage_type=constants.ST_LVM_VG, nodes=[]))
    assert result == [[N2, "xenvg"]]
    assert any(f"Can't get storage data from node {N1}: Volume group" in str(msg)
               for msg in cbs.feedback)


# --- modify-storage / repair-storage ---------------------------------------------------------

def test_modify_storage(ctx):
    _Run(ctx, opcodes.OpNodeModifyStorage(node_name="node2", storage_type="lvm-pv",
                                          name="/dev/sdb1",
                                          changes={"allocatable": False}))
    assert ctx.rpc.calls == [("storage_modify", [N2], "lvm-pv", "/dev/sdb1",
                              {"allocatable": False})]
    ctx.rpc.fail = {"storage_modify": {N2: "pvchange failed"}}
    with pytest.raises(errors.OpExecError, match="Failed to modify storage unit"
                       f" '/dev/sdb1' on {N2}.*pvchange failed"):
        _Run(ctx, opcodes.OpNodeModifyStorage(node_name=N2, storage_type="lvm-pv",
                                              name="/dev/sdb1",
                                              changes={"allocatable": True}))


@pytest.mark.parametrize("kwargs, code, match", [
    (dict(storage_type="lvm-vg", changes={"allocatable": False}), errors.ECODE_INVAL,
     "Storage units of type 'lvm-vg' can not be modified \\(only lvm-pv\\)"),
    (dict(changes={"size": 5}), errors.ECODE_INVAL,
     "fields can not be modified for storage units of type 'lvm-pv': size"),
    (dict(changes={}), errors.ECODE_INVAL, "No changes requested"),
    (dict(changes={"allocatable": "no"}), errors.ECODE_INVAL, "expected a boolean"),
    (dict(name=None), errors.ECODE_INVAL, "name of the lvm-pv storage unit is required"),
    (dict(node_name="nosuch"), errors.ECODE_NOENT, "Node 'nosuch' not known"),
    (dict(node_name=N3), errors.ECODE_STATE,
     f"Node {N3} is offline, cannot modify its storage"),
])
def test_modify_storage_refusals(ctx, kwargs, code, match):
    params = dict(node_name=N1, storage_type="lvm-pv", name="/dev/sdb1",
                  changes={"allocatable": True})
    params.update(kwargs)
    _Refused(ctx, opcodes.OpNodeModifyStorage(**params), code, match)


def test_repair_storage(ctx):
    result, cbs = _Run(ctx, opcodes.OpRepairNodeStorage(
        node_name="node1", storage_type="lvm-vg", name="xenvg"))
    assert result is None
    # inst2's disks are checked on its other node (node2) first
    assert ctx.rpc.calls == [("blockdev_getmirrorstatus", N2),
                             ("storage_execute", [N1], "lvm-vg", "xenvg",
                              "fix-consistency")]
    text = "\n".join(str(item) for item in cbs.feedback)
    assert f"Repairing storage unit 'xenvg' on {N1} ..." in text
    assert "Wrote out consistent volume group xenvg." in text


def test_repair_storage_with_faulty_disks_elsewhere(ctx):
    ctx.rpc.ldisk = {N2: storage_base.LDS_FAULTY}
    _Refused(ctx, opcodes.OpRepairNodeStorage(node_name=N1, storage_type="lvm-vg",
                                              name="xenvg"),
             errors.ECODE_STATE, f"Instance 'inst2.example.com' has faulty disks on"
             f" node '{N2}'")
    ctx.rpc.calls.clear()
    _, cbs = _Run(ctx, opcodes.OpRepairNodeStorage(
        node_name=N1, storage_type="lvm-vg", name="xenvg", ignore_consistency=True))
    assert ctx.rpc.calls[-1][0] == "storage_execute"
    assert any("has faulty disks" in str(msg) for msg in cbs.feedback)


@pytest.mark.parametrize("kwargs, code, match", [
    (dict(storage_type="lvm-pv"), errors.ECODE_INVAL,
     "Storage units of type 'lvm-pv' can not be repaired \\(only lvm-vg\\)"),
    (dict(storage_type="file", name="/srv"), errors.ECODE_INVAL, "can not be repaired"),
    (dict(node_name=N3), errors.ECODE_STATE, "is offline, cannot repair its storage"),
    (dict(name=None), errors.ECODE_INVAL, "is required"),
])
def test_repair_storage_refusals(ctx, kwargs, code, match):
    params = dict(node_name=N1, storage_type="lvm-vg", name="xenvg")
    params.update(kwargs)
    _Refused(ctx, opcodes.OpRepairNodeStorage(**params), code, match)


def test_storage_type_not_enabled(ctx):
    cluster = ctx.cfg.GetClusterInfo()
    cluster.enabled_disk_templates = [constants.DT_FILE]
    ctx.cfg.Update(cluster, None)
    _Refused(ctx, opcodes.OpRepairNodeStorage(node_name=N1, storage_type="lvm-vg",
                                              name="xenvg"),
             errors.ECODE_STATE, "Storage type 'lvm-vg' is not enabled in this cluster:"
             " enable one of its disk templates \\(drbd, plain\\)")
    _Refused(ctx, opcodes.OpNodeModifyStorage(node_name=N1, storage_type="lvm-pv",
                                              name="/dev/sda", changes={"allocatable": True}),
             errors.ECODE_STATE, "Storage type 'lvm-vg' is not enabled")


# --- gnt-node ----------------------------------------------------------------------------------

S = constants.JOB_STATUS_SUCCESS


@pytest.fixture
def client(monkeypatch):
    fake = FakeClient()
    monkeypatch.setattr(cli_base, "GetClient", lambda address=None: fake)
    monkeypatch.setattr(cli, "GetClient", lambda address=None: fake)
    return fake


def _Gnt(*argv):
    return gnt_node.Main(["gnt-node", *argv])


def _Answer(client, result):
    """Script the result of the next job."""
    job_id = len(client.submitted) + 1
    client.wfjc = [[[S], []]]
    client.jobs[job_id] = SuccessJob(job_id, [result])


def test_cli_volumes(client, capsys):
    _Answer(client, [[N1, "/dev/sda5", "xenvg", "aaa.disk0", "1024", "inst1"],
                     [N1, "/dev/sda5", "xenvg", "orphan", "4", "-"]])
    assert _Gnt("volumes") == 0
    (op,) = client.submitted[0]
    assert op["OP_ID"] == "OP_NODE_QUERYVOLS"
    assert (op["nodes"], op["output_fields"]) == \
        ([], ["node", "phys", "vg", "name", "size", "instance"])
    assert capsys.readouterr().out.splitlines() == [
        "Node              PhysDev   VG    Name      Size Instance",
        f"{N1} /dev/sda5 xenvg aaa.disk0 1.0G inst1",
        f"{N1} /dev/sda5 xenvg orphan      4M -",
    ]


def test_cli_volumes_options(client, capsys):
    _Answer(client, [["aaa.disk0", "1024"]])
    assert _Gnt("volumes", "--no-headers", "--separator=|", "-o", "name,size",
                "node1") == 0
    assert client.submitted[0][0]["nodes"] == ["node1"]
    assert capsys.readouterr().out == "aaa.disk0|1024\n"
    _Answer(client, [["aaa.disk0", "1024"]])
    assert _Gnt("volumes", "--separator=|", "--human-readable", "-o", "name,size") == 0
    assert capsys.readouterr().out.splitlines()[1] == "aaa.disk0|1.0G"


def test_cli_list_storage(client, capsys):
    _Answer(client, [[N2, "lvm-pv", "/dev/sda7", 689971, 1536, 688435, True],
                     [N2, "lvm-pv", "/dev/sdb1", 715366, 0, 715366, False]])
    assert _Gnt("list-storage", "--storage-type", "lvm-pv", "node2") == 0
    op = client.submitted[0][0]
    assert (op["OP_ID"], op["storage_type"], op["nodes"]) == \
        ("OP_NODE_QUERY_STORAGE", "lvm-pv", ["node2"])
    assert op["output_fields"] == ["node", "type", "name", "size", "used", "free",
                                   "allocatable"]
    assert capsys.readouterr().out.splitlines() == [
        "Node              Type   Name        Size Used   Free Allocatable",
        f"{N2} lvm-pv /dev/sda7 673.8G 1.5G 672.3G Y",
        f"{N2} lvm-pv /dev/sdb1 698.6G   0M 698.6G N",
    ]
    _Answer(client, [["xenvg", 100]])
    assert _Gnt("list-storage", "--no-headers", "--separator", ":", "-o",
                "name,free") == 0
    assert client.submitted[1][0]["storage_type"] is None
    assert capsys.readouterr().out == "xenvg:100\n"


def test_cli_list_storage_bad_type(client, capsys):
    assert _Gnt("list-storage", "--storage-type", "floppy") != 0
    assert "invalid choice: 'floppy'" in capsys.readouterr().err
    assert client.submitted == []


def test_cli_modify_storage(client, capsys):
    _Answer(client, None)
    assert _Gnt("modify-storage", "--allocatable=no", "node5", "lvm-pv",
                "/dev/sdb1") == 0
    op = client.submitted[0][0]
    assert (op["OP_ID"], op["node_name"], op["storage_type"], op["name"],
            op["changes"]) == ("OP_NODE_MODIFY_STORAGE", "node5", "lvm-pv", "/dev/sdb1",
                               {"allocatable": False})
    assert _Gnt("modify-storage", "node5", "lvm-pv", "/dev/sdb1") == 0
    assert "No changes to perform, exiting." in capsys.readouterr().err
    assert len(client.submitted) == 1
    assert _Gnt("modify-storage", "--allocatable=yes", "node5", "floppy", "x") != 0
    assert "Unknown storage type: floppy" in capsys.readouterr().err
    assert _Gnt("modify-storage", "--allocatable=maybe", "node5", "lvm-pv", "x") != 0
    assert "expected yes or no" in capsys.readouterr().err
    assert len(client.submitted) == 1


def test_cli_repair_storage(client, capsys):
    _Answer(client, None)
    assert _Gnt("repair-storage", "--ignore-consistency", "node5", "lvm-vg",
                "xenvg") == 0
    op = client.submitted[0][0]
    assert (op["OP_ID"], op["node_name"], op["storage_type"], op["name"],
            op["ignore_consistency"]) == ("OP_REPAIR_NODE_STORAGE", "node5", "lvm-vg",
                                          "xenvg", True)
    assert _Gnt("repair-storage", "--submit", "node5", "lvm-vg", "xenvg") == 0
    assert client.submitted[1][0]["ignore_consistency"] is False
    assert _Gnt("repair-storage", "node5", "lvm-vg") != 0
    assert "expects 3 argument(s)" in capsys.readouterr().err


# --- RAPI ---------------------------------------------------------------------------------------

@pytest.fixture
def rapi(tmp_path):
    users = tmp_path / "users"
    users.write_text("admin pw write\n")
    pool = FakePool()
    srv = server.RapiServer("127.0.0.1", 0, None, auth.UsersFile(str(users)),
                            pool=pool)  # type: ignore[arg-type]
    admin = "Basic " + base64.b64encode(b"admin:pw").decode()

    def _Call(method, target):
        code, _, payload, _ = srv.HandleRequest(method, target,
                                                {"authorization": admin}, b"")
        return code, json.loads(payload)

    _Call.luxi = pool.client
    return _Call


def test_rapi_storage_resources(rapi):
    assert rapi("GET", "/2/nodes/node1/storage?storage_type=lvm-pv"
                "&output_fields=name,free") == (200, 1)
    assert rapi("PUT", "/2/nodes/node1/storage/modify?storage_type=lvm-pv"
                "&name=/dev/sdb1&allocatable=0") == (200, 2)
    assert rapi("PUT", "/2/nodes/node1/storage/repair?storage_type=lvm-vg"
                "&name=xenvg") == (200, 3)
    (query,), (modify,), (repair,) = rapi.luxi.jobs
    assert (query["OP_ID"], query["nodes"], query["storage_type"],
            query["output_fields"]) == ("OP_NODE_QUERY_STORAGE", ["node1"], "lvm-pv",
                                        ["name", "free"])
    assert (modify["OP_ID"], modify["node_name"], modify["name"], modify["changes"]) == \
        ("OP_NODE_MODIFY_STORAGE", "node1", "/dev/sdb1", {"allocatable": False})
    assert (repair["OP_ID"], repair["storage_type"], repair["name"]) == \
        ("OP_REPAIR_NODE_STORAGE", "lvm-vg", "xenvg")


def test_rapi_storage_bad_input(rapi):
    code, err = rapi("GET", "/2/nodes/node1/storage?storage_type=lvm-pv")
    assert code == 400 and "output_fields" in err["explain"]
    code, err = rapi("PUT", "/2/nodes/node1/storage/modify?storage_type=lvm-pv")
    assert code == 400 and "'name'" in err["explain"]
    code, err = rapi("PUT", "/2/nodes/node1/storage/repair?storage_type=floppy"
                     "&name=x")
    assert code == 400 and "storage_type" in err["explain"]
    assert rapi.luxi.jobs == []
