"""OpTestDummy, OpQuery and OpQueryFields through the processor."""

from __future__ import annotations

import os
import sys

import pytest

from ganeti import constants, errors, opcodes

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import instancehelpers as ih  # noqa: E402


@pytest.fixture
def ctx(tmp_path):
    return ih.MakeContext(tmp_path)


def _Run(ctx, op):
    return ih.Run(ctx, op, ih.JobCallbacks)


def _Dummy(**kwargs):
    params = {"result": None, "messages": [], "fail": False, "submit_jobs": None}
    params.update(kwargs)
    return opcodes.OpTestDummy(**params)


def test_dummy_result_and_messages(ctx):
    result, cbs = _Run(ctx, _Dummy(result={"a": 1}, messages=["one", "two"]))
    assert result == {"a": 1}
    assert cbs.feedback == ["one", "two"]
    result, cbs = _Run(ctx, _Dummy(result=3, messages="single"))
    assert (result, cbs.feedback) == (3, ["single"])


def test_dummy_failure(ctx):
    with pytest.raises(errors.OpExecError, match="failure was requested"):
        _Run(ctx, _Dummy(fail=True, messages=["before"]))


def test_dummy_submits_jobs(ctx):
    jobs = [[{"OP_ID": "OP_TEST_DELAY", "duration": 0.1}],
            [opcodes.OpTestDelay(duration=0.2), opcodes.OpTestDelay(duration=0.3)]]
    result, cbs = _Run(ctx, _Dummy(submit_jobs=jobs))
    assert result == {constants.JOB_IDS_KEY: [(True, 100), (True, 101)]}
    assert [[op.duration for op in job] for job in cbs.jobs] == [[0.1], [0.2, 0.3]]


def test_dummy_refuses_bad_jobs(ctx):
    with pytest.raises(errors.OpPrereqError, match="list of jobs"):
        _Run(ctx, _Dummy(submit_jobs=[{"OP_ID": "OP_TEST_DELAY"}]))


def test_query_and_fields(ctx):
    result, _ = _Run(ctx, opcodes.OpQuery(what=constants.QR_NODE, fields=["name"],
                                          qfilter=None))
    assert [field["name"] for field in result["fields"]] == ["name"]
    assert result["data"] == [[[constants.RS_NORMAL, ih.MASTER]]]
    result, _ = _Run(ctx, opcodes.OpQueryFields(what=constants.QR_EXPORT, fields=None))
    assert sorted(field["name"] for field in result["fields"]) == ["export", "node"]


def test_query_unknown_field(ctx):
    result, _ = _Run(ctx, opcodes.OpQuery(what=constants.QR_NODE, fields=["nosuch"],
                                          qfilter=None))
    assert result["fields"][0]["kind"] == constants.QFT_UNKNOWN
