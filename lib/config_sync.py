"""Configuration distribution: push every saved config to the nodes.

The master daemon registers :class:`ConfigSync` as a save listener of its
ConfigWriter (:func:`Attach`). After every save, before the save returns
(and so before the job that made the change is reported done), it uploads
``config.data`` to every online master candidate and writes the ssconf
files on every online node, each call going to all nodes in parallel.
The master's own ssconf files are written locally. This runs in the
saving thread, which holds the configuration lock. A node that fails is
logged, and ``gnt-cluster verify`` reports it; the job is not failed.

:func:`ComputeAncillaryFiles` says which files are kept identical across
the cluster; ``redist-conf`` (:func:`RedistributeAncillaryFiles`) ships
them, and cluster verify compares their checksums.
"""

from __future__ import annotations

import logging
import os
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
    nodes = cfg.GetAllNodesInfo()
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
    failed: dict[str, str] = {}
    try:
        ssconf.SimpleStore().WriteFiles(values)
    except (errors.GenericError, OSError) as err:
        logging.error("Cannot write the master's ssconf files: %s", err)
        failed[cfg.GetMasterNodeName()] = str(err)

    # Both calls run in this thread, one after the other (each reaches all
    # its nodes in parallel): the caller holds the configuration lock, and
    # the runner's resolver reads the configuration
    results: dict[str, dict[str, Any]] = {}
    for what, node_uuids, call in (
            ("the configuration", candidates,
             lambda: runner.call_upload_file(candidates, cfg.cfg_file)),
            ("the ssconf files", online,
             lambda: runner.call_write_ssconf_files(online, values))):
        if not node_uuids:
            continue
        try:
            results[what] = call()
        except Exception as err:  # noqa: BLE001 - reported per node below
            logging.exception("Distribution of %s failed", what)
            results[what] = {uuid: _Failure(str(err)) for uuid in node_uuids}
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
    """The save listener: distribute each saved configuration."""

    def __init__(self, cfg: Any, runner: Any) -> None:
        self.cfg = cfg
        self.runner = runner
        #: {node name: error} of the last distribution
        self.last_failures: dict[str, str] = {}

    def __call__(self, serial_no: int, text: str) -> None:
        logging.debug("Distributing configuration serial %s", serial_no)
        try:
            self.last_failures = DistributeConfig(self.cfg, self.runner)
        except Exception:  # noqa: BLE001 - a save must not fail on this
            logging.exception("Distribution of configuration serial %s failed",
                              serial_no)


def Attach(cfg: Any, runner: Any) -> ConfigSync:
    """Register config distribution on ``cfg``; return the listener."""
    listener = ConfigSync(cfg, runner)
    cfg.AddSaveListener(listener)
    return listener
