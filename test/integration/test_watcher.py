"""ganeti-watcher against real daemons on a 3-node virtual cluster.

One cluster for the module (node1 the master; node3 moves to a second node
group for the last test). Each test runs the watcher as a node with
``vc.run("ganeti-watcher", node=...)`` and, on the master, waits until the
jobs it submitted have ended (:func:`vcluster.WaitForJobs`), as
``make vcluster-watcher`` does.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from vcluster import VirtualCluster, virtual_cluster  # noqa: E402

from ganeti import constants, utils, vcluster  # noqa: E402
from ganeti.luxi import client as luxi_client  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

WAIT = 120.0
RUN = "/var/run/ganeti"
DATA = "/var/lib/ganeti"


@pytest.fixture(scope="module")
def vc():
    with virtual_cluster(nodes=3) as cluster:
        yield cluster


def _Socket(vc: VirtualCluster) -> str:
    return str(vc.path(vc.master(), RUN + "/socket/ganeti-master"))


def _Jobs(vc: VirtualCluster) -> list[tuple[int, str, str]]:
    with luxi_client.Client(_Socket(vc)) as client:
        return [(job[0], ",".join(job[1]), job[2])
                for job in client.QueryJobs(None, ["id", "summary", "status"])
                if job is not None]


def _WaitJobs(vc: VirtualCluster) -> None:
    left = vcluster.WaitForJobs(_Socket(vc), WAIT)
    assert not left, f"jobs still unfinished: {left}"


def _Watcher(vc: VirtualCluster, node: str | int, *args: str,
             check: bool = True) -> subprocess.CompletedProcess:
    result = vc.run("ganeti-watcher", *args, node=node, check=check)
    if vc.node(node).name == vc.master():
        _WaitJobs(vc)
    return result


def _Log(vc: VirtualCluster, node: str | int) -> str:
    try:
        return vc.path(node, "/var/log/ganeti/watcher.log").read_text()
    except FileNotFoundError:
        return ""


def _Pid(vc: VirtualCluster, node: str | int, daemon: str) -> int | None:
    return vc.daemons().get((vc.node(node).name, daemon))


def _Kill(vc: VirtualCluster, node: str | int, daemon: str) -> None:
    pid = _Pid(vc, node, daemon)
    assert pid, f"{daemon} does not run on {node}"
    utils.KillProcess(pid, timeout=30)
    assert _Pid(vc, node, daemon) is None


def _AddInstance(vc: VirtualCluster, name: str, node: str, template: str) -> None:
    disks = ["--disk", "0:size=1G"] if template != "diskless" else []
    vc.run("gnt-instance", "add", "-o", "noop+default", "-t", template, *disks,
           "--no-name-check", "--no-ip-check", "-n", node, name)


def _EnsureInstance(vc: VirtualCluster, name: str, node: str, template: str) -> None:
    """Create the instance unless an earlier test did (tests run alone too)."""
    if not any(inst["name"] == name for inst in vc.config()["instances"].values()):
        _AddInstance(vc, name, node, template)


def _FakeState(vc: VirtualCluster, node: str | int, name: str) -> Path:
    return vc.path(node, f"{RUN}/fake-hypervisor/{name}")


def _GroupState(vc: VirtualCluster, group_uuid: str) -> dict:
    return json.loads(vc.path(vc.master(), f"{DATA}/watcher.{group_uuid}.data").read_text())


def _GroupUuid(vc: VirtualCluster, name: str = "default") -> str:
    for group in vc.config()["nodegroups"].values():
        if group["name"] == name:
            return group["uuid"]
    raise KeyError(name)


def _Tree(pids: list[int]) -> list[int]:
    """``pids`` and all their descendants."""
    result, todo = [], list(pids)
    while todo:
        pid = todo.pop()
        result.append(pid)
        todo.extend(vcluster._Children(pid))
    return result


def _WaitFor(condition, what: str, timeout: float = WAIT) -> None:
    """Wait (bounded) until ``condition()`` holds: a check of state other
    processes change, not a fixed sleep."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_dead_daemons_come_back(vc):
    master, other = vc.names[0], vc.names[1]
    _Kill(vc, other, constants.NODED)
    _Kill(vc, other, constants.CONFD)
    _Kill(vc, master, constants.RAPI)
    _Kill(vc, master, constants.CONFD)
    _Watcher(vc, other)
    assert _Pid(vc, other, constants.NODED) and _Pid(vc, other, constants.CONFD)
    _Watcher(vc, master)
    assert _Pid(vc, master, constants.RAPI) and _Pid(vc, master, constants.CONFD)
    assert "Daemon ganeti-rapi is not running; starting it" in _Log(vc, master)
    # RAPI answers again
    from ganeti.watcher import nodepart
    assert nodepart.IsRapiResponding(vc.node(master).ip, constants.DEFAULT_RAPI_PORT)


def test_master_daemon_restarted_by_the_watcher(vc):
    master = vc.master()
    _Kill(vc, master, constants.MASTERD)
    _Watcher(vc, master)
    assert _Pid(vc, master, constants.MASTERD)


def test_stopped_instance_started_again(vc):
    node2 = vc.names[1]
    _AddInstance(vc, "wi1", node2, "diskless")
    state = _FakeState(vc, node2, "wi1")
    state.unlink()
    _Watcher(vc, vc.master())
    assert state.exists()
    starts = [job for job in _Jobs(vc) if job[1] == "INSTANCE_STARTUP(wi1)"]
    assert [job[2] for job in starts] == ["success"]
    # The next run sees it running: the counter is reset, no new job
    _Watcher(vc, vc.master())
    assert "wi1" not in _GroupState(vc, _GroupUuid(vc))["instance"]
    assert "Restart of instance 'wi1' succeeded" in _Log(vc, vc.master())
    status = vc.path(vc.master(), RUN + "/instance-status").read_text()
    assert "wi1 running\n" in status


def test_failed_restarts_given_up_and_reported(vc):
    node2 = vc.names[1]
    _AddInstance(vc, "wi2", node2, "diskless")
    settings = vc.path(node2, "/etc/ganeti/fake-hypervisor.json")
    # The fake hypervisor of node2 now has too little memory to start it
    settings.write_text(json.dumps({"memory_total": 1}))
    try:
        _FakeState(vc, node2, "wi2").unlink()
        for _ in range(7):
            _Watcher(vc, vc.master())
        starts = [job for job in _Jobs(vc) if job[1] == "INSTANCE_STARTUP(wi2)"]
        assert [job[2] for job in starts] == ["error"] * 5
        entry = _GroupState(vc, _GroupUuid(vc))["instance"]["wi2"]
        assert entry["restart_count"] == 6
        log = _Log(vc, vc.master())
        assert log.count("Could not restart instance 'wi2' after 5 attempts,"
                         " giving up") == 1
    finally:
        settings.unlink()
    vc.run("gnt-instance", "remove", "-f", "wi2")


def test_rebooted_node_gets_disks_activated(vc):
    node2 = vc.names[1]
    _AddInstance(vc, "wi3", node2, "file")
    _Watcher(vc, vc.master())
    before = {job[0] for job in _Jobs(vc)}
    vc.path(node2, DATA + "/vcluster-boot-id").write_text(str(uuid.uuid4()) + "\n")
    _Watcher(vc, vc.master())
    new = [job for job in _Jobs(vc) if job[0] not in before]
    assert ("INSTANCE_ACTIVATE_DISKS(wi3)", "success") in [(j[1], j[2]) for j in new]
    assert not any(j[1] == "INSTANCE_ACTIVATE_DISKS(wi1)" for j in new)  # diskless
    # Seen once: the next run does not activate again
    before = {job[0] for job in _Jobs(vc)}
    _Watcher(vc, vc.master())
    assert not any(j[1].startswith("INSTANCE_ACTIVATE_DISKS") for j in _Jobs(vc)
                   if j[0] not in before)


def test_verify_disks_and_corrupt_state(vc):
    result = vc.run("gnt-cluster", "verify-disks")
    assert "No disks need to be activated." in result.stdout
    state_file = vc.path(vc.master(), f"{DATA}/watcher.{_GroupUuid(vc)}.data")
    state_file.write_text('{"instance": {"wi1": {"restart_cou')
    _Watcher(vc, vc.master())
    assert "is corrupt" in _Log(vc, vc.master())
    json.loads(state_file.read_text())
    verify = [job for job in _Jobs(vc) if job[1].startswith("GROUP_VERIFY_DISKS")]
    assert verify and verify[-1][2] == "success"
    _Watcher(vc, vc.master(), "--no-verify-disks")
    assert len([job for job in _Jobs(vc) if job[1].startswith("GROUP_VERIFY_DISKS")]) \
        == len(verify)


def test_pause(vc):
    node2 = vc.names[1]
    for bad in ("-5", "soon"):
        result = vc.run("gnt-cluster", "watcher", "pause", bad, check=False)
        assert result.returncode != 0 and f"'{bad}'" in result.stderr
    vc.run("gnt-cluster", "watcher", "pause", "1h")
    # On every node (a new master after a failover has it too)
    for name in vc.names:
        until = int(vc.path(name, DATA + "/watcher.pause").read_text())
        assert until > time.time() + 3500
    assert "paused until" in vc.run("gnt-cluster", "watcher", "info").stdout
    _Kill(vc, node2, constants.NODED)
    _Watcher(vc, node2)
    assert _Pid(vc, node2, constants.NODED) is None
    _Watcher(vc, node2, "--ignore-pause")
    assert _Pid(vc, node2, constants.NODED)
    vc.run("gnt-cluster", "watcher", "continue")
    assert not vc.path(node2, DATA + "/watcher.pause").exists()
    assert "not paused" in vc.run("gnt-cluster", "watcher", "info").stdout
    # A short pause ends by itself
    vc.run("gnt-cluster", "watcher", "pause", "2s")
    until = int(vc.path(node2, DATA + "/watcher.pause").read_text())
    _Kill(vc, node2, constants.NODED)
    _Watcher(vc, node2)
    assert _Pid(vc, node2, constants.NODED) is None
    _WaitFor(lambda: time.time() > until + 1, "the end of the pause")
    _Watcher(vc, node2)
    assert _Pid(vc, node2, constants.NODED)
    assert "not paused" in vc.run("gnt-cluster", "watcher", "info").stdout


def test_old_jobs_archived(vc):
    finished = [job[0] for job in _Jobs(vc) if job[2] in constants.JOBS_FINALIZED]
    assert finished
    queue = vc.path(vc.master(), DATA + "/queue")
    assert all((queue / f"job-{job_id}").exists() for job_id in finished)
    # Old enough: every job finished before now
    _Watcher(vc, vc.master(), "--job-age", "0", "--no-verify-disks")
    assert not any((queue / f"job-{job_id}").exists() for job_id in finished)
    assert "Archived" in _Log(vc, vc.master())


def test_two_watchers_one_runs(vc):
    node3 = vc.names[2]
    hooks = vc.path(node3, "/etc/ganeti/hooks/watcher")
    hooks.mkdir(parents=True, exist_ok=True)
    started, release = hooks.parent / "started.fifo", hooks.parent / "release.fifo"
    os.mkfifo(started)
    os.mkfifo(release)
    hook = hooks / "10-block"
    hook.write_text(f"#!/bin/sh\necho started > {started}\nread x < {release}\n")
    hook.chmod(0o755)
    first = subprocess.Popen([vc.python, vc.tools.Script("ganeti-watcher")],
                             env=vc.env(node3), stdin=subprocess.DEVNULL,
                             start_new_session=True)
    try:
        # Opening blocks until the first watcher's hook writes: it runs
        with open(started) as fd:
            assert fd.read() == "started\n"
        second = _Watcher(vc, node3)
        assert second.returncode == 0
        assert "Another ganeti-watcher runs on this node" in _Log(vc, node3)
        with open(release, "w") as fd:
            fd.write("go\n")
        assert first.wait(timeout=WAIT) == 0
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
            first.wait()
        hook.unlink()
    assert "Watcher hook" not in _Log(vc, node3)   # it succeeded


def test_node_health_stops_instances_of_an_offline_node(vc):
    """maintain_node_health: a node the candidates declare offline stops
    its instances in its own watcher run; without the option it does not."""
    node = vc.names[2]
    _EnsureInstance(vc, "wn1", node, "diskless")
    assert _FakeState(vc, node, "wn1").exists()
    vc.run("gnt-node", "modify", "--offline", "yes", "--force", node)
    try:
        # The option is off: the offline node keeps running its instance
        _Watcher(vc, node)
        assert _FakeState(vc, node, "wn1").exists()
        # The cluster parameter reaches the offline node's ssconf by hand,
        # as it would have before the node went offline
        vc.run("gnt-cluster", "modify", "--maintain-node-health", "yes")
        ss = vc.path(node, DATA + "/ssconf_maintain_node_health")
        ss.write_text("True")
        _Watcher(vc, node)
        assert not _FakeState(vc, node, "wn1").exists()
        assert "stopping instance wn1" in _Log(vc, node)
    finally:
        vc.run("gnt-cluster", "modify", "--maintain-node-health", "no")
        vc.run("gnt-node", "modify", "--offline", "no", "--force", node)
    # Back online, the instance (still marked up) is started by the master
    _Watcher(vc, vc.master())
    assert _FakeState(vc, node, "wn1").exists()
    vc.run("gnt-instance", "remove", "--force", "wn1")


def test_hung_group_does_not_stop_the_others(vc):
    node2, node3 = vc.names[1], vc.names[2]
    vc.run("gnt-group", "add", "hung")
    vc.run("gnt-node", "modify", "-C", "no", node3)
    vc.run("gnt-group", "assign-nodes", "hung", node3)
    _AddInstance(vc, "wh1", node3, "file")
    hung_uuid, default_uuid = _GroupUuid(vc, "hung"), _GroupUuid(vc)
    _EnsureInstance(vc, "wi1", node2, "diskless")
    _Watcher(vc, vc.master())
    _FakeState(vc, node2, "wi1").unlink()
    # The node daemon serves kept-open connections in child processes: the
    # whole tree hangs
    stopped = _Tree([pid for pid in (_Pid(vc, node3, constants.NODED),
                                     _Pid(vc, node3, constants.CONFD)) if pid])
    before = {job[0] for job in _Jobs(vc)}
    parent = None
    try:
        for pid in stopped:
            os.kill(pid, signal.SIGSTOP)
        parent = subprocess.Popen([vc.python, vc.tools.Script("ganeti-watcher")],
                                  env=vc.env(vc.master()), stdin=subprocess.DEVNULL,
                                  start_new_session=True)

        def _Restarted() -> bool:
            return any(job[1] == "INSTANCE_STARTUP(wi1)" and job[2] == "success"
                       for job in _Jobs(vc) if job[0] not in before)
        _WaitFor(_Restarted, "the default group's restart of wi1")
        restarted_at = _RestartEnd(vc, before)
        assert _FakeState(vc, node2, "wi1").exists()
        assert default_uuid != hung_uuid
    finally:
        for pid in stopped:
            os.kill(pid, signal.SIGCONT)
        if parent is not None:
            try:
                parent.wait(timeout=WAIT)
            finally:
                if parent.poll() is None:
                    os.killpg(parent.pid, signal.SIGKILL)
                    parent.wait()
    _WaitJobs(vc)
    assert parent.returncode == 0
    # The hung group's child ended only after the default group's restart
    # (it waited for node3 until its RPC deadlines; the parent for it)
    log = _Log(vc, vc.master())
    ended = _LogTimes(log, f"Group {hung_uuid}: done")
    assert ended and ended[-1] > restarted_at, log[-3000:]


def _RestartEnd(vc: VirtualCluster, before: set[int]) -> float:
    """When the restart job of wi1 ended (Unix time)."""
    with luxi_client.Client(_Socket(vc)) as client:
        jobs = client.QueryJobs(None, ["id", "summary", "end_ts"])
    ends = [job[2] for job in jobs if job is not None and job[0] not in before
            and job[1] == ["INSTANCE_STARTUP(wi1)"] and job[2]]
    assert ends
    return ends[-1][0] + ends[-1][1] / 1e6


def _LogTimes(log: str, text: str) -> list[float]:
    """The times (Unix time) of the log lines containing ``text``."""
    times = []
    for line in log.splitlines():
        if text in line:
            stamp = line.split(": ", 1)[0]
            day, _, millis = stamp.partition(",")
            times.append(time.mktime(time.strptime(day, "%Y-%m-%d %H:%M:%S"))
                         + int(millis) / 1000)
    return times


def test_vcluster_watcher_and_crontab(vc):
    crontab = Path(vc.directory, "crontab").read_text()
    for node in vc.nodes:
        assert f"*/5 * * * * {node.root}/cmd ganeti-watcher\n" in crontab
    _EnsureInstance(vc, "wi1", vc.names[1], "diskless")
    _Kill(vc, vc.names[1], constants.NODED)
    _FakeState(vc, vc.names[1], "wi1").unlink()
    result = subprocess.run(vc.make_command("vcluster-watcher"), capture_output=True,
                            text=True, timeout=WAIT * 2, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ran on 3 node(s) (0 failed)" in result.stdout
    assert _Pid(vc, vc.names[1], constants.NODED)
    assert _FakeState(vc, vc.names[1], "wi1").exists()


def test_master_unreachable_node_part_only(vc):
    master = vc.master()
    # A master daemon that cannot start: its launcher is hidden for this run
    env = vc.env(master)
    env["GANETI_DAEMONS_DIR"] = str(Path(vc.directory, "no-daemons"))
    Path(env["GANETI_DAEMONS_DIR"]).mkdir(exist_ok=True)
    for name in ("ganeti-noded", "ganeti-confd", "ganeti-rapi"):
        os.symlink(vc.tools.Script(name), Path(env["GANETI_DAEMONS_DIR"], name))
    _Kill(vc, master, constants.MASTERD)
    _Kill(vc, master, constants.NODED)
    try:
        result = subprocess.run([vc.python, vc.tools.Script("ganeti-watcher")],
                                env=env, capture_output=True, text=True,
                                timeout=WAIT, check=False)
        assert result.returncode == 2
        assert "Cannot reach the master daemon" in result.stderr
        assert "only this node's part" in result.stderr
        assert _Pid(vc, master, constants.NODED)     # the node part was done
    finally:
        vc.run("daemon-util", "start", constants.MASTERD, node=master)
