"""Seeded generators of odd input for test_fuzz.py: JSON values, JSON text,
byte junk and raw HTTP requests.

Everything here is a pure function of a :class:`random.Random`, so that a
seed replays a run exactly. Nothing talks to a daemon.
"""

from __future__ import annotations

import base64
import json
import random
import string
from typing import Any

#: Strings that tend to break parsers, encoders and loggers
ODD_STRINGS = [
    "", " ", "\x00", "\t\n\r", "\x7f", "é", "\u2028", "\ufeff", "\ud800",
    "日本語", "💥", "%s%s%n", "{}", "[]", "null", "NaN", "-0", "1e999",
    "'\"", "\\", "%00", "%2F", "..", ".", "a" * 300, "\x03", "\u0663",
    "²", "ǅ", "<script>", "*", "?", "#", ";", "$(true)", "`true`",
]

#: Integers at interesting edges
ODD_INTS = [0, -1, 1, 2, 255, 256, 65535, 2**31 - 1, 2**31, 2**32, 2**53 + 1,
            2**63, -(2**63) - 1, 10**30]

#: Floats, as JSON can carry them (plus -0.0)
ODD_FLOATS = [0.0, -0.0, 0.5, -1.5, 1e-300, 1e300, 3.14159]


def Word(rng: random.Random, max_len: int = 12) -> str:
    """A short name of letters, digits, '-' and '_' (never a path)."""
    alphabet = string.ascii_letters + string.digits + "-_"
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(1, max_len)))


def Scalar(rng: random.Random) -> Any:
    """A random JSON scalar, biased towards edge cases."""
    kind = rng.randrange(8)
    if kind == 0:
        return None
    if kind == 1:
        return rng.choice([True, False])
    if kind == 2:
        return rng.choice(ODD_INTS) * rng.choice([1, -1])
    if kind == 3:
        return rng.randint(-10, 100)
    if kind == 4:
        return rng.choice(ODD_FLOATS)
    if kind == 5:
        return rng.choice(ODD_STRINGS)
    return Word(rng)


def Value(rng: random.Random, depth: int = 3, pool: list[Any] | None = None) -> Any:
    """A random JSON value up to ``depth`` levels deep; with ``pool``, some
    leaves are taken from it (names the daemons know, for deeper paths)."""
    if pool and rng.random() < 0.3:
        return rng.choice(pool)
    if depth <= 0 or rng.random() < 0.55:
        return Scalar(rng)
    if rng.random() < 0.5:
        return [Value(rng, depth - 1, pool) for _ in range(rng.randint(0, 4))]
    return {Key(rng): Value(rng, depth - 1, pool) for _ in range(rng.randint(0, 4))}


def Key(rng: random.Random) -> str:
    """A dict key: mostly plain words, sometimes odd."""
    return Word(rng) if rng.random() < 0.7 else rng.choice(ODD_STRINGS)


def Deep(depth: int, leaf: str = "0") -> str:
    """JSON text nested ``depth`` levels deep (lists and dicts alternating)."""
    opens = "".join("[" if i % 2 == 0 else '{"k":' for i in range(depth))
    closes = "".join("]" if i % 2 == 0 else "}" for i in reversed(range(depth)))
    return opens + leaf + closes


def Dumps(rng: random.Random, value: Any) -> str:
    """JSON text of ``value`` in a random but valid style."""
    return json.dumps(value, ensure_ascii=rng.random() < 0.7,
                      indent=rng.choice([None, None, 0, 2]),
                      sort_keys=rng.random() < 0.5)


def Mutate(rng: random.Random, data: bytes, count: int | None = None) -> bytes:
    """``data`` with a few random byte-level edits (flip, insert, delete,
    truncate, duplicate a slice)."""
    buf = bytearray(data)
    for _ in range(count if count is not None else rng.randint(1, 4)):
        if not buf:
            buf += bytes([rng.randrange(256)])
            continue
        pos = rng.randrange(len(buf))
        edit = rng.randrange(5)
        if edit == 0:
            buf[pos] ^= 1 << rng.randrange(8)
        elif edit == 1:
            buf[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        elif edit == 2:
            del buf[pos:pos + rng.randint(1, 8)]
        elif edit == 3:
            del buf[pos:]
        else:
            end = min(len(buf), pos + rng.randint(1, 32))
            buf[pos:pos] = buf[pos:end] * rng.randint(1, 4)
    return bytes(buf)


def RandomBytes(rng: random.Random, size: int) -> bytes:
    """``size`` uniformly random bytes."""
    return rng.getrandbits(8 * size).to_bytes(size, "little") if size else b""


def JsonJunk(rng: random.Random, exclude: bytes = b"") -> bytes:
    """Text that is not valid JSON, or is JSON a strict reader refuses
    (NaN, huge integers, deep nesting, invalid UTF-8, duplicate keys);
    bytes in ``exclude`` are replaced by spaces."""
    kind = rng.randrange(12)
    if kind == 0:
        text = b"NaN" if rng.random() < 0.5 else b'{"a": Infinity, "b": -Infinity}'
    elif kind == 1:
        text = b"[" + b"9" * rng.choice([4301, 5000, 20000]) + b"]"
    elif kind == 2:
        text = Deep(rng.choice([129, 1000, 50000])).encode()
    elif kind == 3:
        text = b'{"a": "\xed\xa0\x80\xff\xfe"}'
    elif kind == 4:
        text = b'{"a": 1, "a": 2, "a": [3]}'
    elif kind == 5:
        text = b"\xef\xbb\xbf[]"
    elif kind == 6:
        text = b"[" * rng.randint(1, 3000)
    elif kind == 7:
        text = b'"' + b"\\u" + Word(rng, 4).encode() + b'"'
    elif kind == 8:
        text = Mutate(rng, Dumps(rng, Value(rng)).encode("utf-8", "surrogatepass"))
    elif kind == 9:
        text = RandomBytes(rng, rng.randint(1, 200))
    elif kind == 10:
        text = b"1e99999"
    else:
        text = b"[1,]" if rng.random() < 0.5 else b"{'single': 'quotes'}"
    for byte in exclude:
        text = text.replace(bytes([byte]), b" ")
    return text


# --- HTTP ---------------------------------------------------------------------------


def BasicAuth(user: str, password: str) -> str:
    """An Authorization header value for HTTP basic auth."""
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def BadAuth(rng: random.Random, user: str) -> str:
    """An Authorization header that must not authenticate anybody."""
    kind = rng.randrange(10)
    if kind == 0:
        return BasicAuth(user, Word(rng))
    if kind == 1:
        return BasicAuth(Word(rng), Word(rng))
    if kind == 2:
        return "Basic " + base64.b64encode(user.encode()).decode()  # no colon
    if kind == 3:
        return "Basic !!!not-base64!!!"
    if kind == 4:
        return "Basic "
    if kind == 5:
        return "Bearer " + Word(rng, 40)
    if kind == 6:
        return "Digest username=\"" + user + "\", realm=\"x\""
    if kind == 7:
        return "Basic " + base64.b64encode(b"\xff\xfe:\x00\x01").decode()
    if kind == 8:
        return BasicAuth(user + ":" + Word(rng), "")
    return "Basic " + base64.b64encode(("a" * 3000 + ":" + "b" * 3000).encode()).decode()


def _Head(method: str, target: str, host: str, *extra: str,
          version: str = "HTTP/1.1", eol: str = "\r\n") -> bytes:
    lines = [f"{method} {target} {version}", f"Host: {host}", "Connection: close",
             *extra]
    return (eol.join(lines) + eol + eol).encode("utf-8", "surrogateescape")


def RawHttpJunk(rng: random.Random, host: str, path: str = "/") -> tuple[str, bytes]:
    """A complete but malformed or unusual HTTP request: (description, bytes).

    Every request is complete (its head ends, it carries the body it
    announces and asks to close the connection), so the server has all it
    needs to answer at once.
    """
    kinds = [
        ("bad request line", b"GARBAGE\r\n\r\n"),
        ("three-word junk line", b"A B C\r\n\r\n"),
        ("HTTP/0.9 request", f"GET {path}\r\n\r\n".encode()),
        ("unknown version", _Head("GET", path, host, version="HTTP/3.7")),
        ("version junk", _Head("GET", path, host, version="HTTX/1.1")),
        ("header without colon", _Head("GET", path, host, "NoColonHere")),
        ("header line too long", _Head("GET", path, host, "X-Long: " + "a" * 9000)),
        ("too many headers",
         _Head("GET", path, host, *(f"X-H{i}: {i}" for i in range(150)))),
        ("negative Content-Length", _Head("PUT", path, host, "Content-Length: -5")),
        ("non-numeric Content-Length", _Head("PUT", path, host, "Content-Length: abc")),
        ("huge Content-Length",
         _Head("PUT", path, host, "Content-Length: 99999999999")),
        ("conflicting Content-Length",
         _Head("PUT", path, host, "Content-Length: 2", "Content-Length: 3") + b"[] "),
        ("chunked body",
         _Head("PUT", path, host, "Transfer-Encoding: chunked") + b"2\r\n[]\r\n0\r\n\r\n"),
        ("NUL in the path", _Head("GET", path + "\x00x", host)),
        ("bytes above 127 in a header",
         _Head("GET", path, host, "X-Bin: " + bytes(range(128, 256)).decode(
             "utf-8", "surrogateescape"))),
        ("bare LF line ends", _Head("GET", path, host, eol="\n")),
        ("absolute-form target", _Head("GET", f"https://{host}{path}", host)),
        ("asterisk target", _Head("OPTIONS", "*", host)),
        ("target without slash", _Head("GET", path.lstrip("/") or "x", host)),
        ("target too long", _Head("GET", "/" + "x" * 10000, host)),
        ("lower-case method", _Head("get", path, host)),
        ("empty header name", _Head("GET", path, host, ": x")),
        ("folded header", _Head("GET", path, host, "X-A: a", "  folded")),
        ("pipelined requests",
         _Head("GET", path, host, version="HTTP/1.1").replace(b"Connection: close\r\n", b"")
         * 2 + _Head("GET", path, host)),
        ("HTTP/1.0 request", f"GET {path} HTTP/1.0\r\n\r\n".encode()),
        ("leading blank lines", b"\r\n\r\n" + _Head("GET", path, host)),
        # A whole request follows, for the server that skipped the junk
        ("random bytes then a request",
         RandomBytes(rng, rng.randint(1, 300)) + b"\r\n\r\n" + _Head("GET", path, host)),
        ("mutated request then a request",
         Mutate(rng, _Head("PUT", path, host)) + b"\r\n\r\n" + _Head("GET", path, host)),
    ]
    return rng.choice(kinds)


def TlsJunk(rng: random.Random) -> tuple[str, bytes]:
    """Bytes a TLS server must refuse at once instead of a handshake: each
    is complete (no record announces more bytes than follow), so the server
    never waits for the rest."""
    kind = rng.randrange(3)
    if kind == 0:
        # Not a TLS record type (0x14-0x18) nor an SSLv2 header (high bit)
        first = rng.choice([*range(0x00, 0x14), *range(0x19, 0x80)])
        return "random bytes", bytes([first]) + RandomBytes(rng, rng.randint(0, 2000))
    if kind == 1:
        # A whole handshake message header (4 bytes) of a type other than
        # ClientHello: with less, or with a ClientHello announcing more, a
        # server rightly waits for the next record (messages may be split)
        payload = bytes([rng.choice([t for t in range(256) if t != 0x01])]) \
            + RandomBytes(rng, rng.randint(3, 1000))
        return "handshake record of junk", (
            bytes([0x16, 0x03, rng.choice([0, 1, 3, 9])])
            + len(payload).to_bytes(2, "big") + payload)
    payload = RandomBytes(rng, rng.randint(1, 300))
    return "record of an unknown type", (
        bytes([rng.choice([0x14, 0x15, 0x17, 0x18]), 0x03, 0x03])
        + len(payload).to_bytes(2, "big") + payload)
