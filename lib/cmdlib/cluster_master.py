"""The master IP and the cluster's name.

The master IP is brought up and down on the master node by the master IP
setup script (``node_activate_master_ip``/``node_deactivate_master_ip``,
:mod:`ganeti.backend.cluster`): ours (``tools/master-ip-setup``) or, with
``use_external_mip_script``, the administrator's. Renaming the cluster
resolves the new name; its address becomes the master IP (the IP is taken
down under the old address and brought up under the new one). In a
virtual cluster, whose names are not in DNS, a name that does not resolve
keeps the current master IP.
"""

from __future__ import annotations

from typing import Any

from ganeti import constants, errors, locking, pathutils, utils
from ganeti.cmdlib.base import FeedbackFn
from ganeti.cmdlib.cluster import ClusterLU


def _MasterIpCall(lu: Any, call: str, params: Any, what: str) -> None:
    """Run ``call`` (activate or deactivate) on the master node; raise on failure."""
    if lu.rpc is None:
        raise errors.OpPrereqError(f"Cannot {what} the master IP without node RPC",
                                   errors.ECODE_ENVIRON)
    result = getattr(lu.rpc, f"call_{call}")(params.uuid, params,
                                              lu.cfg.GetUseExternalMipScript())
    result.Raise(f"Could not {what} the master IP")


class LUClusterActivateMasterIp(ClusterLU):
    """Bring up the master IP on the master node."""

    REQ_BGL = False

    def ExpandNames(self) -> None:
        self.needed_locks = {}

    def Exec(self, feedback_fn: FeedbackFn) -> None:
        params = self.cfg.GetMasterNetworkParameters()
        _MasterIpCall(self, "node_activate_master_ip", params, "activate")
        feedback_fn(f"Master IP {params.ip}/{params.netmask} up on {params.netdev}")


class LUClusterDeactivateMasterIp(ClusterLU):
    """Take down the master IP on the master node."""

    REQ_BGL = False

    def ExpandNames(self) -> None:
        self.needed_locks = {}

    def Exec(self, feedback_fn: FeedbackFn) -> None:
        params = self.cfg.GetMasterNetworkParameters()
        _MasterIpCall(self, "node_deactivate_master_ip", params, "deactivate")
        feedback_fn(f"Master IP {params.ip} down on {params.netdev}")


class LUClusterRename(ClusterLU):
    """Rename the cluster; its master IP becomes the new name's address."""

    def ExpandNames(self) -> None:
        # The name and the master IP are everyone's business
        self.needed_locks = {locking.LEVEL_NODE: locking.ALL_SET}
        self.share_locks[locking.LEVEL_NODE] = 1

    def CheckPrereq(self) -> None:
        family = self.cfg.GetMasterNetworkParameters().ip_family or None
        old_name = self.cfg.GetClusterName()
        old_ip = self.cfg.GetMasterIP()
        new_name = utils.Hostname.GetNormalizedName(self.op.name)
        try:
            new_ip = utils.Hostname.GetIP(new_name, family=family)
        except errors.ResolverError:
            if not pathutils.IsVirtualCluster():
                raise
            new_ip = old_ip
        if new_name == old_name and new_ip == old_ip:
            raise errors.OpPrereqError(
                "Neither the name nor the IP address of the cluster changes",
                errors.ECODE_INVAL)
        if new_ip != old_ip and utils.TcpPing(
                new_ip, constants.DEFAULT_NODED_PORT,
                live_port_needed=pathutils.IsVirtualCluster()):
            raise errors.OpPrereqError(
                f"The new cluster IP address ({new_ip}) answers on the network",
                errors.ECODE_NOTUNIQUE)
        self.new_name, self.new_ip = new_name, new_ip

    def Exec(self, feedback_fn: FeedbackFn) -> str:
        cluster = self.cfg.GetClusterInfo()
        params = self.cfg.GetMasterNetworkParameters()
        moves_ip = self.new_ip != params.ip
        if moves_ip:
            _MasterIpCall(self, "node_deactivate_master_ip", params, "deactivate")
        try:
            cluster.cluster_name = self.new_name
            cluster.master_ip = self.new_ip
            self.cfg.Update(cluster, feedback_fn)
        finally:
            if moves_ip:
                params = self.cfg.GetMasterNetworkParameters()
                try:
                    _MasterIpCall(self, "node_activate_master_ip", params, "activate")
                except errors.GenericError as err:
                    self.LogWarning("Could not bring up the master IP %s after the"
                                    " rename: %s", params.ip, err)
        return self.new_name
