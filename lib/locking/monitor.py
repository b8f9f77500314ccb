"""Lock monitoring: what every lock reports to a "lock" query.

Each lock registers itself with a :class:`LockMonitor` (weakly, so that a
removed lock disappears from the answers once nothing uses it). A query
asks every lock for the fields it wants; Ganeti's field names are
``name``, ``mode``, ``owner`` and ``pending``:

- ``mode``: ``"exclusive"``, ``"shared"``, ``"deleted"`` or None (free);
- ``owner``: the sorted owner names (see :func:`set_owner_name`) or None;
- ``pending``: one ``(mode, [owner names])`` pair per queued acquire
  condition, in the order they will be served.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

from ganeti import errors

LQ_NAME = "name"
LQ_MODE = "mode"
LQ_OWNER = "owner"
LQ_PENDING = "pending"
#: The fields a lock query can ask for, in Ganeti's default order
LOCK_QUERY_FIELDS = (LQ_NAME, LQ_MODE, LQ_OWNER, LQ_PENDING)

#: What one lock reports: (name, mode, owner, pending); fields that were not
#: requested are None
LockInfo = tuple[str, Any, Any, Any]


class LockInfoProvider(Protocol):
    """Anything that can describe one or more locks."""

    def GetLockInfo(self, requested: frozenset[str]) -> list[LockInfo]:
        """Return one tuple per lock; see :data:`LockInfo`."""


def check_fields(fields: Iterable[str]) -> list[str]:
    """Return ``fields`` as a list, or raise naming the unknown ones."""
    fields = list(fields)
    unknown = [f for f in fields if f not in LOCK_QUERY_FIELDS]
    if unknown:
        raise errors.ParameterError(
            f"Unknown lock query fields: {', '.join(map(str, unknown))};"
            f" known fields are {', '.join(LOCK_QUERY_FIELDS)}")
    return fields


class LockMonitor:
    """Keeps (weak) track of locks and answers queries about them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._providers: weakref.WeakSet[Any] = weakref.WeakSet()

    def RegisterLock(self, provider: LockInfoProvider) -> None:
        """Include ``provider`` in the answers while it lives."""
        with self._lock:
            self._providers.add(provider)

    def GetLockInfo(self, requested: Iterable[str]) -> list[LockInfo]:
        """Return the info tuples of every registered lock, sorted by name."""
        wanted = frozenset(check_fields(requested))
        with self._lock:
            providers = list(self._providers)
        infos = [info for provider in providers
                 for info in provider.GetLockInfo(wanted)]
        infos.sort(key=lambda info: info[0])
        return infos

    def QueryLocks(self, fields: Sequence[str]) -> list[list[Any]]:
        """Return one row per lock with the values of ``fields`` in order.

        Rows are sorted by lock name. Unknown fields raise
        ``errors.ParameterError``.
        """
        fields = check_fields(fields)
        index = {field: pos for pos, field in enumerate(LOCK_QUERY_FIELDS)}
        return [[info[index[field]] for field in fields]
                for info in self.GetLockInfo(fields)]
