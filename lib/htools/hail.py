"""hail: the iallocator plugin (hail(1)).

``hail [options] INPUT_FILE`` reads an iallocator request (``-`` for
stdin) and writes the response ``{"success": ..., "info": ..., "result":
...}`` on stdout. A request it cannot solve is a valid response with
``"success": false``; malformed input is reported on stderr with exit
code 1.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from ganeti import __version__, constants
from ganeti.htools import (allocate, evacuate, loader_iallocator, loader_simu,
                           loader_text, printer, score)
from ganeti.htools.allocate import Options, Outcome
from ganeti.htools.loader_iallocator import InputError, Request
from ganeti.htools.model import Cluster


def build_parser() -> argparse.ArgumentParser:
    """hail's command line."""
    parser = argparse.ArgumentParser(
        prog="hail", description="Ganeti IAllocator plugin: places and moves"
        " instances as hbal scores the cluster.")
    parser.add_argument("input_file", help="the iallocator request, - for stdin")
    parser.add_argument("-p", "--print-nodes", nargs="?", const="", default=None,
                        metavar="FIELDS", help="print the node status before and"
                        " after to stderr (optionally a field list, +FIELDS to"
                        " extend the default one)")
    parser.add_argument("-t", "--text-data", metavar="FILE",
                        help="take the cluster from this htools text file instead"
                        " of the request")
    parser.add_argument("--simulate", action="append", metavar="SPEC",
                        help="take the cluster from a simulated description"
                        " (policy,nodes,disk,mem,cpus[,spindles]); repeatable")
    parser.add_argument("-S", "--save-cluster", metavar="FILE",
                        help="save the cluster state to FILE.pre-ialloc and"
                        " FILE.post-ialloc")
    parser.add_argument("--no-capacity-checks", action="store_true",
                        help="check only the N+1 redundancy of DRBD instances")
    parser.add_argument("--ignore-soft-errors", action="store_true",
                        help="skip the soft checks (vCPU and spindle ratios)")
    parser.add_argument("--restrict-allocation-to", metavar="NODES",
                        help="comma-separated nodes allocations may use")
    parser.add_argument("--ignore-dynu", action="store_true",
                        help="ignore dynamic utilisation data (there is none in"
                        " iallocator requests; accepted for compatibility)")
    parser.add_argument("-v", "--verbose", action="count", default=1,
                        help="more output on stderr (repeatable)")
    parser.add_argument("-q", "--quiet", action="count", default=0,
                        help="less output on stderr")
    parser.add_argument("-V", "--version", action="version",
                        version=f"hail (ganeti) version {__version__}")
    return parser


def solve(cluster: Cluster, request: Request, opts: Options) -> Outcome:
    """Run one request against the cluster (which it updates)."""
    if request.type == constants.IALLOCATOR_MODE_ALLOC:
        assert request.instance is not None
        if request.restrict_nodes is not None and opts.restrict_nodes is None:
            opts = Options(opts.capacity_checks, opts.soft_checks,
                           frozenset(request.restrict_nodes))
        return allocate.allocate(cluster, request.instance, request.required_nodes,
                                 opts, request.group_name)
    if request.type == constants.IALLOCATOR_MODE_MULTI_ALLOC:
        return allocate.multi_allocate(cluster, request.allocations, opts,
                                       request.group_name)
    if request.type == constants.IALLOCATOR_MODE_RELOC:
        assert request.name is not None
        return allocate.relocate(cluster, request.name, request.required_nodes,
                                 request.relocate_from, opts)
    if request.type == constants.IALLOCATOR_MODE_NODE_EVAC:
        return evacuate.node_evacuate(cluster, request.instances, request.evac_mode,
                                      opts)
    return evacuate.change_group(cluster, request.instances, request.target_groups,
                                 opts)


def load_request(text: str, text_data: str | None = None,
                 simulate: Sequence[str] | None = None) -> tuple[Cluster, Request]:
    """Parse a request message; the cluster may come from a text file or
    a simulation instead of the message.

    @raise InputError: for malformed input
    @raise OSError: if the text file cannot be read
    """
    try:
        data: Any = json.loads(text)
    except ValueError as err:
        raise InputError(f"Parsing input IAllocator message: {err}") from err
    if not isinstance(data, dict):
        raise InputError("invalid iallocator message: not a JSON object")
    if not text_data and not simulate:
        return loader_iallocator.load(data)
    cluster = loader_text.load(text_data) if text_data \
        else loader_simu.build(simulate or [])
    return cluster, loader_iallocator.parse_request(data, cluster)


def run(text: str, opts: Options | None = None) -> Outcome:
    """Answer a request message (the library entry point)."""
    cluster, request = load_request(text)
    return solve(cluster, request, opts or Options())


def _print_state(cluster: Cluster, title: str, fields: list[str], err: TextIO,
                 verbose: int) -> None:
    err.write(f"{title} cluster status:\n")
    err.write(printer.format_nodes(cluster, fields))
    use_loc = bool(cluster.location_prefixes and cluster.excl_prefixes)
    for group in sorted(cluster.groups.values(), key=lambda g: g.name):
        nodes = cluster.group_nodes(group.uuid)
        err.write(f"Group {group.name} score: {score.compute_score(nodes, use_loc):.8f}\n")
        if verbose > 2:
            err.write(f"  {score.format_detailed(nodes, use_loc)}\n")


def main(argv: Sequence[str] | None = None, stdin: TextIO | None = None,
         stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    """Run hail; returns the exit code."""
    stdin = stdin or sys.stdin
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    args = build_parser().parse_args(argv)
    verbose = args.verbose - args.quiet
    try:
        fields = printer.parse_fields(args.print_nodes) \
            if args.print_nodes is not None else []
    except ValueError as err:
        stderr.write(f"Error: {err}\n")
        return 1
    restrict = None
    if args.restrict_allocation_to:
        restrict = frozenset(n for n in args.restrict_allocation_to.split(",") if n)
    opts = Options(capacity_checks=not args.no_capacity_checks,
                   soft_checks=not args.ignore_soft_errors, restrict_nodes=restrict)
    try:
        if args.input_file == "-":
            text = stdin.read()
        else:
            with open(args.input_file, encoding="utf-8") as fd:
                text = fd.read()
    except OSError as err:
        stderr.write(f"Error: cannot read {args.input_file}: {err.strerror}\n")
        return 1
    try:
        cluster, request = load_request(text, args.text_data, args.simulate)
    except (InputError, OSError) as err:
        stderr.write(f"Error: {err}\n")
        return 1
    if verbose > 1:
        stderr.write(f"Received request: {request.type}"
                     f"{' ' + request.name if request.name else ''}; cluster:"
                     f" {len(cluster.groups)} groups, {len(cluster.nodes)} nodes,"
                     f" {len(cluster.instances)} instances\n")
    try:
        if args.save_cluster:
            _save(cluster, args.save_cluster + ".pre-ialloc")
        if fields:
            _print_state(cluster, "Initial", fields, stderr, verbose)
        outcome = solve(cluster, request, opts)
        if fields:
            _print_state(cluster, "Final", fields, stderr, verbose)
        if args.save_cluster:
            _save(cluster, args.save_cluster + ".post-ialloc")
    except OSError as err:
        stderr.write(f"Error: cannot save the cluster state: {err}\n")
        return 1
    if verbose > 1:
        stderr.write(f"{outcome.info}\n")
    stdout.write(json.dumps(outcome.to_dict()) + "\n")
    return 0


def _save(cluster: Cluster, path: str) -> None:
    with open(path, "w", encoding="utf-8") as fd:
        fd.write(loader_text.serialize(cluster))
