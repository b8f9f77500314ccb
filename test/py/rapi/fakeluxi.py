"""A stand-in for the master daemon's luxi client in RAPI unit tests."""

from __future__ import annotations

from typing import Any

from ganeti import constants, errors, opcodes
from ganeti.rapi import baserlib


class FakeLuxi:
    """Records submitted jobs; answers queries from small tables."""

    def __init__(self) -> None:
        self.jobs: list[list[dict[str, Any]]] = []
        self.calls: list[tuple[str, tuple]] = []
        self.nodes = {"node1": {"name": "node1", "role": "M", "tags": ["a"],
                                "offline": False},
                      "node2": {"name": "node2", "role": "C", "tags": [],
                                "offline": False}}
        self.fail: BaseException | None = None
        #: job id -> (status, opresult) for QueryJobs; default success
        self.job_results: dict[int, tuple[str, Any]] = {}

    def _Check(self, name: str, *args: Any) -> None:
        self.calls.append((name, args))
        if self.fail is not None:
            raise self.fail

    def SubmitJob(self, ops: list[Any]) -> int:
        self._Check("SubmitJob", ops)
        for op in ops:
            # What the master does first
            opcodes.OpCode.LoadOpCode(op.ToDict()).Validate(True)
        self.jobs.append([op.ToDict() for op in ops])
        return len(self.jobs)

    def QueryClusterInfo(self) -> dict[str, Any]:
        self._Check("QueryClusterInfo")
        return {"name": "cluster", "tags": ["ct"]}

    def Query(self, what: str, fields: list[str], qfilter: Any) -> dict[str, Any]:
        self._Check("Query", what, fields, qfilter)
        if what != constants.QR_NODE:
            raise errors.OpPrereqError(f"Resource '{what}' is not queryable here",
                                       errors.ECODE_INVAL)
        names = sorted(self.nodes)
        if qfilter:
            wanted = {f[2] for f in qfilter[1:]}
            names = [n for n in names if n in wanted]
        data = [[[constants.RS_NORMAL, self.nodes[n][f]] if f in self.nodes[n]
                 else [constants.RS_UNAVAIL, None] for f in fields] for n in names]
        return {"fields": [{"name": f} for f in fields], "data": data}

    def QueryFields(self, what: str, fields: Any) -> dict[str, Any]:
        self._Check("QueryFields", what, fields)
        return {"fields": [{"name": f} for f in fields or ["x"]]}

    def QueryJobs(self, ids: Any, fields: list[str]) -> list[Any]:
        self._Check("QueryJobs", ids, fields)
        if ids is None:
            ids = list(range(1, len(self.jobs) + 1))
        def _Values(job_id: int) -> dict[str, Any]:
            status, opresult = self.job_results.get(
                job_id, (constants.JOB_STATUS_SUCCESS, "opresult"))
            return {"status": status, "opresult": opresult}
        return [[i if f == "id" else _Values(i).get(f, f) for f in fields]
                if 0 < i <= len(self.jobs) else None for i in ids]

    def CancelJob(self, job_id: int) -> Any:
        self._Check("CancelJob", job_id)
        return [True, f"Job {job_id} canceled"]

    def WaitForJobChangeOnce(self, job_id: int, fields: Any, prev: Any, serial: Any,
                             timeout: float = 0) -> Any:
        self._Check("WaitForJobChangeOnce", job_id, fields, prev, serial, timeout)
        if job_id > len(self.jobs):
            return None
        if prev == ["success"]:
            return constants.JOB_NOTCHANGED
        return [["success"], []]


class FakePool:
    """A LuxiPool handing out one FakeLuxi."""

    def __init__(self) -> None:
        self.client = FakeLuxi()
        self.broken = 0
        # No such files: nothing is cached
        self.cache = baserlib.ConfigAnswerCache("/nonexistent/config.data",
                                                "/nonexistent/socket")

    def Get(self) -> FakeLuxi:
        return self.client

    def Put(self, client: Any, broken: bool = False) -> None:
        self.broken += broken

    def CloseAll(self) -> None:
        pass


