"""Tests for the query framework: field tables, the registry, QueryFields."""

from __future__ import annotations

import types

import pytest

from ganeti import constants, errors, objects, query
from ganeti.constants import QFT_NUMBER, QFT_OTHER, QFT_TEXT, RS_NORMAL
from ganeti.query import engine
from ganeti.query.fields import FieldDefinition, FieldTable, ToPlain, ToResult


def _get(key):
    return lambda ctx, item: item[key]


def _field(name="name", title="Name", kind=QFT_TEXT, doc="The name", **kwargs):
    return FieldDefinition(name, title, kind, doc, _get(name), **kwargs)


# --- field tables ---------------------------------------------------------------------------

@pytest.mark.parametrize("definition,match", [
    (_field(name="Bad Name"), "name must match"),
    (_field(name=""), "name must match"),
    (_field(title="Two words"), "title 'Two words' must be one word"),
    (_field(doc="lower case start"), "doc must be one line"),
    (_field(doc="Ends with a dot."), "doc must be one line"),
    (_field(doc="Two\nlines"), "doc must be one line"),
    (_field(kind="colour"), "kind 'colour' is not a field kind"),
    (_field(kind=constants.QFT_UNKNOWN), "is not a field kind"),
    (_field(flags=0x1000), "unknown flags 0x1000"),
    (FieldDefinition("name", "Name", QFT_TEXT, "The name", "not callable"),
     "getter is not callable"),
])
def test_bad_definitions_are_refused(definition, match):
    with pytest.raises(errors.ProgrammerError, match=match):
        FieldTable("test", [definition])


def test_duplicates_and_aliases():
    with pytest.raises(errors.ProgrammerError, match="Duplicate test query field 'name'"):
        FieldTable("test", [_field(), _field(title="Other")])
    with pytest.raises(errors.ProgrammerError, match="titles: name"):
        FieldTable("test", [_field(), _field(name="other", title="NAME")])
    with pytest.raises(errors.ProgrammerError, match="alias 'x' -> 'nosuch'"):
        FieldTable("test", [_field()], aliases=[("x", "nosuch")])
    with pytest.raises(errors.ProgrammerError, match="alias 'name'"):
        FieldTable("test", [_field()], aliases=[("name", "name")])
    table = FieldTable("test", [_field()], aliases=[("n", "name")])
    assert table["n"].name == "n" and table["n"].title == "Name"
    assert table["n"].Get(None, {"name": "x"}) == "x"
    assert list(table) == ["name", "n"] and len(table) == 2


def test_select_and_sort():
    table = FieldTable("test", [_field(name="b10", title="B10"),
                                _field(name="b2", title="B2"),
                                _field(name="a", title="A")])
    assert [fdef.name for fdef in table.AllSorted()] == ["a", "b2", "b10"]
    selected = table.Select(["b2", "zz", "a"])
    assert [fdef.kind for fdef in selected] == [QFT_TEXT, constants.QFT_UNKNOWN, QFT_TEXT]
    assert selected[1].Get(None, {}) is query.UNKNOWN
    assert table.Unknown(["a", "zz", "yy"]) == ["zz", "yy"]


def test_special_statuses():
    assert ToResult(5) == [RS_NORMAL, 5]
    assert ToResult(None) == [RS_NORMAL, None]
    assert ToResult(query.UNKNOWN) == [constants.RS_UNKNOWN, None]
    assert ToResult(query.NODATA) == [constants.RS_NODATA, None]
    assert ToResult(query.UNAVAIL) == [constants.RS_UNAVAIL, None]
    assert ToResult(query.OFFLINE) == [constants.RS_OFFLINE, None]
    assert ToPlain(query.OFFLINE) is None and ToPlain(0) == 0
    assert query.IsSpecial(query.NODATA) and not query.IsSpecial(None)
    assert "unavail" in repr(query.UNAVAIL)


# --- registry and entry points ---------------------------------------------------------------

@pytest.fixture
def fruit():
    """A throw-away resource registered for one test."""
    table = FieldTable("fruit", [
        _field(),
        FieldDefinition("weight", "Weight", QFT_NUMBER, "Weight in grams",
                        lambda ctx, item: item.get("weight", query.NODATA)),
        FieldDefinition("origin", "Origin", QFT_OTHER, "Where it grew",
                        lambda ctx, item: ctx["origin"], data="origin"),
    ])
    calls = []

    def collect(fquery, context):
        calls.append((fquery.RequestedNames(), fquery.RequestedData()))
        return {"origin": "here"}, context.fruit

    res = query.RegisterResource(query.Resource(
        "fruit", table, collect, namefield="name",
        sort_key=lambda item: item["name"]))
    yield types.SimpleNamespace(resource=res, calls=calls)
    del engine.RESOURCES["fruit"]


def test_registered_resource_answers_queries(fruit):
    context = types.SimpleNamespace(fruit=[{"name": "pear", "weight": 150},
                                           {"name": "apple"}])
    result = query.Query("fruit", ["name", "weight", "origin"], None, context)
    assert result["data"] == [
        [[RS_NORMAL, "apple"], [constants.RS_NODATA, None], [RS_NORMAL, "here"]],
        [[RS_NORMAL, "pear"], [RS_NORMAL, 150], [RS_NORMAL, "here"]],
    ]
    result = query.Query("fruit", ["weight"], query.MakeSimpleFilter("name", ["pear"]),
                         context)
    assert result["data"] == [[[RS_NORMAL, 150]]]
    assert fruit.calls == [(None, frozenset(["origin"])), (["pear"], frozenset())]
    # the answer parses as Ganeti's QueryResponse object
    response = objects.QueryResponse.FromDict(result)
    assert response.fields[0].name == "weight"


def test_register_twice_or_with_a_bad_name_field(fruit):
    assert query.RegisterResource(fruit.resource) is fruit.resource
    with pytest.raises(errors.ProgrammerError, match="registered twice"):
        query.RegisterResource(query.Resource("fruit", fruit.resource.fields,
                                              fruit.resource.collect))
    with pytest.raises(errors.ProgrammerError, match="Name field 'nosuch'"):
        query.RegisterResource(query.Resource("veg", fruit.resource.fields,
                                              fruit.resource.collect, namefield="nosuch"))
    assert "veg" not in query.RESOURCES


@pytest.mark.parametrize("resource", ["xyz", "nosuchresource", None, 5])
def test_unknown_resource(resource):
    for call in (lambda: query.Query(resource, ["name"], None, None),
                 lambda: query.QueryFields(resource, None)):
        with pytest.raises(errors.OpPrereqError) as info:
            call()
        assert info.value.args[1] == errors.ECODE_INVAL
        assert f"Resource {resource!r} is not queryable here" in info.value.args[0]
        assert "job" in info.value.args[0] and "lock" in info.value.args[0]


@pytest.mark.parametrize("fields", ["name", None, [1], ["name", None], {"name": 1}])
def test_query_fields_must_be_a_list_of_names(fields):
    with pytest.raises(errors.OpPrereqError, match="must be a list of field names"):
        query.Query("lock", fields, None, types.SimpleNamespace(glm=None))


def test_query_fields_all():
    for fields in (None, []):
        result = query.QueryFields("job", fields)
        names = [fdef["name"] for fdef in result["fields"]]
        assert names == sorted(names) and len(names) == 16
        assert set(result["fields"][0]) == {"name", "title", "kind", "doc"}
    assert objects.QueryFieldsResponse.FromDict(result).fields[0].name == "archived"


def test_query_fields_some_and_unknown():
    result = query.QueryFields("job", ["status", "nosuch", "id"])
    assert result == {"fields": [
        {"name": "status", "title": "Status", "kind": "text", "doc": "Job status"},
        {"name": "nosuch", "title": "nosuch", "kind": "unknown",
         "doc": "Unknown field 'nosuch'"},
        {"name": "id", "title": "ID", "kind": "number", "doc": "Job ID"},
    ]}
    with pytest.raises(errors.OpPrereqError, match="must be a list"):
        query.QueryFields("job", "status")


def test_field_query_reports_what_it_needs():
    fquery = query.FieldQuery(query.JOB_FIELDS, ["id", "status"],
                              ["|", ["=", "id", 3], ["=", "id", "4"]], "id")
    assert fquery.RequestedNames() == [3, 4]
    assert fquery.References("status") and fquery.References("id")
    assert not fquery.References("archived")
    assert query.FieldQuery(query.JOB_FIELDS, ["id"], ["?", "archived"]).References(
        "archived")
    assert query.FieldQuery(query.JOB_FIELDS, ["id"]).RequestedNames() is None


def test_plain_rows_refuse_unknown_fields():
    fquery = query.FieldQuery(query.JOB_FIELDS, ["id", "nosuch"])
    with pytest.raises(errors.OpPrereqError, match="Unknown output fields selected: nosuch"):
        fquery.PlainRows(None, [])
