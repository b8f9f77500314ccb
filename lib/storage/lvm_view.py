"""LVM views: one volume group per virtual node, on a loop device.

The nodes of a virtual cluster share one kernel and one ``/dev``, so
without help they would all see the same physical volumes. A view gives
node root ``R``:

- a sparse image ``R/var/lib/lvm-view/pv.img`` attached to a loop device
  (recorded in ``R/var/lib/lvm-view/loop``);
- ``R/etc/lvm/lvm.conf``, whose device filter accepts only that loop
  device, with activation off (no device-mapper here: metadata only),
  locking, backup and archive directories below the view directory, and
  udev, hints and the devices file off;
- a volume group (default ``xenvg``) on it.

:mod:`ganeti.storage.lvm` runs every lvm2 command of a virtual node with
``LVM_SYSTEM_DIR=R/etc/lvm`` when that file exists, so each node sees only
its own volume group. Setting up needs root (losetup, pvcreate).

Loop activation (off unless :func:`EnableLoopActivation` switches it on
for a view, recorded in ``R/var/lib/lvm-view/loop-activation``) makes the
logical volumes real block devices without device-mapper: assembling one
maps its extents onto a loop device over the view's image
(:func:`MapVolume`), so that data written there lands in the volume's
extents. Only a volume whose extents are contiguous on the view's PV can
be mapped, so in such a view volumes are allocated ``contiguous``. The
mappings (``vg/lv`` -> device, offset and size in bytes) are recorded in
``R/var/lib/lvm-view/lv-loops.json``, changed under a lock
(``lv-loops.lock``): the node's RPCs run in parallel.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import re
import shutil
import struct
import time
from collections.abc import Iterator
from typing import Any

from ganeti import errors, utils
from ganeti.storage import lvm

#: The view's directory, relative to the node root
VIEW_DIR = "var/lib/lvm-view"
_IMAGE = "pv.img"
_LOOP_RECORD = "loop"
_SWITCH = "loop-activation"
_MAPPINGS = "lv-loops.json"
_MAPPINGS_LOCK = "lv-loops.lock"

#: Seconds to wait for the lock of a view's mappings (held only while
#: lvm2 reports and losetup run)
_LOCK_TIMEOUT = 60.0

#: Options of the reports read in bytes
_BYTES_OPTS = ["--noheadings", "--units=b", "--nosuffix", "--separator=|"]

#: struct loop_info64 of <linux/loop.h> and its ioctls: losetup can re-read
#: a backing file's size (-c) but not change the size limit of a bound device
_LOOP_INFO64 = struct.Struct("=5Q4I64s64s32s2Q")
_LO_SIZELIMIT = 4
_LOOP_SET_STATUS64 = 0x4C04
_LOOP_GET_STATUS64 = 0x4C05

#: One range of physical extents of a segment ("PV:first-last")
_PE_RANGE_RE = re.compile(r"^(?P<pv>.+):(?P<first>\d+)-(?P<last>\d+)$")

#: MiB of LVM metadata area of the view's physical volume. LVM's default
#: (about 1 MiB) holds some 1,500 logical volumes (each takes ~330 bytes
#: of metadata text, and the area keeps the old copy while writing the
#: new); a virtual node of a large cluster holds more. The image is
#: sparse, so the room costs nothing until used; small images (below
#: 64 times the area) get a 64th of their size, tiny ones LVM's default.
METADATA_SIZE_MIB = 64

#: Programs a view needs
_PROGRAMS = ("losetup", "lvm", "pvcreate", "vgcreate", "vgs", "pvs")

_CONF_TEMPLATE = """\
# LVM view of the virtual node {root} (written by ganeti.storage.lvm_view):
# only {loop} is seen; no device-mapper, so activation is off
devices {{
    filter = [ "a|^{loop}$|", "r|.*|" ]
    global_filter = [ "a|^{loop}$|", "r|.*|" ]
    obtain_device_list_from_udev = 0
    external_device_info_source = "none"
    hints = "none"
    use_devicesfile = 0
    multipath_component_detection = 0
    md_component_detection = 0
}}
global {{
    activation = 0
    locking_dir = "{view}/lock"
    use_lvmpolld = 0
    event_activation = 0
}}
activation {{
    udev_sync = 0
    udev_rules = 0
    monitoring = 0
}}
backup {{
    backup = 0
    archive = 0
    backup_dir = "{view}/backup"
    archive_dir = "{view}/archive"
}}
"""


def _Paths(root: str) -> tuple[str, str, str, str]:
    """(view dir, image, loop record, lvm.conf) of node root ``root``."""
    view = os.path.join(root, VIEW_DIR)
    return (view, os.path.join(view, _IMAGE), os.path.join(view, _LOOP_RECORD),
            os.path.join(lvm.NodeLvmSystemDir(root), "lvm.conf"))


def _Losetup(args: list[str]) -> utils.RunResult:
    try:
        return utils.RunCmd(["losetup", *args])
    except errors.OpExecError as err:
        raise errors.StorageError(f"Cannot run losetup: {err}") from err


def LvmViewAvailable() -> bool:
    """Whether views can be set up here: root, lvm2 and losetup installed,
    and a free loop device to be had."""
    if os.geteuid() != 0:
        return False
    if not all(shutil.which(prog) for prog in _PROGRAMS):
        return False
    try:
        return not _Losetup(["-f"]).failed
    except errors.StorageError:
        return False


def _LoopsOf(image: str) -> list[str]:
    """The loop devices backed by ``image``."""
    result = _Losetup(["-j", image])
    if result.failed:
        return []
    return [line.split(":", 1)[0] for line in result.stdout.splitlines()
            if line.startswith("/dev/")]


def _BackedBy(device: str, image: str) -> bool:
    """Whether loop ``device`` is (still) backed by ``image``, even deleted."""
    name = os.path.basename(device)
    try:
        backing = utils.ReadFile(f"/sys/block/{name}/loop/backing_file").strip()
    except OSError:
        return False
    real = os.path.realpath(image)
    return backing in (image, real, f"{image} (deleted)", f"{real} (deleted)")


def _Fail(root: str, msg: str) -> errors.StorageError:
    return errors.StorageError(f"Cannot set up the LVM view of node root {root}: {msg}")


def _HasVg(sysdir: str, vg_name: str) -> bool:
    result = lvm._RunLvm(["vgs", "--noheadings", "-o", "vg_name", vg_name],
                         system_dir=sysdir, check=False)
    return not result.failed and result.stdout.strip() == vg_name


def _IsPv(sysdir: str, device: str) -> bool:
    result = lvm._RunLvm(["pvs", "--noheadings", "-o", "pv_name", device],
                         system_dir=sysdir, check=False)
    return not result.failed and result.stdout.strip() == device


def SetupNodeLvm(root: str, size_mib: int, vg_name: str = "xenvg",
                 loop_activation: bool = False) -> str:
    """Give the node root ``root`` its own LVM view with volume group
    ``vg_name`` on a ``size_mib`` MiB sparse image; return the loop device.

    An existing image (a view set up before, kept by a teardown with
    ``keep_image``) is attached again and keeps its volumes.
    ``loop_activation`` switches loop activation on (see
    :func:`EnableLoopActivation`); without it the switch stays as it is.

    @raise errors.StorageError: naming the node root and what failed (not
        root, no lvm2, no loop device, LVM errors)
    """
    if not os.path.isabs(root) or not os.path.isdir(root):
        raise _Fail(root, "the node root must be an existing absolute directory")
    lvm.CheckVgName(vg_name)
    if not isinstance(size_mib, int) or isinstance(size_mib, bool) or size_mib < 8:
        raise _Fail(root, f"invalid size {size_mib!r}: at least 8 MiB are needed")
    if os.geteuid() != 0:
        raise _Fail(root, "this needs root (losetup, pvcreate, vgcreate)")
    missing = [prog for prog in _PROGRAMS if not shutil.which(prog)]
    if missing:
        raise _Fail(root, f"missing programs: {', '.join(missing)} (install lvm2"
                    " and util-linux)")
    view, image, record, conf = _Paths(root)
    sysdir = os.path.dirname(conf)
    for path in (view, sysdir, os.path.join(view, "lock")):
        os.makedirs(path, mode=0o750, exist_ok=True)
    if loop_activation:
        EnableLoopActivation(root)
    if not os.path.exists(image):
        with open(image, "wb") as fd:
            fd.truncate(size_mib * 1024 * 1024)
    loops = _LoopsOf(image)
    if loops:
        loop = loops[0]
    else:
        result = _Losetup(["-f", "--show", image])
        if result.failed:
            raise _Fail(root, f"losetup failed ({result.fail_reason}):"
                        f" {result.stderr.strip()}")
        loop = result.stdout.strip()
    try:
        utils.WriteFile(record, data=loop + "\n")
        utils.WriteFile(conf, data=_CONF_TEMPLATE.format(root=root, loop=loop,
                                                         view=view))
        if not _HasVg(sysdir, vg_name):
            if not _IsPv(sysdir, loop):
                mda_mib = min(METADATA_SIZE_MIB, size_mib // 64)
                mda_opts = ["--metadatasize", f"{mda_mib}m"] if mda_mib >= 2 else []
                lvm._RunLvm(["pvcreate", *mda_opts, loop], subject=f"loop device {loop}",
                            system_dir=sysdir)
            lvm._RunLvm(["vgcreate", vg_name, loop], subject=f"volume group {vg_name}",
                        system_dir=sysdir)
    except (errors.StorageError, OSError) as err:
        TeardownNodeLvm(root)
        raise _Fail(root, str(err)) from err
    logging.info("LVM view of %s: volume group %s on %s", root, vg_name, loop)
    return loop


def TeardownNodeLvm(root: str, keep_image: bool = False) -> None:
    """Undo :func:`SetupNodeLvm`: detach the view's loop devices (those of
    its logical volumes first, then the PV's), remove its lvm.conf and
    (unless ``keep_image``) the view directory. Whatever is already gone is
    fine; a loop device now backed by another file is left alone.
    """
    view, image, record, conf = _Paths(root)
    try:
        if os.path.isdir(view):
            with _LockedMappings(root) as mappings:
                _DetachVolumes(root, image, [entry["device"] for entry in
                                             mappings.values()])
                mappings.clear()
    except errors.StorageError as err:
        logging.warning("LVM view of %s: %s", root, err)
        _DetachVolumes(root, image, [])
    devices = _LoopsOf(image) if os.path.exists(image) else []
    try:
        recorded = utils.ReadFile(record).strip()
    except OSError:
        recorded = ""
    if recorded and recorded not in devices and _BackedBy(recorded, image):
        devices.append(recorded)
    for device in devices:
        result = _Losetup(["-d", device])
        if result.failed and _BackedBy(device, image):
            logging.warning("Cannot detach %s (LVM view of %s): %s", device, root,
                            result.stderr.strip())
    utils.RemoveFile(conf)
    utils.RemoveFile(record)
    utils.RemoveFile(os.path.join(view, _MAPPINGS))
    if not keep_image:
        shutil.rmtree(view, ignore_errors=True)


# --- Loop activation ---------------------------------------------------------------------

def LoopActivationEnabled(root: str) -> bool:
    """Whether the LVM view of node root ``root`` maps its logical volumes
    onto loop devices (one file test: asked for every volume looked up)."""
    return os.path.exists(os.path.join(root, VIEW_DIR, _SWITCH))


def EnableLoopActivation(root: str, enabled: bool = True) -> None:
    """Switch loop activation of the LVM view of node root ``root`` on (or,
    with ``enabled`` false, off); before or after :func:`SetupNodeLvm`.

    Assembling a logical volume then maps it onto a loop device over the
    view's image (:func:`MapVolume`), one loop device per assembled
    volume, and volumes are allocated contiguous. The switch lives in the
    view directory: a teardown keeping the image keeps it.

    @raise errors.StorageError: when switching off while volumes are
        mapped (they would be left behind unseen)
    """
    if not os.path.isabs(root) or not os.path.isdir(root):
        raise errors.StorageError(f"Cannot switch loop activation of the LVM view of"
                                  f" {root}: the node root must be an existing"
                                  " absolute directory")
    view = os.path.join(root, VIEW_DIR)
    switch = os.path.join(view, _SWITCH)
    if enabled:
        os.makedirs(view, mode=0o750, exist_ok=True)
        utils.WriteFile(switch, data="Logical volumes of this view are mapped onto"
                        " loop devices (ganeti.storage.lvm_view)\n")
        return
    if not os.path.isdir(view):
        return
    image = _Paths(root)[1]
    with _LockedMappings(root) as mappings:
        for name, entry in list(mappings.items()):
            if not _Bound(entry["device"], image, entry["offset"]):
                del mappings[name]
        if mappings:
            raise errors.StorageError(
                f"Cannot switch off loop activation of the LVM view of {root}:"
                f" logical volumes {', '.join(sorted(mappings))} are mapped"
                " (shut them down first)")
        utils.RemoveFile(switch)


def ParseLinearExtents(name: str, output: str) -> tuple[str, int, int]:
    """(PV, first extent, number of extents) of logical volume ``name`` from
    ``lvs --segments -o seg_start_pe,segtype,stripes,seg_pe_ranges`` (with
    ``--separator=|``): only one run of contiguous extents on one PV can be
    mapped onto a loop device.

    @raise errors.StorageError: naming the volume and its segments otherwise
    """
    segments: list[tuple[int, str, str, str]] = []
    for line in output.splitlines():
        if not line.strip():
            continue
        fields = [field.strip() for field in line.split("|")]
        if len(fields) != 4 or not fields[0].isdigit():
            raise errors.StorageError(f"Cannot parse the lvs output line"
                                      f" {line.strip()!r} for {name}")
        segments.append((int(fields[0]), fields[1], fields[2], fields[3]))
    segments.sort()
    described = ", ".join(f"{segtype} {ranges}" for _, segtype, _, ranges in segments)

    def _Refuse(why: str) -> errors.StorageError:
        return errors.StorageError(
            f"Cannot map logical volume {name} onto a loop device: {why}"
            f" (segments: {described or 'none'}); loop activation needs one run of"
            " contiguous extents on one physical volume (--alloc contiguous)")

    if not segments:
        raise _Refuse("it has no segments")
    pv, first, end = "", 0, 0
    for index, (_, segtype, stripes, ranges) in enumerate(segments):
        match = _PE_RANGE_RE.match(ranges)
        if segtype not in ("linear", "striped") or stripes != "1" or not match:
            raise _Refuse(f"a {segtype} segment with {stripes} stripe(s) is not linear")
        seg_first, seg_last = int(match.group("first")), int(match.group("last"))
        if index == 0:
            pv, first = match.group("pv"), seg_first
        elif match.group("pv") != pv or seg_first != end:
            raise _Refuse("its extents are not contiguous")
        end = seg_last + 1
    return pv, first, end - first


def _LoopAttr(device: str, attr: str) -> int | None:
    """A number of loop ``device`` from sysfs (offset, sizelimit), if bound."""
    try:
        return int(utils.ReadFile(f"/sys/block/{os.path.basename(device)}/loop/{attr}"))
    except (OSError, ValueError):
        return None


def _Bound(device: str, image: str, offset: int) -> bool:
    """Whether loop ``device`` still maps ``image`` from ``offset`` on."""
    return _BackedBy(device, image) and _LoopAttr(device, "offset") == offset


def _DeviceSize(device: str) -> int | None:
    """The size in bytes of block ``device`` (as blockdev --getsize64)."""
    try:
        sectors = int(utils.ReadFile(f"/sys/block/{os.path.basename(device)}/size"))
    except (OSError, ValueError):
        return None
    return sectors * 512


def _Detach(device: str, image: str) -> bool:
    """Detach loop ``device`` (if backed by ``image``); whether it is gone.

    The kernel only marks a device still open somewhere to detach itself
    when closed last (autoclear); a short wait covers brief openers (blkid).
    """
    if not _BackedBy(device, image):
        return True
    result = _Losetup(["-d", device])
    for _ in range(20):
        if not _BackedBy(device, image):
            return True
        time.sleep(0.05)
    if result.failed:
        logging.warning("Cannot detach %s: %s", device, result.stderr.strip())
    return False


def _DetachVolumes(root: str, image: str, devices: list[str]) -> None:
    """Detach the loop devices of the view's volumes: ``devices`` and any
    other over ``image`` from an offset (the PV's maps it from 0)."""
    found = _LoopsOf(image) if os.path.exists(image) else []
    for device in dict.fromkeys([*devices, *found]):
        offset = _LoopAttr(device, "offset")
        if offset and _BackedBy(device, image) and not _Detach(device, image):
            logging.warning("Loop device %s of a logical volume of the LVM view of %s"
                            " is in use: it detaches itself when closed", device, root)


def _ReadMappings(path: str) -> dict[str, dict[str, Any]]:
    """The recorded mappings ({"vg/lv": {"device", "offset", "size"}});
    an unreadable record counts as empty (its devices are then found
    again by :func:`TeardownNodeLvm` only)."""
    try:
        data = json.loads(utils.ReadFile(path))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as err:
        logging.warning("Ignoring the unreadable loop mappings %s: %s", path, err)
        return {}
    if not isinstance(data, dict):
        logging.warning("Ignoring the loop mappings %s: not a JSON object", path)
        return {}
    return {name: entry for name, entry in data.items()
            if isinstance(entry, dict) and isinstance(entry.get("device"), str)
            and isinstance(entry.get("offset"), int)
            and isinstance(entry.get("size"), int)}


@contextlib.contextmanager
def _LockedMappings(root: str) -> Iterator[dict[str, dict[str, Any]]]:
    """The view's mappings under its lock, written back (if changed) on
    leaving, also after an error: the dict must follow each device change
    at once."""
    view = os.path.join(root, VIEW_DIR)
    path = os.path.join(view, _MAPPINGS)
    try:
        lock = utils.FileLock.Open(os.path.join(view, _MAPPINGS_LOCK))
    except OSError as err:
        raise errors.StorageError(f"Cannot lock the loop mappings of the LVM view of"
                                  f" {root}: {err}") from err
    with lock:
        try:
            lock.Exclusive(timeout=_LOCK_TIMEOUT)
        except errors.LockError as err:
            raise errors.StorageError(str(err)) from err
        mappings = _ReadMappings(path)
        before = json.dumps(mappings, sort_keys=True)
        try:
            yield mappings
        finally:
            text = json.dumps(mappings, sort_keys=True)
            if text != before:
                utils.WriteFile(path, data=text + "\n")


def _ReportValue(output: str, what: str) -> list[int]:
    """The "|"-separated numbers of a one-line report in bytes."""
    try:
        return [int(field) for field in output.strip().split("|")]
    except ValueError:
        raise errors.StorageError(f"Cannot parse {what}: {output.strip()!r}") from None


def _VolumeExtent(root: str, image: str, vg_name: str, lv_name: str) -> tuple[int, int]:
    """(offset, size) in bytes of logical volume ``vg_name/lv_name`` in the
    view's image."""
    sysdir = lvm.NodeLvmSystemDir(root)
    name = f"{vg_name}/{lv_name}"
    result = lvm._RunLvm(["lvs", *_BYTES_OPTS, "--segments", "-o",
                          "seg_start_pe,segtype,stripes,seg_pe_ranges", name],
                         subject=name, system_dir=sysdir)
    pv, first, count = ParseLinearExtents(name, result.stdout)
    if not _Bound(pv, image, 0):
        raise errors.StorageError(f"Cannot map logical volume {name} onto a loop"
                                  f" device: its physical volume {pv} is not the LVM"
                                  f" view's image {image}")
    result = lvm._RunLvm(["pvs", *_BYTES_OPTS, "-o", "pe_start,vg_extent_size", pv],
                         subject=f"physical volume {pv}", system_dir=sysdir)
    values = _ReportValue(result.stdout, f"the pvs output for {pv}")
    if len(values) != 2 or values[1] <= 0:
        raise errors.StorageError(f"Cannot parse the pvs output for {pv}:"
                                  f" {result.stdout.strip()!r}")
    pe_start, extent_size = values
    return pe_start + first * extent_size, count * extent_size


def _SetSizeLimit(device: str, size: int) -> None:
    """Change the size limit of bound loop ``device`` in place (the device
    stays the same, even while open)."""
    fd = os.open(device, os.O_RDONLY | os.O_CLOEXEC)
    try:
        info = bytearray(_LOOP_INFO64.size)
        fcntl.ioctl(fd, _LOOP_GET_STATUS64, info, True)
        fields = list(_LOOP_INFO64.unpack(info))
        fields[_LO_SIZELIMIT] = size
        for attempt in range(10):
            try:
                fcntl.ioctl(fd, _LOOP_SET_STATUS64, _LOOP_INFO64.pack(*fields))
                break
            except OSError as err:
                # Older kernels refuse while pages of the device are cached
                if err.errno != errno.EAGAIN or attempt == 9:
                    raise
                time.sleep(0.1)
    finally:
        os.close(fd)


def _Key(vg_name: str, lv_name: str) -> str:
    lvm.CheckVgName(vg_name)
    lvm.CheckLvName(lv_name)
    return f"{vg_name}/{lv_name}"


def FindMappedVolume(root: str, vg_name: str, lv_name: str) -> str | None:
    """The loop device logical volume ``vg_name/lv_name`` of the LVM view
    of node root ``root`` is mapped onto, if any (recorded, and the device
    still maps the view's image at the recorded offset)."""
    name = _Key(vg_name, lv_name)
    view, image, _, _ = _Paths(root)
    # No lock: the record is replaced as a whole
    entry = _ReadMappings(os.path.join(view, _MAPPINGS)).get(name)
    if entry is None or not _Bound(entry["device"], image, entry["offset"]):
        return None
    return entry["device"]


def MapVolume(root: str, vg_name: str, lv_name: str) -> str:
    """Map logical volume ``vg_name/lv_name`` of the LVM view of node root
    ``root`` onto a loop device over the view's image; return the device.

    A volume already mapped keeps its device, its size limit following the
    volume's (after growing it); one whose extents moved is mapped anew.

    @raise errors.StorageError: naming the volume, if its extents are not
        one contiguous run on the view's PV, or losetup fails
    """
    name = _Key(vg_name, lv_name)
    _, image, _, _ = _Paths(root)
    with _LockedMappings(root) as mappings:
        offset, size = _VolumeExtent(root, image, vg_name, lv_name)
        entry = mappings.get(name)
        if entry is not None and _Bound(entry["device"], image, entry["offset"]):
            device = entry["device"]
            if entry["offset"] == offset:
                if _LoopAttr(device, "sizelimit") != size:
                    try:
                        _SetSizeLimit(device, size)
                    except OSError as err:
                        raise errors.StorageError(
                            f"Cannot resize loop device {device} of logical volume"
                            f" {name} to {size} bytes: {err}") from err
                    entry["size"] = size
                return device
            if not _Detach(device, image):
                raise errors.StorageError(
                    f"Logical volume {name} moved, and its loop device {device}"
                    " (at its old place) is in use")
        mappings.pop(name, None)
        result = _Losetup(["--find", "--show", "--offset", str(offset),
                           "--sizelimit", str(size), image])
        if result.failed:
            raise errors.StorageError(f"Cannot map logical volume {name} onto a loop"
                                      f" device: losetup failed ({result.fail_reason}):"
                                      f" {result.stderr.strip()}")
        device = result.stdout.strip()
        actual = _DeviceSize(device)
        if actual != size:
            _Detach(device, image)
            raise errors.StorageError(f"Loop device {device} of logical volume {name}"
                                      f" has {actual} bytes instead of {size}")
        mappings[name] = {"device": device, "offset": offset, "size": size}
    logging.info("Logical volume %s mapped onto %s (offset %d, %d bytes)", name,
                 device, offset, size)
    return device


def UnmapVolume(root: str, vg_name: str, lv_name: str) -> None:
    """Detach the loop device of logical volume ``vg_name/lv_name`` of the
    LVM view of node root ``root``, if mapped.

    @raise errors.StorageError: if the device is in use (the kernel then
        detaches it when closed last; it stays recorded until then)
    """
    name = _Key(vg_name, lv_name)
    _, image, _, _ = _Paths(root)
    with _LockedMappings(root) as mappings:
        entry = mappings.get(name)
        if entry is None:
            return
        device = entry["device"]
        if _Bound(device, image, entry["offset"]) and not _Detach(device, image):
            raise errors.StorageError(f"Cannot detach loop device {device} of logical"
                                      f" volume {name}: it is in use")
        del mappings[name]
    logging.info("Logical volume %s unmapped from %s", name, device)


def RenameMappedVolume(root: str, vg_name: str, old_name: str, new_name: str) -> None:
    """Record the mapping of logical volume ``vg_name/old_name`` under its
    new name (renaming moves no extent, so the device stays valid)."""
    old, new = _Key(vg_name, old_name), _Key(vg_name, new_name)
    _, image, _, _ = _Paths(root)
    with _LockedMappings(root) as mappings:
        stale = mappings.pop(new, None)
        if stale is not None and _Bound(stale["device"], image, stale["offset"]):
            # Left by a volume of that name removed behind our back
            _Detach(stale["device"], image)
        if old in mappings:
            mappings[new] = mappings.pop(old)


def CopyVolumeData(root: str, vg_name: str, src_lv: str, dst_lv: str) -> None:
    """Copy the data of logical volume ``src_lv`` into ``dst_lv`` (at most
    the smaller size) within the view's image.

    Without device-mapper a snapshot's extents hold no copy-on-write
    store that would show the origin's data: a snapshot made in a view
    with loop activation gets a copy of its origin's data instead, so that
    reading it gives what the origin held when it was taken.
    """
    src, dst = _Key(vg_name, src_lv), _Key(vg_name, dst_lv)
    _, image, _, _ = _Paths(root)
    with _LockedMappings(root):
        src_off, src_size = _VolumeExtent(root, image, vg_name, src_lv)
        dst_off, dst_size = _VolumeExtent(root, image, vg_name, dst_lv)
        left = min(src_size, dst_size)
        try:
            fd = os.open(image, os.O_RDWR | os.O_CLOEXEC)
        except OSError as err:
            raise errors.StorageError(f"Cannot open {image} to copy {src} to {dst}:"
                                      f" {err}") from err
        try:
            # Data written through a mapped loop device of the origin is in
            # the page cache of that device, not necessarily of the image
            for mapped in (FindMappedVolume(root, vg_name, src_lv),):
                if mapped:
                    _SyncDevice(mapped)
            pos = 0
            while pos < left:
                chunk = os.pread(fd, min(4 * 1024 * 1024, left - pos), src_off + pos)
                if not chunk:
                    break
                os.pwrite(fd, chunk, dst_off + pos)
                pos += len(chunk)
            os.fsync(fd)
        except OSError as err:
            raise errors.StorageError(f"Cannot copy {src} to {dst} in {image}:"
                                      f" {err}") from err
        finally:
            os.close(fd)
    logging.info("Copied %d bytes of %s into %s", left, src, dst)


def _SyncDevice(device: str) -> None:
    """Flush what was written through loop ``device`` to its backing file."""
    try:
        fd = os.open(device, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
