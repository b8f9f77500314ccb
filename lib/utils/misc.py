"""Odds and ends: UUIDs, mounted filesystems, executables."""

from __future__ import annotations

import os
import stat
import uuid

__all__ = [
    "GetMounts",
    "IsExecutable",
    "NewUUID",
]


def NewUUID() -> str:
    """Return a new random (version 4) UUID as a lower-case string."""
    return str(uuid.uuid4())


def _UnescapeMountField(field: str) -> str:
    # /proc/mounts writes space, tab, newline and backslash as octal escapes
    for escape, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"),
                         ("\\134", "\\")):
        field = field.replace(escape, char)
    return field


def GetMounts(filename: str = "/proc/mounts") -> list[tuple[str, str, str, str]]:
    """Return the mounted filesystems as (device, mountpoint, fstype, options).

    @raise OSError: if ``filename`` cannot be read
    """
    result = []
    with open(filename, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            fields = line.split()
            if len(fields) < 4:
                continue
            device, mountpoint, fstype, options = (
                _UnescapeMountField(field) for field in fields[:4])
            result.append((device, mountpoint, fstype, options))
    return result


def IsExecutable(path: str) -> bool:
    """Whether ``path`` is a regular file we may execute."""
    try:
        st = os.stat(path)
    except OSError:
        return False
    return stat.S_ISREG(st.st_mode) and os.access(path, os.X_OK)
