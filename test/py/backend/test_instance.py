"""backend.instance and backend.storage, in-process on a virtual node root."""

from __future__ import annotations

import json
import os
import sys

import pytest

from ganeti import constants, objects, pathutils
from ganeti.backend import RPCFail
from ganeti.backend import instance as binst
from ganeti.backend import node as bnode
from ganeti.backend import storage as bstor
from ganeti.rpc.defs import InstanceDict

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from osdefs import InstallNoop, MakeOs  # noqa: E402

FSD = "/srv/ganeti/file-storage"


@pytest.fixture
def node(node_root):
    """A node with the noop OS, file storage and 1 GiB for the fake HV."""
    InstallNoop(node_root)
    os.makedirs(f"{node_root}{FSD}")
    with open(f"{pathutils.CONF_DIR}/fake-hypervisor.json", "w", encoding="ascii") as fd:
        json.dump({"memory_total": 1024, "cpu_total": 2}, fd)
    return node_root


def _Disk(name="inst1", idx=0, size=8):
    return objects.Disk(dev_type=constants.DT_FILE, size=size, mode=constants.DISK_RDWR,
                        logical_id=(constants.FD_LOOP, f"{FSD}/{name}/disk{idx}"),
                        uuid=f"{name}-disk{idx}", iv_name=f"disk/{idx}", params={},
                        children=[])


def _Inst(name="inst1", disks=(), mem=256, os_name="noop+default", osparams=None):
    inst = objects.Instance(name=name, uuid=f"uuid-{name}", os=os_name,
                            hypervisor=constants.HT_FAKE, hvparams={}, osparams_private={},
                            beparams={constants.BE_MAXMEM: mem, constants.BE_VCPUS: 1},
                            osparams=osparams or {}, nics=[objects.NIC(
                                mac="aa:00:00:00:00:01", nicparams={})], disks=[])
    return InstanceDict(inst, list(disks))


def test_blockdev_calls(node):
    disk = _Disk().ToDict()
    assert bstor.BlockdevFind(disk) is None
    assert bstor.BlockdevCreate(disk, 8, "inst1", True, "", False) == \
        (constants.FD_LOOP, f"{FSD}/inst1/disk0")
    status = objects.BlockDevStatus.FromDict(bstor.BlockdevFind(disk))
    assert status.dev_path == f"{node}{FSD}/inst1/disk0" and not status.is_degraded
    assert len(bstor.BlockdevGetMirrorStatus([disk])) == 1
    link, uri = bstor.BlockdevAssemble(disk, {"name": "inst1"}, True, 0)
    assert link == f"{pathutils.DISK_LINKS_DIR}/inst1:0" and uri is None
    assert os.readlink(link) == status.dev_path
    bstor.BlockdevGrow(disk, 4, False, True, False)
    assert bstor.BlockdevGetDimensions([disk]) == [(12 * 1024 * 1024, None)]
    bstor.BlockdevShutdown(disk)
    new = _Disk("inst2").logical_id
    bstor.BlockdevRename([(disk, new)])
    assert bstor.BlockdevFind(disk) is None
    moved = _Disk("inst2").ToDict()
    assert bstor.BlockdevSnapshot(moved, "s", None) == \
        (constants.FD_LOOP, f"{FSD}/inst2/disk0.s")
    bstor.BlockdevRemove(moved)
    assert bstor.BlockdevFind(moved) is None
    assert bstor.BlockdevGetDimensions([moved]) == [None]


def test_blockdev_bad_input(node):
    escaping = _Disk().ToDict()
    escaping["logical_id"] = [constants.FD_LOOP, f"{FSD}/../../../etc/evil"]
    with pytest.raises(RPCFail, match="'/srv/ganeti/file-storage/../../../etc/evil'"
                                      " must be a normalised absolute path"):
        bstor.BlockdevCreate(escaping, 8, "inst1", True, "", False)
    escaping["logical_id"] = [constants.FD_LOOP, "/etc/evil"]
    with pytest.raises(RPCFail, match="Path '/etc/evil' is not below the allowed file"):
        bstor.BlockdevCreate(escaping, 8, "inst1", True, "", False)
    with pytest.raises(RPCFail, match="Invalid size 0"):
        bstor.BlockdevCreate(_Disk().ToDict(), 0, "inst1", True, "", False)
    with pytest.raises(RPCFail, match="Invalid disk 'junk'"):
        bstor.BlockdevFind("junk")
    with pytest.raises(RPCFail, match="Block device .*not found"):
        bstor.BlockdevGrow(_Disk().ToDict(), 1, False, True, False)
    with pytest.raises(RPCFail, match="Renaming disks failed: .*not found"):
        bstor.BlockdevRename([(_Disk().ToDict(), _Disk("x").logical_id)])
    with pytest.raises(RPCFail, match="Cannot assemble"):
        bstor.BlockdevAssemble(_Disk().ToDict(), {"name": "inst1"}, True, 0)


def test_storage_units_and_dirs(node):
    rows = bstor.StorageList(constants.ST_FILE, [], None, [constants.SF_NAME])
    assert rows == [[f"{node}{FSD}"]]
    with pytest.raises(RPCFail, match="Cannot list rados storage"):
        bstor.StorageList(constants.ST_RADOS, [], None, [constants.SF_NAME])
    bstor.FileStorageDirCreate(f"{FSD}/inst9")
    assert os.path.isdir(f"{node}{FSD}/inst9")
    bstor.FileStorageDirRename(f"{FSD}/inst9", f"{FSD}/inst10")
    bstor.FileStorageDirRemove(f"{FSD}/inst10")
    assert not os.path.exists(f"{node}{FSD}/inst10")
    with pytest.raises(RPCFail, match="'/etc' is not below"):
        bstor.FileStorageDirCreate("/etc")
    # node_info reports the file storage unit of this node
    _, space, hvinfo = bnode.GetNodeInfo([(constants.ST_FILE, FSD)],
                                         [(constants.HT_FAKE, {})])
    assert space[0]["storage_size"] > 0
    assert hvinfo[0]["memory_total"] == 1024


def test_os_add_writes_image(node):
    disk = _Disk()
    bstor.BlockdevCreate(disk.ToDict(), 8, "inst1", True, "", False)
    inst = _Inst(disks=[disk], osparams={"message": "hello"})
    binst.InstanceOsAdd(inst, False, 0)
    with open(f"{node}{FSD}/inst1/disk0", "rb") as fd:
        head = fd.read(512)
    assert head.startswith(b"ganeti-noop-os name=inst1 os=noop+default variant=default"
                           b" message=hello\n")
    logs = os.listdir(pathutils.LOG_OS_DIR)
    assert len(logs) == 1 and logs[0].startswith("add-noop+default-inst1-")
    binst.RunRenameInstance(_Inst("inst2", disks=[disk]), "inst1", 0)
    with open(f"{node}{FSD}/inst1/disk0", "rb") as fd:
        assert fd.read(512).startswith(b"ganeti-noop-os name=inst2 ")


def test_os_add_bad_input(node):
    MakeOs(node, "failing", scripts={"create": "#!/bin/sh\necho about to fail\nexit 1\n"})
    with pytest.raises(RPCFail, match="(?s)OS add script failed.*log file .*add-failing"
                                      r"\+default-inst1-.*about to fail"):
        binst.InstanceOsAdd(_Inst(os_name="failing+default"), False, 0)
    with pytest.raises(RPCFail, match="OS 'nosuch' not found"):
        binst.InstanceOsAdd(_Inst(os_name="nosuch+default"), False, 0)
    with pytest.raises(RPCFail, match="Unsupported OS variant 'huge'"):
        binst.InstanceOsAdd(_Inst(os_name="noop+huge"), False, 0)
    with pytest.raises(RPCFail, match="not supported by the OS noop: size"):
        binst.InstanceOsAdd(_Inst(osparams={"size": "1"}), False, 0)
    with pytest.raises(RPCFail, match="Block device .*not found"):
        binst.InstanceOsAdd(_Inst(disks=[_Disk()]), False, 0)


def test_life_cycle(node):
    inst = _Inst()
    assert binst.GetInstanceList([constants.HT_FAKE], {}) == []
    binst.InstanceStart(inst, False, ["reason"])
    assert binst.GetInstanceList([constants.HT_FAKE], {}) == ["inst1"]
    info = binst.GetInstanceInfo("inst1", constants.HT_FAKE, {})
    assert (info["memory"], info["vcpus"], info["state"]) == (256, 1, 0)
    assert list(binst.GetAllInstancesInfo([constants.HT_FAKE], {})) == ["inst1"]
    with pytest.raises(RPCFail, match="Instance inst1 is already running"):
        binst.InstanceStart(inst, False, None)
    binst.InstanceReboot(inst, constants.INSTANCE_REBOOT_SOFT, 10, None)
    binst.InstanceReboot(inst, constants.INSTANCE_REBOOT_HARD, 10, None)
    with pytest.raises(RPCFail, match="Invalid reboot_type received: 'full'"):
        binst.InstanceReboot(inst, constants.INSTANCE_REBOOT_FULL, 10, None)
    binst.InstanceBalloonMemory(inst, 128)
    assert binst.GetInstanceInfo("inst1", constants.HT_FAKE, {})["memory"] == 128
    binst.InstanceShutdown(inst, 10, None)
    assert binst.GetInstanceInfo("inst1", constants.HT_FAKE, {}) == {}
    binst.InstanceShutdown(inst, 10, None)  # already down: fine
    with pytest.raises(RPCFail, match="Cannot reboot instance inst1 that is not running"):
        binst.InstanceReboot(inst, constants.INSTANCE_REBOOT_SOFT, 10, None)


def test_start_with_disks_and_too_much_memory(node):
    disk = _Disk()
    bstor.BlockdevCreate(disk.ToDict(), 8, "inst1", True, "", False)
    binst.InstanceStart(_Inst(disks=[disk]), False, None)
    assert os.path.islink(f"{pathutils.DISK_LINKS_DIR}/inst1:0")
    with pytest.raises(RPCFail, match="instance big: needs 2048 MiB, the node has 768 MiB"
                                      " free of 1024 MiB"):
        binst.InstanceStart(_Inst("big", mem=2048), False, None)
    with pytest.raises(RPCFail, match="Cannot assemble"):
        binst.InstanceStart(_Inst("nodisk", disks=[_Disk("nodisk")]), False, None)
    binst.InstanceShutdown(_Inst(disks=[disk]), 5, None)
    assert not os.path.lexists(f"{pathutils.DISK_LINKS_DIR}/inst1:0")


@pytest.mark.timeout(30)
def test_soft_stop_times_out_then_hard(node):
    inst = _Inst()
    binst.InstanceStart(inst, False, None)
    state_file = f"{pathutils.RUN_DIR}/fake-hypervisor/inst1"
    with open(state_file, encoding="utf-8") as fd:
        state = json.load(fd)
    state["ignore_soft_stop"] = True
    with open(state_file, "w", encoding="utf-8") as fd:
        json.dump(state, fd)
    binst.InstanceShutdown(inst, 0.3, None)
    assert binst.GetInstanceList([constants.HT_FAKE], {}) == []
    with pytest.raises(RPCFail, match="Invalid shutdown timeout -1"):
        binst.InstanceStart(inst, False, None) or binst.InstanceShutdown(inst, -1, None)


def test_console_and_validation(node):
    inst = _Inst()
    result = binst.GetInstanceConsoleInfo({"inst1": {
        "instance": inst, "node": {"name": "node1"}, "group": {"name": "default"},
        "hvParams": {}, "beParams": {}}})
    console = objects.InstanceConsole.FromDict(result["inst1"])
    assert console.kind == constants.CONS_MESSAGE and "inst1" in console.message
    binst.ValidateHVParams(constants.HT_FAKE, {constants.HV_MIGRATION_MODE: "live"})
    with pytest.raises(RPCFail, match="migration_mode"):
        binst.ValidateHVParams(constants.HT_FAKE, {constants.HV_MIGRATION_MODE: "x"})
    with pytest.raises(RPCFail, match="Unknown hypervisor 'bogus'"):
        binst.GetInstanceList(["bogus"], {})


def test_bad_instance_dicts(node):
    with pytest.raises(RPCFail, match="expected an instance object"):
        binst.InstanceStart("inst1", False, None)
    with pytest.raises(RPCFail, match="disks must be sent as disk objects"):
        binst.InstanceStart(dict(_Inst(), disks=["uuid-1"]), False, None)
    with pytest.raises(RPCFail, match="Invalid instance.*Unknown field"):
        binst.InstanceStart(dict(_Inst(), colour="red"), False, None)


def test_migration_calls(node):
    inst = _Inst()
    binst.InstanceStart(inst, False, None)
    info = binst.MigrationInfo(inst)
    with pytest.raises(RPCFail, match="Failed to accept instance: .*already exists"):
        binst.AcceptInstance(inst, info, "other")
    binst.MigrateInstance("cluster", inst, "other", True)
    assert binst.GetMigrationStatus(inst)["status"] == constants.HV_MIGRATION_COMPLETED
    binst.FinalizeMigrationSource(inst, True, True)
    assert binst.GetInstanceList([constants.HT_FAKE], {}) == []
    binst.AcceptInstance(inst, info, "here")
    binst.FinalizeMigrationDst(inst, info, True)
    assert binst.GetInstanceList([constants.HT_FAKE], {}) == ["inst1"]
