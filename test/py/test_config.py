"""Tests for ganeti.config (the ConfigWriter and its helpers)."""

from __future__ import annotations

import json
import os
import shutil
import threading

import pytest

from ganeti import config, constants, errors, objects
from ganeti.config import base as config_base

DATA_DIR = os.path.join(os.path.dirname(__file__), "..", "data")
FIXTURE_30 = os.path.join(DATA_DIR, "cluster_config_3.0.json")

# UUIDs of the 3.0 fixture
N1 = "0b6c5a0e-41f4-4d3e-9a39-7f0d7c1e5a01"
N2 = "0b6c5a0e-41f4-4d3e-9a39-7f0d7c1e5a02"
N3 = "0b6c5a0e-41f4-4d3e-9a39-7f0d7c1e5a03"
G1 = "5e1f0c52-8a0d-4a55-b1d0-2c5b6e0a7001"
G2 = "5e1f0c52-8a0d-4a55-b1d0-2c5b6e0a7002"
I1 = "c3a9b1f0-6d2e-4f7a-8b9c-0d1e2f3a4b01"
I2 = "c3a9b1f0-6d2e-4f7a-8b9c-0d1e2f3a4b02"
I3 = "c3a9b1f0-6d2e-4f7a-8b9c-0d1e2f3a4b03"
D1 = "9d8c7b6a-5f4e-4d3c-8b2a-190817263501"
D2 = "9d8c7b6a-5f4e-4d3c-8b2a-190817263502"
NET = "7a6b5c4d-3e2f-4a1b-9c8d-7e6f5a4b3c01"

MASTER = "node1.example.com"


# --- Fixtures and helpers -----------------------------------------------------------

@pytest.fixture
def cfg_path(tmp_path):
    path = str(tmp_path / "config.data")
    cluster = objects.Cluster(
        cluster_name="cluster.example.com", master_ip="192.0.2.254",
        master_netdev="eth0", volume_group_name="xenvg",
        enabled_hypervisors=[constants.HT_KVM, constants.HT_FAKE],
        mac_prefix="aa:00:00", rsahostkeypub="ssh-rsa AAAA",
        candidate_pool_size=3)
    master = objects.Node(name=MASTER, primary_ip="192.0.2.1")
    config.InitConfig(constants.CONFIG_VERSION, cluster, master, path)
    return path


@pytest.fixture
def cfg(cfg_path):
    return config.ConfigWriter(cfg_path, accept_foreign=True)


@pytest.fixture
def cfg30(tmp_path):
    path = str(tmp_path / "config.data")
    shutil.copy(FIXTURE_30, path)
    return config.ConfigWriter(path, accept_foreign=True)


def _ReadFile(path):
    with open(path, "rb") as fh:
        return fh.read()


def _AddNode(cfg, name, ip, candidate=True, ec_id="job"):
    node = objects.Node(name=name, primary_ip=ip,
                        master_candidate=candidate)
    cfg.AddNode(node, ec_id)
    return node.uuid


def _AddInstance(cfg, name, pnode, nics=(), ec_id="job", **kwargs):
    inst = objects.Instance(name=name, primary_node=pnode, os="debian",
                            hypervisor=constants.HT_KVM, nics=list(nics),
                            **kwargs)
    cfg.AddInstance(inst, ec_id)
    return inst.uuid


def _DrbdDisk(cfg, pnode, snode, ec_id="job", size=1024):
    disk_uuid = cfg.GenerateUniqueID(ec_id)
    minors = cfg.AllocateDRBDMinor([pnode, snode], disk_uuid)
    port = cfg.AllocatePort()
    secret = cfg.GenerateDRBDSecret(ec_id)
    children = [objects.Disk(dev_type=constants.DT_PLAIN, size=size,
                             logical_id=("xenvg", f"{disk_uuid}_data")),
                objects.Disk(dev_type=constants.DT_PLAIN, size=128,
                             logical_id=("xenvg", f"{disk_uuid}_meta"))]
    return objects.Disk(dev_type=constants.DT_DRBD8, uuid=disk_uuid,
                        size=size, children=children,
                        logical_id=(pnode, snode, port, minors[0], minors[1],
                                    secret))


# --- Init, load and save ------------------------------------------------------------

def test_init_load_save_round_trip(cfg_path, cfg):
    assert oct(os.stat(cfg_path).st_mode & 0o777) == "0o640"
    assert cfg.GetClusterName() == "cluster.example.com"
    assert cfg.GetMasterNodeName() == MASTER
    master = cfg.GetMasterNodeInfo()
    assert master.master_candidate and master.serial_no == 1
    (group,) = cfg.GetAllNodeGroupsInfo().values()
    assert group.name == constants.INITIAL_NODE_GROUP_NAME
    assert group.members == [master.uuid]
    assert cfg.VerifyConfig() == []
    assert cfg.GetConfigVersion() == constants.CONFIG_VERSION

    node2 = _AddNode(cfg, "node2.example.com", "192.0.2.2")
    _AddInstance(cfg, "inst1.example.com", node2,
                 nics=[objects.NIC(mac="aa:00:00:00:00:01")])
    reloaded = config.ConfigWriter(cfg_path, accept_foreign=True)
    assert reloaded.GetConfigData().ToDict() == cfg.GetConfigData().ToDict()
    assert sorted(reloaded.GetNodeGroup(group.uuid).members) == \
        sorted([master.uuid, node2])
    assert oct(os.stat(cfg_path).st_mode & 0o777) == "0o640"
    raw = json.loads(_ReadFile(cfg_path))
    assert raw["serial_no"] == cfg.GetConfigSerialNo()
    assert "members" not in raw["nodegroups"][group.uuid]


def test_ganeti_30_config_loads(cfg30):
    assert cfg30.VerifyConfig() == []
    assert cfg30.GetMasterNode() == N1
    assert cfg30.GetInstanceNodes(I2) == (N1, N2)
    assert cfg30.GetInstanceSecondaryNodes(I2) == (N2,)
    assert cfg30.GetInstanceSecondaryNodes(I1) == ()
    assert cfg30.GetInstanceDiskTemplate(I2) == constants.DT_DRBD8
    assert cfg30.GetInstanceDiskTemplate(I3) == constants.DT_DISKLESS
    assert cfg30.GetNodeInstances(N2) == ([I1], [I2])
    assert cfg30.GetInstanceNodeGroups(I2) == frozenset([G1])
    assert cfg30.GetNodeGroupMembersByNodes([N3]) == frozenset([N3])
    assert cfg30.LookupNetwork("net100") == NET
    assert cfg30.GetHypervisorType() == constants.HT_KVM
    assert cfg30.ComputeDRBDMap()[N1] == {0: D2}
    node3 = cfg30.GetNodeInfo(N3)
    assert cfg30.GetNdParams(node3)[constants.ND_SPINDLE_COUNT] == 4
    group2 = cfg30.GetNodeGroup(G2)
    assert cfg30.GetGroupDiskParams(group2)[constants.DT_PLAIN] == \
        {constants.LV_STRIPES: 2}
    assert cfg30.GetGroupIPolicy(group2)[constants.IPOLICY_VCPU_RATIO] == 2.0


def test_serial_bumped_on_each_change(cfg_path, cfg):
    serial = cfg.GetConfigSerialNo()
    cluster_serial = cfg.GetClusterSerialNo()
    node2 = _AddNode(cfg, "node2.example.com", "192.0.2.2")
    assert cfg.GetConfigSerialNo() == serial + 1
    assert cfg.GetClusterSerialNo() == cluster_serial + 1
    node = cfg.GetNodeInfo(node2)
    assert node.serial_no == 1 and node.ctime == node.mtime > 0
    old_mtime = node.mtime
    node.offline = True
    node.master_candidate = False
    cfg.Update(node, None)
    assert node.serial_no == 2  # the caller's copy follows
    stored = cfg.GetNodeInfo(node2)
    assert stored.serial_no == 2 and stored.offline
    assert stored.mtime >= old_mtime
    assert cfg.GetConfigSerialNo() == serial + 2
    inst = _AddInstance(cfg, "i1", node2)
    cfg.MarkInstanceUp(inst)
    assert cfg.GetInstanceInfo(inst).serial_no == 2
    assert cfg.GetConfigSerialNo() == serial + 4
    cfg.MarkInstanceUp(inst)  # no change, no save
    assert cfg.GetConfigSerialNo() == serial + 4
    assert json.loads(_ReadFile(cfg_path))["serial_no"] == serial + 4


@pytest.mark.parametrize("failing", ["rename", "fsync"])
def test_failed_save_leaves_file_untouched(cfg_path, cfg, monkeypatch,
                                           failing):
    before = _ReadFile(cfg_path)

    def _Fail(*_args, **_kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, failing, _Fail)
    with pytest.raises(errors.ConfigurationError) as exc:
        _AddNode(cfg, "node2.example.com", "192.0.2.2")
    monkeypatch.undo()
    assert cfg_path in str(exc.value)
    assert "No space left" in str(exc.value)
    assert _ReadFile(cfg_path) == before
    assert os.listdir(os.path.dirname(cfg_path)) == ["config.data"]


def test_save_hook_and_listeners(cfg_path):
    saved = []
    writer = config.ConfigWriter(cfg_path, accept_foreign=True,
                                 _save_fn=lambda path, text:
                                 saved.append((path, text)))
    heard = []
    writer.AddSaveListener(lambda serial, text: heard.append(serial))
    before = _ReadFile(cfg_path)
    _AddNode(writer, "node2.example.com", "192.0.2.2")
    assert _ReadFile(cfg_path) == before
    assert saved[0][0] == cfg_path
    assert json.loads(saved[0][1])["serial_no"] == writer.GetConfigSerialNo()
    assert heard == [writer.GetConfigSerialNo()]


def test_offline_writer_skips_listeners(cfg_path):
    writer = config.ConfigWriter(cfg_path, offline=True, accept_foreign=True)
    heard = []
    writer.AddSaveListener(lambda serial, text: heard.append(serial))
    writer.WriteConfig()
    assert heard == []


def test_foreign_master_refused(cfg_path, monkeypatch):
    monkeypatch.setattr(config_base, "_MyHostname",
                        lambda: "other.example.com")
    with pytest.raises(errors.ConfigurationError,
                       match=f"lists master node {MASTER}"):
        config.ConfigWriter(cfg_path)
    config.ConfigWriter(cfg_path, accept_foreign=True)
    monkeypatch.setattr(config_base, "_MyHostname", lambda: MASTER.upper())
    config.ConfigWriter(cfg_path)


# --- Broken files ---------------------------------------------------------------------

def _Broken(cfg_path, how):
    with open(cfg_path, encoding="utf-8") as fh:
        text = fh.read()
    raw = json.loads(text)
    if how == "empty":
        text = ""
    elif how == "truncated":
        text = text[:len(text) // 2]
    elif how == "not-json":
        text = "this is not { json"
    elif how == "list":
        text = "[1, 2, 3]"
    elif how == "no-version":
        del raw["version"]
        text = json.dumps(raw)
    elif how == "no-cluster":
        del raw["cluster"]
        text = json.dumps(raw)
    elif how == "unknown-field":
        next(iter(raw["nodes"].values()))["colour"] = "blue"
        text = json.dumps(raw)
    elif how == "wrong-type":
        raw["nodes"] = [1, 2]
        text = json.dumps(raw)
    elif how == "binary":
        with open(cfg_path, "wb") as fh:
            fh.write(b"\xff\xfe\x00garbage")
        return
    with open(cfg_path, "w", encoding="utf-8") as fh:
        fh.write(text)


@pytest.mark.parametrize("how,pattern", [
    ("empty", "empty"),
    ("truncated", "not valid JSON"),
    ("not-json", "not valid JSON"),
    ("list", "does not hold a JSON object"),
    ("no-version", "no valid version"),
    ("no-cluster", "lacks the 'cluster'"),
    ("unknown-field", "colour.*Node"),
    ("wrong-type", "lacks the 'nodes'"),
    ("binary", "UTF-8"),
])
def test_broken_files_named(cfg_path, how, pattern):
    _Broken(cfg_path, how)
    with pytest.raises(errors.ConfigurationError, match=pattern) as exc:
        config.ConfigWriter(cfg_path, accept_foreign=True)
    assert cfg_path in str(exc.value)


def test_unknown_master_refused(cfg_path):
    raw = json.loads(_ReadFile(cfg_path))
    raw["cluster"]["master_node"] = "ghost"
    with open(cfg_path, "w", encoding="utf-8") as fh:
        json.dump(raw, fh)
    with pytest.raises(errors.ConfigurationError, match="unknown master"):
        config.ConfigWriter(cfg_path, accept_foreign=True)


def test_missing_file_named(tmp_path):
    path = str(tmp_path / "nowhere" / "config.data")
    with pytest.raises(errors.ConfigurationError, match="Cannot read") as exc:
        config.ConfigWriter(path, accept_foreign=True)
    assert path in str(exc.value)


@pytest.mark.parametrize("version", [2160000, 3010000, 4000000])
def test_version_mismatch(cfg_path, version):
    raw = json.loads(_ReadFile(cfg_path))
    raw["version"] = version
    with open(cfg_path, "w", encoding="utf-8") as fh:
        json.dump(raw, fh)
    with pytest.raises(errors.ConfigVersionMismatch) as exc:
        config.ConfigWriter(cfg_path, accept_foreign=True)
    assert exc.value.args == (constants.CONFIG_VERSION, version)


def test_other_revision_accepted(cfg_path):
    raw = json.loads(_ReadFile(cfg_path))
    raw["version"] = constants.CONFIG_VERSION + 1
    with open(cfg_path, "w", encoding="utf-8") as fh:
        json.dump(raw, fh)
    config.ConfigWriter(cfg_path, accept_foreign=True)


# --- Adding, duplicates, lookups ------------------------------------------------------

def test_duplicate_node_name_and_uuid(cfg):
    with pytest.raises(errors.OpPrereqError) as exc:
        _AddNode(cfg, MASTER, "192.0.2.9")
    assert MASTER in str(exc.value)
    assert exc.value.args[1] == errors.ECODE_EXISTS
    node = objects.Node(name="node9", primary_ip="192.0.2.9",
                        uuid=cfg.GetMasterNode())
    with pytest.raises(errors.ConfigurationError, match="Duplicate UUID"):
        cfg.AddNode(node, "job")


def test_duplicate_instance_name_and_mac(cfg):
    master = cfg.GetMasterNode()
    _AddInstance(cfg, "inst1", master,
                 nics=[objects.NIC(mac="aa:00:00:00:00:01")])
    with pytest.raises(errors.OpPrereqError, match="inst1") as exc:
        _AddInstance(cfg, "inst1", master)
    assert exc.value.args[1] == errors.ECODE_EXISTS
    with pytest.raises(errors.ConfigurationError, match="aa:00:00:00:00:01"):
        _AddInstance(cfg, "inst2", master,
                     nics=[objects.NIC(mac="aa:00:00:00:00:01")])
    with pytest.raises(errors.ConfigurationError, match="primary node"):
        _AddInstance(cfg, "inst3", "no-such-node")


def test_duplicate_group_and_network_names(cfg):
    with pytest.raises(errors.OpPrereqError, match="default") as exc:
        cfg.AddNodeGroup(objects.NodeGroup(name="default"), "job")
    assert exc.value.args[1] == errors.ECODE_EXISTS
    cfg.AddNetwork(objects.Network(name="net1", network="192.0.2.0/28"),
                   "job")
    with pytest.raises(errors.OpPrereqError, match="net1"):
        cfg.AddNetwork(objects.Network(name="net1", network="10.0.0.0/28"),
                       "job")
    with pytest.raises(errors.OpPrereqError, match="too big"):
        cfg.AddNetwork(objects.Network(name="net2", network="10.0.0.0/8"),
                       "job")


def test_new_objects_are_stamped(cfg):
    master = cfg.GetMasterNode()
    inst = objects.Instance(name="inst1", primary_node=master, os="debian",
                            hypervisor=constants.HT_KVM,
                            nics=[objects.NIC(mac="aa:00:00:00:00:01")])
    cfg.AddInstance(inst, "job")
    stored = cfg.GetInstanceInfo(inst.uuid)
    assert stored.uuid and stored.serial_no == 1
    assert stored.ctime == stored.mtime > 0
    assert stored.nics[0].uuid
    assert stored.admin_state == constants.ADMINST_DOWN
    assert cfg.GetInstanceInfoByName("inst1").uuid == inst.uuid
    assert cfg.GetInstanceName(inst.uuid) == "inst1"


def test_lookups_return_copies(cfg):
    master = cfg.GetMasterNode()
    node = cfg.GetNodeInfo(master)
    node.offline = True
    cluster = cfg.GetClusterInfo()
    cluster.cluster_name = "changed"
    cfg.GetAllNodesInfo()[master].drained = True
    assert not cfg.GetNodeInfo(master).offline
    assert not cfg.GetNodeInfo(master).drained
    assert cfg.GetClusterName() == "cluster.example.com"


def test_update_checks_target(cfg):
    master = cfg.GetMasterNode()
    first = cfg.GetNodeInfo(master)
    second = cfg.GetNodeInfo(master)
    first.ndparams = {constants.ND_SPINDLE_COUNT: 2}
    cfg.Update(first, None)
    second.ndparams = {constants.ND_SPINDLE_COUNT: 3}
    with pytest.raises(errors.ConfigurationError, match="changed since"):
        cfg.Update(second, None)
    assert cfg.GetNodeInfo(master).ndparams == {constants.ND_SPINDLE_COUNT: 2}
    with pytest.raises(errors.ConfigurationError, match="Unknown Node"):
        cfg.Update(objects.Node(name="ghost", uuid="ghost", serial_no=1))
    with pytest.raises(errors.ProgrammerError):
        cfg.Update(objects.NIC(mac="x"))
    cluster = cfg.GetClusterInfo()
    cluster.candidate_pool_size = 7
    cfg.Update(cluster, None)
    assert cfg.GetClusterInfo().candidate_pool_size == 7


def test_lookup_and_expand_names(cfg):
    node2 = _AddNode(cfg, "node2.example.com", "192.0.2.2")
    assert cfg.GetNodeInfoByName("node2.example.com").uuid == node2
    assert cfg.GetNodeName(node2) == "node2.example.com"
    assert cfg.GetNodeNames([node2, cfg.GetMasterNode()]) == \
        ["node2.example.com", MASTER]
    with pytest.raises(errors.OpExecError):
        cfg.GetNodeName("ghost")
    assert cfg.ExpandNodeName("node2") == "node2.example.com"
    assert cfg.ExpandNodeName("node") is None
    _AddInstance(cfg, "web1.example.com", node2)
    assert cfg.ExpandInstanceName("web1") == "web1.example.com"
    assert cfg.ExpandInstanceName("web") is None
    assert sorted(cfg.GetOnlineNodeList()) == sorted(cfg.GetNodeList())
    assert cfg.GetNonVmCapableNodeList() == []
    assert cfg.GetMasterCandidateStats() == (2, 2, 2)
    assert cfg.GetMasterCandidateStats([node2]) == (1, 1, 1)


def test_node_groups(cfg):
    master = cfg.GetMasterNode()
    default = cfg.LookupNodeGroup(None)
    group = objects.NodeGroup(name="rack2",
                              ndparams={constants.ND_SPINDLE_COUNT: 9})
    cfg.AddNodeGroup(group, "job")
    assert cfg.LookupNodeGroup("rack2") == group.uuid
    assert cfg.LookupNodeGroup(group.uuid) == group.uuid
    with pytest.raises(errors.OpPrereqError, match="More than one"):
        cfg.LookupNodeGroup(None)
    with pytest.raises(errors.OpPrereqError, match="nope") as exc:
        cfg.LookupNodeGroup("nope")
    assert exc.value.args[1] == errors.ECODE_NOENT
    cfg.AssignGroupNodes([(master, group.uuid)])
    assert cfg.GetNodeGroup(group.uuid).members == [master]
    assert cfg.GetNodeGroup(default).members == []
    assert cfg.GetNodeInfo(master).group == group.uuid
    assert cfg.GetNdParams(cfg.GetNodeInfo(master))[
        constants.ND_SPINDLE_COUNT] == 9
    with pytest.raises(errors.ConfigurationError, match="still has nodes"):
        cfg.RemoveNodeGroup(group.uuid)
    with pytest.raises(errors.ConfigurationError, match="Unknown node"):
        cfg.AssignGroupNodes([("ghost", default)])
    cfg.RemoveNodeGroup(default)
    assert cfg.GetNodeGroupList() == [group.uuid]
    assert cfg.VerifyConfig() == []
    # Updating a group keeps its members
    stored = cfg.GetNodeGroup(group.uuid)
    stored.members = []
    cfg.Update(stored, None)
    assert cfg.GetNodeGroup(group.uuid).members == [master]


def test_remove_node(cfg):
    node2 = _AddNode(cfg, "node2.example.com", "192.0.2.2")
    cfg.RemoveNode(node2)
    assert cfg.GetNodeInfo(node2) is None
    assert cfg.GetNodeGroup(cfg.LookupNodeGroup(None)).members == \
        [cfg.GetMasterNode()]
    with pytest.raises(errors.ConfigurationError, match="Unknown node"):
        cfg.RemoveNode(node2)


# --- Instances and disks ----------------------------------------------------------------

def test_instance_states(cfg):
    inst = _AddInstance(cfg, "inst1", cfg.GetMasterNode())
    result = cfg.MarkInstanceUp(inst)
    assert result.admin_state == constants.ADMINST_UP and result.disks_active
    cfg.MarkInstanceUserDown(inst)
    stored = cfg.GetInstanceInfo(inst)
    assert stored.admin_state == constants.ADMINST_DOWN
    assert stored.admin_state_source == constants.USER_SOURCE
    cfg.MarkInstanceDown(inst)
    assert cfg.GetInstanceInfo(inst).admin_state_source == \
        constants.ADMIN_SOURCE
    cfg.MarkInstanceOffline(inst)
    stored = cfg.GetInstanceInfo(inst)
    assert stored.admin_state == constants.ADMINST_OFFLINE
    assert not stored.disks_active
    cfg.MarkInstanceDisksActive(inst)
    assert cfg.GetInstanceInfo(inst).disks_active


def test_instance_disks(cfg):
    master = cfg.GetMasterNode()
    node2 = _AddNode(cfg, "node2.example.com", "192.0.2.2")
    inst = _AddInstance(cfg, "inst1", master)
    assert cfg.GetInstanceDiskTemplate(inst) == constants.DT_DISKLESS
    drbd = _DrbdDisk(cfg, master, node2)
    cfg.AddInstanceDisk(inst, drbd)
    plain = objects.Disk(dev_type=constants.DT_PLAIN, size=10,
                         logical_id=("xenvg", "extra"))
    cfg.AddInstanceDisk(inst, plain, idx=0)
    disks = cfg.GetInstanceDisks(inst)
    assert [d.uuid for d in disks] == [plain.uuid, drbd.uuid]
    assert [d.iv_name for d in disks] == ["disk/0", "disk/1"]
    assert disks[1].nodes == [master, node2]
    assert disks[0].nodes == [master]
    assert cfg.GetInstanceNodes(inst) == (master, node2)
    assert cfg.GetInstanceForDisk(drbd.uuid) == inst
    assert cfg.GetInstanceInfo(inst).serial_no == 3
    assert cfg.VerifyConfig() == []
    port = drbd.logical_id[2]
    cfg.RemoveInstanceDisk(inst, drbd.uuid)
    assert cfg.GetDiskInfo(drbd.uuid) is None
    assert cfg.GetInstanceSecondaryNodes(inst) == ()
    assert cfg.AllocatePort() == port  # the DRBD port went back to the pool
    with pytest.raises(errors.ConfigurationError, match="not attached"):
        cfg.RemoveInstanceDisk(inst, drbd.uuid)
    with pytest.raises(errors.ConfigurationError, match="index"):
        cfg.AddInstanceDisk(inst, objects.Disk(dev_type=constants.DT_PLAIN,
                                               size=1), idx=7)


def test_remove_instance_frees_disks_ports_ips(cfg):
    master = cfg.GetMasterNode()
    net = objects.Network(name="net1", network="192.0.2.0/28")
    cfg.AddNetwork(net, "job")
    address = cfg.GenerateIp(net.uuid, "job")
    inst = _AddInstance(cfg, "inst1", master, network_port=cfg.AllocatePort(),
                        nics=[objects.NIC(mac="aa:00:00:00:00:01", ip=address,
                                          network=net.uuid)])
    disk = objects.Disk(dev_type=constants.DT_PLAIN, size=10,
                        logical_id=("xenvg", "lv1"))
    cfg.AddInstanceDisk(inst, disk)
    port = cfg.GetInstanceInfo(inst).network_port
    cfg.RemoveInstance(inst)
    assert cfg.GetInstanceInfo(inst) is None
    assert cfg.GetDiskInfo(disk.uuid) is None
    assert port in cfg.GetClusterInfo().tcpudp_port_pool
    assert cfg.GenerateIp(net.uuid, "job2") == address
    with pytest.raises(errors.ConfigurationError, match="Unknown instance"):
        cfg.RemoveInstance(inst)


def test_rename_instance(cfg):
    inst = _AddInstance(cfg, "old.example.com", cfg.GetMasterNode())
    disk = objects.Disk(dev_type=constants.DT_FILE, size=10, logical_id=(
        "loop", "/srv/ganeti/file-storage/old.example.com/disk0"))
    cfg.AddInstanceDisk(inst, disk)
    _AddInstance(cfg, "other.example.com", cfg.GetMasterNode())
    with pytest.raises(errors.OpPrereqError, match="other.example.com"):
        cfg.RenameInstance(inst, "other.example.com")
    cfg.RenameInstance(inst, "new.example.com")
    assert cfg.GetInstanceName(inst) == "new.example.com"
    assert cfg.GetDiskInfo(disk.uuid).logical_id[1] == \
        "/srv/ganeti/file-storage/new.example.com/disk0"


# --- Reservations --------------------------------------------------------------------------

def test_mac_reservations(cfg):
    cfg.ReserveMAC("aa:00:00:00:00:01", "job1")
    with pytest.raises(errors.ReservationError, match="aa:00:00:00:00:01"):
        cfg.ReserveMAC("aa:00:00:00:00:01", "job2")
    cfg.DropECReservations("job1")
    cfg.ReserveMAC("aa:00:00:00:00:01", "job2")
    _AddInstance(cfg, "inst1", cfg.GetMasterNode(),
                 nics=[objects.NIC(mac="aa:00:00:00:00:02")])
    with pytest.raises(errors.ReservationError, match="in use"):
        cfg.ReserveMAC("aa:00:00:00:00:02", "job3")
    mac = cfg.GenerateMAC(None, "job4")
    assert mac.startswith("aa:00:00:") and len(mac) == 17
    with pytest.raises(errors.ReservationError):
        cfg.ReserveMAC(mac, "job5")


def test_generated_macs_unique_across_threads(cfg):
    results = []
    lock = threading.Lock()

    def _Work(ec_id):
        macs = [cfg.GenerateMAC(None, ec_id) for _ in range(50)]
        with lock:
            results.extend(macs)

    threads = [threading.Thread(target=_Work, args=(f"job{i}",))
               for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == len(set(results)) == 400


def test_network_mac_prefix(cfg):
    net = objects.Network(name="net1", network="192.0.2.0/28",
                          mac_prefix="aa:bb:cc")
    cfg.AddNetwork(net, "job")
    assert cfg.GenerateMAC(net.uuid, "job").startswith("aa:bb:cc:")


def test_ip_reservations_and_commit(cfg):
    master = cfg.GetMasterNode()
    net = objects.Network(name="net1", network="192.0.2.0/29",
                          gateway="192.0.2.1")
    cfg.AddNetwork(net, "job0")
    first = cfg.GenerateIp(net.uuid, "job1")
    assert first == "192.0.2.2"
    assert cfg.GenerateIp(net.uuid, "job2") == "192.0.2.3"
    with pytest.raises(errors.ReservationError, match="192.0.2.2"):
        cfg.ReserveIp(net.uuid, first, "job3")
    with pytest.raises(errors.ReservationError, match="192.0.2.1"):
        cfg.ReserveIp(net.uuid, "192.0.2.1", "job3")  # the gateway
    with pytest.raises(errors.ReservationError, match="not in network"):
        cfg.ReserveIp(net.uuid, "10.0.0.1", "job3")
    cfg.DropECReservations("job2")
    cfg.ReserveIp(net.uuid, "192.0.2.3", "job3")

    # Adding the instance with job1's context commits its IP
    inst = _AddInstance(cfg, "inst1", master, ec_id="job1", nics=[
        objects.NIC(mac="aa:00:00:00:00:01", ip=first, network=net.uuid)])
    assert cfg.GetNetwork(net.uuid).reservations[2] == "1"
    assert cfg.GetNetwork(net.uuid).serial_no == 2
    with pytest.raises(errors.ReservationError, match="in use"):
        cfg.ReserveIp(net.uuid, first, "job4")
    cfg.ReserveIp(net.uuid, first, "job4", check=False)
    cfg.DropECReservations("job4")
    assert cfg.VerifyConfig() == []

    # Releasing is committed by an update with the same context
    stored = cfg.GetInstanceInfo(inst)
    cfg.ReleaseIp(net.uuid, first, "job5")
    stored.nics[0].ip = None
    stored.nics[0].network = None
    cfg.Update(stored, None, ec_id="job5")
    assert cfg.GetNetwork(net.uuid).reservations[2] == "0"


def test_unique_ids_lvs_secrets(cfg):
    uuid = cfg.GenerateUniqueID("job1")
    node = objects.Node(name="node2", primary_ip="192.0.2.2", uuid=uuid)
    with pytest.raises(errors.ConfigurationError, match="another job"):
        cfg.AddNode(node, "job2")
    cfg.AddNode(node, "job1")
    assert cfg.GetNodeInfo(uuid).name == "node2"
    cfg.ReserveLV("xenvg/lv1", "job1")
    with pytest.raises(errors.ReservationError, match="xenvg/lv1"):
        cfg.ReserveLV("xenvg/lv1", "job2")
    inst = _AddInstance(cfg, "inst1", uuid)
    cfg.AddInstanceDisk(inst, objects.Disk(dev_type=constants.DT_PLAIN,
                                           size=1,
                                           logical_id=("xenvg", "used")))
    with pytest.raises(errors.ReservationError, match="in use"):
        cfg.ReserveLV("xenvg/used", "job3")
    secret = cfg.GenerateDRBDSecret("job1")
    assert len(secret) == constants.DRBD_SECRET_LENGTH
    cfg.DropECReservations("job1")
    cfg.ReserveLV("xenvg/lv1", "job2")


def test_drbd_minor_allocation(cfg):
    master = cfg.GetMasterNode()
    node2 = _AddNode(cfg, "node2.example.com", "192.0.2.2")
    inst = _AddInstance(cfg, "inst1", master)
    assert cfg.AllocateDRBDMinor([master, node2], "disk-a") == [0, 0]
    assert cfg.AllocateDRBDMinor([master, node2, master], "disk-b") == \
        [1, 1, 2]
    assert cfg.ComputeDRBDMap()[master] == {0: "disk-a", 1: "disk-b",
                                             2: "disk-b"}
    cfg.ReleaseDRBDMinors("disk-a")
    assert cfg.AllocateDRBDMinor([master], "disk-c") == [0]
    cfg.ReleaseDRBDMinors("disk-b")
    cfg.ReleaseDRBDMinors("disk-c")

    # A disk in the configuration holds its minors; gaps are reused
    drbd = _DrbdDisk(cfg, master, node2)
    assert drbd.logical_id[3:5] == (0, 0)
    cfg.AddInstanceDisk(inst, drbd)
    assert cfg.ComputeDRBDMap()[node2] == {0: drbd.uuid}
    assert cfg.AllocateDRBDMinor([node2], "disk-d") == [1]
    with pytest.raises(errors.ConfigurationError, match="Unknown node"):
        cfg.AllocateDRBDMinor(["ghost"], "disk-e")
    # Minors allocated for a job go when the job's reservations do
    assert cfg.AllocateDRBDMinor([node2], "disk-f", ec_id="job9") == [2]
    cfg.DropECReservations("job9")
    assert cfg.AllocateDRBDMinor([node2], "disk-g") == [2]


def test_allocate_port(cfg_path, cfg):
    assert cfg.AllocatePort() == constants.FIRST_DRBD_PORT
    assert cfg.AllocatePort() == constants.FIRST_DRBD_PORT + 1
    cluster = cfg.GetClusterInfo()
    assert cluster.highest_used_port == constants.FIRST_DRBD_PORT + 1
    cluster.tcpudp_port_pool.add(constants.FIRST_DRBD_PORT)
    cfg.Update(cluster, None)
    assert cfg.AllocatePort() == constants.FIRST_DRBD_PORT
    raw = json.loads(_ReadFile(cfg_path))
    assert raw["cluster"]["highest_used_port"] == constants.FIRST_DRBD_PORT + 1
    assert raw["cluster"]["tcpudp_port_pool"] == []


# --- Verification -------------------------------------------------------------------------

def _Healthy():
    return config.LoadConfigData(FIXTURE_30)


def _Nic(data, inst_uuid):
    return data.instances[inst_uuid].nics[0]


def _DupUuid(data):
    net = data.networks.pop(NET)
    net.uuid = I1
    data.networks[I1] = net


def _DupMac(data):
    nic = _Nic(data, I1).Copy()
    nic.uuid = "new-nic"
    data.instances[I3].nics = [nic]


def _DupIp(data):
    nic = _Nic(data, I2).Copy()
    nic.uuid = "new-nic"
    nic.mac = "aa:00:01:99:99:99"
    data.instances[I3].nics = [nic]


def _DupMinor(data):
    disk = data.disks[D2].Copy()
    disk.uuid = "d3"
    disk.logical_id = (N1, N3, 11002, 0, 1, "x" * 40)
    data.disks["d3"] = disk
    data.cluster.tcpudp_port_pool = set()


def _SetIpolicy(data):
    data.cluster.ipolicy[constants.IPOLICY_VCPU_RATIO] = -1


def _DrbdUnknownNode(data):
    lid = list(data.disks[D2].logical_id)
    lid[1] = "ghost-node"
    data.disks[D2].logical_id = tuple(lid)


VERIFY_CASES = [
    ("master-missing", lambda d: setattr(d.cluster, "master_node", "ghost"),
     "invalid master node 'ghost'"),
    ("master-not-candidate",
     lambda d: setattr(d.nodes[N1], "master_candidate", False),
     "master node node1.example.org is not a master candidate"),
    ("candidates", lambda d: setattr(d.nodes[N3], "master_candidate", False),
     "not enough master candidates: 2 of 3"),
    ("primary-node",
     lambda d: setattr(d.instances[I1], "primary_node", "ghost"),
     "instance web1.example.org has invalid primary node 'ghost'"),
    ("missing-disk", lambda d: d.instances[I3].disks.append("ghost-disk"),
     "uses unknown disk 'ghost-disk'"),
    ("shared-disk", lambda d: d.instances[I3].disks.append(D1),
     f"disk {D1} is used by several instances"),
    ("dup-node-name",
     lambda d: setattr(d.nodes[N2], "name", "node1.example.org"),
     "duplicate node name 'node1.example.org'"),
    ("dup-instance-name",
     lambda d: setattr(d.instances[I3], "name", "web1.example.org"),
     "duplicate instance name 'web1.example.org'"),
    ("dup-uuid", _DupUuid, f"duplicate UUID {I1}"),
    ("key-mismatch", lambda d: setattr(d.nodes[N3], "uuid", "other"),
     f"object stored under key '{N3}' has UUID 'other'"),
    ("dup-mac", _DupMac, "duplicate MAC address aa:00:01:00:00:01"),
    ("bad-mac", lambda d: setattr(_Nic(d, I1), "mac", "zz:zz"),
     "invalid MAC 'zz:zz'"),
    ("dup-ip", _DupIp, "duplicate IP address 203.0.113.10"),
    ("ip-not-reserved", lambda d: setattr(_Nic(d, I2), "ip", "203.0.113.77"),
     "IP 203.0.113.77 is not reserved in network net100"),
    ("ip-outside", lambda d: setattr(_Nic(d, I2), "ip", "198.51.100.7"),
     "IP 198.51.100.7 is outside network net100"),
    ("nic-network", lambda d: setattr(_Nic(d, I1), "network", "ghost-net"),
     "uses unknown network 'ghost-net'"),
    ("nic-mode",
     lambda d: _Nic(d, I1).nicparams.update({constants.NIC_MODE: "tunnel"}),
     "Invalid NIC mode: 'tunnel'"),
    ("group-network", lambda d: d.nodegroups[G2].networks.update(ghost={}),
     "node group rack2 is connected to unknown network 'ghost'"),
    ("unknown-group", lambda d: setattr(d.nodes[N3], "group", "ghost-group"),
     "node node3.example.org is in unknown node group 'ghost-group'"),
    ("group-members", lambda d: setattr(d.nodegroups[G1], "members", [N1]),
     "node group default lists members"),
    ("node-flags", lambda d: setattr(d.nodes[N2], "offline", True),
     "node node2.example.org has conflicting flags: master_candidate,"
     " offline"),
    ("node-port", lambda d: setattr(d.nodes[N2], "noded_port", 70000),
     "invalid noded_port 70000"),
    ("drbd-minor", _DupMinor,
     f"DRBD minor 0 on node {N1} is used by both disk {D2} and disk d3"),
    ("drbd-node", _DrbdUnknownNode, "uses unknown node 'ghost-node'"),
    ("dup-port", lambda d: setattr(d.instances[I1], "network_port", 11000),
     "TCP/UDP port 11000 is used by"),
    ("port-too-high",
     lambda d: setattr(d.instances[I1], "network_port", 14000),
     "uses port 14000, above the highest used port 11003"),
    ("pool-port-used", lambda d: d.cluster.tcpudp_port_pool.add(11001),
     "free port pool holds port 11001, which is in use"),
    ("hv-global", lambda d: d.instances[I1].hvparams.update(
        {constants.HV_MIGRATION_PORT: 1}),
     "sets global hypervisor parameter(s) migration_port"),
    ("hv-not-enabled",
     lambda d: setattr(d.instances[I1], "hypervisor", constants.HT_XEN_PVM),
     "uses hypervisor 'xen-pvm', which is not enabled"),
    ("ipolicy", _SetIpolicy, "vcpu-ratio must be a positive number"),
    ("group-ipolicy", lambda d: d.nodegroups[G2].ipolicy.update(
        {constants.IPOLICY_DTS: ["floppy"]}),
     "node group rack2 instance policy"),
    ("admin-state",
     lambda d: setattr(d.instances[I1], "admin_state", "sleeping"),
     "invalid admin state 'sleeping'"),
    ("network-gateway",
     lambda d: setattr(d.networks[NET], "gateway", "10.0.0.1"),
     "gateway 10.0.0.1 is outside the network"),
    ("network-map",
     lambda d: setattr(d.networks[NET], "reservations", "01"),
     "network net100: The reservations map has 2 entries"),
]


def test_healthy_config_verifies():
    assert config.VerifyConfigData(_Healthy()) == []


@pytest.mark.parametrize("mutate,expected",
                         [case[1:] for case in VERIFY_CASES],
                         ids=[case[0] for case in VERIFY_CASES])
def test_verify_finds_problem(mutate, expected):
    data = _Healthy()
    mutate(data)
    problems = config.VerifyConfigData(data)
    assert any(expected in problem for problem in problems), problems


def test_verify_reports_each_nic_with_the_same_bad_parameters():
    # NIC parameter checks are memoised per distinct parameter set: every
    # NIC using a bad set is still named
    data = _Healthy()
    for uuid in (I1, I2):
        _Nic(data, uuid).nicparams.update({constants.NIC_MODE: "tunnel"})
    problems = [p for p in config.VerifyConfigData(data) if "'tunnel'" in p]
    names = sorted(data.instances[uuid].name for uuid in (I1, I2))
    assert len(problems) == 2, problems
    assert all(any(name in p for p in problems) for name in names)


def test_verify_reports_every_problem(cfg30):
    data = cfg30._config_data
    data.cluster.master_node = "ghost"
    data.instances[I1].primary_node = "ghost"
    data.nodes[N3].group = "ghost-group"
    problems = cfg30.VerifyConfig()
    assert len(problems) >= 3
    assert any("master node" in p for p in problems)
    assert any("primary node" in p for p in problems)
    assert any("ghost-group" in p for p in problems)


# --- ssconf ---------------------------------------------------------------------------------

def test_ssconf_values(cfg30):
    node = cfg30.GetNodeInfo(N2)
    node.noded_port = 18112
    node.noded_address = "127.0.1.2"
    cfg30.Update(node, None)
    values = cfg30.GetSsconfValues()
    assert set(values) == constants.VALID_SS_KEYS
    assert all(isinstance(value, str) for value in values.values())
    assert values[constants.SS_CLUSTER_NAME] == "cluster.example.org"
    assert values[constants.SS_MASTER_NODE] == "node1.example.org"
    assert values[constants.SS_NODE_LIST].splitlines() == [
        "node1.example.org", "node2.example.org", "node3.example.org"]
    assert values[constants.SS_NODE_PRIMARY_IPS].splitlines()[0] == \
        "node1.example.org 192.0.2.1"
    assert values[constants.SS_NODE_SECONDARY_IPS].splitlines()[1] == \
        "node2.example.org 198.51.100.2"
    assert values[constants.SS_MASTER_CANDIDATES_CERTS].splitlines() == [
        f"{N1}=aa11", f"{N2}=bb22"]
    assert values[constants.SS_INSTANCE_LIST].splitlines() == [
        "db1.example.org", "test1.example.org", "web1.example.org"]
    assert values[constants.SS_NODEGROUPS].splitlines() == [
        f"{G1} default", f"{G2} rack2"]
    assert values[constants.SS_NETWORKS] == f"{NET} net100"
    assert values[constants.SS_HYPERVISOR_LIST] == "kvm\nfake"
    assert values[constants.SS_CLUSTER_TAGS] == "prod"
    assert values[constants.SS_UID_POOL] == "4000-4009"
    assert values[constants.SS_MASTER_NETMASK] == "24"
    assert values[constants.SS_PRIMARY_IP_FAMILY] == "2"
    assert values[constants.SS_MAINTAIN_NODE_HEALTH] == "False"
    assert values[constants.SS_NODE_VM_CAPABLE].splitlines()[0] == \
        "node1.example.org=True"
    assert values[constants.SS_SSH_PORTS].splitlines()[2] == \
        "node3.example.org=22"
    assert "kernel_path=/boot/vmlinuz-guest" in \
        values[constants.SS_HVPARAMS_XEN_KVM].splitlines()
    assert values[constants.SS_RELEASE_VERSION] == constants.RELEASE_VERSION
    assert values[constants.SS_NODE_NODED_ENDPOINTS] == \
        "node2.example.org 127.0.1.2:18112"
    assert values[constants.SS_NODE_CONFD_ENDPOINTS] == \
        f"node2.example.org 127.0.1.2:{constants.DEFAULT_CONFD_PORT}"
    assert values[constants.SS_OFFLINE_NODES] == ""


def test_ssconf_values_readable_by_ssconf(cfg30, tmp_path):
    from ganeti import ssconf
    node = cfg30.GetNodeInfo(N3)
    node.noded_address = "::1"
    node.noded_port = 18113
    node.confd_port = 18143
    cfg30.Update(node, None)
    store = ssconf.SimpleStore(str(tmp_path))
    store.WriteFiles(cfg30.GetSsconfValues())
    assert store.GetNodedEndpoints() == {"node3.example.org": ("::1", 18113)}
    assert store.GetConfdEndpoints() == {"node3.example.org": ("::1", 18143)}
    assert store.GetSshPortMap()["node1.example.org"] == 22
    assert store.GetNodesVmCapable()["node2.example.org"] is True


def test_format_uid_pool():
    assert config.FormatUidPool([[1, 1], [5, 9]], ", ") == "1, 5-9"
