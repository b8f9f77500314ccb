"""Tests for ganeti.jqueue.storage: job files, serial, archive, drain flag."""

from __future__ import annotations

import os

import pytest

from ganeti import errors, serializer
from ganeti.jqueue import storage


@pytest.fixture
def store(tmp_path):
    return storage.JobStorage(str(tmp_path / "queue"))


def test_layout(store, tmp_path):
    assert os.path.isdir(tmp_path / "queue" / "archive")
    assert store.JobPath(12) == str(tmp_path / "queue" / "job-12")
    assert store.ArchivedJobPath(12345) == str(tmp_path / "queue" / "archive" / "1" / "job-12345")
    with pytest.raises(errors.ProgrammerError, match="absolute"):
        storage.JobStorage("relative/queue")


def test_serial_is_monotonic_and_persistent(store, tmp_path):
    store.SERIAL_WRITE_INTERVAL = 3600
    assert store.AllocateJobIds(1) == [1]
    assert (tmp_path / "queue" / "serial").read_text() == "1\n"
    assert store.AllocateJobIds(3) == [2, 3, 4]
    store.FlushSerial()
    assert (tmp_path / "queue" / "serial").read_text() == "4\n"
    again = storage.JobStorage(str(tmp_path / "queue"))
    assert again.AllocateJobIds(1) == [5]
    with pytest.raises(errors.ProgrammerError, match="positive number"):
        store.AllocateJobIds(0)


def test_serial_never_below_existing_jobs(store, tmp_path):
    store.WriteJob(41, {"id": 41}, sync=False)
    assert store.AllocateJobIds(1) == [42]


def test_bad_serial_file(tmp_path):
    qdir = tmp_path / "queue"
    qdir.mkdir()
    (qdir / "serial").write_text("garbage")
    with pytest.raises(errors.JobQueueError, match="garbage"):
        storage.JobStorage(str(qdir)).AllocateJobIds(1)


def test_write_load_list_archive(store, tmp_path):
    store.WriteJob(3, {"id": 3, "x": [1]}, sync=True)
    store.WriteJob(20000, {"id": 20000}, sync=False)
    (tmp_path / "queue" / "job-x").write_text("{}")
    (tmp_path / "queue" / "unrelated").write_text("{}")
    assert store.ListJobIds() == [3, 20000]
    assert store.LoadJob(3) == {"id": 3, "x": [1]}
    assert store.LoadJob(4) is None
    assert not [n for n in os.listdir(tmp_path / "queue") if n.endswith(".tmp")]
    store.ArchiveJob(20000)
    assert store.ListJobIds() == [3]
    assert store.ListArchivedJobIds() == [20000]
    assert store.LoadArchivedJob(20000) == {"id": 20000}
    assert os.path.exists(tmp_path / "queue" / "archive" / "2" / "job-20000")


def test_corrupt_job_file(store, tmp_path):
    (tmp_path / "queue" / "job-5").write_text("{not json")
    with pytest.raises(errors.JobFileCorrupted, match="job-5"):
        store.LoadJob(5)
    (tmp_path / "queue" / "job-6").write_text(serializer.DumpJson([1, 2]))
    with pytest.raises(errors.JobFileCorrupted, match="does not hold an object"):
        store.LoadJob(6)


def test_drain_flag(store):
    assert not store.IsDrained()
    store.SetDrainFlag(True)
    assert store.IsDrained()
    store.SetDrainFlag(True)
    store.SetDrainFlag(False)
    assert not store.IsDrained()
    store.SetDrainFlag(False)


@pytest.mark.parametrize("value, expected", [(5, 5), ("17", 17)])
def test_parse_job_id(value, expected):
    assert storage.ParseJobId(value) == expected


@pytest.mark.parametrize("value", [-1, "abc", None, True, 1.5, "-3"])
def test_parse_bad_job_id(value):
    with pytest.raises(errors.OpPrereqError, match="Invalid job ID"):
        storage.ParseJobId(value)


def test_serial_never_below_archived_jobs(store, tmp_path):
    store.WriteJob(30, {"id": 30}, sync=False)
    store.ArchiveJob(30)
    assert store.AllocateJobIds(2) == [31, 32]


def test_serial_file_lagging_behind_job_files(store, tmp_path):
    store.SERIAL_WRITE_INTERVAL = 3600
    assert store.AllocateJobIds(1) == [1]
    store.WriteJob(1, {"id": 1}, sync=False)
    assert store.AllocateJobIds(1) == [2]  # too soon: not written
    store.WriteJob(2, {"id": 2}, sync=False)
    assert (tmp_path / "queue" / "serial").read_text() == "1\n"
    # A restart after a crash still continues after job 2
    assert storage.JobStorage(str(tmp_path / "queue")).AllocateJobIds(1) == [3]
