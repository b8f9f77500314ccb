"""IPv4 address pools of networks.

A network's reservations are kept in its configuration object as two
strings of '0' and '1', one character per address of the network, as
Ganeti stores them: ``reservations`` for addresses given to instances,
``ext_reservations`` for addresses used outside Ganeti (the network and
broadcast addresses, the gateway, anything the administrator reserves).
:class:`AddressPool` reads them into bit arrays, changes them and writes
them back.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any

from bitarray import bitarray

from ganeti import constants, errors

__all__ = ["AddressPool"]


class AddressPool:
    """The address pool of one network object (objects.Network).

    Changes are written back to the object's reservation strings at once;
    saving the object is the caller's business.
    """

    def __init__(self, net: Any) -> None:
        self.net = net
        self.network = self.ParseNetwork(net.network)
        size = self.network.num_addresses
        self._reservations = self._Load(net.reservations, size,
                                        "reservations")
        self._ext_reservations = self._Load(net.ext_reservations, size,
                                            "ext_reservations")

    @staticmethod
    def ParseNetwork(text: Any) -> ipaddress.IPv4Network:
        """Parse and check a network address such as "192.0.2.0/24".

        Raises AddressPoolError for invalid, IPv6, too big or too small
        networks.
        """
        try:
            network = ipaddress.ip_network(str(text), strict=False)
        except ValueError as err:
            raise errors.AddressPoolError(
                f"Invalid network '{text}': {err}") from None
        if not isinstance(network, ipaddress.IPv4Network):
            raise errors.AddressPoolError(
                f"Network '{text}' is not an IPv4 network")
        host_bits = 32 - network.prefixlen
        if host_bits > constants.MAX_NET_SIZE_BITS:
            raise errors.AddressPoolError(
                f"Network '{text}' is too big: at most a"
                f" /{32 - constants.MAX_NET_SIZE_BITS} is allowed")
        if host_bits < constants.MIN_NET_SIZE_BITS:
            raise errors.AddressPoolError(
                f"Network '{text}' is too small: at least a"
                f" /{32 - constants.MIN_NET_SIZE_BITS} is needed")
        return network

    @staticmethod
    def _Load(text: str | None, size: int, what: str) -> bitarray:
        if text is None:
            bits = bitarray(size)
            bits.setall(0)
            return bits
        try:
            bits = bitarray(text)
        except ValueError:
            raise errors.AddressPoolError(
                f"Invalid {what} map (only '0' and '1' allowed)") from None
        if len(bits) != size:
            raise errors.AddressPoolError(
                f"The {what} map has {len(bits)} entries, the network"
                f" has {size} addresses")
        return bits

    def WriteBack(self) -> None:
        """Write the maps back into the network object's strings."""
        self.net.reservations = self._reservations.to01()
        self.net.ext_reservations = self._ext_reservations.to01()

    def _Index(self, address: str) -> int:
        try:
            addr = ipaddress.IPv4Address(address)
        except ValueError:
            raise errors.AddressPoolError(
                f"Invalid IPv4 address '{address}'") from None
        if addr not in self.network:
            raise errors.AddressPoolError(
                f"{address} is not in network {self.network}")
        return int(addr) - int(self.network.network_address)

    def _Address(self, index: int) -> str:
        return str(self.network.network_address + index)

    @classmethod
    def InitializeNetwork(cls, net: Any) -> AddressPool:
        """Create empty maps for ``net``, reserving the addresses Ganeti does.

        The network and broadcast addresses and the gateway (when set) are
        reserved externally.
        """
        net.reservations = None
        net.ext_reservations = None
        pool = cls(net)
        pool.Reserve(str(pool.network.network_address), external=True)
        pool.Reserve(str(pool.network.broadcast_address), external=True)
        if net.gateway:
            pool.Reserve(net.gateway, external=True)
        pool.WriteBack()
        return pool

    def Contains(self, address: str) -> bool:
        """Tell whether ``address`` belongs to the network."""
        try:
            self._Index(address)
        except errors.AddressPoolError:
            return False
        return True

    def IsReserved(self, address: str, external: bool | None = None) -> bool:
        """Tell whether ``address`` is reserved.

        ``external`` None asks about both maps, True only about external
        reservations, False only about instances'.
        """
        idx = self._Index(address)
        if external is None:
            return bool(self._reservations[idx]
                        or self._ext_reservations[idx])
        bits = self._ext_reservations if external else self._reservations
        return bool(bits[idx])

    def Reserve(self, address: str, external: bool = False) -> None:
        """Reserve ``address``; AddressPoolError if it already is."""
        idx = self._Index(address)
        if self._reservations[idx] or self._ext_reservations[idx]:
            raise errors.AddressPoolError(
                f"{address} is already reserved in network {self.network}")
        (self._ext_reservations if external else self._reservations)[idx] = 1
        self.WriteBack()

    def Release(self, address: str, external: bool = False) -> None:
        """Release ``address`` (nothing happens if it was free)."""
        idx = self._Index(address)
        (self._ext_reservations if external else self._reservations)[idx] = 0
        self.WriteBack()

    def GetFreeAddress(self, exclude: Iterable[str] = ()) -> str:
        """Return the first free address not in ``exclude``.

        Raises AddressPoolError when the network is full.
        """
        skip = {self._Index(addr) for addr in exclude if self.Contains(addr)}
        used = self._reservations | self._ext_reservations
        for idx in used.search(0):
            if idx not in skip:
                return self._Address(idx)
        raise errors.AddressPoolError(
            f"No free address left in network {self.network}")

    def GetReservedCount(self) -> int:
        """Return how many addresses are reserved (either way)."""
        return (self._reservations | self._ext_reservations).count(1)

    def GetFreeCount(self) -> int:
        """Return how many addresses are free."""
        return len(self._reservations) - self.GetReservedCount()

    def GetReservedAddresses(self, external: bool = False) -> list[str]:
        """Return the addresses reserved for instances (or externally)."""
        bits = self._ext_reservations if external else self._reservations
        return [self._Address(idx) for idx in bits.search(1)]

    def GetMap(self) -> str:
        """Return the map of the pool: 'X' reserved, '.' free."""
        used = self._reservations | self._ext_reservations
        return used.to01().replace("1", "X").replace("0", ".")
