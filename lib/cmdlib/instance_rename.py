"""Renaming an instance: ``LUInstanceRename``.

The instance must not be running. The new name is resolved (unless
``name_check`` is off) and, with ``ip_check``, its address must not answer;
it must not name another instance. For file-based disks the instance's
storage directory is renamed on the node first, then the configuration
(which rewrites the disks' paths) and the instance lock; a failing
configuration change renames the directory back, so nothing is left
half-done. Last, the OS rename script runs with the disks assembled; as in
Ganeti its failure is only a warning, the instance being renamed already.

The LU holds the Big Ganeti Lock exclusively: it replaces an instance lock
(locks are by instance name) and must keep the new name free meanwhile.
"""

from __future__ import annotations

import os
from typing import Any

from ganeti import constants, errors, locking, utils
from ganeti.cmdlib import instance_utils as iu
from ganeti.cmdlib.base import FeedbackFn, LogicalUnit


class LUInstanceRename(LogicalUnit):
    """Rename an instance; the result is the new name."""

    HPATH = "instance-rename"
    HTYPE = constants.HTYPE_INSTANCE
    REQ_BGL = True
    cfg: Any

    def CheckArguments(self) -> None:
        """The IP check needs the name check; the new name must be sane."""
        if self.op.ip_check and not self.op.name_check:
            raise errors.OpPrereqError(
                "IP address check requires a name check (use --no-ip-check with"
                " --no-name-check)", errors.ECODE_INVAL)
        self.op.new_name = iu.CheckNewInstanceName(self.op.new_name)

    def ExpandNames(self) -> None:
        """Resolve the instance; the exclusive Big Ganeti Lock covers both names."""
        inst = iu.ExpandInstance(self.cfg, self.op.instance_name)
        self.op.instance_name = inst.name
        self.op.instance_uuid = inst.uuid
        self.needed_locks = {}

    def CheckPrereq(self) -> None:
        """Stopped, node online, the new name resolvable (unless told not to
        check), its IP free (with ip_check) and not used by another instance."""
        cfg, op = self.cfg, self.op
        inst = cfg.GetInstanceInfo(op.instance_uuid)
        if inst is None:
            raise errors.OpPrereqError(f"Instance '{op.instance_name}' not known",
                                       errors.ECODE_NOENT)
        iu.CheckNotForthcoming(inst)
        self.instance = inst
        iu.CheckNodeOnline(cfg, inst.primary_node)
        iu.CheckInstanceState(self, inst, iu.INSTANCE_NOT_RUNNING, "cannot rename")
        new_name = op.new_name
        if op.name_check:
            host = iu.ResolveInstanceName(new_name)
            if not utils.MatchNameComponent(new_name, [host.name]):
                raise errors.OpPrereqError(
                    f"Resolved hostname '{host.name}' does not look the same as given"
                    f" hostname '{new_name}'", errors.ECODE_INVAL)
            new_name = op.new_name = host.name
            if op.ip_check:
                iu.CheckInstanceIpFree(host.ip, new_name)
        other = cfg.GetInstanceInfoByName(new_name)
        if other is not None and other.uuid != inst.uuid:
            raise errors.OpPrereqError(f"Instance '{new_name}' is already in the cluster",
                                       errors.ECODE_EXISTS)

    def BuildHooksEnv(self) -> dict[str, Any]:
        """The instance variables (old name) plus INSTANCE_NEW_NAME."""
        from ganeti import hooksmaster
        env = hooksmaster.BuildInstanceHookEnv(self.cfg, self.instance)
        env["INSTANCE_NEW_NAME"] = self.op.new_name
        return env

    def BuildHooksNodes(self) -> tuple[list[str], list[str]]:
        """The master and the instance's nodes."""
        nodes = [self.cfg.GetMasterNode(), *self.cfg.GetInstanceNodes(self.instance.uuid)]
        return nodes, nodes

    def _FileStorageDirs(self, new_name: str) -> tuple[str, str] | None:
        """(old, new) directory of the file-based disks, if they move."""
        disks = self.cfg.GetInstanceDisks(self.instance.uuid)
        dirs = {os.path.dirname(d.logical_id[1]) for d in disks
                if d.dev_type in constants.DTS_FILEBASED and len(d.logical_id) == 2}
        if not dirs or new_name == self.instance.name:
            return None
        if len(dirs) > 1:
            raise errors.OpExecError(
                f"Instance {self.instance.name} has disks in several directories"
                f" ({', '.join(sorted(dirs))}); cannot rename them")
        old_dir = dirs.pop()
        if os.path.basename(old_dir) != self.instance.name:
            # Not the instance's own directory: the configuration keeps the paths
            return None
        return old_dir, os.path.join(os.path.dirname(old_dir), new_name)

    def Exec(self, feedback_fn: FeedbackFn) -> str:
        """Rename the storage directory, the configuration and the lock, then
        run the OS rename script."""
        cfg, inst = self.cfg, self.instance
        old_name, new_name = inst.name, self.op.new_name
        pnode = inst.primary_node
        moved = self._FileStorageDirs(new_name)
        if moved is not None:
            result = self.rpc.call_file_storage_dir_rename(pnode, *moved)
            result.Raise(f"Could not rename on node {iu.NodeName(cfg, pnode)} directory"
                         f" '{moved[0]}' to '{moved[1]}'")
        try:
            cfg.RenameInstance(inst.uuid, new_name)
        except Exception:
            if moved is not None:
                undo = self.rpc.call_file_storage_dir_rename(pnode, moved[1], moved[0])
                if undo.fail_msg:
                    self.LogWarning(f"Could not rename directory '{moved[1]}' back to"
                                    f" '{moved[0]}' on node {iu.NodeName(cfg, pnode)}:"
                                    f" {undo.fail_msg}")
            raise
        if self.glm is not None and new_name != old_name:
            if old_name in self.glm.names(locking.LEVEL_INSTANCE):
                self.glm.remove(locking.LEVEL_INSTANCE, [old_name])
            if new_name not in self.glm.names(locking.LEVEL_INSTANCE):
                self.glm.add(locking.LEVEL_INSTANCE, [new_name])
        renamed = cfg.GetInstanceInfo(inst.uuid)
        # Assembled for the script only: disks_active stays as it is
        disks = cfg.GetInstanceDisks(inst.uuid)
        try:
            iu.AssembleDisks(self, renamed, disks=disks)
        except errors.OpExecError as err:
            self.LogWarning(f"Not running the OS rename script of instance {new_name}"
                            f" (but the instance has been renamed in Ganeti): {err}")
            return new_name
        try:
            result = self.rpc.call_instance_run_rename(
                pnode, iu.InstanceRpcDict(cfg, renamed), old_name,
                getattr(self.op, "debug_level", 0) or 0)
            result.Warn(f"Could not run OS rename script for instance {new_name} on node"
                        f" {iu.NodeName(cfg, pnode)} (but the instance has been renamed"
                        " in Ganeti)", self.LogWarning)
        finally:
            iu.ShutdownDisks(self, renamed, disks=disks)
        return new_name
