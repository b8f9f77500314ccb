"""Ganeti's textual query filter language, parsed into filter lists.

The text form (ganeti(7), "Query filters") is what users type after
``gnt-* list -F``; the result is the list structure the query engine
compiles (:mod:`ganeti.query.filter`)::

  name =~ m/^node/ and offline == false
      -> ["&", ["=~", "name", "^node"], ["=", "offline", False]]

Grammar (``not`` binds tighter than ``and``, which binds tighter than
``or``; chains of the same operator become one list)::

  filter    ::= and_expr { "or" and_expr }
  and_expr  ::= not_expr { "and" not_expr }
  not_expr  ::= "not" not_expr | "(" filter ")" | condition
  condition ::= field ("==" | "!=" | "<" | "<=" | ">" | ">=") value
              | value ["not"] "in" field | field "=[]" value
              | field ("=~" | "!~") regexp
              | field ("=*" | "!*") string          (glob: * and ?)
              | field                               (true when set)
  value     ::= string | number | "true" | "false"
  regexp    ::= m<d>...<d>[flags] | /.../[flags]    (d one of / # ^ |;
                                                     flags i and s)

Strings are single- or double-quoted with backslash escapes (``\\\\``,
``\\"``, ``\\'``, ``\\n``, ``\\t``, ``\\r``). ``true``/``false`` are our
addition, so that boolean fields can be compared. A bad filter raises
:class:`errors.QueryFilterParseError` whose message names the offset and
shows the text with a caret under the problem; its arguments are the
message and ``(offset, text)``.

:func:`MakeFilter` turns the arguments of a ``list`` command into a filter:
one argument that looks like a filter is parsed, otherwise the arguments
are names (``*`` and ``?`` globbing allowed).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ganeti import errors

OP_OR = "|"
OP_AND = "&"
OP_NOT = "!"
OP_TRUE = "?"
OP_EQUAL = "="
OP_NOT_EQUAL = "!="
OP_REGEXP = "=~"
OP_CONTAINS = "=[]"

#: Comparison operators of the text form -> filter operator
COMPARISON_OPS = {
    "==": OP_EQUAL, "!=": OP_NOT_EQUAL,
    "<": "<", "<=": "<=", ">": ">", ">=": ">=",
}
REGEXP_OPS = frozenset(["=~", "!~"])
#: ``field =[] value``: the list field contains the value (the filter
#: operator written out; ``value in field`` says the same)
CONTAINS_OP = "=[]"
GLOB_OPS = frozenset(["=*", "!*"])
KEYWORDS = frozenset(["and", "or", "not", "in", "true", "false"])
REGEXP_DELIMITERS = "/#^|"
REGEXP_FLAGS = frozenset("is")

#: Characters that make a single ``list`` argument a filter, not a name
FILTER_DETECTION_CHARS = frozenset("()=/!~'\"\\<>") | frozenset(" \t\n")
#: Characters that make a name argument a glob pattern
GLOB_DETECTION_CHARS = frozenset("*?")

_FIELD_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_./]*")
_NUMBER_RE = re.compile(r"-?[0-9]+(\.[0-9]+)?(?![A-Za-z0-9_.])")
_OPERATOR_RE = re.compile(r"=\[\]|==|!=|<=|>=|=~|!~|=\*|!\*|<|>")
_STRING_ESCAPES = {"\\": "\\", '"': '"', "'": "'", "n": "\n", "t": "\t",
                   "r": "\r"}


def _Error(text: str, pos: int, message: str) -> errors.QueryFilterParseError:
    caret = " " * pos + "^"
    return errors.QueryFilterParseError(
        f"Invalid query filter at offset {pos}: {message}\n  {text}\n  {caret}",
        (pos, text))


@dataclass(frozen=True)
class Token:
    """One lexical token: kind, value and offset in the text."""

    kind: str   # "field", "keyword", "op", "string", "number", "regexp", "(", ")", "end"
    value: Any
    pos: int


class _Lexer:
    """Splits a filter text into tokens, remembering their offsets."""

    def __init__(self, text: str) -> None:
        self.text = text

    def _String(self, start: int) -> tuple[Token, int]:
        text = self.text
        quote = text[start]
        pos = start + 1
        chars: list[str] = []
        while True:
            if pos >= len(text):
                raise _Error(text, start, "unterminated string")
            char = text[pos]
            if char == quote:
                return Token("string", "".join(chars), start), pos + 1
            if char == "\\":
                if pos + 1 >= len(text):
                    raise _Error(text, pos, "backslash at the end of the text")
                escaped = text[pos + 1]
                if escaped not in _STRING_ESCAPES:
                    raise _Error(text, pos, f"unknown escape '\\{escaped}' in a"
                                 " string (known: \\\\ \\\" \\' \\n \\t \\r)")
                chars.append(_STRING_ESCAPES[escaped])
                pos += 2
                continue
            chars.append(char)
            pos += 1

    def _Regexp(self, start: int, delim_pos: int) -> tuple[Token, int]:
        text = self.text
        delim = text[delim_pos]
        pos = delim_pos + 1
        chars: list[str] = []
        while True:
            if pos >= len(text):
                raise _Error(text, start, "unterminated regular expression")
            char = text[pos]
            if char == delim:
                break
            if char == "\\" and pos + 1 < len(text):
                # "\<delimiter>" is the delimiter; other escapes belong to
                # the regular expression and stay as they are
                following = text[pos + 1]
                chars.append(following if following == delim else char + following)
                pos += 2
                continue
            chars.append(char)
            pos += 1
        pos += 1
        flags_start = pos
        while pos < len(text) and text[pos].isalpha():
            pos += 1
        flags = text[flags_start:pos]
        bad = sorted(set(flags) - REGEXP_FLAGS)
        if bad:
            raise _Error(text, flags_start, f"unknown regular expression flag(s)"
                         f" '{''.join(bad)}' (known: i, s)")
        pattern = "".join(chars)
        if flags:
            pattern = f"(?{''.join(sorted(set(flags)))}){pattern}"
        try:
            re.compile(pattern)
        except re.error as err:
            raise _Error(text, start, f"invalid regular expression"
                         f" {pattern!r}: {err}") from None
        return Token("regexp", pattern, start), pos

    def Tokens(self) -> list[Token]:
        """Every token of the text, ending with an "end" token."""
        text = self.text
        tokens: list[Token] = []
        pos = 0
        while True:
            while pos < len(text) and text[pos].isspace():
                pos += 1
            if pos >= len(text):
                tokens.append(Token("end", None, pos))
                return tokens
            char = text[pos]
            if char in "()":
                tokens.append(Token(char, char, pos))
                pos += 1
                continue
            if char in "\"'":
                token, pos = self._String(pos)
                tokens.append(token)
                continue
            if char == "/":
                token, pos = self._Regexp(pos, pos)
                tokens.append(token)
                continue
            if (char == "m" and pos + 1 < len(text)
                    and text[pos + 1] in REGEXP_DELIMITERS):
                token, pos = self._Regexp(pos, pos + 1)
                tokens.append(token)
                continue
            match = _OPERATOR_RE.match(text, pos)
            if match:
                tokens.append(Token("op", match.group(), pos))
                pos = match.end()
                continue
            match = _NUMBER_RE.match(text, pos)
            if match:
                value: Any = (float(match.group()) if match.group(1)
                              else int(match.group()))
                tokens.append(Token("number", value, pos))
                pos = match.end()
                continue
            match = _FIELD_RE.match(text, pos)
            if match:
                word = match.group()
                kind = "keyword" if word in KEYWORDS else "field"
                tokens.append(Token(kind, word, pos))
                pos = match.end()
                continue
            raise _Error(text, pos, f"unexpected character {char!r}")


class _Parser:
    """Recursive descent over the tokens."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _Lexer(text).Tokens()
        self.idx = 0

    @property
    def current(self) -> Token:
        return self.tokens[self.idx]

    def _Advance(self) -> Token:
        token = self.tokens[self.idx]
        self.idx += 1
        return token

    def _IsKeyword(self, word: str, offset: int = 0) -> bool:
        token = self.tokens[min(self.idx + offset, len(self.tokens) - 1)]
        return token.kind == "keyword" and token.value == word

    def _Fail(self, message: str, token: Token | None = None) -> errors.QueryFilterParseError:
        token = token or self.current
        return _Error(self.text, token.pos, message)

    @staticmethod
    def _Describe(token: Token) -> str:
        if token.kind == "end":
            return "the end of the filter"
        if token.kind == "string":
            return f"string {json.dumps(token.value)}"
        if token.kind == "regexp":
            return "a regular expression"
        return f"'{token.value}'"

    def Parse(self) -> list[Any]:
        if self.current.kind == "end":
            raise self._Fail("the filter is empty")
        result = self._Or()
        if self.current.kind != "end":
            raise self._Fail(f"unexpected {self._Describe(self.current)}; expected"
                             " 'and', 'or' or the end of the filter")
        return result

    def _Chain(self, keyword: str, op: str, sub: Any) -> list[Any]:
        parts = [sub()]
        while self._IsKeyword(keyword):
            self._Advance()
            parts.append(sub())
        return parts[0] if len(parts) == 1 else [op] + parts

    def _Or(self) -> list[Any]:
        return self._Chain("or", OP_OR, self._And)

    def _And(self) -> list[Any]:
        return self._Chain("and", OP_AND, self._Not)

    def _Not(self) -> list[Any]:
        if self._IsKeyword("not"):
            self._Advance()
            return [OP_NOT, self._Not()]
        if self.current.kind == "(":
            opening = self._Advance()
            inner = self._Or()
            if self.current.kind != ")":
                raise self._Fail(f"expected ')' to close the '(' at offset"
                                 f" {opening.pos}, found"
                                 f" {self._Describe(self.current)}")
            self._Advance()
            return inner
        return self._Condition()

    def _Value(self) -> tuple[bool, Any]:
        token = self.current
        if token.kind in ("string", "number"):
            self._Advance()
            return True, token.value
        if token.kind == "keyword" and token.value in ("true", "false"):
            self._Advance()
            return True, token.value == "true"
        return False, None

    def _Condition(self) -> list[Any]:
        start = self.current
        is_value, value = self._Value()
        if is_value:
            negate = False
            if self._IsKeyword("not"):
                self._Advance()
                negate = True
            if not self._IsKeyword("in"):
                raise self._Fail(f"expected 'in' or 'not in' after the value at"
                                 f" offset {start.pos}, found"
                                 f" {self._Describe(self.current)}")
            self._Advance()
            field = self._Field()
            cond = [OP_CONTAINS, field, value]
            return [OP_NOT, cond] if negate else cond
        field = self._Field()
        token = self.current
        if token.kind != "op":
            return [OP_TRUE, field]
        self._Advance()
        if token.value in COMPARISON_OPS or token.value == CONTAINS_OP:
            is_value, value = self._Value()
            if not is_value:
                raise self._Fail(f"expected a value (string, number, true or"
                                 f" false) after '{token.value}', found"
                                 f" {self._Describe(self.current)}")
            op = COMPARISON_OPS.get(token.value, OP_CONTAINS)
            return [op, field, value]
        if token.value in REGEXP_OPS:
            if self.current.kind != "regexp":
                raise self._Fail(f"expected a regular expression (m/.../ or"
                                 f" /.../) after '{token.value}', found"
                                 f" {self._Describe(self.current)}")
            cond = [OP_REGEXP, field, self._Advance().value]
            return cond if token.value == "=~" else [OP_NOT, cond]
        assert token.value in GLOB_OPS
        if self.current.kind != "string":
            raise self._Fail(f"expected a quoted glob pattern after"
                             f" '{token.value}', found {self._Describe(self.current)}")
        cond = [OP_REGEXP, field, GlobToRegexp(self._Advance().value)]
        return cond if token.value == "=*" else [OP_NOT, cond]

    def _Field(self) -> str:
        token = self.current
        if token.kind != "field":
            raise self._Fail(f"expected a field name, found {self._Describe(token)}")
        self._Advance()
        return str(token.value)


def GlobToRegexp(pattern: str) -> str:
    """A regular expression matching the whole text against a glob
    (``*`` any text, ``?`` one character)."""
    parts = []
    for char in pattern:
        if char == "*":
            parts.append(".*")
        elif char == "?":
            parts.append(".")
        else:
            parts.append(re.escape(char))
    return "^" + "".join(parts) + "$"


def ParseFilter(text: str) -> list[Any]:
    """Parse a filter in the text form into Ganeti's list structure.

    @raise errors.QueryFilterParseError: with the offset of the problem
    """
    if not isinstance(text, str):
        raise errors.QueryFilterParseError(
            f"A query filter must be text, got {type(text).__name__}", (0, ""))
    return _Parser(text).Parse()


def MaybeFilter(text: str) -> bool:
    """Whether a single ``list`` argument looks like a filter, not a name."""
    return bool(frozenset(text) & FILTER_DETECTION_CHARS)


def _NamePart(namefield: str, text: str, isnumeric: bool) -> list[Any]:
    if isnumeric:
        try:
            return [OP_EQUAL, namefield, int(text)]
        except ValueError:
            raise errors.OpPrereqError(
                f"Invalid {namefield} '{text}': expected a number",
                errors.ECODE_INVAL) from None
    if frozenset(text) & GLOB_DETECTION_CHARS:
        return [OP_REGEXP, namefield, GlobToRegexp(text)]
    return [OP_EQUAL, namefield, text]


def MakeFilter(args: Sequence[str] | None, force: bool, namefield: str = "name",
               isnumeric: bool = False) -> list[Any] | None:
    """The filter for a ``list`` command's arguments (None: no filter).

    With ``force`` the arguments, joined by spaces, are a filter. Without
    it, one argument that looks like a filter (it has spaces, quotes,
    parentheses or comparison characters) is parsed as one; otherwise the
    arguments are names (``*``/``?`` globs allowed; numbers with
    ``isnumeric``) combined with "or".
    """
    if not args:
        return None
    if force or (len(args) == 1 and MaybeFilter(args[0])):
        return ParseFilter(" ".join(args))
    return [OP_OR] + [_NamePart(namefield, name, isnumeric) for name in args]


# --- Printing a filter back as text (the inverse of ParseFilter) ------------------

def _FormatValue(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        escaped = (value.replace("\\", "\\\\").replace('"', '\\"')
                   .replace("\n", "\\n").replace("\t", "\\t").replace("\r", "\\r"))
        return f'"{escaped}"'
    raise errors.ProgrammerError(f"Cannot write {value!r} in a text filter")


def _FormatRegexp(pattern: str) -> str:
    for delim in REGEXP_DELIMITERS:
        if delim not in pattern:
            return f"m{delim}{pattern}{delim}"
    return "m/" + pattern.replace("/", "\\/") + "/"


def FormatFilter(qfilter: Sequence[Any], _top: bool = True) -> str:
    """The text form of a filter list (operators this module produces).

    Nested "and"/"or" are parenthesised, so that parsing the text gives the
    same list back.
    """
    op = qfilter[0]
    if op in (OP_OR, OP_AND):
        word = " or " if op == OP_OR else " and "
        text = word.join(FormatFilter(sub, False) for sub in qfilter[1:])
        return text if _top else f"({text})"
    if op == OP_NOT:
        return "not " + FormatFilter(qfilter[1], False)
    if op == OP_TRUE:
        return str(qfilter[1])
    if op == OP_REGEXP:
        return f"{qfilter[1]} =~ {_FormatRegexp(qfilter[2])}"
    if op == OP_CONTAINS:
        return f"{_FormatValue(qfilter[2])} in {qfilter[1]}"
    for text_op, filter_op in COMPARISON_OPS.items():
        if filter_op == op:
            return f"{qfilter[1]} {text_op} {_FormatValue(qfilter[2])}"
    raise errors.ProgrammerError(f"Cannot write operator {op!r} in a text filter")
