"""Cluster verify's LVM and DRBD checks, verify-disks and repair-disk-sizes
(ganeti.cmdlib.cluster_disks) run through mcpu with a fake RPC runner,
and the gnt-cluster verify-disks and repair-disk-sizes commands.

The cluster: node1 (master), node2, node3 (offline); volume group xenvg,
DRBD helper /bin/true, reserved volumes "xenvg/swap.*"; inst1 has a plain
disk on node1, inst2 a DRBD disk on node1 (primary) and node2 (data and
metadata volumes on both), both with active disks.
"""

from __future__ import annotations

import threading
from types import SimpleNamespace

import pytest

from ganeti import cli, config, constants, errors, mcpu, objects, opcodes, pathutils
from ganeti.client import gnt_cluster
from ganeti.cmdlib import cluster_disks, cluster_verify
from ganeti.config import base as config_base
from ganeti.rpc.client import RpcResult
from ganeti.server import masterd
from ganeti.storage import base as storage_base

pytestmark = pytest.mark.timeout(60)

N1, N2, N3 = "node1.example.com", "node2.example.com", "node3.example.com"
PLAIN_LV = "xenvg/aaa.disk0"
DATA_LV, META_LV = "xenvg/bbb.disk0_data", "xenvg/bbb.disk0_meta"
GIB = 1024 * 1024 * 1024


def _Ok(payload=None):
    return RpcResult(data=[True, payload])


def _Fail(msg):
    return RpcResult(data=[False, msg])


class StorageRunner:
    """Answers like healthy nodes: each holds exactly its instances' volumes
    and the DRBD minors of the active instances; tweaks by node name."""

    def __init__(self, cfg):
        self.cfg = cfg
        self.checks = None
        self.calls = []
        #: node name -> NV_* key -> answer replacing the healthy one
        self.answer = {}
        #: node name -> volumes dropped from / added to its listing
        self.drop = {}
        self.extra = {}
        #: node name -> minors in use added
        self.extra_minors = {}
        #: (node name, disk uuid) -> status fields, or a failure message
        self.status = {}
        #: call name -> node name -> failure message
        self.fail = {}
        #: node name -> UUIDs drbd_needs_activation returns
        self.needs_activation = {}
        #: (node name, disk name in logical_id) -> (bytes, spindles) or None
        self.dims = {}
        #: run while the nodes answer node_verify
        self.during = None

    def _Name(self, uuid):
        return self.cfg.GetNodeName(uuid)

    def _Failed(self, call, uuid):
        return self.fail.get(call, {}).get(self._Name(uuid))

    def Volumes(self, uuid):
        name = self._Name(uuid)
        lvs = {lv: [1024.0, False, False] for lv in
               cluster_disks.DiskExpectations.FromConfig(self.cfg).lvs.get(uuid, {})}
        for lv in self.drop.get(name, ()):
            lvs.pop(lv, None)
        lvs.update(self.extra.get(name, {}))
        return lvs

    def Minors(self, uuid):
        minors = cluster_disks.DiskExpectations.FromConfig(self.cfg).minors.get(uuid, {})
        used = [minor for minor, (_, _, active) in minors.items() if active]
        return sorted(used + self.extra_minors.get(self._Name(uuid), []))

    def call_node_verify(self, uuids, checks, *args):
        self.checks = checks
        expected, mc_only, _ = cluster_verify.ExpectedFiles(self.cfg)
        if self.during is not None:
            self.during()
        result = {}
        for uuid in uuids:
            node = self.cfg.GetNodeInfo(uuid)
            sums = {pathutils.MakeVirtualPath(path): digest
                    for path, digest in expected.items()
                    if digest is not None and (path not in mc_only
                                               or node.master_candidate)}
            payload = {
                constants.NV_HOSTNAME: node.name,
                constants.NV_VERSION: [constants.PROTOCOL_VERSION,
                                       constants.RELEASE_VERSION],
                constants.NV_FILELIST: sums,
                constants.NV_NODENETTEST: {},
                constants.NV_TIME: [int(__import__("time").time()), 0],
                constants.NV_CLIENT_CERT: [None, None],
                constants.NV_FILEPERMS: [],
                constants.NV_BRIDGES: [],
                constants.NV_FILESTORAGELIST: {
                    d: [] for d in checks.get(constants.NV_FILESTORAGELIST, [])},
                constants.NV_VGLIST: {"xenvg": 1048572},
                constants.NV_LVLIST: self.Volumes(uuid),
                constants.NV_PVLIST: [{"name": "/dev/loop0", "vg_name": "xenvg",
                                       "size": 1048572.0, "missing": False}],
                constants.NV_DRBDLIST: self.Minors(uuid),
                constants.NV_DRBDHELPER: [True, "/bin/true"],
            }
            payload = {key: value for key, value in payload.items()
                       if key in checks or key == constants.NV_HOSTNAME}
            payload.update(self.answer.get(node.name, {}))
            result[uuid] = _Ok(payload)
        return result

    def call_node_info(self, uuids, storage_units, hv_specs):
        return {uuid: _Ok(["boot", [], [{"memory_free": 1, "memory_total": 2}]])
                for uuid in uuids}

    def Call(self, name, nodes, args, read_timeout=None):
        assert name == "blockdev_getmirrorstatus"
        (per_node,) = args
        self.calls.append((name, sorted((self._Name(n), len(per_node[n])) for n in nodes)))
        result = {}
        for uuid in nodes:
            statuses = []
            for disk in per_node[uuid]:
                status = self.status.get((self._Name(uuid), disk.uuid), {})
                if isinstance(status, str):
                    break
                statuses.append({"dev_path": "/dev/drbd0", "major": 147, "minor": 0,
                                 "sync_percent": None, "estimated_time": None,
                                 "is_degraded": False,
                                 "ldisk_status": storage_base.LDS_OKAY, **status})
            else:
                result[uuid] = _Ok(statuses)
                continue
            result[uuid] = _Fail(status)
        return result

    def call_lv_list(self, nodes, vg_names):
        self.calls.append(("lv_list", sorted(self._Name(n) for n in nodes), vg_names))
        return {n: _Fail(self._Failed("lv_list", n)) if self._Failed("lv_list", n)
                else _Ok(self.Volumes(n)) for n in nodes}

    def call_drbd_needs_activation(self, nodes, per_node):
        self.calls.append(("drbd_needs_activation",
                           sorted((self._Name(n), len(per_node[n])) for n in nodes)))
        return {n: _Ok(list(self.needs_activation.get(self._Name(n), [])))
                for n in nodes}

    def call_blockdev_getdimensions(self, nodes, per_node):
        self.calls.append(("blockdev_getdimensions",
                           sorted((self._Name(n), len(per_node[n])) for n in nodes)))
        result = {}
        for uuid in nodes:
            if self._Failed("blockdev_getdimensions", uuid):
                result[uuid] = _Fail(self._Failed("blockdev_getdimensions", uuid))
                continue
            result[uuid] = _Ok([self.dims.get((self._Name(uuid), disk.logical_id[1]),
                                              [disk.size * 1024 * 1024, 1])
                                for disk in per_node[uuid]])
        return result


class Callbacks(mcpu.OpExecCbBase):
    def __init__(self):
        self.feedback = []

    def Feedback(self, *args):
        self.feedback.append(str(args[-1]))


def _AddInstance(cfg, name, pnode, disks, active=True):
    cfg.AddInstance(objects.Instance(name=name, primary_node=pnode, os="debian",
                                     hypervisor=constants.HT_FAKE, nics=[],
                                     disks_active=active), "job")
    inst = cfg.GetInstanceInfoByName(name)
    for disk in disks:
        cfg.AddInstanceDisk(inst.uuid, disk)
    return cfg.GetInstanceInfoByName(name)


def _DrbdDisk(cfg, uuid, pnode, snode, size=512):
    minors = cfg.AllocateDRBDMinor([pnode, snode], uuid)
    children = [objects.Disk(dev_type=constants.DT_PLAIN, size=size,
                             logical_id=("xenvg", f"{uuid}.disk0_data")),
                objects.Disk(dev_type=constants.DT_PLAIN, size=128,
                             logical_id=("xenvg", f"{uuid}.disk0_meta"))]
    return objects.Disk(dev_type=constants.DT_DRBD8, uuid=uuid, size=size,
                        children=children, iv_name="disk/0",
                        logical_id=(pnode, snode, cfg.AllocatePort(), minors[0],
                                    minors[1], "secret"))


@pytest.fixture
def ctx(tmp_path):
    path = str(tmp_path / "config.data")
    cluster = objects.Cluster(
        cluster_name="cluster.example.com", master_ip="192.0.2.254",
        master_netdev="lo", enabled_hypervisors=[constants.HT_FAKE],
        enabled_disk_templates=[constants.DT_DRBD8, constants.DT_PLAIN,
                                constants.DT_FILE],
        volume_group_name="xenvg", drbd_usermode_helper="/bin/true",
        reserved_lvs=["xenvg/swap.*"],
        mac_prefix="aa:00:00", rsahostkeypub="ssh-rsa AAAA", candidate_pool_size=3)
    config_base.InitConfig(constants.CONFIG_VERSION, cluster,
                           objects.Node(name=N1, primary_ip="192.0.2.1"), path)
    cfg = config.ConfigWriter(path, accept_foreign=True)
    for name, ip, offline in ((N2, "192.0.2.2", False), (N3, "192.0.2.3", True)):
        cfg.AddNode(objects.Node(name=name, primary_ip=ip, offline=offline), "job")
    n1, n2 = cfg.GetNodeInfoByName(N1).uuid, cfg.GetNodeInfoByName(N2).uuid
    _AddInstance(cfg, "inst1.example.com", n1, [objects.Disk(
        dev_type=constants.DT_PLAIN, size=1024, iv_name="disk/0",
        logical_id=("xenvg", "aaa.disk0"))])
    _AddInstance(cfg, "inst2.example.com", n1, [_DrbdDisk(cfg, "bbb", n1, n2)])
    return SimpleNamespace(cfg=cfg, glm=masterd.BuildLockManager(cfg),
                           rpc=StorageRunner(cfg), n1=n1, n2=n2)


def _Run(ctx, op):
    cbs = Callbacks()
    return mcpu.Processor(ctx, ec_id=1).ExecOpCode(op, cbs), cbs


def _Verify(ctx, **kwargs):
    group = ctx.cfg.GetNodeGroup(ctx.cfg.LookupNodeGroup(None)).name
    kwargs.setdefault("error_codes", True)
    ok, cbs = _Run(ctx, opcodes.OpClusterVerifyGroup(group_name=group, **kwargs))
    return ok, [line for line in cbs.feedback if line.startswith("  - ")
                and not line.startswith("  - NOTICE:")]


# --- gnt-cluster verify ------------------------------------------------------------------

def test_clean_cluster(ctx):
    ok, lines = _Verify(ctx)
    assert ok is True and lines == []
    checks = ctx.rpc.checks
    assert checks[constants.NV_LVLIST] == ["xenvg"]
    assert checks[constants.NV_VGLIST] is None
    assert checks[constants.NV_PVLIST] == ["xenvg"]
    assert checks[constants.NV_DRBDLIST] is None
    assert checks[constants.NV_DRBDHELPER] == "/bin/true"
    # The volumes the configuration expects, where it expects them
    lvs = cluster_disks.DiskExpectations.FromConfig(ctx.cfg).lvs
    assert lvs[ctx.n1] == {PLAIN_LV: "inst1.example.com",
                           DATA_LV: "inst2.example.com", META_LV: "inst2.example.com"}
    assert lvs[ctx.n2] == {DATA_LV: "inst2.example.com", META_LV: "inst2.example.com"}
    # One status call, both nodes in parallel (node3 is offline)
    assert ctx.rpc.calls == [("blockdev_getmirrorstatus", [(N1, 2), (N2, 1)])]


def test_no_storage_checks_without_lvm_and_drbd(ctx):
    for inst in ctx.cfg.GetAllInstancesInfo().values():
        ctx.cfg.RemoveInstance(inst.uuid)
    cluster = ctx.cfg.GetClusterInfo()
    cluster.enabled_disk_templates = [constants.DT_FILE]
    ctx.cfg.Update(cluster, None)
    ok, lines = _Verify(ctx)
    assert ok is True and lines == []
    for key in (constants.NV_VGLIST, constants.NV_LVLIST, constants.NV_PVLIST,
                constants.NV_DRBDLIST, constants.NV_DRBDHELPER):
        assert key not in ctx.rpc.checks
    assert ctx.rpc.calls == []


def test_volume_group_problems(ctx):
    ctx.rpc.answer = {
        N1: {constants.NV_VGLIST: {"xenvg": 10240},
             constants.NV_PVLIST: [
                 {"name": "/dev/odd:name", "vg_name": "xenvg", "size": 10240.0},
                 {"name": "[unknown]", "vg_name": "xenvg", "size": 96.0, "missing": True}]},
        N2: {constants.NV_VGLIST: {"othervg": 40960},
             constants.NV_PVLIST: "pvs failed: boom"},
    }
    ok, lines = _Verify(ctx)
    assert ok is False
    prefix = "  - ERROR:ENODELVM:node:"
    assert lines == [
        f"{prefix}{N1}:volume group 'xenvg' too small ({constants.MIN_VG_SIZE} MiB"
        " required, 10240 MiB found)",
        f"{prefix}{N1}:Invalid character ':' in PV '/dev/odd:name' of VG 'xenvg'",
        f"{prefix}{N1}:PV '[unknown]' of VG 'xenvg' is missing",
        f"{prefix}{N2}:volume group 'xenvg' missing",
        f"{prefix}{N2}:Can't get PV list from node: pvs failed: boom",
    ]
    ctx.rpc.answer = {N2: {constants.NV_VGLIST: "vgs failed"}}
    ok, lines = _Verify(ctx, error_codes=False)
    assert lines == [f"  - ERROR: node {N2}: unable to check volume groups: vgs failed"]


def test_exclusive_storage_pv_sizes(ctx):
    node = ctx.cfg.GetNodeInfo(ctx.n2)
    node.ndparams = {constants.ND_EXCLUSIVE_STORAGE: True}
    ctx.cfg.Update(node, None)
    pvs = [{"name": f"/dev/sd{c}", "vg_name": "xenvg", "size": size}
           for c, size in (("b", 1024.0), ("c", 1000.0))]
    ctx.rpc.answer = {N1: {constants.NV_PVLIST: pvs}, N2: {constants.NV_PVLIST: pvs}}
    assert _Verify(ctx) == (True, [])   # within the tolerance
    pvs.append({"name": "/dev/sdd", "vg_name": "xenvg", "size": 512.0})
    ok, lines = _Verify(ctx)
    # Only node2 has exclusive storage
    assert lines == [f"  - ERROR:ENODELVM:node:{N2}:Sizes of PVs are too different for"
                     " exclusive storage: min=512M max=1.0G"]


def test_missing_volumes(ctx):
    ctx.rpc.drop = {N1: [PLAIN_LV], N2: [META_LV]}
    ok, lines = _Verify(ctx)
    assert ok is False
    assert lines == [
        f"  - ERROR:EINSTANCEMISSINGDISK:instance:inst1.example.com:volume {PLAIN_LV}"
        f" missing on node {N1}",
        f"  - ERROR:EINSTANCEMISSINGDISK:instance:inst2.example.com:volume {META_LV}"
        f" missing on node {N2}",
    ]
    ok, lines = _Verify(ctx, error_codes=False)
    assert lines[0] == (f"  - ERROR: instance inst1.example.com: volume {PLAIN_LV}"
                        f" missing on node {N1}")


def test_a_node_whose_lvm_fails_reports_no_missing_volumes(ctx):
    ctx.rpc.answer = {N2: {constants.NV_LVLIST: "lvs failed: locking"}}
    ok, lines = _Verify(ctx)
    assert lines == [f"  - ERROR:ENODELVM:node:{N2}:LVM problem on node: lvs failed:"
                     " locking"]


def test_orphan_volumes_are_warnings(ctx):
    ctx.rpc.extra = {N1: {"xenvg/orphan": [8.0, False, False],
                          "xenvg/swap0": [8.0, False, False],     # reserved
                          "othervg/elsewhere": [8.0, False, False]},
                     N2: {PLAIN_LV: [1024.0, False, False]}}      # on the wrong node
    ok, lines = _Verify(ctx)
    assert ok is True
    assert lines == [
        f"  - WARNING:ENODEORPHANLV:node:{N1}:volume xenvg/orphan is unknown",
        f"  - WARNING:ENODEORPHANLV:node:{N2}:volume {PLAIN_LV} is unknown",
    ]
    ok, lines = _Verify(ctx, ignore_errors=["ENODEORPHANLV"])
    assert len(lines) == 2


def test_instances_made_or_removed_while_the_nodes_answer(ctx):
    """Creations add the instance before its volumes, removals remove the
    volumes before the instance: neither is an orphan nor missing."""
    def _Meanwhile():
        # The nodes listed inst1 (removed right after) and inst3 (added then)
        ctx.rpc.extra = {N2: {"xenvg/ccc.disk0": [512.0, False, False]}}
        ctx.rpc.drop = {}
        inst1 = ctx.cfg.GetInstanceInfoByName("inst1.example.com")
        ctx.cfg.RemoveInstance(inst1.uuid)
        _AddInstance(ctx.cfg, "inst3.example.com", ctx.n2, [objects.Disk(
            dev_type=constants.DT_PLAIN, size=512, logical_id=("xenvg", "ccc.disk0"))])
        # What the node answers was read before: inst1's volume still there,
        # inst3's already
        ctx.rpc.extra[N1] = {PLAIN_LV: [1024.0, False, False]}
    ctx.rpc.drop = {N2: ["xenvg/ccc.disk0"]}
    ctx.rpc.during = _Meanwhile
    ok, lines = _Verify(ctx)
    assert ok is True and lines == []


def test_drbd_minors(ctx):
    minors = cluster_disks.DiskExpectations.FromConfig(ctx.cfg).minors
    (m1,), (m2,) = minors[ctx.n1], minors[ctx.n2]
    ctx.rpc.extra_minors = {N1: [42]}
    ctx.rpc.answer = {N2: {constants.NV_DRBDLIST: []}}
    ok, lines = _Verify(ctx)
    assert ok is False
    assert lines == [
        f"  - ERROR:ENODEDRBD:node:{N1}:unallocated drbd minor 42 is in use",
        f"  - ERROR:ENODEDRBD:node:{N2}:drbd minor {m2} of disk bbb (instance"
        " inst2.example.com) is not active",
    ]
    # Minors of instances whose disks are not active need not be in use
    ctx.cfg.MarkInstanceDisksInactive(ctx.cfg.GetInstanceInfoByName(
        "inst2.example.com").uuid)
    ctx.rpc.extra_minors = {}
    assert _Verify(ctx) == (True, [])
    assert m1 is not None
    ctx.rpc.answer = {N1: {constants.NV_DRBDLIST: "DRBD is not loaded on this node"}}
    ok, lines = _Verify(ctx)
    assert lines == [f"  - ERROR:ENODEDRBD:node:{N1}:cannot parse drbd status file:"
                     " DRBD is not loaded on this node"]


def test_drbd_helper(ctx):
    ctx.rpc.answer = {N1: {constants.NV_DRBDHELPER: [True, "/bin/false"]},
                      N2: {constants.NV_DRBDHELPER: [False, "Cannot read the helper"]}}
    ok, lines = _Verify(ctx)
    assert lines == [
        f"  - ERROR:ENODEDRBDHELPER:node:{N1}:wrong drbd usermode helper: /bin/false",
        f"  - ERROR:ENODEDRBDHELPER:node:{N2}:drbd usermode helper check unsuccessful:"
        " Cannot read the helper",
    ]
    ctx.rpc.answer = {N1: {constants.NV_DRBDHELPER: None}}
    ok, lines = _Verify(ctx)
    assert lines == [f"  - ERROR:ENODEDRBDHELPER:node:{N1}:no drbd usermode helper"
                     " returned"]


def test_degraded_and_faulty_disks(ctx):
    ctx.rpc.status = {
        # node2's copy failed: an error there, a warning on its peer
        (N2, "bbb"): {"is_degraded": True, "ldisk_status": storage_base.LDS_FAULTY},
        (N1, "bbb"): {"is_degraded": True},
    }
    ok, lines = _Verify(ctx)
    assert ok is False
    prefix = "EINSTANCEFAULTYDISK:instance:inst2.example.com"
    assert lines == [
        f"  - WARNING:{prefix}:disk/0 on {N1} is degraded; local disk state is 'ok'",
        f"  - ERROR:{prefix}:disk/0 on {N2} is degraded; local disk state is 'faulty'",
    ]
    # A resync is only a warning
    ctx.rpc.status = {(N2, "bbb"): {"is_degraded": True, "sync_percent": 42.5,
                                    "ldisk_status": storage_base.LDS_UNKNOWN}}
    ok, lines = _Verify(ctx)
    assert ok is True
    assert lines == [f"  - WARNING:{prefix}:disk/0 on {N2} is degraded; local disk state"
                     " is 'syncing, 42.5% done'"]


def test_disk_status_failures_name_the_disk(ctx):
    inst1 = ctx.cfg.GetInstanceInfoByName("inst1.example.com")
    plain = ctx.cfg.GetInstanceDisks(inst1.uuid)[0]
    ctx.rpc.status = {(N1, plain.uuid): "Block device plain disk disk/0 not found"}
    ok, lines = _Verify(ctx)
    assert ok is False
    assert lines == [
        "  - ERROR:EINSTANCEFAULTYDISK:instance:inst1.example.com:couldn't retrieve"
        f" status for disk/0 on {N1}: Block device plain disk disk/0 not found"]
    # node1's batch failed, then each of its disks was asked alone
    assert ctx.rpc.calls == [("blockdev_getmirrorstatus", [(N1, 2), (N2, 1)]),
                             ("blockdev_getmirrorstatus", [(N1, 1)]),
                             ("blockdev_getmirrorstatus", [(N1, 1)])]


def test_inactive_disks_are_not_asked(ctx):
    for inst in ctx.cfg.GetAllInstancesInfo().values():
        ctx.cfg.MarkInstanceDisksInactive(inst.uuid)
    ctx.rpc.status = {(N2, "bbb"): {"is_degraded": True}}
    assert _Verify(ctx) == (True, [])
    assert ctx.rpc.calls == []


def test_verify_group_runs_while_the_configuration_changes(ctx):
    """No locks: instance jobs run meanwhile and nothing breaks."""
    done = threading.Event()

    def _Meanwhile():
        inst = ctx.cfg.GetInstanceInfoByName("inst1.example.com")
        ctx.cfg.MarkInstanceDisksInactive(inst.uuid)
        done.set()
    ctx.rpc.during = _Meanwhile
    ctx.rpc.status = {(N1, ctx.cfg.GetInstanceDisks(ctx.cfg.GetInstanceInfoByName(
        "inst1.example.com").uuid)[0].uuid): "gone"}
    ok, lines = _Verify(ctx)
    assert done.is_set() and ok is True and lines == []


# --- verify-disks --------------------------------------------------------------------------

def _VerifyDisks(ctx):
    group = ctx.cfg.GetNodeGroup(ctx.cfg.LookupNodeGroup(None)).name
    result, _ = _Run(ctx, opcodes.OpGroupVerifyDisks(group_name=group))
    return result


def test_verify_disks_clean(ctx):
    assert _VerifyDisks(ctx) == ({}, [], {})
    assert ctx.rpc.calls == [
        ("lv_list", [N1, N2], None),
        ("drbd_needs_activation", [(N1, 1), (N2, 1)]),
    ]


def test_verify_disks_inactive_volumes_and_drbd(ctx):
    # Inactive LV of inst1; no device-mapper ("X": neither) counts as fine
    ctx.rpc.extra = {N1: {PLAIN_LV: [1024.0, True, False]}}
    ctx.rpc.needs_activation = {N2: ["bbb"]}
    assert _VerifyDisks(ctx) == ({}, ["inst1.example.com", "inst2.example.com"], {})


def test_verify_disks_missing_volumes_and_broken_nodes(ctx):
    ctx.rpc.drop = {N1: [PLAIN_LV]}
    ctx.rpc.fail = {"lv_list": {N2: "lvs timed out"}}
    node_errors, offline, missing = _VerifyDisks(ctx)
    assert node_errors == {N2: "lvs timed out"}
    assert offline == []
    # As Ganeti: the volumes of the broken node are listed too
    assert missing == {"inst1.example.com": [[N1, PLAIN_LV]],
                       "inst2.example.com": [[N2, DATA_LV], [N2, META_LV]]}
    assert opcodes.OpGroupVerifyDisks.OP_RESULT((node_errors, offline, missing))


def test_verify_disks_other_disk_types(ctx):
    disk = objects.Disk(dev_type=constants.DT_FILE, size=1024, iv_name="disk/0",
                        logical_id=("loop", "/srv/ganeti/file-storage/inst4/disk0"))
    _AddInstance(ctx.cfg, "inst4.example.com", ctx.n2, [disk])
    ctx.rpc.dims = {(N2, "/srv/ganeti/file-storage/inst4/disk0"): None}
    assert _VerifyDisks(ctx) == ({}, ["inst4.example.com"], {"inst4.example.com": [
        [N2, "/srv/ganeti/file-storage/inst4/disk0"]]})
    assert ("blockdev_getdimensions", [(N2, 1)]) in ctx.rpc.calls


def test_verify_disks_skips_inactive_instances_and_offline_nodes(ctx):
    for inst in ctx.cfg.GetAllInstancesInfo().values():
        ctx.cfg.MarkInstanceDisksInactive(inst.uuid)
    n3 = ctx.cfg.GetNodeInfoByName(N3).uuid
    _AddInstance(ctx.cfg, "inst5.example.com", n3, [objects.Disk(
        dev_type=constants.DT_PLAIN, size=512, logical_id=("xenvg", "eee.disk0"))])
    assert _VerifyDisks(ctx) == ({}, [], {})
    assert ctx.rpc.calls == []


# --- repair-disk-sizes -----------------------------------------------------------------------

def _Disk(ctx, name):
    inst = ctx.cfg.GetInstanceInfoByName(name)
    return ctx.cfg.GetInstanceDisks(inst.uuid)[0]


def test_repair_disk_sizes(ctx):
    ctx.rpc.dims = {(N1, "aaa.disk0"): [2 * GIB, 1],
                    (N1, "bbb.disk0_data"): [GIB, 1]}
    result, cbs = _Run(ctx, opcodes.OpClusterRepairDiskSizes())
    assert result == [["inst1.example.com", 0, "size", 2048],
                      ["inst2.example.com", 0, "size", 1024]]
    assert _Disk(ctx, "inst1.example.com").size == 2048
    drbd = _Disk(ctx, "inst2.example.com")
    # The DRBD disk's size is its data volume's; the data volume follows
    assert (drbd.size, drbd.children[0].size, drbd.children[1].size) == (1024, 1024, 128)
    assert any("Disk 0 of instance inst1.example.com has mismatched size, correcting:"
               " recorded 1024, actual 2048" in line for line in cbs.feedback)
    # Asked once per primary: the plain disk and the DRBD disk's data volume
    assert ctx.rpc.calls == [("blockdev_getdimensions", [(N1, 2)])]
    # Nothing left to do
    result, _ = _Run(ctx, opcodes.OpClusterRepairDiskSizes())
    assert result == []


def test_repair_named_instances_spindles_and_failures(ctx):
    node = ctx.cfg.GetNodeInfo(ctx.n1)
    node.ndparams = {constants.ND_EXCLUSIVE_STORAGE: True}
    ctx.cfg.Update(node, None)
    ctx.rpc.dims = {(N1, "aaa.disk0"): [GIB, 2], (N1, "bbb.disk0_data"): [2 * GIB, 1]}
    result, _ = _Run(ctx, opcodes.OpClusterRepairDiskSizes(
        instances=["inst1.example.com"]))
    assert result == [["inst1.example.com", 0, "spindles", 2]]
    assert _Disk(ctx, "inst1.example.com").spindles == 2
    assert _Disk(ctx, "inst2.example.com").size == 512
    # A disk the node does not find, a node that fails: warnings only
    ctx.rpc.dims = {(N1, "aaa.disk0"): None, (N1, "bbb.disk0_data"): [2 * GIB, 1]}
    result, cbs = _Run(ctx, opcodes.OpClusterRepairDiskSizes())
    assert result == [["inst2.example.com", 0, "size", 2048]]
    assert any("Disk 0 of instance inst1.example.com did not return size information"
               in line for line in cbs.feedback)
    ctx.rpc.fail = {"blockdev_getdimensions": {N1: "no route"}}
    result, cbs = _Run(ctx, opcodes.OpClusterRepairDiskSizes())
    assert result == []
    assert any(f"Failure in blockdev_getdimensions call to node {N1}" in line
               for line in cbs.feedback)
    with pytest.raises(errors.OpPrereqError, match="not known"):
        _Run(ctx, opcodes.OpClusterRepairDiskSizes(instances=["nosuch.example.com"]))


# --- gnt-cluster ---------------------------------------------------------------------------

@pytest.fixture
def fake_cli(monkeypatch):
    state = SimpleNamespace(submitted=[], results={}, activate_fail=set())

    def _Submit(op, cl=None, opts=None, **kwargs):
        state.submitted.append(op)
        if isinstance(op, opcodes.OpClusterVerifyDisks):
            return {"jobs": [[True, job_id] for job_id in sorted(state.results)]}
        if isinstance(op, opcodes.OpInstanceActivateDisks) and \
                op.instance_name in state.activate_fail:
            raise errors.OpExecError("disk activation failed")
        return []

    monkeypatch.setattr(cli, "GetClient", lambda *a, **k: object())
    monkeypatch.setattr(cli, "SubmitOpCode", _Submit)
    monkeypatch.setattr(cli, "PollJob", lambda job_id, cl=None, **k: state.results[job_id])
    return state


def test_cli_verify_disks_messages(fake_cli, capsys):
    fake_cli.results = {
        1: [({}, ["inst1", "inst2", "inst3"], {"inst2": [[N2, DATA_LV], [N1, DATA_LV]]})],
        2: [({N3: "x" * 500}, [], {"inst4": [[N3, "xenvg/ddd.disk0"]],
                                   "inst5": [[N3, META_LV], [N1, "/srv/f/disk0"]]})],
    }
    fake_cli.activate_fail = {"inst3"}
    assert gnt_cluster.Main(["gnt-cluster", "verify-disks"]) == constants.EXIT_FAILURE
    out, err = capsys.readouterr()
    assert out.splitlines() == [
        "Activating disks for instance 'inst1'",
        "Activating disks for instance 'inst3'",
        "Instance inst2 has missing logical volumes:",
        f"\t{N1} /dev/{DATA_LV}",
        f"\t{N2} /dev/{DATA_LV}",
        "You need to replace or recreate disks for all the above instances if this"
        " message persists after fixing broken nodes.",
        f"Error gathering data on node {N3}: {'x' * 400}",
        "You need to fix these nodes first before fixing instances",
        "Instance inst4 cannot be verified as it lives on broken nodes",
        "Instance inst5 has missing logical volumes:",
        f"\t{N1} /srv/f/disk0",
        f"\tbroken node {N3} /dev/{META_LV}",
        "You need to replace or recreate disks for all the above instances if this"
        " message persists after fixing broken nodes.",
    ]
    assert "Error activating disks for instance inst3: " in err
    assert "disk activation failed" in err
    ops = fake_cli.submitted
    assert ops[0].group_name is None and ops[0].is_strict is True
    # inst2 misses volumes: an activation would not help
    assert [op.instance_name for op in ops[1:]] == ["inst1", "inst3"]


def test_cli_verify_disks_nothing_to_do(fake_cli, capsys):
    fake_cli.results = {1: [({}, [], {})]}
    assert gnt_cluster.Main(["gnt-cluster", "verify-disks", "--node-group", "default",
                             "--no-strict"]) == constants.EXIT_SUCCESS
    assert capsys.readouterr().out == "No disks need to be activated.\n"
    op = fake_cli.submitted[0]
    assert (op.group_name, op.is_strict) == ("default", False)


def test_cli_repair_disk_sizes(fake_cli):
    assert gnt_cluster.Main(["gnt-cluster", "repair-disk-sizes", "inst1",
                             "inst2"]) == constants.EXIT_SUCCESS
    (op,) = fake_cli.submitted
    assert isinstance(op, opcodes.OpClusterRepairDiskSizes)
    assert op.instances == ["inst1", "inst2"]
    gnt_cluster.Main(["gnt-cluster", "repair-disk-sizes"])
    assert fake_cli.submitted[1].instances == []
