"""Confd: fast, highly available, read-only configuration queries over UDP.

``ganeti-confd`` runs on every master candidate and answers queries from
an in-memory copy of the configuration (seed 003, "Ganeti Confd"). The
modules:

- :mod:`ganeti.confd.protocol`: the ``plj0`` envelope, requests and replies;
- :mod:`ganeti.confd.server`: the query processor (one handler per type);
- :mod:`ganeti.confd.client`: the client library (callbacks and a blocking
  helper);
- :mod:`ganeti.server.confd`: the daemon itself.

This module holds what the cluster tools need to find the daemons.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ganeti import utils

if TYPE_CHECKING:
    from ganeti import objects

__all__ = ["GetConfdPeers"]


def GetConfdPeers(config_data: objects.ConfigData,
                  include_offline: bool = False) -> list[tuple[str, int]]:
    """The confd endpoints of a cluster: ``[(address, port), ...]``.

    One per master candidate (the master included), in node name order;
    offline candidates are left out unless ``include_offline``. A node's
    address is its ``noded_address`` when set (virtual clusters), else its
    primary IP; its port is its ``confd_port`` or the default confd port.
    """
    peers = []
    nodes = utils.NiceSort(config_data.nodes.values(), key=lambda n: n.name)
    for node in nodes:
        if not node.master_candidate:
            continue
        if node.offline and not include_offline:
            continue
        peers.append(node.GetConfdEndpoint())
    return peers
