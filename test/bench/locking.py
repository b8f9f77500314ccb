#!/usr/bin/env python3
"""Benchmark: acquire/release throughput of a LockSet under many threads.

A LockSet of 1,000 members and 25 worker threads (the master daemon's
default pool size). Each worker repeatedly acquires a random set of
members and releases it; one operation is one acquire plus one release.
Prints operations per second and the latency of an operation (p50, p99,
max) for a few workloads, from uncontended to a small hot set.

Run: .venv/bin/python test/bench/locking.py [--duration S] [--threads N]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                "build", "pylib"))

from ganeti import locking  # noqa: E402

#: A workload picks, per operation: names (or ALL_SET) and shared (0/1)
Picker = Callable[[random.Random, list[str]], tuple[list[str] | None, int]]


@dataclass
class Workload:
    """One benchmark line."""

    title: str
    pick: Picker


def _one_exclusive(rng: random.Random, members: list[str]) -> tuple[list[str] | None, int]:
    return [rng.choice(members)], 0


def _mixed(rng: random.Random, members: list[str]) -> tuple[list[str] | None, int]:
    return rng.sample(members, rng.randint(1, 5)), int(rng.random() < 0.7)


def _hot(rng: random.Random, members: list[str]) -> tuple[list[str] | None, int]:
    return rng.sample(members[:20], rng.randint(1, 3)), int(rng.random() < 0.7)


def _with_all_set(rng: random.Random, members: list[str]) -> tuple[list[str] | None, int]:
    if rng.random() < 0.005:
        return locking.ALL_SET, 1
    return _mixed(rng, members)


WORKLOADS = [
    Workload("1 random member, exclusive", _one_exclusive),
    Workload("1-5 random members, 70% shared", _mixed),
    Workload("1-3 of 20 hot members, 70% shared", _hot),
    Workload("mixed, 0.5% ALL_SET shared", _with_all_set),
]


def run(workload: Workload, nmembers: int, nthreads: int, duration: float,
        seed: int) -> tuple[float, list[float], list[int]]:
    """Run one workload; returns (seconds, sorted latencies, ops per thread)."""
    members = [f"inst{num:04d}" for num in range(nmembers)]
    lockset = locking.LockSet(members, "instance")
    start_gate = threading.Barrier(nthreads + 1)
    stop = threading.Event()
    latencies: list[list[float]] = [[] for _ in range(nthreads)]

    def worker(num: int) -> None:
        rng = random.Random(seed * 1000 + num)
        mine = latencies[num]
        clock = time.perf_counter
        start_gate.wait()
        while not stop.is_set():
            names, shared = workload.pick(rng, members)
            began = clock()
            result = lockset.acquire(names, shared=shared)
            assert result is not None
            lockset.release()
            mine.append(clock() - began)

    threads = [threading.Thread(target=worker, args=(num,), name=f"bench{num}")
               for num in range(nthreads)]
    for thread in threads:
        thread.start()
    start_gate.wait()
    began = time.perf_counter()
    stop.wait(duration)
    stop.set()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    merged = sorted(lat for per_thread in latencies for lat in per_thread)
    return elapsed, merged, [len(per_thread) for per_thread in latencies]


def _percentile(sorted_values: list[float], fraction: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, int(fraction * len(sorted_values)))
    return sorted_values[index]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=3.0,
                        help="seconds per workload (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=25,
                        help="worker threads (default: %(default)s)")
    parser.add_argument("--members", type=int, default=1000,
                        help="members of the LockSet (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    print(f"LockSet of {args.members} members, {args.threads} threads,"
          f" {args.duration:g} s per workload, Python {sys.version.split()[0]},"
          f" {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start")
    header = (f"{'workload':<38} {'threads':>7} {'ops/s':>10} {'p50 us':>9}"
              f" {'p99 us':>9} {'max ms':>8} {'fairness':>8}")
    print(header)
    print("-" * len(header))
    runs = [(workload, 1) for workload in WORKLOADS[:2]]
    runs += [(workload, args.threads) for workload in WORKLOADS]
    for workload, nthreads in runs:
        elapsed, lats, per_thread = run(workload, args.members, nthreads, args.duration,
                                        args.seed)
        # fairness: the slowest thread's share against the fastest one's
        fairness = min(per_thread) / max(per_thread) if max(per_thread) else 0.0
        print(f"{workload.title:<38} {nthreads:>7} {len(lats) / elapsed:>10,.0f}"
              f" {_percentile(lats, 0.50) * 1e6:>9.1f} {_percentile(lats, 0.99) * 1e6:>9.1f}"
              f" {(lats[-1] if lats else 0) * 1e3:>8.2f} {fairness:>8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
