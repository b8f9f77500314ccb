#!/usr/bin/env python3
"""Benchmark node RPC: one ``version`` call to 1, 10 and 100 node daemons.

Starts real node daemons on loopback addresses (each with its own root
directory and the cluster certificate), for each way of serving
(``--servers``: ``fork``, a child per connection, the default of the
daemon; ``threaded``, with ``--threaded``), then prints:

- the wall time of one parallel ``version`` call to 1, 10 and 100 daemons
  (best and median of several rounds);
- sequential calls per second to one daemon over the kept-open
  connection, and over a new connection each (a TLS handshake and, when
  forking, a fork per call), with the daemon's CPU time per call (its
  children's included).

Run as ``.venv/bin/python test/bench/rpc.py [--nodes 1,10,100] [--servers
threaded,fork]``. The target is a parallel call to 100 daemons in under
1.5 s on a 2-core machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "py"))

import nodedhelpers  # noqa: E402

from ganeti.rpc import client as rpc_client  # noqa: E402

TARGET_100 = 1.5
SERVER_ARGS = {"threaded": ["--threaded"], "fork": []}


def _TimeCall(runner, names: list[str]) -> float:
    start = time.perf_counter()
    results = runner.call_version(names)
    elapsed = time.perf_counter() - start
    failed = [f"{name}: {res.fail_msg}" for name, res in results.items() if res.fail_msg]
    if failed:
        raise RuntimeError("version call failed on: " + "; ".join(failed[:5]))
    return elapsed


def _DaemonCpu(daemon) -> float:
    """CPU seconds of a daemon, its children's (live or reaped) included."""
    total = 0.0
    for pid in [daemon.pid] + daemon.Children():
        try:
            with open(f"/proc/{pid}/stat", encoding="ascii") as fd:
                fields = fd.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(value) for value in fields[11:15])
    return total / os.sysconf("SC_CLK_TCK")


def _Sequential(runner, daemon, seconds: float, new_connection: bool) -> str:
    calls = 0
    cpu = _DaemonCpu(daemon)
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        if new_connection:
            rpc_client.CloseConnections()
        _TimeCall(runner, [daemon.name])
        calls += 1
    rate = calls / (time.perf_counter() - start)
    if new_connection:
        rpc_client.CloseConnections()
    cpu = (_DaemonCpu(daemon) - cpu) / calls
    return (f"{rate:5.0f} calls/s ({1000 / rate:.2f} ms per call), daemon CPU"
            f" {cpu * 1000:.2f} ms per call")


def _Run(tmp: str, crypto, server: str, counts: list[int],
         options: argparse.Namespace) -> None:
    start = time.perf_counter()
    daemons = nodedhelpers.StartCluster(os.path.join(tmp, f"nodes-{server}"), crypto,
                                        max(counts), subnet=78,
                                        extra_args=SERVER_ARGS[server],
                                        mlock=options.mlock)
    print(f"\n{server}: started {len(daemons)} node daemons in"
          f" {time.perf_counter() - start:.1f} s ({os.cpu_count()} CPUs,"
          f" memory locking {'on' if options.mlock else 'off'})")
    try:
        runner = nodedhelpers.MakeRunner(crypto, daemons)
        names = [d.name for d in daemons]
        _TimeCall(runner, names)  # warm up (page cache, connections)
        print(f"{server}: parallel version call (wall time of the whole call):")
        summary = {}
        for count in counts:
            times = [_TimeCall(runner, names[:count]) for _ in range(options.rounds)]
            summary[count] = min(times)
            print(f"  {count:4d} daemons: best {min(times) * 1000:7.1f} ms,"
                  f" median {statistics.median(times) * 1000:7.1f} ms,"
                  f" worst {max(times) * 1000:7.1f} ms")
        print(f"{server}: sequential version calls to one daemon:")
        print("  kept-open connection:  "
              + _Sequential(runner, daemons[0], options.seconds, False))
        print("  new connection each:   "
              + _Sequential(runner, daemons[0], options.seconds, True))
        if 100 in summary:
            verdict = "met" if summary[100] < TARGET_100 else "NOT met"
            print(f"{server}: target: 100 daemons in < {TARGET_100} s: {verdict}")
    finally:
        rpc_client.CloseConnections()
        nodedhelpers.StopAll(daemons)


def Main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", default="1,10,100",
                        help="Comma-separated daemon counts (default 1,10,100)")
    parser.add_argument("--rounds", type=int, default=7,
                        help="Parallel calls per count (default 7)")
    parser.add_argument("--seconds", type=float, default=3.0,
                        help="Duration of each sequential calls/s test")
    parser.add_argument("--servers", default="threaded,fork",
                        help="Comma-separated: threaded, fork (default both)")
    parser.add_argument("--no-mlock", dest="mlock", action="store_false",
                        help="Start the daemons with --no-mlock")
    options = parser.parse_args()
    counts = sorted({int(n) for n in options.nodes.split(",")})
    servers = [name for name in options.servers.split(",") if name]
    for name in servers:
        if name not in SERVER_ARGS:
            parser.error(f"unknown server {name!r}")

    with tempfile.TemporaryDirectory(prefix="bench-rpc-") as tmp:
        crypto = nodedhelpers.MakeClusterCrypto(os.path.join(tmp, "crypto"))
        for server in servers:
            _Run(tmp, crypto, server, counts, options)
    return 0


if __name__ == "__main__":
    sys.exit(Main())
