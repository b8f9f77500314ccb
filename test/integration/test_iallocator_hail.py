"""Allocators end to end on a 5-node virtual cluster with storage: our hail
(iallocators/hail, found first in the search path and run by the master
node's daemon) places new plain and drbd instances, a new secondary for
replace-disks and the moves of a node evacuation; gnt-debug iallocator
shows its input and its answer; the cluster's default allocator is used
when no node is given; a drbd instance changes node group through hail
(gnt-instance change-group) and a group is evacuated (gnt-group evacuate).

Needs root (loop devices); skipped with the reason otherwise.
"""

from __future__ import annotations

import json
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from vcluster import VirtualCluster, virtual_cluster  # noqa: E402

from ganeti import constants, vcluster  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200),
              pytest.mark.skipif(not vcluster.StorageAvailable(),
                                 reason="virtual nodes get LVM only as root, with lvm2"
                                        " and loop devices")]

#: What each node's fake hypervisor reports: room for a few instances
MEMORY_MIB = 4096


@pytest.fixture(scope="module")
def vc():
    with virtual_cluster(nodes=5, storage=True) as cluster:
        for node in cluster.names:
            path = cluster.path(node, os.path.join(constants.DEFAULT_CONF_DIR,
                                                   "fake-hypervisor.json"))
            path.write_text(json.dumps({"memory_total": MEMORY_MIB, "cpu_total": 8}))
        yield cluster


def _Gnt(vc: VirtualCluster, *args: str, check: bool = True):
    return vc.run("gnt-instance", *args, check=check)


def _Nodes(vc: VirtualCluster, name: str) -> tuple[str, list[str]]:
    pnode, snodes = _Gnt(vc, "list", "--no-headers", "--separator=|", "-o",
                         "pnode,snodes", name).stdout.strip().split("|")
    return pnode, [n for n in snodes.split(",") if n]


def _Add(vc: VirtualCluster, name: str, template: str, *extra: str, check: bool = True):
    return _Gnt(vc, "add", "-t", template, "-o", "noop+default", "--no-name-check",
                "--no-ip-check", "--no-start", "-B", "memory=512", "--disk", "0:size=1G",
                *extra, name, check=check)


def test_debug_iallocator_shows_input_and_answer(vc):
    out = vc.run("gnt-debug", "iallocator", "--mode", "allocate", "--mem", "512",
                 "--disks", "1024", "-t", "drbd", "-o", "noop+default",
                 "new.vcluster.test").stdout
    data = json.loads(out)
    assert data["request"]["type"] == "allocate"
    assert sorted(data["nodes"]) == sorted(vc.names)
    assert all(node["total_memory"] == MEMORY_MIB for node in data["nodes"].values())
    assert all(node["free_disk"] > 1024 for node in data["nodes"].values())
    out = vc.run("gnt-debug", "iallocator", "--dir", "out", "-A", "hail", "--mode",
                 "allocate", "--mem", "512", "--disks", "1024", "-t", "drbd",
                 "-o", "noop+default", "new.vcluster.test").stdout
    answer = json.loads(out)
    assert answer["success"] is True
    assert len(answer["result"]) == 2 and set(answer["result"]) <= set(vc.names)


def test_add_places_instances_with_hail(vc):
    result = _Add(vc, "h-plain.vcluster.test", "plain", "-I", "hail")
    assert "Selected nodes for the instance" in result.stdout + result.stderr
    pnode, snodes = _Nodes(vc, "h-plain.vcluster.test")
    assert pnode in vc.names and snodes == []
    _Add(vc, "h-drbd.vcluster.test", "drbd", "-I", "hail")
    pnode, snodes = _Nodes(vc, "h-drbd.vcluster.test")
    assert len(snodes) == 1 and snodes[0] != pnode
    # Too much memory for any node: refused naming the allocator, nothing made
    result = _Add(vc, "h-huge.vcluster.test", "plain", "-I", "hail", "-B",
                  "memory=8192", check=False)
    assert result.returncode != 0
    text = result.stdout + result.stderr
    assert "iallocator 'hail'" in text and "FailMem" in text
    assert "h-huge" not in _Gnt(vc, "list", "--no-headers", "-o", "name").stdout
    # An unknown allocator is named
    result = _Add(vc, "h-none.vcluster.test", "plain", "-I", "nosuchalloc", check=False)
    assert result.returncode != 0 and "nosuchalloc" in result.stdout + result.stderr


def test_default_allocator_and_shortcut(vc):
    result = vc.run("gnt-cluster", "modify", "--default-iallocator", "nosuchalloc",
                    check=False)
    assert result.returncode != 0 and "nosuchalloc" in result.stdout + result.stderr
    vc.run("gnt-cluster", "modify", "--default-iallocator", "hail")
    try:
        _Add(vc, "h-default.vcluster.test", "plain")
        assert _Nodes(vc, "h-default.vcluster.test")[0] in vc.names
        _Add(vc, "h-dot.vcluster.test", "plain", "-I", ".")
        assert _Nodes(vc, "h-dot.vcluster.test")[0] in vc.names
    finally:
        vc.run("gnt-cluster", "modify", "--default-iallocator", "")
    for name in ("h-default.vcluster.test", "h-dot.vcluster.test"):
        _Gnt(vc, "remove", "-f", name)


def test_replace_disks_and_evacuate_with_hail(vc):
    name = "h-drbd.vcluster.test"
    pnode, (old,) = _Nodes(vc, name)
    result = _Gnt(vc, "replace-disks", "-I", "hail", name)
    assert "Selected new secondary" in result.stdout + result.stderr
    pnode2, (new,) = _Nodes(vc, name)
    assert pnode2 == pnode and new not in (pnode, old)
    # Evacuate the secondary: hail picks the remaining node
    out = vc.run("gnt-node", "evacuate", "-f", "-s", "-I", "hail", new).stdout
    assert name in out or "replace" in out.lower() or out
    pnode3, (newer,) = _Nodes(vc, name)
    assert pnode3 == pnode and newer not in (pnode, new)
    _Gnt(vc, "remove", "-f", name)
    _Gnt(vc, "remove", "-f", "h-plain.vcluster.test")


def _Group(vc: VirtualCluster, node: str) -> str:
    return vc.run("gnt-node", "list", "--no-headers", "-o", "group", node).stdout.strip()


def test_change_group_and_group_evacuate_with_hail(vc):
    n1, n2, n3, n4, n5 = vc.names
    vc.run("gnt-group", "add", "rack2")
    vc.run("gnt-group", "assign-nodes", "rack2", n4, n5)
    name = "h-move.vcluster.test"
    _Add(vc, name, "drbd", "-n", f"{n1}:{n2}")
    result = _Gnt(vc, "change-group", "--to", "rack2", "-I", "hail", name)
    assert result.returncode == 0
    pnode, snodes = _Nodes(vc, name)
    assert {pnode, *snodes} == {n4, n5}
    assert _Group(vc, pnode) == "rack2"
    # Back to the default group by evacuating rack2
    vc.run("gnt-group", "evacuate", "-I", "hail", "--to", "default", "rack2")
    pnode, snodes = _Nodes(vc, name)
    assert {pnode, *snodes} <= {n1, n2, n3} and len(snodes) == 1
    # The only group's evacuation has nowhere to go
    result = vc.run("gnt-group", "evacuate", "-I", "hail", "--to", "rack2",
                    "rack2", check=False)
    assert result.returncode != 0
    _Gnt(vc, "remove", "-f", name)
