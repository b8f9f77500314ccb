"""Cluster verify's N+1 memory check (lib/cmdlib/cluster_verify.py):
ENODEN1 when a node holding DRBD secondaries lacks the free memory to
take the instances of one of their primary nodes, skipped with
``--no-nplus1-mem``.

The cluster (built on test_cluster_verify_storage's fake runner): node1
(master), node2 and node3, all online; node2 holds the secondaries. Each
node's free memory is set per node (``FREE``).
"""

from __future__ import annotations

import os
import sys
from types import SimpleNamespace

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import test_cluster_verify_storage as cvs  # noqa: E402

from ganeti import cli, config, constants, objects, opcodes  # noqa: E402
from ganeti.cli import command  # noqa: E402
from ganeti.client import gnt_cluster  # noqa: E402
from ganeti.config import base as config_base  # noqa: E402
from ganeti.server import masterd  # noqa: E402

N1, N2, N3 = cvs.N1, cvs.N2, cvs.N3


class MemoryRunner(cvs.StorageRunner):
    """node_info answers each node's free memory from ``free`` (by name);
    a node named in ``info_fail`` does not answer."""

    def __init__(self, cfg):
        super().__init__(cfg)
        self.free = {N1: 8192, N2: 8192, N3: 8192}
        self.info_fail: set[str] = set()

    def call_node_info(self, uuids, storage_units, hv_specs):
        result = {}
        for uuid in uuids:
            name = self._Name(uuid)
            if name in self.info_fail:
                result[uuid] = cvs._Fail("node down")
            else:
                result[uuid] = cvs._Ok(["boot", [], [{"memory_free": self.free[name],
                                                      "memory_total": 16384}]])
        return result


def _Add(cfg, name, pnode, snode, minmem, up=True, auto_balance=True):
    disk = cvs._DrbdDisk(cfg, name.split(".")[0], pnode, snode)
    inst = cvs._AddInstance(cfg, name, pnode, [disk])
    inst.beparams = {constants.BE_MINMEM: minmem, constants.BE_MAXMEM: minmem * 2,
                     constants.BE_AUTO_BALANCE: auto_balance}
    inst.admin_state = constants.ADMINST_UP if up else constants.ADMINST_DOWN
    cfg.Update(inst, None)


@pytest.fixture
def ctx(tmp_path):
    path = str(tmp_path / "config.data")
    cluster = objects.Cluster(
        cluster_name="cluster.example.com", master_ip="192.0.2.254",
        master_netdev="lo", enabled_hypervisors=[constants.HT_FAKE],
        enabled_disk_templates=[constants.DT_DRBD8, constants.DT_PLAIN],
        volume_group_name="xenvg", drbd_usermode_helper="/bin/true",
        mac_prefix="aa:00:00", rsahostkeypub="ssh-rsa AAAA", candidate_pool_size=3)
    config_base.InitConfig(constants.CONFIG_VERSION, cluster,
                           objects.Node(name=N1, primary_ip="192.0.2.1"), path)
    cfg = config.ConfigWriter(path, accept_foreign=True)
    for name, ip in ((N2, "192.0.2.2"), (N3, "192.0.2.3")):
        cfg.AddNode(objects.Node(name=name, primary_ip=ip), "job")
    n1, n2, n3 = (cfg.GetNodeInfoByName(name).uuid for name in (N1, N2, N3))
    # Should node1 fail, node2 takes i1 and i2 (512 + 256 MiB); i4 (down) and
    # i5 (no auto_balance) do not move; should node3 fail, it takes i3
    _Add(cfg, "i1.example.com", n1, n2, 512)
    _Add(cfg, "i2.example.com", n1, n2, 256)
    _Add(cfg, "i3.example.com", n3, n2, 1024)
    _Add(cfg, "i4.example.com", n1, n2, 4096, up=False)
    _Add(cfg, "i5.example.com", n1, n2, 4096, auto_balance=False)
    # A secondary on node1: node1 must take i6 should node2 fail
    _Add(cfg, "i6.example.com", n2, n1, 2048)
    return SimpleNamespace(cfg=cfg, glm=masterd.BuildLockManager(cfg),
                           rpc=MemoryRunner(cfg))


def _Verify(ctx, **kwargs):
    group = ctx.cfg.GetNodeGroup(ctx.cfg.LookupNodeGroup(None)).name
    kwargs.setdefault("error_codes", True)
    ok, cbs = cvs._Run(ctx, opcodes.OpClusterVerifyGroup(group_name=group, **kwargs))
    lines = [line for line in cbs.feedback if line.startswith("  - ")
             and not line.startswith("  - NOTICE:")]
    return ok, lines, cbs.feedback


def _N1(node, failed, needed, free, code="ERROR"):
    return (f"  - {code}:ENODEN1:node:{node}:not enough memory to accomodate instance"
            f" failovers should node {failed} fail ({needed} MiB needed, {free} MiB"
            " available)")


def test_enough_memory_everywhere(ctx):
    ok, lines, feedback = _Verify(ctx)
    assert ok is True and lines == []
    assert "* Verifying N+1 Memory redundancy" in feedback


def test_one_failing_primary_is_reported(ctx):
    ctx.rpc.free[N2] = 1000
    ok, lines, _ = _Verify(ctx)
    assert ok is False
    assert lines == [_N1(N2, N3, 1024, 1000)]


def test_every_failing_primary_is_reported(ctx):
    ctx.rpc.free[N2] = 700
    ctx.rpc.free[N1] = 2047
    ok, lines, _ = _Verify(ctx)
    assert ok is False
    assert lines == [_N1(N1, N2, 2048, 2047), _N1(N2, N1, 768, 700),
                     _N1(N2, N3, 1024, 700)]
    ok, lines, _ = _Verify(ctx, error_codes=False)
    assert lines[0] == (f"  - ERROR: node {N1}: not enough memory to accomodate instance"
                        f" failovers should node {N2} fail (2048 MiB needed, 2047 MiB"
                        " available)")


def test_instances_going_down_or_up_change_the_need(ctx):
    ctx.rpc.free[N2] = 1000
    inst = ctx.cfg.GetInstanceInfoByName("i3.example.com")
    ctx.cfg.MarkInstanceDown(inst.uuid)
    assert _Verify(ctx)[:2] == (True, [])
    inst = ctx.cfg.GetInstanceInfoByName("i5.example.com")
    inst.beparams[constants.BE_AUTO_BALANCE] = True
    ctx.cfg.Update(inst, None)
    assert _Verify(ctx)[1] == [_N1(N2, N1, 512 + 256 + 4096, 1000)]


def test_skipped_with_the_option(ctx):
    ctx.rpc.free[N2] = 10
    ok, lines, feedback = _Verify(ctx, skip_checks=[constants.VERIFY_NPLUSONE_MEM])
    assert ok is True and lines == []
    assert "* Verifying N+1 Memory redundancy" not in feedback


def test_ignored_error_is_a_warning(ctx):
    ctx.rpc.free[N2] = 1000
    ok, lines, _ = _Verify(ctx, ignore_errors=["ENODEN1"])
    assert ok is True
    assert lines == [_N1(N2, N3, 1024, 1000, code="WARNING")]


def test_node_without_memory_data_is_not_judged(ctx):
    ctx.rpc.free[N2] = 10
    ctx.rpc.info_fail = {N2}
    ok, lines, _ = _Verify(ctx)
    assert ok is False
    assert [line for line in lines if "ENODEN1" in line] == []
    assert any("ENODEHV" in line and N2 in line for line in lines)


def test_cluster_verify_passes_the_skip_to_the_group_jobs(ctx):
    jobs = []

    class _Cbs(cvs.Callbacks):
        def SubmitManyJobs(self, submitted):
            jobs.extend(submitted)
            return [[True, str(idx)] for idx, _ in enumerate(submitted)]

    import ganeti.mcpu as mcpu
    mcpu.Processor(ctx, ec_id=1).ExecOpCode(
        opcodes.OpClusterVerify(skip_checks=[constants.VERIFY_NPLUSONE_MEM]), _Cbs())
    groups = [job[0] for job in jobs if isinstance(job[0], opcodes.OpClusterVerifyGroup)]
    assert groups and all(op.skip_checks == [constants.VERIFY_NPLUSONE_MEM]
                          for op in groups)


@pytest.mark.parametrize("argv,skip", [(["verify"], []),
                                       (["verify", "--no-nplus1-mem"],
                                        [constants.VERIFY_NPLUSONE_MEM])])
def test_command_line_option(monkeypatch, argv, skip):
    ops = []
    monkeypatch.setattr(cli, "GetClient", lambda: None)
    monkeypatch.setattr(cli, "SubmitOpCode",
                        lambda op, cl=None, opts=None: ops.append(op) or {"jobs": []})
    func, opts, args = command.ParseArgs("gnt-cluster", argv, gnt_cluster.commands, {}, [])
    assert func(opts, args) == constants.EXIT_SUCCESS
    (op,) = ops
    assert isinstance(op, opcodes.OpClusterVerify) and op.skip_checks == skip
