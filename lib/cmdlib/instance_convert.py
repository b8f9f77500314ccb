"""Disk template conversion of a stopped instance (``gnt-instance modify
-t TEMPLATE``), a tasklet of LUInstanceSetParams.

plain to drbd, as Ganeti does it:

1. generate DRBD disks for the instance's disks (same sizes, modes, names
   and volume groups): a minor on each node (pending under the job's
   execution context), a port (taken from the cluster at once) and a
   secret per disk;
2. create the metadata volume on the primary node and the data and
   metadata volumes on the new secondary;
3. rename each existing volume on the primary to the new data volume's
   name (``<uuid>.disk<N>_data``) with ``blockdev_rename``: the data child
   of a converted disk is the same volume as before, and its name follows
   the scheme of a disk created as drbd. (Generating the child's
   logical_id as the old volume's would spare the rename but leave two
   naming schemes for drbd volumes);
4. create the DRBD devices, on the secondary and then on the primary, which
   opens its end with force and so becomes the source of the initial sync;
5. replace the disks in the configuration;
6. wait for the sync (one status poll only with ``--no-wait-for-sync``).

A failure in steps 1 to 5 undoes what was done, newest first: the DRBD
devices are shut down, the volumes renamed back, the new volumes removed,
the ports given back and the minors released. The instance then has its
plain disks as before. If undoing fails too, the error says what was left
on which node and what to do about it.

drbd to plain: the data volume of each DRBD disk becomes the plain disk
(the same volume on the primary node). The disks are replaced in the
configuration (which gives the ports back and drops the minors); then the
volumes of the secondary and the metadata volumes of the primary are
removed, where a failure is a warning (the volumes are no longer used).

Every other conversion (Ganeti 3.0's generic one) copies the data, on the
primary node, from the old disks into new ones:

1. generate the new disks (same sizes, modes and names; the volume group of
   LVM disks stays when the old disks are LVM too; file disks go to the
   instance's directory below the cluster's (shared) file storage
   directory, or ``--file-storage-dir``; ext disks take ``--ext-params``);
2. create them: on the primary node, a drbd disk's data and metadata
   volumes on both nodes (not yet the DRBD device);
3. copy each disk's data with the ``blockdev_convert`` RPC
   (:mod:`ganeti.backend.convert`): the node assembles both disks and
   copies the bytes, from a drbd disk's data volume into a drbd disk's
   data volume;
4. for drbd, create the DRBD devices as in plain to drbd (the primary is
   the sync source of the copied data);
5. replace the disks in the configuration;
6. remove the old disks (and the old file directory), where a failure is a
   warning: the data is no longer referenced; a blockdev disk is only
   forgotten, never touched. For drbd, wait for the sync.

A failure in steps 1 to 5 removes the new disks (and the new file
directory) and gives back the DRBD ports and minors; the instance keeps
its disks. Conversions to or from diskless, to blockdev (adopted devices
only) and to or from gluster (no gluster storage here) are refused.
"""

from __future__ import annotations

from typing import Any

from ganeti import constants, errors, objects
from ganeti.cmdlib import disks as disks_mod
from ganeti.cmdlib import instance_utils as iu
from ganeti.cmdlib.base import FeedbackFn, LogicalUnit, Tasklet

#: The conversions supported: (from template, to template)
CONVERSIONS = frozenset([(constants.DT_PLAIN, constants.DT_DRBD8),
                         (constants.DT_DRBD8, constants.DT_PLAIN)])


def _Name(cfg: Any, uuid: str) -> str:
    return iu.NodeName(cfg, uuid)


def _Lv(disk: objects.Disk) -> str:
    return "/".join(map(str, disk.logical_id))


class _Undo:
    """The steps of a conversion that reached the nodes, undone newest first.

    Each step is (description of what stays if undoing it fails, function
    returning an RPC result)."""

    def __init__(self, lu: LogicalUnit) -> None:
        self.lu = lu
        self.steps: list[tuple[str, Any]] = []

    def Add(self, left: str, undo: Any) -> None:
        self.steps.append((left, undo))

    def Run(self) -> list[str]:
        """Undo every step; return what could not be undone."""
        left = []
        for what, undo in reversed(self.steps):
            try:
                result = undo()
                msg = result.fail_msg
            except Exception as err:  # noqa: BLE001 - keep undoing the rest
                msg = str(err)
            if msg:
                self.lu.LogWarning(f"Undoing the conversion: {what}: {msg}")
                left.append(what)
        self.steps = []
        return left


class TLConvertDiskTemplate(Tasklet):
    """Convert the disks of a stopped instance between plain and drbd."""

    cfg: Any

    def __init__(self, lu: LogicalUnit, instance_uuid: str, new_template: str,
                 snode_uuid: str | None, wait_for_sync: bool) -> None:
        super().__init__(lu)
        self.instance_uuid = instance_uuid
        self.new_template = new_template
        self.snode_uuid = snode_uuid
        self.wait_for_sync = wait_for_sync
        #: UUIDs of the new disks that entered the configuration
        self.entered: set[str] = set()

    # --- prerequisites ---------------------------------------------------------------

    def CheckPrereq(self) -> None:
        """Conversion supported, target template enabled, instance down,
        nodes usable, room for the new volumes."""
        cfg, lu = self.cfg, self.lu
        inst = cfg.GetInstanceInfo(self.instance_uuid)
        self.instance = inst
        self.disks = cfg.GetInstanceDisks(inst.uuid)
        old, new = cfg.GetInstanceDiskTemplate(inst.uuid), self.new_template
        self.old_template = old
        if old == new:
            raise errors.OpPrereqError(f"Instance {inst.name} already has disk template"
                                       f" {old}", errors.ECODE_INVAL)
        if (old, new) not in CONVERSIONS:
            raise errors.OpPrereqError(
                f"Unsupported disk template conversion from {old} to {new} (supported: "
                + ", ".join(f"{a} to {b}" for a, b in sorted(CONVERSIONS)) + ")",
                errors.ECODE_INVAL)
        cluster = cfg.GetClusterInfo()
        if not cluster.IsDiskTemplateEnabled(new):
            raise errors.OpPrereqError(
                f"Disk template '{new}' is not enabled in the cluster (enabled:"
                f" {', '.join(cluster.enabled_disk_templates or [])}); enable it with"
                " gnt-cluster modify --enabled-disk-templates", errors.ECODE_STATE)
        iu.CheckNodeOnline(cfg, inst.primary_node, "Cannot change the disk template of"
                           " an instance whose primary node is offline")
        iu.CheckInstanceState(lu, inst, iu.INSTANCE_DOWN, "cannot change disk template")
        if new == constants.DT_DRBD8:
            self._CheckToDrbd()
        else:
            self._CheckToPlain()

    def _CheckToDrbd(self) -> None:
        cfg, lu, inst = self.cfg, self.lu, self.instance
        pnode = inst.primary_node
        snode = self.snode_uuid
        if not snode:
            raise errors.OpPrereqError("Changing the disk template to a mirrored one"
                                       " requires specifying a secondary node",
                                       errors.ECODE_INVAL)
        if snode == pnode:
            raise errors.OpPrereqError(
                f"Given new secondary node {_Name(cfg, snode)} is the same as the"
                " primary node of the instance", errors.ECODE_STATE)
        snode_info = iu.CheckTargetNode(cfg, snode, "Cannot use {state} node {name} as"
                                        " the new secondary")
        for node in (pnode, snode):
            if disks_mod.IsExclusiveStorage(cfg, node):
                raise errors.OpPrereqError(
                    f"Disk template {constants.DT_DRBD8} not supported with exclusive"
                    f" storage (enabled on node {_Name(cfg, node)})", errors.ECODE_STATE)
        pnode_info = cfg.GetNodeInfo(pnode)
        if pnode_info.group != snode_info.group:
            lu.LogWarning("The primary and secondary nodes are in two different node"
                          " groups; the disk parameters from the first disk's node"
                          " group will be used")
        self.diskparams = cfg.GetGroupDiskParams(
            cfg.GetNodeGroup(pnode_info.group)).get(constants.DT_DRBD8, {})
        self.specs = [{constants.IDISK_SIZE: disk.size, constants.IDISK_MODE: disk.mode,
                       constants.IDISK_VG: disk.logical_id[0],
                       constants.IDISK_NAME: disk.name} for disk in self.disks]
        # The volumes to convert must be there
        for idx, disk in enumerate(self.disks):
            if not disks_mod.DiskExistsOnNode(lu, pnode, disk):
                raise errors.OpPrereqError(
                    f"Disk {idx} of instance {inst.name} (volume {_Lv(disk)}) is missing"
                    f" on node {_Name(cfg, pnode)}; recreate it first"
                    " (gnt-instance recreate-disks)", errors.ECODE_STATE)
        # Data and metadata on the secondary, metadata only on the primary
        disks_mod.CheckNodesFreeDiskPerVG(lu, [snode], disks_mod.ComputeDiskSizePerVG(
            cfg, constants.DT_DRBD8, self.specs, self.diskparams))
        meta: dict[str, int] = {}
        metavg_default = self.diskparams.get(constants.DRBD_DEFAULT_METAVG)
        for spec in self.specs:
            metavg = metavg_default or spec[constants.IDISK_VG]
            meta[metavg] = meta.get(metavg, 0) + disks_mod.DRBD_META_SIZE
        disks_mod.CheckNodesFreeDiskPerVG(lu, [pnode], meta)

    def _CheckToPlain(self) -> None:
        cfg, inst = self.cfg, self.instance
        for disk in self.disks:
            if len(disk.children or []) != 2 or len(disk.logical_id or ()) != 6:
                raise errors.OpPrereqError(
                    f"Disk {disk.iv_name} of instance {inst.name} is not a DRBD disk with"
                    " data and metadata volumes; cannot convert it", errors.ECODE_STATE)
        secondaries = cfg.GetInstanceSecondaryNodes(inst.uuid)
        for node in secondaries:
            if cfg.GetNodeInfo(node).offline:
                self.lu.LogWarning(f"Secondary node {_Name(cfg, node)} is offline: its"
                                   " volumes of the instance will be left there")

    # --- execution -----------------------------------------------------------------------

    def Exec(self, feedback_fn: FeedbackFn) -> None:
        """Shut the disks down and convert them."""
        lu, inst = self.lu, self.instance
        if not iu.ShutdownDisks(lu, inst):
            raise errors.OpExecError("Cannot shutdown instance disks, unable to proceed"
                                     " with disk template conversion")
        if self.new_template == constants.DT_DRBD8:
            self._PlainToDrbd(feedback_fn)
        else:
            self._DrbdToPlain(feedback_fn)

    def _EcId(self) -> Any:
        proc = self.lu.proc
        return proc.GetECId() if proc is not None else "instance-modify"

    def _Generate(self, ec_id: Any) -> list[objects.Disk]:
        """The new DRBD disks, one at a time so that a failure gives back the
        ports of those generated before."""
        cfg, inst = self.cfg, self.instance
        new_disks: list[objects.Disk] = []
        try:
            for idx, spec in enumerate(self.specs):
                new_disks.extend(disks_mod.GenerateDisks(
                    cfg, ec_id, constants.DT_DRBD8, inst.name, inst.primary_node,
                    self.snode_uuid, [spec], None, None, self.diskparams, base_index=idx))
        except Exception:
            self._ReleaseNew(new_disks)
            raise
        return new_disks

    def _ReleaseNew(self, new_disks: list[objects.Disk]) -> None:
        """Give back the ports and minors of DRBD disks not in the configuration."""
        for disk in new_disks:
            self.cfg.AddTcpUdpPort(disk.logical_id[2])
            self.cfg.ReleaseDRBDMinors(disk.uuid)

    def _PlainToDrbd(self, feedback_fn: FeedbackFn) -> None:
        cfg, lu, rpc, inst = self.cfg, self.lu, self.rpc, self.instance
        pnode, snode = inst.primary_node, self.snode_uuid
        assert snode is not None
        pname, sname = _Name(cfg, pnode), _Name(cfg, snode)
        old_disks = self.disks
        feedback_fn(f"Converting disk template of instance {inst.name} from plain to"
                    f" drbd, with {sname} as secondary node")
        new_disks = self._Generate(self._EcId())
        undo = _Undo(lu)
        try:
            feedback_fn("Creating additional volumes...")
            for new in new_disks:
                data, meta = new.children
                self._CreateLv(undo, pnode, meta, True)
                for child in (data, meta):
                    self._CreateLv(undo, snode, child, False)
            feedback_fn("Renaming original volumes...")
            for old, new in zip(old_disks, new_disks):
                data = new.children[0]
                result = rpc.call_blockdev_rename(
                    pnode, [(old.ToDict(), list(data.logical_id))])
                if result.fail_msg:
                    raise errors.OpExecError(
                        f"Failed to rename volume {_Lv(old)} to {_Lv(data)} on node"
                        f" {pname}: {result.fail_msg}")
                undo.Add(f"volume {_Lv(old)} of disk {old.iv_name} is called {_Lv(data)}"
                         f" on node {pname} (rename it back with lvrename)",
                         lambda data=data, old=old: rpc.call_blockdev_rename(
                             pnode, [(data.ToDict(),
                                      list(old.logical_id))]))
            feedback_fn("Initializing DRBD devices...")
            for new in new_disks:
                for node in (snode, pnode):
                    disks_mod.CreateSingleBlockDev(lu, node, inst, new, node == pnode)
                    minor = new.logical_id[3] if node == pnode else new.logical_id[4]
                    undo.Add(f"DRBD device {new.iv_name} (minor {minor}) is configured"
                             f" on node {_Name(cfg, node)} (drbdsetup {minor} down)",
                             lambda new=new, node=node: rpc.call_blockdev_shutdown(
                                 node, new.ToDict()))
            feedback_fn("Updating the configuration...")
            self._ReplaceDisks(old_disks, new_disks)
        except Exception as err:
            feedback_fn(f"Converting to drbd failed ({err}); undoing the conversion")
            left = undo.Run()
            # A disk that was in the configuration gave its port back when it
            # was removed again; another job may hold that port by now
            self._ReleaseNew([disk for disk in new_disks if disk.uuid not in self.entered])
            if left:
                raise errors.OpExecError(
                    f"Converting instance {inst.name} to drbd failed: {err}; undoing the"
                    " conversion failed too, what is left: " + "; ".join(left)) from err
            feedback_fn(f"Instance {inst.name} keeps its plain disks")
            raise

        inst = cfg.GetInstanceInfo(inst.uuid)
        if not disks_mod.WaitForSync(lu, inst, oneshot=not self.wait_for_sync,
                                     feedback_fn=feedback_fn):
            raise errors.OpExecError("There are some degraded disks for this instance,"
                                     " please cleanup manually")

    def _CreateLv(self, undo: _Undo, node: str, lv: objects.Disk, on_primary: bool) -> None:
        cfg, rpc, inst = self.cfg, self.rpc, self.instance
        disks_mod.CreateSingleBlockDev(self.lu, node, inst, lv, on_primary)
        undo.Add(f"volume {_Lv(lv)} exists on node {_Name(cfg, node)} (remove it with"
                 " lvremove)", lambda: rpc.call_blockdev_remove(
                     node, lv.ToDict()))

    def _ReplaceDisks(self, old_disks: list[objects.Disk],
                      new_disks: list[objects.Disk]) -> None:
        """Swap the disks in the configuration, each at its index; on a
        failure put the old ones back (removing a DRBD disk gives its port
        back)."""
        cfg, inst = self.cfg, self.instance
        removed: list[tuple[int, objects.Disk]] = []
        added: list[objects.Disk] = []
        try:
            for idx, (old, new) in enumerate(zip(old_disks, new_disks)):
                cfg.RemoveInstanceDisk(inst.uuid, old.uuid)
                removed.append((idx, old))
                cfg.AddInstanceDisk(inst.uuid, new, idx=idx)
                added.append(new)
                self.entered.add(new.uuid)
        except Exception:
            for new in added:
                cfg.RemoveInstanceDisk(inst.uuid, new.uuid)
            for idx, old in removed:
                cfg.AddInstanceDisk(inst.uuid, old, idx=idx)
            raise

    def _DrbdToPlain(self, feedback_fn: FeedbackFn) -> None:
        cfg, rpc, inst = self.cfg, self.rpc, self.instance
        pnode = inst.primary_node
        old_disks = self.disks
        feedback_fn(f"Converting disk template of instance {inst.name} from drbd to"
                    " plain")
        new_disks = []
        for old in old_disks:
            data = old.children[0].Copy()
            data.size, data.mode, data.name = old.size, old.mode, old.name
            data.iv_name = old.iv_name
            data.nodes = [pnode]
            data.children = []
            new_disks.append(data)
        self._ReplaceDisks(old_disks, new_disks)

        feedback_fn("Removing volumes on the secondary node...")
        for old in old_disks:
            snode = old.logical_id[1] if old.logical_id[0] == pnode else old.logical_id[0]
            sname = _Name(cfg, snode)
            if cfg.GetNodeInfo(snode).offline:
                self.lu.LogWarning(f"Node {sname} is offline: the volumes of disk"
                                   f" {old.iv_name} stay there ({_Lv(old.children[0])},"
                                   f" {_Lv(old.children[1])})")
                continue
            result = rpc.call_blockdev_remove(snode, old.ToDict())
            if result.fail_msg:
                self.lu.LogWarning(f"Could not remove block device {old.iv_name} on node"
                                   f" {sname}, continuing anyway: {result.fail_msg}")
        feedback_fn("Removing unneeded volumes on the primary node...")
        for old in old_disks:
            meta = old.children[1]
            result = rpc.call_blockdev_remove(pnode, meta.ToDict())
            if result.fail_msg:
                self.lu.LogWarning(f"Could not remove metadata volume {_Lv(meta)} of disk"
                                   f" {old.iv_name} on node {_Name(cfg, pnode)},"
                                   f" continuing anyway: {result.fail_msg}")
