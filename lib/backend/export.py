"""Instance exports on the node (``export_info``, ``export_list``,
``export_remove``, ``finalize_export``).

Exports live in the export directory (``pathutils.EXPORT_DIR``, by
default ``/srv/ganeti/export``), one directory per instance named after
it. While an export is written its dumps go to ``<instance>.new`` (the
import/export daemon writes them there, see :mod:`ganeti.backend.impexp`);
``finalize_export`` writes ``config.ini`` (:mod:`ganeti.export_config`)
next to them and puts the directory in the place of the older export of
the instance in one step (``renameat2`` with ``RENAME_EXCHANGE``; where the
file system cannot exchange, the old one is moved aside first). Names
ending in ``.new`` are never listed: they are exports in the making or
left by a failed one.
"""

from __future__ import annotations

import ctypes
import errno
import logging
import os
import shutil
import tempfile
from typing import Any

from ganeti import export_config, pathutils, utils
from ganeti.backend import Fail
from ganeti.storage import filestorage

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def _CheckName(name: Any) -> str:
    """An export's name: one path component, not hidden."""
    if not isinstance(name, str) or not name or "/" in name or name.startswith(".") \
            or "\0" in name:
        Fail("Invalid export name %r", name)
    return name


def _ExportDir() -> str:
    return pathutils.EXPORT_DIR


def _LocalExportPath(path: Any) -> str:
    """The local directory of an export given as the cluster sees it (or as
    a plain name, relative to the export directory)."""
    if not isinstance(path, str) or not path:
        Fail("Invalid export path %r", path)
    if not os.path.isabs(path):
        return os.path.join(_ExportDir(), _CheckName(path))
    if not utils.IsNormAbsPath(path):
        Fail("Invalid export path %r: expected a normalised absolute path", path)
    local = filestorage.LocalizePath(path)
    if not utils.IsBelowDir(os.path.realpath(_ExportDir()), os.path.realpath(local)):
        Fail("Export path %s is not below the export directory %s", path,
             pathutils.EXPORT_DIR)
    return local


def ExportInfo(path: str) -> str:
    """The text of an export's ``config.ini``, checked (a newer export
    version, a missing section or a malformed value fail the call)."""
    local = _LocalExportPath(path)
    conf = os.path.join(local, export_config.CONF_FILE)
    try:
        text = utils.ReadFile(conf)
    except FileNotFoundError:
        Fail("No export found in %s (no %s)", path, export_config.CONF_FILE, log=False)
    except (OSError, UnicodeDecodeError) as err:
        Fail("Cannot read the export configuration %s: %s", conf, err)
    try:
        export_config.Parse(text)
    except export_config.ExportError as err:
        Fail("Invalid export in %s: %s", path, err, log=False)
    return text


def ListExports() -> list[str]:
    """The names of the complete exports on this node, sorted."""
    directory = _ExportDir()
    if not os.path.isdir(directory):
        if os.path.exists(directory):
            Fail("The export directory %s is not a directory", directory)
        return []
    try:
        names = utils.ListVisibleFiles(directory)
    except OSError as err:
        Fail("Cannot list the export directory %s: %s", directory, err)
    return sorted(name for name in names
                  if not name.endswith(export_config.NEW_SUFFIX)
                  and os.path.isdir(os.path.join(directory, name)))


def RemoveExport(name: str) -> None:
    """Remove export ``name`` (also ``<instance>.new``, a partial one)."""
    target = os.path.join(_ExportDir(), _CheckName(name))
    if not os.path.lexists(target):
        Fail("Export %s not found", name, log=False)
    try:
        if os.path.isdir(target) and not os.path.islink(target):
            shutil.rmtree(target)
        else:
            os.unlink(target)
    except OSError as err:
        Fail("Cannot remove export %s: %s", name, err)


def _Exchange(first: str, second: str) -> bool:
    """Swap two paths in one step; False if the file system cannot."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                          ctypes.c_uint]
    if renameat2(_AT_FDCWD, os.fsencode(first), _AT_FDCWD, os.fsencode(second),
                 _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), second)


def ReplaceDir(new: str, final: str) -> None:
    """Put directory ``new`` in the place of ``final`` (which may exist),
    removing the old one."""
    if not os.path.lexists(final):
        os.rename(new, final)
        return
    if _Exchange(new, final):
        shutil.rmtree(new, ignore_errors=True)
        return
    aside = tempfile.mkdtemp(prefix=os.path.basename(final) + ".old-",
                             dir=os.path.dirname(final))
    old = os.path.join(aside, "old")
    os.rename(final, old)
    os.rename(new, final)
    shutil.rmtree(aside, ignore_errors=True)


def FinalizeExport(instance: Any, snap_disks: Any) -> None:
    """Write ``config.ini`` into ``<export dir>/<instance>.new``, whose
    dumps are there, and make it the instance's export.

    ``instance``: the instance dict (filled parameters, ``disk_template``
    set); ``snap_disks``: per disk index the disk dict whose dump was
    written (its dump name from :func:`ganeti.export_config.DumpName`), or
    False/None for a disk that was not exported.
    """
    if not isinstance(instance, dict) or not isinstance(instance.get("name"), str):
        Fail("Invalid instance %r: expected an instance object", instance)
    name = _CheckName(instance["name"])
    if not isinstance(snap_disks, (list, tuple)) or \
            not all(disk in (None, False) or isinstance(disk, dict) for disk in snap_disks):
        Fail("Invalid snapshot disks %r: expected a list of disks or False", snap_disks)
    new = os.path.join(_ExportDir(), name + export_config.NEW_SUFFIX)
    final = os.path.join(_ExportDir(), name)
    try:
        for disk in snap_disks:
            if disk:
                dump = os.path.join(new, export_config.DumpName(disk))
                if not os.path.isfile(dump):
                    Fail("The dump %s of disk %s is missing", dump,
                         disk.get("iv_name") or disk.get("uuid"))
        text = export_config.Build(instance, list(snap_disks),
                                   str(instance.get("primary_node")))
    except export_config.ExportError as err:
        Fail("Cannot finalize the export of %s: %s", name, err)
    try:
        os.makedirs(new, mode=0o750, exist_ok=True)
        utils.WriteFile(os.path.join(new, export_config.CONF_FILE), data=text,
                        mode=0o640)
        ReplaceDir(new, final)
    except OSError as err:
        Fail("Cannot finalize the export of %s in %s: %s", name, _ExportDir(), err)
    logging.info("Export of instance %s finalized in %s", name, final)
