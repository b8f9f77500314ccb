"""Configuration distribution: push every saved config to the nodes.

The master daemon registers :class:`ConfigSync` as a save listener of its
ConfigWriter (:func:`Attach`) and starts its distributor thread
(:meth:`ConfigSync.Start`). A save then only records its serial number and
wakes the thread, which pushes the newest configuration: it uploads
``config.data`` to every online master candidate and writes the ssconf
files on the online nodes whose ssconf values differ from those last
written there (all of them when the values changed, none when they did
not; a node that failed is retried at the next push). The master's own
ssconf files are written locally when their values change. Saves that
arrive while a push runs share the next push, so parallel jobs saving at
the same time cost one upload, not one each.

Whoever relies on the nodes having the configuration calls
:meth:`ConfigSync.Flush`, which waits until every configuration saved so
far has been pushed: the opcode processor does so at the end of every
opcode (before the post hooks and before the job is reported done). A
node that fails is logged and recorded (``last_failures``); the job is not
failed. The thread tries that node again by itself, after 1, 2, 4, ...
seconds (at most a minute apart), until it gets the current copy, so a
node that was down or whose daemon was restarting catches up without
anybody running ``redist-conf``; a node flagged offline is never
contacted (and forgotten when it is flagged). Starting the thread (the
master daemon's start) pushes everything once to every online node, in
the background: whatever a crashed master had saved but not distributed
reaches the nodes, and ``gnt-cluster verify``, which flushes first, finds
the copies current. Without a started thread (tools, tests) each save is
pushed at once in the saving thread, as before, and nothing is retried.

:func:`ComputeAncillaryFiles` says which files are kept identical across
the cluster; ``redist-conf`` (:func:`RedistributeAncillaryFiles`) ships
them, and cluster verify compares their checksums.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ganeti import errors, pathutils, ssconf

FeedbackFn = Callable[[str], None] | None

#: Seconds before the first retry of a node whose copy failed; each further
#: failure doubles the delay, up to RETRY_MAX_DELAY
RETRY_DELAY = 1.0
RETRY_MAX_DELAY = 60.0


@dataclass
class AncillaryFiles:
    """Files kept in sync: local paths on the master.

    ``all_nodes`` go to every node, ``candidates`` to master candidates,
    ``vm_capable`` to VM-capable nodes; ``optional`` may be missing
    anywhere. All of them are in the nodes' upload allow-list
    (:func:`ganeti.backend.files.GetAllowedUploadFiles`): other files reach
    the nodes with ``gnt-cluster copyfile``, over SSH.
    """
    all_nodes: set[str] = field(default_factory=set)
    candidates: set[str] = field(default_factory=set)
    vm_capable: set[str] = field(default_factory=set)
    optional: set[str] = field(default_factory=set)


def _HypervisorFiles(hv_names: Iterable[str]) -> tuple[set[str], set[str]]:
    files: set[str] = set()
    optional: set[str] = set()
    for name in hv_names:
        try:
            from ganeti import hypervisor
            hv_class = hypervisor.GetHypervisorClass(name)
        except (ImportError, errors.GenericError):
            continue
        mandatory, opt = hv_class.GetAncillaryFiles()
        files.update(mandatory)
        files.update(opt)
        optional.update(opt)
    return files, optional


def ComputeAncillaryFiles(cfg: Any, redist: bool = False) -> AncillaryFiles:
    """The files kept in sync across the cluster, by destination.

    With ``redist`` the configuration itself is left out (the save listener
    ships it) and so is ssconf (written from values, not copied).
    """
    cluster = cfg.GetClusterInfo()
    result = AncillaryFiles()
    result.all_nodes.update([
        pathutils.CONFD_HMAC_KEY,
        pathutils.CLUSTER_DOMAIN_SECRET_FILE,
        pathutils.RAPI_CERT_FILE,
    ])
    optional = {pathutils.RAPI_USERS_FILE, pathutils.SPICE_CERT_FILE,
                pathutils.SPICE_CACERT_FILE, pathutils.VNC_PASSWORD_FILE,
                pathutils.SSH_KNOWN_HOSTS_FILE}
    result.all_nodes.update(optional)
    result.optional.update(optional)
    if cluster.modify_etc_hosts:
        result.all_nodes.add(pathutils.ETC_HOSTS)
    if not redist:
        result.candidates.add(pathutils.CLUSTER_CONF_FILE)
    hv_files, hv_optional = _HypervisorFiles(cluster.enabled_hypervisors or [])
    result.vm_capable.update(hv_files)
    result.optional.update(hv_optional)
    return result


def _LogFailures(what: str, results: dict[str, Any], names: dict[str, str],
                 feedback_fn: FeedbackFn) -> dict[str, str]:
    failed = {}
    for key, res in results.items():
        if res.fail_msg and not res.offline:
            name = names.get(key, key)
            failed[name] = res.fail_msg
            msg = f"Copy of {what} to node {name} failed: {res.fail_msg}"
            logging.error("%s", msg)
            if feedback_fn:
                feedback_fn(msg)
    return failed


def _Targets(cfg: Any) -> tuple[str, list[str], list[str], dict[str, str]]:
    """(master uuid, online candidates but the master, online nodes but the
    master, uuid -> name)."""
    master = cfg.GetMasterNode()
    nodes = cfg.GetAllNodesReadOnly()
    names = {uuid: node.name for uuid, node in nodes.items()}
    online = [uuid for uuid, node in nodes.items()
              if not node.offline and uuid != master]
    candidates = [uuid for uuid in online if nodes[uuid].master_candidate]
    return master, candidates, online, names


def DistributeConfig(cfg: Any, runner: Any, feedback_fn: FeedbackFn = None,
                     nodes: Iterable[str] | None = None) -> dict[str, str]:
    """Push config.data to the online candidates and ssconf to the online
    nodes (or only to the node UUIDs in ``nodes``); write the master's own
    ssconf files. Returns {node name: error} for the nodes that failed.
    """
    _, candidates, online, names = _Targets(cfg)
    if nodes is not None:
        wanted = set(nodes)
        candidates = [uuid for uuid in candidates if uuid in wanted]
        online = [uuid for uuid in online if uuid in wanted]
    values = cfg.GetSsconfValues()
    failed = _WriteMasterSsconf(cfg, values)
    failed.update(_Push(cfg, runner, candidates, online, values, names, feedback_fn))
    return failed


def _WriteMasterSsconf(cfg: Any, values: dict[str, str]) -> dict[str, str]:
    try:
        ssconf.SimpleStore().WriteFiles(values)
    except (errors.GenericError, OSError) as err:
        logging.error("Cannot write the master's ssconf files: %s", err)
        return {cfg.GetMasterNodeName(): str(err)}
    return {}


def _Push(cfg: Any, runner: Any, candidates: list[str], ssconf_nodes: list[str],
          values: dict[str, str], names: dict[str, str],
          feedback_fn: FeedbackFn, concurrent: bool = False) -> dict[str, str]:
    """Upload config.data to ``candidates`` and write ssconf on
    ``ssconf_nodes`` (each call reaching its nodes in parallel); return
    {node name: error}.

    The two calls run one after the other unless ``concurrent``: a caller
    holding the configuration lock must not wait for another thread, as
    the runner's resolver reads the configuration.
    """
    results: dict[str, dict[str, Any]] = {}

    def _Call(what: str, node_uuids: list[str], call: Callable[[], Any]) -> None:
        try:
            results[what] = call()
        except Exception as err:  # noqa: BLE001 - reported per node below
            logging.exception("Distribution of %s failed", what)
            results[what] = {uuid: _Failure(str(err)) for uuid in node_uuids}

    calls = [(what, node_uuids, call) for what, node_uuids, call in (
        ("the configuration", candidates,
         lambda: runner.call_upload_file(candidates, cfg.cfg_file)),
        ("the ssconf files", ssconf_nodes,
         lambda: runner.call_write_ssconf_files(ssconf_nodes, values)))
        if node_uuids]
    if concurrent and len(calls) > 1:
        helper = threading.Thread(target=_Call, args=calls[0], name="config-upload")
        helper.start()
        _Call(*calls[1])
        helper.join()
    else:
        for args in calls:
            _Call(*args)
    failed: dict[str, str] = {}
    for what, res in results.items():
        failed.update(_LogFailures(what, res, names, feedback_fn))
    return failed


@dataclass
class _Failure:
    fail_msg: str
    offline: bool = False


def UploadFiles(runner: Any, node_uuids: list[str], files: Iterable[str],
                names: dict[str, str], feedback_fn: FeedbackFn = None
                ) -> dict[str, str]:
    """Upload each existing local file to the nodes (``upload_file``: the
    nodes accept only their allow-list); {"node: file": error}."""
    failed: dict[str, str] = {}
    if not node_uuids:
        return failed
    for path in sorted(files):
        if not os.path.isfile(path):
            continue
        res = runner.call_upload_file(node_uuids, path)
        for name, msg in _LogFailures(path, res, names, feedback_fn).items():
            failed[f"{name}: {path}"] = msg
    return failed


def RedistributeAncillaryFiles(cfg: Any, runner: Any,
                               feedback_fn: FeedbackFn = None) -> dict[str, str]:
    """Ship the ancillary files (not config.data/ssconf) to the nodes."""
    _, candidates, online, names = _Targets(cfg)
    nodes = cfg.GetAllNodesInfo()
    vm_capable = [uuid for uuid in online if nodes[uuid].vm_capable]
    files = ComputeAncillaryFiles(cfg, redist=True)
    failed = UploadFiles(runner, online, files.all_nodes, names, feedback_fn)
    failed.update(UploadFiles(runner, candidates, files.candidates, names, feedback_fn))
    failed.update(UploadFiles(runner, vm_capable, files.vm_capable - files.all_nodes,
                              names, feedback_fn))
    return failed


_deferring = threading.local()


@contextlib.contextmanager
def DeferDistribution() -> Iterator[None]:
    """Saves the calling thread makes inside are written (config.data on
    the master) but not pushed at once: the next push, which a later save
    or a :meth:`ConfigSync.Flush` starts, takes them along. For changes the
    nodes need not see yet, such as an instance whose creation is not
    committed: the commit's save then costs the only push. Without a
    distributor thread saves are pushed as always."""
    depth = _DeferDepth()
    _deferring.depth = depth + 1
    try:
        yield
    finally:
        _deferring.depth = depth


def _DeferDepth() -> int:
    depth: int = getattr(_deferring, "depth", 0)
    return depth


@dataclass
class _Retry:
    """A node whose copy failed: when to try again, and why it failed."""
    attempts: int
    due: float          # time.monotonic() of the next attempt
    error: str
    name: str


class ConfigSync:
    """The save listener: distribute saved configurations (see module doc).

    Never call :meth:`Flush` with the configuration lock held: the
    distributor reads the configuration.
    """

    def __init__(self, cfg: Any, runner: Any, retry_delay: float = RETRY_DELAY,
                 retry_max_delay: float = RETRY_MAX_DELAY) -> None:
        self.cfg = cfg
        self.runner = runner
        #: How many pushes ran (saves coalesce into fewer pushes; retries of
        #: failed nodes are not counted)
        self.pushes = 0
        #: How many retries of failed nodes ran
        self.retries = 0
        self.retry_delay = retry_delay
        self.retry_max_delay = retry_max_delay
        self._cond = threading.Condition()
        self._saved = 0      # newest serial saved
        self._deferred = 0   # newest serial saved under DeferDistribution
        self._pushed = 0     # every serial up to this one is distributed
        self._thread: threading.Thread | None = None
        self._stopping = False
        # (node serial, ssconf values) each node (None: the master) got last
        self._ssconf_sent: dict[str | None, tuple[int, dict[str, str]]] = {}
        # Nodes (None: the master's own ssconf) whose last copy failed
        self._retry: dict[str | None, _Retry] = {}

    @property
    def last_failures(self) -> dict[str, str]:
        """{node name: error} of the nodes whose current copy is missing
        (their last attempt failed; the thread tries them again)."""
        with self._cond:
            return {entry.name: entry.error for entry in self._retry.values()}

    def PendingRetries(self) -> dict[str, tuple[str, float]]:
        """{node name: (error, seconds until the next attempt)}."""
        now = time.monotonic()
        with self._cond:
            return {entry.name: (entry.error, max(0.0, entry.due - now))
                    for entry in self._retry.values()}

    # --- the save listener --------------------------------------------------------------

    def __call__(self, serial_no: int, text: str) -> None:
        with self._cond:
            if self._thread is not None and _DeferDepth() > 0:
                self._deferred = max(self._deferred, serial_no)
                return
            self._saved = max(self._saved, serial_no)
            if self._thread is not None:
                self._cond.notify_all()
                return
        self._PushNow(serial_no)
        with self._cond:
            self._pushed = max(self._pushed, serial_no)

    # --- the distributor thread ---------------------------------------------------------

    def Start(self) -> None:
        """Start the distributor thread: saves return without waiting.

        Unless this object pushed the current configuration already, the
        thread first pushes it to every online node (config.data to the
        candidates, ssconf everywhere), and :meth:`Flush` waits for that.
        """
        # Read before taking our lock: a saving thread holds the
        # configuration's lock while it calls us
        current = self.cfg.GetConfigSerialNo()
        with self._cond:
            if self._thread is not None:
                return
            self._stopping = False
            if self._pushed < current:
                self._saved = max(self._saved, current)
            self._thread = threading.Thread(target=self._Run, name="config-sync",
                                            daemon=True)
            self._thread.start()

    def Stop(self, timeout: float | None = None) -> bool:
        """Push what is pending, then stop the thread; False if it did not end
        within ``timeout`` seconds. Later saves are pushed synchronously;
        failed nodes are not retried any more."""
        with self._cond:
            thread = self._thread
            if thread is None:
                return True
            self._Undefer()
            self._stopping = True
            self._cond.notify_all()
        thread.join(timeout)
        if thread.is_alive():
            logging.error("The configuration distributor did not stop in time")
            return False
        with self._cond:
            self._thread = None
            self._cond.notify_all()
        return True

    def Flush(self, timeout: float | None = None) -> bool:
        """Wait until every configuration saved so far is distributed.

        Returns False if ``timeout`` ran out first. Without the thread
        (saves push synchronously) there is nothing to wait for. Nodes that
        failed do not count: they are retried in the background.
        """
        with self._cond:
            self._Undefer()
            target = self._saved
            return self._cond.wait_for(
                lambda: self._pushed >= target or self._thread is None, timeout)

    def _Undefer(self) -> None:
        """Deferred saves are due now (under the lock)."""
        if self._deferred > self._saved:
            self._saved = self._deferred
            self._cond.notify_all()

    def _NextRetry(self) -> float | None:
        """Monotonic time of the earliest retry due (under the lock)."""
        return min((entry.due for entry in self._retry.values()), default=None)

    def _Run(self) -> None:
        while True:
            retry: set[str | None] | None = None
            with self._cond:
                while True:
                    if self._saved > self._pushed:
                        break
                    if self._stopping:
                        return  # nothing pending; retries end with the daemon
                    due = self._NextRetry()
                    now = time.monotonic()
                    if due is not None and due <= now:
                        retry = {key for key, entry in self._retry.items()
                                 if entry.due <= now}
                        break
                    self._cond.wait(None if due is None else due - now)
                target = self._saved
            if retry is not None:
                self._RetryNow(retry)
                continue
            try:
                # What the push reads is at least as new as this serial
                target = max(target, self.cfg.GetConfigSerialNo())
                self._PushNow(target)
            finally:
                with self._cond:
                    self._pushed = max(self._pushed, target)
                    self._cond.notify_all()

    # --- one push -------------------------------------------------------------------------

    def _PushNow(self, serial_no: int) -> None:
        start = time.monotonic()
        self.pushes += 1
        try:
            self._Distribute(None)
        except Exception:  # noqa: BLE001 - a save must not fail on this
            logging.exception("Distribution of configuration serial %s failed",
                              serial_no)
        logging.debug("Distributed configuration serial %s in %.3f s", serial_no,
                      time.monotonic() - start)

    def _RetryNow(self, keys: set[str | None]) -> None:
        self.retries += 1
        try:
            self._Distribute(keys)
        except Exception:  # noqa: BLE001 - the thread must go on
            logging.exception("Retrying the configuration distribution failed")
            self._Failed(keys, {key: "internal error, see the log" for key in keys},
                         {key: self._retry[key].name for key in keys if key in self._retry})

    def _Distribute(self, only: set[str | None] | None) -> dict[str, str]:
        """Push config.data to the candidates, ssconf where it changed, and
        record who failed; ``only``: just these nodes (a retry; None is the
        master's own ssconf). Returns {node name: error}."""
        cfg = self.cfg
        _, candidates, online, names = _Targets(cfg)
        master_name = cfg.GetMasterNodeName()
        values = cfg.GetSsconfValues()
        # A node changed since (re-added, back online...) gets ssconf again
        nodes = cfg.GetAllNodesReadOnly()
        serials = {uuid: nodes[uuid].serial_no if uuid in nodes else 0 for uuid in online}
        sent = self._ssconf_sent
        failed: dict[str, str] = {}
        attempted: set[str | None] = set()
        if only is None or None in only:
            attempted.add(None)
            if sent.get(None) != (0, values):
                failed = _WriteMasterSsconf(cfg, values)
                if not failed:
                    sent[None] = (0, values)
        stale = [uuid for uuid in online if sent.get(uuid) != (serials[uuid], values)]
        if only is not None:
            candidates = [uuid for uuid in candidates if uuid in only]
            stale = [uuid for uuid in stale if uuid in only]
            # A node with nothing left to push (demoted, or its copy got
            # through meanwhile) is done
            attempted.update(key for key in only if key in online)
        attempted.update(candidates)
        attempted.update(stale)
        failed.update(_Push(cfg, self.runner, candidates, stale, values, names, None,
                            concurrent=self._thread is not None))
        # Failures come by node name; None stands for the master's own ssconf
        by_name: dict[str, str | None] = {name: uuid for uuid, name in names.items()}
        by_name[master_name] = None
        failed_keys = {by_name.get(name, name): error for name, error in failed.items()}
        for uuid in stale:
            if uuid in failed_keys:
                sent.pop(uuid, None)
            else:
                sent[uuid] = (serials[uuid], values)
        # Nodes gone or offline get everything again when they come back
        for gone in set(sent) - set(online) - {None}:
            del sent[gone]
        key_names: dict[str | None, str] = dict(names.items())
        key_names[None] = master_name
        self._Failed(attempted, failed_keys, key_names, keep=set(online) | {None})
        return failed

    def _Failed(self, attempted: set[str | None], failed: dict[str | None, str],
                names: dict[str | None, str],
                keep: set[str | None] | None = None) -> None:
        """Update the retry schedule: the ``attempted`` nodes that are not in
        ``failed`` are done; those in it are tried again later (with a
        longer delay each time); nodes not in ``keep`` are forgotten."""
        now = time.monotonic()
        with self._cond:
            for key in attempted:
                error = failed.get(key)
                if error is None:
                    self._retry.pop(key, None)
                    continue
                previous = self._retry.get(key)
                attempts = previous.attempts + 1 if previous is not None else 1
                delay = min(self.retry_max_delay,
                            self.retry_delay * 2 ** min(attempts - 1, 30))
                name = names.get(key, str(key))
                self._retry[key] = _Retry(attempts, now + delay, error, name)
                if self._thread is not None:
                    logging.warning("Copy of the configuration to node %s failed (%s);"
                                    " trying again in %.1f s", name, error, delay)
            if keep is not None:
                for key in set(self._retry) - keep:
                    del self._retry[key]
            self._cond.notify_all()


def Attach(cfg: Any, runner: Any, **kwargs: Any) -> ConfigSync:
    """Register config distribution on ``cfg``; return the listener
    (``kwargs`` go to :class:`ConfigSync`: the retry delays)."""
    listener = ConfigSync(cfg, runner, **kwargs)
    cfg.AddSaveListener(listener)
    return listener
