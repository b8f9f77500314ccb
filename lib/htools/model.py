"""The htools cluster model: groups, nodes, instances and the cluster.

Memory follows hail's conventions. A node's ``f_mem`` starts from the free
memory the node reports; running instances already use theirs, so loading
them changes nothing, but instances that are down (not offline) would need
their memory when started again, so it is subtracted from their primary
node's ``f_mem`` (hbal(1), "OFFLINE INSTANCES"). Offline instances reserve
nothing. ``r_mem`` is the memory a node must keep free for N+1 redundancy:
the largest sum, over the primary nodes it is secondary for, of the memory
of the auto-balanced DRBD instances that would fail over to it. A node
whose ``f_mem`` is below ``r_mem`` fails the N+1 check.

Disk, spindles and storage units (when the input lists them) are likewise
taken as reported for the instances already there; new placements and
moves subtract and give back what they use.

Nodes are mutable; solvers try a placement by applying it, reading the
score and undoing it (``Node.snapshot``/``Node.restore`` keep the undo
exact).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

from ganeti import constants
from ganeti.htools.policy import IPolicy

# Failure modes, under the names hail reports them with
FAIL_MEM = "FailMem"
FAIL_DISK = "FailDisk"
FAIL_CPU = "FailCPU"
FAIL_N1 = "FailN1"
FAIL_TAGS = "FailTags"
FAIL_SPINDLES = "FailSpindles"
FAIL_ORDER = (FAIL_MEM, FAIL_DISK, FAIL_CPU, FAIL_N1, FAIL_TAGS, FAIL_SPINDLES)

MIRROR_NONE = "none"
MIRROR_INTERNAL = "internal"
MIRROR_EXTERNAL = "external"

#: DRBD metadata per disk, in MiB (as Ganeti reserves it)
DRBD_META_SIZE = 128

#: Templates whose disks take space from the nodes' own storage
LOCAL_STORAGE_TEMPLATES = frozenset([constants.DT_PLAIN, constants.DT_DRBD8,
                                     constants.DT_FILE])

#: Storage unit types a disk of each template can live on
TEMPLATE_STORAGE_TYPES = {
    constants.DT_PLAIN: (constants.ST_LVM_VG,),
    constants.DT_DRBD8: ("drbd8", constants.DT_DRBD8, constants.ST_LVM_VG),
    constants.DT_FILE: (constants.ST_FILE,),
}

# Cluster tag prefixes configuring htools
TAG_EXCLUSION = "htools:iextags:"
TAG_LOCATION = "htools:nlocation:"
TAG_DESIRED_LOCATION = "htools:desiredlocation:"

ALLOC_POLICY_ORDER = {constants.ALLOC_POLICY_PREFERRED: 0,
                      constants.ALLOC_POLICY_LAST_RESORT: 1,
                      constants.ALLOC_POLICY_UNALLOCABLE: 2}


def mirror_type(template: str) -> str:
    """How an instance of ``template`` is mirrored (none/internal/external)."""
    if template in constants.DTS_INT_MIRROR:
        return MIRROR_INTERNAL
    if template in constants.DTS_EXT_MIRROR:
        return MIRROR_EXTERNAL
    return MIRROR_NONE


def compute_disk_space(template: str, sizes: Iterable[int]) -> int:
    """The node disk space an instance of ``template`` uses on each node."""
    sizes = list(sizes)
    if template not in LOCAL_STORAGE_TEMPLATES:
        return 0
    if template == constants.DT_DRBD8:
        return sum(sizes) + DRBD_META_SIZE * len(sizes)
    return sum(sizes)


def prefixed_tags(tags: Iterable[str], prefixes: Iterable[str]) -> frozenset[str]:
    """The tags starting with one of ``prefixes`` followed by a colon."""
    heads = tuple(f"{p}:" for p in prefixes)
    if not heads:
        return frozenset()
    return frozenset(t for t in tags if t.startswith(heads))


@dataclasses.dataclass
class Group:
    """A node group."""

    uuid: str
    name: str
    alloc_policy: str = constants.ALLOC_POLICY_PREFERRED
    ipolicy: IPolicy = dataclasses.field(default_factory=IPolicy.default)
    networks: list[str] = dataclasses.field(default_factory=list)
    tags: list[str] = dataclasses.field(default_factory=list)

    @property
    def policy_rank(self) -> int:
        """0 for preferred, 1 for last_resort, 2 for unallocable."""
        return ALLOC_POLICY_ORDER.get(self.alloc_policy, 2)


@dataclasses.dataclass(frozen=True)
class Disk:
    """One instance disk."""

    size: int
    spindles: int | None = None
    mode: str = constants.DISK_RDWR
    vg: str | None = None


@dataclasses.dataclass(slots=True, eq=False)
class Instance:
    """An instance (existing or to be placed)."""

    name: str
    memory: int
    vcpus: int
    disks: tuple[Disk, ...] = ()
    disk_template: str = constants.DT_PLAIN
    spindle_use: int = 1
    tags: tuple[str, ...] = ()
    admin_state: str = constants.ADMINST_UP
    auto_balance: bool = True
    pnode: str | None = None
    snode: str | None = None
    nics: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    hypervisor: str | None = None
    os: str | None = None
    forthcoming: bool = False
    disk_space: int = -1
    #: dynamic load (cpu, memory, disk, network); zero without utilisation data
    util: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    excl_tags: frozenset[str] = frozenset()
    desired_locations: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if self.disk_space < 0:
            self.disk_space = compute_disk_space(self.disk_template,
                                                 (d.size for d in self.disks))

    @property
    def mirror(self) -> str:
        """none, internal (DRBD) or external (shared storage)."""
        return mirror_type(self.disk_template)

    @property
    def uses_memory(self) -> bool:
        """Whether the instance holds (or reserves) memory on its primary."""
        return self.admin_state != constants.ADMINST_OFFLINE

    @property
    def is_running(self) -> bool:
        """Whether the instance is marked to run."""
        return self.admin_state == constants.ADMINST_UP

    @property
    def local_storage(self) -> bool:
        """Whether its disks use the nodes' own storage."""
        return self.disk_template in LOCAL_STORAGE_TEMPLATES

    @property
    def nodes(self) -> list[str]:
        """Primary then secondary node names."""
        return [n for n in (self.pnode, self.snode) if n]


@dataclasses.dataclass(slots=True)
class StorageUnit:
    """A storage unit of a node (volume group, file directory, ...)."""

    kind: str
    key: str
    free: int
    total: int
    params: tuple[Any, ...] = ()


_SCALARS = ("f_mem", "f_dsk", "u_cpu", "f_spindles", "inst_spindles", "r_mem",
            "i_mem", "conflicts", "loc_conflicts", "dl_unsat", "util")


@dataclasses.dataclass(slots=True, eq=False)
class Node:
    """A node and the resources its instances use."""

    name: str
    group: str
    t_mem: float = 0.0
    n_mem: int = 0
    f_mem: int = 0
    t_dsk: float = 0.0
    f_dsk: int = 0
    t_cpu: float = 0.0
    n_cpu: int = 0
    t_spindles: int = 0
    f_spindles: int = 0
    exclusive_storage: bool = False
    cpu_speed: float = 1.0
    offline: bool = False
    drained: bool = False
    vm_capable: bool = True
    master_candidate: bool = False
    is_master: bool = False
    tags: frozenset[str] = frozenset()
    storage: list[StorageUnit] = dataclasses.field(default_factory=list)
    #: instance name -> (storage unit index, MiB) of the disks placed here
    unit_use: dict[str, list[tuple[int, int]]] = dataclasses.field(default_factory=dict)
    # derived and per-instance state
    x_mem: int = 0
    u_cpu: int = 0
    i_mem: int = 0
    r_mem: int = 0
    inst_spindles: int = 0
    hi_cpu: float = float("inf")
    hi_spindles: float = float("inf")
    lo_dsk: float = 0.0
    plist: set[str] = dataclasses.field(default_factory=set)
    slist: set[str] = dataclasses.field(default_factory=set)
    peers: dict[str, int] = dataclasses.field(default_factory=dict)
    p_tags: dict[str, int] = dataclasses.field(default_factory=dict)
    conflicts: int = 0
    locations: frozenset[str] = frozenset()
    loc_conflicts: int = 0
    dl_unsat: int = 0
    util: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)

    def __post_init__(self) -> None:
        self.u_cpu = self.n_cpu

    @property
    def available(self) -> bool:
        """Whether new instances may be placed here."""
        return not (self.offline or self.drained) and self.vm_capable

    @property
    def fail_n1(self) -> bool:
        """Whether the node lacks the memory to take its peers' failovers."""
        return self.f_mem < self.r_mem

    def set_policy(self, ipolicy: IPolicy, min_disk_ratio: float = 0.0) -> None:
        """Derive the CPU, spindle and free disk limits from a policy."""
        self.hi_cpu = int(ipolicy.vcpu_ratio * self.t_cpu) if self.t_cpu else float("inf")
        if self.exclusive_storage:
            self.hi_spindles = float(self.t_spindles)
        else:
            self.hi_spindles = ipolicy.spindle_ratio * self.t_spindles
        self.lo_dsk = min_disk_ratio * self.t_dsk

    def inst_spindle_use(self, inst: Instance) -> int:
        """Spindles ``inst`` takes here: its disks' on exclusive storage."""
        if self.exclusive_storage:
            return sum(d.spindles or 0 for d in inst.disks)
        return inst.spindle_use

    # -- storage units -----------------------------------------------------

    def _disk_plan(self, inst: Instance) -> list[int] | None:
        """Which storage unit each disk would go to, or None if one won't fit."""
        types = TEMPLATE_STORAGE_TYPES.get(inst.disk_template, ())
        frees = [u.free for u in self.storage]
        meta = DRBD_META_SIZE if inst.disk_template == constants.DT_DRBD8 else 0
        plan = []
        for disk in inst.disks:
            size = disk.size + meta
            best = -1
            for idx, unit in enumerate(self.storage):
                if (unit.kind in types and (disk.vg is None or unit.key == disk.vg)
                        and frees[idx] >= size and (best < 0 or frees[idx] > frees[best])):
                    best = idx
            if best < 0:
                return None
            frees[best] -= size
            plan.append(best)
        return plan

    def _storage_take(self, inst: Instance) -> None:
        if not self.storage or not inst.local_storage:
            return
        plan = self._disk_plan(inst)
        meta = DRBD_META_SIZE if inst.disk_template == constants.DT_DRBD8 else 0
        if plan is None:  # forced placement: charge the first compatible units
            types = TEMPLATE_STORAGE_TYPES.get(inst.disk_template, ())
            plan = [next((i for i, u in enumerate(self.storage) if u.kind in types), -1)
                    for _ in inst.disks]
        taken = []
        for disk, idx in zip(inst.disks, plan):
            if idx >= 0:
                self.storage[idx].free -= disk.size + meta
                taken.append((idx, disk.size + meta))
        self.unit_use[inst.name] = taken

    def _storage_give(self, inst: Instance) -> None:
        if not self.storage or not inst.local_storage:
            return
        taken = self.unit_use.pop(inst.name, None)
        if taken is not None:
            for idx, size in taken:
                self.storage[idx].free += size
            return
        # loaded with the cluster: which unit holds which disk is unknown
        types = TEMPLATE_STORAGE_TYPES.get(inst.disk_template, ())
        meta = DRBD_META_SIZE if inst.disk_template == constants.DT_DRBD8 else 0
        for disk in inst.disks:
            size = disk.size + meta
            units = [u for u in self.storage if u.kind in types
                     and (disk.vg is None or u.key == disk.vg)]
            used = [u for u in units if u.total - u.free >= size]
            if used or units:
                (used or units)[0].free += size

    # -- checks ------------------------------------------------------------

    def _check_disk(self, inst: Instance) -> bool:
        if not inst.local_storage:
            return True
        if self.f_dsk - inst.disk_space < self.lo_dsk:
            return False
        return not self.storage or self._disk_plan(inst) is not None

    def _check_spindles(self, inst: Instance, soft: bool) -> bool:
        use = self.inst_spindle_use(inst)
        if self.exclusive_storage:
            return self.f_spindles >= use
        return not soft or self.inst_spindles + use <= self.hi_spindles

    def check_add_pri(self, inst: Instance, soft: bool = True) -> str | None:
        """Why ``inst`` cannot become a primary here (a FAIL_*), or None.

        ``soft`` False skips the soft checks (CPU and spindle ratios).
        """
        new_mem = self.f_mem - inst.memory if inst.uses_memory else self.f_mem
        if new_mem < 0:
            return FAIL_MEM
        if not self._check_disk(inst):
            return FAIL_DISK
        if new_mem < self.r_mem and not self.fail_n1:
            return FAIL_N1
        if soft and self.u_cpu + inst.vcpus > self.hi_cpu:
            return FAIL_CPU
        if not self._check_spindles(inst, soft):
            return FAIL_SPINDLES
        if inst.excl_tags and any(self.p_tags.get(t) for t in inst.excl_tags):
            return FAIL_TAGS
        return None

    def check_add_sec(self, inst: Instance, pnode: str, soft: bool = True) -> str | None:
        """Why ``inst`` (primary on ``pnode``) cannot have its secondary here."""
        if not self._check_disk(inst):
            return FAIL_DISK
        if inst.uses_memory and inst.auto_balance:
            if inst.memory > self.f_mem:
                return FAIL_MEM
            need = self.peers.get(pnode, 0) + inst.memory
            if self.f_mem < max(self.r_mem, need) and not self.fail_n1:
                return FAIL_N1
        if not self._check_spindles(inst, soft):
            return FAIL_SPINDLES
        return None

    # -- changes -----------------------------------------------------------

    def _add_util(self, inst: Instance, sign: int, primary: bool) -> None:
        cpu, mem, dsk, net = inst.util
        ucpu, umem, udsk, unet = self.util
        if primary:
            self.util = (ucpu + sign * cpu, umem + sign * mem, udsk + sign * dsk,
                         unet + sign * net)
        else:
            self.util = (ucpu, umem, udsk + sign * dsk, unet)

    def add_pri(self, inst: Instance, existing: bool = False) -> None:
        """Make ``inst`` a primary instance of this node.

        ``existing`` means the node's reported free resources already
        account for it (loading a cluster), except the memory of an
        instance that is down.
        """
        self.plist.add(inst.name)
        if inst.uses_memory:
            self.i_mem += inst.memory
            if not existing or not inst.is_running:
                self.f_mem -= inst.memory
        if not existing:
            if inst.local_storage:
                self.f_dsk -= inst.disk_space
                self._storage_take(inst)
            if self.exclusive_storage:
                self.f_spindles -= self.inst_spindle_use(inst)
        self.u_cpu += inst.vcpus
        self.inst_spindles += self.inst_spindle_use(inst)
        for tag in inst.excl_tags:
            count = self.p_tags.get(tag, 0)
            if count:
                self.conflicts += 1
            self.p_tags[tag] = count + 1
        if inst.desired_locations:
            self.dl_unsat += len(inst.desired_locations - self.tags)
        self._add_util(inst, 1, True)

    def remove_pri(self, inst: Instance) -> None:
        """Undo ``add_pri`` (the resources come back to the node)."""
        self.plist.discard(inst.name)
        if inst.uses_memory:
            self.i_mem -= inst.memory
            self.f_mem += inst.memory
        if inst.local_storage:
            self.f_dsk += inst.disk_space
            self._storage_give(inst)
        if self.exclusive_storage:
            self.f_spindles += self.inst_spindle_use(inst)
        self.u_cpu -= inst.vcpus
        self.inst_spindles -= self.inst_spindle_use(inst)
        for tag in inst.excl_tags:
            count = self.p_tags.get(tag, 0) - 1
            if count > 0:
                self.conflicts -= 1
                self.p_tags[tag] = count
            else:
                self.p_tags.pop(tag, None)
        if inst.desired_locations:
            self.dl_unsat -= len(inst.desired_locations - self.tags)
        self._add_util(inst, -1, True)

    def add_sec(self, inst: Instance, pnode: str, existing: bool = False) -> None:
        """Make ``inst`` (primary on ``pnode``) a secondary instance here."""
        self.slist.add(inst.name)
        if not existing:
            if inst.local_storage:
                self.f_dsk -= inst.disk_space
                self._storage_take(inst)
            if self.exclusive_storage:
                self.f_spindles -= self.inst_spindle_use(inst)
        self.inst_spindles += self.inst_spindle_use(inst)
        if inst.uses_memory and inst.auto_balance:
            need = self.peers.get(pnode, 0) + inst.memory
            self.peers[pnode] = need
            if need > self.r_mem:
                self.r_mem = need
        self._add_util(inst, 1, False)

    def remove_sec(self, inst: Instance, pnode: str) -> None:
        """Undo ``add_sec``."""
        self.slist.discard(inst.name)
        if inst.local_storage:
            self.f_dsk += inst.disk_space
            self._storage_give(inst)
        if self.exclusive_storage:
            self.f_spindles += self.inst_spindle_use(inst)
        self.inst_spindles -= self.inst_spindle_use(inst)
        if inst.uses_memory and inst.auto_balance and pnode in self.peers:
            left = self.peers[pnode] - inst.memory
            if left > 0:
                self.peers[pnode] = left
            else:
                del self.peers[pnode]
            self.r_mem = max(self.peers.values(), default=0)
        self._add_util(inst, -1, False)

    def snapshot(self) -> tuple[Any, ...]:
        """The node's scalar state, for an exact ``restore`` after a trial."""
        return (tuple(getattr(self, f) for f in _SCALARS),
                tuple(u.free for u in self.storage))

    def restore(self, snap: tuple[Any, ...]) -> None:
        """Put back the scalars saved by ``snapshot``."""
        values, frees = snap
        for field, val in zip(_SCALARS, values):
            setattr(self, field, val)
        for unit, free in zip(self.storage, frees):
            unit.free = free


class Cluster:
    """Groups, nodes and instances, and the htools settings from cluster tags."""

    def __init__(self, name: str = "", tags: Iterable[str] = (),
                 ipolicy: IPolicy | None = None,
                 enabled_hypervisors: Iterable[str] = ()) -> None:
        self.name = name
        self.tags = list(tags)
        self.ipolicy = ipolicy or IPolicy.default()
        self.enabled_hypervisors = list(enabled_hypervisors)
        self.groups: dict[str, Group] = {}
        self.nodes: dict[str, Node] = {}
        self.instances: dict[str, Instance] = {}
        self.excl_prefixes = self._tag_suffixes(TAG_EXCLUSION)
        self.location_prefixes = self._tag_suffixes(TAG_LOCATION)
        self.desired_prefixes = self._tag_suffixes(TAG_DESIRED_LOCATION)
        self._group_nodes: dict[str, list[Node]] = {}

    def _tag_suffixes(self, prefix: str) -> tuple[str, ...]:
        return tuple(sorted(t[len(prefix):] for t in self.tags if t.startswith(prefix)))

    def add_group(self, group: Group) -> None:
        """Add a node group."""
        self.groups[group.uuid] = group
        self._group_nodes.clear()

    def add_node(self, node: Node) -> None:
        """Add a node; its limits come from its group's policy."""
        node.locations = prefixed_tags(node.tags, self.location_prefixes)
        group = self.groups.get(node.group)
        node.set_policy(group.ipolicy if group else self.ipolicy)
        self.nodes[node.name] = node
        self._group_nodes.clear()

    def prepare_instance(self, inst: Instance) -> Instance:
        """Compute the instance's exclusion and desired location tags."""
        inst.excl_tags = prefixed_tags(inst.tags, self.excl_prefixes)
        inst.desired_locations = prefixed_tags(inst.tags, self.desired_prefixes)
        return inst

    def find_group(self, key: str) -> Group | None:
        """A group by UUID or by name."""
        group = self.groups.get(key)
        if group is None:
            group = next((g for g in self.groups.values() if g.name == key), None)
        return group

    def group_nodes(self, uuid: str) -> list[Node]:
        """The nodes of a group, sorted by name."""
        if not self._group_nodes:
            for node in sorted(self.nodes.values(), key=lambda n: n.name):
                self._group_nodes.setdefault(node.group, []).append(node)
        return self._group_nodes.get(uuid, [])

    def instance_group(self, inst: Instance) -> str | None:
        """The UUID of the group of an instance's primary node."""
        node = self.nodes.get(inst.pnode or "")
        return node.group if node else None

    def _link(self, inst: Instance, sign: int) -> None:
        if inst.pnode and inst.snode:
            pnode = self.nodes[inst.pnode]
            if pnode.locations & self.nodes[inst.snode].locations:
                pnode.loc_conflicts += sign

    def place(self, inst: Instance, pnode: str, snode: str | None = None,
              existing: bool = False) -> None:
        """Put ``inst`` on ``pnode`` (and ``snode``) and record it."""
        inst.pnode, inst.snode = pnode, snode
        self.nodes[pnode].add_pri(inst, existing)
        if snode:
            self.nodes[snode].add_sec(inst, pnode, existing)
        self._link(inst, 1)
        self.instances[inst.name] = inst

    def unplace(self, inst: Instance) -> None:
        """Take ``inst`` off its nodes (it stays known, with its node names)."""
        self._link(inst, -1)
        if inst.pnode:
            self.nodes[inst.pnode].remove_pri(inst)
        if inst.snode and inst.pnode:
            self.nodes[inst.snode].remove_sec(inst, inst.pnode)

    def move(self, inst: Instance, pnode: str, snode: str | None) -> None:
        """Move ``inst`` to new nodes (a failover, disk replacement, ...)."""
        self.unplace(inst)
        self.place(inst, pnode, snode)

    def n1_failures(self, nodes: Iterable[Node] | None = None) -> list[Node]:
        """The online nodes failing the N+1 check."""
        nodes = self.nodes.values() if nodes is None else nodes
        return [n for n in nodes if not n.offline and n.fail_n1]
