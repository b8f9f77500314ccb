"""THE table of RAPI resources: path pattern -> resource class.

Patterns are paths whose ``[name]`` segments match one path segment (a
node, instance, group, network or job name, a disk index, a query
resource); the values, URL-decoded, become the resource's ``items`` in
order. Segments are checked before lookup (no empty, ``.``, ``..`` or
encoded ``/`` segments, no control characters), so a name can never walk
out of its place.
"""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass

from ganeti import http
from ganeti.rapi import rlib2_cluster as cl
from ganeti.rapi import rlib2_instances as inst
from ganeti.rapi import rlib2_jobs as jobs
from ganeti.rapi import rlib2_nodes as nodes
from ganeti.rapi.baserlib import ResourceBase

RESOURCES: list[tuple[str, type[ResourceBase]]] = [
    ("/", cl.R_root),
    ("/2", cl.R_2),
    ("/version", cl.R_version),
    ("/2/info", cl.R_2_info),
    ("/2/features", cl.R_2_features),
    ("/2/os", cl.R_2_os),
    ("/2/modify", cl.R_2_cluster_modify),
    ("/2/redistribute-config", cl.R_2_redist_config),
    ("/2/tags", cl.R_2_tags),
    ("/2/query/[resource]", cl.R_2_query),
    ("/2/query/[resource]/fields", cl.R_2_query_fields),

    ("/2/jobs", jobs.R_2_jobs),
    ("/2/jobs/[job_id]", jobs.R_2_jobs_id),
    ("/2/jobs/[job_id]/wait", jobs.R_2_jobs_id_wait),

    ("/2/nodes", nodes.R_2_nodes),
    ("/2/nodes/[node_name]", nodes.R_2_nodes_name),
    ("/2/nodes/[node_name]/powercycle", nodes.R_2_nodes_name_powercycle),
    ("/2/nodes/[node_name]/role", nodes.R_2_nodes_name_role),
    ("/2/nodes/[node_name]/evacuate", nodes.R_2_nodes_name_evacuate),
    ("/2/nodes/[node_name]/migrate", nodes.R_2_nodes_name_migrate),
    ("/2/nodes/[node_name]/modify", nodes.R_2_nodes_name_modify),
    ("/2/nodes/[node_name]/storage", nodes.R_2_nodes_name_storage),
    ("/2/nodes/[node_name]/storage/modify", nodes.R_2_nodes_name_storage_modify),
    ("/2/nodes/[node_name]/storage/repair", nodes.R_2_nodes_name_storage_repair),
    ("/2/nodes/[node_name]/tags", nodes.R_2_nodes_name_tags),

    ("/2/groups", nodes.R_2_groups),
    ("/2/groups/[group_name]", nodes.R_2_groups_name),
    ("/2/groups/[group_name]/modify", nodes.R_2_groups_name_modify),
    ("/2/groups/[group_name]/rename", nodes.R_2_groups_name_rename),
    ("/2/groups/[group_name]/assign-nodes", nodes.R_2_groups_name_assign_nodes),
    ("/2/groups/[group_name]/evacuate", nodes.R_2_groups_name_evacuate),
    ("/2/groups/[group_name]/tags", nodes.R_2_groups_name_tags),

    ("/2/networks", nodes.R_2_networks),
    ("/2/networks/[network_name]", nodes.R_2_networks_name),
    ("/2/networks/[network_name]/modify", nodes.R_2_networks_name_modify),
    ("/2/networks/[network_name]/connect", nodes.R_2_networks_name_connect),
    ("/2/networks/[network_name]/disconnect", nodes.R_2_networks_name_disconnect),
    ("/2/networks/[network_name]/rename", nodes.R_2_networks_name_rename),
    ("/2/networks/[network_name]/tags", nodes.R_2_networks_name_tags),

    ("/2/instances", inst.R_2_instances),
    ("/2/instances-multi-alloc", inst.R_2_instances_multi_alloc),
    ("/2/instances/[instance_name]", inst.R_2_instances_name),
    ("/2/instances/[instance_name]/info", inst.R_2_instances_name_info),
    ("/2/instances/[instance_name]/reboot", inst.R_2_instances_name_reboot),
    ("/2/instances/[instance_name]/shutdown", inst.R_2_instances_name_shutdown),
    ("/2/instances/[instance_name]/startup", inst.R_2_instances_name_startup),
    ("/2/instances/[instance_name]/reinstall", inst.R_2_instances_name_reinstall),
    ("/2/instances/[instance_name]/replace-disks",
     inst.R_2_instances_name_replace_disks),
    ("/2/instances/[instance_name]/activate-disks",
     inst.R_2_instances_name_activate_disks),
    ("/2/instances/[instance_name]/deactivate-disks",
     inst.R_2_instances_name_deactivate_disks),
    ("/2/instances/[instance_name]/recreate-disks",
     inst.R_2_instances_name_recreate_disks),
    ("/2/instances/[instance_name]/disk/[disk_index]/grow",
     inst.R_2_instances_name_disk_grow),
    ("/2/instances/[instance_name]/prepare-export",
     inst.R_2_instances_name_prepare_export),
    ("/2/instances/[instance_name]/export", inst.R_2_instances_name_export),
    ("/2/instances/[instance_name]/migrate", inst.R_2_instances_name_migrate),
    ("/2/instances/[instance_name]/failover", inst.R_2_instances_name_failover),
    ("/2/instances/[instance_name]/change-group",
     inst.R_2_instances_name_change_group),
    ("/2/instances/[instance_name]/rename", inst.R_2_instances_name_rename),
    ("/2/instances/[instance_name]/modify", inst.R_2_instances_name_modify),
    ("/2/instances/[instance_name]/console", inst.R_2_instances_name_console),
    ("/2/instances/[instance_name]/tags", inst.R_2_instances_name_tags),
]

_PARAM_RE = re.compile(r"^\[[a-z_]+\]$")
_BAD_CHARS_RE = re.compile(r"[\x00-\x1f\x7f/\\]")


@dataclass(frozen=True)
class Match:
    """A resolved path: the resource class and the decoded name segments."""
    pattern: str
    handler: type[ResourceBase]
    items: tuple[str, ...]


def _Compile() -> dict[int, list[tuple[tuple[str | None, ...], str,
                                       type[ResourceBase]]]]:
    """Patterns by segment count; None marks a name segment."""
    table: dict[int, list[tuple[tuple[str | None, ...], str, type[ResourceBase]]]] = {}
    seen: set[str] = set()
    for pattern, handler in RESOURCES:
        if pattern in seen:
            raise ValueError(f"RAPI resource {pattern} is declared twice")
        seen.add(pattern)
        parts = tuple(None if _PARAM_RE.match(p) else p
                      for p in pattern.strip("/").split("/") if p)
        table.setdefault(len(parts), []).append((parts, pattern, handler))
    return table


_TABLE = _Compile()


def CheckNameSegment(raw: str) -> str:
    """URL-decode one path segment holding a name; 400 if unsafe."""
    try:
        value = urllib.parse.unquote(raw, errors="strict")
    except UnicodeDecodeError:
        raise http.HttpBadRequest(f"Invalid path segment {raw!r}: not UTF-8") \
            from None
    if not value or value in (".", "..") or _BAD_CHARS_RE.search(value):
        raise http.HttpBadRequest(f"Invalid name {value!r} in the path")
    return value


def Lookup(path: str) -> Match:
    """Find the resource of a request path (without the query string).

    @raise http.HttpBadRequest: for path traversal or undecodable names
    @raise http.HttpNotFound: for a path no resource handles
    """
    if not path.startswith("/"):
        raise http.HttpBadRequest(f"Invalid request path {path!r}")
    raw_parts = path.strip("/").split("/") if path.strip("/") else []
    if any(p in (".", "..") or urllib.parse.unquote(p) in (".", "..")
           for p in raw_parts):
        raise http.HttpBadRequest(f"Path traversal refused in {path!r}")
    if "" in raw_parts:
        raise http.HttpNotFound(f"No resource at {path!r}")
    for parts, pattern, handler in _TABLE.get(len(raw_parts), []):
        if all(p is None or p == raw for p, raw in zip(parts, raw_parts)):
            items = tuple(CheckNameSegment(raw)
                          for p, raw in zip(parts, raw_parts) if p is None)
            return Match(pattern, handler, items)
    raise http.HttpNotFound(f"No resource at {path!r}")
