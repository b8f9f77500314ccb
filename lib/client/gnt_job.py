"""gnt-job: examine and manipulate the job queue."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ganeti import cli, constants, errors, utils
from ganeti.cli import (
    FIELDS_OPT,
    FORCE_FILTER_OPT,
    FORCE_OPT,
    NOHDR_OPT,
    PRIORITY_OPT,
    SEP_OPT,
    VERBOSE_OPT,
    YES_DOIT_OPT,
    ArgJobId,
    ArgSuggest,
    ToStderr,
    ToStdout,
    cli_option,
)
from ganeti.cli.base import AskUser

#: Default fields of "gnt-job list"
_LIST_DEF_FIELDS = ["id", "status", "summary"]

#: Fields shown by "gnt-job info", in this order
_INFO_FIELDS = ["id", "status", "ops", "opresult", "opstatus", "oplog",
                "opstart", "opexec", "opend", "received_ts", "start_ts", "end_ts"]


def _FormatSummary(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ",".join(str(item) for item in value)
    return str(value)


def _FormatTimestamps(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(cli.FormatTimestamp(ts) if ts is not None else "None"
                               for ts in value) + "]"
    return str(value)


def _FormatTs(value: Any) -> str:
    return cli.FormatTimestamp(value) if value is not None else "-"


_JOB_LIST_FORMAT: dict[str, tuple[Callable[[Any], str], bool]] = {
    "summary": (_FormatSummary, False),
    "opstart": (_FormatTimestamps, False),
    "opexec": (_FormatTimestamps, False),
    "opend": (_FormatTimestamps, False),
    "received_ts": (_FormatTs, False),
    "start_ts": (_FormatTs, False),
    "end_ts": (_FormatTs, False),
}


def _ParseJobIds(args: Sequence[str]) -> list[int]:
    """Job IDs from the command line, as integers.

    @raise errors.OpPrereqError: naming the first argument that is not a job ID
    """
    result = []
    for arg in args:
        try:
            job_id = int(arg)
        except ValueError:
            job_id = -1
        if job_id < 0:
            raise errors.OpPrereqError(f"Invalid job ID '{arg}': expected a"
                                       " non-negative integer", errors.ECODE_INVAL)
        result.append(job_id)
    return result


# --- list, list-fields ----------------------------------------------------------------

def ListJobs(opts: Any, args: list[str]) -> int:
    """List jobs with the selected fields (and status filter)."""
    selected_fields = cli.ParseFields(opts.output, _LIST_DEF_FIELDS)
    if opts.archived and "archived" not in selected_fields:
        selected_fields.append("archived")
    qfilter = cli.MakeSimpleFilter("status", sorted(opts.status_filter)) \
        if opts.status_filter is not None else None
    return cli.GenericList(constants.QR_JOB, selected_fields, args, None,
                           opts.separator, not opts.no_headers,
                           format_override=_JOB_LIST_FORMAT, verbose=opts.verbose,
                           force_filter=opts.force_filter, namefield="id",
                           qfilter=qfilter, isnumeric=True)


def ListJobFields(opts: Any, args: list[str]) -> int:
    """Describe the fields of jobs."""
    return cli.GenericListFields(constants.QR_JOB, args, opts.separator,
                                 not opts.no_headers)


# --- archive, autoarchive ----------------------------------------------------------

def ArchiveJobs(opts: Any, args: list[str]) -> int:
    """Archive finished jobs."""
    cl = cli.GetClient()
    rcode = constants.EXIT_SUCCESS
    for job_id in _ParseJobIds(args):
        if not cl.ArchiveJob(job_id):
            ToStderr("Failed to archive job with ID '%s'", job_id)
            rcode = constants.EXIT_FAILURE
    return rcode


def AutoArchiveJobs(opts: Any, args: list[str]) -> int:
    """Archive finished jobs older than an age ("all": every finished job)."""
    age = -1 if args[0] == "all" else cli.ParseTimespec(args[0])
    archived, left = cli.GetClient().AutoArchiveJobs(age)
    ToStdout("Archived %s jobs, %s unchecked left", archived, left)
    return constants.EXIT_SUCCESS


# --- cancel, change-priority ----------------------------------------------------------

def _MultiJobAction(opts: Any, args: list[str], question: str,
                    action_fn: Callable[[Any, int], Any], cl: Any = None,
                    ask_fn: Callable[[str], bool] | None = None) -> int:
    """Apply ``action_fn(client, job_id) -> (success, message)`` to jobs.

    The jobs are the arguments or, with a status option, the jobs in that
    status (listed and confirmed first unless --force).
    """
    if bool(args) == (opts.status_filter is not None):
        raise errors.OpPrereqError("Either a status filter or job ID(s) must be"
                                   " specified and never both", errors.ECODE_INVAL)
    if cl is None:
        cl = cli.GetClient()
    if opts.status_filter is not None:
        response = cl.Query(constants.QR_JOB, ["id", "status", "summary"],
                            cli.MakeSimpleFilter("status", sorted(opts.status_filter)))
        rows = cli.output.ResponseData(response)
        job_ids = [row[0][1] for row in rows]
        if not job_ids:
            raise errors.OpPrereqError("No jobs with the requested status have"
                                       " been found", errors.ECODE_STATE)
        if not opts.force:
            _, table = cli.FormatQueryResult(response, header=True,
                                             format_override=_JOB_LIST_FORMAT)
            for line in table:
                ToStdout(line)
            if not (ask_fn or AskUser)(question):
                return constants.EXIT_CONFIRMATION
    else:
        job_ids = _ParseJobIds(args)
    result = constants.EXIT_SUCCESS
    for job_id in job_ids:
        success, msg = action_fn(cl, job_id)
        if not success:
            result = constants.EXIT_FAILURE
        ToStdout("%s", msg)
    return result


def CancelJobs(opts: Any, args: list[str]) -> int:
    """Cancel jobs that have not started (or kill running ones with --kill)."""
    if opts.kill:
        if not opts.yes_do_it:
            raise errors.OpPrereqError("The --kill option must be confirmed with"
                                       " --yes-do-it", errors.ECODE_INVAL)
        action = "KILL"
    else:
        action = "Cancel"

    def _Cancel(cl: Any, job_id: int) -> Any:
        if opts.kill:
            return cl.CancelJob(job_id, kill=True)
        return cl.CancelJob(job_id)

    return _MultiJobAction(opts, args, f"{action} job(s) listed above?", _Cancel)


def ChangePriority(opts: Any, args: list[str]) -> int:
    """Change the priority of pending jobs."""
    if opts.priority is None:
        ToStderr("--priority option must be given.")
        return constants.EXIT_FAILURE
    return _MultiJobAction(opts, args, "Change priority of job(s) listed above?",
                           lambda cl, job_id: cl.ChangeJobPriority(job_id, opts.priority))


# --- info ---------------------------------------------------------------------------

def _Delta(from_ts: Any, to_ts: Any) -> float:
    return (to_ts[0] - from_ts[0]) + (to_ts[1] - from_ts[1]) / 1e6


def _JobTimestamp(name: str, ts: Any, prior: Any = None) -> tuple[str, str]:
    if ts is None:
        return (name, f"unknown ({ts})")
    text = cli.FormatTimestamp(ts)
    if prior is not None:
        text += f" (delta {_Delta(prior, ts):.6f}s)"
    return (name, text)


def _OpTimestamp(name: str, ts: Any) -> tuple[str, str]:
    return (name, cli.FormatTimestamp(ts) if isinstance(ts, (list, tuple)) else "N/A")


def _JobInfo(entry: Sequence[Any]) -> list[tuple[str, Any]]:
    """The "info" items of one job (a row of _INFO_FIELDS values)."""
    (job_id, status, ops, opresult, opstatus, oplog, opstart, opexec, opend,
     recv_ts, start_ts, end_ts) = entry
    info: list[tuple[str, Any]] = [("Job ID", job_id), ("Status", status)]
    info.append(_JobTimestamp("Received", recv_ts))
    info.append(_JobTimestamp("Processing start", start_ts, recv_ts))
    info.append(_JobTimestamp("Processing end", end_ts, start_ts))
    if end_ts is not None and recv_ts is not None:
        info.append(("Total processing time", f"{_Delta(recv_ts, end_ts):.6f} seconds"))
    else:
        info.append(("Total processing time", "N/A"))
    opcodes = []
    for opcode, result, ostatus, log, s_ts, x_ts, e_ts in \
            zip(ops, opresult, opstatus, oplog, opstart, opexec, opend):
        op_info: list[tuple[str, Any]] = [
            ("Opcode", opcode.get("OP_ID", "?") if isinstance(opcode, dict) else opcode),
            ("Status", ostatus),
            _OpTimestamp("Processing start", s_ts),
            _OpTimestamp("Execution start", x_ts),
            _OpTimestamp("Processing end", e_ts),
            ("Input fields", {key: value for key, value in opcode.items()}
             if isinstance(opcode, dict) else opcode),
            ("Result", result),
        ]
        log_items = []
        for serial, log_ts, log_type, log_msg in log:
            log_items.append([
                ("Time", cli.FormatTimestamp(log_ts)),
                ("Content", [serial, log_type, cli.FormatLogMessage(log_type, log_msg)]),
            ])
        op_info.append(("Execution log", log_items))
        opcodes.append(op_info)
    info.append(("Opcodes", opcodes))
    return info


def ShowJobs(opts: Any, args: list[str]) -> int:
    """Show everything about jobs (all jobs without arguments)."""
    job_ids = _ParseJobIds(args)
    result = cli.GetClient().QueryJobs(job_ids or None, _INFO_FIELDS)
    rcode = constants.EXIT_SUCCESS
    items: list[Any] = []
    for idx, entry in enumerate(result):
        if entry is None:
            ToStderr("Job ID %s not found", job_ids[idx] if idx < len(job_ids) else "?")
            rcode = constants.EXIT_FAILURE
            continue
        items.append(_JobInfo(entry))
    cli.PrintGenericInfo(items)
    return rcode


# --- watch, wait --------------------------------------------------------------------

def _FollowJob(job_id: int, feedback_fn: Callable[[Any], None] | None) -> int:
    try:
        cli.PollJob(job_id, feedback_fn=feedback_fn)
    except (errors.GenericError, cli.JobSubmittedException) as err:
        retcode, text = cli.FormatError(err)
        ToStderr("Job %s failed: %s", job_id, text)
        return retcode
    return constants.EXIT_SUCCESS


def WatchJob(opts: Any, args: list[str]) -> int:
    """Print a job's log as it arrives; exit with the job's outcome."""
    (job_id,) = _ParseJobIds(args)
    msg = f"Output from job {job_id} follows"
    ToStdout(msg)
    ToStdout("-" * len(msg))
    return _FollowJob(job_id, None)


def WaitJob(opts: Any, args: list[str]) -> int:
    """Wait for a job to finish without printing its log."""
    (job_id,) = _ParseJobIds(args)
    return _FollowJob(job_id, lambda _: None)


# --- The command table -------------------------------------------------------------------

_KILL_OPT = cli_option("--kill", default=False, action="store_true", dest="kill",
                       help="Kill running jobs (needs --yes-do-it)")


def _StatusOpt(flag: str, statuses: frozenset[str], text: str) -> cli.CliOption:
    return cli_option(flag, default=None, action="store_const", dest="status_filter",
                      const=statuses, help=text)


_PENDING_OPT = _StatusOpt("--pending", constants.JOBS_PENDING,
                          "Select jobs pending execution or being cancelled")
_RUNNING_OPT = _StatusOpt("--running", frozenset([constants.JOB_STATUS_RUNNING]),
                          "Select running jobs only")
_ERROR_OPT = _StatusOpt("--error", frozenset([constants.JOB_STATUS_ERROR]),
                        "Select failed jobs only")
_FINISHED_OPT = _StatusOpt("--finished", constants.JOBS_FINALIZED,
                           "Select finished jobs only")
_QUEUED_OPT = _StatusOpt("--queued", frozenset([constants.JOB_STATUS_QUEUED]),
                         "Select queued jobs only")
_WAITING_OPT = _StatusOpt("--waiting", frozenset([constants.JOB_STATUS_WAITING]),
                          "Select jobs waiting for locks only")
_ARCHIVED_OPT = cli_option("--archived", default=False, action="store_true",
                           dest="archived",
                           help="Include archived jobs in the list (slow)")

commands: dict[str, cli.CommandDef] = {
    "list": (
        ListJobs, [ArgJobId()],
        [NOHDR_OPT, SEP_OPT, FIELDS_OPT, VERBOSE_OPT, FORCE_FILTER_OPT,
         _PENDING_OPT, _RUNNING_OPT, _ERROR_OPT, _FINISHED_OPT, _ARCHIVED_OPT],
        "[job_id...]",
        "Lists the jobs and their status. The available fields can be shown"
        " using the \"list-fields\" command (see the man page for details)."
        f" The default field list is (in order): {utils.CommaJoin(_LIST_DEF_FIELDS)}."),
    "list-fields": (
        ListJobFields, [cli.ArgUnknown()], [NOHDR_OPT, SEP_OPT],
        "[fields...]", "Lists all available fields for jobs"),
    "archive": (
        ArchiveJobs, [ArgJobId(min=1)], [],
        "<job-id> [<job-id> ...]", "Archive specified jobs"),
    "autoarchive": (
        AutoArchiveJobs, [ArgSuggest(min=1, max=1, choices=("1d", "1w", "4w", "all"))],
        [], "<age>", "Auto archive jobs older than the given age"),
    "cancel": (
        CancelJobs, [ArgJobId()],
        [FORCE_OPT, _KILL_OPT, _PENDING_OPT, _QUEUED_OPT, _WAITING_OPT, YES_DOIT_OPT],
        "{[--force] [--kill --yes-do-it] {--pending | --queued | --waiting} |"
        " <job-id> [<job-id> ...]}",
        "Cancel jobs"),
    "info": (
        ShowJobs, [ArgJobId()], [],
        "[<job-id> ...]", "Show detailed information about the specified jobs"),
    "wait": (
        WaitJob, [ArgJobId(min=1, max=1)], [],
        "<job-id>", "Wait for a job to finish"),
    "watch": (
        WatchJob, [ArgJobId(min=1, max=1)], [],
        "<job-id>", "Follows a job and prints its output as it arrives"),
    "change-priority": (
        ChangePriority, [ArgJobId()],
        [PRIORITY_OPT, FORCE_OPT, _PENDING_OPT, _QUEUED_OPT, _WAITING_OPT],
        "--priority <priority> {[--force] {--pending | --queued | --waiting} |"
        " <job-id> [<job-id> ...]}",
        "Change the priority of jobs"),
}

#: Other names of commands
aliases = {
    "show": "info",
}


def Main(argv: Sequence[str] | None = None) -> int:
    """Run gnt-job."""
    return cli.GenericMain(commands, aliases=aliases, argv=argv)
