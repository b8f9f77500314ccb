"""Builders of iallocator input messages, shaped as Ganeti's master sends them.

Node run-time fields (free memory and disk, i_pri_memory, ...) are derived
from the instances unless given, the way a node would report them: running
primaries use memory, down ones do not (the allocator reserves it), disks
use space on both DRBD nodes (plus 128 MiB of metadata per disk).
"""

from __future__ import annotations

import copy
import random
from typing import Any

GROUP_UUID = "f4e06e0d-528a-4963-a5ad-10f3e114232d"

IPOLICY: dict[str, Any] = {
    "disk-templates": ["drbd", "plain", "file", "sharedfile", "rbd", "diskless",
                       "blockdev", "ext"],
    "minmax": [{
        "min": {"cpu-count": 1, "disk-count": 1, "disk-size": 1024,
                "memory-size": 128, "nic-count": 1, "spindle-use": 1},
        "max": {"cpu-count": 8, "disk-count": 16, "disk-size": 1048576,
                "memory-size": 32768, "nic-count": 8, "spindle-use": 12},
    }],
    "std": {"cpu-count": 1, "disk-count": 1, "disk-size": 1024,
            "memory-size": 128, "nic-count": 1, "spindle-use": 1},
    "vcpu-ratio": 4.0,
    "spindle-ratio": 32.0,
}


def ipolicy(**changes: Any) -> dict[str, Any]:
    """The default policy with top-level keys changed (``_`` for ``-``)."""
    pol = copy.deepcopy(IPOLICY)
    for key, val in changes.items():
        pol[key.replace("_", "-")] = val
    return pol


def group(name: str = "default", alloc_policy: str = "preferred",
          policy: dict[str, Any] | None = None, tags: list[str] | None = None,
          ) -> dict[str, Any]:
    """A nodegroups entry."""
    return {"name": name, "alloc_policy": alloc_policy, "networks": [],
            "ipolicy": policy or ipolicy(), "tags": tags or []}


def node(group_uuid: str = GROUP_UUID, memory: int = 32768, disk: int = 1048576,
         cpus: int = 8, spindles: int = 4, tags: list[str] | None = None,
         offline: bool = False, drained: bool = False, vm_capable: bool = True,
         reserved_memory: int = 1024, exclusive: bool = False,
         **runtime: Any) -> dict[str, Any]:
    """A nodes entry; run-time values not given are filled by ``message``."""
    entry: dict[str, Any] = {
        "group": group_uuid, "tags": tags or [], "offline": offline,
        "drained": drained, "master_candidate": True, "master_capable": True,
        "vm_capable": vm_capable,
        "ndparams": {"spindle_count": spindles, "exclusive_storage": exclusive,
                     "oob_program": None},
        "total_memory": memory, "reserved_memory": reserved_memory,
        "total_disk": disk, "total_cpus": cpus, "reserved_cpus": 1,
        "total_spindles": spindles, "free_spindles": spindles,
    }
    entry.update(runtime)
    return entry


def instance(nodes: list[str], memory: int = 1024, disks: tuple[int, ...] = (10240,),
             template: str = "drbd", vcpus: int = 1, admin_state: str = "up",
             tags: list[str] | None = None, spindle_use: int = 1,
             nic_count: int = 1) -> dict[str, Any]:
    """An instances entry."""
    meta = 128 * len(disks) if template == "drbd" else 0
    local = template in ("drbd", "plain", "file")
    return {
        "tags": tags or [], "admin_state": admin_state, "admin_state_source": "admin",
        "disks": [{"mode": "rw", "size": size, "spindles": None} for size in disks],
        "disk_space_total": sum(disks) + meta if local else 0,
        "nics": [{"ip": None, "mac": f"aa:00:00:{i:02x}:00:01", "link": "br0",
                  "mode": "bridged", "bridge": "br0"} for i in range(nic_count)],
        "vcpus": vcpus, "spindle_use": spindle_use, "disk_template": template,
        "memory": memory, "nodes": list(nodes), "os": "debootstrap+default",
        "hypervisor": "kvm",
    }


def alloc_request(name: str, memory: int = 1024, disks: tuple[int, ...] = (10240,),
                  template: str = "drbd", vcpus: int = 1,
                  tags: list[str] | None = None, spindle_use: int = 1,
                  **extra: Any) -> dict[str, Any]:
    """An ``allocate`` request."""
    req = instance([], memory, disks, template, vcpus, "up", tags, spindle_use)
    del req["nodes"], req["admin_state"], req["admin_state_source"]
    req.update({"type": "allocate", "name": name,
                "required_nodes": 2 if template == "drbd" else 1})
    req.update(extra)
    return req


def message(nodes: dict[str, dict[str, Any]], instances: dict[str, dict[str, Any]],
            request: dict[str, Any], groups: dict[str, dict[str, Any]] | None = None,
            cluster_tags: list[str] | None = None) -> dict[str, Any]:
    """A whole input message, with the nodes' run-time data filled in."""
    nodes = copy.deepcopy(nodes)
    for name, data in nodes.items():
        live = not data["offline"] and data["vm_capable"]
        pri = [i for i in instances.values() if i["nodes"][0] == name]
        anywhere = [i for i in instances.values() if name in i["nodes"]]
        used_mem = sum(i["memory"] for i in pri if i["admin_state"] == "up")
        data.setdefault("free_memory", data["total_memory"] - data["reserved_memory"]
                        - used_mem)
        data.setdefault("free_disk", data["total_disk"]
                        - sum(i["disk_space_total"] for i in anywhere))
        data.setdefault("i_pri_memory", sum(i["memory"] for i in pri))
        data.setdefault("i_pri_up_memory", used_mem)
        data.setdefault("primary_ip", "192.0.2.%d" % (len(name) % 250 + 1))
        data.setdefault("secondary_ip", "198.51.100.%d" % (len(name) % 250 + 1))
        if not live:
            for key in ("total_memory", "reserved_memory", "free_memory", "total_disk",
                        "free_disk", "total_cpus", "i_pri_memory", "i_pri_up_memory"):
                data.pop(key, None)
    return {
        "version": 2, "cluster_name": "cluster1.example.com",
        "cluster_tags": cluster_tags or [], "enabled_hypervisors": ["kvm"],
        "ipolicy": ipolicy(),
        "nodegroups": groups if groups is not None else {GROUP_UUID: group()},
        "nodes": nodes, "instances": instances, "request": request,
    }


def generate(n_nodes: int = 40, n_instances: int = 1000, seed: int = 1,
             request: dict[str, Any] | None = None,
             groups: int = 1) -> dict[str, Any]:
    """A random but reproducible cluster: mostly DRBD, some plain instances."""
    rnd = random.Random(seed)
    gdict = {f"uuid-group-{g}": group(f"group{g}") for g in range(groups)}
    guuids = sorted(gdict)
    nodes = {f"node{i:03d}.example.com":
             node(guuids[i % groups], memory=rnd.choice([131072, 262144]),
                  disk=rnd.choice([4194304, 8388608]), cpus=rnd.choice([16, 32]))
             for i in range(n_nodes)}
    by_group: dict[str, list[str]] = {}
    for name, data in sorted(nodes.items()):
        by_group.setdefault(data["group"], []).append(name)
    instances = {}
    for i in range(n_instances):
        members = by_group[guuids[i % groups]]
        template = "drbd" if rnd.random() < 0.8 else "plain"
        placed = rnd.sample(members, 2 if template == "drbd" else 1)
        instances[f"inst{i:04d}.example.com"] = instance(
            placed, memory=rnd.choice([512, 1024, 2048, 4096]),
            disks=(rnd.choice([10240, 20480, 51200]),), template=template,
            vcpus=rnd.choice([1, 2, 4]),
            admin_state="up" if rnd.random() < 0.9 else "down")
    return message(nodes, instances,
                   request or alloc_request("new.example.com"), gdict)
