"""The HTTPS server of ganeti-rapi.

A fixed pool of ``max_clients`` worker threads, each accepting one
connection and serving it to its end: at most ``max_clients`` connections
are served at once, and those beyond the limit wait in the listen backlog
until one closes (Ganeti's ``--max-clients``). No thread is started per
connection, so the thread count never grows with the load. A connection
carries any number of requests (HTTP/1.1 keep-alive, HTTP/1.0 with
``Connection: keep-alive``) until the client closes it, asks to close
it, or stays idle for ``idle_timeout`` seconds.

Every request goes: request line and headers (limited sizes) -> body
(``Content-Length`` only, at most ``max_body`` bytes, refused with 413
before it is read) -> resource lookup (404; 400 for path traversal) ->
method (405 with ``Allow``) -> authentication (401 with
``WWW-Authenticate``, 403) -> JSON body (415, 400) -> the resource, which
talks to the master over luxi with a pooled client. Every error answer has
a JSON body ``{"code": N, "message": reason, "explain": text}``.
"""

from __future__ import annotations

import logging
import os
import select
import socket
import ssl
import threading
import time
import urllib.parse
from collections.abc import Callable
from typing import Any, BinaryIO, cast

from ganeti import constants, errors, http, serializer
from ganeti.rapi import auth, baserlib, resources

DEFAULT_MAX_CLIENTS = 20
DEFAULT_MAX_BODY = 4 * 1024 * 1024
MAX_LINE = 8192
MAX_HEADERS = 100
HANDSHAKE_TIMEOUT = 10.0
IDLE_TIMEOUT = 60.0
REQUEST_TIMEOUT = 30.0
_SERVER_NAME = f"Ganeti {constants.RELEASE_VERSION}"
_TCP_QUICKACK: int | None = getattr(socket, "TCP_QUICKACK", None)


class _CloseConnection(Exception):
    """The connection is done (client closed, timed out or broke the protocol)."""


def FormatErrorBody(code: int, explain: str) -> bytes:
    """The JSON body of an error answer, as Ganeti's RAPI sends it."""
    return serializer.DumpJsonBytes({"code": code,
                                     "message": http.StatusReason(code),
                                     "explain": explain})


def MakeSslContext(cert_file: str, key_file: str | None = None) -> ssl.SSLContext:
    """The server's TLS context (the RAPI certificate and its key)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert_file, key_file or cert_file)
    # Clients open a new connection per request without resuming sessions
    # (Ganeti's pycurl client): TLS 1.3 session tickets would be wasted work
    # (about a fifth of the server's handshake CPU). The key exchange is
    # OpenSSL's default, X25519 first; the certificate's key is ECDSA P-256
    # unless the user supplied another (see crypto_setup.GenerateRapiCert)
    ctx.num_tickets = 0
    return ctx


class RapiServer:
    """HTTPS (or, for tests, plain HTTP) RAPI server; see the module doc."""

    def __init__(self, address: str, port: int, ssl_ctx: ssl.SSLContext | None,
                 users: auth.UsersFile, require_auth: bool = False,
                 pool: baserlib.LuxiPool | None = None,
                 max_clients: int = DEFAULT_MAX_CLIENTS,
                 max_body: int = DEFAULT_MAX_BODY,
                 idle_timeout: float = IDLE_TIMEOUT) -> None:
        self.address = address
        self.port = port
        self.ssl_ctx = ssl_ctx
        self.users = users
        self.require_auth = require_auth
        self.pool = pool or baserlib.LuxiPool(max_idle=max_clients)
        self.max_clients = max_clients
        self.max_body = max_body
        self.idle_timeout = idle_timeout
        self.sock: socket.socket | None = None
        self._stop = threading.Event()
        self._wake_r, self._wake_w = os.pipe()
        self._conns: dict[int, socket.socket] = {}
        self._conns_lock = threading.Lock()

    # --- lifecycle -------------------------------------------------------------------

    def Bind(self) -> tuple[str, int]:
        """Open the listening socket; returns the bound address and port."""
        family = socket.AF_INET6 if ":" in self.address else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.address, self.port))
            sock.listen(128)
        except OSError:
            sock.close()
            raise
        self.sock = sock
        addr = sock.getsockname()
        return addr[0], addr[1]

    def Stop(self) -> None:
        """Make :meth:`Serve` return (safe from signal handlers and threads)."""
        self._stop.set()
        try:
            os.write(self._wake_w, b"x")
        except OSError:
            pass

    def Serve(self, ready_fn: Callable[[], None] | None = None,
              stop_timeout: float = 10.0) -> None:
        """Serve until :meth:`Stop`; then close every connection.

        ``max_clients`` worker threads each accept a connection and serve
        it to its end; the kernel hands a new connection to one waiting
        worker, so there is no thread start or hand-over per connection.
        """
        assert self.sock is not None
        workers = [threading.Thread(target=self._Worker, name=f"rapi-{idx}",
                                    daemon=True)
                   for idx in range(self.max_clients)]
        for worker in workers:
            worker.start()
        if ready_fn:
            ready_fn()
        try:
            while not self._stop.is_set():
                # Short waits keep signal handlers of the main thread running
                select.select([self._wake_r], [], [], 1.0)
        finally:
            self._Shutdown(workers, stop_timeout)

    def _Worker(self) -> None:
        sock = self.sock
        assert sock is not None
        while not self._stop.is_set():
            try:
                conn, _ = sock.accept()
            except (InterruptedError, ConnectionAbortedError):
                continue
            except OSError as err:
                if self._stop.is_set():
                    return
                # E.g. out of file descriptors: wait a little, keep serving
                logging.error("Cannot accept a connection: %s", err)
                time.sleep(0.1)
                continue
            if self._stop.is_set():
                conn.close()
                return
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._Connection(conn)

    def _Shutdown(self, workers: list[threading.Thread], timeout: float) -> None:
        if self.sock is not None:
            # Wakes the workers blocked in accept() (Linux)
            try:
                self.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        with self._conns_lock:
            conns = list(self._conns.values())
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        deadline = time.monotonic() + timeout
        for worker in workers:
            worker.join(max(0.0, deadline - time.monotonic()))
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        self.pool.CloseAll()
        for fd in (self._wake_r, self._wake_w):
            try:
                os.close(fd)
            except OSError:
                pass

    # --- one connection -----------------------------------------------------------------

    def _Connection(self, raw: socket.socket) -> None:
        conn: socket.socket = raw
        try:
            peer = raw.getpeername()
        except OSError:
            peer = None
        with self._conns_lock:
            self._conns[id(raw)] = raw
        try:
            raw.settimeout(HANDSHAKE_TIMEOUT)
            if self.ssl_ctx is not None:
                # The TLS socket takes over the descriptor: shut that one
                # down to stop this thread
                conn = self.ssl_ctx.wrap_socket(raw, server_side=True)
                with self._conns_lock:
                    self._conns[id(raw)] = conn
                if _TCP_QUICKACK is not None:
                    # Without session tickets the server sends nothing after
                    # the client's Finished and would delay its ACK; a client
                    # without TCP_NODELAY then holds its request back for
                    # the delayed-ACK time (40 ms per request on Linux)
                    conn.setsockopt(socket.IPPROTO_TCP, _TCP_QUICKACK, 1)
            rfile = cast(BinaryIO, conn.makefile("rb", buffering=65536))
            try:
                while not self._stop.is_set():
                    conn.settimeout(self.idle_timeout)
                    if not self._OneRequest(conn, rfile, peer):
                        break
            finally:
                rfile.close()
        except (_CloseConnection, ssl.SSLError, OSError) as err:
            logging.debug("Connection from %s ends: %s", peer, err)
        except Exception:  # pylint: disable=broad-except
            logging.exception("Unexpected error serving %s", peer)
        finally:
            with self._conns_lock:
                self._conns.pop(id(raw), None)
            try:
                if conn is not raw:
                    conn.close()
            finally:
                raw.close()

    @staticmethod
    def _ReadLine(rfile: BinaryIO) -> bytes:
        line = rfile.readline(MAX_LINE + 1)
        if not line:
            raise _CloseConnection("client closed the connection")
        if len(line) > MAX_LINE:
            raise http.HttpHeadersTooLarge("Request line or header too long")
        return line

    def _OneRequest(self, conn: socket.socket, rfile: BinaryIO, peer: Any) -> bool:
        """Serve one request; False when the connection must close."""
        try:
            # Skip stray empty lines between requests (RFC 9112, 2.2)
            line = self._ReadLine(rfile)
            while line in (b"\r\n", b"\n"):
                line = self._ReadLine(rfile)
            conn.settimeout(REQUEST_TIMEOUT)
            start = time.monotonic()
            method, target, version, headers = self._ParseHead(line, rfile)
        except http.HttpException as err:
            self._Send(conn, err.code, FormatErrorBody(err.code, err.message),
                       err.headers, keep_alive=False)
            return False
        keep_alive = self._KeepAlive(version, headers)
        try:
            body = self._ReadBody(conn, rfile, headers, version)
        except http.HttpException as err:
            self._Send(conn, err.code, FormatErrorBody(err.code, err.message),
                       err.headers, keep_alive=False)
            return False
        code, extra, payload, user = self.HandleRequest(method, target, headers, body)
        self._Send(conn, code, payload, extra, keep_alive)
        logging.info("%s %s %s %s -> %d (%.1f ms)", peer[0] if peer else "-",
                     user or "-", method, target[:200], code,
                     (time.monotonic() - start) * 1000)
        return keep_alive

    @staticmethod
    def _ParseHead(line: bytes, rfile: BinaryIO) -> tuple[str, str, str, dict[str, str]]:
        try:
            text = line.decode("latin-1").rstrip("\r\n")
            method, target, version = text.split(" ")
        except ValueError:
            raise http.HttpBadRequest(f"Malformed request line {line[:100]!r}") from None
        if version not in ("HTTP/1.0", "HTTP/1.1"):
            raise http.HttpVersionNotSupported(f"Unsupported HTTP version {version!r}")
        headers: dict[str, str] = {}
        for _ in range(MAX_HEADERS + 1):
            hline = rfile.readline(MAX_LINE + 1)
            if not hline:
                raise _CloseConnection("client closed the connection mid-request")
            if len(hline) > MAX_LINE:
                raise http.HttpHeadersTooLarge("Header line too long")
            if hline in (b"\r\n", b"\n"):
                return method, target, version, headers
            name, sep, value = hline.decode("latin-1").partition(":")
            if not sep or not name.strip() or name != name.strip():
                raise http.HttpBadRequest(f"Malformed header line {hline[:100]!r}")
            key = name.lower()
            value = value.strip()
            if key in headers:
                headers[key] = f"{headers[key]}, {value}"
            else:
                headers[key] = value
        raise http.HttpHeadersTooLarge(f"More than {MAX_HEADERS} header lines")

    @staticmethod
    def _KeepAlive(version: str, headers: dict[str, str]) -> bool:
        tokens = {t.strip().lower() for t in headers.get("connection", "").split(",")}
        if version == "HTTP/1.1":
            return "close" not in tokens
        return "keep-alive" in tokens

    def _ReadBody(self, conn: socket.socket, rfile: BinaryIO, headers: dict[str, str],
                  version: str) -> bytes:
        if "transfer-encoding" in headers:
            raise http.HttpLengthRequired("Chunked bodies are not supported;"
                                          " send Content-Length")
        raw_len = headers.get("content-length")
        if raw_len is None:
            return b""
        if not raw_len.isdigit():
            raise http.HttpBadRequest(f"Invalid Content-Length {raw_len!r}")
        length = int(raw_len)
        if length > self.max_body:
            raise http.HttpRequestEntityTooLarge(
                f"Request body of {length} bytes is larger than the limit of"
                f" {self.max_body} bytes")
        if length and version == "HTTP/1.1" and \
                headers.get("expect", "").lower() == "100-continue":
            conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        body = rfile.read(length) if length else b""
        if len(body) != length:
            raise _CloseConnection("client closed the connection mid-body")
        return body

    def _Send(self, conn: socket.socket, code: int, payload: bytes,
              extra: dict[str, str], keep_alive: bool) -> None:
        lines = [f"HTTP/1.1 {code} {http.StatusReason(code)}",
                 f"{http.HTTP_SERVER}: {_SERVER_NAME}",
                 f"{http.HTTP_CONTENT_TYPE}: {http.HTTP_APP_JSON}",
                 f"{http.HTTP_CONTENT_LENGTH}: {len(payload)}",
                 f"{http.HTTP_CONNECTION}: {'keep-alive' if keep_alive else 'close'}"]
        lines.extend(f"{name}: {value}" for name, value in extra.items())
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        conn.sendall(head + payload)

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
            return serializer.LoadJson(body)
        except errors.ParseError as err:
            raise http.HttpBadRequest(f"Malformed JSON in the request body: {err}") \
                from None
