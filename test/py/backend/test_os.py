"""backend.os: OS definitions, their environment and their scripts."""

from __future__ import annotations

import os
import sys

import pytest

from ganeti import constants, objects, pathutils
from ganeti.backend import RPCFail
from ganeti.backend import os as bos

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from osdefs import InstallNoop, MakeOs  # noqa: E402


def test_noop_os(node_root):
    path = InstallNoop(node_root)
    inst_os = bos.OSFromDisk("noop+small")
    assert inst_os.name == "noop" and inst_os.path == path
    assert inst_os.api_versions == [20, 15, 10]
    assert inst_os.supported_variants == ["default", "small"]
    assert inst_os.supported_parameters == [
        ["message", "A line of text written into the image (at most 200 characters)"]]
    assert inst_os.create_script == os.path.join(path, "create")
    assert inst_os.create_script_untrusted is None
    assert bos.OSGet("noop")["verify_script"] == os.path.join(path, "verify")
    assert objects.OS.FromDict(bos.OSGet("noop")).name == "noop"


def test_not_found(node_root):
    with pytest.raises(RPCFail, match="OS 'nosuch' not found in the OS search path"):
        bos.OSFromDisk("nosuch+default")
    with pytest.raises(RPCFail, match="Invalid OS name '../etc'"):
        bos.OSFromDisk("../etc")


@pytest.mark.parametrize("kwargs,match", [
    ({"api": None}, "'ganeti_api_version' not found"),
    ({"api": "twenty\n"}, "must hold integers.*'twenty'"),
    ({"api": "5\n"}, r"API version mismatch.*found \[5\]"),
    ({"scripts": {"rename": None}}, "Script 'rename' not found"),
    ({"scripts": {"create": None}}, "Neither 'create' nor 'create_untrusted'"),
    ({"scripts": {"verify": None}}, "Script 'verify' not found"),
    ({"mode": 0o644}, "is not executable"),
    ({"parameters": None}, "'parameters.list' not found"),
])
def test_invalid_definitions(node_root, kwargs, match):
    MakeOs(node_root, "broken", **kwargs)
    with pytest.raises(RPCFail, match=match):
        bos.OSFromDisk("broken")


def test_old_api_versions(node_root):
    # API 10: no verify script, no variants, no parameters needed
    MakeOs(node_root, "old", scripts={"verify": None}, api="10\n", variants=None,
           parameters=None)
    inst_os = bos.OSFromDisk("old")
    assert inst_os.verify_script is None and inst_os.supported_variants == []
    bos.CheckOSVariant(inst_os, "old+whatever")  # no variants, nothing to check
    env = bos.OSCoreEnv("old", inst_os, {"p": "1"})
    assert env["OS_API_VERSION"] == "10"
    assert "OS_VARIANT" not in env and "OSP_P" not in env
    assert bos.ValidateOS(True, "old", ["parameters"], {}, False) is True


def test_diagnose(node_root):
    InstallNoop(node_root)
    MakeOs(node_root, "broken", api="5\n")
    result = {row[0]: row for row in bos.DiagnoseOS()}
    name, path, status, diag, variants, params, api, trusted, version = result["noop"]
    assert (status, diag, variants, api, trusted, version) == \
        (True, "", ["default", "small"], [20, 15, 10], True, "1.0")
    assert params[0][0] == "message"
    assert result["broken"][2] is False and "API version mismatch" in result["broken"][3]
    assert bos.DiagnoseOS([str(node_root) + "/missing"]) == []


def test_variants(node_root):
    InstallNoop(node_root)
    inst_os = bos.OSFromDisk("noop")
    bos.CheckOSVariant(inst_os, "noop+small")
    with pytest.raises(RPCFail, match="Unsupported OS variant 'huge'.*default, small"):
        bos.CheckOSVariant(inst_os, "noop+huge")
    with pytest.raises(RPCFail, match="requires a variant.*noop\\+default"):
        bos.CheckOSVariant(inst_os, "noop")


def _Instance(**kwargs):
    disk = objects.Disk(dev_type=constants.DT_FILE, size=10, mode=constants.DISK_RDWR,
                        logical_id=(constants.FD_LOOP, "/srv/x/disk0"), uuid="d-uuid",
                        name="root")
    nic = objects.NIC(mac="aa:00:00:11:22:33", ip="192.0.2.10", uuid="n-uuid",
                      nicparams={constants.NIC_MODE: constants.NIC_MODE_BRIDGED,
                                 constants.NIC_LINK: "br0"},
                      netinfo={"name": "net1", "network": "192.0.2.0/24",
                               "tags": ["a", "b"]})
    values = dict(name="inst1.example.com", os="noop+small", hypervisor=constants.HT_FAKE,
                  hvparams={constants.HV_MIGRATION_MODE: "live"},
                  beparams={constants.BE_MAXMEM: 128}, osparams={"message": "hi"},
                  osparams_private={}, nics=[nic], disks=[disk])
    values.update(kwargs)
    return objects.Instance(**values)


def test_environment(node_root):
    InstallNoop(node_root)
    inst_os = bos.OSFromDisk("noop")
    env = bos.OSEnvironment(_Instance(), inst_os, debug=1, disk_paths=["/dev/x0"])
    expected = {
        "OS_API_VERSION": "20", "OS_NAME": "noop", "OS_VARIANT": "small",
        "INSTANCE_NAME": "inst1.example.com", "INSTANCE_OS": "noop+small",
        "HYPERVISOR": "fake", "DEBUG_LEVEL": "1", "OSP_MESSAGE": "hi",
        "DISK_COUNT": "1", "DISK_0_PATH": "/dev/x0", "DISK_0_ACCESS": "rw",
        "DISK_0_SIZE": "10", "DISK_0_UUID": "d-uuid", "DISK_0_NAME": "root",
        "DISK_0_BACKEND_TYPE": "file:loop",
        "NIC_COUNT": "1", "NIC_0_MAC": "aa:00:00:11:22:33", "NIC_0_IP": "192.0.2.10",
        "NIC_0_MODE": "bridged", "NIC_0_LINK": "br0", "NIC_0_BRIDGE": "br0",
        "NIC_0_UUID": "n-uuid", "NIC_0_NETWORK_NAME": "net1",
        "NIC_0_NETWORK_SUBNET": "192.0.2.0/24", "NIC_0_NETWORK_TAGS": "a b",
        "INSTANCE_BE_maxmem": "128", "INSTANCE_HV_migration_mode": "live",
        "PATH": constants.OS_SCRIPT_PATH,
    }
    assert env == expected
    # without a variant in the name, the first declared one is used
    env = bos.OSEnvironment(_Instance(os="noop", nics=[], disks=[]), inst_os)
    assert env["OS_VARIANT"] == "default" and env["DISK_COUNT"] == env["NIC_COUNT"] == "0"
    with pytest.raises(RPCFail, match="Invalid debug level 7"):
        bos.OSCoreEnv("noop", inst_os, {}, debug=7)


def test_validate(node_root):
    InstallNoop(node_root)
    assert bos.ValidateOS(True, "noop+default", ["parameters"], {"message": "ok"}, False)
    assert bos.ValidateOS(False, "missing", ["parameters"], {}, False) is False
    with pytest.raises(RPCFail, match="'missing' not found"):
        bos.ValidateOS(True, "missing", ["parameters"], {}, False)
    with pytest.raises(RPCFail, match="not supported by the OS noop: colour"):
        bos.ValidateOS(True, "noop+default", ["parameters"], {"colour": "red"}, False)
    with pytest.raises(RPCFail, match="OS validation script failed.*at most 200"):
        bos.ValidateOS(True, "noop+default", ["parameters"], {"message": "x" * 300}, False)
    with pytest.raises(RPCFail, match="Unsupported OS variant 'big'"):
        bos.ValidateOS(True, "noop+big", [], {}, False)
    assert bos.ValidateOS(True, "noop+big", [], {}, True)
    with pytest.raises(RPCFail, match="Unknown checks required for OS noop\\+default: disks"):
        bos.ValidateOS(True, "noop+default", ["disks"], {}, False)


def test_script_failure_quotes_log(node_root):
    body = "#!/bin/sh\n" + "".join(f"echo line{i}\n" for i in range(30)) + \
        "echo oops >&2\nexit 3\n"
    MakeOs(node_root, "failing", scripts={"create": body})
    inst_os = bos.OSFromDisk("failing")
    with pytest.raises(RPCFail) as err:
        bos.RunOSScript("add", inst_os.create_script, "inst1", inst_os, "failing+default",
                        {"PATH": constants.OS_SCRIPT_PATH})
    msg = str(err.value)
    assert "OS add script failed (exited with exit code 3)" in msg
    assert "line29" in msg and "oops" in msg and "line5\n" not in msg
    logs = os.listdir(pathutils.LOG_OS_DIR)
    assert len(logs) == 1 and logs[0].startswith("add-failing+default-inst1-")
    assert os.path.join(pathutils.LOG_OS_DIR, logs[0]) in msg


def test_script_timeout(node_root):
    MakeOs(node_root, "slow", scripts={"create": "#!/bin/sh\necho started\nexec sleep 30\n"})
    inst_os = bos.OSFromDisk("slow")
    with pytest.raises(RPCFail, match="(?s)timed out after 0.5s.*started"):
        bos.RunOSScript("add", inst_os.create_script, "i", inst_os, "slow", {},
                        timeout=0.5)
