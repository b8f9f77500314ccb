"""RAPI users: the users file and HTTP basic authentication.

The users file (``pathutils.RAPI_USERS_FILE``) holds one user a line::

  # comment
  name password [option,option...]

The password is clear text, ``{cleartext}text`` or ``{HA1}hash`` where the
hash is the hex MD5 of ``name:Ganeti Remote API:password`` (RFC 2617's HA1);
scheme prefixes are case-insensitive. Options are ``read`` and ``write``.
:class:`UsersFile` re-reads the file whenever it changes (inode, size or
modification time), so no signal is needed after editing it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import os
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from ganeti import errors, http, runtime, utils
from ganeti.rapi import RAPI_ACCESS_ALL, RAPI_ACCESS_READ, RAPI_ACCESS_WRITE, RAPI_REALM

_SCHEME_CLEARTEXT = "cleartext"
_SCHEME_HA1 = "ha1"

#: The header a 401 answer carries
WWW_AUTHENTICATE = "WWW-Authenticate"
AUTH_CHALLENGE = f'Basic realm="{RAPI_REALM}"'


@dataclass(frozen=True)
class PasswordFileUser:
    """One user of the users file."""
    name: str
    password: str
    options: frozenset[str]

    def HasAccess(self, access: Iterable[str]) -> bool:
        """Whether the user holds one of the ``access`` options.

        ``write`` implies ``read``.
        """
        held = set(self.options)
        if RAPI_ACCESS_WRITE in held:
            held.add(RAPI_ACCESS_READ)
        return bool(held.intersection(access))


def HA1Hash(username: str, password: str, realm: str = RAPI_REALM) -> str:
    """The hex MD5 of ``username:realm:password`` (RFC 2617, 3.2.2.2)."""
    return hashlib.md5(f"{username}:{realm}:{password}".encode()).hexdigest()


def ParseUsersFile(text: str,
                   warn_fn: Callable[[str], None] = logging.warning
                   ) -> dict[str, PasswordFileUser]:
    """Parse the users file's text; bad lines are reported and skipped."""
    users: dict[str, PasswordFileUser] = {}
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        if len(parts) not in (2, 3):
            warn_fn(f"Users file line {lineno}: expected 'name password"
                    f" [options]', got {len(parts)} fields; line ignored")
            continue
        options: set[str] = set()
        if len(parts) == 3:
            for option in parts[2].split(","):
                option = option.strip().lower()
                if option in RAPI_ACCESS_ALL:
                    options.add(option)
                elif option:
                    warn_fn(f"Users file line {lineno}: unknown option"
                            f" '{option}' ignored")
        users[parts[0]] = PasswordFileUser(parts[0], parts[1], frozenset(options))
    return users


def _SplitScheme(stored: str) -> tuple[str, str]:
    """(scheme, value) of a stored password; clear text has no prefix."""
    if stored.startswith("{"):
        end = stored.find("}")
        if end > 0:
            return stored[1:end].lower(), stored[end + 1:]
        return "", stored
    return _SCHEME_CLEARTEXT, stored


def CheckPassword(user: PasswordFileUser, password: str,
                  realm: str = RAPI_REALM) -> bool:
    """Whether ``password`` is the user's password (constant-time compare)."""
    scheme, value = _SplitScheme(user.password)
    if scheme == _SCHEME_CLEARTEXT:
        return hmac.compare_digest(value.encode(), password.encode())
    if scheme == _SCHEME_HA1:
        expected = HA1Hash(user.name, password, realm)
        return hmac.compare_digest(value.lower().encode(), expected.encode())
    logging.warning("Unknown password scheme '%s' for RAPI user '%s'", scheme,
                    user.name)
    return False


def FormatUserLine(name: str, password: str,
                   options: Sequence[str] = (RAPI_ACCESS_WRITE,),
                   hashed: bool = True) -> str:
    """One users-file line; the password is stored as {HA1} unless not ``hashed``.

    @raise errors.ParameterError: for a name, password or option that the
        file cannot hold
    """
    for what, value in (("user name", name), ("password", password)):
        if not value or any(c.isspace() for c in value):
            raise errors.ParameterError(
                f"Invalid RAPI {what} {value!r}: must be non-empty and"
                " without white space")
    if name.startswith("#"):
        raise errors.ParameterError(f"Invalid RAPI user name {name!r}: must"
                                    " not start with '#'")
    bad = [opt for opt in options if opt not in RAPI_ACCESS_ALL]
    if bad:
        raise errors.ParameterError(
            f"Invalid RAPI user option(s) {', '.join(bad)}; valid:"
            f" {', '.join(sorted(RAPI_ACCESS_ALL))}")
    stored = f"{{HA1}}{HA1Hash(name, password)}" if hashed \
        else f"{{cleartext}}{password}"
    line = f"{name} {stored}"
    if options:
        line += " " + ",".join(options)
    return line


def WriteUserEntry(path: str, name: str, password: str,
                   options: Sequence[str] = (RAPI_ACCESS_WRITE,),
                   hashed: bool = True, mode: int = 0o640) -> None:
    """Add user ``name`` to the users file at ``path``, or replace its line.

    Other lines (comments included) are kept; the file is replaced
    atomically, so a running ganeti-rapi sees either version. The new file
    keeps the old one's owner and group; a first file gets its directory's
    group, so that a ganeti-rapi which dropped its privileges (its group
    owns the directory, see ensure-dirs) can still read it.
    """
    line = FormatUserLine(name, password, options, hashed)
    try:
        old = utils.ReadFile(path).splitlines()
    except FileNotFoundError:
        old = []
    kept = [raw for raw in old
            if not (raw.split() and raw.split()[0] == name)]
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, mode=0o750, exist_ok=True)
    try:
        st = os.stat(path)
        uid, gid = st.st_uid, st.st_gid
    except FileNotFoundError:
        uid, gid = -1, os.stat(directory).st_gid
    if os.geteuid() != 0:
        # Only root may give files away; others keep what they create
        uid = -1
        gid = gid if gid in os.getgroups() or gid == os.getegid() else -1
    elif runtime.FileOwnerIds("rapi", "masterd") != (-1, -1):
        # As ensure-dirs wants it: RAPI's, readable by the master daemon
        uid, gid = runtime.FileOwnerIds("rapi", "masterd")
    utils.WriteFile(path, data="\n".join(kept + [line]) + "\n", mode=mode,
                    uid=uid, gid=gid)


class UsersFile:
    """The users file, re-read when it changes (thread-safe)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._signature: tuple[int, ...] | None = None
        self._users: dict[str, PasswordFileUser] = {}

    def _Signature(self) -> tuple[int, ...] | None:
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)

    def Reload(self) -> None:
        """Read the file again now (e.g. on SIGHUP)."""
        with self._lock:
            self._signature = (-1,)
        self.Get()

    def Get(self) -> dict[str, PasswordFileUser]:
        """The current users (none while the file is missing)."""
        sig = self._Signature()
        with self._lock:
            if sig != self._signature:
                self._signature = sig
                if sig is None:
                    logging.warning("RAPI users file %s does not exist; no"
                                    " user can authenticate", self.path)
                    self._users = {}
                else:
                    try:
                        self._users = ParseUsersFile(utils.ReadFile(self.path))
                        logging.info("Read %d RAPI user(s) from %s",
                                     len(self._users), self.path)
                    except (OSError, UnicodeDecodeError) as err:
                        logging.error("Cannot read RAPI users file %s: %s",
                                      self.path, err)
                        self._users = {}
            return self._users

    def GetUser(self, name: str) -> PasswordFileUser | None:
        """The user called ``name``, or None."""
        return self.Get().get(name)


def ParseBasicAuth(header: str | None) -> tuple[str, str] | None:
    """(user, password) from an ``Authorization: Basic ...`` value, or None."""
    if not header:
        return None
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "basic" or not value.strip():
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    user, sep, password = decoded.partition(":")
    if not sep:
        return None
    return user, password


def Unauthorized(message: str) -> http.HttpUnauthorized:
    """A 401 carrying the basic-authentication challenge."""
    return http.HttpUnauthorized(message, headers={WWW_AUTHENTICATE: AUTH_CHALLENGE})


def Authorize(users: UsersFile, header: str | None, access: Sequence[str],
              require_auth: bool) -> str | None:
    """Check a request's credentials against the access a method needs.

    ``access`` lists the options of which the user needs one (empty: no
    authentication unless ``require_auth``). Returns the user name, or None
    for an anonymous request that needs none.

    @raise http.HttpUnauthorized: missing or bad credentials (401)
    @raise http.HttpForbidden: a valid user without the needed option (403)
    """
    if not (access or require_auth):
        return None
    creds = ParseBasicAuth(header)
    if creds is None:
        raise Unauthorized("Authentication required" if not header
                           else "Invalid Authorization header (expected Basic)")
    name, password = creds
    user = users.GetUser(name)
    if user is None or not CheckPassword(user, password):
        raise Unauthorized("Invalid user name or password")
    if access and not user.HasAccess(access):
        raise http.HttpForbidden(
            f"User '{name}' lacks the '{'/'.join(access)}' permission this"
            " request needs")
    return name
