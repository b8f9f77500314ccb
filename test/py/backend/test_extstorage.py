"""backend.extstorage: the extstorage_diagnose call, in process and through a
real node daemon."""

from __future__ import annotations

import os
import shutil

import pytest

from ganeti import errors, serializer
from ganeti.backend import extstorage as backend_es
from ganeti.rpc import defs
from ganeti.rpc.dispatch import RpcDispatcher

import nodedhelpers  # noqa: E402  (test/py is on sys.path: see conftest.py)

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
LOOPFILE = os.path.join(REPO_ROOT, "extstorage-definitions", "loopfile")
SCRIPTS = ("create", "remove", "grow", "attach", "detach", "setinfo", "verify")


def EsDir(root: str) -> str:
    path = os.path.join(root, "srv", "ganeti", "extstorage")
    os.makedirs(path, exist_ok=True)
    return path


def MakeProvider(directory: str, name: str, missing: tuple[str, ...] = (),
                 parameters: str | None = "") -> str:
    path = os.path.join(directory, name)
    os.makedirs(path)
    for script in SCRIPTS:
        if script in missing:
            continue
        with open(os.path.join(path, script), "w", encoding="utf-8") as fd:
            fd.write("#!/bin/sh\nexit 0\n")
        os.chmod(os.path.join(path, script), 0o755)
    if parameters is not None:
        with open(os.path.join(path, "parameters.list"), "w", encoding="utf-8") as fd:
            fd.write(parameters)
    return path


def _Install(root: str) -> str:
    es_dir = EsDir(root)
    shutil.copytree(LOOPFILE, os.path.join(es_dir, "loopfile"))
    MakeProvider(es_dir, "broken", missing=("grow",))
    MakeProvider(es_dir, "noparams", parameters=None)
    MakeProvider(es_dir, "nas", parameters="nas_ip IP of the NAS\nfromsnap Snapshot\n")
    with open(os.path.join(es_dir, "README"), "w", encoding="utf-8") as fd:
        fd.write("not a provider\n")                 # files are no providers
    os.makedirs(os.path.join(es_dir, ".hidden"))
    return es_dir


def test_diagnose(node_root):
    es_dir = _Install(node_root)
    rows = backend_es.DiagnoseExtStorage()
    by_name = {row[0]: row for row in rows}
    assert [row[0] for row in rows] == ["broken", "loopfile", "nas", "noparams"]
    assert by_name["loopfile"][1:4] == [os.path.join(es_dir, "loopfile"), True, ""]
    assert [p[0] for p in by_name["loopfile"][4]] == ["dir"]
    assert by_name["nas"][4] == [["nas_ip", "IP of the NAS"], ["fromsnap", "Snapshot"]]
    assert by_name["broken"][2] is False
    assert "Script 'grow' not found in" in by_name["broken"][3]
    assert by_name["broken"][4] == []
    assert "Required file 'parameters.list' not found" in by_name["noparams"][3]
    # The answer crosses the wire as JSON
    assert serializer.LoadJson(serializer.DumpJson(rows)) == rows


def test_diagnose_search_path(node_root, tmp_path):
    assert backend_es.DiagnoseExtStorage() == []     # no directory at all
    first, second = str(tmp_path / "a"), str(tmp_path / "b")
    os.makedirs(first)
    os.makedirs(second)
    MakeProvider(first, "dup", missing=("verify",))
    MakeProvider(second, "dup")
    MakeProvider(second, "other")
    rows = backend_es.DiagnoseExtStorage([first, second, str(tmp_path / "none")])
    assert [(row[0], row[1], row[2]) for row in rows] == [
        ("dup", os.path.join(first, "dup"), False),
        ("dup", os.path.join(second, "dup"), True),
        ("other", os.path.join(second, "other"), True)]


def test_rpc_declaration_and_dispatch(node_root):
    _Install(node_root)
    call = defs.CALLS["extstorage_diagnose"]
    assert call.args == () and call.timeout == defs.TMO_FAST and not call.single
    names = list(defs.CALLS)
    assert names.index("extstorage_diagnose") + 1 == names.index("hooks_runner")
    disp = RpcDispatcher(calls={call.name: call})
    disp.LoadAll()
    assert disp.Run(call, disp.DecodeArgs(call, b"[]")) == \
        [True, backend_es.DiagnoseExtStorage()]


def _NodedCanStart() -> str | None:
    """Why a node daemon cannot start in this tree (None: it can)."""
    try:
        RpcDispatcher().LoadAll()
    except (ImportError, errors.ProgrammerError) as err:
        return str(err)
    return None


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_real_node_daemons(start_noded, cluster_crypto):
    why = _NodedCanStart()
    if why is not None:
        pytest.skip(f"the node daemon cannot load every RPC handler yet: {why}")
    daemons = start_noded(2)
    es_dir = _Install(daemons[0].root)                # only on the first node
    runner = nodedhelpers.MakeRunner(cluster_crypto, daemons)
    results = runner.call_extstorage_diagnose([d.name for d in daemons])
    first, second = (results[d.name] for d in daemons)
    assert first.fail_msg is None and second.fail_msg is None
    assert [row[0] for row in first.payload] == ["broken", "loopfile", "nas", "noparams"]
    assert first.payload[1][1:3] == [os.path.join(es_dir, "loopfile"), True]
    assert second.payload == []
