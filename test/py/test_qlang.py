"""Tests for ganeti.qlang: the text form of query filters."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ganeti import errors, qlang, query
from ganeti.query.fields import FieldDefinition, FieldTable


@pytest.mark.parametrize("text,expected", [
    ("name == \"a\"", ["=", "name", "a"]),
    ("name != 'a'", ["!=", "name", "a"]),
    ("pinst_cnt < 1", ["<", "pinst_cnt", 1]),
    ("pinst_cnt <= 1", ["<=", "pinst_cnt", 1]),
    ("pinst_cnt > -2", [">", "pinst_cnt", -2]),
    ("mfree >= 1.5", [">=", "mfree", 1.5]),
    ("offline == false", ["=", "offline", False]),
    ("offline == true", ["=", "offline", True]),
    ("master_candidate", ["?", "master_candidate"]),
    ("not master_candidate", ["!", ["?", "master_candidate"]]),
    ("\"x\" in tags", ["=[]", "tags", "x"]),
    ("'x' in tags", ["=[]", "tags", "x"]),
    ("tags =[] \"x\"", ["=[]", "tags", "x"]),
    ("tags=[]3", ["=[]", "tags", 3]),
    ("\"x\" not in tags", ["!", ["=[]", "tags", "x"]]),
    ("name =~ /^node/", ["=~", "name", "^node"]),
    ("name =~ m/^node/", ["=~", "name", "^node"]),
    ("name =~ m#a/b#", ["=~", "name", "a/b"]),
    ("name =~ m^x^", ["=~", "name", "x"]),
    ("name =~ m|x|", ["=~", "name", "x"]),
    ("name =~ m/a\\/b/", ["=~", "name", "a/b"]),
    ("name =~ m/a\\.b/", ["=~", "name", "a\\.b"]),
    ("name =~ /^node/i", ["=~", "name", "(?i)^node"]),
    ("name =~ /^node/si", ["=~", "name", "(?is)^node"]),
    ("name !~ /x/", ["!", ["=~", "name", "x"]]),
    ("name =* \"web*.example.com\"", ["=~", "name", "^web.*\\.example\\.com$"]),
    ("name !* 'n?'", ["!", ["=~", "name", "^n.$"]]),
    ("be/vcpus == 3", ["=", "be/vcpus", 3]),
    ("pnode.group == \"g\"", ["=", "pnode.group", "g"]),
    ("name == \"a\\\"b\\\\c\\n\\t\\r'\"", ["=", "name", "a\"b\\c\n\t\r'"]),
    ("name == 'it\\'s'", ["=", "name", "it's"]),
])
def test_single_conditions(text, expected):
    assert qlang.ParseFilter(text) == expected


def test_precedence_and_grouping():
    a, b, c, d = (["?", x] for x in "abcd")
    assert qlang.ParseFilter("a and b or c and d") == ["|", ["&", a, b], ["&", c, d]]
    assert qlang.ParseFilter("a or b and c") == ["|", a, ["&", b, c]]
    assert qlang.ParseFilter("(a or b) and c") == ["&", ["|", a, b], c]
    assert qlang.ParseFilter("a and b and c") == ["&", a, b, c]
    assert qlang.ParseFilter("a or b or c or d") == ["|", a, b, c, d]
    assert qlang.ParseFilter("not a and b") == ["&", ["!", a], b]
    assert qlang.ParseFilter("not (a and b)") == ["!", ["&", a, b]]
    assert qlang.ParseFilter("not not a") == ["!", ["!", a]]
    assert qlang.ParseFilter("((a))") == a
    # a parenthesised chain stays a nested list
    assert qlang.ParseFilter("a and (b and c)") == ["&", a, ["&", b, c]]
    assert qlang.ParseFilter("  name=='x'and(b)") == ["&", ["=", "name", "x"], b]


def test_issue_examples():
    assert qlang.ParseFilter("name =~ /^node/ and offline == false") == \
        ["&", ["=~", "name", "^node"], ["=", "offline", False]]
    assert qlang.ParseFilter("pinst_cnt > 0 or not master_candidate") == \
        ["|", [">", "pinst_cnt", 0], ["!", ["?", "master_candidate"]]]
    assert qlang.ParseFilter("(be/vcpus == 3 or be/vcpus == 6) and"
                             " pnode.group =~ m/^rack/") == \
        ["&", ["|", ["=", "be/vcpus", 3], ["=", "be/vcpus", 6]],
         ["=~", "pnode.group", "^rack"]]


@pytest.mark.parametrize("text,offset,fragment", [
    ("", 0, "empty"),
    ("   ", 3, "empty"),
    ("name ==", 7, "expected a value"),
    ("name == \"a", 8, "unterminated string"),
    ("name == 'a\\", 10, "backslash at the end"),
    ("name == \"\\q\"", 9, "unknown escape"),
    ("(a", 2, "expected ')'"),
    ("a)", 1, "unexpected ')'"),
    ("a b", 2, "unexpected 'b'"),
    ("a and", 5, "expected a field name"),
    ("a or or b", 5, "expected a field name"),
    ("name =~ /[/", 8, "invalid regular expression"),
    ("name =~ /abc", 8, "unterminated regular expression"),
    ("name =~ /a/x", 11, "flag"),
    ("name =~ \"a\"", 8, "expected a regular expression"),
    ("name =* /a/", 8, "expected a quoted glob"),
    ("name == other", 8, "expected a value"),
    ("\"x\" tags", 4, "expected 'in'"),
    ("\"x\" in 3", 7, "expected a field name"),
    ("name $ 1", 5, "unexpected character '$'"),
    ("== 1", 0, "expected a field name"),
    ("true", 4, "expected 'in'"),
])
def test_errors_carry_the_offset(text, offset, fragment):
    with pytest.raises(errors.QueryFilterParseError) as info:
        qlang.ParseFilter(text)
    message = info.value.args[0]
    assert f"at offset {offset}:" in message
    assert fragment in message
    assert info.value.args[1] == (offset, text)
    # the caret line points at the offset
    assert message.splitlines()[-1] == "  " + " " * offset + "^"


def test_not_text():
    with pytest.raises(errors.QueryFilterParseError, match="must be text"):
        qlang.ParseFilter(["=", "a", 1])  # type: ignore[arg-type]


def test_make_filter():
    assert qlang.MakeFilter(None, False) is None
    assert qlang.MakeFilter([], True) is None
    assert qlang.MakeFilter(["node1", "node2"], False) == \
        ["|", ["=", "name", "node1"], ["=", "name", "node2"]]
    assert qlang.MakeFilter(["node*"], False) == ["|", ["=~", "name", "^node.*$"]]
    assert qlang.MakeFilter(["1", "2"], False, namefield="id", isnumeric=True) == \
        ["|", ["=", "id", 1], ["=", "id", 2]]
    with pytest.raises(errors.OpPrereqError, match="Invalid id 'x'"):
        qlang.MakeFilter(["x"], False, namefield="id", isnumeric=True)
    # one argument looking like a filter is parsed
    assert qlang.MakeFilter(["pinst_cnt != 0"], False) == ["!=", "pinst_cnt", 0]
    # -F forces it, and joins words
    assert qlang.MakeFilter(["master_candidate"], True) == ["?", "master_candidate"]
    assert qlang.MakeFilter(["offline", "==", "true"], True) == ["=", "offline", True]


def test_parsed_filters_compile():
    table = FieldTable("test", [
        FieldDefinition("name", "Name", "text", "Name", lambda c, i: i["name"]),
        FieldDefinition("offline", "Offline", "bool", "Offline",
                        lambda c, i: i["offline"]),
        FieldDefinition("tags", "Tags", "other", "Tags", lambda c, i: i["tags"]),
        FieldDefinition("cnt", "Cnt", "number", "Count", lambda c, i: i["cnt"]),
    ])
    items = [{"name": "node1", "offline": False, "tags": ["x"], "cnt": 0},
             {"name": "node2", "offline": True, "tags": [], "cnt": 2},
             {"name": "other", "offline": False, "tags": [], "cnt": 5}]

    def names(text):
        compiled = query.CompileFilter(table.get, qlang.ParseFilter(text))
        return [item["name"] for item in items if compiled(None, item)]

    assert names("name =~ /^node/ and offline == false") == ["node1"]
    assert names("cnt > 0 or not offline") == ["node1", "node2", "other"]
    assert names("\"x\" in tags") == ["node1"]
    assert names("\"x\" not in tags") == ["node2", "other"]
    assert names("name =* 'NODE?'") == []
    assert names("name =~ /^NODE/i") == ["node1", "node2"]
    assert names("cnt >= 2 and cnt <= 4 or name == 'other'") == ["node2", "other"]
    assert names("offline") == ["node2"]


# --- Round trip: generated filter -> text -> the same filter -----------------------

_fields = st.from_regex(r"\A[a-z_][a-z0-9_./]{0,8}\Z").filter(
    lambda name: name not in qlang.KEYWORDS and not name.startswith("m/"))
_strings = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)),
                   max_size=10)
_values = st.one_of(st.booleans(), st.integers(-10**6, 10**6), _strings,
                    st.floats(-1e6, 1e6, allow_nan=False).map(lambda f: round(f, 3)))
_regexps = st.from_regex(r"\A[a-z0-9^$.*+?/#|\\]{0,8}\Z").filter(
    lambda text: _valid_regexp(text))


def _valid_regexp(text: str) -> bool:
    import re
    try:
        re.compile(text)
    except re.error:
        return False
    return sum(delim in text for delim in qlang.REGEXP_DELIMITERS) < 4


_leaves = st.one_of(
    st.tuples(st.sampled_from(["=", "!=", "<", "<=", ">", ">="]), _fields, _values)
    .map(list),
    st.tuples(_fields, _regexps).map(lambda p: ["=~", p[0], p[1]]),
    st.tuples(_fields, _values).map(lambda p: ["=[]", p[0], p[1]]),
    _fields.map(lambda name: ["?", name]),
)
_filters = st.recursive(
    _leaves,
    lambda children: st.one_of(
        children.map(lambda sub: ["!", sub]),
        st.lists(children, min_size=2, max_size=4).map(lambda subs: ["&"] + subs),
        st.lists(children, min_size=2, max_size=4).map(lambda subs: ["|"] + subs),
    ),
    max_leaves=12)


@settings(max_examples=300, deadline=None)
@given(_filters)
def test_round_trip(qfilter):
    text = qlang.FormatFilter(qfilter)
    assert qlang.ParseFilter(text) == qfilter, text
