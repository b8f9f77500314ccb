"""ganeti-rapi started as root runs as an unprivileged user (privilege
separation, seed 000).

Run as root, the test creates the system user and group ``gnt-rapi-it``
(useradd, when missing; left in place afterwards) and starts a real
master daemon and ``ganeti-rapi --user gnt-rapi-it --group gnt-rapi-it``.
It then checks the serving process's real, effective, saved and file
system ids in ``/proc/<pid>/status``, that it answers (which needs the
master's socket), and that a user added to the users file afterwards can
log in (the daemon re-reads the file after the drop). The master's socket
directory and socket are given to the group here, as Ganeti's
``gnt-daemons`` group does on a real cluster. Not run (skipped) unless
run as root.
"""

from __future__ import annotations

import base64
import grp
import http.client
import os
import pwd
import shutil
import ssl
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from conftest import Master  # noqa: E402
from rapidaemon import RapiDaemon  # noqa: E402
from ganeti.rapi import auth  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

USER = "gnt-rapi-it"


def _EnsureUser() -> tuple[int, int]:
    try:
        entry = pwd.getpwnam(USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--user-group", "--no-create-home",
                        "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin",
                        USER], check=True, capture_output=True)
        entry = pwd.getpwnam(USER)
    return entry.pw_uid, grp.getgrnam(USER).gr_gid


def _Ids(pid: int) -> dict[str, list[int]]:
    ids = {}
    with open(f"/proc/{pid}/status", encoding="ascii") as fh:
        for line in fh:
            key, _, value = line.partition(":")
            if key in ("Uid", "Gid", "Groups"):
                ids[key] = [int(v) for v in value.split()]
    return ids


def _Request(daemon: RapiDaemon, method: str, path: str,
             user: str | None = None, password: str | None = None) -> int:
    ctx = ssl.create_default_context(cafile=str(daemon.cert_file))
    ctx.check_hostname = False
    conn = http.client.HTTPSConnection("127.0.0.1", daemon.port, context=ctx,
                                       timeout=30)
    headers = {"Content-Type": "application/json"}
    if user:
        headers["Authorization"] = "Basic " + base64.b64encode(
            f"{user}:{password}".encode()).decode()
    try:
        conn.request(method, path, headers=headers)
        resp = conn.getresponse()
        resp.read()
        return resp.status
    finally:
        conn.close()


@pytest.fixture
def base():
    path = Path(tempfile.mkdtemp(prefix="gvrp", dir="/tmp"))
    # The daemon's user must reach the master's socket and the users file
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_rapi_drops_privileges_and_keeps_serving(base):
    if os.geteuid() != 0:
        pytest.skip("needs root to create a user and to drop privileges")
    uid, gid = _EnsureUser()
    master = Master(base)
    daemon = None
    try:
        master.start()
        sock_dir = Path(master.socket_path).parent
        for path in [sock_dir, *sock_dir.iterdir()]:
            os.chown(path, -1, gid)
        daemon = RapiDaemon(master.root, master.env,
                            extra_args=("--user", USER, "--group", USER)).Prepare()
        # The ready file is written after the drop
        ready_dir = base / "ready"
        ready_dir.mkdir()
        os.chown(ready_dir, uid, gid)
        daemon.ready_file = ready_dir / "rapi.ready"
        daemon.Start()
        assert daemon.pid is not None
        ids = _Ids(daemon.pid)
        assert ids["Uid"] == [uid] * 4, ids
        assert ids["Gid"] == [gid] * 4, ids
        assert 0 not in ids["Groups"], ids

        # Anonymous read through luxi: the master's socket is reachable
        client = daemon.Client(user=None)
        assert client.GetInfo()["name"]
        client.Close()
        # Users written before the start were made readable for the group
        assert _Request(daemon, "PUT", "/2/tags?tag=privsep&dry-run=1",
                        "admin", "adminpw") == 200
        # A user added now, by root, is seen by the unprivileged daemon
        assert _Request(daemon, "PUT", "/2/tags?tag=privsep&dry-run=1",
                        "late", "latepw") == 401
        auth.WriteUserEntry(str(daemon.users_file), "late", "latepw", ["write"])
        assert daemon.users_file.stat().st_gid == gid
        assert _Request(daemon, "PUT", "/2/tags?tag=privsep&dry-run=1",
                        "late", "latepw") == 200
        assert _Request(daemon, "PUT", "/2/tags?tag=privsep&dry-run=1",
                        "late", "wrong") == 401
        # Still the same unprivileged process
        assert _Ids(daemon.pid)["Uid"] == [uid] * 4
    finally:
        code = daemon.Stop() if daemon is not None else 0
        master.stop()
    assert code == 0, daemon.log_file.read_text()[-2000:] if daemon else ""
