"""LVM: ``plain`` disks (logical volumes), and volume groups and physical
volumes as storage units.

Every lvm2 command runs through :func:`_RunLvm`. It suppresses LVM's
warnings about inherited file descriptors and, on a node of a virtual
cluster whose root holds ``etc/lvm/lvm.conf`` (an LVM view, see
:mod:`ganeti.storage.lvm_view`), points ``LVM_SYSTEM_DIR`` there, so that
each virtual node sees only its own physical volumes. A failed command
raises :class:`errors.StorageError` (or :class:`errors.BlockDeviceError`
for a disk) naming the command, the volume and LVM's own message.

Reports are read with ``--noheadings --units=m --nosuffix --separator=|``;
the parsers (``Parse*``) are pure functions of that output. Sizes are MiB.

Without device-mapper (as on the machines we test on) LVM can only change
metadata: "activation" must be off. Logical volumes are then created
inactive and unzeroed, and assembling one only checks that it exists; a
node whose LVM configuration still asks for activation gets it turned off
per command (``--config``). Snapshots need device-mapper and fail there
with LVM's message. An LVM view with loop activation (see
:func:`ganeti.storage.lvm_view.EnableLoopActivation`) makes volumes real
block devices all the same: they are allocated contiguous, assembling one
maps it onto a loop device over the view's image, and shutting it down
detaches that device.

The storage units (:class:`LvmVgStorage`, :class:`LvmPvStorage`) add
themselves to :data:`ganeti.storage.container.STORAGE_TYPES`.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import re
from collections.abc import Iterator, Sequence
from typing import Any

from ganeti import constants, errors, pathutils, utils
from ganeti.storage import base, container

#: Options of every report command (vgs, lvs, pvs)
_REPORT_OPTS = ["--noheadings", "--units=m", "--nosuffix", "--separator=|"]
_SEP = "|"

#: Where a node's own LVM configuration lives, relative to its root
NODE_LVM_DIR = "etc/lvm"

#: The misc device the kernel shows when device-mapper is available
_DM_MISC_DEVICE = "/sys/class/misc/device-mapper"

#: stderr lines that only say device-mapper or metadata backups are off
_NOISE_RE = re.compile(
    r"WARNING: Activation disabled|metadata update is NOT backed up"
    r"|/dev/mapper/control: open failed|communicate with kernel device-mapper"
    r"|device-mapper is available in the kernel|Incompatible libdevmapper"
    r"|File descriptor \d+ .* leaked")

# LVM's naming rules (lvm(8), "VALID NAMES")
_NAME_RE = re.compile(r"^[A-Za-z0-9+_.][A-Za-z0-9+_.-]*$")
_MAX_NAME_LEN = 127
_RESERVED_NAMES = frozenset([".", ".."])
_RESERVED_LV_NAMES = frozenset(["snapshot", "pvmove"])
_RESERVED_LV_PARTS = ("_cdata", "_cmeta", "_corig", "_mlog", "_mimage", "_pmspare",
                      "_rimage", "_rmeta", "_tdata", "_tmeta", "_vorigin", "_vdata")

#: Characters LVM allows in tags (others are replaced by "_")
_TAG_BAD_CHARS_RE = re.compile(r"[^A-Za-z0-9_+.-]")
_MAX_TAG_LEN = 128

#: lvextend allocation policies, most to least demanding
_GROW_ALLOC_POLICIES = ("contiguous", "cling", "normal")


# --- Running lvm2 commands -----------------------------------------------------------

def NodeLvmSystemDir(root: str) -> str:
    """The LVM system directory (holding lvm.conf) of the node root ``root``."""
    return os.path.join(root, NODE_LVM_DIR)


def _ViewSystemDir() -> str | None:
    """This virtual node's LVM system directory, if it has an LVM view."""
    if not pathutils.IsVirtualCluster():
        return None
    sysdir = NodeLvmSystemDir(pathutils.GetRootDirectory())
    return sysdir if os.path.isfile(os.path.join(sysdir, "lvm.conf")) else None


def LvmEnvironment(system_dir: str | None = None) -> dict[str, str]:
    """The environment variables of lvm2 commands on this node.

    ``system_dir`` overrides the LVM system directory (default: this
    virtual node's view, if any, else LVM's own).
    """
    env = {"LVM_SUPPRESS_FD_WARNINGS": "1"}
    sysdir = system_dir or _ViewSystemDir()
    if sysdir:
        env["LVM_SYSTEM_DIR"] = sysdir
    return env


@functools.lru_cache(maxsize=32)
def _ConfiguredActivation(system_dir: str | None) -> bool:
    """Whether the LVM configuration (of ``system_dir``) enables activation."""
    try:
        result = utils.RunCmd(["lvm", "dumpconfig", "--type", "full",
                               "global/activation"], env=LvmEnvironment(system_dir))
    except errors.OpExecError:
        return True
    match = re.search(r"activation\s*=\s*(\d+)", result.stdout)
    return match is None or match.group(1) != "0"


def _DeviceMapperPresent() -> bool:
    return os.path.exists(_DM_MISC_DEVICE)


def ActivationEnabled(system_dir: str | None = None) -> bool:
    """Whether logical volumes can be activated (device-mapper present and
    LVM configured to use it)."""
    return _DeviceMapperPresent() and _ConfiguredActivation(system_dir or _ViewSystemDir())


def _LoopViewRoot() -> str | None:
    """The node root of this virtual node if its LVM view maps logical
    volumes onto loop devices, activation being unavailable; else None."""
    if _ViewSystemDir() is None:
        return None
    # lvm_view builds on this module
    from ganeti.storage import lvm_view
    root = pathutils.GetRootDirectory()
    if not lvm_view.LoopActivationEnabled(root) or ActivationEnabled():
        return None
    return root


def _CleanOutput(text: str) -> str:
    """LVM's output without the noise lines, joined with "; "."""
    lines = [line.strip() for line in text.splitlines()]
    return "; ".join(line for line in lines if line and not _NOISE_RE.search(line))


def _RunLvm(args: Sequence[str], subject: str | None = None,
            error: type[errors.GenericError] = errors.StorageError,
            check: bool = True, system_dir: str | None = None) -> utils.RunResult:
    """Run the lvm2 command ``args``; the one way this node runs LVM.

    ``subject`` (a VG, "vg/lv" or PV) names what the command acts on in
    error messages; with ``check`` a failure raises ``error`` with LVM's
    message, otherwise the result is returned as it is. ``system_dir``
    overrides the LVM system directory (see :func:`LvmEnvironment`).
    """
    sysdir = system_dir or _ViewSystemDir()
    cmd = list(args)
    if _ConfiguredActivation(sysdir) and not _DeviceMapperPresent():
        # Without device-mapper LVM can only work on metadata
        cmd[1:1] = ["--config", "global{activation=0}"]
    what = f" for {subject}" if subject else ""
    try:
        result = utils.RunCmd(cmd, env=LvmEnvironment(sysdir))
    except errors.OpExecError as err:
        raise error(f"Cannot run {args[0]}{what} (is lvm2 installed?): {err}") from err
    if check and result.failed:
        raise error(f"{args[0]}{what} failed ({result.fail_reason}):"
                    f" {_CleanOutput(result.stderr) or _CleanOutput(result.stdout)}")
    return result


@contextlib.contextmanager
def _AsBlockDeviceError() -> Iterator[None]:
    """Turn storage errors of the reports into block device errors."""
    try:
        yield
    except errors.StorageError as err:
        raise errors.BlockDeviceError(str(err)) from err


# --- Names --------------------------------------------------------------------------

def _CheckName(kind: str, name: Any) -> str:
    if not isinstance(name, str) or not name:
        raise errors.BlockDeviceError(f"Invalid LVM {kind} name {name!r}: must be a"
                                      " non-empty string")
    reason = None
    if len(name) > _MAX_NAME_LEN:
        reason = f"longer than {_MAX_NAME_LEN} characters"
    elif name in _RESERVED_NAMES:
        reason = "a reserved name"
    elif name.startswith("-"):
        reason = "starts with '-'"
    elif not _NAME_RE.match(name):
        reason = "only letters, digits and '+_.-' are allowed"
    if reason:
        raise errors.BlockDeviceError(f"Invalid LVM {kind} name '{name}': {reason}")
    return name


def CheckVgName(name: Any) -> str:
    """Return ``name`` if LVM accepts it as a volume group name.

    @raise errors.BlockDeviceError: naming the bad value and why
    """
    return _CheckName("volume group", name)


def CheckLvName(name: Any) -> str:
    """Return ``name`` if LVM accepts it as a logical volume name.

    @raise errors.BlockDeviceError: naming the bad value and why
    """
    _CheckName("logical volume", name)
    if name in _RESERVED_LV_NAMES:
        raise errors.BlockDeviceError(f"Invalid LVM logical volume name '{name}':"
                                      " a reserved name")
    for part in _RESERVED_LV_PARTS:
        if part in name:
            raise errors.BlockDeviceError(f"Invalid LVM logical volume name '{name}':"
                                          f" contains the reserved '{part}'")
    return name


def _CheckUniqueId(unique_id: Any) -> tuple[str, str]:
    if not isinstance(unique_id, (tuple, list)) or len(unique_id) != 2:
        raise errors.BlockDeviceError(f"Invalid logical volume id {unique_id!r}:"
                                      " expected (volume group, name)")
    return CheckVgName(unique_id[0]), CheckLvName(unique_id[1])


def SanitizeTag(text: str) -> str:
    """``text`` as an LVM tag: allowed characters only, at most 128 of them,
    not starting with '-'."""
    tag = _TAG_BAD_CHARS_RE.sub("_", text)[:_MAX_TAG_LEN]
    return "_" + tag[1:] if tag.startswith("-") else tag


# --- Parsers of the reports (pure functions) ----------------------------------------

def _Rows(output: str, nfields: int, what: str) -> list[list[str]]:
    """The "|"-separated rows of a report, each checked for ``nfields``."""
    rows = []
    for line in output.splitlines():
        if not line.strip():
            continue
        fields = [value.strip() for value in line.split(_SEP)]
        if len(fields) != nfields:
            raise errors.StorageError(f"Cannot parse the {what} line {line.strip()!r}:"
                                      f" expected {nfields} fields, got {len(fields)}")
        rows.append(fields)
    return rows


def _Size(value: str, what: str) -> float:
    try:
        return float(value) if value else 0.0
    except ValueError:
        raise errors.StorageError(f"Invalid size '{value}' in the {what}") from None


def _Int(value: str) -> int | None:
    try:
        number = int(value)
    except ValueError:
        return None
    return number if number >= 0 else None


def _Attr(attr: str, idx: int) -> str:
    """Character ``idx`` of an attribute string ("-" if it is too short)."""
    return attr[idx] if len(attr) > idx else "-"


def _Device(device: str) -> str:
    """A PV of the ``devices`` field without its "(first extent)" suffix."""
    return re.sub(r"\(\d+\)$", "", device.strip())


def ParseVolumeGroups(output: str) -> dict[str, int]:
    """{vg name: size MiB} from ``vgs -o vg_name,vg_size``."""
    return {name: int(round(_Size(size, "vgs output")))
            for name, size in _Rows(output, 2, "vgs output")}


def ParseVgReport(output: str) -> list[dict[str, Any]]:
    """Volume groups from ``vgs -o vg_name,vg_size,vg_free,vg_attr,pv_count``:
    dicts of name, size, free (MiB), attributes, pv_count and ``partial``
    (some PV is missing)."""
    result = []
    for name, size, free, attr, pv_count in _Rows(output, 5, "vgs output"):
        result.append({"name": name, "size": _Size(size, "vgs output"),
                       "free": _Size(free, "vgs output"), "attributes": attr,
                       "pv_count": _Int(pv_count) or 0,
                       "partial": _Attr(attr, 3) == "p"})
    return result


def ParseLogicalVolumes(output: str) -> dict[str, tuple[float, bool, bool]]:
    """{"vg/lv": (size MiB, inactive, online)} from ``lvs -o
    vg_name,lv_name,lv_size,lv_attr``.

    As Ganeti: the fifth attribute is the state ("-": inactive), the sixth
    whether the device is open ("o": online); virtual volumes are left out.
    Unknown states ("X", LVM without device-mapper) count as neither.
    """
    result = {}
    for vg_name, lv_name, size, attr in _Rows(output, 4, "lvs output"):
        if len(attr) < 6:
            raise errors.StorageError(f"Invalid attributes '{attr}' of logical volume"
                                      f" {vg_name}/{lv_name} in the lvs output")
        if attr[0] == "v":
            continue
        result[f"{vg_name}/{lv_name}"] = (_Size(size, "lvs output"), attr[4] == "-",
                                          attr[5] == "o")
    return result


def ParseVolumeList(output: str) -> list[dict[str, Any]]:
    """One {"name", "vg", "size", "dev"} per logical volume and physical
    volume it uses, from ``lvs -o lv_name,vg_name,lv_size,devices``.

    A striped segment lists its PVs separated by commas; a missing PV is
    "[unknown]"; a volume without segments gets one entry with dev "".
    """
    result: list[dict[str, Any]] = []
    seen = set()
    for name, vg_name, size, devices in _Rows(output, 4, "lvs output"):
        for dev in [_Device(d) for d in devices.split(",")] if devices else [""]:
            if (vg_name, name, dev) in seen:
                continue
            seen.add((vg_name, name, dev))
            result.append({"name": name, "vg": vg_name, "size": _Size(size, "lvs output"),
                           "dev": dev})
    return result


def ParsePhysicalVolumes(output: str, with_lvs: bool = True) -> list[dict[str, Any]]:
    """Physical volumes from ``pvs -o pv_name,vg_name,pv_size,pv_free,pv_used,
    pv_attr,pv_uuid,lv_name`` (one line per segment), or without
    ``lv_name`` when not ``with_lvs`` (one line per PV).

    Each is a dict: name, vg_name ("" when in no VG), size, free, used
    (MiB), attributes, allocatable, missing, uuid, lv_list (the LVs on
    it; empty without ``with_lvs``). A PV is allocatable when its first
    attribute is "a" and it is not missing (third attribute "m", name
    "[unknown]").
    """
    by_key: dict[str, dict[str, Any]] = {}
    for row in _Rows(output, 8 if with_lvs else 7, "pvs output"):
        name, vg_name, size, free, used, attr, uuid = row[:7]
        lv_name = row[7] if with_lvs else ""
        key = uuid or name
        pv = by_key.get(key)
        if pv is None:
            missing = _Attr(attr, 2) == "m"
            pv = by_key[key] = {
                "name": name, "vg_name": vg_name, "size": _Size(size, "pvs output"),
                "free": _Size(free, "pvs output"), "used": _Size(used, "pvs output"),
                "attributes": attr, "allocatable": _Attr(attr, 0) == "a" and not missing,
                "missing": missing, "uuid": uuid, "lv_list": []}
        if lv_name and lv_name not in pv["lv_list"]:
            pv["lv_list"].append(lv_name)
    return list(by_key.values())


def ParseLvInfo(output: str) -> dict[str, Any]:
    """One logical volume from ``lvs -o lv_attr,lv_kernel_major,
    lv_kernel_minor,vg_extent_size,stripes,devices,lv_size`` (one line per
    segment): attributes, major, minor (None when unknown), extent_size,
    size (MiB), stripes (the most of any segment), pv_names."""
    rows = _Rows(output, 7, "lvs output")
    if not rows:
        raise errors.StorageError("Empty lvs output")
    attr, major, minor, extent, _, _, size = rows[0]
    if len(attr) < 6:
        raise errors.StorageError(f"Invalid logical volume attributes '{attr}'")
    pv_names: list[str] = []
    stripes = 1
    for row in rows:
        stripes = max(stripes, _Int(row[4]) or 1)
        for dev in row[5].split(",") if row[5] else []:
            if _Device(dev) not in pv_names:
                pv_names.append(_Device(dev))
    return {"attributes": attr, "major": _Int(major), "minor": _Int(minor),
            "extent_size": _Size(extent, "lvs output"), "stripes": stripes,
            "size": _Size(size, "lvs output"), "pv_names": pv_names}


# --- Reports of this node --------------------------------------------------------------

def GetVolumeGroups() -> dict[str, int]:
    """{vg name: size MiB} of the volume groups of this node."""
    result = _RunLvm(["vgs", *_REPORT_OPTS, "-o", "vg_name,vg_size"])
    return ParseVolumeGroups(result.stdout)


def _CheckReportVg(name: Any) -> str:
    """A volume group name for a report (bad ones raise StorageError)."""
    try:
        return CheckVgName(name)
    except errors.BlockDeviceError as err:
        raise errors.StorageError(str(err)) from None


def _NotFound(result: utils.RunResult) -> bool:
    return "not found" in result.stderr or "Failed to find" in result.stderr


def GetVgInfo(vg_name: str) -> dict[str, Any]:
    """The volume group ``vg_name`` (see :func:`ParseVgReport`).

    @raise errors.StorageError: if it does not exist on this node
    """
    _CheckReportVg(vg_name)
    result = _RunLvm(["vgs", *_REPORT_OPTS, "-o",
                      "vg_name,vg_size,vg_free,vg_attr,pv_count", vg_name],
                     subject=f"volume group {vg_name}", check=False)
    if result.failed and _NotFound(result):
        raise errors.StorageError(f"Volume group '{vg_name}' does not exist on this node")
    if result.failed:
        raise errors.StorageError(f"vgs for volume group {vg_name} failed"
                                  f" ({result.fail_reason}): {_CleanOutput(result.stderr)}")
    vgs = [vg for vg in ParseVgReport(result.stdout) if vg["name"] == vg_name]
    if not vgs:
        raise errors.StorageError(f"Volume group '{vg_name}' does not exist on this node")
    return vgs[0]


def GetLogicalVolumes(vg_names: list[str] | None = None
                      ) -> dict[str, tuple[float, bool, bool]]:
    """{"vg/lv": (size MiB, inactive, online)} of the given VGs (None: all)."""
    names = [_CheckReportVg(name) for name in vg_names or []]
    result = _RunLvm(["lvs", *_REPORT_OPTS, "-o", "vg_name,lv_name,lv_size,lv_attr",
                      *names], subject=f"volume group(s) {', '.join(names)}" if names
                     else None)
    return ParseLogicalVolumes(result.stdout)


def GetPhysicalVolumes(vg_names: list[str] | None = None,
                       filter_allocatable: bool = False,
                       with_lvs: bool = True) -> list[dict[str, Any]]:
    """The physical volumes of this node (see :func:`ParsePhysicalVolumes`),
    only those of ``vg_names`` if given, only allocatable ones with
    ``filter_allocatable``; without ``with_lvs`` their ``lv_list`` is not
    read (pvs then prints a line per PV, not one per volume on it)."""
    fields = "pv_name,vg_name,pv_size,pv_free,pv_used,pv_attr,pv_uuid"
    result = _RunLvm(["pvs", *_REPORT_OPTS, "-o",
                      f"{fields},lv_name" if with_lvs else fields])
    pvs = ParsePhysicalVolumes(result.stdout, with_lvs=with_lvs)
    if vg_names is not None:
        pvs = [pv for pv in pvs if pv["vg_name"] in vg_names]
    if filter_allocatable:
        pvs = [pv for pv in pvs if pv["allocatable"]]
    return pvs


def ListVolumes() -> list[dict[str, Any]]:
    """Every logical volume of this node once per PV it uses:
    {"name", "vg", "size" (MiB), "dev"} (Ganeti's node_volumes)."""
    result = _RunLvm(["lvs", *_REPORT_OPTS, "-o", "lv_name,vg_name,lv_size,devices"])
    return ParseVolumeList(result.stdout)


def _EmptyPvSpace(vg_name: str) -> tuple[int, int, int]:
    """(MiB on empty PVs, empty PVs, all PVs) of a VG, for exclusive storage."""
    pvs = [pv for pv in GetPhysicalVolumes([vg_name]) if not pv["missing"]]
    empty = [pv for pv in pvs if pv["allocatable"] and not pv["lv_list"]]
    return int(sum(pv["size"] for pv in empty)), len(empty), len(pvs)


def GetVgSpace(vg_name: str, excl_stor: bool = False) -> dict[str, int]:
    """{"storage_free", "storage_size"} (MiB) of a volume group.

    With exclusive storage only PVs without any LV count as free, since an
    LV never shares its PVs.
    """
    info = GetVgInfo(vg_name)
    free = int(info["free"])
    if excl_stor:
        free = _EmptyPvSpace(vg_name)[0]
    return {"storage_free": free, "storage_size": int(round(info["size"]))}


def GetVgSpindles(vg_name: str) -> dict[str, int]:
    """{"storage_free", "storage_size"} of a VG counted in spindles (empty
    PVs, all PVs), as exclusive storage counts them."""
    GetVgInfo(vg_name)
    _, empty, total = _EmptyPvSpace(vg_name)
    return {"storage_free": empty, "storage_size": total}


# --- Logical volumes (plain disks) -----------------------------------------------------

class LogicalVolume(base.BlockDev):
    """A logical volume; ``unique_id`` is (volume group, volume name).

    ``pv_names`` lists the PVs it uses once attached. Shutting down does
    nothing, as in Ganeti: an LV stays active while it exists; but in an
    LVM view with loop activation, where assembling maps the volume onto a
    loop device (its ``dev_path`` then), shutting down detaches it.
    """

    CREATE_TAKES_INFO = True

    def __init__(self, unique_id: tuple[Any, ...], children: list[base.BlockDev],
                 size: int, params: dict[str, Any],
                 dyn_params: dict[str, Any] | None = None, **kwargs: Any):
        super().__init__(unique_id, children, size, params, dyn_params, **kwargs)
        self.vg_name, self.lv_name = _CheckUniqueId(unique_id)
        self.unique_id = (self.vg_name, self.lv_name)
        self.pv_names: list[str] = []
        self.extent_size: float | None = None
        self.stripes = 1
        self._attributes = ""
        self.Attach()

    @property
    def _name(self) -> str:
        return f"{self.vg_name}/{self.lv_name}"

    # --- creation ------------------------------------------------------------------

    @staticmethod
    def _PlanExclusive(vg_name: str, pvs: list[dict[str, Any]], size: int,
                       spindles: int | None) -> list[str]:
        """The empty PVs an LV of ``size`` MiB gets with exclusive storage."""
        empty = sorted((pv for pv in pvs if not pv["lv_list"]),
                       key=lambda pv: pv["free"], reverse=True)
        needed, total = 0, 0.0
        for pv in empty:
            if total >= size:
                break
            total += pv["free"]
            needed += 1
        if total < size:
            base.ThrowError("Not enough empty PVs (spindles) in volume group %s for a"
                            " disk of %d MiB: %d empty PV(s) with %d MiB", vg_name,
                            size, len(empty), int(sum(pv["free"] for pv in empty)))
        if spindles is not None:
            if spindles < needed:
                base.ThrowError("Requested number of spindles (%d) is not enough for a"
                                " disk of %d MiB in volume group %s (at least %d"
                                " needed)", spindles, size, vg_name, needed)
            if spindles > len(empty):
                base.ThrowError("Not enough empty PVs (spindles) in volume group %s:"
                                " %d requested, %d available", vg_name, spindles,
                                len(empty))
            needed = spindles
        return [pv["name"] for pv in empty[:needed]]

    @classmethod
    def Create(cls, unique_id, children, size, spindles, params, excl_stor,
               dyn_params=None, **kwargs):
        """Create the LV (``size`` MiB, ``params[stripes]`` stripes at most,
        one per PV); with exclusive storage on its own empty PVs, as many as
        ``spindles`` (or as needed), striped over all of them. An ``info``
        keyword argument becomes its tag at once (see :meth:`SetInfo`)."""
        vg_name, lv_name = _CheckUniqueId(unique_id)
        if not isinstance(size, int) or isinstance(size, bool) or size <= 0:
            base.ThrowError("Invalid size %r for logical volume %s/%s: must be a"
                            " positive integer (MiB)", size, vg_name, lv_name)
        desired = (params or {}).get(constants.LV_STRIPES, 1)
        if not isinstance(desired, int) or isinstance(desired, bool) or desired < 1:
            base.ThrowError("Invalid number of stripes %r for %s/%s: must be a positive"
                            " integer", desired, vg_name, lv_name)
        with _AsBlockDeviceError():
            # Only exclusive storage needs the volumes on each PV
            pvs = GetPhysicalVolumes([vg_name], filter_allocatable=True,
                                     with_lvs=bool(excl_stor))
            if not pvs:
                GetVgInfo(vg_name)  # says when the volume group does not exist
        if not pvs:
            base.ThrowError("No allocatable physical volumes in volume group %s",
                            vg_name)
        if any(":" in pv["name"] for pv in pvs):
            base.ThrowError("Physical volumes of volume group %s have ':' in their"
                            " names, which LVM takes for extent ranges", vg_name)
        if excl_stor:
            pv_list = cls._PlanExclusive(vg_name, pvs, size, spindles)
            stripes = len(pv_list)
        else:
            free = int(sum(pv["free"] for pv in pvs))
            if free < size:
                base.ThrowError("Not enough free space in volume group %s: requested %d"
                                " MiB, free %d MiB", vg_name, size, free)
            stripes = min(desired, len(pvs))
            if stripes < desired:
                logging.warning("Using %d stripes instead of %d for %s/%s: volume group"
                                " %s has only %d allocatable PVs", stripes, desired,
                                vg_name, lv_name, vg_name, len(pvs))
            pv_list = [pv["name"] for pv in
                       sorted(pvs, key=lambda pv: pv["free"], reverse=True)]
        flags = [] if ActivationEnabled() else ["-an", "-Zn"]
        tag = SanitizeTag(kwargs.get("info") or "")
        if tag:
            flags += ["--addtag", tag]
        if _LoopViewRoot():
            # Only a contiguous volume can be mapped onto a loop device
            flags += ["--alloc", "contiguous"]
        # Free space spread unevenly may not allow all the stripes: try fewer
        for count in range(stripes, 0, -1):
            result = _RunLvm(["lvcreate", "-L", f"{size}m", "-n", lv_name,
                              "-i", str(count), *flags, vg_name, *pv_list],
                             subject=f"{vg_name}/{lv_name}", check=False)
            if not result.failed:
                break
            if "already exists" in result.stderr:
                break
        if result.failed:
            base.ThrowError("Cannot create logical volume %s/%s of %d MiB (%s): %s",
                            vg_name, lv_name, size, result.fail_reason,
                            _CleanOutput(result.stderr))
        dev = cls(unique_id, children, size, params, dyn_params)
        if not dev.attached:
            base.ThrowError("Logical volume %s/%s not found after creating it",
                            vg_name, lv_name)
        return dev

    # --- state ---------------------------------------------------------------------

    def Attach(self, **kwargs: Any) -> bool:
        """Found when lvs knows the LV; reads its PVs, extents and numbers."""
        self.attached = False
        self.dev_path = None
        result = _RunLvm(["lvs", *_REPORT_OPTS, "-o",
                          "lv_attr,lv_kernel_major,lv_kernel_minor,vg_extent_size,"
                          "stripes,devices,lv_size", self._name],
                         subject=self._name, check=False)
        if result.failed:
            if not _NotFound(result):
                logging.warning("Cannot look up logical volume %s: %s", self._name,
                                _CleanOutput(result.stderr))
            return False
        try:
            info = ParseLvInfo(result.stdout)
        except errors.StorageError as err:
            logging.warning("Cannot parse lvs output for %s: %s", self._name, err)
            return False
        if info["attributes"][0] == "v":
            return False
        self._attributes = info["attributes"]
        self.major, self.minor = info["major"], info["minor"]
        self.extent_size = info["extent_size"]
        self.stripes = info["stripes"]
        self.pv_names = info["pv_names"]
        self.dev_path = f"/dev/{self.vg_name}/{self.lv_name}"
        root = _LoopViewRoot()
        if root:
            from ganeti.storage import lvm_view
            self._UseLoop(lvm_view.FindMappedVolume(root, self.vg_name, self.lv_name))
        self.attached = True
        return True

    def _UseLoop(self, device: str | None) -> None:
        """Make loop ``device`` (None: none) the volume's device."""
        if device is None:
            self.dev_path = f"/dev/{self.vg_name}/{self.lv_name}"
            self.major = self.minor = None
            return
        self.dev_path = device
        try:
            rdev = os.stat(device).st_rdev
        except OSError:
            self.major = self.minor = None
        else:
            self.major, self.minor = os.major(rdev), os.minor(rdev)

    def _AttachOrFail(self, action: str) -> None:
        if not self.Attach():
            base.ThrowError("Cannot %s logical volume %s: not found", action, self._name)

    def Assemble(self) -> None:
        """Activate the LV (only checks that it exists without activation;
        maps it onto a loop device in an LVM view with loop activation)."""
        if not self.attached:
            self._AttachOrFail("assemble")
        root = _LoopViewRoot()
        if root:
            from ganeti.storage import lvm_view
            with _AsBlockDeviceError():
                self._UseLoop(lvm_view.MapVolume(root, self.vg_name, self.lv_name))
        elif ActivationEnabled():
            _RunLvm(["lvchange", "-ay", self._name], subject=self._name,
                    error=errors.BlockDeviceError)

    def Shutdown(self) -> None:
        """Nothing, as in Ganeti; in an LVM view with loop activation detach
        the volume's loop device (refused while it is in use)."""
        root = _LoopViewRoot()
        if root:
            from ganeti.storage import lvm_view
            with _AsBlockDeviceError():
                lvm_view.UnmapVolume(root, self.vg_name, self.lv_name)
            self._UseLoop(None)

    def Remove(self) -> None:
        """lvremove the LV (a missing one is fine); its loop device, if any,
        is detached first."""
        self.Shutdown()
        if not self.Attach():
            return
        _RunLvm(["lvremove", "-f", self._name], subject=self._name,
                error=errors.BlockDeviceError)
        self.attached = False
        self.dev_path = None

    def Rename(self, new_id):
        """lvrename within the volume group."""
        new_vg, new_lv = _CheckUniqueId(new_id)
        if new_vg != self.vg_name:
            base.ThrowError("Cannot move logical volume %s to volume group %s: renaming"
                            " only works within a volume group", self._name, new_vg)
        self._AttachOrFail("rename")
        _RunLvm(["lvrename", self.vg_name, self.lv_name, new_lv], subject=self._name,
                error=errors.BlockDeviceError)
        root = _LoopViewRoot()
        if root:
            from ganeti.storage import lvm_view
            with _AsBlockDeviceError():
                lvm_view.RenameMappedVolume(root, self.vg_name, self.lv_name, new_lv)
        self.lv_name = new_lv
        self.unique_id = (new_vg, new_lv)
        self.Attach()

    def Grow(self, amount, dryrun, backingstore, excl_stor):
        """lvextend by ``amount`` MiB (rounded up to whole stripes of
        extents); with exclusive storage only on the LV's own PVs. In an
        LVM view with loop activation only contiguous, and the loop device
        grows with the volume."""
        if not backingstore:
            return
        if not isinstance(amount, int) or isinstance(amount, bool) or amount < 0:
            base.ThrowError("Invalid amount %r to grow %s: must be a non-negative"
                            " integer (MiB)", amount, self._name)
        self._AttachOrFail("grow")
        if amount == 0:
            return
        full_stripe = int((self.extent_size or 4) * self.stripes) or 1
        amount = -(-amount // full_stripe) * full_stripe
        with _AsBlockDeviceError():
            if excl_stor:
                pvs = [pv for pv in GetPhysicalVolumes([self.vg_name])
                       if pv["name"] in self.pv_names]
                pv_list = [pv["name"] for pv in pvs]
            else:
                pvs = GetPhysicalVolumes([self.vg_name], filter_allocatable=True)
                pv_list = []
        free = int(sum(pv["free"] for pv in pvs))
        if free < amount:
            where = "on its own PVs" if excl_stor else f"in volume group {self.vg_name}"
            base.ThrowError("Not enough free space to grow %s by %d MiB %s: %d MiB"
                            " free", self._name, amount, where, free)
        cmd = ["lvextend", "-L", f"+{amount}m"] + (["--test"] if dryrun else [])
        root = _LoopViewRoot()
        for policy in ("contiguous",) if root else _GROW_ALLOC_POLICIES:
            result = _RunLvm(cmd + ["--alloc", policy, self._name, *pv_list],
                             subject=self._name, check=False)
            if not result.failed:
                if not dryrun:
                    self.size += amount
                    self.Attach()
                    if root:
                        self._GrowLoop(root)
                return
        base.ThrowError("Cannot grow logical volume %s by %d MiB (%s): %s%s", self._name,
                        amount, result.fail_reason, _CleanOutput(result.stderr),
                        " (loop activation needs the extents right after the volume's"
                        " free)" if root else "")

    def _GrowLoop(self, root: str) -> None:
        """Let the loop device of the volume, if mapped, follow its size."""
        from ganeti.storage import lvm_view
        with _AsBlockDeviceError():
            if lvm_view.FindMappedVolume(root, self.vg_name, self.lv_name):
                self._UseLoop(lvm_view.MapVolume(root, self.vg_name, self.lv_name))

    def Snapshot(self, snap_name=None, snap_size=None):
        """lvcreate -s a snapshot (default name "<lv>.snap", default size the
        LV's); an older snapshot of this LV with that name is replaced."""
        self._AttachOrFail("snapshot")
        name = CheckLvName(snap_name or f"{self.lv_name}.snap")
        size = self.size if snap_size is None else snap_size
        if not isinstance(size, int) or isinstance(size, bool) or size <= 0:
            base.ThrowError("Invalid snapshot size %r for %s: must be a positive"
                            " integer (MiB)", size, self._name)
        snap = f"{self.vg_name}/{name}"
        result = _RunLvm(["lvs", "--noheadings", "-o", "origin", snap], subject=snap,
                         check=False)
        if not result.failed:
            if result.stdout.strip() != self.lv_name:
                base.ThrowError("Cannot snapshot %s as %s: a logical volume of that"
                                " name exists and is not its snapshot", self._name, snap)
            _RunLvm(["lvremove", "-f", snap], subject=snap, error=errors.BlockDeviceError)
        with _AsBlockDeviceError():
            free = int(GetVgInfo(self.vg_name)["free"])
        if free < size:
            base.ThrowError("Not enough free space in volume group %s for a snapshot of"
                            " %s: requested %d MiB, free %d MiB", self.vg_name,
                            self._name, size, free)
        root = _LoopViewRoot()
        if root:
            # No snapshots without device-mapper: in an LVM view with loop
            # activation the "snapshot" is a contiguous volume holding a copy
            from ganeti.storage import lvm_view
            _RunLvm(["lvcreate", "-an", "-Zn", "--alloc", "contiguous", "-L", f"{size}m",
                     "-n", name, self.vg_name], subject=snap,
                    error=errors.BlockDeviceError)
            with _AsBlockDeviceError():
                lvm_view.CopyVolumeData(root, self.vg_name, self.lv_name, name)
            return (self.vg_name, name)
        _RunLvm(["lvcreate", "-s", "-L", f"{size}m", "-n", name, self._name],
                subject=snap, error=errors.BlockDeviceError)
        return (self.vg_name, name)

    def SetInfo(self, text: str) -> None:
        """Tag the LV with ``text`` (made a valid LVM tag)."""
        tag = SanitizeTag(text)
        if tag:
            _RunLvm(["lvchange", "--addtag", tag, self._name], subject=self._name,
                    error=errors.BlockDeviceError)

    def GetActualSize(self) -> int:
        """The LV's size in bytes, as LVM reports it."""
        result = _RunLvm(["lvs", "--noheadings", "--nosuffix", "--units=b", "-o",
                          "lv_size", self._name], subject=self._name,
                         error=errors.BlockDeviceError)
        try:
            return int(result.stdout.strip())
        except ValueError:
            base.ThrowError("Cannot parse the size of %s: %r", self._name, result.stdout)
            raise AssertionError from None  # unreachable

    def GetActualDimensions(self) -> tuple[int, int | None]:
        """(size in bytes, spindles): the spindles are the PVs the LV uses,
        which is what they mean with exclusive storage."""
        size = self.GetActualSize()
        return size, (len(self.pv_names) or None)

    def GetSyncStatus(self):
        """An LV never syncs; a missing LV, or one with a missing PV, is faulty."""
        status = super().GetSyncStatus()
        if not self.attached or _Attr(self._attributes, 8) == "p":
            status.is_degraded = True
            status.ldisk_status = base.LDS_FAULTY
        return status


# --- Storage units ---------------------------------------------------------------------

_UNIT_FIELDS = frozenset([constants.SF_NAME, constants.SF_SIZE, constants.SF_USED,
                          constants.SF_FREE, constants.SF_ALLOCATABLE, constants.SF_TYPE])


class _LvmUnit(container._Base):
    LIST_FIELDS = _UNIT_FIELDS
    STORAGE_TYPE = ""

    def __init__(self, *args: Any):
        if args:
            raise errors.StorageError(f"The {self.STORAGE_TYPE} storage type takes no"
                                      f" arguments, got {list(args)!r:.100}")

    def _Rows(self, units: list[dict[str, Any]], fields: list[str]) -> list[list[Any]]:
        rows = []
        for unit in units:
            values = {
                constants.SF_NAME: unit["name"],
                constants.SF_TYPE: self.STORAGE_TYPE,
                constants.SF_SIZE: int(round(unit["size"])),
                constants.SF_FREE: int(unit["free"]),
                constants.SF_USED: int(round(unit["size"])) - int(unit["free"]),
                constants.SF_ALLOCATABLE: unit.get("allocatable", True),
            }
            rows.append([values[field] for field in fields])
        return rows


class LvmVgStorage(_LvmUnit):
    """LVM volume groups; always allocatable; repaired by removing missing PVs."""

    STORAGE_TYPE = constants.ST_LVM_VG

    def List(self, name, fields):
        """Rows of every volume group (or of ``name``)."""
        self._CheckFields(fields)
        if name:
            vgs = [GetVgInfo(name)]
        else:
            result = _RunLvm(["vgs", *_REPORT_OPTS, "-o",
                              "vg_name,vg_size,vg_free,vg_attr,pv_count"])
            vgs = ParseVgReport(result.stdout)
        return self._Rows(vgs, fields)

    def GetSpace(self, name):
        """Free and total MiB of volume group ``name``."""
        return {"type": self.STORAGE_TYPE, "name": name, **GetVgSpace(name)}

    def Execute(self, name: str, op: str) -> list[str]:
        """``fix-consistency``: remove missing PVs from the VG (with their LVs
        if need be), then check it; returns LVM's output lines."""
        if op != constants.SO_FIX_CONSISTENCY:
            return super().Execute(name, op)
        GetVgInfo(name)
        output = []
        # Without --force vgreduce keeps the LVs using a missing PV, and the VG
        # stays partial; Ganeti then forces (those LVs are lost)
        for force in ([], ["--force"]):
            result = _RunLvm(["vgreduce", "--removemissing", *force, name],
                             subject=f"volume group {name}", check=False)
            output.append(_CleanOutput(result.stdout + result.stderr))
            if not GetVgInfo(name)["partial"]:
                break
        result = _RunLvm(["vgck", name], subject=f"volume group {name}", check=False)
        if result.failed or GetVgInfo(name)["partial"]:
            raise errors.StorageError(
                f"Volume group '{name}' is still not consistent after vgreduce"
                f" --removemissing: {'; '.join(filter(None, output))}; vgck:"
                f" {_CleanOutput(result.stderr) or 'no error'}")
        return [line for text in output for line in text.split("; ") if line]


class LvmPvStorage(_LvmUnit):
    """LVM physical volumes; ``allocatable`` can be changed (pvchange -x)."""

    STORAGE_TYPE = constants.ST_LVM_PV

    def _Find(self, name: str) -> dict[str, Any]:
        for pv in GetPhysicalVolumes():
            if pv["name"] == name:
                return pv
        raise errors.StorageError(f"Physical volume '{name}' not found on this node")

    def List(self, name, fields):
        """Rows of every physical volume (or of ``name``)."""
        self._CheckFields(fields)
        return self._Rows([self._Find(name)] if name else GetPhysicalVolumes(), fields)

    def GetSpace(self, name):
        """Free and total MiB of physical volume ``name``."""
        pv = self._Find(name)
        return {"type": self.STORAGE_TYPE, "name": name,
                "storage_free": int(pv["free"]), "storage_size": int(round(pv["size"]))}

    def Modify(self, name: str, changes: dict[str, Any]) -> None:
        """Apply ``changes`` (only ``allocatable``: a boolean)."""
        modifiable = constants.MODIFIABLE_STORAGE_FIELDS[self.STORAGE_TYPE]
        unknown = sorted(set(changes) - modifiable)
        if unknown:
            raise errors.StorageError(
                f"Field(s) {', '.join(unknown)} of {self.STORAGE_TYPE} storage units"
                f" cannot be modified (modifiable: {', '.join(sorted(modifiable))})")
        if constants.SF_ALLOCATABLE in changes:
            value = changes[constants.SF_ALLOCATABLE]
            if not isinstance(value, bool):
                raise errors.StorageError(f"Invalid value {value!r} for"
                                          f" {constants.SF_ALLOCATABLE}: expected a"
                                          " boolean")
            self._Find(name)
            _RunLvm(["pvchange", "-x", "y" if value else "n", name],
                    subject=f"physical volume {name}")


container.STORAGE_TYPES[constants.ST_LVM_VG] = LvmVgStorage
container.STORAGE_TYPES[constants.ST_LVM_PV] = LvmPvStorage
