"""ganeti-masterd: the master daemon.

Owns the configuration, the lock manager and the job queue, and answers
luxi on the master socket and on the query socket (the name Ganeti 3.0's
client library connects to). The luxi server runs in the asyncio loop of
the main thread; jobs run in the job queue's worker threads.

Start-up: refuse to run without a configuration (exit code
``EXIT_NOTCLUSTER``) or on a node other than the configured master
(``EXIT_NOTMASTER``), detach unless ``-f``, hold the pid file, start the
configuration distributor (which first pushes config.data and ssconf to
every online node, in the background), load the queue (jobs that were
running end as their LU judges from the configuration, by default as
errors; queued jobs run again), start the removal of instances whose
creation did not finish (:mod:`ganeti.instance_cleanup`), then listen.
SIGTERM or SIGINT: stop accepting, wait for running jobs up to
``--shutdown-timeout`` seconds, remove the sockets and the pid file, exit 0.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ganeti import config, constants, errors, pathutils, utils
from ganeti import daemon as daemon_util
from ganeti import locking
from ganeti.luxi import handlers as luxi_handlers
from ganeti.luxi import server as luxi_server

PROG = constants.MASTERD


@dataclass
class MasterContext:
    """What the parts of the master daemon share.

    ``cfg``, ``glm`` and ``queue_dir`` are what the job queue needs;
    ``jobqueue`` is set once the queue exists (the query module reads jobs
    and locks through this object).
    """

    cfg: Any
    glm: locking.GanetiLockManager
    queue_dir: str
    archive_dir: str
    jobqueue: Any = None
    extra: dict[str, Any] = field(default_factory=dict)
    #: the RpcRunner the LUs use (``lu.rpc``), resolving nodes by UUID
    rpc: Any = None
    #: the configuration distributor (config_sync.ConfigSync); the opcode
    #: processor flushes it at the end of every opcode that saved
    config_sync: Any = None
    #: the removal of instances whose creation did not finish
    #: (instance_cleanup.CreationCleanup); a failed creation wakes it
    instance_cleanup: Any = None

    @property
    def queue(self) -> Any:
        """The job queue (another name for ``jobqueue``)."""
        return self.jobqueue


def BuildParser() -> argparse.ArgumentParser:
    """The command line of ganeti-masterd."""
    parser = argparse.ArgumentParser(prog=PROG, description="Ganeti master daemon")
    parser.add_argument("-f", "--foreground", action="store_true",
                        help="Don't detach from the terminal")
    parser.add_argument("-d", "--debug", action="store_true",
                        help="Log debug messages")
    parser.add_argument("--syslog", action="store_true",
                        help="Log to syslog instead of the log file")
    parser.add_argument("--no-voting", dest="no_voting", action="store_true",
                        help="Start without asking the other nodes whether"
                             " this is the master (accepted for"
                             " compatibility; no vote is held)")
    parser.add_argument("--yes-do-it", dest="yes_do_it", action="store_true",
                        help="Confirm --no-voting")
    parser.add_argument("--log-file", default=None,
                        help="Log file (default: the master daemon's log)")
    parser.add_argument("--no-user-checks", action="store_true",
                        help="Do not drop privileges even when run as root")
    parser.add_argument("--shutdown-timeout", type=float,
                        default=constants.MASTERD_SHUTDOWN_TIMEOUT,
                        help="Seconds to wait for running jobs when stopping")
    return parser


def _Fail(message: str, code: int) -> int:
    logging.error("%s", message)
    print(f"{PROG}: {message}", file=sys.stderr)
    return code


def _MakeDirs() -> None:
    for path, mode in ((pathutils.RUN_DIR, 0o755), (pathutils.SOCKET_DIR, 0o750),
                       (pathutils.LOG_DIR, 0o755), (pathutils.DATA_DIR, 0o755),
                       (pathutils.QUEUE_DIR, 0o700),
                       (pathutils.JOB_QUEUE_ARCHIVE_DIR, 0o700)):
        os.makedirs(path, mode=mode, exist_ok=True)


def MasterdNeeds() -> list[tuple[str, int]]:
    """What the master daemon must be able to use once unprivileged."""
    rwx = os.R_OK | os.W_OK | os.X_OK
    return [(pathutils.DATA_DIR, rwx),
            (pathutils.CLUSTER_CONF_FILE, os.R_OK | os.W_OK),
            (pathutils.QUEUE_DIR, rwx), (pathutils.JOB_QUEUE_ARCHIVE_DIR, rwx),
            (pathutils.SOCKET_DIR, rwx), (pathutils.RUN_DIR, os.W_OK | os.X_OK),
            (pathutils.NODED_CERT_FILE, os.R_OK),
            (pathutils.NODED_CLIENT_CERT_FILE, os.R_OK),
            (pathutils.SSCONF_LOCK_FILE, os.R_OK)]


def LoadConfig() -> tuple[Any, str | None, int]:
    """Load the configuration and check that this node is its master.

    @return: (ConfigWriter or None, error message, exit code)
    """
    cfg_file = pathutils.CLUSTER_CONF_FILE
    if not os.path.exists(cfg_file):
        return None, (f"Cluster configuration {cfg_file} not found: this node is"
                      " not part of a cluster"), constants.EXIT_NOTCLUSTER
    try:
        cfg = config.ConfigWriter(cfg_file, accept_foreign=True)
    except errors.ConfigurationError as err:
        return None, f"Cannot load the cluster configuration: {err}", \
            constants.EXIT_FAILURE
    my_name = utils.Hostname.GetSysName()
    master = cfg.GetMasterNodeName()
    if master.lower() != my_name.lower():
        return None, (f"This node ({my_name}) is not the master node; the"
                      f" configuration names {master}"), constants.EXIT_NOTMASTER
    return cfg, None, constants.EXIT_SUCCESS


def BuildLockManager(cfg: Any) -> locking.GanetiLockManager:
    """The lock manager over the configuration's objects.

    Node, node group and network locks are named by UUID, instance locks
    by instance name, as Ganeti's master does.
    """
    instances = [inst.name for inst in cfg.GetAllInstancesInfo().values()]
    return locking.GanetiLockManager(cfg.GetNodeList(), cfg.GetNodeGroupList(),
                                     instances, cfg.GetNetworkList())


def _SocketGroup() -> int:
    """The group of the luxi sockets: ``gnt-admin`` under privilege
    separation (its members may run the gnt-* tools), else unchanged."""
    from ganeti import runtime
    if runtime.Mode() != runtime.MODE_SEPARATE:
        return -1
    return runtime.GetEnts().admin_gid


def _MakeJobQueue(context: MasterContext) -> Any:
    from ganeti import jqueue
    return jqueue.JobQueue(context)


class MasterDaemon:
    """The running daemon: context, job queue, luxi server, signals."""

    def __init__(self, cfg: Any, shutdown_timeout: float,
                 make_queue: Callable[[MasterContext], Any] = _MakeJobQueue) -> None:
        self.shutdown_timeout = shutdown_timeout
        self.context = MasterContext(cfg=cfg, glm=BuildLockManager(cfg),
                                     queue_dir=pathutils.QUEUE_DIR,
                                     archive_dir=pathutils.JOB_QUEUE_ARCHIVE_DIR)
        # Node RPC for the LUs, and config distribution after every save
        # (lib/config_sync.py; its thread runs while the daemon serves)
        from ganeti import config_sync
        from ganeti.rpc import node as rpc_node
        self.context.rpc = rpc_node.RpcRunner.FromConfig(cfg)
        self.config_sync = config_sync.Attach(cfg, self.context.rpc)
        self.context.config_sync = self.config_sync
        from ganeti import instance_cleanup
        self.instance_cleanup = instance_cleanup.CreationCleanup(self.context)
        self.context.instance_cleanup = self.instance_cleanup
        self.queue = make_queue(self.context)
        self.context.jobqueue = self.queue
        self.handlers = luxi_handlers.MasterHandlers(self.queue, cfg, self.context)
        self.server = luxi_server.LuxiServer(self.handlers.Methods())
        self._stop: asyncio.Event | None = None
        self.signal_received: int | None = None

    def _OnSignal(self, signum: int) -> None:
        logging.info("Received signal %s, shutting down", signal.Signals(signum).name)
        self.signal_received = signum
        if self._stop is not None:
            self._stop.set()

    async def Run(self, notify_ready: Callable[[], None] | None = None) -> None:
        """Serve until SIGTERM or SIGINT."""
        loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self._OnSignal, signum)
        # Pushes everything once: what a crashed master saved may not have
        # reached the nodes
        self.config_sync.Start()
        try:
            await loop.run_in_executor(None, self.queue.Start)
            self.instance_cleanup.Start()
            try:
                await self.server.Start([pathutils.MASTER_SOCKET, pathutils.QUERY_SOCKET],
                                        gid=_SocketGroup())
            except OSError as err:
                raise errors.GenericError(f"Cannot listen on the luxi sockets: {err}") \
                    from err
            logging.info("%s %s serving (pid %s)", PROG, constants.RELEASE_VERSION,
                         os.getpid())
            if notify_ready is not None:
                notify_ready()
            await self._stop.wait()
        finally:
            self.server.StopAccepting()
            await loop.run_in_executor(None, self.instance_cleanup.Stop,
                                       self.shutdown_timeout)
            logging.info("Waiting up to %.0f seconds for running jobs",
                         self.shutdown_timeout)
            try:
                await loop.run_in_executor(None, self.queue.Shutdown,
                                           self.shutdown_timeout)
            except Exception:
                logging.exception("Error while shutting down the job queue")
            # Push what the last jobs saved, then stop the distributor
            await loop.run_in_executor(None, self.config_sync.Stop,
                                       self.shutdown_timeout)
            await self.server.Stop()
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(signum)


def Main(argv: list[str] | None = None) -> int:
    """Run the master daemon; return its exit code."""
    options = BuildParser().parse_args(argv)
    if options.no_voting and not options.yes_do_it:
        print(f"{PROG}: --no-voting needs --yes-do-it (no vote is held either"
              " way)", file=sys.stderr)
    try:
        _MakeDirs()
    except OSError as err:
        print(f"{PROG}: cannot create directories: {err}", file=sys.stderr)
        return constants.EXIT_FAILURE
    daemon_util.SetupLogging(PROG, options.log_file or pathutils.GetLogFilename(PROG),
                             debug=options.debug, stderr_logging=options.foreground,
                             syslog=options.syslog)

    cfg, message, code = LoadConfig()
    if cfg is None:
        return _Fail(message or "Cannot start", code)
    if not options.no_user_checks:
        try:
            daemon_util.SwitchUser(PROG, MasterdNeeds())
        except errors.GenericError as err:
            return _Fail(str(err), constants.EXIT_FAILURE)

    notify_ready = None
    if not options.foreground:
        notify_ready = daemon_util.Daemonize()

    pidfile = pathutils.GetDaemonPidFile(PROG)
    try:
        pid_fd = utils.WritePidFile(pidfile)
    except (errors.PidFileLockError, OSError) as err:
        return _Fail(f"Cannot write the pid file: {err}", constants.EXIT_FAILURE)
    try:
        try:
            master = MasterDaemon(cfg, options.shutdown_timeout)
        except (errors.GenericError, OSError) as err:
            return _Fail(f"Cannot start the job queue: {err}", constants.EXIT_FAILURE)
        try:
            asyncio.run(master.Run(notify_ready))
        except errors.GenericError as err:
            return _Fail(str(err), constants.EXIT_FAILURE)
        logging.info("%s stopped", PROG)
    finally:
        utils.RemovePidFile(pidfile)
        os.close(pid_fd)
    return constants.EXIT_SUCCESS
