"""Settings for every test suite."""

import os
import subprocess

import pytest

from ganeti.config import serialize

# Every configuration save also checks the cached serialisation against a
# fresh one (ganeti.config.serialize); the daemons the tests start inherit it
os.environ.setdefault(serialize.CHECK_ENV, "1")

#: The users and groups this run created (see pytest_configure)
_CREATED = pytest.StashKey[tuple[list[str], list[str]] | None]()


def _CreateSystemUsers() -> tuple[list[str], list[str]] | None:
    """Create Ganeti's daemon users and groups missing here; (users, groups)
    created, or None when the run goes without them."""
    if os.geteuid() != 0 or os.environ.get("GANETI_TEST_NO_SYSTEM_USERS") == "1":
        return None
    from ganeti import runtime
    from ganeti.tools import ensure_users
    environ = {key: value for key, value in os.environ.items()
               if key not in (runtime.USER_PREFIX_ENV, runtime.GROUP_PREFIX_ENV)}
    plan = ensure_users.PlanCreate(runtime.GetNames(environ))
    for command in plan:
        subprocess.run(command, check=True, capture_output=True)
    runtime.ResetCache()
    return ([cmd[-1] for cmd in plan if cmd[0] == "useradd"],
            [cmd[-1] for cmd in plan if cmd[0] == "groupadd"])


def pytest_configure(config: pytest.Config) -> None:
    """Run the whole suite, as root, with Ganeti's daemon users present.

    Administrators migrating from Ganeti have the system users ``gnt-masterd``,
    ``gnt-confd``, ``gnt-rapi`` and the groups ``gnt-daemons`` and
    ``gnt-admin``; virtual clusters and every test must behave the same with
    them as without them (issue 14). As root, the users and groups missing
    here are created for the run (tools/ensure-users) and those created are
    removed at its end. ``GANETI_TEST_NO_SYSTEM_USERS=1`` runs without them.

    Done once per run: by the process that runs the tests, or with
    pytest-xdist by the controller, before it starts its workers and after
    they have all ended (workers doing it each would race each other).
    """
    if hasattr(config, "workerinput"):
        return
    config.stash[_CREATED] = _CreateSystemUsers()


def pytest_unconfigure(config: pytest.Config) -> None:
    created = config.stash.get(_CREATED, None)
    if not created:
        return
    users, groups = created
    for user in users:
        subprocess.run(["userdel", user], check=False, capture_output=True)
    for group in groups:
        subprocess.run(["groupdel", group], check=False, capture_output=True)
    from ganeti import runtime
    runtime.ResetCache()
