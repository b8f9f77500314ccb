"""ganeti-impexpd end to end: real socat, real TLS on 127.0.0.1.

Each test starts daemons as the node daemon does (their own session), waits
for their status files with a deadline, and stops every process it started
by its pid; the daemons' children are found by session id.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from ganeti import constants, objects
from ganeti.backend.impexp import SessionMembers
from ganeti.impexpd import options, pump, socat, status
from ganeti.utils import x509

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
DAEMON = os.path.join(REPO, "daemons", constants.IMPEXPD)
DEADLINE = 30.0
MAGIC = "transfer-0123456789"
MIB = 1024 * 1024

pytestmark = pytest.mark.skipif(shutil.which("socat") is None, reason="needs socat")


@dataclass
class Certs:
    """Key+certificate files of two unrelated self-signed CAs."""
    a: str
    b: str
    a_key: str
    a_cert: str


@pytest.fixture(scope="module")
def certs(tmp_path_factory) -> Certs:
    base = tmp_path_factory.mktemp("certs")
    a, b = str(base / "a.pem"), str(base / "b.pem")
    key_pem, cert_pem = x509.GenerateSelfSignedSslCert(a, 1)
    x509.GenerateSelfSignedSslCert(b, 2)
    a_key, a_cert = str(base / "a.key"), str(base / "a.cert")
    for path, data in ((a_key, key_pem), (a_cert, cert_pem)):
        with open(path, "wb") as fd:
            fd.write(data)
    return Certs(a, b, a_key, a_cert)


class Daemon:
    """A ganeti-impexpd process and its status file."""

    def __init__(self, workdir: str, label: str, mode: str, args: list[str]) -> None:
        self.status_file = os.path.join(workdir, f"{label}.status")
        self.log_file = os.path.join(workdir, f"{label}.log")
        with open(self.log_file, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, DAEMON, self.status_file, mode, *args],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
        self.pid = self.proc.pid

    def Status(self) -> dict | None:
        try:
            with open(self.status_file, encoding="utf-8") as fd:
                return json.load(fd)
        except FileNotFoundError:
            return None

    def WaitStatus(self, predicate: Callable[[dict], bool], what: str) -> dict:
        """Poll the status until ``predicate`` holds (a deadline, no fixed sleep)."""
        deadline = time.monotonic() + DEADLINE
        while time.monotonic() < deadline:
            current = self.Status()
            if current is not None and predicate(current):
                return current
            if self.proc.poll() is not None and (current is None
                                                 or current["exit_status"] is not None):
                break
            time.sleep(0.02)
        raise AssertionError(f"{what}: status {self.Status()}, log:\n{self.Log()}")

    def WaitEnd(self) -> dict:
        code = self.proc.wait(DEADLINE)
        final = self.Status()
        assert final is not None, self.Log()
        assert final["exit_status"] == code, (final, code)
        return final

    def Log(self) -> str:
        with open(self.log_file, encoding="utf-8", errors="replace") as fd:
            return fd.read()

    def Children(self) -> list[int]:
        return [pid for pid in SessionMembers(self.pid) if pid != self.pid]

    def Stop(self) -> None:
        for pid in self.Children():
            _Kill(pid)
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(DEADLINE)


def _Kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _Gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fd:
            return fd.read().rpartition(")")[2].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True


@pytest.fixture
def run(tmp_path, certs):
    """Start daemons; every one is stopped (with its children) at the end."""
    started: list[Daemon] = []

    def _Run(mode: str, args: list[str], label: str | None = None,
             cert: str | None = None, ca: str | None = None) -> Daemon:
        tls = ["--cert", cert or certs.a, "--ca", ca or certs.a]
        daemon = Daemon(str(tmp_path), label or f"{mode}{len(started)}", mode, tls + args)
        started.append(daemon)
        return daemon

    yield _Run
    for daemon in started:
        daemon.Stop()


def _Import(run, sink: list[str], *extra: str, **kwargs) -> tuple[Daemon, int]:
    imp = run(constants.IEM_IMPORT, ["--bind", "127.0.0.1", "--magic", MAGIC, *sink,
                                     *extra], **kwargs)
    current = imp.WaitStatus(lambda s: s["listen_port"] or s["exit_status"] is not None,
                             "import listening")
    assert current["listen_port"], imp.Log()
    return imp, current["listen_port"]


def _Export(run, port: int, source: list[str], *extra: str, magic: str = MAGIC,
            **kwargs) -> Daemon:
    return run(constants.IEM_EXPORT, ["--host", "127.0.0.1", "--port", str(port),
                                      "--magic", magic, *source, *extra], **kwargs)


def _Payload(path, size: int) -> bytes:
    data = os.urandom(size)
    path.write_bytes(data)
    return data


@pytest.mark.parametrize("size", [0, pump.CHUNK_SIZE, 3 * MIB + 17])
def test_file_to_file(run, tmp_path, size):
    data = _Payload(tmp_path / "src", size)
    imp, port = _Import(run, ["--data-file", str(tmp_path / "dst")])
    exp = _Export(run, port, ["--data-file", str(tmp_path / "src")])
    exp_status, imp_status = exp.WaitEnd(), imp.WaitEnd()
    assert (exp_status["exit_status"], imp_status["exit_status"]) == (0, 0), \
        (exp.Log(), imp.Log())
    assert (tmp_path / "dst").read_bytes() == data
    for final in (exp_status, imp_status):
        assert final["connected"] is True and final["error_message"] is None
        assert final["progress_mbytes"] == round(size / MIB, 2)
        assert final["progress_percent"] == 100
        objects.ImportExportStatus.FromDict(final)
    assert imp_status["listen_port"] == port
    assert not exp.Children() and not imp.Children()


def test_gzip_device_and_separate_key(run, tmp_path, certs):
    data = os.urandom(MIB) + b"\0" * (2 * MIB)
    (tmp_path / "src").write_bytes(data)
    # The sink is a "device": written in place, never truncated
    (tmp_path / "disk").write_bytes(b"\xff" * (4 * MIB))
    imp, port = _Import(run, ["--data-device", str(tmp_path / "disk")],
                        "--compress", "gzip-fast", "--expected-size", "3")
    exp = _Export(run, port, ["--data-file", str(tmp_path / "src")],
                  "--compress", "gzip-fast", "--key", certs.a_key, cert=certs.a_cert,
                  ca=certs.a_cert)
    assert exp.WaitEnd()["exit_status"] == 0, exp.Log()
    assert imp.WaitEnd()["exit_status"] == 0, imp.Log()
    disk = (tmp_path / "disk").read_bytes()
    assert disk[:len(data)] == data and disk[len(data):] == b"\xff" * MIB
    assert "Starting gzip-fast: gzip -d -c" in imp.Log()


def test_data_commands(run, tmp_path):
    data = _Payload(tmp_path / "src", 2 * MIB + 5)
    imp, port = _Import(run, ["--data-cmd", f"cat > {tmp_path}/dst"])
    exp = _Export(run, port, ["--data-cmd", f"cat {tmp_path}/src; echo done >&2"])
    exp_status = exp.WaitEnd()
    assert exp_status["exit_status"] == 0, exp.Log()
    assert "command: done" in exp_status["recent_output"]
    assert imp.WaitEnd()["exit_status"] == 0, imp.Log()
    assert (tmp_path / "dst").read_bytes() == data


def test_failing_data_command(run, tmp_path):
    imp, port = _Import(run, ["--data-cmd", "cat > /dev/null"])
    exp = _Export(run, port, ["--data-cmd", "echo 'no disk here' >&2; exit 3"])
    final = exp.WaitEnd()
    assert final["exit_status"] == 1
    assert final["error_message"] == "command failed (exit code 3): no disk here"
    # The end mark was not sent: the importer knows the data is incomplete
    imp_status = imp.WaitEnd()
    assert (imp_status["exit_status"], imp_status["error_message"]) == (1, pump.EARLY_END)


def test_magic_mismatch(run, tmp_path):
    imp, port = _Import(run, ["--data-file", str(tmp_path / "dst")])
    # An endless source: the exporter cannot finish before the importer refuses
    exp = _Export(run, port, ["--data-cmd", "cat /dev/zero"], magic="someone-else")
    imp_status = imp.WaitEnd()
    assert imp_status["exit_status"] == 1
    assert imp_status["error_message"] == (
        f"magic mismatch: expected '{MAGIC}', the exporter sent 'someone-else'"
        " (wrong peer?)")
    assert not (tmp_path / "dst").exists()
    exp_status = exp.WaitEnd()
    assert exp_status["exit_status"] == 1
    assert exp_status["error_message"].startswith("the peer closed the connection"), \
        exp_status
    assert not imp.Children() and not exp.Children()


@pytest.mark.parametrize("foreign", ["exporter", "importer"])
def test_certificate_of_another_ca(run, tmp_path, certs, foreign):
    _Payload(tmp_path / "src", 1000)
    imp_cert = certs.b if foreign == "importer" else certs.a
    exp_cert = certs.b if foreign == "exporter" else certs.a
    imp, port = _Import(run, ["--data-file", str(tmp_path / "dst")], cert=imp_cert)
    exp = _Export(run, port, ["--data-file", str(tmp_path / "src")], cert=exp_cert)
    imp_status, exp_status = imp.WaitEnd(), exp.WaitEnd()
    assert imp_status["exit_status"] == 1 and exp_status["exit_status"] == 1
    refuser, refused = (imp_status, exp_status) if foreign == "exporter" \
        else (exp_status, imp_status)
    assert refuser["error_message"].startswith(
        "TLS handshake failed: the peer's certificate is not signed by the expected CA"), \
        refuser
    assert refuser["connected"] is False and refused["error_message"]
    assert not (tmp_path / "dst").exists()


def test_import_connect_timeout(run, tmp_path):
    imp, port = _Import(run, ["--data-file", str(tmp_path / "dst")],
                        "--connect-timeout", "1")
    final = imp.WaitEnd()
    assert final["exit_status"] == 1
    assert final["error_message"] == "no connection within 1 seconds"
    assert final["listen_port"] == port and not imp.Children()


def test_export_retries_then_gives_up(run, tmp_path):
    _Payload(tmp_path / "src", 10)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        free_port = sock.getsockname()[1]
    exp = _Export(run, free_port, ["--data-file", str(tmp_path / "src")],
                  "--connect-retries", "1", "--connect-timeout", "20")
    final = exp.WaitEnd()
    assert final["exit_status"] == 1
    assert final["error_message"].startswith(
        f"could not connect to 127.0.0.1 port {free_port} after 2 attempt(s):"), final
    assert "Connection refused" in final["error_message"]
    assert final["connected"] is False


def test_abort_during_transfer(run, tmp_path):
    """SIGTERM stops an export in full flow: 'aborted', no child left; the
    progress fields were filled meanwhile."""
    imp, port = _Import(run, ["--data-cmd", "cat > /dev/null"], "--compress", "gzip")
    exp = _Export(run, port, ["--data-cmd", "cat /dev/zero"], "--compress", "gzip",
                  "--expected-size", "1000000")
    running = exp.WaitStatus(lambda s: s["progress_throughput"], "export progress")
    assert running["exit_status"] is None and running["connected"]
    assert running["progress_mbytes"] > 0 and running["progress_throughput"] > 0
    assert 0 <= running["progress_percent"] < 100 and running["progress_eta"] > 0
    children = exp.Children()
    assert len(children) >= 3, children  # socat, gzip, sh (and its cat)
    exp.proc.send_signal(signal.SIGTERM)
    final = exp.WaitEnd()
    assert final["exit_status"] == 1 and final["error_message"] == "aborted"
    assert all(_Gone(pid) for pid in children)
    imp_status = imp.WaitEnd()
    assert (imp_status["exit_status"], imp_status["error_message"]) == (1, pump.EARLY_END)
    assert not imp.Children()


def test_stream_without_end_mark_is_no_success(run, tmp_path):
    """An exporter killed hard leaves socat to close the connection cleanly:
    the importer must still fail, for the end mark is missing."""
    imp, port = _Import(run, ["--data-file", str(tmp_path / "dst")])
    exp = _Export(run, port, ["--data-cmd", "cat /dev/zero"])
    imp.WaitStatus(lambda s: s["progress_mbytes"], "import progress")
    exp.proc.kill()
    exp.proc.wait(DEADLINE)
    final = imp.WaitEnd()
    assert final["exit_status"] == 1
    assert final["error_message"] == pump.EARLY_END
    assert not imp.Children()


def test_abort_while_listening(run, tmp_path):
    imp, _ = _Import(run, ["--data-file", str(tmp_path / "dst")])
    children = imp.Children()
    assert len(children) == 1  # socat
    imp.proc.send_signal(signal.SIGTERM)
    final = imp.WaitEnd()
    assert (final["exit_status"], final["error_message"]) == (1, "aborted")
    assert all(_Gone(pid) for pid in children)


def test_ipv6(run, tmp_path):
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback")
    data = _Payload(tmp_path / "src", 1234)
    imp = run(constants.IEM_IMPORT, ["--bind", "::1", "--ipv6", "--data-file",
                                     str(tmp_path / "dst")])
    port = imp.WaitStatus(lambda s: s["listen_port"], "import listening")["listen_port"]
    exp = run(constants.IEM_EXPORT, ["--host", "::1", "--port", str(port), "--ipv6",
                                     "--data-file", str(tmp_path / "src")])
    assert exp.WaitEnd()["exit_status"] == 0, exp.Log()
    assert imp.WaitEnd()["exit_status"] == 0, imp.Log()
    assert (tmp_path / "dst").read_bytes() == data


@pytest.mark.parametrize("args, message", [
    (["--compress", "xz"], "compression tool 'xz' is not allowed on this node"),
    (["--compress", "gz ip"], "invalid compression tool"),
    (["--magic", "a,b:c"], "invalid magic"),
    (["--port", "1"], "--host and --port are for exports"),
])
def test_bad_command_lines(tmp_path, certs, args, message):
    result = subprocess.run(
        [sys.executable, DAEMON, str(tmp_path / "status"), "import", "--cert", certs.a,
         "--ca", certs.a, "--bind", "127.0.0.1", "--data-file", str(tmp_path / "x"),
         *args], capture_output=True, text=True, timeout=DEADLINE, check=False)
    assert result.returncode == 2
    assert message in result.stderr
    assert not (tmp_path / "status").exists()


# --- the pieces, without processes -----------------------------------------------------


def test_compression_commands():
    assert options.CompressionCommands("none") is None
    assert options.CompressionCommands("gzip") == (["gzip", "-c"], ["gzip", "-d", "-c"])
    assert options.CompressionCommands("gzip-slow")[0] == ["gzip", "-9", "-c"]
    assert options.CompressionCommands("lzop") == (["lzop", "-c"], ["lzop", "-d", "-c"])
    assert options.CheckCompression("lzop", ["gzip"]).startswith("compression tool")
    assert options.CheckCompression("../x", ["../x"]).startswith("invalid")


def test_socat_notices():
    monitor = socat.SocatMonitor()
    line = monitor.Feed("2026/12/07 16:28:14 socat[14901] N listening on AF=10"
                        " [0000:0000:0000:0000:0000:0000:0000:0001]:50657")
    assert line.startswith("socat: N listening on") and monitor.listen_port == 50657
    monitor.Feed("2026/12/07 16:28:16 socat[1] N SSL connection using TLS_AES_256")
    assert monitor.connected
    monitor.Feed("2026/12/07 16:28:16 socat[1] E SSL_connect(): error:0A000086:SSL"
                 " routines::certificate verify failed")
    assert monitor.Explain(1).startswith("TLS handshake failed: the peer's certificate")
    assert socat.ListenCommand("::1", "/c", None, "/ca", True)[-2].startswith(
        "OPENSSL-LISTEN:0,bind=[::1],")


def test_progress_figures():
    now = [100.0]
    progress = status.Progress(expected=10 * MIB, clock=lambda: now[0])
    progress.Sample(0)
    assert progress.Fields()["progress_throughput"] is None
    now[0] += 2
    progress.Sample(4 * MIB)
    fields = progress.Fields()
    assert fields == {"progress_mbytes": 4.0, "progress_throughput": 2.0,
                      "progress_eta": 3, "progress_percent": 40}
    # The burst leaves the window: 1 MiB/s from now on
    done = 4 * MIB
    for _ in range(12):
        now[0] += 1
        done += MIB
        progress.Sample(done)
    assert progress.Fields()["progress_throughput"] == pytest.approx(1.0)
    assert progress.Fields()["progress_percent"] == 100
