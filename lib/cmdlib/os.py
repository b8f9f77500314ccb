"""OS definitions: ``LUOsDiagnose`` (what gnt-os list/info/diagnose show).

The data is the "os" query resource's (:mod:`ganeti.query.os`): one
``os_diagnose`` RPC to every online VM-capable node, merged per OS name,
with the hidden/blacklisted states and per-OS parameters of the cluster.
As in Ganeti, hidden, blacklisted and invalid OSes are left out unless the
corresponding field is requested. Changing the OS states and parameters is
``OpClusterSetParams`` (``gnt-os modify``).
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from ganeti import errors, query
from ganeti.query import filter as qfilter
from ganeti.cmdlib.base import FeedbackFn, NoHooksLU


def BuildOsFilter(fields: list[str], names: list[str]) -> Any:
    """The query filter LUOsDiagnose applies (Ganeti's legacy behaviour)."""
    name_filter = query.MakeSimpleFilter("name", names)
    status_filter: list[Any] = [[qfilter.OP_NOT, [qfilter.OP_TRUE, fname]]
                                for fname in ("hidden", "blacklisted")
                                if fname not in fields]
    if "valid" not in fields:
        status_filter.append([qfilter.OP_TRUE, "valid"])
    status: Any = [qfilter.OP_AND, *status_filter] if status_filter else None
    if name_filter and status:
        return [qfilter.OP_AND, name_filter, status]
    return name_filter or status


class LUOsDiagnose(NoHooksLU):
    """Report the OS definitions of the nodes: one row of values per OS."""

    REQ_BGL = False

    def CheckArguments(self) -> None:
        query.CheckFieldNames(self.op.output_fields, "Output fields")
        self.oq = query.GetResource("os").MakeQuery(
            self.op.output_fields, BuildOsFilter(self.op.output_fields, self.op.names))

    def ExpandNames(self) -> None:
        # Reads the configuration and asks the nodes; no locks needed
        self.needed_locks = {}

    def Exec(self, feedback_fn: FeedbackFn) -> list[list[Any]]:
        context = SimpleNamespace(cfg=self.cfg, rpc=self.rpc)
        resource = query.GetResource("os")
        ctx, items = resource.Collect(self.oq, context)
        return self.oq.PlainRows(ctx, items)


def CheckOsAllowedForNewInstance(cluster: Any, os_name: str) -> None:
    """OpPrereqError (ECODE_STATE) if ``os_name`` (any variant) is
    blacklisted: blacklisted OSes serve only existing instances (seed 000,
    "New OS states")."""
    base = os_name.split("+", 1)[0]
    if base in (cluster.blacklisted_os or []) or os_name in (cluster.blacklisted_os or []):
        raise errors.OpPrereqError(
            f"Guest OS '{os_name}' is blacklisted and cannot be used for new"
            " instances", errors.ECODE_STATE)
