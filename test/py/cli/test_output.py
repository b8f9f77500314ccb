"""Tests for ganeti.cli.output: tables, query results, filters, info layout."""

from __future__ import annotations

import time

import pytest
from clihelpers import Field

from ganeti import cli, constants, errors
from ganeti.cli import output

N = constants.RS_NORMAL


# --- ParseFields -------------------------------------------------------------------

def test_parse_fields_default_when_not_given():
    default = ["id", "status"]
    result = cli.ParseFields(None, default)
    assert result == ["id", "status"]
    result.append("x")
    assert default == ["id", "status"]  # the default list is not shared


def test_parse_fields_replaces_the_default():
    assert cli.ParseFields("name,mode", ["id"]) == ["name", "mode"]


def test_parse_fields_plus_adds_to_the_default():
    assert cli.ParseFields("+priority,end_ts", ["id", "status"]) == \
        ["id", "status", "priority", "end_ts"]


@pytest.mark.parametrize("value", ["", "+", "id,,status", "id,"])
def test_parse_fields_refuses_empty_names(value):
    with pytest.raises(errors.OpPrereqError, match="empty field name"):
        cli.ParseFields(value, ["id"])


# --- GenerateTable -------------------------------------------------------------------

HEADERS = {"name": "Name", "size": "Size", "count": "Count"}


def test_generate_table_aligns_columns():
    lines = cli.GenerateTable(HEADERS, ["name", "count"], None,
                              [["a", 5], ["longer", 123]], numfields=["count"])
    assert lines == [
        "Name   Count",
        "a          5",
        "longer   123",
    ]


def test_generate_table_last_text_column_is_not_padded():
    lines = cli.GenerateTable(HEADERS, ["count", "name"], None,
                              [[1, "x"], [22, "longer"]], numfields=["count"])
    assert lines == ["Count Name", "    1 x", "   22 longer"]


def test_generate_table_with_separator_and_no_headers():
    lines = cli.GenerateTable(None, ["name", "count"], "|",
                              [["a", 5], ["b", 6]], numfields=["count"])
    assert lines == ["a|5", "b|6"]


def test_generate_table_separator_with_percent_sign_is_literal():
    assert cli.GenerateTable(None, ["name", "count"], "%s",
                             [["a", 1]]) == ["a%s1"]


def test_generate_table_units():
    data = [["disk", 2048]]
    human = cli.GenerateTable(HEADERS, ["name", "size"], None, data,
                              unitfields=["size"])
    assert human[1].split() == ["disk", "2.0G"]
    # with a separator the default unit is MiB, for scripts
    assert cli.GenerateTable(None, ["name", "size"], ":", data,
                             unitfields=["size"]) == ["disk:2048"]
    assert cli.GenerateTable(None, ["name", "size"], ":", data,
                             unitfields=["size"], units="g") == ["disk:2.0"]


def test_generate_table_none_row_is_dashes_and_unknown_header_is_the_name():
    lines = cli.GenerateTable({"name": "Name"}, ["name", "other"], " ",
                              [["a", "b"], None])
    assert lines == ["Name other", "a b", "- -"]


# --- FormatQueryResult ---------------------------------------------------------------

def _Response(rows, fields=None):
    fields = fields or [Field("name"), Field("size", constants.QFT_UNIT),
                        Field("online", constants.QFT_BOOL)]
    return {"fields": fields, "data": rows}


def test_format_query_result_normal():
    resp = _Response([[[N, "node1"], [N, 1024], [N, True]],
                      [[N, "n2"], [N, 512], [N, False]]])
    status, lines = cli.FormatQueryResult(resp, header=True)
    assert status == cli.QR_NORMAL
    assert lines == ["Name  Size Online", "node1 1.0G Y", "n2    512M N"]


def test_format_query_result_units_and_separator():
    resp = _Response([[[N, "node1"], [N, 1024], [N, True]]])
    assert cli.FormatQueryResult(resp, separator=",")[1] == ["node1,1024,Y"]
    assert cli.FormatQueryResult(resp, separator=",", unit="g")[1] == ["node1,1.0,Y"]


@pytest.mark.parametrize("status,verbose_text,short_text", [
    (constants.RS_UNAVAIL, "(unavail)", "-"),
    (constants.RS_NODATA, "(nodata)", "?"),
    (constants.RS_OFFLINE, "(offline)", "*"),
])
def test_format_query_result_abnormal_statuses(status, verbose_text, short_text):
    resp = _Response([[[N, "node1"], [status, None], [N, True]]])
    qr, lines = cli.FormatQueryResult(resp, separator="|", verbose=True)
    assert qr == cli.QR_INCOMPLETE
    assert lines == [f"node1|{verbose_text}|Y"]
    assert cli.FormatQueryResult(resp, separator="|")[1] == [f"node1|{short_text}|Y"]


def test_format_query_result_unknown_field():
    fields = [Field("name"), Field("nosuch", constants.QFT_UNKNOWN)]
    resp = {"fields": fields,
            "data": [[[N, "a"], [constants.RS_UNKNOWN, None]]]}
    status, lines = cli.FormatQueryResult(resp, separator=" ", verbose=True)
    assert status == cli.QR_UNKNOWN
    assert lines == ["a (unknown)"]
    # without rows, the field definitions tell
    assert cli.FormatQueryResult({"fields": fields, "data": []})[0] == cli.QR_UNKNOWN


def test_format_query_result_override_and_timestamp():
    fields = [Field("id", constants.QFT_NUMBER), Field("ts", constants.QFT_TIMESTAMP)]
    resp = {"fields": fields, "data": [[[N, 7], [N, 0]]]}
    _, lines = cli.FormatQueryResult(
        resp, separator="/", format_override={"id": (lambda v: f"#{v}", False)})
    assert lines == [f"#7/{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(0))}"]


def test_format_query_result_accepts_objects():
    from ganeti.objects.misc import QueryFieldDefinition, QueryResponse
    resp = QueryResponse(fields=[QueryFieldDefinition(name="name", title="Name",
                                                      kind=constants.QFT_TEXT, doc="")],
                         data=[[[N, "x"]]])
    assert cli.FormatQueryResult(resp, header=True)[1] == ["Name", "x"]


def test_format_result_error_refuses_unknown_status():
    with pytest.raises(errors.ProgrammerError):
        cli.FormatResultError(99, True)


# --- Timestamps ------------------------------------------------------------------------

def test_format_timestamp():
    expected = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(1000)) + ".000042"
    assert cli.FormatTimestamp([1000, 42]) == expected
    assert cli.FormatTimestamp(None) == "?"
    assert cli.FormatTimestamp([1, 2, 3]) == "?"


# --- Filters -----------------------------------------------------------------------------

def test_make_filter_names_and_numbers():
    assert cli.MakeFilter(None, False) is None
    assert cli.MakeFilter(["a", "b"], False) == \
        ["|", ["=", "name", "a"], ["=", "name", "b"]]
    assert cli.MakeFilter(["1", "22"], False, namefield="id", isnumeric=True) == \
        ["|", ["=", "id", 1], ["=", "id", 22]]


def test_make_filter_refuses_non_numeric_ids():
    with pytest.raises(errors.OpPrereqError, match="Invalid id 'x1'"):
        cli.MakeFilter(["x1"], False, namefield="id", isnumeric=True)


def test_make_filter_forced():
    assert cli.MakeFilter(['["=", "status", "error"]'], True) == ["=", "status", "error"]
    assert cli.MakeFilter(["status", "==", "error"], True) == ["==", "status", "error"]
    assert cli.MakeFilter(["id != 3"], True) == ["!=", "id", 3]


@pytest.mark.parametrize("text", ["[", "[]", "just words", '{"a": 1}'])
def test_parse_filter_text_refuses_garbage(text):
    with pytest.raises(errors.OpPrereqError, match="Invalid query filter"):
        cli.ParseFilterText(text)


# --- GenericList / GenericListFields ------------------------------------------------------

def test_generic_list_prints_table(fake_client, capsys):
    fake_client.query[constants.QR_LOCK] = _Response(
        [[[N, "cluster/BGL"], [N, 0], [N, False]]])
    rc = cli.GenericList(constants.QR_LOCK, ["name", "size", "online"], None, None,
                         None, True)
    assert rc == constants.EXIT_SUCCESS
    out = capsys.readouterr().out.splitlines()
    assert out == ["Name        Size Online", "cluster/BGL   0M N"]
    assert fake_client.calls == [("Query", (constants.QR_LOCK,
                                            ["name", "size", "online"], None))]


def test_generic_list_combines_names_and_filter(fake_client):
    fake_client.query["job"] = {"fields": [Field("id", constants.QFT_NUMBER)], "data": []}
    cli.GenericList("job", ["id"], ["3"], None, None, False, namefield="id",
                    isnumeric=True, qfilter=["=", "status", "error"])
    (_, (_, _, qfilter)), = fake_client.calls
    assert qfilter == ["&", ["|", ["=", "id", 3]], ["=", "status", "error"]]


def test_generic_list_unknown_field(fake_client, capsys):
    fake_client.query["job"] = {
        "fields": [Field("id", constants.QFT_NUMBER), Field("bogus", constants.QFT_UNKNOWN)],
        "data": [[[N, 1], [constants.RS_UNKNOWN, None]]]}
    rc = cli.GenericList("job", ["id", "bogus"], None, None, None, True)
    assert rc == constants.EXIT_UNKNOWN_FIELD
    captured = capsys.readouterr()
    assert "Warning: Queried for unknown fields bogus" in captured.err
    assert captured.out.splitlines() == ["Id Bogus", " 1 ??"]


def test_generic_list_fields(fake_client, capsys):
    fake_client.fields["job"] = [Field("id", constants.QFT_NUMBER, "ID", "Job ID"),
                                 Field("status", constants.QFT_TEXT, "Status", "State")]
    assert cli.GenericListFields("job", [], None, True) == constants.EXIT_SUCCESS
    assert capsys.readouterr().out.splitlines() == [
        "Name   Type   Title  Description",
        "id     Number ID     Job ID",
        "status Text   Status State",
    ]
    assert cli.GenericListFields("job", ["nope"], "|", False) == \
        constants.EXIT_UNKNOWN_FIELD
    captured = capsys.readouterr()
    assert captured.out.splitlines() == ["nope|Unknown|Nope|The nope"]
    assert "unknown fields nope" in captured.err


# --- Info layout --------------------------------------------------------------------------

def test_format_generic_info_nested():
    data = [[("Job ID", 1), ("Status", "success"),
             ("Opcodes", [[("Opcode", "OP_TEST_DELAY"),
                           ("Input fields", {"duration": 1.5, "OP_ID": "OP_TEST_DELAY"}),
                           ("Result", None),
                           ("Execution log", [[("Time", "t1"),
                                               ("Content", [1, "message", "hi"])]])]])]]
    assert cli.FormatGenericInfo(data) == [
        "- Job ID: 1",
        "  Status: success",
        "  Opcodes: ",
        "    - Opcode: OP_TEST_DELAY",
        "      Input fields: ",
        "        OP_ID: OP_TEST_DELAY",
        "        duration: 1.5",
        "      Result: None",
        "      Execution log: ",
        "        - Time: t1",
        "          Content: [1, message, hi]",
    ]


def test_format_generic_info_empty_values():
    assert cli.FormatGenericInfo([[("A", []), ("B", {}), ("C", "")]]) == \
        ["- A: []", "  B: {}", "  C: "]


def test_format_table_checks_row_length():
    with pytest.raises(errors.ProgrammerError):
        output.FormatTable([[1, 2]], [cli.TableColumn("a", str, False)], False, None)


def test_format_params_dict_info_marks_inherited_values():
    from ganeti import cli
    assert cli.FormatParamsDictInfo({"b": 2}, {"b": 2, "a": 1}) == [
        ("a", "default (1)"), ("b", "2")]
    assert cli.FormatParamsDictInfo(None, {"x": "y"}) == [("x", "default (y)")]
    assert cli.FormatParamsDictInfo({"x": 1}, None) == []
