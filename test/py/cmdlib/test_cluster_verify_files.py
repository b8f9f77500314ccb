"""Cluster verify, our extensions around crashes: orphan files and
directories in the file storage directories (ENODEORPHANFILE, from the
nodes' NV_FILESTORAGELIST listings) and the wait for the configuration
distribution before the files are compared."""

from __future__ import annotations

import os
import sys
import threading
from types import SimpleNamespace

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import instancehelpers  # noqa: E402
from instancehelpers import MASTER  # noqa: E402

from ganeti import constants, mcpu, objects, opcodes, pathutils  # noqa: E402
from ganeti.cmdlib import cluster_verify  # noqa: E402
from ganeti.rpc.client import RpcResult  # noqa: E402

FILE_DIR = "/srv/ganeti/file-storage"
SHARED_DIR = "/srv/ganeti/shared-file-storage"
NODE2 = "node2.example.com"


class VerifyRunner:
    """Healthy answers to node_verify/node_info; each node lists ``files``
    (node name -> {directory: entries}, default: exactly its disks)."""

    def __init__(self, cfg, files=None, during=None):
        self.cfg = cfg
        self.files = files or {}
        self.during = during
        self.checks = None
        self.missing_bridges = set()

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
            listing = {directory: self.files.get(node.name, {}).get(
                directory, _Disks(self.cfg, node.uuid, directory))
                for directory in checks.get(constants.NV_FILESTORAGELIST, [])}
            result[uuid] = RpcResult(data=[True, {
                constants.NV_HOSTNAME: node.name,
                constants.NV_VERSION: [constants.PROTOCOL_VERSION,
                                       constants.RELEASE_VERSION],
                constants.NV_FILELIST: sums,
                constants.NV_NODENETTEST: {},
                constants.NV_TIME: [int(__import__("time").time()), 0],
                constants.NV_CLIENT_CERT: [None, None],
                constants.NV_FILEPERMS: [],
                constants.NV_FILESTORAGELIST: listing,
                # the bridges asked for that are in self.missing_bridges
                constants.NV_BRIDGES: [b for b in checks.get(constants.NV_BRIDGES, [])
                                       if b in self.missing_bridges],
            }])
        return result

    def call_node_info(self, uuids, storage_units, hv_specs):
        return {uuid: RpcResult(data=[True, ["boot", [], [{"memory_free": 1,
                                                            "memory_total": 2}]]])
                for uuid in uuids}


def _Disks(cfg, node_uuid, directory):
    """What a node holds below ``directory`` when nothing is left over."""
    entries = set()
    for inst in cfg.GetAllInstancesInfo().values():
        for disk in cfg.GetInstanceDisks(inst.uuid):
            path = disk.logical_id[1]
            shared = disk.dev_type == constants.DT_SHARED_FILE
            if not path.startswith(directory + "/") or \
                    (not shared and node_uuid not in disk.nodes):
                continue
            rel = os.path.relpath(path, directory)
            entries.add(rel)
            entries.add(os.path.dirname(rel) + "/")
    return sorted(entries)


class FlushRecorder:
    def __init__(self, calls):
        self.calls = calls

    def Flush(self, timeout=None):
        self.calls.append(("flush", timeout))
        return True


@pytest.fixture
def ctx(tmp_path):
    ctx = instancehelpers.MakeContext(tmp_path)
    cfg = ctx.cfg
    cluster = cfg.GetClusterInfo()
    cluster.enabled_disk_templates = [constants.DT_FILE, constants.DT_SHARED_FILE,
                                      constants.DT_DISKLESS]
    cluster.shared_file_storage_dir = SHARED_DIR
    cfg.Update(cluster, None)
    node = objects.Node(name=NODE2, primary_ip="192.0.2.2", group=cfg.LookupNodeGroup(None),
                        uuid=objects.GenerateUUID())
    node.UpgradeConfig()
    cfg.AddNode(node, "test")
    ctx.glm = instancehelpers.masterd.BuildLockManager(cfg)
    instancehelpers.Run(ctx, instancehelpers.CreateOp(
        instance_name="inst1.example.com", disk_template="file", disks=[{"size": 1024}]))
    instancehelpers.Run(ctx, instancehelpers.CreateOp(
        instance_name="inst2.example.com", disk_template="sharedfile",
        disks=[{"size": 1024}, {"size": 1024}]))
    return ctx


def _Verify(ctx, runner, **kwargs):
    ctx.rpc = runner
    group = ctx.cfg.GetNodeGroup(ctx.cfg.LookupNodeGroup(None)).name
    cbs = instancehelpers.Callbacks()
    ok = mcpu.Processor(ctx, ec_id=1).ExecOpCode(
        opcodes.OpClusterVerifyGroup(group_name=group, **kwargs), cbs)
    return ok, [str(args[-1]) for args in cbs.feedback if str(args[-1]).startswith("  - ")]


def test_disks_and_their_directories_are_no_orphans(ctx):
    runner = VerifyRunner(ctx.cfg)
    ok, lines = _Verify(ctx, runner)
    assert ok is True and lines == []
    assert runner.checks[constants.NV_FILESTORAGELIST] == [FILE_DIR, SHARED_DIR]
    # The listings the fake gave are the real layout
    assert _Disks(ctx.cfg, ctx.cfg.GetMasterNode(), FILE_DIR) == [
        "inst1.example.com/", "inst1.example.com/disk0"]
    assert _Disks(ctx.cfg, None, SHARED_DIR) == [
        "inst2.example.com/", "inst2.example.com/disk0", "inst2.example.com/disk1"]


def test_orphans_are_reported_as_warnings(ctx):
    shared = _Disks(ctx.cfg, None, SHARED_DIR) + ["gone.example.com/",
                                                  "gone.example.com/disk0"]
    files = {
        MASTER: {FILE_DIR: _Disks(ctx.cfg, ctx.cfg.GetMasterNode(), FILE_DIR)
                 + ["inst1.example.com/disk1", "junk/", "junk/disk0", "junk/x/",
                    "stray"], SHARED_DIR: shared},
        # node2 holds inst1's directory, but inst1's disk lives on the master
        NODE2: {FILE_DIR: ["inst1.example.com/", "inst1.example.com/disk0"],
                SHARED_DIR: shared},
    }
    ok, lines = _Verify(ctx, VerifyRunner(ctx.cfg, files), error_codes=True)
    assert ok is True   # warnings, as Ganeti's orphan volumes
    prefix = "  - WARNING:ENODEORPHANFILE:node:"
    assert lines == [
        f"{prefix}{MASTER}:file {FILE_DIR}/inst1.example.com/disk1 is unknown",
        f"{prefix}{MASTER}:directory {FILE_DIR}/junk is unknown",
        f"{prefix}{MASTER}:file {FILE_DIR}/stray is unknown",
        # Shared storage: once, by the first node listing it
        f"{prefix}{MASTER}:directory {SHARED_DIR}/gone.example.com is unknown",
        f"{prefix}{NODE2}:directory {FILE_DIR}/inst1.example.com is unknown",
    ]
    ok, lines = _Verify(ctx, VerifyRunner(ctx.cfg, files))
    assert lines[1] == f"  - WARNING: node {MASTER}: directory {FILE_DIR}/junk is unknown"


def test_a_node_that_cannot_list_is_an_error(ctx):
    files = {NODE2: {FILE_DIR: f"cannot list '{FILE_DIR}': Permission denied"}}
    ok, lines = _Verify(ctx, VerifyRunner(ctx.cfg, files), error_codes=True)
    assert ok is False
    assert lines == [f"  - ERROR:ENODEFILESTORAGEPATHUNUSABLE:node:{NODE2}:cannot list"
                     f" '{FILE_DIR}': Permission denied"]


def test_disks_made_or_removed_while_the_nodes_answer_are_no_orphans(ctx):
    """A creation adds the instance before its files, a removal removes the
    files before the instance: verify uses the disks before and after the
    nodes answered."""
    other = SimpleNamespace(cfg=ctx.cfg, glm=ctx.glm, rpc=instancehelpers.FakeRpc())
    listed = {}

    def _Jobs():
        instancehelpers.Run(other, opcodes.OpInstanceRemove(
            instance_name="inst1.example.com"))
        instancehelpers.Run(other, instancehelpers.CreateOp(
            instance_name="inst3.example.com", disk_template="file",
            disks=[{"size": 1024}]))

    def _Meanwhile():
        # The node lists inst1 (removed right after) and inst3 (made then)
        listed[MASTER] = {FILE_DIR: _Disks(ctx.cfg, ctx.cfg.GetMasterNode(), FILE_DIR)
                          + ["inst3.example.com/", "inst3.example.com/disk0"]}
        jobs = threading.Thread(target=_Jobs)
        jobs.start()
        jobs.join(30)

    ok, lines = _Verify(ctx, VerifyRunner(ctx.cfg, listed, during=_Meanwhile))
    assert ctx.cfg.GetInstanceInfoByName("inst1.example.com") is None
    assert ctx.cfg.GetInstanceInfoByName("inst3.example.com") is not None
    assert ok is True and lines == []
    # Without the second look, inst3's files would be orphans: the check can fail
    assert cluster_verify.OrphanEntries(
        FILE_DIR, listed[MASTER][FILE_DIR], set()) != []


def test_verify_waits_for_the_configuration_distribution(ctx):
    calls = []
    ctx.config_sync = FlushRecorder(calls)
    runner = VerifyRunner(ctx.cfg)
    original = runner.call_node_verify

    def _Verify_(*args):
        calls.append("node_verify")
        return original(*args)

    runner.call_node_verify = _Verify_
    _Verify(ctx, runner)
    assert calls == [("flush", constants.VERIFY_CONFIG_FLUSH_TIMEOUT), "node_verify"]


def test_orphan_entries():
    disks = {f"{FILE_DIR}/a/disk0", f"{FILE_DIR}/sub/b/disk0", "/elsewhere/c/disk0"}
    entries = ["a/", "a/disk0", "a/disk1", "sub/", "sub/b/", "sub/b/disk0", "sub/c/",
               "sub/c/disk0", "z"]
    assert cluster_verify.OrphanEntries(FILE_DIR, entries, disks) == [
        f"{FILE_DIR}/a/disk1", f"{FILE_DIR}/sub/c/", f"{FILE_DIR}/z"]
