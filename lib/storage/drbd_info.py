"""Parsers of what DRBD tells about its devices.

Three sources, each parsed into small dataclasses:

- ``/proc/drbd`` of DRBD 8.x (:func:`ParseProcDrbd`): the version line and
  one entry per minor (connection state, roles, disk states, resync
  progress). With DRBD 9 the file holds only the version; the per-device
  state then comes from ``drbdsetup status --verbose --statistics``
  (:func:`ParseDrbd9Status`, turned into the same :class:`MinorStatus`
  records by :func:`MinorsFromDrbd9`).
- ``drbdsetup show MINOR`` of DRBD 8.4 (:func:`ParseShow`): the
  configuration of one minor, to tell whether its local disk and its
  network are set up and with which values.

Every parser is strict about the lines it does not understand: a bad line
raises :class:`errors.BlockDeviceError` naming the source, the line number
and the line, rather than being skipped and giving a wrong picture.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ganeti import errors, pathutils, utils

#: Connection states in which a resync runs (DRBD 8.x names)
RESYNC_STATES = frozenset(["SyncSource", "SyncTarget", "PausedSyncS", "PausedSyncT"])

UNCONFIGURED = "Unconfigured"
CS_CONNECTED = "Connected"
CS_STANDALONE = "StandAlone"
CS_WFCONNECTION = "WFConnection"
ROLE_PRIMARY = "Primary"
ROLE_SECONDARY = "Secondary"
DS_UPTODATE = "UpToDate"
DS_DISKLESS = "Diskless"


def _Error(source: str, lineno: int | None, line: str | None, reason: str
           ) -> errors.BlockDeviceError:
    where = f"{source}, line {lineno}" if lineno is not None else source
    if line is None:
        return errors.BlockDeviceError(f"Cannot parse {where}: {reason}")
    return errors.BlockDeviceError(f"Cannot parse {where} ({line.strip()!r}): {reason}")


# --- versions ----------------------------------------------------------------------------

_VERSION_RE = re.compile(
    r"^version:\s*(\d+)\.(\d+)\.(\d+)(\S*)\s+\(api:(\d+)/proto:(\d+)(?:-(\d+))?\)\s*$")


@dataclass(frozen=True)
class DrbdVersion:
    """The version of the DRBD kernel module, from its version line."""

    major: int
    minor: int
    point: int
    #: What follows the three numbers ("" or e.g. "-1", ".2")
    extra: str = ""
    api: int = 0
    proto_min: int = 0
    proto_max: int = 0
    #: The srcversion or GIT-hash line's value, if present
    build: str | None = None

    @property
    def is_drbd9(self) -> bool:
        """Whether this is DRBD 9 or later (status from drbdsetup status)."""
        return self.major >= 9

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.point}{self.extra}"


def ParseVersionLine(line: str, source: str = "DRBD version") -> DrbdVersion:
    """Parse "version: 8.4.11 (api:1/proto:86-101)"."""
    match = _VERSION_RE.match(line.strip())
    if match is None:
        raise _Error(source, None, line, "not a DRBD version line")
    major, minor, point, extra, api, pmin, pmax = match.groups()
    return DrbdVersion(int(major), int(minor), int(point), extra, int(api), int(pmin),
                       int(pmax if pmax is not None else pmin))


# --- per-minor status ----------------------------------------------------------------------

@dataclass
class MinorStatus:
    """The state of one DRBD minor, in DRBD 8.x terms.

    ``cstatus`` is the connection state ("Connected", "StandAlone",
    "WFConnection", "SyncSource", ... or "Unconfigured"); roles and disk
    states are None for an unconfigured minor. ``sync_percent`` and
    ``est_time`` (seconds) are set while a resync runs.
    """

    minor: int
    cstatus: str
    lrole: str | None = None
    rrole: str | None = None
    ldisk: str | None = None
    rdisk: str | None = None
    protocol: str | None = None
    flags: str | None = None
    sync_percent: float | None = None
    est_time: int | None = None
    counters: dict[str, str] = field(default_factory=dict)

    @property
    def is_in_use(self) -> bool:
        """Whether the minor is configured at all."""
        return self.cstatus != UNCONFIGURED

    @property
    def is_unconfigured(self) -> bool:
        return self.cstatus == UNCONFIGURED

    @property
    def is_standalone(self) -> bool:
        """No network configured (or the connection was dropped)."""
        return self.cstatus == CS_STANDALONE

    @property
    def is_wfconn(self) -> bool:
        """Network configured, waiting for the peer."""
        return self.cstatus == CS_WFCONNECTION

    @property
    def is_connected(self) -> bool:
        """Connected to the peer and not resyncing."""
        return self.cstatus == CS_CONNECTED

    @property
    def is_in_resync(self) -> bool:
        return self.cstatus in RESYNC_STATES

    @property
    def is_primary(self) -> bool:
        return self.lrole == ROLE_PRIMARY

    @property
    def is_secondary(self) -> bool:
        return self.lrole == ROLE_SECONDARY

    @property
    def peer_primary(self) -> bool:
        return self.rrole == ROLE_PRIMARY

    @property
    def peer_secondary(self) -> bool:
        return self.rrole == ROLE_SECONDARY

    @property
    def is_diskless(self) -> bool:
        return self.ldisk == DS_DISKLESS

    @property
    def is_disk_uptodate(self) -> bool:
        return self.ldisk == DS_UPTODATE

    @property
    def peer_disk_uptodate(self) -> bool:
        return self.rdisk == DS_UPTODATE


@dataclass
class ProcStatus:
    """What a DRBD status source says: the version and the minors."""

    version: DrbdVersion
    minors: dict[int, MinorStatus] = field(default_factory=dict)

    def GetMinor(self, minor: int) -> MinorStatus:
        """The status of ``minor`` (Unconfigured if DRBD does not list it)."""
        return self.minors.get(minor, MinorStatus(minor, UNCONFIGURED))

    def UsedMinors(self) -> list[int]:
        """The configured minors, sorted."""
        return sorted(m for m, st in self.minors.items() if st.is_in_use)


# --- /proc/drbd (DRBD 8.x) -----------------------------------------------------------------

_MINOR_RE = re.compile(r"^\s*(\d+):\s+cs:([A-Za-z]+)(?:\s+(.*?))?\s*$")
_ROLES_RE = re.compile(
    r"^(?:ro|st):([A-Za-z]+)/([A-Za-z]+)\s+ds:([A-Za-z]+)/([A-Za-z]+)"
    r"(?:\s+([ABC]))?(?:\s+([-a-zA-Z]+))?$")
_SYNCED_RE = re.compile(r"sync'ed:\s*(\d+(?:\.\d+)?)%")
_FINISH_RE = re.compile(r"^finish:\s*(\d+):(\d\d):(\d\d)\b")
_KV_TOKEN_RE = re.compile(r"^[A-Za-z][\w'-]*:\S*$")
_TOP_KEYS = ("GIT-hash:", "srcversion:", "Transports")


def ParseProcDrbd(text: str, source: str = "/proc/drbd") -> ProcStatus:
    """Parse the contents of /proc/drbd.

    @raise errors.BlockDeviceError: naming the first line it cannot parse
    """
    version: DrbdVersion | None = None
    build: str | None = None
    minors: dict[int, MinorStatus] = {}
    current: MinorStatus | None = None
    for lineno, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith("version:"):
            if version is not None:
                raise _Error(source, lineno, line, "a second version line")
            try:
                version = ParseVersionLine(stripped, source)
            except errors.BlockDeviceError:
                raise _Error(source, lineno, line, "not a DRBD version line") from None
            continue
        if stripped.startswith(_TOP_KEYS):
            if stripped.startswith(("GIT-hash:", "srcversion:")):
                build = stripped.split(":", 1)[1].strip()
            current = None
            continue
        match = _MINOR_RE.match(line)
        if match:
            current = _ParseMinorLine(match, source, lineno, line)
            if current.minor in minors:
                raise _Error(source, lineno, line, f"minor {current.minor} listed twice")
            minors[current.minor] = current
            continue
        if not line[:1].isspace():
            raise _Error(source, lineno, line, "unknown line")
        if current is None:
            raise _Error(source, lineno, line, "details without a minor line before")
        _ParseDetailLine(current, stripped, source, lineno, line)
    if version is None:
        raise _Error(source, None, None, "no DRBD version line")
    if build is not None:
        version = DrbdVersion(version.major, version.minor, version.point, version.extra,
                              version.api, version.proto_min, version.proto_max, build)
    return ProcStatus(version, minors)


def _ParseMinorLine(match: re.Match[str], source: str, lineno: int, line: str
                    ) -> MinorStatus:
    minor, cstatus, rest = int(match.group(1)), match.group(2), match.group(3)
    if cstatus == UNCONFIGURED:
        if rest:
            raise _Error(source, lineno, line, "details after cs:Unconfigured")
        return MinorStatus(minor, cstatus)
    roles = _ROLES_RE.match(rest or "")
    if roles is None:
        raise _Error(source, lineno, line, "expected ro:LOCAL/PEER ds:LOCAL/PEER")
    lrole, rrole, ldisk, rdisk, protocol, flags = roles.groups()
    return MinorStatus(minor, cstatus, lrole, rrole, ldisk, rdisk, protocol, flags)


def _ParseDetailLine(status: MinorStatus, stripped: str, source: str, lineno: int,
                     line: str) -> None:
    if "sync'ed:" in stripped:
        match = _SYNCED_RE.search(stripped)
        if match is None:
            raise _Error(source, lineno, line, "sync'ed: without a percentage")
        status.sync_percent = float(match.group(1))
        return
    if stripped.startswith("finish:"):
        match = _FINISH_RE.match(stripped)
        if match is None:
            raise _Error(source, lineno, line, "finish: without H:MM:SS")
        hours, minutes, seconds = (int(x) for x in match.groups())
        status.est_time = hours * 3600 + minutes * 60 + seconds
        return
    if stripped.startswith(("verified:", "[")):
        # online verify progress: not a resync
        return
    tokens = stripped.split()
    if not all(_KV_TOKEN_RE.match(token) for token in tokens):
        raise _Error(source, lineno, line, "unknown detail line")
    if tokens[0].startswith(("resync:", "act_log:")):
        return
    for token in tokens:
        key, value = token.split(":", 1)
        status.counters[key] = value


def ReadProcStatus(filename: str | None = None) -> ProcStatus:
    """Read and parse /proc/drbd (by default pathutils.DRBD_STATUS_FILE).

    @raise errors.BlockDeviceError: DRBD not loaded, or unparseable
    """
    path = filename or pathutils.DRBD_STATUS_FILE
    try:
        text = utils.ReadFile(path)
    except FileNotFoundError:
        raise errors.BlockDeviceError(
            f"DRBD is not loaded on this node ({path} does not exist)") from None
    except OSError as err:
        raise errors.BlockDeviceError(f"Cannot read {path}: {err}") from err
    return ParseProcDrbd(text, path)


# --- drbdsetup status (DRBD 9) -----------------------------------------------------------

@dataclass
class Drbd9Device:
    """A local volume of a DRBD 9 resource."""

    volume: int
    minor: int | None
    disk: str
    props: dict[str, str] = field(default_factory=dict)


@dataclass
class Drbd9PeerDevice:
    """A volume as replicated to one peer."""

    volume: int
    replication: str | None
    peer_disk: str | None
    done: float | None = None
    props: dict[str, str] = field(default_factory=dict)


@dataclass
class Drbd9Connection:
    """A connection of a DRBD 9 resource to one peer."""

    name: str
    connection: str
    role: str | None
    peer_devices: list[Drbd9PeerDevice] = field(default_factory=list)
    props: dict[str, str] = field(default_factory=dict)


@dataclass
class Drbd9Resource:
    """One resource of ``drbdsetup status``."""

    name: str
    role: str
    devices: list[Drbd9Device] = field(default_factory=list)
    connections: list[Drbd9Connection] = field(default_factory=list)
    props: dict[str, str] = field(default_factory=dict)


def _KeyValues(tokens: list[str], source: str, lineno: int, line: str
               ) -> dict[str, str]:
    result = {}
    for token in tokens:
        key, sep, value = token.partition(":")
        if not sep or not key:
            raise _Error(source, lineno, line, f"expected key:value, got {token!r}")
        result[key] = value
    return result


def _Int(value: str | None, source: str, lineno: int, line: str) -> int | None:
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise _Error(source, lineno, line, f"{value!r} is not a number") from None


def ParseDrbd9Status(text: str, source: str = "drbdsetup status") -> list[Drbd9Resource]:
    """Parse ``drbdsetup status [--verbose] [--statistics]`` of DRBD 9.

    Indentation tells the nesting: resources at 0, their devices and
    connections at 2, peer devices at 4; deeper-indented key:value lines
    (``--statistics``) add to the item above them.

    @raise errors.BlockDeviceError: naming the first line it cannot parse
    """
    resources: list[Drbd9Resource] = []
    resource: Drbd9Resource | None = None
    connection: Drbd9Connection | None = None
    # the innermost item so far and its indentation, for statistics lines
    last: tuple[int, dict[str, str]] | None = None
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip(" "))
        if line[indent:indent + 1] == "\t":
            raise _Error(source, lineno, line, "tabs in indentation")
        tokens = line.split()
        if indent == 0:
            if ":" in tokens[0]:
                raise _Error(source, lineno, line, "a resource line starts with its name")
            values = _KeyValues(tokens[1:], source, lineno, line)
            resource = Drbd9Resource(tokens[0], values.pop("role", "Unknown"),
                                     props=values)
            resources.append(resource)
            connection = None
            last = (0, resource.props)
            continue
        if resource is None:
            raise _Error(source, lineno, line, "indented line before any resource")
        if indent == 2 and ":" not in tokens[0]:
            values = _KeyValues(tokens[1:], source, lineno, line)
            connection = Drbd9Connection(tokens[0], values.pop("connection", "Connected"),
                                         values.pop("role", None), props=values)
            resource.connections.append(connection)
            last = (2, connection.props)
            continue
        values = _KeyValues(tokens, source, lineno, line)
        if indent == 2 and "disk" in values:
            device = Drbd9Device(_Int(values.pop("volume", "0"), source, lineno, line) or 0,
                                 _Int(values.pop("minor", None), source, lineno, line),
                                 values.pop("disk"), props=values)
            resource.devices.append(device)
            connection = None
            last = (2, device.props)
            continue
        if indent == 4 and connection is not None and \
                ("replication" in values or "peer-disk" in values):
            done = values.pop("done", None)
            try:
                done_pct = float(done) if done is not None else None
            except ValueError:
                raise _Error(source, lineno, line, f"done:{done} is not a number") from None
            peer = Drbd9PeerDevice(_Int(values.pop("volume", "0"), source, lineno, line) or 0,
                                   values.pop("replication", None),
                                   values.pop("peer-disk", None), done_pct, props=values)
            connection.peer_devices.append(peer)
            last = (4, peer.props)
            continue
        if last is None or indent <= last[0]:
            raise _Error(source, lineno, line, "unexpected line at this indentation")
        last[1].update(values)
    return resources


_DRBD9_CSTATUS = {
    "Connecting": CS_WFCONNECTION,
    "Unconnected": CS_WFCONNECTION,
    "Connected": CS_CONNECTED,
}


def MinorsFromDrbd9(resources: list[Drbd9Resource]) -> dict[int, MinorStatus]:
    """Turn DRBD 9 resources into DRBD 8-style per-minor records.

    Only the first connection counts (Ganeti's disks have one peer); the
    connection states are renamed to DRBD 8's ("Connecting" is
    "WFConnection"), and a running resync shows as its replication state.
    Devices without a minor (status without ``--verbose``) are left out.
    """
    result: dict[int, MinorStatus] = {}
    for res in resources:
        conn = res.connections[0] if res.connections else None
        for dev in res.devices:
            if dev.minor is None:
                continue
            status = MinorStatus(dev.minor, CS_STANDALONE, res.role, "Unknown", dev.disk,
                                 "DUnknown")
            if conn is not None:
                status.cstatus = _DRBD9_CSTATUS.get(conn.connection, conn.connection)
                peer = next((p for p in conn.peer_devices if p.volume == dev.volume), None)
                if status.cstatus == CS_CONNECTED:
                    status.rrole = conn.role or "Unknown"
                if peer is not None:
                    if peer.peer_disk:
                        status.rdisk = peer.peer_disk
                    if peer.replication in RESYNC_STATES:
                        status.cstatus = peer.replication
                        status.sync_percent = peer.done
                        eta = peer.props.get("eta")
                        if eta is not None and eta.isdigit():
                            status.est_time = int(eta)
            result[dev.minor] = status
    return result


# --- drbdsetup show (DRBD 8.4) ----------------------------------------------------------------

@dataclass
class ShowStatement:
    """One statement of ``drbdsetup show``: words, then ``;`` or a block."""

    name: str
    args: list[str]
    children: list[ShowStatement] | None = None
    lineno: int = 0


_TOKEN_RE = re.compile(r'\s+|#[^\n]*|"(?:[^"\\]|\\.)*"|[{};]|[^\s{};"#]+')


def _Tokenize(text: str, source: str) -> list[tuple[str, bool, int]]:
    """(token, is_quoted, line number) of each token; comments dropped."""
    tokens = []
    pos, lineno = 0, 1
    while pos < len(text):
        match = _TOKEN_RE.match(text, pos)
        if match is None:
            line = text[pos:].split("\n", 1)[0]
            raise _Error(source, lineno, line, "unterminated string")
        token = match.group(0)
        if not token[0].isspace() and token[0] != "#":
            if token[0] == '"':
                tokens.append((re.sub(r"\\(.)", r"\1", token[1:-1]), True, lineno))
            else:
                tokens.append((token, False, lineno))
        lineno += token.count("\n")
        pos = match.end()
    return tokens


def ParseShowTree(text: str, source: str = "drbdsetup show") -> list[ShowStatement]:
    """Parse ``drbdsetup show`` output into its statements (a tree)."""
    tokens = _Tokenize(text, source)
    root: list[ShowStatement] = []
    stack: list[list[ShowStatement]] = [root]
    words: list[tuple[str, bool, int]] = []
    for token, quoted, lineno in tokens:
        if quoted or token not in ("{", "}", ";"):
            words.append((token, quoted, lineno))
        elif token == ";":
            if not words:
                raise _Error(source, lineno, None, "';' without a statement")
            stack[-1].append(ShowStatement(words[0][0], [w[0] for w in words[1:]],
                                           None, words[0][2]))
            words = []
        elif token == "{":
            if not words:
                raise _Error(source, lineno, None, "'{' without a statement name")
            block = ShowStatement(words[0][0], [w[0] for w in words[1:]], [], words[0][2])
            stack[-1].append(block)
            assert block.children is not None
            stack.append(block.children)
            words = []
        else:
            if words:
                raise _Error(source, lineno, None,
                             f"statement '{' '.join(w[0] for w in words)}' lacks its ';'")
            if len(stack) == 1:
                raise _Error(source, lineno, None, "unbalanced '}'")
            stack.pop()
    if words:
        raise _Error(source, words[0][2], None,
                     f"statement '{' '.join(w[0] for w in words)}' lacks its ';'")
    if len(stack) != 1:
        raise _Error(source, None, None, "missing '}' at the end")
    return root


@dataclass
class ShowInfo:
    """The configuration of one DRBD 8.4 minor, from ``drbdsetup show``.

    Addresses are (family, host, port). Option values are the words of the
    statements, without ``_is_default`` and units kept as shown.
    """

    resource: str | None = None
    minor: int | None = None
    local_addr: tuple[str, str, int] | None = None
    remote_addr: tuple[str, str, int] | None = None
    local_dev: str | None = None
    meta_dev: str | None = None
    #: None for internal or flexible metadata
    meta_index: int | None = None
    protocol: str | None = None
    net_options: dict[str, str] = field(default_factory=dict)
    disk_options: dict[str, str] = field(default_factory=dict)

    @property
    def has_local_disk(self) -> bool:
        return self.local_dev is not None

    @property
    def has_network(self) -> bool:
        return self.local_addr is not None and self.remote_addr is not None

    @property
    def secret(self) -> str | None:
        return self.net_options.get("shared-secret")

    @property
    def allow_two_primaries(self) -> bool:
        return self.net_options.get("allow-two-primaries", "no") in ("yes", "")


def ParseAddress(words: list[str], source: str = "drbdsetup show",
                 lineno: int | None = None) -> tuple[str, str, int]:
    """Parse ``[family] host:port`` ("ipv6 [2001:db8::1]:11000") of an address."""
    text = " ".join(words)
    if len(words) == 2:
        family, hostport = words
    elif len(words) == 1:
        family, hostport = "ipv4", words[0]
    else:
        raise _Error(source, lineno, text, "expected '[family] host:port'")
    if family not in ("ipv4", "ipv6"):
        raise _Error(source, lineno, text, f"unknown address family '{family}'")
    host, sep, port = hostport.rpartition(":")
    if family == "ipv6":
        if not (host.startswith("[") and host.endswith("]")):
            raise _Error(source, lineno, text, "an IPv6 address must be in brackets")
        host = host[1:-1]
    if not sep or not host or not port.isdigit():
        raise _Error(source, lineno, text, "expected host:port")
    return family, host, int(port)


def _Options(block: ShowStatement) -> dict[str, str]:
    result = {}
    for stmt in block.children or []:
        if stmt.children is None:
            words = [w for w in stmt.args if w != "_is_default"]
            result[stmt.name] = " ".join(words)
    return result


def ParseShow(text: str, source: str = "drbdsetup show") -> ShowInfo:
    """Interpret ``drbdsetup show MINOR`` (DRBD 8.4; 8.3's flat form too).

    Empty output (an unconfigured minor) gives an empty :class:`ShowInfo`.
    """
    info = ShowInfo()
    _Walk(ParseShowTree(text, source), info, source, None)
    return info


def _Walk(stmts: list[ShowStatement], info: ShowInfo, source: str,
          host: str | None) -> None:
    for stmt in stmts:
        name, args = stmt.name, stmt.args
        if name == "resource" and stmt.children is not None:
            if len(args) != 1:
                raise _Error(source, stmt.lineno, None, "resource needs one name")
            info.resource = args[0]
            _Walk(stmt.children, info, source, None)
        elif name in ("_this_host", "_remote_host"):
            if stmt.children is None:
                _SetAddress(info, name, ParseAddress(args, source, stmt.lineno))
            else:
                _Walk(stmt.children, info, source, name)
        elif name == "address" and stmt.children is None:
            if host is None:
                raise _Error(source, stmt.lineno, None, "address outside a host section")
            _SetAddress(info, host, ParseAddress(args, source, stmt.lineno))
        elif name == "volume" and stmt.children is not None:
            _Walk(stmt.children, info, source, host)
        elif name == "device" and stmt.children is None:
            words = args[1:] if args[:1] == ["minor"] else args
            number = words[0].removeprefix("/dev/drbd") if len(words) == 1 else ""
            if not number.isdigit():
                raise _Error(source, stmt.lineno, None, f"bad device {' '.join(args)!r}")
            info.minor = int(number)
        elif name == "disk" and stmt.children is None:
            if len(args) != 1:
                raise _Error(source, stmt.lineno, None, "disk needs one device")
            info.local_dev = args[0]
        elif name == "meta-disk" and stmt.children is None:
            _SetMeta(info, args, source, stmt.lineno)
        elif name == "protocol" and stmt.children is None:
            info.protocol = args[0] if args else None
        elif name == "net" and stmt.children is not None:
            info.net_options.update(_Options(stmt))
            if "protocol" in info.net_options:
                info.protocol = info.net_options["protocol"]
        elif name in ("disk", "syncer") and stmt.children is not None:
            info.disk_options.update(_Options(stmt))
        elif stmt.children is not None:
            # other sections (options, handlers, ...) are not needed here
            continue


def _SetAddress(info: ShowInfo, host: str, address: tuple[str, str, int]) -> None:
    if host == "_this_host":
        info.local_addr = address
    else:
        info.remote_addr = address


def _SetMeta(info: ShowInfo, args: list[str], source: str, lineno: int) -> None:
    if args in (["internal"], ["flexible"]) or args[:1] == ["internal"]:
        info.meta_dev = args[0]
        info.meta_index = None
        return
    if len(args) == 1:
        info.meta_dev, info.meta_index = args[0], None
    elif len(args) == 4 and args[1] == "[" and args[3] == "]" and args[2].isdigit():
        info.meta_dev, info.meta_index = args[0], int(args[2])
    elif len(args) == 2 and args[1] == "[flexible]":
        info.meta_dev, info.meta_index = args[0], None
    else:
        raise _Error(source, lineno, None, f"bad meta-disk {' '.join(args)!r}")
