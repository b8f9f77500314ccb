#!/usr/bin/env python3
"""Benchmark the master daemon end to end: jobs per second through luxi.

Starts a real ``ganeti-masterd`` (job files persisted and fsynced, as in
production) in a temporary node root, then prints:

- jobs per second for ``OpTestDelay(duration=0.001)`` submitted by 1 and by
  8 concurrent luxi clients, each client submitting a job and following it
  with WaitForJobChange until it succeeds, as ``gnt-debug delay`` does;
- the median and 99th percentile latency from submit to success;
- the daemon's memory (VmRSS) idle, with 10,000 archived jobs, and with
  1,000 more jobs queued behind a job that holds the master node's lock.

The archived jobs are written as job files before the daemon starts. The
clients are separate processes, so that they do not share the benchmark
process's interpreter lock. Run as ``.venv/bin/python test/bench/jobs.py``.
Targets on a 2-core machine: at least 300 jobs/s with 8 clients and a
median latency under 20 ms. ``--privsep`` (as root) runs the daemon as its
own unprivileged user, for comparing the figures with privilege separation.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))

import conftest as cluster  # noqa: E402
import privsep  # noqa: E402

from ganeti import constants, opcodes  # noqa: E402

TARGET_JOBS_PER_SEC = 300
TARGET_MEDIAN_MS = 20
FINAL = constants.JOBS_FINALIZED


def _RunJob(cl, op) -> float:
    """Submit one job, follow it to its end; return the latency in seconds."""
    start = time.perf_counter()
    job_id = cl.SubmitJob([op])
    info = None
    while True:
        result = cl.WaitForJobChangeOnce(job_id, ["status"], info, None, timeout=30)
        if result == constants.JOB_NOTCHANGED:
            continue
        info = result[0]
        if info[0] in FINAL:
            break
    elapsed = time.perf_counter() - start
    if info[0] != constants.JOB_STATUS_SUCCESS:
        raise RuntimeError(f"job {job_id} ended with status {info[0]}")
    return elapsed


def _Client(args: tuple[str, int, float]) -> tuple[list[float], float]:
    socket_path, count, start_at = args
    cl = cluster.luxi_client.Client(socket_path, timeouts=(10, 60))
    op = opcodes.OpTestDelay(duration=0.001)
    _RunJob(cl, op)  # connect and warm up outside the measurement
    while time.time() < start_at:
        time.sleep(0.001)
    latencies = [_RunJob(cl, op) for _ in range(count)]
    ended = time.time()
    cl.Close()
    return latencies, ended


def _Throughput(master: cluster.Master, clients: int, jobs: int) -> dict[str, float]:
    per_client = max(1, jobs // clients)
    start_at = time.time() + 0.5
    cpu_before = _CpuSeconds(master.pid)
    with multiprocessing.get_context("fork").Pool(clients) as pool:
        results = pool.map(_Client, [(master.socket_path, per_client, start_at)] * clients)
    # Wall time from the common start signal to the last client's end
    latencies = sorted(lat for res, _ in results for lat in res)
    wall = max(ended for _, ended in results) - start_at
    # Includes the clients' warm-up jobs, a handful against thousands
    master_cpu = _CpuSeconds(master.pid) - cpu_before
    total = len(latencies)
    return {
        "clients": clients,
        "jobs": total,
        "jobs_per_sec": total / wall if wall else 0.0,
        "median_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[min(total - 1, int(total * 0.99))] * 1000,
        "master_cpu_ms_per_job": master_cpu / total * 1000,
    }


def _CpuSeconds(pid: int) -> float:
    """User plus system CPU time of a process."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _VmRSS(pid: int) -> int:
    """Resident memory of a process in KiB."""
    with open(f"/proc/{pid}/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def _WriteArchivedJobs(master: cluster.Master, count: int, first_id: int) -> int:
    """Write ``count`` finished jobs straight into the archive; return the last id."""
    now = time.time()
    stamp = [int(now), 0]
    for job_id in range(first_id, first_id + count):
        job = {
            "id": job_id,
            "ops": [{"input": {"OP_ID": "OP_TEST_DELAY", "duration": 0.001,
                               "on_master": True, "on_nodes": [], "repeat": 0,
                               "priority": 0, "debug_level": 0, "dry_run": False},
                     "status": "success", "result": None,
                     "log": [[1, stamp, "message", "Test delay done"]],
                     "priority": 0, "start_timestamp": stamp,
                     "exec_timestamp": stamp, "end_timestamp": stamp}],
            "received_timestamp": stamp, "start_timestamp": stamp,
            "end_timestamp": stamp, "log_serial": 1,
        }
        bucket = job_id // constants.JOB_ARCHIVE_DIRECTORY_SIZE
        directory = master.queue_dir / "archive" / str(bucket)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / f"job-{job_id}").write_text(json.dumps(job))
    last = first_id + count - 1
    (master.queue_dir / "serial").write_text(f"{last}\n")
    return last


def _Memory(master: cluster.Master, archived: int, queued: int) -> dict[str, int]:
    figures = {"idle_kib": _VmRSS(master.pid)}
    master.stop()
    _WriteArchivedJobs(master, archived, 1_000_000)
    master.start("--shutdown-timeout", "1")
    with master.luxi_client() as cl:
        # Touch some archived jobs so the daemon really knows about them
        rows = cl.QueryJobs([1_000_000, 1_000_000 + archived - 1], ["status"])
        assert rows == [["success"], ["success"]], rows
        figures["archived_kib"] = _VmRSS(master.pid)
        blocker = cl.SubmitJob([opcodes.OpTestDelay(duration=3600, no_locks=False)])
        for _ in range(queued):
            cl.SubmitJob([opcodes.OpTestDelay(duration=0.001, no_locks=False)])
        statuses = cl.QueryJobs(None, ["status"])
        figures["pending"] = sum(1 for (status,) in statuses
                                 if status in (constants.JOB_STATUS_QUEUED,
                                               constants.JOB_STATUS_WAITING))
        figures["archived_and_queued_kib"] = _VmRSS(master.pid)
        del blocker
    master.kill()
    return figures


def Main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2000,
                        help="Jobs per throughput run (default 2000)")
    parser.add_argument("--archived", type=int, default=10_000)
    parser.add_argument("--queued", type=int, default=1_000)
    parser.add_argument("--privsep", action="store_true",
                        help="Run the daemon as its own unprivileged user (as root;"
                             " users are created for the run)")
    options = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-jobs-") as tmp, \
            contextlib.ExitStack() as stack:
        os.chmod(tmp, 0o755)
        users = stack.enter_context(privsep.DaemonUsers(Path(tmp))) \
            if options.privsep else None
        master = cluster.Master(Path(tmp), privsep=users)
        master.start()
        if users is not None:
            print(f"privilege separation: masterd runs as {users.names.masterd_user}")
        try:
            print(f"ganeti-masterd pid {master.pid}, root {master.root}")
            runs = []
            for clients in (1, 8):
                jobs = options.jobs if clients > 1 else max(1, options.jobs // 4)
                run = _Throughput(master, clients, jobs)
                runs.append(run)
                print(f"{clients} client(s): {run['jobs']} jobs, "
                      f"{run['jobs_per_sec']:.0f} jobs/s, median "
                      f"{run['median_ms']:.1f} ms, p99 {run['p99_ms']:.1f} ms, master CPU "
                      f"{run['master_cpu_ms_per_job']:.2f} ms/job")
            mem = _Memory(master, options.archived, options.queued)
            print(f"master VmRSS: idle {mem['idle_kib'] / 1024:.1f} MiB, with "
                  f"{options.archived} archived jobs {mem['archived_kib'] / 1024:.1f} MiB, "
                  f"plus {mem['pending']} pending jobs "
                  f"{mem['archived_and_queued_kib'] / 1024:.1f} MiB")
            eight = runs[-1]
            ok = (eight["jobs_per_sec"] >= TARGET_JOBS_PER_SEC
                  and eight["median_ms"] < TARGET_MEDIAN_MS)
            print(f"target (>= {TARGET_JOBS_PER_SEC} jobs/s with 8 clients, median "
                  f"< {TARGET_MEDIAN_MS} ms): {'met' if ok else 'NOT met'}")
        finally:
            master.kill()
    return 0


if __name__ == "__main__":
    sys.exit(Main())
