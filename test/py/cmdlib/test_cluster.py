"""Tests for the cluster LUs (modify, destroy, query, verify), run through mcpu."""

from __future__ import annotations

import hashlib
from types import SimpleNamespace

import pytest

from ganeti import config, config_sync, constants, errors, mcpu, objects, opcodes, pathutils
from ganeti.cmdlib import cluster as cluster_lu
from ganeti.cmdlib import cluster_verify
from ganeti.config import base as config_base
from ganeti.rpc.client import RpcResult
from ganeti.server import masterd

MASTER = "node1.example.com"


class Callbacks(mcpu.OpExecCbBase):
    def __init__(self):
        self.feedback = []
        self.jobs = []

    def Feedback(self, *args):
        self.feedback.append(args[-1])

    def SubmitManyJobs(self, jobs):
        self.jobs.extend(jobs)
        return [(True, 100 + idx) for idx in range(len(jobs))]


def _Ok(payload):
    return RpcResult(data=[True, payload])


def _Fail(msg):
    return RpcResult(data=msg, failed=True)


@pytest.fixture
def cfg(tmp_path):
    path = str(tmp_path / "config.data")
    cluster = objects.Cluster(
        cluster_name="cluster.example.com", master_ip="192.0.2.254",
        master_netdev="lo", enabled_hypervisors=[constants.HT_FAKE],
        mac_prefix="aa:00:00", rsahostkeypub="ssh-rsa AAAA", candidate_pool_size=1,
        enabled_disk_templates=[constants.DT_DISKLESS])
    master = objects.Node(name=MASTER, primary_ip="192.0.2.1")
    config_base.InitConfig(constants.CONFIG_VERSION, cluster, master, path)
    return config.ConfigWriter(path, accept_foreign=True)


def _AddNode(cfg, name, ip, **kwargs):
    node = objects.Node(name=name, primary_ip=ip, group=cfg.LookupNodeGroup(None),
                        uuid=objects.GenerateUUID(), **kwargs)
    node.UpgradeConfig()
    cfg.AddNode(node, "test")
    return node


def _Context(cfg, rpc=None):
    return SimpleNamespace(cfg=cfg, glm=masterd.BuildLockManager(cfg), rpc=rpc)


def _Run(ctx, op):
    cbs = Callbacks()
    result = mcpu.Processor(ctx, ec_id=1).ExecOpCode(op, cbs)
    return result, cbs


def _FileBytes(cfg):
    with open(cfg.cfg_file, "rb") as fd:
        return fd.read()


def _Raises(ctx, op, match, code=errors.ECODE_INVAL):
    before = _FileBytes(ctx.cfg)
    serial = ctx.cfg.GetConfigSerialNo()
    with pytest.raises(errors.OpPrereqError, match=match) as info:
        _Run(ctx, op)
    assert info.value.args[1] == code
    assert ctx.cfg.GetConfigSerialNo() == serial
    assert _FileBytes(ctx.cfg) == before


# --- modify ------------------------------------------------------------------------------

def test_modify_applies_every_kind_of_parameter(cfg):
    ctx = _Context(cfg)
    _Run(ctx, opcodes.OpClusterSetParams(
        beparams={"maxmem": "256M", "vcpus": "2"}, nicparams={"link": "br0"},
        ndparams={"spindle_count": "3"}, hvparams={"fake": {"migration_mode": "non-live"}},
        diskparams={"plain": {"stripes": "2"}}, ipolicy={"vcpu-ratio": "2.5"},
        uid_pool=[[1000, 2000]], hidden_os=[["add", "debian"]],
        blacklisted_os=[["add", "bad"]], mac_prefix="AA:11:22", vg_name="myvg",
        enabled_disk_templates=["file", "diskless"], file_storage_dir="/srv/fs",
        master_netmask=24, max_running_jobs=5, modify_etc_hosts=False))
    cluster = cfg.GetClusterInfo()
    assert cluster.beparams["default"]["maxmem"] == 256
    assert cluster.beparams["default"]["vcpus"] == 2
    assert cluster.nicparams["default"]["link"] == "br0"
    assert cluster.ndparams["spindle_count"] == 3
    assert cluster.hvparams["fake"]["migration_mode"] == "non-live"
    assert cluster.diskparams["plain"]["stripes"] == 2
    assert cluster.ipolicy["vcpu-ratio"] == 2.5
    assert [tuple(r) for r in cluster.uid_pool] == [(1000, 2000)]
    assert cluster.hidden_os == ["debian"] and cluster.blacklisted_os == ["bad"]
    assert cluster.mac_prefix == "aa:11:22" and cluster.volume_group_name == "myvg"
    assert cluster.enabled_disk_templates == ["file", "diskless"]
    assert cluster.file_storage_dir == "/srv/fs" and cluster.master_netmask == 24
    assert cluster.max_running_jobs == 5 and cluster.modify_etc_hosts is False

    _Run(ctx, opcodes.OpClusterSetParams(add_uids=[[3000, 3000]],
                                         remove_uids=[[1000, 2000]],
                                         hidden_os=[["remove", "debian"],
                                                    ["remove", "nothere"]]))
    cluster = cfg.GetClusterInfo()
    assert [tuple(r) for r in cluster.uid_pool] == [(3000, 3000)]
    assert cluster.hidden_os == []


def test_modify_uid_pool_add_remove_and_ssconf(cfg):
    ctx = _Context(cfg)
    _Run(ctx, opcodes.OpClusterSetParams(uid_pool=[[4000, 4009], [5000, 5000]]))
    _Run(ctx, opcodes.OpClusterSetParams(add_uids=[[4005, 4012], [6000, 6001]]))
    assert [tuple(r) for r in cfg.GetClusterInfo().uid_pool] == \
        [(4000, 4012), (5000, 5000), (6000, 6001)]
    # Part of a range, and a whole one, in one go
    _Run(ctx, opcodes.OpClusterSetParams(remove_uids=[[4003, 4004], [5000, 5000]]))
    cluster = cfg.GetClusterInfo()
    assert [tuple(r) for r in cluster.uid_pool] == \
        [(4000, 4002), (4005, 4012), (6000, 6001)]
    values = cfg.GetSsconfValues()
    assert values[constants.SS_UID_POOL] == "4000-4002\n4005-4012\n6000-6001"
    # An empty definition empties the pool
    _Run(ctx, opcodes.OpClusterSetParams(uid_pool=[]))
    assert cfg.GetClusterInfo().uid_pool == []


@pytest.mark.parametrize("kwargs,match", [
    ({"beparams": {"foo": 1}}, "Unknown backend parameter.*foo"),
    ({"nicparams": {"bogus": "x"}}, "nicparams.*bogus"),
    ({"nicparams": {"mode": "weird"}}, "Invalid NIC mode 'weird'"),
    ({"ndparams": {"nope": 1}}, "Unknown node parameter.*nope"),
    ({"hvparams": {"fake": {"kernel_path": "/x"}}}, "hypervisor 'fake'.*kernel_path"),
    ({"diskparams": {"plain": {"zzz": 1}}}, "disk template 'plain'.*zzz"),
    ({"ipolicy": {"weird-key": 1}}, "instance policy parameter.*weird-key"),
    ({"beparams": {"maxmem": "lots"}}, "invalid size 'lots'"),
    ({"mac_prefix": "zz:00:00"}, "mac_prefix.*MAC prefix.*'zz:00:00'"),
    ({"remove_uids": [[5, 6]]}, r"Cannot remove user-ids 5-6: not in the uid pool \(empty\)"),
    ({"uid_pool": [[1000, 2000], [1500, 2500]]},
     "Overlapping user-id ranges 1000-2000 and 1500-2500"),
    ({"uid_pool": [[2000, 1000]]}, "user-id range 2000-1000.*lower bound is above"),
    ({"uid_pool": [[-1, 5]]}, "user-id range -1-5.*between 0 and 4294967295"),
    ({"add_uids": [[10, 20], [20, 30]]}, "Overlapping user-id ranges 10-20 and 20-30"),
    ({"uid_pool": [[1, 2]], "add_uids": [[3, 4]]},
     "uid_pool cannot be given together with add_uids"),
    ({"file_storage_dir": "relative/dir"},
     "file_storage_dir.*normalised absolute path"),
    ({"master_netmask": 33}, "Invalid master netmask 33"),
    # Syntax checks of the opcode's declaration (issue 15): refused before
    # the LU runs, naming the parameter and a shortened value
    ({"master_netdev": "x" * 10000},
     r"master_netdev.*network interface name.*got 'x{50}'\.\.\."),
    ({"master_netdev": "eth0 up"}, "master_netdev.*network interface name"),
    ({"master_netdev": "../eth0"}, "master_netdev.*network interface name"),
    ({"nicparams": {"link": "bridge-name-too-long"}}, "nicparams.*NIC parameters"),
    ({"file_storage_dir": "/srv/../etc"}, "file_storage_dir.*normalised"),
    ({"file_storage_dir": "/etc"}, "file_storage_dir.*system directory"),
    ({"shared_file_storage_dir": "/"}, "shared_file_storage_dir.*system directory"),
    ({"vg_name": "-vg"}, "vg_name.*LVM name"),
    ({"drbd_helper": "drbd-helper"}, "drbd_helper.*absolute path"),
    ({"default_iallocator": "hail --evil"}, "default_iallocator.*allocator"),
    ({"instance_communication_network": "../net"},
     "instance_communication_network.*name"),
    ({"compression_tools": ["gzip;reboot"]}, "compression_tools.*program name"),
    ({"reserved_lvs": ["xenvg/(unclosed"]}, "reserved_lvs.*regular expression"),
    ({"hvparams": {"x" * 10000: {}}}, r"hvparams.*got \{'x{50}'\.\.\.: \{\}\}"),
    ({"osparams": {"../debian": {}}}, "osparams.*name"),
    ({"hidden_os": [["add", ".hidden"]]}, "hidden_os"),
    ({"install_image": "image file"}, "install_image.*path or URL"),
    ({"comment": "c" * 5000}, "comment.*at most 4096"),
    # Values inside parameter dicts: checked by the LU, cut in the message
    ({"ndparams": {"oob_program": "/" + "p" * 5000}},
     r"oob_program' must be a string of at most 4096 characters, got '/p{49}'\.\.\."),
    ({"beparams": {"maxmem": "m" * 5000}},
     r"invalid size 'm{50}'\.\.\.: Invalid size 'm{186}\.\.\."),
    ({"ipolicy": {"k" * 5000: 1}}, r"parameter\(s\): k{50}\.\.\. \(known"),
])
def test_modify_bad_input_leaves_config_unchanged(cfg, kwargs, match):
    # A valid change given together with the bad one is not applied either
    kwargs = dict(kwargs)
    kwargs.setdefault("max_running_jobs", 7)
    _Raises(_Context(cfg), opcodes.OpClusterSetParams(**kwargs), match)
    assert cfg.GetClusterInfo().max_running_jobs != 7


def test_check_storage_dir_as_used_by_init():
    assert cluster_lu.CheckStorageDir("", "file storage") == ""
    assert cluster_lu.CheckStorageDir("/srv//fs/", "file storage") == "/srv/fs"
    for path, match in [("relative", "must be an absolute path"),
                        ("/etc", "system directory"), ("/srv/../usr", "system directory"),
                        ("/", "system directory"),
                        ("/" + "d" * 5000, r"'/d{49}'\.\.\.: expected")]:
        with pytest.raises(errors.OpPrereqError, match=match) as info:
            cluster_lu.CheckStorageDir(path, "file storage")
        assert info.value.args[1] == errors.ECODE_INVAL


def _ConfigState(cfg):
    return cfg.GetConfigSerialNo(), cfg.GetClusterInfo().serial_no, _FileBytes(cfg)


def test_modify_with_nothing_to_change_does_not_write(cfg):
    """An empty modify (e.g. ``PUT /2/modify`` with no body) and one giving
    the current values leave the configuration file and serials alone."""
    ctx = _Context(cfg)
    before = _ConfigState(cfg)
    _, cbs = _Run(ctx, opcodes.OpClusterSetParams())
    assert _ConfigState(cfg) == before
    assert "No changes requested" in cbs.feedback
    _, cbs = _Run(ctx, opcodes.OpClusterSetParams(
        master_netdev="lo", mac_prefix="AA:00:00", candidate_pool_size=1,
        enabled_disk_templates=[constants.DT_DISKLESS]))
    assert _ConfigState(cfg) == before
    assert any("Nothing to change" in str(msg) for msg in cbs.feedback)
    # A real change is written: the checks above can fail
    _Run(ctx, opcodes.OpClusterSetParams(master_netdev="eth1"))
    serial, cluster_serial, _ = _ConfigState(cfg)
    assert serial == before[0] + 1 and cluster_serial == before[1] + 1
    assert cfg.GetClusterInfo().master_netdev == "eth1"


def test_modify_accepts_good_names_and_paths(cfg):
    ctx = _Context(cfg)
    _Run(ctx, opcodes.OpClusterSetParams(
        master_netdev="br-ganeti.100", nicparams={"link": "xen-br0"},
        file_storage_dir="/srv/ganeti/file-storage", shared_file_storage_dir="",
        vg_name="ganeti_vg", drbd_helper="/bin/true", default_iallocator=".",
        reserved_lvs=["xenvg/test.*"], compression_tools=["gzip", "gzip-fast"],
        install_image="http://example.com/image.img", zeroing_image="/srv/zero.img",
        osparams={"debian+default": {}}, comment="moved the master IP"))
    cluster = cfg.GetClusterInfo()
    assert cluster.master_netdev == "br-ganeti.100"
    assert cluster.file_storage_dir == "/srv/ganeti/file-storage"
    assert cluster.compression_tools == ["gzip", "gzip-fast"]


def test_modify_candidate_pool_promotes_nodes(cfg):
    ctx = _Context(cfg)
    for idx in (2, 3, 4):
        _AddNode(cfg, f"node{idx}.example.com", f"192.0.2.{idx}")
    _AddNode(cfg, "node5.example.com", "192.0.2.5", offline=True)
    assert [n.name for n in cfg.GetAllNodesInfo().values() if n.master_candidate] \
        == [MASTER]
    _, cbs = _Run(ctx, opcodes.OpClusterSetParams(candidate_pool_size=3))
    candidates = sorted(n.name for n in cfg.GetAllNodesInfo().values()
                        if n.master_candidate)
    assert candidates == [MASTER, "node2.example.com", "node3.example.com"]
    assert any("Promoted" in str(msg) for msg in cbs.feedback)
    assert cfg.GetClusterInfo().candidate_pool_size == 3


# --- destroy, query ----------------------------------------------------------------------

def test_destroy_refuses_with_other_nodes(cfg):
    ctx = _Context(cfg)
    _AddNode(cfg, "node2.example.com", "192.0.2.2")
    _Raises(ctx, opcodes.OpClusterDestroy(), r"still 1 node\(s\).*node2")


def test_destroy_returns_master_uuid(cfg):
    result, _ = _Run(_Context(cfg), opcodes.OpClusterDestroy())
    assert result == cfg.GetMasterNode()


def test_query_and_config_query(cfg):
    ctx = _Context(cfg)
    info, _ = _Run(ctx, opcodes.OpClusterQuery())
    assert info["name"] == "cluster.example.com" and info["master"] == MASTER
    values, _ = _Run(ctx, opcodes.OpClusterConfigQuery(
        output_fields=["cluster_name", "master_node"]))
    assert values == ["cluster.example.com", MASTER]
    with pytest.raises(errors.OpPrereqError, match="Unknown output field.*bogus"):
        _Run(ctx, opcodes.OpClusterConfigQuery(output_fields=["bogus"]))


# --- verify ------------------------------------------------------------------------------

class FakeVerifyRunner:
    """Answers node_verify/node_info as healthy nodes, with tweaks."""

    def __init__(self, cfg, tamper=None, down=(), old_proto=(), perms=None):
        self.cfg = cfg
        self.tamper = tamper or {}
        self.perms = perms or {}
        self.down = set(down)
        self.old_proto = set(old_proto)

    def call_node_verify(self, uuids, checks, *args):
        expected, mc_only, _ = cluster_verify.ExpectedFiles(self.cfg)
        result = {}
        for uuid in uuids:
            node = self.cfg.GetNodeInfo(uuid)
            if node.name in self.down:
                result[uuid] = _Fail("Connection refused")
                continue
            sums = {}
            for path, digest in expected.items():
                if digest is None or (path in mc_only and not node.master_candidate):
                    continue
                sums[pathutils.MakeVirtualPath(path)] = digest
            for path, digest in self.tamper.get(node.name, {}).items():
                sums[pathutils.MakeVirtualPath(path)] = digest
            proto = 1 if node.name in self.old_proto else constants.PROTOCOL_VERSION
            result[uuid] = _Ok({
                constants.NV_HOSTNAME: node.name,
                constants.NV_VERSION: [proto, constants.RELEASE_VERSION],
                constants.NV_FILELIST: sums,
                constants.NV_NODENETTEST: {},
                constants.NV_TIME: [int(__import__("time").time()), 0],
                constants.NV_CLIENT_CERT: [None, None],
                constants.NV_FILEPERMS: self.perms.get(node.name, []),
                constants.NV_BRIDGES: [],
            })
        return result

    def call_node_info(self, uuids, storage_units, hv_specs):
        return {uuid: _Ok(["boot", [], [{"memory_free": 100, "memory_total": 200}]])
                for uuid in uuids}


def _Verify(cfg, runner, **kwargs):
    ctx = _Context(cfg, rpc=runner)
    group = cfg.GetNodeGroup(cfg.LookupNodeGroup(None)).name
    return _Run(ctx, opcodes.OpClusterVerifyGroup(group_name=group, **kwargs))


def test_verify_clean_cluster(cfg):
    _AddNode(cfg, "node2.example.com", "192.0.2.2")
    ok, cbs = _Verify(cfg, FakeVerifyRunner(cfg))
    assert ok is True, cbs.feedback
    assert not [m for m in cbs.feedback if str(m).startswith("  - ")]
    assert any("node node2.example.com: memory free 100 MiB" in str(m)
               for m in cbs.feedback)


def test_verify_reports_each_problem_on_one_line(cfg):
    _AddNode(cfg, "node2.example.com", "192.0.2.2")
    _AddNode(cfg, "node3.example.com", "192.0.2.3")
    ssconf_file = pathutils.SSCONF_DIR + "/ssconf_cluster_name"
    runner = FakeVerifyRunner(cfg, tamper={"node2.example.com": {ssconf_file: "0" * 40}},
                              down=["node3.example.com"], old_proto=[MASTER])
    ok, cbs = _Verify(cfg, runner)
    lines = [str(m) for m in cbs.feedback if str(m).startswith("  - ")]
    assert ok is False
    assert (f"  - ERROR: node node2.example.com: ssconf file '{ssconf_file}' checksum"
            " mismatch") in "\n".join(lines)
    assert any(line.startswith("  - ERROR: node node3.example.com: while contacting"
                               " node: Connection refused") for line in lines)
    assert any(line.startswith(f"  - ERROR: node {MASTER}: incompatible protocol"
                               " versions") for line in lines)

    ok, cbs = _Verify(cfg, runner, error_codes=True, ignore_errors=["ENODERPC"])
    lines = [str(m) for m in cbs.feedback if str(m).startswith("  - ")]
    assert any(line.startswith("  - ERROR:ENODEFILECHECK:node:node2.example.com:"
                               f"ssconf file '{ssconf_file}'") for line in lines)
    assert any(line.startswith("  - WARNING:ENODERPC:node:node3.example.com:")
               for line in lines)


def test_verify_config_file_only_on_candidates(cfg):
    node2 = _AddNode(cfg, "node2.example.com", "192.0.2.2")
    assert not node2.master_candidate
    with open(cfg.cfg_file, "rb") as fd:
        digest = hashlib.sha1(fd.read()).hexdigest()
    runner = FakeVerifyRunner(cfg, tamper={
        "node2.example.com": {pathutils.CLUSTER_CONF_FILE: digest}})
    ok, cbs = _Verify(cfg, runner)
    assert ok is False
    assert any("should not exist on this node" in str(m) for m in cbs.feedback)


def test_verify_reports_file_permissions(cfg):
    """Our extension: each owner or mode a node found wrong is an error."""
    _AddNode(cfg, "node2.example.com", "192.0.2.2")
    _AddNode(cfg, "node3.example.com", "192.0.2.3")
    users = pathutils.RAPI_USERS_FILE
    runner = FakeVerifyRunner(cfg, perms={
        "node2.example.com": [[pathutils.MakeVirtualPath(users), "mode 0666, expected 0640"],
                              [pathutils.MakeVirtualPath(pathutils.CLUSTER_CONF_FILE),
                               "owner root:root, expected gnt-masterd:gnt-confd"]],
        "node3.example.com": [[None, "cannot check file permissions: users missing"]]})
    ok, cbs = _Verify(cfg, runner, error_codes=True)
    lines = [str(m) for m in cbs.feedback if str(m).startswith("  - ")]
    assert ok is False
    assert lines == [
        f"  - ERROR:ENODEFILEPERMS:node:node2.example.com:'{users}': mode 0666, expected"
        " 0640 (run ensure-dirs on the node to fix it)",
        f"  - ERROR:ENODEFILEPERMS:node:node2.example.com:'{pathutils.CLUSTER_CONF_FILE}':"
        " owner root:root, expected gnt-masterd:gnt-confd (run ensure-dirs on the node"
        " to fix it)",
        "  - ERROR:ENODEFILEPERMS:node:node3.example.com:cannot check file permissions:"
        " users missing"]
    ok, cbs = _Verify(cfg, runner, ignore_errors=["ENODEFILEPERMS"])
    assert ok is True
    lines = [str(m) for m in cbs.feedback if str(m).startswith("  - ")]
    assert lines[0] == (f"  - WARNING: node node2.example.com: '{users}': mode 0666,"
                        " expected 0640 (run ensure-dirs on the node to fix it)")
    assert len(lines) == 3 and all(line.startswith("  - WARNING: ") for line in lines)


def test_verify_node_without_file_permission_answer(cfg):
    class OldNode(FakeVerifyRunner):
        def call_node_verify(self, uuids, checks, *args):
            assert constants.NV_FILEPERMS in checks
            result = super().call_node_verify(uuids, checks, *args)
            for res in result.values():
                del res.payload[constants.NV_FILEPERMS]
            return result
    ok, cbs = _Verify(cfg, OldNode(cfg), error_codes=True)
    assert ok is False
    assert f"  - ERROR:ENODEFILEPERMS:node:{MASTER}:node hasn't returned file" \
        " permission data" in [str(m) for m in cbs.feedback]


def test_verify_submits_config_and_group_jobs(cfg):
    result, cbs = _Run(_Context(cfg), opcodes.OpClusterVerify(error_codes=True))
    assert result == {"jobs": [(True, 100), (True, 101)]}
    assert [type(job[0]).__name__ for job in cbs.jobs] == \
        ["OpClusterVerifyConfig", "OpClusterVerifyGroup"]
    assert all(job[0].error_codes for job in cbs.jobs)


def test_verify_config(cfg):
    ok, cbs = _Run(_Context(cfg), opcodes.OpClusterVerifyConfig(error_codes=True))
    # No server.pem outside a cluster root: reported as a certificate error
    assert any("ECLUSTERCERT" in str(m) for m in cbs.feedback) or ok


# --- config distribution -----------------------------------------------------------------

class FakeDistRunner:
    def __init__(self, fail=()):
        self.fail = set(fail)
        self.uploads = []
        self.ssconf = []

    def _Res(self, cfg, uuids):
        return {u: _Fail("boom") if cfg.GetNodeName(u) in self.fail else _Ok(None)
                for u in uuids}

    def call_upload_file(self, uuids, path):
        self.uploads.append((sorted(uuids), path))
        return self._Res(self.cfg, uuids)

    def call_write_ssconf_files(self, uuids, values):
        self.ssconf.append(sorted(uuids))
        return self._Res(self.cfg, uuids)


def test_save_listener_pushes_config_and_ssconf(cfg, monkeypatch, tmp_path):
    monkeypatch.setattr(config_sync.ssconf, "SimpleStore",
                        lambda: SimpleNamespace(WriteFiles=lambda values: None))
    runner = FakeDistRunner(fail=["node3.example.com"])
    runner.cfg = cfg
    listener = config_sync.Attach(cfg, runner)
    node2 = _AddNode(cfg, "node2.example.com", "192.0.2.2", master_candidate=True)
    node3 = _AddNode(cfg, "node3.example.com", "192.0.2.3")
    _AddNode(cfg, "node4.example.com", "192.0.2.4", offline=True)
    runner.uploads.clear()
    runner.ssconf.clear()
    cfg.Update(cfg.GetClusterInfo(), None)
    assert runner.uploads == [([node2.uuid], cfg.cfg_file)]
    # The ssconf values did not change: only node3, which failed before, gets them
    assert runner.ssconf == [[node3.uuid]]
    assert listener.last_failures == {"node3.example.com": "boom"}


def test_force_dict_type_converts_and_names_bad_values():
    types = {"a": "int", "b": "bool", "c": "size", "d": "maybe-string"}
    assert cluster_lu.ForceDictType({"a": "3", "b": "no", "c": "1G", "d": None},
                                    types, "test") == \
        {"a": 3, "b": False, "c": 1024, "d": None}
    with pytest.raises(errors.OpPrereqError, match="test parameter 'a' must be an"
                       " integer, got 'x'"):
        cluster_lu.ForceDictType({"a": "x"}, types, "test")
    with pytest.raises(errors.OpPrereqError, match=r"Unknown test parameter\(s\): z"):
        cluster_lu.ForceDictType({"z": 1}, types, "test")
