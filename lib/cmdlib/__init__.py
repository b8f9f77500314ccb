"""The logical units, one module per area, and the opcode -> LU mapping.

An opcode ``OpFooBar`` is carried out by the LU class ``LUFooBar``, found
by looking through the modules of this package (every module is
imported once, the first time an LU is looked up). Adding an LU means
adding the class to a module here; nothing else needs to know.
"""

from __future__ import annotations

import importlib
import pkgutil
import threading

from ganeti import errors
from ganeti import opcodes
from ganeti.cmdlib.base import LogicalUnit, NoHooksLU, Tasklet

__all__ = ["GetLuClass", "GetLuClasses", "LogicalUnit", "NoHooksLU", "Tasklet"]

_lock = threading.Lock()
_lu_classes: dict[str, type[LogicalUnit]] | None = None


def _Collect() -> dict[str, type[LogicalUnit]]:
    found: dict[str, type[LogicalUnit]] = {}
    for info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{info.name}")
        for name, value in vars(module).items():
            if (name.startswith("LU") and isinstance(value, type)
                    and issubclass(value, LogicalUnit) and value.__module__ == module.__name__):
                if name in found and found[name] is not value:
                    raise errors.ProgrammerError(
                        f"LU {name} is defined in {found[name].__module__} and"
                        f" {module.__name__}")
                found[name] = value
    return found


def GetLuClasses() -> dict[str, type[LogicalUnit]]:
    """Every LU class by name ("LUTestDelay" -> class)."""
    global _lu_classes
    with _lock:
        if _lu_classes is None:
            _lu_classes = _Collect()
        return _lu_classes


def LuNameForOpcode(op_class: type[opcodes.OpCode]) -> str:
    """The LU class name for an opcode class (OpTestDelay -> LUTestDelay)."""
    name = op_class.__name__
    if not name.startswith("Op"):
        raise errors.ProgrammerError(f"Opcode class names start with 'Op', not {name!r}")
    return "LU" + name[2:]


def GetLuClass(op: opcodes.OpCode | type[opcodes.OpCode]) -> type[LogicalUnit]:
    """The LU class carrying out ``op``; OpCodeUnknown if there is none."""
    op_class = op if isinstance(op, type) else type(op)
    if not (isinstance(op_class, type) and issubclass(op_class, opcodes.OpCode)):
        raise errors.ProgrammerError(f"Not an opcode: {op!r}")
    lu_class = GetLuClasses().get(LuNameForOpcode(op_class))
    if lu_class is None:
        raise errors.OpCodeUnknown(f"Opcode {op_class.OP_ID} is not implemented"
                                   " (no logical unit for it)")
    return lu_class
