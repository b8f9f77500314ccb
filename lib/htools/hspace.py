"""hspace: how many more instances fit on the cluster (hspace(1)).

``hspace {backend options} [--disk-template T] [--spindle-use N]
[--standard-alloc SPEC] [--tiered-alloc SPEC] [--max-cpu R] [--min-disk R]
[--independent-groups] [--accept-existing-errors] [--no-capacity-checks]
[-l N] [--machine-readable[=yes|no]] [-p [FIELDS]] [-S FILE] [-v...|-q]``

loads the cluster (see :mod:`ganeti.htools.cli`), then runs, each from the
cluster as loaded, the tiered allocation and the standard allocation of
:mod:`ganeti.htools.capacity`, and prints the cluster's resources and each
run's outcome: as text, or with ``--machine-readable`` as ``HTS_*=value``
lines a shell can source, ending with ``HTS_OK=1``::

    The cluster has 4 nodes and the following resources:
      MEM 262144, DSK 4194304, CPU 64, VCPU 256.
    There are no initial instances on the cluster.
    Tiered (initial size) instance spec is:
      MEM 32768, DSK 1048576, CPU 8, using disk template 'drbd'.
    Tiered allocation results:
      -   6 instances of spec MEM 32768, DSK 1048576, CPU 8
      ...
    Standard (fixed-size) instance spec is:
      MEM 128, DSK 1024, CPU 1, using disk template 'drbd'.
    Normal (fixed-size) allocation results:
      - 1024 instances allocated
      - most likely failure reason: FailDisk
      ...

The disk template defaults to the first one of the cluster's instance
policy, the spindle use to its standard spec's; the standard spec is the
policy's ``std`` spec, the tiered ones the ``max`` spec of each min/max
pair; ``-G GROUP`` allocates in that group only. ``-p`` prints the node
tables and ``-v`` (twice) the placements on stderr, so that stdout stays
parseable; ``-S FILE`` saves the cluster after the tiered run to
``FILE.tiered`` and after the standard run to ``FILE.alloc`` (hspace(1)'s
names). The exit code is 0 unless the input or the options are wrong (1).

Beyond Ganeti's output: ``HTS_ALLOC_COUNT`` (hspace(1) names it; Ganeti
prints ``HTS_ALLOC_INSTANCES``, which is printed too), and in the text
output the storage units' free space and, on clusters of several groups,
the instances placed per group.
"""

from __future__ import annotations

import argparse
import dataclasses
import shlex
import sys
from collections.abc import Sequence
from typing import TextIO

from ganeti import constants
from ganeti.htools import allocate, capacity, cli, printer, score
from ganeti.htools.capacity import RunResult, Spec, Stats
from ganeti.htools.model import Cluster

PREFIX = "HTS"


def _machine_readable(text: str) -> bool:
    value = text.lower()
    if value not in ("yes", "no"):
        raise argparse.ArgumentTypeError(f"expected yes or no, got {text!r}")
    return value == "yes"


def _ratio(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if value < 0 or value != value:
        raise argparse.ArgumentTypeError(f"must not be negative, got {text!r}")
    return value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """hspace's command line."""
    parser = argparse.ArgumentParser(
        prog="hspace", description="Compute how many more instances fit on the"
        " cluster while keeping it N+1 redundant.")
    cli.add_backend_options(parser)
    algo = parser.add_argument_group("algorithm options")
    algo.add_argument("--max-cpu", type=_ratio, metavar="RATIO",
                      help="the largest virtual to physical CPU ratio (overrides"
                      " the instance policies')")
    algo.add_argument("--min-disk", type=_ratio, metavar="RATIO",
                      help="the share of each node's disk to keep free")
    algo.add_argument("--independent-groups", action="store_true",
                      help="allocate in the groups that are N+1 redundant even"
                      " when others are not")
    algo.add_argument("--accept-existing-errors", action="store_true",
                      help="ignore the nodes failing N+1 and allocate on the others")
    algo.add_argument("--no-capacity-checks", action="store_true",
                      help="check only the N+1 redundancy of DRBD instances")
    algo.add_argument("-l", "--max-length", type=_count, metavar="N",
                      help="allocate at most N instances in each run")
    req = parser.add_argument_group("request options")
    req.add_argument("--disk-template", choices=sorted(constants.DISK_TEMPLATES),
                     help="the disk template (default: the first one of the"
                     " cluster's instance policy)")
    req.add_argument("--spindle-use", type=_count, metavar="N",
                     help="the spindle use of the instances (default: the"
                     " policy's standard spec's)")
    req.add_argument("--standard-alloc", metavar="DISK,RAM,CPU",
                     help="the standard allocation's instance size (sizes take"
                     " units, e.g. 100G,4g,2)")
    req.add_argument("--tiered-alloc", metavar="DISK,RAM,CPU",
                     help="the tiered allocation's starting instance size")
    out = parser.add_argument_group("output options")
    out.add_argument("--machine-readable", nargs="?", const=True, default=False,
                     type=_machine_readable, metavar="yes|no",
                     help="print HTS_* shell variables instead of text")
    return parser


# -- settings -------------------------------------------------------------------


@dataclasses.dataclass
class Plan:
    """What hspace runs, from the options and the cluster."""

    request: capacity.Request
    standard: Spec
    tiered: list[tuple[Spec, Spec]]
    gate: capacity.Gate


class OptionError(Exception):
    """An option that does not fit the cluster."""


def apply_ratios(cluster: Cluster, max_cpu: float | None, min_disk: float | None,
                 ) -> None:
    """``--max-cpu`` and ``--min-disk``: change the policies' vCPU ratio
    and the disk kept free, and the nodes' limits with them."""
    if max_cpu is None and min_disk is None:
        return
    if max_cpu is not None:
        cluster.ipolicy = dataclasses.replace(cluster.ipolicy, vcpu_ratio=max_cpu)
        for group in cluster.groups.values():
            group.ipolicy = dataclasses.replace(group.ipolicy, vcpu_ratio=max_cpu)
    for node in cluster.nodes.values():
        owner = cluster.groups.get(node.group)
        node.set_policy(owner.ipolicy if owner else cluster.ipolicy, min_disk or 0.0)


def make_plan(cluster: Cluster, opts: argparse.Namespace) -> Plan:
    """The request, specs and gate the options ask for.

    @raise OptionError: for a spec that cannot be parsed, or a policy
        listing no disk template
    """
    ipol = cluster.ipolicy
    template = opts.disk_template
    if template is None:
        if not ipol.disk_templates:
            raise OptionError("the cluster's instance policy lists no disk template;"
                              " give one with --disk-template")
        template = ipol.disk_templates[0]
    spindle_use = opts.spindle_use if opts.spindle_use is not None \
        else ipol.std.spindle_use
    request = capacity.Request(
        template, nic_count=max(1, ipol.std.nic_count),
        options=allocate.Options(capacity_checks=not opts.no_capacity_checks),
        max_allocs=opts.max_length, spindle_use=spindle_use)
    try:
        standard = capacity.parse_spec(opts.standard_alloc, ipol.std.spindle_use) \
            if opts.standard_alloc else Spec.from_ispec(ipol.std)
        given = capacity.parse_spec(opts.tiered_alloc, ipol.std.spindle_use) \
            if opts.tiered_alloc else None
    except ValueError as err:
        raise OptionError(str(err)) from None
    where = capacity.gate(cluster, opts.independent_groups, opts.accept_existing_errors,
                          request.options.capacity_checks)
    if opts.group:
        # -G: allocate in that group only
        chosen = cluster.find_group(opts.group)
        where.groups = [g for g in where.groups if chosen and g == chosen.uuid]
    return Plan(request, standard, capacity.tiered_starts(ipol, None, given), where)


# -- output -------------------------------------------------------------------


def format_keys(pairs: Sequence[tuple[str, object]]) -> str:
    """``HTS_KEY=value`` lines, values quoted for the shell when needed."""
    return "".join(f"{PREFIX}_{key.upper()}={shlex.quote(str(val))}\n"
                   for key, val in pairs)


def stats_keys(phase: str, st: Stats) -> list[tuple[str, object]]:
    """The ``INI_``/``TRL_``/``FIN_`` figures of a cluster state."""
    pairs: list[tuple[str, object]] = [
        ("SCORE", f"{st.score:.8f}"), ("INST_CNT", st.instances),
        ("MEM_FREE", st.f_mem), ("MEM_AVAIL", st.a_mem),
        ("MEM_RESVD", st.f_mem - st.a_mem), ("MEM_INST", st.i_mem),
        ("MEM_OVERHEAD", st.x_mem + st.n_mem), ("MEM_EFF", f"{st.mem_eff:.8f}"),
        ("DSK_FREE", st.f_dsk), ("DSK_AVAIL", st.a_dsk),
        ("DSK_RESVD", st.f_dsk - st.a_dsk), ("DSK_INST", st.i_dsk),
        ("DSK_EFF", f"{st.dsk_eff:.8f}"), ("SPN_FREE", st.f_spn),
        ("SPN_INST", st.i_spn), ("SPN_EFF", f"{st.spn_eff:.8f}"),
        ("CPU_INST", st.i_cpu), ("CPU_EFF", f"{st.cpu_eff:.8f}"),
        ("MNODE_MEM_AVAIL", st.m_mem), ("MNODE_DSK_AVAIL", st.m_dsk),
    ]
    return [(f"{phase}_{key}", val) for key, val in pairs]


def cluster_keys(st: Stats) -> list[tuple[str, object]]:
    """The ``CLUSTER_`` figures."""
    return [("CLUSTER_MEM", f"{st.t_mem:.0f}"), ("CLUSTER_DSK", f"{st.t_dsk:.0f}"),
            ("CLUSTER_CPU", f"{st.t_cpu:.0f}"), ("CLUSTER_VCPU", st.v_cpu),
            ("CLUSTER_SPN", st.t_spn), ("CLUSTER_NODES", st.nodes)]


def spec_keys(prefix: str, spec: Spec, request: capacity.Request,
              ) -> list[tuple[str, object]]:
    """``SPEC_``/``TSPEC_INI_`` keys of an instance spec."""
    return [(f"{prefix}_MEM", spec.memory), (f"{prefix}_DSK", spec.disk),
            (f"{prefix}_CPU", spec.vcpus), (f"{prefix}_SPN", spec.spindles),
            (f"{prefix}_RQN", request.required_nodes),
            (f"{prefix}_DISK_TEMPLATE", request.disk_template)]


def tiered_keys(ini: Stats, trl: Stats, result: RunResult) -> list[tuple[str, object]]:
    """The tiered run's figures: ``TRL_*``, ``TSPEC`` and ``KM_*``."""
    pairs = stats_keys("TRL", trl)
    pairs.append(("TSPEC", " ".join(f"{spec.tspec()}={count}"
                                    for spec, count in result.spec_counts())))
    for name, km in zip(("USED", "POOL", "UNAV"), capacity.key_metrics(ini, trl)):
        pairs += [(f"KM_{name}_CPU", km.cpu), (f"KM_{name}_NPU", f"{km.npu:.2f}"),
                  (f"KM_{name}_MEM", km.mem), (f"KM_{name}_DSK", km.dsk),
                  (f"KM_{name}_SPN", km.spn)]
    return pairs


def results_keys(ini: Stats, fin: Stats, result: RunResult) -> list[tuple[str, object]]:
    """The standard run's figures: ``FIN_*`` and ``ALLOC_*``."""
    pairs = stats_keys("FIN", fin)
    usage = ini.instances / fin.instances if fin.instances else 0.0
    pairs += [("ALLOC_USAGE", f"{usage:.8f}"), ("ALLOC_INSTANCES", result.count),
              ("ALLOC_COUNT", result.count),
              ("ALLOC_FAIL_REASON", result.main_reason().upper())]
    pairs += [(f"ALLOC_{mode.upper()}_CNT", count) for mode, count in result.reasons()]
    return pairs


def _resources(st: Stats, spindles: bool) -> str:
    text = (f"MEM {st.t_mem:.0f}, DSK {st.t_dsk:.0f}, CPU {st.t_cpu:.0f},"
            f" VCPU {st.v_cpu}")
    return text + (f", SPN {st.t_spn}" if spindles else "")


def format_cluster(st: Stats, spindles: bool) -> str:
    """The human-readable cluster summary."""
    insts = str(st.instances) if st.instances else "no"
    text = (f"The cluster has {st.nodes} nodes and the following resources:\n"
            f"  {_resources(st, spindles)}.\n")
    if st.units:
        text += "  Storage units (free/total MiB): " + ", ".join(
            f"{kind} {key} {free}/{total}" for (kind, key), (free, total)
            in st.units.items()) + ".\n"
    return text + f"There are {insts} initial instances on the cluster.\n"


def format_spec(title: str, spec: Spec, request: capacity.Request,
                spindles: bool) -> str:
    """``<title> instance spec is: ...``."""
    return (f"{title} instance spec is:\n  {spec.describe(spindles)}, using disk"
            f" template '{request.disk_template}'.\n")


def _scores(ini: Stats, fin: Stats, result: RunResult, spindles: bool,
            multi_group: bool) -> str:
    lines = []
    if multi_group and result.count:
        lines.append("  - instances per group: " + ", ".join(
            f"{name} {count}" for name, count in sorted(result.per_group().items())))
    lines += [f"  - most likely failure reason: {result.main_reason()}",
              f"  - initial cluster score: {ini.score:.8f}",
              f"  -   final cluster score: {fin.score:.8f}"]
    effs = [("memory", fin.mem_eff), ("disk", fin.dsk_eff), ("vcpu", fin.cpu_eff)]
    if spindles:
        effs.append(("spindles", fin.spn_eff))
    width = max(len(name) for name, _ in effs)
    lines += [f"  - {name:>{width}} usage efficiency: {eff * 100:5.2f}%"
              for name, eff in effs]
    return "".join(line + "\n" for line in lines)


def format_tiered(ini: Stats, trl: Stats, result: RunResult, spindles: bool,
                  multi_group: bool) -> str:
    """The human-readable tiered results."""
    text = "Tiered allocation results:\n"
    counts = result.spec_counts()
    if not counts:
        text += "  - no instances allocated\n"
    for spec, count in counts:
        text += f"  - {count:3d} instances of spec {spec.describe(spindles)}\n"
    return text + _scores(ini, trl, result, spindles, multi_group)


def format_results(ini: Stats, fin: Stats, result: RunResult, spindles: bool,
                   multi_group: bool) -> str:
    """The human-readable standard results."""
    return ("Normal (fixed-size) allocation results:\n"
            f"  - {result.count:3d} instances allocated\n"
            + _scores(ini, fin, result, spindles, multi_group))


def format_allocation_map(result: RunResult) -> str:
    """The placed instances: name, nodes, memory, disk, vCPUs, spindles."""
    rows = [["Name", "Pnode", "Snode", "Mem", "Dsk", "Vcpus", "Spn"]]
    for inst, spec in result.allocated:
        rows.append([inst.name, inst.pnode or "", inst.snode or "", str(inst.memory),
                     str(spec.disk), str(inst.vcpus), str(spec.spindles)])
    return printer.format_table(rows, [False, False, False, True, True, True, True])


class _Output:
    """Where and how hspace writes."""

    def __init__(self, opts: argparse.Namespace, stdout: TextIO, stderr: TextIO,
                 fields: list[str] | None, spindles: bool) -> None:
        self.machine = bool(opts.machine_readable)
        self.verbose = opts.verbose
        self.out, self.err = stdout, stderr
        self.fields = fields
        self.spindles = spindles

    def keys(self, pairs: Sequence[tuple[str, object]]) -> None:
        if self.machine:
            self.out.write(format_keys(pairs))

    def text(self, text: str) -> None:
        if not self.machine:
            self.out.write(text)

    def nodes(self, cluster: Cluster, title: str) -> None:
        if self.fields is not None:
            self.err.write(f"{title} status:\n")
            self.err.write(printer.format_nodes(cluster, self.fields))


def _describe_gate(cluster: Cluster, where: capacity.Gate, err: TextIO,
                   verbose: int) -> None:
    if verbose > 3 and where.bad_nodes:
        err.write(f"Bad nodes: {', '.join(where.bad_nodes)}\n")
    if verbose > 3 and where.bad_groups:
        names = [cluster.groups[g].name for g in where.bad_groups if g in cluster.groups]
        err.write(f"Bad groups: {', '.join(names)}\n")
    if verbose > 1 and where.stop:
        err.write("Nodes failing N+1 (" + ", ".join(where.bad_nodes) + "): no"
                  " allocation (see --independent-groups, --accept-existing-errors)\n")


def run(cluster: Cluster, opts: argparse.Namespace, stdout: TextIO, stderr: TextIO,
        fields: list[str] | None) -> int:
    """Compute and print; returns the exit code."""
    apply_ratios(cluster, opts.max_cpu, opts.min_disk)
    try:
        plan = make_plan(cluster, opts)
    except OptionError as err:
        stderr.write(f"Error: {err}\n")
        return 1
    spindles = any(n.exclusive_storage for n in cluster.nodes.values())
    multi_group = len({n.group for n in cluster.nodes.values()}) > 1
    out = _Output(opts, stdout, stderr, fields, spindles)
    out.nodes(cluster, "Initial cluster")
    ini = capacity.cluster_stats(cluster)
    if opts.verbose > 2:
        use_loc = bool(cluster.location_prefixes and cluster.excl_prefixes)
        nodes = sorted(cluster.nodes.values(), key=lambda n: n.name)
        stderr.write(f"Initial coefficients: overall {ini.score:.8f}\n"
                     f"  {score.format_detailed(nodes, use_loc)}\n")
    out.keys(cluster_keys(ini) + stats_keys("INI", ini))
    out.text(format_cluster(ini, spindles))
    _describe_gate(cluster, plan.gate, stderr, opts.verbose)

    tiered = capacity.tiered_allocation(cluster, plan.tiered, plan.request, plan.gate)
    trl = capacity.cluster_stats(tiered.cluster)
    tspec = plan.tiered[0][0]
    out.keys(spec_keys("TSPEC_INI", tspec, plan.request))
    out.text(format_spec("Tiered (initial size)", tspec, plan.request, spindles))
    if opts.verbose > 1:
        stderr.write("Tiered allocation map\n" + format_allocation_map(tiered))
    out.nodes(tiered.cluster, "Tiered allocation")
    if opts.save_cluster and not _save(tiered.cluster, opts.save_cluster + ".tiered",
                                       stderr):
        return 1
    out.keys(tiered_keys(ini, trl, tiered))
    out.text(format_tiered(ini, trl, tiered, spindles, multi_group))

    standard = capacity.standard_allocation(cluster, plan.standard, plan.request,
                                            plan.gate)
    fin = capacity.cluster_stats(standard.cluster)
    out.keys(spec_keys("SPEC", plan.standard, plan.request))
    out.text(format_spec("Standard (fixed-size)", plan.standard, plan.request,
                         spindles))
    if opts.verbose > 1:
        stderr.write("Standard allocation map\n" + format_allocation_map(standard))
    out.nodes(standard.cluster, "Standard allocation")
    if opts.save_cluster and not _save(standard.cluster, opts.save_cluster + ".alloc",
                                       stderr):
        return 1
    if fin.instances != ini.instances + standard.count:
        stderr.write(f"Error: internal inconsistency, allocated"
                     f" ({ini.instances + standard.count}) != counted"
                     f" ({fin.instances})\n")
        return 1
    out.keys(results_keys(ini, fin, standard))
    out.text(format_results(ini, fin, standard, spindles, multi_group))
    out.keys([("OK", 1)])
    return 0


def _save(cluster: Cluster, path: str, stderr: TextIO) -> bool:
    try:
        cli.save_cluster(cluster, path)
    except cli.LoadError as err:
        stderr.write(f"Error: {err}\n")
        return False
    return True


def main(argv: Sequence[str] | None = None, stdout: TextIO | None = None,
         stderr: TextIO | None = None) -> int:
    """Run hspace; returns the exit code."""
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    opts = build_parser().parse_args(argv)
    try:
        fields = cli.node_fields(opts)
        cluster = cli.load_cluster(opts)
    except cli.LoadError as err:
        stderr.write(f"Error: {err}\n")
        return 1
    if opts.max_cpu is not None and opts.max_cpu <= 0:
        stderr.write("Error: --max-cpu must be positive\n")
        return 1
    if opts.min_disk is not None and opts.min_disk > 1:
        stderr.write("Error: --min-disk is a share of the disk, at most 1\n")
        return 1
    return run(cluster, opts, stdout, stderr, fields)

