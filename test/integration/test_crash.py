"""Crash suite: daemons killed with SIGKILL while jobs run.

On a 3-node virtual cluster, client threads keep submitting instance
creations (diskless and file, started or not, with an OS whose create
script takes a moment), removals of the instances they created and
``gnt-debug delay`` jobs (on the master and on a node), while the main
thread kills the master daemon or a node daemon with SIGKILL at random
moments and starts it again (``daemon-util start`` as that node). Then
the master is killed and restarted once more and the suite checks:

- no job lost or duplicated (every job whose ID a client got exists; each
  submission, tagged in its ``comment``, made at most one job) and none
  left queued, waiting or running;
- every job's status matches the configuration: a creation succeeded if
  and only if its instance exists (unless a removal of it succeeded), is
  committed (not forthcoming) and has the admin state it asked for; a
  removal succeeded if and only if the instance is gone;
- ``gnt-cluster verify`` is clean (exit 0, no error) right after that one
  master restart, without ``redist-conf`` (the watcher does not exist yet:
  once it does, one watcher run belongs before this check);
- once the master has removed the creations that did not finish, no
  orphan disk file or directory is left on any node (verify reports none,
  and the node roots hold exactly the configured disks).

The random choices come from a seed printed at the start (set
GANETI_CRASH_SEED to replay one); GANETI_CRASH_SECONDS sets how long the
stream runs (default 75: the whole test takes about 2-3 minutes).
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from vcluster import REPO, VirtualCluster, virtual_cluster  # noqa: E402

from ganeti import constants, errors, opcodes  # noqa: E402
from ganeti.luxi import client as luxi_client  # noqa: E402
from ganeti.luxi import protocol  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

STREAM_SECONDS = float(os.environ.get("GANETI_CRASH_SECONDS", "75"))
SUBMITTERS = 3
OS_NAME = "crashos"
FILE_STORAGE = "/srv/ganeti/file-storage"
#: Bound of every wait of the suite (a job, the master coming back...)
WAIT = 120.0
TAG = "crash-suite:"


def _InstallSlowOs(vc: VirtualCluster) -> None:
    """The noop OS, with a create script that takes 0.4 s: long enough for
    kills to land while it runs."""
    noop = REPO / "os-definitions" / "noop"
    body = (noop / "create").read_text().split("\n", 1)[1]
    for node in vc.names:
        target = vc.path(node, f"/srv/ganeti/os/{OS_NAME}")
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(noop, target)
        create = target / "create"
        create.write_text("#!/bin/sh\nsleep 0.4\n" + body)
        create.chmod(0o755)


class Master:
    """Where the master daemon is, and whether it serves: the killer marks
    it down before a kill and up once ``daemon-util start`` returned (the
    daemon then serves); clients wait for that instead of retrying."""

    def __init__(self, vc: VirtualCluster) -> None:
        self.vc = vc
        self.name = vc.master()
        self.socket = str(vc.path(self.name, constants.DEFAULT_RUN_DIR)
                          / "socket" / "ganeti-master")
        self._cond = threading.Condition()
        self._up = True
        self._generation = 0    # how many times it was started by us

    def SetUp(self, up: bool) -> None:
        with self._cond:
            self._up = up
            if up:
                self._generation += 1
            self._cond.notify_all()

    def Generation(self) -> int:
        with self._cond:
            return self._generation

    def WaitRestarted(self, generation: int) -> None:
        """Wait until the daemon was started again after ``generation``."""
        with self._cond:
            assert self._cond.wait_for(
                lambda: self._up and self._generation > generation, WAIT), \
                "the master daemon did not come back"

    def Call(self, method: str, *args, idempotent: bool = True):
        """A luxi call. Refused (the daemon is down): wait until it is back
        and try again. Cut off (the daemon died under it): the same if the
        call is ``idempotent``, else raise (the request may have been
        carried out)."""
        while True:
            generation = self.Generation()
            try:
                with luxi_client.Client(self.socket, timeouts=(10, 60)) as cl:
                    return getattr(cl, method)(*args)
            except luxi_client.NoMasterError:
                self.WaitRestarted(generation)
            except (protocol.ConnectionClosedError, protocol.TimeoutError):
                if not idempotent:
                    raise
                self.WaitRestarted(generation)


@dataclass
class Submission:
    """One job a client submitted (or tried to: ``job_id`` None when the
    answer was lost)."""
    tag: str
    kind: str                  # create / remove / delay
    instance: str | None = None
    start: bool = False
    job_id: int | None = None
    status: str | None = None


@dataclass
class Stream:
    rng: random.Random
    master: Master
    nodes: list[str]
    deadline: float
    lock: threading.Lock = field(default_factory=threading.Lock)
    submissions: list[Submission] = field(default_factory=list)
    created: list[str] = field(default_factory=list)   # instances to remove
    seq: int = 0

    def Next(self) -> tuple[int, random.Random]:
        with self.lock:
            self.seq += 1
            return self.seq, random.Random(self.rng.random())


def _Ops(stream: Stream, seq: int, rng: random.Random) -> tuple[Submission, list]:
    tag = f"{TAG}{seq}"
    with stream.lock:
        removable = list(stream.created)
    roll = rng.random()
    if removable and roll < 0.25:
        name = rng.choice(removable)
        with stream.lock:
            stream.created.remove(name)
        return Submission(tag, "remove", name), [opcodes.OpInstanceRemove(
            instance_name=name, shutdown_timeout=5, comment=tag)]
    if roll < 0.4:
        on_nodes = [rng.choice(stream.nodes)] if rng.random() < 0.5 else []
        return Submission(tag, "delay"), [opcodes.OpTestDelay(
            duration=round(rng.uniform(0.05, 0.6), 2), on_master=True,
            on_nodes=on_nodes, comment=tag)]
    name = f"c{seq}.example.com"
    template = rng.choice([constants.DT_DISKLESS, constants.DT_FILE, constants.DT_FILE])
    start = rng.random() < 0.5
    disks = [{"size": 1024}] if template == constants.DT_FILE else []
    return Submission(tag, "create", name, start), [opcodes.OpInstanceCreate(
        instance_name=name, mode=constants.INSTANCE_CREATE, disk_template=template,
        # No NIC (the cluster's default NIC may need a bridge): past the policy
        disks=disks, nics=[], ignore_ipolicy=True, pnode=rng.choice(stream.nodes),
        os_type=f"{OS_NAME}+default", name_check=False, ip_check=False,
        start=start, comment=tag)]


def _WaitJob(master: Master, job_id: int) -> str:
    """The job's final status (following it across master restarts)."""
    prev = None
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        try:
            result = master.Call("WaitForJobChangeOnce", job_id, ["status"], prev, None)
        except errors.JobLost:
            return "lost"
        if result == constants.JOB_NOTCHANGED:
            continue
        prev = result[0]
        if prev[0] in constants.JOBS_FINALIZED:
            return prev[0]
    raise AssertionError(f"job {job_id} did not finish within {WAIT}s")


def _Submitter(stream: Stream, failures: list[BaseException]) -> None:
    try:
        while time.monotonic() < stream.deadline:
            seq, rng = stream.Next()
            sub, ops = _Ops(stream, seq, rng)
            with stream.lock:
                stream.submissions.append(sub)
            generation = stream.master.Generation()
            try:
                sub.job_id = stream.master.Call("SubmitJob", ops, idempotent=False)
            except (protocol.ConnectionClosedError, protocol.TimeoutError):
                # Sent, but the answer was lost with the daemon: the job
                # may or may not exist (at most once)
                stream.master.WaitRestarted(generation)
                continue
            sub.status = _WaitJob(stream.master, sub.job_id)
            if sub.kind == "create" and sub.status == constants.JOB_STATUS_SUCCESS:
                with stream.lock:
                    stream.created.append(sub.instance)
    except BaseException as err:  # reported by the test
        failures.append(err)


def _Kill(vc: VirtualCluster, node: str, daemon: str) -> int:
    pid = vc.daemons()[(node, daemon)]
    os.kill(pid, signal.SIGKILL)
    # Reaped by init (not our child): wait until it is gone
    deadline = time.monotonic() + 30
    while Path(f"/proc/{pid}").exists() and _Alive(pid):
        assert time.monotonic() < deadline, f"{daemon} on {node} survived SIGKILL"
        threading.Event().wait(0.01)  # bounded poll: not our child
    return pid


def _Alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fd:
            return fd.read().split()[2] != "Z"
    except OSError:
        return False


def _Start(vc: VirtualCluster, node: str, daemon: str) -> None:
    vc.run("daemon-util", "start", daemon, node=node, timeout=WAIT)


def _RestartMaster(vc: VirtualCluster, master: Master) -> None:
    master.SetUp(False)
    _Kill(vc, master.name, constants.MASTERD)
    _Start(vc, master.name, constants.MASTERD)
    master.SetUp(True)


def _Chaos(vc: VirtualCluster, stream: Stream, rng: random.Random) -> list[str]:
    """Kill and restart daemons at random moments until the deadline."""
    events = []
    pause = threading.Event()
    while time.monotonic() < stream.deadline:
        pause.wait(rng.uniform(0.5, 3.0))  # the random moment of the next kill
        if rng.random() < 0.4:
            _RestartMaster(vc, stream.master)
            events.append("masterd")
        else:
            node = rng.choice(vc.names)
            _Kill(vc, node, constants.NODED)
            # Down for a while: calls to it fail, the master retries later
            pause.wait(rng.uniform(0.0, 2.0))
            _Start(vc, node, constants.NODED)
            events.append(f"noded@{node.split('.')[0]}")
    return events


def _DiskFiles(vc: VirtualCluster, node: str) -> set[str]:
    root = vc.path(node, FILE_STORAGE)
    return {str(path.relative_to(root)) + ("/" if path.is_dir() else "")
            for path in root.rglob("*")} if root.exists() else set()


def _ConfiguredFiles(config: dict, node_uuid: str) -> set[str]:
    expected = set()
    for inst in config["instances"].values():
        for disk_uuid in inst["disks"]:
            disk = config["disks"][disk_uuid]
            if disk["dev_type"] != constants.DT_FILE or node_uuid not in disk["nodes"]:
                continue
            rel = os.path.relpath(disk["logical_id"][1], FILE_STORAGE)
            expected.update([rel, os.path.dirname(rel) + "/"])
    return expected


def _Verify(vc: VirtualCluster):
    result = vc.run("gnt-cluster", "verify", "--error-codes", check=False)
    lines = [line for line in result.stdout.splitlines() if line.startswith("  - ")]
    return result, lines


def test_crash_stream():
    seed = int(os.environ.get("GANETI_CRASH_SEED") or random.SystemRandom().getrandbits(32))
    print(f"\ncrash suite seed: {seed} (GANETI_CRASH_SEED={seed} replays it)", flush=True)
    rng = random.Random(seed)
    with virtual_cluster(nodes=3) as vc:
        _InstallSlowOs(vc)
        master = Master(vc)
        stream = Stream(random.Random(rng.random()), master, vc.names,
                        time.monotonic() + STREAM_SECONDS)
        failures: list[BaseException] = []
        threads = [threading.Thread(target=_Submitter, args=(stream, failures),
                                    name=f"submitter-{idx}") for idx in range(SUBMITTERS)]
        for thread in threads:
            thread.start()
        try:
            events = _Chaos(vc, stream, random.Random(rng.random()))
        finally:
            for thread in threads:
                thread.join(WAIT * 2)
        assert not failures, failures
        assert not any(thread.is_alive() for thread in threads)

        # Every daemon runs again; then the master dies once more, mid-work
        for node in vc.names:
            _Start(vc, node, constants.NODED)
        _RestartMaster(vc, master)
        events.append("masterd (final)")

        # Clean right after that one restart: no redist-conf
        result, lines = _Verify(vc)
        assert result.returncode == 0, result.stdout + result.stderr
        assert not [line for line in lines if line.startswith("  - ERROR")], lines

        # No job left unfinished (the recovery and the queue ended them all)
        jobs = master.Call("QueryJobs", None, ["id", "status", "ops"])
        for job_id, status, _ in jobs:
            if status not in constants.JOBS_FINALIZED:
                _WaitJob(master, job_id)
        jobs = master.Call("QueryJobs", None, ["id", "status", "ops", "opresult"])
        assert [job for job in jobs if job[1] not in constants.JOBS_FINALIZED] == []

        # No job lost or duplicated
        by_tag: dict[str, list[tuple[int, str]]] = {}
        reasons: dict[str, int] = {}
        for job_id, status, ops, results in jobs:
            comment = ops[0].get("comment") or ""
            if status == constants.JOB_STATUS_ERROR:
                reason = f"{ops[0]['OP_ID']}: {str(results[0])[:90]}"
                reasons[reason] = reasons.get(reason, 0) + 1
            if comment.startswith(TAG):
                by_tag.setdefault(comment, []).append((job_id, status))
        subs = {sub.tag: sub for sub in stream.submissions}
        assert set(by_tag) <= set(subs), sorted(set(by_tag) - set(subs))
        for tag, found in by_tag.items():
            assert len(found) == 1, f"submission {tag} made jobs {found}"
        for sub in stream.submissions:
            if sub.job_id is not None:
                assert by_tag.get(sub.tag, [(None,)])[0][0] == sub.job_id, sub
        status_of = {tag: found[0][1] for tag, found in by_tag.items()}

        # The master removes the creations that did not finish
        deadline = time.monotonic() + WAIT
        while any(inst.get("forthcoming") for inst in vc.config()["instances"].values()):
            assert time.monotonic() < deadline, "unfinished creations were not removed"
            threading.Event().wait(0.2)  # bounded poll of the configuration
        config = vc.config()
        instances = {inst["name"]: inst for inst in config["instances"].values()}

        # Job statuses match the configuration
        removed_ok = {sub.instance for sub in stream.submissions
                      if sub.kind == "remove" and status_of.get(sub.tag) == "success"}
        removal_failed = {sub.instance for sub in stream.submissions
                          if sub.kind == "remove" and sub.tag in status_of
                          and status_of[sub.tag] != "success"}
        for sub in stream.submissions:
            status = status_of.get(sub.tag)
            if sub.kind == "create" and status is not None:
                inst = instances.get(sub.instance)
                if status == "success" and sub.instance not in removed_ok:
                    assert inst is not None, f"{sub}: succeeded, but no instance"
                    want = constants.ADMINST_UP if sub.start else constants.ADMINST_DOWN
                    assert inst["admin_state"] == want, (sub, inst["admin_state"])
                elif status != "success":
                    assert inst is None, f"{sub}: {status}, but the instance exists"
            if sub.kind == "remove" and status == "success":
                assert sub.instance not in instances, f"{sub}: removed, but still there"
            if sub.kind == "remove" and status not in (None, "success"):
                assert sub.instance in instances, f"{sub}: {status}, but it is gone"
        # Instances nobody tried to remove run as their creation asked
        listing = vc.run("gnt-instance", "list", "--no-headers", "--separator=|",
                         "-o", "name,status").stdout.split()
        states = dict(line.split("|") for line in listing)
        for sub in stream.submissions:
            if sub.kind == "create" and sub.instance in states and \
                    sub.instance not in removal_failed:
                want = "running" if sub.start else "ADMIN_down"
                assert states[sub.instance] == want, (sub, states[sub.instance])

        # No orphan disk files, by verify and by looking
        result, lines = _Verify(vc)
        assert result.returncode == 0, result.stdout + result.stderr
        assert not [line for line in lines if "ENODEORPHANFILE" in line
                    or line.startswith("  - ERROR")], lines
        uuids = {node["name"]: uuid for uuid, node in config["nodes"].items()}
        partial = {inst["uuid"] for name, inst in instances.items()
                   if name in removal_failed}
        for node in vc.names:
            found = _DiskFiles(vc, node)
            expected = _ConfiguredFiles(config, uuids[node])
            assert found <= expected, f"orphans on {node}: {sorted(found - expected)}"
            # Missing files only where a removal failed half-way
            allowed = _ConfiguredFiles({"instances": {
                uuid: inst for uuid, inst in config["instances"].items()
                if uuid in partial}, "disks": config["disks"]}, uuids[node])
            assert expected - found <= allowed, sorted(expected - found)

        counts: dict[str, int] = {}
        for status in status_of.values():
            counts[status] = counts.get(status, 0) + 1
        lost_answers = sum(1 for sub in stream.submissions if sub.job_id is None)
        print(f"crash suite seed {seed}: {len(stream.submissions)} submissions"
              f" ({lost_answers} answers lost), jobs {counts}, {len(instances)}"
              f" instances left, kills: {', '.join(events)}", flush=True)
        for reason, count in sorted(reasons.items(), key=lambda item: -item[1])[:12]:
            print(f"  {count:4d} x {reason}")
