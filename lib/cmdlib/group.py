"""Node group LUs: add, remove, rename, change parameters, assign nodes.

A group holds only what it overrides of the cluster's node parameters,
disk parameters and instance policy (ipolicy); the effective values are
the cluster's filled with the group's (``Cluster.SimpleFill*``).

Instance policies are checked here for both the group LUs and the
instance LUs: :func:`CheckGroupIPolicy` validates a change (naming the bad
spec or value), :func:`ComputeIPolicySpecViolation` and
:func:`ComputeIPolicyInstanceViolation` list how an instance (or the specs
of a new one) breaks a policy. Changing a group's policy does not refuse
instances that break the new one: they are reported as warnings, as
Ganeti does.

Group evacuation (``OpGroupEvacuate``) is in :mod:`.group_evacuate`.

Every LU takes the Big Ganeti Lock exclusively (like the node LUs), so
no group, node or instance changes under it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ganeti import constants, errors, ht, locking, objects, utils
from ganeti.cmdlib import resource_state
from ganeti.cmdlib.base import FeedbackFn, NoHooksLU
from ganeti.cmdlib.cluster import CheckDiskParams, CheckNdParams, MergeParams
from ganeti.objects.params import CheckIPolicySyntax, FillIPolicy


def _Inval(msg: str) -> errors.OpPrereqError:
    return errors.OpPrereqError(msg, errors.ECODE_INVAL)


def _IsDefault(value: Any) -> bool:
    return value == constants.VALUE_DEFAULT or value == [constants.VALUE_DEFAULT]


# --- Instance policies ------------------------------------------------------------------

def _SpecValue(spec: Any, value: Any, where: str) -> int:
    if spec not in constants.ISPECS_PARAMETERS:
        raise _Inval(f"Unknown instance spec '{spec}' in {where} (valid:"
                     f" {', '.join(sorted(constants.ISPECS_PARAMETERS))})")
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise _Inval(f"Invalid value {ht.ShortRepr(value)} for {spec} in {where}: expected a"
                     " non-negative integer")
    try:
        number = int(value)
    except ValueError:
        raise _Inval(f"Invalid value {ht.ShortRepr(value)} for {spec} in {where}: expected a"
                     " non-negative integer") from None
    if number < 0 or number != float(value):
        raise _Inval(f"Invalid value {ht.ShortRepr(value)} for {spec} in {where}: expected a"
                     " non-negative integer")
    return number


def _CheckSpecs(specs: Any, where: str) -> dict[str, int]:
    if not isinstance(specs, Mapping):
        raise _Inval(f"The {where} must be a dict of instance specs, got {ht.ShortRepr(specs)}")
    return {spec: _SpecValue(spec, value, where) for spec, value in specs.items()}


def _CheckMinMax(value: Any, current: Sequence[Mapping[str, Any]]
                 ) -> list[dict[str, dict[str, int]]]:
    """The checked min/max pairs; pair #i is completed from ``current[i]``
    (the policy in force) or Ganeti's defaults."""
    if not isinstance(value, list) or not value:
        raise _Inval(f"The instance policy min/max specs must be a non-empty list"
                     f" of {{min: ..., max: ...}} pairs, got {ht.ShortRepr(value)}")
    result = []
    for idx, pair in enumerate(value):
        if not isinstance(pair, Mapping):
            raise _Inval(f"Min/max spec #{idx} must be a dict, got {ht.ShortRepr(pair)}")
        unknown = sorted(set(pair) - {constants.ISPECS_MIN, constants.ISPECS_MAX})
        if unknown:
            raise _Inval(f"Unknown key(s) {', '.join(map(str, unknown))} in min/max"
                         f" spec #{idx} (valid: min, max)")
        base = current[idx] if idx < len(current) else constants.ISPECS_MINMAX_DEFAULTS
        checked: dict[str, dict[str, int]] = {}
        for key in (constants.ISPECS_MIN, constants.ISPECS_MAX):
            given = _CheckSpecs(pair.get(key, {}), f"{key} specs of pair #{idx}")
            checked[key] = objects.FillDict(dict(base.get(key) or {}), given)
        result.append(checked)
    return result


def _CheckRatio(key: str, value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise _Inval(f"Invalid value {ht.ShortRepr(value)} for instance policy {key}: expected a"
                     " positive number") from None
    if isinstance(value, bool) or not 0 < number < float("inf"):
        raise _Inval(f"Invalid value {ht.ShortRepr(value)} for instance policy {key}: expected a"
                     " positive number")
    return number


def CheckGroupIPolicy(cluster_ipolicy: Mapping[str, Any],
                      custom: Mapping[str, Any] | None,
                      changes: Mapping[str, Any]) -> dict[str, Any]:
    """A group's new custom policy: ``custom`` with ``changes`` applied.

    A value of "default" removes the group's override. Partial min/max
    pairs are completed from the policy in force. The result, filled with
    the cluster's policy, must be valid: every min <= max, the standard
    specs (when the group sets them) between min and max, positive ratios,
    known disk templates.

    @raise errors.OpPrereqError: (ECODE_INVAL) naming the bad key or value
    """
    new = {key: value for key, value in (custom or {}).items()}
    unknown = sorted(set(changes) - constants.IPOLICY_ALL_KEYS)
    if unknown:
        raise _Inval(f"Unknown instance policy parameter(s): {', '.join(unknown)}"
                     f" (known: {', '.join(sorted(constants.IPOLICY_ALL_KEYS))})")
    in_force = FillIPolicy(FillIPolicy(constants.IPOLICY_DEFAULTS, cluster_ipolicy), new)
    for key, value in changes.items():
        if _IsDefault(value):
            new.pop(key, None)
        elif key in constants.IPOLICY_PARAMETERS:
            new[key] = _CheckRatio(key, value)
        elif key == constants.ISPECS_MINMAX:
            new[key] = _CheckMinMax(value, in_force.get(key) or [])
        elif key == constants.ISPECS_STD:
            std = _CheckSpecs(value, "standard specs")
            new[key] = objects.FillDict(dict(new.get(key) or {}), std)
        elif key == constants.IPOLICY_DTS:
            if isinstance(value, str) or not isinstance(value, (list, tuple)):
                raise _Inval(f"The instance policy disk templates must be a list,"
                             f" got {ht.ShortRepr(value)}")
            bad = sorted(str(dt) for dt in value if dt not in constants.DISK_TEMPLATES)
            if bad:
                raise _Inval(f"Unknown disk template(s) in the instance policy:"
                             f" {', '.join(bad)} (known:"
                             f" {', '.join(sorted(constants.DISK_TEMPLATES))})")
            new[key] = list(dict.fromkeys(value))
    filled = FillIPolicy(FillIPolicy(constants.IPOLICY_DEFAULTS, cluster_ipolicy), new)
    problems = CheckIPolicySyntax(filled, check_std=constants.ISPECS_STD in new)
    if problems:
        raise _Inval(f"Invalid instance policy: {'; '.join(problems)}")
    return new


def ComputeIPolicySpecViolation(ipolicy: Mapping[str, Any], mem_size: int | None,
                                cpu_count: int | None, disk_count: int | None,
                                nic_count: int | None, disk_sizes: Iterable[int],
                                spindle_use: int | None,
                                disk_template: str | None) -> list[str]:
    """How specs break a (filled) policy: one message per broken spec, e.g.
    "memory-size value 256 is not in range [512, 1024]"; empty if none.

    Values that are None are not checked; diskless instances have no disk
    count or size to check. The specs must fit one of the min/max pairs;
    when none fits, the messages are those of the pair with the fewest.
    """
    disk_sizes = list(disk_sizes)
    problems: list[str] = []
    dts = ipolicy.get(constants.IPOLICY_DTS)
    if disk_template is not None and dts is not None and disk_template not in dts:
        problems.append(f"Disk template {disk_template} is not allowed (allowed"
                        f" templates: {', '.join(dts)})")
    checks: list[tuple[str, int | None]] = [
        (constants.ISPEC_MEM_SIZE, mem_size),
        (constants.ISPEC_CPU_COUNT, cpu_count),
        (constants.ISPEC_NIC_COUNT, nic_count),
        (constants.ISPEC_SPINDLE_USE, spindle_use),
    ]
    if disk_template != constants.DT_DISKLESS:
        checks.append((constants.ISPEC_DISK_COUNT, disk_count))
        checks.extend((constants.ISPEC_DISK_SIZE, size) for size in disk_sizes)
    best: list[str] | None = None
    for pair in ipolicy.get(constants.ISPECS_MINMAX) or []:
        low = pair.get(constants.ISPECS_MIN) or {}
        high = pair.get(constants.ISPECS_MAX) or {}
        found = []
        for spec, value in checks:
            if value is None or spec not in low or spec not in high:
                continue
            if not low[spec] <= value <= high[spec]:
                found.append(f"{spec} value {value} is not in range"
                             f" [{low[spec]}, {high[spec]}]")
        if best is None or len(found) < len(best):
            best = found
        if not found:
            break
    return problems + (best or [])


def ComputeIPolicyInstanceViolation(ipolicy: Mapping[str, Any], instance: Any,
                                    cfg: Any) -> list[str]:
    """How a configured instance breaks a (filled) policy; empty if not."""
    cluster = cfg.GetClusterInfo()
    beparams = cluster.FillBE(instance)
    disks = cfg.GetInstanceDisks(instance.uuid)
    template = cfg.GetInstanceDiskTemplate(instance.uuid)
    # As Ganeti, the maximum memory is what the policy limits
    return ComputeIPolicySpecViolation(
        ipolicy, beparams.get(constants.BE_MAXMEM), beparams.get(constants.BE_VCPUS),
        len(disks), len(instance.nics or []), [disk.size for disk in disks],
        beparams.get(constants.BE_SPINDLE_USE), template)


def _GroupInstances(cfg: Any, group_uuid: str) -> list[Any]:
    """The instances with a node in the group, sorted by name."""
    nodes = cfg.GetAllNodesInfo()
    result = []
    for inst in cfg.GetAllInstancesInfo().values():
        if any(nodes[uuid].group == group_uuid for uuid in cfg.GetInstanceNodes(inst.uuid)
               if uuid in nodes):
            result.append(inst)
    return utils.NiceSort(result, key=lambda inst: inst.name)


def WarnIPolicyViolations(lu: Any, cfg: Any, group_uuid: str,
                          old_ipolicy: Mapping[str, Any],
                          new_ipolicy: Mapping[str, Any]) -> list[str]:
    """Warn about the group's instances that break ``new_ipolicy`` but did not
    break ``old_ipolicy`` (both filled); return their names."""
    broken = []
    for inst in _GroupInstances(cfg, group_uuid):
        new = ComputeIPolicyInstanceViolation(new_ipolicy, inst, cfg)
        if new and not ComputeIPolicyInstanceViolation(old_ipolicy, inst, cfg):
            broken.append(f"{inst.name} ({'; '.join(new)})")
    if broken:
        lu.LogWarning("After the ipolicy change the following instances violate"
                      f" them: {', '.join(broken)}")
    return [entry.split(" ", 1)[0] for entry in broken]


def _WarnDisabledTemplates(lu: Any, cluster: Any, ipolicy: Mapping[str, Any]) -> None:
    allowed = ipolicy.get(constants.IPOLICY_DTS) or []
    disabled = [dt for dt in allowed if dt not in (cluster.enabled_disk_templates or [])]
    if disabled:
        lu.LogWarning("The following disk templates are allowed by the ipolicy, but"
                      f" not enabled on the cluster: {', '.join(disabled)}")


# --- The LUs ------------------------------------------------------------------------------

class _GroupLU(NoHooksLU):
    """Base of the group LUs: the group named by ``op.group_name``."""

    cfg: Any

    def _ExpandGroup(self) -> objects.NodeGroup:
        uuid = self.cfg.LookupNodeGroup(self.op.group_name)
        group = self.cfg.GetNodeGroup(uuid)
        if group is None:  # pragma: no cover - the BGL keeps it
            raise errors.OpPrereqError(f"Node group '{self.op.group_name}' not found",
                                       errors.ECODE_NOENT)
        return group

    def ExpandNames(self) -> None:
        """No group locks: the Big Ganeti Lock is held exclusively."""
        self.needed_locks = {}


class LUGroupAdd(_GroupLU):
    """Create an empty node group."""

    def CheckArguments(self) -> None:
        """Check the parameters that do not depend on the configuration."""
        op = self.op
        self.ndparams = CheckNdParams(op.ndparams) if op.ndparams else {}
        self.diskparams = CheckDiskParams(op.diskparams) if op.diskparams else {}
        self.hv_state = resource_state.MergeHvState(op.hv_state) or {}
        self.disk_state = resource_state.MergeDiskState(op.disk_state) or {}

    def CheckPrereq(self) -> None:
        """The name must be free; the policy valid over the cluster's."""
        cfg, op = self.cfg, self.op
        existing = cfg.GetNodeGroupInfoByName(op.group_name)
        if existing is not None:
            raise errors.OpPrereqError(
                f"Desired group name '{op.group_name}' already exists as a node group"
                f" (UUID: {existing.uuid})", errors.ECODE_EXISTS)
        cluster = cfg.GetClusterInfo()
        self.ipolicy = CheckGroupIPolicy(cluster.ipolicy, {}, op.ipolicy or {})
        if constants.IPOLICY_DTS in self.ipolicy:
            _WarnDisabledTemplates(self, cluster, self.ipolicy)

    def Exec(self, feedback_fn: FeedbackFn) -> None:
        """Add the group and its lock."""
        op = self.op
        group = objects.NodeGroup(
            name=op.group_name, members=[], ndparams=self.ndparams,
            diskparams=self.diskparams, ipolicy=self.ipolicy,
            alloc_policy=op.alloc_policy or constants.ALLOC_POLICY_PREFERRED,
            hv_state_static=self.hv_state, disk_state_static=self.disk_state,
            networks={})
        ec_id = self.proc.GetECId() if self.proc is not None else None
        self.cfg.AddNodeGroup(group, ec_id)
        if self.glm is not None and group.uuid:
            self.glm.add(locking.LEVEL_NODEGROUP, [group.uuid])
        return None


class LUGroupRemove(_GroupLU):
    """Remove an empty node group; never the last one."""

    def CheckPrereq(self) -> None:
        """Refuse a group with nodes, and the last group."""
        cfg = self.cfg
        self.group = group = self._ExpandGroup()
        members = [node.name for node in cfg.GetAllNodesInfo().values()
                   if node.group == group.uuid]
        if members:
            raise errors.OpPrereqError(
                f"Group '{group.name}' not empty, has the following node(s):"
                f" {', '.join(utils.NiceSort(members))}", errors.ECODE_STATE)
        if len(cfg.GetNodeGroupList()) == 1:
            raise errors.OpPrereqError(
                f"Group '{group.name}' is the only group, cannot be removed",
                errors.ECODE_STATE)

    def Exec(self, feedback_fn: FeedbackFn) -> None:
        """Remove the group and its lock."""
        uuid = self.group.uuid
        try:
            self.cfg.RemoveNodeGroup(uuid)
        except errors.ConfigurationError as err:
            raise errors.OpExecError(f"Group '{self.group.name}' with UUID {uuid}"
                                     f" disappeared: {err}") from err
        if self.glm is not None and uuid in self.glm.names(locking.LEVEL_NODEGROUP):
            self.glm.remove(locking.LEVEL_NODEGROUP, [uuid])
        return None


class LUGroupRename(_GroupLU):
    """Rename a node group; returns the new name."""

    def CheckPrereq(self) -> None:
        """The new name must be free."""
        self.group = self._ExpandGroup()
        other = self.cfg.GetNodeGroupInfoByName(self.op.new_name)
        if other is not None:
            raise errors.OpPrereqError(
                f"Desired new name '{self.op.new_name}' clashes with existing node"
                " group", errors.ECODE_EXISTS)

    def Exec(self, feedback_fn: FeedbackFn) -> str:
        """Store the new name."""
        group = self.group
        if group.name != self.op.new_name:
            group.name = self.op.new_name
            self.cfg.Update(group, feedback_fn)
        return str(self.op.new_name)


class LUGroupSetParams(_GroupLU):
    """Change a node group's allocation policy, parameters and policy.

    Returns Ganeti's ``[[parameter, new value], ...]``.
    """

    def CheckArguments(self) -> None:
        """At least one change; parameters well-formed."""
        op = self.op
        if all(value is None for value in (op.ndparams, op.diskparams, op.alloc_policy,
                                           op.hv_state, op.disk_state, op.ipolicy)):
            raise _Inval("Please pass at least one modification")
        if op.ndparams:
            CheckNdParams({key: value for key, value in op.ndparams.items()
                           if value != constants.VALUE_DEFAULT})
        resource_state.MergeHvState(op.hv_state)
        resource_state.MergeDiskState(op.disk_state)

    def CheckPrereq(self) -> None:
        """Compute the new values; warn about instances the policy breaks."""
        cfg, op = self.cfg, self.op
        self.group = group = self._ExpandGroup()
        cluster = cfg.GetClusterInfo()
        self.new_ndparams = None
        if op.ndparams:
            self.new_ndparams = CheckNdParams(MergeParams(group.ndparams, op.ndparams))
        self.new_diskparams = None
        if op.diskparams:
            new_dp = {key: dict(value) for key, value in (group.diskparams or {}).items()}
            for template, params in op.diskparams.items():
                cleaned = {key: value for key, value in params.items()
                           if value != constants.VALUE_DEFAULT}
                CheckDiskParams({template: cleaned})
                merged = MergeParams(new_dp.get(template), params)
                if merged:
                    new_dp[template] = merged
                else:
                    new_dp.pop(template, None)
            self.new_diskparams = new_dp
        self.new_ipolicy = None
        if op.ipolicy:
            self.new_ipolicy = CheckGroupIPolicy(cluster.ipolicy, group.ipolicy,
                                                 op.ipolicy)
            old_filled = cluster.SimpleFillIPolicy(group.ipolicy or {})
            new_filled = cluster.SimpleFillIPolicy(self.new_ipolicy)
            if constants.IPOLICY_DTS in op.ipolicy:
                _WarnDisabledTemplates(self, cluster, new_filled)
            WarnIPolicyViolations(self, cfg, group.uuid, old_filled, new_filled)

    def Exec(self, feedback_fn: FeedbackFn) -> list[list[Any]]:
        """Apply and store the changes."""
        op, group = self.op, self.group
        changes: list[list[Any]] = []
        if self.new_ndparams is not None:
            group.ndparams = self.new_ndparams
            changes.append(["ndparams", str(group.ndparams)])
        if self.new_diskparams is not None:
            group.diskparams = self.new_diskparams
            changes.append(["diskparams", str(group.diskparams)])
        if op.alloc_policy is not None:
            group.alloc_policy = op.alloc_policy
            changes.append(["alloc_policy", op.alloc_policy])
        if op.hv_state is not None:
            group.hv_state_static = resource_state.MergeHvState(
                op.hv_state, group.hv_state_static) or group.hv_state_static
            changes.append(["hv_state", str(group.hv_state_static)])
        if op.disk_state is not None:
            group.disk_state_static = resource_state.MergeDiskState(
                op.disk_state, group.disk_state_static) or group.disk_state_static
            changes.append(["disk_state", str(group.disk_state_static)])
        if self.new_ipolicy is not None:
            group.ipolicy = self.new_ipolicy
            changes.append(["ipolicy", str(group.ipolicy)])
        self.cfg.Update(group, feedback_fn)
        return changes


class LUGroupAssignNodes(_GroupLU):
    """Move nodes into a group.

    Refuses to split an instance whose disks are mirrored between nodes
    (its nodes would end up in different groups) unless ``force``; with
    ``force`` the split is a warning.
    """

    def CheckPrereq(self) -> None:
        """Resolve the nodes; find the instances the move would split."""
        cfg, op = self.cfg, self.op
        self.group = group = self._ExpandGroup()
        nodes = []
        for name in op.nodes:
            full = cfg.ExpandNodeName(name) if name else None
            node = cfg.GetNodeInfoByName(full) if full else None
            if node is None:
                raise errors.OpPrereqError(f"Node '{name}' not known",
                                           errors.ECODE_NOENT)
            nodes.append(node)
        op.node_uuids = [node.uuid for node in nodes]
        self.moves = [(node.uuid, group.uuid) for node in nodes
                      if node.group != group.uuid]
        all_nodes = cfg.GetAllNodesInfo()
        before = {uuid: node.group for uuid, node in all_nodes.items()}
        after = dict(before)
        after.update(self.moves)
        new_splits, old_splits = [], []
        for inst in cfg.GetAllInstancesInfo().values():
            if cfg.GetInstanceDiskTemplate(inst.uuid) not in constants.DTS_INT_MIRROR:
                continue
            inst_nodes = [uuid for uuid in cfg.GetInstanceNodes(inst.uuid)
                          if uuid in before]
            was_split = len({before[uuid] for uuid in inst_nodes}) > 1
            is_split = len({after[uuid] for uuid in inst_nodes}) > 1
            if is_split and not was_split:
                new_splits.append(inst.name)
            elif is_split:
                old_splits.append(inst.name)
        if new_splits:
            names = ", ".join(utils.NiceSort(new_splits))
            if not op.force:
                raise errors.OpPrereqError(
                    "The following instances get split by this change and --force"
                    f" was not given: {names}", errors.ECODE_INVAL)
            self.LogWarning(f"This operation will split the following instances: {names}")
            if old_splits:
                self.LogWarning("In addition, these already-split instances continue"
                                " to be split across groups:"
                                f" {', '.join(utils.NiceSort(old_splits))}")

    def Exec(self, feedback_fn: FeedbackFn) -> None:
        """Move the nodes (all checked before any moves)."""
        if self.moves:
            self.cfg.AssignGroupNodes(self.moves)
        return None
