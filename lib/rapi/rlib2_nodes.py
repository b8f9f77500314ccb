"""RAPI resources of nodes, node groups and networks."""

from __future__ import annotations

from typing import Any

from ganeti import constants, http, opcodes
from ganeti.rapi import RAPI_ACCESS_WRITE, baserlib
from ganeti.rapi.rlib2_cluster import TagsResource

COMMON_FIELDS = ["ctime", "mtime", "uuid", "serial_no", "tags"]

N_FIELDS = ["name", "offline", "master_candidate", "drained", "dtotal", "dfree",
            "sptotal", "spfree", "mtotal", "mnode", "mfree",
            "pinst_cnt", "sinst_cnt", "ctotal", "cnos", "cnodes", "csockets",
            "pip", "sip", "role", "pinst_list", "sinst_list", "master_capable",
            "vm_capable", "ndparams", "group.uuid"] + COMMON_FIELDS

G_FIELDS = ["alloc_policy", "name", "node_cnt", "node_list", "ipolicy",
            "custom_ipolicy", "diskparams", "custom_diskparams", "ndparams",
            "custom_ndparams"] + COMMON_FIELDS

NET_FIELDS = ["name", "network", "gateway", "network6", "gateway6",
              "mac_prefix", "free_count", "reserved_count", "map", "group_list",
              "inst_list", "external_reservations"] + COMMON_FIELDS

# Node roles as RAPI names them
NR_DRAINED = "drained"
NR_MASTER_CANDIDATE = "master-candidate"
NR_MASTER = "master"
NR_OFFLINE = "offline"
NR_REGULAR = "regular"
NR_MAP = {
    constants.NR_MASTER: NR_MASTER,
    constants.NR_MCANDIDATE: NR_MASTER_CANDIDATE,
    constants.NR_DRAINED: NR_DRAINED,
    constants.NR_OFFLINE: NR_OFFLINE,
    constants.NR_REGULAR: NR_REGULAR,
}


# --- nodes ----------------------------------------------------------------------------

class R_2_nodes(baserlib.ResourceBase):
    """/2/nodes: all nodes."""

    def GET(self) -> Any:
        if self.useBulk():
            return baserlib.MapBulkFields(
                self.QueryItems(constants.QR_NODE, N_FIELDS), N_FIELDS)
        names = [row[0] for row in self.QueryItems(constants.QR_NODE, ["name"])]
        return baserlib.BuildUriList(names, "/2/nodes/%s", uri_fields=("id", "uri"))


class R_2_nodes_name(baserlib.ResourceBase):
    """/2/nodes/[node_name]: one node."""

    def GET(self) -> Any:
        rows = self.QueryItems(constants.QR_NODE, N_FIELDS, [self.items[0]])
        return baserlib.MapFields(N_FIELDS, rows[0])


class R_2_nodes_name_powercycle(baserlib.OpcodeResource):
    """/2/nodes/[node_name]/powercycle."""

    POST_OPCODE = opcodes.OpNodePowercycle

    def GetPostOpInput(self) -> tuple[Any, dict[str, Any]]:
        return self.request_body, {"node_name": self.items[0],
                                   "force": self.useForce()}


class R_2_nodes_name_role(baserlib.OpcodeResource):
    """/2/nodes/[node_name]/role: the node's role (a JSON string)."""

    PUT_OPCODE = opcodes.OpNodeSetParams

    def GET(self) -> Any:
        rows = self.QueryItems(constants.QR_NODE, ["name", "role"], [self.items[0]])
        role = rows[0][1]
        if role not in NR_MAP:
            raise baserlib.HttpBadGateway(f"Unknown node role {role!r}")
        return NR_MAP[role]

    def GetPutOpInput(self) -> tuple[Any, dict[str, Any]]:
        role = self.request_body
        baserlib.CheckType(role, str, "Body contents")
        candidate = offline = drained = None
        if role == NR_REGULAR:
            candidate = offline = drained = False
        elif role == NR_MASTER_CANDIDATE:
            candidate = True
        elif role == NR_DRAINED:
            drained = True
        elif role == NR_OFFLINE:
            offline = True
        else:
            raise http.HttpBadRequest(
                f"Can't set '{role}' role; valid: {NR_REGULAR},"
                f" {NR_MASTER_CANDIDATE}, {NR_DRAINED}, {NR_OFFLINE}")
        return {}, {"node_name": self.items[0], "master_candidate": candidate,
                    "offline": offline, "drained": drained,
                    "force": self.useForce(),
                    "auto_promote": bool(self._checkIntVariable("auto-promote"))}


class R_2_nodes_name_evacuate(baserlib.OpcodeResource):
    """/2/nodes/[node_name]/evacuate."""

    POST_OPCODE = opcodes.OpNodeEvacuate

    def GetPostOpInput(self) -> tuple[Any, dict[str, Any]]:
        return self.request_body, {"node_name": self.items[0],
                                   "dry_run": self.dryRun()}


class R_2_nodes_name_migrate(baserlib.OpcodeResource):
    """/2/nodes/[node_name]/migrate (body, or the old query arguments)."""

    POST_OPCODE = opcodes.OpNodeMigrate

    def GetPostOpInput(self) -> tuple[Any, dict[str, Any]]:
        legacy = {k: v for k, v in self.queryargs.items()
                  if k in ("live", "mode")}
        if legacy:
            if "live" in legacy and "mode" in legacy:
                raise http.HttpBadRequest("Only one of 'live' and 'mode' should"
                                          " be passed")
            mode: str | None
            if "live" in legacy:
                mode = constants.HT_MIGRATION_LIVE \
                    if self._checkIntVariable("live", 1) \
                    else constants.HT_MIGRATION_NONLIVE
            else:
                mode = self._checkStringVariable("mode")
            data: Any = {"mode": mode}
        else:
            data = self.request_body
        return data, {"node_name": self.items[0]}


class R_2_nodes_name_modify(baserlib.OpcodeResource):
    """/2/nodes/[node_name]/modify."""

    POST_OPCODE = opcodes.OpNodeSetParams

    def GetPostOpInput(self) -> tuple[Any, dict[str, Any]]:
        return self.request_body, {"node_name": self.items[0]}


class R_2_nodes_name_storage(baserlib.OpcodeResource):
    """/2/nodes/[node_name]/storage: list storage units (a job)."""

    # The LU takes locks
    GET_ACCESS = [RAPI_ACCESS_WRITE]
    GET_OPCODE = opcodes.OpNodeQueryStorage

    def GetGetOpInput(self) -> tuple[Any, dict[str, Any]]:
        output_fields = self._checkStringVariable("output_fields")
        if not output_fields:
            raise http.HttpBadRequest("Missing the required 'output_fields'"
                                      " parameter")
        return {}, {"nodes": [self.items[0]],
                    "storage_type": self._checkStringVariable("storage_type"),
                    "output_fields": output_fields.split(",")}


class R_2_nodes_name_storage_modify(baserlib.OpcodeResource):
    """/2/nodes/[node_name]/storage/modify."""

    PUT_OPCODE = opcodes.OpNodeModifyStorage

    def GetPutOpInput(self) -> tuple[Any, dict[str, Any]]:
        name = self._checkStringVariable("name")
        if not name:
            raise http.HttpBadRequest("Missing the required 'name' parameter")
        changes = {}
        if "allocatable" in self.queryargs:
            changes[constants.SF_ALLOCATABLE] = \
                bool(self._checkIntVariable("allocatable", 1))
        return {}, {"node_name": self.items[0],
                    "storage_type": self._checkStringVariable("storage_type"),
                    "name": name, "changes": changes}


class R_2_nodes_name_storage_repair(baserlib.OpcodeResource):
    """/2/nodes/[node_name]/storage/repair."""

    PUT_OPCODE = opcodes.OpRepairNodeStorage

    def GetPutOpInput(self) -> tuple[Any, dict[str, Any]]:
        name = self._checkStringVariable("name")
        if not name:
            raise http.HttpBadRequest("Missing the required 'name' parameter")
        return {}, {"node_name": self.items[0],
                    "storage_type": self._checkStringVariable("storage_type"),
                    "name": name}


class R_2_nodes_name_tags(TagsResource):
    """/2/nodes/[node_name]/tags."""

    TAG_LEVEL = constants.TAG_NODE


# --- groups ---------------------------------------------------------------------------

class R_2_groups(baserlib.OpcodeResource):
    """/2/groups: all node groups; POST adds one."""

    POST_OPCODE = opcodes.OpGroupAdd
    POST_RENAME = {"name": "group_name"}

    def GET(self) -> Any:
        if self.useBulk():
            return baserlib.MapBulkFields(
                self.QueryItems(constants.QR_GROUP, G_FIELDS), G_FIELDS)
        names = [row[0] for row in self.QueryItems(constants.QR_GROUP, ["name"])]
        return baserlib.BuildUriList(names, "/2/groups/%s", uri_fields=("name", "uri"))

    def GetPostOpInput(self) -> tuple[Any, dict[str, Any]]:
        return self.request_body, {"dry_run": self.dryRun()}


class R_2_groups_name(baserlib.OpcodeResource):
    """/2/groups/[group_name]: one group; DELETE removes it."""

    DELETE_OPCODE = opcodes.OpGroupRemove

    def GET(self) -> Any:
        rows = self.QueryItems(constants.QR_GROUP, G_FIELDS, [self.items[0]])
        return baserlib.MapFields(G_FIELDS, rows[0])

    def GetDeleteOpInput(self) -> tuple[Any, dict[str, Any]]:
        return {}, {"group_name": self.items[0], "dry_run": self.dryRun()}


class R_2_groups_name_modify(baserlib.OpcodeResource):
    """/2/groups/[group_name]/modify."""

    PUT_OPCODE = opcodes.OpGroupSetParams

    def GetPutOpInput(self) -> tuple[Any, dict[str, Any]]:
        return self.request_body, {"group_name": self.items[0]}


class R_2_groups_name_rename(baserlib.OpcodeResource):
    """/2/groups/[group_name]/rename."""

    PUT_OPCODE = opcodes.OpGroupRename

    def GetPutOpInput(self) -> tuple[Any, dict[str, Any]]:
        return self.request_body, {"group_name": self.items[0],
                                   "dry_run": self.dryRun()}


class R_2_groups_name_assign_nodes(baserlib.OpcodeResource):
    """/2/groups/[group_name]/assign-nodes."""

    PUT_OPCODE = opcodes.OpGroupAssignNodes

    def GetPutOpInput(self) -> tuple[Any, dict[str, Any]]:
        return self.request_body, {"group_name": self.items[0],
                                   "dry_run": self.dryRun(),
                                   "force": self.useForce()}


class R_2_groups_name_evacuate(baserlib.OpcodeResource):
    """/2/groups/[group_name]/evacuate (body: iallocator, target_groups,
    early_release, sequential, force_failover)."""

    POST_OPCODE = opcodes.OpGroupEvacuate

    def GetPostOpInput(self) -> tuple[Any, dict[str, Any]]:
        return self.request_body, {"group_name": self.items[0]}


class R_2_groups_name_tags(TagsResource):
    """/2/groups/[group_name]/tags."""

    TAG_LEVEL = constants.TAG_NODEGROUP


# --- networks ---------------------------------------------------------------------------

class R_2_networks(baserlib.OpcodeResource):
    """/2/networks: all networks; POST adds one."""

    POST_OPCODE = opcodes.OpNetworkAdd

    def GET(self) -> Any:
        if self.useBulk():
            return baserlib.MapBulkFields(
                self.QueryItems(constants.QR_NETWORK, NET_FIELDS), NET_FIELDS)
        names = [row[0] for row in self.QueryItems(constants.QR_NETWORK, ["name"])]
        return baserlib.BuildUriList(names, "/2/networks/%s",
                                     uri_fields=("name", "uri"))

    def GetPostOpInput(self) -> tuple[Any, dict[str, Any]]:
        return self.request_body, {"dry_run": self.dryRun()}


class R_2_networks_name(baserlib.OpcodeResource):
    """/2/networks/[network_name]: one network; DELETE removes it."""

    DELETE_OPCODE = opcodes.OpNetworkRemove

    def GET(self) -> Any:
        rows = self.QueryItems(constants.QR_NETWORK, NET_FIELDS, [self.items[0]])
        return baserlib.MapFields(NET_FIELDS, rows[0])

    def GetDeleteOpInput(self) -> tuple[Any, dict[str, Any]]:
        return {}, {"network_name": self.items[0], "dry_run": self.dryRun()}


class R_2_networks_name_modify(baserlib.OpcodeResource):
    """/2/networks/[network_name]/modify."""

    PUT_OPCODE = opcodes.OpNetworkSetParams

    def GetPutOpInput(self) -> tuple[Any, dict[str, Any]]:
        return self.request_body, {"network_name": self.items[0]}


class R_2_networks_name_connect(baserlib.OpcodeResource):
    """/2/networks/[network_name]/connect."""

    PUT_OPCODE = opcodes.OpNetworkConnect

    def GetPutOpInput(self) -> tuple[Any, dict[str, Any]]:
        return self.request_body, {"network_name": self.items[0],
                                   "dry_run": self.dryRun()}


class R_2_networks_name_disconnect(baserlib.OpcodeResource):
    """/2/networks/[network_name]/disconnect."""

    PUT_OPCODE = opcodes.OpNetworkDisconnect

    def GetPutOpInput(self) -> tuple[Any, dict[str, Any]]:
        return self.request_body, {"network_name": self.items[0],
                                   "dry_run": self.dryRun()}


class R_2_networks_name_rename(baserlib.OpcodeResource):
    """/2/networks/[network_name]/rename."""

    PUT_OPCODE = opcodes.OpNetworkRename

    def GetPutOpInput(self) -> tuple[Any, dict[str, Any]]:
        return self.request_body, {"network_name": self.items[0],
                                   "dry_run": self.dryRun()}


class R_2_networks_name_tags(TagsResource):
    """/2/networks/[network_name]/tags."""

    TAG_LEVEL = constants.TAG_NETWORK
