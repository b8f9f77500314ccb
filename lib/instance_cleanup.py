"""Removing the instances whose creation did not finish.

An instance creation puts the instance into the configuration, marked
``forthcoming``, before it makes anything on the node, and clears the mark
in the save that commits the creation (:mod:`ganeti.cmdlib.instance_create`).
A forthcoming instance whose lock nobody holds is therefore left over:
its creation failed and undoing it could not reach the node, or the master
daemon died while it ran. :class:`CreationCleanup`, a thread of the master
daemon, removes every such instance: it stops it, removes its disks and
file storage directory from the node, then removes it from the
configuration and its lock (:func:`instance_create.UndoCreation`).

It looks for them when the daemon starts, when a creation leaves one
behind (:meth:`CreationCleanup.Wake`) and every few minutes. It takes the
locks a job would (the Big Ganeti Lock shared, the instance, its primary
node and the node's resources) without waiting: an instance still being
created, or a node busy with a job, is simply tried again later. A failed
attempt (the node does not answer) is tried again after 1, 2, 4, ...
seconds, at most a minute apart, until it succeeds.

Until it is removed, such an instance is listed (``forthcoming``) and its
disks count as in use, so ``gnt-cluster verify`` does not report them as
orphans; the instance LUs refuse to work on it, but removing it.

Reservations (``gnt-instance add --forthcoming``) are forthcoming too, but
administratively offline, never down: the cleanup leaves them alone
(:mod:`ganeti.cmdlib.instance_forthcoming`).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from ganeti import locking

#: Seconds before an instance is tried again after a failure (doubling on
#: each further failure, up to RETRY_MAX_DELAY)
RETRY_DELAY = 1.0
RETRY_MAX_DELAY = 60.0
#: Seconds between two looks at the whole configuration
RESCAN_INTERVAL = 300.0

#: The owner of the cleanup's locks in lock queries
OWNER_NAME = "instance-cleanup"


@dataclass
class _Pending:
    attempts: int
    due: float      # time.monotonic() of the next attempt
    error: str


class _Busy(Exception):  # noqa: N818 - not an error: try again later
    """A lock the cleanup needs is held by somebody else."""


class CreationCleanup:
    """The thread removing left-over forthcoming instances (module doc).

    ``context`` gives ``cfg`` (ConfigWriter), ``glm`` (the lock manager)
    and ``rpc`` (the node RPC runner).
    """

    def __init__(self, context: Any, retry_delay: float = RETRY_DELAY,
                 retry_max_delay: float = RETRY_MAX_DELAY,
                 rescan_interval: float = RESCAN_INTERVAL) -> None:
        self.context = context
        self.retry_delay = retry_delay
        self.retry_max_delay = retry_max_delay
        self.rescan_interval = rescan_interval
        #: Names of the instances removed so far
        self.removed: list[str] = []
        self._cond = threading.Condition()
        self._pending: dict[str, _Pending] = {}
        self._scan = True
        self._next_scan = 0.0
        self._stopping = False
        self._thread: threading.Thread | None = None

    # --- control ----------------------------------------------------------------------

    def Start(self) -> None:
        """Start the thread; it looks at the whole configuration at once."""
        with self._cond:
            if self._thread is not None:
                return
            self._stopping = False
            self._scan = True
            self._thread = threading.Thread(target=self._Run, name=OWNER_NAME,
                                            daemon=True)
            self._thread.start()

    def Stop(self, timeout: float | None = None) -> bool:
        """Stop the thread (after its current attempt); False if it did not
        end within ``timeout`` seconds."""
        with self._cond:
            thread = self._thread
            if thread is None:
                return True
            self._stopping = True
            self._cond.notify_all()
        thread.join(timeout)
        if thread.is_alive():
            logging.error("The instance cleanup did not stop in time")
            return False
        with self._cond:
            self._thread = None
        return True

    def Wake(self, instance_name: str | None = None) -> None:
        """Look at ``instance_name`` soon (left behind by a failed creation),
        or at the whole configuration (None)."""
        with self._cond:
            if instance_name is None:
                self._scan = True
            elif instance_name not in self._pending:
                self._pending[instance_name] = _Pending(0, time.monotonic(), "")
            self._cond.notify_all()

    def Pending(self) -> dict[str, str]:
        """{instance name: why its last attempt failed ("" if none yet)}."""
        with self._cond:
            return {name: entry.error for name, entry in self._pending.items()}

    def WaitDone(self, timeout: float | None = None) -> bool:
        """Wait until nothing is left to remove (the thread looked at the
        configuration and removed what it found); False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._pending and not self._scan,
                                       timeout)

    def RunOnce(self) -> dict[str, str]:
        """Look at the whole configuration and try every left-over instance
        now, in the calling thread; returns :meth:`Pending`."""
        self._Scan()
        with self._cond:
            names = sorted(self._pending)
        for name in names:
            self._Try(name)
        return self.Pending()

    # --- the thread ---------------------------------------------------------------------

    def _Run(self) -> None:
        locking.set_owner_name(OWNER_NAME)
        while True:
            with self._cond:
                while True:
                    if self._stopping:
                        return
                    now = time.monotonic()
                    if self._scan or self._next_scan <= now:
                        scan, due = True, []
                        break
                    due = sorted(name for name, entry in self._pending.items()
                                 if entry.due <= now)
                    if due:
                        scan = False
                        break
                    wake = min([self._next_scan] +
                               [entry.due for entry in self._pending.values()])
                    self._cond.wait(wake - now)
            try:
                if scan:
                    self._Scan()
                    continue
                for name in due:
                    with self._cond:
                        if self._stopping:
                            return
                    self._Try(name)
            except Exception:  # noqa: BLE001 - the thread must go on
                logging.exception("Instance cleanup failed")
                with self._cond:
                    self._next_scan = time.monotonic() + self.retry_max_delay

    def _Scan(self) -> None:
        """Note every forthcoming instance; forget those gone or committed."""
        from ganeti.cmdlib.instance_forthcoming import IsReservation
        snapshot = self.context.cfg.GetReadOnlySnapshot()
        # Reservations (gnt-instance add --forthcoming) are forthcoming too,
        # but offline: they stay
        names = {inst.name for inst in snapshot.instances.values()
                 if inst.forthcoming and not IsReservation(inst)}
        now = time.monotonic()
        with self._cond:
            self._scan = False
            self._next_scan = now + self.rescan_interval
            for name in names - set(self._pending):
                self._pending[name] = _Pending(0, now, "")
            for name in set(self._pending) - names:
                del self._pending[name]
            self._cond.notify_all()

    def _Try(self, name: str) -> None:
        """One attempt at removing ``name``; reschedules it if not done."""
        try:
            error = self._Attempt(name)
        except _Busy as busy:
            error = f"busy: {busy}"
            logging.debug("Instance cleanup: %s is busy (%s), trying again later",
                          name, busy)
        except Exception as err:  # noqa: BLE001 - retried like a node failure
            logging.exception("Instance cleanup of %s failed", name)
            error = f"internal error: {err}"
        with self._cond:
            if error is None:
                self._pending.pop(name, None)
                self._cond.notify_all()
                return
            previous = self._pending.get(name)
            attempts = previous.attempts + 1 if previous is not None else 1
            delay = min(self.retry_max_delay,
                        self.retry_delay * 2 ** min(attempts - 1, 30))
            self._pending[name] = _Pending(attempts, time.monotonic() + delay, error)
        if not error.startswith("busy: "):
            logging.warning("Cannot remove instance %s, whose creation did not finish,"
                            " yet (%s); trying again in %.1f s", name, error, delay)

    def _Attempt(self, name: str) -> str | None:
        """Remove ``name`` if it is a forthcoming instance nobody works on.

        Returns None when done (or nothing to do), else why it failed;
        raises :class:`_Busy` when a lock is held elsewhere.
        """
        from ganeti.cmdlib.instance_create import UndoCreation
        from ganeti.cmdlib.instance_forthcoming import IsReservation
        cfg, glm = self.context.cfg, self.context.glm
        inst = cfg.GetInstanceInfoByName(name)
        if inst is None or not inst.forthcoming or IsReservation(inst):
            return None
        try:
            self._Lock(locking.LEVEL_CLUSTER, locking.BGL, shared=1)
            if name in glm.names(locking.LEVEL_INSTANCE):
                self._Lock(locking.LEVEL_INSTANCE, name)
            else:
                # Not expected (the creation keeps it), but we may add it
                glm.add(locking.LEVEL_INSTANCE, [name], acquired=1)
            # Under its lock: it may have been removed or committed meanwhile
            inst = cfg.GetInstanceInfoByName(name)
            if inst is None or not inst.forthcoming or IsReservation(inst):
                return None
            self._Lock(locking.LEVEL_NODE, inst.primary_node)
            self._Lock(locking.LEVEL_NODE_RES, inst.primary_node)
            warnings: list[str] = []
            if not UndoCreation(cfg, self.context.rpc, inst.uuid, warnings.append):
                return "; ".join(warnings) or "unknown failure"
            glm.remove(locking.LEVEL_INSTANCE, [name])
            logging.info("Removed instance %s, whose creation did not finish, and its"
                         " disks", name)
            for warning in warnings:
                logging.warning("Removing instance %s: %s", name, warning)
            with self._cond:
                self.removed.append(name)
            return None
        finally:
            for level in sorted(locking.LEVELS, reverse=True):
                if glm.is_owned(level):
                    glm.release(level)

    def _Lock(self, level: int, name: str, shared: int = 0) -> None:
        if self.context.glm.acquire(level, [name], timeout=0, shared=shared) is None:
            raise _Busy(f"{locking.LEVEL_NAMES[level]} lock {name} is held")
