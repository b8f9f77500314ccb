"""Tests for ganeti.utils.process."""

import os
import signal
import subprocess
import sys
import time

import pytest

from ganeti import errors, utils
from ganeti.utils import process


@pytest.fixture
def short_grace(monkeypatch):
    """Make the SIGTERM -> SIGKILL grace short for timeout tests."""
    monkeypatch.setattr(process, "_TIMEOUT_KILL_GRACE", 0.3)


def _WriteToFd(fd):
    """A command writing "through" to file descriptor ``fd``."""
    return [sys.executable, "-c", f"import os; os.write({fd}, b'through\\n')"]


class TestRunCmd:
    def test_list_success(self):
        result = utils.RunCmd(["echo", "hello world"])
        assert not result.failed
        assert result.exit_code == 0
        assert result.signal is None
        assert result.fail_reason is None
        assert result.stdout == "hello world\n"
        assert result.stderr == ""
        assert result.output == "hello world\n"
        assert result.cmd == ["echo", "hello world"]

    def test_list_is_not_shell(self):
        result = utils.RunCmd(["echo", "$HOME; id"])
        assert result.stdout == "$HOME; id\n"

    def test_string_uses_shell(self):
        result = utils.RunCmd("echo a; echo b >&2; exit 3")
        assert result.failed
        assert result.exit_code == 3
        assert result.fail_reason == "exited with exit code 3"
        assert result.stdout == "a\n"
        assert result.stderr == "b\n"
        assert result.output == "a\nb\n"

    def test_signal(self):
        result = utils.RunCmd("kill -9 $$")
        assert result.failed
        assert result.exit_code is None
        assert result.signal == signal.SIGKILL
        assert result.fail_reason == "terminated by signal 9"

    def test_not_found(self):
        with pytest.raises(errors.OpExecError, match="not found"):
            utils.RunCmd(["/nonexistent/program", "x"])

    def test_not_found_in_shell(self):
        result = utils.RunCmd("/nonexistent/program")
        assert result.exit_code == 127

    def test_missing_cwd(self, tmp_path):
        with pytest.raises(errors.OpExecError, match="working directory"):
            utils.RunCmd(["true"], cwd=str(tmp_path / "missing"))

    def test_not_executable(self, tmp_path):
        script = tmp_path / "script"
        script.write_text("#!/bin/sh\necho hi\n")
        script.chmod(0o644)
        if os.access(script, os.X_OK):  # pragma: no cover - odd systems
            pytest.skip("root may execute anything here")
        with pytest.raises(errors.OpExecError):
            utils.RunCmd([str(script)])

    @pytest.mark.parametrize("cmd", [[], [None], ["echo", 5]])
    def test_invalid_command(self, cmd):
        with pytest.raises(errors.ProgrammerError):
            utils.RunCmd(cmd)

    def test_default_cwd_is_root(self):
        assert utils.RunCmd(["pwd"]).stdout == "/\n"

    def test_cwd(self, tmp_path):
        assert utils.RunCmd(["pwd"], cwd=str(tmp_path)).stdout == \
            f"{os.path.realpath(tmp_path)}\n"

    def test_env_added(self, monkeypatch):
        monkeypatch.setenv("GNT_TEST_INHERITED", "yes")
        result = utils.RunCmd("echo $GNT_TEST_INHERITED $GNT_TEST_ADDED $LC_ALL",
                              env={"GNT_TEST_ADDED": "added"})
        assert result.stdout == "yes added C\n"

    def test_env_reset(self, monkeypatch):
        monkeypatch.setenv("GNT_TEST_INHERITED", "yes")
        result = utils.RunCmd(["/usr/bin/env"], env={"ONLY": "this"},
                              reset_env=True)
        assert result.stdout.splitlines() == ["ONLY=this"]

    def test_env_overrides_lc_all(self):
        result = utils.RunCmd("echo $LC_ALL", env={"LC_ALL": "C.UTF-8"})
        assert result.stdout == "C.UTF-8\n"

    def test_stdin_is_empty(self):
        result = utils.RunCmd(["cat"])
        assert result.stdout == ""
        assert not result.failed

    def test_input_data(self):
        assert utils.RunCmd(["cat"], input_data="in\u00e9\n").stdout == \
            "in\u00e9\n"
        assert utils.RunCmd(["wc", "-c"], input_data=b"\x00" * 70000
                            ).stdout.strip() == "70000"

    def test_large_output(self):
        result = utils.RunCmd("head -c 1000000 /dev/zero | tr '\\0' x; "
                              "head -c 500000 /dev/zero | tr '\\0' y >&2")
        assert len(result.stdout) == 1000000
        assert len(result.stderr) == 500000

    def test_undecodable_output(self):
        result = utils.RunCmd(["printf", "a\\377b"])
        assert result.stdout == "a\ufffdb"

    def test_output_file(self, tmp_path):
        out = tmp_path / "out.log"
        out.write_text("previous\n")
        result = utils.RunCmd("echo to-out; echo to-err >&2; exit 1",
                              output=str(out))
        assert result.failed
        assert result.exit_code == 1
        assert result.stdout == result.stderr == ""
        assert out.read_text() == "previous\nto-out\nto-err\n"

    def test_noclose_fds(self):
        read_fd, write_fd = os.pipe()
        try:
            result = utils.RunCmd(_WriteToFd(write_fd),
                                  noclose_fds=[write_fd])
            assert not result.failed, result.output
            os.close(write_fd)
            write_fd = None
            with os.fdopen(read_fd) as fh:
                read_fd = None
                assert fh.read() == "through\n"
        finally:
            for fd in (read_fd, write_fd):
                if fd is not None:
                    os.close(fd)

    def test_fds_closed_by_default(self):
        read_fd, write_fd = os.pipe()
        try:
            result = utils.RunCmd(_WriteToFd(write_fd))
            assert result.failed
            assert "Bad file descriptor" in result.stderr
        finally:
            os.close(read_fd)
            os.close(write_fd)

    def test_timeout(self, short_grace):
        start = time.monotonic()
        result = utils.RunCmd(["sleep", "30"], timeout=0.2)
        assert time.monotonic() - start < 10
        assert result.failed
        assert result.signal == signal.SIGTERM
        assert result.timeout == 0.2
        assert result.timeout_action == process.TIMEOUT_TERM
        assert result.fail_reason.startswith("timed out after 0.2s")

    def test_timeout_escalates_to_kill(self, short_grace):
        # SIGTERM stays ignored across exec, so the sleep ignores it too
        result = utils.RunCmd("trap '' TERM; exec sleep 30", timeout=1)
        assert result.failed
        assert result.signal == signal.SIGKILL
        assert result.timeout_action == process.TIMEOUT_KILL
        assert result.fail_reason == \
            "timed out after 1s (terminated by signal 9)"

    def test_timeout_kills_process_group(self, short_grace):
        # The background sleep keeps stdout open; only killing the whole
        # group lets RunCmd return quickly
        start = time.monotonic()
        result = utils.RunCmd("sleep 30 & wait", timeout=0.3)
        assert time.monotonic() - start < 10
        assert result.failed
        assert result.timeout_action is not None

    def test_timeout_output_file(self, tmp_path, short_grace):
        out = tmp_path / "out"
        result = utils.RunCmd("echo started; exec sleep 30", timeout=0.5,
                              output=str(out))
        assert result.failed and result.timeout == 0.5
        assert out.read_text() == "started\n"

    def test_fast_command_not_timed_out(self):
        result = utils.RunCmd(["true"], timeout=30)
        assert not result.failed
        assert result.timeout is None
        assert result.timeout_action is None

    def test_output_before_timeout_kept(self, short_grace):
        result = utils.RunCmd("echo partial; exec sleep 30", timeout=0.5)
        assert result.stdout == "partial\n"

    def test_interactive(self):
        result = utils.RunCmd(["true"], interactive=True)
        assert not result.failed
        assert result.stdout == ""

    @pytest.mark.parametrize("kwargs", [{"output": "/tmp/x"},
                                        {"input_data": "x"}])
    def test_interactive_conflicts(self, kwargs):
        with pytest.raises(errors.ProgrammerError):
            utils.RunCmd(["true"], interactive=True, **kwargs)

    def test_negative_timeout(self):
        with pytest.raises(errors.ProgrammerError):
            utils.RunCmd(["true"], timeout=-1)


def test_run_result_reasons():
    assert utils.RunResult(0, None, "", "", "x").fail_reason is None
    assert utils.RunResult(2, None, "", "", "x").fail_reason == \
        "exited with exit code 2"
    assert utils.RunResult(None, 15, "", "", "x").fail_reason == \
        "terminated by signal 15"
    result = utils.RunResult(0, None, "o", "e", "x", timeout_action="term",
                             timeout=5)
    assert result.failed
    assert result.fail_reason == "timed out after 5s"
    assert result.output == "oe"
    assert "failed=True" in repr(result)


class TestProcesses:
    def test_is_process_alive(self):
        assert utils.IsProcessAlive(os.getpid())
        assert not utils.IsProcessAlive(0)
        assert not utils.IsProcessAlive(-1)

    def test_dead_and_zombie(self):
        proc = subprocess.Popen(["true"])
        # Until reaped, the finished child is a zombie: not alive
        os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)
        assert not utils.IsProcessAlive(proc.pid)
        proc.wait()
        assert not utils.IsProcessAlive(proc.pid)

    def test_kill_process(self):
        proc = subprocess.Popen(["sleep", "30"])
        try:
            assert utils.IsProcessAlive(proc.pid)
            utils.KillProcess(proc.pid, waitpid=True, timeout=10)
            assert not utils.IsProcessAlive(proc.pid)
            with pytest.raises(ChildProcessError):
                os.waitpid(proc.pid, os.WNOHANG)  # already reaped
        finally:
            proc.returncode = -1  # stop Popen from reaping it again

    def test_kill_escalates(self, monkeypatch):
        proc = subprocess.Popen(
            [sys.executable, "-c",
             "import signal, sys; signal.signal(signal.SIGTERM, signal.SIG_IGN);"
             " print('ready', flush=True); sys.stdin.read()"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            assert proc.stdout.readline() == "ready\n"
            utils.KillProcess(proc.pid, timeout=0.3)
            assert proc.wait(timeout=10) == -signal.SIGKILL
        finally:
            proc.kill()
            proc.wait()
            proc.stdin.close()
            proc.stdout.close()

    def test_kill_no_wait(self):
        proc = subprocess.Popen(["sleep", "30"])
        utils.KillProcess(proc.pid, signal_=signal.SIGKILL, timeout=0)
        assert proc.wait(timeout=10) == -signal.SIGKILL

    def test_kill_dead_process(self):
        proc = subprocess.Popen(["true"])
        proc.wait()
        utils.KillProcess(proc.pid)  # nothing to do

    @pytest.mark.parametrize("pid", [0, -1])
    def test_kill_invalid_pid(self, pid):
        with pytest.raises(errors.ProgrammerError):
            utils.KillProcess(pid)


# Writes its pid file, reports, and holds it until stdin is closed
_PIDFILE_HOLDER = r"""
import sys
from ganeti.utils import process
fd = process.WritePidFile(sys.argv[1])
print("written", flush=True)
sys.stdin.read()
"""


class TestPidFile:
    def test_write_read_remove(self, tmp_path):
        pidfile = str(tmp_path / "d.pid")
        fd = utils.WritePidFile(pidfile)
        try:
            assert utils.ReadPidFile(pidfile) == os.getpid()
            assert utils.ReadFile(pidfile) == f"{os.getpid()}\n"
            # Our own lock also blocks a second writer in this process
            with pytest.raises(errors.PidFileLockError, match=pidfile):
                utils.WritePidFile(pidfile)
        finally:
            os.close(fd)
        utils.RemovePidFile(pidfile)
        assert not os.path.exists(pidfile)
        utils.RemovePidFile(pidfile)   # already gone: fine
        assert utils.ReadPidFile(pidfile) == 0

    def test_stale_file_overwritten(self, tmp_path):
        pidfile = str(tmp_path / "d.pid")
        utils.WriteFile(pidfile, data="99999999999\nmore junk\n")
        fd = utils.WritePidFile(pidfile)
        os.close(fd)
        assert utils.ReadFile(pidfile) == f"{os.getpid()}\n"

    @pytest.mark.parametrize("content", ["", "abc", "-5", "0", "12 34"])
    def test_read_invalid(self, tmp_path, content):
        pidfile = str(tmp_path / "d.pid")
        utils.WriteFile(pidfile, data=content)
        assert utils.ReadPidFile(pidfile) == 0

    def test_other_process_holds(self, tmp_path):
        pidfile = str(tmp_path / "d.pid")
        proc = subprocess.Popen([sys.executable, "-c", _PIDFILE_HOLDER,
                                 pidfile], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True)
        try:
            assert proc.stdout.readline() == "written\n"
            assert utils.ReadPidFile(pidfile) == proc.pid
            assert utils.ReadLockedPidFile(pidfile) == proc.pid
            with pytest.raises(errors.PidFileLockError, match=str(proc.pid)):
                utils.WritePidFile(pidfile)
            # The failed attempt must not have clobbered the file
            assert utils.ReadPidFile(pidfile) == proc.pid
        finally:
            proc.stdin.close()
            proc.wait(timeout=30)
            proc.stdout.close()
        # Holder gone: the file is unlocked and can be taken over
        assert utils.ReadLockedPidFile(pidfile) is None
        os.close(utils.WritePidFile(pidfile))

    def test_read_locked_missing(self, tmp_path):
        assert utils.ReadLockedPidFile(str(tmp_path / "none.pid")) is None
