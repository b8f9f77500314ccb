"""Cluster-level node calls: the master role, voting, commands and copies.

``master_node_name`` is what a node believes (its ssconf), used for the
master vote of ``master-failover``. ``node_start_master_daemons`` and
``node_stop_master`` run ``daemon-util``'s logic in this node's
environment. ``node_run_command`` and ``node_copy_file`` serve
``gnt-cluster command`` and ``copyfile``: like ``upload_file`` they are
root-equivalent, which is why only holders of a certificate signed by the
cluster certificate (the master) can call them.
"""

from __future__ import annotations

import os
import subprocess
from typing import Any

from ganeti import errors, pathutils, ssconf, utils
from ganeti.backend import Fail

#: Longest output returned by node_run_command (the rest is cut)
MAX_COMMAND_OUTPUT = 1 << 20


def GetMasterNodeName() -> str:
    """The master node's name according to this node's ssconf."""
    try:
        return ssconf.SimpleStore().GetMasterNode()
    except errors.ConfigurationError as err:
        Fail("Cannot read the master node from ssconf: %s", err)


def StartMasterDaemons(no_voting: bool) -> list[str]:
    """Start the master daemons on this node."""
    from ganeti import daemon_util
    try:
        return daemon_util.StartMaster(bool(no_voting))
    except errors.GenericError as err:
        Fail("Cannot start the master daemons: %s", err)


def StopMasterDaemons() -> list[str]:
    """Stop the master daemons on this node."""
    from ganeti import daemon_util
    try:
        return daemon_util.StopMaster()
    except errors.GenericError as err:
        Fail("Cannot stop the master daemons: %s", err)


def RunCommand(command: Any, timeout: Any = None) -> tuple[int, str]:
    """Run ``command`` through the shell; return (exit code, output).

    Output is stdout and stderr merged, at most :data:`MAX_COMMAND_OUTPUT`
    bytes. The command runs in this node's environment (its root
    directory and host name in a virtual cluster).
    """
    if not isinstance(command, str) or not command.strip():
        Fail("Command must be a non-empty string, got %r", command)
    if timeout is not None and (isinstance(timeout, bool)
                                or not isinstance(timeout, (int, float)) or timeout <= 0):
        Fail("Invalid command timeout %r", timeout)
    try:
        result = subprocess.run(["/bin/sh", "-c", command], stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                cwd="/", timeout=timeout, check=False,
                                start_new_session=True)
    except subprocess.TimeoutExpired:
        Fail("Command '%s' did not finish within %s seconds", command, timeout)
    except OSError as err:
        Fail("Cannot run command '%s': %s", command, err)
    output = result.stdout[:MAX_COMMAND_OUTPUT].decode("utf-8", "replace")
    code = result.returncode if result.returncode >= 0 else 128 - result.returncode
    return code, output


def CopyFile(file_name: Any, data: bytes, mode: Any) -> None:
    """Write ``data`` to ``file_name`` (any absolute path) with ``mode``.

    A virtual path (from a master in a virtual cluster) is written below
    this node's root.
    """
    if not isinstance(file_name, str) or not os.path.isabs(file_name):
        Fail("node_copy_file: file name must be an absolute path, got %r", file_name)
    try:
        path = pathutils.LocalizeVirtualPath(file_name)
    except errors.ProgrammerError:
        path = file_name
    if not utils.IsNormAbsPath(path):
        Fail("node_copy_file: file name '%s' is not normalised", path)
    if isinstance(mode, bool) or not isinstance(mode, int) or not 0 <= mode <= 0o7777:
        Fail("node_copy_file: invalid mode %r", mode)
    if not os.path.isdir(os.path.dirname(path)):
        Fail("Cannot copy to '%s': directory %s does not exist", path,
             os.path.dirname(path))
    try:
        utils.WriteFile(path, data=data, mode=mode)
    except OSError as err:
        Fail("Cannot write '%s': %s", path, err)

