"""Capacity planning: how many more instances fit (hspace's allocation loops).

Two runs, each from the cluster as loaded (hspace(1)):

- *standard* allocation places instances of one fixed spec (the policy's
  ``std`` spec, or ``--standard-alloc``) until one no longer fits;
- *tiered* allocation starts from a large spec (the ``max`` spec of each
  min/max pair of the policy in turn, or ``--tiered-alloc``), places it
  until it no longer fits, then shrinks the resource that failed most
  (memory by 64 MiB, disk by 256 MiB, one vCPU or one spindle) to the
  first size at which fewer nodes refuse it, and goes on; it stops when
  no failing resource can shrink any more within the policy's minimum.
  ``FailN1`` counts as a memory failure (a smaller instance needs less
  memory kept for failovers). The instances are counted per spec.

Each placement is the one hail's allocation would choose
(:func:`ganeti.htools.allocate.find_allocation`): the nodes, or for DRBD
the (primary, secondary) pair, giving the lowest group score, groups tried
by allocation policy. The failure reasons reported are those of the last,
failed, attempt, counted as hail counts them (a primary once, a secondary
once per primary it was tried with); an instance the group's policy
refuses counts once per node, under the resource it exceeds.

The placements are searched by :class:`ganeti.htools.alloc_series.Allocator`.
"""

from __future__ import annotations

import copy
import dataclasses
from collections import Counter
from collections.abc import Sequence

from ganeti import constants
from ganeti.htools import allocate, model, policy, score
from ganeti.htools.allocate import Options
from ganeti.htools.alloc_series import Allocator
from ganeti.htools.model import Cluster, Instance

#: How much each resource shrinks per step in tiered allocation
UNITS = {"memory": 64, "disk": 256, "vcpus": 1, "spindles": 1}
#: The resource to shrink for each failure reason
FAIL_RESOURCE = {model.FAIL_MEM: "memory", model.FAIL_N1: "memory",
                 model.FAIL_DISK: "disk", model.FAIL_CPU: "vcpus",
                 model.FAIL_SPINDLES: "spindles"}
#: The failure reasons of each resource
_REASONS = {res: frozenset(f for f, r in FAIL_RESOURCE.items() if r == res)
            for res in UNITS}
@dataclasses.dataclass(frozen=True)
class Spec:
    """An instance size: memory and disk in MiB, vCPUs, spindle use."""

    memory: int
    disk: int
    vcpus: int
    spindles: int = 1

    @classmethod
    def from_ispec(cls, ispec: policy.ISpec, spindles: int | None = None) -> Spec:
        """The size of a policy spec (one disk of its disk size)."""
        return cls(ispec.memory_size, ispec.disk_size, ispec.cpu_count,
                   ispec.spindle_use if spindles is None else spindles)

    def shrunk(self, resource: str, steps: int) -> Spec:
        """This spec with ``resource`` smaller by ``steps`` units."""
        value = getattr(self, resource) - steps * UNITS[resource]
        return dataclasses.replace(self, **{resource: value})

    def tspec(self) -> str:
        """``memory,disk,vcpus,spindles`` (hspace's TSPEC entries)."""
        return f"{self.memory},{self.disk},{self.vcpus},{self.spindles}"

    def describe(self, spindles: bool = False) -> str:
        """``MEM 128, DSK 1024, CPU 1`` (and ``SPN 1``)."""
        text = f"MEM {self.memory}, DSK {self.disk}, CPU {self.vcpus}"
        return text + (f", SPN {self.spindles}" if spindles else "")


def parse_spec(text: str, spindles: int = 1) -> Spec:
    """A ``disk,ram,cpu[,spindles]`` option value (sizes take units).

    @raise ValueError: naming what is wrong
    """
    from ganeti.htools.loader_iallocator import InputError
    from ganeti.htools.loader_simu import parse_unit
    parts = [p.strip() for p in text.split(",")]
    if len(parts) not in (3, 4):
        raise ValueError(f"invalid instance spec {text!r}: expected disk,ram,cpu"
                         "[,spindles]")
    try:
        disk, mem = parse_unit(parts[0]), parse_unit(parts[1])
    except InputError as err:
        raise ValueError(f"invalid instance spec {text!r}: {err}") from None
    try:
        cpus = int(parts[2])
        spn = int(parts[3]) if len(parts) == 4 else spindles
    except ValueError:
        raise ValueError(f"invalid instance spec {text!r}: the cpu count and"
                         " spindles must be integers") from None
    if disk < 0 or mem <= 0 or cpus <= 0 or spn < 0:
        raise ValueError(f"invalid instance spec {text!r}: memory and cpus must be"
                         " positive, disk and spindles not negative")
    return Spec(mem, disk, cpus, spn)


@dataclasses.dataclass
class Request:
    """What is allocated, and how."""

    disk_template: str
    #: NICs of each new instance (the policy checks their count)
    nic_count: int = 1
    options: Options = dataclasses.field(default_factory=Options)
    #: stop each run after this many instances (hspace -l)
    max_allocs: int | None = None
    #: the spindle use of each new instance (a spec's spindles are its
    #: disk's, which only count on nodes with exclusive storage)
    spindle_use: int = 1

    @property
    def required_nodes(self) -> int:
        """2 for DRBD, else 1."""
        return 2 if model.mirror_type(self.disk_template) == model.MIRROR_INTERNAL else 1


def make_instance(name: str, spec: Spec, request: Request) -> Instance:
    """A new instance of ``spec``: one disk (none if diskless), running,
    with the request's spindle use."""
    disks: tuple[model.Disk, ...] = ()
    if request.disk_template != constants.DT_DISKLESS:
        disks = (model.Disk(spec.disk, spec.spindles),)
    return Instance(name=name, memory=spec.memory, vcpus=spec.vcpus, disks=disks,
                    disk_template=request.disk_template, spindle_use=request.spindle_use,
                    nics=[{} for _ in range(request.nic_count)])


# -- which groups and nodes may be used ---------------------------------------


@dataclasses.dataclass
class Gate:
    """Where allocation may happen, given the cluster's N+1 state."""

    #: no allocation at all: some node fails N+1 (reported as FailN1)
    stop: bool
    #: UUIDs of the groups allocation may use
    groups: list[str]
    #: the nodes failing N+1, and groups that cannot restart a node's instances
    bad_nodes: list[str]
    bad_groups: list[str]
    #: nodes never chosen (the failing ones, with accept_existing)
    exclude: frozenset[str] = frozenset()


def non_redundant_groups(cluster: Cluster, capacity_checks: bool = True) -> list[str]:
    """UUIDs of the groups with N+1 failures, or (with capacity checks)
    whose shared-storage instances a node failure would leave stopped."""
    bad = []
    for uuid in sorted(cluster.groups):
        nodes = cluster.group_nodes(uuid)
        if cluster.n1_failures(nodes) or (
                capacity_checks and allocate.shared_restart_failures(cluster, nodes)):
            bad.append(uuid)
    return bad


def gate(cluster: Cluster, independent_groups: bool = False,
         accept_existing: bool = False, capacity_checks: bool = True) -> Gate:
    """Decide where to allocate (hspace(1), ``--independent-groups`` and
    ``--accept-existing-errors``).

    By default a node failing N+1 stops all allocation. Independent
    groups leave out the groups that are not N+1 redundant and allocate
    in the others; accepting existing errors allocates everywhere but on
    the failing nodes.
    """
    bad_nodes = sorted(n.name for n in cluster.n1_failures())
    bad_groups = non_redundant_groups(cluster, capacity_checks) \
        if independent_groups else sorted({cluster.nodes[n].group for n in bad_nodes})
    allocable = [g.uuid for g in sorted(cluster.groups.values(),
                                        key=lambda g: (g.policy_rank, g.name))
                 if g.policy_rank < 2]
    if accept_existing:
        return Gate(False, allocable, bad_nodes, bad_groups, frozenset(bad_nodes))
    usable = [g for g in allocable
              if g not in bad_groups and not any(cluster.nodes[n].group == g
                                                 for n in bad_nodes)]
    stop = bool(bad_nodes) and not (independent_groups and usable)
    return Gate(stop, [] if stop else usable, bad_nodes, bad_groups)


# -- the runs ---------------------------------------------------------------


@dataclasses.dataclass
class RunResult:
    """The outcome of one allocation run."""

    #: the cluster at the end of the run (a copy of the one given)
    cluster: Cluster
    #: the instances placed, in order, with their spec
    allocated: list[tuple[Instance, Spec]] = dataclasses.field(default_factory=list)
    #: failure reasons of the last attempt (the failed one, unless the run
    #: stopped at its limit)
    fails: Counter[str] = dataclasses.field(default_factory=Counter)
    #: whether the run stopped because of the limit of allocations
    limited: bool = False

    @property
    def count(self) -> int:
        """How many instances were placed."""
        return len(self.allocated)

    def spec_counts(self) -> list[tuple[Spec, int]]:
        """(spec, count) of consecutive runs of the same spec."""
        out: list[tuple[Spec, int]] = []
        for _, spec in self.allocated:
            if out and out[-1][0] == spec:
                out[-1] = (spec, out[-1][1] + 1)
            else:
                out.append((spec, 1))
        return out

    def per_group(self) -> Counter[str]:
        """Instances placed per group name."""
        counts: Counter[str] = Counter()
        for inst, _ in self.allocated:
            uuid = self.cluster.instance_group(inst)
            group = self.cluster.groups.get(uuid or "")
            counts[group.name if group else "?"] += 1
        return counts

    def reasons(self) -> list[tuple[str, int]]:
        """The failure reasons, most frequent first (then hail's order),
        every known one listed."""
        order = list(model.FAIL_ORDER) + sorted(set(self.fails) - set(model.FAIL_ORDER))
        return sorted(((mode, self.fails.get(mode, 0)) for mode in order),
                      key=lambda item: -item[1])

    def main_reason(self) -> str:
        """The most frequent failure reason."""
        return self.reasons()[0][0]


class _Run:
    """One allocation run on a copy of the cluster."""

    def __init__(self, cluster: Cluster, request: Request, where: Gate) -> None:
        self.result = RunResult(copy.deepcopy(cluster))
        self.request = request
        self.where = where
        self.allocator = Allocator(self.result.cluster, request.options,
                                   request.required_nodes, where.groups, where.exclude)
        self._next = 0

    def _name(self) -> str:
        while True:
            name = f"new-{self._next}"
            self._next += 1
            if name not in self.result.cluster.instances:
                return name

    def _room(self) -> bool:
        limit = self.request.max_allocs
        if limit is not None and self.result.count >= limit:
            self.result.limited = True
            return False
        return True

    def fill(self, spec: Spec) -> int:
        """Place instances of ``spec`` until one fails; how many fit."""
        placed = 0
        if self.where.stop:
            self.result.fails = Counter({model.FAIL_N1: 1})
            return 0
        while self._room():
            inst = self.result.cluster.prepare_instance(
                make_instance(self._name(), spec, self.request))
            place, fails = self.allocator.find(inst)
            # the last attempt's failures (a successful one's too, when
            # the run stops at its limit)
            self.result.fails = fails
            if place is None:
                break
            self.allocator.commit(inst, place)
            self.result.allocated.append((inst, spec))
            placed += 1
        return placed

    def shrink(self, spec: Spec, floor: Spec) -> Spec | None:
        """The next tiered spec: the resource failing most, shrunk to where
        fewer nodes refuse it (None when nothing can shrink)."""
        order = [mode for mode, count in self.result.reasons() if count]
        resources = list(dict.fromkeys(FAIL_RESOURCE[m] for m in order
                                       if m in FAIL_RESOURCE))
        for res in resources:
            unit = UNITS[res]
            lowest = max(getattr(floor, res), unit if res != "spindles" else 0)
            max_steps = (getattr(spec, res) - lowest) // unit
            if max_steps < 1:
                continue

            def refusing(steps: int, res: str = res) -> int:
                inst = make_instance("probe", spec.shrunk(res, steps), self.request)
                return self.allocator.failing_nodes(inst, _REASONS[res])

            now = refusing(0)
            if now == 0 or refusing(max_steps) >= now:
                continue
            lo, hi = 1, max_steps  # the answer lies in [lo, hi]
            while lo < hi:
                mid = (lo + hi) // 2
                if refusing(mid) < now:
                    hi = mid
                else:
                    lo = mid + 1
            return spec.shrunk(res, lo)
        return None


def standard_allocation(cluster: Cluster, spec: Spec, request: Request,
                        where: Gate) -> RunResult:
    """Place instances of ``spec`` until one no longer fits (on a copy)."""
    run = _Run(cluster, request, where)
    run.fill(spec)
    return run.result


def tiered_allocation(cluster: Cluster, starts: Sequence[tuple[Spec, Spec]],
                      request: Request, where: Gate) -> RunResult:
    """Tiered allocation from each (start spec, smallest spec) in turn,
    each going on from the state the previous one left (on a copy)."""
    run = _Run(cluster, request, where)
    for start, floor in starts:
        spec: Spec | None = start
        while spec is not None:
            run.fill(spec)
            if run.result.limited or where.stop:
                return run.result
            spec = run.shrink(spec, floor)
    return run.result


def tiered_starts(ipolicy: policy.IPolicy, spindles: int | None = None,
                  given: Spec | None = None) -> list[tuple[Spec, Spec]]:
    """The tiered start specs and their floors: ``given`` (down to the
    policy's smallest minimum) or each min/max pair's maximum."""
    if given is not None:
        mins = [lo for lo, _ in ipolicy.minmax]
        floor = Spec(min(m.memory_size for m in mins), min(m.disk_size for m in mins),
                     min(m.cpu_count for m in mins), min(m.spindle_use for m in mins))
        return [(given, floor)]
    return [(Spec.from_ispec(hi, spindles), Spec.from_ispec(lo, spindles))
            for lo, hi in ipolicy.minmax]


# -- resources ----------------------------------------------------------------


@dataclasses.dataclass
class Stats:
    """The cluster's resources, as hspace reports them (MiB, CPUs)."""

    nodes: int = 0
    instances: int = 0
    score: float = 0.0
    t_mem: float = 0.0
    t_dsk: float = 0.0
    t_cpu: float = 0.0
    t_spn: int = 0
    #: virtual CPUs the nodes may give (vCPU ratio times physical CPUs)
    v_cpu: int = 0
    f_mem: int = 0
    a_mem: int = 0
    i_mem: int = 0
    x_mem: int = 0
    n_mem: int = 0
    f_dsk: int = 0
    a_dsk: int = 0
    i_dsk: int = 0
    f_spn: int = 0
    i_spn: int = 0
    i_cpu: int = 0
    m_mem: int = 0
    m_dsk: int = 0
    #: the vCPU ratio, for normalised CPUs (the largest of the nodes' groups)
    vcpu_ratio: float = 1.0
    #: (storage type, key) -> (free, total) over the nodes
    units: dict[tuple[str, str], tuple[int, int]] = dataclasses.field(default_factory=dict)

    @property
    def mem_eff(self) -> float:
        """Instance memory over total memory."""
        return self.i_mem / self.t_mem if self.t_mem else 0.0

    @property
    def dsk_eff(self) -> float:
        """Instance disk over total disk."""
        return self.i_dsk / self.t_dsk if self.t_dsk else 0.0

    @property
    def cpu_eff(self) -> float:
        """Instance vCPUs over the vCPUs the nodes may give."""
        return self.i_cpu / self.v_cpu if self.v_cpu else 0.0

    @property
    def spn_eff(self) -> float:
        """Instance spindle use over total spindles."""
        return self.i_spn / self.t_spn if self.t_spn else 0.0


def cluster_stats(cluster: Cluster) -> Stats:
    """The resources of the cluster's online nodes.

    Free memory is what the nodes report less what stopped instances
    would take; *available* memory is free memory beyond the N+1
    reservation, available disk is free disk beyond the ``--min-disk``
    share; instance disk is what the nodes have in use.
    """
    use_loc = bool(cluster.location_prefixes and cluster.excl_prefixes)
    nodes = sorted(cluster.nodes.values(), key=lambda n: n.name)
    st = Stats(nodes=len(nodes), instances=len(cluster.instances),
               score=score.compute_score(nodes, use_loc))
    ratios = [cluster.ipolicy.vcpu_ratio]
    units: dict[tuple[str, str], list[int]] = {}
    for node in nodes:
        if node.offline:
            continue
        group = cluster.groups.get(node.group)
        if group is not None:
            ratios.append(group.ipolicy.vcpu_ratio)
        st.t_mem += node.t_mem
        st.t_dsk += node.t_dsk
        st.t_cpu += node.t_cpu
        st.t_spn += node.t_spindles
        if node.hi_cpu != float("inf"):
            st.v_cpu += int(node.hi_cpu)
        st.f_mem += node.f_mem
        avail = max(0, node.f_mem - node.r_mem)
        st.a_mem += avail
        st.i_mem += node.i_mem
        st.x_mem += node.x_mem
        st.n_mem += node.n_mem
        st.f_dsk += node.f_dsk
        davail = max(0, int(node.f_dsk - node.lo_dsk))
        st.a_dsk += davail
        st.i_dsk += max(0, int(node.t_dsk) - node.f_dsk)
        st.f_spn += node.f_spindles
        st.i_spn += node.inst_spindles
        st.i_cpu += node.u_cpu - node.n_cpu
        if node.available:
            st.m_mem = max(st.m_mem, avail)
            st.m_dsk = max(st.m_dsk, davail)
        for unit in node.storage:
            acc = units.setdefault((unit.kind, unit.key), [0, 0])
            acc[0] += unit.free
            acc[1] += unit.total
    st.vcpu_ratio = max(ratios)
    st.units = {key: (free, total) for key, (free, total) in sorted(units.items())}
    return st


@dataclasses.dataclass(frozen=True)
class KeyMetrics:
    """Resources of one kind of the tiered run's key metrics."""

    cpu: int
    npu: float
    mem: int
    dsk: int
    spn: int


def key_metrics(ini: Stats, fin: Stats) -> tuple[KeyMetrics, KeyMetrics, KeyMetrics]:
    """(used at the start, allocated by the tiered run, left unallocable).

    NPU is the vCPU count over the vCPU ratio (physical CPUs' worth).
    """
    ratio = fin.vcpu_ratio or 1.0

    def make(cpu: int, mem: int, dsk: int, spn: int) -> KeyMetrics:
        return KeyMetrics(cpu, cpu / ratio, mem, dsk, spn)

    used = make(ini.i_cpu, ini.i_mem, ini.i_dsk, ini.i_spn)
    pool = make(fin.i_cpu - ini.i_cpu, fin.i_mem - ini.i_mem, fin.i_dsk - ini.i_dsk,
                fin.i_spn - ini.i_spn)
    unav = make(fin.v_cpu - fin.i_cpu, fin.f_mem, fin.f_dsk,
                max(0, fin.t_spn - fin.i_spn))
    return used, pool, unav
