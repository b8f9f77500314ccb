"""RAPI resources of the cluster: /, /version, /2/info, /2/features, /2/os,
/2/modify, /2/redistribute-config, /2/tags, /2/query/*, and the tag base."""

from __future__ import annotations

import time
from typing import Any, ClassVar

from ganeti import constants, errors, http, opcodes
from ganeti.rapi import RAPI_ACCESS_READ, RAPI_ACCESS_WRITE, baserlib

# Feature strings (GET /2/features)
INST_CREATE_REQV1 = "instance-create-reqv1"
INST_REINSTALL_REQV1 = "instance-reinstall-reqv1"
NODE_MIGRATE_REQV1 = "node-migrate-reqv1"
NODE_EVAC_RES1 = "node-evac-res1"
ALL_FEATURES = [INST_CREATE_REQV1, INST_REINSTALL_REQV1, NODE_MIGRATE_REQV1,
                NODE_EVAC_RES1]

#: How long GET /2/os waits for its diagnose job
OS_DIAGNOSE_TIMEOUT = 60.0

#: Fields of GET /2/os?bulk=1
OS_FIELDS = ["name", "valid", "variants", "parameters", "api_versions",
             "blacklisted", "hidden", "trusted"]


class R_root(baserlib.ResourceBase):
    """/: kept for old clients; answers null."""

    def GET(self) -> Any:
        return None


class R_2(R_root):
    """/2: kept for old clients; answers null."""


class R_version(baserlib.ResourceBase):
    """/version: the RAPI version (2)."""

    def GET(self) -> Any:
        return constants.RAPI_VERSION


class R_2_info(baserlib.ResourceBase):
    """/2/info: the cluster's settings."""

    def GET(self) -> Any:
        # Monitoring polls this often: the answer is the configuration's, so
        # it is kept until the configuration (or the master) changes
        return self._pool.cache.Get("cluster_info",
                                    lambda: self.GetClient().QueryClusterInfo())


class R_2_features(baserlib.ResourceBase):
    """/2/features: the optional features this server implements."""

    def GET(self) -> Any:
        return list(ALL_FEATURES)


def WaitForJobEnd(res: baserlib.ResourceBase, job_id: int,
                  timeout: float) -> tuple[str, list[Any]]:
    """Wait until a job ends; return its status and opresult (504 on timeout)."""
    client = res.GetClient()
    deadline = time.monotonic() + timeout
    prev_info: Any = None
    prev_serial: Any = None
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise baserlib.HttpGatewayTimeout(f"Job {job_id} did not finish in"
                                              f" {timeout:.0f} seconds")
        # The newest log serial seen: the master answers at once for newer
        # messages only, so the loop does not spin while the job logs
        result = client.WaitForJobChangeOnce(job_id, ["status"], prev_info,
                                             prev_serial, timeout=min(remaining, 10))
        if result == constants.JOB_NOTCHANGED:
            continue
        prev_info, log_entries = result[0], result[1]
        if log_entries:
            prev_serial = log_entries[-1][0]
        if prev_info[0] in constants.JOBS_FINALIZED:
            break
    status, opresult = client.QueryJobs([job_id], ["status", "opresult"])[0]
    return status, opresult


def JobError(opresult: list[Any]) -> tuple[type[BaseException], tuple] | None:
    """The first encoded error in a failed job's opresult, decoded."""
    for item in opresult or []:
        decoded = errors.GetEncodedError(item)
        if decoded is not None:
            return decoded
    return None


def WaitForJob(res: baserlib.ResourceBase, job_id: int,
               timeout: float) -> list[Any]:
    """Wait until a job ends; return its opresult, 502 if it failed."""
    status, opresult = WaitForJobEnd(res, job_id, timeout)
    if status != constants.JOB_STATUS_SUCCESS:
        decoded = JobError(opresult)
        message = decoded[1][0] if decoded and decoded[1] else status
        raise baserlib.HttpBadGateway(f"Job {job_id} failed: {message}")
    return opresult


class R_2_os(baserlib.ResourceBase):
    """/2/os: the operating systems (a diagnose job, as Ganeti does)."""

    def GET(self) -> Any:
        if self.useBulk():
            rows = self.QueryItems(constants.QR_OS, OS_FIELDS)
            return baserlib.MapBulkFields(rows, OS_FIELDS)
        op = opcodes.OpOsDiagnose(output_fields=["name", "variants"], names=[])
        job_id = self.SubmitJob([op])
        data = WaitForJob(self, job_id, OS_DIAGNOSE_TIMEOUT)[0]
        if not isinstance(data, list):
            raise baserlib.HttpBadGateway("Cannot get the OS list")
        names: list[str] = []
        for entry in data:
            name, variants = entry[0], entry[1] if len(entry) > 1 else None
            if variants:
                names.extend(f"{name}+{variant}" for variant in variants)
            else:
                names.append(name)
        return names


class R_2_redist_config(baserlib.OpcodeResource):
    """/2/redistribute-config: push the configuration to all nodes."""

    PUT_OPCODE = opcodes.OpClusterRedistConf


class R_2_cluster_modify(baserlib.OpcodeResource):
    """/2/modify: change cluster parameters."""

    PUT_OPCODE = opcodes.OpClusterSetParams


# --- tags ------------------------------------------------------------------------------

#: Query resource of each tag kind with a name
_TAG_RESOURCES = {
    constants.TAG_INSTANCE: constants.QR_INSTANCE,
    constants.TAG_NODE: constants.QR_NODE,
    constants.TAG_NODEGROUP: constants.QR_GROUP,
    constants.TAG_NETWORK: constants.QR_NETWORK,
}


class TagsResource(baserlib.OpcodeResource):
    """Base of the .../tags resources; subclasses set TAG_LEVEL.

    Tags to add or delete come as ``?tag=a&tag=b`` (Ganeti's client); a
    body holding a list of strings is accepted for PUT as the doc says.
    """

    TAG_LEVEL: ClassVar[str] = constants.TAG_CLUSTER
    PUT_OPCODE = opcodes.OpTagsSet
    DELETE_OPCODE = opcodes.OpTagsDel

    def _Name(self) -> str | None:
        return None if self.TAG_LEVEL == constants.TAG_CLUSTER else self.items[0]

    def GET(self) -> Any:
        if self.TAG_LEVEL == constants.TAG_CLUSTER:
            return list(self.GetClient().QueryClusterInfo().get("tags") or [])
        name = self._Name()
        assert name is not None
        rows = self.QueryItems(_TAG_RESOURCES[self.TAG_LEVEL], ["name", "tags"],
                               [name])
        return list(rows[0][1] or [])

    def _TagInput(self) -> tuple[dict[str, Any], dict[str, Any]]:
        tags = list(self.queryargs.get("tag", []))
        if not tags and self.req.has_body and self.request_body is not None:
            body = self.request_body
            if not (isinstance(body, list) and all(isinstance(t, str) for t in body)):
                raise http.HttpBadRequest("Tags must be given as ?tag=... query"
                                          " arguments or as a list of strings")
            tags = body
        return {}, {"kind": self.TAG_LEVEL, "name": self._Name(), "tags": tags,
                    "dry_run": self.dryRun()}

    def GetPutOpInput(self) -> tuple[dict[str, Any], dict[str, Any]]:
        return self._TagInput()

    def GetDeleteOpInput(self) -> tuple[dict[str, Any], dict[str, Any]]:
        return self._TagInput()


class R_2_tags(TagsResource):
    """/2/tags: cluster tags."""

    TAG_LEVEL = constants.TAG_CLUSTER


# --- query --------------------------------------------------------------------------

def _SplitFields(raw: str) -> list[str]:
    return [name.strip() for name in raw.split(",") if name.strip()]


def _CheckQueryResource(name: str) -> None:
    if name not in constants.QR_VIA_RAPI:
        raise http.HttpNotFound(f"Resource '{name}' cannot be queried; known:"
                                f" {', '.join(sorted(constants.QR_VIA_RAPI))}")


class R_2_query(baserlib.ResourceBase):
    """/2/query/[resource]: the query2 interface."""

    # Results may hold sensitive information
    GET_ACCESS = [RAPI_ACCESS_WRITE, RAPI_ACCESS_READ]
    PUT_ACCESS = GET_ACCESS

    def _Fields(self) -> list[str]:
        values = self.queryargs.get("fields")
        if not values:
            raise http.HttpBadRequest("Missing 'fields' query argument")
        return _SplitFields(values[0])

    def _Query(self, fields: Any, qfilter: Any) -> Any:
        _CheckQueryResource(self.items[0])
        return self.GetClient().Query(self.items[0], fields, qfilter)

    def GET(self) -> Any:
        return self._Query(self._Fields(), None)

    def PUT(self) -> Any:
        body = self.request_body if self.request_body is not None else {}
        baserlib.CheckType(body, dict, "Body contents")
        unknown = sorted(set(body) - {"fields", "qfilter", "filter"})
        if unknown:
            raise http.HttpBadRequest("Invalid body parameters: unknown"
                                      " parameter(s) " +
                                      ", ".join(f"'{k}'" for k in unknown))
        fields = body["fields"] if "fields" in body else self._Fields()
        if not (isinstance(fields, list) and all(isinstance(f, str) for f in fields)):
            raise http.HttpBadRequest("Parameter 'fields' must be a list of"
                                      " strings")
        qfilter = body.get("qfilter")
        if qfilter is None:
            qfilter = body.get("filter")
        if qfilter is not None and not isinstance(qfilter, list):
            raise http.HttpBadRequest("Parameter 'qfilter' must be null or a"
                                      " list (a filter)")
        return self._Query(fields, qfilter)


class R_2_query_fields(baserlib.ResourceBase):
    """/2/query/[resource]/fields: field descriptions."""

    def GET(self) -> Any:
        _CheckQueryResource(self.items[0])
        values = self.queryargs.get("fields")
        fields = _SplitFields(values[0]) if values else None
        return self.GetClient().QueryFields(self.items[0], fields)
