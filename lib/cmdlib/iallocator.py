"""The iallocator framework, master side: the input message, running an
allocator, and checking its answer (``doc/iallocator.rst`` of Ganeti,
protocol version 2).

A request object (:class:`IAReqInstanceAlloc`, :class:`IAReqRelocate`,
:class:`IAReqNodeEvac`, :class:`IAReqGroupChange`,
:class:`IAReqMultiInstanceAlloc`) gives the ``request`` part of the input
and checks the ``result`` part of the answer. :class:`IAllocator` adds the
cluster data (groups, nodes with their live memory, disk, spindles and
CPUs, instances), runs the allocator on the master node through the
``iallocator_runner`` RPC (as Ganeti: the node daemon finds the program
in the iallocator search path and runs it with the input file), and
parses the answer: ``success``, ``info``, ``result``.

Errors: a program that is missing, fails or answers something that is not
a well-formed answer raises OpPrereqError (ECODE_ENVIRON); "no solution"
is ECODE_NORES (:meth:`IAllocator.RunOrFail`); a result that names
unknown, offline or drained nodes, the wrong number of nodes or nodes of
the wrong group is refused by the request's ``ValidateResult``.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

from ganeti import constants, errors, serializer
from ganeti.cmdlib.base import NodeName
from ganeti.cmdlib.disks import DRBD_META_SIZE



def ComputeDiskSize(disk_template: str, disks: list[dict[str, Any]]) -> int:
    """The disk space (MiB) an instance needs on each of its nodes, as
    Ganeti computes it for the allocator (``disk_space_total``)."""
    sizes = [int(disk.get(constants.IDISK_SIZE, 0)) for disk in disks]
    if disk_template in (constants.DT_DISKLESS, constants.DT_BLOCK):
        return 0
    if disk_template == constants.DT_DRBD8:
        return sum(size + DRBD_META_SIZE for size in sizes)
    return sum(sizes)


def _Fail(msg: str, code: str = errors.ECODE_INVAL) -> errors.OpPrereqError:
    return errors.OpPrereqError(msg, code)


# --- requests ------------------------------------------------------------------------

class IARequestBase:
    """One request type; subclasses set MODE."""

    MODE: ClassVar[str] = ""

    def GetRequest(self, cfg: Any) -> dict[str, Any]:
        """The ``request`` part of the input (without ``type``)."""
        raise NotImplementedError

    def ValidateResult(self, ia: IAllocator, result: Any) -> None:
        """OpPrereqError unless ``result`` answers this request."""
        raise NotImplementedError

    def AllocatorParams(self) -> dict[str, Any]:
        """Options this request gives the allocator program (``--name``)."""
        return {}


def _CheckNodeNames(ia: IAllocator, names: Any, what: str,
                    group: str | None = None) -> None:
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise _Fail(f"Allocator '{ia.name}' returned an invalid {what} node list:"
                    f" {names!r}", errors.ECODE_ENVIRON)
    for name in names:
        node = ia.cfg.GetNodeInfoByName(name)
        if node is None:
            raise _Fail(f"Allocator '{ia.name}' chose node '{name}', which does not"
                        " exist", errors.ECODE_ENVIRON)
        for state, bad in (("offline", node.offline), ("drained", node.drained),
                           ("not vm_capable", not node.vm_capable)):
            if bad:
                raise _Fail(f"Allocator '{ia.name}' chose node {name}, which is"
                            f" {state}", errors.ECODE_ENVIRON)
        if group is not None and node.group != group:
            raise _Fail(f"Allocator '{ia.name}' chose node {name}, which is not in"
                        f" the instance's node group", errors.ECODE_ENVIRON)
    if len(set(names)) != len(names):
        raise _Fail(f"Allocator '{ia.name}' chose the same node twice: {names}",
                    errors.ECODE_ENVIRON)


@dataclasses.dataclass
class IAReqInstanceAlloc(IARequestBase):
    """Place a new instance."""
    name: str
    memory: int
    spindle_use: int
    disks: list[dict[str, Any]]
    disk_template: str
    os: str
    tags: list[str]
    nics: list[dict[str, Any]]
    vcpus: int
    hypervisor: str
    node_whitelist: list[str] | None = None
    group_name: str | None = None

    MODE: ClassVar[str] = constants.IALLOCATOR_MODE_ALLOC

    @property
    def required_nodes(self) -> int:
        return 2 if self.disk_template in constants.DTS_INT_MIRROR else 1

    def GetRequest(self, cfg: Any) -> dict[str, Any]:
        """Ganeti's allocate request."""
        disks = [{constants.IDISK_SIZE: int(d[constants.IDISK_SIZE]),
                  constants.IDISK_MODE: d.get(constants.IDISK_MODE, constants.DISK_RDWR),
                  **({constants.IDISK_SPINDLES: d[constants.IDISK_SPINDLES]}
                     if d.get(constants.IDISK_SPINDLES) is not None else {})}
                 for d in self.disks]
        request = {
            "name": self.name, "disk_template": self.disk_template, "tags": self.tags,
            "os": self.os, "vcpus": self.vcpus, "memory": self.memory,
            "spindle_use": self.spindle_use, "disks": disks,
            "disk_space_total": ComputeDiskSize(self.disk_template, self.disks),
            "nics": self.nics, "required_nodes": self.required_nodes,
            "hypervisor": self.hypervisor,
        }
        if self.group_name:
            request["group_name"] = self.group_name
        return request

    def ValidateResult(self, ia: IAllocator, result: Any) -> None:
        """The required number of usable nodes, in one group."""
        _CheckNodeNames(ia, result, "allocation")
        if len(result) != self.required_nodes:
            raise _Fail(f"Allocator '{ia.name}' returned {len(result)} node(s) instead"
                        f" of {self.required_nodes}: {result}", errors.ECODE_ENVIRON)
        groups = {ia.cfg.GetNodeInfoByName(name).group for name in result}
        if len(groups) > 1:
            raise _Fail(f"Allocator '{ia.name}' chose nodes of different node groups:"
                        f" {result}", errors.ECODE_ENVIRON)
        if self.node_whitelist is not None:
            outside = [n for n in result if n not in self.node_whitelist]
            if outside:
                raise _Fail(f"Allocator '{ia.name}' chose node(s) outside the allowed"
                            f" ones: {', '.join(outside)}", errors.ECODE_ENVIRON)


@dataclasses.dataclass
class IAReqMultiInstanceAlloc(IARequestBase):
    """Place several new instances."""
    instances: list[IAReqInstanceAlloc]

    MODE: ClassVar[str] = constants.IALLOCATOR_MODE_MULTI_ALLOC

    def GetRequest(self, cfg: Any) -> dict[str, Any]:
        """Ganeti's multi-allocate request: one allocate request each."""
        return {"instances": [dict(req.GetRequest(cfg), type=constants.IALLOCATOR_MODE_ALLOC)
                              for req in self.instances]}

    def ValidateResult(self, ia: IAllocator, result: Any) -> None:
        """[[[name, [nodes]], ...], [failed names]]."""
        if not (isinstance(result, list) and len(result) == 2
                and isinstance(result[0], list) and isinstance(result[1], list)):
            raise _Fail(f"Allocator '{ia.name}' returned an invalid multi-allocate"
                        f" result: {result!r}", errors.ECODE_ENVIRON)
        by_name = {req.name: req for req in self.instances}
        for entry in result[0]:
            if not (isinstance(entry, list) and len(entry) == 2
                    and entry[0] in by_name):
                raise _Fail(f"Allocator '{ia.name}' returned an invalid allocation:"
                            f" {entry!r}", errors.ECODE_ENVIRON)
            by_name[entry[0]].ValidateResult(ia, entry[1])
        unknown = [name for name in result[1] if name not in by_name]
        if unknown:
            raise _Fail(f"Allocator '{ia.name}' reported unknown instances as failed:"
                        f" {unknown}", errors.ECODE_ENVIRON)


@dataclasses.dataclass
class IAReqRelocate(IARequestBase):
    """A new secondary node for a DRBD instance (or a new node for a
    shared-storage one), away from ``relocate_from_node_uuids``."""
    inst_uuid: str
    relocate_from_node_uuids: list[str]

    MODE: ClassVar[str] = constants.IALLOCATOR_MODE_RELOC

    def GetRequest(self, cfg: Any) -> dict[str, Any]:
        """Ganeti's relocate request."""
        inst = cfg.GetInstanceInfo(self.inst_uuid)
        if inst is None:
            raise errors.ProgrammerError(f"Unknown instance '{self.inst_uuid}'")
        template = cfg.GetInstanceDiskTemplate(inst.uuid)
        if template not in constants.DTS_MIRRORED:
            raise _Fail("Can't relocate non-mirrored instances", errors.ECODE_INVAL)
        secondaries = cfg.GetInstanceSecondaryNodes(inst.uuid)
        if template in constants.DTS_INT_MIRROR and len(secondaries) != 1:
            raise _Fail("Instance does not have exactly one secondary node",
                        errors.ECODE_STATE)
        disks = [{constants.IDISK_SIZE: d.size, constants.IDISK_MODE: d.mode}
                 for d in cfg.GetInstanceDisks(inst.uuid)]
        return {"name": inst.name,
                "disk_space_total": ComputeDiskSize(template, disks),
                "required_nodes": 1,
                "relocate_from": [NodeName(cfg, uuid)
                                  for uuid in self.relocate_from_node_uuids]}

    def ValidateResult(self, ia: IAllocator, result: Any) -> None:
        """One usable node, not one it moves from, in the instance's group."""
        cfg = ia.cfg
        inst = cfg.GetInstanceInfo(self.inst_uuid)
        group = cfg.GetNodeInfo(inst.primary_node).group
        _CheckNodeNames(ia, result, "relocation", group)
        if len(result) != 1:
            raise _Fail(f"Allocator '{ia.name}' returned {len(result)} node(s) instead"
                        f" of 1: {result}", errors.ECODE_ENVIRON)
        bad = {NodeName(cfg, uuid) for uuid in self.relocate_from_node_uuids}
        if result[0] in bad or cfg.GetNodeInfoByName(result[0]).uuid == inst.primary_node:
            raise _Fail(f"Allocator '{ia.name}' chose node {result[0]}, which the"
                        " instance must leave or already uses", errors.ECODE_ENVIRON)


def _CheckEvacResult(ia: IAllocator, result: Any) -> None:
    """[moved, failed, jobs]: moved = [[name, group, [nodes]]], failed =
    [[name, reason]], jobs = [[opcode dict, ...], ...]."""
    ok = (isinstance(result, list) and len(result) == 3
          and all(isinstance(part, list) for part in result))
    if ok:
        moved, failed, jobs = result
        ok = (all(isinstance(m, list) and len(m) == 3 and isinstance(m[0], str)
                  and isinstance(m[2], list) for m in moved)
              and all(isinstance(f, list) and len(f) == 2 for f in failed)
              and all(isinstance(job, list)
                      and all(isinstance(op, dict) and "OP_ID" in op for op in job)
                      for job in jobs))
    if not ok:
        raise _Fail(f"Allocator '{ia.name}' returned an invalid evacuation result:"
                    f" {result!r}", errors.ECODE_ENVIRON)
    for _, _, nodes in result[0]:
        _CheckNodeNames(ia, nodes, "evacuation")


@dataclasses.dataclass
class IAReqNodeEvac(IARequestBase):
    """Move instances off their nodes (``evac_mode``: primary-only,
    secondary-only, all)."""
    instances: list[str]
    evac_mode: str
    #: passed to the allocator as --ignore-soft-errors (gnt-node evacuate)
    ignore_soft_errors: bool = False

    MODE: ClassVar[str] = constants.IALLOCATOR_MODE_NODE_EVAC

    def AllocatorParams(self) -> dict[str, Any]:
        """``--ignore-soft-errors`` when asked for."""
        return {"ignore-soft-errors": None} if self.ignore_soft_errors else {}

    def GetRequest(self, cfg: Any) -> dict[str, Any]:
        """Ganeti's node-evacuate request."""
        if self.evac_mode not in constants.NODE_EVAC_MODES:
            raise _Fail(f"Invalid evacuation mode '{self.evac_mode}'")
        return {"instances": list(self.instances), "evac_mode": self.evac_mode}

    def ValidateResult(self, ia: IAllocator, result: Any) -> None:
        """[moved, failed, jobs]."""
        _CheckEvacResult(ia, result)


@dataclasses.dataclass
class IAReqGroupChange(IARequestBase):
    """Move instances to other node groups (``target_groups``: UUIDs, or
    empty for any)."""
    instances: list[str]
    target_groups: list[str]

    MODE: ClassVar[str] = constants.IALLOCATOR_MODE_CHG_GROUP

    def GetRequest(self, cfg: Any) -> dict[str, Any]:
        """Ganeti's change-group request."""
        return {"instances": list(self.instances),
                "target_groups": list(self.target_groups)}

    def ValidateResult(self, ia: IAllocator, result: Any) -> None:
        """[moved, failed, jobs]."""
        _CheckEvacResult(ia, result)


# --- the allocator ----------------------------------------------------------------------

class IAllocator:
    """Build the input for ``req``, run allocator ``name``, check the answer.

    After :meth:`Run`: ``in_text`` (the input), ``out_text`` (the raw
    answer), ``success``, ``info`` and ``result``.
    """

    def __init__(self, cfg: Any, rpc_runner: Any, req: IARequestBase) -> None:
        self.cfg = cfg
        self.rpc = rpc_runner
        self.req = req
        self.name = ""
        self.in_text = ""
        self.out_text = ""
        self.success = False
        self.info = ""
        self.result: Any = None
        from ganeti.cmdlib import iallocator_data
        self.in_data = iallocator_data.ComputeClusterData(cfg, rpc_runner, req)
        self.in_text = serializer.DumpJson(self.in_data)

    def Run(self, name: str, validate: bool = True) -> None:
        """Run the allocator on the master node and parse its answer.

        OpPrereqError (ECODE_ENVIRON) if it cannot be run or its answer is
        not an answer, or (``validate``) the result does not fit the
        request. A well-formed "no solution" answer only sets
        ``success`` False: the caller words that error.
        """
        self.name = name
        params = self.cfg.GetClusterInfo().default_iallocator_params or {}
        if name != self.cfg.GetClusterInfo().default_iallocator:
            params = {}
        params = {**params, **self.req.AllocatorParams()}
        master = self.cfg.GetMasterNode()
        result = self.rpc.call_iallocator_runner(master, name, self.in_text, params)
        if result.fail_msg:
            raise _Fail(f"Failure while running the iallocator script '{name}':"
                        f" {result.fail_msg}", errors.ECODE_ENVIRON)
        self.out_text = result.payload or ""
        self._ParseAnswer(validate)

    def _ParseAnswer(self, validate: bool) -> None:
        name = self.name
        try:
            answer = serializer.LoadJson(self.out_text)
        except errors.ParseError as err:
            raise _Fail(f"Can't parse the answer of iallocator '{name}': {err}",
                        errors.ECODE_ENVIRON) from err
        if not isinstance(answer, dict):
            raise _Fail(f"The answer of iallocator '{name}' is not a dictionary",
                        errors.ECODE_ENVIRON)
        if "result" not in answer and "nodes" in answer:
            answer["result"] = answer.pop("nodes")  # pre-2.x allocators, as Ganeti
        for key in ("success", "info", "result"):
            if key not in answer:
                raise _Fail(f"The answer of iallocator '{name}' lacks '{key}'",
                            errors.ECODE_ENVIRON)
        if not isinstance(answer["success"], bool):
            raise _Fail(f"Iallocator '{name}' answered a non-boolean 'success':"
                        f" {answer['success']!r}", errors.ECODE_ENVIRON)
        self.success = answer["success"]
        self.info = str(answer["info"])
        self.result = answer["result"]
        if self.success and validate:
            self.req.ValidateResult(self, self.result)

    def RunOrFail(self, name: str, what: str) -> Any:
        """Run, and OpPrereqError (ECODE_NORES) naming the allocator and its
        reason when it found no solution; returns the result."""
        self.Run(name)
        if not self.success:
            raise _Fail(f"Can't compute {what} using iallocator '{name}': {self.info}",
                        errors.ECODE_NORES)
        return self.result


def ResolveIallocator(cfg: Any, name: str | None) -> str | None:
    """The allocator to use: ``name``, the cluster default for Ganeti's
    shortcut ".", or None when none is named."""
    if name == constants.DEFAULT_IALLOCATOR_SHORTCUT:
        default = cfg.GetClusterInfo().default_iallocator
        if not default:
            raise _Fail("No iallocator was given and the cluster has no default"
                        " iallocator (gnt-cluster modify --default-iallocator)",
                        errors.ECODE_INVAL)
        return default
    return name or None


def DefaultIallocator(cfg: Any) -> str | None:
    """The cluster's default allocator, or None."""
    return cfg.GetClusterInfo().default_iallocator or None
