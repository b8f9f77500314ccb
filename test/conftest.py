"""Settings for every test suite."""

import os
import subprocess

import pytest

from ganeti.config import serialize

# Every configuration save also checks the cached serialisation against a
# fresh one (ganeti.config.serialize); the daemons the tests start inherit it
os.environ.setdefault(serialize.CHECK_ENV, "1")


@pytest.fixture(scope="session", autouse=True)
def ganeti_system_users():
    """Run the whole suite, as root, with Ganeti's daemon users present.

    Administrators migrating from Ganeti have the system users ``gnt-masterd``,
    ``gnt-confd``, ``gnt-rapi`` and the groups ``gnt-daemons`` and
    ``gnt-admin``; virtual clusters and every test must behave the same with
    them as without them (issue 14). As root, the users and groups missing
    here are created for the run (tools/ensure-users) and those created are
    removed at its end. ``GANETI_TEST_NO_SYSTEM_USERS=1`` runs without them.
    """
    if os.geteuid() != 0 or os.environ.get("GANETI_TEST_NO_SYSTEM_USERS") == "1":
        yield None
        return
    from ganeti import runtime
    from ganeti.tools import ensure_users
    environ = {key: value for key, value in os.environ.items()
               if key not in (runtime.USER_PREFIX_ENV, runtime.GROUP_PREFIX_ENV)}
    names = runtime.GetNames(environ)
    plan = ensure_users.PlanCreate(names)
    created_users = [cmd[-1] for cmd in plan if cmd[0] == "useradd"]
    created_groups = [cmd[-1] for cmd in plan if cmd[0] == "groupadd"]
    for command in plan:
        subprocess.run(command, check=True, capture_output=True)
    runtime.ResetCache()
    try:
        yield names
    finally:
        for user in created_users:
            subprocess.run(["userdel", user], check=False, capture_output=True)
        for group in created_groups:
            subprocess.run(["groupdel", group], check=False, capture_output=True)
        runtime.ResetCache()
