"""KVM security on the node: the user QEMU runs as, its chroot, the VNC password.

The start code calls :func:`PrepareSecurity` before running QEMU and passes
the result's ``runas`` and ``chroot`` to the command line (``-runas``,
``-chroot``); once QEMU runs it calls :meth:`SecuritySetup.Started`, and on
a failed start :meth:`SecuritySetup.Cleanup`. Stopping an instance (or
cleaning up after one, also from a node daemon that restarted since the
start) calls :func:`ReleaseSecurity`, which finds what to undo on disk.

``security_model`` (seed 000, "KVM Security"):

- ``none``: QEMU runs as the node daemon's user;
- ``user``: QEMU drops its privileges to ``security_domain``, a user that
  must exist on the node;
- ``pool``: QEMU runs under a uid of the cluster's user-id pool that no
  other process uses (:mod:`ganeti.uidpool`: the uid's lock file names the
  instance until it stops). A pool uid without a user name on the node is
  given to QEMU as ``uid:gid`` with the gid equal to the uid (QEMU 7.2
  takes that form), so instances share no group either.

``use_chroot`` makes QEMU chroot, after opening its files, to an empty,
private directory of its own (``<kvm run dir>/chroot/<instance>``, the
directory :class:`.cmdline.RuntimeFiles` names). It must be empty at start;
at stop an empty one is removed and one that is not (something wrote into
it) is moved to ``chroot-quarantine/`` beside it, so the next start is
not refused.

Switching users and chroot() need root: under another user these models
are refused with an error saying so, before QEMU is run.

The VNC password (``vnc_password_file``, normally the cluster file
``vnc-cluster-password`` that ``redist-conf`` ships to every node) is read
by :func:`ReadVncPassword` and set over QMP after start
(:func:`ApplyVncPassword`); it never appears on QEMU's command line.
"""

from __future__ import annotations

import logging
import os
import pwd
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ganeti import constants, errors, pathutils, ssconf, uidpool
from ganeti.hypervisor.hv_kvm import cmdline

_C = constants

__all__ = [
    "AncillaryFiles", "ApplyVncPassword", "ChrootDir", "GetInstanceUid",
    "PrepareSecurity", "QuarantineDir", "ReadVncPassword", "ReleaseSecurity",
    "RunasForUid", "SecuritySetup", "VncPasswordPath",
]

#: Where the cluster's VNC password file lives outside a virtual cluster:
#: the value ``vnc_password_file`` holds for it in the configuration
CLUSTER_VNC_PASSWORD_FILE = _C.DEFAULT_CONF_DIR + "/vnc-cluster-password"

#: Mode of an instance's chroot directory: QEMU enters it as root and
#: needs nothing in it; the user it becomes must not write there
CHROOT_DIR_MODE = 0o700


def _Fail(msg: str) -> errors.HypervisorError:
    return errors.HypervisorError(msg)


def _IsRoot() -> bool:
    return os.geteuid() == 0


def _NeedRoot(what: str) -> None:
    if not _IsRoot():
        raise _Fail(f"{what} needs the node daemon to run as root (it runs as"
                    f" uid {os.geteuid()})")


def _Hvp(hvparams: Mapping[str, Any]) -> dict[str, Any]:
    return cmdline.FillParameters(hvparams)


# --- Chroot directories ------------------------------------------------------------


def ChrootDir(instance_name: str, run_dir: str | None = None) -> str:
    """The chroot directory of ``instance_name`` (RuntimeFiles' layout)."""
    chroot = cmdline.RuntimeFiles.ForInstance(instance_name, run_dir).chroot
    assert chroot is not None
    return chroot


def QuarantineDir(run_dir: str | None = None) -> str:
    """Where chroot directories found not empty at stop are moved."""
    return (run_dir or cmdline.KvmRunDir()) + "/chroot-quarantine"


def _MakeChroot(path: str) -> None:
    """Create the (empty, private) chroot directory ``path``, or check it."""
    try:
        os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
        os.mkdir(path, CHROOT_DIR_MODE)
    except FileExistsError:
        if not os.path.isdir(path) or os.path.islink(path):
            raise _Fail(f"The chroot path {path} exists and is not a directory") from None
        if os.listdir(path):
            raise _Fail(f"The chroot directory {path} is not empty; QEMU must"
                        " start in an empty one (remove its contents)") from None
    except OSError as err:
        raise _Fail(f"Cannot create the chroot directory {path}: {err}") from err
    # mkdir's mode goes through the umask, and an existing directory may
    # have any mode or owner
    os.chmod(path, CHROOT_DIR_MODE)
    if _IsRoot():
        os.chown(path, os.geteuid(), os.getegid())


def _RemoveChroot(instance_name: str, run_dir: str | None) -> None:
    """Remove an instance's chroot directory, or quarantine it if not empty."""
    path = ChrootDir(instance_name, run_dir)
    try:
        os.rmdir(path)
        return
    except FileNotFoundError:
        return
    except OSError as err:
        if not os.path.isdir(path) or not os.listdir(path):
            raise _Fail(f"Cannot remove the chroot directory {path}: {err}") from err
    quarantine = QuarantineDir(run_dir)
    target = f"{quarantine}/{instance_name}-{time.strftime('%Y%m%d%H%M%S')}"
    try:
        os.makedirs(quarantine, mode=0o700, exist_ok=True)
        suffix = 0
        while os.path.exists(target + (f".{suffix}" if suffix else "")):
            suffix += 1
        target += f".{suffix}" if suffix else ""
        os.rename(path, target)
    except OSError as err:
        raise _Fail(f"The chroot directory {path} is not empty and cannot be moved"
                    f" to {quarantine}: {err}") from err
    logging.warning("Chroot directory %s of instance %s was not empty; moved to %s",
                    path, instance_name, target)


# --- Users ------------------------------------------------------------------------------


def _PoolUids(uid_pool: Iterable[int] | str | None) -> set[int]:
    """The pool's uids from ``uid_pool``: uids, ssconf's text of the pool,
    or None for this node's ssconf."""
    try:
        if uid_pool is None:
            uid_pool = ssconf.SimpleStore().GetUidPool()
        if isinstance(uid_pool, str):
            uid_pool = uidpool.ExpandUidPool(uidpool.ParseUidPool(uid_pool, merge=True))
    except (errors.ConfigurationError, errors.OpPrereqError) as err:
        raise _Fail(f"Cannot read the cluster's uid pool: {err}") from err
    return set(uid_pool)


def RunasForUid(uid: int) -> str:
    """What ``-runas`` is given for ``uid``: its user name, else "uid:uid"."""
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"{uid}:{uid}"


@dataclass
class SecuritySetup:
    """What :func:`PrepareSecurity` prepared for one start of an instance.

    ``runas`` goes to ``-runas`` (None: stay the daemon's user), ``uid`` is
    the uid QEMU will run as (None under ``none``), ``chroot`` goes to
    ``-chroot`` (None without ``use_chroot``).
    """

    instance_name: str
    runas: str | None = None
    uid: int | None = None
    chroot: str | None = None
    run_dir: str | None = None
    lockdir: str | None = None
    _locked: uidpool.LockedUid | None = field(default=None, init=False, repr=False)

    def Started(self) -> None:
        """QEMU runs (under the uid): drop the pool lock, keep the uid reserved.

        Until this call the uid's lock keeps other starts away from it;
        afterwards the QEMU process running under it does.
        """
        if self._locked is not None:
            self._locked.Unlock()

    def Cleanup(self) -> None:
        """Undo the preparation (a start that failed): give the pool uid
        back and remove the chroot directory (quarantined if not empty)."""
        if self._locked is not None:
            if self._locked.IsLocked():
                uidpool.ReleaseUid(self._locked, lockdir=self.lockdir)
            else:
                uidpool.ReleaseUid(self.instance_name, lockdir=self.lockdir)
            self._locked = None
        if self.chroot is not None:
            _RemoveChroot(self.instance_name, self.run_dir)


def PrepareSecurity(instance_name: str, hvparams: Mapping[str, Any],
                    uid_pool: Iterable[int] | str | None, *, run_dir: str | None = None,
                    lockdir: str | None = None) -> SecuritySetup:
    """Prepare the user and chroot QEMU will run with, for one start.

    @param hvparams: the instance's (filled) hypervisor parameters
    @param uid_pool: the pool's uids (``uidpool.ExpandUidPool``), or the
        pool as ssconf's text ("1000-1009\\n2000"); None reads it from
        this node's ssconf. Only read under ``security_model=pool``.
    @param run_dir: the KVM run directory (default ``cmdline.KvmRunDir()``)
    @param lockdir: the uid pool's lock directory (default
        ``pathutils.UIDPOOL_LOCKDIR``)
    @raise errors.HypervisorError: a missing user, no free uid in the pool,
        a chroot directory that is not empty, not running as root
    """
    hvp = _Hvp(hvparams)
    model = hvp[_C.HV_SECURITY_MODEL]
    setup = SecuritySetup(instance_name, run_dir=run_dir, lockdir=lockdir)
    if model == _C.HT_SM_USER:
        domain = hvp[_C.HV_SECURITY_DOMAIN]
        if not domain:
            raise _Fail(f"Security model '{model}' needs a security_domain (the user"
                        " to run QEMU as)")
        try:
            entry = pwd.getpwnam(domain)
        except KeyError:
            raise _Fail(f"The security_domain user '{domain}' does not exist on this"
                        " node") from None
        _NeedRoot(f"Security model '{model}' (QEMU's -runas {domain})")
        setup.runas, setup.uid = domain, entry.pw_uid
    elif model == _C.HT_SM_POOL:
        uids = _PoolUids(uid_pool)
        if not uids:
            raise _Fail(f"Security model '{model}' needs a uid pool, and the cluster's"
                        " is empty (gnt-cluster modify --uid-pool)")
        _NeedRoot(f"Security model '{model}' (QEMU's -runas)")
        try:
            locked = uidpool.RequestUnusedUid(uids, owner=instance_name, lockdir=lockdir)
        except errors.LockError as err:
            hint = (" (gnt-cluster modify --add-uids adds uids to the pool)"
                    if "No free uid" in str(err) else "")
            raise _Fail(f"{err}{hint}") from err
        setup._locked = locked
        setup.uid = locked.GetUid()
        setup.runas = RunasForUid(setup.uid)
    elif model != _C.HT_SM_NONE:
        raise _Fail(f"Unknown security model '{model}'")

    if hvp[_C.HV_KVM_USE_CHROOT]:
        try:
            _NeedRoot("use_chroot (QEMU's -chroot)")
            path = ChrootDir(instance_name, run_dir)
            _MakeChroot(path)
        except BaseException:
            setup.Cleanup()
            raise
        setup.chroot = path
    return setup


def ReleaseSecurity(instance_name: str, hvparams: Mapping[str, Any] | None = None, *,
                    run_dir: str | None = None, lockdir: str | None = None) -> None:
    """Undo what a start of ``instance_name`` prepared, once QEMU is gone.

    Works from what is on disk (the uid's lock file naming the instance,
    the chroot directory), not from ``hvparams``: they may have changed
    since the start, and the daemon that started QEMU may be another
    process. Releasing twice, or what was never prepared, does nothing.
    """
    del hvparams  # kept for the callers' symmetry with PrepareSecurity
    uidpool.ReleaseUid(instance_name, lockdir=lockdir)
    _RemoveChroot(instance_name, run_dir)


def GetInstanceUid(instance_name: str, lockdir: str | None = None) -> int | None:
    """The pool uid ``instance_name`` runs under on this node, or None."""
    return uidpool.GetInstanceUid(instance_name, lockdir=lockdir)


# --- VNC password -------------------------------------------------------------------


def VncPasswordPath(hvparams: Mapping[str, Any]) -> str | None:
    """This node's path of ``vnc_password_file``, or None when unset.

    The cluster file's usual path names this node's copy, which lies under
    the node root in a virtual cluster.
    """
    path = _Hvp(hvparams)[_C.HV_VNC_PASSWORD_FILE]
    if not path:
        return None
    if path == CLUSTER_VNC_PASSWORD_FILE:
        return pathutils.VNC_PASSWORD_FILE
    return path


def ReadVncPassword(hvparams: Mapping[str, Any]) -> str | None:
    """The VNC password from ``vnc_password_file``; None when unset.

    Surrounding blanks (the final newline) are not part of it.

    @raise errors.HypervisorError: naming the file, if it cannot be read or
        holds no password
    """
    path = VncPasswordPath(hvparams)
    if path is None:
        return None
    try:
        with open(path, encoding="utf-8") as fd:
            password = fd.read().strip()
    except OSError as err:
        raise _Fail(f"Cannot read the VNC password file {path}:"
                    f" {err.strerror or err}") from err
    except UnicodeDecodeError as err:
        raise _Fail(f"The VNC password file {path} is not UTF-8 text: {err}") from err
    if not password:
        raise _Fail(f"The VNC password file {path} is empty")
    return password


def ApplyVncPassword(monitor: Any, hvparams: Mapping[str, Any]) -> bool:
    """Set the VNC password over QMP (``monitor``: a :class:`.monitor.QmpConnection`)
    when ``vnc_password_file`` is set; whether it was."""
    password = ReadVncPassword(hvparams)
    if password is None:
        return False
    monitor.SetVncPassword(password)
    return True


def AncillaryFiles() -> tuple[list[str], list[str]]:
    """The KVM hypervisor's files to distribute, and those of them that may
    be missing: the cluster VNC password file (optional: VNC without a
    password needs none). For ``KVMHypervisor.GetAncillaryFiles``."""
    return [pathutils.VNC_PASSWORD_FILE], [pathutils.VNC_PASSWORD_FILE]
