"""Tests for disk template conversion (gnt-instance modify -t plain|drbd,
lib/cmdlib/instance_convert.py) and recreate-disks of drbd instances, run
through mcpu on a three-node configuration with a fake RPC runner that
keeps each node's logical volumes and configured DRBD minors."""

from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import instancehelpers  # noqa: E402

from ganeti import constants, errors, objects, opcodes  # noqa: E402

NAME = "inst1.example.com"
NODE2 = "node2.example.com"
NODE3 = "node3.example.com"
VG = "xenvg"


class StorageRpc(instancehelpers.FakeRpc):
    """Per-node volume groups (``lvs``: node -> {"vg/lv": MiB}, ``vg_size``)
    and DRBD minors (``drbd``: node -> {minor: (disk UUID, primary)}).

    ``fail_at`` makes a call fail: {call name: [n, ...]} fails the n-th
    (1-based) call of that name; ``fail_if(name, node, disk)`` returning a
    message fails any matching call.
    """

    def __init__(self):
        super().__init__()
        self.lvs: dict[str, dict[str, int]] = {}
        self.vg_size: dict[str, int] = {}
        self.drbd: dict[str, dict[int, tuple[str, bool]]] = {}
        self.counts: dict[str, int] = {}
        self.fail_at: dict[str, list[int]] = {}
        self.fail_if = None

    def _Check(self, name, node, disk=None):
        self.counts[name] = self.counts.get(name, 0) + 1
        if self.counts[name] in self.fail_at.get(name, []):
            return f"injected failure of {name} call {self.counts[name]}"
        if self.fail_if is not None:
            return self.fail_if(name, node, disk)
        return None

    # --- what a node has -----------------------------------------------------------------

    def Free(self, node):
        return self.vg_size.get(node, 102400) - sum(self.lvs.get(node, {}).values())

    def call_node_info(self, nodes, storage, hv_specs):
        self.calls.append(("node_info", storage))
        answer = {}
        for node in nodes:
            space = [{"type": s[0], "name": s[1], "storage_free": self.Free(node),
                      "storage_size": self.vg_size.get(node, 102400)} for s in storage]
            answer[node] = self._Answer("node_info", ["boot", space, [
                {"memory_free": self.memory_free, "memory_total": 8192, "cpu_total": 4}]])
        return answer

    @staticmethod
    def _Minor(node, disk):
        lid = disk["logical_id"]
        return lid[3] if node == lid[0] else lid[4]

    def _Find(self, node, disk):
        if disk["dev_type"] == constants.DT_DRBD8:
            return self._Minor(node, disk) in self.drbd.get(node, {})
        return "/".join(disk["logical_id"]) in self.lvs.get(node, {})

    # --- block device calls ------------------------------------------------------------------

    def call_blockdev_create(self, node, disk, size, owner, on_primary, info, excl):
        self.calls.append(("blockdev_create", node, disk["dev_type"],
                           "/".join(map(str, disk["logical_id"][:2])), on_primary))
        msg = self._Check("blockdev_create", node, disk)
        if msg:
            return instancehelpers._Fail(msg)
        if disk["dev_type"] == constants.DT_DRBD8:
            for child in disk["children"]:
                if not self._Find(node, child):
                    return instancehelpers._Fail(f"child {child['logical_id']} missing")
            minor = self._Minor(node, disk)
            if minor in self.drbd.get(node, {}):
                return instancehelpers._Fail(f"minor {minor} in use")
            self.drbd.setdefault(node, {})[minor] = (disk["uuid"], on_primary)
        else:
            name = "/".join(disk["logical_id"])
            if name in self.lvs.get(node, {}):
                return instancehelpers._Fail(f"{name} already exists")
            if size > self.Free(node):
                return instancehelpers._Fail("not enough space")
            self.lvs.setdefault(node, {})[name] = size
        return instancehelpers._Ok(disk["logical_id"])

    def _Remove(self, node, disk):
        if disk["dev_type"] == constants.DT_DRBD8:
            self.drbd.get(node, {}).pop(self._Minor(node, disk), None)
        else:
            self.lvs.get(node, {}).pop("/".join(disk["logical_id"]), None)
        for child in disk.get("children") or []:
            self._Remove(node, child)

    def call_blockdev_remove(self, node, disk):
        self.calls.append(("blockdev_remove", node, disk["dev_type"],
                           "/".join(map(str, disk["logical_id"][:2]))))
        msg = self._Check("blockdev_remove", node, disk)
        if msg:
            return instancehelpers._Fail(msg)
        self._Remove(node, disk)
        return instancehelpers._Ok()

    def call_blockdev_shutdown(self, node, disk):
        self.calls.append(("blockdev_shutdown", node, disk["dev_type"]))
        msg = self._Check("blockdev_shutdown", node, disk)
        if msg:
            return instancehelpers._Fail(msg)
        if disk["dev_type"] == constants.DT_DRBD8:
            self.drbd.get(node, {}).pop(self._Minor(node, disk), None)
        return instancehelpers._Ok()

    def call_blockdev_rename(self, node, devlist):
        self.calls.append(("blockdev_rename", node, len(devlist)))
        msg = self._Check("blockdev_rename", node)
        if msg:
            return instancehelpers._Fail(msg)
        for disk, new_id in devlist:
            old = "/".join(disk["logical_id"])
            lvs = self.lvs.get(node, {})
            if old not in lvs:
                return instancehelpers._Fail(f"{old} not found")
            lvs["/".join(new_id)] = lvs.pop(old)
        return instancehelpers._Ok()

    def call_blockdev_find(self, node, disk):
        if not self._Find(node, disk):
            return instancehelpers._Ok(None)
        return instancehelpers._Ok({"dev_path": "/dev/x", "major": 1, "minor": 0,
                                    "sync_percent": None, "estimated_time": None,
                                    "is_degraded": False, "ldisk_status": 0})

    def call_blockdev_getmirrorstatus(self, node, disks):
        self.calls.append(("blockdev_getmirrorstatus", node))
        return instancehelpers._Ok([
            {"dev_path": "/dev/drbd0", "major": 147, "minor": 0, "sync_percent": None,
             "estimated_time": None, "is_degraded": False, "ldisk_status": 0}
            for _ in disks])


def MakeStorageContext(tmp_path):
    """The three-node context of these tests (also used by test_instance_move)."""
    context = instancehelpers.MakeContext(tmp_path)
    cfg = context.cfg
    uuids = {}
    for idx, name in ((2, NODE2), (3, NODE3)):
        node = objects.Node(name=name, primary_ip=f"192.0.2.{idx}",
                            secondary_ip=f"198.51.100.{idx}", master_candidate=True,
                            group=cfg.LookupNodeGroup(None), uuid=objects.GenerateUUID())
        node.UpgradeConfig()
        cfg.AddNode(node, "test")
        uuids[name] = node.uuid
    cluster = cfg.GetClusterInfo()
    cluster.enabled_disk_templates = [constants.DT_PLAIN, constants.DT_DRBD8,
                                      constants.DT_FILE, constants.DT_DISKLESS]
    cluster.volume_group_name = VG
    cfg.Update(cluster)
    context.glm = instancehelpers.masterd.BuildLockManager(cfg)
    context.rpc = StorageRpc()
    context.node1 = cfg.GetMasterNode()
    context.node2 = uuids[NODE2]
    context.node3 = uuids[NODE3]
    return context


@pytest.fixture
def ctx(tmp_path):
    return MakeStorageContext(tmp_path)


_Run = instancehelpers.Run


def _Inst(ctx):
    return ctx.cfg.GetInstanceInfoByName(NAME)


def _Disks(ctx):
    return ctx.cfg.GetInstanceDisks(_Inst(ctx).uuid)


def _Create(ctx, template="plain", sizes=(1024, 2048), **kwargs):
    nodes = {"snode": NODE2} if template == constants.DT_DRBD8 else {}
    nodes.update(kwargs)
    _Run(ctx, instancehelpers.CreateOp(disk_template=template,
                                       disks=[{"size": s} for s in sizes], start=False,
                                       **nodes))
    ctx.rpc.calls.clear()
    return _Inst(ctx)


def _Modify(ctx, **kwargs):
    result, cbs = _Run(ctx, opcodes.OpInstanceSetParams(instance_name=NAME, **kwargs))
    return result, cbs


def _Lvs(ctx, node):
    return dict(ctx.rpc.lvs.get(node, {}))


def _LeakedPorts(cfg):
    """Ports handed out (up to the highest used one) that are neither in the
    free pool nor used by the configuration."""
    cluster = cfg.GetClusterInfo()
    used = set()
    for inst in cfg.GetAllInstancesInfo().values():
        if inst.network_port is not None:
            used.add(inst.network_port)
        for disk in cfg.GetInstanceDisks(inst.uuid):
            if disk.dev_type == constants.DT_DRBD8:
                used.add(disk.logical_id[2])
    if cluster.highest_used_port < constants.FIRST_DRBD_PORT:
        return set()
    handed = set(range(constants.FIRST_DRBD_PORT, cluster.highest_used_port + 1))
    return handed - set(cluster.tcpudp_port_pool) - used


def _PendingMinors(cfg):
    """DRBD minors allocated but not used by a disk of the configuration."""
    return {(node, minor) for node, minors in cfg.ComputeDRBDMap().items()
            for minor, disk in minors.items() if cfg.GetDiskInfo(disk) is None}


def _Snapshot(ctx):
    return ([d.ToDict() for d in _Disks(ctx)],
            {node: _Lvs(ctx, node) for node in (ctx.node1, ctx.node2, ctx.node3)},
            {node: dict(minors) for node, minors in ctx.rpc.drbd.items() if minors})


def _Unchanged(ctx, exc, match, code=None, **kwargs):
    """The modification fails with ``exc``; the configuration, the nodes'
    volumes and DRBD devices are as before; no port leaked, no minor left."""
    serial = ctx.cfg.GetConfigSerialNo()
    before = _Snapshot(ctx)
    with pytest.raises(exc, match=match) as info:
        _Modify(ctx, **kwargs)
    if code is not None:
        assert info.value.args[1] == code
    if exc is errors.OpPrereqError:
        assert ctx.cfg.GetConfigSerialNo() == serial
    assert _Snapshot(ctx) == before
    assert not _LeakedPorts(ctx.cfg)
    assert not _PendingMinors(ctx.cfg)
    return info.value


# --- plain -> drbd -> plain -----------------------------------------------------------------


def test_plain_to_drbd_and_back(ctx):
    inst = _Create(ctx)
    old = _Disks(ctx)
    old_lvs = ["/".join(d.logical_id) for d in old]
    assert set(_Lvs(ctx, ctx.node1)) == set(old_lvs)

    result, cbs = _Modify(ctx, disk_template="drbd", remote_node="node2")
    assert ("disk_template", "drbd") in result
    disks = _Disks(ctx)
    assert [d.dev_type for d in disks] == ["drbd", "drbd"]
    assert [d.size for d in disks] == [1024, 2048]
    assert [d.iv_name for d in disks] == ["disk/0", "disk/1"]
    assert ctx.cfg.GetInstanceNodes(inst.uuid) == (ctx.node1, ctx.node2)
    ports = {d.logical_id[2] for d in disks}
    assert len(ports) == 2
    lvs1, lvs2 = _Lvs(ctx, ctx.node1), _Lvs(ctx, ctx.node2)
    for idx, disk in enumerate(disks):
        pnode, snode, _, minor1, minor2, secret = disk.logical_id
        assert (pnode, snode) == (ctx.node1, ctx.node2) and secret
        data, meta = disk.children
        assert data.logical_id[1].endswith(f".disk{idx}_data")
        assert meta.logical_id[1].endswith(f".disk{idx}_meta")
        assert lvs1["/".join(data.logical_id)] == disk.size
        assert lvs1["/".join(meta.logical_id)] == 128
        assert lvs2["/".join(data.logical_id)] == disk.size
        assert lvs2["/".join(meta.logical_id)] == 128
        # the primary's end is the sync source
        assert ctx.rpc.drbd[ctx.node1][minor1] == (disk.uuid, True)
        assert ctx.rpc.drbd[ctx.node2][minor2] == (disk.uuid, False)
    # the old volumes are the data volumes now: renamed, not copied
    assert not set(old_lvs) & set(lvs1)
    assert len(lvs1) == 4 and len(lvs2) == 4
    assert "blockdev_getmirrorstatus" in ctx.rpc.names()
    assert not _PendingMinors(ctx.cfg) and not _LeakedPorts(ctx.cfg)
    assert not ctx.cfg.VerifyConfig()
    hooks = [c for c in ctx.rpc.calls if c[0] == "hooks_runner"]
    assert hooks and all(c[4]["GANETI_NEW_DISK_TEMPLATE"] == "drbd" for c in hooks)
    assert any("Renaming original volumes" in str(f) for f in cbs.feedback)

    ctx.rpc.calls.clear()
    result, _ = _Modify(ctx, disk_template="plain")
    assert ("disk_template", "plain") in result
    plain = _Disks(ctx)
    assert [d.dev_type for d in plain] == ["plain", "plain"]
    assert [d.logical_id for d in plain] == [d.children[0].logical_id for d in disks]
    assert [d.uuid for d in plain] == [d.children[0].uuid for d in disks]
    assert [d.size for d in plain] == [1024, 2048]
    assert [d.nodes for d in plain] == [[ctx.node1]] * 2
    assert ctx.cfg.GetInstanceNodes(inst.uuid) == (ctx.node1,)
    assert _Lvs(ctx, ctx.node2) == {}
    assert set(_Lvs(ctx, ctx.node1)) == {"/".join(d.logical_id) for d in plain}
    assert not ctx.rpc.drbd.get(ctx.node1) and not ctx.rpc.drbd.get(ctx.node2)
    assert ports <= set(ctx.cfg.GetClusterInfo().tcpudp_port_pool)
    assert ctx.cfg.ComputeDRBDMap() in ({}, {ctx.node1: {}, ctx.node2: {}},
                                        {n: {} for n in ctx.cfg.GetNodeList()})
    assert not ctx.cfg.VerifyConfig()

    # and to drbd again, the ports coming from the pool
    _Modify(ctx, disk_template="drbd", remote_node=NODE3, wait_for_sync=False)
    disks = _Disks(ctx)
    assert {d.logical_id[2] for d in disks} == ports
    assert ctx.cfg.GetInstanceNodes(inst.uuid) == (ctx.node1, ctx.node3)
    assert not _LeakedPorts(ctx.cfg)


def test_no_wait_for_sync_polls_once(ctx):
    _Create(ctx, sizes=(1024,))
    _Modify(ctx, disk_template="drbd", remote_node=NODE2, wait_for_sync=False)
    assert ctx.rpc.names().count("blockdev_getmirrorstatus") == 1


def test_drbd_to_plain_remove_failures_are_warnings(ctx):
    _Create(ctx, template="drbd", sizes=(1024,))
    drbd = _Disks(ctx)[0]
    ctx.rpc.fail_if = lambda name, node, disk: (
        "node2 broken" if name == "blockdev_remove" and node == ctx.node2 else None)
    _, cbs = _Modify(ctx, disk_template="plain")
    assert [d.dev_type for d in _Disks(ctx)] == ["plain"]
    assert any("Could not remove block device disk/0" in str(f) and "node2 broken"
               in str(f) for f in cbs.feedback)
    assert drbd.logical_id[2] in ctx.cfg.GetClusterInfo().tcpudp_port_pool
    # the secondary's volumes stay, the primary's metadata volume went
    assert len(_Lvs(ctx, ctx.node2)) == 2 and len(_Lvs(ctx, ctx.node1)) == 1


def test_drbd_to_plain_ignores_the_secondary_option(ctx):
    _Create(ctx, template="drbd", sizes=(1024,))
    _, cbs = _Modify(ctx, disk_template="plain", remote_node=NODE3)
    assert any("secondary node will be ignored" in str(f) for f in cbs.feedback)
    assert [d.dev_type for d in _Disks(ctx)] == ["plain"]


# --- refusals ---------------------------------------------------------------------------------


def test_refusals_change_nothing(ctx):
    inst = _Create(ctx)
    _Unchanged(ctx, errors.OpPrereqError, "requires specifying a secondary node",
               errors.ECODE_INVAL, disk_template="drbd")
    _Unchanged(ctx, errors.OpPrereqError, "same as the primary node", errors.ECODE_STATE,
               disk_template="drbd", remote_node=instancehelpers.MASTER)
    _Unchanged(ctx, errors.OpPrereqError, "Node 'nosuch' not known", errors.ECODE_NOENT,
               disk_template="drbd", remote_node="nosuch")
    _Unchanged(ctx, errors.OpPrereqError, "already has disk template plain",
               errors.ECODE_INVAL, disk_template="plain")
    _Unchanged(ctx, errors.OpPrereqError, "Conversion to the blockdev disk template is"
               " not supported", errors.ECODE_INVAL, disk_template="blockdev")
    _Unchanged(ctx, errors.OpPrereqError, "not supported at the same time",
               errors.ECODE_INVAL, disk_template="drbd", remote_node=NODE2,
               disks=[["add", -1, {"size": 1024}]])
    _Unchanged(ctx, errors.OpPrereqError, "only used when changing the disk template",
               errors.ECODE_INVAL, remote_node=NODE2, beparams={"vcpus": 2})
    _Unchanged(ctx, errors.OpPrereqError, "offline state together",
               errors.ECODE_INVAL, disk_template="drbd", remote_node=NODE2, offline=True)

    # running (marked up, then only running)
    _Run(ctx, opcodes.OpInstanceStartup(instance_name=NAME))
    _Unchanged(ctx, errors.OpPrereqError, "marked to be up, cannot change disk template",
               errors.ECODE_STATE, disk_template="drbd", remote_node=NODE2)
    ctx.cfg.MarkInstanceDown(inst.uuid)
    _Unchanged(ctx, errors.OpPrereqError, "is running, cannot change disk template",
               errors.ECODE_STATE, disk_template="drbd", remote_node=NODE2)
    ctx.rpc.running.clear()

    # the target template must be enabled
    cluster = ctx.cfg.GetClusterInfo()
    cluster.enabled_disk_templates = [constants.DT_PLAIN, constants.DT_FILE]
    ctx.cfg.Update(cluster)
    _Unchanged(ctx, errors.OpPrereqError, "Disk template 'drbd' is not enabled",
               errors.ECODE_STATE, disk_template="drbd", remote_node=NODE2)
    cluster = ctx.cfg.GetClusterInfo()
    cluster.enabled_disk_templates = [constants.DT_PLAIN, constants.DT_DRBD8]
    ctx.cfg.Update(cluster)

    # the secondary: offline, drained
    node3 = ctx.cfg.GetNodeInfo(ctx.node3)
    node3.offline = True
    ctx.cfg.Update(node3)
    _Unchanged(ctx, errors.OpPrereqError, "Cannot use offline node node3",
               errors.ECODE_STATE, disk_template="drbd", remote_node=NODE3)

    # free space: data and metadata on the secondary, metadata on the primary
    ctx.rpc.vg_size[ctx.node2] = 1024 + 2048 + 255
    err = _Unchanged(ctx, errors.OpPrereqError, "Not enough disk space on target node"
                     f" {NODE2} vg {VG}: required 3328 MiB, available 3327 MiB",
                     errors.ECODE_NORES, disk_template="drbd", remote_node=NODE2)
    assert "xenvg" in str(err)
    ctx.rpc.vg_size[ctx.node2] = 102400
    ctx.rpc.vg_size[ctx.node1] = 1024 + 2048 + 255
    _Unchanged(ctx, errors.OpPrereqError, f"Not enough disk space on target node"
               f" {instancehelpers.MASTER} vg {VG}: required 256 MiB",
               errors.ECODE_NORES, disk_template="drbd", remote_node=NODE2)
    ctx.rpc.vg_size[ctx.node1] = 102400

    # a volume of the instance is missing on the primary
    lv = "/".join(_Disks(ctx)[1].logical_id)
    size = ctx.rpc.lvs[ctx.node1].pop(lv)
    _Unchanged(ctx, errors.OpPrereqError, f"Disk 1 .*{lv}.* is missing on node",
               errors.ECODE_STATE, disk_template="drbd", remote_node=NODE2)
    ctx.rpc.lvs[ctx.node1][lv] = size

    # after all this, the conversion works
    _Modify(ctx, disk_template="drbd", remote_node=NODE2)
    assert [d.dev_type for d in _Disks(ctx)] == ["drbd", "drbd"]


# --- failures in the middle: rolled back --------------------------------------------------


def _Fail1(name, calls):
    return {name: calls}


@pytest.mark.parametrize("fail_at, what", [
    # 2 disks: creates are meta@1, data@2, meta@2 per disk, then drbd@2, drbd@1 per disk
    (_Fail1("blockdev_create", [1]), "meta volume on the primary"),
    (_Fail1("blockdev_create", [5]), "data volume of disk 1 on the secondary"),
    (_Fail1("blockdev_rename", [2]), "renaming the second volume"),
    (_Fail1("blockdev_create", [7]), "DRBD device of disk 0 on the secondary"),
    (_Fail1("blockdev_create", [10]), "DRBD device of disk 1 on the primary"),
])
def test_failure_in_the_middle_is_rolled_back(ctx, fail_at, what):
    _Create(ctx)
    before = _Snapshot(ctx)
    old = _Disks(ctx)
    ctx.rpc.fail_at = fail_at
    ctx.rpc.counts.clear()
    with pytest.raises(errors.OpExecError, match="injected failure"):
        _Modify(ctx, disk_template="drbd", remote_node=NODE2)
    assert _Snapshot(ctx) == before, what
    assert [d.uuid for d in _Disks(ctx)] == [d.uuid for d in old]
    assert not _LeakedPorts(ctx.cfg)
    assert not _PendingMinors(ctx.cfg)
    assert not ctx.cfg.VerifyConfig()
    # usable: the same conversion works once the nodes behave
    ctx.rpc.fail_at = {}
    _Modify(ctx, disk_template="drbd", remote_node=NODE2)
    assert [d.dev_type for d in _Disks(ctx)] == ["drbd", "drbd"]
    assert not _LeakedPorts(ctx.cfg)


def test_configuration_failure_is_rolled_back(ctx, monkeypatch):
    _Create(ctx)
    before = _Snapshot(ctx)
    real = ctx.cfg.AddInstanceDisk
    calls = []

    def _Add(inst_uuid, disk, idx=None):
        calls.append(disk.dev_type)
        if disk.dev_type == constants.DT_DRBD8 and idx == 1:
            raise errors.ConfigurationError("injected configuration failure")
        return real(inst_uuid, disk, idx=idx)

    monkeypatch.setattr(ctx.cfg, "AddInstanceDisk", _Add)
    with pytest.raises(errors.ConfigurationError, match="injected"):
        _Modify(ctx, disk_template="drbd", remote_node=NODE2)
    monkeypatch.undo()
    assert _Snapshot(ctx)[1:] == before[1:]
    disks = _Disks(ctx)
    assert [d.ToDict()["logical_id"] for d in disks] == [d["logical_id"] for d in before[0]]
    assert [d.dev_type for d in disks] == ["plain", "plain"]
    assert not _LeakedPorts(ctx.cfg) and not _PendingMinors(ctx.cfg)
    assert not ctx.cfg.VerifyConfig()


def test_failed_rollback_says_what_is_left(ctx):
    _Create(ctx, sizes=(1024,))
    old_lv = "/".join(_Disks(ctx)[0].logical_id)
    # the DRBD device on the primary fails, and so does renaming back
    ctx.rpc.fail_at = {"blockdev_create": [5], "blockdev_rename": [2]}
    ctx.rpc.counts.clear()
    with pytest.raises(errors.OpExecError) as info:
        _Modify(ctx, disk_template="drbd", remote_node=NODE2)
    text = str(info.value)
    assert "undoing the conversion failed too" in text
    assert f"volume {old_lv} of disk disk/0 is called" in text and "lvrename" in text
    # what could be undone was: the secondary is clean, ports and minors back
    assert _Lvs(ctx, ctx.node2) == {}
    assert not _LeakedPorts(ctx.cfg) and not _PendingMinors(ctx.cfg)
    assert [d.dev_type for d in _Disks(ctx)] == ["plain"]


# --- recreate-disks of drbd instances ----------------------------------------------------------


def _Recreate(ctx, **kwargs):
    return _Run(ctx, opcodes.OpInstanceRecreateDisks(instance_name=NAME, **kwargs))


def test_recreate_missing_volumes_on_the_current_nodes(ctx):
    _Create(ctx, template="drbd", sizes=(1024,))
    disk = _Disks(ctx)[0]
    lvs1 = _Lvs(ctx, ctx.node1)
    # everything there: refused
    with pytest.raises(errors.OpPrereqError, match="already exists on nodes"):
        _Recreate(ctx)
    # the secondary lost its volumes
    ctx.rpc.lvs[ctx.node2] = {}
    ctx.rpc.calls.clear()
    _Recreate(ctx)
    creates = [c for c in ctx.rpc.calls if c[0] == "blockdev_create"]
    assert [(c[1], c[2]) for c in creates] == [
        (ctx.node2, "plain"), (ctx.node2, "plain"), (ctx.node2, "drbd"),
        (ctx.node1, "drbd")]
    assert _Lvs(ctx, ctx.node1) == lvs1
    assert set(_Lvs(ctx, ctx.node2)) == set(lvs1)
    assert _Disks(ctx)[0].ToDict() == disk.ToDict()
    _, _, _, minor1, minor2, _ = disk.logical_id
    assert ctx.rpc.drbd[ctx.node1][minor1] == (disk.uuid, True)
    assert ctx.rpc.drbd[ctx.node2][minor2] == (disk.uuid, False)


def test_recreate_on_new_nodes(ctx):
    inst = _Create(ctx, template="drbd", sizes=(1024, 1024))
    old = _Disks(ctx)
    for node in (ctx.node1, ctx.node2):
        ctx.rpc.lvs[node] = {}
        ctx.rpc.drbd[node] = {}
    _, cbs = _Recreate(ctx, nodes=[NODE3, instancehelpers.MASTER],
                       disks=[[0, {"size": 2048}], [1, {}]])
    inst = ctx.cfg.GetInstanceInfo(inst.uuid)
    assert inst.primary_node == ctx.node3
    assert ctx.cfg.GetInstanceNodes(inst.uuid) == (ctx.node3, ctx.node1)
    disks = _Disks(ctx)
    for new, was in zip(disks, old):
        assert new.logical_id[:2] == (ctx.node3, ctx.node1)
        # the port and the secret stay
        assert new.logical_id[2] == was.logical_id[2]
        assert new.logical_id[5] == was.logical_id[5]
        assert new.nodes == [ctx.node3, ctx.node1]
        assert [c.logical_id for c in new.children] == [c.logical_id for c in was.children]
    assert disks[0].size == 2048 and disks[0].children[0].size == 2048
    assert len(_Lvs(ctx, ctx.node3)) == 4 and len(_Lvs(ctx, ctx.node1)) == 4
    assert _Lvs(ctx, ctx.node3)["/".join(disks[0].children[0].logical_id)] == 2048
    assert {m for m, _ in ctx.rpc.drbd[ctx.node3].items()} == \
        {d.logical_id[3] for d in disks}
    assert not _PendingMinors(ctx.cfg) and not _LeakedPorts(ctx.cfg)
    assert not ctx.cfg.VerifyConfig()
    assert any("remove any disks left on the older nodes" in str(f) for f in cbs.feedback)


def test_recreate_drbd_refusals(ctx):
    _Create(ctx, template="drbd", sizes=(1024,))
    ctx.rpc.lvs[ctx.node2] = {}
    serial = ctx.cfg.GetConfigSerialNo()
    with pytest.raises(errors.OpPrereqError, match="must differ"):
        _Recreate(ctx, nodes=[NODE3, NODE3])
    with pytest.raises(errors.OpPrereqError, match="currently has 2 nodes"):
        _Recreate(ctx, nodes=[NODE3])
    # the data volume is still on the primary: its size cannot change
    with pytest.raises(errors.OpPrereqError, match="Cannot change the size of disk 0"):
        _Recreate(ctx, disks=[[0, {"size": 2048}]])
    ctx.rpc.vg_size[ctx.node2] = 1000
    with pytest.raises(errors.OpPrereqError, match="Not enough disk space on target node"
                       f" {NODE2}"):
        _Recreate(ctx)
    assert ctx.cfg.GetConfigSerialNo() == serial
    assert _Lvs(ctx, ctx.node2) == {}


def test_recreate_failure_undoes_what_it_created(ctx):
    _Create(ctx, template="drbd", sizes=(1024,))
    ctx.rpc.lvs[ctx.node2] = {}
    lvs1 = _Lvs(ctx, ctx.node1)
    ctx.rpc.fail_if = lambda name, node, disk: (
        "no drbd on node1" if name == "blockdev_create" and node == ctx.node1 else None)
    with pytest.raises(errors.OpExecError, match="no drbd on node1"):
        _Recreate(ctx)
    assert _Lvs(ctx, ctx.node2) == {} and _Lvs(ctx, ctx.node1) == lvs1
    assert not ctx.rpc.drbd.get(ctx.node2)


# --- the command line ---------------------------------------------------------------------------


@pytest.fixture
def fake_client(monkeypatch):
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "cli"))
    from clihelpers import FakeClient

    from ganeti import cli
    from ganeti.cli import base
    client = FakeClient()
    monkeypatch.setattr(base, "GetClient", lambda address=None: client)
    monkeypatch.setattr(cli, "GetClient", lambda address=None: client)
    return client


def test_modify_and_recreate_options(fake_client):
    from ganeti.client import gnt_instance
    assert gnt_instance.Main(["gnt-instance", "modify", "-t", "drbd", "-n", NODE2,
                              "--no-wait-for-sync", "--submit", NAME]) == 0
    assert gnt_instance.Main(["gnt-instance", "modify", "-t", "plain", "--submit",
                              NAME]) == 0
    assert gnt_instance.Main(["gnt-instance", "recreate-disks", "-n", f"{NODE3}:{NODE2}",
                              "--submit", NAME]) == 0
    (to_drbd,), (to_plain,), (recreate,) = fake_client.submitted
    assert (to_drbd["disk_template"], to_drbd["remote_node"],
            to_drbd["wait_for_sync"]) == ("drbd", NODE2, False)
    assert (to_plain["disk_template"], to_plain["remote_node"],
            to_plain["wait_for_sync"]) == ("plain", None, True)
    assert recreate["OP_ID"] == "OP_INSTANCE_RECREATE_DISKS"
    assert recreate["nodes"] == [NODE3, NODE2]
