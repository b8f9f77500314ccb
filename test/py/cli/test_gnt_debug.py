"""Tests for gnt-debug's commands against a fake luxi client."""

from __future__ import annotations

import socket

import pytest
from clihelpers import Field, SuccessJob

from ganeti import constants, errors
from ganeti.client import gnt_debug

N = constants.RS_NORMAL
S = constants.JOB_STATUS_SUCCESS


def _Run(*argv):
    return gnt_debug.Main(["gnt-debug", *argv])


# --- delay ---------------------------------------------------------------------------

def test_delay_runs_the_job(fake_client, capsys):
    fake_client.wfjc = [[[S], [[1, [100, 0], "message", "sleeping"]]], [[S], []]]
    fake_client.jobs[1] = SuccessJob(1)
    assert _Run("delay", "0.5") == 0
    (ops,) = fake_client.submitted
    op = ops[0]
    assert op["OP_ID"] == "OP_TEST_DELAY"
    assert (op["duration"], op["on_master"], op["on_nodes"], op["repeat"]) == \
        (0.5, True, [], 0)
    assert (op["interruptible"], op["no_locks"], op["dry_run"]) == (False, False, False)
    assert "priority" not in op
    assert capsys.readouterr().out.endswith(" sleeping\n")


def test_delay_options(fake_client):
    fake_client.wfjc = [[[S], []]]
    fake_client.jobs[1] = SuccessJob(1)
    assert _Run("delay", "--no-master", "-n", "node1", "-n", "node2", "--repeat", "3",
                "-i", "--no-locks", "--priority", "low", "--dry-run", "2") == 0
    op = fake_client.submitted[0][0]
    assert (op["on_master"], op["on_nodes"], op["repeat"]) == (False, ["node1", "node2"], 3)
    assert op["interruptible"] and op["no_locks"] and op["dry_run"]
    assert op["priority"] == constants.OP_PRIO_LOW


def test_delay_submit(fake_client, capsys):
    assert _Run("delay", "--submit", "1") == 0
    assert capsys.readouterr().out == ""
    # "JobID: N" goes where Ganeti's tools print errors
    assert "WaitForJobChangeOnce" not in fake_client.CallNames()
    assert _Run("delay", "--submit", "--print-jobid", "1") == 0
    assert capsys.readouterr().out == "2\n"


def test_delay_submit_prints_jobid_on_stderr(fake_client, capsys):
    _Run("delay", "--submit", "1")
    assert capsys.readouterr().err == "JobID: 1\n"


@pytest.mark.parametrize("duration,message", [
    ("0", "Invalid duration '0': must be greater than zero"),
    ("-1", "Invalid duration '-1': must be greater than zero"),
    ("abc", "Invalid duration 'abc': expected a number of seconds"),
    ("nan", "Invalid duration 'nan': expected a number of seconds"),
    ("inf", "Invalid duration 'inf': expected a number of seconds"),
])
def test_delay_bad_duration(fake_client, capsys, duration, message):
    assert _Run("delay", "--", duration) == 1
    err = capsys.readouterr().err
    assert message in err and "error type: wrong_input" in err
    assert fake_client.submitted == []


@pytest.mark.parametrize("argv,message", [
    (["--repeat", "-1", "1"], "invalid value '-1': must not be negative"),
    (["--repeat", "x", "1"], "invalid value 'x': expected a whole number"),
    (["--priority", "now", "1"], "invalid priority 'now'"),
])
def test_delay_bad_options(fake_client, capsys, argv, message):
    assert _Run("delay", *argv) == 2
    assert message in capsys.readouterr().err
    assert fake_client.submitted == []


def test_delay_needs_one_duration(fake_client, capsys):
    assert _Run("delay") == 1
    assert "Command delay expects 1 argument(s)" in capsys.readouterr().err
    assert _Run("delay", "1", "2") == 1


def test_delay_job_failure(fake_client, capsys):
    fake_client.wfjc = [[[constants.JOB_STATUS_ERROR], []]]
    fake_client.jobs[1] = {"status": "error", "opstatus": ["error"],
                           "opresult": [errors.EncodeException(errors.OpPrereqError(
                               "Delay duration must be positive", errors.ECODE_INVAL))]}
    assert _Run("delay", "1") == 1
    assert "error type: wrong_input, error details:\nDelay duration must be positive" in \
        capsys.readouterr().err


# --- locks --------------------------------------------------------------------------------

LOCK_FIELDS = [Field("name", title="Name"), Field("mode", title="Mode"),
               Field("owner", constants.QFT_OTHER, "Owner"),
               Field("pending", constants.QFT_OTHER, "Pending")]


def _LockQuery(fields, qfilter):
    rows = {
        "cluster/BGL": ["cluster/BGL", "shared", ["job/1", "job/2"],
                        [["exclusive", ["job/3"]], ["shared", ["job/4", "job/5"]]]],
        "instance/x": ["instance/x", None, None, []],
    }
    known = {f["name"]: i for i, f in enumerate(LOCK_FIELDS)}
    fdefs = [LOCK_FIELDS[known[name]] if name in known
             else Field(name, constants.QFT_UNKNOWN) for name in fields]
    data = [[[N, row[known[name]]] if name in known else [constants.RS_UNKNOWN, None]
             for name in fields] for row in rows.values()]
    return {"fields": fdefs, "data": data}


@pytest.fixture
def locks_client(fake_client):
    fake_client.query[constants.QR_LOCK] = _LockQuery
    return fake_client


def test_locks(locks_client, capsys):
    assert _Run("locks") == 0
    assert capsys.readouterr().out.splitlines() == [
        "Name        Mode   Owner       Pending",
        "cluster/BGL shared job/1,job/2 exclusive:job/3, shared:job/4,job/5",
        "instance/x  -      -           -",
    ]
    assert locks_client.calls[0] == ("Query", ("lock", ["name", "mode", "owner",
                                                        "pending"], None))


def test_locks_fields_and_separator(locks_client, capsys):
    assert _Run("locks", "-o", "name,owner", "--separator=;", "--no-headers") == 0
    assert capsys.readouterr().out.splitlines() == ["cluster/BGL;job/1,job/2",
                                                    "instance/x;-"]


def test_locks_unknown_field(locks_client, capsys):
    assert _Run("locks", "-o", "+wrong", "-v") == constants.EXIT_UNKNOWN_FIELD
    captured = capsys.readouterr()
    assert "unknown fields wrong" in captured.err
    assert "(unknown)" in captured.out


def test_locks_takes_no_arguments(locks_client, capsys):
    assert _Run("locks", "x") == 1
    assert "expects no arguments" in capsys.readouterr().err


# --- test-jobqueue ---------------------------------------------------------------------

class _JqueueScript:
    """Plays the master's side of OpTestJqueue jobs for the fake client."""

    def __init__(self, client, tmp_path, break_step=None):
        self.client = client
        self.tmp_path = tmp_path
        self.listeners = []
        self.status_answers = []
        self.break_step = break_step

    def _Socket(self, name):
        path = str(self.tmp_path / name)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(path)
        sock.listen(1)
        self.listeners.append(sock)
        return path

    def OnSubmit(self, job_id, ops):
        op = ops[0]
        fail = op["fail"]
        log = []

        def _Step(step, arg):
            log.append([len(log) + 1, [100, 0], constants.ELOG_JQUEUE_TEST,
                        [self._Socket(f"j{job_id}-{len(log)}"), step, arg]])

        _Step(constants.JQT_EXPANDNAMES, None)
        _Step(constants.JQT_EXEC, None)
        _Step(constants.JQT_STARTMSG, len(op["log_messages"]))
        for idx, msg in enumerate(op["log_messages"]):
            log.append([len(log) + 1, [100, 0], "message", constants.JQT_MSGPREFIX + msg])
            _Step(constants.JQT_LOGMSG, idx + 1)
        if self.break_step is not None:
            del log[self.break_step]
        status = "error" if fail else "success"
        self.client.wfjc.extend([[[status], log], [[status], []]])
        result = errors.EncodeException(errors.OpExecError("Opcode failure was requested")) \
            if fail else True
        self.client.jobs[job_id] = {"status": status, "opstatus": [status],
                                    "opresult": [result]}
        self.status_answers = ["waiting", "running"]

    def QueryJobs(self, job_ids, fields):
        if fields == ["status"] and self.status_answers:
            return [[self.status_answers.pop(0)]]
        return FakeClientQueryJobs(self.client, job_ids, fields)

    def Close(self):
        for sock in self.listeners:
            sock.close()


def FakeClientQueryJobs(client, job_ids, fields):
    return type(client).QueryJobs(client, job_ids, fields)


@pytest.fixture
def jqueue_script(fake_client, tmp_path):
    script = _JqueueScript(fake_client, tmp_path)
    fake_client.on_submit = script.OnSubmit
    fake_client.QueryJobs = script.QueryJobs
    yield script
    script.Close()


def test_test_jobqueue(fake_client, jqueue_script, capsys):
    assert _Run("test-jobqueue") == 0
    out = capsys.readouterr().out
    assert "Testing job success" in out and "Testing job failure" in out
    assert "Job queue test successful" in out
    assert [ops[0]["fail"] for ops in fake_client.submitted] == [False, True]
    assert all(ops[0]["notify_waitlock"] and ops[0]["notify_exec"]
               for ops in fake_client.submitted)


def test_test_jobqueue_detects_a_missing_step(fake_client, jqueue_script, capsys):
    jqueue_script.break_step = 1  # the "exec" notification never comes
    assert _Run("test-jobqueue") == 1
    assert "went through" in capsys.readouterr().err


def test_test_jobqueue_detects_a_wrong_status(fake_client, jqueue_script, capsys):
    original = jqueue_script.OnSubmit

    def _OnSubmit(job_id, ops):
        original(job_id, ops)
        jqueue_script.status_answers = ["queued", "running"]

    fake_client.on_submit = _OnSubmit
    assert _Run("test-jobqueue") == 1
    assert "is queued at step expandnames, expected waiting" in capsys.readouterr().err


# --- submit-job, test-osparams -----------------------------------------------------------

def _JobFile(tmp_path, name, data):
    import json
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return str(path)


def _Succeed(fake_client, count):
    for job_id in range(1, count + 1):
        fake_client.jobs[job_id] = SuccessJob(job_id)
    fake_client.wfjc = [[[S], []] for _ in range(count)]


def test_submit_job_one_job_per_file(fake_client, tmp_path, capsys):
    one = _JobFile(tmp_path, "one.json", [{"OP_ID": "OP_TEST_DELAY", "duration": 0.1},
                                          {"OP_ID": "OP_TEST_DELAY", "duration": 0.2}])
    two = _JobFile(tmp_path, "two.json", [[{"OP_ID": "OP_TEST_DELAY", "duration": 1}],
                                          [{"OP_ID": "OP_CLUSTER_QUERY"}]])
    _Succeed(fake_client, 3)
    assert _Run("submit-job", "--timing-stats", one, two) == 0
    assert [[op["OP_ID"] for op in ops] for ops in fake_client.submitted] == [
        ["OP_TEST_DELAY", "OP_TEST_DELAY"], ["OP_TEST_DELAY"], ["OP_CLUSTER_QUERY"]]
    assert fake_client.CallNames().count("SubmitManyJobs") == 1
    out = capsys.readouterr().out
    assert "Total opcodes:  4" in out and "Total jobs:     3" in out


def test_submit_job_repeats_and_each(fake_client, tmp_path):
    one = _JobFile(tmp_path, "one.json", [{"OP_ID": "OP_TEST_DELAY", "duration": 0.1}])
    _Succeed(fake_client, 2)
    assert _Run("submit-job", "--job-repeat", "2", "--op-repeat", "3", "--each",
                "--priority", "low", one) == 0
    assert [len(ops) for ops in fake_client.submitted] == [3, 3]
    assert fake_client.CallNames().count("SubmitJob") == 2
    assert all(op["priority"] == constants.OP_PRIO_LOW
               for ops in fake_client.submitted for op in ops)


@pytest.mark.parametrize("content,message", [
    ("not json", "is not valid JSON"),
    ("{}", "must hold a non-empty list"),
    ("[]", "must hold a non-empty list"),
    ('[{"duration": 1}]', "missing OP_ID"),
    ('[{"OP_ID": "OP_NO_SUCH"}]', "Invalid opcode"),
    ('[{"OP_ID": "OP_TEST_DELAY", "duration": "long"}]', "duration"),
    ('[[]]', "holds an empty job"),
])
def test_submit_job_bad_files(fake_client, tmp_path, capsys, content, message):
    path = _JobFile(tmp_path, "bad.json", content)
    assert _Run("submit-job", path) == 1
    assert message in capsys.readouterr().err
    assert fake_client.submitted == []


def test_submit_job_missing_file_and_bad_repeat(fake_client, tmp_path, capsys):
    assert _Run("submit-job", str(tmp_path / "nosuch.json")) == 1
    assert "Cannot read job file" in capsys.readouterr().err
    assert _Run("submit-job", "--job-repeat", "0", str(tmp_path / "x")) == 2


def test_submit_job_reports_failed_jobs(fake_client, tmp_path, capsys):
    one = _JobFile(tmp_path, "one.json", [{"OP_ID": "OP_TEST_DELAY", "duration": 0.1}])
    fake_client.jobs[1] = {"id": 1, "status": constants.JOB_STATUS_ERROR,
                           "opstatus": [constants.OP_STATUS_ERROR],
                           "opresult": [["OpExecError", ["boom"]]]}
    fake_client.wfjc = [[[constants.JOB_STATUS_ERROR], []]]
    assert _Run("submit-job", one) == 1
    assert "1 of 1 job(s) failed" in capsys.readouterr().err


def test_test_osparams(fake_client, capsys):
    fake_client.jobs[1] = SuccessJob(1)
    fake_client.wfjc = [[[S], []]]
    assert _Run("test-osparams", "--os-parameters-secret", "password=s3cr3t,x=1",
                "--os-parameters-secret", "y=a\\,b") == 0
    op = fake_client.submitted[0][0]
    assert op["OP_ID"] == "OP_TEST_OS_PARAMS"
    assert op["osparams_secret"] == {"password": "s3cr3t", "x": "1", "y": "a,b"}


def test_test_osparams_needs_parameters(fake_client, capsys):
    assert _Run("test-osparams") == 1
    assert _Run("test-osparams", "--os-parameters-secret", "novalue") == 2
    assert fake_client.submitted == []
