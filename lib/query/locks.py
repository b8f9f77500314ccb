"""The "lock" query resource: the master daemon's locks, as gnt-debug shows them.

Items are the ``(name, mode, owner, pending)`` tuples of
``locking.LockMonitor.GetLockInfo``; only the parts the query reads are
asked for. ``mode`` is ``"exclusive"``, ``"shared"``, ``"deleted"`` or None
(free), ``owner`` the owners' names or None, ``pending`` one
``[mode, [owner names]]`` pair per queued acquire, in the order they will
be served.
"""

from __future__ import annotations

from typing import Any

from ganeti import constants, locking, utils
from ganeti.constants import QFT_OTHER, QFT_TEXT
from ganeti.query.engine import FieldQuery, RegisterResource, Resource
from ganeti.query.fields import FieldDefinition, FieldTable

LockItem = tuple[str, Any, Any, Any]


def _owner(ctx: Any, item: LockItem) -> Any:
    owner = item[2]
    return utils.NiceSort(owner) if owner else owner


def _pending(ctx: Any, item: LockItem) -> Any:
    pending = item[3]
    if pending is None:
        return None
    return [[mode, utils.NiceSort(names)] for mode, names in pending]


#: The lock fields: Ganeti's names, titles and kinds
LOCK_FIELDS = FieldTable(constants.QR_LOCK, [
    FieldDefinition("name", "Name", QFT_TEXT, "Lock name",
                    lambda ctx, item: item[0]),
    FieldDefinition("mode", "Mode", QFT_OTHER,
                    "How the lock is held now (exclusive, shared; none when free)",
                    lambda ctx, item: item[1], data=locking.LQ_MODE),
    FieldDefinition("owner", "Owner", QFT_OTHER, "Who holds the lock",
                    _owner, data=locking.LQ_OWNER),
    FieldDefinition("pending", "Pending", QFT_OTHER,
                    "Who waits for the lock, and in which mode",
                    _pending, data=locking.LQ_PENDING),
])


def _collect_locks(query: FieldQuery, context: Any) -> tuple[None, list[LockItem]]:
    requested = {locking.LQ_NAME} | {kind for kind in query.RequestedData()
                                     if kind in locking.LOCK_QUERY_FIELDS}
    return None, list(context.glm.monitor.GetLockInfo(frozenset(requested)))


LOCK_RESOURCE = RegisterResource(Resource(
    name=constants.QR_LOCK, fields=LOCK_FIELDS, collect=_collect_locks,
    namefield="name", sort_key=lambda item: utils.NiceSortKey(item[0])))
