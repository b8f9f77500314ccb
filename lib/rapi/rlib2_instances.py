"""RAPI resources of instances: /2/instances and everything below it."""

from __future__ import annotations

from typing import Any

from ganeti import constants, errors, http, ht, opcodes
from ganeti.rapi import RAPI_ACCESS_WRITE, baserlib
from ganeti.rapi.rlib2_cluster import JobError, TagsResource, WaitForJobEnd
from ganeti.rapi.rlib2_nodes import COMMON_FIELDS

I_FIELDS = ["name", "admin_state", "os", "pnode", "snodes", "disk_template",
            "nic.ips", "nic.macs", "nic.modes", "nic.uuids", "nic.names",
            "nic.links", "nic.networks", "nic.networks.names", "nic.bridges",
            "network_port", "disk.sizes", "disk.spindles", "disk_usage",
            "disk.uuids", "disk.names", "beparams", "hvparams", "oper_state",
            "oper_ram", "oper_vcpus", "status", "custom_hvparams",
            "custom_beparams", "custom_nicparams"] + COMMON_FIELDS

#: Body field carrying the version of an instance creation request
REQ_DATA_VERSION = "__version__"


class R_2_instances(baserlib.OpcodeResource):
    """/2/instances: all instances; POST creates one (request version 1)."""

    POST_OPCODE = opcodes.OpInstanceCreate
    POST_RENAME = {"os": "os_type", "name": "instance_name"}

    def GET(self) -> Any:
        if self.useBulk():
            return baserlib.MapBulkFields(
                self.QueryItems(constants.QR_INSTANCE, I_FIELDS), I_FIELDS)
        names = [row[0] for row in self.QueryItems(constants.QR_INSTANCE, ["name"])]
        return baserlib.BuildUriList(names, "/2/instances/%s",
                                     uri_fields=("id", "uri"))

    def GetPostOpInput(self) -> tuple[Any, dict[str, Any]]:
        baserlib.CheckType(self.request_body, dict, "Body contents")
        version = self.request_body.get(REQ_DATA_VERSION, 0)
        if version == 0:
            raise http.HttpBadRequest("Instance creation request version 0 is no"
                                      " longer supported; send '__version__': 1")
        if version != 1:
            raise http.HttpBadRequest(f"Unsupported request data version {version!r}")
        data = dict(self.request_body)
        del data[REQ_DATA_VERSION]
        return data, {"dry_run": self.dryRun()}


class R_2_instances_multi_alloc(baserlib.OpcodeResource):
    """/2/instances-multi-alloc: allocate several instances at once."""

    POST_OPCODE = opcodes.OpInstanceMultiAlloc

    def GetPostOpInput(self) -> tuple[Any, dict[str, Any]]:
        body = self.request_body
        baserlib.CheckType(body, dict, "Body contents")
        instances = body.get("instances")
        if not isinstance(instances, list):
            raise http.HttpBadRequest("Parameter 'instances' must be a list of"
                                      " instance creation requests")
        ops = []
        for idx, inst in enumerate(instances):
            if not isinstance(inst, dict):
                raise http.HttpBadRequest(f"Instance {idx} of 'instances' is not"
                                          " a dictionary")
            ops.append(baserlib.FillOpcode(opcodes.OpInstanceCreate, inst, {},
                                           rename=R_2_instances.POST_RENAME))
        data = dict(body)
        data["instances"] = ops
        return data, {"dry_run": self.dryRun()}


class R_2_instances_name(baserlib.OpcodeResource):
    """/2/instances/[instance_name]: one instance; DELETE removes it."""

    DELETE_OPCODE = opcodes.OpInstanceRemove

    def GET(self) -> Any:
        rows = self.QueryItems(constants.QR_INSTANCE, I_FIELDS, [self.items[0]])
        return baserlib.MapFields(I_FIELDS, rows[0])

    def GetDeleteOpInput(self) -> tuple[Any, dict[str, Any]]:
        return {}, {"instance_name": self.items[0], "ignore_failures": False,
                    "dry_run": self.dryRun()}


class R_2_instances_name_info(baserlib.OpcodeResource):
    """/2/instances/[instance_name]/info: detailed data (a job)."""

    GET_OPCODE = opcodes.OpInstanceQueryData

    def GetGetOpInput(self) -> tuple[Any, dict[str, Any]]:
        return {}, {"instances": [self.items[0]],
                    "static": bool(self._checkIntVariable("static"))}


class R_2_instances_name_reboot(baserlib.OpcodeResource):
    """/2/instances/[instance_name]/reboot?type=soft|hard|full."""

    POST_OPCODE = opcodes.OpInstanceReboot

    def GetPostOpInput(self) -> tuple[Any, dict[str, Any]]:
        return self.request_body, {
            "instance_name": self.items[0],
            "reboot_type": self._checkStringVariable(
                "type", constants.INSTANCE_REBOOT_HARD),
            "ignore_secondaries": bool(self._checkIntVariable("ignore_secondaries")),
            "dry_run": self.dryRun()}


class R_2_instances_name_startup(baserlib.OpcodeResource):
    """/2/instances/[instance_name]/startup."""

    PUT_OPCODE = opcodes.OpInstanceStartup

    def GetPutOpInput(self) -> tuple[Any, dict[str, Any]]:
        return self.request_body, {
            "instance_name": self.items[0], "force": self.useForce(),
            "dry_run": self.dryRun(),
            "no_remember": bool(self._checkIntVariable("no_remember"))}


class R_2_instances_name_shutdown(baserlib.OpcodeResource):
    """/2/instances/[instance_name]/shutdown."""

    PUT_OPCODE = opcodes.OpInstanceShutdown

    def GetPutOpInput(self) -> tuple[Any, dict[str, Any]]:
        return self.request_body, {
            "instance_name": self.items[0], "dry_run": self.dryRun(),
            "no_remember": bool(self._checkIntVariable("no_remember"))}


class R_2_instances_name_reinstall(baserlib.OpcodeResource):
    """/2/instances/[instance_name]/reinstall: shutdown, reinstall, startup."""

    POST_OPCODE = opcodes.OpInstanceReinstall

    def POST(self) -> Any:
        name = self.items[0]
        legacy = {k for k in self.queryargs if k in ("os", "nostartup")}
        if self.req.has_body and self.request_body is not None:
            if legacy:
                raise http.HttpBadRequest("Can't combine query and body parameters")
            body = self.request_body
        elif legacy:
            body = {"os": self._checkStringVariable("os"),
                    "start": not self._checkIntVariable("nostartup")}
        else:
            body = {}
        baserlib.CheckType(body, dict, "Body contents")
        unknown = sorted(set(body) - {"os", "start", "osparams"})
        if unknown:
            raise http.HttpBadRequest("Invalid body parameters: unknown"
                                      " parameter(s) " +
                                      ", ".join(f"'{k}'" for k in unknown))
        start = baserlib.CheckParameter(body, "start", True, bool)
        ops = [
            baserlib.FillOpcode(opcodes.OpInstanceShutdown, {},
                                {"instance_name": name}),
            baserlib.FillOpcode(opcodes.OpInstanceReinstall, {},
                                {"instance_name": name,
                                 "os_type": body.get("os"),
                                 "osparams": body.get("osparams")}),
        ]
        if start:
            ops.append(baserlib.FillOpcode(opcodes.OpInstanceStartup, {},
                                           {"instance_name": name,
                                            "force": False}))
        return self.SubmitJob(ops)


class R_2_instances_name_replace_disks(baserlib.OpcodeResource):
    """/2/instances/[instance_name]/replace-disks."""

    POST_OPCODE = opcodes.OpInstanceReplaceDisks

    def GetPostOpInput(self) -> tuple[Any, dict[str, Any]]:
        if self.req.has_body and self.request_body:
            data = self.request_body
            baserlib.CheckType(data, dict, "Body contents")
            data = dict(data)
        elif self.queryargs:
            # Ganeti 2.4's query arguments
            data = {k: self._checkStringVariable(k)
                    for k in ("remote_node", "mode", "disks", "iallocator")
                    if k in self.queryargs}
        else:
            data = {}
        raw_disks = data.pop("disks", None)
        if raw_disks:
            if ht.TListOf(ht.TInt)(raw_disks):
                data["disks"] = raw_disks
            elif isinstance(raw_disks, str):
                try:
                    data["disks"] = [int(part) for part in raw_disks.split(",")]
                except ValueError:
                    raise http.HttpBadRequest(
                        f"Invalid disk index list {raw_disks!r}: expected"
                        " integers separated by commas") from None
            else:
                raise http.HttpBadRequest(f"Invalid disk index list {raw_disks!r}")
        return data, {"instance_name": self.items[0]}


class R_2_instances_name_activate_disks(baserlib.OpcodeResource):
    """/2/instances/[instance_name]/activate-disks?ignore_size=0|1."""

    PUT_OPCODE = opcodes.OpInstanceActivateDisks

    def GetPutOpInput(self) -> tuple[Any, dict[str, Any]]:
        return self.request_body, {
            "instance_name": self.items[0],
            "ignore_size": bool(self._checkIntVariable("ignore_size"))}


class R_2_instances_name_deactivate_disks(baserlib.OpcodeResource):
    """/2/instances/[instance_name]/deactivate-disks."""

    PUT_OPCODE = opcodes.OpInstanceDeactivateDisks

    def GetPutOpInput(self) -> tuple[Any, dict[str, Any]]:
        return self.request_body, {"instance_name": self.items[0]}


class R_2_instances_name_recreate_disks(baserlib.OpcodeResource):
    """/2/instances/[instance_name]/recreate-disks."""

    POST_OPCODE = opcodes.OpInstanceRecreateDisks

    def GetPostOpInput(self) -> tuple[Any, dict[str, Any]]:
        return self.request_body, {"instance_name": self.items[0]}


class R_2_instances_name_disk_grow(baserlib.OpcodeResource):
    """/2/instances/[instance_name]/disk/[disk_index]/grow."""

    POST_OPCODE = opcodes.OpInstanceGrowDisk

    def GetPostOpInput(self) -> tuple[Any, dict[str, Any]]:
        disk = baserlib.ParseNonNegativeInt(self.items[1], "disk index")
        return self.request_body, {"instance_name": self.items[0], "disk": disk}


class R_2_instances_name_prepare_export(baserlib.OpcodeResource):
    """/2/instances/[instance_name]/prepare-export?mode=..."""

    PUT_OPCODE = opcodes.OpBackupPrepare

    def GetPutOpInput(self) -> tuple[Any, dict[str, Any]]:
        return self.request_body, {"instance_name": self.items[0],
                                   "mode": self._checkStringVariable("mode")}


class R_2_instances_name_export(baserlib.OpcodeResource):
    """/2/instances/[instance_name]/export: PUT exports, DELETE removes."""

    PUT_OPCODE = opcodes.OpBackupExport
    PUT_RENAME = {"destination": "target_node"}
    DELETE_OPCODE = opcodes.OpBackupRemove

    def GetPutOpInput(self) -> tuple[Any, dict[str, Any]]:
        return self.request_body, {"instance_name": self.items[0]}

    def GetDeleteOpInput(self) -> tuple[Any, dict[str, Any]]:
        return self.request_body, {"instance_name": self.items[0]}


class R_2_instances_name_migrate(baserlib.OpcodeResource):
    """/2/instances/[instance_name]/migrate."""

    PUT_OPCODE = opcodes.OpInstanceMigrate

    def GetPutOpInput(self) -> tuple[Any, dict[str, Any]]:
        return self.request_body, {"instance_name": self.items[0]}


class R_2_instances_name_failover(baserlib.OpcodeResource):
    """/2/instances/[instance_name]/failover."""

    PUT_OPCODE = opcodes.OpInstanceFailover

    def GetPutOpInput(self) -> tuple[Any, dict[str, Any]]:
        return self.request_body, {"instance_name": self.items[0]}


class R_2_instances_name_change_group(baserlib.OpcodeResource):
    """/2/instances/[instance_name]/change-group (body: iallocator,
    target_groups, early_release)."""

    PUT_OPCODE = opcodes.OpInstanceChangeGroup

    def GetPutOpInput(self) -> tuple[Any, dict[str, Any]]:
        return self.request_body, {"instance_name": self.items[0]}


class R_2_instances_name_rename(baserlib.OpcodeResource):
    """/2/instances/[instance_name]/rename."""

    PUT_OPCODE = opcodes.OpInstanceRename

    def GetPutOpInput(self) -> tuple[Any, dict[str, Any]]:
        return self.request_body, {"instance_name": self.items[0]}


class R_2_instances_name_modify(baserlib.OpcodeResource):
    """/2/instances/[instance_name]/modify."""

    PUT_OPCODE = opcodes.OpInstanceSetParams

    def GetPutOpInput(self) -> tuple[Any, dict[str, Any]]:
        return self.request_body, {"instance_name": self.items[0]}


#: How long GET .../console waits for its OpInstanceConsole job
CONSOLE_TIMEOUT = 60


class R_2_instances_name_console(baserlib.ResourceBase):
    """/2/instances/[instance_name]/console: how to reach the console.

    The instance query has no console field here (Ganeti's asks the
    hypervisor from its query); the answer comes from an OpInstanceConsole
    job, as ``gnt-instance console`` gets it. 503 when the instance is not
    running, as Ganeti answers.
    """

    GET_ACCESS = [RAPI_ACCESS_WRITE]

    def GET(self) -> Any:
        name = self.items[0]
        job_id = self.SubmitJob([baserlib.FillOpcode(opcodes.OpInstanceConsole, {},
                                                     {"instance_name": name})])
        status, opresult = WaitForJobEnd(self, job_id, CONSOLE_TIMEOUT)
        if status != constants.JOB_STATUS_SUCCESS:
            decoded = JobError(opresult)
            message = str(decoded[1][0]) if decoded and decoded[1] else status
            if decoded and issubclass(decoded[0], errors.OpPrereqError) and \
                    errors.ECODE_NOENT in decoded[1]:
                raise http.HttpNotFound(message)
            if decoded and issubclass(decoded[0], (errors.OpExecError,
                                                   errors.OpPrereqError)):
                raise http.HttpServiceUnavailable(
                    f"Instance console unavailable: {message}")
            raise baserlib.HttpBadGateway(f"Job {job_id} failed: {message}")
        console = opresult[0] if opresult else None
        if not isinstance(console, dict):
            raise baserlib.HttpBadGateway("Invalid console data from the master")
        return console


class R_2_instances_name_tags(TagsResource):
    """/2/instances/[instance_name]/tags."""

    TAG_LEVEL = constants.TAG_INSTANCE
