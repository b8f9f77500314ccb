"""The HTTPS server of ganeti-rapi.

Served by :class:`ganeti.http.server.ThreadedHttpServer`, as the node
daemon is: one event-loop thread does the TLS handshakes and reads every
request head and body, under one deadline per request
(``request_timeout``, from its first byte); only complete requests go to
the ``max_clients`` worker threads (Ganeti's ``--max-clients``), which
talk to the master. Idle, silent and slow clients therefore never hold a
worker. Up to ``max_connections`` connections stay open, at most
``max_connections_per_address`` from one client address; beyond that the
connection that waited longest for its client is closed for the new one.
A connection carries any number of requests (HTTP/1.1 keep-alive,
HTTP/1.0 with ``Connection: keep-alive``) until the client closes it,
asks to close it, or stays idle for ``idle_timeout`` seconds; an error
answered after the whole request was read keeps it open.

Every request goes: request line and headers (limited sizes; lines may
end in a bare LF) -> body (``Content-Length`` only, at most ``max_body``
bytes, refused with 413 before it is read) -> resource lookup (404; 400
for path traversal) -> method (405 with ``Allow``) -> authentication (401
with ``WWW-Authenticate``, 403) -> JSON body (415; 400, also when nested
deeper than ``MAX_BODY_DEPTH``) -> the resource, which talks to the
master over luxi with a pooled client. Every error answer has a JSON body
``{"code": N, "message": reason, "explain": text}``.
"""

from __future__ import annotations

import logging
import ssl
import tempfile
import time
import urllib.parse
from collections.abc import Callable
from typing import Any

from ganeti import constants, errors, http, serializer
from ganeti.http import server as http_server
from ganeti.rapi import auth, baserlib, resources

DEFAULT_MAX_CLIENTS = 20
DEFAULT_MAX_BODY = 4 * 1024 * 1024
#: Open connections, idle ones included, in all and per client address
DEFAULT_MAX_CONNECTIONS = 1024
DEFAULT_MAX_CONNECTIONS_PER_ADDRESS = 64
MAX_LINE = 8192
MAX_HEADERS = 100
MAX_HEAD = 64 * 1024
#: Nesting of JSON bodies: they become opcode parameters, which jobs,
#: luxi messages and query answers wrap in a few more levels, all read with
#: serializer.MAX_DEPTH
MAX_BODY_DEPTH = 32
HANDSHAKE_TIMEOUT = 10.0
IDLE_TIMEOUT = 60.0
REQUEST_TIMEOUT = 30.0
_SERVER_NAME = f"Ganeti {constants.RELEASE_VERSION}"


def FormatErrorBody(code: int, explain: str) -> bytes:
    """The JSON body of an error answer, as Ganeti's RAPI sends it."""
    return serializer.DumpJsonBytes({"code": code,
                                     "message": http.StatusReason(code),
                                     "explain": explain})


def _LoadCertChain(ctx: ssl.SSLContext, cert_file: str, key_file: str,
                   chain_file: str | None) -> None:
    """Load the certificate (and, from ``chain_file``, the intermediate
    certificates presented with it) and its key into ``ctx``.

    OpenSSL reads a chain only from the certificate file itself, so a
    separate chain file is appended to a private temporary copy of it; the
    certificate file's private key, if it holds one, is skipped there (only
    certificates are read from it) and read from ``key_file``.
    """
    if chain_file is None:
        ctx.load_cert_chain(cert_file, key_file)
        return
    with open(cert_file, "rb") as handle:
        cert_pem = handle.read()
    with open(chain_file, "rb") as handle:
        chain_pem = handle.read()
    if b"-----BEGIN CERTIFICATE-----" not in chain_pem:
        raise ssl.SSLError(f"No certificate found in the chain file {chain_file}")
    with tempfile.NamedTemporaryFile(prefix="rapi-chain-", suffix=".pem") as combined:
        combined.write(cert_pem.rstrip(b"\n") + b"\n" + chain_pem)
        combined.flush()
        ctx.load_cert_chain(combined.name, key_file)


def MakeSslContext(cert_file: str, key_file: str | None = None,
                   chain_file: str | None = None) -> ssl.SSLContext:
    """The server's TLS context (the RAPI certificate, its key and, with
    ``chain_file``, the intermediate certificates sent along)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    _LoadCertChain(ctx, cert_file, key_file or cert_file, chain_file)
    # Clients open a new connection per request without resuming sessions
    # (Ganeti's pycurl client): TLS 1.3 session tickets would be wasted work
    # (about a fifth of the server's handshake CPU). The key exchange is
    # OpenSSL's default, X25519 first; the certificate's key is ECDSA P-256
    # unless the user supplied another (see crypto_setup.GenerateRapiCert)
    ctx.num_tickets = 0
    return ctx


class _RapiHandler(http_server.HttpServerHandler):
    """Hands the requests read by the HTTP server to :class:`RapiServer`."""

    def __init__(self, rapi: RapiServer) -> None:
        self.rapi = rapi

    def HandleRequest(self, req: http_server.HttpServerRequest
                      ) -> http_server.HttpResponse:
        code, extra, payload, user = self.rapi.HandleRequest(
            req.method, req.path, req.headers, req.body)
        peer = req.peer_address
        logging.info("%s %s %s %s -> %d (%.1f ms)",
                     peer[0] if isinstance(peer, tuple) else "-", user or "-",
                     req.method, req.path[:200], code,
                     (time.monotonic() - req.received) * 1000)
        return http_server.HttpResponse(code=code, body=payload, headers=extra)

    def ErrorResponse(self, err: http.HttpException) -> http_server.HttpResponse:
        return http_server.HttpResponse(code=err.code,
                                        body=FormatErrorBody(err.code, err.message),
                                        headers=err.headers)


class RapiServer:
    """HTTPS (or, for tests, plain HTTP) RAPI server; see the module doc."""

    def __init__(self, address: str, port: int, ssl_ctx: ssl.SSLContext | None,
                 users: auth.UsersFile, require_auth: bool = False,
                 pool: baserlib.LuxiPool | None = None,
                 max_clients: int = DEFAULT_MAX_CLIENTS,
                 max_body: int = DEFAULT_MAX_BODY,
                 idle_timeout: float = IDLE_TIMEOUT,
                 request_timeout: float = REQUEST_TIMEOUT,
                 max_connections: int = DEFAULT_MAX_CONNECTIONS,
                 max_connections_per_address: int = DEFAULT_MAX_CONNECTIONS_PER_ADDRESS
                 ) -> None:
        self.address = address
        self.port = port
        self.ssl_ctx = ssl_ctx
        self.users = users
        self.require_auth = require_auth
        self.pool = pool or baserlib.LuxiPool(max_idle=max_clients)
        self.max_clients = max_clients
        self.max_body = max_body
        self.idle_timeout = idle_timeout
        opts = http_server.ServerOptions(
            server_name=_SERVER_NAME, request_timeout=request_timeout,
            handshake_timeout=min(HANDSHAKE_TIMEOUT, request_timeout),
            keepalive_timeout=idle_timeout, max_header_size=MAX_HEAD,
            max_header_line=MAX_LINE, max_header_count=MAX_HEADERS,
            max_body_size=max_body, require_client_cert=False,
            keep_alive_on_error=True)
        self.http = http_server.ThreadedHttpServer(
            _RapiHandler(self), ssl_ctx, opts, max_clients=max_clients,
            max_connections=max_connections,
            max_connections_per_address=max_connections_per_address)

    # --- lifecycle -------------------------------------------------------------------

    def Bind(self) -> tuple[str, int]:
        """Open the listening socket; returns the bound address and port."""
        return self.http.Bind(self.address, self.port)

    def Stop(self) -> None:
        """Make :meth:`Serve` return (safe from signal handlers and threads)."""
        self.http.RequestStop()

    def Serve(self, ready_fn: Callable[[], None] | None = None,
              stop_timeout: float = 10.0) -> None:
        """Serve until :meth:`Stop`; then close every connection.

        Requests still running get ``stop_timeout`` seconds to end (their
        connections are closed already) before the idle luxi clients are
        closed.
        """
        try:
            self.http.Serve(ready_fn, handle_signals=False)
        finally:
            if not self.http.Join(stop_timeout):
                logging.warning("Requests still running after %.0f s", stop_timeout)
            self.pool.CloseAll()

    # --- one request -----------------------------------------------------------------

    def HandleRequest(self, method: str, target: str, headers: dict[str, str],
                      body: bytes) -> tuple[int, dict[str, str], bytes, str | None]:
        """Answer a parsed request: (status, extra headers, body, user)."""
        user: str | None = None
        try:
            path, _, query = target.partition("?")
            if "#" in query:
                query = query.split("#", 1)[0]
            match = resources.Lookup(path)
            handler = match.handler
            allowed = handler.AllowedMethods()
            if method not in allowed:
                raise http.HttpMethodNotAllowed(
                    f"Method {method} is not supported for {match.pattern};"
                    f" allowed: {', '.join(allowed)}",
                    headers={http.HTTP_ALLOW: ", ".join(allowed)})
            user = auth.Authorize(self.users, headers.get("authorization"),
                                  handler.GetAccess(method), self.require_auth)
            try:
                queryargs = urllib.parse.parse_qs(query, keep_blank_values=True,
                                                  max_num_fields=1000,
                                                  errors="strict")
            except (ValueError, UnicodeDecodeError) as err:
                raise http.HttpBadRequest(f"Invalid query string: {err}") from None
            data = self._DecodeBody(headers, body)
            req = baserlib.RapiRequest(method, match.items, queryargs, data,
                                       has_body=bool(body.strip()), user=user)
            res = handler(req, self.pool)
            try:
                result = res.Handle(method)
            finally:
                res.Release()
            return http.HTTP_OK, {}, serializer.DumpJsonBytes(result), user
        except Exception as err:  # pylint: disable=broad-except
            mapped = baserlib.MapError(err)
            if mapped.code >= 500 and not isinstance(err, http.HttpException):
                if isinstance(err, errors.GenericError):
                    logging.error("Error answering %s %s: %s", method, target[:200], err)
                else:
                    logging.exception("Internal error answering %s %s", method,
                                      target[:200])
            return (mapped.code, mapped.headers,
                    FormatErrorBody(mapped.code, mapped.message), user)

    @staticmethod
    def _DecodeBody(headers: dict[str, str], body: bytes) -> Any:
        if not body.strip():
            return None
        ctype = headers.get("content-type")
        if ctype is not None and \
                ctype.split(";")[0].strip().lower() != http.HTTP_APP_JSON:
            raise baserlib.HttpUnsupportedMediaType(
                f"Request bodies must be JSON ({http.HTTP_APP_JSON}), not"
                f" {ctype!r}")
        try:
            return serializer.LoadJson(body, max_depth=MAX_BODY_DEPTH)
        except errors.ParseError as err:
            raise http.HttpBadRequest(f"Malformed JSON in the request body: {err}") \
                from None
