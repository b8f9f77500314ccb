"""The reproductions of issue 15 item 3 against a real master and ganeti-rapi.

Values that would break operations are refused with 400 before any job
(the opcodes' declarations check them), and a modify that changes nothing
leaves the configuration file and its serial number alone.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import ssl
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from rapidaemon import USERS, RapiDaemon  # noqa: E402
from ganeti.rapi import client as rapi_client  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

LONG = 10000


@pytest.fixture
def rapi(master):
    daemon = RapiDaemon(master.root, master.env).Prepare()
    try:
        daemon.Start()
        yield daemon
    finally:
        code = daemon.Stop()
    assert code == 0, daemon.log_file.read_text()[-2000:]


@pytest.fixture
def call(rapi):
    """One raw HTTPS request as admin: (status, decoded JSON answer)."""
    ctx = ssl.create_default_context(cafile=str(rapi.cert_file))
    ctx.check_hostname = False
    auth = "Basic " + base64.b64encode(f"admin:{USERS['admin'][0]}".encode()).decode()
    conns = []

    def _Call(method, path, body=None, ctype="application/json", raw=None):
        conn = http.client.HTTPSConnection("127.0.0.1", rapi.port, context=ctx,
                                           timeout=30)
        conns.append(conn)
        data = raw if raw is not None else \
            (None if body is None else json.dumps(body).encode())
        conn.request(method, path, body=data,
                     headers={"Content-Type": ctype, "Authorization": auth})
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read())

    yield _Call
    for conn in conns:
        conn.close()


def _ConfigState(master):
    """(serial of the configuration, serial of the cluster, the file's bytes)."""
    text = master.cfg_file.read_bytes()
    data = json.loads(text)
    return data["serial_no"], data["cluster"]["serial_no"], text


def _WaitJob(cl, job_id):
    status = cl.GetJobStatus(job_id)
    while status["status"] not in rapi_client.JOB_STATUS_FINALIZED:
        cl.WaitForJobChange(job_id, ["status"], [status["status"]], None)
        status = cl.GetJobStatus(job_id)
    return status


def _AssertRefused(answer, *needles):
    code, err = answer
    assert code == 400, err
    assert err["code"] == 400
    for needle in needles:
        assert needle in err["explain"], err["explain"]
    assert len(err["explain"]) < 1000


def test_values_that_break_operations_are_refused(master, rapi, call):
    cl = rapi.Client()
    before = _ConfigState(master)
    groups = sorted(g["name"] for g in cl.GetGroups(bulk=True))

    answer = call("PUT", "/2/modify", {"master_netdev": "x" * LONG})
    _AssertRefused(answer, "master_netdev", "network interface name",
                   "'" + "x" * 50 + "'...")
    assert "x" * 51 not in answer[1]["explain"]

    answer = call("POST", "/2/groups", {"name": "g" * LONG})
    _AssertRefused(answer, "group_name", "'" + "g" * 50 + "'...")
    assert "g" * 51 not in answer[1]["explain"]

    _AssertRefused(call("POST", "/2/groups?dry-run=1", {"name": "../../../etc/passwd"}),
                   "group_name", "no '/'", "'../../../etc/passwd'")

    # Nothing was queued, nothing changed
    assert cl.GetJobs() == []
    assert _ConfigState(master) == before
    assert cl.GetInfo()["master_netdev"] == "lo"
    assert sorted(g["name"] for g in cl.GetGroups(bulk=True)) == groups


def test_modify_with_nothing_to_change_writes_nothing(master, rapi, call):
    cl = rapi.Client()
    before = _ConfigState(master)

    # An empty body, whatever its content type, is no body (as in Ganeti):
    # a job that changes nothing
    code, job_id = call("PUT", "/2/modify", ctype="text/plain", raw=b"")
    assert code == 200, job_id
    status = _WaitJob(cl, job_id)
    assert status["status"] == "success", status
    assert _ConfigState(master) == before

    # The current values change nothing either
    code, job_id = call("PUT", "/2/modify", {"master_netdev": "lo",
                                             "candidate_pool_size": 3})
    assert code == 200, job_id
    assert _WaitJob(cl, job_id)["status"] == "success"
    assert _ConfigState(master) == before

    # A body that is not JSON is refused (rapi.rst: bodies are JSON)
    code, err = call("PUT", "/2/modify", ctype="text/plain", raw=b"master_netdev=lo")
    assert code == 415 and "JSON" in err["explain"]

    # A real change is written: the checks above can fail
    code, job_id = call("PUT", "/2/modify", {"master_netdev": "eth1"})
    assert code == 200 and _WaitJob(cl, job_id)["status"] == "success"
    serial, cluster_serial, _ = _ConfigState(master)
    assert serial > before[0] and cluster_serial > before[1]
    assert cl.GetInfo()["master_netdev"] == "eth1"
