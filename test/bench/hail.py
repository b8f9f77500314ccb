#!/usr/bin/env python3
"""Benchmark: hail on a generated 40-node, 1,000-instance cluster.

The input is an iallocator message as Ganeti's master builds it (80% DRBD,
20% plain instances of mixed sizes, 10% of them down; one group). Prints,
per request type, the median time of a whole in-process run (JSON parsing,
model building, solving) and the resulting requests per second; then
allocations per second of the solver alone, allocating instance after
instance into the same model (as multi-allocate and hspace do); and the
wall time of one `iallocators/hail` process.

Run: .venv/bin/python test/bench/hail.py [--nodes N] [--instances N] [--repeat N]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "..")
sys.path.insert(0, os.path.join(ROOT, "build", "pylib"))
sys.path.insert(0, os.path.join(ROOT, "test", "py", "htools"))

import htoolshelpers as h  # noqa: E402

from ganeti.htools import allocate, hail, loader_iallocator  # noqa: E402
from ganeti.htools.allocate import Options  # noqa: E402


def _median_ms(func, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=40)
    parser.add_argument("--instances", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    msg = h.generate(args.nodes, args.instances, seed=1)
    busy = max(msg["nodes"], key=lambda n: sum(n in i["nodes"]
                                               for i in msg["instances"].values()))
    on_busy = sorted(n for n, i in msg["instances"].items() if busy in i["nodes"])
    drbd = sorted(n for n, i in msg["instances"].items() if i["disk_template"] == "drbd")
    requests = {
        "allocate drbd": h.alloc_request("new.example.com", memory=2048),
        "allocate plain": h.alloc_request("new.example.com", memory=2048,
                                          template="plain"),
        "relocate drbd": {"type": "relocate", "name": drbd[0], "required_nodes": 1,
                          "relocate_from": msg["instances"][drbd[0]]["nodes"][1:]},
        f"node-evacuate secondary-only ({len(on_busy)} inst.)": {
            "type": "node-evacuate", "instances": on_busy,
            "evac_mode": "secondary-only"},
        f"node-evacuate all ({len(on_busy)} inst.)": {
            "type": "node-evacuate", "instances": on_busy, "evac_mode": "all"},
        "multi-allocate (10 drbd)": {
            "type": "multi-allocate",
            "instances": [h.alloc_request(f"m{i}.example.com") for i in range(10)]},
    }
    text = json.dumps(dict(msg, request=requests["allocate drbd"]))
    print(f"cluster: {args.nodes} nodes, {args.instances} instances,"
          f" input {len(text) / 1024:.0f} KiB")
    load_ms = _median_ms(lambda: loader_iallocator.load(text), args.repeat)
    print(f"  parse + build model: {load_ms:8.1f} ms")
    for title, req in requests.items():
        body = json.dumps(dict(msg, request=req))
        out = hail.run(body).to_dict()
        assert out["success"], out["info"]
        ms = _median_ms(lambda body=body: hail.run(body), args.repeat)
        print(f"  {title:42s} {ms:8.1f} ms  {1000 / ms:7.1f} requests/s")

    for template in ("drbd", "plain"):
        cluster, _ = loader_iallocator.load(text)
        opts = Options()
        count = 0
        start = time.perf_counter()
        while time.perf_counter() - start < 2.0:
            inst = cluster.prepare_instance(loader_iallocator.parse_instance(
                f"x{count}", h.alloc_request(f"x{count}", memory=512, disks=(2048,),
                                             template=template)))
            place, info = allocate.find_allocation(
                cluster, inst, 2 if template == "drbd" else 1, opts)
            if place is None:
                break
            allocate.commit(cluster, inst, place)
            count += 1
        elapsed = time.perf_counter() - start
        print(f"  solver only, successive {template} allocations: {count / elapsed:7.1f}"
              f" allocations/s ({count} in {elapsed:.2f} s)")

    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fd:
        fd.write(text)
    try:
        env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "build", "pylib"))
        start = time.perf_counter()
        subprocess.run([sys.executable, os.path.join(ROOT, "iallocators", "hail"), fd.name],
                       check=True, capture_output=True, env=env)
        print(f"  iallocators/hail process (allocate drbd): "
              f"{(time.perf_counter() - start) * 1000:8.1f} ms wall")
    finally:
        os.unlink(fd.name)


if __name__ == "__main__":
    main()
