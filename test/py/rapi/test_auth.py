"""ganeti.rapi.auth: the users file, password schemes, basic authentication."""

from __future__ import annotations

import base64
import hashlib
import os

import pytest

from ganeti import errors, http
from ganeti.rapi import auth

SAMPLE = """
# Give Jack and Fred read-only access
jack abc123
fred {cleartext}foo555

# Give write access to an imaginary instance creation script
autocreator xyz789 write

# Hashed password for Jessica
jessica {HA1}%s write
monitoring {ha1}%s read
superuser {HA1}ec018ffe72b8e75bb4d508ed5b6d079c read,write
broken line with too many fields
odd pw read,bogus
""" % (hashlib.md5(b"jessica:Ganeti Remote API:secret").hexdigest(),
       hashlib.md5(b"monitoring:Ganeti Remote API:mon").hexdigest().upper())


def _Users():
    warnings = []
    return auth.ParseUsersFile(SAMPLE, warnings.append), warnings


def _Basic(user, password):
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_parse_users_file():
    users, warnings = _Users()
    assert sorted(users) == ["autocreator", "fred", "jack", "jessica", "monitoring",
                             "odd", "superuser"]
    assert users["jack"].options == frozenset()
    assert users["autocreator"].options == {"write"}
    assert users["superuser"].options == {"read", "write"}
    assert users["odd"].options == {"read"}
    assert any("line 13" in w and "6 fields" in w for w in warnings), warnings
    assert any("'bogus'" in w for w in warnings)


def test_ha1_is_md5_of_user_realm_password():
    assert auth.HA1Hash("jack", "abc123") == \
        hashlib.md5(b"jack:Ganeti Remote API:abc123").hexdigest()


@pytest.mark.parametrize("name,password,ok", [
    ("jack", "abc123", True), ("jack", "abc124", False),
    ("fred", "foo555", True), ("fred", "{cleartext}foo555", False),
    ("jessica", "secret", True), ("jessica", "Secret", False),
    # Upper-case hex and a lower-case scheme work too
    ("monitoring", "mon", True),
    ("superuser", "", False),
])
def test_check_password(name, password, ok):
    users, _ = _Users()
    assert auth.CheckPassword(users[name], password) is ok


def test_unknown_scheme_never_matches():
    user = auth.PasswordFileUser("x", "{SHA}abc", frozenset())
    assert not auth.CheckPassword(user, "abc")
    assert not auth.CheckPassword(user, "{SHA}abc")


def test_write_implies_read():
    users, _ = _Users()
    assert users["autocreator"].HasAccess(["read"])
    assert not users["monitoring"].HasAccess(["write"])
    assert not users["jack"].HasAccess(["read"])


@pytest.mark.parametrize("header,expected", [
    (None, None), ("", None), ("Digest abc", None), ("Basic !!!", None),
    ("Basic " + base64.b64encode(b"nocolon").decode(), None),
    (_Basic("a", "b:c"), ("a", "b:c")),
    ("basic  " + base64.b64encode(b"u:").decode(), ("u", "")),
])
def test_parse_basic_auth(header, expected):
    assert auth.ParseBasicAuth(header) == expected


def test_format_and_write_user_entry(tmp_path):
    path = str(tmp_path / "rapi" / "users")
    auth.WriteUserEntry(path, "admin", "pw1", ["write"])
    auth.WriteUserEntry(path, "ro", "pw2", ["read"], hashed=False)
    auth.WriteUserEntry(path, "admin", "pw3", ["read", "write"])
    text = open(path).read()
    assert text.count("admin ") == 1
    assert f"admin {{HA1}}{auth.HA1Hash('admin', 'pw3')} read,write" in text
    assert "ro {cleartext}pw2 read" in text
    assert oct(os.stat(path).st_mode & 0o777) == "0o640"
    users = auth.ParseUsersFile(text)
    assert auth.CheckPassword(users["admin"], "pw3")
    assert auth.CheckPassword(users["ro"], "pw2")


@pytest.mark.parametrize("name,password,options", [
    ("", "pw", []), ("a b", "pw", []), ("#x", "pw", []), ("a", "p w", []),
    ("a", "", []), ("a", "pw", ["admin"]),
])
def test_format_user_line_refuses_bad_values(name, password, options):
    with pytest.raises(errors.ParameterError):
        auth.FormatUserLine(name, password, options)


def test_users_file_reloads_on_change(tmp_path):
    path = tmp_path / "users"
    users = auth.UsersFile(str(path))
    assert users.Get() == {}
    path.write_text("a pw1 write\n")
    assert auth.CheckPassword(users.GetUser("a"), "pw1")
    # Same size, new inode: still noticed
    tmp = tmp_path / "users.new"
    tmp.write_text("a pw2 write\n")
    os.rename(tmp, path)
    assert auth.CheckPassword(users.GetUser("a"), "pw2")
    path.unlink()
    assert users.GetUser("a") is None


def test_authorize(tmp_path):
    path = tmp_path / "users"
    path.write_text("w wpw write\nr rpw read\nn npw\n")
    users = auth.UsersFile(str(path))
    # No access needed and not required: anonymous
    assert auth.Authorize(users, None, [], False) is None
    assert auth.Authorize(users, _Basic("n", "npw"), [], True) == "n"
    with pytest.raises(http.HttpUnauthorized) as err:
        auth.Authorize(users, None, [], True)
    assert err.value.headers["WWW-Authenticate"] == 'Basic realm="Ganeti Remote API"'
    for header in (_Basic("w", "bad"), _Basic("nobody", "x"), "Bearer x"):
        with pytest.raises(http.HttpUnauthorized) as err:
            auth.Authorize(users, header, ["write"], False)
        assert "WWW-Authenticate" in err.value.headers
    assert auth.Authorize(users, _Basic("w", "wpw"), ["write"], False) == "w"
    assert auth.Authorize(users, _Basic("w", "wpw"), ["write", "read"], False) == "w"
    assert auth.Authorize(users, _Basic("r", "rpw"), ["write", "read"], False) == "r"
    for name, pw in (("r", "rpw"), ("n", "npw")):
        with pytest.raises(http.HttpForbidden):
            auth.Authorize(users, _Basic(name, pw), ["write"], False)
