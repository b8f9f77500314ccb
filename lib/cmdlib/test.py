"""LUs for testing the master itself (OpTestDelay, OpTestJqueue, OpTestAllocator,
OpTestOsParams, OpTestDummy) and the query opcodes (OpQuery, OpQueryFields)."""

from __future__ import annotations

import logging
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Callable
from typing import Any

from ganeti import constants
from ganeti import errors
from ganeti import locking
from ganeti.cmdlib.base import FeedbackFn, NoHooksLU


def _ExpandNodeNames(lu: NoHooksLU, names: list[str]) -> tuple[list[str], list[str]]:
    """(UUIDs, full names) of the named nodes; OpPrereqError for unknown ones."""
    if lu.cfg is None:
        raise errors.OpPrereqError("Cannot look up nodes without a configuration",
                                   errors.ECODE_ENVIRON)
    uuids, full = [], []
    for name in names:
        expanded = lu.cfg.ExpandNodeName(name)
        node = lu.cfg.GetNodeInfoByName(expanded) if expanded else None
        if node is None:
            raise errors.OpPrereqError(f"Node '{name}' not known", errors.ECODE_NOENT)
        uuids.append(node.uuid)
        full.append(node.name)
    return uuids, full


class LUTestDelay(NoHooksLU):
    """Sleep for a while on the master and/or on nodes.

    Used to test the job queue and the locking: with ``no_locks`` false the
    LU holds the locks of the nodes it sleeps on (and of the master node
    with ``on_master``) while it sleeps.
    """

    REQ_BGL = False

    def CheckArguments(self) -> None:
        """The duration must be positive; node sleeps need node RPC."""
        duration = self.op.duration
        if duration <= 0:
            raise errors.OpPrereqError(
                f"Duration must be greater than zero, got {duration!r}", errors.ECODE_INVAL)
        if self.op.on_nodes and self.rpc is None:
            raise errors.OpPrereqError(
                "Sleeping on nodes ("
                + ", ".join(self.op.on_nodes)
                + ") needs node RPC, which this master does not have", errors.ECODE_ENVIRON)

    def ExpandNames(self) -> None:
        """Lock the nodes slept on unless ``no_locks``."""
        self.needed_locks = {}
        if self.op.on_nodes:
            self.op.on_node_uuids, self.op.on_nodes = _ExpandNodeNames(self, self.op.on_nodes)
        if self.op.no_locks:
            return
        nodes: list[str] = list(self.op.on_node_uuids or [])
        if self.op.on_master and self.cfg is not None:
            nodes.append(self.cfg.GetMasterNode())
        if nodes:
            self.needed_locks[locking.LEVEL_NODE] = sorted(set(nodes))
            self.share_locks[locking.LEVEL_NODE] = 0

    def _Sleep(self) -> None:
        duration = float(self.op.duration)
        if self.op.on_master:
            if self.op.interruptible:
                if self.proc.WaitForInterrupt(duration):
                    raise errors.OpExecError("Delay interrupted")
            else:
                time.sleep(duration)
        if self.op.on_node_uuids:
            results = self.rpc.call_test_delay(self.op.on_node_uuids, duration)
            for node_uuid in self.op.on_node_uuids:
                results[node_uuid].Raise(f"Failure during rpc call to node {node_uuid}")

    def Exec(self, feedback_fn: FeedbackFn) -> None:
        """Sleep, ``repeat`` times if asked."""
        if self.op.repeat == 0:
            self._Sleep()
            return None
        for idx in range(self.op.repeat):
            self.LogInfo("Test delay iteration %d/%d", idx + 1, self.op.repeat)
            self._Sleep()
        return None


class LUTestJqueue(NoHooksLU):
    """Help a test client check what the job queue shows at each step.

    At each point asked for, the LU writes a log entry of type
    ``ELOG_JQUEUE_TEST`` with ``(socket path, JQT_* marker, argument)`` and
    waits until the client connects to that Unix socket and closes the
    connection again: while the LU waits, the client can look at the job
    (e.g. check that it is "waiting" during ExpandNames, "running" during
    Exec, or that the log holds the messages sent so far).
    """

    REQ_BGL = False

    CLIENT_CONNECT_TIMEOUT = 20.0
    CLIENT_CONFIRM_TIMEOUT = 60.0

    def _NotifyUsingSocket(self, send_fn: Callable[[str], None],
                           errcls: type[errors.GenericError]) -> None:
        tmpdir = tempfile.mkdtemp(prefix="ganeti-jqtest-")
        try:
            path = os.path.join(tmpdir, "sock")
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
                listener.bind(path)
                listener.listen(1)
                send_fn(path)
                listener.settimeout(self.CLIENT_CONNECT_TIMEOUT)
                try:
                    conn, _ = listener.accept()
                except OSError as err:
                    raise errcls(f"Test client did not connect: {err}") from err
                with conn:
                    conn.settimeout(self.CLIENT_CONFIRM_TIMEOUT)
                    try:
                        conn.recv(1)  # the client closes when done
                    except OSError as err:
                        raise errcls(f"Test client did not confirm: {err}") from err
        finally:
            shutil.rmtree(tmpdir, ignore_errors=True)

    def _Notify(self, prereq: bool, test: str, arg: Any) -> None:
        errcls = errors.OpPrereqError if prereq else errors.OpExecError

        def send(path: str) -> None:
            self.proc.Log(constants.ELOG_JQUEUE_TEST, (path, test, arg))

        self._NotifyUsingSocket(send, errcls)

    def CheckArguments(self) -> None:
        """Count the calls, so that ExpandNames can check the order."""
        self.checkargs_calls = getattr(self, "checkargs_calls", 0) + 1
        self.expandnames_calls = 0

    def ExpandNames(self) -> None:
        """Notify the client (job "waiting") and ask for the master node's lock."""
        if getattr(self, "checkargs_calls", 0) < 1:
            raise errors.ProgrammerError("CheckArguments was not called")
        self.expandnames_calls += 1
        if self.op.notify_waitlock:
            self._Notify(True, constants.JQT_EXPANDNAMES, None)
        self.LogInfo("Expanding names")
        self.needed_locks = {}
        if self.cfg is not None:
            # Some lock to wait for; which one does not matter
            self.needed_locks[locking.LEVEL_NODE] = [self.cfg.GetMasterNode()]

    def Exec(self, feedback_fn: FeedbackFn) -> bool:
        """Notify, send the messages, then fail if asked."""
        if self.expandnames_calls < 1:
            raise errors.ProgrammerError("ExpandNames was not called")
        if self.op.notify_exec:
            self._Notify(False, constants.JQT_EXEC, None)
        self.LogInfo("Executing")
        if self.op.log_messages:
            self._Notify(False, constants.JQT_STARTMSG, len(self.op.log_messages))
            for idx, msg in enumerate(self.op.log_messages):
                self.LogInfo("Sending log message %s", idx + 1)
                feedback_fn(constants.JQT_MSGPREFIX + msg)
                self._Notify(False, constants.JQT_LOGMSG, idx + 1)
        if self.op.fail:
            raise errors.OpExecError("Opcode failure was requested")
        logging.debug("LUTestJqueue done")
        return True


class LUTestAllocator(NoHooksLU):
    """Build an allocator request (direction "in": return the input
    message) or run the allocator on it ("out": return its answer as it
    gave it), for ``gnt-debug iallocator``."""

    REQ_BGL = False
    cfg: Any

    def ExpandNames(self) -> None:
        """Everything is read shared; nothing is changed."""
        self.share_locks = {level: 1 for level in locking.LEVELS}
        self.needed_locks = {}

    def _Instance(self, name: str) -> Any:
        from ganeti.cmdlib.instance_utils import ExpandInstance
        return ExpandInstance(self.cfg, name)

    def CheckPrereq(self) -> None:
        """The fields each mode needs, and the allocator for "out"."""
        op = self.op
        if op.direction == constants.IALLOCATOR_DIR_OUT and not op.iallocator:
            raise errors.OpPrereqError("Missing allocator name (--algorithm)",
                                       errors.ECODE_INVAL)
        if op.mode in (constants.IALLOCATOR_MODE_ALLOC,
                       constants.IALLOCATOR_MODE_MULTI_ALLOC):
            missing = [attr for attr in ("memory", "disks", "disk_template", "os",
                                         "vcpus") if getattr(op, attr) is None]
            if missing:
                raise errors.OpPrereqError(
                    f"Missing attribute(s) for {op.mode}: {', '.join(missing)}",
                    errors.ECODE_INVAL)
            for idx, disk in enumerate(op.disks):
                if not isinstance(disk, dict) or \
                        not isinstance(disk.get(constants.IDISK_SIZE), int):
                    raise errors.OpPrereqError(
                        f"Invalid disk {idx}: {disk!r} (a dict with an integer size"
                        " is needed)", errors.ECODE_INVAL)
            if op.mode == constants.IALLOCATOR_MODE_ALLOC and \
                    self.cfg.GetInstanceInfoByName(op.name) is not None:
                raise errors.OpPrereqError(f"Instance '{op.name}' already in the"
                                           " cluster", errors.ECODE_EXISTS)
        elif op.mode == constants.IALLOCATOR_MODE_RELOC:
            self._Instance(op.name)
        elif op.mode in (constants.IALLOCATOR_MODE_NODE_EVAC,
                         constants.IALLOCATOR_MODE_CHG_GROUP):
            if not op.instances:
                raise errors.OpPrereqError(f"Missing instances for {op.mode}",
                                           errors.ECODE_INVAL)
            op.instances = [self._Instance(name).name for name in op.instances]
            if op.mode == constants.IALLOCATOR_MODE_NODE_EVAC and not op.evac_mode:
                raise errors.OpPrereqError("Missing evacuation mode",
                                           errors.ECODE_INVAL)

    def _AllocReq(self, name: str) -> Any:
        from ganeti.cmdlib import iallocator as ia
        op = self.op
        return ia.IAReqInstanceAlloc(
            name=name, memory=op.memory, spindle_use=op.spindle_use, disks=op.disks,
            disk_template=op.disk_template, os=op.os, tags=list(op.tags or []),
            nics=list(op.nics or []), vcpus=op.vcpus,
            hypervisor=op.hypervisor or self.cfg.GetHypervisorType())

    def _Request(self) -> Any:
        from ganeti.cmdlib import iallocator as ia
        op, cfg = self.op, self.cfg
        if op.mode == constants.IALLOCATOR_MODE_ALLOC:
            return self._AllocReq(op.name)
        if op.mode == constants.IALLOCATOR_MODE_MULTI_ALLOC:
            return ia.IAReqMultiInstanceAlloc(
                instances=[self._AllocReq(f"{op.name}{idx}") for idx in range(op.count)])
        if op.mode == constants.IALLOCATOR_MODE_RELOC:
            inst = self._Instance(op.name)
            template = cfg.GetInstanceDiskTemplate(inst.uuid)
            away = list(cfg.GetInstanceSecondaryNodes(inst.uuid)) \
                if template in constants.DTS_INT_MIRROR else [inst.primary_node]
            return ia.IAReqRelocate(inst_uuid=inst.uuid, relocate_from_node_uuids=away)
        if op.mode == constants.IALLOCATOR_MODE_NODE_EVAC:
            return ia.IAReqNodeEvac(instances=op.instances, evac_mode=op.evac_mode)
        groups = [cfg.LookupNodeGroup(name) for name in op.target_groups or []]
        return ia.IAReqGroupChange(instances=op.instances, target_groups=groups)

    def Exec(self, feedback_fn: FeedbackFn) -> str:
        """The input message, or the allocator's answer."""
        from ganeti.cmdlib import iallocator as ia
        allocator = ia.IAllocator(self.cfg, self.rpc, self._Request())
        if self.op.direction == constants.IALLOCATOR_DIR_IN:
            return allocator.in_text
        allocator.Run(ia.ResolveIallocator(self.cfg, self.op.iallocator) or "",
                      validate=False)
        return allocator.out_text


class LUTestOsParams(NoHooksLU):
    """Check that secret OS parameters reach an LU (``gnt-debug test-osparams``).

    Reports the names of the parameters received, never their values, and
    fails when none arrived.
    """

    REQ_BGL = False

    def ExpandNames(self) -> None:
        self.needed_locks = {}

    def Exec(self, feedback_fn: FeedbackFn) -> None:
        secret = self.op.osparams_secret
        if not secret:
            raise errors.OpExecError("Secret OS parameters are not present")
        feedback_fn(f"Received {len(secret)} secret OS parameter(s):"
                    f" {', '.join(sorted(secret))}")
        return None


class LUTestDummy(NoHooksLU):
    """Do nothing with a given outcome (``OpTestDummy``, for testing the
    job queue and its clients): log ``messages``, fail when ``fail`` is
    true, submit ``submit_jobs`` (a list of jobs, each a list of opcodes)
    and answer their IDs, else answer ``result``."""

    REQ_BGL = False

    def ExpandNames(self) -> None:
        self.needed_locks = {}

    def CheckArguments(self) -> None:
        jobs = self.op.submit_jobs
        if jobs is not None and not (isinstance(jobs, list)
                                     and all(isinstance(job, list) for job in jobs)):
            raise errors.OpPrereqError("submit_jobs must be a list of jobs (lists of"
                                       " opcodes)", errors.ECODE_INVAL)

    def Exec(self, feedback_fn: FeedbackFn) -> Any:
        messages = self.op.messages
        if messages and not isinstance(messages, list):
            messages = [messages]
        for message in messages or []:
            feedback_fn(str(message))
        if self.op.fail:
            raise errors.OpExecError("Opcode failure was requested")
        if self.op.submit_jobs:
            from ganeti import opcodes
            jobs = [[op if isinstance(op, opcodes.OpCode) else opcodes.OpCode.LoadOpCode(op)
                     for op in job] for job in self.op.submit_jobs]
            return {constants.JOB_IDS_KEY: self.proc.SubmitManyJobs(jobs)}
        return self.op.result


class LUQuery(NoHooksLU):
    """A query through a job (``OpQuery``): the same answer as luxi's
    ``Query`` (queries take no locks here, ``use_locking`` or not)."""

    REQ_BGL = False

    def ExpandNames(self) -> None:
        self.needed_locks = {}

    def Exec(self, feedback_fn: FeedbackFn) -> dict[str, Any]:
        from ganeti import query
        return query.Query(self.op.what, self.op.fields, self.op.qfilter, self.context)


class LUQueryFields(NoHooksLU):
    """The field descriptions of a resource through a job (``OpQueryFields``)."""

    REQ_BGL = False

    def ExpandNames(self) -> None:
        self.needed_locks = {}

    def Exec(self, feedback_fn: FeedbackFn) -> dict[str, Any]:
        from ganeti import query
        return query.QueryFields(self.op.what, self.op.fields)
