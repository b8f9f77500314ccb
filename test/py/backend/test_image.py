"""Tests for writing a disk image onto a disk (``get_image_size`` and
``blockdev_image``, lib/backend/image.py): real file disks on a virtual
node root, images in files and served by a real HTTP server."""

from __future__ import annotations

import http.server
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import nodedhelpers
from ganeti import constants, objects
from ganeti.backend import RPCFail
from ganeti.backend import convert, image
from ganeti.backend import storage as bstor
from ganeti.rpc import defs, dispatch

MIB = 1024 * 1024
FSD = "/srv/ganeti/file-storage"
#: Where the tests keep image files, as the node names it
IMAGES = "/srv/images"


@pytest.fixture
def node(node_root):
    """A node with a file storage directory."""
    os.makedirs(f"{node_root}{FSD}")
    return node_root


@pytest.fixture
def images(node) -> Path:
    """The node's image directory, as this process reaches it (the node
    itself names its files ``IMAGES/<name>``)."""
    os.makedirs(f"{node}{IMAGES}")
    return Path(f"{node}{IMAGES}")


@pytest.fixture
def shutdowns(monkeypatch) -> list[str]:
    """The devices shut down by BlockdevImage (paths), in order."""
    done: list[str] = []
    real = convert.ShutdownDevice

    def Spy(dev, disk):
        if dev is not None:
            done.append(dev.dev_path)
        real(dev, disk)
    monkeypatch.setattr(convert, "ShutdownDevice", Spy)
    return done


def _Disk(name: str = "inst1", size: int = 2) -> dict:
    disk = objects.Disk(dev_type=constants.DT_FILE, size=size, mode=constants.DISK_RDWR,
                        logical_id=(constants.FD_LOOP, f"{FSD}/{name}/disk0"),
                        uuid=f"{name}-disk0", iv_name="disk/0", params={}, children=[])
    return disk.ToDict()


def _NewDisk(node: str, name: str = "inst1", size: int = 2,
             fill: bytes = b"\xaa") -> tuple[dict, str]:
    """A created file disk of ``size`` MiB filled with ``fill``; its path."""
    disk = _Disk(name, size)
    bstor.BlockdevCreate(disk, size, name, True, "", False)
    path = f"{node}{FSD}/{name}/disk0"
    with open(path, "r+b") as fd:
        fd.write(fill * (size * MIB))
    return disk, path


def _Read(path: str) -> bytes:
    with open(path, "rb") as fd:
        return fd.read()


def _RefusedToWrite(node: str, names: list[str]) -> None:
    """BlockdevImage refuses each image, naming it; the disk keeps its data."""
    disk, path = _NewDisk(node)
    for name in names:
        with pytest.raises(RPCFail, match=f"'{name}'"):
            image.BlockdevImage(disk, name, 2)
    assert _Read(path) == b"\xaa" * (2 * MIB)


class _Handler(http.server.BaseHTTPRequestHandler):
    """Serves ``server.files`` (path -> body); a path in ``server.short``
    announces more bytes than it sends; ``/nolength`` sends no length."""

    def _Answer(self, body: bool) -> None:
        data = self.server.files.get(self.path)  # type: ignore[attr-defined]
        if data is None:
            self.send_error(404)
            return
        self.send_response(200)
        if self.path != "/nolength":
            extra = 1000 if self.path in self.server.short else 0  # type: ignore[attr-defined]
            self.send_header("Content-Length", str(len(data) + extra))
        self.end_headers()
        if body:
            self.wfile.write(data)
        self.close_connection = True

    def do_GET(self) -> None:  # noqa: N802 - BaseHTTPRequestHandler's name
        self._Answer(True)

    def do_HEAD(self) -> None:  # noqa: N802 - BaseHTTPRequestHandler's name
        self._Answer(False)

    def log_message(self, format: str, *args) -> None:  # noqa: A002
        pass


@pytest.fixture
def server() -> Iterator[http.server.ThreadingHTTPServer]:
    """An HTTP server on 127.0.0.1 in a thread; its ``url`` attribute is the
    base URL, its ``files`` what it serves."""
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.daemon_threads = True
    srv.files = {}  # type: ignore[attr-defined]
    srv.short = set()  # type: ignore[attr-defined]
    srv.url = f"http://127.0.0.1:{srv.server_address[1]}"  # type: ignore[attr-defined]
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()
    thread.join(10)
    assert not thread.is_alive()


def test_file_image(node, images, shutdowns):
    data = os.urandom(MIB) + bytes(MIB // 2) + b"end"
    src = images / "image.img"
    src.write_bytes(data)
    assert image.GetImageSize(f"{IMAGES}/image.img") == len(data)
    disk, path = _NewDisk(node, size=2)
    assert image.BlockdevImage(disk, f"{IMAGES}/image.img", 2) == len(data)
    written = _Read(path)
    # The zeros of the image were written too: the disk held other data
    assert written[:len(data)] == data
    assert written[len(data):] == b"\xaa" * (2 * MIB - len(data))
    # Shut down again
    assert shutdowns == [path]


def test_image_filling_the_disk(node, images):
    src = images / "image.img"
    src.write_bytes(b"\x55" * MIB)
    disk, path = _NewDisk(node, size=1)
    assert image.BlockdevImage(disk, f"{IMAGES}/image.img", 1) == MIB
    assert _Read(path) == b"\x55" * MIB


def test_url_image(node, server):
    data = os.urandom(MIB + 12345)
    server.files["/images/zero.img"] = data
    url = f"{server.url}/images/zero.img"
    assert image.GetImageSize(url) == len(data)
    disk, path = _NewDisk(node, size=2)
    assert image.BlockdevImage(disk, url, 2) == len(data)
    written = _Read(path)
    assert written[:len(data)] == data
    assert written[len(data):] == b"\xaa" * (2 * MIB - len(data))


@pytest.mark.parametrize("name, message", [
    ("relative/image.img", "'relative/image.img' is neither an absolute path nor"),
    ("", "Invalid image ''"),
    ("gopher://example.com/image", "Unsupported URL scheme in image"
                                   " 'gopher://example.com/image'"),
    ("file:///etc/passwd", "Unsupported URL scheme"),
])
def test_bad_image_names(node, name, message):
    with pytest.raises(RPCFail, match=message):
        image.GetImageSize(name)
    disk, path = _NewDisk(node)
    with pytest.raises(RPCFail, match=message):
        image.BlockdevImage(disk, name, 2)
    assert _Read(path) == b"\xaa" * (2 * MIB)


def test_missing_file_and_directory(node, images):
    missing = f"{IMAGES}/missing.img"
    with pytest.raises(RPCFail, match=f"Cannot access the image '{missing}':"
                                      " No such file or directory"):
        image.GetImageSize(missing)
    with pytest.raises(RPCFail, match=f"Image '{IMAGES}' is not a regular file"):
        image.GetImageSize(IMAGES)
    _RefusedToWrite(node, [missing, IMAGES])


def test_http_errors(node, server):
    missing = f"{server.url}/missing.img"
    with pytest.raises(RPCFail, match=f"Cannot get the image '{missing}': HTTP error 404"):
        image.GetImageSize(missing)
    server.files["/nolength"] = b"x" * 100
    nolength = f"{server.url}/nolength"
    with pytest.raises(RPCFail, match=f"The server of image '{nolength}' does not say"
                                      " its size"):
        image.GetImageSize(nolength)
    _RefusedToWrite(node, [missing, nolength])


def test_unreachable_server(node, server):
    url = f"{server.url}/image.img"
    server.shutdown()
    server.server_close()
    with pytest.raises(RPCFail, match=f"Cannot get the image '{url}': .*refused"):
        image.GetImageSize(url)


def test_image_larger_than_the_disk(node, images, server):
    src = images / "big.img"
    src.write_bytes(b"x" * (MIB + 1))
    server.files["/big.img"] = src.read_bytes()
    disk, path = _NewDisk(node, size=1)
    for name in (f"{IMAGES}/big.img", f"{server.url}/big.img"):
        with pytest.raises(RPCFail, match=f"Image '{name}' \\(1048577 bytes\\) does not"
                                          " fit on the disk of 1 MiB \\(1048576 bytes\\)"):
            image.BlockdevImage(disk, name, 1)
    # Nothing was written
    assert _Read(path) == b"\xaa" * MIB


def test_short_body(node, server, shutdowns):
    data = b"y" * 5000
    server.files["/short.img"] = data
    server.short.add("/short.img")
    url = f"{server.url}/short.img"
    assert image.GetImageSize(url) == len(data) + 1000
    disk, path = _NewDisk(node)
    with pytest.raises(RPCFail, match=f"Image '{url}' ended after 5000 of 6000 bytes"):
        image.BlockdevImage(disk, url, 2)
    # Shut down also after the failure
    assert shutdowns == [path]


def test_invalid_size(node, images):
    src = images / "image.img"
    src.write_bytes(b"x")
    disk, _ = _NewDisk(node)
    for size in (0, -1, "2", True):
        with pytest.raises(RPCFail, match="Invalid size"):
            image.BlockdevImage(disk, f"{IMAGES}/image.img", size)


def test_missing_disk(node, images):
    src = images / "image.img"
    src.write_bytes(b"x")
    with pytest.raises(RPCFail, match="Cannot assemble the target disk"):
        image.BlockdevImage(_Disk("nothere"), f"{IMAGES}/image.img", 2)


def test_registered_as_rpc():
    call = defs.CALLS["get_image_size"]
    assert call.single and call.arg_names == ["image"]
    assert dispatch.ResolveHandler(call.handler) is image.GetImageSize
    call = defs.CALLS["blockdev_image"]
    assert call.single and call.arg_names == ["disk", "image", "size"]
    assert call.timeout == constants.RPC_TMO_4HRS
    assert dispatch.ResolveHandler(call.handler) is image.BlockdevImage


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_over_rpc(start_noded, cluster_crypto, server):
    """Both calls through a real node daemon, as the master makes them."""
    (daemon,) = start_noded(1, subnet=176)
    os.makedirs(f"{daemon.root}{FSD}")
    runner = nodedhelpers.MakeRunner(cluster_crypto, [daemon])
    node = daemon.name
    disk = objects.Disk.FromDict(_Disk("inst1", 1))
    res = runner.call_blockdev_create(node, disk, 1, "inst1", True, "", False)
    assert res.fail_msg is None, res.fail_msg
    data = os.urandom(300000)
    os.makedirs(f"{daemon.root}{IMAGES}")
    src = Path(f"{daemon.root}{IMAGES}/image.img")
    src.write_bytes(data)
    server.files["/image.img"] = data
    for name in (f"{IMAGES}/image.img", f"{server.url}/image.img"):
        res = runner.call_get_image_size(node, name)
        assert res.fail_msg is None and res.payload == len(data), res.fail_msg
        res = runner.call_blockdev_image(node, disk, name, 1)
        assert res.fail_msg is None and res.payload == len(data), res.fail_msg
        assert _Read(f"{daemon.root}{FSD}/inst1/disk0")[:len(data)] == data
        data = data[::-1]
        src.write_bytes(data)
        server.files["/image.img"] = data
    res = runner.call_blockdev_image(node, disk, "relative.img", 1)
    assert "'relative.img' is neither an absolute path" in res.fail_msg
    res = runner.call_get_image_size(node, f"{server.url}/missing")
    assert "HTTP error 404" in res.fail_msg
