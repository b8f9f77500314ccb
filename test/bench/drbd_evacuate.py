#!/usr/bin/env python3
"""Seconds to move the DRBD secondaries off a node (``gnt-node evacuate -s``).

Sets up a virtual cluster with storage (``--nodes``, default 3: each node
its own loop-backed LVM volume group; DRBD through the stand-in for the
kernel's DRBD, see doc/drbd-standin.rst), creates ``--instances`` drbd
instances (default 100; one 1 GiB disk, ``-o noop+default``, not started)
with primary node1 and secondary node2 (``--ignore-ipolicy``: node1 gets more
vCPUs than the policy allows), ``--parallel`` creation jobs in
flight (default 8), then times

- ``gnt-node evacuate -f -s --new-secondary node3 node2`` (every replace-disks
  job holds the three nodes' resource locks until its resync ended, as in
  Ganeti, so the jobs run one after the other), and
- ``gnt-node evacuate -f -s --early-release --new-secondary node2 node3``
  (the old storage is removed before the resync and the node locks are
  released while it runs, so the jobs overlap up to the master's worker
  pool),

printing for each the wall time, the time per instance and the daemons'
CPU per instance (node daemons with the DRBD and LVM commands they ran).
The stand-in resyncs at its default 256 MiB/s, so each 1 GiB resync takes
4 s. ``--rounds plain`` or ``early`` runs one of them. Needs root (loop
devices).

Run as ``.venv/bin/python test/bench/drbd_evacuate.py [--instances 100]
[--parallel 8] [--rounds both]``. Every daemon is stopped by PID at the end
(the cluster's cleanup) and the nodes' loop devices are detached, also
after an error.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                                "integration"))

import instances  # noqa: E402
from vcluster import VirtualCluster  # noqa: E402

from ganeti import constants, opcodes, vcluster  # noqa: E402

#: Seconds one evacuation may take at most
EVACUATE_TIMEOUT = 3 * 3600
_TICKS = os.sysconf("SC_CLK_TCK")


def _CreateOp(snode: str):
    def _Make(name: str, node: str, start: bool) -> opcodes.OpInstanceCreate:
        return opcodes.OpInstanceCreate(
            instance_name=name, mode=constants.INSTANCE_CREATE,
            disk_template=constants.DT_DRBD8, disks=[{constants.IDISK_SIZE: 1024}],
            nics=[{}], pnode=node, snode=snode, os_type=instances.OS_NAME, osparams={},
            beparams={}, hvparams={}, start=start, name_check=False, ip_check=False,
            wait_for_sync=False, ignore_ipolicy=True, tags=[])
    return _Make


def _ProcCpu(pid: int) -> tuple[int, float] | None:
    """(parent pid, CPU seconds of the process and its waited-for children)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fd:
            fields = fd.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    # ppid is field 4, utime..cstime fields 14-17 of proc(5)
    return int(fields[1]), sum(int(value) for value in fields[11:15]) / _TICKS


def _DaemonCpu(vc: VirtualCluster) -> dict[str, float]:
    """CPU seconds used so far per kind of daemon, counting the children
    still running too (a node daemon serves each kept-open connection in a
    child, whose CPU reaches the parent's only when it ends)."""
    procs = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            info = _ProcCpu(int(entry))
            if info is not None:
                procs[int(entry)] = info
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in procs.items():
        children.setdefault(ppid, []).append(pid)
    totals: dict[str, float] = {}
    for (_, daemon), pid in vc.daemons().items():
        todo, used = [pid], 0.0
        while todo:
            current = todo.pop()
            used += procs.get(current, (0, 0.0))[1]
            todo.extend(children.get(current, []))
        totals[daemon] = totals.get(daemon, 0.0) + used
    return totals


def _Secondaries(vc: VirtualCluster) -> dict[str, int]:
    """How many instances each node is the secondary of."""
    out = vc.run("gnt-instance", "list", "--no-headers", "-o", "snodes").stdout
    result: dict[str, int] = {}
    for line in out.split():
        result[line] = result.get(line, 0) + 1
    return result


def _Evacuate(vc: VirtualCluster, source: str, target: str, count: int,
              early: bool) -> str:
    instances.WaitQuiet(vc)
    cpu_before = _DaemonCpu(vc)
    args = ["evacuate", "-f", "-s", "--new-secondary", target, source]
    if early:
        args.insert(2, "--early-release")
    begin = time.perf_counter()
    vc.run("gnt-node", *args, timeout=EVACUATE_TIMEOUT)
    elapsed = time.perf_counter() - begin
    cpu_after = _DaemonCpu(vc)
    cpu = {daemon: cpu_after[daemon] - cpu_before.get(daemon, 0.0)
           for daemon in cpu_after}
    moved = _Secondaries(vc)
    if moved.get(target) != count or moved.get(source):
        raise RuntimeError(f"after the evacuation the secondaries are {moved}")
    label = "--early-release" if early else "plain"
    per_daemon = ", ".join(f"{daemon} {1000 * used / count:.0f}"
                           for daemon, used in sorted(cpu.items()) if used >= 0.01)
    return (f"{label}: {count} instances from {source} to {target} in {elapsed:.1f} s:"
            f" {elapsed / count:.2f} s per instance; daemons' CPU"
            f" {1000 * sum(cpu.values()) / count:.0f} ms per instance ({per_daemon})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--instances", type=int, default=100)
    parser.add_argument("--parallel", type=int, default=8,
                        help="creation jobs in flight")
    parser.add_argument("--rounds", choices=("both", "plain", "early"), default="both")
    args = parser.parse_args()
    if args.nodes < 3:
        parser.error("--nodes must be at least 3")
    if not vcluster.StorageAvailable():
        print("needs root, lvm2 and loop devices", file=sys.stderr)
        return 1
    directory = tempfile.mkdtemp(prefix="gvbe", dir="/tmp")
    vc = VirtualCluster(directory, nodes=args.nodes, parallel=4, storage=True)
    try:
        print(f"setting up a {args.nodes}-node virtual cluster with storage ...",
              flush=True)
        vc.setup()
        pnode, node2, node3 = vc.names[:3]
        jobs = [(f"evac{i}.vcluster.test", pnode, False) for i in range(args.instances)]
        begin = time.perf_counter()
        instances.RunParallel(vc, jobs, args.parallel, make_op=_CreateOp(node2))
        print(f"created {args.instances} drbd instances ({pnode}:{node2}) in"
              f" {time.perf_counter() - begin:.1f} s", flush=True)
        time.sleep(5)  # the initial resyncs (4 s for 1 GiB)
        source, target = node2, node3
        for early in {"both": (False, True), "plain": (False,),
                      "early": (True,)}[args.rounds]:
            print(_Evacuate(vc, source, target, args.instances, early), flush=True)
            source, target = target, source
    finally:
        leftovers = vc.cleanup()
        if leftovers:
            print(f"daemons left running: {leftovers}")
        shutil.rmtree(directory, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
