"""Consistency checks of a whole configuration.

:func:`VerifyConfigData` returns every problem it finds as a sentence, so
that ``gnt-cluster verify`` and the writer's log show all of them at once.
It reads only; nothing is fixed.
"""

from __future__ import annotations

import ipaddress
import re
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from ganeti import constants, errors
from ganeti import network as netpool
from ganeti import objects

__all__ = ["VerifyConfigData", "ComputeDRBDMap"]

_MAC_RE = re.compile(r"([0-9a-f]{2}:){5}[0-9a-f]{2}")

DrbdMap = dict[str, dict[int, str]]


def ComputeDRBDMap(data: objects.ConfigData,
                   extra: Iterable[tuple[str, int, str]] = ()
                   ) -> tuple[DrbdMap, list[tuple[str, int, str, str]]]:
    """Map every node to its used DRBD minors: {node: {minor: disk_uuid}}.

    ``extra`` adds (node, minor, disk_uuid) allocations not yet in the
    configuration. Also returns the duplicates found, as (node, minor,
    first disk, second disk). Every node of the configuration has an entry.
    """
    used: DrbdMap = {node_uuid: {} for node_uuid in data.nodes}
    duplicates: list[tuple[str, int, str, str]] = []

    def _Add(node: str, minor: int, disk_uuid: str) -> None:
        node_minors = used.setdefault(node, {})
        holder = node_minors.get(minor)
        if holder is not None and holder != disk_uuid:
            duplicates.append((node, minor, holder, disk_uuid))
        else:
            node_minors[minor] = disk_uuid

    for disk_uuid, top in data.disks.items():
        for disk in _IterTree(top):
            if disk.dev_type != constants.DT_DRBD8:
                continue
            try:
                ends = disk.GetDrbdEnds()
            except errors.ConfigurationError:
                continue
            for node, minor in ends:
                _Add(node, minor, disk_uuid)
    for node, minor, disk_uuid in extra:
        _Add(node, minor, disk_uuid)
    return used, duplicates


def _IterTree(disk: objects.Disk) -> Iterable[objects.Disk]:
    yield disk
    for child in disk.children or []:
        yield from _IterTree(child)


def _CheckNicParams(params: dict[str, Any], memo: dict[Any, str | None]) -> str | None:
    """The syntax problem of filled NIC parameters, or None (memoised)."""
    try:
        key: Any = tuple(sorted(params.items()))
        hash(key)
    except TypeError:
        key = None
    if key is not None and key in memo:
        return memo[key]
    try:
        objects.NIC.CheckParameterSyntax(params)
        problem = None
    except errors.ConfigurationError as err:
        problem = str(err)
    if key is not None:
        memo[key] = problem
    return problem


def _Duplicates(pairs: Iterable[tuple[Any, str]]) -> dict[Any, list[str]]:
    """Return {value: [owners]} for values owned more than once."""
    pairs = list(pairs)
    # The usual case, checked at C speed: no value twice
    if len({value for value, _ in pairs}) == len(pairs):
        return {}
    owners: dict[Any, list[str]] = defaultdict(list)
    for value, owner in pairs:
        owners[value].append(owner)
    return {value: who for value, who in owners.items() if len(who) > 1}


class _Verifier:
    """One run of the checks; collects the problems in ``self.problems``."""

    def __init__(self, data: objects.ConfigData) -> None:
        self.data = data
        self.cluster = data.cluster
        self.problems: list[str] = []

    def Add(self, message: str) -> None:
        self.problems.append(message)

    def Run(self) -> list[str]:
        self.CheckKeys()
        self.CheckUniqueness()
        self.CheckCluster()
        self.CheckNodes()
        self.CheckGroups()
        self.CheckInstances()
        self.CheckDisks()
        self.CheckNetworks()
        self.CheckPorts()
        return self.problems

    # --- Identity ------------------------------------------------------------------

    def CheckKeys(self) -> None:
        for kind in ("nodes", "nodegroups", "instances", "networks", "disks",
                     "filters"):
            for key, obj in getattr(self.data, kind).items():
                if obj.uuid != key:
                    self.Add(f"{kind}: object stored under key '{key}' has"
                             f" UUID '{obj.uuid}'")

    def CheckUniqueness(self) -> None:
        kinds = ("nodes", "nodegroups", "instances", "networks", "disks")
        uuids = [self.cluster.uuid]
        for kind in kinds:
            uuids.extend(obj.uuid for obj in getattr(self.data, kind).values())
        if len(set(uuids)) != len(uuids):
            # Only now the messages' owner names are worth making
            owners: list[tuple[Any, str]] = [(self.cluster.uuid, "cluster")]
            for kind in kinds:
                owners.extend((obj.uuid, f"{kind[:-1]} {getattr(obj, 'name', '')}"
                               .rstrip()) for obj in getattr(self.data,
                                                             kind).values())
            for value, who in sorted(_Duplicates(owners).items(),
                                     key=lambda item: str(item[0])):
                self.Add(f"duplicate UUID {value} used by {', '.join(who)}")
        for kind in ("nodes", "nodegroups", "instances", "networks"):
            names = [(obj.name, obj.uuid)
                     for obj in getattr(self.data, kind).values()]
            for name, who in sorted(_Duplicates(names).items(),
                                    key=lambda item: str(item[0])):
                self.Add(f"duplicate {kind[:-1]} name '{name}' (UUIDs"
                         f" {', '.join(who)})")

    # --- Cluster -------------------------------------------------------------------

    def CheckCluster(self) -> None:
        cluster = self.cluster
        master = self.data.nodes.get(cluster.master_node)
        if master is None:
            self.Add(f"cluster has invalid master node '{cluster.master_node}'")
        elif not master.master_candidate:
            self.Add(f"master node {master.name} is not a master candidate")
        enabled = cluster.enabled_hypervisors or []
        if not enabled:
            self.Add("cluster has no enabled hypervisors")
        for hv_name in enabled:
            if hv_name not in constants.HYPER_TYPES:
                self.Add(f"cluster enables unknown hypervisor '{hv_name}'")
        for dt in cluster.enabled_disk_templates or []:
            if dt not in constants.DISK_TEMPLATES:
                self.Add(f"cluster enables unknown disk template '{dt}'")
        unknown = set(cluster.beparams.get(constants.PP_DEFAULT, {})) - \
            set(constants.BEC_DEFAULTS)
        if unknown:
            self.Add("cluster beparams has unknown parameter(s): "
                     + ", ".join(sorted(unknown)))
        try:
            objects.NIC.CheckParameterSyntax(cluster.SimpleFillNIC({}))
        except errors.ConfigurationError as err:
            self.Add(f"cluster nicparams: {err}")
        unknown = set(cluster.ndparams) - set(constants.NDC_DEFAULTS)
        if unknown:
            self.Add("cluster ndparams has unknown parameter(s): "
                     + ", ".join(sorted(unknown)))
        for problem in objects.CheckIPolicySyntax(cluster.ipolicy):
            self.Add(f"cluster instance policy: {problem}")
        if cluster.mac_prefix and not re.fullmatch(
                r"([0-9a-f]{2}:){2}[0-9a-f]{2}", cluster.mac_prefix):
            self.Add(f"cluster has invalid MAC prefix '{cluster.mac_prefix}'")

        mc_now = sum(1 for node in self.data.nodes.values()
                     if node.master_candidate)
        mc_max = sum(1 for node in self.data.nodes.values()
                     if node.master_capable and not node.offline
                     and not node.drained)
        mc_should = min(mc_max, cluster.candidate_pool_size or 0)
        if mc_now < mc_should:
            self.Add(f"not enough master candidates: {mc_now} of"
                     f" {mc_should} wanted")

    # --- Nodes and groups ------------------------------------------------------

    def CheckNodes(self) -> None:
        for node in self.data.nodes.values():
            if node.group not in self.data.nodegroups:
                self.Add(f"node {node.name} is in unknown node group"
                         f" '{node.group}'")
            flags = [flag for flag in ("master_candidate", "drained",
                                       "offline") if getattr(node, flag)]
            if len(flags) > 1:
                self.Add(f"node {node.name} has conflicting flags: "
                         + ", ".join(flags))
            if not node.primary_ip:
                self.Add(f"node {node.name} has no primary IP")
            for field in ("noded_port", "confd_port"):
                port = getattr(node, field)
                if port is not None and (not isinstance(port, int)
                                         or not 0 < port < 65536):
                    self.Add(f"node {node.name} has invalid {field}"
                             f" {port!r}")
            unknown = set(node.ndparams or {}) - set(constants.NDC_DEFAULTS)
            if unknown:
                self.Add(f"node {node.name} ndparams has unknown"
                         f" parameter(s): {', '.join(sorted(unknown))}")

    def CheckGroups(self) -> None:
        for group in self.data.nodegroups.values():
            members = {uuid for uuid, node in self.data.nodes.items()
                       if node.group == group.uuid}
            if group.members is not None and set(group.members) != members:
                self.Add(f"node group {group.name} lists members"
                         f" {sorted(group.members)} but its nodes are"
                         f" {sorted(members)}")
            for net_uuid in group.networks or {}:
                if net_uuid not in self.data.networks:
                    self.Add(f"node group {group.name} is connected to"
                             f" unknown network '{net_uuid}'")
            if group.ipolicy:
                filled = self.cluster.SimpleFillIPolicy(group.ipolicy)
                # As Ganeti: a group's std specs are checked only if it sets them
                check_std = constants.ISPECS_STD in group.ipolicy
                for problem in objects.CheckIPolicySyntax(filled, check_std=check_std):
                    self.Add(f"node group {group.name} instance policy:"
                             f" {problem}")
            if group.alloc_policy not in constants.VALID_ALLOC_POLICIES:
                self.Add(f"node group {group.name} has invalid allocation"
                         f" policy '{group.alloc_policy}'")

    # --- Instances and disks ----------------------------------------------------

    def CheckInstances(self) -> None:
        disk_owners: list[tuple[str, str]] = []
        macs: list[tuple[str, str]] = []
        ips: list[tuple[tuple[str, str], str]] = []
        # Read-only use: a shallow merge is enough, and most NICs share their
        # parameters, so each distinct set is checked once (saves run this)
        nic_defaults = dict((self.cluster.nicparams or {}).get(constants.PP_DEFAULT, {}))
        nic_checks: dict[Any, str | None] = {}
        for inst in self.data.instances.values():
            if inst.primary_node not in self.data.nodes:
                self.Add(f"instance {inst.name} has invalid primary node"
                         f" '{inst.primary_node}'")
            if inst.hypervisor not in (self.cluster.enabled_hypervisors
                                       or []):
                self.Add(f"instance {inst.name} uses hypervisor"
                         f" '{inst.hypervisor}', which is not enabled")
            if inst.admin_state not in constants.ADMINST_ALL:
                self.Add(f"instance {inst.name} has invalid admin state"
                         f" '{inst.admin_state}'")
            hv_globals = set(inst.hvparams or {}) & constants.HVC_GLOBALS
            if hv_globals:
                self.Add(f"instance {inst.name} sets global hypervisor"
                         f" parameter(s) {', '.join(sorted(hv_globals))}")
            for disk_uuid in inst.disks:
                disk_owners.append((disk_uuid, inst.name))
                if disk_uuid not in self.data.disks:
                    self.Add(f"instance {inst.name} uses unknown disk"
                             f" '{disk_uuid}'")
            for idx, nic in enumerate(inst.nics):
                where = f"instance {inst.name} NIC {idx}"
                if not nic.mac or not _MAC_RE.fullmatch(str(nic.mac)):
                    self.Add(f"{where} has invalid MAC '{nic.mac}'")
                else:
                    macs.append((nic.mac, inst.name))
                if nic.network is not None and \
                        nic.network not in self.data.networks:
                    self.Add(f"{where} uses unknown network"
                             f" '{nic.network}'")
                params = {**nic_defaults, **(nic.nicparams or {})}
                problem = _CheckNicParams(params, nic_checks)
                if problem is not None:
                    self.Add(f"{where}: {problem}")
                if nic.ip:
                    space = nic.network or \
                        f"link:{params.get(constants.NIC_LINK)}"
                    ips.append(((space, nic.ip), inst.name))
        for disk_uuid, who in sorted(_Duplicates(disk_owners).items()):
            self.Add(f"disk {disk_uuid} is used by several instances: "
                     + ", ".join(who))
        for mac, who in sorted(_Duplicates(macs).items()):
            self.Add(f"duplicate MAC address {mac} used by "
                     + ", ".join(who))
        for (space, ip), who in sorted(_Duplicates(ips).items()):
            self.Add(f"duplicate IP address {ip} (in {space}) used by "
                     + ", ".join(who))

    def CheckDisks(self) -> None:
        for disk_uuid, top in self.data.disks.items():
            for node in top.nodes or []:
                if node not in self.data.nodes:
                    self.Add(f"disk {disk_uuid} lives on unknown node"
                             f" '{node}'")
            for disk in _IterTree(top):
                if disk.dev_type not in constants.DISK_TEMPLATES:
                    self.Add(f"disk {disk_uuid} has unknown type"
                             f" '{disk.dev_type}'")
                if disk.dev_type != constants.DT_DRBD8:
                    continue
                try:
                    ends = disk.GetDrbdEnds()
                except errors.ConfigurationError as err:
                    self.Add(str(err))
                    continue
                for node, _ in ends:
                    if node not in self.data.nodes:
                        self.Add(f"DRBD disk {disk_uuid} uses unknown node"
                                 f" '{node}'")
        _, duplicates = ComputeDRBDMap(self.data)
        for node, minor, first, second in duplicates:
            self.Add(f"DRBD minor {minor} on node {node} is used by both"
                     f" disk {first} and disk {second}")

    # --- Networks and ports -----------------------------------------------------

    def CheckNetworks(self) -> None:
        for net in self.data.networks.values():
            try:
                pool = netpool.AddressPool(net)
            except errors.AddressPoolError as err:
                self.Add(f"network {net.name}: {err}")
                continue
            if net.gateway and not pool.Contains(net.gateway):
                self.Add(f"network {net.name}: gateway {net.gateway} is"
                         " outside the network")
            if net.network6:
                try:
                    ipaddress.IPv6Network(net.network6, strict=False)
                except ValueError:
                    self.Add(f"network {net.name}: invalid IPv6 network"
                             f" '{net.network6}'")
            for inst in self.data.instances.values():
                for idx, nic in enumerate(inst.nics):
                    if nic.network != net.uuid or not nic.ip:
                        continue
                    if not pool.Contains(nic.ip):
                        self.Add(f"instance {inst.name} NIC {idx}: IP"
                                 f" {nic.ip} is outside network {net.name}")
                    elif not pool.IsReserved(nic.ip):
                        self.Add(f"instance {inst.name} NIC {idx}: IP"
                                 f" {nic.ip} is not reserved in network"
                                 f" {net.name}")

    def CheckPorts(self) -> None:
        ports: list[tuple[int, str]] = []
        for disk_uuid, top in self.data.disks.items():
            for disk in _IterTree(top):
                if disk.dev_type == constants.DT_DRBD8 and disk.logical_id \
                        and len(disk.logical_id) == 6:
                    ports.append((disk.logical_id[2], f"disk {disk_uuid}"))
        for inst in self.data.instances.values():
            if inst.network_port is not None:
                ports.append((inst.network_port, f"instance {inst.name}"))
        for port, who in sorted(_Duplicates(ports).items()):
            self.Add(f"TCP/UDP port {port} is used by " + ", ".join(who))
        highest = self.cluster.highest_used_port
        if highest is None:
            return
        for port, who_one in ports:
            if port > highest:
                self.Add(f"{who_one} uses port {port}, above the highest"
                         f" used port {highest}")
        for port in sorted(self.cluster.tcpudp_port_pool or ()):
            if port > highest:
                self.Add(f"free port pool holds port {port}, above the"
                         f" highest used port {highest}")
            elif port in {p for p, _ in ports}:
                self.Add(f"free port pool holds port {port}, which is in"
                         " use")


def VerifyConfigData(data: objects.ConfigData) -> list[str]:
    """Return every inconsistency found in ``data`` (empty when none)."""
    return _Verifier(data).Run()
