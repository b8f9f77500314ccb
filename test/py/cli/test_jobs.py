"""Tests for ganeti.cli.jobs: submitting, polling, generic opcode options."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest
from clihelpers import FakeClient, SuccessJob

from ganeti import cli, constants, errors, opcodes

S = constants.JOB_STATUS_SUCCESS


def _Log(serial, message, ts=(1000, 0), log_type=constants.ELOG_MESSAGE):
    return [serial, list(ts), log_type, message]


def _Opts(**kwargs):
    defaults = {"debug": 0, "dry_run": False, "priority": None, "reason": None,
                "submit_only": False, "print_jobid": False}
    defaults.update(kwargs)
    return SimpleNamespace(**defaults)


# --- PollJob -----------------------------------------------------------------------

def test_poll_job_prints_log_and_returns_results(capsys):
    cl = FakeClient()
    cl.wfjc = [
        constants.JOB_NOTCHANGED,
        [[constants.JOB_STATUS_RUNNING], [_Log(1, "first"), _Log(2, "second", (1001, 5))]],
        [[constants.JOB_STATUS_RUNNING], [_Log(3, {"not": "text"}, log_type="other")]],
        [[S], []],
    ]
    cl.jobs[4] = SuccessJob(4, results=["done"])
    assert cli.PollJob(4, cl=cl) == ["done"]
    out = capsys.readouterr().out.splitlines()
    assert out == [f"{time.ctime(1000)} first", f"{time.ctime(1001.000005)} second",
                   f"{time.ctime(1000)} {{'not': 'text'}}"]
    # the serial and job info seen so far are passed back each time
    prev = [(args[2], args[3]) for name, args in cl.calls if name == "WaitForJobChangeOnce"]
    assert prev == [(None, None), (None, None), ([constants.JOB_STATUS_RUNNING], 2),
                    ([constants.JOB_STATUS_RUNNING], 3)]
    assert cl.calls[-1] == ("QueryJobs", ([4], ["status", "opstatus", "opresult"]))


def test_poll_job_reports_waiting_once(capsys):
    cl = FakeClient()
    cl.wfjc = [[[constants.JOB_STATUS_QUEUED], []], constants.JOB_NOTCHANGED,
               constants.JOB_NOTCHANGED, [[constants.JOB_STATUS_WAITING], []],
               constants.JOB_NOTCHANGED, constants.JOB_NOTCHANGED, [[S], []]]
    cl.jobs[1] = SuccessJob(1)
    cli.PollJob(1, cl=cl)
    err = capsys.readouterr().err.splitlines()
    assert err == ["Job 1 is waiting in queue",
                   "Job 1 is trying to acquire all necessary locks"]


def test_poll_job_feedback_fn():
    cl = FakeClient()
    cl.wfjc = [[[S], [_Log(1, "hello")]], [[S], []]]
    cl.jobs[1] = SuccessJob(1, results=[1, 2])
    seen = []
    assert cli.PollJob(1, cl=cl, feedback_fn=seen.append) == [1, 2]
    assert seen == [([1000, 0], constants.ELOG_MESSAGE, "hello")]


def test_poll_job_reporter_and_feedback_fn_are_exclusive():
    with pytest.raises(errors.ProgrammerError):
        cli.PollJob(1, cl=FakeClient(), feedback_fn=print,
                    reporter=cli.StdioJobPollReportCb())


def test_poll_job_raises_the_opcode_error():
    cl = FakeClient()
    cl.wfjc = [[[constants.JOB_STATUS_ERROR], []]]
    cl.jobs[2] = {"status": constants.JOB_STATUS_ERROR,
                  "opstatus": [constants.OP_STATUS_ERROR],
                  "opresult": [errors.EncodeException(
                      errors.OpPrereqError("Duration must be positive",
                                           errors.ECODE_INVAL))]}
    with pytest.raises(errors.OpPrereqError) as err:
        cli.PollJob(2, cl=cl)
    assert err.value.args == ("Duration must be positive", errors.ECODE_INVAL)


def test_poll_job_partial_failure():
    cl = FakeClient()
    cl.wfjc = [[[constants.JOB_STATUS_ERROR], []]]
    cl.jobs[2] = {"status": constants.JOB_STATUS_ERROR,
                  "opstatus": [constants.OP_STATUS_SUCCESS, constants.OP_STATUS_ERROR],
                  "opresult": [None, "plain text error"]}
    with pytest.raises(errors.OpExecError, match=r"partial failure \(opcode 1\)"):
        cli.PollJob(2, cl=cl)


def test_poll_job_canceled():
    cl = FakeClient()
    cl.wfjc = [[[constants.JOB_STATUS_CANCELED], []]]
    cl.jobs[3] = {"status": constants.JOB_STATUS_CANCELED,
                  "opstatus": [constants.OP_STATUS_CANCELED], "opresult": [None]}
    with pytest.raises(errors.JobCanceled):
        cli.PollJob(3, cl=cl)


@pytest.mark.parametrize("wfjc,jobs", [([None], {}), ([[[S], []]], {})])
def test_poll_job_lost(wfjc, jobs):
    cl = FakeClient()
    cl.wfjc = list(wfjc)
    with pytest.raises(errors.JobLost, match="Job with id 9 lost"):
        cli.PollJob(9, cl=cl)


def test_poll_job_refuses_bad_update_frequency():
    with pytest.raises(errors.ParameterError):
        cli.GenericPollJob(1, FakeClient(), cli.StdioJobPollReportCb(), update_freq=0)


# --- Generic opcode options ----------------------------------------------------------

def test_set_generic_opcode_opts(monkeypatch):
    monkeypatch.setattr("sys.argv", ["/usr/sbin/gnt-debug", "delay", "1"])
    op = opcodes.OpTestDelay(duration=1)
    cli.SetGenericOpcodeOpts([op], _Opts(debug=2, dry_run=True,
                                         priority=constants.OP_PRIO_HIGH,
                                         reason="maintenance"))
    assert op.debug_level == 2 and op.dry_run is True
    assert op.priority == constants.OP_PRIO_HIGH
    (user_src, user_reason, ts1), (client_src, command, ts2) = op.reason
    assert (user_src, user_reason) == (constants.OPCODE_REASON_SRC_USER, "maintenance")
    assert (client_src, command) == (f"{constants.OPCODE_REASON_SRC_CLIENT}:gnt-debug",
                                     "delay")
    assert isinstance(ts1, int) and ts2 >= ts1
    op.Validate(True)  # everything set passes the opcode's checks


def test_set_generic_opcode_opts_keeps_default_priority():
    op = opcodes.OpTestDelay(duration=1)
    cli.SetGenericOpcodeOpts([op], _Opts())
    assert not hasattr(op, "priority")
    assert len(op.reason) == 1
    cli.SetGenericOpcodeOpts([op], None)  # no options: nothing changes


# --- Submitting ------------------------------------------------------------------------

def test_submit_opcode(capsys):
    cl = FakeClient()
    cl.wfjc = [[[S], []]]
    cl.jobs[1] = SuccessJob(1, results=["result"])
    op = opcodes.OpTestDelay(duration=1)
    assert cli.SubmitOpCode(op, cl=cl, opts=_Opts(print_jobid=True)) == "result"
    assert capsys.readouterr().out == "1\n"
    (ops,) = cl.submitted
    assert ops[0]["OP_ID"] == "OP_TEST_DELAY" and ops[0]["duration"] == 1


def test_submit_or_send_with_submit(capsys):
    cl = FakeClient()
    op = opcodes.OpTestDelay(duration=1)
    with pytest.raises(cli.JobSubmittedException) as err:
        cli.SubmitOrSend(op, _Opts(submit_only=True, priority=constants.OP_PRIO_LOW), cl=cl)
    assert err.value.args == (1,)
    assert cl.submitted[0][0]["priority"] == constants.OP_PRIO_LOW
    assert "WaitForJobChangeOnce" not in cl.CallNames()
    assert capsys.readouterr().out == ""
    with pytest.raises(cli.JobSubmittedException):
        cli.SubmitOrSend(op, _Opts(submit_only=True, print_jobid=True), cl=cl)
    assert capsys.readouterr().out == "2\n"


def test_submit_or_send_waits_without_submit():
    cl = FakeClient()
    cl.wfjc = [[[S], []]]
    cl.jobs[1] = SuccessJob(1, results=[None])
    assert cli.SubmitOrSend(opcodes.OpTestDelay(duration=1), _Opts(), cl=cl) is None


def test_send_job_uses_default_client(fake_client):
    assert cli.SendJob([opcodes.OpTestDelay(duration=2)]) == 1
    assert fake_client.submitted[0][0]["duration"] == 2


# --- JobExecutor ---------------------------------------------------------------------------

def test_job_executor(capsys):
    cl = FakeClient()
    cl.wfjc = [[[S], []], [[constants.JOB_STATUS_ERROR], []]]
    cl.jobs[1] = SuccessJob(1, results=["a"])
    cl.jobs[2] = {"status": constants.JOB_STATUS_ERROR,
                  "opstatus": [constants.OP_STATUS_ERROR],
                  "opresult": [errors.EncodeException(errors.OpExecError("bad"))]}
    jex = cli.JobExecutor(cl=cl, opts=_Opts(priority=constants.OP_PRIO_HIGH))
    jex.QueueJob("one", opcodes.OpTestDelay(duration=1))
    jex.QueueJob("two", opcodes.OpTestDelay(duration=2))
    results = jex.GetResults()
    assert results == [(True, ["a"]), (False, "Failure: command execution error:\nbad")]
    assert cl.CallNames()[0] == "SubmitManyJobs"
    assert all(ops[0]["priority"] == constants.OP_PRIO_HIGH for ops in cl.submitted)
    captured = capsys.readouterr()
    assert "Waiting for job 1 for one ..." in captured.out
    assert "Job 2 for two has failed" in captured.err


def test_job_executor_submit_only(capsys):
    cl = FakeClient()
    jex = cli.JobExecutor(cl=cl)
    jex.QueueJob("x", opcodes.OpTestDelay(duration=1))
    assert jex.WaitOrShow(False) is None
    assert capsys.readouterr().out == "1: x\n"
    assert jex.GetResults() == []
