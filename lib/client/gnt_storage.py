"""gnt-storage: the ExtStorage providers of the cluster (diagnose, info).

The data comes from ``OpExtStorageDiagnose`` (see :mod:`ganeti.cmdlib.extstorage`);
a provider's validity is per node group. The output is Ganeti's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ganeti import cli, constants, opcodes, utils
from ganeti.cli import ARGS_NONE, PRIORITY_OPT, ArgUnknown, ToStderr, ToStdout


def _Diagnose(opts: Any, fields: list[str]) -> Any:
    op = opcodes.OpExtStorageDiagnose(output_fields=fields, names=[])
    return cli.SubmitOpCode(op, opts=opts)


def ShowExtStorageInfo(opts: Any, args: list[str]) -> int:
    """Show each provider (or those named): the node groups it is valid for
    and its parameters."""
    result = _Diagnose(opts, ["name", "nodegroup_status", "parameters"])
    if not result:
        ToStderr("Can't get the ExtStorage providers list")
        return 1
    wanted = list(args)
    for name, nodegroup_status, parameters in result:
        if wanted:
            if name not in wanted:
                continue
            wanted.remove(name)
        ToStdout("%s:", name)
        valid = [group for group, status in nodegroup_status.items() if status]
        if valid:
            ToStdout("  - Valid for nodegroups:")
            for group in utils.NiceSort(valid):
                ToStdout("      %s", group)
            ToStdout("  - Supported parameters:")
            for pname, pdoc in parameters:
                ToStdout("      %s: %s", pname, pdoc)
        else:
            ToStdout("  - Invalid for all nodegroups")
        ToStdout("")
    for name in wanted:
        ToStdout("%s: Not Found", name)
        ToStdout("")
    return constants.EXIT_SUCCESS


def _NodeMessage(entry: Sequence[Any]) -> str:
    path, status, diagnose, params = entry[:4]
    msg = "valid" if status else f"invalid - {diagnose}"
    msg += f" (path: {path})"
    if params:
        msg += f" [parameters: {utils.CommaJoin(p[0] for p in params)}]"
    else:
        msg += " [no parameters]"
    return msg


def DiagnoseExtStorage(opts: Any, args: list[str]) -> int:
    """Show the state of every provider on every node and in every node group."""
    result = _Diagnose(opts, ["name", "node_status", "nodegroup_status"])
    if not result:
        ToStderr("Can't get the list of ExtStorage providers")
        return 1
    for name, node_data, nodegroup_data in result:
        nodes_valid: dict[str, str] = {}
        nodes_bad: dict[str, str] = {}
        for node_name, entries in node_data.items():
            if not entries:
                nodes_bad[node_name] = "ExtStorage provider not found"
                continue
            (nodes_valid if entries[0][1] else nodes_bad)[node_name] = \
                _NodeMessage(entries[0])
        ToStdout("Provider: %s", name)
        ToStdout("---")
        for messages in (nodes_valid, nodes_bad):
            for node_name in utils.NiceSort(messages):
                ToStdout("  Node: %s, status: %s", node_name, messages[node_name])
        ToStdout("  --")
        for wanted in (True, False):
            for group in utils.NiceSort(g for g, status in nodegroup_data.items()
                                        if bool(status) == wanted):
                ToStdout("  For nodegroup: %s --> %s", group,
                         "valid" if wanted else "invalid")
        ToStdout("")
    return constants.EXIT_SUCCESS


commands: dict[str, cli.CommandDef] = {
    "diagnose": (DiagnoseExtStorage, ARGS_NONE, [PRIORITY_OPT], "",
                 "Diagnose all ExtStorage providers"),
    "info": (ShowExtStorageInfo, [ArgUnknown()], [PRIORITY_OPT], "[provider...]",
             "Show info about ExtStorage providers"),
}

#: Other names of commands
aliases: dict[str, str] = {}


def Main(argv: Sequence[str] | None = None) -> int:
    """Run gnt-storage."""
    return cli.GenericMain(commands, aliases=aliases, argv=argv)
