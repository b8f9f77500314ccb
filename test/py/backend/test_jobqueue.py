"""backend.jobqueue: the job queue copy on master candidates."""

from __future__ import annotations

import os
import stat

import pytest

from ganeti import constants, pathutils
from ganeti.backend import RPCFail
from ganeti.backend import jobqueue


def _Read(path):
    with open(path, "rb") as fd:
        return fd.read()


def test_update_rename_purge(node_root):
    job = pathutils.QUEUE_DIR + "/job-1"
    jobqueue.JobQueueUpdate(job, b'{"id": 1}')
    assert _Read(job) == b'{"id": 1}'
    assert stat.S_IMODE(os.stat(job).st_mode) == constants.JOB_QUEUE_FILES_PERMS
    jobqueue.JobQueueUpdate(job, b'{"id": 1, "x": 2}')
    assert _Read(job) == b'{"id": 1, "x": 2}'

    archived = pathutils.JOB_QUEUE_ARCHIVE_DIR + "/0/job-1"
    assert jobqueue.JobQueueRename([(job, archived)]) == [None]
    assert not os.path.exists(job) and _Read(archived) == b'{"id": 1, "x": 2}'

    jobqueue.JobQueueUpdate(pathutils.QUEUE_DIR + "/job-2", b"{}")
    jobqueue.JobQueuePurge()
    assert sorted(os.listdir(pathutils.QUEUE_DIR)) == ["archive", "lock"]
    assert not os.path.exists(archived)


@pytest.mark.parametrize("path", [
    "/etc/passwd",
    "{queue}/../config.data",
    "{queue}",
    "{queue}-evil/job-1",
    "{queue}/lock",
    "relative/job-1",
])
def test_paths_outside_the_queue_are_refused(node_root, path):
    path = path.format(queue=pathutils.QUEUE_DIR)
    with pytest.raises(RPCFail):
        jobqueue.JobQueueUpdate(path, b"x")
    with pytest.raises(RPCFail):
        jobqueue.JobQueueRename([(pathutils.QUEUE_DIR + "/job-1", path)])


def test_rename_checks_everything_first(node_root):
    good = pathutils.QUEUE_DIR + "/job-1"
    jobqueue.JobQueueUpdate(good, b"x")
    with pytest.raises(RPCFail, match="does not belong to the queue"):
        jobqueue.JobQueueRename([(good, pathutils.QUEUE_DIR + "/job-9"),
                                 (good, "/tmp/elsewhere")])
    assert os.path.exists(good)


def test_rename_missing_file(node_root):
    with pytest.raises(RPCFail, match="Cannot rename"):
        jobqueue.JobQueueRename([(pathutils.QUEUE_DIR + "/job-404",
                                  pathutils.QUEUE_DIR + "/job-405")])


def test_drain_flag(node_root):
    jobqueue.JobQueueSetDrainFlag(True)
    assert os.path.exists(pathutils.JOB_QUEUE_DRAIN_FILE)
    jobqueue.JobQueueSetDrainFlag(False)
    assert not os.path.exists(pathutils.JOB_QUEUE_DRAIN_FILE)
    jobqueue.JobQueueSetDrainFlag(False)


def test_queue_lock_timeout(node_root, monkeypatch):
    from ganeti import utils
    monkeypatch.setattr(jobqueue, "QUEUE_LOCK_TIMEOUT", 0.1)
    jobqueue.JobQueueSetDrainFlag(False)  # creates the directories and lock
    with utils.FileLock.Open(pathutils.JOB_QUEUE_LOCK_FILE) as held:
        held.Exclusive()
        with pytest.raises(RPCFail, match="Cannot lock the job queue"):
            jobqueue.JobQueueUpdate(pathutils.QUEUE_DIR + "/job-1", b"x")
