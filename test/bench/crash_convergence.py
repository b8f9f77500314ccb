#!/usr/bin/env python3
"""How fast a cluster converges after a master daemon crash.

On a 3-node virtual cluster (plus ``--instances`` diskless instances, so
the configuration is not trivial), two kinds of rounds, each timed from
the moment the master daemon is started again (``daemon-util start``):

*stale copies*: node3's node daemon is killed (SIGKILL), an instance is
created (node3 misses the new config.data and ssconf, the master retries
it), the master daemon is killed (SIGKILL: its retries are lost), node3's
daemon is started again, then the master. Nothing is saved after the
restart: only the start's own push brings node3 up to date.

*unfinished creation*: node3's node daemon is killed, a ``file`` instance
creation on node2 whose OS create script takes 2 s is submitted, and the
master daemon is killed once the instance is in the configuration
(forthcoming, its disk made); node3's daemon is started again, then the
master, which must fail the job, remove the instance and its disk and
bring node3 up to date.

Measured: the daemon serving (the command returned), the first ``gnt-cluster
verify`` that is clean (exit 0, no error; verify waits for the start's
push), and (second kind) the unfinished instance and its disk gone. Prints
each round and the medians. Run as ``.venv/bin/python
test/bench/crash_convergence.py [--rounds 5] [--instances 50]``; every
daemon is stopped by PID at the end.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                                "integration"))

from vcluster import REPO, virtual_cluster  # noqa: E402

from ganeti import constants, opcodes  # noqa: E402
from ganeti.luxi import client as luxi_client  # noqa: E402

OS_NAME = "slowos"


def _InstallSlowOs(vc, seconds: float) -> None:
    noop = REPO / "os-definitions" / "noop"
    body = (noop / "create").read_text().split("\n", 1)[1]
    for node in vc.names:
        target = vc.path(node, f"/srv/ganeti/os/{OS_NAME}")
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(noop, target)
        create = target / "create"
        create.write_text(f"#!/bin/sh\nsleep {seconds}\n" + body)
        create.chmod(0o755)


def _Kill(vc, node: str, daemon: str) -> None:
    pid = vc.daemons()[(node, daemon)]
    os.kill(pid, signal.SIGKILL)
    pause = threading.Event()
    while os.path.exists(f"/proc/{pid}"):
        try:
            with open(f"/proc/{pid}/stat", encoding="ascii") as fd:
                if fd.read().split()[2] == "Z":
                    break
        except OSError:
            break
        pause.wait(0.01)  # bounded by the kernel: SIGKILL cannot be ignored


def _Forthcoming(vc) -> list[str]:
    return [inst["name"] for inst in vc.config()["instances"].values()
            if inst.get("forthcoming")]


def _Client(vc) -> luxi_client.Client:
    path = vc.path(vc.master(), constants.DEFAULT_RUN_DIR) / "socket" / "ganeti-master"
    return luxi_client.Client(str(path), timeouts=(10, 60))


def _Create(name: str, node: str, template: str, os_name: str):
    return opcodes.OpInstanceCreate(
        instance_name=name, mode=constants.INSTANCE_CREATE, disk_template=template,
        disks=[{"size": 1024}] if template == constants.DT_FILE else [], nics=[],
        ignore_ipolicy=True, pnode=node, os_type=f"{os_name}+default",
        name_check=False, ip_check=False, start=True)


def _WaitJob(cl, job_id: int) -> str:
    while True:
        result = cl.WaitForJobChangeOnce(job_id, ["status"], None, None)
        if result != constants.JOB_NOTCHANGED and \
                result[0][0] in constants.JOBS_FINALIZED:
            return result[0][0]


def _Round(vc, index: int, unfinished: bool) -> dict[str, float]:
    master, node2, node3 = vc.names
    name = f"crash{index}{'u' if unfinished else 's'}.example.com"
    _Kill(vc, node3, constants.NODED)
    pause = threading.Event()
    if unfinished:
        with _Client(vc) as cl:
            cl.SubmitJob([_Create(name, node2, constants.DT_FILE, OS_NAME)])
        deadline = time.monotonic() + 60
        while name not in _Forthcoming(vc):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} never appeared in the configuration")
            pause.wait(0.05)  # bounded poll of the configuration file
        pause.wait(0.5)       # the disk is made, the OS script runs
    else:
        with _Client(vc) as cl:
            job_id = cl.SubmitJob([_Create(name, node2, constants.DT_DISKLESS, "noop")])
            assert _WaitJob(cl, job_id) == constants.JOB_STATUS_SUCCESS
    _Kill(vc, master, constants.MASTERD)
    vc.run("daemon-util", "start", constants.NODED, node=node3)

    start = time.monotonic()
    vc.run("daemon-util", "start", constants.MASTERD, node=master)
    serving = time.monotonic() - start
    verified = None
    runs = 0
    while verified is None:
        result = vc.run("gnt-cluster", "verify", "--error-codes", check=False)
        runs += 1
        if result.returncode == 0 and "  - ERROR" not in result.stdout:
            verified = time.monotonic() - start
        elif time.monotonic() - start > 300:
            raise RuntimeError(f"verify never clean:\n{result.stdout}")
    figures = {"serving": serving, "verify clean": verified, "verify runs": runs}
    if unfinished:
        image = vc.path(node2, f"/srv/ganeti/file-storage/{name}")
        while name in _Forthcoming(vc) or image.exists():
            if time.monotonic() - start > 300:
                raise RuntimeError(f"{name} was not removed")
            pause.wait(0.02)  # bounded poll of the configuration file
        figures["cleanup done"] = time.monotonic() - start
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--instances", type=int, default=50,
                        help="diskless instances made first")
    args = parser.parse_args()
    with virtual_cluster(nodes=3) as vc:
        _InstallSlowOs(vc, 2.0)
        with _Client(vc) as cl:
            jobs = cl.SubmitManyJobs([[opcodes.OpInstanceCreate(
                instance_name=f"base{idx}.example.com", mode=constants.INSTANCE_CREATE,
                disk_template=constants.DT_DISKLESS, disks=[], nics=[],
                ignore_ipolicy=True, pnode=vc.names[idx % 3], os_type="noop+default",
                name_check=False, ip_check=False, start=False)]
                for idx in range(args.instances)])
            for ok, job_id in jobs:
                assert ok, job_id
                while cl.WaitForJobChangeOnce(job_id, ["status"], None, None)[0][0] \
                        not in constants.JOBS_FINALIZED:
                    pass
        start = time.monotonic()
        vc.run("gnt-cluster", "verify")
        print(f"gnt-cluster verify on the healthy cluster: {time.monotonic() - start:.2f} s"
              f" ({args.instances} instances)")
        for unfinished in (False, True):
            kind = "unfinished creation" if unfinished else "stale copies"
            rounds = []
            for index in range(args.rounds):
                figures = _Round(vc, index, unfinished)
                rounds.append(figures)
                line = (f"{kind}, round {index + 1}: serving {figures['serving']:.2f} s,"
                        f" verify clean {figures['verify clean']:.2f} s"
                        f" ({figures['verify runs']:.0f} verify run(s))")
                if unfinished:
                    line += f", creation undone {figures['cleanup done']:.2f} s"
                print(line + " after the restart", flush=True)
            for key in ("serving", "verify clean", "cleanup done"):
                values = [figures[key] for figures in rounds if key in figures]
                if values:
                    print(f"{kind}: median {key} {statistics.median(values):.2f} s"
                          f" (min {min(values):.2f}, max {max(values):.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
