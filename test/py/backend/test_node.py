"""backend.node: version, node information, test delays."""

from __future__ import annotations

import os
import time

import pytest

from ganeti import constants
from ganeti.backend import RPCFail
from ganeti.backend import node as bnode

DATA = os.path.join(os.path.dirname(__file__), "..", "..", "data", "proc")


def test_version():
    assert bnode.GetVersion() == constants.PROTOCOL_VERSION


def test_parse_meminfo():
    with open(os.path.join(DATA, "meminfo"), encoding="ascii") as fd:
        mem = bnode.ParseMeminfo(fd.read())
    assert mem["MemTotal"] == 24684084 and mem["Cached"] == 169472


@pytest.mark.parametrize("name,cpus,sockets", [
    ("cpuinfo-epyc", 2, 1), ("cpuinfo-2sockets", 4, 2)])
def test_parse_cpuinfo(name, cpus, sockets):
    with open(os.path.join(DATA, name), encoding="utf-8") as fd:
        assert bnode.ParseCpuinfo(fd.read()) == (cpus, sockets)


def test_linux_node_info(tmp_path):
    info = bnode.GetLinuxNodeInfo(os.path.join(DATA, "meminfo"),
                                  os.path.join(DATA, "cpuinfo-2sockets"),
                                  str(tmp_path / "none*"))
    assert info == {
        "memory_total": 24105, "memory_free": 23086, "memory_dom0": 1019,
        "cpu_total": 4, "cpu_nodes": 1, "cpu_sockets": 2, "cpu_dom0": 4,
    }


def test_linux_node_info_errors(tmp_path):
    with pytest.raises(RPCFail, match="Cannot read memory"):
        bnode.GetLinuxNodeInfo(str(tmp_path / "missing"))
    bad = tmp_path / "meminfo"
    bad.write_text("MemFree: 5 kB\n")
    with pytest.raises(RPCFail, match="Missing field"):
        bnode.GetLinuxNodeInfo(str(bad), os.path.join(DATA, "cpuinfo-epyc"))


def test_node_info_from_this_machine(tmp_path):
    bootid, storage, hv = bnode.GetNodeInfo(
        [[constants.ST_FILE, str(tmp_path), []], [constants.ST_DISKLESS, "x"]],
        [[constants.HT_FAKE, {}], [constants.HT_KVM, {}]])
    assert len(bootid) == 36
    assert storage[0]["type"] == constants.ST_FILE
    assert storage[0]["name"] == str(tmp_path)
    assert 0 <= storage[0]["storage_free"] <= storage[0]["storage_size"]
    assert storage[1] == {"type": constants.ST_DISKLESS, "name": "x",
                          "storage_free": 0, "storage_size": 0}
    assert len(hv) == 2
    assert hv[0]["memory_total"] > 0 and hv[0]["cpu_total"] == os.cpu_count()


@pytest.mark.parametrize("units,specs,text", [
    ([["nosuchtype", "k", []]], [], "cannot report its space"),
    ([[constants.ST_FILE, "/nonexistent/dir", []]], [], "Cannot get free space"),
    (["bad"], [], "Invalid storage unit"),
    ([], [["nohv", {}]], "Unknown hypervisor 'nohv'"),
    ([], [["kvm"]], "Invalid hypervisor spec"),
])
def test_node_info_errors(units, specs, text):
    with pytest.raises(RPCFail, match=text):
        bnode.GetNodeInfo(units, specs)


def test_hypervisor_can_override_info(monkeypatch):
    monkeypatch.setitem(bnode.HV_NODE_INFO_FNS, constants.HT_FAKE,
                        lambda name, params: {"memory_total": params["m"]})
    assert bnode.GetNodeInfo([], [[constants.HT_FAKE, {"m": 7}]])[2] == \
        [{"memory_total": 7}]


def test_has_ip_address():
    assert bnode.HasIpAddress("127.0.0.1")
    assert not bnode.HasIpAddress("192.0.2.254")


def test_test_delay():
    start = time.monotonic()
    assert bnode.TestDelay(0.05) is None
    assert time.monotonic() - start >= 0.05
    for bad in (-1, "1", True, None):
        with pytest.raises(RPCFail, match="Invalid sleep duration"):
            bnode.TestDelay(bad)
