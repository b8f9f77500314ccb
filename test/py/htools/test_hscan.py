"""Tests for ganeti.htools.hscan: scan clusters, save them, print a summary."""

from __future__ import annotations

import io
import os
import subprocess
import sys

import pytest

from ganeti.htools import hscan, loader_luxi, loader_rapi, loader_text

from test_loader_luxi import FakeLuxi, records_from_message, sample_message
from test_loader_rapi import FakeRapi, rapi_answers

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
TWO_GROUPS = os.path.join(HERE, "data", "two-groups.data")

#: Three nodes; n2 cannot take its peers' failover (r_mem 2048 > f_mem 1000)
N1_FAILING = """default|g1|preferred||

n1|4096|512|1000|100000|80000|4|M|g1
n2|4096|512|1000|100000|80000|4|N|g1
n3|4096|512|3000|100000|100000|4|N|g1

big|2048|10240|1|running|Y|n1|n2|drbd||1|-
small|512|10240|1|running|Y|n2|n1|drbd||1|-


"""


@pytest.fixture
def clusters(monkeypatch):
    """RAPI clusters by name: two-groups, n1fail and a sample through the
    real RAPI loader with a fake client; any other name is unreachable."""
    sample = rapi_answers(records_from_message(sample_message()))
    known = {"two.example.com": loader_text.load(TWO_GROUPS),
             "n1fail:5080": loader_text.parse(N1_FAILING)}
    real_load = loader_rapi.load

    def load(spec):
        if spec in known:
            return known[spec]
        if spec == "https://sample.example.com":
            return real_load(spec, client_factory=lambda ep: FakeRapi(sample),
                             environ={})
        raise loader_rapi.BackendError(f"Cannot read the cluster from RAPI at"
                                       f" https://{spec}:5080: Connection refused")

    monkeypatch.setattr(loader_rapi, "load", load)
    return known


def _main(*args):
    out, err = io.StringIO(), io.StringIO()
    code = hscan.main(list(args), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def test_scan_and_save(clusters, tmp_path):
    code, out, err = _main("-d", str(tmp_path), "two.example.com", "n1fail:5080")
    assert code == 0 and err == ""
    assert out.splitlines() == [
        "Name            Nodes  Inst BNode BInst  t_mem  f_mem t_disk f_disk      Score",
        "two.example.com     7    11     0     0 515338 434584  14904  13309 5.45370377",
        "n1fail:5080         3     2     1     2  12288   5000    293    253 1.60459555",
    ]
    assert sorted(os.listdir(tmp_path)) == ["n1fail:5080.data", "two.example.com.data"]
    saved = (tmp_path / "two.example.com.data").read_text()
    assert saved == loader_text.serialize(clusters["two.example.com"])
    # what hbal -t reads back scores the same
    again = loader_text.parse(saved)
    assert hscan.cluster_score(again) == pytest.approx(5.45370377, abs=1e-8)


def test_url_names_and_real_rapi_loader(clusters, tmp_path):
    code, out, _ = _main("--no-headers", "-d", str(tmp_path),
                         "https://sample.example.com")
    assert code == 0
    line = out.splitlines()[0]
    assert line.split()[:3] == ["https://sample.example.com", "8", "10"]
    saved = tmp_path / "https:__sample.example.com.data"
    cluster = loader_text.load(str(saved))
    assert len(cluster.nodes) == 8 and len(cluster.instances) == 10


def test_errors_are_shown_and_set_the_exit_code(clusters, tmp_path):
    code, out, _ = _main("-d", str(tmp_path), "down.example.com", "two.example.com")
    lines = out.splitlines()
    assert code == 1
    assert lines[1] == ("down.example.com Cannot read the cluster from RAPI at"
                        " https://down.example.com:5080: Connection refused")
    assert lines[2].startswith("two.example.com      7    11")
    assert os.listdir(tmp_path) == ["two.example.com.data"]


def test_print_nodes(clusters, tmp_path):
    code, out, _ = _main("-pName,f_mem,r_mem", "-d", str(tmp_path), "n1fail:5080")
    assert code == 0
    lines = out.splitlines()
    assert lines[2:] == ["Name f_mem r_mem", "n1    1000   512", "n2    1000  2048",
                         "n3    3000     0"]
    code, _, err = _main("--print-nodes=bogus", "n1fail:5080")
    assert code == 1 and "Unknown node field(s): bogus" in err
    # a value must be attached: the next word is a cluster
    code, out, _ = _main("-p", "n1fail:5080", "-d", str(tmp_path))
    assert code == 0
    assert out.splitlines()[2].split()[:3] == ["F", "Name", "t_mem"]


def test_local_cluster(clusters, monkeypatch, tmp_path):
    asked = []
    records = records_from_message(sample_message())

    def load(socket=None):
        asked.append(socket)
        return loader_luxi.query_cluster(FakeLuxi(records))

    monkeypatch.setattr(loader_luxi, "load", load)
    code, out, _ = _main("-L", "-d", str(tmp_path))
    assert code == 0 and asked == [None]
    assert out.splitlines()[1].startswith("LOCAL     8    10")
    assert os.path.exists(tmp_path / "LOCAL.data")
    code, _, _ = _main("-L/run/other", "-d", str(tmp_path))
    assert asked[-1] == "/run/other"
    code, out, _ = _main("-L", "two.example.com", "-d", str(tmp_path))
    assert asked[-1] is None
    assert [line.split()[0] for line in out.splitlines()] == \
        ["Name", "LOCAL", "two.example.com"]


def test_usage_errors(tmp_path):
    code, _, err = _main()
    assert code == 1 and "no cluster given" in err
    code, _, err = _main("-d", str(tmp_path / "missing"), "c1")
    assert code == 1 and "not a directory" in err


def test_save_failure(clusters, tmp_path):
    (tmp_path / "two.example.com.data").mkdir()  # in the way of the file
    code, out, _ = _main("-d", str(tmp_path), "two.example.com", "n1fail:5080")
    lines = out.splitlines()
    assert code == 1
    assert lines[1].startswith(f"two.example.com Cannot save the cluster to"
                               f" {tmp_path}/two.example.com.data:")
    assert lines[2].startswith("n1fail:5080 ")


def test_launcher():
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "build", "pylib"))
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "hscan"), "-V"],
                          capture_output=True, text=True, env=env, check=False)
    assert proc.returncode == 0 and proc.stdout.startswith("hscan (ganeti) version")
