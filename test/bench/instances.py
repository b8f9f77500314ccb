#!/usr/bin/env python3
"""Benchmark instance creation and listing on a virtual cluster (issue 7).

Sets up a virtual cluster of 20 nodes (``--nodes``) with
``tools/vcluster-setup`` on a free 127.0.k prefix, then prints:

(a) seconds per ``gnt-instance add -t diskless -o noop+default -n <node>
    --no-name-check --no-ip-check <name>`` run as a command, N in a row
    (median, p90), with and without ``--no-start``;
(b) seconds per luxi submission of one ``OpInstanceCreate`` followed until
    it ends (no RAPI, no command start-up), started and not started;
(c) instances created per second and per minute with 8 jobs in flight at
    all times (``--parallel``; 8 luxi clients, each submitting its next job
    as soon as its previous one ends, primary nodes round-robin), and the
    median and p90 job latency;
(d) ``gnt-instance list`` latency (the whole command, default fields) and
    the luxi ``Query`` of the same fields, with 1,000 and 10,000 instances
    (``--sizes``), and the master daemon's VmRSS at each size;
(e) with ``--create-at 1000,10000``: creations per second with parallel
    jobs (as in (c), ``--create-at-count`` of them) once the cluster holds
    that many instances, since every change rewrites the whole
    configuration.

(c) and (e) also print the CPU time the daemons used per creation.

Instances made by jobs are named ``bench-cmd-*`` (a), ``bench-luxi-*`` (b)
and ``bench-par-*`` (c). To reach the list sizes quickly, the missing
instances are injected (``bench-inj-*``, diskless, noop+default, admin
down, one NIC) straight into ``config.data`` while the master daemon is
stopped (``daemon-util stop/start ganeti-masterd``, then ``gnt-cluster
redist-conf``); ``--inject`` caps how many may be injected (the rest is
created by parallel jobs). The output says how many of each kind exist.

Run as ``.venv/bin/python test/bench/instances.py [--nodes 20] [--create
200] [--parallel 8] [--sizes 1000,10000] [--inject 10000] [--skip-create]
[--skip-list] [--create-at 1000,10000]``. Every daemon is stopped by PID at the end, also after an
error or Ctrl-C. Targets on this machine: 10,000 instances listed in under
2 s; at least 20 diskless instances created per second with parallel jobs.
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
from collections.abc import Callable, Sequence
from typing import Any

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                                "integration"))

from vcluster import VirtualCluster  # noqa: E402

from ganeti import constants, objects, opcodes  # noqa: E402
from ganeti.config import base as config_base  # noqa: E402
from ganeti.luxi import client as luxi_client  # noqa: E402

OS_NAME = "noop+default"
#: gnt-instance list's default fields (lib/client/gnt_instance.py)
LIST_FIELDS = ["name", "hypervisor", "os", "pnode", "status", "oper_ram"]
TARGET_LIST_10K = 2.0
TARGET_CREATE_PER_SEC = 20.0
JOB_TIMEOUT = 600.0
VCPU_RATIO = 1024.0


# --- helpers shared with test/integration/test_instances_1000.py ------------------------

def MasterSocket(vc: VirtualCluster) -> str:
    """The luxi socket of the cluster's master daemon."""
    return str(vc.path(vc.master(), os.path.join(constants.DEFAULT_RUN_DIR, "socket",
                                                 "ganeti-master")))


def LuxiClient(vc: VirtualCluster) -> luxi_client.Client:
    """A luxi client connected to the master daemon."""
    return luxi_client.Client(MasterSocket(vc), timeouts=(10, 120))


def CreateOp(name: str, node: str, start: bool) -> opcodes.OpInstanceCreate:
    """The opcode ``gnt-instance add -t diskless -o noop+default -n node
    --no-name-check --no-ip-check [--no-start] name`` submits."""
    return opcodes.OpInstanceCreate(
        instance_name=name, mode=constants.INSTANCE_CREATE,
        disk_template=constants.DT_DISKLESS, disks=[], nics=[{}], pnode=node,
        os_type=OS_NAME, osparams={}, beparams={}, hvparams={}, start=start,
        name_check=False, ip_check=False, tags=[])


def WaitJob(cl: luxi_client.Client, job_id: Any, timeout: float = JOB_TIMEOUT) -> str:
    """Follow a job until it ends; return its final status."""
    deadline = time.monotonic() + timeout
    info = None
    log_serial = None
    while time.monotonic() < deadline:
        result = cl.WaitForJobChangeOnce(job_id, ["status"], info, log_serial,
                                         timeout=30)
        if result == constants.JOB_NOTCHANGED:
            continue
        info, log_entries = result
        if log_entries:
            # As the gnt-* tools do: without it every call would answer at
            # once with the same log entries
            log_serial = log_entries[-1][0]
        if info[0] in constants.JOBS_FINALIZED:
            return info[0]
    raise RuntimeError(f"job {job_id} did not end within {timeout:.0f} s")


def JobError(cl: luxi_client.Client, job_id: Any) -> str:
    """The result (error) of a job's opcodes, for messages."""
    rows = cl.QueryJobs([job_id], ["opresult"])
    return repr(rows[0][0] if rows and rows[0] else None)[:500]


def RunParallel(vc: VirtualCluster, jobs: Sequence[tuple[str, str, bool]],
                parallel: int,
                make_op: Callable[[str, str, bool], opcodes.OpCode] | None = None
                ) -> list[float]:
    """Create instances ``(name, node, start)`` (opcodes from ``make_op``,
    default :func:`CreateOp`) with ``parallel`` jobs in flight at all times
    (one luxi client per slot, each submitting its next job as soon as the
    previous ended); return the job latencies.

    @raise RuntimeError: naming the first job that did not succeed
    """
    make_op = make_op or CreateOp
    lock = threading.Lock()
    todo = list(reversed(jobs))
    latencies: list[float] = []
    failures: list[str] = []

    def _Worker() -> None:
        cl = LuxiClient(vc)
        try:
            while not failures:
                with lock:
                    if not todo:
                        return
                    name, node, start = todo.pop()
                begin = time.perf_counter()
                job_id = cl.SubmitJob([make_op(name, node, start)])
                status = WaitJob(cl, job_id)
                elapsed = time.perf_counter() - begin
                with lock:
                    if status != constants.JOB_STATUS_SUCCESS:
                        failures.append(f"job {job_id} creating {name} ended"
                                        f" {status}: {JobError(cl, job_id)}")
                    latencies.append(elapsed)
        except Exception as err:  # reported by the caller
            with lock:
                failures.append(f"{type(err).__name__}: {err}")
        finally:
            cl.Close()

    threads = [threading.Thread(target=_Worker, daemon=True)
               for _ in range(max(1, min(parallel, len(jobs))))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise RuntimeError(failures[0])
    return latencies


def _ConfigPath(vc: VirtualCluster, node: str) -> str:
    return str(vc.path(node, os.path.join(constants.DEFAULT_DATA_DIR,
                                          constants.CLUSTER_CONF_FILE_NAME)))


def _MacSource(data: objects.ConfigData) -> Callable[[], str]:
    used = {nic.mac for inst in data.instances.values() for nic in inst.nics}
    prefix = data.cluster.mac_prefix
    counter = iter(range(1 << 24))

    def _Next() -> str:
        for value in counter:
            mac = f"{prefix}:{value >> 16 & 255:02x}:{value >> 8 & 255:02x}:{value & 255:02x}"
            if mac not in used:
                used.add(mac)
                return mac
        raise RuntimeError(f"no free MAC address left in prefix {prefix}")

    return _Next


def InjectInstances(vc: VirtualCluster, placement: Sequence[tuple[str, str]]) -> float:
    """Add diskless instances ``(name, primary node name)`` straight into the
    master's ``config.data``, as ``gnt-instance add -t diskless -o
    noop+default --no-start`` would leave them (admin down, one NIC with
    the cluster's defaults and a unique MAC); return the seconds it took.

    The master daemon is stopped meanwhile (``daemon-util``) and started
    again; ``gnt-cluster redist-conf`` then ships the configuration and
    ssconf to the other nodes. Existing names are refused.
    """
    start = time.perf_counter()
    master = vc.master()
    vc.run("daemon-util", "stop", constants.MASTERD, node=master)
    try:
        path = _ConfigPath(vc, master)
        data = config_base.LoadConfigData(path)
        node_uuids = {node.name: uuid for uuid, node in data.nodes.items()}
        taken = {inst.name for inst in data.instances.values()}
        next_mac = _MacSource(data)
        now = time.time()
        for name, node in placement:
            if name in taken:
                raise ValueError(f"instance name {name} is already in the configuration")
            taken.add(name)
            nic = objects.NIC(mac=next_mac(), ip=None, nicparams={},
                              uuid=objects.GenerateUUID())
            inst = objects.Instance(
                name=name, uuid=objects.GenerateUUID(), primary_node=node_uuids[node],
                os=OS_NAME, hypervisor=constants.HT_FAKE, hvparams={}, beparams={},
                osparams={}, osparams_private={}, nics=[nic], disks=[],
                admin_state=constants.ADMINST_DOWN,
                admin_state_source=constants.ADMIN_SOURCE, disks_active=False,
                tags=[], serial_no=1, ctime=now, mtime=now)
            inst.UpgradeConfig()
            data.instances[inst.uuid] = inst
        data.serial_no += 1
        data.mtime = now
        config_base.WriteConfigData(data, path)
    finally:
        vc.run("daemon-util", "start", constants.MASTERD, node=master)
    vc.run("gnt-cluster", "redist-conf")
    return time.perf_counter() - start


def VmRSS(pid: int) -> int:
    """Resident memory of a process in KiB."""
    with open(f"/proc/{pid}/status", encoding="ascii") as fd:
        for line in fd:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def MasterPid(vc: VirtualCluster) -> int:
    """The pid of the master daemon."""
    return vc.daemons()[(vc.master(), constants.MASTERD)]


# --- the measurements ---------------------------------------------------------------------

def _Pct(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def _Stats(values: Sequence[float]) -> str:
    return (f"median {statistics.median(values):.3f} s, p90 {_Pct(values, 0.9):.3f} s"
            f" (min {min(values):.3f}, max {max(values):.3f}, n={len(values)})")


class Bench:
    """The benchmark's state: the cluster and the instances made so far."""

    def __init__(self, vc: VirtualCluster, opts: argparse.Namespace) -> None:
        self.vc = vc
        self.opts = opts
        self.nodes = vc.names
        self.by_jobs = 0
        self.injected = 0
        self.injectable = opts.inject
        self._rr = 0

    def _NextNode(self) -> str:
        node = self.nodes[self._rr % len(self.nodes)]
        self._rr += 1
        return node

    @property
    def total(self) -> int:
        """Instances in the cluster."""
        return self.by_jobs + self.injected

    def Commands(self) -> None:
        """(a) gnt-instance add as a command, N in a row."""
        for start in (True, False):
            kind = "started" if start else "--no-start"
            times = []
            for idx in range(self.opts.sequential):
                name = f"bench-cmd-{'s' if start else 'n'}{idx}.example.com"
                args = ["add", "-t", "diskless", "-o", OS_NAME, "-n", self._NextNode(),
                        "--no-name-check", "--no-ip-check"]
                if not start:
                    args.append("--no-start")
                begin = time.perf_counter()
                self.vc.run("gnt-instance", *args, name)
                times.append(time.perf_counter() - begin)
                self.by_jobs += 1
            print(f"(a) gnt-instance add -t diskless ({kind}), command, sequential:"
                  f" {_Stats(times)}", flush=True)

    def Luxi(self) -> None:
        """(b) one OpInstanceCreate through luxi, submitted and followed."""
        cl = LuxiClient(self.vc)
        try:
            for start in (True, False):
                kind = "started" if start else "not started"
                times = []
                for idx in range(self.opts.sequential):
                    name = f"bench-luxi-{'s' if start else 'n'}{idx}.example.com"
                    begin = time.perf_counter()
                    job_id = cl.SubmitJob([CreateOp(name, self._NextNode(), start)])
                    status = WaitJob(cl, job_id)
                    times.append(time.perf_counter() - begin)
                    if status != constants.JOB_STATUS_SUCCESS:
                        raise RuntimeError(f"job {job_id} ({name}) ended {status}:"
                                           f" {JobError(cl, job_id)}")
                    self.by_jobs += 1
                print(f"(b) luxi OpInstanceCreate submit+wait ({kind}), sequential:"
                      f" {_Stats(times)}", flush=True)
        finally:
            cl.Close()

    def Parallel(self, count: int, start: bool, label: str = "(c)",
                 target: bool = True) -> None:
        """(c) ``count`` creations with ``--parallel`` jobs in flight."""
        if count <= 0:
            return
        first = self.by_jobs
        jobs = [(f"bench-par-{first + idx}.example.com", self._NextNode(), start)
                for idx in range(count)]
        cpu_before = DaemonCpu(self.vc)
        begin = time.perf_counter()
        latencies = RunParallel(self.vc, jobs, self.opts.parallel)
        wall = time.perf_counter() - begin
        cpu_after = DaemonCpu(self.vc)
        self.by_jobs += count
        rate = count / wall
        verdict = "met" if rate >= TARGET_CREATE_PER_SEC else "NOT met"
        print(f"{label} {count} creations ({'started' if start else '--no-start'}),"
              f" {self.opts.parallel} jobs in flight: {wall:.1f} s, {rate:.2f}"
              f" instances/s, {rate * 60:.0f} per minute; job latency median"
              f" {statistics.median(latencies):.3f} s, p90 {_Pct(latencies, 0.9):.3f} s"
              + (f" (target >= {TARGET_CREATE_PER_SEC:.0f}/s: {verdict})" if target
                 else ""), flush=True)
        spent = {kind: (cpu_after.get(kind, 0.0) - cpu_before.get(kind, 0.0)) / count
                 for kind in sorted(cpu_after)}
        print(f"{label} daemon CPU per creation: "
              + ", ".join(f"{kind} {secs * 1000:.1f} ms" for kind, secs in spent.items())
              + f"; total {sum(spent.values()) * 1000:.1f} ms", flush=True)

    def Fill(self, size: int) -> None:
        """Bring the cluster to ``size`` instances: inject what ``--inject``
        allows, create the rest with parallel jobs."""
        missing = size - self.total
        if missing <= 0:
            return
        inject = min(missing, self.injectable)
        if inject:
            placement = [(f"bench-inj-{self.injected + idx}.example.com", self._NextNode())
                         for idx in range(inject)]
            took = InjectInstances(self.vc, placement)
            self.injected += inject
            self.injectable -= inject
            print(f"injected {inject} instances into config.data (master stopped,"
                  f" restarted, redist-conf): {took:.1f} s", flush=True)
            # The candidates' daemons load the new configuration after the
            # push; measure once they are done
            settled = WaitQuiet(self.vc)
            print(f"daemons idle again after {settled:.1f} s", flush=True)
        if missing - inject:
            self.Parallel(missing - inject, start=False, label="(fill)", target=False)

    def List(self, size: int) -> None:
        """(d) list latency and the master's memory at ``size`` instances."""
        self.Fill(size)
        print(f"(d) {self.total} instances ({self.by_jobs} created by jobs,"
              f" {self.injected} injected), {len(self.nodes)} nodes:", flush=True)

        def _Command() -> None:
            out = self.vc.run("gnt-instance", "list", "--no-headers").stdout
            rows = len(out.splitlines())
            if rows != self.total:
                raise RuntimeError(f"gnt-instance list gave {rows} rows, expected"
                                   f" {self.total}")

        cl = LuxiClient(self.vc)

        def _Query() -> None:
            result = cl.Query(constants.QR_INSTANCE, LIST_FIELDS, None)
            if len(result["data"]) != self.total:
                raise RuntimeError(f"luxi Query gave {len(result['data'])} rows")

        try:
            _Query()  # the first query after a restart warms caches up
            cmd = [_Timed(_Command) for _ in range(self.opts.rounds)]
            query = [_Timed(_Query) for _ in range(self.opts.rounds)]
        finally:
            cl.Close()
        note = ""
        if self.total >= 10000:
            ok = statistics.median(cmd) < TARGET_LIST_10K
            note = f" (target < {TARGET_LIST_10K:.0f} s: {'met' if ok else 'NOT met'})"
        print(f"    gnt-instance list (command, default fields): {_Stats(cmd)}{note}")
        print(f"    luxi Query(instance, {','.join(LIST_FIELDS)}): {_Stats(query)}")
        print(f"    master daemon VmRSS: {VmRSS(MasterPid(self.vc)) / 1024:.1f} MiB",
              flush=True)
        if self.total <= self.opts.info_max:
            self.Info()

    def Info(self) -> None:
        """``gnt-instance info --all``, static and live (one run each)."""
        for extra in (["--static"], []):
            begin = time.perf_counter()
            out = self.vc.run("gnt-instance", "info", "--all", *extra).stdout
            took = time.perf_counter() - begin
            shown = out.count("- Instance name: ")
            if shown != self.total:
                raise RuntimeError(f"gnt-instance info --all showed {shown} instances,"
                                   f" expected {self.total}")
            print(f"    gnt-instance info --all {' '.join(extra)}".rstrip()
                  + f": {took:.2f} s", flush=True)


def _Timed(func: Callable[[], None]) -> float:
    begin = time.perf_counter()
    func()
    return time.perf_counter() - begin


def DaemonCpu(vc: VirtualCluster) -> dict[str, float]:
    """CPU seconds (user + system) used so far by the cluster's daemons, per
    kind of daemon (all node daemons together, and so on), children
    that were waited for included."""
    ticks = os.sysconf("SC_CLK_TCK")
    totals: dict[str, float] = {}
    for (_, daemon), pid in vc.daemons().items():
        try:
            with open(f"/proc/{pid}/stat", encoding="ascii") as fd:
                fields = fd.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # utime, stime, cutime, cstime: fields 14-17 of proc(5)
        used = sum(int(value) for value in fields[11:15]) / ticks
        totals[daemon] = totals.get(daemon, 0.0) + used
    return totals


def WaitQuiet(vc: VirtualCluster, interval: float = 0.5, idle: float = 0.05,
              timeout: float = 60.0) -> float:
    """Wait until the cluster's daemons together use less than ``idle`` CPU
    seconds per ``interval``; return the seconds waited (at most
    ``timeout``)."""
    begin = time.monotonic()
    before = sum(DaemonCpu(vc).values())
    while time.monotonic() - begin < timeout:
        time.sleep(interval)
        now = sum(DaemonCpu(vc).values())
        if now - before < idle:
            break
        before = now
    return time.monotonic() - begin


def _Interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def BuildParser() -> argparse.ArgumentParser:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=20)
    parser.add_argument("--setup-parallel", type=int, default=4,
                        help="gnt-node add commands at once during the setup")
    parser.add_argument("--sequential", type=int, default=10,
                        help="creations per sequential measurement, (a) and (b)")
    parser.add_argument("--create", type=int, default=200,
                        help="creations with parallel jobs, (c)")
    parser.add_argument("--parallel", type=int, default=8, help="jobs in flight, (c)")
    parser.add_argument("--start", action="store_true",
                        help="start the instances created in (c) (default --no-start)")
    parser.add_argument("--sizes", default="1000,10000",
                        help="instance counts at which to time the list, (d)")
    parser.add_argument("--inject", type=int, default=10000,
                        help="at most this many instances are injected into the"
                        " config to reach the sizes; the rest is created by jobs")
    parser.add_argument("--rounds", type=int, default=5, help="list runs per size")
    parser.add_argument("--skip-create", action="store_true", help="skip (a), (b), (c)")
    parser.add_argument("--skip-list", action="store_true", help="skip (d)")
    parser.add_argument("--info-max", type=int, default=0,
                        help="also time gnt-instance info --all (static and live) at"
                        " the sizes up to this many instances (default: never)")
    parser.add_argument("--create-at", default="",
                        help="(e) after (d), at each of these instance counts (e.g."
                        " 1000,10000) time --create-at-count creations with parallel"
                        " jobs, to see how the rate falls as the cluster grows")
    parser.add_argument("--create-at-count", type=int, default=100,
                        help="creations per size for (e)")
    parser.add_argument("--keep", action="store_true",
                        help="keep the cluster's directory (daemons are stopped)")
    return parser


def Main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark."""
    opts = BuildParser().parse_args(argv)
    sizes = [int(size) for size in opts.sizes.split(",") if size]
    signal.signal(signal.SIGTERM, _Interrupt)
    directory = tempfile.mkdtemp(prefix="gvbi", dir="/tmp")
    vc = VirtualCluster(directory, nodes=opts.nodes, parallel=opts.setup_parallel)
    begin = time.perf_counter()
    try:
        vc.setup()
        print(f"virtual cluster: {opts.nodes} nodes on {vc.net}.0/24, {os.cpu_count()}"
              f" CPUs, set up in {time.perf_counter() - begin:.1f} s", flush=True)
        # The default vcpu-ratio (4 on a 2-CPU node) admits 8 one-vCPU
        # instances per node, stopped ones included: far too few here
        vc.run("gnt-cluster", "modify", "--ipolicy-vcpu-ratio", str(VCPU_RATIO))
        print(f"instance policy vcpu-ratio set to {VCPU_RATIO:.0f} for the benchmark",
              flush=True)
        bench = Bench(vc, opts)
        if not opts.skip_create:
            bench.Commands()
            bench.Luxi()
            bench.Parallel(opts.create, start=opts.start)
        list_sizes = [] if opts.skip_list else sizes
        create_sizes = [int(size) for size in opts.create_at.split(",") if size]
        for size in sorted(set(list_sizes) | set(create_sizes)):
            if size in list_sizes:
                bench.List(size)
            if size in create_sizes:
                bench.Fill(size)
                bench.Parallel(opts.create_at_count, start=opts.start,
                               label=f"(e) at {bench.total} instances:",
                               target=False)
        print(f"total {time.perf_counter() - begin:.0f} s", flush=True)
    except KeyboardInterrupt:
        print("interrupted; stopping the virtual cluster", file=sys.stderr)
        return 130
    finally:
        leftovers = vc.cleanup()
        if not opts.keep:
            shutil.rmtree(directory, ignore_errors=True)
        else:
            print(f"kept {directory}")
        if leftovers:
            print(f"daemons still ran after vcluster-setup --stop (killed): {leftovers}",
                  file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(Main())
