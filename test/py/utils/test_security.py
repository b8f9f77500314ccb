"""Tests for ganeti.utils.security."""

import hashlib
import hmac

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ganeti import utils


def test_known_vector():
    # RFC 2202, HMAC-SHA1 test case 2
    assert utils.Sha1Hmac("Jefe", "what do ya want for nothing?") == \
        "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"


def test_salt_is_prepended():
    assert utils.Sha1Hmac("k", "text", salt="salt") == \
        utils.Sha1Hmac("k", "salttext")
    assert utils.Sha1Hmac("k", "text", salt="") == utils.Sha1Hmac("k", "text")
    assert utils.Sha1Hmac("k", "text", salt="a") != utils.Sha1Hmac("k", "text")


def test_str_and_bytes_agree():
    assert utils.Sha1Hmac(b"key", b"t\xc3\xa9xt", salt=b"s") == \
        utils.Sha1Hmac("key", "t\u00e9xt", salt="s")


@pytest.mark.parametrize("key, text", [(None, "x"), ("k", 5), ("k", None)])
def test_bad_types(key, text):
    with pytest.raises(TypeError):
        utils.Sha1Hmac(key, text)


def test_verify():
    digest = utils.Sha1Hmac("key", "msg", salt="1234")
    assert utils.VerifySha1Hmac("key", "msg", digest, salt="1234")
    assert utils.VerifySha1Hmac("key", "msg", digest.upper(), salt="1234")
    assert not utils.VerifySha1Hmac("key", "msg", digest)
    assert not utils.VerifySha1Hmac("key", "msg2", digest, salt="1234")
    assert not utils.VerifySha1Hmac("other", "msg", digest, salt="1234")
    assert not utils.VerifySha1Hmac("key", "msg", digest[:-1], salt="1234")
    assert not utils.VerifySha1Hmac("key", "msg", None, salt="1234")
    assert not utils.VerifySha1Hmac("key", "msg", "\u00e9" * 40, salt="1234")


@given(st.binary(), st.text(), st.text())
def test_matches_stdlib(key, text, salt):
    expected = hmac.new(key, (salt + text).encode("utf-8"),
                        hashlib.sha1).hexdigest()
    assert utils.Sha1Hmac(key, text, salt=salt) == expected
    assert utils.VerifySha1Hmac(key, text, expected, salt=salt)


def test_random_salt():
    salts = {utils.GenerateRandomSalt() for _ in range(20)}
    assert len(salts) == 20
    for salt in salts:
        assert len(salt) == 32
        int(salt, 16)
