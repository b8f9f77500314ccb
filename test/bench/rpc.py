#!/usr/bin/env python3
"""Benchmark node RPC: one ``version`` call to 1, 10 and 100 node daemons.

Starts real node daemons on loopback addresses (each with its own root
directory and the cluster certificate), then prints:

- the wall time of one parallel ``version`` call to 1, 10 and 100 daemons
  (best and median of several rounds);
- sequential calls per second to one daemon.

Run as ``.venv/bin/python test/bench/rpc.py [--nodes 1,10,100]``. The
target is a parallel call to 100 daemons in under 1.5 s on a 2-core machine.
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

TARGET_100 = 1.5


def _TimeCall(runner, names: list[str]) -> float:
    start = time.perf_counter()
    results = runner.call_version(names)
    elapsed = time.perf_counter() - start
    failed = [f"{name}: {res.fail_msg}" for name, res in results.items() if res.fail_msg]
    if failed:
        raise RuntimeError("version call failed on: " + "; ".join(failed[:5]))
    return elapsed


def Main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", default="1,10,100",
                        help="Comma-separated daemon counts (default 1,10,100)")
    parser.add_argument("--rounds", type=int, default=7,
                        help="Parallel calls per count (default 7)")
    parser.add_argument("--seconds", type=float, default=3.0,
                        help="Duration of the sequential calls/s test")
    parser.add_argument("--no-mlock", dest="mlock", action="store_false",
                        help="Start the daemons with --no-mlock")
    options = parser.parse_args()
    counts = sorted({int(n) for n in options.nodes.split(",")})

    with tempfile.TemporaryDirectory(prefix="bench-rpc-") as tmp:
        crypto = nodedhelpers.MakeClusterCrypto(os.path.join(tmp, "crypto"))
        start = time.perf_counter()
        daemons = nodedhelpers.StartCluster(os.path.join(tmp, "nodes"), crypto,
                                            max(counts), subnet=78,
                                            mlock=options.mlock)
        print(f"started {len(daemons)} node daemons in"
              f" {time.perf_counter() - start:.1f} s ({os.cpu_count()} CPUs,"
              f" memory locking {'on' if options.mlock else 'off'})")
        try:
            runner = nodedhelpers.MakeRunner(crypto, daemons)
            names = [d.name for d in daemons]
            _TimeCall(runner, names)  # warm up (page cache, first forks)
            print("\nparallel version call (wall time of the whole call):")
            summary = {}
            for count in counts:
                times = [_TimeCall(runner, names[:count]) for _ in range(options.rounds)]
                summary[count] = min(times)
                print(f"  {count:4d} daemons: best {min(times) * 1000:7.1f} ms,"
                      f" median {statistics.median(times) * 1000:7.1f} ms,"
                      f" worst {max(times) * 1000:7.1f} ms")

            one = names[:1]
            calls = 0
            start = time.perf_counter()
            while time.perf_counter() - start < options.seconds:
                _TimeCall(runner, one)
                calls += 1
            rate = calls / (time.perf_counter() - start)
            print(f"\nsequential version calls to one daemon: {rate:.0f} calls/s"
                  f" ({1000 / rate:.1f} ms per call)")
            if 100 in summary:
                verdict = "met" if summary[100] < TARGET_100 else "NOT met"
                print(f"\ntarget: 100 daemons in < {TARGET_100} s: {verdict}")
        finally:
            nodedhelpers.StopAll(daemons)
    return 0


if __name__ == "__main__":
    sys.exit(Main())
