"""/2/instances-multi-alloc: the body Ganeti's RAPI takes ({"instances":
[...], "iallocator": ..., "opportunistic_locking": ...}) becomes one
OpInstanceMultiAlloc job holding one OpInstanceCreate per instance.

Requests go through ``RapiServer.HandleRequest`` with the fake luxi client
of fakeluxi.py (which loads and validates each job as the master does).
"""

from __future__ import annotations

import base64
import json
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from fakeluxi import FakePool  # noqa: E402
from ganeti import constants, opcodes  # noqa: E402
from ganeti.rapi import auth, server  # noqa: E402

ADMIN = "Basic " + base64.b64encode(b"admin:pw").decode()
PATH = "/2/instances-multi-alloc"


@pytest.fixture
def rapi(tmp_path):
    users = tmp_path / "users"
    users.write_text("admin pw write\n")
    pool = FakePool()
    srv = server.RapiServer("127.0.0.1", 0, None, auth.UsersFile(str(users)),
                            pool=pool)  # type: ignore[arg-type]

    def _Post(body, query=""):
        hdrs = {"content-type": "application/json", "authorization": ADMIN}
        code, _, payload, _ = srv.HandleRequest("POST", PATH + query, hdrs,
                                                json.dumps(body).encode())
        return code, json.loads(payload)

    _Post.luxi = pool.client
    return _Post


def _Inst(name, **kwargs):
    inst = {"mode": "create", "name": name, "disk_template": "plain",
            "disks": [{"size": 1024}], "nics": [{}], "os": "debootstrap+default",
            "beparams": {"maxmem": 512}}
    inst.update(kwargs)
    return inst


def test_body_becomes_one_job_of_creations(rapi):
    body = {"instances": [_Inst("a.example.com"), _Inst("b.example.com", pnode=None)],
            "iallocator": "hail", "opportunistic_locking": True}
    code, job = rapi(body, "?dry-run=1&reason=bulk")
    assert code == 200, job
    ((data,),) = rapi.luxi.jobs
    assert data["OP_ID"] == "OP_INSTANCE_MULTI_ALLOC"
    assert data["iallocator"] == "hail" and data["opportunistic_locking"] is True
    assert data["dry_run"] is True
    assert data["reason"][-1][:2] == [constants.OPCODE_REASON_SRC_RLIB2, "bulk"]
    # Ganeti's old names are renamed in each instance, as for /2/instances
    first, second = data["instances"]
    assert first["OP_ID"] == "OP_INSTANCE_CREATE"
    assert first["instance_name"] == "a.example.com"
    assert first["os_type"] == "debootstrap+default"
    assert "name" not in first and "os" not in first
    assert second["instance_name"] == "b.example.com"
    # and the job loads back into the opcodes the LU runs
    op = opcodes.OpCode.LoadOpCode(data)
    assert isinstance(op, opcodes.OpInstanceMultiAlloc)
    assert [type(inst) for inst in op.instances] == [opcodes.OpInstanceCreate] * 2
    assert op.instances[0].beparams == {"maxmem": 512}


def test_nodes_given_per_instance(rapi):
    code, _ = rapi({"instances": [_Inst("a.example.com", pnode="node1"),
                                  _Inst("b.example.com", disk_template="drbd",
                                        pnode="node1", snode="node2")]})
    assert code == 200
    instances = rapi.luxi.jobs[-1][-1]["instances"]
    assert [(i["pnode"], i.get("snode")) for i in instances] == [("node1", None),
                                                               ("node1", "node2")]
    assert rapi.luxi.jobs[-1][-1].get("iallocator") is None


@pytest.mark.parametrize("body,match", [
    ({}, "'instances' must be a list"),
    ({"instances": "a.example.com"}, "'instances' must be a list"),
    ({"instances": ["a.example.com"]}, "Instance 0 of 'instances' is not a dictionary"),
    ({"instances": [_Inst("a.example.com", bogus=1)]}, "'bogus'"),
    ({"instances": [_Inst("a.example.com", instance_name="y")]},
     "renamed to 'instance_name'"),
    ({"instances": [_Inst("a.example.com")], "iallocatr": "hail"}, "'iallocatr'"),
    ({"instances": [_Inst("a.example.com", disks="big")]}, "disks"),
])
def test_bad_bodies_are_400s(rapi, body, match):
    code, err = rapi(body)
    assert code == 400
    assert match in err["explain"], err
    assert rapi.luxi.jobs == []
