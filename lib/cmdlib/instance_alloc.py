"""Placing new instances with an allocator, the steps ``gnt-instance add
-I``, ``gnt-instance recreate-disks -I`` and ``OpInstanceMultiAlloc``
share:

- which allocator to use (:func:`ChooseIallocator`): nodes and an
  allocator exclude each other; "." names the cluster's default
  allocator; with neither, the cluster's default allocator is used when
  there is one (as Ganeti);
- the ``allocate`` request for an instance to be created
  (:func:`CreateInstanceAllocRequest`);
- running it (:func:`RunInstanceAllocator`: "Can't compute nodes using
  iallocator 'NAME': <its reason>", ECODE_NORES, when it finds no
  placement; the chosen nodes are logged);
- giving back the node locks not needed once the nodes are chosen
  (:func:`ReleaseNodeLocks`): an LU using an allocator locks every node,
  since it cannot know beforehand which ones it will use.
"""

from __future__ import annotations

from typing import Any

from ganeti import constants, errors, locking, objects
from ganeti.cmdlib import iallocator as ia
from ganeti.cmdlib.base import LogicalUnit


def ChooseIallocator(cfg: Any, iallocator: str | None, nodes_given: bool,
                     nodes_option: str = "-n/--node") -> str | None:
    """The allocator to place an instance with, or None when its nodes are
    given (or neither nodes nor any allocator are: the caller words that
    error).

    OpPrereqError (ECODE_INVAL) when both nodes and an allocator are given,
    or for "." when the cluster has no default allocator.
    """
    if nodes_given:
        if iallocator:
            raise errors.OpPrereqError(
                f"Give either an iallocator (-I/--iallocator) or the nodes"
                f" ({nodes_option}), not both", errors.ECODE_INVAL)
        return None
    if iallocator:
        return ia.ResolveIallocator(cfg, iallocator)
    return ia.DefaultIallocator(cfg)


def NoPlacementError(nodes_option: str = "-n/--node") -> errors.OpPrereqError:
    """The error for a creation naming neither nodes nor an allocator on a
    cluster without a default allocator."""
    return errors.OpPrereqError(
        f"No node ({nodes_option}) and no iallocator (-I/--iallocator) given, and the"
        " cluster has no default iallocator; give one of them or set a default with"
        " gnt-cluster modify --default-iallocator", errors.ECODE_INVAL)


def AllocatorNics(cluster: objects.Cluster,
                  nic_specs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The NICs of the request: mac, ip, mode, link, bridge (the link of a
    bridged NIC) and network, the cluster's NIC defaults filled in."""
    nics = []
    for spec in nic_specs:
        params = {key: spec[key] for key in (constants.INIC_MODE, constants.INIC_LINK)
                  if spec.get(key) not in (None, "")}
        filled = cluster.SimpleFillNIC(params)
        mode = filled.get(constants.NIC_MODE)
        link = filled.get(constants.NIC_LINK)
        nics.append({"mac": spec.get(constants.INIC_MAC, constants.VALUE_AUTO),
                     "ip": spec.get(constants.INIC_IP), "mode": mode, "link": link,
                     "bridge": link if mode == constants.NIC_MODE_BRIDGED else None,
                     "network": spec.get(constants.INIC_NETWORK)})
    return nics


def _GroupNodeNames(cfg: Any, group_uuid: str) -> list[str]:
    return sorted(node.name for node in cfg.GetAllNodesInfo().values()
                  if node.group == group_uuid)


def CreateInstanceAllocRequest(cfg: Any, op: Any, disk_specs: list[dict[str, Any]],
                               nic_specs: list[dict[str, Any]],
                               beparams: dict[str, Any], hvname: str,
                               node_whitelist: list[str] | None = None
                               ) -> ia.IAReqInstanceAlloc:
    """The allocate request for the instance ``op`` (an OpInstanceCreate)
    creates: ``disk_specs`` and ``nic_specs`` are its checked disks and
    NICs, ``beparams`` its backend parameters with the cluster's defaults
    filled in.

    With ``op.group_name`` the allocator is asked to place the instance in
    that group and its answer must name nodes of it.
    """
    cluster = cfg.GetClusterInfo()
    group_name = getattr(op, "group_name", None) or None
    if group_name is not None:
        group_uuid = cfg.LookupNodeGroup(group_name)
        group_name = cfg.GetNodeGroup(group_uuid).name
        group_nodes = _GroupNodeNames(cfg, group_uuid)
        node_whitelist = group_nodes if node_whitelist is None else \
            [name for name in node_whitelist if name in group_nodes]
    return ia.IAReqInstanceAlloc(
        name=op.instance_name,
        memory=int(beparams[constants.BE_MAXMEM]),
        spindle_use=int(beparams.get(constants.BE_SPINDLE_USE, 1)),
        disks=[dict(spec) for spec in disk_specs],
        disk_template=op.disk_template,
        os=op.os_type,
        tags=list(op.tags or []),
        nics=AllocatorNics(cluster, nic_specs),
        vcpus=int(beparams[constants.BE_VCPUS]),
        hypervisor=hvname,
        node_whitelist=node_whitelist,
        group_name=group_name)


def RunInstanceAllocator(lu: LogicalUnit, iallocator: str,
                         req: ia.IAReqInstanceAlloc,
                         message: str = "Selected nodes for the instance"
                         ) -> list[objects.Node]:
    """Run ``req`` through ``iallocator`` and return the chosen nodes (the
    primary first), logging them as ``message: node, node``."""
    cfg: Any = lu.cfg
    names = ia.IAllocator(cfg, lu.rpc, req).RunOrFail(iallocator, "nodes")
    nodes = [cfg.GetNodeInfoByName(name) for name in names]
    lu.LogInfo(f"{message}: {', '.join(names)}")
    return nodes


def ReleaseNodeLocks(lu: LogicalUnit, keep: list[str]) -> None:
    """Release the node and node-resource locks of every node but those in
    ``keep`` (UUIDs)."""
    glm = lu.glm
    if glm is None:
        return
    for level in (locking.LEVEL_NODE, locking.LEVEL_NODE_RES):
        extra = sorted(name for name in lu.owned_locks(level) if name not in keep)
        if extra:
            glm.release(level, extra)
