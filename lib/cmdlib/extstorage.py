"""ExtStorage providers: ``LUExtStorageDiagnose`` (gnt-storage diagnose/info)
and the provider check of LUs creating ``ext`` disks.

The data is the "extstorage" query resource's (:mod:`ganeti.query.extstorage`):
one ``extstorage_diagnose`` RPC to every online VM-capable node, merged per
provider and node group.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

from ganeti import constants, errors, query
from ganeti.cmdlib.base import FeedbackFn, NoHooksLU


class LUExtStorageDiagnose(NoHooksLU):
    """Report the ExtStorage providers of the nodes: one row of values each."""

    REQ_BGL = False

    def CheckArguments(self) -> None:
        query.CheckFieldNames(self.op.output_fields, "Output fields")
        self.eq = query.GetResource(constants.QR_EXTSTORAGE).MakeQuery(
            self.op.output_fields, query.MakeSimpleFilter("name", self.op.names))

    def ExpandNames(self) -> None:
        # Reads the configuration and asks the nodes; no locks needed
        self.needed_locks = {}

    def Exec(self, feedback_fn: FeedbackFn) -> list[list[Any]]:
        context = SimpleNamespace(cfg=self.cfg, rpc=self.rpc)
        resource = query.GetResource(constants.QR_EXTSTORAGE)
        ctx, items = resource.Collect(self.eq, context)
        return self.eq.PlainRows(ctx, items)


def CheckExtStorageProvider(lu: Any, node_uuids: Sequence[str], provider: str,
                            ext_params: dict[str, Any]) -> None:
    """OpPrereqError unless ``provider`` is valid on every node given and
    declares every parameter in ``ext_params`` (the disk-level ``access``
    parameter aside).

    Meant for the CheckPrereq of LUs creating ``ext`` disks, with the
    nodes the disks will live on.
    """
    results = lu.rpc.call_extstorage_diagnose(list(node_uuids))
    declared: set[str] | None = None
    for node_uuid in node_uuids:
        node_name = lu.cfg.GetNodeName(node_uuid)
        result = results[node_uuid]
        result.Raise(f"Cannot get the ExtStorage providers of node {node_name}",
                     prereq=True, ecode=errors.ECODE_ENVIRON)
        rows = [row for row in result.payload or [] if row[0] == provider]
        if not rows:
            raise errors.OpPrereqError(
                f"ExtStorage provider '{provider}' not found on node {node_name}",
                errors.ECODE_INVAL)
        _, path, status, diagnose, params = rows[0][:5]
        if not status:
            raise errors.OpPrereqError(
                f"ExtStorage provider '{provider}' is not valid on node {node_name}"
                f" ({path}): {diagnose}", errors.ECODE_INVAL)
        names = {param[0] for param in params or []}
        declared = names if declared is None else declared & names
    unknown = sorted(set(ext_params) - (declared or set()) - {constants.RBD_ACCESS})
    if unknown:
        raise errors.OpPrereqError(
            f"ExtStorage provider '{provider}' does not support the parameter(s)"
            f" {', '.join(unknown)} (supported: {', '.join(sorted(declared or [])) or 'none'})",
            errors.ECODE_INVAL)
