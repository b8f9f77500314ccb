"""Networks: IP ranges whose addresses Ganeti hands out to NICs."""

from __future__ import annotations

from ganeti import network as netpool
from ganeti.objects.base import TaggableObject

__all__ = ["Network"]


class Network(TaggableObject):
    """An IPv4 network with an address pool.

    ``reservations`` and ``ext_reservations`` are strings of '0'/'1', one
    per address of ``network`` (see ganeti.network.AddressPool).
    """

    name: str
    serial_no: int
    mac_prefix: str | None
    network: str
    network6: str | None
    gateway: str | None
    gateway6: str | None
    reservations: str
    ext_reservations: str
    ctime: float
    mtime: float
    uuid: str

    def UpgradeConfig(self) -> None:
        """Fill the common fields and, when missing, the address maps."""
        super().UpgradeConfig()
        if self.network and (self.reservations is None
                             or self.ext_reservations is None):
            if self.reservations is None and self.ext_reservations is None:
                netpool.AddressPool.InitializeNetwork(self)
            else:
                netpool.AddressPool(self).WriteBack()
        self._UpgradeCommon()
