"""Deeply nested JSON in confd datagrams: dropped or refused cleanly."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import pytest

import confdhelpers as h
from ganeti import errors
from ganeti.confd import protocol, server

_DEEP = "[" * 20000 + "]" * 20000


def _Signed(msg: str) -> bytes:
    salt = str(int(time.time()))
    digest = hmac.new(h.HMAC_KEY, (salt + msg).encode(), hashlib.sha1).hexdigest()
    return b"plj0" + json.dumps({"msg": msg, "salt": salt, "hmac": digest}).encode()


def test_processor_drops_deep_datagrams():
    proc = server.ConfdProcessor(hmac_key=h.HMAC_KEY)
    # Deep outside the signature, and deep inside a valid one
    for payload in (b"plj0" + _DEEP.encode(), _Signed(_DEEP)):
        before = proc.stats["format"]
        assert proc.HandleDatagram(payload, peer=("192.0.2.1", 1)) is None
        assert proc.stats["format"] == before + 1


def test_client_side_refuses_deep_datagrams():
    for payload in (b"plj0" + _DEEP.encode(), _Signed(_DEEP)):
        with pytest.raises(errors.SignatureError):
            protocol.UnpackSigned(payload, h.HMAC_KEY)
