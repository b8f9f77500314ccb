"""Removing an instance: ``LUInstanceRemove``.

Stops the instance, removes its disks on the node, then removes it from
the configuration. With ``ignore_failures`` a failing stop or disk
removal is only a warning. Holds the instance's lock exclusively and its
nodes (and their resources); the processor removes the instance lock
after a successful ``Exec`` (``remove_locks``), so the Big Ganeti Lock is
only shared and removals run in parallel.
"""

from __future__ import annotations

from typing import Any

from ganeti import errors, locking
from ganeti.cmdlib import instance_forthcoming as forthcoming
from ganeti.cmdlib import instance_utils as iu
from ganeti.cmdlib.base import FeedbackFn, Interruption


class LUInstanceRemove(iu.InstanceLU):
    """Remove an instance and its disks."""

    HPATH = "instance-remove"
    REQ_BGL = False
    LOCK_NODE_RES = True
    #: An instance whose creation did not finish may be removed by hand
    ALLOW_FORTHCOMING = True
    cfg: Any

    @classmethod
    def Interrupted(cls, cfg: Any, op: Any) -> Interruption | None:
        """The removal is done once the instance has left the configuration
        (its last step); otherwise it stays, its disks perhaps partly
        removed, and removing it again finishes the work."""
        name = str(op.instance_name or "")
        # As ExpandNames found it: the full name or an abbreviation
        if not cfg.ExpandInstanceName(name):
            return Interruption(True, f"instance {name} had been removed")
        return Interruption(False, f"the removal of instance {name} did not finish;"
                            " it still exists, perhaps stopped and with some of its"
                            " disks removed: remove it again")

    def ExpandNames(self) -> None:
        """Lock the instance (removed after Exec), its nodes and their resources."""
        super().ExpandNames()
        self.remove_locks[locking.LEVEL_INSTANCE] = [self.op.instance_name]

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
        if forthcoming.IsReservation(inst):
            # Nothing of it exists on the nodes
            feedback_fn(f"Removing forthcoming instance {inst.name} out of cluster"
                        " config")
            self.cfg.RemoveInstance(inst.uuid)
            return
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
