"""Tests for the master IP setup script and the node side that runs it."""

from __future__ import annotations

import os
import subprocess

import pytest

from ganeti import constants, pathutils
from ganeti.backend import RPCFail
from ganeti.backend import cluster as backend_cluster

SCRIPT = pathutils.GetShippedTool("master-ip-setup")

PARAMS = {"uuid": "u1", "ip": "127.0.0.254", "netmask": 32, "netdev": "lo",
          "ip_family": constants.IP4_ADDRESS_FAMILY}


def _RunScript(action, **env):
    full = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    full.update(env)
    return subprocess.run([SCRIPT, action], env=full, capture_output=True, text=True)


def _Env(**overrides):
    env = {"MASTER_NETDEV": "lo", "MASTER_IP": "127.0.0.254", "MASTER_NETMASK": "32",
           "CLUSTER_IP_VERSION": "4"}
    env.update(overrides)
    return env


@pytest.mark.parametrize("action", ["start", "stop"])
def test_loopback_address_needs_nothing(action):
    result = _RunScript(action, **_Env())
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("env,message", [
    (_Env(MASTER_IP=""), "MASTER_IP is not set"),
    (_Env(MASTER_IP="1.2.3.4;reboot"), "invalid address"),
    (_Env(MASTER_NETMASK="x"), "invalid netmask"),
])
def test_bad_environment_is_refused(env, message):
    result = _RunScript("start", **env)
    assert result.returncode != 0 and message in result.stderr


def test_bad_action_is_refused():
    result = _RunScript("restart", **_Env(MASTER_IP="192.0.2.1", MASTER_NETDEV="nonexistent0"))
    assert result.returncode != 0 and "usage" in result.stderr


def test_stop_of_absent_address_succeeds():
    # The address is on no device called so: nothing to take down
    result = _RunScript("stop", **_Env(MASTER_IP="192.0.2.1", MASTER_NETDEV="nonexistent0"))
    assert result.returncode == 0, result.stderr


def test_backend_runs_external_script_with_environment(tmp_path, monkeypatch):
    record = tmp_path / "record"
    script = tmp_path / "master-ip-setup"
    script.write_text("#!/bin/sh\necho \"$1 $MASTER_NETDEV $MASTER_IP $MASTER_NETMASK"
                      f" $CLUSTER_IP_VERSION\" >> {record}\n")
    script.chmod(0o755)
    monkeypatch.setattr(pathutils, "EXTERNAL_MASTER_SETUP_SCRIPT", str(script))
    params = dict(PARAMS, ip="2001:db8::1", netmask=64, netdev="eth0",
                  ip_family=constants.IP6_ADDRESS_FAMILY)
    backend_cluster.ActivateMasterIp(params, True)
    backend_cluster.DeactivateMasterIp(params, True)
    assert record.read_text().splitlines() == ["start eth0 2001:db8::1 64 6",
                                               "stop eth0 2001:db8::1 64 6"]


def test_backend_reports_script_failure(tmp_path, monkeypatch):
    script = tmp_path / "master-ip-setup"
    script.write_text("#!/bin/sh\necho 'no such device' >&2\nexit 3\n")
    script.chmod(0o755)
    monkeypatch.setattr(pathutils, "EXTERNAL_MASTER_SETUP_SCRIPT", str(script))
    with pytest.raises(RPCFail, match="Failed to start the master IP.*no such device"):
        backend_cluster.ActivateMasterIp(PARAMS, True)
    # Our own script: nothing to do for a loopback address
    backend_cluster.ActivateMasterIp(PARAMS, False)
