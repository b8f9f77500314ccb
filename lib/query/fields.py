"""Query field definitions: the generic part of every resource's field table.

A field is declared once, as a :class:`FieldDefinition`: its name (what
users type after ``-o``), a title for table headers, a kind (one of the
``constants.QFT_*``), a one-line description, and a getter. The getter is
called as ``getter(ctx, item)`` where ``item`` is one row of the resource
(a job, a lock, ...) and ``ctx`` is whatever the resource's collector
returns alongside its items (shared data such as the cluster object). A
getter returns the value, or one of the special statuses :data:`UNKNOWN`,
:data:`NODATA`, :data:`UNAVAIL` or :data:`OFFLINE` when it has none.

Each resource builds one :class:`FieldTable` from its definitions; the
table checks the definitions when the module is imported, so that a
badly named field fails the test suite rather than a user's query.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from ganeti import constants, errors, utils

#: Every field kind
QFT_ALL = frozenset([constants.QFT_UNKNOWN, constants.QFT_TEXT,
                     constants.QFT_BOOL, constants.QFT_NUMBER,
                     constants.QFT_NUMBER_FLOAT, constants.QFT_UNIT,
                     constants.QFT_TIMESTAMP, constants.QFT_OTHER])

# Field flags: how a filter compares values of the field (as Ganeti's QFF_*)
#: Equality matches host names case-insensitively and by leading components
QFF_HOSTNAME = 0x01
#: The field is a job id: filter values may be given as strings of digits
QFF_JOB_ID = 0x04
#: The value is a ``[seconds, microseconds]`` pair; filters compare it with a
#: number of seconds (or another pair)
QFF_SPLIT_TIMESTAMP = 0x08
QFF_ALL = QFF_HOSTNAME | QFF_JOB_ID | QFF_SPLIT_TIMESTAMP

FIELD_NAME_RE = re.compile(r"^[a-z0-9/._]+$")
TITLE_RE = re.compile(r"^\S+$")
DOC_RE = re.compile(r"^[A-Z].*[^.,?!]$")


class FieldStatus:
    """A special field value: the field has no normal value for this item."""

    __slots__ = ("status", "label")

    def __init__(self, status: int, label: str) -> None:
        self.status = status
        self.label = label

    def __repr__(self) -> str:
        return f"<field status {self.label}>"


#: The field is not known
UNKNOWN = FieldStatus(constants.RS_UNKNOWN, "unknown")
#: No data was collected for the field (e.g. a node did not answer)
NODATA = FieldStatus(constants.RS_NODATA, "nodata")
#: The value is not available (e.g. an unknown job, a missing timestamp)
UNAVAIL = FieldStatus(constants.RS_UNAVAIL, "unavail")
#: The item lives on an offline node
OFFLINE = FieldStatus(constants.RS_OFFLINE, "offline")


def IsSpecial(value: Any) -> bool:
    """Whether ``value`` is one of the special statuses, not a real value."""
    return isinstance(value, FieldStatus)


def ToResult(value: Any) -> list[Any]:
    """Turn a getter's answer into the ``[status, value]`` pair of a row."""
    if isinstance(value, FieldStatus):
        return [value.status, None]
    return [constants.RS_NORMAL, value]


def ToPlain(value: Any) -> Any:
    """A getter's answer as a plain value: None for the special statuses."""
    if isinstance(value, FieldStatus):
        return None
    return value


Getter = Callable[[Any, Any], Any]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


#: What a normal value of each kind must look like (also used for filter
#: operands), with a description for error messages
KIND_CHECKS: dict[str, tuple[Callable[[Any], bool], str]] = {
    constants.QFT_UNKNOWN: (lambda value: value is None, "nothing"),
    constants.QFT_TEXT: (lambda value: isinstance(value, str), "a string"),
    constants.QFT_BOOL: (lambda value: isinstance(value, bool), "a boolean"),
    constants.QFT_NUMBER: (_is_int, "an integer"),
    constants.QFT_NUMBER_FLOAT: (_is_number, "a number"),
    constants.QFT_UNIT: (_is_int, "an integer"),
    constants.QFT_TIMESTAMP: (_is_number, "a number"),
    constants.QFT_OTHER: (lambda value: True, "anything"),
}


def _unknown_getter(ctx: Any, item: Any) -> Any:
    return UNKNOWN


@dataclass(frozen=True)
class FieldDefinition:
    """One query field: name, title, kind (``QFT_*``), doc and getter.

    ``flags`` are ``QFF_*`` bits changing how filters compare the field;
    ``data`` names the kind of data the getter needs, so that a resource
    collects only what the selected fields and the filter use (None: the
    item itself is enough).
    """

    name: str
    title: str
    kind: str
    doc: str
    getter: Getter = field(compare=False)
    flags: int = 0
    data: Any = None

    def ToDict(self) -> dict[str, str]:
        """The wire form: Ganeti's ``QueryFieldDefinition`` dict."""
        return {"name": self.name, "title": self.title, "kind": self.kind,
                "doc": self.doc}

    def Get(self, ctx: Any, item: Any) -> Any:
        """The value (or special status) of this field for ``item``."""
        return self.getter(ctx, item)


def MakeUnknownField(name: str) -> FieldDefinition:
    """The placeholder for a requested field the resource does not have."""
    return FieldDefinition(name, name, constants.QFT_UNKNOWN,
                           f"Unknown field '{name}'", _unknown_getter)


def _check_definition(resource: str, fdef: FieldDefinition) -> None:
    """Raise ProgrammerError when a definition breaks the naming rules."""
    problems = []
    if not FIELD_NAME_RE.match(fdef.name):
        problems.append(f"name must match {FIELD_NAME_RE.pattern}")
    if not TITLE_RE.match(fdef.title):
        problems.append(f"title {fdef.title!r} must be one word")
    if (not DOC_RE.match(fdef.doc) or "\n" in fdef.doc
            or fdef.doc.strip() != fdef.doc):
        problems.append("doc must be one line starting with a capital letter"
                        " and not ending in punctuation")
    if fdef.kind not in QFT_ALL or fdef.kind == constants.QFT_UNKNOWN:
        problems.append(f"kind {fdef.kind!r} is not a field kind")
    if fdef.flags & ~QFF_ALL:
        problems.append(f"unknown flags {fdef.flags:#x}")
    if not callable(fdef.getter):
        problems.append("getter is not callable")
    if problems:
        raise errors.ProgrammerError(
            f"Bad {resource} query field {fdef.name!r}: {'; '.join(problems)}")


class FieldTable(Mapping[str, FieldDefinition]):
    """The fields of one resource, by name, checked when built.

    ``aliases`` are ``(alias, target)`` pairs: the alias is a copy of the
    target field under another name.
    """

    def __init__(self, resource: str, definitions: Iterable[FieldDefinition],
                 aliases: Iterable[tuple[str, str]] = ()) -> None:
        self.resource = resource
        fields: dict[str, FieldDefinition] = {}
        definitions = list(definitions)
        for fdef in definitions:
            _check_definition(resource, fdef)
            if fdef.name in fields:
                raise errors.ProgrammerError(
                    f"Duplicate {resource} query field {fdef.name!r}")
            fields[fdef.name] = fdef
        titles = utils.FindDuplicates(fdef.title.lower() for fdef in definitions)
        if titles:
            raise errors.ProgrammerError(
                f"Duplicate {resource} query field titles: {utils.CommaJoin(titles)}")
        for alias, target in aliases:
            if alias in fields or target not in fields:
                raise errors.ProgrammerError(
                    f"Bad {resource} query field alias {alias!r} -> {target!r}")
            fields[alias] = replace(fields[target], name=alias)
            _check_definition(resource, fields[alias])
        self._fields = fields

    def __getitem__(self, name: str) -> FieldDefinition:
        return self._fields[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._fields)

    def __len__(self) -> int:
        return len(self._fields)

    def Select(self, names: Sequence[str]) -> list[FieldDefinition]:
        """The definitions of ``names`` in order; unknown names get a
        placeholder of kind ``QFT_UNKNOWN`` whose values are ``RS_UNKNOWN``."""
        return [self._fields.get(name) or MakeUnknownField(name)
                for name in names]

    def AllSorted(self) -> list[FieldDefinition]:
        """Every field, in natural order of the names."""
        return utils.NiceSort(self._fields.values(), key=lambda fdef: fdef.name)

    def Unknown(self, names: Iterable[str]) -> list[str]:
        """The names in ``names`` that are not fields of this resource."""
        return [name for name in names if name not in self._fields]
