"""Who each daemon runs as: users, groups and the privilege drop.

Privilege separation (seed 000; Ganeti's ``doc/security.rst``): the master
daemon, confd and RAPI run as their own unprivileged users; the node
daemon stays root. The names are Ganeti's, made of a user prefix and a
group prefix (both ``gnt-`` by default):

=============  ==============  ===============  ==============================
daemon         user            primary group    supplementary groups
=============  ==============  ===============  ==============================
masterd        gnt-masterd     gnt-masterd      gnt-daemons, gnt-confd,
                                                gnt-admin
confd          gnt-confd       gnt-confd        gnt-daemons
rapi           gnt-rapi        gnt-rapi         gnt-daemons, gnt-admin
noded          root            root             (root's own)
=============  ==============  ===============  ==============================

Our master daemon also plays the part of Ganeti's ``ganeti-luxid`` (it
answers the query socket), so there is no separate ``gnt-luxid`` user.
``gnt-admin`` is the group whose members may run the ``gnt-*`` tools (the
luxi sockets belong to it); the master daemon is in ``gnt-confd`` so that
it can give config.data to confd's group, and in ``gnt-admin`` so that it
can give its sockets to that group. The supplementary groups come from
this table, not from ``/etc/group``, so a daemon's groups are exactly
these whatever the administrator's group file says.

The prefixes are chosen at install time (``make install USER_PREFIX=...
GROUP_PREFIX=...`` writes them to ``ganeti/_buildcfg.py``, as Ganeti's
``--with-user-prefix``/``--with-group-prefix``); an install without
separation (``USER_PREFIX=root``) runs every daemon as root. The
environment variables ``GANETI_USER_PREFIX``/``GANETI_GROUP_PREFIX``
override them (for tests).

A virtual cluster (``GANETI_ROOTDIR`` set, seed 004) never switches users
and never looks a user up: every daemon user and group is the invoking
user's. ``GANETI_PRIVSEP=1`` applies the installed separation under a node
root as well, for tests that run a single rooted node with real users.
"""

from __future__ import annotations

import dataclasses
import grp
import logging
import os
import pwd
from collections.abc import Callable, Mapping
from typing import Any

from ganeti import constants, errors

#: Environment variables (tests): prefixes, and separation under a node root
USER_PREFIX_ENV = "GANETI_USER_PREFIX"
GROUP_PREFIX_ENV = "GANETI_GROUP_PREFIX"
PRIVSEP_ENV = "GANETI_PRIVSEP"

#: The prefix meaning "no separation: every daemon runs as root"
NO_SEPARATION = "root"

#: Default prefixes (Ganeti's packages use these)
DEFAULT_USER_PREFIX = "gnt-"
DEFAULT_GROUP_PREFIX = "gnt-"

#: Modes of :func:`Mode`
MODE_VIRTUAL = "virtual"
MODE_ROOT = "root"
MODE_SEPARATE = "separate"


def _BuildPrefixes() -> tuple[str, str]:
    try:
        from ganeti import _buildcfg  # type: ignore[attr-defined]
    except ImportError:
        return DEFAULT_USER_PREFIX, DEFAULT_GROUP_PREFIX
    return (getattr(_buildcfg, "USER_PREFIX", DEFAULT_USER_PREFIX),
            getattr(_buildcfg, "GROUP_PREFIX", DEFAULT_GROUP_PREFIX))


@dataclasses.dataclass(frozen=True)
class Names:
    """The names of the daemon users and groups."""

    masterd_user: str
    masterd_group: str
    confd_user: str
    confd_group: str
    rapi_user: str
    rapi_group: str
    noded_user: str
    noded_group: str
    daemons_group: str
    admin_group: str

    def Users(self) -> list[str]:
        """Every user name, without repeats, in table order."""
        return list(dict.fromkeys([self.masterd_user, self.confd_user,
                                   self.rapi_user, self.noded_user]))

    def Groups(self) -> list[str]:
        """Every group name, without repeats, in table order."""
        return list(dict.fromkeys([
            self.masterd_group, self.confd_group, self.rapi_group,
            self.noded_group, self.daemons_group, self.admin_group]))


def GetNames(environ: Mapping[str, str] | None = None) -> Names:
    """The daemon user and group names for the installed prefixes."""
    environ = os.environ if environ is None else environ
    build_user, build_group = _BuildPrefixes()
    user_prefix = environ.get(USER_PREFIX_ENV, build_user)
    group_prefix = environ.get(GROUP_PREFIX_ENV, build_group)
    if user_prefix == NO_SEPARATION:
        return Names(*(["root"] * 10))

    def _User(name: str) -> str:
        return user_prefix + name

    def _Group(name: str) -> str:
        return group_prefix + name
    return Names(masterd_user=_User("masterd"), masterd_group=_Group("masterd"),
                 confd_user=_User("confd"), confd_group=_Group("confd"),
                 rapi_user=_User("rapi"), rapi_group=_Group("rapi"),
                 noded_user=constants.NODED_USER, noded_group=constants.NODED_GROUP,
                 daemons_group=_Group("daemons"), admin_group=_Group("admin"))


def Mode(environ: Mapping[str, str] | None = None) -> str:
    """How daemons run here: :data:`MODE_VIRTUAL` (a virtual-cluster node:
    everything is the invoking user's), :data:`MODE_ROOT` (installed
    without separation) or :data:`MODE_SEPARATE`."""
    if environ is None:
        # The node root in force is pathutils' (tests may set it in-process)
        from ganeti import pathutils
        environ = os.environ
        virtual = pathutils.IsVirtualCluster()
    else:
        virtual = environ.get(constants.GANETI_ROOTDIR_ENV, "") not in ("", "/")
    if virtual and environ.get(PRIVSEP_ENV) != "1":
        return MODE_VIRTUAL
    if GetNames(environ).masterd_user == "root":
        return MODE_ROOT
    return MODE_SEPARATE


@dataclasses.dataclass(frozen=True)
class Ents:
    """The resolved user and group ids of :class:`Names`."""

    masterd_uid: int
    masterd_gid: int
    confd_uid: int
    confd_gid: int
    rapi_uid: int
    rapi_gid: int
    noded_uid: int
    noded_gid: int
    daemons_gid: int
    admin_gid: int


def _Resolve(names: Names, getpwnam: Callable[[str], Any],
             getgrnam: Callable[[str], Any]) -> Ents:
    missing_users = []
    uids = {}
    for user in names.Users():
        try:
            uids[user] = getpwnam(user).pw_uid
        except KeyError:
            missing_users.append(user)
    missing_groups = []
    gids = {}
    for group in names.Groups():
        try:
            gids[group] = getgrnam(group).gr_gid
        except KeyError:
            missing_groups.append(group)
    if missing_users or missing_groups:
        what = []
        if missing_users:
            what.append("user" + ("s" if len(missing_users) > 1 else "") + " "
                        + ", ".join(missing_users))
        if missing_groups:
            what.append("group" + ("s" if len(missing_groups) > 1 else "") + " "
                        + ", ".join(missing_groups))
        raise errors.ConfigurationError(
            f"Daemon {' and '.join(what)} missing on this machine; create them"
            " with 'tools/ensure-users' (see doc/install.rst)")
    return Ents(masterd_uid=uids[names.masterd_user],
                masterd_gid=gids[names.masterd_group],
                confd_uid=uids[names.confd_user], confd_gid=gids[names.confd_group],
                rapi_uid=uids[names.rapi_user], rapi_gid=gids[names.rapi_group],
                noded_uid=uids[names.noded_user], noded_gid=gids[names.noded_group],
                daemons_gid=gids[names.daemons_group],
                admin_gid=gids[names.admin_group])


_cache: dict[tuple[str, Names], Ents] = {}


def GetEnts(environ: Mapping[str, str] | None = None,
            getpwnam: Callable[[str], Any] = pwd.getpwnam,
            getgrnam: Callable[[str], Any] = grp.getgrnam) -> Ents:
    """The ids of every daemon user and group here.

    In a virtual cluster all are the invoking user's, looked up nowhere.

    @raise errors.ConfigurationError: naming the users and groups that do
        not exist
    """
    mode = Mode(environ)
    if mode == MODE_VIRTUAL:
        uid, gid = os.getuid(), os.getgid()
        return Ents(uid, gid, uid, gid, uid, gid, uid, gid, gid, gid)
    if mode == MODE_ROOT:
        return Ents(0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
    names = GetNames(environ)
    key = (mode, names)
    if getpwnam is pwd.getpwnam and key in _cache:
        return _cache[key]
    ents = _Resolve(names, getpwnam, getgrnam)
    if getpwnam is pwd.getpwnam:
        _cache[key] = ents
    return ents


def ResetCache() -> None:
    """Forget resolved ids (after users were added; tests)."""
    _cache.clear()


@dataclasses.dataclass(frozen=True)
class Identity:
    """Whom a daemon runs as."""

    daemon: str
    user: str
    uid: int
    gid: int
    groups: tuple[int, ...]


def DaemonIdentity(daemon: str, environ: Mapping[str, str] | None = None,
                   getpwnam: Callable[[str], Any] = pwd.getpwnam,
                   getgrnam: Callable[[str], Any] = grp.getgrnam) -> Identity:
    """The user, group and supplementary groups of ``daemon`` (see the
    module's table)."""
    ents = GetEnts(environ, getpwnam, getgrnam)
    names = GetNames(environ)
    if daemon == constants.MASTERD:
        return Identity(daemon, names.masterd_user, ents.masterd_uid, ents.masterd_gid,
                        _Groups(ents.masterd_gid, ents.daemons_gid, ents.confd_gid,
                                ents.admin_gid))
    if daemon == constants.CONFD:
        return Identity(daemon, names.confd_user, ents.confd_uid, ents.confd_gid,
                        _Groups(ents.confd_gid, ents.daemons_gid))
    if daemon == constants.RAPI:
        return Identity(daemon, names.rapi_user, ents.rapi_uid, ents.rapi_gid,
                        _Groups(ents.rapi_gid, ents.daemons_gid, ents.admin_gid))
    if daemon == constants.NODED:
        return Identity(daemon, names.noded_user, ents.noded_uid, ents.noded_gid, ())
    raise errors.ProgrammerError(f"Unknown daemon '{daemon}'")


def RunsAs(daemon: str) -> bool:
    """Whether this process runs as ``daemon``'s user (by name; looks up
    only this process's own user)."""
    try:
        me = pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return False
    names = GetNames()
    return me == {constants.MASTERD: names.masterd_user,
                  constants.CONFD: names.confd_user,
                  constants.RAPI: names.rapi_user,
                  constants.NODED: names.noded_user}.get(daemon)


def _Groups(primary: int, *others: int) -> tuple[int, ...]:
    return tuple(sorted({gid for gid in others if gid != primary}))


def FileOwnerIds(owner: str, group: str) -> tuple[int, int]:
    """(uid, gid) for a file a daemon uses, by role (``masterd``, ``confd``,
    ``rapi``, ``noded``; groups also ``daemons``, ``admin``), for a writer
    running as root; -1 where ownership is to be left as it is: not root,
    a virtual cluster, an install without separation, or daemon users that
    do not exist (the daemons refuse to start then, and ensure-dirs sets
    the owners once they exist).
    """
    if os.geteuid() != 0 or Mode() != MODE_SEPARATE:
        return -1, -1
    try:
        ents = GetEnts()
    except errors.ConfigurationError as err:
        logging.debug("Leaving file ownership alone: %s", err)
        return -1, -1
    return getattr(ents, f"{owner}_uid"), getattr(ents, f"{group}_gid")


class PrivilegeError(errors.GenericError):
    """A daemon could not become the user it must run as."""


def DropPrivileges(daemon: str, environ: Mapping[str, str] | None = None,
                   _ops: Any = os) -> Identity | None:
    """Become ``daemon``'s user for good: real, effective and saved uid and
    gid, and exactly the supplementary groups of the table.

    Nothing happens in a virtual cluster, in an install without separation
    or for the node daemon. Started as a user other than root, the daemon
    must already be its own user (as ``start-stop-daemon --chuid`` starts
    it). Returns the identity switched to, or None when nothing changed.

    @raise PrivilegeError: the users are missing, the switch failed, the
        process could become root again, or it runs as the wrong user
    """
    if Mode(environ) != MODE_SEPARATE or daemon == constants.NODED:
        return None
    try:
        ident = DaemonIdentity(daemon, environ)
    except errors.ConfigurationError as err:
        raise PrivilegeError(f"Cannot drop privileges: {err}") from err
    euid = _ops.geteuid()
    if euid != 0:
        if euid != ident.uid:
            raise PrivilegeError(
                f"{daemon} must be started as root or as user {ident.user}"
                f" (uid {ident.uid}), not as uid {euid}")
        return None
    try:
        _ops.setgroups(list(ident.groups))
        _ops.setresgid(ident.gid, ident.gid, ident.gid)
        _ops.setresuid(ident.uid, ident.uid, ident.uid)
    except OSError as err:
        raise PrivilegeError(f"Cannot switch to user {ident.user} (uid {ident.uid},"
                             f" gid {ident.gid}): {err}") from err
    if ident.uid != 0:
        try:
            _ops.setuid(0)
        except PermissionError:
            pass
        else:
            raise PrivilegeError(f"Could still become root after switching to user"
                                 f" {ident.user}; refusing to serve")
    logging.info("Running as user %s (uid %d, gid %d, groups %s)", ident.user,
                 ident.uid, ident.gid, ",".join(map(str, ident.groups)) or "none")
    return ident


def CheckAccess(paths: list[tuple[str, int]]) -> None:
    """After the drop: check that each (path, access mode) is allowed.

    ``access mode`` is an :func:`os.access` mode (``os.R_OK``, ``os.W_OK``
    ...). For a path that does not exist yet the directory holding it must
    be writable.

    @raise PrivilegeError: naming the first file the daemon cannot use, and
        why
    """
    for path, access in paths:
        try:
            os.stat(path)
            exists = True
        except FileNotFoundError:
            exists = False
        except PermissionError as err:
            raise PrivilegeError(
                f"Cannot reach {path} as uid {os.geteuid()}: {err.strerror} (a"
                " directory above it is closed to this user); run"
                " 'tools/ensure-dirs' to fix the permissions") from err
        if exists:
            if not os.access(path, access):
                wants = "/".join(word for bit, word in ((os.R_OK, "read"),
                                                        (os.W_OK, "write"),
                                                        (os.X_OK, "search"))
                                 if access & bit)
                raise PrivilegeError(
                    f"Cannot {wants} {path} as uid {os.geteuid()}: {_Describe(path)};"
                    " run 'tools/ensure-dirs' to fix the permissions")
        else:
            parent = os.path.dirname(path)
            if os.path.isdir(parent) and not os.access(parent, os.W_OK | os.X_OK):
                raise PrivilegeError(
                    f"Cannot create {path} as uid {os.geteuid()}: {_Describe(parent)};"
                    " run 'tools/ensure-dirs' to fix the permissions")


def _Describe(path: str) -> str:
    st = os.stat(path)
    return (f"it belongs to {_UserName(st.st_uid)}:{_GroupName(st.st_gid)}"
            f" with mode {st.st_mode & 0o7777:04o}")


def _UserName(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _GroupName(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)
