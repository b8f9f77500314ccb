"""Tests for ganeti.jqueue.JobQueue: running jobs, files, priorities, drain, limits."""

from __future__ import annotations

import os
import threading

import pytest
from jqhelpers import WAIT, blocking_op, delay_op, wait_final, wait_for

from ganeti import constants, errors, opcodes, serializer

pytestmark = pytest.mark.timeout(60)


def _load_file(env, job_id, settle=True):
    for queue in env.queues if settle else ():
        assert queue.Quiesce(WAIT)
    with open(os.path.join(env.queue_dir, f"job-{job_id}")) as fh:
        return serializer.LoadJson(fh.read())


def test_job_runs_to_success_with_timestamps(env):
    queue = env.make()
    job_id = queue.SubmitJob([delay_op(), delay_op(repeat=1)])
    info = wait_final(queue, job_id)
    assert info["status"] == constants.JOB_STATUS_SUCCESS
    assert [op["status"] for op in info["ops"]] == ["success", "success"]
    assert [op["result"] for op in info["ops"]] == [None, None]
    assert info["received_timestamp"] <= info["start_timestamp"] <= info["end_timestamp"]
    for op in info["ops"]:
        assert op["start_timestamp"] <= op["exec_timestamp"] <= op["end_timestamp"]
    assert info["ops"][1]["log"][0][2:] == [constants.ELOG_MESSAGE,
                                           " - INFO: Test delay iteration 1/1"]
    assert info["log_serial"] == 1
    # What is on disk is the same job, without the computed keys
    on_disk = _load_file(env, job_id)
    for key in ("status", "priority", "archived"):
        info.pop(key)
    assert on_disk == info


def test_job_ids_are_monotonic_across_restarts(env):
    queue = env.make()
    first = [queue.SubmitJob([delay_op()]) for _ in range(3)]
    assert first == sorted(first) and len(set(first)) == 3
    for job_id in first:
        wait_final(queue, job_id)
    assert queue.Shutdown(WAIT)
    again = env.make()
    assert again.SubmitJob([delay_op()]) == first[-1] + 1


@pytest.mark.parametrize("ops, message", [
    ([], "non-empty list of opcodes"),
    ("OP_TEST_DELAY", "non-empty list of opcodes"),
    ([{"OP_ID": "OP_NO_SUCH_THING"}], "Invalid opcode 'OP_NO_SUCH_THING'"),
    ([{"OP_ID": "OP_TEST_DELAY"}], "OP_TEST_DELAY.duration' missing"),
    ([{"OP_ID": "OP_TEST_DELAY", "duration": "long"}], "duration' fails validation"),
    ([{"OP_ID": "OP_TEST_DELAY", "duration": 1, "bogus": 1}], "no parameter.*'bogus'"),
    ([{"OP_ID": "OP_TEST_DELAY", "duration": 1, "priority": -20}], "priority"),
    ([{"OP_ID": "OP_TEST_DELAY", "duration": 1, "depends": [[-1, []]]}],
     "relative job IDs are only allowed"),
])
def test_submit_refuses_bad_opcodes(env, ops, message):
    queue = env.make()
    with pytest.raises(errors.OpPrereqError, match=message):
        queue.SubmitJob(ops)
    assert queue.GetJobIds() == []


def test_failing_opcode_fails_the_rest(env):
    queue = env.make()
    job_id = queue.SubmitJob([delay_op(), {"OP_ID": "OP_TEST_DELAY", "duration": 0},
                              delay_op()])
    info = wait_final(queue, job_id)
    assert info["status"] == constants.JOB_STATUS_ERROR
    assert [op["status"] for op in info["ops"]] == ["success", "error", "error"]
    cls, args = info["ops"][1]["result"]
    assert cls == "OpPrereqError" and "greater than zero, got 0" in args[0]
    assert info["ops"][2]["result"] == ["OpExecError", ["Preceding opcode failed"]]
    assert info["end_timestamp"] is not None
    assert _load_file(env, job_id)["ops"][1]["status"] == "error"


def test_opcode_result_is_checked(env):
    queue = env.make()
    job_id = queue.SubmitJob([opcodes.OpTestJqueue(fail=True)])
    info = wait_final(queue, job_id)
    assert info["ops"][0]["result"] == ["OpExecError", ["Opcode failure was requested"]]
    ok = wait_final(queue, queue.SubmitJob([opcodes.OpTestJqueue()]))
    assert ok["ops"][0]["result"] is True


def test_waiting_for_locks_then_running(env):
    queue = env.make()
    with env.holder() as holder:
        job_id = queue.SubmitJob([blocking_op()])
        info = wait_for(queue, job_id, constants.JOB_STATUS_WAITING)
        assert info["ops"][0]["status"] == constants.OP_STATUS_WAITING
        assert info["ops"][0]["start_timestamp"] is not None
        assert info["ops"][0]["exec_timestamp"] is None
        holder.release()
        assert wait_final(queue, job_id)["status"] == constants.JOB_STATUS_SUCCESS


def test_drain_flag(env):
    queue = env.make()
    assert not queue.IsDrained()
    assert queue.SetDrainFlag(True) is True
    assert queue.IsDrained()
    assert os.path.exists(os.path.join(env.queue_dir, "drain"))
    with pytest.raises(errors.JobQueueDrainError, match="drained"):
        queue.SubmitJob([delay_op()])
    with pytest.raises(errors.JobQueueDrainError):
        queue.SubmitManyJobs([[delay_op()]])
    job_id = queue.SubmitJobToDrainedQueue([delay_op()])
    assert wait_final(queue, job_id)["status"] == constants.JOB_STATUS_SUCCESS
    queue.SetDrainFlag(False)
    wait_final(queue, queue.SubmitJob([delay_op()]))
    with pytest.raises(errors.OpPrereqError, match="boolean, got 'yes'"):
        queue.SetDrainFlag("yes")


def test_queue_size_limit(env):
    queue = env.make(size_limit=2)
    ids = [queue.SubmitJob([delay_op()]) for _ in range(2)]
    with pytest.raises(errors.JobQueueFull, match="limit 2"):
        queue.SubmitJob([delay_op()])
    with pytest.raises(errors.JobQueueFull):
        queue.SubmitManyJobs([[delay_op()]])
    wait_final(queue, ids[0])
    assert queue.ArchiveJob(ids[0])
    wait_final(queue, queue.SubmitJob([delay_op()]))


def test_priorities_order_and_change(env):
    queue = env.make(num_workers=1)
    with env.holder() as holder:
        blocker = queue.SubmitJob([blocking_op()])
        wait_for(queue, blocker, constants.JOB_STATUS_WAITING)
        low = queue.SubmitJob([delay_op(priority=constants.OP_PRIO_LOW)])
        normal = queue.SubmitJob([delay_op()])
        high = queue.SubmitJob([delay_op(priority=constants.OP_PRIO_HIGH)])
        bumped = queue.SubmitJob([delay_op()])
        ok, msg = queue.ChangeJobPriority(bumped, constants.OP_PRIO_HIGH)
        assert ok and msg == (f"Priorities of pending opcodes for job {bumped} have been"
                              f" changed to {constants.OP_PRIO_HIGH}")
        assert queue.GetJobInfo(bumped)["priority"] == constants.OP_PRIO_HIGH
        holder.release()
        infos = [wait_final(queue, job_id) for job_id in (low, normal, high, bumped)]
    order = sorted(infos, key=lambda info: info["start_timestamp"])
    assert [info["id"] for info in order] == [high, bumped, normal, low]
    # Finished jobs keep their priority out of reach
    assert queue.ChangeJobPriority(low, 0) == (False, f"Job {low} is finished")
    assert queue.ChangeJobPriority(9999, 0) == (False, "Job 9999 not found")
    with pytest.raises(errors.OpPrereqError, match="Invalid priority -20"):
        queue.ChangeJobPriority(low, -20)


def test_cancel_queued_job(env):
    queue = env.make(num_workers=1)
    with env.holder():
        blocker = queue.SubmitJob([blocking_op()])
        wait_for(queue, blocker, constants.JOB_STATUS_WAITING)
        victim = queue.SubmitJob([delay_op(), delay_op()])
        assert queue.CancelJob(victim) == (True, f"Job {victim} canceled")
        info = queue.GetJobInfo(victim)
        assert info["status"] == constants.JOB_STATUS_CANCELED
        assert [op["result"] for op in info["ops"]] == ["Job canceled by request"] * 2
        # CancelJob wrote the file before answering
        assert _load_file(env, victim, settle=False)["ops"][0]["status"] == "canceled"
        assert queue.CancelJob(victim) == (
            False, f"Job {victim} is no longer waiting in the queue")
    assert wait_final(queue, blocker)["status"] == constants.JOB_STATUS_SUCCESS
    assert queue.GetJobInfo(victim)["status"] == constants.JOB_STATUS_CANCELED


def test_cancel_waiting_job(env):
    queue = env.make()
    with env.holder() as holder:
        job_id = queue.SubmitJob([blocking_op(), delay_op()])
        wait_for(queue, job_id, constants.JOB_STATUS_WAITING)
        assert queue.CancelJob(job_id) == (True, f"Job {job_id} will be canceled")
        assert queue.GetJobInfo(job_id)["status"] == constants.JOB_STATUS_CANCELING
        assert queue.ChangeJobPriority(job_id, 0) == (False, f"Job {job_id} is cancelling")
        holder.release()
        info = wait_final(queue, job_id)
    assert info["status"] == constants.JOB_STATUS_CANCELED
    assert [op["status"] for op in info["ops"]] == ["canceled", "canceled"]
    assert info["ops"][0]["exec_timestamp"] is None  # it never ran


def test_cancel_running_finished_and_unknown(env):
    queue = env.make()
    job_id = queue.SubmitJob([opcodes.OpTestJqueue(notify_exec=True)])
    path = _wait_for_marker(queue, job_id, constants.JQT_EXEC)
    assert queue.GetJobInfo(job_id)["status"] == constants.JOB_STATUS_RUNNING
    assert queue.CancelJob(job_id) == (False, f"Job {job_id} is no longer waiting in the queue")
    _confirm(path)
    wait_final(queue, job_id)
    assert queue.CancelJob(job_id) == (False, f"Job {job_id} is no longer waiting in the queue")
    assert queue.CancelJob(12345) == (False, "Job 12345 not found")
    with pytest.raises(errors.OpPrereqError, match="Invalid job ID 'x'"):
        queue.CancelJob("x")


def _wait_for_marker(queue, job_id, marker):
    """The socket path of the LUTestJqueue notification ``marker``."""
    serial = None
    while True:
        result = queue.WaitForJobChanges(job_id, ["status"], None, serial, WAIT)
        assert result != constants.JOB_NOTCHANGED
        _, entries = result
        for entry in entries:
            serial = entry[0]
            if entry[2] == constants.ELOG_JQUEUE_TEST and entry[3][1] == marker:
                return entry[3][0]


def _confirm(path):
    import socket
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.connect(path)


def test_many_concurrent_jobs(env):
    queue = env.make(num_workers=8)
    ids: list[int] = []
    lock = threading.Lock()

    def submit():
        for _ in range(25):
            job_id = queue.SubmitJob([delay_op()])
            with lock:
                ids.append(job_id)

    threads = [threading.Thread(target=submit) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT)
    assert len(set(ids)) == 100
    for job_id in ids:
        assert wait_final(queue, job_id)["status"] == constants.JOB_STATUS_SUCCESS
    assert queue.GetJobIds() == sorted(ids)


def test_submit_many_jobs(env):
    queue = env.make()
    results = queue.SubmitManyJobs([
        [delay_op()],
        [{"OP_ID": "OP_TEST_DELAY"}],
        [delay_op(depends=[[-2, [constants.JOB_STATUS_SUCCESS]]])],
        [delay_op(depends=[[-2, []]])],  # the invalid job: cannot resolve
        [delay_op(depends=[[-10, []]])],
    ])
    assert results[0][0] and results[2][0]
    assert results[1] == (False, "Required parameter 'OP_TEST_DELAY.duration' missing")
    assert results[3] == (False, "Unable to resolve relative job ID -2")
    assert results[4] == (False, "Unable to resolve relative job ID -10")
    first, dependent = results[0][1], results[2][1]
    info = wait_final(queue, dependent)
    assert info["status"] == constants.JOB_STATUS_SUCCESS
    assert info["ops"][0]["input"]["depends"] == [[first, ["success"]]]
    # Failed submissions still used up their IDs, as Ganeti's
    assert queue.GetJobIds() == [first, dependent]
    assert queue.SubmitManyJobs([]) == []


def test_shutdown_refuses_new_jobs(env):
    queue = env.make()
    assert queue.Shutdown(WAIT)
    with pytest.raises(errors.JobQueueError, match="not accepting"):
        queue.SubmitJob([delay_op()])
    unstarted = env.make(start=False)
    with pytest.raises(errors.JobQueueError, match="not accepting"):
        unstarted.SubmitJob([delay_op()])


def test_shutdown_waits_for_running_jobs(env):
    queue = env.make()
    job_id = queue.SubmitJob([opcodes.OpTestJqueue(notify_exec=True)])
    path = _wait_for_marker(queue, job_id, constants.JQT_EXEC)
    assert not queue.Shutdown(0.05)  # still running
    _confirm(path)
    wait_final(queue, job_id)


def test_lock_timeouts_raise_priority(env):
    from ganeti import locking
    from ganeti.jqueue import queue as jq

    attempts = threading.Event()

    class Strategy(locking.LockAttemptTimeoutStrategy):
        def next_attempt(self):
            if self.attempt >= 2:
                attempts.set()
            return super().next_attempt()

    queue = env.make(lock_strategy=lambda: Strategy(timeouts=[0.01, 0.01]))
    assert isinstance(queue.context, jq.JobQueueContext)
    with env.holder() as holder:
        job_id = queue.SubmitJob([blocking_op()])
        assert attempts.wait(WAIT)
        info = wait_for(queue, job_id, constants.JOB_STATUS_WAITING)
        assert info["ops"][0]["priority"] == -2
        assert info["priority"] == -2
        holder.release()
        info = wait_final(queue, job_id)
    assert info["status"] == constants.JOB_STATUS_SUCCESS
    assert info["ops"][0]["input"]["priority"] == 0  # what was submitted
