"""The full life of instances through RAPI on a two-node virtual cluster.

The virtual cluster starts ganeti-rapi on its master with a write user
(``RAPI_*`` in its env file); the tests add a read-only user with
``gnt-cluster rapi-user add --read-only``. Instances are made with the
Python client (``CreateInstance``) and with raw HTTPS requests carrying
Ganeti's version-1 body, then taken through every instance resource:
shutdown, startup, reboot, /info, modify, tags, console, rename,
reinstall (body and legacy query form), grow-disk, activate/deactivate
disks, failover and migrate to the other node, delete. Also: failing jobs
and their error encoding, ``dry-run=1`` changing nothing, and read-only
and anonymous users refused on every write.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import ssl
import subprocess
import sys
import urllib.parse
from typing import Any

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from vcluster import VirtualCluster, virtual_cluster  # noqa: E402
from ganeti import constants  # noqa: E402
from ganeti.rapi import client as rapi_client  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]

OS = "noop+default"
READER = ("rapi-ro", "rapi-ro-secret")
#: Polls of WaitForJobCompletion (each blocks up to ~10 s on the server,
#: less when the job logs a message)
JOB_POLLS = 100


class Rapi:
    """The cluster's RAPI: clients per user and raw HTTPS requests."""

    def __init__(self, vc: VirtualCluster) -> None:
        env = _Env(vc)
        self.vc = vc
        self.host = env["RAPI_HOST"]
        self.port = int(env["RAPI_PORT"])
        self.users = {"admin": (env["RAPI_USER"], env["RAPI_PASSWORD"]),
                      "reader": READER}
        self.cafile = str(vc.path(vc.master(), constants.DEFAULT_DATA_DIR + "/"
                                  + constants.RAPI_PEM_NAME))
        self.client = self.Client("admin")

    def Client(self, who: str | None) -> rapi_client.GanetiRapiClient:
        """A verifying client as ``who`` (None: anonymous)."""
        user, password = self.users[who] if who else (None, None)
        return rapi_client.GanetiRapiClient(
            self.host, self.port, username=user, password=password,
            curl_config_fn=rapi_client.GenericCurlConfig(cafile=self.cafile))

    def Raw(self, method: str, path: str, body: Any = None,
            who: str | None = "admin") -> tuple[int, Any]:
        """One request on a new connection; (status, decoded JSON body)."""
        ctx = ssl.create_default_context(cafile=self.cafile)
        ctx.check_hostname = False
        conn = http.client.HTTPSConnection(self.host, self.port, context=ctx,
                                           timeout=120)
        headers = {"Content-Type": "application/json"}
        if who:
            user, password = self.users[who]
            headers["Authorization"] = "Basic " + base64.b64encode(
                f"{user}:{password}".encode()).decode()
        try:
            conn.request(method, path, headers=headers,
                         body=None if body is None else json.dumps(body).encode())
            resp = conn.getresponse()
            payload = resp.read()
        finally:
            conn.close()
        return resp.status, json.loads(payload) if payload else None

    def Wait(self, job_id: Any) -> dict[str, Any]:
        """Wait for a job with the client; its final status."""
        self.client.WaitForJobCompletion(job_id, retries=JOB_POLLS)
        return self.client.GetJobStatus(job_id)

    def Ok(self, job_id: Any) -> dict[str, Any]:
        """Wait for a job that must succeed."""
        status = self.Wait(job_id)
        assert status["status"] == constants.JOB_STATUS_SUCCESS, status
        return status

    def RawWait(self, job_id: Any) -> str:
        """Wait with GET /2/jobs/[id]/wait (raw HTTP) until the job ends."""
        prev = None
        serial = None
        for _ in range(JOB_POLLS):
            code, body = self.Raw("GET", f"/2/jobs/{job_id}/wait",
                                  {"fields": ["status"], "previous_job_info": prev,
                                   "previous_log_serial": serial})
            assert code == 200, body
            if body is not None:
                prev = body["job_info"]
                if body["log_entries"]:
                    serial = body["log_entries"][-1][0]
                if prev[0] in constants.JOBS_FINALIZED:
                    return prev[0]
        raise AssertionError(f"job {job_id} did not end")


def _Env(vc: VirtualCluster) -> dict[str, str]:
    result = subprocess.run(["sh", "-c", f". {vc.directory}/env && env -0"],
                            capture_output=True, timeout=30, check=True)
    return dict(item.split("=", 1) for item in
                result.stdout.decode().split("\0") if "=" in item)


@pytest.fixture(scope="module")
def vc():
    with virtual_cluster(nodes=2) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def rapi(vc):
    vc.run("gnt-cluster", "rapi-user", "add", "--password-stdin", "--read-only",
           READER[0], input=READER[1] + "\n")
    return Rapi(vc)


def _Create(rapi: Rapi, name: str, pnode: str, **kwargs: Any) -> Any:
    params: dict[str, Any] = {"os": OS, "pnode": pnode, "name_check": False,
                              "ip_check": False}
    params.update(kwargs)
    template = params.pop("disk_template", constants.DT_DISKLESS)
    disks = params.pop("disks", [])
    nics = params.pop("nics", [{}])
    return rapi.client.CreateInstance(constants.INSTANCE_CREATE, name, template,
                                      disks, nics, **params)


def _Get(rapi: Rapi, name: str) -> dict[str, Any]:
    return rapi.client.GetInstance(name)


def _Exists(rapi: Rapi, name: str) -> bool:
    # Like Ganeti's, the client lists names (the server sends id and uri)
    return name in rapi.client.GetInstances()


def _Remove(rapi: Rapi, name: str) -> None:
    if _Exists(rapi, name):
        rapi.Ok(rapi.client.DeleteInstance(name))


# --- the life of a diskless instance, with the client ----------------------------------

def test_diskless_instance_life_with_client(vc, rapi):
    n1, n2 = vc.names
    name = "rapi-inst1.example.com"
    new_name = "rapi-inst1b.example.com"
    cl = rapi.client
    job = _Create(rapi, name, n2, beparams={"maxmem": 128, "minmem": 128},
                  hvparams={}, tags=["born"])
    assert isinstance(job, int)
    assert cl.WaitForJobCompletion(job, retries=JOB_POLLS), cl.GetJobStatus(job)
    try:
        inst = _Get(rapi, name)
        assert inst["name"] == name
        assert inst["admin_state"] == constants.ADMINST_UP
        assert inst["oper_state"] is True
        assert inst["status"] == "running"
        assert inst["pnode"] == n2 and inst["snodes"] == []
        assert inst["disk_template"] == constants.DT_DISKLESS
        assert inst["disk.sizes"] == [] and inst["disk_usage"] == 0
        assert len(inst["nic.macs"]) == 1 and inst["nic.macs"][0].count(":") == 5
        assert inst["beparams"]["maxmem"] == 128
        assert isinstance(inst["hvparams"], dict)
        assert inst["os"] == OS
        assert inst["tags"] == ["born"]
        for key in ("ctime", "mtime", "uuid", "serial_no", "custom_beparams",
                    "custom_hvparams", "custom_nicparams", "oper_ram", "oper_vcpus"):
            assert key in inst, key
        bulk = {i["name"]: i for i in cl.GetInstances(bulk=True)}
        assert bulk[name]["pnode"] == n2 and bulk[name]["status"] == "running"
        assert name in cl.GetInstances()
        assert {"id": name, "uri": f"/2/instances/{name}"} in \
            rapi.Raw("GET", "/2/instances", who=None)[1]

        # /info is a job whose result holds the instance's details
        status = rapi.Ok(cl.GetInstanceInfo(name))
        info = status["opresult"][0][name]
        assert info["pnode"] == n2 and info["os"] == OS

        rapi.Ok(cl.ShutdownInstance(name))
        inst = _Get(rapi, name)
        assert inst["admin_state"] == constants.ADMINST_DOWN
        assert inst["status"] == "ADMIN_down"
        rapi.Ok(cl.StartupInstance(name))
        assert _Get(rapi, name)["status"] == "running"
        rapi.Ok(cl.RebootInstance(name, reboot_type=constants.INSTANCE_REBOOT_SOFT))
        assert _Get(rapi, name)["status"] == "running"

        # Modify: backend parameters and a second NIC
        rapi.Ok(cl.ModifyInstance(name, beparams={"maxmem": 256, "minmem": 192},
                                  nics=[[constants.DDM_ADD, -1, {}]]))
        inst = _Get(rapi, name)
        assert inst["beparams"]["maxmem"] == 256 and inst["beparams"]["minmem"] == 192
        assert inst["custom_beparams"]["maxmem"] == 256
        assert len(inst["nic.macs"]) == 2

        # Tags
        rapi.Ok(cl.AddInstanceTags(name, ["a", "b"]))
        assert sorted(cl.GetInstanceTags(name)) == ["a", "b", "born"]
        rapi.Ok(cl.DeleteInstanceTags(name, ["a", "born"]))
        assert cl.GetInstanceTags(name) == ["b"]

        console = cl.GetInstanceConsole(name)
        assert console["instance"] == name and console["kind"]

        # Failover and migrate to the other node and back (diskless: any node)
        rapi.Ok(cl.FailoverInstance(name, target_node=n1))
        inst = _Get(rapi, name)
        assert inst["pnode"] == n1 and inst["status"] == "running"
        rapi.Ok(cl.MigrateInstance(name, target_node=n2))
        inst = _Get(rapi, name)
        assert inst["pnode"] == n2 and inst["status"] == "running"

        # Rename needs it stopped
        rapi.Ok(cl.ShutdownInstance(name))
        rapi.Ok(cl.RenameInstance(name, new_name, ip_check=False, name_check=False))
        assert not _Exists(rapi, name)
        name = new_name
        assert _Get(rapi, name)["tags"] == ["b"]
        # As in Ganeti, a diskless instance has nothing to reinstall: the
        # job's first opcode (shutdown) succeeds, the reinstall fails
        status = rapi.Wait(cl.ReinstallInstance(name, os=OS))
        assert status["status"] == constants.JOB_STATUS_ERROR
        assert status["opresult"][1][0] == "OpPrereqError"
        assert "has no disks" in status["opresult"][1][1][0]

        rapi.Ok(cl.DeleteInstance(name))
        with pytest.raises(rapi_client.GanetiApiError) as err:
            _Get(rapi, name)
        assert err.value.code == 404
    finally:
        _Remove(rapi, name)


# --- raw HTTP: a file instance and its disk ---------------------------------------------

def test_file_instance_with_raw_http(vc, rapi):
    n1, _ = vc.names
    name = "rapi-file1.example.com"
    body = {"__version__": 1, "mode": constants.INSTANCE_CREATE, "name": name,
            "os": OS, "disk_template": constants.DT_FILE, "disks": [{"size": 1024}],
            "nics": [{}], "pnode": n1, "name_check": False, "ip_check": False,
            "beparams": {"maxmem": 128, "minmem": 128}, "start": False}
    code, job = rapi.Raw("POST", "/2/instances", body)
    assert code == 200 and isinstance(job, int), job
    assert rapi.RawWait(job) == constants.JOB_STATUS_SUCCESS, rapi.Raw(
        "GET", f"/2/jobs/{job}")
    try:
        code, inst = rapi.Raw("GET", f"/2/instances/{name}", who=None)
        assert code == 200, inst
        assert inst["disk.sizes"] == [1024] and inst["status"] == "ADMIN_down"
        assert inst["pnode"] == n1

        code, job = rapi.Raw("POST", f"/2/instances/{name}/disk/0/grow",
                             {"amount": 128, "wait_for_sync": False})
        assert code == 200, job
        assert rapi.RawWait(job) == constants.JOB_STATUS_SUCCESS
        assert rapi.Raw("GET", f"/2/instances/{name}")[1]["disk.sizes"] == [1152]

        for action in ("activate-disks", "deactivate-disks"):
            code, job = rapi.Raw("PUT", f"/2/instances/{name}/{action}")
            assert code == 200, job
            assert rapi.RawWait(job) == constants.JOB_STATUS_SUCCESS, \
                rapi.Raw("GET", f"/2/jobs/{job}")

        # Reinstall with the client (version-1 body), then Ganeti's legacy
        # query-argument form
        rapi.Ok(rapi.client.ReinstallInstance(name, os=OS, osparams={}))
        assert rapi.Raw("GET", f"/2/instances/{name}")[1]["status"] == "running"
        code, job = rapi.Raw("PUT", f"/2/instances/{name}/shutdown")
        assert code == 200 and rapi.RawWait(job) == constants.JOB_STATUS_SUCCESS
        query = urllib.parse.urlencode({"os": OS, "nostartup": 1})
        code, job = rapi.Raw("POST", f"/2/instances/{name}/reinstall?{query}")
        assert code == 200, job
        assert rapi.RawWait(job) == constants.JOB_STATUS_SUCCESS
        code, job_data = rapi.Raw("GET", f"/2/jobs/{job}")
        assert [op["OP_ID"] for op in job_data["ops"]] == \
            ["OP_INSTANCE_SHUTDOWN", "OP_INSTANCE_REINSTALL"]

        # Rename with a raw PUT body
        code, job = rapi.Raw("PUT", f"/2/instances/{name}/rename",
                             {"new_name": "rapi-file2.example.com",
                              "name_check": False, "ip_check": False})
        assert code == 200, job
        assert rapi.RawWait(job) == constants.JOB_STATUS_SUCCESS
        name = "rapi-file2.example.com"

        code, job = rapi.Raw("DELETE", f"/2/instances/{name}")
        assert code == 200, job
        assert rapi.RawWait(job) == constants.JOB_STATUS_SUCCESS
        assert rapi.Raw("GET", f"/2/instances/{name}")[0] == 404
    finally:
        _Remove(rapi, name)


# --- failures, dry runs, permissions ----------------------------------------------------

def test_failing_jobs_carry_ganeti_error_encoding(vc, rapi):
    _, n2 = vc.names
    job = _Create(rapi, "rapi-bados.example.com", n2, os="no-such-os+default")
    status = rapi.Wait(job)
    assert status["status"] == constants.JOB_STATUS_ERROR, status
    assert not rapi.client.WaitForJobCompletion(job, retries=1)
    # Ganeti's encoding: [exception class name, [message, error code]]
    kind, args = status["opresult"][0]
    assert kind == "OpPrereqError", status
    assert "no-such-os" in args[0]
    assert args[1] in constants.ECODE_ALL, args
    assert status["opstatus"] == [constants.OP_STATUS_ERROR]
    assert not _Exists(rapi, "rapi-bados.example.com")

    # An unknown instance: the job fails the same way
    status = rapi.Wait(rapi.client.ShutdownInstance("rapi-nosuch.example.com"))
    assert status["status"] == constants.JOB_STATUS_ERROR
    assert status["opresult"][0][0] == "OpPrereqError"
    # Bad bodies never reach the master: 400 with Ganeti's JSON error body
    code, body = rapi.Raw("POST", "/2/instances", {"__version__": 1, "name": 3})
    assert code == 400 and body["code"] == 400 and body["message"], body
    code, body = rapi.Raw("POST", "/2/instances/x.example.com/disk/zero/grow",
                          {"amount": 1})
    assert code == 400, body


def test_dry_run_changes_nothing(vc, rapi):
    _, n2 = vc.names
    name = "rapi-dry.example.com"
    rapi.Ok(_Create(rapi, name, n2, beparams={"maxmem": 128, "minmem": 128}))
    try:
        before = _Get(rapi, name)
        for path, method, body in (
                (f"/2/instances/{name}?dry-run=1", "DELETE", None),
                (f"/2/instances/{name}/shutdown?dry-run=1", "PUT", None),
                (f"/2/instances/{name}/tags?tag=dry&dry-run=1", "PUT", None),
                (f"/2/instances/{name}/modify?dry-run=1", "PUT",
                 {"beparams": {"maxmem": 512}})):
            code, job = rapi.Raw(method, path, body)
            assert code == 200, (path, job)
            assert rapi.RawWait(job) == constants.JOB_STATUS_SUCCESS, \
                (path, rapi.Raw("GET", f"/2/jobs/{job}"))
        # A dry run still checks: the instance is up (the dry-run shutdown
        # changed nothing), so renaming it is refused
        code, job = rapi.Raw("PUT", f"/2/instances/{name}/rename?dry-run=1",
                             {"new_name": "rapi-dry2.example.com", "name_check": False,
                              "ip_check": False})
        assert code == 200, job
        assert rapi.RawWait(job) == constants.JOB_STATUS_ERROR
        assert "cannot rename" in str(rapi.Raw("GET", f"/2/jobs/{job}")[1]["opresult"])
        after = _Get(rapi, name)
        for key in ("admin_state", "status", "beparams", "tags", "pnode", "nic.macs",
                    "serial_no"):
            assert after[key] == before[key], key
        assert not _Exists(rapi, "rapi-dry2.example.com")
    finally:
        _Remove(rapi, name)
    # A dry-run creation checks everything and creates nothing
    rapi.Ok(_Create(rapi, name, n2, dry_run=True))
    assert not _Exists(rapi, name)


WRITES = [
    ("POST", "/2/instances", {"__version__": 1, "mode": "create", "name": "x.example.com",
                              "disk_template": "diskless", "disks": [], "nics": []}),
    ("DELETE", "/2/instances/{name}", None),
    ("PUT", "/2/instances/{name}/shutdown", None),
    ("PUT", "/2/instances/{name}/startup", None),
    ("POST", "/2/instances/{name}/reboot", None),
    ("PUT", "/2/instances/{name}/modify", {"beparams": {"maxmem": 64}}),
    ("POST", "/2/instances/{name}/reinstall", {"os": OS}),
    ("PUT", "/2/instances/{name}/rename", {"new_name": "y.example.com"}),
    ("POST", "/2/instances/{name}/disk/0/grow", {"amount": 1}),
    ("PUT", "/2/instances/{name}/activate-disks", None),
    ("PUT", "/2/instances/{name}/deactivate-disks", None),
    ("POST", "/2/instances/{name}/recreate-disks", None),
    ("PUT", "/2/instances/{name}/failover", None),
    ("PUT", "/2/instances/{name}/migrate", None),
    ("PUT", "/2/instances/{name}/tags?tag=t", None),
    ("DELETE", "/2/instances/{name}/tags?tag=t", None),
    ("GET", "/2/instances/{name}/console", None),
]


def test_read_only_and_anonymous_users_refused_on_writes(vc, rapi):
    _, n2 = vc.names
    name = "rapi-ro.example.com"
    rapi.Ok(_Create(rapi, name, n2, beparams={"maxmem": 128, "minmem": 128}))
    try:
        jobs_before = len(rapi.client.GetJobs())
        before = _Get(rapi, name)
        for method, path, body in WRITES:
            path = path.format(name=name)
            code, answer = rapi.Raw(method, path, body, who="reader")
            assert code == 403, (method, path, answer)
            assert answer["code"] == 403 and answer["message"] == "Forbidden"
            code, answer = rapi.Raw(method, path, body, who=None)
            assert code == 401, (method, path, answer)
        # The reader may read
        assert rapi.Raw("GET", f"/2/instances/{name}", who="reader")[0] == 200
        assert rapi.Raw("GET", "/2/instances?bulk=1", who="reader")[0] == 200
        assert rapi.Client("reader").GetInstance(name)["name"] == name
        with pytest.raises(rapi_client.GanetiApiError) as err:
            rapi.Client("reader").ShutdownInstance(name)
        assert err.value.code == 403
        assert len(rapi.client.GetJobs()) == jobs_before
        assert _Get(rapi, name)["serial_no"] == before["serial_no"]
    finally:
        _Remove(rapi, name)
