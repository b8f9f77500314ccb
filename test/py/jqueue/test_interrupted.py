"""A job found running at a master start ends as its opcode's LU judges
from the configuration (``LogicalUnit.Interrupted``): instance creations
that were committed succeed, those that were not fail saying so."""

from __future__ import annotations

import os
import sys

import pytest
from jqhelpers import WAIT, wait_final

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))), "cmdlib"))

import instancehelpers  # noqa: E402
from instancehelpers import MASTER  # noqa: E402

from ganeti import constants, jqueue, opcodes  # noqa: E402
from ganeti.jqueue import UNCLEAN_SHUTDOWN_MESSAGE, QueuedJob  # noqa: E402
from ganeti.jqueue.storage import JobStorage  # noqa: E402

pytestmark = pytest.mark.timeout(60)

R, Q = constants.OP_STATUS_RUNNING, constants.OP_STATUS_QUEUED


def _Create(name):
    return instancehelpers.CreateOp(instance_name=name, disk_template="file",
                                    disks=[{"size": 1024}])


def _Write(store, job_id, ops, statuses):
    job = QueuedJob(job_id, ops)
    for op, status in zip(job.ops, statuses):
        op.status = status
        if status == R:
            op.start_timestamp = op.exec_timestamp = [1, 0]
    store.WriteJob(job_id, job.Serialize(), sync=False)


def _Instance(ctx, name, forthcoming):
    instancehelpers.Run(ctx, _Create(name))
    if forthcoming:
        inst = ctx.cfg.GetInstanceInfoByName(name)
        inst.forthcoming = True
        ctx.cfg.Update(inst, None)


@pytest.fixture
def queue_env(tmp_path):
    ctx = instancehelpers.MakeContext(tmp_path)
    queue_dir = str(tmp_path / "queue")
    queues = []

    def _Make():
        qctx = jqueue.JobQueueContext(glm=ctx.glm, queue_dir=queue_dir, cfg=ctx.cfg,
                                      rpc=ctx.rpc, num_workers=2)
        queue = jqueue.JobQueue(qctx)
        queues.append(queue)
        queue.Start()
        return queue

    yield ctx, JobStorage(queue_dir), _Make
    for queue in queues:
        assert queue.Shutdown(WAIT)


def test_interrupted_opcodes_end_as_the_configuration_shows(queue_env):
    ctx, store, make = queue_env
    _Instance(ctx, "done.example.com", forthcoming=False)
    _Instance(ctx, "half.example.com", forthcoming=True)
    _Instance(ctx, "done2.example.com", forthcoming=False)
    _Instance(ctx, "logged.example.com", forthcoming=False)
    delay = opcodes.OpTestDelay(duration=0.001)
    _Write(store, 1, [_Create("done.example.com")], [R])
    _Write(store, 2, [_Create("half.example.com"), delay], [R, Q])
    _Write(store, 3, [_Create("never.example.com")], [R])
    _Write(store, 4, [_Create("done2.example.com"), delay], [R, Q])
    _Write(store, 5, [delay], [R])
    # The file says queued, the exec log that it started: it was running
    _Write(store, 6, [_Create("logged.example.com")], [Q])
    store.exec_log.Open()
    store.exec_log.Started(6, 0, [2, 0])
    store.exec_log.Close()

    queue = make()
    info = wait_final(queue, 1)
    assert info["status"] == constants.JOB_STATUS_SUCCESS
    assert info["ops"][0]["result"] == [MASTER]
    log = [entry[3] for entry in info["ops"][0]["log"]]
    assert log == [f"{UNCLEAN_SHUTDOWN_MESSAGE}: instance done.example.com had been"
                   " created; its post hooks did not run"]

    info = wait_final(queue, 2)
    assert [op["status"] for op in info["ops"]] == ["error", "error"]
    assert info["ops"][0]["result"] == ["OpExecError", [
        f"{UNCLEAN_SHUTDOWN_MESSAGE}: the creation of instance half.example.com did not"
        " finish; the master daemon removes the instance and its disks"]]

    info = wait_final(queue, 3)
    assert info["status"] == constants.JOB_STATUS_ERROR
    assert "instance never.example.com was not created" in str(info["ops"][0]["result"])

    # The creation counts as done: the job goes on with its next opcode
    info = wait_final(queue, 4)
    assert [op["status"] for op in info["ops"]] == ["success", "success"]

    info = wait_final(queue, 5)
    assert info["ops"][0]["result"] == ["OpExecError", [UNCLEAN_SHUTDOWN_MESSAGE]]

    assert wait_final(queue, 6)["status"] == constants.JOB_STATUS_SUCCESS
    # What the start decided is on disk: a second start keeps it
    assert queue.Shutdown(WAIT)
    again = make()
    assert [again.GetJobInfo(job_id)["status"] for job_id in range(1, 7)] == [
        "success", "error", "error", "success", "error", "success"]


def test_an_lu_failing_to_judge_does_not_stop_the_start(queue_env, monkeypatch):
    ctx, store, make = queue_env
    from ganeti.cmdlib import instance_create

    def _Broken(cls, cfg, op):
        raise RuntimeError("bug")

    monkeypatch.setattr(instance_create.LUInstanceCreate, "Interrupted",
                        classmethod(_Broken))
    _Write(store, 1, [_Create("any.example.com")], [R])
    queue = make()
    info = wait_final(queue, 1)
    assert info["ops"][0]["result"] == ["OpExecError", [UNCLEAN_SHUTDOWN_MESSAGE]]
