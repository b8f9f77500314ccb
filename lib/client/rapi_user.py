"""``gnt-cluster rapi-user``: manage the RAPI users file (our extension).

Ganeti has no command for RAPI users (administrators edit
``rapi/users``); ours adds::

  gnt-cluster rapi-user add NAME [--password-file FILE | --password-stdin]
                                 [--read-only]
  gnt-cluster rapi-user remove NAME
  gnt-cluster rapi-user list

``add`` writes (or replaces) the user's line with an ``{HA1}`` hash and the
option ``write`` (``read`` with ``--read-only``); ``list`` shows names and
options, never passwords. After a change the file is uploaded to every
other online node (``upload_file`` over node RPC), so a master failover
keeps the users. ganeti-rapi re-reads the file when it changes. Run it on
the master node.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any, TextIO

from ganeti import constants, errors, pathutils, utils
from ganeti.cli import ToStderr, ToStdout, cli_option
from ganeti.rapi import RAPI_ACCESS_READ, RAPI_ACCESS_WRITE, auth

ACTION_ADD = "add"
ACTION_REMOVE = "remove"
ACTION_LIST = "list"
ACTIONS = (ACTION_ADD, ACTION_REMOVE, ACTION_LIST)

#: Longest password file we read (a password, not a file to slurp)
MAX_PASSWORD_BYTES = 4096


def _Inval(msg: str) -> errors.OpPrereqError:
    return errors.OpPrereqError(msg, errors.ECODE_INVAL)


def CheckArgs(opts: Any, args: list[str]) -> tuple[str, str | None]:
    """(action, name) from the command line, or OpPrereqError naming what is wrong."""
    if not args:
        raise _Inval(f"rapi-user needs an action: {', '.join(ACTIONS)}")
    action, rest = args[0], args[1:]
    if action not in ACTIONS:
        raise _Inval(f"Unknown rapi-user action '{action}' (choose from"
                     f" {', '.join(ACTIONS)})")
    password_file = getattr(opts, "password_file", None)
    password_stdin = getattr(opts, "password_stdin", False)
    read_only = getattr(opts, "read_only", False)
    if action == ACTION_LIST:
        if rest:
            raise _Inval(f"rapi-user list takes no argument, got '{' '.join(rest)}'")
        name = None
    else:
        if len(rest) != 1:
            raise _Inval(f"rapi-user {action} needs exactly one user name, got"
                         f" {len(rest)}")
        name = rest[0]
        if not name or name.startswith("#") or any(c.isspace() for c in name):
            raise _Inval(f"Invalid RAPI user name {name!r}: must be non-empty,"
                         " without white space and not start with '#'")
    if action != ACTION_ADD and (password_file or password_stdin or read_only):
        raise _Inval(f"--password-file, --password-stdin and --read-only apply to"
                     f" 'add' only, not '{action}'")
    if action == ACTION_ADD:
        if bool(password_file) == bool(password_stdin):
            raise _Inval("rapi-user add needs exactly one of --password-file FILE"
                         " and --password-stdin")
    return action, name


def ReadPassword(opts: Any, stdin: TextIO | None = None) -> str:
    """The password from ``--password-file`` or standard input (first line)."""
    if opts.password_file:
        try:
            with open(opts.password_file, "rb") as fd:
                raw = fd.read(MAX_PASSWORD_BYTES + 1)
        except OSError as err:
            raise _Inval(f"Cannot read password file '{opts.password_file}':"
                         f" {err.strerror}") from err
        if len(raw) > MAX_PASSWORD_BYTES:
            raise _Inval(f"Password file '{opts.password_file}' is longer than"
                         f" {MAX_PASSWORD_BYTES} bytes")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as err:
            raise _Inval(f"Password file '{opts.password_file}' is not UTF-8") from err
        where = f"password file '{opts.password_file}'"
    else:
        text = (stdin or sys.stdin).readline(MAX_PASSWORD_BYTES + 1)
        where = "standard input"
    password = text.split("\n", 1)[0].rstrip("\r")
    if not password:
        raise _Inval(f"Empty password in {where}")
    if any(c.isspace() for c in password):
        raise _Inval(f"The password in {where} contains white space, which the"
                     " users file cannot hold")
    return password


def RemoveUserEntry(path: str, name: str) -> bool:
    """Drop user ``name``'s line(s) from the users file; whether one was there."""
    try:
        lines = utils.ReadFile(path).splitlines()
    except FileNotFoundError:
        return False
    kept = [raw for raw in lines
            if raw.strip().startswith("#") or not raw.split()
            or raw.split()[0] != name]
    if len(kept) == len(lines):
        return False
    mode = os.stat(path).st_mode & 0o7777
    utils.WriteFile(path, data="".join(line + "\n" for line in kept), mode=mode)
    return True


def ListUsers(path: str) -> list[tuple[str, list[str]]]:
    """(name, sorted options) of every user in the file."""
    try:
        text = utils.ReadFile(path)
    except FileNotFoundError:
        return []
    users = auth.ParseUsersFile(text, warn_fn=lambda msg: ToStderr("%s", msg))
    return [(name, sorted(users[name].options)) for name in utils.NiceSort(users)]


def Distribute(path: str) -> dict[str, str]:
    """Upload the users file to every other online node; {"node: file": error}."""
    from ganeti import config, config_sync
    from ganeti.rpc.node import RpcRunner
    cfg = config.ConfigWriter(accept_foreign=True, offline=True)
    master = cfg.GetMasterNode()
    nodes = {n.uuid: n.name for n in cfg.GetAllNodesInfo().values()
             if not n.offline and n.uuid != master}
    if not nodes:
        return {}
    if not os.path.exists(path):
        # Nothing to upload: an empty file makes every node forget the users
        utils.WriteFile(path, data="", mode=0o640)
    return config_sync.UploadFiles(RpcRunner.FromConfig(cfg), list(nodes), [path],
                                   nodes)


def RapiUser(opts: Any, args: list[str],
             distribute_fn: Callable[[str], dict[str, str]] = Distribute,
             stdin: TextIO | None = None) -> int:
    """Run ``gnt-cluster rapi-user ACTION [NAME]``."""
    action, name = CheckArgs(opts, args)
    path = pathutils.RAPI_USERS_FILE
    if action == ACTION_LIST:
        users = ListUsers(path)
        if not opts.no_headers and users:
            ToStdout("%s", "Name Options")
        for user, options in users:
            ToStdout("%s %s", user, ",".join(options) or "-")
        return constants.EXIT_SUCCESS
    assert name is not None
    if action == ACTION_ADD:
        password = ReadPassword(opts, stdin)
        options = [RAPI_ACCESS_READ] if opts.read_only else [RAPI_ACCESS_WRITE]
        try:
            auth.WriteUserEntry(path, name, password, options=options, hashed=True)
        except errors.ParameterError as err:
            raise _Inval(str(err)) from err
        ToStdout("RAPI user '%s' set (%s)", name, options[0])
    else:
        if not RemoveUserEntry(path, name):
            raise errors.OpPrereqError(f"RAPI user '{name}' does not exist",
                                       errors.ECODE_NOENT)
        ToStdout("RAPI user '%s' removed", name)
    failed = distribute_fn(path)
    for what, msg in sorted(failed.items()):
        ToStderr("Copy failed for %s: %s", what, msg)
    return constants.EXIT_FAILURE if failed else constants.EXIT_SUCCESS


RAPI_USER_OPTS = [
    cli_option("--password-file", dest="password_file", default=None,
               metavar="FILE", help="Read the user's password from FILE (first line)"),
    cli_option("--password-stdin", dest="password_stdin", default=False,
               action="store_true", help="Read the password from standard input"),
    cli_option("--read-only", dest="read_only", default=False, action="store_true",
               help="Give the user read access only (default: write)"),
    cli_option("--no-headers", dest="no_headers", default=False,
               action="store_true", help="Don't display column headers (list)"),
]


# --- helpers of renew-crypto's RAPI certificate options ---------------------------

def ReadRapiCertificate(path: str) -> str:
    """The PEM text of ``--rapi-certificate FILE`` after checking that it
    holds a certificate and its matching private key (as ganeti-rapi needs).
    """
    import ssl
    try:
        pem = utils.ReadFile(path)
    except (OSError, UnicodeDecodeError) as err:
        raise _Inval(f"Cannot read RAPI certificate file '{path}': {err}") from err
    if "PRIVATE KEY-----" not in pem or "CERTIFICATE-----" not in pem:
        raise _Inval(f"RAPI certificate file '{path}' must hold a PEM certificate"
                     " and its private key")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        ctx.load_cert_chain(path)
    except (ssl.SSLError, OSError) as err:
        raise _Inval(f"RAPI certificate file '{path}' is not a valid certificate"
                     f" with its key: {err}") from err
    return pem


def RestartRapi() -> str | None:
    """Restart ganeti-rapi on this node if it runs (it reads rapi.pem at
    start); what happened, or None when it was not running."""
    from ganeti import daemon_util
    if not daemon_util.IsRunning(constants.RAPI):
        return None
    daemon_util.StopDaemon(constants.RAPI)
    return daemon_util.StartDaemon(constants.RAPI)
