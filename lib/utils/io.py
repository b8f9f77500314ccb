"""Reading and writing files safely; path checks.

Every file holding state is written with :func:`WriteFile`: the data goes to
a temporary file in the same directory, is fsynced, gets its mode and owner,
and is renamed over the old file; the directory is fsynced last. A reader
therefore sees the old or the new file, never a partial one, and a crash
leaves at worst a stray temporary file (named ``.<name>.*.new``).
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from typing import IO, Any

from ganeti import errors

__all__ = [
    "CreateBackup",
    "EnsureDirs",
    "IsBelowDir",
    "IsNormAbsPath",
    "KP_ALWAYS",
    "KP_IF_EXISTS",
    "KP_NEVER",
    "ListVisibleFiles",
    "MakeDirWithPerm",
    "PathJoin",
    "ReadBinaryFile",
    "ReadFile",
    "ReadOneLineFile",
    "RemoveDir",
    "RemoveFile",
    "RenameFile",
    "TailFile",
    "WriteFile",
]

#: keep_perms values of WriteFile: never copy the old file's mode and owner,
#: always (the file must exist), or when the file exists
KP_NEVER = 0
KP_ALWAYS = 1
KP_IF_EXISTS = 2
_KP_ALL = frozenset([KP_NEVER, KP_ALWAYS, KP_IF_EXISTS])

# How much TailFile reads per step from the end of a file
_TAIL_CHUNK = 4096


def _FsyncDir(dir_name: str) -> None:
    """Make a rename in ``dir_name`` durable."""
    fd = os.open(dir_name, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    except OSError as err:
        # Some filesystems cannot sync directories; the rename still happened
        if err.errno not in (errno.EINVAL, errno.EBADF, errno.ENOTSUP):
            raise
    finally:
        os.close(fd)


def WriteFile(file_name: str, data: str | bytes | None = None,
              fn: Callable[[IO[bytes]], Any] | None = None,
              mode: int | None = None, uid: int = -1, gid: int = -1,
              atime: float | None = None, mtime: float | None = None,
              dry_run: bool = False, backup: bool = False,
              keep_perms: int = KP_NEVER) -> None:
    """Replace ``file_name`` atomically with new contents.

    Exactly one of ``data`` (str, written as UTF-8, or bytes) and ``fn`` (a
    function given the binary temporary file to write to) must be given.
    ``mode``, ``uid`` and ``gid`` are applied before the rename; without a
    mode the file is private (0600). ``keep_perms`` copies mode and owner
    from the existing file instead. ``atime`` and ``mtime`` go together.
    With ``backup`` an existing file is first copied by :func:`CreateBackup`.
    With ``dry_run`` the arguments are checked and nothing is written.

    On any error the temporary file is removed and the old file is left as
    it was.
    """
    if not os.path.isabs(file_name):
        raise errors.ProgrammerError(f"Path passed to WriteFile is not"
                                     f" absolute: '{file_name}'")
    if (data is None) == (fn is None):
        raise errors.ProgrammerError("WriteFile needs exactly one of data"
                                     " and fn")
    if (atime is None) != (mtime is None):
        raise errors.ProgrammerError("WriteFile needs both atime and mtime,"
                                     " or neither")
    if keep_perms not in _KP_ALL:
        raise errors.ProgrammerError(f"Invalid keep_perms {keep_perms!r}")
    if keep_perms != KP_NEVER and (mode is not None or uid != -1 or gid != -1):
        raise errors.ProgrammerError("WriteFile cannot both keep and set the"
                                     " permissions")
    if isinstance(data, str):
        data = data.encode("utf-8")
    elif data is not None and not isinstance(data, bytes):
        raise errors.ProgrammerError(f"WriteFile data must be str or bytes, not"
                                     f" {type(data).__name__}")

    if keep_perms != KP_NEVER:
        try:
            st = os.stat(file_name)
        except FileNotFoundError:
            if keep_perms == KP_ALWAYS:
                raise
        else:
            mode = stat.S_IMODE(st.st_mode)
            uid, gid = st.st_uid, st.st_gid

    if dry_run:
        return

    if backup and os.path.isfile(file_name):
        CreateBackup(file_name)

    dir_name, base_name = os.path.split(file_name)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{base_name}.", suffix=".new",
                                    dir=dir_name)
    done = False
    try:
        with os.fdopen(fd, "wb") as fh:
            if uid != -1 or gid != -1:
                os.fchown(fh.fileno(), uid, gid)
            if mode is not None:
                os.fchmod(fh.fileno(), mode)
            if data is not None:
                fh.write(data)
            else:
                assert fn is not None
                fn(fh)
            fh.flush()
            os.fsync(fh.fileno())
        if atime is not None and mtime is not None:
            os.utime(tmp_name, (atime, mtime))
        os.rename(tmp_name, file_name)
        done = True
    finally:
        if not done:
            RemoveFile(tmp_name)
    _FsyncDir(dir_name)


def ReadFile(file_name: str, size: int = -1) -> str:
    """Return the contents of a text (UTF-8) file; at most ``size`` chars."""
    with open(file_name, encoding="utf-8") as fh:
        return fh.read(size)


def ReadBinaryFile(file_name: str, size: int = -1) -> bytes:
    """Return the contents of a file as bytes; at most ``size`` bytes."""
    with open(file_name, "rb") as fh:
        return fh.read(size)


def ReadOneLineFile(file_name: str, strict: bool = False) -> str:
    """Return the first non-empty line of a file, without its newline.

    @raise errors.GenericError: if the file holds no such line, or (with
        ``strict``) more than one non-empty line
    """
    lines = [line for line in ReadFile(file_name).splitlines() if line]
    if not lines:
        raise errors.GenericError(f"No data in one-liner file {file_name}")
    if strict and len(lines) > 1:
        raise errors.GenericError(f"Too many lines in one-liner file"
                                  f" {file_name}")
    return lines[0]


def RemoveFile(path: str) -> None:
    """Remove a file; a missing file is not an error."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def RemoveDir(path: str) -> None:
    """Remove an empty directory; a missing one is not an error.

    @raise OSError: if it is not empty or cannot be removed
    """
    try:
        os.rmdir(path)
    except FileNotFoundError:
        pass


def RenameFile(old: str, new: str, mkdir: bool = False,
               mkdir_mode: int = 0o750, dir_uid: int = -1,
               dir_gid: int = -1) -> None:
    """Rename ``old`` to ``new``; with ``mkdir``, create new's directory.

    The directory, when created, gets ``mkdir_mode`` and the given owner.
    """
    try:
        os.rename(old, new)
        return
    except FileNotFoundError:
        new_dir = os.path.dirname(new)
        if not mkdir or not new_dir or os.path.isdir(new_dir):
            raise
    os.makedirs(new_dir, mkdir_mode, exist_ok=True)
    os.chmod(new_dir, mkdir_mode)
    if dir_uid != -1 or dir_gid != -1:
        os.chown(new_dir, dir_uid, dir_gid)
    os.rename(old, new)


def MakeDirWithPerm(path: str, mode: int, uid: int = -1,
                    gid: int = -1) -> None:
    """Make sure ``path`` is a directory with this mode and owner.

    An existing directory gets its mode and owner corrected.

    @raise errors.GenericError: if the directory cannot be made so
    """
    try:
        os.mkdir(path, mode)
    except FileExistsError:
        pass
    except OSError as err:
        raise errors.GenericError(f"Cannot create needed directory {path}:"
                                  f" {err}") from err
    try:
        st = os.lstat(path)
        if not stat.S_ISDIR(st.st_mode):
            raise errors.GenericError(f"{path} is not a directory")
        if stat.S_IMODE(st.st_mode) != mode:
            os.chmod(path, mode)
        if (uid != -1 and st.st_uid != uid) or (gid != -1 and st.st_gid != gid):
            os.chown(path, uid, gid)
    except OSError as err:
        raise errors.GenericError(f"Cannot set up directory {path}: {err}") \
            from err


def EnsureDirs(dirs: Iterable[Sequence[Any]]) -> None:
    """Create directories given as (path, mode) or (path, mode, uid, gid).

    @raise errors.GenericError: naming the first directory that failed
    """
    for entry in dirs:
        if len(entry) == 2:
            path, mode = entry
            uid = gid = -1
        elif len(entry) == 4:
            path, mode, uid, gid = entry
        else:
            raise errors.ProgrammerError(f"Invalid directory entry {entry!r}")
        MakeDirWithPerm(path, mode, uid, gid)


def IsNormAbsPath(path: Any) -> bool:
    """Whether ``path`` is absolute and already normalised (no "..", "//")."""
    return (isinstance(path, str) and os.path.isabs(path)
            and os.path.normpath(path) == path and not path.startswith("//"))


def IsBelowDir(root: str, other_path: str) -> bool:
    """Whether ``other_path`` lies strictly below ``root``.

    A pure path computation: ".." components are resolved first, so
    "/a/b/../../etc" is not below "/a". Symlinks are not followed.

    @raise ValueError: if either path is not absolute
    """
    if not (os.path.isabs(root) and os.path.isabs(other_path)):
        raise ValueError(f"Paths '{root}' and '{other_path}' must be absolute")
    norm_other = os.path.normpath(other_path)
    norm_root = os.path.normpath(root)
    if norm_other in ("/", "//"):
        return False
    if norm_root in ("/", "//"):
        return True
    return norm_other.startswith(norm_root + "/")


def PathJoin(*args: str) -> str:
    """Join path components, refusing results that leave the first one.

    The first component must be a normalised absolute path; the result must
    be normalised and equal to or below it.

    @raise ValueError: otherwise
    """
    if not args:
        raise ValueError("PathJoin needs at least one component")
    root = args[0]
    if not IsNormAbsPath(root):
        raise ValueError(f"First component '{root}' must be a normalised"
                         " absolute path")
    for part in args[1:]:
        if not isinstance(part, str):
            raise ValueError(f"Path component {part!r} is not a string")
    result = os.path.join(*args)
    if not IsNormAbsPath(result):
        raise ValueError(f"Joined path '{result}' is not normalised")
    if result != root and not IsBelowDir(root, result):
        raise ValueError(f"Joined path '{result}' is not below '{root}'")
    return result


def ListVisibleFiles(path: str) -> list[str]:
    """Return the sorted names in directory ``path`` not starting with a dot.

    @raise errors.ProgrammerError: if ``path`` is not normalised absolute
    """
    if not IsNormAbsPath(path):
        raise errors.ProgrammerError(f"Path passed to ListVisibleFiles is not"
                                     f" normalised absolute: '{path}'")
    return sorted(name for name in os.listdir(path) if not name.startswith("."))


def CreateBackup(file_name: str) -> str:
    """Copy a file to ``<file_name>.backup-<timestamp>.<random>``; return it.

    The copy sits in the same directory and keeps the file's mode.

    @raise errors.ProgrammerError: if ``file_name`` is not a regular file
    """
    if not os.path.isfile(file_name):
        raise errors.ProgrammerError(f"Can't make a backup of a non-file"
                                     f" '{file_name}'")
    dir_name, base_name = os.path.split(file_name)
    prefix = f"{base_name}.backup-{time.strftime('%Y-%m-%d_%H_%M_%S')}."
    fd, backup_name = tempfile.mkstemp(prefix=prefix, dir=dir_name)
    try:
        with os.fdopen(fd, "wb") as dst, open(file_name, "rb") as src:
            shutil.copyfileobj(src, dst)
            os.fchmod(dst.fileno(), stat.S_IMODE(os.fstat(src.fileno()).st_mode))
    except BaseException:
        RemoveFile(backup_name)
        raise
    return backup_name


def TailFile(fname: str, lines: int = 20) -> list[str]:
    """Return the last ``lines`` lines of a file, without newlines.

    Only the end of the file is read, so this is cheap on big logs.
    Undecodable bytes are replaced.
    """
    if lines <= 0:
        return []
    with open(fname, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        pos = fh.tell()
        data = b""
        # One newline more than asked for: the file usually ends with one
        while pos > 0 and data.count(b"\n") <= lines:
            step = min(_TAIL_CHUNK, pos)
            pos -= step
            fh.seek(pos)
            data = fh.read(step) + data
    text = data.decode("utf-8", errors="replace")
    return text.splitlines()[-lines:]
