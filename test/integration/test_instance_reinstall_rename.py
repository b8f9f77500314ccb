"""gnt-instance reinstall and rename, and instance hooks, on a real
two-node virtual cluster.

Reinstall with another variant of the noop OS (proved by the marker line
the OS writes into disk 0), with OS parameters kept or replaced, with
--select-os answered on stdin, refused for a running instance, and with a
failing create script (its output shown, the configuration unchanged).
Rename of a file instance (directory renamed on the node, the new name
everywhere, the old one unknown) and to a used name. Hooks: a post hook
recording its environment, and a failing pre hook stopping a startup.
"""

from __future__ import annotations

import os
import shutil
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from vcluster import REPO, VirtualCluster, virtual_cluster  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

NOOP = REPO / "os-definitions" / "noop"
FILE_STORAGE = "/srv/ganeti/file-storage"
HOOKS_DIR = "/etc/ganeti/hooks"


@pytest.fixture(scope="module")
def vc():
    with virtual_cluster(nodes=2) as cluster:
        # A copy of the noop OS whose create script fails, on every node
        for node in cluster.names:
            target = cluster.path(node, "/srv/ganeti/os/failos")
            shutil.copytree(NOOP, target)
            create = target / "create"
            create.write_text("#!/bin/sh\necho 'failos: cannot install on purpose' >&2\n"
                              "exit 1\n")
            create.chmod(0o755)
        yield cluster


def _Gnt(vc: VirtualCluster, *args: str, check: bool = True, input: str | None = None):
    return vc.run("gnt-instance", *args, check=check, input=input)


def _InstanceConfig(vc: VirtualCluster, name: str) -> dict:
    (inst,) = [i for i in vc.config()["instances"].values() if i["name"] == name]
    return inst


def _Field(vc: VirtualCluster, name: str, field: str) -> str:
    return _Gnt(vc, "list", "--no-headers", "-o", field, name).stdout.strip()


def _AddFile(vc: VirtualCluster, name: str, *extra: str) -> None:
    _Gnt(vc, "add", "-t", "file", "-s", "1G", "-o", "noop+default", "-n", vc.names[1],
         "--no-name-check", "--no-ip-check", "--no-start", *extra, name)


def _Marker(vc: VirtualCluster, name: str) -> str:
    """The line the noop OS wrote at the start of disk 0."""
    image = vc.path(vc.names[1], f"{FILE_STORAGE}/{name}/disk0")
    return image.read_bytes()[:512].split(b"\n", 1)[0].decode()


def _Failed(result) -> str:
    assert result.returncode != 0, result.stdout
    return result.stdout + result.stderr


def test_reinstall(vc):
    name = "rein.example.com"
    _AddFile(vc, name, "-O", "message=hello")
    try:
        assert _Marker(vc, name) == (f"ganeti-noop-os name={name} os=noop+default"
                                     " variant=default message=hello")
        # Another variant; the saved parameters are kept
        _Gnt(vc, "reinstall", "-f", "-o", "noop+small", name)
        assert _Marker(vc, name).endswith("variant=small message=hello")
        assert _Field(vc, name, "os") == "noop+small"
        # -O replaces the parameter for good
        _Gnt(vc, "reinstall", "-f", "-O", "message=bye", name)
        assert _Marker(vc, name).endswith("variant=small message=bye")
        assert _InstanceConfig(vc, name)["osparams"] == {"message": "bye"}
        _Gnt(vc, "reinstall", "-f", name)
        assert _Marker(vc, name).endswith("message=bye")

        # --select-os: the list (hidden OSes left out), an abort, then a
        # choice read from stdin
        vc.run("gnt-os", "modify", "--hidden", "yes", "failos")
        try:
            out = _Failed(_Gnt(vc, "reinstall", "--select-os", "-f", name, input="x\n",
                               check=False))
            assert "User aborted reinstall" in out and "failos" not in out
            choices = dict(line.split(": ")[::-1] for line in out.splitlines()
                           if line.strip()[:1].isdigit())
            assert {"noop+default", "noop+small"} <= set(choices)
            _Gnt(vc, "reinstall", "--select-os", "-f", name,
                 input=choices["noop+default"].strip() + "\n")
        finally:
            vc.run("gnt-os", "modify", "--hidden", "no", "failos")
        assert _Field(vc, name, "os") == "noop+default"
        assert _Marker(vc, name).endswith("variant=default message=bye")

        # An unknown variant is refused before anything happens
        out = _Failed(_Gnt(vc, "reinstall", "-f", "-o", "noop+huge", name, check=False))
        assert "huge" in out and _Field(vc, name, "os") == "noop+default"

        # A failing create script: its output is shown, the config unchanged
        before = _InstanceConfig(vc, name)
        out = _Failed(_Gnt(vc, "reinstall", "-f", "-o", "failos+default", "-O",
                           "message=lost", name, check=False))
        assert "failos: cannot install on purpose" in out
        after = _InstanceConfig(vc, name)
        assert (after["os"], after["osparams"], after["serial_no"]) == \
            (before["os"], before["osparams"], before["serial_no"])

        # A running instance is refused
        _Gnt(vc, "startup", name)
        out = _Failed(_Gnt(vc, "reinstall", "-f", name, check=False))
        assert f"Instance '{name}' is marked to be up, cannot reinstall" in out
        assert _Field(vc, name, "status") == "running"
    finally:
        _Gnt(vc, "remove", "-f", name)


def test_rename(vc):
    old, new, taken = "ren1.example.com", "ren2.example.com", "taken.example.com"
    node = vc.names[1]
    _AddFile(vc, old)
    _AddFile(vc, taken)
    names = [old, taken]
    try:
        _Gnt(vc, "rename", "--no-name-check", old, new)
        names[0] = new
        assert not vc.path(node, f"{FILE_STORAGE}/{old}").exists()
        assert vc.path(node, f"{FILE_STORAGE}/{new}/disk0").exists()
        # the OS rename script rewrote the marker
        assert _Marker(vc, new).startswith(f"ganeti-noop-os name={new} ")
        listed = _Gnt(vc, "list", "--no-headers", "-o", "name").stdout.split()
        assert new in listed and old not in listed
        out = _Failed(_Gnt(vc, "info", old, check=False))
        assert old in out and "not known" in out
        assert f"{FILE_STORAGE}/{new}/disk0" in _Gnt(vc, "info", new).stdout
        # the instance lock follows the name: the instance can be started
        _Gnt(vc, "startup", new)
        assert _Field(vc, new, "status") == "running"
        out = _Failed(_Gnt(vc, "rename", "--no-name-check", new, "ren3.example.com",
                           check=False))
        assert "cannot rename" in out
        _Gnt(vc, "shutdown", "--timeout", "5", new)

        before = vc.config()["instances"]
        out = _Failed(_Gnt(vc, "rename", "--no-name-check", new, taken, check=False))
        assert f"Instance '{taken}' is already in the cluster" in out
        assert vc.config()["instances"] == before
        assert vc.path(node, f"{FILE_STORAGE}/{new}/disk0").exists()
    finally:
        for name in names:
            _Gnt(vc, "remove", "-f", name, check=False)


def _InstallHook(vc: VirtualCluster, node: str, hpath: str, phase: str, name: str,
                 body: str):
    directory = vc.path(node, f"{HOOKS_DIR}/{hpath}-{phase}.d")
    directory.mkdir(parents=True, exist_ok=True)
    script = directory / name
    script.write_text("#!/bin/sh\n" + body)
    script.chmod(0o755)
    return script


def test_hooks(vc, tmp_path):
    name = "hooked.example.com"
    _AddFile(vc, name)
    installed = []
    try:
        records = {}
        for node in vc.names:
            records[node] = tmp_path / f"env-{node}"
            installed.append(_InstallHook(vc, node, "instance-reinstall", "post",
                                          "10-record", f"env > '{records[node]}'\n"))
        _Gnt(vc, "reinstall", "-f", "-o", "noop+small", name)
        # master (node 1) and the primary node (node 2) ran the post hook
        for node in vc.names:
            env = dict(line.split("=", 1) for line in
                       records[node].read_text().splitlines() if "=" in line)
            assert env["GANETI_HOOKS_VERSION"] == "2"
            assert env["GANETI_HOOKS_PHASE"] == "post"
            assert env["GANETI_OP_CODE"] == "OP_INSTANCE_REINSTALL"
            assert env["GANETI_OBJECT_TYPE"] == "INSTANCE"
            assert env["GANETI_INSTANCE_NAME"] == name
            assert env["GANETI_INSTANCE_PRIMARY"] == vc.names[1]

        # rename: the old name and INSTANCE_NEW_NAME
        master = vc.master()
        installed.append(_InstallHook(vc, master, "instance-rename", "post", "10-record",
                                      f"env > '{records[master]}'\n"))
        new = "hooked2.example.com"
        _Gnt(vc, "rename", "--no-name-check", name, new)
        env = dict(line.split("=", 1) for line in
                   records[master].read_text().splitlines() if "=" in line)
        assert env["GANETI_OP_CODE"] == "OP_INSTANCE_RENAME"
        assert (env["GANETI_INSTANCE_NAME"], env["GANETI_INSTANCE_NEW_NAME"]) == \
            (name, new)
        _Gnt(vc, "rename", "--no-name-check", new, name)

        # A failing pre hook stops the startup and is named in the error
        installed.append(_InstallHook(vc, vc.master(), "instance-start", "pre",
                                      "50-refuse",
                                      "echo 'start refused by policy'\nexit 1\n"))
        out = _Failed(_Gnt(vc, "startup", name, check=False))
        assert "hooks execution failed" in out
        assert "instance-start-pre.d/50-refuse" in out
        assert "start refused by policy" in out
        assert _Field(vc, name, "status") == "ADMIN_down"
        assert _InstanceConfig(vc, name)["admin_state"] == "down"
    finally:
        for script in installed:
            script.unlink()
        _Gnt(vc, "remove", "-f", name)
    # with the hooks gone, the operation goes through again
    _AddFile(vc, name)
    try:
        _Gnt(vc, "startup", name)
        assert _Field(vc, name, "status") == "running"
    finally:
        _Gnt(vc, "remove", "-f", name)
