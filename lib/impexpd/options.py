"""The command line of ``ganeti-impexpd`` and its checks.

Everything that ends up in socat's address specification (addresses and
file paths) is checked against a strict character set here, since socat
gives ``:``, ``,`` and ``!`` meanings of their own; a compression tool must
be a plain program name from the allowed list.
"""

from __future__ import annotations

import argparse
import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass

from ganeti import constants, ht

#: Characters allowed in paths given to socat (no option separators)
_SOCAT_PATH_RE = re.compile(r"^/[-A-Za-z0-9_./+@]*$")
#: Host names the exporter may connect to (IP addresses are checked apart)
_HOST_NAME_RE = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9.]*[A-Za-z0-9])?$")

#: Tool name -> (compress command, decompress command); any other allowed
#: name X runs ``X -c`` and ``X -d -c``
_KNOWN_TOOLS: dict[str, tuple[list[str], list[str]]] = {
    constants.IEC_GZIP: (["gzip", "-c"], ["gzip", "-d", "-c"]),
    constants.IEC_GZIP_FAST: (["gzip", "-1", "-c"], ["gzip", "-d", "-c"]),
    constants.IEC_GZIP_SLOW: (["gzip", "-9", "-c"], ["gzip", "-d", "-c"]),
}


@dataclass(frozen=True)
class DataEnd:
    """Where the data comes from (export) or goes to (import).

    ``kind`` is "file", "device" or "cmd"; ``value`` the path or the shell
    command.
    """
    kind: str
    value: str


def CompressionCommands(tool: str) -> tuple[list[str], list[str]] | None:
    """The (compress, decompress) command lines of ``tool``; None for "none"."""
    if tool == constants.IEC_NONE:
        return None
    known = _KNOWN_TOOLS.get(tool)
    if known is not None:
        return list(known[0]), list(known[1])
    return [tool, "-c"], [tool, "-d", "-c"]


def CheckCompression(tool: str, allowed: Sequence[str]) -> str | None:
    """Why ``tool`` cannot be used, or None if it can."""
    if tool == constants.IEC_NONE:
        return None
    if not ht.TProgramName(tool):
        return f"invalid compression tool {tool!r}: expected a plain program name"
    if tool not in allowed:
        return (f"compression tool {tool!r} is not allowed on this node (allowed:"
                f" {', '.join(allowed) or 'none'})")
    return None


def FormatSocatHost(address: str) -> str:
    """An address as socat wants it: IPv6 literals in brackets."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address
    return f"[{parsed}]" if parsed.version == 6 else str(parsed)


def _CheckHost(value: str, what: str) -> str | None:
    try:
        ipaddress.ip_address(value)
        return None
    except ValueError:
        pass
    if _HOST_NAME_RE.match(value) and len(value) <= 255:
        return None
    return f"invalid {what} {value!r}: expected an IP address or a host name"


def _CheckPath(value: str | None, what: str) -> str | None:
    if value is None:
        return None
    if not _SOCAT_PATH_RE.match(value) or "/../" in value or value.endswith("/.."):
        return (f"invalid {what} {value!r}: expected a normalised absolute path of"
                " letters, digits and -_./+@")
    return None


def _Parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=constants.IMPEXPD,
        description="Run one import or export of a disk transfer (started by the"
        " node daemon; see doc/impexpd.rst)")
    parser.add_argument("status_file", help="Where to write the status (JSON)")
    parser.add_argument("mode", choices=sorted(constants.IEM_ALL),
                        help="Receive data (import) or send it (export)")
    parser.add_argument("--cert", required=True,
                        help="Our certificate (PEM; may hold the key too)")
    parser.add_argument("--key", help="Our private key (default: in --cert)")
    parser.add_argument("--ca", required=True,
                        help="CA certificate(s) the peer's certificate must be signed by")
    parser.add_argument("--host", help="Export: the importer's address")
    parser.add_argument("--port", type=int, help="Export: the importer's port")
    parser.add_argument("--bind", help="Import: the address to listen on (port: any"
                        " free one)")
    parser.add_argument("--ipv6", action="store_true", help="Use IPv6")
    parser.add_argument("--compress", default=constants.IEC_NONE,
                        help="Compression tool, or 'none' (default)")
    parser.add_argument("--compression-tools",
                        default=",".join(constants.DEFAULT_COMPRESSION_TOOLS),
                        help="Comma-separated tools --compress may name (default:"
                        " %(default)s)")
    parser.add_argument("--magic", default="",
                        help="String the exporter sends and the importer expects")
    parser.add_argument("--expected-size", type=int, metavar="MIB",
                        help="Size of the data in MiB, for percent and ETA")
    parser.add_argument("--connect-timeout", type=int,
                        default=constants.IE_CONNECT_TIMEOUT, metavar="SECONDS",
                        help="Import: seconds to wait for the connection; export:"
                        " seconds to keep trying to connect (default: %(default)s)")
    parser.add_argument("--connect-retries", type=int, metavar="N",
                        help="Export: how often a failed connection is retried (default:"
                        " as often as the connect timeout allows, once a second)")
    data = parser.add_mutually_exclusive_group(required=True)
    data.add_argument("--data-file", metavar="PATH",
                      help="A plain file: read (export), created or replaced (import)")
    data.add_argument("--data-device", metavar="PATH",
                      help="A block device or disk image: read (export), written in"
                      " place (import: must exist, never truncated)")
    data.add_argument("--data-cmd", metavar="COMMAND",
                      help="A shell command: its output is sent (export), or it"
                      " reads the received data on its input (import)")
    parser.add_argument("--pid-file", help="Write our pid there and keep it locked")
    parser.add_argument("-d", "--debug", action="store_true", help="Log debug messages")
    return parser


def _Problems(opts: argparse.Namespace) -> list[str]:
    problems = []
    allowed = [name for name in opts.compression_tools.split(",") if name]
    problems.append(CheckCompression(opts.compress, allowed))
    for name in allowed:
        if not ht.TProgramName(name):
            problems.append(f"invalid name {name!r} in --compression-tools")
    if opts.magic and not re.match(constants.IE_MAGIC_RE, opts.magic):
        problems.append(f"invalid magic {opts.magic!r}: expected 5 to 100 letters,"
                        " digits or -_.")
    for what, value in (("--cert", opts.cert), ("--key", opts.key), ("--ca", opts.ca)):
        problems.append(_CheckPath(value, what))
    for what, value in (("--data-file", opts.data_file),
                        ("--data-device", opts.data_device)):
        if value is not None and not value.startswith("/"):
            problems.append(f"{what} must be an absolute path, got {value!r}")
    if opts.connect_timeout <= 0:
        problems.append("--connect-timeout must be positive")
    if opts.connect_retries is not None and opts.connect_retries < 0:
        problems.append("--connect-retries must not be negative")
    if opts.expected_size is not None and opts.expected_size < 0:
        problems.append("--expected-size must not be negative")
    if opts.mode == constants.IEM_IMPORT:
        if not opts.bind:
            problems.append("an import needs --bind (the address to listen on)")
        else:
            problems.append(_CheckHost(opts.bind, "--bind address"))
        if opts.host is not None or opts.port is not None:
            problems.append("--host and --port are for exports")
    else:
        if not opts.host or opts.port is None:
            problems.append("an export needs --host and --port (the importer's)")
        else:
            problems.append(_CheckHost(opts.host, "--host"))
            if not 0 < opts.port < 65536:
                problems.append(f"invalid --port {opts.port}")
        if opts.bind is not None:
            problems.append("--bind is for imports")
    return [problem for problem in problems if problem]


def ParseOptions(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse and check the command line (exit code 2 on a problem).

    Adds ``data`` (a :class:`DataEnd`) and ``allowed_tools`` (a list).
    """
    parser = _Parser()
    opts = parser.parse_args(argv)
    problems = _Problems(opts)
    if problems:
        parser.error("; ".join(problems))
    if opts.data_file is not None:
        opts.data = DataEnd("file", opts.data_file)
    elif opts.data_device is not None:
        opts.data = DataEnd("device", opts.data_device)
    else:
        opts.data = DataEnd("cmd", opts.data_cmd)
    opts.allowed_tools = [name for name in opts.compression_tools.split(",") if name]
    return opts
