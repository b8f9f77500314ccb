"""The node side of KVM NICs: tap devices and their connection to the network.

For each NIC of an instance the node opens a tap interface itself
(:func:`OpenTap`) and hands the open file descriptors to QEMU (``-netdev
tap,fd=N`` on the command line, or through QMP when hot-adding), so that it
knows which tap belongs to which NIC and whether connecting it worked. It
then runs the NIC's up script (:func:`ConfigureNic`), which connects the
tap according to the NIC's mode, and when the tap goes away (stop,
hot-remove, the source of a migration) the down script and deletes the tap
(:func:`CleanupNic`). Which script runs, with which environment, is
:mod:`ganeti.hypervisor.netscripts` (doc/network-scripts.rst):

- ``bridged``: the tap joins the bridge ``link``; VLANs through the bridge's
  VLAN filtering (``bridge vlan``);
- ``routed``: a host route to the NIC's IP on the tap, in routing table
  ``link`` when given (with a rule sending the instance's traffic to that
  table), proxy ARP (IPv6: proxy NDP) and forwarding on the tap;
- ``openvswitch``: the tap becomes a port of switch ``link``; VLANs as the
  port's ``tag`` and ``trunks``.

Tap names come from :func:`TapName`: a hash of the instance and the NIC's
index (or UUID), so that after a crash a node finds an instance's taps
(:func:`ListTaps` with :func:`TapPrefix`) without any state file.

Every external command goes through :func:`ganeti.utils.RunCmd`.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import logging
import os
import re
import struct
from collections.abc import Iterable

from ganeti import errors, objects, pathutils, utils
from ganeti.hypervisor import netscripts
from ganeti.hypervisor.netscripts import NicEnvironment, ParseVlan, Vlan

__all__ = [
    "CleanupNic",
    "ConfigureNic",
    "ListTaps",
    "NicEnvironment",
    "OpenTap",
    "ParseVlan",
    "RemoveTap",
    "TapName",
    "TapPrefix",
    "Vlan",
]

# --- Tap devices ---------------------------------------------------------------

_TUN_DEVICE = "/dev/net/tun"
# <linux/if_tun.h>
_TUNSETIFF = 0x400454CA
_TUNGETFEATURES = 0x800454CF
_IFF_TAP = 0x0002
_IFF_MULTI_QUEUE = 0x0100
_IFF_NO_PI = 0x1000
_IFF_VNET_HDR = 0x4000
# struct ifreq: the name, the flags, padding to its 40 bytes
_IFREQ = "16sH22x"
#: The longest interface name (IFNAMSIZ less the terminating NUL)
MAX_IFNAME_LEN = 15

#: Prefix of every tap interface named by :func:`TapName`
TAP_PREFIX = "gnt"
# Hex digits of the instance's hash in a tap name, and of a NIC UUID's
_INSTANCE_HASH_LEN = 7
_NIC_HASH_LEN = 4

_OPEN_HINTS = {
    errno.EPERM: "creating tap interfaces needs root (CAP_NET_ADMIN)",
    errno.EACCES: "creating tap interfaces needs root (CAP_NET_ADMIN)",
    errno.EBUSY: "another process holds it (a QEMU still running?)",
    errno.EINVAL: "it exists with other flags (multi-queue or not, vnet_hdr)",
    errno.ENOENT: f"{_TUN_DEVICE} is missing (is the tun module loaded?)",
    errno.ENODEV: f"{_TUN_DEVICE} is missing (is the tun module loaded?)",
}


def _CheckIfName(name: str) -> None:
    """Refuse a name the kernel would refuse as an interface name."""
    if not isinstance(name, str) or not name or name in (".", "..") \
            or len(name.encode()) > MAX_IFNAME_LEN \
            or re.search(r"[/:\s]", name) or not name.isprintable():
        raise errors.HypervisorError(
            f"Invalid network interface name {name!r}: 1 to {MAX_IFNAME_LEN}"
            " bytes without '/', ':' or white space")


def _Hash(value: str, length: int) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:length]


def TapPrefix(instance_name: str, uuid: str | None = None) -> str:
    """The common start of the names of an instance's taps.

    From the instance's UUID when given (it survives a rename), else from
    its name. In a virtual cluster the node's root is hashed in too: its
    nodes share one kernel, and an instance migrating between two of them
    has taps on both at once.
    """
    key = uuid or instance_name
    if pathutils.IsVirtualCluster():
        key += "@" + pathutils.GetRootDirectory()
    return f"{TAP_PREFIX}{_Hash(key, _INSTANCE_HASH_LEN)}-"


def TapName(instance_name: str, index: int, uuid: str | None = None,
            nic_uuid: str | None = None) -> str:
    """The tap interface of NIC ``index`` of an instance (at most 15 bytes).

    ``gnt`` + 7 hex digits of the instance's UUID (else its name) + ``-`` +
    the NIC's index, or 4 hex digits of the NIC's UUID when ``nic_uuid`` is
    given. Pass ``nic_uuid`` for NICs that may be hot-added: indices shift
    when a NIC before them is hot-removed, so a new NIC's index can be that
    of a running NIC's tap.
    """
    if nic_uuid:
        suffix = _Hash(nic_uuid, _NIC_HASH_LEN)
    else:
        if not isinstance(index, int) or index < 0:
            raise errors.ProgrammerError(f"Invalid NIC index {index!r}")
        suffix = str(index)
    name = TapPrefix(instance_name, uuid) + suffix
    if len(name) > MAX_IFNAME_LEN:
        raise errors.ProgrammerError(f"NIC index {index} too large for a tap name")
    return name


def _TunFeatures(fd: int) -> int:
    buf = fcntl.ioctl(fd, _TUNGETFEATURES, struct.pack("I", 0))
    return struct.unpack("I", buf)[0]


def OpenTap(name: str, vnet_hdr: bool = True, queues: int = 1) -> list[int]:
    """Create (or attach to) tap interface ``name``; return one fd per queue.

    The tap has no packet information header (``IFF_NO_PI``), a virtio-net
    header when ``vnet_hdr`` is set and the kernel offers it (otherwise
    without, as Ganeti), and ``queues`` queues (``IFF_MULTI_QUEUE`` when
    more than one). It exists as long as some process holds one of the
    descriptors: QEMU gets them through ``RunCmd(noclose_fds=...)``
    (subprocess's ``pass_fds``; they are close-on-exec otherwise, as
    Python makes them) or QMP's ``getfd``, after which the caller closes
    its own copies. Whatever was opened is closed on failure.

    @raise errors.HypervisorError: naming the interface and the errno
    """
    _CheckIfName(name)
    if not isinstance(queues, int) or queues < 1:
        raise errors.HypervisorError(f"Invalid number of queues {queues!r} for"
                                     f" tap interface {name}")
    flags = _IFF_TAP | _IFF_NO_PI
    fds: list[int] = []
    queue = 0
    try:
        for queue in range(queues):
            fd = os.open(_TUN_DEVICE, os.O_RDWR)
            fds.append(fd)
            if queue == 0:
                features = _TunFeatures(fd)
                if vnet_hdr and features & _IFF_VNET_HDR:
                    flags |= _IFF_VNET_HDR
                elif vnet_hdr:
                    logging.warning("The kernel offers no vnet_hdr for tap"
                                    " interfaces; opening %s without", name)
                if queues > 1:
                    if not features & _IFF_MULTI_QUEUE:
                        raise errors.HypervisorError(
                            f"Cannot open tap interface {name} with {queues} queues:"
                            " the kernel has no multi-queue tap interfaces")
                    flags |= _IFF_MULTI_QUEUE
            fcntl.ioctl(fd, _TUNSETIFF, struct.pack(_IFREQ, name.encode(), flags))
    except OSError as err:
        _CloseAll(fds)
        code = errno.errorcode.get(err.errno or 0, str(err.errno))
        hint = _OPEN_HINTS.get(err.errno or 0)
        where = f" (queue {queue + 1} of {queues})" if queues > 1 else ""
        raise errors.HypervisorError(
            f"Cannot open tap interface {name}{where}: {err.strerror} ({code})"
            + (f"; {hint}" if hint else "")) from err
    except BaseException:
        _CloseAll(fds)
        raise
    return fds


def _CloseAll(fds: list[int]) -> None:
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass


# --- The interface scripts -----------------------------------------------------

#: Seconds the interface scripts get
SCRIPT_TIMEOUT = netscripts.SCRIPT_TIMEOUT


def ConfigureNic(instance: objects.Instance, index: int, nic: objects.NIC,
                 nicparams: dict, tap: str, extra_env: dict | None = None,
                 timeout: float = SCRIPT_TIMEOUT) -> None:
    """Bring tap ``tap`` of NIC ``index`` up and connect it (see the module).

    Runs the NIC's up script (:func:`ganeti.hypervisor.netscripts.
    RunNicScript`) with the tap as argument and the NIC's environment plus
    ``extra_env``. On failure the caller undoes what was done with
    :func:`CleanupNic`.

    @raise errors.HypervisorError: for an invalid mode or VLAN, or when the
        script fails (with its output)
    """
    _CheckIfName(tap)
    netscripts.RunNicScript(netscripts.ACTION_UP, instance.name, index, nic,
                            nicparams, tap, tags=instance.GetTags(),
                            extra_env=extra_env, timeout=timeout)


# --- Cleaning up ---------------------------------------------------------------

# What commands say when the object they should remove is gone already
_GONE_RE = re.compile(r"Cannot find device|does not exist|No such (?:process|file"
                      r" or directory|device)", re.I)


def _RunGone(cmd: list[str]) -> tuple[bool, str | None]:
    """Run a removal command: (whether it removed something, error or None)."""
    try:
        result = utils.RunCmd(cmd)
    except errors.OpExecError as err:
        return False, str(err)
    if not result.failed:
        return True, None
    if _GONE_RE.search(result.output):
        return False, None
    return False, f"'{' '.join(cmd)}' {result.fail_reason}: {result.output.strip()}"


def _TapKind(tap: str) -> str | None:
    """The kind of interface ``tap`` ("tun" for taps), None if it is gone."""
    result = utils.RunCmd(["ip", "-d", "-j", "link", "show", "dev", tap])
    if result.failed:
        if _GONE_RE.search(result.output):
            return None
        raise errors.HypervisorError(f"Cannot query interface {tap}:"
                                     f" {result.output.strip()}")
    try:
        links = json.loads(result.stdout)
        return links[0].get("linkinfo", {}).get("info_kind", "")
    except (ValueError, LookupError, AttributeError) as err:
        raise errors.HypervisorError(f"Cannot parse what 'ip' says about"
                                     f" interface {tap}: {err}") from err


def RemoveTap(tap: str) -> bool:
    """Delete tap interface ``tap`` if it exists; whether it did.

    An interface of that name that is not a tap is left alone (an error).
    """
    _CheckIfName(tap)
    kind = _TapKind(tap)
    if kind is None:
        return False
    if kind != "tun":
        raise errors.HypervisorError(f"Interface {tap} is not a tap interface"
                                     f" ({kind or 'no kind'}); not deleting it")
    removed, error = _RunGone(["ip", "link", "del", "dev", tap])
    if error:
        raise errors.HypervisorError(f"Cannot delete tap interface {tap}: {error}")
    return removed


def CleanupNic(instance_name: str, index: int, nic: objects.NIC, nicparams: dict,
               tap: str, timeout: float = SCRIPT_TIMEOUT, tags: Iterable[str] = (),
               extra_env: dict | None = None) -> None:
    """Undo :func:`ConfigureNic` for NIC ``index`` and delete its tap.

    Runs the NIC's down script, which removes what outlives the tap
    (routed: the rule sending the tap's traffic to table ``link`` and the
    route; openvswitch: the switch port), then deletes the tap if it still
    exists. Anything already gone is fine: calling it twice, or after a
    crash, is safe.

    @raise errors.HypervisorError: when something could not be removed
        (after trying everything else)
    """
    _CheckIfName(tap)
    problems: list[str] = []
    try:
        netscripts.RunNicScript(netscripts.ACTION_DOWN, instance_name, index, nic,
                                nicparams, tap, tags=tags, extra_env=extra_env,
                                timeout=timeout)
    except errors.GenericError as err:
        problems.append(str(err))
    try:
        RemoveTap(tap)
    except errors.HypervisorError as err:
        problems.append(str(err))
    if problems:
        raise errors.HypervisorError(
            f"Cleaning up interface {tap} (NIC {index}) of instance"
            f" {instance_name}: {'; '.join(problems)}")


def ListTaps(prefix: str = TAP_PREFIX) -> list[str]:
    """The tap interfaces whose names start with ``prefix``, sorted.

    With :func:`TapPrefix` this finds an instance's taps, e.g. those a
    crashed node left behind.
    """
    result = utils.RunCmd(["ip", "-d", "-j", "link", "show"])
    if result.failed:
        raise errors.HypervisorError(f"Cannot list network interfaces:"
                                     f" {result.output.strip()}")
    try:
        links = json.loads(result.stdout)
        return sorted(link["ifname"] for link in links
                      if link["ifname"].startswith(prefix)
                      and link.get("linkinfo", {}).get("info_kind") == "tun")
    except (ValueError, LookupError, TypeError, AttributeError) as err:
        raise errors.HypervisorError(f"Cannot parse the list of network"
                                     f" interfaces: {err}") from err
