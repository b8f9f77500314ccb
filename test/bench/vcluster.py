#!/usr/bin/env python3
"""Benchmark a virtual cluster of 100 nodes on this machine.

Sets up the cluster with ``tools/vcluster-setup`` on a free 127.0.k prefix,
then prints:

- the time to add all nodes (``gnt-node add`` for nodes 2..N, as reported
  by the tool) and the whole setup time;
- ``gnt-node list`` latency: median (and min/max) wall time of several
  runs of the command, and of the luxi ``Query`` behind it;
- ``gnt-cluster verify`` wall time;
- the memory of one idle node daemon: VmRSS and Pss (``smaps_rollup``).

Run as ``.venv/bin/python test/bench/vcluster.py [--nodes 100] [--parallel 4]
[--rounds 7]``. Every daemon is stopped by PID at the end.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                                "integration"))

from vcluster import virtual_cluster  # noqa: E402

from ganeti import constants  # noqa: E402
from ganeti.luxi import client as luxi_client  # noqa: E402


def _Timed(func) -> float:
    start = time.perf_counter()
    func()
    return time.perf_counter() - start


def _Memory(pid: int) -> dict[str, int]:
    """VmRSS and Pss of ``pid`` in KiB."""
    result = {}
    with open(f"/proc/{pid}/status", encoding="ascii") as fd:
        for line in fd:
            if line.startswith("VmRSS:"):
                result["VmRSS"] = int(line.split()[1])
    try:
        with open(f"/proc/{pid}/smaps_rollup", encoding="ascii") as fd:
            for line in fd:
                if line.startswith("Pss:"):
                    result["Pss"] = int(line.split()[1])
    except OSError:
        pass
    return result


def _Stats(values: list[float]) -> str:
    return (f"median {statistics.median(values) * 1000:.0f} ms"
            f" (min {min(values) * 1000:.0f}, max {max(values) * 1000:.0f},"
            f" n={len(values)})")


def Main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=100)
    parser.add_argument("--parallel", type=int, default=4,
                        help="gnt-node add commands running at once")
    parser.add_argument("--rounds", type=int, default=7)
    opts = parser.parse_args()

    start = time.perf_counter()
    with virtual_cluster(nodes=opts.nodes, parallel=opts.parallel) as vc:
        setup_time = time.perf_counter() - start
        match = re.search(r"added in ([0-9.]+)s", vc.setup_output)
        added = float(match.group(1)) if match else float("nan")
        print(f"virtual cluster: {opts.nodes} nodes on {vc.net}.0/24,"
              f" {os.cpu_count()} CPUs")
        print(f"setup (init, add, verify, confd): {setup_time:.1f} s")
        print(f"add {opts.nodes - 1} nodes (gnt-node add, {opts.parallel} at a time):"
              f" {added:.1f} s ({added / max(opts.nodes - 1, 1):.2f} s per node)")

        def _List() -> None:
            out = vc.run("gnt-node", "list", "--no-headers").stdout
            assert len(out.splitlines()) == opts.nodes, out

        cmd_times = [_Timed(_List) for _ in range(opts.rounds)]
        print(f"gnt-node list (command, {opts.nodes} rows): {_Stats(cmd_times)}")

        master = vc.node(vc.master())
        client = luxi_client.Client(
            os.path.join(master.root, constants.DEFAULT_RUN_DIR.lstrip("/"),
                         "socket", "ganeti-master"))
        fields = ["name", "dtotal", "dfree", "mtotal", "mnode", "mfree",
                  "pinst_cnt", "sinst_cnt"]
        query_times = [_Timed(lambda: client.Query("node", fields, None))
                       for _ in range(opts.rounds)]
        print(f"luxi Query(node, default list fields): {_Stats(query_times)}")

        verify_times = []
        for _ in range(3):
            start = time.perf_counter()
            result = vc.run("gnt-cluster", "verify", check=False)
            verify_times.append(time.perf_counter() - start)
            if result.returncode != 0:
                errors = [line for line in result.stdout.splitlines() if "ERROR" in line]
                print(f"  (verify reported {len(errors)} error(s), e.g."
                      f" {errors[-1:] or result.stdout.strip().splitlines()[-1:]})")
        print(f"gnt-cluster verify: {_Stats(verify_times)}")

        name = vc.names[len(vc.names) // 2]
        pid = vc.daemons()[(name, constants.NODED)]
        mem = _Memory(pid)
        print(f"idle node daemon ({name}, pid {pid}): VmRSS {mem.get('VmRSS', 0) / 1024:.1f}"
              f" MiB, Pss {mem.get('Pss', 0) / 1024:.1f} MiB")
        total = sum(_Memory(p).get("Pss", 0) for (_, d), p in vc.daemons().items()
                    if d == constants.NODED)
        print(f"all {opts.nodes} node daemons: Pss {total / 1024:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(Main())
