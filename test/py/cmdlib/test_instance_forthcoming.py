"""Forthcoming instances (lib/cmdlib/instance_forthcoming.py): gnt-instance
add --forthcoming reserves, --commit creates, remove drops a reservation;
the other LUs and the master's cleanup leave it alone. Run through mcpu
with the recording fake RPC runner of instancehelpers."""

from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import instancehelpers  # noqa: E402

from ganeti import constants, errors, opcodes  # noqa: E402
from ganeti.cmdlib import instance_create as ic  # noqa: E402
from ganeti.cmdlib import instance_forthcoming as fc  # noqa: E402
from ganeti.instance_cleanup import CreationCleanup  # noqa: E402

NAME = "inst1.example.com"
#: RPC calls that make something on a node
_MAKING = {"blockdev_create", "file_storage_dir_create", "instance_os_add",
           "instance_start"}


@pytest.fixture
def ctx(tmp_path):
    return instancehelpers.MakeContext(tmp_path)


def _Op(**kwargs):
    params = dict(disk_template=constants.DT_FILE, disks=[{"size": 1024}],
                  nics=[{}], name_check=False, ip_check=False)
    params.update(kwargs)
    return instancehelpers.CreateOp(NAME, **params)


def _Inst(ctx):
    return ctx.cfg.GetInstanceInfoByName(NAME)


def _Reserve(ctx, **kwargs):
    instancehelpers.Run(ctx, _Op(forthcoming=True, **kwargs))
    ctx.rpc.calls.clear()
    return _Inst(ctx)


def test_reserve_makes_nothing_on_the_node(ctx):
    result, _ = instancehelpers.Run(ctx, _Op(forthcoming=True, tags=["a"]))
    assert result == [instancehelpers.MASTER]
    assert not _MAKING & set(ctx.rpc.names())
    inst = _Inst(ctx)
    assert inst.forthcoming and inst.admin_state == constants.ADMINST_OFFLINE
    assert fc.IsReservation(inst) and inst.tags == {"a"}
    (disk,) = ctx.cfg.GetInstanceDisks(inst.uuid)
    assert disk.forthcoming and disk.size == 1024
    assert inst.nics[0].mac.startswith("aa:00:00")
    # listed as forthcoming
    assert ctx.cfg.GetInstanceInfo(inst.uuid).forthcoming is True


def test_reservation_is_refused_by_other_operations(ctx):
    _Reserve(ctx)
    with pytest.raises(errors.OpPrereqError, match="forthcoming .reserved") as info:
        instancehelpers.Run(ctx, opcodes.OpInstanceStartup(instance_name=NAME))
    assert info.value.args[1] == errors.ECODE_STATE
    with pytest.raises(errors.OpPrereqError, match="--commit, or remove it"):
        instancehelpers.Run(ctx, opcodes.OpInstanceSetParams(
            instance_name=NAME, beparams={"vcpus": 2}))
    assert fc.IsReservation(_Inst(ctx))


def test_cleanup_leaves_reservations_alone(ctx):
    _Reserve(ctx)
    assert CreationCleanup(ctx).RunOnce() == {}
    assert fc.IsReservation(_Inst(ctx))
    assert "blockdev_remove" not in ctx.rpc.names()


def test_commit_creates_the_reserved_instance(ctx):
    reserved = _Reserve(ctx)
    mac = reserved.nics[0].mac
    (disk,) = ctx.cfg.GetInstanceDisks(reserved.uuid)
    result, _ = instancehelpers.Run(ctx, _Op(commit=True, beparams={"vcpus": 2},
                                             tags=["b"]))
    assert result == [instancehelpers.MASTER]
    names = ctx.rpc.names()
    assert {"blockdev_create", "instance_os_add", "instance_start"} <= set(names)
    inst = _Inst(ctx)
    assert inst.uuid == reserved.uuid and not inst.forthcoming
    assert inst.admin_state == constants.ADMINST_UP and inst.disks_active
    assert inst.nics[0].mac == mac and inst.beparams == {"vcpus": 2}
    (committed,) = ctx.cfg.GetInstanceDisks(inst.uuid)
    assert committed.uuid == disk.uuid and not committed.forthcoming
    assert committed.logical_id == disk.logical_id


def test_commit_must_match_the_reservation(ctx):
    _Reserve(ctx)
    serial = ctx.cfg.GetConfigSerialNo()
    for kwargs, match in (
            ({"disks": [{"size": 2048}]}, r"disk sizes \[1024 MiB\], not \[2048 MiB\]"),
            ({"disk_template": constants.DT_DISKLESS, "disks": []},
             "disk template file, not diskless"),
            ({"nics": [{}, {}]}, "1 NIC.s., not 2"),
            ({"nics": [{"mac": "aa:00:00:99:99:99"}]}, "NIC 0 .* differs")):
        with pytest.raises(errors.OpPrereqError, match=match) as info:
            instancehelpers.Run(ctx, _Op(commit=True, **kwargs))
        assert info.value.args[1] == errors.ECODE_INVAL
    assert ctx.cfg.GetConfigSerialNo() == serial
    assert fc.IsReservation(_Inst(ctx))
    assert not _MAKING & set(ctx.rpc.names())


def test_commit_needs_a_reservation(ctx):
    instancehelpers.Refused(ctx, _Op(commit=True), errors.ECODE_NOENT,
                            "no forthcoming instance 'inst1.example.com'")
    instancehelpers.Run(ctx, _Op())      # a real instance is no reservation
    with pytest.raises(errors.OpPrereqError, match="no forthcoming instance"):
        instancehelpers.Run(ctx, _Op(commit=True))


def test_bad_combinations_are_refused(ctx):
    instancehelpers.Refused(ctx, _Op(forthcoming=True, commit=True),
                            errors.ECODE_INVAL, "exclude each other")
    instancehelpers.Refused(ctx, _Op(forthcoming=True, disks=[{"adopt": "lv"}]),
                            errors.ECODE_INVAL, "adopted")


def test_failed_commit_gives_the_reservation_back(ctx):
    _Reserve(ctx)
    ctx.rpc.fail["instance_os_add"] = "script failed"
    with pytest.raises(errors.OpExecError, match="script failed"):
        instancehelpers.Run(ctx, _Op(commit=True))
    inst = _Inst(ctx)
    assert fc.IsReservation(inst)
    assert all(disk.forthcoming for disk in ctx.cfg.GetInstanceDisks(inst.uuid))
    assert "blockdev_remove" in ctx.rpc.names()
    del ctx.rpc.fail["instance_os_add"]
    instancehelpers.Run(ctx, _Op(commit=True))
    assert not _Inst(ctx).forthcoming


def test_remove_drops_only_the_configuration(ctx):
    _Reserve(ctx)
    instancehelpers.Run(ctx, opcodes.OpInstanceRemove(instance_name=NAME))
    assert _Inst(ctx) is None
    assert not {"instance_shutdown", "blockdev_remove"} & set(ctx.rpc.names())
    # the name can be used again
    instancehelpers.Run(ctx, _Op(forthcoming=True))
    assert fc.IsReservation(_Inst(ctx))


def test_reserved_storage_counts_as_used(ctx):
    ctx.rpc.storage_free = 3072
    _Reserve(ctx, disks=[{"size": 2048}])
    with pytest.raises(errors.OpPrereqError) as info:
        instancehelpers.Run(ctx, instancehelpers.CreateOp(
            "inst2.example.com", disk_template=constants.DT_FILE,
            disks=[{"size": 2048}], name_check=False, ip_check=False))
    assert info.value.args[1] == errors.ECODE_NORES
    # the reservation itself fits when committed
    instancehelpers.Run(ctx, _Op(commit=True, disks=[{"size": 2048}]))
    assert not _Inst(ctx).forthcoming


def test_interrupted_reservation_and_commit(ctx):
    _Reserve(ctx)
    done = ic.LUInstanceCreate.Interrupted(ctx.cfg, _Op(forthcoming=True))
    assert done.succeeded and "reserved" in done.message
    done = ic.LUInstanceCreate.Interrupted(ctx.cfg, _Op(commit=True))
    assert not done.succeeded and "still forthcoming" in done.message
