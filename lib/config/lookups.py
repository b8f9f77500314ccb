"""Read-only questions to the configuration.

Every method returning config objects returns copies: changing one does not
change the configuration; hand it to ConfigWriter.Update to store it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, NamedTuple

from ganeti import constants, errors, objects, utils
from ganeti.config.base import ConfigBase, Locked
from ganeti.config.ssconf_values import ComputeSsconfValues
from ganeti.config.verify import VerifyConfigData

__all__ = ["LookupsMixin", "ReadOnlySnapshot"]


class ReadOnlySnapshot(NamedTuple):
    """See :meth:`LookupsMixin.GetReadOnlySnapshot`: do not modify."""

    cluster: objects.Cluster
    nodes: dict[str, objects.Node]
    nodegroups: dict[str, objects.NodeGroup]
    instances: dict[str, objects.Instance]
    disks: dict[str, objects.Disk]
    networks: dict[str, objects.Network]


def _Copies(objs: dict[str, Any]) -> dict[str, Any]:
    return {uuid: obj.Copy() for uuid, obj in objs.items()}


class LookupsMixin(ConfigBase):
    """Getters of the ConfigWriter."""

    # --- Unlocked helpers (callers hold the lock) ------------------------

    def _NodeByName(self, name: str) -> objects.Node | None:
        for node in self._config_data.nodes.values():
            if node.name == name:
                return node
        return None

    def _InstanceByName(self, name: str) -> objects.Instance | None:
        for inst in self._config_data.instances.values():
            if inst.name == name:
                return inst
        return None

    def _GroupByName(self, name: str) -> objects.NodeGroup | None:
        for group in self._config_data.nodegroups.values():
            if group.name == name:
                return group
        return None

    def _NetworkByName(self, name: str) -> objects.Network | None:
        for net in self._config_data.networks.values():
            if net.name == name:
                return net
        return None

    def _UnlockedGetNodeName(self, node_uuid: str) -> str:
        node = self._config_data.nodes.get(node_uuid)
        if node is None:
            raise errors.OpExecError(f"Unknown node: {node_uuid}")
        return node.name

    def _UnlockedGetInstanceNodes(self, inst: objects.Instance
                                  ) -> tuple[str, ...]:
        """Primary node first, then the other nodes of the disks."""
        result = [inst.primary_node]
        for disk_uuid in inst.disks:
            disk = self._config_data.disks.get(disk_uuid)
            if disk is None:
                continue
            nodes = list(disk.nodes or [])
            if not nodes and disk.dev_type == constants.DT_DRBD8 \
                    and disk.logical_id:
                nodes = list(disk.logical_id[:2])
            for node in nodes:
                if node not in result:
                    result.append(node)
        return tuple(result)

    def _UnlockedLookupNodeGroup(self, target: str | None) -> str:
        groups = self._config_data.nodegroups
        if target is None:
            if len(groups) == 1:
                return next(iter(groups))
            raise errors.OpPrereqError(
                "More than one node group exists; the target group must be"
                " given explicitly", errors.ECODE_INVAL)
        if target in groups:
            return target
        group = self._GroupByName(target)
        if group is None:
            raise errors.OpPrereqError(f"Node group '{target}' not found",
                                       errors.ECODE_NOENT)
        return group.uuid

    # --- Cluster ------------------------------------------------------------------

    @Locked
    def GetConfigVersion(self) -> int:
        """Return the version of the configuration."""
        return self._config_data.version

    @Locked
    def GetClusterInfo(self) -> objects.Cluster:
        """Return (a copy of) the cluster object."""
        return self._config_data.cluster.Copy()

    @Locked
    def GetClusterName(self) -> str:
        """Return the cluster's name."""
        return self._config_data.cluster.cluster_name

    @Locked
    def GetClusterSerialNo(self) -> int:
        """Return the serial number of the cluster object."""
        return self._config_data.cluster.serial_no

    @Locked
    def GetConfigSerialNo(self) -> int:
        """Return the serial number of the whole configuration."""
        return self._config_data.serial_no

    @Locked
    def GetMasterNode(self) -> str:
        """Return the UUID of the master node."""
        return self._config_data.cluster.master_node

    @Locked
    def GetMasterNodeName(self) -> str:
        """Return the name of the master node."""
        return self._UnlockedGetNodeName(self._config_data.cluster.master_node)

    @Locked
    def GetMasterNodeInfo(self) -> objects.Node:
        """Return (a copy of) the master node."""
        master = self._config_data.cluster.master_node
        node = self._config_data.nodes.get(master)
        if node is None:
            raise errors.ConfigurationError(f"Unknown master node {master}")
        return node.Copy()

    @Locked
    def GetMasterIP(self) -> str:
        """Return the master IP."""
        return self._config_data.cluster.master_ip

    @Locked
    def GetMasterNetdev(self) -> str:
        """Return the network device of the master IP."""
        return self._config_data.cluster.master_netdev

    @Locked
    def GetMasterNetmask(self) -> int:
        """Return the netmask (prefix length) of the master IP."""
        return self._config_data.cluster.master_netmask

    @Locked
    def GetUseExternalMipScript(self) -> bool:
        """Tell whether an external script sets the master IP up."""
        return bool(self._config_data.cluster.use_external_mip_script)

    @Locked
    def GetMasterNetworkParameters(self) -> objects.MasterNetworkParameters:
        """Return what a node needs to handle the master IP."""
        cluster = self._config_data.cluster
        return objects.MasterNetworkParameters(
            uuid=cluster.master_node, ip=cluster.master_ip,
            netmask=cluster.master_netmask, netdev=cluster.master_netdev,
            ip_family=cluster.primary_ip_family)

    @Locked
    def GetMACPrefix(self) -> str:
        """Return the cluster's MAC prefix."""
        return self._config_data.cluster.mac_prefix

    @Locked
    def GetVGName(self) -> str | None:
        """Return the cluster's volume group."""
        return self._config_data.cluster.volume_group_name

    @Locked
    def GetDRBDHelper(self) -> str | None:
        """Return the DRBD usermode helper."""
        return self._config_data.cluster.drbd_usermode_helper

    @Locked
    def GetFileStorageDir(self) -> str:
        """Return the file storage directory."""
        return self._config_data.cluster.file_storage_dir

    @Locked
    def GetSharedFileStorageDir(self) -> str:
        """Return the shared file storage directory."""
        return self._config_data.cluster.shared_file_storage_dir

    @Locked
    def GetGlusterStorageDir(self) -> str:
        """Return the Gluster storage directory."""
        return self._config_data.cluster.gluster_storage_dir

    @Locked
    def GetHypervisorType(self) -> str:
        """Return the default hypervisor (the first enabled one)."""
        return self._config_data.cluster.primary_hypervisor

    @Locked
    def GetDefaultIAllocator(self) -> str:
        """Return the default instance allocator."""
        return self._config_data.cluster.default_iallocator

    @Locked
    def GetDefaultIAllocatorParameters(self) -> dict[str, Any]:
        """Return the default instance allocator's parameters."""
        return dict(self._config_data.cluster.default_iallocator_params)

    @Locked
    def GetHostKey(self) -> str:
        """Return the cluster's public RSA host key."""
        return self._config_data.cluster.rsahostkeypub

    @Locked
    def GetCandidateCerts(self) -> dict[str, str]:
        """Return {node UUID: certificate digest} of the candidates."""
        return dict(self._config_data.cluster.candidate_certs)

    @Locked
    def GetNdParams(self, node: objects.Node) -> dict[str, Any]:
        """Return a node's parameters filled with its group's and cluster's."""
        group = self._config_data.nodegroups.get(node.group)
        if group is None:
            raise errors.ConfigurationError(
                f"Node {node.name} is in unknown group {node.group}")
        return self._config_data.cluster.FillND(node, group)

    @Locked
    def GetNdGroupParams(self, nodegroup: objects.NodeGroup
                         ) -> dict[str, Any]:
        """Return a group's node parameters filled with the cluster's."""
        return self._config_data.cluster.SimpleFillND(nodegroup.ndparams)

    @Locked
    def GetGroupDiskParams(self, group: objects.NodeGroup
                           ) -> dict[str, dict[str, Any]]:
        """Return a group's disk parameters filled with the cluster's."""
        return self._config_data.cluster.SimpleFillDP(group.diskparams)

    @Locked
    def GetGroupIPolicy(self, group: objects.NodeGroup) -> dict[str, Any]:
        """Return a group's instance policy filled with the cluster's."""
        return self._config_data.cluster.SimpleFillIPolicy(group.ipolicy)

    # --- Nodes ------------------------------------------------------------------------

    @Locked
    def GetNodeInfo(self, node_uuid: str) -> objects.Node | None:
        """Return (a copy of) a node, or None if unknown."""
        node = self._config_data.nodes.get(node_uuid)
        return node.Copy() if node is not None else None

    @Locked
    def GetNodeInfoByName(self, node_name: str) -> objects.Node | None:
        """Return (a copy of) the node called ``node_name``, or None."""
        node = self._NodeByName(node_name)
        return node.Copy() if node is not None else None

    @Locked
    def GetNodeName(self, node_uuid: str) -> str:
        """Return a node's name; OpExecError if the node is unknown."""
        return self._UnlockedGetNodeName(node_uuid)

    @Locked
    def GetNodeNames(self, node_uuids: Iterable[str]) -> list[str]:
        """Return the names of nodes, in the given order."""
        return [self._UnlockedGetNodeName(uuid) for uuid in node_uuids]

    @Locked
    def GetAllNodesInfo(self) -> dict[str, objects.Node]:
        """Return {UUID: node} (copies) of all nodes."""
        return _Copies(self._config_data.nodes)

    @Locked
    def GetAllNodesReadOnly(self) -> dict[str, objects.Node]:
        """Return {UUID: node} of all nodes, the stored objects themselves.

        For code that reads a few fields of every node many times a second
        (the RPC address resolver, the configuration distributor), where
        copying every node each time is the cost. The objects MUST NOT be
        changed (see :meth:`GetReadOnlySnapshot`).
        """
        return dict(self._config_data.nodes)

    @Locked
    def GetMultiNodeInfo(self, node_uuids: Iterable[str]
                         ) -> list[tuple[str, objects.Node | None]]:
        """Return [(uuid, node or None)] for the given UUIDs."""
        nodes = self._config_data.nodes
        return [(uuid, nodes[uuid].Copy() if uuid in nodes else None)
                for uuid in node_uuids]

    @Locked
    def GetNodeList(self) -> list[str]:
        """Return the UUIDs of all nodes."""
        return list(self._config_data.nodes)

    def _FilteredNodes(self, keep: Any) -> list[str]:
        return [uuid for uuid, node in self._config_data.nodes.items()
                if keep(node)]

    @Locked
    def GetOnlineNodeList(self) -> list[str]:
        """Return the UUIDs of the nodes not marked offline."""
        return self._FilteredNodes(lambda node: not node.offline)

    @Locked
    def GetVmCapableNodeList(self) -> list[str]:
        """Return the UUIDs of the nodes that may host instances."""
        return self._FilteredNodes(lambda node: node.vm_capable)

    @Locked
    def GetNonVmCapableNodeList(self) -> list[str]:
        """Return the UUIDs of the nodes that may not host instances."""
        return self._FilteredNodes(lambda node: not node.vm_capable)

    @Locked
    def GetMasterCandidateStats(self, exceptions: Iterable[str] | None = None
                                ) -> tuple[int, int, int]:
        """Return (candidates now, candidates wanted, possible candidates).

        Nodes in ``exceptions`` (UUIDs) are not counted.
        """
        skip = set(exceptions or ())
        mc_now = mc_max = 0
        for uuid, node in self._config_data.nodes.items():
            if uuid in skip:
                continue
            if node.master_capable and not (node.offline or node.drained):
                mc_max += 1
            if node.master_candidate:
                mc_now += 1
        pool_size = self._config_data.cluster.candidate_pool_size or 0
        return mc_now, min(mc_max, pool_size), mc_max

    @Locked
    def GetNodeInstances(self, node_uuid: str
                         ) -> tuple[list[str], list[str]]:
        """Return (primary, secondary) instance UUIDs of a node."""
        primary: list[str] = []
        secondary: list[str] = []
        for uuid, inst in self._config_data.instances.items():
            if inst.primary_node == node_uuid:
                primary.append(uuid)
            elif node_uuid in self._UnlockedGetInstanceNodes(inst):
                secondary.append(uuid)
        return primary, secondary

    @Locked
    def ExpandNodeName(self, short_name: str) -> str | None:
        """Return the one node name ``short_name`` abbreviates, or None."""
        return utils.MatchNameComponent(
            short_name, [node.name for node in
                         self._config_data.nodes.values()],
            case_sensitive=False)

    # --- Node groups ------------------------------------------------------------------

    @Locked
    def GetNodeGroup(self, group_uuid: str) -> objects.NodeGroup | None:
        """Return (a copy of) a node group, or None if unknown."""
        group = self._config_data.nodegroups.get(group_uuid)
        return group.Copy() if group is not None else None

    @Locked
    def GetNodeGroupInfoByName(self, name: str) -> objects.NodeGroup | None:
        """Return (a copy of) the group called ``name``, or None."""
        group = self._GroupByName(name)
        return group.Copy() if group is not None else None

    @Locked
    def LookupNodeGroup(self, target: str | None) -> str:
        """Return the UUID of the group named or identified by ``target``.

        None means the only group. Raises OpPrereqError (ECODE_NOENT) for an
        unknown group.
        """
        return self._UnlockedLookupNodeGroup(target)

    @Locked
    def GetAllNodeGroupsInfo(self) -> dict[str, objects.NodeGroup]:
        """Return {UUID: group} (copies) of all node groups."""
        return _Copies(self._config_data.nodegroups)

    @Locked
    def GetNodeGroupList(self) -> list[str]:
        """Return the UUIDs of all node groups."""
        return list(self._config_data.nodegroups)

    @Locked
    def GetNodeGroupsFromNodes(self, node_uuids: Iterable[str]
                               ) -> frozenset[str]:
        """Return the groups of the given nodes."""
        nodes = self._config_data.nodes
        return frozenset(nodes[uuid].group for uuid in node_uuids
                         if uuid in nodes)

    @Locked
    def GetNodeGroupMembersByNodes(self, node_uuids: Iterable[str]
                                   ) -> frozenset[str]:
        """Return all members of the groups of the given nodes."""
        data = self._config_data
        groups = {data.nodes[uuid].group for uuid in node_uuids
                  if uuid in data.nodes}
        return frozenset(uuid for uuid, node in data.nodes.items()
                         if node.group in groups)

    # --- Instances and disks ------------------------------------------------------

    @Locked
    def GetInstanceInfo(self, inst_uuid: str) -> objects.Instance | None:
        """Return (a copy of) an instance, or None if unknown."""
        inst = self._config_data.instances.get(inst_uuid)
        return inst.Copy() if inst is not None else None

    @Locked
    def GetInstanceInfoByName(self, name: str) -> objects.Instance | None:
        """Return (a copy of) the instance called ``name``, or None."""
        inst = self._InstanceByName(name)
        return inst.Copy() if inst is not None else None

    @Locked
    def GetInstanceName(self, inst_uuid: str) -> str:
        """Return an instance's name; OpExecError if unknown."""
        inst = self._config_data.instances.get(inst_uuid)
        if inst is None:
            raise errors.OpExecError(f"Unknown instance: {inst_uuid}")
        return inst.name

    @Locked
    def GetInstanceNames(self, inst_uuids: Iterable[str]) -> list[str]:
        """Return the names of instances, in the given order."""
        instances = self._config_data.instances
        missing = [uuid for uuid in inst_uuids if uuid not in instances]
        if missing:
            raise errors.OpExecError(f"Unknown instance(s): {missing}")
        return [instances[uuid].name for uuid in inst_uuids]

    @Locked
    def GetInstanceList(self) -> list[str]:
        """Return the UUIDs of all instances."""
        return list(self._config_data.instances)

    @Locked
    def GetAllInstancesInfo(self) -> dict[str, objects.Instance]:
        """Return {UUID: instance} (copies) of all instances."""
        return _Copies(self._config_data.instances)

    @Locked
    def GetMultiInstanceInfo(self, inst_uuids: Iterable[str]
                             ) -> list[tuple[str, objects.Instance | None]]:
        """Return [(uuid, instance or None)] for the given UUIDs."""
        instances = self._config_data.instances
        return [(uuid, instances[uuid].Copy() if uuid in instances else None)
                for uuid in inst_uuids]

    def _LiveInstance(self, inst_uuid: str) -> objects.Instance:
        inst = self._config_data.instances.get(inst_uuid)
        if inst is None:
            raise errors.ConfigurationError(f"Unknown instance '{inst_uuid}'")
        return inst

    @Locked
    def GetInstanceNodes(self, inst_uuid: str) -> tuple[str, ...]:
        """Return the instance's nodes, primary first."""
        return self._UnlockedGetInstanceNodes(self._LiveInstance(inst_uuid))

    @Locked
    def GetInstanceSecondaryNodes(self, inst_uuid: str) -> tuple[str, ...]:
        """Return the instance's nodes other than the primary."""
        return self._UnlockedGetInstanceNodes(
            self._LiveInstance(inst_uuid))[1:]

    @Locked
    def GetInstanceNodeGroups(self, inst_uuid: str,
                              primary_only: bool = False) -> frozenset[str]:
        """Return the node groups of the instance's (primary) nodes."""
        inst = self._LiveInstance(inst_uuid)
        nodes = ([inst.primary_node] if primary_only
                 else self._UnlockedGetInstanceNodes(inst))
        data = self._config_data
        return frozenset(data.nodes[uuid].group for uuid in nodes
                         if uuid in data.nodes)

    @Locked
    def GetInstanceDisks(self, inst_uuid: str) -> list[objects.Disk]:
        """Return (copies of) the instance's disks, in order."""
        disks = self._config_data.disks
        return [disks[uuid].Copy()
                for uuid in self._LiveInstance(inst_uuid).disks
                if uuid in disks]

    @Locked
    def GetInstanceDiskTemplate(self, inst_uuid: str) -> str:
        """Return the disk template: the first disk's type, or diskless."""
        inst = self._LiveInstance(inst_uuid)
        for uuid in inst.disks:
            disk = self._config_data.disks.get(uuid)
            if disk is not None:
                return disk.dev_type
        return constants.DT_DISKLESS

    @Locked
    def GetDiskInfo(self, disk_uuid: str) -> objects.Disk | None:
        """Return (a copy of) a disk, or None if unknown."""
        disk = self._config_data.disks.get(disk_uuid)
        return disk.Copy() if disk is not None else None

    @Locked
    def GetAllDisksInfo(self) -> dict[str, objects.Disk]:
        """Return {UUID: disk} (copies) of all disks."""
        return _Copies(self._config_data.disks)

    @Locked
    def GetInstanceForDisk(self, disk_uuid: str) -> str | None:
        """Return the UUID of the instance using a disk, or None."""
        for uuid, inst in self._config_data.instances.items():
            if disk_uuid in inst.disks:
                return uuid
        return None

    @Locked
    def ExpandInstanceName(self, short_name: str) -> str | None:
        """Return the one instance name ``short_name`` abbreviates, or None."""
        return utils.MatchNameComponent(
            short_name, [inst.name for inst in
                         self._config_data.instances.values()],
            case_sensitive=False)

    # --- Networks ---------------------------------------------------------------------

    @Locked
    def GetNetwork(self, net_uuid: str) -> objects.Network | None:
        """Return (a copy of) a network, or None if unknown."""
        net = self._config_data.networks.get(net_uuid)
        return net.Copy() if net is not None else None

    @Locked
    def GetNetworkList(self) -> list[str]:
        """Return the UUIDs of all networks."""
        return list(self._config_data.networks)

    @Locked
    def GetAllNetworksInfo(self) -> dict[str, objects.Network]:
        """Return {UUID: network} (copies) of all networks."""
        return _Copies(self._config_data.networks)

    @Locked
    def LookupNetwork(self, target: str) -> str:
        """Return the UUID of the network named or identified by ``target``.

        Raises OpPrereqError (ECODE_NOENT) for an unknown network.
        """
        if target in self._config_data.networks:
            return target
        net = self._NetworkByName(target)
        if net is None:
            raise errors.OpPrereqError(f"Network '{target}' not found",
                                       errors.ECODE_NOENT)
        return net.uuid

    # --- Whole configuration ----------------------------------------------------

    @Locked
    def VerifyConfig(self) -> list[str]:
        """Return every consistency problem of the configuration."""
        return VerifyConfigData(self._config_data)

    @Locked
    def GetSsconfValues(self) -> dict[str, str]:
        """Return {ssconf key: file contents} (see ssconf_values)."""
        return ComputeSsconfValues(self._config_data)

    @Locked
    def GetReadOnlySnapshot(self) -> ReadOnlySnapshot:
        """The stored objects themselves, for fast read-only bulk queries.

        Unlike every other getter this returns no copies (copying 10,000
        instances costs seconds): the dicts are new, the objects in them
        are the configuration's own and MUST NOT be changed. Most changes
        store new objects, so the snapshot stays as it was; the few made
        in place (instance state flags, renames) may show through.
        """
        data = self._config_data
        return ReadOnlySnapshot(data.cluster, dict(data.nodes),
                                dict(data.nodegroups), dict(data.instances),
                                dict(data.disks), dict(data.networks))

    @Locked
    def GetConfigData(self) -> objects.ConfigData:
        """Return a copy of the whole configuration."""
        return self._config_data.Copy()
