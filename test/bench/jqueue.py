#!/usr/bin/env python3
"""In-process job queue throughput: OpTestDelay(duration=0.001) jobs.

Submits jobs straight to a JobQueue (no luxi) from 1 and from 8 threads,
with job files persisted in a temporary directory, and prints jobs per
second and the median and 99th percentile latency from submission to
success. Run: ``.venv/bin/python test/bench/jqueue.py [--jobs N] [--no-fsync]``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "build", "pylib"))

from ganeti import constants, jqueue, locking, opcodes  # noqa: E402


def _run(queue: jqueue.JobQueue, clients: int, jobs_per_client: int) -> tuple[float, list[float]]:
    latencies: list[float] = []
    lat_lock = threading.Lock()
    errors: list[BaseException] = []

    def client() -> None:
        try:
            for _ in range(jobs_per_client):
                done = threading.Event()
                start = time.perf_counter()
                job_id = queue.SubmitJob([opcodes.OpTestDelay(duration=0.001)])
                # Subscribed after submission: the loop below reads the status
                # first, so a change before the subscription is not missed
                handle = queue.Subscribe(job_id, done.set)
                try:
                    while True:
                        info = queue.GetJobInfo(job_id)
                        assert info is not None
                        if info["status"] in constants.JOBS_FINALIZED:
                            if info["status"] != constants.JOB_STATUS_SUCCESS:
                                raise RuntimeError(f"Job {job_id} ended {info['status']}")
                            break
                        done.wait(5)
                        done.clear()
                finally:
                    queue.Unsubscribe(handle)
                with lat_lock:
                    latencies.append(time.perf_counter() - start)
        except BaseException as err:  # reported by the main thread
            errors.append(err)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    if errors:
        raise errors[0]
    return elapsed, latencies


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1000, help="jobs per run")
    parser.add_argument("--no-fsync", action="store_true", help="do not fsync job files")
    parser.add_argument("--dir", default=None, help="where to put the queue directory")
    args = parser.parse_args()
    for clients in (1, 8):
        tmpdir = tempfile.mkdtemp(prefix="jqueue-bench-", dir=args.dir)
        try:
            ctx = jqueue.JobQueueContext(glm=locking.GanetiLockManager(),
                                         queue_dir=os.path.join(tmpdir, "queue"),
                                         fsync=not args.no_fsync,
                                         size_limit=args.jobs + 10)
            queue = jqueue.JobQueue(ctx)
            queue.Start()
            try:
                per_client = max(1, args.jobs // clients)
                elapsed, lat = _run(queue, clients, per_client)
            finally:
                queue.Shutdown(30)
        finally:
            shutil.rmtree(tmpdir, ignore_errors=True)
        lat.sort()
        p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
        print(f"{clients} client(s): {len(lat)} jobs in {elapsed:.2f} s ="
              f" {len(lat) / elapsed:.0f} jobs/s; latency median"
              f" {statistics.median(lat) * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms"
              f" (fsync {'off' if args.no_fsync else 'on'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
