"""The instance communication NIC (``gnt-instance add/modify -c yes|no``).

Instance communication gives an instance one extra NIC on the cluster's
instance communication network (``gnt-cluster modify
--instance-communication-network NAME``), through which it talks with
its host. Ganeti recognises that NIC by its name: the prefix
``ganeti:communication:`` followed by the instance's name. The NIC is an
ordinary NIC on a network: its MAC is generated, its address comes from
the network's pool and its mode, link and VLAN from the network's
connection to the primary node's group
(:mod:`ganeti.cmdlib.instance_nics`).

These helpers only turn the request into the NIC specification (creation)
or the NIC modification (``gnt-instance modify``) the instance LUs
already know how to carry out, after checking that the cluster has such a
network.
"""

from __future__ import annotations

from typing import Any

from ganeti import constants, errors, objects

#: Ganeti's name prefix of the instance communication NIC
NIC_PREFIX = constants.INSTANCE_COMMUNICATION_NIC_PREFIX


def NicName(instance_name: str) -> str:
    """The name of the communication NIC of ``instance_name``."""
    return f"{NIC_PREFIX}{instance_name}"


def NetworkName(cfg: Any) -> str:
    """The cluster's instance communication network, which must exist;
    OpPrereqError otherwise (ECODE_STATE when none is set, ECODE_NOENT
    when the one set is not a network of the cluster)."""
    name = cfg.GetClusterInfo().instance_communication_network or ""
    if not name:
        raise errors.OpPrereqError(
            "Instance communication is not enabled: the cluster has no instance"
            " communication network (gnt-cluster modify"
            " --instance-communication-network NETWORK)", errors.ECODE_STATE)
    try:
        cfg.LookupNetwork(name)
    except errors.OpPrereqError:
        raise errors.OpPrereqError(
            f"The cluster's instance communication network '{name}' does not exist"
            " (gnt-network add it, or change it with gnt-cluster modify"
            " --instance-communication-network)", errors.ECODE_NOENT) from None
    return name


def CreationNicSpec(cfg: Any, instance_name: str) -> dict[str, Any]:
    """The NIC specification (as in ``nics``) of a new instance's
    communication NIC."""
    return {constants.INIC_NAME: NicName(instance_name),
            constants.INIC_MAC: constants.VALUE_AUTO,
            constants.INIC_IP: constants.NIC_IP_POOL,
            constants.INIC_NETWORK: NetworkName(cfg)}


def FindNic(instance: objects.Instance) -> objects.NIC | None:
    """The instance's communication NIC, if it has one."""
    name = NicName(instance.name)
    return next((nic for nic in instance.nics if nic.name == name), None)


def NicModification(cfg: Any, instance: objects.Instance, enable: bool
                    ) -> tuple[str, Any, dict[str, Any]] | None:
    """The NIC modification ``(action, identifier, params)`` that gives the
    instance its communication NIC (``enable``) or takes it away; None
    when there is nothing to do."""
    nic = FindNic(instance)
    if not enable:
        return None if nic is None else (constants.DDM_REMOVE, nic.name, {})
    if nic is not None:
        return None
    params = CreationNicSpec(cfg, instance.name)
    params[constants.INIC_MAC] = constants.VALUE_GENERATE
    return (constants.DDM_ADD, -1, params)
