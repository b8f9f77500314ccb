#!/usr/bin/env python3
"""Benchmark ``gnt-cluster verify-disks`` on a virtual cluster holding many
drbd instances.

Sets up a virtual cluster with storage (``--nodes``, default 4: each node
its own loop-backed LVM volume group, DRBD through the stand-in for the
kernel's DRBD, doc/drbd-standin.rst), creates ``--instances`` drbd
instances (default 1000; one 1 GiB disk, ``-o noop+default``, started on
the fake hypervisor, told to have room for them all, so that their disks
are active) through the real path
(``OpInstanceCreate`` over luxi, ``--parallel`` jobs in flight, default 8;
primaries round-robin, each secondary the next node), then runs
``gnt-cluster verify-disks`` ``--rounds`` times (default 3) and prints per
run the wall time of the command and the duration of the
``OpGroupVerifyDisks`` job it waited for (start to end, from the job's own
timestamps). With ``--verify`` it also times one ``gnt-cluster verify``.

Creating 1,000 drbd instances takes long (each creation makes four logical
volumes and two DRBD devices, holding its two nodes' locks meanwhile, and
every DRBD stand-in command of the cluster is serialised): the rate is
printed every 100 instances, overall and of the last 100, and
``--create-budget`` (seconds, default 900) stops creating when it is
spent; the figures are then for the instances made so far (printed).
Needs root (loop devices).

Run as ``.venv/bin/python test/bench/verify_disks.py [--instances 1000]
[--nodes 4] [--parallel 8] [--rounds 3] [--create-budget 900] [--verify]
[--sync-mib-s N]``.
Every daemon is stopped by PID at the end (the cluster's cleanup), also
after an error, and the nodes' loop devices are detached.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                                "integration"))

import instances  # noqa: E402
from vcluster import VirtualCluster  # noqa: E402

from ganeti import constants, opcodes, vcluster  # noqa: E402

DISK_MIB = 1024
#: What the fake hypervisor of every node reports (room for all instances)
FAKE_MEMORY_MIB = 1024 * 1024
FAKE_CPUS = 256


def _CreateOp(name: str, pnode: str, snode: str) -> opcodes.OpInstanceCreate:
    return opcodes.OpInstanceCreate(
        instance_name=name, mode=constants.INSTANCE_CREATE,
        disk_template=constants.DT_DRBD8, disks=[{constants.IDISK_SIZE: DISK_MIB}],
        nics=[{}], pnode=pnode, snode=snode, os_type=instances.OS_NAME, osparams={},
        beparams={}, hvparams={}, start=True, name_check=False, ip_check=False,
        tags=[])


def CreateInstances(vc: VirtualCluster, count: int, parallel: int,
                    budget: float) -> tuple[int, float, list[float]]:
    """Create up to ``count`` drbd instances with ``parallel`` jobs in
    flight, stopping when ``budget`` seconds are spent; return (created,
    seconds, job latencies)."""
    names = list(vc.names)
    todo = [(f"d{idx:05d}.vcluster.test", names[idx % len(names)],
             names[(idx + 1) % len(names)]) for idx in range(count)]
    todo.reverse()
    lock = threading.Lock()
    latencies: list[float] = []
    failures: list[str] = []
    start = time.perf_counter()
    deadline = start + budget
    marks = [start]

    def _Worker() -> None:
        cl = instances.LuxiClient(vc)
        try:
            while True:
                with lock:
                    if failures or not todo or time.perf_counter() > deadline:
                        return
                    name, pnode, snode = todo.pop()
                begin = time.perf_counter()
                job_id = cl.SubmitJob([_CreateOp(name, pnode, snode)])
                status = instances.WaitJob(cl, job_id)
                with lock:
                    if status != constants.JOB_STATUS_SUCCESS:
                        failures.append(f"job {job_id} creating {name} ended {status}:"
                                        f" {instances.JobError(cl, job_id)}")
                        return
                    now = time.perf_counter()
                    latencies.append(now - begin)
                    done = len(latencies)
                    if done % 100 == 0:
                        print(f"  {done} created in {now - start:.0f} s"
                              f" ({done / (now - start):.2f}/s; the last 100:"
                              f" {100 / (now - marks[-1]):.2f}/s)", flush=True)
                        marks.append(now)
        except Exception as err:  # noqa: BLE001 - reported below
            with lock:
                failures.append(f"{type(err).__name__}: {err}")
        finally:
            cl.Close()

    threads = [threading.Thread(target=_Worker, daemon=True) for _ in range(parallel)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise RuntimeError(failures[0])
    return len(latencies), time.perf_counter() - start, latencies


def PrepareNodes(vc: VirtualCluster) -> None:
    """Give every node room for the started instances: the fake
    hypervisor's memory and CPUs (its settings file) and the instance
    policy's vCPU ratio."""
    for node in vc.names:
        path = vc.path(node, os.path.join(constants.DEFAULT_CONF_DIR,
                                         "fake-hypervisor.json"))
        path.write_text(json.dumps({"memory_total": FAKE_MEMORY_MIB,
                                    "cpu_total": FAKE_CPUS}))
    vc.run("gnt-cluster", "modify", "--ipolicy-vcpu-ratio", str(instances.VCPU_RATIO))


def _Seconds(value: Any) -> float | None:
    """A job timestamp ((secs, usecs) or a number) in seconds."""
    if isinstance(value, (list, tuple)) and len(value) == 2:
        return float(value[0]) + float(value[1]) / 1e6
    if isinstance(value, (int, float)):
        return float(value)
    return None


def _GroupJobs(vc: VirtualCluster) -> dict[Any, tuple[float | None, float | None, str]]:
    """{job id: (start, end, status)} of the OpGroupVerifyDisks jobs."""
    cl = instances.LuxiClient(vc)
    try:
        rows = cl.QueryJobs(None, ["id", "summary", "start_ts", "end_ts", "status"])
    finally:
        cl.Close()
    return {row[0]: (_Seconds(row[2]), _Seconds(row[3]), row[4]) for row in rows
            if row and any(str(s).startswith("GROUP_VERIFY_DISKS") for s in row[1] or [])}


def TimeVerifyDisks(vc: VirtualCluster) -> tuple[float, float, str]:
    """Run ``gnt-cluster verify-disks``; return (wall seconds, the group
    job's own seconds, the command's last output line)."""
    before = set(_GroupJobs(vc))
    begin = time.perf_counter()
    result = vc.run("gnt-cluster", "verify-disks", check=False, timeout=3600)
    wall = time.perf_counter() - begin
    if result.returncode != 0:
        raise RuntimeError(f"gnt-cluster verify-disks failed:\n{result.stdout}"
                           f"{result.stderr}")
    new = {job_id: info for job_id, info in _GroupJobs(vc).items() if job_id not in before}
    durations = [end - start for start, end, _ in new.values()
                 if start is not None and end is not None]
    lines = result.stdout.strip().splitlines()
    return wall, max(durations) if durations else float("nan"), lines[-1] if lines else ""


def TimeVerify(vc: VirtualCluster) -> tuple[float, int, int]:
    """Run ``gnt-cluster verify``; return (wall seconds, exit code, number of
    problem lines)."""
    begin = time.perf_counter()
    result = vc.run("gnt-cluster", "verify", check=False, timeout=3600)
    wall = time.perf_counter() - begin
    problems = [line for line in result.stdout.splitlines()
                if line.strip().startswith(("- ERROR", "- WARNING"))]
    for line in problems[:5]:
        print(f"    {line.strip()}")
    return wall, result.returncode, len(problems)


def _LvCount(vc: VirtualCluster) -> list[int]:
    import subprocess
    counts = []
    for node in vc.nodes:
        env = dict(os.environ, LVM_SYSTEM_DIR=os.path.join(node.root, "etc/lvm"),
                   LVM_SUPPRESS_FD_WARNINGS="1")
        out = subprocess.run(["vgs", "--noheadings", "-o", "lv_count", "xenvg"], env=env,
                             capture_output=True, text=True, check=False).stdout
        counts.append(int(out.strip() or 0))
    return counts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=1000)
    parser.add_argument("--nodes", type=int, default=4)
    parser.add_argument("--parallel", type=int, default=8, help="creation jobs in flight")
    parser.add_argument("--rounds", type=int, default=3, help="verify-disks runs")
    parser.add_argument("--sync-mib-s", type=int, default=None,
                        help="the DRBD stand-in's simulated resync speed (default its"
                        " own, 256 MiB/s, which every creation waits for); a huge"
                        " value makes populating the cluster faster")
    parser.add_argument("--create-budget", type=float, default=900.0,
                        help="seconds the creations may take at most")
    parser.add_argument("--verify", action="store_true",
                        help="also time one gnt-cluster verify")
    args = parser.parse_args()
    if args.sync_mib_s:
        # Inherited by the node daemons the setup starts, and by the stand-in
        os.environ["DRBD_STANDIN_SYNC_MIB_S"] = str(args.sync_mib_s)
    if not vcluster.StorageAvailable():
        print("needs root, lvm2 and loop devices", file=sys.stderr)
        return 1
    directory = tempfile.mkdtemp(prefix="gvbd", dir="/tmp")
    vc = VirtualCluster(directory, nodes=args.nodes, parallel=4, storage=True)
    try:
        print(f"setting up a {args.nodes}-node virtual cluster with storage ...",
              flush=True)
        begin = time.perf_counter()
        vc.setup()
        print(f"  set up in {time.perf_counter() - begin:.0f} s", flush=True)
        PrepareNodes(vc)
        print(f"creating {args.instances} drbd instances ({args.parallel} jobs in"
              f" flight, budget {args.create_budget:.0f} s) ...", flush=True)
        created, elapsed, latencies = CreateInstances(vc, args.instances, args.parallel,
                                                      args.create_budget)
        latencies.sort()
        print(f"created {created} drbd instances in {elapsed:.0f} s:"
              f" {created / elapsed:.2f}/s; job latency median"
              f" {statistics.median(latencies):.1f} s, max {latencies[-1]:.1f} s"
              if latencies else f"created no instance in {elapsed:.0f} s", flush=True)
        print(f"logical volumes per node: {_LvCount(vc)}", flush=True)
        instances.WaitQuiet(vc)
        print(f"gnt-cluster verify-disks with {created} drbd instances on"
              f" {args.nodes} nodes:", flush=True)
        walls, jobs = [], []
        for idx in range(args.rounds):
            wall, job, last = TimeVerifyDisks(vc)
            walls.append(wall)
            jobs.append(job)
            print(f"  run {idx + 1}: wall {wall:.2f} s, group job {job:.2f} s ({last})",
                  flush=True)
        print(f"verify-disks: wall median {statistics.median(walls):.2f} s, group job"
              f" median {statistics.median(jobs):.2f} s", flush=True)
        if args.verify:
            wall, code, problems = TimeVerify(vc)
            print(f"gnt-cluster verify: wall {wall:.2f} s, exit code {code},"
                  f" {problems} problem line(s)", flush=True)
        return 0
    finally:
        leftovers = vc.cleanup()
        if leftovers:
            print(f"daemons still running after the stop: {leftovers}", file=sys.stderr)
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
