"""Tests for ganeti.objects (and the address pools of ganeti.network)."""

from __future__ import annotations

import copy
import json
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ganeti import constants, errors, objects, serializer
from ganeti import network as netpool

DATA_DIR = os.path.join(os.path.dirname(__file__), "..", "data")
FIXTURE_30 = os.path.join(DATA_DIR, "cluster_config_3.0.json")


def _Load30() -> dict:
    with open(FIXTURE_30, encoding="utf-8") as fh:
        return json.load(fh)


def _JsonRoundTrip(obj: objects.ConfigObject) -> objects.ConfigObject:
    """object -> dict -> JSON text -> dict -> object."""
    text = serializer.DumpJson(obj.ToDict())
    return type(obj).FromDict(serializer.LoadJson(text))


# --- Strategies -----------------------------------------------------------------

_names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-.",
                 min_size=1, max_size=30)
_uuids = st.uuids().map(str)
_ips = st.ip_addresses(v=4).map(str)
_tags = st.sets(st.text(alphabet="abcXYZ019_.+*/:@-", min_size=1,
                        max_size=10), max_size=5)
_times = st.floats(min_value=0, max_value=2e9, allow_nan=False)
_serials = st.integers(min_value=1, max_value=10 ** 6)
_scalars = st.one_of(st.booleans(), st.integers(-1000, 10 ** 6),
                     st.text(max_size=12))
_params = st.dictionaries(st.text(alphabet="abc_-", min_size=1, max_size=8),
                          _scalars, max_size=4)
_macs = st.lists(st.integers(0, 255), min_size=6, max_size=6).map(
    lambda octets: ":".join(f"{o:02x}" for o in octets))


def _Optional(strategy):
    return st.one_of(st.none(), strategy)


_node_st = st.builds(
    objects.Node, name=_names, primary_ip=_ips, secondary_ip=_ips,
    serial_no=_serials, master_candidate=st.booleans(),
    offline=st.booleans(), drained=st.booleans(), group=_uuids,
    master_capable=st.booleans(), vm_capable=st.booleans(),
    ndparams=_params, powered=st.booleans(), hv_state_static=_params,
    disk_state_static=_params, noded_address=_Optional(_ips),
    noded_port=_Optional(st.integers(1, 65535)),
    confd_port=_Optional(st.integers(1, 65535)), ctime=_times,
    mtime=_times, uuid=_uuids, tags=_tags)

_group_st = st.builds(
    objects.NodeGroup, name=_names, ndparams=_params,
    diskparams=st.dictionaries(st.sampled_from(sorted(
        constants.DISK_TEMPLATES)), _params, max_size=3),
    ipolicy=st.fixed_dictionaries({}, optional={
        constants.IPOLICY_VCPU_RATIO: st.floats(0.5, 64),
        constants.IPOLICY_DTS: st.lists(st.sampled_from(sorted(
            constants.DISK_TEMPLATES)), unique=True)}),
    serial_no=_serials, alloc_policy=st.sampled_from(
        constants.VALID_ALLOC_POLICIES),
    networks=st.dictionaries(_uuids, _params, max_size=2),
    hv_state_static=_params, disk_state_static=_params, ctime=_times,
    mtime=_times, uuid=_uuids, tags=_tags)

_network_st = st.builds(
    objects.Network, name=_names, serial_no=_serials,
    mac_prefix=_Optional(st.just("aa:bb:cc")),
    network=st.just("192.0.2.0/28"), gateway=_Optional(st.just("192.0.2.1")),
    network6=_Optional(st.just("2001:db8::/64")), gateway6=st.none(),
    reservations=st.text(alphabet="01", min_size=16, max_size=16),
    ext_reservations=st.text(alphabet="01", min_size=16, max_size=16),
    ctime=_times, mtime=_times, uuid=_uuids, tags=_tags)

_nic_st = st.builds(
    objects.NIC, name=_Optional(_names), mac=_macs, ip=_Optional(_ips),
    network=_Optional(_uuids), nicparams=_params, uuid=_uuids)

_lv_st = st.builds(
    objects.Disk, dev_type=st.just(constants.DT_PLAIN),
    logical_id=st.tuples(st.just("xenvg"), _names), size=st.integers(1, 10 ** 6),
    params=_params, nodes=st.lists(_uuids, max_size=2), serial_no=_serials,
    ctime=_times, mtime=_times)

_drbd_st = st.builds(
    objects.Disk, dev_type=st.just(constants.DT_DRBD8),
    logical_id=st.tuples(_uuids, _uuids, st.integers(11000, 14999),
                         st.integers(0, 100), st.integers(0, 100),
                         st.text(alphabet="0123456789abcdef", min_size=40,
                                 max_size=40)),
    children=st.lists(_lv_st, min_size=2, max_size=2),
    nodes=st.lists(_uuids, min_size=2, max_size=2),
    iv_name=st.just("disk/0"), size=st.integers(1, 10 ** 6),
    mode=st.sampled_from(sorted(constants.DISK_ACCESS_SET)), params=_params,
    spindles=_Optional(st.integers(1, 8)), name=_Optional(_names),
    serial_no=_serials, ctime=_times, mtime=_times, uuid=_uuids)

_instance_st = st.builds(
    objects.Instance, name=_names, primary_node=_uuids, os=_names,
    hypervisor=st.sampled_from(sorted(constants.HYPER_TYPES)),
    hvparams=_params, beparams=_params, osparams=_params,
    osparams_private=_params,
    admin_state=st.sampled_from(sorted(constants.ADMINST_ALL)),
    admin_state_source=st.sampled_from(sorted(
        constants.INSTANCE_STATE_SOURCES)),
    nics=st.lists(_nic_st, max_size=3), disks=st.lists(_uuids, max_size=3),
    disks_active=st.booleans(),
    network_port=_Optional(st.integers(11000, 14999)), serial_no=_serials,
    ctime=_times, mtime=_times, uuid=_uuids, tags=_tags)

_cluster_st = st.builds(
    objects.Cluster, cluster_name=_names, master_node=_uuids,
    master_ip=_ips, master_netdev=st.just("eth0"),
    master_netmask=st.integers(8, 32), mac_prefix=st.just("aa:00:00"),
    volume_group_name=_Optional(st.just("xenvg")),
    enabled_hypervisors=st.lists(st.sampled_from(sorted(
        constants.HYPER_TYPES)), min_size=1, unique=True),
    hvparams=st.dictionaries(st.sampled_from(sorted(constants.HYPER_TYPES)),
                             _params, max_size=2),
    beparams=st.fixed_dictionaries({constants.PP_DEFAULT: _params}),
    nicparams=st.fixed_dictionaries({constants.PP_DEFAULT: _params}),
    ndparams=_params, os_hvp=st.dictionaries(_names, st.dictionaries(
        st.just(constants.HT_KVM), _params), max_size=2),
    tcpudp_port_pool=st.sets(st.integers(11000, 14999), max_size=5),
    highest_used_port=st.integers(11000, 14999),
    uid_pool=st.lists(st.tuples(st.integers(0, 100), st.integers(100, 200))
                      .map(list), max_size=2),
    candidate_pool_size=st.integers(1, 20), serial_no=_serials,
    modify_etc_hosts=st.booleans(), candidate_certs=st.dictionaries(
        _uuids, st.text(alphabet="0123456789abcdef", max_size=8), max_size=2),
    ctime=_times, mtime=_times, uuid=_uuids, tags=_tags)


# --- Round trips -------------------------------------------------------------------

@settings(max_examples=40, deadline=None)
@given(_node_st)
def test_node_round_trip(node):
    assert _JsonRoundTrip(node) == node


@settings(max_examples=40, deadline=None)
@given(_group_st)
def test_nodegroup_round_trip(group):
    assert _JsonRoundTrip(group) == group


@settings(max_examples=40, deadline=None)
@given(_network_st)
def test_network_round_trip(net):
    assert _JsonRoundTrip(net) == net


@settings(max_examples=40, deadline=None)
@given(_instance_st)
def test_instance_with_nics_round_trip(inst):
    assert _JsonRoundTrip(inst) == inst


@settings(max_examples=40, deadline=None)
@given(st.one_of(_lv_st, _drbd_st))
def test_disk_tree_round_trip(disk):
    clone = _JsonRoundTrip(disk)
    assert clone == disk
    assert all(isinstance(child, objects.Disk) for child in clone.children or [])
    assert isinstance(clone.logical_id, tuple)


@settings(max_examples=30, deadline=None)
@given(_cluster_st)
def test_cluster_round_trip(cluster):
    clone = _JsonRoundTrip(cluster)
    assert clone == cluster
    assert isinstance(clone.tcpudp_port_pool, set)


@settings(max_examples=20, deadline=None)
@given(_instance_st, st.lists(_drbd_st, max_size=2))
def test_configdata_round_trip(inst, disks):
    disk_map = {}
    for disk in disks:
        disk_map[disk.uuid] = disk
    inst.disks = list(disk_map)
    data = objects.ConfigData(
        version=constants.CONFIG_VERSION,
        cluster=objects.Cluster(cluster_name="c", uuid="u"),
        nodes={}, nodegroups={}, instances={inst.uuid: inst},
        networks={}, disks=disk_map, filters={}, serial_no=3)
    assert _JsonRoundTrip(data) == data


def test_ganeti_30_config_loads_unchanged():
    raw = _Load30()
    data = objects.ConfigData.FromDict(copy.deepcopy(raw))
    assert data.ToDict() == raw
    assert isinstance(data.cluster, objects.Cluster)
    assert all(isinstance(d, objects.Disk) for d in data.disks.values())
    inst = data.instances["c3a9b1f0-6d2e-4f7a-8b9c-0d1e2f3a4b02"]
    assert isinstance(inst.nics[0], objects.NIC)
    assert inst.disks == ["9d8c7b6a-5f4e-4d3c-8b2a-190817263502"]


def test_ganeti_30_config_upgrade_keeps_values():
    raw = _Load30()
    data = objects.ConfigData.FromDict(copy.deepcopy(raw))
    data.UpgradeConfig()
    out = data.ToDict()
    for key in ("nodes", "instances", "disks", "networks"):
        assert set(out[key]) == set(raw[key])
    assert out["cluster"]["hvparams"]["kvm"]["kernel_path"] == \
        "/boot/vmlinuz-guest"
    # Hypervisor parameters we do not know are kept
    assert out["cluster"]["hvparams"]["kvm"]["spice_bind"] == ""
    assert out["cluster"]["enabled_disk_templates"] == \
        raw["cluster"]["enabled_disk_templates"]
    assert out["serial_no"] == raw["serial_no"]
    # A second upgrade changes nothing
    again = objects.ConfigData.FromDict(copy.deepcopy(out))
    again.UpgradeConfig()
    assert again.ToDict() == out


# --- Dict form --------------------------------------------------------------------

def test_todict_omits_none_and_lists_sets():
    node = objects.Node(name="n1", primary_ip="192.0.2.1", tags={"b", "a"})
    result = node.ToDict()
    assert result == {"name": "n1", "primary_ip": "192.0.2.1",
                      "tags": ["a", "b"]}
    json.dumps(result)


def test_todict_is_independent_of_object():
    inst = objects.Instance(name="i", hvparams={"a": {"b": 1}})
    result = inst.ToDict()
    result["hvparams"]["a"]["b"] = 2
    assert inst.hvparams == {"a": {"b": 1}}


def test_node_endpoint_fields_only_when_set():
    node = objects.Node(name="n1", primary_ip="192.0.2.1")
    node.UpgradeConfig()
    assert not {"noded_address", "noded_port", "confd_port"} & \
        set(node.ToDict())
    assert node.GetNodedEndpoint() == ("192.0.2.1",
                                       constants.DEFAULT_NODED_PORT)
    node.noded_port = 18111
    node.noded_address = "127.0.1.5"
    assert node.ToDict()["noded_port"] == 18111
    assert node.GetNodedEndpoint() == ("127.0.1.5", 18111)
    assert node.GetConfdEndpoint() == ("127.0.1.5",
                                       constants.DEFAULT_CONFD_PORT)


def test_nodegroup_members_not_serialised():
    group = objects.NodeGroup(name="g", members=["a", "b"])
    assert "members" not in group.ToDict()
    assert group.Copy().members == ["a", "b"]


@pytest.mark.parametrize("cls,bad", [
    (objects.Node, {"name": "n", "bogus_field": 1}),
    (objects.Cluster, {"cluster_name": "c", "typo": True}),
    (objects.ConfigData, {"version": 1, "extra": {}}),
])
def test_unknown_fields_rejected(cls, bad):
    with pytest.raises(errors.ConfigurationError) as exc:
        cls.FromDict(bad)
    message = str(exc.value)
    assert cls.__name__ in message
    assert (set(bad) - {"name", "cluster_name", "version"}).pop() in message


def test_unknown_field_in_child_rejected():
    with pytest.raises(errors.ConfigurationError, match="flavour.*NIC"):
        objects.Instance.FromDict({"name": "i", "nics": [{"flavour": 1}]})


def test_fromdict_needs_dict():
    with pytest.raises(errors.ConfigurationError, match="Node.*list"):
        objects.Node.FromDict(["name"])
    with pytest.raises(errors.ConfigurationError, match="nics"):
        objects.Instance.FromDict({"nics": {"a": 1}})


def test_unknown_attribute_and_constructor_argument():
    node = objects.Node()
    with pytest.raises(AttributeError):
        node.nmae = "typo"  # type: ignore[attr-defined]
    with pytest.raises(TypeError, match="nmae"):
        objects.Node(nmae="typo")


def test_copy_is_deep():
    inst = objects.Instance(name="i", nics=[objects.NIC(mac="aa", nicparams={})],
                            tags={"t"}, beparams={"vcpus": 1})
    clone = inst.Copy()
    assert clone == inst and clone is not inst
    clone.nics[0].nicparams["mode"] = "routed"
    clone.tags.add("u")
    clone.beparams["vcpus"] = 4
    assert inst.nics[0].nicparams == {}
    assert inst.tags == {"t"}
    assert inst.beparams == {"vcpus": 1}


def test_equality():
    assert objects.Node(name="a") == objects.Node(name="a")
    assert objects.Node(name="a") != objects.Node(name="b")
    assert objects.Node(name="a") != objects.NodeGroup(name="a")


def test_fields_follow_annotations():
    assert "noded_port" in objects.Node.GetAllFields()
    assert objects.Node.GetAllFields()[0] == "tags"
    assert "VALID_TAG_RE" not in objects.Node.GetAllFields()


# --- Tags ----------------------------------------------------------------------------

def test_tags_add_remove():
    node = objects.Node(name="n")
    node.AddTag("role:web")
    node.AddTag("a.b+c*d/e@f-g_h")
    assert node.GetTags() == {"role:web", "a.b+c*d/e@f-g_h"}
    node.RemoveTag("role:web")
    assert node.GetTags() == {"a.b+c*d/e@f-g_h"}


@pytest.mark.parametrize("tag,pattern", [
    ("", "empty"),
    ("x" * (constants.MAX_TAG_LEN + 1), "too long"),
    ("with space", "invalid characters"),
    ("semi;colon", "invalid characters"),
    (5, "not a string"),
])
def test_invalid_tags(tag, pattern):
    with pytest.raises(errors.TagError, match=pattern):
        objects.Node(name="n").AddTag(tag)


def test_tag_limits(monkeypatch):
    monkeypatch.setattr(constants, "MAX_TAGS_PER_OBJ", 2)
    node = objects.Node(name="n")
    node.AddTag("a")
    node.AddTag("b")
    node.AddTag("b")  # already there: no new tag
    with pytest.raises(errors.TagError, match="Too many"):
        node.AddTag("c")
    with pytest.raises(errors.TagError, match="not found"):
        node.RemoveTag("z")


# --- Parameter inheritance -----------------------------------------------------

def _Cluster() -> objects.Cluster:
    cluster = objects.Cluster(
        cluster_name="c", enabled_hypervisors=[constants.HT_KVM],
        hvparams={constants.HT_KVM: {constants.HV_KERNEL_ARGS: "cluster",
                                     constants.HV_MIGRATION_PORT: 9000,
                                     constants.HV_ACPI: True}},
        os_hvp={"debian": {constants.HT_KVM: {
                    constants.HV_KERNEL_ARGS: "os",
                    constants.HV_ROOT_PATH: "/dev/os",
                    constants.HV_MIGRATION_PORT: 1}},
                "debian+v2": {constants.HT_KVM: {
                    constants.HV_ROOT_PATH: "/dev/variant"}}},
        beparams={constants.PP_DEFAULT: {constants.BE_VCPUS: 2}},
        nicparams={constants.PP_DEFAULT: {constants.NIC_LINK: "br-cl"}},
        ndparams={constants.ND_SPINDLE_COUNT: 3},
        osparams={"debian": {"dist": "base", "mirror": "m1"},
                  "debian+v2": {"dist": "variant"}},
        osparams_private_cluster={"debian": {"password": "p"}},
        diskparams={constants.DT_PLAIN: {constants.LV_STRIPES: 2}},
        ipolicy={constants.IPOLICY_VCPU_RATIO: 8.0})
    cluster.UpgradeConfig()
    return cluster


def test_fill_dict():
    defaults = {"a": 1, "b": {"c": 2}}
    result = objects.FillDict(defaults, {"a": 5, "d": 6}, skip_keys=["d"])
    assert result == {"a": 5, "b": {"c": 2}}
    result["b"]["c"] = 3
    assert defaults == {"a": 1, "b": {"c": 2}}


def test_fill_hv_layers():
    cluster = _Cluster()
    inst = objects.Instance(name="i", hypervisor=constants.HT_KVM,
                            os="debian+v2",
                            hvparams={constants.HV_ACPI: False})
    filled = cluster.FillHV(inst)
    assert filled[constants.HV_KERNEL_ARGS] == "os"  # OS over cluster
    assert filled[constants.HV_ROOT_PATH] == "/dev/variant"  # variant wins
    assert filled[constants.HV_ACPI] is False  # instance over all
    assert filled[constants.HV_KVM_PATH] == \
        constants.HVC_DEFAULTS[constants.HT_KVM][constants.HV_KVM_PATH]
    inst.os = "debian"
    assert cluster.FillHV(inst)[constants.HV_ROOT_PATH] == "/dev/os"


def test_fill_hv_globals_not_overridable():
    cluster = _Cluster()
    inst = objects.Instance(name="i", hypervisor=constants.HT_KVM,
                            os="debian",
                            hvparams={constants.HV_MIGRATION_PORT: 1234})
    filled = cluster.FillHV(inst)
    assert filled[constants.HV_MIGRATION_PORT] == 9000  # neither OS nor inst
    skipped = cluster.FillHV(inst, skip_globals=True)
    assert not constants.HVC_GLOBALS & set(skipped)
    assert skipped[constants.HV_KERNEL_ARGS] == "os"


def test_fill_be_and_memory_alias():
    cluster = _Cluster()
    inst = objects.Instance(name="i", beparams={constants.BE_MEMORY: 512})
    filled = cluster.FillBE(inst)
    assert filled[constants.BE_MAXMEM] == filled[constants.BE_MINMEM] == 512
    assert filled[constants.BE_VCPUS] == 2
    assert constants.BE_MEMORY not in filled
    assert cluster.SimpleFillBE({})[constants.BE_AUTO_BALANCE] is True


def test_fill_nic_with_group_network():
    cluster = _Cluster()
    group = objects.NodeGroup(name="g", networks={
        "net1": {constants.NIC_LINK: "br-net", constants.NIC_VLAN: "5"}})
    nic = objects.NIC(mac="aa:00:00:00:00:01", network="net1",
                      nicparams={constants.NIC_VLAN: "7"})
    filled = cluster.FillNIC(nic, group)
    assert filled == {constants.NIC_MODE: constants.NIC_MODE_BRIDGED,
                      constants.NIC_LINK: "br-net", constants.NIC_VLAN: "7"}
    assert cluster.SimpleFillNIC({})[constants.NIC_LINK] == "br-cl"


def test_fill_nd_cluster_group_node():
    cluster = _Cluster()
    group = objects.NodeGroup(name="g", ndparams={
        constants.ND_SPINDLE_COUNT: 5, constants.ND_OOB_PROGRAM: "/g"})
    node = objects.Node(name="n", ndparams={constants.ND_OOB_PROGRAM: "/n"})
    filled = cluster.FillND(node, group)
    assert filled[constants.ND_SPINDLE_COUNT] == 5
    assert filled[constants.ND_OOB_PROGRAM] == "/n"
    assert filled[constants.ND_SSH_PORT] == 22
    assert group.FillND(node) == {constants.ND_SPINDLE_COUNT: 5,
                                  constants.ND_OOB_PROGRAM: "/n"}


def test_fill_ipolicy_group_over_cluster():
    cluster = _Cluster()
    minmax = [{constants.ISPECS_MIN: {}, constants.ISPECS_MAX: {}}]
    filled = cluster.SimpleFillIPolicy({
        constants.ISPECS_STD: {constants.ISPEC_MEM_SIZE: 512},
        constants.ISPECS_MINMAX: minmax})
    assert filled[constants.IPOLICY_VCPU_RATIO] == 8.0
    assert filled[constants.ISPECS_STD][constants.ISPEC_MEM_SIZE] == 512
    assert filled[constants.ISPECS_STD][constants.ISPEC_CPU_COUNT] == 1
    assert filled[constants.ISPECS_MINMAX] == minmax  # replaced as a whole


def test_fill_disk_params_cluster_group_disk():
    cluster = _Cluster()
    group = objects.NodeGroup(name="g", diskparams={
        constants.DT_DRBD8: {constants.DRBD_RESYNC_RATE: 100}})
    drbd = objects.Disk(dev_type=constants.DT_DRBD8,
                        params={constants.DRBD_PROTOCOL: "A"})
    filled = cluster.FillDP(drbd, group)
    assert filled[constants.DRBD_RESYNC_RATE] == 100
    assert filled[constants.DRBD_PROTOCOL] == "A"
    assert filled[constants.DRBD_META_STRIPES] == 1
    plain = objects.Disk(dev_type=constants.DT_PLAIN, params={})
    assert cluster.FillDP(plain)[constants.LV_STRIPES] == 2
    assert cluster.SimpleFillDP({})[constants.DT_RBD][constants.RBD_POOL] == \
        "rbd"


def test_fill_os_variant_and_private():
    cluster = _Cluster()
    assert cluster.FillOS("debian+v2", {"mirror": "m2"}) == {
        "dist": "variant", "mirror": "m2"}
    assert cluster.SimpleFillOS("debian", {}, {"token": "t"}) == {
        "dist": "base", "mirror": "m1", "password": "p", "token": "t"}


# --- Upgrades -----------------------------------------------------------------------

def _OldStyleConfig() -> dict:
    """A configuration as Ganeti 2.x wrote it, names as keys, few fields."""
    return {
        "version": 2000000,
        "cluster": {
            "cluster_name": "old.example.com", "master_node": "node1",
            "default_hypervisor": constants.HT_KVM,
            "enabled_hypervisors": [constants.HT_XEN_PVM, constants.HT_KVM],
            "default_bridge": "xen-br5", "volume_group_name": "xenvg",
            "beparams": {constants.PP_DEFAULT: {constants.BE_MEMORY: 256}},
            "hvparams": {constants.HT_KVM: {constants.HV_ACPI: False}},
            "tcpudp_port_pool": [11005],
        },
        "nodes": {
            "node1": {"name": "node1", "primary_ip": "192.0.2.1",
                      "master_candidate": True},
            "node2": {"name": "node2", "primary_ip": "192.0.2.2",
                      "secondary_ip": "198.51.100.2"},
        },
        "instances": {
            "inst1": {
                "name": "inst1", "primary_node": "node1", "os": "debian",
                "hypervisor": constants.HT_KVM, "admin_up": True,
                "disk_template": constants.DT_DRBD8,
                "beparams": {constants.BE_MEMORY: 1024},
                "hvparams": {constants.HV_MIGRATION_PORT: 1,
                             constants.HV_ACPI: True},
                "nics": [{"mac": "aa:00:00:11:22:33", "bridge": "br7"}],
                "disks": [{
                    "dev_type": "drbd8", "size": 1024,
                    "logical_id": ["node1", "node2", 11000, 0, 0, "s" * 40],
                    "physical_id": ["192.0.2.1", 11000],
                    "children": [
                        {"dev_type": "lvm", "size": 1024,
                         "logical_id": ["xenvg", "data"]},
                        {"dev_type": "lvm", "size": 128,
                         "logical_id": ["xenvg", "meta"]}]}],
            },
        },
        "serial_no": 5,
    }


def test_upgrade_old_style_config():
    data = objects.ConfigData.FromDict(_OldStyleConfig())
    data.UpgradeConfig()

    # Every object got a UUID and is keyed by it; references follow
    node_uuids = {node.name: uuid for uuid, node in data.nodes.items()}
    assert set(node_uuids) == {"node1", "node2"}
    assert all(obj.uuid == key for key, obj in data.nodes.items())
    assert data.cluster.master_node == node_uuids["node1"]
    assert data.cluster.uuid
    (inst_uuid, inst), = data.instances.items()
    assert inst.uuid == inst_uuid and inst.name == "inst1"
    assert inst.primary_node == node_uuids["node1"]
    assert inst.serial_no == 1 and inst.ctime == 0.0 and inst.mtime > 0
    assert inst.tags == set()

    # Old fields converted
    assert inst.admin_state == constants.ADMINST_UP and inst.admin_up is None
    assert inst.disks_active is True
    assert inst.beparams == {constants.BE_MAXMEM: 1024,
                             constants.BE_MINMEM: 1024}
    assert inst.hvparams == {constants.HV_ACPI: True}  # global dropped
    nic = inst.nics[0]
    assert nic.bridge is None and nic.uuid
    assert nic.nicparams == {constants.NIC_MODE: constants.NIC_MODE_BRIDGED,
                             constants.NIC_LINK: "br7"}
    assert inst.disk_template is None

    # Disks moved to the top level, old types renamed, nodes filled
    (disk_uuid,) = inst.disks
    disk = data.disks[disk_uuid]
    assert disk.dev_type == constants.DT_DRBD8 and disk.physical_id is None
    assert disk.iv_name == "disk/0"
    assert [child.dev_type for child in disk.children] == \
        [constants.DT_PLAIN, constants.DT_PLAIN]
    assert list(disk.logical_id[:2]) == [node_uuids["node1"],
                                         node_uuids["node2"]]
    assert disk.nodes == [node_uuids["node1"], node_uuids["node2"]]

    # Node groups: a default group holding all nodes
    (group,) = data.nodegroups.values()
    assert group.name == constants.INITIAL_NODE_GROUP_NAME
    assert sorted(group.members) == sorted(node_uuids.values())
    assert all(node.group == group.uuid for node in data.nodes.values())
    assert data.nodes[node_uuids["node2"]].secondary_ip == "198.51.100.2"
    assert data.nodes[node_uuids["node1"]].secondary_ip == "192.0.2.1"

    # Cluster defaults and folded obsolete fields
    cluster = data.cluster
    assert cluster.enabled_hypervisors == [constants.HT_KVM,
                                           constants.HT_XEN_PVM]
    assert cluster.default_hypervisor is None
    assert cluster.nicparams[constants.PP_DEFAULT][constants.NIC_LINK] == \
        "xen-br5"
    assert cluster.default_bridge is None
    default_be = cluster.beparams[constants.PP_DEFAULT]
    assert default_be[constants.BE_MAXMEM] == 256
    assert default_be[constants.BE_VCPUS] == 1
    assert constants.BE_MEMORY not in default_be
    assert cluster.hvparams[constants.HT_KVM][constants.HV_ACPI] is False
    assert constants.HT_FAKE in cluster.hvparams
    assert cluster.ndparams == constants.NDC_DEFAULTS
    assert cluster.diskparams[constants.DT_DRBD8] == \
        constants.DISK_DT_DEFAULTS[constants.DT_DRBD8]
    assert cluster.ipolicy[constants.IPOLICY_VCPU_RATIO] == \
        constants.IPOLICY_DEFAULTS[constants.IPOLICY_VCPU_RATIO]
    assert cluster.enabled_disk_templates == [constants.DT_DRBD8,
                                              constants.DT_PLAIN]
    assert cluster.drbd_usermode_helper == constants.DEFAULT_DRBD_HELPER
    assert cluster.tcpudp_port_pool == {11005}
    assert cluster.master_netmask == constants.IP4_DEFAULT_NETMASK

    # The result is JSON-able and stable under a second upgrade
    out = data.ToDict()
    json.dumps(out)
    again = objects.ConfigData.FromDict(json.loads(json.dumps(out)))
    again.UpgradeConfig()
    assert again.ToDict() == out


def test_upgrade_without_cluster_fails():
    data = objects.ConfigData.FromDict({"version": 1, "nodes": {}})
    with pytest.raises(errors.ConfigurationError, match="no cluster"):
        data.UpgradeConfig()


def test_upgrade_network_creates_pool():
    net = objects.Network(name="n", network="192.0.2.0/29",
                          gateway="192.0.2.1")
    net.UpgradeConfig()
    assert net.ext_reservations == "11000001"
    assert net.reservations == "0" * 8
    assert net.uuid and net.serial_no == 1


# --- Disks and other objects --------------------------------------------------

def _Drbd() -> objects.Disk:
    return objects.Disk(
        dev_type=constants.DT_DRBD8, size=100, uuid="d1",
        logical_id=("n1", "n2", 11000, 0, 1, "secret"),
        children=[objects.Disk(dev_type=constants.DT_PLAIN, size=100,
                               logical_id=("vg", "data")),
                  objects.Disk(dev_type=constants.DT_PLAIN, size=128,
                               logical_id=("vg", "meta"))])


def test_disk_helpers():
    drbd = _Drbd()
    assert drbd.IsBasedOnDiskType(constants.DT_PLAIN)
    assert not drbd.IsBasedOnDiskType(constants.DT_FILE)
    assert drbd.StaticDevPath() is None
    assert drbd.children[0].StaticDevPath() == "/dev/vg/data"
    assert drbd.GetDrbdEnds() == [("n1", 0), ("n2", 1)]
    assert drbd.ChildrenNeeded() == 0
    tree = drbd.ComputeNodeTree("n1")
    assert [(node, disk.dev_type) for node, disk in tree] == \
        [("n1", constants.DT_DRBD8), ("n2", constants.DT_DRBD8)]
    with pytest.raises(errors.ConfigurationError):
        drbd.GetNodes("n3")
    drbd.RecordGrow(50)
    assert drbd.size == 150 and drbd.children[0].size == 150
    assert drbd.children[1].size == 128
    with pytest.raises(errors.ProgrammerError):
        objects.Disk(dev_type=constants.DT_BLOCK, size=1).RecordGrow(1)
    block = objects.Disk(dev_type=constants.DT_BLOCK,
                         logical_id=("manual", "/dev/sdz"))
    assert block.StaticDevPath() == "/dev/sdz"


def test_instance_console_validate():
    objects.InstanceConsole(instance="i", kind="ssh", host="h", user="root",
                            command=["xm", "console"]).Validate()
    with pytest.raises(errors.ConfigurationError, match="port"):
        objects.InstanceConsole(instance="i", kind="vnc", host="h",
                                display=1).Validate()
    with pytest.raises(errors.ConfigurationError, match="kind"):
        objects.InstanceConsole(instance="i", kind="telnet").Validate()


def test_query_response_children():
    resp = objects.QueryResponse.FromDict({
        "fields": [{"name": "name", "title": "Name", "kind": "text",
                    "doc": "The name"}],
        "data": [[[0, "x"]]]})
    assert isinstance(resp.fields[0], objects.QueryFieldDefinition)
    assert resp.ToDict()["fields"][0]["title"] == "Name"


def test_os_name_helpers():
    assert objects.OS.SplitNameVariant("debian+sid") == ("debian", "sid")
    assert objects.OS.GetVariant("debian") == ""
    assert objects.SplitOsName("debian") == ("debian", None)


def test_ipolicy_syntax_check():
    good = objects.FillIPolicy(constants.IPOLICY_DEFAULTS, {})
    assert objects.CheckIPolicySyntax(good) == []
    bad = copy.deepcopy(good)
    bad[constants.ISPECS_MINMAX][0][constants.ISPECS_MIN][
        constants.ISPEC_MEM_SIZE] = 10 ** 9
    bad[constants.IPOLICY_VCPU_RATIO] = -1
    problems = objects.CheckIPolicySyntax(bad)
    assert any("memory-size" in p for p in problems)
    assert any("vcpu-ratio" in p for p in problems)


# --- Address pools ----------------------------------------------------------------

def _Net(cidr: str = "192.0.2.0/29", gateway: str | None = "192.0.2.1"):
    net = objects.Network(name="n", network=cidr, gateway=gateway)
    netpool.AddressPool.InitializeNetwork(net)
    return net


def test_address_pool_reserve_release():
    net = _Net()
    pool = netpool.AddressPool(net)
    assert pool.GetFreeCount() == 5
    assert pool.GetFreeAddress() == "192.0.2.2"
    pool.Reserve("192.0.2.2")
    assert net.reservations == "00100000"
    assert pool.IsReserved("192.0.2.2") and \
        not pool.IsReserved("192.0.2.2", external=True)
    with pytest.raises(errors.AddressPoolError, match="already reserved"):
        pool.Reserve("192.0.2.2")
    with pytest.raises(errors.AddressPoolError, match="already reserved"):
        pool.Reserve("192.0.2.1")  # the gateway
    assert pool.GetFreeAddress(exclude=["192.0.2.3"]) == "192.0.2.4"
    pool.Release("192.0.2.2")
    assert not pool.IsReserved("192.0.2.2")
    assert pool.GetMap() == "XX.....X"


def test_address_pool_errors():
    with pytest.raises(errors.AddressPoolError, match="too big"):
        _Net("10.0.0.0/8", None)
    with pytest.raises(errors.AddressPoolError, match="too small"):
        _Net("192.0.2.0/31", None)
    with pytest.raises(errors.AddressPoolError, match="IPv4"):
        _Net("2001:db8::/120", None)
    net = _Net()
    with pytest.raises(errors.AddressPoolError, match="not in network"):
        netpool.AddressPool(net).Reserve("198.51.100.1")
    net.reservations = "0101"
    with pytest.raises(errors.AddressPoolError, match="4 entries"):
        netpool.AddressPool(net)


def test_address_pool_full():
    net = _Net("192.0.2.0/30", None)
    pool = netpool.AddressPool(net)
    pool.Reserve("192.0.2.1")
    pool.Reserve("192.0.2.2")
    with pytest.raises(errors.AddressPoolError, match="No free"):
        pool.GetFreeAddress()
