"""The "export" query resource: the instance exports each node holds.

As Ganeti 3.0's (which has no opcode for it: ``gnt-backup list`` and luxi's
``QueryExports`` are queries of this resource), one ``export_list`` call
goes to the nodes asked for (by a filter on ``node``; all nodes without
one). Each row is one export on one node; a node that is offline gives one
row whose ``export`` is OFFLINE, a node that did not answer one whose
``export`` is NODATA, so the caller can report it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from ganeti import constants, utils
from ganeti.constants import QFT_TEXT
from ganeti.query.engine import FieldQuery, RegisterResource, Resource
from ganeti.query.fields import NODATA, OFFLINE, FieldDefinition, FieldStatus, FieldTable


@dataclass(frozen=True)
class ExportRow:
    """One export of one node, or a node's failure (``export`` a status)."""

    node: str
    export: str | FieldStatus


def _GetRpc(context: Any) -> Any:
    runner = getattr(context, "rpc", None)
    if runner is None:
        from ganeti.rpc.node import RpcRunner
        runner = RpcRunner.FromConfig(context.cfg)
    return runner


def CollectExports(query: FieldQuery, context: Any) -> tuple[None, list[ExportRow]]:
    """The collector of the "export" resource."""
    snap = context.cfg.GetReadOnlySnapshot()
    nodes = list(snap.nodes.values())
    names = query.RequestedNames()
    if names is not None:
        wanted = set(names)
        nodes = [node for node in nodes if node.name in wanted]
    online = [node.uuid for node in nodes if not node.offline]
    results = (_GetRpc(context).call_export_list(online, read_timeout=constants.RPC_TMO_QUERY)
               if online else {})
    rows: list[ExportRow] = []
    for node in utils.NiceSort(nodes, key=lambda n: n.name):
        if node.offline:
            rows.append(ExportRow(node.name, OFFLINE))
            continue
        res = results.get(node.uuid)
        if res is None or res.fail_msg or not isinstance(res.payload, list):
            logging.warning("Cannot get the exports of node %s: %s", node.name,
                            getattr(res, "fail_msg", "no answer"))
            rows.append(ExportRow(node.name, NODATA))
            continue
        rows.extend(ExportRow(node.name, name) for name in sorted(res.payload))
    return None, rows


#: The export fields (Ganeti's)
EXPORT_FIELDS = FieldTable(constants.QR_EXPORT, [
    FieldDefinition("node", "Node", QFT_TEXT, "Node name", lambda ctx, row: row.node),
    FieldDefinition("export", "Export", QFT_TEXT, "Export name",
                    lambda ctx, row: row.export),
])

EXPORT_RESOURCE = RegisterResource(Resource(
    name=constants.QR_EXPORT, fields=EXPORT_FIELDS, collect=CollectExports,
    namefield="node"))
