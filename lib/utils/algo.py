"""Small algorithms on sequences and dicts, natural sorting, timeouts."""

from __future__ import annotations

import functools
import operator
import re
import time
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

from ganeti import errors

__all__ = [
    "FindDuplicates",
    "FirstFree",
    "FlatToDict",
    "InvertDict",
    "JoinDisjointDicts",
    "NiceSort",
    "NiceSortKey",
    "RunningTimeout",
    "SequenceToDict",
    "TimeoutExpired",
    "UniqueSequence",
]

T = TypeVar("T")
H = TypeVar("H", bound=Hashable)

_DIGITS_RE = re.compile(r"(\d+)", re.ASCII)


def UniqueSequence(seq: Iterable[H]) -> list[H]:
    """Return the items of ``seq`` without repeats, in first-seen order."""
    return list(dict.fromkeys(seq))


def FindDuplicates(seq: Iterable[H]) -> list[H]:
    """Return the items that occur more than once, each once, in order."""
    seen: set[H] = set()
    dups: dict[H, None] = {}
    for item in seq:
        if item in seen:
            dups[item] = None
        else:
            seen.add(item)
    return list(dups)


def JoinDisjointDicts(dict_a: Mapping[Any, Any],
                      dict_b: Mapping[Any, Any]) -> dict[Any, Any]:
    """Merge two dicts that must not share keys.

    @raise errors.ProgrammerError: if they share keys
    """
    common = set(dict_a) & set(dict_b)
    if common:
        raise errors.ProgrammerError("Dicts are not disjoint, common keys: " +
                                     ", ".join(sorted(map(str, common))))
    result = dict(dict_a)
    result.update(dict_b)
    return result


def SequenceToDict(seq: Iterable[T],
                   key: Callable[[T], Any] | None = None) -> dict[Any, T]:
    """Index ``seq`` by ``key(item)`` (by default the item's first element).

    @raise ValueError: if two items have the same key
    """
    keyfn: Callable[[Any], Any] = operator.itemgetter(0) if key is None else key
    result: dict[Any, T] = {}
    dups = []
    for item in seq:
        item_key = keyfn(item)
        if item_key in result:
            dups.append(item_key)
        result[item_key] = item
    if dups:
        raise ValueError("Duplicate keys found: " +
                         ", ".join(map(str, UniqueSequence(dups))))
    return result


def FlatToDict(data: Mapping[str, Any], field_sep: str = "/") -> dict[str, Any]:
    """Turn ``{"a/b": 1, "a/c": 2}`` into ``{"a": {"b": 1, "c": 2}}``.

    @raise ValueError: if a key is both a value and a prefix of another key
    """
    result: dict[str, Any] = {}
    for flat_key, value in data.items():
        *parents, leaf = flat_key.split(field_sep)
        node = result
        for part in parents:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ValueError(f"Key '{flat_key}' conflicts with a value"
                                 f" at '{part}'")
            node = child
        if leaf in node:
            raise ValueError(f"Key '{flat_key}' conflicts with another key")
        node[leaf] = value
    return result


def InvertDict(data: Mapping[Any, H]) -> dict[H, Any]:
    """Swap keys and values (values must be unique and hashable).

    @raise ValueError: if two keys share a value
    """
    result: dict[H, Any] = {}
    for key, value in data.items():
        if value in result:
            raise ValueError(f"Value {value!r} occurs more than once")
        result[value] = key
    return result


@functools.lru_cache(maxsize=1 << 16)
def NiceSortKey(value: str) -> tuple[tuple[Any, ...], str]:
    """Sort key for natural order: digit runs compare as numbers.

    The original string breaks ties ("node01" and "node1" compare equal by
    number), so the order is total and stable across runs. Memoised: the
    same names (of instances, nodes) are sorted again on every
    configuration push.
    """
    parts = _DIGITS_RE.split(value)
    # re.split alternates text and digits, starting with (maybe empty) text
    converted = tuple(int(part) if idx % 2 else part
                      for idx, part in enumerate(parts))
    return (converted, value)


def NiceSort(values: Iterable[T], key: Callable[[T], str] | None = None
             ) -> list[T]:
    """Sort strings naturally: "node2" comes before "node10".

    ``key`` extracts the string to compare from each item.
    """
    if key is None:
        return sorted(values, key=NiceSortKey)  # type: ignore[arg-type]
    keyfn = key
    return sorted(values, key=lambda item: NiceSortKey(keyfn(item)))


def FirstFree(seq: Sequence[int], base: int = 0) -> int | None:
    """Return the first integer from ``base`` upwards missing in ``seq``.

    ``seq`` must be sorted and hold no values below ``base``. As in Ganeti,
    None is returned when ``seq`` has no gap (the caller then uses the next
    value after the last, e.g. ``len(seq) + base``).

    @raise ValueError: if ``seq`` holds a value below ``base``
    """
    for idx, elem in enumerate(seq):
        if elem < base:
            raise ValueError(f"Element {elem} is below the base {base}")
        if elem > idx + base:
            return idx + base
    return None


def TimeoutExpired(epoch: float, timeout: float,
                   _time_fn: Callable[[], float] = time.time) -> bool:
    """Whether more than ``timeout`` seconds have passed since ``epoch``."""
    return _time_fn() > epoch + timeout


class RunningTimeout:
    """A timeout that counts down from the moment it is created.

    ``RunningTimeout(30, False).Remaining()`` gives the seconds left, never
    below zero unless ``allow_negative``; a timeout of None never expires
    and Remaining() returns None.
    """

    def __init__(self, timeout: float | None, allow_negative: bool,
                 _time_fn: Callable[[], float] = time.time):
        if timeout is not None and timeout < 0:
            raise ValueError(f"Timeout must not be negative, got {timeout}")
        self._timeout = timeout
        self._allow_negative = allow_negative
        self._time_fn = _time_fn
        self._start_time = _time_fn()

    def Remaining(self) -> float | None:
        """Seconds left (None for an endless timeout)."""
        if self._timeout is None:
            return None
        remaining = self._timeout - (self._time_fn() - self._start_time)
        if not self._allow_negative:
            remaining = max(0.0, remaining)
        return remaining

    def Expired(self) -> bool:
        """Whether no time is left."""
        remaining = self.Remaining()
        return remaining is not None and remaining <= 0
