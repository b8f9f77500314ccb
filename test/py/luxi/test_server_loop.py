"""The luxi server's loop-side handlers: KIND_LOOP and plain KIND_ASYNC functions."""

import asyncio
import threading

import pytest

from ganeti import errors
from ganeti.luxi import client as luxi_client
from ganeti.luxi.server import KIND_ASYNC, KIND_LOOP, LuxiMethod

pytestmark = pytest.mark.timeout(60)


class LoopStub:
    """Handlers run in the loop, answering at once or after another thread's work."""

    def __init__(self):
        self.threads = []
        self.watched = 0

    def Now(self, value):
        self.threads.append(threading.current_thread().name)
        return value * 2

    def Later(self, value):
        """Answer once a helper thread has done its part (as job submission)."""
        self.threads.append(threading.current_thread().name)
        if not isinstance(value, int):
            raise errors.OpPrereqError(f"Bad value {value!r}", errors.ECODE_INVAL)
        loop = asyncio.get_running_loop()
        done = loop.create_future()

        def work():
            loop.call_soon_threadsafe(done.set_result, value + 1)

        helper = threading.Thread(target=work)
        helper.start()
        helper.join()

        async def answer():
            return await done
        return answer()

    def MaybeWait(self, wait):
        if not wait:
            return "at once"

        async def waited():
            self.watched += 1
            await asyncio.sleep(0)
            return "waited"
        return waited()

    def Methods(self):
        return {
            "Now": LuxiMethod(self.Now, 1, 1, KIND_LOOP),
            "Later": LuxiMethod(self.Later, 1, 1, KIND_LOOP),
            "MaybeWait": LuxiMethod(self.MaybeWait, 1, 1, KIND_ASYNC),
        }


@pytest.fixture
def srv(luxi_server_factory):
    stub = LoopStub()
    server = luxi_server_factory(stub.Methods())
    server.stub = stub
    return server


def test_loop_handlers_answer_directly_or_after_awaiting(srv):
    with luxi_client.Client(srv.paths[0], timeouts=(5, 10)) as cl:
        assert cl.CallMethod("Now", [21]) == 42
        assert cl.CallMethod("Later", [1]) == 2
        with pytest.raises(errors.OpPrereqError, match="Bad value 'x'"):
            cl.CallMethod("Later", ["x"])
        # The connection stays usable
        assert cl.CallMethod("Later", [10]) == 11
    # Run in the loop, never in a luxi thread
    assert set(srv.stub.threads) == {"luxi-test-server"}


def test_async_handler_may_answer_without_waiting(srv):
    with luxi_client.Client(srv.paths[0], timeouts=(5, 10)) as cl:
        assert cl.CallMethod("MaybeWait", [False]) == "at once"
        assert srv.stub.watched == 0
        assert cl.CallMethod("MaybeWait", [True]) == "waited"
        assert srv.stub.watched == 1
        assert cl.CallMethod("MaybeWait", [False]) == "at once"
