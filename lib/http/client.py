"""A simple HTTPS client for single requests.

For calling one daemon once (tools, tests, the RAPI client later). Calls to
many nodes at once go through :mod:`ganeti.rpc.client`, which drives them in
parallel with pycurl.
"""

from __future__ import annotations

import http.client
import ssl
from dataclasses import dataclass, field

from ganeti import http as ghttp


@dataclass
class HttpClientResponse:
    """The status, headers (lower-cased names) and body of an answer."""
    code: int
    reason: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


class HttpClientError(Exception):
    """The request could not be made or got no answer (not an HTTP status)."""


def HttpRequest(host: str, port: int, method: str, path: str,
                body: bytes | str = b"", headers: dict[str, str] | None = None,
                ssl_context: ssl.SSLContext | None = None,
                timeout: float = 60.0) -> HttpClientResponse:
    """Send one request and return the answer, whatever its status.

    ``ssl_context`` makes it HTTPS (see :func:`ganeti.http.MakeClientSslContext`).
    Raises HttpClientError on connection, TLS or protocol failures.
    """
    if isinstance(body, str):
        body = body.encode("utf-8")
    conn: http.client.HTTPConnection
    if ssl_context is not None:
        conn = http.client.HTTPSConnection(host, port, timeout=timeout,
                                           context=ssl_context)
    else:
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
    all_headers = {ghttp.HTTP_CONTENT_TYPE: ghttp.HTTP_APP_JSON}
    all_headers.update(headers or {})
    try:
        conn.request(method, path, body=body if (body or method in
                                                 (ghttp.HTTP_PUT, ghttp.HTTP_POST))
                     else None, headers=all_headers)
        resp = conn.getresponse()
        data = resp.read()
        return HttpClientResponse(
            code=resp.status, reason=resp.reason,
            headers={k.lower(): v for k, v in resp.getheaders()}, body=data)
    except (TimeoutError, OSError, http.client.HTTPException) as err:
        raise HttpClientError(f"{method} {path} to {host}:{port} failed: {err}") from err
    finally:
        conn.close()
