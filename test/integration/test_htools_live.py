"""htools against a live three-node virtual cluster: the luxi and RAPI
loaders, hscan and hinfo.

The fake hypervisor is given a fixed memory size per node (its settings
file), so that the nodes' free memory does not follow this machine's; the
cluster holds a running file instance and a stopped diskless one. The
cluster as the loaders read it must agree with ``gnt-node list`` and
``gnt-instance list`` (free disk within a few MiB: it is the file
system's, and moves while other tests run), luxi and RAPI must read the
same cluster, and what hscan saves must load back with ``-t``.
"""

from __future__ import annotations

import json
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from vcluster import VirtualCluster, virtual_cluster  # noqa: E402

from ganeti import constants, vcluster  # noqa: E402
from ganeti.htools import loader_luxi, loader_rapi, loader_text  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

MEMORY = 8192
CPUS = 4
RUNNING = "web.vcluster.test"
STOPPED = "idle.vcluster.test"
#: Free disk is the file system's: allow it to move between two reads
DISK_SLACK = 64


@pytest.fixture(scope="module")
def vc():
    with virtual_cluster(nodes=3) as cluster:
        for node in cluster.names:
            cluster.path(node, "/etc/ganeti/fake-hypervisor.json").write_text(
                json.dumps({"memory_total": MEMORY, "cpu_total": CPUS}))
        add = ["gnt-instance", "add", "-o", "noop+default", "--no-name-check",
               "--no-ip-check"]
        cluster.run(*add, "-t", "file", "-s", "1G", "-B", "memory=512,vcpus=2",
                    "-n", cluster.names[1], RUNNING)
        cluster.run(*add, "-t", "diskless", "-B", "memory=1024", "--no-start",
                    "-n", cluster.names[2], STOPPED)
        yield cluster


def _Table(vc: VirtualCluster, tool: str, fields: str) -> dict[str, dict[str, str]]:
    out = vc.run(tool, "list", "--no-headers", "--separator=|", "--units=m",
                 "-o", "name," + fields).stdout
    names = fields.split(",")
    return {row[0]: dict(zip(names, row[1:]))
            for row in (line.split("|") for line in out.splitlines() if line)}


def _Socket(vc: VirtualCluster) -> str:
    return str(vc.path(vc.master(), constants.DEFAULT_RUN_DIR + "/socket/ganeti-master"))


def _Rapi(vc: VirtualCluster) -> tuple[str, dict[str, str]]:
    """The ``-m`` of the cluster and the credentials' environment."""
    state = vc.state()
    assert state is not None
    master = vc.node(vc.master())
    with open(os.path.join(vc.directory, vcluster.RAPI_PASSWORD_FILE),
              encoding="utf-8") as fd:
        password = fd.read().strip()
    return (f"{master.ip}:{vcluster.RAPI_PORT}",
            {"RAPI_USER": vcluster.RAPI_USER, "RAPI_PASSWORD": password})


def _CheckAgainstGnt(vc: VirtualCluster, cluster) -> None:
    nodes = _Table(vc, "gnt-node", "mtotal,mnode,mfree,dtotal,dfree,ctotal,cnos,"
                   "pinst_cnt,sinst_cnt,group.uuid")
    insts = _Table(vc, "gnt-instance", "pnode,snodes,be/maxmem,be/vcpus,"
                   "disk_template,disk_usage,status")
    assert sorted(cluster.nodes) == sorted(nodes) == sorted(vc.names)
    assert sorted(cluster.instances) == sorted(insts) == sorted([RUNNING, STOPPED])
    assert len(cluster.groups) == 1
    for name, row in nodes.items():
        node = cluster.nodes[name]
        # a stopped primary's memory is kept for it (hbal(1))
        down = sum(i.memory for i in cluster.instances.values()
                   if i.pnode == name and not i.is_running)
        assert (node.t_mem, node.n_mem, node.f_mem + down) == \
            (float(row["mtotal"]), int(row["mnode"]), int(row["mfree"])), name
        assert node.t_mem == MEMORY
        assert (node.t_dsk, node.t_cpu, node.n_cpu) == \
            (float(row["dtotal"]), float(row["ctotal"]), int(row["cnos"])), name
        assert abs(node.f_dsk - int(row["dfree"])) <= DISK_SLACK, name
        assert (len(node.plist), len(node.slist)) == \
            (int(row["pinst_cnt"]), int(row["sinst_cnt"])), name
        assert node.group == row["group.uuid"]
        assert node.is_master == (name == vc.master())
    for name, row in insts.items():
        inst = cluster.instances[name]
        assert (inst.pnode, inst.snode or "") == (row["pnode"], row["snodes"])
        assert (inst.memory, inst.vcpus, inst.disk_template, inst.disk_space) == \
            (int(row["be/maxmem"]), int(row["be/vcpus"]), row["disk_template"],
             int(row["disk_usage"]))
        assert loader_text.ADMIN_TO_STATUS[inst.admin_state] == row["status"]
    web = cluster.nodes[vc.names[1]]
    assert web.f_mem == MEMORY - 512 and web.i_mem == 512
    idle = cluster.nodes[vc.names[2]]
    assert idle.f_mem == MEMORY - 1024 and idle.i_mem == 1024


def _Summary(cluster) -> dict:
    """What both loaders must agree on (free disk aside)."""
    return {
        "nodes": {n.name: (n.t_mem, n.n_mem, n.f_mem, n.t_dsk, n.t_cpu, n.n_cpu,
                           n.offline, n.drained, n.group, n.is_master,
                           sorted(n.plist), sorted(n.slist), n.r_mem, n.x_mem)
                  for n in cluster.nodes.values()},
        "instances": {i.name: (i.memory, i.vcpus, i.disks, i.disk_template,
                               i.admin_state, i.pnode, i.snode, i.tags)
                      for i in cluster.instances.values()},
        "groups": {g.uuid: (g.name, g.alloc_policy, g.ipolicy, g.tags)
                   for g in cluster.groups.values()},
        "tags": cluster.tags, "ipolicy": cluster.ipolicy,
    }


def test_luxi_loader_matches_gnt_lists(vc):
    cluster = loader_luxi.load(_Socket(vc))
    assert cluster.name == vc.state().cluster_name
    _CheckAgainstGnt(vc, cluster)


def test_rapi_loader_matches_luxi(vc):
    spec, creds = _Rapi(vc)
    by_rapi = loader_rapi.load(spec, environ=creds)
    _CheckAgainstGnt(vc, by_rapi)
    assert _Summary(by_rapi) == _Summary(loader_luxi.load(_Socket(vc)))
    # reads need no credentials unless the daemon requires them
    anonymous = loader_rapi.load("https://" + spec, environ={})
    assert sorted(anonymous.instances) == sorted(by_rapi.instances)
    closed = f"{spec.split(':')[0]}:1"
    with pytest.raises(loader_rapi.BackendError,
                       match=f"Cannot read the cluster from RAPI at https://{closed}"):
        loader_rapi.load(closed, environ={})


def test_hscan_saves_what_t_loads(vc, tmp_path):
    spec, _ = _Rapi(vc)
    result = vc.run("hscan", "-d", str(tmp_path), "-p", spec, "-L")
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["Name", "Nodes", "Inst", "BNode", "BInst", "t_mem",
                                "f_mem", "t_disk", "f_disk", "Score"]
    local = lines[1].split()
    assert local[:6] == ["LOCAL", "3", "2", "0", "0", str(3 * MEMORY)]
    assert any(line.split()[:3] == [spec, "3", "2"] for line in lines)
    assert any(line.split()[:2] == ["F", "Name"] for line in lines)  # -p
    assert sorted(os.listdir(tmp_path)) == sorted(["LOCAL.data", spec + ".data"])
    saved = loader_text.load(str(tmp_path / "LOCAL.data"))
    _CheckAgainstGnt(vc, saved)
    live = loader_luxi.load(_Socket(vc))
    want, got = _Summary(live), _Summary(saved)
    # the text format has no cluster name; the rest survives
    assert got == want
    info = vc.run("hinfo", "-t", str(tmp_path / (spec + ".data"))).stdout
    assert info.startswith("Loaded 3 nodes, 2 instances, 1 node group\n")


def test_hinfo_on_the_live_cluster(vc):
    out = vc.run("hinfo", "-v", "-v", "--print-instances").stdout
    assert out.startswith("Loaded 3 nodes, 2 instances, 1 node group\n"
                          f"Cluster name: {vc.state().cluster_name}"
                          f" (master {vc.master()})\n")
    assert "  nodes: 3 (offline 0, drained 0), instances: 2\n" in out
    assert "Cluster is N+1 happy\n" in out
    rows = {line.split()[0]: line.split() for line in out.splitlines()
            if line.split() and line.split()[0] in (RUNNING, STOPPED)}
    assert rows[RUNNING][-2:] == ["file", "up"] and rows[STOPPED][-2:] == \
        ["diskless", "down"]
    offline = vc.run("hinfo", "-L", "-O", vc.names[2].split(".")[0]).stdout
    assert "  nodes: 3 (offline 1, drained 0), instances: 2\n" in offline
    bad = vc.run("hinfo", "-O", "node9", check=False)
    assert bad.returncode == 1
    assert "Unknown node(s) given with -O: node9" in bad.stderr
