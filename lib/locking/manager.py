"""The master daemon's lock manager: one LockSet per level, taken in order.

The levels, in the order a job must take them (doc/locking.rst):
cluster (only the Big Ganeti Lock, ``BGL``), instance, node group, node,
node resources, network. The rules enforced here:

- the BGL is held before anything at another level is acquired, added or
  removed, and it is released last;
- a level is acquired only while nothing at a later level is held, so
  every thread takes its locks in the same global order;
- locks are added to a level only while nothing at a later level is held,
  and removed under the same rule unless the remover holds locks at that
  level already;
- the cluster level has a fixed membership.

Breaking a rule raises :class:`LockUsageError`, which is both an
``errors.ProgrammerError`` and an ``errors.LockError``.
"""

from __future__ import annotations

from typing import Any

from ganeti.locking.common import LockUsageError
from ganeti.locking.lockset import LockSet, Names
from ganeti.locking.monitor import LockInfo, LockMonitor

LEVEL_CLUSTER = 0
LEVEL_INSTANCE = 1
LEVEL_NODEGROUP = 2
LEVEL_NODE = 3
LEVEL_NODE_RES = 4
LEVEL_NETWORK = 5

LEVELS = (
    LEVEL_CLUSTER,
    LEVEL_INSTANCE,
    LEVEL_NODEGROUP,
    LEVEL_NODE,
    LEVEL_NODE_RES,
    LEVEL_NETWORK,
)

#: Levels whose membership can change
LEVELS_MOD = frozenset(LEVELS) - frozenset([LEVEL_CLUSTER])

LEVEL_NAMES = {
    LEVEL_CLUSTER: "cluster",
    LEVEL_INSTANCE: "instance",
    LEVEL_NODEGROUP: "nodegroup",
    LEVEL_NODE: "node",
    LEVEL_NODE_RES: "node-res",
    LEVEL_NETWORK: "network",
}

#: The Big Ganeti Lock, the only member of the cluster level
BGL = "BGL"


class GanetiLockManager:
    """All the locks of the cluster, one :class:`LockSet` per level.

    Node and node-resource levels both start with ``nodes``. Every lock
    registers with the manager's :class:`LockMonitor` (see
    :meth:`QueryLocks`).
    """

    def __init__(self, nodes: Names = (), nodegroups: Names = (),
                 instances: Names = (), networks: Names = (),
                 monitor: LockMonitor | None = None) -> None:
        self._monitor = monitor if monitor is not None else LockMonitor()
        members = {
            LEVEL_CLUSTER: [BGL],
            LEVEL_INSTANCE: instances,
            LEVEL_NODEGROUP: nodegroups,
            LEVEL_NODE: nodes,
            LEVEL_NODE_RES: nodes,
            LEVEL_NETWORK: networks,
        }
        self._keyring = {level: LockSet(members[level], LEVEL_NAMES[level], self._monitor)
                         for level in LEVELS}

    @property
    def monitor(self) -> LockMonitor:
        """The monitor every lock of this manager reports to."""
        return self._monitor

    # --- checks -------------------------------------------------------------------------

    def _lockset(self, level: int) -> LockSet:
        if isinstance(level, bool) or level not in self._keyring:
            raise LockUsageError(
                f"Unknown lock level {level!r}; levels are"
                f" {', '.join(f'{lvl} ({LEVEL_NAMES[lvl]})' for lvl in LEVELS)}")
        return self._keyring[level]

    def _bgl_owned(self) -> bool:
        return BGL in self._keyring[LEVEL_CLUSTER].list_owned()

    def _upper_owned(self, level: int) -> list[str]:
        """Names of the levels after ``level`` at which anything is held."""
        return [LEVEL_NAMES[lvl] for lvl in LEVELS
                if lvl > level and self._keyring[lvl].is_owned()]

    def _check_bgl(self, action: str, level: int) -> None:
        if not self._bgl_owned():
            raise LockUsageError(
                f"The Big Ganeti Lock must be held to {action} locks at level"
                f" {LEVEL_NAMES[level]!r}")

    def _check_modifiable(self, level: int) -> None:
        if level not in LEVELS_MOD:
            raise LockUsageError(
                f"Locks at level {LEVEL_NAMES[level]!r} cannot be added or removed")

    # --- queries --------------------------------------------------------------------------

    def names(self, level: int) -> frozenset[str]:
        """The locks that exist at ``level``."""
        return self._lockset(level).names()

    def list_owned(self, level: int) -> set[str]:
        """The locks the calling thread holds at ``level``."""
        return self._lockset(level).list_owned()

    def is_owned(self, level: int) -> bool:
        """Whether the calling thread holds anything at ``level``."""
        return self._lockset(level).is_owned()

    def check_owned(self, level: int, names: Names, shared: int = -1) -> bool:
        """Whether the calling thread holds all ``names`` at ``level``."""
        return self._lockset(level).check_owned(names, shared=shared)

    def owning_all(self, level: int) -> bool:
        """Whether the calling thread acquired the whole of ``level``."""
        return self._lockset(level).owning_all()

    def GetLockInfo(self, requested: frozenset[str]) -> list[LockInfo]:
        """The info tuples of every lock; see ``monitor.LockInfo``."""
        return self._monitor.GetLockInfo(requested)

    def QueryLocks(self, fields: list[str]) -> list[list[Any]]:
        """Rows for a lock query (``name``, ``mode``, ``owner``, ``pending``)."""
        return self._monitor.QueryLocks(fields)

    # --- operations -------------------------------------------------------------------------

    def acquire(self, level: int, names: Names | None, timeout: float | None = None,
                shared: int = 0, priority: int | None = None) -> set[str] | None:
        """Acquire ``names`` (or ``ALL_SET``) at ``level``; see LockSet.acquire."""
        lockset = self._lockset(level)
        if level != LEVEL_CLUSTER:
            self._check_bgl("acquire", level)
        upper = self._upper_owned(level)
        if upper:
            raise LockUsageError(
                f"Cannot acquire locks at level {LEVEL_NAMES[level]!r} while holding"
                f" locks at later levels ({', '.join(upper)})")
        return lockset.acquire(names, timeout=timeout, shared=shared, priority=priority)

    def release(self, level: int, names: Names | None = None) -> None:
        """Release ``names`` (default: all) at ``level``.

        The BGL is released last: not while anything at another level is
        held.
        """
        lockset = self._lockset(level)
        if level == LEVEL_CLUSTER:
            upper = self._upper_owned(LEVEL_CLUSTER)
            if upper:
                raise LockUsageError(
                    "Cannot release the Big Ganeti Lock while holding locks at"
                    f" other levels ({', '.join(upper)})")
        lockset.release(names)

    def downgrade(self, level: int, names: Names | None = None) -> bool:
        """Turn exclusively held locks at ``level`` into shared ones."""
        return self._lockset(level).downgrade(names)

    def add(self, level: int, names: Names, acquired: int = 0, shared: int = 0) -> bool:
        """Add locks at ``level`` (not the cluster level)."""
        lockset = self._lockset(level)
        self._check_modifiable(level)
        self._check_bgl("add", level)
        upper = self._upper_owned(level)
        if upper:
            raise LockUsageError(
                f"Cannot add locks at level {LEVEL_NAMES[level]!r} while holding"
                f" locks at later levels ({', '.join(upper)})")
        return lockset.add(names, acquired=acquired, shared=shared)

    def remove(self, level: int, names: Names) -> list[str]:
        """Remove locks at ``level`` (not the cluster level)."""
        lockset = self._lockset(level)
        self._check_modifiable(level)
        self._check_bgl("remove", level)
        # Removing means acquiring: allowed out of order only for locks held
        upper = self._upper_owned(level)
        if upper and not lockset.is_owned():
            raise LockUsageError(
                f"Cannot remove locks at level {LEVEL_NAMES[level]!r} while holding"
                f" locks at later levels ({', '.join(upper)}) and none at this one")
        return lockset.remove(names)
