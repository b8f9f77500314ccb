#!/usr/bin/env python3
"""Benchmark: hbal's move search on a generated 40-node, 1,000-instance cluster.

The cluster is the one test/bench/hail.py uses (80% DRBD, 20% plain
instances of mixed sizes placed at random; one group), with hbal's default
dynamic utilisation. Prints the number of candidate moves, the time of the
first step (every candidate scored from scratch), of each further step
(only the moves touching the last step's nodes are recomputed) and of a
whole `scripts/hbal -t FILE -l STEPS` process; wall and CPU time, as the
machine may be busy.

Run: .venv/bin/python test/bench/hbal.py [--nodes N] [--instances N] [--steps N]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "..")
sys.path.insert(0, os.path.join(ROOT, "build", "pylib"))
sys.path.insert(0, os.path.join(ROOT, "test", "py", "htools"))

import htoolshelpers as h  # noqa: E402

from ganeti.htools import balance, hbal, loader_iallocator, loader_text  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=40)
    parser.add_argument("--instances", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=5)
    args = parser.parse_args()
    cluster, _ = loader_iallocator.load(h.generate(args.nodes, args.instances, seed=1))
    text = loader_text.serialize(cluster)
    hbal.apply_utilisation(cluster, {})
    group = next(iter(cluster.groups))
    bal = balance.Balancer(cluster, group, balance.Options(max_length=args.steps))
    print(f"cluster: {args.nodes} nodes, {args.instances} instances,"
          f" {len(bal.instances)} movable; initial score {bal.score():.8f}")
    marks = [(time.perf_counter(), time.process_time())]

    def report(move: balance.Move) -> None:
        marks.append((time.perf_counter(), time.process_time()))
        wall = marks[-1][0] - marks[-2][0]
        cpu = marks[-1][1] - marks[-2][1]
        print(f"  step {len(marks) - 1}: {wall:6.2f} s wall {cpu:6.2f} s CPU"
              f"  {move.instance} {move.action()} -> {move.score:.8f}")

    bal.run(report)
    count = sum(len(bal.candidates(inst)) for inst in bal.instances)
    print(f"  candidate moves per step: {count}")
    print(f"  {len(marks) - 1} steps: {marks[-1][0] - marks[0][0]:.2f} s wall,"
          f" {marks[-1][1] - marks[0][1]:.2f} s CPU")

    with tempfile.NamedTemporaryFile("w", suffix=".data", delete=False) as fd:
        fd.write(text)
    try:
        env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "build", "pylib"))
        start = time.perf_counter()
        subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "hbal"), "-t",
                        fd.name, "-l", str(args.steps)],
                       check=True, capture_output=True, env=env)
        print(f"  scripts/hbal -t FILE -l {args.steps} process:"
              f" {time.perf_counter() - start:.2f} s wall")
    finally:
        os.unlink(fd.name)


if __name__ == "__main__":
    main()
