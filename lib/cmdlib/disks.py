"""Disks of every template on the master: generating the disk objects of
a new instance, and the node steps that act on whole disk trees (create,
remove, assemble, shut down, wait for the mirror to sync).

A disk of an instance is a tree: a ``plain`` disk is one logical volume on
the primary node; a ``drbd`` disk is a DRBD device on both of its nodes,
each over two local logical volumes (data and metadata). The node calls
take the disk object as a dict; the RPC runner adds to it what only the
master knows, per destination node (for DRBD the addresses and minors of
both ends, as ``dynamic_params``, never saved:
:class:`ganeti.rpc.node.ConfigDiskAnnotator`).

The names are Ganeti's: LVs are called ``<unique id>.disk<N>`` (plain) or
``<unique id>.disk<N>_data`` / ``_meta`` (drbd); a DRBD disk's
``logical_id`` is (node A, node B, port, minor A, minor B, secret) with
node A the primary at creation; its metadata volume has
:data:`DRBD_META_SIZE` MiB.
"""

from __future__ import annotations

import os
import time
from typing import Any

from ganeti import constants, errors, objects
from ganeti.cmdlib.base import FeedbackFn, LogicalUnit, NodeName

#: MiB of a DRBD metadata volume (Ganeti's)
DRBD_META_SIZE = 128
#: Seconds between two sync status polls while waiting for a mirror
SYNC_POLL_INTERVAL = 1.0
#: Polls a degraded, not syncing mirror is given before giving up
DEGRADED_RETRIES = 10


# --- generating the disks of a new instance -------------------------------------------------

def _LvParams(params: dict[str, Any], stripes_key: str) -> dict[str, Any]:
    return {constants.LV_STRIPES: params.get(stripes_key, 1)}


def GenerateDisks(cfg: Any, ec_id: Any, disk_template: str, instance_name: str,
                  pnode_uuid: str, snode_uuid: str | None,
                  disk_specs: list[dict[str, Any]], file_dir: str | None,
                  file_driver: str | None, diskparams: dict[str, Any] | None = None,
                  base_index: int = 0) -> list[objects.Disk]:
    """The disk objects of a new instance (none for diskless).

    ``diskparams`` are the template's filled disk parameters (group over
    cluster); ``base_index`` numbers disks added to an existing instance.
    DRBD minors and the port are allocated here (minors under ``ec_id``).
    """
    if disk_template == constants.DT_DISKLESS:
        return []
    if disk_template not in constants.DISK_TEMPLATES:
        raise errors.OpPrereqError(f"Unknown disk template '{disk_template}'",
                                   errors.ECODE_INVAL)
    params = dict(diskparams or constants.DISK_DT_DEFAULTS.get(disk_template, {}))
    if disk_template == constants.DT_DRBD8:
        if not snode_uuid or snode_uuid == pnode_uuid:
            raise errors.OpPrereqError(
                "The drbd disk template needs a secondary node different from the"
                " primary", errors.ECODE_INVAL)
    disks = []
    for offset, spec in enumerate(disk_specs):
        idx = base_index + offset
        size = spec[constants.IDISK_SIZE]
        common: dict[str, Any] = {
            "size": size, "mode": spec.get(constants.IDISK_MODE, constants.DISK_RDWR),
            "iv_name": f"disk/{idx}", "name": spec.get(constants.IDISK_NAME),
        }
        uuid = cfg.GenerateUniqueID(ec_id)
        if disk_template in constants.DTS_FILEBASED:
            disk = objects.Disk(
                dev_type=disk_template,
                logical_id=(file_driver or constants.FD_DEFAULT,
                            os.path.join(file_dir or "", f"disk{idx}")),
                params={}, children=[], nodes=[pnode_uuid], **common)
        elif disk_template == constants.DT_PLAIN:
            vg = spec.get(constants.IDISK_VG) or cfg.GetVGName()
            # Adopted volumes are renamed to this standard name at creation
            lv = f"{cfg.GenerateUniqueID(ec_id)}.disk{idx}"
            cfg.ReserveLV(f"{vg}/{lv}", ec_id)
            disk = objects.Disk(dev_type=constants.DT_PLAIN, logical_id=(vg, lv),
                                params=_LvParams(params, constants.LV_STRIPES),
                                children=[], nodes=[pnode_uuid], **common)
        elif disk_template == constants.DT_DRBD8:
            assert snode_uuid is not None
            disk = _GenerateDrbdDisk(cfg, ec_id, uuid, pnode_uuid, snode_uuid, idx, spec,
                                     params, common)
        elif disk_template == constants.DT_BLOCK:
            disk = objects.Disk(dev_type=constants.DT_BLOCK,
                                logical_id=(constants.BLOCKDEV_DRIVER_MANUAL,
                                            spec[constants.IDISK_ADOPT]),
                                params={}, children=[], nodes=[pnode_uuid], **common)
        elif disk_template == constants.DT_EXT:
            provider = spec.get(constants.IDISK_PROVIDER)
            if not provider:
                raise errors.OpPrereqError(
                    f"Disk {idx}: ext disks need a provider (provider=NAME)",
                    errors.ECODE_INVAL)
            ext_params = {key: value for key, value in spec.items()
                          if key not in constants.IDISK_PARAMS}
            disk = objects.Disk(
                dev_type=constants.DT_EXT,
                logical_id=(provider, f"{cfg.GenerateUniqueID(ec_id)}.ext.disk{idx}"),
                params=ext_params, children=[], nodes=[pnode_uuid], **common)
        elif disk_template == constants.DT_RBD:
            disk = objects.Disk(
                dev_type=constants.DT_RBD,
                logical_id=("rbd", f"{cfg.GenerateUniqueID(ec_id)}.rbd.disk{idx}"),
                params={key: params[key] for key in (constants.RBD_POOL,
                                                     constants.RBD_ACCESS)
                        if key in params},
                children=[], nodes=[pnode_uuid], **common)
        else:
            raise errors.OpPrereqError(
                f"Disk template '{disk_template}' is not supported here",
                errors.ECODE_INVAL)
        disk.uuid = uuid
        disks.append(disk)
    return disks


def _GenerateDrbdDisk(cfg: Any, ec_id: Any, uuid: str, pnode: str, snode: str,
                      idx: int, spec: dict[str, Any], params: dict[str, Any],
                      common: dict[str, Any]) -> objects.Disk:
    vg = spec.get(constants.IDISK_VG) or cfg.GetVGName()
    metavg = spec.get(constants.IDISK_METAVG) or params.get(
        constants.DRBD_DEFAULT_METAVG) or vg
    prefix = cfg.GenerateUniqueID(ec_id)
    data = objects.Disk(
        dev_type=constants.DT_PLAIN, size=common["size"],
        logical_id=(vg, f"{prefix}.disk{idx}_data"),
        params={constants.LV_STRIPES: params.get(constants.DRBD_DATA_STRIPES, 1)},
        children=[], nodes=[pnode, snode], mode=constants.DISK_RDWR)
    data.uuid = cfg.GenerateUniqueID(ec_id)
    meta = objects.Disk(
        dev_type=constants.DT_PLAIN, size=DRBD_META_SIZE,
        logical_id=(metavg, f"{prefix}.disk{idx}_meta"),
        params={constants.LV_STRIPES: params.get(constants.DRBD_META_STRIPES, 1)},
        children=[], nodes=[pnode, snode], mode=constants.DISK_RDWR)
    meta.uuid = cfg.GenerateUniqueID(ec_id)
    for lv in (data, meta):
        cfg.ReserveLV("/".join(lv.logical_id), ec_id)
    minors = cfg.AllocateDRBDMinor([pnode, snode], uuid, ec_id)
    port = cfg.AllocatePort()
    secret = cfg.GenerateDRBDSecret(ec_id)
    drbd_params = {key: value for key, value in params.items()
                   if key not in (constants.DRBD_DATA_STRIPES, constants.DRBD_META_STRIPES,
                                  constants.DRBD_DEFAULT_METAVG)}
    return objects.Disk(dev_type=constants.DT_DRBD8,
                        logical_id=(pnode, snode, port, minors[0], minors[1], secret),
                        children=[data, meta], nodes=[pnode, snode], params=drbd_params,
                        **common)


def IsExclusiveStorage(cfg: Any, node_uuid: str) -> bool:
    """Whether the node's (filled) node parameters enable exclusive storage."""
    return bool(cfg.GetNdParams(cfg.GetNodeInfo(node_uuid)).get(
        constants.ND_EXCLUSIVE_STORAGE))


def DiskNodes(disk: objects.Disk, primary_uuid: str) -> list[str]:
    """The nodes a top-level disk lives on, the primary first."""
    nodes = disk.ComputeNodes(primary_uuid)
    return sorted(nodes, key=lambda uuid: uuid != primary_uuid)


# --- creating and removing ----------------------------------------------------------------

def _CreateTree(lu: LogicalUnit, node_uuid: str, instance: objects.Instance,
                disk: objects.Disk, on_primary: bool, force_create: bool,
                created: list[tuple[str, objects.Disk]]) -> None:
    """Create ``disk`` (children first) on one node, as Ganeti does: a
    device type that exists on secondaries is created there too."""
    if disk.CreateOnSecondary():
        force_create = True
    for child in disk.children or []:
        _CreateTree(lu, node_uuid, instance, child, on_primary, force_create, created)
    if not force_create:
        return
    cfg: Any = lu.cfg
    excl = IsExclusiveStorage(cfg, node_uuid)
    result = lu.rpc.call_blockdev_create(
        node_uuid, disk.ToDict(), disk.size, instance.name,
        on_primary, f"originstname+{instance.name}", excl)
    if result.fail_msg:
        raise errors.OpExecError(
            f"Can't create block device {disk.iv_name or '/'.join(map(str, disk.logical_id))}"
            f" on node {NodeName(cfg, node_uuid)} for instance {instance.name}:"
            f" {result.fail_msg}")
    created.append((node_uuid, disk))


def CreateDisks(lu: LogicalUnit, instance: objects.Instance, disks: list[objects.Disk],
                primary_uuid: str | None = None,
                feedback_fn: FeedbackFn | None = None) -> None:
    """Create ``disks`` on all their nodes (secondaries first, as Ganeti);
    on a failure remove what was created and raise OpExecError."""
    primary = primary_uuid or instance.primary_node
    created: list[tuple[str, objects.Disk]] = []
    try:
        for idx, disk in enumerate(disks):
            for node in reversed(DiskNodes(disk, primary)):
                _CreateTree(lu, node, instance, disk, node == primary, node == primary,
                            created)
            if feedback_fn is not None:
                feedback_fn(f"* created disk {idx} ({disk.size} MiB)")
    except errors.OpExecError:
        for node, disk in reversed(created):
            lu.rpc.call_blockdev_remove(node, disk.ToDict())
        raise


def RemoveDiskTrees(lu: LogicalUnit, disks: list[objects.Disk], primary_uuid: str,
                    instance_name: str, warn: Any,
                    skip_nodes: frozenset[str] = frozenset()) -> bool:
    """Remove each disk from every node it lives on (the node removes the
    children too); offline nodes and ``skip_nodes`` are left out.
    Failures are warnings; returns whether everything went."""
    cfg: Any = lu.cfg
    ok = True
    for idx, disk in enumerate(disks):
        for node in DiskNodes(disk, primary_uuid):
            info = cfg.GetNodeInfo(node)
            if node in skip_nodes or info is None or info.offline:
                continue
            result = lu.rpc.call_blockdev_remove(node, disk.ToDict())
            if result.fail_msg:
                warn(f"Could not remove disk {idx} of instance {instance_name} on node"
                     f" {NodeName(cfg, node)}: {result.fail_msg}")
                ok = False
    return ok


# --- assembling and shutting down -----------------------------------------------------------

def AssembleOnNodes(lu: LogicalUnit, instance: objects.Instance,
                    disks: list[tuple[int, objects.Disk]], primary_uuid: str,
                    ignore_secondaries: bool = False
                    ) -> list[tuple[str, str, str | None]]:
    """Assemble disks as Ganeti does: first on every node of each disk as
    secondary (so DRBD connects), then on the primary as primary. Returns
    (primary node name, disk name, device) per disk; raises OpExecError
    naming the disk and the node on a failure (secondary failures are
    warnings with ``ignore_secondaries``)."""
    cfg: Any = lu.cfg
    for idx, disk in disks:
        for node in DiskNodes(disk, primary_uuid):
            if cfg.GetNodeInfo(node).offline:
                continue
            result = lu.rpc.call_blockdev_assemble(
                node, disk.ToDict(), _InstanceRef(instance), False, idx)
            if result.fail_msg:
                text = (f"Could not prepare block device {disk.iv_name} of instance"
                        f" {instance.name} on node {NodeName(cfg, node)} (is_primary="
                        f"False, pass=1): {result.fail_msg}")
                if node != primary_uuid and ignore_secondaries:
                    lu.LogWarning(text)
                    continue
                raise errors.OpExecError(text)
    info = []
    pname = NodeName(cfg, primary_uuid)
    for idx, disk in disks:
        node_disk = disk.ToDict()
        result = lu.rpc.call_blockdev_assemble(primary_uuid, node_disk,
                                               _InstanceRef(instance), True, idx)
        if result.fail_msg:
            raise errors.OpExecError(
                f"Could not prepare block device {disk.iv_name} of instance"
                f" {instance.name} on node {pname} (is_primary=True, pass=2):"
                f" {result.fail_msg}")
        link = result.payload[0] if result.payload else None
        found = lu.rpc.call_blockdev_find(primary_uuid, node_disk)
        dev_path = found.payload.get("dev_path") if not found.fail_msg and \
            isinstance(found.payload, dict) else None
        info.append((pname, disk.iv_name, dev_path or link))
    return info


def ShutdownOnNodes(lu: LogicalUnit, instance: objects.Instance,
                    disks: list[objects.Disk], primary_uuid: str,
                    node_uuid: str | None = None, ignore_failures: bool = True,
                    ignore_primary: bool = False) -> bool:
    """Shut disks down on all their nodes (or only ``node_uuid``); failures
    are warnings, or OpExecError unless ``ignore_failures`` (a failure on
    the primary is always fatal then, unless ``ignore_primary``). Returns
    whether everything went."""
    cfg: Any = lu.cfg
    ok = True
    for disk in disks:
        nodes = [node_uuid] if node_uuid else DiskNodes(disk, primary_uuid)
        for node in nodes:
            info = cfg.GetNodeInfo(node)
            if info is None or (info.offline and node != node_uuid):
                continue
            result = lu.rpc.call_blockdev_shutdown(node, disk.ToDict())
            if result.fail_msg:
                text = (f"Could not shut down block device {disk.iv_name} of instance"
                        f" {instance.name} on node {NodeName(cfg, node)}:"
                        f" {result.fail_msg}")
                if not ignore_failures and not (node == primary_uuid and ignore_primary):
                    raise errors.OpExecError(text)
                lu.LogWarning(text)
                ok = False
    return ok


def _InstanceRef(instance: objects.Instance) -> dict[str, Any]:
    return {"name": instance.name, "hypervisor": instance.hypervisor}


# --- mirror status ------------------------------------------------------------------------

def MirrorStatus(lu: LogicalUnit, node_uuid: str, disks: list[objects.Disk]
                 ) -> list[objects.BlockDevStatus]:
    """The combined sync status of each disk on a node (OpExecError if the
    node cannot say)."""
    cfg: Any = lu.cfg
    result = lu.rpc.call_blockdev_getmirrorstatus(node_uuid, disks)
    result.Raise(f"Can't get the mirror status of the disks on node"
                 f" {NodeName(cfg, node_uuid)}")
    return [objects.BlockDevStatus.FromDict(status) for status in result.payload]


def WaitForSync(lu: LogicalUnit, instance: objects.Instance,
                disks: list[objects.Disk] | None = None, oneshot: bool = False,
                feedback_fn: FeedbackFn | None = None) -> bool:
    """Wait until the mirrored disks of the instance are in sync on its
    primary node; return False if one stays degraded without syncing.
    Disks that do not mirror are in sync at once."""
    cfg: Any = lu.cfg
    if disks is None:
        disks = cfg.GetInstanceDisks(instance.uuid)
    disks = [disk for disk in disks if disk.dev_type in constants.DTS_INT_MIRROR]
    if not disks:
        return True
    node = instance.primary_node
    say = feedback_fn or lu.LogInfo
    if not oneshot:
        say(f"Waiting for instance {instance.name} to sync disks")
    degraded_polls = 0
    while True:
        statuses = MirrorStatus(lu, node, disks)
        done = True
        degraded = False
        for disk, status in zip(disks, statuses):
            if status.sync_percent is not None:
                done = False
                eta = (f", {status.estimated_time} s remaining"
                       if status.estimated_time is not None else "")
                say(f"- device {disk.iv_name}: {status.sync_percent:5.2f}% done{eta}")
            elif status.is_degraded:
                degraded = True
        if done and degraded:
            degraded_polls += 1
            if degraded_polls >= DEGRADED_RETRIES:
                return False
            done = False
        if done or oneshot:
            break
        time.sleep(SYNC_POLL_INTERVAL)
    if not oneshot:
        say(f"Instance {instance.name}'s disks are in sync")
    return not degraded


# --- free space -----------------------------------------------------------------------------

def ComputeDiskSizePerVG(cfg: Any, disk_template: str, disk_specs: list[dict[str, Any]],
                         diskparams: dict[str, Any] | None = None) -> dict[str, int]:
    """MiB each volume group must have free for new disks of an LVM based
    template (data and, for drbd, metadata volumes); empty for others."""
    if disk_template not in constants.DTS_LVM:
        return {}
    default_vg = cfg.GetVGName()
    metavg_default = (diskparams or {}).get(constants.DRBD_DEFAULT_METAVG)
    needed: dict[str, int] = {}
    for spec in disk_specs:
        vg = spec.get(constants.IDISK_VG) or default_vg
        needed[vg] = needed.get(vg, 0) + spec[constants.IDISK_SIZE]
        if disk_template == constants.DT_DRBD8:
            metavg = spec.get(constants.IDISK_METAVG) or metavg_default or vg
            needed[metavg] = needed.get(metavg, 0) + DRBD_META_SIZE
    return needed


def CheckNodesFreeDiskPerVG(lu: LogicalUnit, node_uuids: list[str],
                            req_sizes: dict[str, int]) -> None:
    """OpPrereqError naming the node and the volume group when one of the
    nodes lacks the group (ECODE_ENVIRON) or its free space (ECODE_NORES)."""
    cfg: Any = lu.cfg
    for vg, requested in sorted(req_sizes.items()):
        for node_uuid in node_uuids:
            name = NodeName(cfg, node_uuid)
            unit = [constants.ST_LVM_VG, vg, [IsExclusiveStorage(cfg, node_uuid)]]
            result = lu.rpc.call_node_info([node_uuid], [unit], [])[node_uuid]
            result.Raise(f"Cannot get the free space of volume group {vg} on node"
                         f" {name}", prereq=True, ecode=errors.ECODE_ENVIRON)
            try:
                free = result.payload[1][0]["storage_free"]
            except (TypeError, IndexError, KeyError):
                raise errors.OpPrereqError(
                    f"Invalid node_info answer from node {name} for volume group {vg}",
                    errors.ECODE_ENVIRON) from None
            if not isinstance(free, (int, float)):
                raise errors.OpPrereqError(
                    f"Can't compute free disk space on node {name} for vg {vg},"
                    f" result was '{free}'", errors.ECODE_ENVIRON)
            if requested > free:
                raise errors.OpPrereqError(
                    f"Not enough disk space on target node {name} vg {vg}:"
                    f" required {requested} MiB, available {int(free)} MiB",
                    errors.ECODE_NORES)


# --- single devices (disk template conversion, recreate-disks) --------------------------------

def DescribeDisk(disk: objects.Disk) -> str:
    """A disk for messages: its instance name (disk/N), else its logical_id
    ("xenvg/<uuid>.disk0_meta")."""
    return disk.iv_name or "/".join(map(str, disk.logical_id or ()))


def CreateSingleBlockDev(lu: LogicalUnit, node_uuid: str, instance: objects.Instance,
                         disk: objects.Disk, on_primary: bool) -> None:
    """Create ``disk`` alone on one node: its children must exist there
    already (a DRBD device over its volumes). On the primary the node also
    assembles and opens it, which makes a new DRBD device the sync source.
    OpExecError naming the device and the node on a failure."""
    cfg: Any = lu.cfg
    result = lu.rpc.call_blockdev_create(
        node_uuid, disk.ToDict(), disk.size, instance.name,
        on_primary, f"originstname+{instance.name}", IsExclusiveStorage(cfg, node_uuid))
    if result.fail_msg:
        raise errors.OpExecError(
            f"Can't create block device {DescribeDisk(disk)} on node"
            f" {NodeName(cfg, node_uuid)} for instance {instance.name}: {result.fail_msg}")


def DiskExistsOnNode(lu: LogicalUnit, node_uuid: str, disk: objects.Disk) -> bool:
    """Whether the node finds the device (for a DRBD disk: the configured
    device, not its volumes); OpPrereqError (ECODE_ENVIRON) if it cannot
    tell."""
    cfg: Any = lu.cfg
    result = lu.rpc.call_blockdev_find(node_uuid, disk.ToDict())
    result.Raise(f"Can't check block device {DescribeDisk(disk)} on node"
                 f" {NodeName(cfg, node_uuid)}", prereq=True, ecode=errors.ECODE_ENVIRON)
    return bool(result.payload)
