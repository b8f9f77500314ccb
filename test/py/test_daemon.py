"""ganeti.daemon: logging with console fallback, detaching, ready files."""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
import textwrap
import time

import pytest

from ganeti import daemon
from ganeti.utils import mlock


def _Record(msg: str) -> logging.LogRecord:
    return logging.LogRecord("test", logging.WARNING, __file__, 1, msg, None, None)


def test_log_file(tmp_path):
    handler = daemon.LogFileWithConsoleFallback(str(tmp_path / "x.log"),
                                                console=str(tmp_path / "console"))
    handler.emit(_Record("hello"))
    handler.close()
    assert (tmp_path / "x.log").read_text() == "hello\n"
    assert not (tmp_path / "console").exists()


def test_log_record_with_a_lone_surrogate(tmp_path):
    # found by test/integration/test_fuzz.py: a JSON key "\ud800" quoted in
    # an error message made logging raise, which killed the node daemon's
    # child serving the request
    handler = daemon.LogFileWithConsoleFallback(str(tmp_path / "x.log"),
                                                console=str(tmp_path / "console"))
    handler.emit(_Record("bad key \ud800 here"))
    handler.close()
    assert (tmp_path / "x.log").read_text() == "bad key \\ud800 here\n"


def test_log_file_is_private_whatever_the_umask(tmp_path):
    # ensure-dirs' mode: a daemon may log before it detaches (umask 022)
    handler = daemon.LogFileWithConsoleFallback(str(tmp_path / "x.log"),
                                                console=str(tmp_path / "console"))
    old_umask = os.umask(0o022)
    try:
        handler.emit(_Record("hello"))
    finally:
        os.umask(old_umask)
        handler.close()
    assert (tmp_path / "x.log").stat().st_mode & 0o777 == 0o600


def test_unwritable_log_goes_to_console(tmp_path):
    console = tmp_path / "console"
    handler = daemon.LogFileWithConsoleFallback(str(tmp_path / "no" / "x.log"),
                                                console=str(console))
    handler.emit(_Record("disk is gone"))
    text = console.read_text()
    assert "disk is gone" in text and "cannot write to" in text
    assert handler.console_records == 1
    # Once the log file can be written again, records go there
    (tmp_path / "no").mkdir()
    handler.emit(_Record("back"))
    handler.close()
    assert (tmp_path / "no" / "x.log").read_text() == "back\n"


def test_write_errors_go_to_console(tmp_path):
    console = tmp_path / "console"
    handler = daemon.LogFileWithConsoleFallback(str(tmp_path / "x.log"),
                                                console=str(console))

    class _Broken(io.StringIO):
        def write(self, text):
            raise OSError(5, "Input/output error")

    handler._stream = _Broken()
    handler.emit(_Record("io error"))
    assert "io error" in console.read_text()
    assert "Input/output error" in console.read_text()


def test_console_failure_falls_back_to_stream(tmp_path):
    stream = io.StringIO()
    handler = daemon.LogFileWithConsoleFallback(str(tmp_path / "no" / "x.log"),
                                                console=str(tmp_path / "no" / "console"),
                                                fallback_stream=stream)
    handler.emit(_Record("last resort"))
    assert "last resort" in stream.getvalue()


def test_setup_logging(tmp_path):
    root = logging.getLogger("")
    saved = (list(root.handlers), root.level)
    try:
        daemon.SetupLogging("prog", str(tmp_path / "p.log"), debug=True)
        logging.debug("debug line")
        assert root.level == logging.DEBUG
        for handler in root.handlers:
            handler.flush()
        assert "debug line" in (tmp_path / "p.log").read_text()
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
            handler.close()
        for handler in saved[0]:
            root.addHandler(handler)
        root.setLevel(saved[1])


def test_daemonize_and_ready_file(tmp_path):
    ready = tmp_path / "ready"
    script = textwrap.dedent(f"""
        import os, signal, time
        from ganeti import daemon
        notify = daemon.Daemonize()
        daemon.WriteReadyFile({str(ready)!r}, "127.0.0.1", 1811)
        notify()
        signal.pause()
    """)
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", script], timeout=30)
    assert proc.returncode == 0
    address, port, pid = ready.read_text().split()
    try:
        assert (address, port) == ("127.0.0.1", "1811")
        assert os.path.exists(f"/proc/{pid}")
        # Detached: in a session of its own, not ours
        assert os.getsid(int(pid)) != os.getsid(0)
    finally:
        os.kill(int(pid), 15)
    assert time.monotonic() - start < 30


def test_daemonize_reports_early_death(tmp_path):
    script = "from ganeti import daemon\ndaemon.Daemonize()\nraise SystemExit(3)\n"
    assert subprocess.run([sys.executable, "-c", script], timeout=30).returncode == 1


def test_mlockall_in_child():
    script = textwrap.dedent("""
        from ganeti.utils import mlock
        ok = mlock.Mlockall(onfault=True)
        status = open("/proc/self/status").read()
        locked = int(status.split("VmLck:")[1].split()[0])
        print(ok, locked)
        mlock.Munlockall()
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True,
                         text=True, timeout=30).stdout.split()
    if out[0] != "True":
        pytest.skip("mlockall not permitted here")
    assert int(out[1]) > 0
    assert mlock.MCL_CURRENT | mlock.MCL_FUTURE == 3
