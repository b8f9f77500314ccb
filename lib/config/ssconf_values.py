"""The ssconf values: configuration facts every node keeps in small files.

:func:`ComputeSsconfValues` maps each constants.SS_* key to the text of its
``ssconf_<key>`` file. Lists are one item a line, in natural name order.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ganeti import constants, objects, utils
from ganeti.uidpool import FormatUidPool

__all__ = ["ComputeSsconfValues", "FormatUidPool"]


def _Lines(items: Iterable[Any]) -> str:
    return "\n".join(str(item) for item in items)


def ComputeSsconfValues(data: objects.ConfigData) -> dict[str, str]:
    """Return {ssconf key: file contents} for the configuration ``data``."""
    cluster = data.cluster
    nodes = utils.NiceSort(data.nodes.values(), key=lambda node: node.name)
    online = [node for node in nodes if not node.offline]
    candidates = [node for node in nodes if node.master_candidate]
    master = data.nodes.get(cluster.master_node)

    def _NodeSsh(node: objects.Node) -> int:
        group = data.nodegroups.get(node.group)
        filled = (cluster.FillND(node, group) if group is not None
                  else cluster.SimpleFillND(node.ndparams or {}))
        return int(filled.get(constants.ND_SSH_PORT, 22))

    values = {
        constants.SS_CLUSTER_NAME: cluster.cluster_name or "",
        constants.SS_CLUSTER_TAGS: _Lines(sorted(cluster.GetTags())),
        constants.SS_FILE_STORAGE_DIR: cluster.file_storage_dir or "",
        constants.SS_SHARED_FILE_STORAGE_DIR:
            cluster.shared_file_storage_dir or "",
        constants.SS_GLUSTER_STORAGE_DIR: cluster.gluster_storage_dir or "",
        constants.SS_MASTER_CANDIDATES: _Lines(n.name for n in candidates),
        constants.SS_MASTER_CANDIDATES_IPS:
            _Lines(n.primary_ip for n in candidates),
        constants.SS_MASTER_CANDIDATES_CERTS: _Lines(
            f"{uuid}={digest}"
            for uuid, digest in sorted((cluster.candidate_certs
                                        or {}).items())),
        constants.SS_MASTER_IP: cluster.master_ip or "",
        constants.SS_MASTER_NETDEV: cluster.master_netdev or "",
        constants.SS_MASTER_NETMASK: str(cluster.master_netmask),
        constants.SS_MASTER_NODE: master.name if master is not None else "",
        constants.SS_NODE_LIST: _Lines(n.name for n in nodes),
        constants.SS_NODE_PRIMARY_IPS:
            _Lines(f"{n.name} {n.primary_ip}" for n in nodes),
        constants.SS_NODE_SECONDARY_IPS:
            _Lines(f"{n.name} {n.secondary_ip}" for n in nodes),
        constants.SS_NODE_VM_CAPABLE:
            _Lines(f"{n.name}={bool(n.vm_capable)}" for n in nodes),
        constants.SS_OFFLINE_NODES:
            _Lines(n.name for n in nodes if n.offline),
        constants.SS_ONLINE_NODES: _Lines(n.name for n in online),
        constants.SS_PRIMARY_IP_FAMILY: str(cluster.primary_ip_family),
        constants.SS_INSTANCE_LIST: _Lines(utils.NiceSort(
            inst.name for inst in data.instances.values())),
        constants.SS_RELEASE_VERSION: constants.RELEASE_VERSION,
        constants.SS_HYPERVISOR_LIST:
            _Lines(cluster.enabled_hypervisors or []),
        constants.SS_MAINTAIN_NODE_HEALTH:
            str(bool(cluster.maintain_node_health)),
        constants.SS_UID_POOL: FormatUidPool(cluster.uid_pool, "\n"),
        constants.SS_NODEGROUPS: _Lines(
            f"{group.uuid} {group.name}"
            for group in utils.NiceSort(data.nodegroups.values(),
                                        key=lambda group: group.name)),
        constants.SS_NETWORKS: _Lines(
            f"{net.uuid} {net.name}"
            for net in utils.NiceSort(data.networks.values(),
                                      key=lambda net: net.name)),
        constants.SS_ENABLED_USER_SHUTDOWN:
            str(bool(cluster.enabled_user_shutdown)),
        constants.SS_SSH_PORTS:
            _Lines(f"{n.name}={_NodeSsh(n)}" for n in nodes),
        # Only nodes that set their own endpoints are listed; the others
        # use primary_ip and the default ports
        constants.SS_NODE_NODED_ENDPOINTS: _Lines(
            f"{n.name} {utils.FormatAddress(n.GetNodedEndpoint())}"
            for n in nodes if n.HasCustomEndpoints()),
        constants.SS_NODE_CONFD_ENDPOINTS: _Lines(
            f"{n.name} {utils.FormatAddress(n.GetConfdEndpoint())}"
            for n in nodes if n.HasCustomEndpoints()),
    }
    for hv_name in constants.HYPER_TYPES:
        params = (cluster.hvparams or {}).get(hv_name, {})
        values[constants.SS_HVPARAMS_PREF + hv_name] = _Lines(
            f"{key}={value}" for key, value in sorted(params.items()))
    return values
