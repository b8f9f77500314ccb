"""ensure-users: create (or remove) the daemon users and groups.

Ganeti leaves this to its packages; ``make install`` and administrators
migrating by hand call this tool instead. It creates the groups of
:class:`ganeti.runtime.Names` and the users ``masterd``, ``confd`` and
``rapi`` as system accounts without a home or a login shell, each in its
own group and, for ``id`` and ``/etc/group`` to tell the truth, a member of
the supplementary groups that the daemon takes when it drops its
privileges (the daemons set those groups themselves either way). Existing
users and groups are kept as they are. ``--remove`` deletes them again;
``--dry-run`` prints the commands.
"""

from __future__ import annotations

import argparse
import grp
import pwd
import subprocess
import sys
from collections.abc import Callable, Sequence

from ganeti import constants, runtime


def _Exists(lookup: Callable[[str], object], name: str) -> bool:
    try:
        lookup(name)
    except KeyError:
        return False
    return True


def PlanCreate(names: runtime.Names,
               user_exists: Callable[[str], bool] = lambda n: _Exists(pwd.getpwnam, n),
               group_exists: Callable[[str], bool] = lambda n: _Exists(grp.getgrnam, n)
               ) -> list[list[str]]:
    """The commands that create what is missing, in order."""
    commands = []
    for group in names.Groups():
        if group != "root" and not group_exists(group):
            commands.append(["groupadd", "--system", group])
    members = {
        names.masterd_user: (names.masterd_group,
                             [names.daemons_group, names.confd_group, names.admin_group]),
        names.confd_user: (names.confd_group, [names.daemons_group]),
        names.rapi_user: (names.rapi_group, [names.daemons_group, names.admin_group]),
    }
    for user, (group, others) in members.items():
        if user == "root" or user_exists(user):
            continue
        extra = [g for g in dict.fromkeys(others) if g != group]
        commands.append(["useradd", "--system", "--no-create-home",
                         "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin",
                         "--gid", group] + (["--groups", ",".join(extra)] if extra else [])
                        + [user])
    return commands


def PlanRemove(names: runtime.Names,
               user_exists: Callable[[str], bool] = lambda n: _Exists(pwd.getpwnam, n),
               group_exists: Callable[[str], bool] = lambda n: _Exists(grp.getgrnam, n)
               ) -> list[list[str]]:
    """The commands that remove the daemon users, then their groups."""
    commands = [["userdel", user] for user in names.Users()
                if user != "root" and user_exists(user)]
    commands += [["groupdel", group] for group in names.Groups()
                 if group != "root" and group_exists(group)]
    return commands


def BuildParser() -> argparse.ArgumentParser:
    """The command line of ensure-users."""
    parser = argparse.ArgumentParser(
        prog="ensure-users",
        description="Create the users and groups the Ganeti daemons run as")
    parser.add_argument("--remove", action="store_true",
                        help="Remove the daemon users and groups instead")
    parser.add_argument("-n", "--dry-run", action="store_true",
                        help="Print the commands without running them")
    return parser


def Main(argv: Sequence[str] | None = None) -> int:
    """Run ensure-users; return the exit code."""
    options = BuildParser().parse_args(argv)
    names = runtime.GetNames()
    if names.masterd_user == "root":
        print("This installation runs every daemon as root: no users to create")
        return constants.EXIT_SUCCESS
    plan = PlanRemove(names) if options.remove else PlanCreate(names)
    for command in plan:
        # userdel also removes a user's own group: skip what has gone since
        if command[0] == "groupdel" and not _Exists(grp.getgrnam, command[-1]):
            continue
        if options.dry_run:
            print(" ".join(command))
            continue
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            print(f"ensure-users: '{' '.join(command)}' failed:"
                  f" {result.stderr.strip() or result.returncode}", file=sys.stderr)
            return constants.EXIT_FAILURE
        print(" ".join(command))
    runtime.ResetCache()
    return constants.EXIT_SUCCESS
