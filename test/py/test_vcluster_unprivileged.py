"""Unit tests of what lets ganeti.vcluster run without root: the routed
default NICs when the bridge is missing, the stable RAPI password, the
directory ownership check and the privileged-port message."""

from __future__ import annotations

import errno
import json
import os
import stat

import pytest

from ganeti import constants, objects, vcluster
from ganeti.client import gnt_cluster
from ganeti.cmdlib import cluster as cluster_params


# --- RAPI password ------------------------------------------------------------------


def _State(tmp_path) -> vcluster.State:
    return vcluster.State(directory=str(tmp_path), net="127.0.9", cluster_name="c.test",
                          master_ip="127.0.9.254", noded_port=1811, confd_port=1814,
                          nodes=vcluster.PlanNodes(str(tmp_path), 1, "127.0.9"))


def _Mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_rapi_password_made_once_and_kept(tmp_path):
    path = tmp_path / vcluster.RAPI_PASSWORD_FILE
    first = vcluster.RapiPassword(str(tmp_path))
    assert len(first) >= 16
    assert path.read_text() == first + "\n"
    assert _Mode(path) == 0o600
    assert vcluster.RapiPassword(str(tmp_path)) == first
    # A widened mode is narrowed again, the password kept
    os.chmod(path, 0o644)
    assert vcluster.RapiPassword(str(tmp_path)) == first
    assert _Mode(path) == 0o600
    # An empty file gets a new password
    path.write_text("\n")
    second = vcluster.RapiPassword(str(tmp_path))
    assert second and second != first
    assert path.read_text() == second + "\n"


def test_rapi_password_unreadable(tmp_path):
    (tmp_path / vcluster.RAPI_PASSWORD_FILE).mkdir()
    with pytest.raises(vcluster.VclusterError, match="Cannot read the RAPI password file"):
        vcluster.RapiPassword(str(tmp_path))


class _FakeRunner:
    def __init__(self):
        self.commands = []

    def Run(self, node, script, args, timeout, check=True):
        self.commands.append([script, *args])
        password_file = args[args.index("--password-file") + 1]
        with open(password_file, encoding="ascii") as fd:
            self.password = fd.read().strip()


def test_setup_rapi_gives_the_same_password_every_time(tmp_path, monkeypatch):
    monkeypatch.setattr(vcluster, "_EnsureDaemon", lambda *args: None)
    state = _State(tmp_path)
    runner = _FakeRunner()
    first = vcluster._SetupRapi(runner, state, state.nodes[0])
    second = vcluster._SetupRapi(runner, state, state.nodes[0])
    assert first.password == second.password == runner.password
    assert runner.commands[0] == runner.commands[1] == [
        "gnt-cluster", "rapi-user", "add", "--password-file",
        str(tmp_path / vcluster.RAPI_PASSWORD_FILE), vcluster.RAPI_USER]


# --- default NIC parameters -------------------------------------------------------------


def _InitNicParams(args: list[str]) -> dict[str, str] | None:
    if "--nic-parameters" not in args:
        return None
    return gnt_cluster.ParseKeyVal(args[args.index("--nic-parameters") + 1])


def test_routed_default_nics_without_bridge(tmp_path, monkeypatch):
    monkeypatch.setattr(vcluster, "EnsureDefaultBridge", lambda feedback, bridge: False)
    messages: list[str] = []
    params = vcluster.DefaultNicParams("xen-br0", messages.append)
    assert params == {constants.NIC_MODE: constants.NIC_MODE_ROUTED,
                      constants.NIC_LINK: ""}
    assert "routed" in messages[0] and "--net 0:ip=" in messages[0]
    # What init gets passes the cluster's checks and makes valid filled NICs
    state = _State(tmp_path)
    given = _InitNicParams(vcluster._InitArgs(state, state.nodes[0], params))
    assert given == {"link": "", "mode": "routed"}
    filled = {**constants.NICC_DEFAULTS, **cluster_params.CheckNicParams(given)}
    objects.NIC.CheckParameterSyntax(filled)
    assert filled[constants.NIC_MODE] == constants.NIC_MODE_ROUTED


@pytest.mark.parametrize("bridge,expected", [
    (constants.DEFAULT_BRIDGE, None),
    ("br0", {"link": "br0"}),
])
def test_bridged_default_nics_with_bridge(tmp_path, monkeypatch, bridge, expected):
    monkeypatch.setattr(vcluster, "EnsureDefaultBridge", lambda feedback, bridge: True)
    messages: list[str] = []
    params = vcluster.DefaultNicParams(bridge, messages.append)
    assert params == {constants.NIC_MODE: constants.NIC_MODE_BRIDGED,
                      constants.NIC_LINK: bridge}
    assert not messages
    state = _State(tmp_path)
    assert _InitNicParams(vcluster._InitArgs(state, state.nodes[0], params)) == expected


@pytest.mark.parametrize("name", ["", "a" * 16, "a/b", "a b", "..", "a,b", "a=b"])
def test_bad_bridge_name(name, tmp_path):
    with pytest.raises(vcluster.VclusterError, match="not a network interface name"):
        vcluster.CheckBridgeName(name)
    with pytest.raises(vcluster.VclusterError, match="not a network interface name"):
        vcluster.Setup(str(tmp_path / "c"), 1, net="127.0.9", bridge=name,
                       feedback=lambda _: None)
    assert not (tmp_path / "c").exists()


def test_cluster_nic_params_from_the_master_config(tmp_path):
    node = vcluster.Node("n1", "127.0.9.1", str(tmp_path / "n1"))
    assert vcluster._ClusterNicParams(node) == constants.NICC_DEFAULTS
    path = tmp_path / "n1" / constants.DEFAULT_DATA_DIR.lstrip("/") / \
        constants.CLUSTER_CONF_FILE_NAME
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"cluster": {"nicparams": {"default": {
        "mode": "routed", "link": ""}}}}))
    assert vcluster._ClusterNicParams(node) == {**constants.NICC_DEFAULTS,
                                                "mode": "routed", "link": ""}


# --- directory and ports ----------------------------------------------------------------


def test_check_directory(tmp_path, monkeypatch):
    vcluster.CheckDirectory(str(tmp_path / "new"))
    vcluster.CheckDirectory(str(tmp_path))
    (tmp_path / "file").write_text("")
    with pytest.raises(vcluster.VclusterError, match="is not a directory"):
        vcluster.CheckDirectory(str(tmp_path / "file"))
    owner = os.stat(tmp_path).st_uid
    monkeypatch.setattr(vcluster.os, "geteuid", lambda: owner + 1)
    with pytest.raises(vcluster.VclusterError,
                       match=f"belongs to uid {owner}, not to you \\(uid {owner + 1}\\)"):
        vcluster.CheckDirectory(str(tmp_path))
    with pytest.raises(vcluster.VclusterError, match="belongs to uid"):
        vcluster.Setup(str(tmp_path), 1, net="127.0.9", feedback=lambda _: None)
    assert not (tmp_path / vcluster.STATE_FILE).exists()


class _PrivilegedPortSocket:
    """A socket whose bind refuses ports below 1024 as the kernel does for
    a user without CAP_NET_BIND_SERVICE."""

    def __init__(self, *args):
        pass

    def setsockopt(self, *args):
        pass

    def bind(self, address):
        if 0 < address[1] < 1024:
            raise PermissionError(errno.EACCES, "Permission denied")

    def close(self):
        pass


def test_privileged_port_message(monkeypatch):
    monkeypatch.setattr(vcluster.socket, "socket", _PrivilegedPortSocket)
    node = vcluster.Node("n1", "127.0.9.1", "/tmp/x/n1")
    vcluster.CheckAddresses([node], 1811, 1814)
    with pytest.raises(vcluster.VclusterError,
                       match="Port tcp 127.0.9.1:811 needed by n1 is a privileged port"
                             " that only root may bind"):
        vcluster.CheckAddresses([node], 811, 1814)


def _WriteNicParams(node: vcluster.Node, params: dict[str, str]) -> None:
    path = os.path.join(node.root, constants.DEFAULT_DATA_DIR.lstrip("/"),
                        constants.CLUSTER_CONF_FILE_NAME)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as fd:
        json.dump({"cluster": {"nicparams": {"default": params}}}, fd)


@pytest.mark.parametrize("params,exists,ensured,warned", [
    ({"mode": "routed", "link": ""}, False, [], False),
    ({"mode": "bridged", "link": "br7"}, True, ["br7"], False),
    ({"mode": "bridged", "link": "br7"}, False, ["br7"], True),
    ({"mode": "bridged", "link": "a/b"}, False, [], True),
])
def test_restart_ensures_only_a_bridge_in_use(tmp_path, monkeypatch, params, exists,
                                              ensured, warned):
    calls: list[str] = []

    def _Ensure(feedback, bridge):
        calls.append(bridge)
        return exists
    monkeypatch.setattr(vcluster, "EnsureDefaultBridge", _Ensure)
    node = vcluster.Node("n1", "127.0.9.1", str(tmp_path / "n1"))
    _WriteNicParams(node, params)
    messages: list[str] = []
    vcluster._CheckRestartBridge(node, messages.append)
    assert calls == ensured
    assert any("WARNING" in m for m in messages) == warned, messages
