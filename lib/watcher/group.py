"""The master's work for one node group (``ganeti-watcher --node-group UUID``).

Run as a child of the master's watcher, one per group, each under its
group's lock file (``ganeti-watcher.GROUP-UUID.lock``): a second child for
the same group exits at once, and a group whose nodes hang holds up only
its own child. Steps:

1. Read the group's state file (:class:`ganeti.watcher.state.WatcherState`).
2. Query the group's nodes (with boot IDs) and instances (with their live
   status), first by configuration only and then by name, so that only the
   group's own nodes are asked over RPC.
3. Write the group's instance status file (``name status`` per line).
4. Instances marked up but not running (``ERROR_down``): submit a start
   job, unless the one submitted before is still pending, at most
   :data:`~ganeti.watcher.state.MAXTRIES` times; the give-up is logged once
   (as an error); an instance seen running again has its counter reset.
   Instances shut down from inside whose hypervisor process stayed
   (``USER_down`` while marked up: KVM's ``user_shutdown``) are not
   started: a shutdown job (``admin_state_source=user``) stops the
   process and marks them down by their user, as Ganeti's watcher does.
5. Nodes whose boot ID changed since the last run: re-activate the disks
   of the instances with disks on them (not started in step 4, disks
   marked active).
6. Unless ``--no-verify-disks``: run ``OpGroupVerifyDisks``, wait for it,
   and activate the disks of the instances it reports.
7. Save the state file (atomically).

Jobs are submitted, not waited for (except verify-disks): they may run
long after the watcher ends, as in Ganeti.
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from collections.abc import Iterable
from typing import Any

from ganeti import constants, errors, opcodes, pathutils, utils
from ganeti.watcher import state as wstate

#: Instance states whose node cannot help: nothing to start or activate
HELPLESS_STATES = frozenset([constants.INSTST_NODEDOWN, constants.INSTST_NODEOFFLINE])
#: Seconds the child waits for its verify-disks job
VERIFY_DISKS_TIMEOUT = 600.0

_NODE_FIELDS = ["name", "bootid", "offline"]
_INSTANCE_FIELDS = ["name", "status", "admin_state", "disks_active", "pnode",
                    "snodes", "disk_template"]


def GroupLockFile(group_uuid: str) -> str:
    """The lock file of the group's watcher child."""
    return os.path.join(pathutils.LOCK_DIR, f"ganeti-watcher.{group_uuid}.lock")


def _Rows(result: dict[str, Any], fields: list[str]) -> list[dict[str, Any]]:
    """Query rows as dicts; a field without a value (node down...) is None."""
    rows = []
    for row in result["data"]:
        rows.append({name: (value if status == constants.RS_NORMAL else None)
                     for name, (status, value) in zip(fields, row)})
    return rows


def _NameFilter(names: Iterable[str]) -> list[Any]:
    return ["|"] + [["=", "name", name] for name in names]


def GetGroupData(client: Any, group_uuid: str
                 ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The group's nodes and instances (primary node in the group), with
    their live data asked only of the group's nodes."""
    node_names = [row["name"] for row in _Rows(
        client.Query(constants.QR_NODE, ["name"], ["=", "group.uuid", group_uuid]),
        ["name"])]
    nodes = _Rows(client.Query(constants.QR_NODE, _NODE_FIELDS,
                               _NameFilter(node_names)), _NODE_FIELDS) \
        if node_names else []
    inst_names = [row["name"] for row in _Rows(
        client.Query(constants.QR_INSTANCE, ["name"],
                     ["=", "pnode.group.uuid", group_uuid]), ["name"])]
    instances = _Rows(client.Query(constants.QR_INSTANCE, _INSTANCE_FIELDS,
                                   _NameFilter(inst_names)), _INSTANCE_FIELDS) \
        if inst_names else []
    return nodes, instances


def WriteInstanceStatus(path: str, instances: list[dict[str, Any]]) -> None:
    """Write ``name status`` lines, atomically."""
    data = "".join(f"{inst['name']} {inst['status']}\n" for inst in instances
                   if inst["status"] is not None)
    utils.WriteFile(path, data=data, mode=0o644)


def _Reason(text: str) -> list[list[Any]]:
    return [[constants.OPCODE_REASON_SRC_WATCHER, text, time.time_ns()]]


def PendingJobs(client: Any, job_ids: Iterable[Any]) -> set[Any]:
    """Which of ``job_ids`` are neither finished nor unknown (archived jobs
    and unknown ones count as finished)."""
    ids = sorted({job_id for job_id in job_ids if job_id is not None}, key=str)
    if not ids:
        return set()
    try:
        answers = client.QueryJobs(ids, ["id", "status"])
    except errors.GenericError as err:
        # Better no restart this time than a duplicate job
        logging.warning("Cannot query the previous restart jobs: %s", err)
        return set(ids)
    return {job_id for job_id, answer in zip(ids, answers)
            if answer is not None and answer[1] not in constants.JOBS_FINALIZED}


def CheckInstances(client: Any, notepad: wstate.WatcherState,
                   instances: list[dict[str, Any]],
                   maxtries: int = wstate.MAXTRIES) -> set[str]:
    """Start the instances marked up but not running; return the names of
    those a start job was submitted for."""
    started: set[str] = set()
    down = [inst for inst in instances if inst["status"] == constants.INSTST_ERRORDOWN]
    pending = PendingJobs(client, (notepad.RestartJob(inst["name"]) for inst in down))
    for inst in instances:
        name, status = inst["name"], inst["status"]
        if status == constants.INSTST_ERRORDOWN:
            job_id = notepad.RestartJob(name)
            if job_id is not None and job_id in pending:
                logging.info("Instance '%s': its start job %s is still pending",
                             name, job_id)
                continue
            attempts = notepad.NumberOfRestartAttempts(name)
            if attempts > maxtries:
                logging.debug("Not restarting instance '%s': gave up after %s"
                              " attempts", name, maxtries)
                continue
            if attempts == maxtries:
                logging.error("Could not restart instance '%s' after %s attempts,"
                              " giving up", name, maxtries)
                notepad.RecordRestartAttempt(name)
                continue
            logging.info("Restarting instance '%s' (attempt #%s)", name, attempts + 1)
            op = opcodes.OpInstanceStartup(instance_name=name, force=False,
                                           reason=_Reason("watcher restart"))
            try:
                job_id = client.SubmitJob([op])
            except errors.GenericError as err:
                logging.error("Cannot submit the start of instance '%s': %s", name, err)
                continue
            notepad.RecordRestartAttempt(name, job_id)
            started.add(name)
        elif notepad.NumberOfRestartAttempts(name):
            if status == constants.INSTST_RUNNING:
                logging.info("Restart of instance '%s' succeeded", name)
            else:
                logging.info("Instance '%s' is %s; its restart counter is reset",
                             name, status)
            notepad.RemoveInstance(name)
    return started


def CleanupUserDown(client: Any, instances: list[dict[str, Any]]) -> list[str]:
    """Submit a shutdown (by the user) of each instance a guest shut down
    while marked up; return their names."""
    names = []
    for inst in instances:
        if inst["status"] != constants.INSTST_USERDOWN or \
                inst.get("admin_state") != constants.ADMINST_UP:
            continue
        name = inst["name"]
        logging.info("Instance '%s' was shut down by its user; cleaning it up", name)
        op = opcodes.OpInstanceShutdown(instance_name=name,
                                        admin_state_source=constants.USER_SOURCE,
                                        reason=_Reason("watcher cleanup of a user"
                                                       " shutdown"))
        try:
            client.SubmitJob([op])
        except errors.GenericError as err:
            logging.error("Cannot submit the cleanup of instance '%s': %s", name, err)
            continue
        names.append(name)
    return names


def _ActivateDisks(client: Any, names: Iterable[str], why: str) -> list[Any]:
    """Submit one disk activation job per instance; return the job IDs."""
    jobs = [[opcodes.OpInstanceActivateDisks(instance_name=name, reason=_Reason(why))]
            for name in names]
    if not jobs:
        return []
    ids = []
    for name, (ok, job_id) in zip(names, client.SubmitManyJobs(jobs)):
        if ok:
            ids.append(job_id)
        else:
            logging.error("Cannot submit the disk activation of '%s': %s", name, job_id)
    return ids


def CheckRebootedNodes(client: Any, notepad: wstate.WatcherState,
                       nodes: list[dict[str, Any]], instances: list[dict[str, Any]],
                       started: set[str]) -> list[str]:
    """Re-activate the disks of instances on nodes whose boot ID changed;
    return the instances concerned. A node first seen (no boot ID
    recorded) counts as rebooted, as in Ganeti."""
    rebooted = set()
    for node in nodes:
        if not node["bootid"]:
            if not node["offline"]:
                logging.debug("Node %s did not return a boot ID", node["name"])
            continue
        if notepad.GetNodeBootID(node["name"]) != node["bootid"]:
            rebooted.add(node["name"])
    if not rebooted:
        return []
    logging.info("Node(s) rebooted since the last run: %s",
                 ", ".join(utils.NiceSort(rebooted)))
    names = []
    for inst in instances:
        if inst["name"] in started or inst["status"] in HELPLESS_STATES or \
                not inst["disks_active"] or inst["disk_template"] == constants.DT_DISKLESS:
            continue
        if rebooted & ({inst["pnode"]} | set(inst["snodes"] or [])):
            names.append(inst["name"])
    for name in names:
        logging.info("Activating the disks of instance '%s' (node rebooted)", name)
    _ActivateDisks(client, names, "watcher: node rebooted")
    for node in nodes:
        if node["name"] in rebooted:
            notepad.SetNodeBootID(node["name"], node["bootid"])
    return names


def _WaitJob(client: Any, job_id: Any, timeout: float) -> list[Any]:
    """Wait for a job; return its opcode results.

    @raise errors.OpExecError: if it fails or does not end in time
    """
    deadline = time.monotonic() + timeout
    prev: Any = None
    while True:
        status, opstatus, opresult = client.QueryJobs(
            [job_id], ["status", "opstatus", "opresult"])[0]
        if status in constants.JOBS_FINALIZED:
            if status != constants.JOB_STATUS_SUCCESS:
                raise errors.OpExecError(f"job {job_id} ended with status {status}:"
                                         f" {opresult}")
            return opresult
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise errors.OpExecError(f"job {job_id} did not end within {timeout:.0f}s")
        answer = client.WaitForJobChangeOnce(job_id, ["status"], prev, None,
                                             timeout=min(remaining, 30.0))
        if answer != constants.JOB_NOTCHANGED:
            prev = answer[0]


def VerifyDisks(client: Any, group_uuid: str, instances: list[dict[str, Any]],
                started: set[str], strict: bool) -> list[str]:
    """Run verify-disks for the group and activate the disks it reports
    inactive; return the instances whose disks are activated."""
    op = opcodes.OpGroupVerifyDisks(group_name=group_uuid, is_strict=strict,
                                    reason=_Reason("watcher verify-disks"))
    job_id = client.SubmitJob([op])
    (node_errors, offline, missing), = _WaitJob(client, job_id, VERIFY_DISKS_TIMEOUT)
    for node, msg in sorted(node_errors.items()):
        logging.warning("verify-disks: cannot check node %s: %s", node, msg)
    for name, disks in sorted(missing.items()):
        logging.warning("verify-disks: instance %s misses disks %s", name,
                        ", ".join(f"{node}:{disk}" for node, disk in disks))
    by_name = {inst["name"]: inst for inst in instances}
    names = [name for name in offline
             if name in by_name and name not in started and
             by_name[name]["status"] not in HELPLESS_STATES]
    if not offline:
        logging.debug("verify-disks reported no offline disks, nothing to do")
    for name in names:
        logging.info("Activating the disks of instance '%s' (verify-disks)", name)
    _ActivateDisks(client, names, "watcher: verify-disks")
    return names


def GroupWatcher(opts: argparse.Namespace, client: Any) -> int:
    """Do the group's work with a connected luxi client."""
    group_uuid = opts.node_group
    state_path = pathutils.WATCHER_GROUP_STATE_FILE % group_uuid
    notepad = wstate.WatcherState.Load(state_path)
    nodes, instances = GetGroupData(client, group_uuid)
    gone = notepad.Prune({inst["name"] for inst in instances},
                         {node["name"] for node in nodes})
    if gone:
        logging.info("Group %s: forgetting %s (no longer in the group)", group_uuid,
                     ", ".join(gone))
    WriteInstanceStatus(pathutils.WATCHER_GROUP_INSTANCE_STATUS_FILE % group_uuid,
                        instances)
    started = CheckInstances(client, notepad, instances)
    CleanupUserDown(client, instances)
    CheckRebootedNodes(client, notepad, nodes, instances, started)
    # The state is saved before verify-disks, which may wait on slow nodes
    notepad.Save(state_path)
    if not opts.no_verify_disks:
        try:
            VerifyDisks(client, group_uuid, instances, started, not opts.no_strict)
        except errors.GenericError as err:
            logging.error("verify-disks of group %s failed: %s", group_uuid, err)
            return constants.EXIT_FAILURE
    return constants.EXIT_SUCCESS


def Main(opts: argparse.Namespace) -> int:
    """The child's run: take the group lock, connect, do the work."""
    from ganeti.watcher import GetLuxiClient
    group_uuid = opts.node_group
    started = time.monotonic()
    os.makedirs(pathutils.LOCK_DIR, exist_ok=True)
    lock = utils.FileLock.Open(GroupLockFile(group_uuid))
    try:
        lock.Exclusive(blocking=False)
    except errors.LockError:
        lock.Close()
        logging.info("The watcher child of group %s is still running from a"
                     " previous run; exiting", group_uuid)
        return constants.EXIT_SUCCESS
    try:
        try:
            client = GetLuxiClient()
        except errors.GenericError as err:
            logging.error("Group %s: cannot reach the master daemon: %s",
                          group_uuid, err)
            return constants.EXIT_FAILURE
        with client:
            try:
                return GroupWatcher(opts, client)
            except errors.GenericError as err:
                logging.error("The watcher of group %s failed: %s", group_uuid, err)
                return constants.EXIT_FAILURE
    finally:
        lock.Close()
        logging.info("Group %s: done (%.1fs)", group_uuid, time.monotonic() - started)
