"""Commands acting on nodes: GetOnlineNodes, ``gnt-cluster command`` and
``copyfile`` over a real sshd, ``gnt-node restricted-command``.

The cluster is a fake luxi client (three nodes: node1 the master, node2,
node3 offline); every node is reached through one sshd on 127.0.0.1
(``sshdhelpers``), each as a node root on this machine, so that copies
land somewhere else than their source.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import sys
import tempfile
from types import SimpleNamespace
from typing import Any

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import sshdhelpers  # noqa: E402
from clihelpers import FakeClient  # noqa: E402

from ganeti import cli, constants, errors, opcodes, ssh, utils  # noqa: E402
from ganeti.client import gnt_cluster, gnt_node  # noqa: E402

pytestmark = pytest.mark.timeout(120)

CLUSTER = "cluster.example.com"


def _Nodes(port: int) -> list[dict[str, Any]]:
    return [
        {"name": "node1.example.com", "offline": False, "pip": "127.0.0.1",
         "sip": "127.0.0.1", "master": True, "group": "default", "group.uuid": "g1",
         "ndp/ssh_port": port},
        {"name": "node2.example.com", "offline": False, "pip": "127.0.0.2",
         "sip": "127.0.0.1", "master": False, "group": "rack2", "group.uuid": "g2",
         "ndp/ssh_port": port},
        {"name": "node3.example.com", "offline": True, "pip": "127.0.0.3",
         "sip": "127.0.0.3", "master": False, "group": "default", "group.uuid": "g1",
         "ndp/ssh_port": port},
    ]


def _Match(qfilter: Any, row: dict[str, Any]) -> bool:
    """The few filter forms GetOnlineNodes sends."""
    if qfilter is None:
        return True
    op, *operands = qfilter
    if op == "|":
        return any(_Match(sub, row) for sub in operands)
    if op == "&":
        return all(_Match(sub, row) for sub in operands)
    assert op == "=", qfilter
    field, value = operands
    if field == "name":
        return row["name"] == value or row["name"].startswith(value + ".")
    return row[field] == value


class NodeClient(FakeClient):
    def __init__(self, rows: list[dict[str, Any]]) -> None:
        super().__init__()
        self.rows = rows
        self.query[constants.QR_NODE] = self._Answer

    def _Answer(self, fields: list[str], qfilter: Any) -> dict[str, Any]:
        data = [[(constants.RS_NORMAL, row[field]) for field in fields]
                for row in self.rows if _Match(qfilter, row)]
        return {"fields": [], "data": data}

    def QueryConfigValues(self, fields: list[str]) -> list[Any]:
        self._Record("QueryConfigValues", fields)
        return [{"cluster_name": CLUSTER}[field] for field in fields]


@pytest.fixture
def client(monkeypatch):
    cl = NodeClient(_Nodes(22))
    monkeypatch.setattr(cli, "GetClient", lambda address=None: cl)
    return cl


# --- GetOnlineNodes ---------------------------------------------------------------------

def test_online_nodes(client, capsys):
    nodes = cli.GetOnlineNodes(cl=client)
    assert [node.name for node in nodes] == ["node1.example.com", "node2.example.com"]
    assert "Note: skipping offline node(s): node3.example.com" in capsys.readouterr().err
    assert nodes[1] == cli.OnlineNode("node2.example.com", "127.0.0.2", "127.0.0.1", 22,
                                      False)
    names = [n.name for n in cli.GetOnlineNodes(["node2", "node1"], cl=client)]
    assert names == ["node1.example.com", "node2.example.com"]
    assert [n.name for n in cli.GetOnlineNodes(cl=client, filter_master=True)] == \
        ["node2.example.com"]
    assert [n.name for n in cli.GetOnlineNodes(cl=client, nodegroup="rack2")] == \
        ["node2.example.com"]
    assert [n.name for n in cli.GetOnlineNodes(cl=client, nodegroup="g1")] == \
        ["node1.example.com"]
    with pytest.raises(errors.OpPrereqError, match="not known: nodeX") as err:
        cli.GetOnlineNodes(["node1", "nodeX"], cl=client)
    assert err.value.args[1] == errors.ECODE_NOENT


# --- gnt-cluster command / copyfile over SSH ------------------------------------------------

@pytest.fixture
def base_dir():
    path = tempfile.mkdtemp(prefix="gnc", dir="/tmp")
    yield path
    shutil.rmtree(path, ignore_errors=True)


class RootedRunner(ssh.SshRunner):
    """An SshRunner treating each node as a node root on this machine."""

    def __init__(self, roots: dict[str, str], **kwargs: Any) -> None:
        super().__init__(CLUSTER, **kwargs)
        self.roots = roots

    def Run(self, target, command):
        return super().Run(dataclasses.replace(target, root=self.roots[target.name]),
                           command)

    def CopyFile(self, target, filename):
        return super().CopyFile(
            dataclasses.replace(target, root=self.roots[target.name]), filename)


@pytest.fixture
def ssh_cluster(base_dir, monkeypatch):
    """The fake cluster reached over a real sshd; yields (client, roots)."""
    sshd = sshdhelpers.StartSshd(os.path.join(base_dir, "sshd"))
    try:
        # the nodes share the cluster's host key (Ganeti's HostKeyAlias)
        known = sshd.KnownHosts(os.path.join(base_dir, "known_hosts"), CLUSTER)
        cl = NodeClient(_Nodes(sshd.port))
        monkeypatch.setattr(cli, "GetClient", lambda address=None: cl)
        roots = {}
        for row in cl.rows:
            roots[row["name"]] = os.path.join(base_dir, row["name"])
            os.makedirs(roots[row["name"]])
        runner = RootedRunner(roots, known_hosts_file=known, key_file=sshd.user_key,
                              connect_timeout=10)
        created = []

        def _GetRunner(cluster_name):
            created.append(cluster_name)
            return runner

        monkeypatch.setattr(gnt_cluster, "_GetRunner", _GetRunner)
        yield cl, roots
        assert set(created) == {CLUSTER}
    finally:
        sshd.Stop()


def _Opts(**kwargs):
    values = {"nodes": [], "nodegroup": None, "show_machine_names": False,
              "failure_only": False, "use_replication_network": False}
    values.update(kwargs)
    return SimpleNamespace(**values)


def test_command_over_ssh(ssh_cluster, capsys):
    cl, roots = ssh_cluster
    # node2's primary IP has no sshd: the master is reached, node2 fails
    code = gnt_cluster.RunClusterCommand(_Opts(), ["echo", "$GANETI_HOSTNAME;", "exit", "0"])
    out = capsys.readouterr().out
    assert code == constants.EXIT_FAILURE
    blocks = out.split("------------------------------------------------\n")[1:]
    assert blocks[0].startswith("node: node2.example.com\nCannot connect by SSH"
                                " to root@127.0.0.2")
    assert blocks[0].endswith("return code = 255\n")
    # the master comes last, and its command ran as the (virtual) node
    assert blocks[1] == "node: node1.example.com\nnode1.example.com\nreturn code = 0\n"
    # both reachable through the replication address: all succeed
    for row in cl.rows:
        row["pip"] = row["sip"]
    assert gnt_cluster.RunClusterCommand(_Opts(), ["echo $GANETI_HOSTNAME"]) == 0
    out = capsys.readouterr().out
    assert out.index("node: node2.example.com\nnode2.example.com\n") < \
        out.index("node: node1.example.com\nnode1.example.com\n")
    assert "node3" not in out


def test_command_options(ssh_cluster, capsys):
    cl, roots = ssh_cluster
    for row in cl.rows:
        row["pip"] = row["sip"]
    # -M: the node's name before every line
    assert gnt_cluster.RunClusterCommand(_Opts(nodes=["node1"], show_machine_names=True),
                                         ["echo a; echo b"]) == 0
    assert capsys.readouterr().out == (
        "------------------------------------------------\n"
        "node1.example.com: a\nnode1.example.com: b\nreturn code = 0\n")
    # --failure-only hides the nodes where the command succeeded
    code = gnt_cluster.RunClusterCommand(
        _Opts(failure_only=True),
        ['test "$GANETI_HOSTNAME" = node1.example.com || { echo bad; exit 5; }'])
    out = capsys.readouterr().out
    assert code == constants.EXIT_FAILURE
    assert out == ("------------------------------------------------\n"
                   "node: node2.example.com\nbad\nreturn code = 5\n")
    # -g: only that group's nodes
    gnt_cluster.RunClusterCommand(_Opts(nodegroup="rack2"), ["true"])
    out = capsys.readouterr().out
    assert "node2.example.com" in out and "node1.example.com" not in out


def test_copyfile_over_ssh(ssh_cluster, base_dir, capsys):
    cl, roots = ssh_cluster
    src = os.path.join(base_dir, "payload.txt")
    utils.WriteFile(src, data="payload\n", mode=0o640)
    for root in roots.values():
        os.makedirs(root + base_dir)
    # over the primary network node2 is unreachable
    assert gnt_cluster.ClusterCopyFile(_Opts(), [src]) == constants.EXIT_FAILURE
    err = capsys.readouterr().err
    assert f"Copy of file {src} to node node2.example.com:" in err
    assert "127.0.0.2" in err
    assert not os.path.exists(roots["node2.example.com"] + src)
    # over the replication network it works; the master and the offline node
    # get nothing
    assert gnt_cluster.ClusterCopyFile(_Opts(use_replication_network=True), [src]) == 0
    assert utils.ReadFile(roots["node2.example.com"] + src) == "payload\n"
    assert os.stat(roots["node2.example.com"] + src).st_mode & 0o777 == 0o640
    assert not os.path.exists(roots["node1.example.com"] + src)
    assert not os.path.exists(roots["node3.example.com"] + src)
    with pytest.raises(errors.OpPrereqError, match="No such filename"):
        gnt_cluster.ClusterCopyFile(_Opts(), [os.path.join(base_dir, "nope")])


def test_command_table_options():
    _, _, opts, _, _ = gnt_cluster.commands["command"]
    flags = {flag for opt in opts for flag in opt.flags}
    assert {"-n", "-g", "-M", "--failure-only"} <= flags
    _, _, opts, _, _ = gnt_cluster.commands["copyfile"]
    flags = {flag for opt in opts for flag in opt.flags}
    assert {"-n", "-g", "--use-replication-network"} <= flags


# --- gnt-node restricted-command -------------------------------------------------------------

@pytest.fixture
def submitted(monkeypatch):
    ops = []

    def _Submit(op, opts, cl=None):
        ops.append(op)
        return [(True, f"hello from {name}\nsecond line\n") if "1" in name
                else (False, f"Command '{op.command}' on node '{name}' failed: refused")
                for name in op.nodes]

    monkeypatch.setattr(cli, "SubmitOrSend", _Submit)
    return ops


def _NodeOpts(**kwargs):
    values = {"nodegroup": None, "show_machine_names": False, "do_locking": False}
    values.update(kwargs)
    return SimpleNamespace(**values)


def test_restricted_command(client, submitted, capsys):
    code = gnt_node.RestrictedCommand(_NodeOpts(), ["fixit", "node1", "node2"])
    assert code == constants.EXIT_FAILURE
    (op,) = submitted
    assert isinstance(op, opcodes.OpRestrictedCommand)
    assert (op.command, op.nodes, op.use_locking) == \
        ("fixit", ["node1.example.com", "node2.example.com"], False)
    assert capsys.readouterr().out == (
        "------------------------------------------------\n"
        "Node: node1.example.com\nhello from node1.example.com\nsecond line\n\n"
        "------------------------------------------------\n"
        "Command 'fixit' on node 'node2.example.com' failed: refused\n")


def test_restricted_command_group_and_machine_names(client, submitted, capsys):
    code = gnt_node.RestrictedCommand(
        _NodeOpts(nodegroup="default", show_machine_names=True, do_locking=True),
        ["fixit"])
    assert code == constants.EXIT_SUCCESS
    assert submitted[0].nodes == ["node1.example.com"] and submitted[0].use_locking
    assert capsys.readouterr().out == (
        "------------------------------------------------\n"
        "node1.example.com: hello from node1.example.com\n"
        "node1.example.com: second line\n")


def test_restricted_command_needs_nodes(client, submitted):
    with pytest.raises(errors.OpPrereqError, match="Node group or node names"):
        gnt_node.RestrictedCommand(_NodeOpts(), ["fixit"])
    assert submitted == []
    _, args_def, opts, _, _ = gnt_node.commands["restricted-command"]
    flags = {flag for opt in opts for flag in opt.flags}
    assert {"-M", "--sync", "-g", "--submit"} <= flags
