"""The life of an instance through a real node daemon, over RPC.

File disk, noop OS install, fake hypervisor start/list/info, a clean error
on a second start, shutdown, a node daemon restart that the instance's
state survives, disk removal; and bad input coming back as RPC failures.
"""

from __future__ import annotations

import json
import os
import sys

import pytest

import nodedhelpers
from ganeti import constants, objects
from ganeti.rpc.defs import InstanceDict

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from osdefs import InstallNoop, MakeOs  # noqa: E402

FSD = "/srv/ganeti/file-storage"
HV = constants.HT_FAKE


def _Disk(name, size=16):
    return objects.Disk(dev_type=constants.DT_FILE, size=size, mode=constants.DISK_RDWR,
                        logical_id=(constants.FD_LOOP, f"{FSD}/{name}/disk0"),
                        uuid=f"{name}-d0", iv_name="disk/0", params={}, children=[])


def _Inst(name, disks, mem=128, os_name="noop+default", osparams=None):
    inst = objects.Instance(name=name, uuid=f"uuid-{name}", os=os_name, hypervisor=HV,
                            hvparams=dict(constants.HVC_DEFAULTS[HV]), osparams_private={},
                            beparams={constants.BE_MAXMEM: mem, constants.BE_VCPUS: 1},
                            osparams=osparams or {}, disks=[],
                            nics=[objects.NIC(mac="aa:00:00:00:00:02", nicparams={})])
    return InstanceDict(inst, disks)


def _PrepareNode(root):
    InstallNoop(root)
    MakeOs(root, "failing", scripts={
        "create": "#!/bin/sh\necho \"disk is $DISK_0_PATH\"\necho broken >&2\nexit 2\n"})
    os.makedirs(f"{root}{FSD}")
    os.makedirs(f"{root}/etc/ganeti", exist_ok=True)
    with open(f"{root}/etc/ganeti/fake-hypervisor.json", "w", encoding="ascii") as fd:
        json.dump({"memory_total": 512}, fd)


def _Ok(result):
    assert result.fail_msg is None, result.fail_msg
    return result.payload


def _Restart(daemon, crypto):
    """Stop a daemon and start a new one on the same root and address."""
    daemon.Stop()
    os.unlink(daemon.ready_file)
    data_dir = os.path.join(daemon.root, "var", "lib", "ganeti")
    for name in ("server.pem", "client.pem"):
        os.chmod(os.path.join(data_dir, name), 0o600)
    new = nodedhelpers.StartDaemon(os.path.dirname(daemon.root), crypto, daemon.name,
                                   daemon.address)
    try:
        nodedhelpers.WaitReady([new])
    except BaseException:
        new.Stop()
        raise
    return new


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_instance_life_over_rpc(start_noded, cluster_crypto):
    (daemon,) = start_noded(1, subnet=71)
    _PrepareNode(daemon.root)
    runner = nodedhelpers.MakeRunner(cluster_crypto, [daemon])
    node = daemon.name
    disk = _Disk("inst1")
    inst = _Inst("inst1", [disk], osparams={"message": "over rpc"})

    # storage and OS
    assert _Ok(runner.call_blockdev_create(node, disk, 16, "inst1", True, "", False)) == \
        [constants.FD_LOOP, f"{FSD}/inst1/disk0"]
    image = f"{daemon.root}{FSD}/inst1/disk0"
    assert os.path.getsize(image) == 16 * 1024 * 1024
    diag = _Ok(runner.call_os_diagnose([node])[node])
    assert {row[0]: row[2] for row in diag} == {"noop": True, "failing": True}
    assert _Ok(runner.call_os_validate([node], True, "noop+small", ["parameters"],
                                       {"message": "fine"}, False)[node]) is True
    assert objects.OS.FromDict(_Ok(runner.call_os_get(node, "noop"))).api_versions == \
        [20, 15, 10]
    _Ok(runner.call_instance_os_add(node, inst, False, 0))
    with open(image, "rb") as fd:
        assert fd.read(64).startswith(b"ganeti-noop-os name=inst1 os=noop+default")

    # start, list, info, start again
    _Ok(runner.call_instance_start(node, inst, False, ["test:start"]))
    assert _Ok(runner.call_instance_list([node], [HV], {})[node]) == ["inst1"]
    info = _Ok(runner.call_instance_info([node], "inst1", HV, {})[node])
    assert (info["memory"], info["vcpus"]) == (128, 1)
    assert list(_Ok(runner.call_all_instances_info([node], [HV], {})[node])) == ["inst1"]
    res = runner.call_instance_start(node, inst, False, None)
    assert "Instance inst1 is already running" in res.fail_msg
    status = _Ok(runner.call_blockdev_getmirrorstatus(node, [disk]))
    assert status[0]["is_degraded"] is False
    _, _, hvinfo = _Ok(runner.call_node_info([node], [(constants.ST_FILE, FSD)],
                                             [(HV, {})])[node])
    assert (hvinfo[0]["memory_total"], hvinfo[0]["memory_free"]) == (512, 384)

    # the instance survives a restart of the node daemon
    daemon = _Restart(daemon, cluster_crypto)
    try:
        runner = nodedhelpers.MakeRunner(cluster_crypto, [daemon])
        assert _Ok(runner.call_instance_list([node], [HV], {})[node]) == ["inst1"]
        _Ok(runner.call_instance_reboot(node, inst, constants.INSTANCE_REBOOT_HARD, 10,
                                        None))
        _Ok(runner.call_instance_shutdown(node, inst, 10, ["test:stop"]))
        assert _Ok(runner.call_instance_list([node], [HV], {})[node]) == []
        assert _Ok(runner.call_instance_info([node], "inst1", HV, {})[node]) == {}
        _Ok(runner.call_blockdev_grow(node, disk, 16, False, True, False))
        _Ok(runner.call_blockdev_remove(node, disk))
        assert not os.path.exists(image)
        assert _Ok(runner.call_blockdev_find(node, disk)) is None
    finally:
        daemon.Stop()


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_bad_input_over_rpc(start_noded, cluster_crypto):
    (daemon,) = start_noded(1, subnet=72)
    _PrepareNode(daemon.root)
    runner = nodedhelpers.MakeRunner(cluster_crypto, [daemon])
    node = daemon.name

    escaping = _Disk("x")
    escaping.logical_id = (constants.FD_LOOP, f"{FSD}/../../etc/x")
    res = runner.call_blockdev_create(node, escaping, 16, "x", True, "", False)
    assert "must be a normalised absolute path" in res.fail_msg
    escaping.logical_id = (constants.FD_LOOP, "/var/lib/ganeti/x")
    res = runner.call_blockdev_create(node, escaping, 16, "x", True, "", False)
    assert "'/var/lib/ganeti/x' is not below the allowed file storage" in res.fail_msg

    res = runner.call_instance_os_add(node, _Inst("i1", [], os_name="nosuch+a"), False, 0)
    assert "OS 'nosuch' not found" in res.fail_msg

    disk = _Disk("i2")
    _Ok(runner.call_blockdev_create(node, disk, 16, "i2", True, "", False))
    res = runner.call_instance_os_add(node, _Inst("i2", [disk], os_name="failing+default"),
                                      False, 0)
    assert "OS add script failed (exited with exit code 2)" in res.fail_msg
    assert f"disk is {daemon.root}{FSD}/i2/disk0" in res.fail_msg
    assert "broken" in res.fail_msg and "/var/log/ganeti/os/add-failing+default-i2-" \
        in res.fail_msg

    res = runner.call_instance_os_add(node, _Inst("i3", [], os_name="noop+huge"), False, 0)
    assert "Unsupported OS variant 'huge'" in res.fail_msg
    res = runner.call_os_validate([node], True, "noop+default", ["parameters"],
                                  {"message": "y" * 201}, False)[node]
    assert "OS validation script failed" in res.fail_msg
    res = runner.call_os_validate([node], True, "noop+default", ["parameters"],
                                  {"bogus": "1"}, False)[node]
    assert "not supported by the OS noop: bogus" in res.fail_msg

    res = runner.call_instance_start(node, _Inst("huge", [], mem=4096), False, None)
    assert "needs 4096 MiB, the node has 512 MiB free of 512 MiB" in res.fail_msg
    assert _Ok(runner.call_instance_list([node], [HV], {})[node]) == []


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_migration_over_rpc(start_noded, cluster_crypto):
    src, dst = start_noded(2, subnet=73)
    for daemon in (src, dst):
        _PrepareNode(daemon.root)
    runner = nodedhelpers.MakeRunner(cluster_crypto, [src, dst])
    inst = _Inst("mig1", [], mem=256)
    _Ok(runner.call_instance_start(src.name, inst, False, None))
    info = _Ok(runner.call_migration_info(src.name, inst))
    _Ok(runner.call_accept_instance(dst.name, inst, info, dst.address))
    _Ok(runner.call_instance_migrate(src.name, "cluster", inst, dst.address, True))
    status = _Ok(runner.call_instance_get_migration_status(src.name, inst))
    assert status["status"] == constants.HV_MIGRATION_COMPLETED
    _Ok(runner.call_instance_finalize_migration_dst(dst.name, inst, info, True))
    _Ok(runner.call_instance_finalize_migration_src(src.name, inst, True, True))
    lists = runner.call_instance_list([src.name, dst.name], [HV], {})
    assert {n: _Ok(r) for n, r in lists.items()} == {src.name: [], dst.name: ["mig1"]}
    assert os.path.exists(f"{dst.root}/var/run/ganeti/fake-hypervisor/mig1")
    assert not os.path.exists(f"{src.root}/var/run/ganeti/fake-hypervisor/mig1")
    # the target has no room for a second copy: accept fails cleanly
    big = _Inst("big", [], mem=400)
    _Ok(runner.call_instance_start(src.name, big, False, None))
    res = runner.call_accept_instance(dst.name, big,
                                      _Ok(runner.call_migration_info(src.name, big)), "x")
    assert "needs 400 MiB, the node has 256 MiB free" in res.fail_msg
    console = runner.call_instance_console_info([dst.name], {"mig1": {
        "instance": inst, "node": {"name": dst.name}, "group": {"name": "default"},
        "hvParams": {}, "beParams": {}}})[dst.name]
    assert "fake hypervisor" in _Ok(console)["mig1"]["message"]
