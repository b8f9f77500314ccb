"""Miscellaneous LUs: running restricted commands on nodes.

:class:`LURestrictedCommand` asks each named node to run one of the
programs its administrator put in the restricted commands directory
(RPC ``restricted_command``; the node checks the name, the directory and
the program, see :mod:`ganeti.backend.restricted_commands`). The node
locks are shared unless ``use_locking`` (``gnt-node restricted-command
--sync``) asks for them exclusively.
"""

from __future__ import annotations

from typing import Any

from ganeti import errors, locking
from ganeti.cmdlib.base import FeedbackFn, NoHooksLU


class LURestrictedCommand(NoHooksLU):
    """Run a restricted command on nodes; one (success, text) per node."""

    REQ_BGL = False

    def CheckArguments(self) -> None:
        """Refuse a name no node would accept, before contacting any."""
        from ganeti.backend import restricted_commands
        reason = restricted_commands.VerifyName(self.op.command)
        if reason:
            raise errors.OpPrereqError(reason, errors.ECODE_INVAL)

    def ExpandNames(self) -> None:
        """Resolve the node names and lock those nodes."""
        if self.cfg is None:
            raise errors.OpPrereqError("Cannot look up nodes without a configuration",
                                       errors.ECODE_ENVIRON)
        uuids, names = [], []
        for name in self.op.nodes:
            expanded = self.cfg.ExpandNodeName(name)
            node = self.cfg.GetNodeInfoByName(expanded) if expanded else None
            if node is None:
                raise errors.OpPrereqError(f"Node '{name}' not known", errors.ECODE_NOENT)
            uuids.append(node.uuid)
            names.append(node.name)
        self.op.node_uuids = uuids
        self.node_names = names
        self.needed_locks = {locking.LEVEL_NODE: sorted(set(uuids))}
        self.share_locks[locking.LEVEL_NODE] = 0 if self.op.use_locking else 1

    def Exec(self, feedback_fn: FeedbackFn) -> list[tuple[bool, str]]:
        """Call the nodes; a failure on one node does not stop the others."""
        results = self.rpc.call_restricted_command(self.op.node_uuids, self.op.command)
        answer: list[tuple[bool, str]] = []
        for uuid, name in zip(self.op.node_uuids, self.node_names):
            res: Any = results[uuid]
            if res.fail_msg:
                answer.append((False, f"Command '{self.op.command}' on node '{name}'"
                                      f" failed: {res.fail_msg}"))
            else:
                answer.append((True, str(res.payload)))
        return answer
