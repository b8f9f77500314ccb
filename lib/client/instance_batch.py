"""gnt-instance batch-create: create the instances a JSON file describes.

The file holds, as in Ganeti 3.0, a list of objects whose keys are the
parameters of OpInstanceCreate (``instance_name``, ``disk_template``,
``os_type``, ``disks``, ``nics``, ``beparams``, ``hvparams``, ``pnode``,
``snode``, ...). ``mode`` defaults to "create" and ``nics`` to one NIC
with the cluster's defaults. The allocator is chosen for the whole batch
(``-I``), never per instance.

The older format (Ganeti 2.0 to 2.6) is accepted too: an object mapping
each instance name to a specification with the keys of
:data:`LEGACY_KEYS` (``template``, ``os``, ``disk_size``, ``backend``,
``primary_node``, ...); it is translated to the same opcodes.

Everything goes to the master as one OpInstanceMultiAlloc job, which places
the instances and submits one creation job per instance; the command then
waits for those jobs and reports each instance.
"""

from __future__ import annotations

import json
from typing import Any

from ganeti import cli, constants, errors, opcodes, utils
from ganeti.cli import SUBMIT_OPTS, ArgFile, ToStderr, ToStdout
from ganeti.cli.options import IALLOCATOR_OPT

#: Keys of the older format -> the OpInstanceCreate parameter they set
#: (None: handled specially)
LEGACY_KEYS: dict[str, str | None] = {
    "template": "disk_template",
    "os": "os_type",
    "disk_size": None,
    "disks": "disks",
    "ram": None,
    "vcpus": None,
    "backend": None,
    "hypervisor": "hypervisor",
    "hvparams": "hvparams",
    "iallocator": None,
    "primary_node": "pnode",
    "secondary_node": "snode",
    "nics": None,
    "ip": None,
    "mac": None,
    "mode": None,
    "link": None,
    "bridge": None,
    "start": "start",
    "ip_check": "ip_check",
    "name_check": "name_check",
    "file_storage_dir": "file_storage_dir",
    "file_driver": "file_driver",
    "force_variant": "force_variant",
    "tags": "tags",
}

#: The per-NIC keys of the older format (they describe a single NIC)
_LEGACY_NIC_KEYS = ("ip", "mac", "mode", "link", "bridge")


def _Inval(msg: str) -> errors.OpPrereqError:
    return errors.OpPrereqError(msg, errors.ECODE_INVAL)


def _Size(value: Any, what: str) -> Any:
    """A size given as text ("1G", "1024") in mebibytes; numbers unchanged."""
    if isinstance(value, str):
        try:
            return utils.ParseUnit(value)
        except errors.UnitParseError as err:
            raise _Inval(f"Invalid {what} '{value}': {err}") from None
    return value


def _FixSizes(params: dict[str, Any], label: str) -> dict[str, Any]:
    """Disk sizes and memory sizes given as text, in mebibytes."""
    params = dict(params)
    disks = params.get("disks")
    if isinstance(disks, list):
        params["disks"] = [
            dict(disk, size=_Size(disk["size"], f"size of disk {idx} of {label}"))
            if isinstance(disk, dict) and "size" in disk else disk
            for idx, disk in enumerate(disks)]
    beparams = params.get("beparams")
    if isinstance(beparams, dict):
        params["beparams"] = {
            key: _Size(value, f"{key} of {label}")
            if key in (constants.BE_MAXMEM, constants.BE_MINMEM, constants.BE_MEMORY)
            else value for key, value in beparams.items()}
    return params


def _LegacySpec(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    """OpInstanceCreate parameters of one entry of the older format."""
    unknown = sorted(set(spec) - set(LEGACY_KEYS))
    if unknown:
        raise _Inval(f"Unknown key(s) in the definition of instance {name}:"
                     f" {utils.CommaJoin(unknown)} (allowed:"
                     f" {utils.CommaJoin(sorted(LEGACY_KEYS))})")
    params: dict[str, Any] = {"instance_name": name}
    for key, param in LEGACY_KEYS.items():
        if param is not None and key in spec:
            params[param] = spec[key]
    if "disk_size" in spec:
        if "disks" in spec:
            raise _Inval(f"Instance {name}: give either 'disk_size' or 'disks'")
        sizes = spec["disk_size"]
        if not isinstance(sizes, list):
            sizes = [sizes]
        params["disks"] = [{constants.IDISK_SIZE: size} for size in sizes]
    backend = spec.get("backend", {})
    if not isinstance(backend, dict):
        raise _Inval(f"Instance {name}: 'backend' must be an object")
    backend = dict(backend)
    if "ram" in spec:
        backend.setdefault(constants.BE_MAXMEM, spec["ram"])
        backend.setdefault(constants.BE_MINMEM, spec["ram"])
    if "vcpus" in spec:
        backend.setdefault(constants.BE_VCPUS, spec["vcpus"])
    if backend:
        params["beparams"] = backend
    single_nic = {key: spec[key] for key in _LEGACY_NIC_KEYS if key in spec}
    if "nics" in spec:
        if single_nic:
            raise _Inval(f"Instance {name}: 'nics' cannot be combined with the"
                         f" single-NIC keys ({utils.CommaJoin(sorted(single_nic))})")
        params["nics"] = spec["nics"]
    elif single_nic:
        params["nics"] = [single_nic]
    return params


def _LegacyIallocator(data: dict[str, Any]) -> str | None:
    """The allocator the older format names (per instance; all must agree)."""
    chosen = {spec.get("iallocator") for spec in data.values()
              if isinstance(spec, dict)}
    if len(chosen) > 1:
        raise _Inval("The instances name different iallocators"
                     f" ({utils.CommaJoin(sorted(str(c) for c in chosen))}); one"
                     " allocator places the whole batch")
    return chosen.pop() if chosen else None


def _MakeOp(params: dict[str, Any], label: str) -> opcodes.OpInstanceCreate:
    """An OpInstanceCreate from ``params``, checked; errors name ``label``."""
    params = _FixSizes(params, label)
    params.setdefault("mode", constants.INSTANCE_CREATE)
    params.setdefault("nics", [{}])
    try:
        op = opcodes.OpInstanceCreate(**params)
        op.Validate(False)
    except (errors.OpPrereqError, errors.TypeEnforcementError) as err:
        raise _Inval(f"Invalid definition of {label}: {err.args[0]}") from None
    return op


def ParseBatchDefinition(text: str) -> tuple[list[opcodes.OpInstanceCreate], str | None]:
    """The creation opcodes of a batch file's contents, and the allocator
    the (older format) file names, if any.

    @raise errors.OpPrereqError: for bad JSON, a wrong structure, unknown
        keys or bad values, naming the instance and the problem
    """
    try:
        data = json.loads(text)
    except ValueError as err:
        raise _Inval(f"Can't parse the instance definition file: {err}") from None
    allowed = set(opcodes.OpInstanceCreate.GetAllSlots()) - {"iallocator"}
    ops: list[opcodes.OpInstanceCreate] = []
    if isinstance(data, list):
        for idx, entry in enumerate(data):
            if not isinstance(entry, dict):
                raise _Inval(f"Definition {idx} is not an object but"
                             f" {type(entry).__name__}")
            label = f"instance {entry.get('instance_name', '')} (definition {idx})"
            if "iallocator" in entry:
                raise _Inval(f"Definition {idx}: 'iallocator' cannot be set per"
                             " instance; use the --iallocator option for the batch")
            unknown = sorted(set(entry) - allowed)
            if unknown:
                raise _Inval(f"Unknown field(s) in definition {idx}:"
                             f" {utils.CommaJoin(unknown)}")
            ops.append(_MakeOp(entry, label))
        iallocator = None
    elif isinstance(data, dict):
        for name, spec in data.items():
            if not isinstance(spec, dict):
                raise _Inval(f"The definition of instance {name} is not an object")
            ops.append(_MakeOp(_LegacySpec(name, spec), f"instance {name}"))
        iallocator = _LegacyIallocator(data)
    else:
        raise _Inval("The instance definition file must hold a list of instance"
                     f" definitions (objects), not {type(data).__name__}")
    if not ops:
        raise _Inval("The instance definition file defines no instances")
    names = [op.instance_name for op in ops]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise _Inval(f"Instances defined more than once: {utils.CommaJoin(duplicates)}")
    return ops, iallocator


def BatchCreate(opts: Any, args: list[str]) -> int:
    """Create the instances of a JSON definition file, all placed at once."""
    (filename,) = args
    try:
        text = utils.ReadFile(filename)
    except OSError as err:
        ToStderr("Can't read the instance definition file %s: %s", filename,
                 err.strerror or err)
        return constants.EXIT_FAILURE
    ops, file_iallocator = ParseBatchDefinition(text)
    if opts.iallocator and file_iallocator and opts.iallocator != file_iallocator:
        raise _Inval(f"The file names the iallocator '{file_iallocator}' but"
                     f" --iallocator gives '{opts.iallocator}'")
    cl = cli.GetClient()
    op = opcodes.OpInstanceMultiAlloc(iallocator=opts.iallocator or file_iallocator,
                                      instances=ops)
    result = cli.SubmitOrSend(op, opts, cl=cl)
    if not isinstance(result, dict):
        # A dry run checks and places, but creates nothing
        return constants.EXIT_SUCCESS
    jobs = result.get(constants.JOB_IDS_KEY) or []
    placed = result.get(constants.ALLOCATABLE_KEY) or []
    failed = result.get(constants.FAILED_KEY) or []
    for name in failed:
        ToStderr("Could not allocate nodes for instance %s", name)
    submitted = [str(job_id) for ok, job_id in jobs if ok]
    if submitted:
        ToStdout("Submitted jobs %s", utils.CommaJoin(submitted))
    jex = cli.JobExecutor(cl=cl, opts=opts)
    for idx, (ok, job_id) in enumerate(jobs):
        jex.AddJobId(placed[idx] if idx < len(placed) else None, ok, job_id)
    bad = len(failed) + sum(1 for ok, _ in jex.GetResults() if not ok)
    if bad:
        ToStdout("There were %s errors during the creation.", bad)
        return constants.EXIT_FAILURE
    ToStdout("All instances created successfully.")
    return constants.EXIT_SUCCESS


#: The entry of gnt-instance's commands table
BATCH_CREATE_COMMAND: cli.CommandDef = (
    BatchCreate, [ArgFile(min=1, max=1)],
    [IALLOCATOR_OPT, cli.DRY_RUN_OPT, cli.PRIORITY_OPT] + SUBMIT_OPTS,
    "[-I <iallocator>] <instances.json>",
    "Create a bunch of instances based on specs in the file")
