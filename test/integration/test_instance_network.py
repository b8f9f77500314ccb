"""Instances on a network on a real 2-node virtual cluster (issue 20):
addresses from the pool or given, refused when taken, given back when an
instance is removed or its creation fails; gnt-network disconnect and
remove refused while the network is in use.

One cluster serves the module; the tests run in file order. The network
is connected in routed mode, which needs no bridge on the nodes; the node
daemons run with GANETI_FAKE_NIC_SCRIPTS=dry, so the fake hypervisor runs
the routed NIC scripts (printing their commands) when an instance starts.
"""

from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from vcluster import VirtualCluster, virtual_cluster  # noqa: E402

from ganeti import pathutils, serializer  # noqa: E402
from ganeti.hypervisor import hv_fake  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

NET = "net77"
SUBNET = "10.77.0.0/28"
GATEWAY = "10.77.0.1"
#: Kept out of the pool (``--add-reserved-ips``)
RESERVED = ("10.77.0.2", "10.77.0.3")
#: Network, gateway, broadcast and RESERVED are not free
FREE_AT_START = 16 - 3 - len(RESERVED)
INST1, INST2, INST3, INST4 = (f"netinst{i}.example.com" for i in range(1, 5))


@pytest.fixture(scope="module")
def vc():
    # The node daemons inherit it (vcluster Tools.NodeEnv): the fake
    # hypervisor runs the NIC scripts in dry mode and records their output
    saved = os.environ.get(hv_fake.NIC_SCRIPTS_VAR)
    os.environ[hv_fake.NIC_SCRIPTS_VAR] = "dry"
    try:
        with virtual_cluster(nodes=2) as cluster:
            yield cluster
    finally:
        if saved is None:
            del os.environ[hv_fake.NIC_SCRIPTS_VAR]
        else:
            os.environ[hv_fake.NIC_SCRIPTS_VAR] = saved


def _Ok(vc: VirtualCluster, *args: str) -> str:
    return vc.run(*args).stdout


def _Fails(vc: VirtualCluster, *args: str, match: str) -> str:
    result = vc.run(*args, check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0, f"{args} succeeded:\n{output}"
    assert match.lower() in output.lower(), output
    return output


def _Free(vc: VirtualCluster) -> int:
    out = _Ok(vc, "gnt-network", "list", "--no-headers", "-o", "free_count", NET)
    return int(out.strip())


def _Ips(vc: VirtualCluster, name: str) -> str:
    return _Ok(vc, "gnt-instance", "list", "--no-headers", "-o", "nic.ips",
               name).strip()


def _Add(vc: VirtualCluster, name: str, net: str, *extra: str,
         check: bool = True) -> object:
    args = ("gnt-instance", "add", "-t", "diskless", "-o", "noop+default",
            "-n", vc.names[1], "--no-name-check", "--no-ip-check", "--net", net,
            *extra, name)
    return vc.run(*args, check=check)


def test_add_and_connect_routed(vc):
    _Ok(vc, "gnt-network", "add", "--network", SUBNET, "--gateway", GATEWAY,
        "--add-reserved-ips", ",".join(RESERVED), NET)
    _Ok(vc, "gnt-network", "connect", "--nic-parameters", "mode=routed,link=main",
        NET, "default")
    assert _Free(vc) == FREE_AT_START
    info = _Ok(vc, "gnt-network", "info", NET)
    assert f"Free: {FREE_AT_START}" in info and "default" in info


def test_pool_and_explicit_addresses(vc):
    _Add(vc, INST1, f"0:network={NET},ip=pool")
    ip1 = _Ips(vc, INST1)
    # the first free address: after the gateway and the reserved ones
    assert ip1 == "10.77.0.4"
    assert _Free(vc) == FREE_AT_START - 1
    assert f"Free: {FREE_AT_START - 1}" in _Ok(vc, "gnt-network", "info", NET)
    _Add(vc, INST2, f"0:network={NET},ip=10.77.0.9")
    assert _Ips(vc, INST2) == "10.77.0.9"
    assert _Free(vc) == FREE_AT_START - 2


def test_started_instance_ran_the_routed_script(vc):
    state = vc.path(vc.names[1], f"{pathutils.RUN_DIR}/fake-hypervisor/{INST1}")
    scripts = serializer.LoadJson(state.read_text())["nic_scripts"]
    (nic,) = scripts
    output = "\n".join(nic["output"])
    assert nic["nicparams"]["mode"] == "routed"
    # routed mode: a host route to the NIC's address in the link's table and
    # proxy ARP on the tap (no bridge)
    assert "ip route replace 10.77.0.4 table main" in output, output
    assert "proxy_arp" in output and "brctl" not in output, output


def test_taken_address_refused(vc):
    for ip in ("10.77.0.9", RESERVED[0], GATEWAY):
        result = _Add(vc, INST3, f"0:network={NET},ip={ip}", check=False)
        output = result.stdout + result.stderr
        assert result.returncode != 0, output
        assert ip in output and NET in output, output
    assert _Free(vc) == FREE_AT_START - 2
    assert INST3 not in _Ok(vc, "gnt-instance", "list", "--no-headers", "-o", "name")


def test_failed_creation_leaves_no_address(vc):
    result = _Add(vc, INST3, f"0:network={NET},ip=pool", "--os-type",
                  "no-such-os", check=False)
    assert result.returncode != 0
    result = vc.run("gnt-instance", "add", "-t", "file", "-s", "100T",
                    "-o", "noop+default", "-n", vc.names[1], "--no-name-check",
                    "--no-ip-check", "--net", f"0:network={NET},ip=pool", INST3,
                    check=False)
    assert result.returncode != 0, result.stdout + result.stderr
    assert _Free(vc) == FREE_AT_START - 2
    # the next pool address is still the first free one
    _Add(vc, INST3, f"0:network={NET},ip=pool")
    assert _Ips(vc, INST3) == "10.77.0.5"
    assert _Free(vc) == FREE_AT_START - 3


def test_removal_gives_the_address_back(vc):
    _Ok(vc, "gnt-instance", "remove", "-f", INST3)
    assert _Free(vc) == FREE_AT_START - 2
    _Add(vc, INST4, f"0:network={NET},ip=10.77.0.5")
    assert _Ips(vc, INST4) == "10.77.0.5"
    _Ok(vc, "gnt-instance", "remove", "-f", INST4)
    assert _Free(vc) == FREE_AT_START - 2


def test_disconnect_and_remove_refused_while_in_use(vc):
    _Fails(vc, "gnt-network", "disconnect", NET, "default", match=INST1)
    _Fails(vc, "gnt-network", "remove", NET, match="connected")
    for name in (INST1, INST2):
        _Ok(vc, "gnt-instance", "remove", "-f", name)
    assert _Free(vc) == FREE_AT_START
    _Ok(vc, "gnt-network", "disconnect", NET, "default")
    _Ok(vc, "gnt-network", "remove", NET)
    assert NET not in _Ok(vc, "gnt-network", "list", "--no-headers", "-o", "name")
