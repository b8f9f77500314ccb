"""Tests for ganeti.jqueue.job: statuses, priorities and job-file dicts."""

from __future__ import annotations

import pytest

from ganeti import constants, errors, opcodes
from ganeti.jqueue import job as jjob

Q, W, R = constants.OP_STATUS_QUEUED, constants.OP_STATUS_WAITING, constants.OP_STATUS_RUNNING
S, E, C = constants.OP_STATUS_SUCCESS, constants.OP_STATUS_ERROR, constants.OP_STATUS_CANCELED
CG = constants.OP_STATUS_CANCELING


@pytest.mark.parametrize("ops, status", [
    ([Q], constants.JOB_STATUS_QUEUED),
    ([Q, Q], constants.JOB_STATUS_QUEUED),
    ([S, Q], constants.JOB_STATUS_QUEUED),
    ([W, Q], constants.JOB_STATUS_WAITING),
    ([S, R, Q], constants.JOB_STATUS_RUNNING),
    ([S, S], constants.JOB_STATUS_SUCCESS),
    ([S, E, E], constants.JOB_STATUS_ERROR),
    ([CG, CG], constants.JOB_STATUS_CANCELING),
    ([C, C], constants.JOB_STATUS_CANCELED),
    ([S, C], constants.JOB_STATUS_CANCELED),
])
def test_status_from_opcodes(ops, status):
    assert jjob.CalcJobStatus(ops) == status


def _job(n=2, **kwargs):
    return jjob.QueuedJob(7, [opcodes.OpTestDelay(duration=1, **kwargs) for _ in range(n)])


def test_new_job():
    job = _job()
    assert job.CalcStatus() == constants.JOB_STATUS_QUEUED
    assert job.CalcPriority() == constants.OP_PRIO_DEFAULT
    assert isinstance(job.received_timestamp, list) and len(job.received_timestamp) == 2
    assert job.start_timestamp is None and job.end_timestamp is None
    assert not job.IsFinalized()
    with pytest.raises(errors.GenericError, match="at least one opcode"):
        jjob.QueuedJob(1, [])


def test_priority_of_unfinished_ops():
    job = jjob.QueuedJob(1, [opcodes.OpTestDelay(duration=1, priority=-10),
                             opcodes.OpTestDelay(duration=1, priority=10)])
    assert job.CalcPriority() == -10
    job.ops[0].status = S
    assert job.CalcPriority() == 10
    job.ops[1].status = S
    assert job.CalcPriority() == constants.OP_PRIO_DEFAULT


def test_log_serials_and_entries():
    job = _job()
    e1 = job.AddLog(0, constants.ELOG_MESSAGE, "one")
    e2 = job.AddLog(1, constants.ELOG_MESSAGE, "two")
    assert (e1[0], e2[0]) == (1, 2) and job.log_serial == 2
    assert job.GetLogEntries(None) == [e1, e2]
    assert job.GetLogEntries(1) == [e2]
    assert job.GetLogEntries(2) == []


def test_serialize_round_trip():
    job = _job()
    job.AddLog(0, constants.ELOG_MESSAGE, "msg")
    job.ops[0].status = S
    job.ops[0].result = {"a": 1}
    job.ops[0].start_timestamp = [1, 2]
    data = job.Serialize()
    assert set(data) == {"id", "ops", "received_timestamp", "start_timestamp",
                         "end_timestamp", "log_serial"}
    assert set(data["ops"][0]) == {"input", "status", "result", "log", "priority",
                                   "start_timestamp", "exec_timestamp", "end_timestamp"}
    assert data["ops"][0]["input"]["OP_ID"] == "OP_TEST_DELAY"
    again = jjob.QueuedJob.Restore(data)
    assert again.Serialize() == data
    info = again.GetInfo()
    assert info["status"] == constants.JOB_STATUS_QUEUED and info["archived"] is False
    assert info["priority"] == constants.OP_PRIO_DEFAULT


def test_mark_unfinished():
    job = _job(3)
    job.ops[0].status = S
    job.MarkUnfinishedOps(E, "why")
    assert [op.status for op in job.ops] == [S, E, E]
    assert job.ops[0].result is None and job.ops[1].result == "why"
    assert job.end_timestamp is not None and job.IsFinalized()


@pytest.mark.parametrize("mangle, message", [
    (lambda d: "text", "not a dict"),
    (lambda d: d.update(id=-1), "Invalid job ID -1"),
    (lambda d: d.update(id="x"), "Invalid job ID 'x'"),
    (lambda d: d.update(ops=[]), "has no opcodes"),
    (lambda d: d["ops"][0].update(status="bogus"), "Invalid opcode status 'bogus'"),
    (lambda d: d["ops"][0].update(input={"OP_ID": "OP_NOPE"}), "Invalid opcode input"),
    (lambda d: d["ops"][0].pop("input") and None, "lacks 'input'"),
    (lambda d: d["ops"][0].update(priority=100), "Invalid opcode priority 100"),
    (lambda d: d["ops"][0].update(log="x"), "Invalid opcode log"),
    (lambda d: d.update(received_timestamp=[1]), "Invalid received_timestamp"),
    (lambda d: d.update(log_serial="3"), "Invalid log_serial"),
])
def test_restore_refuses_corrupt_data(mangle, message):
    data = _job().Serialize()
    mangled = mangle(data)
    with pytest.raises(errors.JobFileCorrupted, match=message):
        jjob.QueuedJob.Restore(mangled if mangled is not None else data)


def test_restore_log_serial_never_goes_back():
    job = _job()
    job.AddLog(0, constants.ELOG_MESSAGE, "x")
    data = job.Serialize()
    data["log_serial"] = 0
    assert jjob.QueuedJob.Restore(data).log_serial == 1
