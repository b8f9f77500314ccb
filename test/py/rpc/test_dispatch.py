"""The node side of RPC: decoding requests and running handlers."""

from __future__ import annotations

import pytest

from ganeti import constants, errors, http, serializer
from ganeti.backend import RPCFail
from ganeti.rpc import defs
from ganeti.rpc.dispatch import ResolveHandler, RpcDispatcher
from ganeti.rpc.encoding import ArgKind


def _Handler(*args):
    """Echo the arguments, or fail as asked."""
    if args and isinstance(args[0], bytes):
        return ["bytes", args[0].decode()]
    if args and args[0] == "rpcfail":
        raise RPCFail("refused: bad thing")
    if args and args[0] == "crash":
        raise ValueError("unexpected")
    if args and args[0] == "quit":
        raise errors.QuitGanetiException(True, "bye")
    if args and args[0] == "set":
        return {1, 2}
    return list(args)


def _Dispatcher(quit_fn=None, kinds=(ArgKind.NONE,)):
    call = defs.RpcCall("echo", defs.TMO_URGENT,
                        tuple(defs.RpcArg(f"a{i}", kind) for i, kind in enumerate(kinds)),
                        f"{__name__}._Handler", "Echo")
    return RpcDispatcher({"echo": call}, quit_fn=quit_fn)


def _Answer(data: bytes):
    return serializer.LoadJson(data)


def test_success_and_failures():
    disp = _Dispatcher()
    assert _Answer(disp.Dispatch("echo", b'["x"]')) == [True, ["x"]]
    assert _Answer(disp.Dispatch("echo", b'["rpcfail"]')) == [False, "refused: bad thing"]
    answer = _Answer(disp.Dispatch("echo", b'["crash"]'))
    assert answer == [False, "Error while executing backend function: unexpected"]
    answer = _Answer(disp.Dispatch("echo", b'["set"]'))
    assert answer[0] is False and "cannot be encoded as JSON" in answer[1]


def test_quit_request():
    quits = []
    disp = _Dispatcher(quit_fn=lambda: quits.append(1))
    assert _Answer(disp.Dispatch("echo", b'["quit"]')) == [True, "bye"]
    assert quits == [1]


@pytest.mark.parametrize("name,body,exc,text", [
    ("nope", b"[]", http.HttpNotFound, "Unknown RPC call 'nope'"),
    ("echo", b"[", http.HttpBadRequest, "Invalid request body"),
    ("echo", b'"x"', http.HttpBadRequest, "must be a JSON list"),
    ("echo", b"[]", http.HttpBadRequest, "takes 1 argument(s) (a0), got 0"),
    ("echo", b"\xff", http.HttpBadRequest, "not UTF-8"),
])
def test_protocol_errors(name, body, exc, text):
    with pytest.raises(exc) as err:
        _Dispatcher().Dispatch(name, body)
    assert text in err.value.message


def test_arguments_are_decoded():
    disp = _Dispatcher(kinds=(ArgKind.COMPRESS,))
    assert _Answer(disp.Dispatch("echo", b'[[0, "abc"]]')) == [True, ["bytes", "abc"]]
    with pytest.raises(http.HttpBadRequest, match="Invalid argument 'a0' for 'echo'"):
        disp.Dispatch("echo", b'[[7, "abc"]]')


def test_all_handlers_load():
    disp = RpcDispatcher()
    disp.LoadAll()
    assert disp.GetCall("version") is defs.CALLS["version"]
    assert _Answer(disp.Dispatch("version", b"[]")) == [True, constants.PROTOCOL_VERSION]


def test_resolve_missing_handler():
    with pytest.raises(errors.ProgrammerError, match="does not exist"):
        ResolveHandler("ganeti.backend.node.NoSuchFunction")
