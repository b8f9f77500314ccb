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
"""

from __future__ import annotations

import logging
import os
import shutil

from ganeti import errors, utils
from ganeti.storage import lvm

#: The view's directory, relative to the node root
VIEW_DIR = "var/lib/lvm-view"
_IMAGE = "pv.img"
_LOOP_RECORD = "loop"

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


def SetupNodeLvm(root: str, size_mib: int, vg_name: str = "xenvg") -> str:
    """Give the node root ``root`` its own LVM view with volume group
    ``vg_name`` on a ``size_mib`` MiB sparse image; return the loop device.

    An existing image (a view set up before, kept by a teardown with
    ``keep_image``) is attached again and keeps its volumes.

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
    """Undo :func:`SetupNodeLvm`: detach the view's loop devices, remove its
    lvm.conf and (unless ``keep_image``) the view directory. Whatever is
    already gone is fine; a loop device now backed by another file is left
    alone.
    """
    view, image, record, conf = _Paths(root)
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
    if not keep_image:
        shutil.rmtree(view, ignore_errors=True)
