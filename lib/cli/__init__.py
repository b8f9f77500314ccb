"""The library shared by the gnt-* command line tools.

Split by concern (Ganeti keeps all of this in one 3,000-line module):

- :mod:`.options`: the options, under Ganeti's names (``SUBMIT_OPT``, ...);
- :mod:`.command`: the ``commands`` table format, :func:`GenericMain`,
  :func:`FormatError` (messages and exit codes);
- :mod:`.jobs`: submitting jobs and following them (:func:`SubmitOrSend`,
  :func:`PollJob`, :class:`JobExecutor`);
- :mod:`.output`: tables, query results, "info" layouts;
- :mod:`.nodes`: the online nodes a command acts on (:func:`GetOnlineNodes`).

Everything public is re-exported here, so a tool writes ``cli.SUBMIT_OPT``
or ``from ganeti.cli import GenericMain``.
"""

from ganeti.cli.base import (
    AskUser,
    GetClient,
    JobSubmittedException,
    NoMasterError,
    ToStderr,
    ToStdout,
)
from ganeti.cli.command import (
    ARGS_MANY_JOBS,
    ARGS_NONE,
    ARGS_ONE_JOB,
    ArgChoice,
    ArgCommand,
    ArgFile,
    ArgGroup,
    ArgHost,
    ArgInstance,
    ArgJobId,
    ArgNode,
    ArgSuggest,
    Argument,
    ArgUnknown,
    CheckArguments,
    CommandDef,
    FormatError,
    FormatUsage,
    GenericMain,
)
from ganeti.cli.jobs import (
    JOB_NOTCHANGED,
    FeedbackFnJobPollReportCb,
    FormatLogMessage,
    GenericPollJob,
    JobExecutor,
    JobPollReportCbBase,
    PollJob,
    SendJob,
    SetGenericOpcodeOpts,
    StdioJobPollReportCb,
    SubmitOpCode,
    SubmitOrSend,
)
from ganeti.cli.options import (
    COMMON_OPTS,
    DEBUG_OPT,
    DRY_RUN_OPT,
    FIELDS_OPT,
    FILTER_OPT,
    FORCE_FILTER_OPT,
    FORCE_OPT,
    INTERVAL_OPT,
    NODEGROUP_OPT,
    NOHDR_OPT,
    PRINT_JOBID_OPT,
    PRIONAME_TO_VALUE,
    PRIORITY_OPT,
    REASON_OPT,
    SEP_OPT,
    SHOW_MACHINE_OPT,
    SUBMIT_OPT,
    SUBMIT_OPTS,
    UNITS_OPT,
    USEUNITS_OPT,
    VERBOSE_OPT,
    YES_DOIT_OPT,
    CliOption,
    ParseTimespec,
    cli_option,
)
from ganeti.cli.nodes import GetOnlineNodes, OnlineNode
from ganeti.cli.output import (
    QR_INCOMPLETE,
    QR_NORMAL,
    QR_UNKNOWN,
    FormatGenericInfo,
    FormatParamsDictInfo,
    FormatQueryResult,
    FormatResultError,
    FormatTable,
    FormatTimestamp,
    GenerateTable,
    GenericList,
    GenericListFields,
    ListCommand,
    ListFieldsCommand,
    MakeFilter,
    MakeSimpleFilter,
    ParseFields,
    ParseFilterText,
    PrintGenericInfo,
    TableColumn,
)

__all__ = [
    "ARGS_MANY_JOBS", "AskUser", "ARGS_NONE", "ARGS_ONE_JOB", "ArgChoice", "ArgCommand",
    "ArgFile", "ArgGroup", "ArgHost", "ArgInstance", "ArgJobId", "ArgNode",
    "ArgSuggest", "ArgUnknown", "Argument", "COMMON_OPTS", "CheckArguments",
    "CliOption", "CommandDef", "DEBUG_OPT", "DRY_RUN_OPT", "FIELDS_OPT",
    "FILTER_OPT", "FORCE_FILTER_OPT", "FORCE_OPT", "FeedbackFnJobPollReportCb",
    "FormatError", "FormatGenericInfo",
    "FormatParamsDictInfo", "FormatLogMessage", "FormatQueryResult",
    "FormatResultError", "FormatTable", "FormatTimestamp", "FormatUsage",
    "GenerateTable", "GenericList", "GenericListFields", "GenericMain",
    "GenericPollJob", "GetClient", "GetOnlineNodes", "INTERVAL_OPT", "JOB_NOTCHANGED",
    "JobExecutor", "JobPollReportCbBase", "JobSubmittedException", "ListCommand",
    "ListFieldsCommand",
    "MakeFilter", "MakeSimpleFilter", "NODEGROUP_OPT", "NOHDR_OPT", "NoMasterError",
    "OnlineNode",
    "PRINT_JOBID_OPT", "PRIONAME_TO_VALUE", "PRIORITY_OPT", "ParseFields",
    "ParseFilterText", "ParseTimespec", "PollJob", "PrintGenericInfo",
    "QR_INCOMPLETE", "QR_NORMAL", "QR_UNKNOWN", "REASON_OPT", "SEP_OPT",
    "SHOW_MACHINE_OPT",
    "SUBMIT_OPT", "SUBMIT_OPTS", "SendJob", "SetGenericOpcodeOpts",
    "StdioJobPollReportCb", "SubmitOpCode", "SubmitOrSend", "TableColumn",
    "ToStderr", "ToStdout", "UNITS_OPT", "USEUNITS_OPT", "VERBOSE_OPT",
    "YES_DOIT_OPT", "cli_option",
]
