"""Tests for ganeti.htools.cli: the htools' common options and load_cluster."""

from __future__ import annotations

import argparse
import json
import os

import pytest

from ganeti.htools import cli, loader_luxi, loader_rapi, loader_text

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "data")
TWO_GROUPS = os.path.join(DATA, "two-groups.data")


def _parse(*args: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="htool")
    cli.add_backend_options(parser)
    return parser.parse_args(list(args))


# --- options ------------------------------------------------------------------------

def test_defaults():
    opts = _parse()
    assert (opts.luxi, opts.rapi, opts.text_data, opts.ialloc_src, opts.simulate) == \
        (None, None, None, None, None)
    assert opts.group is None and opts.offline == [] and not opts.ignore_dynu
    assert opts.print_nodes is None and opts.save_cluster is None
    assert opts.verbose == 1


def test_options():
    opts = _parse("-L", "-G", "rack2", "-O", "n1,n2", "--offline", "n3", "--ignore-dynu",
                  "-p", "-S", "state", "-v", "-v", "-q")
    assert opts.luxi == "" and opts.group == "rack2"
    assert cli.offline_names(opts) == ["n1", "n2", "n3"]
    assert opts.ignore_dynu and opts.print_nodes == "" and opts.save_cluster == "state"
    assert opts.verbose == 2
    opts = _parse("-L/run/sock", "-p", "+spn,tags", "-qq")
    assert opts.luxi == "/run/sock" and opts.print_nodes == "+spn,tags"
    assert opts.verbose == -1
    assert _parse("--luxi", "/s").luxi == "/s"
    assert _parse("-m", "c1:5080").rapi == "c1:5080"
    assert _parse("--text-data", "f").text_data == "f"
    assert _parse("-I", "req.json").ialloc_src == "req.json"
    assert _parse("--simulate", "p,2,1t,64g,8", "--simulate", "a,1,1t,64g,8").simulate == \
        ["p,2,1t,64g,8", "a,1,1t,64g,8"]
    assert _parse("--save", "x").save_cluster == "x"
    assert _parse("--save-cluster", "x").save_cluster == "x"


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        _parse("-V")
    assert exc.value.code == 0
    assert capsys.readouterr().out.startswith("htool (ganeti) version ")


def test_attached_values_only():
    assert cli.attached_values_only(["-p", "c1", "-L", "c2", "-pName", "-L/s",
                                     "--print-nodes", "--luxi=/x", "--", "-p"]) == \
        ["--print-nodes=", "c1", "--luxi=", "c2", "-pName", "-L/s", "--print-nodes=",
         "--luxi=/x", "--", "-p"]
    opts = _parse(*cli.attached_values_only(["-p", "-L"]))
    assert opts.print_nodes == "" and opts.luxi == ""


# --- backends -----------------------------------------------------------------------

def test_text_backend():
    cluster = cli.load_cluster(_parse("-t", TWO_GROUPS))
    assert len(cluster.nodes) == 7 and len(cluster.instances) == 11


def test_simulate_backend():
    cluster = cli.load_cluster(_parse("--simulate", "p,3,1t,64g,8",
                                      "--simulate", "u,2,500g,32g,4"))
    assert len(cluster.nodes) == 5 and len(cluster.groups) == 2


def test_iallocator_backend():
    cluster = cli.load_cluster(_parse("-I", os.path.join(DATA, "alloc-drbd.json")))
    with open(os.path.join(DATA, "alloc-drbd.json"), encoding="utf-8") as fd:
        assert sorted(cluster.nodes) == sorted(json.load(fd)["nodes"])


def test_luxi_and_rapi_backends(monkeypatch):
    seen = []
    sample = loader_text.load(TWO_GROUPS)
    monkeypatch.setattr(loader_luxi, "load", lambda sock=None: seen.append(("L", sock))
                        or sample)
    monkeypatch.setattr(loader_rapi, "load", lambda spec: seen.append(("m", spec))
                        or sample)
    assert cli.load_cluster(_parse()) is sample
    assert cli.load_cluster(_parse("-L")) is sample
    assert cli.load_cluster(_parse("-L", "/tmp/s")) is sample
    assert cli.load_cluster(_parse("-m", "c1")) is sample
    assert seen == [("L", None), ("L", None), ("L", "/tmp/s"), ("m", "c1")]


def test_one_backend_only():
    with pytest.raises(cli.LoadError, match="Only one backend may be given, got 2:"
                       " -L, -t"):
        cli.load_cluster(_parse("-L", "-t", TWO_GROUPS))
    with pytest.raises(cli.LoadError, match="got 2: -m, --simulate"):
        cli.load_cluster(_parse("-m", "c1", "--simulate", "p,1,1t,1g,1"))


def test_master_down(tmp_path):
    sock = str(tmp_path / "ganeti-master")
    with pytest.raises(cli.LoadError) as err:
        cli.load_cluster(_parse("-L", sock))
    assert sock in str(err.value) and "no backend was given" not in str(err.value)


def test_master_down_without_backend(monkeypatch):
    def down(sock=None):
        raise loader_luxi.BackendError("Cannot connect to the master daemon at /x")

    monkeypatch.setattr(loader_luxi, "load", down)
    with pytest.raises(cli.LoadError, match="no backend was given, so the local master"
                       " was asked: use -L, -m, -t, -I or --simulate"):
        cli.load_cluster(_parse())


def test_rapi_errors(monkeypatch):
    with pytest.raises(cli.LoadError, match="only https:// URLs"):
        cli.load_cluster(_parse("-m", "http://c1"))

    def refused(spec):
        raise loader_rapi.BackendError("Cannot read the cluster from RAPI at"
                                       " https://c1:5080: refused")

    monkeypatch.setattr(loader_rapi, "load", refused)
    with pytest.raises(cli.LoadError, match="https://c1:5080: refused"):
        cli.load_cluster(_parse("-m", "c1"))


def test_unreadable_and_malformed_files(tmp_path):
    missing = str(tmp_path / "nope.data")
    with pytest.raises(cli.LoadError, match=f"Cannot read -t file {missing}: No such"
                       " file"):
        cli.load_cluster(_parse("-t", missing))
    bad = tmp_path / "bad.data"
    bad.write_text("g|u|preferred\n\nn1|x|1|1|1|1|1|N|u\n\n\n\n")
    with pytest.raises(cli.LoadError) as err:
        cli.load_cluster(_parse("-t", str(bad)))
    assert f"Invalid -t file {bad}: line 3: node 'n1': total memory must be a number" \
        in str(err.value)
    binary = tmp_path / "binary.data"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(cli.LoadError, match="not UTF-8"):
        cli.load_cluster(_parse("-t", str(binary)))
    req = tmp_path / "req.json"
    req.write_text("{")
    with pytest.raises(cli.LoadError, match=f"Invalid -I file {req}: Parsing input"):
        cli.load_cluster(_parse("-I", str(req)))


def test_bad_simulation():
    with pytest.raises(cli.LoadError, match="Invalid --simulate description: Invalid"
                       " cluster specification 'p,x,1t,1g,1'"):
        cli.load_cluster(_parse("--simulate", "p,x,1t,1g,1"))
    with pytest.raises(cli.LoadError, match="Invalid allocation policy 'often'"):
        cli.load_cluster(_parse("--simulate", "often,1,1t,1g,1"))


# --- -O, -G, --ignore-dynu, -p ------------------------------------------------------

def test_offline_nodes():
    cluster = cli.load_cluster(_parse("-t", TWO_GROUPS, "-O",
                                      "node1.example.com,node2", "-O", "node5"))
    offline = sorted(n.name for n in cluster.nodes.values() if n.offline)
    assert offline == ["node1.example.com", "node2.example.com", "node5.example.com",
                       "node7.example.com"]


def test_unknown_offline_node():
    with pytest.raises(cli.LoadError) as err:
        cli.load_cluster(_parse("-t", TWO_GROUPS, "-O", "node1,node9,ghost"))
    text = str(err.value)
    assert "Unknown node(s) given with -O: node9, ghost" in text
    assert "node1.example.com, node2.example.com" in text


def test_ambiguous_short_name():
    cluster = cli.load_cluster(_parse("--simulate", "p,2,1t,1g,1"))
    cluster.nodes["n1.a"] = cluster.nodes.pop("node-01-001")
    cluster.nodes["n1.b"] = cluster.nodes.pop("node-01-002")
    assert cli.find_node(cluster, "n1") is None
    assert cli.find_node(cluster, "n1.a") == "n1.a"


def test_groups():
    opts = _parse("-t", TWO_GROUPS, "-G", "storage")
    cluster = cli.load_cluster(opts)
    assert cli.select_group(cluster, opts).uuid == "uuid-g2"
    assert cli.select_group(cluster, _parse("-G", "uuid-g1")).name == "default"
    assert cli.select_group(cluster, _parse()) is None  # two groups with nodes
    with pytest.raises(cli.LoadError, match="Unknown node group 'rack9' given with -G"
                       r" \(the cluster has: default, storage\)"):
        cli.load_cluster(_parse("-t", TWO_GROUPS, "-G", "rack9"))
    one = cli.load_cluster(_parse("--simulate", "p,2,1t,1g,1"))
    assert cli.select_group(one, _parse()).name == "group-01"


def test_ignore_dynu():
    cluster = cli.load_cluster(_parse("-t", TWO_GROUPS))
    for inst in cluster.instances.values():
        inst.util = (1.0, 2.0, 3.0, 4.0)
    cli.ignore_dynamic_utilisation(cluster)
    assert {i.util for i in cluster.instances.values()} == {(0.0, 0.0, 0.0, 0.0)}
    assert {n.util for n in cluster.nodes.values()} == {(0.0, 0.0, 0.0, 0.0)}


def test_print_fields():
    assert cli.node_fields(_parse()) is None
    assert cli.node_fields(_parse("-p"))[:2] == ["F", "Name"]
    assert cli.node_fields(_parse("-p", "Name,spn")) == ["Name", "spn"]
    with pytest.raises(cli.LoadError, match="Invalid -p field list 'Name,bogus'"):
        # checked before loading anything
        cli.load_cluster(_parse("-p", "Name,bogus", "-L", "/nonexistent/socket"))


def test_save_cluster(tmp_path):
    cluster = cli.load_cluster(_parse("-t", TWO_GROUPS))
    path = tmp_path / "saved.data"
    cli.save_cluster(cluster, str(path))
    assert path.read_text() == loader_text.serialize(cluster)
    assert (path.stat().st_mode & 0o777) == 0o644
    with pytest.raises(cli.LoadError, match="Cannot save the cluster to"):
        cli.save_cluster(cluster, str(tmp_path / "no" / "such" / "dir"))
