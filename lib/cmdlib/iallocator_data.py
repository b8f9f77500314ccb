"""The cluster part of the iallocator input message (protocol version 2).

Static data comes from one read-only configuration snapshot; live data
(memory, disk, spindles, CPUs) from one ``node_info`` and one
``all_instances_info`` call to the online, vm_capable nodes, as Ganeti
gathers it:

- ``free_memory`` is what the hypervisor reports, less the memory that
  running primary instances may still claim (their maximum memory minus
  what they use now); ``i_pri_memory`` and ``i_pri_up_memory`` sum the
  maximum memory of the node's primary instances (all, and those marked
  up); ``reserved_memory`` is the hypervisor's own (dom0) memory;
- ``total_disk``/``free_disk`` are those of the storage unit of the
  cluster's default disk template (the volume group for plain and drbd,
  the file storage directory for file, ...), and ``storage_units`` (ours)
  lists every storage unit asked for with its space, so allocators can
  check disk per storage unit;
- ``total_spindles``/``free_spindles`` are the volume group's physical
  volumes (they only count with exclusive storage, as in Ganeti).

Offline, drained and non-vm_capable nodes carry no live data (as Ganeti).
"""

from __future__ import annotations

from typing import Any

from ganeti import constants, errors
from ganeti.query.nodes import NodeStorageKey


def _StorageUnits(cluster: Any, node: Any, ndparams: dict[str, Any]
                  ) -> list[list[Any]]:
    """(type, key, params) of the storage units to report, the default
    template's first."""
    excl = bool(ndparams.get(constants.ND_EXCLUSIVE_STORAGE))
    units: list[list[Any]] = []
    for template in cluster.enabled_disk_templates or []:
        if template in constants.DTS_LVM and cluster.volume_group_name:
            unit = [constants.ST_LVM_VG, cluster.volume_group_name, [excl]]
        elif template == constants.DT_FILE:
            unit = [constants.ST_FILE, NodeStorageKey(
                node.name, constants.ST_FILE,
                cluster.file_storage_dir or constants.DEFAULT_FILE_STORAGE_DIR), []]
        elif template == constants.DT_SHARED_FILE:
            unit = [constants.ST_SHARED_FILE, NodeStorageKey(
                node.name, constants.ST_SHARED_FILE,
                cluster.shared_file_storage_dir
                or constants.DEFAULT_SHARED_FILE_STORAGE_DIR), []]
        else:
            continue
        if unit not in units:
            units.append(unit)
    if cluster.volume_group_name and \
            set(cluster.enabled_disk_templates or []) & constants.DTS_LVM:
        units.append([constants.ST_LVM_PV, cluster.volume_group_name, [excl]])
    return units


def _NodeStatic(snap: Any, node: Any) -> dict[str, Any]:
    cluster = snap.cluster
    return {
        "tags": list(node.GetTags()),
        "primary_ip": node.primary_ip,
        "secondary_ip": node.secondary_ip or node.primary_ip,
        "offline": bool(node.offline),
        "drained": bool(node.drained),
        "master_candidate": bool(node.master_candidate),
        "group": node.group,
        "master_capable": bool(node.master_capable),
        "vm_capable": bool(node.vm_capable),
        "ndparams": cluster.FillND(node, snap.nodegroups[node.group])
        if node.group in snap.nodegroups else cluster.SimpleFillND(node.ndparams or {}),
    }


def _InstanceData(snap: Any, inst: Any) -> dict[str, Any]:
    cluster = snap.cluster
    bep = cluster.FillBE(inst)
    disks = [snap.disks[uuid] for uuid in inst.disks if uuid in snap.disks]
    # As ConfigWriter.GetInstanceDiskTemplate: the first disk's type
    template = disks[0].dev_type if disks else constants.DT_DISKLESS
    nodes = [inst.primary_node]
    for disk in disks:
        for uuid in disk.nodes or []:
            if uuid not in nodes:
                nodes.append(uuid)
    disk_dicts = [{constants.IDISK_SIZE: d.size, constants.IDISK_MODE: d.mode,
                   constants.IDISK_SPINDLES: d.spindles} for d in disks]
    from ganeti.cmdlib.iallocator import ComputeDiskSize
    nics = []
    for nic in inst.nics:
        params = cluster.SimpleFillNIC(nic.nicparams or {})
        nics.append({"mac": nic.mac, "ip": nic.ip, "mode": params.get(constants.NIC_MODE),
                     "link": params.get(constants.NIC_LINK), "network": nic.network,
                     "bridge": params.get(constants.NIC_LINK)
                     if params.get(constants.NIC_MODE) == constants.NIC_MODE_BRIDGED
                     else None})
    return {
        "tags": list(inst.GetTags()),
        "admin_state": inst.admin_state,
        "admin_state_source": inst.admin_state_source,
        "should_run": inst.admin_state == constants.ADMINST_UP,
        "vcpus": int(bep[constants.BE_VCPUS]),
        "memory": int(bep[constants.BE_MAXMEM]),
        "spindle_use": int(bep.get(constants.BE_SPINDLE_USE, 1)),
        "os": inst.os,
        "nodes": [snap.nodes[uuid].name for uuid in nodes if uuid in snap.nodes],
        "nics": nics,
        "disks": disk_dicts,
        "disk_template": template,
        "disk_space_total": ComputeDiskSize(template, disk_dicts),
        "hypervisor": inst.hypervisor,
    }


def _LiveData(cfg: Any, rpc_runner: Any, snap: Any,
              nodes: list[Any]) -> dict[str, dict[str, Any]]:
    """node UUID -> the live keys of the input, for nodes that have them."""
    from ganeti.rpc.encoding import PerNode
    cluster = snap.cluster
    wanted = [n for n in nodes if not (n.offline or n.drained) and n.vm_capable]
    if not wanted:
        return {}
    hvname = (cluster.enabled_hypervisors or [constants.HT_FAKE])[0]
    hvparams = dict((cluster.hvparams or {}).get(hvname, {}))
    units = {n.uuid: _StorageUnits(cluster, n, cfg.GetNdParams(n)) for n in wanted}
    uuids = [n.uuid for n in wanted]
    infos = rpc_runner.call_node_info(uuids, PerNode(units), [[hvname, hvparams]])
    hv_names = list(cluster.enabled_hypervisors or [hvname])
    all_hvparams = {name: dict((cluster.hvparams or {}).get(name, {})) for name in hv_names}
    running = rpc_runner.call_all_instances_info(uuids, hv_names, all_hvparams)
    live: dict[str, dict[str, Any]] = {}
    for node in wanted:
        result = infos[node.uuid]
        if result.fail_msg:
            raise errors.OpPrereqError(
                f"Can't get data for node {node.name}: {result.fail_msg}",
                errors.ECODE_ENVIRON)
        try:
            _, space, hvinfo = result.payload
            hv = dict(hvinfo[0])
        except (TypeError, ValueError, IndexError, KeyError) as err:
            raise errors.OpPrereqError(f"Invalid node_info answer from node {node.name}",
                                       errors.ECODE_ENVIRON) from err
        run = running[node.uuid]
        used = run.payload if not run.fail_msg and isinstance(run.payload, dict) else {}
        free_mem = int(hv.get("memory_free") or 0)
        pri_mem = pri_up_mem = 0
        for inst in snap.instances.values():
            if inst.primary_node != node.uuid:
                continue
            maxmem = int(snap.cluster.FillBE(inst)[constants.BE_MAXMEM])
            pri_mem += maxmem
            if inst.admin_state == constants.ADMINST_UP:
                pri_up_mem += maxmem
                now = int((used.get(inst.name) or {}).get("memory") or 0)
                free_mem -= max(0, maxmem - now)
        storage = [dict(unit) for unit in space if isinstance(unit, dict)]
        disk = next((u for u in storage
                     if u.get("type") != constants.ST_LVM_PV), None)
        pvs = next((u for u in storage if u.get("type") == constants.ST_LVM_PV), None)
        live[node.uuid] = {
            "total_memory": int(hv.get("memory_total") or 0),
            "reserved_memory": int(hv.get("memory_dom0") or 0),
            "free_memory": max(0, free_mem),
            "total_disk": int((disk or {}).get("storage_size") or 0),
            "free_disk": int((disk or {}).get("storage_free") or 0),
            "total_spindles": int((pvs or {}).get("storage_size") or 0),
            "free_spindles": int((pvs or {}).get("storage_free") or 0),
            "total_cpus": int(hv.get("cpu_total") or 0),
            "reserved_cpus": int(hv.get("cpu_dom0") or 0) if "cpu_dom0" in hv else 0,
            "i_pri_memory": pri_mem,
            "i_pri_up_memory": pri_up_mem,
            "storage_units": storage,
        }
    return live


def ComputeClusterData(cfg: Any, rpc_runner: Any, req: Any) -> dict[str, Any]:
    """The whole input message for request ``req``."""
    snap = cfg.GetReadOnlySnapshot()
    cluster = snap.cluster
    groups = {
        uuid: {"name": group.name, "alloc_policy": group.alloc_policy,
               "networks": sorted((group.networks or {}).keys()),
               "ipolicy": cluster.SimpleFillIPolicy(group.ipolicy or {}),
               "tags": list(group.GetTags())}
        for uuid, group in snap.nodegroups.items()}
    nodes_list = sorted(snap.nodes.values(), key=lambda n: n.name)
    live = _LiveData(cfg, rpc_runner, snap, nodes_list)
    nodes = {}
    for node in nodes_list:
        data = _NodeStatic(snap, node)
        data.update(live.get(node.uuid, {}))
        nodes[node.name] = data
    instances = {inst.name: _InstanceData(snap, inst)
                 for inst in sorted(snap.instances.values(), key=lambda i: i.name)
                 if not inst.forthcoming}
    request = req.GetRequest(cfg)
    request["type"] = req.MODE
    return {
        "version": constants.IALLOCATOR_VERSION,
        "cluster_name": cluster.cluster_name,
        "cluster_tags": list(cluster.GetTags()),
        "enabled_hypervisors": list(cluster.enabled_hypervisors or []),
        "ipolicy": cluster.ipolicy,
        "nodegroups": groups,
        "nodes": nodes,
        "instances": instances,
        "request": request,
    }
