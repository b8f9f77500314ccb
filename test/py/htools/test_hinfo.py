"""Tests for ganeti.htools.hinfo: the cluster information printer."""

from __future__ import annotations

import io
import os
import subprocess
import sys

from ganeti.htools import hinfo, loader_luxi, loader_text

from test_hscan import N1_FAILING
from test_loader_luxi import FakeLuxi, records_from_message, sample_message

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
TWO_GROUPS = os.path.join(HERE, "data", "two-groups.data")


def _main(*args):
    out, err = io.StringIO(), io.StringIO()
    code = hinfo.main(list(args), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def test_text_backend():
    code, out, err = _main("-t", TWO_GROUPS)
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0] == "Loaded 7 nodes, 11 instances, 2 node groups"
    assert lines[1] == "No split instances found."
    assert lines[2] == "Group default (UUID uuid-g1), alloc policy preferred:"
    assert lines[3] == "  nodes: 4 (offline 0, drained 0), instances: 9"
    assert lines[4].startswith("  instance policy: std memory-size=128,cpu-count=1,")
    assert "disk templates drbd,plain,diskless; vcpu ratio 4; spindle ratio 32" \
        in lines[4]
    assert lines[5] == "  tags: dc:fra1"
    assert lines[6] == "  N+1 status: happy"
    assert lines[7].startswith("  score: 5.4119")
    assert lines[8] == "Group storage (UUID uuid-g2), alloc policy last_resort:"
    assert lines[9] == "  nodes: 3 (offline 1, drained 0), instances: 2"
    assert "vcpu ratio 8" in lines[10]
    assert lines[-2:] == ["Cluster is N+1 happy", "Cluster score: 5.45370377"]
    assert "Instances:" not in out and "Nodes:" not in out


def test_verbose_and_tables():
    code, out, _ = _main("-t", TWO_GROUPS, "-vv", "--print-instances", "-p")
    assert code == 0
    assert "Cluster tags: htools:iextags:service, htools:nlocation:power\n" in out
    assert "Cluster instance policy: std memory-size=128" in out
    assert "  score components: free_mem_cv=" in out
    instances = out[out.index("Instances:\n"):out.index("Nodes:\n")].splitlines()
    assert instances[1].split() == ["F", "Name", "Pri_node", "Sec_node", "auto", "vcpu",
                                    "mem", "dsk", "template", "state"]
    assert instances[4].split() == ["build.example.com", "node2.example.com", "Y", "4",
                                    "8192", "102400", "plain", "down"]
    nodes = out[out.index("Nodes:\n"):].splitlines()
    assert nodes[1].split()[:3] == ["F", "Name", "t_mem"]
    assert nodes[-1].split()[:2] == ["-", "node7.example.com"]


def test_n1_failures_and_offline_nodes(tmp_path):
    data = tmp_path / "n1.data"
    data.write_text(N1_FAILING)
    code, out, _ = _main("-t", str(data), "--print-instances")
    assert code == 0
    assert "  N+1 status: not happy, failing nodes: n2 (2 instances on them)\n" in out
    assert "Cluster is not N+1 happy: 1 node and 2 instances affected\n" in out
    flags = {line.split()[1]: line[0] for line in out.splitlines()[-2:]}
    assert flags == {"big": "*", "small": "*"}
    # n1 offline: its instances are marked, n2 no longer has a peer failing
    code, out, _ = _main("-t", str(data), "-O", "n1", "--print-instances")
    assert "  nodes: 3 (offline 1, drained 0), instances: 2\n" in out
    assert {line[0] for line in out.splitlines()[-2:]} == {"-"}


def test_split_instances():
    cluster = loader_text.load(TWO_GROUPS)
    web1 = cluster.instances["web1.example.com"]
    cluster.move(web1, "node1.example.com", "node5.example.com")
    assert [i.name for i in hinfo.split_instances(cluster)] == ["web1.example.com"]
    assert "Found 1 split instance: web1.example.com\n" in hinfo.format_info(cluster)


def test_luxi_backend(monkeypatch):
    records = records_from_message(sample_message())
    monkeypatch.setattr(loader_luxi, "load",
                        lambda socket=None: loader_luxi.query_cluster(FakeLuxi(records)))
    code, out, _ = _main("-v", "-v")
    assert code == 0
    assert out.startswith("Loaded 8 nodes, 10 instances, 2 node groups\n"
                          "Cluster name: cluster1.example.com (master"
                          " node1.example.com)\n")
    assert "Group rack2 (UUID uuid-group-2), alloc policy last_resort:\n" \
        "  nodes: 3 (offline 0, drained 0), instances: 3\n" in out


def test_errors(tmp_path):
    code, out, err = _main("-t", str(tmp_path / "missing.data"))
    assert code == 1 and out == ""
    assert err.startswith("Error: Cannot read -t file ")
    code, _, err = _main("-t", TWO_GROUPS, "-O", "node42")
    assert code == 1 and "Unknown node(s) given with -O: node42" in err


def test_save(tmp_path):
    prefix = str(tmp_path / "state")
    code, _, _ = _main("-t", TWO_GROUPS, "-S", prefix)
    assert code == 0
    with open(prefix + ".original", encoding="utf-8") as fd:
        assert fd.read() == loader_text.serialize(loader_text.load(TWO_GROUPS))


def test_launcher():
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "build", "pylib"))
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "hinfo"),
                           "-t", TWO_GROUPS], capture_output=True, text=True, env=env,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("Loaded 7 nodes, 11 instances, 2 node groups\n")
