"""cluster-merge: merge other clusters into this one (doc/cluster-merge.rst).

Run on the master of the cluster that absorbs the others. The other
clusters are reached through their masters and nodes with the project's
SSH layer (:mod:`ganeti.ssh`, as root, Ganeti's way); in a virtual cluster
the same commands run locally as those nodes, whose roots must then lie
beside this node's (``<base>/<node name>``, as for any ``gnt-node add``).

:class:`ClusterMerger` does, for all clusters named:

1. checks (nothing changes yet): this node is our master; each other
   cluster answers, runs our software version, and every one of its nodes
   can be reached; their configurations are fetched and the merge is
   computed (:mod:`ganeti.tools.cluster_merge_config`), refusing with
   every conflict named. ``--dry-run`` stops here and prints the plan;
2. pauses the watcher on every cluster, stops the other clusters'
   instances (``--skip-stop-instances``: refuses if one is running),
   drains every job queue and waits until no job is left on any cluster;
3. fetches the other configurations again, computes the merge again,
   stops every daemon on their nodes, stops our master daemon, keeps a
   copy of our configuration and writes the merged one, and starts the
   master daemon with ``--no-voting``: from here there is no easy way
   back;
4. re-adds the merged nodes (``gnt-node add --readd``: our certificates,
   keys and ssconf go to them and their node daemon restarts), pushes the
   configuration (``gnt-cluster redist-conf``), restarts the master daemon
   normally, undrains our queue, ends the watcher pause and starts the
   instances again (``--restart``).

When a step fails before the point of no return, the manual steps that
undo what was done so far are printed (the tool keeps no state between
runs); after it, the steps that remain to finish the merge.
"""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ganeti import constants, errors, objects, opcodes, pathutils, ssh, utils
from ganeti.tools import cluster_merge_config as cmc

#: Default length of the watcher pause (seconds)
DEFAULT_WATCHER_PAUSE = 1800
#: Default seconds to wait for the jobs of every cluster to finish
DEFAULT_JOB_TIMEOUT = 600
#: Seconds between two looks at the remote job queues
_JOB_POLL_INTERVAL = 1.0

RESTART_UP = "up"
RESTART_ALL = "all"
RESTART_NONE = "none"
RESTART_CHOICES = (RESTART_UP, RESTART_ALL, RESTART_NONE)

#: Where copies of the configurations are kept (below DATA_DIR)
BACKUP_DIR_NAME = "cluster-merge"

#: A file of a node's data directory, in a remote shell command
_REMOTE_DATA_DIR = '"${GANETI_ROOTDIR:-}"' + constants.DEFAULT_DATA_DIR

FeedbackFn = Callable[[str], None]


class MergeError(errors.GenericError):
    """A step of the merge failed."""


@dataclass
class RemoteCluster:
    """One cluster to merge into ours."""

    #: The name given on the command line (cluster name, or one of its nodes)
    given: str
    master: str = ""
    data: objects.ConfigData | None = None
    #: Instances that were running before we stopped them
    stopped: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        """The cluster's name (the given one until its configuration is known)."""
        return self.data.cluster.cluster_name if self.data is not None else self.given

    def Targets(self) -> list[ssh.NodeTarget]:
        """Every node, the master last."""
        data = self.data
        assert data is not None
        nodes = sorted(data.nodes.values(),
                       key=lambda n: (n.uuid == data.cluster.master_node, n.name))
        return [ssh.NodeTarget(n.name, n.primary_ip, cmc.SshPort(data, n))
                for n in nodes]

    def NodeNames(self) -> list[str]:
        """The names of its nodes."""
        return [target.name for target in self.Targets()] if self.data else []


def _Quote(args: Sequence[str]) -> str:
    return shlex.join(list(args))


class ClusterMerger:
    """Merge ``clusters`` (names) into the cluster this runs on.

    ``runner`` reaches the other clusters' nodes (default: SSH, or locally
    in a virtual cluster); ``client_fn`` gives a luxi client of our master;
    ``backup_dir`` keeps the configurations fetched and ours before the
    merge (default ``DATA_DIR/cluster-merge``).
    """

    def __init__(self, clusters: Sequence[str], groups: str | None = None,
                 watcher_pause: int = DEFAULT_WATCHER_PAUSE,
                 stop_instances: bool = True, restart: str = RESTART_UP,
                 job_timeout: float = DEFAULT_JOB_TIMEOUT,
                 strict_host_key: bool = True,
                 runner: Any = None, client_fn: Callable[[], Any] | None = None,
                 feedback_fn: FeedbackFn = print,
                 backup_dir: str | None = None) -> None:
        if len(set(clusters)) != len(clusters):
            raise errors.OpPrereqError("A cluster is named more than once",
                                       errors.ECODE_INVAL)
        if groups is not None and groups not in cmc.GROUPS_MODES:
            raise errors.OpPrereqError(f"Invalid --groups value '{groups}'",
                                       errors.ECODE_INVAL)
        if restart not in RESTART_CHOICES:
            raise errors.OpPrereqError(f"Invalid --restart value '{restart}'",
                                       errors.ECODE_INVAL)
        self.clusters = [RemoteCluster(name) for name in clusters]
        self.groups = groups
        self.watcher_pause = watcher_pause
        self.stop_instances = stop_instances
        self.restart = restart
        self.job_timeout = job_timeout
        if runner is None:
            runner = ssh.VirtualClusterRunner() if pathutils.IsVirtualCluster() \
                else ssh.SshRunner(None, strict_host_key=strict_host_key)
        self.runner = runner
        self._client_fn = client_fn
        self._client: Any = None
        self.feedback = feedback_fn
        #: Where the fetched configurations and ours before the merge are kept
        self.backup_dir = backup_dir or os.path.join(pathutils.DATA_DIR,
                                                     BACKUP_DIR_NAME)
        #: Manual steps undoing what was done so far (before the point of no
        #: return), or finishing the merge (after it)
        self.rollback: list[str] = []
        self.no_return = False
        self.plans: list[cmc.MergePlan] = []

    # --- Helpers ------------------------------------------------------------------

    def _Client(self) -> Any:
        if self._client is None:
            if self._client_fn is not None:
                self._client = self._client_fn()
            else:
                from ganeti import cli
                self._client = cli.GetClient()
        return self._client

    def _Reconnect(self) -> None:
        if self._client is not None:
            try:
                self._client.Close()
            except Exception:  # noqa: BLE001 - the old connection is gone anyway
                pass
        self._client = None

    def _Run(self, target: ssh.NodeTarget, command: str) -> str:
        """Run ``command`` on a node of another cluster; its output.

        @raise MergeError: naming the node, the command and its output
        """
        logging.debug("Running on %s: %s", target.name, command)
        result = self.runner.Run(target, command)
        if result.failed:
            raise MergeError(f"Command '{command}' failed on {target.name} (exit code"
                             f" {result.exit_code}): {result.output.strip()}")
        return result.output

    def _MasterTarget(self, cluster: RemoteCluster) -> ssh.NodeTarget:
        if cluster.data is not None:
            for target in cluster.Targets():
                if target.name == cluster.master:
                    return target
        return ssh.NodeTarget(cluster.master or cluster.given,
                              cluster.master or cluster.given)

    def _Gnt(self, cluster: RemoteCluster, *args: str) -> str:
        return self._Run(self._MasterTarget(cluster), _Quote(args))

    # --- 1. Checks --------------------------------------------------------------------

    def _CheckOurMaster(self) -> objects.ConfigData:
        from ganeti.config import base as config_base
        me = utils.Hostname.GetSysName()
        data = config_base.LoadConfigData(pathutils.CLUSTER_CONF_FILE)
        master = data.nodes.get(data.cluster.master_node)
        if master is None or master.name.lower() != me.lower():
            raise errors.OpPrereqError(
                f"cluster-merge must run on the master node"
                f" ({master.name if master else '?'}), not on {me}",
                errors.ECODE_ENVIRON)
        return data

    def _Fetch(self, cluster: RemoteCluster, tag: str) -> None:
        """Find the cluster's master and read its configuration."""
        from ganeti.config import base as config_base
        first = ssh.NodeTarget(cluster.given, cluster.given)
        if not cluster.master:
            cluster.master = self._Run(first, "gnt-cluster getmaster").strip()
            if not cluster.master:
                raise MergeError(f"Cluster {cluster.given} named no master node")
        text = self._Run(self._MasterTarget(cluster),
                         f"cat {_REMOTE_DATA_DIR}/{constants.CLUSTER_CONF_FILE_NAME}")
        os.makedirs(self.backup_dir, mode=0o700, exist_ok=True)
        path = os.path.join(self.backup_dir, f"{cluster.given}.{tag}.config.data")
        utils.WriteFile(path, data=text, mode=0o600)
        try:
            cluster.data = config_base.LoadConfigData(path)
        except errors.ConfigVersionMismatch as err:
            raise errors.OpPrereqError(
                f"Cluster {cluster.given} has configuration version {err.args[1]},"
                f" this cluster {err.args[0]}", errors.ECODE_INVAL) from None
        except errors.ConfigurationError as err:
            raise MergeError(f"Cannot read the configuration of {cluster.given}:"
                             f" {err}") from None

    def _CheckVersion(self, cluster: RemoteCluster) -> str | None:
        output = self._Gnt(cluster, "gnt-cluster", "version")
        for line in output.splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "Software version":
                if value.strip() != constants.RELEASE_VERSION:
                    return (f"cluster {cluster.name} runs version {value.strip()},"
                            f" this cluster {constants.RELEASE_VERSION}")
                return None
        return f"cluster {cluster.name} did not tell its software version"

    def _CheckReachable(self, cluster: RemoteCluster) -> list[str]:
        problems = []
        for target in cluster.Targets():
            result = self.runner.Run(target, "true")
            if result.failed:
                problems.append(f"node {target.name} of {cluster.name} cannot be"
                                f" reached: {result.output.strip()}")
        return problems

    def _Compute(self, ours: objects.ConfigData) -> list[str]:
        """Merge every cluster in turn into ``ours``; the problems found."""
        self.plans = []
        problems: list[str] = []
        merged = ours
        for cluster in self.clusters:
            assert cluster.data is not None
            found = cmc.CheckMerge(merged, cluster.data, self.groups)
            if found:
                problems.extend(found)
                continue
            try:
                plan = cmc.MergeConfig(merged, cluster.data, self.groups)
            except errors.GenericError as err:
                problems.append(str(err.args[0]))
                continue
            self.plans.append(plan)
            merged = plan.data
        return problems

    def Check(self) -> list[str]:
        """Step 1: every problem standing in the way (nothing changes)."""
        ours = self._CheckOurMaster()
        names = {n.name.lower() for n in ours.nodes.values()}
        problems = []
        for cluster in self.clusters:
            if cluster.given.lower() in names or \
                    cluster.given.lower() == ours.cluster.cluster_name.lower():
                problems.append(f"{cluster.given} is this cluster or one of its nodes")
        if problems:
            return problems
        for cluster in self.clusters:
            self.feedback(f"Contacting cluster {cluster.given}")
            try:
                self._Fetch(cluster, "initial")
                version = self._CheckVersion(cluster)
            except errors.GenericError as err:
                problems.append(f"cluster {cluster.given}: {err.args[0]}")
                continue
            if version:
                problems.append(version)
            problems += self._CheckReachable(cluster)
        if problems:
            return problems
        return self._Compute(ours)

    def Plan(self) -> list[str]:
        """The plan as text lines (after a successful :meth:`Check`)."""
        lines = []
        for cluster, plan in zip(self.clusters, self.plans):
            lines.append(f"Cluster {plan.cluster_name} (master {cluster.master}):")
            lines.append("  nodes to re-add: "
                         + (", ".join(n.name for n in plan.nodes) or "none"))
            lines.append("  instances: " + (", ".join(plan.instances) or "none"))
            lines += [f"  {note}" for note in plan.notes]
            lines += [f"  WARNING: {warning}" for warning in plan.warnings]
        return lines

    # --- 2. Quiescing -----------------------------------------------------------------

    def _PauseWatchers(self) -> None:
        until = time.time() + self.watcher_pause
        self._Client().SetWatcherPause(until)
        self.rollback.append("End the watcher pause on this cluster: gnt-cluster"
                             " watcher continue")
        for cluster in self.clusters:
            self._Gnt(cluster, "gnt-cluster", "watcher", "pause", str(self.watcher_pause))
            self.rollback.append(f"End the watcher pause on {cluster.name}: gnt-cluster"
                                 " watcher continue (on its master)")

    def _DrainQueues(self) -> None:
        self._Client().SetDrainFlag(True)
        self.rollback.append("Undrain the job queue of this cluster: gnt-cluster queue"
                             " undrain")
        for cluster in self.clusters:
            self._Gnt(cluster, "gnt-cluster", "queue", "drain")
            self.rollback.append(f"Undrain the job queue of {cluster.name}: gnt-cluster"
                                 " queue undrain (on its master)")

    def _StopInstances(self) -> None:
        for cluster in self.clusters:
            assert cluster.data is not None
            running = sorted(i.name for i in cluster.data.instances.values()
                             if i.admin_state == constants.ADMINST_UP)
            if not running:
                continue
            if not self.stop_instances:
                raise MergeError(f"Instances of {cluster.name} are running (and"
                                 f" --skip-stop-instances was given): "
                                 + ", ".join(running))
            self.feedback(f"Stopping {len(running)} instance(s) of {cluster.name}")
            command = " && ".join(_Quote(["gnt-instance", "shutdown", name])
                                  for name in running)
            cluster.stopped = running
            self.rollback.append(f"Start the instances of {cluster.name} again:"
                                 f" gnt-instance startup NAME, for {', '.join(running)}")
            self._Run(self._MasterTarget(cluster), command)

    def _PendingJobs(self) -> list[str]:
        pending = []
        for job_id, status in self._Client().QueryJobs(None, ["id", "status"]):
            if status in constants.JOBS_PENDING:
                pending.append(f"job {job_id} ({status}) of this cluster")
        for cluster in self.clusters:
            output = self._Gnt(cluster, "gnt-job", "list", "--no-headers",
                               "-o", "id,status")
            for line in output.splitlines():
                parts = line.split()
                if len(parts) == 2 and parts[1] in constants.JOBS_PENDING:
                    pending.append(f"job {parts[0]} ({parts[1]}) of {cluster.name}")
        return pending

    def _WaitForJobs(self) -> None:
        deadline = time.monotonic() + self.job_timeout
        while True:
            pending = self._PendingJobs()
            if not pending:
                return
            if time.monotonic() > deadline:
                raise MergeError("Jobs did not finish within"
                                 f" {self.job_timeout:.0f} seconds: " + ", ".join(pending))
            logging.info("Waiting for %s", ", ".join(pending))
            # Nothing to wait on across SSH: look again shortly
            time.sleep(_JOB_POLL_INTERVAL)

    # --- 3. Replacing the configuration -----------------------------------------------

    def _StopRemoteDaemons(self) -> None:
        from ganeti.bootstrap import node_setup
        command = _Quote([sys.executable, node_setup.DefaultDaemonUtil(), "stop-all"])
        for cluster in self.clusters:
            self.feedback(f"Stopping the daemons on the nodes of {cluster.name}")
            self.rollback.append(
                f"Start the daemons of {cluster.name} again: daemon-util start-all on"
                f" {', '.join(cluster.NodeNames())} (its master last)")
            for target in cluster.Targets():
                self._Run(target, command)

    def _WriteMergedConfig(self) -> None:
        from ganeti import daemon_util
        from ganeti.config import base as config_base
        self.feedback("Stopping the master daemon")
        for message in daemon_util.StopMaster():
            logging.info("%s", message)
        self._Reconnect()
        self.rollback.append("Start the master daemon: daemon-util start-master")
        ours = config_base.LoadConfigData(pathutils.CLUSTER_CONF_FILE)
        problems = self._Compute(ours)
        if problems:
            raise MergeError("The merge is no longer possible:\n  "
                             + "\n  ".join(problems))
        backup = os.path.join(self.backup_dir, "config.data.pre-merge")
        utils.WriteFile(backup, data=utils.ReadFile(pathutils.CLUSTER_CONF_FILE),
                        mode=0o600)
        # Printed in reverse: restored before the master daemon starts
        self.rollback.append(f"Restore the configuration: cp {backup}"
                             f" {pathutils.CLUSTER_CONF_FILE}")
        merged = self.plans[-1].data
        merged.BumpSerial()
        self.feedback("Writing the merged configuration")
        config_base.WriteConfigData(merged, pathutils.CLUSTER_CONF_FILE)
        for message in daemon_util.StartMaster(no_voting=True):
            logging.info("%s", message)
        self._Reconnect()

    # --- 4. Re-adding -----------------------------------------------------------------

    def _Job(self, ops: list[Any]) -> list[Any]:
        from ganeti import cli
        client = self._Client()
        job_id = client.SubmitJobToDrainedQueue([op.ToDict() for op in ops])
        return cli.PollJob(job_id, cl=client,
                           feedback_fn=lambda msg: logging.info("job %s: %s", job_id, msg))

    def _ReaddNodes(self) -> None:
        from ganeti.bootstrap import node_setup
        for plan in self.plans:
            for node in plan.nodes:
                self.feedback(f"Re-adding node {node.name}")
                ports = node_setup.NodePorts(noded=node.noded_port,
                                             confd=node.confd_port, ssh=node.ssh_port)
                ssh_options = node_setup.SshOptions(
                    strict_host_key=getattr(self.runner, "strict_host_key", True))
                node_setup.SetupNode(node.name, node.primary_ip, ports=ports,
                                     ssh_options=ssh_options)
                self._Job([opcodes.OpNodeAdd(
                    node_name=node.name, primary_ip=node.primary_ip,
                    secondary_ip=node.secondary_ip, readd=True,
                    noded_port=node.noded_port, confd_port=node.confd_port)])
                self.rollback = [step for step in self.rollback
                                 if not step.endswith(f" {node.name}")]

    def _Finish(self) -> None:
        from ganeti import daemon_util
        self._Job([opcodes.OpClusterRedistConf()])
        self.feedback("Restarting the master daemon normally")
        for message in daemon_util.StopMaster():
            logging.info("%s", message)
        self._Reconnect()
        for message in daemon_util.StartMaster():
            logging.info("%s", message)
        self._Reconnect()
        client = self._Client()
        client.SetDrainFlag(False)
        client.SetWatcherPause(None)
        self.rollback = [s for s in self.rollback if "watcher" not in s
                         and "undrain" not in s.lower()]
        names: list[str] = []
        if self.restart == RESTART_ALL:
            names = [name for plan in self.plans for name in plan.instances]
        elif self.restart == RESTART_UP:
            names = [name for cluster in self.clusters for name in cluster.stopped]
        for name in names:
            self.feedback(f"Starting instance {name}")
            self._Job([opcodes.OpInstanceStartup(instance_name=name)])
            self.rollback = [s for s in self.rollback if not s.endswith(f" {name}")]

    # --- The whole -------------------------------------------------------------------

    def _PointOfNoReturn(self) -> None:
        self.no_return = True
        self.rollback = []
        for plan in self.plans:
            for node in plan.nodes:
                self.rollback.append(f"Re-add the node: gnt-node add --readd {node.name}")
        self.rollback.append("Push the configuration: gnt-cluster redist-conf")
        self.rollback.append("Restart the master daemon normally: daemon-util"
                             " stop-master; daemon-util start-master")
        self.rollback.append("Undrain the job queue: gnt-cluster queue undrain")
        self.rollback.append("End the watcher pause: gnt-cluster watcher continue")
        for cluster in self.clusters:
            for name in cluster.stopped:
                self.rollback.append(f"Start the instance: gnt-instance startup {name}")

    def Merge(self) -> None:
        """Steps 2 to 4 (after a successful :meth:`Check`).

        @raise errors.GenericError: a step failed; :attr:`rollback` then
            lists the manual steps
        """
        self.feedback("Pausing the watchers")
        self._PauseWatchers()
        # Stopping instances takes jobs: before the queues are drained
        self._StopInstances()
        self.feedback("Draining the job queues")
        self._DrainQueues()
        self.feedback("Waiting for the jobs of every cluster to finish")
        self._WaitForJobs()
        for cluster in self.clusters:
            self._Fetch(cluster, "final")
        self._StopRemoteDaemons()
        self._WriteMergedConfig()
        self._PointOfNoReturn()
        self.feedback("The merged configuration is in place: from here there is no"
                      " easy way back")
        self._ReaddNodes()
        self._Finish()
        self.rollback = []


# --- Command line ---------------------------------------------------------------------

def BuildParser() -> argparse.ArgumentParser:
    """The command line of cluster-merge."""
    parser = argparse.ArgumentParser(
        prog="cluster-merge",
        description="Merge one or more clusters into the cluster this runs on (run it"
                    " on that cluster's master). The other clusters' nodes and"
                    " instances, node groups, networks and tags join this cluster; their"
                    " nodes are re-added (they get this cluster's keys, certificates"
                    " and ssconf) and their old masters become plain nodes. Other"
                    " clusters are reached through SSH as root (in a virtual cluster,"
                    " locally as their nodes, whose roots must lie beside this"
                    " node's). If a step fails, the manual rollback steps are printed."
                    " See doc/cluster-merge.rst.")
    parser.add_argument("clusters", nargs="+", metavar="CLUSTER",
                        help="a cluster to merge: its name (resolving to its master)"
                             " or the name of one of its nodes")
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--debug", action="store_true",
                        help="print debugging output (every command run)")
    output.add_argument("-v", "--verbose", action="store_true",
                        help="print more about each step")
    parser.add_argument("--watcher-pause-period", type=int, default=DEFAULT_WATCHER_PAUSE,
                        metavar="SECONDS",
                        help="how long the watchers are paused at most, in seconds"
                             f" (default {DEFAULT_WATCHER_PAUSE}); the pause ends when"
                             " the merge does")
    parser.add_argument("--groups", choices=cmc.GROUPS_MODES, default=None,
                        help="what to do with node groups of the same name in several"
                             " clusters: 'merge' puts their nodes into one group (ours,"
                             " keeping our group's parameters), 'rename' gives the other"
                             " cluster's group the name <group>-<cluster>; without this"
                             " option same-named groups are refused")
    parser.add_argument("--skip-stop-instances", dest="stop_instances",
                        action="store_false", default=True,
                        help="do not stop the other clusters' instances; refuse the"
                             " merge if one of them is running")
    parser.add_argument("--restart", choices=RESTART_CHOICES, default=RESTART_UP,
                        help="which merged instances to start after the merge: 'up'"
                             " those that were stopped for it (default), 'all' every"
                             " one, 'none' none")
    parser.add_argument("--job-timeout", type=float, default=DEFAULT_JOB_TIMEOUT,
                        metavar="SECONDS",
                        help="how long to wait for the running jobs of every cluster"
                             f" to finish (default {DEFAULT_JOB_TIMEOUT})")
    parser.add_argument("--no-ssh-key-check", dest="strict_host_key",
                        action="store_false", default=True,
                        help="accept (and record) unknown SSH host keys of the other"
                             " clusters' nodes; a changed key is still refused")
    parser.add_argument("-n", "--dry-run", action="store_true",
                        help="only check the clusters and print the plan; change"
                             " nothing")
    return parser


def _Print(text: str) -> None:
    print(text, flush=True)


def Main(argv: list[str] | None = None) -> int:
    """Run cluster-merge; return its exit code."""
    opts = BuildParser().parse_args(argv)
    level = logging.DEBUG if opts.debug else logging.INFO if opts.verbose \
        else logging.WARNING
    logging.basicConfig(stream=sys.stderr, format="cluster-merge: %(message)s",
                        level=level)
    if opts.watcher_pause_period <= 0:
        print("cluster-merge: --watcher-pause-period must be a positive number of"
              " seconds", file=sys.stderr)
        return constants.EXIT_FAILURE
    try:
        merger = ClusterMerger(opts.clusters, groups=opts.groups,
                               watcher_pause=opts.watcher_pause_period,
                               stop_instances=opts.stop_instances, restart=opts.restart,
                               job_timeout=opts.job_timeout,
                               strict_host_key=opts.strict_host_key, feedback_fn=_Print)
        problems = merger.Check()
    except errors.GenericError as err:
        print(f"cluster-merge: {err.args[0] if err.args else err}", file=sys.stderr)
        return constants.EXIT_FAILURE
    if problems:
        print("cluster-merge: cannot merge:", file=sys.stderr)
        for problem in problems:
            print(f"  {problem}", file=sys.stderr)
        print("Nothing was changed.", file=sys.stderr)
        return constants.EXIT_FAILURE
    for line in merger.Plan():
        _Print(line)
    if opts.dry_run:
        _Print("Dry run: nothing was changed.")
        return constants.EXIT_SUCCESS
    try:
        merger.Merge()
    except (errors.GenericError, OSError) as err:
        print(f"cluster-merge: {err.args[0] if err.args else err}", file=sys.stderr)
        if not merger.rollback:
            print("Nothing to roll back.", file=sys.stderr)
        elif merger.no_return:
            print("The merged configuration is in place; there is no easy way back."
                  " To finish the merge by hand:", file=sys.stderr)
        else:
            print("To roll back, do by hand, in this order:", file=sys.stderr)
        for step in reversed(merger.rollback) if not merger.no_return \
                else merger.rollback:
            print(f"  * {step}", file=sys.stderr)
        return constants.EXIT_FAILURE
    _Print("Merge done; check the result with gnt-cluster verify.")
    return constants.EXIT_SUCCESS
