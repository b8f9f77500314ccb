"""Privilege separation for real: a node whose daemons switch users.

Run as root, the module creates daemon users and groups with a prefix of
its own (``tools/ensure-users`` with ``GANETI_USER_PREFIX``/
``GANETI_GROUP_PREFIX``; removed at the end), and sets up a one-node
virtual cluster with ``GANETI_PRIVSEP=1``, which applies the installed
separation under a node root (doc/install.rst). Then:

- each daemon's real, effective, saved and file-system ids and its
  supplementary groups in ``/proc/PID/status`` are the table's
  (ganeti.runtime), the node daemon stays root;
- the files have the owners and modes ensure-dirs gives them, and its check
  mode finds nothing to change, also after a job saved the configuration;
- a process with RAPI's or confd's credentials cannot read ``server.pem``
  nor write ``config.data`` (what a compromised daemon could do);
- a member of the admin group runs ``gnt-instance list`` and ``gnt-job
  list`` without root; a non-member is refused with a message naming the
  group;
- RAPI answers (it reaches the master's socket through its groups) and
  sees users added after its start;
- a daemon whose users are missing, or whose file it cannot read after the
  switch, exits non-zero naming the user or the file.

Not run as a non-root user (nothing can switch users there): the module is
skipped with that reason.
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
import uuid
from pathlib import Path

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import sharedpython  # noqa: E402
from vcluster import REPO, VirtualCluster  # noqa: E402
from ganeti import constants, runtime  # noqa: E402
from ganeti.rapi import auth  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

if os.geteuid() != 0:
    pytest.skip("privilege separation needs root to switch users",
                allow_module_level=True)

ENSURE_USERS = REPO / "tools" / "ensure-users"
ENSURE_DIRS = REPO / "tools" / "ensure-dirs"


def _Ids(pid: int) -> dict[str, list[int]]:
    ids = {}
    with open(f"/proc/{pid}/status", encoding="ascii") as fh:
        for line in fh:
            key, _, value = line.partition(":")
            if key in ("Uid", "Gid", "Groups"):
                ids[key] = [int(v) for v in value.split()]
    return ids


class Setup:
    """The users, the cluster and the environment of this module."""

    def __init__(self) -> None:
        tag = uuid.uuid4().hex[:6]
        self.prefix = f"gp{tag}-"
        self.env = {runtime.USER_PREFIX_ENV: self.prefix,
                    runtime.GROUP_PREFIX_ENV: self.prefix,
                    runtime.PRIVSEP_ENV: "1"}
        self.names = runtime.GetNames(self.env)
        self.directory = Path(tempfile.mkdtemp(prefix="gps", dir="/tmp"))
        # Daemon users must reach their node root and run the interpreter
        self.directory.chmod(0o755)
        self.python, reason = sharedpython.PythonForOthers(
            sharedpython.RunAsIds(65534, 65534), str(self.directory))
        if self.python is None:
            shutil.rmtree(self.directory, ignore_errors=True)
            pytest.skip(f"unprivileged daemon users could not run Python: {reason}")
        self.cluster = VirtualCluster(self.directory / "vc", nodes=1,
                                      python=self.python)
        self.operator = f"{self.prefix}op"
        self.outsider = f"{self.prefix}out"

    def ensure_users(self, *args: str) -> None:
        subprocess.run([sys.executable, str(ENSURE_USERS), *args], check=True,
                       capture_output=True, env={**os.environ, **self.env})

    def uid(self, user: str) -> int:
        return pwd.getpwnam(user).pw_uid

    def gid(self, group: str) -> int:
        return grp.getgrnam(group).gr_gid

    def node_env(self) -> dict[str, str]:
        return {**self.cluster.env(), **self.env}

    def path(self, path: str) -> Path:
        return self.cluster.path(1, path)


@pytest.fixture(scope="module")
def setup():
    s = Setup()
    saved = {key: os.environ.get(key) for key in s.env}
    os.environ.update(s.env)
    try:
        s.ensure_users()
        for user, groups in ((s.operator, [s.names.admin_group]), (s.outsider, [])):
            subprocess.run(["useradd", "--system", "--no-create-home", "--shell",
                            "/usr/sbin/nologin"]
                           + (["--groups", ",".join(groups)] if groups else [])
                           + [user], check=True, capture_output=True)
        s.cluster.setup()
        yield s
    finally:
        try:
            leftovers = s.cluster.cleanup()
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
            for user in (s.operator, s.outsider):
                subprocess.run(["userdel", user], check=False, capture_output=True)
            s.ensure_users("--remove")
            shutil.rmtree(s.directory, ignore_errors=True)
        assert not leftovers, f"daemons left running: {leftovers}"


def _Daemon(setup: Setup, name: str) -> int:
    pids = {daemon: pid for (_, daemon), pid in setup.cluster.daemons().items()}
    assert name in pids, f"{name} not running: {pids}"
    return pids[name]


@pytest.mark.parametrize("daemon,user,group,groups", [
    (constants.MASTERD, "masterd_user", "masterd_group",
     ["daemons_group", "confd_group", "admin_group"]),
    (constants.CONFD, "confd_user", "confd_group", ["daemons_group"]),
    (constants.RAPI, "rapi_user", "rapi_group", ["daemons_group", "admin_group"]),
])
def test_daemon_ids(setup, daemon, user, group, groups):
    ids = _Ids(_Daemon(setup, daemon))
    uid = setup.uid(getattr(setup.names, user))
    gid = setup.gid(getattr(setup.names, group))
    assert ids["Uid"] == [uid] * 4, ids
    assert ids["Gid"] == [gid] * 4, ids
    assert sorted(ids["Groups"]) == sorted(setup.gid(getattr(setup.names, g))
                                           for g in groups), ids


def test_noded_stays_root(setup):
    ids = _Ids(_Daemon(setup, constants.NODED))
    assert ids["Uid"] == [0] * 4


def _Owner(path: Path) -> tuple[str, str, int]:
    st = os.stat(path)
    return (pwd.getpwuid(st.st_uid).pw_name, grp.getgrgid(st.st_gid).gr_name,
            st.st_mode & 0o7777)


def test_file_owners_and_modes(setup):
    n = setup.names
    data = "/var/lib/ganeti/"
    expected = {
        data + "config.data": (n.masterd_user, n.confd_group, 0o640),
        data + "server.pem": (n.masterd_user, n.masterd_group, 0o440),
        data + "rapi.pem": (n.rapi_user, n.masterd_group, 0o440),
        data + "hmac.key": (n.confd_user, n.masterd_group, 0o440),
        data + "rapi/users": (n.rapi_user, n.masterd_group, 0o640),
        data + "queue": (n.masterd_user, n.masterd_group, 0o700),
        "/var/run/ganeti/socket": (n.masterd_user, n.admin_group, 0o750),
        "/var/run/ganeti/socket/ganeti-master": (n.masterd_user, n.admin_group, 0o660),
        "/var/log/ganeti/rapi-daemon.log": (n.rapi_user, n.rapi_group, 0o600),
    }
    for path, owner in expected.items():
        assert _Owner(setup.path(path)) == owner, path
    ssconf = setup.path(data + "ssconf_cluster_name")
    assert _Owner(ssconf) == (n.masterd_user, n.masterd_group, 0o444)


def _EnsureDirsCheck(setup: Setup) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ENSURE_DIRS), "--dry-run"],
                          env=setup.node_env(), capture_output=True, text=True,
                          check=False)


def test_job_keeps_files_right(setup):
    # The master daemon, unprivileged, runs a job that saves the configuration
    setup.cluster.run("gnt-cluster", "add-tags", "privsep")
    n = setup.names
    assert _Owner(setup.path("/var/lib/ganeti/config.data")) == \
        (n.masterd_user, n.confd_group, 0o640)
    result = _EnsureDirsCheck(setup)
    assert result.returncode == 0, result.stdout + result.stderr
    verify = setup.cluster.run("gnt-cluster", "verify", check=False)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "ENODEFILEPERMS" not in verify.stdout


def _AsCredentials(python: str, pid: int, code: str) -> subprocess.CompletedProcess:
    """Run Python ``code`` with the ids and groups of process ``pid``."""
    ids = _Ids(pid)

    def _Switch() -> None:
        os.setgroups(ids["Groups"])
        os.setresgid(*ids["Gid"][:3])
        os.setresuid(*ids["Uid"][:3])
    return subprocess.run([python, "-c", code], preexec_fn=_Switch,
                          capture_output=True, text=True, check=False)


@pytest.mark.parametrize("daemon", [constants.RAPI, constants.CONFD])
def test_compromised_daemon_cannot_reach_secrets(setup, daemon):
    pid = _Daemon(setup, daemon)
    server_pem = setup.path("/var/lib/ganeti/server.pem")
    config = setup.path("/var/lib/ganeti/config.data")
    result = _AsCredentials(setup.python, pid, f"open({str(server_pem)!r}).read()")
    assert result.returncode != 0 and "PermissionError" in result.stderr
    result = _AsCredentials(setup.python, pid, f"open({str(config)!r}, 'a')")
    assert result.returncode != 0 and "PermissionError" in result.stderr
    if daemon == constants.CONFD:
        # ... while what it needs is readable
        result = _AsCredentials(setup.python, pid, f"open({str(config)!r}).read()")
        assert result.returncode == 0, result.stderr


def _AsUser(setup: Setup, user: str, *command: str) -> subprocess.CompletedProcess:
    entry = pwd.getpwnam(user)

    def _Switch() -> None:
        os.initgroups(user, entry.pw_gid)
        os.setresgid(entry.pw_gid, entry.pw_gid, entry.pw_gid)
        os.setresuid(entry.pw_uid, entry.pw_uid, entry.pw_uid)
    tool = setup.cluster.tools.Script(command[0])
    return subprocess.run([setup.python, tool, *command[1:]], env=setup.node_env(),
                          preexec_fn=_Switch, capture_output=True, text=True,
                          check=False, cwd="/", timeout=120)


def test_admin_group_member_runs_tools(setup):
    for command in (("gnt-instance", "list"), ("gnt-job", "list"),
                    ("gnt-node", "list")):
        result = _AsUser(setup, setup.operator, *command)
        assert result.returncode == 0, (command, result.stdout, result.stderr)
    jobs = _AsUser(setup, setup.operator, "gnt-job", "list", "--no-headers")
    assert "TAGS_SET" in jobs.stdout or "success" in jobs.stdout


def test_non_member_refused_naming_group(setup):
    result = _AsUser(setup, setup.outsider, "gnt-instance", "list")
    assert result.returncode != 0
    assert setup.names.admin_group in result.stderr, result.stderr


def _Rapi(setup: Setup, method: str, path: str, user: str | None = None,
          password: str | None = None) -> int:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    address = setup.cluster.node(1).ip
    conn = http.client.HTTPSConnection(address, constants.DEFAULT_RAPI_PORT,
                                       context=ctx, timeout=60)
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


def test_rapi_serves_and_rereads_users(setup):
    assert _Rapi(setup, "GET", "/2/info") == 200
    path = "/2/tags?tag=late&dry-run=1"
    assert _Rapi(setup, "PUT", path, "late", "latepw") == 401
    users = setup.path("/var/lib/ganeti/rapi/users")
    auth.WriteUserEntry(str(users), "late", "latepw", ["write"])
    assert _Rapi(setup, "PUT", path, "late", "latepw") == 200


def _StartDaemon(setup: Setup, daemon: str, env: dict[str, str]
                 ) -> subprocess.CompletedProcess:
    return subprocess.run([setup.python, str(REPO / "daemons" / daemon), "-f",
                           "-b", "127.0.0.1", "-p", "0"],
                          env=env, capture_output=True, text=True, check=False,
                          timeout=60)


def test_daemon_without_its_user_refuses_to_start(setup):
    env = {**setup.node_env(), runtime.USER_PREFIX_ENV: "gpnone-",
           runtime.GROUP_PREFIX_ENV: "gpnone-"}
    result = _StartDaemon(setup, constants.CONFD, env)
    assert result.returncode != 0
    assert "gpnone-confd" in result.stderr, result.stderr


def test_daemon_names_file_it_cannot_read(setup):
    # A copy of the node root with a key confd may not read
    key = setup.path("/var/lib/ganeti/hmac.key")
    st = key.stat()
    os.chown(key, 0, 0)
    try:
        env = setup.node_env()
        result = _StartDaemon(setup, constants.CONFD, env)
        assert result.returncode != 0
        assert str(key) in result.stderr and "Cannot read" in result.stderr, \
            result.stderr
        assert _EnsureDirsCheck(setup).returncode != 0
    finally:
        os.chown(key, st.st_uid, st.st_gid)
    assert _EnsureDirsCheck(setup).returncode == 0
