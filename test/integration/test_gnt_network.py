"""gnt-network and RAPI /2/networks on a real 2-node virtual cluster
(issue 20, part 1).

One cluster serves the module; the tests run in file order. Bad input
must fail with a message naming the bad value and leave the configuration
(its serial number) unchanged.
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from vcluster import VirtualCluster, virtual_cluster  # noqa: E402

from ganeti import constants  # noqa: E402
from ganeti.rapi import client as rapi_client  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


@pytest.fixture(scope="module")
def vc():
    with virtual_cluster(nodes=2) as cluster:
        yield cluster


def _Ok(vc: VirtualCluster, *args: str) -> str:
    return vc.run(*args).stdout


def _Fails(vc: VirtualCluster, *args: str, match: str) -> str:
    before = vc.config()
    result = vc.run(*args, check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0, f"{args} succeeded:\n{output}"
    assert match.lower() in output.lower(), output
    assert vc.config()["serial_no"] == before["serial_no"], f"{args} changed the config"
    return output


def _List(vc: VirtualCluster, fields: str) -> dict[str, list[str]]:
    out = _Ok(vc, "gnt-network", "list", "--no-headers", "--separator=|", "-o", fields)
    rows = [line.split("|") for line in out.splitlines() if line.strip()]
    return {row[0]: row[1:] for row in rows}


def _Rapi(vc: VirtualCluster) -> rapi_client.GanetiRapiClient:
    result = subprocess.run(["sh", "-c", f". {vc.directory}/env && env -0"],
                            capture_output=True, timeout=30, check=True)
    env = dict(item.split("=", 1) for item in result.stdout.decode().split("\0")
               if "=" in item)
    cafile = str(vc.path(vc.master(), constants.DEFAULT_DATA_DIR + "/"
                         + constants.RAPI_PEM_NAME))
    return rapi_client.GanetiRapiClient(
        env["RAPI_HOST"], int(env["RAPI_PORT"]), username=env["RAPI_USER"],
        password=env["RAPI_PASSWORD"],
        curl_config_fn=rapi_client.GenericCurlConfig(cafile=cafile))


def _Wait(cl: rapi_client.GanetiRapiClient, job_id: Any) -> dict[str, Any]:
    cl.WaitForJobCompletion(job_id, retries=100)
    return cl.GetJobStatus(job_id)


def test_network_life(vc):
    assert _Ok(vc, "gnt-network", "list").split() == [
        "Network", "Subnet", "Gateway", "MacPrefix", "GroupList", "Tags"]
    _Ok(vc, "gnt-network", "add", "--network", "10.20.0.0/28", "--gateway", "10.20.0.1",
        "--add-reserved-ips", "10.20.0.5,10.20.0.6", "--mac-prefix", "aa:bb:cc",
        "--tags", "nfdhcpd", "net1")
    assert _List(vc, "name,network,gateway,free_count,reserved_count,map,tags") == {
        "net1": ["10.20.0.0/28", "10.20.0.1", "11", "5", "XX...XX........X", "nfdhcpd"]}

    # bad input: each refused with the value named, nothing changed
    _Fails(vc, "gnt-network", "add", "--network", "10.20.0.8/29", "net2",
           match="overlaps network 'net1'")
    _Fails(vc, "gnt-network", "add", "--network", "10.30.0.0/28", "net1",
           match="'net1' already exists")
    _Fails(vc, "gnt-network", "add", "--network", "10.30.0.0/28", "--gateway",
           "10.31.0.1", "net2", match="10.31.0.1")
    _Fails(vc, "gnt-network", "add", "--network", "10.30.0.0/28", "--mac-prefix",
           "zz:00", "net2", match="mac_prefix")
    _Fails(vc, "gnt-network", "add", "net2", match="--network option must be given")

    # connect to the default group, with -N as in Ganeti 3.0
    _Ok(vc, "gnt-network", "connect", "-N", "mode=bridged,link=br100,vlan=100",
        "net1", "default")
    assert _List(vc, "name,group_list,group_cnt") == {
        "net1": ["default (bridged, br100, 100)", "1"]}
    _Fails(vc, "gnt-network", "connect", "-N", "mode=routed,link=rt0", "net1",
           "default", match="already connected")
    assert "networks" in _Ok(vc, "gnt-group", "list-fields")

    info = _Ok(vc, "gnt-network", "info", "net1").splitlines()
    assert info[0] == "Network name: net1"
    assert "  Subnet: 10.20.0.0/28" in info
    assert "  Gateway: 10.20.0.1" in info
    assert "  Mac Prefix: aa:bb:cc" in info
    assert "  Size: 16" in info
    assert "  Free: 11 (68.75%)" in info
    assert "    10.20.0.0, 10.20.0.1, 10.20.0.5, 10.20.0.6, 10.20.0.15" in info
    assert "    default (mode:bridged link:br100 vlan:100)" in info
    assert info[-1] == "  not used by any instances"

    # rename, modify the reservations
    _Ok(vc, "gnt-network", "rename", "net1", "public")
    _Ok(vc, "gnt-network", "modify", "--add-reserved-ips", "10.20.0.9",
        "--remove-reserved-ips", "10.20.0.5,10.20.0.6", "public")
    assert _List(vc, "name,free_count,external_reservations") == {
        "public": ["12", "10.20.0.0, 10.20.0.1, 10.20.0.9, 10.20.0.15"]}
    _Fails(vc, "gnt-network", "modify", "--remove-reserved-ips", "10.20.0.7", "public",
           match="'10.20.0.7' is not reserved")
    _Fails(vc, "gnt-network", "modify", "--add-reserved-ips", "10.20.0.9", "public",
           match="'10.20.0.9' is already in use")
    _Fails(vc, "gnt-network", "modify", "--add-reserved-ips", "10.99.0.9", "public",
           match="10.99.0.9")

    # tags
    _Ok(vc, "gnt-network", "add-tags", "public", "extra")
    assert _Ok(vc, "gnt-network", "list-tags", "public").split() == ["extra", "nfdhcpd"]
    _Ok(vc, "gnt-network", "remove-tags", "public", "extra")

    # RAPI sees it, in bulk and alone
    cl = _Rapi(vc)
    bulk = cl.GetNetworks(bulk=True)
    (net,) = bulk
    assert net["name"] == "public"
    assert net["network"] == "10.20.0.0/28"
    assert net["gateway"] == "10.20.0.1" and net["gateway6"] is None
    assert net["free_count"] == 12 and net["reserved_count"] == 4
    assert net["map"] == "XX.......X.....X"
    assert net["group_list"] == [["default", "bridged", "br100", "100"]]
    assert net["inst_list"] == []
    assert net["tags"] == ["nfdhcpd"]
    assert cl.GetNetwork("public")["uuid"] == net["uuid"]
    assert cl.GetNetworks() == ["public"]

    # remove is refused while connected; disconnect, then remove
    _Fails(vc, "gnt-network", "remove", "public", match="connected to the following")
    _Ok(vc, "gnt-network", "disconnect", "public", "default")
    assert _List(vc, "name,group_cnt") == {"public": ["0"]}
    _Ok(vc, "gnt-network", "remove", "public")
    assert _List(vc, "name") == {}


def test_rapi_network_life(vc):
    cl = _Rapi(vc)
    job = cl.CreateNetwork("rnet", "10.40.0.0/28", gateway="10.40.0.1",
                           add_reserved_ips=["10.40.0.3"])
    assert _Wait(cl, job)["status"] == constants.JOB_STATUS_SUCCESS
    job = cl.ConnectNetwork("rnet", "default", "routed", "rt0")
    assert _Wait(cl, job)["status"] == constants.JOB_STATUS_SUCCESS
    assert cl.GetNetwork("rnet")["group_list"] == [["default", "routed", "rt0", ""]]
    job = cl.ModifyNetwork("rnet", remove_reserved_ips=["10.40.0.3"])
    assert _Wait(cl, job)["status"] == constants.JOB_STATUS_SUCCESS
    assert cl.GetNetwork("rnet")["reserved_count"] == 3
    job = cl.DeleteNetwork("rnet")
    status = _Wait(cl, job)
    assert status["status"] == constants.JOB_STATUS_ERROR
    job = cl.DisconnectNetwork("rnet", "default")
    assert _Wait(cl, job)["status"] == constants.JOB_STATUS_SUCCESS
    job = cl.DeleteNetwork("rnet")
    assert _Wait(cl, job)["status"] == constants.JOB_STATUS_SUCCESS
    assert cl.GetNetworks() == []
