"""RADOS block devices (the ``rbd`` disk template), through the ``rbd`` tool.

An rbd disk's ``logical_id`` is ``("rbd", volume name)``; its parameters
name the Ceph pool (``pool``, default "rbd") and how the hypervisor reaches
it (``access``: ``kernelspace`` through the ``/dev/rbdN`` device the kernel
maps, or ``userspace``, where KVM opens ``rbd:<pool>/<volume>`` itself).

Every command line is built by one of the ``*Cmd`` functions and run by
:func:`RunRbd` through the module's :data:`runner` (tests replace it: no
Ceph cluster is available here, so the command lines and the parsing of
``rbd showmapped`` are what the tests check). ``showmapped`` is asked for
JSON first (both the object keyed by device id of older rbd and the list
of newer rbd are understood), then for its plain table (with or without
the ``namespace`` column of newer rbd).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ganeti import constants, errors, utils
from ganeti.storage import base
from ganeti.storage.blockdev import GetBlockDeviceSize, StatBlockDevice

#: The driver part of an rbd disk's logical_id
RBD_DRIVER = "rbd"
DEFAULT_POOL = str(constants.DISK_DT_DEFAULTS[constants.DT_RBD][constants.RBD_POOL])



def _RunCmd(argv: list[str]) -> utils.RunResult:
    return utils.RunCmd(argv, timeout=constants.RBD_CMD_TIMEOUT)


#: Runs one argv (first element "rbd"), returning a utils.RunResult; the
#: one place every rbd command goes through (tests replace it)
runner: Callable[[list[str]], Any] = _RunCmd


@dataclass(frozen=True)
class RbdMapping:
    """One line of ``rbd showmapped``."""
    dev_id: str
    pool: str
    namespace: str
    name: str
    snap: str
    device: str


def CreateCmd(pool: str, name: str, size: int) -> list[str]:
    """Create a volume of ``size`` MiB."""
    return [constants.RBD_CMD, "create", "--size", str(size), "--pool", pool, name]


def MapCmd(pool: str, name: str) -> list[str]:
    """Map a volume to a /dev/rbdN device of this node."""
    return [constants.RBD_CMD, "map", "--pool", pool, name]


def UnmapCmd(device: str) -> list[str]:
    """Unmap the device of a volume."""
    return [constants.RBD_CMD, "unmap", device]


def RemoveCmd(pool: str, name: str) -> list[str]:
    """Delete a volume and its data."""
    return [constants.RBD_CMD, "rm", "--pool", pool, name]


def ResizeCmd(pool: str, name: str, size: int) -> list[str]:
    """Resize a volume to ``size`` MiB."""
    return [constants.RBD_CMD, "resize", "--size", str(size), "--pool", pool, name]


def ShowmappedCmd(json_format: bool = True) -> list[str]:
    """List the volumes mapped on this node."""
    cmd = [constants.RBD_CMD, "showmapped"]
    return cmd + ["--format", "json"] if json_format else cmd


def RunRbd(argv: Sequence[str]) -> str:
    """Run an rbd command line; return its standard output.

    @raise errors.BlockDeviceError: naming the command and quoting its output
    """
    try:
        result = runner(list(argv))
    except errors.OpExecError as err:
        raise errors.BlockDeviceError(f"Cannot run '{' '.join(argv)}': {err}") from err
    if result.failed:
        raise errors.BlockDeviceError(f"'{' '.join(argv)}' failed ({result.fail_reason}):"
                                      f" {result.output.strip()}")
    return result.stdout


def _Mapping(entry: dict[str, Any], dev_id: Any = None) -> RbdMapping:
    return RbdMapping(dev_id=str(entry.get("id", dev_id)), pool=str(entry.get("pool", "")),
                      namespace=str(entry.get("namespace") or ""),
                      name=str(entry.get("name", entry.get("image", ""))),
                      snap=str(entry.get("snap", "-")), device=str(entry.get("device", "")))


def ParseShowmappedJson(text: str) -> list[RbdMapping]:
    """Parse ``rbd showmapped --format json``: an object keyed by device id
    (older rbd) or a list of objects holding their ``id`` (newer rbd).

    @raise errors.BlockDeviceError: if it is neither
    """
    try:
        data = json.loads(text) if text.strip() else []
    except ValueError as err:
        raise errors.BlockDeviceError(f"Cannot parse rbd showmapped JSON output: {err}") \
            from err
    if isinstance(data, dict):
        items = [(dev_id, entry) for dev_id, entry in data.items()]
    elif isinstance(data, list):
        items = [(None, entry) for entry in data]
    else:
        raise errors.BlockDeviceError(
            f"Unexpected rbd showmapped JSON output: {text.strip()[:200]!r}")
    result = []
    for dev_id, entry in items:
        if not isinstance(entry, dict):
            raise errors.BlockDeviceError(
                f"Unexpected rbd showmapped JSON entry: {entry!r}")
        result.append(_Mapping(entry, dev_id))
    return result


def ParseShowmappedPlain(text: str) -> list[RbdMapping]:
    """Parse the plain ``rbd showmapped`` table.

    Its header is ``id pool image snap device`` (older rbd) or ``id pool
    namespace image snap device`` (newer rbd, where the namespace column is
    empty for the default namespace, so such rows have one word less).

    @raise errors.BlockDeviceError: on a header or row it does not know
    """
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return []
    header = lines[0].split()
    if header not in (["id", "pool", "image", "snap", "device"],
                      ["id", "pool", "namespace", "image", "snap", "device"]):
        raise errors.BlockDeviceError(f"Unknown rbd showmapped header: {lines[0]!r}")
    with_ns = "namespace" in header
    result = []
    for line in lines[1:]:
        words = line.split()
        if len(words) == 5:
            dev_id, pool, name, snap, device = words
            namespace = ""
        elif len(words) == 6 and with_ns:
            dev_id, pool, namespace, name, snap, device = words
        else:
            raise errors.BlockDeviceError(f"Cannot parse rbd showmapped line: {line!r}")
        result.append(RbdMapping(dev_id, pool, namespace, name, snap, device))
    return result


def GetMappings() -> list[RbdMapping]:
    """The volumes mapped on this node (JSON first, then the plain table)."""
    try:
        return ParseShowmappedJson(RunRbd(ShowmappedCmd(json_format=True)))
    except errors.BlockDeviceError as err:
        logging.debug("rbd showmapped in JSON failed, trying the plain table: %s", err)
    return ParseShowmappedPlain(RunRbd(ShowmappedCmd(json_format=False)))


def FindMapping(pool: str, name: str,
                mappings: Sequence[RbdMapping] | None = None) -> RbdMapping | None:
    """The mapping of volume ``pool/name`` itself (not of a snapshot), if any.

    @raise errors.BlockDeviceError: if it is mapped more than once
    """
    found = [m for m in (GetMappings() if mappings is None else mappings)
             if m.pool == pool and m.name == name
             and m.snap in ("-", "") and not m.namespace]
    if len(found) > 1:
        raise errors.BlockDeviceError(
            f"RBD volume {pool}/{name} is mapped more than once:"
            f" {', '.join(m.device for m in found)}")
    return found[0] if found else None


def _CheckUniqueId(unique_id: Any) -> tuple[str, str]:
    if not isinstance(unique_id, (tuple, list)) or len(unique_id) != 2:
        base.ThrowError("Invalid rbd disk logical_id %r: expected (driver, volume name)",
                        unique_id)
    driver, name = unique_id
    if driver != RBD_DRIVER:
        base.ThrowError("Invalid driver '%s' of rbd volume %s (valid: %s)", driver, name,
                        RBD_DRIVER)
    if not isinstance(name, str) or not name or "/" in name or "@" in name \
            or name.startswith("-"):
        base.ThrowError("Invalid RBD volume name %r", name)
    return driver, name


class RADOSBlockDevice(base.BlockDev):
    """A volume of a Ceph pool; ``unique_id`` is ("rbd", volume name).

    Building the object attaches it (mapping the volume on this node if
    needed, as Ganeti does), so ``attached`` tells whether it is usable.
    """

    #: Why the last Attach failed (None if it did not)
    attach_error: str | None

    def __init__(self, unique_id, children, size, params, dyn_params=None, **kwargs):
        super().__init__(unique_id, children, size, params, dyn_params, **kwargs)
        self.driver, self.rbd_name = _CheckUniqueId(unique_id)
        self.pool = str((params or {}).get(constants.RBD_POOL) or DEFAULT_POOL)
        self.attach_error = None
        self.Attach()

    @classmethod
    def Create(cls, unique_id, children, size, spindles, params, excl_stor,
               dyn_params=None, **kwargs):
        """``rbd create`` the volume, then map it."""
        if excl_stor:
            base.ThrowError("Exclusive storage is not supported by rbd disks")
        _, name = _CheckUniqueId(unique_id)
        if not isinstance(size, int) or isinstance(size, bool) or size <= 0:
            base.ThrowError("Invalid size %r for rbd volume %s: must be a positive"
                            " integer (MiB)", size, name)
        pool = str((params or {}).get(constants.RBD_POOL) or DEFAULT_POOL)
        RunRbd(CreateCmd(pool, name, size))
        dev = cls(unique_id, children, size, params, dyn_params, **kwargs)
        if not dev.attached:
            base.ThrowError("Cannot map rbd volume %s/%s after creating it: %s", pool,
                            name, dev.attach_error)
        return dev

    def _Map(self) -> str:
        mapping = FindMapping(self.pool, self.rbd_name)
        if mapping is not None:
            return mapping.device
        output = RunRbd(MapCmd(self.pool, self.rbd_name))
        mapping = FindMapping(self.pool, self.rbd_name)
        if mapping is not None:
            return mapping.device
        # Newer rbd prints the device it mapped
        first = output.strip().splitlines()[0] if output.strip() else ""
        if first.startswith("/dev/"):
            return first
        raise errors.BlockDeviceError(
            f"rbd map of {self.pool}/{self.rbd_name} succeeded, but rbd showmapped does"
            " not list it")

    def Attach(self, **kwargs: Any) -> bool:
        """Find the volume's device in showmapped (mapping it if needed)."""
        self.attached = False
        self.dev_path = self.major = self.minor = None
        try:
            device = self._Map()
            st = StatBlockDevice(device)
        except errors.BlockDeviceError as err:
            self.attach_error = str(err)
            logging.info("Cannot attach rbd volume %s/%s: %s", self.pool, self.rbd_name,
                         err)
            return False
        self.attach_error = None
        self.major, self.minor = os.major(st.st_rdev), os.minor(st.st_rdev)
        self.dev_path, self.attached = device, True
        return True

    def Assemble(self) -> None:
        """The device is usable once mapped."""
        if not self.attached and not self.Attach():
            base.ThrowError("%s", self.attach_error)

    def Shutdown(self) -> None:
        """``rbd unmap`` the volume's device, if mapped."""
        mapping = FindMapping(self.pool, self.rbd_name)
        if mapping is not None:
            RunRbd(UnmapCmd(mapping.device))
        self.attached = False
        self.dev_path = self.major = self.minor = None

    def Remove(self) -> None:
        """Unmap, then ``rbd rm`` the volume."""
        self.Shutdown()
        RunRbd(RemoveCmd(self.pool, self.rbd_name))

    def Rename(self, new_id):
        """RBD volumes keep their names."""
        base.ThrowError("Rename is not supported for rbd disks (%s/%s)", self.pool,
                        self.rbd_name)

    def Grow(self, amount, dryrun, backingstore, excl_stor):
        """``rbd resize`` to ``amount`` MiB more than the disk's size."""
        if not backingstore:
            return
        if not isinstance(amount, int) or isinstance(amount, bool) or amount < 0:
            base.ThrowError("Invalid amount %r to grow rbd volume %s: must be a"
                            " non-negative integer (MiB)", amount, self.rbd_name)
        if not self.attached and not self.Attach():
            base.ThrowError("Cannot grow rbd volume %s/%s: %s", self.pool, self.rbd_name,
                            self.attach_error)
        if dryrun or amount == 0:
            return
        new_size = self.size + amount
        RunRbd(ResizeCmd(self.pool, self.rbd_name, new_size))
        self.size = new_size

    def GetActualSize(self) -> int:
        """The size in bytes of the mapped device."""
        if not self.attached and not self.Attach():
            base.ThrowError("Cannot get the size of rbd volume %s/%s: %s", self.pool,
                            self.rbd_name, self.attach_error)
        assert self.dev_path is not None
        return GetBlockDeviceSize(self.dev_path)

    def GetSyncStatus(self) -> Any:
        """Never syncing; an unmapped volume is faulty."""
        status = super().GetSyncStatus()
        if not self.attached:
            status.is_degraded = True
            status.ldisk_status = base.LDS_FAULTY
        return status

    def GetUserspaceAccessUri(self, hypervisor: str) -> str | None:
        """``rbd:<pool>/<volume>`` for KVM when ``access`` is userspace."""
        if (self.params or {}).get(constants.RBD_ACCESS) != constants.DISK_USERSPACE:
            return None
        if hypervisor != constants.HT_KVM:
            base.ThrowError("Userspace access to rbd volumes is supported only by the"
                            " kvm hypervisor, not by %s", hypervisor)
        return f"rbd:{self.pool}/{self.rbd_name}"
