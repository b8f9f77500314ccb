"""Live migration of KVM instances: what QEMU is told and what it answers.

The steps, as the master drives them (``cmdlib/instance_migration.py``):

1. on the source, :meth:`KVMHypervisor.MigrationInfo` gives the target
   what it needs to start an identical QEMU (:func:`EncodeInfo`: the
   instance as its QEMU was started, its memory, whether it runs);
2. on the target, ``AcceptInstance`` starts that QEMU with ``-incoming
   tcp:<target address>:<migration_port>`` and turns the migration
   capabilities on (:func:`Capabilities`; ``postcopy-ram`` must be on at
   both ends);
3. on the source, ``MigrateInstance`` sets the capabilities and the
   parameters (:func:`Parameters`: ``migration_bandwidth``,
   ``migration_downtime``), pauses the guest for a non-live migration, and
   sends ``migrate``;
4. the master polls ``GetMigrationStatus`` on the source
   (:func:`ParseStatus` turns ``query-migrate`` into Ganeti's status dict);
   with ``postcopy-ram`` the poll that sees the first pass over memory
   done (:func:`ShouldStartPostcopy`) switches the migration to postcopy;
5. the finalize steps: on success the target's QEMU stays (and runs) and
   the source's is stopped; on failure the source's migration is
   cancelled, the source's guest resumed, and the target's QEMU killed and
   cleaned up.

Everything here is a pure function of parameters and QEMU's answers, so
that it can be tested without QEMU.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ganeti import constants, errors

_C = constants

#: Bump when the migration info changes meaning
INFO_VERSION = 1
#: The capability that allows switching a migration to postcopy
POSTCOPY_CAPABILITY = "postcopy-ram"
#: Switch to postcopy once QEMU synchronised the dirty bitmap this often
#: (after the first full pass over memory), as Ganeti does
POSTCOPY_AFTER_SYNCS = 2
#: Seconds the target may take to load the last pages and run, once the
#: source says the migration completed
TARGET_READY_TIMEOUT = 60.0
#: Seconds a cancelled migration may take to end on the source
CANCEL_TIMEOUT = 30.0

#: query-migrate statuses of a migration still going on
QEMU_ACTIVE_STATUSES = frozenset([
    "setup", "active", "pre-switchover", "device", "wait-unplug",
    "postcopy-active", "postcopy-paused", "postcopy-recover", "colo"])
#: ... of one cancelled (or being cancelled)
QEMU_CANCELLED_STATUSES = frozenset(["cancelling", "cancelled"])
#: ... of one not over yet (a cancelled one ends in QEMU's own thread)
QEMU_UNFINISHED_STATUSES = QEMU_ACTIVE_STATUSES | frozenset(["cancelling"])
#: ... of one in postcopy: the guest runs on the target, its memory is
#: partly still on the source, and neither side can go back
QEMU_POSTCOPY_STATUSES = frozenset(["postcopy-active", "postcopy-paused",
                                    "postcopy-recover"])
#: QEMU run states of a guest that is not running but could be resumed
RESUMABLE_RUN_STATES = frozenset(["paused", "postmigrate"])
#: QEMU run state of a target still receiving the guest
INCOMING_RUN_STATE = "inmigrate"

MIB = 1024 * 1024


def Capabilities(hvparams: Mapping[str, Any]) -> dict[str, bool]:
    """The capabilities to set from ``migration_caps`` (":"-separated).

    ``postcopy-ram`` is always given, off unless asked for: a QEMU keeps
    its capabilities, and an earlier attempt may have turned it on.
    """
    names = [name for name in (hvparams.get(_C.HV_KVM_MIGRATION_CAPS) or "").split(":")
             if name]
    caps = {POSTCOPY_CAPABILITY: False}
    caps.update((name, True) for name in names)
    return caps


def IsPostcopy(hvparams: Mapping[str, Any]) -> bool:
    """Whether ``migration_caps`` asks for postcopy."""
    return Capabilities(hvparams)[POSTCOPY_CAPABILITY]


def Parameters(hvparams: Mapping[str, Any]) -> dict[str, int]:
    """``migrate-set-parameters`` arguments: ``max_bandwidth`` (bytes/s) from
    ``migration_bandwidth`` (MiB/s; 0 leaves QEMU's own limit) and
    ``downtime_limit`` (ms) from ``migration_downtime``.

    @raise errors.HypervisorError: a value that is not a non-negative integer
    """
    result = {}
    for name, key in ((_C.HV_MIGRATION_BANDWIDTH, "max_bandwidth"),
                      (_C.HV_MIGRATION_DOWNTIME, "downtime_limit")):
        value = hvparams.get(name)
        if value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise errors.HypervisorError(f"Invalid {name} {value!r}: must be a"
                                         " non-negative integer")
        if key == "max_bandwidth":
            if value == 0:
                continue
            value *= MIB
        result[key] = value
    return result


def Uri(host: str, port: int) -> str:
    """QEMU's migration URI for ``host`` (IPv4, IPv6 or name) and ``port``."""
    if ":" in host:
        return f"tcp:[{host}]:{port}"
    return f"tcp:{host}:{port}"


def ParseStatus(answer: Mapping[str, Any] | None) -> dict[str, Any]:
    """Ganeti's migration status from a ``query-migrate`` answer.

    ``status`` is one of ``constants.HV_MIGRATION_*`` (active, completed,
    failed, cancelled); ``qemu_status`` QEMU's own; ``transferred_ram``,
    ``total_ram`` and ``remaining_ram`` in bytes; ``total_time``,
    ``downtime`` and ``expected_downtime`` in ms where QEMU gives them;
    ``postcopy`` whether the migration is (or was seen) in postcopy;
    ``info`` QEMU's error for a failed migration.
    """
    answer = answer or {}
    qemu_status = answer.get("status")
    if qemu_status == "completed":
        status = _C.HV_MIGRATION_COMPLETED
    elif qemu_status in QEMU_ACTIVE_STATUSES:
        status = _C.HV_MIGRATION_ACTIVE
    elif qemu_status in QEMU_CANCELLED_STATUSES:
        status = _C.HV_MIGRATION_CANCELLED
    else:
        status = _C.HV_MIGRATION_FAILED
    result: dict[str, Any] = {"status": status, "qemu_status": qemu_status or "none",
                              "postcopy": qemu_status in QEMU_POSTCOPY_STATUSES}
    ram = answer.get("ram")
    if isinstance(ram, Mapping):
        for key, name in (("transferred", "transferred_ram"), ("total", "total_ram"),
                          ("remaining", "remaining_ram"),
                          ("dirty-sync-count", "dirty_sync_count")):
            if isinstance(ram.get(key), int):
                result[name] = ram[key]
    for key, name in (("total-time", "total_time"), ("downtime", "downtime"),
                      ("expected-downtime", "expected_downtime")):
        if isinstance(answer.get(key), int):
            result[name] = answer[key]
    if status == _C.HV_MIGRATION_FAILED:
        result["info"] = answer.get("error-desc") or (
            "no migration is going on" if not qemu_status or qemu_status == "none"
            else f"QEMU's migration status is '{qemu_status}'")
    elif status == _C.HV_MIGRATION_CANCELLED:
        result["info"] = "the migration was cancelled"
    return result


def ShouldStartPostcopy(hvparams: Mapping[str, Any], status: Mapping[str, Any]) -> bool:
    """Whether to switch to postcopy now: asked for, still in precopy, and
    the first pass over memory done (Ganeti's dirty-sync-count rule)."""
    return (IsPostcopy(hvparams) and status.get("qemu_status") == "active"
            and int(status.get("dirty_sync_count") or 0) >= POSTCOPY_AFTER_SYNCS)


def EncodeInfo(instance: Mapping[str, Any], memory: int, running: bool) -> str:
    """The migration info the source gives the target: the instance as its
    QEMU was started (devices and hypervisor parameters must be the same at
    both ends), its current (ballooned) memory and whether its guest runs
    (a paused guest stays paused on the target)."""
    return json.dumps({"version": INFO_VERSION, "instance": dict(instance),
                       "memory": int(memory), "running": bool(running)},
                      sort_keys=True)


def DecodeInfo(info: str) -> dict[str, Any]:
    """Parse :func:`EncodeInfo`'s text.

    @raise errors.HypervisorError: not such a text
    """
    try:
        data = json.loads(info)
    except (TypeError, ValueError) as err:
        raise errors.HypervisorError(f"Invalid KVM migration info: {err}") from None
    if not isinstance(data, dict) or not isinstance(data.get("instance"), dict) \
            or not isinstance(data.get("memory"), int):
        raise errors.HypervisorError("Invalid KVM migration info: not the source's"
                                     " instance and memory")
    if data.get("version", 0) > INFO_VERSION:
        raise errors.HypervisorError(
            f"KVM migration info version {data['version']} is newer than this node's"
            f" ({INFO_VERSION}); upgrade this node first")
    data.setdefault("running", True)
    return data


def _DeviceUuids(instance: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    def Uuids(devices: Any) -> list[str]:
        return [str(dev.get("uuid") or index) if isinstance(dev, Mapping) else str(index)
                for index, dev in enumerate(devices or [])]
    return Uuids(instance.get("disks")), Uuids(instance.get("nics"))


def CheckDevicesUnchanged(started: Mapping[str, Any], current: Mapping[str, Any],
                          hotplugged: list[Any]) -> None:
    """Refuse to migrate a QEMU whose devices differ from its start's.

    The target's QEMU is started from the instance as the source's was
    started, with the disks and NICs on their PCI slots of then; a device
    hot-added or hot-removed since would be missing or misplaced there.

    @raise errors.HypervisorError: naming the way out (a restart)
    """
    if hotplugged or _DeviceUuids(started) != _DeviceUuids(current):
        raise errors.HypervisorError(
            f"Instance {current.get('name')} has disks or NICs hotplugged since its"
            " start; their slots cannot be recreated on the target yet: restart the"
            " instance (gnt-instance reboot --type hard) before migrating it")
