"""hinfo: print the cluster's state as htools see it (hinfo(1)).

``hinfo {backend options} [-O NODE...] [-p [FIELDS]] [--print-instances]
[-v...|-q]`` loads the cluster from any backend (see
:mod:`ganeti.htools.cli`) and prints, without changing anything::

    Loaded 3 nodes, 4 instances, 1 node group
    No split instances found.
    Group default (UUID 5ac8...), alloc policy preferred:
      nodes: 3 (offline 0, drained 0), instances: 4
      instance policy: std memory-size=128,cpu-count=1,...; ...
      N+1 status: happy
      score: 0.01234567
    Cluster score: 0.01234567

then with ``--print-instances`` the instance table and with ``-p`` the
node table; ``-S FILE`` saves the cluster to ``FILE.original`` in the
text format. ``-v`` adds the cluster's name, tags and policy; ``-vv`` the
score components. A split instance has its nodes in two groups.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TextIO

from ganeti.htools import cli, printer, score
from ganeti.htools.hscan import bad_items, cluster_score
from ganeti.htools.model import Cluster, Group, Instance
from ganeti.htools.policy import IPolicy, ISpec


def build_parser() -> argparse.ArgumentParser:
    """hinfo's command line."""
    parser = argparse.ArgumentParser(
        prog="hinfo", description="Print the cluster's groups, nodes, instances,"
        " policies, score and N+1 status as the htools see them.")
    cli.add_backend_options(parser)
    parser.add_argument("--print-instances", action="store_true",
                        help="print the instance table")
    return parser


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _spec(spec: ISpec) -> str:
    return ",".join(f"{k}={v}" for k, v in spec.to_dict().items())


def format_policy(pol: IPolicy) -> str:
    """An instance policy on one line."""
    bounds = "; ".join(f"min {_spec(lo)}; max {_spec(hi)}" for lo, hi in pol.minmax)
    return (f"std {_spec(pol.std)}; {bounds}; disk templates"
            f" {','.join(pol.disk_templates) or 'none'}; vcpu ratio"
            f" {pol.vcpu_ratio:g}; spindle ratio {pol.spindle_ratio:g}")


def split_instances(cluster: Cluster) -> list[Instance]:
    """The instances whose primary and secondary are in different groups."""
    out = []
    for inst in cluster.instances.values():
        if inst.pnode and inst.snode:
            pnode, snode = cluster.nodes[inst.pnode], cluster.nodes[inst.snode]
            if pnode.group != snode.group:
                out.append(inst)
    return sorted(out, key=lambda i: i.name)


def _group_instances(cluster: Cluster, group: Group) -> list[Instance]:
    return [i for i in cluster.instances.values()
            if cluster.instance_group(i) == group.uuid]


def format_group(cluster: Cluster, group: Group, verbose: int) -> str:
    """A group's block: its nodes, instances, policy, N+1 status, score."""
    nodes = cluster.group_nodes(group.uuid)
    insts = _group_instances(cluster, group)
    offline = sum(1 for n in nodes if n.offline)
    drained = sum(1 for n in nodes if n.drained and not n.offline)
    failing = cluster.n1_failures(nodes)
    lines = [f"Group {group.name} (UUID {group.uuid}), alloc policy"
             f" {group.alloc_policy}:",
             f"  nodes: {len(nodes)} (offline {offline}, drained {drained}),"
             f" instances: {len(insts)}",
             f"  instance policy: {format_policy(group.ipolicy)}"]
    if group.tags:
        lines.append(f"  tags: {', '.join(group.tags)}")
    if failing:
        names = {n.name for n in failing}
        hit = sum(1 for i in insts if i.pnode in names or i.snode in names)
        lines.append(f"  N+1 status: not happy, failing nodes:"
                     f" {', '.join(sorted(names))} ({_plural(hit, 'instance')} on them)")
    else:
        lines.append("  N+1 status: happy")
    use_loc = bool(cluster.location_prefixes and cluster.excl_prefixes)
    lines.append(f"  score: {score.compute_score(nodes, use_loc):.8f}")
    if verbose > 2:
        lines.append(f"  score components: {score.format_detailed(nodes, use_loc)}")
    return "\n".join(lines) + "\n"


def _inst_flag(cluster: Cluster, inst: Instance, bad: set[str]) -> str:
    if any(cluster.nodes[n].offline for n in inst.nodes):
        return "-"
    return "*" if any(n in bad for n in inst.nodes) else " "


def format_instances(cluster: Cluster) -> str:
    """The instance table: F ('-' on an offline node, '*' on a node failing
    N+1), name, nodes, auto_balance, vCPUs, memory, disk, template, state."""
    bad = set(bad_items(cluster)[0])
    header = ["F", "Name", "Pri_node", "Sec_node", "auto", "vcpu", "mem", "dsk",
              "template", "state"]
    numeric = [False, False, False, False, False, True, True, True, False, False]
    rows = [header]
    for inst in sorted(cluster.instances.values(), key=lambda i: i.name):
        rows.append([_inst_flag(cluster, inst, bad), inst.name, inst.pnode or "",
                     inst.snode or "", "Y" if inst.auto_balance else "N",
                     str(inst.vcpus), str(inst.memory),
                     str(inst.disk_space or sum(d.size for d in inst.disks)),
                     inst.disk_template, inst.admin_state])
    return printer.format_table(rows, numeric)


def format_info(cluster: Cluster, verbose: int = 1) -> str:
    """Everything hinfo prints before the tables."""
    out = [f"Loaded {_plural(len(cluster.nodes), 'node')},"
           f" {_plural(len(cluster.instances), 'instance')},"
           f" {_plural(len(cluster.groups), 'node group')}\n"]
    if verbose > 1:
        master = next((n.name for n in cluster.nodes.values() if n.is_master), None)
        if cluster.name:
            out.append(f"Cluster name: {cluster.name}"
                       f"{f' (master {master})' if master else ''}\n")
        out.append(f"Cluster tags: {', '.join(cluster.tags) or '(none)'}\n")
        out.append(f"Cluster instance policy: {format_policy(cluster.ipolicy)}\n")
    split = split_instances(cluster)
    if split:
        out.append(f"Found {_plural(len(split), 'split instance')}:"
                   f" {', '.join(i.name for i in split)}\n")
    else:
        out.append("No split instances found.\n")
    for group in sorted(cluster.groups.values(), key=lambda g: g.name):
        out.append(format_group(cluster, group, verbose))
    bnodes, binsts = bad_items(cluster)
    if bnodes:
        out.append(f"Cluster is not N+1 happy: {_plural(len(bnodes), 'node')} and"
                   f" {_plural(len(binsts), 'instance')} affected\n")
    else:
        out.append("Cluster is N+1 happy\n")
    out.append(f"Cluster score: {cluster_score(cluster):.8f}\n")
    return "".join(out)


def main(argv: Sequence[str] | None = None, stdout: TextIO | None = None,
         stderr: TextIO | None = None) -> int:
    """Run hinfo; returns the exit code."""
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    opts = build_parser().parse_args(argv)
    try:
        fields = cli.node_fields(opts)
        cluster = cli.load_cluster(opts)
    except cli.LoadError as err:
        stderr.write(f"Error: {err}\n")
        return 1
    stdout.write(format_info(cluster, opts.verbose))
    if opts.print_instances:
        stdout.write("Instances:\n")
        stdout.write(format_instances(cluster))
    if fields is not None:
        stdout.write("Nodes:\n")
        stdout.write(printer.format_nodes(cluster, fields))
    if opts.save_cluster:
        try:
            cli.save_cluster(cluster, opts.save_cluster + ".original")
        except cli.LoadError as err:
            stderr.write(f"Error: {err}\n")
            return 1
    return 0
