"""A 30-node virtual cluster: add, list and verify at that size (issue 6)."""

from __future__ import annotations

import os
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from vcluster import virtual_cluster  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

NODES = 30


def test_thirty_nodes():
    start = time.monotonic()
    with virtual_cluster(nodes=NODES, parallel=4) as vc:
        setup_time = time.monotonic() - start
        names = [f"node{i}.vcluster.test" for i in range(1, NODES + 1)]
        daemons = vc.daemons()
        assert all((name, "ganeti-noded") in daemons for name in names)

        out = vc.run("gnt-node", "list", "--no-headers", "--separator=|",
                     "-o", "name,pip,role,offline").stdout
        rows = [line.split("|") for line in out.splitlines()]
        # Sorted by name with numbers compared as numbers: node2 before node10
        assert [row[0] for row in rows] == names
        assert [row[1] for row in rows] == [f"{vc.net}.{i}" for i in range(1, NODES + 1)]
        roles = [row[2] for row in rows]
        assert roles[0] == "M" and set(roles[1:]) <= {"C", "R"}
        assert roles.count("C") + 1 == 10  # the default candidate pool size
        assert {row[3] for row in rows} == {"N"}

        result = vc.run("gnt-cluster", "verify", "--error-codes", check=False)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "ERROR" not in result.stdout, result.stdout

        # Every master candidate runs confd and is in CONFD_PEERS
        candidates = [row[0] for row in rows if row[2] in ("M", "C")]
        assert all((name, "ganeti-confd") in daemons for name in candidates)
        env = open(os.path.join(vc.directory, "env"), encoding="utf-8").read()
        peers = " ".join(vc.node(name).ip for name in candidates)
        assert f"CONFD_PEERS='{peers}'" in env
        print(f"30-node virtual cluster set up in {setup_time:.1f}s")
