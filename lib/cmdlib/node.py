"""Node LUs: add (or re-add), remove, and change roles and parameters.

Preparing a new node (certificates, node daemon) happens before the
opcode, in ``gnt-node add`` (:mod:`ganeti.bootstrap.node_setup`), as in
Ganeti; :class:`LUNodeAdd` checks over RPC that the node answers, speaks
our protocol and knows its name, then adds it to the configuration. Every
configuration save reaches the master candidates (config.data) and all
online nodes (ssconf) through the master daemon's save listener
(:mod:`ganeti.config_sync`), so a node promoted to master candidate gets
the configuration with the next push, before the opcode that saved it
ends.

The master-candidate pool follows Ganeti's rules: a new node becomes a
candidate while the pool is short of ``candidate_pool_size``; demoting a
candidate (directly, or by offlining/draining it or making it not
master-capable) is refused when the pool would be short, unless
``--auto-promote`` (another node is promoted) or ``--force``; a node
coming back online or undrained promotes itself when the pool is short.
The master cannot be removed, offlined, drained or demoted.

All three LUs take the Big Ganeti Lock exclusively (they change the set of
nodes or the candidate pool), so they need no node locks.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from ganeti import constants, errors, locking, objects, utils
from ganeti.cmdlib import resource_state
from ganeti.cmdlib.base import FeedbackFn, LogicalUnit, NoHooksLU
from ganeti.cmdlib.cluster import CheckNdParams, MergeParams


def _Inval(msg: str) -> errors.OpPrereqError:
    return errors.OpPrereqError(msg, errors.ECODE_INVAL)


def _CheckIp(value: str, what: str) -> str:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise _Inval(f"Invalid {what} '{value}': not an IP address") from None


def ExpandNode(cfg: Any, name: str) -> objects.Node:
    """The configured node ``name`` (full or abbreviated), or OpPrereqError
    (ECODE_NOENT)."""
    expanded = cfg.ExpandNodeName(name) if name else None
    node = cfg.GetNodeInfoByName(expanded) if expanded else None
    if node is None:
        raise errors.OpPrereqError(f"Node '{name}' not known", errors.ECODE_NOENT)
    return node


def _SameName(reported: str, expected: str) -> bool:
    reported, expected = reported.lower(), expected.lower()
    return (reported == expected or reported.startswith(expected + ".")
            or expected.startswith(reported + "."))


def _NewNodeRunner(name: str, address: str, port: int) -> Any:
    """An RPC runner reaching a node that is not (yet) configured."""
    from ganeti.rpc.node import NodeEndpoint, RpcRunner
    return RpcRunner.FromEndpoints({name: NodeEndpoint(name, address, port)})


def CheckNodeAnswers(runner: Any, key: str, name: str, address: str, port: int,
                     cluster_name: str) -> None:
    """Check over RPC that node ``name`` answers, with our protocol version,
    and reports its own name.

    @raise errors.OpPrereqError: (ECODE_ENVIRON) naming what is wrong
    """
    where = f"{address}:{port}"
    result = runner.call_version([key])[key]
    if result.fail_msg:
        raise errors.OpPrereqError(
            f"Can't get version information from node {name} ({where}):"
            f" {result.fail_msg}", errors.ECODE_ENVIRON)
    if result.payload != constants.PROTOCOL_VERSION:
        raise errors.OpPrereqError(
            f"Ganeti version mismatch: master {constants.PROTOCOL_VERSION}, node"
            f" {name} {result.payload}", errors.ECODE_ENVIRON)
    verify = runner.call_node_verify(
        [key], {constants.NV_HOSTNAME: None}, cluster_name, {}, {}, {})[key]
    if verify.fail_msg:
        raise errors.OpPrereqError(
            f"Node {name} ({where}) failed verification: {verify.fail_msg}",
            errors.ECODE_ENVIRON)
    reported = (verify.payload or {}).get(constants.NV_HOSTNAME)
    if not isinstance(reported, str) or not _SameName(reported, name):
        raise errors.OpPrereqError(
            f"The node daemon at {where} reports the name {reported!r}, not"
            f" {name}", errors.ECODE_ENVIRON)


def _DecideSelfPromotion(cfg: Any, exceptions: list[str]) -> bool:
    """Whether one more candidate is needed, not counting ``exceptions``."""
    mc_now, _, mc_max = cfg.GetMasterCandidateStats(exceptions)
    pool_size = cfg.GetClusterInfo().candidate_pool_size or 0
    return mc_now < min(mc_max + 1, pool_size)


def PromoteCandidates(cfg: Any, exceptions: list[str],
                      feedback_fn: FeedbackFn | None = None) -> list[str]:
    """Promote nodes (not those in ``exceptions``) to master candidates
    until the pool is full; return their names. Each promoted node gets
    the configuration when it is saved."""
    promoted: list[str] = []
    mc_now, mc_should, _ = cfg.GetMasterCandidateStats(exceptions)
    nodes = cfg.GetAllNodesInfo()
    for node in utils.NiceSort(nodes.values(), key=lambda n: n.name):
        if mc_now >= mc_should:
            break
        if (node.uuid in exceptions or node.master_candidate or node.offline
                or node.drained or not node.master_capable):
            continue
        node.master_candidate = True
        cfg.Update(node, feedback_fn)
        promoted.append(node.name)
        mc_now += 1
    if promoted and feedback_fn:
        feedback_fn(f"Promoted nodes to master candidate role: {', '.join(promoted)}")
    return promoted


class _NodeLU(NoHooksLU):
    """Base of the node LUs: they always run with a configuration."""

    cfg: Any


class LUNodeAdd(_NodeLU):
    """Add a node to the cluster, or re-add one (``readd``)."""

    def CheckArguments(self) -> None:
        """Resolve the name to the primary IP unless it is given; check IPs."""
        op = self.op
        if op.primary_ip:
            self.primary_ip = _CheckIp(op.primary_ip, "primary IP")
            self.node_name = op.node_name.lower()
        else:
            try:
                host = utils.Hostname(op.node_name)
            except errors.ResolverError as err:
                raise errors.OpPrereqError(
                    f"Cannot resolve node name '{op.node_name}': {err.args[-1]};"
                    " give its address with --node-ip", errors.ECODE_RESOLVER) from None
            self.node_name, self.primary_ip = host.name, host.ip
        self.secondary_ip = _CheckIp(op.secondary_ip, "secondary IP") \
            if op.secondary_ip else None
        self.ndparams = CheckNdParams(op.ndparams) if op.ndparams else None
        self.hv_state = resource_state.MergeHvState(op.hv_state)
        self.disk_state = resource_state.MergeDiskState(op.disk_state)

    def ExpandNames(self) -> None:
        """No node locks: the Big Ganeti Lock is held exclusively."""
        self.needed_locks = {}

    def CheckPrereq(self) -> None:
        """Existing node, address conflicts, group, and the node's answer."""
        cfg, op = self.cfg, self.op
        existing = cfg.GetNodeInfoByName(self.node_name)
        if existing is not None and not op.readd:
            raise errors.OpPrereqError(
                f"Node {self.node_name} is already in the configuration",
                errors.ECODE_EXISTS)
        if existing is None and op.readd:
            raise errors.OpPrereqError(
                f"Node {self.node_name} is not in the configuration, cannot"
                " re-add it", errors.ECODE_NOENT)
        if existing is not None and existing.uuid == cfg.GetMasterNode():
            raise _Inval("Cannot re-add the master node")
        self.existing = existing

        secondary = self.secondary_ip or (existing.secondary_ip if existing and
                                          existing.secondary_ip != existing.primary_ip
                                          else self.primary_ip)
        self.secondary_ip = secondary
        port = op.noded_port or (existing.noded_port if existing else None)
        endpoint = (self.primary_ip, port or constants.DEFAULT_NODED_PORT)
        for other in cfg.GetAllNodesInfo().values():
            if existing is not None and other.uuid == existing.uuid:
                continue
            if other.GetNodedEndpoint() == endpoint or \
                    (other.primary_ip == self.primary_ip and port is None
                     and other.noded_port is None):
                raise errors.OpPrereqError(
                    f"New node address {self.primary_ip} (port {endpoint[1]})"
                    f" conflicts with existing node {other.name}",
                    errors.ECODE_NOTUNIQUE)

        if existing is not None and op.group is None:
            self.group_uuid = existing.group
        else:
            self.group_uuid = cfg.LookupNodeGroup(op.group)

        cluster = cfg.GetClusterInfo()
        runner = _NewNodeRunner(self.node_name, self.primary_ip, endpoint[1])
        CheckNodeAnswers(runner, self.node_name, self.node_name, self.primary_ip,
                         endpoint[1], cluster.cluster_name)
        self.noded_port = port
        self.confd_port = op.confd_port or (existing.confd_port if existing else None)

        master_capable = op.master_capable
        if master_capable is None:
            master_capable = existing.master_capable if existing else True
        self.master_capable = master_capable
        exceptions = [existing.uuid] if existing else []
        self.master_candidate = master_capable and \
            _DecideSelfPromotion(cfg, exceptions)

    def Exec(self, feedback_fn: FeedbackFn) -> None:
        """Add the node (or update it on re-add); the save pushes the config."""
        cfg, op = self.cfg, self.op
        vm_capable = op.vm_capable
        if self.existing is not None:
            node = cfg.GetNodeInfo(self.existing.uuid)
            node.primary_ip = self.primary_ip
            node.secondary_ip = self.secondary_ip
            node.offline = node.drained = False
            node.master_candidate = self.master_candidate
            node.master_capable = self.master_capable
            if vm_capable is not None:
                node.vm_capable = vm_capable
            node.group = self.group_uuid
            node.noded_port = self.noded_port
            node.confd_port = self.confd_port
            if self.ndparams is not None:
                node.ndparams = self.ndparams
            if self.hv_state is not None:
                node.hv_state_static = self.hv_state
            if self.disk_state is not None:
                node.disk_state_static = self.disk_state
            if self.master_candidate:
                feedback_fn(f"Re-added node {node.name} becomes a master candidate")
            cfg.Update(node, feedback_fn)
            return None
        node = objects.Node(
            name=self.node_name, primary_ip=self.primary_ip,
            secondary_ip=self.secondary_ip, master_candidate=self.master_candidate,
            offline=False, drained=False, group=self.group_uuid,
            master_capable=self.master_capable,
            vm_capable=True if vm_capable is None else vm_capable,
            ndparams=self.ndparams or {}, powered=True,
            noded_port=self.noded_port, confd_port=self.confd_port,
            hv_state_static=self.hv_state or {}, disk_state_static=self.disk_state or {})
        cfg.AddNode(node, self.proc.GetECId() if self.proc is not None else None)
        added = cfg.GetNodeInfoByName(self.node_name)
        if self.glm is not None and added is not None:
            self.glm.add(locking.LEVEL_NODE, [added.uuid])
            self.glm.add(locking.LEVEL_NODE_RES, [added.uuid])
        if self.master_candidate:
            feedback_fn(f"New node {self.node_name} is a master candidate")
        return None


class LUNodeRemove(_NodeLU):
    """Remove a node: not the master, not one with instances."""

    def ExpandNames(self) -> None:
        """Resolve the node; the Big Ganeti Lock is held exclusively."""
        self.node = ExpandNode(self.cfg, self.op.node_name)
        self.op.node_uuid = self.node.uuid
        self.needed_locks = {}

    def CheckPrereq(self) -> None:
        """Refuse the master and nodes with instances."""
        node = self.node
        if node.uuid == self.cfg.GetMasterNode():
            raise _Inval(f"Node {node.name} is the master node, failover to another"
                         " node is required")
        primary, secondary = self.cfg.GetNodeInstances(node.uuid)
        for inst_uuid in primary + secondary:
            raise _Inval(f"Instance {self.cfg.GetInstanceName(inst_uuid)} is still"
                         f" running on the node {node.name}, please remove first")

    def Exec(self, feedback_fn: FeedbackFn) -> None:
        """Tell the node to leave, remove it, refill the candidate pool."""
        node = self.node
        feedback_fn(f"Removing node {node.name} from the cluster")
        if self.rpc is not None and not node.offline:
            result = self.rpc.call_node_leave_cluster(node.uuid, False)
            if result.fail_msg:
                self.LogWarning(f"Node {node.name} could not clean up and stop its"
                                f" daemon: {result.fail_msg}")
        self.cfg.RemoveNode(node.uuid)
        if self.glm is not None:
            for level in (locking.LEVEL_NODE, locking.LEVEL_NODE_RES):
                if node.uuid in self.glm.names(level):
                    self.glm.remove(level, [node.uuid])
        if node.master_candidate:
            PromoteCandidates(self.cfg, [], feedback_fn)
        return None


class LUNodeSetParams(_NodeLU):
    """Change a node's roles (candidate, offline, drained), capabilities and
    parameters."""

    _FLAGS = ("master_candidate", "offline", "drained")

    def CheckArguments(self) -> None:
        """At least one change; at most one role flag set to true."""
        op = self.op
        changes = [op.master_candidate, op.offline, op.drained, op.master_capable,
                   op.vm_capable, op.secondary_ip, op.ndparams, op.powered,
                   op.hv_state, op.disk_state]
        if all(value is None for value in changes):
            raise _Inval("Please pass at least one modification")
        if sum(1 for flag in self._FLAGS if getattr(op, flag)) > 1:
            raise _Inval("Can't set the node into more than one state at the same"
                         " time (master_candidate, offline, drained)")
        if op.secondary_ip:
            op.secondary_ip = _CheckIp(op.secondary_ip, "secondary IP")
        if op.ndparams:
            CheckNdParams({key: value for key, value in op.ndparams.items()
                           if value != constants.VALUE_DEFAULT})

    def ExpandNames(self) -> None:
        """Resolve the node; the Big Ganeti Lock is held exclusively."""
        self.node = ExpandNode(self.cfg, self.op.node_name)
        self.op.node_uuid = self.node.uuid
        self.needed_locks = {}

    def CheckPrereq(self) -> None:
        """Ganeti's role rules; decide demotions and self-promotion."""
        cfg, op, node = self.cfg, self.op, self.node
        is_master = node.uuid == cfg.GetMasterNode()
        if is_master and (op.master_candidate is False or op.offline or op.drained
                          or op.master_capable is False):
            raise _Inval(f"Node {node.name} is the master; the master role can be"
                         " changed only via master-failover")

        master_capable = node.master_capable if op.master_capable is None \
            else op.master_capable
        if op.master_candidate and not master_capable:
            raise errors.OpPrereqError(
                f"Node {node.name} is not master capable, cannot make it a master"
                " candidate", errors.ECODE_STATE)
        if op.master_candidate and (node.offline and op.offline is not False or
                                    node.drained and op.drained is not False):
            raise errors.OpPrereqError(
                f"Node {node.name} is offline or drained; it cannot become a"
                " master candidate", errors.ECODE_STATE)

        # Offline, drained or not master-capable: no longer a candidate
        self.demote = node.master_candidate and (
            op.master_candidate is False or bool(op.offline) or bool(op.drained)
            or op.master_capable is False)
        if self.demote and not (op.auto_promote or op.force):
            mc_now, mc_should, _ = cfg.GetMasterCandidateStats([node.uuid])
            if mc_now < mc_should:
                raise errors.OpPrereqError(
                    f"Not enough master candidates (desired {mc_should}, new"
                    f" value will be {mc_now}); pass --auto-promote to promote"
                    " another node, or --force", errors.ECODE_STATE)

        # Back online, undrained or made master-capable: promote itself if needed
        self.promote = bool(op.master_candidate)
        becomes_eligible = (op.offline is False and node.offline) or \
            (op.drained is False and node.drained) or \
            (op.master_capable and not node.master_capable)
        if (becomes_eligible and op.master_candidate is None and master_capable
                and not (op.offline or op.drained)
                and not (node.offline and op.offline is not False)
                and not (node.drained and op.drained is not False)
                and _DecideSelfPromotion(cfg, [node.uuid])):
            self.promote = True

        if op.offline is False and node.offline and self.rpc is not None:
            result = self.rpc.call_version([node.uuid])[node.uuid]
            if result.fail_msg:
                raise errors.OpPrereqError(
                    f"Node {node.name} is being de-offlined but fails to answer:"
                    f" {result.fail_msg}", errors.ECODE_ENVIRON)

        self.new_ndparams = None
        if op.ndparams:
            self.new_ndparams = CheckNdParams(MergeParams(node.ndparams, op.ndparams))
        self.new_hv_state = resource_state.MergeHvState(op.hv_state,
                                                        node.hv_state_static)
        self.new_disk_state = resource_state.MergeDiskState(op.disk_state,
                                                            node.disk_state_static)

    def Exec(self, feedback_fn: FeedbackFn) -> list[list[Any]]:
        """Apply the changes; returns Ganeti's ``[[parameter, new value]]``."""
        cfg, op = self.cfg, self.op
        node = cfg.GetNodeInfo(self.node.uuid)
        changes: list[list[Any]] = []
        for flag in ("offline", "drained"):
            value = getattr(op, flag)
            if value is not None and value != getattr(node, flag):
                setattr(node, flag, value)
                changes.append([flag, str(value)])
        if op.master_capable is not None and op.master_capable != node.master_capable:
            node.master_capable = op.master_capable
            changes.append(["master_capable", str(op.master_capable)])
        if op.vm_capable is not None and op.vm_capable != node.vm_capable:
            node.vm_capable = op.vm_capable
            changes.append(["vm_capable", str(op.vm_capable)])
        if self.demote:
            node.master_candidate = False
            reason = "" if op.master_candidate is False else " (auto-demotion)"
            changes.append(["master_candidate", f"False{reason}"])
        elif self.promote and not node.master_candidate:
            node.master_candidate = True
            reason = "" if op.master_candidate else " (auto-promotion)"
            changes.append(["master_candidate", f"True{reason}"])
        if op.secondary_ip and op.secondary_ip != node.secondary_ip:
            node.secondary_ip = op.secondary_ip
            changes.append(["secondary_ip", op.secondary_ip])
        if self.new_ndparams is not None:
            node.ndparams = self.new_ndparams
            changes.append(["ndparams", str(self.new_ndparams)])
        if op.powered is not None and op.powered != node.powered:
            node.powered = op.powered
            changes.append(["powered", str(op.powered)])
        if self.new_hv_state is not None:
            node.hv_state_static = self.new_hv_state
            changes.append(["hv_state", str(self.new_hv_state)])
        if self.new_disk_state is not None:
            node.disk_state_static = self.new_disk_state
            changes.append(["disk_state", str(self.new_disk_state)])
        if changes:
            cfg.Update(node, feedback_fn)
        if self.demote and op.auto_promote:
            for name in PromoteCandidates(cfg, [node.uuid], feedback_fn):
                changes.append(["master_candidate", f"True (auto-promotion of {name})"])
        return changes


class LUNodeMigrate(LogicalUnit):
    """Migrate every primary instance of a node: one ``OpInstanceMigrate``
    job each, submitted by this opcode (whose result lists their job IDs),
    as Ganeti does. The node lock is shared: the jobs take their own."""

    HPATH = "node-migrate"
    HTYPE = constants.HTYPE_NODE
    REQ_BGL = False
    cfg: Any

    def CheckArguments(self) -> None:
        if self.op.iallocator and self.op.target_node:
            raise _Inval("Only one of iallocator and target_node can be given")

    def ExpandNames(self) -> None:
        node = ExpandNode(self.cfg, self.op.node_name)
        self.op.node_uuid, self.op.node_name = node.uuid, node.name
        self.share_locks = dict.fromkeys(locking.LEVELS, 1)
        self.needed_locks = {locking.LEVEL_NODE: [node.uuid]}

    def BuildHooksEnv(self) -> dict[str, Any]:
        return {"NODE_NAME": self.op.node_name,
                "ALLOW_RUNTIME_CHANGES": self.op.allow_runtime_changes}

    def BuildHooksNodes(self) -> tuple[list[str], list[str]]:
        master = self.cfg.GetMasterNode()
        return [master], [master]

    def CheckPrereq(self) -> None:
        pass

    def Exec(self, feedback_fn: FeedbackFn) -> dict[str, Any]:
        from ganeti import opcodes
        primary, _ = self.cfg.GetNodeInstances(self.op.node_uuid)
        names = utils.NiceSort(self.cfg.GetInstanceName(uuid) for uuid in primary)
        jobs = [[opcodes.OpInstanceMigrate(
            instance_name=name, mode=self.op.mode, live=self.op.live,
            iallocator=self.op.iallocator, target_node=self.op.target_node,
            allow_runtime_changes=self.op.allow_runtime_changes,
            ignore_ipolicy=self.op.ignore_ipolicy)] for name in names]
        if not jobs:
            feedback_fn(f"No primary instances on node {self.op.node_name}")
        return {constants.JOB_IDS_KEY: self.proc.SubmitManyJobs(jobs) if jobs else []}
