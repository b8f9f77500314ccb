"""backend.files: uploads to an allow-list, file information, ssconf."""

from __future__ import annotations

import grp
import os
import pwd
import stat

import pytest

from ganeti import constants, pathutils, ssconf
from ganeti.backend import RPCFail
from ganeti.backend import files
from ganeti.rpc.encoding import FileUpload


def _Upload(name, data=b"data", mode=0o640, owner=None, group=None,
            atime=None, mtime=None):
    return FileUpload(name=name, data=data, mode=mode, owner=owner, group=group,
                      atime=atime, mtime=mtime)


def test_allowed_files(node_root):
    allowed = files.GetAllowedUploadFiles()
    for path in (pathutils.CLUSTER_CONF_FILE, pathutils.RAPI_CERT_FILE,
                 pathutils.CONFD_HMAC_KEY, pathutils.ETC_HOSTS,
                 pathutils.RAPI_USERS_FILE, pathutils.CLUSTER_DOMAIN_SECRET_FILE):
        assert path in allowed and path.startswith(node_root)
    for path in (pathutils.NODED_CERT_FILE, pathutils.NODED_CLIENT_CERT_FILE,
                 pathutils.FILE_STORAGE_PATHS_FILE):
        assert path not in allowed


def test_upload_keeps_mode_owner_and_times(node_root):
    me = pwd.getpwuid(os.geteuid()).pw_name
    my_group = grp.getgrgid(os.getegid()).gr_name
    files.UploadFile(_Upload(pathutils.RAPI_CERT_FILE, b"cert", 0o400, me, my_group,
                             1000000.0, 2000000.5))
    st = os.stat(pathutils.RAPI_CERT_FILE)
    assert stat.S_IMODE(st.st_mode) == 0o400
    assert (st.st_uid, st.st_gid) == (os.geteuid(), os.getegid())
    assert (st.st_atime, st.st_mtime) == (1000000.0, 2000000.5)
    with open(pathutils.RAPI_CERT_FILE, "rb") as fd:
        assert fd.read() == b"cert"
    # Overwriting works too (the file is replaced, not written into)
    files.UploadFile(_Upload(pathutils.RAPI_CERT_FILE, b"new", 0o644))
    assert stat.S_IMODE(os.stat(pathutils.RAPI_CERT_FILE).st_mode) == 0o644


@pytest.mark.skipif(os.geteuid() != 0, reason="changing owners needs root")
def test_upload_changes_owner(node_root):
    files.UploadFile(_Upload(pathutils.CONFD_HMAC_KEY, owner="nobody"))
    assert os.stat(pathutils.CONFD_HMAC_KEY).st_uid == pwd.getpwnam("nobody").pw_uid


@pytest.mark.parametrize("name,text", [
    ("/etc/passwd", "not in the list of files"),
    ("relative/file", "must be an absolute path"),
    (None, "must be an absolute path"),
])
def test_upload_refuses_other_files(node_root, name, text):
    with pytest.raises(RPCFail, match=text):
        files.UploadFile(_Upload(name))


def test_upload_refusals_in_root(node_root):
    with pytest.raises(RPCFail, match="not in the list of files"):
        files.UploadFile(_Upload(pathutils.NODED_CERT_FILE))
    with pytest.raises(RPCFail, match="not normalised"):
        files.UploadFile(_Upload(pathutils.DATA_DIR + "/../ganeti/rapi.pem"))
    with pytest.raises(RPCFail, match="Unknown user 'no-such-user-x'"):
        files.UploadFile(_Upload(pathutils.RAPI_CERT_FILE, owner="no-such-user-x"))
    with pytest.raises(RPCFail, match="Unknown group"):
        files.UploadFile(_Upload(pathutils.RAPI_CERT_FILE, group="no-such-group-x"))
    with pytest.raises(RPCFail, match="both atime and mtime"):
        files.UploadFile(_Upload(pathutils.RAPI_CERT_FILE, atime=1.0))
    os.rmdir(pathutils.RAPI_DATA_DIR)
    with pytest.raises(RPCFail, match="does not exist"):
        files.UploadFile(_Upload(pathutils.RAPI_USERS_FILE))


def test_extra_upload_files(node_root, monkeypatch):
    extra = pathutils.CONF_DIR + "/hv-extra"
    monkeypatch.setattr(files, "EXTRA_UPLOAD_FILES", {extra})
    files.UploadFile(_Upload(extra))
    assert os.path.exists(extra)


def test_hypervisor_ancillary_files_are_uploadable(node_root, monkeypatch):
    # As in Ganeti, every hypervisor's ancillary files may be uploaded
    # (redist-conf ships them with upload_file)
    from ganeti.hypervisor import hv_fake
    conf = pathutils.CONF_DIR + "/fake-hv.conf"
    opt = pathutils.CONF_DIR + "/fake-hv.opt"
    assert conf not in files.GetAllowedUploadFiles()
    monkeypatch.setattr(hv_fake.FakeHypervisor, "ANCILLARY_FILES", [conf, opt])
    monkeypatch.setattr(hv_fake.FakeHypervisor, "ANCILLARY_FILES_OPT", [opt])
    assert {conf, opt} <= files.GetAllowedUploadFiles()
    files.UploadFile(_Upload(conf, b"x"))
    assert os.path.exists(conf)
    with pytest.raises(RPCFail, match="not in the list of files"):
        files.UploadFile(_Upload(pathutils.CONF_DIR + "/fake-hv.other"))


def test_file_info(node_root):
    assert files.GetFileInfo(pathutils.RAPI_CERT_FILE) == {"exists": False}
    files.UploadFile(_Upload(pathutils.RAPI_CERT_FILE, b"abc", 0o440))
    info = files.GetFileInfo(pathutils.RAPI_CERT_FILE)
    assert info["exists"] and info["size"] == 3 and info["mode"] == 0o440
    assert info["sha1"] == "a9993e364706816aba3e25717850c26c9cd0d89d"
    assert info["uid"] == os.geteuid()
    # ssconf and job queue files are allowed
    ssconf.SimpleStore().WriteFiles({constants.SS_CLUSTER_NAME: "cluster"})
    name = os.path.join(pathutils.DATA_DIR, "ssconf_" + constants.SS_CLUSTER_NAME)
    assert files.GetFileInfo(name)["size"] == len("cluster\n")
    assert files.GetFileInfo(pathutils.QUEUE_DIR + "/job-1") == {"exists": False}


@pytest.mark.parametrize("name,text", [
    ("/etc/shadow", "not one of the files"),
    ("x", "absolute path"),
])
def test_file_info_refuses_other_files(node_root, name, text):
    with pytest.raises(RPCFail, match=text):
        files.GetFileInfo(name)
    with pytest.raises(RPCFail, match="not one of the files"):
        files.GetFileInfo(pathutils.NODED_CERT_FILE)
    with pytest.raises(RPCFail, match="not one of the files"):
        files.GetFileInfo(pathutils.DATA_DIR + "/ssconf_no_such_key")
    os.makedirs(pathutils.QUEUE_DIR + "/archive", exist_ok=True)
    with pytest.raises(RPCFail, match="not a regular file"):
        files.GetFileInfo(pathutils.QUEUE_DIR + "/archive")


def test_fingerprint_files(tmp_path):
    (tmp_path / "a").write_bytes(b"abc")
    assert files.FingerprintFiles([str(tmp_path / "a"), str(tmp_path / "missing")]) == \
        {str(tmp_path / "a"): "a9993e364706816aba3e25717850c26c9cd0d89d"}


def test_write_ssconf_files(node_root):
    files.WriteSsconfFiles({constants.SS_CLUSTER_NAME: "c1",
                            constants.SS_NODE_LIST: "a\nb"})
    ss = ssconf.SimpleStore()
    assert ss.GetClusterName() == "c1"
    assert ss.GetNodeList() == ["a", "b"]
    with pytest.raises(RPCFail, match="Unknown ssconf keys: bogus"):
        files.WriteSsconfFiles({"bogus": "x"})
    with pytest.raises(RPCFail, match="must be a dictionary"):
        files.WriteSsconfFiles(["x"])
    with pytest.raises(RPCFail, match="Cannot write ssconf files"):
        files.WriteSsconfFiles({constants.SS_CLUSTER_NAME: 3.5})
