"""Hook scripts on the node: the ``hooks_runner`` RPC call.

The master asks each node involved in an operation to run the scripts of
``HOOKS_BASE_DIR/<hpath>-<phase>.d/`` with the environment it built. As
run-parts does, only executable regular files whose names match
``^[a-zA-Z0-9_-]+$`` run, in sorted order; other entries are skipped. Each
script runs with exactly the given environment, ``/`` as working directory,
stdin from /dev/null and a timeout; its output (stdout then stderr) is
returned with its status.
"""

from __future__ import annotations

import logging
import os
import re
import stat
from typing import Any

from ganeti import constants, errors, pathutils, utils
from ganeti.backend import Fail

_NAME_RE = re.compile(constants.HOOKS_SCRIPT_NAME_RE)
_HPATH_RE = re.compile(r"^[a-zA-Z0-9_-]+$")
#: Most characters of a script's output returned to the master
MAX_OUTPUT = 64 * 1024

#: One result per script: (path relative to the hooks dir, HKR_*, output)
HookResult = tuple[str, int, str]


def HooksDir(hpath: str, phase: str, base_dir: str | None = None) -> str:
    """The directory of the scripts for ``hpath`` and ``phase``."""
    base = pathutils.HOOKS_BASE_DIR if base_dir is None else base_dir
    return os.path.join(base, f"{hpath}-{phase}.d")


def _IsRunnable(path: str) -> bool:
    try:
        st = os.stat(path)
    except OSError:
        return False
    return stat.S_ISREG(st.st_mode) and os.access(path, os.X_OK)


def _Clip(text: str) -> str:
    text = text.strip()
    if len(text) > MAX_OUTPUT:
        return text[:MAX_OUTPUT] + "\n... (output truncated)"
    return text


def RunParts(directory: str, env: dict[str, str], timeout: float,
             prefix: str = "") -> list[HookResult]:
    """Run the scripts of ``directory`` in order; one result per entry.

    Entries that are not runnable scripts give ``HKR_SKIP``; a script that
    exits non-zero, is killed or cannot be started gives ``HKR_FAIL``.
    """
    try:
        names = sorted(os.listdir(directory))
    except FileNotFoundError:
        return []
    except OSError as err:
        Fail("Cannot list hooks directory %s: %s", directory, err)
    results: list[HookResult] = []
    for name in names:
        path = os.path.join(directory, name)
        rel = prefix + name
        if not _NAME_RE.match(name) or not _IsRunnable(path):
            results.append((rel, constants.HKR_SKIP, ""))
            continue
        try:
            result = utils.RunCmd([path], env=env, reset_env=True, cwd="/",
                                  timeout=timeout)
        except errors.OpExecError as err:
            results.append((rel, constants.HKR_FAIL, str(err)))
            continue
        output = _Clip(result.output)
        if result.failed:
            logging.warning("Hook %s failed (%s)", path, result.fail_reason)
            if not output:
                output = str(result.fail_reason)
            results.append((rel, constants.HKR_FAIL, output))
        else:
            results.append((rel, constants.HKR_SUCCESS, output))
    return results


def RunHooks(hpath: str, phase: str, env: dict[str, Any],
             base_dir: str | None = None,
             timeout: float = constants.HOOKS_SCRIPT_TIMEOUT) -> list[HookResult]:
    """Run the hooks ``hpath`` of ``phase`` here: [(script, HKR_*, output)].

    ``script`` is the path relative to the hooks base directory
    (``<hpath>-<phase>.d/<name>``), as Ganeti reports it.
    """
    if not isinstance(hpath, str) or not _HPATH_RE.match(hpath):
        Fail("Invalid hooks path %r", hpath)
    if phase not in (constants.HOOKS_PHASE_PRE, constants.HOOKS_PHASE_POST):
        Fail("Unknown hooks phase %r", phase)
    if not isinstance(env, dict):
        Fail("Hooks environment must be a dict, got %r", type(env).__name__)
    str_env = {str(key): str(value) for key, value in env.items()}
    directory = HooksDir(hpath, phase, base_dir)
    return RunParts(directory, str_env, timeout,
                    prefix=f"{hpath}-{phase}.d/")
