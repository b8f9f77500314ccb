"""Running an allocator program on the node (the master), as Ganeti's
``iallocator_runner`` does: the program is looked up by name in the
iallocator search path (:func:`ganeti.pathutils.IallocatorSearchPath`),
given the input message in a temporary file (and the cluster's default
allocator parameters as ``--name=value`` options), and its standard
output is the answer."""

from __future__ import annotations

import os
import sys
import tempfile
from typing import Any

from ganeti import pathutils, utils
from ganeti.backend import Fail

#: Seconds an allocator may run
RUN_TIMEOUT = 600


def FindIallocator(name: Any) -> str | None:
    """The path of allocator ``name`` in the search path, or None."""
    if not isinstance(name, str) or not name or "/" in name or name.startswith("."):
        Fail("Invalid iallocator name %r", name)
    return pathutils.FindIallocator(name)


def _Options(params: Any) -> list[str]:
    if not params:
        return []
    if not isinstance(params, dict):
        Fail("Invalid iallocator parameters %r: expected a dictionary", params)
    return [f"--{key}={value}" if value is not None else f"--{key}"
            for key, value in sorted(params.items())]


def _Interpreter(path: str) -> list[str]:
    """Our own allocators (Python launchers in our directory) run with this
    interpreter, which finds the package; any other program as it is."""
    ours = pathutils.IallocatorSearchPath()[0]
    if os.path.dirname(path) == ours:
        return [sys.executable]
    return []


def RunIallocator(name: str, idata: str, ial_params: Any) -> str:
    """Run allocator ``name`` on the input text; return its answer text."""
    options = _Options(ial_params)
    path = FindIallocator(name)
    if path is None:
        Fail("iallocator '%s' not found in the iallocator search path (%s)", name,
             ", ".join(pathutils.IallocatorSearchPath()))
    with tempfile.NamedTemporaryFile("w", prefix="ganeti-iallocator-", suffix=".json",
                                     encoding="utf-8") as fd:
        fd.write(idata)
        fd.flush()
        result = utils.RunCmd([*_Interpreter(path), path, *options, fd.name],
                              timeout=RUN_TIMEOUT)
    if result.failed:
        output = (result.output or "").strip().splitlines()
        Fail("iallocator '%s' failed (%s): %s", name, result.fail_reason,
             " | ".join(output[-10:]) or "no output", log=False)
    return result.stdout
