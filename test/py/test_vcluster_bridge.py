"""vcluster.EnsureDefaultBridge: the default NIC's bridge is created as
root when missing, and the step is skipped with a message otherwise."""

from __future__ import annotations

import subprocess

import pytest

from ganeti import vcluster


@pytest.fixture
def host(monkeypatch):
    """A fake host: which bridges exist, the euid, the commands run."""
    state = {"bridges": set(), "euid": 0, "commands": [], "fail": False}

    def _IsDir(path):
        parts = path.split("/")
        return path.startswith("/sys/class/net/") and parts[-1] == "bridge" and \
            parts[-2] in state["bridges"]

    def _Run(cmd, **kwargs):
        state["commands"].append(cmd)
        if state["fail"]:
            return subprocess.CompletedProcess(cmd, 2, "", "Operation not permitted")
        state["bridges"].add(cmd[cmd.index("name") + 1])
        return subprocess.CompletedProcess(cmd, 0, "", "")
    monkeypatch.setattr(vcluster.os.path, "isdir", _IsDir)
    monkeypatch.setattr(vcluster.os, "geteuid", lambda: state["euid"])
    monkeypatch.setattr(vcluster.subprocess, "run", _Run)
    return state


def test_created_as_root(host):
    messages = []
    assert vcluster.EnsureDefaultBridge(messages.append)
    assert host["commands"] == [["ip", "link", "add", "name", "xen-br0", "type", "bridge"]]
    assert "Created bridge xen-br0" in messages[0]
    # present: nothing to do
    assert vcluster.EnsureDefaultBridge(messages.append)
    assert len(host["commands"]) == 1


def test_skipped_when_not_root(host):
    host["euid"] = 1000
    messages = []
    assert not vcluster.EnsureDefaultBridge(messages.append)
    assert not host["commands"]
    assert messages[0].startswith("Skipping the default NIC bridge xen-br0")
    assert "root" in messages[0]


def test_skipped_when_creation_fails(host):
    host["fail"] = True
    messages = []
    assert not vcluster.EnsureDefaultBridge(messages.append)
    assert messages[0].startswith("Skipping the default NIC bridge xen-br0")
    assert "Operation not permitted" in messages[0]
