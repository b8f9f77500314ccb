#!/usr/bin/env python3
"""Benchmark the allocator and the cluster tools at issue 19's sizes.

1. hail ``allocate`` (drbd and plain) on generated clusters of 100 and
   1,000 nodes holding 10,000 instances (80% DRBD, 20% plain, mixed sizes,
   10% down; nodes sized so that they are about two thirds full): answers
   per second of whole in-process runs (JSON parsing, model building,
   solving), and the wall time of one ``iallocators/hail`` process.
2. ``hbal`` on a 200-node, 4,000-instance cluster file (htools' text
   format) whose instances are placed at random (``--crowd F``: on a
   fraction of the nodes only): the time to the solution and the score
   reached (``scripts/hbal -t FILE``, as an
   administrator runs it).
3. ``hspace`` on the same file: the time (``scripts/hspace -t FILE
   --machine-readable --standard-alloc SPEC``, default 30G,4G,2).

Run: .venv/bin/python test/bench/htools.py [--repeat N] [--skip-1000]
[--only allocate|hbal] [--hbal-steps N] [--hspace-spec DISK,RAM,CPU]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "build", "pylib"))
sys.path.insert(0, os.path.join(ROOT, "test", "py", "htools"))

import htoolshelpers as h  # noqa: E402

from ganeti.htools import hail, loader_iallocator, loader_text  # noqa: E402


def Generate(n_nodes: int, n_instances: int, seed: int = 1,
             crowd: float = 1.0, request: dict | None = None) -> dict:
    """An iallocator message; the instances go to the first ``crowd``
    fraction of the nodes (1.0: all of them)."""
    rnd = random.Random(seed)
    per_node = max(1, n_instances * 2 // max(1, int(n_nodes * crowd)))
    # room for about 1.5 times the instances the crowded nodes get
    memory = per_node * 1536 * 3 // 2 + 8192
    disk = per_node * 30000 * 3 // 2 + 1048576
    nodes = {f"node{i:04d}.example.com":
             h.node(memory=memory, disk=disk, cpus=max(32, per_node))
             for i in range(n_nodes)}
    names = sorted(nodes)[:max(2, int(n_nodes * crowd))]
    instances = {}
    for i in range(n_instances):
        template = "drbd" if rnd.random() < 0.8 else "plain"
        placed = rnd.sample(names, 2 if template == "drbd" else 1)
        instances[f"inst{i:05d}.example.com"] = h.instance(
            placed, memory=rnd.choice([512, 1024, 2048]),
            disks=(rnd.choice([10240, 20480, 30720]),), template=template,
            vcpus=rnd.choice([1, 2]),
            admin_state="up" if rnd.random() < 0.9 else "down")
    msg = h.message(nodes, instances, request or h.alloc_request("new.example.com"))
    # a generous policy: the benchmark measures the search, not refusals
    for group in msg["nodegroups"].values():
        group["ipolicy"]["vcpu-ratio"] = 64.0
        group["ipolicy"]["spindle-ratio"] = 1024.0
    msg["ipolicy"] = dict(msg.get("ipolicy") or {}, **{"vcpu-ratio": 64.0,
                                                       "spindle-ratio": 1024.0})
    return msg


def _Median(func, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def BenchAllocate(n_nodes: int, n_instances: int, repeat: int) -> None:
    print(f"hail allocate, {n_nodes} nodes, {n_instances} instances:", flush=True)
    for template in ("drbd", "plain"):
        msg = Generate(n_nodes, n_instances, request=h.alloc_request(
            "new.example.com", memory=1024, template=template))
        text = json.dumps(msg)
        outcome = hail.run(text).to_dict()
        ok = outcome["success"]
        secs = _Median(lambda text=text: hail.run(text), repeat)
        print(f"  {template}: {secs * 1000:.0f} ms per answer ({1 / secs:.1f} answers/s),"
              f" success={ok}, nodes {' '.join(outcome['result'])}", flush=True)
        if template == "drbd":
            with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fd:
                fd.write(text)
            try:
                start = time.perf_counter()
                subprocess.run([sys.executable, os.path.join(ROOT, "iallocators", "hail"),
                                fd.name], check=True, capture_output=True)
                print(f"  iallocators/hail process (drbd):"
                      f" {time.perf_counter() - start:.2f} s wall", flush=True)
            finally:
                os.unlink(fd.name)


def _Tool(name: str, *args: str) -> tuple[float, str]:
    start = time.perf_counter()
    result = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", name), *args],
                            capture_output=True, text=True, check=False)
    secs = time.perf_counter() - start
    if result.returncode not in (0, 1):
        raise RuntimeError(f"{name} failed ({result.returncode}): {result.stderr[-2000:]}")
    return secs, result.stdout + result.stderr


def BenchHbalHspace(n_nodes: int, n_instances: int, steps: int | None,
                    spec: str, crowd: float) -> None:
    msg = Generate(n_nodes, n_instances, seed=2, crowd=crowd)
    cluster, _ = loader_iallocator.load(json.dumps(msg))
    with tempfile.NamedTemporaryFile("w", suffix=".data", delete=False) as fd:
        fd.write(loader_text.serialize(cluster))
    try:
        print(f"hbal, {n_nodes} nodes, {n_instances} instances placed at random on"
              f" {crowd:.0%} of the nodes:", flush=True)
        secs, out = _Tool("hbal", "-t", fd.name,
                          *(["-l", str(steps)] if steps else []))
        init = re.search(r"[Ii]nitial score:\s*([0-9.]+)", out)
        final = re.search(r"(?:[Ff]inal score:|improved from [0-9.]+ to)\s*([0-9.]+)", out)
        moves = len(re.findall(r"^\s*\d+\.\s", out, re.M))
        print(f"  {secs:.1f} s to the solution; score {init.group(1) if init else '?'}"
              f" -> {final.group(1) if final else '?'} in {moves} moves", flush=True)
        print("hspace on the same file:", flush=True)
        secs, out = _Tool("hspace", "-t", fd.name, "--machine-readable",
                          "--standard-alloc", spec)
        count = re.search(r"HTS_ALLOC_INSTANCES=(\d+)", out)
        print(f"  {secs:.1f} s; {count.group(1) if count else '?'} more instances of"
              f" {spec} (disk,ram,cpu) fit", flush=True)
    finally:
        os.unlink(fd.name)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-1000", action="store_true",
                        help="leave out the 1,000-node allocation")
    parser.add_argument("--only", choices=["allocate", "hbal"], default=None)
    parser.add_argument("--hbal-steps", type=int, default=None,
                        help="stop hbal after this many moves (default: until no"
                        " move improves the score)")
    parser.add_argument("--crowd", type=float, default=1.0,
                        help="the fraction of the nodes the instances are placed on"
                        " (default 1: all; 0.25 makes hbal move thousands)")
    parser.add_argument("--hspace-spec", default="30G,4G,2",
                        help="hspace's --standard-alloc (the policy's 128 MiB"
                        " standard spec would fit hundreds of thousands)")
    args = parser.parse_args()
    if args.only in (None, "allocate"):
        BenchAllocate(100, 10000, args.repeat)
        if not args.skip_1000:
            BenchAllocate(1000, 10000, args.repeat)
    if args.only in (None, "hbal"):
        BenchHbalHspace(200, 4000, args.hbal_steps, args.hspace_spec, args.crowd)
    return 0


if __name__ == "__main__":
    sys.exit(main())
