#!/usr/bin/env python3
"""Benchmark live migration of a real QEMU guest between two virtual nodes.

Sets up a 2-node kvm virtual cluster (``make vcluster VCLUSTER_HV=kvm`` on
a free 127.0.k prefix), creates a 128 MiB test guest (``--memory``) with a
sharedfile disk, then migrates it back and forth ``--rounds`` times
without postcopy and as many times with ``migration_caps=postcopy-ram``,
and prints per mode:

- total: the wall time of ``gnt-instance migrate`` (job submission, the
  target's QEMU start, the transfer, both finalize steps);
- QMP downtime: the downtime QEMU reports (the "memory transfer complete
  (downtime N ms)" line);
- heartbeat gap: the largest interval between two "heartbeat" lines on the
  guest's serial console around the migration, read continuously: the
  source's socket until it closes and the target's (connected as soon as
  the target's QEMU creates it), lines merged by arrival time. The guest
  prints one line a second, so a gap of 1 s means no visible pause;
- whether the migration switched to postcopy (an idle guest converges in
  the first pass, before Ganeti's switching point).

With ``--dirty N`` the guest rewrites N MiB of its memory all the time
(the test guest's ``testguest.dirty=N`` kernel argument) and
``--bandwidth`` should be low (e.g. 8): such a guest never converges in
precopy, so only the postcopy mode runs, and the figures are those of a
migration that really switches to postcopy.

Run as ``.venv/bin/python test/bench/kvm_migration.py [--rounds 3]
[--memory 128] [--bandwidth 32] [--dirty N]``. Every daemon and QEMU is stopped by PID
at the end (the cluster's stop), also after an error.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                                "integration"))

from vcluster import VirtualCluster  # noqa: E402

from ganeti import constants  # noqa: E402
from ganeti.tools import test_guest  # noqa: E402

NAME = "bench-mig.vcluster.test"
KVM_RUN = "/var/run/ganeti/kvm-hypervisor"
DOWNTIME_RE = re.compile(r"memory transfer complete \(downtime (\d+) ms\)")


class ConsoleRecorder:
    """Heartbeat arrival times from the source's console, then the target's."""

    def __init__(self, source: Path, target: Path) -> None:
        self.beats: list[tuple[float, int]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._Read, args=(path, wait), daemon=True)
                         for path, wait in ((source, False), (target, True))]
        for thread in self._threads:
            thread.start()

    def _Read(self, path: Path, wait: bool) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        while True:
            try:
                sock.connect(str(path))
                break
            except OSError:
                if not wait or self._stop.is_set():
                    return
                time.sleep(0.005)  # the target's QEMU has not created it yet
        sock.settimeout(0.2)
        buffer = b""
        try:
            while not self._stop.is_set():
                try:
                    data = sock.recv(65536)
                except TimeoutError:
                    continue
                if not data:
                    return
                now = time.monotonic()
                *lines, buffer = (buffer + data).split(b"\n")
                with self._lock:
                    for line in lines:
                        match = test_guest.HEARTBEAT_RE.search(line)
                        if match:
                            self.beats.append((now, int(match.group(1))))
        finally:
            sock.close()

    def Stop(self) -> list[tuple[float, int]]:
        """Stop reading; the heartbeats seen, in arrival order."""
        self._stop.set()
        for thread in self._threads:
            thread.join(5)
        return sorted(self.beats)


def _Gnt(vc: VirtualCluster, *args: str) -> str:
    return vc.run("gnt-instance", *args, timeout=600).stdout


def _Where(vc: VirtualCluster) -> int:
    pnode = _Gnt(vc, "list", "--no-headers", "-o", "pnode", NAME).strip()
    return vc.names.index(pnode) + 1


def _WaitBeats(path: Path, count: int, timeout: float) -> None:
    console = test_guest.SerialConsole(str(path))
    try:
        for _ in range(count):
            console.WaitFor(test_guest.HEARTBEAT_RE, timeout)
    finally:
        console.Close()


def MigrateOnce(vc: VirtualCluster) -> tuple[float, int | None, float, bool]:
    """(total seconds, QMP downtime ms, largest heartbeat gap s, whether it
    switched to postcopy)."""
    source = _Where(vc)
    target = 3 - source
    serial = f"{KVM_RUN}/ctrl/{NAME}.serial"
    src_path, dst_path = vc.path(source, serial), vc.path(target, serial)
    _WaitBeats(src_path, 2, 30)
    recorder = ConsoleRecorder(src_path, dst_path)
    time.sleep(2.5)  # a few heartbeats before, for the gap's baseline
    start = time.monotonic()
    out = _Gnt(vc, "migrate", "-f", "-n", vc.names[target - 1], NAME)
    total = time.monotonic() - start
    time.sleep(3)  # a few heartbeats after
    beats = recorder.Stop()
    numbers = [number for _, number in beats]
    if numbers != sorted(numbers) or len(numbers) < 4:
        raise AssertionError(f"heartbeats out of order or missing: {numbers}")
    gap = max(later[0] - earlier[0] for earlier, later in zip(beats, beats[1:]))
    match = DOWNTIME_RE.search(out)
    return (total, int(match.group(1)) if match else None, gap,
            "switched to postcopy" in out)


def _Summary(values: list[float]) -> str:
    return (f"median {statistics.median(values):.3f}, min {min(values):.3f},"
            f" max {max(values):.3f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3,
                        help="migrations per mode (default 3)")
    parser.add_argument("--memory", type=int, default=128, help="guest MiB (default 128)")
    parser.add_argument("--bandwidth", type=int, default=32,
                        help="migration_bandwidth, MiB/s (default 32, Ganeti's)")
    parser.add_argument("--dirty", type=int, default=0,
                        help="MiB the guest keeps rewriting (default 0: idle);"
                        " runs the postcopy mode only")
    args = parser.parse_args()
    directory = tempfile.mkdtemp(prefix="gvbm", dir="/tmp")
    vc = VirtualCluster(directory, nodes=2, hypervisor=constants.HT_KVM)
    try:
        print("setting up a 2-node kvm virtual cluster ...", flush=True)
        vc.setup(use_make=True)
        vc.run("gnt-cluster", "modify", "--enabled-disk-templates",
               "file,sharedfile,diskless", "-H",
               f"kvm:migration_bandwidth={args.bandwidth}")
        nics = [] if os.geteuid() == 0 else ["--no-nics"]
        if args.dirty:
            nics += ["-H", "kvm:kernel_args=quiet panic=-1"
                     f" testguest.dirty={args.dirty}"]
        _Gnt(vc, "add", "-t", "sharedfile", "--disk", "0:size=4M", "-o",
             "testguest+default", "-B", f"memory={args.memory}", "--no-name-check",
             "--no-ip-check", "--ignore-ipolicy", "-n", vc.names[0], *nics, NAME)
        _WaitBeats(vc.path(1, f"{KVM_RUN}/ctrl/{NAME}.serial"), 3, 60)
        print(f"guest: {args.memory} MiB, migration_bandwidth {args.bandwidth} MiB/s,"
              f" migration_downtime 30 ms, {args.rounds} migrations per mode"
              + (f", {args.dirty} MiB rewritten continuously" if args.dirty else ""))
        modes = [("precopy", "default"), ("postcopy", "postcopy-ram")]
        for mode, caps in modes[1:] if args.dirty else modes:
            _Gnt(vc, "modify", "-H", f"migration_caps={caps}", NAME)
            totals, downtimes, gaps = [], [], []
            for _ in range(args.rounds):
                total, downtime, gap, switched = MigrateOnce(vc)
                totals.append(total)
                gaps.append(gap)
                if downtime is not None:
                    downtimes.append(float(downtime))
                print(f"  {mode}: total {total:.2f} s, QMP downtime {downtime} ms,"
                      f" largest heartbeat gap {gap:.3f} s"
                      + (", switched to postcopy" if switched else ""), flush=True)
            print(f"{mode}: total s: {_Summary(totals)}")
            if downtimes:
                print(f"{mode}: QMP downtime ms: {_Summary(downtimes)}")
            print(f"{mode}: largest heartbeat gap s: {_Summary(gaps)}"
                  " (1 s = the guest's own interval)", flush=True)
        _Gnt(vc, "remove", "-f", NAME)
    finally:
        leftovers = vc.cleanup()
        if leftovers:
            print(f"daemons left running: {leftovers}")
        shutil.rmtree(directory, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
