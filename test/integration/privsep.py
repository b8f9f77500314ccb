"""Daemon users for tests and benchmarks that run separated daemons.

:func:`DaemonUsers` (as root) creates daemon users and groups with a prefix
of its own (tools/ensure-users with ``GANETI_USER_PREFIX``/
``GANETI_GROUP_PREFIX``), finds an interpreter those users can run
(:mod:`sharedpython`), and yields a :class:`Privsep` whose ``env`` makes
daemons under a node root switch to them (``GANETI_PRIVSEP=1``). The users
and groups are removed on exit. The base directory must be reachable by
other users (0755).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import sharedpython
from ganeti import runtime

REPO = Path(__file__).resolve().parents[2]
ENSURE_USERS = REPO / "tools" / "ensure-users"
ENSURE_DIRS = REPO / "tools" / "ensure-dirs"


@dataclasses.dataclass
class Privsep:
    """What a separated daemon's environment needs."""

    env: dict[str, str]
    python: str
    names: runtime.Names

    def ensure_dirs(self, node_env: dict[str, str]) -> None:
        """Run ensure-dirs as daemon-util start does, for a node root."""
        subprocess.run([sys.executable, str(ENSURE_DIRS)], check=True,
                       capture_output=True, env={**node_env, **self.env})


class Unavailable(Exception):
    """Separated daemons cannot run here (and why)."""


@contextlib.contextmanager
def DaemonUsers(base: Path) -> Iterator[Privsep]:
    """Daemon users with a unique prefix, removed on exit.

    @raise Unavailable: not root, or no interpreter the users can run
    """
    if os.geteuid() != 0:
        raise Unavailable("needs root to create users and switch to them")
    python, reason = sharedpython.PythonForOthers(
        sharedpython.RunAsIds(65534, 65534), str(base))
    if python is None:
        raise Unavailable(f"unprivileged daemon users could not run Python: {reason}")
    prefix = f"gp{uuid.uuid4().hex[:6]}-"
    env = {runtime.USER_PREFIX_ENV: prefix, runtime.GROUP_PREFIX_ENV: prefix,
           runtime.PRIVSEP_ENV: "1"}

    def _EnsureUsers(*args: str) -> None:
        subprocess.run([sys.executable, str(ENSURE_USERS), *args], check=True,
                       capture_output=True, env={**os.environ, **env})
    _EnsureUsers()
    try:
        yield Privsep(env, python, runtime.GetNames(env))
    finally:
        _EnsureUsers("--remove")
