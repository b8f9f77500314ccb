"""Composable, self-describing type checks.

A check is a callable ``fn(value) -> bool`` that also knows how to describe
what it accepts, so that a failed validation can say what was expected::

    >>> TPositiveInt(-1)
    False
    >>> str(TMaybe(TListOf(TNonEmptyString)))
    'None or list of non-empty string'

Checks are built from a few primitives (:data:`TInt`, :data:`TString`, ...)
with combinators (:func:`TMaybe`, :func:`TOr`, :func:`TAnd`,
:func:`TListOf`, :func:`TDictOf`, :func:`TStrictDict`, :func:`TItems`, ...).
Any plain callable may be used where a check is expected; wrap it with
:func:`WithDesc` to give it a readable description.

Opcode declarations (``ganeti.opcodes``) use these checks for their
parameters and results; :data:`NoDefault` and :data:`NoType` are the
sentinels those declarations use for "required" and "not checked".

Every string a user gives ends somewhere with limits of its own: in DNS,
a kernel call, a file name, a command line. The checks of names, paths
and texts below (:data:`THostname`, :data:`TObjectName`,
:data:`TInterfaceName`, :data:`TNormAbsPath`, :func:`TText`, ...) state
those limits once, so that RAPI, luxi and the command line refuse the
same values before a job is queued. :func:`ShortRepr` renders a refused
value for a message without echoing all of a huge one.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ganeti import constants, errors
from ganeti.utils import io as _io
from ganeti.utils import net as _net

CheckFn = Callable[[Any], bool]


class _Sentinel:
    """A named marker object (used for :data:`NoDefault` and :data:`NoType`)."""

    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    def __repr__(self) -> str:
        return self._name

    def __copy__(self) -> _Sentinel:
        return self

    def __deepcopy__(self, memo: dict) -> _Sentinel:
        return self


#: Default of an opcode parameter that must always be given
NoDefault = _Sentinel("NoDefault")

#: Check of an opcode parameter whose value is never checked
NoType = _Sentinel("NoType")


def EmptyList() -> list:
    """Default factory: a new empty list (never shared between opcodes)."""
    return []


def EmptyDict() -> dict:
    """Default factory: a new empty dict (never shared between opcodes)."""
    return {}


class Check:
    """A type check with a human-readable description.

    ``compound`` marks descriptions built from several parts ("None or
    string"); they get parentheses when nested in another description.
    """

    __slots__ = ("_fn", "_desc", "compound")

    def __init__(self, fn: CheckFn, desc: str, compound: bool = False) -> None:
        self._fn = fn
        self._desc = desc
        self.compound = compound

    def __call__(self, value: Any) -> bool:
        return bool(self._fn(value))

    @property
    def description(self) -> str:
        """What the check accepts, e.g. "positive integer"."""
        return self._desc

    def __str__(self) -> str:
        return self._desc

    def __repr__(self) -> str:
        return f"<ht check: {self._desc}>"


def TypeDescription(fn: Any) -> str:
    """Return the description of a check (or of any callable)."""
    if isinstance(fn, Check):
        return fn.description
    if fn is NoType:
        return "anything (not checked)"
    name = getattr(fn, "__name__", None)
    if name and name != "<lambda>":
        return name
    return repr(fn)


def _Nested(fn: Any) -> str:
    """Description of ``fn`` for use inside another description."""
    desc = TypeDescription(fn)
    if isinstance(fn, Check) and fn.compound:
        return f"({desc})"
    return desc


def WithDesc(desc: str) -> Callable[[CheckFn], Check]:
    """Decorator giving a check (or plain predicate) a description."""
    def wrapper(fn: CheckFn) -> Check:
        return Check(fn, desc)
    return wrapper


def Comment(text: str) -> Callable[[CheckFn], Check]:
    """Decorator adding an explanatory comment to a check's description."""
    def wrapper(fn: CheckFn) -> Check:
        return Check(fn, f"{_Nested(fn)} ({text})")
    return wrapper


# --- Primitive checks ---------------------------------------------------------

def _IsInt(value: Any) -> bool:
    # bool is an int subclass, but True is not a valid memory size
    return isinstance(value, int) and not isinstance(value, bool)


def _IsNumber(value: Any) -> bool:
    return _IsInt(value) or isinstance(value, float)


TAny = Check(lambda _: True, "anything")
TNone = Check(lambda v: v is None, "None")
TNotNone = Check(lambda v: v is not None, "not None")
TBool = Check(lambda v: isinstance(v, bool), "boolean")
TInt = Check(_IsInt, "integer")
TFloat = Check(lambda v: isinstance(v, float), "float")
TNumber = Check(_IsNumber, "number")
TString = Check(lambda v: isinstance(v, str), "string")
TNonEmptyString = Check(lambda v: isinstance(v, str) and bool(v),
                        "non-empty string")
TTrue = Check(bool, "true value")
TFalse = Check(lambda v: not v, "false value")
#: A list; tuples are accepted too, since Python callers build them freely
TList = Check(lambda v: isinstance(v, (list, tuple)), "list")
TTuple = Check(lambda v: isinstance(v, tuple), "tuple")
TDict = Check(lambda v: isinstance(v, dict), "dictionary")
TCallable = Check(callable, "callable")


def TInstanceOf(cls: type) -> Check:
    """Values that are instances of ``cls``."""
    return Check(lambda v: isinstance(v, cls), f"{cls.__name__} object")


def TIsLength(length: int) -> Check:
    """Sized values of exactly ``length`` items."""
    def fn(value: Any) -> bool:
        try:
            return len(value) == length
        except TypeError:
            return False
    return Check(fn, f"length {length}")


# --- Combinators ----------------------------------------------------------------

def TMaybe(fn: CheckFn) -> Check:
    """``None`` or a value accepted by ``fn``."""
    return Check(lambda v: v is None or fn(v), f"None or {_Nested(fn)}",
                 compound=True)


def TOr(*fns: CheckFn) -> Check:
    """Values accepted by at least one of ``fns``."""
    return Check(lambda v: any(fn(v) for fn in fns),
                 " or ".join(_Nested(fn) for fn in fns), compound=True)


def TAnd(*fns: CheckFn) -> Check:
    """Values accepted by all of ``fns`` (checked in order)."""
    return Check(lambda v: all(fn(v) for fn in fns),
                 " and ".join(_Nested(fn) for fn in fns), compound=True)


def TNot(fn: CheckFn) -> Check:
    """Values rejected by ``fn``."""
    return Check(lambda v: not fn(v), f"not {_Nested(fn)}", compound=True)


def _DescribeValues(values: Iterable[Any]) -> str:
    if isinstance(values, range) and values.step == 1 and len(values) > 5:
        return f"integer from {values.start} to {values.stop - 1}"
    try:
        items = sorted(values)
    except TypeError:
        items = list(values)
    if len(items) == 1:
        return repr(items[0])
    return "one of " + ", ".join(repr(v) for v in items)


def TElemOf(values: Iterable[Any]) -> Check:
    """Values that are members of ``values``."""
    if isinstance(values, range):
        valid: Any = values
    else:
        valid = frozenset(values) if not isinstance(values, (set, frozenset)) \
            else values
    desc = _DescribeValues(valid)
    has_bools = any(isinstance(v, bool) for v in valid)

    def fn(value: Any) -> bool:
        if isinstance(value, bool) and not has_bools:
            return False  # True == 1, but True is not a priority
        try:
            return value in valid
        except TypeError:  # unhashable values are never members
            return False
    return Check(fn, desc)


def TListOf(fn: CheckFn) -> Check:
    """Lists (or tuples) whose items are all accepted by ``fn``."""
    return Check(lambda v: isinstance(v, (list, tuple)) and
                 all(fn(item) for item in v), f"list of {_Nested(fn)}")


def TMaybeListOf(fn: CheckFn) -> Check:
    """``None`` or a list whose items are accepted by ``fn``."""
    return TMaybe(TListOf(fn))


def TDictOf(key_fn: CheckFn, val_fn: CheckFn) -> Check:
    """Dicts whose keys pass ``key_fn`` and values pass ``val_fn``."""
    return Check(lambda v: isinstance(v, dict) and
                 all(key_fn(k) and val_fn(val) for k, val in v.items()),
                 f"dictionary with {_Nested(key_fn)} keys and "
                 f"{_Nested(val_fn)} values")


def TStrictDict(require_all: bool, exclusive: bool,
                items: Mapping[str, CheckFn]) -> Check:
    """Dicts with the given keys, each value checked by its own function.

    ``require_all``: every key of ``items`` must be present.
    ``exclusive``: no key outside ``items`` may be present.
    """
    def fn(value: Any) -> bool:
        if not isinstance(value, dict):
            return False
        if require_all and not set(items).issubset(value):
            return False
        if exclusive and not set(value).issubset(items):
            return False
        return all(items[key](val) for key, val in value.items()
                   if key in items)
    keys = ", ".join(f"{key!r} ({_Nested(check)})"
                     for key, check in sorted(items.items()))
    notes = []
    if require_all:
        notes.append("all required")
    if exclusive:
        notes.append("no others allowed")
    suffix = f" [{', '.join(notes)}]" if notes else ""
    return Check(fn, f"dictionary with keys {keys}{suffix}")


def TItems(fns: list[CheckFn]) -> Check:
    """Lists or tuples whose first items are checked by ``fns`` in order.

    Combine with :func:`TIsLength` to also fix the number of items.
    """
    def fn(value: Any) -> bool:
        if not isinstance(value, (list, tuple)) or len(value) < len(fns):
            return False
        return all(check(item) for check, item in zip(fns, value))
    return Check(fn, "[" + ", ".join(_Nested(f) for f in fns) + "]")


def TRegex(pattern: str | re.Pattern) -> Check:
    """Strings matching ``pattern`` from their start (``re.match``)."""
    regex = re.compile(pattern) if isinstance(pattern, str) else pattern
    return Check(lambda v: isinstance(v, str) and bool(regex.match(v)),
                 f"string matching /{regex.pattern}/")


def TNonNegative(fn: CheckFn) -> Check:
    """Values accepted by ``fn`` that are >= 0 (e.g. ``TNonNegative(TInt)``)."""
    return Check(lambda v: fn(v) and v >= 0, f"non-negative {_Nested(fn)}")


def TPositive(fn: CheckFn) -> Check:
    """Values accepted by ``fn`` that are > 0 (e.g. ``TPositive(TInt)``)."""
    return Check(lambda v: fn(v) and v > 0, f"positive {_Nested(fn)}")


# --- Common composites --------------------------------------------------------------

TNonNegativeInt = TNonNegative(TInt)
TPositiveInt = TPositive(TInt)
#: Non-negative int or float (JSON does not tell 2 from 2.0)
TNonNegativeFloat = TNonNegative(TNumber)
TNonNegativeNumber = TNonNegativeFloat
TMaybeBool = TMaybe(TBool)
TMaybeInt = TMaybe(TInt)
TMaybeString = TMaybe(TString)
TMaybeNonEmptyString = TMaybe(TNonEmptyString)
TMaybeList = TMaybe(TList)
TMaybeDict = TMaybe(TDict)
TMaybePositiveInt = TMaybe(TPositiveInt)
TMaybeNonNegativeInt = TMaybe(TNonNegativeInt)
#: The string "none" used by some parameters to reset a value
TValueNone = TElemOf([constants.VALUE_NONE])
TMaybeValueNone = TMaybe(TValueNone)
TListOfStrings = TListOf(TString)
TListOfNonEmptyStrings = TListOf(TNonEmptyString)
TEmptyList = Check(lambda v: isinstance(v, (list, tuple)) and not v,
                   "empty list")
TEmptyDict = Check(lambda v: isinstance(v, dict) and not v,
                   "empty dictionary")


# --- Job IDs ------------------------------------------------------------------------------

_JOB_ID_RE = re.compile(rf"^{constants.JOB_ID_TEMPLATE}$")

#: Absolute job ID: a non-negative int or a string of digits
TJobId = Check(lambda v: TNonNegativeInt(v) or
               (isinstance(v, str) and bool(_JOB_ID_RE.match(v))), "job ID")
#: Relative job ID (only in jobs submitted together): -1 is the previous job
TRelativeJobId = Check(lambda v: _IsInt(v) and v < 0,
                       "relative job ID (negative integer)")
#: One entry of a list of submitted jobs: [success, job ID or error message]
TJobIdListItem = TAnd(TIsLength(2), TItems([
    Comment("success")(TBool),
    Comment("job ID if successful, error message otherwise")(
        TOr(TString, TJobId)),
]))
TJobIdList = TListOf(TJobIdListItem)
#: Result of an opcode that only submits jobs
TJobIdListOnly = TStrictDict(True, True, {
    constants.JOB_IDS_KEY: Comment("list of submitted jobs")(TJobIdList),
})


# --- IP addresses and networks ----------------------------------------------------------

def _IpCheck(cls: Callable[[str], Any], desc: str) -> Check:
    def fn(value: Any) -> bool:
        if not isinstance(value, str):
            return False
        try:
            cls(value)
        except ValueError:
            return False
        return True
    return Check(fn, desc)


TIPv4Address = _IpCheck(ipaddress.IPv4Address, "IPv4 address")
TIPv6Address = _IpCheck(ipaddress.IPv6Address, "IPv6 address")
TIPAddress = TOr(TIPv4Address, TIPv6Address)
TIPv4Network = _IpCheck(lambda v: ipaddress.IPv4Network(v, strict=False),
                        "IPv4 network (CIDR)")
TIPv6Network = _IpCheck(lambda v: ipaddress.IPv6Network(v, strict=False),
                        "IPv6 network (CIDR)")
TMaybeIPv4Address = TMaybe(TIPv4Address)
TMaybeIPv6Address = TMaybe(TIPv6Address)
TMaybeIPv4Network = TMaybe(TIPv4Network)
TMaybeIPv6Network = TMaybe(TIPv6Network)


# --- Names, paths and text ----------------------------------------------------------------

#: Longest host name without the final dot (255 octets on the wire)
MAX_HOSTNAME_LEN = 253
#: Longest name of a node group, network, OS, ... (a file name's NAME_MAX)
MAX_NAME_LEN = 255
#: Longest network interface name: Linux's IFNAMSIZ (16) less the final NUL
MAX_IFNAME_LEN = 15
#: Longest path: PATH_MAX (4096) less the final NUL
MAX_PATH_LEN = 4095
#: Longest LVM volume group or logical volume name
MAX_LVM_NAME_LEN = 127
#: Longest string value inside parameter dicts (disks, NICs)
MAX_VALUE_LEN = 1024
#: Longest regular expression (search patterns, reserved volumes)
MAX_REGEX_LEN = 1024
#: Longest free-form text: comments, reasons, log messages
MAX_TEXT_LEN = 4096
#: Longest PEM text (an X509 CA certificate)
MAX_PEM_LEN = 65536

#: Longest string shown whole in an error message, and longest rendering
MAX_SHOWN_STRING = 50
MAX_SHOWN_VALUE = 200


def _Shorten(value: Any, max_string: int, budget: int) -> str:
    if isinstance(value, str):
        if len(value) > max_string:
            return repr(value[:max_string]) + "..."
        return repr(value)
    if isinstance(value, dict):
        items: Iterable[str] = (
            f"{_Shorten(key, max_string, budget)}: {_Shorten(val, max_string, budget)}"
            for key, val in value.items())
        opening, closing = "{", "}"
    elif isinstance(value, (list, tuple)):
        items = (_Shorten(item, max_string, budget) for item in value)
        opening, closing = ("[", "]") if isinstance(value, list) else ("(", ")")
        if isinstance(value, tuple) and len(value) == 1:
            closing = ",)"
    else:
        return repr(value)
    parts: list[str] = []
    used = len(opening)
    for text in items:
        # Stop early: a value with 100,000 items is cut at the budget anyway
        if used > budget:
            parts.append("...")
            break
        parts.append(text)
        used += len(text) + 2
    return opening + ", ".join(parts) + closing


def ShortRepr(value: Any, max_string: int = MAX_SHOWN_STRING,
              max_len: int = MAX_SHOWN_VALUE) -> str:
    """``repr(value)`` for an error message, with long values cut.

    Strings (also inside lists and dicts) longer than ``max_string`` show
    their start followed by "..."; the whole rendering is cut after
    ``max_len`` characters. A client sending 10,000 characters does not
    get them back.
    """
    text = _Shorten(value, max_string, max_len)
    if len(text) > max_len:
        text = text[:max_len] + "..."
    return text


def TText(max_len: int) -> Check:
    """Strings of at most ``max_len`` characters (anything else allowed)."""
    return Check(lambda v: isinstance(v, str) and len(v) <= max_len,
                 f"string of at most {max_len} characters")


def _IsLine(value: Any, max_len: int) -> bool:
    return isinstance(value, str) and 0 < len(value) <= max_len \
        and value.isprintable()


def TShortString(max_len: int = MAX_NAME_LEN) -> Check:
    """Non-empty single-line printable strings of at most ``max_len``."""
    return Check(lambda v: _IsLine(v, max_len),
                 f"non-empty printable string of at most {max_len} characters")


#: The empty string (used by parameters where it means "unset")
TEmptyString = Check(lambda v: v == "" and isinstance(v, str), "empty string")


def _IsHostname(value: Any) -> bool:
    if not isinstance(value, str) or len(value) > MAX_HOSTNAME_LEN + 1:
        return False
    try:
        _net.Hostname.GetNormalizedName(value)
    except errors.OpPrereqError:
        return False
    return True


#: A host name: node, instance and cluster names (short or fully qualified)
THostname = Check(_IsHostname, (
    f"host name (labels of letters, digits, '-' and '_', each at most 63"
    f" characters, separated by dots; at most {MAX_HOSTNAME_LEN} characters)"))


def _IsObjectName(value: Any) -> bool:
    return (_IsLine(value, MAX_NAME_LEN) and "/" not in value
            and not value.startswith(".") and value.strip() == value)


#: The name of a node group, network, OS or ExtStorage provider, also a
#: UUID: it may become a file name, so it has a file name's limits
TObjectName = Check(_IsObjectName, (
    f"name (at most {MAX_NAME_LEN} printable characters, no '/', not empty"
    " or starting with '.', no spaces at either end)"))


def _IsInterfaceName(value: Any) -> bool:
    # The kernel's dev_valid_name, in ASCII so that its byte limit is
    # a character limit
    return (isinstance(value, str) and value not in ("", ".", "..")
            and len(value) <= MAX_IFNAME_LEN and value.isascii()
            and value.isprintable()
            and not any(ch in "/:" or ch.isspace() for ch in value))


#: A Linux network interface name (master_netdev, NIC links, bridges)
TInterfaceName = Check(_IsInterfaceName, (
    f"network interface name (at most {MAX_IFNAME_LEN} ASCII characters, no"
    " '/', ':' or spaces, not empty, '.' or '..')"))


def _IsNormAbsPath(value: Any) -> bool:
    return (isinstance(value, str) and len(value) <= MAX_PATH_LEN
            and value.isprintable() and _io.IsNormAbsPath(value))


#: A normalised absolute path ("/a/b", not "/a/../b", "/a/" or "a")
TNormAbsPath = Check(_IsNormAbsPath, (
    f"normalised absolute path (at most {MAX_PATH_LEN} characters)"))

#: System directories that must not hold (or be below) file storage: the
#: same idea as Ganeti's forbidden file storage paths
FORBIDDEN_STORAGE_DIRS = frozenset(
    ["/boot", "/dev", "/etc", "/home", "/proc", "/root", "/sys"]
    + [f"{prefix}/{name}" for prefix in ("", "/usr", "/usr/local")
       for name in ("bin", "lib", "lib32", "lib64", "sbin")])


def _IsStorageDir(value: Any) -> bool:
    if not _IsNormAbsPath(value):
        return False
    # A parent of a system directory ("/", "/usr") would hold it too
    return not any(value == bad or _io.IsBelowDir(value, bad)
                   for bad in FORBIDDEN_STORAGE_DIRS)


#: A cluster-wide storage directory (file, shared file, Gluster)
TStorageDir = Check(_IsStorageDir, (
    f"normalised absolute path (at most {MAX_PATH_LEN} characters), not a"
    " system directory (/etc, /usr/lib, ...) or a parent of one"))


def _IsRelativePath(value: Any) -> bool:
    if not _IsLine(value, MAX_PATH_LEN) or value.startswith("/"):
        return False
    return os.path.normpath(value) == value and value != "." \
        and ".." not in value.split("/")


#: A normalised relative path that stays below where it is joined
TRelativePath = Check(_IsRelativePath, (
    f"normalised relative path without '..' (at most {MAX_PATH_LEN}"
    " characters)"))

_URL_RE = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://\S+")

#: An image location: a normalised absolute path or a URL
TPathOrUrl = Check(
    lambda v: _IsNormAbsPath(v) or (_IsLine(v, MAX_PATH_LEN)
                                   and bool(_URL_RE.fullmatch(v))),
    f"normalised absolute path or URL (at most {MAX_PATH_LEN} characters)")

_LVM_NAME_RE = re.compile(r"[a-zA-Z0-9+_.][a-zA-Z0-9+_.-]*")

#: An LVM volume group or logical volume name
TLvmName = Check(
    lambda v: isinstance(v, str) and len(v) <= MAX_LVM_NAME_LEN
    and v not in (".", "..") and bool(_LVM_NAME_RE.fullmatch(v)),
    f"LVM name (letters, digits and '+_.-', not starting with '-', at most"
    f" {MAX_LVM_NAME_LEN} characters)")

_PROGRAM_NAME_RE = re.compile(r"[a-zA-Z0-9_-]{1,64}")

#: The name of a program nodes run by name (compression tools, restricted
#: commands): no path, nothing a shell would interpret
TProgramName = Check(
    lambda v: isinstance(v, str) and bool(_PROGRAM_NAME_RE.fullmatch(v)),
    "program name (1 to 64 letters, digits, '-' or '_')")

#: An instance allocator: "." (the cluster's default), a script name or an
#: absolute path
TIallocatorName = Check(
    lambda v: v == constants.DEFAULT_IALLOCATOR_SHORTCUT or _IsNormAbsPath(v)
    or (_IsLine(v, MAX_NAME_LEN) and v != ".." and "/" not in v
        and not any(ch.isspace() for ch in v)),
    "allocator ('.' for the default, a name without '/' or spaces, or a"
    " normalised absolute path)")

_MAC_PREFIX_RE = re.compile(r"[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){2}")

#: A MAC prefix of three octets
TMacPrefix = Check(lambda v: isinstance(v, str) and bool(_MAC_PREFIX_RE.fullmatch(v)),
                   "MAC prefix (three hex octets, e.g. aa:00:00)")


def _IsRegex(value: Any) -> bool:
    if not (isinstance(value, str) and len(value) <= MAX_REGEX_LEN):
        return False
    try:
        re.compile(value)
    except (re.error, RecursionError, OverflowError):
        return False
    return True


#: A regular expression that compiles
TRegexPattern = Check(_IsRegex, (
    f"regular expression (at most {MAX_REGEX_LEN} characters)"))


# --- Composites used by opcodes -------------------------------------------------------------

#: Disk definition: {"size": 1024, "mode": "rw", ...}; sizes may carry units
TDiskParams = Comment("disk parameters")(
    TDictOf(TShortString(MAX_NAME_LEN),
            TOr(TShortString(MAX_VALUE_LEN), TInt)))

_NIC_KEYS = constants.INIC_PARAMS | {"bridge"}
#: Checks of NIC values by key; the others are short strings
_NIC_VALUE_CHECKS: dict[str, CheckFn] = {
    constants.INIC_LINK: TOr(TEmptyString, TInterfaceName),
    "bridge": TOr(TEmptyString, TInterfaceName),
    constants.INIC_NETWORK: TOr(TEmptyString, TObjectName),
}
_NIC_OTHER_VALUES = TOr(TEmptyString, TShortString(MAX_NAME_LEN))


def _IsNicParams(value: Any) -> bool:
    if not isinstance(value, dict):
        return False
    for key, val in value.items():
        if key not in _NIC_KEYS:
            return False
        if val is not None and \
                not _NIC_VALUE_CHECKS.get(key, _NIC_OTHER_VALUES)(val):
            return False
    return True


#: NIC definition: {"mac": ..., "ip": ..., "mode": ..., "link": ...}
TNicParams = Check(_IsNicParams, (
    "NIC parameters (dictionary with keys "
    + ", ".join(repr(k) for k in sorted(_NIC_KEYS))
    + f"; 'link' and 'bridge' network interface names (at most"
    f" {MAX_IFNAME_LEN} characters, no '/', ':' or spaces), 'network' a name"
    f" without '/', others printable strings; values at most {MAX_NAME_LEN}"
    " characters, or None)"))

#: Query filter: a nested list (see the query language) or None
TQueryFilter = WithDesc("query filter (list or None)")(TMaybe(TList))

_DDM_SIMPLE = constants.DDMS_SIMPLE


def TSetParamsMods(fn: CheckFn) -> Check:
    """Lists of device modifications, as in OpInstanceSetParams disks/nics.

    Current form: ``[(action, index_or_name, params), ...]`` where action
    is one of DDMS_VALUES_WITH_MODIFY and index an int (-1 for the last
    device) or a device name/UUID. Legacy form: ``[(action_or_index,
    params), ...]`` with action "add" or "remove", or a device index to
    modify.
    """
    new_item = TAnd(TIsLength(3), TItems([
        TElemOf(constants.DDMS_VALUES_WITH_MODIFY),
        TOr(TInt, TShortString(MAX_NAME_LEN)),
        fn,
    ]))
    old_item = TAnd(TIsLength(2), TItems([
        TOr(TElemOf(_DDM_SIMPLE), TNonNegativeInt),
        fn,
    ]))
    return Check(lambda v: TListOf(new_item)(v) or TListOf(old_item)(v),
                 f"list of [action, index or name, parameters] "
                 f"modifications (or legacy [action or index, parameters] "
                 f"pairs), the parameters being {_Nested(fn)}")
