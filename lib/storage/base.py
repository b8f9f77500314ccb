"""The block device abstraction: what every disk type implements.

A :class:`BlockDev` stands for one disk on one node, identified by its
``unique_id`` (the disk's ``logical_id``). Names are Ganeti's: the
classmethod :meth:`BlockDev.Create` makes the storage, :meth:`Attach`
finds it, :meth:`Assemble` makes it usable, :meth:`Shutdown` undoes that,
:meth:`Remove` destroys it. Failures raise :class:`errors.BlockDeviceError`
with a message naming the device.
"""

from __future__ import annotations

from typing import Any

from ganeti import constants, errors, objects

#: Local disk status values (BlockDevStatus.ldisk_status), as Ganeti's
LDS_OKAY = 1
LDS_UNKNOWN = 2
LDS_FAULTY = 3


def ThrowError(msg: str, *args: Any) -> None:
    """Raise BlockDeviceError with the %-formatted message."""
    raise errors.BlockDeviceError(msg % args if args else msg)


class BlockDev:
    """One block device on this node.

    ``dev_path`` is the node-local path of the usable device once attached;
    ``attached`` tells whether :meth:`Attach` found it.
    """

    #: Whether :meth:`Create` takes the ``info`` of :meth:`SetInfo` and
    #: records it with the new storage (one command less)
    CREATE_TAKES_INFO = False

    def __init__(self, unique_id: tuple[Any, ...], children: list[BlockDev],
                 size: int, params: dict[str, Any],
                 dyn_params: dict[str, Any] | None = None, **kwargs: Any):
        self.unique_id = unique_id
        self._children = children
        self.size = size
        self.params = params
        self.dyn_params = dyn_params or {}
        self.dev_path: str | None = None
        self.major: int | None = None
        self.minor: int | None = None
        self.attached = False

    def __repr__(self) -> str:
        return (f"<{self.__class__.__name__}: unique_id={self.unique_id!r},"
                f" dev_path={self.dev_path!r}, size={self.size}>")

    @classmethod
    def Create(cls, unique_id: tuple[Any, ...], children: list[BlockDev],
               size: int, spindles: int | None, params: dict[str, Any],
               excl_stor: bool, dyn_params: dict[str, Any] | None = None,
               **kwargs: Any) -> BlockDev:
        """Create the device's storage and return the (attached) device."""
        raise NotImplementedError

    def Attach(self, **kwargs: Any) -> bool:
        """Find the device on this node; set dev_path; return whether found."""
        raise NotImplementedError

    def Assemble(self) -> None:
        """Make the device usable (after Attach)."""

    def Shutdown(self) -> None:
        """Make the device unusable without destroying data."""

    def Remove(self) -> None:
        """Destroy the device's storage."""
        raise NotImplementedError

    def Rename(self, new_id: tuple[Any, ...]) -> None:
        """Give the device a new unique_id (moving its storage)."""
        raise NotImplementedError

    def Open(self, force: bool = False, exclusive: bool = True) -> None:
        """Prepare the device for use by an instance."""

    def Close(self) -> None:
        """Undo Open."""

    def Grow(self, amount: int, dryrun: bool, backingstore: bool,
             excl_stor: bool) -> None:
        """Grow the device by ``amount`` MiB (``dryrun``: only check)."""
        raise NotImplementedError

    def Snapshot(self, snap_name: str | None = None,
                 snap_size: int | None = None) -> tuple[Any, ...]:
        """Snapshot the device; return the snapshot's unique_id."""
        ThrowError("Snapshots are not supported by %s devices",
                   self.__class__.__name__)
        raise AssertionError  # unreachable, for type checkers

    def SetInfo(self, text: str) -> None:
        """Attach free-form metadata (e.g. the owning instance) if supported."""

    def GetActualSize(self) -> int:
        """Return the size in bytes of the device as it is on the node."""
        raise NotImplementedError

    def GetActualDimensions(self) -> tuple[int, int | None]:
        """Return (size in bytes, spindles or None)."""
        return self.GetActualSize(), None

    def GetSyncStatus(self) -> objects.BlockDevStatus:
        """Return the device's sync status (never syncing unless mirrored)."""
        return objects.BlockDevStatus(
            dev_path=self.dev_path, major=self.major, minor=self.minor,
            sync_percent=None, estimated_time=None, is_degraded=False,
            ldisk_status=LDS_OKAY)

    def CombinedSyncStatus(self) -> objects.BlockDevStatus:
        """Return the sync status of the device and its children, combined."""
        status = self.GetSyncStatus()
        for child in self._children:
            child_status = child.CombinedSyncStatus()
            if child_status.sync_percent is not None:
                if status.sync_percent is None:
                    status.sync_percent = child_status.sync_percent
                else:
                    status.sync_percent = min(status.sync_percent,
                                              child_status.sync_percent)
            status.is_degraded = status.is_degraded or child_status.is_degraded
            status.ldisk_status = max(status.ldisk_status, child_status.ldisk_status)
        return status

    def GetUserspaceAccessUri(self, hypervisor: str) -> str | None:
        """Return a URI the hypervisor can use instead of dev_path, if any."""
        return None


def DiskTypeOf(disk: objects.Disk) -> str:
    """Return the disk's dev_type, checking that it is a known one."""
    if disk.dev_type not in constants.DISK_TEMPLATES:
        raise errors.BlockDeviceError(
            f"Unknown disk type '{disk.dev_type}' of disk {disk.uuid or disk.iv_name}")
    return disk.dev_type
