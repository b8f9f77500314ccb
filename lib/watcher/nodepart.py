"""What the watcher does on every node: daemons, hooks, node health, RAPI.

Daemons are started through :mod:`ganeti.daemon_util` (the library behind
``daemon-util``), so they get the same listen addresses, arguments and
ensure-dirs run as when an administrator starts them.
"""

from __future__ import annotations

import logging
import os
import re
import stat
import subprocess

from ganeti import constants, daemon_util, errors, pathutils, ssconf, utils
from ganeti.watcher import nodemaint

#: Seconds one hook of the hooks directory's watcher/ may run
HOOK_TIMEOUT = 60
#: Names run-parts runs (no dots: editor backups and .dpkg-old are skipped)
_HOOK_NAME = re.compile(r"^[A-Za-z0-9_-]+$")
#: Seconds the RAPI check waits for an answer
RAPI_TIMEOUT = 10.0


def WantedDaemons(ss: ssconf.SimpleStore | None = None) -> list[str]:
    """The daemons this node should run, in start order: the node daemon;
    confd on master candidates; the master daemon and RAPI on the master."""
    ss = ss or ssconf.SimpleStore()
    me = utils.Hostname.GetSysName()
    wanted = [constants.NODED]
    try:
        candidate = me in ss.GetMasterCandidates()
    except errors.ConfigurationError:
        candidate = False
    if candidate and daemon_util.IsAvailable(constants.CONFD):
        wanted.append(constants.CONFD)
    if daemon_util.IsMaster():
        wanted.append(constants.MASTERD)
        if daemon_util.IsAvailable(constants.RAPI):
            wanted.append(constants.RAPI)
    return wanted


def EnsureDaemons() -> dict[str, str]:
    """Start the wanted daemons that are down; return {daemon: what happened}
    for those that were started or failed to start."""
    done = {}
    for name in WantedDaemons():
        if daemon_util.IsRunning(name):
            continue
        logging.warning("Daemon %s is not running; starting it", name)
        try:
            message = daemon_util.StartDaemon(name)
        except errors.GenericError as err:
            logging.error("Cannot start %s: %s", name, err)
            done[name] = f"failed: {err}"
            continue
        logging.info("%s", message.splitlines()[-1] if message else f"{name} started")
        done[name] = "started"
    return done


def _IsExecutable(path: str) -> bool:
    try:
        st = os.stat(path)
    except OSError:
        return False
    return stat.S_ISREG(st.st_mode) and os.access(path, os.X_OK)


def RunWatcherHooks(hooks_dir: str | None = None) -> dict[str, int | None]:
    """Run the executables of ``<hooks>/watcher/`` in name order (names as
    run-parts accepts them); return {name: exit code, None if it could not
    run or timed out}. Failures are logged, never fatal."""
    hooks_dir = hooks_dir or os.path.join(pathutils.HOOKS_BASE_DIR,
                                          constants.HOOKS_NAME_WATCHER)
    try:
        names = sorted(os.listdir(hooks_dir))
    except FileNotFoundError:
        return {}
    except OSError as err:
        logging.error("Cannot list the watcher hooks in %s: %s", hooks_dir, err)
        return {}
    results: dict[str, int | None] = {}
    for name in names:
        path = os.path.join(hooks_dir, name)
        if not _HOOK_NAME.match(name) or not _IsExecutable(path):
            continue
        try:
            result = subprocess.run([path], cwd="/", stdin=subprocess.DEVNULL,
                                    capture_output=True, text=True,
                                    timeout=HOOK_TIMEOUT, check=False)
        except subprocess.TimeoutExpired:
            logging.error("Watcher hook %s did not finish within %ss", path,
                          HOOK_TIMEOUT)
            results[name] = None
            continue
        except OSError as err:
            logging.error("Cannot run watcher hook %s: %s", path, err)
            results[name] = None
            continue
        results[name] = result.returncode
        if result.returncode != 0:
            logging.error("Watcher hook %s failed (exit code %s): %s", path,
                          result.returncode,
                          (result.stdout + result.stderr).strip()[-2000:])
        else:
            logging.debug("Watcher hook %s succeeded", path)
    return results


def MaintainNodeHealth() -> list[str]:
    """With ``maintain_node_health``: stop this node's instances when the
    master candidates declare it offline (see :mod:`ganeti.watcher.nodemaint`)."""
    if not nodemaint.ShouldRun():
        return []
    return nodemaint.Maintain()


def RapiAddress(rapi_ip: str | None) -> tuple[str, int]:
    """Where to reach this node's RAPI: ``--rapi-ip``, else the address
    daemon-util makes it listen on (a virtual node's), else localhost."""
    port = constants.DEFAULT_RAPI_PORT
    args = daemon_util.GetListenArgs(constants.RAPI)
    if "-p" in args:
        port = int(args[args.index("-p") + 1])
    if rapi_ip:
        return rapi_ip, port
    if "-b" in args:
        return args[args.index("-b") + 1], port
    return "127.0.0.1", port


def IsRapiResponding(host: str, port: int, timeout: float = RAPI_TIMEOUT) -> bool:
    """Whether RAPI at ``host:port`` answers ``GET /version`` with 2."""
    from ganeti.rapi import client as rapi_client
    try:
        with rapi_client.GanetiRapiClient(host, port, timeout=timeout) as client:
            return client.GetVersion() == constants.RAPI_VERSION
    except Exception as err:  # noqa: BLE001 - any failure means "not answering"
        logging.debug("RAPI at %s:%s does not answer: %s", host, port, err)
        return False


def CheckRapi(rapi_ip: str | None) -> bool:
    """On the master: restart RAPI if it does not answer; True if it answers
    (at first or after the restart)."""
    if not daemon_util.IsAvailable(constants.RAPI):
        return True
    host, port = RapiAddress(rapi_ip)
    if IsRapiResponding(host, port):
        return True
    logging.warning("RAPI daemon is not responding at %s:%s; restarting it", host, port)
    try:
        daemon_util.StopDaemon(constants.RAPI)
        daemon_util.StartDaemon(constants.RAPI)
    except errors.GenericError as err:
        logging.error("Cannot restart RAPI: %s", err)
        return False
    if IsRapiResponding(host, port):
        logging.info("RAPI daemon restarted and responding")
        return True
    logging.error("RAPI daemon still not responding at %s:%s after a restart",
                  host, port)
    return False
