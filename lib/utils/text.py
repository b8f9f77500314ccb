"""Parsing and formatting of text: sizes, names, MAC addresses, shell words.

Sizes are handled in mebibytes throughout, as in Ganeti: ``ParseUnit`` turns
what a user typed ("10G", "1.5t", "512MiB") into MiB, ``FormatUnit`` turns
MiB back into what the gnt-* tools print.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Iterable
from decimal import ROUND_CEILING, Decimal, InvalidOperation
from typing import Any

from ganeti import errors

__all__ = [
    "BuildShellCmd",
    "CommaJoin",
    "EscapeAndJoin",
    "FilterEmptyLinesAndComments",
    "FormatSeconds",
    "FormatTime",
    "FormatUnit",
    "GenerateSecret",
    "IsValidShellParam",
    "MatchNameComponent",
    "NormalizeAndValidateMac",
    "NormalizeAndValidateThreeOctetMacPrefix",
    "ParseUnit",
    "SafeEncode",
    "ShellQuote",
    "ShellQuoteArgs",
    "UnescapeAndSplit",
]

# A number (digits with an optional fraction) and an optional unit
_UNIT_RE = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([a-zA-Z]+)?\s*", re.ASCII)

# Multipliers from a unit (lower-cased) to mebibytes
_UNIT_FACTORS = {
    "m": 1, "mb": 1, "mib": 1,
    "g": 1024, "gb": 1024, "gib": 1024,
    "t": 1024 * 1024, "tb": 1024 * 1024, "tib": 1024 * 1024,
}

# Sizes are rounded up to this many MiB (an LVM extent is 4 MiB by default)
_SIZE_GRANULARITY = 4

# Regexes here are used with fullmatch: "$" would accept a final newline

# Words that need no quoting in a POSIX shell
_SHELL_SAFE_RE = re.compile(r"[-.,=:/_+@A-Za-z0-9]+")

# Arguments BuildShellCmd accepts without quoting
_SHELL_PARAM_RE = re.compile(r"[-a-zA-Z0-9._+/:%@]+")

_MAC_OCTET = "[0-9a-f]{2}"
_MAC_RE = re.compile(":".join([_MAC_OCTET] * 6), re.IGNORECASE)
_MAC_PREFIX_RE = re.compile(":".join([_MAC_OCTET] * 3), re.IGNORECASE)

_ROMAN_NUMERALS = (
    (1000, "M"), (900, "CM"), (500, "D"), (400, "CD"), (100, "C"), (90, "XC"),
    (50, "L"), (40, "XL"), (10, "X"), (9, "IX"), (5, "V"), (4, "IV"), (1, "I"),
)


def ParseUnit(value: str | int) -> int:
    """Parse a size such as ``"10G"`` and return it in mebibytes.

    The unit is one of m, g, t (any case, optionally followed by "b" or
    "ib"); no unit means mebibytes. Fractions are allowed ("1.5G"). The result
    is rounded up to a whole number of MiB and then up to a multiple of 4 MiB,
    as Ganeti does.

    @raise errors.UnitParseError: if ``value`` is not a size
    """
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise errors.UnitParseError(f"Invalid size '{value}': not a string"
                                    " or integer")
    match = _UNIT_RE.fullmatch(str(value))
    if not match:
        raise errors.UnitParseError(f"Invalid size '{value}': expected a"
                                    " number followed by an optional unit")
    number, unit = match.groups()
    factor = _UNIT_FACTORS.get((unit or "m").lower())
    if factor is None:
        raise errors.UnitParseError(f"Invalid size '{value}': unknown unit"
                                    f" '{unit}'")
    try:
        mebibytes = Decimal(number) * factor
    except InvalidOperation as err:  # pragma: no cover - the regex forbids it
        raise errors.UnitParseError(f"Invalid size '{value}': {err}") from err
    result = int(mebibytes.to_integral_value(rounding=ROUND_CEILING))
    remainder = result % _SIZE_GRANULARITY
    if remainder:
        result += _SIZE_GRANULARITY - remainder
    return result


def _ToRoman(number: int) -> str:
    parts = []
    for amount, numeral in _ROMAN_NUMERALS:
        count, number = divmod(number, amount)
        parts.append(numeral * count)
    return "".join(parts)


def _RomanOrRounded(value: float, decimals: int, roman: bool) -> str:
    """Format ``value`` with ``decimals`` decimals, or as a roman numeral.

    Roman numerals have no zero and no fractions: the value is rounded to
    the nearest integer, and values outside 1..3999 fall back to decimals.
    """
    if roman:
        rounded = int(round(value))
        if 1 <= rounded <= 3999:
            return _ToRoman(rounded)
    return f"{value:.{decimals}f}"


def FormatUnit(value: int | float, units: str, roman: bool = False) -> str:
    """Format a size in mebibytes for display.

    ``units`` is "m", "g" or "t" for a plain number in that unit, or "h" to
    pick the unit by magnitude and append it ("512M", "10.0G", "1.0T").

    @raise errors.ProgrammerError: for an unknown unit or a non-number
    """
    if units not in ("h", "m", "g", "t"):
        raise errors.ProgrammerError(f"Invalid unit specified '{units}'")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise errors.ProgrammerError(f"Invalid value specified '{value!r}'"
                                     f" ({type(value).__name__})")
    if units == "m" or (units == "h" and value < 1024):
        suffix = "M" if units == "h" else ""
        return _RomanOrRounded(value, 0, roman) + suffix
    if units == "g" or (units == "h" and value < 1024 * 1024):
        suffix = "G" if units == "h" else ""
        return _RomanOrRounded(value / 1024, 1, roman) + suffix
    suffix = "T" if units == "h" else ""
    return _RomanOrRounded(value / (1024 * 1024), 1, roman) + suffix


def MatchNameComponent(key: str, name_list: Iterable[str],
                       case_sensitive: bool = True) -> str | None:
    """Find the one name in ``name_list`` that ``key`` abbreviates.

    ``key`` matches a name equal to it, or a name that continues it with
    further dot-separated components: "node1" and "node1.example" match
    "node1.example.com", "node1.ex" does not. An exact match always wins;
    otherwise several matches count as no match.

    @return: the matching name, or None
    """
    names = list(name_list)
    if key in names:
        return key

    def _norm(text: str) -> str:
        return text if case_sensitive else text.upper()

    norm_key = _norm(key)
    matches = []
    exact = []
    for name in names:
        norm_name = _norm(name)
        if norm_name == norm_key:
            exact.append(name)
            matches.append(name)
        elif norm_name.startswith(norm_key + "."):
            matches.append(name)
    if len(exact) == 1:
        return exact[0]
    if len(matches) == 1:
        return matches[0]
    return None


def SafeEncode(text: str | bytes) -> str:
    """Return a printable-ASCII version of ``text`` for logs and messages.

    Tabs, newlines and carriage returns become ``\\t``, ``\\n``, ``\\r``;
    other control bytes and non-ASCII characters become escapes.
    """
    if isinstance(text, bytes):
        text = text.decode("latin-1")
    out = []
    for char in text:
        code = ord(char)
        if char == "\t":
            out.append(r"\t")
        elif char == "\n":
            out.append(r"\n")
        elif char == "\r":
            out.append(r"\r")
        elif code < 32 or code == 127:
            out.append(f"\\x{code:02x}")
        elif code > 127:
            out.append(char.encode("ascii", "backslashreplace").decode("ascii"))
        else:
            out.append(char)
    return "".join(out)


def CommaJoin(names: Iterable[Any]) -> str:
    """Join items as ``"a, b, c"`` (each converted with str)."""
    return ", ".join(str(name) for name in names)


def GenerateSecret(numbytes: int = 20) -> str:
    """Return ``numbytes`` random bytes as a hex string (2*numbytes chars)."""
    return secrets.token_hex(numbytes)


def _CheckMac(regex: re.Pattern[str], mac: Any, what: str) -> str:
    if isinstance(mac, str) and regex.fullmatch(mac):
        return mac.lower()
    raise errors.OpPrereqError(f"Invalid {what} '{mac}'", errors.ECODE_INVAL)


def NormalizeAndValidateMac(mac: str) -> str:
    """Check a colon-separated MAC address of six octets; return it lower-cased.

    @raise errors.OpPrereqError: (ECODE_INVAL) if it is not one
    """
    return _CheckMac(_MAC_RE, mac, "MAC address")


def NormalizeAndValidateThreeOctetMacPrefix(mac: str) -> str:
    """Check a MAC prefix of three octets ("aa:00:00"); return it lower-cased.

    @raise errors.OpPrereqError: (ECODE_INVAL) if it is not one
    """
    return _CheckMac(_MAC_PREFIX_RE, mac, "MAC address prefix")


def FormatTime(val: float | None, usecs: int | None = None) -> str:
    """Format a Unix timestamp as local "YYYY-MM-DD HH:MM:SS"; "N/A" if None.

    ``usecs``, when given, is appended as six-digit microseconds.
    """
    if isinstance(val, bool) or not isinstance(val, (int, float)):
        return "N/A"
    result = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(val))
    if usecs is not None:
        result += f".{usecs:06d}"
    return result


def FormatSeconds(secs: float) -> str:
    """Format a duration as e.g. "2d 9h 19m 49s" (leading zero units omitted)."""
    remaining = int(round(secs))
    parts: list[str] = []
    if remaining > 0:
        for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
            count, remaining = divmod(remaining, size)
            if count or parts:
                parts.append(f"{count}{unit}")
    parts.append(f"{remaining}s")
    return " ".join(parts)


def UnescapeAndSplit(text: str, sep: str = ",") -> list[str]:
    r"""Split ``text`` at ``sep``, honouring backslash escapes.

    A backslash makes the next character literal: ``a\,b,c`` gives
    ``["a,b", "c"]`` and ``a\\,b`` gives ``["a\\", "b"]`` (a literal
    backslash, then a separator). A trailing lone backslash is kept.
    The inverse is :func:`EscapeAndJoin`.
    """
    if not sep:
        raise errors.ProgrammerError("Empty separator")
    result = []
    current: list[str] = []
    pos = 0
    while pos < len(text):
        char = text[pos]
        if char == "\\" and pos + 1 < len(text):
            current.append(text[pos + 1])
            pos += 2
        elif text.startswith(sep, pos):
            result.append("".join(current))
            current = []
            pos += len(sep)
        else:
            current.append(char)
            pos += 1
    result.append("".join(current))
    return result


def EscapeAndJoin(items: Iterable[str], sep: str = ",") -> str:
    """Join ``items`` with ``sep`` so that :func:`UnescapeAndSplit` undoes it."""
    if len(sep) != 1:
        raise errors.ProgrammerError("EscapeAndJoin needs a one-character"
                                     " separator")
    return sep.join(item.replace("\\", "\\\\").replace(sep, "\\" + sep)
                    for item in items)


def ShellQuote(value: str) -> str:
    """Quote one word for a POSIX shell (unchanged when no quoting is needed)."""
    if _SHELL_SAFE_RE.fullmatch(value):
        return value
    return "'" + value.replace("'", "'\\''") + "'"


def ShellQuoteArgs(args: Iterable[str]) -> str:
    """Quote each argument and join them with spaces."""
    return " ".join(ShellQuote(arg) for arg in args)


def IsValidShellParam(word: str) -> bool:
    """Whether ``word`` can go into a shell command without quoting."""
    return bool(_SHELL_PARAM_RE.fullmatch(word))


def BuildShellCmd(template: str, *args: str) -> str:
    """Fill ``template`` (%-style) with arguments that need no shell quoting.

    @raise errors.ProgrammerError: if an argument contains characters that
        the shell would interpret
    """
    for word in args:
        if not IsValidShellParam(word):
            raise errors.ProgrammerError(f"Shell argument '{word}' contains"
                                         " invalid characters")
    return template % args


def FilterEmptyLinesAndComments(text: str) -> list[str]:
    """Return the stripped lines of ``text``, without blanks and # comments."""
    lines = (line.strip() for line in text.splitlines())
    return [line for line in lines if line and not line.startswith("#")]
