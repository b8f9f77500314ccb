"""Base classes of the logical units (LUs) and tasklets.

An LU carries out one opcode. :class:`ganeti.mcpu.Processor` drives it
through these steps, always in this order:

1. ``CheckArguments()``: check the opcode's parameters alone (no locks
   held but the Big Ganeti Lock, no cluster state);
2. ``ExpandNames()``: resolve names and fill ``needed_locks`` (level ->
   list of names, or ``locking.ALL_SET``) and ``share_locks`` (level -> 0
   or 1);
3. for each lock level in order: ``DeclareLocks(level)`` (last chance to
   compute that level's locks from those already held), then the locks
   are acquired;
4. ``CheckPrereq()``: check the cluster state, under the locks;
5. the "pre" hooks (``BuildHooksEnv``, ``BuildHooksNodes``);
6. ``Exec(feedback_fn)``: do the work and return the opcode's result;
7. the "post" hooks.

An LU creating an object declares its new lock in ``ExpandNames`` with
``add_locks`` (level -> names): the processor adds those names to the lock
manager, already held by this LU, at that level instead of acquiring
anything there; a name that exists fails the LU with OpPrereqError
(ECODE_NOTUNIQUE: another job is creating the object). The added locks are
removed again unless ``Exec`` returns normally, or unless a failed
``Exec`` left the object in the configuration and lists its name in
``keep_added_locks`` (level -> names). An LU deleting an object
puts its lock in ``remove_locks`` (level -> names; it must hold them):
they are removed right after a successful ``Exec``. With both the LU needs
the Big Ganeti Lock only shared, so creations and removals run in
parallel.

An opcode running when the master daemon died is not run again: at the
next start the job queue asks the LU class what it amounts to
(:meth:`LogicalUnit.Interrupted`, from the configuration alone), and the
opcode ends as that says.

With ``op.dry_run`` the processor stops after the pre hooks and returns
``dry_run_result``. LUs that share steps set ``self.tasklets`` to a list of
:class:`Tasklet` objects in ``ExpandNames``; the default ``CheckPrereq``
and ``Exec`` then run the tasklets' steps in order.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from ganeti import constants
from ganeti import errors
from ganeti import locking

if TYPE_CHECKING:
    from ganeti import opcodes

FeedbackFn = Callable[..., None]


@dataclass
class Interruption:
    """What an opcode interrupted by a master daemon crash amounts to
    (``LogicalUnit.Interrupted``): it ``succeeded`` (with ``result``, as if
    Exec had returned it) or failed; ``message`` says what was found and
    done, for the job's log or its error.
    """

    succeeded: bool
    message: str
    result: Any = None


class LogicalUnit:
    """Base of every LU; subclasses implement the steps they need.

    Class attributes:

    - ``HPATH``: the hooks directory name, or None for an LU without hooks;
    - ``HTYPE``: the hooks type (``constants.HTYPE_*``);
    - ``REQ_BGL``: take the Big Ganeti Lock exclusively (True) or shared.

    Instance attributes set up here: ``proc`` (the processor), ``op``,
    ``cfg``, ``rpc``, ``context``, ``needed_locks`` (None until
    ``ExpandNames`` sets it), ``share_locks``, ``add_locks``,
    ``keep_added_locks`` and ``remove_locks`` (level -> names; see the
    module docstring), ``recalculate_locks``, ``dry_run_result``,
    ``tasklets``.
    """

    HPATH: ClassVar[str | None] = None
    HTYPE: ClassVar[str | None] = None
    REQ_BGL: ClassVar[bool] = True

    def __init__(self, processor: Any, op: opcodes.OpCode, context: Any,
                 rpc_runner: Any = None) -> None:
        self.proc = processor
        self.op: Any = op
        self.context = context
        self.cfg = getattr(context, "cfg", None)
        self.glm = getattr(context, "glm", None)
        self.rpc = rpc_runner
        self.needed_locks: dict[int, Any] | None = None
        self.share_locks: dict[int, int] = dict.fromkeys(locking.LEVELS, 0)
        self.recalculate_locks: dict[int, str] = {}
        self.add_locks: dict[int, Any] = {}
        self.keep_added_locks: dict[int, Any] = {}
        self.remove_locks: dict[int, Any] = {}
        self.dry_run_result: Any = None
        self.tasklets: list[Tasklet] | None = None
        self.op_result_check = True
        # Ganeti's debugging aid; LUs may look at it
        self.LogDebug = processor.LogDebug if processor is not None else logging.debug

    # --- lifecycle -------------------------------------------------------------------

    @classmethod
    def Interrupted(cls, cfg: Any, op: opcodes.OpCode) -> Interruption | None:
        """What ``op``, found running when the master daemon starts (it died
        while Exec ran), amounts to, judged from the configuration ``cfg``.

        None (the default) fails the opcode as interrupted by an unclean
        shutdown. An LU whose Exec has a point after which the work counts
        as done (or one before which nothing is left behind) says here what
        the configuration shows. Runs before any job does, with no locks
        held; must not contact the nodes.
        """
        return None

    def CheckArguments(self) -> None:
        """Check the opcode's parameters; raise OpPrereqError if invalid."""

    def ExpandNames(self) -> None:
        """Resolve names and declare ``needed_locks`` (must be overridden).

        An LU needing no locks sets ``self.needed_locks = {}``.
        """
        raise NotImplementedError(f"{self.__class__.__name__} must define ExpandNames")

    def DeclareLocks(self, level: int) -> None:
        """Adjust ``needed_locks[level]`` just before that level is acquired."""

    def CheckPrereq(self) -> None:
        """Check the cluster state under the locks; runs the tasklets' checks."""
        if self.tasklets is not None:
            for idx, tasklet in enumerate(self.tasklets):
                logging.debug("Checking prerequisites for tasklet %s/%s",
                              idx + 1, len(self.tasklets))
                tasklet.CheckPrereq()

    def BuildHooksEnv(self) -> dict[str, Any]:
        """The hooks environment (without the ``GANETI_`` prefix)."""
        raise NotImplementedError(f"{self.__class__.__name__} has HPATH but no BuildHooksEnv")

    def BuildHooksNodes(self) -> tuple[list[str], list[str]] | None:
        """The node UUIDs running the pre and the post hooks."""
        raise NotImplementedError(
            f"{self.__class__.__name__} has HPATH but no BuildHooksNodes")

    def PreparePostHookNodes(self, post_hook_node_uuids: list[str]) -> list[str]:
        """Adjust the post hook nodes after Exec (e.g. a node just added)."""
        return post_hook_node_uuids

    def HooksCallBack(self, phase: str, hook_results: Any, feedback_fn: FeedbackFn,
                      lu_result: Any) -> Any:
        """Look at the hooks' results; may change the LU's result (post phase)."""
        return lu_result

    def Exec(self, feedback_fn: FeedbackFn) -> Any:
        """Do the work and return the result; runs the tasklets by default."""
        if self.tasklets is not None:
            for idx, tasklet in enumerate(self.tasklets):
                logging.debug("Executing tasklet %s/%s", idx + 1, len(self.tasklets))
                tasklet.Exec(feedback_fn)
            return None
        raise NotImplementedError(f"{self.__class__.__name__} must define Exec")

    # --- messages to the job log ---------------------------------------------------------

    def LogStep(self, current: int, total: int, message: str) -> None:
        """Report step ``current`` of ``total``."""
        self.proc.LogStep(current, total, message)

    def LogWarning(self, message: str, *args: Any, **kwargs: Any) -> None:
        """Report a warning; ``hint=`` adds a line of advice."""
        self.proc.LogWarning(message, *args, **kwargs)

    def LogInfo(self, message: str, *args: Any) -> None:
        """Report an informational message."""
        self.proc.LogInfo(message, *args)

    # --- lock helpers ------------------------------------------------------------------------

    def owned_locks(self, level: int) -> set[str]:
        """The locks this LU's thread holds at ``level``."""
        if self.glm is None:
            return set()
        return self.glm.list_owned(level)


class NoHooksLU(LogicalUnit):
    """An LU that runs no hooks."""

    HPATH = None
    HTYPE = None

    def BuildHooksEnv(self) -> dict[str, Any]:
        """Empty: this LU has no hooks."""
        return {}

    def BuildHooksNodes(self) -> tuple[list[str], list[str]] | None:
        """None: this LU has no hooks."""
        return None


class Tasklet:
    """A reusable step of several LUs, with its own CheckPrereq and Exec.

    Tasklets never take locks: the LU using them declares every lock.
    """

    def __init__(self, lu: LogicalUnit) -> None:
        self.lu = lu
        self.cfg = lu.cfg
        self.rpc = lu.rpc

    def CheckPrereq(self) -> None:
        """Check the tasklet's prerequisites (under the LU's locks)."""

    def Exec(self, feedback_fn: FeedbackFn) -> Any:
        """Run the tasklet."""
        raise NotImplementedError(f"{self.__class__.__name__} must define Exec")


def NodeName(cfg: Any, uuid: str) -> str:
    """A node's name (its UUID if unknown), for messages."""
    try:
        return cfg.GetNodeName(uuid) or uuid
    except errors.GenericError:
        return uuid


def CheckLevelName(level: int) -> str:
    """The name of a lock level, for messages; ProgrammerError if unknown."""
    try:
        return locking.LEVEL_NAMES[level]
    except KeyError:
        raise errors.ProgrammerError(f"Unknown lock level {level!r}") from None


#: The hooks phases, re-exported for LUs' HooksCallBack
HOOKS_PHASE_PRE = constants.HOOKS_PHASE_PRE
HOOKS_PHASE_POST = constants.HOOKS_PHASE_POST
