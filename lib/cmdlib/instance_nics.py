"""NICs on networks: what the instance LUs share about them.

A NIC on a network (``--net N:network=NAME``) takes its mode, link and
VLAN from the network's connection to the node group of the instance's
primary node (``NodeGroup.networks``); they are copied into the NIC's
``nicparams`` when the NIC joins the network, as Ganeti does, so that the
nodes see them like any NIC's parameters. Giving a mode or a link (or a
VLAN, which the connection sets too) together with a network is refused.

Its address comes from the network's pool: ``ip=pool`` takes a free one,
an explicit address must be inside the network and free. Addresses are
reserved under the job's execution context (``ec_id``) and reach the
network's pool only when the instance is added or updated with that
``ec_id`` (ConfigWriter.AddInstance/Update); a job that fails before
drops its reservations (ConfigWriter.DropECReservations), so nothing
leaks. Releases follow the same way (ConfigWriter.ReleaseIp); removing
an instance releases its addresses at once (ConfigWriter.RemoveInstance).

The instance LUs lock the networks their NICs use or join, and the
primary node's group, shared (:func:`DeclareNetworkLocks`, checked again
under the locks by :func:`CheckNetworkLocks`), so that gnt-network
remove (network exclusive) and disconnect (group exclusive) wait for them.

Also here: the network data the nodes get (:func:`NetInfo`; the hooks'
variables are :func:`ganeti.hooksmaster.NetworkHookEnv`), the check that
the target groups of a group change are connected to the instances'
networks (:func:`CheckGroupsHaveNetworks`, :func:`CheckChosenGroups`) and
the verification of the NICs of a group's instances
(:func:`VerifyInstanceNetworks`).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from typing import Any

from ganeti import constants, errors, locking, objects, utils

#: The NIC parameters a network's connection to a group sets
NETWORK_NIC_PARAMS = (constants.INIC_MODE, constants.INIC_LINK, constants.INIC_VLAN)

#: What of a Network object the nodes get with a NIC (``NIC.netinfo``):
#: everything but the reservation maps, which can be long
_NETINFO_KEYS = ("name", "uuid", "network", "gateway", "network6", "gateway6",
                 "mac_prefix", "tags")


def IsNoneValue(value: Any) -> bool:
    """Whether a NIC parameter value means "nothing" (None, "", "none")."""
    return value is None or value == "" or \
        (isinstance(value, str) and value.lower() == constants.VALUE_NONE)


def CheckNoParamsWithNetwork(params: dict[str, Any], what: str) -> None:
    """OpPrereqError if ``params`` give a network together with a mode,
    link or VLAN (the network's connection to the group sets them)."""
    if IsNoneValue(params.get(constants.INIC_NETWORK)):
        return
    given = [key for key in NETWORK_NIC_PARAMS
             if not IsNoneValue(params.get(key))
             and params.get(key) != constants.VALUE_DEFAULT]
    if given:
        raise errors.OpPrereqError(
            f"{what}: if network is given, no mode or link is allowed to be passed"
            f" (got {', '.join(given)}); they come from the network's connection to"
            " the node group", errors.ECODE_INVAL)


def GroupOfNode(cfg: Any, node_uuid: str) -> objects.NodeGroup:
    """The node group of a node."""
    node = cfg.GetNodeInfo(node_uuid)
    group = cfg.GetNodeGroup(node.group) if node is not None else None
    if group is None:
        raise errors.OpPrereqError(f"Cannot find the node group of node {node_uuid}",
                                   errors.ECODE_NOENT)
    return group


def NamedNetworks(cfg: Any, names: Iterable[Any]) -> list[str]:
    """The UUIDs of the networks named (None and "none" skipped), sorted;
    OpPrereqError (ECODE_NOENT) for an unknown one."""
    return sorted({cfg.LookupNetwork(name) for name in names
                   if name and not IsNoneValue(name)})


def DeclareNetworkLocks(lu: Any, net_uuids: Iterable[str],
                        group_uuids: Any = None) -> None:
    """Lock the networks an instance LU reserves addresses in or reads
    (shared: only gnt-network remove, rename and modify take them
    exclusively), and the node groups whose connections it reads (shared:
    gnt-network connect/disconnect take them exclusively); so neither can
    pull a network from under the LU. Nothing when no network is used."""
    nets = sorted(set(net_uuids))
    if not nets:
        return
    lu.needed_locks[locking.LEVEL_NETWORK] = nets
    lu.share_locks[locking.LEVEL_NETWORK] = 1
    if group_uuids is not None:
        lu.needed_locks[locking.LEVEL_NODEGROUP] = group_uuids
        lu.share_locks[locking.LEVEL_NODEGROUP] = 1


def CheckNetworkLocks(lu: Any, names: Iterable[Any], group_uuid: str | None) -> None:
    """Under the locks: the named networks, and ``group_uuid`` when networks
    are used, are among those locked (names and a node's group may have
    changed before), else OpPrereqError (ECODE_STATE) asking to retry."""
    names = [name for name in names if name and not IsNoneValue(name)]
    if not names or lu.glm is None:
        return
    owned = lu.owned_locks(locking.LEVEL_NETWORK)
    changed = [f"network {name}" for name in names
               if lu.cfg.LookupNetwork(name) not in owned]
    if group_uuid is not None and \
            group_uuid not in lu.owned_locks(locking.LEVEL_NODEGROUP):
        changed.append(f"node group {group_uuid}")
    if changed:
        raise errors.OpPrereqError(
            f"Changed since the locks were acquired: {', '.join(changed)}; retry the"
            " operation", errors.ECODE_STATE)


def NetworkName(cfg: Any, net_uuid: str) -> str:
    """A network's name (its UUID if unknown), for messages."""
    net = cfg.GetNetwork(net_uuid)
    return net.name if net is not None else net_uuid


def ConnectionParams(cfg: Any, net_uuid: str, group: objects.NodeGroup
                     ) -> dict[str, Any]:
    """The NIC parameters (mode, link, vlan) of ``net_uuid`` in ``group``;
    OpPrereqError naming both if the network is not connected there."""
    params = (group.networks or {}).get(net_uuid)
    if params is None:
        raise errors.OpPrereqError(
            f"Network {NetworkName(cfg, net_uuid)} is not connected to node group"
            f" {group.name} (connect it with gnt-network connect)",
            errors.ECODE_INVAL)
    return {key: value for key, value in params.items()
            if key in NETWORK_NIC_PARAMS and value not in (None, "")}


def ReserveIp(cfg: Any, net_uuid: str, ip: str | None, ec_id: Hashable, what: str,
              check: bool = True) -> str | None:
    """Reserve the address of a NIC on network ``net_uuid`` for ``ec_id``.

    ``ip`` "pool" takes a free address (OpPrereqError, ECODE_STATE, when
    the pool is full); an address must be inside the network and free
    (with ``check``; without, an externally reserved address may be
    taken, as ``--no-conflicts-check`` allows), else OpPrereqError
    (ECODE_NOTUNIQUE) naming it. None stays None. Returns the address.
    """
    if ip is None:
        return None
    name = NetworkName(cfg, net_uuid)
    if ip == constants.NIC_IP_POOL:
        try:
            return str(cfg.GenerateIp(net_uuid, ec_id))
        except errors.ReservationError as err:
            raise errors.OpPrereqError(
                f"Unable to get a free IP for {what} from network {name}: {err}",
                errors.ECODE_STATE) from None
    try:
        cfg.ReserveIp(net_uuid, ip, ec_id, check=check)
    except errors.ReservationError:
        raise errors.OpPrereqError(
            f"IP address {ip} already in use or not in network {name}",
            errors.ECODE_NOTUNIQUE) from None
    return ip


def ReleaseIp(cfg: Any, net_uuid: str | None, ip: str | None,
              ec_id: Hashable) -> None:
    """Give a NIC's address back to its network when ``ec_id`` commits."""
    if net_uuid and ip and cfg.GetNetwork(net_uuid) is not None:
        cfg.ReleaseIp(net_uuid, ip, ec_id)


def CheckIpOutsideNetworks(cfg: Any, ip: str | None, group: objects.NodeGroup,
                           what: str) -> None:
    """The conflicts check of a NIC without network: its address must not
    belong to a network connected to ``group`` (OpPrereqError naming it)."""
    if not ip or ip == constants.NIC_IP_POOL:
        return
    from ganeti import network as netpool
    for net_uuid in sorted(group.networks or {}):
        net = cfg.GetNetwork(net_uuid)
        if net is None:
            continue
        try:
            inside = netpool.AddressPool(net).Contains(ip)
        except errors.AddressPoolError:
            continue
        if inside:
            raise errors.OpPrereqError(
                f"The requested IP address ({ip}) of {what} belongs to network"
                f" {net.name}, but the target NIC does not (give network={net.name},"
                " or --no-conflicts-check)", errors.ECODE_STATE)


# --- what nodes and hooks get -----------------------------------------------------------

def NetInfo(net: objects.Network) -> dict[str, Any]:
    """The network data sent with a NIC to the nodes (``NIC.netinfo``)."""
    data = net.ToDict()
    result = {key: data.get(key) for key in _NETINFO_KEYS}
    result["tags"] = sorted(net.GetTags())
    return result


def AddNetInfo(cfg: Any, nic_dicts: Iterable[dict[str, Any]]) -> None:
    """Set ``netinfo`` on the serialised NICs that are on a network."""
    for nic in nic_dicts:
        net_uuid = nic.get("network")
        net = cfg.GetNetwork(net_uuid) if net_uuid else None
        if net is not None:
            nic["netinfo"] = NetInfo(net)


# --- group changes ------------------------------------------------------------------------

def _InstanceNetworks(inst: objects.Instance) -> list[str]:
    return sorted({nic.network for nic in inst.nics if nic.network})


def _MissingNetworks(cfg: Any, inst: objects.Instance, group_uuid: str) -> list[str]:
    group = cfg.GetNodeGroup(group_uuid)
    connected = set((group.networks or {}) if group is not None else ())
    return [NetworkName(cfg, net) for net in _InstanceNetworks(inst)
            if net not in connected]


def CheckGroupsHaveNetworks(cfg: Any, instances: Iterable[objects.Instance],
                            target_groups: list[str]) -> list[str]:
    """The target groups (UUIDs) to offer the allocator for moving
    ``instances``: every instance must have at least one target group
    connected to all its networks, else OpPrereqError naming the instance,
    its networks and the groups. The groups connected to the networks of
    every instance are returned when there are some (the allocator then
    cannot pick a wrong one), else all targets (CheckChosenGroups checks
    the allocator's choice)."""
    usable = list(target_groups)
    for inst in instances:
        if not _InstanceNetworks(inst):
            continue
        good = [uuid for uuid in target_groups
                if not _MissingNetworks(cfg, inst, uuid)]
        if not good:
            details = "; ".join(
                f"group {_GroupName(cfg, uuid)} is not connected to network(s)"
                f" {utils.CommaJoin(_MissingNetworks(cfg, inst, uuid))}"
                for uuid in target_groups)
            raise errors.OpPrereqError(
                f"Instance {inst.name} cannot move to another node group: {details}"
                " (connect the network(s) to a target group with gnt-network"
                " connect)", errors.ECODE_STATE)
        usable = [uuid for uuid in usable if uuid in good]
    return usable or list(target_groups)


def CheckChosenGroups(cfg: Any, moved: Iterable[Any]) -> None:
    """OpPrereqError if the allocator moves an instance (``moved``:
    ``(name, group, nodes)``) to a group not connected to its networks."""
    for name, group, _nodes in moved:
        inst = cfg.GetInstanceInfoByName(name)
        info = cfg.GetNodeGroup(group) or cfg.GetNodeGroupInfoByName(group)
        if inst is None or info is None:
            continue
        missing = _MissingNetworks(cfg, inst, info.uuid)
        if missing:
            raise errors.OpPrereqError(
                f"The allocator moves instance {name} to node group {info.name},"
                f" which is not connected to network(s) {utils.CommaJoin(missing)}",
                errors.ECODE_STATE)


def _GroupName(cfg: Any, uuid: str) -> str:
    group = cfg.GetNodeGroup(uuid)
    return group.name if group is not None else uuid


# --- verification --------------------------------------------------------------------------

def VerifyInstanceNetworks(cfg: Any, group: objects.NodeGroup,
                           instances: Iterable[objects.Instance]
                           ) -> list[tuple[str, str]]:
    """(instance name, message) for each NIC of ``instances`` (those whose
    primary node is in ``group``) on a network the group is not connected
    to. Addresses outside their network and addresses used twice are the
    configuration's checks (ConfigWriter.VerifyConfig)."""
    problems = []
    connected = set(group.networks or {})
    for inst in instances:
        for idx, nic in enumerate(inst.nics):
            if nic.network and nic.network not in connected:
                problems.append((inst.name, f"NIC {idx} is on network"
                                 f" {NetworkName(cfg, nic.network)}, which is not"
                                 f" connected to node group {group.name}"))
    return problems
