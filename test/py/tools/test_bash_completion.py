"""Tests of the generated bash completion (ganeti.tools.bash_completion)."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess

import pytest

from ganeti.cli import command
from ganeti.tools import bash_completion, manpages

BASH = shutil.which("bash")
pytestmark = pytest.mark.skipif(BASH is None, reason="no bash")


@pytest.fixture(scope="module")
def scripts(tmp_path_factory):
    """The directory of the scripts of a few programs."""
    outdir = str(tmp_path_factory.mktemp("completion"))
    bash_completion.Build(outdir, ["gnt-instance", "gnt-job", "gnt-group", "gnt-node",
                                   "hbal", "daemon-util"])
    return outdir


@pytest.fixture()
def rootdir(tmp_path):
    """A node root with ssconf lists and a job queue, as GANETI_ROOTDIR."""
    data = tmp_path / "var" / "lib" / "ganeti"
    (data / "queue").mkdir(parents=True)
    (data / "ssconf_instance_list").write_text("inst1.example.com\ninst2.example.com\n")
    (data / "ssconf_node_list").write_text("node1.example.com\nnode2.example.com\n")
    (data / "ssconf_nodegroups").write_text("uuid-1 default\nuuid-2 rack2\n")
    for job_id in (7, 12):
        (data / "queue" / f"job-{job_id}").write_text("{}")
    (data / "queue" / "serial").write_text("12")
    return str(tmp_path)


def _Complete(scripts: str, words: list[str], env: dict[str, str] | None = None) -> list[str]:
    """COMPREPLY for the command line ``words`` (the last one being completed)."""
    program = words[0]
    func = "_" + program.replace("-", "_")
    code = (f"source {shlex.quote(os.path.join(scripts, program))}\n"
            f"COMP_WORDS=({' '.join(shlex.quote(w) for w in words)})\n"
            f"COMP_CWORD={len(words) - 1}\n"
            f"{func}\n"
            'printf "%s\\n" "${COMPREPLY[@]}"\n')
    result = subprocess.run([BASH, "--norc", "--noprofile", "-c", code],
                            capture_output=True, text=True, check=True,
                            env=dict(os.environ, **(env or {})))
    return [line for line in result.stdout.splitlines() if line]


def test_syntax(tmp_path):
    bash_completion.Build(str(tmp_path))
    names = sorted(os.listdir(tmp_path))
    assert {"gnt-instance", "gnt-cluster", "hbal", "hail", "ganeti-noded"} <= set(names)
    for name in names:
        subprocess.run([BASH, "-n", str(tmp_path / name)], check=True)


def test_subcommands(scripts):
    from ganeti.client import gnt_instance
    got = _Complete(scripts, ["gnt-instance", ""])
    assert set(got) == set(gnt_instance.commands) | set(gnt_instance.aliases)
    assert _Complete(scripts, ["gnt-instance", "re"]) == sorted(
        name for name in got if name.startswith("re"))


def test_options_of_add(scripts):
    from ganeti.client import gnt_instance
    got = set(_Complete(scripts, ["gnt-instance", "add", "-"]))
    expected = {flag for opt in command.CommandOptions(gnt_instance.commands["add"])
                for flag in opt.flags}
    assert expected <= got
    assert {"-h", "--help"} <= got
    assert _Complete(scripts, ["gnt-instance", "add", "--no-sta"]) == ["--no-start"]


def test_option_values(scripts):
    assert "drbd" in _Complete(scripts, ["gnt-instance", "add", "-t", ""])
    assert _Complete(scripts, ["gnt-instance", "add", "--disk-template", "pl"]) == ["plain"]
    assert _Complete(scripts, ["gnt-instance", "add", "--disk-template=pl"]) == ["plain"]


def test_names_from_ssconf(scripts, rootdir):
    env = {"GANETI_ROOTDIR": rootdir}
    assert _Complete(scripts, ["gnt-instance", "startup", ""], env) == [
        "inst1.example.com", "inst2.example.com"]
    assert _Complete(scripts, ["gnt-instance", "info", "-s", "inst1.example.com", "inst2"],
                     env) == ["inst2.example.com"]
    # An option taking a value does not count as the instance argument
    assert _Complete(scripts, ["gnt-instance", "failover", "-n", "node1", "i"], env) == [
        "inst1.example.com", "inst2.example.com"]
    assert _Complete(scripts, ["gnt-instance", "failover", "-n", "n"], env) == []
    assert _Complete(scripts, ["gnt-node", "info", "node2"], env) == ["node2.example.com"]
    assert _Complete(scripts, ["gnt-group", "assign-nodes", "r"], env) == ["rack2"]
    assert _Complete(scripts, ["gnt-group", "assign-nodes", "rack2", "n"], env) == [
        "node1.example.com", "node2.example.com"]
    assert sorted(_Complete(scripts, ["gnt-job", "info", ""], env)) == ["12", "7"]


def test_off_cluster(scripts, tmp_path):
    env = {"GANETI_ROOTDIR": str(tmp_path)}
    assert _Complete(scripts, ["gnt-instance", "startup", ""], env) == []


def test_file_arguments(scripts, tmp_path):
    (tmp_path / "specs.json").write_text("{}")
    prefix = str(tmp_path / "spe")
    assert _Complete(scripts, ["gnt-instance", "batch-create", prefix]) == [
        str(tmp_path / "specs.json")]
    assert _Complete(scripts, ["hbal", "-t", prefix]) == [str(tmp_path / "specs.json")]


def test_argparse_programs(scripts):
    assert "--no-disk-moves" in _Complete(scripts, ["hbal", "--no-"])
    assert "start-master" in _Complete(scripts, ["daemon-util", ""])
    assert _Complete(scripts, ["daemon-util", "start", "ganeti-nod"]) == ["ganeti-noded"]


def test_every_gnt_tool_has_a_script(tmp_path):
    written = bash_completion.Build(str(tmp_path))
    for tool in manpages.GNT_TOOLS:
        assert str(tmp_path / tool) in written
