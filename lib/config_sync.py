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
node that fails is logged (``last_failures``), and ``gnt-cluster verify``
reports it; the job is not failed. Without a started thread (tools, tests)
each save is pushed at once in the saving thread, as before.

:func:`ComputeAncillaryFiles` says which files are kept identical across
the cluster; ``redist-conf`` (:func:`RedistributeAncillaryFiles`) ships
them, and cluster verify compares their checksums.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from ganeti import constants, errors, pathutils, ssconf, utils

FeedbackFn = Callable[[str], None] | None


@dataclass
class AncillaryFiles:
    """Files kept in sync: local paths on the master.

    ``all_nodes`` go to every node, ``candidates`` to master candidates,
    ``vm_capable`` to VM-capable nodes, ``extra`` (the administrator's
    list, any path) to every node; ``optional`` may be missing anywhere.
    """
    all_nodes: set[str] = field(default_factory=set)
    candidates: set[str] = field(default_factory=set)
    vm_capable: set[str] = field(default_factory=set)
    extra: set[str] = field(default_factory=set)
    optional: set[str] = field(default_factory=set)


def ClusterFilesList() -> str:
    """The administrator's list of extra files (one absolute path a line)."""
    return os.path.join(pathutils.CONF_DIR, constants.CLUSTER_FILES_LIST_NAME)


def ReadClusterFiles(path: str | None = None) -> list[str]:
    """The absolute paths listed in the cluster file list (missing: none).

    Empty lines and lines starting with '#' are skipped; relative paths are
    logged and ignored.
    """
    path = path or ClusterFilesList()
    try:
        text = utils.ReadFile(path)
    except FileNotFoundError:
        return []
    result = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if not os.path.isabs(line):
            logging.warning("Ignoring relative path '%s' in %s", line, path)
            continue
        result.append(os.path.normpath(line))
    return result


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
    result.extra.update(ReadClusterFiles())
    result.optional.update(result.extra)
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
                names: dict[str, str], feedback_fn: FeedbackFn = None,
                any_path: bool = False) -> dict[str, str]:
    """Upload each existing local file to the nodes; {"node: file": error}.

    ``any_path`` uses ``node_copy_file`` (any path) instead of the
    allow-listed ``upload_file``.
    """
    failed: dict[str, str] = {}
    if not node_uuids:
        return failed
    for path in sorted(files):
        if not os.path.isfile(path):
            continue
        if any_path:
            res = runner.call_node_copy_file(node_uuids, CopyFileName(path),
                                             utils.ReadBinaryFile(path),
                                             os.stat(path).st_mode & 0o7777)
        else:
            res = runner.call_upload_file(node_uuids, path)
        for name, msg in _LogFailures(path, res, names, feedback_fn).items():
            failed[f"{name}: {path}"] = msg
    return failed


def CopyFileName(path: str) -> str:
    """The destination name ``node_copy_file`` gets for a local path: a
    virtual path when it lies below this node's root, else the path."""
    root = pathutils.GetRootDirectory()
    if root and utils.IsBelowDir(root, path):
        return pathutils.MakeVirtualPath(path)
    return path


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
                              names, feedback_fn, any_path=True))
    failed.update(UploadFiles(runner, online, files.extra, names, feedback_fn,
                              any_path=True))
    return failed


class ConfigSync:
    """The save listener: distribute saved configurations (see module doc).

    Never call :meth:`Flush` with the configuration lock held: the
    distributor reads the configuration.
    """

    def __init__(self, cfg: Any, runner: Any) -> None:
        self.cfg = cfg
        self.runner = runner
        #: {node name: error} of the last distribution
        self.last_failures: dict[str, str] = {}
        #: How many pushes ran (saves coalesce into fewer pushes)
        self.pushes = 0
        self._cond = threading.Condition()
        self._saved = 0      # newest serial saved
        self._pushed = 0     # every serial up to this one is distributed
        self._thread: threading.Thread | None = None
        self._stopping = False
        # (node serial, ssconf values) each node (None: the master) got last
        self._ssconf_sent: dict[str | None, tuple[int, dict[str, str]]] = {}

    # --- the save listener --------------------------------------------------------------

    def __call__(self, serial_no: int, text: str) -> None:
        with self._cond:
            self._saved = max(self._saved, serial_no)
            if self._thread is not None:
                self._cond.notify_all()
                return
        self._PushNow(serial_no)

    # --- the distributor thread ---------------------------------------------------------

    def Start(self) -> None:
        """Start the distributor thread: saves return without waiting."""
        with self._cond:
            if self._thread is not None:
                return
            self._stopping = False
            self._pushed = max(self._pushed, self._saved)
            self._thread = threading.Thread(target=self._Run, name="config-sync",
                                            daemon=True)
            self._thread.start()

    def Stop(self, timeout: float | None = None) -> bool:
        """Push what is pending, then stop the thread; False if it did not end
        within ``timeout`` seconds. Later saves are pushed synchronously."""
        with self._cond:
            thread = self._thread
            if thread is None:
                return True
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
        (saves push synchronously) there is nothing to wait for.
        """
        with self._cond:
            target = self._saved
            return self._cond.wait_for(
                lambda: self._pushed >= target or self._thread is None, timeout)

    def _Run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._saved > self._pushed or self._stopping)
                if self._saved <= self._pushed:
                    return  # stopping, nothing pending
                target = self._saved
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
            self.last_failures = self._Distribute()
        except Exception:  # noqa: BLE001 - a save must not fail on this
            logging.exception("Distribution of configuration serial %s failed",
                              serial_no)
        logging.debug("Distributed configuration serial %s in %.3f s", serial_no,
                      time.monotonic() - start)

    def _Distribute(self) -> dict[str, str]:
        """Push config.data to the candidates, ssconf where it changed."""
        cfg = self.cfg
        _, candidates, online, names = _Targets(cfg)
        values = cfg.GetSsconfValues()
        # A node changed since (re-added, back online...) gets ssconf again
        nodes = cfg.GetAllNodesReadOnly()
        serials = {uuid: nodes[uuid].serial_no if uuid in nodes else 0 for uuid in online}
        sent = self._ssconf_sent
        failed: dict[str, str] = {}
        if sent.get(None) != (0, values):
            failed = _WriteMasterSsconf(cfg, values)
            if not failed:
                sent[None] = (0, values)
        stale = [uuid for uuid in online if sent.get(uuid) != (serials[uuid], values)]
        failed.update(_Push(cfg, self.runner, candidates, stale, values, names, None,
                            concurrent=self._thread is not None))
        failed_names = set(failed)
        for uuid in stale:
            if names.get(uuid, uuid) in failed_names:
                sent.pop(uuid, None)
            else:
                sent[uuid] = (serials[uuid], values)
        # Nodes gone or offline get everything again when they come back
        for gone in set(sent) - set(online) - {None}:
            del sent[gone]
        return failed


def Attach(cfg: Any, runner: Any) -> ConfigSync:
    """Register config distribution on ``cfg``; return the listener."""
    listener = ConfigSync(cfg, runner)
    cfg.AddSaveListener(listener)
    return listener
