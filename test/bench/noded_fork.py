#!/usr/bin/env python3
"""Benchmark the forking node daemon against the threaded one (issue 15).

For each way of serving (``--servers``, default ``threaded,fork``: the
node daemons started with ``GANETI_NODED_ARGS=--threaded`` or without
it), sets up a fresh virtual cluster of 10 nodes (``--nodes``) with
``tools/vcluster-setup``, checks that every node daemon runs the way
asked, and prints:

- jobs per second: ``OpTestDelay(duration=0.001, on_master=False,
  on_nodes=<all nodes>)`` with 8 jobs in flight (``--parallel``; one
  ``test_delay`` call to every node per job), and the median latency;
- creations per second: ``--create`` (200) diskless ``--no-start``
  creations with 8 jobs in flight, as part (c) of test/bench/instances.py,
  with the job latency median and p90;
- the CPU time per creation of the node daemons (all of them, their
  children included, live or reaped) and of the master daemon;
- the node daemons' processes and their summed Pss afterwards.

A few warm-up jobs run first (connections opened, children forked). At
the end the rates of each server are compared with the first one's (the
target: forking keeps at least 90% of the threaded creation rate).

Run as ``.venv/bin/python test/bench/noded_fork.py [--nodes 10] [--create
200] [--jobs 400] [--parallel 8] [--servers threaded,fork] [--rounds 1]``.
``--rounds 2`` measures each server twice, alternating (a fresh cluster
each time), to see the noise. Every daemon is stopped by PID at the end.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time
from typing import Any

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(_HERE, "..", "integration"))
sys.path.insert(0, _HERE)

import instances  # noqa: E402
from vcluster import VirtualCluster  # noqa: E402

from ganeti import constants, daemon_util, opcodes  # noqa: E402

#: Creation rate the forking daemon must keep, relative to the threaded one
TARGET_RATIO = 0.9
SERVER_ARGS = {"threaded": "--threaded", "fork": ""}


def _Stat(pid: int) -> list[str]:
    with open(f"/proc/{pid}/stat", encoding="ascii") as fd:
        return fd.read().rsplit(")", 1)[1].split()


def _Children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children", encoding="ascii") as fd:
            return [int(child) for child in fd.read().split()]
    except OSError:
        return []


def _Cpu(pid: int, with_children: bool) -> float:
    """CPU seconds of a process (user + system, reaped children included)
    and, ``with_children``, of its live children (recursively)."""
    ticks = os.sysconf("SC_CLK_TCK")
    try:
        used = sum(int(value) for value in _Stat(pid)[11:15]) / ticks
    except OSError:
        return 0.0
    if with_children:
        used += sum(_Cpu(child, True) for child in _Children(pid))
    return used


def DaemonCpu(vc: VirtualCluster) -> dict[str, float]:
    """CPU seconds used so far per kind of daemon; node daemons with their
    children (a child still serving a connection has not been reaped)."""
    totals: dict[str, float] = {}
    for (_, daemon), pid in vc.daemons().items():
        totals[daemon] = totals.get(daemon, 0.0) + _Cpu(pid, daemon == constants.NODED)
    return totals


def _Pss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup", encoding="ascii") as fd:
            for line in fd:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _NodedProcesses(vc: VirtualCluster) -> list[int]:
    pids = [pid for (_, daemon), pid in vc.daemons().items() if daemon == constants.NODED]
    return pids + [child for pid in pids for child in _Children(pid)]


def _CheckServers(vc: VirtualCluster, server: str) -> None:
    """Every node daemon runs the way asked (its command line says)."""
    for (node, daemon), pid in vc.daemons().items():
        if daemon != constants.NODED:
            continue
        with open(f"/proc/{pid}/cmdline", "rb") as fd:
            args = fd.read().split(b"\0")
        if (b"--threaded" in args) != (server == "threaded"):
            raise RuntimeError(f"the node daemon of {node} does not run {server}:"
                               f" {args}")


def RunDelayJobs(vc: VirtualCluster, count: int, parallel: int) -> list[float]:
    """``count`` OpTestDelay jobs sleeping 1 ms on every node, ``parallel``
    in flight; returns their latencies."""
    nodes = vc.names
    lock = threading.Lock()
    left = [count]
    latencies: list[float] = []
    failures: list[str] = []

    def _Worker() -> None:
        cl = instances.LuxiClient(vc)
        try:
            while not failures:
                with lock:
                    if left[0] <= 0:
                        return
                    left[0] -= 1
                begin = time.perf_counter()
                job_id = cl.SubmitJob([opcodes.OpTestDelay(
                    duration=0.001, on_master=False, on_nodes=nodes)])
                status = instances.WaitJob(cl, job_id)
                elapsed = time.perf_counter() - begin
                with lock:
                    if status != constants.JOB_STATUS_SUCCESS:
                        failures.append(f"job {job_id} ended {status}:"
                                        f" {instances.JobError(cl, job_id)}")
                    latencies.append(elapsed)
        except Exception as err:  # reported below
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
    return latencies


def Measure(server: str, opts: argparse.Namespace, label: str) -> dict[str, Any]:
    """Set up a cluster whose node daemons serve as ``server``; measure."""
    os.environ[daemon_util.NODED_ARGS_ENV] = SERVER_ARGS[server]
    directory = tempfile.mkdtemp(prefix="gvbf", dir="/tmp")
    vc = VirtualCluster(directory, nodes=opts.nodes, parallel=opts.setup_parallel)
    begin = time.perf_counter()
    figures: dict[str, Any] = {"server": server}
    try:
        vc.setup()
        _CheckServers(vc, server)
        print(f"[{label}] {server}: virtual cluster of {opts.nodes} nodes on"
              f" {vc.net}.0/24 set up in {time.perf_counter() - begin:.1f} s", flush=True)
        vc.run("gnt-cluster", "modify", "--ipolicy-vcpu-ratio", str(instances.VCPU_RATIO))
        nodes = vc.names
        # Warm up: every node's connections opened (children forked)
        RunDelayJobs(vc, 2 * opts.parallel, opts.parallel)
        instances.RunParallel(vc, [(f"warm-{idx}.example.com", nodes[idx % len(nodes)],
                                    False) for idx in range(opts.parallel)],
                              opts.parallel)

        cpu0 = DaemonCpu(vc)
        start = time.perf_counter()
        latencies = RunDelayJobs(vc, opts.jobs, opts.parallel)
        wall = time.perf_counter() - start
        cpu1 = DaemonCpu(vc)
        figures["jobs_per_sec"] = opts.jobs / wall
        figures["job_median"] = statistics.median(latencies)
        figures["job_noded_cpu"] = (cpu1.get(constants.NODED, 0.0)
                                    - cpu0.get(constants.NODED, 0.0)) / opts.jobs
        print(f"[{label}] {server}: {opts.jobs} OpTestDelay jobs on {len(nodes)} nodes,"
              f" {opts.parallel} in flight: {figures['jobs_per_sec']:.1f} jobs/s,"
              f" median {figures['job_median'] * 1000:.0f} ms; node daemons"
              f" {figures['job_noded_cpu'] * 1000:.1f} ms CPU per job", flush=True)

        jobs = [(f"bench-fork-{idx}.example.com", nodes[idx % len(nodes)], False)
                for idx in range(opts.create)]
        cpu0 = DaemonCpu(vc)
        start = time.perf_counter()
        latencies = instances.RunParallel(vc, jobs, opts.parallel)
        wall = time.perf_counter() - start
        cpu1 = DaemonCpu(vc)
        figures["create_per_sec"] = opts.create / wall
        spent = {kind: (cpu1.get(kind, 0.0) - cpu0.get(kind, 0.0)) / opts.create
                 for kind in sorted(cpu1)}
        figures["create_cpu"] = spent
        print(f"[{label}] {server}: {opts.create} creations (--no-start), {opts.parallel}"
              f" jobs in flight: {wall:.1f} s, {figures['create_per_sec']:.2f}"
              f" instances/s; job latency median {statistics.median(latencies):.3f} s,"
              f" p90 {instances._Pct(latencies, 0.9):.3f} s", flush=True)
        print(f"[{label}] {server}: daemon CPU per creation: "
              + ", ".join(f"{kind} {secs * 1000:.1f} ms" for kind, secs in spent.items()),
              flush=True)
        procs = _NodedProcesses(vc)
        figures["noded_processes"] = len(procs)
        figures["noded_pss_mib"] = sum(_Pss(pid) for pid in procs) / 1024
        print(f"[{label}] {server}: node daemon processes {len(procs)}"
              f" ({opts.nodes} daemons and their children), Pss"
              f" {figures['noded_pss_mib']:.0f} MiB in all", flush=True)
    finally:
        leftovers = vc.cleanup()
        shutil.rmtree(directory, ignore_errors=True)
        if leftovers:
            print(f"daemons still ran after vcluster-setup --stop (killed): {leftovers}",
                  file=sys.stderr)
    return figures


def _Interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def Main() -> int:
    """Run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=10)
    parser.add_argument("--setup-parallel", type=int, default=4)
    parser.add_argument("--create", type=int, default=200)
    parser.add_argument("--jobs", type=int, default=400,
                        help="OpTestDelay jobs for the jobs/s figure")
    parser.add_argument("--parallel", type=int, default=8)
    parser.add_argument("--servers", default="threaded,fork",
                        help="comma-separated: threaded, fork (the first is the"
                        " reference)")
    parser.add_argument("--rounds", type=int, default=1)
    opts = parser.parse_args()
    servers = [name for name in opts.servers.split(",") if name]
    for name in servers:
        if name not in SERVER_ARGS:
            parser.error(f"unknown server {name!r}")
    signal.signal(signal.SIGTERM, _Interrupt)
    print(f"{os.cpu_count()} CPUs", flush=True)
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in servers}
    try:
        for rnd in range(opts.rounds):
            order = servers if rnd % 2 == 0 else list(reversed(servers))
            for name in order:
                results[name].append(Measure(name, opts, f"round {rnd + 1}"))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130

    print("\nsummary (best of rounds):")
    ref = servers[0]
    best = {name: {key: max(run[key] for run in runs)
                   for key in ("jobs_per_sec", "create_per_sec")}
            for name, runs in results.items()}
    for name in servers:
        cpu = statistics.median(run["create_cpu"].get(constants.NODED, 0.0)
                                for run in results[name])
        line = (f"  {name:9s} {best[name]['jobs_per_sec']:7.1f} jobs/s"
                f"  {best[name]['create_per_sec']:6.2f} creations/s"
                f"  node daemons {cpu * 1000:5.1f} ms CPU per creation")
        if name != ref:
            ratio = best[name]["create_per_sec"] / best[ref]["create_per_sec"]
            jobs_ratio = best[name]["jobs_per_sec"] / best[ref]["jobs_per_sec"]
            verdict = "met" if ratio >= TARGET_RATIO else "NOT met"
            line += (f"; {jobs_ratio:.0%} of {ref}'s jobs/s, {ratio:.0%} of its"
                     f" creations/s (target >= {TARGET_RATIO:.0%}: {verdict})")
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(Main())
