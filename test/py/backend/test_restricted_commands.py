"""backend.restricted_commands: the node-side checks, the lock and the delay."""

from __future__ import annotations

import os

import pytest

from ganeti import errors, pathutils, utils
from ganeti.backend import RPCFail
from ganeti.backend import restricted_commands as rc

NOBODY = 65534


@pytest.fixture
def cmd_dir(node_root, monkeypatch):
    """The node's restricted commands directory (root-owned, 0755); refusals
    are not delayed but recorded."""
    os.makedirs(pathutils.RESTRICTED_COMMANDS_DIR, mode=0o755)
    os.chmod(pathutils.RESTRICTED_COMMANDS_DIR, 0o755)
    sleeps: list[tuple[float, bool]] = []

    def sleep(seconds):
        sleeps.append((seconds, _LockHeld()))

    monkeypatch.setattr(rc, "_sleep_fn", sleep)
    yield pathutils.RESTRICTED_COMMANDS_DIR, sleeps


def _LockHeld() -> bool:
    with utils.FileLock.Open(pathutils.RESTRICTED_COMMANDS_LOCK_FILE) as lock:
        try:
            lock.Exclusive(blocking=False)
        except errors.LockError:
            return True
    return False


def _Script(directory, name, body, mode=0o755):
    path = os.path.join(directory, name)
    utils.WriteFile(path, data=f"#!/bin/sh\n{body}\n", mode=mode)
    return path


# --- Names ------------------------------------------------------------------------------

@pytest.mark.parametrize("name,reason", [
    ("", "Missing command name"),
    ("  ", "Missing command name"),
    (None, "Missing command name"),
    ("some/name", "a file name is expected, not a path"),
    ("../moo", "a file name is expected, not a path"),
    ("/bin/sh", "a file name is expected, not a path"),
    ("./foo", "a file name is expected, not a path"),
    (".", "forbidden characters"),
    ("..", "forbidden characters"),
    ("run.sh", "forbidden characters"),
    ("bash -c ls", "forbidden characters"),
    ("x;y", "forbidden characters"),
    ("'", "forbidden characters"),
])
def test_bad_names(name, reason):
    assert reason in rc.VerifyName(name)


@pytest.mark.parametrize("name", ["date", "fix-disk_2", "ABC"])
def test_good_names(name):
    assert rc.VerifyName(name) is None


# --- The directory ------------------------------------------------------------------------

def test_directory_checks(tmp_path):
    missing = str(tmp_path / "missing")
    assert "cannot be used: No such file" in rc.VerifyDirectory(missing)
    afile = tmp_path / "file"
    afile.write_text("")
    assert "is not a directory" in rc.VerifyDirectory(str(afile))
    good = tmp_path / "good"
    good.mkdir(mode=0o755)
    os.chmod(good, 0o755)
    assert rc.VerifyDirectory(str(good)) is None
    for mode in (0o775, 0o757, 0o777, 0o1755):
        os.chmod(good, mode)
        assert "too permissive a mode" in rc.VerifyDirectory(str(good)), oct(mode)
    os.chmod(good, 0o700)
    assert rc.VerifyDirectory(str(good)) is None


@pytest.mark.skipif(os.geteuid() != 0, reason="changing owners needs root")
def test_directory_owned_by_another_user(tmp_path):
    other = tmp_path / "other"
    other.mkdir(mode=0o755)
    os.chown(other, NOBODY, NOBODY)
    assert "is not owned by root" in rc.VerifyDirectory(str(other))


# --- The command ------------------------------------------------------------------------------

def test_good_command(cmd_dir):
    directory, _ = cmd_dir
    _Script(directory, "ok", "true")
    assert rc.VerifyCommand(directory, "ok") is None
    os.chmod(os.path.join(directory, "ok"), 0o500)
    assert rc.VerifyCommand(directory, "ok") is None


@pytest.mark.parametrize("mode,reason", [
    (0o775, "too permissive a mode (0775"),    # group-writable
    (0o757, "too permissive a mode (0757"),    # world-writable
    (0o4755, "too permissive a mode (4755"),   # setuid
    (0o644, "is not executable"),
])
def test_command_mode(cmd_dir, mode, reason):
    directory, _ = cmd_dir
    path = _Script(directory, "cmd", "true", mode=mode)
    os.chmod(path, mode)
    assert reason in rc.VerifyCommand(directory, "cmd")


@pytest.mark.skipif(os.geteuid() != 0, reason="changing owners needs root")
def test_command_owned_by_another_user(cmd_dir):
    directory, _ = cmd_dir
    os.chown(_Script(directory, "cmd", "true"), NOBODY, NOBODY)
    assert "is not owned by root" in rc.VerifyCommand(directory, "cmd")


@pytest.mark.skipif(os.geteuid() != 0, reason="changing owners needs root")
def test_daemon_user_is_trusted_too(cmd_dir, monkeypatch):
    # an unprivileged virtual cluster: files of the daemon's own user
    directory, _ = cmd_dir
    os.chown(directory, NOBODY, NOBODY)
    os.chown(_Script(directory, "cmd", "true"), NOBODY, NOBODY)
    assert "is not owned by root" in rc.VerifyDirectory(directory)
    monkeypatch.setattr(rc.os, "geteuid", lambda: NOBODY)
    assert rc.VerifyDirectory(directory) is None
    assert rc.VerifyCommand(directory, "cmd") is None


def test_command_not_a_regular_file(cmd_dir):
    directory, _ = cmd_dir
    os.mkdir(os.path.join(directory, "adir"))
    assert "is not a regular file" in rc.VerifyCommand(directory, "adir")
    assert "does not exist" in rc.VerifyCommand(directory, "nothere")


def test_symlinks(cmd_dir, tmp_path):
    directory, _ = cmd_dir
    # a symlink to a trusted file in a trusted directory is allowed (Ganeti's)
    trusted = tmp_path / "trusted"
    trusted.mkdir(mode=0o755)
    os.chmod(trusted, 0o755)
    target = _Script(str(trusted), "real", "echo real")
    os.symlink(target, os.path.join(directory, "link"))
    assert rc.VerifyCommand(directory, "link") is None
    # ... but not to a group-writable file
    loose = _Script(str(trusted), "loose", "true", mode=0o775)
    os.chmod(loose, 0o775)
    os.symlink(loose, os.path.join(directory, "loose-link"))
    assert "too permissive" in rc.VerifyCommand(directory, "loose-link")
    # ... nor into a directory others may write (the file could be swapped)
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o777)
    swappable = _Script(str(shared), "prog", "true")
    os.symlink(swappable, os.path.join(directory, "shared-link"))
    reason = rc.VerifyCommand(directory, "shared-link")
    assert "symlink target" in reason and "too permissive" in reason
    # a dangling symlink, a symlink loop
    os.symlink(str(tmp_path / "gone"), os.path.join(directory, "dangling"))
    assert "symlink to a missing file" in rc.VerifyCommand(directory, "dangling")
    os.symlink("loop", os.path.join(directory, "loop"))
    assert "cannot be used" in rc.VerifyCommand(directory, "loop")


# --- Running -----------------------------------------------------------------------------------

def test_run_returns_output_with_a_clean_environment(cmd_dir, node_root):
    directory, sleeps = cmd_dir
    _Script(directory, "show", 'echo "args=$# cwd=$(pwd)"; env | sort; echo err >&2')
    output = rc.RunRestrictedCmd("show")
    lines = output.splitlines()
    assert lines[0] == "args=0 cwd=/"
    assert f"GANETI_ROOTDIR={node_root}" in lines
    assert "GANETI_HOSTNAME=node1.example.com" in lines
    # nothing of ours leaks in (the shell adds PWD and the like itself)
    assert not [line for line in lines if line.startswith(("PYTHONPATH=", "HOME=",
                                                           "PATH=/"))]
    assert lines[-1] == "err"
    assert sleeps == []


def test_command_failure_is_reported_without_delay(cmd_dir):
    directory, sleeps = cmd_dir
    _Script(directory, "fails", "echo broken; exit 3")
    with pytest.raises(RPCFail, match="Restricted command 'fails' failed: exited with"
                       " exit code 3; output: broken"):
        rc.RunRestrictedCmd("fails")
    assert sleeps == []


@pytest.mark.parametrize("name,setup,reason", [
    ("missing", None, "does not exist"),
    ("../../../bin/sh", None, "a file name is expected, not a path"),
    ("loose", 0o775, "too permissive a mode"),
    ("noexec", 0o644, "is not executable"),
])
def test_refusal_is_delayed_with_the_lock_held(cmd_dir, name, setup, reason):
    directory, sleeps = cmd_dir
    if setup is not None:
        os.chmod(_Script(directory, name, "echo ran"), setup)
    with pytest.raises(RPCFail, match=f"Restricted command '.*' refused: .*{reason}"):
        rc.RunRestrictedCmd(name)
    assert sleeps == [(rc.FAILURE_DELAY, True)]
    assert not _LockHeld()


def test_refused_when_the_directory_is_not_trusted(cmd_dir):
    directory, sleeps = cmd_dir
    _Script(directory, "ok", "echo ran")
    os.chmod(directory, 0o777)
    with pytest.raises(RPCFail, match="restricted commands directory .* too permissive"):
        rc.RunRestrictedCmd("ok")
    os.chmod(directory, 0o755)
    os.rename(directory, directory + ".off")
    with pytest.raises(RPCFail, match="cannot be used: No such file"):
        rc.RunRestrictedCmd("ok")
    assert [delay for delay, _ in sleeps] == [rc.FAILURE_DELAY] * 2


def test_script_that_cannot_start(cmd_dir):
    directory, sleeps = cmd_dir
    path = os.path.join(directory, "garbage")
    utils.WriteFile(path, data=b"\x7fELF nonsense", mode=0o755)
    with pytest.raises(RPCFail, match="refused: Can't execute"):
        rc.RunRestrictedCmd("garbage")
    assert len(sleeps) == 1


def test_one_command_at_a_time(cmd_dir, monkeypatch):
    directory, _ = cmd_dir
    lock_file = pathutils.RESTRICTED_COMMANDS_LOCK_FILE
    # The lock is held while the command runs
    _Script(directory, "probe", f"flock -n {lock_file} echo free || echo locked")
    assert rc.RunRestrictedCmd("probe") == "locked\n"
    # Another command waits for it, at most LOCK_TIMEOUT seconds
    monkeypatch.setattr(rc, "LOCK_TIMEOUT", 0.2)
    with utils.FileLock.Open(lock_file) as lock:
        lock.Exclusive()
        with pytest.raises(RPCFail, match="Another restricted command is still running"):
            rc.RunRestrictedCmd("probe")
    assert rc.RunRestrictedCmd("probe") == "locked\n"


def test_output_is_capped(cmd_dir, monkeypatch):
    directory, _ = cmd_dir
    monkeypatch.setattr(rc, "MAX_OUTPUT", 10)
    _Script(directory, "chatty", "echo 0123456789abcdef")
    assert rc.RunRestrictedCmd("chatty") == "0123456789"


def test_limits_fit_the_rpc_timeout():
    from ganeti import constants
    from ganeti.rpc import defs
    assert 0 < rc.FAILURE_DELAY <= 10
    call = defs.CALLS["restricted_command"]
    assert call.timeout == constants.RPC_TMO_SLOW and call.arg_names == ["cmd"]
    # The answer (after waiting for the lock) arrives before the RPC gives up
    assert rc.LOCK_TIMEOUT + rc.COMMAND_TIMEOUT + rc.FAILURE_DELAY < call.timeout
