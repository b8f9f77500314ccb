"""Ganeti's query language filters, compiled into predicates.

A filter is a nested list whose first element is the operator (the syntax
and the operator names are Ganeti's, see ganeti(7), "Query filters")::

  ["|", f1, f2, ...]      any of the filters holds (none: false)
  ["&", f1, f2, ...]      all of them hold (none: true)
  ["!", f]                f does not hold
  ["?", field]            the field's value is true (not empty, not zero)
  ["=", field, value]     equal ("==" is the older spelling)
  ["!=", field, value]    not equal
  ["<", field, value]     also "<=", ">" and ">="
  ["=~", field, regexp]   the (text) value matches the regular expression
  ["=[]", field, value]   the (list) value contains the value

Filters are checked completely when compiled: an unknown operator or field,
a wrong number of operands, a value of the wrong type for the field, or a bad
regular expression raise :class:`errors.QueryFilterParseError`, whose
message names the offending part and whose second argument is that part.
At evaluation a field without a normal value (an unknown job, a missing
timestamp) never equals, orders or matches anything.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ganeti import errors, utils
from ganeti.query.fields import (
    KIND_CHECKS,
    QFF_HOSTNAME,
    QFF_JOB_ID,
    QFF_SPLIT_TIMESTAMP,
    FieldDefinition,
    FieldStatus,
)

OP_OR = "|"
OP_AND = "&"
OP_NOT = "!"
OP_TRUE = "?"
OP_EQUAL = "="
OP_EQUAL_LEGACY = "=="
OP_NOT_EQUAL = "!="
OP_LT = "<"
OP_LE = "<="
OP_GT = ">"
OP_GE = ">="
OP_REGEXP = "=~"
OP_CONTAINS = "=[]"

LOGIC_OPS = frozenset([OP_OR, OP_AND])
UNARY_OPS = frozenset([OP_NOT, OP_TRUE])
EQUALITY_OPS = frozenset([OP_EQUAL, OP_EQUAL_LEGACY, OP_NOT_EQUAL])
ORDER_OPS = frozenset([OP_LT, OP_LE, OP_GT, OP_GE])
BINARY_OPS = EQUALITY_OPS | ORDER_OPS | frozenset([OP_REGEXP, OP_CONTAINS])
ALL_OPS = LOGIC_OPS | UNARY_OPS | BINARY_OPS

#: How deeply filters may nest (as Ganeti)
MAX_DEPTH = 10

#: ``predicate(ctx, item) -> bool``
Predicate = Callable[[Any, Any], bool]
#: ``test(value) -> bool`` for one field value
_Test = Callable[[Any], bool]


def _show(part: Any) -> str:
    """A short, readable rendering of (part of) a filter for messages."""
    try:
        text = json.dumps(part, default=repr)
    except (TypeError, ValueError, RecursionError):
        text = f"<{type(part).__name__}>"
    return text if len(text) <= 200 else text[:197] + "..."


def _error(message: str, part: Any) -> errors.QueryFilterParseError:
    return errors.QueryFilterParseError(f"{message} (in {_show(part)})", part)


def ParseJobId(value: Any) -> int:
    """A job id from an int or a string of digits; ValueError otherwise."""
    if isinstance(value, bool):
        raise ValueError(f"Invalid job ID {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"Invalid job ID {value!r}")
        return value
    if isinstance(value, str) and value.isdigit() and value.isascii():
        return int(value)
    raise ValueError(f"Invalid job ID {value!r}")


def MergeTime(value: Any) -> float:
    """Seconds as a float from a ``[sec, usec]`` pair or a plain number."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if (isinstance(value, (list, tuple)) and len(value) == 2
            and all(isinstance(part, (int, float)) and not isinstance(part, bool)
                    for part in value)):
        return value[0] + value[1] / 1e6
    raise ValueError(f"Invalid timestamp {value!r}: expected seconds or"
                     " [seconds, microseconds]")


def _normalize(value: Any) -> Any:
    """Tuples become lists, recursively, so that wire and memory data compare."""
    if isinstance(value, (list, tuple)):
        return [_normalize(element) for element in value]
    if isinstance(value, dict):
        return {key: _normalize(element) for key, element in value.items()}
    return value


def _same(lhs: Any, rhs: Any) -> bool:
    """Equality as JSON sees it: tuples equal lists, booleans are not numbers."""
    if isinstance(lhs, (list, tuple)):
        return (isinstance(rhs, (list, tuple)) and len(lhs) == len(rhs)
                and all(_same(left, right) for left, right in zip(lhs, rhs)))
    if isinstance(lhs, dict):
        return (isinstance(rhs, dict) and lhs.keys() == rhs.keys()
                and all(_same(value, rhs[key]) for key, value in lhs.items()))
    if isinstance(rhs, (list, tuple, dict)):
        return False
    if isinstance(lhs, bool) != isinstance(rhs, bool):
        return False
    return bool(lhs == rhs)


def _equal(lhs: Any, rhs: Any) -> bool:
    return not isinstance(lhs, FieldStatus) and _same(lhs, rhs)


def _ordered(compare: Callable[[Any, Any], Any], rhs: Any) -> _Test:
    def test(lhs: Any) -> bool:
        if isinstance(lhs, FieldStatus):
            return False
        try:
            return bool(compare(_normalize(lhs), rhs))
        except TypeError:  # e.g. a list against a number: no order
            return False
    return test


def _contains(rhs: Any) -> _Test:
    def test(lhs: Any) -> bool:
        if isinstance(lhs, (list, tuple)):
            return any(_equal(element, rhs) for element in lhs)
        if isinstance(lhs, str):
            return isinstance(rhs, str) and rhs in lhs
        if isinstance(lhs, dict):
            try:
                return rhs in lhs
            except TypeError:  # an unhashable value is no key
                return False
        return False
    return test


def _hostname_equal(rhs: str) -> _Test:
    def test(lhs: Any) -> bool:
        return (isinstance(lhs, str) and
                utils.MatchNameComponent(rhs, [lhs], case_sensitive=False) is not None)
    return test


def _on_timestamp(test: _Test) -> _Test:
    def wrapped(lhs: Any) -> bool:
        try:
            seconds = MergeTime(lhs)
        except ValueError:  # no timestamp (a special status, None)
            return False
        return test(seconds)
    return wrapped


_ORDER_FNS: dict[str, Callable[[Any, Any], Any]] = {
    OP_LT: lambda lhs, rhs: lhs < rhs,
    OP_LE: lambda lhs, rhs: lhs <= rhs,
    OP_GT: lambda lhs, rhs: lhs > rhs,
    OP_GE: lambda lhs, rhs: lhs >= rhs,
}


@dataclass(frozen=True)
class CompiledFilter:
    """A checked filter: call it as ``filter(ctx, item)``.

    ``fields`` are the names of the fields it reads and ``data`` their data
    kinds (see ``FieldDefinition.data``); ``requested_names`` is the list of
    values of the name field the filter can match when it is a plain
    "name is one of" filter, else None (every item must be looked at).
    """

    predicate: Predicate
    fields: frozenset[str]
    data: frozenset[Any]
    requested_names: list[Any] | None

    def __call__(self, ctx: Any, item: Any) -> bool:
        return self.predicate(ctx, item)


class _Compiler:
    """Turns one filter into a predicate, remembering the fields it reads."""

    def __init__(self, fields: Callable[[str], FieldDefinition | None]) -> None:
        self._lookup = fields
        self.used: dict[str, FieldDefinition] = {}

    def compile(self, qfilter: Any, depth: int) -> Predicate:
        if not isinstance(qfilter, (list, tuple)) or not qfilter:
            raise _error(f"Invalid filter on level {depth}: expected a non-empty"
                         " list [operator, operands...]", qfilter)
        if depth >= MAX_DEPTH:
            # only the operator: the rest may be nested arbitrarily deep
            raise _error(f"Filter nested too deeply (at most {MAX_DEPTH} levels)",
                         [qfilter[0], "..."])
        op, operands = qfilter[0], list(qfilter[1:])
        if not isinstance(op, str) or op not in ALL_OPS:
            raise _error(f"Unknown filter operator {_show(op)}; known operators are "
                         + " ".join(sorted(ALL_OPS)), qfilter)
        if op in LOGIC_OPS:
            return self._logic(op, operands, depth)
        if op in UNARY_OPS:
            return self._unary(op, operands, qfilter, depth)
        return self._binary(op, operands, qfilter)

    def _field(self, name: Any, part: Any) -> FieldDefinition:
        fdef = self._lookup(name) if isinstance(name, str) else None
        if fdef is None:
            raise _error(f"Unknown field {_show(name)} in filter", part)
        self.used[fdef.name] = fdef
        return fdef

    def _logic(self, op: str, operands: list[Any], depth: int) -> Predicate:
        subs = [self.compile(sub, depth + 1) for sub in operands]
        combine = any if op == OP_OR else all

        def predicate(ctx: Any, item: Any) -> bool:
            return combine(sub(ctx, item) for sub in subs)
        return predicate

    def _unary(self, op: str, operands: list[Any], part: Any, depth: int) -> Predicate:
        if len(operands) != 1:
            raise _error(f"Operator '{op}' expects exactly one operand,"
                         f" got {len(operands)}", part)
        if op == OP_NOT:
            inner = self.compile(operands[0], depth + 1)
            return lambda ctx, item: not inner(ctx, item)
        getter = self._field(operands[0], part).getter

        def predicate(ctx: Any, item: Any) -> bool:
            value = getter(ctx, item)
            return not isinstance(value, FieldStatus) and bool(value)
        return predicate

    def _binary(self, op: str, operands: list[Any], part: Any) -> Predicate:
        if len(operands) != 2:
            raise _error(f"Operator '{op}' expects a field name and a value,"
                         f" got {len(operands)} operand(s)", part)
        name, value = operands
        fdef = self._field(name, part)
        test = self._make_test(op, fdef, value, part)
        getter = fdef.getter
        return lambda ctx, item: test(getter(ctx, item))

    def _make_test(self, op: str, fdef: FieldDefinition, value: Any,
                   part: Any) -> _Test:
        if op == OP_REGEXP:
            return self._regexp_test(fdef, value, part)
        if fdef.flags & QFF_SPLIT_TIMESTAMP and op != OP_CONTAINS:
            try:
                seconds = MergeTime(value)
            except ValueError as err:
                raise _error(f"Cannot compare field '{fdef.name}': {err}", part) from None
            return _on_timestamp(self._value_test(op, seconds))
        if fdef.flags & QFF_JOB_ID and op != OP_CONTAINS:
            try:
                value = ParseJobId(value)
            except ValueError as err:
                raise _error(f"Cannot compare field '{fdef.name}': {err}", part) from None
        self._check_kind(fdef, value, part)
        if fdef.flags & QFF_HOSTNAME and op in EQUALITY_OPS:
            test = _hostname_equal(value)
            return (lambda lhs: not test(lhs)) if op == OP_NOT_EQUAL else test
        return self._value_test(op, value)

    @staticmethod
    def _value_test(op: str, value: Any) -> _Test:
        if op in (OP_EQUAL, OP_EQUAL_LEGACY):
            return lambda lhs: _equal(lhs, value)
        if op == OP_NOT_EQUAL:
            return lambda lhs: not _equal(lhs, value)
        if op in ORDER_OPS:
            return _ordered(_ORDER_FNS[op], _normalize(value))
        assert op == OP_CONTAINS
        return _contains(value)

    @staticmethod
    def _check_kind(fdef: FieldDefinition, value: Any, part: Any) -> None:
        check, expected = KIND_CHECKS[fdef.kind]
        if not check(value):
            raise _error(f"Cannot compare field '{fdef.name}' (kind {fdef.kind})"
                         f" with {_show(value)} ({type(value).__name__}):"
                         f" expected {expected}", part)

    def _regexp_test(self, fdef: FieldDefinition, value: Any, part: Any) -> _Test:
        if not isinstance(value, str):
            raise _error(f"The regular expression for field '{fdef.name}' must be"
                         f" a string, got {_show(value)}", part)
        self._check_kind(fdef, value, part)
        try:
            pattern = re.compile(value)
        except re.error as err:
            raise _error(f"Invalid regular expression {value!r} for field"
                         f" '{fdef.name}': {err}", part) from None
        return lambda lhs: isinstance(lhs, str) and pattern.search(lhs) is not None


def _unique(values: list[Any]) -> list[Any]:
    try:
        return utils.UniqueSequence(values)
    except TypeError:  # unhashable values: keep the first of equal ones
        result: list[Any] = []
        for value in values:
            if value not in result:
                result.append(value)
        return result


def _requested_names(qfilter: Any, namefield: str | None,
                     convert: Callable[[Any], Any]) -> list[Any] | None:
    """The rule behind :func:`GetRequestedNames` (values passed to ``convert``)."""
    if namefield is None or qfilter is None:
        return None
    names: list[Any] = []

    def walk(part: Any) -> bool:
        if not isinstance(part, (list, tuple)) or not part:
            return False
        if part[0] == OP_OR:
            return all(walk(sub) for sub in part[1:])
        if (part[0] in (OP_EQUAL, OP_EQUAL_LEGACY) and len(part) == 3
                and part[1] == namefield):
            names.append(convert(part[2]))
            return True
        return False

    if not walk(qfilter) or not names:
        return None
    return _unique(names)


def GetRequestedNames(qfilter: Any, namefield: str) -> list[Any] | None:
    """The names a filter selects, when it only selects by name.

    A filter made only of "or" and "``namefield`` equals value" (such as
    the one :func:`MakeSimpleFilter` builds) can match only those values,
    so the caller needs to load only those items. Returns the values
    (duplicates removed, order kept), or None when the filter is anything
    else and every item must be looked at.
    """
    return _requested_names(qfilter, namefield, lambda value: value)


def CompileFilter(lookup: Callable[[str], FieldDefinition | None], qfilter: Any,
                  namefield: str | None = None) -> CompiledFilter:
    """Check ``qfilter`` and turn it into a :class:`CompiledFilter`.

    ``lookup(name)`` returns the definition of a field or None (a
    ``FieldTable``'s ``get``). Raises ``errors.QueryFilterParseError``.
    """
    compiler = _Compiler(lookup)
    predicate = compiler.compile(qfilter, 0)
    convert: Callable[[Any], Any] = lambda value: value  # noqa: E731
    if namefield is not None:
        name_def = lookup(namefield)
        if name_def is not None and name_def.flags & QFF_JOB_ID:
            convert = ParseJobId
    return CompiledFilter(
        predicate=predicate,
        fields=frozenset(compiler.used),
        data=frozenset(fdef.data for fdef in compiler.used.values()
                       if fdef.data is not None),
        requested_names=_requested_names(qfilter, namefield, convert))


def MakeSimpleFilter(namefield: str, values: Sequence[Any] | None) -> list[Any] | None:
    """``["|", ["=", namefield, v1], ...]``, or None when ``values`` is empty."""
    if not values:
        return None
    return [OP_OR] + [[OP_EQUAL, namefield, value] for value in values]
