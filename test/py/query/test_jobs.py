"""Tests for the "job" query resource, QueryJobs and GetJobFieldValues."""

from __future__ import annotations

import copy
import json
import types
from typing import Any

import pytest

from ganeti import constants, errors, query
from ganeti.constants import RS_NORMAL, RS_UNAVAIL, RS_UNKNOWN


def _op(input_: dict[str, Any], status: str, result: Any = None,
        log: list[Any] | None = None, priority: int = 0,
        start: Any = None, exec_: Any = None, end: Any = None) -> dict[str, Any]:
    return {"input": input_, "status": status, "result": result,
            "log": log or [], "priority": priority, "start_timestamp": start,
            "exec_timestamp": exec_, "end_timestamp": end}


DELAY = {"OP_ID": "OP_TEST_DELAY", "duration": 0.001, "on_master": True,
         "on_nodes": [], "repeat": 0, "comment": None, "priority": 0,
         "depends": None, "debug_level": 0, "dry_run": False}
VERIFY = {"OP_ID": "OP_CLUSTER_VERIFY"}
FUTURE = {"OP_ID": "OP_FROM_THE_FUTURE", "flux": 1}

SUCCESS_JOB = {
    "id": 1, "status": "success", "archived": False,
    "ops": [_op(DELAY, "success", None,
                [[1, [10, 5], "message", "sleeping"], [2, [10, 6], "message", "done"]],
                start=[10, 0], exec_=[10, 1], end=[10, 7])],
    "received_timestamp": [9, 999999], "start_timestamp": [10, 0],
    "end_timestamp": [10, 7], "log_serial": 2,
}
ERROR_JOB = {
    "id": 2, "status": "error", "archived": False,
    "ops": [_op(VERIFY, "success", True, start=[20, 0], exec_=[20, 1], end=[20, 2]),
            _op(DELAY, "error", ["OpExecError", ["boom"]],
                [[1, [21, 0], "message", "about to fail"]], priority=-10,
                start=[21, 0], exec_=[21, 0], end=[21, 1]),
            _op(VERIFY, "error", ["OpExecError", ["Preceding opcode failed"]],
                end=[21, 1])],
    "received_timestamp": [19, 0], "start_timestamp": [20, 0],
    "end_timestamp": [21, 1], "log_serial": 1,
}
RUNNING_JOB = {
    "id": 10, "status": "running", "archived": False,
    "ops": [_op(DELAY, "success", None, start=(30, 0), exec_=(30, 0), end=(30, 1)),
            _op(DELAY, "running", None, [[1, (31, 0), "message", "working"]],
                priority=-10, start=(31, 0), exec_=(31, 5)),
            _op(FUTURE, "queued", priority=10)],
    "received_timestamp": (29, 0), "start_timestamp": (30, 0),
    "end_timestamp": None, "log_serial": 1,
}
QUEUED_JOB = {
    "id": 3, "status": "queued", "archived": False,
    "ops": [_op(DELAY, "queued", priority=10)],
    "received_timestamp": [40, 0], "start_timestamp": None,
    "end_timestamp": None, "log_serial": 0,
}
ARCHIVED_JOB = {
    "id": 4, "status": "success", "archived": True,
    "ops": [_op(VERIFY, "success", True, start=[5, 0], exec_=[5, 0], end=[5, 1])],
    "received_timestamp": [4, 0], "start_timestamp": [5, 0],
    "end_timestamp": [5, 1], "log_serial": 0,
}
JOBS = [SUCCESS_JOB, ERROR_JOB, RUNNING_JOB, QUEUED_JOB, ARCHIVED_JOB]


class FakeQueue:
    """GetJobsInfo as JobQueue answers it, recording what was asked."""

    def __init__(self, jobs: list[dict[str, Any]]) -> None:
        self.jobs = {job["id"]: job for job in jobs}
        self.calls: list[Any] = []
        self.archived_read: list[bool] = []

    def GetJobsInfo(self, job_ids, include_archived=True):
        self.calls.append(None if job_ids is None else list(job_ids))
        if job_ids is None:
            self.archived_read.append(include_archived)
            # the queue's own order, deliberately not by id
            return [copy.deepcopy(job) for job in reversed(list(self.jobs.values()))
                    if include_archived or not job.get("archived")]
        return [copy.deepcopy(self.jobs.get(job_id)) for job_id in job_ids]


@pytest.fixture
def queue():
    return FakeQueue(JOBS)


@pytest.fixture
def context(queue):
    return types.SimpleNamespace(jobqueue=queue, glm=None)


ALL_JOB_FIELDS = ["id", "status", "priority", "archived", "ops", "opresult",
                  "opstatus", "oplog", "opstart", "opexec", "opend", "oppriority",
                  "summary", "received_ts", "start_ts", "end_ts"]


def test_job_fields_are_ganetis():
    assert sorted(query.JOB_FIELDS) == sorted(ALL_JOB_FIELDS)
    titles = {name: fdef.title for name, fdef in query.JOB_FIELDS.items()}
    assert titles["id"] == "ID" and titles["opresult"] == "OpCode_result"
    assert titles["oppriority"] == "OpCode_prio" and titles["received_ts"] == "Received"
    kinds = {name: fdef.kind for name, fdef in query.JOB_FIELDS.items()}
    assert kinds["id"] == constants.QFT_NUMBER
    assert kinds["status"] == constants.QFT_TEXT
    assert kinds["archived"] == constants.QFT_BOOL
    assert kinds["end_ts"] == constants.QFT_OTHER


def test_values_of_a_successful_job():
    values = dict(zip(ALL_JOB_FIELDS, query.GetJobFieldValues(SUCCESS_JOB, ALL_JOB_FIELDS)))
    assert values == {
        "id": 1, "status": "success", "priority": constants.OP_PRIO_DEFAULT,
        "archived": False, "ops": [DELAY], "opresult": [None],
        "opstatus": ["success"],
        "oplog": [[[1, [10, 5], "message", "sleeping"], [2, [10, 6], "message", "done"]]],
        "opstart": [[10, 0]], "opexec": [[10, 1]], "opend": [[10, 7]],
        "oppriority": [0], "summary": ["TEST_DELAY(0.001)"],
        "received_ts": [9, 999999], "start_ts": [10, 0], "end_ts": [10, 7],
    }


def test_values_of_a_failed_job():
    values = dict(zip(ALL_JOB_FIELDS, query.GetJobFieldValues(ERROR_JOB, ALL_JOB_FIELDS)))
    assert values["status"] == "error"
    assert values["opstatus"] == ["success", "error", "error"]
    assert values["opresult"][1] == ["OpExecError", ["boom"]]
    assert values["summary"] == ["CLUSTER_VERIFY", "TEST_DELAY(0.001)", "CLUSTER_VERIFY"]
    assert values["oplog"] == [[], [[1, [21, 0], "message", "about to fail"]], []]
    assert values["opstart"] == [[20, 0], [21, 0], None]
    assert values["oppriority"] == [0, -10, 0]
    # every opcode has finished: the default priority
    assert values["priority"] == constants.OP_PRIO_DEFAULT


def test_values_of_a_running_job():
    values = dict(zip(ALL_JOB_FIELDS,
                      query.GetJobFieldValues(RUNNING_JOB, ALL_JOB_FIELDS)))
    assert values["status"] == "running"
    # highest priority among the unfinished opcodes
    assert values["priority"] == -10
    # an opcode this version does not know is summarised by its OP_ID
    assert values["summary"] == ["TEST_DELAY(0.001)", "TEST_DELAY(0.001)",
                                 "FROM_THE_FUTURE"]
    # timestamps come out as JSON-like lists even when stored as tuples
    assert values["opexec"] == [[30, 0], [31, 5], None]
    assert values["received_ts"] == [29, 0]
    assert values["end_ts"] is None


def test_values_of_a_queued_job():
    values = query.GetJobFieldValues(QUEUED_JOB, ["status", "priority", "start_ts",
                                                  "opstart", "oplog"])
    assert values == ["queued", 10, None, [None], [[]]]


def test_status_and_priority_are_computed_when_missing():
    def without(job, *keys):
        job = copy.deepcopy(job)
        for key in keys:
            job.pop(key, None)
        return job
    for job in JOBS:
        assert query.GetJobFieldValues(without(job, "status"), ["status"]) == [job["status"]]
    job = without(RUNNING_JOB, "priority")
    assert query.GetJobFieldValues(job, ["priority"]) == [-10]
    job["priority"] = 5
    assert query.GetJobFieldValues(job, ["priority"]) == [5]


@pytest.mark.parametrize("statuses,expected", [
    (["success", "success"], "success"),
    (["queued", "queued"], "queued"),
    (["success", "queued"], "queued"),
    (["success", "waiting", "queued"], "waiting"),
    (["success", "running", "queued"], "running"),
    (["canceling", "queued"], "canceling"),
    (["success", "canceled", "canceled"], "canceled"),
    (["success", "error", "error"], "error"),
])
def test_calc_job_status(statuses, expected):
    job = {"ops": [{"status": status} for status in statuses]}
    assert query.CalcJobStatus(job) == expected


def test_summary_of_broken_inputs():
    assert query.SummarizeOp({"OP_ID": "OP_TEST_DELAY", "bogus": 1}) == "TEST_DELAY"
    assert query.SummarizeOp({"OP_ID": "NO_PREFIX"}) == "NO_PREFIX"
    assert query.SummarizeOp({"duration": 1}) == "UNKNOWN"
    assert query.SummarizeOp("garbage") == "UNKNOWN"


def test_get_job_field_values_rejects_unknown_fields():
    with pytest.raises(errors.OpPrereqError, match="Unknown job fields: bogus, x"):
        query.GetJobFieldValues(SUCCESS_JOB, ["id", "bogus", "x"])
    with pytest.raises(errors.OpPrereqError, match="must be a list"):
        query.GetJobFieldValues(SUCCESS_JOB, "status")


# --- Query("job", ...) -------------------------------------------------------------------

def test_query_all_jobs_sorted_by_id_without_archived(context, queue):
    result = query.Query("job", ["id", "status", "summary"], None, context)
    assert [fdef["name"] for fdef in result["fields"]] == ["id", "status", "summary"]
    assert result["data"] == [
        [[RS_NORMAL, 1], [RS_NORMAL, "success"], [RS_NORMAL, ["TEST_DELAY(0.001)"]]],
        [[RS_NORMAL, 2], [RS_NORMAL, "error"],
         [RS_NORMAL, ["CLUSTER_VERIFY", "TEST_DELAY(0.001)", "CLUSTER_VERIFY"]]],
        [[RS_NORMAL, 3], [RS_NORMAL, "queued"], [RS_NORMAL, ["TEST_DELAY(0.001)"]]],
        [[RS_NORMAL, 10], [RS_NORMAL, "running"],
         [RS_NORMAL, ["TEST_DELAY(0.001)", "TEST_DELAY(0.001)", "FROM_THE_FUTURE"]]],
    ]
    assert queue.calls == [None]
    json.dumps(result)  # the answer goes over the wire as is


def test_archived_jobs_are_listed_when_the_field_is_used(context):
    result = query.Query("job", ["id", "archived"], None, context)
    assert [row[0][1] for row in result["data"]] == [1, 2, 3, 4, 10]
    assert result["data"][3][1] == [RS_NORMAL, True]
    result = query.Query("job", ["id"], ["?", "archived"], context)
    assert result["data"] == [[[RS_NORMAL, 4]]]


def test_archived_jobs_are_read_only_when_shown(context, queue):
    # A plain "gnt-job list" must not read every archived job file
    query.Query("job", ["id", "status"], None, context)
    query.Query("job", ["id"], ["=", "status", "success"], context)
    query.QueryJobs(context, None, ["id"])
    assert queue.archived_read == [False, False, False]
    query.Query("job", ["id", "archived"], None, context)
    query.Query("job", ["id"], ["?", "archived"], context)
    assert queue.archived_read[3:] == [True, True]
    # Jobs named by id are looked up in the archive too
    assert query.QueryJobs(context, [4], ["id", "archived"]) == [[4, True]]


def test_filter_on_status(context):
    result = query.Query("job", ["id"], ["|", ["=", "status", "error"],
                                         ["=", "status", "queued"]], context)
    assert result["data"] == [[[RS_NORMAL, 2]], [[RS_NORMAL, 3]]]
    result = query.Query("job", ["id"], ["=[]", "opstatus", "running"], context)
    assert result["data"] == [[[RS_NORMAL, 10]]]
    result = query.Query("job", ["id"], ["<", "received_ts", 20], context)
    assert result["data"] == [[[RS_NORMAL, 1]], [[RS_NORMAL, 2]]]
    result = query.Query("job", ["id"], ["=~", "status", "^(succ|runn)"], context)
    assert result["data"] == [[[RS_NORMAL, 1]], [[RS_NORMAL, 10]]]


def test_requested_ids_are_the_only_jobs_loaded(context, queue):
    qfilter = query.MakeSimpleFilter("id", ["10", 1, 99, 4])
    result = query.Query("job", ["id", "status", "end_ts"], qfilter, context)
    assert queue.calls == [[10, 1, 99, 4]]
    # sorted by id; an archived job asked for by id is shown; a missing job
    # gives a row of unavailable values
    assert result["data"] == [
        [[RS_NORMAL, 1], [RS_NORMAL, "success"], [RS_NORMAL, [10, 7]]],
        [[RS_NORMAL, 4], [RS_NORMAL, "success"], [RS_NORMAL, [5, 1]]],
        [[RS_NORMAL, 10], [RS_NORMAL, "running"], [RS_UNAVAIL, None]],
        [[RS_NORMAL, 99], [RS_UNAVAIL, None], [RS_UNAVAIL, None]],
    ]


def test_other_filters_load_all_jobs(context, queue):
    qfilter = ["&", ["=", "id", 1], ["=", "status", "success"]]
    result = query.Query("job", ["id"], qfilter, context)
    assert queue.calls == [None]
    assert result["data"] == [[[RS_NORMAL, 1]]]


def test_unknown_fields_are_reported_not_refused(context):
    result = query.Query("job", ["id", "nosuch"], None, context)
    assert result["fields"][1] == {"name": "nosuch", "title": "nosuch",
                                   "kind": constants.QFT_UNKNOWN,
                                   "doc": "Unknown field 'nosuch'"}
    assert all(row[1] == [RS_UNKNOWN, None] for row in result["data"])


def test_filter_errors(context, queue):
    with pytest.raises(errors.QueryFilterParseError, match="nosuch"):
        query.Query("job", ["id"], ["=", "nosuch", 1], context)
    with pytest.raises(errors.QueryFilterParseError, match="Invalid job ID"):
        query.Query("job", ["id"], ["=", "id", "x"], context)
    assert queue.calls == []


def test_every_value_matches_its_kind(context):
    result = query.Query("job", ALL_JOB_FIELDS, None, context)
    checks = {constants.QFT_NUMBER: lambda v: isinstance(v, int) and not isinstance(v, bool),
              constants.QFT_TEXT: lambda v: isinstance(v, str),
              constants.QFT_BOOL: lambda v: isinstance(v, bool),
              constants.QFT_OTHER: lambda v: True}
    for row in result["data"]:
        for fdef, (status, value) in zip(result["fields"], row):
            if status == RS_NORMAL:
                assert checks[fdef["kind"]](value), (fdef["name"], value)
            else:
                assert value is None


# --- QueryJobs -----------------------------------------------------------------------------

def test_query_jobs_follows_the_requested_ids(context, queue):
    rows = query.QueryJobs(context, [10, "2", 77], ["id", "status", "opstatus"])
    assert rows == [[10, "running", ["success", "running", "queued"]],
                    [2, "error", ["success", "error", "error"]],
                    None]
    assert queue.calls == [[10, 2, 77]]


def test_query_jobs_without_ids_lists_unarchived_jobs(context):
    assert query.QueryJobs(context, None, ["id"]) == [[1], [2], [3], [10]]
    assert query.QueryJobs(context, [], ["id", "end_ts"]) == [
        [1, [10, 7]], [2, [21, 1]], [3, None], [10, None]]


def test_query_jobs_bad_input(context):
    with pytest.raises(errors.OpPrereqError, match="Unknown job fields: nosuch"):
        query.QueryJobs(context, [1], ["id", "nosuch"])
    with pytest.raises(errors.OpPrereqError, match="Invalid job ID 'one'"):
        query.QueryJobs(context, ["one"], ["id"])
    with pytest.raises(errors.OpPrereqError, match="Invalid job ID -3"):
        query.QueryJobs(context, [-3], ["id"])
