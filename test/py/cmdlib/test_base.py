"""Tests for ganeti.cmdlib's LU base classes and the opcode -> LU mapping."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from ganeti import cmdlib, errors, locking, opcodes
from ganeti.cmdlib import base



class OpTestNotImplemented(opcodes.OpCode):
    """An opcode no logical unit implements (not in OP_MAPPING)."""

def test_lookup_by_opcode_name():
    assert cmdlib.GetLuClass(opcodes.OpTestDelay(duration=1)).__name__ == "LUTestDelay"
    assert cmdlib.GetLuClass(opcodes.OpTestJqueue).__name__ == "LUTestJqueue"
    assert cmdlib.LuNameForOpcode(opcodes.OpInstanceCreate) == "LUInstanceCreate"
    classes = cmdlib.GetLuClasses()
    assert all(name.startswith("LU") and issubclass(cls, base.LogicalUnit)
               for name, cls in classes.items())
    # Base classes are not LUs of any opcode
    assert "LogicalUnit" not in classes and "NoHooksLU" not in classes


def test_lookup_errors():
    with pytest.raises(errors.OpCodeUnknown,
                       match="OP_TEST_NOT_IMPLEMENTED is not implemented"):
        cmdlib.GetLuClass(OpTestNotImplemented)
    with pytest.raises(errors.ProgrammerError, match="Not an opcode"):
        cmdlib.GetLuClass(dict)  # type: ignore[arg-type]
    with pytest.raises(errors.ProgrammerError, match="start with 'Op'"):
        cmdlib.LuNameForOpcode(dict)  # type: ignore[arg-type]


def _lu(cls, op=None):
    proc = SimpleNamespace(LogDebug=lambda *a: None, messages=[],
                           LogInfo=lambda m, *a: proc.messages.append(("info", m % a)),
                           LogWarning=lambda m, *a, **k: proc.messages.append(("warn", m, k)),
                           LogStep=lambda c, t, m: proc.messages.append(("step", c, t, m)))
    ctx = SimpleNamespace(cfg="CFG", glm=locking.GanetiLockManager())
    return cls(proc, op or opcodes.OpTestDelay(duration=1), ctx, "RPC"), proc


def test_defaults_and_attributes():
    lu, _ = _lu(base.NoHooksLU)
    assert lu.cfg == "CFG" and lu.rpc == "RPC"
    assert lu.needed_locks is None
    assert lu.share_locks == dict.fromkeys(locking.LEVELS, 0)
    assert lu.recalculate_locks == {}
    assert lu.dry_run_result is None and lu.tasklets is None
    assert base.LogicalUnit.REQ_BGL is True
    assert base.NoHooksLU.HPATH is None and base.NoHooksLU.HTYPE is None
    assert lu.BuildHooksEnv() == {} and lu.BuildHooksNodes() is None
    lu.CheckArguments()
    lu.DeclareLocks(locking.LEVEL_NODE)
    lu.CheckPrereq()  # no tasklets: nothing to check
    assert lu.HooksCallBack("post", {}, None, "result") == "result"
    assert lu.PreparePostHookNodes(["a"]) == ["a"]
    assert lu.owned_locks(locking.LEVEL_NODE) == set()


def test_methods_to_override():
    lu, _ = _lu(base.LogicalUnit)
    with pytest.raises(NotImplementedError, match="ExpandNames"):
        lu.ExpandNames()
    with pytest.raises(NotImplementedError, match="Exec"):
        lu.Exec(None)
    with pytest.raises(NotImplementedError, match="BuildHooksEnv"):
        lu.BuildHooksEnv()
    with pytest.raises(NotImplementedError, match="BuildHooksNodes"):
        lu.BuildHooksNodes()
    with pytest.raises(NotImplementedError, match="Exec"):
        base.Tasklet(lu).Exec(None)


def test_log_helpers_go_to_processor():
    lu, proc = _lu(base.NoHooksLU)
    lu.LogInfo("a %s", "b")
    lu.LogWarning("w", hint="h")
    lu.LogStep(1, 2, "s")
    assert proc.messages == [("info", "a b"), ("warn", "w", {"hint": "h"}),
                             ("step", 1, 2, "s")]


def test_tasklets():
    calls = []

    class T(base.Tasklet):
        def __init__(self, lu, name):
            super().__init__(lu)
            self.name = name

        def CheckPrereq(self):
            calls.append(("check", self.name))

        def Exec(self, feedback_fn):
            calls.append(("exec", self.name))

    lu, _ = _lu(base.NoHooksLU)
    lu.tasklets = [T(lu, 1), T(lu, 2)]
    assert lu.tasklets[0].cfg == "CFG"
    lu.CheckPrereq()
    assert lu.Exec(None) is None
    assert calls == [("check", 1), ("check", 2), ("exec", 1), ("exec", 2)]


def test_level_names():
    assert base.CheckLevelName(locking.LEVEL_NODE) == "node"
    with pytest.raises(errors.ProgrammerError, match="99"):
        base.CheckLevelName(99)
