"""Tests for the job queue's disk paths: group writes, the exec log, spare files."""

from __future__ import annotations

import os
import threading

import pytest
from jqhelpers import WAIT, delay_op, wait_final
from test_queue import _confirm, _wait_for_marker

from ganeti import constants, errors, opcodes, serializer
from ganeti.jqueue import UNCLEAN_SHUTDOWN_MESSAGE, QueuedJob, queue as jq, storage
from ganeti.jqueue.storage import ExecLog, JobStorage

pytestmark = pytest.mark.timeout(60)


def _read(path):
    with open(path) as fh:
        return serializer.LoadJson(fh.read())


def _wait_told_final(queue, job_id):
    """Follow the job as WaitForJobChange clients do, until told it ended."""
    info = None
    while True:
        result = queue.WaitForJobChanges(job_id, ["status"], info, None, WAIT)
        assert result != constants.JOB_NOTCHANGED
        info = result[0]
        if info[0] in constants.JOBS_FINALIZED:
            return info[0]


# --- job files through spare files ----------------------------------------------------------

def test_rewrites_reuse_spare_files(tmp_path):
    store = JobStorage(str(tmp_path / "queue"))
    store.WriteJob(1, {"id": 1, "n": 0}, sync=True)
    for count in range(1, 20):
        store.WriteJob(1, {"id": 1, "n": count}, sync=count % 2 == 0)
    assert store.LoadJob(1) == {"id": 1, "n": 19}
    names = sorted(os.listdir(tmp_path / "queue"))
    spares = [name for name in names if name.startswith(".spare-")]
    # One spare file, whether names are exchanged or the spare is renamed
    assert len(spares) <= 1
    assert [name for name in names if not name.startswith(".spare-")] == ["archive", "job-1"]
    if storage._Exchange is not None and store._exchange:
        assert len(spares) == 1
        # The spare holds an earlier state, a complete file
        assert _read(tmp_path / "queue" / spares[0])["id"] == 1
    # A new storage object on the same directory reuses the spare
    again = JobStorage(str(tmp_path / "queue"))
    assert again._spares == [str(tmp_path / "queue" / name) for name in spares]
    again.WriteJob(2, {"id": 2}, sync=False)
    assert again.LoadJob(2) == {"id": 2} and again.ListJobIds() == [1, 2]


def test_rename_is_used_when_exchange_is_missing(tmp_path, monkeypatch):
    monkeypatch.setattr(storage, "_Exchange", None)
    store = JobStorage(str(tmp_path / "queue"))
    store.WriteJob(5, {"id": 5, "v": 1}, sync=True)
    store.WriteJob(5, {"id": 5, "v": 2}, sync=False)
    assert store.LoadJob(5) == {"id": 5, "v": 2}
    assert sorted(os.listdir(tmp_path / "queue")) == ["archive", "job-5"]


def test_write_jobs_synced(tmp_path):
    store = JobStorage(str(tmp_path / "queue"))
    store.WriteJob(1, {"id": 1, "old": True}, sync=False)
    failed = store.WriteJobsSynced([(1, b'{"id": 1}\n'), (2, b'{"id": 2}\n'), (1000, None)])
    # Syncing a file that does not exist fails for that job only
    assert list(failed) == [1000] and isinstance(failed[1000], FileNotFoundError)
    assert store.LoadJob(1) == {"id": 1} and store.LoadJob(2) == {"id": 2}
    assert store.WriteJobsSynced([(2, None)]) == {}
    assert store.WriteJobsSynced([]) == {}


# --- the exec log ---------------------------------------------------------------------------

def test_exec_log_records_and_compacts(tmp_path, monkeypatch):
    path = str(tmp_path / "exec-log")
    log = ExecLog(path)
    assert log.Read() == {}
    with pytest.raises(errors.JobQueueError, match="not open"):
        log.Started(1, 0, [1, 2])
    log.Open()
    log.Started(1, 0, [10, 20])
    log.Started(2, 3, [11, 21])
    assert log.Read() == {1: {0: [10, 20]}, 2: {3: [11, 21]}}
    assert log.LiveJobs() == [1, 2]
    log.Done(1)
    log.Done(99)  # unknown: ignored
    assert log.LiveJobs() == [2]
    # Growing beyond the limit keeps only the opcodes still running
    monkeypatch.setattr(ExecLog, "COMPACT_SIZE", 64)
    for job_id in range(100, 110):
        log.Started(job_id, 0, [1, 1])
        log.Done(job_id)
    assert os.path.getsize(path) <= 64
    assert 2 in log.Read() and 1 not in log.Read()
    log.Close()
    # A line cut short by a crash is skipped
    with open(path, "ab") as fh:
        fh.write(b"7 0 12")
    # Lines of ended opcodes may stay until the next compaction: harmless,
    # their job files say how they ended
    assert log.Read()[2] == {3: [11, 21]} and 1 not in log.Read()
    log.Open()
    assert log.Read() == {}
    log.Close()


def _write_job(store, job_id, statuses):
    job = QueuedJob(job_id, [opcodes.OpTestDelay(duration=0.001) for _ in statuses])
    for op, status in zip(job.ops, statuses):
        op.status = status
    store.WriteJob(job_id, job.Serialize(), sync=False)


def test_restart_fails_opcodes_the_exec_log_saw_start(env):
    Q, W, S = constants.OP_STATUS_QUEUED, constants.OP_STATUS_WAITING, constants.OP_STATUS_SUCCESS
    store = JobStorage(env.queue_dir)
    _write_job(store, 1, [Q])        # started: must not run again
    _write_job(store, 2, [S, W, Q])  # second opcode started
    _write_job(store, 3, [S, Q])     # only the first opcode started (and ended)
    _write_job(store, 4, [Q])        # never started
    with open(os.path.join(env.queue_dir, "exec-log"), "w") as fh:
        fh.write("1 0 100 5\n2 1 101 6\n3 0 99 1\n77 0 1 1\n")
    queue = env.make()
    info = queue.GetJobInfo(1)
    assert info["status"] == constants.JOB_STATUS_ERROR
    assert info["ops"][0]["result"] == ["OpExecError", [UNCLEAN_SHUTDOWN_MESSAGE]]
    assert info["ops"][0]["exec_timestamp"] == [100, 5]
    info = queue.GetJobInfo(2)
    assert [op["status"] for op in info["ops"]] == ["success", "error", "error"]
    assert wait_final(queue, 3)["status"] == constants.JOB_STATUS_SUCCESS
    assert wait_final(queue, 4)["status"] == constants.JOB_STATUS_SUCCESS
    assert queue.Quiesce(WAIT)
    # The failures are in the job files
    assert _read(os.path.join(env.queue_dir, "job-1"))["ops"][0]["status"] == "error"
    # The old log is gone (jobs 3 and 4 ran since, and may have lines)
    assert set(ExecLog(os.path.join(env.queue_dir, "exec-log")).Read()) <= {3, 4}


def test_running_opcode_is_in_the_exec_log(env):
    queue = env.make()
    job_id = queue.SubmitJob([opcodes.OpTestJqueue(notify_exec=True)])
    path = _wait_for_marker(queue, job_id, constants.JQT_EXEC)
    log = queue.storage.exec_log
    try:
        # On disk while the opcode runs
        assert 0 in log.Read()[job_id]
        assert log.LiveJobs() == [job_id]
    finally:
        _confirm(path)
    # Told of the end only once it is on disk, the exec log entry is done
    assert _wait_told_final(queue, job_id) == constants.JOB_STATUS_SUCCESS
    assert log.LiveJobs() == []
    assert _read(os.path.join(env.queue_dir, f"job-{job_id}"))["ops"][0]["status"] == \
        "success"
    # What the file says at the end is what the queue says
    assert queue.Quiesce(WAIT)
    on_disk = _read(os.path.join(env.queue_dir, f"job-{job_id}"))
    assert on_disk["ops"][0]["status"] == "success"
    assert on_disk["ops"][0]["exec_timestamp"] is not None


# --- group writes and submission without waiting ------------------------------------------

def test_end_is_on_disk_before_waiters_hear(env, monkeypatch):
    queue = env.make()
    seen = []
    done = threading.Event()

    def check():
        if queue.GetJobInfo(job_id)["status"] in constants.JOBS_FINALIZED and not done.is_set():
            seen.append(_read(os.path.join(env.queue_dir, f"job-{job_id}"))["ops"][0]["status"])
            done.set()

    job_id = queue.SubmitJob([opcodes.OpTestJqueue(notify_exec=True)])
    path = _wait_for_marker(queue, job_id, constants.JQT_EXEC)
    handle = queue.Subscribe(job_id, check)
    try:
        _confirm(path)
        assert done.wait(WAIT)
    finally:
        queue.Unsubscribe(handle)
    assert seen == ["success"]


def test_concurrent_submissions_are_written_in_groups(env, monkeypatch):
    queue = env.make(num_workers=4)
    rounds = []
    original = queue._WriteJobsSynced

    def counting(jobs):
        rounds.append(len(jobs))
        return original(jobs)

    monkeypatch.setattr(queue._syncer, "_write", counting)
    gate = threading.Barrier(8)
    ids = []
    lock = threading.Lock()

    def submit():
        gate.wait(WAIT)
        for _ in range(10):
            job_id = queue.SubmitJob([delay_op()])
            # Accepted means on disk
            assert os.path.exists(os.path.join(env.queue_dir, f"job-{job_id}"))
            with lock:
                ids.append(job_id)

    threads = [threading.Thread(target=submit) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT)
    assert len(set(ids)) == 80
    for job_id in ids:
        assert wait_final(queue, job_id)["status"] == constants.JOB_STATUS_SUCCESS
    assert queue.Quiesce(WAIT)
    # Every job was written (submitted and ended) and syncs were shared
    assert sum(rounds) >= 80 and len(rounds) <= sum(rounds)


def test_submit_job_no_wait(env):
    queue = env.make()
    results = []
    written = threading.Event()

    def done(err):
        results.append(err)
        written.set()

    job_id = queue.SubmitJobNoWait([delay_op()], done)
    assert written.wait(WAIT)
    assert results == [None]
    assert os.path.exists(os.path.join(env.queue_dir, f"job-{job_id}"))
    assert wait_final(queue, job_id)["status"] == constants.JOB_STATUS_SUCCESS
    # Bad input is refused at once; done is not called
    with pytest.raises(errors.OpPrereqError, match="duration"):
        queue.SubmitJobNoWait([{"OP_ID": "OP_TEST_DELAY"}], done)
    with pytest.raises(errors.ProgrammerError, match="done must be callable"):
        queue.SubmitJobNoWait([delay_op()], "nope")
    queue.SetDrainFlag(True)
    with pytest.raises(errors.JobQueueDrainError):
        queue.SubmitJobNoWait([delay_op()], done)
    written.clear()
    other = queue.SubmitJobNoWait([delay_op()], done, drained_ok=True)
    assert written.wait(WAIT) and results == [None, None]
    assert wait_final(queue, other)["status"] == constants.JOB_STATUS_SUCCESS
    assert len(results) == 2


def test_failed_write_refuses_the_job(env, monkeypatch):
    queue = env.make()

    def broken(items):
        return {job_id: OSError(28, "No space left on device") for job_id, _ in items}

    monkeypatch.setattr(queue.storage, "WriteJobsSynced", broken)
    with pytest.raises(OSError, match="No space left"):
        queue.SubmitJob([delay_op()])
    results = []
    written = threading.Event()

    def done(err):
        results.append(err)
        written.set()

    queue.SubmitJobNoWait([delay_op()], done)
    assert written.wait(WAIT)
    assert isinstance(results[0], OSError)
    assert queue.GetJobIds() == []


def test_group_writer_stops_after_writing(env):
    queue = env.make()
    job_id = queue.SubmitJob([delay_op()])
    assert queue.Shutdown(WAIT)
    with pytest.raises(errors.JobQueueError):
        queue._syncer.WriteAndWait([])
    assert _read(os.path.join(env.queue_dir, f"job-{job_id}"))["id"] == job_id
    assert isinstance(queue._syncer, jq._GroupWriter)
