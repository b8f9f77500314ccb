"""The KVM hypervisor: QEMU processes driven through their command line and QMP.

The pieces: the parameters (:mod:`.params`), the QEMU command line
(:mod:`.cmdline`, a pure function), the QMP client (:mod:`.monitor`),
runtime files and process checks (:mod:`.runtime`), hotplug
(:mod:`.hotplug`); tap devices come from :mod:`.netdev` and the security
models (``-runas``, the uid pool, ``-chroot``) from :mod:`.security`, both
imported only when an instance needs them.

:class:`KVMHypervisor` starts QEMU daemonized (``-daemonize``, a pid file,
QMP, the serial console on a Unix socket, VNC/SPICE as the parameters
say), writes the instance's runtime file, and answers every later
question from the live process (its pid file, checked against
``/proc/PID/cmdline``) and the runtime file, so that it needs no state in
the node daemon: a restarted node daemon stops, reboots and lists the
instances it started before.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shlex
import time
from typing import Any

from ganeti import constants, errors, objects, pathutils, utils
from ganeti.hypervisor import base
from ganeti.hypervisor.hv_kvm import cmdline, hotplug, migration, params, runtime
from ganeti.hypervisor.hv_kvm.monitor import MonitorError, QmpConnection

_C = constants

#: Seconds a soft stop waits before pressing the ACPI power button again
#: (the backend asks every HV_SOFT_STOP_POLL; a guest still booting may
#: miss the first press)
POWERDOWN_REPEAT = 3.0
#: Seconds QEMU gets to initialise (it daemonizes once ready)
START_TIMEOUT = 120
#: Seconds a query of a user_shutdown instance's run state may take
USER_SHUTDOWN_QUERY_TIMEOUT = 5.0
#: The serial console client (socat); its escape key is Ctrl-]
SOCAT_PATH = "socat"
SOCAT_ESCAPE = "0x1d"
#: Whom the serial console's ssh logs in as on the primary node
SSH_CONSOLE_USER = "root"


def _Fail(msg: str) -> errors.HypervisorError:
    return errors.HypervisorError(msg)


def _FillBe(instance: objects.Instance) -> dict[str, Any]:
    return objects.FillDict(_C.BEC_DEFAULTS, instance.beparams or {})


def SerialConsoleCommand(socket_path: str) -> list[str]:
    """The command reaching a serial console socket.

    On a terminal it is interactive (raw mode, Ctrl-] leaves); otherwise
    (a script, stdin not a terminal) it only copies the console's output
    to stdout, so that ``gnt-instance console --show-cmd``'s command can be
    run to read the console.
    """
    target = shlex.quote(f"UNIX-CONNECT:{socket_path}")
    script = (f"if [ -t 0 ]; then exec {SOCAT_PATH} STDIO,raw,echo=0,"
              f"escape={SOCAT_ESCAPE} {target}; else exec {SOCAT_PATH} -u {target}"
              " STDOUT; fi")
    return ["/bin/sh", "-c", script]


class KVMHypervisor(base.BaseHypervisor):
    """QEMU/KVM instances; see the module documentation."""

    PARAMETERS = params.PARAMETERS
    CAN_MIGRATE = True

    def __init__(self, run_dir: str | None = None) -> None:
        self._run_dir = run_dir

    # --- paths -------------------------------------------------------------

    @property
    def run_dir(self) -> str:
        """The hypervisor's runtime directory (below the node's root)."""
        return self._run_dir or cmdline.KvmRunDir()

    def _Files(self, name: str) -> cmdline.RuntimeFiles:
        return cmdline.RuntimeFiles.ForInstance(runtime.CheckName(name), self.run_dir)

    def _Pid(self, name: str) -> int | None:
        return runtime.InstancePid(name, self.run_dir)

    def _Runtime(self, name: str) -> runtime.Runtime | None:
        return runtime.ReadRuntime(name, self.run_dir)

    def _Qmp(self, name: str, timeout: float = 10.0) -> QmpConnection:
        conn = QmpConnection(self._Files(name).qmp, timeout=timeout)
        conn.Connect()
        return conn

    def _EnsureDirs(self) -> None:
        for sub in ("pid", "ctrl", "runtime"):
            os.makedirs(f"{self.run_dir}/{sub}", mode=0o750, exist_ok=True)

    # --- parameters ----------------------------------------------------------

    @classmethod
    def CheckParameterSyntax(cls, hvparams: dict[str, Any]) -> None:
        """Check each parameter, then those that depend on one another."""
        super().CheckParameterSyntax(hvparams)
        params.CheckCrossParameters(hvparams)

    def ValidateParameters(self, hvparams: dict[str, Any]) -> None:
        """Check files, users, devices and the QEMU binary on this node."""
        super().ValidateParameters(hvparams)
        params.ValidateNodeParameters(hvparams)

    # --- start -------------------------------------------------------------

    def StartInstance(self, instance: objects.Instance,
                      block_devices: list[tuple[Any, str, str | None]],
                      startup_paused: bool, incoming: str | None = None) -> None:
        """Start QEMU for ``instance``; with ``incoming`` (an address) it waits
        for a migration on that address and ``migration_port``.

        On any failure nothing is left behind: no process, tap, runtime
        file, pid file or socket; the error carries QEMU's own message.
        """
        name = runtime.CheckName(instance.name)
        if self._Pid(name) is not None:
            raise _Fail(f"Failed to start instance {name}: it is already running")
        # A crash (of QEMU or of the node) may have left files and taps
        self.CleanupInstance(name)
        hvp = cmdline.FillParameters(instance.hvparams or {})
        bep = _FillBe(instance)
        memory, vcpus = int(bep[_C.BE_MAXMEM]), int(bep[_C.BE_VCPUS])
        files = self._Files(name)
        self._EnsureDirs()
        disks = [cmdline.DiskSpec(path, getattr(disk, "mode", None) or _C.DISK_RDWR,
                                  getattr(disk, "uuid", "") or "")
                 for disk, path, _ in block_devices]
        state = runtime.Runtime(
            name=name, uuid=instance.uuid, argv=[], memory=memory, max_memory=memory,
            vcpus=vcpus, hvparams=hvp, instance=instance.ToDict(),
            disks=[{"path": path, "mode": mode, "name": dname, "uri": uri}
                   for (path, mode, dname), (_, _, uri) in zip(disks, block_devices)],
            started=time.time(), incoming=incoming)
        security = None
        tap_fds: list[int] = []
        try:
            security = self._PrepareSecurity(name, hvp)
            if security is not None:
                state.security = {"runas": getattr(security, "runas", None),
                                  "uid": getattr(security, "uid", None)}
                chroot = getattr(security, "chroot", None)
                if chroot:
                    files = dataclasses.replace(files, chroot=chroot)
            nics, tap_fds = self._SetupNics(instance, hvp, state)
            argv = cmdline.BuildCommandLine(
                name, instance.uuid, memory, vcpus, hvp, disks, nics, files,
                network_port=instance.network_port, incoming_address=incoming,
                runas_user=state.security.get("runas"), paused=bool(startup_paused))
            state.argv = argv
            # Written first: a node daemon dying right after the start still
            # leaves what is needed to stop or clean up the instance
            runtime.WriteRuntime(state, self.run_dir)
            self._RunQemu(name, argv, tap_fds)
            if security is not None:
                security.Started()
            self._AfterStart(name, hvp, vcpus)
        except BaseException as err:
            self._UndoStart(name, files, state, security)
            if isinstance(err, errors.HypervisorError):
                raise _Fail(f"Failed to start instance {name}: {err}") from None
            raise
        finally:
            for fd in tap_fds:
                try:
                    os.close(fd)
                except OSError:
                    pass

    def _PrepareSecurity(self, name: str, hvp: dict[str, Any]) -> Any:
        if (hvp[_C.HV_SECURITY_MODEL] == _C.HT_SM_NONE
                and not hvp[_C.HV_KVM_USE_CHROOT]):
            return None
        from ganeti.hypervisor.hv_kvm import security
        # The uid pool comes from this node's ssconf
        return security.PrepareSecurity(name, hvp, None, run_dir=self.run_dir)

    def _SetupNics(self, instance: objects.Instance, hvp: dict[str, Any],
                   state: runtime.Runtime) -> tuple[list[cmdline.NicSpec], list[int]]:
        """Open and configure a tap per NIC; recorded in ``state.nics`` as
        they are made, so that a failure undoes exactly those."""
        if not instance.nics:
            return [], []
        from ganeti.hypervisor.hv_kvm import netdev
        virtio = hvp[_C.HV_NIC_TYPE] == _C.HT_NIC_PARAVIRTUAL
        queues = hvp[_C.HV_VIRTIO_NET_QUEUES] if virtio else 1
        specs: list[cmdline.NicSpec] = []
        all_fds: list[int] = []
        for index, nic in enumerate(instance.nics):
            tap = netdev.TapName(instance.name, index, nic.uuid)
            fds = netdev.OpenTap(tap, vnet_hdr=bool(hvp[_C.HV_VNET_HDR]), queues=queues)
            all_fds.extend(fds)
            state.nics.append({"index": index, "mac": nic.mac, "tap": tap,
                               "nic": nic.ToDict(), "nicparams": dict(nic.nicparams or {})})
            netdev.ConfigureNic(instance, index, nic, dict(nic.nicparams or {}), tap)
            specs.append(cmdline.NicSpec(nic.mac, fds if len(fds) > 1 else fds[0],
                                         nic.uuid or ""))
        return specs, all_fds

    def _RunQemu(self, name: str, argv: list[str], tap_fds: list[int]) -> None:
        files = self._Files(name)
        for path in runtime.SocketPaths(name, self.run_dir) + [files.pidfile]:
            utils.RemoveFile(path)
        result = utils.RunCmd(argv, noclose_fds=tap_fds, timeout=START_TIMEOUT)
        if result.failed:
            output = (result.stderr or result.stdout or "").strip()
            raise _Fail(f"QEMU failed ({result.fail_reason}): {output or 'no output'}")
        if self._Pid(name) is None:
            raise _Fail("QEMU exited right after starting (no live process for its"
                        f" pid file {files.pidfile})")

    def _AfterStart(self, name: str, hvp: dict[str, Any], vcpus: int) -> None:
        """What QMP does once QEMU runs: the VNC password, vCPU pinning."""
        password = bool(hvp[_C.HV_VNC_BIND_ADDRESS] and hvp[_C.HV_VNC_PASSWORD_FILE])
        mask = hvp[_C.HV_CPU_MASK]
        pin = bool(mask) and mask != _C.CPU_PINNING_ALL
        if not password and not pin:
            return
        with self._Qmp(name) as qmp:
            if password:
                from ganeti.hypervisor.hv_kvm import security
                security.ApplyVncPassword(qmp, hvp)
            if pin:
                PinVcpus(qmp.GetVcpuThreads(), mask, vcpus)

    def _UndoStart(self, name: str, files: cmdline.RuntimeFiles,
                   state: runtime.Runtime, security: Any) -> None:
        pid = utils.ReadPidFile(files.pidfile)
        if pid and runtime.IsInstanceProcess(runtime.ReadCmdline(pid), name,
                                             files.pidfile):
            runtime.KillPid(pid)
        self._CleanupNics(name, state.nics)
        if security is not None:
            try:
                security.Cleanup()
            except Exception as err:  # noqa: BLE001 -- the start's error matters more
                logging.warning("KVM instance %s: security cleanup failed: %s", name, err)
        runtime.RemoveInstanceFiles(name, files)
        runtime.RemoveRuntime(name, self.run_dir)

    @staticmethod
    def _CleanupNics(name: str, nics: list[dict[str, Any]]) -> None:
        if not nics:
            return
        from ganeti.hypervisor.hv_kvm import netdev
        for entry in nics:
            try:
                nic = objects.NIC.FromDict(entry["nic"])
                netdev.CleanupNic(name, entry["index"], nic, entry.get("nicparams", {}),
                                  entry["tap"])
            except Exception as err:  # noqa: BLE001 -- clean up the other NICs too
                logging.warning("KVM instance %s: cannot clean up NIC %s: %s", name,
                                entry.get("index"), err)

    # --- stop ----------------------------------------------------------------

    def StopInstance(self, instance: objects.Instance | None, force: bool = False,
                     retry: bool = False, name: str | None = None,
                     timeout: float | None = None) -> None:
        """Soft: press the ACPI power button (again on a retry, every
        POWERDOWN_REPEAT seconds); without ACPI, or forced: kill QEMU."""
        if name is None:
            if instance is None:
                raise errors.ProgrammerError("StopInstance needs an instance or a name")
            name = instance.name
        pid = self._Pid(name)
        if pid is None:
            return
        state = self._Runtime(name)
        hvp = state.hvparams if state is not None else cmdline.FillParameters(
            instance.hvparams if instance is not None else {})
        if force or not hvp.get(_C.HV_ACPI, True) or self._ShutDownInside(name, state):
            # (a guest already off under user_shutdown: nothing to press)
            runtime.KillPid(pid)
            return
        now = time.time()
        if retry and state is not None and now - state.powerdown_sent < POWERDOWN_REPEAT:
            return
        try:
            with self._Qmp(name, timeout=min(10.0, timeout or 10.0)) as qmp:
                qmp.SystemPowerdown()
        except MonitorError as err:
            if self._Pid(name) is None:
                return  # it went away meanwhile
            raise _Fail(f"Cannot ask instance {name} to power down: {err}") from None
        if state is not None:
            state.powerdown_sent = now
            runtime.WriteRuntime(state, self.run_dir)

    def CleanupInstance(self, instance_name: str) -> None:
        """Remove what a stopped instance left: taps, security, pid file,
        sockets, runtime file (nothing while its QEMU still runs)."""
        name = runtime.CheckName(instance_name)
        if self._Pid(name) is not None:
            return
        try:
            state = self._Runtime(name)
        except errors.HypervisorError as err:
            logging.warning("KVM instance %s: %s; removing it", name, err)
            state = None
        if state is not None:
            self._CleanupNics(name, state.nics)
            hvp = state.hvparams
            if (hvp.get(_C.HV_SECURITY_MODEL, _C.HT_SM_NONE) != _C.HT_SM_NONE
                    or hvp.get(_C.HV_KVM_USE_CHROOT)):
                from ganeti.hypervisor.hv_kvm import security
                security.ReleaseSecurity(name, hvp, run_dir=self.run_dir)
        runtime.RemoveInstanceFiles(name, self._Files(name))
        runtime.RemoveRuntime(name, self.run_dir)

    # --- reboot, memory ----------------------------------------------------------

    def RebootInstance(self, instance: objects.Instance) -> None:
        """Reset the machine through QMP; with reboot_behavior=exit (QEMU
        would exit on a reset) restart QEMU from its runtime file instead."""
        name = instance.name
        pid = self._Pid(name)
        if pid is None:
            raise _Fail(f"Failed to reboot instance {name}: not running")
        state = self._Runtime(name)
        if state is None or state.hvparams.get(_C.HV_REBOOT_BEHAVIOR) != \
                _C.INSTANCE_REBOOT_EXIT:
            with self._Qmp(name) as qmp:
                qmp.SystemReset()
            return
        started = objects.Instance.FromDict(state.instance)
        block_devices = [(objects.Disk.FromDict(disk) if isinstance(disk, dict) else disk,
                          spec["path"], spec.get("uri"))
                         for disk, spec in zip(state.instance.get("disks", []),
                                               state.disks)]
        runtime.KillPid(pid)
        self.CleanupInstance(name)
        self.StartInstance(started, block_devices, False)

    def BalloonInstanceMemory(self, instance: objects.Instance, mem: int) -> None:
        """Ask the guest's balloon driver for ``mem`` MiB (at most maxmem)."""
        name = instance.name
        if self._Pid(name) is None:
            raise _Fail(f"Cannot balloon instance {name}: not running")
        state = self._Runtime(name)
        if state is not None and mem > state.max_memory:
            raise _Fail(f"Cannot balloon instance {name} to {mem} MiB: QEMU was"
                        f" started with {state.max_memory} MiB")
        with self._Qmp(name) as qmp:
            qmp.Balloon(int(mem) * 1024 * 1024)
        if state is not None:
            state.memory = int(mem)
            runtime.WriteRuntime(state, self.run_dir)

    # --- hotplug -----------------------------------------------------------------

    def _HotplugState(self, instance: objects.Instance) -> runtime.Runtime:
        if self._Pid(instance.name) is None:
            raise errors.HotplugError(f"Instance {instance.name} is not running")
        state = self._Runtime(instance.name)
        if state is None:
            raise errors.HotplugError(f"Instance {instance.name} has no runtime file")
        return state

    def HotplugSupported(self, instance: objects.Instance) -> None:
        """The instance runs and its QMP monitor answers."""
        self._HotplugState(instance)
        try:
            with self._Qmp(instance.name) as qmp:
                qmp.QueryStatus()
        except MonitorError as err:
            raise errors.HotplugError(f"Cannot reach the QMP monitor of instance"
                                      f" {instance.name}: {err}") from None

    def VerifyHotplugSupport(self, instance: objects.Instance, action: str,
                             dev_type: str) -> None:
        """Disks (paravirtual) and PCI NICs can be added and removed."""
        state = self._HotplugState(instance)
        hotplug.CheckSupported(state.hvparams, action, dev_type)

    def HotAddDevice(self, instance: objects.Instance, dev_type: str, device: Any,
                     extra: Any, seq: int) -> None:
        """Plug a disk (``extra``: its (link path, URI) on this node) or a NIC
        (a new tap, set up by the NIC's mode) into the running instance."""
        name = instance.name
        state = self._HotplugState(instance)
        hotplug.CheckSupported(state.hvparams, _C.HOTPLUG_ACTION_ADD, dev_type)
        if dev_type == _C.HOTPLUG_TARGET_DISK:
            if not extra or not extra[0]:
                raise errors.HotplugError(f"No path for the new disk of instance {name}")
            dev_id = cmdline.DeviceIdFor("disk", device.uuid)
            with self._Qmp(name) as qmp:
                slot = hotplug.AddDisk(qmp, state.hvparams, dev_id, extra[0],
                                       device.mode == _C.DISK_RDONLY)
            entry = {"kind": dev_type, "id": dev_id, "slot": slot, "path": extra[0]}
        else:
            entry = self._HotAddNic(instance, state, device, seq)
        state.hotplugged.append(entry)
        runtime.WriteRuntime(state, self.run_dir)

    def _HotAddNic(self, instance: objects.Instance, state: runtime.Runtime,
                   nic: objects.NIC, seq: int) -> dict[str, Any]:
        from ganeti.hypervisor.hv_kvm import netdev
        hvp = state.hvparams
        virtio = hvp[_C.HV_NIC_TYPE] == _C.HT_NIC_PARAVIRTUAL
        queues = hvp[_C.HV_VIRTIO_NET_QUEUES] if virtio else 1
        tap = netdev.TapName(instance.name, seq, nic.uuid)
        dev_id = cmdline.DeviceIdFor("nic", nic.uuid)
        nicparams = dict(nic.nicparams or {})
        entry = {"index": seq, "mac": nic.mac, "tap": tap, "nic": nic.ToDict(),
                 "nicparams": nicparams}
        fds = netdev.OpenTap(tap, vnet_hdr=bool(hvp[_C.HV_VNET_HDR]), queues=queues)
        try:
            netdev.ConfigureNic(instance, seq, nic, nicparams, tap)
            with self._Qmp(instance.name) as qmp:
                slot = hotplug.AddNic(qmp, hvp, dev_id, nic.mac, fds)
        except BaseException:
            self._CleanupNics(instance.name, [entry])
            raise
        finally:
            for fd in fds:
                os.close(fd)
        state.nics.append(entry)
        return {"kind": _C.HOTPLUG_TARGET_NIC, "id": dev_id, "slot": slot, "tap": tap}

    def HotDelDevice(self, instance: objects.Instance, dev_type: str, device: Any,
                     extra: Any, seq: int) -> None:
        """Unplug a disk or NIC (started with the instance or hotplugged)."""
        name = instance.name
        state = self._HotplugState(instance)
        hotplug.CheckSupported(state.hvparams, _C.HOTPLUG_ACTION_REMOVE, dev_type)
        prefix = "disk" if dev_type == _C.HOTPLUG_TARGET_DISK else "nic"
        dev_id = cmdline.DeviceIdFor(prefix, device.uuid)
        with self._Qmp(name) as qmp:
            if dev_type == _C.HOTPLUG_TARGET_DISK:
                hotplug.RemoveDisk(qmp, dev_id)
            else:
                hotplug.RemoveNic(qmp, dev_id)
        if dev_type == _C.HOTPLUG_TARGET_NIC:
            gone = [entry for entry in state.nics
                    if entry.get("nic", {}).get("uuid") == device.uuid]
            self._CleanupNics(name, gone)
            state.nics = [entry for entry in state.nics if entry not in gone]
        state.hotplugged = [entry for entry in state.hotplugged if entry["id"] != dev_id]
        runtime.WriteRuntime(state, self.run_dir)

    def HotModDevice(self, instance: objects.Instance, dev_type: str, device: Any,
                     extra: Any, seq: int) -> None:
        """Not supported (see :func:`hotplug.CheckSupported`)."""
        state = self._HotplugState(instance)
        hotplug.CheckSupported(state.hvparams, _C.HOTPLUG_ACTION_MODIFY, dev_type)

    # --- migration (see :mod:`.migration`) ------------------------------------------

    def MigrationInfo(self, instance: objects.Instance) -> str:
        """On the source: the instance as its QEMU was started, its memory
        and whether its guest runs (:func:`migration.EncodeInfo`)."""
        name = runtime.CheckName(instance.name)
        if self._Pid(name) is None:
            raise _Fail(f"Cannot migrate instance {name}: not running on this node")
        state = self._Runtime(name)
        if state is None:
            raise _Fail(f"Cannot migrate instance {name}: it has no runtime file")
        migration.CheckDevicesUnchanged(state.instance, instance.ToDict(),
                                        state.hotplugged)
        with self._Qmp(name) as qmp:
            running = qmp.QueryStatus().get("status") == "running"
        return migration.EncodeInfo(state.instance, state.memory, running)

    def AcceptInstance(self, instance: objects.Instance, info: str, target: str,
                       block_devices: list[tuple[Any, str, str | None]] | None = None
                       ) -> None:
        """On the target: start the source's QEMU (same devices, same
        parameters) waiting for the migration on ``target`` (this node's
        address) and ``migration_port``, with the migration capabilities on.

        ``block_devices`` are the disks' (disk, link, URI) on this node. A
        QEMU that cannot start (the port taken, a disk missing) leaves
        nothing behind, as any failed start.
        """
        name = runtime.CheckName(instance.name)
        data = migration.DecodeInfo(info)
        started = objects.Instance.FromDict(data["instance"])
        hvp = cmdline.FillParameters(instance.hvparams or {})
        # The port the source sends to is today's cluster setting
        started.hvparams = {**(started.hvparams or {}),
                            _C.HV_MIGRATION_PORT: hvp[_C.HV_MIGRATION_PORT]}
        if block_devices is None:
            if started.disks:
                raise _Fail(f"Cannot accept instance {name}: no disk paths given")
            block_devices = []
        self.StartInstance(started, block_devices, False, incoming=target)
        try:
            with self._Qmp(name) as qmp:
                qmp.MigrateSetCapabilities(migration.Capabilities(hvp))
            state = self._Runtime(name)
            if state is not None:
                state.memory = min(int(data["memory"]), state.max_memory)
                runtime.WriteRuntime(state, self.run_dir)
        except BaseException:
            self._DropIncoming(name)
            raise

    def _DropIncoming(self, name: str) -> None:
        """Kill a QEMU started for an incoming migration and clean up after it;
        an instance running here for another reason is left alone."""
        pid = self._Pid(name)
        try:
            state = self._Runtime(name)
        except errors.HypervisorError as err:
            logging.warning("KVM instance %s: %s", name, err)
            state = None
        if pid is not None:
            if state is not None and not state.incoming:
                logging.warning("KVM instance %s runs here and is not an incoming"
                                " migration; not stopping it", name)
                return
            runtime.KillPid(pid)
        self.CleanupInstance(name)

    def FinalizeMigrationDst(self, instance: objects.Instance, info: str,
                             success: bool) -> None:
        """On the target: on success wait until the guest is here and runs
        (resumed if it ran on the source) and keep the runtime file; on
        failure kill the incoming QEMU and remove its taps and files."""
        name = runtime.CheckName(instance.name)
        if not success:
            self._DropIncoming(name)
            return
        if self._Pid(name) is None:
            raise _Fail(f"The QEMU of instance {name} is not running on the target")
        running = migration.DecodeInfo(info)["running"] if info else True
        deadline = time.monotonic() + migration.TARGET_READY_TIMEOUT
        with self._Qmp(name) as qmp:
            while (run_state := qmp.QueryStatus().get("status")) == \
                    migration.INCOMING_RUN_STATE:
                if time.monotonic() > deadline:
                    raise _Fail(f"Instance {name} is still receiving its memory after"
                                f" {migration.TARGET_READY_TIMEOUT:.0f}s")
                # QEMU sends no event when the last pages are loaded: poll
                time.sleep(0.05)
            if running and run_state in migration.RESUMABLE_RUN_STATES:
                qmp.Cont()
        state = self._Runtime(name)
        if state is not None:
            state.incoming = None
            runtime.WriteRuntime(state, self.run_dir)

    def MigrateInstance(self, cluster_name: str, instance: objects.Instance,
                        target: str, live: bool) -> None:
        """On the source: set the capabilities, bandwidth and downtime, pause
        the guest for a non-live migration, and start the migration to
        ``target``'s ``migration_port`` (it runs on in QEMU)."""
        name = runtime.CheckName(instance.name)
        if self._Pid(name) is None:
            raise _Fail(f"Cannot migrate instance {name}: not running on this node")
        hvp = cmdline.FillParameters(instance.hvparams or {})
        with self._Qmp(name) as qmp:
            qmp.MigrateSetCapabilities(migration.Capabilities(hvp))
            qmp.MigrateSetParameters(**migration.Parameters(hvp))
            paused = False
            if not live and qmp.QueryStatus().get("status") == "running":
                qmp.Stop()
                paused = True
            try:
                qmp.Migrate(migration.Uri(target, hvp[_C.HV_MIGRATION_PORT]))
            except MonitorError:
                if paused:
                    qmp.Cont()
                raise

    def GetMigrationStatus(self, instance: objects.Instance) -> dict[str, Any]:
        """On the source: Ganeti's status dict from ``query-migrate``
        (:func:`migration.ParseStatus`); with ``postcopy-ram``, switch to
        postcopy once the first pass over memory is done."""
        name = runtime.CheckName(instance.name)
        if self._Pid(name) is None:
            return {"status": _C.HV_MIGRATION_FAILED,
                    "info": f"The QEMU of instance {name} is not running"}
        hvp = cmdline.FillParameters(instance.hvparams or {})
        try:
            with self._Qmp(name) as qmp:
                status = migration.ParseStatus(qmp.QueryMigrate())
                if migration.ShouldStartPostcopy(hvp, status):
                    logging.info("KVM instance %s: switching the migration to"
                                 " postcopy", name)
                    qmp.MigrateStartPostcopy()
                    status["postcopy"] = True
        except MonitorError as err:
            return {"status": _C.HV_MIGRATION_FAILED,
                    "info": f"Cannot query the migration of instance {name}: {err}"}
        return status

    def FinalizeMigrationSource(self, instance: objects.Instance, success: bool,
                                live: bool) -> None:
        """On the source: on success stop QEMU and clean up; on failure
        cancel a migration still going on and resume the guest."""
        name = runtime.CheckName(instance.name)
        pid = self._Pid(name)
        if success:
            if pid is not None:
                runtime.KillPid(pid)
            self.CleanupInstance(name)
            return
        if pid is None:
            return
        with self._Qmp(name) as qmp:
            status = migration.ParseStatus(qmp.QueryMigrate())
            if status["postcopy"]:
                raise _Fail(
                    f"The migration of instance {name} failed in postcopy: the guest"
                    " ran on the target already and its memory is split between the"
                    " nodes, so it cannot resume here; stop it (gnt-instance stop)"
                    " and start it again")
            if status["status"] == _C.HV_MIGRATION_ACTIVE or \
                    status["qemu_status"] == "cancelling":
                logging.info("KVM instance %s: cancelling its migration", name)
                qmp.MigrateCancel()
                deadline = time.monotonic() + migration.CANCEL_TIMEOUT
                while qmp.QueryMigrate().get("status") in migration.QEMU_UNFINISHED_STATUSES:
                    if time.monotonic() > deadline:
                        raise _Fail(f"The migration of instance {name} did not end"
                                    f" {migration.CANCEL_TIMEOUT:.0f}s after its"
                                    " cancellation")
                    # QEMU ends a cancelled migration in its own thread: poll
                    time.sleep(0.05)
            run_state = qmp.QueryStatus().get("status")
            # A live migration that failed resumes the guest by itself; one
            # that completed (postmigrate) or a non-live one left it paused
            if run_state == "postmigrate" or (run_state == "paused" and not live):
                qmp.Cont()

    # --- queries -----------------------------------------------------------------

    def _Info(self, name: str) -> base.InstanceInfo | None:
        pid = self._Pid(name)
        if pid is None:
            return None
        try:
            state = self._Runtime(name)
        except errors.HypervisorError as err:
            logging.warning("KVM instance %s: %s", name, err)
            state = None
        if state is not None:
            memory, vcpus = state.memory, state.vcpus
        else:
            memory, vcpus = _MemoryAndVcpus(runtime.ReadCmdline(pid) or [])
        hv_state = (base.HvInstanceState.SHUTDOWN if self._ShutDownInside(name, state)
                    else base.HvInstanceState.RUNNING)
        return (name, pid, memory, vcpus, hv_state, runtime.CpuTime(pid))

    def _ShutDownInside(self, name: str, state: runtime.Runtime | None) -> bool:
        """Whether the guest of a live QEMU started with ``user_shutdown``
        shut itself down (``-no-shutdown`` keeps QEMU, its run state
        "shutdown"); asked on the events QMP socket, which only such
        instances have, so the node's command socket stays free. False
        when QEMU does not answer (it is then taken as running)."""
        if state is None or not state.hvparams.get(_C.HV_KVM_USER_SHUTDOWN):
            return False
        path = self._Files(name).events_qmp
        if not path or not os.path.exists(path):
            return False
        qmp = QmpConnection(path, timeout=USER_SHUTDOWN_QUERY_TIMEOUT)
        try:
            qmp.Connect(timeout=USER_SHUTDOWN_QUERY_TIMEOUT)
            with qmp:
                status = qmp.QueryStatus().get("status")
        except MonitorError as err:
            logging.warning("KVM instance %s: cannot read its run state: %s", name, err)
            return False
        return status == "shutdown"

    def GetInstanceInfo(self, instance_name: str,
                        hvparams: dict[str, Any] | None = None
                        ) -> base.InstanceInfo | None:
        """(name, pid, memory MiB, vCPUs, state, CPU seconds), or None."""
        return self._Info(runtime.CheckName(instance_name))

    def GetAllInstancesInfo(self, hvparams: dict[str, Any] | None = None
                            ) -> list[base.InstanceInfo]:
        """GetInstanceInfo of every instance whose QEMU runs here."""
        result = []
        for name in runtime.PidFileNames(self.run_dir):
            info = self._Info(name)
            if info is not None:
                result.append(info)
        return result

    def ListInstances(self, hvparams: dict[str, Any] | None = None) -> list[str]:
        """The names of the instances whose QEMU runs here."""
        return [name for name in runtime.PidFileNames(self.run_dir)
                if self._Pid(name) is not None]

    def GetNodeInfo(self, hvparams: dict[str, Any] | None = None) -> dict[str, Any]:
        """The node's memory and CPUs from /proc, and what the instances use."""
        result = base.GetLinuxNodeInfo()
        result["instances_memory"] = sum(info[2] for info in self.GetAllInstancesInfo())
        return result

    @classmethod
    def GetInstanceConsole(cls, instance: objects.Instance, primary_node: Any,
                           node_group: Any, hvparams: dict[str, Any],
                           beparams: dict[str, Any]) -> objects.InstanceConsole:
        """The serial console (socat on its socket, on the primary node),
        else VNC or SPICE, else a message."""
        hvp = cmdline.FillParameters(hvparams or {})
        node_name = getattr(primary_node, "name", primary_node)
        node_ip = getattr(primary_node, "primary_ip", None) or node_name
        if hvp[_C.HV_SERIAL_CONSOLE]:
            files = cmdline.RuntimeFiles.ForInstance(instance.name)
            return objects.InstanceConsole(
                instance=instance.name, kind=_C.CONS_SSH, host=node_name,
                user=SSH_CONSOLE_USER,
                command=SerialConsoleCommand(files.serial))
        vnc = hvp[_C.HV_VNC_BIND_ADDRESS]
        if vnc and instance.network_port and not utils.IsNormAbsPath(vnc):
            host = node_ip if vnc in ("0.0.0.0", "::") \
                or not utils.IsValidIP(vnc) else vnc
            return objects.InstanceConsole(
                instance=instance.name, kind=_C.CONS_VNC, host=host,
                port=instance.network_port,
                display=instance.network_port - _C.VNC_BASE_PORT)
        spice = hvp[_C.HV_KVM_SPICE_BIND]
        if spice and instance.network_port:
            host = spice if utils.IsValidIP(spice) else node_ip
            return objects.InstanceConsole(instance=instance.name, kind=_C.CONS_SPICE,
                                           host=host, port=instance.network_port)
        return objects.InstanceConsole(
            instance=instance.name, kind=_C.CONS_MESSAGE,
            message=f"No serial console nor graphical console for instance"
                    f" {instance.name} (hypervisor parameters serial_console,"
                    " vnc_bind_address, spice_bind)")

    @classmethod
    def GetAncillaryFiles(cls) -> tuple[list[str], list[str]]:
        """The cluster's VNC password file (optional)."""
        from ganeti.hypervisor.hv_kvm import security
        return security.AncillaryFiles()

    def Verify(self, hvparams: dict[str, Any] | None = None) -> str | None:
        """Check that the QEMU binary exists and the run directory is usable."""
        hvp = cmdline.FillParameters(hvparams or {})
        kvm_path = hvp[_C.HV_KVM_PATH]
        if not utils.IsExecutable(kvm_path):
            return f"The QEMU binary ('{kvm_path}', kvm_path) is missing or not executable"
        try:
            self._EnsureDirs()
        except OSError as err:
            return f"Cannot create the KVM runtime directory {self.run_dir}: {err}"
        return None

    def PowercycleNode(self, hvparams: dict[str, Any] | None = None) -> None:
        """Not in a virtual cluster; elsewhere, as Ganeti, reboot hard."""
        if pathutils.IsVirtualCluster():
            raise _Fail("Cannot power-cycle a virtual node")
        utils.RunCmd(["sync"], timeout=60)
        with open("/proc/sysrq-trigger", "w", encoding="ascii") as fd:
            fd.write("b")


def _MemoryAndVcpus(argv: list[str]) -> tuple[int, int]:
    """-m and -smp from a QEMU command line (0 where absent)."""
    memory = vcpus = 0
    for option, value in zip(argv, argv[1:]):
        try:
            if option == "-m":
                memory = int(value.split(",")[0].rstrip("M"))
            elif option == "-smp":
                vcpus = int(value.split(",")[0])
        except ValueError:
            pass
    return memory, vcpus


def PinVcpus(threads: dict[int, int], mask: str, vcpus: int) -> None:
    """Pin each vCPU thread to its CPUs of ``cpu_mask`` (one entry for all,
    or one per vCPU; "all" leaves a vCPU free)."""
    try:
        entries = params.ParseMultiCpuMask(mask)
    except errors.ParseError as err:
        raise _Fail(f"Invalid cpu_mask '{mask}': {err}") from None
    if len(entries) == 1:
        entries = entries * vcpus
    all_cpus = set(range(os.cpu_count() or 1))
    for index, thread in sorted(threads.items()):
        if index >= len(entries):
            break
        cpus = entries[index]
        wanted = all_cpus if cpus is None else set(cpus)
        try:
            os.sched_setaffinity(thread, wanted)
        except OSError as err:
            raise _Fail(f"Cannot pin vCPU {index} (thread {thread}) to CPUs"
                        f" {sorted(wanted)}: {err}") from None
