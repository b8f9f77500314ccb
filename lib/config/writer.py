"""The ConfigWriter: the master's configuration, its changes and its file.

Design: lookups return copies, never the stored objects. To change an
object, get it, change the copy and give it to :meth:`ConfigWriter.Update`,
which checks that nobody changed the stored object in between (same
serial_no), bumps serial_no and mtime and saves. A copy changed and never
given to Update changes nothing, and a stale copy cannot silently overwrite
a newer change.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Hashable, Iterable
from typing import Any

from ganeti import constants, errors, objects
from ganeti import network as netpool
from ganeti.config.allocation import AllocationMixin
from ganeti.config.base import Locked

__all__ = ["ConfigWriter"]

FeedbackFn = Callable[[str], None] | None


def _Exists(kind: str, name: str) -> errors.OpPrereqError:
    return errors.OpPrereqError(f"{kind} '{name}' already exists",
                                errors.ECODE_EXISTS)


class ConfigWriter(AllocationMixin):
    """The cluster configuration, held in memory and saved on every change.

    ``cfg_file`` defaults to pathutils.CLUSTER_CONF_FILE. ``offline`` (tools
    such as cfgupgrade) skips the save listeners. Unless ``accept_foreign``,
    a configuration whose master is not this node is refused.
    ``_save_fn(path, text)`` replaces the file write (tests, other stores).
    """

    def __init__(self, cfg_file: str | None = None, offline: bool = False,
                 accept_foreign: bool = False,
                 _save_fn: Callable[[str, str], None] | None = None) -> None:
        super().__init__(cfg_file, offline, accept_foreign, _save_fn)
        self._InitReservations()

    # --- Helpers -----------------------------------------------------------------

    @staticmethod
    def _Stamp(obj: Any, now: float) -> None:
        """Mark a new object: serial 1, created and modified now."""
        obj.serial_no = 1
        obj.ctime = now
        obj.mtime = now

    def _BumpCluster(self, now: float | None = None) -> None:
        self._config_data.cluster.BumpSerial(now)

    def _RenumberDisks(self, inst: objects.Instance) -> None:
        for idx, disk_uuid in enumerate(inst.disks):
            disk = self._config_data.disks.get(disk_uuid)
            if disk is not None and disk.iv_name != f"disk/{idx}":
                disk.iv_name = f"disk/{idx}"
                disk.BumpSerial()  # changed in place: see config.serialize

    def _DropDisk(self, disk_uuid: str) -> None:
        """Remove a disk, give its DRBD port back, free pending minors."""
        disk = self._config_data.disks.pop(disk_uuid, None)
        if disk is not None and disk.dev_type == constants.DT_DRBD8 \
                and disk.logical_id and len(disk.logical_id) == 6:
            self._ReleasePort(disk.logical_id[2])
        self._UnlockedReleaseDRBDMinors(disk_uuid)

    # --- Nodes ------------------------------------------------------------------------

    @Locked
    def AddNode(self, node: objects.Node, ec_id: Hashable) -> None:
        """Add a node (to its group, or the only group when it has none)."""
        data = self._config_data
        if self._NodeByName(node.name) is not None:
            raise _Exists("Node", node.name)
        self._EnsureUUID(node, ec_id)
        node.group = self._UnlockedLookupNodeGroup(node.group)
        node.UpgradeConfig()
        now = time.time()
        self._Stamp(node, now)
        stored = node.Copy()
        data.nodes[stored.uuid] = stored
        group = data.nodegroups[stored.group]
        group.members.append(stored.uuid)
        group.BumpSerial(now)
        self._BumpCluster(now)
        self._WriteConfig()

    @Locked
    def RemoveNode(self, node_uuid: str) -> None:
        """Remove a node (the logical unit checks it holds no instances)."""
        data = self._config_data
        node = data.nodes.pop(node_uuid, None)
        if node is None:
            raise errors.ConfigurationError(f"Unknown node '{node_uuid}'")
        group = data.nodegroups.get(node.group)
        if group is not None and node_uuid in group.members:
            group.members.remove(node_uuid)
            group.BumpSerial()
        self._BumpCluster()
        self._WriteConfig()

    # --- Node groups ------------------------------------------------------------------

    @Locked
    def AddNodeGroup(self, group: objects.NodeGroup, ec_id: Hashable,
                     check_uuid: bool = True) -> None:
        """Add a node group; OpPrereqError (ECODE_EXISTS) on a taken name."""
        data = self._config_data
        if self._GroupByName(group.name) is not None:
            raise _Exists("Node group", group.name)
        if check_uuid or not group.uuid:
            self._EnsureUUID(group, ec_id)
        elif group.uuid in data.nodegroups:
            raise errors.ConfigurationError(f"Duplicate UUID {group.uuid}")
        group.UpgradeConfig()
        now = time.time()
        self._Stamp(group, now)
        stored = group.Copy()
        stored.members = []
        data.nodegroups[stored.uuid] = stored
        self._BumpCluster(now)
        self._WriteConfig()

    @Locked
    def RemoveNodeGroup(self, group_uuid: str) -> None:
        """Remove an empty node group."""
        data = self._config_data
        group = data.nodegroups.get(group_uuid)
        if group is None:
            raise errors.ConfigurationError(
                f"Unknown node group '{group_uuid}'")
        if group.members:
            raise errors.ConfigurationError(
                f"Node group {group.name} still has nodes")
        if len(data.nodegroups) == 1:
            raise errors.ConfigurationError("Cannot remove the last group")
        del data.nodegroups[group_uuid]
        self._BumpCluster()
        self._WriteConfig()

    @Locked
    def AssignGroupNodes(self, mods: Iterable[tuple[str, str]]) -> None:
        """Move nodes to groups: ``mods`` is [(node UUID, group UUID)].

        All moves are checked before any is made.
        """
        data = self._config_data
        mods = list(mods)
        for node_uuid, group_uuid in mods:
            if node_uuid not in data.nodes:
                raise errors.ConfigurationError(f"Unknown node '{node_uuid}'")
            if group_uuid not in data.nodegroups:
                raise errors.ConfigurationError(
                    f"Unknown node group '{group_uuid}'")
        now = time.time()
        for node_uuid, group_uuid in mods:
            node = data.nodes[node_uuid]
            if node.group == group_uuid:
                continue
            old = data.nodegroups.get(node.group)
            if old is not None:
                if node_uuid in old.members:
                    old.members.remove(node_uuid)
                old.BumpSerial(now)
            new = data.nodegroups[group_uuid]
            new.members.append(node_uuid)
            new.BumpSerial(now)
            node.group = group_uuid
            node.BumpSerial(now)
        self._BumpCluster(now)
        self._WriteConfig()

    # --- Instances --------------------------------------------------------------------

    @Locked
    def AddInstance(self, instance: objects.Instance, ec_id: Hashable) -> None:
        """Add an instance; commits the IPs ``ec_id`` reserved.

        Its ``disks`` must already be in the configuration (or empty; add
        them afterwards with AddInstanceDisk). Duplicate names raise
        OpPrereqError (ECODE_EXISTS), MACs in use ConfigurationError.
        """
        data = self._config_data
        if self._InstanceByName(instance.name) is not None:
            raise _Exists("Instance", instance.name)
        if instance.primary_node not in data.nodes:
            raise errors.ConfigurationError(
                f"Instance {instance.name} has unknown primary node"
                f" '{instance.primary_node}'")
        used_macs = self._AllMACs()
        for nic in instance.nics or []:
            if nic.mac in used_macs:
                raise errors.ConfigurationError(
                    f"Cannot add instance {instance.name}: MAC address"
                    f" '{nic.mac}' already in use")
        for disk_uuid in instance.disks or []:
            if disk_uuid not in data.disks:
                raise errors.ConfigurationError(
                    f"Instance {instance.name} uses unknown disk"
                    f" '{disk_uuid}'")
        self._EnsureUUID(instance, ec_id)
        for nic in instance.nics or []:
            if not nic.uuid:
                self._EnsureUUID(nic, ec_id)
        instance.UpgradeConfig()
        now = time.time()
        self._Stamp(instance, now)
        data.instances[instance.uuid] = instance.Copy()
        self._CommitTemporaryIps(ec_id)
        self._BumpCluster(now)
        self._WriteConfig()

    @Locked
    def RemoveInstance(self, inst_uuid: str) -> None:
        """Remove an instance with its disks, IPs and ports."""
        data = self._config_data
        inst = data.instances.pop(inst_uuid, None)
        if inst is None:
            raise errors.ConfigurationError(f"Unknown instance '{inst_uuid}'")
        for nic in inst.nics:
            if nic.network and nic.ip and nic.network in data.networks:
                net = data.networks[nic.network]
                self._Pool(nic.network).Release(nic.ip)
                net.BumpSerial()
        self._ReleasePort(inst.network_port)
        for disk_uuid in inst.disks:
            self._DropDisk(disk_uuid)
        self._BumpCluster()
        self._WriteConfig()

    @Locked
    def RenameInstance(self, inst_uuid: str, new_name: str) -> None:
        """Rename an instance, and the paths of its file-based disks."""
        inst = self._LiveInstance(inst_uuid)
        other = self._InstanceByName(new_name)
        if other is not None and other.uuid != inst_uuid:
            raise _Exists("Instance", new_name)
        old_name = inst.name
        inst.name = new_name
        for disk_uuid in inst.disks:
            disk = self._config_data.disks.get(disk_uuid)
            if disk is None or disk.dev_type not in constants.DTS_FILEBASED \
                    or not disk.logical_id or len(disk.logical_id) != 2:
                continue
            driver, path = disk.logical_id
            parent, inst_dir = os.path.split(os.path.dirname(path))
            if inst_dir == old_name:
                disk.logical_id = (driver, os.path.join(
                    parent, new_name, os.path.basename(path)))
                disk.BumpSerial()
        inst.BumpSerial()
        self._BumpCluster()
        self._WriteConfig()

    def _SetInstanceState(self, inst_uuid: str, state: str | None,
                          disks_active: bool | None,
                          source: str | None) -> objects.Instance:
        inst = self._LiveInstance(inst_uuid)
        if state is not None and state not in constants.ADMINST_ALL:
            raise errors.ConfigurationError(f"Invalid admin state {state!r}")
        changed = False
        for field, value in (("admin_state", state),
                             ("disks_active", disks_active),
                             ("admin_state_source", source)):
            if value is not None and getattr(inst, field) != value:
                setattr(inst, field, value)
                changed = True
        if changed:
            inst.BumpSerial()
            self._WriteConfig()
        return inst.Copy()

    @Locked
    def MarkInstanceUp(self, inst_uuid: str) -> objects.Instance:
        """Set the admin state to up (and the disks to active)."""
        return self._SetInstanceState(inst_uuid, constants.ADMINST_UP, True,
                                      constants.ADMIN_SOURCE)

    @Locked
    def MarkInstanceDown(self, inst_uuid: str) -> objects.Instance:
        """Set the admin state to down (by the administrator)."""
        return self._SetInstanceState(inst_uuid, constants.ADMINST_DOWN,
                                      None, constants.ADMIN_SOURCE)

    @Locked
    def MarkInstanceUserDown(self, inst_uuid: str) -> objects.Instance:
        """Set the admin state to down, as the instance's user shut it down."""
        return self._SetInstanceState(inst_uuid, constants.ADMINST_DOWN,
                                      None, constants.USER_SOURCE)

    @Locked
    def MarkInstanceOffline(self, inst_uuid: str) -> objects.Instance:
        """Set the admin state to offline (and the disks to inactive)."""
        return self._SetInstanceState(inst_uuid, constants.ADMINST_OFFLINE,
                                      False, constants.ADMIN_SOURCE)

    @Locked
    def MarkInstanceDisksActive(self, inst_uuid: str) -> objects.Instance:
        """Record that the instance's disks should be active."""
        return self._SetInstanceState(inst_uuid, None, True, None)

    @Locked
    def MarkInstanceDisksInactive(self, inst_uuid: str) -> objects.Instance:
        """Record that the instance's disks should be inactive."""
        return self._SetInstanceState(inst_uuid, None, False, None)

    # --- Disks --------------------------------------------------------------------------

    @Locked
    def AddInstanceDisk(self, inst_uuid: str, disk: objects.Disk,
                        idx: int | None = None) -> None:
        """Add a new disk and attach it to an instance at ``idx`` (or last).

        The disk's pending DRBD minors become part of the configuration.
        """
        data = self._config_data
        inst = self._LiveInstance(inst_uuid)
        position = len(inst.disks) if idx is None else idx
        if not 0 <= position <= len(inst.disks):
            raise errors.ConfigurationError(
                f"Invalid disk index {idx} for instance {inst.name}")
        self._EnsureUUID(disk, None)
        if not disk.nodes:
            disk.nodes = disk.ComputeNodes(inst.primary_node)
        disk.UpgradeConfig()
        now = time.time()
        self._Stamp(disk, now)
        data.disks[disk.uuid] = disk.Copy()
        inst.disks.insert(position, disk.uuid)
        self._RenumberDisks(inst)
        disk.iv_name = data.disks[disk.uuid].iv_name
        self._UnlockedReleaseDRBDMinors(disk.uuid)
        inst.BumpSerial(now)
        self._WriteConfig()

    @Locked
    def RemoveInstanceDisk(self, inst_uuid: str, disk_uuid: str) -> None:
        """Detach a disk from its instance and remove it."""
        inst = self._LiveInstance(inst_uuid)
        if disk_uuid not in inst.disks:
            raise errors.ConfigurationError(
                f"Disk {disk_uuid} is not attached to instance {inst.name}")
        inst.disks.remove(disk_uuid)
        self._DropDisk(disk_uuid)
        self._RenumberDisks(inst)
        inst.BumpSerial()
        self._WriteConfig()

    @Locked
    def DetachInstanceDisk(self, inst_uuid: str, disk_uuid: str) -> None:
        """Detach a disk from its instance; the disk stays in the
        configuration, attached to no instance."""
        inst = self._LiveInstance(inst_uuid)
        if disk_uuid not in inst.disks:
            raise errors.ConfigurationError(
                f"Disk {disk_uuid} is not attached to instance {inst.name}")
        inst.disks.remove(disk_uuid)
        self._RenumberDisks(inst)
        now = time.time()
        self._config_data.disks[disk_uuid].BumpSerial(now)
        inst.BumpSerial(now)
        self._WriteConfig()

    @Locked
    def AttachInstanceDisk(self, inst_uuid: str, disk_uuid: str,
                           idx: int | None = None) -> None:
        """Attach a disk of the configuration, used by no instance, to an
        instance at ``idx`` (or last)."""
        data = self._config_data
        inst = self._LiveInstance(inst_uuid)
        disk = data.disks.get(disk_uuid)
        if disk is None:
            raise errors.ConfigurationError(f"Unknown disk '{disk_uuid}'")
        for other in data.instances.values():
            if disk_uuid in other.disks:
                raise errors.ConfigurationError(
                    f"Disk {disk_uuid} is already attached to instance {other.name}")
        position = len(inst.disks) if idx is None else idx
        if not 0 <= position <= len(inst.disks):
            raise errors.ConfigurationError(
                f"Invalid disk index {idx} for instance {inst.name}")
        inst.disks.insert(position, disk_uuid)
        self._RenumberDisks(inst)
        now = time.time()
        disk.BumpSerial(now)
        inst.BumpSerial(now)
        self._WriteConfig()

    # --- Networks -----------------------------------------------------------------------

    @Locked
    def AddNetwork(self, net: objects.Network, ec_id: Hashable,
                   check_uuid: bool = True) -> None:
        """Add a network; its address pool is created if it has none."""
        data = self._config_data
        if self._NetworkByName(net.name) is not None:
            raise _Exists("Network", net.name)
        if check_uuid or not net.uuid:
            self._EnsureUUID(net, ec_id)
        try:
            if net.reservations is None and net.ext_reservations is None:
                netpool.AddressPool.InitializeNetwork(net)
            else:
                netpool.AddressPool(net)
        except errors.AddressPoolError as err:
            raise errors.OpPrereqError(str(err), errors.ECODE_INVAL) from err
        net.UpgradeConfig()
        now = time.time()
        self._Stamp(net, now)
        data.networks[net.uuid] = net.Copy()
        self._BumpCluster(now)
        self._WriteConfig()

    @Locked
    def RemoveNetwork(self, net_uuid: str) -> None:
        """Remove a network (the logical unit checks it is unused)."""
        data = self._config_data
        if data.networks.pop(net_uuid, None) is None:
            raise errors.ConfigurationError(f"Unknown network '{net_uuid}'")
        self._BumpCluster()
        self._WriteConfig()

    # --- Updates ------------------------------------------------------------------------

    def _Container(self, target: objects.ConfigObject
                   ) -> dict[str, Any] | None:
        data = self._config_data
        for cls, container in ((objects.Node, data.nodes),
                               (objects.Instance, data.instances),
                               (objects.NodeGroup, data.nodegroups),
                               (objects.Network, data.networks),
                               (objects.Disk, data.disks)):
            if isinstance(target, cls):
                return container
        if isinstance(target, objects.Cluster):
            return None
        raise errors.ProgrammerError(
            f"Invalid object type passed to Update: {type(target).__name__}")

    @Locked
    def Update(self, target: Any, feedback_fn: FeedbackFn = None,
               ec_id: Hashable | None = None) -> None:
        """Store a changed copy of a config object.

        ``target`` is a Cluster, Node, NodeGroup, Instance, Network or Disk
        obtained from a lookup and then changed. Raises ConfigurationError
        if the object is unknown or was changed since it was read (its
        serial_no differs from the stored one). Bumps serial_no and mtime,
        on ``target`` too, so it can be updated again.
        With ``ec_id``, the IPs that job reserved are committed.
        """
        data = self._config_data
        container = self._Container(target)
        kind = type(target).__name__
        current: Any
        if container is None:
            current = data.cluster
            if target.uuid != current.uuid:
                raise errors.ConfigurationError(
                    f"Unknown cluster object {target.uuid}")
        else:
            current = container.get(target.uuid)
            if current is None:
                raise errors.ConfigurationError(
                    f"Unknown {kind} '{target.uuid}': not in the"
                    " configuration (removed, or never added)")
        if current.serial_no != target.serial_no:
            raise errors.ConfigurationError(
                f"{kind} {getattr(target, 'name', None) or target.uuid} was"
                f" changed since it was read (serial {current.serial_no},"
                f" given {target.serial_no}); read it again")

        now = time.time()
        if isinstance(target, objects.Instance):
            other = self._InstanceByName(target.name)
            if other is not None and other.uuid != target.uuid:
                raise _Exists("Instance", target.name)
            for nic in target.nics:
                if not nic.uuid:
                    self._EnsureUUID(nic, ec_id)
                nic.UpgradeConfig()
        elif isinstance(target, objects.Node):
            other_node = self._NodeByName(target.name)
            if other_node is not None and other_node.uuid != target.uuid:
                raise _Exists("Node", target.name)
            if target.group not in data.nodegroups:
                raise errors.ConfigurationError(
                    f"Node {target.name} names unknown group {target.group}")
        elif isinstance(target, objects.Network):
            other_net = self._NetworkByName(target.name)
            if other_net is not None and other_net.uuid != target.uuid:
                raise _Exists("Network", target.name)

        target.BumpSerial(now)
        stored = target.Copy()
        if container is None:
            data.cluster = stored
        else:
            container[stored.uuid] = stored

        if isinstance(target, objects.NodeGroup):
            stored.members = list(current.members or [])
        elif isinstance(target, objects.Node):
            if current.group != stored.group:
                data.ComputeGroupMembers()
            # Node changes show in ssconf, which follows the cluster serial
            self._BumpCluster(now)
        elif isinstance(target, objects.Instance):
            for disk_uuid in stored.disks:
                self._UnlockedReleaseDRBDMinors(disk_uuid)
        elif isinstance(target, objects.Disk):
            self._UnlockedReleaseDRBDMinors(stored.uuid)
        if ec_id is not None:
            self._CommitTemporaryIps(ec_id)
        self._WriteConfig(feedback_fn)
