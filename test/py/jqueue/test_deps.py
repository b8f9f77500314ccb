"""Tests for job dependencies in the job queue (and the dependency manager)."""

from __future__ import annotations

import pytest
from jqhelpers import blocking_op, delay_op, wait_final, wait_for

from ganeti import constants, errors
from ganeti.jqueue.deps import DepResult, JobDependencyManager

pytestmark = pytest.mark.timeout(60)

SUCCESS = constants.JOB_STATUS_SUCCESS


def test_job_waits_for_dependency(env):
    queue = env.make()
    with env.holder() as holder:
        first = queue.SubmitJob([blocking_op()])
        wait_for(queue, first, constants.JOB_STATUS_WAITING)
        second = queue.SubmitJob([delay_op(depends=[[first, [SUCCESS]]])])
        info = wait_for(queue, second, constants.JOB_STATUS_WAITING)
        assert info["ops"][0]["log"][0][3] == (
            f"Need to wait for job {first}, wanted status 'success'")
        assert queue.deps.GetWaiting() == {first: [second]}
        holder.release()
        assert wait_final(queue, second)["status"] == SUCCESS
    assert queue.GetJobInfo(first)["end_timestamp"] <= \
        queue.GetJobInfo(second)["ops"][0]["exec_timestamp"]


def test_dependency_with_wrong_status_fails_job(env):
    queue = env.make()
    failed = queue.SubmitJob([{"OP_ID": "OP_TEST_DELAY", "duration": 0}])
    wait_final(queue, failed)
    job_id = queue.SubmitJob([delay_op(depends=[[failed, [SUCCESS]]]), delay_op()])
    info = wait_final(queue, job_id)
    assert info["status"] == constants.JOB_STATUS_ERROR
    assert info["ops"][0]["result"] == ["OpExecError", [
        f"Dependency job {failed} finished with status 'error', not one of"
        " 'success' as required"]]
    # Accepting "error" lets it run
    ok = queue.SubmitJob([delay_op(depends=[[failed, ["error", "success"]]])])
    assert wait_final(queue, ok)["status"] == SUCCESS
    # An empty list accepts any final status
    ok = queue.SubmitJob([delay_op(depends=[[failed, []]])])
    assert wait_final(queue, ok)["status"] == SUCCESS


def test_cancelled_dependency_cancels_job(env):
    queue = env.make(num_workers=1)
    with env.holder():
        blocker = queue.SubmitJob([blocking_op()])
        wait_for(queue, blocker, constants.JOB_STATUS_WAITING)
        victim = queue.SubmitJob([delay_op()])
        dependent = queue.SubmitJob([delay_op(depends=[[victim, [SUCCESS]]])])
        accepting = queue.SubmitJob([delay_op(depends=[[victim, ["canceled"]]])])
        assert queue.CancelJob(victim)[0]
    info = wait_final(queue, dependent)
    assert info["status"] == constants.JOB_STATUS_CANCELED
    assert info["ops"][0]["log"][-1][3] == f"Dependency job {victim} was cancelled"
    assert wait_final(queue, accepting)["status"] == SUCCESS


def test_unknown_and_self_dependency(env):
    queue = env.make()
    job_id = queue.SubmitJob([delay_op(depends=[[9999, [SUCCESS]]])])
    info = wait_final(queue, job_id)
    assert info["ops"][0]["result"] == ["OpExecError",
                                        ["Dependency error: Job 9999 not found"]]
    own = queue.SubmitJob([delay_op(depends=[[job_id + 1, []]])])
    assert own == job_id + 1
    info = wait_final(queue, own)
    assert info["ops"][0]["result"] == ["OpExecError", ["Job can't depend on itself"]]


def test_dependency_on_archived_job(env):
    queue = env.make()
    first = queue.SubmitJob([delay_op()])
    wait_final(queue, first)
    assert queue.ArchiveJob(first)
    job_id = queue.SubmitJob([delay_op(depends=[[first, [SUCCESS]]])])
    assert wait_final(queue, job_id)["status"] == SUCCESS


def test_cancel_job_waiting_for_dependency(env):
    queue = env.make()
    with env.holder():
        first = queue.SubmitJob([blocking_op()])
        wait_for(queue, first, constants.JOB_STATUS_WAITING)
        second = queue.SubmitJob([delay_op(depends=[[first, []]])])
        wait_for(queue, second, constants.JOB_STATUS_WAITING)
        assert queue.CancelJob(second) == (True, f"Job {second} will be canceled")
        assert wait_final(queue, second)["status"] == constants.JOB_STATUS_CANCELED
    assert wait_final(queue, first)["status"] == SUCCESS


def test_dependency_manager_unit():
    statuses = {1: constants.JOB_STATUS_RUNNING, 2: SUCCESS,
                3: constants.JOB_STATUS_CANCELED}
    woken = []

    def status(job_id):
        if job_id not in statuses:
            raise errors.JobLost(f"Job {job_id} not found")
        return statuses[job_id]

    mgr = JobDependencyManager(status, woken.append)
    assert mgr.CheckAndRegister(10, 1, [])[0] is DepResult.WAIT
    assert mgr.JobWaiting(10)
    assert mgr.CheckAndRegister(10, 2, [SUCCESS])[0] is DepResult.CONTINUE
    assert mgr.CheckAndRegister(10, 3, [SUCCESS])[0] is DepResult.CANCEL
    assert mgr.CheckAndRegister(10, 3, ["canceled"])[0] is DepResult.CONTINUE
    assert mgr.CheckAndRegister(10, 2, ["error"])[0] is DepResult.WRONGSTATUS
    assert mgr.CheckAndRegister(10, 4, [])[0] is DepResult.ERROR
    assert mgr.CheckAndRegister(10, 10, [])[0] is DepResult.ERROR
    statuses[1] = SUCCESS
    mgr.NotifyWaiters(1)
    assert woken == [[10]]
    assert not mgr.JobWaiting(10)
    mgr.NotifyWaiters(1)
    assert woken == [[10]]
