"""Tests for LUInstanceCreate, run through mcpu with the recording fake
RPC runner of instancehelpers, and for the parsing and instance policy
helpers."""

from __future__ import annotations

from types import SimpleNamespace

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import instancehelpers  # noqa: E402
from instancehelpers import MASTER  # noqa: E402

from ganeti import constants, errors, mcpu  # noqa: E402
from ganeti import objects  # noqa: E402
from ganeti.cmdlib import instance_create as ic  # noqa: E402
from ganeti.cmdlib import instance_utils as iu  # noqa: E402


@pytest.fixture
def ctx(tmp_path):
    return instancehelpers.MakeContext(tmp_path)


_Run = instancehelpers.Run
_CreateOp = instancehelpers.CreateOp
_Refused = instancehelpers.Refused


# --- parsing and policy helpers -----------------------------------------------------------

def test_parse_disk_specs():
    assert ic.ParseDiskSpecs([{"size": "1G"}, {"size": 512, "mode": "ro"}]) == [
        {"size": 1024, "mode": "rw"}, {"size": 512, "mode": "ro"}]
    with pytest.raises(errors.OpPrereqError, match="10X"):
        ic.ParseDiskSpecs([{"size": "10X"}])
    with pytest.raises(errors.OpPrereqError, match="Missing disk size for disk 0"):
        ic.ParseDiskSpecs([{"mode": "rw"}])
    with pytest.raises(errors.OpPrereqError, match="access mode 'rx'"):
        ic.ParseDiskSpecs([{"size": 1, "mode": "rx"}])


def test_parse_nic_specs():
    nics = ic.ParseNicSpecs([{}, {"mac": "AA:00:00:11:22:33", "ip": "192.0.2.9"}])
    assert nics[0]["mac"] == "auto" and nics[0]["ip"] is None
    assert nics[1]["mac"] == "aa:00:00:11:22:33" and nics[1]["ip"] == "192.0.2.9"
    with pytest.raises(errors.OpPrereqError, match="Invalid MAC address 'xx'"):
        ic.ParseNicSpecs([{"mac": "xx"}])
    with pytest.raises(errors.OpPrereqError, match="Invalid IP address '1.2.3'"):
        ic.ParseNicSpecs([{"ip": "1.2.3"}])
    with pytest.raises(errors.OpPrereqError, match="Invalid NIC mode"):
        ic.ParseNicSpecs([{"mode": "weird"}])


def test_ipolicy_violations():
    policy = objects.FillIPolicy(constants.IPOLICY_DEFAULTS, {}) \
        if hasattr(objects, "FillIPolicy") else dict(constants.IPOLICY_DEFAULTS)
    ok = iu.ComputeIPolicySpecViolation(policy, 128, 1, 1, 1, [1024], 1, "file")
    assert ok == []
    bad = iu.ComputeIPolicySpecViolation(policy, 64, 20, 0, 0, [], 1, "diskless")
    assert "memory-size value 64 is not in range [128, 32768]" in bad
    assert "cpu-count value 20 is not in range [1, 8]" in bad
    assert "nic-count value 0 is not in range [1, 8]" in bad
    assert not any("disk" in msg for msg in bad)   # diskless: no disk checks
    bad = iu.ComputeIPolicySpecViolation(dict(policy, **{"disk-templates": ["file"]}),
                                         128, 1, 1, 1, [10], 1, "plain")
    assert any("Disk template plain is not allowed" in msg for msg in bad)
    assert "disk-size value 10 is not in range [1024, 1048576]" in bad


def test_instance_file_dir():
    cluster = SimpleNamespace(file_storage_dir="/srv/fs", shared_file_storage_dir=None)
    assert iu.InstanceFileDir(cluster, "file", "i1") == "/srv/fs/i1"
    assert iu.InstanceFileDir(cluster, "file", "i1", "sub") == "/srv/fs/sub/i1"
    assert iu.InstanceFileDir(cluster, "sharedfile", "i1") == \
        "/srv/ganeti/shared-file-storage/i1"
    for bad in ("../x", "/abs", "."):
        with pytest.raises(errors.OpPrereqError, match="Invalid file storage"):
            iu.InstanceFileDir(cluster, "file", "i1", bad)


# --- create ---------------------------------------------------------------------------------

def test_create_diskless_and_start(ctx):
    result, _ = _Run(ctx, _CreateOp())
    assert result == [MASTER]
    inst = ctx.cfg.GetInstanceInfoByName("inst1.example.com")
    assert inst.admin_state == constants.ADMINST_UP
    assert len(inst.nics) == 1 and inst.nics[0].mac.startswith("aa:00:00:")
    assert "inst1.example.com" in ctx.glm.names(mcpu.locking.LEVEL_INSTANCE)
    names = ctx.rpc.names()
    assert names.index("instance_os_add") < names.index("instance_start")
    assert "blockdev_create" not in names


def test_create_file_instance_creates_disks(ctx):
    _Run(ctx, _CreateOp(disk_template="file", disks=[{"size": 1024}, {"size": 2048}],
                        start=False))
    inst = ctx.cfg.GetInstanceInfoByName("inst1.example.com")
    disks = ctx.cfg.GetInstanceDisks(inst.uuid)
    assert [d.size for d in disks] == [1024, 2048]
    assert [d.logical_id[1] for d in disks] == [
        "/srv/ganeti/file-storage/inst1.example.com/disk0",
        "/srv/ganeti/file-storage/inst1.example.com/disk1"]
    assert inst.admin_state == constants.ADMINST_DOWN
    assert ctx.rpc.names().count("blockdev_create") == 2
    assert "instance_start" not in ctx.rpc.names()


def test_failing_os_script_leaves_no_trace(ctx):
    ctx.rpc.fail["instance_os_add"] = "OS create script failed: log tail ..."
    with pytest.raises(errors.OpExecError, match="OS create script failed"):
        _Run(ctx, _CreateOp(disk_template="file", disks=[{"size": 1024}]))
    assert not ctx.cfg.GetInstanceList()
    assert not ctx.cfg.GetAllDisksInfo()
    assert "inst1.example.com" not in ctx.glm.names(mcpu.locking.LEVEL_INSTANCE)
    names = ctx.rpc.names()
    assert "blockdev_remove" in names and "file_storage_dir_remove" in names


def test_failing_disk_creation_removes_directory(ctx):
    ctx.rpc.fail["blockdev_create"] = "disk full"
    with pytest.raises(errors.OpExecError, match="disk full"):
        _Run(ctx, _CreateOp(disk_template="file", disks=[{"size": 1024}]))
    assert not ctx.cfg.GetInstanceList()
    assert "file_storage_dir_remove" in ctx.rpc.names()


def test_create_refusals(ctx):
    _Refused(ctx, _CreateOp(iallocator="hail"), errors.ECODE_INVAL,
             "either an iallocator.*or the nodes")
    _Refused(ctx, _CreateOp(disk_template="sharedfile", disks=[{"size": 1024}]),
             errors.ECODE_STATE, "not enabled")
    _Refused(ctx, _CreateOp(beparams={"maxmem": 64, "minmem": 64}),
             errors.ECODE_INVAL, "memory-size value 64")
    _Refused(ctx, _CreateOp(beparams={"maxmem": 8000}), errors.ECODE_NORES,
             "Not enough memory on node node1.example.com.*needed 8000 MiB,"
             " available 4096 MiB")
    _Refused(ctx, _CreateOp(disk_template="file", disks=[{"size": 20000}]),
             errors.ECODE_NORES, "Not enough disk space")
    _Refused(ctx, _CreateOp(disks=[{"size": 1}]), errors.ECODE_INVAL,
             "Diskless instances cannot have disks")
    _Refused(ctx, _CreateOp(nics=[{"mac": "nonsense"}]), errors.ECODE_INVAL,
             "Invalid MAC address 'nonsense'")
    ctx.rpc.fail["os_validate"] = "OS 'bogus' not found"
    _Refused(ctx, _CreateOp(os_type="bogus"), errors.ECODE_INVAL, "bogus")
    del ctx.rpc.fail["os_validate"]
    cluster = ctx.cfg.GetClusterInfo()
    cluster.blacklisted_os = ["noop"]
    ctx.cfg.Update(cluster, None)
    serial = ctx.cfg.GetConfigSerialNo()
    with pytest.raises(errors.OpPrereqError, match="blacklisted"):
        _Run(ctx, _CreateOp())
    assert ctx.cfg.GetConfigSerialNo() == serial


def test_create_refuses_bad_names_tags_and_paths(ctx):
    """Issue 15: nothing of these reaches the configuration or the nodes."""
    for op, match in [
            (_CreateOp("i" * 10000), r"instance_name.*host name.*'i{50}'\.\.\."),
            (_CreateOp("../../etc/passwd"), "instance_name.*host name"),
            (_CreateOp(tags=["t" * 129]), "tags.*at most 128"),
            (_CreateOp(tags=["bad tag"]), "invalid characters"),
            (_CreateOp(tags=[f"t{i}" for i in range(constants.MAX_TAGS_PER_OBJ + 1)]),
             "Too many tags"),
            (_CreateOp(nics=[{"link": "br0 up"}]), "nics.*NIC parameters"),
            (_CreateOp(disk_template="file", disks=[{"size": 1}],
                       file_storage_dir="../../etc"), "file_storage_dir.*'\\.\\.'"),
            (_CreateOp(os_type="../noop"), "os_type.*name"),
            (_CreateOp(compress="gzip;reboot"), "compress.*program name")]:
        _Refused(ctx, op, errors.ECODE_INVAL, match)
    assert not ctx.rpc.names()


def test_create_name_used_and_drained_node(ctx):
    _Run(ctx, _CreateOp())
    serial = ctx.cfg.GetConfigSerialNo()
    with pytest.raises(errors.OpPrereqError, match="already in the cluster") as info:
        _Run(ctx, _CreateOp())
    assert info.value.args[1] == errors.ECODE_EXISTS
    node = ctx.cfg.GetNodeInfoByName(MASTER)
    node.drained = True
    ctx.cfg.Update(node, None)
    serial = ctx.cfg.GetConfigSerialNo()
    with pytest.raises(errors.OpPrereqError, match="drained primary node"):
        _Run(ctx, _CreateOp("inst2.example.com"))
    assert ctx.cfg.GetConfigSerialNo() == serial


def test_create_node_state_refusals(ctx):
    node = ctx.cfg.GetNodeInfoByName(MASTER)
    node.vm_capable = False
    ctx.cfg.Update(node, None)
    _Refused(ctx, _CreateOp(), errors.ECODE_STATE, "non-vm_capable primary node")
    node = ctx.cfg.GetNodeInfoByName(MASTER)
    node.vm_capable, node.offline = True, True
    ctx.cfg.Update(node, None)
    _Refused(ctx, _CreateOp(), errors.ECODE_STATE, "offline primary node")
    _Refused(ctx, _CreateOp(pnode="nosuchnode"), errors.ECODE_NOENT,
             "Node 'nosuchnode' not known")
    _Refused(ctx, _CreateOp(name_check=False, ip_check=True), errors.ECODE_INVAL,
             "without a name check")


def test_no_install_does_not_start(ctx):
    _Run(ctx, _CreateOp(no_install=True))
    inst = ctx.cfg.GetInstanceInfoByName("inst1.example.com")
    assert inst.admin_state == constants.ADMINST_DOWN
    assert "instance_os_add" not in ctx.rpc.names()
    assert "instance_start" not in ctx.rpc.names()


def test_failing_start_leaves_no_trace(ctx):
    ctx.rpc.fail["instance_start"] = "Hypervisor error: not enough memory"
    with pytest.raises(errors.OpExecError, match="Could not start instance.*not enough"):
        _Run(ctx, _CreateOp(disk_template="file", disks=[{"size": 1024}]))
    assert not ctx.cfg.GetInstanceList() and not ctx.cfg.GetAllDisksInfo()
    assert "blockdev_remove" in ctx.rpc.names()


def test_given_mac_in_use_is_refused(ctx):
    _Run(ctx, _CreateOp(nics=[{"mac": "aa:00:00:00:00:01"}]))
    serial = ctx.cfg.GetConfigSerialNo()
    with pytest.raises(errors.OpPrereqError, match="aa:00:00:00:00:01.*in use"):
        _Run(ctx, _CreateOp("inst2.example.com", nics=[{"mac": "aa:00:00:00:00:01"}]))
    assert ctx.cfg.GetConfigSerialNo() == serial


def test_manual_placement_ignores_the_vcpu_and_spindle_ratios(ctx):
    # As Ganeti 3.0: the ratios belong to allocation (hail, hbal, hspace);
    # the fake node has 4 CPUs, a ratio of 1 allows 4 vCPUs
    cluster = ctx.cfg.GetClusterInfo()
    cluster.ipolicy[constants.IPOLICY_VCPU_RATIO] = 1.0
    cluster.ipolicy[constants.IPOLICY_SPINDLE_RATIO] = 0.5
    ctx.cfg.Update(cluster)
    for idx in range(3):
        _Run(ctx, _CreateOp(name=f"cpu{idx}.example.com", beparams={"vcpus": 4}))
    assert len(ctx.cfg.GetInstanceList()) == 3


def test_secret_os_params_reach_the_scripts_only(ctx):
    """gnt-instance add --os-parameters-secret: validated and given to the
    create script, never stored."""
    _Run(ctx, _CreateOp(osparams={"message": "hi"}, osparams_secret={"key": "psst"}))
    (validate,) = [call for call in ctx.rpc.calls if call[0] == "os_validate"]
    assert validate[1][-2] == {"message": "hi", "key": "psst"}
    (os_add,) = [call for call in ctx.rpc.calls if call[0] == "instance_os_add"]
    assert os_add[2]["osparams"]["key"] == "psst"
    inst = ctx.cfg.GetInstanceInfoByName("inst1.example.com")
    assert inst.osparams == {"message": "hi"} and "key" not in inst.osparams_private


def test_instance_communication_needs_the_network(ctx):
    """-c yes on a cluster without an instance communication network
    (more in test_instance_communication.py)."""
    _Refused(ctx, _CreateOp(instance_communication=True), errors.ECODE_STATE,
             "no instance communication network")
