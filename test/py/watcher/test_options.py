"""The watcher's command line, pause, instance status merge and locks."""

from __future__ import annotations

import logging
import time

import pytest

from ganeti import constants, errors, watcher
from ganeti.cli import ParseTimespec
from ganeti.luxi import handlers


@pytest.fixture(autouse=True)
def _keep_root_logger():
    """watcher.Main sets up logging: give the root logger back afterwards."""
    root = logging.getLogger()
    handlers_before, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        if handler not in handlers_before:
            root.removeHandler(handler)
            handler.close()
    for handler in handlers_before:
        if handler not in root.handlers:
            root.addHandler(handler)
    root.setLevel(level)


def test_defaults():
    opts = watcher.ParseOptions([])
    assert opts.job_age == 6 * 3600 and not opts.debug and not opts.ignore_pause
    assert opts.rapi_ip is None and not opts.no_verify_disks and not opts.no_strict
    assert opts.node_group is None and opts.wait_children


def test_ganeti_options():
    opts = watcher.ParseOptions(["--debug", "--job-age", "2h", "--ignore-pause",
                                 "--rapi-ip", "192.0.2.1", "--no-verify-disks",
                                 "--no-strict", "--node-group", "uuid-1"])
    assert opts.job_age == 7200 and opts.debug and opts.ignore_pause
    assert opts.rapi_ip == "192.0.2.1" and opts.no_verify_disks and opts.no_strict
    assert opts.node_group == "uuid-1"
    assert watcher.ChildArgs(opts, "g2") == [
        "--node-group", "g2", "--job-age", "7200", "--debug", "--ignore-pause",
        "--no-verify-disks", "--no-strict", "--rapi-ip", "192.0.2.1"]


@pytest.mark.parametrize("bad", ["-1", "abc", "5x", ""])
def test_bad_job_age_is_refused_naming_it(capsys, bad):
    with pytest.raises(SystemExit) as exc:
        watcher.ParseOptions([f"--job-age={bad}"])
    assert exc.value.code == 2
    assert "job-age" in capsys.readouterr().err


def test_empty_node_group_refused(capsys):
    with pytest.raises(SystemExit):
        watcher.ParseOptions(["--node-group", " "])


@pytest.mark.parametrize("text,seconds", [("30", 30), ("30s", 30), ("5m", 300),
                                          ("2h", 7200), ("1d", 86400), ("1w", 604800)])
def test_pause_durations(text, seconds):
    assert ParseTimespec(text) == seconds


@pytest.mark.parametrize("text", ["-5", "-1h", "soon", "1.5h", "h", " "])
def test_bad_pause_durations_name_the_value(text):
    with pytest.raises(errors.OpPrereqError) as exc:
        ParseTimespec(text)
    assert text.strip() in str(exc.value)


def test_pause_file_round_trip_and_expiry(tmp_path):
    path = str(tmp_path / "watcher.pause")
    assert handlers.ReadWatcherPause(path) is None
    until = int(time.time()) + 3600
    assert handlers.WriteWatcherPause(until, path) == until
    assert handlers.ReadWatcherPause(path) == until
    # It ends by itself
    assert handlers.ReadWatcherPause(path, now=until + 1) is None
    with pytest.raises(errors.OpPrereqError, match="in the past"):
        handlers.WriteWatcherPause(time.time() - 10, path)
    # A node told late still takes it
    assert handlers.WriteWatcherPause(100, path, check_past=False) == 100
    assert handlers.ReadWatcherPause(path) is None
    handlers.WriteWatcherPause(None, path)
    handlers.WriteWatcherPause(None, path)


def test_backend_set_watcher_pause_refuses_bad_values(monkeypatch, tmp_path):
    from ganeti import backend, pathutils
    from ganeti.backend import watcher as bwatcher
    monkeypatch.setattr(pathutils, "WATCHER_PAUSEFILE", str(tmp_path / "p"))
    bwatcher.SetWatcherPause(int(time.time()) + 60)
    assert (tmp_path / "p").exists()
    bwatcher.SetWatcherPause(None)
    assert not (tmp_path / "p").exists()
    for bad in ("1h", True, [1]):
        with pytest.raises(backend.RPCFail):
            bwatcher.SetWatcherPause(bad)


def test_merge_instance_status(monkeypatch, tmp_path):
    from ganeti import pathutils
    monkeypatch.setattr(pathutils, "WATCHER_GROUP_INSTANCE_STATUS_FILE",
                        str(tmp_path / "watcher.%s.instance-status"))
    (tmp_path / "watcher.g1.instance-status").write_text("inst10 running\ninst2 x\n")
    (tmp_path / "watcher.g2.instance-status").write_text("inst1 ERROR_down\nbad\n")
    target = tmp_path / "instance-status"
    assert watcher.MergeInstanceStatus(["g1", "g2", "g3"], str(target)) == 3
    assert target.read_text() == "inst1 ERROR_down\ninst2 x\ninst10 running\n"


def test_second_watcher_exits_while_the_lock_is_held(monkeypatch, tmp_path):
    from ganeti import pathutils, utils
    monkeypatch.setattr(pathutils, "WATCHER_LOCK_FILE", str(tmp_path / "w.lock"))
    monkeypatch.setattr(pathutils, "LOCK_DIR", str(tmp_path))
    monkeypatch.setattr(pathutils, "LOG_WATCHER", str(tmp_path / "watcher.log"))
    monkeypatch.setattr(pathutils, "WATCHER_PAUSEFILE", str(tmp_path / "none"))
    ran = []
    monkeypatch.setattr(watcher, "GlobalWatcher", lambda opts: ran.append(1) or 0)
    with utils.FileLock.Open(str(tmp_path / "w.lock")) as lock:
        lock.Exclusive(blocking=False)
        assert watcher.Main([]) == constants.EXIT_SUCCESS
        assert ran == []
    assert "Another ganeti-watcher runs" in (tmp_path / "watcher.log").read_text()
    assert watcher.Main([]) == constants.EXIT_SUCCESS
    assert ran == [1]


def test_pause_stops_everything_unless_ignored(monkeypatch, tmp_path):
    from ganeti import pathutils
    monkeypatch.setattr(pathutils, "WATCHER_LOCK_FILE", str(tmp_path / "w.lock"))
    monkeypatch.setattr(pathutils, "LOCK_DIR", str(tmp_path))
    monkeypatch.setattr(pathutils, "LOG_WATCHER", str(tmp_path / "watcher.log"))
    monkeypatch.setattr(pathutils, "WATCHER_PAUSEFILE", str(tmp_path / "pause"))
    handlers.WriteWatcherPause(int(time.time()) + 600, str(tmp_path / "pause"))
    ran = []
    monkeypatch.setattr(watcher, "GlobalWatcher", lambda opts: ran.append(1) or 0)
    assert watcher.Main([]) == 0 and ran == []
    assert watcher.Main(["--ignore-pause"]) == 0 and ran == [1]
