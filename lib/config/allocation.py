"""Handing out unique resources: MACs, IPs, LV names, UUIDs, DRBD minors,
secrets and TCP/UDP ports.

Values are reserved per execution context (``ec_id``, the job id) until the
job ends (DropECReservations); IP reservations are committed to their
network when the instance that uses them is added or updated with the same
``ec_id``. DRBD minors are allocated per disk and released once the disk is
in the configuration (or by ReleaseDRBDMinors).
"""

from __future__ import annotations

import logging
import random
import secrets
from collections.abc import Hashable, Iterable
from typing import Any

from ganeti import constants, errors, objects, utils
from ganeti import network as netpool
from ganeti.config.base import Locked
from ganeti.config.lookups import LookupsMixin
from ganeti.config.reservations import (
    IP_RESERVE, IpReservationManager, TemporaryReservationManager,
)
from ganeti.config.verify import ComputeDRBDMap, DrbdMap

__all__ = ["AllocationMixin"]


class AllocationMixin(LookupsMixin):
    """Reservation and allocation methods of the ConfigWriter."""

    def _InitReservations(self) -> None:
        self._temporary_ids = TemporaryReservationManager()
        self._temporary_macs = TemporaryReservationManager()
        self._temporary_lvs = TemporaryReservationManager()
        self._temporary_secrets = TemporaryReservationManager()
        self._temporary_ips = IpReservationManager()
        # (node UUID, minor) -> disk UUID, for minors not yet in the config
        self._temporary_drbds: dict[tuple[str, int], str] = {}
        # execution context -> disks it allocated minors for
        self._drbd_ec: dict[Hashable, set[str]] = {}

    # --- What the configuration already uses -------------------------------

    def _AllMACs(self) -> set[str]:
        return {nic.mac for inst in self._config_data.instances.values()
                for nic in inst.nics if nic.mac}

    def _UUIDInUse(self, uuid: str) -> bool:
        """Whether the configuration uses ``uuid`` (without building the set
        of all UUIDs, which costs milliseconds with thousands of instances)."""
        data = self._config_data
        if uuid == data.cluster.uuid:
            return True
        for kind in (data.nodes, data.nodegroups, data.instances,
                     data.networks, data.disks, data.filters):
            if uuid in kind:
                return True
        return any(nic.uuid == uuid for inst in data.instances.values()
                   for nic in inst.nics)

    def _AllUUIDs(self) -> set[str]:
        data = self._config_data
        result = {data.cluster.uuid}
        for kind in (data.nodes, data.nodegroups, data.instances,
                     data.networks, data.disks, data.filters):
            result.update(kind)
        for inst in data.instances.values():
            result.update(nic.uuid for nic in inst.nics if nic.uuid)
        return result

    def _AllLVs(self) -> set[str]:
        return {f"{disk.logical_id[0]}/{disk.logical_id[1]}"
                for disk in self._config_data.IterAllDisks()
                if disk.dev_type == constants.DT_PLAIN and disk.logical_id}

    def _AllDRBDSecrets(self) -> set[str]:
        return {disk.logical_id[5]
                for disk in self._config_data.IterAllDisks()
                if disk.dev_type == constants.DT_DRBD8 and disk.logical_id
                and len(disk.logical_id) == 6}

    def _EnsureUUID(self, obj: objects.ConfigObject,
                    ec_id: Hashable | None) -> None:
        """Give ``obj`` a fresh UUID, or check that the one it has is free.

        A UUID is taken when the configuration uses it, or when a job other
        than ``ec_id`` reserved it (not checked when ``ec_id`` is None: the
        caller adds an object its own job reserved the UUID for).
        """
        target: Any = obj
        if not target.uuid:
            reserved = self._temporary_ids.GetReserved()
            for _ in range(constants.MAX_GENERATE_ATTEMPTS):
                candidate = objects.GenerateUUID()
                if candidate not in reserved and not self._UUIDInUse(candidate):
                    target.uuid = candidate
                    return
            raise errors.ConfigurationError("Cannot generate a unique UUID")
        if self._UUIDInUse(target.uuid):
            raise errors.ConfigurationError(f"Duplicate UUID {target.uuid}")
        if ec_id is not None and self._temporary_ids.Reserved(target.uuid) \
                and target.uuid not in self._temporary_ids.GetECReserved(ec_id):
            raise errors.ConfigurationError(
                f"UUID {target.uuid} is reserved by another job")

    # --- UUIDs, MACs, LVs, secrets ------------------------------------------

    @Locked
    def GenerateUniqueID(self, ec_id: Hashable) -> str:
        """Return a new UUID, reserved for ``ec_id``."""
        return self._temporary_ids.Generate(self._AllUUIDs(),
                                            objects.GenerateUUID, ec_id)

    def _MACPrefix(self, net_uuid: str | None) -> str:
        if net_uuid:
            net = self._config_data.networks.get(net_uuid)
            if net is None:
                raise errors.ConfigurationError(f"Unknown network {net_uuid}")
            if net.mac_prefix:
                return net.mac_prefix
        return self._config_data.cluster.mac_prefix

    @Locked
    def GenerateMAC(self, net_uuid: str | None, ec_id: Hashable) -> str:
        """Return a new MAC (network's prefix or cluster's), reserved."""
        prefix = self._MACPrefix(net_uuid)

        def _One() -> str:
            tail = ":".join(f"{random.randrange(256):02x}" for _ in range(3))
            return f"{prefix}:{tail}"

        return self._temporary_macs.Generate(self._AllMACs(), _One, ec_id)

    @Locked
    def ReserveMAC(self, mac: str, ec_id: Hashable) -> None:
        """Reserve ``mac`` for ``ec_id``.

        ReservationError if an instance uses it or another job holds it.
        """
        if mac in self._AllMACs():
            raise errors.ReservationError(
                f"MAC address {mac} is already in use by an instance")
        self._temporary_macs.Reserve(ec_id, mac)

    @Locked
    def ReserveLV(self, lv_name: str, ec_id: Hashable) -> None:
        """Reserve a logical volume name ("vg/lv") for ``ec_id``."""
        if lv_name in self._AllLVs():
            raise errors.ReservationError(
                f"Logical volume {lv_name} is already in use")
        self._temporary_lvs.Reserve(ec_id, lv_name)

    @Locked
    def GenerateDRBDSecret(self, ec_id: Hashable) -> str:
        """Return a new DRBD shared secret, reserved for ``ec_id``."""
        return self._temporary_secrets.Generate(
            self._AllDRBDSecrets(),
            lambda: secrets.token_hex(constants.DRBD_SECRET_LENGTH // 2),
            ec_id)

    # --- IP addresses ------------------------------------------------------------

    def _Pool(self, net_uuid: str) -> netpool.AddressPool:
        net = self._config_data.networks.get(net_uuid)
        if net is None:
            raise errors.ConfigurationError(f"Unknown network {net_uuid}")
        return netpool.AddressPool(net)

    @Locked
    def GenerateIp(self, net_uuid: str, ec_id: Hashable) -> str:
        """Return a free address of a network, reserved for ``ec_id``."""
        pool = self._Pool(net_uuid)
        try:
            address = pool.GetFreeAddress(
                exclude=self._temporary_ips.GetReserved(net_uuid))
        except errors.AddressPoolError as err:
            raise errors.ReservationError(str(err)) from err
        self._temporary_ips.Reserve(ec_id, net_uuid, address)
        return address

    @Locked
    def ReserveIp(self, net_uuid: str, address: str, ec_id: Hashable,
                  check: bool = True) -> None:
        """Reserve ``address`` of a network for ``ec_id``.

        With ``check``, an address already reserved in the network is
        refused. Another job's pending reservation always is. Both raise
        ReservationError naming the address.
        """
        pool = self._Pool(net_uuid)
        try:
            reserved = pool.IsReserved(address)
        except errors.AddressPoolError as err:
            raise errors.ReservationError(str(err)) from err
        if check and reserved:
            raise errors.ReservationError(
                f"IP address {address} is already in use in network"
                f" {pool.net.name}")
        self._temporary_ips.Reserve(ec_id, net_uuid, address)

    @Locked
    def ReleaseIp(self, net_uuid: str, address: str, ec_id: Hashable) -> None:
        """Give ``address`` back to its network when ``ec_id`` commits."""
        if net_uuid:
            self._temporary_ips.Release(ec_id, net_uuid, address)

    def _CommitTemporaryIps(self, ec_id: Hashable) -> None:
        """Apply the IP changes of ``ec_id`` to the networks (unlocked)."""
        for action, net_uuid, address in self._temporary_ips.PopEC(ec_id):
            net = self._config_data.networks.get(net_uuid)
            if net is None:
                logging.warning("Network %s vanished; not committing %s",
                                net_uuid, address)
                continue
            try:
                pool = netpool.AddressPool(net)
                if action == IP_RESERVE:
                    pool.Reserve(address)
                else:
                    pool.Release(address)
            except errors.AddressPoolError as err:
                logging.warning("Cannot %s IP %s in network %s: %s", action,
                                address, net.name, err)
                continue
            net.BumpSerial()

    @Locked
    def DropECReservations(self, ec_id: Hashable) -> None:
        """Drop everything ``ec_id`` reserved (the job has ended)."""
        for manager in (self._temporary_ids, self._temporary_macs,
                        self._temporary_lvs, self._temporary_secrets,
                        self._temporary_ips):
            manager.DropECReservations(ec_id)
        for disk_uuid in self._drbd_ec.pop(ec_id, set()):
            self._UnlockedReleaseDRBDMinors(disk_uuid)

    # --- DRBD minors ---------------------------------------------------------------

    def _UnlockedComputeDRBDMap(self) -> tuple[
            DrbdMap, list[tuple[str, int, str, str]]]:
        extra = [(node, minor, disk)
                 for (node, minor), disk in self._temporary_drbds.items()]
        return ComputeDRBDMap(self._config_data, extra)

    @Locked
    def ComputeDRBDMap(self) -> DrbdMap:
        """Return {node UUID: {minor: disk UUID}}, pending minors included.

        Raises ConfigurationError when a minor is used twice.
        """
        used, duplicates = self._UnlockedComputeDRBDMap()
        if duplicates:
            raise errors.ConfigurationError(
                "Duplicate DRBD minors: " + ", ".join(
                    f"node {node} minor {minor} ({first}, {second})"
                    for node, minor, first, second in duplicates))
        return used

    @Locked
    def AllocateDRBDMinor(self, node_uuids: Iterable[str], disk_uuid: str,
                          ec_id: Hashable | None = None) -> list[int]:
        """Allocate one free minor per node (in order) for ``disk_uuid``.

        A node given twice gets two minors. The minors stay reserved until
        the disk enters the configuration or ReleaseDRBDMinors is called,
        or, when ``ec_id`` is given, until DropECReservations(ec_id).
        """
        used = self.ComputeDRBDMap()
        result = []
        for node_uuid in node_uuids:
            if node_uuid not in self._config_data.nodes:
                raise errors.ConfigurationError(f"Unknown node {node_uuid}")
            node_minors = used.setdefault(node_uuid, {})
            minor = utils.FirstFree(sorted(node_minors))
            if minor is None:
                minor = len(node_minors)
            if minor > constants.DRBD_MAX_MINOR:
                raise errors.ReservationError(
                    f"No free DRBD minor left on node {node_uuid}")
            node_minors[minor] = disk_uuid
            self._temporary_drbds[(node_uuid, minor)] = disk_uuid
            result.append(minor)
        if ec_id is not None:
            self._drbd_ec.setdefault(ec_id, set()).add(disk_uuid)
        return result

    def _UnlockedReleaseDRBDMinors(self, disk_uuid: str) -> None:
        for key in [key for key, disk in self._temporary_drbds.items()
                    if disk == disk_uuid]:
            del self._temporary_drbds[key]

    @Locked
    def ReleaseDRBDMinors(self, disk_uuid: str) -> None:
        """Release the pending minors of ``disk_uuid`` (e.g. on failure)."""
        self._UnlockedReleaseDRBDMinors(disk_uuid)

    # --- TCP/UDP ports --------------------------------------------------------------

    @Locked
    def AllocatePort(self) -> int:
        """Return a free cluster port (DRBD, VNC) and save the configuration.

        Ports given back to the pool are reused first; otherwise the port
        after the highest used one (from constants.FIRST_DRBD_PORT on).
        """
        cluster = self._config_data.cluster
        if cluster.tcpudp_port_pool:
            port = min(cluster.tcpudp_port_pool)
            cluster.tcpudp_port_pool.discard(port)
        else:
            port = max(cluster.highest_used_port,
                       constants.FIRST_DRBD_PORT - 1) + 1
            if port > constants.LAST_DRBD_PORT:
                raise errors.ConfigurationError(
                    f"The highest used port is {cluster.highest_used_port};"
                    f" no ports left up to {constants.LAST_DRBD_PORT}")
            cluster.highest_used_port = port
        cluster.BumpSerial()
        self._WriteConfig()
        return port

    @Locked
    def AddTcpUdpPort(self, port: int) -> None:
        """Give a port back to the cluster's pool and save (e.g. the port of
        a DRBD disk that never entered the configuration)."""
        self._ReleasePort(port)
        self._config_data.cluster.BumpSerial()
        self._WriteConfig()

    def _ReleasePort(self, port: int | None) -> None:
        """Give a port back to the cluster's pool (unlocked, unsaved)."""
        if port is not None:
            self._config_data.cluster.tcpudp_port_pool.add(port)
