"""Moving an instance to another node: failover and migrate.

Both LUs use one tasklet, :class:`TLMigrateInstance`, as Ganeti does. A
failover stops the instance on the source node, moves it in the
configuration and starts it on the target; a migration moves the running
instance with the hypervisor's migration steps (``migration_info`` on the
source, ``accept_instance`` on the target, ``instance_migrate`` and status
polling on the source, then finalization on both sides, or an abort on
both sides when a step fails).

Instances whose storage every node reaches (diskless, sharedfile,
blockdev, ext, rbd) move to the node given with ``-n`` or, without it, to
the node an instance allocator chooses (``-I``, else the cluster's default
allocator): a ``relocate`` request away from the primary node, while every
node is locked; the nodes not chosen are released at once. DRBD instances
move to their secondary node only, which is the default target (neither
an allocator nor another node may be given, as in Ganeti); their mirrors
go dual-primary while the memory moves and back to single-primary after
it, as in Ganeti.
"""

from __future__ import annotations

import time
from typing import Any

from ganeti import constants, errors, locking, objects
from ganeti.cmdlib import iallocator as ia
from ganeti.cmdlib import iallocator_relocation as iar
from ganeti.cmdlib import instance_storage as ist
from ganeti.cmdlib import instance_utils as iu
from ganeti.cmdlib.base import FeedbackFn, LogicalUnit, Tasklet
from ganeti.cmdlib.node import ExpandNode

#: Seconds between two migration status polls (the first poll is at once,
#: then the interval grows up to the maximum)
_POLL_FIRST = 0.1
_POLL_MAX = 1.0
#: Seconds between two progress messages
_FEEDBACK_INTERVAL = 10.0


class TLMigrateInstance(Tasklet):
    """Fail over or migrate one instance to ``lu.op.target_node``.

    ``failover`` chooses failover; a migration may turn into a failover
    (``fallback``, the opcode's allow_failover, when the instance is not
    running; always with the backend parameter always_failover).
    ``cleanup`` recovers from a failed migration instead.
    """

    lu: Any
    cfg: Any

    def __init__(self, lu: LogicalUnit, instance_uuid: str, cleanup: bool,
                 failover: bool, fallback: bool, ignore_consistency: bool,
                 allow_runtime_changes: bool, shutdown_timeout: int,
                 ignore_ipolicy: bool) -> None:
        super().__init__(lu)
        self.instance_uuid = instance_uuid
        self.cleanup = cleanup
        self.failover = failover
        self.fallback = fallback
        self.ignore_consistency = ignore_consistency
        self.allow_runtime_changes = allow_runtime_changes
        self.shutdown_timeout = shutdown_timeout
        self.ignore_ipolicy = ignore_ipolicy
        self.live = False
        self.current_mem: int | None = None
        self.tgt_free_mem: int | None = None
        self.migration_info: Any = None
        self.feedback_fn: FeedbackFn = lambda *_: None

    # --- checks ---------------------------------------------------------------------

    def CheckPrereq(self) -> None:
        """Template, target node, memory, parameters; live or not."""
        cfg, lu, op = self.cfg, self.lu, self.lu.op
        inst = cfg.GetInstanceInfo(self.instance_uuid)
        if inst is None:
            raise errors.OpPrereqError(f"Instance '{op.instance_name}' was removed"
                                       " meanwhile", errors.ECODE_NOENT)
        self.instance = inst
        self.source_node_uuid = inst.primary_node
        template = cfg.GetInstanceDiskTemplate(inst.uuid)
        verb = "failovers" if self.failover else "migrations"
        if template not in constants.DTS_MIRRORED:
            raise errors.OpPrereqError(
                f"Instance's disk layout '{template}' does not allow {verb}",
                errors.ECODE_STATE)
        self.internal_mirror = template in constants.DTS_INT_MIRROR
        if self.internal_mirror:
            secondaries = [uuid for uuid in cfg.GetInstanceNodes(inst.uuid)
                           if uuid != inst.primary_node]
            if lu.target_node_uuid not in secondaries:
                raise errors.OpPrereqError(
                    f"Instances with disk template {template} cannot be"
                    f" {'failed over' if self.failover else 'migrated'} to node"
                    f" {iu.NodeName(cfg, lu.target_node_uuid)}: only to their"
                    f" secondary node ({', '.join(iu.NodeName(cfg, u) for u in secondaries)});"
                    " use replace-disks to change the secondary first",
                    errors.ECODE_INVAL)
        if inst.admin_state == constants.ADMINST_OFFLINE and not self.failover:
            raise errors.OpPrereqError(
                f"Instance {inst.name} is marked offline, it cannot be migrated",
                errors.ECODE_STATE)
        self.target_node_uuid = lu.target_node_uuid
        target = cfg.GetNodeInfo(self.target_node_uuid)
        if self.target_node_uuid == inst.primary_node:
            raise errors.OpPrereqError(
                f"Cannot migrate instance {inst.name} to its primary"
                f" ({target.name})", errors.ECODE_STATE)
        cluster = cfg.GetClusterInfo()
        hvp = cluster.FillHV(inst)
        bep = cluster.FillBE(inst)
        if not self.cleanup:
            iu.CheckTargetNode(cfg, self.target_node_uuid)
            result = self.rpc.call_hypervisor_validate_params(
                [self.target_node_uuid], inst.hypervisor, hvp)[self.target_node_uuid]
            result.Raise(f"Hypervisor parameters not valid on node {target.name}",
                         prereq=True, ecode=errors.ECODE_INVAL)
            iu.CheckNicsBridgesExist(lu, inst.nics, self.target_node_uuid)
        elif target.offline:
            raise errors.OpPrereqError(f"Can't use offline node {target.name}",
                                       errors.ECODE_STATE)
        if not self.cleanup and (not self.failover
                                 or inst.admin_state == constants.ADMINST_UP):
            info = iu.CheckNodeFreeMemory(
                lu, self.target_node_uuid, f"migrating instance {inst.name}",
                int(bep[constants.BE_MINMEM]), inst.hypervisor, hvp)
            self.tgt_free_mem = int(info["memory_free"])
        else:
            lu.LogInfo("Not checking memory on the target node as the instance will"
                       " not be started")
        if not self.cleanup and not self.failover and bep.get(constants.BE_ALWAYS_FAILOVER):
            lu.LogInfo("Instance configured to always failover; fallback to failover")
            self.failover = True
        if not self.cleanup and not self.failover:
            source = cfg.GetNodeInfo(inst.primary_node)
            if source.offline:
                running = False
                reason = f"its node {source.name} is offline"
            else:
                running = iu.IsInstanceRunning(lu, inst)
                reason = f"instance {inst.name} is not running"
            if not running:
                if self.fallback:
                    lu.LogInfo("Can't migrate, instance offline, fallback to failover")
                    self.failover = True
                else:
                    raise errors.OpPrereqError(
                        f"Can't migrate, please use failover: {reason}",
                        errors.ECODE_STATE)
        if not self.failover:
            if op.live is not None and op.mode is not None:
                raise errors.OpPrereqError("Only one of the 'live' and 'mode' parameters"
                                           " are accepted", errors.ECODE_INVAL)
            if op.live is not None:
                op.mode = constants.HT_MIGRATION_LIVE if op.live \
                    else constants.HT_MIGRATION_NONLIVE
                op.live = None
            elif op.mode is None:
                op.mode = hvp.get(constants.HV_MIGRATION_MODE, constants.HT_MIGRATION_LIVE)
            self.live = op.mode == constants.HT_MIGRATION_LIVE
        else:
            self.live = False
        if not (self.failover or self.cleanup):
            result = self.rpc.call_instance_info([inst.primary_node], inst.name,
                                                 inst.hypervisor, hvp)[inst.primary_node]
            result.Raise(f"Error checking instance on node"
                         f" {iu.NodeName(cfg, inst.primary_node)}", prereq=True,
                         ecode=errors.ECODE_ENVIRON)
            if result.payload:
                self.current_mem = int(result.payload.get("memory") or 0)

    # --- helpers ----------------------------------------------------------------------

    def _Dict(self, inst: objects.Instance | None = None) -> dict[str, Any]:
        return iu.InstanceRpcDict(self.cfg, inst or self.instance)

    def _NodeIp(self, node_uuid: str) -> str:
        node = self.cfg.GetNodeInfo(node_uuid)
        return node.secondary_ip or node.primary_ip

    def _Name(self, node_uuid: str) -> str:
        return iu.NodeName(self.cfg, node_uuid)

    # --- failover -----------------------------------------------------------------------

    def _ExecFailover(self) -> None:
        """Stop on the source, move in the config, start on the target."""
        inst, fb = self.instance, self.feedback_fn
        source, target = self.source_node_uuid, self.target_node_uuid
        source_offline = self.cfg.GetNodeInfo(source).offline
        fb(f"Failover instance {inst.name}")
        if self.internal_mirror and inst.admin_state == constants.ADMINST_UP and \
                not self.ignore_consistency:
            fb("* checking disk consistency between source and target")
            self._CheckConsistency(target)
        fb("* shutting down instance on source node")
        iu.ShutdownToLeave(self.lu, inst, source, self.shutdown_timeout,
                           bool(self.ignore_consistency or source_offline))
        fb("* deactivating the instance's disks on source node")
        # A mirror goes down on both nodes (the secondary's end too)
        if not iu.ShutdownDisks(self.lu, inst, None if self.internal_mirror else source) \
                and not (self.ignore_consistency or source_offline):
            raise errors.OpExecError("Can't shut down the instance's disks")
        inst = ist.SetInstancePrimaryNode(self.lu, inst.uuid, target)
        self.instance = inst
        if inst.admin_state != constants.ADMINST_UP:
            return
        fb(f"* activating the instance's disks on target node {self._Name(target)}")
        iu.AssembleDisks(self.lu, inst, target, ignore_secondaries=True)
        fb(f"* starting the instance on the target node {self._Name(target)}")
        result = self.rpc.call_instance_start(target, self._Dict(inst), False,
                                              getattr(self.lu.op, "reason", None) or [])
        if result.fail_msg:
            iu.ShutdownDisks(self.lu, inst, target)
            raise errors.OpExecError(f"Could not start instance {inst.name} on node"
                                     f" {self._Name(target)}: {result.fail_msg}")

    # --- DRBD steps (as Ganeti's) ----------------------------------------------------------

    def _CheckConsistency(self, node_uuid: str) -> None:
        """OpExecError unless every disk is consistent (not degraded) on the
        node."""
        for disk in self.cfg.GetInstanceDisks(self.instance.uuid):
            result = self.rpc.call_blockdev_find(node_uuid, disk.ToDict())
            if result.fail_msg or not result.payload:
                raise errors.OpExecError(
                    f"Can't find disk {disk.iv_name} on node {self._Name(node_uuid)}:"
                    f" {result.fail_msg or 'missing'}")
            if result.payload.get("is_degraded"):
                raise errors.OpExecError(
                    f"Disk {disk.iv_name} is degraded on target node"
                    f" {self._Name(node_uuid)}, aborting (use --ignore-consistency to"
                    " override)")

    def _MirrorNodes(self) -> list[str]:
        return [self.source_node_uuid, self.target_node_uuid]

    def _EnsureSecondary(self, node_uuid: str) -> None:
        """Demote the node's end of the mirrors (close the devices)."""
        self.feedback_fn(f"* switching node {self._Name(node_uuid)} to secondary mode")
        disks = self.cfg.GetInstanceDisks(self.instance.uuid)
        result = self.rpc.call_blockdev_close(node_uuid, self.instance.name, disks)
        result.Raise(f"Cannot change disk to secondary on node {self._Name(node_uuid)}")

    def _GoStandalone(self) -> None:
        self.feedback_fn("* changing into standalone mode")
        disks = self.cfg.GetInstanceDisks(self.instance.uuid)
        for node, result in self.rpc.call_drbd_disconnect_net(self._MirrorNodes(),
                                                              disks).items():
            result.Raise(f"Cannot disconnect disks node {self._Name(node)}")

    def _GoReconnect(self, multimaster: bool) -> None:
        self.feedback_fn("* changing disks into " +
                         ("dual-master" if multimaster else "single-master") + " mode")
        disks = self.cfg.GetInstanceDisks(self.instance.uuid)
        for node, result in self.rpc.call_drbd_attach_net(self._MirrorNodes(), disks,
                                                          multimaster).items():
            result.Raise(f"Cannot change disks config on node {self._Name(node)}")

    def _WaitUntilSync(self) -> None:
        self.feedback_fn("* wait until resync is done")
        disks = self.cfg.GetInstanceDisks(self.instance.uuid)
        while True:
            done, min_percent = True, 100.0
            for node, result in self.rpc.call_drbd_wait_sync(self._MirrorNodes(),
                                                             disks).items():
                result.Raise(f"Cannot resync disks on node {self._Name(node)}")
                node_done, node_percent = result.payload
                done = done and bool(node_done)
                if node_percent is not None:
                    min_percent = min(min_percent, float(node_percent))
            if done:
                return
            self.feedback_fn(f"   - progress: {min_percent:.1f}%")
            time.sleep(_POLL_MAX)  # DRBD has no completion event to wait on

    def _RevertDiskStatus(self) -> None:
        """After a failed migration: back to single-master with the source
        as the only primary."""
        try:
            self._EnsureSecondary(self.target_node_uuid)
            self._GoStandalone()
            self._GoReconnect(False)
            self._WaitUntilSync()
        except errors.OpExecError as err:
            self.lu.LogWarning(f"Migration failed and I can't reconnect the drives,"
                               f" please try to recover the instance manually: {err}")

    # --- migration ------------------------------------------------------------------------

    def _AbortMigration(self) -> None:
        """Undo on both sides; failures are only logged (we are failing already)."""
        inst = self.instance
        result = self.rpc.call_instance_finalize_migration_dst(
            self.target_node_uuid, self._Dict(), self.migration_info, False)
        if result.fail_msg:
            self.lu.LogWarning(f"Aborting migration failed on target node"
                               f" {self._Name(self.target_node_uuid)}: {result.fail_msg}")
        result = self.rpc.call_instance_finalize_migration_src(
            self.source_node_uuid, self._Dict(), False, self.live)
        if result.fail_msg:
            self.lu.LogWarning(f"Aborting migration failed on source node"
                               f" {self._Name(self.source_node_uuid)}: {result.fail_msg}")
        if self.internal_mirror:
            self._RevertDiskStatus()
        elif self.cfg.GetInstanceDisks(inst.uuid):
            iu.ShutdownDisks(self.lu, inst, self.target_node_uuid,
                              disks=self.cfg.GetInstanceDisks(inst.uuid))

    def _Failed(self, what: str, msg: str) -> errors.OpExecError:
        self.feedback_fn(f"{what} failed, aborting")
        self._AbortMigration()
        return errors.OpExecError(f"Could not {what.lower()} instance"
                                  f" {self.instance.name}: {msg}")

    def _WaitForMigration(self) -> None:
        """Poll the source until the hypervisor says the transfer ended."""
        fb, delay, last_feedback = self.feedback_fn, _POLL_FIRST, time.monotonic()
        postcopy = False
        while True:
            result = self.rpc.call_instance_get_migration_status(self.source_node_uuid,
                                                                 self._Dict())
            status = result.payload if isinstance(result.payload, dict) else {}
            if result.fail_msg or \
                    status.get("status") in constants.HV_MIGRATION_FAILED_STATUSES:
                raise self._Failed("Migrate", result.fail_msg or status.get("info")
                                   or "hypervisor returned failure")
            if status.get("postcopy") and not postcopy:
                fb("* switched to postcopy: the instance runs on the target")
                postcopy = True
            if status.get("status") != constants.HV_MIGRATION_ACTIVE:
                downtime = status.get("downtime")
                fb("* memory transfer complete" + (f" (downtime {downtime} ms)"
                                                   if downtime is not None else ""))
                return
            if time.monotonic() - last_feedback > _FEEDBACK_INTERVAL and \
                    status.get("total_ram"):
                fb(f"* memory transfer progress:"
                   f" {100.0 * status.get('transferred_ram', 0) / status['total_ram']:.2f} %")
                last_feedback = time.monotonic()
            # the hypervisor has no completion event to wait on: poll
            time.sleep(delay)
            delay = min(_POLL_MAX, delay * 2)

    def _ExecMigration(self) -> None:
        """The migration steps on source and target, aborting on failure."""
        inst, fb = self.instance, self.feedback_fn
        source, target = self.source_node_uuid, self.target_node_uuid
        fb(f"Migrating instance {inst.name}")
        if self.current_mem is not None and self.tgt_free_mem is not None and \
                self.current_mem > self.tgt_free_mem:
            if not self.allow_runtime_changes:
                raise errors.OpExecError(
                    "Memory ballooning not allowed and not enough free memory to fit the"
                    f" instance on the target node (instance: {self.current_mem} MiB,"
                    f" target: {self.tgt_free_mem} MiB)")
            fb(f"* setting instance memory to {self.tgt_free_mem}")
            result = self.rpc.call_instance_balloon_memory(source, self._Dict(),
                                                           self.tgt_free_mem)
            result.Raise("Cannot modify instance runtime memory")
        if self.internal_mirror:
            fb("* checking disk consistency between source and target")
            self._CheckConsistency(target)
        result = self.rpc.call_migration_info(source, self._Dict())
        if result.fail_msg:
            raise errors.OpExecError(f"Failed fetching source migration information"
                                     f" from {self._Name(source)}: {result.fail_msg}")
        self.migration_info = result.payload
        if self.internal_mirror:
            # Both ends primary while the memory moves, as Ganeti does
            self._EnsureSecondary(target)
            self._GoStandalone()
            self._GoReconnect(True)
            self._WaitUntilSync()
        fb(f"* preparing {self._Name(target)} to accept the instance")
        result = self.rpc.call_accept_instance(target, self._Dict(), self.migration_info,
                                               self._NodeIp(target))
        if result.fail_msg:
            raise self._Failed("Pre-migrate", result.fail_msg)
        fb(f"* migrating instance to {self._Name(target)}")
        result = self.rpc.call_instance_migrate(source, self.cfg.GetClusterName(),
                                                self._Dict(), self._NodeIp(target),
                                                self.live)
        if result.fail_msg:
            raise self._Failed("Migrate", result.fail_msg)
        fb("* starting memory transfer")
        self._WaitForMigration()
        result = self.rpc.call_instance_finalize_migration_src(source, self._Dict(), True,
                                                               self.live)
        if result.fail_msg:
            raise errors.OpExecError(f"Could not finalize instance migration on the"
                                     f" source node: {result.fail_msg}")
        inst = ist.SetInstancePrimaryNode(self.lu, inst.uuid, target)
        self.instance = inst
        result = self.rpc.call_instance_finalize_migration_dst(target, self._Dict(inst),
                                                               self.migration_info, True)
        if result.fail_msg:
            raise errors.OpExecError(f"Could not finalize instance migration on the"
                                     f" target node: {result.fail_msg}")
        disks = self.cfg.GetInstanceDisks(inst.uuid)
        if self.internal_mirror:
            self._EnsureSecondary(source)
            self._WaitUntilSync()
            self._GoStandalone()
            self._GoReconnect(False)
            self._WaitUntilSync()
        elif disks:
            fb(f"* deactivating the instance's disks on {self._Name(source)}")
            iu.ShutdownDisks(self.lu, inst, source, disks=disks)
        fb("* done")

    def _ExecCleanup(self) -> None:
        """Find where the instance runs and make the configuration agree."""
        inst, fb = self.instance, self.feedback_fn
        source, target = self.source_node_uuid, self.target_node_uuid
        fb("* checking where the instance actually runs (if this hangs, the"
           " hypervisor might be in a bad state)")
        cluster = self.cfg.GetClusterInfo()
        answers = self.rpc.call_instance_list([source, target], [inst.hypervisor],
                                              cluster.hvparams)
        for node_uuid, result in answers.items():
            result.Raise(f"Can't contact node {self._Name(node_uuid)}")
        on_source = inst.name in (answers[source].payload or [])
        on_target = inst.name in (answers[target].payload or [])
        if on_source and on_target:
            raise errors.OpExecError(
                "Instance seems to be running on two nodes, or the hypervisor is"
                " confused; make sure it runs on one node only, then run this again")
        if not (on_source or on_target):
            raise errors.OpExecError(
                f"Instance {inst.name} runs neither on {self._Name(source)} nor on"
                f" {self._Name(target)}; stop it with 'gnt-instance stop' (which also"
                " shuts its disks down), then start it again")
        self.migration_info = None
        if on_target:
            fb(f"* instance running on the target node ({self._Name(target)}),"
               " updating config")
            self.instance = ist.SetInstancePrimaryNode(self.lu, inst.uuid, target)
            stale = source
        else:
            fb(f"* instance confirmed to be running on its primary node"
               f" ({self._Name(source)})")
            # drop what a broken migration may have left behind on the target
            self.rpc.call_instance_finalize_migration_dst(target, self._Dict(), None, False)
            self.rpc.call_instance_finalize_migration_src(source, self._Dict(), False,
                                                          False)
            stale = target
        disks = self.cfg.GetInstanceDisks(inst.uuid)
        if self.internal_mirror:
            # The stale end becomes secondary again, mirrors single-master
            self._EnsureSecondary(stale)
            self._GoStandalone()
            self._GoReconnect(False)
            self._WaitUntilSync()
        elif disks:
            iu.ShutdownDisks(self.lu, self.instance, stale, disks=disks)
        fb("* done")

    def Exec(self, feedback_fn: FeedbackFn) -> None:
        """Failover, migration or cleanup, as checked."""
        self.feedback_fn = feedback_fn
        self.source_node_uuid = self.instance.primary_node
        if self.failover:
            self._ExecFailover()
        elif self.cleanup:
            self._ExecCleanup()
        else:
            self._ExecMigration()


def _ArbitraryTargetRefused(template: str, failover: bool) -> errors.OpPrereqError:
    return errors.OpPrereqError(
        f"Instances with disk template {template} cannot be"
        f" {'failed over' if failover else 'migrated'} to arbitrary nodes (neither an"
        " iallocator nor a target node can be passed): they move to their secondary"
        " node", errors.ECODE_INVAL)


class _MoveInstanceLU(iu.InstanceLU):
    """Common part of failover and migrate: the target node (given, the
    secondary, or chosen by an allocator) and its locks."""

    LOCK_NODE_RES = True
    FAILOVER = False
    target_node_uuid: str | None
    iallocator: str | None

    def CheckArguments(self) -> None:
        """A target node or an allocator, not both; a cleanup needs the node."""
        op = self.op
        if op.iallocator and (op.target_node or op.target_node_uuid):
            raise errors.OpPrereqError("Specify either an iallocator (-I), or a"
                                       " target node (-n)", errors.ECODE_INVAL)
        if op.iallocator and op.cleanup:
            raise errors.OpPrereqError(
                "A cleanup needs the node the failed migration went to (-n), not an"
                " iallocator", errors.ECODE_INVAL)

    def _DefaultTarget(self) -> None:
        """Without -n: a DRBD instance's secondary, else the allocator's
        choice (made in CheckPrereq, under the locks of all nodes)."""
        cfg, op = self.cfg, self.op
        template = cfg.GetInstanceDiskTemplate(op.instance_uuid)
        if template in constants.DTS_INT_MIRROR:
            if op.iallocator:
                raise _ArbitraryTargetRefused(template, self.FAILOVER)
            secondaries = cfg.GetInstanceSecondaryNodes(op.instance_uuid)
            if secondaries:
                op.target_node_uuid = secondaries[0]
                return
        elif template in constants.DTS_EXT_MIRROR and not op.cleanup:
            self.iallocator = ia.ResolveIallocator(cfg, op.iallocator) or \
                ia.DefaultIallocator(cfg)
            if self.iallocator:
                return
            raise errors.OpPrereqError(
                "No target node given: the target node must be given (-n) or chosen"
                " by an iallocator (-I), and the cluster has no default iallocator",
                errors.ECODE_INVAL)
        raise errors.OpPrereqError(
            "No target node given; without a mirrored secondary node the target"
            " node must be given (-n)", errors.ECODE_INVAL)

    def ExpandNames(self) -> None:
        """The instance, its nodes and the target node; the tasklet."""
        super().ExpandNames()
        self.iallocator = None
        self.target_node_uuid = None
        if not (self.op.target_node or self.op.target_node_uuid):
            self._DefaultTarget()
        if self.iallocator is None:
            if self.op.target_node_uuid and not self.op.target_node:
                node = self.cfg.GetNodeInfo(self.op.target_node_uuid)
                if node is None:
                    raise errors.OpPrereqError(
                        f"Node '{self.op.target_node_uuid}' not known",
                        errors.ECODE_NOENT)
            else:
                node = ExpandNode(self.cfg, self.op.target_node)
            self.op.target_node, self.op.target_node_uuid = node.name, node.uuid
            self.target_node_uuid = node.uuid
        self._migrater = self._MakeTasklet()
        self.tasklets = [self._migrater]

    def _MakeTasklet(self) -> TLMigrateInstance:
        raise NotImplementedError

    def DeclareLocks(self, level: int) -> None:
        """The instance's nodes plus the target; all nodes while an
        allocator has to choose it."""
        super().DeclareLocks(level)
        if level not in (locking.LEVEL_NODE, locking.LEVEL_NODE_RES) or \
                self.needed_locks is None or level not in self.needed_locks:
            return
        if self.iallocator:
            self.needed_locks[level] = locking.ALL_SET
        elif self.target_node_uuid not in self.needed_locks[level]:
            self.needed_locks[level].append(self.target_node_uuid)

    def _ChooseTarget(self) -> None:
        """Ask the allocator for the target, away from the primary node;
        keep only the locks of the primary and the chosen node."""
        inst = self.instance
        template = self.cfg.GetInstanceDiskTemplate(inst.uuid)
        if template in constants.DTS_INT_MIRROR:
            # converted to DRBD since ExpandNames
            raise _ArbitraryTargetRefused(template, self.FAILOVER)
        if template not in constants.DTS_EXT_MIRROR:
            return  # the tasklet refuses the layout
        assert self.iallocator is not None
        verb = "failover" if self.FAILOVER else "migration"
        target = iar.RelocateInstance(self, self.iallocator, inst.uuid,
                                      [inst.primary_node],
                                      f"a {verb} target node for instance {inst.name}")
        self.target_node_uuid = target
        self.LogInfo(f"Selected nodes for instance {inst.name} via iallocator"
                     f" {self.iallocator}: {iu.NodeName(self.cfg, target)}")
        iar.ReleaseUnusedNodeLocks(self, [inst.primary_node, target])

    def CheckPrereq(self) -> None:
        """The instance, the allocator's choice, then the tasklet's checks."""
        super().CheckPrereq()
        if self.iallocator:
            self._ChooseTarget()
        self._migrater.CheckPrereq()

    def Exec(self, feedback_fn: FeedbackFn) -> None:
        """Run the tasklet."""
        self._migrater.Exec(feedback_fn)

    def _MoveEnv(self) -> dict[str, Any]:
        env = super().BuildHooksEnv()
        env.update({
            "OLD_PRIMARY": iu.NodeName(self.cfg, self._migrater.source_node_uuid),
            "NEW_PRIMARY": iu.NodeName(self.cfg, self.target_node_uuid)
            if self.target_node_uuid else "",
            "OLD_SECONDARY": "",
            "NEW_SECONDARY": "",
        })
        return env

    def BuildHooksNodes(self) -> tuple[list[str], list[str]]:
        """The master, the source and the target node."""
        nodes = list(dict.fromkeys(
            [self.cfg.GetMasterNode(), self._migrater.source_node_uuid]
            + ([self.target_node_uuid] if self.target_node_uuid else [])))
        return nodes, nodes


class LUInstanceFailover(_MoveInstanceLU):
    """Stop an instance, move it to the target node, start it there."""

    HPATH = "instance-failover"
    FAILOVER = True

    def _MakeTasklet(self) -> TLMigrateInstance:
        op = self.op
        return TLMigrateInstance(self, op.instance_uuid, cleanup=False, failover=True,
                                 fallback=False, ignore_consistency=op.ignore_consistency,
                                 allow_runtime_changes=True,
                                 shutdown_timeout=op.shutdown_timeout,
                                 ignore_ipolicy=op.ignore_ipolicy)

    def BuildHooksEnv(self) -> dict[str, Any]:
        """Ganeti's failover variables."""
        env = self._MoveEnv()
        env.update({"IGNORE_CONSISTENCY": self.op.ignore_consistency,
                    "SHUTDOWN_TIMEOUT": self.op.shutdown_timeout,
                    "FAILOVER_CLEANUP": self.op.cleanup})
        return env


class LUInstanceMigrate(_MoveInstanceLU):
    """Move a running instance to the target node without stopping it."""

    HPATH = "instance-migrate"

    def _MakeTasklet(self) -> TLMigrateInstance:
        op = self.op
        return TLMigrateInstance(self, op.instance_uuid, cleanup=op.cleanup,
                                 failover=False, fallback=op.allow_failover,
                                 ignore_consistency=False,
                                 allow_runtime_changes=op.allow_runtime_changes,
                                 shutdown_timeout=constants.DEFAULT_SHUTDOWN_TIMEOUT,
                                 ignore_ipolicy=op.ignore_ipolicy)

    def BuildHooksEnv(self) -> dict[str, Any]:
        """Ganeti's migration variables."""
        env = self._MoveEnv()
        env.update({"MIGRATE_LIVE": self._migrater.live,
                    "MIGRATE_CLEANUP": self.op.cleanup,
                    "ALLOW_RUNTIME_CHANGES": self.op.allow_runtime_changes})
        return env
