"""Forthcoming instances: reserving an instance, and committing it.

``gnt-instance add --forthcoming`` (Ganeti's instance reservations) puts
the instance into the configuration with everything it will use: its
nodes, its disks with their sizes (DRBD minors and port included), its
NICs with their MACs and addresses. Nothing is made on any node. The
instance and its disks carry Ganeti's ``forthcoming`` flag, and the
instance is administratively ``offline``: it must not run, and it is what
tells a reservation from an unfinished creation, which this project also
marks forthcoming but always ``down`` (:mod:`ganeti.instance_cleanup`
removes those and leaves reservations alone).

``gnt-instance add --commit`` with the reservation's name creates it for
real: the opcode must agree with the reservation (disk template, nodes,
number and sizes of the disks, NICs), the usual checks of a creation run
(OS, parameters, free memory and storage), then the reserved disks are
created, the OS installed and the instance started as asked, keeping the
reserved MACs, addresses and DRBD minors. The instance takes the OS,
parameters and tags of the commit. While the commit runs the instance is
an unfinished creation; if it fails, the disks it made are removed and
the reservation is back. (If even that fails, or the master daemon dies
meanwhile, the master removes the instance like any unfinished
creation.)

Reserved disks count as used storage: a creation or reservation on the
same node must fit beside them (:func:`ReservedSize`).

``gnt-instance remove`` of a reservation only drops it from the
configuration; the other instance operations refuse it
(:func:`ganeti.cmdlib.instance_utils.CheckNotForthcoming`).
"""

from __future__ import annotations

from typing import Any

from ganeti import config_sync, constants, errors, locking, objects
from ganeti.cmdlib import instance_utils as iu
from ganeti.cmdlib.base import FeedbackFn, Interruption


def _Inval(msg: str) -> errors.OpPrereqError:
    return errors.OpPrereqError(msg, errors.ECODE_INVAL)


def IsReservation(instance: objects.Instance) -> bool:
    """Whether ``instance`` is a reservation (``--forthcoming``), not an
    unfinished creation."""
    return bool(instance.forthcoming) and \
        instance.admin_state == constants.ADMINST_OFFLINE


def _MarkForthcoming(disk: objects.Disk, value: bool) -> None:
    disk.forthcoming = value
    for child in disk.children or []:
        _MarkForthcoming(child, value)


# --- arguments ------------------------------------------------------------------------

def CheckArguments(lu: Any) -> None:
    """The opcode alone; for a commit, the nodes default to the
    reservation's (checked again under the locks)."""
    op = lu.op
    if op.forthcoming and op.commit:
        raise _Inval("--forthcoming and --commit exclude each other: reserve an"
                     " instance first, then commit it")
    if op.mode != constants.INSTANCE_CREATE:
        raise _Inval(f"Forthcoming instances are only created from scratch (mode"
                     f" '{constants.INSTANCE_CREATE}'), not in mode '{op.mode}'")
    if any(constants.IDISK_ADOPT in spec for spec in op.disks or []):
        raise _Inval("Disks cannot be adopted by a forthcoming instance")
    if op.forthcoming:
        # Nothing runs: no OS to install, nothing to start
        op.start = False
        return
    name = op.instance_name.strip().lower()
    inst = lu.cfg.GetInstanceInfoByName(name)
    if inst is None:
        expanded = lu.cfg.ExpandInstanceName(name)
        inst = lu.cfg.GetInstanceInfoByName(expanded) if expanded else None
    if inst is None or not IsReservation(inst):
        raise errors.OpPrereqError(
            f"There is no forthcoming instance '{name}' to commit (reserve it first"
            " with gnt-instance add --forthcoming)", errors.ECODE_NOENT)
    op.instance_name = inst.name
    # The reservation's DNS name may only resolve now: the name is kept
    op.name_check = op.ip_check = False
    nodes = lu.cfg.GetInstanceNodes(inst.uuid)
    if not op.pnode and not op.pnode_uuid:
        op.pnode = lu.cfg.GetNodeName(nodes[0])
        if len(nodes) > 1 and not op.snode and not op.snode_uuid:
            op.snode = lu.cfg.GetNodeName(nodes[1])
    # The reservation chose the nodes: no allocator
    op.iallocator = None


def CheckName(lu: Any) -> objects.Instance:
    """For a commit: the reservation of that name (OpPrereqError
    otherwise); stored as ``lu.reservation``."""
    inst = lu.cfg.GetInstanceInfoByName(lu.op.instance_name)
    if inst is None or not IsReservation(inst):
        raise errors.OpPrereqError(
            f"There is no forthcoming instance '{lu.op.instance_name}' to commit (it"
            " was removed or committed meanwhile)", errors.ECODE_NOENT)
    lu.reservation = inst
    return inst


def LockReservation(lu: Any) -> None:
    """A commit locks the reservation's existing instance lock instead of
    adding one."""
    lu.add_locks.pop(locking.LEVEL_INSTANCE, None)
    lu.needed_locks[locking.LEVEL_INSTANCE] = [lu.op.instance_name]


# --- prerequisites ---------------------------------------------------------------------

def CheckCommit(lu: Any) -> list[objects.NIC]:
    """Under the locks: the commit agrees with the reservation (template,
    nodes, disks, NICs); returns the reserved NICs the instance keeps."""
    cfg, op = lu.cfg, lu.op
    inst = CheckName(lu)
    disks = cfg.GetInstanceDisks(inst.uuid)
    template = disks[0].dev_type if disks else constants.DT_DISKLESS
    name = inst.name
    if template != op.disk_template:
        raise _Inval(f"Forthcoming instance {name} was reserved with disk template"
                     f" {template}, not {op.disk_template}")
    nodes = cfg.GetInstanceNodes(inst.uuid)
    wanted = [lu.pnode.uuid] + ([lu.snode.uuid] if lu.snode is not None else [])
    if list(nodes) != wanted:
        raise _Inval(f"Forthcoming instance {name} was reserved on node(s)"
                     f" {', '.join(cfg.GetNodeNames(nodes))}, not on"
                     f" {', '.join(cfg.GetNodeNames(wanted))}")
    sizes = [spec[constants.IDISK_SIZE] for spec in lu.disk_specs]
    reserved = [disk.size for disk in disks]
    if sizes != reserved:
        raise _Inval(f"Forthcoming instance {name} was reserved with disk sizes"
                     f" {_Sizes(reserved)}, not {_Sizes(sizes)}")
    specs = lu.nic_specs
    if len(specs) != len(inst.nics):
        raise _Inval(f"Forthcoming instance {name} was reserved with {len(inst.nics)}"
                     f" NIC(s), not {len(specs)}")
    for idx, (spec, nic) in enumerate(zip(specs, inst.nics)):
        _CheckNic(cfg, name, idx, spec, nic)
    return [nic.Copy() for nic in inst.nics]


def _Sizes(sizes: list[int]) -> str:
    return "[" + ", ".join(f"{size} MiB" for size in sizes) + "]"


def _CheckNic(cfg: Any, name: str, idx: int, spec: dict[str, Any],
              nic: objects.NIC) -> None:
    """A NIC of the commit may leave out what was reserved, not differ."""
    differ = []
    mac = spec.get(constants.INIC_MAC)
    if mac not in (None, constants.VALUE_AUTO, constants.VALUE_GENERATE) and \
            mac != nic.mac:
        differ.append(f"MAC {mac} (reserved: {nic.mac})")
    ip = spec.get(constants.INIC_IP)
    if ip not in (None, constants.NIC_IP_POOL) and ip != nic.ip:
        differ.append(f"IP {ip} (reserved: {nic.ip})")
    net = spec.get(constants.INIC_NETWORK)
    if net and cfg.LookupNetwork(net) != nic.network:
        differ.append(f"network {net}")
    if spec.get(constants.INIC_NAME) and spec[constants.INIC_NAME] != nic.name:
        differ.append(f"name {spec[constants.INIC_NAME]} (reserved: {nic.name})")
    if differ:
        raise _Inval(f"NIC {idx} of forthcoming instance {name} differs from its"
                     f" reservation: {', '.join(differ)}")


def ReservedSize(cfg: Any, node_uuids: list[str], disk_templates: Any,
                 exclude: str | None = None) -> int:
    """MiB reserved by the forthcoming disks of reservations (but
    ``exclude``, an instance UUID) of the given disk templates on any of
    ``node_uuids`` (the most of one node)."""
    templates = set(disk_templates)
    per_node = dict.fromkeys(node_uuids, 0)
    snapshot = cfg.GetReadOnlySnapshot()
    for inst in snapshot.instances.values():
        if inst.uuid == exclude or not IsReservation(inst):
            continue
        for disk_uuid in inst.disks:
            disk = snapshot.disks.get(disk_uuid)
            if disk is None or disk.dev_type not in templates:
                continue
            for node in disk.nodes or disk.ComputeNodes(inst.primary_node):
                if node in per_node:
                    per_node[node] += int(disk.size or 0)
    return max(per_node.values(), default=0)


# --- execution ------------------------------------------------------------------------

def Reserve(lu: Any, ec_id: Any, feedback_fn: FeedbackFn) -> list[str]:
    """Add the reservation to the configuration; nothing else."""
    cfg, op = lu.cfg, lu.op
    pnode = lu.pnode
    for idx, nic in enumerate(lu.nics):
        iu.AssignNicMac(cfg, nic, idx, ec_id)
    disks = iu.GenerateDisks(cfg, ec_id, op.disk_template, op.instance_name,
                             pnode.uuid, lu.disk_specs, lu.file_dir, op.file_driver,
                             snode_uuid=lu.snode.uuid if lu.snode else None,
                             diskparams=lu.diskparams)
    for disk in disks:
        _MarkForthcoming(disk, True)
    instance = objects.Instance(
        name=op.instance_name, os=op.os_type, primary_node=pnode.uuid,
        nics=lu.nics, disks=[], disks_active=False,
        admin_state=constants.ADMINST_OFFLINE, forthcoming=True,
        admin_state_source=constants.ADMIN_SOURCE,
        hypervisor=lu.hvname, hvparams=lu.hvparams, beparams=lu.beparams,
        osparams=lu.osparams, osparams_private=lu.osparams_private,
        tags=list(op.tags or []))
    instance.uuid = cfg.GenerateUniqueID(ec_id)
    feedback_fn(f"reserving instance {instance.name} (forthcoming: nothing is"
                " created on the nodes)")
    with config_sync.DeferDistribution():
        cfg.AddInstance(instance, ec_id)
    # The last save carries the whole reservation to the other nodes
    for disk in disks:
        cfg.AddInstanceDisk(instance.uuid, disk)
    return cfg.GetNodeNames(cfg.GetInstanceNodes(instance.uuid))


def Commit(lu: Any, ec_id: Any, feedback_fn: FeedbackFn) -> list[str]:
    """Turn the reservation into the instance: create its disks, install
    the OS, start it; on failure give the reservation back."""
    cfg, op = lu.cfg, lu.op
    pnode = lu.pnode
    inst = cfg.GetInstanceInfo(lu.reservation.uuid)
    disks = cfg.GetInstanceDisks(inst.uuid)
    feedback_fn(f"committing forthcoming instance {inst.name}")
    # From here on an unfinished creation (down, disks real): a crash
    # leaves what the master daemon's cleanup removes
    with config_sync.DeferDistribution():
        for disk in disks:
            _MarkForthcoming(disk, False)
            cfg.Update(disk)
        inst.admin_state = constants.ADMINST_DOWN
        inst.os = op.os_type
        inst.hypervisor = lu.hvname
        inst.hvparams = lu.hvparams
        inst.beparams = lu.beparams
        inst.osparams = lu.osparams
        inst.osparams_private = lu.osparams_private
        for tag in op.tags or []:
            inst.AddTag(tag)
        cfg.Update(inst, feedback_fn, ec_id)
    inst = cfg.GetInstanceInfo(inst.uuid)
    disks = cfg.GetInstanceDisks(inst.uuid)
    created = started = False
    try:
        if disks:
            feedback_fn("* creating instance disks...")
            if lu.file_dir:
                result = lu.rpc.call_file_storage_dir_create(pnode.uuid, lu.file_dir)
                result.Raise(f"Failed to create directory '{lu.file_dir}' on node"
                             f" {pnode.name}")
            iu.CreateDisks(lu, inst, disks, pnode.uuid, feedback_fn)
            created = True
            lu._WaitForMirrors(inst, feedback_fn)
        if not op.no_install:
            lu.InstallOs(inst, feedback_fn)
        if op.start:
            feedback_fn("* starting instance...")
            started = True
            iu.StartInstanceOnNode(lu, inst)
        lu.FinishCreation(inst, feedback_fn)
    except Exception:
        lu.LogWarning(f"Commit of instance {inst.name} failed; removing what it"
                      " created and keeping the reservation")
        if not _UndoCommit(lu, inst.uuid, created, started):
            lu.LogWarning(f"Instance {inst.name} stays as an unfinished creation"
                          " until the master daemon has removed it")
            cleanup = getattr(lu.context, "instance_cleanup", None)
            if cleanup is not None:
                cleanup.Wake(inst.name)
        raise
    return cfg.GetNodeNames(cfg.GetInstanceNodes(inst.uuid))


def _UndoCommit(lu: Any, inst_uuid: str, created: bool, started: bool) -> bool:
    """Stop the instance and remove its disks, then make it a reservation
    again; False if the node could not do its part."""
    cfg = lu.cfg
    inst = cfg.GetInstanceInfo(inst_uuid)
    if started:
        result = lu.rpc.call_instance_shutdown(inst.primary_node,
                                               iu.InstanceRpcDict(cfg, inst), 0, [])
        if result.fail_msg:
            lu.LogWarning(f"Could not stop instance {inst.name}: {result.fail_msg}")
            return False
    disks = cfg.GetInstanceDisks(inst_uuid)
    if created and not iu.RemoveDisks(lu, disks, inst.primary_node, inst.name):
        return False
    with config_sync.DeferDistribution():
        for disk in disks:
            _MarkForthcoming(disk, True)
            cfg.Update(disk)
    inst = cfg.GetInstanceInfo(inst_uuid)
    inst.admin_state = constants.ADMINST_OFFLINE
    inst.disks_active = False
    cfg.Update(inst)
    return True


def Interrupted(cfg: Any, op: Any, inst: objects.Instance) -> Interruption | None:
    """What an interrupted reservation or commit amounts to, when the
    instance is a reservation (None otherwise: an unfinished creation,
    or a committed instance, answered as for any creation)."""
    if not IsReservation(inst):
        return None
    if getattr(op, "commit", False):
        return Interruption(False, f"instance {inst.name} was not committed; it is"
                            " still forthcoming: commit it again")
    if len(inst.disks) != len(op.disks or []):
        return Interruption(False, f"the reservation of instance {inst.name} did not"
                            " finish (some disks are missing): remove it and reserve"
                            " it again")
    nodes = cfg.GetNodeNames(cfg.GetInstanceNodes(inst.uuid))
    return Interruption(True, f"instance {inst.name} had been reserved", result=nodes)
