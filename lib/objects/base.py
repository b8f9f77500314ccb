"""The base of every configuration object: fields, dict form, tags.

A config object declares its fields as annotated class attributes::

    class Node(TaggableObject):
        name: str
        offline: bool

The metaclass turns the annotated names (ClassVar ones excepted) into
``__slots__``, so objects stay small (a cluster holds thousands of them) and a
typo in an attribute name fails loudly. Every field exists on every object;
a field that was never given is None, as in Ganeti. The annotations state
what a field holds once :meth:`ConfigObject.UpgradeConfig` has filled the
defaults in.

The dict form (:meth:`ConfigObject.ToDict`) is what config.data, RPC and luxi
carry: plain JSON types only, None fields left out, sets written as sorted
lists.
"""

from __future__ import annotations

import copy
import re
import time
import uuid as _uuid_mod
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar, TypeVar

from ganeti import constants, errors

_T = TypeVar("_T", bound="ConfigObject")

# Every config object class by name, so that child declarations may name a
# class defined later (Disk.children holds Disks)
_REGISTRY: dict[str, type[ConfigObject]] = {}

# Child containers: how a field holding config objects is laid out
CHILD_ONE = "one"
CHILD_LIST = "list"
CHILD_DICT = "dict"


def GenerateUUID() -> str:
    """Return a new random UUID as a string."""
    return str(_uuid_mod.uuid4())


def FillDict(defaults: Mapping[str, Any], custom: Mapping[str, Any] | None,
             skip_keys: Iterable[str] | None = None) -> dict[str, Any]:
    """Return ``defaults`` overridden by ``custom``, as a new dict.

    The defaults are deep-copied so that changing the result never changes
    them; keys in ``skip_keys`` are left out of the result.
    """
    result = copy.deepcopy(dict(defaults))
    if custom:
        result.update(custom)
    if skip_keys:
        for key in skip_keys:
            result.pop(key, None)
    return result


def _IsClassVar(annotation: Any) -> bool:
    """Tell whether an annotation (a string, as we use PEP 563) is a ClassVar."""
    text = annotation if isinstance(annotation, str) else repr(annotation)
    return text.startswith(("ClassVar", "typing.ClassVar"))


_SCALAR_TYPES = frozenset([str, int, float, bool, type(None)])


def _ToPlain(value: Any) -> Any:
    """Convert a field value to plain JSON-able types, recursively."""
    # Exact type checks first: this runs for every value of every object
    # on each save, and nearly all values are scalars or plain containers
    vtype = type(value)
    if vtype in _SCALAR_TYPES:
        return value
    if vtype is dict:
        return {key: item if type(item) in _SCALAR_TYPES else _ToPlain(item)
                for key, item in value.items()}
    if vtype is list or vtype is tuple:
        return [item if type(item) in _SCALAR_TYPES else _ToPlain(item)
                for item in value]
    if isinstance(value, ConfigObject):
        return value.ToDict()
    if isinstance(value, (set, frozenset)):
        try:
            return sorted(value)
        except TypeError:
            return sorted(value, key=repr)
    if isinstance(value, (list, tuple)):
        return [_ToPlain(item) for item in value]
    if isinstance(value, dict):
        return {key: _ToPlain(item) for key, item in value.items()}
    return value


class _ConfigObjectMeta(type):
    """Makes ``__slots__`` out of the annotated fields of each class."""

    def __new__(mcs, name: str, bases: tuple[type, ...],
                namespace: dict[str, Any], **kwargs: Any) -> _ConfigObjectMeta:
        annotations = namespace.get("__annotations__", {})
        own = tuple(field for field, ann in annotations.items()
                    if not _IsClassVar(ann))
        namespace["__slots__"] = own
        cls = super().__new__(mcs, name, bases, namespace, **kwargs)
        inherited: list[str] = []
        for base in reversed(cls.__mro__[1:]):
            for field in getattr(base, "_own_fields", ()):
                if field not in inherited:
                    inherited.append(field)
        cls._own_fields = own  # type: ignore[attr-defined]
        cls._fields = tuple(inherited) + own  # type: ignore[attr-defined]
        cls._field_set = frozenset(cls._fields)  # type: ignore[attr-defined]
        _REGISTRY[name] = cls  # type: ignore[assignment]
        return cls


class ConfigObject(metaclass=_ConfigObjectMeta):
    """A configuration object: named fields, a dict form, deep copies.

    Subclasses declare:

    - their fields, as annotations;
    - ``_CHILDREN``: fields holding config objects, as
      ``{field: (CHILD_ONE | CHILD_LIST | CHILD_DICT, "ClassName")}``;
    - ``_SET_FIELDS``: fields held as sets in memory, lists in the dict form;
    - ``_RUNTIME_FIELDS``: fields computed at run time and never serialised.
    """

    _fields: ClassVar[tuple[str, ...]]
    _field_set: ClassVar[frozenset[str]]
    _own_fields: ClassVar[tuple[str, ...]]
    _CHILDREN: ClassVar[dict[str, tuple[str, str]]] = {}
    _SET_FIELDS: ClassVar[frozenset[str]] = frozenset()
    _RUNTIME_FIELDS: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, **kwargs: Any) -> None:
        for name in self._fields:
            setattr(self, name, kwargs.pop(name, None))
        if kwargs:
            raise TypeError(f"{type(self).__name__} has no field(s) "
                            f"{', '.join(sorted(kwargs))}")

    @classmethod
    def GetAllFields(cls) -> tuple[str, ...]:
        """Return the names of all fields of this class, in order."""
        return cls._fields

    def ToDict(self) -> dict[str, Any]:
        """Return the dict form: plain types only, None fields left out."""
        result: dict[str, Any] = {}
        for name in self._fields:
            if name in self._RUNTIME_FIELDS:
                continue
            value = getattr(self, name)
            if value is not None:
                result[name] = _ToPlain(value)
        return result

    @classmethod
    def FromDict(cls: type[_T], val: Any) -> _T:
        """Build an object from its dict form.

        Raises ConfigurationError, naming the class, when ``val`` is not a
        dict or holds a key that is not a field of the class. Nested values
        are taken over, not copied.
        """
        if not isinstance(val, dict):
            raise errors.ConfigurationError(
                f"Invalid value for a {cls.__name__} object: expected a dict,"
                f" got {type(val).__name__}")
        unknown = [key for key in val if key not in cls._field_set]
        if unknown:
            raise errors.ConfigurationError(
                f"Unknown field(s) {', '.join(sorted(map(str, unknown)))}"
                f" in a {cls.__name__} object")
        kwargs = {key: cls._FieldFromPlain(key, value)
                  for key, value in val.items()}
        return cls(**kwargs)

    @classmethod
    def _FieldFromPlain(cls, name: str, value: Any) -> Any:
        """Convert one field from its dict form to its in-memory form."""
        if value is None:
            return None
        child = cls._CHILDREN.get(name)
        if child is not None:
            kind, class_name = child
            child_cls = _REGISTRY[class_name]
            if kind == CHILD_ONE:
                return child_cls.FromDict(value)
            if kind == CHILD_LIST:
                if not isinstance(value, list):
                    raise errors.ConfigurationError(
                        f"Field '{name}' of a {cls.__name__} object must be a"
                        f" list, got {type(value).__name__}")
                return [child_cls.FromDict(item) for item in value]
            if not isinstance(value, dict):
                raise errors.ConfigurationError(
                    f"Field '{name}' of a {cls.__name__} object must be a"
                    f" dict, got {type(value).__name__}")
            return {key: child_cls.FromDict(item)
                    for key, item in value.items()}
        if name in cls._SET_FIELDS:
            if not isinstance(value, (list, tuple, set, frozenset)):
                raise errors.ConfigurationError(
                    f"Field '{name}' of a {cls.__name__} object must be a"
                    f" list, got {type(value).__name__}")
            return set(value)
        return value

    def Copy(self: _T) -> _T:
        """Return a deep copy, run-time fields included."""
        clone = self.__class__.FromDict(self.ToDict())
        for name in self._RUNTIME_FIELDS:
            setattr(clone, name, copy.deepcopy(getattr(self, name)))
        return clone

    def UpgradeConfig(self) -> None:
        """Fill in defaults for fields missing from older configurations.

        Called when a configuration is loaded; must leave an already
        upgraded object unchanged.
        """

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return all(getattr(self, name) == getattr(other, name)
                   for name in self._fields)

    __hash__ = None  # type: ignore[assignment]  # mutable, compared by value

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.ToDict()!r})"

    # Helpers for the common uuid/serial/timestamp fields -----------------

    def _UpgradeCommon(self, uuid: bool = True, serial: bool = True,
                       timestamps: bool = True) -> None:
        """Fill uuid (new), serial_no (1), ctime (0) and mtime (now).

        Only for subclasses that have these fields.
        """
        obj: Any = self
        if uuid and obj.uuid is None:
            obj.uuid = GenerateUUID()
        if serial and obj.serial_no is None:
            obj.serial_no = 1
        if timestamps:
            if obj.ctime is None:
                obj.ctime = 0.0
            if obj.mtime is None:
                obj.mtime = time.time()

    def BumpSerial(self, now: float | None = None) -> None:
        """Increase serial_no by one and set mtime (to now by default).

        Only for subclasses that have these fields.
        """
        obj: Any = self
        obj.serial_no = (obj.serial_no or 0) + 1
        obj.mtime = time.time() if now is None else now


class TaggableObject(ConfigObject):
    """A config object with tags (a set of short strings)."""

    tags: set[str]

    _SET_FIELDS: ClassVar[frozenset[str]] = frozenset(["tags"])
    VALID_TAG_RE: ClassVar[re.Pattern[str]] = re.compile(r"[\w.+*/:@-]+")

    @classmethod
    def ValidateTag(cls, tag: Any) -> None:
        """Raise TagError unless ``tag`` is a valid tag."""
        if not isinstance(tag, str):
            raise errors.TagError(f"Invalid tag {tag!r}: not a string")
        if not tag:
            raise errors.TagError("Tags cannot be empty")
        if len(tag) > constants.MAX_TAG_LEN:
            raise errors.TagError(
                f"Tag '{tag[:20]}...' is too long (more than"
                f" {constants.MAX_TAG_LEN} characters)")
        if not cls.VALID_TAG_RE.fullmatch(tag):
            raise errors.TagError(
                f"Tag '{tag}' contains invalid characters (allowed: letters,"
                " digits and _ . + * / : @ -)")

    def GetTags(self) -> set[str]:
        """Return the set of tags, creating it if needed."""
        if self.tags is None:
            self.tags = set()
        return self.tags

    def AddTag(self, tag: str) -> None:
        """Add a tag after validating it; TagError if invalid or too many."""
        self.ValidateTag(tag)
        tags = self.GetTags()
        if tag not in tags and len(tags) >= constants.MAX_TAGS_PER_OBJ:
            raise errors.TagError(
                f"Too many tags (at most {constants.MAX_TAGS_PER_OBJ})")
        tags.add(tag)

    def RemoveTag(self, tag: str) -> None:
        """Remove a tag; TagError if it is invalid or not present."""
        self.ValidateTag(tag)
        try:
            self.GetTags().remove(tag)
        except KeyError:
            raise errors.TagError(f"Tag '{tag}' not found") from None

    def UpgradeConfig(self) -> None:
        """Make sure the tags are a set."""
        super().UpgradeConfig()
        if self.tags is None:
            self.tags = set()
        elif not isinstance(self.tags, set):
            self.tags = set(self.tags)
