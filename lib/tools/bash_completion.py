"""Generate bash completion scripts from the gnt-* command tables and parsers.

One script per program, named after it, for bash-completion's
``completions/`` directory. For a gnt-* tool the script completes

- the command (first word), aliases included;
- the options of that command (every spelling, the common ones included);
- option values: the option's choices, or file names when its metavar or
  destination says it is a file or directory;
- positional arguments by their type in the table
  (:mod:`ganeti.cli.command`): instance, node, node group and network
  names from the ssconf files of this node (``ssconf_instance_list``,
  ``ssconf_node_list``, ``ssconf_nodegroups``, ``ssconf_networks`` in the
  data directory, below ``$GANETI_ROOTDIR`` when set), job IDs from the
  job queue directory, OS names from the OS search path, file names,
  host names, commands, and the values of choice arguments. Off a
  cluster the name lists are simply empty.

The other programs of :data:`ganeti.tools.manpages.PAGES` that have an
argparse parser (htools, daemons, tools) get their options and
sub-commands completed.

Run ``python -m ganeti.tools.bash_completion [--outdir build/bash_completion]``
(``make completion``).
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import sys
from collections.abc import Iterable, Sequence
from typing import Any

from ganeti import constants
from ganeti.tools import manpages

#: Argument spec classes of the tables -> completion kinds; a class not
#: listed is matched by its name (ArgInstanceSelector -> instance...)
_KIND_WORDS = (("instance", "instance"), ("node", "node"), ("group", "group"),
               ("network", "network"), ("jobid", "job"), ("job", "job"),
               ("os", "os"), ("file", "file"), ("host", "host"),
               ("command", "command"))

_FILE_HINT = re.compile(r"file|path|dir|cert|key|script", re.I)

_SAFE_WORD = re.compile(r"^[\w.:+@%/=,-]+$")

_HELPERS = r'''
# Names known to this node, one per line; nothing off a cluster
_ganeti_names()
{
    local root="${GANETI_ROOTDIR:-}" data
    [[ $root == / ]] && root=
    data="${root%/}@DATA_DIR@"
    case $1 in
        instance) cat "$data/ssconf_instance_list" 2>/dev/null ;;
        node) cat "$data/ssconf_node_list" 2>/dev/null ;;
        group) awk '{print $2}' "$data/ssconf_nodegroups" 2>/dev/null ;;
        network) awk '{print $2}' "$data/ssconf_networks" 2>/dev/null ;;
        job) ls "$data/queue" 2>/dev/null | sed -n 's/^job-\([0-9][0-9]*\)$/\1/p' ;;
        os)
            local dir
            for dir in @OS_PATH@; do
                ls "${root%/}$dir" 2>/dev/null
            done ;;
    esac
}

# Complete "$cur" as a value of kind $1 (choices: words:a,b,c)
_ganeti_complete_kind()
{
    local cur=$2 IFS=$'\n'
    case $1 in
        file) COMPREPLY=( $(compgen -f -- "$cur") ) ;;
        host) COMPREPLY=( $(compgen -A hostname -- "$cur") ) ;;
        command) COMPREPLY=( $(compgen -c -- "$cur") ) ;;
        words:*)
            local words=${1#words:}
            COMPREPLY=( $(compgen -W "${words//,/$'\n'}" -- "$cur") ) ;;
        instance|node|group|network|job|os)
            COMPREPLY=( $(compgen -W "$(_ganeti_names "$1")" -- "$cur") ) ;;
        *) COMPREPLY=() ;;
    esac
}

# _ganeti_complete CUR PREV FIRST OPTS VALOPTS ARGSPEC VALUEFUNC
# Completes the words from COMP_WORDS[FIRST] on: options, option values
# (VALUEFUNC OPTION prints the kind) and positional arguments, ARGSPEC being
# "kind:max kind:max ..." (max empty: any number)
_ganeti_complete()
{
    local cur=$1 prev=$2 first=$3 opts=$4 valopts=$5 argspec=$6 valuefunc=$7
    if [[ $prev == = ]] && (( COMP_CWORD >= 2 )); then
        prev=${COMP_WORDS[COMP_CWORD-2]}
    fi
    if [[ $cur == --*=* && " $valopts " == *" ${cur%%=*} "* ]]; then
        prev=${cur%%=*}
        cur=${cur#*=}
    elif [[ $cur == -* ]]; then
        COMPREPLY=( $(compgen -W "$opts" -- "$cur") )
        return 0
    fi
    if [[ $prev == -* && " $valopts " == *" $prev "* ]]; then
        _ganeti_complete_kind "$($valuefunc "$prev")" "$cur"
        return 0
    fi
    # Which positional argument is this?
    local idx=0 i word skip=0
    for (( i = first; i < COMP_CWORD; i++ )); do
        word=${COMP_WORDS[i]}
        if (( skip )); then skip=0; continue; fi
        [[ $word == = ]] && { skip=1; continue; }
        if [[ $word == -* ]]; then
            [[ $word != *=* && " $valopts " == *" $word "* ]] && skip=1
            continue
        fi
        (( idx++ ))
    done
    local spec kind max
    for spec in $argspec; do
        kind=${spec%:*}
        max=${spec##*:}
        if [[ -z $max ]] || (( idx < max )); then
            _ganeti_complete_kind "$kind" "$cur"
            return 0
        fi
        (( idx -= max ))
    done
    COMPREPLY=()
}
'''


def _FuncName(program: str) -> str:
    return "_" + re.sub(r"\W", "_", program)


def _Words(words: Iterable[str]) -> str:
    return " ".join(sorted(set(words)))


def _ArgKind(arg: Any) -> str:
    """The completion kind of a table's argument spec."""
    choices = getattr(arg, "choices", ())
    if choices:
        safe = [str(c) for c in choices if _SAFE_WORD.match(str(c)) and "," not in str(c)]
        return "words:" + ",".join(safe)
    name = type(arg).__name__.lower()
    name = name[3:] if name.startswith("arg") else name
    for word, kind in _KIND_WORDS:
        if name.startswith(word):
            return kind
    return "none"


def _ArgSpec(args_def: Sequence[Any]) -> str:
    specs = []
    for arg in args_def:
        limit = "" if arg.max is None else str(arg.max)
        specs.append(f"{_ArgKind(arg)}:{limit}")
    return " ".join(specs)


def _ActionValueKind(action: argparse.Action) -> str:
    if action.choices:
        words = [str(c) for c in action.choices if _SAFE_WORD.match(str(c))]
        return "words:" + ",".join(words)
    hint = f"{action.metavar or ''} {action.dest}"
    if _FILE_HINT.search(hint):
        return "file"
    return "none"


def _ParserFacts(parser: argparse.ArgumentParser) -> tuple[list[str], dict[str, str], str]:
    """(option spellings, value-taking option -> kind, positional spec)."""
    opts: list[str] = []
    valkinds: dict[str, str] = {}
    positional = []
    for action in parser._actions:  # noqa: SLF001
        if isinstance(action, argparse._SubParsersAction):  # noqa: SLF001
            continue
        if action.option_strings:
            if action.help == argparse.SUPPRESS:
                continue
            opts.extend(action.option_strings)
            if action.nargs != 0:
                for flag in action.option_strings:
                    valkinds[flag] = _ActionValueKind(action)
        else:
            if action.nargs in (None, 1):
                limit = "1"
            elif action.nargs == argparse.OPTIONAL:
                limit = "1"
            elif isinstance(action.nargs, int):
                limit = str(action.nargs)
            else:
                limit = ""
            kind = (_ActionValueKind(action) if action.choices
                    else "file" if _FILE_HINT.search(action.dest) else "none")
            positional.append(f"{kind}:{limit}")
    return opts, valkinds, " ".join(positional)


def _CaseBranch(pattern: str, body: Sequence[str]) -> list[str]:
    return [f"        {pattern})"] + [f"            {line}" for line in body] + ["            ;;"]


def _ValueFunction(name: str, valkinds: dict[tuple[str, str], str]) -> list[str]:
    """``name CMD OPTION`` prints the kind of the option's value."""
    lines = [f"{name}()", "{", '    case "$1 $2" in']
    by_kind: dict[str, list[str]] = {}
    for (cmd, flag), kind in sorted(valkinds.items()):
        if kind != "none":
            by_kind.setdefault(kind, []).append(shlex.quote(f"{cmd} {flag}"))
    for kind, keys in sorted(by_kind.items()):
        lines += _CaseBranch("|".join(keys), [f"echo {shlex.quote(kind)}"])
    lines += ["    esac", "}", ""]
    return lines


def _Header(program: str) -> list[str]:
    return [f"# bash completion for {program}",
            "# Generated by ganeti.tools.bash_completion from the program's command",
            "# table or parser; do not edit.",
            _HELPERS.replace("@DATA_DIR@", constants.DEFAULT_DATA_DIR)
            .replace("@OS_PATH@", " ".join(shlex.quote(p)
                                           for p in constants.DEFAULT_OS_SEARCH_PATH))]


def GntScript(program: str, commands: dict[str, Any], aliases: dict[str, str]) -> str:
    """The completion script of a gnt-* tool."""
    from ganeti.tools.manpages import CommandParser
    func = _FuncName(program)
    branches: list[str] = []
    valkinds: dict[tuple[str, str], str] = {}
    names = {name: name for name in commands}
    names.update((alias, target) for alias, target in aliases.items() if target in commands)
    for name in sorted(names):
        cmd_def = commands[names[name]]
        from ganeti.cli import command
        parser = CommandParser(program, name, command.CommandOptions(cmd_def))
        opts, kinds, _ = _ParserFacts(parser)
        opts += ["-h", "--help"]
        for flag, kind in kinds.items():
            valkinds[(name, flag)] = kind
        branches += _CaseBranch(shlex.quote(name), [
            f"opts={shlex.quote(_Words(opts))}",
            f"valopts={shlex.quote(_Words(kinds))}",
            f"argspec={shlex.quote(_ArgSpec(cmd_def[1]))}"])
    lines = _Header(program)
    lines += _ValueFunction(f"{func}_value_kind_of", valkinds)
    lines += [f"{func}_value_kind()", "{",
              f'    {func}_value_kind_of "${{COMP_WORDS[1]}}" "$1"', "}", "",
              f"{func}()", "{",
              '    local cur=${COMP_WORDS[COMP_CWORD]} prev=""',
              '    (( COMP_CWORD > 0 )) && prev=${COMP_WORDS[COMP_CWORD-1]}',
              "    COMPREPLY=()",
              "    if (( COMP_CWORD == 1 )); then",
              f"        COMPREPLY=( $(compgen -W {shlex.quote(_Words(names))} -- \"$cur\") )",
              "        return 0",
              "    fi",
              '    local opts="" valopts="" argspec=""',
              '    case "${COMP_WORDS[1]}" in']
    lines += branches
    lines += ["        *) return 0 ;;", "    esac",
              f'    _ganeti_complete "$cur" "$prev" 2 "$opts" "$valopts" "$argspec"'
              f" {func}_value_kind",
              "}", "",
              f"complete -F {func} {program}", ""]
    return "\n".join(lines)


def ParserScript(program: str, parser: argparse.ArgumentParser) -> str:
    """The completion script of an argparse program (sub-commands included)."""
    func = _FuncName(program)
    opts, kinds, argspec = _ParserFacts(parser)
    opts += ["-h", "--help"] if "-h" not in opts else []
    subs: dict[str, argparse.ArgumentParser] = {}
    for action in parser._actions:  # noqa: SLF001
        if isinstance(action, argparse._SubParsersAction):  # noqa: SLF001
            subs.update(action.choices)
    valkinds = {("", flag): kind for flag, kind in kinds.items()}
    lines = _Header(program)
    body = ['    local cur=${COMP_WORDS[COMP_CWORD]} prev=""',
            '    (( COMP_CWORD > 0 )) && prev=${COMP_WORDS[COMP_CWORD-1]}',
            "    COMPREPLY=()"]
    if subs:
        branches: list[str] = []
        for name, sub in sorted(subs.items()):
            sub_opts, sub_kinds, sub_spec = _ParserFacts(sub)
            for flag, kind in sub_kinds.items():
                valkinds[(name, flag)] = kind
            branches += _CaseBranch(shlex.quote(name), [
                f"opts={shlex.quote(_Words(sub_opts + ['-h', '--help']))}",
                f"valopts={shlex.quote(_Words(sub_kinds))}",
                f"argspec={shlex.quote(sub_spec)}"])
        body += ["    if (( COMP_CWORD == 1 )); then",
                 "        if [[ $cur == -* ]]; then",
                 f"            COMPREPLY=( $(compgen -W {shlex.quote(_Words(opts))}"
                 ' -- "$cur") )',
                 "        else",
                 f"            COMPREPLY=( $(compgen -W {shlex.quote(_Words(subs))}"
                 ' -- "$cur") )',
                 "        fi",
                 "        return 0",
                 "    fi",
                 '    local opts="" valopts="" argspec=""',
                 '    case "${COMP_WORDS[1]}" in'] + branches + [
                 "        *) return 0 ;;", "    esac",
                 f'    _ganeti_complete "$cur" "$prev" 2 "$opts" "$valopts" "$argspec"'
                 f" {func}_value_kind"]
        lines += _ValueFunction(f"{func}_value_kind_of", valkinds)
        lines += [f"{func}_value_kind()", "{",
                  f'    {func}_value_kind_of "${{COMP_WORDS[1]}}" "$1"', "}", ""]
    else:
        body += [f"    _ganeti_complete \"$cur\" \"$prev\" 1 {shlex.quote(_Words(opts))}"
                 f" {shlex.quote(_Words(kinds))} {shlex.quote(argspec)}"
                 f" {func}_value_kind"]
        lines += _ValueFunction(f"{func}_value_kind_of", valkinds)
        lines += [f"{func}_value_kind()", "{", f'    {func}_value_kind_of "" "$1"', "}", ""]
    lines += [f"{func}()", "{"] + body + ["}", "", f"complete -F {func} {program}", ""]
    return "\n".join(lines)


def Script(page: manpages.Page) -> str | None:
    """The completion script of a page's program (None: nothing to complete)."""
    if page.kind == "gnt":
        commands, aliases = manpages.GetCommands(page)
        return GntScript(page.name, commands, aliases)
    if page.kind == "argparse":
        return ParserScript(page.name, manpages.GetParser(page))
    return None


def Build(outdir: str, names: Sequence[str] = ()) -> list[str]:
    """Write the scripts (all, or those of ``names``); return their paths."""
    os.makedirs(outdir, exist_ok=True)
    written = []
    for page in manpages.PAGES:
        if names and page.name not in names:
            continue
        text = Script(page)
        if text is None:
            continue
        path = os.path.join(outdir, page.name)
        with open(path, "w", encoding="utf-8") as fd:
            fd.write(text)
        written.append(path)
    return written


def Main(argv: Sequence[str] | None = None) -> int:
    """Write the completion scripts; return the exit code."""
    parser = argparse.ArgumentParser(
        prog="python -m ganeti.tools.bash_completion",
        description="Generate bash completion scripts from the command tables")
    parser.add_argument("--outdir", default=os.path.join("build", "bash_completion"),
                        help="where to write one script per program (default %(default)s)")
    parser.add_argument("-q", "--quiet", action="store_true", help="print nothing")
    parser.add_argument("names", nargs="*", help="programs (default: all)")
    opts = parser.parse_args(argv)
    for path in Build(opts.outdir, opts.names):
        if not opts.quiet:
            print(path)
    return 0


if __name__ == "__main__":
    sys.exit(Main())
