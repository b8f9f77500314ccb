"""Tests for ganeti.htools.loader_text."""

import os

import pytest

from ganeti.htools import loader_text
from ganeti.htools.loader_iallocator import InputError

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")


def test_two_groups_sample():
    cluster = loader_text.load(f"{DATA}/two-groups.data")
    assert [g.name for g in sorted(cluster.groups.values(), key=lambda g: g.name)] == \
        ["default", "storage"]
    storage = cluster.find_group("storage")
    assert storage.alloc_policy == "last_resort" and storage.networks == ["net-uuid-1"]
    assert storage.ipolicy.vcpu_ratio == 8.0 and storage.ipolicy.std.cpu_count == 2
    assert cluster.find_group("default").ipolicy.disk_templates == \
        ("drbd", "plain", "diskless")
    assert cluster.ipolicy.disk_templates[0] == "drbd"
    assert cluster.tags == ["htools:iextags:service", "htools:nlocation:power"]
    node1 = cluster.nodes["node1.example.com"]
    assert node1.is_master and node1.tags == {"rack:r1", "power:a"}
    assert node1.locations == {"power:a"}
    node2 = cluster.nodes["node2.example.com"]
    # build is down: its memory is reserved on top of the reported free memory
    assert node2.f_mem == 46247 - 8192
    assert cluster.nodes["node7.example.com"].offline
    db1 = cluster.instances["db1.example.com"]
    assert (db1.pnode, db1.snode, db1.disk_template) == \
        ("node2.example.com", "node3.example.com", "drbd")
    assert db1.excl_tags == {"service:db"}
    assert cluster.instances["scratch.example.com"].admin_state == "offline"


def test_legacy_format():
    cluster = loader_text.load(f"{DATA}/legacy-2.4.data")
    assert len(cluster.nodes) == 3 and cluster.tags == []
    assert cluster.nodes["node-01"].t_spindles == 1
    assert cluster.nodes["node-03"].offline
    inst = cluster.instances["inst-c"]
    assert inst.disk_template == "diskless" and not inst.auto_balance
    assert inst.admin_state == "down"


def test_exclusive_storage_sample():
    cluster = loader_text.load(f"{DATA}/exclusive-storage.data")
    node = cluster.nodes["node-02"]
    assert node.exclusive_storage and node.f_spindles == 8 and node.n_cpu == 2
    assert cluster.nodes["node-03"].cpu_speed == 1.5
    assert cluster.instances["vol1"].disks[0].spindles == 1


@pytest.mark.parametrize("name", ["two-groups", "legacy-2.4", "exclusive-storage"])
def test_round_trip(name):
    cluster = loader_text.load(f"{DATA}/{name}.data")
    text = loader_text.serialize(cluster)
    again = loader_text.parse(text)
    assert loader_text.serialize(again) == text
    for node in cluster.nodes.values():
        other = again.nodes[node.name]
        assert (other.f_mem, other.f_dsk, other.r_mem, other.available) == \
            (node.f_mem, node.f_dsk, node.r_mem, node.available)


def test_policy_lines_right_after_instances():
    """Files without a tags section (policies following the instances)."""
    text = ("g|u1|preferred\n\nn1|1000|0|1000|1000|1000|4|N|u1|1\n\n"
            "i1|100|100|1|running|Y|n1||plain||1\n\n"
            "|128,1,1024,1,1,1|128,1,1024,1,1,1;32768,8,1048576,16,8,12|plain|2.0|32.0\n")
    cluster = loader_text.parse(text)
    assert cluster.tags == [] and cluster.ipolicy.vcpu_ratio == 2.0


def test_old_policy_format():
    text = ("g|u1|preferred\n\n\n\n\n"
            "g|128,1,1024,1,1,1|128,1,1024,1,1,1|32768,8,1048576,16,8,12|plain|4.0|32.0\n")
    cluster = loader_text.parse(text)
    assert cluster.groups["u1"].ipolicy.minmax[0][1].memory_size == 32768


def test_storage_column():
    text = ("g|u1|preferred||\n\n"
            "n1|1000|0|1000|6000|6000|4|N|u1|1||N|1|0|1.0|"
            "2000,4000,drbd8,xenvg;5000,10000,file,/srv/a\n\n\n\n")
    node = loader_text.parse(text).nodes["n1"]
    assert [(u.kind, u.key, u.free, u.total) for u in node.storage] == [
        ("drbd8", "xenvg", 2000, 4000), ("file", "/srv/a", 5000, 10000)]


@pytest.mark.parametrize("text, expected", [
    ("g|u1\n\n\n\n\n", "invalid/incomplete group data"),
    ("g|u1|sometimes\n\n\n\n\n", "unknown allocation policy"),
    ("g|u1|preferred\n\nn1|x|0|0|0|0|1|N|u1\n\n\n\n",
     "line 3: node 'n1': total memory must be"),
    ("g|u1|preferred\n\nn1|1|0|0|0|0|1|N|u9\n\n\n\n", "node 'n1': unknown group 'u9'"),
    ("g|u1|preferred\n\nn1|1|0|0|0|0|1|Q|u1\n\n\n\n", "offline/role flag"),
    ("g|u1|preferred\n\nn1|1|0|0|0|0|1|N|u1\n\ni|1|1|1|running|Y|n2||plain\n\n\n",
     "line 5: instance 'i': unknown node 'n2'"),
    ("g|u1|preferred\n\nn1|1|0|0|0|0|1|N|u1\n\ni|1|1|1|sleeping|Y|n1||plain\n\n\n",
     "unknown status 'sleeping'"),
    ("g|u1|preferred\n\nn1|1|0|0|0|0|1|N|u1\n\ni|1|1|1|running|X|n1||plain\n\n\n",
     "auto_balance must be Y or N"),
    ("g|u1|preferred\n\nn1|1|0|0|0|0|1|N|u1\n\ni|1|1|1|running|Y|n1|n1|drbd\n\n\n",
     "same primary and secondary"),
    ("g|u1|preferred\n\n\n\n\n|1,1,1|1,1,1,1,1;2,2,2,2,2|plain|4.0|32.0\n",
     "a spec needs 5 or 6"),
    ("g|u1|preferred\n\n\n\n\nzz|1,1,1,1,1|1,1,1,1,1;2,2,2,2,2|plain|4.0|32.0\n",
     "ipolicy for unknown group 'zz'"),
    ("just one section\n", "1 sections instead of 4 or 5"),
])
def test_malformed(text, expected):
    with pytest.raises(InputError, match=expected):
        loader_text.parse(text)
