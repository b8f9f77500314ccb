"""Tests for ganeti.confd.protocol (the plj0 envelope)."""

from __future__ import annotations

import json
import time

import pytest

from ganeti import constants, errors, serializer
from ganeti.confd import protocol
from ganeti.confd.protocol import ConfdReply, ConfdRequest
from ganeti.utils import security

KEY = b"secret-key\n"


def _Request(**kwargs):
    args = {"type": constants.CONFD_REQ_NODE_ROLE_BYNAME,
            "query": "node1.example.com", "rsalt": "my-salt"}
    args.update(kwargs)
    return ConfdRequest(**args)


def test_constants_follow_ganeti():
    # Ganeti's Ganeti.Confd.Types numbering
    assert constants.CONFD_REQ_PING == 0
    assert constants.CONFD_REQ_NODE_ROLE_BYNAME == 1
    assert constants.CONFD_REQ_NODE_PIP_BY_INSTANCE_IP == 2
    assert constants.CONFD_REQ_CLUSTER_MASTER == 3
    assert constants.CONFD_REQ_NODE_PIP_LIST == 4
    assert constants.CONFD_REQ_MC_PIP_LIST == 5
    assert constants.CONFD_REQ_INSTANCES_IPS_LIST == 6
    assert constants.CONFD_REQ_NODE_DRBD == 7
    assert constants.CONFD_REQ_NODE_INSTANCES == 8
    assert constants.CONFD_REQ_INSTANCE_DISKS == 9
    assert constants.CONFD_REQ_CONFIG_QUERY == 10
    assert constants.CONFD_REQ_DATA_COLLECTORS == 11
    assert (constants.CONFD_ERROR_UNKNOWN_ENTRY, constants.CONFD_ERROR_INTERNAL,
            constants.CONFD_ERROR_ARGUMENT) == (0, 1, 2)
    assert constants.CONFD_MAX_CLOCK_SKEW == 300
    assert constants.CONFD_MAGIC_FOURCC == b"plj0"


def test_request_round_trip():
    req = _Request()
    payload = protocol.PackRequest(req, KEY)
    assert payload.startswith(b"plj0")
    assert protocol.UnpackRequest(payload, KEY) == req


def test_envelope_is_the_serializers_signed_json():
    # The HMAC covers salt + msg; fields msg, salt, hmac (seed 003)
    now = 1249637704
    payload = protocol.PackRequest(_Request(), KEY, now=now)
    outer = json.loads(payload[4:])
    assert sorted(outer) == ["hmac", "msg", "salt"]
    assert outer["salt"] == str(now)
    assert outer["hmac"] == security.Sha1Hmac(KEY, outer["msg"],
                                              salt=outer["salt"])
    data, salt = serializer.LoadSignedJson(payload[4:], KEY)
    assert salt == str(now)
    assert data == {"protocol": 1, "type": 1, "rsalt": "my-salt",
                    "query": "node1.example.com"}
    # and the other way round: what the serializer signs, we accept
    text = serializer.DumpSignedJson(_Request().ToDict(), KEY,
                                     salt=str(int(time.time())))
    assert protocol.UnpackRequest(b"plj0" + text.encode(), KEY) == _Request()


def test_query_left_out_when_none():
    assert "query" not in _Request(query=None).ToDict()


def test_reply_round_trip():
    reply = ConfdReply(status=0, answer=["a", 1], serial=42)
    payload = protocol.PackReply(reply, KEY, "rs")
    assert protocol.UnpackReply(payload, KEY) == (reply, "rs")
    assert json.loads(payload[4:])["salt"] == "rs"


@pytest.mark.parametrize("payload,error", [
    (b"xxxx{}", errors.ConfdMagicError),
    (b"", errors.ConfdMagicError),
    (b"plj0", errors.SignatureError),
    (b"plj0not json", errors.SignatureError),
    (b"plj0\xff\xfe", errors.SignatureError),
    (b"plj0[1, 2]", errors.SignatureError),
    (b'plj0{"msg": 1, "salt": "1", "hmac": "x"}', errors.SignatureError),
])
def test_unpack_malformed(payload, error):
    with pytest.raises(error):
        protocol.UnpackRequest(payload, KEY)


def test_wrong_key_and_tampering():
    payload = protocol.PackRequest(_Request(), KEY)
    with pytest.raises(errors.SignatureError, match="Invalid signature"):
        protocol.UnpackRequest(payload, b"other")
    tampered = payload.replace(b"node1", b"node2")
    with pytest.raises(errors.SignatureError):
        protocol.UnpackRequest(tampered, KEY)


@pytest.mark.parametrize("offset", [-301, 301, -10000])
def test_timestamp_outside_window(offset):
    now = time.time()
    payload = protocol.PackRequest(_Request(), KEY, now=now + offset)
    with pytest.raises(protocol.ConfdRequestError, match="away from"):
        protocol.UnpackRequest(payload, KEY, now=now)


@pytest.mark.parametrize("offset", [-299, 0, 299])
def test_timestamp_inside_window(offset):
    now = time.time()
    payload = protocol.PackRequest(_Request(), KEY, now=now + offset)
    assert protocol.UnpackRequest(payload, KEY, now=now).rsalt == "my-salt"


@pytest.mark.parametrize("salt", ["abc", "nan", "", "inf"])
def test_bad_timestamp_salt(salt):
    with pytest.raises(protocol.ConfdRequestError):
        protocol.CheckTimestamp(salt)


def test_oversized_request():
    payload = protocol.PackRequest(_Request(query="x" * 70000), KEY)
    with pytest.raises(errors.UdpDataSizeError, match="larger than 61440"):
        protocol.UnpackRequest(payload, KEY)


@pytest.mark.parametrize("data", [[1], {"type": 1}, {"rsalt": ""},
                                  {"rsalt": 5}])
def test_request_without_rsalt(data):
    with pytest.raises(protocol.ConfdRequestError):
        ConfdRequest.FromDict(data)


@pytest.mark.parametrize("data,field", [
    ({"status": "0", "serial": 1, "protocol": 1}, "status"),
    ({"status": 0, "serial": None, "protocol": 1}, "serial"),
    ({"status": 0, "serial": 1}, "protocol"),
    ({"status": True, "serial": 1, "protocol": 1}, "status"),
])
def test_bad_reply_fields(data, field):
    with pytest.raises(errors.ConfdClientError, match=field):
        ConfdReply.FromDict(data)
    with pytest.raises(errors.ConfdClientError, match="not a JSON object"):
        ConfdReply.FromDict([])


def test_key_type_checked():
    with pytest.raises(errors.ProgrammerError):
        protocol.PackRequest(_Request(), 42)  # type: ignore[arg-type]


@pytest.mark.parametrize("data,field", [
    ({"rsalt": "x", "type": "1", "protocol": 1}, "type"),
    ({"rsalt": "x", "type": 1}, "protocol"),
    ({"rsalt": "x", "type": 1, "protocol": False}, "protocol"),
])
def test_request_field_types(data, field):
    with pytest.raises(protocol.ConfdRequestError, match=field):
        ConfdRequest.FromDict(data)
