"""Locks for the master daemon, as designed in seed 003 ("Locking improvements").

- :mod:`.condition`: :class:`PipeCondition` and its single-notify variant,
  whose waiters sleep in poll(2) on a pipe;
- :mod:`.sharedlock`: :class:`SharedLock`, one priority-ordered queue of
  pending acquires;
- :mod:`.lockset`: :class:`LockSet`, named locks acquired in sorted order,
  all or nothing;
- :mod:`.manager`: :class:`GanetiLockManager`, one set per level (the BGL,
  instances, node groups, nodes, node resources, networks);
- :mod:`.strategy`: :class:`LockAttemptTimeoutStrategy`, try with growing
  timeouts and release in between, then block;
- :mod:`.monitor`: :class:`LockMonitor`, which answers lock queries.

Everything is re-exported here: use ``locking.SharedLock`` and so on.
"""

from ganeti.locking.common import (
    MODE_DELETED,
    MODE_EXCLUSIVE,
    MODE_SHARED,
    LockDeletedError,
    LockUsageError,
    get_owner_name,
    set_owner_name,
)
from ganeti.locking.condition import PipeCondition, SingleNotifyPipeCondition
from ganeti.locking.lockset import ALL_SET, SET_LOCK_NAME, LockSet
from ganeti.locking.manager import (
    BGL,
    LEVEL_CLUSTER,
    LEVEL_INSTANCE,
    LEVEL_NAMES,
    LEVEL_NETWORK,
    LEVEL_NODE,
    LEVEL_NODE_RES,
    LEVEL_NODEGROUP,
    LEVELS,
    LEVELS_MOD,
    GanetiLockManager,
)
from ganeti.locking.monitor import (
    LOCK_QUERY_FIELDS,
    LQ_MODE,
    LQ_NAME,
    LQ_OWNER,
    LQ_PENDING,
    LockMonitor,
)
from ganeti.locking.sharedlock import SharedLock
from ganeti.locking.strategy import (
    LockAttemptTimeoutStrategy,
    acquire_with_strategy,
    calculate_lock_attempt_timeouts,
)

__all__ = [
    "ALL_SET",
    "BGL",
    "LEVELS",
    "LEVELS_MOD",
    "LEVEL_CLUSTER",
    "LEVEL_INSTANCE",
    "LEVEL_NAMES",
    "LEVEL_NETWORK",
    "LEVEL_NODE",
    "LEVEL_NODEGROUP",
    "LEVEL_NODE_RES",
    "LOCK_QUERY_FIELDS",
    "LQ_MODE",
    "LQ_NAME",
    "LQ_OWNER",
    "LQ_PENDING",
    "MODE_DELETED",
    "MODE_EXCLUSIVE",
    "MODE_SHARED",
    "SET_LOCK_NAME",
    "GanetiLockManager",
    "LockAttemptTimeoutStrategy",
    "LockDeletedError",
    "LockMonitor",
    "LockSet",
    "LockUsageError",
    "PipeCondition",
    "SharedLock",
    "SingleNotifyPipeCondition",
    "acquire_with_strategy",
    "calculate_lock_attempt_timeouts",
    "get_owner_name",
    "set_owner_name",
]
