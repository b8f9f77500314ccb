"""Tests of the luxi wire format (ganeti.luxi.protocol)."""

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ganeti import constants, errors, opcodes
from ganeti.luxi import protocol

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text()
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(), children, max_size=4),
    max_leaves=20)


@given(method=st.text(min_size=1), args=st.lists(_json, max_size=5),
       version=st.none() | st.integers())
def test_request_round_trip(method, args, version):
    msg = protocol.FormatRequest(method, args, version)
    assert protocol.EOM not in msg
    assert protocol.ParseRequest(msg) == (method, args, version)


@given(success=st.booleans(), result=_json, version=st.none() | st.integers())
def test_response_round_trip(success, result, version):
    msg = protocol.FormatResponse(success, result, version)
    assert protocol.EOM not in msg
    assert protocol.ParseResponse(msg) == (success, result, version)


@given(messages=st.lists(st.binary().map(lambda b: b.replace(b"\x03", b"")),
                         max_size=6),
       cuts=st.lists(st.integers(min_value=0, max_value=200), max_size=6))
def test_splitter_any_chunking(messages, cuts):
    stream = b"".join(m + protocol.EOM for m in messages)
    splitter = protocol.FrameSplitter()
    got = []
    positions = sorted({min(c, len(stream)) for c in cuts} | {len(stream)})
    start = 0
    for pos in positions:
        splitter.Feed(stream[start:pos])
        start = pos
        while (msg := splitter.Pop()) is not None:
            got.append(msg)
    assert got == messages
    assert splitter.pending == b""


def test_version_is_optional_and_echoed():
    raw = json.loads(protocol.FormatRequest("QueryClusterInfo", []))
    assert raw == {"method": "QueryClusterInfo", "args": []}
    raw = json.loads(protocol.FormatRequest("X", [], constants.LUXI_VERSION))
    assert raw["version"] == constants.LUXI_VERSION


def test_opcodes_are_sent_as_dicts():
    op = opcodes.OpTestDelay(duration=0.5)
    method, args, _ = protocol.ParseRequest(protocol.FormatRequest("SubmitJob", [[op]]))
    assert args[0][0]["OP_ID"] == "OP_TEST_DELAY"
    assert args[0][0]["duration"] == 0.5


@pytest.mark.parametrize("msg, match", [
    (b"{not json", "Invalid luxi request"),
    (b"[1, 2]", "expected a JSON object, got list"),
    (b'{"args": []}', "no method name"),
    (b'{"method": "", "args": []}', "no method name"),
    (b'{"method": "X"}', "'args' must be a list"),
    (b'{"method": "X", "args": {"a": 1}}', "'args' must be a list"),
    (b'{"method": "X", "args": [], "version": "3"}', "Invalid luxi request version"),
    (b"\xff\xfe", "not UTF-8"),
])
def test_bad_requests(msg, match):
    with pytest.raises(protocol.ProtocolError, match=match):
        protocol.ParseRequest(msg)


@pytest.mark.parametrize("msg", [b"", b"[]", b'{"success": true}', b"nope"])
def test_bad_responses(msg):
    with pytest.raises(protocol.DecodingError):
        protocol.ParseResponse(msg)


def test_format_request_refuses_bad_input():
    with pytest.raises(protocol.EncodingError, match="method name"):
        protocol.FormatRequest("", [])
    with pytest.raises(protocol.EncodingError, match="must be a list"):
        protocol.FormatRequest("X", "abc")
    with pytest.raises(protocol.EncodingError, match="Cannot encode"):
        protocol.FormatRequest("X", [object()])
    with pytest.raises(protocol.EncodingError, match="terminator"):
        protocol.Frame(b"a\x03b")


def test_errors_are_encoded_for_any_client():
    success, result, _ = protocol.ParseResponse(
        protocol.FormatError(protocol.ProtocolError("bad frame")))
    assert not success
    assert result == ["LuxiError", ["bad frame"]]
    with pytest.raises(errors.LuxiError, match="bad frame"):
        errors.MaybeRaise(result)
    _, result, _ = protocol.ParseResponse(protocol.FormatError(
        errors.OpPrereqError("no such job", errors.ECODE_NOENT), 7))
    assert result == ["OpPrereqError", ["no such job", errors.ECODE_NOENT]]
    _, result, _ = protocol.ParseResponse(protocol.FormatError(KeyError("x")))
    assert result[0] == "LuxiError" and "KeyError" in result[1][0]


def test_splitter_size_limit():
    splitter = protocol.FrameSplitter(max_size=10)
    splitter.Feed(b"0123456789\x03")
    assert splitter.Pop() == b"0123456789"
    with pytest.raises(protocol.MessageTooLarge, match="longer than 10 bytes"):
        splitter.Feed(b"01234567890")
    with pytest.raises(errors.ProgrammerError):
        protocol.FrameSplitter(max_size=0)
