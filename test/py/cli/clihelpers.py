"""Helpers for the CLI tests: a fake luxi client standing in for the master.

Unit tests of the CLI library and of the gnt-* command functions talk to
:class:`FakeClient`, which answers luxi calls from scripted data and
records every call. The real master daemon is exercised by
test/integration/test_cli_jobs.py.
"""

from __future__ import annotations

from typing import Any

from ganeti import constants


def Field(name: str, kind: str = constants.QFT_TEXT, title: str | None = None,
          doc: str = "") -> dict[str, str]:
    """A query field definition dict."""
    return {"name": name, "title": title or name.capitalize(), "kind": kind,
            "doc": doc or f"The {name}"}


class FakeClient:
    """Answers luxi calls from scripted data; records them in ``calls``.

    - ``wfjc``: answers of WaitForJobChangeOnce, popped in order;
    - ``jobs``: job id -> {field: value} for QueryJobs;
    - ``query``: resource -> Query answer (dict), or a callable;
    - ``fields``: resource -> list of field dicts for QueryFields;
    - ``submitted``: the ops of every submitted job (ids count from 1).
    """

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self.wfjc: list[Any] = []
        self.jobs: dict[int, dict[str, Any]] = {}
        self.query: dict[str, Any] = {}
        self.fields: dict[str, list[dict[str, str]]] = {}
        self.submitted: list[list[Any]] = []
        self.cancel_result: dict[int, tuple[bool, str]] = {}
        self.archive_result: dict[int, bool] = {}
        self.autoarchive_result = (0, 0)
        self.on_submit: Any = None

    def _Record(self, name: str, *args: Any) -> None:
        self.calls.append((name, args))

    def CallNames(self) -> list[str]:
        return [name for name, _ in self.calls]

    def SubmitJob(self, ops: list[Any]) -> int:
        self._Record("SubmitJob", ops)
        self.submitted.append(list(ops))
        job_id = len(self.submitted)
        if self.on_submit is not None:
            self.on_submit(job_id, ops)
        return job_id

    def SubmitManyJobs(self, jobs: list[list[Any]]) -> list[Any]:
        self._Record("SubmitManyJobs", jobs)
        result = []
        for ops in jobs:
            self.submitted.append(list(ops))
            result.append([True, len(self.submitted)])
        return result

    def WaitForJobChangeOnce(self, job_id: int, fields: list[str], prev_job_info: Any,
                             prev_log_serial: Any, timeout: float = 1) -> Any:
        self._Record("WaitForJobChangeOnce", job_id, fields, prev_job_info,
                     prev_log_serial, timeout)
        if not self.wfjc:
            raise AssertionError("WaitForJobChangeOnce called more often than scripted")
        return self.wfjc.pop(0)

    def QueryJobs(self, job_ids: list[int] | None, fields: list[str]) -> list[Any]:
        self._Record("QueryJobs", job_ids, fields)
        ids = job_ids if job_ids else sorted(self.jobs)
        result = []
        for job_id in ids:
            job = self.jobs.get(job_id)
            result.append(None if job is None else [job.get(f) for f in fields])
        return result

    def Query(self, what: str, fields: list[str], qfilter: Any) -> Any:
        self._Record("Query", what, fields, qfilter)
        answer = self.query[what]
        return answer(fields, qfilter) if callable(answer) else answer

    def QueryFields(self, what: str, fields: list[str] | None) -> Any:
        self._Record("QueryFields", what, fields)
        known = {fdef["name"]: fdef for fdef in self.fields[what]}
        if fields is None:
            return {"fields": list(known.values())}
        return {"fields": [known.get(name, Field(name, constants.QFT_UNKNOWN))
                           for name in fields]}

    def CancelJob(self, job_id: int, kill: bool = False) -> Any:
        self._Record("CancelJob", job_id, kill)
        return self.cancel_result.get(job_id, (True, f"Job {job_id} canceled"))

    def ChangeJobPriority(self, job_id: int, priority: int) -> Any:
        self._Record("ChangeJobPriority", job_id, priority)
        return (True, f"Priority of job {job_id} changed to {priority}")

    def ArchiveJob(self, job_id: int) -> bool:
        self._Record("ArchiveJob", job_id)
        return self.archive_result.get(job_id, True)

    def AutoArchiveJobs(self, age: int, timeout: float | None = None) -> Any:
        self._Record("AutoArchiveJobs", age, timeout)
        return self.autoarchive_result


def SuccessJob(job_id: int, results: list[Any] | None = None,
               log: list[Any] | None = None) -> dict[str, Any]:
    """QueryJobs data of a job that succeeded."""
    results = results if results is not None else [None]
    return {"id": job_id, "status": constants.JOB_STATUS_SUCCESS,
            "opstatus": [constants.OP_STATUS_SUCCESS] * len(results),
            "opresult": results, "oplog": log or [[] for _ in results]}
