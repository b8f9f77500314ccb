"""Tests for ganeti.htools.hail, the program."""

import io
import json
import os
import subprocess
import sys

import htoolshelpers as h
from ganeti.htools import hail, loader_text

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
DATA = os.path.join(HERE, "data")


def _main(args, stdin=""):
    out, err = io.StringIO(), io.StringIO()
    code = hail.main(args, stdin=io.StringIO(stdin), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def test_allocation_fixture():
    code, out, err = _main([os.path.join(DATA, "alloc-drbd.json")])
    assert code == 0 and err == ""
    answer = json.loads(out)
    assert answer["success"] and len(answer["result"]) == 2


def test_node_evacuation_fixture():
    code, out, _ = _main([os.path.join(DATA, "node-evac.json")])
    moved, failed, jobs = json.loads(out)["result"]
    assert code == 0 and len(moved) + len(failed) == 4 and len(jobs) == len(moved)


def test_stdin_and_failure_answer():
    msg = h.message({"n1": h.node(memory=2048)}, {},
                    h.alloc_request("x", memory=4096, template="plain"))
    code, out, _ = _main(["-"], json.dumps(msg))
    assert code == 0
    assert json.loads(out) == {"success": False, "result": [], "info":
                               "No valid allocation solutions, failure reasons: FailMem: 1"}


def test_malformed_input_exits_1():
    msg = h.message({"n1": h.node()}, {}, h.alloc_request("x"))
    msg["nodes"]["n1"]["total_memory"] = "many"
    code, out, err = _main(["-"], json.dumps(msg))
    assert code == 1 and out == ""
    assert "node 'n1': 'total_memory' must be a non-negative number" in err
    code, _, err = _main(["/nonexistent/input.json"])
    assert code == 1 and "cannot read" in err


def test_print_nodes_and_save(tmp_path):
    save = str(tmp_path / "state")
    code, out, err = _main(["-p", "-S", save, "-vv",
                            os.path.join(DATA, "alloc-drbd.json")])
    assert code == 0
    assert "Initial cluster status:" in err and "Final cluster status:" in err
    assert "Received request: allocate" in err
    before = loader_text.load(save + ".pre-ialloc")
    after = loader_text.load(save + ".post-ialloc")
    new = json.loads(out)["result"]
    assert len(after.instances) == len(before.instances) + 1
    assert after.instances["web5.example.com"].nodes == new


def test_unwritable_save_file():
    code, _, err = _main(["-S", "/nonexistent/dir/state",
                          os.path.join(DATA, "alloc-drbd.json")])
    assert code == 1 and "cannot save the cluster state" in err


def test_text_data_override():
    msg = h.message({"n1": h.node()}, {}, h.alloc_request("x", template="plain",
                                                          memory=256))
    code, out, _ = _main(["-t", os.path.join(DATA, "two-groups.data"), "-"],
                         json.dumps(msg))
    answer = json.loads(out)
    assert code == 0 and answer["success"]
    assert answer["result"][0].endswith(".example.com")


def test_simulate():
    msg = h.message({"n1": h.node()}, {}, h.alloc_request("x"))
    code, out, _ = _main(["--simulate", "p,4,100G,16g,4,2", "-"], json.dumps(msg))
    assert json.loads(out)["result"] == ["node-01-001", "node-01-002"]


def test_launcher():
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "build", "pylib"))
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "iallocators", "hail"),
                           os.path.join(DATA, "alloc-drbd.json")],
                          capture_output=True, text=True, env=env, check=False)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["success"]
