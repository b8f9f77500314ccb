"""hbal against a live 3-node virtual cluster with storage (LVM volume
groups, DRBD through the stand-in): DRBD instances all on the same two
nodes are spread by ``hbal -L -X``, whose commands ``hbal -L -C`` prints
first; a second run then finds nothing to do.

Needs root (loop devices); skipped with the reason otherwise.
"""

from __future__ import annotations

import os
import re
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from vcluster import VirtualCluster, virtual_cluster  # noqa: E402

from ganeti import vcluster  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200),
              pytest.mark.skipif(not vcluster.StorageAvailable(),
                                 reason="virtual nodes get LVM only as root, with lvm2"
                                        " and loop devices")]

INSTANCES = [f"bal{i}.vcluster.test" for i in range(1, 5)]
_STEP = re.compile(r"^ +\d+\. (\S+) +(\S+) +=> (\S+) +\d+\.\d{8} a=(.*)$")


@pytest.fixture(scope="module")
def vc():
    with virtual_cluster(nodes=3, storage=True) as cluster:
        yield cluster


def _placement(vc: VirtualCluster) -> dict[str, tuple[str, str]]:
    out = vc.run("gnt-instance", "list", "--no-headers", "--separator=|",
                 "-o", "name,pnode,snodes,status").stdout
    result = {}
    for line in out.splitlines():
        name, pnode, snodes, status = line.split("|")
        if name in INSTANCES:
            assert status == "running", line
            result[name] = (pnode, snodes)
    return result


@pytest.fixture(scope="module")
def piled(vc):
    """Four running DRBD instances, all primary on node 1, secondary on node 2."""
    n1, n2, _ = vc.names
    for name in INSTANCES:
        vc.run("gnt-instance", "add", "-t", "drbd", "-o", "noop+default",
               "-n", f"{n1}:{n2}", "--disk", "0:size=1G", "-B", "maxmem=128M,minmem=128M",
               "--no-name-check", "--no-ip-check", name)
    assert set(_placement(vc).values()) == {(n1, n2)}
    return vc


def test_print_commands(piled):
    vc = piled
    n1, n2, n3 = vc.names
    result = vc.run("hbal", "-L", "-C")
    out = result.stdout
    print(out)
    assert result.stderr == ""
    assert re.search(r"^Loaded 3 nodes, 4 instances$", out, re.M), out
    steps = [m.groups() for m in map(_STEP.match, out.splitlines()) if m]
    assert steps, out
    # the table shows names without their common domain
    assert all("." not in field for step in steps for field in step[:3])
    head, commands = out.split("Commands to run to reach the above solution:\n")
    cmds = [line.strip() for line in commands.splitlines() if "gnt-instance" in line]
    assert len(cmds) == sum(len(step[3].split()) for step in steps)
    shape = re.compile(r"^gnt-instance (migrate -f|replace-disks -n (\S+)) (\S+)$")
    for cmd in cmds:
        match = shape.match(cmd)
        assert match, cmd
        assert match.group(3) in INSTANCES
        assert match.group(2) in (None, n1, n2, n3)
    # node 3 is empty: it gets disks
    assert f"gnt-instance replace-disks -n {n3} " in commands
    assert commands.lstrip("\n").startswith("  echo jobset 1, ")
    # nothing was changed
    assert set(_placement(vc).values()) == {(n1, n2)}


def test_exec_spreads_the_instances(piled):
    vc = piled
    n1, n2, n3 = vc.names
    result = vc.run("hbal", "-L", "-X", timeout=900)
    print(result.stdout, result.stderr)
    assert "Executing jobset for instances" in result.stdout, result.stdout
    assert "Got job IDs" in result.stdout
    placement = _placement(vc)
    primaries = [p for p, _ in placement.values()]
    used = {n for pair in placement.values() for n in pair}
    assert len(set(primaries)) >= 2, placement
    assert n3 in used, placement
    assert max(primaries.count(n) for n in vc.names) <= 2, placement
    # the configuration agrees with the DRBD disks' nodes
    for name, (pnode, snode) in placement.items():
        disk = vc.instance_disks(name)[0]
        assert disk["dev_type"] == "drbd"
        assert pnode != snode


def test_second_run_finds_nothing_to_do(piled):
    vc = piled
    before = _placement(vc)
    result = vc.run("hbal", "-L", "-X")
    out = result.stdout
    print(out)
    assert not any(_STEP.match(line) for line in out.splitlines()), out
    assert "No solution found" in out
    assert "Empty job list, nothing to execute" in out
    assert _placement(vc) == before
