#!/usr/bin/env python3
"""Benchmark one ganeti-watcher run on a big virtual cluster (issue 18).

Sets up a virtual cluster of 100 nodes (``--nodes``), injects 1,000
diskless instances (``--instances``; admin up, fake hypervisor state files
written on their primary nodes, so that they run) straight into
``config.data`` with the master stopped (as test/bench/instances.py does),
runs the watcher once to record the nodes' boot IDs, then prints for

(a) all instances healthy, and
(b) ``--down`` (50) instances stopped behind the cluster's back (their
    fake hypervisor state files removed),

the wall time of the master's watcher run (``ganeti-watcher`` as the
master, children included), the time until the jobs it submitted ended,
the wall time of one run on every node (``vcluster-setup --watcher``: 8
nodes at a time, then waiting for the jobs), and the CPU seconds the
daemons used meanwhile (utime+stime of every daemon and its reaped
children, from /proc; noded's connection children still alive at the end
are not counted).

Run as ``.venv/bin/python test/bench/watcher.py [--nodes 100]
[--instances 1000] [--down 50]``. Every daemon is stopped by PID at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                                "integration"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from instances import _ConfigPath, _MacSource  # noqa: E402
from vcluster import VirtualCluster  # noqa: E402

from ganeti import constants, objects, vcluster  # noqa: E402
from ganeti.config import base as config_base  # noqa: E402

OS_NAME = "noop+default"
_TICKS = os.sysconf("SC_CLK_TCK")


def InjectRunning(vc: VirtualCluster, count: int) -> list[tuple[str, str]]:
    """Add ``count`` diskless instances, admin up, round-robin over the
    nodes, and their fake hypervisor state; return (name, node) pairs."""
    master = vc.master()
    names = vc.names
    placement = [(f"bench-w{idx}.example.com", names[idx % len(names)])
                 for idx in range(count)]
    vc.run("daemon-util", "stop", constants.MASTERD, node=master)
    try:
        path = _ConfigPath(vc, master)
        data = config_base.LoadConfigData(path)
        node_uuids = {node.name: uuid for uuid, node in data.nodes.items()}
        next_mac = _MacSource(data)
        now = time.time()
        for name, node in placement:
            nic = objects.NIC(mac=next_mac(), ip=None, nicparams={},
                              uuid=objects.GenerateUUID())
            inst = objects.Instance(
                name=name, uuid=objects.GenerateUUID(), primary_node=node_uuids[node],
                os=OS_NAME, hypervisor=constants.HT_FAKE, hvparams={},
                beparams={constants.BE_MAXMEM: 64, constants.BE_MINMEM: 64},
                osparams={}, osparams_private={}, nics=[nic], disks=[],
                admin_state=constants.ADMINST_UP,
                admin_state_source=constants.ADMIN_SOURCE, disks_active=True,
                tags=[], serial_no=1, ctime=now, mtime=now)
            inst.UpgradeConfig()
            data.instances[inst.uuid] = inst
            _WriteFakeState(vc, node, name, inst.uuid, nic.mac)
        data.serial_no += 1
        data.mtime = now
        config_base.WriteConfigData(data, path)
    finally:
        vc.run("daemon-util", "start", constants.MASTERD, node=master)
    vc.run("gnt-cluster", "redist-conf")
    return placement


def _WriteFakeState(vc: VirtualCluster, node: str, name: str, uuid: str,
                    mac: str) -> None:
    state_dir = vc.path(node, "/var/run/ganeti/fake-hypervisor")
    state_dir.mkdir(parents=True, exist_ok=True)
    (state_dir / name).write_text(json.dumps({
        "name": name, "uuid": uuid, "memory": 64, "vcpus": 1, "status": "running",
        "started": time.time(), "paused": False, "disks": [], "nics": [mac]}))


def DaemonCpu(vc: VirtualCluster) -> float:
    """CPU seconds used so far by every daemon of the cluster (and its
    reaped children)."""
    total = 0
    for pid in vc.daemons().values():
        try:
            with open(f"/proc/{pid}/stat", encoding="ascii") as fd:
                fields = fd.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(v) for v in fields[11:15])
    return total / _TICKS


def MasterRun(vc: VirtualCluster, label: str) -> None:
    """Time one master watcher run and its jobs."""
    socket_path = str(vc.path(vc.master(), "/var/run/ganeti/socket/ganeti-master"))
    cpu = DaemonCpu(vc)
    start = time.perf_counter()
    vc.run("ganeti-watcher", node=vc.master())
    run = time.perf_counter() - start
    left = vcluster.WaitForJobs(socket_path, 600)
    total = time.perf_counter() - start
    print(f"{label}: master's watcher run {run:.2f} s; with its jobs ended"
          f" {total:.2f} s; daemons' CPU {DaemonCpu(vc) - cpu:.2f} s"
          + (f"; UNFINISHED jobs {left}" if left else ""), flush=True)


def AllNodesRun(vc: VirtualCluster, label: str) -> None:
    """Time one run on every node (as make vcluster-watcher does)."""
    cpu = DaemonCpu(vc)
    start = time.perf_counter()
    code = vcluster.RunWatcher(vc.directory, feedback=lambda msg: None)
    total = time.perf_counter() - start
    print(f"{label}: watcher on all {len(vc.nodes)} nodes and the jobs {total:.2f} s"
          f" (exit {code}); daemons' CPU {DaemonCpu(vc) - cpu:.2f} s", flush=True)


def Main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=100)
    parser.add_argument("--instances", type=int, default=1000)
    parser.add_argument("--down", type=int, default=50)
    parser.add_argument("--parallel", type=int, default=8,
                        help="nodes added at the same time during the setup")
    opts = parser.parse_args()
    directory = tempfile.mkdtemp(prefix="gw", dir="/tmp")
    vc = VirtualCluster(directory, nodes=opts.nodes, parallel=opts.parallel)
    try:
        start = time.perf_counter()
        vc.setup()
        print(f"{opts.nodes}-node virtual cluster set up in"
              f" {time.perf_counter() - start:.0f} s", flush=True)
        for node in vc.names:
            vc.path(node, "/etc/ganeti/fake-hypervisor.json").write_text(
                json.dumps({"memory_total": 1 << 20}))
        start = time.perf_counter()
        placement = InjectRunning(vc, opts.instances)
        print(f"injected {len(placement)} running instances in"
              f" {time.perf_counter() - start:.1f} s", flush=True)
        # First run: records every node's boot ID (nothing to activate)
        MasterRun(vc, "first run (boot IDs recorded)")
        MasterRun(vc, "(a) all healthy")
        AllNodesRun(vc, "(a) all healthy")
        for name, node in placement[:opts.down]:
            (vc.path(node, "/var/run/ganeti/fake-hypervisor") / name).unlink()
        MasterRun(vc, f"(b) {opts.down} down")
        running = sum(1 for name, node in placement[:opts.down]
                      if (vc.path(node, "/var/run/ganeti/fake-hypervisor") / name).exists())
        print(f"(b) {running} of {opts.down} instances running again", flush=True)
        for name, node in placement[opts.down:2 * opts.down]:
            (vc.path(node, "/var/run/ganeti/fake-hypervisor") / name).unlink()
        AllNodesRun(vc, f"(b) {opts.down} down")
    finally:
        leftovers = vc.cleanup()
        shutil.rmtree(directory, ignore_errors=True)
        if leftovers:
            print(f"daemons left running: {leftovers}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(Main())
