"""Build the manual pages: doc/man/*.rst, completed from the code, to groff.

The prose of each page is written by hand in ``doc/man/<name>.rst``; what
the code already declares is filled in when the pages are built, so that a
page and the program's ``--help`` cannot disagree:

``.. ganeti-synopsis::``
    For a gnt-* tool the general form of its command line; for any other
    program the usage line of its argparse parser.
``.. ganeti-options::``
    The options (and positional arguments) of an argparse program, with
    their help texts; sub-commands get one block each.
Sections under ``COMMANDS`` of a gnt-* page
    A section titled with a command of the tool's ``commands`` table
    (:mod:`ganeti.cli.command`) gets the command's usage string, aliases
    and options inserted under its title. Commands of the table without a
    section are appended with their one-line description, a section naming
    no command is an error, and a ``COMMON OPTIONS`` section follows.

The ``:Manual section:`` field must match :data:`PAGES`; a ``:Version:``
field is added. The expanded text goes to ``<outdir>/rst/<name>.rst`` and
docutils' manpage writer turns it into ``<outdir>/man<section>/<name>.<section>``.

Run ``python -m ganeti.tools.manpages [--outdir build/man] [--srcdir doc/man]
[NAME...]`` (``make man``); it needs docutils and an importable ``ganeti``
with its dependencies (the command tables are imported).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.machinery
import importlib.util
import os
import re
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

#: The source tree (lib/tools/ -> the top directory); the tools outside the
#: package (tools/confd-client, tools/vcluster-setup) are loaded from it
TOPDIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(__file__))))

_SYNOPSIS = ".. ganeti-synopsis::"
_OPTIONS = ".. ganeti-options::"
_SECTION_FIELD = ":Manual section:"


@dataclass(frozen=True)
class Page:
    """One manual page.

    ``kind`` is "gnt" (``source`` names the module holding the ``commands``
    table), "argparse" (``source`` is "module:function" returning the
    parser, or "path/in/tree:function" for a script outside the package) or
    "prose" (nothing generated).
    """

    name: str
    section: int
    kind: str
    source: str = ""


GNT_TOOLS = ("gnt-backup", "gnt-cluster", "gnt-debug", "gnt-group", "gnt-instance",
             "gnt-job", "gnt-network", "gnt-node", "gnt-os", "gnt-storage")

PAGES: tuple[Page, ...] = (
    Page("ganeti", 7, "prose"),
    *(Page(tool, 8, "gnt", "ganeti.client." + tool.replace("-", "_"))
      for tool in GNT_TOOLS),
    Page("ganeti-masterd", 8, "argparse", "ganeti.server.masterd:BuildParser"),
    Page("ganeti-noded", 8, "argparse", "ganeti.server.noded:BuildParser"),
    Page("ganeti-rapi", 8, "argparse", "ganeti.server.rapi:BuildParser"),
    Page("ganeti-confd", 8, "argparse", "ganeti.server.confd:BuildParser"),
    Page("ganeti-impexpd", 8, "argparse", "ganeti.impexpd.options:_Parser"),
    Page("ganeti-watcher", 8, "argparse", "ganeti.watcher:BuildParser"),
    Page("daemon-util", 8, "argparse", "ganeti.daemon_util:BuildParser"),
    Page("hail", 1, "argparse", "ganeti.htools.hail:build_parser"),
    Page("hbal", 1, "argparse", "ganeti.htools.hbal:build_parser"),
    Page("hspace", 1, "argparse", "ganeti.htools.hspace:build_parser"),
    Page("hscan", 1, "argparse", "ganeti.htools.hscan:build_parser"),
    Page("hinfo", 1, "argparse", "ganeti.htools.hinfo:build_parser"),
    Page("vcluster-setup", 8, "argparse", "tools/vcluster-setup:_ParseArgs"),
    Page("move-instance", 8, "argparse", "ganeti.tools.move_instance:BuildParser"),
    Page("cluster-merge", 8, "argparse", "ganeti.tools.cluster_merge:BuildParser"),
    Page("confd-client", 8, "argparse", "tools/confd-client:BuildParser"),
    Page("ensure-dirs", 8, "argparse", "ganeti.tools.ensure_dirs:BuildParser"),
    Page("ensure-users", 8, "argparse", "ganeti.tools.ensure_users:BuildParser"),
    Page("make-test-guest", 8, "argparse", "ganeti.tools.test_guest:BuildParser"),
    Page("drbd-standin", 8, "prose"),
    Page("master-ip-setup", 8, "prose"),
    Page("kvm-nic-setup", 8, "prose"),
    Page("oob-test-helper", 8, "prose"),
    Page("install-debian-deps", 8, "prose"),
    Page("man-cli-synopsis", 8, "prose"),
)

PAGES_BY_NAME = {page.name: page for page in PAGES}


class ManPageError(Exception):
    """A page cannot be built (bad placeholder, unknown command section...)."""


# --- Getting at the code's declarations --------------------------------------------------

class _Captured(Exception):
    def __init__(self, parser: argparse.ArgumentParser) -> None:
        super().__init__()
        self.parser = parser


def _LoadScript(relpath: str) -> Any:
    """Import a program of the source tree that is not a module (tools/...)."""
    path = os.path.join(TOPDIR, relpath)
    name = "_manpage_" + re.sub(r"\W", "_", relpath)
    loader = importlib.machinery.SourceFileLoader(name, path)
    spec = importlib.util.spec_from_loader(name, loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def GetParser(page: Page) -> argparse.ArgumentParser:
    """The argparse parser of an "argparse" page's program."""
    where, func_name = page.source.rsplit(":", 1)
    if "/" in where:
        module = _LoadScript(where)
    else:
        module = importlib.import_module(where)
    func = getattr(module, func_name)
    if func_name != "_ParseArgs":
        parser = func()
    else:
        # vcluster-setup builds and runs its parser in one function: stop it
        # at parse_args and keep the parser
        from ganeti import constants, vcluster
        original = argparse.ArgumentParser.parse_args

        def _Capture(self: argparse.ArgumentParser, *_args: Any, **_kw: Any) -> Any:
            raise _Captured(self)
        argparse.ArgumentParser.parse_args = _Capture  # type: ignore[method-assign]
        try:
            func([], vcluster, constants)
        except _Captured as captured:
            parser = captured.parser
        else:
            raise ManPageError(f"{page.source} did not build a parser")
        finally:
            argparse.ArgumentParser.parse_args = original  # type: ignore[method-assign]
    parser.prog = page.name
    return parser


def GetCommands(page: Page) -> tuple[dict[str, Any], dict[str, str]]:
    """The ``commands`` table and the aliases of a gnt-* tool."""
    module = importlib.import_module(page.source)
    return dict(module.commands), dict(getattr(module, "aliases", {}) or {})


def CommandParser(tool: str, cmd: str, opts: Iterable[Any]) -> argparse.ArgumentParser:
    """A parser holding ``opts`` (:class:`ganeti.cli.options.CliOption`) only."""
    parser = argparse.ArgumentParser(prog=f"{tool} {cmd}", add_help=False)
    for opt in opts:
        opt.AddTo(parser)
    return parser


def CommandOptionGroups(cmd_def: Any) -> tuple[list[Any], list[Any]]:
    """(the command's own and implied options, the common ones) of a table entry."""
    from ganeti.cli import command, options
    every = command.CommandOptions(cmd_def)
    common = [opt for opt in every if opt in options.COMMON_OPTS]
    return [opt for opt in every if opt not in common], common


# --- Writing reStructuredText ------------------------------------------------------------

_INLINE = re.compile(r"([\\*`|_])")


def Escape(text: str) -> str:
    """``text`` as reStructuredText showing it verbatim (no markup)."""
    text = _INLINE.sub(r"\\\1", " ".join(text.split()))
    if text[:1] in "-+#.:>" and text:
        text = "\\" + text
    return text


def _Literal(text: str) -> str:
    return "``" + text.replace("``", "` `") + "``"


def _LiteralBlock(lines: Sequence[str], indent: str = "") -> list[str]:
    return ["::", ""] + [indent + "    " + line if line else "" for line in lines] + [""]


def _ActionTerm(formatter: argparse.HelpFormatter, action: argparse.Action) -> str:
    if not action.option_strings:
        return _Literal(formatter._format_args(action, action.dest))  # noqa: SLF001
    if action.nargs == 0:
        return ", ".join(_Literal(flag) for flag in action.option_strings)
    args = formatter._format_args(action, action.dest.upper())  # noqa: SLF001
    return ", ".join(_Literal(f"{flag} {args}") for flag in action.option_strings)


def _ActionHelp(formatter: argparse.HelpFormatter, action: argparse.Action) -> str:
    text = formatter._expand_help(action) if action.help else ""  # noqa: SLF001
    choices = getattr(action, "choices", None)
    if choices and action.metavar is not None:
        # The metavar hides them in --help; the page lists them
        text = (text.rstrip(".") + "; one of: " if text else "One of: ") + \
            ", ".join(str(c) for c in choices)
    return text


def ActionItems(parser: argparse.ArgumentParser) -> list[tuple[str, str]]:
    """(term, help) of each shown option and positional argument of ``parser``."""
    formatter = parser._get_formatter()  # noqa: SLF001
    items = []
    for action in parser._actions:  # noqa: SLF001
        if action.help == argparse.SUPPRESS:
            continue
        if isinstance(action, argparse._SubParsersAction):  # noqa: SLF001
            continue
        items.append((_ActionTerm(formatter, action), _ActionHelp(formatter, action)))
    return items


def _DefinitionList(items: Iterable[tuple[str, str]], indent: str = "") -> list[str]:
    lines: list[str] = []
    for term, text in items:
        lines.append(indent + term)
        lines.append(indent + "    " + (Escape(text) or "(no description)"))
        lines.append("")
    return lines


def _Usage(parser: argparse.ArgumentParser) -> list[str]:
    usage = parser.format_usage().strip()
    if usage.startswith("usage: "):
        usage = usage[len("usage: "):]
    return usage.splitlines()


def _ParserOptions(parser: argparse.ArgumentParser) -> list[str]:
    lines = _DefinitionList(ActionItems(parser))
    for action in parser._actions:  # noqa: SLF001
        if not isinstance(action, argparse._SubParsersAction):  # noqa: SLF001
            continue
        helps = {choice.dest: choice.help for choice in action._choices_actions}  # noqa: SLF001
        for name, sub in action.choices.items():
            lines.append(_Literal(name))
            body = ["    " + Escape(helps.get(name) or sub.description or "") or "    \\ ",
                    ""]
            body += [("    " + line if line else line)
                     for line in _LiteralBlock(_Usage(sub))]
            body += _DefinitionList([item for item in ActionItems(sub)
                                     if item[0] not in ("``-h``, ``--help``",)], "    ")
            lines += body
    return lines


# --- Expanding a page --------------------------------------------------------------------

def _IsAdornment(line: str) -> bool:
    return len(line) >= 2 and line[0] in "=-~^\"'`#*+" and line == line[0] * len(line)


def _Headings(lines: list[str]) -> list[tuple[int, str, str]]:
    """(line index, title, adornment char) of every underline-only heading."""
    found = []
    for idx in range(len(lines) - 1):
        title, under = lines[idx], lines[idx + 1]
        if (title.strip() and not _IsAdornment(title) and _IsAdornment(under)
                and len(under) >= len(title.rstrip())
                and not (idx > 0 and lines[idx - 1] == under)):
            found.append((idx, title.strip(), under[0]))
    return found


def _CommandBlock(tool: str, name: str, cmd_def: Any, aliases: dict[str, str],
                  prose: list[str]) -> list[str]:
    """Usage, aliases, the hand-written ``prose`` and the options of a command."""
    own, _ = CommandOptionGroups(cmd_def)
    lines = _LiteralBlock([f"{tool} {name} {cmd_def[3]}".rstrip()])
    names = sorted(alias for alias, target in aliases.items() if target == name)
    if names:
        lines += ["Also available as " + ", ".join(_Literal(n) for n in names) + ".", ""]
    lines += prose + [""]
    items = ActionItems(CommandParser(tool, name, own))
    if items:
        lines += ["Options:", ""] + _DefinitionList(items)
    return lines


def _GntCommands(page: Page, lines: list[str]) -> list[str]:
    commands, aliases = GetCommands(page)
    headings = _Headings(lines)
    top = [h for h in headings if h[2] == "-"]
    start = next((h for h in top if h[1] == "COMMANDS"), None)
    if start is None:
        raise ManPageError(f"{page.name}: no COMMANDS section")
    end_idx = next((h[0] for h in top if h[0] > start[0]), len(lines))
    sub_char = "~"
    inner = [h for h in headings if start[0] < h[0] < end_idx]
    written: set[str] = set()
    # Text between COMMANDS and its first command stays where it is
    out = list(lines[:inner[0][0] if inner else end_idx])
    for pos, (h_idx, title, char) in enumerate(inner):
        if char != sub_char:
            raise ManPageError(f"{page.name}: command sections use '{sub_char}',"
                               f" not '{char}' ({title!r})")
        if title not in commands:
            raise ManPageError(f"{page.name}: section {title!r} names no command of"
                               f" {page.source}.commands")
        body_end = inner[pos + 1][0] if pos + 1 < len(inner) else end_idx
        out += lines[h_idx:h_idx + 2] + [""]
        out += _CommandBlock(page.name, title, commands[title], aliases,
                             lines[h_idx + 2:body_end])
        written.add(title)
    for name in sorted(set(commands) - written):
        out += ["", name, sub_char * len(name), ""]
        out += _CommandBlock(page.name, name, commands[name], aliases,
                             [Escape(commands[name][4]).rstrip(".") + "."])
    common: dict[str, Any] = {}
    for cmd_def in commands.values():
        for opt in CommandOptionGroups(cmd_def)[1]:
            common.setdefault(opt.flags[-1], opt)
    out += ["", "COMMON OPTIONS", "-" * len("COMMON OPTIONS"), "",
            "Every command accepts these options:", ""]
    items = ActionItems(CommandParser(page.name, "", common.values()))
    out += _DefinitionList([("``-h``, ``--help``", "Show the command's usage and exit")]
                           + items)
    out += lines[end_idx:]
    return out


def ExpandPage(page: Page, text: str, version: str | None = None) -> str:
    """The reStructuredText of ``page`` with everything generated filled in."""
    # argparse wraps usage lines to the terminal's width: make pages the same
    # wherever they are built
    saved = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "80"
    try:
        return _ExpandPage(page, text, version)
    finally:
        if saved is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = saved


def _ExpandPage(page: Page, text: str, version: str | None) -> str:
    lines = text.splitlines()
    if page.kind == "gnt":
        lines = _GntCommands(page, lines)
    parser = GetParser(page) if page.kind == "argparse" else None
    out: list[str] = []
    seen_section = False
    for line in lines:
        stripped = line.strip()
        if stripped.startswith(_SECTION_FIELD):
            seen_section = True
            value = stripped[len(_SECTION_FIELD):].strip()
            if value != str(page.section):
                raise ManPageError(f"{page.name}: {_SECTION_FIELD} {value}, expected"
                                   f" {page.section}")
            out.append(line)
            if version:
                out.append(f":Version: {version}")
        elif stripped == _SYNOPSIS:
            if page.kind == "gnt":
                out += _LiteralBlock([f"{page.name} {{command}} [options...] [arguments...]"])
            elif parser is not None:
                out += _LiteralBlock(_Usage(parser))
            else:
                raise ManPageError(f"{page.name}: {_SYNOPSIS} on a page of prose only")
        elif stripped == _OPTIONS:
            if parser is None:
                raise ManPageError(f"{page.name}: {_OPTIONS} needs an argparse program")
            out += _ParserOptions(parser)
        else:
            out.append(line)
    if not seen_section:
        raise ManPageError(f"{page.name}: no {_SECTION_FIELD} field")
    return "\n".join(out) + "\n"


def ToGroff(rst: str, source_path: str = "<page>") -> str:
    """Render expanded reStructuredText with docutils' manpage writer.

    Any docutils warning is an error, so that a page that would render
    wrongly fails the build.
    """
    from docutils.core import publish_string
    from docutils.writers import manpage
    result = publish_string(
        rst, source_path=source_path, writer=manpage.Writer(),
        settings_overrides={"halt_level": 2, "report_level": 2,
                            "input_encoding": "utf-8", "output_encoding": "utf-8",
                            "exit_status_level": 2, "traceback": True,
                            "warning_stream": False})
    return result.decode("utf-8") if isinstance(result, bytes) else result


def _Version() -> str:
    import ganeti
    return getattr(ganeti, "__version__", "")


def Build(outdir: str, srcdir: str, names: Sequence[str] = (),
          log: Callable[[str], None] = lambda _msg: None) -> list[str]:
    """Build the pages (all, or ``names``); return the groff files written."""
    version = _Version()
    written = []
    os.makedirs(os.path.join(outdir, "rst"), exist_ok=True)
    for name in names or [page.name for page in PAGES]:
        page = PAGES_BY_NAME.get(name)
        if page is None:
            raise ManPageError(f"unknown page {name!r}")
        src = os.path.join(srcdir, f"{name}.rst")
        with open(src, encoding="utf-8") as fd:
            rst = ExpandPage(page, fd.read(), version)
        with open(os.path.join(outdir, "rst", f"{name}.rst"), "w", encoding="utf-8") as fd:
            fd.write(rst)
        groff = ToGroff(rst, src)
        mandir = os.path.join(outdir, f"man{page.section}")
        os.makedirs(mandir, exist_ok=True)
        target = os.path.join(mandir, f"{name}.{page.section}")
        with open(target, "w", encoding="utf-8") as fd:
            fd.write(groff)
        log(target)
        written.append(target)
    return written


def Main(argv: Sequence[str] | None = None) -> int:
    """Build the manual pages; return the exit code."""
    parser = argparse.ArgumentParser(
        prog="python -m ganeti.tools.manpages",
        description="Build the manual pages from doc/man/*.rst and the command tables")
    parser.add_argument("--outdir", default=os.path.join("build", "man"),
                        help="where to write man<N>/ and rst/ (default %(default)s)")
    parser.add_argument("--srcdir", default=os.path.join(TOPDIR, "doc", "man"),
                        help="the directory of the .rst pages (default %(default)s)")
    parser.add_argument("-q", "--quiet", action="store_true", help="print nothing")
    parser.add_argument("names", nargs="*", help="pages to build (default: all)")
    opts = parser.parse_args(argv)
    log = (lambda _msg: None) if opts.quiet else print
    from docutils.utils import SystemMessage
    try:
        Build(opts.outdir, opts.srcdir, opts.names, log)
    except (ManPageError, OSError, SystemMessage) as err:
        sys.stderr.write(f"manpages: {err}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(Main())
