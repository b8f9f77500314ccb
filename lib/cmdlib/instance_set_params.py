"""Changing an instance: ``LUInstanceSetParams`` (gnt-instance modify).

Hypervisor, backend and OS parameters ("default" resets a key to the
inherited value), the OS name, runtime memory (ballooning a running
instance), disks and NICs (add, remove, modify) and the offline state.

Every check runs in CheckPrereq on copies: the NIC and disk modifications
are applied one after the other to copies of the instance's lists, so
indices refer to the list as changed by the modifications before them, as
in Ganeti. Exec then balloons the memory, creates the new disks on the
node, and changes the configuration; a failure there removes the disks it
created (node and configuration) again. Removed disks go from the
configuration first and from the node afterwards, where a failure is only
a warning (as in Ganeti: the data is no longer referenced).

Disk template conversion (``-t TEMPLATE``) of a stopped instance is the
tasklet of :mod:`ganeti.cmdlib.instance_convert`;
it runs before the other changes of the same modification.

A NIC put on a network (``network=NAME``) takes its mode, link and VLAN
from the network's connection to the primary node's group, and its address
from the network (``ip=pool`` or a free address of it); addresses are
reserved in CheckPrereq for the job, committed by the configuration update
and dropped if the job fails (:mod:`ganeti.cmdlib.instance_nics`). A NIC
leaving a network, or changing its address, gives the old one back; so
does a removed NIC.

``instance_communication`` adds or removes the instance communication NIC
as a NIC modification (:mod:`ganeti.cmdlib.instance_communication`); a new
primary node (``pnode``) is :mod:`ganeti.cmdlib.instance_new_primary`'s.

Attaching an existing (detached) disk and detaching one, which keeps it in
the configuration, are :mod:`ganeti.cmdlib.instance_disk_attach`'s steps.
"""

from __future__ import annotations

import os
from typing import Any

from ganeti import constants, errors, hooksmaster, locking, objects
from ganeti.cmdlib import instance_communication as comm
from ganeti.cmdlib import instance_convert as convert
from ganeti.cmdlib import instance_disk_attach as attach
from ganeti.cmdlib import instance_new_primary as new_primary
from ganeti.cmdlib import instance_utils as iu
from ganeti.cmdlib.base import FeedbackFn
from ganeti.cmdlib import instance_hotplug as hotplug
from ganeti.cmdlib import instance_nics as nics_mod
from ganeti.cmdlib.cluster import CheckBeParams, CheckHvParams, CheckNicParams, MergeParams
from ganeti.cmdlib.node import ExpandNode

#: NIC parameters (of objects.NIC.nicparams) a modification may set
_NIC_PARAMS = (constants.INIC_MODE, constants.INIC_LINK, constants.INIC_VLAN)
_DISK_MODIFIABLE = frozenset([constants.IDISK_MODE, constants.IDISK_NAME])


def _Inval(msg: str) -> errors.OpPrereqError:
    return errors.OpPrereqError(msg, errors.ECODE_INVAL)


def _Merge(current: dict[str, Any] | None, changes: dict[str, Any] | None
           ) -> dict[str, Any]:
    return MergeParams(current, changes or {})


def UpgradeMods(mods: list[Any], kind: str) -> list[tuple[str, Any, dict[str, Any]]]:
    """The modifications as ``(action, identifier, params)``; the legacy
    ``(action_or_index, params)`` form becomes add/remove at the end
    (identifier -1) or modify of the index."""
    result = []
    for mod in mods or []:
        if len(mod) == 2:
            first, params = mod
            if first in (constants.DDM_ADD, constants.DDM_REMOVE):
                result.append((first, -1, dict(params or {})))
            else:
                result.append((constants.DDM_MODIFY, first, dict(params or {})))
        else:
            action, ident, params = mod
            result.append((action, ident, dict(params or {})))
    for action, _ident, params in result:
        if action in (constants.DDM_ATTACH, constants.DDM_DETACH) and kind != "disk":
            raise _Inval(f"Attaching or detaching {kind}s is not supported (only"
                         " disks can be attached and detached)")
        if action not in (constants.DDM_ADD, constants.DDM_REMOVE, constants.DDM_MODIFY,
                          constants.DDM_ATTACH, constants.DDM_DETACH):
            raise _Inval(f"Invalid {kind} modification '{action}'")
        if action in (constants.DDM_REMOVE, constants.DDM_DETACH) and params:
            raise _Inval(f"No parameters allowed when {action.rstrip('e')}ing a {kind}, got"
                         f" {', '.join(sorted(params))}")
    return result


def _FindItem(items: list[Any], ident: Any, kind: str) -> int:
    """The position of the item named by an index (-1: the last), a name or a
    UUID; OpPrereqError naming ``ident`` if there is none."""
    if isinstance(ident, str) and ident.lstrip("-").isdigit():
        ident = int(ident)
    if isinstance(ident, int):
        idx = len(items) - 1 if ident == -1 else ident
        if not 0 <= idx < len(items):
            raise _Inval(f"Invalid {kind} index {ident} (the instance has"
                         f" {len(items)} {kind}s at this point)")
        return idx
    for idx, item in enumerate(items):
        if ident in (item.name, item.uuid):
            return idx
    raise _Inval(f"Cannot find {kind} '{ident}'")


def _AddPosition(items: list[Any], ident: Any, kind: str) -> int:
    if isinstance(ident, str) and ident.lstrip("-").isdigit():
        ident = int(ident)
    if not isinstance(ident, int):
        raise _Inval(f"Invalid {kind} index '{ident}' for an addition: must be a number")
    if ident == -1:
        return len(items)
    if not 0 <= ident <= len(items):
        raise _Inval(f"Invalid {kind} index {ident} for an addition (the instance has"
                     f" {len(items)} {kind}s at this point)")
    return ident


def _CheckDiskParams(params: dict[str, Any], adding: bool) -> dict[str, Any]:
    """Check the parameters of an added or modified disk; sizes in MiB."""
    allowed = constants.IDISK_PARAMS if adding else _DISK_MODIFIABLE
    if not adding and constants.IDISK_SIZE in params:
        raise _Inval("Disk size change not possible, use grow-disk")
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise _Inval(f"Unknown or unmodifiable disk parameter(s): {', '.join(unknown)}")
    new = dict(params)
    if adding:
        if constants.IDISK_ADOPT in new or constants.IDISK_SPINDLES in new:
            raise _Inval("Adopting disks and spindles are not supported for the disk"
                         " templates available here")
        if constants.IDISK_SIZE not in new:
            raise _Inval("Required disk parameter 'size' missing")
        new[constants.IDISK_SIZE] = iu.ParseDiskSize(new[constants.IDISK_SIZE])
        new.setdefault(constants.IDISK_MODE, constants.DISK_RDWR)
    mode = new.get(constants.IDISK_MODE)
    if mode is not None:
        iu.CheckDiskMode(mode)
    name = new.get(constants.IDISK_NAME)
    if isinstance(name, str) and name.lower() == constants.VALUE_NONE:
        new[constants.IDISK_NAME] = None
    return new


def _DiskModParams(action: str, params: dict[str, Any]) -> dict[str, Any]:
    if action in (constants.DDM_REMOVE, constants.DDM_DETACH):
        return params
    if action == constants.DDM_ATTACH:
        return attach.CheckAttachParams(params)
    return _CheckDiskParams(params, action == constants.DDM_ADD)


def _CheckNicParams(params: dict[str, Any], adding: bool) -> dict[str, Any]:
    """Check the parameters of an added or modified NIC (MAC and IP syntax,
    mode and link); an invalid MAC or IP is named."""
    unknown = sorted(set(params) - set(constants.INIC_PARAMS))
    if unknown:
        raise _Inval(f"Unknown NIC parameter(s): {', '.join(unknown)}")
    nics_mod.CheckNoParamsWithNetwork(params, "NIC")
    new = dict(params)
    if constants.INIC_NETWORK in new and nics_mod.IsNoneValue(new[constants.INIC_NETWORK]):
        new[constants.INIC_NETWORK] = None
    mac = new.get(constants.INIC_MAC)
    if adding and not mac:
        mac = constants.VALUE_AUTO
    if mac is not None:
        if not adding and mac == constants.VALUE_AUTO:
            raise _Inval("'auto' is not a valid MAC address when modifying a NIC;"
                         " use 'generate' for a new one")
        new[constants.INIC_MAC] = iu.NormalizeNicMac(mac)
    if constants.INIC_IP in new:
        ip = new[constants.INIC_IP]
        if ip is None or str(ip).lower() == constants.VALUE_NONE or ip == "":
            new[constants.INIC_IP] = None
        elif ip == constants.VALUE_AUTO:
            raise _Inval(f"IP '{ip}' is not supported by modify; give the address")
        elif ip == constants.NIC_IP_POOL:
            pass  # needs a network: checked against the NIC's in CheckPrereq
        else:
            new[constants.INIC_IP] = iu.NormalizeNicIp(ip)
    nicparams = {key: new[key] for key in _NIC_PARAMS
                 if new.get(key) not in (None, "", constants.VALUE_DEFAULT)}
    CheckNicParams(nicparams)
    name = new.get(constants.INIC_NAME)
    if isinstance(name, str) and name.lower() == constants.VALUE_NONE:
        new[constants.INIC_NAME] = None
    return new


class LUInstanceSetParams(iu.InstanceLU):
    """Modify an instance's parameters, disks, NICs and offline state."""

    HPATH = "instance-modify"
    LOCK_NODE_RES = True

    # --- arguments --------------------------------------------------------------------

    def CheckArguments(self) -> None:
        """The opcode alone: something to change, well-formed modifications."""
        op = self.op
        convert.CheckArguments(op)
        if not (op.nics or op.disks or op.disk_template or op.beparams or op.hvparams
                or op.offline is not None or op.runtime_mem or op.pnode
                or op.pnode_uuid or op.os_name or op.osparams or op.osparams_private
                or op.instance_communication is not None):
            raise _Inval("No changes submitted")
        if op.pnode or op.pnode_uuid:
            new_primary.CheckArguments(self)
        global_hvp = sorted(set(op.hvparams or {}) & constants.HVC_GLOBALS)
        if global_hvp:
            raise _Inval(f"Hypervisor parameter(s) {', '.join(global_hvp)} are global:"
                         " they cannot be set per instance; change them at cluster"
                         " level (gnt-cluster modify -H)")
        if op.offline is not None and (op.nics or op.disks or op.beparams or
                                       op.hvparams or op.runtime_mem or op.os_name or
                                       op.osparams or op.osparams_private or
                                       op.disk_template):
            raise _Inval("Cannot change the offline state together with other"
                         " parameters")
        if op.disk_template:
            if op.disks:
                raise _Inval("Disk template conversion and other disk changes not"
                             " supported at the same time")
            if op.disk_template in constants.DTS_INT_MIRROR:
                if not (op.remote_node or op.remote_node_uuid):
                    raise _Inval("Changing the disk template to a mirrored one requires"
                                 " specifying a secondary node")
            elif op.remote_node or op.remote_node_uuid:
                self.LogWarning("Changing the disk template to a non-mirrored one, the"
                                " secondary node will be ignored")
                op.remote_node = op.remote_node_uuid = None
        elif op.remote_node or op.remote_node_uuid:
            raise _Inval("A secondary node is only used when changing the disk template"
                         f" to a mirrored one ({', '.join(sorted(constants.DTS_INT_MIRROR))})")
        self.disk_mods = [(action, ident, _DiskModParams(action, params))
                          for action, ident, params in UpgradeMods(op.disks, "disk")]
        self.nic_mods = [(action, ident, params if action == constants.DDM_REMOVE
                          else _CheckNicParams(params, action == constants.DDM_ADD))
                         for action, ident, params in UpgradeMods(op.nics, "NIC")]
        be_set = {key: value for key, value in (op.beparams or {}).items()
                  if value != constants.VALUE_DEFAULT}
        be_reset = [key for key, value in (op.beparams or {}).items()
                    if value == constants.VALUE_DEFAULT]
        unknown = sorted(set(be_reset) - set(constants.BES_PARAMETER_TYPES)
                         - {constants.BE_MEMORY})
        if unknown:
            raise _Inval(f"Unknown backend parameter(s): {', '.join(unknown)}")
        if constants.BE_MEMORY in be_reset:
            be_reset = [key for key in be_reset if key != constants.BE_MEMORY] + \
                [constants.BE_MAXMEM, constants.BE_MINMEM]
        self.be_changes = CheckBeParams(be_set)
        self.be_changes.update(dict.fromkeys(be_reset, constants.VALUE_DEFAULT))

    def ExpandNames(self) -> None:
        """The instance; the new secondary node of a conversion to drbd."""
        super().ExpandNames()
        op = self.op
        if op.remote_node or op.remote_node_uuid:
            name = op.remote_node or iu.NodeName(self.cfg, op.remote_node_uuid)
            node = ExpandNode(self.cfg, name)
            op.remote_node, op.remote_node_uuid = node.name, node.uuid
        if op.pnode or op.pnode_uuid:
            new_primary.ExpandNames(self)
        if op.instance_communication is not None:
            # Read unlocked; applied under the locks like any NIC change
            mod = comm.NicModification(
                self.cfg, self.cfg.GetInstanceInfo(op.instance_uuid),
                op.instance_communication)
            if mod is not None:
                action, ident, params = mod
                if action == constants.DDM_ADD:
                    params = _CheckNicParams(params, True)
                self.nic_mods.append((action, ident, params))

    def DeclareLocks(self, level: int) -> None:
        """The instance's nodes, plus the new secondary node; with NIC
        changes, the networks of its NICs and those named (shared) and its
        primary node's group (shared), whose connections give the NICs'
        parameters."""
        super().DeclareLocks(level)
        if self.op.pnode_uuid:
            new_primary.DeclareLocks(self, level)
        if level == locking.LEVEL_NODEGROUP and self.nic_mods and \
                self.needed_locks is not None:
            inst = self.cfg.GetInstanceInfo(self.op.instance_uuid)
            named = (params.get(constants.INIC_NETWORK)
                     for _, _, params in self.nic_mods if params)
            nets = nics_mod.NamedNetworks(self.cfg, named)
            nets += [nic.network for nic in (inst.nics if inst else [])
                     if nic.network]
            nics_mod.DeclareNetworkLocks(
                self, nets, sorted(self.cfg.GetInstanceNodeGroups(
                    self.op.instance_uuid, primary_only=True)) if inst else [])
        uuid = self.op.remote_node_uuid
        if uuid and level in (locking.LEVEL_NODE, locking.LEVEL_NODE_RES) and \
                self.needed_locks is not None and level in self.needed_locks and \
                uuid not in self.needed_locks[level]:
            self.needed_locks[level].append(uuid)

    # --- prerequisites ---------------------------------------------------------------

    def CheckPrereq(self) -> None:  # noqa: C901 - one check after the other
        """Apply every change to copies and check the result."""
        super().CheckPrereq()
        cfg, op, inst = self.cfg, self.op, self.instance
        if op.pnode_uuid:
            new_primary.CheckPrereq(self)
            return
        cluster = cfg.GetClusterInfo()
        pnode_uuid = inst.primary_node
        pnode_name = iu.NodeName(cfg, pnode_uuid)
        self.disks = cfg.GetInstanceDisks(inst.uuid)
        self.disk_template = self.disks[0].dev_type if self.disks \
            else constants.DT_DISKLESS
        self.new_template = op.disk_template or self.disk_template
        self.converter: convert.TLConvertDiskTemplate | None = None
        if op.disk_template:
            self.converter = convert.TLConvertDiskTemplate(
                self, inst.uuid, op.disk_template, op.remote_node_uuid, op.wait_for_sync,
                op.file_storage_dir, op.file_driver, op.ext_params, op.ignore_ipolicy)
            self.converter.CheckPrereq()
        if inst.admin_state == constants.ADMINST_OFFLINE and op.offline is None:
            raise errors.OpPrereqError(
                f"Instance {inst.name} is offline; mark it online first"
                " (gnt-instance modify --online)", errors.ECODE_STATE)

        needs_node = bool(op.runtime_mem or op.hvparams or op.os_name or op.osparams
                          or op.osparams_private or self.disk_mods or self.nic_mods
                          or self.be_changes)
        if needs_node:
            iu.CheckNodeOnline(cfg, pnode_uuid, "Cannot modify an instance whose primary"
                               " node is offline")
        self.running = False
        self.current_mem = 0
        if needs_node:
            info = self.rpc.call_instance_info([pnode_uuid], inst.name, inst.hypervisor,
                                               cluster.FillHV(inst))[pnode_uuid]
            info.Raise(f"Error checking node {pnode_name}", prereq=True,
                       ecode=errors.ECODE_ENVIRON)
            self.running = bool(info.payload)
            if self.running:
                self.current_mem = int(info.payload.get("memory") or 0)

        # Offline state
        if op.offline is True:
            if inst.admin_state == constants.ADMINST_UP:
                raise errors.OpPrereqError(
                    f"Instance {inst.name} is marked to be up, cannot mark it offline;"
                    " shut it down first", errors.ECODE_STATE)
            if inst.admin_state == constants.ADMINST_OFFLINE:
                raise errors.OpPrereqError(f"Instance {inst.name} is already offline",
                                           errors.ECODE_STATE)
        elif op.offline is False and inst.admin_state != constants.ADMINST_OFFLINE:
            raise errors.OpPrereqError(
                f"Instance {inst.name} is not offline (its state is"
                f" {inst.admin_state}), cannot mark it online", errors.ECODE_STATE)

        # OS
        self.os_name = inst.os
        if op.os_name and op.os_name != inst.os:
            if not op.force:
                result = self.rpc.call_os_validate(
                    [pnode_uuid], True, op.os_name, [], {}, op.force_variant)[pnode_uuid]
                result.Raise(f"OS '{op.os_name}' not usable on node {pnode_name} (use"
                             " --force to record it anyway)", prereq=True,
                             ecode=errors.ECODE_INVAL)
            self.os_name = op.os_name
        self.osparams = _Merge(inst.osparams, op.osparams)
        self.osparams_private = _Merge(inst.osparams_private,
                                               op.osparams_private)
        if op.osparams or op.osparams_private:
            filled = cluster.SimpleFillOS(self.os_name, self.osparams,
                                          self.osparams_private)
            result = self.rpc.call_os_validate(
                [pnode_uuid], True, self.os_name, [constants.OS_VALIDATE_PARAMETERS],
                filled, op.force_variant)[pnode_uuid]
            result.Raise(f"OS parameters not valid for OS '{self.os_name}' on node"
                         f" {pnode_name}", prereq=True, ecode=errors.ECODE_INVAL)

        # Hypervisor parameters, checked filled (by the hypervisor's rules, then
        # on the node)
        self.hvparams = dict(inst.hvparams or {})
        if op.hvparams:
            merged = _Merge(inst.hvparams, op.hvparams)
            filled = CheckHvParams(inst.hypervisor, cluster.SimpleFillHV(
                inst.hypervisor, self.os_name, merged))
            result = self.rpc.call_hypervisor_validate_params(
                [pnode_uuid], inst.hypervisor, filled)[pnode_uuid]
            result.Raise(f"Hypervisor parameters not valid on node {pnode_name}",
                         prereq=True, ecode=errors.ECODE_INVAL)
            self.hvparams = {key: filled[key] for key in merged if key in filled}

        # Backend parameters
        self.beparams = _Merge(inst.beparams, self.be_changes)
        old_bep = cluster.FillBE(inst)
        self.filled_bep = cluster.SimpleFillBE(self.beparams)
        maxmem = int(self.filled_bep[constants.BE_MAXMEM])
        minmem = int(self.filled_bep[constants.BE_MINMEM])
        if minmem > maxmem:
            raise _Inval(f"Minimum memory ({minmem} MiB) is greater than maximum memory"
                         f" ({maxmem} MiB)")
        if self.running and maxmem > int(old_bep[constants.BE_MAXMEM]) and not op.force:
            info = iu.NodeHvInfo(self, pnode_uuid, inst.hypervisor,
                                 cluster.FillHV(inst))
            free = int(info.get("memory_free") or 0)
            missing = maxmem - self.current_mem - free
            if missing > 0:
                raise errors.OpPrereqError(
                    f"This change will prevent the instance from starting, due to"
                    f" {missing} MiB of memory missing on its primary node"
                    f" {pnode_name} (maximum memory {maxmem} MiB, in use"
                    f" {self.current_mem} MiB, free {free} MiB)", errors.ECODE_NORES)

        # Runtime memory
        if op.runtime_mem:
            if not self.running:
                raise errors.OpPrereqError(
                    f"Instance {inst.name} must be running to change its runtime"
                    " memory", errors.ECODE_STATE)
            if not op.force and not minmem <= op.runtime_mem <= maxmem:
                raise errors.OpPrereqError(
                    f"Instance {inst.name} must have memory between {minmem} and"
                    f" {maxmem} MiB unless --force is given",
                    errors.ECODE_INVAL)
            delta = op.runtime_mem - self.current_mem
            if delta > 0:
                iu.CheckNodeFreeMemory(
                    self, pnode_uuid, f"ballooning memory for instance {inst.name}",
                    delta, inst.hypervisor, cluster.FillHV(inst))

        self.hotplug = hotplug.HotplugWanted(
            self, inst, self.running, bool(self.disk_mods or self.nic_mods),
            op.hotplug, op.hotplug_if_possible)
        self._PrepareNics(cluster, pnode_uuid)
        self._PrepareDisks(cluster, pnode_uuid)

        # Instance policy, when the specification or the disk template changes
        if self.be_changes or self.nic_mods or self.disk_mods or self.converter:
            self._CheckIPolicy(cfg, inst, minmem, maxmem)

    def _PrepareNics(self, cluster: Any, pnode_uuid: str) -> None:
        """Apply the NIC modifications to a copy; check MACs, names, bridges."""
        inst = self.instance
        nics = [nic.Copy() for nic in inst.nics]
        used_macs = {nic.mac for other in self.cfg.GetAllInstancesInfo().values()
                     if other.uuid != inst.uuid for nic in other.nics}
        self.nic_changes: list[tuple[str, Any]] = []
        #: (index in the instance's NICs, NIC) of the NICs going away
        self.removed_nics: list[tuple[int, objects.NIC]] = []
        changed: list[objects.NIC] = []
        group = nics_mod.GroupOfNode(self.cfg, pnode_uuid)
        nics_mod.CheckNetworkLocks(
            self, [params.get(constants.INIC_NETWORK)
                   for _, _, params in self.nic_mods if params], group.uuid)
        ec_id = self.proc.GetECId() if self.proc is not None else "instance-modify"
        for action, ident, params in self.nic_mods:
            if action == constants.DDM_REMOVE:
                idx = _FindItem(nics, ident, "NIC")
                gone = nics[idx]
                # Back to its network when the job commits (a NIC added by
                # this job just gives up its reservation)
                nics_mod.ReleaseIp(self.cfg, gone.network, gone.ip, ec_id)
                if gone.uuid and any(gone.uuid == old.uuid for old in inst.nics):
                    self.removed_nics.append(
                        ([old.uuid for old in inst.nics].index(gone.uuid), gone))
                del nics[idx]
                self.nic_changes.append((f"nic.{idx}", "remove"))
                continue
            if action == constants.DDM_ADD:
                idx = _AddPosition(nics, ident, "NIC")
                nic = objects.NIC(mac=params[constants.INIC_MAC],
                                  ip=params.get(constants.INIC_IP), network=None,
                                  nicparams={}, name=params.get(constants.INIC_NAME))
                nics.insert(idx, nic)
                old_net: str | None = None
                old_ip: str | None = None
            else:
                idx = _FindItem(nics, ident, "NIC")
                nic = nics[idx]
                old_net, old_ip = nic.network, nic.ip
                if constants.INIC_MAC in params:
                    nic.mac = params[constants.INIC_MAC]
                if constants.INIC_IP in params:
                    nic.ip = params[constants.INIC_IP]
                if constants.INIC_NAME in params:
                    nic.name = params[constants.INIC_NAME]
            nicparams = dict(nic.nicparams or {})
            for key in _NIC_PARAMS:
                if key in params:
                    if params[key] in (None, "", constants.VALUE_DEFAULT):
                        nicparams.pop(key, None)
                    else:
                        nicparams[key] = params[key]
            nic.nicparams = nicparams
            self._NicNetwork(nic, params, old_net, old_ip, idx, group, ec_id)
            if constants.INIC_IP in params:
                params = dict(params, **{constants.INIC_IP: nic.ip})
            filled = cluster.SimpleFillNIC(nic.nicparams)
            if filled.get(constants.NIC_MODE) == constants.NIC_MODE_ROUTED and not nic.ip:
                raise _Inval(f"NIC {idx}: routed mode needs an IP address")
            if nic.mac not in (constants.VALUE_AUTO, constants.VALUE_GENERATE):
                if nic.mac in used_macs or \
                        any(other.mac == nic.mac for other in nics if other is not nic):
                    raise errors.OpPrereqError(
                        f"MAC address {nic.mac} of NIC {idx} is already in use in the"
                        " cluster", errors.ECODE_NOTUNIQUE)
            changed.append(nic)
            if action == constants.DDM_ADD:
                self.nic_changes.append((f"nic.{idx}", nic))
            else:
                for key, value in sorted(params.items()):
                    # a generated MAC is only known in Exec
                    self.nic_changes.append(
                        (f"nic.{key}/{idx}", (nic,) if key == constants.INIC_MAC
                         and value == constants.VALUE_GENERATE else value))
        names = [nic.name for nic in nics if nic.name]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise _Inval(f"Duplicate NIC name(s): {', '.join(duplicates)}")
        if len(nics) > constants.MAX_NICS:
            raise _Inval(f"Instance has too many network interfaces ({len(nics)}), the"
                         f" maximum is {constants.MAX_NICS}")
        iu.CheckNicsBridgesExist(self, changed, pnode_uuid)
        self.new_nics = nics
        self.changed_nics = changed

    def _NicNetwork(self, nic: objects.NIC, params: dict[str, Any],
                    old_net: str | None, old_ip: str | None, idx: int,
                    group: objects.NodeGroup, ec_id: Any) -> None:
        """The network and address of an added or modified NIC: a NIC
        joining a network takes the connection's parameters; a changed
        address (or network) gives the old one back and reserves the new
        one (``pool``: a free one) for the job."""
        cfg = self.cfg
        new_net = old_net
        if constants.INIC_NETWORK in params:
            name = params[constants.INIC_NETWORK]
            new_net = cfg.LookupNetwork(name) if name else None
        if nic.ip == constants.NIC_IP_POOL and not new_net:
            raise _Inval(f"NIC {idx}: IP 'pool' is only valid with a network")
        if new_net and new_net != old_net:
            nic.nicparams = nics_mod.ConnectionParams(cfg, new_net, group)
        elif new_net and any(key in params for key in _NIC_PARAMS):
            raise _Inval(
                f"NIC {idx} is on network {nics_mod.NetworkName(cfg, new_net)}: its"
                f" mode, link and VLAN come from the network's connection to node"
                f" group {group.name} and cannot be set")
        nic.network = new_net
        if (new_net, nic.ip) == (old_net, old_ip):
            return
        nics_mod.ReleaseIp(cfg, old_net, old_ip, ec_id)
        if new_net:
            nic.ip = nics_mod.ReserveIp(cfg, new_net, nic.ip, ec_id, f"NIC {idx}",
                                        check=self.op.conflicts_check)
        elif self.op.conflicts_check:
            nics_mod.CheckIpOutsideNetworks(cfg, nic.ip, group, f"NIC {idx}")

    def _PrepareDisks(self, cluster: Any, pnode_uuid: str) -> None:
        """Apply the disk modifications to a copy; check state and space."""
        inst, op = self.instance, self.op
        if not self.disk_mods:
            self.new_disks = list(self.disks)
            self.added_disks: list[tuple[int, objects.Disk]] = []
            self.removed_disks: list[objects.Disk] = []
            self.modified_disks: list[objects.Disk] = []
            self.attached_disks: list[tuple[int, objects.Disk]] = []
            self.detached_disks: list[objects.Disk] = []
            self.disk_changes: list[tuple[str, Any]] = []
            return
        # Attaching and detaching only change which disks the instance uses
        if any(action not in (constants.DDM_ATTACH, constants.DDM_DETACH)
               for action, _, _ in self.disk_mods):
            if self.disk_template == constants.DT_DISKLESS:
                raise _Inval("Disk operations not supported for diskless instances")
            if self.disk_template not in constants.DTS_FILEBASED:
                raise _Inval(f"Disk operations on {self.disk_template} instances are"
                             " not supported yet")
            file_dir = os.path.dirname(self.disks[0].logical_id[1])
            driver = self.disks[0].logical_id[0]
        disks = [disk.Copy() for disk in self.disks]
        added: list[objects.Disk] = []
        removed: list[objects.Disk] = []
        modified: list[objects.Disk] = []
        attached: list[objects.Disk] = []
        detached: list[objects.Disk] = []
        changes: list[tuple[str, Any]] = []
        used_paths = {disk.logical_id[1] for disk in self.disks
                      if disk.dev_type in constants.DTS_FILEBASED}
        for action, ident, params in self.disk_mods:
            if action in (constants.DDM_REMOVE, constants.DDM_DETACH):
                idx = _FindItem(disks, ident, "disk")
                if any(disks[idx] is other for other in attached):
                    raise _Inval(f"Cannot {action} disk {idx}: it is attached by the"
                                 " same modification")
            if action == constants.DDM_DETACH:
                attach.CheckNoRunningChange(self, inst, "detach")
                disk = disks.pop(idx)
                if any(disk is new for new in added):
                    raise _Inval(f"Cannot detach disk {idx}: it is added by the same"
                                 " modification")
                modified = [old for old in modified if old is not disk]
                detached.append(disk)
                changes.append((f"disk/{idx}", "detach"))
            elif action == constants.DDM_ATTACH:
                attach.CheckNoRunningChange(self, inst, "attach")
                idx = _AddPosition(disks, ident, "disk")
                disk = attach.FindDetachedDisk(self.cfg, params)
                if any(disk.uuid == other.uuid for other in disks):
                    raise _Inval(f"Disk '{disk.name or disk.uuid}' is attached twice"
                                 " by the same modification")
                attach.CheckAttachable(self.cfg, inst, disk, disks[0].dev_type
                                       if disks else self.disk_template)
                disks.insert(idx, disk)
                attached.append(disk)
                changes.append((f"disk/{idx}",
                                f"attach:size={disk.size},mode={disk.mode}"))
            elif action == constants.DDM_REMOVE:
                if (self.running or inst.admin_state == constants.ADMINST_UP) \
                        and not self.hotplug:
                    raise errors.OpPrereqError(
                        f"Instance {inst.name} is running, cannot remove disks"
                        " (without hotplug)", errors.ECODE_STATE)
                disk = disks.pop(idx)
                if any(disk is new for new in added):
                    added = [new for new in added if new is not disk]
                else:
                    modified = [old for old in modified if old is not disk]
                    removed.append(disk)
                changes.append((f"disk/{idx}", "remove"))
            elif action == constants.DDM_ADD:
                idx = _AddPosition(disks, ident, "disk")
                number = idx
                while os.path.join(file_dir, f"disk{number}") in used_paths:
                    number += 1
                path = os.path.join(file_dir, f"disk{number}")
                used_paths.add(path)
                disk = objects.Disk(
                    dev_type=self.disk_template, size=params[constants.IDISK_SIZE],
                    mode=params[constants.IDISK_MODE], logical_id=(driver, path),
                    iv_name=f"disk/{idx}", name=params.get(constants.IDISK_NAME),
                    params={}, children=[], nodes=[pnode_uuid])
                disk.uuid = self.cfg.GenerateUniqueID(self.proc.GetECId()
                                                      if self.proc else "modify")
                disks.insert(idx, disk)
                added.append(disk)
                changes.append((f"disk/{idx}", f"add:size={disk.size},mode={disk.mode}"))
            else:
                idx = _FindItem(disks, ident, "disk")
                disk = disks[idx]
                for key in (constants.IDISK_MODE, constants.IDISK_NAME):
                    if key in params:
                        setattr(disk, key, params[key])
                        changes.append((f"disk.{key}/{idx}", params[key]))
                if not any(disk is other for other in added + modified):
                    modified.append(disk)
        if not disks:
            verb = "detach" if detached else "remove"
            raise _Inval(f"Cannot {verb} every disk of instance {inst.name}"
                         f" (a {self.disk_template} instance needs at least one);"
                         " remove the instance instead")
        if len(disks) > constants.MAX_DISKS:
            raise _Inval(f"Instance has too many disks ({len(disks)}), the maximum is"
                         f" {constants.MAX_DISKS}")
        names = [disk.name for disk in disks if disk.name]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise _Inval(f"Duplicate disk name(s): {', '.join(duplicates)}")
        if added:
            node = self.cfg.GetNodeInfo(pnode_uuid)
            if node.drained and not op.force:
                raise errors.OpPrereqError(f"Cannot add disks on drained node {node.name}",
                                           errors.ECODE_STATE)
            iu.CheckNodeFreeStorage(self, node, self.disk_template,
                                    sum(disk.size for disk in added))
        self.new_disks = disks
        self.added_disks = [(idx, disk) for idx, disk in enumerate(disks)
                            if any(disk is new for new in added)]
        self.removed_disks = removed
        self.modified_disks = modified
        self.attached_disks = [(idx, disk) for idx, disk in enumerate(disks)
                               if any(disk is new for new in attached)]
        self.detached_disks = detached
        self.disk_changes = changes

    def _CheckIPolicy(self, cfg: Any, inst: objects.Instance, minmem: int,
                      maxmem: int) -> None:
        group = cfg.GetNodeGroup(cfg.GetNodeInfo(inst.primary_node).group)
        ipolicy = cfg.GetGroupIPolicy(group)
        sizes = [disk.size for disk in self.new_disks]
        vcpus = int(self.filled_bep[constants.BE_VCPUS])
        spindles = int(self.filled_bep.get(constants.BE_SPINDLE_USE) or 1)
        violations: list[str] = []
        for mem in sorted({maxmem, minmem}, reverse=True):
            for msg in iu.ComputeIPolicySpecViolation(
                    ipolicy, mem, vcpus, len(sizes), len(self.new_nics), sizes, spindles,
                    self.new_template):
                if msg not in violations:
                    violations.append(msg)
        if not violations:
            return
        if self.op.ignore_ipolicy:
            self.LogWarning(f"Instance {inst.name} would not meet the instance policy"
                            f" (ignored): {'; '.join(violations)}")
            return
        raise _Inval(f"Instance {inst.name} would not meet the instance policy after the"
                     " modification:\n  - " + "\n  - ".join(violations)
                     + "\n(use --ignore-ipolicy to modify it nonetheless)")

    # --- hooks ---------------------------------------------------------------------------

    def BuildHooksEnv(self) -> dict[str, Any]:
        """The instance variables with the new values (Ganeti's override of
        memory, vCPUs and NICs), plus RUNTIME_MEMORY and NEW_DISK_TEMPLATE
        if given."""
        proposed = self.instance.Copy()
        proposed.beparams = self.beparams
        proposed.hvparams = self.hvparams
        proposed.nics = [nic.Copy() for nic in self.new_nics]
        proposed.os = self.os_name
        env = hooksmaster.BuildInstanceHookEnv(self.cfg, proposed)
        if self.op.runtime_mem:
            env["RUNTIME_MEMORY"] = self.op.runtime_mem
        if self.op.disk_template:
            env["NEW_DISK_TEMPLATE"] = self.op.disk_template
        return env

    def BuildHooksNodes(self) -> tuple[list[str], list[str]]:
        """The master and the instance's nodes."""
        nodes = [self.cfg.GetMasterNode(),
                 *self.cfg.GetInstanceNodes(self.instance.uuid)]
        return nodes, nodes

    # --- execution ----------------------------------------------------------------------

    def Exec(self, feedback_fn: FeedbackFn) -> list[tuple[str, Any]]:
        """Balloon, convert the disk template, create disks, change the
        configuration, remove disks."""
        cfg, op, inst = self.cfg, self.op, self.instance
        if op.pnode_uuid:
            return new_primary.Exec(self, feedback_fn)
        result: list[tuple[str, Any]] = []
        if op.offline is not None:
            if op.offline:
                cfg.MarkInstanceOffline(inst.uuid)
                result.append(("admin_state", constants.ADMINST_OFFLINE))
            else:
                cfg.MarkInstanceDown(inst.uuid)
                result.append(("admin_state", constants.ADMINST_DOWN))
            return result

        if op.runtime_mem:
            rpc_result = self.rpc.call_instance_balloon_memory(
                inst.primary_node, iu.InstanceRpcDict(cfg, inst), op.runtime_mem)
            rpc_result.Raise(f"Cannot modify the runtime memory of instance {inst.name}")
            result.append(("runtime_memory", op.runtime_mem))

        ec_id = self.proc.GetECId() if self.proc is not None else "instance-modify"
        try:
            if self.converter is not None:
                self.converter.Exec(feedback_fn)
                result.append(("disk_template", self.op.disk_template))
            self._ExecConfig(feedback_fn, ec_id, result)
        finally:
            cfg.DropECReservations(ec_id)
        return result

    def _HotRemove(self) -> None:
        """Unplug the disks and NICs going away; a disk still plugged in
        after a failure stops the modification (its file is in use)."""
        inst = self.instance
        for disk in self.removed_disks + self.detached_disks:
            idx = [old.uuid for old in self.disks].index(disk.uuid)
            if not hotplug.HotplugDevice(self, inst, constants.HOTPLUG_ACTION_REMOVE,
                                         constants.HOTPLUG_TARGET_DISK, disk, None, idx):
                raise errors.OpExecError(
                    f"Cannot remove disk {idx} of running instance {inst.name}: the"
                    " hypervisor did not release it")
        for idx, nic in self.removed_nics:
            hotplug.HotplugDevice(self, inst, constants.HOTPLUG_ACTION_REMOVE,
                                  constants.HOTPLUG_TARGET_NIC, nic, None, idx)

    def _HotAdd(self) -> None:
        """Plug in the disks and NICs added (once in the configuration)."""
        inst = self.cfg.GetInstanceInfo(self.instance.uuid)
        for idx, disk in self.added_disks:
            hotplug.HotAddDisk(self, inst, disk, idx)
        old = {nic.uuid for nic in self.instance.nics}
        cluster = self.cfg.GetClusterInfo()
        for idx, nic in enumerate(self.new_nics):
            if nic.uuid not in old:
                # The node sets the tap up by the NIC's filled parameters
                filled = nic.Copy()
                filled.nicparams = cluster.SimpleFillNIC(nic.nicparams or {})
                net = self.cfg.GetNetwork(nic.network) if nic.network else None
                if net is not None:
                    filled.netinfo = nics_mod.NetInfo(net)
                hotplug.HotplugDevice(self, inst, constants.HOTPLUG_ACTION_ADD,
                                      constants.HOTPLUG_TARGET_NIC, filled, None, idx)

    def _ExecConfig(self, feedback_fn: FeedbackFn, ec_id: Any,
                    result: list[tuple[str, Any]]) -> None:
        cfg, op = self.cfg, self.op
        inst = self.instance
        pnode_uuid = inst.primary_node
        for idx, nic in enumerate(self.new_nics):
            if not any(nic is other for other in self.changed_nics):
                continue
            iu.AssignNicMac(cfg, nic, idx, ec_id, {old.mac for old in inst.nics})

        if self.hotplug:
            self._HotRemove()
        added = [disk for _, disk in self.added_disks]
        if added:
            feedback_fn(f"* creating {len(added)} new disk(s)")
            iu.CreateDisks(self, inst, added, pnode_uuid, feedback_fn)
        in_config: list[objects.Disk] = []
        attached_uuids = {disk.uuid for _, disk in self.attached_disks}
        try:
            # Each new disk goes right after its predecessor in the new order;
            # the disks to remove are still there but leave the others' order
            current = list(cfg.GetInstanceInfo(inst.uuid).disks)
            for idx, disk in sorted(self.added_disks + self.attached_disks,
                                    key=lambda pair: pair[0]):
                pos = current.index(self.new_disks[idx - 1].uuid) + 1 if idx else 0
                if disk.uuid in attached_uuids:
                    cfg.AttachInstanceDisk(inst.uuid, disk.uuid, idx=pos)
                else:
                    cfg.AddInstanceDisk(inst.uuid, disk, idx=pos)
                current.insert(pos, disk.uuid)
                in_config.append(disk)
            fresh = cfg.GetInstanceInfo(inst.uuid)
            fresh.nics = self.new_nics
            fresh.hvparams = self.hvparams
            fresh.beparams = self.beparams
            fresh.os = self.os_name
            fresh.osparams = self.osparams
            fresh.osparams_private = self.osparams_private
            cfg.Update(fresh, feedback_fn, ec_id)
        except Exception:
            self.LogWarning(f"Modification of instance {inst.name} failed; removing"
                            " the disks it added")
            for disk in in_config:
                if disk.uuid in attached_uuids:
                    cfg.DetachInstanceDisk(inst.uuid, disk.uuid)
                else:
                    cfg.RemoveInstanceDisk(inst.uuid, disk.uuid)
            if added:
                iu.RemoveDisks(self, added, pnode_uuid, inst.name)
            raise

        if self.hotplug:
            self._HotAdd()
        attach.ActivateAttached(self, inst, self.attached_disks)
        for key, value in sorted(op.hvparams.items()):
            result.append((f"hv/{key}", value))
        for key, value in sorted(self.be_changes.items()):
            result.append((f"be/{key}", value))
        if self.os_name != inst.os:
            result.append(("os_name", self.os_name))
        for key, value in sorted((op.osparams or {}).items()):
            result.append((f"os/{key}", value))
        for key in sorted(op.osparams_private or {}):
            result.append((f"os_private/{key}", "<hidden>"))
        for param, value in self.nic_changes:
            if isinstance(value, tuple):
                value = value[0].mac
            elif isinstance(value, objects.NIC):
                nic = value
                filled = cfg.GetClusterInfo().SimpleFillNIC(nic.nicparams)
                value = (f"add:mac={nic.mac},ip={nic.ip},"
                         f"mode={filled.get(constants.NIC_MODE)},"
                         f"link={filled.get(constants.NIC_LINK)},network="
                         f"{nics_mod.NetworkName(cfg, nic.network) if nic.network else None}")
            result.append((param, value))

        for disk in self.modified_disks:
            stored = cfg.GetDiskInfo(disk.uuid)
            stored.mode = disk.mode
            stored.name = disk.name
            cfg.Update(stored, feedback_fn)
        if self.detached_disks:
            attach.ShutdownDetached(self, inst, self.detached_disks)
        for disk in self.detached_disks:
            cfg.DetachInstanceDisk(inst.uuid, disk.uuid)
        for disk in self.removed_disks:
            cfg.RemoveInstanceDisk(inst.uuid, disk.uuid)
            rpc_result = self.rpc.call_blockdev_shutdown(pnode_uuid, disk.ToDict())
            if rpc_result.fail_msg:
                self.LogWarning(f"Could not shut down {disk.iv_name}:"
                                f" {rpc_result.fail_msg}")
            rpc_result = self.rpc.call_blockdev_remove(pnode_uuid, disk.ToDict())
            if rpc_result.fail_msg:
                self.LogWarning(f"Could not remove {disk.iv_name} on node"
                                f" {iu.NodeName(cfg, pnode_uuid)}: {rpc_result.fail_msg},"
                                " continuing anyway")
        result.extend(self.disk_changes)

