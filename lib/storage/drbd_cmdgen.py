"""The command lines of DRBD 8.4's ``drbdsetup`` and ``drbdmeta``.

Each function returns one command as a list of arguments; nothing is run
here (:mod:`ganeti.storage.drbd` runs them). As Ganeti does, each minor
lives in a resource of its own named ``resource<minor>`` holding volume 0,
metadata is external at index 0 of the metadata volume, and the disk
parameters of the ``drbd`` template (``constants.DRBD_*``) become options:

- ``disk-barriers``: "n" disables nothing; otherwise each of the letters
  "b", "f", "d" disables disk barriers, flushes or drains;
- ``meta-barriers``: True disables flushes of the metadata device;
- ``resync-rate`` (KiB/s) sets a fixed resync rate, unless
  ``dynamic-resync`` hands the rate to DRBD's controller (``c-*``);
- ``disk-custom`` and ``net-custom``: extra options, split like a shell
  would, appended to ``attach`` and ``connect``.
"""

from __future__ import annotations

import shlex
from typing import Any

from ganeti import constants, errors

DRBDSETUP = "drbdsetup"
DRBDMETA = "drbdmeta"

#: Ganeti's authentication of the peers: HMAC-MD5 over the disk's secret
HMAC_ALG = "md5"
#: What to do after a split brain with no or one primary (Ganeti's choice)
AFTER_SB_0PRI = "discard-zero-changes"
AFTER_SB_1PRI = "consensus"

_BARRIER_OPTIONS = {
    "b": "--disk-barrier=no",
    "f": "--disk-flushes=no",
    "d": "--disk-drain=no",
}
_NO_META_FLUSH_OPTION = "--md-flushes=no"

FAMILY_IPV4 = "ipv4"
FAMILY_IPV6 = "ipv6"


def ResourceName(minor: int) -> str:
    """The resource holding ``minor`` (one resource per minor)."""
    return f"resource{minor}"


def DevPath(minor: int) -> str:
    """The device node of ``minor``."""
    return f"/dev/drbd{minor}"


def FillParams(params: dict[str, Any] | None) -> dict[str, Any]:
    """The disk parameters with the template's defaults for missing keys."""
    result = dict(constants.DISK_DT_DEFAULTS[constants.DT_DRBD8])
    result.update(params or {})
    return result


def BarrierArgs(disabled: str, no_meta_flush: bool) -> list[str]:
    """The options disabling the barriers named by ``disabled``.

    @raise errors.BlockDeviceError: for letters other than "n", "b", "f", "d"
    """
    disabled = disabled or "n"
    if disabled == "n":
        args = []
    else:
        bad = sorted(set(disabled) - set(_BARRIER_OPTIONS))
        if bad:
            raise errors.BlockDeviceError(
                f"Invalid disk-barriers value '{disabled}': use 'n' or letters of"
                f" 'bfd' (unknown: {', '.join(bad)})")
        args = [opt for key, opt in _BARRIER_OPTIONS.items() if key in disabled]
    if no_meta_flush:
        args.append(_NO_META_FLUSH_OPTION)
    return args


def SyncArgs(params: dict[str, Any]) -> list[str]:
    """The resync speed options: fixed rate, or the dynamic controller's."""
    if params[constants.DRBD_DYNAMIC_RESYNC]:
        if not params[constants.DRBD_C_PLAN_AHEAD]:
            raise errors.BlockDeviceError(
                "The dynamic resync controller needs a non-zero c-plan-ahead")
        return [
            "--c-plan-ahead", str(params[constants.DRBD_C_PLAN_AHEAD]),
            "--c-fill-target", str(params[constants.DRBD_C_FILL_TARGET]),
            "--c-delay-target", str(params[constants.DRBD_C_DELAY_TARGET]),
            "--c-max-rate", str(params[constants.DRBD_C_MAX_RATE]),
            "--c-min-rate", str(params[constants.DRBD_C_MIN_RATE]),
        ]
    # DRBD 8.4 enables its controller by default; plan-ahead 0 turns it off
    return ["--c-plan-ahead", "0", "--resync-rate", str(params[constants.DRBD_RESYNC_RATE])]


def _Custom(value: Any, what: str) -> list[str]:
    if not value:
        return []
    try:
        return shlex.split(str(value))
    except ValueError as err:
        raise errors.BlockDeviceError(f"Invalid {what} '{value}': {err}") from err


def NewResourceCmd(minor: int) -> list[str]:
    """Create the resource of ``minor``."""
    return [DRBDSETUP, "new-resource", ResourceName(minor)]


def NewMinorCmd(minor: int) -> list[str]:
    """Create ``minor`` as volume 0 of its resource."""
    return [DRBDSETUP, "new-minor", ResourceName(minor), str(minor), "0"]


def AttachCmd(minor: int, data_dev: str, meta_dev: str, size_mib: int | None,
              params: dict[str, Any]) -> list[str]:
    """Attach the local disk (data and external metadata at index 0)."""
    params = FillParams(params)
    cmd = [DRBDSETUP, "attach", str(minor), data_dev, meta_dev, "0",
           "--on-io-error=detach"]
    if size_mib:
        cmd.extend(["--size", f"{size_mib}m"])
    cmd.extend(BarrierArgs(str(params[constants.DRBD_DISK_BARRIERS]),
                           bool(params[constants.DRBD_META_BARRIERS])))
    cmd.extend(SyncArgs(params))
    cmd.extend(_Custom(params[constants.DRBD_DISK_CUSTOM], "disk-custom"))
    return cmd


def FormatAddress(family: str, host: str, port: int) -> str:
    """``family:host:port`` as drbdsetup takes it (IPv6 hosts in brackets)."""
    if family == FAMILY_IPV6:
        return f"{family}:[{host}]:{port}"
    if family != FAMILY_IPV4:
        raise errors.ProgrammerError(f"Unknown address family '{family}'")
    return f"{family}:{host}:{port}"


def ConnectCmd(minor: int, family: str, lhost: str, lport: int, rhost: str, rport: int,
               params: dict[str, Any], dual_primary: bool = False,
               secret: str | None = None) -> list[str]:
    """Connect the resource of ``minor`` to its peer."""
    params = FillParams(params)
    protocol = str(params[constants.DRBD_PROTOCOL])
    if protocol not in ("A", "B", "C"):
        raise errors.BlockDeviceError(f"Invalid DRBD protocol '{protocol}' (A, B or C)")
    cmd = [DRBDSETUP, "connect", ResourceName(minor),
           FormatAddress(family, lhost, lport), FormatAddress(family, rhost, rport),
           "--protocol", protocol,
           "--after-sb-0pri", AFTER_SB_0PRI,
           "--after-sb-1pri", AFTER_SB_1PRI]
    if dual_primary:
        cmd.append("--allow-two-primaries")
    if secret:
        cmd.extend(["--cram-hmac-alg", HMAC_ALG, "--shared-secret", secret])
    cmd.extend(_Custom(params[constants.DRBD_NET_CUSTOM], "net-custom"))
    return cmd


def DisconnectCmd(family: str, lhost: str, lport: int, rhost: str, rport: int
                  ) -> list[str]:
    """Drop the connection between the two addresses."""
    return [DRBDSETUP, "disconnect", FormatAddress(family, lhost, lport),
            FormatAddress(family, rhost, rport)]


def DetachCmd(minor: int) -> list[str]:
    """Detach the local disk."""
    return [DRBDSETUP, "detach", str(minor)]


def DownCmd(minor: int) -> list[str]:
    """Take the whole resource of ``minor`` down (disk, network, minor)."""
    return [DRBDSETUP, "down", ResourceName(minor)]


def PrimaryCmd(minor: int, force: bool = False) -> list[str]:
    """Make ``minor`` primary; ``force`` makes its data the good copy."""
    cmd = [DRBDSETUP, "primary", str(minor)]
    if force:
        cmd.append("--force")
    return cmd


def SecondaryCmd(minor: int) -> list[str]:
    """Make ``minor`` secondary."""
    return [DRBDSETUP, "secondary", str(minor)]


def ResizeCmd(minor: int, size_mib: int) -> list[str]:
    """Set the size of ``minor`` to ``size_mib`` MiB."""
    return [DRBDSETUP, "resize", str(minor), "--size", f"{size_mib}m"]


def CreateMetaCmd(minor: int, meta_dev: str) -> list[str]:
    """Write fresh metadata (format v08, index 0) to ``meta_dev``."""
    return [DRBDMETA, "--force", DevPath(minor), "v08", meta_dev, "0", "create-md"]


def ShowCmd(minor: int | str) -> list[str]:
    """Print the configuration of ``minor`` (or of every resource: "all")."""
    if minor != "all" and not isinstance(minor, int):
        raise errors.ProgrammerError(f"Invalid minor {minor!r} for drbdsetup show")
    return [DRBDSETUP, "show", str(minor)]


def StatusCmd() -> list[str]:
    """DRBD 9's status of every resource, with minors and progress."""
    return [DRBDSETUP, "status", "--verbose", "--statistics"]
