"""Tests for LUInstanceSetParams (gnt-instance modify) and the bridge check,
run through mcpu with the recording fake RPC runner of instancehelpers."""

from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import instancehelpers  # noqa: E402

from ganeti import constants, errors, opcodes  # noqa: E402
from ganeti.cmdlib import instance_set_params as isp  # noqa: E402

NAME = "inst1.example.com"
MAC = "aa:00:00:11:22:33"


class ModifyRpc(instancehelpers.FakeRpc):
    """FakeRpc with bridges (only those in ``bridges`` exist), ballooning
    and the running memory of instances."""

    def __init__(self):
        super().__init__()
        self.bridges = {constants.DEFAULT_BRIDGE}
        self.memory = {}

    def call_bridges_exist(self, node, bridges):
        self.calls.append(("bridges_exist", list(bridges)))
        return self._Answer("bridges_exist", [b for b in bridges if b not in self.bridges])

    def call_instance_info(self, nodes, name, hvname, hvparams):
        payload = {"state": "running", "memory": self.memory.get(name, 128)} \
            if name in self.running else {}
        return {node: self._Answer("instance_info", payload) for node in nodes}

    def call_instance_balloon_memory(self, node, inst, memory):
        self.calls.append(("instance_balloon_memory", inst["name"], memory))
        self.memory[inst["name"]] = memory
        return self._Answer("instance_balloon_memory", None)


@pytest.fixture
def ctx(tmp_path):
    context = instancehelpers.MakeContext(tmp_path)
    context.rpc = ModifyRpc()
    return context


_Run = instancehelpers.Run


def _Inst(ctx):
    return ctx.cfg.GetInstanceInfoByName(NAME)


def _Create(ctx, **kwargs):
    params = dict(disk_template="file", disks=[{"size": 1024}], start=False)
    params.update(kwargs)
    _Run(ctx, instancehelpers.CreateOp(**params))
    ctx.rpc.calls.clear()
    return _Inst(ctx)


def _Modify(ctx, **kwargs):
    result, _ = _Run(ctx, opcodes.OpInstanceSetParams(instance_name=NAME, **kwargs))
    return result


def _Unchanged(ctx, match, code=errors.ECODE_INVAL, exc=errors.OpPrereqError, **kwargs):
    ctx.rpc.calls.clear()
    serial = ctx.cfg.GetConfigSerialNo()
    before = _Inst(ctx).ToDict()
    with pytest.raises(exc, match=match) as info:
        _Modify(ctx, **kwargs)
    if exc is errors.OpPrereqError:
        assert info.value.args[1] == code
    assert ctx.cfg.GetConfigSerialNo() == serial
    assert _Inst(ctx).ToDict() == before
    assert "blockdev_create" not in ctx.rpc.names()


# --- pure helpers ------------------------------------------------------------------------

def test_upgrade_mods():
    assert isp.UpgradeMods([["add", {"size": 1}], ["remove", {}], [1, {"mode": "ro"}]],
                           "disk") == [("add", -1, {"size": 1}), ("remove", -1, {}),
                                       ("modify", 1, {"mode": "ro"})]
    assert isp.UpgradeMods([["modify", "data", {"mode": "ro"}]], "disk") == \
        [("modify", "data", {"mode": "ro"})]
    assert isp.UpgradeMods([["attach", -1, {"name": "d"}], ["detach", 0, {}]],
                           "disk") == [("attach", -1, {"name": "d"}), ("detach", 0, {})]
    with pytest.raises(errors.OpPrereqError, match="only disks can be attached"):
        isp.UpgradeMods([["attach", -1, {}]], "NIC")
    with pytest.raises(errors.OpPrereqError, match="No parameters allowed when detaching"):
        isp.UpgradeMods([["detach", 0, {"size": 1}]], "disk")
    with pytest.raises(errors.OpPrereqError, match="No parameters allowed"):
        isp.UpgradeMods([["remove", 0, {"size": 1}]], "disk")


# --- parameters ---------------------------------------------------------------------------

def test_beparams_and_default(ctx):
    _Create(ctx)
    result = _Modify(ctx, beparams={"memory": 256, "vcpus": 2})
    assert ("be/maxmem", 256) in result and ("be/vcpus", 2) in result
    inst = _Inst(ctx)
    assert inst.beparams[constants.BE_MAXMEM] == 256 and inst.beparams["vcpus"] == 2
    _Modify(ctx, beparams={"vcpus": "default"})
    assert "vcpus" not in _Inst(ctx).beparams
    _Unchanged(ctx, "Minimum memory", beparams={"minmem": 512})
    _Unchanged(ctx, "must be an integer", beparams={"vcpus": "many"})
    _Unchanged(ctx, "No changes submitted")


def test_ipolicy_violation(ctx):
    _Create(ctx)
    _Unchanged(ctx, r"would not meet the instance policy(.|\n)*cpu-count value 64",
               beparams={"vcpus": 64})
    _Modify(ctx, beparams={"vcpus": 64}, ignore_ipolicy=True)
    assert _Inst(ctx).beparams["vcpus"] == 64


def test_running_memory_checks_and_balloon(ctx):
    _Create(ctx, start=True)
    ctx.rpc.memory_free = 100
    _Unchanged(ctx, "memory missing on its primary node", code=errors.ECODE_NORES,
               beparams={"maxmem": 4096})
    ctx.rpc.memory_free = 4096
    _Modify(ctx, beparams={"maxmem": 512})
    result = _Modify(ctx, runtime_mem=256)
    assert ("runtime_memory", 256) in result
    assert ("instance_balloon_memory", NAME, 256) in ctx.rpc.calls
    _Unchanged(ctx, "must have memory between", runtime_mem=1024)


def test_runtime_memory_needs_running(ctx):
    _Create(ctx)
    _Unchanged(ctx, "must be running", code=errors.ECODE_STATE, runtime_mem=256)


def test_hvparams_and_os(ctx, monkeypatch):
    _Create(ctx)
    _Unchanged(ctx, "migration_mode are global", hvparams={"migration_mode": "live"})
    # the fake hypervisor's only parameter is global: pretend it is not
    monkeypatch.setattr(constants, "HVC_GLOBALS", frozenset())
    result = _Modify(ctx, hvparams={"migration_mode": "non-live"}, osparams={"x": "1"})
    assert ("hv/migration_mode", "non-live") in result and ("os/x", "1") in result
    assert _Inst(ctx).hvparams == {"migration_mode": "non-live"}
    assert _Inst(ctx).osparams == {"x": "1"}
    _Modify(ctx, hvparams={"migration_mode": "default"})
    assert _Inst(ctx).hvparams == {}
    _Unchanged(ctx, "Unknown hypervisor", hvparams={"nosuch": "1"})
    result = _Modify(ctx, os_name="other+v")
    assert ("os_name", "other+v") in result and _Inst(ctx).os == "other+v"
    ctx.rpc.fail["os_validate"] = "OS 'bad' not found"
    _Unchanged(ctx, "not found", os_name="bad")
    _Modify(ctx, os_name="bad", force=True)
    assert _Inst(ctx).os == "bad"


# --- NICs ---------------------------------------------------------------------------------

def test_nic_add_modify_remove(ctx):
    _Create(ctx)
    result = _Modify(ctx, nics=[("add", -1, {"mac": MAC, "ip": "192.0.2.10",
                                             "name": "second"})])
    inst = _Inst(ctx)
    assert len(inst.nics) == 2 and inst.nics[1].mac == MAC and inst.nics[1].uuid
    assert result[0][0] == "nic.1" and result[0][1].startswith(f"add:mac={MAC}")
    result = _Modify(ctx, nics=[("modify", "second", {"ip": "192.0.2.11",
                                                       "mac": "generate"})])
    nic = _Inst(ctx).nics[1]
    assert nic.ip == "192.0.2.11" and nic.mac not in (MAC, "generate")
    assert ("nic.ip/1", "192.0.2.11") in result and ("nic.mac/1", nic.mac) in result
    assert _Modify(ctx, nics=[("remove", 1, {})]) == [("nic.1", "remove")]
    assert len(_Inst(ctx).nics) == 1


def test_nic_refusals(ctx):
    first = _Create(ctx).nics[0].mac
    _Unchanged(ctx, "Invalid MAC address 'zz:11'", nics=[("add", -1, {"mac": "zz:11"})])
    _Unchanged(ctx, "Invalid IP address '10.0.0.300'",
               nics=[("modify", 0, {"ip": "10.0.0.300"})])
    _Unchanged(ctx, "already in use", code=errors.ECODE_NOTUNIQUE,
               nics=[("add", -1, {"mac": first})])
    _Unchanged(ctx, "Invalid NIC index 5", nics=[("remove", 5, {})])
    _Unchanged(ctx, "Cannot find NIC 'nosuch'", nics=[("modify", "nosuch", {"ip": None})])
    _Unchanged(ctx, "routed mode needs an IP", nics=[("add", -1, {"mode": "routed"})])


def test_nic_missing_bridge(ctx):
    _Create(ctx)
    _Unchanged(ctx, "Missing bridge nosuchbr on node node1.example.com",
               code=errors.ECODE_ENVIRON, nics=[("add", -1, {"link": "nosuchbr"})])
    ctx.rpc.bridges.add("nosuchbr")
    _Modify(ctx, nics=[("add", -1, {"link": "nosuchbr"})])
    assert ("bridges_exist", ["nosuchbr"]) in ctx.rpc.calls


def test_bridge_checked_at_create_and_startup(ctx):
    ctx.rpc.bridges = set()
    instancehelpers.Refused(ctx, instancehelpers.CreateOp(), errors.ECODE_ENVIRON,
                            "Missing bridge xen-br0 on node node1.example.com")
    ctx.rpc.calls.clear()
    # routed NICs need no bridge
    _Run(ctx, instancehelpers.CreateOp(nics=[{"mode": "routed", "ip": "192.0.2.5"}],
                                       start=False))
    assert not any(call[0] == "bridges_exist" for call in ctx.rpc.calls)
    ctx.rpc.bridges = {constants.DEFAULT_BRIDGE}
    _Run(ctx, instancehelpers.CreateOp(name="inst2.example.com", start=False))
    ctx.rpc.bridges = set()
    with pytest.raises(errors.OpPrereqError, match="Missing bridge xen-br0"):
        _Run(ctx, opcodes.OpInstanceStartup(instance_name="inst2.example.com"))
    assert "instance_start" not in ctx.rpc.names()


# --- disks --------------------------------------------------------------------------------

def test_disk_add_modify_remove(ctx):
    _Create(ctx)
    result = _Modify(ctx, disks=[("add", -1, {"size": 2048, "name": "data"})])
    assert result == [("disk/1", "add:size=2048,mode=rw")]
    disks = ctx.cfg.GetInstanceDisks(_Inst(ctx).uuid)
    assert [d.size for d in disks] == [1024, 2048]
    assert disks[1].logical_id[1] == "/srv/ganeti/file-storage/inst1.example.com/disk1"
    assert disks[1].iv_name == "disk/1" and disks[1].name == "data"
    assert "blockdev_create" in ctx.rpc.names()
    result = _Modify(ctx, disks=[("modify", "data", {"mode": "ro"})])
    assert result == [("disk.mode/1", "ro")]
    assert ctx.cfg.GetInstanceDisks(_Inst(ctx).uuid)[1].mode == "ro"
    # legacy form: add at the end, then remove the first one by index
    _Modify(ctx, disks=[["add", {"size": 3072}]])
    _Modify(ctx, disks=[("add", 0, {"size": 4096})])
    assert [d.size for d in ctx.cfg.GetInstanceDisks(_Inst(ctx).uuid)] == \
        [4096, 1024, 2048, 3072]
    paths = [d.logical_id[1] for d in ctx.cfg.GetInstanceDisks(_Inst(ctx).uuid)]
    assert len(set(paths)) == 4
    ctx.rpc.calls.clear()
    assert _Modify(ctx, disks=[("remove", 1, {})]) == [("disk/1", "remove")]
    assert [d.size for d in ctx.cfg.GetInstanceDisks(_Inst(ctx).uuid)] == \
        [4096, 2048, 3072]
    assert "blockdev_remove" in ctx.rpc.names()
    assert len(ctx.cfg.GetAllDisksInfo()) == 3


def test_disk_refusals(ctx):
    _Create(ctx)
    _Unchanged(ctx, "Invalid disk size '10X'", disks=[("add", -1, {"size": "10X"})])
    _Unchanged(ctx, "use grow-disk", disks=[("modify", 0, {"size": 2048})])
    _Unchanged(ctx, "Cannot remove every disk", disks=[("remove", 0, {})])
    _Unchanged(ctx, "Invalid disk access mode", disks=[("modify", 0, {"mode": "rx"})])
    _Unchanged(ctx, "Conversion to the diskless disk template is not supported",
               disk_template="diskless")
    _Unchanged(ctx, "already has disk template file", disk_template="file")
    _Unchanged(ctx, r"disk-size value 100 is not in range \[1024",
               disks=[("add", -1, {"size": 100})])
    ctx.cfg.MarkInstanceUp(_Inst(ctx).uuid)
    _Modify(ctx, disks=[("add", -1, {"size": 1024})])
    _Unchanged(ctx, "is running, cannot remove disks", code=errors.ECODE_STATE,
               disks=[("remove", -1, {})])


def test_disk_ops_refused_for_diskless(ctx):
    _Create(ctx, disk_template="diskless", disks=[])
    _Unchanged(ctx, "not supported for diskless", disks=[("add", -1, {"size": 1024})])


def test_disk_creation_failure_leaves_nothing(ctx):
    _Create(ctx)
    ctx.rpc.fail["blockdev_create"] = "disk full"
    serial = ctx.cfg.GetConfigSerialNo()
    with pytest.raises(errors.OpExecError, match="disk full"):
        _Modify(ctx, disks=[("add", -1, {"size": 1024})])
    assert ctx.cfg.GetConfigSerialNo() == serial
    assert len(ctx.cfg.GetAllDisksInfo()) == 1


def test_config_failure_removes_created_disk(ctx, monkeypatch):
    _Create(ctx)

    def _Broken(*args, **kwargs):
        raise errors.ConfigurationError("config write failed")
    monkeypatch.setattr(ctx.cfg, "Update", _Broken)
    with pytest.raises(errors.ConfigurationError, match="config write failed"):
        _Modify(ctx, disks=[("add", -1, {"size": 2048})], beparams={"vcpus": 2})
    names = ctx.rpc.names()
    assert names.index("blockdev_create") < names.index("blockdev_remove")
    assert len(ctx.cfg.GetAllDisksInfo()) == 1
    assert len(ctx.cfg.GetInstanceDisks(_Inst(ctx).uuid)) == 1
    assert "vcpus" not in _Inst(ctx).beparams


# --- offline ------------------------------------------------------------------------------

def test_offline_online(ctx):
    _Create(ctx, start=True)
    _Unchanged(ctx, "cannot mark it offline", code=errors.ECODE_STATE, offline=True)
    _Run(ctx, opcodes.OpInstanceShutdown(instance_name=NAME))
    assert _Modify(ctx, offline=True) == [("admin_state", constants.ADMINST_OFFLINE)]
    with pytest.raises(errors.OpPrereqError, match="marked offline"):
        _Run(ctx, opcodes.OpInstanceStartup(instance_name=NAME))
    _Unchanged(ctx, "is offline", code=errors.ECODE_STATE, beparams={"vcpus": 2})
    assert _Modify(ctx, offline=False) == [("admin_state", constants.ADMINST_DOWN)]
    _Unchanged(ctx, "is not offline", code=errors.ECODE_STATE, offline=False)


def test_hooks_env(ctx):
    _Create(ctx)
    proc_lu = isp.LUInstanceSetParams
    assert proc_lu.HPATH == "instance-modify"
    op = opcodes.OpInstanceSetParams(instance_name=NAME, beparams={"maxmem": 512},
                                     nics=[("add", -1, {})])
    from ganeti import mcpu
    op.Validate(True)
    lu = proc_lu(mcpu.Processor(ctx, ec_id=1), op, ctx, ctx.rpc)
    lu.CheckArguments()
    lu.ExpandNames()
    lu.CheckPrereq()
    env = lu.BuildHooksEnv()
    assert env["INSTANCE_MAXMEM"] == 512 and env["INSTANCE_NIC_COUNT"] == 2
    assert env["INSTANCE_NIC1_BRIDGE"] == constants.DEFAULT_BRIDGE


# --- hotplug -------------------------------------------------------------------------------

def _HotplugCalls(ctx):
    # (name, node, instance, action, dev_type, device, extra, seq)
    return [(call[3], call[4]) for call in ctx.rpc.calls if call[0] == "hotplug_device"]


def test_hotplug_of_a_running_instance(ctx):
    _Create(ctx, start=True)
    _Modify(ctx, hotplug_if_possible=True, disks=[("add", -1, {"size": 1024})],
            nics=[("add", -1, {})])
    names = ctx.rpc.names()
    assert names.index("hotplug_supported") < names.index("blockdev_create") < \
        names.index("blockdev_assemble") < names.index("hotplug_device")
    assert _HotplugCalls(ctx) == [(constants.HOTPLUG_ACTION_ADD, constants.HOTPLUG_TARGET_DISK),
                                  (constants.HOTPLUG_ACTION_ADD, constants.HOTPLUG_TARGET_NIC)]
    # The node gets the NIC with its filled parameters
    nic = [call for call in ctx.rpc.calls if call[0] == "hotplug_device"][1][5]
    assert nic.nicparams[constants.NIC_MODE] == constants.NIC_MODE_BRIDGED
    ctx.rpc.calls.clear()
    # Removal of a running instance's disk: unplugged first
    _Modify(ctx, hotplug=True, disks=[("remove", -1, {})], nics=[("remove", -1, {})])
    names = ctx.rpc.names()
    assert names.index("hotplug_device") < names.index("blockdev_remove")
    assert _HotplugCalls(ctx) == [
        (constants.HOTPLUG_ACTION_REMOVE, constants.HOTPLUG_TARGET_DISK),
        (constants.HOTPLUG_ACTION_REMOVE, constants.HOTPLUG_TARGET_NIC)]
    assert len(ctx.cfg.GetInstanceDisks(_Inst(ctx).uuid)) == 1


def test_hotplug_refused_or_skipped(ctx):
    _Create(ctx, start=True)
    ctx.rpc.fail["hotplug_supported"] = "Hypervisor FakeHypervisor does not support hotplug"
    _Unchanged(ctx, "Hotplug is not possible.*does not support hotplug",
               code=errors.ECODE_STATE, hotplug=True, disks=[("add", -1, {"size": 1024})])
    # If possible only: the configuration changes, nothing is plugged in
    _Modify(ctx, hotplug_if_possible=True, disks=[("add", -1, {"size": 1024})])
    assert _HotplugCalls(ctx) == []
    assert len(ctx.cfg.GetInstanceDisks(_Inst(ctx).uuid)) == 2
    _Unchanged(ctx, "is running, cannot remove disks", code=errors.ECODE_STATE,
               hotplug_if_possible=True, disks=[("remove", -1, {})])
    # Without hotplug asked, the node is not even asked
    ctx.rpc.calls.clear()
    _Modify(ctx, nics=[("add", -1, {})])
    assert "hotplug_supported" not in ctx.rpc.names()


def test_hotplug_not_for_a_stopped_instance(ctx):
    _Create(ctx)
    _Modify(ctx, hotplug=True, disks=[("add", -1, {"size": 1024})])
    assert "hotplug_supported" not in ctx.rpc.names()
    assert _HotplugCalls(ctx) == []


def test_hot_removal_failure_changes_nothing(ctx):
    _Create(ctx, start=True, disks=[{"size": 1024}, {"size": 1024}])
    ctx.rpc.fail["hotplug_device"] = "Device disk-x was not released by the guest"
    _Unchanged(ctx, "did not release it", exc=errors.OpExecError, hotplug=True,
               disks=[("remove", -1, {})])
