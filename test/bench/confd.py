#!/usr/bin/env python3
"""Benchmark confd: "node role by name" queries, one at a time, over loopback.

Starts three real ganeti-confd daemons (127.0.1.1-3, each with its own root
directory, the same configuration and HMAC key), then, from one client
using the client library (:class:`ganeti.confd.client.ConfdClient`), sends
queries one at a time (the next only once the previous is answered) and
prints, per scenario, answered queries per second and the client's
latency median and 99th percentile:

- ``1 candidate``: each query goes to one daemon, one answer awaited;
- ``3 candidates``: each query goes to all three, all answers awaited.

The target is Ganeti 3.0's Haskell confd figure for the same one-at-a-time
client on this machine: about 4,300 queries per second.

Run as ``.venv/bin/python test/bench/confd.py [--queries N] [--seconds S]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "py", "confd"))

import confdhelpers as h  # noqa: E402
from ganeti import constants  # noqa: E402
from ganeti.confd import client  # noqa: E402

TARGET_QPS = 4300
QUERY = "node2.example.com"


def RunScenario(peers: list[tuple[str, int]], queries: int,
                seconds: float) -> tuple[int, float, list[float]]:
    """Send queries one at a time; return (answered, elapsed, latencies)."""
    got = client.StoreResultCallback()
    latencies: list[float] = []
    answered = 0
    with client.ConfdClient(h.HMAC_KEY, peers, got) as cli:
        # warm-up
        for _ in range(200):
            req = client.ConfdClientRequest(
                type=constants.CONFD_REQ_NODE_ROLE_BYNAME, query=QUERY)
            cli.SendRequest(req, coverage=0)
            cli.WaitForReply(req.rsalt, 2)
            cli.CancelRequest(req.rsalt)
        got.Clear()
        start = time.perf_counter()
        deadline = start + seconds
        for _ in range(queries):
            t0 = time.perf_counter()
            req = client.ConfdClientRequest(
                type=constants.CONFD_REQ_NODE_ROLE_BYNAME, query=QUERY)
            cli.SendRequest(req, coverage=0)
            got_answers, asked, _ = cli.WaitForReply(req.rsalt, 2)
            cli.CancelRequest(req.rsalt)
            t1 = time.perf_counter()
            if got_answers == asked:
                answered += 1
                latencies.append(t1 - t0)
            if t1 > deadline:
                break
        elapsed = time.perf_counter() - start
    replies = got.GetResponses()
    assert all(up.server_reply.answer == constants.CONFD_NODE_ROLE_CANDIDATE
               for up in replies), "wrong answer"
    return answered, elapsed, latencies


def Report(name: str, answered: int, elapsed: float,
           latencies: list[float]) -> float:
    qps = answered / elapsed
    lat = sorted(latencies)
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] if lat else 0.0
    median = statistics.median(lat) if lat else 0.0
    print(f"{name:14s} {answered:7d} answered in {elapsed:6.2f}s:"
          f" {qps:8.0f} queries/s, latency median {median * 1e6:6.0f} us,"
          f" p99 {p99 * 1e6:6.0f} us")
    return qps


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=30000,
                        help="Queries per scenario (at most)")
    parser.add_argument("--seconds", type=float, default=10.0,
                        help="Longest time per scenario")
    options = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="confd-bench-") as base:
        daemons = []
        try:
            for idx in range(3):
                daemons.append(h.StartConfd(base, f"c{idx + 1}",
                                            f"127.0.1.{idx + 1}",
                                            h.MakeConfigData()))
            h.WaitReady(daemons)
            peers = [d.peer for d in daemons]
            print(f"confd benchmark: node role by name, one query at a time,"
                  f" {os.cpu_count()} CPUs")
            one = Report("1 candidate",
                         *RunScenario(peers[:1], options.queries,
                                      options.seconds))
            Report("3 candidates",
                   *RunScenario(peers, options.queries, options.seconds))
            verdict = "meets" if one >= TARGET_QPS else "MISSES"
            print(f"target {TARGET_QPS} queries/s (Ganeti 3.0 Haskell confd,"
                  f" one candidate): {verdict} it")
        finally:
            h.StopAll(daemons)
    return 0


if __name__ == "__main__":
    sys.exit(main())
