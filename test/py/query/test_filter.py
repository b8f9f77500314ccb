"""Tests for ganeti.query.filter: every operator, bad filters, name hints."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ganeti import errors, query
from ganeti.constants import QFT_BOOL, QFT_NUMBER, QFT_NUMBER_FLOAT, QFT_OTHER, QFT_TEXT
from ganeti.query import filter as qfilter_mod
from ganeti.query.fields import FieldDefinition, FieldTable


def _get(key: str):
    return lambda ctx, item: item.get(key, query.UNAVAIL)


TABLE = FieldTable("test", [
    FieldDefinition("name", "Name", QFT_TEXT, "Name", _get("name")),
    FieldDefinition("host", "Host", QFT_TEXT, "Host name", _get("host"),
                    flags=query.QFF_HOSTNAME),
    FieldDefinition("num", "Num", QFT_NUMBER, "A number", _get("num")),
    FieldDefinition("ratio", "Ratio", QFT_NUMBER_FLOAT, "A float", _get("ratio")),
    FieldDefinition("flag", "Flag", QFT_BOOL, "A boolean", _get("flag")),
    FieldDefinition("tags", "Tags", QFT_OTHER, "A list", _get("tags")),
    FieldDefinition("other", "Other", QFT_OTHER, "Anything", _get("other")),
    FieldDefinition("id", "ID", QFT_NUMBER, "Job ID", _get("id"),
                    flags=query.QFF_JOB_ID),
    FieldDefinition("ts", "Stamp", QFT_OTHER, "Split timestamp", _get("ts"),
                    flags=query.QFF_SPLIT_TIMESTAMP),
])

ITEMS = [
    {"name": "alpha", "host": "node1.example.com", "num": 1, "ratio": 0.5,
     "flag": True, "tags": ["a", "b"], "other": {"k": 1}, "id": 1,
     "ts": [100, 500000]},
    {"name": "beta", "host": "node2.example.com", "num": 10, "ratio": 2.0,
     "flag": False, "tags": [], "other": [1, 2], "id": 2, "ts": (200, 0)},
    {"name": "gamma", "host": "NODE10.example.com", "num": -3, "ratio": 1.0,
     "flag": True, "tags": ["c", ["x", 1]], "other": None, "id": 10, "ts": None},
    # a row whose values are missing: every field UNAVAIL
    {},
]


def names(qfilter: Any) -> list[Any]:
    """The "name" values (None for the empty item) matching ``qfilter``."""
    compiled = query.CompileFilter(TABLE.get, qfilter)
    return [item.get("name") for item in ITEMS if compiled(None, item)]


def parse_error(qfilter: Any, match: str) -> errors.QueryFilterParseError:
    with pytest.raises(errors.QueryFilterParseError) as info:
        query.CompileFilter(TABLE.get, qfilter)
    # the message is the first argument, the offending part the second
    assert re.search(match, info.value.args[0]), info.value.args[0]
    return info.value


# --- operators ------------------------------------------------------------------------

@pytest.mark.parametrize("op", ["=", "=="])
def test_equal(op):
    assert names([op, "name", "beta"]) == ["beta"]
    assert names([op, "num", 10]) == ["beta"]
    assert names([op, "flag", True]) == ["alpha", "gamma"]
    assert names([op, "ratio", 1]) == ["gamma"]
    assert names([op, "tags", ["a", "b"]]) == ["alpha"]
    assert names([op, "tags", []]) == ["beta"]
    assert names([op, "other", None]) == ["gamma"]
    assert names([op, "other", {"k": 1}]) == ["alpha"]


def test_equal_does_not_confuse_booleans_and_numbers():
    assert names(["=", "other", [1, 2]]) == ["beta"]
    assert names(["=", "other", [True, 2]]) == []


def test_not_equal_is_the_negation_of_equal():
    assert names(["!=", "name", "beta"]) == ["alpha", "gamma", None]
    assert names(["!=", "num", 1]) == ["beta", "gamma", None]


@pytest.mark.parametrize("op,value,expected", [
    ("<", 1, ["gamma"]),
    ("<=", 1, ["alpha", "gamma"]),
    (">", 1, ["beta"]),
    (">=", 1, ["alpha", "beta"]),
])
def test_order(op, value, expected):
    # the row without values never orders
    assert names([op, "num", value]) == expected


def test_order_on_text_and_mixed_types():
    assert names(["<", "name", "beta"]) == ["alpha"]
    assert names([">=", "name", "beta"]) == ["beta", "gamma"]
    # a list or dict value against a number has no order: no match, no crash
    assert names(["<", "other", 5]) == []
    assert names([">", "tags", ["b"]]) == ["gamma"]
    assert names([">", "tags", [5]]) == []
    assert names(["<", "tags", ["b"]]) == ["alpha", "beta"]


def test_regexp():
    assert names(["=~", "name", "^(al|ga)"]) == ["alpha", "gamma"]
    assert names(["=~", "name", "ET"]) == []
    assert names(["=~", "name", "(?i)ET"]) == ["beta"]
    # search, not match
    assert names(["=~", "name", "mm"]) == ["gamma"]
    # non-text values never match
    assert names(["=~", "tags", "a"]) == []


def test_contains():
    assert names(["=[]", "tags", "a"]) == ["alpha"]
    assert names(["=[]", "tags", ["x", 1]]) == ["gamma"]
    assert names(["=[]", "other", "k"]) == ["alpha"]
    assert names(["=[]", "other", 2]) == ["beta"]
    assert names(["=[]", "other", ["unhashable"]]) == []
    # on text: substring
    assert names(["=[]", "name", "et"]) == ["beta"]


def test_true():
    assert names(["?", "flag"]) == ["alpha", "gamma"]
    assert names(["?", "tags"]) == ["alpha", "gamma"]
    assert names(["?", "other"]) == ["alpha", "beta"]
    # a missing value is not true
    assert names(["!", ["?", "name"]]) == [None]


def test_logic():
    assert names(["|", ["=", "name", "alpha"], ["=", "num", 10]]) == ["alpha", "beta"]
    assert names(["&", ["?", "flag"], [">", "num", 0]]) == ["alpha"]
    assert names(["!", ["=", "name", "alpha"]]) == ["beta", "gamma", None]
    assert names(["|"]) == []
    assert names(["&"]) == ["alpha", "beta", "gamma", None]


def test_nesting():
    qfilter = ["&",
               ["|", ["=", "name", "alpha"], ["=", "name", "gamma"],
                ["=", "name", "beta"]],
               ["!", ["&", ["?", "flag"], ["<", "num", 0]]],
               ["!", ["!", ["=~", "name", "a$"]]]]
    assert names(qfilter) == ["alpha", "beta"]
    # tuples are accepted as lists
    assert names(("|", ("=", "name", "beta"))) == ["beta"]


def test_nesting_limit():
    deep: Any = ["?", "flag"]
    for _ in range(qfilter_mod.MAX_DEPTH - 1):
        deep = ["!", deep]
    names(deep)  # exactly the limit
    err = parse_error(["!", deep], "nested too deeply")
    assert err.args[1] == ["?", "..."]
    # arbitrarily deep input fails just as cleanly, and the error encodes
    for _ in range(100000):
        deep = ["!", deep]
    err = parse_error(deep, "nested too deeply")
    assert errors.EncodeException(err)[1][1] == ["!", "..."]


def test_hostname_fields_match_components_case_insensitively():
    assert names(["=", "host", "node1"]) == ["alpha"]
    assert names(["=", "host", "node10.EXAMPLE.com"]) == ["gamma"]
    assert names(["=", "host", "node1.ex"]) == []
    assert names(["!=", "host", "node2"]) == ["alpha", "gamma", None]


def test_job_id_fields_accept_digit_strings():
    assert names(["=", "id", "10"]) == ["gamma"]
    assert names(["<", "id", "10"]) == ["alpha", "beta"]
    assert names([">=", "id", 2]) == ["beta", "gamma"]
    parse_error(["=", "id", "ten"], "Invalid job ID 'ten'")
    parse_error(["=", "id", -1], "Invalid job ID -1")
    parse_error(["=", "id", True], "Invalid job ID True")


def test_split_timestamp_fields_compare_as_seconds():
    assert names(["<", "ts", 150]) == ["alpha"]
    assert names([">", "ts", 100.4]) == ["alpha", "beta"]
    assert names(["=", "ts", 100.5]) == ["alpha"]
    assert names(["=", "ts", [200, 0]]) == ["beta"]
    assert names([">=", "ts", [100, 500001]]) == ["beta"]
    # no timestamp: never compares
    assert names(["!", ["<", "ts", 10 ** 12]]) == ["gamma", None]
    parse_error(["<", "ts", "soon"], "Invalid timestamp 'soon'")
    parse_error(["<", "ts", [1, 2, 3]], "Invalid timestamp")


def test_special_values_never_match():
    for op in ["=", "<", "<=", ">", ">=", "=[]"]:
        assert None not in names([op, "name", "x"])
    assert None not in names(["=~", "name", ".*"])
    assert None in names(["!=", "name", "x"])


# --- bad filters ------------------------------------------------------------------------

@pytest.mark.parametrize("qfilter", ["name", 5, {"=": 1}, [], None, True])
def test_filter_must_be_a_non_empty_list(qfilter):
    err = parse_error(qfilter, "Invalid filter on level 0")
    assert err.args[1] == qfilter


def test_bad_sub_filter_is_named():
    err = parse_error(["|", ["=", "name", "a"], "oops"], "Invalid filter on level 1")
    assert err.args[1] == "oops"
    assert '"oops"' in err.args[0]


@pytest.mark.parametrize("op", ["~", "AND", "===", 7, None, ["|"]])
def test_unknown_operator(op):
    err = parse_error([op, "name", "x"], "Unknown filter operator")
    assert err.args[1] == [op, "name", "x"]


@pytest.mark.parametrize("qfilter,match", [
    (["!"], "'!' expects exactly one operand, got 0"),
    (["!", ["?", "flag"], ["?", "flag"]], "'!' expects exactly one operand, got 2"),
    (["?"], "'\\?' expects exactly one operand"),
    (["?", "flag", "name"], "'\\?' expects exactly one operand"),
    (["="], "'=' expects a field name and a value, got 0"),
    (["=", "name"], "'=' expects a field name and a value, got 1"),
    (["<", "num", 1, 2], "'<' expects a field name and a value, got 3"),
    (["=~", "name"], "'=~' expects"),
    (["=[]", "tags", 1, 2], "'=\\[\\]' expects"),
])
def test_wrong_arity(qfilter, match):
    parse_error(qfilter, match)


@pytest.mark.parametrize("qfilter", [
    ["=", "nosuch", 1],
    ["?", "nosuch"],
    ["|", ["=", "name", "x"], ["!", ["=~", "nosuch", "x"]]],
    ["=", 5, 5],
    ["=", ["name"], "x"],
])
def test_unknown_field(qfilter):
    parse_error(qfilter, "Unknown field")


def test_unknown_field_message_names_the_part():
    err = parse_error(["&", ["?", "flag"], ["=", "nosuch", 1]], "Unknown field \"nosuch\"")
    assert err.args[1] == ["=", "nosuch", 1]


@pytest.mark.parametrize("qfilter,match", [
    (["=", "num", "1"], "field 'num' \\(kind number\\) with \"1\" \\(str\\): expected an integer"),
    (["=", "num", True], "expected an integer"),
    (["<", "num", 1.5], "expected an integer"),
    (["=", "name", 1], "expected a string"),
    (["=", "flag", 1], "expected a boolean"),
    (["=", "ratio", "x"], "expected a number"),
    (["=[]", "name", 1], "expected a string"),
])
def test_value_of_wrong_kind(qfilter, match):
    parse_error(qfilter, match)


@pytest.mark.parametrize("qfilter,match", [
    (["=~", "name", "("], "Invalid regular expression '\\(' for field 'name'"),
    (["=~", "name", "[a-"], "Invalid regular expression"),
    (["=~", "tags", 5], "regular expression for field 'tags' must be a string"),
    (["=~", "num", "1"], "expected an integer"),
])
def test_bad_regexp(qfilter, match):
    parse_error(qfilter, match)


def test_parse_error_is_encodable():
    err = parse_error(["=", "nosuch", [1, (2, 3)]], "Unknown field")
    encoded = errors.EncodeException(err)
    assert encoded[0] == "QueryFilterParseError"
    with pytest.raises(errors.QueryFilterParseError, match="nosuch"):
        errors.MaybeRaise(encoded)


# --- what a compiled filter reports -----------------------------------------------------

def test_compiled_filter_reports_fields_and_data():
    table = FieldTable("t", [
        FieldDefinition("a", "A", QFT_TEXT, "Field a", _get("a"), data="kind-a"),
        FieldDefinition("b", "B", QFT_TEXT, "Field b", _get("b")),
        FieldDefinition("c", "C", QFT_TEXT, "Field c", _get("c"), data="kind-c"),
    ])
    compiled = query.CompileFilter(table.get, ["|", ["=", "a", "x"], ["?", "b"]])
    assert compiled.fields == frozenset(["a", "b"])
    assert compiled.data == frozenset(["kind-a"])


@pytest.mark.parametrize("qfilter,expected", [
    (["=", "name", "a"], ["a"]),
    (["==", "name", "a"], ["a"]),
    (["|", ["=", "name", "b"], ["=", "name", "a"], ["=", "name", "b"]], ["b", "a"]),
    (["|", ["|", ["=", "name", "a"]], ["=", "name", "c"]], ["a", "c"]),
    (["|"], None),
    (["&", ["=", "name", "a"]], None),
    (["|", ["=", "name", "a"], ["=", "num", 1]], None),
    (["|", ["=", "name", "a"], ["!=", "name", "b"]], None),
    (["!", ["=", "name", "a"]], None),
    (["=~", "name", "a"], None),
    (["?", "name"], None),
    (["=", "num", 1], None),
])
def test_requested_names(qfilter, expected):
    assert query.GetRequestedNames(qfilter, "name") == expected
    assert query.CompileFilter(TABLE.get, qfilter, "name").requested_names == expected


def test_requested_names_without_name_field_or_filter():
    assert query.GetRequestedNames(None, "name") is None
    assert query.CompileFilter(TABLE.get, ["=", "name", "a"]).requested_names is None
    assert query.GetRequestedNames("garbage", "name") is None
    assert query.GetRequestedNames(["|", ["=", "name", [1]], ["=", "name", [1]]],
                                   "name") == [[1]]


def test_requested_job_ids_are_parsed():
    qfilter = ["|", ["=", "id", "10"], ["=", "id", 2], ["=", "id", 10]]
    assert query.CompileFilter(TABLE.get, qfilter, "id").requested_names == [10, 2]


def test_make_simple_filter():
    assert query.MakeSimpleFilter("name", None) is None
    assert query.MakeSimpleFilter("name", []) is None
    qfilter = query.MakeSimpleFilter("name", ["beta", "gamma"])
    assert qfilter == ["|", ["=", "name", "beta"], ["=", "name", "gamma"]]
    assert names(qfilter) == ["beta", "gamma"]
    assert query.GetRequestedNames(qfilter, "name") == ["beta", "gamma"]


# --- property: the compiled filter agrees with a direct reading of the language --------

NUMS = st.integers(-5, 5)
WORDS = st.sampled_from(["", "a", "b", "ab", "ba", "abc"])
REGEXPS = st.sampled_from(["a", "^a", "b$", "a.c", "^$", "(a|c)"])


def _leaf() -> st.SearchStrategy[list[Any]]:
    return st.one_of(
        st.tuples(st.sampled_from(["=", "==", "!=", "<", "<=", ">", ">="]),
                  st.just("num"), NUMS).map(list),
        st.tuples(st.sampled_from(["=", "!=", "<", ">=", "=[]"]),
                  st.just("name"), WORDS).map(list),
        st.tuples(st.just("=~"), st.just("name"), REGEXPS).map(list),
        st.tuples(st.just("=[]"), st.just("tags"), WORDS).map(list),
        st.tuples(st.just("?"), st.sampled_from(["num", "name", "tags", "flag"])).map(list),
    )


FILTERS = st.recursive(
    _leaf(),
    lambda inner: st.one_of(
        st.tuples(st.just("!"), inner).map(list),
        st.lists(inner, max_size=3).map(lambda subs: ["|"] + subs),
        st.lists(inner, max_size=3).map(lambda subs: ["&"] + subs),
    ),
    max_leaves=8)

ROWS = st.fixed_dictionaries({
    "num": NUMS, "name": WORDS, "tags": st.lists(WORDS, max_size=3),
    "flag": st.booleans()})


def reference(qfilter: list[Any], row: dict[str, Any]) -> bool:
    """The meaning of a filter, read directly off the language definition."""
    op, *args = qfilter
    if op == "|":
        return any(reference(sub, row) for sub in args)
    if op == "&":
        return all(reference(sub, row) for sub in args)
    if op == "!":
        return not reference(args[0], row)
    if op == "?":
        return bool(row[args[0]])
    field, value = args
    lhs = row[field]
    if op in ("=", "=="):
        return lhs == value
    if op == "!=":
        return lhs != value
    if op == "=~":
        return re.search(value, lhs) is not None
    if op == "=[]":
        return value in lhs
    return {"<": lhs < value, "<=": lhs <= value, ">": lhs > value,
            ">=": lhs >= value}[op]


def _depth(qfilter: Any) -> int:
    if qfilter and qfilter[0] in ("|", "&", "!"):
        return 1 + max((_depth(sub) for sub in qfilter[1:]), default=0)
    return 1


@settings(max_examples=300, deadline=None)
@given(FILTERS, st.lists(ROWS, max_size=4))
def test_compiled_filter_agrees_with_reference(qfilter, rows):
    if _depth(qfilter) > qfilter_mod.MAX_DEPTH:
        return
    compiled = query.CompileFilter(TABLE.get, qfilter)
    for row in rows:
        assert compiled(None, row) == reference(qfilter, row), (qfilter, row)
