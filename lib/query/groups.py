"""The "group" query resource: node groups, with Ganeti's basic fields.

Items are ``objects.NodeGroup`` copies; every field comes from the
configuration (``context.cfg``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ganeti import constants, errors, utils
from ganeti.constants import QFT_NUMBER, QFT_OTHER, QFT_TEXT, QFT_TIMESTAMP
from ganeti.query.engine import FieldQuery, RegisterResource, Resource
from ganeti.query.fields import UNAVAIL, FieldDefinition, FieldTable

GQ_NODES = "nodes"
GQ_INST = "inst"


@dataclass
class GroupQueryData:
    """What the getters share: the cluster, node names and instances."""

    cluster: Any = None
    members: dict[str, list[str]] = field(default_factory=dict)
    instances: dict[str, list[str]] = field(default_factory=dict)


def _Def(name: str, title: str, kind: str, doc: str, getter: Any,
         data: Any = None) -> FieldDefinition:
    return FieldDefinition(name, title, kind, doc, getter, data=data)


def _filled(what: str) -> Any:
    def getter(ctx: GroupQueryData, group: Any) -> Any:
        if ctx.cluster is None:
            return UNAVAIL
        if what == "ndparams":
            return ctx.cluster.SimpleFillND(group.ndparams or {})
        if what == "ipolicy":
            return ctx.cluster.SimpleFillIPolicy(group.ipolicy or {})
        return ctx.cluster.SimpleFillDP(group.diskparams or {})
    return getter


#: The group fields
GROUP_FIELDS = FieldTable(constants.QR_GROUP, [
    _Def("name", "Group", QFT_TEXT, "Group name", lambda ctx, group: group.name),
    _Def("uuid", "UUID", QFT_TEXT, "Group UUID", lambda ctx, group: group.uuid),
    _Def("alloc_policy", "AllocPolicy", QFT_TEXT, "Allocation policy for group",
         lambda ctx, group: group.alloc_policy),
    _Def("node_cnt", "Nodes", QFT_NUMBER, "Number of nodes",
         lambda ctx, group: len(ctx.members.get(group.uuid, [])), data=GQ_NODES),
    _Def("node_list", "NodeList", QFT_OTHER, "List of nodes",
         lambda ctx, group: utils.NiceSort(ctx.members.get(group.uuid, [])),
         data=GQ_NODES),
    _Def("pinst_cnt", "Instances", QFT_NUMBER,
         "Number of primary instances",
         lambda ctx, group: len(ctx.instances.get(group.uuid, [])), data=GQ_INST),
    _Def("pinst_list", "InstanceList", QFT_OTHER,
         "List of primary instances",
         lambda ctx, group: utils.NiceSort(ctx.instances.get(group.uuid, [])),
         data=GQ_INST),
    _Def("ndparams", "NDParams", QFT_OTHER, "Node parameters",
         _filled("ndparams")),
    _Def("custom_ndparams", "CustomNDParams", QFT_OTHER, "Custom node parameters",
         lambda ctx, group: dict(group.ndparams or {})),
    _Def("ipolicy", "InstancePolicy", QFT_OTHER, "Instance policy limitations",
         _filled("ipolicy")),
    _Def("custom_ipolicy", "CustomInstancePolicy", QFT_OTHER,
         "Custom instance policy limitations",
         lambda ctx, group: dict(group.ipolicy or {})),
    _Def("diskparams", "DiskParameters", QFT_OTHER, "Disk parameters (merged)",
         _filled("diskparams")),
    _Def("custom_diskparams", "CustomDiskParameters", QFT_OTHER,
         "Custom disk parameters", lambda ctx, group: dict(group.diskparams or {})),
    _Def("networks", "Networks", QFT_OTHER, "Networks connected to the group",
         lambda ctx, group: sorted((group.networks or {}).keys())),
    _Def("serial_no", "SerialNo", QFT_NUMBER, "Group object serial number,"
         " incremented on each modification", lambda ctx, group: group.serial_no),
    _Def("ctime", "CTime", QFT_TIMESTAMP, "Creation timestamp",
         lambda ctx, group: group.ctime if group.ctime is not None else UNAVAIL),
    _Def("mtime", "MTime", QFT_TIMESTAMP, "Modification timestamp",
         lambda ctx, group: group.mtime if group.mtime is not None else UNAVAIL),
    _Def("tags", "Tags", QFT_OTHER, "Tags",
         lambda ctx, group: sorted(group.tags or [])),
])


def _CollectGroups(query: FieldQuery, context: Any
                   ) -> tuple[GroupQueryData, list[Any]]:
    cfg = context.cfg
    groups = list(cfg.GetAllNodeGroupsInfo().values())
    names = query.RequestedNames()
    if names is not None:
        # Groups are named exactly; their UUIDs name them too
        known = {group.name for group in groups} | {group.uuid for group in groups}
        missing = [str(name) for name in names if name not in known]
        if missing:
            raise errors.OpPrereqError(
                f"Some groups do not exist: {', '.join(missing)}", errors.ECODE_NOENT)
    requested = query.RequestedData()
    ctx = GroupQueryData(cluster=cfg.GetClusterInfo())
    if GQ_NODES in requested or GQ_INST in requested:
        nodes = cfg.GetAllNodesInfo()
        for node in nodes.values():
            ctx.members.setdefault(node.group, []).append(node.name)
        if GQ_INST in requested:
            for inst in cfg.GetAllInstancesInfo().values():
                node = nodes.get(inst.primary_node)
                if node is not None:
                    ctx.instances.setdefault(node.group, []).append(inst.name)
    return ctx, groups


GROUP_RESOURCE = RegisterResource(Resource(
    name=constants.QR_GROUP, fields=GROUP_FIELDS, collect=_CollectGroups,
    namefield="name", sort_key=lambda group: utils.NiceSortKey(group.name)))
