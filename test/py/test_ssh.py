"""ganeti.ssh: commands and copies over a real sshd, and in a virtual cluster.

The SSH tests start Debian's sshd on a loopback port (``sshdhelpers``);
the node reached through it is a node root on this machine (``root`` of
the target), so that a copy lands somewhere else than its source.
"""

from __future__ import annotations

import os
import shutil
import stat
import sys
import tempfile

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import sshdhelpers  # noqa: E402

from ganeti import errors, pathutils, ssh, utils  # noqa: E402

pytestmark = pytest.mark.timeout(120)

CLUSTER = "cluster.example.com"
NODE = "node2.example.com"


@pytest.fixture
def base_dir():
    path = tempfile.mkdtemp(prefix="gsh", dir="/tmp")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def sshd(base_dir):
    daemon = sshdhelpers.StartSshd(os.path.join(base_dir, "sshd"))
    yield daemon
    daemon.Stop()


def _Runner(sshd, known_hosts):
    return ssh.SshRunner(CLUSTER, known_hosts_file=known_hosts, key_file=sshd.user_key,
                         connect_timeout=10)


def _Target(sshd, root=""):
    return ssh.NodeTarget(NODE, "127.0.0.1", sshd.port, root=root)


# --- Over SSH --------------------------------------------------------------------------

def test_run_returns_output_and_exit_code(sshd, base_dir):
    known = sshd.KnownHosts(os.path.join(base_dir, "known_hosts"))
    result = _Runner(sshd, known).Run(_Target(sshd), "echo out; echo err >&2; id -u; exit 3")
    assert result.exit_code == 3 and result.failed
    # stdout and stderr interleaved as they arrive
    assert sorted(result.output.splitlines()) == ["0", "err", "out"]
    assert not _Runner(sshd, known).Run(_Target(sshd), "true").failed


@pytest.mark.parametrize("alias", [CLUSTER, NODE])
def test_host_key_known_under_cluster_or_node_name(sshd, base_dir, alias):
    # Ganeti's HostKeyAlias: the nodes share the cluster's host key
    known = sshd.KnownHosts(os.path.join(base_dir, "known_hosts"), alias)
    result = _Runner(sshd, known).Run(_Target(sshd), "echo ok")
    assert (result.exit_code, result.output) == (0, "ok\n")


def test_unknown_host_key_is_refused(sshd, base_dir):
    known = os.path.join(base_dir, "known_hosts")
    utils.WriteFile(known, data=sshd.HostKeyLine("other.example.com"))
    result = _Runner(sshd, known).Run(_Target(sshd), "echo ran")
    assert result.exit_code == ssh.EXIT_SSH_ERROR
    assert "not found in known_hosts" in result.output and "ran" not in result.output


def test_different_host_key_is_refused(sshd, base_dir):
    other = os.path.join(base_dir, "other_key")
    sshdhelpers.KeyGen(other)
    with open(other + ".pub", encoding="ascii") as fd:
        kind, key = fd.read().split()[:2]
    known = os.path.join(base_dir, "known_hosts")
    utils.WriteFile(known, data=f"[127.0.0.1]:{sshd.port} {kind} {key}\n")
    result = _Runner(sshd, known).Run(_Target(sshd), "echo ran")
    assert result.exit_code == ssh.EXIT_SSH_ERROR
    assert "differs" in result.output
    with pytest.raises(errors.OpExecError, match="differs"):
        _Runner(sshd, known).CopyFile(_Target(sshd), known)


def test_unreachable_node(base_dir):
    port = sshdhelpers.FreePort("127.0.0.1")
    runner = ssh.SshRunner(CLUSTER, known_hosts_file=os.path.join(base_dir, "none"),
                           connect_timeout=5)
    result = runner.Run(ssh.NodeTarget(NODE, "127.0.0.1", port), "true")
    assert result.exit_code == ssh.EXIT_SSH_ERROR
    assert "Cannot connect by SSH to root@127.0.0.1" in result.output


def test_run_as_virtual_node_over_ssh(sshd, base_dir):
    known = sshd.KnownHosts(os.path.join(base_dir, "known_hosts"))
    root = os.path.join(base_dir, "remote", NODE)
    os.makedirs(root)
    result = _Runner(sshd, known).Run(_Target(sshd, root),
                                      "echo $GANETI_ROOTDIR $GANETI_HOSTNAME")
    assert result.output == f"{root} {NODE}\n"


def test_copy_file_keeps_contents_mode_and_times(sshd, base_dir):
    known = sshd.KnownHosts(os.path.join(base_dir, "known_hosts"))
    src = os.path.join(base_dir, "src", "file.txt")
    os.makedirs(os.path.dirname(src))
    utils.WriteFile(src, data=b"payload\n", mode=0o640, atime=1000000.0,
                    mtime=2000000.0)
    root = os.path.join(base_dir, "remote", NODE)
    dest = root + src
    os.makedirs(os.path.dirname(dest))
    _Runner(sshd, known).CopyFile(_Target(sshd, root), src)
    with open(dest, "rb") as fd:
        assert fd.read() == b"payload\n"
    st = os.stat(dest)
    assert stat.S_IMODE(st.st_mode) == 0o640 and st.st_mtime == 2000000.0
    assert os.listdir(os.path.dirname(dest)) == ["file.txt"]  # no temporary left
    # a file that changed is replaced
    utils.WriteFile(src, data=b"new\n", mode=0o600)
    _Runner(sshd, known).CopyFile(_Target(sshd, root), src)
    with open(dest, "rb") as fd:
        assert fd.read() == b"new\n"
    assert stat.S_IMODE(os.stat(dest).st_mode) == 0o600


def test_copy_file_to_missing_directory_fails(sshd, base_dir):
    known = sshd.KnownHosts(os.path.join(base_dir, "known_hosts"))
    root = os.path.join(base_dir, "remote", "empty")
    os.makedirs(root)
    with pytest.raises(errors.OpExecError, match=f"Cannot copy {known} to {NODE}"):
        _Runner(sshd, known).CopyFile(_Target(sshd, root), known)
    assert os.listdir(root) == []


# --- In a virtual cluster ----------------------------------------------------------------

@pytest.fixture
def vcluster(base_dir):
    """This process as node1 of a virtual cluster with a node2 beside it."""
    for name in ("node1", "node2"):
        os.makedirs(os.path.join(base_dir, name, "etc"))
    pathutils._SetRoot(os.path.join(base_dir, "node1"), "node1")
    try:
        yield base_dir
    finally:
        pathutils.Reload()


def test_get_runner():
    assert isinstance(ssh.GetRunner(CLUSTER), ssh.SshRunner)


def test_virtual_run_acts_as_the_node(vcluster):
    assert isinstance(ssh.GetRunner(CLUSTER), ssh.VirtualClusterRunner)
    target = ssh.NodeTarget("node2", "127.0.1.2")
    result = ssh.VirtualClusterRunner().Run(
        target, "echo $GANETI_HOSTNAME $GANETI_ROOTDIR; pwd; exit 4")
    node2 = os.path.join(vcluster, "node2")
    assert result == ssh.CommandResult(4, f"node2 {node2}\n{node2}\n")
    missing = ssh.VirtualClusterRunner().Run(ssh.NodeTarget("node9", "x"), "true")
    assert missing.exit_code == ssh.EXIT_SSH_ERROR and "node9" in missing.output


def test_virtual_copy_goes_into_the_node_root(vcluster):
    src = os.path.join(vcluster, "node1", "etc", "motd")
    utils.WriteFile(src, data="hello\n", mode=0o644, atime=10.0, mtime=20.0)
    runner = ssh.VirtualClusterRunner()
    runner.CopyFile(ssh.NodeTarget("node2", "127.0.1.2"), src)
    dest = os.path.join(vcluster, "node2", "etc", "motd")
    assert utils.ReadFile(dest) == "hello\n"
    assert os.stat(dest).st_mtime == 20.0
    assert stat.S_IMODE(os.stat(dest).st_mode) == 0o644
    outside = os.path.join(vcluster, "outside.txt")
    utils.WriteFile(outside, data="x")
    with pytest.raises(errors.OpPrereqError, match="only files below this node's root"):
        runner.CopyFile(ssh.NodeTarget("node2", "127.0.1.2"), outside)
    deep = os.path.join(vcluster, "node1", "etc", "sub")
    os.makedirs(deep)
    utils.WriteFile(os.path.join(deep, "f"), data="x")
    with pytest.raises(errors.OpExecError, match="does not exist"):
        runner.CopyFile(ssh.NodeTarget("node2", "127.0.1.2"), os.path.join(deep, "f"))
