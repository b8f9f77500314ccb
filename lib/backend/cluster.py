"""Cluster-level node calls: the master role and voting.

``master_node_name`` is what a node believes (its ssconf), used for the
master vote of ``master-failover``. ``node_start_master_daemons`` and
``node_stop_master`` run ``daemon-util``'s logic in this node's
environment. There is no call running an arbitrary command or writing an
arbitrary file: ``gnt-cluster command`` and ``copyfile`` go over SSH
(:mod:`ganeti.ssh`), uploads are limited to an allow-list
(:mod:`ganeti.backend.files`) and the only programs the master may start
by name are the administrator's restricted commands
(:mod:`ganeti.backend.restricted_commands`).
"""

from __future__ import annotations

from ganeti import errors, ssconf
from ganeti.backend import Fail


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
