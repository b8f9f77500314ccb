"""hscan: save clusters' state for the other htools (hscan(1)).

``hscan [-p[FIELDS]] [--no-headers] [-d DIR] [-L[SOCKET]] CLUSTER...``
reads each cluster through RAPI (``-L``: also the local one through luxi,
named ``LOCAL``), saves it in the text format as ``DIR/<cluster>.data``
(slashes in the name become underscores) and prints one line per
cluster. As in Ganeti, the optional values of ``-p`` and ``-L`` must be
attached (``-pName,f_mem``, ``-L/path``): ``hscan -p cluster1`` scans
cluster1. The summary::

    Name     Nodes  Inst BNode BInst  t_mem  f_mem t_disk f_disk      Score
    cluster1     2     2     0     0   1008    652    255    253 0.24404762

BNode counts the nodes failing N+1, BInst the instances on them; memory
is in MiB, disk in GiB; the score is the one hbal would report for the
whole cluster. A cluster that cannot be read shows the error after its
name and makes the exit code 1; the other clusters are still scanned.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import TextIO

from ganeti.htools import cli, loader_luxi, loader_rapi, printer, score
from ganeti.htools.loader_iallocator import InputError
from ganeti.htools.model import Cluster

#: The name of the local cluster (``-L``) and of its data file
LOCAL_NAME = "LOCAL"

_HEADER = ("Nodes", "Inst", "BNode", "BInst", "t_mem", "f_mem", "t_disk", "f_disk")


def build_parser() -> argparse.ArgumentParser:
    """hscan's command line."""
    parser = argparse.ArgumentParser(
        prog="hscan", description="Scan clusters via RAPI (or the local one via"
        " luxi) and save their node and instance data for hbal/hspace -t.")
    parser.add_argument("clusters", nargs="*", metavar="CLUSTER",
                        help="a cluster's RAPI: host, host:port or https://host[:port]")
    cli.add_print_nodes_option(parser)
    parser.add_argument("--no-headers", action="store_true",
                        help="do not print the header line")
    parser.add_argument("-d", dest="directory", default=".", metavar="DIR",
                        help="save the data files in DIR (default: the current"
                        " directory)")
    cli.add_luxi_option(parser)
    cli.add_verbosity_options(parser)
    cli.add_version_option(parser)
    return parser


def bad_items(cluster: Cluster) -> tuple[list[str], list[str]]:
    """The nodes failing N+1 and the instances on them (as primary or
    secondary), by name."""
    bad = {n.name for n in cluster.n1_failures()}
    insts = [i.name for i in cluster.instances.values()
             if (i.pnode in bad) or (i.snode in bad)]
    return sorted(bad), sorted(insts)


def cluster_score(cluster: Cluster) -> float:
    """The score of all the cluster's nodes together."""
    use_loc = bool(cluster.location_prefixes and cluster.excl_prefixes)
    return score.compute_score(sorted(cluster.nodes.values(), key=lambda n: n.name),
                               use_loc)


def format_header(width: int) -> str:
    """The header line, with the names ``width`` wide."""
    return (f"{'Name':<{width}} " + " ".join(f"{h:>5}" if i < 4 else f"{h:>6}"
                                             for i, h in enumerate(_HEADER))
            + f" {'Score':>10}")


def format_line(name: str, cluster: Cluster, width: int) -> str:
    """One cluster's summary line."""
    nodes = cluster.nodes.values()
    bnodes, binsts = bad_items(cluster)
    t_mem = sum(n.t_mem for n in nodes)
    f_mem = sum(n.f_mem for n in nodes)
    t_dsk = sum(n.t_dsk for n in nodes)
    f_dsk = sum(n.f_dsk for n in nodes)
    return (f"{name:<{width}} {len(cluster.nodes):5d} {len(cluster.instances):5d}"
            f" {len(bnodes):5d} {len(binsts):5d} {t_mem:6.0f} {f_mem:6d}"
            f" {t_dsk / 1024:6.0f} {f_dsk // 1024:6d} {cluster_score(cluster):.8f}")


def data_file(directory: str, name: str) -> str:
    """Where the data of cluster ``name`` is saved."""
    return os.path.join(directory, name.replace("/", "_") + ".data")


def _load(name: str, luxi_socket: str | None) -> Cluster:
    if luxi_socket is not None:
        return loader_luxi.load(luxi_socket or None)
    return loader_rapi.load(name)


def main(argv: Sequence[str] | None = None, stdout: TextIO | None = None,
         stderr: TextIO | None = None) -> int:
    """Run hscan; returns the exit code."""
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    parser = build_parser()
    opts = parser.parse_args(cli.attached_values_only(
        sys.argv[1:] if argv is None else argv))
    try:
        fields = cli.node_fields(opts)
    except cli.LoadError as err:
        stderr.write(f"Error: {err}\n")
        return 1
    targets: list[tuple[str, str | None]] = []
    if opts.luxi is not None:
        targets.append((LOCAL_NAME, opts.luxi))
    targets += [(name, None) for name in opts.clusters]
    if not targets:
        parser.print_usage(stderr)
        stderr.write("Error: no cluster given (give RAPI clusters, or -L for the"
                     " local one)\n")
        return 1
    if not os.path.isdir(opts.directory):
        stderr.write(f"Error: -d {opts.directory}: not a directory\n")
        return 1
    width = max(len("Name"), *(len(name) for name, _ in targets))
    if not opts.no_headers:
        stdout.write(format_header(width) + "\n")
    failed = 0
    for name, socket in targets:
        try:
            cluster = _load(name, socket)
            path = data_file(opts.directory, name)
            cli.save_cluster(cluster, path)
        except (InputError, cli.LoadError) as err:
            stdout.write(f"{name:<{width}} {err}\n")
            failed += 1
            continue
        stdout.write(format_line(name, cluster, width) + "\n")
        if opts.verbose > 1:
            stderr.write(f"Saved {path}\n")
        if fields is not None:
            stdout.write(printer.format_nodes(cluster, fields))
        stdout.flush()
    return 1 if failed else 0
