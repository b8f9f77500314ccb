"""backend.verify: the node's checks for cluster verify."""

from __future__ import annotations

import os
import socket
import stat
import time

import pytest

from ganeti import constants, pathutils
from ganeti.backend import RPCFail
from ganeti.backend import files, verify
from ganeti.rpc.encoding import FileUpload

NODE = "node1.example.com"


def test_version_hostname_time(node_root):
    before = time.time()
    result = verify.VerifyNode({constants.NV_VERSION: None, constants.NV_HOSTNAME: None,
                                constants.NV_TIME: None}, "cluster", {}, {}, {})
    assert result[constants.NV_VERSION] == [constants.PROTOCOL_VERSION,
                                            constants.RELEASE_VERSION]
    assert result[constants.NV_HOSTNAME] == NODE
    secs, usecs = result[constants.NV_TIME]
    assert int(before) <= secs <= time.time() and 0 <= usecs < 1000000


def test_unknown_checks_are_left_out(node_root):
    assert verify.VerifyNode({constants.NV_OSLIST: None}, "c", {}, {}, {}) == {}
    with pytest.raises(RPCFail, match="dict of checks"):
        verify.VerifyNode([], "c", {}, {}, {})


def test_file_checksums(node_root):
    files.UploadFile(FileUpload(pathutils.RAPI_CERT_FILE, b"abc", 0o400, None, None,
                                None, None))
    names = [pathutils.MakeVirtualPath(pathutils.RAPI_CERT_FILE),
             pathutils.MakeVirtualPath(pathutils.CONFD_HMAC_KEY)]
    result = verify.VerifyNode({constants.NV_FILELIST: names}, "c", {}, {}, {})
    assert result[constants.NV_FILELIST] == {
        names[0]: "a9993e364706816aba3e25717850c26c9cd0d89d"}
    with pytest.raises(RPCFail, match="Invalid path"):
        verify.VerifyNode({constants.NV_FILELIST: ["/not/virtual"]}, "c", {}, {}, {})


def test_node_net_test(node_root):
    with socket.socket() as listener:
        listener.bind(("127.0.97.2", 0))
        listener.listen(5)
        port = listener.getsockname()[1]
        entries = [
            (NODE, "127.0.97.1", "127.0.97.1", port),
            ("up.example.com", "127.0.97.2", "127.0.97.2", port),
            ("down.example.com", "127.0.97.3", "127.0.97.5", port),
            ("single.example.com", "127.0.97.6", "127.0.97.6", port),
            ("halfdown.example.com", "127.0.97.2", "127.0.97.4", port),
        ]
        result = verify.VerifyNode({constants.NV_NODENETTEST: entries}, "c", {}, {}, {})
    problems = result[constants.NV_NODENETTEST]
    assert set(problems) == {"down.example.com", "halfdown.example.com",
                             "single.example.com"}
    assert "primary and secondary" in problems["down.example.com"]
    assert "the primary interface" in problems["single.example.com"]
    assert "secondary interface" in problems["halfdown.example.com"]


def test_node_net_test_without_self(node_root):
    result = verify.VerifyNode({constants.NV_NODENETTEST: [
        ("other", "127.0.0.1", "127.0.0.1")]}, "c", {}, {}, {})
    assert "Can't find my own" in result[constants.NV_NODENETTEST][NODE]
    with pytest.raises(RPCFail, match="Invalid node-net-test entry"):
        verify.VerifyNode({constants.NV_NODENETTEST: [("x",)]}, "c", {}, {}, {})


def test_client_cert_check(node_root, cluster_crypto):
    result = verify.VerifyNode({constants.NV_CLIENT_CERT: None}, "c", {}, {}, {})
    code, msg = result[constants.NV_CLIENT_CERT]
    assert code == constants.CV_ERROR and "does not exist" in msg
    with open(cluster_crypto.client_pem, "rb") as src, \
            open(pathutils.NODED_CLIENT_CERT_FILE, "wb") as dst:
        dst.write(src.read())
    result = verify.VerifyNode({constants.NV_CLIENT_CERT: None}, "c", {}, {}, {})
    assert result[constants.NV_CLIENT_CERT] == [None, None]


def test_file_permissions(node_root, monkeypatch):
    """Our extension: ensure-dirs' differences, with virtual paths."""
    from ganeti import runtime
    from ganeti.tools import ensure_dirs
    monkeypatch.setenv(constants.GANETI_ROOTDIR_ENV, node_root)
    monkeypatch.delenv(runtime.PRIVSEP_ENV, raising=False)
    assert not ensure_dirs.Ensure().failures
    with open(pathutils.RAPI_USERS_FILE, "w") as fd:
        fd.write("admin {HA1}0123 write\n")
    os.chmod(pathutils.RAPI_USERS_FILE, 0o666)
    os.chmod(pathutils.QUEUE_DIR, 0o755)
    result = verify.VerifyNode({constants.NV_FILEPERMS: None}, "c", {}, {}, {})
    assert result == {constants.NV_FILEPERMS: [
        [pathutils.MakeVirtualPath(pathutils.RAPI_USERS_FILE), "mode 0666, expected 0640"],
        [pathutils.MakeVirtualPath(pathutils.QUEUE_DIR), "mode 0755, expected 0700"]]}
    # Only checked, not fixed
    assert stat.S_IMODE(os.stat(pathutils.RAPI_USERS_FILE).st_mode) == 0o666
    assert not ensure_dirs.Ensure().failures
    result = verify.VerifyNode({constants.NV_FILEPERMS: None}, "c", {}, {}, {})
    assert result == {constants.NV_FILEPERMS: []}
    # A check that cannot run at all says why, without a path
    monkeypatch.setenv(runtime.PRIVSEP_ENV, "1")
    monkeypatch.setenv(runtime.USER_PREFIX_ENV, "zz-no-such-")
    monkeypatch.setenv(runtime.GROUP_PREFIX_ENV, "zz-no-such-")
    [[path, problem]] = verify.VerifyNode({constants.NV_FILEPERMS: None}, "c", {}, {},
                                          {})[constants.NV_FILEPERMS]
    assert path is None and "zz-no-such-masterd" in problem


def test_file_storage_listing(node_root):
    """Our extension: what lies below the file storage directories, for the
    master's orphan check; other directories are refused."""
    base = os.path.join(node_root, "srv/ganeti/file-storage")
    os.makedirs(os.path.join(base, "inst1.example.com"))
    with open(os.path.join(base, "inst1.example.com", "disk0"), "w") as fd:
        fd.write("x")
    os.makedirs(os.path.join(base, "sub", "empty"))
    with open(os.path.join(base, "stray"), "w") as fd:
        fd.write("x")
    os.symlink("/etc", os.path.join(base, "link"))
    check = {constants.NV_FILESTORAGELIST: ["/srv/ganeti/file-storage", "/etc",
                                            "/srv/ganeti/shared-file-storage"]}
    listing = verify.VerifyNode(check, "c", {}, {}, {})[constants.NV_FILESTORAGELIST]
    assert listing["/srv/ganeti/file-storage"] == [
        "inst1.example.com/", "inst1.example.com/disk0", "link/", "stray", "sub/",
        "sub/empty/"]
    assert "not a file storage directory" in listing["/etc"]
    # Missing: nothing there
    assert listing["/srv/ganeti/shared-file-storage"] == []
    with pytest.raises(RPCFail, match="Invalid file storage directory"):
        verify.VerifyNode({constants.NV_FILESTORAGELIST: ["relative"]}, "c", {}, {}, {})


def test_missing_bridges(monkeypatch):
    """NV_BRIDGES answers the bridges the node lacks, or the error."""
    from ganeti.backend import node as backend_node
    from ganeti.backend import verify as backend_verify
    monkeypatch.setattr(backend_node, "BridgesExist",
                        lambda names: [n for n in names if n != "br0"])
    assert backend_verify._MissingBridges(["br0", "br1"]) == ["br1"]
    monkeypatch.undo()
    assert "Invalid bridge name" in backend_verify._MissingBridges(["a/b"])
