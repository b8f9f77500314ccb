"""Running queries: selected fields, a filter, and the resource registry.

A resource (``"job"``, ``"lock"``, later ``"node"``, ``"instance"``, ...) is
registered once with :func:`RegisterResource`: its field table, its name
field, how rows are ordered, and a collector that fetches the items from
the master daemon's context. :func:`Query` and :func:`QueryFields` are what
the luxi server calls; they answer with Ganeti's ``QueryResponse`` and
``QueryFieldsResponse`` dicts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ganeti import errors
from ganeti.query.fields import FieldDefinition, FieldTable, ToPlain, ToResult
from ganeti.query.filter import CompiledFilter, CompileFilter


def CheckFieldNames(fields: Any, what: str = "Query fields") -> list[str]:
    """``fields`` as a list of strings, or OpPrereqError (ECODE_INVAL)."""
    if not isinstance(fields, (list, tuple)) or \
            not all(isinstance(name, str) for name in fields):
        raise errors.OpPrereqError(
            f"{what} must be a list of field names, got {fields!r}", errors.ECODE_INVAL)
    return list(fields)


def MatchesName(name: str, wanted: str) -> bool:
    """Whether ``wanted`` names ``name``: equal, or its first components
    ("node1" names "node1.example.com"), ignoring case."""
    name, wanted = name.lower(), str(wanted).lower()
    return name == wanted or name.startswith(wanted + ".")


def CheckNamesKnown(requested: Sequence[Any], names: Iterable[str],
                    unknown: Callable[[list[str]], str]) -> None:
    """OpPrereqError (ECODE_NOENT) with ``unknown(missing)`` unless every
    requested name names one of ``names``; as in Ganeti, asking for an
    item by a name that does not exist is an error, not an empty answer."""
    known = list(names)
    missing = [str(want) for want in requested
               if not any(MatchesName(name, want) for name in known)]
    if missing:
        raise errors.OpPrereqError(unknown(missing), errors.ECODE_NOENT)


class FieldQuery:
    """One query over one field table: the selected fields and the filter.

    Built before collecting the data so that the collector can ask which
    data (:meth:`RequestedData`), which names (:meth:`RequestedNames`) and
    whether a field is referenced at all (:meth:`References`). Unknown
    selected fields give ``QFT_UNKNOWN`` definitions and ``RS_UNKNOWN``
    values; unknown fields in the filter raise QueryFilterParseError.
    """

    def __init__(self, table: FieldTable, selected: Sequence[str],
                 qfilter: Any = None, namefield: str | None = None) -> None:
        self.table = table
        self.selected = CheckFieldNames(selected)
        self.fields: list[FieldDefinition] = table.Select(self.selected)
        self.filter: CompiledFilter | None = None
        if qfilter is not None:
            self.filter = CompileFilter(table.get, qfilter, namefield)

    def RequestedNames(self) -> list[Any] | None:
        """The names the filter selects, or None when it may match anything."""
        return None if self.filter is None else self.filter.requested_names

    def RequestedData(self) -> frozenset[Any]:
        """The data kinds needed by the selected fields and the filter."""
        data = {fdef.data for fdef in self.fields if fdef.data is not None}
        if self.filter is not None:
            data |= self.filter.data
        return frozenset(data)

    def References(self, name: str) -> bool:
        """Whether field ``name`` is selected or read by the filter."""
        return (name in self.selected or
                (self.filter is not None and name in self.filter.fields))

    def GetFieldDefs(self) -> list[dict[str, str]]:
        """The wire definitions of the selected fields, unknown ones included."""
        return [fdef.ToDict() for fdef in self.fields]

    def Matching(self, ctx: Any, items: Iterable[Any]) -> Iterable[Any]:
        """The items that pass the filter."""
        if self.filter is None:
            return items
        match = self.filter
        return (item for item in items if match(ctx, item))

    def Rows(self, ctx: Any, items: Iterable[Any]) -> list[list[list[Any]]]:
        """One row of ``[status, value]`` pairs per item passing the filter."""
        getters = [fdef.getter for fdef in self.fields]
        return [[ToResult(get(ctx, item)) for get in getters]
                for item in self.Matching(ctx, items)]

    def PlainRows(self, ctx: Any, items: Iterable[Any]) -> list[list[Any]]:
        """Rows of plain values (None for missing ones), as old-style queries.

        Unknown selected fields raise OpPrereqError (ECODE_INVAL).
        """
        unknown = self.table.Unknown(self.selected)
        if unknown:
            raise errors.OpPrereqError(
                f"Unknown output fields selected: {', '.join(unknown)}",
                errors.ECODE_INVAL)
        getters = [fdef.getter for fdef in self.fields]
        return [[ToPlain(get(ctx, item)) for get in getters]
                for item in self.Matching(ctx, items)]


#: ``collect(query, context) -> (ctx, items)``: fetch the items a query needs
Collector = Callable[[FieldQuery, Any], tuple[Any, list[Any]]]


@dataclass(frozen=True)
class Resource:
    """A queryable resource: its fields and how to fetch and order its items.

    ``sort_key(item)`` orders the rows (None keeps the collector's order);
    ``namefield`` is the field whose "=" filters :meth:`FieldQuery.RequestedNames`
    reports.
    """

    name: str
    fields: FieldTable
    collect: Collector
    namefield: str | None = None
    sort_key: Callable[[Any], Any] | None = None

    def MakeQuery(self, selected: Sequence[str], qfilter: Any = None) -> FieldQuery:
        """A :class:`FieldQuery` over this resource's fields."""
        return FieldQuery(self.fields, selected, qfilter, self.namefield)

    def Collect(self, query: FieldQuery, context: Any) -> tuple[Any, list[Any]]:
        """The collector's ``(ctx, items)``, sorted by ``sort_key``."""
        ctx, items = self.collect(query, context)
        items = list(items)
        if self.sort_key is not None:
            items.sort(key=self.sort_key)
        return ctx, items


#: Every queryable resource by name (``constants.QR_*``); later resources
#: add themselves with :func:`RegisterResource`
RESOURCES: dict[str, Resource] = {}


def RegisterResource(resource: Resource) -> Resource:
    """Make ``resource`` answer :func:`Query` and :func:`QueryFields`."""
    if resource.name in RESOURCES and RESOURCES[resource.name] is not resource:
        raise errors.ProgrammerError(
            f"Query resource '{resource.name}' is registered twice")
    if resource.namefield is not None and resource.namefield not in resource.fields:
        raise errors.ProgrammerError(
            f"Name field '{resource.namefield}' of resource '{resource.name}'"
            " is not one of its fields")
    RESOURCES[resource.name] = resource
    return resource


def GetResource(name: Any) -> Resource:
    """The registered resource ``name``, or OpPrereqError (ECODE_INVAL)."""
    resource = RESOURCES.get(name) if isinstance(name, str) else None
    if resource is None:
        known = ", ".join(sorted(RESOURCES))
        raise errors.OpPrereqError(
            f"Resource {name!r} is not queryable here (queryable: {known})",
            errors.ECODE_INVAL)
    return resource


def Query(resource: str, fields: Sequence[str], qfilter: Any,
          context: Any) -> dict[str, Any]:
    """Answer a luxi ``Query``: ``{"fields": [fielddef...], "data": [row...]}``.

    Each row holds one ``[status, value]`` pair per requested field (status
    one of ``constants.RS_*``). ``context`` is what the resource's
    collector reads (the master daemon's context: ``jobqueue``, ``glm``,
    ...).
    """
    res = GetResource(resource)
    query = res.MakeQuery(fields, qfilter)
    ctx, items = res.Collect(query, context)
    return {"fields": query.GetFieldDefs(), "data": query.Rows(ctx, items)}


def QueryFields(resource: str, fields: Sequence[str] | None) -> dict[str, Any]:
    """Answer a luxi ``QueryFields``: ``{"fields": [fielddef...]}``.

    With no fields (None or empty) every field of the resource, sorted by
    name; otherwise the requested ones in order, unknown names described
    as fields of kind ``unknown``.
    """
    res = GetResource(resource)
    if not fields:
        fdefs = res.fields.AllSorted()
    else:
        fdefs = res.fields.Select(CheckFieldNames(fields))
    return {"fields": [fdef.ToDict() for fdef in fdefs]}
