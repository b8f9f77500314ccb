"""The ``commands`` table of a gnt-* tool and its main function.

Each tool declares one table, as Ganeti does::

    commands = {
        "list": (ListJobs, [ArgJobId()], [NOHDR_OPT, SEP_OPT, FIELDS_OPT],
                 "[job_id...]", "Lists the jobs and their status"),
        ...
    }

that is: name -> (function, argument spec, options, usage, description).
The function is called as ``function(opts, args)`` and returns the exit
code. :func:`GenericMain` parses the command line with argparse (one
sub-parser per command, plus :data:`~ganeti.cli.options.COMMON_OPTS`),
checks the number of arguments against the spec, runs the function and
turns errors into Ganeti's messages and exit codes (:func:`FormatError`).
"""

from __future__ import annotations

import argparse
import errno
import logging
import os
import shlex
import sys
import textwrap
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ganeti import constants, errors, luxi
from ganeti.cli import base, options
from ganeti.cli.base import JobSubmittedException, ToStderr, ToStdout

#: One entry of a commands table
CommandDef = tuple[Callable[[Any, list[str]], int], Sequence["Argument"],
                   Sequence[options.CliOption], str, str]


# --- Argument specifications -------------------------------------------------------

@dataclass(frozen=True)
class Argument:
    """A positional argument taken ``min`` to ``max`` times (None: no limit)."""

    min: int = 0
    max: int | None = None


class ArgJobId(Argument):
    """Job IDs."""


class ArgUnknown(Argument):
    """Anything (checked by the command itself)."""


class ArgNode(Argument):
    """Node names."""


class ArgInstance(Argument):
    """Instance names."""


class ArgGroup(Argument):
    """Node group names."""


class ArgFile(Argument):
    """File names."""


class ArgCommand(Argument):
    """A command to run."""


class ArgHost(Argument):
    """Host names."""


@dataclass(frozen=True)
class ArgSuggest(Argument):
    """An argument with suggested (not enforced) values."""

    choices: tuple[str, ...] = ()


class ArgChoice(ArgSuggest):
    """An argument that must be one of ``choices``."""


ARGS_NONE: list[Argument] = []
ARGS_MANY_JOBS = [ArgJobId()]
ARGS_ONE_JOB = [ArgJobId(min=1, max=1)]


def CheckArguments(cmd: str, args_def: Sequence[Argument], args: Sequence[str]) -> bool:
    """Check the number (and choices) of arguments; print an error if wrong."""
    if args and not args_def:
        ToStderr("Error: Command %s expects no arguments", cmd)
        return False
    min_count = sum(arg.min for arg in args_def)
    maxes = [arg.max for arg in args_def]
    for arg in args_def[:-1]:
        if arg.max is None:
            raise errors.ProgrammerError("Only the last argument can have max=None")
    max_count = None if (not maxes or None in maxes) else sum(m for m in maxes if m)
    if max_count is not None:
        if min_count == max_count and len(args) != min_count:
            ToStderr("Error: Command %s expects %d argument(s)", cmd, min_count)
            return False
        if len(args) > max_count:
            ToStderr("Error: Command %s expects only %d argument(s)", cmd, max_count)
            return False
    if len(args) < min_count:
        ToStderr("Error: Command %s expects at least %d argument(s)", cmd, min_count)
        return False
    if len(args_def) == 1 and isinstance(args_def[0], ArgChoice):
        bad = [a for a in args if a not in args_def[0].choices]
        if bad:
            ToStderr("Error: invalid argument '%s' for %s (choose from %s)",
                     bad[0], cmd, ", ".join(args_def[0].choices))
            return False
    return True


# --- Errors --------------------------------------------------------------------------

def _IsNoMaster(err: BaseException) -> bool:
    """Whether ``err`` means nothing listens on the master socket."""
    if isinstance(err, (luxi.NoMasterError, base.NoMasterError,
                        ConnectionRefusedError, FileNotFoundError)):
        return True
    return isinstance(err, OSError) and err.errno in (errno.ECONNREFUSED, errno.ENOENT)


def FormatError(err: BaseException) -> tuple[int, str]:
    """Return (exit code, message) for an error, worded as Ganeti's tools do."""
    retcode = constants.EXIT_FAILURE
    msg = str(err)
    if isinstance(err, errors.ConfigurationError):
        text = f"Corrupt configuration file: {msg}\nAborting."
        retcode = 2
    elif isinstance(err, errors.HooksAbort):
        lines = ["Failure: hooks execution failed:"]
        for node, script, out in (err.args[0] if err.args else []):
            if out:
                lines.append(f"  node: {node}, script: {script}, output: {out}")
            else:
                lines.append(f"  node: {node}, script: {script} (no output)")
        text = "\n".join(lines)
    elif isinstance(err, errors.HooksFailure):
        text = f"Failure: hooks general failure: {msg}"
    elif isinstance(err, errors.ResolverError):
        text = f"Failure: can't resolve hostname '{err.args[0] if err.args else msg}'"
    elif isinstance(err, errors.OpPrereqError):
        if len(err.args) == 2:
            text = ("Failure: prerequisites not met for this operation:\n"
                    f"error type: {err.args[1]}, error details:\n{err.args[0]}")
        else:
            text = f"Failure: prerequisites not met for this operation:\n{msg}"
    elif isinstance(err, errors.OpExecError):
        text = f"Failure: command execution error:\n{msg}"
    elif isinstance(err, errors.TagError):
        text = f"Failure: invalid tag(s) given:\n{msg}"
    elif isinstance(err, errors.JobQueueDrainError):
        text = ("Failure: the job queue is marked for drain and doesn't accept"
                " new requests")
    elif isinstance(err, errors.JobQueueFull):
        text = ("Failure: the job queue is full and doesn't accept new job"
                " submissions until old jobs are archived")
    elif isinstance(err, errors.TypeEnforcementError):
        text = f"Parameter Error: {msg}"
    elif isinstance(err, errors.ParameterError):
        text = f"Failure: unknown/wrong parameter name '{msg}'"
    elif _IsNoMaster(err):
        text = ("Cannot communicate with the master daemon.\nIs it running"
                " and listening for connections?")
    elif isinstance(err, (luxi.TimeoutError, TimeoutError)):
        text = f"Timeout while talking to the master daemon. Error:\n{msg}"
    elif isinstance(err, PermissionError):
        from ganeti import runtime
        text = ("It seems you don't have permissions to connect to the master"
                " daemon.\nPlease retry as a different user (root, or a member"
                f" of group {runtime.GetNames().admin_group}).")
    elif isinstance(err, luxi.ProtocolError):
        text = f"Unhandled protocol error while talking to the master daemon:\n{msg}"
    elif isinstance(err, errors.JobLost):
        text = f"Error checking job status: {msg}"
    elif isinstance(err, errors.JobCanceled):
        text = f"Job canceled: {msg}"
    elif isinstance(err, errors.GenericError):
        text = f"Unhandled Ganeti error: {msg}"
    elif isinstance(err, JobSubmittedException):
        text = f"JobID: {err.args[0]}"
        retcode = constants.EXIT_SUCCESS
    else:
        text = f"Unhandled exception: {msg}"
    return retcode, text.rstrip("\n")


def _HandledErrors() -> tuple[type[BaseException], ...]:
    """Exceptions GenericMain reports with FormatError instead of a traceback."""
    return (errors.GenericError, JobSubmittedException, base.NoMasterError,
            ConnectionError, FileNotFoundError, TimeoutError, PermissionError)


# --- Parsing ---------------------------------------------------------------------------

class _UsageError(Exception):
    """argparse refused the command line; args: (exit code, message)."""


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser that raises instead of exiting, so Main can return."""

    def error(self, message: str) -> Any:  # type: ignore[override]
        raise _UsageError(2, f"{self.prog}: error: {message}")

    def exit(self, status: int = 0, message: str | None = None) -> Any:  # type: ignore[override]
        raise _UsageError(status, message or "")


def FormatUsage(binary: str, commands: Mapping[str, CommandDef]) -> list[str]:
    """The usage text listing every command with its description."""
    width = min(60, max((len(name) for name in commands), default=0))
    lines = [f"Usage: {binary} {{command}} [options...] [argument...]",
             f"{binary} <command> --help to see details, or man {binary}",
             "", "Commands:"]
    for name, cmd in sorted(commands.items()):
        help_lines = textwrap.wrap(cmd[4], 79 - 3 - width) or [""]
        lines.append(f" {name:<{width}} - {help_lines[0]}")
        lines.extend(f" {'':<{width}}   {line}" for line in help_lines[1:])
    lines.append("")
    return lines


def _AllOptions(cmd_opts: Iterable[options.CliOption]) -> list[options.CliOption]:
    """The command's options plus the common ones, without duplicates.

    A command taking ``--submit`` submits a job, so it also takes
    ``--print-jobid`` and ``--priority`` (:data:`options.JOB_OPTS`), as
    every job-submitting command of Ganeti does, without each table entry
    having to list them.
    """
    cmd_opts = list(cmd_opts)
    extra = options.JOB_OPTS if options.SUBMIT_OPT in cmd_opts else []
    result: list[options.CliOption] = []
    seen: set[str] = set()
    for opt in cmd_opts + extra + options.COMMON_OPTS:
        if opt.flags[-1] in seen:
            continue
        seen.update(opt.flags)
        result.append(opt)
    return result


def CommandOptions(cmd_def: CommandDef) -> list[options.CliOption]:
    """Every option a command accepts (its own, implied and common ones)."""
    return _AllOptions(cmd_def[2])


def _BuildParser(binary: str, cmd: str, cmd_def: CommandDef) -> _Parser:
    _, _, cmd_opts, usage, description = cmd_def
    parser = _Parser(prog=f"{binary} {cmd}", usage=f"%(prog)s {usage}",
                     description=description, allow_abbrev=False)
    for opt in _AllOptions(cmd_opts):
        opt.AddTo(parser)
    return parser


def ParseArgs(binary: str, argv: Sequence[str], commands: Mapping[str, CommandDef],
              aliases: Mapping[str, str],
              env_override: Iterable[str]) -> tuple[Any, Any, list[str]] | int:
    """Parse ``argv`` (without the program name).

    Returns ``(function, options, args)``, or an exit code when there is
    nothing to run (usage shown, bad options, wrong argument count).
    """
    if not argv:
        for line in FormatUsage(binary, commands):
            ToStdout(line)
        return constants.EXIT_FAILURE
    cmd = argv[0]
    if cmd in ("-h", "--help"):
        for line in FormatUsage(binary, commands):
            ToStdout(line)
        return constants.EXIT_SUCCESS
    if cmd == "--version":
        ToStdout("%s (ganeti) %s", binary, getattr(constants, "RELEASE_VERSION", "?"))
        return constants.EXIT_SUCCESS
    if cmd in aliases:
        target = aliases[cmd]
        if cmd in commands or target not in commands:
            raise errors.ProgrammerError(f"Alias '{cmd}' overrides a command or"
                                         f" names an unknown one ('{target}')")
        cmd = target
    if cmd not in commands:
        ToStderr("Error: unknown command '%s'", argv[0])
        for line in FormatUsage(binary, commands):
            ToStderr(line)
        return constants.EXIT_FAILURE
    rest = list(argv[1:])
    if cmd in set(env_override):
        env_name = f"{binary}_{cmd}".replace("-", "_").upper()
        env_args = os.environ.get(env_name)
        if env_args:
            try:
                rest = shlex.split(env_args) + rest
            except ValueError as err:
                ToStderr("Error: cannot parse the default arguments in %s (%r): %s",
                         env_name, env_args, err)
                return 2
    cmd_def = commands[cmd]
    parser = _BuildParser(binary, cmd, cmd_def)
    parser.add_argument("args", nargs="*", help=argparse.SUPPRESS)
    try:
        opts = parser.parse_intermixed_args(rest)
    except _UsageError as err:
        code, message = err.args
        if message:
            if code:
                ToStderr(parser.format_usage().rstrip("\n"))
                ToStderr(message.rstrip("\n"))
            else:
                ToStdout(message.rstrip("\n"))
        return code
    args = list(opts.args)
    del opts.args
    if not CheckArguments(cmd, cmd_def[1], args):
        return constants.EXIT_FAILURE
    return cmd_def[0], opts, args


class _StderrHandler(logging.Handler):
    """Logs to whatever ``sys.stderr`` is when a record is emitted."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
        except Exception:  # noqa: BLE001 - logging must never raise
            self.handleError(record)


def _SetupLogging(binary: str, debug: int) -> Callable[[], None]:
    """Log to stderr with --debug; return the function undoing it."""
    if not debug:
        return lambda: None
    root = logging.getLogger()
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter(f"{binary}: %(levelname)s %(message)s"))
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)

    def _Undo() -> None:
        root.removeHandler(handler)
        root.setLevel(old_level)
    return _Undo


#: Commands taking default arguments from the environment unless a tool
#: says otherwise
_ENV_OVERRIDE = ("list",)


def GenericMain(commands: Mapping[str, CommandDef], override: Mapping[str, Any] | None = None,
                aliases: Mapping[str, str] | None = None,
                env_override: Iterable[str] | None = None,
                argv: Sequence[str] | None = None) -> int:
    """Run the command named on the command line; return the exit code.

    ``override`` forces option values; ``aliases`` maps extra command names
    to commands; for commands in ``env_override`` (by default every
    "list" command, as Ganeti documents for gnt-instance, gnt-node and
    gnt-group) the environment variable ``GNT_<TOOL>_<COMMAND>`` (e.g.
    ``GNT_INSTANCE_LIST="-o name,status"``) supplies default arguments,
    placed before those of the command line; ``argv`` defaults to
    ``sys.argv``.
    """
    if argv is None:
        argv = sys.argv
    binary = os.path.basename(argv[0]) if argv and argv[0] else "gnt"
    try:
        parsed = ParseArgs(binary, argv[1:], commands, aliases or {},
                           _ENV_OVERRIDE if env_override is None else env_override)
    except errors.ParameterError as err:
        ToStderr(FormatError(err)[1])
        return constants.EXIT_FAILURE
    if isinstance(parsed, int):
        return parsed
    func, opts, args = parsed
    for key, value in (override or {}).items():
        setattr(opts, key, value)
    undo_logging = _SetupLogging(binary, getattr(opts, "debug", 0))
    logging.info("%s run with arguments %r", binary, list(argv[1:]))
    try:
        result = func(opts, args)
    except _HandledErrors() as err:
        result, message = FormatError(err)
        logging.debug("Error during command processing", exc_info=True)
        ToStderr(message)
    except KeyboardInterrupt:
        result = constants.EXIT_FAILURE
        ToStderr("Aborted. Jobs submitted before the interruption keep running"
                 " in the background.")
    except BrokenPipeError:
        # Whoever read our output went away; nothing more to say
        result = constants.EXIT_FAILURE
    finally:
        undo_logging()
    if result is None:
        result = constants.EXIT_SUCCESS
    return int(result)
