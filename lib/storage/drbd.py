"""DRBD 8.4 devices (the ``drbd`` disk template) on this node.

A DRBD disk mirrors a data volume between two nodes over the network. Its
``logical_id`` is (node A, node B, port, minor A, minor B, secret); what
depends on which end this node is (own and peer address, own and peer
minor) comes with the disk as its ``dynamic_params`` (``constants.DDP_*``).
The children are the local data and metadata volumes; the device appears
as ``/dev/drbd<minor>``.

Every DRBD command runs through :func:`RunDrbdCommand`, which takes
``drbdsetup``/``drbdmeta`` from PATH. A node of a virtual cluster must use
the DRBD stand-in (``tools/drbd-standin``, see doc/drbd-standin.rst): the
runner refuses anything else there, hands the node root to the commands,
and refreshes the status file (the stand-in computes resync progress when
it runs) before it is read.

The status comes from /proc/drbd (``pathutils.DRBD_STATUS_FILE``); with
DRBD 9, whose /proc/drbd holds only the version, from ``drbdsetup
status``. Errors raise :class:`errors.BlockDeviceError` naming the minor
and the command's output.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import time
from typing import Any, NoReturn

from ganeti import constants, errors, objects, pathutils, utils
from ganeti.storage import base, drbd_cmdgen, drbd_info

#: The block device major of DRBD
DRBD_MAJOR = 147
#: The kernel module's usermode helper parameter (node-prefixed when read)
USERMODE_HELPER_FILE = "/sys/module/drbd/parameters/usermode_helper"
#: A file next to the stand-in's programs, by which the runner knows them
STANDIN_MARKER = "drbd_standin.py"
#: Seconds a single DRBD command may take
COMMAND_TIMEOUT = 60
#: Seconds to wait for a network change (disconnect) to show in the status
NET_RECONFIG_TIMEOUT = 60
#: Smallest metadata volume (MiB) DRBD 8 accepts for external metadata
MIN_META_SIZE = 128
#: Bytes per unit of the sizes drbdsetup show prints (no unit: sectors)
_SIZE_UNITS = {"s": 512, "k": 1024, "m": 1024 ** 2, "g": 1024 ** 3, "t": 1024 ** 4}


# --- running commands and reading the status ------------------------------------------------

def _CheckStandin(program: str) -> None:
    path = shutil.which(program)
    if path is None:
        raise errors.BlockDeviceError(f"{program} not found on PATH")
    if not os.path.exists(os.path.join(os.path.dirname(os.path.realpath(path)),
                                       STANDIN_MARKER)):
        raise errors.BlockDeviceError(
            f"This node is part of a virtual cluster: its DRBD commands must be the"
            f" DRBD stand-in's (put tools/drbd-standin first on PATH), but PATH finds"
            f" {path}")


def RunDrbdCommand(cmd: list[str]) -> utils.RunResult:
    """Run a drbdsetup or drbdmeta command line (the only place that does).

    @raise errors.BlockDeviceError: on a virtual node without the stand-in
    """
    env = None
    if pathutils.IsVirtualCluster():
        _CheckStandin(cmd[0])
        env = {constants.GANETI_ROOTDIR_ENV: pathutils.GetRootDirectory()}
    return utils.RunCmd(cmd, env=env, timeout=COMMAND_TIMEOUT)


def _RefreshStandin() -> None:
    # The stand-in rewrites the node's status files each time it runs
    if pathutils.IsVirtualCluster():
        result = RunDrbdCommand(drbd_cmdgen.ShowCmd("all"))
        if result.failed:
            logging.warning("DRBD stand-in refresh failed: %s", result.output.strip())


def _CurrentStandinStatus() -> drbd_info.ProcStatus | None:
    """The stand-in's status file as it is, if that is current; None when
    the stand-in has to run first.

    The stand-in rewrites the status files of every node a command changes,
    so the file is current unless it was never written or shows a resync,
    whose progress the stand-in computes from the clock when it runs.
    """
    try:
        status = drbd_info.ReadProcStatus()
    except errors.BlockDeviceError:
        return None
    if any(minor.is_in_resync for minor in status.minors.values()):
        return None
    return status


def _WithDrbd9Minors(status: drbd_info.ProcStatus) -> drbd_info.ProcStatus:
    """``status``, with the minors from drbdsetup status under DRBD 9."""
    if status.version.is_drbd9:
        result = RunDrbdCommand(drbd_cmdgen.StatusCmd())
        if result.failed:
            raise errors.BlockDeviceError(
                f"Cannot get the DRBD {status.version} status: {result.fail_reason}:"
                f" {result.output.strip()}")
        resources = drbd_info.ParseDrbd9Status(result.stdout)
        status.minors = drbd_info.MinorsFromDrbd9(resources)
    return status


def GetProcStatus(filename: str | None = None, refresh: bool = True
                  ) -> drbd_info.ProcStatus:
    """The status of all minors (from drbdsetup status with DRBD 9).

    On a virtual node the stand-in refreshes the status file first when it
    is not current (see :func:`_CurrentStandinStatus`), unless ``refresh``
    is False (a DRBD command just ran).
    """
    status = None
    if filename is None and refresh and pathutils.IsVirtualCluster():
        status = _CurrentStandinStatus()
        if status is None:
            _RefreshStandin()
    if status is None:
        status = drbd_info.ReadProcStatus(filename)
    return _WithDrbd9Minors(status)


def GetUsedMinors(filename: str | None = None) -> list[int]:
    """The configured minors of this node, sorted."""
    return GetProcStatus(filename=filename).UsedMinors()


def GetUsermodeHelper(filename: str | None = None) -> str:
    """The usermode helper the DRBD module calls (e.g. "/bin/true").

    @raise errors.BlockDeviceError: if the module's parameter is unreadable
    """
    if filename is None:
        filename = pathutils.AddNodePrefix(USERMODE_HELPER_FILE)
        if not os.path.exists(filename):
            # the stand-in writes it when it first runs
            _RefreshStandin()
    try:
        return utils.ReadFile(filename).strip()
    except OSError as err:
        raise errors.BlockDeviceError(
            f"Cannot read the DRBD usermode helper from {filename} (is the drbd module"
            f" loaded?): {err}") from err


def _Fail(minor: int, what: str, result: utils.RunResult) -> NoReturn:
    raise errors.BlockDeviceError(
        f"drbd{minor}: {what}: {result.output.strip() or 'no output'}"
        f" ({result.fail_reason})")


# --- the device --------------------------------------------------------------------------------

def _ParseUniqueId(unique_id: Any) -> tuple[str, str, int, int, int, str]:
    if not isinstance(unique_id, (tuple, list)) or len(unique_id) != 6:
        base.ThrowError("Invalid DRBD logical_id %r: expected (node A, node B, port,"
                        " minor A, minor B, secret)", unique_id)
    node_a, node_b, port, minor_a, minor_b, secret = unique_id
    if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
        base.ThrowError("Invalid DRBD port %r in logical_id %r", port, unique_id)
    return node_a, node_b, port, minor_a, minor_b, str(secret)


def _CheckMinor(value: Any, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or \
            not 0 <= value <= constants.DRBD_MAX_MINOR:
        base.ThrowError("Invalid DRBD %s %r", what, value)
    return value


class DRBD8Dev(base.BlockDev):
    """A DRBD 8.4 device over a data and a metadata volume.

    ``minor`` is set (and ``dev_path`` is ``/dev/drbd<minor>``) once
    :meth:`Attach` found the minor configured for this disk.
    """

    DEV_TYPE = constants.DT_DRBD8

    def __init__(self, unique_id, children, size, params, dyn_params=None, **kwargs):
        super().__init__(unique_id, children, size, params, dyn_params, **kwargs)
        _, _, port, _, _, secret = _ParseUniqueId(unique_id)
        if children and len(children) != 2:
            base.ThrowError("Invalid DRBD disk %r: it needs two children (data and"
                            " metadata), got %d", unique_id, len(children))
        dyn = self.dyn_params
        missing = [key for key in (constants.DDP_LOCAL_IP, constants.DDP_REMOTE_IP,
                                   constants.DDP_LOCAL_MINOR, constants.DDP_REMOTE_MINOR)
                   if dyn.get(key) is None]
        if missing:
            base.ThrowError("DRBD disk %r lacks its node parameters (%s): the master"
                            " sends them with the disk", unique_id, ", ".join(missing))
        self.params = drbd_cmdgen.FillParams(params)
        self._lhost = str(dyn[constants.DDP_LOCAL_IP])
        self._rhost = str(dyn[constants.DDP_REMOTE_IP])
        self._port = int(dyn.get(constants.DDP_PORT) or port)
        self._aminor = _CheckMinor(dyn[constants.DDP_LOCAL_MINOR], "local minor")
        self._rminor = _CheckMinor(dyn[constants.DDP_REMOTE_MINOR], "remote minor")
        self._secret = secret
        if utils.IsValidIP6(self._lhost) and utils.IsValidIP6(self._rhost):
            self._family = drbd_cmdgen.FAMILY_IPV6
        elif utils.IsValidIP4(self._lhost) and utils.IsValidIP4(self._rhost):
            self._family = drbd_cmdgen.FAMILY_IPV4
        else:
            base.ThrowError("drbd%d: invalid or mixed addresses %s and %s", self._aminor,
                            self._lhost, self._rhost)
        if self._lhost == self._rhost:
            base.ThrowError("drbd%d: local and remote address are the same (%s:%d)",
                            self._aminor, self._lhost, self._port)
        self.Attach()

    def __repr__(self) -> str:
        return (f"<DRBD8Dev drbd{self._aminor} {self._lhost}:{self._port} ->"
                f" {self._rhost}:{self._port} attached={self.attached}>")

    # --- creation -----------------------------------------------------------------------

    @classmethod
    def Create(cls, unique_id, children, size, spindles, params, excl_stor,
               dyn_params=None, **kwargs):
        """Write fresh DRBD metadata on the metadata child; return the device.

        The minor must be free on this node; nothing is assembled here.
        """
        if excl_stor:
            base.ThrowError("DRBD disks cannot use exclusive storage")
        if len(children) != 2:
            base.ThrowError("Cannot create DRBD disk %r: it needs two children (data and"
                            " metadata), got %d", unique_id, len(children))
        _ParseUniqueId(unique_id)
        dyn = dyn_params or {}
        minor = _CheckMinor(dyn.get(constants.DDP_LOCAL_MINOR), "local minor")
        status = GetProcStatus().GetMinor(minor)
        if status.is_in_use:
            base.ThrowError("drbd%d: minor is already in use at Create() time (%s)", minor,
                            status.cstatus)
        meta = children[1]
        meta.Assemble()
        if not meta.attached or not meta.dev_path:
            base.ThrowError("drbd%d: cannot attach the metadata device %r", minor, meta)
        if meta.size and meta.size < MIN_META_SIZE:
            base.ThrowError("drbd%d: metadata device %s is too small (%d MiB, at least %d)",
                            minor, meta.dev_path, meta.size, MIN_META_SIZE)
        result = RunDrbdCommand(drbd_cmdgen.CreateMetaCmd(minor, meta.dev_path))
        if result.failed:
            _Fail(minor, f"cannot create metadata on {meta.dev_path}", result)
        return cls(unique_id, children, size, params, dyn_params)

    # --- finding and assembling -----------------------------------------------------------

    def _SetFromMinor(self, minor: int | None) -> None:
        self.minor = minor
        self.attached = minor is not None
        if minor is None:
            self.dev_path = None
            self.major = None
        else:
            self.dev_path = drbd_cmdgen.DevPath(minor)
            self.major = DRBD_MAJOR

    def _Show(self) -> drbd_info.ShowInfo:
        result = RunDrbdCommand(drbd_cmdgen.ShowCmd(self._aminor))
        if result.failed:
            _Fail(self._aminor, "cannot read the configuration", result)
        return self._ParseShow(result.stdout)

    def _ParseShow(self, text: str) -> drbd_info.ShowInfo:
        try:
            return drbd_info.ParseShow(text, f"drbdsetup show {self._aminor}")
        except errors.BlockDeviceError as err:
            base.ThrowError("drbd%d: %s", self._aminor, err)
            raise AssertionError from err  # unreachable

    def _MinorStatus(self) -> drbd_info.MinorStatus:
        return GetProcStatus().GetMinor(self._aminor)

    def _MatchesLocal(self, info: drbd_info.ShowInfo) -> bool:
        """Whether the local disk is configured as ours (or absent if we have none)."""
        if not self._children:
            return not info.has_local_disk
        data, meta = self._children
        return (info.has_local_disk and data.dev_path is not None
                and info.local_dev == data.dev_path and info.meta_dev == meta.dev_path
                and info.meta_index == 0)

    def _MatchesNet(self, info: drbd_info.ShowInfo) -> bool:
        """Whether the network is configured with our two ends."""
        return (info.has_network
                and info.local_addr == (self._family, self._lhost, self._port)
                and info.remote_addr == (self._family, self._rhost, self._port))

    def _IsOurs(self, info: drbd_info.ShowInfo) -> bool:
        if info.has_local_disk and self._children and self._MatchesLocal(info):
            return True
        if self._MatchesNet(info):
            return True
        # an empty minor of our resource (a setup interrupted half-way)
        return (not info.has_local_disk and not info.has_network
                and info.resource in (None, drbd_cmdgen.ResourceName(self._aminor)))

    def Attach(self, **kwargs: Any) -> bool:
        """Find our minor configured for this disk (disk or network)."""
        show = None
        status = _CurrentStandinStatus() if pathutils.IsVirtualCluster() else None
        if status is None:
            # show first: on a virtual node this also refreshes the status file
            show = RunDrbdCommand(drbd_cmdgen.ShowCmd(self._aminor))
            status = drbd_info.ReadProcStatus()
        if not _WithDrbd9Minors(status).GetMinor(self._aminor).is_in_use:
            self._SetFromMinor(None)
            return False
        if show is None:
            show = RunDrbdCommand(drbd_cmdgen.ShowCmd(self._aminor))
        if show.failed:
            _Fail(self._aminor, "cannot read the configuration", show)
        info = self._ParseShow(show.stdout)
        if self._IsOurs(info):
            self._SetFromMinor(self._aminor)
        else:
            logging.warning("drbd%d: minor is configured for another device (disk %s,"
                            " network %s -> %s)", self._aminor, info.local_dev,
                            info.local_addr, info.remote_addr)
            self._SetFromMinor(None)
        return self.attached

    def _AssembleLocal(self, new_minor: bool) -> None:
        if not self._children:
            return
        data_path, meta_path = self._children[0].dev_path, self._children[1].dev_path
        if not data_path or not meta_path:
            raise errors.BlockDeviceError(
                f"drbd{self._aminor}: the data or metadata volume is not active"
                f" ({data_path}, {meta_path})")
        cmds = []
        if new_minor:
            cmds += [drbd_cmdgen.NewResourceCmd(self._aminor),
                     drbd_cmdgen.NewMinorCmd(self._aminor)]
        cmds.append(drbd_cmdgen.AttachCmd(self._aminor, data_path, meta_path, self.size,
                                          self.params))
        for cmd in cmds:
            result = RunDrbdCommand(cmd)
            if result.failed:
                _Fail(self._aminor, f"cannot attach the local disk ({cmd[1]})", result)

    def _AssembleNet(self, dual_primary: bool = False) -> None:
        cmd = drbd_cmdgen.ConnectCmd(self._aminor, self._family, self._lhost, self._port,
                                     self._rhost, self._port, self.params,
                                     dual_primary=dual_primary, secret=self._secret)
        result = RunDrbdCommand(cmd)
        if result.failed:
            _Fail(self._aminor, "cannot connect the network", result)

    def _ShutdownNet(self, info: drbd_info.ShowInfo | None = None) -> None:
        if info is not None and info.local_addr and info.remote_addr:
            family, lhost, lport = info.local_addr
            _, rhost, rport = info.remote_addr
        else:
            family, lhost, lport = self._family, self._lhost, self._port
            rhost, rport = self._rhost, self._port
        result = RunDrbdCommand(drbd_cmdgen.DisconnectCmd(family, lhost, lport, rhost,
                                                          rport))
        if result.failed:
            _Fail(self._aminor, "cannot disconnect the network", result)

    def Assemble(self) -> None:
        """Configure whatever is missing of the local disk and the network.

        A free minor is set up from scratch. A configured one is completed:
        the network is connected if only the disk is there, the disk is
        attached if only the network is, and a network pointing to another
        peer is reconnected to ours. A minor holding another device is an
        error.
        """
        minor = self._aminor
        if not self._MinorStatus().is_in_use:
            self._AssembleLocal(new_minor=True)
            if not self._children:
                for cmd in (drbd_cmdgen.NewResourceCmd(minor), drbd_cmdgen.NewMinorCmd(minor)):
                    result = RunDrbdCommand(cmd)
                    if result.failed:
                        _Fail(minor, f"cannot set up the minor ({cmd[1]})", result)
            self._AssembleNet()
            self._SetFromMinor(minor)
            return
        info = self._Show()
        match_l, match_r = self._MatchesLocal(info), self._MatchesNet(info)
        if match_l and match_r:
            # assembled already: nothing changed, nothing to check
            self._SetFromMinor(minor)
            return
        if not info.has_local_disk and not info.has_network and self._IsOurs(info):
            self._AssembleLocal(new_minor=False)
            self._AssembleNet()
        elif match_l and not info.has_network:
            self._AssembleNet()
        elif match_r and not info.has_local_disk:
            self._AssembleLocal(new_minor=False)
        elif match_l and info.has_network:
            # our disk, but connected elsewhere: as we own this minor, move it
            self._ShutdownNet(info)
            self._AssembleNet()
        else:
            base.ThrowError("drbd%d: cannot activate, the minor is configured for another"
                            " device (disk %s, network %s -> %s)", minor, info.local_dev,
                            info.local_addr, info.remote_addr)
        check = self._Show()
        if not (self._MatchesLocal(check) and self._MatchesNet(check)):
            base.ThrowError("drbd%d: assembled, but the configuration does not show it"
                            " (disk %s, network %s -> %s)", minor, check.local_dev,
                            check.local_addr, check.remote_addr)
        self._SetFromMinor(minor)

    def Shutdown(self) -> None:
        """Take the minor down (disk and network); a missing one is fine."""
        if self.minor is None and not self.Attach():
            logging.info("drbd%d: not configured, nothing to shut down", self._aminor)
            return
        result = RunDrbdCommand(drbd_cmdgen.DownCmd(self._aminor))
        if result.failed:
            _Fail(self._aminor, "cannot shut down", result)
        self._SetFromMinor(None)

    def Remove(self) -> None:
        """Shut the device down (its volumes are removed as children)."""
        self.Shutdown()

    def Rename(self, new_id: tuple[Any, ...]) -> None:
        """DRBD disks are not renamed (Ganeti changes them by replacing)."""
        base.ThrowError("drbd%d: DRBD devices cannot be renamed (to %r)", self._aminor,
                        new_id)

    # --- use by an instance -------------------------------------------------------------

    def _NeedMinor(self, what: str) -> int:
        if self.minor is None and not self.Attach():
            base.ThrowError("drbd%d: not configured on this node, cannot %s",
                            self._aminor, what)
        assert self.minor is not None
        return self.minor

    def Open(self, force: bool = False, exclusive: bool = True) -> None:
        """Make the device primary (``force``: declare our data the good copy).

        Two primaries only happen after :meth:`AttachNet` with multimaster.
        """
        minor = self._NeedMinor("make it primary")
        result = RunDrbdCommand(drbd_cmdgen.PrimaryCmd(minor, force))
        if result.failed:
            _Fail(minor, "cannot make the device primary", result)

    def Close(self) -> None:
        """Make the device secondary."""
        minor = self._NeedMinor("make it secondary")
        result = RunDrbdCommand(drbd_cmdgen.SecondaryCmd(minor))
        if result.failed:
            _Fail(minor, "cannot make the device secondary", result)

    def Grow(self, amount: int, dryrun: bool, backingstore: bool,
             excl_stor: bool) -> None:
        """Grow the data volume, then (not for dry runs or the backing
        store step) tell DRBD the new size."""
        minor = self._NeedMinor("grow it")
        if len(self._children) != 2:
            base.ThrowError("drbd%d: cannot grow a diskless device", minor)
        self._children[0].Grow(amount, dryrun, backingstore, excl_stor)
        if dryrun or backingstore:
            return
        result = RunDrbdCommand(drbd_cmdgen.ResizeCmd(minor, self.size + amount))
        if result.failed:
            _Fail(minor, "resize failed", result)
        self.size += amount

    def GetActualSize(self) -> int:
        """The size in bytes DRBD is configured with (else the disk's size)."""
        self._NeedMinor("get its size")
        size = self._Show().disk_options.get("size", "")
        match = re.match(r"^(\d+)([skmgt]?)$", size.lower())
        if match is None or not int(match.group(1)):
            return self.size * 1024 * 1024
        return int(match.group(1)) * _SIZE_UNITS[match.group(2) or "s"]

    # --- status --------------------------------------------------------------------------

    def GetProcStatus(self) -> drbd_info.MinorStatus:
        """The status of our minor (which must be configured)."""
        minor = self._NeedMinor("get its status")
        return GetProcStatus().GetMinor(minor)

    def GetSyncStatus(self) -> objects.BlockDevStatus:
        """Sync progress, degradation and the local disk's health.

        Degraded: not connected (a running resync counts), or either disk
        not UpToDate (so the peer of a failed disk is degraded too). The
        local disk is OKAY when UpToDate, FAULTY when there is none any
        more (Diskless, Failed), else UNKNOWN (Inconsistent, Outdated,
        being resynced: Ganeti's LDS_SYNC, which we do not have).
        """
        stats = self.GetProcStatus()
        is_degraded = (not stats.is_connected or not stats.is_disk_uptodate
                       or not stats.peer_disk_uptodate)
        if stats.is_disk_uptodate:
            ldisk = base.LDS_OKAY
        elif stats.is_diskless or stats.ldisk == "Failed":
            ldisk = base.LDS_FAULTY
        else:
            ldisk = base.LDS_UNKNOWN
        return objects.BlockDevStatus(
            dev_path=self.dev_path, major=self.major, minor=self.minor,
            sync_percent=stats.sync_percent, estimated_time=stats.est_time,
            is_degraded=is_degraded, ldisk_status=ldisk)

    # --- network changes (failover, migration) -------------------------------------------

    def DisconnectNet(self) -> None:
        """Drop the network and wait until the device is StandAlone."""
        minor = self._NeedMinor("disconnect it")
        info = self._Show()
        if not info.has_network and self.GetProcStatus().is_standalone:
            return
        self._ShutdownNet(info)
        deadline = time.monotonic() + NET_RECONFIG_TIMEOUT
        delay = 0.1
        while True:
            status = self.GetProcStatus()
            if status.is_standalone:
                return
            if time.monotonic() >= deadline:
                base.ThrowError("drbd%d: still %s after disconnecting", minor,
                                status.cstatus)
            time.sleep(delay)
            delay = min(2.0, delay * 1.5)

    def AttachNet(self, multimaster: bool) -> None:
        """Connect the network of a StandAlone device to our peer.

        ``multimaster`` allows both ends to be primary (live migration).
        """
        minor = self._NeedMinor("connect it")
        if not self.GetProcStatus().is_standalone:
            base.ThrowError("drbd%d: the device is not StandAlone, cannot connect it", minor)
        info = self._Show()
        if info.has_network:
            self._ShutdownNet(info)
        self._AssembleNet(dual_primary=multimaster)
