"""Nodes and node groups."""

from __future__ import annotations

from typing import Any, ClassVar

from ganeti import constants
from ganeti.objects.base import FillDict, TaggableObject

__all__ = ["Node", "NodeGroup"]


class Node(TaggableObject):
    """A physical (or virtual-cluster) node.

    ``group`` is the UUID of the node's group; ``ndparams`` holds only what
    the node overrides.

    Departure from Ganeti (seed 004, per-node IP/port support): so that
    several nodes can share one machine, a node may name the address its
    daemons listen on (``noded_address``, default: ``primary_ip``) and the
    ports of its node daemon and confd (``noded_port``, ``confd_port``,
    default: the cluster-wide ports). None means "the default" and is left
    out of the dict form, so a configuration without these fields is exactly
    Ganeti's, and Ganeti's configurations load unchanged.
    """

    name: str
    primary_ip: str
    secondary_ip: str
    serial_no: int
    master_candidate: bool
    offline: bool
    drained: bool
    group: str
    master_capable: bool
    vm_capable: bool
    ndparams: dict[str, Any]
    powered: bool
    hv_state: dict[str, Any] | None
    hv_state_static: dict[str, Any]
    disk_state: dict[str, Any] | None
    disk_state_static: dict[str, Any]
    noded_address: str | None
    noded_port: int | None
    confd_port: int | None
    ctime: float
    mtime: float
    uuid: str

    def GetNodedEndpoint(self) -> tuple[str, int]:
        """Return (address, port) where this node's daemon listens."""
        return (self.noded_address or self.primary_ip,
                self.noded_port or constants.DEFAULT_NODED_PORT)

    def GetConfdEndpoint(self) -> tuple[str, int]:
        """Return (address, port) where this node's confd listens."""
        return (self.noded_address or self.primary_ip,
                self.confd_port or constants.DEFAULT_CONFD_PORT)

    def HasCustomEndpoints(self) -> bool:
        """Tell whether the node sets its own daemon address or ports."""
        return (self.noded_address is not None or self.noded_port is not None
                or self.confd_port is not None)

    def UpgradeConfig(self) -> None:
        """Fill the flags, ndparams and the common fields."""
        super().UpgradeConfig()
        for flag, default in (("master_capable", True), ("vm_capable", True),
                              ("powered", True), ("master_candidate", False),
                              ("offline", False), ("drained", False)):
            if getattr(self, flag) is None:
                setattr(self, flag, default)
        if self.secondary_ip is None:
            self.secondary_ip = self.primary_ip
        if self.ndparams is None:
            self.ndparams = {}
        if self.hv_state_static is None:
            self.hv_state_static = {}
        if self.disk_state_static is None:
            self.disk_state_static = {}
        self._UpgradeCommon()


class NodeGroup(TaggableObject):
    """A group of nodes sharing parameters and an instance policy.

    ``members`` (node UUIDs) is computed when the configuration is loaded
    and never written, as in Ganeti. ``networks`` maps the UUIDs of the
    networks connected to the group to their NIC parameters there.
    """

    name: str
    members: list[str]
    ndparams: dict[str, Any]
    diskparams: dict[str, dict[str, Any]]
    ipolicy: dict[str, Any]
    serial_no: int
    hv_state_static: dict[str, Any]
    disk_state_static: dict[str, Any]
    alloc_policy: str
    networks: dict[str, dict[str, Any]]
    ctime: float
    mtime: float
    uuid: str

    _RUNTIME_FIELDS: ClassVar[frozenset[str]] = frozenset(["members"])

    def SimpleFillND(self, ndparams: dict[str, Any]) -> dict[str, Any]:
        """Return ``ndparams`` filled with the group's node parameters."""
        return FillDict(self.ndparams or {}, ndparams)

    def FillND(self, node: Node) -> dict[str, Any]:
        """Return the node's parameters over the group's (not the cluster's)."""
        return self.SimpleFillND(node.ndparams or {})

    def UpgradeConfig(self) -> None:
        """Fill the empty parameter dicts, alloc_policy and common fields."""
        super().UpgradeConfig()
        if self.members is None:
            self.members = []
        if self.alloc_policy is None:
            self.alloc_policy = constants.ALLOC_POLICY_PREFERRED
        for name in ("ndparams", "diskparams", "ipolicy", "networks",
                     "hv_state_static", "disk_state_static"):
            if getattr(self, name) is None:
                setattr(self, name, {})
        self._UpgradeCommon()
