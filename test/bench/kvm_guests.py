#!/usr/bin/env python3
"""Benchmark real QEMU guests (TCG) on a one-node kvm virtual cluster.

Prints:

- (a) startup: seconds from ``gnt-instance startup`` to the guest's first
  heartbeat on its serial console (median, min, max of ``--rounds``
  starts of one guest, stopped with ``--timeout 0`` in between);
- (b) capacity: guests of ``--memory`` MiB (80, the least the test guest
  boots with) started one by one, each once its predecessor printed its
  first heartbeat; after each start the heartbeats of all guests are
  watched for ``--window`` seconds. It stops when a guest's heartbeat
  interval (nominally 1 s) exceeds ``--late`` seconds, when a guest does
  not beat within ``--boot-deadline`` seconds, or at ``--max-guests``;
  the count printed is the guests that ran with every heartbeat on time;
- (c) the node daemon's CPU per ``gnt-instance list`` (a live query of
  every instance) with ``--list-guests`` guests running (started
  regardless of (b)'s limit): user+system CPU of ganeti-noded and of its
  reaped children, from /proc, over ``--lists`` lists; then the same with
  every guest restarted with ``user_shutdown=true`` (each list then asks
  each QEMU its run state over QMP).

Guests are diskless and NIC-less (``testguest`` OS). Run as
``.venv/bin/python test/bench/kvm_guests.py``; about 5 minutes. The
cluster's stop kills every QEMU by its pid file, and every daemon is
stopped by PID.
"""

from __future__ import annotations

import argparse
import os
import re
import selectors
import socket
import statistics
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                                "integration"))

from vcluster import VirtualCluster, virtual_cluster  # noqa: E402

from ganeti import constants  # noqa: E402

KVM_RUN = "/var/run/ganeti/kvm-hypervisor"
HEARTBEAT_RE = re.compile(rb"heartbeat (\d+)")
CLK_TCK = os.sysconf("SC_CLK_TCK")


class Heartbeats:
    """Reads the serial consoles of several guests in one thread and keeps
    the arrival time of each guest's heartbeats."""

    def __init__(self) -> None:
        self._sel = selectors.DefaultSelector()
        self._lock = threading.Lock()
        self.beats: dict[str, list[float]] = {}
        self._buffers: dict[str, bytes] = {}
        self._stop = False
        self._thread = threading.Thread(target=self._Loop, daemon=True)
        self._thread.start()

    def Watch(self, name: str, path: str, timeout: float = 10.0) -> None:
        """Start reading ``name``'s console (its socket ``path``)."""
        deadline = time.monotonic() + timeout
        while True:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.connect(path)
                break
            except (FileNotFoundError, ConnectionRefusedError):
                sock.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)  # polling for QEMU to create its socket
        sock.setblocking(False)
        with self._lock:
            self.beats[name] = []
            self._buffers[name] = b""
            self._sel.register(sock, selectors.EVENT_READ, name)

    def Forget(self, name: str) -> None:
        """Stop reading ``name``'s console."""
        with self._lock:
            for key in list(self._sel.get_map().values()):
                if key.data == name:
                    self._sel.unregister(key.fileobj)
                    key.fileobj.close()  # type: ignore[union-attr]
            self.beats.pop(name, None)

    def _Loop(self) -> None:
        while not self._stop:
            with self._lock:
                empty = not self._sel.get_map()
            if empty:
                time.sleep(0.05)  # nothing registered yet
                continue
            for key, _ in self._sel.select(0.1):
                now = time.monotonic()
                try:
                    data = key.fileobj.recv(65536)  # type: ignore[union-attr]
                except OSError:
                    data = b""
                with self._lock:
                    name = key.data
                    if not data:
                        if key.fileobj in (k.fileobj for k in self._sel.get_map().values()):
                            self._sel.unregister(key.fileobj)
                        continue
                    buffer = self._buffers.get(name, b"") + data
                    *lines, self._buffers[name] = buffer.split(b"\n")
                    for line in lines:
                        if HEARTBEAT_RE.search(line) and name in self.beats:
                            self.beats[name].append(now)

    def WaitFirst(self, name: str, timeout: float) -> float | None:
        """The time of ``name``'s first heartbeat, waiting up to ``timeout``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                beats = self.beats.get(name)
                if beats:
                    return beats[0]
            time.sleep(0.02)  # the reader thread records the beats
        return None

    def MaxInterval(self, since: float, until: float) -> tuple[float, str]:
        """The longest gap between heartbeats of any guest within
        [since, until] (the edges count as beats), and its guest."""
        worst, who = 0.0, ""
        with self._lock:
            for name, beats in self.beats.items():
                if not beats or beats[0] > since:
                    continue  # still booting at ``since``
                points = [since] + [t for t in beats if since < t <= until] + [until]
                gap = max(b - a for a, b in zip(points, points[1:]))
                if gap > worst:
                    worst, who = gap, name
        return worst, who

    def Close(self) -> None:
        self._stop = True
        self._thread.join(5)
        for key in list(self._sel.get_map().values()):
            key.fileobj.close()  # type: ignore[union-attr]


def _Gnt(vc: VirtualCluster, *args: str, check: bool = True):
    return vc.run("gnt-instance", *args, check=check)


def _Add(vc: VirtualCluster, name: str, memory: int, hvparams: str = "",
         start: bool = True) -> None:
    extra = ["-H", f"kvm:{hvparams}"] if hvparams else []
    _Gnt(vc, "add", "-t", "diskless", "-o", "testguest+default", "--no-nics",
         "-B", f"memory={memory}", "--no-name-check", "--no-ip-check",
         "--ignore-ipolicy", "-n", vc.names[0], *extra,
         *([] if start else ["--no-start"]), name)


def _Serial(vc: VirtualCluster, name: str) -> str:
    return str(vc.path(1, f"{KVM_RUN}/ctrl/{name}.serial"))


def _Name(index: int) -> str:
    return f"g{index:02d}.vcluster.test"


def BenchStartup(vc: VirtualCluster, hb: Heartbeats, memory: int, rounds: int,
                 deadline: float) -> None:
    name = "start.vcluster.test"
    _Add(vc, name, memory, start=False)
    times = []
    for _ in range(rounds):
        start = time.monotonic()
        _Gnt(vc, "startup", name)
        hb.Watch(name, _Serial(vc, name))
        first = hb.WaitFirst(name, deadline)
        if first is None:
            print(f"  (a) no heartbeat within {deadline}s")
            break
        times.append(first - start)
        hb.Forget(name)
        _Gnt(vc, "shutdown", "--timeout", "0", name)
    _Gnt(vc, "remove", "-f", name)
    if times:
        print(f"(a) gnt-instance startup to first heartbeat, {memory} MiB guest,"
              f" {len(times)} starts: median {statistics.median(times):.2f} s"
              f" (min {min(times):.2f}, max {max(times):.2f})")


def BenchCapacity(vc: VirtualCluster, hb: Heartbeats, args: argparse.Namespace
                  ) -> int:
    on_time = 0
    for index in range(1, args.max_guests + 1):
        name = _Name(index)
        start = time.monotonic()
        try:
            _Add(vc, name, args.memory)
        except AssertionError as err:
            print(f"  guest {index} failed to start: stop\n{err}")
            break
        hb.Watch(name, _Serial(vc, name))
        first = hb.WaitFirst(name, args.boot_deadline)
        if first is None:
            print(f"  guest {index}: no heartbeat within {args.boot_deadline}s: stop")
            break
        window_start = time.monotonic()
        time.sleep(args.window)  # observing the heartbeats for a while
        worst, who = hb.MaxInterval(window_start, time.monotonic())
        load = os.getloadavg()[0]
        print(f"  {index:2d} guests: boot to heartbeat {first - start:5.2f} s,"
              f" longest heartbeat interval {worst:4.2f} s ({who}), load {load:.1f}")
        if worst > args.late:
            print(f"  a heartbeat came {worst:.2f} s after the previous one"
                  f" (> {args.late} s): stop")
            break
        on_time = index
    print(f"(b) {args.memory} MiB guests running with heartbeats on time"
          f" (every interval <= {args.late} s): {on_time}"
          f"{' (the cap)' if on_time == args.max_guests else ''}")
    return on_time


def _Cpu(pid: int) -> float:
    """CPU seconds of ``pid`` (reaped children included) and of its live
    children, recursively (a forked child serving a kept-alive connection
    is not reaped yet); QEMU daemonizes, so it is no child."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fd:
            fields = fd.read().rpartition(")")[2].split()
        with open(f"/proc/{pid}/task/{pid}/children", encoding="ascii") as fd:
            children = [int(child) for child in fd.read().split()]
    except OSError:
        return 0.0
    return (sum(int(value) for value in fields[11:15]) / CLK_TCK
            + sum(_Cpu(child) for child in children))


def _NodedCpu(vc: VirtualCluster) -> float:
    """CPU seconds of the node daemon and its children."""
    return _Cpu(vc.daemons()[(vc.names[0], "ganeti-noded")])


def BenchListCpu(vc: VirtualCluster, lists: int, label: str) -> None:
    _Gnt(vc, "list")  # warm up
    cpu0, wall0 = _NodedCpu(vc), time.monotonic()
    for _ in range(lists):
        _Gnt(vc, "list", "-o", "name,status,oper_ram,oper_vcpus")
    cpu, wall = _NodedCpu(vc) - cpu0, time.monotonic() - wall0
    running = _Gnt(vc, "list", "--no-headers", "-o", "status").stdout.split().count(
        "running")
    print(f"(c) {label}: noded CPU per gnt-instance list ({running} running):"
          f" {cpu / lists * 1000:.0f} ms; wall per list {wall / lists * 1000:.0f} ms"
          f" ({lists} lists)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--memory", type=int, default=80)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--max-guests", type=int, default=30)
    parser.add_argument("--late", type=float, default=2.0)
    parser.add_argument("--window", type=float, default=6.0)
    parser.add_argument("--boot-deadline", type=float, default=60.0)
    parser.add_argument("--list-guests", type=int, default=20)
    parser.add_argument("--lists", type=int, default=20)
    parser.add_argument("--skip", default="", help="parts to skip, e.g. 'b' or 'ab'")
    args = parser.parse_args()
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the start;"
          " QEMU with TCG (kvm_flag=disabled)")
    with virtual_cluster(nodes=1, hypervisor=constants.HT_KVM) as vc:
        hb = Heartbeats()
        try:
            if "a" not in args.skip:
                BenchStartup(vc, hb, args.memory, args.rounds, args.boot_deadline)
            running = 0
            if "b" not in args.skip:
                running = BenchCapacity(vc, hb, args)
                # the guest that was late, if any, runs too
                running = len([n for n in hb.beats if n.startswith("g")])
            if "c" not in args.skip:
                for index in range(running + 1, args.list_guests + 1):
                    _Add(vc, _Name(index), args.memory)
                    hb.Watch(_Name(index), _Serial(vc, _Name(index)))
                    hb.WaitFirst(_Name(index), args.boot_deadline)
                for index in range(args.list_guests + 1, running + 1):
                    hb.Forget(_Name(index))
                    _Gnt(vc, "remove", "-f", _Name(index))
                BenchListCpu(vc, args.lists, "plain")
                for index in range(1, args.list_guests + 1):
                    name = _Name(index)
                    hb.Forget(name)
                    _Gnt(vc, "modify", "-H", "user_shutdown=true", name)
                    _Gnt(vc, "reboot", "--type", "hard", name)
                    hb.Watch(name, _Serial(vc, name))
                    hb.WaitFirst(name, args.boot_deadline)
                BenchListCpu(vc, args.lists, "user_shutdown=true")
        finally:
            hb.Close()
    print(f"load average {os.getloadavg()[0]:.1f} at the end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
