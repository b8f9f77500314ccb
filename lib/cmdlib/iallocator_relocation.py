"""Moving existing instances with an instance allocator (the relocation
side of the iallocator framework): the steps shared by ``replace-disks
-I``, ``migrate``/``failover -I``, ``gnt-node evacuate``,
``gnt-instance change-group`` and ``gnt-group evacuate``.

- :func:`RequireIallocator`: the allocator named (the cluster default for
  Ganeti's ".") or else the cluster default; an error without either;
- :func:`RelocateInstance`: a ``relocate`` request for one instance,
  answered by the UUID of the node it gets;
- :func:`EvacuationJobs`: a ``node-evacuate`` or ``change-group`` answer,
  ``[moved, failed, jobs]``, turned into the opcodes of the jobs the LU
  submits (Ganeti's LoadNodeEvacResult). An instance the allocator could
  not place refuses the whole operation, nothing is submitted; every
  opcode must be a valid opcode acting on one of the instances asked
  about (an allocator's answer is checked, not trusted);
- :func:`ReleaseUnusedNodeLocks`: an LU locks every node while the
  allocator chooses (any node may be chosen), then lets go of the others.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ganeti import constants, errors, locking, opcodes, utils
from ganeti.cmdlib import iallocator as ia
from ganeti.cmdlib import instance_nics

#: The opcode parameter evacuations pass on to the jobs that have it
_EARLY_RELEASE = "early_release"


def RequireIallocator(cfg: Any, name: str | None) -> str:
    """The allocator to use when one is needed: ``name`` (the cluster
    default for "."), else the cluster default; OpPrereqError (ECODE_INVAL)
    when there is neither."""
    chosen = ia.ResolveIallocator(cfg, name) or ia.DefaultIallocator(cfg)
    if not chosen:
        raise errors.OpPrereqError(
            "No iallocator was given and the cluster has no default iallocator"
            " (give one with -I, or set the default with gnt-cluster modify"
            " --default-iallocator)", errors.ECODE_INVAL)
    return chosen


def RelocateInstance(lu: Any, iallocator: str, inst_uuid: str,
                     relocate_from: list[str], what: str) -> str:
    """Ask ``iallocator`` for a node for instance ``inst_uuid`` away from
    the nodes ``relocate_from`` (UUIDs); the chosen node's UUID.

    OpPrereqError (ECODE_NORES) naming the allocator when it finds no
    node (``what`` says what was sought), ECODE_ENVIRON when it cannot be
    run or its answer does not fit.
    """
    req = ia.IAReqRelocate(inst_uuid=inst_uuid,
                           relocate_from_node_uuids=list(relocate_from))
    alloc = ia.IAllocator(lu.cfg, lu.rpc, req)
    (name,) = alloc.RunOrFail(iallocator, what)
    return lu.cfg.GetNodeInfoByName(name).uuid


def ReleaseUnusedNodeLocks(lu: Any, keep: Iterable[str]) -> None:
    """Release the node and node-resource locks of all nodes but ``keep``
    (UUIDs), once the allocator has chosen."""
    glm = getattr(lu, "glm", None)
    if glm is None:
        return
    wanted = set(keep)
    for level in (locking.LEVEL_NODE, locking.LEVEL_NODE_RES):
        unused = sorted(lu.owned_locks(level) - wanted)
        if unused:
            glm.release(level, unused)


def _Destination(cfg: Any, use_nodes: bool, group: str, nodes: list[str]) -> str:
    if use_nodes:
        return utils.CommaJoin(nodes)
    info = cfg.GetNodeGroup(group)
    return info.name if info is not None else group


def _LoadOp(iallocator: str, data: dict[str, Any], instances: set[str]
            ) -> opcodes.OpCode:
    """One opcode of the answer, checked."""
    try:
        op = opcodes.OpCode.LoadOpCode(dict(data))
        op.Validate(True)
    except errors.OpPrereqError as err:
        raise errors.OpPrereqError(
            f"Iallocator '{iallocator}' returned an invalid opcode {data!r:.300}:"
            f" {err.args[0]}", errors.ECODE_ENVIRON) from err
    name = getattr(op, "instance_name", None)
    if name not in instances:
        raise errors.OpPrereqError(
            f"Iallocator '{iallocator}' returned opcode {op.OP_ID} for"
            f" {name or 'no instance'}, which is not one of the instances to move",
            errors.ECODE_ENVIRON)
    return op


def EvacuationJobs(lu: Any, iallocator: str, result: list[Any], early_release: bool,
                   use_nodes: bool, instances: Iterable[str]
                   ) -> list[list[opcodes.OpCode]]:
    """The jobs of an evacuation or group change answer ``[moved, failed,
    jobs]`` (already checked for its shape by the request).

    Failed instances refuse the operation (OpPrereqError, ECODE_NORES,
    each with the allocator's reason); the moves are reported (the new
    nodes with ``use_nodes``, else the new group); ``early_release`` is
    set on the opcodes that have it (replace-disks).
    """
    moved, failed, jobs = result
    if failed:
        text = utils.CommaJoin(f"{name} ({reason})" for name, reason in failed)
        lu.LogWarning(f"Unable to evacuate instances {text}")
        raise errors.OpPrereqError(
            f"Iallocator '{iallocator}' is unable to evacuate instances {text}",
            errors.ECODE_NORES)
    if moved:
        lu.LogInfo("Instances to be moved: " + utils.CommaJoin(
            f"{name} (to {_Destination(lu.cfg, use_nodes, group, nodes)})"
            for name, group, nodes in moved))
    wanted = set(instances)
    loaded = []
    for job in jobs:
        ops = [_LoadOp(iallocator, data, wanted) for data in job]
        for op in ops:
            if _EARLY_RELEASE in op.GetAllSlots():
                setattr(op, _EARLY_RELEASE, early_release)
        if ops:
            loaded.append(ops)
    return loaded


def SubmitJobs(lu: Any, jobs: list[list[opcodes.OpCode]], feedback_fn: Any,
               nothing: str) -> dict[str, Any]:
    """Submit the LU's jobs; Ganeti's ``{"jobs": [(success, id), ...]}``
    (``nothing`` is reported when there are none)."""
    if not jobs:
        feedback_fn(nothing)
        return {constants.JOB_IDS_KEY: []}
    return {constants.JOB_IDS_KEY: lu.proc.SubmitManyJobs(jobs)}


# --- moving instances to other node groups ------------------------------------------

def ExpandGroups(cfg: Any, names: Iterable[str] | None) -> list[str]:
    """The UUIDs of the groups named (names or UUIDs), in order, each once;
    OpPrereqError (ECODE_NOENT) for an unknown one."""
    return list(dict.fromkeys(cfg.LookupNodeGroup(name) for name in names or []))


def GroupNodes(cfg: Any, group_uuids: Iterable[str]) -> list[str]:
    """The UUIDs of the nodes in the given groups."""
    groups = set(group_uuids)
    return [uuid for uuid, node in cfg.GetAllNodesInfo().items() if node.group in groups]


def CheckLockedGroups(lu: Any, groups: Iterable[str], what: str) -> None:
    """OpPrereqError (ECODE_STATE) unless the LU holds the locks of
    ``groups`` (the groups of ``what`` changed since they were declared)."""
    if getattr(lu, "glm", None) is None:
        return
    missing = set(groups) - lu.owned_locks(locking.LEVEL_NODEGROUP)
    if missing:
        names = utils.CommaJoin(sorted(NodeGroupName(lu.cfg, uuid) for uuid in missing))
        raise errors.OpPrereqError(
            f"The node groups of {what} changed since the locks were acquired (now"
            f" also in {names}); run the operation again", errors.ECODE_STATE)


def NodeGroupName(cfg: Any, uuid: str) -> str:
    """A node group's name (its UUID if unknown), for messages."""
    group = cfg.GetNodeGroup(uuid)
    return group.name if group is not None else uuid


def ChangeGroupJobs(lu: Any, iallocator: str, instances: list[str],
                    target_groups: list[str], early_release: bool, what: str
                    ) -> list[list[opcodes.OpCode]]:
    """The allocator's jobs moving ``instances`` (names) to one of
    ``target_groups`` (UUIDs): a ``change-group`` request (``what`` names
    the operation if the allocator finds no solution).

    The instances' networks must be connected to their new group: the
    targets offered are narrowed to the groups connected to them, an
    instance with no such target is refused, and so is an answer moving
    an instance to a group lacking one of its networks."""
    cfg = lu.cfg
    infos = [cfg.GetInstanceInfoByName(name) for name in instances]
    target_groups = instance_nics.CheckGroupsHaveNetworks(
        cfg, [inst for inst in infos if inst is not None], list(target_groups))
    req = ia.IAReqGroupChange(instances=list(instances),
                              target_groups=list(target_groups))
    result = ia.IAllocator(cfg, lu.rpc, req).RunOrFail(iallocator, what)
    instance_nics.CheckChosenGroups(cfg, result[0] or [])
    return EvacuationJobs(lu, iallocator, result, early_release, False, instances)
