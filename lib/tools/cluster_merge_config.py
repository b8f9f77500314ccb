"""Merging another cluster's configuration into ours (``cluster-merge``).

Everything here works on :class:`ganeti.objects.ConfigData` values and
touches no file and no node: :mod:`ganeti.tools.cluster_merge` fetches
the configurations, stops and restarts what must be, and writes the result.

:func:`CheckMerge` lists every reason a merge cannot be done, so that the
tool refuses before it changes anything and names each conflict:

- the same cluster twice, or a configuration of another format version;
- a node, instance or MAC address in both clusters, or two nodes whose
  node daemons would share an address and port;
- a node group name in both clusters, unless the groups are to be merged
  (``--groups=merge``: their nodes join our group of that name) or renamed
  (``--groups=rename``: theirs becomes ``<name>-<their cluster>``);
- a network name in both clusters whose definitions differ, or an address
  both clusters have reserved in it (same-named networks of the same
  definition are merged: their reservations join ours);
- an instance whose effective parameters would change once our cluster's
  defaults apply (hypervisor, backend, OS and NIC parameters), an instance
  whose hypervisor or disk template is not enabled here, or whose storage
  (volume group, DRBD helper, file storage directories) differs;
- an offline node (it cannot be re-added).

:func:`MergeConfig` then builds the merged configuration. Their objects
keep their UUIDs, except where a UUID is already used here (a new one is
made and every reference follows). Their nodes enter offline and not
master candidates: re-adding them (``gnt-node add --readd``) brings them
online and decides their roles. DRBD minors are per node and their nodes
are new here, so minors stay as they are; the TCP/UDP ports of their DRBD
disks and instances come from one cluster-wide range, so a port we use
already is replaced by a new one above the highest used port of both. The
cluster's tags become the union of both; OS parameters and per-OS
hypervisor parameters we lack are taken from them. Their job filter rules
are not taken. The result must pass the configuration's own checks
(:func:`ganeti.config.verify.VerifyConfigData`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ganeti import constants, errors, objects
from ganeti import network as netpool
from ganeti.config.verify import VerifyConfigData

GROUPS_MERGE = "merge"
GROUPS_RENAME = "rename"
#: The ``--groups`` choices
GROUPS_MODES = (GROUPS_MERGE, GROUPS_RENAME)

#: Disk templates and the cluster settings their instances depend on
_STORAGE_SETTINGS = {
    constants.DT_PLAIN: ("volume_group_name",),
    constants.DT_DRBD8: ("volume_group_name", "drbd_usermode_helper"),
    constants.DT_FILE: ("file_storage_dir",),
    constants.DT_SHARED_FILE: ("shared_file_storage_dir",),
    constants.DT_GLUSTER: ("gluster_storage_dir",),
}

#: The start of the configuration check's message about too few candidates
_CANDIDATES_PROBLEM = "not enough master candidates"

#: How many lines of one kind of problem to show before summing up
MAX_LISTED = 20


@dataclass(frozen=True)
class MergedNode:
    """A node brought in by the merge: what re-adding it needs."""

    name: str
    primary_ip: str
    secondary_ip: str
    noded_port: int | None
    confd_port: int | None
    ssh_port: int


@dataclass
class MergePlan:
    """The merged configuration and what the merge did to get there."""

    data: objects.ConfigData
    cluster_name: str
    nodes: list[MergedNode] = field(default_factory=list)
    instances: list[str] = field(default_factory=list)
    #: What changed on the way (renamed groups, new UUIDs, new ports)
    notes: list[str] = field(default_factory=list)
    #: What the administrator should know (merged groups' parameters, ...)
    warnings: list[str] = field(default_factory=list)


# --- Small helpers ---------------------------------------------------------------------

def _Lower(name: str) -> str:
    return name.lower()


def _ShortName(cluster_name: str) -> str:
    return cluster_name.split(".", 1)[0]


def _IterTree(disk: objects.Disk) -> Iterator[objects.Disk]:
    yield disk
    for child in disk.children or []:
        yield from _IterTree(child)


def DiskTemplate(data: objects.ConfigData, inst: objects.Instance) -> str:
    """An instance's disk template: its first disk's type, or diskless."""
    for disk_uuid in inst.disks or []:
        disk = data.disks.get(disk_uuid)
        if disk is not None:
            return disk.dev_type
    return constants.DT_DISKLESS


def _UsedPorts(data: objects.ConfigData) -> set[int]:
    ports = set()
    for disk in data.IterAllDisks():
        if disk.dev_type == constants.DT_DRBD8 and disk.logical_id \
                and len(disk.logical_id) == 6:
            ports.add(disk.logical_id[2])
    for inst in data.instances.values():
        if inst.network_port is not None:
            ports.add(inst.network_port)
    return ports


def _AllUUIDs(data: objects.ConfigData) -> set[str]:
    uuids = {data.cluster.uuid}
    for kind in ("nodes", "nodegroups", "instances", "networks", "disks", "filters"):
        uuids.update(getattr(data, kind))
    for disk in data.IterAllDisks():
        if disk.uuid:
            uuids.add(disk.uuid)
    for inst in data.instances.values():
        uuids.update(nic.uuid for nic in inst.nics if nic.uuid)
    return uuids


def _Endpoint(node: objects.Node) -> tuple[str, int]:
    return (node.noded_address or node.primary_ip,
            node.noded_port or constants.DEFAULT_NODED_PORT)


def _Limit(lines: list[str]) -> list[str]:
    if len(lines) <= MAX_LISTED:
        return lines
    return lines[:MAX_LISTED] + [f"... and {len(lines) - MAX_LISTED} more"]


def _NetDefinition(net: objects.Network) -> tuple[Any, ...]:
    return (net.network, net.gateway, net.network6, net.gateway6)


def SshPort(data: objects.ConfigData, node: objects.Node) -> int:
    """The SSH port of ``node`` (its parameters filled with its group's and
    the cluster's)."""
    group = data.nodegroups.get(node.group)
    params = data.cluster.FillND(node, group) if group is not None \
        else data.cluster.SimpleFillND(node.ndparams)
    port: Any = params.get(constants.ND_SSH_PORT) \
        or constants.NDC_DEFAULTS[constants.ND_SSH_PORT]
    return int(port)


def RenamedGroup(name: str, their_cluster: str, taken: Iterable[str]) -> str:
    """The name a clashing group of ``their_cluster`` gets with
    ``--groups=rename``: ``<name>-<their cluster's first label>``, with a
    number added while that is taken too."""
    taken_lower = {_Lower(t) for t in taken}
    base = f"{name}-{_ShortName(their_cluster)}"
    candidate, number = base, 2
    while _Lower(candidate) in taken_lower:
        candidate = f"{base}{number}"
        number += 1
    return candidate


# --- Checks ------------------------------------------------------------------------------

def _CheckIdentity(ours: objects.ConfigData, theirs: objects.ConfigData) -> list[str]:
    problems = []
    name = theirs.cluster.cluster_name
    if ours.cluster.uuid == theirs.cluster.uuid:
        problems.append(f"cluster {name} is this cluster (same cluster UUID"
                        f" {ours.cluster.uuid})")
    if ours.version != theirs.version:
        problems.append(f"cluster {name} has configuration format version"
                        f" {theirs.version}, this cluster {ours.version}")
    if ours.cluster.primary_ip_family != theirs.cluster.primary_ip_family:
        problems.append(f"cluster {name} uses IP family"
                        f" {theirs.cluster.primary_ip_family}, this cluster"
                        f" {ours.cluster.primary_ip_family}")
    return problems


def _CheckNames(ours: objects.ConfigData, theirs: objects.ConfigData) -> list[str]:
    problems = []
    name = theirs.cluster.cluster_name
    our_nodes = {_Lower(n.name): n for n in ours.nodes.values()}
    our_endpoints = {_Endpoint(n): n.name for n in ours.nodes.values()}
    for node in sorted(theirs.nodes.values(), key=lambda n: n.name):
        if _Lower(node.name) in our_nodes:
            problems.append(f"node {node.name} is in both this cluster and {name}")
        elif _Endpoint(node) in our_endpoints:
            address, port = _Endpoint(node)
            problems.append(f"node {node.name} of {name} has the node daemon address"
                            f" {address}:{port} of node {our_endpoints[_Endpoint(node)]}")
        if node.offline:
            problems.append(f"node {node.name} of {name} is offline; bring it online"
                            " or remove it from its cluster first")
    our_instances = {_Lower(i.name) for i in ours.instances.values()}
    for inst in sorted(theirs.instances.values(), key=lambda i: i.name):
        if _Lower(inst.name) in our_instances:
            problems.append(f"instance {inst.name} is in both this cluster and {name}")
    our_macs = {nic.mac: inst.name for inst in ours.instances.values()
                for nic in inst.nics if nic.mac}
    for inst in sorted(theirs.instances.values(), key=lambda i: i.name):
        for idx, nic in enumerate(inst.nics):
            if nic.mac and nic.mac in our_macs:
                problems.append(f"MAC address {nic.mac} of instance {inst.name} (NIC"
                                f" {idx}) of {name} is used by instance"
                                f" {our_macs[nic.mac]} here")
    return problems


def _CheckGroups(ours: objects.ConfigData, theirs: objects.ConfigData,
                 groups: str | None) -> list[str]:
    if groups is not None:
        if groups not in GROUPS_MODES:
            raise errors.OpPrereqError(
                f"Invalid node group mode '{groups}': expected one of"
                f" {', '.join(GROUPS_MODES)}", errors.ECODE_INVAL)
        return []
    our_groups = {_Lower(g.name) for g in ours.nodegroups.values()}
    return [f"node group '{group.name}' exists in both this cluster and"
            f" {theirs.cluster.cluster_name}; use --groups=merge or --groups=rename"
            for group in sorted(theirs.nodegroups.values(), key=lambda g: g.name)
            if _Lower(group.name) in our_groups]


def _InstanceAddresses(data: objects.ConfigData, net_uuid: str) -> set[str]:
    return {nic.ip for inst in data.instances.values() for nic in inst.nics
            if nic.network == net_uuid and nic.ip}


def _CheckNetworks(ours: objects.ConfigData, theirs: objects.ConfigData) -> list[str]:
    problems = []
    name = theirs.cluster.cluster_name
    our_nets = {_Lower(n.name): n for n in ours.networks.values()}
    for net in sorted(theirs.networks.values(), key=lambda n: n.name):
        mine = our_nets.get(_Lower(net.name))
        if mine is None:
            continue
        if _NetDefinition(mine) != _NetDefinition(net):
            problems.append(f"network '{net.name}' differs between this cluster"
                            f" ({mine.network}, gateway {mine.gateway}) and {name}"
                            f" ({net.network}, gateway {net.gateway})")
            continue
        used_here = _InstanceAddresses(ours, mine.uuid)
        used_there = _InstanceAddresses(theirs, net.uuid)
        for address in sorted(used_here & used_there):
            problems.append(f"address {address} of network '{net.name}' is used by"
                            f" instances of both this cluster and {name}")
        try:
            pool = netpool.AddressPool(mine)
            for address in sorted(used_there - used_here):
                if pool.IsReserved(address):
                    problems.append(f"address {address} of network '{net.name}' is"
                                    f" reserved here and used by an instance of {name}")
        except errors.AddressPoolError as err:
            problems.append(f"network '{net.name}' of this cluster: {err}")
    return problems


def _Differences(kind: str, before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    return [f"{kind} parameter {key} would change from {before.get(key)!r} to"
            f" {after.get(key)!r}"
            for key in sorted(set(before) | set(after))
            if before.get(key) != after.get(key)]


def _CheckInstances(mine: objects.Cluster, theirs: objects.ConfigData) -> list[str]:
    """Their instances must be runnable under our cluster settings ``mine``
    with unchanged parameters."""
    problems = []
    name = theirs.cluster.cluster_name
    other = theirs.cluster
    enabled_hv = set(mine.enabled_hypervisors or [])
    enabled_dt = set(mine.enabled_disk_templates or [])
    storage_checked: set[str] = set()
    for inst in sorted(theirs.instances.values(), key=lambda i: i.name):
        prefix = f"instance {inst.name} of {name}:"
        if inst.hypervisor not in enabled_hv:
            problems.append(f"{prefix} hypervisor {inst.hypervisor} is not enabled"
                            " here")
        template = DiskTemplate(theirs, inst)
        if template not in enabled_dt:
            problems.append(f"{prefix} disk template {template} is not enabled here")
        for setting in _STORAGE_SETTINGS.get(template, ()):
            if setting in storage_checked:
                continue
            storage_checked.add(setting)
            if getattr(mine, setting) != getattr(other, setting):
                problems.append(f"cluster setting {setting} differs: here"
                                f" {getattr(mine, setting)!r}, on {name}"
                                f" {getattr(other, setting)!r} (used by"
                                f" {template} instances)")
        changes: list[str] = []
        if inst.hypervisor in enabled_hv:
            changes += _Differences("hypervisor", other.FillHV(inst), mine.FillHV(inst))
        changes += _Differences("backend", other.FillBE(inst), mine.FillBE(inst))
        changes += _Differences("OS", other.FillOS(inst.os, inst.osparams),
                                mine.FillOS(inst.os, inst.osparams))
        for idx, nic in enumerate(inst.nics):
            if nic.network:
                continue  # the network's group connection decides
            changes += _Differences(f"NIC {idx}", other.SimpleFillNIC(nic.nicparams),
                                    mine.SimpleFillNIC(nic.nicparams))
        problems.extend(f"{prefix} {change}" for change in changes)
    return problems


def CheckMerge(ours: objects.ConfigData, theirs: objects.ConfigData,
               groups: str | None = None) -> list[str]:
    """Every reason ``theirs`` cannot be merged into ``ours`` (empty: none).

    ``groups`` is the ``--groups`` mode (None: same-named groups conflict).
    OS parameters and per-OS hypervisor parameters only they have are
    taken from them, so the comparison of instance parameters is made as
    the merged cluster will have them.
    """
    problems = _CheckIdentity(ours, theirs)
    if problems and ours.cluster.uuid == theirs.cluster.uuid:
        return problems
    problems += _CheckNames(ours, theirs)
    problems += _CheckGroups(ours, theirs, groups)
    problems += _CheckNetworks(ours, theirs)
    preview = ours.cluster.Copy()
    _MergeOsParams(preview, theirs.cluster)
    problems += _Limit(_CheckInstances(preview, theirs))
    return problems


# --- The merge ------------------------------------------------------------------------

def _MergeOsParams(mine: objects.Cluster, other: objects.Cluster) -> None:
    """Take the OS parameters and per-OS hypervisor parameters we lack."""
    for attr in ("osparams", "osparams_private_cluster", "os_hvp"):
        ours = getattr(mine, attr)
        if ours is None:
            ours = {}
            setattr(mine, attr, ours)
        for os_name, params in (getattr(other, attr) or {}).items():
            ours.setdefault(os_name, params)


class _Merger:
    """One merge of ``theirs`` into a copy of ``ours``."""

    def __init__(self, ours: objects.ConfigData, theirs: objects.ConfigData,
                 groups: str | None) -> None:
        self.data = ours.Copy()
        self.theirs = theirs.Copy()
        self.groups = groups
        self.name = theirs.cluster.cluster_name
        self.used_uuids = _AllUUIDs(self.data)
        self.plan = MergePlan(data=self.data, cluster_name=self.name)
        self.node_map: dict[str, str] = {}
        self.group_map: dict[str, str] = {}
        self.net_map: dict[str, str] = {}
        used = _UsedPorts(self.data)
        self.used_ports = set(used)
        self.next_port = max([self.data.cluster.highest_used_port or 0,
                              self.theirs.cluster.highest_used_port or 0,
                              constants.FIRST_DRBD_PORT - 1, *used,
                              *_UsedPorts(self.theirs)]) + 1

    def _Uuid(self, kind: str, label: str, uuid: str | None) -> str:
        """``uuid`` if unused here, else a new one (noted)."""
        if uuid and uuid not in self.used_uuids:
            self.used_uuids.add(uuid)
            return uuid
        new = objects.GenerateUUID()
        while new in self.used_uuids:
            new = objects.GenerateUUID()
        self.used_uuids.add(new)
        if uuid:
            self.plan.notes.append(f"{kind} {label}: UUID {uuid} is taken here, new"
                                   f" UUID {new}")
        return new

    def _Port(self, port: int, owner: str) -> int:
        """``port`` if unused here, else the next free one (noted)."""
        if port not in self.used_ports:
            self.used_ports.add(port)
            return port
        new = self.next_port
        if new > constants.LAST_DRBD_PORT:
            raise errors.OpPrereqError(
                f"No TCP/UDP port left for {owner} (up to {constants.LAST_DRBD_PORT})",
                errors.ECODE_NORES)
        self.next_port += 1
        self.used_ports.add(new)
        self.plan.notes.append(f"{owner}: port {port} is used here, new port {new}")
        return new

    # --- objects ---------------------------------------------------------------

    def Groups(self) -> None:
        ours = {_Lower(g.name): g for g in self.data.nodegroups.values()}
        for group in sorted(self.theirs.nodegroups.values(), key=lambda g: g.name):
            mine = ours.get(_Lower(group.name))
            if mine is not None and self.groups == GROUPS_MERGE:
                self.group_map[group.uuid] = mine.uuid
                self.plan.notes.append(f"node group {group.name} of {self.name} is"
                                       " merged into ours")
                for attr in ("ndparams", "ipolicy", "diskparams", "alloc_policy"):
                    if getattr(mine, attr) != getattr(group, attr):
                        self.plan.warnings.append(
                            f"node group {group.name}: the {attr} of {self.name}'s"
                            " group are replaced by ours")
                continue
            new = group.Copy()
            if mine is not None:
                new.name = RenamedGroup(group.name, self.name,
                                        [g.name for g in self.data.nodegroups.values()])
                self.plan.notes.append(f"node group {group.name} of {self.name} is"
                                       f" renamed to {new.name}")
            new.uuid = self._Uuid("node group", new.name, group.uuid)
            new.members = []
            self.group_map[group.uuid] = new.uuid
            self.data.nodegroups[new.uuid] = new
            ours[_Lower(new.name)] = new

    def Networks(self) -> None:
        ours = {_Lower(n.name): n for n in self.data.networks.values()}
        for net in sorted(self.theirs.networks.values(), key=lambda n: n.name):
            mine = ours.get(_Lower(net.name))
            if mine is not None:
                self.net_map[net.uuid] = mine.uuid
                pool = netpool.AddressPool(mine)
                for address in sorted(_InstanceAddresses(self.theirs, net.uuid)):
                    pool.Reserve(address)
                for address in netpool.AddressPool(net).GetReservedAddresses(
                        external=True):
                    if not pool.IsReserved(address, external=True):
                        pool.Reserve(address, external=True)
                pool.WriteBack()
                mine.BumpSerial()
                self.plan.notes.append(f"network {net.name} of {self.name} is merged"
                                       " into ours")
                continue
            new = net.Copy()
            new.uuid = self._Uuid("network", net.name, net.uuid)
            self.net_map[net.uuid] = new.uuid
            self.data.networks[new.uuid] = new
        for group in self.data.nodegroups.values():
            if group.uuid in self.group_map.values() and group.networks:
                group.networks = {self.net_map.get(uuid, uuid): params
                                  for uuid, params in group.networks.items()}

    def Nodes(self) -> None:
        for node in sorted(self.theirs.nodes.values(), key=lambda n: n.name):
            ssh_port = SshPort(self.theirs, node)
            new = node.Copy()
            new.uuid = self._Uuid("node", node.name, node.uuid)
            self.node_map[node.uuid] = new.uuid
            new.group = self.group_map[node.group]
            # Re-adding brings the node online and decides its roles
            new.offline = True
            new.master_candidate = False
            new.drained = False
            new.hv_state = new.disk_state = None
            self.data.nodes[new.uuid] = new
            self.plan.nodes.append(MergedNode(
                name=node.name, primary_ip=node.primary_ip,
                secondary_ip=node.secondary_ip, noded_port=node.noded_port,
                confd_port=node.confd_port, ssh_port=ssh_port))

    def _Disk(self, disk: objects.Disk, owner: str) -> None:
        for sub in _IterTree(disk):
            if sub is not disk and sub.uuid:
                sub.uuid = self._Uuid("disk", owner, sub.uuid)
            sub.nodes = [self.node_map.get(n, n) for n in sub.nodes or []]
            if sub.dev_type == constants.DT_DRBD8 and sub.logical_id \
                    and len(sub.logical_id) == 6:
                node_a, node_b, port, minor_a, minor_b, secret = sub.logical_id
                sub.logical_id = (self.node_map.get(node_a, node_a),
                                  self.node_map.get(node_b, node_b),
                                  self._Port(port, f"DRBD disk of {owner}"),
                                  minor_a, minor_b, secret)

    def Instances(self) -> None:
        for inst in sorted(self.theirs.instances.values(), key=lambda i: i.name):
            new = inst.Copy()
            new.uuid = self._Uuid("instance", inst.name, inst.uuid)
            new.primary_node = self.node_map[inst.primary_node]
            disks = []
            for disk_uuid in inst.disks or []:
                disk = self.theirs.disks[disk_uuid].Copy()
                disk.uuid = self._Uuid("disk", inst.name, disk_uuid)
                self._Disk(disk, inst.name)
                self.data.disks[disk.uuid] = disk
                disks.append(disk.uuid)
            new.disks = disks
            for nic in new.nics:
                if nic.uuid:
                    nic.uuid = self._Uuid("NIC", inst.name, nic.uuid)
                if nic.network:
                    nic.network = self.net_map.get(nic.network, nic.network)
            if new.network_port is not None:
                new.network_port = self._Port(new.network_port, f"instance {inst.name}")
            self.data.instances[new.uuid] = new
            self.plan.instances.append(inst.name)

    def Cluster(self) -> None:
        mine, other = self.data.cluster, self.theirs.cluster
        if other.tags:
            mine.tags = set(mine.tags or ()) | set(other.tags)
        _MergeOsParams(mine, other)
        mine.reserved_lvs = sorted(set(mine.reserved_lvs or ())
                                   | set(other.reserved_lvs or ()))
        highest = max([mine.highest_used_port or 0, other.highest_used_port or 0,
                       *self.used_ports])
        mine.highest_used_port = highest
        free = set(mine.tcpudp_port_pool or ()) | set(other.tcpudp_port_pool or ())
        mine.tcpudp_port_pool = {p for p in free
                                 if p <= highest and p not in self.used_ports}
        if self.theirs.filters:
            self.plan.warnings.append(f"the {len(self.theirs.filters)} job filter"
                                      f" rule(s) of {self.name} are not taken over")
        if other.enabled_hypervisors and mine.enabled_hypervisors and \
                other.enabled_hypervisors[0] != mine.enabled_hypervisors[0]:
            self.plan.warnings.append(
                f"the default hypervisor of {self.name} is"
                f" {other.enabled_hypervisors[0]}, here"
                f" {mine.enabled_hypervisors[0]}: new instances get ours")
        mine.BumpSerial()

    def Run(self) -> MergePlan:
        self.Groups()
        self.Networks()
        self.Nodes()
        self.Instances()
        self.Cluster()
        self.data.ComputeGroupMembers()
        for group_uuid in set(self.group_map.values()):
            self.data.nodegroups[group_uuid].BumpSerial()
        return self.plan


def MergeConfig(ours: objects.ConfigData, theirs: objects.ConfigData,
                groups: str | None = None,
                feedback_fn: Callable[[str], None] | None = None) -> MergePlan:
    """Merge ``theirs`` into a copy of ``ours``; neither is changed.

    @raise errors.OpPrereqError: listing every conflict (:func:`CheckMerge`)
    @raise errors.ConfigurationError: the result fails the configuration's
        own checks (listed)
    """
    problems = CheckMerge(ours, theirs, groups)
    if problems:
        raise errors.OpPrereqError(
            f"Cannot merge cluster {theirs.cluster.cluster_name}:\n  "
            + "\n  ".join(problems), errors.ECODE_NOTUNIQUE)
    plan = _Merger(ours, theirs, groups).Run()
    # Ours may have problems already (not ours to fix here); their nodes
    # enter offline, so the candidate pool fills up only when they are re-added
    known = set(VerifyConfigData(ours))
    problems = [p for p in VerifyConfigData(plan.data)
                if p not in known and not p.startswith(_CANDIDATES_PROBLEM)]
    if problems:
        raise errors.ConfigurationError(
            f"The configuration merged with {theirs.cluster.cluster_name} is not"
            " consistent:\n  " + "\n  ".join(_Limit(problems)))
    if feedback_fn is not None:
        for note in plan.notes:
            feedback_fn(note)
    return plan
