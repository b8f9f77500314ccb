"""The commands moving instances with an instance allocator:
gnt-instance change-group, gnt-group evacuate, and the -I options of
gnt-instance replace-disks/migrate/failover and gnt-node evacuate: the
options they parse, the opcodes they submit and how they follow the jobs
the opcode submits (against the fake luxi client of conftest.py)."""

from __future__ import annotations

import pytest
from clihelpers import SuccessJob

from ganeti import constants
from ganeti.client import gnt_group, gnt_instance, gnt_node

S = constants.JOB_STATUS_SUCCESS


def _Instance(*argv):
    return gnt_instance.Main(["gnt-instance", *argv])


def _Group(*argv):
    return gnt_group.Main(["gnt-group", *argv])


def _Submitted(fake_client):
    (ops,) = fake_client.submitted
    fake_client.submitted.clear()
    (op,) = ops
    return op


def _Script(client, count, failing=()):
    """Job 1 (the opcode) submits jobs 2.. (``count`` of them); those in
    ``failing`` fail."""
    client.jobs[1] = SuccessJob(1, [{"jobs": [[True, 2 + i] for i in range(count)]}])
    for job_id in range(2, 2 + count):
        if job_id in failing:
            client.jobs[job_id] = {"id": job_id, "status": constants.JOB_STATUS_ERROR,
                                   "opstatus": [constants.OP_STATUS_ERROR],
                                   "opresult": [["OpExecError", ["no memory"]]]}
        else:
            client.jobs[job_id] = SuccessJob(job_id)
    client.wfjc = [[[S], []]] + [[[client.jobs[2 + i]["status"]], []]
                                 for i in range(count)]


# --- gnt-instance change-group -------------------------------------------------------------------

def test_change_group_options(fake_client):
    assert _Instance("change-group", "--to", "rack2", "--to", "rack3", "-I", "hail",
                     "--early-release", "--submit", "inst1") == 0
    op = _Submitted(fake_client)
    assert (op["OP_ID"], op["instance_name"], op["target_groups"], op["iallocator"],
            op["early_release"]) == ("OP_INSTANCE_CHANGE_GROUP", "inst1",
                                     ["rack2", "rack3"], "hail", True)
    assert _Instance("change-group", "--iallocator", ".", "--submit", "inst1") == 0
    op = _Submitted(fake_client)
    assert (op["iallocator"], op.get("target_groups"), op["early_release"]) == \
        (".", None, False)


def test_change_group_waits_for_the_jobs(fake_client, capsys):
    _Script(fake_client, 1)
    assert _Instance("change-group", "--to", "rack2", "inst1") == 0
    assert "Instance 'inst1' changed group successfully." in capsys.readouterr().out
    fake_client.submitted.clear()
    _Script(fake_client, 1, failing=(2,))
    assert _Instance("change-group", "inst1") == constants.EXIT_FAILURE
    out = capsys.readouterr()
    assert "There were 1 errors while changing group of instance 'inst1'." in out.out
    assert "no memory" in out.err


def test_change_group_needs_one_instance(fake_client, capsys):
    assert _Instance("change-group", "--to", "rack2") != 0
    assert _Instance("change-group", "inst1", "inst2") != 0
    assert fake_client.submitted == []


# --- gnt-group evacuate ------------------------------------------------------------------------

def test_group_evacuate_options(fake_client):
    assert _Group("evacuate", "-I", "hail", "--to", "rack2", "--sequential",
                  "--force-failover", "--early-release", "--submit", "rack1") == 0
    op = _Submitted(fake_client)
    assert (op["OP_ID"], op["group_name"], op["iallocator"], op["target_groups"],
            op["sequential"], op["force_failover"], op["early_release"]) == \
        ("OP_GROUP_EVACUATE", "rack1", "hail", ["rack2"], True, True, True)
    assert _Group("evacuate", "--dry-run", "--submit", "rack1") == 0
    op = _Submitted(fake_client)
    assert (op.get("iallocator"), op.get("target_groups"), op["sequential"],
            op["force_failover"], op["dry_run"]) == (None, None, False, False, True)


def test_group_evacuate_counts_failed_jobs(fake_client, capsys):
    _Script(fake_client, 3, failing=(3,))
    assert _Group("evacuate", "rack1") == constants.EXIT_FAILURE
    out = capsys.readouterr()
    assert "There were 1 errors during the evacuation." in out.out
    fake_client.submitted.clear()
    _Script(fake_client, 2)
    assert _Group("evacuate", "rack1") == 0
    assert "All instances evacuated successfully." in capsys.readouterr().out


# --- -I of the other commands ------------------------------------------------------------------

@pytest.mark.parametrize("argv,expected", [
    (["replace-disks", "-I", "hail"],
     {"OP_ID": "OP_INSTANCE_REPLACE_DISKS", "mode": constants.REPLACE_DISK_CHG,
      "iallocator": "hail", "remote_node": None}),
    (["migrate", "-f", "-I", "hail"],
     {"OP_ID": "OP_INSTANCE_MIGRATE", "iallocator": "hail", "target_node": None}),
    (["failover", "-f", "--iallocator", "."],
     {"OP_ID": "OP_INSTANCE_FAILOVER", "iallocator": ".", "target_node": None}),
])
def test_instance_commands_pass_the_allocator(fake_client, argv, expected):
    assert _Instance(*argv, "--submit", "inst1") == 0
    op = _Submitted(fake_client)
    for key, value in expected.items():
        assert op.get(key) == value, key


def test_node_evacuate_with_allocator(fake_client):
    fake_client.query[constants.QR_NODE] = lambda fields, qfilter: {"data": [[
        [0, "node2.example.com"]] + [[0, ["inst1"]] for _ in fields[1:]]]}
    assert gnt_node.Main(["gnt-node", "evacuate", "-f", "-I", "hail",
                          "--ignore-soft-errors", "-p", "--submit", "node2"]) == 0
    op = _Submitted(fake_client)
    assert (op["OP_ID"], op["node_name"], op["mode"], op["iallocator"],
            op["ignore_soft_errors"], op.get("remote_node")) == \
        ("OP_NODE_EVACUATE", "node2.example.com", constants.NODE_EVAC_PRI, "hail", True,
         None)
