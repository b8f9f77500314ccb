"""JSON serialisation, plain and HMAC-signed.

:func:`DumpJson` writes compact JSON with sorted keys, so the same data
always gives the same text (which matters for signatures and for comparing
configuration files), and ends it with a newline, as Ganeti does; the
loaders accept the text with or without it. Only strict JSON is written
and read: NaN and infinities are refused.

The loader refuses text nested deeper than ``max_depth`` arrays and
objects (:data:`MAX_DEPTH` by default) or longer than ``max_size`` bytes,
with :class:`errors.ParseError` like any other invalid JSON: every wire
(RAPI, node RPC, luxi) reads JSON through it, and without a limit a few
kilobytes of ``[`` make the decoder raise RecursionError in whatever
thread parses them, or build values that break the code walking them.

Signed messages (confd, cluster domain secrets) are a JSON object::

    {"msg": <JSON text of the data>, "salt": <salt>,
     "hmac": <hex HMAC-SHA1 of salt + key_selector + msg>}

with a "key_selector" field when one was given (it names which key signed
the message, for receivers that know several).
"""

from __future__ import annotations

import array
import itertools
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

#: Deepest nesting of arrays and objects :func:`LoadJson` accepts by default.
#: Ganeti's own data (configuration, jobs, RPC arguments, query answers) is
#: nested less than 20 deep; RAPI bodies, which end up wrapped in jobs and
#: answers, get a lower limit of their own
MAX_DEPTH = 128

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


# Everything but brackets and quotes (deleted to measure the nesting)
_NOT_STRUCTURE = bytes(c for c in range(256) if c not in b'[]{}"')
# Objects nest like arrays
_SQUARE = bytes.maketrans(b"{}", b"[]")
_STEP = bytes.maketrans(b"[]", b"\x01\xff")


def NestedDeeper(data: str | bytes | bytearray | memoryview, limit: int) -> bool:
    """Whether arrays and objects nest deeper than ``limit`` in ``data``.

    ``data`` is JSON text (str, or UTF-8 bytes); for invalid text the
    answer only matters in that the parser refuses it anyway. The work is
    done by C loops over the text, never a Python loop per character, so
    that the check costs a small part of parsing: string contents are
    dropped (escaped backslashes and quotes first), then everything but
    brackets; then innermost pairs are removed once per level, which
    empties wide, shallow texts in a few rounds.
    """
    if isinstance(data, str):
        if data.count("[") + data.count("{") <= limit:
            return False
        data = data.encode("utf-8", "surrogatepass")
    else:
        data = bytes(data)
        if data.count(b"[") + data.count(b"{") <= limit:
            return False
    if b"\\" in data:
        # Escaped backslashes first: in \\" the quote ends the string
        data = data.replace(b"\\\\", b"").replace(b'\\"', b"")
    # Adjacent quotes are an empty string, or the end of one string and the
    # start of the next: removing both keeps the others paired
    data = data.translate(_SQUARE, _NOT_STRUCTURE).replace(b'""', b"")
    if b'"' in data:
        # Between the quotes left are brackets inside strings
        data = b"".join(data.split(b'"')[::2])
    rest = data
    for _ in range(limit):
        if not rest:
            return False
        rest = rest.replace(b"[]", b"")
    if not rest:
        return False
    # Deeper, or unbalanced: the running count of open brackets tells
    steps = array.array("b", data.translate(_STEP))
    return max(itertools.accumulate(steps), default=0) > limit


def LoadJson(txt: str | bytes | bytearray | memoryview,
             max_depth: int | None = MAX_DEPTH,
             max_size: int | None = None) -> Any:
    """Parse JSON text (str, or UTF-8 bytes).

    Text nested deeper than ``max_depth`` or longer than ``max_size``
    bytes (characters for str) is refused; None means no limit.

    @raise errors.ParseError: naming the problem, for invalid JSON and for
        text over a limit
    """
    if not isinstance(txt, (str, bytes, bytearray, memoryview)):
        raise errors.ParseError(f"Invalid JSON: expected text, got"
                                f" {type(txt).__name__}")
    if max_size is not None and len(txt) > max_size:
        raise errors.ParseError(f"Invalid JSON: {len(txt)} bytes exceed the"
                                f" limit of {max_size}")
    if isinstance(txt, str):
        text = txt
    else:
        try:
            text = bytes(txt).decode("utf-8")
        except UnicodeDecodeError as err:
            raise errors.ParseError(f"Invalid JSON: not UTF-8 ({err})") \
                from err
    if max_depth is not None and NestedDeeper(txt, max_depth):
        raise errors.ParseError(f"Invalid JSON: arrays and objects nested"
                                f" deeper than {max_depth} levels")
    try:
        return json.loads(text, parse_constant=_RefuseConstant)
    except ValueError as err:
        raise errors.ParseError(f"Invalid JSON: {err}") from err
    except RecursionError as err:
        # Only without a depth limit (or on a nearly full stack)
        raise errors.ParseError("Invalid JSON: arrays and objects nested too"
                                " deeply") from err


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
