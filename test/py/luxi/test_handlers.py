"""The master's luxi method table against a real, in-process job queue."""

import os
import threading
import time
import types

import pytest

from ganeti import constants, errors, jqueue, locking, opcodes
from ganeti.luxi import client as luxi_client
from ganeti.luxi import handlers as luxi_handlers
from ganeti.luxi import protocol

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def queue(tmp_path):
    glm = locking.GanetiLockManager()
    ctx = jqueue.JobQueueContext(glm=glm, queue_dir=str(tmp_path / "queue"),
                                 archive_dir=str(tmp_path / "queue" / "archive"),
                                 num_workers=2, fsync=False)
    os.makedirs(ctx.archive_dir)
    q = jqueue.JobQueue(ctx)
    q.Start()
    yield q
    q.Shutdown(30)


@pytest.fixture
def master(queue, luxi_server_factory):
    context = types.SimpleNamespace(jobqueue=queue, glm=queue.context.glm)
    handlers = luxi_handlers.MasterHandlers(queue, None, context)
    srv = luxi_server_factory(handlers.Methods())
    return srv, luxi_client.Client(srv.paths[0], timeouts=(5, 30))


def _Subscriptions(queue):
    return sum(len(subs) for subs in queue._subscriptions.values())


def test_method_table_has_every_luxi_call(queue):
    methods = luxi_handlers.MasterHandlers(queue).Methods()
    assert set(methods) == luxi_client.REQ_ALL


def test_submit_and_wait(master):
    _, cl = master
    with cl:
        job_id = cl.SubmitJob([opcodes.OpTestDelay(duration=0.01)])
        result = cl.WaitForJobChangeOnce(job_id, ["status"], None, None, timeout=5)
        assert result != constants.JOB_NOTCHANGED
        status = result[0][0]
        while status not in constants.JOBS_FINALIZED:
            result = cl.WaitForJobChangeOnce(job_id, ["status"], [status], None, timeout=5)
            if result != constants.JOB_NOTCHANGED:
                status = result[0][0]
        assert status == constants.JOB_STATUS_SUCCESS
        assert cl.QueryJobs([job_id, 999], ["id", "status"]) == [[job_id, "success"], None]
        fields = cl.QueryFields("job", ["id"])["fields"]
        assert fields[0]["name"] == "id"


def test_bad_arguments_are_refused(master):
    _, cl = master
    with cl:
        with pytest.raises(errors.OpPrereqError, match="non-empty list of opcodes"):
            cl.SubmitJob([])
        with pytest.raises(errors.OpPrereqError, match="Invalid job id"):
            cl.CallMethod("CancelJob", [[1]])
        with pytest.raises(errors.OpPrereqError, match="list of field names"):
            cl.CallMethod("QueryJobs", [None, "id"])
        with pytest.raises(errors.OpPrereqError, match="Resource type 'bogus' unknown"):
            cl.Query("bogus", ["name"], None)
        # found by test/integration/test_fuzz.py: an unhashable resource
        with pytest.raises(errors.OpPrereqError, match=r"Resource type \['node'\] unknown"):
            cl.CallMethod("QueryFields", [["node"], None])
        with pytest.raises(errors.OpPrereqError, match="Invalid timeout"):
            cl.CallMethod("WaitForJobChange", [1, ["status"], None, None, "soon"])
        # found by test/integration/test_fuzz.py: a list compared with the
        # log entries' serials
        with pytest.raises(errors.OpPrereqError, match="Invalid previous log serial"):
            cl.CallMethod("WaitForJobChange", [1, ["status"], None, [3, "x"], 1])
        with pytest.raises(errors.OpPrereqError, match="Invalid previous job info"):
            cl.CallMethod("WaitForJobChange", [1, ["status"], "running", None, 1])
        with pytest.raises(errors.OpPrereqError, match="no cluster configuration"):
            cl.QueryClusterInfo()
        with pytest.raises(errors.JobLost):
            cl.WaitForJobChangeOnce(12345, ["status"], None, None, timeout=1)


def test_disconnect_during_wait_unsubscribes(master, queue):
    srv, cl = master
    block = threading.Event()
    # Long enough to outlast the test; the queue's shutdown waits for it
    with cl:
        job_id = cl.SubmitJob([opcodes.OpTestDelay(duration=3)])
        info = None
        while info != ["running"]:
            result = cl.WaitForJobChangeOnce(job_id, ["status"], info, None, timeout=5)
            if result != constants.JOB_NOTCHANGED:
                info = result[0]
        socks = []
        for _ in range(20):
            sock = srv.RawSocket()
            sock.sendall(protocol.Frame(protocol.FormatRequest(
                "WaitForJobChange", [job_id, ["status"], info, None, 30])))
            socks.append(sock)
        deadline = time.monotonic() + 10
        while _Subscriptions(queue) < 20 and time.monotonic() < deadline:
            block.wait(0.01)  # bounded poll of the queue's state
        assert _Subscriptions(queue) == 20
        for sock in socks:
            sock.close()
        deadline = time.monotonic() + 10
        while _Subscriptions(queue) and time.monotonic() < deadline:
            block.wait(0.01)
        assert _Subscriptions(queue) == 0
        assert cl.CallMethod("QueryJobs", [[job_id], ["status"]]) in \
            ([["running"]], [["success"]])


def test_wait_answers_nochange_at_timeout(master, queue):
    _, cl = master
    with cl:
        job_id = cl.SubmitJob([opcodes.OpTestDelay(duration=2)])
        info = None
        while info != ["running"]:
            result = cl.WaitForJobChangeOnce(job_id, ["status"], info, None, timeout=5)
            if result != constants.JOB_NOTCHANGED:
                info = result[0]
        start = time.monotonic()
        assert cl.WaitForJobChangeOnce(job_id, ["status"], info, None, timeout=0.2) == \
            constants.JOB_NOTCHANGED
        assert 0.15 <= time.monotonic() - start < 5
        assert _Subscriptions(queue) == 0


def test_watcher_pause_file(tmp_path):
    path = str(tmp_path / "pause")
    assert luxi_handlers.ReadWatcherPause(path) is None
    until = int(time.time()) + 100
    assert luxi_handlers.WriteWatcherPause(until, path) == until
    assert luxi_handlers.ReadWatcherPause(path) == until
    assert luxi_handlers.ReadWatcherPause(path, now=until + 1) is None
    with pytest.raises(errors.OpPrereqError, match="expected a number"):
        luxi_handlers.WriteWatcherPause("tomorrow", path)
    with pytest.raises(errors.OpPrereqError, match="in the past"):
        luxi_handlers.WriteWatcherPause(5, path)
    with open(path, "w") as fh:
        fh.write("garbage")
    assert luxi_handlers.ReadWatcherPause(path) is None
    assert luxi_handlers.WriteWatcherPause(None, path) is None
    assert not os.path.exists(path)
    assert luxi_handlers.WriteWatcherPause(None, path) is None
