"""Tests for ganeti-noded: a real daemon on a loopback address, real TLS."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import ssl
import threading
import time

import pytest

import nodedhelpers
from ganeti import constants, serializer
from ganeti import daemon as daemon_util
from ganeti import http as ghttp
from ganeti.http import client as http_client
from ganeti.rpc import client as rpc_client
from ganeti.server import noded


def _Wait(predicate, timeout=10.0, what="condition"):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def _ClientContext(crypto, with_cert=True):
    return ghttp.MakeClientSslContext(crypto.server_pem,
                                      crypto.client_pem if with_cert else None)


def _Request(daemon, crypto, method, path, body=b"", with_cert=True, headers=None):
    return http_client.HttpRequest(daemon.address, daemon.port, method, path,
                                   body=body, headers=headers,
                                   ssl_context=_ClientContext(crypto, with_cert),
                                   timeout=10)


@pytest.fixture
def daemon(start_noded):
    return start_noded(1, subnet=81, extra_args=["--max-body-size", "4096"])[0]


def test_version_over_https(daemon, cluster_crypto):
    resp = _Request(daemon, cluster_crypto, "PUT", "/version", b"[]")
    assert resp.code == 200
    assert resp.headers["content-type"] == ghttp.HTTP_APP_JSON
    assert serializer.LoadJson(resp.body) == [True, constants.PROTOCOL_VERSION]


def test_runner_version(daemon, cluster_crypto):
    runner = nodedhelpers.MakeRunner(cluster_crypto, [daemon])
    result = runner.call_version([daemon.name])[daemon.name]
    assert result.fail_msg is None
    assert result.payload == constants.PROTOCOL_VERSION
    assert result.node == daemon.name and result.call == "version"


@pytest.mark.parametrize("method,path,body,code,text", [
    ("GET", "/version", b"", 405, "Method GET not allowed"),
    ("POST", "/version", b"[]", 405, "Method POST not allowed"),
    ("PUT", "/no_such_call", b"[]", 404, "Unknown RPC call 'no_such_call'"),
    ("PUT", "/version", b"[not json", 400, "Invalid request body for 'version'"),
    ("PUT", "/version", b'{"a": 1}', 400, "must be a JSON list"),
    ("PUT", "/version", b"[1, 2]", 400, "takes 0 argument(s) (none), got 2"),
    ("PUT", "/test_delay", b"[]", 400, "takes 1 argument(s) (duration), got 0"),
    ("PUT", "/upload_file", b'[["relative", [0, ""], 420, null, null, null, null]]',
     400, "Invalid argument 'file_name'"),
    ("PUT", "/version", b"[" + b" " * 5000 + b"]", 413, "exceeds the limit of 4096"),
])
def test_bad_requests(daemon, cluster_crypto, method, path, body, code, text):
    resp = _Request(daemon, cluster_crypto, method, path, body)
    assert resp.code == code, resp.body
    assert text in resp.body.decode()
    if code == 405:
        assert resp.headers["allow"] == "PUT"
    # ... and the daemon goes on serving
    ok = _Request(daemon, cluster_crypto, "PUT", "/version", b"[]")
    assert ok.code == 200


def _RawTls(daemon, crypto, data: bytes) -> bytes:
    ctx = _ClientContext(crypto)
    with socket.create_connection((daemon.address, daemon.port), timeout=10) as raw:
        with ctx.wrap_socket(raw) as sock:
            sock.sendall(data)
            chunks = []
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
    return b"".join(chunks)


def test_put_without_length_is_refused(daemon, cluster_crypto):
    answer = _RawTls(daemon, cluster_crypto, b"PUT /version HTTP/1.1\r\nHost: x\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 411 ")
    assert b"Content-Length" in answer


def test_chunked_body_is_refused(daemon, cluster_crypto):
    answer = _RawTls(daemon, cluster_crypto,
                     b"PUT /version HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                     b"2\r\n[]\r\n0\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 411 ")


def test_malformed_request_line(daemon, cluster_crypto):
    answer = _RawTls(daemon, cluster_crypto, b"HELLO\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 400 ")
    answer = _RawTls(daemon, cluster_crypto, b"PUT /version HTTP/2.0\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 505 ")


def test_client_without_certificate_is_refused(daemon, cluster_crypto):
    resp = _Request(daemon, cluster_crypto, "PUT", "/version", b"[]", with_cert=False)
    assert resp.code == 403
    assert "client certificate" in resp.body.decode()
    assert _Request(daemon, cluster_crypto, "PUT", "/version", b"[]").code == 200


def test_client_with_foreign_certificate_is_refused(daemon, cluster_crypto, tmp_path):
    other = nodedhelpers.MakeClusterCrypto(str(tmp_path / "other"))
    ctx = ghttp.MakeClientSslContext(cluster_crypto.server_pem, other.client_pem)
    with pytest.raises(http_client.HttpClientError):
        http_client.HttpRequest(daemon.address, daemon.port, "PUT", "/version",
                                b"[]", ssl_context=ctx, timeout=10)
    assert _Request(daemon, cluster_crypto, "PUT", "/version", b"[]").code == 200


def test_cluster_certificate_works_as_client_certificate(daemon, cluster_crypto):
    ctx = ghttp.MakeClientSslContext(cluster_crypto.server_pem, cluster_crypto.server_pem)
    resp = http_client.HttpRequest(daemon.address, daemon.port, "PUT", "/version",
                                   b"[]", ssl_context=ctx, timeout=10)
    assert resp.code == 200


def test_client_checks_the_server_certificate(daemon, cluster_crypto, tmp_path):
    other = nodedhelpers.MakeClusterCrypto(str(tmp_path / "other"))
    ctx = ghttp.MakeClientSslContext(other.server_pem, other.client_pem)
    with pytest.raises(http_client.HttpClientError, match="CERTIFICATE_VERIFY_FAILED"):
        http_client.HttpRequest(daemon.address, daemon.port, "PUT", "/version",
                                b"[]", ssl_context=ctx, timeout=10)
    # The pycurl client refuses it as well
    runner = nodedhelpers.MakeRunner(other, [daemon])
    result = runner.call_version([daemon.name])[daemon.name]
    assert result.fail_msg and "TLS error" in result.fail_msg


def test_plain_tls_client_cannot_skip_tls(daemon):
    conn = http.client.HTTPConnection(daemon.address, daemon.port, timeout=10)
    try:
        with pytest.raises((http.client.HTTPException, OSError)):
            conn.request("PUT", "/version", body=b"[]")
            conn.getresponse().read()
    finally:
        conn.close()


class _SlowCall:
    """A ``test_delay`` call running in a thread; entering waits until the
    daemon handles it, leaving waits for the answer (in ``result``)."""

    def __init__(self, crypto, daemon, seconds: float):
        runner = nodedhelpers.MakeRunner(crypto, [daemon])
        self.daemon = daemon
        self.result = None
        self._thread = threading.Thread(
            target=lambda: setattr(self, "result",
                                   runner.call_test_delay([daemon.name], seconds)[daemon.name]))

    def running(self) -> bool:
        return self._thread.is_alive()

    def __enter__(self) -> _SlowCall:
        self._thread.start()
        _Wait(lambda: self.daemon.Sleepers(), what="the slow request")
        return self

    def __exit__(self, *exc) -> None:
        self._thread.join(30)


#: The node daemon's two ways of serving: a child per connection (the
#: default) and threads of one process (--threaded)
_MODES = pytest.mark.parametrize("mode", [[], ["--threaded"]], ids=["fork", "threaded"])


@_MODES
def test_slow_call_does_not_block_others(start_noded, cluster_crypto, mode):
    (daemon,) = start_noded(1, subnet=92, extra_args=mode)
    runner = nodedhelpers.MakeRunner(cluster_crypto, [daemon])
    with _SlowCall(cluster_crypto, daemon, 3.0) as slow:
        start = time.monotonic()
        fast = runner.call_version([daemon.name])[daemon.name]
        assert fast.fail_msg is None
        assert time.monotonic() - start < 1.5
        assert slow.running()
    assert slow.result.fail_msg is None


@_MODES
def test_sigterm_stops_daemon_mid_call(start_noded, cluster_crypto, mode):
    (daemon,) = start_noded(1, subnet=82, extra_args=mode)
    with _SlowCall(cluster_crypto, daemon, 60) as slow:
        children = daemon.Children()
        assert len(children) == (0 if mode else 1)
        start = time.monotonic()
        daemon.Signal(signal.SIGTERM)
        assert daemon.proc.wait(15) == 0
        # The running call is abandoned, not waited for; its child was
        # killed and reaped before the daemon exited
        assert time.monotonic() - start < 10
        assert all(_State(pid) is None for pid in children)
    res = slow.result
    # The connection ends mid-answer: the client sees it closed or reset
    assert res.fail_msg
    assert ("closed without a complete answer" in res.fail_msg
            or "Connection reset by peer" in res.fail_msg), res.fail_msg
    pidfile = os.path.join(daemon.root, "var", "run", "ganeti", "ganeti-noded.pid")
    assert not os.path.exists(pidfile)


@_MODES
def test_sigusr1_waits_for_running_calls(start_noded, cluster_crypto, mode):
    # The graceful stop (what a node leaving the cluster asks for) answers
    # the call in progress before the daemon exits, and closes idle
    # connections at once
    (daemon,) = start_noded(1, subnet=74, extra_args=mode)
    with _Tls(daemon, cluster_crypto) as idle:
        _Version(idle)
        with _SlowCall(cluster_crypto, daemon, 2.0) as slow:
            daemon.Signal(signal.SIGUSR1)
            idle.settimeout(10)
            assert idle.recv(100) == b""
            assert slow.running()
            assert daemon.proc.wait(15) == 0
    assert slow.result.fail_msg is None
    assert not daemon.Children()


def _State(pid: int) -> str | None:
    """A process's state letter (R, S, Z...); None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fd:
            return fd.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None


def _Sockets(pid: int) -> set[str]:
    """Inodes of the sockets a process has open."""
    inodes = set()
    fd_dir = f"/proc/{pid}/fd"
    try:
        names = os.listdir(fd_dir)
    except OSError:
        return inodes
    for name in names:
        try:
            target = os.readlink(os.path.join(fd_dir, name))
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    return inodes


def _Established(daemon) -> dict[str, tuple[int, int]]:
    """Established TCP connections: inode -> (pid holding it, client port),
    over the daemon and its children."""
    holders = {inode: pid for pid in [daemon.pid] + daemon.Children()
               for inode in _Sockets(pid)}
    found = {}
    for table in ("tcp", "tcp6"):
        with open(f"/proc/{daemon.pid}/net/{table}", encoding="ascii") as fd:
            for line in fd.readlines()[1:]:
                fields = line.split()
                if fields[3] == "01" and fields[9] in holders:  # ESTABLISHED
                    found[fields[9]] = (holders[fields[9]],
                                        int(fields[2].split(":")[1], 16))
    return found


def _Connections(daemon) -> int:
    """How many established TCP connections the daemon (or a child) has open."""
    return len(_Established(daemon))


def _ServingPid(daemon, sock) -> int:
    """The pid of the process serving the connection ``sock`` (ours)."""
    port = sock.getsockname()[1]
    pids = [pid for pid, peer_port in _Established(daemon).values() if peer_port == port]
    assert len(pids) == 1, pids
    return pids[0]


def _Tls(daemon, crypto) -> ssl.SSLSocket:
    """A kept-open TLS connection to the daemon."""
    raw = socket.create_connection((daemon.address, daemon.port), timeout=10)
    return _ClientContext(crypto).wrap_socket(raw)


def _Version(sock) -> None:
    """A version call on a kept-open connection."""
    sock.sendall(b"PUT /version HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n[]")
    data = b""
    while not (b"\r\n\r\n" in data and data.rstrip().endswith(b"]")):
        chunk = sock.recv(65536)
        assert chunk, data
        data += chunk
    assert data.startswith(b"HTTP/1.1 200 ") and b"Connection: keep-alive" in data, data


@_MODES
def test_connections_are_kept_open(start_noded, cluster_crypto, mode):
    (daemon,) = start_noded(1, subnet=93, extra_args=mode)
    runner = nodedhelpers.MakeRunner(cluster_crypto, [daemon])
    rpc_client.CloseConnections()
    _Wait(lambda: _Connections(daemon) == 0, what="no connection")
    for _ in range(5):
        assert runner.call_version([daemon.name])[daemon.name].fail_msg is None
    # One connection for all five calls (served by one child when forking)
    assert _Connections(daemon) == 1
    assert len(daemon.Children()) == (0 if mode else 1)
    rpc_client.CloseConnections()
    _Wait(lambda: _Connections(daemon) == 0,
          what="the connection to end after the client closed it")
    _Wait(lambda: not daemon.Children(), what="its child to end and be reaped")


def test_one_child_per_connection(daemon, cluster_crypto):
    with _Tls(daemon, cluster_crypto) as first, _Tls(daemon, cluster_crypto) as second:
        pids = set()
        for _ in range(3):
            _Version(first)
            pids.add(_ServingPid(daemon, first))
        # All requests of a connection go to one child
        assert len(pids) == 1
        (pid,) = pids
        assert pid != daemon.pid and pid in daemon.Children()
        # ... and another connection gets another child
        _Version(second)
        other = _ServingPid(daemon, second)
        assert other not in (pid, daemon.pid)
        assert sorted(daemon.Children()) == sorted([pid, other])
        # Memory is locked only with --mlock (see test_mlock)
        assert _LockedKb(pid) == 0
    _Wait(lambda: not daemon.Children(), what="the children to be reaped")
    assert _State(pid) is None and _State(other) is None


def test_crashed_child_takes_only_its_connection(start_noded, cluster_crypto):
    # One request at a time: the crashed child's token must come back
    (daemon,) = start_noded(1, subnet=94, extra_args=["--max-clients", "1"])
    runner = nodedhelpers.MakeRunner(cluster_crypto, [daemon])
    with _Tls(daemon, cluster_crypto) as other:
        _Version(other)
        with _SlowCall(cluster_crypto, daemon, 60) as slow:
            (sleeping,) = [pid for pid in daemon.Children()
                           if "nanosleep" in _Wchan(pid)]
            # As if the handler had crashed the interpreter
            os.kill(sleeping, signal.SIGSEGV)
        assert slow.result.fail_msg
        _Wait(lambda: _State(sleeping) is None, what="the crashed child to be reaped")
        # The daemon and the other connections go on
        assert daemon.proc.poll() is None
        _Version(other)
        assert runner.call_version([daemon.name])[daemon.name].fail_msg is None
    assert "killed by SIGSEGV while handling a request" in daemon.Output()


def _Wchan(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/wchan", encoding="ascii") as fd:
            return fd.read()
    except OSError:
        return ""


def _LockedKb(pid: int) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as fd:
        return int(fd.read().split("VmLck:")[1].split()[0])


def test_keepalive_timeout_closes_idle_connections(start_noded, cluster_crypto):
    (daemon,) = start_noded(1, subnet=75, extra_args=["--keepalive-timeout", "0.5"])
    ctx = ghttp.MakeClientSslContext(cluster_crypto.server_pem,
                                     cluster_crypto.client_pem)
    with socket.create_connection((daemon.address, daemon.port), timeout=10) as raw:
        with ctx.wrap_socket(raw) as sock:
            request = (b"PUT /version HTTP/1.1\r\nHost: x\r\n"
                       b"Content-Length: 2\r\n\r\n[]")
            sock.sendall(request + request)  # two requests, pipelined
            data = b""
            while data.count(b"HTTP/1.1 200") < 2 or not data.rstrip().endswith(b"]"):
                chunk = sock.recv(65536)
                assert chunk, data
                data += chunk
            assert b"Connection: keep-alive" in data
            # Then the server closes the idle connection
            start = time.monotonic()
            assert sock.recv(100) == b""
            assert time.monotonic() - start < 5


def _RawExchange(daemon, crypto, request: bytes) -> bytes:
    """Send ``request`` over TLS; return all the daemon answered until it
    closed the connection."""
    ctx = ghttp.MakeClientSslContext(crypto.server_pem, crypto.client_pem)
    with socket.create_connection((daemon.address, daemon.port), timeout=10) as raw:
        with ctx.wrap_socket(raw) as sock:
            sock.sendall(request)
            data = b""
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    return data
                data += chunk


def test_connection_close_is_honoured(daemon, cluster_crypto):
    data = _RawExchange(daemon, cluster_crypto,
                        b"PUT /version HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                        b"Content-Length: 2\r\n\r\n[]")
    assert data.startswith(b"HTTP/1.1 200") and b"Connection: close" in data


def test_errors_close_the_connection(daemon, cluster_crypto):
    data = _RawExchange(daemon, cluster_crypto,
                        b"PUT /nosuchcall HTTP/1.1\r\nHost: x\r\n"
                        b"Content-Length: 2\r\n\r\n[]")
    assert data.startswith(b"HTTP/1.1 404") and b"Connection: close" in data


def test_pid_file_and_log(daemon):
    pidfile = os.path.join(daemon.root, "var", "run", "ganeti", "ganeti-noded.pid")
    with open(pidfile, encoding="ascii") as fd:
        assert int(fd.read()) == daemon.pid
    logfile = os.path.join(daemon.root, "var", "log", "ganeti", "node-daemon.log")
    with open(logfile, encoding="utf-8") as fd:
        assert "serving on" in fd.read()


def test_second_daemon_same_root_refused(daemon, cluster_crypto):
    other = nodedhelpers.StartDaemon(os.path.dirname(daemon.root), cluster_crypto,
                                     daemon.name, daemon.address)
    try:
        assert other.proc.wait(30) == constants.EXIT_FAILURE
        assert "pid file" in other.Output()
    finally:
        other.Stop()


@_MODES
def test_mlock(start_noded, cluster_crypto, mode):
    (daemon,) = start_noded(1, subnet=83, mlock=True, extra_args=mode)
    with _Tls(daemon, cluster_crypto) as sock:
        _Version(sock)
        if "Cannot lock memory" in daemon.Output():
            pytest.skip("mlockall is not permitted here")
        assert _LockedKb(daemon.pid) > 0
        if not mode:
            # Locks are not inherited by a forked child, nor is
            # MCL_FUTURE: the child locked its memory itself
            assert _LockedKb(_ServingPid(daemon, sock)) > 0


def test_no_ssl_mode(start_noded):
    (daemon,) = start_noded(1, subnet=84, extra_args=["--no-ssl"])
    resp = http_client.HttpRequest(daemon.address, daemon.port, "PUT", "/version",
                                   b"[]", timeout=10)
    assert resp.code == 200
    assert serializer.LoadJson(resp.body) == [True, constants.PROTOCOL_VERSION]


def test_missing_certificate_fails_startup(tmp_path, cluster_crypto):
    daemon = nodedhelpers.StartDaemon(str(tmp_path), cluster_crypto, "bad.example.com",
                                      "127.0.85.1",
                                      ["-K", "/nonexistent.pem", "-C", "/nonexistent.pem"])
    try:
        assert daemon.proc.wait(30) == constants.EXIT_FAILURE
        assert "Cannot load the TLS key or certificate" in daemon.Output()
    finally:
        daemon.Stop()


def test_port_in_use_fails_startup(daemon, tmp_path, cluster_crypto):
    clash = nodedhelpers.StartDaemon(str(tmp_path / "c"), cluster_crypto,
                                     "clash.example.com", daemon.address,
                                     ["-p", str(daemon.port)])
    try:
        assert clash.proc.wait(30) == constants.EXIT_FAILURE
        assert "Cannot listen on" in clash.Output()
    finally:
        clash.Stop()


def test_parser_defaults():
    opts = noded.BuildParser().parse_args([])
    assert opts.mlock and opts.ssl and not opts.foreground and opts.port is None
    assert opts.max_clients == constants.NODED_MAX_CLIENTS
    with pytest.raises(SystemExit):
        noded.BuildParser().parse_args(["-b", "127.0.0.1", "-i", "lo"])
    with pytest.raises(SystemExit):
        noded.BuildParser().parse_args(["extra-argument"])


def test_daemon_port(monkeypatch):
    monkeypatch.setattr(socket, "getservbyname", lambda name, proto: 2811)
    assert daemon_util.GetDaemonPort(constants.NODED) == 2811

    def _NoService(name, proto):
        raise OSError("service not found")
    monkeypatch.setattr(socket, "getservbyname", _NoService)
    assert daemon_util.GetDaemonPort(constants.NODED) == constants.DEFAULT_NODED_PORT


def test_interface_address():
    assert noded.GetInterfaceAddress("lo") == "127.0.0.1"


def test_tls_handshake_timeout_does_not_block(start_noded, cluster_crypto):
    (daemon,) = start_noded(1, subnet=86, extra_args=["--request-timeout", "2"])
    # A client that connects and never speaks ...
    idle = socket.create_connection((daemon.address, daemon.port), timeout=10)
    try:
        # ... does not hold up others
        assert _Request(daemon, cluster_crypto, "PUT", "/version", b"[]").code == 200
        # and is dropped after the request timeout
        idle.settimeout(10)
        assert idle.recv(100) == b""
    finally:
        idle.close()


def test_ssl_module_server_context_refuses_unverified(cluster_crypto):
    params = ghttp.HttpSslParams(cluster_crypto.server_pem, cluster_crypto.server_pem)
    ctx = ghttp.MakeServerSslContext(params)
    assert ctx.verify_mode == ssl.CERT_OPTIONAL
    assert ghttp.MakeServerSslContext(params, verify_peer=False).verify_mode == ssl.CERT_NONE


@_MODES
def test_max_clients_queues_connections(start_noded, cluster_crypto, mode):
    (daemon,) = start_noded(1, subnet=87, extra_args=["--max-clients", "1"] + mode)
    runner = nodedhelpers.MakeRunner(cluster_crypto, [daemon])
    start = time.monotonic()
    with _SlowCall(cluster_crypto, daemon, 1.5) as slow:
        # Read, but handled only once the slow call is done
        fast = runner.call_version([daemon.name])[daemon.name]
        assert fast.fail_msg is None
        assert time.monotonic() - start >= 1.4
    assert slow.result.fail_msg is None


def test_silent_connections_take_no_slot(start_noded, cluster_crypto):
    # One slot and a long request timeout: silent connections (TCP
    # reachability checks, port scanners) must not hold up a real request
    # whose client gives up after 10 s
    (daemon,) = start_noded(1, subnet=88, extra_args=["--max-clients", "1",
                                                      "--request-timeout", "30"])
    silent = [socket.create_connection((daemon.address, daemon.port), timeout=10)
              for _ in range(5)]
    try:
        for _ in range(20):  # pings: connect and close at once
            socket.create_connection((daemon.address, daemon.port), timeout=10).close()
        assert _Request(daemon, cluster_crypto, "PUT", "/version", b"[]").code == 200
    finally:
        for sock in silent:
            sock.close()
    # The pings were dropped quietly, not taken for failed handshakes
    assert "TLS handshake" not in daemon.Output()


def test_deeply_nested_json_is_a_bad_request(start_noded, cluster_crypto):
    (daemon,) = start_noded(1, subnet=89)
    for body in (b"[" * 20000, b"[" * 20000 + b"]" * 20000):
        resp = _Request(daemon, cluster_crypto, "PUT", "/version", body)
        assert resp.code == 400, resp.body
        assert "nested deeper than" in resp.body.decode()
    assert _Request(daemon, cluster_crypto, "PUT", "/version", b"[]").code == 200


@_MODES
def test_idle_and_slow_clients_do_not_delay_calls(start_noded, cluster_crypto, mode):
    # One request at a time and long timeouts: silent TCP connections, idle
    # TLS ones and clients sending their request a byte every 20 ms do not
    # delay a real call. Threaded, they hold no thread; forking, silent
    # ones get no child (the others one each, holding no request slot)
    (daemon,) = start_noded(1, subnet=90, extra_args=["--max-clients", "1",
                                                      "--request-timeout", "60"] + mode)
    runner = nodedhelpers.MakeRunner(cluster_crypto, [daemon])
    assert runner.call_version([daemon.name])[daemon.name].fail_msg is None
    threads = len(daemon.Threads())
    assert mode or threads == 1
    ctx = _ClientContext(cluster_crypto)

    def _Tls():
        raw = socket.create_connection((daemon.address, daemon.port), timeout=10)
        return ctx.wrap_socket(raw)

    silent = [socket.create_connection((daemon.address, daemon.port), timeout=10)
              for _ in range(40)]
    idle = [_Tls() for _ in range(40)]
    slow = [_Tls() for _ in range(40)]
    stop = threading.Event()

    def _Trickle():
        for sock in slow:
            sock.sendall(b"PUT /version HTTP/1.1\r\nX-Slow: ")
        while not stop.wait(0.02):
            for sock in slow:
                sock.sendall(b"x")

    trickler = threading.Thread(target=_Trickle)
    trickler.start()
    try:
        for _ in range(10):
            start = time.monotonic()
            assert runner.call_version([daemon.name])[daemon.name].fail_msg is None
            assert time.monotonic() - start < 1.0
        assert len(daemon.Threads()) == threads
        if not mode:
            # The idle and slow connections and the runner's
            _Wait(lambda: len(daemon.Children()) == 81, what="81 children")
    finally:
        stop.set()
        trickler.join(10)
        for sock in silent + idle + slow:
            sock.close()


def test_connection_limit_makes_room_for_new_clients(start_noded, cluster_crypto):
    # Ten connections at most: idle ones give way, the longest waiting first
    (daemon,) = start_noded(1, subnet=91, extra_args=["--max-connections", "10"])
    ctx = _ClientContext(cluster_crypto)
    idle = []
    try:
        for _ in range(20):
            raw = socket.create_connection((daemon.address, daemon.port), timeout=10)
            idle.append(ctx.wrap_socket(raw))
        assert _Request(daemon, cluster_crypto, "PUT", "/version", b"[]").code == 200
        assert idle[0].recv(10) == b""
    finally:
        for sock in idle:
            sock.close()
