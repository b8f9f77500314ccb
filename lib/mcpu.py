"""The master's opcode processor: runs one opcode through its logical unit.

:class:`Processor` looks up the LU of an opcode (``OpFooBar`` ->
``cmdlib.LUFooBar``) and drives it through its lifecycle (see
:mod:`ganeti.cmdlib.base`). Locks are taken level by level through the
context's GanetiLockManager: the Big Ganeti Lock first (shared unless the
LU sets ``REQ_BGL``), then each level after ``DeclareLocks(level)``.

Lock waits follow the attempt strategy of seed 003: each attempt has a
timeout; when it runs out every lock of the attempt is released, the
callbacks hear about it (``NotifyLockTimeout``: the opcode stays
"waiting"), the opcode's priority goes up by one (towards
``OP_PRIO_HIGHEST``), and a fresh LU tries again; the last attempt blocks.
Every lock is released when the opcode ends, whatever happens.

Locks an LU creates or deletes (Ganeti's ``add_locks``/``remove_locks``):
at a level listed in ``lu.add_locks`` the names are added to the lock
manager already held (exclusively, or shared if ``share_locks`` says so)
instead of being acquired; a name that exists fails the LU with
OpPrereqError (ECODE_NOTUNIQUE). Added locks stay only if ``Exec``
returns normally (not for a dry run), or if a failed ``Exec`` left the
object in the configuration and says so in ``lu.keep_added_locks``
(level -> names: an instance creation whose undo could not finish);
otherwise they are removed before the attempt's locks are released. The
names in ``lu.remove_locks`` are removed right after a successful
``Exec``.

An opcode that was running when the master daemon died is never run
again; :func:`InterruptedOpcode` asks its LU what it amounts to (see
``LogicalUnit.Interrupted``) when the job queue starts.

At the end of every opcode whose ``Exec`` saved the configuration (before
the post hooks) the processor waits until every configuration saved so far
has been distributed to the nodes (``context.config_sync.Flush``, when the
context has one): distribution runs in the background and coalesces saves.

The job queue's side of the conversation is :class:`OpExecCbBase`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from ganeti import cmdlib
from ganeti import constants
from ganeti import errors
from ganeti import hooksmaster
from ganeti import locking
from ganeti import opcodes
from ganeti.cmdlib.base import Interruption, LogicalUnit


#: How messages name the objects of each lock level
_LEVEL_NOUNS = {
    locking.LEVEL_INSTANCE: "Instance",
    locking.LEVEL_NODEGROUP: "Node group",
    locking.LEVEL_NODE: "Node",
    locking.LEVEL_NODE_RES: "Node",
    locking.LEVEL_NETWORK: "Network",
}


class LockAcquireTimeout(Exception):  # noqa: N818  (Ganeti's name)
    """The locks of one attempt could not be taken in time."""


class OpExecCbBase:
    """Callbacks from the processor to whoever runs the opcode (the job queue)."""

    def NotifyStart(self) -> None:
        """The locks are held; the opcode is about to run (status "running").

        May raise ``errors.JobCanceled`` to stop before anything is done.
        """

    def NotifyLockTimeout(self, priority: int) -> None:
        """A lock attempt timed out; the opcode waits on with ``priority``."""

    def Feedback(self, *args: Any) -> None:
        """A message for the job log: ``(message,)`` or ``(type, message)``."""

    def CheckCancel(self) -> None:
        """Raise ``errors.JobCanceled`` if the job was cancelled."""

    def CurrentPriority(self) -> int | None:
        """The opcode's priority now, if the caller tracks it."""
        return None

    def SubmitManyJobs(self, jobs: list[list[opcodes.OpCode]]) -> list[Any]:
        """Submit jobs on behalf of the LU (as the luxi call)."""
        raise NotImplementedError("This caller cannot submit jobs")


class HooksMaster:
    """A hooks master running no hooks (for tests; the processor's default
    is :class:`ganeti.hooksmaster.HooksMaster`).

    The processor calls :meth:`RunPhase` for the pre phase before ``Exec``
    and for the post phase after it, and hands the results to the LU's
    ``HooksCallBack``. Running hook scripts on the nodes is the job of a
    hooks runner built on node RPC; until it exists every phase returns
    an empty result, which LUs treat as "no hooks ran".
    """

    def __init__(self, lu: LogicalUnit) -> None:
        self.lu = lu

    @classmethod
    def BuildFromLu(cls, lu: LogicalUnit) -> HooksMaster:
        """The hooks master for ``lu``."""
        return cls(lu)

    def RunPhase(self, phase: str, node_names: list[str] | None = None) -> dict[str, Any]:
        """Run the hooks of ``phase``; {} since no hooks are run."""
        if phase not in (constants.HOOKS_PHASE_PRE, constants.HOOKS_PHASE_POST):
            raise errors.ProgrammerError(f"Unknown hooks phase {phase!r}")
        return {}

    def RunConfigUpdate(self) -> None:
        """Run the configuration-update hooks (none)."""


def _FormatFeedback(args: tuple[Any, ...]) -> tuple[str, Any]:
    if len(args) == 1:
        return constants.ELOG_MESSAGE, args[0]
    if len(args) == 2:
        return args[0], args[1]
    raise errors.ProgrammerError(f"Feedback takes (message) or (type, message), got {args!r}")


class Processor:
    """Runs opcodes for one job, one at a time, in the calling thread."""

    def __init__(self, context: Any, ec_id: Any = None, enable_locks: bool = True,
                 hooks_master: Any = hooksmaster.HooksMaster,
                 lock_timeouts: Callable[[], locking.LockAttemptTimeoutStrategy] | None = None,
                 lu_class_fn: Callable[[opcodes.OpCode], type[LogicalUnit]] = cmdlib.GetLuClass,
                 ) -> None:
        """Make a processor; the keyword arguments exist for tests.

        ``lock_timeouts`` makes the attempt strategy of each opcode and
        ``lu_class_fn`` finds the LU class of an opcode.
        """
        self.context = context
        self.ec_id = ec_id
        self._enable_locks = enable_locks
        self._hmclass = hooks_master
        self._make_strategy = lock_timeouts or locking.LockAttemptTimeoutStrategy
        self._lu_class_fn = lu_class_fn
        self._cbs: OpExecCbBase | None = None
        self.rpc = getattr(context, "rpc", None)
        self._interrupt = threading.Event()
        self._lu: LogicalUnit | None = None
        #: Locks added by the current attempt (level -> names), and whether
        #: its Exec returned normally (then they stay)
        self._added: dict[int, list[str]] = {}
        self._executed = False

    # --- interruption of waits (LUTestDelay) ------------------------------------------------

    def Interrupt(self) -> None:
        """Wake up waits on :meth:`WaitForInterrupt` (interruptible delays)."""
        self._interrupt.set()

    def WaitForInterrupt(self, timeout: float) -> bool:
        """Sleep up to ``timeout`` seconds; True if interrupted."""
        return self._interrupt.wait(timeout)

    # --- the job log ------------------------------------------------------------------------

    def Log(self, *args: Any) -> None:
        """Send a message to the job log (see OpExecCbBase.Feedback)."""
        log_type, message = _FormatFeedback(args)
        if self._cbs is not None:
            self._cbs.Feedback(log_type, message)
        else:
            logging.info("Opcode feedback (%s): %s", log_type, message)

    def LogStep(self, current: int, total: int, message: str) -> None:
        """Log "STEP current/total message"."""
        self.Log(f"STEP {current}/{total} {message}")

    def LogWarning(self, message: str, *args: Any, **kwargs: Any) -> None:
        """Log a warning; ``hint=`` adds an advice line."""
        unknown = set(kwargs) - {"hint"}
        if unknown:
            raise errors.ProgrammerError(f"Unknown LogWarning arguments {sorted(unknown)}")
        if args:
            message = message % tuple(args)
        if message:
            logging.warning(message)
            self.Log(f" - WARNING: {message}")
        if "hint" in kwargs:
            self.Log(f"      Hint: {kwargs['hint']}")

    def LogInfo(self, message: str, *args: Any) -> None:
        """Log an informational message."""
        if args:
            message = message % tuple(args)
        logging.info(message)
        self.Log(f" - INFO: {message}")

    def LogDebug(self, message: str, *args: Any) -> None:
        """Debugging output: to the daemon log only."""
        logging.debug(message, *args)

    def GetECId(self) -> Any:
        """The execution context ID (the job ID when run by the queue)."""
        return self.ec_id

    def SubmitManyJobs(self, jobs: list[list[opcodes.OpCode]]) -> list[Any]:
        """Submit jobs from an LU through the callbacks."""
        if self._cbs is None:
            raise errors.ProgrammerError("No callbacks to submit jobs with")
        return self._cbs.SubmitManyJobs(jobs)

    # --- locks ------------------------------------------------------------------------------

    def _Acquire(self, level: int, names: Any, shared: int, timeout: float | None,
                 priority: int) -> None:
        glm = self.context.glm
        if timeout is not None and timeout <= 0:
            timeout = 0.0
        acquired = glm.acquire(level, names, timeout=timeout, shared=shared,
                               priority=priority)
        if acquired is None:
            raise LockAcquireTimeout(
                f"Could not acquire the {locking.LEVEL_NAMES[level]} locks in time")

    def _ReleaseAll(self) -> None:
        glm = getattr(self.context, "glm", None)
        if glm is None:
            return
        for level in sorted(locking.LEVELS, reverse=True):
            try:
                if glm.is_owned(level):
                    glm.release(level)
            except Exception:  # releasing must go on with the other levels
                logging.exception("Cannot release the locks at level %s",
                                  locking.LEVEL_NAMES[level])

    # --- running an LU ------------------------------------------------------------------------

    def _ExecLU(self, lu: LogicalUnit) -> Any:
        """CheckPrereq, hooks and Exec, with every lock held."""
        assert self._cbs is not None
        self._cbs.NotifyStart()
        lu.CheckPrereq()
        # After CheckPrereq: the hooks' nodes and variables may depend on it
        hm = self._hmclass.BuildFromLu(lu)
        feedback_fn = self.Log
        pre = hm.RunPhase(constants.HOOKS_PHASE_PRE)
        lu.HooksCallBack(constants.HOOKS_PHASE_PRE, pre, feedback_fn, None)
        if getattr(lu.op, constants.OP_DRY_RUN, False):
            # A dry run checks and stops; no post hooks
            return lu.dry_run_result
        serial = self._ConfigSerial()
        try:
            result = lu.Exec(feedback_fn)
        finally:
            # Whatever Exec saved reaches the nodes before anyone is told
            if serial is None or self._ConfigSerial() != serial:
                self._FlushConfig()
        self._executed = True
        self._RemoveLocks(lu)
        post = hm.RunPhase(constants.HOOKS_PHASE_POST)
        return lu.HooksCallBack(constants.HOOKS_PHASE_POST, post, feedback_fn, result)

    def _ConfigSerial(self) -> int | None:
        """The configuration's serial number, if there is a configuration."""
        get = getattr(getattr(self.context, "cfg", None), "GetConfigSerialNo", None)
        return get() if get is not None else None

    def _FlushConfig(self) -> None:
        """Wait until the configuration saved so far is distributed."""
        sync = getattr(self.context, "config_sync", None)
        flush = getattr(sync, "Flush", None)
        if flush is not None:
            flush()

    def _AddLocks(self, lu: LogicalUnit, level: int, names: Any) -> None:
        """Add ``names`` at ``level``, held by this thread (see module doc)."""
        glm = self.context.glm
        wanted = [names] if isinstance(names, str) else list(names)
        if not wanted:
            return

        def _Taken() -> errors.OpPrereqError:
            existing = sorted(set(wanted) & glm.names(level)) or wanted
            noun = _LEVEL_NOUNS.get(level, locking.LEVEL_NAMES[level])
            shown = ", ".join(f"'{name}'" for name in existing)
            return errors.OpPrereqError(
                f"{noun} {shown} is already in the cluster or being created by"
                " another job", errors.ECODE_NOTUNIQUE)

        if set(wanted) & glm.names(level):
            raise _Taken()
        try:
            glm.add(level, wanted, acquired=1, shared=lu.share_locks.get(level, 0))
        except locking.LockUsageError:
            raise
        except errors.LockError:
            # Added by another job since the check above
            raise _Taken() from None
        self._added[level] = wanted

    def _RemoveLocks(self, lu: LogicalUnit) -> None:
        """Remove the locks the LU asked to remove (after a successful Exec)."""
        glm = self.context.glm if self._enable_locks else None
        for level in sorted(lu.remove_locks, reverse=True):
            names = lu.remove_locks[level]
            wanted = [names] if isinstance(names, str) else list(names)
            if glm is None or not wanted:
                continue
            # An added lock the LU removes again is not to be undone
            self._added.pop(level, None)
            try:
                glm.remove(level, [name for name in wanted if name in glm.names(level)])
            except errors.LockError:
                # The LU's work is done; a lock left over only costs memory
                logging.exception("Cannot remove the %s locks %s",
                                  locking.LEVEL_NAMES[level], wanted)

    def _UndoAddedLocks(self, kept: dict[int, Any]) -> None:
        """Remove the locks this attempt added (the LU did not succeed), but
        those whose objects the LU left in the configuration (``kept``)."""
        glm = self.context.glm
        for level in sorted(self._added, reverse=True):
            keep = kept.get(level) or []
            keep_names = {keep} if isinstance(keep, str) else set(keep)
            names = [name for name in self._added[level] if name not in keep_names]
            try:
                glm.remove(level, [name for name in names if name in glm.names(level)])
            except Exception:  # noqa: BLE001 - the other levels and the release go on
                logging.exception("Cannot remove the added %s locks %s",
                                  locking.LEVEL_NAMES[level], names)
        self._added.clear()

    def _LockAndExec(self, lu: LogicalUnit, deadline: float | None, priority: int) -> Any:
        """Take the locks level by level (after the BGL), then run the LU."""
        needed = lu.needed_locks
        if needed is None:
            raise errors.ProgrammerError(
                f"{lu.__class__.__name__}.ExpandNames did not set needed_locks")
        bad = [level for level in needed if level not in locking.LEVELS
               or level == locking.LEVEL_CLUSTER]
        if bad:
            raise errors.ProgrammerError(
                f"{lu.__class__.__name__} asks for locks at invalid levels {bad!r}")
        bad = [level for level in lu.add_locks if level not in locking.LEVELS_MOD]
        if bad:
            raise errors.ProgrammerError(
                f"{lu.__class__.__name__} adds locks at invalid levels {bad!r}")
        for level in locking.LEVELS:
            if level == locking.LEVEL_CLUSTER:
                continue
            lu.DeclareLocks(level)
            if level in lu.add_locks:
                if needed.get(level):
                    raise errors.ProgrammerError(
                        f"{lu.__class__.__name__} both adds and acquires locks at level"
                        f" {locking.LEVEL_NAMES[level]}")
                if not self._enable_locks:
                    raise errors.ProgrammerError(
                        f"{lu.__class__.__name__} adds locks but locking is disabled")
                self._AddLocks(lu, level, lu.add_locks[level])
                continue
            if level not in needed:
                continue
            names = needed[level]
            if isinstance(names, (list, tuple, set, frozenset)) and not names:
                continue
            if not self._enable_locks:
                raise errors.ProgrammerError(
                    f"{lu.__class__.__name__} needs locks but locking is disabled")
            timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
            self._Acquire(level, names, lu.share_locks.get(level, 0), timeout, priority)
        return self._ExecLU(lu)

    def _Attempt(self, op: opcodes.OpCode, lu_class: type[LogicalUnit],
                 timeout: float | None, priority: int) -> Any:
        """One attempt: BGL, a fresh LU, its locks and its execution."""
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            if self._enable_locks:
                self._Acquire(locking.LEVEL_CLUSTER, locking.BGL,
                              0 if lu_class.REQ_BGL else 1, timeout, priority)
            elif lu_class.REQ_BGL:
                raise errors.ProgrammerError(
                    f"{lu_class.__name__} needs the Big Ganeti Lock but locking is disabled")
            lu = lu_class(self, op, self.context, self.rpc)
            self._lu = lu
            lu.CheckArguments()
            lu.ExpandNames()
            return self._LockAndExec(lu, deadline, priority)
        finally:
            kept = getattr(self._lu, "keep_added_locks", None) or {}
            self._lu = None
            if self._added and not self._executed:
                self._UndoAddedLocks(kept)
            self._added = {}
            self._executed = False
            self._ReleaseAll()

    def ExecOpCode(self, op: opcodes.OpCode, cbs: OpExecCbBase,
                   timeout: float | None = None, priority: int | None = None) -> Any:
        """Run ``op`` and return its result.

        With ``timeout`` there is one attempt at the locks, and
        :class:`LockAcquireTimeout` when it runs out; without it the
        attempt strategy retries (raising the priority each time) and then
        blocks. ``priority`` defaults to the opcode's. Errors from the LU
        propagate unchanged; every lock is released in all cases.
        """
        if not isinstance(op, opcodes.OpCode):
            raise errors.ProgrammerError(f"Not an opcode: {op!r}")
        lu_class = self._lu_class_fn(op)
        # Fill in defaults; the job queue validated already, other callers may not have
        op.Validate(True)
        if priority is None:
            priority = getattr(op, constants.OP_PRIORITY, constants.OP_PRIO_DEFAULT)
        self._cbs = cbs
        try:
            if timeout is not None:
                return self._Attempt(op, lu_class, timeout, priority)
            strategy = self._make_strategy()
            while True:
                attempt_timeout = strategy.next_attempt()
                try:
                    return self._Attempt(op, lu_class, attempt_timeout, priority)
                except LockAcquireTimeout:
                    if attempt_timeout is None:  # a blocking acquire cannot time out
                        raise
                # The priority may have been changed meanwhile (ChangeJobPriority)
                current = cbs.CurrentPriority()
                if current is not None:
                    priority = current
                priority = max(constants.OP_PRIO_HIGHEST, priority - 1)
                cbs.NotifyLockTimeout(priority)
                cbs.CheckCancel()
        finally:
            self._cbs = None
            self._DropReservations()

    def _DropReservations(self) -> None:
        """Forget what the opcode reserved and did not commit (IP addresses,
        MACs, ...): an opcode that failed, or stopped after CheckPrereq (dry
        run, pre hook), must not keep them from other jobs."""
        drop = getattr(getattr(self.context, "cfg", None), "DropECReservations", None)
        if self.ec_id is not None and drop is not None:
            try:
                drop(self.ec_id)
            except Exception:  # noqa: BLE001 - the opcode's own outcome matters
                logging.exception("Cannot drop the reservations of %s", self.ec_id)


def InterruptedOpcode(context: Any, op: opcodes.OpCode,
                      lu_class_fn: Callable[[opcodes.OpCode], type[LogicalUnit]]
                      = cmdlib.GetLuClass) -> Interruption | None:
    """What an opcode found running at a master daemon start amounts to.

    Asks the opcode's LU (``LogicalUnit.Interrupted``) with the context's
    configuration; None (the default: the opcode fails as interrupted by
    an unclean shutdown) also when there is no configuration or the LU's
    answer fails.
    """
    cfg = getattr(context, "cfg", None)
    if cfg is None:
        return None
    try:
        return lu_class_fn(op).Interrupted(cfg, op)
    except Exception:  # noqa: BLE001 - recovery must not stop the start
        logging.exception("Cannot tell what the interrupted opcode %s did",
                          getattr(op, "OP_ID", op))
        return None
