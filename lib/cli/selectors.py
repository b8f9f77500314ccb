"""Commands acting on many instances at once (gnt-instance startup,
shutdown, reboot, reinstall).

The instances are chosen by one of the selection options
(:data:`MULTI_SELECT_OPTS`): by name (the default), every instance
(``--all``), those on given nodes (``--node``, ``--primary``,
``--secondary``), those with given tags (``--tags``) or on nodes with
given tags (``--node-tags``, ``--pri-node-tags``, ``--sec-node-tags``).
The last selection option given wins, as in Ganeti.

:func:`ExpandMultiNames` turns the selection into instance names with luxi
queries (the master refuses unknown names); :func:`ConfirmOperation` asks
before acting on more than one instance (``--force-multiple`` skips the
question); :func:`RunManyOps` submits one job per instance at once and
then waits for all of them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from ganeti import constants, errors
from ganeti.cli import base
from ganeti.cli.base import AskUser, ToStderr, ToStdout
from ganeti.cli.jobs import JobExecutor
from ganeti.cli.options import cli_option
from ganeti.cli.output import MakeSimpleFilter, ResponseData

#: Selection modes (the values of ``opts.multi_mode``)
EXPAND_CLUSTER = "cluster"
EXPAND_NODES_BOTH = "nodes"
EXPAND_NODES_PRI = "nodes-pri"
EXPAND_NODES_SEC = "nodes-sec"
EXPAND_NODES_BOTH_BY_TAGS = "nodes-by-tags"
EXPAND_NODES_PRI_BY_TAGS = "nodes-pri-by-tags"
EXPAND_NODES_SEC_BY_TAGS = "nodes-sec-by-tags"
EXPAND_INSTANCES = "instances"
EXPAND_INSTANCES_BY_TAGS = "instances-by-tags"

#: Modes whose arguments are node names, and which instances of each node
#: they take: (primary ones, secondary ones)
_NODE_MODES = {
    EXPAND_NODES_BOTH: (True, True),
    EXPAND_NODES_PRI: (True, False),
    EXPAND_NODES_SEC: (False, True),
}
#: The same for the modes whose arguments are node tags
_NODE_TAG_MODES = {
    EXPAND_NODES_BOTH_BY_TAGS: (True, True),
    EXPAND_NODES_PRI_BY_TAGS: (True, False),
    EXPAND_NODES_SEC_BY_TAGS: (False, True),
}

#: Above this many names the confirmation lists them only on request
_CONFIRM_LIST_LIMIT = 20


def _ModeOption(flags: Sequence[str], mode: str, text: str) -> Any:
    return cli_option(*flags, dest="multi_mode", action="store_const", const=mode,
                      default=None, help=text)


FORCE_MULTIPLE_OPT = cli_option("--force-multiple", dest="force_multi", default=False,
                                action="store_true",
                                help="Do not ask for confirmation when more than one"
                                " instance is affected")
M_INST_OPT = _ModeOption(["--instance"], EXPAND_INSTANCES,
                         "Select the instances named as arguments (the default)")
M_NODE_OPT = _ModeOption(["--node"], EXPAND_NODES_BOTH,
                         "Select the instances having the given nodes as primary or"
                         " secondary")
M_PRI_OPT = _ModeOption(["--primary"], EXPAND_NODES_PRI,
                        "Select the instances having the given nodes as primary")
M_SEC_OPT = _ModeOption(["--secondary"], EXPAND_NODES_SEC,
                        "Select the instances having the given nodes as secondary")
M_CLUSTER_OPT = _ModeOption(["--all"], EXPAND_CLUSTER,
                            "Select all the instances of the cluster (no arguments)")
# "--instance-tags" is our spelling beside Ganeti's "--tags"
M_INST_TAGS_OPT = _ModeOption(["--tags", "--instance-tags"], EXPAND_INSTANCES_BY_TAGS,
                              "Select the instances having any of the given tags")
M_NODE_TAGS_OPT = _ModeOption(["--node-tags"], EXPAND_NODES_BOTH_BY_TAGS,
                              "Select the instances on nodes (primary or secondary)"
                              " having any of the given tags")
M_PRI_NODE_TAGS_OPT = _ModeOption(["--pri-node-tags"], EXPAND_NODES_PRI_BY_TAGS,
                                  "Select the instances whose primary node has any of"
                                  " the given tags")
M_SEC_NODE_TAGS_OPT = _ModeOption(["--sec-node-tags"], EXPAND_NODES_SEC_BY_TAGS,
                                  "Select the instances whose secondary node has any"
                                  " of the given tags")

#: Selection by name, node or cluster (what reinstall takes)
MULTI_NODE_OPTS = [M_INST_OPT, M_NODE_OPT, M_PRI_OPT, M_SEC_OPT, M_CLUSTER_OPT]
#: Every selection option plus --force-multiple (startup, shutdown, reboot)
MULTI_SELECT_OPTS = [FORCE_MULTIPLE_OPT] + MULTI_NODE_OPTS + [
    M_INST_TAGS_OPT, M_NODE_TAGS_OPT, M_PRI_NODE_TAGS_OPT, M_SEC_NODE_TAGS_OPT]


def _Inval(msg: str) -> errors.OpPrereqError:
    return errors.OpPrereqError(msg, errors.ECODE_INVAL)


def _Values(cl: Any, resource: str, fields: list[str], qfilter: Any) -> list[list[Any]]:
    """The rows of a luxi Query, values only (a missing value is None)."""
    response = cl.Query(resource, fields, qfilter)
    return [[cell[1] if cell[0] == constants.RS_NORMAL else None for cell in row]
            for row in ResponseData(response)]


def _Unique(names: Iterable[str]) -> list[str]:
    """``names`` without repetitions, in their first order."""
    return list(dict.fromkeys(names))


def _InstancesOfNodes(rows: Iterable[Sequence[Any]], primary: bool,
                      secondary: bool) -> list[str]:
    """Instances of node rows ``[name, pinst_list, sinst_list, ...]``."""
    result: list[str] = []
    for row in rows:
        if primary:
            result.extend(row[1] or [])
        if secondary:
            result.extend(row[2] or [])
    return _Unique(result)


def ExpandMultiNames(mode: str | None, names: Sequence[str], cl: Any = None) -> list[str]:
    """The instance names a selection stands for.

    ``mode`` is one of the ``EXPAND_*`` values (None: by instance name);
    ``names`` are the command's arguments (instances, nodes or tags).

    @raise errors.OpPrereqError: for arguments the mode does not take, or
        missing ones; the master refuses unknown instance and node names
    """
    if mode is None:
        mode = EXPAND_INSTANCES
    if cl is None:
        cl = base.GetClient()
    names = list(names)
    if mode == EXPAND_CLUSTER:
        if names:
            raise _Inval("Cluster filter mode takes no arguments")
        rows = _Values(cl, constants.QR_INSTANCE, ["name"], None)
        return [row[0] for row in rows]
    if mode in _NODE_MODES:
        if not names:
            raise _Inval("No node names passed")
        rows = _Values(cl, constants.QR_NODE, ["name", "pinst_list", "sinst_list"],
                       MakeSimpleFilter("name", names))
        return _InstancesOfNodes(rows, *_NODE_MODES[mode])
    if mode in _NODE_TAG_MODES:
        if not names:
            raise _Inval("No node tags passed")
        wanted = set(names)
        rows = _Values(cl, constants.QR_NODE,
                       ["name", "pinst_list", "sinst_list", "tags"], None)
        rows = [row for row in rows if wanted.intersection(row[3] or [])]
        return _InstancesOfNodes(rows, *_NODE_TAG_MODES[mode])
    if mode == EXPAND_INSTANCES:
        if not names:
            raise _Inval("No instance names passed")
        rows = _Values(cl, constants.QR_INSTANCE, ["name"],
                       MakeSimpleFilter("name", names))
        return _Unique(row[0] for row in rows)
    if mode == EXPAND_INSTANCES_BY_TAGS:
        if not names:
            raise _Inval("No instance tags passed")
        wanted = set(names)
        rows = _Values(cl, constants.QR_INSTANCE, ["name", "tags"], None)
        return [row[0] for row in rows if wanted.intersection(row[1] or [])]
    raise _Inval(f"Unknown selection mode '{mode}'")


def ConfirmOperation(names: Sequence[str], list_type: str, text: str,
                     extra: str = "") -> bool:
    """Ask whether to run ``text`` (e.g. "shutdown") on ``names``.

    The question lists the names; with more than
    :data:`_CONFIRM_LIST_LIMIT` of them the user may ask to view the list
    ("v") before answering.
    """
    msg = (f"The {text} will operate on {len(names)} {list_type}.\n{extra}"
           "Do you want to continue?")
    affected = f"\nAffected {list_type}:\n" + "\n".join(f"  {name}" for name in names)
    choices: list[tuple[str, Any, str]] = [
        ("y", True, f"Yes, execute the {text}"),
        ("n", False, f"No, abort the {text}"),
    ]
    if len(names) > _CONFIRM_LIST_LIMIT:
        choices.insert(1, ("v", "v", f"View the list of affected {list_type}"))
        answer = AskUser(msg, choices)
        if answer == "v":
            del choices[1]
            answer = AskUser(msg + affected, choices)
    else:
        answer = AskUser(msg + affected, choices)
    return answer is True


def IsMulti(opts: Any, names: Sequence[str]) -> bool:
    """Whether the command acts as a multi-instance one: a selection other
    than by name, or several names (then it asks unless --force-multiple)."""
    mode = getattr(opts, "multi_mode", None) or EXPAND_INSTANCES
    return mode != EXPAND_INSTANCES or len(names) > 1


def RunManyOps(names: Sequence[str], build_op: Callable[[str, Any], Any], opts: Any,
               cl: Any = None, verbose: bool = True) -> int:
    """Submit one job per instance (all at once), then wait for them all.

    With ``--submit`` the job IDs are printed as "ID: instance" and nothing
    is waited for. Returns EXIT_SUCCESS when every job was submitted (and,
    when waited for, succeeded), EXIT_FAILURE otherwise.
    """
    jex = JobExecutor(cl=cl, verbose=verbose, opts=opts)
    for name in names:
        jex.QueueJob(name, build_op(name, opts))
    if getattr(opts, "submit_only", False):
        submitted = jex.SubmitPending()
        jex.jobs = []
        if getattr(opts, "print_jobid", False):
            for ok, job_id in submitted:
                if ok:
                    ToStdout("%s", job_id)
        for name, (ok, value) in zip(names, submitted):
            if ok:
                ToStdout("%s: %s", value, name)
            else:
                ToStderr("Failure for %s: %s", name, value)
        return constants.EXIT_SUCCESS if all(ok for ok, _ in submitted) \
            else constants.EXIT_FAILURE
    results = jex.GetResults()
    return constants.EXIT_SUCCESS if all(ok for ok, _ in results) \
        else constants.EXIT_FAILURE


def GenericManyOps(operation: str, build_op: Callable[[str, Any], Any]
                   ) -> Callable[[Any, list[str]], int]:
    """A command running ``build_op(instance, opts)`` for each selected
    instance; ``operation`` names it in the confirmation ("startup")."""
    def _Run(opts: Any, args: list[str]) -> int:
        cl = base.GetClient()
        mode = getattr(opts, "multi_mode", None) or EXPAND_INSTANCES
        names = ExpandMultiNames(mode, args, cl=cl)
        if not names:
            if mode == EXPAND_CLUSTER:
                ToStdout("Cluster is empty, no instances to %s", operation)
                return constants.EXIT_SUCCESS
            raise _Inval("Selection filter does not match any instances")
        multi = IsMulti(opts, names)
        if multi and not getattr(opts, "force_multi", False) and \
                not ConfirmOperation(names, "instances", operation):
            return constants.EXIT_FAILURE
        return RunManyOps(names, build_op, opts, cl=cl, verbose=multi)
    _Run.__doc__ = f"Run the {operation} on the selected instances."
    return _Run
