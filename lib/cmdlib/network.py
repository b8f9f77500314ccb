"""Network LUs: add, remove, rename, change, connect to and disconnect from
node groups.

A network is an IPv4 range whose addresses Ganeti hands out to NICs (its
pool, :class:`ganeti.network.AddressPool`), with optional IPv6 range,
gateways and MAC prefix. Connecting it to a node group records the NIC
mode, link and VLAN the group's instances use for it
(``NodeGroup.networks``: network UUID -> nicparams).

Locking follows Ganeti: the Big Ganeti Lock is held shared; a network is
locked by UUID at the network level (exclusively when it changes), a
group exclusively while its connections change, and the group's instances
shared while their NICs are checked. Every check that can fail does so in
``CheckPrereq``, with the offending value in the message, so that a failed
opcode changes nothing.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable
from typing import Any

from ganeti import constants, errors, locking, objects, utils
from ganeti import network as netpool
from ganeti.cmdlib.base import FeedbackFn, Interruption, LogicalUnit

__all__ = [
    "LUNetworkAdd",
    "LUNetworkConnect",
    "LUNetworkDisconnect",
    "LUNetworkRemove",
    "LUNetworkRename",
    "LUNetworkSetParams",
    "NetworkHookEnv",
]

#: Ganeti's VLAN syntax: N or .N (untagged), :N[:M...] (tagged), .N:M[:K...]
_VLAN_RE = re.compile(r"(\.?\d+|\.\d+(:\d+)+|(:\d+)+)")


def _Inval(msg: str) -> errors.OpPrereqError:
    return errors.OpPrereqError(msg, errors.ECODE_INVAL)


def _State(msg: str) -> errors.OpPrereqError:
    return errors.OpPrereqError(msg, errors.ECODE_STATE)


def _IsNone(value: Any) -> bool:
    """Whether an optional parameter asks to remove the value ("none")."""
    return isinstance(value, str) and value.lower() == constants.VALUE_NONE


def NetworkHookEnv(net: objects.Network, prefix: str = "NETWORK_") -> dict[str, str]:
    """The hook environment describing ``net`` (Ganeti's NETWORK_* names).

    Unset values are empty strings; ``prefix`` lets NIC hooks reuse it
    (e.g. ``NIC_0_NETWORK_``).
    """
    return {
        f"{prefix}NAME": net.name or "",
        f"{prefix}UUID": net.uuid or "",
        f"{prefix}SUBNET": net.network or "",
        f"{prefix}GATEWAY": net.gateway or "",
        f"{prefix}SUBNET6": net.network6 or "",
        f"{prefix}GATEWAY6": net.gateway6 or "",
        f"{prefix}MAC_PREFIX": net.mac_prefix or "",
        f"{prefix}TAGS": " ".join(sorted(net.GetTags())),
    }


def _ParseSubnet(text: str) -> ipaddress.IPv4Network:
    try:
        return netpool.AddressPool.ParseNetwork(text)
    except errors.AddressPoolError as err:
        raise _Inval(str(err)) from None


def _CheckSubnet6(network6: str | None, gateway6: str | None) -> None:
    """The IPv6 gateway, when both are set, must lie in the IPv6 network."""
    if not network6 or not gateway6:
        return
    subnet = ipaddress.IPv6Network(network6, strict=False)
    if ipaddress.IPv6Address(gateway6) not in subnet:
        raise _Inval(f"IPv6 gateway '{gateway6}' is not in the IPv6 network"
                     f" '{network6}'")


def _CheckOverlap(cfg: Any, subnet: ipaddress.IPv4Network,
                  skip_uuid: str | None = None) -> None:
    """Refuse an IPv4 range overlapping another network's."""
    for net in cfg.GetAllNetworksInfo().values():
        if net.uuid == skip_uuid or not net.network:
            continue
        other = ipaddress.IPv4Network(net.network, strict=False)
        if subnet.overlaps(other):
            raise _Inval(f"Network '{subnet}' overlaps network '{net.name}'"
                         f" ({other})")


def _CheckVlan(vlan: str) -> None:
    if vlan and not _VLAN_RE.fullmatch(vlan):
        raise _Inval(f"Invalid VLAN '{vlan}': expected N or .N (untagged),"
                     " :N[:M...] (tagged) or .N:M[:K...] (both)")


def _GroupInstances(cfg: Any, group_uuid: str) -> list[objects.Instance]:
    """The instances with a node in the group, sorted by name."""
    nodes = cfg.GetAllNodesInfo()
    found = []
    for inst in cfg.GetAllInstancesInfo().values():
        if any(nodes[uuid].group == group_uuid
               for uuid in cfg.GetInstanceNodes(inst.uuid) if uuid in nodes):
            found.append(inst)
    return utils.NiceSort(found, key=lambda inst: inst.name)


def _NicUsers(instances: Iterable[objects.Instance],
              check_fn: Callable[[objects.NIC], bool]) -> list[str]:
    """``instance (nic/IDX: IP)`` for every NIC of ``instances`` matching."""
    found = []
    for inst in instances:
        nics = [f"nic/{idx}: {nic.ip or 'no IP'}"
                for idx, nic in enumerate(inst.nics or []) if check_fn(nic)]
        if nics:
            found.append(f"{inst.name} ({', '.join(nics)})")
    return found


class _NetworkLU(LogicalUnit):
    """Base of the network LUs: the network ``op.network_name``, hooks on
    the master node."""

    HTYPE = constants.HTYPE_NETWORK
    REQ_BGL = False
    cfg: Any
    network_uuid: str

    def _LookupNetwork(self) -> None:
        self.network_uuid = self.cfg.LookupNetwork(self.op.network_name)

    def _GetNetwork(self) -> objects.Network:
        net = self.cfg.GetNetwork(self.network_uuid)
        if net is None:  # pragma: no cover - its lock keeps it
            raise errors.OpPrereqError(f"Network '{self.op.network_name}' not found",
                                       errors.ECODE_NOENT)
        return net

    def BuildHooksEnv(self) -> dict[str, Any]:
        net = getattr(self, "network", None)
        if net is None:
            return {"NETWORK_NAME": self.op.network_name}
        return NetworkHookEnv(net)

    def BuildHooksNodes(self) -> tuple[list[str], list[str]]:
        master = self.cfg.GetMasterNode()
        return [master], [master]


# --- add / remove / rename ----------------------------------------------------------------

class LUNetworkAdd(_NetworkLU):
    """Create a network with its address pool.

    The network and broadcast addresses and the gateway are reserved
    externally, as are ``add_reserved_ips``; with ``conflicts_check`` the
    addresses of the nodes and of the master IP inside the range too.
    """

    HPATH = "network-add"

    @classmethod
    def Interrupted(cls, cfg: Any, op: Any) -> Interruption | None:
        """Done when the network is in the configuration (the prerequisites
        refused an existing name); nothing is left behind otherwise."""
        try:
            cfg.LookupNetwork(op.network_name)
        except errors.OpPrereqError:
            return Interruption(False, f"Network '{op.network_name}' was not added")
        return Interruption(True, f"Network '{op.network_name}' was added")

    def CheckArguments(self) -> None:
        """Check the addresses against each other (no configuration needed)."""
        op = self.op
        self.subnet = subnet = _ParseSubnet(op.network)
        if op.gateway and ipaddress.IPv4Address(op.gateway) not in subnet:
            raise _Inval(f"Gateway '{op.gateway}' is not in network '{subnet}'")
        for address in op.add_reserved_ips or []:
            if ipaddress.IPv4Address(address) not in subnet:
                raise _Inval(f"Reserved IP address '{address}' is not in network"
                             f" '{subnet}'")
        _CheckSubnet6(op.network6, op.gateway6)
        self.mac_prefix = None
        if op.mac_prefix:
            self.mac_prefix = utils.NormalizeAndValidateThreeOctetMacPrefix(op.mac_prefix)
        for tag in op.tags or []:
            try:
                objects.TaggableObject.ValidateTag(tag)
            except errors.TagError as err:
                raise _Inval(f"Invalid tag '{tag}': {err}") from None

    def ExpandNames(self) -> None:
        """Reserve the new network's UUID and create its lock."""
        ec_id = self.proc.GetECId() if self.proc is not None else None
        self.network_uuid = self.cfg.GenerateUniqueID(ec_id)
        self.needed_locks = {}
        if self.op.conflicts_check:
            # The nodes' addresses are read to reserve them
            self.needed_locks[locking.LEVEL_NODE] = locking.ALL_SET
            self.share_locks[locking.LEVEL_NODE] = 1
        self.add_locks[locking.LEVEL_NETWORK] = [self.network_uuid]

    def CheckPrereq(self) -> None:
        """The name must be free, the range not overlap another network's;
        build the pool."""
        op, cfg = self.op, self.cfg
        try:
            existing = cfg.LookupNetwork(op.network_name)
        except errors.OpPrereqError:
            pass
        else:
            raise errors.OpPrereqError(
                f"Desired network name '{op.network_name}' already exists as a"
                f" network (UUID: {existing})", errors.ECODE_EXISTS)
        _CheckOverlap(cfg, self.subnet)
        net = objects.Network(
            name=op.network_name, network=str(self.subnet), gateway=op.gateway,
            network6=op.network6, gateway6=op.gateway6, mac_prefix=self.mac_prefix,
            uuid=self.network_uuid, tags=set(op.tags or []))
        try:
            pool = netpool.AddressPool.InitializeNetwork(net)
        except errors.AddressPoolError as err:
            # a gateway that is the network or broadcast address
            raise _Inval(f"Invalid gateway '{op.gateway}' for network"
                         f" '{self.subnet}': {err}") from None
        for address in dict.fromkeys(op.add_reserved_ips or []):
            if pool.IsReserved(address):
                raise _State(f"IP address '{address}' is already reserved in network"
                             f" '{op.network_name}' (network address, broadcast"
                             " address or gateway)")
            pool.Reserve(address, external=True)
        if op.conflicts_check:
            self._ReserveClusterAddresses(pool)
        self.network = net

    def _ReserveClusterAddresses(self, pool: netpool.AddressPool) -> None:
        """Reserve the nodes' and the master's addresses that fall in the
        range, so that no instance gets them."""
        cfg = self.cfg
        found: list[tuple[str, str]] = []
        for node in cfg.GetAllNodesInfo().values():
            for address in dict.fromkeys([node.primary_ip, node.secondary_ip]):
                if address:
                    found.append((address, f"node '{node.name}'"))
        master_ip = cfg.GetMasterIP()
        if master_ip:
            found.append((master_ip, "the cluster's master IP"))
        for address, owner in found:
            if pool.Contains(address) and not pool.IsReserved(address):
                pool.Reserve(address, external=True)
                self.LogInfo(f"Reserved IP address of {owner} ({address})")

    def Exec(self, feedback_fn: FeedbackFn) -> None:
        """Add the network (its lock was added by the processor)."""
        ec_id = self.proc.GetECId() if self.proc is not None else None
        self.cfg.AddNetwork(self.network, ec_id)
        return None


class LUNetworkRemove(_NetworkLU):
    """Remove a network no node group is connected to and no NIC uses."""

    HPATH = "network-remove"

    @classmethod
    def Interrupted(cls, cfg: Any, op: Any) -> Interruption | None:
        """Done when the network is gone; untouched otherwise."""
        try:
            cfg.LookupNetwork(op.network_name)
        except errors.OpPrereqError:
            return Interruption(True, f"Network '{op.network_name}' was removed")
        return Interruption(False, f"Network '{op.network_name}' was not removed")

    def ExpandNames(self) -> None:
        """Lock the network, and the groups (shared) to see connections."""
        self._LookupNetwork()
        self.needed_locks = {locking.LEVEL_NETWORK: [self.network_uuid],
                             locking.LEVEL_NODEGROUP: locking.ALL_SET}
        self.share_locks[locking.LEVEL_NODEGROUP] = 1

    def CheckPrereq(self) -> None:
        """Refuse while a group is connected or a NIC uses the network."""
        cfg, uuid = self.cfg, self.network_uuid
        self.network = net = self._GetNetwork()
        groups = [group.name for group in cfg.GetAllNodeGroupsInfo().values()
                  if uuid in (group.networks or {})]
        if groups:
            raise _State(f"Network '{net.name}' is connected to the following node"
                         f" groups: {', '.join(utils.NiceSort(groups))}; disconnect"
                         " it first")
        users = _NicUsers(utils.NiceSort(cfg.GetAllInstancesInfo().values(),
                                         key=lambda inst: inst.name),
                          lambda nic: nic.network == uuid)
        if users:
            raise _State(f"Network '{net.name}' is used by the NICs of these"
                         f" instances: {'; '.join(users)}")
        self.remove_locks[locking.LEVEL_NETWORK] = [uuid]

    def Exec(self, feedback_fn: FeedbackFn) -> None:
        """Remove the network (its lock goes after Exec)."""
        try:
            self.cfg.RemoveNetwork(self.network_uuid)
        except errors.ConfigurationError as err:
            raise errors.OpExecError(f"Network '{self.network.name}' disappeared:"
                                     f" {err}") from err
        return None


class LUNetworkRename(_NetworkLU):
    """Rename a network; returns the new name."""

    HPATH = "network-rename"

    def ExpandNames(self) -> None:
        """Lock the network (locks are by UUID: the name is free to change)."""
        self._LookupNetwork()
        self.needed_locks = {locking.LEVEL_NETWORK: [self.network_uuid]}

    def CheckPrereq(self) -> None:
        """The new name must be free."""
        self.network = self._GetNetwork()
        new_name = self.op.new_name
        try:
            other = self.cfg.LookupNetwork(new_name)
        except errors.OpPrereqError:
            return
        if other != self.network_uuid:
            raise errors.OpPrereqError(
                f"Desired new name '{new_name}' clashes with existing network"
                f" (UUID: {other})", errors.ECODE_EXISTS)

    def BuildHooksEnv(self) -> dict[str, Any]:
        env = super().BuildHooksEnv()
        env["NETWORK_NEW_NAME"] = self.op.new_name
        return env

    def Exec(self, feedback_fn: FeedbackFn) -> str:
        """Store the new name."""
        net = self.network
        if net.name != self.op.new_name:
            net.name = self.op.new_name
            self.cfg.Update(net, feedback_fn)
        return str(self.op.new_name)


# --- modify ---------------------------------------------------------------------------------

class LUNetworkSetParams(_NetworkLU):
    """Change a network's gateways, IPv6 range, MAC prefix and external
    reservations (the IPv4 range cannot change)."""

    HPATH = "network-modify"

    def CheckArguments(self) -> None:
        """At least one change; no address both added and removed."""
        op = self.op
        if all(value is None for value in (op.gateway, op.network6, op.gateway6,
                                           op.mac_prefix, op.add_reserved_ips,
                                           op.remove_reserved_ips)):
            raise _Inval("Please pass at least one modification")
        both = sorted(set(op.add_reserved_ips or []) & set(op.remove_reserved_ips or []))
        if both:
            raise _Inval(f"IP address(es) both reserved and released: {', '.join(both)}")

    def ExpandNames(self) -> None:
        """Lock the network."""
        self._LookupNetwork()
        self.needed_locks = {locking.LEVEL_NETWORK: [self.network_uuid]}

    def CheckPrereq(self) -> None:
        """Compute the new values and apply them to a copy of the pool."""
        op = self.op
        self.network = net = self._GetNetwork()
        self.pool = pool = netpool.AddressPool(net)
        subnet = pool.network
        name = net.name

        def _InRange(address: str, what: str) -> None:
            if not pool.Contains(address):
                raise _Inval(f"{what} '{address}' is not in network '{name}'"
                             f" ({subnet})")

        self.changes: list[list[Any]] = []
        new_gateway = net.gateway
        if op.gateway is not None:
            new_gateway = None if _IsNone(op.gateway) else op.gateway
        if new_gateway != net.gateway:
            if new_gateway is not None:
                _InRange(new_gateway, "Gateway")
                if pool.IsReserved(new_gateway):
                    raise _State(f"Gateway IP address '{new_gateway}' is already"
                                 f" reserved in network '{name}'")
            if net.gateway:
                pool.Release(net.gateway, external=True)
            if new_gateway is not None:
                pool.Reserve(new_gateway, external=True)
            self.changes.append(["gateway", new_gateway])
        elif op.gateway is not None:
            self.LogWarning(f"Gateway is already {new_gateway}")

        fixed = {str(subnet.network_address): "network address",
                 str(subnet.broadcast_address): "broadcast address"}
        if new_gateway:
            fixed[new_gateway] = "gateway"
        for address in dict.fromkeys(op.remove_reserved_ips or []):
            _InRange(address, "IP address to release")
            if address in fixed:
                raise _State(f"IP address '{address}' is the {fixed[address]} of"
                             f" network '{name}' and stays reserved")
            if not pool.IsReserved(address, external=True):
                if pool.IsReserved(address, external=False):
                    raise _State(f"IP address '{address}' of network '{name}' is"
                                 " used by an instance, not reserved externally")
                raise _State(f"IP address '{address}' is not reserved in network"
                             f" '{name}'")
            pool.Release(address, external=True)
        for address in dict.fromkeys(op.add_reserved_ips or []):
            _InRange(address, "IP address to reserve")
            if pool.IsReserved(address):
                raise _State(f"IP address '{address}' is already in use in network"
                             f" '{name}'")
            pool.Reserve(address, external=True)
        if op.add_reserved_ips:
            self.changes.append(["add_reserved_ips", list(op.add_reserved_ips)])
        if op.remove_reserved_ips:
            self.changes.append(["remove_reserved_ips", list(op.remove_reserved_ips)])

        self.new_network6 = net.network6
        if op.network6 is not None:
            self.new_network6 = None if _IsNone(op.network6) else op.network6
        self.new_gateway6 = net.gateway6
        if op.gateway6 is not None:
            self.new_gateway6 = None if _IsNone(op.gateway6) else op.gateway6
        _CheckSubnet6(self.new_network6, self.new_gateway6)
        self.new_gateway = new_gateway
        self.new_mac_prefix = net.mac_prefix
        if op.mac_prefix is not None:
            self.new_mac_prefix = None if _IsNone(op.mac_prefix) else \
                utils.NormalizeAndValidateThreeOctetMacPrefix(op.mac_prefix)
        for key in ("network6", "gateway6", "mac_prefix"):
            if getattr(op, key) is not None:
                self.changes.append([key, getattr(self, f"new_{key}")])

    def Exec(self, feedback_fn: FeedbackFn) -> None:
        """Store the changed network (the pool changed its maps already)."""
        net = self.network
        net.gateway = self.new_gateway
        net.network6 = self.new_network6
        net.gateway6 = self.new_gateway6
        net.mac_prefix = self.new_mac_prefix
        self.pool.WriteBack()
        self.cfg.Update(net, feedback_fn)
        return None


# --- connect / disconnect -----------------------------------------------------------------

class _GroupConnectionLU(_NetworkLU):
    """Common part of connect and disconnect: the group (exclusive), the
    network (shared) and, when NICs are checked, the group's instances
    (shared)."""

    check_instances = True

    def ExpandNames(self) -> None:
        self._LookupNetwork()
        self.group_uuid = self.cfg.LookupNodeGroup(self.op.group_name)
        self.needed_locks = {
            locking.LEVEL_INSTANCE: [],
            locking.LEVEL_NODEGROUP: [self.group_uuid],
            locking.LEVEL_NETWORK: [self.network_uuid],
        }
        self.share_locks[locking.LEVEL_INSTANCE] = 1
        self.share_locks[locking.LEVEL_NETWORK] = 1

    def DeclareLocks(self, level: int) -> None:
        """Lock the group's instances (checked again under the group lock)."""
        if level == locking.LEVEL_INSTANCE and self.check_instances:
            assert self.needed_locks is not None
            self.needed_locks[level] = [
                inst.name for inst in _GroupInstances(self.cfg, self.group_uuid)]

    def _CheckGroup(self) -> list[objects.Instance]:
        """Set ``group`` and ``network``; the group's instances, which must be
        those locked."""
        self.group = group = self.cfg.GetNodeGroup(self.group_uuid)
        if group is None:  # pragma: no cover - its lock keeps it
            raise errors.OpPrereqError(f"Node group '{self.op.group_name}' not found",
                                       errors.ECODE_NOENT)
        self.network = self._GetNetwork()
        if not self.check_instances:
            return []
        instances = _GroupInstances(self.cfg, self.group_uuid)
        locked = set(self.needed_locks.get(locking.LEVEL_INSTANCE) or []) \
            if self.needed_locks else set()
        changed = sorted({inst.name for inst in instances} - locked)
        if changed:
            raise errors.OpPrereqError(
                f"Instances in node group '{group.name}' changed since the locks were"
                f" acquired ({', '.join(changed)}); retry the operation",
                errors.ECODE_STATE)
        return instances

    def BuildHooksEnv(self) -> dict[str, Any]:
        env = super().BuildHooksEnv()
        env["GROUP_NAME"] = self.op.group_name
        return env


class LUNetworkConnect(_GroupConnectionLU):
    """Connect a network to a node group with a NIC mode, link and VLAN.

    With ``conflicts_check``, refused while instances of the group have
    NICs (not on this network) whose address lies in its range. Connecting
    again with the same parameters does nothing (a warning, as Ganeti);
    with other parameters it is refused: disconnect first.
    """

    HPATH = "network-connect"

    def CheckArguments(self) -> None:
        """Check the NIC parameters."""
        op = self.op
        self.check_instances = bool(op.conflicts_check)
        self.netparams = {constants.NIC_MODE: op.network_mode,
                          constants.NIC_LINK: op.network_link,
                          constants.NIC_VLAN: op.network_vlan or ""}
        try:
            objects.NIC.CheckParameterSyntax(self.netparams)
        except errors.ConfigurationError as err:
            raise _Inval(f"Invalid NIC parameters: {err}") from None
        _CheckVlan(self.netparams[constants.NIC_VLAN])

    def CheckPrereq(self) -> None:
        """Already connected? Conflicting addresses in the group?"""
        instances = self._CheckGroup()
        group, net = self.group, self.network
        self.connected = False
        current = (group.networks or {}).get(self.network_uuid)
        if current is not None:
            if dict(current) == self.netparams:
                self.LogWarning(f"Network '{net.name}' is already connected to group"
                                f" '{group.name}' with these parameters")
                self.connected = True
                return
            raise _State(
                f"Network '{net.name}' is already connected to group '{group.name}'"
                f" (mode {current.get(constants.NIC_MODE)}, link"
                f" {current.get(constants.NIC_LINK)}, vlan"
                f" '{current.get(constants.NIC_VLAN) or ''}'); disconnect it first")
        if self.op.conflicts_check:
            pool = netpool.AddressPool(net)
            users = _NicUsers(instances, lambda nic: bool(
                nic.ip and nic.network != net.uuid and pool.Contains(nic.ip)))
            if users:
                raise _State(
                    f"Conflicting IP addresses found: addresses of network"
                    f" '{net.name}' ({net.network}), which is about to be connected to"
                    f" node group '{group.name}', are in use: {'; '.join(users)};"
                    " remove or change these NICs, or pass --no-conflicts-check")

    def BuildHooksEnv(self) -> dict[str, Any]:
        env = super().BuildHooksEnv()
        env["GROUP_NETWORK_MODE"] = self.op.network_mode
        env["GROUP_NETWORK_LINK"] = self.op.network_link
        env["GROUP_NETWORK_VLAN"] = self.op.network_vlan or ""
        return env

    def Exec(self, feedback_fn: FeedbackFn) -> None:
        """Record the connection in the group."""
        if self.connected:
            return None
        group = self.group
        networks = dict(group.networks or {})
        networks[self.network_uuid] = dict(self.netparams)
        group.networks = networks
        self.cfg.Update(group, feedback_fn)
        return None


class LUNetworkDisconnect(_GroupConnectionLU):
    """Disconnect a network from a node group; refused while instances of
    the group have NICs on it. Disconnecting a network that is not
    connected does nothing (a warning, as Ganeti)."""

    HPATH = "network-disconnect"

    def CheckPrereq(self) -> None:
        """Connected? Still used by NICs in the group?"""
        instances = self._CheckGroup()
        group, net = self.group, self.network
        self.connected = self.network_uuid in (group.networks or {})
        if not self.connected:
            self.LogWarning(f"Network '{net.name}' is not connected to group"
                            f" '{group.name}'")
            return
        users = _NicUsers(instances, lambda nic: nic.network == self.network_uuid)
        if users:
            raise _State(f"Network '{net.name}' is still used in node group"
                         f" '{group.name}' by the NICs of: {'; '.join(users)}")

    def Exec(self, feedback_fn: FeedbackFn) -> None:
        """Drop the connection from the group."""
        if not self.connected:
            return None
        group = self.group
        networks = dict(group.networks or {})
        networks.pop(self.network_uuid, None)
        group.networks = networks
        self.cfg.Update(group, feedback_fn)
        return None
