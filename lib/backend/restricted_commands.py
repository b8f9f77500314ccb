"""Restricted commands: programs the node's administrator provides, run by name.

The RPC ``restricted_command`` (``gnt-node restricted-command``) names a
command; the node runs ``RESTRICTED_COMMANDS_DIR/<name>`` with no
arguments, in ``/``, with an empty environment (in a virtual cluster only
the node's ``GANETI_ROOTDIR`` and ``GANETI_HOSTNAME``), and returns what it
printed. This is the one call by which the master starts a program it
chooses, and it chooses only among those an administrator put on the node.
The rules are Ganeti's (doc/security.rst, gnt-node(8)):

- the name is a plain file name of letters, digits, ``-`` and ``_`` (as
  hook names; no ``.``, no ``/``);
- the directory is a directory owned by root that nobody else may write
  (mode 0755 or stricter);
- the command, after following a symlink, is a regular file owned by root,
  not writable by group or others (mode 0755 or stricter) and executable.
  Ours in addition: a symlink's target must lie in a directory that passes
  the directory's rule, so that nobody but root can swap the program
  between the check and the start.

"Root" means uid 0 and, for a node daemon running as another user (an
unprivileged virtual cluster), that user too: what it owns is as trusted as
the daemon itself.

One restricted command runs at a time on a node: the call holds
``RESTRICTED_COMMANDS_LOCK_FILE`` from the checks to the end of the command
(waiting at most :data:`LOCK_TIMEOUT` seconds for it). A command refused by
the checks is answered only after :data:`FAILURE_DELAY` seconds, with the
lock still held, so that guessing names is slow (Ganeti waits 10 seconds;
2 are enough to make a dictionary attack impractical and keep a mistyped
name cheap). The refusal says why and is logged. A command that runs but
fails returns its exit status and output, without the delay.
"""

from __future__ import annotations

import logging
import os
import re
import stat
import time
from typing import Any, NoReturn

from ganeti import constants, errors, pathutils, utils
from ganeti.backend import Fail

#: Seconds a refused command's answer is held back (lock held)
FAILURE_DELAY = 2.0
#: Seconds to wait for another restricted command to end
LOCK_TIMEOUT = 60.0
#: Seconds a restricted command may run (below the RPC's SLOW timeout, so
#: that the answer arrives even after waiting for the lock)
COMMAND_TIMEOUT = 1800.0
#: Longest output returned (the rest is cut)
MAX_OUTPUT = 1 << 20

#: Allowed command names (Ganeti's, the same as for hook scripts)
NAME_RE = re.compile(r"^[a-zA-Z0-9_-]+$")
#: The most permissive mode of the directory and the commands
MAX_MODE = 0o755

#: Replaced by the tests to observe the delay
_sleep_fn = time.sleep


def _TrustedOwners() -> frozenset[int]:
    return frozenset({0, os.geteuid()})


def VerifyName(cmd: Any) -> str | None:
    """Why ``cmd`` cannot name a restricted command, or None if it can."""
    if not isinstance(cmd, str) or not cmd.strip():
        return "Missing command name"
    if "/" in cmd or os.path.basename(cmd) != cmd:
        return f"Invalid command name '{cmd}': a file name is expected, not a path"
    if not NAME_RE.match(cmd):
        return (f"Command name '{cmd}' contains forbidden characters (allowed:"
                " letters, digits, '-' and '_')")
    return None


def _CheckOwnerAndMode(path: str, st: os.stat_result, what: str) -> str | None:
    if st.st_uid not in _TrustedOwners():
        return f"{what} '{path}' is not owned by root (owner uid {st.st_uid})"
    mode = stat.S_IMODE(st.st_mode)
    if mode & ~MAX_MODE:
        return (f"{what} '{path}' has too permissive a mode ({mode:04o}; group and"
                f" others must not write it, at most {MAX_MODE:04o})")
    return None


def VerifyDirectory(path: str, what: str = "The restricted commands directory"
                    ) -> str | None:
    """Why the directory ``path`` is not trusted, or None if it is."""
    try:
        st = os.stat(path)
    except OSError as err:
        return f"{what} '{path}' cannot be used: {err.strerror}"
    if not stat.S_ISDIR(st.st_mode):
        return f"{what} '{path}' is not a directory"
    return _CheckOwnerAndMode(path, st, what)


def VerifyCommand(directory: str, cmd: str) -> str | None:
    """Why ``directory/cmd`` may not run, or None if it may."""
    path = os.path.join(directory, cmd)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        if os.path.islink(path):
            return f"Command '{path}' is a symlink to a missing file"
        return f"Command '{path}' does not exist"
    except OSError as err:
        return f"Command '{path}' cannot be used: {err.strerror}"
    if not stat.S_ISREG(st.st_mode):
        return f"Command '{path}' is not a regular file"
    reason = _CheckOwnerAndMode(path, st, "Command")
    if reason:
        return reason
    if os.path.islink(path):
        target = os.path.realpath(path)
        reason = VerifyDirectory(os.path.dirname(target),
                                 f"The directory of the symlink target '{target}'")
        if reason:
            return reason
    if not st.st_mode & stat.S_IXUSR or not os.access(path, os.X_OK):
        return f"Command '{path}' is not executable"
    return None


def _Environment() -> dict[str, str]:
    env = {}
    root = pathutils.GetRootDirectory()
    if root:
        env[constants.GANETI_ROOTDIR_ENV] = root
        hostname = pathutils.GetVirtualHostname()
        if hostname:
            env[constants.GANETI_HOSTNAME_ENV] = hostname
    return env


def _Refuse(cmd: Any, reason: str) -> NoReturn:
    logging.error("Refusing restricted command %r: %s", cmd, reason)
    _sleep_fn(FAILURE_DELAY)
    Fail("Restricted command %r refused: %s", cmd, reason, log=False)


def RunRestrictedCmd(cmd: Any) -> str:
    """Run the restricted command ``cmd``; return its output.

    @raise RPCFail: the command was refused (after the delay), did not
        start or failed (with its output)
    """
    directory = pathutils.RESTRICTED_COMMANDS_DIR
    try:
        lock = utils.FileLock.Open(pathutils.RESTRICTED_COMMANDS_LOCK_FILE)
    except OSError as err:
        Fail("Cannot open the restricted commands lock file %s: %s",
             pathutils.RESTRICTED_COMMANDS_LOCK_FILE, err)
    with lock:
        try:
            lock.Exclusive(blocking=True, timeout=LOCK_TIMEOUT)
        except errors.LockError:
            Fail("Another restricted command is still running on this node"
                 " (waited %s seconds)", LOCK_TIMEOUT)
        reason = (VerifyName(cmd) or VerifyDirectory(directory)
                  or VerifyCommand(directory, cmd))
        if reason:
            _Refuse(cmd, reason)
        path = os.path.join(directory, cmd)
        logging.info("Running restricted command %s", path)
        try:
            result = utils.RunCmd([path], env=_Environment(), reset_env=True, cwd="/",
                                  timeout=COMMAND_TIMEOUT)
        except errors.OpExecError as err:
            _Refuse(cmd, str(err))
        except OSError as err:
            _Refuse(cmd, f"Can't execute '{path}': {err}")
    output = result.output[:MAX_OUTPUT]
    if result.failed:
        Fail("Restricted command '%s' failed: %s; output: %s", cmd,
             result.fail_reason, output)
    return output
