"""gnt-group: node group administration (add, remove, rename, list, info,
modify, assign-nodes, evacuate, tags).

``show-ispecs-cmd`` is not available yet.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from ganeti import cli, constants, errors, opcodes, qlang, utils
from ganeti.cli import (
    FIELDS_OPT,
    FORCE_FILTER_OPT,
    FORCE_OPT,
    NOHDR_OPT,
    SEP_OPT,
    SUBMIT_OPTS,
    UNITS_OPT,
    VERBOSE_OPT,
    ArgGroup,
    ArgNode,
    ArgUnknown,
    ToStderr,
    ToStdout,
    cli_option,
)
from ganeti.cli import ipolicy as cli_ipolicy
from ganeti.cli import tags
from ganeti.cli.options import EARLY_RELEASE_OPT, IALLOCATOR_OPT, TO_GROUP_OPT
from ganeti.client import cluster_admin, state_options
from ganeti.client.gnt_node import ParseKeyVal, RunJobList

#: Default fields of "gnt-group list" (Ganeti's)
_LIST_DEF_FIELDS = ["name", "node_cnt", "pinst_cnt", "alloc_policy", "ndparams"]

#: Fields "gnt-group info" reads, in this order
_INFO_FIELDS = ["name", "uuid", "alloc_policy", "ndparams", "custom_ndparams",
                "diskparams", "custom_diskparams", "ipolicy", "custom_ipolicy"]


def ParseDiskParams(text: str) -> tuple[str, dict[str, Any]]:
    """``template:key=value,...`` (one ``-D`` option) as (template, params)."""
    template, sep, rest = text.partition(":")
    if not sep or not template:
        raise argparse.ArgumentTypeError(
            f"invalid value '{text}': expected disk-template:param=value,...")
    return template, ParseKeyVal(rest)


# --- add / remove / rename / assign-nodes ----------------------------------------------------

def AddGroup(opts: Any, args: list[str]) -> int:
    """Create a node group."""
    ipolicy = cli_ipolicy.CreateIPolicyFromOpts(opts)
    op = opcodes.OpGroupAdd(
        group_name=args[0], alloc_policy=opts.alloc_policy, ndparams=opts.ndparams,
        diskparams=state_options.Grouped(opts.diskparams), ipolicy=ipolicy or None,
        hv_state=state_options.HvStateFromOpts(opts.hv_state),
        disk_state=state_options.DiskStateFromOpts(opts.disk_state))
    cli.SubmitOrSend(op, opts)
    return constants.EXIT_SUCCESS


def RemoveGroup(opts: Any, args: list[str]) -> int:
    """Remove an empty node group."""
    cli.SubmitOrSend(opcodes.OpGroupRemove(group_name=args[0]), opts)
    return constants.EXIT_SUCCESS


def RenameGroup(opts: Any, args: list[str]) -> int:
    """Rename a node group."""
    op = opcodes.OpGroupRename(group_name=args[0], new_name=args[1])
    cli.SubmitOrSend(op, opts)
    return constants.EXIT_SUCCESS


def AssignNodes(opts: Any, args: list[str]) -> int:
    """Move nodes into a node group."""
    op = opcodes.OpGroupAssignNodes(group_name=args[0], nodes=args[1:],
                                    force=opts.force)
    cli.SubmitOrSend(op, opts)
    return constants.EXIT_SUCCESS


# --- list / list-fields / info -------------------------------------------------------------

def _FormatList(value: Any) -> str:
    return ", ".join(str(item) for item in value) if value else ""


def _FormatDict(value: Any) -> str:
    if not isinstance(value, dict):
        return str(value)
    return ", ".join(f"{key}={val}" for key, val in sorted(value.items()))


_LIST_FORMAT = {
    "node_list": (_FormatList, False),
    "pinst_list": (_FormatList, False),
    "networks": (_FormatList, False),
    "tags": (_FormatList, False),
    "ndparams": (_FormatDict, False),
    "custom_ndparams": (_FormatDict, False),
}


#: List node groups with the selected fields
ListGroups = cli.ListCommand(constants.QR_GROUP, _LIST_DEF_FIELDS, _LIST_FORMAT)
#: Describe the node group fields
ListGroupFields = cli.ListFieldsCommand(constants.QR_GROUP)


def _DiskParamsInfo(custom: Any, filled: Any) -> list[tuple[str, Any]]:
    custom = custom if isinstance(custom, dict) else {}
    filled = filled if isinstance(filled, dict) else {}
    return [(template, cli.FormatParamsDictInfo(custom.get(template, {}), params) or "")
            for template, params in sorted(filled.items())]


def PolicyInfo(custom: dict[str, Any], filled: dict[str, Any],
               is_cluster: bool = False) -> list[tuple[str, Any]]:
    """The "Instance policy" items of an info layout (values the group does
    not set show as "default (...)")."""
    items: list[tuple[str, Any]] = []
    minmax = custom.get(constants.ISPECS_MINMAX) or filled.get(constants.ISPECS_MINMAX) \
        or []
    bounds: list[Any] = []
    for idx, pair in enumerate(minmax):
        entry = []
        for key in (constants.ISPECS_MAX, constants.ISPECS_MIN):
            specs = pair.get(key) or {}
            values = cli.FormatParamsDictInfo(specs if constants.ISPECS_MINMAX in custom else {},
                                 specs)
            entry.append((f"{key}/{idx}", values))
        bounds.append(entry)
    items.append(("bounds specs", bounds))
    std = filled.get(constants.ISPECS_STD) or {}
    if is_cluster or constants.ISPECS_STD in custom:
        items.append(("std", cli.FormatParamsDictInfo(custom.get(constants.ISPECS_STD) or {}, std)))
    dts = ", ".join(filled.get(constants.IPOLICY_DTS) or [])
    items.append(("allowed disk templates",
                  dts if constants.IPOLICY_DTS in custom else f"default ({dts})"))
    for key in (constants.IPOLICY_VCPU_RATIO, constants.IPOLICY_SPINDLE_RATIO):
        value = filled.get(key)
        items.append((key, str(value) if key in custom else f"default ({value})"))
    return items


def GroupInfoItems(row: Sequence[Any]) -> list[tuple[str, Any]]:
    """The "info" layout of one group (a row of _INFO_FIELDS values)."""
    values = dict(zip(_INFO_FIELDS, row))

    def _Dict(key: str) -> dict[str, Any]:
        value = values.get(key)
        return value if isinstance(value, dict) else {}

    return [
        ("Node group", values["name"]),
        ("UUID", values["uuid"]),
        ("Allocation policy", values["alloc_policy"]),
        ("Node parameters", cli.FormatParamsDictInfo(_Dict("custom_ndparams"), _Dict("ndparams"))),
        ("Disk parameters", _DiskParamsInfo(_Dict("custom_diskparams"),
                                            _Dict("diskparams"))),
        ("Instance policy", PolicyInfo(_Dict("custom_ipolicy"), _Dict("ipolicy"))),
    ]


def GroupInfo(opts: Any, args: list[str]) -> int:
    """Show the configuration of node groups (all without arguments)."""
    cl = cli.GetClient()
    result = cl.Query(constants.QR_GROUP, _INFO_FIELDS, qlang.MakeFilter(args, False))
    rows = [[value for _, value in row] for row in result.get("data", [])]
    found = {row[0] for row in rows}
    missing = [name for name in args if name not in found]
    if missing:
        raise errors.OpPrereqError(f"Node group(s) not known: {', '.join(missing)}",
                                   errors.ECODE_NOENT)
    cli.PrintGenericInfo([GroupInfoItems(row) for row in rows])
    return constants.EXIT_SUCCESS


# --- modify ------------------------------------------------------------------------------------

def SetGroupParams(opts: Any, args: list[str]) -> int:
    """Change a node group's parameters."""
    ipolicy = cli_ipolicy.CreateIPolicyFromOpts(opts, allow_default=True)
    diskparams = state_options.Grouped(opts.diskparams)
    hv_state = state_options.HvStateFromOpts(opts.hv_state)
    disk_state = state_options.DiskStateFromOpts(opts.disk_state)
    if all(value is None for value in (opts.ndparams, opts.alloc_policy, diskparams,
                                       hv_state, disk_state)) and not ipolicy:
        ToStderr("Please give at least one of the parameters.")
        return constants.EXIT_FAILURE
    op = opcodes.OpGroupSetParams(
        group_name=args[0], ndparams=opts.ndparams, alloc_policy=opts.alloc_policy,
        diskparams=diskparams, ipolicy=ipolicy or None, hv_state=hv_state,
        disk_state=disk_state)
    result = cli.SubmitOrSend(op, opts)
    if result:
        ToStdout("Modified node group %s", args[0])
        for param, value in result:
            ToStdout(" - %-5s -> %s", param, value)
    return constants.EXIT_SUCCESS


# --- The command table ----------------------------------------------------------------

ALLOC_POLICY_OPT = cli_option(
    "--alloc-policy", dest="alloc_policy", default=None,
    choices=list(constants.VALID_ALLOC_POLICIES), metavar="POLICY",
    help="Allocation policy for the node group"
    f" ({', '.join(constants.VALID_ALLOC_POLICIES)})")
NODE_PARAMS_OPT = cli_option(
    "--node-parameters", dest="ndparams", default=None, type=ParseKeyVal,
    metavar="PARAMS", help="Node parameters (key=value,...)")
DISK_PARAMS_OPT = cli_option(
    "-D", "--disk-parameters", dest="diskparams", default=None, action="append",
    type=ParseDiskParams, metavar="TEMPLATE:PARAM=VALUE,...",
    help="Disk parameters for a disk template (may be repeated)")
HV_STATE_OPT = state_options.HV_STATE_OPT
DISK_STATE_OPT = state_options.DISK_STATE_OPT

SEQUENTIAL_OPT = cli_option("--sequential", dest="sequential", default=False,
                            action="store_true",
                            help="Execute all resulting jobs sequentially")
FORCE_FAILOVER_OPT = cli_option("--force-failover", dest="force_failover",
                                default=False, action="store_true",
                                help="Fail over instead of migrating (no migrations"
                                " are made)")


def EvacuateGroup(opts: Any, args: list[str]) -> int:
    """Move every instance out of a group: the allocator's jobs, submitted
    by the opcode, waited for and counted."""
    op = opcodes.OpGroupEvacuate(group_name=args[0], iallocator=opts.iallocator,
                                 target_groups=opts.to, early_release=opts.early_release,
                                 sequential=opts.sequential,
                                 force_failover=opts.force_failover)
    bad = RunJobList(op, opts, cli.GetClient())
    if bad:
        ToStdout("There were %s errors during the evacuation.", bad)
        return constants.EXIT_FAILURE
    ToStdout("All instances evacuated successfully.")
    return constants.EXIT_SUCCESS


_PARAM_OPTS = [NODE_PARAMS_OPT, ALLOC_POLICY_OPT, DISK_PARAMS_OPT, HV_STATE_OPT,
               DISK_STATE_OPT] + cli_ipolicy.ALL_IPOLICY_OPTS

commands: dict[str, cli.CommandDef] = {
    "add": (
        AddGroup, [ArgGroup(min=1, max=1)], _PARAM_OPTS + SUBMIT_OPTS,
        "[--alloc-policy POLICY] [--node-parameters ndparams] [-D template:params]"
        " [--ipolicy-* ...] [--specs-* ...] <group_name>",
        "Add a new node group to the cluster"),
    "assign-nodes": (
        AssignNodes, [ArgGroup(min=1, max=1), ArgNode(min=1)],
        [FORCE_OPT] + SUBMIT_OPTS,
        "<group_name> <node>...", "Assign nodes to a group"),
    "list": (
        ListGroups, [ArgGroup()],
        [NOHDR_OPT, SEP_OPT, UNITS_OPT, FIELDS_OPT, VERBOSE_OPT, FORCE_FILTER_OPT],
        "[<group_name>...]",
        "Lists the node groups in the cluster. The available fields can be shown"
        " using the \"list-fields\" command (see the man page for details)."
        f" The default list is ({utils.CommaJoin(_LIST_DEF_FIELDS)})."),
    "list-fields": (
        ListGroupFields, [ArgUnknown()], [NOHDR_OPT, SEP_OPT],
        "[fields...]", "Lists all available fields for node groups"),
    "modify": (
        SetGroupParams, [ArgGroup(min=1, max=1)], _PARAM_OPTS + SUBMIT_OPTS,
        "<group_name>", "Alters the parameters of a node group"),
    "remove": (
        RemoveGroup, [ArgGroup(min=1, max=1)], list(SUBMIT_OPTS),
        "<group-name>",
        "Remove an (empty) node group from the cluster"),
    "rename": (
        RenameGroup, [ArgGroup(min=1, max=1), ArgUnknown(min=1, max=1)],
        list(SUBMIT_OPTS), "<group-name> <new-name>", "Rename a node group"),
    "info": (
        GroupInfo, [ArgGroup()], [],
        "[<group_name>...]", "Show group information"),
    "show-ispecs-cmd": (
        cluster_admin.ShowGroupIspecsCmd, [ArgGroup()],
        [cluster_admin.INCLUDE_DEFAULTS_OPT], "[--include-defaults] [<group_name>...]",
        "Shows the command lines recreating the groups' instance policy specs"),
    "evacuate": (
        EvacuateGroup, [ArgGroup(min=1, max=1)],
        [TO_GROUP_OPT, IALLOCATOR_OPT, EARLY_RELEASE_OPT, SEQUENTIAL_OPT,
         FORCE_FAILOVER_OPT, cli.DRY_RUN_OPT, cli.PRIORITY_OPT] + SUBMIT_OPTS,
        "[-I <iallocator>] [--to <group>] <group>",
        "Evacuate all instances within a group"),
}
commands.update(tags.TagCommands(constants.TAG_NODEGROUP))

#: Other names of commands
aliases = {
    "show": "info",
}


def Main(argv: Sequence[str] | None = None) -> int:
    """Run gnt-group."""
    return cli.GenericMain(commands, aliases=aliases, argv=argv)
