"""JSON serialisation, plain and HMAC-signed.

:func:`DumpJson` writes compact JSON with sorted keys, so the same data
always gives the same text (which matters for signatures and for comparing
configuration files), and ends it with a newline, as Ganeti does; the
loaders accept the text with or without it. Only strict JSON is written
and read: NaN and infinities are refused.

Signed messages (confd, cluster domain secrets) are a JSON object::

    {"msg": <JSON text of the data>, "salt": <salt>,
     "hmac": <hex HMAC-SHA1 of salt + key_selector + msg>}

with a "key_selector" field when one was given (it names which key signed
the message, for receivers that know several).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from ganeti import errors
from ganeti.utils import security

__all__ = [
    "Dump",
    "DumpJson",
    "DumpJsonBytes",
    "DumpSigned",
    "DumpSignedJson",
    "Load",
    "LoadJson",
    "LoadSigned",
    "LoadSignedJson",
]

_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"),
                            allow_nan=False, ensure_ascii=True)


def _RefuseConstant(name: str) -> Any:
    raise ValueError(f"'{name}' is not valid JSON")


def DumpJson(data: Any) -> str:
    """Serialise ``data`` as compact, key-sorted JSON ending in a newline.

    @raise TypeError: for values JSON cannot represent (sets, objects)
    @raise ValueError: for NaN or infinite floats
    """
    return _ENCODER.encode(data) + "\n"


def DumpJsonBytes(data: Any) -> bytes:
    """:func:`DumpJson`, encoded (the text is ASCII, escapes included)."""
    return DumpJson(data).encode("ascii")


def LoadJson(txt: str | bytes | bytearray) -> Any:
    """Parse JSON text (str, or UTF-8 bytes).

    @raise errors.ParseError: naming the problem, for invalid JSON
    """
    if isinstance(txt, (bytes, bytearray)):
        try:
            txt = bytes(txt).decode("utf-8")
        except UnicodeDecodeError as err:
            raise errors.ParseError(f"Invalid JSON: not UTF-8 ({err})") \
                from err
    if not isinstance(txt, str):
        raise errors.ParseError(f"Invalid JSON: expected text, got"
                                f" {type(txt).__name__}")
    try:
        return json.loads(txt, parse_constant=_RefuseConstant)
    except ValueError as err:
        raise errors.ParseError(f"Invalid JSON: {err}") from err


def DumpSignedJson(data: Any, key: str | bytes, salt: str | None = None,
                   key_selector: str | None = None) -> str:
    """Serialise ``data`` and sign it with the HMAC ``key``.

    @return: the JSON text of the signed message (see the module docstring)
    """
    msg = DumpJson(data)
    if salt is None:
        salt = ""
    signed: dict[str, Any] = {"msg": msg, "salt": salt}
    if key_selector:
        signed["key_selector"] = key_selector
    else:
        key_selector = ""
    signed["hmac"] = security.Sha1Hmac(key, msg, salt=salt + key_selector)
    return DumpJson(signed)


def LoadSignedJson(txt: str | bytes,
                   key: str | bytes | Callable[[str | None], Any]
                   ) -> tuple[Any, str]:
    """Check a signed message and return ``(data, salt)``.

    ``key`` is the HMAC key, or a function that takes the message's key
    selector (None when it has none) and returns the key, or None when it
    knows no such key (``dict.get`` of a dict of keys fits).

    @raise errors.SignatureError: if the message is malformed, unsigned, or
        its signature does not verify
    """
    try:
        signed = LoadJson(txt)
    except errors.ParseError as err:
        raise errors.SignatureError(f"Invalid signed message: {err}") from err
    if not isinstance(signed, dict):
        raise errors.SignatureError("Invalid signed message: not a JSON"
                                    " object")
    fields = {}
    for name in ("msg", "salt", "hmac"):
        value = signed.get(name)
        if not isinstance(value, str):
            raise errors.SignatureError(f"Invalid signed message: field"
                                        f" '{name}' missing or not a string")
        fields[name] = value
    selector = signed.get("key_selector")
    if selector is not None and not isinstance(selector, str):
        raise errors.SignatureError("Invalid signed message: 'key_selector'"
                                    " is not a string")

    if callable(key):
        hmac_key = key(selector)
        if not hmac_key:
            raise errors.SignatureError(f"No key with key selector"
                                        f" '{selector}'")
    else:
        hmac_key = key
    if not security.VerifySha1Hmac(hmac_key, fields["msg"], fields["hmac"],
                                   salt=fields["salt"] + (selector or "")):
        raise errors.SignatureError("Invalid signature")

    try:
        data = LoadJson(fields["msg"])
    except errors.ParseError as err:
        raise errors.SignatureError(f"Signed message holds invalid JSON:"
                                    f" {err}") from err
    return data, fields["salt"]


Dump = DumpJson
Load = LoadJson
DumpSigned = DumpSignedJson
LoadSigned = LoadSignedJson
