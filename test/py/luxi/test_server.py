"""Tests of the luxi server with a stub method table, and of the client."""

import asyncio
import os
import socket
import stat
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from ganeti import constants, errors
from ganeti.luxi import client as luxi_client
from ganeti.luxi import protocol
from ganeti.luxi.server import KIND_ASYNC, KIND_INLINE, KIND_THREAD, LuxiMethod

pytestmark = pytest.mark.timeout(60)


class Stub:
    """A method table recording what it is asked."""

    def __init__(self):
        self.release = None  # asyncio.Event, created in the server loop
        self.wait_started = threading.Event()
        self.wait_cleaned = threading.Event()
        self.threads = []

    def Echo(self, *args):
        return list(args)

    def InThread(self):
        self.threads.append(threading.current_thread().name)
        return threading.current_thread() is not threading.main_thread()

    def Fail(self, code):
        raise errors.OpPrereqError("stub failure", code)

    def Crash(self):
        raise KeyError("bug")

    async def Wait(self, answer):
        self.release = asyncio.Event()
        self.wait_started.set()
        try:
            await self.release.wait()
            return answer
        finally:
            self.wait_cleaned.set()

    def Methods(self):
        return {
            "Echo": LuxiMethod(self.Echo, 0, 3, KIND_INLINE),
            "One": LuxiMethod(self.Echo, 1, 1, KIND_INLINE),
            "InThread": LuxiMethod(self.InThread, 0, 0, KIND_THREAD),
            "Fail": LuxiMethod(self.Fail, 1, 1),
            "Crash": LuxiMethod(self.Crash, 0, 0),
            "Wait": LuxiMethod(self.Wait, 1, 1, KIND_ASYNC),
        }


@pytest.fixture
def stub():
    return Stub()


@pytest.fixture
def srv(luxi_server_factory, stub):
    return luxi_server_factory(stub.Methods(), names=("master", "query"))


def _client(srv, name="master", **kwargs):
    return luxi_client.Client(srv.paths[0] if name == "master" else srv.paths[1],
                              timeouts=(5, 10), **kwargs)


def _raw(srv):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    _SPLITTERS.pop(sock.fileno(), None)
    sock.settimeout(10)
    sock.connect(srv.paths[0])
    return sock


_SPLITTERS = {}


def _read_answer(sock):
    # One splitter per socket: a recv may bring several answers
    splitter = _SPLITTERS.setdefault(sock.fileno(), protocol.FrameSplitter())
    while (msg := splitter.Pop()) is None:
        data = sock.recv(4096)
        if not data:
            return None
        splitter.Feed(data)
    return protocol.ParseResponse(msg)


def test_calls_on_both_sockets(srv):
    for name in ("master", "query"):
        with _client(srv, name) as cl:
            assert cl.CallMethod("Echo", [1, "a", None]) == [1, "a", None]
            assert cl.CallMethod("Echo", ()) == []
    for path in srv.paths:
        assert stat.S_IMODE(os.stat(path).st_mode) == constants.LUXI_SOCKET_PERMS


def test_version_is_echoed(srv):
    with _client(srv, version=constants.LUXI_VERSION) as cl:
        assert cl.CallMethod("One", ["x"]) == ["x"]
    sock = _raw(srv)
    with sock:
        sock.sendall(protocol.Frame(protocol.FormatRequest("One", [1], 42)))
        assert _read_answer(sock) == (True, [1], 42)
        sock.sendall(protocol.Frame(protocol.FormatRequest("One", [1])))
        assert _read_answer(sock) == (True, [1], None)


def test_unknown_method_and_wrong_arity_keep_the_connection(srv):
    with _client(srv) as cl:
        with pytest.raises(errors.LuxiError, match="Unknown luxi method 'Nope'"):
            cl.CallMethod("Nope", [])
        with pytest.raises(errors.LuxiError, match="takes 1 argument"):
            cl.CallMethod("One", [1, 2])
        with pytest.raises(errors.LuxiError, match=r"takes 0 to 3 argument\(s\), got 4"):
            cl.CallMethod("Echo", [1, 2, 3, 4])
        transport = cl.transport
        assert cl.CallMethod("One", [5]) == [5]
        assert cl.transport is transport


def test_handler_errors_reach_the_client(srv):
    with _client(srv) as cl:
        with pytest.raises(errors.OpPrereqError) as exc:
            cl.CallMethod("Fail", [errors.ECODE_NOENT])
        assert exc.value.args == ("stub failure", errors.ECODE_NOENT)
        with pytest.raises(errors.LuxiError, match="KeyError"):
            cl.CallMethod("Crash", [])
        assert cl.CallMethod("InThread", []) is True


def test_garbage_gets_an_error_and_the_connection_stays(srv):
    with _raw(srv) as sock:
        for garbage in (b"\x00\x01garbage", b"[1,2,3]", b'{"method": 5, "args": []}', b""):
            sock.sendall(garbage + protocol.EOM)
            success, result, _ = _read_answer(sock)
            assert not success and result[0] == "LuxiError"
        sock.sendall(protocol.Frame(protocol.FormatRequest("One", ["ok"])))
        assert _read_answer(sock) == (True, ["ok"], None)


def test_truncated_message_is_answered_and_closed(srv):
    with _raw(srv) as sock:
        sock.sendall(b'{"method": "One", "args": [1')
        sock.shutdown(socket.SHUT_WR)
        success, result, _ = _read_answer(sock)
        assert not success
        assert "Truncated luxi message" in result[1][0]
        assert sock.recv(10) == b""
    with _client(srv) as cl:
        assert cl.CallMethod("One", [1]) == [1]


def test_oversized_message_is_refused(luxi_server_factory, stub):
    srv = luxi_server_factory(stub.Methods(), max_message_size=100)
    with _raw(srv) as sock:
        sock.sendall(b"x" * 1000)
        success, result, _ = _read_answer(sock)
        assert not success and "longer than 100 bytes" in result[1][0]
        assert sock.recv(10) == b""
    with _client(srv) as cl:
        assert cl.CallMethod("One", ["still serving"]) == ["still serving"]


def test_abrupt_disconnects_do_not_disturb_others(srv):
    for _ in range(20):
        sock = _raw(srv)
        sock.sendall(b'{"method": "Ech')
        sock.close()
    with _client(srv) as cl:
        assert cl.CallMethod("One", [1]) == [1]


def test_waiting_call_does_not_block_others(srv, stub):
    with _client(srv) as waiter, ThreadPoolExecutor(1) as pool:
        future = pool.submit(waiter.CallMethod, "Wait", ["done"])
        assert stub.wait_started.wait(10)
        with _client(srv) as other:
            for i in range(50):
                assert other.CallMethod("One", [i]) == [i]
        assert not future.done()
        srv.loop.call_soon_threadsafe(stub.release.set)
        assert future.result(10) == "done"
        assert stub.wait_cleaned.is_set()


def test_disconnect_during_wait_cancels_the_handler(srv, stub):
    sock = _raw(srv)
    sock.sendall(protocol.Frame(protocol.FormatRequest("Wait", ["never"])))
    assert stub.wait_started.wait(10)
    sock.close()
    assert stub.wait_cleaned.wait(10)
    with _client(srv) as cl:
        assert cl.CallMethod("One", [1]) == [1]
    assert srv.Call(_no_client_tasks(srv))


def _no_client_tasks(srv):
    async def _check():
        for _ in range(100):
            if not srv.server._tasks:
                return True
            await asyncio.sleep(0.01)
        return False
    return _check


def test_request_sent_during_wait_is_kept(srv, stub):
    with _raw(srv) as sock:
        sock.sendall(protocol.Frame(protocol.FormatRequest("Wait", ["first"])))
        assert stub.wait_started.wait(10)
        sock.sendall(protocol.Frame(protocol.FormatRequest("One", ["second"])))
        # The second request must not be lost while the first still waits
        srv.loop.call_soon_threadsafe(stub.release.set)
        assert _read_answer(sock) == (True, "first", None)
        assert _read_answer(sock) == (True, ["second"], None)


def test_many_concurrent_clients(srv):
    def _work(n):
        with _client(srv) as cl:
            return [cl.CallMethod("One", [n * 100 + i]) for i in range(20)]
    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(_work, range(32)))
    for n, answers in enumerate(results):
        assert answers == [[n * 100 + i] for i in range(20)]


def test_client_is_thread_safe(srv):
    cl = _client(srv)
    with cl, ThreadPoolExecutor(8) as pool:
        assert list(pool.map(lambda i: cl.CallMethod("One", [i]), range(200))) == \
            [[i] for i in range(200)]


def test_stop_removes_sockets(luxi_server_factory, stub):
    srv = luxi_server_factory(stub.Methods())
    srv.Stop()
    assert not os.path.exists(srv.paths[0])
    with pytest.raises(protocol.NoMasterError, match="is ganeti-masterd running"):
        luxi_client.Client(srv.paths[0]).CallMethod("One", [1])


def test_client_reconnects_after_server_restart(luxi_server_factory, stub, tmp_path):
    srv = luxi_server_factory(stub.Methods())
    cl = luxi_client.Client(srv.paths[0], timeouts=(5, 10))
    assert cl.CallMethod("One", [1]) == [1]
    srv.Stop()
    srv2 = luxi_server_factory(Stub().Methods())
    assert srv2.paths == srv.paths
    assert cl.CallMethod("One", [2]) == [2]
    cl.Close()


def test_client_argument_checks(tmp_path):
    cl = luxi_client.Client(str(tmp_path / "none"))
    with pytest.raises(errors.ProgrammerError, match="expected a list"):
        cl.CallMethod("X", "abc")
    with pytest.raises(protocol.RequestError, match="Invalid job id 'abc'"):
        cl.CancelJob("abc")
    with pytest.raises(protocol.RequestError, match="Invalid job id True"):
        cl.ArchiveJob(True)


def test_client_version_mismatch(luxi_server_factory):
    def _bad_answer():
        return 1
    srv = luxi_server_factory({"X": LuxiMethod(_bad_answer, 0, 0, KIND_INLINE)})
    # The server echoes what it was sent, so a client expecting a version
    # only fails when the answer carries another one
    transport_answers = [protocol.FormatResponse(True, 1, 99)]
    with pytest.raises(errors.LuxiError, match="version mismatch"):
        luxi_client.CallLuxiMethod(lambda _: transport_answers[0], "X", [], 5)
    assert luxi_client.Client(srv.paths[0], version=5).CallMethod("X", []) == 1


def test_luxi_method_declaration_checks():
    with pytest.raises(errors.ProgrammerError, match="kind"):
        LuxiMethod(print, 0, 0, "bogus")
    with pytest.raises(errors.ProgrammerError, match="argument counts"):
        LuxiMethod(print, 2, 1)
