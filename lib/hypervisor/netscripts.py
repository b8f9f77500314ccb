"""The NIC scripts: what connects an instance's network interface on a node.

When a hypervisor has made the host side of a NIC (a KVM tap), it runs the
*up* script of the NIC's mode; when that interface goes away, the *down*
script (doc/network-scripts.rst). As Ganeti 3.2 does, one wrapper,
``tools/kvm-nic-setup`` (:func:`NicSetupScript`), picks the script:

1. ``CONF_DIR/network/<mode>/<action>``: the administrator's;
2. ``<built-in dir>/<mode>/<action>`` (:func:`BuiltinScriptsDir`): ours,
   shipped with the package (the source tree's ``tools/network``, else
   ``<prefix>/lib/ganeti/network``).

Mode ``ext`` has no built-in scripts. The older whole replacements
``CONF_DIR/kvm-ifup-custom`` (also named ``kvm-vif-bridge``) and
``CONF_DIR/kvm-ifdown-custom`` still take precedence over the wrapper when
they exist (:func:`ScriptFor`).

The scripts get the NIC's environment (:func:`NicEnvironment`, Ganeti's
variable names) and nothing else. With ``dry_run`` they also get
``DRY_RUN=1``: our scripts then print the commands that would change the
host (``+ ip link set ...``) instead of running them; the fake hypervisor
runs them so (:mod:`ganeti.hypervisor.hv_fake`).

The network data of a NIC on a network comes from the NIC's ``netinfo``
entry (``objects.NIC.netinfo``), the network's object as a dict
(``objects.Network.ToDict()``), which the master adds to the NICs it sends.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import sys
from collections.abc import Iterable, Mapping
from typing import Any

from ganeti import constants, errors, objects, pathutils, utils

__all__ = [
    "ACTION_DOWN",
    "ACTION_UP",
    "BuiltinScriptsDir",
    "NIC_MODE_EXT",
    "NicEnvironment",
    "NicSetupScript",
    "ParseVlan",
    "RunNicScript",
    "ScriptFor",
    "Vlan",
]

ACTION_UP = "up"
ACTION_DOWN = "down"
ACTIONS = frozenset([ACTION_UP, ACTION_DOWN])
#: Ganeti 3.2's mode for networks set up only by the administrator's scripts
NIC_MODE_EXT = "ext"
#: The modes the scripts know (the master may not offer all of them yet)
SCRIPT_MODES = constants.NIC_VALID_MODES | {NIC_MODE_EXT}
#: The variable that makes our scripts print instead of run
DRY_RUN_VAR = "DRY_RUN"
#: Seconds a script gets
SCRIPT_TIMEOUT = 120.0

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


# --- The environment -------------------------------------------------------------

# Variables of a NIC's network (``netinfo`` keys), as Ganeti's network hooks
_NETWORK_ENV = {
    "name": "NETWORK_NAME", "uuid": "NETWORK_UUID", "network": "NETWORK_SUBNET",
    "gateway": "NETWORK_GATEWAY", "network6": "NETWORK_SUBNET6",
    "gateway6": "NETWORK_GATEWAY6", "mac_prefix": "NETWORK_MAC_PREFIX",
}


def _NicMode(nicparams: Mapping[str, Any], iface: str) -> str:
    mode = nicparams.get(constants.NIC_MODE)
    if mode not in SCRIPT_MODES:
        raise errors.HypervisorError(
            f"Invalid mode {mode!r} of the NIC on {iface} (valid:"
            f" {', '.join(sorted(SCRIPT_MODES))})")
    return mode


def _ScriptPath() -> str:
    dirs = [d for d in os.environ.get("PATH", "").split(os.pathsep) if d]
    return os.pathsep.join(dict.fromkeys(dirs + ["/sbin", "/usr/sbin", "/bin", "/usr/bin"]))


def NetworkEnvironment(netinfo: Mapping[str, Any] | None) -> dict[str, str]:
    """The NETWORK_* variables of a NIC's network (``netinfo``, see module)."""
    env: dict[str, str] = {}
    netinfo = netinfo or {}
    for key, var in _NETWORK_ENV.items():
        if netinfo.get(key):
            env[var] = str(netinfo[key])
    if netinfo.get("tags"):
        env["NETWORK_TAGS"] = " ".join(sorted(netinfo["tags"]))
    return env


def NicEnvironment(instance_name: str, index: int, nic: objects.NIC,
                   nicparams: Mapping[str, Any], iface: str,
                   tags: Iterable[str] = (), action: str = ACTION_UP) -> dict[str, str]:
    """The environment of a NIC script (Ganeti's names, doc/network-scripts.rst).

    ``nicparams`` are the NIC's filled parameters (mode, link, vlan); ``tags``
    the instance's. VLAN_ACCESS and VLAN_TRUNKS carry the parsed ``vlan``.

    @raise errors.HypervisorError: for an unknown mode or action, or an
        invalid VLAN
    """
    if action not in ACTIONS:
        raise errors.ProgrammerError(f"Invalid NIC script action {action!r}")
    mode = _NicMode(nicparams, iface)
    link = nicparams.get(constants.NIC_LINK) or ""
    vlan_text = nicparams.get(constants.NIC_VLAN) or ""
    vlan = ParseVlan(vlan_text)
    env = {
        "PATH": _ScriptPath(),
        "ACTION": action,
        "INSTANCE": instance_name,
        "INTERFACE": iface,
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
    if nic.network:
        env["NETWORK"] = nic.network
    env.update(NetworkEnvironment(nic.netinfo))
    return env


# --- The scripts -----------------------------------------------------------------


def NicSetupScript() -> str:
    """The wrapper that picks and runs the script of a mode and action."""
    return pathutils.GetShippedTool("kvm-nic-setup")


def BuiltinScriptsDir() -> str:
    """The directory of our scripts (``<mode>/<action>``, ``net-common``)."""
    source = os.path.join(os.path.dirname(NicSetupScript()), "network")
    if os.path.isdir(source):
        return source
    return os.path.join(sys.prefix, "lib", "ganeti", "network")


def _Executable(path: str) -> bool:
    return os.path.isfile(path) and os.access(path, os.X_OK)


def ScriptFor(action: str) -> str:
    """The program run for ``action``: an older whole replacement
    (``kvm-ifup-custom``, ``kvm-vif-bridge``; ``kvm-ifdown-custom``) when
    the administrator has one, else :func:`NicSetupScript`."""
    if action == ACTION_UP:
        legacy = [pathutils.KVM_IFUP_CUSTOM, pathutils.KVM_VIF_BRIDGE]
    elif action == ACTION_DOWN:
        legacy = [pathutils.KVM_IFDOWN_CUSTOM]
    else:
        raise errors.ProgrammerError(f"Invalid NIC script action {action!r}")
    for path in legacy:
        if _Executable(path):
            return path
    return NicSetupScript()


def RunNicScript(action: str, instance_name: str, index: int, nic: objects.NIC,
                 nicparams: Mapping[str, Any], iface: str, tags: Iterable[str] = (),
                 extra_env: Mapping[str, Any] | None = None, dry_run: bool = False,
                 timeout: float = SCRIPT_TIMEOUT) -> str:
    """Run the ``action`` script of a NIC on interface ``iface``; its output.

    The script (:func:`ScriptFor`) gets ``iface`` as argument and
    :func:`NicEnvironment` plus ``extra_env`` as its whole environment, with
    the configuration and built-in directories for the wrapper
    (``GANETI_CONF_DIR``, ``GANETI_NET_SCRIPTS_DIR``) and, if ``dry_run``,
    ``DRY_RUN=1``.

    @raise errors.HypervisorError: for an invalid mode or VLAN, or when the
        script fails (with its output)
    """
    env = NicEnvironment(instance_name, index, nic, nicparams, iface, tags=tags,
                         action=action)
    env["GANETI_CONF_DIR"] = pathutils.CONF_DIR
    env["GANETI_NET_SCRIPTS_DIR"] = BuiltinScriptsDir()
    if dry_run:
        env[DRY_RUN_VAR] = "1"
    if extra_env:
        env.update({key: str(value) for key, value in extra_env.items()})
    script = ScriptFor(action)
    what = (f"interface {iface} (NIC {index}, mode {env['MODE']}) of instance"
            f" {instance_name}")
    verb = "Configuring" if action == ACTION_UP else "Deconfiguring"
    try:
        result = utils.RunCmd([script, iface], env=env, reset_env=True,
                              timeout=timeout)
    except errors.OpExecError as err:
        raise errors.HypervisorError(f"{verb} {what} failed: {err}") from err
    if result.failed:
        raise errors.HypervisorError(
            f"{verb} {what} failed: {script} {result.fail_reason};"
            f" output: {result.output.strip() or '(none)'}")
    if dry_run:
        for line in result.output.splitlines():
            logging.info("NIC %s script of %s (dry run): %s", action, iface, line)
    return result.output
