"""Tests for ganeti.htools.capacity: hspace's allocation loops."""

import pytest

from ganeti.htools import capacity, loader_simu, loader_text
from ganeti.htools.capacity import Request, Spec

GIB = 1024
#: the default policy's min/max pair and ratios
POLICY = ("128,1,1024,1,1,1;32768,8,1048576,16,8,12", 4.0, 32.0)


def text_data(nodes, instances=(), templates="plain,drbd,diskless",
              std="128,1,1024,1,1,1", minmax=POLICY[0], vcpu_ratio=POLICY[1],
              groups=(("default", "uuid-1", "preferred"),), group_policies=()):
    """htools text data: ``nodes`` as (name, memory, free memory, disk,
    free disk, cpus[, group uuid, spindles, exclusive, free spindles])."""
    glines = [f"{name}|{uuid}|{pol}||" for name, uuid, pol in groups]
    nlines = []
    for node in nodes:
        name, mem, fmem, dsk, fdsk, cpus, *rest = node
        guuid, spindles, excl, fspn = (rest + [groups[0][1], 1, "N", 0][len(rest):])
        nlines.append(f"{name}|{mem}|0|{fmem}|{dsk}|{fdsk}|{cpus}|N|{guuid}|{spindles}"
                      f"||{excl}|{fspn}|0|1.0")
    policy = f"|{std}|{minmax}|{templates}|{vcpu_ratio}|{POLICY[2]}"
    plines = [policy] + [f"{name}|{line}" for name, line in group_policies]
    sections = [glines, nlines, list(instances), [], plines]
    return "\n".join("".join(line + "\n" for line in sec) for sec in sections)


def four_nodes(mem=64 * GIB, disk=1024 * GIB, cpus=16, **kwargs):
    """4 identical empty nodes."""
    nodes = [(f"node{i}", mem, mem, disk, disk, cpus) for i in range(1, 5)]
    return loader_text.parse(text_data(nodes, **kwargs))


def everywhere(cluster, **kwargs):
    return capacity.gate(cluster, **kwargs)


def standard(cluster, spec, template="plain", **kwargs):
    return capacity.standard_allocation(cluster, spec, Request(template, **kwargs),
                                        everywhere(cluster))


def test_memory_bound_plain():
    cluster = four_nodes()
    result = standard(cluster, Spec(4 * GIB, 10 * GIB, 1))
    # 64 GiB per node, 4 GiB each: 16 per node
    assert result.count == 64
    assert result.fails == {"FailMem": 4} and result.main_reason() == "FailMem"
    assert all(len(n.plist) == 16 for n in result.cluster.nodes.values())
    # the cluster given is left as it was
    assert not cluster.instances and cluster.nodes["node1"].f_mem == 64 * GIB


def test_drbd_halves_disk():
    # room for exactly ten 10 GiB disks (with DRBD metadata) per node
    cluster = four_nodes(disk=10 * (10 * GIB + 128))
    plain = standard(cluster, Spec(GIB, 10 * GIB, 1))
    drbd = standard(cluster, Spec(GIB, 10 * GIB, 1), "drbd")
    assert plain.count == 40 and drbd.count == 20
    assert plain.main_reason() == drbd.main_reason() == "FailDisk"
    for inst, _ in drbd.allocated:
        assert inst.pnode != inst.snode and inst.snode is not None
    assert all(n.f_dsk == 0 for n in drbd.cluster.nodes.values())


def test_drbd_keeps_n_plus_1():
    # two 8 GiB nodes: A's primaries plus what B's primaries would bring
    # on a failover must fit in A's memory, so 8 instances of 1 GiB in all
    nodes = [("nodea", 8 * GIB, 8 * GIB, 1024 * GIB, 1024 * GIB, 16),
             ("nodeb", 8 * GIB, 8 * GIB, 1024 * GIB, 1024 * GIB, 16)]
    cluster = loader_text.parse(text_data(nodes))
    result = standard(cluster, Spec(GIB, GIB, 1), "drbd")
    assert result.count == 8
    assert not result.cluster.n1_failures()
    assert set(result.fails) <= {"FailN1", "FailMem"} and result.fails


def test_cpu_bound():
    # 4 CPUs at a vCPU ratio of 4: 16 vCPUs per node, 8 instances of 2
    cluster = four_nodes(cpus=4)
    result = standard(cluster, Spec(GIB, GIB, 2))
    assert result.count == 32 and result.fails == {"FailCPU": 4}


def test_tiered_shrinks_the_failing_resource():
    cluster = four_nodes(mem=48 * GIB, disk=2048 * GIB)
    starts = capacity.tiered_starts(cluster.ipolicy)
    assert starts == [(Spec(32768, 1048576, 8, 12), Spec(128, 1024, 1, 1))]
    result = capacity.tiered_allocation(cluster, starts, Request("plain"),
                                        everywhere(cluster))
    # one of the max spec per node, then memory shrinks to the 16 GiB left
    assert result.spec_counts() == [(Spec(32768, 1048576, 8, 12), 4),
                                    (Spec(16384, 1048576, 8, 12), 4)]
    assert result.main_reason() == "FailMem"


def test_tiered_shrinks_disk_then_memory():
    cluster = four_nodes(mem=40 * GIB, disk=1536 * GIB)
    result = capacity.tiered_allocation(
        cluster, [(Spec(32 * GIB, 1024 * GIB, 2, 1), Spec(128, 1024, 1, 1))],
        Request("plain"), everywhere(cluster))
    assert result.spec_counts() == [(Spec(32 * GIB, 1024 * GIB, 2, 1), 4),
                                    (Spec(8 * GIB, 512 * GIB, 2, 1), 4)]


def test_tiered_stops_at_the_policy_minimum():
    cluster = four_nodes(mem=48 * GIB, disk=2048 * GIB,
                         minmax="20000,1,1024,1,1,1;32768,8,1048576,16,8,12")
    result = capacity.tiered_allocation(cluster, capacity.tiered_starts(cluster.ipolicy),
                                        Request("plain"), everywhere(cluster))
    # 16 GiB left per node is below the 20000 MiB minimum
    assert result.spec_counts() == [(Spec(32768, 1048576, 8, 12), 4)]


def test_tiered_goes_through_each_min_max_pair():
    minmax = "20000,4,1024,1,1,1;32768,4,1048576,16,8,12;128,1,1024,1,1,1;8192,2,65536,16,8,12"
    cluster = four_nodes(mem=48 * GIB, disk=2048 * GIB, minmax=minmax)
    starts = capacity.tiered_starts(cluster.ipolicy)
    assert [s for s, _ in starts] == [Spec(32768, 1048576, 4, 12), Spec(8192, 65536, 2, 12)]
    result = capacity.tiered_allocation(cluster, starts, Request("plain"),
                                        everywhere(cluster))
    # 16 GiB left per node after the big ones: two more of the small pair's max
    assert result.spec_counts() == [(Spec(32768, 1048576, 4, 12), 4),
                                    (Spec(8192, 65536, 2, 12), 8)]


def test_tiered_spindles_on_exclusive_storage():
    nodes = [(f"node{i}", 64 * GIB, 64 * GIB, 1024 * GIB, 1024 * GIB, 16, "uuid-1", 10,
              "Y", 10) for i in range(1, 5)]
    cluster = loader_text.parse(text_data(nodes))
    result = capacity.tiered_allocation(cluster, capacity.tiered_starts(cluster.ipolicy),
                                        Request("plain"), everywhere(cluster))
    # exclusive storage: a disk takes its spindles from the node's 10
    assert result.spec_counts() == [(Spec(32768, 1048576, 8, 10), 4)]
    assert all(n.f_spindles == 0 for n in result.cluster.nodes.values())


def test_limit():
    cluster = four_nodes()
    result = standard(cluster, Spec(4 * GIB, 10 * GIB, 1), max_allocs=5)
    assert result.count == 5 and result.limited
    tiered = capacity.tiered_allocation(cluster, capacity.tiered_starts(cluster.ipolicy),
                                        Request("plain", max_allocs=3),
                                        everywhere(cluster))
    assert tiered.count == 3 and tiered.limited


def test_policy_violation_counts_per_node():
    cluster = four_nodes()
    result = standard(cluster, Spec(64 * GIB, GIB, 1))
    # above the policy's 32 GiB maximum
    assert result.count == 0 and result.fails == {"FailMem": 4}
    result = standard(cluster, Spec(GIB, GIB, 1), "rbd")
    assert result.count == 0 and result.main_reason() == "FailDisk"


def _n1_failing_two_groups():
    groups = (("bad", "uuid-1", "preferred"), ("good", "uuid-2", "preferred"))
    nodes = [("node1", 8 * GIB, 2 * GIB, 100 * GIB, 100 * GIB, 8, "uuid-1"),
             ("node2", 8 * GIB, 4 * GIB, 100 * GIB, 100 * GIB, 8, "uuid-1"),
             ("node3", 8 * GIB, 8 * GIB, 100 * GIB, 100 * GIB, 8, "uuid-2"),
             ("node4", 8 * GIB, 8 * GIB, 100 * GIB, 100 * GIB, 8, "uuid-2")]
    # node1 would get 4 GiB from node2 on a failover but has 2 GiB free
    insts = ["big|4096|10240|1|running|Y|node2|node1|drbd||1|-"]
    return loader_text.parse(text_data(nodes, insts, groups=groups))


def test_gate_on_n1_failures():
    cluster = _n1_failing_two_groups()
    assert [n.name for n in cluster.n1_failures()] == ["node1"]
    where = capacity.gate(cluster)
    assert where.stop and where.bad_nodes == ["node1"] and where.groups == []
    result = capacity.standard_allocation(cluster, Spec(GIB, GIB, 1), Request("plain"),
                                          where)
    assert result.count == 0 and result.fails == {"FailN1": 1}
    where = capacity.gate(cluster, independent_groups=True)
    assert not where.stop and where.groups == ["uuid-2"] and where.bad_groups == ["uuid-1"]
    result = capacity.standard_allocation(cluster, Spec(GIB, GIB, 1), Request("plain"),
                                          where)
    assert result.count == 16 and result.per_group() == {"good": 16}
    where = capacity.gate(cluster, accept_existing=True)
    assert not where.stop and where.exclude == {"node1"}
    result = capacity.standard_allocation(cluster, Spec(GIB, GIB, 1), Request("plain"),
                                          where)
    assert result.per_group() == {"good": 16, "bad": 4}
    assert all(inst.pnode != "node1" for inst, _ in result.allocated)


def test_unallocable_group_is_not_used():
    cluster = loader_simu.build(["p,2,100g,8g,4", "u,2,100g,8g,4"])
    result = standard(cluster, Spec(GIB, GIB, 1))
    assert result.per_group() == {"group-01": 16}


def test_preferred_group_before_last_resort():
    cluster = loader_simu.build(["a,2,100g,8g,4", "p,2,100g,4g,4"])
    result = standard(cluster, Spec(GIB, GIB, 1))
    order = [result.cluster.instance_group(inst) for inst, _ in result.allocated]
    assert order == ["fake-uuid-02"] * 8 + ["fake-uuid-01"] * 16


def test_deterministic():
    cluster = loader_simu.build(["p,8,500g,32g,8"])
    one = standard(cluster, Spec(1024, 10240, 1), "drbd")
    two = standard(cluster, Spec(1024, 10240, 1), "drbd")
    assert [(i.pnode, i.snode) for i, _ in one.allocated] == \
        [(i.pnode, i.snode) for i, _ in two.allocated]


def test_forty_nodes():
    # the std spec of the default policy on 40 nodes: 640 DRBD instances
    # (32 spindle uses per node, each instance on two nodes)
    cluster = loader_simu.build(["p,40,1T,64G,16"])
    result = standard(cluster, Spec(128, 1024, 1), "drbd")
    assert result.count == 640 and result.main_reason() == "FailSpindles"


def test_parse_spec():
    assert capacity.parse_spec("100G,4g,2") == Spec(4096, 95367, 2, 1)
    assert capacity.parse_spec("10g, 512, 1, 3") == Spec(512, 10240, 1, 3)
    assert capacity.parse_spec("0,512,1") == Spec(512, 0, 1, 1)
    for bad in ("1,2", "10g,4g,x", "10q,4g,1", "10g,0,1", "1,2,3,4,5"):
        with pytest.raises(ValueError, match="invalid instance spec"):
            capacity.parse_spec(bad)


def test_stats():
    nodes = [("node1", 8192, 6144, 102400, 92160, 4),
             ("node2", 8192, 8192, 102400, 102400, 4)]
    insts = ["one|2048|10240|2|running|Y|node1|node2|drbd||1|-"]
    text = text_data(nodes, insts).replace("node2|8192|0|8192|102400|102400",
                                           "node2|8192|0|8192|102400|92160")
    st = capacity.cluster_stats(loader_text.parse(text))
    assert (st.nodes, st.instances, st.t_mem, st.t_dsk, st.t_cpu) == \
        (2, 1, 16384, 204800, 8)
    assert (st.f_mem, st.i_mem, st.f_dsk, st.i_dsk) == (14336, 2048, 184320, 20480)
    # node2 keeps 2 GiB for a failover of "one"
    assert (st.a_mem, st.m_mem, st.i_cpu, st.v_cpu) == (12288, 6144, 2, 32)
    assert st.mem_eff == 2048 / 16384 and st.cpu_eff == 2 / 32
    used, pool, unav = capacity.key_metrics(st, st)
    assert (used.cpu, used.npu, used.mem, pool.mem, unav.mem) == (2, 0.5, 2048, 0, 14336)


def test_storage_unit_totals():
    text = text_data([("node1", 8192, 8192, 102400, 102400, 4)])
    text = text.replace("|0|1.0\n", "|0|1.0|51200,102400,lvm-vg,xenvg\n", 1)
    st = capacity.cluster_stats(loader_text.parse(text))
    assert st.units == {("lvm-vg", "xenvg"): (51200, 102400)}
