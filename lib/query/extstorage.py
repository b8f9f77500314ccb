"""The "extstorage" query resource: ExtStorage providers as the nodes report them.

One ``extstorage_diagnose`` call goes to every online, VM-capable node;
the answers are merged per provider (:func:`MergeDiagnose`). As in Ganeti,
a provider's state is computed per node group: it is valid for a group
when every node of the group that answered has it and finds it valid
(the first copy found on a node counts). Its parameters are those all the
nodes where it is valid share. Nodes that do not answer are left out
(they are reported in the daemon log).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from ganeti import constants, utils
from ganeti.constants import QFT_OTHER, QFT_TEXT
from ganeti.query.engine import FieldQuery, RegisterResource, Resource
from ganeti.query.fields import FieldDefinition, FieldTable

#: One provider on one node: (path, status, diagnose, parameters)
NodeEsEntry = tuple[str, bool, str, list[tuple[str, str]]]


@dataclass
class ExtStorageInfo:
    """One provider, merged over the nodes."""

    name: str
    #: node name -> [NodeEsEntry, ...] (empty: not found on that node)
    node_status: dict[str, list[NodeEsEntry]] = field(default_factory=dict)
    #: node group name -> whether the provider is valid on all its nodes
    nodegroup_status: dict[str, bool] = field(default_factory=dict)
    parameters: list[tuple[str, str]] = field(default_factory=list)


def _Entry(row: list[Any]) -> tuple[str, NodeEsEntry]:
    """(name, entry) from one extstorage_diagnose row."""
    name, path, status, diagnose, params = row[:5]
    return name, (path, bool(status), diagnose or "",
                  [(str(p[0]), str(p[1])) for p in params or []])


def MergeDiagnose(answers: dict[str, list[list[Any]]],
                  node_groups: dict[str, str]) -> list[ExtStorageInfo]:
    """Merge the extstorage_diagnose answers ({node name: rows}) per provider;
    ``node_groups`` maps each node name to its group's name."""
    per_provider: dict[str, dict[str, list[NodeEsEntry]]] = {}
    for node_name, rows in answers.items():
        for row in rows:
            name, entry = _Entry(row)
            per_provider.setdefault(name, {}).setdefault(node_name, []).append(entry)
    result = []
    for name in utils.NiceSort(per_provider):
        info = ExtStorageInfo(name=name)
        info.node_status = {node: per_provider[name].get(node, []) for node in answers}
        params: set[tuple[str, str]] | None = None
        for node, entries in info.node_status.items():
            valid = bool(entries) and entries[0][1]
            group = node_groups.get(node, "")
            info.nodegroup_status[group] = info.nodegroup_status.get(group, True) and valid
            if valid:
                node_params = set(entries[0][3])
                params = node_params if params is None else params & node_params
        info.parameters = sorted(params or [])
        result.append(info)
    return result


def _GetRpc(context: Any) -> Any:
    runner = getattr(context, "rpc", None)
    if runner is None:
        from ganeti.rpc.node import RpcRunner
        runner = RpcRunner.FromConfig(context.cfg)
    return runner


def DiagnoseNodes(context: Any) -> tuple[dict[str, list[list[Any]]], dict[str, str]]:
    """({node name: extstorage_diagnose rows}, {node name: group name}) of the
    online VM-capable nodes that answered."""
    snap = context.cfg.GetReadOnlySnapshot()
    nodes = [node for node in snap.nodes.values() if node.vm_capable and not node.offline]
    if not nodes:
        return {}, {}
    # A node that has not answered by the query deadline is left out
    results = _GetRpc(context).call_extstorage_diagnose(
        [node.uuid for node in nodes], read_timeout=constants.RPC_TMO_QUERY)
    answers, groups = {}, {}
    for node in utils.NiceSort(nodes, key=lambda n: n.name):
        res = results.get(node.uuid)
        if res is None or res.fail_msg or not isinstance(res.payload, list):
            logging.warning("Cannot get the ExtStorage providers of node %s: %s",
                            node.name, getattr(res, "fail_msg", "no answer"))
            continue
        answers[node.name] = res.payload
        group = snap.nodegroups.get(node.group)
        groups[node.name] = group.name if group is not None else str(node.group)
    return answers, groups


def _PlainEntry(entry: NodeEsEntry) -> list[Any]:
    path, status, diagnose, params = entry
    return [path, status, diagnose, [list(param) for param in params]]


def _Def(name: str, title: str, kind: str, doc: str, getter: Any) -> FieldDefinition:
    return FieldDefinition(name, title, kind, doc, getter)


#: The ExtStorage fields (Ganeti's)
EXTSTORAGE_FIELDS = FieldTable(constants.QR_EXTSTORAGE, [
    _Def("name", "Name", QFT_TEXT, "ExtStorage provider name",
         lambda ctx, info: info.name),
    _Def("node_status", "NodeStatus", QFT_OTHER,
         "Status from node: [path, valid, diagnose, parameters] per copy found",
         lambda ctx, info: {node: [_PlainEntry(entry) for entry in entries]
                            for node, entries in info.node_status.items()}),
    _Def("nodegroup_status", "NodegroupStatus", QFT_OTHER,
         "Overall validity within each node group",
         lambda ctx, info: dict(info.nodegroup_status)),
    _Def("parameters", "Parameters", QFT_OTHER,
         "ExtStorage provider parameters: [name, description] pairs",
         lambda ctx, info: [list(param) for param in info.parameters]),
])


def CollectExtStorage(query: FieldQuery, context: Any
                      ) -> tuple[None, list[ExtStorageInfo]]:
    """The collector of the "extstorage" resource."""
    providers = MergeDiagnose(*DiagnoseNodes(context))
    names = query.RequestedNames()
    if names is not None:
        wanted = set(names)
        providers = [info for info in providers if info.name in wanted]
    return None, providers


EXTSTORAGE_RESOURCE = RegisterResource(Resource(
    name=constants.QR_EXTSTORAGE, fields=EXTSTORAGE_FIELDS, collect=CollectExtStorage,
    namefield="name", sort_key=lambda info: utils.NiceSortKey(info.name)))
