"""socat, the network leg of a transfer: its command lines and its notices.

socat runs with ``-d -d`` so that it reports, one line each on standard
error, where it listens (``N listening on AF=2 127.0.0.1:40123``), the
TCP connection, and the end of the TLS handshake (``N SSL connection
using ...``); errors are ``E`` lines. :class:`SocatMonitor` follows these.

Import: ``socat -u OPENSSL-LISTEN:0,bind=ADDR,... STDOUT`` (one
connection, then socat ends). Export: ``socat -u STDIN
OPENSSL:HOST:PORT,...``. Both: ``cert``/``key`` (our certificate),
``cafile`` (what the peer's certificate must be signed by), ``verify=1``
(socat then also requires the client's certificate), TLS 1.2 or newer;
the exporter checks the importer's certificate against ``commonname``
(socat otherwise compares it with the host address).
"""

from __future__ import annotations

import re
import threading

from ganeti.impexpd.children import DescribeExit
from ganeti.impexpd.options import FormatSocatHost

#: The program (from PATH, as Ganeti's /usr/bin/socat)
SOCAT = "socat"
#: Largest block socat moves at once
_BUFFER_SIZE = 128 * 1024

_LINE_RE = re.compile(r"^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d socat\[\d+\] ([DINWEF]) (.*)$")
_LISTEN_RE = re.compile(r"^listening on AF=\d+ (?:\[[0-9A-Fa-f:.]+\]|[0-9.]+):(\d+)$")
_TCP_CONNECTED_RE = re.compile(r"^(successfully connected from|accepting connection from)")
_TLS_DONE_RE = re.compile(r"^SSL connection using ")
_LOCAL_WRITE_RE = re.compile(r"^write\(1,")

#: (pattern in socat's error, what it means)
_HINTS = (
    ("certificate verify failed",
     "TLS handshake failed: the peer's certificate is not signed by the expected CA"),
    ("does not match",
     "TLS handshake failed: the peer's certificate is for another name"),
    ("unknown ca", "TLS handshake failed: the peer does not accept our certificate"),
    ("bad certificate", "TLS handshake failed: the peer does not accept our certificate"),
    ("peer did not return a certificate",
     "TLS handshake failed: the peer presented no certificate"),
    ("Connection refused", "connection refused"),
    ("Connection reset by peer",
     "the peer closed the connection (see the status of the other side)"),
    ("Broken pipe", "the peer closed the connection (see the status of the other side)"),
    ("unexpected eof", "the connection ended unexpectedly"),
)


def _Common(cert: str, key: str | None, ca: str, ipv6: bool) -> list[str]:
    options = [f"cert={cert}", f"cafile={ca}", "verify=1", "openssl-min-proto-version=TLS1.2"]
    if key:
        options.append(f"key={key}")
    if ipv6:
        options.append("pf=ip6")
    return options


def ListenCommand(bind: str, cert: str, key: str | None, ca: str,
                  ipv6: bool) -> list[str]:
    """socat for an import: one TLS connection on an ephemeral port of
    ``bind``, received data to standard output."""
    address = ",".join(["OPENSSL-LISTEN:0", f"bind={FormatSocatHost(bind)}", "backlog=1",
                        *_Common(cert, key, ca, ipv6)])
    return [SOCAT, "-d", "-d", "-u", "-b", str(_BUFFER_SIZE), address, "STDOUT"]


def ConnectCommand(host: str, port: int, cert: str, key: str | None, ca: str,
                   ipv6: bool, common_name: str, connect_timeout: float) -> list[str]:
    """socat for an export: connect to the importer, send standard input."""
    address = ",".join([f"OPENSSL:{FormatSocatHost(host)}:{port}",
                        f"commonname={common_name}",
                        f"connect-timeout={max(1, int(connect_timeout))}",
                        *_Common(cert, key, ca, ipv6)])
    return [SOCAT, "-d", "-d", "-u", "-b", str(_BUFFER_SIZE), "STDIN", address]


class SocatMonitor:
    """What socat's notices told so far (fed from the stderr thread)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.listen_port: int | None = None
        self.tcp_connected = False
        self.connected = False
        self.errors: list[str] = []

    def Feed(self, line: str) -> str:
        """Take one line of socat's standard error; return it as it goes to
        the status (without socat's date and pid)."""
        match = _LINE_RE.match(line)
        if not match:
            return f"socat: {line}"
        level, message = match.groups()
        with self._lock:
            listen = _LISTEN_RE.match(message)
            if listen and self.listen_port is None:
                self.listen_port = int(listen.group(1))
            elif _TCP_CONNECTED_RE.match(message):
                self.tcp_connected = True
            elif _TLS_DONE_RE.match(message):
                self.connected = True
            elif level in "EF":
                self.errors.append(message)
        return f"socat: {level} {message}"

    def LastError(self) -> str | None:
        """socat's last error message, if any."""
        with self._lock:
            return self.errors[-1] if self.errors else None

    def LocalPipeBroken(self) -> bool:
        """Whether socat failed writing to its standard output (a broken
        pipe there means our side stopped reading, not the network)."""
        last = self.LastError() or ""
        return bool(_LOCAL_WRITE_RE.match(last)) and "broken pipe" in last.lower()

    def Explain(self, returncode: int | None) -> str:
        """Why socat failed, for the status's error message."""
        last = self.LastError()
        code = DescribeExit(returncode) if returncode is not None else "still running"
        if last is None:
            return f"socat failed ({code})"
        for pattern, hint in _HINTS:
            if pattern.lower() in last.lower():
                return f"{hint} (socat: {last})"
        return f"socat failed ({code}): {last}"
