"""The "network" query resource: networks, with Ganeti's fields.

Items are ``objects.Network`` copies from the configuration. The pool
fields (``free_count``, ``reserved_count``, ``map``,
``external_reservations``) read the network's address maps;
``group_list`` gives ``[group, mode, link, vlan]`` per connected node
group, ``inst_list`` the instances with a NIC on the network. Unset
optional values (gateway, IPv6 network, MAC prefix, ...) are unavailable,
which RAPI shows as null and ``gnt-network list`` as "-".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ganeti import constants, errors, utils
from ganeti import network as netpool
from ganeti.constants import QFT_NUMBER, QFT_OTHER, QFT_TEXT, QFT_TIMESTAMP
from ganeti.query.engine import FieldQuery, RegisterResource, Resource
from ganeti.query.fields import UNAVAIL, FieldDefinition, FieldTable

NETQ_GROUP = "group"
NETQ_INST = "inst"


@dataclass
class NetworkQueryData:
    """What the getters share: connections and users per network UUID, and
    the address pools read so far."""

    groups: dict[str, list[list[str]]] = field(default_factory=dict)
    instances: dict[str, list[str]] = field(default_factory=dict)
    pools: dict[str, netpool.AddressPool] = field(default_factory=dict)

    def Pool(self, net: Any) -> netpool.AddressPool:
        """The (cached) address pool of ``net``."""
        pool = self.pools.get(net.uuid)
        if pool is None:
            pool = self.pools[net.uuid] = netpool.AddressPool(net)
        return pool


def _Def(name: str, title: str, kind: str, doc: str, getter: Any,
         data: Any = None) -> FieldDefinition:
    return FieldDefinition(name, title, kind, doc, getter, data=data)


def _Maybe(attr: str) -> Any:
    def getter(ctx: NetworkQueryData, net: Any) -> Any:
        value = getattr(net, attr, None)
        return UNAVAIL if value is None else value
    return getter


def _PoolValue(fn: Any) -> Any:
    def getter(ctx: NetworkQueryData, net: Any) -> Any:
        try:
            return fn(ctx.Pool(net))
        except errors.AddressPoolError:
            return UNAVAIL
    return getter


#: The network fields (Ganeti's names, titles and kinds)
NETWORK_FIELDS = FieldTable(constants.QR_NETWORK, [
    _Def("name", "Network", QFT_TEXT, "Name", lambda ctx, net: net.name),
    _Def("network", "Subnet", QFT_TEXT, "IPv4 subnet", lambda ctx, net: net.network),
    _Def("gateway", "Gateway", QFT_OTHER, "IPv4 gateway", _Maybe("gateway")),
    _Def("network6", "IPv6Subnet", QFT_OTHER, "IPv6 subnet", _Maybe("network6")),
    _Def("gateway6", "IPv6Gateway", QFT_OTHER, "IPv6 gateway", _Maybe("gateway6")),
    _Def("mac_prefix", "MacPrefix", QFT_OTHER, "MAC address prefix",
         _Maybe("mac_prefix")),
    _Def("free_count", "FreeCount", QFT_NUMBER, "Number of available addresses",
         _PoolValue(lambda pool: pool.GetFreeCount())),
    _Def("reserved_count", "ReservedCount", QFT_NUMBER,
         "Number of reserved addresses",
         _PoolValue(lambda pool: pool.GetReservedCount())),
    _Def("map", "Map", QFT_TEXT, "Actual mapping",
         _PoolValue(lambda pool: pool.GetMap())),
    _Def("external_reservations", "ExternalReservations", QFT_TEXT,
         "External reservations",
         _PoolValue(lambda pool: ", ".join(pool.GetReservedAddresses(external=True)))),
    _Def("group_list", "GroupList", QFT_OTHER,
         "List of nodegroups (group name, NIC mode, NIC link, NIC VLAN)",
         lambda ctx, net: ctx.groups.get(net.uuid, []), data=NETQ_GROUP),
    _Def("group_cnt", "NodeGroups", QFT_NUMBER, "Number of nodegroups",
         lambda ctx, net: len(ctx.groups.get(net.uuid, [])), data=NETQ_GROUP),
    _Def("inst_list", "InstanceList", QFT_OTHER, "List of instances",
         lambda ctx, net: ctx.instances.get(net.uuid, []), data=NETQ_INST),
    _Def("inst_cnt", "Instances", QFT_NUMBER, "Number of instances",
         lambda ctx, net: len(ctx.instances.get(net.uuid, [])), data=NETQ_INST),
    _Def("ctime", "CTime", QFT_TIMESTAMP, "Creation timestamp",
         lambda ctx, net: net.ctime if net.ctime is not None else UNAVAIL),
    _Def("mtime", "MTime", QFT_TIMESTAMP, "Modification timestamp",
         lambda ctx, net: net.mtime if net.mtime is not None else UNAVAIL),
    _Def("uuid", "UUID", QFT_TEXT, "Network UUID", lambda ctx, net: net.uuid),
    _Def("serial_no", "SerialNo", QFT_NUMBER, "Network object serial number,"
         " incremented on each modification", lambda ctx, net: net.serial_no),
    _Def("tags", "Tags", QFT_OTHER, "Tags", lambda ctx, net: sorted(net.tags or [])),
])


def _CollectNetworks(query: FieldQuery, context: Any
                     ) -> tuple[NetworkQueryData, list[Any]]:
    cfg = context.cfg
    networks = list(cfg.GetAllNetworksInfo().values())
    names = query.RequestedNames()
    if names is not None:
        known = {net.name for net in networks} | {net.uuid for net in networks}
        missing = [str(name) for name in names if name not in known]
        if missing:
            raise errors.OpPrereqError(
                f"Some networks do not exist: {', '.join(missing)}",
                errors.ECODE_NOENT)
    requested = query.RequestedData()
    ctx = NetworkQueryData()
    if NETQ_GROUP in requested:
        groups = utils.NiceSort(cfg.GetAllNodeGroupsInfo().values(),
                                key=lambda group: group.name)
        for group in groups:
            for net_uuid, params in (group.networks or {}).items():
                ctx.groups.setdefault(net_uuid, []).append([
                    group.name, params.get(constants.NIC_MODE, ""),
                    params.get(constants.NIC_LINK, ""),
                    params.get(constants.NIC_VLAN) or ""])
    if NETQ_INST in requested:
        for inst in cfg.GetAllInstancesInfo().values():
            for net_uuid in dict.fromkeys(nic.network for nic in inst.nics or []
                                          if nic.network):
                ctx.instances.setdefault(net_uuid, []).append(inst.name)
        for net_uuid, inst_names in ctx.instances.items():
            ctx.instances[net_uuid] = utils.NiceSort(inst_names)
    return ctx, networks


NETWORK_RESOURCE = RegisterResource(Resource(
    name=constants.QR_NETWORK, fields=NETWORK_FIELDS, collect=_CollectNetworks,
    namefield="name", sort_key=lambda net: utils.NiceSortKey(net.name)))
