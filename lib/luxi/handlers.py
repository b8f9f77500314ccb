"""The luxi methods the master daemon answers, in one table.

:func:`BuildMethods` maps every luxi method name to its handler, the number
of arguments it takes (Ganeti's argument order) and how it runs (see
:mod:`ganeti.luxi.server`). Job calls go to the job queue, queries to
:mod:`ganeti.query`, cluster information to the configuration.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import platform
import reprlib
import time
from typing import Any

from ganeti import constants, errors, pathutils, utils
from ganeti.luxi import client as names
from ganeti.luxi.server import (
    KIND_ASYNC,
    KIND_INLINE,
    KIND_LOOP,
    LuxiMethod,
    RunHandlerSoon,
)


def _CheckJobId(job_id: Any) -> int:
    if isinstance(job_id, bool) or not isinstance(job_id, (int, str)):
        raise errors.OpPrereqError(f"Invalid job id {job_id!r}: expected an"
                                   " integer", errors.ECODE_INVAL)
    try:
        return int(job_id)
    except ValueError as err:
        raise errors.OpPrereqError(f"Invalid job id {job_id!r}: expected an"
                                   " integer", errors.ECODE_INVAL) from err


def _CheckFields(fields: Any, what: str = "fields") -> list[str]:
    """``fields`` if it is a list of at most LUXI_MAX_QUERY_FIELDS names.

    The answer grows with the number of fields (a field definition each,
    a value per row each), so a request naming millions of them would make
    the master build an answer of hundreds of megabytes.
    """
    if isinstance(fields, list) and len(fields) > constants.LUXI_MAX_QUERY_FIELDS:
        raise errors.OpPrereqError(
            f"Too many {what}: {len(fields)} requested, at most"
            f" {constants.LUXI_MAX_QUERY_FIELDS} allowed per request",
            errors.ECODE_INVAL)
    if not isinstance(fields, list) or \
            not all(isinstance(f, str) for f in fields):
        raise errors.OpPrereqError(f"Invalid {what} {reprlib.repr(fields)}: expected"
                                   " a list of field names", errors.ECODE_INVAL)
    return fields


def _CheckNumber(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise errors.OpPrereqError(f"Invalid {what} {value!r}: expected a"
                                   " number", errors.ECODE_INVAL)
    return value


def ReadWatcherPause(path: str | None = None, now: float | None = None
                     ) -> int | None:
    """The Unix time until which the watcher is paused, None if it is not."""
    if path is None:
        path = pathutils.WATCHER_PAUSEFILE
    try:
        text = utils.ReadFile(path)
    except FileNotFoundError:
        return None
    try:
        until = int(float(text.strip()))
    except ValueError:
        logging.warning("Ignoring invalid watcher pause file %s: %r", path, text)
        return None
    if until < (time.time() if now is None else now):
        return None
    return until


def WriteWatcherPause(until: Any, path: str | None = None,
                      check_past: bool = True) -> int | None:
    """Pause the watcher until ``until`` (None: resume); return ``until``.

    A time in the past is refused unless ``check_past`` is false (a node
    receiving the master's pause late must still take it: it ends at once).
    """
    if path is None:
        path = pathutils.WATCHER_PAUSEFILE
    if until is None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        return None
    _CheckNumber(until, "watcher pause end time")
    if check_past and until < time.time():
        raise errors.OpPrereqError(f"Cannot pause the watcher until {until}:"
                                   " the time is in the past", errors.ECODE_INVAL)
    until = int(until)
    utils.WriteFile(path, data=f"{until}\n", mode=0o644)
    return until


class MasterHandlers:
    """The master's answers to luxi calls.

    ``queue`` is the :class:`ganeti.jqueue.JobQueue`, ``cfg`` the
    ConfigWriter (may be None in tests), ``query_context`` what
    :func:`ganeti.query.Query` gets as its context.
    """

    def __init__(self, queue: Any, cfg: Any = None, query_context: Any = None,
                 query_module: Any = None) -> None:
        self.queue = queue
        self.cfg = cfg
        self.query_context = query_context
        if query_module is None:
            from ganeti import query as query_module  # type: ignore[no-redef]
        self.query = query_module

    # --- jobs -------------------------------------------------------------------

    def SubmitJob(self, ops: Any) -> Any:
        """Runs in the loop (KIND_LOOP); see :meth:`_SubmitInLoop`."""
        return self._SubmitInLoop(self._CheckOps(ops), drained_ok=False)

    def SubmitJobToDrainedQueue(self, ops: Any) -> Any:
        """Runs in the loop (KIND_LOOP); see :meth:`_SubmitInLoop`."""
        return self._SubmitInLoop(self._CheckOps(ops), drained_ok=True)

    def _SubmitInLoop(self, ops: list[Any], drained_ok: bool) -> Any:
        """Check and queue the job here, let the queue's writer put it on disk.

        Returns an awaitable giving the job ID once the job is on disk;
        bad opcodes raise at once. No luxi thread is involved: the job
        queue's writer thread syncs the job (together with others) and
        wakes the loop.
        """
        submit = getattr(self.queue, "SubmitJobNoWait", None)
        if submit is None:  # a queue without it: block a luxi thread
            call = self.queue.SubmitJobToDrainedQueue if drained_ok else self.queue.SubmitJob
            return asyncio.get_running_loop().run_in_executor(None, call, ops)
        loop = asyncio.get_running_loop()
        written: asyncio.Future = loop.create_future()

        def _Set(err: BaseException | None) -> None:
            if not written.done():
                written.set_result(err)

        def _Done(err: BaseException | None) -> None:
            with contextlib.suppress(RuntimeError):  # the loop is closed
                loop.call_soon_threadsafe(_Set, err)

        job_id = submit(ops, _Done, drained_ok=drained_ok)
        return self._JobWritten(written, job_id)

    @staticmethod
    async def _JobWritten(written: asyncio.Future, job_id: int) -> int:
        err = await written
        if err is not None:
            raise err
        return job_id

    def SubmitManyJobs(self, jobs: Any) -> list[Any]:
        if not isinstance(jobs, list):
            raise errors.OpPrereqError(f"Invalid job list {jobs!r}: expected a"
                                       " list of jobs", errors.ECODE_INVAL)
        return self.queue.SubmitManyJobs([self._CheckOps(ops) for ops in jobs])

    @staticmethod
    def _CheckOps(ops: Any) -> list[Any]:
        if not isinstance(ops, list) or not ops:
            raise errors.OpPrereqError(f"Invalid job {ops!r}: expected a"
                                       " non-empty list of opcodes",
                                       errors.ECODE_INVAL)
        return ops

    def CancelJob(self, job_id: Any, kill: Any = False) -> Any:
        job_id = _CheckJobId(job_id)
        if kill:
            try:
                return self.queue.CancelJob(job_id, kill=True)
            except TypeError:
                return (False, "Killing running jobs is not supported")
        return self.queue.CancelJob(job_id)

    def ChangeJobPriority(self, job_id: Any, priority: Any) -> Any:
        job_id = _CheckJobId(job_id)
        if isinstance(priority, bool) or not isinstance(priority, int):
            raise errors.OpPrereqError(f"Invalid priority {priority!r}: expected"
                                       " an integer", errors.ECODE_INVAL)
        return self.queue.ChangeJobPriority(job_id, priority)

    def ArchiveJob(self, job_id: Any) -> bool:
        return self.queue.ArchiveJob(_CheckJobId(job_id))

    def AutoArchiveJobs(self, age: Any, timeout: Any) -> Any:
        _CheckNumber(age, "age")
        _CheckNumber(timeout, "timeout")
        return self.queue.AutoArchiveJobs(age, timeout)

    def WaitForJobChange(self, job_id: Any, fields: Any, prev_job_info: Any,
                         prev_log_serial: Any,
                         timeout: Any = constants.LUXI_WFJC_TIMEOUT) -> Any:
        """Answer as soon as the job changes, or "nochange" at the timeout.

        Runs in the loop. When the job changed already (the usual case
        for a client following a job) the answer comes at once; otherwise
        this returns a coroutine that waits (see :meth:`_WaitForJobChange`).
        GetJobChanges works on memory, except for the rare job neither in
        the queue's memory nor in its small cache of finished jobs, which
        it reads from its file.
        """
        job_id = _CheckJobId(job_id)
        _CheckFields(fields)
        if prev_job_info is not None and not isinstance(prev_job_info, list):
            raise errors.OpPrereqError(
                f"Invalid previous job info {reprlib.repr(prev_job_info)}: expected"
                " a list or null", errors.ECODE_INVAL)
        if prev_log_serial is not None and (
                isinstance(prev_log_serial, bool) or not isinstance(prev_log_serial, int)):
            raise errors.OpPrereqError(
                f"Invalid previous log serial {reprlib.repr(prev_log_serial)}: expected"
                " an integer or null", errors.ECODE_INVAL)
        timeout = min(max(_CheckNumber(timeout, "timeout"), 0),
                      constants.LUXI_WFJC_MAX_TIMEOUT)
        result = self.queue.GetJobChanges(job_id, fields, prev_job_info, prev_log_serial)
        if result is not None:
            return result
        if timeout <= 0:
            return constants.JOB_NOTCHANGED
        return self._WaitForJobChange(job_id, fields, prev_job_info, prev_log_serial,
                                      timeout)

    async def _WaitForJobChange(self, job_id: int, fields: list[str], prev_job_info: Any,
                                prev_log_serial: Any, timeout: float) -> Any:
        """Wait for a change of the job through a subscription.

        Nothing waits in a thread, so thousands of clients may wait at once.
        """
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future | None = None

        def _Wake() -> None:
            if waiter is not None and not waiter.done():
                waiter.set_result(None)

        handle = self.queue.Subscribe(job_id, RunHandlerSoon(loop, _Wake))
        try:
            deadline = loop.time() + timeout
            while True:
                # Also catches a change between the first look and Subscribe
                result = self.queue.GetJobChanges(job_id, fields, prev_job_info,
                                                  prev_log_serial)
                if result is not None:
                    return result
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return constants.JOB_NOTCHANGED
                waiter = loop.create_future()
                timer = loop.call_later(remaining, _Wake)
                try:
                    await waiter
                finally:
                    timer.cancel()
        finally:
            self.queue.Unsubscribe(handle)

    def QueryJobs(self, job_ids: Any, fields: Any) -> Any:
        _CheckFields(fields)
        if job_ids is not None:
            if not isinstance(job_ids, list):
                raise errors.OpPrereqError(f"Invalid job id list {job_ids!r}",
                                           errors.ECODE_INVAL)
            job_ids = [_CheckJobId(job_id) for job_id in job_ids]
        return self.query.QueryJobs(self.query_context, job_ids, fields)

    # --- queries ----------------------------------------------------------------

    def Query(self, what: Any, fields: Any, qfilter: Any) -> Any:
        self._CheckResource(what)
        _CheckFields(fields)
        return self.query.Query(what, fields, qfilter, self.query_context)

    def QueryFields(self, what: Any, fields: Any) -> Any:
        self._CheckResource(what)
        if fields is not None:
            _CheckFields(fields)
        return self.query.QueryFields(what, fields)

    @staticmethod
    def _CheckResource(what: Any) -> None:
        # A JSON list or object is unhashable: check the type first
        if not isinstance(what, str) or what not in constants.QR_VIA_LUXI:
            raise errors.OpPrereqError(
                f"Resource type {reprlib.repr(what)} unknown; known:"
                f" {', '.join(sorted(constants.QR_VIA_LUXI))}", errors.ECODE_INVAL)

    def _Cfg(self) -> Any:
        if self.cfg is None:
            raise errors.OpPrereqError("The master has no cluster configuration",
                                       errors.ECODE_STATE)
        return self.cfg

    def QueryClusterInfo(self) -> dict[str, Any]:
        return ClusterInfo(self._Cfg())

    def QueryConfigValues(self, fields: Any) -> list[Any]:
        _CheckFields(fields)
        values = ClusterInfo(self._Cfg())
        values.update({
            "cluster_name": values["name"],
            "master_node": values["master"],
            "drain_flag": self.queue.IsDrained(),
            "watcher_pause": ReadWatcherPause(),
            "cluster_tags": values["tags"],
        })
        # Not in QueryClusterInfo (nor RAPI's /2/info), as Ganeti's
        cluster = self._Cfg().GetClusterInfo()
        values["hv_state"] = cluster.hv_state_static or {}
        values["disk_state"] = cluster.disk_state_static or {}
        unknown = [f for f in fields if f not in values]
        if unknown:
            raise errors.OpPrereqError(
                f"Unknown configuration field(s): {', '.join(unknown)}",
                errors.ECODE_INVAL)
        return [values[f] for f in fields]

    # --- flags ------------------------------------------------------------------

    def SetDrainFlag(self, drain_flag: Any) -> bool:
        if not isinstance(drain_flag, bool):
            raise errors.OpPrereqError(f"Invalid drain flag {drain_flag!r}:"
                                       " expected true or false",
                                       errors.ECODE_INVAL)
        return self.queue.SetDrainFlag(drain_flag)

    def SetWatcherPause(self, until: Any) -> int | None:
        """Write the pause file here, then on every other online node
        (``set_watcher_pause``), so that each node's watcher sees it and it
        survives a master failover; a node that cannot be reached is logged
        (its watcher keeps its old pause, as in Ganeti)."""
        until = WriteWatcherPause(until)
        rpc = getattr(self.query_context, "rpc", None)
        if rpc is None or self.cfg is None:
            return until
        master = self.cfg.GetMasterNode()
        nodes = [uuid for uuid in self.cfg.GetOnlineNodeList() if uuid != master]
        if nodes:
            for uuid, result in rpc.call_set_watcher_pause(nodes, until).items():
                if result.fail_msg:
                    logging.warning("Cannot set the watcher pause on node %s: %s",
                                    self.cfg.GetNodeName(uuid), result.fail_msg)
        return until

    # --- the table --------------------------------------------------------------

    def Methods(self) -> dict[str, LuxiMethod]:
        """The luxi method table (see :class:`ganeti.luxi.server.LuxiMethod`)."""
        return {
            names.REQ_SUBMIT_JOB: LuxiMethod(self.SubmitJob, 1, 1, KIND_LOOP),
            names.REQ_SUBMIT_JOB_TO_DRAINED_QUEUE:
                LuxiMethod(self.SubmitJobToDrainedQueue, 1, 1, KIND_LOOP),
            names.REQ_SUBMIT_MANY_JOBS: LuxiMethod(self.SubmitManyJobs, 1, 1),
            names.REQ_WAIT_FOR_JOB_CHANGE:
                LuxiMethod(self.WaitForJobChange, 4, 5, KIND_ASYNC),
            names.REQ_CANCEL_JOB: LuxiMethod(self.CancelJob, 1, 2),
            names.REQ_CHANGE_JOB_PRIORITY: LuxiMethod(self.ChangeJobPriority, 2, 2),
            names.REQ_ARCHIVE_JOB: LuxiMethod(self.ArchiveJob, 1, 1),
            names.REQ_AUTO_ARCHIVE_JOBS: LuxiMethod(self.AutoArchiveJobs, 2, 2),
            names.REQ_QUERY: LuxiMethod(self.Query, 3, 3),
            names.REQ_QUERY_FIELDS: LuxiMethod(self.QueryFields, 2, 2, KIND_INLINE),
            names.REQ_QUERY_JOBS: LuxiMethod(self.QueryJobs, 2, 2),
            # The configuration lock may be held while a job saves it
            names.REQ_QUERY_CLUSTER_INFO: LuxiMethod(self.QueryClusterInfo, 0, 0),
            names.REQ_QUERY_CONFIG_VALUES: LuxiMethod(self.QueryConfigValues, 1, 1),
            names.REQ_SET_DRAIN_FLAG: LuxiMethod(self.SetDrainFlag, 1, 1),
            names.REQ_SET_WATCHER_PAUSE: LuxiMethod(self.SetWatcherPause, 1, 1),
        }


@functools.cache
def _Architecture() -> tuple[str, str]:
    # platform.architecture() runs file(1): ~10 ms, too slow for every call
    return (platform.architecture()[0], platform.machine())


def ClusterInfo(cfg: Any) -> dict[str, Any]:
    """The answer to QueryClusterInfo, with Ganeti's keys."""
    cluster = cfg.GetClusterInfo()
    enabled_hv = list(cluster.enabled_hypervisors)
    os_hvp = {os_name: {hv: params for hv, params in hvs.items() if hv in enabled_hv}
              for os_name, hvs in cluster.os_hvp.items()}
    # Ganeti reports the IP version (4 or 6), not the address family
    primary_ip_version = 6 if cluster.primary_ip_family == constants.IP6_ADDRESS_FAMILY else 4
    info: dict[str, Any] = {
        "software_version": constants.RELEASE_VERSION,
        "protocol_version": constants.PROTOCOL_VERSION,
        "config_version": constants.CONFIG_VERSION,
        "os_api_version": max(constants.OS_API_VERSIONS),
        "export_version": constants.EXPORT_VERSION,
        "vcs_version": getattr(constants, "VCS_VERSION", constants.RELEASE_VERSION),
        "architecture": _Architecture(),
        "name": cluster.cluster_name,
        "master": cfg.GetMasterNodeName(),
        "default_hypervisor": enabled_hv[0] if enabled_hv else None,
        "enabled_hypervisors": enabled_hv,
        "hvparams": {hv: cluster.hvparams.get(hv, {}) for hv in enabled_hv},
        "os_hvp": os_hvp,
        "primary_ip_version": primary_ip_version,
        "tags": sorted(cluster.GetTags()),
    }
    for key in ("beparams", "osparams", "ipolicy", "nicparams", "ndparams",
                "diskparams", "candidate_pool_size", "max_running_jobs",
                "max_tracked_jobs", "mac_prefix", "master_netdev",
                "master_netmask", "use_external_mip_script",
                "volume_group_name", "drbd_usermode_helper",
                "file_storage_dir", "shared_file_storage_dir",
                "gluster_storage_dir", "maintain_node_health", "ctime", "mtime",
                "uuid", "uid_pool", "default_iallocator",
                "default_iallocator_params", "reserved_lvs",
                "prealloc_wipe_disks", "hidden_os", "blacklisted_os",
                "enabled_disk_templates", "install_image",
                "instance_communication_network", "zeroing_image",
                "compression_tools", "enabled_user_shutdown",
                "modify_etc_hosts", "modify_ssh_setup",
                "ssh_key_type", "ssh_key_bits", "master_ip"):
        value = getattr(cluster, key, None)
        if isinstance(value, (set, frozenset)):
            value = sorted(value)
        info[key] = value
    info.update(_DataCollectorInfo(cluster.data_collectors or {}))
    return info


#: A data collector's run interval unless configured (microseconds, as Ganeti)
_DEFAULT_COLLECTOR_INTERVAL = 5000000


def _DataCollectorInfo(configured: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Ganeti's ``enabled_data_collectors`` and ``data_collector_interval``.

    Every known collector is listed; those the configuration does not
    mention are on, at the default interval.
    """
    names = sorted(constants.DATA_COLLECTOR_NAMES | set(configured))
    return {
        constants.DATA_COLLECTORS_ENABLED_NAME: {
            name: bool(configured.get(name, {}).get("active", True)) for name in names},
        constants.DATA_COLLECTORS_INTERVAL_NAME: {
            name: configured.get(name, {}).get("interval", _DEFAULT_COLLECTOR_INTERVAL)
            for name in names},
    }
