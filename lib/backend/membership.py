"""Leaving the cluster: the node side of ``gnt-node remove``.

``node_leave_cluster`` removes the cluster's files from this node (the
configuration, ssconf, certificates and keys, the job queue), stops the
node's confd if it runs, and then stops the node daemon itself once the
answer has been sent (through ``errors.QuitGanetiException``, which the
RPC dispatcher turns into the answer and a shutdown).
"""

from __future__ import annotations

import logging
import os
import signal

from ganeti import constants, errors, pathutils, utils


def _RemoveFilesIn(directory: str) -> list[str]:
    """Remove the regular files directly in ``directory``; return them."""
    removed: list[str] = []
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return removed
    for name in names:
        path = os.path.join(directory, name)
        if os.path.isfile(path) and not os.path.islink(path):
            utils.RemoveFile(path)
            removed.append(path)
    return removed


def _StopDaemon(name: str) -> None:
    pidfile = pathutils.GetDaemonPidFile(name)
    pid = utils.ReadLockedPidFile(pidfile) if os.path.exists(pidfile) else None
    if pid:
        logging.info("Stopping %s (pid %s)", name, pid)
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass


def LeaveCluster(modify_ssh_setup: bool) -> None:
    """Forget the cluster and stop this node's daemons.

    ``modify_ssh_setup`` is Ganeti's argument; SSH keys are never touched
    here. Never returns normally: the daemon quits after answering.
    """
    removed = _RemoveFilesIn(pathutils.DATA_DIR)
    removed.extend(_RemoveFilesIn(pathutils.CRYPTO_KEYS_DIR))
    if os.path.isdir(pathutils.QUEUE_DIR):
        from ganeti.backend import jobqueue
        try:
            jobqueue.JobQueuePurge()
        except (OSError, errors.GenericError) as err:
            logging.warning("Cannot purge the job queue: %s", err)
    logging.info("Left the cluster: removed %d files", len(removed))
    _StopDaemon(constants.CONFD)
    raise errors.QuitGanetiException(True, "Shutdown scheduled")
