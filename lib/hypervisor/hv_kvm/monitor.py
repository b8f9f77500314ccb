"""A synchronous client of QEMU's QMP monitor, over the ``qemu.qmp`` library.

:class:`QmpConnection` is what the KVM hypervisor uses to talk to a running
QEMU: connect to the instance's QMP Unix socket, run a command and get its
result, and the calls Ganeti needs (status, power, balloon, hotplug,
migration, VNC password, vCPU threads), with QEMU's events (SHUTDOWN,
DEVICE_DELETED, ...) kept for :meth:`QmpConnection.WaitEvent`.

Event loop: ``qemu.qmp`` is asyncio-based. Each connection runs its client
in a private event loop in a daemon thread of its own, started by
:meth:`~QmpConnection.Connect` and stopped by :meth:`~QmpConnection.Close`;
the public methods submit coroutines to that loop and wait for them. This
rather than ``asyncio.run`` per call because (a) the client keeps reading
between calls, so an event QEMU sends while nobody waits (a guest shutting
down, a device going away) is received and kept, and (b) the methods work
from any thread, including one that runs an event loop of its own (a node
daemon's), where a nested ``run_until_complete`` would fail. The cost is one
thread per open connection; the hypervisor opens one per operation. A
connection belongs to the process that opened it: a forked child opens its
own (the parent's thread does not exist in the child).

Every failure is a :class:`MonitorError`, a ``HypervisorError``; an error
answer from QEMU carries QEMU's error class and description.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import logging
import os
import threading
import time
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from typing import Any, TypeVar

from qemu.qmp import (EventListener, ExecInterruptedError, ExecuteError, QMPClient, QMPError,
                      Runstate, StateError)

from ganeti import errors

#: Seconds to wait for QEMU's answer to one command
DEFAULT_TIMEOUT = 10.0
#: Seconds to wait for the socket to accept and the handshake to finish
CONNECT_TIMEOUT = 10.0
#: Seconds to wait for a guest to release a hot-unplugged device
DEVICE_DELETED_TIMEOUT = 30.0
#: Events kept for WaitEvent; the oldest go first
EVENT_BACKLOG = 1000
#: QEMU sends at most a tenth of ``max-bandwidth`` per 100 ms and takes a
#: tenth that rounds to 0 as "no limit": lower values are refused
MIN_MIGRATION_BANDWIDTH = 10

_T = TypeVar("_T")

# qemu.qmp logs a lost connection as an error on its own; our callers get
# a MonitorError for it instead
logging.getLogger("qemu.qmp").setLevel(logging.CRITICAL)


class MonitorError(errors.HypervisorError):
    """A QMP command failed, or the monitor could not be reached.

    ``error_class`` and ``desc`` are QEMU's (e.g. ``CommandNotFound``,
    ``The command foo has not been found``) when QEMU answered with an
    error, else None.
    """

    def __init__(self, message: str, command: str | None = None,
                 error_class: str | None = None, desc: str | None = None) -> None:
        super().__init__(message)
        self.command = command
        self.error_class = error_class
        self.desc = desc


class QmpConnection:
    """A connection to one QEMU's QMP socket (see the module's docstring).

    Use as a context manager, or call :meth:`Connect` and :meth:`Close`.
    """

    def __init__(self, path: str, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.path = path
        #: default timeout of a command, in seconds
        self.timeout = timeout
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._client: QMPClient | None = None
        self._events: collections.deque[dict[str, Any]] = collections.deque(
            maxlen=EVENT_BACKLOG)
        self._listener: EventListener | None = None
        self._fd_lock: asyncio.Lock | None = None
        self._pid = os.getpid()
        #: the greeting's QEMU version, e.g. {"major": 7, "minor": 2, "micro": 0}
        self.version: dict[str, int] = {}

    # --- plumbing ---------------------------------------------------------

    def __enter__(self) -> QmpConnection:
        if self._client is None:
            self.Connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.Close()

    def _Submit(self, coro: Coroutine[Any, Any, _T], timeout: float | None) -> _T:
        """Run ``coro`` in the connection's loop; wait at most ``timeout``."""
        if self._loop is None:
            coro.close()
            raise MonitorError(f"Not connected to the QMP socket {self.path}")
        if os.getpid() != self._pid:
            coro.close()
            raise MonitorError(f"The connection to {self.path} was opened by process"
                               f" {self._pid}: a forked child must open its own")
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            # The coroutines time out by themselves; this is a safety net
            return future.result(None if timeout is None else timeout + 5)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise MonitorError(f"QMP socket {self.path}: no answer within"
                               f" {timeout}s") from None

    def Connect(self, timeout: float = CONNECT_TIMEOUT) -> None:
        """Connect and negotiate, retrying while the socket is not there yet.

        A QEMU just started creates its socket a moment later, so a missing
        socket or a refused connection is retried until ``timeout``.
        """
        if self._client is not None:
            raise MonitorError(f"Already connected to {self.path}")
        self._pid = os.getpid()
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, daemon=True,
                                  name=f"qmp:{self.path}")
        thread.start()
        self._loop, self._thread = loop, thread
        try:
            self._Submit(self._Connect(timeout), timeout)
        except BaseException:
            self._StopLoop()
            raise

    async def _Connect(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        listener = EventListener()
        while True:
            client = QMPClient(self.path)
            client.register_listener(listener)
            try:
                await asyncio.wait_for(client.connect(self.path),
                                       max(deadline - time.monotonic(), 0.01))
                break
            except (TimeoutError, QMPError, OSError) as err:
                # ConnectError wraps the OSError of the socket
                cause = getattr(err, "exc", None)
                if not isinstance(cause, Exception):
                    cause = err
                retry = isinstance(cause, FileNotFoundError | ConnectionRefusedError)
                if not retry or time.monotonic() >= deadline:
                    what = "timed out" if isinstance(err, asyncio.TimeoutError) else cause
                    raise MonitorError(f"Cannot connect to the QMP socket {self.path}:"
                                       f" {what}") from err
            await asyncio.sleep(0.02)  # polling for QEMU to create its socket
        self._client = client
        greeting = client.greeting
        version = greeting.QMP.version if greeting is not None else None
        if isinstance(version, dict):
            self.version = dict(version.get("qemu", {}))
        self._listener = listener
        self._fd_lock = asyncio.Lock()

    def _DrainEvents(self) -> None:
        """Move what the client's reader received to our backlog (loop thread)."""
        if self._listener is not None:
            self._events.extend(dict(event) for event in self._listener.clear())

    def Close(self) -> None:
        """Disconnect and stop the connection's thread; harmless when closed."""
        if self._loop is None:
            return
        if self._client is not None:
            try:
                self._Submit(self._Disconnect(), 5)
            except (MonitorError, QMPError, OSError, EOFError):
                pass  # the peer went away: nothing to close
        self._StopLoop()

    async def _Disconnect(self) -> None:
        assert self._client is not None
        try:
            await self._client.disconnect()
        except (QMPError, OSError, EOFError):
            pass  # QEMU quit or died: the connection is gone either way

    def _StopLoop(self) -> None:
        loop, thread = self._loop, self._thread
        self._loop = self._thread = self._client = self._listener = None
        if loop is not None and thread is not None:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(10)
            if not loop.is_running():
                loop.close()

    # --- commands ----------------------------------------------------------

    def Execute(self, command: str, arguments: Mapping[str, Any] | None = None,
                timeout: float | None = None) -> Any:
        """Run a QMP command and return its ``return`` value.

        @raise MonitorError: QEMU answered with an error (its class and
            description are in the exception), no answer came within
            ``timeout`` seconds, or the connection is lost
        """
        timeout = self.timeout if timeout is None else timeout
        return self._Submit(self._Execute(command, arguments, timeout), timeout)

    async def _Execute(self, command: str, arguments: Mapping[str, Any] | None,
                       timeout: float) -> Any:
        if self._client is None:
            raise MonitorError(f"Not connected to the QMP socket {self.path}")
        try:
            return await asyncio.wait_for(
                self._client.execute(command, dict(arguments) if arguments else None),
                timeout)
        except ExecuteError as err:
            desc = err.error.error.desc
            raise MonitorError(f"QMP command '{command}' failed: {err.error_class}: {desc}",
                               command, err.error_class, desc) from None
        except TimeoutError:
            raise MonitorError(f"QMP command '{command}': no answer from {self.path}"
                               f" within {timeout}s", command) from None
        except (StateError, ExecInterruptedError):
            # Closed before the command went out, or while it waited
            raise MonitorError(f"QMP command '{command}': the connection to {self.path}"
                               " is closed (QEMU quit or died)", command) from None
        except (QMPError, OSError, EOFError) as err:
            raise MonitorError(f"QMP command '{command}' on {self.path}: {err}",
                               command) from err

    def HumanMonitorCommand(self, command_line: str) -> str:
        """Run an HMP command (``human-monitor-command``); return its output.

        HMP reports errors in its output, not as QMP errors: callers check it.
        """
        return self.Execute("human-monitor-command", {"command-line": command_line})

    def SendFd(self, fd: int, name: str) -> None:
        """Pass ``fd`` to QEMU (SCM_RIGHTS) and name it with ``getfd``.

        Commands then refer to it by ``name`` (``netdev_add``'s ``fd``);
        QEMU owns its copy; the caller still closes its own.
        """
        self._Submit(self._SendFd(fd, name), self.timeout)

    async def _SendFd(self, fd: int, name: str) -> None:
        await self._WithFd(fd, "getfd", {"fdname": name})

    async def _WithFd(self, fd: int, command: str, arguments: dict[str, Any]) -> Any:
        """Pass ``fd`` (SCM_RIGHTS), then run ``command``, which takes it."""
        if self._client is None:
            raise MonitorError(f"Not connected to the QMP socket {self.path}")
        assert self._fd_lock is not None
        # QEMU keeps the descriptor that came last and the command takes it:
        # one pair at a time, or two callers could swap their descriptors
        async with self._fd_lock:
            try:
                self._client.send_fd_scm(fd)
            except (QMPError, OSError) as err:
                raise MonitorError(f"Cannot pass a file descriptor to {self.path}:"
                                   f" {err}") from err
            return await self._Execute(command, arguments, self.timeout)

    def CloseFd(self, name: str) -> None:
        """Drop a descriptor passed with :meth:`SendFd` and not used."""
        self.Execute("closefd", {"fdname": name})

    def AddFd(self, fd: int, opaque: str = "", fdset_id: int | None = None) -> int:
        """Pass ``fd`` to QEMU into fd set ``fdset_id`` (a new one if None)
        with ``add-fd``; the fd set's id.

        QEMU then opens ``/dev/fdset/<id>`` from that set instead of a path,
        taking the descriptor whose access mode (read-only, read-write) it
        asks for: how a QEMU that dropped its privileges (``-runas``) or
        chrooted still gets a file only root can open. The caller closes
        its own copy; :meth:`RemoveFdSet` drops QEMU's once unused.
        """
        return self._Submit(self._AddFd(fd, opaque, fdset_id), self.timeout)

    async def _AddFd(self, fd: int, opaque: str, fdset_id: int | None) -> int:
        arguments: dict[str, Any] = {"opaque": opaque} if opaque else {}
        if fdset_id is not None:
            arguments["fdset-id"] = int(fdset_id)
        result = await self._WithFd(fd, "add-fd", arguments)
        try:
            return int(result["fdset-id"])
        except (KeyError, TypeError, ValueError):
            raise MonitorError(f"add-fd on {self.path} answered {result!r}",
                               "add-fd") from None

    def RemoveFdSet(self, fdset_id: int) -> None:
        """Drop fd set ``fdset_id`` (``remove-fd``); QEMU closes its
        descriptors once no device uses them."""
        self.Execute("remove-fd", {"fdset-id": int(fdset_id)})

    # --- events --------------------------------------------------------------

    def WaitEvent(self, names: str | Iterable[str], timeout: float,
                  match: Callable[[dict[str, Any]], bool] | None = None
                  ) -> dict[str, Any]:
        """The oldest event received named in ``names`` (and ``match``-ing its
        ``data``), waiting at most ``timeout`` seconds; it is removed.

        Events are kept from the moment of :meth:`Connect`, so an event that
        came before the call is found too.

        @raise MonitorError: no such event in time, or the connection is lost
        """
        wanted = {names} if isinstance(names, str) else set(names)
        return self._Submit(self._WaitEvent(wanted, timeout, match), timeout)

    def _TakeEvent(self, wanted: set[str],
                   match: Callable[[dict[str, Any]], bool] | None) -> dict[str, Any] | None:
        self._DrainEvents()
        for event in self._events:
            if event.get("event") in wanted and (
                    match is None or match(event.get("data", {}))):
                self._events.remove(event)
                return event
        return None

    async def _WaitEvent(self, wanted: set[str], timeout: float,
                         match: Callable[[dict[str, Any]], bool] | None) -> dict[str, Any]:
        client, listener = self._client, self._listener
        if client is None or listener is None:
            raise MonitorError(f"Not connected to the QMP socket {self.path}")
        names = "/".join(sorted(wanted))
        deadline = time.monotonic() + timeout
        while True:
            # Events received before the connection closed still count
            event = self._TakeEvent(wanted, match)
            if event is not None:
                return event
            if client.runstate != Runstate.RUNNING:
                raise MonitorError(f"QMP socket {self.path}: the connection is closed"
                                   f" (QEMU quit or died), no {names} event")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise MonitorError(f"QMP socket {self.path}: no {names} event"
                                   f" within {timeout}s")
            # Wake up for the next event or for the connection's end
            get = asyncio.ensure_future(listener.get())
            state = asyncio.ensure_future(client.runstate_changed())
            _, pending = await asyncio.wait({get, state}, timeout=remaining,
                                            return_when=asyncio.FIRST_COMPLETED)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            if get.done() and not get.cancelled():
                self._events.append(dict(get.result()))

    def GetEvents(self, names: str | Iterable[str] | None = None) -> list[dict[str, Any]]:
        """The events received and not yet taken (all, or those in ``names``);
        they are removed."""
        wanted = None if names is None else ({names} if isinstance(names, str) else set(names))
        return self._Submit(self._GetEvents(wanted), self.timeout)

    async def _GetEvents(self, wanted: set[str] | None) -> list[dict[str, Any]]:
        self._DrainEvents()
        taken = [event for event in self._events
                 if wanted is None or event.get("event") in wanted]
        for event in taken:
            self._events.remove(event)
        return taken

    # --- status and power -------------------------------------------------------

    def QueryStatus(self) -> dict[str, Any]:
        """``query-status``: {"status": "running" | "paused" | ..., "running": bool}."""
        return self.Execute("query-status")

    def Stop(self) -> None:
        """Pause the guest's vCPUs."""
        self.Execute("stop")

    def Cont(self) -> None:
        """Resume the guest's vCPUs."""
        self.Execute("cont")

    def SystemPowerdown(self) -> None:
        """Press the ACPI power button; the guest decides what follows."""
        self.Execute("system_powerdown")

    def SystemReset(self) -> None:
        """Reset the machine, as the reset button does."""
        self.Execute("system_reset")

    def Quit(self) -> None:
        """Make QEMU exit at once.

        QEMU answers, then exits; the connection may close before the
        answer is read, which is success too.
        """
        try:
            self.Execute("quit")
        except MonitorError as err:
            if err.error_class is not None or "is closed" not in str(err):
                raise

    def GetVersion(self) -> tuple[int, int, int]:
        """QEMU's version, from the greeting."""
        return (self.version.get("major", 0), self.version.get("minor", 0),
                self.version.get("micro", 0))

    # --- memory ------------------------------------------------------------------

    def Balloon(self, size: int) -> None:
        """Ask the guest's balloon driver for ``size`` bytes of memory in the guest."""
        self.Execute("balloon", {"value": size})

    def QueryBalloon(self) -> int:
        """The guest's memory in bytes as the balloon device reports it.

        @raise MonitorError: DeviceNotActive without a balloon device
        """
        return self.Execute("query-balloon")["actual"]

    # --- devices -----------------------------------------------------------------

    def DeviceAdd(self, driver: str, device_id: str, **properties: Any) -> None:
        """``device_add``: plug device ``device_id`` (e.g. ``virtio-net-pci``).

        Property names with dashes are passed with underscores
        (``mac="..."``, ``netdev="..."``, ``bus="pci.0"``, ``addr="0x5"``).
        """
        arguments = {key.replace("_", "-"): value for key, value in properties.items()}
        arguments.update({"driver": driver, "id": device_id})
        self.Execute("device_add", arguments)

    def DeviceDel(self, device_id: str, timeout: float = DEVICE_DELETED_TIMEOUT) -> None:
        """``device_del``, then wait for QEMU's DEVICE_DELETED for it.

        A PCI device leaves only when the guest lets it go (ACPI or PCIe
        hotplug), so a guest without an OS never releases it.

        @raise MonitorError: the command failed, or no DEVICE_DELETED came
            within ``timeout`` (the device may still go later)
        """
        def Match(data: dict[str, Any]) -> bool:
            return data.get("device") == device_id

        # A DEVICE_DELETED of an earlier device of that name is stale
        self._Submit(self._DropEvents("DEVICE_DELETED", Match), self.timeout)
        self.Execute("device_del", {"id": device_id})
        try:
            self.WaitEvent("DEVICE_DELETED", timeout, Match)
        except MonitorError as err:
            raise MonitorError(f"Device {device_id} was not released by the guest within"
                               f" {timeout}s ({err})", "device_del") from None

    async def _DropEvents(self, name: str, match: Callable[[dict[str, Any]], bool]) -> None:
        while self._TakeEvent({name}, match) is not None:
            pass

    def QueryPci(self) -> list[dict[str, Any]]:
        """The devices of every PCI bus: [{"bus": n, "devices": [...]}]."""
        return self.Execute("query-pci")

    def NetdevAdd(self, netdev_id: str, fds: Sequence[int] = (), vhost_fds: Sequence[int] = (),
                  netdev_type: str = "tap", **options: Any) -> None:
        """``netdev_add`` with tap file descriptors opened here (one per queue).

        Each descriptor goes to QEMU by :meth:`SendFd` and is named
        ``<netdev_id>-fd<N>`` (``-vhostfd<N>`` for vhost-net's). When
        ``netdev_add`` fails, QEMU's copies are closed again.
        """
        arguments = {key.replace("_", "-"): value for key, value in options.items()}
        names: list[str] = []
        vhost_names: list[str] = []
        try:
            for index, fd in enumerate(fds):
                self.SendFd(fd, f"{netdev_id}-fd{index}")
                names.append(f"{netdev_id}-fd{index}")
            for index, fd in enumerate(vhost_fds):
                self.SendFd(fd, f"{netdev_id}-vhostfd{index}")
                vhost_names.append(f"{netdev_id}-vhostfd{index}")
            self._NetdevAdd(netdev_id, netdev_type, arguments, names, vhost_names)
        except MonitorError:
            # netdev_add takes the descriptors it uses out of the named
            # ones; those still named are left over
            for name in names + vhost_names:
                try:
                    self.CloseFd(name)
                except MonitorError:
                    pass  # taken by QEMU, or the connection is gone
            raise

    def _NetdevAdd(self, netdev_id: str, netdev_type: str, arguments: dict[str, Any],
                   names: list[str], vhost_names: list[str]) -> None:
        if len(names) == 1:
            arguments["fd"] = names[0]
        elif names:
            arguments["fds"] = ":".join(names)
        if len(vhost_names) == 1:
            arguments["vhostfd"] = vhost_names[0]
        elif vhost_names:
            arguments["vhostfds"] = ":".join(vhost_names)
        if vhost_names:
            arguments.setdefault("vhost", True)
        arguments.update({"type": netdev_type, "id": netdev_id})
        self.Execute("netdev_add", arguments)

    def NetdevDel(self, netdev_id: str) -> None:
        """``netdev_del``: remove a network backend (its device removed first)."""
        self.Execute("netdev_del", {"id": netdev_id})

    def BlockdevAdd(self, node_name: str, filename: str, driver: str = "raw",
                    read_only: bool = False, cache_direct: bool = False,
                    protocol: str = "file", aio: str | None = None) -> None:
        """``blockdev-add``: a block node on a file or block device.

        ``protocol`` is ``file`` for a regular file, ``host_device`` for a
        block device; ``cache_direct`` opens it with O_DIRECT; ``aio`` is
        ``threads``, ``native`` (needs ``cache_direct``) or ``io_uring``
        (the ``disk_aio`` hypervisor parameter), QEMU's default if None.
        """
        protocol_options: dict[str, Any] = {"driver": protocol, "filename": filename}
        if aio is not None:
            protocol_options["aio"] = aio
        self.Execute("blockdev-add", {
            "driver": driver, "node-name": node_name, "read-only": read_only,
            "cache": {"direct": cache_direct, "no-flush": False},
            "file": protocol_options,
        })

    def BlockdevDel(self, node_name: str) -> None:
        """``blockdev-del``: remove a block node (its device removed first)."""
        self.Execute("blockdev-del", {"node-name": node_name})

    def DriveAdd(self, drive_id: str, filename: str, options: str = "format=raw") -> None:
        """HMP ``drive_add``, as Ganeti does for disks on QEMU without blockdev.

        @raise MonitorError: HMP printed something else than "OK"
        """
        # A comma in an option value is written as two (QEMU's option syntax)
        filename = filename.replace(",", ",,")
        output = self.HumanMonitorCommand(
            f"drive_add dummy file={filename},if=none,id={drive_id},{options}")
        if output.strip() not in ("", "OK"):
            raise MonitorError(f"drive_add {drive_id} failed: {output.strip()}", "drive_add")

    def DriveDel(self, drive_id: str) -> None:
        """HMP ``drive_del`` of a drive added with :meth:`DriveAdd`."""
        output = self.HumanMonitorCommand(f"drive_del {drive_id}")
        if output.strip():
            raise MonitorError(f"drive_del {drive_id} failed: {output.strip()}", "drive_del")

    # --- migration -----------------------------------------------------------------

    def MigrateSetCapabilities(self, capabilities: Mapping[str, bool]) -> None:
        """Turn migration capabilities on or off ({"xbzrle": True, ...})."""
        self.Execute("migrate-set-capabilities", {"capabilities": [
            {"capability": name, "state": state} for name, state in capabilities.items()]})

    def MigrateSetParameters(self, **parameters: Any) -> None:
        """``migrate-set-parameters`` (``downtime_limit=ms``, ``max_bandwidth=B/s``,
        ``max_postcopy_bandwidth=B/s``).

        @raise MonitorError: a bandwidth below :data:`MIN_MIGRATION_BANDWIDTH`
            (QEMU would not limit the migration at all), or QEMU refused
        """
        for name in ("max_bandwidth", "max_postcopy_bandwidth"):
            value = parameters.get(name)
            if isinstance(value, int) and 0 <= value < MIN_MIGRATION_BANDWIDTH:
                raise MonitorError(f"{name} must be at least {MIN_MIGRATION_BANDWIDTH}"
                                   f" bytes/s (QEMU takes lower values as no limit),"
                                   f" got {value}", "migrate-set-parameters")
        self.Execute("migrate-set-parameters",
                     {key.replace("_", "-"): value for key, value in parameters.items()})

    def Migrate(self, uri: str) -> None:
        """Start migrating to ``uri`` (``tcp:host:port``); returns at once.

        QEMU sends MIGRATION events (``setup``, ``active``, ``completed``,
        ``failed``, ``cancelled``, ...) only with the ``events``
        capability on; :meth:`QueryMigrate` works without it.
        """
        self.Execute("migrate", {"uri": uri})

    def MigrateStartPostcopy(self) -> None:
        """Switch a running migration to postcopy (the ``postcopy-ram``
        capability must be on at both ends before :meth:`Migrate`)."""
        self.Execute("migrate-start-postcopy")

    def QueryMigrate(self) -> dict[str, Any]:
        """``query-migrate``: {"status": "active" | "completed" | "failed" | ..., ...}."""
        return self.Execute("query-migrate")

    def MigrateCancel(self) -> None:
        """Cancel the migration in progress."""
        self.Execute("migrate_cancel")

    # --- console and CPUs ------------------------------------------------------------

    def SetVncPassword(self, password: str) -> None:
        """Set the VNC password (QEMU started with ``-vnc ...,password=on``)."""
        self.Execute("set_password", {"protocol": "vnc", "password": password})

    def QueryCpusFast(self) -> list[dict[str, Any]]:
        """``query-cpus-fast``: one entry per vCPU with its ``thread-id``."""
        return self.Execute("query-cpus-fast")

    def GetVcpuThreads(self) -> dict[int, int]:
        """vCPU index -> host thread id, for CPU pinning."""
        return {cpu["cpu-index"]: cpu["thread-id"] for cpu in self.QueryCpusFast()}
