"""Deeply nested JSON on the luxi wire: a clean error, not a traceback."""

import logging
import socket

import pytest

from ganeti import errors
from ganeti.luxi import client as luxi_client
from ganeti.luxi import protocol
from ganeti.luxi.server import KIND_INLINE, LuxiMethod

pytestmark = pytest.mark.timeout(60)

_DEEP = b"[" * 20000 + b"]" * 20000


def _Answer(sock):
    splitter = protocol.FrameSplitter()
    while (msg := splitter.Pop()) is None:
        data = sock.recv(65536)
        if not data:
            return None
        splitter.Feed(data)
    return protocol.ParseResponse(msg)


def test_deep_request_is_answered_with_an_error(luxi_server_factory, tmp_path, caplog):
    methods = {"One": LuxiMethod(lambda arg: arg, 1, 1, KIND_INLINE)}
    srv = luxi_server_factory(methods, max_message_size=1024 * 1024)
    caplog.set_level(logging.DEBUG)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(10)
        sock.connect(srv.paths[0])
        sock.sendall(b'{"method": "One", "args": [' + _DEEP + b"]}" + protocol.EOM)
        answer = _Answer(sock)
    assert answer is not None, "no answer"
    success, result, _ = answer
    assert not success and result[0] == "LuxiError"
    assert "nested deeper than" in str(result[1])
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    with luxi_client.Client(srv.paths[0], timeouts=(5, 10)) as cl:
        assert cl.CallMethod("One", [[1]]) == [1]


def test_deep_answer_is_a_protocol_error():
    # What a client gets from a broken or hostile server
    with pytest.raises(errors.LuxiError, match="nested deeper than"):
        protocol.ParseResponse(b'{"success": true, "result": ' + _DEEP + b"}")
    assert issubclass(protocol.DecodingError, protocol.ProtocolError)
