"""Instances and their devices: Instance, NIC and Disk.

As in Ganeti 2.16 and later, disks live at the top level of the
configuration (ConfigData.disks, keyed by UUID) and an instance lists the
UUIDs of its disks in order. The disk template and the secondary nodes of an
instance are not stored: they follow from its disks (see the
configuration writer's GetInstanceDiskTemplate and GetInstanceNodes).
"""

from __future__ import annotations

from typing import Any

from ganeti import constants, errors
from ganeti.objects.base import (
    CHILD_LIST, ConfigObject, GenerateUUID, TaggableObject,
)
from ganeti.objects.params import UpgradeBeParams

__all__ = ["NIC", "Disk", "Instance"]

# Device types of configurations older than Ganeti 2.16 and their names now
_OLD_DEV_TYPES = {
    "lvm": constants.DT_PLAIN,
    "drbd8": constants.DT_DRBD8,
}

# Disk types that live on a single node: the parent's
_SINGLE_NODE_TYPES = frozenset([
    constants.DT_PLAIN, constants.DT_FILE, constants.DT_SHARED_FILE,
    constants.DT_BLOCK, constants.DT_RBD, constants.DT_EXT,
    constants.DT_GLUSTER, constants.DT_DISKLESS,
])

# Disk types whose size follows a grow directly
_GROWABLE_TYPES = frozenset([
    constants.DT_PLAIN, constants.DT_FILE, constants.DT_SHARED_FILE,
    constants.DT_RBD, constants.DT_EXT, constants.DT_GLUSTER,
])


class NIC(ConfigObject):
    """A network interface of an instance.

    ``network`` is the UUID of the network the NIC is connected to, if any;
    ``nicparams`` holds only what this NIC overrides (mode, link, vlan).
    ``bridge`` exists only to read configurations from before NIC
    parameters; UpgradeConfig moves it into ``nicparams``.
    """

    name: str | None
    mac: str
    ip: str | None
    network: str | None
    nicparams: dict[str, Any]
    netinfo: dict[str, Any] | None
    uuid: str
    bridge: str | None  # obsolete, upgraded into nicparams

    @classmethod
    def CheckParameterSyntax(cls, nicparams: dict[str, Any]) -> None:
        """Raise ConfigurationError unless filled NIC parameters are valid."""
        mode = nicparams.get(constants.NIC_MODE)
        if mode not in constants.NIC_VALID_MODES and \
                mode != constants.VALUE_AUTO:
            raise errors.ConfigurationError(f"Invalid NIC mode: {mode!r}")
        if mode == constants.NIC_MODE_BRIDGED and \
                not nicparams.get(constants.NIC_LINK):
            raise errors.ConfigurationError("Missing link of a bridged NIC")

    def UpgradeConfig(self) -> None:
        """Fill nicparams and uuid; move an old "bridge" into nicparams."""
        if self.nicparams is None:
            self.nicparams = {}
        if self.bridge is not None:
            self.nicparams.setdefault(constants.NIC_MODE,
                                      constants.NIC_MODE_BRIDGED)
            self.nicparams.setdefault(constants.NIC_LINK, self.bridge)
            self.bridge = None
        if self.uuid is None:
            self.uuid = GenerateUUID()


class Disk(ConfigObject):
    """A block device, possibly built from child devices (DRBD over LVs).

    ``logical_id`` depends on ``dev_type``: (vg, lv) for plain, (node_a,
    node_b, port, minor_a, minor_b, secret) for DRBD, (driver, path) for file
    based disks. ``nodes`` lists the UUIDs of the nodes the disk lives on.
    ``physical_id`` is only read from old configurations and then dropped.
    """

    name: str | None
    dev_type: str
    logical_id: tuple[Any, ...]
    children: list[Disk]
    nodes: list[str]
    iv_name: str
    size: int
    mode: str
    params: dict[str, Any]
    spindles: int | None
    forthcoming: bool | None
    serial_no: int
    ctime: float
    mtime: float
    uuid: str
    physical_id: Any  # obsolete
    #: Per destination node, filled by the master on the copy it sends (DRBD:
    #: the DDP_* addresses and minors of both ends); never saved
    dynamic_params: dict[str, Any] | None

    _CHILDREN = {"children": (CHILD_LIST, "Disk")}

    @classmethod
    def _FieldFromPlain(cls, name: str, value: Any) -> Any:
        if name == "logical_id" and isinstance(value, list):
            return tuple(value)
        return super()._FieldFromPlain(name, value)

    # Questions about the device ---------------------------------------------

    def IsBasedOnDiskType(self, dev_type: str) -> bool:
        """Tell whether this disk or one of its children is of a type."""
        if any(child.IsBasedOnDiskType(dev_type)
               for child in self.children or []):
            return True
        return self.dev_type == dev_type

    def StaticDevPath(self) -> str | None:
        """Return the fixed /dev path of the device, if its type has one.

        Logical volumes and block devices always live at the same path,
        whatever their state; other devices get theirs when assembled.
        """
        if self.dev_type == constants.DT_PLAIN:
            return f"/dev/{self.logical_id[0]}/{self.logical_id[1]}"
        if self.dev_type == constants.DT_BLOCK:
            return str(self.logical_id[1])
        return None

    def ChildrenNeeded(self) -> int:
        """Return how many children must work for the device to assemble.

        -1 means all of them; DRBD can run without its local storage.
        """
        return 0 if self.dev_type == constants.DT_DRBD8 else -1

    def CreateOnSecondary(self) -> bool:
        """Tell whether the device must also be created on secondaries."""
        return self.dev_type in (constants.DT_DRBD8, constants.DT_PLAIN)

    def AssembleOnSecondary(self) -> bool:
        """Tell whether the device must also be assembled on secondaries."""
        return self.dev_type in (constants.DT_DRBD8, constants.DT_PLAIN)

    def GetDrbdEnds(self) -> list[tuple[str, int]]:
        """Return [(node_uuid, minor), ...] of the two ends of a DRBD disk."""
        if self.dev_type != constants.DT_DRBD8:
            raise errors.ProgrammerError(
                f"GetDrbdEnds called on a {self.dev_type} disk")
        if not self.logical_id or len(self.logical_id) != 6:
            raise errors.ConfigurationError(
                f"DRBD disk {self.uuid} has an invalid logical_id"
                f" {self.logical_id!r}")
        node_a, node_b, _, minor_a, minor_b, _ = self.logical_id
        return [(node_a, minor_a), (node_b, minor_b)]

    def GetNodes(self, node: str) -> list[str]:
        """Return the nodes the device lives on, given its parent's node."""
        if self.dev_type == constants.DT_DRBD8:
            result = [self.logical_id[0], self.logical_id[1]]
            if node not in result:
                raise errors.ConfigurationError(
                    f"DRBD disk {self.uuid} does not live on node {node}")
            return result
        if self.dev_type in _SINGLE_NODE_TYPES:
            return [node]
        raise errors.ProgrammerError(f"Unhandled device type {self.dev_type}")

    def ComputeNodes(self, primary_node: str) -> list[str]:
        """Return the nodes a top-level disk of an instance lives on.

        Both DRBD ends for DRBD, the instance's primary node otherwise.
        """
        if self.dev_type == constants.DT_DRBD8 and self.logical_id:
            return [self.logical_id[0], self.logical_id[1]]
        return [primary_node]

    def ComputeNodeTree(self, parent_node: str) -> list[tuple[str, Disk]]:
        """Return the (node, disk) pairs needed to act on the whole tree.

        Children living on the same nodes as their parent are left out,
        since acting on the parent reaches them: DRBD over two LVs gives
        (primary, drbd) and (secondary, drbd).
        """
        my_nodes = self.GetNodes(parent_node)
        result: list[tuple[str, Disk]] = [(node, self) for node in my_nodes]
        for child in self.children or []:
            for node in my_nodes:
                for pair in child.ComputeNodeTree(node):
                    if pair[0] not in my_nodes and pair not in result:
                        result.append(pair)
        return result

    def RecordGrow(self, amount: int) -> None:
        """Record that the device grew by ``amount`` MiB (config only)."""
        if self.dev_type in _GROWABLE_TYPES:
            self.size += amount
        elif self.dev_type == constants.DT_DRBD8:
            if self.children:
                self.children[0].RecordGrow(amount)
            self.size += amount
        else:
            raise errors.ProgrammerError(
                f"Disk type {self.dev_type} cannot be grown")

    def UpgradeConfig(self) -> None:
        """Fill defaults; rename old device types; drop physical_id."""
        if self.dev_type in _OLD_DEV_TYPES:
            self.dev_type = _OLD_DEV_TYPES[self.dev_type]
        self.physical_id = None
        if self.children is None:
            self.children = []
        for child in self.children:
            child.UpgradeConfig()
        if self.params is None:
            self.params = {}
        if self.mode is None:
            self.mode = constants.DISK_RDWR
        if self.nodes is None:
            self.nodes = []
        self._UpgradeCommon(uuid=False)


class Instance(TaggableObject):
    """A virtual machine.

    ``hvparams``, ``beparams`` and ``osparams`` hold only the instance's
    overrides of the cluster values. ``disks`` lists disk UUIDs.
    ``admin_up`` and ``disk_template`` are only read from older
    configurations: UpgradeConfig turns the former into ``admin_state``, and
    the configuration's upgrade drops the latter once disks carry their type.
    """

    name: str
    primary_node: str
    os: str
    hypervisor: str
    hvparams: dict[str, Any]
    beparams: dict[str, Any]
    osparams: dict[str, Any]
    osparams_private: dict[str, Any]
    admin_state: str
    admin_state_source: str
    nics: list[NIC]
    disks: list[str]
    disks_active: bool
    network_port: int | None
    forthcoming: bool | None
    serial_no: int
    ctime: float
    mtime: float
    uuid: str
    admin_up: bool | None  # obsolete, upgraded into admin_state
    disk_template: str | None  # obsolete, derived from the disks now

    _CHILDREN = {"nics": (CHILD_LIST, "NIC")}

    @classmethod
    def _FieldFromPlain(cls, name: str, value: Any) -> Any:
        # Configurations before 2.16 kept whole disks inside the instance;
        # they are read as Disk objects and moved out by ConfigData
        if name == "disks" and isinstance(value, list):
            return [Disk.FromDict(item) if isinstance(item, dict) else item
                    for item in value]
        return super()._FieldFromPlain(name, value)

    def UpgradeConfig(self) -> None:
        """Fill defaults; convert admin_up, "memory" and global hvparams."""
        super().UpgradeConfig()
        if self.admin_up is not None:
            if self.admin_state is None:
                self.admin_state = (constants.ADMINST_UP if self.admin_up
                                    else constants.ADMINST_DOWN)
            self.admin_up = None
        if self.admin_state is None:
            self.admin_state = constants.ADMINST_DOWN
        if self.admin_state_source is None:
            self.admin_state_source = constants.ADMIN_SOURCE
        if self.disks_active is None:
            self.disks_active = self.admin_state == constants.ADMINST_UP
        if self.hvparams is None:
            self.hvparams = {}
        # Global hypervisor parameters cannot be set per instance; values
        # left over from before they became global are dropped
        for key in constants.HVC_GLOBALS:
            self.hvparams.pop(key, None)
        if self.beparams is None:
            self.beparams = {}
        UpgradeBeParams(self.beparams)
        if self.osparams is None:
            self.osparams = {}
        if self.osparams_private is None:
            self.osparams_private = {}
        if self.nics is None:
            self.nics = []
        for nic in self.nics:
            nic.UpgradeConfig()
        if self.disks is None:
            self.disks = []
        for disk in self.disks:
            if isinstance(disk, Disk):
                disk.UpgradeConfig()
        self._UpgradeCommon()
