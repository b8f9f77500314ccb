"""The OS API on the node: finding OS definitions, their environment, scripts.

An OS definition is a directory named after the OS in one of the
directories of ``pathutils.OS_SEARCH_PATH``, holding (see
ganeti-os-interface(7)) ``ganeti_api_version`` (versions 10, 15 and/or 20,
newest first), the scripts ``create`` (or Ganeti's optional
``create_untrusted``), ``import``, ``export``, ``rename`` and, from API 20,
``verify``; optionally ``variants.list`` (API 15+), ``parameters.list``
(API 20) and ``os_version``. Names may carry a variant: ``name+variant``.

Scripts run with a clean environment (:func:`OSEnvironment`), the OS
directory as working directory and a timeout; their output goes to a log
file under ``pathutils.LOG_OS_DIR`` named ``<kind>-<os>-<instance>-<time>.log``
as Ganeti names them, whose last lines (and path) a failure quotes.
"""

from __future__ import annotations

import logging
import os
import stat
import time
from typing import Any
from collections.abc import Sequence

from ganeti import constants, errors, objects, pathutils, utils
from ganeti.backend import Fail, RPCFail


class OSDefinitionError(Exception):
    """An OS definition is missing or invalid; the argument is the message."""


def _CheckOsName(name: Any) -> str:
    if not isinstance(name, str) or not name:
        raise OSDefinitionError(f"Invalid OS name {name!r}")
    base_name = objects.OS.GetName(name)
    if not base_name or "/" in base_name or base_name in (".", "..") \
            or base_name.startswith("."):
        raise OSDefinitionError(f"Invalid OS name '{name}'")
    return base_name


def _FindOsDir(name: str, search_path: Sequence[str] | None) -> str:
    dirs = list(search_path) if search_path is not None else pathutils.OS_SEARCH_PATH
    for directory in dirs:
        path = os.path.join(directory, name)
        if os.path.isdir(path):
            return path
    raise OSDefinitionError(f"OS '{name}' not found in the OS search path"
                   f" ({', '.join(dirs) or 'empty'})")


def _ReadApiVersions(os_dir: str) -> list[int]:
    api_file = os.path.join(os_dir, constants.OS_API_FILE)
    try:
        text = utils.ReadFile(api_file)
    except FileNotFoundError:
        raise OSDefinitionError(f"Required file '{constants.OS_API_FILE}' not found in"
                       f" {os_dir}") from None
    except OSError as err:
        raise OSDefinitionError(f"Error while reading the API version file {api_file}:"
                       f" {err}") from err
    try:
        versions = [int(line) for line in utils.FilterEmptyLinesAndComments(text)]
    except ValueError:
        raise OSDefinitionError(f"API version file {api_file} must hold integers, one"
                       f" per line, got {text.strip()!r}") from None
    if not set(versions) & constants.OS_API_VERSIONS:
        raise OSDefinitionError(f"API version mismatch for path '{os_dir}': found"
                       f" {versions}, want one of"
                       f" {sorted(constants.OS_API_VERSIONS)}")
    return versions


def _ReadListFile(path: str) -> list[str]:
    try:
        return utils.FilterEmptyLinesAndComments(utils.ReadFile(path))
    except FileNotFoundError:
        return []
    except OSError as err:
        raise OSDefinitionError(f"Error while reading {path}: {err}") from err


def _CheckFiles(os_dir: str, api: int) -> dict[str, str | None]:
    """Return file kind -> path (None if optional and missing)."""
    # file -> required
    wanted = {
        constants.OS_SCRIPT_CREATE: False,
        constants.OS_SCRIPT_CREATE_UNTRUSTED: False,
        constants.OS_SCRIPT_IMPORT: True,
        constants.OS_SCRIPT_EXPORT: True,
        constants.OS_SCRIPT_RENAME: True,
    }
    if api >= constants.OS_API_V20:
        wanted[constants.OS_SCRIPT_VERIFY] = True
    found: dict[str, str | None] = {}
    for name, required in wanted.items():
        path = os.path.join(os_dir, name)
        try:
            st = os.stat(path)
        except FileNotFoundError:
            if required:
                raise OSDefinitionError(f"Script '{name}' not found in {os_dir}") from None
            found[name] = None
            continue
        except OSError as err:
            raise OSDefinitionError(f"Cannot stat script {path}: {err}") from err
        if not stat.S_ISREG(st.st_mode):
            raise OSDefinitionError(f"Script '{name}' in {os_dir} is not a regular file")
        if not st.st_mode & stat.S_IXUSR:
            raise OSDefinitionError(f"Script '{name}' in {os_dir} is not executable")
        found[name] = path
    if found[constants.OS_SCRIPT_CREATE] is None and \
            found[constants.OS_SCRIPT_CREATE_UNTRUSTED] is None:
        raise OSDefinitionError(f"Neither '{constants.OS_SCRIPT_CREATE}' nor"
                       f" '{constants.OS_SCRIPT_CREATE_UNTRUSTED}' script found in"
                       f" {os_dir}")
    return found


def ReadOsVersion(os_dir: str) -> str | None:
    """The first line of the optional ``os_version`` file, or None."""
    lines = _ReadListFile(os.path.join(os_dir, constants.OS_VERSION_FILE))
    return lines[0] if lines else None


def TryOSFromDisk(name: str, base_dir: str | None = None
                  ) -> tuple[bool, objects.OS | str]:
    """Load an OS definition; return (True, OS) or (False, why not)."""
    try:
        return True, OSFromDiskOrRaise(name, base_dir)
    except OSDefinitionError as err:
        return False, str(err)


def OSFromDiskOrRaise(name: str, base_dir: str | None = None) -> objects.OS:
    """Load an OS definition (the variant part of ``name`` is ignored).

    @raise OSDefinitionError: naming what is missing or wrong
    """
    base_name = _CheckOsName(name)
    os_dir = _FindOsDir(base_name, None if base_dir is None else [base_dir])
    versions = _ReadApiVersions(os_dir)
    api = max(set(versions) & constants.OS_API_VERSIONS)
    files = _CheckFiles(os_dir, api)
    variants: list[str] = []
    if api >= constants.OS_API_V15:
        variants = _ReadListFile(os.path.join(os_dir, constants.OS_VARIANTS_FILE))
    parameters: list[list[str]] = []
    if api >= constants.OS_API_V20:
        param_file = os.path.join(os_dir, constants.OS_PARAMETERS_FILE)
        if not os.path.exists(param_file):
            raise OSDefinitionError(f"Required file '{constants.OS_PARAMETERS_FILE}' not"
                           f" found in {os_dir}")
        for line in _ReadListFile(param_file):
            parts = line.split(None, 1)
            parameters.append([parts[0], parts[1].strip() if len(parts) > 1 else ""])
    return objects.OS(
        name=base_name, path=os_dir, api_versions=versions,
        create_script=files[constants.OS_SCRIPT_CREATE],
        create_script_untrusted=files[constants.OS_SCRIPT_CREATE_UNTRUSTED],
        export_script=files[constants.OS_SCRIPT_EXPORT],
        import_script=files[constants.OS_SCRIPT_IMPORT],
        rename_script=files[constants.OS_SCRIPT_RENAME],
        verify_script=files.get(constants.OS_SCRIPT_VERIFY),
        supported_variants=variants, supported_parameters=parameters)


def OSFromDisk(name: str, base_dir: str | None = None) -> objects.OS:
    """Like OSFromDiskOrRaise, failing the RPC call instead."""
    try:
        return OSFromDiskOrRaise(name, base_dir)
    except OSDefinitionError as err:
        Fail("%s", err, log=False)


def ApiVersion(inst_os: objects.OS) -> int:
    """The newest API version both sides speak."""
    return max(set(inst_os.api_versions) & constants.OS_API_VERSIONS)


def CheckOSVariant(inst_os: objects.OS, name: str) -> None:
    """Fail unless ``name`` carries a variant the OS supports (if it has any)."""
    if ApiVersion(inst_os) < constants.OS_API_V15 or not inst_os.supported_variants:
        return
    variant = objects.OS.GetVariant(name)
    if not variant:
        Fail("OS '%s' requires a variant (one of: %s), e.g. %s+%s", name,
             ", ".join(inst_os.supported_variants), inst_os.name,
             inst_os.supported_variants[0], log=False)
    if variant not in inst_os.supported_variants:
        Fail("Unsupported OS variant '%s' of OS '%s' (supported: %s)", variant,
             inst_os.name, ", ".join(inst_os.supported_variants), log=False)


def CheckOSParams(inst_os: objects.OS, params: dict[str, Any]) -> None:
    """Fail if ``params`` holds parameters the OS does not declare."""
    known = {p[0] for p in inst_os.supported_parameters or []}
    unknown = sorted(set(params) - known)
    if unknown:
        Fail("The following parameters are not supported by the OS %s: %s"
             " (supported: %s)", inst_os.name, ", ".join(unknown),
             ", ".join(sorted(known)) or "none", log=False)


def _ParamEnvName(name: str) -> str:
    return "OSP_" + name.upper().replace("-", "_")


def OSCoreEnv(os_name: str, inst_os: objects.OS, os_params: dict[str, Any],
              debug: int = 0) -> dict[str, str]:
    """The variables every script gets: API version, name, variant, OSP_*."""
    if debug not in constants.OS_DEBUG_LEVELS:
        Fail("Invalid debug level %r for OS scripts (valid: %s)", debug,
             ", ".join(map(str, sorted(constants.OS_DEBUG_LEVELS))))
    api = ApiVersion(inst_os)
    env = {
        "OS_API_VERSION": str(api),
        "OS_NAME": inst_os.name,
        "DEBUG_LEVEL": str(debug),
        "PATH": constants.OS_SCRIPT_PATH,
    }
    if api >= constants.OS_API_V15 and inst_os.supported_variants:
        env["OS_VARIANT"] = objects.OS.GetVariant(os_name) or \
            inst_os.supported_variants[0]
    if api >= constants.OS_API_V20:
        for pname, pvalue in (os_params or {}).items():
            env[_ParamEnvName(pname)] = str(pvalue)
    return env


def _DiskEnv(idx: int, disk: objects.Disk, dev_path: str | None,
             hvparams: dict[str, Any]) -> dict[str, str]:
    prefix = f"DISK_{idx}_"
    env = {prefix + "ACCESS": disk.mode or constants.DISK_RDWR,
           prefix + "SIZE": str(disk.size)}
    if dev_path:
        env[prefix + "PATH"] = dev_path
    if disk.uuid:
        env[prefix + "UUID"] = disk.uuid
    if disk.name:
        env[prefix + "NAME"] = disk.name
    if disk.dev_type in constants.DTS_FILEBASED:
        env[prefix + "BACKEND_TYPE"] = f"file:{disk.logical_id[0]}"
    else:
        env[prefix + "BACKEND_TYPE"] = constants.DISK_BACKEND_BLOCK
    if hvparams.get(constants.HV_DISK_TYPE):
        env[prefix + "FRONTEND_TYPE"] = str(hvparams[constants.HV_DISK_TYPE])
    return env


_NETINFO_VARS = {
    "name": "NAME", "uuid": "UUID", "network": "SUBNET", "gateway": "GATEWAY",
    "network6": "SUBNET6", "gateway6": "GATEWAY6", "mac_prefix": "MAC_PREFIX",
    "family": "FAMILY",
}


def _NicEnv(idx: int, nic: objects.NIC, hvparams: dict[str, Any]) -> dict[str, str]:
    prefix = f"NIC_{idx}_"
    params = objects.FillDict(constants.NICC_DEFAULTS, nic.nicparams or {})
    env = {prefix + "MAC": nic.mac or "", prefix + "MODE": params[constants.NIC_MODE],
           prefix + "LINK": params[constants.NIC_LINK] or ""}
    if nic.ip:
        env[prefix + "IP"] = nic.ip
    if nic.uuid:
        env[prefix + "UUID"] = nic.uuid
    if nic.name:
        env[prefix + "NAME"] = nic.name
    if params[constants.NIC_MODE] == constants.NIC_MODE_BRIDGED:
        env[prefix + "BRIDGE"] = params[constants.NIC_LINK] or ""
    if params.get(constants.NIC_VLAN):
        env[prefix + "VLAN"] = str(params[constants.NIC_VLAN])
    if hvparams.get(constants.HV_NIC_TYPE):
        env[prefix + "FRONTEND_TYPE"] = str(hvparams[constants.HV_NIC_TYPE])
    netinfo = nic.netinfo or {}
    for key, suffix in _NETINFO_VARS.items():
        if netinfo.get(key):
            env[f"{prefix}NETWORK_{suffix}"] = str(netinfo[key])
    if netinfo:
        # As Ganeti: the tags of a NIC's network are exported even when empty
        env[prefix + "NETWORK_TAGS"] = " ".join(netinfo.get("tags") or [])
    return env


def OSEnvironment(instance: objects.Instance, inst_os: objects.OS, debug: int = 0,
                  disk_paths: Sequence[str | None] | None = None) -> dict[str, str]:
    """The environment of an OS script for ``instance``.

    ``instance.disks`` holds Disk objects; ``disk_paths`` their node-local
    device paths (looked up when not given).
    """
    osparams = dict(instance.osparams or {})
    osparams.update(instance.osparams_private or {})
    env = OSCoreEnv(instance.os, inst_os, osparams, debug)
    hvparams = instance.hvparams or {}
    env["INSTANCE_NAME"] = instance.name
    env["INSTANCE_OS"] = instance.os
    env["HYPERVISOR"] = instance.hypervisor
    disks: list[Any] = list(instance.disks or [])
    if disk_paths is None:
        from ganeti.backend import storage  # the OS API needs the devices
        disk_paths = [storage.FindOrFail(d).dev_path for d in disks]
    env["DISK_COUNT"] = str(len(disks))
    for idx, (disk, path) in enumerate(zip(disks, disk_paths)):
        env.update(_DiskEnv(idx, disk, path, hvparams))
    nics = list(instance.nics or [])
    env["NIC_COUNT"] = str(len(nics))
    for idx, nic in enumerate(nics):
        env.update(_NicEnv(idx, nic, hvparams))
    for source, kind in ((instance.beparams or {}, "BE"), (hvparams, "HV")):
        for key, value in source.items():
            env[f"INSTANCE_{kind}_{key}"] = str(value)
    return env


def InstanceLogName(kind: str, os_name: str, instance_name: str,
                    component: str | None = None) -> str:
    """The log file of one OS script run, as Ganeti names it."""
    suffix = f"-{component}" if component else ""
    timestamp = time.strftime("%Y-%m-%d_%H_%M_%S")
    base = f"{kind}-{os_name}-{instance_name}{suffix}-{timestamp}.log"
    return os.path.join(pathutils.LOG_OS_DIR, base.replace("/", "_"))


def RunOSScript(kind: str, script: str | None, instance_name: str,
                inst_os: objects.OS, os_name: str, env: dict[str, str],
                timeout: float = constants.OS_SCRIPT_TIMEOUT,
                args: Sequence[str] = ()) -> str:
    """Run an OS script logging to a fresh log file; return the log's path.

    @raise RPCFail: if it fails, quoting the log's last lines and its path
    """
    if not script:
        Fail("OS '%s' has no %s script", inst_os.name, kind)
    logfile = InstanceLogName(kind, os_name, instance_name)
    if not os.path.isdir(pathutils.LOG_OS_DIR):
        # With ensure-dirs' mode (the daemon's umask would give 0700, which
        # cluster verify reports as ENODEFILEPERMS)
        try:
            utils.MakeDirWithPerm(pathutils.LOG_OS_DIR, 0o750)
        except errors.GenericError as err:
            Fail("Cannot create the OS log directory %s: %s", pathutils.LOG_OS_DIR, err)
    try:
        result = utils.RunCmd([script, *args], env=env, cwd=inst_os.path, output=logfile,
                              reset_env=True, timeout=timeout)
    except errors.OpExecError as err:
        Fail("Cannot run the OS %s script of %s: %s", kind, inst_os.name, err)
    if result.failed:
        try:
            tail = utils.TailFile(logfile, lines=constants.OS_LOG_TAIL_LINES)
        except OSError:
            tail = []
        Fail("OS %s script failed (%s), last lines in the log file %s:\n%s", kind,
             result.fail_reason, logfile, "\n".join(tail))
    return logfile


# --- RPC calls ------------------------------------------------------------------------


def DiagnoseOS(top_dirs: Sequence[str] | None = None) -> list[list[Any]]:
    """Every OS found: [name, path, status, diagnose, variants, parameters,
    api_versions, trusted, os_version] (Ganeti's eight fields, plus the
    ``os_version`` the master compares across nodes)."""
    result = []
    for directory in top_dirs if top_dirs is not None else pathutils.OS_SEARCH_PATH:
        try:
            names = utils.ListVisibleFiles(directory)
        except FileNotFoundError:
            continue
        except OSError as err:
            logging.warning("Cannot list OS directory %s: %s", directory, err)
            continue
        for name in names:
            path = os.path.join(directory, name)
            ok, value = TryOSFromDisk(name, base_dir=directory)
            if ok:
                assert isinstance(value, objects.OS)
                result.append([name, path, True, "", value.supported_variants,
                               value.supported_parameters, value.api_versions,
                               value.create_script_untrusted is None,
                               ReadOsVersion(path)])
            else:
                result.append([name, path, False, value, [], [], [], True, None])
    return result


def OSGet(name: str) -> dict[str, Any]:
    """The OS definition ``name`` as a dict of objects.OS."""
    return OSFromDisk(name).ToDict()


def ValidateOS(required: bool, osname: str, checks: Sequence[str],
               osparams: dict[str, Any], force_variant: bool) -> bool:
    """Check an OS and its parameters here; False if absent and not required."""
    try:
        inst_os = OSFromDiskOrRaise(osname)
    except OSDefinitionError as err:
        if required:
            Fail("%s", err, log=False)
        return False
    if not force_variant:
        CheckOSVariant(inst_os, osname)
    if ApiVersion(inst_os) < constants.OS_API_V20:
        return True
    unknown = sorted(set(checks) - constants.OS_VALIDATE_CALLS)
    if unknown:
        Fail("Unknown checks required for OS %s: %s", osname, ", ".join(unknown))
    if not isinstance(osparams, dict):
        Fail("OS parameters must be a dict, got %r", osparams)
    CheckOSParams(inst_os, osparams)
    if constants.OS_VALIDATE_PARAMETERS in checks:
        env = OSCoreEnv(osname, inst_os, osparams)
        try:
            result = utils.RunCmd([str(inst_os.verify_script), *checks], env=env,
                                  cwd=inst_os.path, reset_env=True,
                                  timeout=constants.OS_VERIFY_TIMEOUT)
        except errors.OpExecError as err:
            Fail("Cannot run the verify script of OS %s: %s", osname, err)
        if result.failed:
            Fail("OS validation script failed (%s), output: %s", result.fail_reason,
                 result.output.strip(), log=False)
    return True


__all__ = ["RPCFail", "OSFromDisk", "OSFromDiskOrRaise", "TryOSFromDisk",
           "OSEnvironment", "OSCoreEnv", "RunOSScript", "DiagnoseOS", "OSGet",
           "ValidateOS", "CheckOSVariant", "CheckOSParams", "InstanceLogName"]
