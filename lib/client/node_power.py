"""Power commands of gnt-node and gnt-cluster: ``gnt-node power``,
``health``, ``powercycle`` and ``failover``, and ``gnt-cluster epo``.

``power`` and ``health`` submit ``OpOobCommand`` (:mod:`ganeti.cmdlib.oob`,
doc/oob.rst) and print a Node/Status table; a node whose helper failed
shows Ganeti's "(no data)"-style text and makes the exit code 1. Powering
nodes off without ``--ignore-status`` first marks them offline in the same
job, as Ganeti does.

``epo`` (emergency power-off) shuts down the instances of the selected
nodes (without recording it, so their administrative state stays up), then
powers the nodes off through their out-of-band helpers; ``epo --on`` powers
them on, waits until their node daemons answer and starts again the
instances marked up whose nodes all answer. The master node is never
powered off or on by it. Unlike Ganeti, which starts every instance of the
nodes on ``--on``, only instances whose administrative state is up are
shut down and started again, so an instance stopped before the emergency
stays stopped.

These commands live here rather than in gnt_node/gnt_cluster, which add
:data:`NODE_COMMANDS` and :data:`CLUSTER_COMMANDS` to their tables.
"""

from __future__ import annotations

import argparse
import socket
import time
from collections.abc import Callable, Sequence
from typing import Any

from ganeti import cli, constants, errors, opcodes, qlang, utils
from ganeti.cli import (
    FORCE_OPT,
    NOHDR_OPT,
    SEP_OPT,
    SUBMIT_OPTS,
    ArgChoice,
    ArgNode,
    ArgUnknown,
    ToStderr,
    ToStdout,
    cli_option,
)
from ganeti.cli.options import IALLOCATOR_OPT, NonNegativeInt, PositiveInt
from ganeti.cli.selectors import ConfirmOperation

#: gnt-node power subcommands -> OOB command
POWER_COMMANDS = {
    "on": constants.OOB_POWER_ON,
    "off": constants.OOB_POWER_OFF,
    "cycle": constants.OOB_POWER_CYCLE,
    "status": constants.OOB_POWER_STATUS,
}
#: Subcommands that need names (or --all) and a confirmation
_ASK = frozenset(["off", "cycle"])

#: Seconds epo --on waits for the node daemons to answer (Ganeti's 15 min)
EPO_REACHABLE_TIMEOUT = 15 * 60.0
#: Seconds between two rounds of reachability checks
EPO_PING_INTERVAL = 5.0
#: Seconds one connection attempt may take
EPO_PING_TIMEOUT = 2.0


def _NonNegativeFloat(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid number {text!r}") from None
    if value < 0 or value != value:
        raise argparse.ArgumentTypeError(f"must not be negative: {text!r}")
    return value


OOB_TIMEOUT_OPT = cli_option("--oob-timeout", dest="oob_timeout", type=PositiveInt,
                             default=constants.OOB_TIMEOUT, metavar="SECONDS",
                             help="Maximum time to wait for the out-of-band helper")
POWER_DELAY_OPT = cli_option("--power-delay", dest="power_delay",
                             type=_NonNegativeFloat, default=constants.OOB_POWER_DELAY,
                             metavar="SECONDS",
                             help="Time in seconds to wait between powering on"
                             " nodes")
IGNORE_STATUS_OPT = cli_option("--ignore-status", dest="ignore_status", default=False,
                               action="store_true",
                               help="Ignore the offline status of the nodes (power"
                               " them off without marking them offline)")
ALL_OPT = cli_option("--all", dest="show_all", default=False, action="store_true",
                     help="Select all nodes (power off/cycle: all but the master)")
AUTO_PROMOTE_OPT = cli_option("--auto-promote", dest="auto_promote", default=False,
                              action="store_true",
                              help="Automatically promote master candidates as"
                              " needed when marking nodes offline")
YES_OPT = cli_option("--yes", dest="confirm", default=False, action="store_true",
                     help="Do not ask for confirmation")
IGNORE_CONSIST_OPT = cli_option("--ignore-consistency", dest="ignore_consistency",
                                default=False, action="store_true",
                                help="Ignore the consistency of the disks on the"
                                " secondary")
ON_OPT = cli_option("--on", dest="on", default=False, action="store_true",
                    help="Recover from an emergency power-off")
GROUPS_OPT = cli_option("--groups", dest="groups", default=False, action="store_true",
                        help="The arguments are node groups")
EPO_ALL_OPT = cli_option("--all", dest="show_all", default=False, action="store_true",
                         help="Act on the whole cluster")
SHUTDOWN_TIMEOUT_OPT = cli_option("--shutdown-timeout", dest="shutdown_timeout",
                                  type=NonNegativeInt,
                                  default=constants.DEFAULT_SHUTDOWN_TIMEOUT,
                                  metavar="SECONDS",
                                  help="Maximum time to wait for instance shutdown")


# --- Queries ----------------------------------------------------------------------------

def _Query(cl: Any, resource: str, fields: list[str],
           names: Sequence[str] | None) -> list[list[Any]]:
    """Rows of values (None where the value is unavailable) of the named
    items (all with no names); OpPrereqError naming unknown ones."""
    qfilter = qlang.MakeFilter(list(names), False) if names else None
    result = cl.Query(resource, ["name", *fields], qfilter)
    rows = [[value if status == constants.RS_NORMAL else None
             for status, value in row]
            for row in (result.get("data", []) if isinstance(result, dict) else [])]
    if names:
        found = [str(row[0]) for row in rows]
        unknown = [name for name in names
                   if not any(f == name or f.startswith(name + ".") for f in found)]
        if unknown:
            what = "Node group" if resource == constants.QR_GROUP else "Node"
            raise errors.OpPrereqError(
                f"{what}{'s' if len(unknown) > 1 else ''} {utils.CommaJoin(unknown)}"
                " not known", errors.ECODE_NOENT)
    return rows


def _Table(opts: Any, rows: list[list[str]]) -> None:
    headers = None if opts.no_headers else {"node": "Node", "status": "Status"}
    for line in cli.GenerateTable(headers=headers, fields=["node", "status"],
                                  separator=opts.separator, data=rows):
        ToStdout(line)


def _ResultRows(result: Any) -> list[tuple[str, int, Any]]:
    """(node, status, answer) of each row of an OpOobCommand result."""
    rows = []
    for (_, node), (status, answer) in result:
        rows.append((node, status, answer))
    return rows


# --- gnt-node power / health ------------------------------------------------------------

def PowerNode(opts: Any, args: list[str]) -> int:
    """gnt-node power on|off|cycle|status [nodes...]."""
    subcommand, names = args[0], list(args[1:])
    if subcommand not in POWER_COMMANDS:
        ToStderr("power subcommand %s not supported.", subcommand)
        return constants.EXIT_FAILURE
    command = POWER_COMMANDS[subcommand]
    cl = cli.GetClient()
    if subcommand in _ASK:
        if names and opts.show_all:
            ToStderr("Give node names or --all, not both")
            return constants.EXIT_FAILURE
        if not names:
            if not opts.show_all:
                ToStderr("Please provide at least one node for this command")
                return constants.EXIT_FAILURE
            names = [row[0] for row in _Query(cl, constants.QR_NODE, ["master"], None)
                     if not row[1]]
            if not names:
                ToStderr("There is no node but the master")
                return constants.EXIT_FAILURE
        if not opts.force and not ConfirmOperation(names, "nodes",
                                                       f"power {subcommand}"):
            return constants.EXIT_FAILURE
    ops: list[Any] = []
    if command == constants.OOB_POWER_OFF and not opts.ignore_status:
        ops.extend(opcodes.OpNodeSetParams(node_name=name, offline=True,
                                           auto_promote=opts.auto_promote)
                   for name in names)
    ops.append(opcodes.OpOobCommand(node_names=names, command=command,
                                    ignore_status=opts.ignore_status,
                                    timeout=opts.oob_timeout,
                                    power_delay=opts.power_delay))
    cli.SetGenericOpcodeOpts(ops, opts)
    job_id = cli.SendJob(ops, cl=cl)
    result = cli.PollJob(job_id, cl=cl)[-1]
    errs = 0
    rows = []
    for node, status, answer in _ResultRows(result):
        if status != constants.RS_NORMAL:
            errs += 1
            rows.append([node, cli.FormatResultError(status, True)])
        elif command == constants.OOB_POWER_STATUS:
            powered = answer[constants.OOB_POWER_STATUS_POWERED]
            rows.append([node, "powered" if powered else "unpowered"])
        else:
            rows.append([node, "invoked"])
    _Table(opts, rows)
    return constants.EXIT_FAILURE if errs else constants.EXIT_SUCCESS


def Health(opts: Any, args: list[str]) -> int:
    """gnt-node health [nodes...]: one line per item, ``item=status``."""
    op = opcodes.OpOobCommand(node_names=list(args), command=constants.OOB_HEALTH,
                              timeout=opts.oob_timeout)
    result = cli.SubmitOpCode(op, opts=opts)
    errs = 0
    rows = []
    for node, status, answer in _ResultRows(result):
        if status != constants.RS_NORMAL:
            errs += 1
            rows.append([node, cli.FormatResultError(status, True)])
            continue
        items = [f"{item}={item_status}" for item, item_status in answer] or [""]
        rows.append([node, items[0]])
        rows.extend(["", item] for item in items[1:])
    _Table(opts, rows)
    return constants.EXIT_FAILURE if errs else constants.EXIT_SUCCESS


# --- gnt-node powercycle / failover -------------------------------------------------------

def PowercycleNode(opts: Any, args: list[str]) -> int:
    """Hard-reset a node through its hypervisor (after a confirmation)."""
    node = args[0]
    if not opts.confirm and not cli.AskUser(
            f"Are you sure you want to hard powercycle node {node}?"):
        return constants.EXIT_CONFIRMATION
    result = cli.SubmitOrSend(opcodes.OpNodePowercycle(node_name=node, force=opts.force),
                              opts)
    if result:
        ToStderr(str(result))
    return constants.EXIT_SUCCESS


def FailoverNode(opts: Any, args: list[str]) -> int:
    """Fail over every primary instance of a node to its secondary (one job
    per instance)."""
    cl = cli.GetClient()
    rows = _Query(cl, constants.QR_NODE, ["pinst_list"], args[:1])
    node, instances = rows[0][0], utils.NiceSort(rows[0][1] or [])
    if not instances:
        ToStdout("No primary instances on node %s, exiting.", node)
        return constants.EXIT_SUCCESS
    if not opts.force and not cli.AskUser(
            "Fail over instance(s) " + ",".join(f"'{name}'" for name in instances) + "?"):
        return constants.EXIT_CONFIRMATION
    jex = cli.JobExecutor(cl=cl, opts=opts)
    for name in instances:
        jex.QueueJob(name, opcodes.OpInstanceFailover(
            instance_name=name, ignore_consistency=opts.ignore_consistency,
            iallocator=opts.iallocator))
    results = jex.GetResults()
    bad = sum(1 for ok, _ in results if not ok)
    if bad:
        ToStdout("There were errors during the failover:\n%d error(s) out of %d"
                 " instance(s).", bad, len(results))
        return constants.EXIT_FAILURE
    ToStdout("All %d instance(s) failed over successfully.", len(results))
    return constants.EXIT_SUCCESS


# --- gnt-cluster epo ------------------------------------------------------------------------

def _OobPower(opts: Any, nodes: list[str], power: bool, cl: Any) -> bool:
    """Power ``nodes`` on or off; False (after saying which) on a failure."""
    op = opcodes.OpOobCommand(
        node_names=nodes, command=constants.OOB_POWER_ON if power else constants.OOB_POWER_OFF,
        ignore_status=True, timeout=opts.oob_timeout, power_delay=opts.power_delay)
    result = cli.SubmitOpCode(op, cl=cl, opts=opts)
    ok = True
    for node, status, _ in _ResultRows(result):
        if status != constants.RS_NORMAL:
            ok = False
            ToStderr("There was a problem changing power for %s, please investigate",
                     node)
    return ok


def _InstanceStart(opts: Any, instances: list[str], start: bool, cl: Any) -> bool:
    """Start or (without recording it) stop ``instances``, one job each."""
    if not instances:
        return True
    verb, done, doing = (("startup", "started", "starting") if start
                         else ("shutdown", "stopped", "stopping"))
    jex = cli.JobExecutor(cl=cl, opts=opts)
    for name in instances:
        ToStdout("Submit %s of instance %s", verb, name)
        if start:
            op: Any = opcodes.OpInstanceStartup(instance_name=name)
        else:
            op = opcodes.OpInstanceShutdown(instance_name=name, no_remember=True,
                                            timeout=opts.shutdown_timeout)
        jex.QueueJob(name, op)
    results = jex.GetResults()
    bad = sum(1 for ok, _ in results if not ok)
    if bad:
        ToStderr("There were errors while %s instances:\n%d error(s) out of %d"
                 " instance(s)", doing, bad, len(results))
        return False
    ToStdout("All instances have been %s successfully", done)
    return True


def NodeReachable(address: str, port: int) -> bool:
    """Whether something accepts TCP connections at address:port."""
    try:
        with socket.create_connection((address, port), timeout=EPO_PING_TIMEOUT):
            return True
    except OSError:
        return False


def _WaitAndStart(opts: Any, endpoints: dict[str, tuple[str, int]],
                  inst_map: dict[str, set[str]], cl: Any,
                  reachable_fn: Callable[[str, int], bool] = NodeReachable,
                  sleep_fn: Callable[[float], None] = time.sleep,
                  now_fn: Callable[[], float] = time.monotonic) -> bool:
    """Start each instance once all its nodes answer; False if some never
    did within :data:`EPO_REACHABLE_TIMEOUT`."""
    pending = dict(inst_map)
    down = set(endpoints)
    deadline = now_fn() + EPO_REACHABLE_TIMEOUT
    ok = True
    while True:
        for node in sorted(down):
            if reachable_fn(*endpoints[node]):
                down.discard(node)
        ready = utils.NiceSort(name for name, nodes in pending.items()
                               if not nodes & down)
        for name in ready:
            del pending[name]
        if ready and not _InstanceStart(opts, ready, True, cl):
            ok = False
        if not pending:
            return ok
        if now_fn() >= deadline:
            ToStderr("Nodes %s did not come back within %d seconds",
                     utils.CommaJoin(utils.NiceSort(down)), EPO_REACHABLE_TIMEOUT)
            return False
        sleep_fn(EPO_PING_INTERVAL)


def Epo(opts: Any, args: list[str]) -> int:
    """Emergency power-off (or, with --on, recovery) of nodes, groups or
    the whole cluster."""
    if opts.groups and opts.show_all:
        ToStderr("Only one of --groups or --all are allowed")
        return constants.EXIT_FAILURE
    if args and opts.show_all:
        ToStderr("Arguments in combination with --all are not allowed")
        return constants.EXIT_FAILURE
    if not args and not opts.show_all:
        ToStderr("Give node names, --groups with group names, or --all")
        return constants.EXIT_FAILURE
    cl = cli.GetClient()
    if opts.groups:
        names = sorted({node for row in _Query(cl, constants.QR_GROUP, ["node_list"], args)
                        for node in row[1] or []})
        if not names:
            ToStderr("The groups %s have no nodes", utils.CommaJoin(args))
            return constants.EXIT_FAILURE
    else:
        names = list(args)
    rows = _Query(cl, constants.QR_NODE,
                  ["master", "pinst_list", "sinst_list", "powered", "offline",
                   "noded_address", "noded_port"], names or None)
    up = {row[0] for row in _Query(cl, constants.QR_INSTANCE, ["admin_state"], None)
          if row[1] == constants.ADMINST_UP}
    all_nodes = [row[0] for row in rows]
    nodes: list[str] = []
    inst_map: dict[str, set[str]] = {}
    endpoints: dict[str, tuple[str, int]] = {}
    for (node, master, pinsts, sinsts, powered, offline, address, port) in rows:
        if not offline:
            for inst in (pinsts or []) + (sinsts or []):
                if inst in up:
                    # the master is up all along: no need to wait for it
                    inst_map.setdefault(inst, set()).update([] if master else [node])
        if master:
            if not opts.show_all and not opts.on:
                ToStderr("%s is the master node, please do a master-failover to another"
                         " node not affected by the EPO or use --all if you intend to"
                         " shutdown the whole cluster", node)
                return constants.EXIT_FAILURE
            if not opts.on:
                ToStdout("Node %s is the master node; it is left running, power it"
                         " off manually when the others are off", node)
            continue
        endpoints[node] = (address or "", int(port or constants.DEFAULT_NODED_PORT))
        if powered is None:
            ToStdout("Node %s does not support out-of-band handling, it can not be"
                     " handled in a fully automated manner", node)
        elif powered == opts.on:
            ToStdout("Node %s is already in desired power state, skipping", node)
        elif not offline or powered:
            nodes.append(node)
    if not (opts.force or ConfirmOperation(all_nodes, "nodes", "epo")):
        return constants.EXIT_FAILURE
    if opts.on:
        if nodes and not _OobPower(opts, nodes, True, cl):
            ToStderr("Not all nodes seem to get back up, investigate and start"
                     " manually if needed")
        if not _WaitAndStart(opts, endpoints, inst_map, cl):
            ToStderr("Please investigate and start stopped instances manually")
            return constants.EXIT_FAILURE
        return constants.EXIT_SUCCESS
    if not _InstanceStart(opts, utils.NiceSort(inst_map), False, cl):
        ToStderr("Please investigate and stop instances manually before continuing")
        return constants.EXIT_FAILURE
    if nodes and not _OobPower(opts, nodes, False, cl):
        return constants.EXIT_FAILURE
    return constants.EXIT_SUCCESS


# --- Command tables -------------------------------------------------------------------------

NODE_COMMANDS: dict[str, Any] = {
    "power": (
        PowerNode,
        [ArgChoice(min=1, max=1, choices=tuple(POWER_COMMANDS)), ArgNode()],
        [FORCE_OPT, NOHDR_OPT, SEP_OPT, OOB_TIMEOUT_OPT, POWER_DELAY_OPT,
         IGNORE_STATUS_OPT, ALL_OPT, AUTO_PROMOTE_OPT, cli.PRIORITY_OPT],
        "[--force] [--ignore-status] [--all] [--power-delay SECONDS]"
        " on|off|cycle|status [nodes...]",
        "Change the node power state through its out-of-band helper"),
    "health": (
        Health, [ArgNode()],
        [NOHDR_OPT, SEP_OPT, OOB_TIMEOUT_OPT, cli.PRIORITY_OPT],
        "[nodes...]", "Show the health of the nodes as their out-of-band helpers"
        " report it"),
    "powercycle": (
        PowercycleNode, [ArgNode(min=1, max=1)],
        [YES_OPT, FORCE_OPT, cli.PRIORITY_OPT] + SUBMIT_OPTS,
        "[--yes] [--force] <node_name>",
        "Tries to forcefully powercycle a node"),
    "failover": (
        FailoverNode, [ArgNode(min=1, max=1)],
        [FORCE_OPT, IGNORE_CONSIST_OPT, IALLOCATOR_OPT, cli.PRIORITY_OPT],
        "[-f] [--ignore-consistency] [-I iallocator] <node>",
        "Stops the primary instances on a node and starts them on their"
        " secondary node (only for instances with drbd disk template)"),
}

CLUSTER_COMMANDS: dict[str, Any] = {
    "epo": (
        Epo, [ArgUnknown()],
        [FORCE_OPT, ON_OPT, GROUPS_OPT, EPO_ALL_OPT, OOB_TIMEOUT_OPT,
         SHUTDOWN_TIMEOUT_OPT, POWER_DELAY_OPT],
        "[--on] [--groups|--all] [--power-delay SECONDS] [--shutdown-timeout SECONDS]"
        " [names...]",
        "Performs an emergency power-off on given args"),
}
