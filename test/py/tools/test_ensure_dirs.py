"""Tests for tools/ensure-dirs (ganeti.tools.ensure_dirs) and its run by
daemon-util before a daemon starts.

Each test works on a fresh node root (``GANETI_ROOTDIR``, a virtual cluster
node: modes only) unless it asks for privilege separation, which needs
root and creates its own users and groups.
"""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import stat
import subprocess
import sys
import uuid

import pytest

from ganeti import constants, errors, pathutils, runtime
from ganeti import daemon_util
from ganeti.tools import ensure_dirs, ensure_users

NODE = "node1.example.com"
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))


@pytest.fixture
def node(tmp_path, monkeypatch):
    """This process acts as a virtual node rooted in a fresh directory."""
    saved = dict(os.environ)
    root = tmp_path / NODE
    root.mkdir()
    monkeypatch.setenv(constants.GANETI_ROOTDIR_ENV, str(root))
    monkeypatch.setenv(constants.GANETI_HOSTNAME_ENV, NODE)
    monkeypatch.delenv(runtime.PRIVSEP_ENV, raising=False)
    pathutils._SetRoot(str(root), NODE)
    runtime.ResetCache()
    yield root
    pathutils.Reload(saved)
    runtime.ResetCache()


def _Write(path: str, mode: int, data: str = "x\n") -> None:
    with open(path, "w", encoding="utf-8") as fd:
        fd.write(data)
    os.chmod(path, mode)


def _Populate() -> None:
    """A node as the daemons leave it: every directory, the usual files,
    each with the table's mode."""
    result = ensure_dirs.Ensure()
    assert not result.failures, result.failures
    p = pathutils
    for path, mode in ((p.CLUSTER_CONF_FILE, 0o640), (p.NODED_CERT_FILE, 0o440),
                       (p.NODED_CLIENT_CERT_FILE, 0o440), (p.RAPI_CERT_FILE, 0o440),
                       (p.CONFD_HMAC_KEY, 0o440), (p.CLUSTER_DOMAIN_SECRET_FILE, 0o640),
                       (p.RAPI_USERS_FILE, 0o640),
                       (p.SSCONF_DIR + "/ssconf_cluster_name", 0o444),
                       (p.SSCONF_DIR + "/ssconf_master_node", 0o444),
                       (p.DAEMONS_LOGFILES[constants.MASTERD], 0o600),
                       (p.DAEMONS_LOGFILES[constants.NODED], 0o600)):
        _Write(path, mode)
    for name in ("job-1", "job-2", "serial", "version", constants.JOB_QUEUE_LOCK_FILE,
                 "exec-log", "drain"):
        _Write(os.path.join(p.QUEUE_DIR, name), 0o640)
    old = os.path.join(p.JOB_QUEUE_ARCHIVE_DIR, "0")
    os.mkdir(old, 0o700)
    _Write(os.path.join(old, "job-0"), 0o640)


def _Mode(path: str) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def _Snapshot(root) -> dict[str, tuple[int, int, int, int]]:
    """Mode, owner, group and change time of everything under ``root``."""
    snap = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            snap[path] = (st.st_mode, st.st_uid, st.st_gid, st.st_ctime_ns)
    return snap


def _Differences(**kwargs) -> list[str]:
    return [str(diff) for diff in ensure_dirs.Check(**kwargs)]


def test_fresh_root_check_create_and_clean(node, capsys):
    assert _Differences() == [f"{path}: missing" for path in (
        pathutils.DATA_DIR, pathutils.RAPI_DATA_DIR, pathutils.QUEUE_DIR,
        pathutils.JOB_QUEUE_ARCHIVE_DIR, pathutils.RUN_DIR, pathutils.SOCKET_DIR,
        pathutils.LOG_DIR)]
    assert ensure_dirs.Main([]) == constants.EXIT_SUCCESS
    out = capsys.readouterr().out.splitlines()
    assert f"{pathutils.RUN_DIR}: created with mode 0775" in out
    assert f"{pathutils.QUEUE_DIR}: created with mode 0700" in out
    assert len(out) == 7, out
    assert _Mode(pathutils.SOCKET_DIR) == 0o750 and _Mode(pathutils.LOG_DIR) == 0o770
    # Files are never created; the optional directories neither
    assert not os.path.exists(pathutils.CLUSTER_CONF_FILE)
    assert not os.path.exists(pathutils.HOOKS_BASE_DIR)
    assert ensure_dirs.Main(["--check"]) == constants.EXIT_SUCCESS
    assert ensure_dirs.Main([]) == constants.EXIT_SUCCESS
    assert capsys.readouterr().out == ""


def test_check_lists_wrong_modes_and_changes_nothing(node, capsys):
    _Populate()
    assert _Differences(full_run=True) == []
    os.chmod(pathutils.CLUSTER_CONF_FILE, 0o666)
    os.chmod(pathutils.RAPI_USERS_FILE, 0o646)
    os.chmod(pathutils.CONFD_HMAC_KEY, 0o640)
    os.chmod(pathutils.RUN_DIR, 0o755)
    os.chmod(pathutils.SSCONF_DIR + "/ssconf_cluster_name", 0o644)
    os.rmdir(pathutils.SOCKET_DIR)
    before = _Snapshot(node)
    expected = [
        f"{pathutils.CLUSTER_CONF_FILE}: mode 0666, expected 0640",
        f"{pathutils.CONFD_HMAC_KEY}: mode 0640, expected 0440",
        f"{pathutils.RAPI_USERS_FILE}: mode 0646, expected 0640",
        f"{pathutils.SSCONF_DIR}/ssconf_cluster_name: mode 0644, expected 0444",
        f"{pathutils.RUN_DIR}: mode 0755, expected 0775",
        f"{pathutils.SOCKET_DIR}: missing",
    ]
    assert _Differences() == expected
    for option in ("--check", "--dry-run"):
        assert ensure_dirs.Main([option]) == constants.EXIT_FAILURE
        assert capsys.readouterr().out.splitlines() == expected
    assert _Snapshot(node) == before


def test_run_fixes_then_check_is_clean(node, capsys):
    _Populate()
    os.chmod(pathutils.CLUSTER_CONF_FILE, 0o666)
    os.chmod(pathutils.NODED_CERT_FILE, 0o400)
    os.chmod(pathutils.LOG_DIR, 0o700)
    os.rmdir(pathutils.SOCKET_DIR)
    assert ensure_dirs.Main([]) == constants.EXIT_SUCCESS
    assert capsys.readouterr().out.splitlines() == [
        f"{pathutils.CLUSTER_CONF_FILE}: mode 0666 changed to 0640",
        f"{pathutils.NODED_CERT_FILE}: mode 0400 changed to 0440",
        f"{pathutils.SOCKET_DIR}: created with mode 0750",
        f"{pathutils.LOG_DIR}: mode 0700 changed to 0770",
    ]
    assert _Mode(pathutils.CLUSTER_CONF_FILE) == 0o640
    assert _Mode(pathutils.NODED_CERT_FILE) == 0o440
    assert _Differences(full_run=True) == []
    # A second run has nothing to say
    assert ensure_dirs.Main([]) == constants.EXIT_SUCCESS
    assert capsys.readouterr().out == ""


def test_queue_files_only_with_full_run(node, monkeypatch):
    _Populate()
    job = os.path.join(pathutils.QUEUE_DIR, "job-1")
    serial = os.path.join(pathutils.QUEUE_DIR, "serial")
    old_dir = os.path.join(pathutils.JOB_QUEUE_ARCHIVE_DIR, "0")
    old_job = os.path.join(old_dir, "job-0")
    os.chmod(job, 0o644)
    os.chmod(serial, 0o600)
    os.chmod(old_job, 0o666)
    os.chmod(old_dir, 0o755)

    # Without --full-run the queue is not even listed (daemon-util's cost)
    real_scandir = os.scandir

    def _NoListing(path):
        raise AssertionError(f"listed {path} without --full-run")
    monkeypatch.setattr(ensure_dirs.os, "scandir", _NoListing)
    assert _Differences() == []
    assert ensure_dirs.Ensure().fixes == []
    monkeypatch.setattr(ensure_dirs.os, "scandir", real_scandir)
    assert (_Mode(job), _Mode(serial), _Mode(old_dir), _Mode(old_job)) == \
        (0o644, 0o600, 0o755, 0o666)

    assert _Differences(full_run=True) == [
        f"{job}: mode 0644, expected 0640", f"{serial}: mode 0600, expected 0640",
        f"{old_dir}: mode 0755, expected 0700", f"{old_job}: mode 0666, expected 0640"]
    result = ensure_dirs.Ensure(full_run=True)
    assert not result.failures and len(result.fixes) == 4
    assert (_Mode(job), _Mode(serial), _Mode(old_dir), _Mode(old_job)) == \
        (0o640, 0o640, 0o700, 0o640)
    assert _Differences(full_run=True) == []


def test_symlinks_are_refused(node, tmp_path, capsys):
    _Populate()
    target = tmp_path / "elsewhere"
    target.write_text("secret\n")
    target.chmod(0o644)
    os.unlink(pathutils.RAPI_USERS_FILE)
    os.symlink(target, pathutils.RAPI_USERS_FILE)
    other_dir = tmp_path / "logs"
    other_dir.mkdir(mode=0o755)
    other_log = other_dir / os.path.basename(pathutils.DAEMONS_LOGFILES[constants.MASTERD])
    other_log.write_text("")
    other_log.chmod(0o644)
    shutil.rmtree(pathutils.LOG_DIR)
    os.symlink(other_dir, pathutils.LOG_DIR)
    queue_link = os.path.join(pathutils.QUEUE_DIR, "job-3")
    os.symlink(target, queue_link)

    expected = [
        f"{pathutils.RAPI_USERS_FILE}: is a symbolic link, expected a file; not touched",
        f"{pathutils.LOG_DIR}: is a symbolic link, expected a directory; not touched",
        f"{queue_link}: is a symbolic link, expected a file; not touched",
    ]
    assert _Differences(full_run=True) == expected
    assert ensure_dirs.Main(["--full-run"]) == constants.EXIT_FAILURE
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines() == [f"ensure-dirs: {line}" for line in expected]
    # Nothing was followed: the targets keep their modes, the links stay
    assert _Mode(str(target)) == 0o644 and _Mode(str(other_dir)) == 0o755
    assert _Mode(str(other_log)) == 0o644
    assert os.path.islink(pathutils.RAPI_USERS_FILE) and os.path.islink(pathutils.LOG_DIR)


def test_wrong_type_is_refused(node):
    _Populate()
    os.unlink(pathutils.CLUSTER_CONF_FILE)
    os.mkdir(pathutils.CLUSTER_CONF_FILE)
    os.chmod(pathutils.CLUSTER_CONF_FILE, 0o777)
    result = ensure_dirs.Ensure()
    assert [str(f) for f in result.failures] == [
        f"{pathutils.CLUSTER_CONF_FILE}: is a directory, expected a file; not touched"]
    assert _Mode(pathutils.CLUSTER_CONF_FILE) == 0o777


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give a file away")
def test_virtual_cluster_ignores_ownership(node):
    _Populate()
    nobody = pwd.getpwnam("nobody")
    os.chown(pathutils.CLUSTER_CONF_FILE, nobody.pw_uid, nobody.pw_gid)
    assert _Differences() == []
    assert ensure_dirs.Ensure().fixes == []
    assert os.stat(pathutils.CLUSTER_CONF_FILE).st_uid == nobody.pw_uid


def test_missing_daemon_users_are_named(node, monkeypatch, capsys):
    prefix = f"zz{uuid.uuid4().hex[:6]}-"
    monkeypatch.setenv(runtime.PRIVSEP_ENV, "1")
    monkeypatch.setenv(runtime.USER_PREFIX_ENV, prefix)
    monkeypatch.setenv(runtime.GROUP_PREFIX_ENV, prefix)
    with pytest.raises(errors.ConfigurationError, match=f"{prefix}masterd"):
        ensure_dirs.Check()
    assert ensure_dirs.Main(["--check"]) == constants.EXIT_FAILURE
    assert f"{prefix}masterd" in capsys.readouterr().err


@pytest.fixture
def separate(node, monkeypatch):
    """Privilege separation under the node root, with daemon users and
    groups of a unique prefix created for the test and removed after it."""
    if os.geteuid() != 0:
        pytest.skip("creating users and giving files away needs root")
    prefix = f"gntt{uuid.uuid4().hex[:6]}-"
    monkeypatch.setenv(runtime.PRIVSEP_ENV, "1")
    monkeypatch.setenv(runtime.USER_PREFIX_ENV, prefix)
    monkeypatch.setenv(runtime.GROUP_PREFIX_ENV, prefix)
    names = runtime.GetNames()
    plan = ensure_users.PlanCreate(names)
    users = [cmd[-1] for cmd in plan if cmd[0] == "useradd"]
    groups = [cmd[-1] for cmd in plan if cmd[0] == "groupadd"]
    try:
        for command in plan:
            subprocess.run(command, check=True, capture_output=True, timeout=60)
        runtime.ResetCache()
        assert runtime.Mode() == runtime.MODE_SEPARATE
        yield names
    finally:
        for user in users:
            subprocess.run(["userdel", user], check=False, capture_output=True, timeout=60)
        for group in groups:
            subprocess.run(["groupdel", group], check=False, capture_output=True,
                           timeout=60)
        runtime.ResetCache()


def _Owner(path: str) -> str:
    st = os.lstat(path)
    return f"{pwd.getpwuid(st.st_uid).pw_name}:{grp.getgrgid(st.st_gid).gr_name}"


def test_ownership_under_privilege_separation(separate, capsys):
    names = separate
    # Directories are created with their owners; the files the test writes
    # next belong to root, and so does a directory given back to root
    _Populate()
    assert _Owner(pathutils.RUN_DIR) == f"{names.masterd_user}:{names.daemons_group}"
    assert _Owner(pathutils.RAPI_DATA_DIR) == f"{names.rapi_user}:{names.masterd_group}"
    os.chown(pathutils.RUN_DIR, 0, 0)
    os.chown(pathutils.SOCKET_DIR, 0, 0)
    masterd_confd = f"{names.masterd_user}:{names.confd_group}"
    found = _Differences()
    assert f"{pathutils.CLUSTER_CONF_FILE}: owner root:root, expected {masterd_confd}" \
        in found
    assert (f"{pathutils.RAPI_USERS_FILE}: owner root:root, expected"
            f" {names.rapi_user}:{names.masterd_group}") in found
    assert (f"{pathutils.RUN_DIR}: owner root:root, expected"
            f" {names.masterd_user}:{names.daemons_group}") in found
    assert (f"{pathutils.SOCKET_DIR}: owner root:root, expected"
            f" {names.masterd_user}:{names.admin_group}") in found
    # The node daemon's log is root's already
    assert not any(line.startswith(pathutils.DAEMONS_LOGFILES[constants.NODED])
                   for line in found)
    os.chmod(pathutils.CONFD_HMAC_KEY, 0o644)
    assert f"{pathutils.CONFD_HMAC_KEY}: mode 0644, expected 0440" in _Differences()

    assert ensure_dirs.Main([]) == constants.EXIT_SUCCESS
    out = capsys.readouterr().out
    assert f"{pathutils.CLUSTER_CONF_FILE}: owner root:root changed to {masterd_confd}" \
        in out
    assert _Owner(pathutils.CLUSTER_CONF_FILE) == masterd_confd
    assert _Owner(pathutils.CONFD_HMAC_KEY) == f"{names.confd_user}:{names.masterd_group}"
    assert _Mode(pathutils.CONFD_HMAC_KEY) == 0o440
    assert _Owner(pathutils.DAEMONS_LOGFILES[constants.MASTERD]) == \
        f"{names.masterd_user}:{names.masterd_group}"
    assert _Owner(pathutils.DATA_DIR) == f"{names.masterd_user}:{names.masterd_group}"
    assert _Differences() == []
    # The queue's files are given to the master daemon with --full-run only
    job = os.path.join(pathutils.QUEUE_DIR, "job-1")
    assert _Owner(job) == "root:root"
    assert ensure_dirs.Main(["--full-run"]) == constants.EXIT_SUCCESS
    assert _Owner(job) == f"{names.masterd_user}:{names.masterd_group}"
    assert _Differences(full_run=True) == []


def test_launcher_runs_in_a_node_root(node):
    """tools/ensure-dirs as the administrator runs it."""
    env = dict(os.environ)
    tool = os.path.join(REPO, "tools", "ensure-dirs")
    assert os.access(tool, os.X_OK)
    proc = subprocess.run([sys.executable, tool, "--check"], env=env, capture_output=True,
                          text=True, timeout=60, check=False)
    assert proc.returncode == 1 and f"{pathutils.DATA_DIR}: missing" in proc.stdout
    proc = subprocess.run([sys.executable, tool, "-d"], env=env, capture_output=True,
                          text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert f"{pathutils.DATA_DIR}: created with mode 0755" in proc.stdout
    assert f"ensure-dirs: {pathutils.CLUSTER_CONF_FILE}: absent" in proc.stderr
    assert _Differences() == []


# --- daemon-util start ---------------------------------------------------------------

_FAKE_DAEMON = """\
import os, stat, sys
run_dir = sys.argv[-1]
with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "seen"), "w") as fd:
    fd.write("%o" % stat.S_IMODE(os.stat(run_dir).st_mode))
"""


@pytest.fixture
def fake_daemons(node, tmp_path, monkeypatch):
    """A daemons directory whose ganeti-noded only records RUN_DIR's mode
    when it is started, then exits as a ready daemon does."""
    directory = tmp_path / "daemons"
    directory.mkdir()
    (directory / constants.NODED).write_text(_FAKE_DAEMON)
    monkeypatch.setenv("GANETI_DAEMONS_DIR", str(directory))
    return directory / "seen"


def test_daemon_util_start_runs_ensure_dirs_first(fake_daemons, capsys):
    _Populate()
    os.chmod(pathutils.RUN_DIR, 0o700)
    os.chmod(pathutils.RAPI_USERS_FILE, 0o666)
    # Neither stop nor check touches anything
    assert daemon_util.Main(["stop", constants.NODED]) == constants.EXIT_SUCCESS
    assert daemon_util.Main(["check", constants.NODED]) == constants.EXIT_FAILURE
    assert _Mode(pathutils.RUN_DIR) == 0o700
    capsys.readouterr()
    assert daemon_util.Main(["start", constants.NODED, pathutils.RUN_DIR]) == \
        constants.EXIT_SUCCESS
    out = capsys.readouterr().out
    # The daemon already found the directory fixed
    assert fake_daemons.read_text() == "775"
    assert f"ensure-dirs: {pathutils.RAPI_USERS_FILE}: mode 0666 changed to 0640" in out
    assert f"{constants.NODED} started" in out
    assert _Differences() == []


def test_daemon_util_start_fails_when_ensure_dirs_does(fake_daemons, tmp_path, capsys):
    _Populate()
    os.rmdir(pathutils.SOCKET_DIR)
    os.symlink(tmp_path, pathutils.SOCKET_DIR)
    assert daemon_util.Main(["start", constants.NODED, pathutils.RUN_DIR]) == \
        constants.EXIT_FAILURE
    err = capsys.readouterr().err
    assert f"Cannot start {constants.NODED}: ensure-dirs could not fix" in err
    assert f"{pathutils.SOCKET_DIR}: is a symbolic link" in err
    assert not fake_daemons.exists()
