"""The RAPI resource table, opcode building and error answers.

Requests go through ``RapiServer.HandleRequest`` (everything but the
socket) with a fake luxi client standing in for the master daemon.
"""

from __future__ import annotations

import base64
import json
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from fakeluxi import FakePool  # noqa: E402
from ganeti import constants, errors, http, luxi, opcodes  # noqa: E402
from ganeti.rapi import auth, baserlib, resources, server  # noqa: E402
from ganeti.rapi import rlib2_cluster, rlib2_instances, rlib2_nodes  # noqa: E402

ADMIN = "Basic " + base64.b64encode(b"admin:pw").decode()
READER = "Basic " + base64.b64encode(b"reader:pw").decode()


@pytest.fixture
def rapi(tmp_path):
    users = tmp_path / "users"
    users.write_text("admin pw write\nreader pw read\n")
    pool = FakePool()
    srv = server.RapiServer("127.0.0.1", 0, None, auth.UsersFile(str(users)),
                            pool=pool)  # type: ignore[arg-type]

    def _Call(method, target, body=None, user=ADMIN, headers=None, raw=None):
        hdrs = {"content-type": "application/json"}
        if user:
            hdrs["authorization"] = user
        hdrs.update(headers or {})
        data = raw if raw is not None else \
            (b"" if body is None else json.dumps(body).encode())
        code, extra, payload, _ = srv.HandleRequest(method, target, hdrs, data)
        return code, extra, json.loads(payload)

    _Call.luxi = pool.client
    _Call.pool = pool
    return _Call


def _LastOp(rapi):
    return rapi.luxi.jobs[-1][-1]


# --- the table ----------------------------------------------------------------------

def test_every_issue_resource_is_in_the_table():
    patterns = {p for p, _ in resources.RESOURCES}
    for path in ["/", "/version", "/2/info", "/2/features", "/2/modify",
                 "/2/redistribute-config", "/2/nodes", "/2/nodes/[node_name]/role",
                 "/2/nodes/[node_name]/storage/repair", "/2/instances-multi-alloc",
                 "/2/instances/[instance_name]/disk/[disk_index]/grow",
                 "/2/instances/[instance_name]/console", "/2/groups/[group_name]/tags",
                 "/2/networks/[network_name]/connect", "/2/os", "/2/jobs/[job_id]/wait",
                 "/2/tags", "/2/query/[resource]", "/2/query/[resource]/fields"]:
        assert path in patterns


@pytest.mark.parametrize("path,handler,items", [
    ("/", rlib2_cluster.R_root, ()),
    ("/2/instances", rlib2_instances.R_2_instances, ()),
    ("/2/instances/web%2Dx.example.com/tags", rlib2_instances.R_2_instances_name_tags,
     ("web-x.example.com",)),
    ("/2/instances/i1/disk/0/grow", rlib2_instances.R_2_instances_name_disk_grow,
     ("i1", "0")),
    ("/2/nodes/n1/storage/modify", rlib2_nodes.R_2_nodes_name_storage_modify, ("n1",)),
])
def test_lookup(path, handler, items):
    match = resources.Lookup(path)
    assert match.handler is handler and match.items == items


@pytest.mark.parametrize("path,exc", [
    ("/2/nothing", http.HttpNotFound), ("/2/instances/a/b/c/d/e", http.HttpNotFound),
    ("/2//instances", http.HttpNotFound), ("/3/info", http.HttpNotFound),
    ("/2/instances/..", http.HttpBadRequest), ("/2/instances/%2e%2E/info", http.HttpBadRequest),
    ("/2/instances/a%2Fb", http.HttpBadRequest), ("/2/nodes/a%00b", http.HttpBadRequest),
    ("/2/instances/../info", http.HttpBadRequest), ("2/info", http.HttpBadRequest),
    ("/2/instances/%ff", http.HttpBadRequest),
])
def test_lookup_refuses(path, exc):
    with pytest.raises(exc):
        resources.Lookup(path)


def test_allowed_methods_and_access():
    assert rlib2_cluster.R_2_info.AllowedMethods() == ["GET"]
    assert rlib2_instances.R_2_instances.AllowedMethods() == ["GET", "POST"]
    assert rlib2_nodes.R_2_nodes_name_role.AllowedMethods() == ["GET", "PUT"]
    assert rlib2_cluster.R_2_tags.AllowedMethods() == ["GET", "PUT", "DELETE"]
    assert rlib2_nodes.R_2_nodes_name_storage.GetAccess("GET") == ["write"]
    assert rlib2_instances.R_2_instances_name_console.GetAccess("GET") == ["write"]
    assert rlib2_cluster.R_2_query.GetAccess("PUT") == ["write", "read"]
    assert rlib2_cluster.R_2_info.GetAccess("GET") == []
    assert rlib2_instances.R_2_instances_name_export.GetAccess("DELETE") == ["write"]


# --- simple answers --------------------------------------------------------------------

def test_fixed_answers(rapi):
    assert rapi("GET", "/version", user=None)[2] == 2
    assert rapi("GET", "/", user=None)[2] is None
    assert rapi("GET", "/2/features", user=None)[2] == [
        "instance-create-reqv1", "instance-reinstall-reqv1", "node-migrate-reqv1",
        "node-evac-res1"]
    assert rapi("GET", "/2/info", user=None)[2]["name"] == "cluster"
    assert rapi("GET", "/2/tags", user=None)[2] == ["ct"]


def test_node_lists(rapi):
    assert rapi("GET", "/2/nodes", user=None)[2] == [
        {"id": "node1", "uri": "/2/nodes/node1"}, {"id": "node2", "uri": "/2/nodes/node2"}]
    bulk = rapi("GET", "/2/nodes?bulk=1", user=None)[2]
    assert set(bulk[0]) == set(rlib2_nodes.N_FIELDS)
    assert bulk[0]["name"] == "node1" and bulk[0]["mfree"] is None
    assert rapi("GET", "/2/nodes/node2/role", user=None)[2] == "master-candidate"
    assert rapi("GET", "/2/nodes/node1/tags", user=None)[2] == ["a"]
    code, _, body = rapi("GET", "/2/nodes/node9", user=None)
    assert code == 404 and "node9" in body["explain"]


def test_instances_not_queryable_yet_is_a_400(rapi):
    code, _, body = rapi("GET", "/2/instances?bulk=1", user=None)
    assert code == 400 and "not queryable" in body["explain"]


# --- writes -------------------------------------------------------------------------

def test_write_returns_job_id_and_builds_opcode(rapi):
    code, _, job = rapi("PUT", "/2/instances/i1/startup?force=1&dry-run=1&reason=why")
    assert code == 200 and job == 1
    op = _LastOp(rapi)
    assert op["OP_ID"] == "OP_INSTANCE_STARTUP"
    assert op["instance_name"] == "i1" and op["force"] is True and op["dry_run"] is True
    assert op["reason"][-1][:2] == [constants.OPCODE_REASON_SRC_RLIB2, "why"]


def test_create_instance_v1(rapi):
    body = {"__version__": 1, "mode": "create", "name": "i1", "disk_template": "diskless",
            "disks": [], "nics": [], "os": "debootstrap", "pnode": "node1",
            "beparams": {"memory": 128}}
    code, _, job = rapi("POST", "/2/instances", body)
    assert code == 200, job
    op = _LastOp(rapi)
    assert op["instance_name"] == "i1" and op["os_type"] == "debootstrap"
    assert op["beparams"] == {"memory": 128}
    code, _, err = rapi("POST", "/2/instances", dict(body, __version__=0))
    assert code == 400 and "version 0" in err["explain"]
    code, _, err = rapi("POST", "/2/instances", {k: v for k, v in body.items()
                                                  if k != "__version__"})
    assert code == 400


def test_unknown_body_fields_are_named(rapi):
    code, _, err = rapi("PUT", "/2/instances/i1/modify", {"memroy": 1, "zzz": 2})
    assert code == 400
    assert err["code"] == 400 and err["message"] == "Bad Request"
    assert "'memroy'" in err["explain"] and "'zzz'" in err["explain"]
    assert rapi.luxi.jobs == []


def test_wrong_types_name_the_parameter(rapi):
    code, _, err = rapi("POST", "/2/nodes/node1/modify", {"offline": "yes"})
    assert code == 400 and "offline" in err["explain"] and "'yes'" in err["explain"]
    code, _, err = rapi("POST", "/2/groups", {"group_name": 7})
    assert code == 400 and "group_name" in err["explain"]
    code, _, err = rapi("POST", "/2/groups", ["not", "a", "dict"])
    assert code == 400 and "Body contents" in err["explain"]


def test_static_parameters_cannot_be_overridden(rapi):
    code, _, err = rapi("PUT", "/2/instances/i1/rename",
                        {"instance_name": "other", "new_name": "x"})
    assert code == 400 and "instance_name" in err["explain"]


def test_renamed_parameters(rapi):
    assert rapi("POST", "/2/groups", {"name": "g1"})[0] == 200
    assert _LastOp(rapi)["group_name"] == "g1"
    code, _, err = rapi("POST", "/2/groups", {"name": "g1", "group_name": "g2"})
    assert code == 400
    assert rapi("PUT", "/2/instances/i1/export",
                {"destination": "node2", "mode": "local"})[0] == 200
    assert _LastOp(rapi)["target_node"] == "node2"


def test_node_role(rapi):
    assert rapi("PUT", "/2/nodes/node2/role?force=1", "offline")[0] == 200
    op = _LastOp(rapi)
    assert (op["offline"], op["master_candidate"], op["force"]) == (True, None, True)
    assert rapi("PUT", "/2/nodes/node2/role", "regular")[0] == 200
    assert (_LastOp(rapi)["drained"], _LastOp(rapi)["offline"]) == (False, False)
    code, _, err = rapi("PUT", "/2/nodes/node2/role", "master")
    assert code == 400 and "'master'" in err["explain"]
    assert rapi("PUT", "/2/nodes/node2/role", {"role": "x"})[0] == 400


def test_tags_from_query_or_body(rapi):
    assert rapi("PUT", "/2/tags?tag=a&tag=b&dry-run=1")[0] == 200
    op = _LastOp(rapi)
    assert (op["kind"], op["name"], op["tags"], op["dry_run"]) == \
        ("cluster", None, ["a", "b"], True)
    assert rapi("PUT", "/2/nodes/node1/tags", ["x"])[0] == 200
    assert _LastOp(rapi)["tags"] == ["x"] and _LastOp(rapi)["name"] == "node1"
    assert rapi("DELETE", "/2/groups/g/tags?tag=x")[2] == 3
    assert _LastOp(rapi)["OP_ID"] == "OP_TAGS_DEL"
    assert rapi("PUT", "/2/nodes/node1/tags", [1])[0] == 400


def test_reinstall_is_three_opcodes(rapi):
    assert rapi("POST", "/2/instances/i1/reinstall", {"os": "debian"})[0] == 200
    assert [op["OP_ID"] for op in rapi.luxi.jobs[-1]] == [
        "OP_INSTANCE_SHUTDOWN", "OP_INSTANCE_REINSTALL", "OP_INSTANCE_STARTUP"]
    assert rapi("POST", "/2/instances/i1/reinstall?os=x&nostartup=1")[0] == 200
    assert len(rapi.luxi.jobs[-1]) == 2
    code, _, err = rapi("POST", "/2/instances/i1/reinstall", {"start": "no"})
    assert code == 400 and "start" in err["explain"]
    assert rapi("POST", "/2/instances/i1/reinstall", {"bogus": 1})[0] == 400


def test_replace_disks_and_grow(rapi):
    assert rapi("POST", "/2/instances/i1/replace-disks",
                {"mode": "replace_on_primary", "disks": "0,1"})[0] == 200
    assert _LastOp(rapi)["disks"] == [0, 1]
    assert rapi("POST", "/2/instances/i1/replace-disks",
                {"mode": "replace_auto", "disks": "x"})[0] == 400
    assert rapi("POST", "/2/instances/i1/disk/1/grow", {"amount": 1024})[0] == 200
    assert _LastOp(rapi)["disk"] == 1
    assert rapi("POST", "/2/instances/i1/disk/x/grow", {"amount": 1})[0] == 400


@pytest.mark.parametrize("segment", ["%C2%B2", "%D9%A3", "9" * 5000, "-1", "%20"])
def test_numbers_in_the_path_that_int_refuses_are_400s(rapi, segment):
    """Found by test/integration/test_fuzz.py: '\u00b2'.isdigit() holds
    but int() refuses it, as it refuses more than 4300 digits."""
    for method, target in (("POST", f"/2/instances/i1/disk/{segment}/grow"),
                           ("GET", f"/2/jobs/{segment}"), ("DELETE", f"/2/jobs/{segment}"),
                           ("GET", f"/2/jobs/{segment}/wait")):
        code, _, err = rapi(method, target, {"amount": 1} if method == "POST" else None)
        assert code == 400 and "non-negative integer" in err["explain"], (target, err)
        assert len(err["explain"]) < 200
    assert rapi.luxi.jobs == []


def test_multi_alloc(rapi):
    inst = {"mode": "create", "instance_name": "i1", "disk_template": "diskless",
            "disks": [], "nics": []}
    assert rapi("POST", "/2/instances-multi-alloc", {"instances": [inst]})[0] == 200
    assert _LastOp(rapi)["instances"][0]["OP_ID"] == "OP_INSTANCE_CREATE"
    code, _, err = rapi("POST", "/2/instances-multi-alloc",
                        {"instances": [dict(inst, bogus=1)]})
    assert code == 400 and "'bogus'" in err["explain"]


@pytest.mark.parametrize("target", ["/2/instances/i1/startup?force=maybe",
                                    "/2/nodes?bulk=", "/2/instances?bulk=yes"])
def test_bad_query_arguments(rapi, target):
    method = "GET" if "bulk" in target else "PUT"
    code, _, err = rapi(method, target)
    assert code == 400 and "parameter" in err["explain"]


# --- jobs and queries ----------------------------------------------------------------

def test_jobs(rapi):
    rapi("PUT", "/2/redistribute-config")
    assert rapi("GET", "/2/jobs", user=None)[2] == [{"id": 1, "uri": "/2/jobs/1"}]
    job = rapi("GET", "/2/jobs/1", user=None)[2]
    assert set(job) == {"id", "ops", "status", "summary", "opstatus", "received_ts",
                        "start_ts", "end_ts", "oplog", "opresult"}
    assert rapi("GET", "/2/jobs/9", user=None)[0] == 404
    assert rapi("GET", "/2/jobs/x1", user=None)[0] == 400
    assert rapi("DELETE", "/2/jobs/1")[2] == [True, "Job 1 canceled"]
    wait = {"fields": ["status"], "previous_job_info": None, "previous_log_serial": None}
    assert rapi("GET", "/2/jobs/1/wait", wait)[2] == {"job_info": ["success"],
                                                      "log_entries": []}
    assert rapi("GET", "/2/jobs/1/wait", dict(wait, previous_job_info=["success"]))[2] \
        is None
    assert rapi("GET", "/2/jobs/9/wait", wait)[0] == 404
    assert rapi("GET", "/2/jobs/1/wait", dict(wait, fields="status"))[0] == 400
    assert rapi("GET", "/2/jobs/1/wait", dict(wait, previous_log_serial="1"))[0] == 400
    assert rapi("GET", "/2/jobs/1/wait", dict(wait, extra=1))[0] == 400
    # Waiting needs write access
    assert rapi("GET", "/2/jobs/1/wait", wait, user=READER)[0] == 403


def test_query(rapi):
    code, _, result = rapi("GET", "/2/query/node?fields=name,role", user=READER)
    assert code == 200 and result["data"][0] == [[0, "node1"], [0, "M"]]
    code, _, result = rapi("PUT", "/2/query/node",
                           {"fields": ["name"], "qfilter": ["|", ["=", "name", "node2"]]},
                           user=READER)
    assert result["data"] == [[[0, "node2"]]]
    assert rapi("GET", "/2/query/node", user=READER)[0] == 400
    assert rapi("GET", "/2/query/node?fields=name", user=None)[0] == 401
    assert rapi("GET", "/2/query/bogus?fields=name", user=READER)[0] == 404
    assert rapi("PUT", "/2/query/node", {"fields": "name"}, user=READER)[0] == 400
    assert rapi("PUT", "/2/query/node", {"fields": ["name"], "qfilter": "x"},
                user=READER)[0] == 400
    assert rapi("GET", "/2/query/lock/fields?fields=name,mode", user=None)[2] == \
        {"fields": [{"name": "name"}, {"name": "mode"}]}


# --- errors ---------------------------------------------------------------------------

def test_method_not_allowed_has_allow_header(rapi):
    code, extra, err = rapi("DELETE", "/2/info")
    assert code == 405 and extra["Allow"] == "GET"
    assert err == {"code": 405, "message": "Method Not Allowed",
                   "explain": err["explain"]} and "DELETE" in err["explain"]
    code, extra, _ = rapi("PATCH", "/2/instances")
    assert code == 405 and extra["Allow"] == "GET, POST"


def test_auth_errors(rapi):
    code, extra, err = rapi("PUT", "/2/redistribute-config", user=None)
    assert code == 401 and extra["WWW-Authenticate"] == 'Basic realm="Ganeti Remote API"'
    assert err["code"] == 401
    assert rapi("PUT", "/2/redistribute-config", user=READER)[0] == 403
    bad = "Basic " + base64.b64encode(b"admin:wrong").decode()
    assert rapi("PUT", "/2/redistribute-config", user=bad)[0] == 401
    assert rapi.luxi.jobs == []


def test_bad_bodies(rapi):
    code, _, err = rapi("PUT", "/2/instances/i1/modify", raw=b"{not json")
    assert code == 400 and "JSON" in err["explain"]
    code, _, err = rapi("PUT", "/2/instances/i1/modify", raw=b"a=b",
                        headers={"content-type": "application/x-www-form-urlencoded"})
    assert code == 415
    code, _, err = rapi("PUT", "/2/instances/i1/modify", raw=b"\xff\xfe")
    assert code == 400


@pytest.mark.parametrize("error,code", [
    (errors.JobQueueFull("full"), 503), (errors.JobQueueDrainError("drained"), 503),
    (luxi.NoMasterError("gone"), 502), (luxi.TimeoutError("slow"), 504),
    (errors.OpPrereqError("no such", errors.ECODE_NOENT), 404),
    (errors.OpPrereqError("bad", errors.ECODE_INVAL), 400),
    (errors.OpExecError("failed"), 502), (RuntimeError("bug"), 500),
])
def test_master_errors_map_to_statuses(rapi, error, code):
    rapi.luxi.fail = error
    status, _, err = rapi("GET", "/2/info", user=None)
    assert status == code and err["code"] == code
    assert "bug" not in err["explain"]


def test_broken_luxi_client_is_not_reused(rapi):
    rapi.luxi.fail = luxi.ProtocolError("broken")
    assert rapi("GET", "/2/info", user=None)[0] == 502
    assert rapi.pool.broken == 1


def test_fill_opcode_direct():
    op = baserlib.FillOpcode(opcodes.OpNodeSetParams, {"offline": True},
                             {"node_name": "n1"})
    assert op.offline is True and op.node_name == "n1"
    with pytest.raises(http.HttpBadRequest, match="node_name"):
        baserlib.FillOpcode(opcodes.OpNodeSetParams, {}, {})


def test_console_runs_a_console_job(rapi):
    console = {"instance": "inst1", "kind": "ssh", "host": "node1"}
    rapi.luxi.job_results[1] = (constants.JOB_STATUS_SUCCESS, [console])
    code, _, answer = rapi("GET", "/2/instances/inst1/console")
    assert code == 200 and answer == console
    assert _LastOp(rapi)["OP_ID"] == "OP_INSTANCE_CONSOLE"
    assert _LastOp(rapi)["instance_name"] == "inst1"
    # Not running (Ganeti: 503), unknown (404), anything else (502)
    rapi.luxi.job_results[2] = (constants.JOB_STATUS_ERROR, [
        ["OpExecError", ["Instance inst1 is not running (state is ADMIN_down)"]]])
    code, _, answer = rapi("GET", "/2/instances/inst1/console")
    assert code == 503 and "not running" in answer["explain"]
    rapi.luxi.job_results[3] = (constants.JOB_STATUS_ERROR, [
        ["OpPrereqError", ["Instance 'x' not known", errors.ECODE_NOENT]]])
    assert rapi("GET", "/2/instances/x/console")[0] == 404
    rapi.luxi.job_results[4] = (constants.JOB_STATUS_ERROR, [
        ["ProgrammerError", ["boom"]]])
    assert rapi("GET", "/2/instances/inst1/console")[0] == 502
    assert rapi("GET", "/2/instances/inst1/console", user=READER)[0] == 403


# --- moving instances between node groups -------------------------------------------------

def test_change_group(rapi):
    match = resources.Lookup("/2/instances/i1/change-group")
    assert match.handler is rlib2_instances.R_2_instances_name_change_group
    assert match.handler.AllowedMethods() == ["PUT"]
    assert match.handler.GetAccess("PUT") == ["write"]
    body = {"iallocator": "hail", "target_groups": ["rack2", "rack3"],
            "early_release": True}
    code, _, job = rapi("PUT", "/2/instances/i1/change-group?dry-run=1", body)
    assert code == 200, job
    op = _LastOp(rapi)
    assert (op["OP_ID"], op["instance_name"], op["iallocator"], op["target_groups"],
            op["early_release"], op["dry_run"]) == \
        ("OP_INSTANCE_CHANGE_GROUP", "i1", "hail", ["rack2", "rack3"], True, True)
    assert rapi("PUT", "/2/instances/i1/change-group", {})[0] == 200
    assert _LastOp(rapi).get("target_groups") is None
    code, _, err = rapi("PUT", "/2/instances/i1/change-group", {"target_groups": "rack2"})
    assert code == 400 and "target_groups" in err["explain"]
    code, _, err = rapi("PUT", "/2/instances/i1/change-group", {"to": ["rack2"]})
    assert code == 400 and "'to'" in err["explain"]
    assert rapi("POST", "/2/instances/i1/change-group", body)[0] == 405
    assert rapi("PUT", "/2/instances/i1/change-group", body, user=READER)[0] == 403


def test_group_evacuate(rapi):
    match = resources.Lookup("/2/groups/rack1/evacuate")
    assert match.handler is rlib2_nodes.R_2_groups_name_evacuate
    assert match.items == ("rack1",)
    assert match.handler.AllowedMethods() == ["POST"]
    body = {"iallocator": "hail", "target_groups": ["rack2"], "early_release": True,
            "sequential": True, "force_failover": True}
    code, _, job = rapi("POST", "/2/groups/rack1/evacuate", body)
    assert code == 200, job
    op = _LastOp(rapi)
    assert (op["OP_ID"], op["group_name"], op["iallocator"], op["target_groups"],
            op["early_release"], op["sequential"], op["force_failover"]) == \
        ("OP_GROUP_EVACUATE", "rack1", "hail", ["rack2"], True, True, True)
    assert rapi("POST", "/2/groups/rack1/evacuate?dry-run=1")[0] == 200
    assert _LastOp(rapi)["dry_run"] is True and _LastOp(rapi).get("iallocator") is None
    code, _, err = rapi("POST", "/2/groups/rack1/evacuate", {"group_name": "other"})
    assert code == 400 and "group_name" in err["explain"]
    code, _, err = rapi("POST", "/2/groups/rack1/evacuate", {"sequential": "yes"})
    assert code == 400 and "sequential" in err["explain"]
    assert rapi("PUT", "/2/groups/rack1/evacuate", body)[0] == 405
