"""``gnt-instance modify --new-primary NODE``: record a new primary node.

As Ganeti's man page has it, the option sets the primary node of an
instance whose disks have already been moved there by hand (or which
every node sees, as ``sharedfile`` images); unless ``--force`` is given
the instance must no longer run on its current primary node. Only the
configuration changes: the instance's primary node, and the node of each
of its disks.

Refused: a DRBD instance (its two nodes are in its disks' identity: use
failover, migrate or replace-disks), the current primary node, a node
that cannot take instances (offline, drained, not vm_capable), a node
whose group lacks a network of the instance's NICs, and any other change
in the same modification.
"""

from __future__ import annotations

from typing import Any

from ganeti import constants, errors, locking
from ganeti.cmdlib import instance_nics as nics_mod
from ganeti.cmdlib import instance_storage
from ganeti.cmdlib import instance_utils as iu
from ganeti.cmdlib.base import FeedbackFn
from ganeti.cmdlib.node import ExpandNode

#: Parameters of OpInstanceSetParams a new primary node goes without
_OTHER_CHANGES = ("nics", "disks", "disk_template", "beparams", "hvparams",
                  "runtime_mem", "os_name", "osparams", "osparams_private")


def CheckArguments(lu: Any) -> None:
    """The opcode alone: nothing else changes with the primary node."""
    op = lu.op
    others = [name for name in _OTHER_CHANGES if getattr(op, name, None)]
    if op.offline is not None:
        others.append("offline")
    if op.instance_communication is not None:
        others.append("instance_communication")
    if others:
        raise errors.OpPrereqError(
            f"Changing the primary node (--new-primary) cannot be combined with other"
            f" changes ({', '.join(others)}); modify the instance in two steps",
            errors.ECODE_INVAL)


def ExpandNames(lu: Any) -> None:
    """Resolve the new primary node; it is locked with the instance's."""
    op = lu.op
    node = ExpandNode(lu.cfg, op.pnode or iu.NodeName(lu.cfg, op.pnode_uuid))
    op.pnode, op.pnode_uuid = node.name, node.uuid


def DeclareLocks(lu: Any, level: int) -> None:
    """Add the new primary node to the node and node resource locks."""
    uuid = lu.op.pnode_uuid
    if level in (locking.LEVEL_NODE, locking.LEVEL_NODE_RES) and \
            lu.needed_locks is not None and level in lu.needed_locks and \
            uuid not in lu.needed_locks[level]:
        lu.needed_locks[level].append(uuid)


def CheckPrereq(lu: Any) -> None:
    """Under the locks: template, target node, networks, runtime state.

    Sets the attributes the LU's hooks read, unchanged."""
    cfg, op, inst = lu.cfg, lu.op, lu.instance
    # The hooks describe the instance as it is
    lu.beparams, lu.hvparams = inst.beparams, inst.hvparams
    lu.new_nics, lu.os_name = list(inst.nics), inst.os
    if op.pnode_uuid == inst.primary_node:
        raise errors.OpPrereqError(
            f"Node {op.pnode} is already the primary node of instance {inst.name}",
            errors.ECODE_INVAL)
    disks = cfg.GetInstanceDisks(inst.uuid)
    mirrored = sorted({disk.dev_type for disk in disks
                       if disk.dev_type in constants.DTS_INT_MIRROR})
    if mirrored:
        raise errors.OpPrereqError(
            f"Instance {inst.name} has {', '.join(mirrored)} disks, whose nodes are"
            " part of the disks: its primary node changes with gnt-instance failover"
            " or migrate (or replace-disks), not with --new-primary",
            errors.ECODE_INVAL)
    node = iu.CheckTargetNode(cfg, op.pnode_uuid,
                              "Cannot make {state} node {name} a primary node")
    group = nics_mod.GroupOfNode(cfg, node.uuid)
    for idx, nic in enumerate(inst.nics):
        if nic.network:
            try:
                nics_mod.ConnectionParams(cfg, nic.network, group)
            except errors.OpPrereqError as err:
                raise errors.OpPrereqError(f"NIC {idx} of instance {inst.name}: {err}",
                                           errors.ECODE_STATE) from None
    if op.force:
        return
    old = inst.primary_node
    old_name = iu.NodeName(cfg, old)
    info = lu.rpc.call_instance_info([old], inst.name, inst.hypervisor,
                                     cfg.GetClusterInfo().FillHV(inst))[old]
    if info.fail_msg:
        # As Ganeti: what cannot be checked is only a warning
        lu.LogWarning(f"Cannot check whether instance {inst.name} still runs on node"
                      f" {old_name}: {info.fail_msg}")
    elif info.payload:
        raise errors.OpPrereqError(
            f"Instance {inst.name} is still running on node {old_name}; stop it"
            " first (or use --force)", errors.ECODE_STATE)


def Exec(lu: Any, feedback_fn: FeedbackFn) -> list[tuple[str, Any]]:
    """Record the new primary node (the disks move with it)."""
    inst, op = lu.instance, lu.op
    feedback_fn(f"Setting the primary node of instance {inst.name} to {op.pnode}")
    instance_storage.SetInstancePrimaryNode(lu, inst.uuid, op.pnode_uuid)
    return [("pnode", op.pnode)]
