"""gnt-job and gnt-debug, run as commands against a real ganeti-masterd.

The tools run as subprocesses (the real scripts/ launchers) with the
master fixture's environment. A job that must hold a lock for as long as
a test needs is an OpTestJqueue with ``notify_exec``: its LU takes the
master node's lock, then waits in Exec until the test connects to the
Unix socket it names in its log, so nothing here depends on timing.
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from ganeti import constants, opcodes

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

REPO = Path(__file__).resolve().parents[2]
WAIT_TIMEOUT = 30


@pytest.fixture
def tmp_path():
    """A short temporary directory, replacing pytest's for the master fixture.

    pytest's tmp_path plus the node root and "var/run/ganeti/socket/
    ganeti-master" can exceed the 107 bytes a Unix socket path may have.
    """
    path = tempfile.mkdtemp(prefix="gntcli-", dir="/tmp")
    yield Path(path)
    shutil.rmtree(path, ignore_errors=True)


def _Run(master, tool: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run scripts/<tool> with ``args``; return the finished process."""
    return subprocess.run([sys.executable, str(REPO / "scripts" / tool), *args],
                          env=master.env, capture_output=True, text=True,
                          timeout=timeout, check=False)


def _Ok(master, tool: str, *args: str) -> str:
    """Run a tool that must succeed; return its standard output."""
    proc = _Run(master, tool, *args)
    assert proc.returncode == 0, (tool, args, proc.returncode, proc.stdout, proc.stderr)
    return proc.stdout


def _WaitForStatus(cl, job_id: int, statuses: set[str]) -> str:
    """Block (on the master's change notifications) until the job's status is in
    ``statuses``."""
    deadline = time.monotonic() + WAIT_TIMEOUT
    prev = None
    while True:
        (row,) = cl.QueryJobs([job_id], ["status"])
        if row is not None and row[0] in statuses:
            return row[0]
        assert time.monotonic() < deadline, f"job {job_id} stayed {row}"
        result = cl.WaitForJobChangeOnce(job_id, ["status"], prev, None, timeout=5)
        if result != constants.JOB_NOTCHANGED:
            prev = result[0]


class Blocker:
    """An OpTestJqueue job that holds the master node's lock until released."""

    def __init__(self, master) -> None:
        self.cl = master.luxi_client()
        op = opcodes.OpTestJqueue(notify_exec=True)
        self.job_id = self.cl.SubmitJob([op])
        self.sockname = self._WaitForNotification()

    def _WaitForNotification(self) -> str:
        deadline = time.monotonic() + WAIT_TIMEOUT
        prev_info, prev_serial = None, None
        while time.monotonic() < deadline:
            result = self.cl.WaitForJobChangeOnce(self.job_id, ["status"], prev_info,
                                                  prev_serial, timeout=5)
            if result == constants.JOB_NOTCHANGED:
                continue
            prev_info, entries = result
            for serial, _, log_type, message in entries:
                prev_serial = serial
                if log_type == constants.ELOG_JQUEUE_TEST:
                    sockname, step, _ = message
                    assert step == constants.JQT_EXEC
                    return sockname
        raise AssertionError(f"blocker job {self.job_id} never reached Exec")

    def Release(self) -> None:
        """Let the LU finish (connecting and closing is the signal)."""
        if self.sockname is not None:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(WAIT_TIMEOUT)
                sock.connect(self.sockname)
            self.sockname = None
        _WaitForStatus(self.cl, self.job_id, set(constants.JOBS_FINALIZED))
        self.cl.Close()


@pytest.fixture
def blocker(master):
    job = Blocker(master)
    yield job
    job.Release()


def _SubmittedJobId(proc: subprocess.CompletedProcess) -> int:
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    match = re.fullmatch(r"JobID: (\d+)\n", proc.stderr)
    assert match, proc.stderr
    return int(match.group(1))


def test_delay_list_info_watch_archive(master):
    proc = _Run(master, "gnt-debug", "delay", "0.01")
    assert proc.returncode == 0, proc.stderr
    first_id = 1

    job_id = _SubmittedJobId(_Run(master, "gnt-debug", "delay", "--submit", "0.02"))
    assert job_id > first_id
    assert _Ok(master, "gnt-job", "wait", str(job_id)) == ""

    lines = _Ok(master, "gnt-job", "list").splitlines()
    assert lines[0].split() == ["ID", "Status", "Summary"]
    rows = [line.split() for line in lines[1:]]
    assert [str(first_id), "success", "TEST_DELAY(0.01)"] in rows
    assert [str(job_id), "success", "TEST_DELAY(0.02)"] in rows

    assert _Ok(master, "gnt-job", "list", "--no-headers", "--separator=|",
               "-o", "+priority", str(job_id)).splitlines() == \
        [f"{job_id}|success|TEST_DELAY(0.02)|0"]
    assert _Ok(master, "gnt-job", "list", "--no-headers", "--finished", "-o",
               "id").split() == [str(first_id), str(job_id)]

    info = _Ok(master, "gnt-job", "info", str(job_id)).splitlines()
    assert info[0] == f"- Job ID: {job_id}"
    assert "  Status: success" in info
    assert "    - Opcode: OP_TEST_DELAY" in info
    assert "        duration: 0.02" in info

    watch = _Ok(master, "gnt-job", "watch", str(job_id)).splitlines()
    assert watch[:2] == [f"Output from job {job_id} follows", "-" * len(watch[0])]

    fields = _Ok(master, "gnt-job", "list-fields").split()
    assert {"id", "status", "summary", "received_ts"} <= set(fields)

    assert _Ok(master, "gnt-job", "archive", str(job_id)) == ""
    assert not master.job_file(job_id).exists()
    assert _Ok(master, "gnt-job", "autoarchive", "all") == \
        "Archived 1 jobs, 0 unchecked left\n"
    assert not master.job_file(first_id).exists()


def test_delay_repeat_prints_feedback(master):
    out = _Ok(master, "gnt-debug", "delay", "--repeat", "2", "0.01")
    messages = [line.split(" ", 5)[-1] for line in out.splitlines()]
    assert any("1/2" in msg for msg in messages), out
    assert any("2/2" in msg for msg in messages), out


def test_print_jobid(master):
    proc = _Run(master, "gnt-debug", "delay", "--print-jobid", "0.01")
    assert proc.returncode == 0, proc.stderr
    assert re.fullmatch(r"\d+", proc.stdout.splitlines()[0])


def test_locks_cancel_and_priority(master, blocker):
    locks = _Ok(master, "gnt-debug", "locks").splitlines()
    assert locks[0].split() == ["Name", "Mode", "Owner", "Pending"]
    assert any("exclusive" in line for line in locks[1:]), locks

    waiting_id = _SubmittedJobId(_Run(master, "gnt-debug", "delay", "--submit", "0.01"))
    cl = master.luxi_client()
    assert _WaitForStatus(cl, waiting_id, {constants.JOB_STATUS_WAITING}) == "waiting"

    pending = _Ok(master, "gnt-debug", "locks", "--no-headers", "--separator=|",
                  "-o", "name,pending").splitlines()
    assert any(line.split("|")[1].startswith("exclusive:") for line in pending), pending

    assert _Ok(master, "gnt-job", "list", "--no-headers", "--pending", "-o",
               "id").split() == [str(waiting_id)]
    _Ok(master, "gnt-job", "change-priority", "--priority", "high", str(waiting_id))
    assert _Ok(master, "gnt-job", "list", "--no-headers", "--separator=:", "-o",
               "id,priority", str(waiting_id)) == f"{waiting_id}:{constants.OP_PRIO_HIGH}\n"

    assert _Run(master, "gnt-job", "cancel", str(waiting_id)).returncode == 0
    assert _WaitForStatus(cl, waiting_id, set(constants.JOBS_FINALIZED)) == "canceled"
    again = _Run(master, "gnt-job", "cancel", str(waiting_id))
    assert again.returncode == 1, again.stdout
    watch = _Run(master, "gnt-job", "watch", str(waiting_id))
    assert watch.returncode == 1
    assert f"Job {waiting_id} failed: " in watch.stderr
    cl.Close()


def test_cancel_by_status_with_force(master, blocker):
    ids = [_SubmittedJobId(_Run(master, "gnt-debug", "delay", "--submit", "0.01"))
           for _ in range(2)]
    cl = master.luxi_client()
    for job_id in ids:
        _WaitForStatus(cl, job_id, {constants.JOB_STATUS_WAITING,
                                    constants.JOB_STATUS_QUEUED})
    proc = _Run(master, "gnt-job", "cancel", "--pending", "--force")
    assert proc.returncode == 0, proc.stderr
    for job_id in ids:
        assert _WaitForStatus(cl, job_id, set(constants.JOBS_FINALIZED)) == "canceled"
    cl.Close()


def test_job_error_is_reported(master):
    cl = master.luxi_client()
    try:
        job_id = cl.SubmitJob([opcodes.OpTestDelay(duration=0)])
    except Exception as err:  # the queue may refuse it right away
        pytest.skip(f"the master refuses duration 0 at submission: {err}")
    proc = _Run(master, "gnt-job", "watch", str(job_id))
    assert proc.returncode == 1
    assert "Failure: prerequisites not met for this operation:" in proc.stderr
    assert "greater than zero" in proc.stderr
    cl.Close()


@pytest.mark.parametrize("tool,args,code,message", [
    ("gnt-job", ["info", "99999"], 1, "Job ID 99999 not found"),
    ("gnt-job", ["list", "-o", "id,nosuch"], constants.EXIT_UNKNOWN_FIELD,
     "Warning: Queried for unknown fields nosuch"),
    ("gnt-job", ["list", "abc"], 1, "Invalid id 'abc'"),
    ("gnt-job", ["wait", "99999"], 1, "99999"),
    ("gnt-job", ["archive", "99999"], 1, "Failed to archive job with ID '99999'"),
    ("gnt-job", ["autoarchive", "soon"], 1, "Invalid time specification 'soon'"),
    ("gnt-job", ["change-priority", "--priority", "top", "1"], 2,
     "invalid priority 'top' (choose from low, normal, high)"),
    ("gnt-job", ["frob"], 1, "Error: unknown command 'frob'"),
    ("gnt-debug", ["delay", "0"], 1, "Invalid duration '0': must be greater than zero"),
    ("gnt-debug", ["delay", "--priority", "urgent", "1"], 2, "invalid priority 'urgent'"),
    ("gnt-debug", ["locks", "-o", "name,bogus"], constants.EXIT_UNKNOWN_FIELD,
     "unknown fields bogus"),
])
def test_bad_input(master, tool, args, code, message):
    proc = _Run(master, tool, *args)
    assert proc.returncode == code, (proc.stdout, proc.stderr)
    assert message in proc.stderr


def test_cancel_unknown_job(master):
    proc = _Run(master, "gnt-job", "cancel", "99999")
    assert proc.returncode == 1
    assert "99999" in proc.stdout + proc.stderr


def test_drained_queue(master):
    cl = master.luxi_client()
    cl.SetDrainFlag(True)
    try:
        proc = _Run(master, "gnt-debug", "delay", "0.01")
        assert proc.returncode == 1
        assert proc.stderr == ("Failure: the job queue is marked for drain and doesn't"
                               " accept new requests\n")
    finally:
        cl.SetDrainFlag(False)
        cl.Close()
    _Ok(master, "gnt-debug", "delay", "0.01")


def test_test_jobqueue(master):
    proc = _Run(master, "gnt-debug", "test-jobqueue", timeout=120)
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    assert "Job queue test successful" in proc.stdout


def test_no_master_daemon(master_factory):
    stopped = master_factory()  # configured, never started
    for tool, args in (("gnt-job", ["list"]), ("gnt-debug", ["delay", "1"])):
        proc = _Run(stopped, tool, *args)
        assert proc.returncode == 1
        assert proc.stderr == ("Cannot communicate with the master daemon.\n"
                               "Is it running and listening for connections?\n")
