"""Tests for ganeti.htools.model: resource accounting of nodes."""

from ganeti.htools import model
from ganeti.htools.model import Cluster, Disk, Group, Instance, Node, StorageUnit


def _cluster(*nodes):
    cluster = Cluster(tags=["htools:iextags:svc", "htools:nlocation:power"])
    cluster.add_group(Group("g1", "default"))
    for node in nodes:
        cluster.add_node(node)
    return cluster


def _node(name, **kw):
    args = dict(t_mem=16384.0, n_mem=1024, f_mem=15360, t_dsk=100000.0, f_dsk=100000,
                t_cpu=4.0, t_spindles=2, f_spindles=2)
    args.update(kw)
    return Node(name, "g1", **args)


def _drbd(name, mem=1024, size=10000, **kw):
    return Instance(name, mem, 1, (Disk(size),), "drbd", **kw)


def test_place_and_unplace_restore_everything():
    a, b = _node("a"), _node("b")
    cluster = _cluster(a, b)
    before = (a.snapshot(), b.snapshot())
    inst = cluster.prepare_instance(_drbd("i1", tags=("svc:web",)))
    cluster.place(inst, "a", "b")
    assert a.f_mem == 15360 - 1024 and b.f_mem == 15360
    assert a.f_dsk == b.f_dsk == 100000 - 10128
    assert b.r_mem == 1024 and b.peers == {"a": 1024}
    assert a.u_cpu == 1 and a.p_tags == {"svc:web": 1}
    cluster.unplace(inst)
    assert (a.snapshot(), b.snapshot()) == before
    assert not a.plist and not b.slist and not b.peers


def test_r_mem_is_largest_peer_sum():
    a, b, c = _node("a"), _node("b"), _node("c")
    cluster = _cluster(a, b, c)
    cluster.place(_drbd("i1", 1000), "a", "c")
    cluster.place(_drbd("i2", 1500), "a", "c")
    cluster.place(_drbd("i3", 2000), "b", "c")
    assert c.peers == {"a": 2500, "b": 2000} and c.r_mem == 2500
    cluster.unplace(cluster.instances["i2"])
    assert c.r_mem == 2000
    # instances without auto_balance reserve nothing
    cluster.place(_drbd("i4", 5000, auto_balance=False), "b", "c")
    assert c.r_mem == 2000


def test_fail_n1_and_checks():
    a, b = _node("a", f_mem=3000), _node("b", f_mem=3000)
    cluster = _cluster(a, b)
    big = _drbd("big", 2500)
    assert b.check_add_sec(big, "a") is None
    cluster.place(big, "a", "b")
    # b keeps 2500 for a failover: another 1000 primary would break it
    assert b.check_add_pri(_drbd("x", 1000)) == model.FAIL_N1
    assert b.check_add_pri(_drbd("y", 4000)) == model.FAIL_MEM
    assert a.check_add_pri(_drbd("z", 400)) is None
    assert a.check_add_pri(Instance("d", 100, 1, (Disk(95000),), "plain")) == \
        model.FAIL_DISK


def test_cpu_spindles_and_tags_checks():
    a = _node("a", t_cpu=1.0)
    cluster = _cluster(a)
    a.set_policy(cluster.groups["g1"].ipolicy)  # 4 vCPUs per CPU
    assert a.hi_cpu == 4 and a.hi_spindles == 64
    assert a.check_add_pri(Instance("c", 100, 5)) == model.FAIL_CPU
    assert a.check_add_pri(Instance("c", 100, 5), soft=False) is None
    assert a.check_add_pri(Instance("s", 100, 1, spindle_use=65)) == model.FAIL_SPINDLES
    web = cluster.prepare_instance(Instance("w1", 100, 1, tags=("svc:web",)))
    cluster.place(web, "a")
    twin = cluster.prepare_instance(Instance("w2", 100, 1, tags=("svc:web",)))
    assert a.check_add_pri(twin) == model.FAIL_TAGS
    cluster.place(twin, "a")
    assert a.conflicts == 1


def test_exclusive_storage_spindles():
    a = _node("a", exclusive_storage=True, t_spindles=3, f_spindles=3)
    cluster = _cluster(a)
    inst = Instance("i", 100, 1, (Disk(100, spindles=2), Disk(100, spindles=2)), "plain")
    assert a.check_add_pri(inst) == model.FAIL_SPINDLES
    small = Instance("j", 100, 1, (Disk(100, spindles=2),), "plain")
    cluster.place(small, "a")
    assert a.f_spindles == 1 and a.inst_spindles == 2


def test_storage_units():
    a = _node("a", storage=[StorageUnit("lvm-vg", "xenvg", 5000, 10000),
                            StorageUnit("lvm-vg", "ssdvg", 3000, 3000),
                            StorageUnit("file", "/srv", 90000, 90000)])
    cluster = _cluster(a)
    # two 4000 MiB disks: each volume group has room for only one
    two = Instance("two", 100, 1, (Disk(4000), Disk(4000)), "plain")
    assert a.check_add_pri(two) == model.FAIL_DISK
    one = Instance("one", 100, 1, (Disk(2500), Disk(2500)), "plain")
    assert a.check_add_pri(one) is None
    cluster.place(one, "a")
    assert [u.free for u in a.storage] == [2500, 500, 90000]
    cluster.unplace(one)
    assert [u.free for u in a.storage] == [5000, 3000, 90000]
    # a disk asking for a volume group only goes there
    pinned = Instance("p", 100, 1, (Disk(3500, vg="ssdvg"),), "plain")
    assert a.check_add_pri(pinned) == model.FAIL_DISK


def test_shared_storage_uses_no_local_disk():
    a = _node("a")
    cluster = _cluster(a)
    cluster.place(Instance("r", 100, 1, (Disk(10 ** 9),), "rbd"), "a")
    assert a.f_dsk == 100000


def test_location_conflicts_and_desired_locations():
    a = _node("a", tags=frozenset({"power:a"}))
    b = _node("b", tags=frozenset({"power:a"}))
    c = _node("c", tags=frozenset({"power:b"}))
    cluster = _cluster(a, b, c)
    cluster.place(_drbd("i1"), "a", "b")
    cluster.place(_drbd("i2"), "a", "c")
    assert a.loc_conflicts == 1
    cluster.move(cluster.instances["i1"], "a", "c")
    assert a.loc_conflicts == 0
    cluster2 = Cluster(tags=["htools:desiredlocation:power"])
    cluster2.add_group(Group("g1", "default"))
    cluster2.add_node(c)
    inst = cluster2.prepare_instance(Instance("w", 10, 1, tags=("power:a",)))
    cluster2.place(inst, "c")
    assert c.dl_unsat == 1


def test_down_instances_reserve_memory_when_loaded():
    a = _node("a", f_mem=10000)
    cluster = _cluster(a)
    cluster.place(Instance("up", 1000, 1), "a", existing=True)
    cluster.place(Instance("down", 2000, 1, admin_state="down"), "a", existing=True)
    cluster.place(Instance("off", 4000, 1, admin_state="offline"), "a", existing=True)
    assert a.f_mem == 8000 and a.i_mem == 3000
    # moving the down instance away gives its reservation back
    cluster.unplace(cluster.instances["down"])
    assert a.f_mem == 10000
