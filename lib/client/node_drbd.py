"""``gnt-node list-drbd NODE``: the DRBD minors the configuration gives a node.

As Ganeti's, the answer comes from the master candidates' confd
(``CONFD_REQ_NODE_DRBD``), not from the master daemon: it works on any
node while the master is down. Each row is (node, minor, instance,
"disk/N", role, peer node); the role is the node's role for the instance
in the configuration, not DRBD's live state. The columns are fixed (no
``-o``).
"""

from __future__ import annotations

from typing import Any

from ganeti import constants, errors
from ganeti.cli import NOHDR_OPT, SEP_OPT, ArgNode, ToStdout
from ganeti.cli.output import GenerateTable

#: Field name -> column title (Ganeti's)
HEADERS = {"node": "Node", "minor": "Minor", "instance": "Instance",
           "disk": "Disk", "role": "Role", "peer": "PeerNode"}
FIELDS = ["node", "minor", "instance", "disk", "role", "peer"]
#: Seconds to wait for the master candidates' answers
TIMEOUT = 5.0


def QueryNodeDrbd(node: str, query_fn: Any = None) -> list[list[Any]]:
    """The DRBD minor rows of ``node`` (the answer of the most recent
    configuration among the candidates').

    ``query_fn(hmac_key, peers, req_type, query)`` stands in for
    :func:`ganeti.confd.client.QueryOnce` in tests.

    @raise errors.OpPrereqError: no candidate answered, or the answer is an
        error (an unknown node)
    """
    from ganeti.confd import client as confd_client
    from ganeti.watcher.nodemaint import ConfdPeers
    peers = ConfdPeers()
    if not peers:
        raise errors.OpPrereqError("No master candidate's confd is known (ssconf)",
                                   errors.ECODE_ENVIRON)
    key = confd_client.ReadHmacKey()
    if query_fn is None:
        def query_fn(hmac_key: bytes, peer_list: Any, req_type: int,
                     query: Any) -> Any:
            return confd_client.QueryOnce(hmac_key, peer_list, req_type, query,
                                          timeout=TIMEOUT)
    result = query_fn(key, peers, constants.CONFD_REQ_NODE_DRBD, node)
    reply = result.reply
    if reply is None:
        raise errors.OpPrereqError(
            f"No answer from the master candidates' confd ({len(peers)} asked)",
            errors.ECODE_ENVIRON)
    if reply.status != constants.CONFD_REPL_STATUS_OK:
        raise errors.OpPrereqError(f"Cannot list the DRBD minors of {node}:"
                                   f" {reply.answer}", errors.ECODE_NOENT)
    return [list(row) for row in reply.answer]


def ListDrbd(opts: Any, args: list[str]) -> int:
    """Print the DRBD minors of a node."""
    rows = QueryNodeDrbd(args[0])
    headers = None if opts.no_headers else HEADERS
    for line in GenerateTable(headers, FIELDS, opts.separator, rows,
                              numfields=["minor"]):
        ToStdout("%s", line)
    return constants.EXIT_SUCCESS


COMMAND = (ListDrbd, [ArgNode(min=1, max=1)], [NOHDR_OPT, SEP_OPT],
           "[--no-headers] [--separator=SEP] <node>",
           "Query the list of used DRBD minors on the given node")
