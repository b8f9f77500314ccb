"""Exports of instances (``gnt-backup``): LUBackupPrepare,
LUBackupExport and LUBackupRemove.

A local export (``gnt-backup export -n NODE``) writes the instance's disks
and configuration to the export directory of a node, as Ganeti does:

1. the instance is shut down (unless ``--noshutdown``); with
   ``--zero-free-space`` the free space of its disks is then zeroed by
   booting the cluster's zeroing image in a helper VM
   (:mod:`ganeti.cmdlib.instance_helpervm`);
2. each disk whose type can be snapshotted (plain: ``lvcreate -s``, file:
   a copy) is snapshotted on the primary node, and a running instance is
   started again at once; for other disk types the instance stays down
   until the data is copied (``--noshutdown`` is refused for them);
3. each disk (its snapshot) goes through the import/export daemons
   (:mod:`ganeti.cmdlib.impexp`): the instance's OS export script writes
   it on the primary node, the target node stores it as a file in
   ``<export dir>/<instance>.new``; the snapshots are removed;
4. ``finalize_export`` writes ``config.ini`` (:mod:`ganeti.export_config`)
   and puts the new export in the place of the older one; older exports of
   the instance on the other nodes are removed;
5. ``--remove-instance`` removes the instance (``--ignore-remove-failures``:
   its disks' removal may fail), else a stopped instance that should run
   is started again.

If a copy fails, the partial export is removed, the previous export stays,
and the instance is running again if it was; the job fails naming the
disks. Remote exports (to another cluster) are
:mod:`ganeti.cmdlib.backup_remote`'s.
"""

from __future__ import annotations

import os
from typing import Any

from ganeti import constants, errors, export_config, locking, objects
from ganeti.cmdlib import disks as disks_mod
from ganeti.cmdlib import impexp
from ganeti.cmdlib import instance_helpervm as helpervm
from ganeti.cmdlib import instance_utils as iu
from ganeti.cmdlib.base import FeedbackFn, NoHooksLU
from ganeti.cmdlib.instance_import import CheckCompression
from ganeti.cmdlib.node import ExpandNode

#: Disk types exported from a snapshot, the instance running meanwhile
SNAPSHOT_TYPES = frozenset([constants.DT_PLAIN, constants.DT_FILE])


def _RemoteModule(name: str) -> Any:
    """A function of :mod:`ganeti.cmdlib.backup_remote`, or OpPrereqError
    when remote exports are not available."""
    try:
        from ganeti.cmdlib import backup_remote
        return getattr(backup_remote, name)
    except (ImportError, AttributeError):
        raise errors.OpPrereqError("Remote exports are not supported yet",
                                   errors.ECODE_INVAL) from None


def ExportPath(name: str, dump: str | None = None, new: bool = False) -> str:
    """An export's directory (or one of its files) as the cluster sees it."""
    directory = os.path.join(constants.DEFAULT_EXPORT_DIR,
                             name + (export_config.NEW_SUFFIX if new else ""))
    return os.path.join(directory, dump) if dump else directory


class LUBackupPrepare(NoHooksLU):
    """Prepare an export: nothing for local exports; keys and certificates
    for remote ones."""

    REQ_BGL = False
    cfg: Any

    def ExpandNames(self) -> None:
        """The instance."""
        inst = iu.ExpandInstance(self.cfg, self.op.instance_name)
        self.op.instance_name, self.op.instance_uuid = inst.name, inst.uuid
        self.needed_locks = {locking.LEVEL_INSTANCE: [inst.name]}

    def CheckPrereq(self) -> None:
        """The instance exists; remote mode is available."""
        self.instance = self.cfg.GetInstanceInfo(self.op.instance_uuid)
        if self.instance is None:
            raise errors.OpPrereqError(f"Instance '{self.op.instance_name}' was removed"
                                       " meanwhile", errors.ECODE_NOENT)
        if self.op.mode == constants.EXPORT_MODE_REMOTE:
            self._prepare = _RemoteModule("PrepareRemoteExport")

    def Exec(self, feedback_fn: FeedbackFn) -> dict[str, Any] | None:
        """None (local), or the remote export's handshake, key and CA."""
        if self.op.mode == constants.EXPORT_MODE_REMOTE:
            return self._prepare(self)
        return None


class LUBackupExport(iu.InstanceLU):
    """Export an instance to a node's export directory (or another cluster)."""

    HPATH = "instance-export"
    _hooks_env: dict[str, Any] | None = None
    snapshots: list[objects.Disk]
    assembled: bool = False
    was_down_by_us: bool = False

    def CheckArguments(self) -> None:
        """Mode and target fit together; removal needs the shutdown."""
        op = self.op
        if op.mode == constants.EXPORT_MODE_LOCAL and not isinstance(op.target_node, str):
            raise errors.OpPrereqError("A local export needs a target node name",
                                       errors.ECODE_INVAL)
        if op.remove_instance and not op.shutdown:
            raise errors.OpPrereqError("Can not remove instance without shutting it down"
                                       " before", errors.ECODE_INVAL)
        if not op.zero_free_space and (op.zeroing_timeout_fixed is not None
                                       or op.zeroing_timeout_per_mib is not None):
            raise errors.OpPrereqError("The zeroing timeout options can only be used"
                                       " with --zero-free-space", errors.ECODE_INVAL)
        for name in ("zeroing_timeout_fixed", "zeroing_timeout_per_mib"):
            value = getattr(op, name)
            if value is not None and value < 0:
                raise errors.OpPrereqError(f"Invalid {name} {value}: must not be"
                                           " negative", errors.ECODE_INVAL)
        if op.long_sleep and not op.shutdown:
            raise errors.OpPrereqError("--long-sleep only makes sense when the instance"
                                       " may be shut down (without --noshutdown)",
                                       errors.ECODE_INVAL)

    def ExpandNames(self) -> None:
        """The instance; in local mode every node (older exports of the
        instance are removed from the other nodes)."""
        super().ExpandNames()
        if self.op.mode == constants.EXPORT_MODE_LOCAL:
            node = ExpandNode(self.cfg, self.op.target_node)
            self.op.target_node, self.op.target_node_uuid = node.name, node.uuid
            assert self.needed_locks is not None
            self.needed_locks[locking.LEVEL_NODE] = locking.ALL_SET
        if self.op.remove_instance:
            self.remove_locks[locking.LEVEL_INSTANCE] = [self.op.instance_name]

    def DeclareLocks(self, level: int) -> None:
        """All nodes (local) or the instance's (remote)."""
        if self.op.mode != constants.EXPORT_MODE_LOCAL:
            super().DeclareLocks(level)

    def CheckPrereq(self) -> None:
        """A usable target node, a known compression tool, a disk layout
        the chosen shutdown mode can export."""
        super().CheckPrereq()
        cfg: Any = self.cfg
        inst = self.instance
        self.disks = cfg.GetInstanceDisks(inst.uuid)
        self.op.compress = CheckCompression(cfg, self.op.compress)
        iu.CheckNodeOnline(cfg, inst.primary_node, "Cannot export from offline node")
        if self.op.mode == constants.EXPORT_MODE_REMOTE:
            self.remote_state = _RemoteModule("CheckRemoteExport")(self)
            self.exporter = _RemoteModule("ExportRemote")
            return
        self.target = iu.CheckTargetNode(cfg, self.op.target_node_uuid,
                                         "Cannot export to {state} node {name}")
        unsnappable = [disk.iv_name or str(idx) for idx, disk in enumerate(self.disks)
                       if disk.dev_type not in SNAPSHOT_TYPES]
        if unsnappable and not self.op.shutdown:
            raise errors.OpPrereqError(
                f"Cannot export instance {inst.name} without shutting it down: disk(s)"
                f" {', '.join(unsnappable)} cannot be snapshotted", errors.ECODE_STATE)
        if unsnappable and self._KeptRunning() and not self.op.long_sleep:
            raise errors.OpPrereqError(
                f"Disk(s) {', '.join(unsnappable)} of instance {inst.name} cannot be"
                " snapshotted, so the instance would stay down for the whole export:"
                " allow it with --long-sleep", errors.ECODE_STATE)
        if self.op.zero_free_space:
            self._CheckZeroing()

    def _KeptRunning(self) -> bool:
        """Whether the instance is to run again after the export (Ganeti's
        reason to prefer snapshots)."""
        return (self.instance.admin_state == constants.ADMINST_UP
                and not self.op.remove_instance)

    def _CheckZeroing(self) -> None:
        """``--zero-free-space``, as Ganeti checks it: the instance is shut
        down, boots from its disk, and the cluster has a zeroing image
        (and a template for the helper VM's temporary disk)."""
        cfg: Any = self.cfg
        op = self.op
        if not op.shutdown:
            raise errors.OpPrereqError("Zeroing the free space needs the instance shut"
                                       " down (without --noshutdown)", errors.ECODE_INVAL)
        hvparams = cfg.GetClusterInfo().FillHV(self.instance)
        boot_order = hvparams.get(constants.HV_BOOT_ORDER)
        if boot_order is not None and boot_order != constants.HT_BO_DISK:
            raise errors.OpPrereqError("Zeroing the free space needs the instance to boot"
                                       f" from its disk (boot_order is {boot_order})",
                                       errors.ECODE_INVAL)
        if not cfg.GetClusterInfo().zeroing_image:
            raise errors.OpPrereqError("A zeroing image must be set for zeroing to work"
                                       " (gnt-cluster modify --zeroing-image)",
                                       errors.ECODE_INVAL)
        helpervm.TemporaryDiskTemplate(cfg, self.instance)

    def BuildHooksEnv(self) -> dict[str, Any]:
        """Ganeti's export variables (computed once: with --remove-instance
        the instance is gone for the post hooks)."""
        if self._hooks_env is not None:
            return dict(self._hooks_env)
        env = super().BuildHooksEnv()
        self._hooks_env = env
        env.update({"EXPORT_MODE": self.op.mode, "EXPORT_DO_SHUTDOWN": self.op.shutdown,
                    "SHUTDOWN_TIMEOUT": self.op.shutdown_timeout,
                    "REMOVE_INSTANCE": int(bool(self.op.remove_instance))})
        if self.op.mode == constants.EXPORT_MODE_LOCAL:
            env["EXPORT_NODE"] = self.op.target_node
        return dict(env)

    def BuildHooksNodes(self) -> tuple[list[str], list[str]]:
        """The master, the primary node and (local) the target node."""
        nodes = [self.cfg.GetMasterNode(), self.instance.primary_node]
        if self.op.mode == constants.EXPORT_MODE_LOCAL:
            nodes.append(self.op.target_node_uuid)
        nodes = list(dict.fromkeys(nodes))
        return nodes, nodes

    # --- steps ------------------------------------------------------------------------

    def _Shutdown(self, feedback_fn: FeedbackFn) -> None:
        inst = self.instance
        feedback_fn(f"Shutting down instance {inst.name}")
        result = self.rpc.call_instance_shutdown(
            inst.primary_node, iu.InstanceRpcDict(self.cfg, inst), self.op.shutdown_timeout,
            getattr(self.op, "reason", None) or [])
        if result.fail_msg:
            raise errors.OpExecError(f"Could not shutdown instance {inst.name} on node"
                                     f" {iu.NodeName(self.cfg, inst.primary_node)}:"
                                     f" {result.fail_msg}")

    def _Start(self, feedback_fn: FeedbackFn) -> None:
        """Start the instance again if it is marked up (failures: warnings)."""
        inst = self.cfg.GetInstanceInfo(self.instance.uuid)
        if inst is None or inst.admin_state != constants.ADMINST_UP:
            return
        feedback_fn(f"Starting instance {inst.name}")
        try:
            iu.StartInstanceOnNode(self, inst, reason=getattr(self.op, "reason", None))
        except errors.OpExecError as err:
            self.LogWarning(str(err))

    def _Snapshot(self, idx: int, disk: objects.Disk) -> objects.Disk:
        """A snapshot of ``disk`` on the primary node, assembled."""
        node = self.instance.primary_node
        result = self.rpc.call_blockdev_snapshot(node, disk.ToDict(), None, None)
        if result.fail_msg:
            raise errors.OpExecError(f"Could not snapshot disk/{idx} of instance"
                                     f" {self.instance.name}: {result.fail_msg}")
        snap = objects.Disk(dev_type=disk.dev_type, size=disk.size,
                            logical_id=tuple(result.payload), iv_name=disk.iv_name,
                            name=disk.name, mode=disk.mode, params=dict(disk.params or {}),
                            children=[], nodes=list(disk.nodes or []))
        snap.uuid = disk.uuid
        self.snapshots.append(snap)
        # Not as primary: the instance's disk links stay the disks'
        result = self.rpc.call_blockdev_assemble(node, snap.ToDict(),
                                                 {"name": self.instance.name}, False, idx)
        if result.fail_msg:
            raise errors.OpExecError(f"Could not activate the snapshot of disk/{idx}:"
                                     f" {result.fail_msg}")
        return snap

    def _RemoveSnapshots(self) -> None:
        node = self.instance.primary_node
        for snap in self.snapshots:
            result = self.rpc.call_blockdev_remove(node, snap.ToDict())
            if result.fail_msg:
                self.LogWarning(f"Could not remove the snapshot {snap.logical_id} of"
                                f" {snap.iv_name}: {result.fail_msg}")
        self.snapshots = []

    def _RemovePartial(self) -> None:
        result = self.rpc.call_export_remove(self.target.uuid, self.instance.name +
                                             export_config.NEW_SUFFIX)
        if result.fail_msg and "not found" not in result.fail_msg:
            self.LogWarning(f"Could not remove the partial export on node"
                            f" {self.target.name}: {result.fail_msg}")

    def _Sources(self, feedback_fn: FeedbackFn) -> list[objects.Disk]:
        """The disks to read: snapshots where possible (the instance is
        restarted after them), else the disks themselves, assembled."""
        inst = self.instance
        if all(disk.dev_type in SNAPSHOT_TYPES for disk in self.disks):
            if self.disks:
                feedback_fn("Creating snapshots of the disks")
            try:
                sources = [self._Snapshot(idx, disk)
                           for idx, disk in enumerate(self.disks)]
            except errors.OpExecError as err:
                # As Ganeti: without snapshots the instance stays down for the
                # whole export, which a running instance needs --long-sleep for
                self._RemoveSnapshots()
                if not self.op.shutdown:
                    raise errors.OpExecError(
                        f"{err}; not all disks could be snapshotted, and a live export"
                        " (--noshutdown) was asked for") from err
                if self._KeptRunning() and not self.op.long_sleep:
                    raise errors.OpExecError(
                        f"{err}; not all disks could be snapshotted, and the instance"
                        " may not stay down for the whole export (--long-sleep)"
                        ) from err
                self.LogWarning(f"{err}; exporting from the disks themselves, the"
                                " instance staying down")
            else:
                if self.was_down_by_us and not self.op.remove_instance:
                    self._Start(feedback_fn)
                    self.was_down_by_us = False
                return sources
        disks_mod.AssembleOnNodes(self, inst, list(enumerate(self.disks)),
                                  inst.primary_node)
        self.assembled = True
        return list(self.disks)

    def _Transfer(self, feedback_fn: FeedbackFn, sources: list[objects.Disk]) -> list[bool]:
        inst = self.instance
        transfers = []
        for idx, disk in enumerate(sources):
            dest = ExportPath(inst.name, export_config.DumpName(disk.ToDict()), new=True)
            transfers.append(impexp.DiskTransfer(
                f"disk/{idx}", constants.IEIO_SCRIPT, [disk.ToDict(), idx],
                constants.IEIO_FILE, [dest]))
        return impexp.TransferInstanceData(
            self, feedback_fn, inst.primary_node, self.target.uuid,
            self.target.secondary_ip or self.target.primary_ip, self.op.compress, inst,
            transfers)

    def _Finalize(self, feedback_fn: FeedbackFn, sources: list[objects.Disk]) -> None:
        inst = self.instance
        inst_dict = iu.InstanceRpcDict(self.cfg, inst)
        inst_dict["disk_template"] = self.cfg.GetInstanceDiskTemplate(inst.uuid)
        inst_dict["primary_node"] = iu.NodeName(self.cfg, inst.primary_node)
        feedback_fn(f"Finalizing the export on node {self.target.name}")
        result = self.rpc.call_finalize_export(self.target.uuid, inst_dict,
                                               [disk.ToDict() for disk in sources])
        if result.fail_msg:
            raise errors.OpExecError(f"Could not finalize the export of {inst.name} on"
                                     f" node {self.target.name}: {result.fail_msg}")

    def _RemoveOlderExports(self, feedback_fn: FeedbackFn) -> None:
        """Remove this instance's exports from the other nodes."""
        name = self.instance.name
        others = [uuid for uuid in self.cfg.GetNodeList() if uuid != self.target.uuid
                  and not self.cfg.GetNodeInfo(uuid).offline]
        if not others:
            return
        lists = self.rpc.call_export_list(others)
        for uuid in others:
            res = lists.get(uuid)
            if res is None or res.fail_msg or name not in (res.payload or []):
                continue
            feedback_fn(f"Removing the older export of {name} on node"
                        f" {iu.NodeName(self.cfg, uuid)}")
            result = self.rpc.call_export_remove(uuid, name)
            if result.fail_msg:
                self.LogWarning(f"Could not remove the older export of {name} on node"
                                f" {iu.NodeName(self.cfg, uuid)}: {result.fail_msg}")

    def _RemoveInstance(self, feedback_fn: FeedbackFn) -> None:
        inst = self.instance
        feedback_fn(f"Removing instance {inst.name}")
        if self.disks:
            iu.ShutdownInstanceDisks(self, inst)
            if not iu.RemoveDisks(self, self.disks, inst.primary_node, inst.name) and \
                    not self.op.ignore_remove_failures:
                raise errors.OpExecError(
                    f"Could not remove the disks of instance {inst.name}; the export is"
                    " complete (use --ignore-remove-failures to remove the instance from"
                    " the configuration anyway)")
        self.cfg.RemoveInstance(inst.uuid)

    def Exec(self, feedback_fn: FeedbackFn) -> tuple[bool, list[bool]]:
        """Shut down, snapshot, copy, finalize; undo on failure."""
        inst = self.instance
        self.snapshots = []
        self.assembled = False
        self.was_down_by_us = False
        if self.op.shutdown:
            self._Shutdown(feedback_fn)
            self.was_down_by_us = True
        if self.op.zero_free_space:
            self._ZeroFreeSpace(feedback_fn)
        results: list[bool]
        if self.op.mode == constants.EXPORT_MODE_REMOTE:
            try:
                results = self.exporter(self, feedback_fn, self.remote_state)
            finally:
                if self.was_down_by_us and not self.op.remove_instance:
                    self._Start(feedback_fn)
                    self.was_down_by_us = False
            if not all(results):
                self._FailAfterUndo(feedback_fn, results)
            return self._Done(feedback_fn, False, results)
        self._RemovePartial()
        results = []
        try:
            sources = self._Sources(feedback_fn)
            results = self._Transfer(feedback_fn, sources)
            if all(results):
                self._Finalize(feedback_fn, sources)
        except errors.OpExecError as err:
            self.LogWarning(str(err))
            results = results or [False] * max(len(self.disks), 1)
            if all(results):
                results = [False] * len(results)
        finally:
            self._RemoveSnapshots()
            if self.assembled and not inst.disks_active:
                disks_mod.ShutdownOnNodes(self, inst, self.disks, inst.primary_node,
                                          inst.primary_node)
        if not all(results) or (not results and self.disks):
            self._RemovePartial()
            self._FailAfterUndo(feedback_fn, results)
        self._RemoveOlderExports(feedback_fn)
        return self._Done(feedback_fn, True, results)

    def _ZeroFreeSpace(self, feedback_fn: FeedbackFn) -> None:
        """Zero the stopped instance's free space in a helper VM; on a
        failure the instance is started again if it was up."""
        try:
            helpervm.ZeroFreeSpace(self, self.instance, self.op.zeroing_timeout_fixed,
                                   self.op.zeroing_timeout_per_mib, feedback_fn,
                                   self.op.shutdown_timeout)
        except errors.OpExecError as err:
            if self.was_down_by_us:
                self._Start(feedback_fn)
            raise errors.OpExecError(f"Zeroing the free space of instance"
                                     f" {self.instance.name} failed: {err}; nothing was"
                                     " exported") from err

    def _FailAfterUndo(self, feedback_fn: FeedbackFn, results: list[bool]) -> None:
        if self.was_down_by_us:
            self._Start(feedback_fn)
        failed = [f"disk/{idx}" for idx, ok in enumerate(results) if not ok]
        raise errors.OpExecError(f"Export of instance {self.instance.name} failed"
                                 f" ({', '.join(failed) or 'finalizing'}); the instance"
                                 " is left as it was and no partial export remains")

    def _Done(self, feedback_fn: FeedbackFn, finalized: bool,
              results: list[bool]) -> tuple[bool, list[bool]]:
        if self.op.remove_instance:
            self._RemoveInstance(feedback_fn)
        elif self.was_down_by_us:
            self._Start(feedback_fn)
        return finalized, results


class LUBackupRemove(NoHooksLU):
    """Remove the exports of an instance (which may no longer exist) from
    every node."""

    REQ_BGL = False

    def ExpandNames(self) -> None:
        """Every node (the exports may be anywhere)."""
        cfg: Any = self.cfg
        inst = cfg.GetInstanceInfoByName(cfg.ExpandInstanceName(self.op.instance_name)
                                         or "") if self.op.instance_name else None
        # A removed instance: its export is known by the full name only
        self.export_name = inst.name if inst is not None else self.op.instance_name
        self.needed_locks = {locking.LEVEL_NODE: locking.ALL_SET}
        self.share_locks[locking.LEVEL_NODE] = 1

    def Exec(self, feedback_fn: FeedbackFn) -> None:
        """Remove the export wherever it is; none found is an error."""
        cfg: Any = self.cfg
        name = self.export_name
        nodes = [uuid for uuid in sorted(cfg.GetNodeList())
                 if not cfg.GetNodeInfo(uuid).offline]
        lists = self.rpc.call_export_list(nodes) if nodes else {}
        found = False
        for uuid in nodes:
            res = lists.get(uuid)
            if res is None or res.fail_msg:
                self.LogWarning(f"Failed to query node {iu.NodeName(cfg, uuid)} (continuing):"
                                f" {res.fail_msg if res is not None else 'no answer'}")
                continue
            if name not in (res.payload or []):
                continue
            found = True
            result = self.rpc.call_export_remove(uuid, name)
            if result.fail_msg:
                self.LogWarning(f"Could not remove export for instance {name} on node"
                                f" {iu.NodeName(cfg, uuid)}: {result.fail_msg}")
        if not found:
            raise errors.OpExecError(f"No export found for instance {name}; if it was"
                                     " removed, give its full (FQDN) name")
