"""Tests for ganeti.htools.hbal, the program."""

import io
import os
import re
import subprocess
import sys

import pytest

from ganeti import constants
from ganeti.htools import balance, hbal, loader_luxi, loader_text

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
DATA = os.path.join(HERE, "data")
D = ".example.com"
_STEP = re.compile(r"^ +(\d+)\. (\S+) +(\S+) +=> (\S+) +(\d+\.\d{8}) a=(.*)$")


def _data(name):
    return os.path.join(DATA, name)


def _main(*args):
    out, err = io.StringIO(), io.StringIO()
    code = hbal.main(list(args), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def _steps(out):
    return [m.groups() for m in map(_STEP.match, out.splitlines()) if m]


def test_balances_and_prints_the_steps():
    code, out, err = _main("-t", _data("hbal-unbalanced.data"))
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0] == "Loaded 4 nodes, 8 instances"
    initial = float(re.search(r"^Initial score: (\d+\.\d{8})$", out, re.M).group(1))
    assert lines[2] == "Trying to minimize the CV..."
    steps = _steps(out)
    assert len(steps) >= 4
    # positions, the common domain stripped, decreasing scores
    assert [int(s[0]) for s in steps] == list(range(1, len(steps) + 1))
    assert all(not any(D in f for f in s) for s in steps)
    scores = [float(s[4]) for s in steps]
    assert scores == sorted(scores, reverse=True) and scores[0] < initial
    first = steps[0]
    assert first[1] == "inst1" and first[2] == "node1:node2"
    assert lines[-1] == f"Cluster score improved from {initial:.8f} to {scores[-1]:.8f}"
    # the table's columns line up
    step_lines = [line for line in lines if _STEP.match(line)]
    assert len({line.index("=>") for line in step_lines}) == 1
    assert step_lines[0].startswith("    1. inst1 node1:node2 => ")


def test_print_commands():
    code, out, _ = _main("-t", _data("hbal-unbalanced.data"), "-C")
    assert code == 0
    head, cmds = out.split("\nCommands to run to reach the above solution:\n")
    steps = _steps(head)
    lines = cmds.splitlines()
    jobsets = [line for line in lines if line.startswith("  echo jobset")]
    assert jobsets[0] == f"  echo jobset 1, {1} jobs"
    gnt = [line.strip() for line in lines if "gnt-instance" in line]
    # one command per step letter, full names, in step order
    letters = sum(len(s[5].split()) for s in steps)
    assert len(gnt) == letters
    assert all(cmd.startswith(("gnt-instance migrate -f inst", "gnt-instance replace-disks"
                                                                " -n node"))
               for cmd in gnt)
    assert all(cmd.endswith(D) for cmd in gnt)
    assert "check" not in cmds
    assert lines[0] == "" and lines[2] == "    echo job 1/1"


def test_commands_of_each_move_kind():
    cluster = loader_text.load(_data("hbal-offline.data"))
    inst = cluster.instances["web1" + D]

    def cmds(kind, target, old=("a", "b"), new=("c", "d")):
        return hbal.move_commands(inst, balance.Move(inst.name, kind, target, old, new, 0))

    name = inst.name
    assert cmds("f", None) == [f"migrate -f {name}"]
    assert cmds("r", "n3") == [f"replace-disks -n n3 {name}"]
    assert cmds("frf", "n3") == [f"migrate -f {name}", f"replace-disks -n n3 {name}",
                                 f"migrate -f {name}"]
    assert cmds("fr", "n3") == [f"migrate -f {name}", f"replace-disks -n n3 {name}"]
    assert cmds("rf", "n3") == [f"replace-disks -n n3 {name}", f"migrate -f {name}"]
    assert cmds("fa", "n3") == [f"migrate -f -n n3 {name}"]
    inst.admin_state = constants.ADMINST_DOWN
    assert cmds("f", None) == [f"failover -f {name}"]
    assert cmds("fa", "n3") == [f"failover -f -n n3 {name}"]


def test_commands_to_file(tmp_path):
    path = str(tmp_path / "balance.sh")
    code, out, _ = _main("-t", _data("hbal-unbalanced.data"), f"-C{path}")
    assert code == 0 and f"The commands have been written to file '{path}'" in out
    script = open(path, encoding="utf-8").read()
    assert script.startswith("#!/bin/sh\n") and "set -e" in script
    assert "echo jobset 1, 1 jobs" in script and "  check\n" in script
    assert "  gnt-instance migrate -f inst1.example.com\n" in script
    # the script runs with a gnt-instance that only records its arguments
    bindir = tmp_path / "bin"
    bindir.mkdir()
    log = tmp_path / "calls"
    fake = bindir / "gnt-instance"
    fake.write_text(f"#!/bin/sh\necho \"$@\" >> {log}\n")
    fake.chmod(0o755)
    env = dict(os.environ, PATH=f"{bindir}:{os.environ['PATH']}")
    subprocess.run(["sh", path], check=True, env=env, capture_output=True)
    assert log.read_text().splitlines()[0] == "migrate -f inst1.example.com"


def test_balanced_cluster():
    code, out, _ = _main("-t", _data("hbal-balanced.data"), "-C")
    assert code == 0
    assert "No solution found" in out and _steps(out) == []
    assert "echo jobset" not in out


def test_min_score_above_initial():
    code, out, _ = _main("-t", _data("hbal-unbalanced.data"), "-e", "100")
    assert code == 0
    assert "Cluster is already well balanced" in out and "Nothing to do, exiting" in out
    assert "Trying to minimize" not in out


def test_max_length():
    code, out, _ = _main("-t", _data("hbal-unbalanced.data"), "-l", "3")
    assert code == 0 and len(_steps(out)) == 3


def test_save_cluster_and_rerun(tmp_path):
    prefix = str(tmp_path / "state")
    code, out, _ = _main("-t", _data("hbal-unbalanced.data"), "-S", prefix)
    assert code == 0
    before = loader_text.load(prefix + ".original")
    after = loader_text.load(prefix + ".balanced")
    assert {i.pnode for i in before.instances.values()} == {"node1" + D}
    assert len({i.pnode for i in after.instances.values()}) == 4
    # the balanced state needs nothing more
    code, out, _ = _main("-t", prefix + ".balanced")
    assert code == 0 and "No solution found" in out


def test_print_nodes_and_instances():
    code, out, _ = _main("-t", _data("hbal-unbalanced.data"), "-p", "--print-instances")
    assert code == 0
    assert out.index("Initial instance map:") < out.index("Initial cluster status:") \
        < out.index("Trying to minimize") < out.index("Final instance map:") \
        < out.index("Final cluster status:")
    final = out[out.index("Final cluster status:"):]
    assert "node4.example.com" in final and "p_fmem" in final


def test_verbose_and_quiet():
    code, out, _ = _main("-t", _data("hbal-offline.data"), "-vvv")
    assert code == 0
    assert "Selected node group: default" in out
    assert "Group size 4 nodes, 6 instances" in out
    assert "Initial check done: 0 bad nodes, 0 bad instances." in out
    assert "Initial coefficients: free_mem_cv=" in out
    assert "Final coefficients:" in out
    code, out, _ = _main("-t", _data("hbal-offline.data"), "-q")
    assert code == 0
    assert "Loaded" not in out and "Initial score" not in out
    assert _steps(out)


def test_offline_option_and_evac_mode():
    code, out, _ = _main("-t", _data("hbal-unbalanced.data"), "-O", "node3", "--evac-mode")
    assert code == 0 and "No solution found" in out
    code, out, _ = _main("-t", _data("hbal-offline.data"), "--evac-mode", "-C")
    steps = _steps(out)
    assert code == 0 and steps
    assert all("node4" in s[2] for s in steps)


def test_instance_selection():
    code, out, _ = _main("-t", _data("hbal-unbalanced.data"), "--select-instances",
                         "inst3,inst4.example.com")
    assert code == 0 and {s[1] for s in _steps(out)} <= {"inst3", "inst4"}
    code, out, _ = _main("-t", _data("hbal-unbalanced.data"), "--exclude-instances",
                         "inst1,inst2,inst3,inst4,inst5,inst6,inst7")
    assert code == 0 and {s[1] for s in _steps(out)} == {"inst8"}
    code, _, err = _main("-t", _data("hbal-unbalanced.data"), "--select-instances", "nope")
    assert code == 1
    assert err == "Error: Unknown instance(s) given with --select-instances: nope\n"


def test_move_restrictions():
    code, out, _ = _main("-t", _data("hbal-unbalanced.data"), "--no-instance-moves")
    assert code == 0 and {s[5].split(":")[0] for s in _steps(out)} == {"r"}
    code, out, _ = _main("-t", _data("hbal-unbalanced.data"), "--no-disk-moves")
    assert code == 0 and {s[5] for s in _steps(out)} == {"f"}


def test_utilisation_file(tmp_path):
    util = tmp_path / "util"
    util.write_text("# instance cpu mem disk net\n"
                    + "".join(f"inst{i}.example.com {i / 10} 0.1 0.1 0.1\n"
                              for i in range(1, 9)))
    code, out, _ = _main("-t", _data("hbal-unbalanced.data"), "-U", str(util))
    assert code == 0 and _steps(out)
    cluster = loader_text.load(_data("hbal-unbalanced.data"))
    loads = hbal.parse_utilisation(util.read_text(), cluster)
    hbal.apply_utilisation(cluster, loads)
    assert cluster.nodes["node1" + D].util == pytest.approx((3.6, 0.8, 0.8, 0.8))
    assert cluster.nodes["node2" + D].util == pytest.approx((0, 0, 0.8, 0))
    util.write_text("ghost.example.com 1 1 1 1\n")
    code, _, err = _main("-t", _data("hbal-unbalanced.data"), "-U", str(util))
    assert code == 1 and "line 1: unknown instance 'ghost.example.com'" in err
    util.write_text("inst1.example.com 1 1 x 1\n")
    code, _, err = _main("-t", _data("hbal-unbalanced.data"), "-U", str(util))
    assert code == 1 and "the loads must be numbers" in err
    code, _, err = _main("-t", _data("hbal-unbalanced.data"), "-U", str(tmp_path / "none"))
    assert code == 1 and "Cannot read the utilisation file" in err


def test_default_utilisation_and_ignore_dynu():
    cluster = loader_text.load(_data("hbal-unbalanced.data"))
    hbal.apply_utilisation(cluster, {})
    assert cluster.nodes["node1" + D].util == (8.0, 8.0, 8.0, 8.0)
    assert cluster.nodes["node2" + D].util == (0.0, 0.0, 8.0, 0.0)
    code, out, _ = _main("-t", _data("hbal-unbalanced.data"), "--ignore-dynu")
    assert code == 0 and _steps(out)


def test_max_cpu_and_min_disk():
    # 2 vCPUs per instance on 16 CPUs: a ratio of 0.1 leaves room for none
    code, out, _ = _main("-t", _data("hbal-unbalanced.data"), "--max-cpu", "0.1")
    assert code == 0 and {s[5].split(":")[0] for s in _steps(out)} == {"r"}
    code, out, _ = _main("-t", _data("hbal-unbalanced.data"), "--min-disk", "0.99")
    assert code == 0 and {s[5] for s in _steps(out)} <= {"f"}


def test_multiple_groups_need_a_choice():
    code, out, err = _main("-t", _data("two-groups.data"))
    assert code == 1
    assert err == ("Error: Found multiple node groups: default, storage; choose one"
                   " with -G. Aborting.\n")
    code, out, err = _main("-t", _data("two-groups.data"), "-G", "default")
    assert code == 0 and err == ""
    assert "Loaded 7 nodes, 11 instances" in out
    code, _, err = _main("-t", _data("two-groups.data"), "-G", "nosuch")
    assert code == 1 and "Unknown node group 'nosuch'" in err


def test_empty_cluster():
    code, out, _ = _main("--simulate", "p,4,100G,16g,4")
    assert code == 0 and out == "Loaded 4 nodes, 0 instances\nCluster is empty, exiting.\n"


def test_bad_input():
    code, _, err = _main("-t", "/nonexistent/file.data")
    assert code == 1 and err.startswith("Error: Cannot read -t file")
    code, _, err = _main("-t", _data("hbal-unbalanced.data"), "-X")
    assert code == 1 and "only with the luxi backend" in err
    with pytest.raises(SystemExit) as exc:
        _main("-t", _data("hbal-unbalanced.data"), "-g", "-1")
    assert exc.value.code == 2


def test_common_suffix():
    assert hbal.common_suffix(["a.example.com", "b.example.com"]) == ".example.com"
    assert hbal.common_suffix(["a.x.example.com", "b.y.example.com"]) == ".example.com"
    assert hbal.common_suffix(["a.example.com", "b.example.org"]) == ""
    assert hbal.common_suffix(["a", "b"]) == ""
    assert hbal.common_suffix([]) == ""


# -- execution -----------------------------------------------------------------------

class FakeLuxi:
    """Runs jobs at once; the instances in ``failing`` have their job fail."""

    def __init__(self, failing=()):
        self.failing = set(failing)
        self.jobs = {}
        self.jobsets = []

    def SubmitManyJobs(self, jobs):  # noqa: N802
        ids = []
        for job in jobs:
            job_id = len(self.jobs) + 1
            self.jobs[job_id] = job
            ids.append(job_id)
        self.jobsets.append(ids)
        return [(True, i) for i in ids]

    def _failed(self, job_id):
        return self.jobs[job_id][0]["instance_name"] in self.failing

    def WaitForJobChangeOnce(self, job_id, fields, prev_info, prev_serial,  # noqa: N802
                             timeout=None):
        status = constants.JOB_STATUS_ERROR if self._failed(job_id) \
            else constants.JOB_STATUS_SUCCESS
        return [status], []

    def QueryJobs(self, ids, fields):  # noqa: N802
        [job_id] = ids
        ops = self.jobs[job_id]
        if self._failed(job_id):
            return [[constants.JOB_STATUS_ERROR,
                     [constants.OP_STATUS_ERROR] * len(ops),
                     ["Instance is broken"] * len(ops)]]
        return [[constants.JOB_STATUS_SUCCESS, [constants.OP_STATUS_SUCCESS] * len(ops),
                 [None] * len(ops)]]


@pytest.fixture
def luxi(monkeypatch):
    """-L reads hbal-unbalanced.data; jobs go to a FakeLuxi."""
    fake = FakeLuxi()
    monkeypatch.setattr(loader_luxi, "load",
                        lambda socket=None: loader_text.load(_data("hbal-unbalanced.data")))
    from ganeti.luxi import client
    monkeypatch.setattr(client, "Client", lambda address=None: fake)
    return fake


def test_exec_runs_jobsets_in_order(luxi):
    code, out, err = _main("-L", "-X", "-C")
    assert code == 0, err
    steps = _steps(out)
    assert len(luxi.jobs) == len(steps)
    # each job makes one move: one opcode per step letter, annotated
    for (_, name, _, _, _, action), job in zip(steps, luxi.jobs.values()):
        assert {op["instance_name"] for op in job} == {name + D}
        assert len(job) == len(action.split())
        assert all(op["comment"] == hbal.OPCODE_COMMENT for op in job)
        assert job[0]["reason"][0][0] == "gnt:client:hbal"
    assert out.count("Executing jobset for instances") == len(luxi.jobsets)
    assert "Got job IDs 1\n" in out


def test_exec_stops_at_a_failed_job(luxi):
    luxi.failing = {"inst2" + D}
    code, out, err = _main("-L", "-X")
    assert code == 1
    assert "Not all jobs completed successfully:" in err
    assert "inst2.example.com (job 2): Instance is broken" in err
    assert err.endswith("Aborting.\nError: Execution of commands failed\n")
    # the jobsets after the failed one were not submitted
    assert len(luxi.jobsets) == 2


def test_exec_with_nothing_to_do(monkeypatch, luxi):
    monkeypatch.setattr(loader_luxi, "load",
                        lambda socket=None: loader_text.load(_data("hbal-balanced.data")))
    code, out, _ = _main("-L", "-X")
    assert code == 0 and "Empty job list, nothing to execute" in out
    assert luxi.jobs == {}


def test_executor_stops_after_sigint():
    cluster = loader_text.load(_data("hbal-unbalanced.data"))
    moves = balance.balance(cluster, next(iter(cluster.groups)))
    jobsets = balance.split_jobsets(moves)
    fake = FakeLuxi()
    out, err = io.StringIO(), io.StringIO()
    executor = hbal.Executor(None, cluster, out, err, client=fake)
    original = executor.run_jobset

    def first_then_interrupt(jobset):
        ok = original(jobset)
        executor._on_sigint(2, None)
        return ok

    executor.run_jobset = first_then_interrupt
    assert executor.run(jobsets)
    assert len(fake.jobsets) == 1
    assert f"Exiting early due to user request, {len(jobsets) - 1} jobset(s)" in out.getvalue()
    assert "Cancel request registered" in err.getvalue()
    with pytest.raises(SystemExit) as exc:
        executor._on_sigint(2, None)
    assert exc.value.code == 2


def test_launcher():
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "build", "pylib"))
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "hbal"),
                           "-t", _data("hbal-unbalanced.data"), "-C"],
                          capture_output=True, text=True, env=env, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "gnt-instance migrate -f inst1.example.com" in proc.stdout
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "hbal"), "-V"],
                          capture_output=True, text=True, env=env, check=False)
    assert proc.returncode == 0 and proc.stdout.startswith("hbal (ganeti) version")
