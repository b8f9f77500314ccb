"""Tests for archiving, job information, change notification and restarts."""

from __future__ import annotations

import os
import socket
import threading
import time

import pytest
from jqhelpers import WAIT, blocking_op, delay_op, wait_final, wait_for

from ganeti import constants, errors, opcodes, serializer
from ganeti.jqueue import UNCLEAN_SHUTDOWN_MESSAGE, QueuedJob
from ganeti.jqueue.storage import JobStorage

pytestmark = pytest.mark.timeout(60)


def test_archive_job(env):
    queue = env.make()
    with env.holder() as holder:
        job_id = queue.SubmitJob([blocking_op()])
        wait_for(queue, job_id, constants.JOB_STATUS_WAITING)
        assert not queue.ArchiveJob(job_id)  # not finished
        holder.release()
        wait_final(queue, job_id)
    assert queue.Quiesce(WAIT)
    assert queue.ArchiveJob(job_id)
    assert not os.path.exists(os.path.join(env.queue_dir, f"job-{job_id}"))
    assert os.path.exists(os.path.join(env.queue_dir, "archive", "0", f"job-{job_id}"))
    assert queue.GetJobIds() == []
    (info,) = queue.GetJobsInfo([job_id])
    assert info["archived"] is True and info["status"] == constants.JOB_STATUS_SUCCESS
    assert [i["id"] for i in queue.GetJobsInfo(None)] == [job_id]
    assert queue.GetJobsInfo(None, include_archived=False) == []
    assert not queue.ArchiveJob(job_id)
    assert not queue.ArchiveJob(777)
    assert queue.GetJobsInfo([777, str(job_id)])[0] is None


def test_auto_archive(env):
    queue = env.make()
    ids = [queue.SubmitJob([delay_op()]) for _ in range(12)]
    for job_id in ids:
        wait_final(queue, job_id)
    with env.holder():
        pending = queue.SubmitJob([blocking_op()])
        wait_for(queue, pending, constants.JOB_STATUS_WAITING)
        assert queue.AutoArchiveJobs(3600, 10) == (0, 0)  # all too young
        assert queue.AutoArchiveJobs(-1, 0) == (0, 13)    # no time at all
        assert queue.AutoArchiveJobs(-1, 10) == (12, 0)
        assert queue.GetJobIds() == [pending]
    wait_final(queue, pending)
    assert JobStorage(env.queue_dir).ListArchivedJobIds() == ids
    with pytest.raises(errors.OpPrereqError, match="Invalid age 'old'"):
        queue.AutoArchiveJobs("old", 10)


def test_auto_archive_by_age(env):
    queue = env.make()
    old = queue.SubmitJob([delay_op()])
    wait_final(queue, old)
    assert queue.Quiesce(WAIT)
    # Age the job on disk and drop it from memory by restarting
    assert queue.Shutdown(WAIT)
    path = os.path.join(env.queue_dir, f"job-{old}")
    data = serializer.LoadJson(open(path).read())
    data["end_timestamp"] = [int(time.time()) - 7200, 0]
    with open(path, "w") as fh:
        fh.write(serializer.DumpJson(data))
    queue = env.make()
    new = queue.SubmitJob([delay_op()])
    wait_final(queue, new)
    assert queue.AutoArchiveJobs(3600, 10) == (1, 0)
    assert queue.GetJobIds() == [new]


def test_job_changes(env):
    queue = env.make()
    fields = ["status", "opstatus"]
    with env.holder() as holder:
        job_id = queue.SubmitJob([blocking_op()])
        info, log = wait_changes(queue, job_id, fields, None, None)
        assert info[1] == [info[0]]
        info = wait_for(queue, job_id, constants.JOB_STATUS_WAITING)
        current = [info["status"], [op["status"] for op in info["ops"]]]
        # Nothing new for a waiting job
        assert queue.GetJobChanges(job_id, fields, current, None) is None
        assert queue.WaitForJobChanges(job_id, fields, current, None, 0.01) == \
            constants.JOB_NOTCHANGED
        holder.release()
        final = wait_final(queue, job_id)
    # A finished job always answers
    answer = queue.GetJobChanges(job_id, fields, ["success", ["success"]], None)
    assert answer == (["success", ["success"]], [])
    assert final["status"] == "success"
    with pytest.raises(errors.JobLost, match="Job 4242 not found"):
        queue.GetJobChanges(4242, fields, None, None)
    with pytest.raises(errors.OpPrereqError, match="Unknown job fields: bogus"):
        queue.GetJobChanges(job_id, ["bogus"], None, None)


def wait_changes(queue, job_id, fields, prev, serial):
    result = queue.WaitForJobChanges(job_id, fields, prev, serial, WAIT)
    assert result != constants.JOB_NOTCHANGED
    return result


def test_log_changes_and_subscriptions(env):
    queue = env.make(log_write_delay=0.01)
    calls = []
    event = threading.Event()

    def callback():
        calls.append(1)
        event.set()

    job_id = queue.SubmitJob([opcodes.OpTestJqueue(log_messages=["a"], notify_exec=True)])
    handle = queue.Subscribe(job_id, callback)
    serial = None
    entries = []
    markers = []
    unsubscribed_at = None
    prev = None
    while True:
        info, new = wait_changes(queue, job_id, ["status"], prev, serial)
        prev = info
        entries.extend(new)
        if new:
            serial = new[-1][0]
        for entry in new:
            if entry[2] == constants.ELOG_JQUEUE_TEST:
                path, marker, _ = entry[3]
                markers.append(marker)
                if unsubscribed_at is None:
                    assert event.wait(WAIT) and calls
                    queue.Unsubscribe(handle)
                    queue.Unsubscribe(handle)  # twice is fine
                    unsubscribed_at = len(calls)
                # The LU waits until the client connects and hangs up
                with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                    sock.connect(path)
        if info == ["success"]:
            break
    assert markers == [constants.JQT_EXEC, constants.JQT_STARTMSG, constants.JQT_LOGMSG]
    assert [e[0] for e in entries] == list(range(1, len(entries) + 1))
    assert len(calls) == unsubscribed_at  # no calls after Unsubscribe
    assert constants.JQT_MSGPREFIX + "a" in [entry[3] for entry in entries]
    with pytest.raises(errors.ProgrammerError, match="callable"):
        queue.Subscribe(job_id, "nope")


def _write_job(store, job_id, statuses, priority=0):
    job = QueuedJob(job_id, [opcodes.OpTestDelay(duration=0.001, priority=priority)
                             for _ in statuses])
    for op, status in zip(job.ops, statuses):
        op.status = status
        if status == constants.OP_STATUS_SUCCESS:
            op.end_timestamp = [1, 0]
    store.WriteJob(job_id, job.Serialize(), sync=False)


def test_restart_recovers_jobs(env, caplog):
    store = JobStorage(env.queue_dir)
    Q, W, R = constants.OP_STATUS_QUEUED, constants.OP_STATUS_WAITING, constants.OP_STATUS_RUNNING
    S, CG = constants.OP_STATUS_SUCCESS, constants.OP_STATUS_CANCELING
    _write_job(store, 1, [Q])
    _write_job(store, 2, [S, W, Q])
    _write_job(store, 3, [S, R, Q])
    _write_job(store, 4, [CG, CG])
    _write_job(store, 5, [S])
    with open(os.path.join(env.queue_dir, "job-6"), "w") as fh:
        fh.write("{garbage")
    with open(os.path.join(env.queue_dir, "job-7"), "w") as fh:
        fh.write(serializer.DumpJson({"id": 8, "ops": []}))
    queue = env.make()
    assert "job-6" in caplog.text or "job 6" in caplog.text
    assert wait_final(queue, 1)["status"] == constants.JOB_STATUS_SUCCESS
    info = wait_final(queue, 2)
    assert [op["status"] for op in info["ops"]] == ["success"] * 3
    info = queue.GetJobInfo(3)
    assert info["status"] == constants.JOB_STATUS_ERROR
    assert [op["status"] for op in info["ops"]] == ["success", "error", "error"]
    assert info["ops"][1]["result"] == ["OpExecError", [UNCLEAN_SHUTDOWN_MESSAGE]]
    assert info["ops"][2]["result"] == ["OpExecError", [UNCLEAN_SHUTDOWN_MESSAGE]]
    assert queue.GetJobInfo(4)["status"] == constants.JOB_STATUS_CANCELED
    assert queue.GetJobInfo(5)["status"] == constants.JOB_STATUS_SUCCESS
    assert queue.GetJobInfo(6) is None and queue.GetJobInfo(7) is None
    assert queue.GetJobIds() == [1, 2, 3, 4, 5]
    # The fixes are on disk, and the corrupt files are left alone
    assert queue.Quiesce(WAIT)
    assert serializer.LoadJson(open(os.path.join(env.queue_dir, "job-3")).read())[
        "ops"][1]["status"] == "error"
    assert os.path.exists(os.path.join(env.queue_dir, "job-6"))
    # New jobs get IDs after the highest file found
    assert queue.SubmitJob([delay_op()]) == 8


def test_restart_runs_queued_jobs_by_priority(env):
    store = JobStorage(env.queue_dir)
    _write_job(store, 1, [constants.OP_STATUS_QUEUED], priority=constants.OP_PRIO_LOW)
    _write_job(store, 2, [constants.OP_STATUS_QUEUED])
    _write_job(store, 3, [constants.OP_STATUS_QUEUED], priority=constants.OP_PRIO_HIGH)
    queue = env.make(num_workers=1)
    infos = [wait_final(queue, job_id) for job_id in (1, 2, 3)]
    order = [info["id"] for info in sorted(infos, key=lambda i: i["start_timestamp"])]
    assert order == [3, 2, 1]
