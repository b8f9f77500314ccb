"""Commands on nodes in a virtual cluster (issue 15, item 6).

``gnt-cluster command`` and ``copyfile`` reach the nodes as Ganeti's do
over SSH; in a virtual cluster they act locally as each node (its
GANETI_ROOTDIR/GANETI_HOSTNAME). ``gnt-node restricted-command`` runs only
the programs placed in a node's restricted commands directory, over the
``restricted_command`` RPC. Over RPC the master can neither run any other
command nor write a file outside the upload allow-list.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from vcluster import VirtualCluster, virtual_cluster  # noqa: E402

from ganeti import constants, utils  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

SEP = "------------------------------------------------"
RCMD_DIR = constants.DEFAULT_CONF_DIR + "/restricted-commands"


@pytest.fixture(scope="module")
def vc():
    with virtual_cluster(nodes=2) as cluster:
        yield cluster


def _Names(vc: VirtualCluster) -> tuple[str, str]:
    return vc.names[0], vc.names[1]


def test_command_acts_as_each_node(vc):
    node1, node2 = _Names(vc)
    out = vc.run("gnt-cluster", "command", "echo", "$GANETI_HOSTNAME").stdout
    # every node, the master last
    assert out == (f"{SEP}\nnode: {node2}\n{node2}\nreturn code = 0\n"
                   f"{SEP}\nnode: {node1}\n{node1}\nreturn code = 0\n")
    out = vc.run("gnt-cluster", "command", "-M", "-n", node2.split(".")[0],
                 "echo a; echo b").stdout
    assert out == f"{SEP}\n{node2}: a\n{node2}: b\nreturn code = 0\n"
    proc = vc.run("gnt-cluster", "command", "--failure-only",
                  f'test "$GANETI_HOSTNAME" = {node1} || exit 7', check=False)
    assert proc.returncode != 0
    assert proc.stdout == f"{SEP}\nnode: {node2}\n\nreturn code = 7\n"
    out = vc.run("gnt-cluster", "command", "-g", "default", "true").stdout
    assert out.count("return code = 0") == 2
    proc = vc.run("gnt-cluster", "command", "-n", "nosuchnode", "true", check=False)
    assert proc.returncode != 0 and "nosuchnode" in proc.stderr


def test_copyfile(vc):
    node1, node2 = _Names(vc)
    src = vc.path(node1, "/etc/ganeti/copied.txt")
    src.write_text("payload\n")
    os.chmod(src, 0o640)
    vc.run("gnt-cluster", "copyfile", str(src))
    dest = vc.path(node2, "/etc/ganeti/copied.txt")
    assert dest.read_text() == "payload\n"
    assert dest.stat().st_mode & 0o777 == 0o640
    # only files inside the master's root have a place on the other nodes
    outside = Path(vc.directory) / "outside.txt"
    outside.write_text("x")
    proc = vc.run("gnt-cluster", "copyfile", str(outside), check=False)
    assert proc.returncode != 0 and "below this node's root" in proc.stderr


def _PlaceCommand(vc: VirtualCluster, node: str, name: str, body: str,
                  mode: int = 0o755) -> Path:
    directory = vc.path(node, RCMD_DIR)
    directory.mkdir(mode=0o755, exist_ok=True)
    os.chmod(directory, 0o755)
    path = directory / name
    utils.WriteFile(str(path), data=f"#!/bin/sh\n{body}\n", mode=mode)
    os.chmod(path, mode)
    return path


def test_restricted_command(vc):
    node1, node2 = _Names(vc)
    _PlaceCommand(vc, node2, "hello", 'echo "hello from $GANETI_HOSTNAME"; echo "args=$#"')
    out = vc.run("gnt-node", "restricted-command", "hello", node2).stdout
    assert out == f"{SEP}\nNode: {node2}\nhello from {node2}\nargs=0\n\n"
    out = vc.run("gnt-node", "restricted-command", "-M", "--sync", "hello", node2).stdout
    assert out == f"{SEP}\n{node2}: hello from {node2}\n{node2}: args=0\n"
    # node1 has no restricted commands directory: refused there, run on node2
    proc = vc.run("gnt-node", "restricted-command", "-g", "default", "hello",
                  check=False)
    assert proc.returncode != 0
    assert f"Command 'hello' on node '{node1}' failed" in proc.stdout
    assert "restricted commands directory" in proc.stdout
    assert f"hello from {node2}" in proc.stdout


def test_restricted_command_refusals(vc):
    _, node2 = _Names(vc)
    _PlaceCommand(vc, node2, "loose", "echo ran", mode=0o775)
    proc = vc.run("gnt-node", "restricted-command", "loose", node2, check=False)
    assert proc.returncode != 0
    assert "too permissive a mode (0775" in proc.stdout and "ran" not in proc.stdout
    proc = vc.run("gnt-node", "restricted-command", "missing", node2, check=False)
    assert proc.returncode != 0 and "does not exist" in proc.stdout
    # a path is no command name (the opcode or the LU refuses it at once)
    proc = vc.run("gnt-node", "restricted-command", "../../../bin/sh", node2,
                  check=False)
    assert proc.returncode != 0
    assert "Node:" not in proc.stdout
    # a command that fails reports its status and output
    _PlaceCommand(vc, node2, "broken", "echo oops; exit 4")
    proc = vc.run("gnt-node", "restricted-command", "broken", node2, check=False)
    assert proc.returncode != 0
    assert "exited with exit code 4; output: oops" in proc.stdout


_RPC_PROBE = textwrap.dedent("""
    import json, sys
    from ganeti import config, constants, pathutils, utils
    from ganeti.rpc import client
    from ganeti.rpc.node import NodeToEndpoint, RpcRunner
    cfg = config.ConfigWriter(accept_foreign=True, offline=True)
    node = cfg.GetNodeInfoByName(sys.argv[1])
    runner = RpcRunner.FromConfig(cfg)
    evil = pathutils.CONF_DIR + "/not-allowed"
    utils.WriteFile(evil, data="x")
    upload = runner.call_upload_file([node.uuid], evil)[node.uuid]
    allowed = runner.call_upload_file([node.uuid], pathutils.RAPI_CERT_FILE)[node.uuid]
    ep = NodeToEndpoint(node, False, constants.DEFAULT_NODED_PORT)
    req = client.RpcRequest(key=node.uuid, node=node.name, address=ep.address,
                            port=ep.port, procedure="node_run_command",
                            body=b'["touch /tmp/pwned", null]', read_timeout=30)
    client.ProcessRequests([req], runner._GetSslConfig())
    print(json.dumps({"upload": upload.fail_msg, "allowed": allowed.fail_msg,
                      "run_code": req.code, "run_body": req.resp_body.decode()}))
""")


def test_rpc_runs_no_command_and_writes_only_allowed_files(vc):
    node1, node2 = _Names(vc)
    proc = subprocess.run([sys.executable, "-c", _RPC_PROBE, node2], env=vc.env(node1),
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert "not in the list of files the master may upload" in result["upload"]
    assert not vc.path(node2, "/etc/ganeti/not-allowed").exists()
    assert result["allowed"] is None
    assert result["run_code"] == 404 and "Unknown RPC call" in result["run_body"]
