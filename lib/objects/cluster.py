"""The cluster object: cluster-wide settings and parameter defaults.

Parameters are inherited in layers, each holding only its overrides:

- hypervisor: cluster ``hvparams[hv]`` -> ``os_hvp[os][hv]`` (base OS name,
  then the OS+variant name) -> instance ``hvparams``. Global hypervisor
  parameters (constants.HVC_GLOBALS, seed 003 "Global hypervisor
  parameters") only come from the cluster: OS and instance values for them
  are ignored.
- backend: cluster ``beparams["default"]`` -> instance ``beparams``.
- NIC: cluster ``nicparams["default"]`` -> the NIC's network parameters in
  its node group -> NIC ``nicparams``.
- OS: cluster ``osparams[os]`` (base name, then variant) -> instance.
- node: cluster ``ndparams`` -> group ``ndparams`` -> node ``ndparams``.
- disk: cluster ``diskparams[template]`` -> group -> disk ``params``.
- instance policy: cluster ``ipolicy`` -> group ``ipolicy``.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any, ClassVar

from ganeti import constants
from ganeti.objects.base import FillDict, TaggableObject
from ganeti.objects.params import (
    FillDiskParams, FillIPolicy, UpgradeBeParams, UpgradeDiskParams,
    UpgradeGroupedParams,
)

if TYPE_CHECKING:
    from ganeti.objects.instance import NIC, Disk, Instance
    from ganeti.objects.node import Node, NodeGroup

__all__ = ["Cluster", "SplitOsName"]


def SplitOsName(os_name: str) -> tuple[str, str | None]:
    """Split "debian+bookworm" into ("debian", "bookworm")."""
    base, sep, variant = os_name.partition("+")
    return base, (variant if sep else None)


def _OsNameLayers(os_name: str | None) -> list[str]:
    """Return the names to look up for an OS: base name, then full name."""
    if not os_name:
        return []
    base, variant = SplitOsName(os_name)
    return [base, os_name] if variant is not None else [base]


class Cluster(TaggableObject):
    """The cluster-wide part of the configuration.

    ``master_node`` is the master's UUID. ``default_hypervisor`` and
    ``default_bridge`` are only read from old configurations: UpgradeConfig
    folds them into ``enabled_hypervisors`` (first = default) and
    ``nicparams``.
    """

    serial_no: int
    rsahostkeypub: str
    dsahostkeypub: str | None
    highest_used_port: int
    tcpudp_port_pool: set[int]
    mac_prefix: str
    volume_group_name: str | None
    reserved_lvs: list[str]
    drbd_usermode_helper: str | None
    default_bridge: str | None  # obsolete
    default_hypervisor: str | None  # obsolete
    master_node: str
    master_ip: str
    master_netdev: str
    master_netmask: int
    use_external_mip_script: bool
    cluster_name: str
    file_storage_dir: str
    shared_file_storage_dir: str
    gluster_storage_dir: str
    enabled_hypervisors: list[str]
    hvparams: dict[str, dict[str, Any]]
    ipolicy: dict[str, Any]
    os_hvp: dict[str, dict[str, dict[str, Any]]]
    beparams: dict[str, dict[str, Any]]
    osparams: dict[str, dict[str, Any]]
    osparams_private_cluster: dict[str, dict[str, Any]]
    nicparams: dict[str, dict[str, Any]]
    ndparams: dict[str, Any]
    diskparams: dict[str, dict[str, Any]]
    candidate_pool_size: int
    modify_etc_hosts: bool
    modify_ssh_setup: bool
    maintain_node_health: bool
    uid_pool: list[Any]
    default_iallocator: str
    default_iallocator_params: dict[str, Any]
    hidden_os: list[str]
    blacklisted_os: list[str]
    primary_ip_family: int
    prealloc_wipe_disks: bool
    hv_state_static: dict[str, Any]
    disk_state_static: dict[str, Any]
    enabled_disk_templates: list[str]
    candidate_certs: dict[str, str]
    max_running_jobs: int
    max_tracked_jobs: int
    install_image: str
    instance_communication_network: str
    zeroing_image: str
    compression_tools: list[str]
    enabled_user_shutdown: bool
    data_collectors: dict[str, dict[str, Any]]
    ssh_key_type: str
    ssh_key_bits: int
    ctime: float
    mtime: float
    uuid: str

    _SET_FIELDS: ClassVar[frozenset[str]] = frozenset(
        ["tags", "tcpudp_port_pool"])

    # Simple fields and their defaults for UpgradeConfig (copied when set)
    _SIMPLE_DEFAULTS: ClassVar[dict[str, Any]] = {
        "reserved_lvs": [],
        "os_hvp": {},
        "osparams": {},
        "osparams_private_cluster": {},
        "candidate_pool_size": constants.MASTER_POOL_SIZE_DEFAULT,
        "modify_etc_hosts": True,
        "modify_ssh_setup": True,
        "maintain_node_health": False,
        "use_external_mip_script": False,
        "uid_pool": [],
        "default_iallocator": "",
        "default_iallocator_params": {},
        "hidden_os": [],
        "blacklisted_os": [],
        "primary_ip_family": constants.IP4_ADDRESS_FAMILY,
        "prealloc_wipe_disks": False,
        "hv_state_static": {},
        "disk_state_static": {},
        "candidate_certs": {},
        "max_running_jobs": constants.DEFAULT_MAX_RUNNING_JOBS,
        "max_tracked_jobs": constants.DEFAULT_MAX_TRACKED_JOBS,
        "install_image": "",
        "instance_communication_network": "",
        "zeroing_image": constants.DEFAULT_ZEROING_IMAGE,
        "compression_tools": list(constants.DEFAULT_COMPRESSION_TOOLS),
        "enabled_user_shutdown": False,
        "data_collectors": {},
        "ssh_key_type": constants.DEFAULT_SSH_KEY_TYPE,
        "ssh_key_bits": constants.DEFAULT_SSH_KEY_BITS,
        "file_storage_dir": "",
        "shared_file_storage_dir": "",
        "gluster_storage_dir": "",
        "mac_prefix": constants.DEFAULT_MAC_PREFIX,
        "highest_used_port": constants.FIRST_DRBD_PORT - 1,
        "rsahostkeypub": "",
    }

    # --- Upgrade ----------------------------------------------------------------

    def UpgradeConfig(self) -> None:
        """Fill every missing default and fold the obsolete fields in."""
        super().UpgradeConfig()
        for name, default in self._SIMPLE_DEFAULTS.items():
            if getattr(self, name) is None:
                setattr(self, name, copy.deepcopy(default))
        if self.tcpudp_port_pool is None:
            self.tcpudp_port_pool = set()
        elif not isinstance(self.tcpudp_port_pool, set):
            self.tcpudp_port_pool = set(self.tcpudp_port_pool)

        # Hypervisors: the old default comes first among the enabled ones
        enabled = list(self.enabled_hypervisors or [])
        if self.default_hypervisor is not None:
            if self.default_hypervisor in enabled:
                enabled.remove(self.default_hypervisor)
            enabled.insert(0, self.default_hypervisor)
            self.default_hypervisor = None
        if not enabled:
            enabled = [constants.DEFAULT_ENABLED_HYPERVISOR]
        self.enabled_hypervisors = enabled
        if self.hvparams is None:
            self.hvparams = {}
        for hv_name, defaults in constants.HVC_DEFAULTS.items():
            self.hvparams[hv_name] = FillDict(defaults,
                                              self.hvparams.get(hv_name))

        # Backend and NIC parameters, grouped under "default"
        self.beparams = UpgradeGroupedParams(self.beparams, {})
        for group in self.beparams.values():
            UpgradeBeParams(group)
        self.beparams = UpgradeGroupedParams(self.beparams,
                                             constants.BEC_DEFAULTS)
        if self.nicparams is None:
            self.nicparams = {}
        if self.default_bridge is not None:
            default_nic = self.nicparams.setdefault(constants.PP_DEFAULT, {})
            default_nic.setdefault(constants.NIC_MODE,
                                   constants.NIC_MODE_BRIDGED)
            default_nic.setdefault(constants.NIC_LINK, self.default_bridge)
            self.default_bridge = None
        self.nicparams = UpgradeGroupedParams(self.nicparams,
                                              constants.NICC_DEFAULTS)

        self.ndparams = FillDict(constants.NDC_DEFAULTS, self.ndparams)
        self.diskparams = UpgradeDiskParams(self.diskparams)
        self.ipolicy = FillIPolicy(constants.IPOLICY_DEFAULTS, self.ipolicy)

        if self.master_netmask is None:
            self.master_netmask = (
                constants.IP6_DEFAULT_NETMASK
                if self.primary_ip_family == constants.IP6_ADDRESS_FAMILY
                else constants.IP4_DEFAULT_NETMASK)
        # enabled_disk_templates depends on the instances' disks, so the
        # configuration's upgrade fills it in (ConfigData.UpgradeConfig)
        self._UpgradeCommon()

    # --- Hypervisor parameters ------------------------------------------------

    @property
    def primary_hypervisor(self) -> str:
        """The default hypervisor: the first enabled one."""
        return self.enabled_hypervisors[0]

    def GetHVDefaults(self, hv_name: str, os_name: str | None = None,
                      skip_keys: Any = None) -> dict[str, Any]:
        """Return the hypervisor parameters an instance starts from.

        Cluster values for ``hv_name``, overridden by the OS's (base name
        first, then OS+variant). OS values for global parameters are
        ignored.
        """
        result = FillDict(self.hvparams.get(hv_name, {}), {})
        for name in _OsNameLayers(os_name):
            os_values = self.os_hvp.get(name, {}).get(hv_name, {})
            result.update((key, value) for key, value in os_values.items()
                          if key not in constants.HVC_GLOBALS)
        for key in skip_keys or ():
            result.pop(key, None)
        return result

    def SimpleFillHV(self, hv_name: str, os_name: str | None,
                     hvparams: dict[str, Any],
                     skip_globals: bool = False) -> dict[str, Any]:
        """Return ``hvparams`` filled with the OS and cluster values.

        Global parameters always come from the cluster; with
        ``skip_globals`` they are left out of the result.
        """
        custom = {key: value for key, value in (hvparams or {}).items()
                  if key not in constants.HVC_GLOBALS}
        skip = constants.HVC_GLOBALS if skip_globals else None
        return FillDict(self.GetHVDefaults(hv_name, os_name), custom, skip)

    def FillHV(self, instance: Instance,
               skip_globals: bool = False) -> dict[str, Any]:
        """Return the full hypervisor parameters of an instance."""
        return self.SimpleFillHV(instance.hypervisor, instance.os,
                                 instance.hvparams, skip_globals)

    # --- Backend, NIC and OS parameters ----------------------------------------

    def SimpleFillBE(self, beparams: dict[str, Any]) -> dict[str, Any]:
        """Return ``beparams`` filled with the cluster's defaults."""
        custom = dict(beparams or {})
        UpgradeBeParams(custom)
        return FillDict(self.beparams.get(constants.PP_DEFAULT, {}), custom)

    def FillBE(self, instance: Instance) -> dict[str, Any]:
        """Return the full backend parameters of an instance."""
        return self.SimpleFillBE(instance.beparams)

    def SimpleFillNIC(self, nicparams: dict[str, Any]) -> dict[str, Any]:
        """Return ``nicparams`` filled with the cluster's defaults."""
        return FillDict(self.nicparams.get(constants.PP_DEFAULT, {}),
                        nicparams)

    def FillNIC(self, nic: NIC,
                nodegroup: NodeGroup | None = None) -> dict[str, Any]:
        """Return the full parameters of a NIC.

        When the NIC is on a network connected to ``nodegroup``, the
        network's parameters in that group come between the cluster's and
        the NIC's own.
        """
        result = self.SimpleFillNIC({})
        if nic.network and nodegroup is not None:
            result.update((nodegroup.networks or {}).get(nic.network, {}))
        result.update(nic.nicparams or {})
        return result

    def SimpleFillOS(self, os_name: str, os_params: dict[str, Any],
                     os_params_private: dict[str, Any] | None = None
                     ) -> dict[str, Any]:
        """Return OS parameters: cluster (base, variant), then the given.

        Private parameters, when given, are layered the same way (from
        ``osparams_private_cluster``) and merged over the public ones.
        """
        result: dict[str, Any] = {}
        for name in _OsNameLayers(os_name):
            result.update(self.osparams.get(name, {}))
        result.update(os_params or {})
        if os_params_private is not None:
            for name in _OsNameLayers(os_name):
                result.update(self.osparams_private_cluster.get(name, {}))
            result.update(os_params_private)
        return FillDict(result, {})

    def FillOS(self, os_name: str,
               os_params: dict[str, Any]) -> dict[str, Any]:
        """Return the public OS parameters for ``os_name``."""
        return self.SimpleFillOS(os_name, os_params)

    # --- Node, disk parameters and instance policy -----------------------------

    def SimpleFillND(self, ndparams: dict[str, Any]) -> dict[str, Any]:
        """Return ``ndparams`` filled with the cluster's node parameters."""
        return FillDict(self.ndparams, ndparams)

    def FillND(self, node: Node, nodegroup: NodeGroup) -> dict[str, Any]:
        """Return a node's parameters: cluster, then group, then node."""
        return self.SimpleFillND(nodegroup.FillND(node))

    def SimpleFillIPolicy(self, ipolicy: dict[str, Any]) -> dict[str, Any]:
        """Return a (group's) policy filled with the cluster's."""
        return FillIPolicy(self.ipolicy, ipolicy)

    def SimpleFillDP(self, diskparams: dict[str, dict[str, Any]]
                     ) -> dict[str, dict[str, Any]]:
        """Return (a group's) disk parameters filled with the cluster's."""
        return FillDiskParams(self.diskparams, diskparams)

    def FillDP(self, disk: Disk,
               nodegroup: NodeGroup | None = None) -> dict[str, Any]:
        """Return a disk's parameters: cluster, group, then the disk's."""
        group_params = nodegroup.diskparams if nodegroup is not None else {}
        template = self.SimpleFillDP(group_params or {}).get(disk.dev_type,
                                                            {})
        return FillDict(template, disk.params or {})

    # --- Storage questions ------------------------------------------------------

    def IsDiskTemplateEnabled(self, disk_template: str) -> bool:
        """Tell whether a disk template is enabled on the cluster."""
        return disk_template in (self.enabled_disk_templates or [])

    def IsFileStorageEnabled(self) -> bool:
        """Tell whether file storage is enabled."""
        return self.IsDiskTemplateEnabled(constants.DT_FILE)

    def IsSharedFileStorageEnabled(self) -> bool:
        """Tell whether shared file storage is enabled."""
        return self.IsDiskTemplateEnabled(constants.DT_SHARED_FILE)
