"""Creating an instance: ``LUInstanceCreate`` (mode "create").

Checks everything before touching a node: name, OS (present on the
primary node, allowed, variant and parameters valid), hypervisor and
backend parameters, NICs, disks, disk template, the primary node's state,
memory and storage, and the instance policy.

Then, so that a crash at any moment leaves something the master can
finish or undo (doc/design-masterd.rst, "Interrupted opcodes"): the
instance enters the configuration first, with its disks, marked
``forthcoming`` (its creation is not finished) and administratively down;
only then are its directory and disks created on the node, the OS create
script run and the instance started. The creation is committed by one
save that clears ``forthcoming`` (and sets the admin state up when the
instance was started). A failure before that undoes everything
(:func:`UndoCreation`: stop, remove the disks and directory, remove from
the configuration). If the undo cannot finish (the node does not answer)
the instance stays, still forthcoming, with its lock, and the master
daemon's :mod:`ganeti.instance_cleanup` removes it once the node answers;
it does the same for a creation interrupted by a master daemon crash
(:meth:`LUInstanceCreate.Interrupted` tells the job queue what to report).

A NIC on a network (``network=NAME``) takes its mode, link and VLAN from
the network's connection to the primary node's group and its address from
the network (``ip=pool`` or a free address of it), reserved at the end of
CheckPrereq for the job: AddInstance commits it, a failed job drops it
(:mod:`ganeti.cmdlib.instance_nics`).

The LU holds the Big Ganeti Lock only shared: the processor adds the new
instance's lock (``add_locks``; a second job creating the same name fails
there), and the LU locks its primary node and that node's resources, so
creations on different nodes run in parallel. With an allocator (``-I``,
or the cluster's default one when no node is given) every node is locked
until the allocator has chosen, in CheckPrereq; the others are released
then (:mod:`ganeti.cmdlib.instance_alloc`). Import modes come later.

Reserving an instance (``forthcoming``) and committing a reservation
(``commit``) are :mod:`ganeti.cmdlib.instance_forthcoming`'s; the
instance communication NIC (``instance_communication``) is
:mod:`ganeti.cmdlib.instance_communication`'s.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ganeti import config_sync, constants, errors, hooksmaster, locking, objects
from ganeti.cmdlib import instance_utils as iu
from ganeti.cmdlib.base import FeedbackFn, Interruption, LogicalUnit
from ganeti.cmdlib.cluster import CheckBeParams, CheckHvParams, CheckNicParams
from ganeti.cmdlib.node import ExpandNode
from ganeti.cmdlib import disks as disks_mod
from ganeti.cmdlib import instance_alloc
from ganeti.cmdlib import instance_communication as comm
from ganeti.cmdlib import instance_forthcoming as forthcoming
from ganeti.cmdlib import instance_remote_import
from ganeti.cmdlib import instance_nics as nics_mod
from ganeti.cmdlib.extstorage import CheckExtStorageProvider
from ganeti.cmdlib.os import CheckOsAllowedForNewInstance


def _Inval(msg: str) -> errors.OpPrereqError:
    return errors.OpPrereqError(msg, errors.ECODE_INVAL)


def ParseDiskSpecs(disks: list[dict[str, Any]],
                   disk_template: str | None = None) -> list[dict[str, Any]]:
    """Check the ``disks`` parameter; sizes become MiB integers.

    ``vg``/``metavg`` are kept for LVM based templates, ``provider`` and
    the provider's own parameters for ``ext``, ``adopt`` for ``plain`` and
    ``blockdev`` (all disks or none; an adopted disk's size comes from the
    node when not given).
    """
    result = []
    for idx, spec in enumerate(disks):
        if not isinstance(spec, dict):
            raise _Inval(f"Invalid disk {idx} specification {spec!r}: expected a dict")
        unknown = sorted(set(spec) - set(constants.IDISK_PARAMS))
        if unknown and disk_template != constants.DT_EXT:
            raise _Inval(f"Unknown parameter(s) for disk {idx}: {', '.join(unknown)}")
        adopt = spec.get(constants.IDISK_ADOPT)
        if adopt is not None and disk_template not in (constants.DT_PLAIN,
                                                       constants.DT_BLOCK, None):
            raise _Inval(f"Disk {idx}: adoption is only supported for the plain and"
                         f" blockdev disk templates, not {disk_template}")
        if constants.IDISK_SIZE not in spec and adopt is None:
            raise _Inval(f"Missing disk size for disk {idx}")
        new: dict[str, Any] = {}
        if constants.IDISK_SIZE in spec:
            new[constants.IDISK_SIZE] = iu.ParseDiskSize(spec[constants.IDISK_SIZE],
                                                         f" for disk {idx}")
        mode = spec.get(constants.IDISK_MODE, constants.DISK_RDWR)
        iu.CheckDiskMode(mode, f" for disk {idx}")
        new[constants.IDISK_MODE] = mode
        if spec.get(constants.IDISK_NAME):
            new[constants.IDISK_NAME] = spec[constants.IDISK_NAME]
        for key in (constants.IDISK_VG, constants.IDISK_METAVG):
            if spec.get(key):
                if disk_template not in constants.DTS_LVM and disk_template is not None:
                    raise _Inval(f"Disk {idx}: '{key}' is only valid for LVM based disk"
                                 f" templates (plain, drbd), not {disk_template}")
                new[key] = str(spec[key])
        if spec.get(constants.IDISK_PROVIDER) is not None or unknown:
            if disk_template != constants.DT_EXT:
                raise _Inval(f"Disk {idx}: a provider is only valid for ext disks")
            new[constants.IDISK_PROVIDER] = spec.get(constants.IDISK_PROVIDER)
            for key in unknown:
                new[key] = spec[key]
        elif disk_template == constants.DT_EXT:
            raise _Inval(f"Missing provider for ext disk {idx} (provider=NAME)")
        if adopt is not None:
            if not isinstance(adopt, str) or not adopt:
                raise _Inval(f"Disk {idx}: invalid adopt value {adopt!r}")
            new[constants.IDISK_ADOPT] = adopt
        result.append(new)
    adopted = [constants.IDISK_ADOPT in spec for spec in result]
    if any(adopted) and not all(adopted):
        raise _Inval("Either all disks are adopted or none is")
    return result


def ParseNicSpecs(nics: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Check the ``nics`` parameter (MAC, IP, mode, link, network)."""
    result = []
    for idx, spec in enumerate(nics):
        if not isinstance(spec, dict):
            raise _Inval(f"Invalid NIC {idx} specification {spec!r}: expected a dict")
        unknown = sorted(set(spec) - set(constants.INIC_PARAMS))
        if unknown:
            raise _Inval(f"Unknown parameter(s) for NIC {idx}: {', '.join(unknown)}")
        nics_mod.CheckNoParamsWithNetwork(spec, f"NIC {idx}")
        new = dict(spec)
        if nics_mod.IsNoneValue(new.get(constants.INIC_NETWORK)):
            new.pop(constants.INIC_NETWORK, None)
        new[constants.INIC_MAC] = iu.NormalizeNicMac(
            new.get(constants.INIC_MAC) or constants.VALUE_AUTO, f" for NIC {idx}")
        ip = new.get(constants.INIC_IP)
        if ip is None or str(ip).lower() == constants.VALUE_NONE:
            new[constants.INIC_IP] = None
        elif ip == constants.VALUE_AUTO:
            raise _Inval(f"NIC {idx}: IP 'auto' needs the name check, which resolves"
                         " the instance name; give the address instead")
        elif ip == constants.NIC_IP_POOL:
            if not new.get(constants.INIC_NETWORK):
                raise _Inval(f"NIC {idx}: IP 'pool' is only valid with a network")
        else:
            new[constants.INIC_IP] = iu.NormalizeNicIp(ip, f" for NIC {idx}")
        params = {key: new[key] for key in (constants.INIC_MODE, constants.INIC_LINK,
                                            constants.INIC_VLAN)
                  if new.get(key) not in (None, "")}
        CheckNicParams(params)
        if params.get(constants.INIC_MODE) == constants.NIC_MODE_ROUTED and \
                new.get(constants.INIC_IP) is None:
            raise _Inval(f"NIC {idx}: routed mode needs an IP address")
        result.append(new)
    return result


class LUInstanceCreate(LogicalUnit):
    """Create an instance on one node."""

    HPATH = "instance-add"
    HTYPE = constants.HTYPE_INSTANCE
    REQ_BGL = False
    cfg: Any
    pnode: objects.Node
    snode: objects.Node | None

    # --- arguments ------------------------------------------------------------------

    def CheckArguments(self) -> None:
        """Check the opcode alone: mode, names, parameters, disks and NICs."""
        op = self.op
        if op.mode == constants.INSTANCE_REMOTE_IMPORT:
            instance_remote_import.CheckArguments(self)
        elif op.mode == constants.INSTANCE_IMPORT:
            from ganeti.cmdlib import instance_import
            instance_import.CheckArguments(self)
        elif op.mode != constants.INSTANCE_CREATE:
            raise _Inval(f"Instance creation mode '{op.mode}' is not supported yet"
                         " (only 'create')")
        if op.forthcoming or op.commit:
            forthcoming.CheckArguments(self)
        # The nodes, or the allocator choosing them (-I, or the cluster's
        # default when no node is given)
        self.iallocator = instance_alloc.ChooseIallocator(
            self.cfg, op.iallocator,
            bool(op.pnode or op.pnode_uuid or op.snode or op.snode_uuid))
        op.iallocator = self.iallocator
        if not self.iallocator and not op.pnode and not op.pnode_uuid:
            raise instance_alloc.NoPlacementError()
        if op.snode and op.disk_template not in constants.DTS_INT_MIRROR:
            raise _Inval(f"A secondary node is only used by the mirrored disk template"
                         f" drbd, not by {op.disk_template}")
        if op.disk_template in constants.DTS_INT_MIRROR and not op.snode and \
                not self.iallocator:
            raise _Inval(f"The {op.disk_template} disk template needs a secondary node"
                         " (-n PRIMARY:SECONDARY)")
        if op.ip_check and not op.name_check:
            raise _Inval("Cannot do IP address check without a name check (pass"
                         " --no-ip-check together with --no-name-check)")
        if op.no_install and op.start:
            self.LogInfo("No-installation mode selected, disabling startup")
            op.start = False
        # The checks gnt-instance add-tags applies (length, characters, count)
        try:
            for tag in op.tags:
                objects.TaggableObject.ValidateTag(tag)
        except errors.TagError as err:
            raise _Inval(str(err)) from None
        if len(set(op.tags)) > constants.MAX_TAGS_PER_OBJ:
            raise _Inval(f"Too many tags: {len(set(op.tags))} (at most"
                         f" {constants.MAX_TAGS_PER_OBJ})")
        op.instance_name = op.instance_name.strip().lower()
        self.check_ip = None
        if op.name_check:
            host = iu.ResolveInstanceName(op.instance_name)
            op.instance_name = host.name
            self.check_ip = host.ip
        op.instance_name = iu.CheckNewInstanceName(op.instance_name)
        if not op.disk_template:
            raise _Inval("No disk template given (-t)")
        if not op.os_type:
            raise _Inval("No operating system given (-o)")
        self.disk_specs = ParseDiskSpecs(op.disks, op.disk_template)
        self.adopt_disks = bool(self.disk_specs) and all(
            constants.IDISK_ADOPT in spec for spec in self.disk_specs)
        if op.disk_template == constants.DT_DISKLESS and self.disk_specs:
            raise _Inval("Diskless instances cannot have disks")
        if self.adopt_disks and self.iallocator:
            raise _Inval("Disk adoption is not allowed with an iallocator: the"
                         " disks to adopt are on one node (-n/--node)")
        if op.disk_template != constants.DT_DISKLESS and not self.disk_specs:
            raise _Inval(f"Instances with the {op.disk_template} disk template need at"
                         " least one disk (--disk 0:size=... or -s SIZE)")
        self.nic_specs = ParseNicSpecs(op.nics)
        if op.instance_communication:
            self.nic_specs += ParseNicSpecs(
                [comm.CreationNicSpec(self.cfg, op.instance_name)])
        self.beparams = CheckBeParams(op.beparams)
        if op.file_storage_dir and op.disk_template not in constants.DTS_FILEBASED:
            raise _Inval("A file storage directory is only valid for file-based disk"
                         " templates")

    def ExpandNames(self) -> None:
        """Add the new instance's lock; lock the primary node (and its
        resources), or every node when an allocator chooses them."""
        if self.iallocator:
            # self.pnode and self.snode are set once the allocator has chosen
            self.snode = None
            self._CheckNameFree()
            self.add_locks[locking.LEVEL_INSTANCE] = [self.op.instance_name]
            # The nodes it does not choose are released in CheckPrereq
            self.needed_locks = {locking.LEVEL_NODE: locking.ALL_SET,
                                 locking.LEVEL_NODE_RES: locking.ALL_SET}
            nics_mod.DeclareNetworkLocks(self, self._NicNetworks(), locking.ALL_SET)
            return
        self.pnode = ExpandNode(self.cfg, self.op.pnode or self.op.pnode_uuid)
        self.op.pnode = self.pnode.name
        self.op.pnode_uuid = self.pnode.uuid
        self.snode = None
        nodes = [self.pnode.uuid]
        if self.op.snode or self.op.snode_uuid:
            self.snode = ExpandNode(self.cfg, self.op.snode or self.op.snode_uuid)
            self.op.snode = self.snode.name
            self.op.snode_uuid = self.snode.uuid
            if self.snode.uuid == self.pnode.uuid:
                raise _Inval(f"The secondary node cannot be the primary node"
                             f" ({self.pnode.name})")
            nodes.append(self.snode.uuid)
        self._CheckNameFree()
        self.add_locks[locking.LEVEL_INSTANCE] = [self.op.instance_name]
        self.needed_locks = {locking.LEVEL_NODE: list(nodes),
                             locking.LEVEL_NODE_RES: list(nodes)}
        if self.op.commit:
            forthcoming.LockReservation(self)
        # Re-checked in CheckPrereq: the node may change group until locked
        nics_mod.DeclareNetworkLocks(
            self, self._NicNetworks(),
            sorted(self.cfg.GetNodeGroupsFromNodes([self.pnode.uuid])))

    def _NicNetworks(self) -> list[str]:
        """The UUIDs of the NICs' networks."""
        return nics_mod.NamedNetworks(
            self.cfg, (spec.get(constants.INIC_NETWORK) for spec in self.nic_specs))

    def _CheckNameFree(self) -> None:
        """OpPrereqError (ECODE_EXISTS) if the instance name is used."""
        name = self.op.instance_name
        if self.op.commit:
            # The name is that of the reservation to commit
            forthcoming.CheckName(self)
            return
        if self.cfg.GetInstanceInfoByName(name) is not None:
            raise errors.OpPrereqError(f"Instance '{name}' is already in the cluster",
                                       errors.ECODE_EXISTS)

    # --- prerequisites ---------------------------------------------------------------

    def CheckPrereq(self) -> None:  # noqa: C901 - one check after the other
        """Check the cluster state: name, node, OS, parameters, resources."""
        cfg, op = self.cfg, self.op
        cluster = cfg.GetClusterInfo()
        # Again under the instance's lock: the name may have been taken since
        self._CheckNameFree()
        if self.check_ip and op.ip_check:
            iu.CheckInstanceIpFree(self.check_ip, op.instance_name)

        # Hypervisor and disk template
        self.hvname = op.hypervisor or cluster.primary_hypervisor
        if self.hvname not in cluster.enabled_hypervisors:
            raise errors.OpPrereqError(
                f"Hypervisor '{self.hvname}' is not enabled on this cluster (enabled:"
                f" {', '.join(cluster.enabled_hypervisors)})", errors.ECODE_STATE)
        if not cluster.IsDiskTemplateEnabled(op.disk_template):
            raise errors.OpPrereqError(
                f"Disk template '{op.disk_template}' is not enabled in the cluster"
                f" (enabled: {', '.join(cluster.enabled_disk_templates or [])});"
                " enable it with gnt-cluster modify --enabled-disk-templates",
                errors.ECODE_STATE)

        if self.iallocator:
            self._RunAllocator(cluster)

        # Primary node
        pnode = iu.CheckTargetNode(cfg, self.pnode.uuid,
                                   "Cannot use {state} primary node {name}")
        self.pnode = pnode
        group = cfg.GetNodeGroup(pnode.group)
        nics_mod.CheckNetworkLocks(
            self, [spec.get(constants.INIC_NETWORK) for spec in self.nic_specs],
            pnode.group)

        # OS
        CheckOsAllowedForNewInstance(cluster, op.os_type)
        self.osparams = dict(op.osparams or {})
        self.osparams_private = dict(op.osparams_private or {})
        filled_osp = cluster.SimpleFillOS(op.os_type, self.osparams,
                                          self.osparams_private)
        # Secret parameters reach the OS scripts of this creation only
        filled_osp.update(op.osparams_secret or {})
        result = self.rpc.call_os_validate(
            [pnode.uuid], True, op.os_type, [constants.OS_VALIDATE_PARAMETERS],
            filled_osp, op.force_variant)[pnode.uuid]
        result.Raise(f"OS '{op.os_type}' not usable on node {pnode.name}", prereq=True,
                     ecode=errors.ECODE_INVAL)

        # Hypervisor and backend parameters
        # The syntax check needs the whole set: check the filled parameters
        self.filled_hvp = CheckHvParams(
            self.hvname, cluster.SimpleFillHV(self.hvname, op.os_type, op.hvparams or {}))
        self.hvparams = {key: self.filled_hvp[key] for key in op.hvparams or {}
                         if key in self.filled_hvp}
        result = self.rpc.call_hypervisor_validate_params(
            [pnode.uuid], self.hvname, self.filled_hvp)[pnode.uuid]
        result.Raise(f"Hypervisor parameters not valid on node {pnode.name}",
                     prereq=True, ecode=errors.ECODE_INVAL)
        self.filled_bep = cluster.SimpleFillBE(self.beparams)
        maxmem = int(self.filled_bep[constants.BE_MAXMEM])
        minmem = int(self.filled_bep[constants.BE_MINMEM])
        if minmem > maxmem:
            raise _Inval(f"Minimum memory ({minmem} MiB) is greater than maximum"
                         f" memory ({maxmem} MiB)")
        vcpus = int(self.filled_bep[constants.BE_VCPUS])

        # NICs: a default one when none is given
        # A commit keeps the reserved NICs (MACs, addresses)
        self.nics = forthcoming.CheckCommit(self) if op.commit else \
            self._BuildNics(cluster, self.nic_specs, group)
        iu.CheckNicsBridgesExist(self, self.nics, pnode.uuid)

        # File storage
        self.file_dir = None
        if op.disk_template in constants.DTS_FILEBASED:
            self.file_dir = iu.InstanceFileDir(cluster, op.disk_template,
                                               op.instance_name, op.file_storage_dir)

        # Secondary node, disk parameters, adopted disks
        if self.snode is not None:
            self.snode = iu.CheckTargetNode(cfg, self.snode.uuid,
                                            "Cannot use {state} secondary node {name}")
            if self.snode.group != pnode.group:
                self.LogWarning("The primary and secondary nodes are in two different"
                                " node groups; the instance will not be able to fail"
                                " over within its group")
        self.diskparams = cfg.GetGroupDiskParams(group).get(op.disk_template, {})
        if op.disk_template == constants.DT_EXT:
            for spec in self.disk_specs:
                CheckExtStorageProvider(
                    self, [pnode.uuid], spec[constants.IDISK_PROVIDER],
                    {key: value for key, value in spec.items()
                     if key not in constants.IDISK_PARAMS})
        if self.adopt_disks:
            self._CheckAdoption(pnode)

        # Instance policy
        ipolicy = cfg.GetGroupIPolicy(group)
        disk_sizes = [spec[constants.IDISK_SIZE] for spec in self.disk_specs]
        violations = iu.ComputeIPolicySpecViolation(
            ipolicy, maxmem, vcpus, len(disk_sizes), len(self.nics), disk_sizes,
            int(self.filled_bep.get(constants.BE_SPINDLE_USE) or 1), op.disk_template)
        # As in Ganeti 3.0 the vcpu-ratio and spindle-ratio of the policy are the
        # allocator's business (hail, hbal, hspace): a node given by hand is not
        # refused for them
        hv_info = iu.NodeHvInfo(self, pnode.uuid, self.hvname, self.filled_hvp)
        if violations:
            message = iu.FormatIPolicyViolations(op.instance_name, violations)
            if not op.ignore_ipolicy:
                raise errors.OpPrereqError(message, errors.ECODE_INVAL)
            self.LogWarning(f"Instance {op.instance_name} does not meet the instance"
                            f" policy (ignored): {'; '.join(violations)}")

        # Resources
        if op.start:
            iu.CheckNodeFreeMemory(
                self, pnode.uuid, f"starting instance {op.instance_name}", maxmem,
                self.hvname, self.filled_hvp, hv_info=hv_info)
        if op.disk_template in constants.DTS_FILEBASED:
            # Beside the disks reserved by forthcoming instances
            iu.CheckNodeFreeStorage(self, pnode, op.disk_template, sum(disk_sizes) +
                                    forthcoming.ReservedSize(
                                        cfg, [pnode.uuid], [op.disk_template],
                                        getattr(getattr(self, "reservation", None),
                                                "uuid", None)))
        if op.disk_template in constants.DTS_LVM and not self.adopt_disks:
            if not cfg.GetVGName() and not all(spec.get(constants.IDISK_VG)
                                               for spec in self.disk_specs):
                raise errors.OpPrereqError(
                    "The cluster has no volume group (gnt-cluster modify --vg-name)",
                    errors.ECODE_STATE)
            nodes = [pnode.uuid] + ([self.snode.uuid] if self.snode else [])
            disks_mod.CheckNodesFreeDiskPerVG(
                self, nodes, disks_mod.ComputeDiskSizePerVG(
                    cfg, op.disk_template, self.disk_specs, self.diskparams))
        # Last, as nothing else can fail now: the addresses from the networks,
        # reserved for this job (committed with the instance, else dropped)
        if not op.commit:
            self._ReserveNicIps()
        # As in Ganeti, a dry run answers the nodes the instance would use
        self.dry_run_result = [pnode.name] + ([self.snode.name] if self.snode else [])

    def _RunAllocator(self, cluster: Any) -> None:
        """Let the allocator choose the nodes; keep only their locks."""
        op = self.op
        req = instance_alloc.CreateInstanceAllocRequest(
            self.cfg, op, self.disk_specs, self.nic_specs,
            cluster.SimpleFillBE(self.beparams), self.hvname)
        nodes = instance_alloc.RunInstanceAllocator(self, str(self.iallocator), req)
        self.pnode = nodes[0]
        self.snode = nodes[1] if len(nodes) > 1 else None
        op.pnode, op.pnode_uuid = self.pnode.name, self.pnode.uuid
        if self.snode is not None:
            op.snode, op.snode_uuid = self.snode.name, self.snode.uuid
        instance_alloc.ReleaseNodeLocks(self, [node.uuid for node in nodes])

    def _CheckAdoption(self, pnode: objects.Node) -> None:
        """Adopted disks exist on the primary node and are not in use; their
        sizes come from there."""
        op = self.op
        if op.disk_template == constants.DT_PLAIN:
            names = []
            for spec in self.disk_specs:
                vg = spec.get(constants.IDISK_VG) or self.cfg.GetVGName()
                spec[constants.IDISK_VG] = vg
                names.append(f"{vg}/{spec[constants.IDISK_ADOPT]}")
            if len(set(names)) != len(names):
                raise _Inval(f"Duplicate logical volumes to adopt: {', '.join(names)}")
            for name in names:
                try:
                    self.cfg.ReserveLV(name, self.proc.GetECId() if self.proc else "adopt")
                except errors.ReservationError:
                    raise errors.OpPrereqError(
                        f"Logical volume {name} is already in use or reserved",
                        errors.ECODE_NOTUNIQUE) from None
            result = self.rpc.call_lv_list([pnode.uuid],
                                           sorted({n.split("/")[0] for n in names}))[
                                               pnode.uuid]
            result.Raise(f"Cannot get the logical volumes of node {pnode.name}",
                         prereq=True, ecode=errors.ECODE_ENVIRON)
            lvs = result.payload or {}
            missing = [name for name in names if name not in lvs]
            if missing:
                raise errors.OpPrereqError(
                    f"Missing logical volume(s) to adopt on node {pnode.name}:"
                    f" {', '.join(missing)}", errors.ECODE_INVAL)
            online = [name for name in names if lvs[name][2]]
            if online:
                raise errors.OpPrereqError(
                    f"Online logical volumes found, cannot adopt: {', '.join(online)}",
                    errors.ECODE_STATE)
            for spec, name in zip(self.disk_specs, names):
                spec[constants.IDISK_SIZE] = int(round(float(lvs[name][0])))
        elif op.disk_template == constants.DT_BLOCK:
            probes = [objects.Disk(dev_type=constants.DT_BLOCK, size=0,
                                   logical_id=(constants.BLOCKDEV_DRIVER_MANUAL,
                                               spec[constants.IDISK_ADOPT]),
                                   children=[], params={})
                      for spec in self.disk_specs]
            result = self.rpc.call_blockdev_getdimensions([pnode.uuid], probes)[pnode.uuid]
            result.Raise(f"Cannot check the block devices to adopt on node {pnode.name}",
                         prereq=True, ecode=errors.ECODE_ENVIRON)
            for spec, dims in zip(self.disk_specs, result.payload or []):
                if dims is None:
                    raise errors.OpPrereqError(
                        f"Block device {spec[constants.IDISK_ADOPT]} to adopt not found"
                        f" on node {pnode.name}", errors.ECODE_INVAL)
                spec[constants.IDISK_SIZE] = int(dims[0]) // (1024 * 1024)

    def _ReserveNicIps(self) -> None:
        """Reserve the NICs' addresses in their networks (``ip=pool`` takes a
        free one) for this job."""
        ec_id = self.proc.GetECId() if self.proc is not None else "instance-create"
        for idx, nic in enumerate(self.nics):
            if nic.network:
                nic.ip = nics_mod.ReserveIp(self.cfg, nic.network, nic.ip, ec_id,
                                            f"NIC {idx}", check=self.op.conflicts_check)

    def _BuildNics(self, cluster: Any, specs: list[dict[str, Any]],
                   group: objects.NodeGroup) -> list[objects.NIC]:
        """The NIC objects; a NIC on a network takes its parameters from the
        network's connection to the primary node's group."""
        cfg = self.cfg
        # A read-only snapshot: copying every instance costs more than this
        used_macs = {nic.mac for inst in cfg.GetReadOnlySnapshot().instances.values()
                     for nic in inst.nics}
        nics = []
        for idx, spec in enumerate(specs):
            net_uuid = None
            if spec.get(constants.INIC_NETWORK):
                net_uuid = cfg.LookupNetwork(spec[constants.INIC_NETWORK])
            mac = spec.get(constants.INIC_MAC, constants.VALUE_AUTO)
            if mac not in (constants.VALUE_AUTO, constants.VALUE_GENERATE) and \
                    mac in used_macs:
                raise errors.OpPrereqError(
                    f"MAC address {mac} of NIC {idx} is already in use in the cluster",
                    errors.ECODE_NOTUNIQUE)
            if net_uuid:
                params = nics_mod.ConnectionParams(cfg, net_uuid, group)
            else:
                params = {key: spec[key] for key in (constants.INIC_MODE,
                                                     constants.INIC_LINK,
                                                     constants.INIC_VLAN)
                          if spec.get(key) not in (None, "")}
                if self.op.conflicts_check:
                    nics_mod.CheckIpOutsideNetworks(cfg, spec.get(constants.INIC_IP),
                                                    group, f"NIC {idx}")
            filled = cluster.SimpleFillNIC(params)
            if filled.get(constants.NIC_MODE) == constants.NIC_MODE_ROUTED and \
                    not spec.get(constants.INIC_IP):
                raise _Inval(f"NIC {idx}: routed mode needs an IP address")
            nics.append(objects.NIC(mac=mac, ip=spec.get(constants.INIC_IP),
                                    network=net_uuid, nicparams=params,
                                    name=spec.get(constants.INIC_NAME)))
        return nics

    # --- hooks -------------------------------------------------------------------------

    def BuildHooksEnv(self) -> dict[str, Any]:
        """Ganeti's instance-add variables for the instance to be."""
        op = self.op
        env: dict[str, Any] = {
            "ADD_MODE": op.mode,
            "OP_TARGET": op.instance_name,
            "INSTANCE_NAME": op.instance_name,
            "INSTANCE_PRIMARY": self.pnode.name,
            "INSTANCE_SECONDARY": "",
            "INSTANCE_OS_TYPE": op.os_type,
            "INSTANCE_STATUS": constants.ADMINST_UP if op.start else constants.ADMINST_DOWN,
            "INSTANCE_MINMEM": self.filled_bep[constants.BE_MINMEM],
            "INSTANCE_MAXMEM": self.filled_bep[constants.BE_MAXMEM],
            "INSTANCE_MEMORY": self.filled_bep[constants.BE_MAXMEM],
            "INSTANCE_VCPUS": self.filled_bep[constants.BE_VCPUS],
            "INSTANCE_DISK_TEMPLATE": op.disk_template,
            "INSTANCE_HYPERVISOR": self.hvname,
            "INSTANCE_NIC_COUNT": len(self.nics),
            "INSTANCE_DISK_COUNT": len(self.disk_specs),
        }
        for idx, spec in enumerate(self.disk_specs):
            env[f"INSTANCE_DISK{idx}_SIZE"] = spec[constants.IDISK_SIZE]
            env[f"INSTANCE_DISK{idx}_MODE"] = spec[constants.IDISK_MODE]
        cluster = self.cfg.GetClusterInfo()
        for idx, nic in enumerate(self.nics):
            params = cluster.SimpleFillNIC(nic.nicparams)
            env[f"INSTANCE_NIC{idx}_MAC"] = nic.mac
            env[f"INSTANCE_NIC{idx}_IP"] = nic.ip
            env[f"INSTANCE_NIC{idx}_MODE"] = params.get(constants.NIC_MODE)
            env[f"INSTANCE_NIC{idx}_LINK"] = params.get(constants.NIC_LINK)
            env[f"INSTANCE_NIC{idx}_VLAN"] = params.get(constants.NIC_VLAN)
            if params.get(constants.NIC_MODE) == constants.NIC_MODE_BRIDGED:
                env[f"INSTANCE_NIC{idx}_BRIDGE"] = params.get(constants.NIC_LINK)
            if nic.network:
                env.update(hooksmaster.NetworkHookEnv(self.cfg.GetNetwork(nic.network),
                                                   nic.network, f"INSTANCE_NIC{idx}_"))
        for params, kind in ((self.filled_bep, "BE"), (self.filled_hvp, "HV")):
            for key, value in params.items():
                env[f"INSTANCE_{kind}_{key}"] = value
        return env

    def BuildHooksNodes(self) -> tuple[list[str], list[str]]:
        """The master and the primary node."""
        nodes = [self.cfg.GetMasterNode(), self.pnode.uuid]
        return nodes, nodes

    # --- execution --------------------------------------------------------------------

    def Exec(self, feedback_fn: FeedbackFn) -> list[str]:
        """Create disks, add to the configuration, install, start; undo on failure."""
        cfg, op = self.cfg, self.op
        ec_id = self.proc.GetECId() if self.proc is not None else "instance-create"
        try:
            if op.forthcoming:
                return forthcoming.Reserve(self, ec_id, feedback_fn)
            if op.commit:
                return forthcoming.Commit(self, ec_id, feedback_fn)
            return self._Create(cfg, op, ec_id, feedback_fn)
        finally:
            cfg.DropECReservations(ec_id)

    def _Create(self, cfg: Any, op: Any, ec_id: Any, feedback_fn: FeedbackFn) -> list[str]:
        pnode = self.pnode
        for idx, nic in enumerate(self.nics):
            iu.AssignNicMac(cfg, nic, idx, ec_id)
        disks = iu.GenerateDisks(cfg, ec_id, op.disk_template, op.instance_name,
                                 pnode.uuid, self.disk_specs, self.file_dir,
                                 op.file_driver,
                                 snode_uuid=self.snode.uuid if self.snode else None,
                                 diskparams=self.diskparams)
        instance = objects.Instance(
            name=op.instance_name, os=op.os_type, primary_node=pnode.uuid,
            nics=self.nics, disks=[], disks_active=False,
            # Down and forthcoming until the commit below: a crash before it
            # leaves an instance the master removes, never one to be started
            admin_state=constants.ADMINST_DOWN, forthcoming=True,
            admin_state_source=constants.ADMIN_SOURCE,
            hypervisor=self.hvname, hvparams=self.hvparams, beparams=self.beparams,
            osparams=self.osparams, osparams_private=self.osparams_private,
            tags=list(op.tags or []))
        instance.uuid = cfg.GenerateUniqueID(ec_id)

        # In the configuration before anything exists on the node, so that
        # whatever a crash leaves there belongs to an instance. Only the
        # master needs it now: the commit's save carries it to the nodes.
        feedback_fn(f"adding instance {instance.name} to cluster config")
        with config_sync.DeferDistribution():
            cfg.AddInstance(instance, ec_id)
        started = False
        self.renamed_adopted: list[tuple[objects.Disk, tuple[str, str]]] = []
        try:
            with config_sync.DeferDistribution():
                for disk in disks:
                    cfg.AddInstanceDisk(instance.uuid, disk)
            instance = cfg.GetInstanceInfo(instance.uuid)
            if disks:
                feedback_fn("* creating instance disks...")
                if self.file_dir:
                    result = self.rpc.call_file_storage_dir_create(pnode.uuid,
                                                                   self.file_dir)
                    result.Raise(f"Failed to create directory '{self.file_dir}' on node"
                                 f" {pnode.name}")
                if self.adopt_disks:
                    self._RenameAdopted(instance, disks)
                else:
                    iu.CreateDisks(self, instance, disks, pnode.uuid, feedback_fn)
                self._ReleaseNodeLocks(locking.LEVEL_NODE)
                self._WaitForMirrors(instance, feedback_fn)
            self._ReleaseNodeLocks(locking.LEVEL_NODE_RES)
            if op.mode == constants.INSTANCE_REMOTE_IMPORT:
                # The disks' data comes from the source cluster
                instance_remote_import.ImportDisks(self, instance, feedback_fn)
            elif op.mode == constants.INSTANCE_IMPORT:
                # The disks' data comes from the export
                from ganeti.cmdlib import instance_import
                instance_import.ImportDisks(self, instance, feedback_fn)
            elif self.adopt_disks:
                feedback_fn("* adopted disks are used as they are: the OS create"
                            " scripts do not run")
            elif not op.no_install:
                self.InstallOs(instance, feedback_fn)
            if op.start:
                feedback_fn("* starting instance...")
                started = True
                iu.StartInstanceOnNode(self, instance)
            self.FinishCreation(instance, feedback_fn)
        except Exception:
            if self.adopt_disks:
                self._UndoAdoption(instance, started)
                raise
            self.LogWarning(f"Creation of instance {op.instance_name} failed; removing"
                            " its disks and configuration")
            try:
                undone = UndoCreation(cfg, self.rpc, instance.uuid, self.LogWarning,
                                      shutdown=started)
            except Exception as err:  # noqa: BLE001 - the first error is the job's
                self.LogWarning(f"Undoing the creation failed: {err}")
                undone = cfg.GetInstanceInfo(instance.uuid) is None
            if not undone:
                # The processor keeps the lock of the instance left behind
                self.keep_added_locks[locking.LEVEL_INSTANCE] = [instance.name]
                self.LogWarning(
                    f"Instance {instance.name} stays in the configuration, marked as"
                    " not created, until the master daemon has removed it and its"
                    f" disks from node {pnode.name}")
                cleanup = getattr(self.context, "instance_cleanup", None)
                if cleanup is not None:
                    cleanup.Wake(instance.name)
            raise
        return cfg.GetNodeNames(cfg.GetInstanceNodes(instance.uuid))

    def InstallOs(self, instance: objects.Instance, feedback_fn: FeedbackFn) -> None:
        """Run the OS create scripts on the primary node, with the secret OS
        parameters (given to the scripts, never stored)."""
        op = self.op
        pnode = self.pnode
        feedback_fn("* running the instance OS create scripts...")
        inst_dict = iu.InstanceRpcDict(self.cfg, instance)
        if op.osparams_secret:
            inst_dict["osparams"] = dict(inst_dict.get("osparams") or {},
                                         **op.osparams_secret)
        result = self.rpc.call_instance_os_add(
            pnode.uuid, inst_dict, False, getattr(op, "debug_level", 0) or 0)
        if result.fail_msg:
            raise errors.OpExecError(
                f"Could not add OS '{op.os_type}' for instance {instance.name}"
                f" on node {pnode.name}: {result.fail_msg}")

    def FinishCreation(self, instance: objects.Instance, feedback_fn: FeedbackFn) -> None:
        """The commit: from here on the instance exists for good (and is
        marked up when it was started)."""
        cfg = self.cfg
        instance = cfg.GetInstanceInfo(instance.uuid)
        instance.forthcoming = False
        if self.op.start:
            instance.admin_state = constants.ADMINST_UP
            instance.disks_active = True
        cfg.Update(instance, feedback_fn)

    def _RenameAdopted(self, instance: objects.Instance, disks: list[objects.Disk]
                       ) -> None:
        """Adopted LVs get the standard names (and the instance's tag), as in
        Ganeti; adopted block devices are used as they are."""
        pnode = instance.primary_node
        for disk, spec in zip(disks, self.disk_specs):
            if disk.dev_type != constants.DT_PLAIN:
                continue
            old_id = (disk.logical_id[0], spec[constants.IDISK_ADOPT])
            current = disk.Copy()
            current.logical_id = old_id
            result = self.rpc.call_blockdev_rename(pnode, [(current.ToDict(),
                                                            list(disk.logical_id))])
            result.Raise(f"Failed to rename the adopted volume {'/'.join(old_id)}")
            self.renamed_adopted.append((disk, old_id))
            result = self.rpc.call_blockdev_setinfo(pnode, disk.ToDict(),
                                                    f"originstname+{instance.name}")
            if result.fail_msg:
                self.LogWarning(f"Could not tag the adopted volume"
                                f" {'/'.join(disk.logical_id)}: {result.fail_msg}")

    def _UndoAdoption(self, instance: objects.Instance, started: bool) -> None:
        """A failed creation with adopted disks gives the volumes their names
        back and removes only the configuration: adopted data is never
        destroyed."""
        self.LogWarning(f"Creation of instance {instance.name} failed; giving the adopted"
                        " disks their names back and removing the configuration")
        pnode = instance.primary_node
        if started:
            self.rpc.call_instance_shutdown(pnode, iu.InstanceRpcDict(self.cfg, instance),
                                            0, [])
        for disk, old_id in reversed(self.renamed_adopted):
            result = self.rpc.call_blockdev_rename(pnode, [(disk.ToDict(), list(old_id))])
            if result.fail_msg:
                self.LogWarning(f"Could not rename volume {'/'.join(disk.logical_id)} back"
                                f" to {'/'.join(old_id)}: {result.fail_msg}")
        if self.cfg.GetInstanceInfo(instance.uuid) is not None:
            self.cfg.RemoveInstance(instance.uuid)

    def _ReleaseNodeLocks(self, level: int) -> None:
        """Once the disks exist, a creation needs its nodes no more (the
        instance's lock protects it): as Ganeti, it lets other jobs have the
        node locks, and the node resource locks once the mirrors are in
        sync. Adoptions and imports keep them."""
        if self.op.mode != constants.INSTANCE_CREATE or self.adopt_disks or \
                self.glm is None:
            return
        owned = sorted(self.owned_locks(level))
        if owned:
            self.glm.release(level, owned)

    def _WaitForMirrors(self, instance: objects.Instance, feedback_fn: FeedbackFn) -> None:
        """Mirrored disks: wait for the sync (``wait_for_sync``) or at least
        check that they are not degraded, as Ganeti does."""
        if self.op.disk_template not in constants.DTS_INT_MIRROR:
            return
        instance = self.cfg.GetInstanceInfo(instance.uuid)
        if self.op.wait_for_sync:
            if not disks_mod.WaitForSync(self, instance, feedback_fn=feedback_fn):
                raise errors.OpExecError("There are some degraded disks for this instance")
        else:
            feedback_fn("* checking mirrors status")
            disks_mod.WaitForSync(self, instance, oneshot=True, feedback_fn=feedback_fn)

    @classmethod
    def Interrupted(cls, cfg: Any, op: Any) -> Interruption | None:
        """A creation is done once its instance is in the configuration and
        not forthcoming (committed); one that is still forthcoming is
        removed by the master (:mod:`ganeti.instance_cleanup`); one that is
        not there left nothing behind (disks are made only after the
        instance entered the configuration)."""
        inst = _FindCreated(cfg, op)
        if inst is not None and (getattr(op, "forthcoming", False) or
                                 getattr(op, "commit", False)):
            answer = forthcoming.Interrupted(cfg, op, inst)
            if answer is not None:
                return answer
        if inst is None:
            return Interruption(False, f"instance {op.instance_name} was not created")
        if inst.forthcoming:
            return Interruption(
                False, f"the creation of instance {inst.name} did not finish; the"
                " master daemon removes the instance and its disks")
        nodes = cfg.GetNodeNames(cfg.GetInstanceNodes(inst.uuid))
        return Interruption(True, f"instance {inst.name} had been created; its post"
                            " hooks did not run", result=nodes)


def _FindCreated(cfg: Any, op: Any) -> objects.Instance | None:
    """The instance ``op`` (an instance creation found running) created.

    The LU normalises the name; with the name check it is the resolved
    name, which the abbreviation the opcode holds expands to (without
    asking DNS again). Only the creating job could have added an instance
    of that name: it held the name's lock from before the instance
    existed.
    """
    name = str(op.instance_name or "").strip().lower()
    inst = cfg.GetInstanceInfoByName(name) if name else None
    if inst is None and name and getattr(op, "name_check", False):
        expanded = cfg.ExpandInstanceName(name)
        inst = cfg.GetInstanceInfoByName(expanded) if expanded else None
    return inst


class _Undoer:
    """What the disk steps of instance_utils need from an LU, for undoing a
    creation outside one (the master's cleanup)."""

    def __init__(self, cfg: Any, rpc: Any, warn_fn: Callable[[str], None]) -> None:
        self.cfg = cfg
        self.rpc = rpc
        self.LogWarning = warn_fn


def UndoCreation(cfg: Any, rpc: Any, instance_uuid: str,
                 warn_fn: Callable[[str], None], shutdown: bool = True) -> bool:
    """Undo an instance creation that did not finish: stop the instance
    (if ``shutdown``), remove its disks and file storage directory from
    its node, then remove it from the configuration.

    Failures are passed to ``warn_fn``; the instance then stays in the
    configuration (to be tried again) and False is returned. A primary
    node flagged offline is not contacted: the instance is removed from
    the configuration and whatever is left there is an orphan that
    ``gnt-cluster verify`` reports once the node is back. The caller
    holds the instance's lock and its node's locks.
    """
    inst = cfg.GetInstanceInfo(instance_uuid)
    if inst is None:
        return True
    pnode = inst.primary_node
    node = cfg.GetNodeInfo(pnode)
    actor: Any = _Undoer(cfg, rpc, warn_fn)
    if node is not None and node.offline:
        warn_fn(f"Node {node.name} is offline: the disks of instance {inst.name}"
                " stay there")
    else:
        if shutdown:
            result = rpc.call_instance_shutdown(pnode, iu.InstanceRpcDict(cfg, inst), 0,
                                                [])
            if result.fail_msg:
                warn_fn(f"Could not stop instance {inst.name} on node"
                        f" {iu.NodeName(cfg, pnode)}: {result.fail_msg}")
                return False
        # The file storage directory goes too (that of the disks)
        if not iu.RemoveDisks(actor, cfg.GetInstanceDisks(inst.uuid), pnode, inst.name,
                              warn_fn=warn_fn):
            return False
    cfg.RemoveInstance(inst.uuid)
    return True
