"""The "os" query resource: OS definitions as the nodes report them.

One ``os_diagnose`` call goes to every online, VM-capable node; the
answers are merged per OS name (:func:`MergeDiagnose`). An OS is valid
when every node that answered has it and finds it valid; its variants,
parameters and API versions are those all nodes share. ``hidden``,
``blacklisted``, ``os_hvp`` and ``osparams`` come from the cluster
configuration (seed 000, "New OS states"). Nodes that do not answer are
left out (they are reported in the daemon log).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from ganeti import constants, utils
from ganeti.constants import QFT_BOOL, QFT_OTHER, QFT_TEXT
from ganeti.query.engine import FieldQuery, RegisterResource, Resource
from ganeti.query.fields import UNAVAIL, FieldDefinition, FieldTable

#: One OS on one node: Ganeti's diagnose tuple (first found first)
#: (path, status, diagnose, variants, parameters, api_versions, trusted)
NodeOsEntry = tuple[str, bool, str, list[str], list[tuple[str, str]], list[int], bool]


@dataclass
class OsInfo:
    """One OS, merged over the nodes."""

    name: str
    valid: bool = True
    trusted: bool = True
    hidden: bool = False
    blacklisted: bool = False
    variants: list[str] = field(default_factory=list)
    parameters: list[tuple[str, str]] = field(default_factory=list)
    api_versions: list[int] = field(default_factory=list)
    #: node name -> [NodeOsEntry, ...] (empty: not found on that node)
    node_status: dict[str, list[Any]] = field(default_factory=dict)
    os_hvp: dict[str, Any] = field(default_factory=dict)
    osparams: dict[str, Any] = field(default_factory=dict)
    #: the os_version every node reports, None when they differ or have none
    os_version: str | None = None


def _Entry(row: list[Any]) -> tuple[str, NodeOsEntry, str | None]:
    """(name, entry, os_version) from one os_diagnose row."""
    name, path, status, diagnose, variants, params, api_versions, trusted = row[:8]
    os_version = row[8] if len(row) > 8 else None
    entry: NodeOsEntry = (path, bool(status), diagnose, list(variants or []),
                          [tuple(p) for p in params or []], list(api_versions or []),
                          bool(trusted))
    return name, entry, os_version


def MergeDiagnose(cluster: Any, answers: dict[str, list[list[Any]]]) -> list[OsInfo]:
    """Merge the os_diagnose answers ({node name: rows}) per OS name."""
    per_os: dict[str, dict[str, list[NodeOsEntry]]] = {}
    versions: dict[str, set[str | None]] = {}
    for node_name, rows in answers.items():
        for row in rows:
            name, entry, os_version = _Entry(row)
            per_os.setdefault(name, {}).setdefault(node_name, []).append(entry)
            if len(per_os[name][node_name]) == 1:
                versions.setdefault(name, set()).add(os_version)
    result = []
    for name in utils.NiceSort(per_os):
        info = OsInfo(name=name)
        info.node_status = {node: per_os[name].get(node, []) for node in answers}
        variants: set[str] = set()
        params: set[tuple[str, str]] = set()
        apis: set[int] = set()
        for idx, entries in enumerate(info.node_status.values()):
            if not entries or not entries[0][1]:
                info.valid = False
                break
            first = entries[0]
            info.trusted = info.trusted and first[6]
            if idx == 0:
                variants, params, apis = set(first[3]), set(first[4]), set(first[5])
            else:
                variants &= set(first[3])
                params &= set(first[4])
                apis &= set(first[5])
        if info.valid:
            info.variants = utils.NiceSort(variants)
            info.parameters = sorted(params)
            info.api_versions = sorted(apis)
        seen = versions.get(name, set())
        info.os_version = next(iter(seen)) if len(seen) == 1 and info.valid else None
        info.hidden = name in (cluster.hidden_os or [])
        info.blacklisted = name in (cluster.blacklisted_os or [])
        info.os_hvp = dict((cluster.os_hvp or {}).get(name, {}))
        info.osparams = dict((cluster.osparams or {}).get(name, {}))
        result.append(info)
    return result


def _GetRpc(context: Any) -> Any:
    runner = getattr(context, "rpc", None)
    if runner is None:
        from ganeti.rpc.node import RpcRunner
        runner = RpcRunner.FromConfig(context.cfg)
    return runner


def DiagnoseNodes(context: Any) -> dict[str, list[list[Any]]]:
    """{node name: os_diagnose rows} of the online VM-capable nodes that
    answered."""
    snap = context.cfg.GetReadOnlySnapshot()
    nodes = [node for node in snap.nodes.values() if node.vm_capable and not node.offline]
    if not nodes:
        return {}
    # A node that has not answered by the query deadline is left out
    results = _GetRpc(context).call_os_diagnose([node.uuid for node in nodes],
                                                read_timeout=constants.RPC_TMO_QUERY)
    answers = {}
    for node in utils.NiceSort(nodes, key=lambda n: n.name):
        res = results.get(node.uuid)
        if res is None or res.fail_msg or not isinstance(res.payload, list):
            logging.warning("Cannot get the OS list of node %s: %s", node.name,
                            getattr(res, "fail_msg", "no answer"))
            continue
        answers[node.name] = res.payload
    return answers


def _Def(name: str, title: str, kind: str, doc: str, getter: Any) -> FieldDefinition:
    return FieldDefinition(name, title, kind, doc, getter)


#: The OS fields (Ganeti's, plus os_version)
OS_FIELDS = FieldTable(constants.QR_OS, [
    _Def("name", "Name", QFT_TEXT, "Operating system name",
         lambda ctx, info: info.name),
    _Def("valid", "Valid", QFT_BOOL, "Whether operating system definition is valid",
         lambda ctx, info: info.valid),
    _Def("hidden", "Hidden", QFT_BOOL, "Whether operating system is hidden",
         lambda ctx, info: info.hidden),
    _Def("blacklisted", "Blacklisted", QFT_BOOL,
         "Whether operating system is blacklisted", lambda ctx, info: info.blacklisted),
    _Def("variants", "Variants", QFT_OTHER, "Operating system variants",
         lambda ctx, info: list(info.variants)),
    _Def("api_versions", "ApiVersions", QFT_OTHER, "Operating system API versions",
         lambda ctx, info: list(info.api_versions)),
    _Def("parameters", "Parameters", QFT_OTHER, "Operating system parameters",
         lambda ctx, info: [list(param) for param in info.parameters]),
    _Def("node_status", "NodeStatus", QFT_OTHER, "Status from node",
         lambda ctx, info: {node: [list(entry) for entry in entries]
                            for node, entries in info.node_status.items()}),
    _Def("os_hvp", "OsHypervisorParams", QFT_OTHER,
         "Operating system specific hypervisor parameters",
         lambda ctx, info: dict(info.os_hvp)),
    _Def("osparams", "OsParameters", QFT_OTHER,
         "Operating system specific parameters", lambda ctx, info: dict(info.osparams)),
    _Def("trusted", "Trusted", QFT_BOOL, "Whether this OS is trusted",
         lambda ctx, info: info.trusted),
    _Def("os_version", "OsVersion", QFT_TEXT,
         "Version the OS definition reports on every node",
         lambda ctx, info: UNAVAIL if info.os_version is None else info.os_version),
])


def CollectOses(query: FieldQuery, context: Any) -> tuple[None, list[OsInfo]]:
    """The collector of the "os" resource."""
    cluster = context.cfg.GetClusterInfo()
    oses = MergeDiagnose(cluster, DiagnoseNodes(context))
    names = query.RequestedNames()
    if names is not None:
        wanted = set(names)
        oses = [info for info in oses if info.name in wanted]
    return None, oses


OS_RESOURCE = RegisterResource(Resource(
    name=constants.QR_OS, fields=OS_FIELDS, collect=CollectOses, namefield="name",
    sort_key=lambda info: utils.NiceSortKey(info.name)))
