"""How RPC arguments are encoded by the master and decoded by a node.

Each argument in the call table has an :class:`ArgKind`. The master encodes
a value with :func:`Encode` (per destination node, so a value may differ
between nodes, see :class:`PerNode`); the node decodes it with
:func:`Decode` before the handler sees it. Both directions live here so they
cannot disagree.
"""

from __future__ import annotations

import base64
import enum
import grp
import os
import pwd
import zlib
from dataclasses import dataclass
from typing import Any

from ganeti import constants, errors, pathutils


class ArgKind(enum.Enum):
    """The encoding of one RPC argument."""
    #: JSON value as given
    NONE = "none"
    #: text or bytes, zlib-compressed and base64-encoded when large;
    #: the node gets bytes
    COMPRESS = "compress"
    #: the master's name of a local file, sent with its contents, mode,
    #: owner and times; the node gets a :class:`FileUpload`
    FILE_DETAILS = "file-details"
    #: an absolute path, sent relative to the sender's root directory;
    #: the node gets its own local path
    VIRTUAL_PATH = "virtual-path"
    #: a list of (old, new) absolute path pairs, encoded like VIRTUAL_PATH
    VIRTUAL_PATH_PAIRS = "virtual-path-pairs"
    #: an object with ``ToDict``; the node gets the dict
    OBJECT_DICT = "object-dict"
    #: a list of such objects; the node gets the list of dicts
    OBJECT_DICT_LIST = "object-dict-list"


class PerNode(dict):
    """An argument value that differs per node: ``{node: value}``.

    Pass it in place of the plain value; each node gets its own entry.
    """


@dataclass(frozen=True)
class FileUpload:
    """A file as the node receives it from ``upload_file``."""
    name: str
    data: bytes
    mode: int | None
    owner: str | None
    group: str | None
    atime: float | None
    mtime: float | None


def Compress(data: str | bytes) -> list:
    """Encode data for the wire; small text is sent as is."""
    if isinstance(data, str) and len(data) < constants.RPC_COMPRESS_MIN_SIZE:
        return [constants.RPC_ENCODING_NONE, data]
    raw = data.encode("utf-8") if isinstance(data, str) else data
    return [constants.RPC_ENCODING_ZLIB_BASE64,
            base64.b64encode(zlib.compress(raw, 3)).decode("ascii")]


def Decompress(value: Any) -> bytes:
    """Decode data encoded by :func:`Compress`."""
    if not (isinstance(value, (list, tuple)) and len(value) == 2):
        raise errors.ParameterError(f"Invalid compressed data: {value!r:.100}")
    encoding, content = value
    if encoding == constants.RPC_ENCODING_NONE:
        if not isinstance(content, str):
            raise errors.ParameterError("Uncompressed data must be a string")
        return content.encode("utf-8")
    if encoding == constants.RPC_ENCODING_ZLIB_BASE64:
        try:
            return zlib.decompress(base64.b64decode(content, validate=True))
        except (ValueError, TypeError, zlib.error) as err:
            raise errors.ParameterError(f"Invalid compressed data: {err}") from err
    raise errors.ParameterError(f"Unknown data encoding {encoding!r}")


def _LookupUser(uid: int) -> str | None:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return None


def _LookupGroup(gid: int) -> str | None:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return None


def PrepareFileUpload(filename: str) -> list:
    """Read a local file for ``upload_file``.

    The wire form is ``[virtual name, compressed data, mode, owner name,
    group name, atime, mtime]``; owners travel by name since user ids may
    differ between nodes.
    """
    with open(filename, "rb") as fd:
        st = os.fstat(fd.fileno())
        data = fd.read()
    return [pathutils.MakeVirtualPath(filename), Compress(data), st.st_mode & 0o7777,
            _LookupUser(st.st_uid), _LookupGroup(st.st_gid), st.st_atime,
            st.st_mtime]


def _DecodeFileUpload(value: Any) -> FileUpload:
    if not (isinstance(value, (list, tuple)) and len(value) == 7):
        raise errors.ParameterError("File details must be a list of 7 items")
    name, data, mode, owner, group, atime, mtime = value
    if not isinstance(name, str) or not os.path.isabs(name):
        raise errors.ParameterError(f"File name must be an absolute path, got {name!r}")
    return FileUpload(name=_Localize(name), data=Decompress(data),
                      mode=mode, owner=owner, group=group, atime=atime, mtime=mtime)


def _Localize(path: str) -> str:
    try:
        return pathutils.LocalizeVirtualPath(path)
    except errors.ProgrammerError as err:
        raise errors.ParameterError(str(err)) from err


def _DecodePath(value: Any) -> str:
    if not isinstance(value, str) or not os.path.isabs(value):
        raise errors.ParameterError(f"Expected an absolute path, got {value!r}")
    return _Localize(value)


def _EncodePath(value: str) -> str:
    return pathutils.MakeVirtualPath(value)


def _EncodeObject(value: Any) -> Any:
    return value.ToDict() if hasattr(value, "ToDict") else value


def Encode(kind: ArgKind, value: Any) -> Any:
    """Encode one argument value on the master."""
    if kind is ArgKind.NONE:
        return value
    if kind is ArgKind.COMPRESS:
        return Compress(value)
    if kind is ArgKind.FILE_DETAILS:
        return PrepareFileUpload(value)
    if kind is ArgKind.VIRTUAL_PATH:
        return _EncodePath(value)
    if kind is ArgKind.VIRTUAL_PATH_PAIRS:
        return [[_EncodePath(old), _EncodePath(new)] for old, new in value]
    if kind is ArgKind.OBJECT_DICT:
        return _EncodeObject(value)
    if kind is ArgKind.OBJECT_DICT_LIST:
        return [_EncodeObject(v) for v in value]
    raise errors.ProgrammerError(f"Unknown argument kind {kind}")


def Decode(kind: ArgKind, value: Any) -> Any:
    """Decode one argument value on the node.

    Raises errors.ParameterError for values the sender could not have
    produced.
    """
    if kind in (ArgKind.NONE, ArgKind.OBJECT_DICT, ArgKind.OBJECT_DICT_LIST):
        return value
    if kind is ArgKind.COMPRESS:
        return Decompress(value)
    if kind is ArgKind.FILE_DETAILS:
        return _DecodeFileUpload(value)
    if kind is ArgKind.VIRTUAL_PATH:
        return _DecodePath(value)
    if kind is ArgKind.VIRTUAL_PATH_PAIRS:
        if not isinstance(value, list) or not all(
                isinstance(p, (list, tuple)) and len(p) == 2 for p in value):
            raise errors.ParameterError("Expected a list of (old, new) path pairs")
        return [(_DecodePath(old), _DecodePath(new)) for old, new in value]
    raise errors.ProgrammerError(f"Unknown argument kind {kind}")
