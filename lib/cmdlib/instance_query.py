"""Detailed instance data for ``gnt-instance info``: ``LUInstanceQueryData``.

Static data comes from the configuration; unless ``static`` the primary
node is asked for the run state and the disks' status, each call with the
live-query deadline (``constants.RPC_TMO_QUERY``): a hung node leaves its
instances' run state and disk status unknown instead of holding the job.
"""

from __future__ import annotations

from typing import Any

from ganeti import constants, errors, locking
from ganeti.cmdlib import instance_utils as iu
from ganeti.cmdlib.base import FeedbackFn, NoHooksLU


class LUInstanceQueryData(NoHooksLU):
    """Return {instance name: data} for the named (or all) instances."""

    REQ_BGL = False
    cfg: Any

    def ExpandNames(self) -> None:
        """Resolve names; lock the instances shared if use_locking."""
        cfg = self.cfg
        if self.op.instances:
            self.wanted = [iu.ExpandInstance(cfg, name).name for name in self.op.instances]
        else:
            self.wanted = sorted(inst.name for inst in cfg.GetAllInstancesInfo().values())
        self.needed_locks = {}
        if self.op.use_locking:
            self.needed_locks[locking.LEVEL_INSTANCE] = list(self.wanted)
            self.share_locks = dict.fromkeys(locking.LEVELS, 1)

    def _DiskStatus(self, inst: Any, disk: Any, node_answered: bool,
                    snode: str | None = None) -> dict[str, Any]:
        """A disk's static data and, unless static, its status on the
        primary (``pstatus``) and, for DRBD, on the secondary
        (``sstatus``); children likewise."""
        data: dict[str, Any] = {
            "iv_name": disk.iv_name, "dev_type": disk.dev_type,
            "logical_id": list(disk.logical_id or []), "size": disk.size,
            "mode": disk.mode, "name": disk.name, "uuid": disk.uuid,
            "spindles": disk.spindles, "pstatus": None, "sstatus": None,
            "nodes": [iu.NodeName(self.cfg, n) for n in disk.nodes or []],
        }
        if disk.dev_type == constants.DT_DRBD8 and len(disk.logical_id or ()) == 6:
            data["drbd_nodes"] = [iu.NodeName(self.cfg, n) for n in disk.logical_id[:2]]
            snode = next((n for n in disk.logical_id[:2] if n != inst.primary_node), None)
        data["children"] = [self._DiskStatus(inst, child, node_answered, snode)
                            for child in disk.children or []]
        if self.op.static or not node_answered:
            return data
        data["pstatus"] = self._FindOn(inst.primary_node, disk)
        if disk.dev_type == constants.DT_DRBD8 and snode:
            data["sstatus"] = self._FindOn(snode, disk)
        return data

    def _FindOn(self, node_uuid: str, disk: Any) -> dict[str, Any] | None:
        node = self.cfg.GetNodeInfo(node_uuid)
        if node is None or node.offline:
            return None
        result = self.rpc.call_blockdev_find(node_uuid, disk.ToDict(),
                                             read_timeout=constants.RPC_TMO_QUERY)
        return None if result.fail_msg else result.payload

    def _RunningByNode(self, instances: list[Any]) -> dict[str, set[str] | None]:
        """{primary node uuid: names of the instances it runs, or None if the
        node could not tell}, asking every online primary node once."""
        cluster = self.cfg.GetClusterInfo()
        nodes: dict[str, set[str]] = {}
        for inst in instances:
            node = self.cfg.GetNodeInfo(inst.primary_node)
            if node is not None and not node.offline:
                nodes.setdefault(node.uuid, set()).add(inst.hypervisor)
        running: dict[str, set[str] | None] = {}
        # One multi-node call per set of hypervisors (nearly always one)
        by_hvs: dict[tuple[str, ...], list[str]] = {}
        for node_uuid, node_hvs in nodes.items():
            by_hvs.setdefault(tuple(sorted(node_hvs)), []).append(node_uuid)
        for hv_names, node_uuids in by_hvs.items():
            hvparams = {hv: cluster.hvparams.get(hv, {}) for hv in hv_names}
            answers = self.rpc.call_instance_list(node_uuids, list(hv_names), hvparams,
                                                  read_timeout=constants.RPC_TMO_QUERY)
            for node_uuid in node_uuids:
                answer = answers[node_uuid]
                if answer.fail_msg:
                    self.LogWarning(f"Error checking node {iu.NodeName(self.cfg, node_uuid)}:"
                                    f" {answer.fail_msg}")
                    running[node_uuid] = None
                else:
                    running[node_uuid] = set(answer.payload or [])
        return running

    def Exec(self, feedback_fn: FeedbackFn) -> dict[str, dict[str, Any]]:
        """Collect the data of each instance."""
        cfg = self.cfg
        cluster = cfg.GetClusterInfo()
        result: dict[str, dict[str, Any]] = {}
        instances = []
        for name in self.wanted:
            inst = cfg.GetInstanceInfoByName(name)
            if inst is None:
                raise errors.OpPrereqError(f"Instance '{name}' not known",
                                           errors.ECODE_NOENT)
            instances.append(inst)
        running = {} if self.op.static else self._RunningByNode(instances)
        for inst in instances:
            run_state = None
            pnode = cfg.GetNodeInfo(inst.primary_node)
            names = running.get(inst.primary_node)
            if names is not None:
                run_state = "up" if inst.name in names else "down"
            # A primary node that did not say what runs is not asked about
            # each disk either: every call would wait out the deadline again
            node_answered = inst.primary_node not in running or names is not None
            group = cfg.GetNodeGroup(pnode.group) if pnode is not None else None
            disks = cfg.GetInstanceDisks(inst.uuid)
            nics = []
            for nic in inst.nics:
                params = cluster.FillNIC(nic, group)
                nics.append({"name": nic.name, "uuid": nic.uuid, "mac": nic.mac,
                             "ip": nic.ip, "mode": params.get(constants.NIC_MODE),
                             "link": params.get(constants.NIC_LINK),
                             "vlan": params.get(constants.NIC_VLAN),
                             "network": nic.network})
            result[inst.name] = {
                "name": inst.name, "uuid": inst.uuid,
                "config_state": inst.admin_state,
                "run_state": run_state,
                "pnode": pnode.name if pnode is not None else inst.primary_node,
                "pnode_group_uuid": pnode.group if pnode is not None else None,
                "pnode_group_name": group.name if group is not None else None,
                "snodes": [iu.NodeName(cfg, n)
                           for n in cfg.GetInstanceSecondaryNodes(inst.uuid)],
                "snodes_group_uuids": [], "snodes_group_names": [],
                "os": inst.os,
                "nics": nics,
                "disk_template": cfg.GetInstanceDiskTemplate(inst.uuid),
                "disks": [self._DiskStatus(inst, disk, node_answered) for disk in disks],
                "network_port": inst.network_port,
                "hypervisor": inst.hypervisor,
                "hv_instance": dict(inst.hvparams), "hv_actual": cluster.FillHV(inst),
                "be_instance": dict(inst.beparams), "be_actual": cluster.FillBE(inst),
                "os_instance": dict(inst.osparams),
                "os_actual": cluster.SimpleFillOS(inst.os, inst.osparams),
                "serial_no": inst.serial_no, "mtime": inst.mtime, "ctime": inst.ctime,
                "tags": sorted(inst.tags or []),
            }
        return result
