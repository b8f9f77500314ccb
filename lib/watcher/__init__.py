"""ganeti-watcher: run from cron on every node, keeps daemons and instances up.

One run (:func:`Main`):

1. Unless ``--ignore-pause``, exit at once while the cluster-wide pause
   (``gnt-cluster watcher pause``, the node's ``watcher.pause`` file) lasts.
2. Take the node's watcher lock (``ganeti-watcher.lock``) without waiting:
   while another watcher runs on this node, this one exits.
3. The node part (:mod:`ganeti.watcher.nodepart`): start the daemons this
   node should run that are down, through :mod:`ganeti.daemon_util`; run the
   hooks directory's ``watcher/`` executables; with ``maintain_node_health``
   stop the instances of a node the candidates declare offline.
4. On the master only: connect to the master daemon (a master that cannot
   be reached ends the run with :data:`EXIT_MASTER_UNREACHABLE` and a
   message: only the node part was done), archive jobs older than
   ``--job-age``, check that RAPI answers (restart it if not), then run one
   child per node group (``ganeti-watcher --node-group UUID``, see
   :mod:`ganeti.watcher.group`), each under its group's lock file, wait for
   them a bounded time, and merge their instance status files into
   ``instance-status``.

The log goes to ``watcher.log``; ``--debug`` also logs (at debug level) to
standard error.
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any

from ganeti import constants, daemon, errors, pathutils, utils

#: Exit code when this node is the master but its master daemon cannot be
#: reached (the node part was done)
EXIT_MASTER_UNREACHABLE = 2
#: Seconds the parent waits for the group children; ones still running then
#: are left to finish (they hold their group's lock), so that a hung group
#: never keeps the node's watcher lock past the next cron run
CHILD_WAIT_TIMEOUT = 240.0
#: Default of --job-age (Ganeti's: six hours)
DEFAULT_JOB_AGE = 6 * 3600
#: Seconds the luxi client waits to connect and for an answer
LUXI_TIMEOUTS = (10.0, 120.0)


def _JobAge(value: str) -> int:
    from ganeti.cli import ParseTimespec
    try:
        return ParseTimespec(value)
    except errors.OpPrereqError as err:
        raise argparse.ArgumentTypeError(str(err.args[0])) from None


def BuildParser() -> argparse.ArgumentParser:
    """The command line, with Ganeti's options."""
    parser = argparse.ArgumentParser(
        prog="ganeti-watcher",
        description="Restart the daemons and instances that should run;"
                    " run from cron on every node of a cluster")
    parser.add_argument("-d", "--debug", action="store_true",
                        help="Log debug messages, to standard error too")
    parser.add_argument("-A", "--job-age", type=_JobAge, default=DEFAULT_JOB_AGE,
                        metavar="AGE",
                        help="Archive finished jobs older than AGE (seconds, or a"
                             " number with s, m, h, d or w; default 6h)")
    parser.add_argument("--ignore-pause", action="store_true",
                        help="Run even while the watcher is paused")
    parser.add_argument("--rapi-ip", default=None, metavar="IP",
                        help="The address RAPI listens on (as its -b option);"
                             " default: localhost, or the node's address in a"
                             " virtual cluster")
    parser.add_argument("--no-verify-disks", action="store_true",
                        help="Do not run verify-disks for the node groups")
    parser.add_argument("--no-strict", action="store_true",
                        help="Verify only the disks whose node locks can be had")
    parser.add_argument("--node-group", default=None, metavar="UUID",
                        help="Do the master's work for this node group only (the"
                             " watcher starts one such child per group)")
    parser.add_argument("--no-wait-children", dest="wait_children",
                        action="store_false", default=True,
                        help="Do not wait for the node group children")
    return parser


def ParseOptions(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The options of ``argv`` (exits with a usage message on errors)."""
    opts = BuildParser().parse_args(argv)
    if opts.node_group is not None and not opts.node_group.strip():
        BuildParser().error("--node-group needs a group UUID")
    return opts


def ChildArgs(opts: argparse.Namespace, group_uuid: str) -> list[str]:
    """The options of a group child: the parent's, plus ``--node-group``."""
    args = ["--node-group", group_uuid, "--job-age", str(opts.job_age)]
    if opts.debug:
        args.append("--debug")
    if opts.ignore_pause:
        args.append("--ignore-pause")
    if opts.no_verify_disks:
        args.append("--no-verify-disks")
    if opts.no_strict:
        args.append("--no-strict")
    if opts.rapi_ip:
        args += ["--rapi-ip", opts.rapi_ip]
    return args


def ShouldPause() -> bool:
    """Whether the cluster-wide pause lasts (read from this node's file)."""
    from ganeti.luxi.handlers import ReadWatcherPause
    return ReadWatcherPause() is not None


def SetupLogging(opts: argparse.Namespace) -> None:
    """Log to watcher.log; with --debug to standard error too."""
    daemon.SetupLogging(constants.WATCHER, pathutils.LOG_WATCHER, debug=opts.debug,
                        stderr_logging=opts.debug)


def GetLuxiClient() -> Any:
    """A luxi client of the master daemon, connected.

    @raise errors.GenericError: (NoMasterError or LuxiError) if it cannot be
        reached
    """
    from ganeti.luxi import client as luxi_client
    client = luxi_client.Client(pathutils.MASTER_SOCKET, timeouts=LUXI_TIMEOUTS)
    try:
        client.QueryConfigValues(["cluster_name"])
    except BaseException:
        client.Close()
        raise
    return client


def _ChildEnv() -> dict[str, str]:
    env = dict(os.environ)
    pylib = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    paths = [pylib] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    return env


def StartGroupChildren(opts: argparse.Namespace, groups: Sequence[str]
                       ) -> dict[str, subprocess.Popen]:
    """Start one watcher child per group (``python -m ganeti.watcher``)."""
    children = {}
    for uuid in groups:
        cmd = [sys.executable, "-m", "ganeti.watcher", *ChildArgs(opts, uuid)]
        logging.debug("Starting the child for group %s: %s", uuid, " ".join(cmd))
        try:
            children[uuid] = subprocess.Popen(cmd, env=_ChildEnv(),
                                              stdin=subprocess.DEVNULL, close_fds=True)
        except OSError as err:
            logging.error("Cannot start the watcher child of group %s: %s", uuid, err)
    return children


def WaitForChildren(children: dict[str, subprocess.Popen],
                    timeout: float = CHILD_WAIT_TIMEOUT) -> bool:
    """Wait for the group children, at most ``timeout`` seconds in all;
    True if all ended and succeeded."""
    deadline = time.monotonic() + timeout
    good = True
    for uuid, child in children.items():
        try:
            code = child.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            logging.warning("The watcher child of group %s (pid %s) still runs"
                            " after %.0fs; leaving it to finish", uuid, child.pid,
                            timeout)
            good = False
            continue
        if code != constants.EXIT_SUCCESS:
            logging.error("The watcher child of group %s (pid %s) failed with exit"
                          " code %s", uuid, child.pid, code)
            good = False
    return good


def MergeInstanceStatus(groups: Sequence[str],
                        target: str | None = None) -> int:
    """Write ``instance-status`` from the groups' instance status files;
    return the number of instances listed."""
    lines: dict[str, str] = {}
    for uuid in groups:
        path = pathutils.WATCHER_GROUP_INSTANCE_STATUS_FILE % uuid
        try:
            text = utils.ReadFile(path)
        except FileNotFoundError:
            continue
        except OSError as err:
            logging.warning("Cannot read %s: %s", path, err)
            continue
        for line in text.splitlines():
            parts = line.split()
            if len(parts) == 2:
                lines[parts[0]] = parts[1]
    data = "".join(f"{name} {status}\n"
                   for name, status in sorted(lines.items(),
                                              key=lambda kv: utils.NiceSortKey(kv[0])))
    utils.WriteFile(target or pathutils.INSTANCE_STATUS_FILE, data=data, mode=0o644)
    return len(lines)


def ArchiveJobs(client: Any, age: int) -> None:
    """Archive the finished jobs older than ``age`` seconds."""
    archived, left = client.AutoArchiveJobs(age)
    logging.debug("Archived %s jobs, left %s", archived, left)
    if archived:
        logging.info("Archived %s job(s) older than %ss", archived, age)


def _MasterPart(opts: argparse.Namespace) -> int:
    from ganeti.watcher import nodepart
    try:
        client = GetLuxiClient()
    except errors.GenericError as err:
        message = (f"Cannot reach the master daemon ({pathutils.MASTER_SOCKET}):"
                   f" {err}; only this node's part of the watcher was done")
        logging.error("%s", message)
        print(f"ganeti-watcher: {message}", file=sys.stderr)
        return EXIT_MASTER_UNREACHABLE
    with client:
        master, = client.QueryConfigValues(["master_node"])
        if master != utils.Hostname.GetSysName():
            logging.info("The master daemon says %s is the master; skipping the"
                         " master's part", master)
            return constants.EXIT_SUCCESS
        try:
            ArchiveJobs(client, opts.job_age)
        except errors.GenericError as err:
            logging.error("Archiving jobs failed: %s", err)
        nodepart.CheckRapi(opts.rapi_ip)
        result = client.Query(constants.QR_GROUP, ["uuid"], None)
        groups = [row[0][1] for row in result["data"]]
    children = StartGroupChildren(opts, groups)
    good = not opts.wait_children or WaitForChildren(children)
    try:
        count = MergeInstanceStatus(groups)
        logging.debug("Wrote the status of %s instance(s)", count)
    except OSError as err:
        logging.error("Cannot write %s: %s", pathutils.INSTANCE_STATUS_FILE, err)
    return constants.EXIT_SUCCESS if good else constants.EXIT_FAILURE


def GlobalWatcher(opts: argparse.Namespace) -> int:
    """The run started by cron: node part, then the master's."""
    from ganeti import daemon_util
    from ganeti.watcher import nodepart
    nodepart.EnsureDaemons()
    nodepart.RunWatcherHooks()
    nodepart.MaintainNodeHealth()
    if not daemon_util.IsMaster():
        logging.debug("Not the master node; done")
        return constants.EXIT_SUCCESS
    return _MasterPart(opts)


def Main(argv: Sequence[str] | None = None) -> int:
    """Run the watcher; return its exit code."""
    opts = ParseOptions(argv)
    SetupLogging(opts)
    if opts.node_group is not None:
        from ganeti.watcher import group
        return group.Main(opts)
    if ShouldPause() and not opts.ignore_pause:
        logging.debug("The watcher is paused (gnt-cluster watcher pause); exiting")
        return constants.EXIT_SUCCESS
    os.makedirs(pathutils.LOCK_DIR, exist_ok=True)
    lock = utils.FileLock.Open(pathutils.WATCHER_LOCK_FILE)
    try:
        lock.Exclusive(blocking=False)
    except errors.LockError:
        lock.Close()
        logging.info("Another ganeti-watcher runs on this node (%s is locked);"
                     " exiting", pathutils.WATCHER_LOCK_FILE)
        return constants.EXIT_SUCCESS
    try:
        start = time.monotonic()
        code = GlobalWatcher(opts)
        logging.debug("Watcher run ended in %.2fs (exit code %s)",
                      time.monotonic() - start, code)
        return code
    except errors.GenericError as err:
        logging.exception("The watcher failed: %s", err)
        print(f"ganeti-watcher: {err}", file=sys.stderr)
        return constants.EXIT_FAILURE
    finally:
        lock.Close()
