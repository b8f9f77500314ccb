"""The confd wire format: the ``plj0`` envelope, requests and replies.

A datagram is the four bytes ``plj0`` followed by a signed JSON message
(:func:`ganeti.serializer.DumpSignedJson`)::

    plj0{"hmac": <hex HMAC-SHA1 of salt + msg>, "msg": <JSON text>,
         "salt": <salt>}

In a request the salt is the client's current Unix time (as a decimal
string) and ``msg`` holds a :class:`ConfdRequest`; the daemon refuses
requests whose time is more than ``CONFD_MAX_CLOCK_SKEW`` seconds away from
its own. In a reply the salt is the request's ``rsalt`` and ``msg`` holds a
:class:`ConfdReply`. Both directions are signed with the cluster's confd
HMAC key: the bytes of ``hmac.key`` as they are on disk, as Ganeti uses
them.

The functions here are on the daemon's hot path: they use ``json`` and
``hmac`` directly, with the serializer's compact, key-sorted format.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from typing import Any

from ganeti import constants, errors, utils

__all__ = [
    "ConfdReply",
    "ConfdRequestError",
    "ConfdRequest",
    "PackReply",
    "PackRequest",
    "UnpackReply",
    "UnpackRequest",
]

MAGIC = constants.CONFD_MAGIC_FOURCC
_MAGIC_LEN = len(MAGIC)



class ConfdRequestError(errors.GenericError):
    """A confd request is malformed, stale or otherwise refused."""


_ENCODE = json.JSONEncoder(sort_keys=True, separators=(",", ":"),
                           allow_nan=False, ensure_ascii=True).encode
_DECODE = json.JSONDecoder().decode
_SHA1 = hashlib.sha1


def _Sign(key: bytes, salt: str, msg: str) -> str:
    return hmac.new(key, (salt + msg).encode("utf-8"), _SHA1).hexdigest()


def _KeyBytes(key: str | bytes) -> bytes:
    if isinstance(key, bytes):
        return key
    if isinstance(key, str):
        return key.encode("utf-8")
    raise errors.ProgrammerError(f"confd HMAC key must be str or bytes,"
                                 f" not {type(key).__name__}")


def _IntField(data: dict[str, Any], name: str, what: str,
              error: type[errors.GenericError],
              default: int | None = None) -> int:
    value = data.get(name, default)
    if not isinstance(value, int) or isinstance(value, bool):
        raise error(f"Confd {what} field '{name}' is not an integer:"
                    f" {value!r:.80}")
    return value


@dataclass
class ConfdRequest:
    """A confd query (Ganeti's field names).

    ``query`` is None (the type says it all), a string (a node name, an
    IP, a link) or a dict whose keys are the ``CONFD_REQQ_*`` constants.
    ``rsalt`` is the salt the answers must carry.
    """
    type: int
    query: Any = None
    rsalt: str = ""
    protocol: int = constants.CONFD_PROTOCOL_VERSION

    def ToDict(self) -> dict[str, Any]:
        """The request as sent (``query`` left out when None)."""
        result: dict[str, Any] = {"protocol": self.protocol, "type": self.type,
                                  "rsalt": self.rsalt}
        if self.query is not None:
            result["query"] = self.query
        return result

    @classmethod
    def FromDict(cls, data: Any) -> ConfdRequest:
        """Build a request from its dict; raise ConfdRequestError if bad."""
        if not isinstance(data, dict):
            raise ConfdRequestError(
                f"Confd request is not a JSON object: {data!r:.80}")
        rsalt = data.get("rsalt")
        if not isinstance(rsalt, str) or not rsalt:
            raise ConfdRequestError(
                f"Confd request has no valid 'rsalt': {rsalt!r:.80}")
        return cls(type=_IntField(data, "type", "request", ConfdRequestError),
                   query=data.get("query"), rsalt=rsalt,
                   protocol=_IntField(data, "protocol", "request",
                                      ConfdRequestError))


@dataclass
class ConfdReply:
    """A confd answer (Ganeti's field names).

    ``status`` is a ``CONFD_REPL_STATUS_*`` constant; with an error status
    ``answer`` holds a ``CONFD_ERROR_*`` code or a message. ``serial`` is the
    serial number of the configuration the answer comes from.
    """
    status: int
    answer: Any = None
    serial: int = 0
    protocol: int = constants.CONFD_PROTOCOL_VERSION

    def ToDict(self) -> dict[str, Any]:
        """The reply as sent."""
        return {"protocol": self.protocol, "status": self.status,
                "answer": self.answer, "serial": self.serial}

    @classmethod
    def FromDict(cls, data: Any) -> ConfdReply:
        """Build a reply from its dict; raise ConfdClientError if bad."""
        if not isinstance(data, dict):
            raise errors.ConfdClientError(
                f"Confd reply is not a JSON object: {data!r:.80}")
        error = errors.ConfdClientError
        return cls(status=_IntField(data, "status", "reply", error),
                   answer=data.get("answer"),
                   serial=_IntField(data, "serial", "reply", error, 0),
                   protocol=_IntField(data, "protocol", "reply", error))


def PackSigned(data: Any, key: bytes, salt: str) -> bytes:
    """``plj0`` + the signed JSON of ``data`` (salt and key given)."""
    msg = _ENCODE(data) + "\n"
    outer = _ENCODE({"hmac": _Sign(key, salt, msg), "msg": msg, "salt": salt})
    return MAGIC + outer.encode("ascii")


def UnpackSigned(payload: bytes, key: bytes) -> tuple[Any, str]:
    """Check the magic and signature of a datagram; return (data, salt).

    @raise errors.ConfdMagicError: when the magic is missing
    @raise errors.SignatureError: for anything else wrong with it
    """
    if payload[:_MAGIC_LEN] != MAGIC:
        raise errors.ConfdMagicError(
            f"Datagram does not start with {MAGIC!r}: {payload[:8]!r}")
    try:
        outer = _DECODE(payload[_MAGIC_LEN:].decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as err:
        raise errors.SignatureError(f"Datagram is not JSON: {err}") from err
    if not isinstance(outer, dict):
        raise errors.SignatureError("Datagram is not a JSON object")
    msg = outer.get("msg")
    salt = outer.get("salt")
    digest = outer.get("hmac")
    if not (isinstance(msg, str) and isinstance(salt, str)
            and isinstance(digest, str)):
        raise errors.SignatureError("Datagram lacks 'msg', 'salt' or 'hmac'")
    try:
        good = hmac.compare_digest(_Sign(key, salt, msg), digest.lower())
    except (TypeError, UnicodeEncodeError):
        good = False
    if not good:
        raise errors.SignatureError("Invalid signature")
    try:
        data = _DECODE(msg)
    except (ValueError, RecursionError) as err:
        raise errors.SignatureError(f"Signed message is not JSON: {err}") \
            from err
    return data, salt


def CheckTimestamp(salt: str, now: float | None = None,
                   max_skew: float = constants.CONFD_MAX_CLOCK_SKEW) -> None:
    """Refuse a request salt that is not a time within ``max_skew`` of now.

    @raise ConfdRequestError: naming the bad salt
    """
    try:
        stamp = float(salt)
    except ValueError as err:
        raise ConfdRequestError(
            f"Request salt '{salt:.40}' is not a timestamp") from err
    if now is None:
        now = time.time()
    if not abs(now - stamp) <= max_skew:  # also refuses NaN
        raise ConfdRequestError(
            f"Request timestamp {salt:.40} is {now - stamp:+.0f}s away from"
            f" the local clock (more than {max_skew}s)")


def PackRequest(request: ConfdRequest, key: str | bytes,
                now: float | None = None) -> bytes:
    """The datagram of a request, salted with the current time."""
    if now is None:
        now = time.time()
    return PackSigned(request.ToDict(), _KeyBytes(key), str(int(now)))


def UnpackRequest(payload: bytes, key: str | bytes, now: float | None = None,
                  max_skew: float = constants.CONFD_MAX_CLOCK_SKEW
                  ) -> ConfdRequest:
    """Check a request datagram (magic, size, signature, time); parse it.

    @raise errors.ConfdMagicError: without the magic
    @raise errors.UdpDataSizeError: when larger than MAX_UDP_DATA_SIZE
    @raise errors.SignatureError: when malformed or badly signed
    @raise ConfdRequestError: when stale, from the future, or
        missing its rsalt
    """
    if len(payload) > constants.MAX_UDP_DATA_SIZE:
        raise errors.UdpDataSizeError(
            f"Datagram of {len(payload)} bytes is larger than"
            f" {constants.MAX_UDP_DATA_SIZE}")
    data, salt = UnpackSigned(payload, _KeyBytes(key))
    CheckTimestamp(salt, now=now, max_skew=max_skew)
    return ConfdRequest.FromDict(data)


def PackReply(reply: ConfdReply, key: str | bytes, rsalt: str) -> bytes:
    """The datagram of a reply to the request with salt ``rsalt``."""
    return PackSigned(reply.ToDict(), _KeyBytes(key), rsalt)


def UnpackReply(payload: bytes, key: str | bytes) -> tuple[ConfdReply, str]:
    """Check and parse a reply datagram; return (reply, its salt).

    @raise errors.ConfdMagicError: without the magic
    @raise errors.SignatureError: when malformed or badly signed
    @raise errors.ConfdClientError: when the message is not a reply
    """
    data, salt = UnpackSigned(payload, _KeyBytes(key))
    return ConfdReply.FromDict(data), salt


def NewRequestSalt() -> str:
    """A fresh response salt for a request."""
    return utils.NewUUID()
