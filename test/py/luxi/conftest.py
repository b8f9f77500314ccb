"""A luxi server in a thread of its own, for tests with blocking clients."""

import asyncio
import socket
import threading

import pytest

from ganeti.luxi import protocol
from ganeti.luxi import server as luxi_server


class ServerThread:
    """Run a LuxiServer on ``paths`` in a background event loop."""

    def __init__(self, methods, paths, **kwargs):
        self.paths = [str(p) for p in paths]
        self.server = luxi_server.LuxiServer(methods, **kwargs)
        self.loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._error = None
        self.thread = threading.Thread(target=self._Run, name="luxi-test-server")

    def _Run(self):
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self.server.Start(self.paths))
        except BaseException as err:  # reported by Start()
            self._error = err
            self._started.set()
            return
        self._started.set()
        self.loop.run_forever()
        self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        self.loop.close()

    def Start(self):
        self.thread.start()
        assert self._started.wait(10), "server did not start"
        if self._error is not None:
            raise self._error
        return self

    def RawSocket(self, index=0):
        """A plain socket connected to ``paths[index]``."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(10)
        with protocol.SocketAddress(self.paths[index]) as address:
            sock.connect(address)
        return sock

    def Call(self, coro_fn, timeout=10):
        """Run ``coro_fn()`` in the server's loop and return its result."""
        return asyncio.run_coroutine_threadsafe(coro_fn(), self.loop).result(timeout)

    def Stop(self):
        if not self.thread.is_alive():
            return
        self.Call(self.server.Stop)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        assert not self.thread.is_alive()


@pytest.fixture
def luxi_server_factory(tmp_path):
    started = []

    def _factory(methods, names=("master",), **kwargs):
        srv = ServerThread(methods, [tmp_path / n for n in names], **kwargs).Start()
        started.append(srv)
        return srv

    yield _factory
    for srv in started:
        srv.Stop()
