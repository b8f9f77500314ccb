"""Unit tests of ganeti.vcluster: planning, checks, env file, stopping by PID."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from ganeti import constants, vcluster


def test_plan_nodes(tmp_path):
    nodes = vcluster.PlanNodes(str(tmp_path), 3, "127.0.9")
    assert [(n.name, n.ip) for n in nodes] == [
        ("node1.vcluster.test", "127.0.9.1"), ("node2.vcluster.test", "127.0.9.2"),
        ("node3.vcluster.test", "127.0.9.3")]
    assert nodes[1].root == str(tmp_path / "node2.vcluster.test")
    custom = vcluster.PlanNodes("/x", 2, "127.000.1", name_format="n{i}.t")
    assert [(n.name, n.ip) for n in custom] == [("n1.t", "127.0.1.1"), ("n2.t", "127.0.1.2")]


@pytest.mark.parametrize("count,net,fmt,message", [
    (0, "127.0.1", "node{i}", "between 1 and 253, got 0"),
    (254, "127.0.1", "node{i}", "between 1 and 253, got 254"),
    (3, "127.0", "node{i}", "Network prefix '127.0'"),
    (3, "127.0.300", "node{i}", "Network prefix '127.0.300'"),
    (3, "a.b.c", "node{i}", "Network prefix 'a.b.c'"),
    (3, "127.0.1", "node", "must contain '{i}'"),
    (3, "127.0.1", "a/{i}", "cannot be a directory name"),
])
def test_plan_nodes_bad_input(count, net, fmt, message):
    with pytest.raises(vcluster.VclusterError, match=message.replace("{", r"\{")
                       .replace("(", r"\(").replace("}", r"\}")):
        vcluster.PlanNodes("/tmp/x", count, net, fmt)


def test_check_addresses():
    node = vcluster.Node("n1", "127.0.213.1", "/tmp/x/n1")
    vcluster.CheckAddresses([node], 0, 0)
    with pytest.raises(vcluster.VclusterError, match="Address 10.255.255.1 of n2 is not local"):
        vcluster.CheckAddresses([vcluster.Node("n2", "10.255.255.1", "/x")], 1811, 1814)
    busy = socket.socket()
    busy.bind(("127.0.213.1", 0))
    busy.listen()
    try:
        port = busy.getsockname()[1]
        with pytest.raises(vcluster.VclusterError,
                           match=f"Port tcp 127.0.213.1:{port} needed by n1 is in use"):
            vcluster.CheckAddresses([node], port, 0)
    finally:
        busy.close()


def _State(tmp_path) -> vcluster.State:
    return vcluster.State(directory=str(tmp_path), net="127.0.9", cluster_name="c.test",
                          master_ip="127.0.9.254", noded_port=1811, confd_port=1814,
                          nodes=vcluster.PlanNodes(str(tmp_path), 2, "127.0.9"))


def test_state_roundtrip_and_env(tmp_path):
    state = _State(tmp_path)
    assert vcluster.State.Load(str(tmp_path)) is None
    state.Save()
    loaded = vcluster.State.Load(str(tmp_path))
    assert loaded == state
    (tmp_path / vcluster.STATE_FILE).write_text("{broken")
    with pytest.raises(vcluster.VclusterError, match="Cannot read the virtual cluster state"):
        vcluster.State.Load(str(tmp_path))

    tools = vcluster.Tools("/repo", "/repo/.venv/bin/python3")
    text = vcluster.FormatEnv(state, state.nodes[0], tools, state.nodes)
    assert f"export GANETI_ROOTDIR={state.nodes[0].root}\n" in text
    assert "export GANETI_HOSTNAME=node1.vcluster.test\n" in text
    assert ("export PATH=/repo/scripts:/repo/daemons:/repo/tools:/repo/tools/drbd-standin:"
            "/repo/.venv/bin:\"$PATH\"") in text
    assert "export CONFD_PORT=1814\n" in text
    assert "export CONFD_PEERS='127.0.9.1 127.0.9.2'\n" in text
    # The file is valid shell
    env_file = tmp_path / "env"
    env_file.write_text(text)
    out = subprocess.run(["sh", "-c", f". {env_file} && echo $CONFD_PEERS"],
                         capture_output=True, text=True, check=True).stdout
    assert out.strip() == "127.0.9.1 127.0.9.2"


def _Sleeper(root: str) -> subprocess.Popen:
    env = dict(os.environ, **{constants.GANETI_ROOTDIR_ENV: root})
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"], env=env)


def test_stop_daemons_by_pid(tmp_path):
    state = _State(tmp_path / "c")
    node = state.nodes[1]
    run_dir = os.path.join(node.root, constants.DEFAULT_RUN_DIR.lstrip("/"))
    os.makedirs(run_dir)
    ours = _Sleeper(node.root)
    stranger = _Sleeper(str(tmp_path / "elsewhere" / "n1"))
    try:
        with open(os.path.join(run_dir, "ganeti-noded.pid"), "w") as fd:
            fd.write(f"{ours.pid}\n")
        # A stale pid file naming a process outside the cluster is ignored
        with open(os.path.join(run_dir, "ganeti-confd.pid"), "w") as fd:
            fd.write(f"{stranger.pid}\n")
        assert vcluster.RunningDaemons(state) == {(node.name, "ganeti-noded"): ours.pid}
        assert not vcluster.IsRunning(state)
        stopped = vcluster.StopDaemons(state.directory, state, timeout=10)
        assert stopped == [ours.pid]
        assert ours.wait(10) == -15
        assert stranger.poll() is None
        assert vcluster.StopDaemons(state.directory, state, timeout=1) == []
    finally:
        for proc in (ours, stranger):
            proc.kill()
            proc.wait()


def test_stop_without_cluster(tmp_path, capsys):
    assert vcluster.Stop(str(tmp_path)) == []
    assert "No virtual cluster" in capsys.readouterr().out


def test_setup_refuses_foreign_directory(tmp_path):
    (tmp_path / "mine").write_text("data")
    with pytest.raises(vcluster.VclusterError, match="is not empty and holds no virtual"):
        vcluster.Setup(str(tmp_path), 3, net="127.0.9", feedback=lambda _: None)
    assert (tmp_path / "mine").read_text() == "data"
