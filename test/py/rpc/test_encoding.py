"""Argument encodings of node RPC, master and node side."""

from __future__ import annotations

import base64
import os
import zlib

import pytest

from ganeti import constants, errors, pathutils
from ganeti.rpc import encoding
from ganeti.rpc.encoding import ArgKind


@pytest.fixture
def node_root(tmp_path):
    root = str(tmp_path / "node1.example.com")
    os.makedirs(root)
    pathutils._SetRoot(root)
    yield root
    pathutils.Reload()


def test_small_text_is_not_compressed():
    assert encoding.Compress("hello") == [constants.RPC_ENCODING_NONE, "hello"]
    assert encoding.Decompress([constants.RPC_ENCODING_NONE, "hello"]) == b"hello"


@pytest.mark.parametrize("data", [b"\x00\xff" * 10, "x" * 5000, b"y" * 100000])
def test_compress_roundtrip(data):
    encoded = encoding.Compress(data)
    assert encoded[0] == constants.RPC_ENCODING_ZLIB_BASE64
    raw = data.encode() if isinstance(data, str) else data
    assert encoding.Decompress(encoded) == raw
    # JSON-safe: the payload is ASCII text
    encoded[1].encode("ascii")


@pytest.mark.parametrize("value", [
    None, [], [1], [constants.RPC_ENCODING_NONE, 5], [99, "x"],
    [constants.RPC_ENCODING_ZLIB_BASE64, "not base64!"],
    [constants.RPC_ENCODING_ZLIB_BASE64, base64.b64encode(b"not zlib").decode()],
])
def test_decompress_refuses_garbage(value):
    with pytest.raises(errors.ParameterError):
        encoding.Decompress(value)


def test_file_upload_roundtrip(tmp_path):
    path = tmp_path / "some.file"
    path.write_bytes(b"content" * 200)
    os.chmod(path, 0o640)
    os.utime(path, (1000000, 2000000))
    wire = encoding.Encode(ArgKind.FILE_DETAILS, str(path))
    assert len(wire) == 7 and wire[2] == 0o640
    upload = encoding.Decode(ArgKind.FILE_DETAILS, wire)
    assert upload.name == str(path)
    assert upload.data == b"content" * 200
    assert (upload.mode, upload.atime, upload.mtime) == (0o640, 1000000, 2000000)
    assert upload.owner and upload.group


@pytest.mark.parametrize("value", [
    "x", [1, 2], ["relative/path", [0, ""], 0o644, None, None, None, None],
])
def test_file_upload_refuses_garbage(value):
    with pytest.raises(errors.ParameterError):
        encoding.Decode(ArgKind.FILE_DETAILS, value)


def test_paths_are_virtual_in_a_virtual_cluster(node_root):
    local = node_root + "/var/lib/ganeti/queue/job-1"
    wire = encoding.Encode(ArgKind.VIRTUAL_PATH, local)
    assert node_root not in wire and wire.endswith("/var/lib/ganeti/queue/job-1")
    # Another node puts its own root in front
    other = os.path.join(os.path.dirname(node_root), "node2.example.com")
    pathutils._SetRoot(other)
    assert encoding.Decode(ArgKind.VIRTUAL_PATH, wire) == \
        other + "/var/lib/ganeti/queue/job-1"
    pairs = encoding.Encode(ArgKind.VIRTUAL_PATH_PAIRS, [(other + "/a", other + "/b")])
    assert encoding.Decode(ArgKind.VIRTUAL_PATH_PAIRS, pairs) == \
        [(other + "/a", other + "/b")]
    with pytest.raises(errors.ParameterError):
        encoding.Decode(ArgKind.VIRTUAL_PATH, "/not/virtual")


@pytest.mark.parametrize("kind,value", [
    (ArgKind.VIRTUAL_PATH, "relative"), (ArgKind.VIRTUAL_PATH, 5),
    (ArgKind.VIRTUAL_PATH_PAIRS, [["/a"]]), (ArgKind.VIRTUAL_PATH_PAIRS, "x"),
])
def test_bad_paths_refused(kind, value):
    with pytest.raises(errors.ParameterError):
        encoding.Decode(kind, value)


def test_objects_become_dicts():
    class Obj:
        def ToDict(self):
            return {"a": 1}
    assert encoding.Encode(ArgKind.OBJECT_DICT, Obj()) == {"a": 1}
    assert encoding.Encode(ArgKind.OBJECT_DICT_LIST, [Obj(), Obj()]) == [{"a": 1}] * 2
    assert encoding.Decode(ArgKind.OBJECT_DICT, {"a": 1}) == {"a": 1}


def test_zlib_level_is_sane():
    data = b"a" * 10000
    assert len(encoding.Compress(data)[1]) < len(base64.b64encode(zlib.compress(data, 0)))
