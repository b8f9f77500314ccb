"""Tests of the manual pages (doc/man/, ganeti.tools.manpages)."""

from __future__ import annotations

import os
import re
import subprocess

import pytest

from ganeti.cli import command, options
from ganeti.tools import manpages

TOPDIR = manpages.TOPDIR
SRCDIR = os.path.join(TOPDIR, "doc", "man")

pytest.importorskip("docutils")


class _Built(str):
    """The output directory, each page built the first time it is asked for."""

    def Path(self, page: manpages.Page) -> str:
        path = os.path.join(self, f"man{page.section}", f"{page.name}.{page.section}")
        if not os.path.exists(path):
            manpages.Build(self, SRCDIR, [page.name])
        return path


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The output directory of the pages (see _Built)."""
    return _Built(tmp_path_factory.mktemp("man"))


def _Groff(built: _Built, page: manpages.Page) -> str:
    path = built.Path(page)
    with open(path, encoding="utf-8") as fd:
        # groff spells "-" as "\-"; the pages as a reader sees the text
        text = fd.read().replace("\\-", "-").replace("\\(aq", "'")
    return re.sub(r"\\f[BIRP]", "", text)


def _Rst(built: _Built, name: str) -> str:
    built.Path(manpages.PAGES_BY_NAME[name])
    with open(os.path.join(built, "rst", f"{name}.rst"), encoding="utf-8") as fd:
        return fd.read()


def test_every_program_has_a_page():
    listed = {page.name for page in manpages.PAGES}
    programs = set(os.listdir(os.path.join(TOPDIR, "daemons"))) - {"README"}
    programs |= set(os.listdir(os.path.join(TOPDIR, "scripts"))) - {"README"}
    programs |= {"hail", "ganeti"}
    # Every program in tools/ (its NIC scripts in tools/network/ are
    # described on kvm-nic-setup's page)
    tools = os.path.join(TOPDIR, "tools")
    programs |= {name for name in os.listdir(tools)
                 if os.path.isfile(os.path.join(tools, name))
                 and os.access(os.path.join(tools, name), os.X_OK)}
    programs |= {"drbd-standin"}
    assert programs <= listed
    for page in manpages.PAGES:
        assert os.path.exists(os.path.join(SRCDIR, f"{page.name}.rst")), page.name
    sources = {name[:-4] for name in os.listdir(SRCDIR) if name.endswith(".rst")}
    assert sources == listed


def test_sections(built):
    for page in manpages.PAGES:
        assert page.section == (1 if page.name.startswith("h") else
                                7 if page.name == "ganeti" else 8)
        groff = _Groff(built, page)
        assert re.search(rf'^\.TH "?{re.escape(page.name)}"? "?{page.section}"?', groff,
                         re.M | re.I), page.name


@pytest.mark.parametrize("tool", manpages.GNT_TOOLS)
def test_gnt_page_has_every_command_and_option(built, tool):
    page = manpages.PAGES_BY_NAME[tool]
    commands, aliases = manpages.GetCommands(page)
    groff = _Groff(built, page)
    rst = _Rst(built, tool)
    for name, cmd_def in commands.items():
        assert re.search(rf"^{re.escape(name)}\n~+$", rst, re.M), (tool, name)
        assert f"{tool} {name} {cmd_def[3]}".rstrip().replace("\\", "") in groff.replace(
            "\\e", "\\").replace("\\", ""), (tool, name)
        for opt in command.CommandOptions(cmd_def):
            if opt.kwargs.get("help") == "==SUPPRESS==":
                continue
            for flag in opt.flags:
                assert re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", groff), \
                    (tool, name, flag)
    for alias in aliases:
        assert f"``{alias}``" in rst, (tool, alias)
    assert "COMMON OPTIONS" in groff
    for opt in options.COMMON_OPTS:
        for flag in opt.flags:
            assert flag in groff


@pytest.mark.parametrize("page", [p for p in manpages.PAGES if p.kind == "argparse"],
                         ids=lambda p: p.name)
def test_argparse_page_matches_help(built, page):
    parser = manpages.GetParser(page)
    groff = _Groff(built, page)
    for action in parser._actions:
        if action.help == "==SUPPRESS==":
            continue
        for flag in action.option_strings:
            assert re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", groff), \
                (page.name, flag)
    assert "SYNOPSIS" in groff and "OPTIONS" in groff.upper()


def test_prose_pages_match_programs(built):
    helper = _Groff(built, manpages.PAGES_BY_NAME["oob-test-helper"])
    with open(os.path.join(TOPDIR, "tools", "oob-test-helper"), encoding="utf-8") as fd:
        match = re.search(r"^COMMANDS = \((.*)\)$", fd.read(), re.M)
    assert match
    for name in re.findall(r'"([a-z-]+)"', match.group(1)):
        assert name in helper
    mip = _Groff(built, manpages.PAGES_BY_NAME["master-ip-setup"])
    with open(os.path.join(TOPDIR, "tools", "master-ip-setup"), encoding="utf-8") as fd:
        script = fd.read()
    for var in re.search(r"for var in ([A-Z_ ]+); do", script).group(1).split():
        assert var in mip
    usage = subprocess.run(["sh", os.path.join(TOPDIR, "tools", "master-ip-setup")],
                           capture_output=True, text=True, check=False, env={})
    assert usage.returncode == 1 and "start|stop" in usage.stderr
    assert "start|stop" in mip
    nic = _Groff(built, manpages.PAGES_BY_NAME["kvm-nic-setup"])
    for var in ("INTERFACE", "MODE", "ACTION", "GANETI_CONF_DIR", "GANETI_NET_SCRIPTS_DIR"):
        assert var in nic
    standin = _Groff(built, manpages.PAGES_BY_NAME["drbd-standin"])
    for name in ("drbdsetup", "drbdmeta", "drbdsetup-standin-ctl", "fail-disk"):
        assert name in standin


def test_groff_parses(built):
    groff = "/usr/bin/groff"
    if not os.path.exists(groff):
        pytest.skip("no groff")
    for page in manpages.PAGES:
        path = built.Path(page)
        result = subprocess.run([groff, "-man", "-Tutf8", "-ww", "-z", path],
                                capture_output=True, text=True, check=False)
        assert result.returncode == 0 and not result.stderr.strip(), (page.name,
                                                                      result.stderr)


def test_unknown_command_section_is_an_error():
    page = manpages.PAGES_BY_NAME["gnt-os"]
    text = (":Manual section: 8\n\nCOMMANDS\n--------\n\nno-such-command\n"
            "~~~~~~~~~~~~~~~\n\nText.\n")
    with pytest.raises(manpages.ManPageError, match="no-such-command"):
        manpages.ExpandPage(page, text)


def test_commands_without_section_are_appended():
    page = manpages.PAGES_BY_NAME["gnt-os"]
    text = ":Manual section: 8\n\nCOMMANDS\n--------\n\nlist\n~~~~\n\nMine.\n"
    rst = manpages.ExpandPage(page, text, "9.9")
    assert ":Version: 9.9" in rst
    assert "Mine." in rst
    assert re.search(r"^diagnose\n~+$", rst, re.M)
    assert "Diagnose all operating systems." in rst


def test_wrong_section_is_an_error():
    with pytest.raises(manpages.ManPageError, match="expected 1"):
        manpages.ExpandPage(manpages.PAGES_BY_NAME["hbal"], ":Manual section: 8\n")


def test_escape():
    assert manpages.Escape("a *b* `c` |d| e_") == r"a \*b\* \`c\` \|d\| e\_"
    assert manpages.Escape("- item") == r"\- item"
    assert manpages.ToGroff("Title\n=====\n\n:Manual section: 1\n\n"
                            + manpages.Escape("x_ *y `z|") + "\n")
