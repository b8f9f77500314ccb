"""Tests for ganeti.runtime: daemon users, groups and the privilege drop."""

from __future__ import annotations

import os
import shutil
import tempfile
import types

import pytest

from ganeti import constants, errors, runtime

SEPARATE = {"GANETI_USER_PREFIX": "gnt-", "GANETI_GROUP_PREFIX": "gnt-"}


class _Db:
    """A fake passwd/group database."""

    def __init__(self, users: dict[str, int], groups: dict[str, int]) -> None:
        self.users = users
        self.groups = groups
        self.asked: list[str] = []

    def getpwnam(self, name: str) -> object:
        self.asked.append(name)
        return types.SimpleNamespace(pw_uid=self.users[name])

    def getgrnam(self, name: str) -> object:
        self.asked.append(name)
        return types.SimpleNamespace(gr_gid=self.groups[name])


def _FullDb() -> _Db:
    return _Db({"gnt-masterd": 101, "gnt-confd": 102, "gnt-rapi": 103, "root": 0},
               {"gnt-masterd": 201, "gnt-confd": 202, "gnt-rapi": 203, "root": 0,
                "gnt-daemons": 204, "gnt-admin": 205})


def test_names_from_prefixes():
    names = runtime.GetNames({"GANETI_USER_PREFIX": "x-", "GANETI_GROUP_PREFIX": "y-"})
    assert names.masterd_user == "x-masterd" and names.masterd_group == "y-masterd"
    assert names.rapi_user == "x-rapi" and names.admin_group == "y-admin"
    assert names.daemons_group == "y-daemons" and names.noded_user == "root"
    default = runtime.GetNames({})
    assert default.confd_user == constants.CONFD_USER
    assert default.admin_group == constants.ADMIN_GROUP


def test_modes():
    assert runtime.Mode({**SEPARATE}) == runtime.MODE_SEPARATE
    assert runtime.Mode({**SEPARATE, "GANETI_ROOTDIR": "/tmp/vc/node1"}) == \
        runtime.MODE_VIRTUAL
    assert runtime.Mode({**SEPARATE, "GANETI_ROOTDIR": "/tmp/vc/node1",
                         "GANETI_PRIVSEP": "1"}) == runtime.MODE_SEPARATE
    assert runtime.Mode({"GANETI_USER_PREFIX": "root"}) == runtime.MODE_ROOT


def test_virtual_cluster_looks_nobody_up():
    db = _Db({}, {})
    ents = runtime.GetEnts({"GANETI_ROOTDIR": "/tmp/vc/node1"}, db.getpwnam,
                           db.getgrnam)
    assert db.asked == []
    assert ents.masterd_uid == ents.rapi_uid == ents.noded_uid == os.getuid()
    assert ents.admin_gid == ents.confd_gid == os.getgid()


def test_ents_and_identities():
    db = _FullDb()
    ents = runtime.GetEnts(SEPARATE, db.getpwnam, db.getgrnam)
    assert (ents.masterd_uid, ents.confd_gid, ents.admin_gid) == (101, 202, 205)
    ident = runtime.DaemonIdentity(constants.MASTERD, SEPARATE, db.getpwnam, db.getgrnam)
    assert (ident.user, ident.uid, ident.gid) == ("gnt-masterd", 101, 201)
    assert ident.groups == (202, 204, 205)
    ident = runtime.DaemonIdentity(constants.CONFD, SEPARATE, db.getpwnam, db.getgrnam)
    assert (ident.uid, ident.gid, ident.groups) == (102, 202, (204,))
    ident = runtime.DaemonIdentity(constants.RAPI, SEPARATE, db.getpwnam, db.getgrnam)
    assert (ident.uid, ident.gid, ident.groups) == (103, 203, (204, 205))
    ident = runtime.DaemonIdentity(constants.NODED, SEPARATE, db.getpwnam, db.getgrnam)
    assert (ident.uid, ident.gid) == (0, 0)


def test_missing_users_named():
    db = _FullDb()
    del db.users["gnt-rapi"]
    del db.groups["gnt-admin"]
    with pytest.raises(errors.ConfigurationError) as err:
        runtime.GetEnts(SEPARATE, db.getpwnam, db.getgrnam)
    assert "user gnt-rapi" in str(err.value)
    assert "group gnt-admin" in str(err.value)
    assert "ensure-users" in str(err.value)


class _Ops:
    """Records the identity calls DropPrivileges makes."""

    def __init__(self, euid: int = 0, regain: bool = False, fail: bool = False):
        self.euid = euid
        self.regain = regain
        self.fail = fail
        self.calls: list[tuple] = []

    def geteuid(self) -> int:
        return self.euid

    def setgroups(self, groups: list[int]) -> None:
        self.calls.append(("setgroups", tuple(groups)))

    def setresgid(self, *gids: int) -> None:
        self.calls.append(("setresgid", gids))

    def setresuid(self, *uids: int) -> None:
        if self.fail:
            raise PermissionError(1, "Operation not permitted")
        self.calls.append(("setresuid", uids))

    def setuid(self, uid: int) -> None:
        if not self.regain:
            raise PermissionError(1, "Operation not permitted")
        self.calls.append(("setuid", uid))


@pytest.fixture
def fake_db(monkeypatch):
    db = _FullDb()
    monkeypatch.setattr(runtime.pwd, "getpwnam", db.getpwnam)
    monkeypatch.setattr(runtime.grp, "getgrnam", db.getgrnam)
    monkeypatch.setattr(runtime, "GetEnts", lambda environ=None, getpwnam=None,
                        getgrnam=None: runtime._Resolve(runtime.GetNames(environ),
                                                        db.getpwnam, db.getgrnam))
    return db


def test_drop_sets_every_id(fake_db):
    ops = _Ops()
    ident = runtime.DropPrivileges(constants.CONFD, SEPARATE, _ops=ops)
    assert ident is not None and ident.uid == 102
    # Groups first (needs root), then gid, then uid: real, effective and saved
    assert ops.calls == [("setgroups", (204,)), ("setresgid", (202, 202, 202)),
                         ("setresuid", (102, 102, 102))]


def test_drop_refuses_to_serve_if_root_is_regained(fake_db):
    with pytest.raises(runtime.PrivilegeError, match="become root"):
        runtime.DropPrivileges(constants.RAPI, SEPARATE, _ops=_Ops(regain=True))


def test_drop_failure_is_an_error(fake_db):
    with pytest.raises(runtime.PrivilegeError, match="Cannot switch to user gnt-rapi"):
        runtime.DropPrivileges(constants.RAPI, SEPARATE, _ops=_Ops(fail=True))


def test_drop_wrong_user(fake_db):
    with pytest.raises(runtime.PrivilegeError, match="as root or as user gnt-masterd"):
        runtime.DropPrivileges(constants.MASTERD, SEPARATE, _ops=_Ops(euid=4242))
    # Started as its own user already (start-stop-daemon --chuid): fine
    assert runtime.DropPrivileges(constants.MASTERD, SEPARATE, _ops=_Ops(euid=101)) is None


def test_drop_missing_user_is_an_error(monkeypatch):
    db = _FullDb()
    del db.users["gnt-confd"]
    monkeypatch.setattr(runtime, "GetEnts", lambda environ=None, getpwnam=None,
                        getgrnam=None: runtime._Resolve(runtime.GetNames(environ),
                                                        db.getpwnam, db.getgrnam))
    with pytest.raises(runtime.PrivilegeError, match="user gnt-confd"):
        runtime.DropPrivileges(constants.CONFD, SEPARATE, _ops=_Ops())


def test_no_drop_in_virtual_cluster_or_for_noded():
    ops = _Ops()
    assert runtime.DropPrivileges(constants.RAPI, {"GANETI_ROOTDIR": "/x/node1"},
                                  _ops=ops) is None
    assert runtime.DropPrivileges(constants.NODED, SEPARATE, _ops=ops) is None
    assert runtime.DropPrivileges(constants.RAPI, {"GANETI_USER_PREFIX": "root"},
                                  _ops=ops) is None
    assert ops.calls == []


def test_check_access(tmp_path):
    ok = tmp_path / "ok"
    ok.write_text("x")
    runtime.CheckAccess([(str(ok), os.R_OK), (str(tmp_path / "new"), os.W_OK)])
    if os.geteuid() == 0:
        return  # root may use anything; the integration test covers the rest
    locked = tmp_path / "locked"
    locked.write_text("x")
    locked.chmod(0o200)
    with pytest.raises(runtime.PrivilegeError) as err:
        runtime.CheckAccess([(str(locked), os.R_OK)])
    assert str(locked) in str(err.value) and "mode 0200" in str(err.value)


def test_check_access_names_file_as_non_root(tmp_path):
    """What a daemon that cannot read a file says (run as a non-root uid)."""
    tmp_path.chmod(0o755)
    for parent in tmp_path.parents:
        if os.geteuid() == 0 and parent.stat().st_mode & 0o005 != 0o005:
            tmp_path = type(tmp_path)(tempfile.mkdtemp(dir="/tmp"))
            tmp_path.chmod(0o755)
            break
    locked = tmp_path / "locked"
    locked.write_text("x")
    locked.chmod(0o000)
    if os.geteuid() == 0:
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                os.setresuid(65534, 65534, 65534)
                try:
                    runtime.CheckAccess([(str(locked), os.R_OK)])
                except runtime.PrivilegeError as err:
                    code = 0 if str(locked) in str(err) and "read" in str(err) else 2
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        if str(tmp_path).startswith("/tmp/tmp"):
            shutil.rmtree(tmp_path)
        assert os.waitstatus_to_exitcode(status) == 0
    else:
        with pytest.raises(runtime.PrivilegeError, match="Cannot read"):
            runtime.CheckAccess([(str(locked), os.R_OK)])
