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
from ganeti.cmdlib.extstorage import CheckExtStorageProvider

#: The conversions done without copying: (from template, to template)
SPECIAL_CONVERSIONS = frozenset([(constants.DT_PLAIN, constants.DT_DRBD8),
                                 (constants.DT_DRBD8, constants.DT_PLAIN)])
#: Templates with no implementation here
UNSUPPORTED = frozenset([constants.DT_GLUSTER])
#: Templates a conversion may start from
SOURCES = constants.DISK_TEMPLATES - UNSUPPORTED - {constants.DT_DISKLESS}
#: Templates a conversion may go to (blockdev disks are adopted devices)
TARGETS = SOURCES - {constants.DT_BLOCK}
#: Sources whose disks the prerequisites can look for on the primary node
#: (ext and rbd devices only show once mapped)
_FINDABLE = frozenset([constants.DT_PLAIN, constants.DT_DRBD8, constants.DT_FILE,
                       constants.DT_SHARED_FILE, constants.DT_BLOCK])


def _Inval(msg: str) -> errors.OpPrereqError:
    return errors.OpPrereqError(msg, errors.ECODE_INVAL)


def CheckArguments(op: Any) -> None:
    """The opcode alone: the conversion's options belong to the target
    template (``--file-storage-dir``/``--file-driver`` to file-based ones,
    ``--ext-params`` to ext, with a provider and no disk parameters)."""
    new = op.disk_template
    if (op.file_storage_dir or op.file_driver) and new not in constants.DTS_FILEBASED:
        raise _Inval("The file storage directory and file driver options are only"
                     " valid when converting to a file-based disk template ("
                     + ", ".join(sorted(constants.DTS_FILEBASED)) + ")")
    if op.ext_params and new != constants.DT_EXT:
        raise _Inval("The ext parameters (--ext-params) are only valid when converting"
                     f" to the {constants.DT_EXT} disk template")
    if not new:
        return
    if new == constants.DT_DISKLESS:
        raise _Inval("Conversion to the diskless disk template is not supported")
    if new == constants.DT_BLOCK:
        raise _Inval("Conversion to the blockdev disk template is not supported:"
                     " blockdev disks are adopted devices (only a source)")
    if new in UNSUPPORTED:
        raise _Inval(f"The {new} disk template is not supported by this cluster"
                     " software; cannot convert to it")
    if new == constants.DT_EXT:
        params = op.ext_params or {}
        if not params.get(constants.IDISK_PROVIDER):
            raise _Inval(f"Converting to the {constants.DT_EXT} disk template needs the"
                         " provider: --ext-params provider=NAME[,param=value...]")
        invalid = sorted(key for key in params if key in constants.IDISK_PARAMS
                         and key != constants.IDISK_PROVIDER)
        if invalid:
            raise _Inval(f"Invalid ext parameter(s) {', '.join(invalid)}: the disks keep"
                         " their size, mode, name and other disk parameters; give only"
                         " the provider and its own parameters")


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
    """Convert the disks of a stopped instance to another disk template."""

    cfg: Any

    def __init__(self, lu: LogicalUnit, instance_uuid: str, new_template: str,
                 snode_uuid: str | None, wait_for_sync: bool,
                 file_storage_dir: str | None = None, file_driver: str | None = None,
                 ext_params: dict[str, Any] | None = None,
                 ignore_ipolicy: bool = False) -> None:
        super().__init__(lu)
        self.instance_uuid = instance_uuid
        self.new_template = new_template
        self.snode_uuid = snode_uuid
        self.wait_for_sync = wait_for_sync
        self.file_storage_dir = file_storage_dir
        self.file_driver = file_driver
        self.ext_params = dict(ext_params or {})
        self.ignore_ipolicy = ignore_ipolicy
        self.file_dir: str | None = None
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
        if old not in SOURCES or new not in TARGETS:
            raise errors.OpPrereqError(
                f"Unsupported disk template conversion from {old} to {new} (possible"
                f" sources: {', '.join(sorted(SOURCES))}; targets:"
                f" {', '.join(sorted(TARGETS))})", errors.ECODE_INVAL)
        self.generic = (old, new) not in SPECIAL_CONVERSIONS
        cluster = cfg.GetClusterInfo()
        if not cluster.IsDiskTemplateEnabled(new):
            raise errors.OpPrereqError(
                f"Disk template '{new}' is not enabled in the cluster (enabled:"
                f" {', '.join(cluster.enabled_disk_templates or [])}); enable it with"
                " gnt-cluster modify --enabled-disk-templates", errors.ECODE_STATE)
        iu.CheckNodeOnline(cfg, inst.primary_node, "Cannot change the disk template of"
                           " an instance whose primary node is offline")
        iu.CheckInstanceState(lu, inst, iu.INSTANCE_DOWN, "cannot change disk template")
        if not self.ignore_ipolicy:
            group = cfg.GetNodeGroup(cfg.GetNodeInfo(inst.primary_node).group)
            allowed = cfg.GetGroupIPolicy(group).get(constants.IPOLICY_DTS)
            if allowed is not None and new not in allowed:
                raise errors.OpPrereqError(
                    f"Disk template {new} is not allowed by the instance policy of node"
                    f" group {group.name} (allowed: {', '.join(allowed)}); use"
                    " --ignore-ipolicy to convert anyway", errors.ECODE_INVAL)
        if self.generic:
            self._CheckGeneric()
        elif new == constants.DT_DRBD8:
            self._CheckToDrbd()
        else:
            self._CheckToPlain()

    def _CheckSecondary(self) -> None:
        """The new secondary node of a conversion to drbd; sets the DRBD
        disk parameters."""
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

    def _CheckToDrbd(self) -> None:
        cfg, lu, inst = self.cfg, self.lu, self.instance
        pnode, snode = inst.primary_node, self.snode_uuid
        self._CheckSecondary()
        assert snode is not None
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

    @staticmethod
    def _CopySource(disk: objects.Disk) -> objects.Disk:
        """The device holding a disk's data on the primary: a drbd disk's
        data volume, else the disk."""
        if disk.dev_type == constants.DT_DRBD8:
            return disk.children[0]
        return disk

    def _CheckGeneric(self) -> None:
        """Copying conversions: the old disks, the new disks' parameters
        and room for them."""
        cfg, lu, inst = self.cfg, self.lu, self.instance
        old, new = self.old_template, self.new_template
        pnode = inst.primary_node
        cluster = cfg.GetClusterInfo()
        if old == constants.DT_DRBD8:
            for disk in self.disks:
                if len(disk.children or []) != 2:
                    raise errors.OpPrereqError(
                        f"Disk {disk.iv_name} of instance {inst.name} is not a DRBD disk"
                        " with data and metadata volumes; cannot convert it",
                        errors.ECODE_STATE)
        if old in _FINDABLE:
            for idx, disk in enumerate(self.disks):
                source = self._CopySource(disk)
                if not disks_mod.DiskExistsOnNode(lu, pnode, source):
                    raise errors.OpPrereqError(
                        f"Disk {idx} of instance {inst.name}"
                        f" ({disks_mod.DescribeDisk(source)}) is missing on node"
                        f" {_Name(cfg, pnode)}; recreate it first"
                        " (gnt-instance recreate-disks)", errors.ECODE_STATE)
        if new == constants.DT_DRBD8:
            self._CheckSecondary()
        else:
            self.diskparams = cfg.GetGroupDiskParams(cfg.GetNodeGroup(
                cfg.GetNodeInfo(pnode).group)).get(new, {})
        self.specs = []
        for disk in self.disks:
            spec: dict[str, Any] = {constants.IDISK_SIZE: disk.size,
                                    constants.IDISK_MODE: disk.mode,
                                    constants.IDISK_NAME: disk.name}
            source = self._CopySource(disk)
            if new in constants.DTS_LVM and source.dev_type == constants.DT_PLAIN:
                spec[constants.IDISK_VG] = source.logical_id[0]
            if new == constants.DT_EXT:
                spec.update(self.ext_params)
            self.specs.append(spec)
        if new in constants.DTS_LVM:
            if not cfg.GetVGName() and any(constants.IDISK_VG not in spec
                                           for spec in self.specs):
                raise errors.OpPrereqError(
                    "The cluster has no volume group for LVM disks (gnt-cluster modify"
                    " --vg-name)", errors.ECODE_STATE)
            nodes = [pnode] + ([self.snode_uuid] if self.snode_uuid else [])
            disks_mod.CheckNodesFreeDiskPerVG(lu, nodes, disks_mod.ComputeDiskSizePerVG(
                cfg, new, self.specs, self.diskparams))
        elif new in constants.DTS_FILEBASED:
            self.file_dir = iu.InstanceFileDir(cluster, new, inst.name,
                                               self.file_storage_dir)
        elif new == constants.DT_EXT:
            provider = self.ext_params[constants.IDISK_PROVIDER]
            CheckExtStorageProvider(lu, [pnode], provider, {
                key: value for key, value in self.ext_params.items()
                if key not in constants.IDISK_PARAMS})

    # --- execution -----------------------------------------------------------------------

    def Exec(self, feedback_fn: FeedbackFn) -> None:
        """Shut the disks down and convert them."""
        lu, inst = self.lu, self.instance
        if not iu.ShutdownDisks(lu, inst):
            raise errors.OpExecError("Cannot shutdown instance disks, unable to proceed"
                                     " with disk template conversion")
        if self.generic:
            self._Copy(feedback_fn)
        elif self.new_template == constants.DT_DRBD8:
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
            self._InitDrbd(undo, new_disks, feedback_fn)
            feedback_fn("Updating the configuration...")
            self._ReplaceDisks(old_disks, new_disks)
        except Exception as err:
            self._Failed(err, undo, new_disks, feedback_fn)
            raise
        self._WaitForSync(feedback_fn)

    def _InitDrbd(self, undo: _Undo, new_disks: list[objects.Disk],
                  feedback_fn: FeedbackFn) -> None:
        """Create the DRBD devices over their volumes, on the secondary and
        then on the primary (the sync source)."""
        cfg, lu, rpc, inst = self.cfg, self.lu, self.rpc, self.instance
        pnode, snode = inst.primary_node, self.snode_uuid
        assert snode is not None
        feedback_fn("Initializing DRBD devices...")
        for new in new_disks:
            for node in (snode, pnode):
                disks_mod.CreateSingleBlockDev(lu, node, inst, new, node == pnode)
                minor = new.logical_id[3] if node == pnode else new.logical_id[4]
                undo.Add(f"DRBD device {new.iv_name} (minor {minor}) is configured"
                         f" on node {_Name(cfg, node)} (drbdsetup {minor} down)",
                         lambda new=new, node=node: rpc.call_blockdev_shutdown(
                             node, new.ToDict()))

    def _Failed(self, err: Exception, undo: _Undo, new_disks: list[objects.Disk],
                feedback_fn: FeedbackFn) -> None:
        """Undo a failed conversion; OpExecError if undoing failed too."""
        inst, old, new = self.instance, self.old_template, self.new_template
        feedback_fn(f"Converting to {new} failed ({err}); undoing the conversion")
        left = undo.Run()
        if new == constants.DT_DRBD8:
            # A disk that was in the configuration gave its port back when it
            # was removed again; another job may hold that port by now
            self._ReleaseNew([disk for disk in new_disks
                              if disk.uuid not in self.entered])
        if left:
            raise errors.OpExecError(
                f"Converting instance {inst.name} to {new} failed: {err}; undoing the"
                " conversion failed too, what is left: " + "; ".join(left)) from err
        feedback_fn(f"Instance {inst.name} keeps its {old} disks")

    def _WaitForSync(self, feedback_fn: FeedbackFn) -> None:
        inst = self.cfg.GetInstanceInfo(self.instance.uuid)
        if not disks_mod.WaitForSync(self.lu, inst, oneshot=not self.wait_for_sync,
                                     feedback_fn=feedback_fn):
            raise errors.OpExecError("There are some degraded disks for this instance,"
                                     " please cleanup manually")

    def _Copy(self, feedback_fn: FeedbackFn) -> None:
        """Create the new disks, copy the data, switch, remove the old ones."""
        cfg, lu, rpc, inst = self.cfg, self.lu, self.rpc, self.instance
        pnode, snode = inst.primary_node, self.snode_uuid
        pname = _Name(cfg, pnode)
        old, new = self.old_template, self.new_template
        old_disks = self.disks
        feedback_fn(f"Converting disk template of instance {inst.name} from {old} to"
                    f" {new}" + (f", with {_Name(cfg, snode)} as secondary node"
                                 if snode and new == constants.DT_DRBD8 else ""))
        ec_id = self._EcId()
        if new == constants.DT_DRBD8:
            new_disks = self._Generate(ec_id)
        else:
            new_disks = disks_mod.GenerateDisks(
                cfg, ec_id, new, inst.name, pnode, None, self.specs, self.file_dir,
                self.file_driver, self.diskparams)
        undo = _Undo(lu)
        try:
            if self.file_dir:
                directory = self.file_dir
                result = rpc.call_file_storage_dir_create(pnode, directory)
                result.Raise(f"Cannot create directory {directory} on node {pname}")
                undo.Add(f"directory {directory} exists on node {pname}",
                         lambda: rpc.call_file_storage_dir_remove(pnode, directory))
            feedback_fn("Creating the new disks...")
            for disk in new_disks:
                if new == constants.DT_DRBD8:
                    for node in (pnode, snode):
                        assert node is not None
                        for child in disk.children:
                            self._CreateLv(undo, node, child, node == pnode)
                else:
                    self._CreateDev(undo, pnode, disk)
            for idx, (old_disk, new_disk) in enumerate(zip(old_disks, new_disks)):
                feedback_fn(f"Copying the data of disk {idx} ({old_disk.size} MiB)...")
                source = self._CopySource(old_disk)
                target = self._CopySource(new_disk)
                result = rpc.call_blockdev_convert(pnode, source.ToDict(),
                                                   target.ToDict())
                if result.fail_msg:
                    raise errors.OpExecError(
                        f"Copying the data of disk {idx} of instance {inst.name} on node"
                        f" {pname} failed: {result.fail_msg}")
            if new == constants.DT_DRBD8:
                self._InitDrbd(undo, new_disks, feedback_fn)
            feedback_fn("Updating the configuration...")
            self._ReplaceDisks(old_disks, new_disks)
        except Exception as err:
            self._Failed(err, undo, new_disks, feedback_fn)
            raise

        feedback_fn(f"Removing the old {old} disks...")
        if old == constants.DT_BLOCK:
            feedback_fn("The blockdev devices are left untouched: they are no longer"
                        " used by the instance")
        elif not iu.RemoveDisks(lu, old_disks, pnode, inst.name):
            lu.LogWarning(f"Some old {old} disks of instance {inst.name} could not be"
                          " removed; remove them by hand")
        if new == constants.DT_DRBD8:
            self._WaitForSync(feedback_fn)

    def _CreateDev(self, undo: _Undo, node: str, disk: objects.Disk) -> None:
        """Create a disk without children (plain, file, ext, ...) on the
        primary node."""
        cfg, rpc, inst = self.cfg, self.rpc, self.instance
        disks_mod.CreateSingleBlockDev(self.lu, node, inst, disk, True)
        undo.Add(f"disk {disks_mod.DescribeDisk(disk)}"
                 f" ({'/'.join(map(str, disk.logical_id))}) exists on node"
                 f" {_Name(cfg, node)}",
                 lambda: rpc.call_blockdev_remove(node, disk.ToDict()))

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
