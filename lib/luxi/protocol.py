"""The luxi wire format: framing, requests, answers, and their errors.

A message is JSON text followed by the byte 0x03 (``constants.LUXI_EOM``).
JSON never contains that byte unescaped, so the terminator alone delimits
messages. A request is ``{"method": str, "args": list, "version"?: int}``;
an answer is ``{"success": bool, "result": any, "version"?: int}``. Ganeti's
client library sends no version by default and refuses an answer whose
version differs from the one it sent, so the server echoes the request's
version (or sends none).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from typing import Any

from ganeti import constants, errors, serializer

# sockaddr_un holds 108 bytes including the final NUL
_MAX_SOCKET_PATH = 107

KEY_METHOD = constants.LUXI_KEY_METHOD
KEY_ARGS = constants.LUXI_KEY_ARGS
KEY_VERSION = constants.LUXI_KEY_VERSION
KEY_SUCCESS = constants.LUXI_KEY_SUCCESS
KEY_RESULT = constants.LUXI_KEY_RESULT
EOM = constants.LUXI_EOM


class ProtocolError(errors.LuxiError):
    """A message that does not follow the luxi protocol."""


class ConnectionClosedError(ProtocolError):
    """The peer closed the connection before a whole message arrived."""


class TimeoutError(ProtocolError):
    """Connecting, sending or receiving took too long."""


class EncodingError(ProtocolError):
    """A message could not be encoded for sending."""


class DecodingError(ProtocolError):
    """A received message could not be decoded."""


class RequestError(ProtocolError):
    """The server refused a request without an encoded error class."""


class NoMasterError(ProtocolError):
    """Nothing listens on the master socket (the daemon is not running)."""


class MessageTooLarge(ProtocolError):
    """A message exceeded the size limit before its terminator arrived."""


def _CheckVersion(version: Any, what: str) -> None:
    if version is not None and (not isinstance(version, int)
                                or isinstance(version, bool)):
        raise ProtocolError(f"Invalid luxi {what} version {version!r}:"
                            " expected an integer")


def _WireDefault(data: Any) -> Any:
    """Opcodes and config objects (anything with ToDict) as JSON values."""
    to_dict = getattr(data, "ToDict", None)
    if callable(to_dict):
        return to_dict()
    raise TypeError(f"Object of type {type(data).__name__} is not JSON serializable")


# serializer.DumpJson's format; objects go through the C encoder's default
# hook instead of a Python walk over every value of the message (which cost
# more than the query itself for a bulk instance listing)
_WIRE_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"),
                                 allow_nan=False, ensure_ascii=True,
                                 default=_WireDefault)


def _Dump(data: Any, what: str) -> bytes:
    try:
        text = _WIRE_ENCODER.encode(data) + "\n"
    except (TypeError, ValueError) as err:
        raise EncodingError(f"Cannot encode luxi {what}: {err}") from err
    return text.encode("ascii")


def _Load(msg: bytes | str, what: str) -> Any:
    try:
        return serializer.LoadJson(msg)
    except errors.ParseError as err:
        raise DecodingError(f"Invalid luxi {what}: {err}") from err


def FormatRequest(method: str, args: Any, version: int | None = None) -> bytes:
    """Encode a request (without the terminator)."""
    if not isinstance(method, str) or not method:
        raise EncodingError(f"Invalid luxi method name {method!r}")
    if not isinstance(args, (list, tuple)):
        raise EncodingError(f"Arguments of luxi method {method} must be a list,"
                            f" got {type(args).__name__}")
    _CheckVersion(version, "request")
    request: dict[str, Any] = {KEY_METHOD: method, KEY_ARGS: list(args)}
    if version is not None:
        request[KEY_VERSION] = version
    return _Dump(request, "request")


def ParseRequest(msg: bytes | str) -> tuple[str, list[Any], int | None]:
    """Decode a request into ``(method, args, version)``.

    @raise ProtocolError: (DecodingError for bad JSON) naming what is wrong
    """
    request = _Load(msg, "request")
    if not isinstance(request, dict):
        raise ProtocolError("Invalid luxi request: expected a JSON object,"
                            f" got {type(request).__name__}")
    method = request.get(KEY_METHOD)
    args = request.get(KEY_ARGS)
    version = request.get(KEY_VERSION)
    if not isinstance(method, str) or not method:
        raise ProtocolError(f"Invalid luxi request: no method name (got"
                            f" {method!r})")
    if not isinstance(args, list):
        raise ProtocolError(f"Invalid luxi request for {method}: 'args' must be"
                            f" a list, got {args!r}")
    _CheckVersion(version, "request")
    return method, args, version


def FormatResponse(success: bool, result: Any,
                   version: int | None = None) -> bytes:
    """Encode an answer (without the terminator)."""
    _CheckVersion(version, "answer")
    response: dict[str, Any] = {KEY_SUCCESS: bool(success), KEY_RESULT: result}
    if version is not None:
        response[KEY_VERSION] = version
    return _Dump(response, "answer")


def FormatError(err: BaseException, version: int | None = None) -> bytes:
    """Encode a failed answer carrying the encoded exception ``err``."""
    if isinstance(err, errors.GenericError) and \
            errors.GetErrorClass(type(err).__name__) is None:
        # Errors defined outside ganeti.errors (ProtocolError) travel as
        # LuxiError, which every client can re-raise
        err = errors.LuxiError(*err.args)
    elif not isinstance(err, errors.GenericError):
        err = errors.LuxiError(f"{type(err).__name__}: {err}")
    return FormatResponse(False, errors.EncodeException(err), version)


def ParseResponse(msg: bytes | str) -> tuple[bool, Any, int | None]:
    """Decode an answer into ``(success, result, version)``."""
    data = _Load(msg, "answer")
    if not (isinstance(data, dict) and KEY_SUCCESS in data
            and KEY_RESULT in data):
        raise DecodingError(f"Invalid luxi answer: {data!r}")
    version = data.get(KEY_VERSION)
    _CheckVersion(version, "answer")
    return bool(data[KEY_SUCCESS]), data[KEY_RESULT], version


def Frame(msg: bytes) -> bytes:
    """Append the terminator to an encoded message."""
    if EOM in msg:
        raise EncodingError("Message terminator found in luxi payload")
    return msg + EOM


class FrameSplitter:
    """Cut a byte stream into luxi messages.

    ``Feed`` the bytes as they arrive and take whole messages with ``Pop``.
    A message growing beyond ``max_size`` without its terminator raises
    MessageTooLarge: the stream cannot be resynchronised after that.
    """

    def __init__(self, max_size: int = constants.LUXI_MAX_MESSAGE_SIZE) -> None:
        if max_size < 1:
            raise errors.ProgrammerError(f"Invalid message size limit {max_size}")
        self.max_size = max_size
        self._pending = bytearray()
        self._messages: list[bytes] = []
        self._next = 0

    @property
    def pending(self) -> bytes:
        """Bytes received after the last terminator."""
        return bytes(self._pending)

    @property
    def pending_size(self) -> int:
        """How many bytes were received after the last terminator."""
        return len(self._pending)

    def Feed(self, data: bytes) -> None:
        """Add received bytes."""
        start = 0
        while True:
            pos = data.find(EOM, start)
            if pos < 0:
                break
            self._Append(data[start:pos])
            self._messages.append(bytes(self._pending))
            self._pending.clear()
            start = pos + 1
        self._Append(data[start:])

    def _Append(self, chunk: bytes) -> None:
        if len(self._pending) + len(chunk) > self.max_size:
            self._pending.clear()
            raise MessageTooLarge(f"Luxi message longer than {self.max_size}"
                                  " bytes without a terminator")
        self._pending += chunk

    def Pop(self) -> bytes | None:
        """The next whole message, or None when there is none yet."""
        if self._next >= len(self._messages):
            return None
        msg = self._messages[self._next]
        self._next += 1
        if self._next == len(self._messages):
            self._messages.clear()
            self._next = 0
        return msg


@contextlib.contextmanager
def SocketAddress(path: str) -> Iterator[str]:
    """An address for binding or connecting to the Unix socket ``path``.

    Paths longer than a socket address can hold (deep node roots of virtual
    clusters, test directories) are reached through an open descriptor of
    their directory (``/proc/self/fd/N/name``), valid inside the block.
    """
    if len(os.fsencode(path)) <= _MAX_SOCKET_PATH:
        yield path
        return
    directory, name = os.path.split(path)
    dir_fd = os.open(directory or ".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        short = f"/proc/self/fd/{dir_fd}/{name}"
        if len(os.fsencode(short)) > _MAX_SOCKET_PATH:
            raise errors.ProgrammerError(f"Socket name too long: {path}")
        yield short
    finally:
        os.close(dir_fd)
