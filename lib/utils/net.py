"""IP addresses, host names and reachability checks.

Address parsing uses the standard ``ipaddress`` module. Scoped IPv6
addresses ("fe80::1%eth0") and IPv4 with leading zeros are refused: they are
ambiguous on the wire and in configuration files.

The local host name honours the virtual-cluster override (GANETI_HOSTNAME,
as read by :mod:`ganeti.pathutils`).
"""

from __future__ import annotations

import errno
import ipaddress
import re
import socket
from typing import Any

from ganeti import errors

__all__ = [
    "FormatAddress",
    "GetAddressFamily",
    "GetHostname",
    "Hostname",
    "IP4Address",
    "IP6Address",
    "IPAddress",
    "IsValidIP",
    "IsValidIP4",
    "IsValidIP6",
    "SplitHostPort",
    "TcpPing",
    "ValidateNetmask",
]

# One label of a host name: RFC 1123, plus underscores, which Ganeti allows
_LABEL_RE = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")
_MAX_NAME_LEN = 253


def _ParseIP(address: Any) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    if not isinstance(address, str) or "%" in address:
        return None
    try:
        return ipaddress.ip_address(address)
    except ValueError:
        return None


class IPAddress:
    """Checks on IP addresses of either family (see the subclasses)."""

    #: address length in bits (0 for "any family")
    iplen = 0
    #: socket address family (0 for "any family")
    family = 0
    #: IP version (0 for "any family")
    version = 0
    loopback_cidr = ""

    @classmethod
    def _Parse(cls, address: Any
               ) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
        ip = _ParseIP(address)
        if ip is None or (cls.version and ip.version != cls.version):
            return None
        return ip

    @classmethod
    def IsValid(cls, address: Any) -> bool:
        """Whether ``address`` is a valid address (of this class's family)."""
        return cls._Parse(address) is not None

    @classmethod
    def ValidateNetmask(cls, netmask: Any) -> bool:
        """Whether ``netmask`` is a valid prefix length (1..iplen) here."""
        if cls.iplen == 0:
            raise errors.ProgrammerError("ValidateNetmask needs a family;"
                                         " use IP4Address or IP6Address")
        return (isinstance(netmask, int) and not isinstance(netmask, bool)
                and 0 < netmask <= cls.iplen)

    @classmethod
    def IsLoopback(cls, address: str) -> bool:
        """Whether ``address`` is a loopback address.

        @raise errors.IPAddressError: if it is not a valid address
        """
        ip = cls._Parse(address)
        if ip is None:
            raise errors.IPAddressError(f"Invalid IP address '{address}'")
        return ip.is_loopback

    @classmethod
    def InNetwork(cls, cidr: str, address: str) -> bool:
        """Whether ``address`` lies in the network ``cidr`` ("10.0.0.0/8").

        @raise errors.IPAddressError: for an invalid network or address
        """
        ip = cls._Parse(address)
        if ip is None:
            raise errors.IPAddressError(f"Invalid IP address '{address}'")
        try:
            network = ipaddress.ip_network(cidr, strict=False)
        except ValueError as err:
            raise errors.IPAddressError(f"Invalid network '{cidr}': {err}") \
                from err
        return network.version == ip.version and ip in network

    @classmethod
    def Own(cls, address: str) -> bool:
        """Whether this host has ``address`` (found by binding to it)."""
        ip = cls._Parse(address)
        if ip is None:
            raise errors.IPAddressError(f"Invalid IP address '{address}'")
        family = socket.AF_INET if ip.version == 4 else socket.AF_INET6
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            try:
                sock.bind((address, 0))
            except OSError as err:
                if err.errno == errno.EADDRNOTAVAIL:
                    return False
                raise
        return True

    @staticmethod
    def GetAddressFamily(address: str) -> int:
        """Return socket.AF_INET or AF_INET6 for ``address``.

        @raise errors.IPAddressError: if it is not a valid address
        """
        ip = _ParseIP(address)
        if ip is None:
            raise errors.IPAddressError(f"Invalid IP address '{address}'")
        return socket.AF_INET if ip.version == 4 else socket.AF_INET6

    @staticmethod
    def GetClassFromIpFamily(family: int) -> type[IPAddress]:
        """Return IP4Address or IP6Address for a socket family."""
        for cls in (IP4Address, IP6Address):
            if cls.family == family:
                return cls
        raise errors.ProgrammerError(f"Invalid address family {family}")

    @staticmethod
    def GetClassFromIpVersion(version: int) -> type[IPAddress]:
        """Return IP4Address or IP6Address for an IP version (4 or 6)."""
        for cls in (IP4Address, IP6Address):
            if cls.version == version:
                return cls
        raise errors.ProgrammerError(f"Invalid IP version {version}")

    @classmethod
    def GetVersionFromAddressFamily(cls, family: int) -> int:
        """Return 4 or 6 for a socket family."""
        return cls.GetClassFromIpFamily(family).version

    @classmethod
    def GetAddressFamilyFromVersion(cls, version: int) -> int:
        """Return the socket family for an IP version (4 or 6)."""
        return cls.GetClassFromIpVersion(version).family


class IP4Address(IPAddress):
    """Checks on IPv4 addresses."""

    iplen = 32
    family = socket.AF_INET
    version = 4
    loopback_cidr = "127.0.0.0/8"


class IP6Address(IPAddress):
    """Checks on IPv6 addresses."""

    iplen = 128
    family = socket.AF_INET6
    version = 6
    loopback_cidr = "::1/128"


def IsValidIP4(address: Any) -> bool:
    """Whether ``address`` is a valid IPv4 address (dotted quad)."""
    return IP4Address.IsValid(address)


def IsValidIP6(address: Any) -> bool:
    """Whether ``address`` is a valid IPv6 address."""
    return IP6Address.IsValid(address)


def IsValidIP(address: Any) -> bool:
    """Whether ``address`` is a valid IPv4 or IPv6 address."""
    return IPAddress.IsValid(address)


def GetAddressFamily(address: str) -> int:
    """Return socket.AF_INET or AF_INET6 for ``address``.

    @raise errors.IPAddressError: if it is not a valid address
    """
    return IPAddress.GetAddressFamily(address)


def ValidateNetmask(cidr: Any, family: int) -> bool:
    """Whether ``cidr`` is a valid prefix length for the socket ``family``."""
    return IPAddress.GetClassFromIpFamily(family).ValidateNetmask(cidr)


def FormatAddress(address: tuple[str, int] | str,
                  family: int | None = None) -> str:
    """Format ``(host, port)`` as "host:port" ("[v6addr]:port" for IPv6).

    A bare host is returned unchanged (IPv6 without brackets).
    """
    if isinstance(address, str):
        return address
    host, port = address
    if family is None:
        family = socket.AF_INET6 if IsValidIP6(host) else socket.AF_INET
    if family == socket.AF_INET6:
        return f"[{host}]:{port}"
    return f"{host}:{port}"


def SplitHostPort(text: str) -> tuple[str, int]:
    """Split "host:port" or "[v6addr]:port" into (host, port).

    @raise ValueError: if ``text`` has no valid port
    """
    host, sep, port_text = text.rpartition(":")
    if not sep or not host:
        raise ValueError(f"Address '{text}' has no port")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host and not IsValidIP6(host):
        raise ValueError(f"Invalid address '{text}'")
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"Invalid port in address '{text}'")
    return host, int(port_text)


class Hostname:
    """A host's normalised name and one of its IP addresses.

    ``Hostname()`` describes this host, ``Hostname("node1")`` another; the
    name is resolved to its fully qualified form and an address.

    @ivar name: the normalised, fully qualified name
    @ivar ip: an address of the host (of ``family``, if given)
    """

    def __init__(self, name: str | None = None, family: int | None = None):
        self.name = self.GetFqdn(name)
        self.ip = self.GetIP(self.name, family=family)

    def __repr__(self) -> str:
        return f"<Hostname name={self.name!r} ip={self.ip!r}>"

    @classmethod
    def GetSysName(cls) -> str:
        """This host's normalised name (no address resolution)."""
        return cls.GetFqdn()

    @classmethod
    def GetFqdn(cls, hostname: str | None = None) -> str:
        """Return the normalised fully qualified name of ``hostname``.

        Without a name, this host's: the virtual-cluster hostname when one
        is set, else the system's.
        """
        if hostname is None:
            from ganeti import pathutils
            virtual = pathutils.GetVirtualHostname()
            result = virtual if virtual else socket.getfqdn()
        else:
            result = socket.getfqdn(hostname)
        return cls.GetNormalizedName(result)

    @staticmethod
    def GetIP(hostname: str, family: int | None = None) -> str:
        """Resolve ``hostname`` to an address (of ``family``, if given).

        @raise errors.ResolverError: (name, error number, message)
        """
        if family not in (None, socket.AF_INET, socket.AF_INET6):
            raise errors.ProgrammerError(f"Invalid address family {family}")
        try:
            infos = socket.getaddrinfo(hostname, None, family or 0,
                                       socket.SOCK_STREAM)
        except (socket.gaierror, socket.herror) as err:
            raise errors.ResolverError(hostname, err.args[0],
                                       err.args[1] if len(err.args) > 1
                                       else str(err)) from err
        except UnicodeError as err:
            raise errors.ResolverError(hostname, 0, str(err)) from err
        for _, _, _, _, sockaddr in infos:
            return str(sockaddr[0])
        raise errors.ResolverError(hostname, 0, "No address found")

    @staticmethod
    def GetNormalizedName(hostname: str) -> str:
        """Check a host name and return it lower-cased, without a final dot.

        @raise errors.OpPrereqError: (ECODE_INVAL) naming an invalid name
        """
        if not isinstance(hostname, str):
            raise errors.OpPrereqError(f"Invalid hostname {hostname!r}",
                                       errors.ECODE_INVAL)
        name = hostname.lower()
        if name.endswith("."):
            name = name[:-1]
        if (not name or len(name) > _MAX_NAME_LEN
                or not all(_LABEL_RE.fullmatch(label) for label in name.split("."))):
            raise errors.OpPrereqError(f"Invalid hostname '{hostname}'",
                                       errors.ECODE_INVAL)
        return name


def GetHostname(name: str | None = None,
                family: int | None = None) -> Hostname:
    """Return a :class:`Hostname` for ``name`` (or this host).

    @raise errors.ResolverError: if the name does not resolve
    @raise errors.OpPrereqError: if the name is invalid
    """
    return Hostname(name=name, family=family)


def TcpPing(target: str, port: int, timeout: float = 10,
            live_port_needed: bool = False, source: str | None = None) -> bool:
    """Check whether ``target`` answers TCP connections on ``port``.

    Unless ``live_port_needed``, a refused connection also counts: the host
    answered. With ``source`` the connection comes from that local address
    (False if this host does not have it).

    @raise errors.IPAddressError: if ``target`` is not an IP address
    """
    family = GetAddressFamily(target)
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        if source is not None:
            try:
                sock.bind((source, 0))
            except OSError as err:
                if err.errno == errno.EADDRNOTAVAIL:
                    return False
                raise
        sock.settimeout(timeout)
        try:
            sock.connect((target, port))
        except TimeoutError:
            return False
        except OSError as err:
            return not live_port_needed and err.errno == errno.ECONNREFUSED
    return True
