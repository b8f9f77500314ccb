"""hbal: the cluster balancer (hbal(1)).

``hbal {backend options} [algorithm options] [reporting options]`` loads
the cluster (see :mod:`ganeti.htools.cli`; one node group, ``-G`` when
there are several), computes moves lowering the group's score
(:mod:`ganeti.htools.balance`) and prints them as it finds them::

    Loaded 4 nodes, 8 instances
    Initial score: 15.11350236
    Trying to minimize the CV...
        1. inst1 node1:node2 => node3:node2  12.90265884 a=f r:node3 f
        2. inst2 node1:node2 => node4:node1  10.56152740 a=r:node4 f
    ...
        8. inst7 node1:node2 => node1:node4   0.06250000 a=r:node4
    Cluster score improved from 15.11350236 to 0.06250000

Names are shown without the domain all node and instance names share.
``-C`` then prints the ``gnt-instance`` commands of each jobset (moves
touching distinct nodes; ``-C FILE`` writes them as a shell script
instead), ``-X`` runs the jobsets through luxi: the moves of a jobset as
parallel jobs (one job of one to three opcodes per move), jobset after
jobset, stopping at the first jobset with a failed job. ``-S FILE`` saves
the state before and after to ``FILE.original`` and ``FILE.balanced``.

The dynamic utilisation of every instance is 1 for each metric (cpu,
memory, disk, network), or what ``-U FILE`` says, or 0 with
``--ignore-dynu``, as hbal(1) describes; ``--max-cpu`` and ``--min-disk``
override the vCPU ratio of the policies and set a free disk floor.

Exit codes: 0 on success (also when nothing needs doing, or when ``-X``
was stopped early by SIGINT with every job successful), 1 for bad input
or a failed job, 2 for bad command line options and when SIGTERM ends
``-X``.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, TextIO

from ganeti import constants, errors
from ganeti.htools import balance, cli, evacuate, hinfo, printer, score
from ganeti.htools.balance import Move
from ganeti.htools.hscan import bad_items
from ganeti.htools.model import Cluster, Group, Instance

#: The reason trail source of hbal's jobs
REASON_SOURCE = f"{constants.OPCODE_REASON_SRC_CLIENT}:hbal"
#: The comment on hbal's opcodes
OPCODE_COMMENT = "rebalancing via hbal"

_SCRIPT_HEAD = """#!/bin/sh

# Auto-generated script for executing cluster rebalancing

# To stop, touch the file /tmp/stop-htools

set -e

check() {
  if [ -f /tmp/stop-htools ]; then
    echo 'Stop requested, exiting'
    exit 0
  fi
}
"""


class HbalError(Exception):
    """Bad input (options, data files); the text says what is wrong."""


def _ratio(text: str) -> float:
    try:
        val = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if val != val or val < 0:
        raise argparse.ArgumentTypeError(f"must not be negative: {text!r}")
    return val


def _names(text: str) -> list[str]:
    return [n.strip() for n in text.split(",") if n.strip()]


def build_parser() -> argparse.ArgumentParser:
    """hbal's command line."""
    parser = argparse.ArgumentParser(
        prog="hbal", description="Cluster balancer for Ganeti: computes (and with"
        " -X runs) instance moves that lower the cluster score.")
    cli.add_backend_options(parser)
    algo = parser.add_argument_group("algorithm")
    algo.add_argument("--max-cpu", type=_ratio, metavar="RATIO",
                      help="the maximum virtual to physical CPU ratio (overrides"
                      " the policies' vcpu ratio)")
    algo.add_argument("--min-disk", type=_ratio, metavar="RATIO",
                      help="the minimum fraction of disk to keep free on nodes")
    algo.add_argument("-l", "--max-length", type=int, default=-1, metavar="N",
                      help="at most N moves (default: no limit)")
    algo.add_argument("-e", "--min-score", type=_ratio,
                      default=balance.DEFAULT_MIN_SCORE, metavar="SCORE",
                      help="stop (or do not start) once the score is below SCORE"
                      " (default: %(default)g)")
    algo.add_argument("-g", "--min-gain", type=_ratio, default=balance.DEFAULT_MIN_GAIN,
                      metavar="DELTA", help="the least gain a move must bring once"
                      " the score is below --min-gain-limit (default: %(default)g)")
    algo.add_argument("--min-gain-limit", type=_ratio,
                      default=balance.DEFAULT_MIN_GAIN_LIMIT, metavar="THRESHOLD",
                      help="the score below which -g applies (default: %(default)g)")
    algo.add_argument("--no-disk-moves", action="store_true",
                      help="do not replace disks (only failovers and migrations)")
    algo.add_argument("--no-instance-moves", action="store_true",
                      help="do not fail over or migrate (only replace disks)")
    algo.add_argument("-U", "--util-file", metavar="FILE",
                      help="dynamic utilisation: lines of 'instance cpu mem disk net'")
    algo.add_argument("--ignore-soft-errors", action="store_true",
                      help="skip the soft checks (vCPU and spindle ratios)")
    algo.add_argument("--evac-mode", action="store_true",
                      help="only move instances off offline and drained nodes")
    algo.add_argument("--restricted-migration", action="store_true",
                      help="no replace-primary moves; replace-and-failover only off"
                      " drained nodes")
    algo.add_argument("--select-instances", type=_names, metavar="INSTANCES",
                      help="move only these instances (comma-separated)")
    algo.add_argument("--exclude-instances", type=_names, metavar="INSTANCES",
                      help="never move these instances (comma-separated)")
    report = parser.add_argument_group("reporting and execution")
    report.add_argument("-C", "--print-commands", nargs="?", const="-", default=None,
                        metavar="FILE", help="print the commands of the solution"
                        " (or write them as a shell script to FILE)")
    report.add_argument("--print-instances", action="store_true",
                        help="print the instance map before and after")
    report.add_argument("-X", "--exec", dest="exec_jobs", action="store_true",
                        help="run the moves as jobs through luxi (the -L backend)")
    return parser


# -- input --------------------------------------------------------------------

def parse_utilisation(text: str, cluster: Cluster, where: str = "-U file"
                      ) -> dict[str, tuple[float, float, float, float]]:
    """Lines of ``instance cpu mem disk net``: instance name -> load.

    @raise HbalError: for a malformed line or an unknown instance
    """
    out: dict[str, tuple[float, float, float, float]] = {}
    for lineno, line in enumerate(text.splitlines(), 1):
        fields = line.split()
        if not fields or fields[0].startswith("#"):
            continue
        if len(fields) != 5:
            raise HbalError(f"{where}, line {lineno}: expected 'instance cpu mem disk"
                            f" net', got {line.strip()!r}")
        name = fields[0]
        if name not in cluster.instances:
            raise HbalError(f"{where}, line {lineno}: unknown instance {name!r}")
        try:
            cpu, mem, dsk, net = (float(f) for f in fields[1:])
        except ValueError:
            raise HbalError(f"{where}, line {lineno}: the loads must be numbers,"
                            f" got {' '.join(fields[1:])!r}") from None
        out[name] = (cpu, mem, dsk, net)
    return out


def apply_utilisation(cluster: Cluster,
                      loads: Mapping[str, tuple[float, float, float, float]],
                      default: tuple[float, float, float, float] = (1.0, 1.0, 1.0, 1.0)
                      ) -> None:
    """Set every instance's dynamic load (``default`` when ``loads`` has
    none) and sum the nodes' again: a primary carries all four, a
    secondary the disk load."""
    for inst in cluster.instances.values():
        inst.util = loads.get(inst.name, default)
    for node in cluster.nodes.values():
        cpu = mem = dsk = net = 0.0
        for name in sorted(node.plist):
            icpu, imem, idsk, inet = cluster.instances[name].util
            cpu, mem, dsk, net = cpu + icpu, mem + imem, dsk + idsk, net + inet
        for name in sorted(node.slist):
            dsk += cluster.instances[name].util[2]
        node.util = (cpu, mem, dsk, net)


def apply_limits(cluster: Cluster, max_cpu: float | None, min_disk: float | None) -> None:
    """``--max-cpu`` (the policies' vCPU ratio) and ``--min-disk`` (the
    fraction of disk kept free) on every node."""
    if max_cpu is None and min_disk is None:
        return
    for node in cluster.nodes.values():
        group = cluster.groups.get(node.group)
        pol = group.ipolicy if group else cluster.ipolicy
        if max_cpu is not None:
            pol = dataclasses.replace(pol, vcpu_ratio=max_cpu)
        node.set_policy(pol, min_disk or 0.0)


def resolve_instances(cluster: Cluster, names: Sequence[str] | None, option: str
                      ) -> frozenset[str] | None:
    """Full instance names of ``names`` (full or unique short names).

    @raise HbalError: naming the unknown ones
    """
    if names is None:
        return None
    found = set()
    unknown = []
    for name in names:
        if name in cluster.instances:
            found.add(name)
            continue
        matches = [i for i in cluster.instances if i.startswith(name + ".")]
        if len(matches) == 1:
            found.add(matches[0])
        else:
            unknown.append(name)
    if unknown:
        raise HbalError(f"Unknown instance(s) given with {option}: {', '.join(unknown)}")
    return frozenset(found)


def common_suffix(names: Sequence[str]) -> str:
    """The longest domain (``.example.com``) all ``names`` end with."""
    if not names:
        return ""
    first = names[0]
    best = ""
    for idx, char in enumerate(first):
        if char == "." and all(n.endswith(first[idx:]) and n != first[idx:]
                               for n in names):
            best = first[idx:]
            break
    return best


# -- output -------------------------------------------------------------------

class Report:
    """hbal's solution table: names without their common domain."""

    def __init__(self, cluster: Cluster, group: Group) -> None:
        nodes = [n.name for n in cluster.group_nodes(group.uuid)]
        insts = [i.name for i in balance.group_instances(cluster, group.uuid)]
        self.suffix = common_suffix(sorted(cluster.nodes) + sorted(cluster.instances))
        self.inst_width = max((len(self.alias(n)) for n in insts), default=1)
        self.pair_width = 2 * max((len(self.alias(n)) for n in nodes), default=1) + 1

    def alias(self, name: str) -> str:
        """``name`` without the common domain."""
        if self.suffix and name.endswith(self.suffix):
            return name[:-len(self.suffix)]
        return name

    def _pair(self, nodes: tuple[str, str | None]) -> str:
        return ":".join(self.alias(n) for n in nodes if n)

    def line(self, pos: int, move: Move) -> str:
        """One step: ``  1. inst  node1:node2 => node3:node1  4.56 a=r:node3 f``."""
        return (f"  {pos:3d}. {self.alias(move.instance):<{self.inst_width}}"
                f" {self._pair(move.old_nodes):<{self.pair_width}} =>"
                f" {self._pair(move.new_nodes):<{self.pair_width}}"
                f" {move.score:12.8f} a={move.action(self.alias)}")


def move_commands(inst: Instance, move: Move) -> list[str]:
    """The gnt-instance commands (without the program name) of a move: a
    running instance migrates, any other fails over."""
    verb = "migrate" if inst.is_running else "failover"
    out = []
    for kind, node in move.steps():
        if kind == evacuate.STEP_REPLACE:
            out.append(f"replace-disks -n {node} {inst.name}")
        elif kind == evacuate.STEP_FAILOVER_TO:
            out.append(f"{verb} -f -n {node} {inst.name}")
        else:
            out.append(f"{verb} -f {inst.name}")
    return out


def format_commands(cluster: Cluster, jobsets: Sequence[Sequence[Move]]) -> list[str]:
    """The command list by jobset, with hbal's ``echo`` and ``check`` lines."""
    lines: list[str] = []
    for jsn, jobset in enumerate(jobsets, 1):
        lines += ["", f"echo jobset {jsn}, {len(jobset)} jobs"]
        for jn, move in enumerate(jobset, 1):
            lines += [f"  echo job {jsn}/{jn}", "  check"]
            lines += ["  gnt-instance " + cmd
                      for cmd in move_commands(cluster.instances[move.instance], move)]
    return lines


def _write_commands(cluster: Cluster, jobsets: Sequence[Sequence[Move]], path: str,
                    stdout: TextIO) -> None:
    lines = format_commands(cluster, jobsets)
    stdout.write("\n")
    if path == "-":
        stdout.write("Commands to run to reach the above solution:\n")
        for line in lines:
            if line != "  check":
                stdout.write(f"  {line}".rstrip() + "\n")
        return
    try:
        with open(path, "w", encoding="utf-8") as fd:
            fd.write(_SCRIPT_HEAD + "".join(line + "\n" for line in lines))
    except OSError as err:
        raise HbalError(f"Cannot write the commands to {path}:"
                        f" {err.strerror or err}") from err
    stdout.write(f"The commands have been written to file '{path}'\n")


# -- execution ----------------------------------------------------------------

def move_job(inst: Instance, move: Move) -> list[dict[str, Any]]:
    """The opcodes of the job making ``move``."""
    job = evacuate.steps_to_job(inst, move.steps())
    trail = [[REASON_SOURCE, "", time.time_ns()]]
    for op in job:
        op["comment"] = OPCODE_COMMENT
        op["reason"] = trail
    return job


class Executor:
    """Runs jobsets through luxi, one after the other (``-X``).

    SIGINT asks to stop after the running jobset (a second one stops at
    once, as SIGTERM does, with exit code 2).
    """

    def __init__(self, socket: str | None, cluster: Cluster, stdout: TextIO,
                 stderr: TextIO, client: Any = None) -> None:
        self.socket = socket
        self.cluster = cluster
        self.stdout = stdout
        self.stderr = stderr
        self.client = client
        self.cancelled = False

    def _client(self) -> Any:
        if self.client is None:
            from ganeti.luxi import client as luxi_client
            self.client = luxi_client.Client(address=self.socket or None)
        return self.client

    def _say(self, text: str) -> None:
        self.stdout.write(text + "\n")
        self.stdout.flush()

    def _wait(self, job_id: int) -> str | None:
        """Follow a job to its end: None on success, else why it failed."""
        from ganeti.cli import jobs

        class Quiet(jobs.JobPollReportCbBase):
            """Nothing printed while waiting."""

            def ReportLogMessage(self, *args: Any) -> None:  # noqa: N802
                pass

            def ReportNotChanged(self, *args: Any) -> None:  # noqa: N802
                pass

        try:
            jobs.GenericPollJob(job_id, self._client(), Quiet())
        except (errors.GenericError, OSError) as err:
            return str(err) or err.__class__.__name__
        return None

    def run_jobset(self, jobset: Sequence[Move]) -> bool:
        """Submit the jobset's jobs together and wait for them all."""
        insts = [self.cluster.instances[m.instance] for m in jobset]
        self._say("Executing jobset for instances "
                  + ", ".join(i.name for i in insts))
        try:
            submitted = self._client().SubmitManyJobs(
                [move_job(inst, move) for inst, move in zip(insts, jobset)])
        except (errors.GenericError, OSError) as err:
            self.stderr.write(f"Cannot submit the jobs: {err}\n")
            return False
        ids = []
        failures = []
        for inst, (ok, value) in zip(insts, submitted):
            if ok:
                ids.append(value)
            else:
                failures.append(f"{inst.name}: not submitted: {value}")
        if ids:
            self._say("Got job IDs " + ", ".join(str(i) for i in ids))
        for inst, (ok, value) in zip(insts, submitted):
            if ok:
                why = self._wait(value)
                if why is not None:
                    failures.append(f"{inst.name} (job {value}): {why}")
        if failures:
            self.stderr.write("Not all jobs completed successfully:\n"
                              + "".join(f"  {f}\n" for f in failures) + "Aborting.\n")
            return False
        return True

    def run(self, jobsets: Sequence[Sequence[Move]]) -> bool:
        """Run the jobsets in order; False when a job failed."""
        with self._signals():
            for idx, jobset in enumerate(jobsets):
                if self.cancelled:
                    self._say(f"Exiting early due to user request, {len(jobsets) - idx}"
                              " jobset(s) remaining.")
                    return True
                if not self.run_jobset(jobset):
                    return False
        return True

    def _on_sigint(self, signum: int, frame: Any) -> None:
        if self.cancelled:
            self.stderr.write("Double cancel request, exiting now...\n")
            raise SystemExit(2)
        self.cancelled = True
        self.stderr.write("Cancel request registered, will exit at the end of the"
                          " current job set...\n")

    def _on_sigterm(self, signum: int, frame: Any) -> None:
        self.stderr.write("Terminated: the submitted jobs go on; check them with"
                          " gnt-job list\n")
        raise SystemExit(2)

    @contextlib.contextmanager
    def _signals(self) -> Iterator[None]:
        """Our SIGINT and SIGTERM handlers for the duration (main thread only)."""
        saved = []
        if threading.current_thread() is threading.main_thread():
            for sig, handler in ((signal.SIGINT, self._on_sigint),
                                 (signal.SIGTERM, self._on_sigterm)):
                saved.append((sig, signal.signal(sig, handler)))
        try:
            yield
        finally:
            for sig, old in saved:
                signal.signal(sig, old)


# -- main ---------------------------------------------------------------------

def _is_luxi(opts: argparse.Namespace) -> bool:
    """Whether the cluster comes from luxi (-L, or no backend option)."""
    return all(getattr(opts, attr, None) in (None, [])
               for flag, attr in cli.BACKENDS if flag != "-L")


def _options(cluster: Cluster, args: argparse.Namespace) -> balance.Options:
    return balance.Options(
        max_length=args.max_length, min_score=args.min_score, min_gain=args.min_gain,
        min_gain_limit=args.min_gain_limit, disk_moves=not args.no_disk_moves,
        instance_moves=not args.no_instance_moves, evac_mode=args.evac_mode,
        restricted_migration=args.restricted_migration,
        soft_checks=not args.ignore_soft_errors,
        select_instances=resolve_instances(cluster, args.select_instances,
                                           "--select-instances"),
        exclude_instances=resolve_instances(cluster, args.exclude_instances,
                                            "--exclude-instances") or frozenset())


def _prepare(cluster: Cluster, args: argparse.Namespace) -> None:
    """Utilisation and limits, as the options say."""
    if not args.ignore_dynu:
        loads = {}
        if args.util_file:
            try:
                with open(args.util_file, encoding="utf-8") as fd:
                    text = fd.read()
            except OSError as err:
                raise HbalError(f"Cannot read the utilisation file {args.util_file}:"
                                f" {err.strerror or err}") from err
            loads = parse_utilisation(text, cluster, args.util_file)
        apply_utilisation(cluster, loads)
    apply_limits(cluster, args.max_cpu, args.min_disk)


def _select_group(cluster: Cluster, args: argparse.Namespace) -> Group:
    group = cli.select_group(cluster, args)
    if group is None:
        used = sorted({cluster.groups[n.group].name for n in cluster.nodes.values()
                       if n.group in cluster.groups})
        raise HbalError("Found multiple node groups: " + ", ".join(used)
                        + "; choose one with -G. Aborting.")
    return group


def _save(cluster: Cluster, prefix: str | None, stage: str) -> None:
    if prefix:
        try:
            cli.save_cluster(cluster, f"{prefix}.{stage}")
        except cli.LoadError as err:
            raise HbalError(str(err)) from err


def _print_tables(cluster: Cluster, group: Group, args: argparse.Namespace,
                  fields: list[str] | None, stage: str, out: Callable[[str], None]
                  ) -> None:
    if args.print_instances:
        out(f"\n{stage} instance map:\n" + hinfo.format_instances(cluster))
    if fields:
        out(f"\n{stage} cluster status:\n"
            + printer.format_nodes(cluster, fields, cluster.group_nodes(group.uuid)))


def run(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    """Balance as the parsed options say; returns the exit code.

    @raise HbalError: for bad input
    @raise cli.LoadError: if the cluster cannot be loaded
    """
    verbose = args.verbose

    def out(text: str) -> None:
        stdout.write(text if text.endswith("\n") else text + "\n")
        stdout.flush()

    if args.exec_jobs and not _is_luxi(args):
        raise HbalError("Execution of commands (-X) is possible only with the luxi"
                        " backend (-L)")
    fields = cli.node_fields(args)
    cluster = cli.load_cluster(args)
    _prepare(cluster, args)
    opts = _options(cluster, args)
    if verbose > 0:
        out(f"Loaded {len(cluster.nodes)} nodes, {len(cluster.instances)} instances")
    if not cluster.instances:
        out("Cluster is empty, exiting.")
        return 0
    group = _select_group(cluster, args)
    nodes = cluster.group_nodes(group.uuid)
    if verbose > 1:
        ginsts = balance.group_instances(cluster, group.uuid)
        out(f"Selected node group: {group.name}")
        out(f"Group size {len(nodes)} nodes, {len(ginsts)} instances")
    bad_nodes = cluster.n1_failures(nodes)
    if verbose > 1:
        names = {n.name for n in bad_nodes}
        bad_insts = [i for i in bad_items(cluster)[1]
                     if names & set(cluster.instances[i].nodes)]
        out(f"Initial check done: {len(bad_nodes)} bad nodes,"
            f" {len(bad_insts)} bad instances.")
    if bad_nodes:
        out("Cluster is not N+1 happy, continuing but no guarantee that the cluster"
            " will end N+1 happy.")
    _save(cluster, args.save_cluster, "original")
    _print_tables(cluster, group, args, fields, "Initial", out)
    balancer = balance.Balancer(cluster, group.uuid, opts)
    initial = balancer.score()
    if initial < opts.min_score:
        out(f"Cluster is already well balanced (initial score {initial:.6g},\n"
            f"minimum score {opts.min_score:.6g}).\nNothing to do, exiting")
        return 0
    if verbose > 0:
        out(f"Initial score: {initial:.8f}")
    if verbose > 2:
        out("Initial coefficients: " + score.format_detailed(nodes, balancer.gs.use_locations))
    out("Trying to minimize the CV...")
    report = Report(cluster, group)
    shown: list[Move] = []

    def show(move: Move) -> None:
        shown.append(move)
        out(report.line(len(shown), move))

    moves = balancer.run(show)
    final = balancer.score()
    if not moves:
        out("No solution found")
    elif verbose > 2:
        out("Final coefficients:   " + score.format_detailed(nodes, balancer.gs.use_locations))
    if verbose > 0:
        out(f"Cluster score improved from {initial:.8f} to {final:.8f}")
    jobsets = balance.split_jobsets(moves)
    if args.print_commands is not None:
        _write_commands(cluster, jobsets, args.print_commands, stdout)
    _save(cluster, args.save_cluster, "balanced")
    _print_tables(cluster, group, args, fields, "Final", out)
    if args.exec_jobs:
        if not moves:
            out("Empty job list, nothing to execute")
            return 0
        executor = Executor(args.luxi, cluster, stdout, stderr)
        if not executor.run(jobsets):
            stderr.write("Error: Execution of commands failed\n")
            return 1
    return 0


def main(argv: Sequence[str] | None = None, stdout: TextIO | None = None,
         stderr: TextIO | None = None) -> int:
    """Run hbal; returns the exit code."""
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    args = build_parser().parse_args(argv)
    try:
        return run(args, stdout, stderr)
    except (HbalError, cli.LoadError) as err:
        stdout.flush()
        stderr.write(f"Error: {err}\n")
        return 1
