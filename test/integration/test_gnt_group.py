"""gnt-group, and the tag commands of gnt-cluster, gnt-node and gnt-group,
on a real 2-node virtual cluster (issue 7, items 7 and 8).

One cluster serves the module; the tests run in file order and each leaves
the cluster with only the "default" group holding both nodes. Bad input
must fail with a message naming the bad value and leave the configuration
(its serial number) unchanged.
"""

from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from vcluster import VirtualCluster, virtual_cluster  # noqa: E402

from ganeti import constants  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

N1, N2 = "node1.vcluster.test", "node2.vcluster.test"


@pytest.fixture(scope="module")
def vc():
    with virtual_cluster(nodes=2) as cluster:
        yield cluster


def _Ok(vc: VirtualCluster, *args: str) -> str:
    return vc.run(*args).stdout


def _Fails(vc: VirtualCluster, *args: str, match: str) -> str:
    before = vc.config()
    result = vc.run(*args, check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0, f"{args} succeeded:\n{output}"
    assert match.lower() in output.lower(), output
    assert vc.config()["serial_no"] == before["serial_no"], f"{args} changed the config"
    return output


def _Groups(vc: VirtualCluster, fields: str = "name,node_cnt,alloc_policy") -> dict:
    out = _Ok(vc, "gnt-group", "list", "--no-headers", "--separator=|", "-o", fields)
    rows = [line.split("|") for line in out.splitlines() if line.strip()]
    return {row[0]: row[1:] for row in rows}


# --- groups ------------------------------------------------------------------------

def test_default_list(vc):
    out = _Ok(vc, "gnt-group", "list")
    header = out.splitlines()[0].split()
    assert header == ["Group", "Nodes", "Instances", "AllocPolicy", "NDParams"]
    assert out.splitlines()[1].split()[:4] == ["default", "2", "0", "preferred"]
    assert _Groups(vc) == {"default": ["2", "preferred"]}
    fields = _Ok(vc, "gnt-group", "list-fields")
    for name in ("name", "uuid", "node_list", "pinst_list", "custom_ipolicy",
                 "diskparams", "networks", "serial_no", "ctime", "mtime", "tags"):
        assert f"\n{name} " in fields or fields.startswith(f"{name} "), name


def test_group_life(vc):
    _Ok(vc, "gnt-group", "add", "--alloc-policy", "last_resort",
        "--ipolicy-vcpu-ratio", "2", "--specs-mem-size", "min=256,max=2048", "rack1")
    assert _Groups(vc)["rack1"] == ["0", "last_resort"]
    info = _Ok(vc, "gnt-group", "info", "rack1")
    assert "Node group: rack1" in info
    assert "Allocation policy: last_resort" in info
    assert "vcpu-ratio: 2.0" in info
    assert "spindle-ratio: default (32.0)" in info
    assert "memory-size: 256" in info

    _Ok(vc, "gnt-group", "assign-nodes", "rack1", N2)
    assert _Groups(vc, "name,node_list") == {"default": [N1], "rack1": [N2]}
    assert N2.split(".")[0] in _Ok(vc, "gnt-node", "list", "-o", "name,group")
    _Ok(vc, "gnt-group", "rename", "rack1", "rack2")
    assert set(_Groups(vc)) == {"default", "rack2"}

    out = _Ok(vc, "gnt-group", "modify", "--alloc-policy", "unallocable",
              "--ipolicy-spindle-ratio", "8", "--ipolicy-disk-templates", "file",
              "--ipolicy-bounds-specs",
              "min:memory-size=64,cpu-count=1/max:memory-size=512,cpu-count=2", "rack2")
    assert "Modified node group rack2" in out
    group = [g for g in vc.config()["nodegroups"].values() if g["name"] == "rack2"][0]
    assert group["alloc_policy"] == "unallocable"
    assert group["ipolicy"]["spindle-ratio"] == 8.0
    assert group["ipolicy"]["disk-templates"] == ["file"]
    assert group["ipolicy"]["minmax"][0]["max"]["memory-size"] == 512
    # "default" drops the group's override
    _Ok(vc, "gnt-group", "modify", "--ipolicy-spindle-ratio", "default", "rack2")
    assert "spindle-ratio: default (32.0)" in _Ok(vc, "gnt-group", "info", "rack2")

    _Fails(vc, "gnt-group", "remove", "rack2", match="not empty")
    _Ok(vc, "gnt-group", "assign-nodes", "default", N2)
    _Ok(vc, "gnt-group", "remove", "rack2")
    assert set(_Groups(vc)) == {"default"}


@pytest.mark.parametrize("args,match", [
    (["add", "default"], "Desired group name 'default' already exists"),
    (["remove", "default"], "Group 'default' not empty"),
    (["remove", "nosuch"], "Node group 'nosuch' not found"),
    (["rename", "default", "default"], "clashes with existing node group"),
    (["assign-nodes", "default", "nosuch.vcluster.test"],
     "Node 'nosuch.vcluster.test' not known"),
    (["assign-nodes", "nosuch", N1], "Node group 'nosuch' not found"),
    (["modify", "--ipolicy-bounds-specs", "min:memory-size=4096/max:memory-size=1024",
      "default"], "minimum memory-size (4096) is greater than the maximum (1024)"),
    (["modify", "--specs-cpu-count", "min=8,max=2", "default"],
     "minimum cpu-count (8) is greater than the maximum (2)"),
    (["modify", "--ipolicy-std-specs", "memory-sise=128", "default"],
     "Unknown instance spec 'memory-sise'"),
    (["modify", "--specs-mem-size", "maximum=128", "default"],
     "Invalid key 'maximum' in --specs-mem-size"),
    (["modify", "--ipolicy-vcpu-ratio", "lots", "default"],
     "Invalid value 'lots' for --ipolicy-vcpu-ratio"),
    (["modify", "--ipolicy-spindle-ratio", "-1", "default"], "positive number"),
    (["modify", "--ipolicy-disk-templates", "floppy", "default"], "floppy"),
    (["modify", "--node-parameters", "nosuch=1", "default"], "nosuch"),
    (["modify", "--alloc-policy", "sometimes", "default"], "sometimes"),
    (["modify", "default"], "at least one of the parameters"),
])
def test_bad_input(vc, args, match):
    _Fails(vc, "gnt-group", *args, match=match)


# --- tags -----------------------------------------------------------------------------

def test_tags(vc):
    _Ok(vc, "gnt-cluster", "add-tags", "env:test", "owner:qa")
    _Ok(vc, "gnt-node", "add-tags", N2, "rack:2")
    _Ok(vc, "gnt-group", "add-tags", "default", "site:here")
    assert _Ok(vc, "gnt-cluster", "list-tags").split() == ["env:test", "owner:qa"]
    assert _Ok(vc, "gnt-node", "list-tags", N2).split() == ["rack:2"]
    assert _Ok(vc, "gnt-group", "list-tags", "default").split() == ["site:here"]
    found = _Ok(vc, "gnt-cluster", "search-tags", "^(env|rack|site):").splitlines()
    assert found == ["/cluster env:test", "/nodegroup/default site:here",
                     f"/nodes/{N2} rack:2"]
    assert vc.run("gnt-cluster", "search-tags", "^nothing$", check=False).returncode == 1
    assert "site:here" in _Groups(vc, "name,tags")["default"][0]

    _Ok(vc, "gnt-cluster", "remove-tags", "owner:qa")
    _Ok(vc, "gnt-node", "remove-tags", N2, "rack:2")
    _Ok(vc, "gnt-group", "remove-tags", "default", "site:here")
    assert _Ok(vc, "gnt-cluster", "list-tags").split() == ["env:test"]
    assert _Ok(vc, "gnt-node", "list-tags", N2).split() == []
    assert _Ok(vc, "gnt-group", "list-tags", "default").split() == []
    _Ok(vc, "gnt-cluster", "remove-tags", "env:test")


@pytest.mark.parametrize("args,match", [
    (["gnt-cluster", "add-tags", "x" * (constants.MAX_TAG_LEN + 1)], "too long"),
    (["gnt-node", "add-tags", N1, "bad tag"], "bad tag"),
    (["gnt-node", "add-tags", "nosuch.vcluster.test", "a"], "nosuch"),
    (["gnt-group", "add-tags", "nosuch", "a"], "Node group 'nosuch' not found"),
    (["gnt-group", "remove-tags", "default", "missing"], "'missing' not found"),
])
def test_bad_tags(vc, args, match):
    _Fails(vc, *args, match=match)
