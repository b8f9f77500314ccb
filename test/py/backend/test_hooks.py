"""Tests for the node side of hooks (ganeti.backend.hooks)."""

from __future__ import annotations

import os

import pytest

from ganeti import constants
from ganeti.backend import RPCFail
from ganeti.backend import hooks


def _Script(directory, name, body, mode=0o755):
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, name)
    with open(path, "w", encoding="utf-8") as fd:
        fd.write("#!/bin/sh\n" + body + "\n")
    os.chmod(path, mode)
    return path


def test_run_parts_rules(tmp_path):
    base = str(tmp_path)
    pre = hooks.HooksDir("instance-add", "pre", base)
    _Script(pre, "20-second", "echo second; echo err >&2")
    _Script(pre, "10-first", "echo \"$GANETI_X $PATH $HOME\"")
    _Script(pre, "with.ext", "exit 1")              # bad name: skipped
    _Script(pre, "noexec", "exit 1", mode=0o644)    # not executable: skipped
    os.mkdir(os.path.join(pre, "subdir"))           # not a file: skipped
    result = hooks.RunHooks("instance-add", "pre", {"GANETI_X": 1, "PATH": "/bin"},
                            base_dir=base)
    assert [r[0] for r in result] == [
        "instance-add-pre.d/10-first", "instance-add-pre.d/20-second",
        "instance-add-pre.d/noexec", "instance-add-pre.d/subdir",
        "instance-add-pre.d/with.ext"]
    # Only the given environment: HOME is not passed on
    assert result[0][1:] == (constants.HKR_SUCCESS, "1 /bin")
    assert result[1][1:] == (constants.HKR_SUCCESS, "second\nerr")
    assert [r[1] for r in result[2:]] == [constants.HKR_SKIP] * 3


def test_failure_and_timeout(tmp_path):
    base = str(tmp_path)
    post = hooks.HooksDir("node-add", "post", base)
    _Script(post, "fails", "echo denied; exit 3")
    _Script(post, "quiet", "exit 4")
    _Script(post, "slow", "sleep 30")
    result = {r[0].split("/")[-1]: r[1:] for r in
              hooks.RunHooks("node-add", "post", {}, base_dir=base, timeout=0.5)}
    assert result["fails"] == (constants.HKR_FAIL, "denied")
    assert result["quiet"][0] == constants.HKR_FAIL
    assert "exit code 4" in result["quiet"][1]
    assert result["slow"][0] == constants.HKR_FAIL
    assert "timed out" in result["slow"][1]


def test_missing_dir_and_bad_input(tmp_path):
    assert hooks.RunHooks("cluster-modify", "pre", {}, base_dir=str(tmp_path)) == []
    for hpath, phase in (("../etc", "pre"), ("a/b", "pre"), ("", "pre"),
                         ("ok", "middle")):
        with pytest.raises(RPCFail, match="Invalid hooks path|Unknown hooks phase"):
            hooks.RunHooks(hpath, phase, {}, base_dir=str(tmp_path))
    with pytest.raises(RPCFail, match="must be a dict"):
        hooks.RunHooks("ok", "pre", ["x"], base_dir=str(tmp_path))  # type: ignore[arg-type]
