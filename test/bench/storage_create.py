#!/usr/bin/env python3
"""Creations per second of ``plain`` and ``drbd`` instances.

Sets up a virtual cluster with storage (``--nodes``, default 10: each node
its own loop-backed LVM volume group; DRBD through the stand-in for the
kernel's DRBD, see doc/drbd-standin.rst), then creates ``--count``
instances per template (default 100; 1 GiB disk, ``-o noop+default``, not
started) with ``--parallel`` jobs in flight (default 8), spreading
primaries (and drbd secondaries: the next node) over the nodes, and prints
per template: creations per second, job latency median/p90, and the
daemons' CPU per creation. Needs root (loop devices).

Run as ``.venv/bin/python test/bench/storage_create.py [--nodes 10]
[--count 100] [--parallel 8] [--sync-mib-s N]``. Every daemon is stopped by PID at the end
and the nodes' loop devices are detached.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                                "integration"))

import instances  # noqa: E402
from vcluster import VirtualCluster  # noqa: E402

from ganeti import constants, opcodes, vcluster  # noqa: E402


def _Op(template: str, names: list[str]):
    def _Make(name: str, node: str, start: bool) -> opcodes.OpInstanceCreate:
        snode = None
        if template == constants.DT_DRBD8:
            snode = names[(names.index(node) + 1) % len(names)]
        return opcodes.OpInstanceCreate(
            instance_name=name, mode=constants.INSTANCE_CREATE, disk_template=template,
            disks=[{constants.IDISK_SIZE: 1024}], nics=[{}], pnode=node, snode=snode,
            os_type=instances.OS_NAME, osparams={}, beparams={}, hvparams={},
            start=start, name_check=False, ip_check=False, tags=[])
    return _Make


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=10)
    parser.add_argument("--count", type=int, default=100, help="instances per template")
    parser.add_argument("--parallel", type=int, default=8, help="jobs in flight")
    parser.add_argument("--sync-mib-s", type=int, default=None,
                        help="the DRBD stand-in's simulated resync speed (default its"
                        " own, 256 MiB/s: 4 s per 1 GiB disk, which the creation"
                        " waits for); a huge value leaves only our own costs")
    args = parser.parse_args()
    if args.sync_mib_s:
        # Inherited by the node daemons the setup starts, and by the stand-in
        os.environ["DRBD_STANDIN_SYNC_MIB_S"] = str(args.sync_mib_s)
    if not vcluster.StorageAvailable():
        print("needs root, lvm2 and loop devices", file=sys.stderr)
        return 1
    directory = tempfile.mkdtemp(prefix="gvbs", dir="/tmp")
    vc = VirtualCluster(directory, nodes=args.nodes, parallel=4, storage=True)
    try:
        print(f"setting up a {args.nodes}-node virtual cluster with storage ...",
              flush=True)
        vc.setup()
        names = list(vc.names)
        for template in (constants.DT_PLAIN, constants.DT_DRBD8):
            jobs = [(f"{template}{i}.vcluster.test", names[i % len(names)], False)
                    for i in range(args.count)]
            instances.WaitQuiet(vc)
            cpu_before = instances.DaemonCpu(vc)
            start = time.perf_counter()
            latencies = instances.RunParallel(vc, jobs, args.parallel,
                                              make_op=_Op(template, names))
            elapsed = time.perf_counter() - start
            cpu_after = instances.DaemonCpu(vc)
            cpu = sum(cpu_after.values()) - sum(cpu_before.values())
            latencies.sort()
            print(f"{template}: {args.count} creations with {args.parallel} in flight in"
                  f" {elapsed:.1f} s: {args.count / elapsed:.1f}/s; job latency median"
                  f" {statistics.median(latencies):.2f} s, p90"
                  f" {latencies[int(0.9 * (len(latencies) - 1))]:.2f} s; daemons' CPU"
                  f" {1000 * cpu / args.count:.0f} ms per creation", flush=True)
    finally:
        leftovers = vc.cleanup()
        if leftovers:
            print(f"daemons left running: {leftovers}")
        shutil.rmtree(directory, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
