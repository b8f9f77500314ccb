"""gnt-debug: commands for testing and debugging the master daemon."""

from __future__ import annotations

import argparse
import math
import socket
import time
from collections.abc import Callable, Sequence
from typing import Any

from ganeti import cli, constants, errors, opcodes, serializer, utils
from ganeti.cli import (
    ARGS_NONE,
    DRY_RUN_OPT,
    FIELDS_OPT,
    INTERVAL_OPT,
    NOHDR_OPT,
    PRIORITY_OPT,
    SEP_OPT,
    SUBMIT_OPTS,
    VERBOSE_OPT,
    ArgUnknown,
    ToStdout,
    cli_option,
)
from ganeti.cli.options import NonNegativeInt

#: Default fields of "gnt-debug locks"
_LIST_LOCKS_DEF_FIELDS = ["name", "mode", "owner", "pending"]


def _PositiveCount(text: str) -> int:
    """A repeat count: a whole number greater than zero."""
    value = NonNegativeInt(text)
    if value == 0:
        raise argparse.ArgumentTypeError(f"invalid value '{text}': must be at least 1")
    return value


def _ParseDuration(text: str) -> float:
    """The delay's duration in seconds: a number greater than zero."""
    try:
        duration = float(text)
    except ValueError:
        duration = math.nan
    if not math.isfinite(duration):
        raise errors.OpPrereqError(f"Invalid duration '{text}': expected a number"
                                   " of seconds", errors.ECODE_INVAL)
    if duration <= 0:
        raise errors.OpPrereqError(f"Invalid duration '{text}': must be greater"
                                   " than zero", errors.ECODE_INVAL)
    return duration


def Delay(opts: Any, args: list[str]) -> int:
    """Run an OpTestDelay (sleep on the master and/or nodes)."""
    op = opcodes.OpTestDelay(duration=_ParseDuration(args[0]),
                             on_master=opts.on_master,
                             on_nodes=list(opts.on_nodes),
                             repeat=opts.repeat,
                             interruptible=opts.interruptible,
                             no_locks=opts.no_locks)
    cli.SubmitOrSend(op, opts)
    return constants.EXIT_SUCCESS


# --- locks --------------------------------------------------------------------------

def _DashIfEmpty(fn: Callable[[Any], str]) -> Callable[[Any], str]:
    def _Fn(value: Any) -> str:
        return fn(value) if value else "-"
    return _Fn


def _FormatPending(value: Any) -> str:
    """Pending acquires as "mode:owner,owner" items."""
    return utils.CommaJoin(f"{mode}:{','.join(map(str, owners))}"
                           for mode, owners in value)


_LOCKS_FORMAT: dict[str, tuple[Callable[[Any], str], bool]] = {
    "mode": (_DashIfEmpty(str), False),
    "owner": (_DashIfEmpty(lambda owners: ",".join(map(str, owners))), False),
    "pending": (_DashIfEmpty(_FormatPending), False),
}


def ListLocks(opts: Any, args: list[str]) -> int:
    """List the locks of the master daemon (every --interval seconds)."""
    selected_fields = cli.ParseFields(opts.output, _LIST_LOCKS_DEF_FIELDS)
    cl = cli.GetClient()
    while True:
        ret = cli.GenericList(constants.QR_LOCK, selected_fields, None, None,
                              opts.separator, not opts.no_headers, cl=cl,
                              format_override=_LOCKS_FORMAT, verbose=opts.verbose)
        if ret != constants.EXIT_SUCCESS or not opts.interval:
            return ret
        ToStdout("")
        # A user-facing refresh period, not synchronisation
        time.sleep(opts.interval)


# --- test-jobqueue ------------------------------------------------------------------

class _JobQueueTestReporter(cli.JobPollReportCbBase):
    """Plays the client side of OpTestJqueue while its job is followed.

    At each step the LU logs an ELOG_JQUEUE_TEST entry ``(socket path, step,
    argument)`` and waits until the client connects to that socket and
    closes it. Before releasing the LU, the reporter checks what the queue
    shows: the job "waiting" while names are expanded, "running" in Exec,
    and every test message (logged with JQT_MSGPREFIX) so far received.
    """

    def __init__(self, cl: Any) -> None:
        self.cl = cl
        self.messages: list[str] = []
        self.expected_count: int | None = None
        self.steps: list[str] = []
        self._stdio = cli.StdioJobPollReportCb()

    def _JobStatus(self, job_id: int) -> str:
        (row,) = self.cl.QueryJobs([job_id], ["status"])
        if row is None:
            raise errors.OpExecError(f"Job {job_id} vanished during the test")
        return row[0]

    def _CheckStep(self, job_id: int, step: str, arg: Any) -> None:
        expected_status = {constants.JQT_EXPANDNAMES: constants.JOB_STATUS_WAITING,
                           constants.JQT_EXEC: constants.JOB_STATUS_RUNNING}.get(step)
        if expected_status is not None:
            status = self._JobStatus(job_id)
            if status != expected_status:
                raise errors.OpExecError(f"Job {job_id} is {status} at step {step},"
                                         f" expected {expected_status}")
        elif step == constants.JQT_STARTMSG:
            self.expected_count = int(arg)
        elif step == constants.JQT_LOGMSG and len(self.messages) != arg:
            raise errors.OpExecError(f"Job {job_id} sent message {arg} but"
                                     f" {len(self.messages)} arrived")

    def ReportLogMessage(self, job_id: int, serial: int, timestamp: Any,
                         log_type: str, log_msg: Any) -> None:
        if log_type == constants.ELOG_JQUEUE_TEST:
            try:
                sockname, step, arg = log_msg
            except (TypeError, ValueError):
                raise errors.OpExecError(f"Malformed job queue test entry {log_msg!r}") \
                    from None
            if step not in constants.JQT_ALL:
                raise errors.OpExecError(f"Unknown job queue test step {step!r}")
            self.steps.append(step)
            try:
                self._CheckStep(job_id, step, arg)
            finally:
                # Release the LU even when a check failed, so the job ends
                with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                    sock.settimeout(30)
                    sock.connect(sockname)
            return
        if isinstance(log_msg, str) and log_msg.startswith(constants.JQT_MSGPREFIX):
            self.messages.append(log_msg[len(constants.JQT_MSGPREFIX):])
            return
        self._stdio.ReportLogMessage(job_id, serial, timestamp, log_type, log_msg)

    def ReportNotChanged(self, job_id: int, status: str | None) -> None:
        pass


def _TestJob(cl: Any, opts: Any, fail: bool) -> None:
    """Run one OpTestJqueue job and check its steps, messages and outcome."""
    messages = [f"Hello World {'fail' if fail else 'success'}", "Second message",
                "Third: \u00e4\u00f6\u00fc"]
    op = opcodes.OpTestJqueue(notify_waitlock=True, notify_exec=True,
                              log_messages=messages, fail=fail)
    cli.SetGenericOpcodeOpts([op], opts)
    job_id = cli.SendJob([op], cl=cl)
    reporter = _JobQueueTestReporter(cl)
    results = None
    try:
        results = cli.PollJob(job_id, cl=cl, reporter=reporter)
    except errors.OpExecError as err:
        if not fail:
            raise
        ToStdout("Ignoring error for 'job fail' test: %s", err)
    else:
        if fail:
            raise errors.OpExecError(f"Job {job_id} didn't fail when it should")
    if not fail and results != [True]:
        raise errors.OpExecError(f"Job {job_id} returned {results!r}, expected [True]")
    if reporter.messages != messages or reporter.expected_count != len(messages):
        raise errors.OpExecError(f"Job {job_id} logged {reporter.messages!r},"
                                 f" expected {messages!r}")
    expected_steps = [constants.JQT_EXPANDNAMES, constants.JQT_EXEC, constants.JQT_STARTMSG] \
        + [constants.JQT_LOGMSG] * len(messages)
    if reporter.steps != expected_steps:
        raise errors.OpExecError(f"Job {job_id} went through {reporter.steps!r},"
                                 f" expected {expected_steps!r}")
    row = cl.QueryJobs([job_id], ["status", "opstatus"])[0]
    expected = constants.JOB_STATUS_ERROR if fail else constants.JOB_STATUS_SUCCESS
    if row is None or row[0] != expected:
        raise errors.OpExecError(f"Job {job_id} ended as {row and row[0]},"
                                 f" expected {expected}")


def TestJobqueue(opts: Any, args: list[str]) -> int:
    """Check that jobs report their messages and succeed or fail as asked."""
    cl = cli.GetClient()
    for fail in (False, True):
        ToStdout("Testing job %s", "failure" if fail else "success")
        _TestJob(cl, opts, fail)
    ToStdout("Job queue test successful")
    return constants.EXIT_SUCCESS


# --- The command table ---------------------------------------------------------------

# --- iallocator ---------------------------------------------------------------------

def _ParseIallocDisks(text: str | None) -> list[dict[str, Any]]:
    """``--disks``: comma-separated sizes (with units), each a writable disk."""
    if not text:
        return []
    disks = []
    for item in text.split(","):
        try:
            size = utils.ParseUnit(item)
        except errors.UnitParseError as err:
            raise errors.OpPrereqError(f"Invalid disk size '{item}': {err}",
                                       errors.ECODE_INVAL) from err
        disks.append({constants.IDISK_SIZE: size, constants.IDISK_MODE: constants.DISK_RDWR})
    return disks


def _ParseIallocNics(text: str | None) -> list[dict[str, Any]]:
    """``--nics``: comma-separated ``mac/ip/bridge`` entries (as Ganeti)."""
    if not text:
        return []
    nics = []
    for item in text.split(","):
        parts = item.split("/")
        parts += [""] * (3 - len(parts))
        if len(parts) > 3:
            raise errors.OpPrereqError(f"Invalid NIC '{item}': expected mac/ip/bridge",
                                       errors.ECODE_INVAL)
        mac, ip, bridge = (part or None for part in parts)
        nics.append({"mac": mac, "ip": ip, "bridge": bridge})
    return nics


def _MemoryOption(text: str) -> int:
    try:
        return utils.ParseUnit(text)
    except errors.UnitParseError as err:
        raise argparse.ArgumentTypeError(f"invalid memory size '{text}': {err}") from None


def TestAllocator(opts: Any, args: list[str]) -> int:
    """Build an allocator's input (--dir in) or run it (--dir out) and print
    the result."""
    op = opcodes.OpTestAllocator(
        mode=opts.mode, name=args[0], evac_mode=opts.evac_mode,
        instances=[name for name in (opts.instances or "").split(",") if name] or None,
        memory=opts.memory, disks=_ParseIallocDisks(opts.disks),
        disk_template=opts.disk_template, nics=_ParseIallocNics(opts.nics),
        os=opts.os, vcpus=opts.vcpus, tags=[t for t in (opts.tags or "").split(",") if t],
        direction=opts.direction, iallocator=opts.iallocator,
        hypervisor=opts.hypervisor, spindle_use=opts.spindle_use, count=opts.count,
        target_groups=[g for g in (opts.target_groups or "").split(",") if g] or None)
    result = cli.SubmitOpCode(op, opts=opts)
    ToStdout("%s", result)
    return constants.EXIT_SUCCESS


def _LoadJobFile(fname: str) -> list[list[opcodes.OpCode]]:
    """The jobs of a job file.

    A file holds one job, a JSON list of opcodes (dicts with ``OP_ID``, as
    Ganeti's), or several, a list of such lists.
    """
    try:
        data = serializer.LoadJson(utils.ReadFile(fname))
    except OSError as err:
        raise errors.OpPrereqError(f"Cannot read job file {fname}: {err.strerror}",
                                   errors.ECODE_INVAL) from None
    except (ValueError, errors.GenericError) as err:
        raise errors.OpPrereqError(f"Job file {fname} is not valid JSON: {err}",
                                   errors.ECODE_INVAL) from None
    if not isinstance(data, list) or not data:
        raise errors.OpPrereqError(
            f"Job file {fname} must hold a non-empty list of opcodes (or of lists"
            " of opcodes)", errors.ECODE_INVAL)
    jobs = data if all(isinstance(item, list) for item in data) else [data]
    result = []
    for job in jobs:
        if not job:
            raise errors.OpPrereqError(f"Job file {fname} holds an empty job",
                                       errors.ECODE_INVAL)
        ops = []
        for item in job:
            op = opcodes.OpCode.LoadOpCode(item)
            op.Validate(True)
            ops.append(op)
        result.append(ops)
    return result


def GenericOpCodes(opts: Any, args: list[str]) -> int:
    """Submit the jobs of JSON job files and wait for them (``submit-job``)."""
    files = [(fname, _LoadJobFile(fname)) for fname in args]
    executor = cli.JobExecutor(verbose=opts.verbose, opts=opts)
    total_ops = total_jobs = 0
    for job_idx in range(opts.rep_job):
        for fname, jobs in files:
            for idx, ops in enumerate(jobs):
                job_ops = [opcodes.OpCode.LoadOpCode(op.ToDict())
                           for op in ops for _ in range(opts.rep_op)]
                executor.QueueJob(f"{fname}:{idx}/{job_idx}", *job_ops)
                total_ops += len(job_ops)
                total_jobs += 1
    start = time.time()
    executor.SubmitPending(each=opts.each)
    submitted = time.time()
    results = executor.GetResults()
    done = time.time()
    if opts.timing_stats:
        ToStdout("Total opcodes:  %d", total_ops)
        ToStdout("Total jobs:     %d", total_jobs)
        ToStdout("Submit time:    %.3fs (%.1f jobs/s)", submitted - start,
                 total_jobs / max(submitted - start, 1e-6))
        ToStdout("Execution time: %.3fs", done - submitted)
        ToStdout("Total time:     %.3fs", done - start)
    failed = sum(1 for ok, _ in results if not ok)
    if failed:
        cli.ToStderr("%d of %d job(s) failed", failed, total_jobs)
        return constants.EXIT_FAILURE
    return constants.EXIT_SUCCESS


def _ParseSecretParams(text: str) -> dict[str, str]:
    result = {}
    for item in utils.UnescapeAndSplit(text, sep=","):
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise argparse.ArgumentTypeError(
                f"invalid parameter '{key or item}': expected NAME=VALUE")
        result[key] = value
    return result


def TestOsParams(opts: Any, args: list[str]) -> int:
    """Send secret OS parameters to the master in a test job."""
    params: dict[str, str] = {}
    for chunk in opts.osparams_secret or []:
        params.update(chunk)
    if not params:
        cli.ToStderr("Give the parameters with --os-parameters-secret NAME=VALUE,...")
        return constants.EXIT_FAILURE
    cli.SubmitOrSend(opcodes.OpTestOsParams(osparams_secret=params), opts)
    return constants.EXIT_SUCCESS


commands: dict[str, cli.CommandDef] = {
    "submit-job": (
        GenericOpCodes, [ArgUnknown(min=1)],
        [VERBOSE_OPT,
         cli_option("--op-repeat", type=_PositiveCount, default=1, dest="rep_op",
                    metavar="N", help="Repeat each opcode N times within its job"),
         cli_option("--job-repeat", type=_PositiveCount, default=1, dest="rep_job",
                    metavar="N", help="Submit each job N times"),
         cli_option("--timing-stats", default=False, action="store_true",
                    dest="timing_stats", help="Show timing statistics"),
         cli_option("--each", default=False, action="store_true", dest="each",
                    help="Submit each job separately (one SubmitJob call per job)"),
         DRY_RUN_OPT, PRIORITY_OPT],
        "<op_list_file...>", "Submits jobs built from JSON files containing"
        " a list of serialized opcodes"),
    "test-osparams": (
        TestOsParams, ARGS_NONE,
        [cli_option("--os-parameters-secret", dest="osparams_secret", default=[],
                    action="append", type=_ParseSecretParams, metavar="NAME=VALUE,...",
                    help="Secret OS parameters to send"),
         PRIORITY_OPT] + SUBMIT_OPTS,
        "--os-parameters-secret NAME=VALUE,...",
        "Tests the transmission of secret OS parameters"),
    "iallocator": (
        TestAllocator, [ArgUnknown(min=1, max=1)],
        [cli_option("--dir", dest="direction", default=constants.IALLOCATOR_DIR_IN,
                    choices=sorted(constants.IALLOCATOR_TEST_DIRS),
                    help="Show the input (in) or run the allocator (out)"),
         cli_option("-A", "--algorithm", "-I", "--iallocator", dest="iallocator",
                    default=None, metavar="NAME", help="The allocator to run"),
         cli_option("-m", "--mode", dest="mode", default=constants.IALLOCATOR_MODE_ALLOC,
                    choices=sorted(constants.VALID_IALLOCATOR_MODES),
                    help="Request type"),
         cli_option("--mem", dest="memory", default=128, type=_MemoryOption,
                    help="Memory of the instance"),
         cli_option("--disks", dest="disks", default="4096,4096",
                    help="Comma-separated disk sizes"),
         cli_option("-t", "--disk-template", dest="disk_template",
                    default=constants.DT_DRBD8, help="Disk template"),
         cli_option("--nics", dest="nics", default="00:11:22:33:44:55",
                    help="Comma-separated NICs, each mac/ip/bridge"),
         cli_option("-o", "--os-type", dest="os", default="debian-etch", help="OS"),
         cli_option("-p", "--vcpus", dest="vcpus", default=1, type=NonNegativeInt,
                    help="Virtual CPUs"),
         cli_option("--tags", dest="tags", default="", help="Comma-separated tags"),
         cli_option("-H", "--hypervisor", dest="hypervisor", default=None,
                    help="Hypervisor of the instance"),
         cli_option("--spindle-use", dest="spindle_use", default=1, type=NonNegativeInt,
                    help="Spindles the instance uses"),
         cli_option("--count", dest="count", default=1, type=NonNegativeInt,
                    help="Instances for multi-allocate (named NAME0, NAME1, ...)"),
         cli_option("--evac-mode", dest="evac_mode", default=constants.NODE_EVAC_ALL,
                    choices=sorted(constants.NODE_EVAC_MODES),
                    help="Evacuation mode (node-evacuate)"),
         cli_option("--instances", dest="instances", default=None,
                    help="Comma-separated instances (node-evacuate, change-group)"),
         cli_option("--target-groups", dest="target_groups", default=None,
                    help="Comma-separated target groups (change-group)"),
         ],
        "{--algorithm <alloc>} [opts...] <instance>",
        "Build an allocator's input for an instance (and run the allocator with"
        " --dir out)"),
    "delay": (
        Delay, [ArgUnknown(min=1, max=1)],
        [cli_option("--no-master", dest="on_master", default=True,
                    action="store_false", help="Do not sleep in the master code"),
         cli_option("-n", dest="on_nodes", default=[], action="append",
                    metavar="NODE", help="Select nodes to sleep on (repeatable)"),
         cli_option("-r", "--repeat", type=NonNegativeInt, default=0, dest="repeat",
                    help="Number of times to repeat the sleep"),
         cli_option("-i", "--interruptible", default=False, dest="interruptible",
                    action="store_true",
                    help="Allow interrupting the delay through a domain socket"),
         cli_option("-l", "--no-locks", default=False, dest="no_locks",
                    action="store_true",
                    help="Don't take locks while performing the delay"),
         DRY_RUN_OPT, PRIORITY_OPT] + SUBMIT_OPTS,
        "[opts...] <duration>", "Executes a TestDelay OpCode"),
    "test-jobqueue": (
        TestJobqueue, ARGS_NONE, [PRIORITY_OPT],
        "", "Test a few aspects of the job queue"),
    "locks": (
        ListLocks, ARGS_NONE,
        [NOHDR_OPT, SEP_OPT, FIELDS_OPT, INTERVAL_OPT, VERBOSE_OPT],
        "[--interval N]", "Show a list of locks in the master daemon"),
}

#: Other names of commands
aliases: dict[str, str] = {}


def Main(argv: Sequence[str] | None = None) -> int:
    """Run gnt-debug."""
    return cli.GenericMain(commands, aliases=aliases, argv=argv)
