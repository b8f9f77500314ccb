"""Node health maintenance (the cluster parameter ``maintain_node_health``).

A node that the master candidates' confd daemons declare offline should run
nothing: it may have been declared offline because it was unreachable, and
its instances may since have been started elsewhere. The watcher of such a
node asks every candidate's confd for this node's role; when a majority of
the answers says "offline" it stops every instance the node's hypervisors
run. Block devices: Ganeti also shuts down DRBD minors here; this
implementation has no DRBD, and file, shared-file and diskless disks need
no shutting down once their instance is stopped.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from ganeti import constants, errors, hypervisor, ssconf, utils
from ganeti.confd import client as confd_client

#: Seconds to wait for the candidates' answers
CONFD_TIMEOUT = 5.0


def ShouldRun(ss: ssconf.SimpleStore | None = None) -> bool:
    """Whether the cluster asks the watcher to maintain node health."""
    ss = ss or ssconf.SimpleStore()
    try:
        return ss.GetMaintainNodeHealth()
    except errors.ConfigurationError:
        return False


def ConfdPeers(ss: ssconf.SimpleStore | None = None) -> list[tuple[str, int]]:
    """The master candidates' confd endpoints, from ssconf."""
    ss = ss or ssconf.SimpleStore()
    names = ss.GetMasterCandidates()
    endpoints = ss.GetConfdEndpoints()
    ips = dict(line.split(None, 1) for line in ss.GetNodePrimaryIPList()
               if len(line.split()) == 2)
    peers = []
    for name in names:
        if name in endpoints:
            peers.append(endpoints[name])
        elif name in ips:
            peers.append((ips[name], constants.DEFAULT_CONFD_PORT))
    return peers


def QueryOwnRole(node_name: str, peers: Sequence[tuple[str, int]],
                 hmac_key: bytes, timeout: float = CONFD_TIMEOUT) -> list[Any]:
    """The roles of ``node_name`` the confd ``peers`` answer (one per answer)."""
    roles: list[Any] = []

    def _Callback(up: confd_client.ConfdUpcallPayload) -> None:
        reply = up.server_reply
        if up.type == confd_client.UPCALL_REPLY and reply is not None and \
                reply.status == constants.CONFD_REPL_STATUS_OK:
            roles.append(reply.answer)

    with confd_client.ConfdClient(hmac_key, peers, _Callback) as client:
        request = confd_client.ConfdClientRequest(
            type=constants.CONFD_REQ_NODE_ROLE_BYNAME, query=node_name)
        client.SendRequest(request, coverage=0)
        client.WaitForReply(request.rsalt, timeout=timeout)
    return roles


def IsDeclaredOffline(roles: Sequence[Any], asked: int) -> bool:
    """Whether a majority of the ``asked`` candidates answered "offline"."""
    offline = sum(1 for role in roles if role == constants.CONFD_NODE_ROLE_OFFLINE)
    return asked > 0 and offline >= asked // 2 + 1


def StopAllInstances(hypervisors: Sequence[str],
                     get_hv: Callable[[str], Any] = hypervisor.GetHypervisor
                     ) -> list[str]:
    """Stop every instance the node's ``hypervisors`` run; return their names."""
    stopped = []
    for hv_name in hypervisors:
        try:
            hv = get_hv(hv_name)
            names = hv.ListInstances()
        except errors.GenericError as err:
            logging.error("Cannot list the instances of hypervisor %s: %s", hv_name, err)
            continue
        for name in names:
            logging.info("Node health: stopping instance %s (%s)", name, hv_name)
            try:
                hv.StopInstance(name=name, force=True)
                stopped.append(name)
            except errors.GenericError as err:
                logging.error("Cannot stop instance %s: %s", name, err)
    return stopped


def Maintain(ss: ssconf.SimpleStore | None = None) -> list[str]:
    """Stop this node's instances if the candidates declare it offline;
    return the names stopped."""
    ss = ss or ssconf.SimpleStore()
    me = utils.Hostname.GetSysName()
    try:
        peers = ConfdPeers(ss)
        key = confd_client.ReadHmacKey()
    except errors.GenericError as err:
        logging.warning("Node health: cannot ask the master candidates: %s", err)
        return []
    if not peers:
        logging.warning("Node health: no master candidate's confd is known")
        return []
    try:
        roles = QueryOwnRole(me, peers, key)
    except errors.GenericError as err:
        logging.warning("Node health: confd query failed: %s", err)
        return []
    if not IsDeclaredOffline(roles, len(peers)):
        logging.debug("Node health: roles from confd %s; nothing to do", roles)
        return []
    logging.warning("Node health: %d of %d master candidates declare this node"
                    " offline; stopping its instances", len(roles), len(peers))
    return StopAllInstances(ss.GetHypervisorList())
