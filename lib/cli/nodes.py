"""Selecting the online nodes a command acts on (Ganeti's GetOnlineNodes).

``gnt-cluster command``/``copyfile`` and ``gnt-node restricted-command``
take node names (``-n`` or arguments) and a node group (``-g``); offline
nodes are skipped with a note on standard error, as in Ganeti.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ganeti import constants, errors
from ganeti.cli.base import GetClient, ToStderr

_FIELDS = ["name", "offline", "pip", "sip", "master",
           f"ndp/{constants.ND_SSH_PORT}"]


@dataclass(frozen=True)
class OnlineNode:
    """A node selected by :func:`GetOnlineNodes`."""

    name: str
    primary_ip: str
    secondary_ip: str
    ssh_port: int
    master: bool


def _Matches(full: str, wanted: str) -> bool:
    return full == wanted or full.startswith(wanted + ".")


def GetOnlineNodes(nodes: Sequence[str] | None = None, cl: Any = None,
                   nodegroup: str | None = None, filter_master: bool = False
                   ) -> list[OnlineNode]:
    """The online nodes among ``nodes`` (all when empty), in the master's
    order, optionally only those of ``nodegroup`` (name or UUID) and without
    the master (``filter_master``).

    @raise errors.OpPrereqError: (ECODE_NOENT) for a name no node has
    """
    cl = cl if cl is not None else GetClient()
    clauses: list[Any] = []
    if nodes:
        clauses.append(["|"] + [["=", "name", name] for name in nodes])
    if nodegroup:
        clauses.append(["|", ["=", "group", nodegroup], ["=", "group.uuid", nodegroup]])
    qfilter: Any = None
    if len(clauses) == 1:
        qfilter = clauses[0]
    elif clauses:
        qfilter = ["&"] + clauses
    result = cl.Query(constants.QR_NODE, _FIELDS, qfilter)
    rows = [[value for _, value in row] for row in result.get("data", [])]
    found = [row[0] for row in rows]
    missing = [name for name in nodes or []
               if not any(_Matches(full, name) for full in found)]
    if missing and not nodegroup:
        raise errors.OpPrereqError(f"Node(s) not known: {', '.join(missing)}",
                                   errors.ECODE_NOENT)
    offline = [row[0] for row in rows if row[1]]
    if offline:
        ToStderr("Note: skipping offline node(s): %s", ", ".join(offline))
    selected = []
    for name, is_offline, pip, sip, master, ssh_port in rows:
        if is_offline or (filter_master and master):
            continue
        selected.append(OnlineNode(
            name=name, primary_ip=pip, secondary_ip=sip or pip,
            ssh_port=int(ssh_port) if isinstance(ssh_port, int)
            else constants.NDC_DEFAULTS[constants.ND_SSH_PORT],  # type: ignore[arg-type]
            master=bool(master)))
    return selected
