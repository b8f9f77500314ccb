"""The hypervisor abstraction: what every hypervisor implements.

Method names and arguments are Ganeti's, so that the node-side functions in
:mod:`ganeti.backend.instance` read the same whatever the hypervisor. A
hypervisor raises :class:`errors.HypervisorError` with a message for the
administrator; the backend turns it into the RPC failure.

Parameters are declared once per class in ``PARAMETERS``: name ->
``(required, check_fn, check_msg, validate_fn, validate_msg)``. The check
is pure syntax (run on the master, :meth:`CheckParameterSyntax`); the
validation looks at the node (:meth:`ValidateParameters`, run on each
node), e.g. whether a kernel file exists.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Callable, Iterable
from typing import Any

from ganeti import constants, errors, objects, utils

#: (required, check_fn, check_msg, validate_fn, validate_msg)
ParamCheck = tuple[bool, Callable[[Any], bool] | None, str | None,
                   Callable[[Any], bool] | None, str | None]


def _IsCpuMaskWellFormed(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    if value in ("", constants.CPU_PINNING_ALL):
        return True
    try:
        for part in value.split(":"):
            for item in part.split(","):
                low, _, high = item.partition("-")
                if int(low) < 0 or (high and int(high) < int(low)):
                    return False
    except ValueError:
        return False
    return True


def _IsPort(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) \
        and 0 < value < 65536


def ParamInSet(required: bool, valid: Iterable[Any]) -> ParamCheck:
    """A check accepting only the values in ``valid``."""
    values = frozenset(valid)
    return (required, lambda value: value in values,
            "must be one of " + ", ".join(sorted(map(str, values))), None, None)


#: A normalised absolute path naming an existing file
REQ_FILE_CHECK: ParamCheck = (True, utils.IsNormAbsPath,
                              "must be an absolute normalized path",
                              os.path.isfile, "not found or not a file")
OPT_FILE_CHECK: ParamCheck = (False,) + REQ_FILE_CHECK[1:]  # type: ignore[assignment]
#: A normalised absolute path naming an existing directory
REQ_DIR_CHECK: ParamCheck = (True, utils.IsNormAbsPath,
                             "must be an absolute normalized path",
                             os.path.isdir, "not found or not a directory")
OPT_DIR_CHECK: ParamCheck = (False,) + REQ_DIR_CHECK[1:]  # type: ignore[assignment]
NET_PORT_CHECK: ParamCheck = (True, _IsPort,
                              "must be a network port (1-65535)", None, None)
REQ_CPU_MASK_CHECK: ParamCheck = (True, _IsCpuMaskWellFormed,
                                  "CPU mask definition is not well-formed",
                                  None, None)
OPT_CPU_MASK_CHECK: ParamCheck = (False,) + REQ_CPU_MASK_CHECK[1:]  # type: ignore[assignment]
NO_CHECK: ParamCheck = (False, None, None, None, None)
REQUIRED_CHECK: ParamCheck = (True, None, None, None, None)
MIGRATION_MODE_CHECK = ParamInSet(True, constants.HT_MIGRATION_MODES)


class HvInstanceState:
    """An instance's state as a hypervisor reports it (Ganeti's values)."""
    RUNNING = 0
    SHUTDOWN = 1

    @staticmethod
    def IsRunning(state: int) -> bool:
        """Whether the instance counts as running."""
        return state == HvInstanceState.RUNNING

    @staticmethod
    def IsShutdown(state: int) -> bool:
        """Whether the instance was shut down from inside (user down)."""
        return state == HvInstanceState.SHUTDOWN


#: What GetInstanceInfo returns: (name, id, memory MiB, vcpus, state, cpu time)
InstanceInfo = tuple[str, int, int, int, int, float]


class BaseHypervisor:
    """What a hypervisor implements; every method raises HypervisorError.

    ``block_devices`` given to StartInstance is a list of ``(disk,
    dev_path, uri)``: the disk object, the node-local path of its assembled
    device and its userspace URI (or None).
    """

    PARAMETERS: dict[str, ParamCheck] = {}
    #: Files the master distributes to every node (absolute paths)
    ANCILLARY_FILES: list[str] = []
    #: Those of them that may be missing
    ANCILLARY_FILES_OPT: list[str] = []
    CAN_MIGRATE = False

    # --- Life cycle ------------------------------------------------------

    def StartInstance(self, instance: objects.Instance,
                      block_devices: list[tuple[Any, str, str | None]],
                      startup_paused: bool) -> None:
        """Start an instance."""
        raise NotImplementedError

    def StopInstance(self, instance: objects.Instance | None, force: bool = False,
                     retry: bool = False, name: str | None = None,
                     timeout: float | None = None) -> None:
        """Stop an instance: ask the guest (soft) or pull the plug (force).

        ``name`` stops an instance known by name only (``instance`` None);
        ``retry`` tells that this is a repeated soft request.
        """
        raise NotImplementedError

    def CleanupInstance(self, instance_name: str) -> None:
        """Remove what a stopped instance left behind (optional)."""

    def RebootInstance(self, instance: objects.Instance) -> None:
        """Reboot an instance from inside (soft reboot)."""
        raise NotImplementedError

    def BalloonInstanceMemory(self, instance: objects.Instance, mem: int) -> None:
        """Change the memory of a running instance to ``mem`` MiB."""
        raise NotImplementedError

    # --- Hotplug (Ganeti 3.0's API): ``device`` is the Disk or NIC object,
    # ``extra`` for a disk its (link path, URI) on the node, ``seq`` the
    # device's index -----------------------------------------------------

    def HotplugSupported(self, instance: objects.Instance) -> None:
        """Whether the running ``instance`` can hotplug at all.

        @raise errors.HotplugError: saying why not
        """
        raise errors.HotplugError(f"Hypervisor {type(self).__name__} does not support"
                                  " hotplug")

    def VerifyHotplugSupport(self, instance: objects.Instance, action: str,
                             dev_type: str) -> None:
        """Whether ``action`` on a device of ``dev_type`` can be done hot.

        @raise errors.HotplugError: saying why not
        """
        raise errors.HotplugError(f"Hypervisor {type(self).__name__} does not support"
                                  " hotplug")

    def HotAddDevice(self, instance: objects.Instance, dev_type: str, device: Any,
                     extra: Any, seq: int) -> None:
        """Plug a device into the running instance."""
        raise errors.HotplugError("Hotplug is not supported")

    def HotDelDevice(self, instance: objects.Instance, dev_type: str, device: Any,
                     extra: Any, seq: int) -> None:
        """Unplug a device from the running instance."""
        raise errors.HotplugError("Hotplug is not supported")

    def HotModDevice(self, instance: objects.Instance, dev_type: str, device: Any,
                     extra: Any, seq: int) -> None:
        """Change a device of the running instance."""
        raise errors.HotplugError("Hotplug is not supported")

    # --- Queries ---------------------------------------------------------

    def ListInstances(self, hvparams: dict[str, Any] | None = None) -> list[str]:
        """Return the names of the running instances."""
        raise NotImplementedError

    def GetInstanceInfo(self, instance_name: str,
                        hvparams: dict[str, Any] | None = None
                        ) -> InstanceInfo | None:
        """Return an instance's (name, id, memory, vcpus, state, time), or None."""
        raise NotImplementedError

    def GetAllInstancesInfo(self, hvparams: dict[str, Any] | None = None
                            ) -> list[InstanceInfo]:
        """Return GetInstanceInfo's tuple for every running instance."""
        raise NotImplementedError

    def GetNodeInfo(self, hvparams: dict[str, Any] | None = None) -> dict[str, Any]:
        """Return memory_total/free/dom0 (MiB) and cpu_total/nodes/sockets."""
        raise NotImplementedError

    @classmethod
    def GetInstanceConsole(cls, instance: objects.Instance, primary_node: Any,
                           node_group: Any, hvparams: dict[str, Any],
                           beparams: dict[str, Any]) -> objects.InstanceConsole:
        """Return how to reach the instance's console."""
        raise NotImplementedError

    def Verify(self, hvparams: dict[str, Any] | None = None) -> str | None:
        """Check the hypervisor on this node; return a problem or None."""
        return None

    @classmethod
    def GetAncillaryFiles(cls) -> tuple[list[str], list[str]]:
        """Return (files to distribute, those of them that are optional)."""
        return list(cls.ANCILLARY_FILES), list(cls.ANCILLARY_FILES_OPT)

    def PowercycleNode(self, hvparams: dict[str, Any] | None = None) -> None:
        """Hard-reset the node."""
        raise NotImplementedError

    # --- Migration: source MigrationInfo, target AcceptInstance, source
    # MigrateInstance, target FinalizeMigrationDst, source
    # FinalizeMigrationSource ----------------------------------------------

    def MigrationInfo(self, instance: objects.Instance) -> str:
        """Return what the target needs to accept the instance (on the source)."""
        return ""

    def AcceptInstance(self, instance: objects.Instance, info: str,
                       target: str,
                       block_devices: list[tuple[Any, str, str | None]] | None = None
                       ) -> None:
        """Prepare to receive a migrating instance (on the target), whose
        disks are ``block_devices`` (disk, link, URI) on this node."""
        raise NotImplementedError

    def FinalizeMigrationDst(self, instance: objects.Instance, info: str,
                             success: bool) -> None:
        """Finish (or undo, if not success) the migration on the target."""
        raise NotImplementedError

    def MigrateInstance(self, cluster_name: str, instance: objects.Instance,
                        target: str, live: bool) -> None:
        """Send the instance to ``target`` (on the source)."""
        raise NotImplementedError

    def FinalizeMigrationSource(self, instance: objects.Instance, success: bool,
                                live: bool) -> None:
        """Finish (or undo, if not success) the migration on the source."""
        raise NotImplementedError

    def GetMigrationStatus(self, instance: objects.Instance) -> dict[str, Any]:
        """Return {"status": HV_MIGRATION_*, ...} of a running migration."""
        raise NotImplementedError

    # --- Parameters ------------------------------------------------------

    @classmethod
    def CheckParameterSyntax(cls, hvparams: dict[str, Any]) -> None:
        """Check hvparams without looking at the node.

        @raise errors.HypervisorError: naming the parameter and its value
        """
        unknown = sorted(set(hvparams) - set(cls.PARAMETERS))
        if unknown:
            raise errors.HypervisorError(
                f"Parameter(s) {', '.join(unknown)} not supported by the"
                f" {cls.__name__} hypervisor (supported:"
                f" {', '.join(sorted(cls.PARAMETERS)) or 'none'})")
        for name, (required, check_fn, check_msg, _, _) in cls.PARAMETERS.items():
            if name not in hvparams:
                if required:
                    raise errors.HypervisorError(
                        f"Parameter '{name}' is required but not set")
                continue
            value = hvparams[name]
            if not required and value in ("", None):
                continue
            if check_fn is not None and not check_fn(value):
                raise errors.HypervisorError(
                    f"Parameter '{name}' fails syntax check: {check_msg}"
                    f" (current value: '{value}')")

    def ValidateParameters(self, hvparams: dict[str, Any]) -> None:
        """Check hvparams against this node (files exist, ...).

        @raise errors.HypervisorError: naming the parameter and its value
        """
        for name, (required, _, _, validate_fn, validate_msg) in self.PARAMETERS.items():
            value = hvparams.get(name)
            if not required and value in ("", None):
                continue
            if validate_fn is not None and not validate_fn(value):
                raise errors.HypervisorError(
                    f"Parameter '{name}' fails validation: {validate_msg}"
                    f" (current value: '{value}')")


# --- Node memory and CPUs from /proc (what hypervisors without their own
# --- accounting report) --------------------------------------------------------------

MEMINFO_FILE = "/proc/meminfo"
CPUINFO_FILE = "/proc/cpuinfo"
NUMA_NODES_GLOB = "/sys/devices/system/node/node[0-9]*"


def ParseMeminfo(text: str) -> dict[str, int]:
    """Parse /proc/meminfo into {field: KiB}."""
    result = {}
    for line in text.splitlines():
        name, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            result[name.strip()] = int(parts[0])
    return result


def ParseCpuinfo(text: str) -> tuple[int, int]:
    """Return (logical CPUs, physical sockets) from /proc/cpuinfo."""
    cpus = 0
    sockets = set()
    for line in text.splitlines():
        name, _, value = line.partition(":")
        name = name.strip()
        if name == "processor":
            cpus += 1
        elif name == "physical id":
            sockets.add(value.strip())
    return cpus, max(1, len(sockets))


def GetLinuxNodeInfo(meminfo_file: str = MEMINFO_FILE,
                     cpuinfo_file: str = CPUINFO_FILE,
                     numa_glob: str = NUMA_NODES_GLOB) -> dict[str, Any]:
    """Return the node's memory (MiB) and CPU counts, as hypervisors report.

    Keys: memory_total, memory_free (free plus reclaimable caches),
    memory_dom0 (used by the node itself), cpu_total, cpu_nodes (NUMA),
    cpu_sockets, cpu_dom0. Raises HypervisorError when the files cannot
    be read or lack a field.
    """
    try:
        with open(meminfo_file, encoding="ascii") as fd:
            mem = ParseMeminfo(fd.read())
        with open(cpuinfo_file, encoding="utf-8", errors="replace") as fd:
            cpus, sockets = ParseCpuinfo(fd.read())
    except OSError as err:
        raise errors.HypervisorError(
            f"Cannot read memory or CPU information: {err}") from err
    try:
        total = mem["MemTotal"] // 1024
        free = (mem["MemFree"] + mem.get("Buffers", 0) + mem.get("Cached", 0)) // 1024
    except KeyError as err:
        raise errors.HypervisorError(f"Missing field {err} in {meminfo_file}") from err
    cpus = cpus or os.cpu_count() or 1
    numa_nodes = len(glob.glob(numa_glob)) or 1
    return {
        "memory_total": total,
        "memory_free": free,
        "memory_dom0": total - free,
        "cpu_total": cpus,
        "cpu_nodes": numa_nodes,
        "cpu_sockets": sockets,
        "cpu_dom0": cpus,
    }
