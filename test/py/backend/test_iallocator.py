"""Tests for running allocator programs on the node (lib/backend/iallocator.py):
real scripts found in the search path, their options and input file."""

from __future__ import annotations

import json
import os
import stat

import pytest

from ganeti import pathutils
from ganeti.backend import RPCFail
from ganeti.backend import iallocator


def _Script(directory, name, body):
    path = directory / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


@pytest.fixture
def search(tmp_path, monkeypatch):
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    monkeypatch.setenv("GANETI_IALLOCATOR_SEARCH_PATH", f"{first}:{second}")
    return first, second


def test_runs_the_first_match_with_options_and_input(search):
    first, second = search
    _Script(second, "alloc", 'echo second\n')
    _Script(first, "alloc", 'printf \'{"args": "%s", "input": %s}\' "$*" "$(cat "$2")"\n')
    out = json.loads(iallocator.RunIallocator("alloc", '{"version": 2}', {"x": "1"}))
    assert out["input"] == {"version": 2}
    assert out["args"].startswith("--x=1 ")
    # the input file is gone afterwards
    assert not os.path.exists(out["args"].split()[1])


def test_our_directory_comes_first():
    path = pathutils.IallocatorSearchPath()
    assert path[0].endswith("iallocators")
    assert "/usr/lib/ganeti/iallocators" in "".join(path[1:]) or \
        os.environ.get("GANETI_IALLOCATOR_SEARCH_PATH") is not None


def test_failure_quotes_the_output(search):
    _Script(search[0], "broken", 'echo "cannot parse input" >&2\nexit 3\n')
    with pytest.raises(RPCFail, match="exit code 3.*cannot parse input"):
        iallocator.RunIallocator("broken", "{}", {})


def test_missing_and_bad_names(search):
    with pytest.raises(RPCFail, match="'nosuch' not found in the iallocator search path"):
        iallocator.RunIallocator("nosuch", "{}", {})
    for name in ("../x", "", ".hidden"):
        with pytest.raises(RPCFail, match="Invalid iallocator name"):
            iallocator.RunIallocator(name, "{}", {})
    # a file that is not executable is not an allocator
    (search[0] / "plain").write_text("#!/bin/sh\necho hi\n")
    with pytest.raises(RPCFail, match="not found"):
        iallocator.RunIallocator("plain", "{}", {})
    with pytest.raises(RPCFail, match="Invalid iallocator parameters"):
        iallocator.RunIallocator("plain", "{}", ["x"])
