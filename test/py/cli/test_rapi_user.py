"""gnt-cluster rapi-user: argument handling and the users file it writes."""

from __future__ import annotations

import io
import os
import types

import pytest

from ganeti import constants, errors, pathutils
from ganeti.client import gnt_cluster, rapi_user
from ganeti.rapi import auth
from ganeti.utils import x509


def _Opts(**kwargs):
    values = {"password_file": None, "password_stdin": False, "read_only": False,
              "no_headers": False}
    values.update(kwargs)
    return types.SimpleNamespace(**values)


@pytest.fixture
def users_file(tmp_path, monkeypatch):
    path = str(tmp_path / "rapi" / "users")
    monkeypatch.setattr(pathutils, "RAPI_USERS_FILE", path)
    return path


class _Uploads:
    def __init__(self, failed=None):
        self.calls: list[str] = []
        self.failed = failed or {}

    def __call__(self, path):
        self.calls.append(path)
        return self.failed


@pytest.mark.parametrize("args,opts,match", [
    ([], {}, "needs an action"),
    (["frob", "x"], {}, "Unknown rapi-user action 'frob'"),
    (["add"], {"password_stdin": True}, "exactly one user name"),
    (["add", "a", "b"], {"password_stdin": True}, "exactly one user name"),
    (["add", "bob"], {}, "exactly one of --password-file"),
    (["add", "bob"], {"password_stdin": True, "password_file": "/x"}, "exactly one of"),
    (["add", "#bob"], {"password_stdin": True}, "Invalid RAPI user name '#bob'"),
    (["add", "b ob"], {"password_stdin": True}, "Invalid RAPI user name"),
    (["remove"], {}, "exactly one user name"),
    (["remove", "bob"], {"read_only": True}, "apply to 'add' only"),
    (["list", "bob"], {}, "takes no argument"),
    (["list"], {"password_stdin": True}, "apply to 'add' only"),
])
def test_check_args_refusals(args, opts, match):
    with pytest.raises(errors.OpPrereqError, match=match):
        rapi_user.CheckArgs(_Opts(**opts), args)


def test_check_args_accepts():
    assert rapi_user.CheckArgs(_Opts(password_stdin=True), ["add", "bob"]) == ("add", "bob")
    assert rapi_user.CheckArgs(_Opts(), ["remove", "bob"]) == ("remove", "bob")
    assert rapi_user.CheckArgs(_Opts(), ["list"]) == ("list", None)


def test_add_list_remove(users_file, capsys):
    uploads = _Uploads()
    opts = _Opts(password_stdin=True)
    assert rapi_user.RapiUser(opts, ["add", "alice"], uploads,
                              stdin=io.StringIO("s3cret\n")) == constants.EXIT_SUCCESS
    ro = _Opts(password_stdin=True, read_only=True)
    assert rapi_user.RapiUser(ro, ["add", "bob"], uploads,
                              stdin=io.StringIO("pw2")) == constants.EXIT_SUCCESS
    assert uploads.calls == [users_file, users_file]
    text = open(users_file, encoding="utf-8").read()
    assert "s3cret" not in text and "pw2" not in text
    users = auth.ParseUsersFile(text)
    assert auth.CheckPassword(users["alice"], "s3cret")
    assert users["alice"].options == {"write"}
    assert users["bob"].options == {"read"}
    assert os.stat(users_file).st_mode & 0o777 == 0o640
    capsys.readouterr()
    rapi_user.RapiUser(_Opts(), ["list"], uploads)
    out = capsys.readouterr().out
    assert out.splitlines() == ["Name Options", "alice write", "bob read"]
    rapi_user.RapiUser(_Opts(no_headers=True), ["list"], uploads)
    assert capsys.readouterr().out.splitlines() == ["alice write", "bob read"]
    # Replacing a user keeps one line
    rapi_user.RapiUser(opts, ["add", "alice"], uploads, stdin=io.StringIO("new\n"))
    users = auth.ParseUsersFile(open(users_file, encoding="utf-8").read())
    assert auth.CheckPassword(users["alice"], "new")
    assert rapi_user.RapiUser(_Opts(), ["remove", "alice"], uploads) == 0
    assert list(auth.ParseUsersFile(open(users_file, encoding="utf-8").read())) == ["bob"]
    with pytest.raises(errors.OpPrereqError, match="'alice' does not exist"):
        rapi_user.RapiUser(_Opts(), ["remove", "alice"], uploads)


def test_comments_survive_remove(users_file):
    os.makedirs(os.path.dirname(users_file))
    with open(users_file, "w", encoding="utf-8") as fd:
        fd.write("# admins\nalice pw write\nbob pw\n")
    assert rapi_user.RemoveUserEntry(users_file, "alice")
    assert open(users_file, encoding="utf-8").read() == "# admins\nbob pw\n"


def test_password_sources(tmp_path, users_file):
    pwfile = tmp_path / "pw"
    pwfile.write_text("frompw\nsecond line\n")
    assert rapi_user.ReadPassword(_Opts(password_file=str(pwfile))) == "frompw"
    with pytest.raises(errors.OpPrereqError, match="Cannot read password file"):
        rapi_user.ReadPassword(_Opts(password_file=str(tmp_path / "missing")))
    pwfile.write_text("\n")
    with pytest.raises(errors.OpPrereqError, match="Empty password"):
        rapi_user.ReadPassword(_Opts(password_file=str(pwfile)))
    with pytest.raises(errors.OpPrereqError, match="white space"):
        rapi_user.ReadPassword(_Opts(password_stdin=True), io.StringIO("a b\n"))
    pwfile.write_bytes(b"x" * (rapi_user.MAX_PASSWORD_BYTES + 1))
    with pytest.raises(errors.OpPrereqError, match="longer than"):
        rapi_user.ReadPassword(_Opts(password_file=str(pwfile)))
    # Bad input leaves no file behind
    with pytest.raises(errors.OpPrereqError):
        rapi_user.RapiUser(_Opts(password_stdin=True), ["add", "x"], _Uploads(),
                           stdin=io.StringIO(""))
    assert not os.path.exists(users_file)


def test_upload_failure_is_exit_failure(users_file, capsys):
    uploads = _Uploads({"node2: users": "unreachable"})
    assert rapi_user.RapiUser(_Opts(password_stdin=True), ["add", "a"], uploads,
                              stdin=io.StringIO("pw")) == constants.EXIT_FAILURE
    assert "unreachable" in capsys.readouterr().err


def test_read_rapi_certificate(tmp_path):
    good = tmp_path / "good.pem"
    x509.GenerateSelfSignedSslCert(str(good), 1)
    assert "PRIVATE KEY" in rapi_user.ReadRapiCertificate(str(good))
    certonly = tmp_path / "cert.pem"
    text = good.read_text()
    certonly.write_text(text[text.index("-----BEGIN CERTIFICATE"):])
    for path, match in ((tmp_path / "missing", "Cannot read"),
                        (certonly, "certificate and its private key")):
        with pytest.raises(errors.OpPrereqError, match=match):
            rapi_user.ReadRapiCertificate(str(path))
    broken = tmp_path / "broken.pem"
    broken.write_text("-----BEGIN CERTIFICATE-----\nxx\n-----END CERTIFICATE-----\n"
                      "-----BEGIN PRIVATE KEY-----\nyy\n-----END PRIVATE KEY-----\n")
    with pytest.raises(errors.OpPrereqError, match="not a valid certificate"):
        rapi_user.ReadRapiCertificate(str(broken))


def test_command_registered():
    cmd = gnt_cluster.commands["rapi-user"]
    assert cmd[0] is rapi_user.RapiUser
    dests = {opt.kwargs["dest"] for opt in cmd[2]}
    assert {"password_file", "password_stdin", "read_only", "no_headers"} <= dests


def test_main_argument_errors(users_file, capsys):
    assert gnt_cluster.Main(["gnt-cluster", "rapi-user", "frob"]) != 0
    assert gnt_cluster.Main(["gnt-cluster", "rapi-user", "add", "a", "b"]) != 0
    assert gnt_cluster.Main(["gnt-cluster", "rapi-user", "add", "bob"]) != 0
    assert "--password-file" in capsys.readouterr().err
    assert not os.path.exists(users_file)


def test_renew_crypto_refuses_both_rapi_options(tmp_path):
    opts = types.SimpleNamespace(new_cluster_cert=False, new_confd_hmac_key=False,
                                 new_rapi_cert=True, rapi_cert=str(tmp_path / "x"),
                                 new_cds=False, cds_file=None, new_node_certs=False,
                                 new_spice_cert=False, spice_cert=None,
                                 spice_cacert=None, new_ssh_keys=False,
                                 ssh_key_check=True, ssh_key_type=None,
                                 ssh_key_bits=None, force=True)
    renew = gnt_cluster.commands["renew-crypto"][0]
    with pytest.raises(errors.OpPrereqError, match="Only one of"):
        renew(opts, [])
    opts.new_rapi_cert = False
    with pytest.raises(errors.OpPrereqError, match="Cannot read RAPI certificate"):
        renew(opts, [])
