"""``node_verify``: the node's half of cluster verification.

The master sends a dict of checks (``constants.NV_*`` keys with their
parameters); the answer has one entry per check this node knows. Checks
implemented so far: version, hostname, file checksums, reachability of the
other nodes' daemons, time, the client certificate and, our extensions
(Ganeti has no such checks), the owners and modes of the daemons' files
(``NV_FILEPERMS``: ensure-dirs' check, see :mod:`ganeti.tools.ensure_dirs`)
and the contents of the file storage directories (``NV_FILESTORAGELIST``,
for the master's orphan check, as ``NV_LVLIST`` is for volumes).
Storage, as Ganeti's: the volume groups (``NV_VGLIST``: {vg: MiB}), the
logical volumes of some volume groups (``NV_LVLIST``: {"vg/lv": [MiB,
inactive, online]}), the physical volumes of some volume groups
(``NV_PVLIST``: a list of dicts, see
:func:`ganeti.storage.lvm.ParsePhysicalVolumes`), the DRBD minors in use
(``NV_DRBDLIST``) and the DRBD usermode helper (``NV_DRBDHELPER``:
[ok, helper or error]). Network, as Ganeti's: the bridges of a list this
node lacks (``NV_BRIDGES``). A storage or bridge check that fails answers with the error
message (a string) instead of its data, so that the master reports it
and the other checks still run.
Others are left out of the answer, which the master reports as missing.
"""

from __future__ import annotations

import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from collections.abc import Sequence

from ganeti import constants, errors, pathutils, utils
from ganeti.backend import Fail
from ganeti.backend import files as backend_files

_MAX_PING_THREADS = 16


def _CheckFileList(virtual_paths: Sequence[str]) -> dict[str, str]:
    local = {}
    for vpath in virtual_paths:
        try:
            local[pathutils.LocalizeVirtualPath(vpath)] = vpath
        except errors.ProgrammerError as err:
            Fail("Invalid path in file list: %s", err)
    sums = backend_files.FingerprintFiles(local)
    return {local[path]: digest for path, digest in sums.items()}


def _PingNode(target: str, port: int, source: str | None) -> bool:
    return utils.TcpPing(target, port, timeout=constants.TCP_PING_TIMEOUT,
                         live_port_needed=True, source=source)


def _CheckNodeNet(entries: Sequence[Sequence[Any]], my_name: str) -> dict[str, str]:
    """Check that the other nodes' daemons accept connections from us.

    ``entries`` are (name, primary IP, secondary IP[, port]). Returns
    {node name: problem} for the nodes that failed.
    """
    nodes = []
    for entry in entries:
        if not isinstance(entry, (list, tuple)) or len(entry) not in (3, 4):
            Fail("Invalid node-net-test entry %r: expected (name, primary ip,"
                 " secondary ip[, port])", entry)
        name, pip, sip = entry[:3]
        port = int(entry[3]) if len(entry) == 4 else constants.DEFAULT_NODED_PORT
        nodes.append((name, pip, sip, port))
    mine = [n for n in nodes if n[0] == my_name]
    if not mine:
        return {my_name: "Can't find my own primary/secondary IP in the node list"}
    _, my_pip, my_sip, _ = mine[0]

    def _Check(node: tuple[str, str, str, int]) -> tuple[str, str | None]:
        name, pip, sip, port = node
        fail = []
        if not _PingNode(pip, port, my_pip):
            fail.append("primary")
        if sip != pip and not _PingNode(sip, port, my_sip):
            fail.append("secondary")
        if not fail:
            return name, None
        return name, (f"failure using the {' and '.join(fail)} interface(s)"
                      f" to reach port {port}")

    others = [n for n in nodes if n[0] != my_name]
    result: dict[str, str] = {}
    if not others:
        return result
    with ThreadPoolExecutor(max_workers=min(_MAX_PING_THREADS, len(others))) as pool:
        for name, problem in pool.map(_Check, others):
            if problem:
                result[name] = problem
    return result


def _CheckClientCert() -> tuple[str | None, str | None]:
    from ganeti.utils import x509
    if not os.path.exists(pathutils.NODED_CLIENT_CERT_FILE):
        return constants.CV_ERROR, (f"The client certificate does not exist at"
                                    f" {pathutils.NODED_CLIENT_CERT_FILE}")
    return x509.VerifyCertificate(pathutils.NODED_CLIENT_CERT_FILE)


def _CheckFilePerms() -> list[list[str | None]]:
    """ensure-dirs' differences (without the job queue's contents) as
    [virtual path, problem]; a problem of the whole check has no path."""
    from ganeti.tools import ensure_dirs
    try:
        differences = ensure_dirs.Check()
    except errors.GenericError as err:
        return [[None, f"cannot check file permissions: {err}"]]
    return [[pathutils.MakeVirtualPath(diff.path), diff.problem] for diff in differences]


def _ListFileStorage(dirs: Sequence[str]) -> dict[str, list[str] | str]:
    """What lies below each file storage directory (cluster paths, mapped
    onto this node): {directory: sorted paths relative to it, directories
    with a trailing "/"}, or {directory: error message}. A missing
    directory holds nothing; only the allowed file storage directories may
    be listed; symbolic links below them are listed, not followed."""
    from ganeti.storage import filestorage
    if not isinstance(dirs, (list, tuple)):
        Fail("file-storage-list needs a list of directories, got %r", dirs)
    allowed = set(filestorage.GetAllowedDirs(constants.DT_FILE)
                  + filestorage.GetAllowedDirs(constants.DT_SHARED_FILE))
    result: dict[str, list[str] | str] = {}
    for cluster_dir in dirs:
        if not isinstance(cluster_dir, str) or not utils.IsNormAbsPath(cluster_dir):
            Fail("Invalid file storage directory %r", cluster_dir)
        local = filestorage.LocalizePath(cluster_dir)
        if local not in allowed:
            result[cluster_dir] = (f"'{cluster_dir}' is not a file storage directory"
                                   " of this node")
            continue
        if not os.path.isdir(local):
            result[cluster_dir] = []
            continue
        entries: list[str] = []

        def _Raise(err: OSError) -> None:
            raise err

        try:
            for top, dirnames, filenames in os.walk(local, onerror=_Raise):
                rel = os.path.relpath(top, local)
                prefix = "" if rel == "." else rel + "/"
                entries.extend(f"{prefix}{name}/" for name in dirnames)
                entries.extend(f"{prefix}{name}" for name in filenames)
        except OSError as err:
            result[cluster_dir] = f"cannot list '{cluster_dir}': {err}"
            continue
        result[cluster_dir] = sorted(entries)
    return result


def _MissingBridges(bridges: Any) -> list[str] | str:
    """The bridges of ``bridges`` this node lacks, or why it cannot tell."""
    from ganeti.backend import node as backend_node
    try:
        return backend_node.BridgesExist(bridges)
    except Exception as err:  # noqa: BLE001 - the master reports the message
        return str(err)


def _VgList() -> dict[str, int] | str:
    from ganeti.storage import lvm
    try:
        return lvm.GetVolumeGroups()
    except (errors.StorageError, errors.BlockDeviceError) as err:
        logging.warning("Cannot list the volume groups: %s", err)
        return str(err)


def _LvList(vg_names: Any) -> dict[str, list[Any]] | str:
    """The logical volumes of the volume group(s) ``vg_names`` (a name or
    a list) that exist here ({"vg/lv": [MiB, inactive, online]}), or the
    error message. All are listed and then filtered, so that a volume
    group missing here hides none of the others' volumes."""
    from ganeti.storage import lvm
    if isinstance(vg_names, str):
        vg_names = [vg_names]
    if not (isinstance(vg_names, (list, tuple))
            and all(isinstance(name, str) for name in vg_names)):
        Fail("lvlist needs volume group names, got %r", vg_names)
    wanted = set(vg_names)
    try:
        volumes = lvm.GetLogicalVolumes(None)
    except (errors.StorageError, errors.BlockDeviceError) as err:
        logging.warning("Cannot list the logical volumes: %s", err)
        return str(err)
    return {name: list(info) for name, info in volumes.items()
            if name.split("/", 1)[0] in wanted}


def _PvList(vg_names: Any) -> list[dict[str, Any]] | str:
    """The physical volumes of the volume groups ``vg_names`` (with the
    logical volumes on each), or the error message."""
    from ganeti.storage import lvm
    if isinstance(vg_names, str):
        vg_names = [vg_names]
    if not (isinstance(vg_names, (list, tuple))
            and all(isinstance(name, str) for name in vg_names)):
        Fail("pvlist needs a list of volume group names, got %r", vg_names)
    try:
        return lvm.GetPhysicalVolumes(list(vg_names))
    except (errors.StorageError, errors.BlockDeviceError) as err:
        logging.warning("Cannot list the physical volumes: %s", err)
        return str(err)


def _DrbdMinors() -> list[int] | str:
    from ganeti.storage import drbd
    try:
        return drbd.GetUsedMinors()
    except errors.BlockDeviceError as err:
        logging.warning("Cannot list the DRBD minors in use: %s", err)
        return str(err)


def _DrbdHelper() -> list[Any]:
    from ganeti.storage import drbd
    try:
        return [True, drbd.GetUsermodeHelper()]
    except errors.BlockDeviceError as err:
        logging.warning("Cannot read the DRBD usermode helper: %s", err)
        return [False, str(err)]


def VerifyNode(what: dict[str, Any], cluster_name: str, all_hvparams: Any,
               node_groups: Any = None, groups_cfg: Any = None) -> dict[str, Any]:
    """Run the requested checks and return their results by NV_* key."""
    if not isinstance(what, dict):
        Fail("node_verify needs a dict of checks, got %s", type(what).__name__)
    result: dict[str, Any] = {}
    my_name = utils.Hostname.GetSysName()

    if constants.NV_HOSTNAME in what:
        result[constants.NV_HOSTNAME] = my_name
    if constants.NV_VERSION in what:
        result[constants.NV_VERSION] = [constants.PROTOCOL_VERSION,
                                        constants.RELEASE_VERSION]
    if constants.NV_FILELIST in what:
        result[constants.NV_FILELIST] = _CheckFileList(what[constants.NV_FILELIST])
    if constants.NV_NODENETTEST in what:
        result[constants.NV_NODENETTEST] = _CheckNodeNet(
            what[constants.NV_NODENETTEST], my_name)
    if constants.NV_TIME in what:
        now = time.time()
        result[constants.NV_TIME] = [int(now), int((now % 1) * 1000000)]
    if constants.NV_CLIENT_CERT in what:
        result[constants.NV_CLIENT_CERT] = list(_CheckClientCert())
    if constants.NV_FILEPERMS in what:
        result[constants.NV_FILEPERMS] = _CheckFilePerms()
    if constants.NV_FILESTORAGELIST in what:
        result[constants.NV_FILESTORAGELIST] = _ListFileStorage(
            what[constants.NV_FILESTORAGELIST])
    if constants.NV_BRIDGES in what:
        result[constants.NV_BRIDGES] = _MissingBridges(what[constants.NV_BRIDGES])
    if constants.NV_VGLIST in what:
        result[constants.NV_VGLIST] = _VgList()
    if constants.NV_LVLIST in what:
        result[constants.NV_LVLIST] = _LvList(what[constants.NV_LVLIST])
    if constants.NV_PVLIST in what:
        result[constants.NV_PVLIST] = _PvList(what[constants.NV_PVLIST])
    if constants.NV_DRBDLIST in what:
        result[constants.NV_DRBDLIST] = _DrbdMinors()
    if constants.NV_DRBDHELPER in what:
        result[constants.NV_DRBDHELPER] = _DrbdHelper()
    if constants.NV_OOB_PATHS in what:
        # one problem (or None) per out-of-band helper, as Ganeti
        from ganeti.backend.oob import OobPathError
        result[constants.NV_OOB_PATHS] = [OobPathError(path)
                                          for path in what[constants.NV_OOB_PATHS] or []]

    unknown = set(what) - set(result)
    if unknown:
        logging.debug("node_verify checks not implemented here: %s",
                      ", ".join(sorted(unknown)))
    return result
