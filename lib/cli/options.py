"""Command line options shared by the gnt-* tools.

Each option is declared once, under Ganeti's name (``SUBMIT_OPT``,
``NOHDR_OPT``, ...), as a :class:`CliOption`: the flags and the keyword
arguments of :meth:`argparse.ArgumentParser.add_argument`. A command lists
the options it takes in its ``commands`` table entry (see
:mod:`ganeti.cli.command`); :data:`COMMON_OPTS` are added to every command.

Values that need converting (priorities, units, time specifications) are
converted while parsing, and a bad value is refused with a message naming
it, so command functions only ever see valid values.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from typing import Any

from ganeti import constants, errors

#: User-visible priority names and the opcode priorities they stand for
PRIORITY_NAMES: tuple[tuple[str, int], ...] = (
    ("low", constants.OP_PRIO_LOW),
    ("normal", constants.OP_PRIO_NORMAL),
    ("high", constants.OP_PRIO_HIGH),
)
PRIONAME_TO_VALUE: dict[str, int] = dict(PRIORITY_NAMES)

#: Units accepted by ``--units``
UNITS = ("h", "m", "g", "t")

#: Suffixes of time specifications (see :func:`ParseTimespec`)
_TIMESPEC_SUFFIXES = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


@dataclass(frozen=True)
class CliOption:
    """One command line option: argparse flags plus add_argument keywords."""

    flags: tuple[str, ...]
    kwargs: dict[str, Any] = field(default_factory=dict)

    @property
    def dest(self) -> str:
        """The attribute of the parsed options that holds the value."""
        if "dest" in self.kwargs:
            return self.kwargs["dest"]
        longs = [f for f in self.flags if f.startswith("--")]
        name = (longs or list(self.flags))[0].lstrip("-")
        return name.replace("-", "_")

    def AddTo(self, parser: argparse.ArgumentParser) -> None:
        """Add this option to ``parser``."""
        kwargs = dict(self.kwargs)
        kwargs.setdefault("dest", self.dest)
        parser.add_argument(*self.flags, **kwargs)


def cli_option(*flags: str, **kwargs: Any) -> CliOption:
    """Declare an option (Ganeti's name for the constructor)."""
    if not flags or not all(f.startswith("-") for f in flags):
        raise errors.ProgrammerError(f"Option flags must start with '-': {flags!r}")
    return CliOption(tuple(flags), kwargs)


# --- Value parsers (argparse "type" functions) --------------------------------

def ParsePriority(value: str) -> int:
    """Turn "low", "normal" or "high" into the opcode priority."""
    try:
        return PRIONAME_TO_VALUE[value.lower()]
    except KeyError:
        raise argparse.ArgumentTypeError(
            f"invalid priority '{value}' (choose from "
            f"{', '.join(name for name, _ in PRIORITY_NAMES)})") from None


def PriorityName(value: int) -> str:
    """The user-visible name of an opcode priority ("normal"), or the number."""
    for name, prio in PRIORITY_NAMES:
        if prio == value:
            return name
    return str(value)


def ParseUnits(value: str) -> str:
    """Check a ``--units`` value: one of h, m, g, t."""
    if value.lower() not in UNITS:
        raise argparse.ArgumentTypeError(
            f"invalid unit '{value}' (choose from {', '.join(UNITS)})")
    return value.lower()


def ParseTimespec(value: str | int) -> int:
    """Parse a duration like "30", "30s", "5m", "2h", "1d" or "1w" into seconds.

    @raise errors.OpPrereqError: for an empty, malformed or negative value
    """
    text = str(value).strip()
    if not text:
        raise errors.OpPrereqError("Empty time specification passed",
                                   errors.ECODE_INVAL)
    factor = 1
    number = text
    if text[-1].lower() in _TIMESPEC_SUFFIXES:
        factor = _TIMESPEC_SUFFIXES[text[-1].lower()]
        number = text[:-1]
    try:
        result = int(number)
    except ValueError:
        raise errors.OpPrereqError(
            f"Invalid time specification '{text}': expected a whole number"
            " optionally followed by s, m, h, d or w",
            errors.ECODE_INVAL) from None
    if result < 0:
        raise errors.OpPrereqError(
            f"Invalid time specification '{text}': must not be negative",
            errors.ECODE_INVAL)
    return result * factor


def PositiveInt(value: str) -> int:
    """An integer greater than zero (for ``--interval`` and such)."""
    try:
        result = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid value '{value}': expected a whole number") from None
    if result <= 0:
        raise argparse.ArgumentTypeError(
            f"invalid value '{value}': must be greater than zero")
    return result


def NonNegativeInt(value: str) -> int:
    """An integer of zero or more (for ``--repeat`` and such)."""
    try:
        result = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid value '{value}': expected a whole number") from None
    if result < 0:
        raise argparse.ArgumentTypeError(
            f"invalid value '{value}': must not be negative")
    return result


# --- The options, under Ganeti's names ---------------------------------------

DEBUG_OPT = cli_option("-d", "--debug", default=0, action="count",
                       help="Turn debugging on (repeat for more)")

REASON_OPT = cli_option("--reason", default=None,
                        help="The reason for executing the command")

NOHDR_OPT = cli_option("--no-headers", default=False, action="store_true",
                       dest="no_headers",
                       help="Don't display column headers")

SEP_OPT = cli_option("--separator", default=None, dest="separator",
                     help="Separator between output fields (defaults to one"
                     " space, with columns aligned)")

USEUNITS_OPT = cli_option("--units", default=None, dest="units",
                          type=ParseUnits, metavar="h|m|g|t",
                          help="Unit for sizes: h (human readable, the"
                          " default without --separator), m, g or t")
UNITS_OPT = USEUNITS_OPT
#: Shorthand of "--units=h" (gnt-node volumes and list-storage name it)
HUMAN_READABLE_OPT = cli_option("--human-readable", dest="units", action="store_const",
                                const="h", help="Show sizes in human-readable units"
                                " (same as --units=h)")

FIELDS_OPT = cli_option("-o", "--output", dest="output", default=None,
                        metavar="[+]FIELD,...",
                        help="Comma-separated list of output fields; with a"
                        " leading '+' they are added to the default list")

VERBOSE_OPT = cli_option("-v", "--verbose", default=False,
                         action="store_true", dest="verbose",
                         help="Increase the verbosity of the output")

FORCE_OPT = cli_option("-f", "--force", dest="force", action="store_true",
                       default=False, help="Force the operation")

YES_DOIT_OPT = cli_option("--yes-do-it", "--ya-rly", dest="yes_do_it",
                          action="store_true", default=False,
                          help="Really do it (for dangerous operations)")

SUBMIT_OPT = cli_option("--submit", dest="submit_only", default=False,
                        action="store_true",
                        help="Submit the job and return its ID without"
                        " waiting for it to finish")

PRINT_JOBID_OPT = cli_option("--print-jobid", dest="print_jobid",
                             default=False, action="store_true",
                             help="Print the ID of the submitted job")

SUBMIT_OPTS = [SUBMIT_OPT, PRINT_JOBID_OPT]

DRY_RUN_OPT = cli_option("--dry-run", default=False, action="store_true",
                         dest="dry_run",
                         help="Only check the parameters and the"
                         " prerequisites; change nothing")

PRIORITY_OPT = cli_option("--priority", default=None, dest="priority",
                          type=ParsePriority,
                          metavar="|".join(name for name, _ in PRIORITY_NAMES),
                          help="Priority for the job's opcodes")

FORCE_FILTER_OPT = cli_option("-F", "--filter", dest="force_filter",
                              default=False, action="store_true",
                              help="Treat the arguments as a query filter"
                              " (a JSON list such as '[\"=\", \"status\","
                              " \"error\"]' or 'FIELD == VALUE')")
FILTER_OPT = FORCE_FILTER_OPT

INTERVAL_OPT = cli_option("--interval", dest="interval", type=PositiveInt,
                          default=None, metavar="SECONDS",
                          help="Repeat the listing every SECONDS seconds")

NODEGROUP_OPT = cli_option("-g", "--node-group", dest="nodegroup", default=None,
                           metavar="GROUP", help="Node group (name or uuid)")

SHOW_MACHINE_OPT = cli_option("-M", "--show-machine-names", dest="show_machine_names",
                              default=False, action="store_true",
                              help="Show the node name on every line of output")

#: Options every command accepts
COMMON_OPTS = [DEBUG_OPT, REASON_OPT]

#: Options implied by SUBMIT_OPT: every command submitting a job takes them
JOB_OPTS = [PRINT_JOBID_OPT, PRIORITY_OPT]

# --- Instance placement and migration (gnt-instance, gnt-node) -----------------------

IALLOCATOR_OPT = cli_option("-I", "--iallocator", dest="iallocator", default=None,
                            metavar="<NAME>", help="Select nodes with this allocator")
IGNORE_IPOLICY_OPT = cli_option("--ignore-ipolicy", dest="ignore_ipolicy",
                                default=False, action="store_true",
                                help="Ignore instance policy violations")
DST_NODE_OPT = cli_option("-n", "--target-node", dest="dst_node", default=None,
                          metavar="NODE", help="Target node (shared storage only)")
COMPRESS_OPT = cli_option("--compress", dest="compress", default=constants.IEC_NONE,
                          metavar="<TOOL>", help="Compression tool for the data transfer:"
                          " 'none' (the default) or one of the cluster's compression"
                          " tools")
NONLIVE_OPT = cli_option("--non-live", dest="live", default=True, action="store_false",
                         help="Migrate non-live: the instance is paused while its state"
                         " moves to the target node")
MIGRATION_MODE_OPT = cli_option("--migration-mode", dest="migration_mode", default=None,
                                choices=sorted(constants.HT_MIGRATION_MODES),
                                help="Migration mode (default: the hypervisor's"
                                " migration_mode parameter)")
NORUNTIME_CHGS_OPT = cli_option("--no-runtime-changes", dest="allow_runtime_chgs",
                                default=True, action="store_false",
                                help="Don't change the instance's runtime memory to fit"
                                " the target node")

# --- Disk replacement and node evacuation (gnt-instance replace-disks, gnt-node evacuate) ---

ON_PRIMARY_OPT = cli_option("-p", "--on-primary", dest="on_primary", default=False,
                            action="store_true",
                            help="Replace the disks on the primary node (drbd only)")
ON_SECONDARY_OPT = cli_option("-s", "--on-secondary", dest="on_secondary", default=False,
                              action="store_true",
                              help="Replace the disks on the secondary node (drbd only)")
AUTO_REPLACE_OPT = cli_option("-a", "--auto", dest="auto", default=False,
                              action="store_true",
                              help="Replace the faulty disks on whichever node has them"
                              " (drbd only)")
NEW_SECONDARY_OPT = cli_option("-n", "--new-secondary", dest="dst_node", default=None,
                               metavar="NODE", help="Move the secondary to this node"
                               " (drbd only)")
DISKIDX_OPT = cli_option("--disks", dest="disks", default=None, metavar="IDX[,IDX...]",
                         help="Comma-separated disk indices to act on (e.g. 0,2;"
                         " default: all disks)")
TO_GROUP_OPT = cli_option("--to", dest="to", default=None, action="append",
                          metavar="<group>", help="Group to move to (may be given"
                          " several times; default: every other group)")
EARLY_RELEASE_OPT = cli_option("--early-release", dest="early_release", default=False,
                               action="store_true",
                               help="Remove the old storage before the resync ends and"
                               " release the node locks early (more parallelism, but"
                               " no fallback copy while the resync runs)")
PRIMARY_ONLY_OPT = cli_option("-p", "--primary-only", dest="primary_only", default=False,
                              action="store_true",
                              help="Evacuate the primary instances only")
SECONDARY_ONLY_OPT = cli_option("-s", "--secondary-only", dest="secondary_only",
                                default=False, action="store_true",
                                help="Evacuate the secondary instances only")
IGNORE_SOFT_ERRORS_OPT = cli_option("--ignore-soft-errors", dest="ignore_soft_errors",
                                    default=False, action="store_true",
                                    help="Tell the instance allocator to ignore soft"
                                    " errors")
