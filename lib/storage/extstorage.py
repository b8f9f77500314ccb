"""ExtStorage providers and the ``ext`` disks they provide.

A provider (ganeti-extstorage-interface(7)) is a directory named after it
in one of the directories of ``pathutils.ES_SEARCH_PATH``, holding the
executable scripts ``create``, ``remove``, ``grow``, ``attach``,
``detach``, ``setinfo`` and ``verify``, optionally ``snapshot``, ``open``
and ``close``, and the text file ``parameters.list`` (one parameter a
line: its name, then its description). :func:`LoadProvider` finds and
checks one, as :mod:`ganeti.backend.os` does for OS definitions.

An ``ext`` disk's ``logical_id`` is ``(provider, volume name)``; its
``params`` hold the provider's parameters given at creation (``--disk
0:size=10G,provider=NAME,PARAM=VALUE``), checked against
``parameters.list`` (:func:`CheckExtParams`), plus possibly the disk-level
``access`` parameter. :class:`ExtStorageDevice` runs the scripts with a
clean environment (:func:`ExtStorageEnvironment`): ``VOL_NAME``,
``VOL_SIZE``, ``VOL_NEW_SIZE``, ``VOL_METADATA``, ``VOL_CNAME``,
``VOL_UUID``, ``VOL_SNAPSHOT_NAME``, ``VOL_SNAPSHOT_SIZE``,
``VOL_OPEN_EXCLUSIVE`` as the action needs, and ``EXTP_<NAME>`` for each
provider parameter (upper-cased, "-" becoming "_"). In a virtual cluster
the scripts also get ``GANETI_ROOTDIR``, the node's root, so that a
provider can keep node-local state inside it.

The ``attach`` script prints the volume's block device on its first line
(empty when there is none) and may print ``<hypervisor>:<uri>`` lines after
it, which :meth:`ExtStorageDevice.GetUserspaceAccessUri` hands out for
disks whose ``access`` parameter is ``userspace``. A failing script raises
:class:`errors.BlockDeviceError` naming the provider, the script, how it
failed and its last output lines; every script run but ``attach`` leaves
its output in ``pathutils.LOG_ES_DIR``, as Ganeti does.
"""

from __future__ import annotations

import logging
import os
import re
import stat
import time
from collections.abc import Sequence
from typing import Any

from ganeti import constants, errors, objects, pathutils, utils
from ganeti.storage import base
from ganeti.storage.blockdev import GetBlockDeviceSize, StatBlockDevice

#: The disk-level parameter an ext disk may carry besides its provider's
_ACCESS = constants.RBD_ACCESS


class ExtStorageError(errors.BlockDeviceError):
    """A provider is missing or invalid, or one of its scripts failed."""


# --- Providers -------------------------------------------------------------------------


def _CheckProviderName(name: Any) -> str:
    if not isinstance(name, str) or not name or "/" in name or name.startswith(".") \
            or name.strip() != name:
        raise ExtStorageError(f"Invalid ExtStorage provider name {name!r}")
    return name


def SearchPath() -> list[str]:
    """The directories searched for providers, in order."""
    return list(pathutils.ES_SEARCH_PATH)


def FindProviderDir(name: str, search_path: Sequence[str] | None = None) -> str:
    """The directory of provider ``name``: the first one found.

    @raise ExtStorageError: naming the provider and the search path
    """
    _CheckProviderName(name)
    dirs = list(search_path) if search_path is not None else SearchPath()
    for directory in dirs:
        path = os.path.join(directory, name)
        if os.path.isdir(path):
            return path
    raise ExtStorageError(f"ExtStorage provider '{name}' not found in the ExtStorage"
                          f" search path ({', '.join(dirs) or 'empty'})")


def _CheckScript(provider_dir: str, name: str, required: bool) -> str | None:
    path = os.path.join(provider_dir, name)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        if required:
            raise ExtStorageError(f"Script '{name}' not found in {provider_dir}") \
                from None
        return None
    except OSError as err:
        raise ExtStorageError(f"Cannot stat script {path}: {err}") from err
    if not stat.S_ISREG(st.st_mode):
        raise ExtStorageError(f"Script '{name}' in {provider_dir} is not a regular file")
    if not st.st_mode & stat.S_IXUSR:
        raise ExtStorageError(f"Script '{name}' in {provider_dir} is not executable")
    return path


def ReadParametersFile(path: str) -> list[list[str]]:
    """``[[name, description], ...]`` from a parameters.list file.

    @raise ExtStorageError: if it cannot be read or a name is invalid
    """
    try:
        text = utils.ReadFile(path)
    except FileNotFoundError:
        raise ExtStorageError(f"Required file '{constants.ES_PARAMETERS_FILE}' not"
                              f" found in {os.path.dirname(path)}") from None
    except OSError as err:
        raise ExtStorageError(f"Error while reading {path}: {err}") from err
    result = []
    for line in utils.FilterEmptyLinesAndComments(text):
        parts = line.split(None, 1)
        if not re.match(r"^[A-Za-z0-9_][A-Za-z0-9_-]*$", parts[0]):
            raise ExtStorageError(f"Invalid parameter name '{parts[0]}' in {path}")
        result.append([parts[0], parts[1].strip() if len(parts) > 1 else ""])
    return result


def LoadProvider(name: str, base_dir: str | None = None) -> objects.ExtStorage:
    """Find and check provider ``name`` (in ``base_dir`` only, if given).

    @raise ExtStorageError: naming what is missing or wrong
    """
    path = FindProviderDir(name, None if base_dir is None else [base_dir])
    scripts = {}
    for script in constants.ES_SCRIPTS_REQUIRED:
        scripts[script] = _CheckScript(path, script, True)
    for script in constants.ES_SCRIPTS_OPTIONAL:
        scripts[script] = _CheckScript(path, script, False)
    parameters = ReadParametersFile(os.path.join(path, constants.ES_PARAMETERS_FILE))
    return objects.ExtStorage(
        name=name, path=path, supported_parameters=parameters,
        **{f"{script}_script": value for script, value in scripts.items()})


def TryLoadProvider(name: str, base_dir: str | None = None
                    ) -> tuple[bool, objects.ExtStorage | str]:
    """(True, provider) or (False, why it cannot be used)."""
    try:
        return True, LoadProvider(name, base_dir)
    except ExtStorageError as err:
        return False, str(err)


def SplitDiskParams(provider: objects.ExtStorage, params: dict[str, Any] | None
                    ) -> dict[str, Any]:
    """The provider's parameters among an ext disk's ``params``.

    The disk-level ``access`` parameter is left out unless the provider
    declares a parameter of that name.
    """
    declared = {pname for pname, _ in provider.supported_parameters or []}
    return {key: value for key, value in (params or {}).items()
            if key != _ACCESS or key in declared}


def CheckExtParams(provider: objects.ExtStorage, ext_params: dict[str, Any]) -> None:
    """Fail unless every parameter is declared by the provider.

    @raise ExtStorageError: naming the unknown parameters and the provider
    """
    declared = [pname for pname, _ in provider.supported_parameters or []]
    unknown = sorted(set(ext_params) - set(declared))
    if unknown:
        raise ExtStorageError(
            f"ExtStorage provider '{provider.name}' does not support the"
            f" parameter(s) {', '.join(unknown)} (supported:"
            f" {', '.join(declared) or 'none'})")


def ParamEnvName(name: str) -> str:
    """The environment variable of provider parameter ``name``."""
    return "EXTP_" + name.upper().replace("-", "_")


def ExtStorageEnvironment(vol_name: str, ext_params: dict[str, Any],
                          size: int | None = None, new_size: int | None = None,
                          metadata: str | None = None, name: str | None = None,
                          uuid: str | None = None, snap_name: str | None = None,
                          snap_size: int | None = None,
                          exclusive: bool | None = None) -> dict[str, str]:
    """The whole environment of a provider script (nothing is inherited)."""
    env = {"VOL_NAME": vol_name, "PATH": constants.ES_SCRIPT_PATH}
    optional = {"VOL_SIZE": size, "VOL_NEW_SIZE": new_size, "VOL_METADATA": metadata,
                "VOL_CNAME": name, "VOL_UUID": uuid, "VOL_SNAPSHOT_NAME": snap_name,
                "VOL_SNAPSHOT_SIZE": snap_size, "VOL_OPEN_EXCLUSIVE": exclusive}
    env.update({key: str(value) for key, value in optional.items() if value is not None})
    for pname, pvalue in ext_params.items():
        env[ParamEnvName(pname)] = str(pvalue)
    if pathutils.IsVirtualCluster():
        env[constants.GANETI_ROOTDIR_ENV] = pathutils.GetRootDirectory()
    return env


def _LogFileName(action: str, provider: str, vol_name: str) -> str:
    timestamp = time.strftime("%Y-%m-%d_%H_%M_%S")
    base_name = f"{action}-{provider}-{vol_name}-{timestamp}.log".replace("/", "_")
    return os.path.join(pathutils.LOG_ES_DIR, base_name)


def _WriteLog(action: str, provider: str, vol_name: str, text: str) -> str | None:
    """Keep a script's output in the ExtStorage log directory (best effort)."""
    path = _LogFileName(action, provider, vol_name)
    try:
        if not os.path.isdir(pathutils.LOG_ES_DIR):
            utils.MakeDirWithPerm(pathutils.LOG_ES_DIR, 0o750)
        with open(path, "a", encoding="utf-8", errors="replace") as fd:
            fd.write(text)
    except (OSError, errors.GenericError) as err:
        logging.warning("Cannot write the ExtStorage log file %s: %s", path, err)
        return None
    return path


def RunProviderScript(provider: objects.ExtStorage, action: str, env: dict[str, str],
                      args: Sequence[str] = (),
                      timeout: float = constants.ES_SCRIPT_TIMEOUT) -> str:
    """Run one of the provider's scripts; return its standard output.

    @raise ExtStorageError: if the provider has no such script, or it fails
        (naming the provider, the script, the exit status and quoting the
        last lines of its output)
    """
    if action not in constants.ES_SCRIPTS:
        raise errors.ProgrammerError(f"Unknown ExtStorage action '{action}'")
    script = getattr(provider, f"{action}_script", None)
    vol_name = env.get("VOL_NAME", "")
    if not script:
        raise ExtStorageError(f"ExtStorage provider '{provider.name}' has no"
                              f" '{action}' script")
    try:
        result = utils.RunCmd([script, *args], env=env, cwd=provider.path,
                              reset_env=True, timeout=timeout)
    except errors.OpExecError as err:
        raise ExtStorageError(f"Cannot run the {action} script of ExtStorage provider"
                              f" '{provider.name}': {err}") from err
    logfile = None
    if action != constants.ES_ACTION_ATTACH or result.failed:
        logfile = _WriteLog(action, provider.name, vol_name, result.output)
    if result.failed:
        tail = result.output.rstrip("\n").splitlines()[-constants.ES_LOG_TAIL_LINES:]
        where = f" (log file {logfile})" if logfile else ""
        raise ExtStorageError(
            f"ExtStorage provider '{provider.name}': the {action} script failed for"
            f" volume '{vol_name}' ({result.fail_reason}){where}; last output lines:\n"
            + ("\n".join(tail) if tail else "(no output)"))
    return result.stdout


def ParseAttachOutput(text: str) -> tuple[str | None, list[str]]:
    """(block device path or None, ["<hypervisor>:<uri>", ...]) of attach's
    output: the first line is the device (empty: none), the others URIs."""
    lines = text.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        return None, []
    dev_path = lines[0].strip() or None
    return dev_path, [line.strip() for line in lines[1:] if line.strip()]


def SanitizeMetadata(text: str) -> str:
    """What setinfo gets as VOL_METADATA: at most 128 characters of
    [-A-Za-z0-9_+.], not starting with "-"."""
    text = re.sub(r"[^-A-Za-z0-9_+.]", "_", text)
    if text.startswith("-"):
        text = "_" + text[1:]
    return text[:128]


# --- The device ------------------------------------------------------------------------


def _CheckUniqueId(unique_id: Any) -> tuple[str, str]:
    if not isinstance(unique_id, (tuple, list)) or len(unique_id) != 2:
        base.ThrowError("Invalid ext disk logical_id %r: expected (provider,"
                        " volume name)", unique_id)
    provider, vol_name = unique_id
    _CheckProviderName(provider)
    if not isinstance(vol_name, str) or not vol_name or "\n" in vol_name:
        base.ThrowError("Invalid ExtStorage volume name %r", vol_name)
    return provider, vol_name


def _CheckSize(size: Any, what: str) -> int:
    if not isinstance(size, int) or isinstance(size, bool) or size <= 0:
        base.ThrowError("Invalid size %r for %s: must be a positive integer (MiB)",
                        size, what)
    return size


class ExtStorageDevice(base.BlockDev):
    """A volume of an ExtStorage provider; ``unique_id`` is (provider, volume).

    Building the object runs ``attach`` (as in Ganeti: the volume is mapped
    on this node), so ``attached`` tells whether the volume is usable here.
    A missing or invalid provider raises; a failing ``attach`` only leaves
    the device unattached (:attr:`attach_error` says why).
    """

    #: The disk's name and UUID (VOL_CNAME, VOL_UUID), if known
    name: str | None
    uuid: str | None
    #: The "<hypervisor>:<uri>" lines of attach's output
    uris: list[str]
    #: Why the last Attach failed (None if it did not)
    attach_error: str | None

    def __init__(self, unique_id, children, size, params, dyn_params=None, **kwargs):
        super().__init__(unique_id, children, size, params, dyn_params, **kwargs)
        self.driver, self.vol_name = _CheckUniqueId(unique_id)
        self.name = kwargs.get("name")
        self.uuid = kwargs.get("uuid")
        self.provider = LoadProvider(self.driver)
        self.ext_params = SplitDiskParams(self.provider, params)
        self.uris = []
        self.attach_error = None
        self.Attach()

    def __repr__(self) -> str:
        return (f"<ExtStorageDevice: provider={self.driver!r}, volume={self.vol_name!r},"
                f" dev_path={self.dev_path!r}, size={self.size}>")

    def _Env(self, **kwargs: Any) -> dict[str, str]:
        return ExtStorageEnvironment(self.vol_name, self.ext_params, name=self.name,
                                     uuid=self.uuid, **kwargs)

    def _Run(self, action: str, args: Sequence[str] = (), **kwargs: Any) -> str:
        return RunProviderScript(self.provider, action, self._Env(**kwargs), args)

    @classmethod
    def Create(cls, unique_id, children, size, spindles, params, excl_stor,
               dyn_params=None, **kwargs):
        """Check the parameters (also with ``verify``), run ``create``, attach."""
        if excl_stor:
            base.ThrowError("Exclusive storage is not supported by ext disks")
        provider_name, vol_name = _CheckUniqueId(unique_id)
        _CheckSize(size, f"ext volume {vol_name}")
        provider = LoadProvider(provider_name)
        ext_params = SplitDiskParams(provider, params)
        CheckExtParams(provider, ext_params)
        env = ExtStorageEnvironment(vol_name, ext_params, name=kwargs.get("name"),
                                    uuid=kwargs.get("uuid"))
        RunProviderScript(provider, constants.ES_ACTION_VERIFY, env,
                          [constants.ES_VERIFY_PARAMETERS])
        RunProviderScript(provider, constants.ES_ACTION_CREATE,
                          dict(env, VOL_SIZE=str(size)))
        dev = cls(unique_id, children, size, params, dyn_params, **kwargs)
        if not dev.attached:
            try:
                dev.Remove()
            except errors.BlockDeviceError as err:
                logging.warning("Cannot remove ext volume %s after failing to attach"
                                " it: %s", vol_name, err)
            base.ThrowError("Cannot attach ext volume %s after creating it: %s",
                            vol_name, dev.attach_error)
        return dev

    def Attach(self, **kwargs: Any) -> bool:
        """Run ``attach``; found if it names a block device (or a URI)."""
        self.attached = False
        self.dev_path = self.major = self.minor = None
        self.uris = []
        try:
            dev_path, uris = ParseAttachOutput(self._Run(constants.ES_ACTION_ATTACH))
            if dev_path is None and not uris:
                raise ExtStorageError(
                    f"The attach script of ExtStorage provider '{self.driver}' gave"
                    f" neither a block device nor a userspace URI for volume"
                    f" '{self.vol_name}'")
            if dev_path is not None:
                st = StatBlockDevice(dev_path)
                self.major, self.minor = os.major(st.st_rdev), os.minor(st.st_rdev)
        except errors.BlockDeviceError as err:
            self.attach_error = str(err)
            logging.info("Cannot attach ext volume %s: %s", self.vol_name, err)
            return False
        self.attach_error = None
        self.dev_path, self.uris, self.attached = dev_path, uris, True
        return True

    def Assemble(self) -> None:
        """The device is usable once attached."""
        if not self.attached and not self.Attach():
            base.ThrowError("%s", self.attach_error)

    def Shutdown(self) -> None:
        """Run ``detach`` (idempotent); the volume stays."""
        self._Run(constants.ES_ACTION_DETACH)
        self.attached = False
        self.dev_path = self.major = self.minor = None

    def Remove(self) -> None:
        """Run ``remove``: the volume and its data are gone."""
        self._Run(constants.ES_ACTION_REMOVE)
        self.attached = False
        self.dev_path = self.major = self.minor = None

    def Rename(self, new_id):
        """ExtStorage volumes keep their names."""
        base.ThrowError("Rename is not supported for ext disks (volume %s of provider"
                        " %s)", self.vol_name, self.driver)

    def Open(self, force: bool = False, exclusive: bool = True) -> None:
        """Run ``open`` if the provider has it."""
        if self.provider.open_script:
            self._Run(constants.ES_ACTION_OPEN, exclusive=bool(exclusive))

    def Close(self) -> None:
        """Run ``close`` if the provider has it."""
        if self.provider.close_script:
            self._Run(constants.ES_ACTION_CLOSE)

    def Grow(self, amount, dryrun, backingstore, excl_stor):
        """Run ``grow`` from the disk's size to ``amount`` MiB more."""
        if not backingstore:
            return
        if not isinstance(amount, int) or isinstance(amount, bool) or amount < 0:
            base.ThrowError("Invalid amount %r to grow ext volume %s: must be a"
                            " non-negative integer (MiB)", amount, self.vol_name)
        if not self.attached and not self.Attach():
            base.ThrowError("Cannot grow ext volume %s: %s", self.vol_name,
                            self.attach_error)
        if dryrun or amount == 0:
            # Providers have no dry run; nothing to check here
            return
        new_size = self.size + amount
        self._Run(constants.ES_ACTION_GROW, size=self.size, new_size=new_size)
        self.size = new_size

    def SetInfo(self, text: str) -> None:
        """Run ``setinfo`` with the (sanitised) metadata."""
        self._Run(constants.ES_ACTION_SETINFO, metadata=SanitizeMetadata(text))

    def Snapshot(self, snap_name=None, snap_size=None):
        """Run ``snapshot``; return the snapshot's (provider, volume name)."""
        if not self.provider.snapshot_script:
            base.ThrowError("ExtStorage provider '%s' does not support snapshots",
                            self.driver)
        snap_name = snap_name or f"{self.vol_name}.snap"
        snap_size = snap_size or self.size
        self._Run(constants.ES_ACTION_SNAPSHOT, snap_name=snap_name,
                  snap_size=snap_size)
        return (self.driver, snap_name)

    def VerifyParams(self) -> None:
        """Run ``verify parameters`` on the disk's provider parameters."""
        CheckExtParams(self.provider, self.ext_params)
        self._Run(constants.ES_ACTION_VERIFY, [constants.ES_VERIFY_PARAMETERS])

    def GetActualSize(self) -> int:
        """The size in bytes of the attached block device."""
        if not self.attached and not self.Attach():
            base.ThrowError("Cannot get the size of ext volume %s: %s", self.vol_name,
                            self.attach_error)
        if self.dev_path is None:
            base.ThrowError("Ext volume %s has no block device on this node (userspace"
                            " access only)", self.vol_name)
        assert self.dev_path is not None
        return GetBlockDeviceSize(self.dev_path)

    def GetSyncStatus(self) -> objects.BlockDevStatus:
        """Never syncing; an unattached volume is faulty."""
        status = super().GetSyncStatus()
        if not self.attached:
            status.is_degraded = True
            status.ldisk_status = base.LDS_FAULTY
        return status

    def GetUserspaceAccessUri(self, hypervisor: str) -> str | None:
        """For ``access=userspace`` disks: the URI attach gave for the
        hypervisor (None for kernelspace disks).

        @raise errors.BlockDeviceError: if the provider gave none
        """
        if (self.params or {}).get(_ACCESS) != constants.DISK_USERSPACE:
            return None
        if not self.attached and not self.Attach():
            base.ThrowError("Cannot attach ext volume %s: %s", self.vol_name,
                            self.attach_error)
        prefix = f"{hypervisor.lower()}:"
        for uri in self.uris:
            if uri.lower().startswith(prefix):
                return uri[len(prefix):]
        base.ThrowError("ExtStorage provider '%s' gives no userspace access URI for the"
                        " '%s' hypervisor (volume %s)", self.driver, hypervisor,
                        self.vol_name)
        raise AssertionError  # unreachable, for type checkers
