"""ganeti.http.forking: the forking server, run in a process of its own
(forking_helper.py) with a handler that can crash its process."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass

import pytest

pytestmark = pytest.mark.timeout(120)

_HELPER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "forking_helper.py")


def _Wait(predicate, timeout=10.0, what="condition"):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def _State(pid: int) -> str | None:
    """A process's state letter (R, S, Z...), None if it does not exist."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fd:
            return fd.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None


@dataclass
class _Server:
    directory: str
    proc: subprocess.Popen
    port: int = 0

    @property
    def pid(self) -> int:
        return self.proc.pid

    def Children(self) -> list[int]:
        try:
            with open(f"/proc/{self.pid}/task/{self.pid}/children",
                      encoding="ascii") as fd:
                return [int(pid) for pid in fd.read().split()]
        except OSError:
            return []

    def Output(self) -> str:
        with open(os.path.join(self.directory, "stderr"), encoding="utf-8",
                  errors="replace") as fd:
            return fd.read()

    def Started(self) -> list[int]:
        """Pids of the children that entered /block."""
        return [int(name.split(".")[1]) for name in os.listdir(self.directory)
                if name.startswith("started.")]

    def Release(self) -> None:
        """Let every /block request waiting now go on."""
        fd = os.open(os.path.join(self.directory, "release"),
                     os.O_WRONLY | os.O_NONBLOCK)
        os.close(fd)

    def Stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                pass
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)
        self.proc.wait(15)


@pytest.fixture
def start_server(tmp_path):
    started: list[_Server] = []

    def _Start(**kwargs) -> _Server:
        directory = tmp_path / f"srv{len(started)}"
        directory.mkdir()
        with open(directory / "stderr", "wb") as err:
            proc = subprocess.Popen([sys.executable, _HELPER, str(directory),
                                     json.dumps(kwargs)],
                                    stdin=subprocess.DEVNULL, stdout=err, stderr=err,
                                    start_new_session=True)
        srv = _Server(str(directory), proc)
        started.append(srv)
        ready = directory / "ready"
        _Wait(lambda: ready.exists() or proc.poll() is not None, what="the server")
        assert proc.poll() is None, srv.Output()
        srv.port = int(ready.read_text().split()[1])
        return srv

    yield _Start
    for srv in started:
        srv.Stop()


def _Connect(srv, source="127.0.0.1"):
    return socket.create_connection(("127.0.0.1", srv.port), timeout=10,
                                    source_address=(source, 0))


def _Answer(sock) -> tuple[int, dict[str, str], bytes]:
    """Read one answer (status, headers, body) from a kept-open connection."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed after {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:])
    length = int(headers["content-length"])
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk
        body += chunk
    return int(lines[0].split()[1]), headers, body


def _Ask(sock, path, body=b"", close=False):
    sock.sendall(b"PUT %s HTTP/1.1\r\nContent-Length: %d\r\n%s\r\n%s"
                 % (path.encode(), len(body),
                    b"Connection: close\r\n" if close else b"", body))
    return _Answer(sock)


def _Pid(sock) -> int:
    code, _, body = _Ask(sock, "/pid")
    assert code == 200
    return int(body)


def _Request(srv, path="/x", body=b"abc", source="127.0.0.1"):
    with _Connect(srv, source) as sock:
        code, _, payload = _Ask(sock, path, body, close=True)
    return code, payload


def _Closed(sock, timeout=10) -> bool:
    """Whether the server closed ``sock`` (without answering)."""
    sock.settimeout(timeout)
    try:
        return sock.recv(100) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def _Open(sock) -> bool:
    """Whether ``sock`` is still open with nothing to read."""
    sock.setblocking(False)
    try:
        sock.recv(1)
    except BlockingIOError:
        return True
    finally:
        sock.setblocking(True)
    return False


def test_a_child_serves_all_requests_of_its_connection(start_server):
    srv = start_server()
    with _Connect(srv) as first, _Connect(srv) as second:
        pids = [_Pid(first) for _ in range(5)]
        # One child, the same for every request, not the server itself
        assert len(set(pids)) == 1 and pids[0] != srv.pid
        other = _Pid(second)
        assert other not in (pids[0], srv.pid)
        assert sorted(srv.Children()) == sorted([pids[0], other])
        assert _Pid(first) == pids[0] and _Pid(second) == other


def test_silent_and_closed_connections_get_no_child(start_server):
    srv = start_server(request_timeout=60)
    silent = [_Connect(srv) for _ in range(10)]
    try:
        for _ in range(10):  # reachability checks: connect, close
            _Connect(srv).close()
        with _Connect(srv) as sock:
            # Accepted after the others: they have been seen by now
            pid = _Pid(sock)
            assert srv.Children() == [pid]
    finally:
        for sock in silent:
            sock.close()


@pytest.mark.parametrize("path,how", [
    ("/exit", "exited with code 3"),
    ("/abort", "killed by SIGABRT"),
    ("/segv", "killed by SIGSEGV"),
])
def test_a_crashing_child_takes_only_its_connection(start_server, path, how):
    srv = start_server(max_clients=1)
    with _Connect(srv) as other, _Connect(srv) as doomed:
        other_pid = _Pid(other)
        pid = _Pid(doomed)
        doomed.sendall(b"PUT %s HTTP/1.1\r\nContent-Length: 0\r\n\r\n" % path.encode())
        assert _Closed(doomed)
        # Reaped, not left a zombie
        _Wait(lambda: _State(pid) is None, what="the crashed child to be reaped")
        # The parent logs how the child ended right after reaping it
        _Wait(lambda: how in srv.Output(), what=f"the log line '{how}'")
        # The others go on; the token the child held came back (one only)
        assert _Pid(other) == other_pid
        assert _Request(srv) == (200, b"cba")
        assert srv.proc.poll() is None


def test_memory_error_is_an_internal_error(start_server):
    srv = start_server()
    with _Connect(srv) as sock:
        pid = _Pid(sock)
        code, headers, _ = _Ask(sock, "/memory")
        assert code == 500 and headers["connection"] == "close"
        assert _Closed(sock)
    _Wait(lambda: _State(pid) is None, what="the child to end")
    assert _Request(srv) == (200, b"cba")


def test_children_are_reaped(start_server):
    srv = start_server()
    socks = [_Connect(srv) for _ in range(8)]
    pids = [_Pid(sock) for sock in socks]
    assert sorted(srv.Children()) == sorted(pids)
    for sock in socks:
        sock.close()
    # A zombie would stay in the list of children
    _Wait(lambda: not srv.Children(), what="the children to be reaped")
    assert all(_State(pid) is None for pid in pids)


def test_idle_child_exits_after_keepalive_timeout(start_server):
    srv = start_server(keepalive_timeout=0.5)
    with _Connect(srv) as sock:
        pid = _Pid(sock)
        start = time.monotonic()
        assert _Closed(sock)
        assert time.monotonic() - start < 5
    _Wait(lambda: _State(pid) is None, what="the idle child to end")


def _Wchan(pid: int) -> str:
    """Where in the kernel a process waits."""
    with open(f"/proc/{pid}/wchan", encoding="ascii") as fd:
        return fd.read()


def test_max_clients_is_shared_by_the_children(start_server):
    srv = start_server(max_clients=1)
    with _Connect(srv) as blocked, _Connect(srv) as waiting:
        pid = _Pid(waiting)
        blocked.sendall(b"PUT /block HTTP/1.1\r\nContent-Length: 0\r\n\r\n")
        _Wait(lambda: srv.Started(), what="the blocking request")
        waiting.sendall(b"PUT /pid HTTP/1.1\r\nContent-Length: 0\r\n\r\n")
        # The second child has read its request and waits for the only
        # token, which the first holds
        _Wait(lambda: "pipe_read" in _Wchan(pid), what="a child waiting for a token")
        assert _Open(waiting)
        srv.Release()
        assert _Answer(blocked)[2] == b"released"
        assert _Answer(waiting)[0] == 200


def test_full_server_closes_the_longest_waiting_connection(start_server):
    srv = start_server(max_connections=3)
    socks = [_Connect(srv) for _ in range(3)]
    try:
        pids = [_Pid(sock) for sock in socks]  # three idle children
        assert _Request(srv) == (200, b"cba")
        assert _Closed(socks[0])
        _Wait(lambda: _State(pids[0]) is None, what="the closed child to end")
        assert _Open(socks[1]) and _Open(socks[2])
    finally:
        for sock in socks:
            sock.close()


def test_silent_connection_makes_room_when_waiting_longest(start_server):
    srv = start_server(max_connections=2, request_timeout=60)
    with _Connect(srv) as silent, _Connect(srv) as busy:
        # Accepted after the silent one, answered later still
        _Pid(busy)
        assert _Request(srv) == (200, b"cba")
        assert _Closed(silent)
        assert _Open(busy)


def test_connections_per_address_are_limited(start_server):
    srv = start_server(max_connections_per_address=2)
    first = [_Connect(srv, "127.0.0.2") for _ in range(2)]
    other = [_Connect(srv, "127.0.0.3") for _ in range(2)]
    try:
        for sock in first + other:
            _Pid(sock)
        assert _Request(srv, source="127.0.0.2") == (200, b"cba")
        assert _Closed(first[0])
        assert all(_Open(sock) for sock in first[1:] + other)
    finally:
        for sock in first + other:
            sock.close()


def test_busy_connections_are_not_closed_for_new_ones(start_server):
    srv = start_server(max_connections=1)
    with _Connect(srv) as blocked:
        blocked.sendall(b"PUT /block HTTP/1.1\r\nContent-Length: 0\r\n\r\n")
        _Wait(lambda: srv.Started(), what="the blocking request")
        with _Connect(srv) as refused:
            assert _Closed(refused)
        srv.Release()
        assert _Answer(blocked)[2] == b"released"


def test_sigterm_kills_the_children(start_server):
    srv = start_server()
    with _Connect(srv) as idle, _Connect(srv) as blocked:
        idle_pid = _Pid(idle)
        blocked.sendall(b"PUT /block HTTP/1.1\r\nContent-Length: 0\r\n\r\n")
        _Wait(lambda: srv.Started(), what="the blocking request")
        (busy_pid,) = srv.Started()
        srv.proc.send_signal(signal.SIGTERM)
        assert srv.proc.wait(15) == 0
        # Killed and reaped before the server exited; nothing answered
        assert _State(idle_pid) is None and _State(busy_pid) is None
        assert _Closed(blocked) and _Closed(idle)
    assert "stopped" in srv.Output()


def test_sigusr1_lets_running_requests_answer(start_server):
    srv = start_server()
    with _Connect(srv) as idle, _Connect(srv) as blocked:
        _Pid(idle)
        blocked.sendall(b"PUT /block HTTP/1.1\r\nContent-Length: 0\r\n\r\n")
        _Wait(lambda: srv.Started(), what="the blocking request")
        srv.proc.send_signal(signal.SIGUSR1)
        # The idle connection goes at once; the running request is answered
        assert _Closed(idle)
        assert srv.proc.poll() is None
        srv.Release()
        code, headers, body = _Answer(blocked)
        assert (code, body) == (200, b"released")
        assert headers["connection"] == "close"
        assert srv.proc.wait(15) == 0
    # A new connection is refused now
    with pytest.raises(ConnectionRefusedError):
        _Connect(srv)


def test_children_die_with_the_server(start_server):
    srv = start_server()
    with _Connect(srv) as sock:
        pid = _Pid(sock)
        srv.proc.kill()
        srv.proc.wait(15)
        # The orphan does not go on serving (it may linger as a zombie of
        # whichever process adopted it)
        _Wait(lambda: _State(pid) in (None, "Z"), what="the orphan to die")
        assert _Closed(sock)
