"""Integration tests: a real ganeti-masterd driven through the luxi client.

Every test starts the daemon from ``daemons/ganeti-masterd`` in a temporary
node root (see conftest.py) and talks to it over its Unix socket.
"""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from ganeti import constants, errors, opcodes
from ganeti.luxi import protocol

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

FINAL = constants.JOBS_FINALIZED


def _Delay(duration=0.001, locked=False, **kwargs):
    """OpTestDelay; ``locked`` makes it hold the master node's lock."""
    return opcodes.OpTestDelay(duration=duration, no_locks=not locked, **kwargs)


def _WaitFor(cl, job_id, statuses, timeout=60.0):
    """Follow a job with WaitForJobChange until its status is in ``statuses``."""
    deadline = time.monotonic() + timeout
    prev_info, prev_serial = None, None
    while True:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"job {job_id} did not reach {statuses}"
        result = cl.WaitForJobChangeOnce(job_id, ["status"], prev_info, prev_serial,
                                         timeout=min(remaining, 10))
        if result == constants.JOB_NOTCHANGED:
            continue
        prev_info, log_entries = result
        if log_entries:
            prev_serial = max(entry[0] for entry in log_entries)
        if prev_info[0] in statuses:
            return prev_info[0]


def _Fields(cl, job_id, fields):
    (row,) = cl.QueryJobs([job_id], fields)
    assert row is not None, f"job {job_id} unknown"
    return row


def test_daemon_files_and_cluster_info(master):
    assert int(master.pid_file.read_text()) == master.pid
    for path in (master.socket_path, master.query_socket_path):
        assert stat.S_ISSOCK(os.stat(path).st_mode)
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o660
    with master.luxi_client() as cl:
        info = cl.QueryClusterInfo()
        assert info["name"] == "cluster.example.com"
        assert info["master"] == "node1.example.com"
        assert info["software_version"] == constants.RELEASE_VERSION
        assert info["protocol_version"] == constants.PROTOCOL_VERSION
        assert info["enabled_hypervisors"] == [constants.HT_FAKE]
        assert info["default_hypervisor"] == constants.HT_FAKE
        assert cl.QueryConfigValues(["cluster_name", "master_node", "drain_flag",
                                     "watcher_pause"]) == \
            ["cluster.example.com", "node1.example.com", False, None]
        with pytest.raises(errors.OpPrereqError, match="no_such_field"):
            cl.QueryConfigValues(["no_such_field"])
    # Ganeti 3.0's client library connects to the query socket and may send
    # a version, which is echoed
    qcl = master.luxi_client(version=constants.LUXI_VERSION)
    qcl.address = master.query_socket_path
    with qcl:
        assert qcl.QueryClusterInfo()["uuid"] == info["uuid"]
    assert master.stop() == 0
    assert not os.path.exists(master.pid_file)
    assert not os.path.exists(master.socket_path)
    assert not os.path.exists(master.query_socket_path)
    log = master.log_file.read_text()
    assert "serving" in log and "stopped" in log


def test_many_concurrent_jobs(master):
    def _Client(n):
        with master.luxi_client() as cl:
            ids = [cl.SubmitJob([_Delay()]) for _ in range(25)]
            return ids, [_WaitFor(cl, job_id, FINAL) for job_id in ids]
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(_Client, range(8)))
    all_ids = [job_id for ids, _ in results for job_id in ids]
    assert len(set(all_ids)) == 200
    assert all(status == "success" for _, statuses in results for status in statuses)
    for job_id in all_ids:
        assert master.job_file(job_id).exists()
    with master.luxi_client() as cl:
        rows = cl.Query("job", ["id", "status"], ["=", "status", "success"])["data"]
        assert len(rows) == 200


def test_submit_many_jobs_with_relative_dependency(master):
    with master.luxi_client() as cl:
        results = cl.SubmitManyJobs([
            [_Delay(0.2)],
            [opcodes.OpTestDelay(duration=0.001, depends=[[-1, ["success"]]])],
        ])
        assert [ok for ok, _ in results] == [True, True]
        first, second = (job_id for _, job_id in results)
        assert _WaitFor(cl, second, FINAL) == "success"
        first_end = _Fields(cl, first, ["end_ts"])[0]
        (second_exec,) = _Fields(cl, second, ["opexec"])[0]
        assert tuple(second_exec) >= tuple(first_end)


def test_dependency_on_failed_job_fails(master):
    with master.luxi_client() as cl:
        # A zero duration passes the type check but fails in the LU
        bad = cl.SubmitJob([opcodes.OpTestDelay(duration=0)])
        dep = cl.SubmitJob([opcodes.OpTestDelay(duration=0.001,
                                                depends=[[bad, ["success"]]])])
        assert _WaitFor(cl, bad, FINAL) == "error"
        assert "greater than zero" in str(_Fields(cl, bad, ["opresult"])[0])
        assert _WaitFor(cl, dep, FINAL) == "error"


def test_cancel_waiting_job(master):
    with master.luxi_client() as cl:
        holder = cl.SubmitJob([_Delay(3, locked=True)])
        assert _WaitFor(cl, holder, ["running"]) == "running"
        victim = cl.SubmitJob([_Delay(locked=True)])
        assert _WaitFor(cl, victim, ["waiting", "queued"]) in ("waiting", "queued")
        ok, msg = cl.CancelJob(victim)
        assert ok, msg
        assert _WaitFor(cl, victim, FINAL) == "canceled"
        ok, msg = cl.CancelJob(holder)
        assert not ok and msg
        assert _WaitFor(cl, holder, FINAL) == "success"
        ok, msg = cl.CancelJob(victim)
        assert not ok


def test_priorities(master):
    with master.luxi_client() as cl:
        holder = cl.SubmitJob([_Delay(3, locked=True)])
        assert _WaitFor(cl, holder, ["running"]) == "running"
        low = cl.SubmitJob([_Delay(locked=True, priority=constants.OP_PRIO_LOW)])
        normal = cl.SubmitJob([_Delay(locked=True)])
        raised = cl.SubmitJob([_Delay(locked=True, priority=constants.OP_PRIO_LOW)])
        high = cl.SubmitJob([_Delay(locked=True, priority=constants.OP_PRIO_HIGH)])
        ok, msg = cl.ChangeJobPriority(raised, constants.OP_PRIO_HIGH)
        assert ok, msg
        assert _Fields(cl, raised, ["priority"])[0] == constants.OP_PRIO_HIGH
        with pytest.raises(errors.OpPrereqError, match="priority"):
            cl.ChangeJobPriority(low, "urgent")
        for job_id in (holder, low, normal, raised, high):
            assert _WaitFor(cl, job_id, FINAL) == "success"
        starts = {job_id: tuple(_Fields(cl, job_id, ["opexec"])[0][0])
                  for job_id in (low, normal, raised, high)}
        assert max(starts[high], starts[raised]) <= starts[normal] <= starts[low]


def test_drain_flag(master):
    with master.luxi_client() as cl:
        assert cl.SetDrainFlag(True) is True
        assert cl.QueryConfigValues(["drain_flag"]) == [True]
        with pytest.raises(errors.JobQueueDrainError):
            cl.SubmitJob([_Delay()])
        job_id = cl.SubmitJobToDrainedQueue([_Delay()])
        assert _WaitFor(cl, job_id, FINAL) == "success"
        with pytest.raises(errors.OpPrereqError, match="drain flag"):
            cl.SetDrainFlag("yes")
        assert cl.SetDrainFlag(False) is True
        assert cl.QueryConfigValues(["drain_flag"]) == [False]
        assert _WaitFor(cl, cl.SubmitJob([_Delay()]), FINAL) == "success"


def test_archive_and_autoarchive(master):
    with master.luxi_client() as cl:
        ids = [cl.SubmitJob([_Delay()]) for _ in range(4)]
        for job_id in ids:
            assert _WaitFor(cl, job_id, FINAL) == "success"
        assert cl.ArchiveJob(ids[0]) is True
        assert not master.job_file(ids[0]).exists()
        assert (master.queue_dir / "archive" / "0" / f"job-{ids[0]}").exists()
        archived, remaining = cl.AutoArchiveJobs(-1, 10)
        assert (archived, remaining) == (3, 0)
        assert all(not master.job_file(job_id).exists() for job_id in ids)


def test_watcher_pause(master):
    with master.luxi_client() as cl:
        until = int(time.time()) + 3600
        assert cl.SetWatcherPause(until) == until
        assert cl.QueryConfigValues(["watcher_pause"]) == [until]
        with pytest.raises(errors.OpPrereqError, match="in the past"):
            cl.SetWatcherPause(10)
        assert cl.SetWatcherPause(None) is None
        assert cl.QueryConfigValues(["watcher_pause"]) == [None]


def test_wait_for_job_change_times_out(master):
    with master.luxi_client() as cl:
        job_id = cl.SubmitJob([_Delay(2, locked=True)])
        info = _WaitFor(cl, job_id, ["running"])
        start = time.monotonic()
        assert cl.WaitForJobChangeOnce(job_id, ["status"], [info], None,
                                       timeout=0.3) == constants.JOB_NOTCHANGED
        assert time.monotonic() - start < 5
        with pytest.raises(errors.JobLost):
            cl.WaitForJobChangeOnce(99999, ["status"], None, None, timeout=1)


def test_client_disconnecting_during_wait(master):
    with master.luxi_client() as cl:
        job_id = cl.SubmitJob([_Delay(1, locked=True)])
        info = _WaitFor(cl, job_id, ["running"])
        for _ in range(50):
            sock = master.raw_socket()
            sock.sendall(protocol.Frame(protocol.FormatRequest(
                "WaitForJobChange", [job_id, ["status"], [info], None, 30])))
            sock.close()
        # The daemon keeps serving, and the job still finishes
        assert cl.QueryClusterInfo()["name"] == "cluster.example.com"
        assert _WaitFor(cl, job_id, FINAL) == "success"


def test_garbage_on_the_socket(master):
    with master.raw_socket() as sock:
        splitter = protocol.FrameSplitter()

        def _Answer():
            while (msg := splitter.Pop()) is None:
                data = sock.recv(4096)
                assert data, "connection closed"
                splitter.Feed(data)
            return protocol.ParseResponse(msg)

        for request in (b"\x00\xffgarbage", b"{}", b'{"method": "NoSuch", "args": []}',
                        protocol.FormatRequest("SubmitJob", [])):
            sock.sendall(request + protocol.EOM)
            success, result, _ = _Answer()
            assert not success and result[0] == "LuxiError"
        sock.sendall(protocol.Frame(protocol.FormatRequest("SubmitJob", [[{"OP_ID": "X"}]])))
        success, result, _ = _Answer()
        assert not success
        sock.sendall(b'{"method": "QueryClusterInfo", "ar')
        sock.shutdown(socket.SHUT_WR)
        success, result, _ = _Answer()
        assert not success and "Truncated" in result[1][0]
    with master.luxi_client() as cl:
        assert _WaitFor(cl, cl.SubmitJob([_Delay()]), FINAL) == "success"


def test_opcode_dicts_with_every_client_parameter(master):
    """Opcodes as Ganeti's clients send them: all common parameters set."""
    op = {"OP_ID": "OP_TEST_DELAY", "duration": 0.001, "on_master": True,
          "on_nodes": [], "repeat": 0, "debug_level": 0, "dry_run": False,
          "priority": 0, "depends": None, "comment": None,
          "reason": [["gnt:client:gnt-debug", "delay", 1234567890000000000]]}
    with master.luxi_client() as cl:
        job_id = cl.SubmitJob([op])
        assert _WaitFor(cl, job_id, FINAL) == "success"


@pytest.mark.parametrize("how", ["kill", "term"])
def test_restart_with_running_and_queued_jobs(master_factory, how):
    master = master_factory().start("--shutdown-timeout", "0.5")
    with master.luxi_client() as cl:
        running = cl.SubmitJob([_Delay(60, locked=True)])
        assert _WaitFor(cl, running, ["running"]) == "running"
        queued = cl.SubmitJob([_Delay(locked=True)])
        assert _WaitFor(cl, queued, ["waiting", "queued"]) in ("waiting", "queued")
    if how == "kill":
        master.kill()
    else:
        assert master.stop() == 0
    master.start()
    with master.luxi_client() as cl:
        assert _WaitFor(cl, running, FINAL) == "error"
        result = _Fields(cl, running, ["opresult"])[0]
        assert "Unclean master daemon shutdown" in str(result)
        assert _WaitFor(cl, queued, FINAL) == "success"


def test_second_daemon_refuses_to_start(master):
    proc = subprocess.run(master.command("-f"), env=master.env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == constants.EXIT_FAILURE
    assert "pid file" in proc.stderr.lower()
    with master.luxi_client() as cl:
        assert cl.QueryClusterInfo()["name"] == "cluster.example.com"


def test_refuses_without_config_or_on_other_node(master_factory):
    m = master_factory()
    env = dict(m.env)
    env["GANETI_ROOTDIR"] = str(m.root.parent / "node2.example.com")
    env["GANETI_HOSTNAME"] = "node2.example.com"
    proc = subprocess.run(m.command("-f"), env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == constants.EXIT_NOTCLUSTER
    assert "not part of a cluster" in proc.stderr
    # node2 with node1's configuration: not the master
    os.makedirs(env["GANETI_ROOTDIR"] + "/var/lib/ganeti", exist_ok=True)
    os.link(m.cfg_file, env["GANETI_ROOTDIR"] + "/var/lib/ganeti/config.data")
    proc = subprocess.run(m.command("-f"), env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == constants.EXIT_NOTMASTER
    assert "not the master" in proc.stderr


def test_daemonizes_without_foreground(master_factory):
    m = master_factory()
    proc = subprocess.run(m.command(), env=m.env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    # The parent returns once the daemon serves
    pid = int(m.pid_file.read_text())
    try:
        with m.luxi_client() as cl:
            assert cl.QueryClusterInfo()["name"] == "cluster.example.com"
    finally:
        os.kill(pid, 15)
        done = threading.Event()
        deadline = time.monotonic() + 60
        while os.path.exists(m.pid_file) and time.monotonic() < deadline:
            done.wait(0.05)  # bounded poll: the daemon is not our child
    assert not os.path.exists(m.pid_file)
