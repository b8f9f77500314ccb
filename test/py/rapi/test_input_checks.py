"""RAPI refuses names and strings that would break operations (issue 15).

The checks are the opcodes' declarations (``ganeti.ht``), so a refused
value is a 400 naming the parameter, what was expected and the value, cut
to 50 characters; no job is submitted. Requests go through
``RapiServer.HandleRequest`` with a fake master (see test_resources.py).
"""

from __future__ import annotations

import base64
import json
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from fakeluxi import FakePool  # noqa: E402
from ganeti.rapi import auth, server  # noqa: E402

ADMIN = "Basic " + base64.b64encode(b"admin:pw").decode()
LONG = 10000


@pytest.fixture
def rapi(tmp_path):
    users = tmp_path / "users"
    users.write_text("admin pw write\n")
    pool = FakePool()
    srv = server.RapiServer("127.0.0.1", 0, None, auth.UsersFile(str(users)),
                            pool=pool)  # type: ignore[arg-type]

    def _Call(method, target, body=None, ctype="application/json", raw=None):
        headers = {"authorization": ADMIN, "content-type": ctype}
        data = raw if raw is not None else \
            (b"" if body is None else json.dumps(body).encode())
        code, _, payload, _ = srv.HandleRequest(method, target, headers, data)
        return code, json.loads(payload)

    _Call.luxi = pool.client
    return _Call


def _AssertRefused(rapi, answer, *needles):
    code, err = answer
    assert code == 400, err
    for needle in needles:
        assert needle in err["explain"], err["explain"]
    assert len(err["explain"]) < 1000
    assert rapi.luxi.jobs == []


# --- the reproductions of the issue ---------------------------------------------------

def test_long_master_netdev_is_refused(rapi):
    answer = rapi("PUT", "/2/modify", {"master_netdev": "x" * LONG})
    _AssertRefused(rapi, answer, "'OP_CLUSTER_SET_PARAMS.master_netdev'",
                   "network interface name", "at most 15", "'" + "x" * 50 + "'...")
    assert "x" * 51 not in answer[1]["explain"]


def test_long_group_name_is_refused(rapi):
    answer = rapi("POST", "/2/groups", {"name": "g" * LONG})
    _AssertRefused(rapi, answer, "'OP_GROUP_ADD.group_name'", "at most 255",
                   "'" + "g" * 50 + "'...")


def test_path_as_group_name_is_refused_in_a_dry_run(rapi):
    answer = rapi("POST", "/2/groups?dry-run=1", {"name": "../../../etc/passwd"})
    _AssertRefused(rapi, answer, "'OP_GROUP_ADD.group_name'", "no '/'",
                   "'../../../etc/passwd'")


def test_empty_modify_as_text_plain_is_an_empty_job(rapi):
    # No body is no body, whatever its type (as Ganeti): the job changes
    # nothing (the LU writes nothing, see test/py/cmdlib/test_cluster.py)
    code, job_id = rapi("PUT", "/2/modify", ctype="text/plain", raw=b"")
    assert code == 200 and job_id == 1
    [op] = rapi.luxi.jobs[0]
    assert op["OP_ID"] == "OP_CLUSTER_SET_PARAMS"
    assert set(op) == {"OP_ID", "reason"}
    # A body that is not JSON is refused as rapi.rst says
    code, err = rapi("PUT", "/2/modify", ctype="text/plain", raw=b"master_netdev=lo")
    assert code == 415 and "JSON" in err["explain"]
    assert len(rapi.luxi.jobs) == 1


# --- more names, through other resources ----------------------------------------------

@pytest.mark.parametrize("method,target,body,needles", [
    ("PUT", "/2/modify", {"file_storage_dir": "/srv/../etc"},
     ["file_storage_dir", "normalised absolute path"]),
    ("PUT", "/2/modify", {"file_storage_dir": "/"}, ["system directory"]),
    ("PUT", "/2/modify", {"nicparams": {"link": "a b"}}, ["nicparams", "'a b'"]),
    ("PUT", "/2/modify", {"vg_name": "x" * LONG}, ["vg_name", "LVM name"]),
    ("PUT", "/2/modify", {"compression_tools": ["gzip|sh"]}, ["program name"]),
    ("POST", "/2/networks", {"network_name": ".hidden", "network": "10.0.0.0/24"},
     ["network_name", "starting with '.'"]),
    ("PUT", "/2/groups/default/rename", {"new_name": "a/b"}, ["new_name"]),
    ("PUT", "/2/instances/inst1/rename", {"new_name": "inst 2"},
     ["new_name", "host name"]),
    ("POST", "/2/nodes/node1/modify", {"secondary_ip": "not-an-ip"},
     ["secondary_ip"]),
    ("PUT", "/2/instances/inst1/modify",
     {"nics": [["add", -1, {"link": "l" * LONG}]]}, ["nics", "'" + "l" * 50 + "'..."]),
    ("PUT", "/2/instances/inst1/modify", {"file_storage_dir": "../../etc"},
     ["file_storage_dir", "without '..'"]),
])
def test_other_bad_names(rapi, method, target, body, needles):
    _AssertRefused(rapi, rapi(method, target, body), *needles)


def test_names_in_the_path_are_checked(rapi):
    answer = rapi("PUT", "/2/groups/" + "g" * 300 + "/modify",
                  {"alloc_policy": "preferred"})
    _AssertRefused(rapi, answer, "group_name")


def test_good_values_pass(rapi):
    for method, target, body in [
            ("PUT", "/2/modify", {"master_netdev": "br-ganeti.100",
                                  "file_storage_dir": "/srv/ganeti/file-storage"}),
            ("POST", "/2/groups", {"name": "rack-1_b"}),
            ("POST", "/2/groups?dry-run=1", {"name": "passwd"}),
            ("PUT", "/2/instances/inst1/rename", {"new_name": "inst2.example.com"})]:
        code, answer = rapi(method, target, body)
        assert code == 200, answer
    assert len(rapi.luxi.jobs) == 4
