"""Removing an instance: ``LUInstanceRemove``.

Stops the instance, removes its disks on the node, then removes it from
the configuration (and its lock). With ``ignore_failures`` a failing stop
or disk removal is only a warning. Holds the Big Ganeti Lock exclusively,
as it removes an instance lock.
"""

from __future__ import annotations

from typing import Any

from ganeti import constants, errors, locking
from ganeti.cmdlib import instance_utils as iu
from ganeti.cmdlib.base import FeedbackFn, LogicalUnit


class LUInstanceRemove(LogicalUnit):
    """Remove an instance and its disks."""

    HPATH = "instance-remove"
    HTYPE = constants.HTYPE_INSTANCE
    REQ_BGL = True
    cfg: Any

    def ExpandNames(self) -> None:
        """Resolve the instance; the Big Ganeti Lock is held exclusively."""
        inst = iu.ExpandInstance(self.cfg, self.op.instance_name)
        self.op.instance_name = inst.name
        self.op.instance_uuid = inst.uuid
        self.needed_locks = {}

    def CheckPrereq(self) -> None:
        """Load the instance."""
        self.instance = self.cfg.GetInstanceInfo(self.op.instance_uuid)
        if self.instance is None:
            raise errors.OpPrereqError(f"Instance '{self.op.instance_name}' not known",
                                       errors.ECODE_NOENT)

    def BuildHooksEnv(self) -> dict[str, Any]:
        """The instance variables plus SHUTDOWN_TIMEOUT (computed once: after
        Exec, for the post hooks, the instance is gone)."""
        from ganeti import hooksmaster
        if getattr(self, "_hooks_env", None) is None:
            env = hooksmaster.BuildInstanceHookEnv(self.cfg, self.instance)
            env["SHUTDOWN_TIMEOUT"] = self.op.shutdown_timeout
            self._hooks_env = env
        return dict(self._hooks_env)

    def BuildHooksNodes(self) -> tuple[list[str], list[str]]:
        """Pre: the master; post: the master and the instance's nodes."""
        master = self.cfg.GetMasterNode()
        return [master], [master, *self.cfg.GetInstanceNodes(self.instance.uuid)]

    def Exec(self, feedback_fn: FeedbackFn) -> None:
        """Shut down, remove the disks, remove from the configuration."""
        inst, op = self.instance, self.op
        pnode = iu.NodeName(self.cfg, inst.primary_node)
        feedback_fn(f"Shutting down instance {inst.name} on node {pnode}")
        result = self.rpc.call_instance_shutdown(
            inst.primary_node, iu.InstanceRpcDict(self.cfg, inst), op.shutdown_timeout,
            [])
        if result.fail_msg:
            msg = f"Could not shutdown instance {inst.name} on node {pnode}:" \
                f" {result.fail_msg}"
            if not op.ignore_failures:
                raise errors.OpExecError(msg)
            feedback_fn(f"Warning: {msg}")
        disks = self.cfg.GetInstanceDisks(inst.uuid)
        if disks:
            feedback_fn(f"Removing the disks of instance {inst.name}")
            iu.ShutdownInstanceDisks(self, inst)
            if not iu.RemoveDisks(self, disks, inst.primary_node, inst.name) and \
                    not op.ignore_failures:
                raise errors.OpExecError(f"Can't remove the disks of instance"
                                         f" {inst.name}; use --ignore-failures to"
                                         " remove it from the configuration anyway")
        feedback_fn(f"Removing instance {inst.name} out of cluster config")
        self.cfg.RemoveInstance(inst.uuid)
        if self.glm is not None and inst.name in self.glm.names(locking.LEVEL_INSTANCE):
            self.glm.remove(locking.LEVEL_INSTANCE, [inst.name])
