"""HTTP over TLS for the node daemon (and later RAPI).

Shared pieces of :mod:`ganeti.http.server` and :mod:`ganeti.http.client`:
status codes, the exceptions a request handler raises to answer with an
error status, and the TLS contexts. TLS comes from the standard ``ssl``
module; both ends trust exactly the cluster certificate (``server.pem``),
which is self-signed and also signs the nodes' client certificates.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from http import HTTPStatus

HTTP_GANETI_VERSION = "Ganeti"

HTTP_OK = 200
HTTP_BAD_REQUEST = 400
HTTP_UNAUTHORIZED = 401
HTTP_FORBIDDEN = 403
HTTP_NOT_FOUND = 404
HTTP_METHOD_NOT_ALLOWED = 405
HTTP_REQUEST_TIMEOUT = 408
HTTP_LENGTH_REQUIRED = 411
HTTP_REQUEST_ENTITY_TOO_LARGE = 413
HTTP_REQUEST_HEADER_FIELDS_TOO_LARGE = 431
HTTP_INTERNAL_SERVER_ERROR = 500
HTTP_NOT_IMPLEMENTED = 501
HTTP_SERVICE_UNAVAILABLE = 503
HTTP_VERSION_NOT_SUPPORTED = 505

HTTP_GET = "GET"
HTTP_HEAD = "HEAD"
HTTP_POST = "POST"
HTTP_PUT = "PUT"
HTTP_DELETE = "DELETE"

HTTP_ALLOW = "Allow"
HTTP_CONNECTION = "Connection"
HTTP_CONTENT_LENGTH = "Content-Length"
HTTP_CONTENT_TYPE = "Content-Type"
HTTP_SERVER = "Server"
HTTP_TRANSFER_ENCODING = "Transfer-Encoding"

HTTP_APP_JSON = "application/json"
HTTP_TEXT_PLAIN = "text/plain; charset=utf-8"


def StatusReason(code: int) -> str:
    """Return the standard reason phrase for a status code."""
    try:
        return HTTPStatus(code).phrase
    except ValueError:
        return "Unknown"


class HttpException(Exception):
    """An error answered to the client with an HTTP status.

    ``message`` is sent as the (plain text) body; ``headers`` are added to
    the response.
    """
    code = HTTP_INTERNAL_SERVER_ERROR

    def __init__(self, message: str | None = None,
                 headers: dict[str, str] | None = None):
        super().__init__(message)
        self.message = message or StatusReason(self.code)
        self.headers = dict(headers or {})


class HttpBadRequest(HttpException):
    """400: the request is malformed."""
    code = HTTP_BAD_REQUEST


class HttpUnauthorized(HttpException):
    """401: authentication is needed."""
    code = HTTP_UNAUTHORIZED


class HttpForbidden(HttpException):
    """403: the client may not make this request."""
    code = HTTP_FORBIDDEN


class HttpNotFound(HttpException):
    """404: no such resource (or RPC call)."""
    code = HTTP_NOT_FOUND


class HttpMethodNotAllowed(HttpException):
    """405: the method is not allowed; headers should carry ``Allow``."""
    code = HTTP_METHOD_NOT_ALLOWED


class HttpRequestTimeout(HttpException):
    """408: the client did not send its request in time."""
    code = HTTP_REQUEST_TIMEOUT


class HttpLengthRequired(HttpException):
    """411: a body was sent without Content-Length."""
    code = HTTP_LENGTH_REQUIRED


class HttpRequestEntityTooLarge(HttpException):
    """413: the body is larger than the server accepts."""
    code = HTTP_REQUEST_ENTITY_TOO_LARGE


class HttpHeadersTooLarge(HttpException):
    """431: the request line and headers are too long."""
    code = HTTP_REQUEST_HEADER_FIELDS_TOO_LARGE


class HttpInternalServerError(HttpException):
    """500: the server failed."""
    code = HTTP_INTERNAL_SERVER_ERROR


class HttpNotImplemented(HttpException):
    """501: the server does not support this (e.g. chunked bodies)."""
    code = HTTP_NOT_IMPLEMENTED


class HttpServiceUnavailable(HttpException):
    """503: the server cannot answer now."""
    code = HTTP_SERVICE_UNAVAILABLE


class HttpVersionNotSupported(HttpException):
    """505: not HTTP/1.0 or HTTP/1.1."""
    code = HTTP_VERSION_NOT_SUPPORTED


@dataclass(frozen=True)
class HttpSslParams:
    """Where a server finds its key and certificate, and whom it trusts.

    ``ca_path`` defaults to the certificate itself: the cluster certificate
    is its own authority and signs the client certificates.
    """
    ssl_key_path: str
    ssl_cert_path: str
    ca_path: str | None = None

    def GetCaPath(self) -> str:
        """Return the file holding the trusted certificate(s)."""
        return self.ca_path or self.ssl_cert_path


def MakeServerSslContext(params: HttpSslParams,
                         verify_peer: bool = True) -> ssl.SSLContext:
    """Build the TLS context of a server.

    With ``verify_peer`` the server asks for a client certificate and the
    handshake fails for one not signed by the trusted certificate. A client
    that sends none still completes the handshake (``CERT_OPTIONAL``) so the
    server can answer it with a clear 403 instead of a bare TLS alert; the
    server must check :func:`HasPeerCertificate` before serving.
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(params.ssl_cert_path, params.ssl_key_path)
    if verify_peer:
        ctx.verify_mode = ssl.CERT_OPTIONAL
        ctx.load_verify_locations(cafile=params.GetCaPath())
    else:
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def MakeClientSslContext(ca_path: str, cert_path: str | None = None,
                         key_path: str | None = None) -> ssl.SSLContext:
    """Build the TLS context of a client.

    The server must present a certificate signed by (or equal to) the one in
    ``ca_path``; host names are not checked, since nodes are contacted by IP
    address and all share the cluster certificate. ``cert_path`` is the
    client's own certificate (and key, when ``key_path`` is not given).
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(cafile=ca_path)
    if cert_path:
        ctx.load_cert_chain(cert_path, key_path or cert_path)
    return ctx


def HasPeerCertificate(sock: ssl.SSLSocket) -> bool:
    """Tell whether the peer presented a (verified) certificate."""
    return bool(sock.getpeercert(binary_form=True))
