"""Temporary reservations of resources, per execution context (job).

A job that will add an instance first reserves what it needs (MACs, IPs,
LV names, UUIDs, DRBD secrets) under its execution context id, so that
jobs running at the same time never pick the same value. The reservations
vanish when the job ends (ConfigWriter.DropECReservations) or, for IPs,
are committed to the network when the instance enters the configuration.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Hashable
from typing import Any

from ganeti import constants, errors

__all__ = ["TemporaryReservationManager", "IpReservationManager",
           "IP_RESERVE", "IP_RELEASE"]

IP_RESERVE = "reserve"
IP_RELEASE = "release"


class TemporaryReservationManager:
    """Values reserved by execution contexts; each value at most once."""

    def __init__(self) -> None:
        self._ec_reserved: dict[Hashable, set[Any]] = {}

    def Reserved(self, resource: Any) -> bool:
        """Tell whether any execution context holds ``resource``."""
        return any(resource in held for held in self._ec_reserved.values())

    def Reserve(self, ec_id: Hashable, resource: Any) -> None:
        """Reserve ``resource`` for ``ec_id``.

        Raises ReservationError, naming the value, when it is reserved
        already (by this or another execution context).
        """
        if self.Reserved(resource):
            raise errors.ReservationError(
                f"Duplicate reservation for resource '{resource}'")
        self._ec_reserved.setdefault(ec_id, set()).add(resource)

    def DropECReservations(self, ec_id: Hashable) -> None:
        """Forget everything ``ec_id`` reserved."""
        self._ec_reserved.pop(ec_id, None)

    def GetReserved(self) -> set[Any]:
        """Return every value reserved by any execution context."""
        result: set[Any] = set()
        for held in self._ec_reserved.values():
            result.update(held)
        return result

    def GetECReserved(self, ec_id: Hashable) -> set[Any]:
        """Return the values reserved by ``ec_id``."""
        return set(self._ec_reserved.get(ec_id, set()))

    def Generate(self, existing: Collection[Any],
                 generate_one: Callable[[], Any], ec_id: Hashable) -> Any:
        """Generate a value neither in ``existing`` nor reserved; reserve it.

        Raises ReservationError after constants.MAX_GENERATE_ATTEMPTS tries.
        """
        for _ in range(constants.MAX_GENERATE_ATTEMPTS):
            value = generate_one()
            if value is not None and value not in existing \
                    and not self.Reserved(value):
                self.Reserve(ec_id, value)
                return value
        raise errors.ReservationError(
            f"Cannot generate a unique value after"
            f" {constants.MAX_GENERATE_ATTEMPTS} attempts")


class IpReservationManager:
    """Pending reservations and releases of IP addresses in networks.

    Each pending change is (action, network UUID, address). Two execution
    contexts may not both reserve one address; releases never conflict.
    """

    def __init__(self) -> None:
        self._ec_actions: dict[Hashable, dict[tuple[str, str], str]] = {}

    def _ReservedBy(self, net_uuid: str, address: str) -> Hashable | None:
        for ec_id, actions in self._ec_actions.items():
            if actions.get((net_uuid, address)) == IP_RESERVE:
                return ec_id
        return None

    def IsReserved(self, net_uuid: str, address: str) -> bool:
        """Tell whether some execution context is about to take ``address``."""
        return self._ReservedBy(net_uuid, address) is not None

    def Reserve(self, ec_id: Hashable, net_uuid: str, address: str) -> None:
        """Note that ``ec_id`` takes ``address``; ReservationError if taken."""
        if self._ReservedBy(net_uuid, address) is not None:
            raise errors.ReservationError(
                f"IP address {address} is already reserved by another job")
        self._ec_actions.setdefault(ec_id, {})[(net_uuid, address)] = \
            IP_RESERVE

    def Release(self, ec_id: Hashable, net_uuid: str, address: str) -> None:
        """Note that ``ec_id`` gives ``address`` back.

        Releasing an address the same context reserved just cancels the
        reservation.
        """
        actions = self._ec_actions.setdefault(ec_id, {})
        if actions.get((net_uuid, address)) == IP_RESERVE:
            del actions[(net_uuid, address)]
        else:
            actions[(net_uuid, address)] = IP_RELEASE

    def GetReserved(self, net_uuid: str) -> set[str]:
        """Return the addresses of a network that jobs are about to take."""
        return {address for actions in self._ec_actions.values()
                for (net, address), action in actions.items()
                if net == net_uuid and action == IP_RESERVE}

    def PopEC(self, ec_id: Hashable) -> list[tuple[str, str, str]]:
        """Remove and return the pending (action, net_uuid, address)."""
        actions = self._ec_actions.pop(ec_id, {})
        return [(action, net, address)
                for (net, address), action in sorted(actions.items())]

    def DropECReservations(self, ec_id: Hashable) -> None:
        """Forget the pending changes of ``ec_id``."""
        self._ec_actions.pop(ec_id, None)
