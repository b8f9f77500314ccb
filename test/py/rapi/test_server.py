"""ganeti.rapi.server over real TLS sockets, with the client library.

The server runs in a thread with a fake luxi client (see fakeluxi.py);
the wire (TLS, keep-alive, limits, error bodies) is real.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import os
import socket
import ssl
import sys
import threading
import time
import types

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from fakeluxi import FakePool  # noqa: E402
from ganeti import runtime  # noqa: E402
from ganeti.rapi import auth, server  # noqa: E402
from ganeti.rapi import client as rapi_client  # noqa: E402
from ganeti.server import rapi as rapi_daemon  # noqa: E402
from ganeti.utils import x509  # noqa: E402

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def cert(tmp_path_factory):
    path = tmp_path_factory.mktemp("cert") / "rapi.pem"
    x509.GenerateSelfSignedSslCert(str(path), 1)
    return str(path)


@contextlib.contextmanager
def _Rapi(tmp_path, cert, **kwargs):
    """A RAPI server in a thread, with a fake master; stopped afterwards."""
    users = tmp_path / "users"
    auth.WriteUserEntry(str(users), "admin", "secret", ["write"])
    auth.WriteUserEntry(str(users), "ro", "ropw", ["read"], hashed=False)
    pool = FakePool()
    kwargs.setdefault("max_clients", 4)
    kwargs.setdefault("max_body", 1000)
    kwargs.setdefault("idle_timeout", 5)
    srv = server.RapiServer("127.0.0.1", 0, server.MakeSslContext(cert),
                            auth.UsersFile(str(users)), pool=pool,  # type: ignore[arg-type]
                            **kwargs)
    _, port = srv.Bind()
    thread = threading.Thread(target=srv.Serve, daemon=True)
    thread.start()
    try:
        yield types.SimpleNamespace(srv=srv, port=port, pool=pool, cert=cert)
    finally:
        srv.Stop()
        thread.join(20)
    assert not thread.is_alive()


@pytest.fixture
def rapi(tmp_path, cert):
    with _Rapi(tmp_path, cert) as rapi:
        yield rapi


def _Client(rapi, user="admin", password="secret", **kwargs):
    return rapi_client.GanetiRapiClient(
        "127.0.0.1", rapi.port, username=user, password=password,
        curl_config_fn=rapi_client.GenericCurlConfig(cafile=rapi.cert), **kwargs)


def _Context(rapi):
    ctx = ssl.create_default_context(cafile=rapi.cert)
    ctx.check_hostname = False
    return ctx


def _Raw(rapi, timeout=10):
    sock = socket.create_connection(("127.0.0.1", rapi.port), timeout=timeout)
    return _Context(rapi).wrap_socket(sock)


_ADMIN = "Basic " + base64.b64encode(b"admin:secret").decode()


def _ReadResponse(sock):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            return None, {}, data
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in
               (line.partition(":") for line in lines[1:])}
    length = int(headers.get("content-length", 0))
    while len(rest) < length:
        chunk = sock.recv(4096)
        if not chunk:
            break
        rest += chunk
    return int(lines[0].split()[1]), headers, rest[:length]


def test_client_methods(rapi):
    with _Client(rapi) as cl:
        assert cl.GetVersion() == 2
        assert "instance-create-reqv1" in cl.GetFeatures()
        assert cl.GetInfo()["name"] == "cluster"
        assert cl.GetNodes() == ["node1", "node2"]
        assert cl.GetNodeRole("node1") == "master"
        assert cl.GetClusterTags() == ["ct"]
        assert cl.RedistributeConfig() == 1
        assert cl.SetNodeRole("node2", "drained", force=True) == 2
        assert cl.AddInstanceTags("i1", ["a", "b"], dry_run=True) == 3
        assert cl.CreateInstance("create", "i1", "diskless", [], [], os="x",
                                 pnode="node1", dry_run=True) == 4
        assert cl.GetJobs() == [1, 2, 3, 4]
        assert cl.WaitForJobCompletion(4)
        assert cl.QueryFields("lock", ["name"]) == {"fields": [{"name": "name"}]}
        assert cl.Query("node", ["name"], ["|", ["=", "name", "node1"]])["data"] == [[[0, "node1"]]]
    ops = rapi.pool.client.jobs
    assert ops[2][0]["tags"] == ["a", "b"] and ops[2][0]["dry_run"] is True
    assert ops[3][0]["instance_name"] == "i1" and ops[3][0]["dry_run"] is True


def test_client_errors_carry_the_status(rapi):
    with _Client(rapi, "ro", "ropw") as cl:
        with pytest.raises(rapi_client.GanetiApiError) as err:
            cl.RedistributeConfig()
        assert err.value.code == 403
        with pytest.raises(rapi_client.GanetiApiError) as err:
            cl.GetNode("nosuch")
        assert err.value.code == 404 and "nosuch" in str(err.value)
    with _Client(rapi) as cl:
        with pytest.raises(rapi_client.GanetiApiError) as err:
            cl.ModifyInstance("i1", memroy=1)
        assert err.value.code == 400 and "'memroy'" in str(err.value)
    with _Client(rapi, "admin", "wrong") as cl:
        with pytest.raises(rapi_client.GanetiApiError) as err:
            cl.RedistributeConfig()
        assert err.value.code == 401


def test_client_verifies_the_certificate(rapi, tmp_path):
    other = tmp_path / "other.pem"
    x509.GenerateSelfSignedSslCert(str(other), 2)
    cl = rapi_client.GanetiRapiClient(
        "127.0.0.1", rapi.port,
        curl_config_fn=rapi_client.GenericCurlConfig(cafile=str(other)))
    with pytest.raises(rapi_client.CertificateError):
        cl.GetVersion()
    # Without a CA the connection is not authenticated (tests, curl -k)
    assert rapi_client.GanetiRapiClient("127.0.0.1", rapi.port).GetVersion() == 2


def test_keep_alive_serves_many_requests_on_one_connection(rapi):
    sock = _Raw(rapi)
    try:
        for _ in range(5):
            sock.sendall(b"GET /version HTTP/1.1\r\nHost: x\r\n\r\n")
            code, headers, body = _ReadResponse(sock)
            assert (code, body) == (200, b"2\n")
            assert headers["connection"] == "keep-alive"
        sock.sendall(b"GET /version HTTP/1.1\r\nConnection: close\r\n\r\n")
        code, headers, _ = _ReadResponse(sock)
        assert code == 200 and headers["connection"] == "close"
        assert sock.recv(10) == b""
    finally:
        sock.close()


def test_http10_closes_unless_asked(rapi):
    sock = _Raw(rapi)
    try:
        sock.sendall(b"GET /version HTTP/1.0\r\n\r\n")
        code, headers, _ = _ReadResponse(sock)
        assert code == 200 and headers["connection"] == "close"
    finally:
        sock.close()


@pytest.mark.parametrize("request_bytes,code", [
    (b"GARBAGE\r\n\r\n", 400),
    (b"GET /version HTTP/2.0\r\n\r\n", 505),
    (b"GET /version HTTP/1.1\r\nBad header\r\n\r\n", 400),
    (b"PUT /2/modify HTTP/1.1\r\nContent-Length: 5000\r\n\r\n", 413),
    (b"PUT /2/modify HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", 411),
    (b"PUT /2/modify HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400),
    (b"GET /" + b"x" * 9000 + b" HTTP/1.1\r\n\r\n", 431),
])
def test_protocol_errors_get_json_bodies(rapi, request_bytes, code):
    sock = _Raw(rapi)
    try:
        sock.sendall(request_bytes)
        status, headers, body = _ReadResponse(sock)
        assert status == code
        err = json.loads(body)
        assert err["code"] == code and err["message"] and err["explain"]
        assert headers["content-type"] == "application/json"
    finally:
        sock.close()
    # The server keeps serving
    assert rapi_client.GanetiRapiClient("127.0.0.1", rapi.port).GetVersion() == 2


def test_expect_100_continue(rapi):
    sock = _Raw(rapi)
    try:
        body = json.dumps({"candidate_pool_size": 5}).encode()
        sock.sendall(b"PUT /2/modify HTTP/1.1\r\nContent-Type: application/json\r\n"
                     b"Authorization: Basic YWRtaW46c2VjcmV0\r\nExpect: 100-continue\r\n"
                     b"Content-Length: %d\r\n\r\n" % len(body))
        assert sock.recv(100).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        sock.sendall(body)
        code, _, answer = _ReadResponse(sock)
        assert code == 200 and json.loads(answer) == 1
    finally:
        sock.close()


def test_idle_and_slow_clients_do_not_hold_the_workers(rapi):
    # Four workers; 30 silent TCP connections, 30 idle TLS ones and 30
    # clients sending their request a byte every 20 ms: a real request is
    # answered at once all the same
    silent = [socket.create_connection(("127.0.0.1", rapi.port), timeout=5)
              for _ in range(30)]
    idle = [_Raw(rapi, timeout=5) for _ in range(30)]
    slow = [_Raw(rapi, timeout=5) for _ in range(30)]
    stop = threading.Event()

    def _Trickle():
        for sock in slow:
            sock.sendall(b"GET /version HTTP/1.1\r\nX-Slow: ")
        while not stop.wait(0.02):
            for sock in slow:
                sock.sendall(b"x")

    trickler = threading.Thread(target=_Trickle)
    trickler.start()
    try:
        for _ in range(10):
            start = time.monotonic()
            sock = _Raw(rapi, timeout=3)
            try:
                sock.sendall(b"GET /version HTTP/1.1\r\nConnection: close\r\n\r\n")
                assert _ReadResponse(sock)[::2] == (200, b"2\n")
            finally:
                sock.close()
            assert time.monotonic() - start < 1.0
    finally:
        stop.set()
        trickler.join(10)
        for sock in silent + idle + slow:
            sock.close()


def test_bare_lf_line_ends(rapi):
    sock = _Raw(rapi, timeout=3)
    try:
        sock.sendall(b"GET /version HTTP/1.1\nHost: x\n\n")
        assert _ReadResponse(sock)[::2] == (200, b"2\n")
        # Mixed with CRLF, on the same connection
        sock.sendall(b"GET /2/info HTTP/1.1\r\nHost: x\n\r\n")
        code, _, body = _ReadResponse(sock)
        assert code == 200 and json.loads(body)["name"] == "cluster"
    finally:
        sock.close()


def test_oversized_upload_gets_413_not_a_reset(rapi):
    # http.client sends the whole body before it reads the answer: the
    # server answers at once and drops what comes after
    conn = http.client.HTTPSConnection("127.0.0.1", rapi.port, context=_Context(rapi),
                                       timeout=10)
    try:
        conn.request("PUT", "/2/tags", body=b"[" + b"1," * (2500 * 1024) + b"1]",
                     headers={"Content-Type": "application/json",
                              "Authorization": _ADMIN})
        resp = conn.getresponse()
        err = json.loads(resp.read())
        assert resp.status == 413 and err["code"] == 413
        assert "exceeds the limit of 1000 bytes" in err["explain"]
    finally:
        conn.close()


def test_deeply_nested_json_is_a_bad_request(tmp_path, cert):
    with _Rapi(tmp_path, cert, max_body=1024 * 1024) as rapi:
        for body in (b"[" * 50000, b"[" * 50000 + b"]" * 50000,
                     b'{"tags":' * 33 + b"[]" + b"}" * 33):
            sock = _Raw(rapi)
            try:
                sock.sendall(b"PUT /2/tags HTTP/1.1\r\nAuthorization: %s\r\n"
                             b"Content-Type: application/json\r\n"
                             b"Content-Length: %d\r\n\r\n%s"
                             % (_ADMIN.encode(), len(body), body))
                code, _, answer = _ReadResponse(sock)
            finally:
                sock.close()
            err = json.loads(answer)
            assert code == 400 and err["code"] == 400, answer
            assert "nested deeper than 32 levels" in err["explain"]
        # Within the limit the tags resource sees the body
        with _Client(rapi) as cl:
            assert cl.AddClusterTags(["a"]) == 1


def test_many_more_connections_than_workers(tmp_path, cert):
    with _Rapi(tmp_path, cert, max_clients=2, max_connections=50,
               max_connections_per_address=40) as rapi:
        socks = [_Raw(rapi, timeout=5) for _ in range(40)]
        try:
            # All are served, one request each, on their open connections
            for sock in socks:
                sock.sendall(b"GET /version HTTP/1.1\r\n\r\n")
            for sock in socks:
                assert _ReadResponse(sock)[::2] == (200, b"2\n")
            # Past the per-address limit the longest waiting one gives way
            assert rapi_client.GanetiRapiClient("127.0.0.1", rapi.port).GetVersion() == 2
            assert socks[0].recv(10) == b""
        finally:
            for sock in socks:
                sock.close()


def test_users_file_owner(tmp_path):
    users = tmp_path / "rapi" / "users"
    if os.geteuid() == 0 and runtime.Mode() == runtime.MODE_SEPARATE:
        # Root gives it to RAPI, readable by the master daemon (ensure-dirs)
        ents = runtime.GetEnts()
        owner = (ents.rapi_uid, ents.masterd_gid)
    else:
        owner = (os.geteuid(), os.getgid())
    auth.WriteUserEntry(str(users), "admin", "pw")
    assert (users.stat().st_uid, users.stat().st_gid) == owner
    assert (users.stat().st_mode & 0o777) == 0o640
    # Rewriting the file keeps its owner and mode
    auth.WriteUserEntry(str(users), "other", "pw2")
    assert (users.stat().st_uid, users.stat().st_gid) == owner
    assert "other" in users.read_text()


def test_daemon_refuses_bad_options(capsys):
    assert rapi_daemon.Main(["-f", "-p", "70000"]) != 0
    assert rapi_daemon.Main(["-f", "-b", "not-an-address"]) != 0
    assert "invalid" in capsys.readouterr().err
