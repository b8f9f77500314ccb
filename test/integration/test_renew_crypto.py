"""gnt-cluster renew-crypto --new-node-certificates and
--new-cluster-certificate on a real 2-node virtual cluster: every node's
client.pem (and server.pem) changes, the daemons keep talking, verify is
clean and an instance can still be added and started."""

from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from vcluster import VirtualCluster, virtual_cluster  # noqa: E402

from ganeti.utils import x509  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

DATA = "/var/lib/ganeti"


@pytest.fixture(scope="module")
def vc():
    with virtual_cluster(nodes=2) as cluster:
        yield cluster


def _Digests(vc: VirtualCluster, name: str) -> dict[str, str]:
    return {node: x509.GetCertificateDigest(str(vc.path(node, f"{DATA}/{name}")))
            for node in vc.names}


def _AssertSignedByServerPem(vc: VirtualCluster) -> None:
    for node in vc.names:
        server = x509.ReadCertificateFile(str(vc.path(node, f"{DATA}/server.pem")))
        client = x509.ReadCertificateFile(str(vc.path(node, f"{DATA}/client.pem")))
        assert x509.IsSignedBy(client, server), node
        assert x509.GetCommonName(client) == node


def _AssertVerifyClean(vc: VirtualCluster) -> None:
    result = vc.run("gnt-cluster", "verify", check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_renew_node_then_cluster_certificates(vc):
    clients = _Digests(vc, "client.pem")
    servers = _Digests(vc, "server.pem")

    vc.run("gnt-cluster", "renew-crypto", "--new-node-certificates", "-f")
    renewed = _Digests(vc, "client.pem")
    assert all(renewed[n] != clients[n] for n in vc.names), (clients, renewed)
    assert _Digests(vc, "server.pem") == servers
    _AssertSignedByServerPem(vc)
    certs = vc.config()["cluster"]["candidate_certs"]
    assert sorted(certs.values()) == sorted(renewed.values())
    _AssertVerifyClean(vc)

    # Without -f the command asks first; "n" changes nothing
    result = vc.run("gnt-cluster", "renew-crypto", "--new-cluster-certificate",
                    check=False, input="n\n")
    assert result.returncode != 0
    assert _Digests(vc, "server.pem") == servers

    result = vc.run("gnt-cluster", "renew-crypto", "--new-cluster-certificate", "-f")
    new_servers = _Digests(vc, "server.pem")
    assert len(set(new_servers.values())) == 1, new_servers
    assert all(new_servers[n] != servers[n] for n in vc.names), result.stdout
    again = _Digests(vc, "client.pem")
    assert all(again[n] != renewed[n] for n in vc.names)
    _AssertSignedByServerPem(vc)
    _AssertVerifyClean(vc)

    vc.run("gnt-instance", "add", "-o", "noop+default", "-t", "diskless",
           "--no-name-check", "--no-ip-check", "-n", vc.names[1], "inst1.vc.test")
    status = vc.run("gnt-instance", "list", "--no-headers", "-o", "status",
                    "inst1.vc.test").stdout.strip()
    assert status == "running"
    vc.run("gnt-instance", "remove", "-f", "inst1.vc.test")
