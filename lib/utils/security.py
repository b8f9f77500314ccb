"""HMAC signatures and random salts for signed messages (confd, RAPI).

Keys and texts may be given as str (encoded as UTF-8) or bytes; digests are
lower-case hex strings.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

__all__ = [
    "GenerateRandomSalt",
    "Sha1Hmac",
    "VerifySha1Hmac",
]


def _ToBytes(value: str | bytes, what: str) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    raise TypeError(f"HMAC {what} must be str or bytes, not"
                    f" {type(value).__name__}")


def Sha1Hmac(key: str | bytes, text: str | bytes,
             salt: str | bytes | None = None) -> str:
    """Return the hex HMAC-SHA1 of ``salt + text`` under ``key``."""
    message = _ToBytes(text, "text")
    if salt:
        message = _ToBytes(salt, "salt") + message
    return hmac.new(_ToBytes(key, "key"), message, hashlib.sha1).hexdigest()


def VerifySha1Hmac(key: str | bytes, text: str | bytes, digest: object,
                   salt: str | bytes | None = None) -> bool:
    """Whether ``digest`` is the HMAC of ``salt + text`` under ``key``.

    The comparison takes constant time and ignores the digest's case; a
    digest that is not a string simply does not verify.
    """
    if not isinstance(digest, str):
        return False
    expected = Sha1Hmac(key, text, salt=salt)
    try:
        return hmac.compare_digest(expected, digest.lower())
    except TypeError:
        # compare_digest refuses non-ASCII strings: not a hex digest
        return False


def GenerateRandomSalt() -> str:
    """Return a new random salt (32 hex characters)."""
    return secrets.token_hex(16)
