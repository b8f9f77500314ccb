"""gnt-instance modify on a real two-node virtual cluster, and the bridge
check of the default NIC.

Backend parameters (and the memory check of a running instance), runtime
memory, hypervisor and OS parameters, the OS name, disks of a file
instance (the image files appear and disappear in the node's file storage
directory), NICs, --offline/--online, an ipolicy violation, and bad input
(invalid MAC, IP, size, missing bridge) with nothing changed.
"""

from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from vcluster import VirtualCluster, virtual_cluster  # noqa: E402

from ganeti import constants  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

NAME = "mod1.example.com"


@pytest.fixture(scope="module")
def vc():
    with virtual_cluster(nodes=2) as cluster:
        yield cluster


def _Gnt(vc: VirtualCluster, *args: str, check: bool = True):
    return vc.run("gnt-instance", *args, check=check)


def _InstanceConfig(vc: VirtualCluster) -> tuple[dict, dict]:
    """The instance's configuration and the disks (what must not change)."""
    config = vc.config()
    (inst,) = [i for i in config["instances"].values() if i["name"] == NAME]
    return inst, {uuid: config["disks"][uuid] for uuid in inst["disks"]}


def _Field(vc: VirtualCluster, field: str) -> str:
    return _Gnt(vc, "list", "--no-headers", "--units", "m", "-o", field,
                NAME).stdout.strip()


def _Refused(vc: VirtualCluster, *args: str) -> str:
    before = _InstanceConfig(vc)
    files = _Files(vc)
    result = _Gnt(vc, "modify", *args, NAME, check=False)
    assert result.returncode != 0, result.stdout
    assert _InstanceConfig(vc) == before
    assert _Files(vc) == files
    return result.stdout + result.stderr


def _InstDir(vc: VirtualCluster):
    return vc.path(vc.names[1], f"/srv/ganeti/file-storage/{NAME}")


def _Files(vc: VirtualCluster) -> list[str]:
    directory = _InstDir(vc)
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


@pytest.fixture(scope="module")
def inst(vc):
    # No NIC options: the default NIC (bridged on xen-br0) must work as it is
    _Gnt(vc, "add", "-t", "file", "-s", "1G", "-o", "noop+default", "-n", vc.names[1],
         "--no-name-check", "--no-ip-check", "--no-start", NAME)
    assert _Field(vc, "nic.count") == "1"
    assert _Field(vc, "nic.bridge/0") == constants.DEFAULT_BRIDGE
    yield NAME
    _Gnt(vc, "remove", "-f", NAME, check=False)


def test_default_bridge_exists(vc):
    if os.geteuid() == 0:
        assert os.path.isdir(f"/sys/class/net/{constants.DEFAULT_BRIDGE}/bridge")


def test_missing_bridge_refused(vc):
    before = vc.config()["instances"]
    result = _Gnt(vc, "add", "-t", "diskless", "-o", "noop+default", "-n", vc.names[1],
                  "--no-name-check", "--no-ip-check", "--net", "0:link=nosuchbr",
                  "nobr.example.com", check=False)
    assert result.returncode != 0
    out = result.stdout + result.stderr
    assert "Missing bridge nosuchbr" in out and vc.names[1] in out
    assert vc.config()["instances"] == before


def test_backend_params(vc, inst):
    out = _Gnt(vc, "modify", "-B", "memory=256M,vcpus=2", NAME).stdout
    assert f"Modified instance {NAME}" in out and " - be/maxmem -> 256" in out
    assert _Field(vc, "be/maxmem") == "256" and _Field(vc, "be/vcpus") == "2"
    _Gnt(vc, "modify", "-B", "vcpus=default", NAME)
    assert _Field(vc, "be/vcpus") == "1"
    out = _Refused(vc, "-B", "vcpus=64")
    assert "instance policy" in out and "cpu-count value 64" in out
    out = _Refused(vc, "-B", "maxmem=64,minmem=64")
    assert "memory-size value 64" in out


def test_running_instance_memory(vc, inst):
    _Gnt(vc, "modify", "-B", "minmem=128,maxmem=256", NAME)
    _Gnt(vc, "startup", NAME)
    try:
        out = _Refused(vc, "--ignore-ipolicy", "-B", "maxmem=100000000")
        assert "memory missing on its primary node" in out
        out = _Gnt(vc, "modify", "-m", "200", NAME).stdout
        assert " - runtime_memory -> 200" in out
        assert _Field(vc, "oper_ram") == "200"
        out = _Refused(vc, "-m", "1000")
        assert "must have memory between" in out
        out = _Refused(vc, "--disk", "0:remove")
        assert "cannot remove disks" in out
    finally:
        _Gnt(vc, "shutdown", "--timeout", "5", NAME)


def test_hv_and_os_params(vc, inst):
    out = _Refused(vc, "-H", "migration_mode=non-live")
    assert "global" in out and "migration_mode" in out
    out = _Refused(vc, "-H", "nosuchparam=1")
    assert "nosuchparam" in out
    out = _Gnt(vc, "modify", "-O", "message=hello", NAME).stdout
    assert " - os/message -> hello" in out
    assert _InstanceConfig(vc)[0]["osparams"] == {"message": "hello"}
    out = _Refused(vc, "-O", "nosuchosparam=1")
    assert "nosuchosparam" in out
    _Gnt(vc, "modify", "-O", "message=default", NAME)
    assert _InstanceConfig(vc)[0]["osparams"] == {}
    out = _Gnt(vc, "modify", "--os-type", "noop+small", NAME).stdout
    assert " - os_name -> noop+small" in out and _Field(vc, "os") == "noop+small"
    out = _Refused(vc, "--os-type", "nosuchos")
    assert "nosuchos" in out
    _Gnt(vc, "modify", "--os-type", "noop+default", NAME)


def test_disks(vc, inst):
    assert _Files(vc) == ["disk0"]
    out = _Gnt(vc, "modify", "--disk", "add:size=1G,name=data", NAME).stdout
    assert " - disk/1 -> add:size=1024,mode=rw" in out
    assert _Files(vc) == ["disk0", "disk1"]
    assert _Field(vc, "disk.sizes") == "1024,1024"
    out = _Gnt(vc, "modify", "--disk", "data:modify,mode=ro", NAME).stdout
    assert " - disk.mode/1 -> ro" in out
    _Gnt(vc, "modify", "--disk", "2:add,size=2G", NAME)
    assert _Files(vc) == ["disk0", "disk1", "disk2"]
    out = _Refused(vc, "--disk", "add:size=10X")
    assert "10X" in out
    out = _Refused(vc, "--disk", "0:modify,size=2G")
    assert "grow-disk" in out
    out = _Gnt(vc, "modify", "--disk", "1:remove", NAME).stdout
    assert " - disk/1 -> remove" in out
    assert _Files(vc) == ["disk0", "disk2"]
    _Gnt(vc, "modify", "--disk", "remove", NAME)
    assert _Files(vc) == ["disk0"]
    assert len(_InstanceConfig(vc)[1]) == 1
    out = _Refused(vc, "--disk", "0:remove")
    assert "Cannot remove every disk" in out
    # the instance still starts with its disks
    _Gnt(vc, "startup", NAME)
    _Gnt(vc, "shutdown", "--timeout", "5", NAME)


def test_nics(vc, inst):
    mac = "aa:00:00:12:34:56"
    out = _Gnt(vc, "modify", "--net", f"add:mac={mac},ip=192.0.2.50,name=second",
               NAME).stdout
    assert f" - nic.1 -> add:mac={mac},ip=192.0.2.50,mode=bridged,link=xen-br0" in out
    assert _Field(vc, "nic.count") == "2"
    assert mac in _Field(vc, "nic.macs")
    out = _Gnt(vc, "modify", "--net", "second:modify,ip=192.0.2.51", NAME).stdout
    assert " - nic.ip/1 -> 192.0.2.51" in out
    out = _Refused(vc, "--net", "add:mac=zz:00:00:00:00:01")
    assert "zz:00:00:00:00:01" in out
    out = _Refused(vc, "--net", "1:modify,ip=300.1.1.1")
    assert "300.1.1.1" in out
    out = _Refused(vc, "--net", f"add:mac={mac}")
    assert "already in use" in out
    out = _Refused(vc, "--net", "add:link=nosuchbr")
    assert "Missing bridge nosuchbr" in out
    out = _Gnt(vc, "modify", "--net", "1:remove", NAME).stdout
    assert " - nic.1 -> remove" in out
    assert _Field(vc, "nic.count") == "1"


def test_offline_online(vc, inst):
    out = _Gnt(vc, "modify", "--offline", NAME).stdout
    assert " - admin_state -> offline" in out
    assert _Field(vc, "admin_state") == "offline"
    result = _Gnt(vc, "startup", NAME, check=False)
    assert result.returncode != 0 and "offline" in result.stdout + result.stderr
    out = _Refused(vc, "-B", "vcpus=2")
    assert "offline" in out
    _Gnt(vc, "modify", "--online", NAME)
    assert _Field(vc, "admin_state") == "down"
    out = _Refused(vc, "--online")
    assert "not offline" in out
    _Gnt(vc, "startup", NAME)
    try:
        out = _Refused(vc, "--offline")
        assert "cannot mark it offline" in out
    finally:
        _Gnt(vc, "shutdown", "--timeout", "5", NAME)
