"""Tests for the configuration merging of cluster-merge
(ganeti.tools.cluster_merge_config) and the tool's plan and rollback
texts (ganeti.tools.cluster_merge)."""

from __future__ import annotations

import pytest

from ganeti import config, constants, errors, objects, serializer, ssh
from ganeti.config.verify import ComputeDRBDMap, VerifyConfigData
from ganeti.tools import cluster_merge
from ganeti.tools import cluster_merge_config as cmc


def _NewConfig(tmp_path, tag: str, net: str):
    """A cluster ``cluster-<tag>`` with master ``<tag>1`` and node ``<tag>2``."""
    path = str(tmp_path / f"config-{tag}.data")
    cluster = objects.Cluster(
        cluster_name=f"cluster-{tag}.example.com", master_ip=f"{net}.254",
        master_netdev="lo", volume_group_name="xenvg",
        enabled_hypervisors=[constants.HT_FAKE, constants.HT_KVM],
        enabled_disk_templates=[constants.DT_DRBD8, constants.DT_PLAIN,
                                constants.DT_DISKLESS],
        mac_prefix="aa:00:00", rsahostkeypub="ssh-rsa AAAA", candidate_pool_size=3,
        drbd_usermode_helper="/bin/true")
    master = objects.Node(name=f"{tag}1.example.com", primary_ip=f"{net}.1")
    config.InitConfig(constants.CONFIG_VERSION, cluster, master, path)
    cfg = config.ConfigWriter(path, accept_foreign=True)
    cfg.AddNode(objects.Node(name=f"{tag}2.example.com", primary_ip=f"{net}.2",
                             master_candidate=True), "job")
    return cfg


def _NodeUuid(cfg, name):
    return cfg.GetNodeInfoByName(name).uuid


def _AddDrbdInstance(cfg, name, pnode, snode, mac):
    pnode, snode = _NodeUuid(cfg, pnode), _NodeUuid(cfg, snode)
    inst = objects.Instance(name=name, primary_node=pnode, os="debian",
                            hypervisor=constants.HT_FAKE,
                            nics=[objects.NIC(mac=mac)])
    cfg.AddInstance(inst, "job")
    disk_uuid = cfg.GenerateUniqueID("job")
    minors = cfg.AllocateDRBDMinor([pnode, snode], disk_uuid)
    port = cfg.AllocatePort()
    children = [objects.Disk(dev_type=constants.DT_PLAIN, size=1024,
                             logical_id=("xenvg", f"{disk_uuid}_data")),
                objects.Disk(dev_type=constants.DT_PLAIN, size=128,
                             logical_id=("xenvg", f"{disk_uuid}_meta"))]
    disk = objects.Disk(dev_type=constants.DT_DRBD8, uuid=disk_uuid, size=1024,
                        children=children,
                        logical_id=(pnode, snode, port, minors[0], minors[1],
                                    cfg.GenerateDRBDSecret("job")))
    cfg.AddInstanceDisk(inst.uuid, disk)
    return inst.uuid


def _AddDiskless(cfg, name, pnode, mac, **kwargs):
    inst = objects.Instance(name=name, primary_node=_NodeUuid(cfg, pnode), os="debian",
                            hypervisor=constants.HT_FAKE,
                            nics=[objects.NIC(mac=mac)], **kwargs)
    cfg.AddInstance(inst, "job")
    return inst.uuid


@pytest.fixture
def clusters(tmp_path):
    ours = _NewConfig(tmp_path, "a", "192.0.2")
    theirs = _NewConfig(tmp_path, "b", "198.51.100")
    _AddDrbdInstance(ours, "inst-a1.example.com", "a1.example.com", "a2.example.com",
                     "aa:00:00:00:00:01")
    _AddDrbdInstance(theirs, "inst-b1.example.com", "b1.example.com", "b2.example.com",
                     "aa:00:00:00:00:02")
    _AddDiskless(theirs, "inst-b2.example.com", "b2.example.com", "aa:00:00:00:00:03")
    return ours, theirs


def _Data(cfg):
    return cfg.GetConfigData().Copy()


def _Problems(ours, theirs, groups=None):
    return cmc.CheckMerge(_Data(ours), _Data(theirs), groups)


# --- refusals ------------------------------------------------------------------------

def test_same_group_name_needs_a_mode(clusters):
    ours, theirs = clusters
    problems = _Problems(ours, theirs)
    assert problems == ["node group 'default' exists in both this cluster and"
                        " cluster-b.example.com; use --groups=merge or --groups=rename"]
    with pytest.raises(errors.OpPrereqError, match="node group 'default'") as err:
        cmc.MergeConfig(_Data(ours), _Data(theirs))
    assert errors.GetErrorCode(err.value) == errors.ECODE_NOTUNIQUE
    assert _Problems(ours, theirs, cmc.GROUPS_MERGE) == []
    with pytest.raises(errors.OpPrereqError, match="Invalid node group mode 'join'"):
        cmc.CheckMerge(_Data(ours), _Data(theirs), "join")


def test_name_clashes_are_all_listed(clusters):
    ours, theirs = clusters
    theirs.AddNode(objects.Node(name="A2.example.com", primary_ip="198.51.100.3"), "j")
    theirs.AddNode(objects.Node(name="b3.example.com", primary_ip="192.0.2.1"), "j")
    _AddDiskless(theirs, "inst-a1.example.com", "b1.example.com", "aa:00:00:00:00:04")
    _AddDiskless(theirs, "inst-b4.example.com", "b1.example.com", "aa:00:00:00:00:01")
    problems = _Problems(ours, theirs, cmc.GROUPS_MERGE)
    assert "node A2.example.com is in both this cluster and cluster-b.example.com" \
        in problems
    assert any("node b3.example.com" in p and "192.0.2.1:1811" in p
               and "a1.example.com" in p for p in problems), problems
    assert "instance inst-a1.example.com is in both this cluster and" \
           " cluster-b.example.com" in problems
    assert any("MAC address aa:00:00:00:00:01 of instance inst-b4.example.com" in p
               for p in problems), problems
    assert len(problems) == 4


def test_self_merge_and_version_refused(clusters):
    ours, _ = clusters
    assert _Problems(ours, ours, cmc.GROUPS_MERGE) == [
        f"cluster cluster-a.example.com is this cluster (same cluster UUID"
        f" {ours.GetClusterInfo().uuid})"]
    other = _Data(clusters[1])
    other.version += 10000
    problems = cmc.CheckMerge(_Data(ours), other, cmc.GROUPS_MERGE)
    assert any("configuration format version" in p for p in problems), problems


def test_offline_node_refused(clusters):
    ours, theirs = clusters
    node = theirs.GetNodeInfoByName("b2.example.com")
    node.offline = True
    node.master_candidate = False
    theirs.Update(node)
    assert "node b2.example.com of cluster-b.example.com is offline; bring it" \
           " online or remove it from its cluster first" in \
        _Problems(ours, theirs, cmc.GROUPS_MERGE)


def test_incompatible_parameters_refused(clusters):
    ours, theirs = clusters
    cluster = theirs.GetClusterInfo()
    cluster.beparams[constants.PP_DEFAULT][constants.BE_MAXMEM] = 4096
    cluster.enabled_disk_templates = [constants.DT_DRBD8, constants.DT_PLAIN,
                                      constants.DT_DISKLESS, constants.DT_FILE]
    cluster.volume_group_name = "othervg"
    theirs.Update(cluster)
    mine = ours.GetClusterInfo()
    mine.enabled_hypervisors = [constants.HT_KVM]
    ours.Update(mine)
    problems = _Problems(ours, theirs, cmc.GROUPS_MERGE)
    assert any("inst-b2.example.com" in p and "backend parameter maxmem would change"
               " from 4096 to 128" in p for p in problems), problems
    assert any("inst-b1.example.com" in p and "hypervisor fake is not enabled here"
               in p for p in problems), problems
    assert any("volume_group_name differs" in p and "'othervg'" in p
               for p in problems), problems


def test_os_params_only_they_have_are_taken(clusters):
    ours, theirs = clusters
    cluster = theirs.GetClusterInfo()
    cluster.osparams["debian"] = {"dhcp": "yes"}
    theirs.Update(cluster)
    plan = cmc.MergeConfig(_Data(ours), _Data(theirs), cmc.GROUPS_MERGE)
    assert plan.data.cluster.osparams["debian"] == {"dhcp": "yes"}
    # ... but a different value of ours would change their instances
    mine = ours.GetClusterInfo()
    mine.osparams["debian"] = {"dhcp": "no"}
    ours.Update(mine)
    problems = _Problems(ours, theirs, cmc.GROUPS_MERGE)
    assert any("OS parameter dhcp would change from 'yes' to 'no'" in p
               for p in problems), problems


# --- merging --------------------------------------------------------------------------

def _Check(plan):
    assert VerifyConfigData(plan.data) == []
    _, duplicates = ComputeDRBDMap(plan.data)
    assert duplicates == []


def test_merge_groups_merge(clusters):
    ours, theirs = clusters
    before_ours = _Data(ours).ToDict()
    before_theirs = _Data(theirs).ToDict()
    plan = cmc.MergeConfig(_Data(ours), _Data(theirs), cmc.GROUPS_MERGE)
    _Check(plan)
    data = plan.data
    # the inputs are untouched
    assert _Data(ours).ToDict() == before_ours
    assert _Data(theirs).ToDict() == before_theirs
    assert sorted(n.name for n in data.nodes.values()) == [
        "a1.example.com", "a2.example.com", "b1.example.com", "b2.example.com"]
    assert sorted(i.name for i in data.instances.values()) == [
        "inst-a1.example.com", "inst-b1.example.com", "inst-b2.example.com"]
    (group,) = data.nodegroups.values()
    assert sorted(group.members) == sorted(data.nodes)
    assert data.cluster.master_node == ours.GetMasterNode()
    for name in ("b1.example.com", "b2.example.com"):
        node = next(n for n in data.nodes.values() if n.name == name)
        assert node.offline and not node.master_candidate
        # UUIDs are kept where they do not clash
        assert node.uuid == _NodeUuid(theirs, name)
    assert [n.name for n in plan.nodes] == ["b1.example.com", "b2.example.com"]
    assert plan.nodes[0].primary_ip == "198.51.100.1"
    assert plan.nodes[0].ssh_port == 22
    assert plan.instances == ["inst-b1.example.com", "inst-b2.example.com"]


def test_merge_ports_renumbered_only_where_used(clusters):
    ours, theirs = clusters
    plan = cmc.MergeConfig(_Data(ours), _Data(theirs), cmc.GROUPS_MERGE)
    _Check(plan)
    ports = [d.logical_id[2] for d in plan.data.disks.values()
             if d.dev_type == constants.DT_DRBD8]
    # both clusters gave their first disk the first port
    assert len(ports) == len(set(ports)) == 2
    assert constants.FIRST_DRBD_PORT in ports
    assert plan.data.cluster.highest_used_port == max(ports)
    assert any("port 11000 is used here, new port 11001" in n for n in plan.notes)
    # minors stay: the nodes differ
    minors = sorted(d.logical_id[3:5] for d in plan.data.disks.values()
                    if d.dev_type == constants.DT_DRBD8)
    assert minors == [(0, 0), (0, 0)]
    # a port free in our pool but used by them leaves the pool
    mine = _Data(ours)
    mine.cluster.highest_used_port = 11005
    mine.cluster.tcpudp_port_pool = {11002, 11003}
    other = _Data(theirs)
    disk = next(d for d in other.disks.values() if d.dev_type == constants.DT_DRBD8)
    disk.logical_id = (*disk.logical_id[:2], 11003, *disk.logical_id[3:])
    plan = cmc.MergeConfig(mine, other, cmc.GROUPS_MERGE)
    _Check(plan)
    assert plan.data.cluster.tcpudp_port_pool == {11002}


def test_merge_groups_rename(clusters):
    ours, theirs = clusters
    plan = cmc.MergeConfig(_Data(ours), _Data(theirs), cmc.GROUPS_RENAME)
    _Check(plan)
    groups = {g.name: g for g in plan.data.nodegroups.values()}
    assert sorted(groups) == ["default", "default-cluster-b"]
    names = sorted(plan.data.nodes[u].name for u in groups["default-cluster-b"].members)
    assert names == ["b1.example.com", "b2.example.com"]
    assert "node group default of cluster-b.example.com is renamed to" \
           " default-cluster-b" in plan.notes
    assert cmc.RenamedGroup("default", "cluster-b.example.com",
                            ["default", "default-cluster-b"]) == "default-cluster-b2"


def test_clashing_uuids_are_replaced_everywhere(clusters):
    ours, theirs = clusters
    mine, other = _Data(ours), _Data(theirs)
    # Their node b1 and their instance get UUIDs used here
    b1 = next(n for n in other.nodes.values() if n.name == "b1.example.com")
    taken = next(iter(mine.nodes))
    old = b1.uuid
    text = serializer.DumpJson(other.ToDict()).replace(old, taken)
    other = objects.ConfigData.FromDict(serializer.LoadJson(text))
    plan = cmc.MergeConfig(mine, other, cmc.GROUPS_MERGE)
    _Check(plan)
    new_b1 = next(n for n in plan.data.nodes.values() if n.name == "b1.example.com")
    assert new_b1.uuid not in (taken, old)
    inst = next(i for i in plan.data.instances.values()
                if i.name == "inst-b1.example.com")
    assert inst.primary_node == new_b1.uuid
    disk = plan.data.disks[inst.disks[0]]
    assert disk.logical_id[0] == new_b1.uuid
    assert new_b1.uuid in disk.nodes
    assert any(f"UUID {taken} is taken here" in n for n in plan.notes)


def test_tags_and_networks(clusters):
    ours, theirs = clusters
    for cfg, tag in ((ours, "ours"), (theirs, "theirs")):
        cluster = cfg.GetClusterInfo()
        cluster.AddTag(tag)
        cfg.Update(cluster)
    for cfg in (ours, theirs):
        cfg.AddNetwork(objects.Network(name="net1", network="10.0.0.0/24",
                                       gateway="10.0.0.1"), "job")
    theirs.AddNetwork(objects.Network(name="net2", network="10.1.0.0/24"), "job")
    node = theirs.GetNodeInfoByName("b1.example.com")
    node.AddTag("rack1")
    theirs.Update(node)
    net1_theirs = theirs.LookupNetwork("net1")
    theirs.ReserveIp(net1_theirs, "10.0.0.5", "ip")
    inst = objects.Instance(name="inst-b3.example.com",
                            primary_node=_NodeUuid(theirs, "b1.example.com"),
                            os="debian", hypervisor=constants.HT_FAKE,
                            nics=[objects.NIC(mac="aa:00:00:00:00:05", ip="10.0.0.5",
                                              network=net1_theirs)])
    theirs.AddInstance(inst, "ip")
    plan = cmc.MergeConfig(_Data(ours), _Data(theirs), cmc.GROUPS_MERGE)
    _Check(plan)
    data = plan.data
    assert data.cluster.tags == {"ours", "theirs"}
    nets = {n.name: n for n in data.networks.values()}
    assert sorted(nets) == ["net1", "net2"]
    assert nets["net1"].uuid == ours.LookupNetwork("net1")
    merged = next(i for i in data.instances.values() if i.name == "inst-b3.example.com")
    assert merged.nics[0].network == nets["net1"].uuid
    from ganeti import network as netpool
    assert netpool.AddressPool(nets["net1"]).IsReserved("10.0.0.5")
    b1 = next(n for n in data.nodes.values() if n.name == "b1.example.com")
    assert b1.tags == {"rack1"}
    # an address used by instances of both clusters is a conflict
    ours.ReserveIp(ours.LookupNetwork("net1"), "10.0.0.5", "ip2")
    ours.AddInstance(objects.Instance(
        name="inst-a3.example.com", primary_node=_NodeUuid(ours, "a1.example.com"),
        os="debian", hypervisor=constants.HT_FAKE,
        nics=[objects.NIC(mac="aa:00:00:00:00:06", ip="10.0.0.5",
                          network=ours.LookupNetwork("net1"))]), "ip2")
    assert "address 10.0.0.5 of network 'net1' is used by instances of both this" \
           " cluster and cluster-b.example.com" in \
        _Problems(ours, theirs, cmc.GROUPS_MERGE)


def test_network_definition_clash(clusters):
    ours, theirs = clusters
    ours.AddNetwork(objects.Network(name="net1", network="10.0.0.0/24"), "job")
    theirs.AddNetwork(objects.Network(name="net1", network="10.9.0.0/24"), "job")
    problems = _Problems(ours, theirs, cmc.GROUPS_MERGE)
    assert any(p.startswith("network 'net1' differs") and "10.9.0.0/24" in p
               for p in problems), problems


def test_two_clusters_in_a_row(clusters, tmp_path):
    ours, theirs = clusters
    third = _NewConfig(tmp_path, "c", "203.0.113")
    _AddDrbdInstance(third, "inst-c1.example.com", "c1.example.com", "c2.example.com",
                     "aa:00:00:00:00:07")
    plan = cmc.MergeConfig(_Data(ours), _Data(theirs), cmc.GROUPS_RENAME)
    plan2 = cmc.MergeConfig(plan.data, _Data(third), cmc.GROUPS_RENAME)
    _Check(plan2)
    assert sorted(g.name for g in plan2.data.nodegroups.values()) == [
        "default", "default-cluster-b", "default-cluster-c"]
    assert len(plan2.data.nodes) == 6 and len(plan2.data.instances) == 4
    # the merged file loads and passes the ConfigWriter's checks
    path = tmp_path / "merged.data"
    from ganeti.config import base as config_base
    config_base.WriteConfigData(plan2.data, str(path))
    cfg = config.ConfigWriter(str(path), accept_foreign=True)
    assert cfg.VerifyConfig() == []
    assert cfg.GetMasterNodeName() == "a1.example.com"


# --- the tool: checks, plan and rollback (fake nodes and master) ------------------------

class _FakeRunner:
    """Answers the commands the tool runs on cluster B's nodes."""

    def __init__(self, theirs, fail=None, version=constants.RELEASE_VERSION):
        self.text = serializer.DumpJson(theirs.ToDict())
        self.fail = fail or {}
        self.version = version
        self.commands = []

    def Run(self, target, command):
        self.commands.append((target.name, command))
        for (name, needle), output in self.fail.items():
            if name == target.name and needle in command:
                return ssh.CommandResult(1, output)
        if command == "gnt-cluster getmaster":
            return ssh.CommandResult(0, "b1.example.com\n")
        if command.startswith("cat "):
            return ssh.CommandResult(0, self.text)
        if command == "gnt-cluster version":
            return ssh.CommandResult(0, f"Software version: {self.version}\n")
        if command.startswith("gnt-job list"):
            return ssh.CommandResult(0, "1 success\n2 error\n")
        return ssh.CommandResult(0, "")


class _FakeClient:
    def __init__(self):
        self.calls = []

    def SetWatcherPause(self, until):
        self.calls.append(("pause", until is not None))

    def SetDrainFlag(self, flag):
        self.calls.append(("drain", flag))

    def QueryJobs(self, ids, fields):
        return [[3, "success"]]

    def Close(self):
        pass


def _Merger(clusters, tmp_path, monkeypatch, **kwargs):
    ours, theirs = clusters
    # inst-b2 runs: the merge stops it first
    inst = theirs.GetInstanceInfoByName("inst-b2.example.com")
    inst.admin_state = constants.ADMINST_UP
    theirs.Update(inst)
    runner = _FakeRunner(_Data(theirs), **kwargs)
    client = _FakeClient()
    merger = cluster_merge.ClusterMerger(
        ["b1.example.com"], groups=cmc.GROUPS_MERGE, runner=runner,
        client_fn=lambda: client, feedback_fn=lambda msg: None,
        backup_dir=str(tmp_path / "backup"))
    monkeypatch.setattr(merger, "_CheckOurMaster", lambda: _Data(ours))
    return merger, runner, client


def test_tool_check_and_plan(clusters, tmp_path, monkeypatch):
    merger, runner, client = _Merger(clusters, tmp_path, monkeypatch)
    assert merger.Check() == []
    plan = merger.Plan()
    assert plan[0] == "Cluster cluster-b.example.com (master b1.example.com):"
    assert "  nodes to re-add: b1.example.com, b2.example.com" in plan
    assert "  instances: inst-b1.example.com, inst-b2.example.com" in plan
    # every node was tried; nothing was changed anywhere
    assert {name for name, cmd in runner.commands if cmd == "true"} == {
        "b1.example.com", "b2.example.com"}
    assert client.calls == []
    assert all(cmd.split()[0] in ("gnt-cluster", "cat", "true")
               for _, cmd in runner.commands)
    assert (tmp_path / "backup" / "b1.example.com.initial.config.data").exists()


def test_tool_check_problems(clusters, tmp_path, monkeypatch):
    merger, _, _ = _Merger(clusters, tmp_path, monkeypatch, version="0.1",
                           fail={("b2.example.com", "true"): "Connection refused"})
    assert merger.Check() == [
        f"cluster cluster-b.example.com runs version 0.1, this cluster"
        f" {constants.RELEASE_VERSION}",
        "node b2.example.com of cluster-b.example.com cannot be reached:"
        " Connection refused"]
    merger, _, _ = _Merger(clusters, tmp_path, monkeypatch,
                           fail={("b1.example.com", "getmaster"): "no luxi"})
    (problem,) = merger.Check()
    assert problem.startswith("cluster b1.example.com: Command 'gnt-cluster"
                              " getmaster' failed on b1.example.com (exit code 1)")
    with pytest.raises(errors.OpPrereqError, match="more than once"):
        cluster_merge.ClusterMerger(["x", "x"])
    with pytest.raises(errors.OpPrereqError, match="Invalid --restart value 'some'"):
        cluster_merge.ClusterMerger(["x"], restart="some")


def test_tool_rollback_before_point_of_no_return(clusters, tmp_path, monkeypatch):
    merger, runner, client = _Merger(
        clusters, tmp_path, monkeypatch,
        fail={("b2.example.com", "stop-all"): "cannot stop"})
    assert merger.Check() == []
    with pytest.raises(cluster_merge.MergeError, match="failed on b2.example.com"):
        merger.Merge()
    assert not merger.no_return
    assert merger.rollback == [
        "End the watcher pause on this cluster: gnt-cluster watcher continue",
        "End the watcher pause on cluster-b.example.com: gnt-cluster watcher"
        " continue (on its master)",
        "Start the instances of cluster-b.example.com again: gnt-instance startup"
        " NAME, for inst-b2.example.com",
        "Undrain the job queue of this cluster: gnt-cluster queue undrain",
        "Undrain the job queue of cluster-b.example.com: gnt-cluster queue undrain"
        " (on its master)",
        "Start the daemons of cluster-b.example.com again: daemon-util start-all on"
        " b2.example.com, b1.example.com (its master last)"]
    assert client.calls == [("pause", True), ("drain", True)]
    b1_commands = [cmd for name, cmd in runner.commands if name == "b1.example.com"]
    assert "gnt-instance shutdown inst-b2.example.com" in b1_commands
    # instances are stopped before the queue refuses jobs
    assert b1_commands.index("gnt-instance shutdown inst-b2.example.com") < \
        b1_commands.index("gnt-cluster queue drain")
    # the master's daemons were not touched: b2 comes first
    assert not any("stop-all" in cmd for cmd in b1_commands)


def test_tool_main_refuses_and_prints(clusters, tmp_path, monkeypatch, capsys):
    ours, theirs = clusters
    monkeypatch.setattr(cluster_merge.ClusterMerger, "Check",
                        lambda self: ["instance x is in both"])
    assert cluster_merge.Main(["b1.example.com"]) == constants.EXIT_FAILURE
    err = capsys.readouterr().err
    assert "cannot merge:\n  instance x is in both\nNothing was changed." in err
    assert cluster_merge.Main(["--watcher-pause-period", "0", "b"]) == \
        constants.EXIT_FAILURE
    with pytest.raises(SystemExit) as exit_info:
        cluster_merge.Main(["--groups", "join", "b"])
    assert exit_info.value.code == 2
