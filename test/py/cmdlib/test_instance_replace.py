"""replace-disks (lib/cmdlib/instance_replace.py) through mcpu on a
three-node configuration with a fake RPC runner that keeps each node's
logical volumes and DRBD minors; the gnt-instance command against a fake
luxi client; and the node side of the two calls it adds
(``blockdev_removechildren``/``blockdev_addchildren``) on two virtual
nodes with the DRBD stand-in.

The instance inst1 has two drbd disks, primary node1, secondary node2.
"""

from __future__ import annotations

import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "cli"))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "backend"))

import instancehelpers  # noqa: E402
from clihelpers import FakeClient  # noqa: E402

from ganeti import cli, constants, errors, objects, opcodes  # noqa: E402
from ganeti.cli import base as cli_base  # noqa: E402
from ganeti.client import gnt_instance  # noqa: E402
from ganeti.cmdlib import disks as disks_mod  # noqa: E402
from ganeti.storage import base as storage_base  # noqa: E402

pytestmark = pytest.mark.timeout(60)

N1, N2, N3 = instancehelpers.MASTER, "node2.example.com", "node3.example.com"
NAME = "inst1.example.com"


def _Obj(value):
    return value if isinstance(value, objects.Disk) else objects.Disk.FromDict(value)


def _LvName(disk):
    return "/".join(disk.logical_id)


def _Minor(disk, node):
    node_a, node_b, _, minor_a, minor_b, _ = disk.logical_id
    return minor_a if node == node_a else minor_b


class MirrorRpc(instancehelpers.FakeRpc):
    """Per node: logical volumes ("vg/lv") and DRBD minors ({minor: {"local":
    (data, meta) or None, "net": bool, "faulty": bool}}); ``fail_on``
    maps (call, node) to a failure message."""

    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.lvs: dict[str, set[str]] = {}
        self.drbd: dict[str, dict[int, dict]] = {}
        self.fail_on: dict[tuple[str, str], str] = {}
        self.hook_envs: list[tuple[str, dict]] = []

    def _Res(self, name, node, payload=None):
        msg = self.fail_on.get((name, node)) or self.fail.get(name)
        return instancehelpers._Fail(msg) if msg else instancehelpers._Ok(payload)

    def Lvs(self, node):
        return self.lvs.setdefault(node, set())

    def Minors(self, node):
        return self.drbd.setdefault(node, {})

    def call_hooks_runner(self, nodes, hpath, phase, env):
        self.hook_envs.append((phase, dict(env)))
        return {node: instancehelpers._Ok([]) for node in nodes}

    def call_blockdev_create(self, node, disk, size, owner, on_primary, info, excl):
        disk = _Obj(disk)
        self.calls.append(("blockdev_create", node, _LvName(disk) if disk.dev_type ==
                           constants.DT_PLAIN else _Minor(disk, node)))
        result = self._Res("blockdev_create", node)
        if result.fail_msg:
            return result
        if disk.dev_type == constants.DT_PLAIN:
            self.Lvs(node).add(_LvName(disk))
        else:
            local = tuple(_LvName(c) for c in disk.children)
            assert set(local) <= self.Lvs(node), "children first"
            self.Minors(node)[_Minor(disk, node)] = {"local": local, "net": True,
                                                     "faulty": False}
        return result

    def call_blockdev_remove(self, node, disk):
        disk = _Obj(disk)
        self.calls.append(("blockdev_remove", node, _LvName(disk) if disk.dev_type ==
                           constants.DT_PLAIN else _Minor(disk, node)))
        result = self._Res("blockdev_remove", node)
        if not result.fail_msg:
            if disk.dev_type == constants.DT_PLAIN:
                self.Lvs(node).discard(_LvName(disk))
            else:
                self.Minors(node).pop(_Minor(disk, node), None)
                for child in disk.children:
                    self.Lvs(node).discard(_LvName(child))
        return result

    def call_blockdev_find(self, node, disk):
        disk = _Obj(disk)
        if disk.dev_type == constants.DT_PLAIN:
            found = _LvName(disk) in self.Lvs(node)
            payload = {"dev_path": "/dev/" + _LvName(disk), "major": 253, "minor": 0,
                       "sync_percent": None, "estimated_time": None,
                       "is_degraded": False, "ldisk_status": storage_base.LDS_OKAY}
            return self._Res("blockdev_find", node, payload if found else None)
        state = self.Minors(node).get(_Minor(disk, node))
        if state is None:
            return self._Res("blockdev_find", node, None)
        ok = state["local"] is not None and not state["faulty"]
        return self._Res("blockdev_find", node, {
            "dev_path": f"/dev/drbd{_Minor(disk, node)}", "major": 147,
            "minor": _Minor(disk, node), "sync_percent": None, "estimated_time": None,
            "is_degraded": not ok or not state["net"],
            "ldisk_status": storage_base.LDS_OKAY if ok else storage_base.LDS_FAULTY})

    def call_blockdev_getmirrorstatus(self, node, disks):
        self.calls.append(("blockdev_getmirrorstatus", node))
        return self._Res("blockdev_getmirrorstatus", node, [
            self.call_blockdev_find(node, disk).payload for disk in disks])

    def call_blockdev_rename(self, node, devlist):
        self.calls.append(("blockdev_rename", node,
                           [(_LvName(_Obj(d)), "/".join(new)) for d, new in devlist]))
        result = self._Res("blockdev_rename", node)
        if result.fail_msg:
            return result
        for disk, new in devlist:
            old = _LvName(_Obj(disk))
            assert old in self.Lvs(node), f"renaming missing {old}"
            self.Lvs(node).remove(old)
            self.Lvs(node).add("/".join(new))
        return result

    def call_blockdev_removechildren(self, node, disk, children):
        disk = _Obj(disk)
        self.calls.append(("blockdev_removechildren", node, _Minor(disk, node)))
        result = self._Res("blockdev_removechildren", node)
        if not result.fail_msg:
            self.Minors(node)[_Minor(disk, node)]["local"] = None
        return result

    def call_blockdev_addchildren(self, node, disk, children):
        disk = _Obj(disk)
        names = tuple(_LvName(_Obj(c)) for c in children)
        self.calls.append(("blockdev_addchildren", node, _Minor(disk, node), names))
        result = self._Res("blockdev_addchildren", node)
        if not result.fail_msg:
            assert set(names) <= self.Lvs(node)
            state = self.Minors(node)[_Minor(disk, node)]
            assert state["local"] is None
            state.update(local=names, faulty=False)
        return result

    def call_blockdev_assemble(self, node, disk, inst, on_primary, idx):
        disk = _Obj(disk)
        self.calls.append(("blockdev_assemble", node, _Minor(disk, node)))
        result = self._Res("blockdev_assemble", node, ("link", "uri"))
        if not result.fail_msg:
            state = self.Minors(node).setdefault(_Minor(disk, node),
                                                 {"local": None, "net": True,
                                                  "faulty": False})
            names = tuple(_LvName(c) for c in disk.children)
            if state["local"] is None and set(names) <= self.Lvs(node):
                state["local"] = names
            state["net"] = True
        return result

    def call_blockdev_shutdown(self, node, disk):
        disk = _Obj(disk)
        self.calls.append(("blockdev_shutdown", node, _Minor(disk, node)))
        result = self._Res("blockdev_shutdown", node)
        if not result.fail_msg:
            self.Minors(node).pop(_Minor(disk, node), None)
        return result

    def call_drbd_disconnect_net(self, nodes, disks):
        self.calls.append(("drbd_disconnect_net", tuple(nodes)))
        result = {}
        for node in nodes:
            result[node] = self._Res("drbd_disconnect_net", node)
            if not result[node].fail_msg:
                for disk in disks:
                    self.Minors(node)[_Minor(_Obj(disk), node)]["net"] = False
        return result

    def call_drbd_attach_net(self, nodes, disks, multimaster):
        self.calls.append(("drbd_attach_net", tuple(nodes)))
        result = {}
        for node in nodes:
            result[node] = self._Res("drbd_attach_net", node)
            if not result[node].fail_msg:
                for disk in disks:
                    self.Minors(node)[_Minor(_Obj(disk), node)]["net"] = True
        return result


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
                                      constants.DT_FILE, constants.DT_DISKLESS]
    cluster.volume_group_name = "xenvg"
    cfg.Update(cluster)
    context.glm = instancehelpers.masterd.BuildLockManager(cfg)
    context.rpc = MirrorRpc(cfg)
    context.n1, context.n2, context.n3 = (cfg.GetNodeInfoByName(n).uuid
                                          for n in (N1, N2, N3))
    return context


def AddDrbdInstance(ctx, name=NAME, pnode=None, snode=None, ndisks=2, active=True):
    """Put a drbd instance into the configuration and its devices on the
    fake nodes, as a creation leaves them."""
    cfg = ctx.cfg
    pnode, snode = pnode or ctx.n1, snode or ctx.n2
    cfg.AddInstance(objects.Instance(
        name=name, primary_node=pnode, os="noop+default", hypervisor=constants.HT_FAKE,
        nics=[objects.NIC(mac=f"aa:00:00:00:00:{len(cfg.GetInstanceList()):02x}",
                          nicparams={})], disks_active=active,
        admin_state=constants.ADMINST_UP if active else constants.ADMINST_DOWN,
        beparams={}, hvparams={}, osparams={}), "job")
    inst = cfg.GetInstanceInfoByName(name)
    disks = disks_mod.GenerateDisks(cfg, "job", constants.DT_DRBD8, name, pnode, snode,
                                    [{constants.IDISK_SIZE: 1024}] * ndisks, None, None)
    for disk in disks:
        cfg.AddInstanceDisk(inst.uuid, disk)
    cfg.DropECReservations("job")
    if active:
        for disk in cfg.GetInstanceDisks(inst.uuid):
            for node in (pnode, snode):
                ctx.rpc.Lvs(node).update(_LvName(c) for c in disk.children)
                ctx.rpc.Minors(node)[_Minor(disk, node)] = {
                    "local": tuple(_LvName(c) for c in disk.children), "net": True,
                    "faulty": False}
    else:
        for disk in cfg.GetInstanceDisks(inst.uuid):
            for node in (pnode, snode):
                ctx.rpc.Lvs(node).update(_LvName(c) for c in disk.children)
    ctx.glm = instancehelpers.masterd.BuildLockManager(cfg)
    return cfg.GetInstanceInfo(inst.uuid)


def _Run(ctx, op):
    return instancehelpers.Run(ctx, op)


def _Op(mode, **kwargs):
    kwargs.setdefault("instance_name", NAME)
    return opcodes.OpInstanceReplaceDisks(mode=mode, **kwargs)


def _Refused(ctx, op, code, match, exc=errors.OpPrereqError):
    serial = ctx.cfg.GetConfigSerialNo()
    lvs = {node: set(lvs) for node, lvs in ctx.rpc.lvs.items()}
    with pytest.raises(exc, match=match) as info:
        _Run(ctx, op)
    if code is not None:
        assert info.value.args[1] == code
    assert ctx.cfg.GetConfigSerialNo() == serial
    assert {node: set(lvs) for node, lvs in ctx.rpc.lvs.items() if lvs} == \
        {node: lvs for node, lvs in lvs.items() if lvs}
    return info.value


def _Names(ctx):
    return [call[0] for call in ctx.rpc.calls]


def _Text(cbs):
    return "\n".join(str(item[-1]) for item in cbs.feedback)


def _Pending(ctx):
    return dict(ctx.cfg._temporary_drbds)


# --- -s and -p -----------------------------------------------------------------------------

def test_replace_on_secondary(ctx):
    inst = AddDrbdInstance(ctx)
    disks = ctx.cfg.GetInstanceDisks(inst.uuid)
    before = {n: set(ctx.rpc.Lvs(n)) for n in (ctx.n1, ctx.n2)}
    serial = ctx.cfg.GetConfigSerialNo()
    ctx.rpc.calls.clear()
    _, cbs = _Run(ctx, _Op(constants.REPLACE_DISK_SEC))
    # the LVs keep their names (the new ones took them), nothing left aside
    assert {n: ctx.rpc.Lvs(n) for n in (ctx.n1, ctx.n2)} == before
    calls = ctx.rpc.calls
    assert {c[1] for c in calls if c[0] in ("blockdev_create", "blockdev_removechildren",
                                             "blockdev_addchildren")} == {ctx.n2}
    for disk in disks:
        minor = _Minor(disk, ctx.n2)
        order = [c[0] for c in calls if c[1:3] == (ctx.n2, minor)
                 and c[0].startswith("blockdev_") and "children" in c[0]]
        assert order == ["blockdev_removechildren", "blockdev_addchildren"]
    renames = [c[2] for c in calls if c[0] == "blockdev_rename"]
    assert len(renames) == 4
    aside = [new for old, new in renames[0]]
    assert all("_replaced-" in name for name in aside)
    # new volumes made with fresh names, then renamed to the old ones
    created = [c[2] for c in calls if c[0] == "blockdev_create"]
    assert len(created) == 4 and not set(created) & before[ctx.n2]
    assert [new for _, new in renames[1]] == [_LvName(c) for c in disks[0].children]
    # old volumes removed after the sync, under their aside names
    removed = [c[2] for c in calls if c[0] == "blockdev_remove"]
    assert sorted(removed) == sorted(a for r in renames[0::2] for _, a in r)
    assert _Names(ctx).index("blockdev_getmirrorstatus") < _Names(ctx).index(
        "blockdev_remove")
    # the configuration does not change
    assert ctx.cfg.GetConfigSerialNo() == serial
    text = _Text(cbs)
    assert "Replacing disk(s) 0, 1 for instance 'inst1.example.com'" in text
    assert "STEP 6/6 Removing old storage" in text


def test_replace_on_primary_some_disks(ctx):
    inst = AddDrbdInstance(ctx)
    disk1 = ctx.cfg.GetInstanceDisks(inst.uuid)[1]
    ctx.rpc.calls.clear()
    _Run(ctx, _Op(constants.REPLACE_DISK_PRI, disks=[1]))
    touched = {(c[1], c[2]) for c in ctx.rpc.calls
               if c[0] in ("blockdev_removechildren", "blockdev_addchildren")}
    assert touched == {(ctx.n1, _Minor(disk1, ctx.n1))}
    assert all(c[1] == ctx.n1 for c in ctx.rpc.calls if c[0] == "blockdev_create")


def test_early_release_removes_before_the_sync(ctx):
    AddDrbdInstance(ctx)
    ctx.rpc.calls.clear()
    _, cbs = _Run(ctx, _Op(constants.REPLACE_DISK_SEC, early_release=True))
    names = _Names(ctx)
    assert names.index("blockdev_remove") < names.index("blockdev_getmirrorstatus")
    assert "STEP 5/6 Removing old storage" in _Text(cbs)


def test_stopped_instance_disks_activated_for_the_time(ctx):
    inst = AddDrbdInstance(ctx, active=False)
    _Run(ctx, _Op(constants.REPLACE_DISK_SEC))
    assert "blockdev_assemble" in _Names(ctx)
    assert not ctx.cfg.GetInstanceInfo(inst.uuid).disks_active
    assert ctx.rpc.Minors(ctx.n1) == {} and ctx.rpc.Minors(ctx.n2) == {}


def test_failed_attach_restores_the_old_volumes(ctx):
    inst = AddDrbdInstance(ctx)
    disks = ctx.cfg.GetInstanceDisks(inst.uuid)
    before = set(ctx.rpc.Lvs(ctx.n2))
    ctx.rpc.fail_on[("blockdev_addchildren", ctx.n2)] = "attach failed"
    serial = ctx.cfg.GetConfigSerialNo()
    with pytest.raises(errors.OpExecError, match="attach failed"):
        _Run(ctx, _Op(constants.REPLACE_DISK_SEC))
    # the old volumes have their names back and are attached again; the
    # new ones (and those of disk 1, never reached) are gone
    assert ctx.rpc.Lvs(ctx.n2) == before
    state = ctx.rpc.Minors(ctx.n2)[_Minor(disks[0], ctx.n2)]
    assert state["local"] == tuple(_LvName(c) for c in disks[0].children)
    assert ("blockdev_assemble", ctx.n2, _Minor(disks[0], ctx.n2)) in ctx.rpc.calls
    assert ctx.cfg.GetConfigSerialNo() == serial


def test_failure_on_second_disk_keeps_the_first(ctx):
    inst = AddDrbdInstance(ctx)
    disks = ctx.cfg.GetInstanceDisks(inst.uuid)
    original = ctx.rpc.call_blockdev_addchildren
    seen = []

    def _Second(node, disk, children):
        seen.append(disk)
        if len(seen) == 2:
            return instancehelpers._Fail("no metadata")
        return original(node, disk, children)

    ctx.rpc.call_blockdev_addchildren = _Second
    with pytest.raises(errors.OpExecError, match="disk\\(s\\) 0 have their new storage"):
        _Run(ctx, _Op(constants.REPLACE_DISK_SEC))
    # disk 0's old volumes stay aside; disk 1 is back on its old volumes
    aside = sorted(lv for lv in ctx.rpc.Lvs(ctx.n2) if "_replaced-" in lv)
    assert [lv.split("_replaced-")[0] for lv in aside] == sorted(
        _LvName(c) for c in disks[0].children)
    assert ctx.rpc.Minors(ctx.n2)[_Minor(disks[1], ctx.n2)]["local"] == \
        tuple(_LvName(c) for c in disks[1].children)


def test_failed_volume_creation_leaves_nothing(ctx):
    AddDrbdInstance(ctx)
    before = set(ctx.rpc.Lvs(ctx.n2))
    original = ctx.rpc.call_blockdev_create
    count = []

    def _Third(node, disk, *args):
        count.append(1)
        if len(count) == 3:
            return instancehelpers._Fail("vg full")
        return original(node, disk, *args)

    ctx.rpc.call_blockdev_create = _Third
    with pytest.raises(errors.OpExecError, match="vg full"):
        _Run(ctx, _Op(constants.REPLACE_DISK_SEC))
    assert ctx.rpc.Lvs(ctx.n2) == before
    assert "blockdev_removechildren" not in _Names(ctx)


def test_peer_must_be_consistent(ctx):
    inst = AddDrbdInstance(ctx)
    disk = ctx.cfg.GetInstanceDisks(inst.uuid)[0]
    ctx.rpc.Minors(ctx.n1)[_Minor(disk, ctx.n1)]["faulty"] = True
    with pytest.raises(errors.OpExecError, match="no consistent data for disk/0"):
        _Run(ctx, _Op(constants.REPLACE_DISK_SEC))
    assert "blockdev_create" not in _Names(ctx)


# --- --auto -----------------------------------------------------------------------------------

def test_auto_replaces_the_faulty_disk(ctx):
    inst = AddDrbdInstance(ctx)
    disk1 = ctx.cfg.GetInstanceDisks(inst.uuid)[1]
    state = ctx.rpc.Minors(ctx.n2)[_Minor(disk1, ctx.n2)]
    state.update(local=None, faulty=True)
    ctx.rpc.calls.clear()
    _, cbs = _Run(ctx, _Op(constants.REPLACE_DISK_AUTO))
    assert [(c[1], c[2]) for c in ctx.rpc.calls if c[0] == "blockdev_addchildren"] == \
        [(ctx.n2, _Minor(disk1, ctx.n2))]
    assert state["local"] and not state["faulty"]
    assert "Replacing disk(s) 1 for instance" in _Text(cbs)
    # an --auto repair does not touch the disks' activation
    assert "blockdev_shutdown" not in _Names(ctx)


def test_auto_with_nothing_to_do(ctx):
    AddDrbdInstance(ctx)
    ctx.rpc.calls.clear()
    _, cbs = _Run(ctx, _Op(constants.REPLACE_DISK_AUTO))
    assert "No disks need replacement for instance 'inst1.example.com'" in _Text(cbs)
    assert not {"blockdev_create", "blockdev_rename"} & set(_Names(ctx))


def test_auto_refusals(ctx):
    inst = AddDrbdInstance(ctx)
    disks = ctx.cfg.GetInstanceDisks(inst.uuid)
    ctx.rpc.Minors(ctx.n1)[_Minor(disks[0], ctx.n1)]["faulty"] = True
    ctx.rpc.Minors(ctx.n2)[_Minor(disks[1], ctx.n2)]["faulty"] = True
    _Refused(ctx, _Op(constants.REPLACE_DISK_AUTO), errors.ECODE_STATE,
             "faulty disks on both of its nodes")
    ctx.rpc.Minors(ctx.n1).clear()
    _Refused(ctx, _Op(constants.REPLACE_DISK_AUTO), errors.ECODE_STATE,
             "run activate-disks")
    _Refused(ctx, _Op(constants.REPLACE_DISK_AUTO, disks=[0]), errors.ECODE_INVAL,
             "Cannot give disks in automatic mode")


# --- -n ------------------------------------------------------------------------------------------

def test_change_secondary(ctx):
    inst = AddDrbdInstance(ctx)
    old = ctx.cfg.GetInstanceDisks(inst.uuid)
    n2_lvs = set(ctx.rpc.Lvs(ctx.n2))
    ctx.rpc.calls.clear()
    _Run(ctx, _Op(constants.REPLACE_DISK_CHG, remote_node="node3"))
    new = ctx.cfg.GetInstanceDisks(inst.uuid)
    for before, after in zip(old, new):
        node_a, _, port, minor_a, _, secret = before.logical_id
        assert after.logical_id[:4] == (ctx.n1, ctx.n3, port, minor_a)
        assert after.logical_id[5] == secret
        assert after.nodes == [ctx.n1, ctx.n3]
        assert all(c.nodes == [ctx.n1, ctx.n3] for c in after.children)
        assert [c.logical_id for c in after.children] == \
            [c.logical_id for c in before.children]
    assert ctx.cfg.GetInstanceNodes(inst.uuid) == (ctx.n1, ctx.n3)
    # the volumes moved from node2 to node3; node2's devices are down
    assert ctx.rpc.Lvs(ctx.n3) == n2_lvs and ctx.rpc.Lvs(ctx.n2) == set()
    assert ctx.rpc.Minors(ctx.n2) == {}
    assert sorted(ctx.rpc.Minors(ctx.n3)) == sorted(d.logical_id[4] for d in new)
    assert all(state["net"] for state in ctx.rpc.Minors(ctx.n3).values())
    names = _Names(ctx)
    assert names.index("drbd_disconnect_net") < names.index("drbd_attach_net")
    assert ("drbd_attach_net", (ctx.n1, ctx.n3)) in ctx.rpc.calls
    assert _Pending(ctx) == {}
    assert ctx.cfg.ComputeDRBDMap()[ctx.n2] == {}


def test_change_secondary_after_failover(ctx):
    """The primary is node B of the logical_id: its own minor is kept."""
    inst = AddDrbdInstance(ctx, ndisks=1)
    disk = ctx.cfg.GetInstanceDisks(inst.uuid)[0]
    p_minor = _Minor(disk, ctx.n2)
    stored = ctx.cfg.GetInstanceInfo(inst.uuid)
    stored.primary_node = ctx.n2
    ctx.cfg.Update(stored)
    _Run(ctx, _Op(constants.REPLACE_DISK_CHG, remote_node=N3))
    new = ctx.cfg.GetInstanceDisks(inst.uuid)[0]
    assert new.logical_id[:2] == (ctx.n2, ctx.n3) and new.logical_id[3] == p_minor
    assert ctx.rpc.Lvs(ctx.n1) == set()


def test_change_secondary_with_offline_old_secondary(ctx):
    inst = AddDrbdInstance(ctx, ndisks=1)
    node2 = ctx.cfg.GetNodeInfo(ctx.n2)
    node2.offline = True
    ctx.cfg.Update(node2)
    ctx.rpc.calls.clear()
    _, cbs = _Run(ctx, _Op(constants.REPLACE_DISK_CHG, remote_node=N3))
    assert not [c for c in ctx.rpc.calls if len(c) > 1 and c[1] == ctx.n2]
    assert "offline" in _Text(cbs)
    assert ctx.cfg.GetInstanceNodes(inst.uuid) == (ctx.n1, ctx.n3)


def test_change_secondary_hooks(ctx):
    AddDrbdInstance(ctx)
    _Run(ctx, _Op(constants.REPLACE_DISK_CHG, remote_node=N3))
    phase, env = ctx.rpc.hook_envs[0]
    assert phase == constants.HOOKS_PHASE_PRE
    assert env["GANETI_MODE"] == constants.REPLACE_DISK_CHG
    assert env["GANETI_NEW_SECONDARY"] == N3
    assert env["GANETI_OLD_SECONDARY"] == N2
    assert env["GANETI_INSTANCE_NAME"] == NAME


def test_failed_drbd_creation_on_new_node_leaves_nothing(ctx):
    inst = AddDrbdInstance(ctx)
    disks = ctx.cfg.GetInstanceDisks(inst.uuid)
    original = ctx.rpc.call_blockdev_create

    def _NoDrbd(node, disk, *args):
        if _Obj(disk).dev_type == constants.DT_DRBD8 and _Obj(disk).uuid == disks[1].uuid:
            return instancehelpers._Fail("minor in use")
        return original(node, disk, *args)

    ctx.rpc.call_blockdev_create = _NoDrbd
    serial = ctx.cfg.GetConfigSerialNo()
    with pytest.raises(errors.OpExecError, match="minor in use"):
        _Run(ctx, _Op(constants.REPLACE_DISK_CHG, remote_node=N3))
    assert ctx.rpc.Lvs(ctx.n3) == set() and ctx.rpc.Minors(ctx.n3) == {}
    assert _Pending(ctx) == {}
    assert ctx.cfg.GetConfigSerialNo() == serial
    assert "blockdev_shutdown" not in _Names(ctx)
    assert ctx.cfg.GetInstanceNodes(inst.uuid) == (ctx.n1, ctx.n2)


def test_failed_primary_disconnect_restores_the_old_mirror(ctx):
    inst = AddDrbdInstance(ctx)
    ctx.rpc.fail_on[("drbd_disconnect_net", ctx.n1)] = "still connected"
    with pytest.raises(errors.OpExecError, match="still connected"):
        _Run(ctx, _Op(constants.REPLACE_DISK_CHG, remote_node=N3))
    assert ctx.rpc.Lvs(ctx.n3) == set() and ctx.rpc.Minors(ctx.n3) == {}
    assert _Pending(ctx) == {}
    # the old secondary, shut down meanwhile, is assembled again
    assert len(ctx.rpc.Minors(ctx.n2)) == 2
    assert all(s["local"] for s in ctx.rpc.Minors(ctx.n2).values())
    assert ctx.cfg.GetInstanceNodes(inst.uuid) == (ctx.n1, ctx.n2)


def test_change_secondary_refusals(ctx):
    AddDrbdInstance(ctx)
    _Refused(ctx, _Op(constants.REPLACE_DISK_CHG, remote_node=N1), errors.ECODE_INVAL,
             "is the primary node of instance")
    _Refused(ctx, _Op(constants.REPLACE_DISK_CHG, remote_node=N2), errors.ECODE_INVAL,
             "is already the secondary node")
    _Refused(ctx, _Op(constants.REPLACE_DISK_CHG, remote_node="node9"),
             errors.ECODE_NOENT, "Node 'node9' not known")
    _Refused(ctx, _Op(constants.REPLACE_DISK_CHG), errors.ECODE_INVAL,
             "needs the new node")
    _Refused(ctx, _Op(constants.REPLACE_DISK_CHG, iallocator="hail", remote_node=N3),
             errors.ECODE_INVAL, "either the iallocator or the new secondary")
    _Refused(ctx, _Op(constants.REPLACE_DISK_CHG, iallocator="."), errors.ECODE_INVAL,
             "no default iallocator")
    _Refused(ctx, _Op(constants.REPLACE_DISK_SEC, remote_node=N3), errors.ECODE_INVAL,
             "only be used when changing the secondary")
    _Refused(ctx, _Op(constants.REPLACE_DISK_CHG, remote_node=N3, disks=[1]),
             errors.ECODE_INVAL, "moves all the disks")
    node3 = ctx.cfg.GetNodeInfo(ctx.n3)
    node3.offline = True
    ctx.cfg.Update(node3)
    _Refused(ctx, _Op(constants.REPLACE_DISK_CHG, remote_node=N3), errors.ECODE_STATE,
             "Can't use offline node node3.example.com as the new secondary")
    node3 = ctx.cfg.GetNodeInfo(ctx.n3)
    node3.offline, node3.drained = False, True
    ctx.cfg.Update(node3)
    _Refused(ctx, _Op(constants.REPLACE_DISK_CHG, remote_node=N3), errors.ECODE_STATE,
             "drained")
    assert "blockdev_create" not in _Names(ctx)


def test_new_group_policy(ctx):
    AddDrbdInstance(ctx)
    cluster = ctx.cfg.GetClusterInfo()
    minmax = cluster.ipolicy[constants.ISPECS_MINMAX][0]
    minmax[constants.ISPECS_MAX][constants.ISPEC_DISK_SIZE] = 512
    ctx.cfg.Update(cluster)
    _Refused(ctx, _Op(constants.REPLACE_DISK_CHG, remote_node=N3), errors.ECODE_INVAL,
             "does not meet the instance policy of group default of node"
             " node3.example.com: disk-size value 1024 is not in range")
    _, cbs = _Run(ctx, _Op(constants.REPLACE_DISK_CHG, remote_node=N3,
                           ignore_ipolicy=True))
    assert "does not meet the instance policy" in _Text(cbs)


def test_no_space_on_the_new_node(ctx):
    AddDrbdInstance(ctx)
    ctx.rpc.storage_free = 2000
    err = _Refused(ctx, _Op(constants.REPLACE_DISK_CHG, remote_node=N3),
                   errors.ECODE_NORES, "Not enough disk space on target node")
    assert "node3.example.com vg xenvg: required 2304 MiB" in str(err)
    assert "blockdev_create" not in _Names(ctx)
    assert _Pending(ctx) == {}
    # the same for new volumes on the secondary
    _Refused(ctx, _Op(constants.REPLACE_DISK_SEC), errors.ECODE_NORES,
             "Not enough disk space on target node node2.example.com")


def test_bad_input(ctx):
    inst = AddDrbdInstance(ctx)
    _Refused(ctx, _Op(constants.REPLACE_DISK_PRI, disks=[2]), errors.ECODE_INVAL,
             "Invalid disk index '2': instance inst1.example.com has 2 disk")
    _Refused(ctx, _Op(constants.REPLACE_DISK_PRI, instance_name="nosuch"),
             errors.ECODE_NOENT, "not known")
    node2 = ctx.cfg.GetNodeInfo(ctx.n2)
    node2.offline = True
    ctx.cfg.Update(node2)
    _Refused(ctx, _Op(constants.REPLACE_DISK_PRI), errors.ECODE_STATE, "offline node")
    del inst


def test_not_drbd(ctx):
    cfg = ctx.cfg
    cfg.AddInstance(objects.Instance(name="plain1", primary_node=ctx.n1, os="noop",
                                     hypervisor=constants.HT_FAKE, nics=[]), "job")
    uuid = cfg.GetInstanceInfoByName("plain1").uuid
    cfg.AddInstanceDisk(uuid, objects.Disk(dev_type=constants.DT_PLAIN, size=1024,
                                           logical_id=("xenvg", "x.disk0")))
    ctx.glm = instancehelpers.masterd.BuildLockManager(cfg)
    for mode, extra in ((constants.REPLACE_DISK_SEC, {}),
                        (constants.REPLACE_DISK_CHG, {"remote_node": N3})):
        _Refused(ctx, _Op(mode, instance_name="plain1", **extra), errors.ECODE_INVAL,
                 "disk template 'plain': replace-disks works only for instances with"
                 " the drbd disk template")


# --- gnt-instance replace-disks ------------------------------------------------------------------

@pytest.fixture
def client(monkeypatch):
    fake = FakeClient()
    monkeypatch.setattr(cli_base, "GetClient", lambda address=None: fake)
    monkeypatch.setattr(cli, "GetClient", lambda address=None: fake)
    return fake


def _Gnt(*argv):
    return gnt_instance.Main(["gnt-instance", *argv])


@pytest.mark.parametrize("argv,mode,extra", [
    (["-s"], constants.REPLACE_DISK_SEC, {}),
    (["-p", "--disks", "0,2"], constants.REPLACE_DISK_PRI, {"disks": [0, 2]}),
    (["-a"], constants.REPLACE_DISK_AUTO, {}),
    (["-n", "node3", "--early-release", "--ignore-ipolicy"], constants.REPLACE_DISK_CHG,
     {"remote_node": "node3", "early_release": True, "ignore_ipolicy": True}),
    (["--new-secondary", "node3"], constants.REPLACE_DISK_CHG, {"remote_node": "node3"}),
])
def test_cli_modes(client, argv, mode, extra):
    assert _Gnt("replace-disks", "--submit", *argv, NAME) == 0
    (op,) = client.submitted[0]
    assert op["OP_ID"] == "OP_INSTANCE_REPLACE_DISKS"
    assert (op["instance_name"], op["mode"]) == (NAME, mode)
    for key, value in extra.items():
        assert op[key] == value


@pytest.mark.parametrize("argv,match", [
    ([], "One and only one of the -p, -s, -a, -n and -I"),
    (["-p", "-s"], "One and only one"),
    (["-a", "--disks", "0"], "Cannot give disks"),
    (["-p", "--disks", "0,x"], "Invalid disk index list '0,x'"),
])
def test_cli_refusals(client, capsys, argv, match):
    assert _Gnt("replace-disks", *argv, NAME) != 0
    assert match in capsys.readouterr().err
    assert client.submitted == []


# --- the node side: blockdev_removechildren / blockdev_addchildren ---------------------------

@pytest.fixture
def pair(tmp_path, monkeypatch):
    import test_drbd
    result = test_drbd.Pair(tmp_path / "vc", monkeypatch)
    yield result
    from ganeti import pathutils
    pathutils.Reload()


def _WithChildren(disk_dict, prefix):
    disk = objects.Disk.FromDict(disk_dict)
    for child, kind in zip(disk.children, ("data", "meta")):
        child.logical_id = ("xenvg", f"{prefix}.{kind}")
    return disk.ToDict()


def test_node_swaps_the_local_volumes(pair):
    import test_drbd
    from ganeti.backend import RPCFail
    from ganeti.backend import drbd as backend_drbd
    test_drbd._Synced(pair)
    disk = pair.Disk("node-b")
    children = disk["children"]
    new = _WithChildren(disk, "new")
    with pytest.raises(RPCFail, match="has local storage; detach it first"):
        pair.Call("node-b", backend_drbd.BlockdevAddChildren, disk, new["children"])
    with pytest.raises(RPCFail, match="not on the given volumes"):
        pair.Call("node-b", backend_drbd.BlockdevRemoveChildren, disk, new["children"])
    pair.Call("node-b", backend_drbd.BlockdevRemoveChildren, disk, children)
    status = pair.Status("node-b")
    assert status.is_diskless and status.is_connected
    # detaching again is nothing to do
    pair.Call("node-b", backend_drbd.BlockdevRemoveChildren, disk, children)
    pair.Call("node-b", backend_drbd.BlockdevAddChildren, disk, new["children"])
    status = pair.Status("node-b")
    assert status.ldisk == "Inconsistent" and status.is_in_resync
    pair.Tick(60)
    assert pair.Call("node-b", backend_drbd.DrbdWaitSync, [disk]) == (True, 100.0)
    assert pair.Status("node-a").peer_disk_uptodate


def test_node_adds_volumes_after_a_failed_disk(pair):
    import subprocess

    import test_drbd
    from ganeti.backend import drbd as backend_drbd
    test_drbd._Synced(pair)
    env = dict(os.environ, GANETI_ROOTDIR=pair.roots["node-b"])
    subprocess.run([os.path.join(test_drbd.STANDIN, "drbdsetup-standin-ctl"), "fail-disk",
                    str(test_drbd.MINORS["node-b"])], env=env, check=True,
                   capture_output=True)
    disk = pair.Disk("node-b")
    assert pair.Status("node-b").is_diskless
    pair.Call("node-b", backend_drbd.BlockdevRemoveChildren, disk, disk["children"])
    pair.Call("node-b", backend_drbd.BlockdevAddChildren, disk,
              _WithChildren(disk, "fresh")["children"])
    pair.Tick(60)
    assert pair.Status("node-b").is_disk_uptodate
