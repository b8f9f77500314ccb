"""Tests for gnt-cluster's master/version commands, show-ispecs-cmd (also
gnt-group's), verify's and modify's new options, against a fake client."""

from __future__ import annotations

import pytest
from clihelpers import SuccessJob

from ganeti import cli, constants
from ganeti.client import cluster_admin, gnt_cluster, gnt_group

S = constants.JOB_STATUS_SUCCESS
N = constants.RS_NORMAL

IPOLICY = {
    constants.ISPECS_STD: {"memory-size": 128, "cpu-count": 1, "disk-count": 1,
                           "disk-size": 1024, "nic-count": 1, "spindle-use": 1},
    constants.ISPECS_MINMAX: [{
        constants.ISPECS_MIN: {"memory-size": 128, "cpu-count": 1},
        constants.ISPECS_MAX: {"memory-size": 32768, "cpu-count": 8}}],
    constants.IPOLICY_VCPU_RATIO: 4.0,
}


def _Cluster(*argv):
    return gnt_cluster.Main(["gnt-cluster", *argv])


def _Group(*argv):
    return gnt_group.Main(["gnt-group", *argv])


def _OneJob(client, result=None):
    client.wfjc = [[[S], []]]
    client.jobs[1] = SuccessJob(1, [result])


# --- master-ping ----------------------------------------------------------------------

def test_master_ping_alive(fake_client, capsys):
    fake_client.QueryClusterInfo = lambda: {"name": "c"}
    assert _Cluster("master-ping") == 0
    assert capsys.readouterr().err == ""


def test_master_ping_dead(fake_client, capsys):
    def _Refused():
        raise ConnectionRefusedError(111, "Connection refused")
    fake_client.QueryClusterInfo = _Refused
    assert _Cluster("master-ping") == 1
    assert "Error while pinging master" in capsys.readouterr().err


def test_master_ping_takes_no_arguments(fake_client, capsys):
    assert _Cluster("master-ping", "extra") == 1


# --- rename, master IP ------------------------------------------------------------------

def test_rename_forced(fake_client, capsys):
    _OneJob(fake_client, "new.example.com")
    assert _Cluster("rename", "-f", "new.example.com") == 0
    (ops,) = fake_client.submitted
    assert ops[0]["OP_ID"] == "OP_CLUSTER_RENAME" and ops[0]["name"] == "new.example.com"
    assert "Cluster renamed to new.example.com" in capsys.readouterr().out


def test_rename_asks_and_can_be_refused(fake_client, monkeypatch):
    fake_client.QueryConfigValues = lambda fields: ["old.example.com"]
    questions = []
    monkeypatch.setattr(cli, "AskUser", lambda text, *a: questions.append(text) or False)
    assert _Cluster("rename", "new.example.com") == 1
    assert "from 'old.example.com' to 'new.example.com'" in questions[0]
    assert fake_client.submitted == []


def test_rename_submit_and_priority(fake_client, capsys):
    assert _Cluster("rename", "-f", "--submit", "--print-jobid", "--priority", "high",
                    "new.example.com") == 0
    (ops,) = fake_client.submitted
    assert ops[0]["priority"] == constants.OP_PRIO_HIGH
    captured = capsys.readouterr()
    assert captured.out == "1\n" and "JobID: 1" in captured.err


def test_rename_needs_a_name(fake_client):
    assert _Cluster("rename", "-f") == 1


def test_activate_master_ip(fake_client):
    _OneJob(fake_client)
    assert _Cluster("activate-master-ip") == 0
    assert fake_client.submitted[0][0]["OP_ID"] == "OP_CLUSTER_ACTIVATE_MASTER_IP"


def test_deactivate_master_ip_confirmation(fake_client, monkeypatch):
    monkeypatch.setattr(cli, "AskUser", lambda *a: False)
    assert _Cluster("deactivate-master-ip") == 1
    assert fake_client.submitted == []
    _OneJob(fake_client)
    assert _Cluster("deactivate-master-ip", "--yes") == 0
    assert fake_client.submitted[0][0]["OP_ID"] == "OP_CLUSTER_DEACTIVATE_MASTER_IP"


# --- upgrade ----------------------------------------------------------------------------

def test_upgrade_to_running_version_is_a_no_op(fake_client, capsys):
    major_minor = ".".join(constants.RELEASE_VERSION.split(".")[:2])
    assert _Cluster("upgrade", "--to", major_minor) == 0
    assert _Cluster("upgrade", "--to", constants.RELEASE_VERSION) == 0
    assert "nothing to do" in capsys.readouterr().out
    assert fake_client.calls == []


@pytest.mark.parametrize("argv,code,message", [
    (["--to", "2.16"], 1, "Cannot upgrade to version 2.16"),
    (["--to", "99.0.1"], 1, "Cannot upgrade to version 99.0.1"),
    (["--to", "latest"], 1, "Invalid version 'latest'"),
    ([], 1, "Exactly one of --to and --resume"),
    (["--to", "3.0", "--resume"], 1, "Exactly one of --to and --resume"),
])
def test_upgrade_refusals(fake_client, capsys, argv, code, message):
    assert _Cluster("upgrade", *argv) == code
    assert message in capsys.readouterr().err


def test_upgrade_resume_without_upgrade(fake_client, capsys):
    assert _Cluster("upgrade", "--resume") == 0
    assert "nothing to resume" in capsys.readouterr().out


# --- show-ispecs-cmd --------------------------------------------------------------------

def test_cluster_show_ispecs_cmd(fake_client, capsys):
    fake_client.QueryClusterInfo = lambda: {"name": "cluster.example.com",
                                            "ipolicy": IPOLICY}
    assert _Cluster("show-ispecs-cmd") == 0
    assert capsys.readouterr().out == (
        "gnt-cluster init --ipolicy-std-specs cpu-count=1,disk-count=1,disk-size=1024,"
        "memory-size=128,nic-count=1,spindle-use=1 --ipolicy-bounds-specs"
        " min:cpu-count=1,memory-size=128/max:cpu-count=8,memory-size=32768"
        " cluster.example.com\n")


def test_show_ispecs_cmd_output_parses_back():
    """What show-ispecs-cmd prints is what --ipolicy-* options accept."""
    from types import SimpleNamespace

    from ganeti.cli import ipolicy as cli_ipolicy
    args = cluster_admin.FormatIPolicySpecsCmd(IPOLICY, True)
    opts = SimpleNamespace(ipolicy_std_specs=args[1], ipolicy_bounds_specs=args[3])
    parsed = cli_ipolicy.CreateIPolicyFromOpts(opts)
    assert parsed[constants.ISPECS_STD] == IPOLICY[constants.ISPECS_STD]
    assert parsed[constants.ISPECS_MINMAX] == IPOLICY[constants.ISPECS_MINMAX]


def _GroupQuery(fields, qfilter):
    rows = [["default", IPOLICY, {}],
            ["fast", IPOLICY, {constants.ISPECS_MINMAX: [{
                constants.ISPECS_MIN: {"cpu-count": 2}, constants.ISPECS_MAX: {"cpu-count": 4}}]}]]
    return {"fields": [], "data": [[[N, v] for v in row] for row in rows]}


def test_group_show_ispecs_cmd(fake_client, capsys):
    fake_client.query[constants.QR_GROUP] = _GroupQuery
    assert _Group("show-ispecs-cmd") == 0
    assert capsys.readouterr().out.splitlines() == [
        "gnt-group add default",
        "gnt-group add --ipolicy-bounds-specs min:cpu-count=2/max:cpu-count=4 fast"]
    assert _Group("show-ispecs-cmd", "--include-defaults") == 0
    assert capsys.readouterr().out.splitlines()[0] == (
        "gnt-group add --ipolicy-bounds-specs min:cpu-count=1,memory-size=128/"
        "max:cpu-count=8,memory-size=32768 default")


def test_group_show_ispecs_cmd_unknown_group(fake_client, capsys):
    fake_client.query[constants.QR_GROUP] = _GroupQuery
    assert _Group("show-ispecs-cmd", "default", "nosuch") == 1
    assert "Node group(s) not known: nosuch" in capsys.readouterr().err


# --- verify, modify ---------------------------------------------------------------------

def test_verify_options(fake_client, capsys):
    fake_client.wfjc = [[[S], []]]
    fake_client.jobs[1] = SuccessJob(1, [{constants.JOB_IDS_KEY: []}])
    assert _Cluster("verify", "--node-group", "default", "--no-hv-param-assessment",
                    "-I", "ENODEN1", "--ignore-errors", "ENODEVERSION",
                    "--verify-ssh-clutter", "--no-nplus1-mem") == 0
    (ops,) = fake_client.submitted
    op = ops[0]
    assert op["group_name"] == "default" and op["verify_clutter"] is True
    assert sorted(op["skip_checks"]) == [constants.VERIFY_HVPARAM_ASSESSMENT,
                                         constants.VERIFY_NPLUSONE_MEM]
    assert op["ignore_errors"] == ["ENODEN1", "ENODEVERSION"]


def test_modify_data_collectors(fake_client):
    _OneJob(fake_client)
    assert _Cluster("modify", "--enabled-data-collectors", "cpu-avg-load=no,lv=true",
                    "--data-collector-interval", "drbd=2.5,lv=10") == 0
    op = fake_client.submitted[0][0]
    assert op["enabled_data_collectors"] == {"cpu-avg-load": False, "lv": True}
    assert op["data_collector_interval"] == {"drbd": 2500000, "lv": 10000000}


@pytest.mark.parametrize("argv,message", [
    (["--enabled-data-collectors", "nosuch=yes"], "unknown data collector 'nosuch'"),
    (["--enabled-data-collectors", "lv=maybe"], "expected yes or no"),
    (["--enabled-data-collectors", "lv"], "expected NAME=VALUE"),
    (["--data-collector-interval", "lv=-1"], "must be positive"),
    (["--data-collector-interval", "lv=soon"], "expected a number of seconds"),
])
def test_modify_data_collectors_bad_values(fake_client, capsys, argv, message):
    assert _Cluster("modify", *argv) == 2
    assert message in capsys.readouterr().err
    assert fake_client.submitted == []


def test_modify_ipolicy_specs(fake_client):
    _OneJob(fake_client)
    assert _Cluster("modify", "--ipolicy-std-specs", "memory-size=256,cpu-count=2",
                    "--ipolicy-bounds-specs", "min:cpu-count=1/max:cpu-count=16",
                    "--ipolicy-vcpu-ratio", "2.5") == 0
    ipolicy = fake_client.submitted[0][0]["ipolicy"]
    assert ipolicy[constants.ISPECS_STD] == {"memory-size": 256, "cpu-count": 2}
    assert ipolicy[constants.ISPECS_MINMAX] == [{"min": {"cpu-count": 1},
                                                 "max": {"cpu-count": 16}}]
    assert ipolicy[constants.IPOLICY_VCPU_RATIO] == 2.5


def test_modify_ipolicy_bad_value(fake_client, capsys):
    assert _Cluster("modify", "--ipolicy-vcpu-ratio", "fast") == 1
    assert "--ipolicy-vcpu-ratio" in capsys.readouterr().err
    assert fake_client.submitted == []
