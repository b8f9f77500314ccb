"""Disks and NICs plugged into (and out of) a running QEMU through QMP.

Devices get the ids the command line gives them (``disk-<uuid>``,
``nic-<uuid>``: :func:`cmdline.DeviceIdFor`), so a device QEMU was
started with is removed the same way as one plugged in later. Hotplugged
devices go on the first free PCI slot from ``kvm_pci_reservations`` up
(as the command line's), found with ``query-pci``.

Disks use ``drive_add`` (HMP) and a ``virtio-blk-pci`` device, as Ganeti
does: ``drive_add`` takes the same drive options as ``-drive``. The node
opens the disk and passes the descriptor (``add-fd``; the drive's file is
``/dev/fdset/<id>``): a QEMU running as another user (``security_model``
user or pool) or chrooted (``use_chroot``) could not open the path itself.
NICs get a tap opened here, passed to QEMU with ``getfd`` and named in
``netdev_add``. A removal waits for the guest to release the device
(``DEVICE_DELETED``).
"""

from __future__ import annotations

import os
from typing import Any

from ganeti import constants, errors
from ganeti.hypervisor.hv_kvm import cmdline
from ganeti.hypervisor.hv_kvm.monitor import MonitorError, QmpConnection

_C = constants
#: The PCI bus the command line's devices sit on
PCI_BUS = "pci.0"
#: Seconds a guest gets to release an unplugged device
RELEASE_TIMEOUT = 30.0


def _Fail(msg: str) -> errors.HotplugError:
    return errors.HotplugError(msg)


def FreePciSlot(qmp: QmpConnection, reservations: int) -> int:
    """The first PCI slot of bus 0 from ``reservations`` up that is free."""
    used: set[int] = set()
    for bus in qmp.QueryPci():
        if bus.get("bus") == 0:
            used.update(device.get("slot") for device in bus.get("devices", []))
    for slot in range(reservations, _C.QEMU_PCI_SLOTS):
        if slot not in used:
            return slot
    raise _Fail(f"No free PCI slot left above kvm_pci_reservations={reservations}")


def CheckSupported(hvparams: dict[str, Any], action: str, dev_type: str) -> None:
    """Whether ``action`` on a ``dev_type`` device can be done hot.

    @raise errors.HotplugError: saying why not
    """
    if dev_type not in _C.HOTPLUG_ALL_TARGETS:
        raise _Fail(f"Cannot hotplug a device of type '{dev_type}' (only"
                    f" {', '.join(sorted(_C.HOTPLUG_ALL_TARGETS))})")
    if action == _C.HOTPLUG_ACTION_MODIFY:
        raise _Fail(f"A {dev_type} cannot be modified while the instance runs;"
                    " change it with --no-hotplug and restart the instance")
    if action not in _C.HOTPLUG_ALL_ACTIONS:
        raise _Fail(f"Unknown hotplug action '{action}'")
    if dev_type == _C.HOTPLUG_TARGET_DISK and \
            hvparams[_C.HV_DISK_TYPE] != _C.HT_DISK_PARAVIRTUAL:
        raise _Fail(f"Disk hotplug needs disk_type={_C.HT_DISK_PARAVIRTUAL} (the"
                    f" instance has {hvparams[_C.HV_DISK_TYPE]})")
    if dev_type == _C.HOTPLUG_TARGET_NIC and hvparams[_C.HV_NIC_TYPE] == _C.HT_NIC_NE2K_ISA:
        raise _Fail(f"NIC hotplug needs a PCI NIC (the instance has nic_type="
                    f"{hvparams[_C.HV_NIC_TYPE]})")


def AddDisk(qmp: QmpConnection, hvparams: dict[str, Any], dev_id: str, path: str,
            readonly: bool) -> int:
    """Plug the disk at ``path`` in as ``dev_id``; return its PCI slot."""
    slot = FreePciSlot(qmp, hvparams[_C.HV_KVM_PCI_RESERVATIONS])
    fdset = _PassDisk(qmp, dev_id, path, readonly)
    try:
        qmp.DriveAdd(dev_id, f"/dev/fdset/{fdset}", cmdline.DriveOptions(hvparams, readonly))
    except MonitorError:
        _Quietly(qmp.RemoveFdSet, fdset)
        raise
    try:
        qmp.DeviceAdd("virtio-blk-pci", dev_id, drive=dev_id, bus=PCI_BUS,
                      addr=f"{slot:#x}")
    except MonitorError:
        _Quietly(qmp.DriveDel, dev_id)
        _Quietly(qmp.RemoveFdSet, fdset)
        raise
    return slot


def _PassDisk(qmp: QmpConnection, dev_id: str, path: str, readonly: bool) -> int:
    """Open the disk at ``path`` and pass it to QEMU as an fd set; its id.

    A writable disk goes in twice, read-only and read-write: QEMU opens
    an image read-only first and again read-write once a device writes.
    """
    modes = [os.O_RDONLY] if readonly else [os.O_RDONLY, os.O_RDWR]
    fdset: int | None = None
    try:
        for mode in modes:
            try:
                fd = os.open(path, mode | os.O_CLOEXEC)
            except OSError as err:
                raise _Fail(f"Cannot open the disk {path}: {err.strerror or err}") from err
            try:
                fdset = qmp.AddFd(fd, opaque=dev_id, fdset_id=fdset)
            finally:
                os.close(fd)
    except BaseException:
        if fdset is not None:
            _Quietly(qmp.RemoveFdSet, fdset)
        raise
    assert fdset is not None
    return fdset


def _FdSets(qmp: QmpConnection, dev_id: str) -> list[int]:
    """The fd sets passed for disk ``dev_id`` (their opaque is its id)."""
    return [int(fdset["fdset-id"]) for fdset in qmp.Execute("query-fdsets") or []
            if any(fd.get("opaque") == dev_id for fd in fdset.get("fds", []))]


def RemoveDisk(qmp: QmpConnection, dev_id: str) -> None:
    """Unplug disk ``dev_id``, waiting for the guest to release it."""
    qmp.DeviceDel(dev_id, timeout=RELEASE_TIMEOUT)
    # QEMU drops a drive_add drive with its device; an older one may stay
    _Quietly(qmp.DriveDel, dev_id)
    try:
        fdsets = _FdSets(qmp, dev_id)
    except MonitorError:
        fdsets = []
    for fdset in fdsets:
        _Quietly(qmp.RemoveFdSet, fdset)


def AddNic(qmp: QmpConnection, hvparams: dict[str, Any], dev_id: str, mac: str,
           fds: list[int]) -> int:
    """Plug a NIC with MAC ``mac`` on the tap ``fds`` in as ``dev_id``; return
    its PCI slot."""
    slot = FreePciSlot(qmp, hvparams[_C.HV_KVM_PCI_RESERVATIONS])
    options: dict[str, Any] = {}
    if hvparams[_C.HV_VHOST_NET]:
        options["vhost"] = True
    qmp.NetdevAdd(dev_id, fds=fds, **options)
    model = cmdline.NicModel(hvparams)
    properties: dict[str, Any] = {"netdev": dev_id, "mac": mac, "bus": PCI_BUS,
                                  "addr": f"{slot:#x}"}
    if len(fds) > 1:
        properties.update(mq=True, vectors=2 * len(fds) + 2)
    try:
        qmp.DeviceAdd(model, dev_id, **properties)
    except MonitorError:
        _Quietly(qmp.NetdevDel, dev_id)
        raise
    return slot


def RemoveNic(qmp: QmpConnection, dev_id: str) -> None:
    """Unplug NIC ``dev_id`` and its network backend."""
    qmp.DeviceDel(dev_id, timeout=RELEASE_TIMEOUT)
    _Quietly(qmp.NetdevDel, dev_id)


def _Quietly(fn: Any, *args: Any) -> None:
    try:
        fn(*args)
    except MonitorError:
        pass  # already gone with its device
