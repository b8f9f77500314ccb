"""The top-level configuration object, the content of config.data."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ganeti import constants, errors
from ganeti.objects.base import (
    CHILD_DICT, CHILD_ONE, ConfigObject, GenerateUUID,
)
from ganeti.objects.cluster import Cluster
from ganeti.objects.instance import Disk, Instance
from ganeti.objects.misc import FilterRule
from ganeti.objects.networks import Network
from ganeti.objects.node import Node, NodeGroup

__all__ = ["ConfigData"]


def _IterDiskTree(disk: Disk) -> Iterator[Disk]:
    """Yield a disk and all its descendants."""
    yield disk
    for child in disk.children or []:
        yield from _IterDiskTree(child)


class ConfigData(ConfigObject):
    """The whole configuration, as written to config.data.

    Every dict is keyed by the UUID of its objects. ``disks`` holds the
    disks of all instances (Ganeti 2.16 and later); ``filters`` the job
    filter rules.
    """

    version: int
    cluster: Cluster
    nodes: dict[str, Node]
    nodegroups: dict[str, NodeGroup]
    instances: dict[str, Instance]
    networks: dict[str, Network]
    disks: dict[str, Disk]
    filters: dict[str, FilterRule]
    serial_no: int
    ctime: float
    mtime: float

    _CHILDREN = {
        "cluster": (CHILD_ONE, "Cluster"),
        "nodes": (CHILD_DICT, "Node"),
        "nodegroups": (CHILD_DICT, "NodeGroup"),
        "instances": (CHILD_DICT, "Instance"),
        "networks": (CHILD_DICT, "Network"),
        "disks": (CHILD_DICT, "Disk"),
        "filters": (CHILD_DICT, "FilterRule"),
    }

    _CONTAINERS = ("nodes", "nodegroups", "instances", "networks", "disks",
                   "filters")

    # --- Questions ---------------------------------------------------------------

    def IterAllDisks(self) -> Iterator[Disk]:
        """Yield every disk and child disk of the configuration."""
        for disk in self.disks.values():
            yield from _IterDiskTree(disk)

    def HasAnyDiskOfType(self, dev_type: str) -> bool:
        """Tell whether any disk (or child disk) is of ``dev_type``."""
        return any(disk.dev_type == dev_type for disk in self.IterAllDisks())

    def ComputeGroupMembers(self) -> None:
        """Recompute the (run-time only) member lists of the node groups."""
        for group in self.nodegroups.values():
            group.members = []
        for node_uuid, node in self.nodes.items():
            node_group = self.nodegroups.get(node.group)
            if node_group is not None:
                node_group.members.append(node_uuid)

    def Copy(self) -> ConfigData:
        """Return a deep copy, node group members included."""
        clone = super().Copy()
        clone.ComputeGroupMembers()
        return clone

    # --- Upgrade -----------------------------------------------------------------

    def UpgradeConfig(self) -> None:
        """Upgrade every object, then what needs the whole configuration.

        Besides each object's own defaults this: keys objects by UUID when
        an old configuration keyed them by name, and turns node and network
        names in references into UUIDs; moves disks kept inside instances
        to the top level; creates the default node group when there is none
        and puts group-less nodes in it; derives the enabled disk templates
        and the DRBD helper when missing.
        """
        if self.cluster is None:
            raise errors.ConfigurationError("The configuration has no cluster")
        for name in self._CONTAINERS:
            if getattr(self, name) is None:
                setattr(self, name, {})
        self.cluster.UpgradeConfig()
        for name in self._CONTAINERS:
            for obj in getattr(self, name).values():
                obj.UpgradeConfig()

        self._KeyByUuid()
        self._NamesToUuids()
        self._MoveInstanceDisks()
        self._UpgradeNodeGroups()
        self.ComputeGroupMembers()
        self._UpgradeDiskTemplates()

        if self.cluster.drbd_usermode_helper is None and \
                self.HasAnyDiskOfType(constants.DT_DRBD8):
            self.cluster.drbd_usermode_helper = constants.DEFAULT_DRBD_HELPER
        self._UpgradeCommon(uuid=False)

    def _KeyByUuid(self) -> None:
        """Re-key objects that an old configuration keyed by name."""
        for name in ("nodes", "instances", "nodegroups", "networks"):
            container: dict[str, Any] = getattr(self, name)
            if all(key == obj.uuid for key, obj in container.items()):
                continue
            rekeyed = {}
            for key, obj in container.items():
                if key != obj.uuid and key == obj.name:
                    key = obj.uuid
                rekeyed[key] = obj
            setattr(self, name, rekeyed)
        for name in ("disks", "filters"):
            for key, obj in getattr(self, name).items():
                if obj.uuid is None:
                    obj.uuid = key

    def _NamesToUuids(self) -> None:
        """Turn node/group/network names in references into UUIDs."""
        def _Map(objects: dict[str, Any]) -> dict[str, str]:
            return {obj.name: uuid for uuid, obj in objects.items()
                    if obj.name is not None and obj.name not in objects}

        nodes = _Map(self.nodes)
        groups = _Map(self.nodegroups)
        networks = _Map(self.networks)
        cluster = self.cluster
        cluster.master_node = nodes.get(cluster.master_node,
                                        cluster.master_node)
        for node in self.nodes.values():
            node.group = groups.get(node.group, node.group)
        for inst in self.instances.values():
            inst.primary_node = nodes.get(inst.primary_node, inst.primary_node)
            for nic in inst.nics:
                if nic.network is not None:
                    nic.network = networks.get(nic.network, nic.network)
            legacy_disks: list[Any] = inst.disks
            for item in legacy_disks:
                if isinstance(item, Disk):
                    self._DiskNamesToUuids(item, nodes)
        for disk in self.disks.values():
            self._DiskNamesToUuids(disk, nodes)

    @staticmethod
    def _DiskNamesToUuids(disk: Disk, nodes: dict[str, str]) -> None:
        for item in _IterDiskTree(disk):
            if item.dev_type == constants.DT_DRBD8 and item.logical_id and \
                    len(item.logical_id) == 6:
                lid = list(item.logical_id)
                lid[0] = nodes.get(lid[0], lid[0])
                lid[1] = nodes.get(lid[1], lid[1])
                item.logical_id = tuple(lid)
            item.nodes = [nodes.get(node, node) for node in item.nodes or []]

    def _MoveInstanceDisks(self) -> None:
        """Move disks kept inside instances to the top level; fill nodes."""
        for inst in self.instances.values():
            uuids = []
            legacy_disks: list[Any] = inst.disks
            for idx, item in enumerate(legacy_disks):
                if isinstance(item, Disk):
                    if item.uuid is None:
                        item.uuid = GenerateUUID()
                    if item.iv_name is None:
                        item.iv_name = f"disk/{idx}"
                    self.disks[item.uuid] = item
                    uuids.append(item.uuid)
                else:
                    uuids.append(item)
            inst.disks = uuids
            for disk_uuid in inst.disks:
                disk = self.disks.get(disk_uuid)
                if disk is not None and not disk.nodes:
                    disk.nodes = disk.ComputeNodes(inst.primary_node)

    def _UpgradeNodeGroups(self) -> None:
        """Create the default group if needed and give it group-less nodes."""
        orphans = [node for node in self.nodes.values()
                   if node.group is None]
        if self.nodegroups and not orphans:
            return
        default = None
        for group in self.nodegroups.values():
            if group.name == constants.INITIAL_NODE_GROUP_NAME:
                default = group
        if default is None:
            default = NodeGroup(name=constants.INITIAL_NODE_GROUP_NAME)
            default.UpgradeConfig()
            self.nodegroups[default.uuid] = default
        for node in orphans:
            node.group = default.uuid

    def _UpgradeDiskTemplates(self) -> None:
        """Derive enabled disk templates; drop instances' disk_template."""
        used = set()
        for inst in self.instances.values():
            if inst.disk_template is not None:
                used.add(inst.disk_template)
                inst.disk_template = None
        cluster = self.cluster
        if cluster.enabled_disk_templates is not None:
            return
        used.update(disk.dev_type for disk in self.disks.values())
        if cluster.volume_group_name:
            used.update([constants.DT_PLAIN, constants.DT_DRBD8])
        if cluster.file_storage_dir:
            used.add(constants.DT_FILE)
        if cluster.shared_file_storage_dir:
            used.add(constants.DT_SHARED_FILE)
        enabled = [dt for dt in constants.DISK_TEMPLATE_PREFERENCE
                   if dt in used]
        cluster.enabled_disk_templates = (
            enabled or list(constants.DEFAULT_ENABLED_DISK_TEMPLATES))
