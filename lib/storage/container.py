"""Storage units: the pools that provide space for disks (the 2.1 design).

Each storage type has a class with the generic methods of the design:
:meth:`_Base.List` (the units of this type with the requested fields) and
:meth:`_Base.GetSpace` (free and total space of one unit), plus
type-specific operations (:meth:`_Base.Modify`, :meth:`_Base.Execute`:
allocatable PVs, VG repair for LVM). File-based units are defined here;
LVM volume groups and physical volumes live in :mod:`ganeti.storage.lvm`,
imported at the end of this module, and add themselves to
:data:`STORAGE_TYPES`.
"""

from __future__ import annotations

import os
from typing import Any

from ganeti import constants, errors
from ganeti.storage import filestorage


class _Base:
    """A storage unit type."""

    #: Fields List accepts
    LIST_FIELDS: frozenset[str] = frozenset()

    def List(self, name: str | None, fields: list[str]) -> list[list[Any]]:
        """Return one row of ``fields`` per unit (only ``name`` if given)."""
        raise NotImplementedError

    def GetSpace(self, name: str) -> dict[str, Any]:
        """Return {"storage_free", "storage_size"} (MiB) of unit ``name``."""
        raise NotImplementedError

    def Modify(self, name: str, changes: dict[str, Any]) -> None:
        """Change fields of unit ``name`` (only some types allow it)."""
        raise errors.StorageError(
            f"Storage units of type '{getattr(self, 'STORAGE_TYPE', '?')}' cannot be"
            " modified")

    def Execute(self, name: str, op: str) -> list[str]:
        """Run operation ``op`` on unit ``name``; return its output lines."""
        raise errors.StorageError(
            f"Operation '{op}' is not supported on storage units of type"
            f" '{getattr(self, 'STORAGE_TYPE', '?')}'")

    def _CheckFields(self, fields: list[str]) -> None:
        unknown = [f for f in fields if f not in self.LIST_FIELDS]
        if unknown:
            raise errors.StorageError(
                f"Unknown storage field(s) {', '.join(unknown)} for"
                f" {self.__class__.__name__} (valid:"
                f" {', '.join(sorted(self.LIST_FIELDS))})")


def _DirUsage(path: str) -> int:
    """Bytes used by the files below ``path`` (allocated blocks, like du)."""
    total = 0
    for dirpath, _, filenames in os.walk(path):
        for name in filenames:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_blocks * 512
            except OSError:
                pass
    return total


class FileStorage(_Base):
    """File storage directories: each allowed directory is a unit.

    ``paths`` are the directories (node-local); by default the allowed
    directories of the disk type.
    """

    LIST_FIELDS = frozenset([constants.SF_NAME, constants.SF_SIZE,
                             constants.SF_USED, constants.SF_FREE,
                             constants.SF_ALLOCATABLE, constants.SF_TYPE])
    DEV_TYPE = constants.DT_FILE
    STORAGE_TYPE = constants.ST_FILE

    def __init__(self, paths: list[str] | None = None):
        # A string would be taken for a list of one-letter paths, "/" first,
        # and listing its usage would walk the whole file system
        if paths is not None and not (
                isinstance(paths, list)
                and all(isinstance(p, str) and os.path.isabs(p) for p in paths)):
            raise errors.StorageError(
                f"The {self.STORAGE_TYPE} storage directories must be a list of"
                f" absolute paths, got {paths!r:.100}")
        self._paths = paths

    @property
    def paths(self) -> list[str]:
        """The unit directories."""
        if self._paths is not None:
            return self._paths
        return filestorage.GetAllowedDirs(self.DEV_TYPE)

    def _Resolve(self, name: str) -> str:
        local = filestorage.LocalizePath(os.path.normpath(name)) \
            if os.path.isabs(name) else name
        if local not in self.paths:
            raise errors.StorageError(
                f"'{name}' is not a {self.STORAGE_TYPE} storage unit on this node"
                f" (units: {', '.join(self.paths)})")
        return local

    def List(self, name, fields):
        """Rows for each existing directory (or for ``name``)."""
        self._CheckFields(fields)
        paths = [self._Resolve(name)] if name else self.paths
        rows = []
        for path in paths:
            if not os.path.isdir(path):
                if name:
                    raise errors.StorageError(f"Storage directory {path} does not exist")
                continue
            space = filestorage.GetFileStorageSpace(path)
            values = {
                constants.SF_NAME: path,
                constants.SF_TYPE: self.STORAGE_TYPE,
                constants.SF_SIZE: space["size"],
                constants.SF_FREE: space["free"],
                constants.SF_USED: _DirUsage(path) // (1024 * 1024),
                constants.SF_ALLOCATABLE: True,
            }
            rows.append([values[f] for f in fields])
        return rows

    def GetSpace(self, name):
        """Free and total MiB of the file system holding ``name``."""
        path = filestorage.LocalizePath(name) if os.path.isabs(name) else name
        space = filestorage.GetFileStorageSpace(path)
        return {"type": self.STORAGE_TYPE, "name": name,
                "storage_free": space["free"], "storage_size": space["size"]}


class SharedFileStorage(FileStorage):
    """Shared file storage directories."""

    DEV_TYPE = constants.DT_SHARED_FILE
    STORAGE_TYPE = constants.ST_SHARED_FILE


#: Storage type -> unit class
STORAGE_TYPES: dict[str, type[_Base]] = {
    constants.ST_FILE: FileStorage,
    constants.ST_SHARED_FILE: SharedFileStorage,
}


def GetStorage(storage_type: str, *args: Any) -> _Base:
    """Return the unit handler of ``storage_type`` (args go to its class).

    @raise errors.StorageError: for a type without units here
    """
    cls = STORAGE_TYPES.get(storage_type)
    if cls is None:
        raise errors.StorageError(
            f"Storage type '{storage_type}' has no storage units on this node"
            f" (supported: {', '.join(sorted(STORAGE_TYPES))})")
    return cls(*args)


# LVM's unit classes subclass _Base and register themselves in STORAGE_TYPES
from ganeti.storage import lvm as _lvm  # noqa: E402,F401
