"""Node power: out-of-band commands (``gnt-node power``, ``health``) and
``gnt-node powercycle``.

:class:`LUOobCommand` runs the out-of-band helper of each node (its
``oob_program`` node parameter, filled from its group's and the cluster's;
empty means the node has none) on the master node, as
``PROGRAM COMMAND NODE_NAME`` (RPC ``run_oob``, :mod:`ganeti.backend.oob`),
and checks the JSON it prints: ``power-status`` answers
``{"powered": true|false}``, ``health`` a list of ``[item, status]`` pairs
whose status is one of ``OK``, ``WARNING``, ``CRITICAL``, ``UNKNOWN``, the
power commands nothing. The result has one row per node, sorted by name:
``[(RS_NORMAL, name), (status, answer)]``, where the status is
``RS_UNAVAIL`` for a node without a helper and ``RS_NODATA`` when the
helper failed, could not run, timed out or answered something else than
the command's shape; each such failure is a warning naming the node and
the helper. One node's failure does not stop the others.

The rules are Ganeti's: ``power-off`` and ``power-cycle`` never touch the
master (named, it is refused with the command line to run by hand; with no
names it is left out); ``power-off`` needs the node marked offline unless
``ignore_status``; a successful ``power-on``/``power-off`` records the
node's ``powered`` state (the state of record), while ``power-status``
only logs a difference; ``power_delay`` seconds pass between two nodes
powered on, so that they do not all draw their peak current at once.

:class:`LUNodePowercycle` asks the node daemon to reset its node hard
through the cluster's default hypervisor (RPC ``node_powercycle``); the
master needs ``force``.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from ganeti import constants, errors, locking, utils
from ganeti.cmdlib.base import FeedbackFn, NoHooksLU

#: Commands never run on the master node
SKIP_MASTER = frozenset([constants.OOB_POWER_OFF, constants.OOB_POWER_CYCLE])
#: Commands that only read (node locks shared)
READ_ONLY = frozenset([constants.OOB_POWER_STATUS, constants.OOB_HEALTH])
#: Commands answering nothing
NO_ANSWER = frozenset([constants.OOB_POWER_ON, constants.OOB_POWER_OFF,
                       constants.OOB_POWER_CYCLE])

#: Replaced by the tests to observe the power delay
_sleep_fn = time.sleep


def OobProgram(cfg: Any, node: Any) -> str | None:
    """The node's out-of-band helper (filled node parameter), or None."""
    program = cfg.GetNdParams(node).get(constants.ND_OOB_PROGRAM)
    return program or None


def CheckOobAnswer(command: str, output: Any) -> Any:
    """The helper's answer to ``command`` decoded from its ``output``.

    @raise errors.OpExecError: saying what is wrong with the answer
    """
    text = (output or "").strip() if isinstance(output, str) else output
    if command in NO_ANSWER:
        if text in ("", None, "null"):
            return None
        raise errors.OpExecError(f"{command} is expected to print nothing, got"
                                 f" {_Short(text)}")
    if not text:
        raise errors.OpExecError(f"{command} printed nothing; JSON expected")
    try:
        answer = json.loads(text) if isinstance(text, str) else text
    except ValueError as err:
        raise errors.OpExecError(f"{command} printed invalid JSON ({err}):"
                                 f" {_Short(text)}") from None
    if command == constants.OOB_POWER_STATUS:
        if not (isinstance(answer, dict)
                and isinstance(answer.get(constants.OOB_POWER_STATUS_POWERED), bool)):
            raise errors.OpExecError(
                f"{command} is expected to answer {{\"powered\": true|false}}, got"
                f" {_Short(text)}")
        return {constants.OOB_POWER_STATUS_POWERED:
                answer[constants.OOB_POWER_STATUS_POWERED]}
    if command == constants.OOB_HEALTH:
        if not isinstance(answer, list):
            raise errors.OpExecError(f"{command} is expected to answer a list of"
                                     f" [item, status] pairs, got {_Short(text)}")
        for entry in answer:
            if not (isinstance(entry, list) and len(entry) == 2
                    and isinstance(entry[0], str)):
                raise errors.OpExecError(f"{command} answered {_Short(entry)}"
                                         " where an [item, status] pair belongs")
            if entry[1] not in constants.OOB_STATUSES:
                raise errors.OpExecError(
                    f"health item '{entry[0]}' has invalid status {_Short(entry[1])}"
                    f" (not one of {utils.CommaJoin(sorted(constants.OOB_STATUSES))})")
        return answer
    raise errors.ProgrammerError(f"Unknown out-of-band command {command!r}")


def _Short(value: Any, limit: int = 200) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return repr(text if len(text) <= limit else text[:limit] + "...")


class LUOobCommand(NoHooksLU):
    """Run an out-of-band command for nodes; one result row per node."""

    REQ_BGL = False
    cfg: Any

    def CheckArguments(self) -> None:
        """Positive timeout, non-negative delay."""
        if self.op.timeout <= 0:
            raise errors.OpPrereqError(
                f"The out-of-band timeout must be positive, not {self.op.timeout}",
                errors.ECODE_INVAL)
        if self.op.power_delay < 0:
            raise errors.OpPrereqError(
                f"The power delay must not be negative, not {self.op.power_delay}",
                errors.ECODE_INVAL)

    def ExpandNames(self) -> None:
        """Resolve the named nodes (none: all) and lock them."""
        if self.cfg is None:
            raise errors.OpPrereqError("Cannot look up nodes without a configuration",
                                       errors.ECODE_ENVIRON)
        self.named = bool(self.op.node_names)
        if self.named:
            uuids, names = [], []
            for name in self.op.node_names:
                expanded = self.cfg.ExpandNodeName(name)
                node = self.cfg.GetNodeInfoByName(expanded) if expanded else None
                if node is None:
                    raise errors.OpPrereqError(f"Node '{name}' not known",
                                               errors.ECODE_NOENT)
                if node.uuid not in uuids:
                    uuids.append(node.uuid)
                    names.append(node.name)
            self.op.node_uuids, self.op.node_names = uuids, names
            locks: Any = sorted(uuids)
        else:
            locks = locking.ALL_SET
        self.needed_locks = {locking.LEVEL_NODE: locks}
        self.share_locks[locking.LEVEL_NODE] = int(self.op.command in READ_ONLY)

    def CheckPrereq(self) -> None:
        """The master and offline rules (module documentation)."""
        cfg, command = self.cfg, self.op.command
        master_uuid = cfg.GetMasterNode()
        if self.named:
            uuids = list(self.op.node_uuids)
            if command in SKIP_MASTER and master_uuid in uuids:
                master = cfg.GetNodeInfo(master_uuid)
                program = OobProgram(cfg, master)
                if program:
                    hint = (f"run '{program} {command} {master.name}' if you want to"
                            " operate on the master regardless")
                else:
                    hint = "it does not support out-of-band operations"
                raise errors.OpPrereqError(
                    f"Operating on the master node {master.name} is not allowed for"
                    f" {command}; {hint}", errors.ECODE_INVAL)
        else:
            uuids = [uuid for uuid in cfg.GetNodeList()
                     if not (command in SKIP_MASTER and uuid == master_uuid)]
        self.nodes = []
        for uuid in uuids:
            node = cfg.GetNodeInfo(uuid)
            if node is None:
                raise errors.OpPrereqError(f"Node '{uuid}' not known", errors.ECODE_NOENT)
            if (command == constants.OOB_POWER_OFF and not self.op.ignore_status
                    and not node.offline):
                raise errors.OpPrereqError(
                    f"Cannot power off node {node.name} because it is not marked"
                    " offline", errors.ECODE_STATE)
            self.nodes.append(node)
        self.nodes = utils.NiceSort(self.nodes, key=lambda n: n.name)
        self.master_uuid = master_uuid

    def Exec(self, feedback_fn: FeedbackFn) -> list[list[tuple[int, Any]]]:
        """Run the helper for each node in name order."""
        command = self.op.command
        result: list[list[tuple[int, Any]]] = []
        powered_on = 0
        for node in self.nodes:
            row: list[tuple[int, Any]] = [(constants.RS_NORMAL, node.name)]
            result.append(row)
            program = OobProgram(self.cfg, node)
            if not program:
                if self.named:
                    self.LogWarning("Node '%s' does not support out-of-band commands"
                                    " (its oob_program node parameter is empty)",
                                    node.name)
                row.append((constants.RS_UNAVAIL, None))
                continue
            if command == constants.OOB_POWER_ON and powered_on:
                _sleep_fn(self.op.power_delay)
            logging.info("Running out-of-band command %s for node %s: %s",
                         command, node.name, program)
            answer = self._Run(program, node.name)
            if answer is _FAILED:
                row.append((constants.RS_NODATA, None))
                continue
            if command == constants.OOB_POWER_ON:
                powered_on += 1
            self._Record(node, answer, feedback_fn)
            row.append((constants.RS_NORMAL, answer))
        return result

    def _Run(self, program: str, node_name: str) -> Any:
        """The checked answer of the helper for one node, or _FAILED."""
        command = self.op.command
        res = self.rpc.call_run_oob(self.master_uuid, program, command, node_name,
                                    self.op.timeout)
        if res.fail_msg:
            self.LogWarning("Out-of-band command %s for node '%s' failed (helper"
                            " %s): %s", command, node_name, program, res.fail_msg)
            return _FAILED
        try:
            answer = CheckOobAnswer(command, res.payload)
        except errors.OpExecError as err:
            self.LogWarning("Out-of-band helper %s gave an invalid answer for node"
                            " '%s': %s", program, node_name, err)
            return _FAILED
        if command == constants.OOB_HEALTH:
            for item, status in answer:
                if status in (constants.OOB_STATUS_WARNING, constants.OOB_STATUS_CRITICAL):
                    self.LogWarning("Item '%s' on node '%s' has status '%s'",
                                    item, node_name, status)
        return answer

    def _Record(self, node: Any, answer: Any, feedback_fn: FeedbackFn) -> None:
        """Update the node's state of record after a successful command."""
        command = self.op.command
        if command == constants.OOB_POWER_STATUS:
            powered = answer[constants.OOB_POWER_STATUS_POWERED]
            if powered != bool(node.powered):
                logging.warning("Recorded power state (%s) of node '%s' does not match"
                                " the actual power state (%s)", node.powered,
                                node.name, powered)
            return
        wanted = {constants.OOB_POWER_ON: True,
                  constants.OOB_POWER_OFF: False}.get(command)
        if wanted is not None and node.powered != wanted:
            # a fresh copy: the helper may have run for a while
            node = self.cfg.GetNodeInfo(node.uuid) or node
            logging.info("Recording node %s as %s", node.name,
                         "powered" if wanted else "not powered")
            node.powered = wanted
            self.cfg.Update(node, feedback_fn)


#: Marker for a failed helper run (None is a valid answer)
_FAILED = object()


class LUNodePowercycle(NoHooksLU):
    """Hard-reset a node through its hypervisor."""

    REQ_BGL = False
    cfg: Any

    def CheckArguments(self) -> None:
        """Resolve the node; the master needs force."""
        if self.cfg is None:
            raise errors.OpPrereqError("Cannot look up nodes without a configuration",
                                       errors.ECODE_ENVIRON)
        expanded = self.cfg.ExpandNodeName(self.op.node_name)
        node = self.cfg.GetNodeInfoByName(expanded) if expanded else None
        if node is None:
            raise errors.OpPrereqError(f"Node '{self.op.node_name}' not known",
                                       errors.ECODE_NOENT)
        self.op.node_uuid, self.op.node_name = node.uuid, node.name
        if node.uuid == self.cfg.GetMasterNode() and not self.op.force:
            raise errors.OpPrereqError("The node is the master and the force"
                                       " parameter was not set", errors.ECODE_INVAL)

    def ExpandNames(self) -> None:
        """No locks: a node needing a hard reset may have hung its jobs."""
        self.needed_locks = {}

    def Exec(self, feedback_fn: FeedbackFn) -> Any:
        """Ask the node to reset itself; return its message."""
        hv_name = self.cfg.GetHypervisorType()
        hvparams = self.cfg.GetClusterInfo().hvparams.get(hv_name, {})
        result = self.rpc.call_node_powercycle(self.op.node_uuid, hv_name, hvparams)
        result.Raise("Failed to schedule the reboot")
        return result.payload
