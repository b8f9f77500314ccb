"""Tests for gnt-job's commands against a fake luxi client."""

from __future__ import annotations

import pytest
from clihelpers import Field, SuccessJob

from ganeti import constants, errors
from ganeti.client import gnt_job

N = constants.RS_NORMAL

JOB_FIELDS = [Field("id", constants.QFT_NUMBER, "ID"), Field("status", title="Status"),
              Field("summary", constants.QFT_OTHER, "Summary"),
              Field("priority", constants.QFT_NUMBER, "Priority"),
              Field("received_ts", constants.QFT_OTHER, "Received"),
              Field("archived", constants.QFT_BOOL, "Archived")]

ROWS = {
    1: {"id": 1, "status": "success", "summary": ["TEST_DELAY(1.0)"], "priority": 0,
        "received_ts": [0, 0], "archived": False},
    12: {"id": 12, "status": "running", "summary": ["TEST_DELAY(5.0)", "TEST_JQUEUE"],
         "priority": -10, "received_ts": None, "archived": False},
}


def _JobQuery(fields, qfilter):
    known = {f["name"]: f for f in JOB_FIELDS}
    fdefs = [known.get(name, Field(name, constants.QFT_UNKNOWN)) for name in fields]
    data = []
    for row in ROWS.values():
        cells = []
        for name in fields:
            if name in known:
                cells.append([N, row[name]])
            else:
                cells.append([constants.RS_UNKNOWN, None])
        data.append(cells)
    return {"fields": fdefs, "data": data}


def _Run(*argv):
    return gnt_job.Main(["gnt-job", *argv])


@pytest.fixture
def jobs_client(fake_client):
    fake_client.query[constants.QR_JOB] = _JobQuery
    fake_client.fields[constants.QR_JOB] = JOB_FIELDS
    return fake_client


# --- list -------------------------------------------------------------------------

def test_list_default_fields(jobs_client, capsys):
    assert _Run("list") == 0
    assert capsys.readouterr().out.splitlines() == [
        "ID Status  Summary",
        " 1 success TEST_DELAY(1.0)",
        "12 running TEST_DELAY(5.0),TEST_JQUEUE",
    ]
    assert jobs_client.calls == [("Query", ("job", ["id", "status", "summary"], None))]


def test_list_plus_fields_separator_no_headers(jobs_client, capsys):
    assert _Run("list", "-o", "+priority", "--separator=|", "--no-headers") == 0
    assert capsys.readouterr().out.splitlines() == [
        "1|success|TEST_DELAY(1.0)|0",
        "12|running|TEST_DELAY(5.0),TEST_JQUEUE|-10",
    ]


def test_list_timestamps_and_missing_values(jobs_client, capsys):
    assert _Run("list", "-o", "id,received_ts", "--separator", " ", "--no-headers") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("1 19") and lines[0].endswith(".000000")
    assert lines[1] == "12 -"


def test_list_ids_and_status_filter(jobs_client):
    assert _Run("list", "--running", "3", "4") == 0
    (_, (_, fields, qfilter)), = jobs_client.calls
    assert qfilter == ["&", ["|", ["=", "id", 3], ["=", "id", 4]],
                       ["|", ["=", "status", "running"]]]


def test_list_archived_adds_the_field(jobs_client):
    _Run("list", "--archived")
    assert jobs_client.calls[0][1][1] == ["id", "status", "summary", "archived"]


def test_list_forced_filter(jobs_client):
    _Run("list", "-F", "status == \"error\"")
    assert jobs_client.calls[0][1][2] == ["=", "status", "error"]


def test_list_unknown_field(jobs_client, capsys):
    assert _Run("list", "-o", "id,nosuch") == constants.EXIT_UNKNOWN_FIELD
    assert "Warning: Queried for unknown fields nosuch" in capsys.readouterr().err


def test_list_bad_job_id(jobs_client, capsys):
    assert _Run("list", "abc") == 1
    assert "Invalid id 'abc'" in capsys.readouterr().err
    assert jobs_client.calls == []


def test_list_fields(jobs_client, capsys):
    assert _Run("list-fields", "id", "status") == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["Name", "Type", "Title", "Description"]
    assert out[1].split()[:3] == ["id", "Number", "ID"]


# --- archive, autoarchive ------------------------------------------------------------

def test_archive(fake_client, capsys):
    fake_client.archive_result[5] = False
    assert _Run("archive", "4", "5") == 1
    assert [c for c in fake_client.calls] == [("ArchiveJob", (4,)), ("ArchiveJob", (5,))]
    assert "Failed to archive job with ID '5'" in capsys.readouterr().err
    assert _Run("archive", "4") == 0


def test_archive_needs_an_id(fake_client, capsys):
    assert _Run("archive") == 1
    assert "expects at least 1 argument(s)" in capsys.readouterr().err


@pytest.mark.parametrize("arg,age", [("all", -1), ("1d", 86400), ("2h", 7200), ("90", 90)])
def test_autoarchive(fake_client, capsys, arg, age):
    fake_client.autoarchive_result = (3, 1)
    assert _Run("autoarchive", arg) == 0
    assert fake_client.calls[0][1][0] == age
    assert capsys.readouterr().out == "Archived 3 jobs, 1 unchecked left\n"


def test_autoarchive_bad_age(fake_client, capsys):
    assert _Run("autoarchive", "soon") == 1
    assert "Invalid time specification 'soon'" in capsys.readouterr().err
    assert fake_client.calls == []


# --- cancel, change-priority -----------------------------------------------------------

def test_cancel_ids(fake_client, capsys):
    fake_client.cancel_result[8] = (False, "Job 8 not found")
    assert _Run("cancel", "7", "8") == 1
    assert capsys.readouterr().out.splitlines() == ["Job 7 canceled", "Job 8 not found"]
    assert fake_client.calls == [("CancelJob", (7, False)), ("CancelJob", (8, False))]


def test_cancel_needs_ids_or_status_but_not_both(fake_client, capsys):
    assert _Run("cancel") == 1
    assert "Either a status filter or job ID(s) must be specified" in capsys.readouterr().err
    assert _Run("cancel", "--pending", "3") == 1


def test_cancel_by_status_forced(jobs_client, capsys):
    assert _Run("cancel", "--pending", "--force") == 0
    query, *cancels = jobs_client.calls
    assert query[0] == "Query"
    assert sorted(query[1][2][1:]) == sorted(["=", "status", s]
                                             for s in constants.JOBS_PENDING)
    assert cancels == [("CancelJob", (1, False)), ("CancelJob", (12, False))]


def test_cancel_by_status_unconfirmed(jobs_client, capsys, monkeypatch):
    monkeypatch.setattr("ganeti.client.gnt_job.AskUser", lambda question: False)
    assert _Run("cancel", "--queued") == constants.EXIT_CONFIRMATION
    out = capsys.readouterr().out
    assert "TEST_DELAY(1.0)" in out  # the jobs are listed before asking
    assert [name for name, _ in jobs_client.calls] == ["Query"]


def test_cancel_by_status_none_found(fake_client, capsys):
    fake_client.query["job"] = {"fields": JOB_FIELDS[:3], "data": []}
    assert _Run("cancel", "--waiting", "-f") == 1
    assert "No jobs with the requested status have been found" in capsys.readouterr().err


def test_cancel_kill_needs_confirmation(fake_client, capsys):
    assert _Run("cancel", "--kill", "3") == 1
    assert "must be confirmed with --yes-do-it" in capsys.readouterr().err
    assert _Run("cancel", "--kill", "--yes-do-it", "3") == 0
    assert fake_client.calls == [("CancelJob", (3, True))]


def test_change_priority(fake_client, capsys):
    assert _Run("change-priority", "--priority", "low", "3") == 0
    assert fake_client.calls == [("ChangeJobPriority", (3, constants.OP_PRIO_LOW))]


def test_change_priority_needs_priority(fake_client, capsys):
    assert _Run("change-priority", "3") == 1
    assert "--priority option must be given." in capsys.readouterr().err
    assert _Run("change-priority", "--priority", "top", "3") == 2
    assert "invalid priority 'top'" in capsys.readouterr().err
    assert fake_client.calls == []


# --- info -----------------------------------------------------------------------------

def _InfoJob(job_id):
    return {
        "id": job_id, "status": "success",
        "ops": [{"OP_ID": "OP_TEST_DELAY", "duration": 0.5, "on_nodes": ["a", "b"]}],
        "opresult": [None], "opstatus": ["success"],
        "oplog": [[[1, [100, 0], "message", "slept"]]],
        "opstart": [[100, 0]], "opexec": [[100, 500000]], "opend": [[101, 0]],
        "received_ts": [99, 0], "start_ts": [100, 0], "end_ts": [101, 0],
    }


def test_info(fake_client, capsys):
    fake_client.jobs[3] = _InfoJob(3)
    assert _Run("info", "3") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "- Job ID: 3"
    assert lines[1] == "  Status: success"
    assert lines[2].startswith("  Received: ")
    assert lines[3].startswith("  Processing start: ") and \
        lines[3].endswith("(delta 1.000000s)")
    assert lines[4].startswith("  Processing end: ")
    assert lines[5] == "  Total processing time: 2.000000 seconds"
    assert lines[6] == "  Opcodes: "
    assert lines[7] == "    - Opcode: OP_TEST_DELAY"
    assert lines[8] == "      Status: success"
    assert "        duration: 0.5" in lines
    assert "        on_nodes: [a, b]" in lines
    assert "      Result: None" in lines
    assert "      Execution log: " in lines
    assert "          Content: [1, message, slept]" in lines


def test_info_unknown_job(fake_client, capsys):
    fake_client.jobs[3] = _InfoJob(3)
    assert _Run("info", "3", "77") == 1
    captured = capsys.readouterr()
    assert "Job ID 77 not found" in captured.err
    assert "- Job ID: 3" in captured.out


def test_info_all_and_alias(fake_client, capsys):
    fake_client.jobs[3] = _InfoJob(3)
    fake_client.jobs[4] = dict(_InfoJob(4), end_ts=None, status="running")
    assert _Run("show") == 0
    out = capsys.readouterr().out
    assert "- Job ID: 3" in out and "- Job ID: 4" in out
    assert "Processing end: unknown (None)" in out
    assert fake_client.calls[0] == ("QueryJobs", (None, gnt_job._INFO_FIELDS))


def test_info_bad_id(fake_client, capsys):
    assert _Run("info", "-5") == 1
    assert "Invalid job ID '-5': expected a non-negative integer" in \
        capsys.readouterr().err
    assert _Run("info", "x5") == 1
    assert "Invalid job ID 'x5'" in capsys.readouterr().err
    assert fake_client.calls == []


# --- watch, wait ------------------------------------------------------------------------

def test_watch(fake_client, capsys):
    fake_client.wfjc = [[[constants.JOB_STATUS_SUCCESS], [[1, [100, 0], "message", "hi"]]],
                        [[constants.JOB_STATUS_SUCCESS], []]]
    fake_client.jobs[6] = SuccessJob(6)
    assert _Run("watch", "6") == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "Output from job 6 follows"
    assert out[1] == "-" * len(out[0])
    assert out[2].endswith(" hi")


def test_watch_failed_job(fake_client, capsys):
    fake_client.wfjc = [[[constants.JOB_STATUS_ERROR], []]]
    fake_client.jobs[6] = {"status": "error", "opstatus": ["error"],
                           "opresult": [errors.EncodeException(errors.OpExecError("no"))]}
    assert _Run("watch", "6") == 1
    assert "Job 6 failed: Failure: command execution error:\nno" in capsys.readouterr().err


def test_wait_prints_nothing(fake_client, capsys):
    fake_client.wfjc = [[[constants.JOB_STATUS_SUCCESS], [[1, [100, 0], "message", "hi"]]],
                        [[constants.JOB_STATUS_SUCCESS], []]]
    fake_client.jobs[6] = SuccessJob(6)
    assert _Run("wait", "6") == 0
    assert capsys.readouterr().out == ""


def test_wait_lost_job(fake_client, capsys):
    fake_client.wfjc = [None]
    assert _Run("wait", "6") == 1
    assert "Job 6 failed: Error checking job status: Job with id 6 lost" in \
        capsys.readouterr().err
