"""1,000 instances on a 20-node virtual cluster: list, info, node counts.

The first :data:`BY_JOBS` instances are created by real
``OpInstanceCreate`` jobs, all submitted at once (half of them started,
half ``--no-start``); the others are injected straight into
``config.data`` while the master daemon is stopped (diskless, noop OS,
admin down; see ``InjectInstances`` in ``test/bench/instances.py``),
because creating all 1,000 through jobs would take about 5 minutes here
(3-4 creations per second with parallel jobs on 20 virtual nodes; see
test/bench/instances.py). Instance ``i`` lives on node ``i % 20``.

Then: ``gnt-instance list`` (1,000 rows with the right primary node,
status and OS), field selection, filters and name arguments; ``gnt-node
list`` instance counts; ``gnt-instance info`` on a few instances, on 50 at
once and ``--all --static``; ``gnt-cluster verify``; finally a handful of
instances removed in parallel and the counts checked again.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from vcluster import REPO, VirtualCluster  # noqa: E402

from ganeti import constants  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

NODES = 20
INSTANCES = 1000
#: Instances created through jobs; the rest is injected into the config
BY_JOBS = 100
OS_NAME = "noop+default"


def _LoadBench():
    """test/bench/instances.py, for its job and injection helpers."""
    path = REPO / "test" / "bench" / "instances.py"
    spec = importlib.util.spec_from_file_location("bench_instances", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bench = _LoadBench()


def _Name(idx: int) -> str:
    return f"i{idx:04d}.example.com"


class Expected:
    """What the cluster should hold: name -> (primary node, status)."""

    def __init__(self, nodes: list[str]) -> None:
        self.instances: dict[str, tuple[str, str]] = {}
        for idx in range(INSTANCES):
            running = idx < BY_JOBS and idx % 2 == 0
            self.instances[_Name(idx)] = (nodes[idx % len(nodes)],
                                          "running" if running else "ADMIN_down")

    def OnNode(self, node: str) -> list[str]:
        """Names of the instances whose primary node is ``node``."""
        return sorted(name for name, (pnode, _) in self.instances.items() if pnode == node)


def _CreateByJobs(vc: VirtualCluster, expected: Expected) -> None:
    cl = bench.LuxiClient(vc)
    try:
        jobs = [[bench.CreateOp(_Name(idx), expected.instances[_Name(idx)][0],
                                start=idx % 2 == 0)] for idx in range(BY_JOBS)]
        submitted = cl.SubmitManyJobs(jobs)
        assert all(ok for ok, _ in submitted), submitted
        for idx, (_, job_id) in enumerate(submitted):
            status = bench.WaitJob(cl, job_id)
            assert status == constants.JOB_STATUS_SUCCESS, \
                f"creating {_Name(idx)}: {bench.JobError(cl, job_id)}"
    finally:
        cl.Close()


@pytest.fixture(scope="module")
def cluster():
    directory = tempfile.mkdtemp(prefix="gv", dir="/tmp")
    vc = VirtualCluster(directory, nodes=NODES, parallel=4)
    try:
        vc.setup()
        expected = Expected(vc.names)
        start = time.perf_counter()
        _CreateByJobs(vc, expected)
        by_jobs = time.perf_counter() - start
        bench.InjectInstances(vc, [(_Name(idx), expected.instances[_Name(idx)][0])
                                   for idx in range(BY_JOBS, INSTANCES)])
        print(f"{BY_JOBS} instances created by jobs in {by_jobs:.1f} s,"
              f" {INSTANCES - BY_JOBS} injected")
        yield vc, expected
    finally:
        leftovers = vc.cleanup()
        shutil.rmtree(directory, ignore_errors=True)
        assert not leftovers


def _Rows(vc: VirtualCluster, *args: str) -> list[list[str]]:
    out = vc.run("gnt-instance", "list", "--no-headers", "--separator=|", *args).stdout
    return [line.split("|") for line in out.splitlines()]


def _CheckAll(vc: VirtualCluster, expected: Expected) -> None:
    rows = _Rows(vc, "-o", "name,pnode,status,os,oper_state,disk_template")
    assert len(rows) == len(expected.instances)
    got = {row[0]: row[1:] for row in rows}
    assert len(got) == len(rows), "duplicate names in the list"
    for name, (pnode, status) in expected.instances.items():
        oper = "Y" if status == "running" else "N"
        assert got.get(name) == [pnode, status, OS_NAME, oper, "diskless"], name


def _NodeCounts(vc: VirtualCluster) -> dict[str, int]:
    out = vc.run("gnt-node", "list", "--no-headers", "--separator=|",
                 "-o", "name,pinst_cnt,sinst_cnt").stdout
    counts = {}
    for line in out.splitlines():
        name, pinst, sinst = line.split("|")
        assert sinst == "0", line
        counts[name] = int(pinst)
    return counts


def _CheckNodeCounts(vc: VirtualCluster, expected: Expected) -> None:
    counts = _NodeCounts(vc)
    assert sorted(counts) == sorted(vc.names)
    assert sum(counts.values()) == len(expected.instances)
    for node in vc.names:
        assert counts[node] == len(expected.OnNode(node)), node


def test_list_all(cluster):
    vc, expected = cluster
    _CheckAll(vc, expected)
    out = vc.run("gnt-instance", "list").stdout.splitlines()
    assert out[0].split() == ["Instance", "Hypervisor", "OS", "Primary_node", "Status",
                              "Memory"]
    assert len(out) == INSTANCES + 1
    # Sorted the way Ganeti sorts names
    assert [line.split()[0] for line in out[1:]] == sorted(expected.instances)


def test_list_names_and_filters(cluster):
    vc, expected = cluster
    node5 = vc.names[4]
    rows = _Rows(vc, "-o", "name,pnode", "-F", f'pnode == "{node5}"')
    assert sorted(row[0] for row in rows) == expected.OnNode(node5)
    assert {row[1] for row in rows} == {node5}
    running = sorted(name for name, (_, st) in expected.instances.items()
                     if st == "running")
    assert running, "no instance was started"
    rows = _Rows(vc, "-o", "name", "-F", 'status == "running"')
    assert sorted(row[0] for row in rows) == running
    both = _Rows(vc, "-o", "name", "-F", f'pnode == "{node5}" and status == "ADMIN_down"')
    assert sorted(row[0] for row in both) == \
        [name for name in expected.OnNode(node5) if expected.instances[name][1] == "ADMIN_down"]
    names = [_Name(0), _Name(1), _Name(BY_JOBS + 7), _Name(INSTANCES - 1)]
    rows = _Rows(vc, "-o", "name,pnode,status", *names)
    assert rows == [[name, *expected.instances[name]] for name in sorted(names)]


def test_node_list_counts(cluster):
    vc, expected = cluster
    _CheckNodeCounts(vc, expected)


def _InfoBlocks(text: str) -> dict[str, str]:
    """The "info" output split per instance."""
    blocks: dict[str, str] = {}
    for block in text.split("- Instance name: ")[1:]:
        name = block.split("\n", 1)[0].strip()
        assert name not in blocks, name
        blocks[name] = block
    return blocks


def _CheckInfo(block: str, name: str, pnode: str, status: str, static: bool) -> None:
    assert block.startswith(name)
    config = "up" if status == "running" else "down"
    actual = "unknown" if static else config
    assert f"State: configured to be {config}, actual state is {actual}" in block, block
    assert f"primary: {pnode}" in block
    for section in ("UUID:", "Nodes:", "Hypervisor: fake", "Hypervisor parameters:",
                    "Back-end parameters:", "NICs:", "nic/0:", "MAC:",
                    "Disk template: diskless", "Disks:"):
        assert section in block, (section, block)
    assert f"Operating system: {OS_NAME}" in block


def test_info_few(cluster):
    vc, expected = cluster
    for idx in (0, 1, BY_JOBS + 3):
        name = _Name(idx)
        out = vc.run("gnt-instance", "info", name).stdout
        blocks = _InfoBlocks(out)
        assert list(blocks) == [name]
        _CheckInfo(blocks[name], name, *expected.instances[name], static=False)


def test_info_many(cluster):
    vc, expected = cluster
    names = [_Name(idx) for idx in range(0, INSTANCES, INSTANCES // 50)]
    blocks = _InfoBlocks(vc.run("gnt-instance", "info", *names).stdout)
    assert sorted(blocks) == sorted(names)
    for name in names:
        _CheckInfo(blocks[name], name, *expected.instances[name], static=False)
    blocks = _InfoBlocks(vc.run("gnt-instance", "info", "--all", "--static").stdout)
    assert sorted(blocks) == sorted(expected.instances)
    for name, block in blocks.items():
        _CheckInfo(block, name, *expected.instances[name], static=True)


def test_cluster_verify(cluster):
    vc, _ = cluster
    result = vc.run("gnt-cluster", "verify", check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_remove_in_parallel(cluster):
    vc, expected = cluster
    victims = [_Name(0), _Name(2), _Name(3), _Name(BY_JOBS), _Name(BY_JOBS + 21),
               _Name(INSTANCES - 1)]
    assert any(expected.instances[name][1] == "running" for name in victims)
    with ThreadPoolExecutor(len(victims)) as pool:
        results = list(pool.map(
            lambda name: vc.run("gnt-instance", "remove", "-f", name, check=False),
            victims))
    for name, result in zip(victims, results):
        assert result.returncode == 0, (name, result.stdout + result.stderr)
        del expected.instances[name]
    assert len(expected.instances) == INSTANCES - len(victims)
    _CheckAll(vc, expected)
    _CheckNodeCounts(vc, expected)
