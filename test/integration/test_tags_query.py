"""Tags, the instance and OS queries and gnt-os against a real masterd."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from ganeti import constants, opcodes

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _Run(cl, op, timeout=60.0):
    """Submit a one-opcode job, wait for it; (status, opresult)."""
    job_id = cl.SubmitJob([op])
    deadline = time.monotonic() + timeout
    while True:
        status, result = cl.QueryJobs([job_id], ["status", "opresult"])[0]
        if status in (constants.JOB_STATUS_SUCCESS, constants.JOB_STATUS_ERROR,
                      constants.JOB_STATUS_CANCELED):
            return status, result[0]
        assert time.monotonic() < deadline, f"job {job_id} did not finish"
        cl.WaitForJobChangeOnce(job_id, ["status"], [status], None, timeout=5)


@pytest.mark.timeout(120)
def test_tags_through_masterd(master):
    cl = master.luxi_client()
    status, _ = _Run(cl, opcodes.OpTagsSet(kind=constants.TAG_CLUSTER, tags=["env:prod"]))
    assert status == constants.JOB_STATUS_SUCCESS
    status, _ = _Run(cl, opcodes.OpTagsSet(kind=constants.TAG_NODE, name="node1",
                                           tags=["rack:7"]))
    assert status == constants.JOB_STATUS_SUCCESS
    assert _Run(cl, opcodes.OpTagsGet(kind=constants.TAG_CLUSTER)) == \
        (constants.JOB_STATUS_SUCCESS, ["env:prod"])
    status, result = _Run(cl, opcodes.OpTagsSearch(pattern=":"))
    assert [list(pair) for pair in result] == [["/cluster", "env:prod"],
                                               ["/nodes/node1.example.com", "rack:7"]]
    status, result = _Run(cl, opcodes.OpTagsSet(kind=constants.TAG_CLUSTER,
                                                tags=["bad tag"]))
    assert status == constants.JOB_STATUS_ERROR
    assert "invalid characters" in str(result)
    status, result = _Run(cl, opcodes.OpTagsGet(kind=constants.TAG_INSTANCE,
                                                name="nosuch"))
    assert status == constants.JOB_STATUS_ERROR and "not known" in str(result)
    assert _Run(cl, opcodes.OpTagsGet(kind=constants.TAG_CLUSTER))[1] == ["env:prod"]


@pytest.mark.timeout(120)
def test_instance_query_and_gnt_os(master):
    cl = master.luxi_client()
    result = cl.Query(constants.QR_INSTANCE, ["name", "status", "oper_ram"], None)
    assert result["data"] == []
    assert [f["title"] for f in result["fields"]] == ["Instance", "Status", "Memory"]
    fields = cl.QueryFields(constants.QR_INSTANCE, ["pnode", "nic.mac/0"])["fields"]
    assert [f["title"] for f in fields] == ["Primary_node", "NicMAC/0"]
    # The master's node daemon is not running: no OS is found, and no error
    proc = subprocess.run([sys.executable, os.path.join(REPO, "scripts", "gnt-os"), "list"],
                          env=master.env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "Name\n"
