"""Formatting what the gnt-* tools print: tables, query results, details.

- :func:`GenerateTable`: the aligned (or separator-joined) table of the
  older list commands, with numeric columns right-aligned and size columns
  formatted with ``--units``;
- :func:`FormatQueryResult`, :func:`GenericList`, :func:`GenericListFields`:
  the ``list`` and ``list-fields`` commands built on a luxi Query, where each
  value comes with a result status (``RS_*``) shown as e.g. "(nodata)";
- :func:`PrintGenericInfo`: the indented "key: value" layout of ``info``
  commands.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ganeti import constants, errors, qlang, utils
from ganeti.cli import base
from ganeti.cli.base import ToStderr, ToStdout

#: Overall status of a formatted query result
QR_NORMAL = 0
QR_UNKNOWN = 1
QR_INCOMPLETE = 2

#: How values with an abnormal status are shown: (verbose, short)
RSS_DESCRIPTION = {
    constants.RS_UNKNOWN: ("(unknown)", "??"),
    constants.RS_NODATA: ("(nodata)", "?"),
    constants.RS_OFFLINE: ("(offline)", "*"),
    constants.RS_UNAVAIL: ("(unavail)", "-"),
}
RS_ALL = frozenset([constants.RS_NORMAL]) | frozenset(RSS_DESCRIPTION)

#: Names of field kinds shown by list-fields
QFT_NAMES = {
    constants.QFT_UNKNOWN: "Unknown",
    constants.QFT_TEXT: "Text",
    constants.QFT_BOOL: "Boolean",
    constants.QFT_NUMBER: "Number",
    constants.QFT_NUMBER_FLOAT: "Floating-point number",
    constants.QFT_UNIT: "Storage size",
    constants.QFT_TIMESTAMP: "Timestamp",
    constants.QFT_OTHER: "Custom",
}

#: A column formatter: (function turning a value into text, align right)
Formatter = tuple[Callable[[Any], str], bool]


# --- Small helpers ------------------------------------------------------------

def ParseFields(selected: str | None, default: Sequence[str]) -> list[str]:
    """The fields of a ``-o`` option: a list, or "+list" to extend ``default``.

    @raise errors.OpPrereqError: for an empty field name
    """
    if selected is None:
        return list(default)
    extend = selected.startswith("+")
    names = (selected[1:] if extend else selected).split(",")
    if any(not name.strip() for name in names):
        raise errors.OpPrereqError(
            f"Invalid field list '{selected}': empty field name",
            errors.ECODE_INVAL)
    names = [name.strip() for name in names]
    return list(default) + names if extend else names


def FormatTimestamp(ts: Any) -> str:
    """Format a ``[seconds, microseconds]`` timestamp; "?" if it is not one."""
    if not isinstance(ts, (tuple, list)) or len(ts) != 2:
        return "?"
    sec, usec = ts
    return utils.FormatTime(sec, usecs=int(usec))


def FormatResultError(status: int, verbose: bool) -> str:
    """Text shown for a value whose status is not RS_NORMAL."""
    try:
        verbose_text, short_text = RSS_DESCRIPTION[status]
    except KeyError:
        raise errors.ProgrammerError(f"Unknown result status {status!r}") from None
    return verbose_text if verbose else short_text


def _FormatBool(value: Any) -> str:
    return "Y" if value else "N"


def _FormatQueryTimestamp(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return FormatTimestamp(value)
    return utils.FormatTime(value)


def _DefaultUnit(unit: str | None, separator: str | None) -> str:
    """Human-readable sizes for aligned output, mebibytes for scripts."""
    if unit is not None:
        return unit
    return "m" if separator else "h"


# --- Plain tables ---------------------------------------------------------------

@dataclass
class TableColumn:
    """A column of :func:`FormatTable`: title, formatter, alignment."""

    title: str
    format: Callable[[Any], str]
    align_right: bool


def FormatTable(rows: Iterable[Sequence[Any]], columns: Sequence[TableColumn],
                header: bool, separator: str | None) -> list[str]:
    """Format ``rows`` as lines of text, one per row (plus the header).

    Without a separator, columns are padded to their widest value and joined
    by a space; the last column is not padded when left-aligned.
    """
    table: list[list[str]] = []
    if header:
        table.append([col.title for col in columns])
    for row in rows:
        if len(row) != len(columns):
            raise errors.ProgrammerError(
                f"Row has {len(row)} values for {len(columns)} columns")
        table.append([col.format(value) for value, col in zip(row, columns)])
    if separator is not None:
        return [separator.join(line) for line in table]
    widths = [max((len(line[idx]) for line in table), default=0)
              for idx in range(len(columns))]
    if columns and not columns[-1].align_right:
        widths[-1] = 0
    result = []
    for line in table:
        cells = [(value.rjust(width) if col.align_right else value.ljust(width))
                 for value, col, width in zip(line, columns, widths)]
        result.append(" ".join(cells))
    return result


def GenerateTable(headers: Mapping[str, str] | None, fields: Sequence[str],
                  separator: str | None, data: Iterable[Sequence[Any] | None],
                  numfields: Iterable[str] | None = None,
                  unitfields: Iterable[str] | None = None,
                  units: str | None = None) -> list[str]:
    """Lines of a table of ``data`` (rows of values, one per field).

    ``headers`` maps field names to titles (None for no header line; a field
    without a title is titled by its name); ``numfields`` are right-aligned;
    ``unitfields`` hold sizes in MiB shown with ``units`` (default "h"
    for aligned output, "m" with a separator); a row of None is shown as
    dashes.
    """
    units = _DefaultUnit(units, separator)
    numeric = set(numfields or ())
    sized = set(unitfields or ())

    def _Format(field: str) -> Callable[[Any], str]:
        def _Fn(value: Any) -> str:
            if field in sized:
                try:
                    return utils.FormatUnit(int(value), units)
                except (TypeError, ValueError):
                    pass
            return str(value)
        return _Fn

    columns = [TableColumn((headers or {}).get(field, field), _Format(field),
                           field in numeric) for field in fields]
    rows = [row if row is not None else ["-"] * len(fields) for row in data]
    return FormatTable(rows, columns, headers is not None, separator)


# --- Query results ----------------------------------------------------------------

@dataclass(frozen=True)
class FieldDef:
    """A query field definition (from a dict or a QueryFieldDefinition)."""

    name: str
    title: str
    kind: str
    doc: str

    @classmethod
    def From(cls, value: Any) -> FieldDef:
        """Accept a dict or an object with name/title/kind/doc attributes."""
        if isinstance(value, Mapping):
            get = value.get
        else:
            def get(key: str, default: Any = None) -> Any:
                return getattr(value, key, default)
        return cls(str(get("name", "")), str(get("title", "") or get("name", "")),
                   str(get("kind", constants.QFT_OTHER)), str(get("doc", "")))


def ResponseFields(response: Any) -> list[FieldDef]:
    """The field definitions of a Query/QueryFields answer (dict or object)."""
    raw = response.get("fields") if isinstance(response, Mapping) \
        else getattr(response, "fields", None)
    return [FieldDef.From(fdef) for fdef in raw or []]


def ResponseData(response: Any) -> list[list[Any]]:
    """The rows of a Query answer (dict or object)."""
    raw = response.get("data") if isinstance(response, Mapping) \
        else getattr(response, "data", None)
    return list(raw or [])


_DEFAULT_FORMAT_QUERY: dict[str, Formatter] = {
    constants.QFT_TEXT: (str, False),
    constants.QFT_BOOL: (_FormatBool, False),
    constants.QFT_NUMBER: (str, True),
    constants.QFT_NUMBER_FLOAT: (str, True),
    constants.QFT_TIMESTAMP: (_FormatQueryTimestamp, False),
    constants.QFT_OTHER: (str, False),
    constants.QFT_UNKNOWN: (str, False),
}


def _ColumnFormatter(fdef: FieldDef, override: Mapping[str, Formatter],
                     unit: str) -> Formatter:
    if fdef.name in override:
        return override[fdef.name]
    if fdef.kind == constants.QFT_UNIT:
        return (lambda value: utils.FormatUnit(value, unit), True)
    return _DEFAULT_FORMAT_QUERY.get(fdef.kind, (str, False))


def FormatQueryResult(result: Any, unit: str | None = None,
                      format_override: Mapping[str, Formatter] | None = None,
                      separator: str | None = None, header: bool = False,
                      verbose: bool = False) -> tuple[int, list[str]]:
    """Format a Query answer as table lines; return (QR_* status, lines).

    Each value is a ``[status, value]`` pair; values with a status other
    than RS_NORMAL are shown by :func:`FormatResultError`. The status is
    QR_UNKNOWN when a field is unknown, QR_INCOMPLETE when some value is
    missing, QR_NORMAL otherwise.
    """
    unit = _DefaultUnit(unit, separator)
    override = format_override or {}
    fdefs = ResponseFields(result)
    seen: dict[int, int] = dict.fromkeys(RS_ALL, 0)

    def _Wrap(fn: Callable[[Any], str]) -> Callable[[Any], str]:
        def _Fn(cell: Any) -> str:
            status, value = cell
            if status in seen:
                seen[status] += 1
            if status == constants.RS_NORMAL:
                return fn(value)
            return FormatResultError(status, verbose)
        return _Fn

    columns = []
    for fdef in fdefs:
        fn, align_right = _ColumnFormatter(fdef, override, unit)
        columns.append(TableColumn(fdef.title, _Wrap(fn), align_right))
    data = ResponseData(result)
    lines = FormatTable(data, columns, header, separator)
    if seen[constants.RS_UNKNOWN] or (not data and UnknownFields(fdefs)):
        status = QR_UNKNOWN
    elif any(count for key, count in seen.items() if key != constants.RS_NORMAL):
        status = QR_INCOMPLETE
    else:
        status = QR_NORMAL
    return status, lines


def UnknownFields(fdefs: Iterable[FieldDef]) -> list[FieldDef]:
    """The fields the master did not know (kind QFT_UNKNOWN)."""
    return [fdef for fdef in fdefs if fdef.kind == constants.QFT_UNKNOWN]


def _WarnUnknownFields(fdefs: Sequence[FieldDef]) -> bool:
    unknown = UnknownFields(fdefs)
    if unknown:
        ToStderr("Warning: Queried for unknown fields %s",
                 utils.CommaJoin(fdef.name for fdef in unknown))
    return bool(unknown)


# --- Query filters ------------------------------------------------------------------

_SIMPLE_FILTER_RE = re.compile(
    r"^\s*(?P<field>[A-Za-z_][\w./]*)\s*(?P<op>==|!=|=~|<=|>=|<|>)\s*"
    r"(?P<value>.+?)\s*$")


def MakeSimpleFilter(namefield: str, values: Iterable[Any] | None
                     ) -> list[Any] | None:
    """A filter matching ``namefield`` equal to any of ``values``; None for None."""
    if values is None:
        return None
    return ["|"] + [["=", namefield, value] for value in values]


def _ParseFilterValue(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def ParseFilterText(text: str) -> list[Any]:
    """Parse a filter given on the command line.

    Accepted: a JSON list in Ganeti's query language (``["=", "status",
    "error"]``), the text form of :mod:`ganeti.qlang` (``name =~ m/^node/
    and not offline``), or, for compatibility, one comparison ``FIELD OP
    VALUE`` whose VALUE is JSON when it parses as JSON, else text.

    @raise errors.OpPrereqError: for anything else, with the text form's
        error (offset and caret)
    """
    stripped = text.strip()
    if stripped.startswith("["):
        try:
            parsed = json.loads(stripped)
        except ValueError as err:
            raise errors.OpPrereqError(
                f"Invalid query filter '{text}': {err}", errors.ECODE_INVAL) from None
        if not isinstance(parsed, list) or not parsed:
            raise errors.OpPrereqError(
                f"Invalid query filter '{text}': expected a non-empty list",
                errors.ECODE_INVAL)
        return parsed
    try:
        return qlang.ParseFilter(text)
    except errors.QueryFilterParseError as err:
        match = _SIMPLE_FILTER_RE.match(stripped)
        if not match:
            raise errors.OpPrereqError(str(err.args[0]), errors.ECODE_INVAL) from None
    value = _ParseFilterValue(match.group("value"))
    op = match.group("op")
    if op == "!=":
        return ["!", ["==", match.group("field"), value]]
    return [op, match.group("field"), value]


def MakeFilter(args: Sequence[str] | None, force: bool, namefield: str = "name",
               isnumeric: bool = False) -> list[Any] | None:
    """The filter for a list command's arguments.

    With ``force`` (``-F``), or one argument that looks like a filter, the
    arguments joined by spaces are one filter (see :func:`ParseFilterText`);
    otherwise they are names (numbers with ``isnumeric``; ``*``/``?``
    globs) matched against ``namefield`` (see :func:`ganeti.qlang.MakeFilter`).
    """
    if not args:
        return None
    if force or (len(args) == 1 and qlang.MaybeFilter(args[0])):
        return ParseFilterText(" ".join(args))
    return qlang.MakeFilter(args, False, namefield=namefield, isnumeric=isnumeric)


# --- The generic list commands --------------------------------------------------------

def GenericList(resource: str, fields: Sequence[str], names: Sequence[str] | None,
                unit: str | None, separator: str | None, header: bool,
                cl: Any = None, format_override: Mapping[str, Formatter] | None = None,
                verbose: bool = False, force_filter: bool = False,
                namefield: str | None = None, qfilter: list[Any] | None = None,
                isnumeric: bool = False) -> int:
    """List items of ``resource`` through a luxi Query; return the exit code.

    ``names`` select items by ``namefield`` (or form a filter with
    ``force_filter``), combined with ``qfilter``. Unknown fields are
    warned about and give EXIT_UNKNOWN_FIELD.
    """
    namefilter = MakeFilter(names, force_filter, namefield=namefield or "name",
                            isnumeric=isnumeric)
    if qfilter is None:
        qfilter = namefilter
    elif namefilter is not None:
        qfilter = ["&", namefilter, qfilter]
    if cl is None:
        cl = base.GetClient()
    response = cl.Query(resource, list(fields), qfilter)
    found_unknown = _WarnUnknownFields(ResponseFields(response))
    status, lines = FormatQueryResult(response, unit=unit, separator=separator,
                                      header=header,
                                      format_override=format_override,
                                      verbose=verbose)
    for line in lines:
        ToStdout(line)
    if found_unknown or status == QR_UNKNOWN:
        return constants.EXIT_UNKNOWN_FIELD
    return constants.EXIT_SUCCESS


def GenericListFields(resource: str, fields: Sequence[str] | None,
                      separator: str | None, header: bool, cl: Any = None) -> int:
    """Describe the fields of ``resource`` (all, or those named); exit code."""
    if cl is None:
        cl = base.GetClient()
    response = cl.QueryFields(resource, list(fields) if fields else None)
    fdefs = ResponseFields(response)
    found_unknown = _WarnUnknownFields(fdefs)
    columns = [TableColumn(title, str, False)
               for title in ("Name", "Type", "Title", "Description")]
    rows = [[fdef.name, QFT_NAMES.get(fdef.kind, fdef.kind), fdef.title,
             fdef.doc] for fdef in fdefs]
    for line in FormatTable(rows, columns, header, separator):
        ToStdout(line)
    return constants.EXIT_UNKNOWN_FIELD if found_unknown else constants.EXIT_SUCCESS


def ListCommand(resource: str, default_fields: Sequence[str],
                format_override: Mapping[str, Formatter] | None = None
                ) -> Callable[[Any, list[str]], int]:
    """The ``list`` command of a gnt-* tool for ``resource``: its ``-o``
    fields (default ``default_fields``), ``--units``, ``--separator``,
    ``--no-headers``, ``-v`` and ``-F`` options, names or a filter as
    arguments."""
    def _List(opts: Any, args: list[str]) -> int:
        fields = ParseFields(opts.output, default_fields)
        return GenericList(resource, fields, args, opts.units, opts.separator,
                           not opts.no_headers, format_override=format_override,
                           verbose=opts.verbose, force_filter=opts.force_filter)
    return _List


def ListFieldsCommand(resource: str) -> Callable[[Any, list[str]], int]:
    """The ``list-fields`` command of a gnt-* tool for ``resource``."""
    def _ListFields(opts: Any, args: list[str]) -> int:
        return GenericListFields(resource, args, opts.separator, not opts.no_headers)
    return _ListFields


# --- "info" output -------------------------------------------------------------------

#: An info item: a value, a mapping, or a list of (key, value) pairs
InfoData = Any


def _IsPairList(value: Any) -> bool:
    return (isinstance(value, list) and bool(value)
            and all(isinstance(item, tuple) and len(item) == 2
                    and isinstance(item[0], str) for item in value))


def _FormatScalar(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_FormatScalar(v) for v in value) + "]"
    return str(value)


def _InfoLines(data: InfoData, indent: int) -> list[str]:
    """Lines of a pair list or mapping, each key at ``indent`` spaces."""
    pad = " " * indent
    items = data if _IsPairList(data) else sorted(data.items())
    lines: list[str] = []
    for key, value in items:
        if _IsPairList(value) or (isinstance(value, Mapping) and value):
            lines.append(f"{pad}{key}: ")
            lines.extend(_InfoLines(value, indent + 2))
        elif (isinstance(value, list) and value
              and all(_IsPairList(v) or isinstance(v, Mapping) for v in value)):
            lines.append(f"{pad}{key}: ")
            lines.extend(_InfoListLines(value, indent + 2))
        else:
            lines.append(f"{pad}{key}: {_FormatScalar(value)}")
    return lines


def _InfoListLines(items: Sequence[InfoData], indent: int) -> list[str]:
    """Lines of a list of items, each starting with "- "."""
    lines: list[str] = []
    for item in items:
        sub = _InfoLines(item, indent + 2)
        if sub:
            sub[0] = " " * indent + "- " + sub[0][indent + 2:]
        lines.extend(sub)
    return lines


def FormatGenericInfo(data: Sequence[InfoData]) -> list[str]:
    """Lines of the YAML-like "info" layout for a list of items.

    Each item is a list of (key, value) pairs (kept in order) or a mapping
    (sorted by key); values that are such items, or lists of them, nest.
    """
    return _InfoListLines(data, 0)


def FormatParamsDictInfo(custom: Any, filled: Any) -> list[tuple[str, str]]:
    """Parameters for an ``info`` listing: ``(key, value)`` where the object
    sets the key itself, ``(key, "default (value)")`` where it inherits it.

    ``filled`` holds every effective value, ``custom`` the object's own ones;
    anything that is not a dict counts as empty.
    """
    custom = custom if isinstance(custom, dict) else {}
    filled = filled if isinstance(filled, dict) else {}
    return [(str(key), str(value) if key in custom else f"default ({value})")
            for key, value in sorted(filled.items())]


def PrintGenericInfo(data: Sequence[InfoData]) -> None:
    """Print :func:`FormatGenericInfo` of ``data``."""
    for line in FormatGenericInfo(data):
        ToStdout(line)
