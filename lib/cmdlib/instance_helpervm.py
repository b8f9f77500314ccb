"""Helper VMs: booting an instance from an image on a temporary disk.

``gnt-backup export --zero-free-space`` zeroes the free space of a
stopped instance's disks before they are exported, so that compression
leaves little of it. Ganeti does this with a helper VM, and so do we:

1. the size of the image (the cluster's ``zeroing_image``: a file on the
   primary node or an http/https/ftp URL) is asked of the primary node
   (``get_image_size``), rounded up to whole MiB;
2. a temporary disk of that size is created on the primary node and put
   in the configuration as the instance's disk 0, the instance's own
   disks following it (:func:`TemporaryDisk`);
3. the node writes the image onto it (``blockdev_image``);
4. the instance is started: it boots the image, which zeroes the free
   space of the other disks and powers the VM off;
5. the master waits for that, up to the timeout (the fixed part plus the
   part per MiB of the instance's disks); a VM still running then is shut
   down forcibly, with a warning, as Ganeti does;
6. the instance is shut down on its node (a guest that powered itself off
   may leave its hypervisor process behind: KVM's ``user_shutdown``), its
   disks deactivated, and the temporary disk removed from the
   configuration and the node, whatever happened before.

The temporary disk has the template of the instance's disks when that is
``plain`` or ``file`` (the primary node has that storage, as the
instance's disks show), else ``plain`` (LVM) as in Ganeti when the cluster
has it enabled, else ``file``, in the instance's file directory: a cluster
without LVM can zero too (doc/departures.rst).
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterator
from typing import Any

from ganeti import constants, errors, objects
from ganeti.cmdlib import instance_utils as iu
from ganeti.cmdlib.base import FeedbackFn, LogicalUnit

#: The name of the temporary disk (as ``gnt-instance info`` would show it)
HELPER_DISK_NAME = "helper-vm-image"
#: Seconds between two looks at the helper VM (growing to the maximum)
_POLL_FIRST = 0.5
_POLL_MAX = 5.0


def ImageSizeMiB(lu: LogicalUnit, image: str, node_uuid: str) -> int:
    """The size of ``image`` as seen from the node, in whole MiB (at least 1);
    OpExecError naming the image when the node cannot tell."""
    result = lu.rpc.call_get_image_size(node_uuid, image)
    if result.fail_msg:
        raise errors.OpExecError(f"Could not determine the size of the image {image}"
                                 f" on node {iu.NodeName(lu.cfg, node_uuid)}:"
                                 f" {result.fail_msg}")
    return max(1, math.ceil(int(result.payload) / (1024 * 1024)))


def TemporaryDiskTemplate(cfg: Any, instance: objects.Instance) -> str:
    """The template of the helper VM's temporary disk: the instance's own
    when it is ``plain`` or ``file`` (its primary node has that storage),
    else ``plain`` when enabled (Ganeti's choice), else ``file``;
    OpPrereqError when neither is enabled."""
    enabled = cfg.GetClusterInfo().enabled_disk_templates or []
    own = cfg.GetInstanceDiskTemplate(instance.uuid)
    for template in (own, constants.DT_PLAIN, constants.DT_FILE):
        if template in (constants.DT_PLAIN, constants.DT_FILE) and template in enabled:
            return template
    raise errors.OpPrereqError("A helper VM needs a temporary disk of template plain or"
                               " file, and neither is enabled on this cluster",
                               errors.ECODE_STATE)


def _NewDisk(lu: LogicalUnit, instance: objects.Instance, template: str,
             size: int) -> objects.Disk:
    cfg: Any = lu.cfg
    ec_id = lu.proc.GetECId() if lu.proc is not None else "helper-vm"
    spec = {constants.IDISK_SIZE: size, constants.IDISK_MODE: constants.DISK_RDWR,
            constants.IDISK_NAME: HELPER_DISK_NAME}
    file_dir = None
    if template == constants.DT_FILE:
        # Next to the instance's own file disks, else in its standard directory
        own = sorted(iu.FileDirs([disk for disk in cfg.GetInstanceDisks(instance.uuid)
                                  if disk.dev_type == constants.DT_FILE]))
        file_dir = own[0] if own else iu.InstanceFileDir(cfg.GetClusterInfo(), template,
                                                         instance.name)
    (disk,) = iu.GenerateDisks(cfg, ec_id, template, instance.name, instance.primary_node,
                               [spec], file_dir, None)
    if template == constants.DT_FILE:
        # Not "disk0": the instance's own first disk may have that name
        disk.logical_id = (disk.logical_id[0],
                           f"{file_dir}/{HELPER_DISK_NAME}-{disk.uuid}")
    return disk


@contextlib.contextmanager
def TemporaryDisk(lu: LogicalUnit, instance: objects.Instance, size: int,
                  feedback_fn: FeedbackFn, shutdown_timeout: int
                  ) -> Iterator[objects.Disk]:
    """A new disk of ``size`` MiB on the instance's primary node, the
    instance's disk 0 in the configuration for the time of the block.

    On leaving, the instance is shut down on its node, its disks
    deactivated, and the temporary disk removed from the configuration
    and the node (failures of these: warnings).
    """
    cfg: Any = lu.cfg
    template = TemporaryDiskTemplate(cfg, instance)
    disk = _NewDisk(lu, instance, template, size)
    feedback_fn(f"Creating a temporary {template} disk of {size} MiB for the helper VM")
    iu.CreateDisks(lu, instance, [disk], instance.primary_node)
    try:
        cfg.AddInstanceDisk(instance.uuid, disk, idx=0)
    except Exception:
        iu.RemoveDisks(lu, [disk], instance.primary_node, instance.name)
        raise
    try:
        yield disk
    finally:
        current = cfg.GetInstanceInfo(instance.uuid)
        _StopHelper(lu, current, shutdown_timeout)
        iu.ShutdownInstanceDisks(lu, current)
        feedback_fn("Removing the temporary disk of the helper VM")
        cfg.RemoveInstanceDisk(instance.uuid, disk.uuid)
        if not iu.RemoveDisks(lu, [disk], instance.primary_node, instance.name):
            lu.LogWarning(f"The temporary disk {disk.logical_id} of the helper VM may be"
                          f" left on node {iu.NodeName(cfg, instance.primary_node)}")


def _StopHelper(lu: LogicalUnit, instance: objects.Instance, timeout: int) -> None:
    result = lu.rpc.call_instance_shutdown(instance.primary_node,
                                           iu.InstanceRpcDict(lu.cfg, instance), timeout,
                                           [])
    if result.fail_msg:
        lu.LogWarning(f"Could not shut the helper VM of {instance.name} down:"
                      f" {result.fail_msg}")


def HelperRunning(lu: LogicalUnit, instance: objects.Instance) -> bool:
    """Whether the helper VM still runs (a guest that powered itself off
    does not, even if its hypervisor process stays); OpExecError if the
    primary node cannot tell."""
    return iu.IsLiveAndRunning(iu.InstanceInfo(lu, instance, prereq=False))


def WaitForHelper(lu: LogicalUnit, instance: objects.Instance, timeout: float) -> bool:
    """Wait up to ``timeout`` seconds for the helper VM to stop; whether it did."""
    deadline = time.monotonic() + timeout
    interval = _POLL_FIRST
    while HelperRunning(lu, instance):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        time.sleep(min(interval, remaining))
        interval = min(interval * 2, _POLL_MAX)
    return True


def RunWithHelperVM(lu: LogicalUnit, instance: objects.Instance, image: str,
                    timeout: float, feedback_fn: FeedbackFn, shutdown_timeout: int,
                    purpose: str) -> bool:
    """Boot the stopped ``instance`` from ``image`` on a temporary disk 0 and
    wait up to ``timeout`` seconds for it to power itself off; everything is
    as before afterwards except what the helper did to the disks. Returns
    whether the helper finished in time (if not, it was stopped forcibly
    and a warning logged)."""
    cfg: Any = lu.cfg
    node = instance.primary_node
    size = ImageSizeMiB(lu, image, node)
    with TemporaryDisk(lu, instance, size, feedback_fn, shutdown_timeout) as disk:
        feedback_fn(f"Writing the {purpose} image {image} onto the temporary disk")
        result = lu.rpc.call_blockdev_image(node, disk.ToDict(), image, size)
        if result.fail_msg:
            raise errors.OpExecError(f"Could not write the {purpose} image {image} onto"
                                     f" the temporary disk on node"
                                     f" {iu.NodeName(cfg, node)}: {result.fail_msg}")
        feedback_fn(f"Starting instance {instance.name} with the {purpose} image")
        current = cfg.GetInstanceInfo(instance.uuid)
        result = lu.rpc.call_instance_start(node, iu.InstanceRpcDict(cfg, current),
                                            False, [])
        if result.fail_msg:
            raise errors.OpExecError(f"Could not start instance {instance.name} with the"
                                     f" {purpose} image {image}: {result.fail_msg}")
        feedback_fn(f"The helper VM is up; waiting up to {timeout:.0f} s for it to"
                    " shut itself down")
        finished = WaitForHelper(lu, current, timeout)
        if not finished:
            lu.LogWarning(f"The {purpose} did not complete within {timeout:.0f} s; the"
                          " helper VM is shut down forcibly")
    return finished


def ZeroFreeSpace(lu: LogicalUnit, instance: objects.Instance, fixed: float | None,
                  per_mib: float | None, feedback_fn: FeedbackFn,
                  shutdown_timeout: int) -> bool:
    """Zero the free space of the stopped instance's disks with the
    cluster's zeroing image (see the module's description)."""
    cfg: Any = lu.cfg
    image = cfg.GetClusterInfo().zeroing_image
    if not image:
        raise errors.OpExecError("No zeroing image is set (gnt-cluster modify"
                                 " --zeroing-image)")
    fixed = constants.HELPER_VM_STARTUP if fixed is None else fixed
    per_mib = constants.ZEROING_TIMEOUT_PER_MIB if per_mib is None else per_mib
    # The instance's own disks only: the temporary one is not zeroed
    total = sum(disk.size for disk in cfg.GetInstanceDisks(instance.uuid))
    timeout = fixed + per_mib * total
    finished = RunWithHelperVM(lu, instance, image, timeout, feedback_fn,
                               shutdown_timeout, "zeroing")
    if finished:
        feedback_fn("Zeroing completed")
    return finished
