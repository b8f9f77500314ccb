"""Cluster-level node calls: the master role and voting.

``master_node_name`` is what a node believes (its ssconf), used for the
master vote of ``master-failover``. ``node_start_master_daemons`` and
``node_stop_master`` run ``daemon-util``'s logic in this node's
environment. There is no call running an arbitrary command or writing an
arbitrary file: ``gnt-cluster command`` and ``copyfile`` go over SSH
(:mod:`ganeti.ssh`), uploads are limited to an allow-list
(:mod:`ganeti.backend.files`) and the only programs the master may start
by name are the administrator's restricted commands
(:mod:`ganeti.backend.restricted_commands`) and the master IP setup script
(ours, ``tools/master-ip-setup``, or the administrator's
``EXTERNAL_MASTER_SETUP_SCRIPT`` when the cluster says so).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ganeti import constants, errors, pathutils, ssconf, utils
from ganeti.backend import Fail

#: Longest a master IP setup script may run
_MASTER_IP_SCRIPT_TIMEOUT = 60


def GetMasterNodeName() -> str:
    """The master node's name according to this node's ssconf."""
    try:
        return ssconf.SimpleStore().GetMasterNode()
    except errors.ConfigurationError as err:
        Fail("Cannot read the master node from ssconf: %s", err)


def StartMasterDaemons(no_voting: bool) -> list[str]:
    """Start the master daemons on this node."""
    from ganeti import daemon_util
    try:
        return daemon_util.StartMaster(bool(no_voting))
    except errors.GenericError as err:
        Fail("Cannot start the master daemons: %s", err)


def StopMasterDaemons() -> list[str]:
    """Stop the master daemons on this node."""
    from ganeti import daemon_util
    try:
        return daemon_util.StopMaster()
    except errors.GenericError as err:
        Fail("Cannot stop the master daemons: %s", err)


def _RunMasterSetupScript(params: Mapping[str, Any], action: str,
                          use_external_script: bool) -> None:
    """Run the master IP setup script with ``action`` (start or stop).

    ``params`` is the cluster's MasterNetworkParameters as a dict.
    """
    if use_external_script:
        script = pathutils.EXTERNAL_MASTER_SETUP_SCRIPT
    else:
        script = pathutils.GetShippedTool("master-ip-setup")
    family = params.get("ip_family")
    env = {
        "MASTER_NETDEV": str(params["netdev"]),
        "MASTER_IP": str(params["ip"]),
        "MASTER_NETMASK": str(params["netmask"]),
        "CLUSTER_IP_VERSION": "6" if family == constants.IP6_ADDRESS_FAMILY else "4",
    }
    try:
        result = utils.RunCmd([script, action], env=env,
                              timeout=_MASTER_IP_SCRIPT_TIMEOUT)
    except (OSError, errors.GenericError) as err:
        Fail("Failed to %s the master IP: cannot run %s: %s", action, script, err)
    if result.failed:
        Fail("Failed to %s the master IP with %s (%s): %s", action, script,
             result.fail_reason, result.output.strip())


def ActivateMasterIp(params: Mapping[str, Any], use_external_script: bool) -> None:
    """Bring the master IP up on this node."""
    _RunMasterSetupScript(params, "start", bool(use_external_script))


def DeactivateMasterIp(params: Mapping[str, Any], use_external_script: bool) -> None:
    """Take the master IP down on this node."""
    _RunMasterSetupScript(params, "stop", bool(use_external_script))
