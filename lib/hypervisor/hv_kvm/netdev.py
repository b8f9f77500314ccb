"""The node side of KVM NICs: tap devices and their connection to the network.

For each NIC of an instance the node opens a tap interface itself
(:func:`OpenTap`) and hands the open file descriptors to QEMU (``-netdev
tap,fd=N`` on the command line, or through QMP when hot-adding), so that it
knows which tap belongs to which NIC and whether connecting it worked. It
then runs the interface-up script (:func:`ConfigureNic`), which connects the
tap according to the NIC's mode, as Ganeti's ``kvm-ifup`` does:

- ``bridged``: the tap joins the bridge ``link``; VLANs through the bridge's
  VLAN filtering (``bridge vlan``);
- ``routed``: a host route to the NIC's IP on the tap, in routing table
  ``link`` when given (with a rule sending the instance's traffic to that
  table), proxy ARP and forwarding on the tap;
- ``openvswitch``: the tap becomes a port of switch ``link``; VLANs as the
  port's ``tag`` and ``trunks``.

The default script is ``tools/kvm-ifup`` (:func:`ganeti.pathutils.
KvmIfupScript`); an administrator replaces it with an executable
``/etc/ganeti/kvm-ifup-custom`` (Ganeti's older name ``kvm-vif-bridge`` is
honoured too). :func:`CleanupNic` undoes what outlives the tap (routing
rules, Open vSwitch ports), runs ``/etc/ganeti/kvm-ifdown-custom`` if there
is one, and deletes the tap if it still exists.

Tap names come from :func:`TapName`: a hash of the instance and the NIC's
index (or UUID), so that after a crash a node finds an instance's taps
(:func:`ListTaps` with :func:`TapPrefix`) without any state file.

Every external command goes through :func:`ganeti.utils.RunCmd`.
"""

from __future__ import annotations

import dataclasses
import errno
import fcntl
import hashlib
import json
import logging
import os
import re
import struct
from collections.abc import Mapping
from typing import Any

from ganeti import constants, errors, objects, pathutils, utils

__all__ = [
    "CleanupNic",
    "ConfigureNic",
    "IfupScript",
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


# --- VLANs ---------------------------------------------------------------------

_VLAN_ID = r"[0-9]{1,4}"
_VLAN_RE = re.compile(rf"(?:\.?(?P<access>{_VLAN_ID}))?(?P<trunks>(?::{_VLAN_ID})*)")
#: 0 and 4095 are reserved by IEEE 802.1Q
VLAN_ID_MIN, VLAN_ID_MAX = 1, 4094


@dataclasses.dataclass(frozen=True)
class Vlan:
    """The VLANs of a NIC: the untagged (access) one and the tagged ones."""

    access: int | None
    trunks: tuple[int, ...] = ()


def ParseVlan(value: str | None) -> Vlan | None:
    """Parse the ``vlan`` NIC parameter; None when it is empty.

    Ganeti's syntax: ``N`` or ``.N`` an access port on VLAN N, ``:N[:M...]``
    a trunk of VLANs N, M..., ``.N:M[:K...]`` both (N untagged, the others
    tagged).

    @raise errors.HypervisorError: for anything else, saying what is expected
    """
    if value is None or value == "":
        return None
    expected = ("expected N or .N (access port), :N[:M...] (trunk) or"
                " .N:M[:K...] (both), with VLAN IDs from"
                f" {VLAN_ID_MIN} to {VLAN_ID_MAX}")
    text = str(value)
    match = _VLAN_RE.fullmatch(text)
    if match is None or not (match.group("access") or match.group("trunks")) \
            or (match.group("access") and match.group("trunks")
                and not text.startswith(".")):
        raise errors.HypervisorError(f"Invalid VLAN '{text}': {expected}")
    access = int(match.group("access")) if match.group("access") else None
    trunks = tuple(int(vid) for vid in match.group("trunks").split(":")[1:])
    seen: set[int] = set()
    for vid in ([access] if access is not None else []) + list(trunks):
        if not VLAN_ID_MIN <= vid <= VLAN_ID_MAX:
            raise errors.HypervisorError(f"Invalid VLAN '{text}': VLAN ID {vid} out"
                                         f" of range; {expected}")
        if vid in seen:
            raise errors.HypervisorError(f"Invalid VLAN '{text}': VLAN ID {vid}"
                                         " given twice")
        seen.add(vid)
    return Vlan(access, trunks)


# --- The interface-up script ---------------------------------------------------

#: Seconds the interface scripts get
SCRIPT_TIMEOUT = 120.0

# Environment variables of a NIC's network, as in Ganeti's hooks
_NETWORK_ENV = {
    "name": "NETWORK_NAME", "uuid": "NETWORK_UUID", "network": "NETWORK_SUBNET",
    "gateway": "NETWORK_GATEWAY", "network6": "NETWORK_SUBNET6",
    "gateway6": "NETWORK_GATEWAY6", "mac_prefix": "NETWORK_MAC_PREFIX",
}


def IfupScript() -> str:
    """The script run by :func:`ConfigureNic`: the administrator's or ours."""
    for custom in (pathutils.KVM_IFUP_CUSTOM, pathutils.KVM_VIF_BRIDGE):
        if os.path.isfile(custom) and os.access(custom, os.X_OK):
            return custom
    return pathutils.KvmIfupScript()


def _NicMode(nicparams: Mapping[str, Any], tap: str) -> str:
    mode = nicparams.get(constants.NIC_MODE)
    if mode not in constants.NIC_VALID_MODES:
        raise errors.HypervisorError(
            f"Invalid mode {mode!r} of the NIC on {tap} (valid:"
            f" {', '.join(sorted(constants.NIC_VALID_MODES))})")
    return mode


def _ScriptPath() -> str:
    dirs = [d for d in os.environ.get("PATH", "").split(os.pathsep) if d]
    return os.pathsep.join(dict.fromkeys(dirs + ["/sbin", "/usr/sbin", "/bin", "/usr/bin"]))


def NicEnvironment(instance_name: str, index: int, nic: objects.NIC,
                   nicparams: Mapping[str, Any], tap: str,
                   tags: Any = ()) -> dict[str, str]:
    """The environment of the interface scripts for one NIC (Ganeti's names).

    ``nicparams`` are the NIC's filled parameters (mode, link, vlan).
    VLAN_ACCESS and VLAN_TRUNKS carry the parsed ``vlan``.
    """
    mode = _NicMode(nicparams, tap)
    link = nicparams.get(constants.NIC_LINK) or ""
    vlan_text = nicparams.get(constants.NIC_VLAN) or ""
    vlan = ParseVlan(vlan_text)
    env = {
        "PATH": _ScriptPath(),
        "INSTANCE": instance_name,
        "INTERFACE": tap,
        "INTERFACE_INDEX": str(index),
        "MODE": mode,
        "MAC": nic.mac or "",
        "LINK": link,
        "TAGS": " ".join(sorted(tags)),
    }
    if nic.uuid:
        env["INTERFACE_UUID"] = nic.uuid
    if nic.name:
        env["INTERFACE_NAME"] = nic.name
    if nic.ip:
        env["IP"] = nic.ip
    if mode == constants.NIC_MODE_BRIDGED:
        env["BRIDGE"] = link
    if vlan is not None:
        env["VLAN"] = str(vlan_text)
        env["VLAN_ACCESS"] = "" if vlan.access is None else str(vlan.access)
        env["VLAN_TRUNKS"] = " ".join(map(str, vlan.trunks))
    netinfo = nic.netinfo or {}
    if nic.network:
        env["NETWORK"] = nic.network
    for key, var in _NETWORK_ENV.items():
        if netinfo.get(key):
            env[var] = str(netinfo[key])
    if netinfo.get("tags"):
        env["NETWORK_TAGS"] = " ".join(sorted(netinfo["tags"]))
    return env


def ConfigureNic(instance: objects.Instance, index: int, nic: objects.NIC,
                 nicparams: dict, tap: str, extra_env: dict | None = None,
                 timeout: float = SCRIPT_TIMEOUT) -> None:
    """Bring tap ``tap`` of NIC ``index`` up and connect it (see the module).

    Runs :func:`IfupScript` with the tap as argument and
    :func:`NicEnvironment` (plus ``extra_env``) as its whole environment.
    On failure the caller undoes what was done with :func:`CleanupNic`.

    @raise errors.HypervisorError: for an invalid mode or VLAN, or when the
        script fails (with its output)
    """
    _CheckIfName(tap)
    env = NicEnvironment(instance.name, index, nic, nicparams, tap,
                         tags=instance.GetTags())
    if extra_env:
        env.update({key: str(value) for key, value in extra_env.items()})
    script = IfupScript()
    try:
        result = utils.RunCmd([script, tap], env=env, reset_env=True,
                              timeout=timeout)
    except errors.OpExecError as err:
        raise errors.HypervisorError(f"Cannot configure interface {tap} of"
                                     f" instance {instance.name}: {err}") from err
    if result.failed:
        raise errors.HypervisorError(
            f"Configuring interface {tap} (NIC {index}, mode {env['MODE']}) of"
            f" instance {instance.name} failed: {script} {result.fail_reason};"
            f" output: {result.output.strip() or '(none)'}")


# --- Cleaning up ---------------------------------------------------------------

# What commands say when the object they should remove is gone already
_GONE_RE = re.compile(r"Cannot find device|does not exist|No such (?:process|file"
                      r" or directory|device)", re.I)
# Stale rules of one tap are few; the bound only guards against a loop
_MAX_RULES = 100


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
               tap: str, timeout: float = SCRIPT_TIMEOUT) -> None:
    """Undo :func:`ConfigureNic` for NIC ``index`` and delete its tap.

    Runs the administrator's ``kvm-ifdown-custom`` if there is one, removes
    what outlives the tap (routed: the rules sending the tap's traffic to
    table ``link`` and the route there; openvswitch: the switch port) and
    deletes the tap if it still exists. Anything already gone is fine:
    calling it twice, or after a crash, is safe.

    @raise errors.HypervisorError: when something could not be removed
        (after trying everything else)
    """
    _CheckIfName(tap)
    problems: list[str] = []
    mode = nicparams.get(constants.NIC_MODE)
    link = nicparams.get(constants.NIC_LINK) or ""
    custom = pathutils.KVM_IFDOWN_CUSTOM
    if os.path.isfile(custom) and os.access(custom, os.X_OK):
        try:
            env = NicEnvironment(instance_name, index, nic, nicparams, tap)
            result = utils.RunCmd([custom, tap], env=env, reset_env=True,
                                  timeout=timeout)
            if result.failed:
                problems.append(f"{custom} {result.fail_reason}:"
                                f" {result.output.strip()}")
        except errors.GenericError as err:
            problems.append(f"{custom}: {err}")
    if mode == constants.NIC_MODE_ROUTED and link:
        for _ in range(_MAX_RULES):
            removed, error = _RunGone(["ip", "rule", "del", "iif", tap, "table", link])
            if error:
                problems.append(error)
            if not removed:
                break
        if nic.ip:
            _, error = _RunGone(["ip", "route", "del", nic.ip, "table", link,
                                 "dev", tap])
            if error:
                problems.append(error)
    if mode == constants.NIC_MODE_OVS:
        try:
            result = utils.RunCmd(["ovs-vsctl", "--if-exists", "del-port", tap])
        except errors.OpExecError:
            # Without Open vSwitch there is no port to remove
            logging.debug("No ovs-vsctl on this node; no port %s to remove", tap)
        else:
            if result.failed:
                problems.append(f"'ovs-vsctl --if-exists del-port {tap}'"
                                f" {result.fail_reason}: {result.output.strip()}")
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
