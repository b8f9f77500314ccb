"""Files the master may write or inspect on a node.

The master can overwrite only a fixed list of Ganeti's files
(:func:`GetAllowedUploadFiles`: Ganeti's list, plus the hypervisors'
ancillary files, as in Ganeti); anything else, and any path that is not
absolute and normalised, is refused with a message naming it. The node's
certificate and key (``server.pem``, ``client.pem``) are never among them.
This is the only way the master writes files on a node over RPC; the
administrator's other files travel by ``gnt-cluster copyfile``, over SSH.
"""

from __future__ import annotations

import grp
import hashlib
import os
import pwd
import stat
from typing import Any
from collections.abc import Iterable

from ganeti import constants, errors, pathutils, utils
from ganeti.backend import Fail
from ganeti.rpc.encoding import FileUpload

#: Further uploadable files, registered by other modules (hypervisors'
#: ancillary files, for instance); local paths
EXTRA_UPLOAD_FILES: set[str] = set()


def _HypervisorAncillaryFiles() -> set[str]:
    """Every hypervisor's ancillary files (redist-conf ships them)."""
    from ganeti import hypervisor
    result: set[str] = set()
    for name in sorted(constants.HYPER_TYPES):
        try:
            hv_class = hypervisor.GetHypervisorClass(name)
        except errors.HypervisorError:
            continue  # not implemented here: it has no files to receive
        mandatory, optional = hv_class.GetAncillaryFiles()
        result.update(mandatory)
        result.update(optional)
    return result


def GetAllowedUploadFiles() -> frozenset[str]:
    """Return the local paths ``upload_file`` may write."""
    files = {
        pathutils.CLUSTER_CONF_FILE,
        pathutils.ETC_HOSTS,
        pathutils.SSH_KNOWN_HOSTS_FILE,
        pathutils.VNC_PASSWORD_FILE,
        pathutils.RAPI_CERT_FILE,
        pathutils.SPICE_CERT_FILE,
        pathutils.SPICE_CACERT_FILE,
        pathutils.RAPI_USERS_FILE,
        pathutils.CONFD_HMAC_KEY,
        pathutils.CLUSTER_DOMAIN_SECRET_FILE,
    }
    files.update(_HypervisorAncillaryFiles())
    files.update(EXTRA_UPLOAD_FILES)
    # Which directories may hold file storage is a node-local decision
    files.discard(pathutils.FILE_STORAGE_PATHS_FILE)
    return frozenset(files)


def _IsSsconfFile(path: str) -> bool:
    directory, name = os.path.split(path)
    return (directory == pathutils.SSCONF_DIR
            and name.startswith(constants.SSCONF_FILEPREFIX)
            and name[len(constants.SSCONF_FILEPREFIX):] in constants.VALID_SS_KEYS)


def _IsQueueFile(path: str) -> bool:
    return utils.IsBelowDir(pathutils.QUEUE_DIR, path)


def _CheckPath(path: Any, what: str) -> str:
    if not isinstance(path, str) or not os.path.isabs(path):
        Fail("%s: file name must be an absolute path, got %r", what, path)
    if not utils.IsNormAbsPath(path):
        Fail("%s: file name '%s' is not normalised", what, path)
    return path


def _LookupIds(owner: str | None, group: str | None) -> tuple[int, int]:
    uid = gid = -1
    if owner is not None:
        try:
            uid = pwd.getpwnam(owner).pw_uid
        except KeyError:
            Fail("Unknown user '%s' for uploaded file", owner)
    if group is not None:
        try:
            gid = grp.getgrnam(group).gr_gid
        except KeyError:
            Fail("Unknown group '%s' for uploaded file", group)
    # Unchanged ownership needs no privileges (virtual clusters run unprivileged)
    if uid == os.geteuid():
        uid = -1
    if gid == os.getegid():
        gid = -1
    return uid, gid


def UploadFile(upload: FileUpload) -> None:
    """Write an uploaded file, keeping its mode, owner, group and times.

    Only files in :func:`GetAllowedUploadFiles` are accepted.
    """
    name = _CheckPath(upload.name, "upload_file")
    if name not in GetAllowedUploadFiles():
        Fail("File '%s' is not in the list of files the master may upload", name)
    if not os.path.isdir(os.path.dirname(name)):
        Fail("Cannot upload '%s': directory %s does not exist", name,
             os.path.dirname(name))
    uid, gid = _LookupIds(upload.owner, upload.group)
    mode = None if upload.mode is None else stat.S_IMODE(int(upload.mode))
    if (upload.atime is None) != (upload.mtime is None):
        Fail("Upload of '%s' needs both atime and mtime, or neither", name)
    try:
        utils.WriteFile(name, data=upload.data, mode=mode, uid=uid, gid=gid,
                        atime=upload.atime, mtime=upload.mtime)
    except OSError as err:
        Fail("Cannot write uploaded file '%s': %s", name, err)


def _InfoAllowed(path: str) -> bool:
    return (path in GetAllowedUploadFiles() or _IsSsconfFile(path)
            or _IsQueueFile(path))


def FileChecksum(path: str) -> str:
    """Return the SHA-1 of a file's contents, in hex."""
    digest = hashlib.sha1()
    with open(path, "rb") as fd:
        for block in iter(lambda: fd.read(1 << 16), b""):
            digest.update(block)
    return digest.hexdigest()


def FingerprintFiles(files: Iterable[str]) -> dict[str, str]:
    """Return {path: SHA-1} for the given files that exist."""
    result = {}
    for path in files:
        try:
            result[path] = FileChecksum(path)
        except FileNotFoundError:
            continue
        except OSError as err:
            Fail("Cannot read '%s': %s", path, err)
    return result


def GetFileInfo(file_name: str) -> dict[str, Any]:
    """Describe one of Ganeti's files: existence, size, mode, owner, times, SHA-1.

    Allowed are the uploadable files, the ssconf files and the job queue
    files; other paths are refused.
    """
    path = _CheckPath(file_name, "get_file_info")
    if not _InfoAllowed(path):
        Fail("File '%s' is not one of the files whose information may be"
             " queried", path)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return {"exists": False}
    except OSError as err:
        Fail("Cannot stat '%s': %s", path, err)
    if not stat.S_ISREG(st.st_mode):
        Fail("'%s' is not a regular file", path)
    try:
        owner: str | None = pwd.getpwuid(st.st_uid).pw_name
    except KeyError:
        owner = None
    try:
        group: str | None = grp.getgrgid(st.st_gid).gr_name
    except KeyError:
        group = None
    return {
        "exists": True,
        "size": st.st_size,
        "mode": stat.S_IMODE(st.st_mode),
        "uid": st.st_uid,
        "gid": st.st_gid,
        "owner": owner,
        "group": group,
        "mtime": st.st_mtime,
        "sha1": FileChecksum(path),
    }


def WriteSsconfFiles(values: dict[str, str]) -> None:
    """Replace this node's ssconf files with ``values`` (key -> text)."""
    if not isinstance(values, dict):
        Fail("ssconf values must be a dictionary, got %s", type(values).__name__)
    unknown = sorted(set(values) - constants.VALID_SS_KEYS)
    if unknown:
        Fail("Unknown ssconf keys: %s", ", ".join(unknown))
    from ganeti import ssconf
    try:
        ssconf.SimpleStore().WriteFiles(values)
    except (errors.ProgrammerError, errors.ConfigurationError,
            errors.LockError, OSError) as err:
        Fail("Cannot write ssconf files: %s", err)
