"""File-backed disks (``file`` and ``sharedfile``) and their path checks.

A file disk's ``logical_id`` is ``(driver, path)``. The path is the
cluster's name for the file; on a node of a virtual cluster it is mapped
into the node's root (:func:`LocalizePath`). Disk files may only live
strictly below an allowed directory: for ``file``, the cluster's file
storage directory (ssconf ``file_storage_dir``, default
``/srv/ganeti/file-storage``) and any directory listed in
``pathutils.FILE_STORAGE_PATHS_FILE``; for ``sharedfile``, the shared file
storage directory and that same list. A path escaping them ("..",
symlinks pointing out) raises :class:`errors.FileStoragePathError` naming
the path. Images are sparse files created with their full size.
"""

from __future__ import annotations

import errno
import os
from typing import Any

from ganeti import constants, errors, pathutils, ssconf, utils
from ganeti.storage import base

_MIB = 1024 * 1024


def LocalizePath(path: str) -> str:
    """Map a cluster path onto this node's root (virtual clusters only).

    A path already below this node's root is kept; one below another node's
    root of the same virtual cluster is moved to this node's root; any
    other absolute path gets this node's root in front.
    """
    if not pathutils.IsVirtualCluster():
        return path
    root = pathutils.GetRootDirectory()
    if path == root or utils.IsBelowDir(root, path):
        return path
    basedir = os.path.dirname(root)
    if utils.IsBelowDir(basedir, path):
        rest = os.path.relpath(path, basedir).split("/", 1)
        return pathutils.AddNodePrefix("/" + (rest[1] if len(rest) > 1 else ""))
    return pathutils.AddNodePrefix(path)


def _ReadPathsFile() -> list[str]:
    try:
        data = utils.ReadFile(pathutils.FILE_STORAGE_PATHS_FILE)
    except FileNotFoundError:
        return []
    result = []
    for line in data.splitlines():
        line = line.strip()
        if line and not line.startswith("#") and os.path.isabs(line):
            result.append(LocalizePath(os.path.normpath(line)))
    return result


def _SsconfDir(getter: str) -> str | None:
    try:
        value = getattr(ssconf.SimpleStore(), getter)()
    except (errors.ConfigurationError, OSError, errors.GenericError):
        return None
    return LocalizePath(os.path.normpath(value)) if value else None


def GetAllowedDirs(dev_type: str) -> list[str]:
    """The directories below which disks of ``dev_type`` may live."""
    if dev_type == constants.DT_SHARED_FILE:
        dirs = [_SsconfDir("GetSharedFileStorageDir"),
                pathutils.DEFAULT_SHARED_FILE_STORAGE_DIR]
    elif dev_type == constants.DT_FILE:
        dirs = [_SsconfDir("GetFileStorageDir"), pathutils.DEFAULT_FILE_STORAGE_DIR]
    else:
        raise errors.ProgrammerError(f"{dev_type} is not a file disk type")
    result: list[str] = []
    for path in dirs + _ReadPathsFile():  # type: ignore[operator]
        if path and path not in result:
            result.append(path)
    return result


def CheckFileStoragePath(path: Any, dev_type: str = constants.DT_FILE) -> str:
    """Return the local path of a file disk, if it stays in an allowed dir.

    @raise errors.FileStoragePathError: naming the path and the allowed dirs
    """
    if not isinstance(path, str) or not utils.IsNormAbsPath(path):
        raise errors.FileStoragePathError(
            f"File storage path {path!r} must be a normalised absolute path")
    local = LocalizePath(path)
    allowed = GetAllowedDirs(dev_type)
    real = os.path.realpath(local)
    for directory in allowed:
        if utils.IsBelowDir(directory, local) and \
                utils.IsBelowDir(os.path.realpath(directory), real):
            return local
    raise errors.FileStoragePathError(
        f"Path '{path}' is not below the allowed {dev_type} storage"
        f" directories ({', '.join(allowed)})")


def GetFileStorageSpace(path: str) -> dict[str, int]:
    """Return {"size", "free", "used"} in MiB of the file system at ``path``."""
    try:
        st = os.statvfs(path)
    except OSError as err:
        raise errors.StorageError(f"Cannot get free space of {path}: {err}") \
            from err
    size = st.f_blocks * st.f_frsize // _MIB
    free = st.f_bavail * st.f_frsize // _MIB
    return {"size": size, "free": free, "used": size - st.f_bfree * st.f_frsize // _MIB}


class FileStorage(base.BlockDev):
    """A disk image file; ``unique_id`` is (driver, path)."""

    DEV_TYPE = constants.DT_FILE

    def __init__(self, unique_id, children, size, params, dyn_params=None, **kwargs):
        super().__init__(unique_id, children, size, params, dyn_params, **kwargs)
        if not isinstance(unique_id, (tuple, list)) or len(unique_id) != 2:
            base.ThrowError("Invalid file disk logical_id %r: expected (driver, path)",
                            unique_id)
        self.driver, self.cluster_path = unique_id
        if self.driver not in constants.FILE_DRIVER:
            base.ThrowError("Unknown file driver '%s' for %s (valid: %s)", self.driver,
                            self.cluster_path, ", ".join(sorted(constants.FILE_DRIVER)))
        self.path = CheckFileStoragePath(self.cluster_path, self.DEV_TYPE)
        self.Attach()

    @classmethod
    def Create(cls, unique_id, children, size, spindles, params, excl_stor,
               dyn_params=None, **kwargs):
        """Create the image file as a sparse file of ``size`` MiB."""
        if excl_stor:
            base.ThrowError("Exclusive storage is not supported by file disks")
        if not isinstance(size, int) or isinstance(size, bool) or size <= 0:
            base.ThrowError("Invalid size %r for file disk %s: must be a positive"
                            " integer (MiB)", size, unique_id)
        dev = cls.__new__(cls)
        base.BlockDev.__init__(dev, unique_id, children, size, params, dyn_params)
        if not isinstance(unique_id, (tuple, list)) or len(unique_id) != 2:
            base.ThrowError("Invalid file disk logical_id %r: expected (driver, path)",
                            unique_id)
        path = CheckFileStoragePath(unique_id[1], cls.DEV_TYPE)
        try:
            os.makedirs(os.path.dirname(path), mode=0o750, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            base.ThrowError("File disk %s already exists", path)
        except OSError as err:
            base.ThrowError("Cannot create file disk %s: %s", path, err)
        try:
            os.ftruncate(fd, size * _MIB)
        except OSError as err:
            os.close(fd)
            utils.RemoveFile(path)
            base.ThrowError("Cannot size file disk %s to %d MiB: %s", path, size, err)
        os.close(fd)
        return cls(unique_id, children, size, params, dyn_params)

    def Attach(self, **kwargs: Any) -> bool:
        """Found if the image file exists."""
        self.attached = os.path.isfile(self.path)
        self.dev_path = self.path if self.attached else None
        return self.attached

    def Assemble(self) -> None:
        """A file needs no assembly, only to exist."""
        if not self.Attach():
            base.ThrowError("File disk %s not found", self.path)

    def Remove(self) -> None:
        """Delete the image file (missing is fine)."""
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
        except OSError as err:
            base.ThrowError("Cannot remove file disk %s: %s", self.path, err)
        self.attached = False
        self.dev_path = None

    def Rename(self, new_id):
        """Move the image file (within the allowed directories)."""
        if not isinstance(new_id, (tuple, list)) or len(new_id) != 2:
            base.ThrowError("Invalid new logical_id %r: expected (driver, path)", new_id)
        if new_id[0] != self.driver:
            base.ThrowError("Cannot change the driver of file disk %s from %s to %s",
                            self.path, self.driver, new_id[0])
        new_path = CheckFileStoragePath(new_id[1], self.DEV_TYPE)
        if os.path.exists(new_path):
            base.ThrowError("Cannot rename %s to %s: the target exists", self.path,
                            new_path)
        try:
            os.makedirs(os.path.dirname(new_path), mode=0o750, exist_ok=True)
            os.rename(self.path, new_path)
        except OSError as err:
            base.ThrowError("Cannot rename file disk %s to %s: %s", self.path,
                            new_path, err)
        self.unique_id = tuple(new_id)
        self.cluster_path = new_id[1]
        self.path = new_path
        self.Attach()

    def Grow(self, amount, dryrun, backingstore, excl_stor):
        """Extend the sparse image by ``amount`` MiB."""
        if not backingstore:
            return
        if not isinstance(amount, int) or isinstance(amount, bool) or amount < 0:
            base.ThrowError("Invalid amount %r to grow %s: must be a non-negative"
                            " integer (MiB)", amount, self.path)
        if not self.Attach():
            base.ThrowError("Cannot grow file disk %s: not found", self.path)
        current = self.GetActualSize()
        new_size = current + amount * _MIB
        if dryrun:
            free = GetFileStorageSpace(os.path.dirname(self.path))["free"]
            if amount > free:
                base.ThrowError("Not enough space to grow %s by %d MiB: %d MiB free",
                                self.path, amount, free)
            return
        try:
            os.truncate(self.path, new_size)
        except OSError as err:
            base.ThrowError("Cannot grow file disk %s: %s", self.path, err)
        self.size = new_size // _MIB

    def Snapshot(self, snap_name=None, snap_size=None):
        """Copy the image next to itself (sparse copy via cp)."""
        if not self.Attach():
            base.ThrowError("Cannot snapshot file disk %s: not found", self.path)
        name = snap_name or "snap"
        if "/" in name:
            base.ThrowError("Invalid snapshot name '%s'", name)
        snap_cluster = f"{self.cluster_path}.{name}"
        snap_path = CheckFileStoragePath(snap_cluster, self.DEV_TYPE)
        if os.path.exists(snap_path):
            base.ThrowError("Snapshot %s already exists", snap_path)
        result = utils.RunCmd(["cp", "--sparse=always", self.path, snap_path])
        if result.failed:
            base.ThrowError("Cannot snapshot %s to %s: %s", self.path, snap_path,
                            result.output.strip())
        return (self.driver, snap_cluster)

    def GetActualSize(self) -> int:
        """Size of the image in bytes."""
        try:
            return os.stat(self.path).st_size
        except OSError as err:
            base.ThrowError("Cannot stat file disk %s: %s", self.path, err)
            raise AssertionError from err  # unreachable

    def GetSyncStatus(self):
        """Files never sync; a missing file is faulty."""
        status = super().GetSyncStatus()
        if not self.attached:
            status.is_degraded = True
            status.ldisk_status = base.LDS_FAULTY
        return status


class SharedFileStorage(FileStorage):
    """A disk image on storage shared by the nodes (``sharedfile``)."""

    DEV_TYPE = constants.DT_SHARED_FILE


def RemoveEmptyDir(path: str) -> None:
    """Remove an instance's file storage directory if it is empty."""
    try:
        os.rmdir(path)
    except OSError as err:
        if err.errno not in (errno.ENOENT, errno.ENOTEMPTY, errno.EEXIST):
            raise errors.StorageError(f"Cannot remove directory {path}: {err}") from err
