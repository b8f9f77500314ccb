"""Node power: the out-of-band helper and the powercycle call.

``run_oob`` runs on the master node only: the master daemon asks its own
node daemon to start the out-of-band helper configured for a node (the
``oob_program`` node parameter) as ``PROGRAM COMMAND NODE_NAME``, killing
it after the opcode's timeout, and returns what it printed on standard
output. Parsing the JSON answer is the master's business
(:mod:`ganeti.cmdlib.oob`), so that an answer of the wrong shape is
reported next to the node it concerns. The helper must be an absolute path
to an executable regular file; :func:`OobPathError` is also the check
``gnt-cluster verify`` makes on master-capable nodes (``NV_OOB_PATHS``).

``node_powercycle`` (``gnt-node powercycle``) schedules a hard reset of
the node through its hypervisor and answers at once, before the reset,
as Ganeti does.
"""

from __future__ import annotations

import logging
import os
import stat
import threading
from typing import Any

from ganeti import errors, hypervisor, utils
from ganeti.backend import Fail

#: Seconds between the answer to node_powercycle and the reset
POWERCYCLE_DELAY = 5.0
#: Longest helper output returned (the rest is cut)
MAX_OUTPUT = 1 << 20


def OobPathError(path: Any) -> str | None:
    """Why ``path`` cannot be run as an out-of-band helper, or None."""
    if not isinstance(path, str) or not os.path.isabs(path):
        return f"out of band helper {path!r} is not an absolute path"
    try:
        info = os.stat(path)
    except OSError as err:
        return f"error stating out of band helper {path}: {err.strerror}"
    if not stat.S_ISREG(info.st_mode):
        return f"out of band helper {path} is not a file"
    if not os.access(path, os.X_OK):
        return f"out of band helper {path} is not executable"
    return None


def RunOob(oob_program: str, command: str, node: str, timeout: float) -> str:
    """Run ``oob_program command node``; return its standard output.

    @raise RPCFail: naming the program and the node when the program is not
        runnable, fails, or does not end within ``timeout`` seconds
    """
    problem = OobPathError(oob_program)
    if problem:
        Fail("Out-of-band helper for node %s cannot run: %s", node, problem)
    argv = [oob_program, command, node]
    logging.info("Running out-of-band helper: %s", " ".join(argv))
    try:
        result = utils.RunCmd(argv, timeout=timeout)
    except (errors.OpExecError, OSError) as err:
        Fail("Can't execute out-of-band helper %s for node %s: %s",
             oob_program, node, err)
    if result.failed:
        stderr = result.stderr.strip()[:MAX_OUTPUT]
        Fail("Out-of-band helper %s %s %s %s%s", oob_program, command, node,
             result.fail_reason, f": {stderr}" if stderr else "")
    return result.stdout[:MAX_OUTPUT]


def _Powercycle(hypervisor_type: str, hvparams: Any) -> None:
    try:
        hypervisor.GetHypervisor(hypervisor_type).PowercycleNode(hvparams)
    except Exception:  # noqa: BLE001 - the node daemon's thread must not die
        logging.exception("Power-cycling the node through the %s hypervisor failed",
                          hypervisor_type)


def NodePowercycle(hypervisor_type: str, hvparams: Any) -> str:
    """Schedule a hard reset of this node; return a message saying so."""
    try:
        hypervisor.GetHypervisorClass(hypervisor_type)
    except errors.HypervisorError as err:
        Fail("Cannot power-cycle the node: %s", err)
    timer = threading.Timer(POWERCYCLE_DELAY, _Powercycle,
                            args=(hypervisor_type, hvparams))
    timer.daemon = True
    timer.start()
    return f"Reboot scheduled in {POWERCYCLE_DELAY:g} seconds"
