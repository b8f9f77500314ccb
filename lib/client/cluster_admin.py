"""gnt-cluster's master and version commands, and ``show-ispecs-cmd``.

Kept apart from :mod:`ganeti.client.gnt_cluster` (which registers them in
its ``commands`` table) to keep that module small:

- ``master-ping``: exit 0 when the master daemon answers a cluster query,
  1 otherwise (as Ganeti);
- ``rename``, ``activate-master-ip``, ``deactivate-master-ip``: jobs
  (``OpClusterRename``, ``OpClusterActivateMasterIp``,
  ``OpClusterDeactivateMasterIp``), confirmed unless ``-f``/``--yes``;
- ``upgrade``: only one version of our software is ever installed, so
  ``--to`` the running version is a no-op and any other version is refused;
  ``--resume`` has nothing to resume;
- ``show-ispecs-cmd`` (also gnt-group's): the command line recreating the
  instance policy's specs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ganeti import cli, constants, errors, opcodes, qlang
from ganeti.cli import ToStderr, ToStdout, cli_option

# --- master-ping ----------------------------------------------------------------------


def MasterPing(opts: Any, args: list[str]) -> int:
    """Exit 0 if the master daemon answers a basic query, 1 otherwise."""
    try:
        cli.GetClient().QueryClusterInfo()
    except Exception as err:  # noqa: BLE001 - any failure means "not alive"
        ToStderr("Error while pinging master: %s", err)
        return constants.EXIT_FAILURE
    return constants.EXIT_SUCCESS


# --- rename, master IP ------------------------------------------------------------------

def RenameCluster(opts: Any, args: list[str]) -> int:
    """Rename the cluster (its master IP follows the new name's address)."""
    new_name = args[0]
    if not opts.force:
        old_name = cli.GetClient().QueryConfigValues(["cluster_name"])[0]
        if not cli.AskUser(
                f"This renames the cluster from '{old_name}' to '{new_name}'. If you"
                " reach the cluster through its name, the connection may break while"
                " the master IP moves and the change may not complete. Continue?"):
            return constants.EXIT_FAILURE
    op = opcodes.OpClusterRename(name=new_name)
    result = cli.SubmitOrSend(op, opts)
    if result:
        ToStdout("Cluster renamed to %s", result)
    return constants.EXIT_SUCCESS


def ActivateMasterIp(opts: Any, args: list[str]) -> int:
    """Bring up the master IP on the master node."""
    cli.SubmitOrSend(opcodes.OpClusterActivateMasterIp(), opts)
    return constants.EXIT_SUCCESS


def DeactivateMasterIp(opts: Any, args: list[str]) -> int:
    """Take down the master IP (asks first unless ``--yes``)."""
    if not opts.confirm and not cli.AskUser(
            "This takes down the master IP: connections through it, including"
            " this one if it uses it, break. Continue?"):
        return constants.EXIT_FAILURE
    cli.SubmitOrSend(opcodes.OpClusterDeactivateMasterIp(), opts)
    return constants.EXIT_SUCCESS


YES_OPT = cli_option("--yes", dest="confirm", default=False, action="store_true",
                     help="Don't ask for confirmation")

# --- upgrade ----------------------------------------------------------------------------

_VERSION_RE = re.compile(r"^(\d+)\.(\d+)(?:\.(\d+))?$")


def _ParseVersion(text: str) -> tuple[int, ...]:
    match = _VERSION_RE.match(text.strip())
    if not match:
        raise errors.OpPrereqError(
            f"Invalid version '{text}': expected MAJOR.MINOR or MAJOR.MINOR.REVISION",
            errors.ECODE_INVAL)
    return tuple(int(part) for part in match.groups() if part is not None)


def UpgradeGanetiCommand(opts: Any, args: list[str]) -> int:
    """``upgrade --to VERSION`` or ``upgrade --resume``.

    Only the running version is installed (there is no side-by-side
    installation to switch to), so upgrading to it does nothing and every
    other version is refused before anything changes.
    """
    if (opts.to is None) == (not opts.resume):
        ToStderr("Exactly one of --to and --resume must be given")
        return constants.EXIT_FAILURE
    if opts.resume:
        ToStdout("No upgrade in progress: nothing to resume")
        return constants.EXIT_SUCCESS
    wanted = _ParseVersion(opts.to)
    running = _ParseVersion(constants.RELEASE_VERSION.split("~")[0].split("-")[0])
    if wanted == running[:len(wanted)]:
        ToStdout("The cluster already runs version %s: nothing to do",
                 constants.RELEASE_VERSION)
        return constants.EXIT_SUCCESS
    ToStderr("Cannot upgrade to version %s: only version %s is installed and this"
             " implementation switches between no other versions", opts.to,
             constants.RELEASE_VERSION)
    return constants.EXIT_FAILURE


UPGRADE_OPTS = [
    cli_option("--to", dest="to", default=None, metavar="VERSION",
               help="Version to switch the cluster to"),
    cli_option("--resume", dest="resume", default=False, action="store_true",
               help="Resume an interrupted upgrade"),
]

# --- show-ispecs-cmd --------------------------------------------------------------------


def _FormatSpecs(specs: Mapping[str, Any]) -> str:
    return ",".join(f"{key}={specs[key]}" for key in sorted(specs))


def FormatIPolicySpecsCmd(ipolicy: Mapping[str, Any], with_std: bool) -> list[str]:
    """The ``--ipolicy-std-specs``/``--ipolicy-bounds-specs`` arguments of a policy."""
    parts: list[str] = []
    std = ipolicy.get(constants.ISPECS_STD)
    if with_std and std:
        parts.extend(["--ipolicy-std-specs", _FormatSpecs(std)])
    minmax = ipolicy.get(constants.ISPECS_MINMAX)
    if minmax:
        pairs = [f"{constants.ISPECS_MIN}:{_FormatSpecs(pair[constants.ISPECS_MIN])}/"
                 f"{constants.ISPECS_MAX}:{_FormatSpecs(pair[constants.ISPECS_MAX])}"
                 for pair in minmax]
        parts.extend(["--ipolicy-bounds-specs", "//".join(pairs)])
    return parts


def ShowClusterIspecsCmd(opts: Any, args: list[str]) -> int:
    """Print the ``gnt-cluster init`` line recreating the cluster's specs."""
    info = cli.GetClient().QueryClusterInfo()
    parts = ["gnt-cluster", "init", *FormatIPolicySpecsCmd(info.get("ipolicy") or {}, True),
             info["name"]]
    ToStdout("%s", " ".join(parts))
    return constants.EXIT_SUCCESS


def ShowGroupIspecsCmd(opts: Any, args: list[str]) -> int:
    """Print a ``gnt-group add`` line per group recreating its specs.

    Without ``--include-defaults`` only specs the group overrides appear.
    """
    cl = cli.GetClient()
    result = cl.Query(constants.QR_GROUP, ["name", "ipolicy", "custom_ipolicy"],
                      qlang.MakeFilter(args, False))
    rows = [[value for _, value in row] for row in result.get("data", [])]
    missing = sorted(set(args) - {row[0] for row in rows})
    if missing:
        raise errors.OpPrereqError(f"Node group(s) not known: {', '.join(missing)}",
                                   errors.ECODE_NOENT)
    for name, full, custom in sorted(rows, key=lambda row: row[0]):
        policy = (full if opts.include_defaults else custom) or {}
        ToStdout("%s", " ".join(["gnt-group", "add",
                                 *FormatIPolicySpecsCmd(policy, False), name]))
    return constants.EXIT_SUCCESS


INCLUDE_DEFAULTS_OPT = cli_option(
    "--include-defaults", dest="include_defaults", default=False, action="store_true",
    help="Include the specs inherited from the cluster")
