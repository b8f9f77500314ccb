"""The base of RAPI resources: request data, opcode building, error mapping.

A resource class handles one path pattern of :mod:`ganeti.rapi.resources`.
It answers an HTTP method either with a method of that name (``GET``,
``PUT``, ``POST``, ``DELETE``) returning a JSON-able value, or, for writes,
by declaring ``<METHOD>_OPCODE`` (and optionally ``<METHOD>_RENAME`` and
``Get<Method>OpInput``): the request body becomes the opcode's parameters,
checked against the opcode's declaration, and the answer is the job id.
``<METHOD>_ACCESS`` lists the user options of which a client needs one
(GET needs none by default, as in Ganeti; writes need ``write``).
"""

from __future__ import annotations

import logging
import os
import queue
import reprlib
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, ClassVar

from ganeti import constants, errors, http, luxi, opcodes, pathutils
from ganeti.rapi import RAPI_ACCESS_WRITE

HTTP_UNSUPPORTED_MEDIA_TYPE = 415
HTTP_BAD_GATEWAY = 502
HTTP_GATEWAY_TIMEOUT = 504

#: The methods a resource may implement
METHODS = (http.HTTP_GET, http.HTTP_PUT, http.HTTP_POST, http.HTTP_DELETE)


class HttpUnsupportedMediaType(http.HttpException):
    """415: the body is not JSON."""
    code = HTTP_UNSUPPORTED_MEDIA_TYPE


class HttpBadGateway(http.HttpException):
    """502: the master daemon failed or gave an unusable answer."""
    code = HTTP_BAD_GATEWAY


class HttpGatewayTimeout(http.HttpException):
    """504: the master daemon did not answer in time."""
    code = HTTP_GATEWAY_TIMEOUT


def MapError(err: BaseException) -> http.HttpException:
    """The HTTP error answering a failed luxi call (or opcode building).

    Errors of the request (OpPrereqError and friends) are 4xx: 404 for
    ECODE_NOENT, 409 is not used by Ganeti, so every other code is 400.
    """
    if isinstance(err, http.HttpException):
        return err
    if isinstance(err, (errors.JobQueueFull, errors.JobQueueDrainError)):
        return http.HttpServiceUnavailable(f"Job queue refuses new jobs: {err}")
    if isinstance(err, luxi.NoMasterError):
        return HttpBadGateway(f"Master seems to be unreachable: {err}")
    if isinstance(err, luxi.TimeoutError):
        return HttpGatewayTimeout(f"Timeout while talking to the master"
                                  f" daemon: {err}")
    if isinstance(err, luxi.ProtocolError):
        return HttpBadGateway(f"Error talking to the master daemon: {err}")
    if isinstance(err, (errors.OpPrereqError, errors.ParameterError,
                        errors.TypeEnforcementError, errors.TagError,
                        errors.ParseError)):
        message = err.args[0] if err.args else str(err)
        if errors.GetErrorCode(err) == errors.ECODE_NOENT:
            return http.HttpNotFound(str(message))
        return http.HttpBadRequest(str(message))
    if isinstance(err, errors.JobLost):
        return http.HttpNotFound(str(err))
    if isinstance(err, errors.GenericError):
        return HttpBadGateway(f"{err.__class__.__name__}: {err}")
    return http.HttpInternalServerError(f"Internal error: {err.__class__.__name__}")


# --- the luxi connections --------------------------------------------------------------

def _FileSignature(path: str) -> tuple[int, ...] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


class ConfigAnswerCache:
    """Answers of the master that depend on the configuration only.

    An answer (e.g. ``QueryClusterInfo`` for ``/2/info``) is kept while
    the configuration file and the master's luxi socket are the same files
    as when it was fetched, and for at most ``max_age`` seconds. The master
    writes every configuration change at once into a new file renamed over
    ``config.data`` (a new inode), so a changed configuration is seen by
    the next request; a restarted master has a new socket. The files are
    looked at before the master is asked, so an answer is never newer than
    its key claims only in the harmless direction. ``max_age`` bounds how
    long a master that died without removing its socket goes unnoticed.
    """

    def __init__(self, config_file: str, socket_path: str,
                 max_age: float = 1.0) -> None:
        self.config_file = config_file
        self.socket_path = socket_path
        self.max_age = max_age
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[tuple[Any, ...], float, Any]] = {}

    def _Key(self) -> tuple[Any, ...] | None:
        config = _FileSignature(self.config_file)
        sock = _FileSignature(self.socket_path)
        if config is None or sock is None:
            return None
        return (config, sock)

    def Get(self, name: str, fetch_fn: Callable[[], Any]) -> Any:
        """The cached answer ``name``, or ``fetch_fn()`` (then cached).

        Answers are shared: callers must not change them.
        """
        key = self._Key()
        now = time.monotonic()
        if key is not None:
            with self._lock:
                entry = self._entries.get(name)
            if entry is not None and entry[0] == key and now - entry[1] < self.max_age:
                return entry[2]
        value = fetch_fn()
        if key is not None:
            with self._lock:
                self._entries[name] = (key, now, value)
        return value


class LuxiPool:
    """Reusable luxi clients for the request threads.

    At most ``max_idle`` idle connections stay open; a client whose call
    failed is closed rather than reused.
    """

    def __init__(self, address: str | None = None, max_idle: int = 8,
                 timeouts: Sequence[float] | None = None,
                 config_file: str | None = None) -> None:
        self.address = address
        self.timeouts = timeouts
        self._idle: queue.LifoQueue[luxi.Client] = queue.LifoQueue()
        self._max_idle = max_idle
        #: Configuration-only answers of the master
        self.cache = ConfigAnswerCache(config_file or pathutils.CLUSTER_CONF_FILE,
                                       address or pathutils.MASTER_SOCKET)

    def Get(self) -> luxi.Client:
        """An idle client, or a new one."""
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            return luxi.Client(self.address, timeouts=self.timeouts)

    def Put(self, client: luxi.Client, broken: bool = False) -> None:
        """Give a client back (closed when broken or when enough are idle)."""
        if broken or self._idle.qsize() >= self._max_idle:
            client.Close()
            return
        self._idle.put(client)

    def CloseAll(self) -> None:
        """Close the idle clients."""
        while True:
            try:
                self._idle.get_nowait().Close()
            except queue.Empty:
                return


# --- the request ---------------------------------------------------------------------

class RapiRequest:
    """What a resource sees of a request."""

    def __init__(self, method: str, items: Sequence[str],
                 queryargs: dict[str, list[str]], body: Any,
                 has_body: bool, user: str | None = None) -> None:
        self.method = method
        self.items = list(items)
        self.queryargs = queryargs
        self.body = body
        self.has_body = has_body
        self.user = user


def BuildUriList(ids: Iterable[Any], uri_format: str,
                 uri_fields: tuple[str, str] = ("name", "uri")) -> list[dict[str, Any]]:
    """``[{"id": x, "uri": "/2/things/x"}, ...]`` (keys from ``uri_fields``)."""
    id_field, uri_field = uri_fields
    return [{id_field: ident, uri_field: uri_format % ident} for ident in ids]


def MapFields(names: Sequence[str], data: Sequence[Any]) -> dict[str, Any]:
    """Pair field names with one row of values."""
    if len(names) != len(data):
        raise HttpBadGateway(f"Master answered {len(data)} values for"
                             f" {len(names)} fields")
    return dict(zip(names, data))


def MapBulkFields(rows: Iterable[Sequence[Any]], names: Sequence[str]) -> list[dict[str, Any]]:
    """:func:`MapFields` for each row."""
    return [MapFields(names, row) for row in rows]


def CheckType(value: Any, exptype: type, descr: str) -> None:
    """400 unless ``value`` is a ``exptype``."""
    if not isinstance(value, exptype) or (exptype is int and isinstance(value, bool)):
        raise http.HttpBadRequest(f"{descr}: expected a {exptype.__name__},"
                                  f" got {type(value).__name__}")


def ParseNonNegativeInt(raw: str, what: str) -> int:
    """A path segment holding a non-negative decimal integer; 400 if not.

    ``str.isdigit`` alone also accepts digits ``int`` refuses (``"²"``), and
    ``int`` refuses more than 4300 digits: neither may become a 500.
    """
    if raw.isascii() and raw.isdigit():
        try:
            return int(raw)
        except ValueError:
            pass
    raise http.HttpBadRequest(f"Invalid {what} {reprlib.repr(raw)}: expected a"
                              " non-negative integer")


def CheckParameter(data: dict[str, Any], name: str, default: Any = None,
                   exptype: type | None = None) -> Any:
    """A body parameter, with an optional type check (400 when wrong)."""
    if name not in data:
        return default
    value = data[name]
    if exptype is not None:
        CheckType(value, exptype, f"Parameter '{name}'")
    return value


def FillOpcode(opcls: type[opcodes.OpCode], body: Any,
               static: dict[str, Any] | None,
               rename: dict[str, str] | None = None) -> opcodes.OpCode:
    """Build and check an opcode from a request body and fixed values.

    ``rename`` maps old body names to parameter names; ``static`` holds
    values from the path and the query (a body may not override them).
    Unknown parameters and values the opcode's checks refuse give 400s
    naming them.
    """
    if body is None:
        body = {}
    CheckType(body, dict, "Body contents")
    params = dict(body)
    for old, new in (rename or {}).items():
        if old in params:
            if new in params:
                raise http.HttpBadRequest(
                    f"Parameter '{old}' was renamed to '{new}'; give only one")
            params[new] = params.pop(old)
    if static:
        overwritten = sorted(set(params) & set(static))
        if overwritten:
            raise http.HttpBadRequest(
                "Cannot overwrite parameter(s) given by the path or query: "
                + ", ".join(f"'{name}'" for name in overwritten))
        params.update(static)
    slots = set(opcls.GetAllSlots())
    unknown = sorted(str(key) for key in params if key not in slots)
    if unknown:
        raise http.HttpBadRequest(
            f"Invalid body parameters: unknown parameter(s) for {opcls.OP_ID}: "
            + ", ".join(f"'{name}'" for name in unknown))
    op = opcls(**params)
    try:
        op.Validate(False)
    except errors.OpPrereqError as err:
        raise http.HttpBadRequest(f"Invalid body parameters: {err.args[0]}") from err
    return op


class ResourceBase:
    """Base of all resources; see the module doc."""

    GET_ACCESS: ClassVar[list[str]] = []
    PUT_ACCESS: ClassVar[list[str]] = [RAPI_ACCESS_WRITE]
    POST_ACCESS: ClassVar[list[str]] = [RAPI_ACCESS_WRITE]
    DELETE_ACCESS: ClassVar[list[str]] = [RAPI_ACCESS_WRITE]

    def __init__(self, req: RapiRequest, pool: LuxiPool) -> None:
        self.req = req
        self.items = req.items
        self.queryargs = req.queryargs
        self.request_body = req.body
        self._pool = pool
        self._client: luxi.Client | None = None
        self._client_broken = False

    # --- which methods -----------------------------------------------------------------

    @classmethod
    def AllowedMethods(cls) -> list[str]:
        """The HTTP methods this resource answers."""
        return [m for m in METHODS
                if callable(getattr(cls, m, None))
                or getattr(cls, f"{m}_OPCODE", None) is not None]

    @classmethod
    def GetAccess(cls, method: str) -> list[str]:
        """The options of which a user needs one for ``method``."""
        return list(getattr(cls, f"{method}_ACCESS", [RAPI_ACCESS_WRITE]))

    def Handle(self, method: str) -> Any:
        """Run ``method``; return its JSON-able answer."""
        fn = getattr(self, method, None)
        try:
            if callable(fn):
                return fn()
            return self._OpcodeMethod(method)
        except (luxi.ProtocolError, OSError):
            self._client_broken = True
            raise

    # --- the master ----------------------------------------------------------------------

    def GetClient(self) -> luxi.Client:
        """The luxi client of this request (from the pool)."""
        if self._client is None:
            self._client = self._pool.Get()
        return self._client

    def Release(self) -> None:
        """Give the luxi client back to the pool."""
        client, self._client = self._client, None
        if client is not None:
            self._pool.Put(client, broken=self._client_broken)

    def SubmitJob(self, ops: list[Any]) -> int:
        """Submit a job; the answer is its id (a JSON number, as Ganeti 2.6+)."""
        reason = self._checkStringVariable("reason", None)
        entry = [constants.OPCODE_REASON_SRC_RLIB2, reason or "", time.time_ns()]
        for op in ops:
            op.reason = list(getattr(op, "reason", None) or []) + [entry]
        return int(self.GetClient().SubmitJob(ops))

    def QueryItems(self, resource: str, fields: Sequence[str],
                   names: Sequence[str] | None = None) -> list[list[Any]]:
        """Rows of values (None where unavailable) via luxi ``Query``.

        With ``names``, only those items (by name); an unknown name is a 404.
        """
        qfilter = None
        if names:
            qfilter = ["|"] + [["=", "name", name] for name in names]
        result = self.GetClient().Query(resource, list(fields), qfilter)
        try:
            rows = [[value if status == constants.RS_NORMAL else None
                     for status, value in row] for row in result["data"]]
        except (KeyError, TypeError, ValueError) as err:
            raise HttpBadGateway(f"Invalid answer from the master to a"
                                 f" '{resource}' query") from err
        if names and len(rows) < len(set(names)):
            found = {row[list(fields).index("name")] for row in rows} \
                if "name" in fields else set()
            missing = [n for n in names if n not in found] or list(names)
            raise http.HttpNotFound(f"{resource.capitalize()} '{missing[0]}'"
                                    " does not exist")
        return rows

    # --- query arguments -------------------------------------------------------------

    def _checkIntVariable(self, name: str, default: int = 0) -> int:
        values = self.queryargs.get(name)
        if not values:
            return default
        try:
            return int(values[0])
        except ValueError:
            raise http.HttpBadRequest(
                f"Invalid value {values[0]!r} for the '{name}' parameter:"
                " expected an integer (0 or 1 for flags)") from None

    def _checkStringVariable(self, name: str, default: str | None = None) -> str | None:
        values = self.queryargs.get(name)
        if not values:
            return default
        return values[0]

    def useBulk(self) -> bool:
        """The ``bulk`` query argument."""
        return bool(self._checkIntVariable("bulk"))

    def useForce(self) -> bool:
        """The ``force`` query argument."""
        return bool(self._checkIntVariable("force"))

    def dryRun(self) -> bool:
        """The ``dry-run`` query argument."""
        return bool(self._checkIntVariable("dry-run"))

    def useLocking(self) -> bool:
        """The ``lock`` query argument."""
        return bool(self._checkIntVariable("lock"))

    def getBodyParameter(self, name: str, *default: Any) -> Any:
        """A parameter of a dict body; 400 when missing without a default."""
        body = self.request_body
        if isinstance(body, dict) and name in body:
            return body[name]
        if default:
            return default[0]
        raise http.HttpBadRequest(f"Required body parameter '{name}' is missing")

    # --- opcode methods ----------------------------------------------------------------

    def _OpcodeMethod(self, method: str) -> Any:
        opcls = getattr(self, f"{method}_OPCODE", None)
        if opcls is None:
            raise http.HttpMethodNotAllowed(
                f"Method {method} is not supported here",
                headers={http.HTTP_ALLOW: ", ".join(self.AllowedMethods())})
        input_fn = getattr(self, f"Get{method.capitalize()}OpInput", None)
        if input_fn is not None:
            body, static = input_fn()
        else:
            body, static = self.request_body, {}
        static = dict(static)
        if "dry_run" not in static and "dry-run" in self.queryargs:
            static["dry_run"] = self.dryRun()
        op = FillOpcode(opcls, body, static,
                        rename=getattr(self, f"{method}_RENAME", None))
        return self.SubmitJob([op])


class OpcodeResource(ResourceBase):
    """A resource whose writes are opcodes (see the module doc)."""

    GET_OPCODE: ClassVar[type[opcodes.OpCode] | None] = None
    PUT_OPCODE: ClassVar[type[opcodes.OpCode] | None] = None
    POST_OPCODE: ClassVar[type[opcodes.OpCode] | None] = None
    DELETE_OPCODE: ClassVar[type[opcodes.OpCode] | None] = None


def LogFeedback(msg: Any) -> None:
    """Log a job's feedback message."""
    logging.info("Job feedback: %s", msg)

