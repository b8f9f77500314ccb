"""RAPI resources of jobs: /2/jobs, /2/jobs/[job_id], /2/jobs/[job_id]/wait."""

from __future__ import annotations

from typing import Any

from ganeti import constants, http
from ganeti.rapi import RAPI_ACCESS_WRITE, baserlib

J_FIELDS_BULK = ["id", "ops", "status", "summary", "opstatus", "received_ts",
                 "start_ts", "end_ts"]
J_FIELDS = J_FIELDS_BULK + ["oplog", "opresult"]

#: Longest wait of one GET /2/jobs/[job_id]/wait, in seconds
WFJC_TIMEOUT = 10


def _JobId(raw: str) -> int:
    return baserlib.ParseNonNegativeInt(raw, "job id")


class R_2_jobs(baserlib.ResourceBase):
    """/2/jobs: the jobs not archived."""

    def GET(self) -> Any:
        client = self.GetClient()
        if self.useBulk():
            rows = client.QueryJobs(None, J_FIELDS_BULK)
            return baserlib.MapBulkFields((r for r in rows if r is not None),
                                          J_FIELDS_BULK)
        ids = [row[0] for row in client.QueryJobs(None, ["id"]) if row is not None]
        return baserlib.BuildUriList(ids, "/2/jobs/%s", uri_fields=("id", "uri"))


class R_2_jobs_id(baserlib.ResourceBase):
    """/2/jobs/[job_id]: one job; DELETE cancels it."""

    def GET(self) -> Any:
        job_id = _JobId(self.items[0])
        row = self.GetClient().QueryJobs([job_id], J_FIELDS)[0]
        if row is None:
            raise http.HttpNotFound(f"Job {job_id} not found")
        return baserlib.MapFields(J_FIELDS, row)

    def DELETE(self) -> Any:
        return self.GetClient().CancelJob(_JobId(self.items[0]))


class R_2_jobs_id_wait(baserlib.ResourceBase):
    """/2/jobs/[job_id]/wait: wait (at most 10 s) for a job to change."""

    # It blocks a server thread and shows job details
    GET_ACCESS = [RAPI_ACCESS_WRITE]

    def GET(self) -> Any:
        job_id = _JobId(self.items[0])
        body = self.request_body if self.request_body is not None else {}
        baserlib.CheckType(body, dict, "Body contents")
        unknown = sorted(set(body) - {"fields", "previous_job_info",
                                      "previous_log_serial"})
        if unknown:
            raise http.HttpBadRequest("Invalid body parameters: unknown"
                                      " parameter(s) " +
                                      ", ".join(f"'{k}'" for k in unknown))
        fields = self.getBodyParameter("fields")
        prev_job_info = self.getBodyParameter("previous_job_info", None)
        prev_log_serial = self.getBodyParameter("previous_log_serial", None)
        if not (isinstance(fields, list) and all(isinstance(f, str) for f in fields)):
            raise http.HttpBadRequest("The 'fields' parameter should be a list"
                                      " of strings")
        if not (prev_job_info is None or isinstance(prev_job_info, list)):
            raise http.HttpBadRequest("The 'previous_job_info' parameter should"
                                      " be a list")
        if not (prev_log_serial is None or
                (isinstance(prev_log_serial, int)
                 and not isinstance(prev_log_serial, bool))):
            raise http.HttpBadRequest("The 'previous_log_serial' parameter"
                                      " should be a number")
        result = self.GetClient().WaitForJobChangeOnce(
            job_id, fields, prev_job_info, prev_log_serial, timeout=WFJC_TIMEOUT)
        if not result:
            raise http.HttpNotFound(f"Job {job_id} not found")
        if result == constants.JOB_NOTCHANGED:
            return None
        job_info, log_entries = result
        return {"job_info": job_info, "log_entries": log_entries}
