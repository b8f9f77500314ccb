"""Tests for gnt-instance batch-create: parsing of the definition file
(Ganeti 3.0's list format and the older name -> spec format), refusal of
bad input, and the multi-allocation job with its per-instance jobs."""

from __future__ import annotations

import json

import pytest
from clihelpers import SuccessJob

from ganeti import constants, errors
from ganeti.client import gnt_instance, instance_batch

_TWO = [
    {"mode": "create", "instance_name": "b1.example.com", "disk_template": "file",
     "os_type": "noop+default", "disks": [{"size": "1G"}], "nics": [{}],
     "pnode": "n1", "beparams": {"maxmem": "256M"}},
    {"instance_name": "b2.example.com", "disk_template": "diskless",
     "os_type": "noop", "disks": [], "hypervisor": "fake", "pnode": "n1",
     "hvparams": {"migration_mode": "live"}, "start": False, "tags": ["t1"]},
]


def test_parse_list_format():
    ops, iallocator = instance_batch.ParseBatchDefinition(json.dumps(_TWO))
    assert iallocator is None
    first, second = ops
    assert (first.instance_name, first.disk_template, first.pnode) == \
        ("b1.example.com", "file", "n1")
    assert first.disks == [{"size": 1024}]
    assert first.beparams == {"maxmem": 256}
    # mode and nics have defaults
    assert second.mode == constants.INSTANCE_CREATE and second.nics == [{}]
    assert (second.hypervisor, second.start, second.tags) == ("fake", False, ["t1"])


def test_parse_legacy_format():
    text = json.dumps({
        "l1": {"template": "file", "os": "noop", "disk_size": ["1G", 512],
               "ram": 128, "vcpus": 2, "primary_node": "n1",
               "iallocator": "hail", "ip": "192.0.2.9"},
        "l2": {"template": "drbd", "os": "noop", "disk_size": "2G",
               "backend": {"maxmem": 512}, "iallocator": "hail",
               "nics": [{"mode": "routed"}, {}], "start": False},
    })
    ops, iallocator = instance_batch.ParseBatchDefinition(text)
    assert iallocator == "hail"
    first, second = ops
    assert first.disks == [{"size": 1024}, {"size": 512}]
    assert first.beparams == {"maxmem": 128, "minmem": 128, "vcpus": 2}
    assert (first.os_type, first.pnode, first.nics) == \
        ("noop", "n1", [{"ip": "192.0.2.9"}])
    assert second.disks == [{"size": 2048}] and second.disk_template == "drbd"
    assert second.nics == [{"mode": "routed"}, {}] and second.start is False


@pytest.mark.parametrize("text,message", [
    ("[{", "Can't parse the instance definition file"),
    ('"just text"', "must hold a list"),
    ("[]", "defines no instances"),
    ("[3]", "Definition 0 is not an object"),
    (json.dumps([dict(_TWO[0], colour="red", size=1)]),
     "Unknown field\\(s\\) in definition 0: colour, size"),
    (json.dumps([dict(_TWO[0], iallocator="hail")]), "--iallocator"),
    (json.dumps([_TWO[0], _TWO[0]]), "more than once: b1.example.com"),
    (json.dumps([dict(_TWO[0], disk_template="floppy")]),
     "b1.example.com.*disk_template"),
    (json.dumps([dict(_TWO[0], disks=[{"size": "10X"}])]), "10X"),
    (json.dumps([{k: v for k, v in _TWO[0].items() if k != "disks"}]), "disks"),
    (json.dumps({"l1": {"template": "file", "colour": "red"}}),
     "instance l1: colour"),
    (json.dumps({"l1": ["file"]}), "instance l1 is not an object"),
    (json.dumps({"l1": {"os": "noop", "disk_size": [1], "ip": "192.0.2.1",
                        "nics": [{}]}}), "'nics' cannot be combined"),
    (json.dumps({"l1": {"os": "noop", "disk_size": [1], "iallocator": "a"},
                 "l2": {"os": "noop", "disk_size": [1], "iallocator": "b"}}),
     "different iallocators"),
])
def test_bad_definitions(text, message):
    with pytest.raises(errors.OpPrereqError, match=message):
        instance_batch.ParseBatchDefinition(text)


def _Run(*argv):
    return gnt_instance.Main(["gnt-instance", *argv])


def test_batch_create_submits_multi_alloc_and_waits(fake_client, tmp_path, capsys):
    path = tmp_path / "batch.json"
    path.write_text(json.dumps(_TWO))
    ok = [[constants.JOB_STATUS_SUCCESS], []]
    fake_client.wfjc = [ok, ok, ok]
    fake_client.jobs[1] = SuccessJob(1, results=[{
        constants.JOB_IDS_KEY: [[True, 2], [True, 3]],
        constants.ALLOCATABLE_KEY: ["b1.example.com", "b2.example.com"],
        constants.FAILED_KEY: []}])
    fake_client.jobs[2] = SuccessJob(2, results=[["b1.example.com"]])
    fake_client.jobs[3] = SuccessJob(3, results=[["b2.example.com"]])
    assert _Run("batch-create", str(path)) == 0
    ((op,),) = fake_client.submitted
    assert op["OP_ID"] == "OP_INSTANCE_MULTI_ALLOC"
    assert [inst["instance_name"] for inst in op["instances"]] == \
        ["b1.example.com", "b2.example.com"]
    out = capsys.readouterr().out
    assert "Submitted jobs 2, 3" in out
    assert "Waiting for job 2 for b1.example.com ..." in out
    assert out.rstrip().endswith("All instances created successfully.")


def test_batch_create_reports_failures(fake_client, tmp_path, capsys):
    path = tmp_path / "batch.json"
    path.write_text(json.dumps(_TWO))
    fake_client.wfjc = [[[constants.JOB_STATUS_SUCCESS], []],
                        [[constants.JOB_STATUS_ERROR], []]]
    fake_client.jobs[1] = SuccessJob(1, results=[{
        constants.JOB_IDS_KEY: [[True, 2]],
        constants.ALLOCATABLE_KEY: ["b1.example.com"],
        constants.FAILED_KEY: ["b2.example.com"]}])
    fake_client.jobs[2] = {"status": constants.JOB_STATUS_ERROR,
                           "opstatus": [constants.OP_STATUS_ERROR],
                           "opresult": [errors.EncodeException(
                               errors.OpExecError("disk full"))]}
    assert _Run("batch-create", "-I", "hail", str(path)) == constants.EXIT_FAILURE
    assert fake_client.submitted[0][0]["iallocator"] == "hail"
    out, err = capsys.readouterr()
    assert "Could not allocate nodes for instance b2.example.com" in err
    assert "Job 2 for b1.example.com has failed" in err and "disk full" in err
    assert "There were 2 errors during the creation." in out


def test_batch_create_submit_only(fake_client, tmp_path, capsys):
    path = tmp_path / "batch.json"
    path.write_text(json.dumps(_TWO))
    assert _Run("batch-create", "--submit", str(path)) == 0
    assert "JobID: 1" in capsys.readouterr().err
    assert len(fake_client.submitted) == 1 and not fake_client.wfjc


def test_batch_create_bad_file(fake_client, tmp_path, capsys):
    assert _Run("batch-create", str(tmp_path / "missing.json")) == 1
    assert "missing.json" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text('[{"instance_name": "x", "bogus": 1}]')
    assert _Run("batch-create", str(bad)) == 1
    assert "bogus" in capsys.readouterr().err
    assert not fake_client.submitted
    assert _Run("batch-create") == 1
