"""The transport of node RPC: many HTTPS requests at once, in one thread.

:func:`ProcessRequests` drives all requests of one RPC call with pycurl's
multi interface in the calling thread; each request has its own read
timeout, so a node that hangs costs at most its own timeout and never delays
the answers of the others. :class:`RpcResult` is what a caller gets per node.

Connections are kept open between calls: the multi handles, which hold
libcurl's connection cache, are pooled per process, so the next call to a
node reuses a connection (and its TLS session) made by an earlier one. A
connection idle for longer than ``RPC_CONN_MAX_AGE`` is not reused; the node
daemon keeps idle connections open longer than that. A connection the node
daemon closed (a restart) is noticed by libcurl before reuse.
"""

from __future__ import annotations

import io
import logging
import os
import threading
from dataclasses import dataclass
from typing import Any
from collections.abc import Iterable

import pycurl

from ganeti import constants, errors, http


@dataclass(frozen=True)
class RpcSslConfig:
    """Files the client uses for TLS.

    ``ca_file`` is the cluster certificate the node daemons must present;
    ``cert_file`` (and ``key_file``, which defaults to it) is the client's
    own certificate and key.
    """
    ca_file: str
    cert_file: str
    key_file: str | None = None

    @classmethod
    def FromDefaults(cls) -> RpcSslConfig:
        """Use the cluster's files: ``client.pem`` if present, else ``server.pem``."""
        from ganeti import pathutils
        cert = pathutils.NODED_CLIENT_CERT_FILE
        if not os.path.exists(cert):
            cert = pathutils.NODED_CERT_FILE
        return cls(ca_file=pathutils.NODED_CERT_FILE, cert_file=cert)

    def Check(self) -> str | None:
        """Return why the files cannot be used, or None if they can."""
        for what, path in (("CA certificate", self.ca_file),
                           ("client certificate", self.cert_file),
                           ("client key", self.key_file or self.cert_file)):
            if not os.access(path, os.R_OK):
                return f"RPC {what} file {path} is missing or unreadable"
        return None


@dataclass
class RpcRequest:
    """One HTTP request of an RPC call, and after processing its outcome.

    ``key`` is how the caller named the node, ``node`` its display name.
    After :func:`ProcessRequests`, either ``error`` is set (no HTTP answer)
    or ``code`` and ``resp_body`` are.
    """
    key: str
    node: str
    address: str
    port: int
    procedure: str
    body: bytes
    read_timeout: float
    code: int | None = None
    resp_body: bytes = b""
    error: str | None = None

    @property
    def url(self) -> str:
        """The request's URL."""
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"https://{host}:{self.port}/{self.procedure}"

    @property
    def nicename(self) -> str:
        """A short description for messages."""
        return f"{self.node}/{self.procedure}"


_CLIENT_HEADERS = [
    f"{http.HTTP_CONTENT_TYPE}: {http.HTTP_APP_JSON}",
    "Expect:",  # no "100 Continue" round trip
]

_TLS_ERRORS = frozenset([
    pycurl.E_SSL_CONNECT_ERROR, pycurl.E_PEER_FAILED_VERIFICATION,
    pycurl.E_SSL_CERTPROBLEM, pycurl.E_SSL_CIPHER, pycurl.E_SSL_CACERT_BADFILE,
    pycurl.E_SSL_ENGINE_NOTFOUND, pycurl.E_SSL_ENGINE_SETFAILED,
    pycurl.E_SSL_SHUTDOWN_FAILED, pycurl.E_SSL_CRL_BADFILE,
    pycurl.E_SSL_ISSUER_ERROR, pycurl.E_USE_SSL_FAILED,
])
_CLOSED_ERRORS = frozenset([pycurl.E_GOT_NOTHING, pycurl.E_RECV_ERROR,
                            pycurl.E_SEND_ERROR, pycurl.E_PARTIAL_FILE])


def FormatCurlError(req: RpcRequest, code: int, message: str) -> str:
    """Turn a libcurl error into a message that says what happened."""
    where = f"{req.address}:{req.port}"
    if code == pycurl.E_COULDNT_CONNECT:
        return f"Connection to node daemon at {where} failed: {message}"
    if code == pycurl.E_OPERATION_TIMEDOUT:
        return (f"Timeout: no answer from node daemon at {where} within"
                f" {req.read_timeout:g} seconds ({message})")
    if code in _TLS_ERRORS:
        return f"TLS error talking to node daemon at {where}: {message}"
    if code in _CLOSED_ERRORS:
        return (f"Connection to node daemon at {where} closed without a"
                f" complete answer: {message}")
    return f"Error {code} talking to node daemon at {where}: {message}"


#: connections a pooled multi handle keeps open; enough for one to each
#: node of a large cluster
_MAX_CONNECTS = 1024
#: idle multi handles kept per process (about the number of threads that
#: make RPC calls at the same time)
_MAX_POOLED = 32


class _MultiPool:
    """Multi handles, with their open connections, for reuse by any thread.

    A handle is used by one thread at a time. After a fork the child starts
    with an empty pool and never touches the parent's handles: closing them
    would end the parent's TLS sessions on the shared sockets, so they are
    kept, unused, until the child exits.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._free: list[pycurl.CurlMulti] = []
        self._abandoned: list[pycurl.CurlMulti] = []
        os.register_at_fork(after_in_child=self._AfterFork)

    def _AfterFork(self) -> None:
        self._lock = threading.Lock()
        self._abandoned.extend(self._free)
        self._free = []

    def Get(self) -> pycurl.CurlMulti:
        """A multi handle, with the connections of earlier calls if any."""
        with self._lock:
            if self._free:
                return self._free.pop()
        multi = pycurl.CurlMulti()
        multi.setopt(pycurl.M_MAXCONNECTS, _MAX_CONNECTS)
        return multi

    def Put(self, multi: pycurl.CurlMulti) -> None:
        """Give back a handle all of whose transfers were removed."""
        with self._lock:
            if len(self._free) < _MAX_POOLED:
                self._free.append(multi)
                return
        multi.close()

    def Clear(self) -> None:
        """Close every pooled handle and its connections."""
        with self._lock:
            free, self._free = self._free, []
        for multi in free:
            multi.close()


_POOL = _MultiPool()


def CloseConnections() -> None:
    """Close the kept-open connections of this process (tests use this)."""
    _POOL.Clear()


def _NewHandle(req: RpcRequest, ssl_config: RpcSslConfig,
               connect_timeout: float) -> tuple[pycurl.Curl, io.BytesIO]:
    curl = pycurl.Curl()
    buf = io.BytesIO()
    curl.setopt(pycurl.URL, req.url)
    curl.setopt(pycurl.CUSTOMREQUEST, http.HTTP_PUT)
    curl.setopt(pycurl.POSTFIELDS, req.body)
    curl.setopt(pycurl.HTTPHEADER, _CLIENT_HEADERS)
    curl.setopt(pycurl.WRITEFUNCTION, buf.write)
    curl.setopt(pycurl.NOSIGNAL, 1)
    curl.setopt(pycurl.FOLLOWLOCATION, 0)
    curl.setopt(pycurl.PROXY, "")  # never go through a proxy from the env
    curl.setopt(pycurl.CONNECTTIMEOUT_MS, max(1, int(connect_timeout * 1000)))
    curl.setopt(pycurl.TIMEOUT_MS, max(1, int(req.read_timeout * 1000)))
    curl.setopt(pycurl.CAINFO, ssl_config.ca_file)
    curl.setopt(pycurl.SSL_VERIFYPEER, 1)
    # Nodes are contacted by address and share the cluster certificate, so
    # the name in it cannot match; trusting only that certificate suffices.
    curl.setopt(pycurl.SSL_VERIFYHOST, 0)
    curl.setopt(pycurl.SSLCERTTYPE, "PEM")
    curl.setopt(pycurl.SSLCERT, ssl_config.cert_file)
    curl.setopt(pycurl.SSLKEYTYPE, "PEM")
    curl.setopt(pycurl.SSLKEY, ssl_config.key_file or ssl_config.cert_file)
    curl.setopt(pycurl.TCP_NODELAY, 1)
    curl.setopt(pycurl.MAXAGE_CONN, constants.RPC_CONN_MAX_AGE)
    return curl, buf


def ProcessRequests(requests: Iterable[RpcRequest], ssl_config: RpcSslConfig,
                    connect_timeout: float = constants.RPC_CONNECT_TIMEOUT) -> None:
    """Run all requests in parallel and fill in their outcomes.

    Returns when every request has an answer, an error or has timed out.
    Never raises for per-request failures.
    """
    reqs = list(requests)
    if not reqs:
        return
    problem = ssl_config.Check()
    if problem:
        for req in reqs:
            req.error = problem
        return

    multi = _POOL.Get()
    handles: dict[pycurl.Curl, tuple[RpcRequest, io.BytesIO]] = {}
    reusable = False
    try:
        for req in reqs:
            curl, buf = _NewHandle(req, ssl_config, connect_timeout)
            handles[curl] = (req, buf)
            multi.add_handle(curl)

        remaining = len(handles)
        while remaining:
            while True:
                ret, _ = multi.perform()
                if ret != pycurl.E_CALL_MULTI_PERFORM:
                    break
            while True:
                queued, done, failed = multi.info_read()
                for curl in done:
                    req, buf = handles[curl]
                    req.code = curl.getinfo(pycurl.RESPONSE_CODE)
                    req.resp_body = buf.getvalue()
                    multi.remove_handle(curl)
                    remaining -= 1
                for curl, code, message in failed:
                    req, _ = handles[curl]
                    req.error = FormatCurlError(req, code, message)
                    multi.remove_handle(curl)
                    remaining -= 1
                if not queued:
                    break
            if remaining:
                # libcurl knows the earliest timeout of all its transfers
                wait_ms = multi.timeout()
                wait = 1.0 if wait_ms < 0 else min(wait_ms / 1000.0, 1.0)
                multi.select(wait)
        reusable = True
    finally:
        if not reusable:
            # Interrupted: some transfers may still be attached
            for curl in handles:
                try:
                    multi.remove_handle(curl)
                except pycurl.error:
                    pass
        for curl in handles:
            curl.close()
        if reusable:
            _POOL.Put(multi)
        else:
            multi.close()


class RpcResult:
    """The outcome of an RPC call on one node.

    Exactly one of these holds: the call succeeded (``fail_msg`` is None and
    ``payload`` is the node's answer); the node was marked offline and not
    contacted (``offline`` is True, ``fail_msg`` says so); or the call
    failed (``fail_msg`` says why: transport error, timeout, HTTP error or
    the node's own error message). ``data`` is the raw ``[success, payload]``
    answer when there was one.
    """

    def __init__(self, data: Any = None, failed: bool = False,
                 offline: bool = False, call: str | None = None,
                 node: str | None = None):
        self.offline = offline
        self.call = call
        self.node = node
        self.data: Any = None
        self.payload: Any = None
        self.fail_msg: str | None
        if offline:
            self.fail_msg = "Node is marked offline"
        elif failed:
            self.fail_msg = self._EnsureMsg(data)
        else:
            self.data = data
            if not isinstance(data, (list, tuple)):
                self.fail_msg = ("RPC layer error: invalid result type"
                                 f" ({type(data).__name__})")
            elif len(data) != 2:
                self.fail_msg = ("RPC layer error: invalid result length"
                                 f" ({len(data)}), expected 2")
            elif not data[0]:
                self.fail_msg = self._EnsureMsg(data[1])
            else:
                self.fail_msg = None
                self.payload = data[1]

    def __repr__(self) -> str:
        return (f"RpcResult(call={self.call!r}, node={self.node!r},"
                f" offline={self.offline}, fail_msg={self.fail_msg!r},"
                f" payload={self.payload!r:.200})")

    @property
    def failed(self) -> bool:
        """Whether the call did not succeed (including offline nodes)."""
        return self.fail_msg is not None

    @staticmethod
    def _EnsureMsg(value: Any) -> str:
        return str(value) if value else "No error information"

    def Raise(self, msg: str | None, prereq: bool = False,
              ecode: str | None = None) -> None:
        """Raise OpExecError (or OpPrereqError) if the call failed.

        ``msg`` prefixes the failure message; without it a default one
        names the call and node.
        """
        if self.fail_msg is None:
            return
        if not msg:
            text = f"Call '{self.call}' to node '{self.node}' has failed: {self.fail_msg}"
        else:
            text = f"{msg}: {self.fail_msg}"
        errcls = errors.OpPrereqError if prereq else errors.OpExecError
        if ecode is not None:
            raise errcls(text, ecode)
        raise errcls(text)

    def Warn(self, msg: str, feedback_fn) -> None:
        """Report a failure through ``feedback_fn`` instead of raising."""
        if self.fail_msg is not None:
            feedback_fn(f"{msg}: {self.fail_msg}")


def RequestToResult(req: RpcRequest, load_json) -> RpcResult:
    """Turn a processed request into the caller's RpcResult."""
    if req.error is not None:
        logging.warning("RPC %s failed: %s", req.nicename, req.error)
        return RpcResult(data=req.error, failed=True, call=req.procedure,
                         node=req.node)
    if req.code != http.HTTP_OK:
        text = req.resp_body.decode("utf-8", "replace").strip()
        msg = f"HTTP error {req.code} from node daemon: {text}" if text else \
            f"HTTP error {req.code} from node daemon"
        logging.warning("RPC %s failed: %s", req.nicename, msg)
        return RpcResult(data=msg, failed=True, call=req.procedure, node=req.node)
    try:
        data = load_json(req.resp_body)
    except Exception as err:  # noqa: BLE001 - any decoding problem is a failure
        return RpcResult(data=f"Invalid answer from node daemon: {err}",
                         failed=True, call=req.procedure, node=req.node)
    return RpcResult(data=data, call=req.procedure, node=req.node)
