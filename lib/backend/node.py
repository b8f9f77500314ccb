"""Node information: version, memory, CPUs, disk space, test delays.

Memory and CPU figures come from ``/proc`` and ``/sys``; a hypervisor that
knows better (Xen's dom0, say) can register its own function in
:data:`HV_NODE_INFO_FNS`, and a storage type its space function in
:data:`STORAGE_SPACE_FNS`.
"""

from __future__ import annotations

import os
import time
from typing import Any
from collections.abc import Callable, Sequence

from ganeti import constants, errors, pathutils, utils
from ganeti.backend import Fail
from ganeti.hypervisor import base as hv_base

# The parsers moved to the hypervisor layer; callers and tests use them here too
ParseMeminfo = hv_base.ParseMeminfo
ParseCpuinfo = hv_base.ParseCpuinfo

_BOOT_ID_FILE = "/proc/sys/kernel/random/boot_id"


def GetVersion() -> int:
    """Return the RPC protocol version this node speaks."""
    return constants.PROTOCOL_VERSION


def GetBootId(filename: str = _BOOT_ID_FILE) -> str:
    """Return the kernel's boot ID (changes at every reboot).

    The nodes of a virtual cluster share one kernel: there a node's
    ``vcluster-boot-id`` file (:data:`pathutils.VCLUSTER_BOOT_ID_FILE`),
    when present, stands for its boot ID, so that a "reboot" of one virtual
    node is writing a new ID there (tests of the watcher do).
    """
    if pathutils.IsVirtualCluster():
        try:
            override = utils.ReadFile(pathutils.VCLUSTER_BOOT_ID_FILE).strip()
        except FileNotFoundError:
            override = ""
        except OSError as err:
            Fail("Cannot read %s: %s", pathutils.VCLUSTER_BOOT_ID_FILE, err)
        if override:
            return override
    try:
        with open(filename, encoding="ascii") as fd:
            return fd.read().strip()
    except OSError as err:
        Fail("Cannot read the boot ID from %s: %s", filename, err)


def GetLinuxNodeInfo(meminfo_file: str = hv_base.MEMINFO_FILE,
                     cpuinfo_file: str = hv_base.CPUINFO_FILE,
                     numa_glob: str = hv_base.NUMA_NODES_GLOB) -> dict[str, Any]:
    """:func:`ganeti.hypervisor.base.GetLinuxNodeInfo`, failing the RPC call
    (RPCFail) instead of raising HypervisorError."""
    try:
        return hv_base.GetLinuxNodeInfo(meminfo_file, cpuinfo_file, numa_glob)
    except errors.HypervisorError as err:
        Fail("%s", err)


def _DefaultHvInfo(hvname: str, hvparams: Any) -> dict[str, Any]:
    return GetLinuxNodeInfo()


#: Hypervisor name -> function(hvname, hvparams) returning node info
HV_NODE_INFO_FNS: dict[str, Callable[[str, Any], dict[str, Any]]] = {}


def _StatvfsSpace(storage_type: str, key: str, params: Sequence[Any]) -> dict[str, Any]:
    try:
        st = os.statvfs(key)
    except OSError as err:
        Fail("Cannot get free space of %s storage at %s: %s", storage_type, key,
             err)
    return {"type": storage_type, "name": key,
            "storage_free": st.f_bavail * st.f_frsize // (1024 * 1024),
            "storage_size": st.f_blocks * st.f_frsize // (1024 * 1024)}


def _DisklessSpace(storage_type: str, key: str, params: Sequence[Any]) -> dict[str, Any]:
    return {"type": storage_type, "name": key, "storage_free": 0, "storage_size": 0}


def _LvmVgSpace(storage_type: str, key: str, params: Sequence[Any]) -> dict[str, Any]:
    result = utils.RunCmd(["vgs", "--noheadings", "--nosuffix", "--units=m",
                           "--separator=|", "-o", "vg_size,vg_free", key])
    if result.failed:
        Fail("Cannot get free space of volume group %s: %s", key,
             result.output.strip())
    try:
        size, free = (int(float(v)) for v in result.stdout.strip().split("|"))
    except ValueError:
        Fail("Cannot parse vgs output for %s: %r", key, result.stdout)
    return {"type": storage_type, "name": key, "storage_free": free,
            "storage_size": size}


#: Storage type -> function(type, key, params) returning its space info
STORAGE_SPACE_FNS: dict[str, Callable[[str, str, Sequence[Any]], dict[str, Any]]] = {
    constants.ST_FILE: _StatvfsSpace,
    constants.ST_SHARED_FILE: _StatvfsSpace,
    constants.ST_GLUSTER: _StatvfsSpace,
    constants.ST_DISKLESS: _DisklessSpace,
    constants.ST_LVM_VG: _LvmVgSpace,
}


def GetStorageSpace(storage_type: str, key: str,
                    params: Sequence[Any] = ()) -> dict[str, Any]:
    """Return {type, name, storage_free, storage_size} (MiB) of a storage unit."""
    fn = STORAGE_SPACE_FNS.get(storage_type)
    if fn is None:
        Fail("Storage type '%s' cannot report its space on this node", storage_type)
    return fn(storage_type, key, params)


def GetNodeInfo(storage_units: Sequence[Sequence[Any]],
                hv_specs: Sequence[Sequence[Any]]) -> tuple[str, list, list]:
    """Return (boot ID, space of each storage unit, info per hypervisor).

    ``storage_units`` holds (type, key[, params]) entries; ``hv_specs``
    (hypervisor name, hvparams) pairs.
    """
    storage_info = []
    for unit in storage_units or []:
        if not isinstance(unit, (list, tuple)) or len(unit) not in (2, 3):
            Fail("Invalid storage unit %r: expected (type, key[, params])", unit)
        storage_type, key = unit[0], unit[1]
        params = unit[2] if len(unit) == 3 else []
        storage_info.append(GetStorageSpace(storage_type, key, params))
    hv_info = []
    for spec in hv_specs or []:
        if not isinstance(spec, (list, tuple)) or len(spec) != 2:
            Fail("Invalid hypervisor spec %r: expected (name, hvparams)", spec)
        hvname, hvparams = spec
        if hvname not in constants.HYPER_TYPES:
            Fail("Unknown hypervisor '%s'", hvname)
        hv_info.append(HV_NODE_INFO_FNS.get(hvname, _DefaultHvInfo)(hvname, hvparams))
    return GetBootId(), storage_info, hv_info


def HasIpAddress(address: str) -> bool:
    """Tell whether this node has the IP address ``address``."""
    return utils.IPAddress.Own(address)


def TestDelay(duration: float) -> None:
    """Sleep ``duration`` seconds (for tests of timeouts and parallelism)."""
    if not isinstance(duration, (int, float)) or isinstance(duration, bool) \
            or duration < 0:
        Fail("Invalid sleep duration %r: must be a non-negative number", duration)
    time.sleep(duration)


#: Where the kernel shows network devices; a bridge has a ``bridge`` subdirectory
_SYS_CLASS_NET = "/sys/class/net"


def BridgesExist(bridges_list: Sequence[str], sys_class_net: str = _SYS_CLASS_NET
                 ) -> list[str]:
    """The bridges of ``bridges_list`` this node lacks (empty if it has all).

    A bridge exists when ``/sys/class/net/<name>/bridge`` is a directory;
    the host's network devices are shared by every virtual node.
    """
    missing = []
    for name in bridges_list or []:
        if not isinstance(name, str) or not name or "/" in name or name in (".", ".."):
            Fail("Invalid bridge name %r", name)
        if not os.path.isdir(os.path.join(sys_class_net, name, "bridge")):
            missing.append(name)
    return missing
