"""The fake hypervisor: instances that exist only as state files.

Each running instance is a JSON file ``<state dir>/<instance name>``
(default ``pathutils.RUN_DIR/fake-hypervisor``, so under the node's root in
a virtual cluster). The file survives a node daemon restart, which is how a
node keeps listing its instances. It holds the instance's memory, vCPUs,
disks, NICs, start time and, during a migration, its migration state.

Memory accounting: the node's total memory is ``memory_total`` (MiB) from
the node-local settings file ``pathutils.CONF_DIR/fake-hypervisor.json``
when present (also ``cpu_total``), otherwise the real memory from
``/proc/meminfo``; running instances use their ``maxmem``. Starting (or
accepting by migration) an instance that does not fit fails with a message
naming the sizes.

Migration moves the state file: the target's AcceptInstance writes it in
state "incoming" (memory reserved), the source's MigrateInstance marks its
copy "outgoing", FinalizeMigrationDst makes the target's copy "running"
(or drops it) and FinalizeMigrationSource drops the source's copy (or
makes it running again).

For tests, a state file with ``"ignore_soft_stop": true`` simulates a guest
that ignores soft shutdown requests.

NIC scripts: with ``GANETI_FAKE_NIC_SCRIPTS=dry`` in the node daemon's
environment, the fake hypervisor runs each NIC's up script in dry mode
(:mod:`ganeti.hypervisor.netscripts`: the commands are printed, not run) on
a start and on the target of a migration, and the down script when the
instance stops or leaves by migration, on an interface named as KVM's taps;
the up scripts' output is kept in the state file (``"nic_scripts"``) and
logged. A failing up script fails the start, as with KVM; down scripts are
best effort. Unset (or ``off``), no script runs.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import time
import zlib
from typing import Any

from ganeti import constants, errors, objects, pathutils, serializer, utils
from ganeti.hypervisor import base, netscripts

_RUNNING = "running"
_INCOMING = "incoming"
_OUTGOING = "outgoing"
_LOCK_TIMEOUT = 30.0
#: The environment variable enabling the NIC scripts (module documentation)
NIC_SCRIPTS_VAR = "GANETI_FAKE_NIC_SCRIPTS"


def DefaultStateDir() -> str:
    """Where instance state files live on this node."""
    return pathutils.RUN_DIR + "/fake-hypervisor"


def DefaultSettingsFile() -> str:
    """The node-local settings file (memory_total, cpu_total)."""
    return pathutils.CONF_DIR + "/fake-hypervisor.json"


def NicScriptsEnabled() -> bool:
    """Whether NIC scripts run (in dry mode): ``GANETI_FAKE_NIC_SCRIPTS``.

    @raise errors.HypervisorError: for a value other than dry, off or empty
    """
    value = os.environ.get(NIC_SCRIPTS_VAR, "").strip().lower()
    if value in ("", "off"):
        return False
    if value == "dry":
        return True
    raise errors.HypervisorError(f"Invalid {NIC_SCRIPTS_VAR} {value!r}: dry or off")


def _NicUp(instance: objects.Instance) -> list[dict[str, Any]]:
    """Run the up script of each NIC in dry mode; what the down scripts need."""
    from ganeti.hypervisor.hv_kvm import netdev
    done: list[dict[str, Any]] = []
    try:
        for index, nic in enumerate(instance.nics or []):
            iface = netdev.TapName(instance.name, index, nic.uuid)
            nicparams = dict(nic.nicparams or {})
            output = netscripts.RunNicScript(
                netscripts.ACTION_UP, instance.name, index, nic, nicparams, iface,
                tags=instance.GetTags(), dry_run=True)
            done.append({"index": index, "interface": iface, "nic": nic.ToDict(),
                         "nicparams": nicparams, "tags": sorted(instance.GetTags()),
                         "output": output.splitlines()})
    except errors.HypervisorError:
        _NicDown(instance.name, done)
        raise
    return done


def _NicDown(name: str, entries: list[dict[str, Any]]) -> None:
    """Run the down script (dry mode) of NICs set up by :func:`_NicUp`."""
    for entry in entries:
        try:
            netscripts.RunNicScript(
                netscripts.ACTION_DOWN, name, entry["index"],
                objects.NIC.FromDict(entry["nic"]), entry["nicparams"],
                entry["interface"], tags=entry.get("tags", ()), dry_run=True)
        except (errors.GenericError, KeyError, TypeError) as err:
            logging.warning("Fake instance %s: down script of NIC %s failed: %s",
                            name, entry.get("index"), err)


def _InstanceMemory(instance: objects.Instance) -> int:
    beparams = objects.FillDict(constants.BEC_DEFAULTS, instance.beparams or {})
    return int(beparams[constants.BE_MAXMEM])


def _InstanceVcpus(instance: objects.Instance) -> int:
    beparams = objects.FillDict(constants.BEC_DEFAULTS, instance.beparams or {})
    return int(beparams[constants.BE_VCPUS])


class FakeHypervisor(base.BaseHypervisor):
    """Instances as files; see the module documentation."""

    PARAMETERS = {
        constants.HV_MIGRATION_MODE: base.MIGRATION_MODE_CHECK,
    }
    CAN_MIGRATE = True

    def __init__(self, state_dir: str | None = None,
                 settings_file: str | None = None):
        self._state_dir = state_dir
        self._settings_file = settings_file

    # --- Files -----------------------------------------------------------

    @property
    def state_dir(self) -> str:
        """The directory of the state files (created on demand)."""
        return self._state_dir or DefaultStateDir()

    def _StatePath(self, name: str) -> str:
        if not name or "/" in name or name.startswith("."):
            raise errors.HypervisorError(f"Invalid instance name '{name}'")
        return f"{self.state_dir}/{name}"

    def _Lock(self) -> utils.FileLock:
        os.makedirs(self.state_dir, exist_ok=True)
        lock = utils.FileLock.Open(f"{self.state_dir}/.lock")
        try:
            lock.Exclusive(timeout=_LOCK_TIMEOUT)
        except errors.LockError as err:
            lock.Close()
            raise errors.HypervisorError(f"Fake hypervisor busy: {err}") from err
        return lock

    def _ReadState(self, name: str) -> dict[str, Any] | None:
        try:
            data = utils.ReadFile(self._StatePath(name))
        except OSError as err:
            if err.errno == errno.ENOENT:
                return None
            raise errors.HypervisorError(
                f"Cannot read the state of instance {name}: {err}") from err
        try:
            state = serializer.LoadJson(data)
        except errors.ParseError as err:
            raise errors.HypervisorError(
                f"Corrupt state file {self._StatePath(name)}: {err}") from err
        if not isinstance(state, dict):
            raise errors.HypervisorError(
                f"Corrupt state file {self._StatePath(name)}: not an object")
        return state

    def _WriteState(self, name: str, state: dict[str, Any]) -> None:
        os.makedirs(self.state_dir, exist_ok=True)
        utils.WriteFile(self._StatePath(name), data=serializer.DumpJson(state),
                        mode=0o600)

    def _RemoveState(self, name: str) -> None:
        utils.RemoveFile(self._StatePath(name))

    def _AllStates(self) -> dict[str, dict[str, Any]]:
        try:
            names = utils.ListVisibleFiles(self.state_dir)
        except FileNotFoundError:
            return {}
        except OSError as err:
            raise errors.HypervisorError(
                f"Cannot list {self.state_dir}: {err}") from err
        result = {}
        for name in names:
            state = self._ReadState(name)
            if state is not None:
                result[name] = state
        return result

    # --- Memory ----------------------------------------------------------

    def _Settings(self) -> dict[str, Any]:
        path = self._settings_file or DefaultSettingsFile()
        try:
            data = utils.ReadFile(path)
        except FileNotFoundError:
            return {}
        except OSError as err:
            raise errors.HypervisorError(f"Cannot read {path}: {err}") from err
        try:
            settings = json.loads(data)
        except ValueError as err:
            raise errors.HypervisorError(f"Invalid JSON in {path}: {err}") from err
        for key in ("memory_total", "cpu_total"):
            value = settings.get(key)
            if value is not None and (not isinstance(value, int) or
                                      isinstance(value, bool) or value <= 0):
                raise errors.HypervisorError(
                    f"Invalid {key} {value!r} in {path}: must be a positive"
                    " integer")
        return settings

    def GetNodeInfo(self, hvparams: dict[str, Any] | None = None) -> dict[str, Any]:
        """Node memory and CPUs, minus what the fake instances use."""
        settings = self._Settings()
        used = sum(int(s.get("memory", 0)) for s in self._AllStates().values())
        if "memory_total" in settings:
            total = settings["memory_total"]
            result = {
                "memory_total": total, "memory_dom0": 0,
                "memory_free": max(0, total - used),
                "cpu_total": settings.get("cpu_total", os.cpu_count() or 1),
                "cpu_nodes": 1, "cpu_sockets": 1,
            }
            result["cpu_dom0"] = result["cpu_total"]
        else:
            result = base.GetLinuxNodeInfo()
            result["memory_free"] = max(0, result["memory_free"] - used)
            if "cpu_total" in settings:
                result["cpu_total"] = settings["cpu_total"]
        result["instances_memory"] = used
        return result

    def _CheckMemory(self, name: str, needed: int, verb: str) -> None:
        info = self.GetNodeInfo()
        if needed > info["memory_free"]:
            raise errors.HypervisorError(
                f"Not enough memory to {verb} instance {name}: needs {needed} MiB,"
                f" the node has {info['memory_free']} MiB free of"
                f" {info['memory_total']} MiB")

    # --- Life cycle ------------------------------------------------------

    def _NewState(self, instance: objects.Instance,
                  block_devices: list[tuple[Any, str, str | None]],
                  status: str) -> dict[str, Any]:
        return {
            "name": instance.name,
            "uuid": instance.uuid,
            "memory": _InstanceMemory(instance),
            "vcpus": _InstanceVcpus(instance),
            "status": status,
            "started": time.time(),
            "paused": False,
            "disks": [path for _, path, _ in block_devices],
            "nics": [nic.mac for nic in instance.nics or []],
        }

    def StartInstance(self, instance, block_devices, startup_paused):
        """Write the state file, if the instance is not running and fits."""
        with self._Lock():
            old = self._ReadState(instance.name)
            if old is not None:
                raise errors.HypervisorError(
                    f"Failed to start instance {instance.name}: it is already"
                    f" {old.get('status', _RUNNING)} on this node")
            self._CheckMemory(instance.name, _InstanceMemory(instance), "start")
            state = self._NewState(instance, block_devices, _RUNNING)
            state["paused"] = bool(startup_paused)
            if NicScriptsEnabled():
                state["nic_scripts"] = _NicUp(instance)
            self._WriteState(instance.name, state)

    def StopInstance(self, instance=None, force=False, retry=False, name=None,
                     timeout=None):
        """Remove the state file (a soft stop may be ignored, see module doc)."""
        if name is None:
            if instance is None:
                raise errors.ProgrammerError("StopInstance needs an instance or a name")
            name = instance.name
        with self._Lock():
            state = self._ReadState(name)
            if state is None:
                raise errors.HypervisorError(
                    f"Failed to stop instance {name}: not running on this node")
            if not force and state.get("ignore_soft_stop"):
                return
            self._RemoveState(name)
            _NicDown(name, state.get("nic_scripts") or [])

    def RebootInstance(self, instance):
        """Record the reboot (the instance stays running)."""
        with self._Lock():
            state = self._ReadState(instance.name)
            if state is None:
                raise errors.HypervisorError(
                    f"Failed to reboot instance {instance.name}: not running")
            state["started"] = time.time()
            state["reboots"] = int(state.get("reboots", 0)) + 1
            self._WriteState(instance.name, state)

    def BalloonInstanceMemory(self, instance, mem):
        """Change the recorded memory, if the node has room."""
        with self._Lock():
            state = self._ReadState(instance.name)
            if state is None:
                raise errors.HypervisorError(
                    f"Cannot balloon instance {instance.name}: not running")
            extra = int(mem) - int(state["memory"])
            if extra > 0:
                self._CheckMemory(instance.name, extra, "grow the memory of")
            state["memory"] = int(mem)
            self._WriteState(instance.name, state)

    # --- Queries ---------------------------------------------------------

    @staticmethod
    def _InfoTuple(name: str, state: dict[str, Any]) -> base.InstanceInfo:
        inst_id = zlib.crc32(name.encode("utf-8")) & 0x7FFFFFFF
        return (name, inst_id, int(state.get("memory", 0)),
                int(state.get("vcpus", 1)), base.HvInstanceState.RUNNING,
                max(0.0, time.time() - float(state.get("started", time.time()))))

    def ListInstances(self, hvparams=None):
        """Names of the instances running here (not those migrating in)."""
        return [name for name, state in self._AllStates().items()
                if state.get("status") != _INCOMING]

    def GetInstanceInfo(self, instance_name, hvparams=None):
        """Info tuple of one instance, or None."""
        state = self._ReadState(instance_name)
        if state is None or state.get("status") == _INCOMING:
            return None
        return self._InfoTuple(instance_name, state)

    def GetAllInstancesInfo(self, hvparams=None):
        """Info tuples of every running instance."""
        return [self._InfoTuple(name, state)
                for name, state in self._AllStates().items()
                if state.get("status") != _INCOMING]

    @classmethod
    def GetInstanceConsole(cls, instance, primary_node, node_group, hvparams,
                           beparams):
        """The fake hypervisor has no console: say so."""
        node_name = getattr(primary_node, "name", primary_node)
        return objects.InstanceConsole(
            instance=instance.name, kind=constants.CONS_MESSAGE,
            message=(f"Instance {instance.name} runs on the fake hypervisor"
                     f" of node {node_name}, which has no console; its state is"
                     " kept in a file under the node's fake-hypervisor"
                     " directory"))

    def Verify(self, hvparams=None):
        """Check that the state directory is usable."""
        try:
            os.makedirs(self.state_dir, exist_ok=True)
        except OSError as err:
            return f"Cannot create the fake hypervisor directory {self.state_dir}: {err}"
        if not os.access(self.state_dir, os.W_OK):
            return f"The fake hypervisor directory {self.state_dir} is not writable"
        return None

    def PowercycleNode(self, hvparams=None):
        """Do not reset anything (the node may be one of many on this
        machine): append the time to ``<state dir>.powercycle``, which tests
        read, and log it."""
        path = self.state_dir.rstrip("/") + ".powercycle"
        logging.warning("Fake hypervisor: power-cycle requested, recorded in %s", path)
        try:
            with open(path, "a", encoding="ascii") as fd:
                fd.write(f"{time.time():.3f}\n")
        except OSError as err:
            raise errors.HypervisorError(f"Cannot record the power-cycle in {path}:"
                                         f" {err}") from err

    # --- Migration -------------------------------------------------------

    def MigrationInfo(self, instance):
        """The instance's state file, for the target."""
        state = self._ReadState(instance.name)
        if state is None or state.get("status") != _RUNNING:
            raise errors.HypervisorError(
                f"Cannot migrate instance {instance.name}: not running on this node")
        return serializer.DumpJson(state)

    def AcceptInstance(self, instance, info, target, block_devices=None):
        """Reserve the instance's memory with an "incoming" state file."""
        try:
            state = serializer.LoadJson(info) if info else {}
        except errors.ParseError as err:
            raise errors.HypervisorError(f"Invalid migration info: {err}") from err
        if not isinstance(state, dict):
            raise errors.HypervisorError("Invalid migration info: not an object")
        with self._Lock():
            if self._ReadState(instance.name) is not None:
                raise errors.HypervisorError(
                    f"Cannot accept instance {instance.name}: it already exists on"
                    " this node")
            memory = int(state.get("memory", _InstanceMemory(instance)))
            self._CheckMemory(instance.name, memory, "accept")
            new = self._NewState(instance, [], _INCOMING)
            new.update({key: state[key] for key in ("memory", "vcpus", "disks", "nics")
                        if key in state})
            if NicScriptsEnabled():
                new["nic_scripts"] = _NicUp(instance)
            self._WriteState(instance.name, new)

    def FinalizeMigrationDst(self, instance, info, success):
        """Make the incoming copy run, or drop it."""
        with self._Lock():
            state = self._ReadState(instance.name)
            if state is None or state.get("status") != _INCOMING:
                if success:
                    raise errors.HypervisorError(
                        f"Instance {instance.name} was not being received here")
                return
            if success:
                state["status"] = _RUNNING
                self._WriteState(instance.name, state)
            else:
                self._RemoveState(instance.name)
                _NicDown(instance.name, state.get("nic_scripts") or [])

    def MigrateInstance(self, cluster_name, instance, target, live):
        """Mark the source copy as outgoing (the "transfer" is instant)."""
        with self._Lock():
            state = self._ReadState(instance.name)
            if state is None or state.get("status") != _RUNNING:
                raise errors.HypervisorError(
                    f"Cannot migrate instance {instance.name}: not running here")
            state.update({"status": _OUTGOING, "migration_target": target,
                          "migration_live": bool(live)})
            self._WriteState(instance.name, state)

    def FinalizeMigrationSource(self, instance, success, live):
        """Drop the source copy, or let it run again."""
        with self._Lock():
            state = self._ReadState(instance.name)
            if state is None:
                return
            if success:
                self._RemoveState(instance.name)
                _NicDown(instance.name, state.get("nic_scripts") or [])
            else:
                state["status"] = _RUNNING
                for key in ("migration_target", "migration_live"):
                    state.pop(key, None)
                self._WriteState(instance.name, state)

    def GetMigrationStatus(self, instance):
        """Completed once MigrateInstance ran; failed if nothing is migrating."""
        state = self._ReadState(instance.name)
        if state is not None and state.get("status") == _OUTGOING:
            return {"status": constants.HV_MIGRATION_COMPLETED,
                    "transferred_ram": state.get("memory", 0),
                    "total_ram": state.get("memory", 0)}
        return {"status": constants.HV_MIGRATION_FAILED,
                "info": f"Instance {instance.name} is not being migrated"}
