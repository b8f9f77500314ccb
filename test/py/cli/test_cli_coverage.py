"""The gap test: every subcommand and synopsis option of Ganeti 3.0's tools.

test/data/ganeti30-cli.json lists, per gnt-* tool, each command of Ganeti
3.0's manual page with the options of its synopsis (extracted by
tools/man-cli-synopsis, then checked by hand). This test reads our
``commands`` tables and fails on every command or option we lack, unless
test/data/cli-gaps.json lists it with the reason (the open piece of
work). It also fails on an allowlisted gap that is no longer one, so the
allowlist only ever shrinks.

Allowlist keys: ``"gnt-tool"`` (the whole tool), ``"gnt-tool command"``
(the command and all its options) or ``"gnt-tool command --option"``.
"""

from __future__ import annotations

import importlib
import json
import os
from typing import Any

import pytest

from ganeti.cli import command
from ganeti.cli import options as cli_options

_DATA = os.path.join(os.path.dirname(__file__), "..", "..", "data")
REFERENCE_FILE = os.path.join(_DATA, "ganeti30-cli.json")
GAPS_FILE = os.path.join(_DATA, "cli-gaps.json")


def _Load(path: str) -> Any:
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def _ToolCommands(tool: str) -> dict[str, Any] | None:
    """The commands (with aliases) of our ``tool``, None if it is missing."""
    modname = "ganeti.client." + tool.replace("-", "_")
    try:
        module = importlib.import_module(modname)
    except ModuleNotFoundError as err:
        if err.name != modname:
            raise
        return None
    result = dict(module.commands)
    for alias, target in getattr(module, "aliases", {}).items():
        result.setdefault(alias, module.commands[target])
    return result


def _Flags(cmd_def: Any) -> set[str]:
    """Every option string a command accepts (common and implied options included)."""
    flags: set[str] = set()
    for opt in command.CommandOptions(cmd_def):
        flags.update(opt.flags)
    return flags


def FindGaps(reference: dict[str, dict[str, list[str]]]) -> list[str]:
    """The missing tools, commands and options, as allowlist keys."""
    gaps: list[str] = []
    for tool, ref_commands in sorted(reference.items()):
        ours = _ToolCommands(tool)
        if ours is None:
            gaps.append(tool)
            continue
        for cmd, ref_opts in sorted(ref_commands.items()):
            if cmd not in ours:
                gaps.append(f"{tool} {cmd}")
                continue
            flags = _Flags(ours[cmd])
            gaps.extend(f"{tool} {cmd} {opt}" for opt in ref_opts if opt not in flags)
    return gaps


def _Covers(allowed: str, gap: str) -> bool:
    """Whether the allowlist key ``allowed`` covers ``gap``."""
    return gap == allowed or gap.startswith(allowed + " ")


def CompareWithAllowlist(gaps: list[str],
                         allowlist: dict[str, str]) -> tuple[list[str], list[str]]:
    """(gaps not allowlisted, allowlist keys covering no gap)."""
    unexpected = [gap for gap in gaps
                  if not any(_Covers(key, gap) for key in allowlist)]
    stale = [key for key in allowlist
             if not any(_Covers(key, gap) for gap in gaps)]
    return unexpected, sorted(stale)


@pytest.fixture(scope="module")
def reference() -> dict[str, dict[str, list[str]]]:
    return _Load(REFERENCE_FILE)


@pytest.fixture(scope="module")
def allowlist() -> dict[str, str]:
    return _Load(GAPS_FILE)


def test_reference_data_is_sane(reference):
    assert set(reference) == {
        "gnt-backup", "gnt-cluster", "gnt-debug", "gnt-group", "gnt-instance",
        "gnt-job", "gnt-network", "gnt-node", "gnt-os", "gnt-storage"}
    assert "--yes-do-it" in reference["gnt-cluster"]["destroy"]
    assert {"-I", "--ignore-errors", "--node-group"} <= set(reference["gnt-cluster"]["verify"])
    for tool, cmds in reference.items():
        for cmd, opts in cmds.items():
            assert cmd == cmd.lower() and " " not in cmd, (tool, cmd)
            for opt in opts:
                assert opt.startswith("-") and "\\" not in opt, (tool, cmd, opt)


def test_every_gap_has_a_reason(allowlist):
    for key, reason in allowlist.items():
        assert key.startswith("gnt-"), key
        assert isinstance(reason, str) and reason.strip(), f"{key}: no reason given"


def test_no_unlisted_gaps(reference, allowlist):
    unexpected, _ = CompareWithAllowlist(FindGaps(reference), allowlist)
    assert not unexpected, ("commands/options of Ganeti 3.0 we lack; implement"
                            f" them or list them in {GAPS_FILE}: {unexpected}")


def test_no_stale_allowlist_entries(reference, allowlist):
    _, stale = CompareWithAllowlist(FindGaps(reference), allowlist)
    assert not stale, f"no longer gaps, remove from {GAPS_FILE}: {stale}"


# --- the checking logic itself ------------------------------------------------------

def test_compare_detects_new_and_stale_gaps():
    gaps = ["gnt-x a", "gnt-x b --opt", "gnt-y", "gnt-x c -f"]
    allow = {"gnt-x a": "r", "gnt-y": "r", "gnt-x b": "r", "gnt-x gone": "r",
             "gnt-x c --force": "r"}
    unexpected, stale = CompareWithAllowlist(gaps, allow)
    assert unexpected == ["gnt-x c -f"]
    assert stale == ["gnt-x c --force", "gnt-x gone"]
    # A prefix of a word is no cover: "gnt-x a" does not cover "gnt-x ab"
    assert CompareWithAllowlist(["gnt-x ab"], {"gnt-x a": "r"}) == (
        ["gnt-x ab"], ["gnt-x a"])


def test_find_gaps_reads_our_tables():
    ref = {"gnt-job": {"list": ["--no-headers", "--no-such-option"],
                       "no-such-command": ["-f"]},
           "gnt-nonexistent": {"x": []}}
    assert FindGaps(ref) == ["gnt-job list --no-such-option",
                             "gnt-job no-such-command", "gnt-nonexistent"]
    # The common options count for every command
    assert FindGaps({"gnt-job": {"list": ["--debug", "-d", "--reason"]}}) == []


def test_extraction_script(tmp_path):
    import subprocess
    import sys
    page = tmp_path / "gnt-demo.rst"
    page.write_text(
        "gnt-demo(8)\n===========\n\nCOMMANDS\n--------\n\n"
        "FROB\n~~~~\n\n| **frob** [\\--no-headers] [{-f|\\--force}]\n"
        "| [-o *[+]FIELD,...*] {*hv-param*=*value*}\n\nProse --not-an-option.\n\n"
        "Tags\n~~~~\n\nADD-TAGS\n^^^^^^^^\n\n**add-tags** [\\--from *file*]\n\n"
        "NOTES\n-----\n\n**ignored** [\\--x]\n")
    script = os.path.join(os.path.dirname(__file__), "..", "..", "..", "tools",
                          "man-cli-synopsis")
    out = subprocess.run([sys.executable, script, str(tmp_path), "gnt-demo"],
                         check=True, capture_output=True, text=True).stdout
    assert json.loads(out) == {"gnt-demo": {"add-tags": ["--from"],
                                            "frob": ["-f", "--force",
                                                     "--no-headers", "-o"]}}


# --- options implied for job-submitting commands ------------------------------------

def _SourceOf(func: Any) -> str:
    import inspect
    try:
        return inspect.getsource(func)
    except (OSError, TypeError):
        return ""


@pytest.mark.parametrize("tool", ["gnt-cluster", "gnt-debug", "gnt-group", "gnt-job",
                                  "gnt-network", "gnt-node", "gnt-os", "gnt-storage",
                                  "gnt-instance"])
def test_submitting_commands_take_the_job_options(tool):
    """A command whose function may only submit (SubmitOrSend) takes --submit,
    and with it --print-jobid and --priority."""
    missing = []
    for name, cmd_def in sorted((_ToolCommands(tool) or {}).items()):
        flags = _Flags(cmd_def)
        if "SubmitOrSend" in _SourceOf(cmd_def[0]):
            missing.extend(f"{tool} {name} {flag}"
                           for flag in ("--submit", "--print-jobid", "--priority")
                           if flag not in flags)
    assert not missing


def test_submit_implies_print_jobid_and_priority():
    def _Func(opts, args):
        return 0
    flags = _Flags((_Func, [], [cli_options.SUBMIT_OPT], "", ""))
    assert {"--submit", "--print-jobid", "--priority", "--debug"} <= flags
    assert "--print-jobid" not in _Flags((_Func, [], [], "", ""))
