"""The virtual cluster run by an unprivileged user (issue 14 item 4, issue 15
item 10).

Run as root, the module creates a throwaway system user (``useradd
--system``, named ``gnt-vc-it-<random>``, removed with ``userdel`` at the
end) and does everything below as that user through ``runuser``; run as
any other user, it does the same as that user. As that user, in a
directory of its own: ``make vcluster`` with 2 nodes and a default NIC
bridge that does not exist (so the setup must skip it and make the default
NICs routed), then ``gnt-cluster verify``, ``gnt-node list``, ``gnt-instance
add``, ``gnt-instance list``, ``gnt-job list`` and RAPI ``GET /2/info`` with
the env file's credentials; every daemon (from ``<dir>/pids``) runs with the
user's uid and gid (``/proc/PID/status``), every file of the cluster is the
user's, and (with a throwaway user) nothing of it is written elsewhere.
Then ``make vcluster-stop`` and ``make vcluster`` again: the RAPI password
of the env file is the same and still works. The cluster is stopped by PID
at the end.

The user must be able to run a Python interpreter that has this checkout's
dependencies. The checkout's virtualenv interpreter may live where other
users cannot go (a pyenv build under root's 0700 home): then a virtualenv is
made from the system's ``python3`` of the same version, its site-packages
pointing at the checkout's, and ``make`` gets it as ``VPY``. The module is
skipped, saying why, only if the checkout itself cannot be read by the user
or no such interpreter exists.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pwd
import secrets
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import sharedpython  # noqa: E402
from vcluster import REPO, SETUP_TOOL, PickNet  # noqa: E402

from ganeti import constants, vcluster  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

N1, N2 = "node1.vcluster.test", "node2.vcluster.test"
INSTANCE = "unpriv1.example.com"
INSTANCE_IP = "192.0.2.77"
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#: World-writable places a user without a home could write to
WRITABLE_DIRS = ("/tmp", "/var/tmp", "/dev/shm", "/run/lock")
TIMEOUT = 900


def _OwnedFiles(uid: int, skip: str | None = None) -> set[str]:
    """Paths in :data:`WRITABLE_DIRS` (but not below ``skip``) owned by ``uid``."""
    found = set()
    for base in WRITABLE_DIRS:
        for top, dirs, files in os.walk(base):
            dirs[:] = [d for d in dirs if os.path.join(top, d) != skip]
            for name in dirs + files:
                path = os.path.join(top, name)
                try:
                    if os.lstat(path).st_uid == uid:
                        found.add(path)
                except OSError:
                    continue
    return found


@dataclasses.dataclass
class Account:
    """The user the cluster runs as; ``created`` if the module made it, then
    with the files its uid already owned (left by a deleted user of the
    same uid, e.g. in other tests' old pytest directories)."""
    name: str
    uid: int
    gid: int
    created: bool
    preexisting: set[str] = dataclasses.field(default_factory=set)

    def command(self, argv: list[str]) -> list[str]:
        """``argv`` run as this user."""
        if self.uid == os.geteuid():
            return argv
        return ["runuser", "-u", self.name, "--", *argv]

    def run(self, argv: list[str], cwd: str = "/", timeout: float = 300,
            check: bool = True) -> subprocess.CompletedProcess:
        """Run ``argv`` as this user with a plain environment; stdout and
        stderr merged."""
        env = {"PATH": SYSTEM_PATH, "LANG": "C.UTF-8"}
        result = subprocess.run(self.command(argv), cwd=cwd, env=env,
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, timeout=timeout,
                                check=False)
        if check:
            assert result.returncode == 0, \
                f"{' '.join(argv)} as {self.name} failed ({result.returncode}):\n" \
                f"{result.stdout}"
        return result


@pytest.fixture(scope="module")
def account():
    """A throwaway system user when we are root, else ourselves."""
    if os.geteuid() != 0:
        entry = pwd.getpwuid(os.geteuid())
        yield Account(entry.pw_name, entry.pw_uid, os.getegid(), created=False)
        return
    missing = [tool for tool in ("useradd", "userdel", "runuser") if not shutil.which(tool)]
    if missing:
        pytest.skip(f"creating a throwaway user needs {', '.join(missing)}")
    name = f"gnt-vc-it-{secrets.token_hex(4)}"
    subprocess.run(["useradd", "--system", "--user-group", "--no-create-home",
                    "--shell", "/usr/sbin/nologin", name],
                   check=True, capture_output=True, timeout=60)
    try:
        entry = pwd.getpwnam(name)
        yield Account(name, entry.pw_uid, entry.pw_gid, created=True,
                      preexisting=_OwnedFiles(entry.pw_uid))
    finally:
        result = subprocess.run(["userdel", name], capture_output=True, text=True,
                                timeout=60, check=False)
        assert result.returncode == 0, f"userdel {name}: {result.stderr}"


@pytest.fixture(scope="module")
def python(account):
    """An interpreter ``account`` can run, with this checkout's dependencies."""
    readable = account.run(["sh", "-c", f"test -r {SETUP_TOOL} && test -x {REPO}/lib"
                                        f" && test -r {REPO}/Makefile"], check=False)
    if readable.returncode != 0:
        pytest.skip(f"the checkout {REPO} is not readable by user {account.name}"
                    " (make it world-readable to run this test)")
    base = tempfile.mkdtemp(prefix="gvpy", dir="/tmp")
    try:
        os.chmod(base, 0o755)

        def _Run(argv: list[str]) -> subprocess.CompletedProcess:
            return account.run(argv, check=False, timeout=120)
        interpreter, reason = sharedpython.PythonForOthers(_Run, base)
        if interpreter is None:
            pytest.skip(f"user {account.name}: {reason}")
        yield interpreter
    finally:
        shutil.rmtree(base, ignore_errors=True)


class Cluster:
    """The virtual cluster of ``account`` in ``directory``."""

    def __init__(self, account: Account, python: str, directory: str) -> None:
        self.account = account
        self.python = python
        self.directory = directory
        self.net = PickNet(2)
        # Unique and never created: the user cannot create it, so setup skips it
        self.bridge = f"gvnobr{secrets.token_hex(3)}"
        self.outputs: list[str] = []
        self.pids: set[int] = set()

    def make(self, target: str = "vcluster") -> str:
        """``make <target>`` for this cluster as the user; its output."""
        # The checkout's virtualenv is not the user's to update (`make deps`
        # is its owner's job, and another change to setup.py would make the
        # stamp stale and fail the run on that): treat it as up to date
        result = self.account.run(
            ["make", "--no-print-directory", "-C", str(REPO),
             "--assume-old=.venv/.deps-stamp", target,
             f"VCLUSTER_DIR={self.directory}", "VCLUSTER_NODES=2",
             f"VCLUSTER_NET={self.net}", f"VCLUSTER_ARGS=--bridge {self.bridge}",
             f"VPY={self.python}"],
            cwd=self.directory, timeout=TIMEOUT, check=False)
        assert result.returncode == 0, \
            f"make {target} as {self.account.name} failed:\n{result.stdout}\n" \
            f"--- setup.log ---\n{self.log()}"
        self.outputs.append(result.stdout)
        self.pids.update(self.daemons().values())
        return result.stdout

    def shell(self, script: str, check: bool = True,
              timeout: float = 300) -> subprocess.CompletedProcess:
        """``script`` in a shell of the user that sourced the env file."""
        return self.account.run(["sh", "-c", f". {self.directory}/env && {script}"],
                                cwd=self.directory, timeout=timeout, check=check)

    def state(self) -> vcluster.State:
        state = vcluster.State.Load(self.directory)
        assert state is not None
        return state

    def daemons(self) -> dict[tuple[str, str], int]:
        return vcluster.RunningDaemons(self.state())

    def env(self) -> dict[str, str]:
        """The exported variables of the env file (as the shell sees them)."""
        out = self.shell("env").stdout
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def log(self) -> str:
        try:
            return (Path(self.directory) / vcluster.LOG_FILE).read_text()[-20000:]
        except OSError:
            return ""


@pytest.fixture(scope="module")
def cluster(account, python):
    directory = tempfile.mkdtemp(prefix="gvu", dir="/tmp")
    if account.created:
        os.chown(directory, account.uid, account.gid)
    vc = Cluster(account, python, directory)
    assert not os.path.exists(f"/sys/class/net/{vc.bridge}")
    try:
        vc.make()
        yield vc
    finally:
        # By PID: the tool as the user, then directly as a safety net
        try:
            account.run([python, str(SETUP_TOOL), "--dir", directory, "--stop"],
                        check=False, timeout=120)
        finally:
            leftovers = vcluster.StopDaemons(directory, vcluster.State.Load(directory),
                                             timeout=10)
            shutil.rmtree(directory, ignore_errors=True)
        assert not leftovers, f"daemons survived vcluster-setup --stop: {leftovers}"


# --- setup ---------------------------------------------------------------------------


def test_setup_skips_the_missing_bridge(cluster):
    out = cluster.outputs[0]
    assert f"Skipping the default NIC bridge {cluster.bridge}: it does not exist and" \
        " only root can create it" in out, out
    assert "default NICs are routed instead" in out, out
    assert "is running in" in out
    with open(os.path.join(cluster.state().nodes[0].root,
                           constants.DEFAULT_DATA_DIR.lstrip("/"),
                           constants.CLUSTER_CONF_FILE_NAME), encoding="utf-8") as fd:
        nicparams = json.load(fd)["cluster"]["nicparams"][constants.PP_DEFAULT]
    assert nicparams[constants.NIC_MODE] == constants.NIC_MODE_ROUTED
    assert nicparams[constants.NIC_LINK] == ""


def _Status(pid: int) -> dict[str, list[int]]:
    with open(f"/proc/{pid}/status", encoding="ascii") as fd:
        lines = [line.split(":", 1) for line in fd if ":" in line]
    return {key: [int(v) for v in value.split()] for key, value in lines
            if key in ("Uid", "Gid", "Groups")}


def _CheckDaemonUsers(cluster: Cluster) -> None:
    with open(os.path.join(cluster.directory, vcluster.PIDS_FILE), encoding="ascii") as fd:
        recorded = {(node, daemon): int(pid)
                    for pid, node, daemon in (line.split() for line in fd if line.strip())}
    state = cluster.state()
    expected = vcluster.ExpectedDaemons(state) | {(N1, constants.RAPI)}
    assert set(recorded) == expected, recorded
    for (node, daemon), pid in recorded.items():
        assert vcluster.BelongsTo(pid, cluster.directory), (node, daemon, pid)
        status = _Status(pid)
        assert status["Uid"] == [cluster.account.uid] * 4, (node, daemon, status)
        assert status["Gid"] == [cluster.account.gid] * 4, (node, daemon, status)
        if cluster.account.created:
            assert set(status["Groups"]) <= {cluster.account.gid}, (node, daemon, status)


def test_daemons_run_as_the_user(cluster):
    _CheckDaemonUsers(cluster)


def test_files_are_the_users(cluster):
    foreign = []
    for top, dirs, files in os.walk(cluster.directory):
        for name in [top, *(os.path.join(top, f) for f in dirs + files)]:
            try:
                if os.lstat(name).st_uid != cluster.account.uid:
                    foreign.append(name)
            except FileNotFoundError:
                continue  # a temporary file of a daemon, renamed meanwhile
    assert not foreign, foreign
    password_file = os.path.join(cluster.directory, vcluster.RAPI_PASSWORD_FILE)
    assert os.stat(password_file).st_mode & 0o777 == 0o600
    if not cluster.account.created:
        return  # our own files elsewhere cannot be told apart
    elsewhere = _OwnedFiles(cluster.account.uid, skip=cluster.directory) - \
        cluster.account.preexisting
    assert not elsewhere, f"written outside {cluster.directory}: {sorted(elsewhere)}"


# --- the tools, as the user --------------------------------------------------------------


def test_verify_and_node_list(cluster):
    result = cluster.shell("gnt-cluster verify")
    assert "ERROR" not in result.stdout, result.stdout
    out = cluster.shell("gnt-node list --no-headers -o name,role").stdout
    assert [line.split() for line in out.splitlines()] == [[N1, "M"], [N2, "C"]]


def test_instance_add_with_routed_default_nic(cluster):
    add = f"gnt-instance add -t diskless -o noop+default -n {N2} --no-name-check" \
          " --no-ip-check"
    # A routed NIC needs an address, as in Ganeti: refused, nothing made
    refused = cluster.shell(f"{add} noip.example.com", check=False)
    assert refused.returncode != 0, refused.stdout
    assert "routed mode needs an IP address" in refused.stdout, refused.stdout
    cluster.shell(f"{add} --net 0:ip={INSTANCE_IP} {INSTANCE}")
    out = cluster.shell("gnt-instance list --no-headers --separator='|'"
                        " -o name,pnode,status,nic.mode/0,nic.ip/0").stdout
    assert out.splitlines() == [f"{INSTANCE}|{N2}|running|routed|{INSTANCE_IP}"]


def test_job_list(cluster):
    out = cluster.shell("gnt-job list --no-headers").stdout
    jobs = [line.split(None, 2) for line in out.splitlines()]
    assert ["success", f"INSTANCE_CREATE({INSTANCE})"] in [job[1:] for job in jobs], out
    assert ["error", "INSTANCE_CREATE(noip.example.com)"] in [job[1:] for job in jobs], out


def _Rapi(cluster: Cluster, password: str, path: str = "/2/info",
          method: str = "GET") -> tuple[str, str]:
    """A RAPI request as the user, with the env file's coordinates and
    ``password`` (shell words); (HTTP status, body)."""
    out = cluster.shell(
        f"curl -sS -k -X {method} -u \"$RAPI_USER:{password}\" -w '\\n%{{http_code}}'"
        f" \"https://$RAPI_HOST:$RAPI_PORT{path}\"", timeout=60).stdout
    body, _, code = out.rpartition("\n")
    return code, body


def _CheckRapiPassword(cluster: Cluster, password: str) -> None:
    """``password`` is the one RAPI takes: reads need none (as in Ganeti),
    so a write proves it, and a wrong one is refused."""
    code, body = _Rapi(cluster, password, "/2/redistribute-config", "PUT")
    assert code == "200", body
    assert isinstance(json.loads(body), (int, str)), body  # a job id
    code, body = _Rapi(cluster, "wrong", "/2/redistribute-config", "PUT")
    assert code == "401", body


def test_rapi_info_with_the_env_credentials(cluster):
    env = cluster.env()
    assert env["RAPI_USER"] == vcluster.RAPI_USER
    code, body = _Rapi(cluster, "$RAPI_PASSWORD")
    assert code == "200", body
    info = json.loads(body)
    assert info["name"] == cluster.state().cluster_name
    assert info["master"] == N1
    assert info["default_hypervisor"] == constants.HT_FAKE
    _CheckRapiPassword(cluster, "$RAPI_PASSWORD")


# --- stop, start again -----------------------------------------------------------------


def test_restart_keeps_the_rapi_password(cluster):
    before = cluster.env()["RAPI_PASSWORD"]
    old_pids = set(cluster.daemons().values())
    assert old_pids
    out = cluster.make("vcluster-stop")
    assert "Stopped" in out, out
    assert cluster.daemons() == {}
    assert not [pid for pid in old_pids if vcluster.BelongsTo(pid, cluster.directory)]
    out = cluster.make("vcluster")
    assert "Starting the stopped daemons" in out, out
    # The bridge of a routed cluster is not the restart's business
    assert "Skipping the default NIC bridge" not in out and "WARNING" not in out, out
    assert cluster.env()["RAPI_PASSWORD"] == before
    # The password a script read before the restart still works
    _CheckRapiPassword(cluster, before)
    _CheckDaemonUsers(cluster)
    out = cluster.shell("gnt-instance list --no-headers -o name").stdout
    assert out.split() == [INSTANCE]


def test_stop_leaves_no_daemon(cluster):
    assert cluster.pids
    out = cluster.make("vcluster-stop")
    assert "Stopped" in out, out
    alive = [pid for pid in cluster.pids if vcluster.BelongsTo(pid, cluster.directory)]
    assert not alive, f"still running: {alive}"
    assert cluster.daemons() == {}


# --- the integration suites themselves, as the user --------------------------------------

#: Suites run whole as the user: the virtual cluster's life, and instances
USER_SUITES = ("test/integration/test_vcluster.py", "test/integration/test_gnt_instance.py")


def test_integration_suites_as_the_user(account, python):
    """The virtual-cluster and instance suites pass when the user runs them
    (as root, the throwaway user; otherwise ourselves, again)."""
    result = account.run(
        ["env", "PYTHONDONTWRITEBYTECODE=1", "GANETI_TEST_NO_SYSTEM_USERS=1",
         python, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-x", *USER_SUITES],
        cwd=str(REPO), timeout=TIMEOUT, check=False)
    assert result.returncode == 0, result.stdout[-6000:]
    assert " passed" in result.stdout and "failed" not in result.stdout, \
        result.stdout[-2000:]
