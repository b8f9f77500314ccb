"""Tests for ganeti.mcpu: the LU lifecycle, locks, retries and feedback."""

from __future__ import annotations

import threading
from types import SimpleNamespace

import pytest

from ganeti import cmdlib, constants, errors, locking, mcpu, opcodes
from ganeti.cmdlib.base import LogicalUnit, NoHooksLU, Tasklet

pytestmark = pytest.mark.timeout(60)

WAIT = 10


class Callbacks(mcpu.OpExecCbBase):
    """Records what the processor tells the job queue."""

    def __init__(self, cancel_after_timeouts=None):
        self.events = []
        self.feedback = []
        self.timeouts = []
        self.timeout_event = threading.Event()
        self._cancel_after = cancel_after_timeouts

    def NotifyStart(self):
        self.events.append("start")

    def NotifyLockTimeout(self, priority):
        self.timeouts.append(priority)
        self.timeout_event.set()

    def Feedback(self, *args):
        self.feedback.append(args)

    def CheckCancel(self):
        if self._cancel_after is not None and len(self.timeouts) >= self._cancel_after:
            raise errors.JobCanceled("cancelled")


@pytest.fixture
def context():
    glm = locking.GanetiLockManager(nodes=["node1", "node2"], instances=["inst1"])
    return SimpleNamespace(glm=glm, cfg=None, rpc=None)


def _owned(glm):
    return {level: glm.list_owned(level) for level in locking.LEVELS if glm.is_owned(level)}


class RecordingHooks(mcpu.HooksMaster):
    phases: list = []

    def RunPhase(self, phase, node_names=None):
        RecordingHooks.phases.append(phase)
        return super().RunPhase(phase, node_names)


def make_lu(calls, needed=None, shared=None, req_bgl=False, fail_in=None, result="done",
            tasklets=None, add=None, remove=None):
    class LUProbe(LogicalUnit):
        HPATH = "probe"
        REQ_BGL = req_bgl

        def _step(self, name):
            calls.append(name)
            if fail_in == name:
                raise errors.OpExecError(f"failure in {name}")

        def CheckArguments(self):
            self._step("CheckArguments")

        def ExpandNames(self):
            self._step("ExpandNames")
            self.needed_locks = dict(needed or {})
            self.share_locks.update(shared or {})
            self.add_locks.update(add or {})
            self.remove_locks.update(remove or {})
            if tasklets is not None:
                self.tasklets = [t(self) for t in tasklets]

        def DeclareLocks(self, level):
            calls.append(("DeclareLocks", level))

        def CheckPrereq(self):
            self._step("CheckPrereq")
            calls.append(("locks", _owned(self.glm)))
            super().CheckPrereq()

        def BuildHooksEnv(self):
            return {}

        def BuildHooksNodes(self):
            return [], []

        def Exec(self, feedback_fn):
            self._step("Exec")
            self.LogInfo("info %s", 1)
            if tasklets is not None:
                return super().Exec(feedback_fn)
            return result

    return LUProbe


def run(context, lu_class, op=None, cbs=None, **kwargs):
    proc = mcpu.Processor(context, lu_class_fn=lambda _op: lu_class,
                          hooks_master=RecordingHooks, **kwargs.pop("proc_args", {}))
    op = op or opcodes.OpTestDummy(result=None, messages=[], fail=False, submit_jobs=[])
    cbs = cbs or Callbacks()
    return proc.ExecOpCode(op, cbs, **kwargs), cbs



class OpTestNotImplemented(opcodes.OpCode):
    """An opcode no logical unit implements (not in OP_MAPPING)."""

def test_lifecycle_order_locks_and_hooks(context):
    calls = []
    RecordingHooks.phases = []
    lu = make_lu(calls, needed={locking.LEVEL_NODE: ["node1"],
                                locking.LEVEL_INSTANCE: locking.ALL_SET},
                 shared={locking.LEVEL_INSTANCE: 1})
    result, cbs = run(context, lu)
    assert result == "done"
    names = [c for c in calls if isinstance(c, str)]
    assert names == ["CheckArguments", "ExpandNames", "CheckPrereq", "Exec"]
    declared = [c[1] for c in calls if isinstance(c, tuple) and c[0] == "DeclareLocks"]
    assert declared == [lvl for lvl in locking.LEVELS if lvl != locking.LEVEL_CLUSTER]
    locks = next(c[1] for c in calls if isinstance(c, tuple) and c[0] == "locks")
    assert locks == {locking.LEVEL_CLUSTER: {locking.BGL},
                     locking.LEVEL_INSTANCE: {"inst1"},
                     locking.LEVEL_NODE: {"node1"}}
    assert cbs.events == ["start"]
    assert RecordingHooks.phases == [constants.HOOKS_PHASE_PRE, constants.HOOKS_PHASE_POST]
    assert cbs.feedback == [(constants.ELOG_MESSAGE, " - INFO: info 1")]
    assert _owned(context.glm) == {}


@pytest.mark.parametrize("req_bgl", [False, True])
def test_bgl_mode(context, req_bgl):
    seen = {}

    class LUBgl(NoHooksLU):
        REQ_BGL = req_bgl

        def ExpandNames(self):
            self.needed_locks = {}

        def Exec(self, feedback_fn):
            glm = self.glm
            seen["shared"] = glm.check_owned(locking.LEVEL_CLUSTER, locking.BGL, shared=1)
            seen["exclusive"] = glm.check_owned(locking.LEVEL_CLUSTER, locking.BGL, shared=0)

    run(context, LUBgl)
    assert seen == {"shared": not req_bgl, "exclusive": req_bgl}


@pytest.mark.parametrize("step", ["CheckArguments", "ExpandNames", "CheckPrereq", "Exec"])
def test_errors_propagate_and_release_locks(context, step):
    calls = []
    lu = make_lu(calls, needed={locking.LEVEL_NODE: ["node1"]}, fail_in=step)
    with pytest.raises(errors.OpExecError, match=f"failure in {step}"):
        run(context, lu)
    assert _owned(context.glm) == {}
    assert calls[-1] == step if step != "CheckPrereq" else "CheckPrereq" in calls


def test_dry_run_stops_before_exec(context):
    calls = []
    lu = make_lu(calls)
    lu_dry = type("LUDry", (lu,), {})

    def expand(self):
        calls.append("ExpandNames")
        self.needed_locks = {}
        self.dry_run_result = "would do it"

    lu_dry.ExpandNames = expand
    op = opcodes.OpTestDummy(result=None, messages=[], fail=False, submit_jobs=[],
                             dry_run=True)
    result, _ = run(context, lu_dry, op=op)
    assert result == "would do it"
    assert "Exec" not in calls


def test_tasklets_run_in_order(context):
    calls = []

    class T1(Tasklet):
        def CheckPrereq(self):
            calls.append("t1.check")

        def Exec(self, feedback_fn):
            calls.append("t1.exec")

    class T2(Tasklet):
        def CheckPrereq(self):
            calls.append("t2.check")

        def Exec(self, feedback_fn):
            feedback_fn("from t2")
            calls.append("t2.exec")

    lu = make_lu(calls, tasklets=[T1, T2])
    result, cbs = run(context, lu)
    assert result is None
    assert [c for c in calls if isinstance(c, str) and c.startswith("t")] == [
        "t1.check", "t2.check", "t1.exec", "t2.exec"]
    assert (constants.ELOG_MESSAGE, "from t2") in cbs.feedback


def test_lock_timeouts_raise_priority_then_block(context):
    glm = context.glm
    holder_ready = threading.Event()
    release = threading.Event()

    def hold():
        glm.acquire(locking.LEVEL_CLUSTER, locking.BGL, shared=1)
        glm.acquire(locking.LEVEL_NODE, ["node1"])
        holder_ready.set()
        release.wait(WAIT)
        glm.release(locking.LEVEL_NODE)
        glm.release(locking.LEVEL_CLUSTER)

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        assert holder_ready.wait(WAIT)
        calls = []
        lu = make_lu(calls, needed={locking.LEVEL_NODE: ["node1"]})
        cbs = Callbacks()

        class ReleasingCallbacks(Callbacks):
            def NotifyLockTimeout(self, priority):
                super().NotifyLockTimeout(priority)
                if len(self.timeouts) == 2:
                    release.set()  # the third attempt (blocking) gets the lock

        cbs = ReleasingCallbacks()
        strategy = lambda: locking.LockAttemptTimeoutStrategy(timeouts=[0.01, 0.01])  # noqa: E731
        result, _ = run(context, lu, cbs=cbs, proc_args={"lock_timeouts": strategy},
                        priority=constants.OP_PRIO_NORMAL)
        assert result == "done"
        assert cbs.timeouts == [-1, -2]
        assert calls.count("ExpandNames") == 3  # a fresh LU per attempt
        assert calls.count("Exec") == 1
    finally:
        release.set()
        thread.join(WAIT)
    assert _owned(glm) == {}


@pytest.fixture
def node1_held(context):
    """Another thread holds node1 exclusively until the test ends."""
    glm = context.glm
    ready = threading.Event()
    release = threading.Event()

    def hold():
        glm.acquire(locking.LEVEL_CLUSTER, locking.BGL, shared=1)
        glm.acquire(locking.LEVEL_NODE, ["node1"])
        ready.set()
        release.wait(WAIT)
        glm.release(locking.LEVEL_NODE)
        glm.release(locking.LEVEL_CLUSTER)

    thread = threading.Thread(target=hold)
    thread.start()
    assert ready.wait(WAIT)
    yield
    release.set()
    thread.join(WAIT)


def test_priority_stops_at_highest(context, node1_held):
    lu = make_lu([], needed={locking.LEVEL_NODE: ["node1"]})
    cbs = Callbacks(cancel_after_timeouts=2)
    strategy = lambda: locking.LockAttemptTimeoutStrategy(timeouts=[0.01] * 5)  # noqa: E731
    with pytest.raises(errors.JobCanceled):
        run(context, lu, cbs=cbs, proc_args={"lock_timeouts": strategy},
            priority=constants.OP_PRIO_HIGHEST + 1)
    assert cbs.timeouts == [constants.OP_PRIO_HIGHEST, constants.OP_PRIO_HIGHEST]
    assert _owned(context.glm) == {}


def test_single_attempt_with_timeout(context):
    glm = context.glm
    done = threading.Event()
    errors_seen = []

    def other():
        # Another thread: the BGL exclusively, so that our acquire times out
        lu = make_lu([], needed={locking.LEVEL_NODE: ["node2"]})
        try:
            with pytest.raises(mcpu.LockAcquireTimeout):
                run(context, lu, timeout=0.01)
            assert _owned(glm) == {}
        except BaseException as err:
            errors_seen.append(err)
        done.set()

    glm.acquire(locking.LEVEL_CLUSTER, locking.BGL, shared=0)
    try:
        thread = threading.Thread(target=other)
        thread.start()
        assert done.wait(WAIT)
        thread.join(WAIT)
    finally:
        glm.release(locking.LEVEL_CLUSTER)
    assert not errors_seen


def test_feedback_formats(context):
    class LULog(NoHooksLU):
        REQ_BGL = False

        def ExpandNames(self):
            self.needed_locks = {}

        def Exec(self, feedback_fn):
            self.LogStep(1, 3, "first")
            self.LogWarning("careful %s", "now", hint="do it right")
            self.LogInfo("plain")
            feedback_fn(constants.ELOG_JQUEUE_TEST, ("x", "y", 1))
            self.proc.Log("raw")

    _, cbs = run(context, LULog)
    assert cbs.feedback == [
        (constants.ELOG_MESSAGE, "STEP 1/3 first"),
        (constants.ELOG_MESSAGE, " - WARNING: careful now"),
        (constants.ELOG_MESSAGE, "      Hint: do it right"),
        (constants.ELOG_MESSAGE, " - INFO: plain"),
        (constants.ELOG_JQUEUE_TEST, ("x", "y", 1)),
        (constants.ELOG_MESSAGE, "raw"),
    ]


def test_bad_lu_declarations(context):
    class LUNoLocks(NoHooksLU):
        REQ_BGL = False

        def ExpandNames(self):
            pass  # forgets needed_locks

    with pytest.raises(errors.ProgrammerError, match="did not set needed_locks"):
        run(context, LUNoLocks)

    class LUBadLevel(NoHooksLU):
        REQ_BGL = False

        def ExpandNames(self):
            self.needed_locks = {42: ["x"]}

    with pytest.raises(errors.ProgrammerError, match="invalid levels"):
        run(context, LUBadLevel)
    assert _owned(context.glm) == {}


def test_unknown_opcode_and_not_an_opcode(context):
    proc = mcpu.Processor(context)
    with pytest.raises(errors.OpCodeUnknown, match="OP_TEST_NOT_IMPLEMENTED"):
        proc.ExecOpCode(OpTestNotImplemented(), Callbacks())
    with pytest.raises(errors.ProgrammerError, match="Not an opcode"):
        proc.ExecOpCode({"OP_ID": "OP_TEST_DELAY"}, Callbacks())


def test_real_lookup_runs_test_delay(context):
    proc = mcpu.Processor(context)
    cbs = Callbacks()
    assert proc.ExecOpCode(opcodes.OpTestDelay(duration=0.001, repeat=2), cbs) is None
    assert cbs.feedback == [
        (constants.ELOG_MESSAGE, " - INFO: Test delay iteration 1/2"),
        (constants.ELOG_MESSAGE, " - INFO: Test delay iteration 2/2"),
    ]
    assert cmdlib.GetLuClass(opcodes.OpTestDelay).__name__ == "LUTestDelay"


def test_hooks_master_stub():
    hm = mcpu.HooksMaster.BuildFromLu(None)
    assert hm.RunPhase(constants.HOOKS_PHASE_PRE) == {}
    assert hm.RunPhase(constants.HOOKS_PHASE_POST) == {}
    with pytest.raises(errors.ProgrammerError, match="phase 'middle'"):
        hm.RunPhase("middle")


# --- add_locks / remove_locks ----------------------------------------------------------------

def _locks_seen(calls):
    return next(c[1] for c in calls if isinstance(c, tuple) and c[0] == "locks")


@pytest.mark.parametrize("shared", [0, 1])
def test_add_locks_added_held_and_kept(context, shared):
    calls = []
    lu = make_lu(calls, add={locking.LEVEL_INSTANCE: ["new1"]},
                 needed={locking.LEVEL_NODE: ["node1"]},
                 shared={locking.LEVEL_INSTANCE: shared})
    result, _ = run(context, lu)
    assert result == "done"
    assert _locks_seen(calls) == {locking.LEVEL_CLUSTER: {locking.BGL},
                                  locking.LEVEL_INSTANCE: {"new1"},
                                  locking.LEVEL_NODE: {"node1"}}
    # Still there after the opcode, and free
    assert context.glm.names(locking.LEVEL_INSTANCE) == {"inst1", "new1"}
    assert _owned(context.glm) == {}
    assert context.glm.acquire(locking.LEVEL_CLUSTER, locking.BGL, shared=1)
    assert context.glm.acquire(locking.LEVEL_INSTANCE, ["new1"], timeout=0)


def test_add_locks_held_in_the_declared_mode(context):
    modes = []

    class LUMode(make_lu([], add={locking.LEVEL_INSTANCE: "new1"},
                         shared={locking.LEVEL_INSTANCE: 1})):
        def Exec(self, feedback_fn):
            modes.append(self.glm.check_owned(locking.LEVEL_INSTANCE, ["new1"], shared=1))
            return None

    run(context, LUMode)
    assert modes == [True]


def test_add_existing_lock_fails_clearly(context):
    calls = []
    lu = make_lu(calls, add={locking.LEVEL_INSTANCE: ["inst1"]})
    with pytest.raises(errors.OpPrereqError) as err:
        run(context, lu)
    assert err.value.args == ("Instance 'inst1' is already in the cluster or being"
                              " created by another job", errors.ECODE_NOTUNIQUE)
    assert "CheckPrereq" not in calls
    assert context.glm.names(locking.LEVEL_INSTANCE) == {"inst1"}
    assert _owned(context.glm) == {}


@pytest.mark.parametrize("step", ["CheckPrereq", "Exec"])
def test_added_locks_removed_when_the_lu_fails(context, step):
    lu = make_lu([], add={locking.LEVEL_INSTANCE: ["new1"]},
                 needed={locking.LEVEL_NODE: ["node1"]}, fail_in=step)
    with pytest.raises(errors.OpExecError):
        run(context, lu)
    assert context.glm.names(locking.LEVEL_INSTANCE) == {"inst1"}
    assert _owned(context.glm) == {}


def test_added_locks_removed_after_a_dry_run(context):
    lu = make_lu([], add={locking.LEVEL_INSTANCE: ["new1"]})
    run(context, lu, op=opcodes.OpTestDummy(result=None, messages=[], fail=False,
                                            submit_jobs=[], dry_run=True))
    assert context.glm.names(locking.LEVEL_INSTANCE) == {"inst1"}


def test_added_locks_removed_on_lock_timeout_and_added_again(context, node1_held):
    calls = []
    lu = make_lu(calls, add={locking.LEVEL_INSTANCE: ["new1"]},
                 needed={locking.LEVEL_NODE: ["node1"]})
    seen = []

    class Cbs(Callbacks):
        def NotifyLockTimeout(self, priority):
            super().NotifyLockTimeout(priority)
            # Between attempts the added lock is gone again
            seen.append(sorted(context.glm.names(locking.LEVEL_INSTANCE)))
            raise errors.JobCanceled("stop")

    strategy = lambda: locking.LockAttemptTimeoutStrategy(timeouts=[0.01])  # noqa: E731
    with pytest.raises(errors.JobCanceled):
        run(context, lu, cbs=Cbs(), proc_args={"lock_timeouts": strategy})
    assert seen == [["inst1"]]
    assert context.glm.names(locking.LEVEL_INSTANCE) == {"inst1"}


def test_remove_locks_after_successful_exec(context):
    calls = []
    lu = make_lu(calls, needed={locking.LEVEL_INSTANCE: ["inst1"],
                                locking.LEVEL_NODE: ["node1"]},
                 remove={locking.LEVEL_INSTANCE: ["inst1"]})
    assert run(context, lu)[0] == "done"
    assert context.glm.names(locking.LEVEL_INSTANCE) == frozenset()
    assert _owned(context.glm) == {}


def test_remove_locks_kept_when_exec_fails(context):
    lu = make_lu([], needed={locking.LEVEL_INSTANCE: ["inst1"]},
                 remove={locking.LEVEL_INSTANCE: ["inst1"]}, fail_in="Exec")
    with pytest.raises(errors.OpExecError):
        run(context, lu)
    assert context.glm.names(locking.LEVEL_INSTANCE) == {"inst1"}
    assert _owned(context.glm) == {}


def test_add_and_acquire_at_one_level_is_a_programmer_error(context):
    lu = make_lu([], add={locking.LEVEL_INSTANCE: ["new1"]},
                 needed={locking.LEVEL_INSTANCE: ["inst1"]})
    with pytest.raises(errors.ProgrammerError, match="both adds and acquires"):
        run(context, lu)
    assert context.glm.names(locking.LEVEL_INSTANCE) == {"inst1"}
    lu = make_lu([], add={locking.LEVEL_CLUSTER: ["x"]})
    with pytest.raises(errors.ProgrammerError, match="adds locks at invalid levels"):
        run(context, lu)
    assert _owned(context.glm) == {}


def test_parallel_adds_of_one_name_one_wins(context):
    """Two opcodes adding the same lock at once: one runs, the other fails."""
    in_exec = threading.Event()
    release = threading.Event()
    outcome = {}

    class LUBlock(make_lu([], add={locking.LEVEL_INSTANCE: ["new1"]})):
        def Exec(self, feedback_fn):
            in_exec.set()
            assert release.wait(WAIT)
            return "first"

    def first():
        outcome["first"] = run(context, LUBlock)[0]

    thread = threading.Thread(target=first)
    thread.start()
    try:
        assert in_exec.wait(WAIT)
        with pytest.raises(errors.OpPrereqError, match="'new1' is already in the cluster"):
            run(context, make_lu([], add={locking.LEVEL_INSTANCE: ["new1"]}))
    finally:
        release.set()
        thread.join(WAIT)
    assert outcome == {"first": "first"}
    assert context.glm.names(locking.LEVEL_INSTANCE) == {"inst1", "new1"}


class FlushRecorder:
    def __init__(self, calls):
        self.calls = calls

    def Flush(self):
        self.calls.append("flush")


@pytest.mark.parametrize("fail_in", [None, "Exec"])
def test_config_flushed_after_exec_before_post_hooks(context, fail_in):
    calls = []
    context.config_sync = FlushRecorder(calls)

    class Hooks(mcpu.HooksMaster):
        def RunPhase(self, phase, node_names=None):
            calls.append(phase)
            return {}

    lu = make_lu(calls, fail_in=fail_in)
    proc = mcpu.Processor(context, lu_class_fn=lambda _op: lu, hooks_master=Hooks)
    op = opcodes.OpTestDummy(result=None, messages=[], fail=False, submit_jobs=[])
    if fail_in:
        with pytest.raises(errors.OpExecError):
            proc.ExecOpCode(op, Callbacks())
    else:
        proc.ExecOpCode(op, Callbacks())
    order = [c for c in calls if c in ("Exec", "flush", "pre", "post")]
    expected = ["pre", "Exec", "flush"] + ([] if fail_in else ["post"])
    assert order == expected


@pytest.mark.parametrize("saves", [False, True])
def test_config_flushed_only_when_exec_saved(context, saves):
    calls = []
    context.config_sync = FlushRecorder(calls)
    context.cfg = SimpleNamespace(serial=5)
    context.cfg.GetConfigSerialNo = lambda: context.cfg.serial

    class LUSaving(make_lu(calls)):
        def Exec(self, feedback_fn):
            if saves:
                context.cfg.serial += 1
            return "done"

    assert run(context, LUSaving)[0] == "done"
    assert calls.count("flush") == (1 if saves else 0)
