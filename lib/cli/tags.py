"""The tag commands shared by gnt-cluster, gnt-node, gnt-group,
gnt-instance and gnt-network.

``list-tags``, ``add-tags`` and ``remove-tags`` take the object's name
first (none for the cluster), then the tags; ``--from FILE`` adds the tags
listed in FILE, one per line ("-" reads standard input). A tool adds them
to its ``commands`` table with::

    commands.update(tags.TagCommands(constants.TAG_NODE))

``gnt-cluster search-tags PATTERN`` is :func:`SearchTags`.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any

from ganeti import constants, errors, opcodes
from ganeti.cli import command, jobs, options
from ganeti.cli.base import ToStdout

TAG_SRC_OPT = options.cli_option(
    "--from", dest="tags_source", default=None, metavar="FILE",
    help="File with tag names, one per line (\"-\" for standard input)")

#: What users call each kind in usage strings
_KIND_NAMES = {
    constants.TAG_CLUSTER: "cluster",
    constants.TAG_NODE: "node",
    constants.TAG_NODEGROUP: "group",
    constants.TAG_INSTANCE: "instance",
    constants.TAG_NETWORK: "network",
}
_KIND_ARGS: dict[str, type[command.Argument]] = {
    constants.TAG_NODE: command.ArgNode,
    constants.TAG_NODEGROUP: command.ArgGroup,
    constants.TAG_INSTANCE: command.ArgInstance,
    constants.TAG_NETWORK: command.ArgUnknown,
}


def _ExtractObject(kind: str, args: list[str]) -> tuple[str, str | None]:
    """(kind, name) of the tagged object; the name is taken off ``args``."""
    if kind not in constants.VALID_TAG_TYPES:
        raise errors.ProgrammerError(f"Unhandled tag kind {kind!r}")
    if kind == constants.TAG_CLUSTER:
        return kind, None
    if not args:
        raise errors.OpPrereqError("no arguments passed to the command",
                                   errors.ECODE_INVAL)
    return kind, args.pop(0)


def ReadTagsFile(source: str) -> list[str]:
    """The tags of a file (one per line, blank lines ignored); "-" is stdin."""
    try:
        if source == "-":
            lines = sys.stdin.read().splitlines()
        else:
            with open(source, encoding="utf-8") as fd:
                lines = fd.read().splitlines()
    except OSError as err:
        raise errors.OpPrereqError(f"Cannot read tags from '{source}': {err}",
                                   errors.ECODE_INVAL) from err
    return [line.strip() for line in lines if line.strip()]


def _ExtendTags(opts: Any, args: list[str]) -> None:
    source = getattr(opts, "tags_source", None)
    if source is not None:
        args.extend(ReadTagsFile(source))


def ListTags(kind: str, opts: Any, args: list[str]) -> int:
    """Print the object's tags, one per line, sorted."""
    args = list(args)
    kind, name = _ExtractObject(kind, args)
    op = opcodes.OpTagsGet(kind=kind, name=name)
    result = jobs.SubmitOpCode(op, opts=opts)
    for tag in sorted(result or []):
        ToStdout("%s", tag)
    return constants.EXIT_SUCCESS


def AddTags(kind: str, opts: Any, args: list[str]) -> int:
    """Add the tags given (and those of ``--from``) to the object."""
    args = list(args)
    kind, name = _ExtractObject(kind, args)
    _ExtendTags(opts, args)
    if not args:
        raise errors.OpPrereqError("No tags to be added", errors.ECODE_INVAL)
    jobs.SubmitOrSend(opcodes.OpTagsSet(kind=kind, name=name, tags=args), opts)
    return constants.EXIT_SUCCESS


def RemoveTags(kind: str, opts: Any, args: list[str]) -> int:
    """Remove the tags given (and those of ``--from``) from the object."""
    args = list(args)
    kind, name = _ExtractObject(kind, args)
    _ExtendTags(opts, args)
    if not args:
        raise errors.OpPrereqError("No tags to be removed", errors.ECODE_INVAL)
    jobs.SubmitOrSend(opcodes.OpTagsDel(kind=kind, name=name, tags=args), opts)
    return constants.EXIT_SUCCESS


def SearchTags(opts: Any, args: list[str]) -> int:
    """Print "path tag" for every tag matching the pattern; 1 if none."""
    result = jobs.SubmitOpCode(opcodes.OpTagsSearch(pattern=args[0]), opts=opts)
    if not result:
        return 1
    for path, tag in sorted(result):
        ToStdout("%s %s", path, tag)
    return constants.EXIT_SUCCESS


def TagCommands(kind: str) -> dict[str, Any]:
    """The list-tags, add-tags and remove-tags entries for ``kind``."""
    what = _KIND_NAMES[kind]
    fns: dict[str, Callable[..., int]] = {
        name: functools.partial(fn, kind)
        for name, fn in (("list", ListTags), ("add", AddTags), ("remove", RemoveTags))}
    modify_opts = [TAG_SRC_OPT, options.PRIORITY_OPT] + options.SUBMIT_OPTS
    if kind == constants.TAG_CLUSTER:
        return {
            "list-tags": (fns["list"], command.ARGS_NONE, [], "",
                          "List the tags of the cluster"),
            "add-tags": (fns["add"], [command.ArgUnknown()], modify_opts, "tag...",
                         "Add tags to the cluster"),
            "remove-tags": (fns["remove"], [command.ArgUnknown()], modify_opts,
                            "tag...", "Remove tags from the cluster"),
        }
    arg = _KIND_ARGS[kind]
    return {
        "list-tags": (fns["list"], [arg(min=1, max=1)], [], f"<{what}_name>",
                      f"List the tags of the given {what}"),
        "add-tags": (fns["add"], [arg(min=1, max=1), command.ArgUnknown()],
                     modify_opts, f"<{what}_name> tag...",
                     f"Add tags to the given {what}"),
        "remove-tags": (fns["remove"], [arg(min=1, max=1), command.ArgUnknown()],
                        modify_opts, f"<{what}_name> tag...",
                        f"Remove tags from the given {what}"),
    }


#: gnt-cluster's search-tags entry
SEARCH_TAGS_COMMAND = (SearchTags, [command.ArgUnknown(min=1, max=1)],
                       [options.PRIORITY_OPT], "<pattern>",
                       "Searches the tags on all objects on the cluster for a"
                       " given pattern (regex)")
