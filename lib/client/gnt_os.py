"""gnt-os: the OS definitions of the cluster (list, info, diagnose, modify).

The data comes from ``OpOsDiagnose`` (see :mod:`ganeti.cmdlib.os`);
``modify`` changes the per-OS hypervisor and OS parameters and the hidden
and blacklisted states through ``OpClusterSetParams``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ganeti import cli, constants, errors, opcodes, utils
from ganeti.cli import (
    ARGS_NONE,
    NOHDR_OPT,
    PRIORITY_OPT,
    SUBMIT_OPTS,
    ArgUnknown,
    ToStderr,
    ToStdout,
    cli_option,
)
from ganeti.client.gnt_cluster import ParseIdentKeyVal, ParseKeyVal


def ParseYesNo(text: str) -> bool:
    """"yes" -> True, "no" -> False (Ganeti's bool option type)."""
    value = text.strip().lower()
    if value in ("yes", "true", "on", "1"):
        return True
    if value in ("no", "false", "off", "0"):
        return False
    import argparse
    raise argparse.ArgumentTypeError(f"invalid value '{text}': expected yes or no")


def CalculateOSNames(os_name: str, os_variants: Sequence[str] | None) -> list[str]:
    """The names an OS is used by: "os+variant" for each variant, or "os"."""
    if os_variants:
        return [f"{os_name}+{variant}" for variant in os_variants]
    return [os_name]


def _Diagnose(opts: Any, fields: list[str], names: Sequence[str] = ()) -> Any:
    op = opcodes.OpOsDiagnose(output_fields=fields, names=list(names))
    return cli.SubmitOpCode(op, opts=opts)


def ListOS(opts: Any, args: list[str]) -> int:
    """List the valid OSes (with their variants), hidden and blacklisted
    ones left out."""
    result = _Diagnose(opts, ["name", "variants"])
    if result is None:
        ToStderr("Can't get the OS list")
        return 1
    rows = [[name] for os_name, variants in result
            for name in CalculateOSNames(os_name, variants)]
    headers = None if opts.no_headers else {"name": "Name"}
    for line in cli.GenerateTable(separator=None, headers=headers, fields=["name"],
                                  data=rows, units=None):
        ToStdout("%s", line)
    return constants.EXIT_SUCCESS


def ShowOSInfo(opts: Any, args: list[str]) -> int:
    """Show the details of every OS (or of the OSes named)."""
    fields = ["name", "valid", "variants", "parameters", "api_versions", "blacklisted",
              "hidden", "os_hvp", "osparams", "trusted"]
    result = _Diagnose(opts, fields)
    if result is None:
        ToStderr("Can't get the OS list")
        return 1
    wanted = list(args)
    for (name, valid, variants, parameters, api_versions, blacklisted, hidden,
         os_hvp, osparams, trusted) in result:
        if wanted:
            if name not in wanted:
                continue
            wanted.remove(name)
        ToStdout("%s:", name)
        ToStdout("  - valid: %s", valid)
        ToStdout("  - hidden: %s", hidden)
        ToStdout("  - blacklisted: %s", blacklisted)
        if valid:
            ToStdout("  - API versions:")
            for version in sorted(api_versions):
                ToStdout("    - %s", version)
            ToStdout("  - variants:")
            for variant in variants:
                ToStdout("    - %s", variant)
            ToStdout("  - parameters:")
            for pname, pdoc in parameters:
                ToStdout("    - %s: %s", pname, pdoc)
            ToStdout("  - trusted: %s", trusted)
        _PrintOsParams(os_hvp, osparams)
        ToStdout("")
    if wanted:
        # Not found on the nodes: show what the cluster knows about them
        cluster = cli.GetClient().QueryClusterInfo()
        for name in wanted:
            ToStdout("%s:", name)
            _PrintOsParams((cluster.get("os_hvp") or {}).get(name, {}),
                           (cluster.get("osparams") or {}).get(name, {}))
            ToStdout("")
    return constants.EXIT_SUCCESS


def _PrintOsParams(os_hvp: dict[str, Any], osparams: dict[str, Any]) -> None:
    if os_hvp:
        ToStdout("  - OS-specific hypervisor parameters:")
        for hv_name in sorted(os_hvp):
            ToStdout("    - %s:", hv_name)
            for key, value in sorted(os_hvp[hv_name].items()):
                ToStdout("      - %s: %s", key, value)
    if osparams:
        ToStdout("  - OS parameters:")
        for key, value in sorted(osparams.items()):
            ToStdout("    - %s: %s", key, value)


def _OsStatus(status: bool, diagnose: str) -> str:
    return "valid" if status else f"invalid - {diagnose}"


def _NodeMessage(entry: Sequence[Any]) -> str:
    path, status, diagnose, variants, params, api_versions = entry[:6]
    trusted = entry[6] if len(entry) > 6 else True
    msg = f"{_OsStatus(status, diagnose)} (path: {path})"
    if api_versions:
        msg += f" [API versions: {utils.CommaJoin(api_versions)}]"
    else:
        msg += " [no API versions declared]"
    max_api = max(api_versions) if api_versions else 0
    if max_api >= constants.OS_API_V15:
        msg += f" [variants: {utils.CommaJoin(variants)}]" if variants else " [no variants]"
    if max_api >= constants.OS_API_V20:
        msg += (f" [parameters: {utils.CommaJoin(p[0] for p in params)}]" if params
                else " [no parameters]")
    msg += " [trusted]" if trusted else " [untrusted]"
    return msg


def DiagnoseOS(opts: Any, args: list[str]) -> int:
    """Show the status of every OS on every node; 1 if some OS is not valid
    everywhere."""
    result = _Diagnose(opts, ["name", "valid", "variants", "node_status", "hidden",
                              "blacklisted"])
    if result is None:
        ToStderr("Can't get the OS list")
        return 1
    has_bad = False
    for os_name, _, variants, node_data, hidden, blacklisted in result:
        nodes_valid: dict[str, str] = {}
        nodes_bad: dict[str, str] = {}
        shadowed: dict[str, list[str]] = {}
        for node_name, entries in node_data.items():
            shadowed[node_name] = []
            if not entries:
                nodes_bad[node_name] = "OS not found"
                continue
            first, rest = entries[0], entries[1:]
            (nodes_valid if first[1] else nodes_bad)[node_name] = _NodeMessage(first)
            for entry in rest:
                shadowed[node_name].append(
                    f"    [hidden] path: {entry[0]}, status:"
                    f" {_OsStatus(entry[1], entry[2])}")
        if nodes_valid and not nodes_bad:
            status = "valid"
        elif nodes_bad and not nodes_valid:
            status, has_bad = "invalid", True
        else:
            status, has_bad = "partial valid", True
        line = f"OS: {os_name} [global status: {status}]"
        if hidden:
            line += " [hidden]"
        if blacklisted:
            line += " [blacklisted]"
        ToStdout("%s", line)
        if variants:
            ToStdout("  Variants: [%s]", utils.CommaJoin(variants))
        for messages in (nodes_bad, nodes_valid):
            for node_name in utils.NiceSort(messages):
                ToStdout("  Node: %s, status: %s", node_name, messages[node_name])
                for msg in shadowed[node_name]:
                    ToStdout("%s", msg)
        ToStdout("")
    return int(has_bad)


def ModifyOS(opts: Any, args: list[str]) -> int:
    """Change the per-OS parameters and the hidden/blacklisted states."""
    os_name = args[0]
    if "+" in os_name and (opts.hidden is not None or opts.blacklisted is not None):
        raise errors.OpPrereqError(
            f"The hidden and blacklisted states apply to whole OSes, not to a"
            f" variant like '{os_name}'", errors.ECODE_INVAL)
    os_hvp = None
    if opts.hvparams:
        hvs: dict[str, Any] = {}
        for hv_name, params in opts.hvparams:
            if hv_name in hvs:
                raise errors.OpPrereqError(f"Hypervisor '{hv_name}' given more than once",
                                           errors.ECODE_INVAL)
            hvs[hv_name] = params
        os_hvp = {os_name: hvs}
    osparams = {os_name: opts.osparams} if opts.osparams else None
    osparams_private = ({os_name: opts.osparams_private}
                        if opts.osparams_private else None)
    hidden = None
    if opts.hidden is not None:
        hidden = [[constants.DDM_ADD if opts.hidden else constants.DDM_REMOVE, os_name]]
    blacklisted = None
    if opts.blacklisted is not None:
        blacklisted = [[constants.DDM_ADD if opts.blacklisted else constants.DDM_REMOVE,
                        os_name]]
    if not (os_hvp or osparams or osparams_private or hidden or blacklisted):
        ToStderr("At least one of OS parameters or hypervisor parameters must be passed")
        return 1
    op = opcodes.OpClusterSetParams(os_hvp=os_hvp, osparams=osparams,
                                    osparams_private_cluster=osparams_private,
                                    hidden_os=hidden, blacklisted_os=blacklisted)
    cli.SubmitOrSend(op, opts)
    return constants.EXIT_SUCCESS


HVLIST_OPT = cli_option("-H", "--hypervisor-parameters", dest="hvparams", default=[],
                        action="append", type=ParseIdentKeyVal,
                        metavar="HYPERVISOR:KEY=VAL,...",
                        help="OS-specific hypervisor parameters")
OSPARAMS_OPT = cli_option("-O", "--os-parameters", dest="osparams", default=None,
                          type=ParseKeyVal, metavar="KEY=VAL,...",
                          help="OS parameters (\"-key\" resets one)")
OSPARAMS_PRIVATE_OPT = cli_option("--os-parameters-private", dest="osparams_private",
                                  default=None, type=ParseKeyVal, metavar="KEY=VAL,...",
                                  help="Private OS parameters (not logged)")
HID_OS_OPT = cli_option("--hidden", dest="hidden", default=None, type=ParseYesNo,
                        metavar="yes|no", help="Sets the hidden flag on the OS")
BLK_OS_OPT = cli_option("--blacklisted", dest="blacklisted", default=None,
                        type=ParseYesNo, metavar="yes|no",
                        help="Sets the blacklisted flag on the OS")

commands: dict[str, cli.CommandDef] = {
    "list": (ListOS, ARGS_NONE, [NOHDR_OPT, PRIORITY_OPT], "",
             "Lists all valid operating systems on the cluster"),
    "diagnose": (DiagnoseOS, ARGS_NONE, [PRIORITY_OPT], "",
                 "Diagnose all operating systems"),
    "info": (ShowOSInfo, [ArgUnknown()], [PRIORITY_OPT], "[os...]",
             "Show detailed information about operating systems"),
    "modify": (ModifyOS, [ArgUnknown(min=1, max=1)],
               [HVLIST_OPT, OSPARAMS_OPT, OSPARAMS_PRIVATE_OPT, PRIORITY_OPT,
                HID_OS_OPT, BLK_OS_OPT] + SUBMIT_OPTS,
               "<os>", "Modify the OS parameters"),
}

#: Other names of commands
aliases: dict[str, str] = {}


def Main(argv: Sequence[str] | None = None) -> int:
    """Run gnt-os."""
    return cli.GenericMain(commands, aliases=aliases, argv=argv)
