"""Tests for ganeti.cli.command and ganeti.cli.options: parsing, errors, exit codes."""

from __future__ import annotations

import errno

import pytest

from ganeti import cli, constants, errors, luxi
from ganeti.cli import options


class Recorder:
    """A command function that records what it was called with."""

    def __init__(self, result=0, exc=None):
        self.result = result
        self.exc = exc
        self.opts = None
        self.args = None

    def __call__(self, opts, args):
        self.opts, self.args = opts, args
        if self.exc is not None:
            raise self.exc
        return self.result


def _Commands(func, args_def=None, opts=None):
    return {
        "run": (func, args_def if args_def is not None else [cli.ArgUnknown()],
                opts if opts is not None else [], "[args...]", "Run something"),
        "other": (Recorder(), cli.ARGS_NONE, [], "", "Another command with a"
                  " description long enough to be wrapped over several lines"
                  " in the usage text shown without a command"),
    }


def _Main(commands, *argv, **kwargs):
    return cli.GenericMain(commands, argv=["gnt-test", *argv], **kwargs)


# --- Option parsing --------------------------------------------------------------

ALL_OPTS = [cli.SUBMIT_OPT, cli.PRINT_JOBID_OPT, cli.PRIORITY_OPT, cli.DRY_RUN_OPT,
            cli.NOHDR_OPT, cli.SEP_OPT, cli.FIELDS_OPT, cli.UNITS_OPT, cli.VERBOSE_OPT,
            cli.FORCE_OPT, cli.YES_DOIT_OPT, cli.FORCE_FILTER_OPT, cli.INTERVAL_OPT]


def test_option_defaults():
    rec = Recorder()
    assert _Main(_Commands(rec, opts=ALL_OPTS), "run") == 0
    opts = rec.opts
    assert (opts.submit_only, opts.print_jobid, opts.priority, opts.dry_run) == \
        (False, False, None, False)
    assert (opts.no_headers, opts.separator, opts.output, opts.units) == \
        (False, None, None, None)
    assert (opts.verbose, opts.force, opts.yes_do_it, opts.force_filter) == \
        (False, False, False, False)
    assert (opts.debug, opts.reason, opts.interval) == (0, None, None)
    assert rec.args == []


def test_options_given():
    rec = Recorder()
    rc = _Main(_Commands(rec, opts=ALL_OPTS), "run", "a", "--submit", "--print-jobid",
               "--priority", "high", "--dry-run", "--no-headers", "--separator=|",
               "-o", "+x,y", "--units", "G", "-v", "-f", "--yes-do-it", "-F",
               "--interval", "3", "-dd", "--reason", "because", "b")
    assert rc == 0
    opts = rec.opts
    assert opts.submit_only and opts.print_jobid and opts.dry_run
    assert opts.priority == constants.OP_PRIO_HIGH
    assert opts.no_headers and opts.separator == "|" and opts.output == "+x,y"
    assert opts.units == "g"
    assert opts.verbose and opts.force and opts.yes_do_it and opts.force_filter
    assert opts.interval == 3 and opts.debug == 2 and opts.reason == "because"
    assert rec.args == ["a", "b"]


@pytest.mark.parametrize("name,value", [("low", constants.OP_PRIO_LOW),
                                        ("normal", constants.OP_PRIO_NORMAL),
                                        ("HIGH", constants.OP_PRIO_HIGH)])
def test_priority_names(name, value):
    assert options.ParsePriority(name) == value


@pytest.mark.parametrize("argv,message", [
    (["--priority", "urgent"], "invalid priority 'urgent' (choose from low, normal, high)"),
    (["--units", "k"], "invalid unit 'k'"),
    (["--interval", "0"], "invalid value '0': must be greater than zero"),
    (["--interval", "x"], "invalid value 'x': expected a whole number"),
    (["--no-such-option"], "unrecognized arguments: --no-such-option"),
])
def test_bad_option_values(capsys, argv, message):
    rec = Recorder()
    assert _Main(_Commands(rec, opts=ALL_OPTS), "run", *argv) == 2
    assert rec.opts is None
    err = capsys.readouterr().err
    assert message in err
    assert "usage: gnt-test run" in err


def test_option_abbreviations_are_refused(capsys):
    rec = Recorder()
    assert _Main(_Commands(rec, opts=ALL_OPTS), "run", "--prio", "low") == 2
    assert rec.opts is None


@pytest.mark.parametrize("text,seconds", [("30", 30), ("30s", 30), ("5m", 300),
                                          ("2h", 7200), ("1d", 86400), ("1w", 604800),
                                          ("0", 0)])
def test_parse_timespec(text, seconds):
    assert cli.ParseTimespec(text) == seconds


@pytest.mark.parametrize("text", ["", "d", "1x", "1.5h", "-1d", "abc"])
def test_parse_timespec_refuses_garbage(text):
    with pytest.raises(errors.OpPrereqError, match="time specification"):
        cli.ParseTimespec(text)


def test_cli_option_needs_dashes():
    with pytest.raises(errors.ProgrammerError):
        cli.cli_option("submit")
    assert cli.cli_option("--foo-bar").dest == "foo_bar"
    assert cli.cli_option("-x", dest="ex").dest == "ex"


# --- Commands, usage, arguments ---------------------------------------------------------

def test_no_command_prints_usage_and_fails(capsys):
    assert _Main(_Commands(Recorder())) == constants.EXIT_FAILURE
    out = capsys.readouterr().out
    assert out.startswith("Usage: gnt-test {command} [options...] [argument...]")
    assert " other - Another command" in out
    assert " run   - Run something" in out
    # long descriptions are wrapped under the first line
    assert "\n         " in out


def test_help_and_version(capsys):
    assert _Main(_Commands(Recorder()), "--help") == 0
    assert "Commands:" in capsys.readouterr().out
    assert _Main(_Commands(Recorder()), "--version") == 0
    assert capsys.readouterr().out.startswith("gnt-test (ganeti) ")


def test_command_help(capsys):
    rec = Recorder()
    assert _Main(_Commands(rec, opts=[cli.SUBMIT_OPT]), "run", "--help") == 0
    out = capsys.readouterr().out
    assert "usage: gnt-test run [args...]" in out
    assert "--submit" in out and "--debug" in out and "--reason" in out
    assert rec.opts is None


def test_unknown_command(capsys):
    assert _Main(_Commands(Recorder()), "frobnicate") == constants.EXIT_FAILURE
    assert "Error: unknown command 'frobnicate'" in capsys.readouterr().err


def test_alias():
    rec = Recorder(result=7)
    assert _Main(_Commands(rec), "go", aliases={"go": "run"}) == 7


def test_alias_must_name_a_command():
    with pytest.raises(errors.ProgrammerError):
        _Main(_Commands(Recorder()), "go", aliases={"go": "nothing"})


def test_env_override(monkeypatch):
    rec = Recorder()
    monkeypatch.setenv("GNT_TEST_RUN", "--separator=: first")
    assert _Main(_Commands(rec, opts=[cli.SEP_OPT]), "run", "second",
                 env_override=["run"]) == 0
    assert rec.opts.separator == ":" and rec.args == ["first", "second"]
    rec2 = Recorder()
    assert _Main(_Commands(rec2, opts=[cli.SEP_OPT]), "run", "x") == 0
    assert rec2.args == ["x"]


def test_override_sets_options():
    rec = Recorder()
    _Main(_Commands(rec, opts=[cli.FORCE_OPT]), "run", override={"force": True})
    assert rec.opts.force is True


@pytest.mark.parametrize("args_def,argv,ok,message", [
    (cli.ARGS_NONE, ["x"], False, "Command run expects no arguments"),
    ([cli.ArgJobId(min=1, max=1)], [], False, "expects 1 argument(s)"),
    ([cli.ArgJobId(min=1, max=1)], ["1", "2"], False, "expects 1 argument(s)"),
    ([cli.ArgJobId(min=1, max=1)], ["1"], True, ""),
    ([cli.ArgJobId(min=0, max=2)], ["1", "2", "3"], False, "expects only 2 argument(s)"),
    ([cli.ArgJobId(min=2)], ["1"], False, "expects at least 2 argument(s)"),
    ([cli.ArgJobId(min=2)], ["1", "2", "3"], True, ""),
    ([cli.ArgChoice(min=1, max=1, choices=("a", "b"))], ["c"], False,
     "invalid argument 'c' for run (choose from a, b)"),
    ([cli.ArgSuggest(min=1, max=1, choices=("a", "b"))], ["c"], True, ""),
])
def test_argument_counts(capsys, args_def, argv, ok, message):
    rec = Recorder()
    rc = _Main(_Commands(rec, args_def=args_def), "run", *argv)
    assert (rc == 0) == ok
    if not ok:
        assert rc == constants.EXIT_FAILURE
        assert message in capsys.readouterr().err
        assert rec.opts is None


def test_none_result_is_success():
    assert _Main(_Commands(Recorder(result=None)), "run") == 0


# --- Errors ------------------------------------------------------------------------------

@pytest.mark.parametrize("exc,code,text", [
    (errors.OpPrereqError("Bad thing", errors.ECODE_INVAL), 1,
     "Failure: prerequisites not met for this operation:\n"
     "error type: wrong_input, error details:\nBad thing"),
    (errors.OpPrereqError("No code"), 1,
     "Failure: prerequisites not met for this operation:\nNo code"),
    (errors.OpExecError("It broke"), 1, "Failure: command execution error:\nIt broke"),
    (errors.JobQueueDrainError("drained"), 1,
     "Failure: the job queue is marked for drain and doesn't accept new requests"),
    (errors.JobQueueFull("full"), 1,
     "Failure: the job queue is full and doesn't accept new job submissions until"
     " old jobs are archived"),
    (errors.TagError("bad tag"), 1, "Failure: invalid tag(s) given:\nbad tag"),
    (errors.TypeEnforcementError("x"), 1, "Parameter Error: x"),
    (errors.ParameterError("foo"), 1, "Failure: unknown/wrong parameter name 'foo'"),
    (errors.ConfigurationError("broken"), 2,
     "Corrupt configuration file: broken\nAborting."),
    (errors.HooksAbort([("node1", "script", "out"), ("node2", "s2", "")]), 1,
     "Failure: hooks execution failed:\n  node: node1, script: script, output: out\n"
     "  node: node2, script: s2 (no output)"),
    (errors.HooksFailure("oops"), 1, "Failure: hooks general failure: oops"),
    (errors.ResolverError("host.example", 1, "no"), 1,
     "Failure: can't resolve hostname 'host.example'"),
    (errors.JobLost("Job 3 lost"), 1, "Error checking job status: Job 3 lost"),
    (errors.GenericError("odd"), 1, "Unhandled Ganeti error: odd"),
    (luxi.NoMasterError("/x/socket"), 1,
     "Cannot communicate with the master daemon.\n"
     "Is it running and listening for connections?"),
    (ConnectionRefusedError(errno.ECONNREFUSED, "refused"), 1,
     "Cannot communicate with the master daemon.\n"
     "Is it running and listening for connections?"),
    (luxi.TimeoutError("slow"), 1,
     "Timeout while talking to the master daemon. Error:\nslow"),
    (luxi.ProtocolError("garbled"), 1,
     "Unhandled protocol error while talking to the master daemon:\ngarbled"),
    (PermissionError(errno.EACCES, "denied"), 1,
     "It seems you don't have permissions to connect to the master daemon.\n"
     "Please retry as a different user (root, or a member of group gnt-admin)."),
    (cli.JobSubmittedException(42), 0, "JobID: 42"),
    (ValueError("weird"), 1, "Unhandled exception: weird"),
])
def test_format_error(exc, code, text):
    assert cli.FormatError(exc) == (code, text)


@pytest.mark.parametrize("exc,code,text", [
    (errors.OpPrereqError("Bad thing", errors.ECODE_NOENT), 1,
     "error type: unknown_entity, error details:\nBad thing"),
    (luxi.NoMasterError("gone"), 1, "Cannot communicate with the master daemon."),
    (cli.JobSubmittedException(5), 0, "JobID: 5"),
])
def test_generic_main_reports_errors(capsys, exc, code, text):
    assert _Main(_Commands(Recorder(exc=exc)), "run") == code
    assert text in capsys.readouterr().err


def test_generic_main_keyboard_interrupt(capsys):
    assert _Main(_Commands(Recorder(exc=KeyboardInterrupt())), "run") == 1
    assert "Aborted." in capsys.readouterr().err


def test_generic_main_does_not_hide_bugs():
    with pytest.raises(ZeroDivisionError):
        _Main(_Commands(Recorder(exc=ZeroDivisionError())), "run")


def test_debug_logs_tracebacks(capsys):
    _Main(_Commands(Recorder(exc=errors.OpExecError("boom"))), "run", "-d")
    err = capsys.readouterr().err
    assert "Failure: command execution error:\nboom" in err
    assert "Traceback" in err
    _Main(_Commands(Recorder(exc=errors.OpExecError("boom"))), "run")
    assert "Traceback" not in capsys.readouterr().err


# --- AskUser -----------------------------------------------------------------------------

class _FakeTty:
    def __init__(self, answers):
        self.answers = list(answers)
        self.written = []

    def write(self, text):
        self.written.append(text)

    def flush(self):
        pass

    def readline(self):
        return self.answers.pop(0) if self.answers else ""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _PatchTty(monkeypatch, tty):
    def _Open(path, *args, **kwargs):
        assert path == "/dev/tty"
        if tty is None:
            raise OSError(6, "No such device or address")
        return tty
    monkeypatch.setattr("ganeti.cli.base.open", _Open, raising=False)


def test_ask_user_without_terminal_says_no(monkeypatch):
    _PatchTty(monkeypatch, None)
    assert cli.AskUser("Really?") is False


def test_ask_user_answers(monkeypatch):
    tty = _FakeTty(["?\n", "maybe\n", "Y\n"])
    _PatchTty(monkeypatch, tty)
    assert cli.AskUser("Really?") is True
    text = "".join(tty.written)
    assert "Really?\ny/[n]/?: " in text
    assert " y - Perform the operation" in text


def test_ask_user_custom_choices_and_eof(monkeypatch):
    _PatchTty(monkeypatch, _FakeTty(["b\n"]))
    choices = [("a", 1, "one"), ("b", 2, "two"), ("c", 3, "three")]
    assert cli.AskUser("Which?", choices) == 2
    _PatchTty(monkeypatch, _FakeTty([]))
    assert cli.AskUser("Which?", choices) == 3
    with pytest.raises(ValueError):
        cli.AskUser("Bad", [("?", 1, "reserved")])
